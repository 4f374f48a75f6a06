/* Unit tests of src/crypto/ecies.c: round trips on P-256 and P-384, an independent
 * re-derivation of the documented format, and refusal of wrong keys, wrong info, every byte
 * flip, every truncation, unknown versions, bad lengths and mismatched curves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "base/mem.h"
#include "crypto/crypto.h"
#include "crypto/ecies.h"

static int setup(void **state)
{
        (void)state;
        return cf_ok(cf_crypto_init()) ? 0 : -1;
}

#define INFO "coffer-recovery-share-v1"

static void seal_one(const struct cf_pkey *k, const char *info, struct cf_slice plain,
                     struct cf_buf *out)
{
        cf_buf_init(out, 1 << 21, false);
        assert_int_equal(cf_ecies_seal(k, cf_slice_str(info), plain, out).code, 0);
}

static void round_trip(enum cf_key_type type, size_t spki_size)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *priv = NULL;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *pub = NULL;
        struct cf_buf spki, sealed, sealed2, plain;
        uint8_t secret[33];

        assert_int_equal(cf_pkey_generate(type, &priv).code, 0);
        cf_buf_init(&spki, 4096, false);
        assert_int_equal(cf_pkey_spki_der(priv, &spki).code, 0);
        assert_int_equal(cf_pkey_from_spki(cf_buf_slice(&spki), &pub).code, 0);
        assert_int_equal(cf_random(secret, sizeof(secret)).code, 0);

        /* Sealed to the public key alone (what cofferd has), opened with the private key. */
        seal_one(pub, INFO, cf_slice_make(secret, sizeof(secret)), &sealed);
        assert_int_equal(sealed.size,
                         3 + spki_size + CF_AEAD_NONCE_SIZE + sizeof(secret) + CF_AEAD_TAG_SIZE);
        assert_int_equal(sealed.ptr[0], CF_ECIES_VERSION);
        assert_int_equal((sealed.ptr[1] << 8) | sealed.ptr[2], spki_size);
        cf_buf_init(&plain, 4096, true);
        assert_int_equal(
            cf_ecies_open(priv, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code, 0);
        assert_int_equal(plain.size, sizeof(secret));
        assert_memory_equal(plain.ptr, secret, sizeof(secret));

        /* A fresh ephemeral key each time. */
        seal_one(pub, INFO, cf_slice_make(secret, sizeof(secret)), &sealed2);
        assert_int_equal(sealed2.size, sealed.size);
        assert_memory_not_equal(sealed2.ptr, sealed.ptr, sealed.size);

        /* Empty plaintext and empty info work too. */
        cf_buf_reset(&sealed2);
        cf_buf_reset(&plain);
        assert_int_equal(
            cf_ecies_seal(pub, cf_slice_make(NULL, 0), cf_slice_make(NULL, 0), &sealed2).code, 0);
        assert_int_equal(
            cf_ecies_open(priv, cf_slice_make(NULL, 0), cf_buf_slice(&sealed2), &plain).code, 0);
        assert_int_equal(plain.size, 0);

        cf_buf_done(&spki);
        cf_buf_done(&sealed);
        cf_buf_done(&sealed2);
        cf_buf_done(&plain);
}

static void test_round_trip_p256(void **state)
{
        (void)state;
        round_trip(CF_KEY_P256, 91);
}

static void test_round_trip_p384(void **state)
{
        (void)state;
        round_trip(CF_KEY_P384, 120);
}

/* Re-derives the key from the documented format with OpenSSL directly (not through the
 * module's code), so the document and the code cannot drift apart silently. */
