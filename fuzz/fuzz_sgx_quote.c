/* libFuzzer target: SGX quote parsing and verification with no collateral (the PCK chain
 * from the quote's certification data is parsed too). */
#include <stddef.h>
#include <stdint.h>

#include "attest/intel/intel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct intel_quote q;
        struct attest_collateral none;
        struct attest_result res;
        struct intel_options opt = {.now = 1751328000}; /* 2025-07-01 */

        cf_ignore(intel_quote_parse(cf_slice_make(data, size), &q)); /* any outcome is fine */
        attest_collateral_init(&none);
        if (cf_ok(attest_result_init(&res))) {
                cf_ignore(intel_verify(cf_slice_make(data, size), &none, &opt, &res));
                attest_result_done(&res);
        }
        return 0;
}
