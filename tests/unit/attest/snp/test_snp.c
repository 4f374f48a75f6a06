/* SEV-SNP verifier tests: every snp row of ../shared/vectors/expected.tsv, byte-flip sweeps
 * over the signed region and the signature of real Milan and Genoa reports, truncation,
 * versions, trailing bytes, HCL rules, claims, check names, cache and threads. Tests that need
 * the vectors skip with a message when the folder is absent; the synthetic ones always run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "../vectors.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "base/mem.h"
#include "crypto/crypto.h"

#define SKIP_IF_NO_VECTORS()                                                                       \
        do {                                                                                       \
                if (vec_dir() == NULL) {                                                           \
                        print_message("SKIP: ../shared/vectors absent (COFFER_VECTORS)\n");        \
                        skip();                                                                    \
                }                                                                                  \
        } while (0)

static void dump_failed(const char *case_id, const struct attest_result *res)
{
        print_message("case %s: valid=%d, checks:\n", case_id, res->valid);
        for (size_t i = 0; i < res->checks.n; i++) {
                const struct attest_check *c = &res->checks.items[i];
                print_message("  %s %s expected=[%s] actual=[%s]\n", c->ok ? "ok  " : "FAIL",
                              c->name, c->expected, c->actual);
        }
}

static const struct attest_check *find_check(const struct attest_result *res, const char *name)
{
        for (size_t i = 0; i < res->checks.n; i++) {
                if (strcmp(res->checks.items[i].name, name) == 0) {
                        return &res->checks.items[i];
                }
        }
        return NULL;
}

/* Like find_check, for checks that must exist: a missing one ends the test. */
static const struct attest_check *must_check(const struct attest_result *res, const char *name)
{
        const struct attest_check *c = find_check(res, name);

        if (c == NULL) {
                fail_msg("no check named %s", name);
                abort(); /* not reached: fail_msg does not return */
        }
        return c;
}

static bool is_cert_row(const struct vec_row *row)
{
        size_t n = strlen(row->evidence_file);

        return n > 4 && (strcmp(row->evidence_file + n - 4, ".der") == 0 ||
                         strcmp(row->evidence_file + n - 4, ".pem") == 0);
}

static cf_status run_row(const struct vec_row *row, struct attest_result *res)
{
        uint8_t *ev = NULL;
        size_t ev_size = 0;
        struct attest_collateral coll;
        struct snp_options opt = {row->verify_at, row->expected_stepping};
        cf_status s;

        assert_true(vec_load_case(row, &ev, &ev_size, &coll));
        assert_true(cf_ok(attest_result_init(res)));
        if (is_cert_row(row)) {
                s = snp_verify_cert(cf_slice_make(ev, ev_size), &coll, &opt, res);
        } else {
                s = snp_verify(cf_slice_make(ev, ev_size), &coll, &opt, res);
        }
        free(ev);
        attest_collateral_done(&coll);
        return s;
}

/* Every snp row, twice: cold and with the chain cache warm (a hit must not change a result). */
static void test_vector_rows(void **state)
{
        static struct vec_row rows[VEC_MAX_ROWS];
        int n, failures = 0;
        (void)state;

        SKIP_IF_NO_VECTORS();
        n = vec_load_rows("snp", rows, VEC_MAX_ROWS);
        assert_int_equal(n, 38);
        snp_cache_clear();
        for (int pass = 0; pass < 2; pass++) {
                for (int i = 0; i < n; i++) {
                        struct attest_result res;
                        cf_status s = run_row(&rows[i], &res);
                        bool ok =
                            rows[i].expect_valid ? cf_ok(s) && res.valid : !cf_ok(s) && !res.valid;
                        /* A failure always names at least one failed check. */
                        ok = ok && (rows[i].expect_valid || attest_checks_failed(&res.checks) > 0);
                        ok = ok && res.tcb_status[0] == '\0';
                        if (!ok) {
                                print_message("FAILED row %s (pass %d): expected %s, got %s\n",
                                              rows[i].case_id, pass,
                                              rows[i].expect_valid ? "valid" : "invalid",
                                              cf_status_name(s));
                                dump_failed(rows[i].case_id, &res);
                                failures++;
                        }
                        attest_result_done(&res);
                }
        }
        assert_true(snp_cache_hits() > 0);
        assert_int_equal(failures, 0);
}