static void test_format_matches_documentation(void **state)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *priv = NULL;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *eph = NULL;
        struct cf_buf sealed, rcpt, plain;
        uint8_t shared[48], salt[CF_ECIES_SPKI_MAX + 32], key[32];
        size_t shared_size = sizeof(shared);

        (void)state;
        assert_int_equal(cf_pkey_generate(CF_KEY_P384, &priv).code, 0);
        seal_one(priv, INFO, cf_slice_str("the data key share"), &sealed);
        size_t spki_size = (size_t)((sealed.ptr[1] << 8) | sealed.ptr[2]);
        struct cf_slice spki = cf_slice_make(sealed.ptr + 3, spki_size);
        assert_int_equal(cf_pkey_from_spki(spki, &eph).code, 0);

        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(cf_pkey_evp(priv), NULL);
        assert_non_null(ctx);
        assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
        assert_int_equal(EVP_PKEY_derive_set_peer(ctx, cf_pkey_evp(eph)), 1);
        assert_int_equal(EVP_PKEY_derive(ctx, shared, &shared_size), 1);
        EVP_PKEY_CTX_free(ctx);
        assert_int_equal(shared_size, 48);

        cf_buf_init(&rcpt, 4096, false);
        assert_int_equal(cf_pkey_spki_der(priv, &rcpt).code, 0);
        struct cf_slice rs = cf_buf_slice(&rcpt);
        memcpy(salt, spki.ptr, spki_size);
        assert_int_equal(cf_sha256(&rs, 1, salt + spki_size).code, 0);
        assert_int_equal(cf_hkdf_sha256(cf_slice_make(shared, shared_size),
                                        cf_slice_make(salt, spki_size + 32), cf_slice_str(INFO),
                                        key, sizeof(key))
                             .code,
                         0);
        cf_buf_init(&plain, 4096, true);
        assert_int_equal(
            cf_aead_open(key, cf_slice_make(sealed.ptr, 3 + spki_size),
                         cf_slice_make(sealed.ptr + 3 + spki_size, sealed.size - 3 - spki_size),
                         &plain)
                .code,
            0);
        assert_int_equal(plain.size, strlen("the data key share"));
        assert_memory_equal(plain.ptr, "the data key share", plain.size);
        cf_buf_done(&sealed);
        cf_buf_done(&rcpt);
        cf_buf_done(&plain);
}

static void test_wrong_key_and_wrong_info(void **state)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *alice = NULL;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *bob = NULL;
        struct cf_buf sealed, plain;

        (void)state;
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &alice).code, 0);
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &bob).code, 0);
        seal_one(alice, INFO, cf_slice_str("share"), &sealed);
        cf_buf_init(&plain, 4096, true);
        assert_int_equal(cf_ecies_open(bob, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code,
                         CF_E_MAC_INVALID);
        assert_int_equal(cf_ecies_open(alice, cf_slice_str("coffer-recovery-share-v2"),
                                       cf_buf_slice(&sealed), &plain)
                             .code,
                         CF_E_MAC_INVALID);
        assert_int_equal(plain.size, 0);
        assert_int_equal(
            cf_ecies_open(alice, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code, 0);
        cf_buf_done(&sealed);
        cf_buf_done(&plain);
}

static void test_every_flip_and_truncation_fails(void **state)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *k = NULL;
        struct cf_buf sealed, plain, longer;

        (void)state;
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &k).code, 0);
        seal_one(k, INFO, cf_slice_str("0123456789abcdef0123456789abcdef"), &sealed);
        cf_buf_init(&plain, 4096, true);
        for (size_t i = 0; i < sealed.size; i++) {
                for (unsigned bit = 0; bit < 8; bit += 3) {
                        sealed.ptr[i] ^= (uint8_t)(1u << bit);
                        cf_status s =
                            cf_ecies_open(k, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain);
                        if (s.code == 0) {
                                fail_msg("flip of bit %u at offset %zu accepted", bit, i);
                        }
                        assert_int_equal(plain.size, 0);
                        sealed.ptr[i] ^= (uint8_t)(1u << bit);
                }
        }
        for (size_t n = 0; n < sealed.size; n++) {
                cf_status s =
                    cf_ecies_open(k, cf_slice_str(INFO), cf_slice_make(sealed.ptr, n), &plain);
                if (s.code == 0) {
                        fail_msg("truncation to %zu bytes accepted", n);
                }
                assert_int_equal(plain.size, 0);
        }
        /* A trailing byte changes the tag's position: refused too. */
        cf_buf_init(&longer, 4096, false);
        assert_int_equal(cf_buf_append(&longer, sealed.ptr, sealed.size).code, 0);
        assert_int_equal(cf_buf_append(&longer, "\0", 1).code, 0);
        assert_int_not_equal(
            cf_ecies_open(k, cf_slice_str(INFO), cf_buf_slice(&longer), &plain).code, 0);
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code,
                         0);
        cf_buf_done(&sealed);
        cf_buf_done(&plain);
        cf_buf_done(&longer);
}

