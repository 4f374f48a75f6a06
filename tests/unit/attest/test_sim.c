/* Unit tests of src/attest/sim.c: evidence round trip, every byte flip, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/mem.h"

static struct cf_pkey *g_key;

static int setup(void **state)
{
        (void)state;
        if (!cf_ok(cf_crypto_init()) || !cf_ok(cf_pkey_generate(CF_KEY_ED25519, &g_key))) {
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        cf_pkey_free(g_key);
        return 0;
}

static void make(struct cf_buf *ev)
{
        uint8_t m[32], rd[64];

        memset(m, 0xab, sizeof(m));
        memset(rd, 0xcd, sizeof(rd));
        cf_buf_init(ev, 1024, false);
        assert_int_equal(sim_evidence_make(g_key, m, rd, ev).code, 0);
        assert_int_equal(ev->size, SIM_EVIDENCE_SIZE);
}

static void test_round_trip(void **state)
{
        struct cf_buf ev;
        struct attest_result res;
        char hex[65];

        (void)state;
        make(&ev);
        assert_int_equal(attest_result_init(&res).code, 0);
        assert_int_equal(sim_evidence_verify(cf_buf_slice(&ev), &res).code, 0);
        assert_true(res.valid);
        memset(hex, 'a', 64);
        for (int i = 0; i < 64; i += 2) {
                hex[i + 1] = 'b';
        }
        hex[64] = 0;
        assert_string_equal(json_string_value(json_object_get(res.claims, "measurement")), hex);
        assert_true(attest_checks_all_ok(&res.checks));
        attest_result_done(&res);
        cf_buf_done(&ev);
}

static void test_every_byte_flip_fails(void **state)
{
        struct cf_buf ev;

        (void)state;
        make(&ev);
        for (size_t i = 0; i < ev.size; i++) {
                for (unsigned bit = 0; bit < 8; bit += 7) {
                        struct attest_result res;
                        ev.ptr[i] ^= (uint8_t)(1u << bit);
                        assert_int_equal(attest_result_init(&res).code, 0);
                        if (cf_ok(sim_evidence_verify(cf_buf_slice(&ev), &res))) {
                                fail_msg("flip of byte %zu bit %u verified", i, bit);
                        }
                        assert_false(res.valid);
                        assert_false(attest_checks_all_ok(&res.checks));
                        attest_result_done(&res);
                        ev.ptr[i] ^= (uint8_t)(1u << bit);
                }
        }
        cf_buf_done(&ev);
}

static void test_truncation_and_trailing(void **state)
{
        struct cf_buf ev;
        struct sim_evidence e;

        (void)state;
        make(&ev);
        for (size_t n = 0; n < ev.size; n++) {
                assert_int_not_equal(sim_evidence_parse(cf_slice_make(ev.ptr, n), &e).code, 0);
        }
        assert_int_equal(cf_buf_append(&ev, "x", 1).code, 0);
        assert_int_equal(sim_evidence_parse(cf_buf_slice(&ev), &e).code, CF_E_TRAILING);
        cf_buf_done(&ev);
}

static void test_unknown_version_and_flags(void **state)
{
        struct cf_buf ev;
        struct sim_evidence e;

        (void)state;
        make(&ev);
        ev.ptr[8] = 2;
        assert_int_equal(sim_evidence_parse(cf_buf_slice(&ev), &e).code, CF_E_VERSION);
        ev.ptr[8] = 1;
        ev.ptr[10] = 1;
        assert_int_equal(sim_evidence_parse(cf_buf_slice(&ev), &e).code, CF_E_MALFORMED);
        cf_buf_done(&ev);
}

static void test_report_data_binding_differs(void **state)
{
        uint8_t e1[32] = { 1 }, e2[32] = { 2 }, r1[64], r2[64], k[32] = { 0 };

        (void)state;
        assert_int_equal(sim_activation_report_data(e1, r1).code, 0);
        assert_int_equal(sim_activation_report_data(e2, r2).code, 0);
        assert_memory_not_equal(r1, r2, 64);
        /* domain separation: the same input under the CAS label gives another value */
        assert_int_equal(sim_cas_report_data(k, cf_slice_make(e1, 0), r2).code, 0);
        assert_memory_not_equal(r1, r2, 64);
}

static void test_platform_key_created_once(void **state)
{
        char dir[] = "/tmp/coffer-sim-test-XXXXXX";
        struct cf_pkey *a = NULL, *b = NULL;
        uint8_t pa[32], pb[32];
        char path[128];

        (void)state;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(sim_platform_key_load(dir, &a).code, 0);
        assert_int_equal(sim_platform_key_load(dir, &b).code, 0);
        assert_int_equal(cf_pkey_ed25519_raw_public(a, pa).code, 0);
        assert_int_equal(cf_pkey_ed25519_raw_public(b, pb).code, 0);
        assert_memory_equal(pa, pb, 32);
        cf_pkey_free(a);
        cf_pkey_free(b);
        snprintf(path, sizeof(path), "%s/platform.key", dir);
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_every_byte_flip_fails),
                cmocka_unit_test(test_truncation_and_trailing),
                cmocka_unit_test(test_unknown_version_and_flags),
                cmocka_unit_test(test_report_data_binding_differs),
                cmocka_unit_test(test_platform_key_created_once),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