/* Expected failure status and the check that explains it, for selected negative rows. */
static void test_vector_reasons(void **state)
{
        static const struct {
                const char *case_id, *check;
                enum cf_errcode code;
                const char *expected, *actual; /* substrings; NULL: not checked */
        } want[] = {
            {"snp-gosev-milan-not-yet-valid", "snp.vcek.validity", CF_E_EXPIRED,
             "2022-09-24T00:55:28Z .. 2029-09-24T00:55:28Z", "2022-09-23T00:00:00Z"},
            {"snp-vlek-milan-expired", "snp.vlek.validity", CF_E_EXPIRED,
             "2024-12-10T22:14:21Z .. 2025-12-10T22:14:21Z", "2026-01-01"},
            {"snp-gosev-milan-genoa-chain", "snp.vcek.issuer", CF_E_CHAIN, "SEV-Genoa",
             "SEV-Milan"},
            {"snp-gosev-milan-ask-as-ark", "snp.collateral.ark", CF_E_CHAIN, NULL, "none"},
            {"snp-gosev-milan-stepping", "snp.vcek.stepping", CF_E_COLLATERAL, "12",
             "0 (productName Milan-B0)"},
            {"snp-virtee-milan-report-flip", "snp.report.signature", CF_E_SIG_INVALID, NULL,
             "invalid"},
            {"snp-virtee-milan-vcek-flip", "snp.vcek.signature", CF_E_CHAIN, NULL, "invalid"},
            {"snp-trustee-milan-report-byte384", "snp.vcek.tcb.bootloader", CF_E_SIG_INVALID, "3",
             "4"},
            {"snp-trustee-milan-asvk-chain", "snp.ask.role", CF_E_CHAIN, "SEV-Milan",
             "SEV-VLEK-Milan"},
            {"snp-vlek-milan-ask-chain", "snp.asvk.role", CF_E_CHAIN, "SEV-VLEK-Milan",
             "SEV-Milan"},
            {"snp-azure-milan-hcl-tcb", "snp.vcek.tcb.snp", CF_E_SIG_INVALID, "8", "0"},
            {"snp-azure-milan-hcl-binding", "snp.hcl.binding", CF_E_BINDING, NULL, NULL},
            {"snp-e2e-genoa-milan-chain", "snp.vcek.signature", CF_E_CHAIN, NULL, "invalid"},
            {"snp-turin-vcek-milan-chain", "snp.vcek.issuer", CF_E_CHAIN, "SEV-Milan", "SEV-Turin"},
        };
        static struct vec_row rows[VEC_MAX_ROWS];
        int n;
        (void)state;

        SKIP_IF_NO_VECTORS();
        n = vec_load_rows("snp", rows, VEC_MAX_ROWS);
        for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
                bool found = false;
                for (int i = 0; i < n; i++) {
                        struct attest_result res;
                        const struct attest_check *c;
                        cf_status s;
                        if (strcmp(rows[i].case_id, want[w].case_id) != 0) {
                                continue;
                        }
                        found = true;
                        s = run_row(&rows[i], &res);
                        c = find_check(&res, want[w].check);
                        if (c == NULL || c->ok || s.code != (int32_t)want[w].code ||
                            (want[w].expected && strstr(c->expected, want[w].expected) == NULL) ||
                            (want[w].actual && strstr(c->actual, want[w].actual) == NULL)) {
                                print_message("case %s: want check %s failing with %s\n",
                                              want[w].case_id, want[w].check,
                                              cf_status_name((cf_status){(int32_t)want[w].code}));
                                print_message("got status %s\n", cf_status_name(s));
                                dump_failed(rows[i].case_id, &res);
                                fail();
                        }
                        attest_result_done(&res);
                }
                assert_true(found);
        }
}

struct loaded {
        uint8_t *ev;
        size_t ev_size;
        struct attest_collateral coll;
        struct snp_options opt;
};

static void load_named(const char *case_id, struct loaded *l)
{
        static struct vec_row rows[VEC_MAX_ROWS];
        int n = vec_load_rows("snp", rows, VEC_MAX_ROWS);

        for (int i = 0; i < n; i++) {
                if (strcmp(rows[i].case_id, case_id) == 0) {
                        assert_true(vec_load_case(&rows[i], &l->ev, &l->ev_size, &l->coll));
                        l->opt = (struct snp_options){rows[i].verify_at, -1};
                        return;
                }
        }
        fail_msg("row %s missing", case_id);
}