static void test_header_checks(void **state)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *k = NULL;
        struct cf_buf sealed, plain;

        (void)state;
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &k).code, 0);
        seal_one(k, INFO, cf_slice_str("x"), &sealed);
        cf_buf_init(&plain, 4096, true);
        struct cf_slice in = cf_buf_slice(&sealed);

        sealed.ptr[0] = 2; /* unknown version */
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, CF_E_VERSION);
        sealed.ptr[0] = 0;
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, CF_E_VERSION);
        sealed.ptr[0] = CF_ECIES_VERSION;

        uint8_t hi = sealed.ptr[1], lo = sealed.ptr[2];
        sealed.ptr[1] = 0;
        sealed.ptr[2] = 0; /* empty key */
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, CF_E_MALFORMED);
        sealed.ptr[1] = 0x01;
        sealed.ptr[2] = 0x01; /* 257 > CF_ECIES_SPKI_MAX */
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, CF_E_LIMIT);
        sealed.ptr[1] = 0xff;
        sealed.ptr[2] = 0xff;
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, CF_E_LIMIT);
        sealed.ptr[1] = 0;
        sealed.ptr[2] = 0xff; /* 255: within the limit, past the end of this message */
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, CF_E_TRUNCATED);
        sealed.ptr[1] = hi;
        sealed.ptr[2] = (uint8_t)(lo - 1); /* key one byte short: DER no longer parses */
        assert_int_not_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, 0);
        sealed.ptr[2] = lo;

        /* Header intact but no room for nonce and tag. */
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO),
                                       cf_slice_make(sealed.ptr, 3 + 91 + CF_AEAD_OVERHEAD - 1),
                                       &plain)
                             .code,
                         CF_E_TRUNCATED);
        assert_int_equal(plain.size, 0);
        assert_int_equal(cf_ecies_open(k, cf_slice_str(INFO), in, &plain).code, 0);
        cf_buf_done(&sealed);
        cf_buf_done(&plain);
}

static void test_curve_mismatch_and_key_types(void **state)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *p256 = NULL;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *p384 = NULL;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *ed = NULL;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *pub = NULL;
        struct cf_buf sealed, plain, spki, forged;

        (void)state;
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &p256).code, 0);
        assert_int_equal(cf_pkey_generate(CF_KEY_P384, &p384).code, 0);
        assert_int_equal(cf_pkey_generate(CF_KEY_ED25519, &ed).code, 0);
        cf_buf_init(&plain, 4096, true);

        /* A P-384 message offered to a P-256 key: refused before any ECDH. */
        seal_one(p384, INFO, cf_slice_str("share"), &sealed);
        assert_int_equal(
            cf_ecies_open(p256, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code, CF_E_KEY);

        /* A header carrying an Ed25519 key in place of the ephemeral EC key. */
        cf_buf_init(&spki, 4096, false);
        cf_buf_init(&forged, 4096, false);
        assert_int_equal(cf_pkey_spki_der(ed, &spki).code, 0);
        uint8_t hdr[3] = {CF_ECIES_VERSION, 0, (uint8_t)spki.size};
        assert_int_equal(cf_buf_append(&forged, hdr, 3).code, 0);
        assert_int_equal(cf_buf_append(&forged, spki.ptr, spki.size).code, 0);
        assert_int_equal(cf_buf_append(&forged, sealed.ptr + sealed.size - 28, 28).code, 0);
        assert_int_equal(
            cf_ecies_open(p256, cf_slice_str(INFO), cf_buf_slice(&forged), &plain).code, CF_E_KEY);

        /* Only P-256 and P-384 recipients. */
        struct cf_buf out;
        cf_buf_init(&out, 4096, false);
        assert_int_equal(cf_ecies_seal(ed, cf_slice_str(INFO), cf_slice_str("x"), &out).code,
                         CF_E_KEY);
        assert_int_equal(out.size, 0);
        assert_int_equal(cf_ecies_open(ed, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code,
                         CF_E_KEY);

        /* Opening needs the private key. */
        cf_buf_reset(&spki);
        assert_int_equal(cf_pkey_spki_der(p384, &spki).code, 0);
        assert_int_equal(cf_pkey_from_spki(cf_buf_slice(&spki), &pub).code, 0);
        assert_int_not_equal(
            cf_ecies_open(pub, cf_slice_str(INFO), cf_buf_slice(&sealed), &plain).code, 0);
        assert_int_equal(plain.size, 0);

        /* Limits. */
        static uint8_t big[CF_ECIES_PLAIN_MAX + 1];
        assert_int_equal(
            cf_ecies_seal(p256, cf_slice_str(INFO), cf_slice_make(big, sizeof(big)), &out).code,
            CF_E_LIMIT);
        assert_int_equal(
            cf_ecies_seal(p256, cf_slice_make(big, CF_ECIES_INFO_MAX + 1), cf_slice_str("x"), &out)
                .code,
            CF_E_LIMIT);
        assert_int_equal(out.size, 0);

        cf_buf_done(&sealed);
        cf_buf_done(&plain);
        cf_buf_done(&spki);
        cf_buf_done(&forged);
        cf_buf_done(&out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip_p256),
            cmocka_unit_test(test_round_trip_p384),
            cmocka_unit_test(test_format_matches_documentation),
            cmocka_unit_test(test_wrong_key_and_wrong_info),
            cmocka_unit_test(test_every_flip_and_truncation_fails),
            cmocka_unit_test(test_header_checks),
            cmocka_unit_test(test_curve_mismatch_and_key_types),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
