/* Fuzz target: AMD KDS certificate handling (PEM/DER loading, roles, the VCEK/VLEK extension
 * parser, chain building). Target functions: snp_pool_add_blob, snp_leaf_info_parse,
 * snp_chain_for_target, snp_verify_cert, snp_verify (collateral path).
 * Input: byte 0 selects a split point; the input is cut into two blobs there, so seeds can
 * carry a certificate and its issuer side by side. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attest/snp/snp_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void pool_paths(struct cf_slice a, struct cf_slice b)
{
        struct snp_pool pool;
        struct attest_checks l;
        struct snp_ck ck;
        size_t first = SIZE_MAX, second = SIZE_MAX;

        attest_checks_init(&l);
        ck = (struct snp_ck){&l, CF_OK};
        snp_pool_init(&pool);
        if (cf_ok(snp_pool_add_blob(&pool, "a", a, &ck, &first)) &&
            cf_ok(snp_pool_add_blob(&pool, "b", b, &ck, &second))) {
                for (size_t i = 0; i < pool.n; i++) {
                        struct snp_leaf_info li;
                        struct snp_chain chain;
                        cf_status err;
                        cf_ignore(snp_leaf_info_parse(pool.certs[i].x, &li));
                        snp_chain_init(&chain);
                        cf_ignore(snp_chain_for_target(&pool, i, &chain, &err));
                        snp_chain_check_windows(&chain, 1750000000, &ck);
                        snp_chain_done(&chain);
                }
        }
        snp_pool_done(&pool);
        attest_checks_done(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_make(data, size));
        struct cf_slice a, b;
        struct attest_collateral coll;
        struct attest_result res;
        struct snp_options opt = {1750000000, -1};
        uint8_t report[SNP_REPORT_SIZE] = {2};
        uint8_t split;
        size_t cut;

        if (!cf_ok(cf_cursor_u8(&c, &split))) {
                return 0;
        }
        cut = cf_cursor_left(&c) * split / 255;
        if (!cf_ok(cf_cursor_take(&c, cut, &a)) ||
            !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &b))) {
                return 0;
        }
        pool_paths(a, b);
        attest_collateral_init(&coll);
        if (!cf_ok(attest_collateral_add(&coll, "b", b.ptr, b.size))) {
                return 0;
        }
        if (cf_ok(attest_result_init(&res))) {
                cf_ignore(snp_verify_cert(a, &coll, &opt, &res));
                attest_result_done(&res);
        }
        /* The collateral path of snp_verify, with a syntactically valid unsigned report. */
        report[0x0a] = 0x02; /* policy reserved bit 17 */
        report[0x34] = 1;
        if (cf_ok(attest_collateral_add(&coll, "a", a.ptr, a.size)) &&
            cf_ok(attest_result_init(&res))) {
                cf_ignore(snp_verify(cf_slice_make(report, sizeof(report)), &coll, &opt, &res));
                if (res.valid) {
                        __builtin_trap();
                }
                attest_result_done(&res);
        }
        attest_collateral_done(&coll);
        return 0;
}