static void unload(struct loaded *l)
{
        free(l->ev);
        attest_collateral_done(&l->coll);
}

static cf_status verify_bytes(const uint8_t *ev, size_t size, const struct loaded *l, bool *valid)
{
        struct attest_result res;
        cf_status s;

        assert_true(cf_ok(attest_result_init(&res)));
        s = snp_verify(cf_slice_make(ev, size), &l->coll, &l->opt, &res);
        *valid = res.valid;
        attest_result_done(&res);
        return s;
}

/* Flips every byte of the signed region [0, 0x2A0) and of the signature fields [0x2A0, 0x330)
 * (two patterns each). No byte is exempt: the format ignores none of them (the upper 24 bytes
 * of R and S must be zero, the reserved ranges must be zero). */
static void sweep(const char *case_id)
{
        struct loaded l = {0};
        uint8_t *copy;
        bool valid;
        int failures = 0;
        static const uint8_t patterns[] = {0x01, 0x80};

        load_named(case_id, &l);
        assert_int_equal(l.ev_size, SNP_REPORT_SIZE);
        assert_true(cf_ok(verify_bytes(l.ev, l.ev_size, &l, &valid)));
        assert_true(valid);
        copy = malloc(l.ev_size);
        assert_non_null(copy);
        for (size_t off = 0; off < SNP_SIGNED_SIZE + 2 * SNP_SIG_COMPONENT; off++) {
                for (size_t p = 0; p < sizeof(patterns); p++) {
                        cf_status s;
                        memcpy(copy, l.ev, l.ev_size);
                        copy[off] ^= patterns[p];
                        s = verify_bytes(copy, l.ev_size, &l, &valid);
                        if (cf_ok(s) || valid) {
                                print_message("%s: flip 0x%02x at 0x%zx still verifies\n", case_id,
                                              patterns[p], off);
                                failures++;
                        }
                }
        }
        free(copy);
        unload(&l);
        assert_int_equal(failures, 0);
}

static void test_sweep_milan(void **state)
{
        (void)state;
        SKIP_IF_NO_VECTORS();
        sweep("snp-gosev-milan-ok");
}

static void test_sweep_genoa(void **state)
{
        (void)state;
        SKIP_IF_NO_VECTORS();
        sweep("snp-azure-genoa-report-ok");
}

static void test_truncation(void **state)
{
        static const char *const cases[] = {"snp-trustee-milan-ok", "snp-azure-milan-hcl-ok"};
        (void)state;

        SKIP_IF_NO_VECTORS();
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                struct loaded l = {0};
                size_t end;
                load_named(cases[k], &l);
                /* An HCL report ends with its variable data (report size at offset 8); the
                 * zero padding after it is optional, so only shorter prefixes are truncated. */
                end = l.ev_size;
                if (memcmp(l.ev, "HCLA", 4) == 0) {
                        end = (size_t)l.ev[8] | (size_t)l.ev[9] << 8;
                        assert_true(end < l.ev_size);
                        for (size_t n = end; n <= l.ev_size; n++) {
                                struct snp_report r;
                                assert_true(cf_ok(snp_report_parse(cf_slice_make(l.ev, n), &r)));
                        }
                }
                for (size_t n = 0; n < end; n++) {
                        /* An exact-size copy so ASan catches any read past the end. */
                        uint8_t *t = malloc(n ? n : 1);
                        bool valid;
                        cf_status s;
                        struct snp_report r;
                        assert_non_null(t);
                        memcpy(t, l.ev, n);
                        assert_false(cf_ok(snp_report_parse(cf_slice_make(t, n), &r)));
                        s = verify_bytes(t, n, &l, &valid);
                        assert_false(cf_ok(s));
                        assert_false(valid);
                        free(t);
                }
                unload(&l);
        }
}

