/* cofferd's sealed TLS key files (src/cas/tls_key.c, docs/formats/tls-key.md): round trips,
 * the byte layout, and refusal of every truncation, every bit flip, a wrong root key, the
 * other purpose, another certificate's key id and unknown versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/mem.h"
#include "cas/tls_key.h"
#include "crypto/crypto.h"

static const char g_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                            "not a real key, but the module treats it as opaque bytes\n"
                            "-----END PRIVATE KEY-----\n";

struct fixture {
        uint8_t root[32];
        uint8_t other_root[32];
        uint8_t key_id[32];
        struct cf_buf file;
};

static int setup(void **state)
{
        static struct fixture f;

        memset(&f, 0, sizeof(f));
        for (size_t i = 0; i < 32; i++) {
                f.root[i] = (uint8_t)i;
                f.other_root[i] = (uint8_t)(i + 1);
                f.key_id[i] = (uint8_t)(0xa0 + i);
        }
        cf_buf_init(&f.file, CAS_TLS_KEY_FILE_MAX, false);
        if (!cf_ok(cas_tls_key_seal(CAS_TLS_KEY_SEALED, f.root, f.key_id, cf_slice_str(g_pem),
                                    &f.file))) {
                return -1;
        }
        *state = &f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        cf_buf_done(&f->file);
        return 0;
}

static cf_status unseal(enum cas_tls_key_purpose purpose, const uint8_t *root,
                        const uint8_t *key_id, struct cf_slice file, struct cf_buf *out)
{
        cf_buf_init(out, CAS_TLS_KEY_PEM_MAX, true);
        return cas_tls_key_unseal(purpose, root, key_id, file, out);
}

static void test_round_trip_and_layout(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;

        assert_int_equal(f->file.size,
                         CAS_TLS_KEY_HEADER_SIZE + CF_AEAD_OVERHEAD + sizeof(g_pem) - 1);
        assert_memory_equal(f->file.ptr, "CFTK", 4);
        assert_int_equal(f->file.ptr[4], CAS_TLS_KEY_VERSION);
        assert_int_equal(f->file.ptr[5], CAS_TLS_KEY_SEALED);
        assert_memory_equal(f->file.ptr + 6, f->key_id, 32);
        /* The plaintext is not in the file. */
        assert_null(memmem(f->file.ptr, f->file.size, "PRIVATE KEY", 11));
        assert_true(
            cf_ok(unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&f->file), &out)));
        assert_int_equal(out.size, sizeof(g_pem) - 1);
        assert_memory_equal(out.ptr, g_pem, out.size);
        cf_buf_done(&out);
}

static void test_recovery_purpose_round_trip(void **state)
{
        struct fixture *f = *state;
        struct cf_buf file, out;

        cf_buf_init(&file, CAS_TLS_KEY_FILE_MAX, false);
        assert_true(cf_ok(cas_tls_key_seal(CAS_TLS_KEY_RECOVERY, f->root, f->key_id,
                                           cf_slice_str(g_pem), &file)));
        assert_int_equal(file.ptr[5], CAS_TLS_KEY_RECOVERY);
        assert_true(
            cf_ok(unseal(CAS_TLS_KEY_RECOVERY, f->root, f->key_id, cf_buf_slice(&file), &out)));
        assert_memory_equal(out.ptr, g_pem, out.size);
        cf_buf_done(&out);
        /* The recovery copy is not a sealed key: the purpose byte and the HKDF info differ. */
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&file), &out).code,
            CF_E_CONFLICT);
        cf_buf_done(&out);
        /* Even with the purpose byte set right, the key derived for the other purpose fails. */
        file.ptr[5] = CAS_TLS_KEY_SEALED;
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&file), &out).code,
            CF_E_TAMPERED);
        assert_int_equal(out.size, 0);
        cf_buf_done(&out);
        cf_buf_done(&file);
}

static void test_two_seals_differ(void **state)
{
        struct fixture *f = *state;
        struct cf_buf again;

        cf_buf_init(&again, CAS_TLS_KEY_FILE_MAX, false);
        assert_true(cf_ok(
            cas_tls_key_seal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_slice_str(g_pem), &again)));
        assert_int_equal(again.size, f->file.size);
        /* A fresh nonce every time. */
        assert_memory_not_equal(again.ptr + CAS_TLS_KEY_HEADER_SIZE,
                                f->file.ptr + CAS_TLS_KEY_HEADER_SIZE, CF_AEAD_NONCE_SIZE);
        cf_buf_done(&again);
}

static void test_wrong_root_key(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;

        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->other_root, f->key_id, cf_buf_slice(&f->file), &out).code,
            CF_E_TAMPERED);
        assert_int_equal(out.size, 0);
        cf_buf_done(&out);
}

static void test_other_certificate(void **state)
{
        struct fixture *f = *state;
        uint8_t other[32];
        struct cf_buf out;

        memcpy(other, f->key_id, sizeof(other));
        other[31] ^= 1;
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, other, cf_buf_slice(&f->file), &out).code,
            CF_E_CONFLICT);
        cf_buf_done(&out);
}

static void test_every_truncation_fails(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;

        for (size_t n = 0; n < f->file.size; n++) {
                cf_status s = unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id,
                                     cf_slice_make(f->file.ptr, n), &out);
                assert_false(cf_ok(s));
                assert_int_equal(out.size, 0);
                cf_buf_done(&out);
        }
}

