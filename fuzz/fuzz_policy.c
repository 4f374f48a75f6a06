/* libFuzzer target: policy documents (YAML and JSON) are parsed and validated; a valid one
 * is also rendered as JSON, so the model's invariants (every field set, known kinds and
 * platforms) are exercised too.
 * Target functions: policy_parse, policy_to_json, policy_free. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct policy_errors errs;
        struct policy *p = NULL;
        json_t *j = NULL;

        if (!cf_ok(policy_parse(cf_slice_make(data, size), &p, &errs))) {
                return 0;
        }
        if (cf_ok(policy_to_json(p, &j))) {
                json_decref(j);
        }
        policy_free(p);
        return 0;
}