static void test_trailing_and_versions(void **state)
{
        struct loaded l = {0};
        uint8_t *big;
        bool valid;
        struct snp_report r;
        static const uint32_t bad_versions[] = {0, 1, 4, 6, 0x100, 0xffffffffu};
        (void)state;

        SKIP_IF_NO_VECTORS();
        load_named("snp-trustee-milan-ok", &l);
        big = calloc(1, l.ev_size + 1);
        assert_non_null(big);
        memcpy(big, l.ev, l.ev_size);
        /* A bare report is exactly 0x4A0 bytes: even one zero byte after it is refused. */
        assert_int_equal(verify_bytes(big, l.ev_size + 1, &l, &valid).code, CF_E_TRAILING);
        for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
                memcpy(big, l.ev, l.ev_size);
                for (size_t b = 0; b < 4; b++) {
                        big[b] = (uint8_t)(bad_versions[i] >> (8 * b));
                }
                assert_int_equal(snp_report_parse(cf_slice_make(big, l.ev_size), &r).code,
                                 CF_E_VERSION);
                assert_int_equal(verify_bytes(big, l.ev_size, &l, &valid).code, CF_E_VERSION);
                assert_false(valid);
        }
        /* Claiming version 3 on a v2 report parses but breaks the signature. */
        memcpy(big, l.ev, l.ev_size);
        big[0] = 3;
        assert_false(cf_ok(verify_bytes(big, l.ev_size, &l, &valid)));
        free(big);
        unload(&l);
}

/* HCL rules: zero padding may follow the variable data; anything else may not; header fields
 * fail closed. */
static void test_hcl_rules(void **state)
{
        struct loaded l = {0};
        uint8_t *b;
        bool valid;
        (void)state;

        SKIP_IF_NO_VECTORS();
        load_named("snp-azure-milan-hcl-ok", &l);
        b = calloc(1, l.ev_size + 64);
        assert_non_null(b);
        memcpy(b, l.ev, l.ev_size);
        assert_true(cf_ok(verify_bytes(b, l.ev_size + 64, &l, &valid)));
        assert_true(valid);
        b[l.ev_size + 10] = 1;
        assert_int_equal(verify_bytes(b, l.ev_size + 64, &l, &valid).code, CF_E_TRAILING);
        memcpy(b, l.ev, l.ev_size);
        b[l.ev_size - 1] = 0x20; /* last padding byte of the original buffer */
        assert_int_equal(verify_bytes(b, l.ev_size, &l, &valid).code, CF_E_TRAILING);
        memcpy(b, l.ev, l.ev_size);
        b[4] = 9; /* HCL version */
        assert_int_equal(verify_bytes(b, l.ev_size, &l, &valid).code, CF_E_VERSION);
        memcpy(b, l.ev, l.ev_size);
        b[0x4c0 + 8] = 4; /* report type TDX */
        assert_int_equal(verify_bytes(b, l.ev_size, &l, &valid).code, CF_E_UNSUPPORTED);
        memcpy(b, l.ev, l.ev_size);
        b[0x4c0 + 12] = 2; /* hash type SHA-384 */
        assert_int_equal(verify_bytes(b, l.ev_size, &l, &valid).code, CF_E_UNSUPPORTED);
        memcpy(b, l.ev, l.ev_size);
        b[0x4c0 + 16] = 0xff; /* variable-data size beyond the buffer */
        b[0x4c0 + 17] = 0xff;
        assert_false(cf_ok(verify_bytes(b, l.ev_size, &l, &valid)));
        memcpy(b, l.ev, l.ev_size);
        b[0x4c0] ^= 1; /* runtime data size disagrees with the variable-data size */
        assert_int_equal(verify_bytes(b, l.ev_size, &l, &valid).code, CF_E_MALFORMED);
        free(b);
        unload(&l);
}

static json_t *claim(const struct attest_result *res, const char *path)
{
        json_t *j = res->claims;
        char buf[128], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save)) {
                j = json_object_get(j, k);
        }
        return j;
}

static void expect_str(const struct attest_result *res, const char *path, const char *v)
{
        json_t *j = claim(res, path);

        if (j == NULL || !json_is_string(j) || strcmp(json_string_value(j), v) != 0) {
                fail_msg("claim %s: want %s, got %s", path, v,
                         j && json_is_string(j) ? json_string_value(j) : "(none)");
        }
}

static void expect_int(const struct attest_result *res, const char *path, json_int_t v)
{
        json_t *j = claim(res, path);

        if (j == NULL || !json_is_integer(j) || json_integer_value(j) != v) {
                fail_msg("claim %s: want %lld", path, (long long)v);
        }
}

