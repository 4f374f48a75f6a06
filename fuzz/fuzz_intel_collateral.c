/* libFuzzer target: Intel collateral recognition and parsing (PCS JSON, bundles, split
 * bodies and signatures, PEM/DER certificates and CRLs). The input is cut into up to four
 * blobs at "\n--8<--\n" separators so pairing logic (body + detached signature) is reached. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/intel/intel_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char sep[] = "\n--8<--\n";
        struct attest_collateral coll;
        struct intel_coll *c = NULL;
        struct cf_cursor cur = cf_cursor_make(cf_slice_make(data, size));

        attest_collateral_init(&coll);
        while (coll.n < 4 && cf_cursor_left(&cur) > 0) {
                size_t n = 0, left = cf_cursor_left(&cur);
                struct cf_slice part;
                const uint8_t *rest = cur.in.ptr + cur.pos;
                const uint8_t *hit = memmem(rest, left, sep, sizeof(sep) - 1);
                n = hit != NULL ? (size_t)(hit - rest) : left;
                if (!cf_ok(cf_cursor_take(&cur, n, &part)) ||
                    !cf_ok(attest_collateral_add(&coll, "fuzz", part.ptr, part.size))) {
                        break;
                }
                cf_ignore(cf_cursor_skip(&cur, hit != NULL ? sizeof(sep) - 1 : 0));
        }
        if (cf_ok(intel_coll_build(&coll, NULL, &c))) {
                intel_coll_free(c);
        }
        attest_collateral_done(&coll);
        return 0;
}