static void test_trailing_byte_fails(void **state)
{
        struct fixture *f = *state;
        struct cf_buf longer, out;

        cf_buf_init(&longer, CAS_TLS_KEY_FILE_MAX, false);
        assert_true(cf_ok(cf_buf_append(&longer, f->file.ptr, f->file.size)));
        assert_true(cf_ok(cf_buf_append(&longer, "", 1)));
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&longer), &out).code,
            CF_E_TAMPERED);
        cf_buf_done(&out);
        cf_buf_done(&longer);
}

static void test_every_bit_flip_fails(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;

        for (size_t i = 0; i < f->file.size; i++) {
                for (unsigned bit = 0; bit < 8; bit++) {
                        cf_status s;
                        f->file.ptr[i] ^= (uint8_t)(1u << bit);
                        s = unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&f->file),
                                   &out);
                        f->file.ptr[i] ^= (uint8_t)(1u << bit);
                        assert_false(cf_ok(s));
                        assert_int_equal(out.size, 0);
                        cf_buf_done(&out);
                }
        }
}

static void test_header_errors_are_precise(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;

        f->file.ptr[0] = 'X';
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&f->file), &out).code,
            CF_E_MALFORMED);
        cf_buf_done(&out);
        f->file.ptr[0] = 'C';
        for (unsigned v = 0; v < 256; v++) {
                if (v == CAS_TLS_KEY_VERSION) {
                        continue;
                }
                f->file.ptr[4] = (uint8_t)v;
                assert_int_equal(
                    unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&f->file), &out)
                        .code,
                    CF_E_VERSION);
                cf_buf_done(&out);
        }
        f->file.ptr[4] = CAS_TLS_KEY_VERSION;
        f->file.ptr[5] = 7;
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_buf_slice(&f->file), &out).code,
            CF_E_CONFLICT);
        cf_buf_done(&out);
        f->file.ptr[5] = CAS_TLS_KEY_SEALED;
}

static void test_limits_and_arguments(void **state)
{
        struct fixture *f = *state;
        static uint8_t big[CAS_TLS_KEY_FILE_MAX + 1];
        struct cf_buf out;

        cf_buf_init(&out, CAS_TLS_KEY_FILE_MAX * 2, false);
        assert_int_equal(
            cas_tls_key_seal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_slice_make("", 0), &out)
                .code,
            CF_E_LIMIT);
        assert_int_equal(cas_tls_key_seal(CAS_TLS_KEY_SEALED, f->root, f->key_id,
                                          cf_slice_make(big, CAS_TLS_KEY_PEM_MAX + 1), &out)
                             .code,
                         CF_E_LIMIT);
        assert_int_equal(cas_tls_key_seal((enum cas_tls_key_purpose)9, f->root, f->key_id,
                                          cf_slice_str(g_pem), &out)
                             .code,
                         CF_E_INVALID_ARG);
        assert_int_equal(out.size, 0);
        /* The largest key is accepted, one byte more is not. */
        assert_true(cf_ok(cas_tls_key_seal(CAS_TLS_KEY_SEALED, f->root, f->key_id,
                                           cf_slice_make(big, CAS_TLS_KEY_PEM_MAX), &out)));
        assert_int_equal(out.size, CAS_TLS_KEY_FILE_MAX);
        cf_buf_done(&out);
        assert_int_equal(
            unseal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_slice_make(big, sizeof(big)), &out)
                .code,
            CF_E_LIMIT);
        cf_buf_done(&out);
        assert_int_equal(
            unseal((enum cas_tls_key_purpose)0, f->root, f->key_id, cf_buf_slice(&f->file), &out)
                .code,
            CF_E_INVALID_ARG);
        cf_buf_done(&out);
}

/* A seal that fails leaves out exactly as it was. */
static void test_failed_seal_appends_nothing(void **state)
{
        struct fixture *f = *state;
        struct cf_buf small;

        cf_buf_init(&small, CAS_TLS_KEY_HEADER_SIZE + 4, false);
        assert_true(cf_ok(cf_buf_append(&small, "ab", 2)));
        assert_false(cf_ok(
            cas_tls_key_seal(CAS_TLS_KEY_SEALED, f->root, f->key_id, cf_slice_str(g_pem), &small)));
        assert_int_equal(small.size, 2);
        cf_buf_done(&small);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_round_trip_and_layout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_recovery_purpose_round_trip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_two_seals_differ, setup, teardown),
            cmocka_unit_test_setup_teardown(test_wrong_root_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_other_certificate, setup, teardown),
            cmocka_unit_test_setup_teardown(test_every_truncation_fails, setup, teardown),
            cmocka_unit_test_setup_teardown(test_trailing_byte_fails, setup, teardown),
            cmocka_unit_test_setup_teardown(test_every_bit_flip_fails, setup, teardown),
            cmocka_unit_test_setup_teardown(test_header_errors_are_precise, setup, teardown),
            cmocka_unit_test_setup_teardown(test_limits_and_arguments, setup, teardown),
            cmocka_unit_test_setup_teardown(test_failed_seal_appends_nothing, setup, teardown),
        };

        if (!cf_ok(cf_crypto_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