static void expect_bool(const struct attest_result *res, const char *path, bool v)
{
        json_t *j = claim(res, path);

        if (j == NULL || !json_is_boolean(j) || json_is_true(j) != v) {
                fail_msg("claim %s: want %d", path, v);
        }
}

static void verify_named(const char *case_id, struct attest_result *res)
{
        struct loaded l = {0};

        load_named(case_id, &l);
        assert_true(cf_ok(attest_result_init(res)));
        assert_true(cf_ok(snp_verify(cf_slice_make(l.ev, l.ev_size), &l.coll, &l.opt, res)));
        assert_true(res->valid);
        unload(&l);
}

/* Values from the vectors README §6.2-6.4. */
static void test_claims(void **state)
{
        struct attest_result res;
        (void)state;

        SKIP_IF_NO_VECTORS();
        verify_named("snp-gosev-milan-ok", &res);
        expect_int(&res, "version", 2);
        expect_int(&res, "vmpl", 0);
        expect_int(&res, "guest_svn", 0);
        expect_str(&res, "measurement",
                   "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a"
                   "608eb0cf2e4872b01");
        expect_str(&res, "chip_id",
                   "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b"
                   "76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d");
        expect_str(&res, "report_data",
                   "0102030405000000000000000000000000000000000000000000000000000000000000000000000"
                   "0000000000000000000000000000000000000000000000000");
        expect_str(&res, "policy.raw", "0x00000000000b0000");
        expect_bool(&res, "policy.debug", true);
        expect_bool(&res, "policy.smt", true);
        expect_bool(&res, "policy.migration_agent", false);
        expect_bool(&res, "policy.single_socket", false);
        expect_int(&res, "reported_tcb.bootloader", 2);
        expect_int(&res, "reported_tcb.tee", 0);
        expect_int(&res, "reported_tcb.snp", 5);
        expect_int(&res, "reported_tcb.microcode", 68);
        expect_str(&res, "firmware_current", "1.49.3");
        expect_str(&res, "product", "Milan");
        expect_str(&res, "signing_key", "vcek");
        expect_str(&res, "signer.product_name", "Milan-B0");
        expect_str(&res, "signer.not_before", "2022-09-24T00:55:28Z");
        expect_bool(&res, "azure_hcl", false);
        attest_result_done(&res);

        verify_named("snp-trustee-milan-ok", &res);
        expect_int(&res, "guest_svn", 4);
        expect_int(&res, "reported_tcb.microcode", 0x73);
        expect_int(&res, "current_tcb.microcode", 0xce);
        expect_str(&res, "policy.raw", "0x000000000003001f");
        expect_bool(&res, "policy.debug", false);
        expect_str(&res, "measurement",
                   "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e"
                   "6be917f9050d3d38c");
        assert_non_null(claim(&res, "id_key_digest"));
        assert_string_not_equal(json_string_value(claim(&res, "id_key_digest")),
                                "000000000000000000000000000000000000000000000000000000000000000000"
                                "000000000000000000000000000000");
        attest_result_done(&res);

        verify_named("snp-vlek-milan-ok", &res);
        expect_int(&res, "version", 3);
        expect_int(&res, "vmpl", 1);
        expect_str(&res, "signing_key", "vlek");
        expect_str(&res, "signer.role", "vlek");
        expect_str(&res, "signer.product_name", "Milan");
        expect_str(&res, "signer.csp_id", "CN=cc-us-east-2.amazonaws.com");
        expect_int(&res, "reported_tcb.bootloader", 4);
        expect_int(&res, "reported_tcb.snp", 24);
        expect_int(&res, "reported_tcb.microcode", 217);
        expect_int(&res, "cpuid.family", 0x19);
        expect_int(&res, "cpuid.model", 1);
        expect_str(&res, "firmware_current", "1.55.29");
        attest_result_done(&res);

        verify_named("snp-azure-genoa-hcl-ok", &res);
        expect_str(&res, "product", "Genoa");
        expect_bool(&res, "azure_hcl", true);
        expect_int(&res, "reported_tcb.bootloader", 10);
        expect_int(&res, "reported_tcb.snp", 23);
        expect_int(&res, "reported_tcb.microcode", 84);
        expect_str(&res, "measurement",
                   "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e610"
                   "65768a6ff917c89ae");
        assert_true(must_check(&res, "snp.hcl.binding")->ok);
        attest_result_done(&res);
}

