/* Unit tests of src/store/keywrap.c: data-key wrapping under a sealing key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/cursor.h"
#include "crypto/crypto.h"
#include "store/keywrap.h"

static void random_key(uint8_t k[static STORE_WRAP_KEY_SIZE])
{
        assert_int_equal(cf_random(k, STORE_WRAP_KEY_SIZE).code, 0);
}

static void test_round_trip(void **state)
{
        uint8_t seal[32], data[32], back[32];
        struct cf_buf w1, w2;

        (void)state;
        random_key(seal);
        random_key(data);
        cf_buf_init(&w1, 256, false);
        cf_buf_init(&w2, 256, false);
        assert_int_equal(store_wrap_key(seal, data, &w1).code, 0);
        assert_int_equal(w1.size, STORE_WRAPPED_KEY_SIZE);
        assert_int_equal(store_unwrap_key(seal, cf_buf_slice(&w1), back).code, 0);
        assert_memory_equal(back, data, 32);
        /* A fresh nonce each time: two wraps of one key differ but both unwrap. */
        assert_int_equal(store_wrap_key(seal, data, &w2).code, 0);
        assert_memory_not_equal(w1.ptr, w2.ptr, STORE_WRAPPED_KEY_SIZE);
        memset(back, 0, sizeof(back));
        assert_int_equal(store_unwrap_key(seal, cf_buf_slice(&w2), back).code, 0);
        assert_memory_equal(back, data, 32);
        /* The ciphertext does not contain the key in clear. */
        assert_null(memmem(w1.ptr, w1.size, data, 32));
        cf_buf_done(&w1);
        cf_buf_done(&w2);
}

static void test_wrong_sealing_key(void **state)
{
        uint8_t seal[32], other[32], data[32], back[32];
        struct cf_buf w;

        (void)state;
        random_key(seal);
        random_key(data);
        memcpy(other, seal, sizeof(other));
        cf_buf_init(&w, 256, false);
        assert_int_equal(store_wrap_key(seal, data, &w).code, 0);
        for (size_t i = 0; i < sizeof(other); i++) {
                other[i] ^= 0x80;
                memset(back, 0xee, sizeof(back));
                assert_int_equal(store_unwrap_key(other, cf_buf_slice(&w), back).code,
                                 CF_E_TAMPERED);
                /* Output untouched on failure. */
                for (size_t j = 0; j < sizeof(back); j++) {
                        assert_int_equal(back[j], 0xee);
                }
                other[i] ^= 0x80;
        }
        cf_buf_done(&w);
}

static void test_tampered_and_truncated(void **state)
{
        uint8_t seal[32], data[32], back[32], mod[STORE_WRAPPED_KEY_SIZE + 1];
        struct cf_buf w;

        (void)state;
        random_key(seal);
        random_key(data);
        cf_buf_init(&w, 256, false);
        assert_int_equal(store_wrap_key(seal, data, &w).code, 0);
        for (size_t i = 0; i < STORE_WRAPPED_KEY_SIZE; i++) {
                for (unsigned bit = 0; bit < 8; bit++) {
                        memcpy(mod, w.ptr, STORE_WRAPPED_KEY_SIZE);
                        mod[i] ^= (uint8_t)(1u << bit);
                        assert_int_equal(
                            store_unwrap_key(seal, cf_slice_make(mod, STORE_WRAPPED_KEY_SIZE), back)
                                .code,
                            CF_E_TAMPERED);
                }
        }
        for (size_t n = 0; n < STORE_WRAPPED_KEY_SIZE; n++) {
                assert_int_equal(store_unwrap_key(seal, cf_slice_make(w.ptr, n), back).code,
                                 CF_E_MALFORMED);
        }
        memcpy(mod, w.ptr, STORE_WRAPPED_KEY_SIZE);
        mod[STORE_WRAPPED_KEY_SIZE] = 0;
        assert_int_equal(store_unwrap_key(seal, cf_slice_make(mod, sizeof(mod)), back).code,
                         CF_E_MALFORMED);
        assert_int_equal(store_unwrap_key(seal, cf_slice_make(NULL, 0), back).code, CF_E_MALFORMED);
        cf_buf_done(&w);
}

static void test_out_limit(void **state)
{
        uint8_t seal[32], data[32];
        struct cf_buf w;

        (void)state;
        random_key(seal);
        random_key(data);
        cf_buf_init(&w, STORE_WRAPPED_KEY_SIZE - 1, false);
        assert_int_equal(store_wrap_key(seal, data, &w).code, CF_E_LIMIT);
        assert_int_equal(w.size, 0);
        cf_buf_done(&w);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_wrong_sealing_key),
            cmocka_unit_test(test_tampered_and_truncated),
            cmocka_unit_test(test_out_limit),
        };

        if (!cf_ok(cf_crypto_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
