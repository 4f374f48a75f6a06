/* Fuzz target: SEV-SNP evidence decoding (bare ATTESTATION_REPORT and Azure HCL report).
 * Target functions: snp_report_parse, snp_tcb_decode, and snp_verify with an empty collateral
 * (every field rule, the missing-collateral path and the claims writer). */
#include <stddef.h>
#include <stdint.h>

#include "attest/snp/snp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_slice in = cf_slice_make(data, size);
        struct snp_report r;
        struct attest_collateral coll;
        struct attest_result res;
        struct snp_options opt = {1750000000, 0};

        if (cf_ok(snp_report_parse(in, &r))) {
                struct snp_tcb t;
                snp_tcb_decode(r.reported_tcb, SNP_PRODUCT_TURIN, &t);
                snp_tcb_decode(r.reported_tcb, SNP_PRODUCT_MILAN, &t);
        }
        attest_collateral_init(&coll);
        if (cf_ok(attest_result_init(&res))) {
                /* Must fail (no VCEK) without crashing; the outcome itself is not checked. */
                cf_ignore(snp_verify(in, &coll, &opt, &res));
                if (res.valid) {
                        __builtin_trap();
                }
                attest_result_done(&res);
        }
        return 0;
}