static void test_turin_cert_claims(void **state)
{
        static struct vec_row rows[VEC_MAX_ROWS];
        int n;
        (void)state;

        SKIP_IF_NO_VECTORS();
        n = vec_load_rows("snp", rows, VEC_MAX_ROWS);
        for (int i = 0; i < n; i++) {
                struct attest_result res;
                if (strcmp(rows[i].case_id, "snp-turin-vcek-chain") != 0) {
                        continue;
                }
                assert_true(cf_ok(run_row(&rows[i], &res)));
                expect_str(&res, "signer.role", "vcek");
                expect_str(&res, "signer.product", "Turin");
                expect_str(&res, "signer.hwid", "1e550a8ee5cf9f4d");
                expect_int(&res, "signer.struct_version", 1);
                assert_non_null(claim(&res, "signer.tcb.fmc"));
                attest_result_done(&res);
                return;
        }
        fail();
}

/* ---- synthetic tests (no vectors needed) ---- */

static void put32(uint8_t *p, uint32_t v)
{
        for (size_t b = 0; b < 4; b++) {
                p[b] = (uint8_t)(v >> (8 * b));
        }
}

static void synth_report(uint8_t r[static SNP_REPORT_SIZE], uint32_t version)
{
        memset(r, 0, SNP_REPORT_SIZE);
        put32(r, version);
        put32(r + 0x08, 0x30000); /* policy: SMT, reserved bit 17 */
        put32(r + 0x34, 1);       /* ECDSA P-384 */
        r[0x50] = 0xaa;           /* REPORT_DATA */
        r[0x90] = 0xbb;           /* MEASUREMENT */
        r[0x180] = 0x03;          /* REPORTED_TCB */
        r[0x187] = 0x73;
        if (version >= 3) {
                r[0x188] = 0x1a; /* Turin */
                r[0x189] = 0x02;
                r[0x18a] = 0x01;
        }
        r[0x2a0] = 1; /* R = 1 */
        r[0x2e8] = 1; /* S = 1 */
}

static void test_synthetic_parse(void **state)
{
        uint8_t r[SNP_REPORT_SIZE];
        struct snp_report p;
        struct snp_tcb t;
        static const uint32_t versions[] = {2, 3, 5};
        (void)state;

        for (size_t i = 0; i < 3; i++) {
                synth_report(r, versions[i]);
                assert_true(cf_ok(snp_report_parse(cf_slice_make(r, sizeof(r)), &p)));
                assert_int_equal(p.version, versions[i]);
                assert_int_equal(p.policy, 0x30000);
                assert_int_equal(p.signature_algo, 1);
                assert_int_equal(p.report_data[0], 0xaa);
                assert_int_equal(p.measurement[0], 0xbb);
                assert_int_equal(p.reserved_nonzero_at, 0);
                assert_false(p.hcl);
                assert_ptr_equal(p.signed_region.ptr, r);
                assert_int_equal(p.signed_region.size, SNP_SIGNED_SIZE);
        }
        /* v2: the CPUID bytes are reserved. */
        synth_report(r, 2);
        r[0x189] = 1;
        assert_true(cf_ok(snp_report_parse(cf_slice_make(r, sizeof(r)), &p)));
        assert_int_equal(p.reserved_nonzero_at, 0x189);
        /* v3: the mitigation vectors are reserved before v5. */
        synth_report(r, 3);
        r[0x1f9] = 1;
        assert_true(cf_ok(snp_report_parse(cf_slice_make(r, sizeof(r)), &p)));
        assert_int_equal(p.reserved_nonzero_at, 0x1f9);
        synth_report(r, 5);
        r[0x1f9] = 1;
        assert_true(cf_ok(snp_report_parse(cf_slice_make(r, sizeof(r)), &p)));
        assert_int_equal(p.reserved_nonzero_at, 0);
        assert_int_equal(p.launch_mit_vector, 0x100);
        synth_report(r, 5);
        r[0x49f] = 1;
        assert_true(cf_ok(snp_report_parse(cf_slice_make(r, sizeof(r)), &p)));
        assert_int_equal(p.reserved_nonzero_at, 0x49f);

        /* TCB layouts. */
        {
                static const uint8_t milan[8] = {3, 0, 0, 0, 0, 0, 8, 0x73};
                static const uint8_t turin[8] = {1, 2, 3, 4, 0, 0, 0, 0x55};
                snp_tcb_decode(milan, SNP_PRODUCT_MILAN, &t);
                assert_int_equal(t.bootloader, 3);
                assert_int_equal(t.snp, 8);
                assert_int_equal(t.microcode, 0x73);
                assert_false(t.has_fmc);
                assert_true(t.reserved_zero);
                snp_tcb_decode(turin, SNP_PRODUCT_TURIN, &t);
                assert_int_equal(t.fmc, 1);
                assert_int_equal(t.bootloader, 2);
                assert_int_equal(t.tee, 3);
                assert_int_equal(t.snp, 4);
                assert_int_equal(t.microcode, 0x55);
                assert_true(t.has_fmc);
                assert_true(t.reserved_zero);
                snp_tcb_decode(turin, SNP_PRODUCT_GENOA, &t);
                assert_false(t.reserved_zero);
        }
        assert_int_equal(snp_product_from_cpuid(0x19, 0x01), SNP_PRODUCT_MILAN);
        assert_int_equal(snp_product_from_cpuid(0x19, 0x11), SNP_PRODUCT_GENOA);
        assert_int_equal(snp_product_from_cpuid(0x19, 0xa0), SNP_PRODUCT_GENOA);
        assert_int_equal(snp_product_from_cpuid(0x1a, 0x02), SNP_PRODUCT_TURIN);
        assert_int_equal(snp_product_from_cpuid(0x19, 0x60), SNP_PRODUCT_UNKNOWN);
        assert_int_equal(snp_product_from_cpuid(0x17, 0x31), SNP_PRODUCT_UNKNOWN);
}

static void test_synthetic_fields(void **state)
{
        uint8_t r[SNP_REPORT_SIZE];
        struct attest_collateral coll;
        struct snp_options opt = {1750000000, -1};
        static const struct {
                size_t off;
                uint8_t val;
                const char *check;
        } cases[] = {
            {0x34, 2, "snp.report.signature_algo"},
            {0x4c, 1, "snp.report.reserved"},
            {0x0a, 0x00, "snp.report.policy.reserved"}, /* bit 17 cleared */
            {0x0b, 0x04, "snp.report.policy.reserved"}, /* bit 26 set */
            {0x48, 0x1c, "snp.report.key_info"},        /* signing key 7: none */
            {0x48, 0x02, "snp.report.key_info"},        /* MASK_CHIP_KEY */
            {0x30, 4, "snp.report.vmpl"},
            {0x2a0 + 50, 1, "snp.report.signature.padding"},
            {0x2e8 + 71, 1, "snp.report.signature.padding"},
            {0x41, 1, "snp.report.platform_info.reserved"},
        };
        (void)state;

        attest_collateral_init(&coll);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct attest_result res;
                const struct attest_check *c;
                synth_report(r, 2);
                r[cases[i].off] = cases[i].val;
                assert_true(cf_ok(attest_result_init(&res)));
                assert_false(cf_ok(snp_verify(cf_slice_make(r, sizeof(r)), &coll, &opt, &res)));
                assert_false(res.valid);
                c = find_check(&res, cases[i].check);
                if (c == NULL || c->ok) {
                        dump_failed(cases[i].check, &res);
                        fail();
                }
                attest_result_done(&res);
        }
        /* Without collateral: the missing VCEK is the first failure, and explained. */
        {
                struct attest_result res;
                synth_report(r, 2);
                assert_true(cf_ok(attest_result_init(&res)));
                assert_int_equal(snp_verify(cf_slice_make(r, sizeof(r)), &coll, &opt, &res).code,
                                 CF_E_COLLATERAL);
                assert_false(must_check(&res, "snp.collateral.vcek")->ok);
                assert_false(must_check(&res, "snp.report.signature")->ok);
                expect_int(&res, "version", 2);
                attest_result_done(&res);
        }
        /* Junk collateral is named as unused, never mistaken for a certificate. */
        {
                struct attest_result res;
                static const char junk[] = "{\"tcbInfo\":{}}";
                assert_true(
                    cf_ok(attest_collateral_add(&coll, "junk.json", junk, sizeof(junk) - 1)));
                synth_report(r, 2);
                assert_true(cf_ok(attest_result_init(&res)));
                assert_false(cf_ok(snp_verify(cf_slice_make(r, sizeof(r)), &coll, &opt, &res)));
                assert_string_equal(must_check(&res, "snp.collateral.unused")->actual, "junk.json");
                attest_result_done(&res);
        }
        {
                struct attest_result res;
                assert_true(cf_ok(attest_result_init(&res)));
                assert_int_equal(
                    snp_verify_cert(cf_slice_make(r, sizeof(r)), &coll, &opt, &res).code,
                    CF_E_CERT);
                attest_result_done(&res);
        }
        attest_collateral_done(&coll);
}

static void test_synthetic_hcl(void **state)
{
        uint8_t b[SNP_HCL_VAR_OFFSET + 4 + 16];
        struct snp_report p;
        (void)state;

        memset(b, 0, sizeof(b));
        memcpy(b, "HCLA", 4);
        put32(b + 4, 2);
        put32(b + 8, SNP_HCL_VAR_OFFSET + 4);
        put32(b + 12, 2);
        synth_report(b + 0x20, 3);
        put32(b + 0x4c0, 20 + 4);
        put32(b + 0x4c4, 1);
        put32(b + 0x4c8, 2);
        put32(b + 0x4cc, 1);
        put32(b + 0x4d0, 4);
        memcpy(b + SNP_HCL_VAR_OFFSET, "{}\n\n", 4);
        assert_true(cf_ok(snp_report_parse(cf_slice_make(b, sizeof(b)), &p)));
        assert_true(p.hcl);
        assert_int_equal(p.hcl_var_data.size, 4);
        assert_int_equal(p.version, 3);
        assert_ptr_equal(p.signed_region.ptr, b + 0x20);
        b[0x10] = 1; /* status */
        assert_int_equal(snp_report_parse(cf_slice_make(b, sizeof(b)), &p).code, CF_E_MALFORMED);
        b[0x10] = 0;
        b[12] = 3; /* request type */
        assert_int_equal(snp_report_parse(cf_slice_make(b, sizeof(b)), &p).code, CF_E_UNSUPPORTED);
        b[12] = 2;
        b[8] = 0; /* report size */
        assert_int_equal(snp_report_parse(cf_slice_make(b, sizeof(b)), &p).code, CF_E_MALFORMED);
}

struct thread_arg {
        struct loaded *l;
        int failures;
};

static void *worker(void *p)
{
        struct thread_arg *a = p;

        for (int i = 0; i < 20; i++) {
                bool valid;
                if (!cf_ok(verify_bytes(a->l->ev, a->l->ev_size, a->l, &valid)) || !valid) {
                        a->failures++;
                }
        }
        return NULL;
}

/* Concurrent verifications share the chain cache; clearing it meanwhile is safe. */
static void test_threads(void **state)
{
        struct loaded l = {0};
        pthread_t th[4];
        struct thread_arg args[4];
        (void)state;

        SKIP_IF_NO_VECTORS();
        load_named("snp-azure-milan-report-ok", &l);
        snp_cache_clear();
        for (int i = 0; i < 4; i++) {
                args[i] = (struct thread_arg){&l, 0};
                assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
        }
        snp_cache_clear();
        for (int i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(th[i], NULL), 0);
                assert_int_equal(args[i].failures, 0);
        }
        unload(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_synthetic_parse),
            cmocka_unit_test(test_synthetic_fields),
            cmocka_unit_test(test_synthetic_hcl),
            cmocka_unit_test(test_vector_rows),
            cmocka_unit_test(test_vector_reasons),
            cmocka_unit_test(test_claims),
            cmocka_unit_test(test_turin_cert_claims),
            cmocka_unit_test(test_sweep_milan),
            cmocka_unit_test(test_sweep_genoa),
            cmocka_unit_test(test_truncation),
            cmocka_unit_test(test_trailing_and_versions),
            cmocka_unit_test(test_hcl_rules),
            cmocka_unit_test(test_threads),
        };

        if (!cf_ok(cf_crypto_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
