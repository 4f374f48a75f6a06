/* Unit tests of src/crypto: known answers, AEAD tamper detection, signatures, key ids and a
 * TLS 1.3 handshake in memory (exporter agreement and key-id pinning). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/codec.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "crypto/tls.h"

static int setup(void **state)
{
        (void)state;
        return cf_ok(cf_crypto_init()) ? 0 : -1;
}

static void test_sha_known_answers(void **state)
{
        struct cf_slice abc = cf_slice_str("abc");
        uint8_t h[64];
        char hex[129];

        (void)state;
        assert_int_equal(cf_sha256(&abc, 1, h).code, 0);
        cf_hex_encode(h, 32, hex, sizeof(hex));
        /* FIPS 180-2 appendix B.1 */
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_int_equal(cf_sha512(&abc, 1, h).code, 0);
        cf_hex_encode(h, 8, hex, sizeof(hex));
        assert_string_equal(hex, "ddaf35a193617aba"); /* FIPS 180-2 appendix C.1, first bytes */
        /* Parts are concatenated. */
        struct cf_slice parts[2] = { cf_slice_str("a"), cf_slice_str("bc") };
        uint8_t h2[32];
        assert_int_equal(cf_sha256(parts, 2, h2).code, 0);
        assert_int_equal(cf_sha256(&abc, 1, h).code, 0);
        assert_memory_equal(h, h2, 32);
}

static void test_hkdf_rfc5869_case1(void **state)
{
        uint8_t ikm[22], salt[13], info[10], okm[42];
        char hex[85];

        (void)state;
        memset(ikm, 0x0b, sizeof(ikm));
        for (unsigned i = 0; i < sizeof(salt); i++) {
                salt[i] = (uint8_t)i;
        }
        for (unsigned i = 0; i < sizeof(info); i++) {
                info[i] = (uint8_t)(0xf0 + i);
        }
        assert_int_equal(cf_hkdf_sha256(cf_slice_make(ikm, sizeof(ikm)),
                                        cf_slice_make(salt, sizeof(salt)),
                                        cf_slice_make(info, sizeof(info)), okm, sizeof(okm))
                                 .code,
                         0);
        cf_hex_encode(okm, sizeof(okm), hex, sizeof(hex));
        assert_string_equal(hex, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                                 "34007208d5b887185865");
}

static void test_hkdf_empty_salt(void **state)
{
        uint8_t a[32], b[32];

        (void)state;
        /* RFC 5869: an absent salt is a string of zeros; NULL and "" must both work alike. */
        assert_int_equal(cf_hkdf_sha256(cf_slice_str("ikm"), cf_slice_make(NULL, 0),
                                        cf_slice_str("info"), a, sizeof(a))
                                 .code,
                         0);
        assert_int_equal(cf_hkdf_sha256(cf_slice_str("ikm"), cf_slice_make("", 0),
                                        cf_slice_str("info"), b, sizeof(b))
                                 .code,
                         0);
        assert_memory_equal(a, b, sizeof(a));
}

static void test_aead_round_trip_and_tamper(void **state)
{
        uint8_t key[32], other[32];
        struct cf_buf sealed, plain;
        struct cf_slice aad = cf_slice_str("table|key|1");

        (void)state;
        assert_int_equal(cf_random(key, sizeof(key)).code, 0);
        memcpy(other, key, sizeof(key));
        other[0] ^= 1;
        cf_buf_init(&sealed, 4096, false);
        cf_buf_init(&plain, 4096, true);
        assert_int_equal(cf_aead_seal(key, aad, cf_slice_str("attack at dawn"), &sealed).code, 0);
        assert_int_equal(sealed.size, 14 + CF_AEAD_OVERHEAD);
        assert_int_equal(cf_aead_open(key, aad, cf_buf_slice(&sealed), &plain).code, 0);
        assert_int_equal(plain.size, 14);
        assert_memory_equal(plain.ptr, "attack at dawn", 14);
        for (size_t i = 0; i < sealed.size; i++) {
                cf_buf_reset(&plain);
                sealed.ptr[i] ^= 0x80;
                assert_int_equal(cf_aead_open(key, aad, cf_buf_slice(&sealed), &plain).code,
                                 CF_E_MAC_INVALID);
                assert_int_equal(plain.size, 0);
                sealed.ptr[i] ^= 0x80;
        }
        assert_int_equal(cf_aead_open(other, aad, cf_buf_slice(&sealed), &plain).code,
                         CF_E_MAC_INVALID);
        assert_int_equal(
                cf_aead_open(key, cf_slice_str("table|key|2"), cf_buf_slice(&sealed), &plain).code,
                CF_E_MAC_INVALID);
        for (size_t n = 0; n < sealed.size; n++) {
                assert_int_equal(cf_aead_open(key, aad, cf_slice_make(sealed.ptr, n), &plain).code,
                                 CF_E_MAC_INVALID);
        }
        cf_buf_done(&sealed);
        cf_buf_done(&plain);
}

static void check_sign_verify(enum cf_key_type type)
{
        struct cf_pkey *k = NULL, *pub = NULL;
        struct cf_buf sig, spki;
        struct cf_slice msg = cf_slice_str("coffer-approval-v1 shop/api");
        char id1[CF_KEY_ID_HEX], id2[CF_KEY_ID_HEX];

        assert_int_equal(cf_pkey_generate(type, &k).code, 0);
        assert_int_equal(cf_pkey_type(k), type);
        cf_buf_init(&sig, 1024, false);
        cf_buf_init(&spki, 4096, false);
        assert_int_equal(cf_sign(k, msg, &sig).code, 0);
        assert_int_equal(cf_pkey_spki_der(k, &spki).code, 0);
        assert_int_equal(cf_pkey_from_spki(cf_buf_slice(&spki), &pub).code, 0);
        assert_int_equal(cf_verify(pub, msg, cf_buf_slice(&sig)).code, 0);
        assert_int_equal(cf_pkey_key_id(k, id1).code, 0);
        assert_int_equal(cf_pkey_key_id(pub, id2).code, 0);
        assert_string_equal(id1, id2);
        sig.ptr[sig.size / 2] ^= 1;
        assert_int_equal(cf_verify(pub, msg, cf_buf_slice(&sig)).code, CF_E_SIG_INVALID);
        sig.ptr[sig.size / 2] ^= 1;
        assert_int_equal(cf_verify(pub, cf_slice_str("other"), cf_buf_slice(&sig)).code,
                         CF_E_SIG_INVALID);
        /* trailing bytes after the SPKI are refused */
        assert_int_equal(cf_buf_append(&spki, "x", 1).code, 0);
        struct cf_pkey *bad = NULL;
        assert_int_not_equal(cf_pkey_from_spki(cf_buf_slice(&spki), &bad).code, 0);
        cf_pkey_free(k);
        cf_pkey_free(pub);
        cf_buf_done(&sig);
        cf_buf_done(&spki);
}

static void test_signatures(void **state)
{
        (void)state;
        check_sign_verify(CF_KEY_ED25519);
        check_sign_verify(CF_KEY_P256);
        check_sign_verify(CF_KEY_P384);
}

static void test_pem_round_trip_and_garbage(void **state)
{
        struct cf_pkey *k = NULL, *k2 = NULL;
        struct cf_buf pem;

        (void)state;
        cf_buf_init(&pem, 1 << 16, true);
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &k).code, 0);
        assert_int_equal(cf_pkey_private_pem(k, &pem).code, 0);
        assert_int_equal(cf_pkey_from_pem(cf_buf_slice(&pem), true, &k2).code, 0);
        assert_int_equal(cf_pkey_type(k2), CF_KEY_P256);
        cf_pkey_free(k2);
        pem.ptr[pem.size / 2] ^= 0x55;
        k2 = NULL;
        assert_int_not_equal(cf_pkey_from_pem(cf_buf_slice(&pem), true, &k2).code, 0);
        assert_int_not_equal(cf_pkey_from_pem(cf_slice_str("not a key"), true, &k2).code, 0);
        cf_pkey_free(k);
        cf_buf_done(&pem);
}

/* Pumps bytes between two memory BIO pairs until both handshakes finish (bounded). */
static void handshake(SSL *client, SSL *server)
{
        int c = 0, s = 0;

        for (int i = 0; i < 100 && (c != 1 || s != 1); i++) {
                if (c != 1) {
                        c = SSL_connect(client);
                }
                if (s != 1) {
                        s = SSL_accept(server);
                }
        }
        assert_int_equal(c, 1);
        assert_int_equal(s, 1);
}

static void test_tls13_exporter_and_pinning(void **state)
{
        struct cf_pkey *skey = NULL, *ckey = NULL;
        struct cf_buf scert, ccert;
        SSL_CTX *sctx = NULL, *cctx = NULL;
        SSL *server, *client;
        BIO *b1, *b2;
        uint8_t e1[32], e2[32];
        char server_id[CF_KEY_ID_HEX], client_id[CF_KEY_ID_HEX], seen[CF_KEY_ID_HEX];

        (void)state;
        cf_buf_init(&scert, 1 << 16, false);
        cf_buf_init(&ccert, 1 << 16, false);
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &skey).code, 0);
        assert_int_equal(cf_pkey_generate(CF_KEY_P256, &ckey).code, 0);
        assert_int_equal(cf_x509_self_signed(skey, "cofferd", 1, &scert).code, 0);
        assert_int_equal(cf_x509_self_signed(ckey, "alice", 1, &ccert).code, 0);
        assert_int_equal(cf_x509_pem_key_id(cf_buf_slice(&scert), server_id).code, 0);
        assert_int_equal(cf_pkey_key_id(ckey, client_id).code, 0);
        assert_int_equal(cf_tls_server_ctx(cf_buf_slice(&scert), skey, true, &sctx).code, 0);
        assert_int_equal(cf_tls_client_ctx(cf_buf_slice(&ccert), ckey, &cctx).code, 0);
        server = SSL_new(sctx);
        client = SSL_new(cctx);
        assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
        SSL_set_bio(client, b1, b1);
        SSL_set_bio(server, b2, b2);
        handshake(client, server);
        assert_int_equal(SSL_version(client), TLS1_3_VERSION);
        assert_int_equal(cf_tls_exporter(client, "EXPORTER-coffer-activation", e1).code, 0);
        assert_int_equal(cf_tls_exporter(server, "EXPORTER-coffer-activation", e2).code, 0);
        assert_memory_equal(e1, e2, 32);
        assert_int_equal(cf_tls_exporter(server, "EXPORTER-other", e2).code, 0);
        assert_memory_not_equal(e1, e2, 32);
        assert_int_equal(cf_tls_check_peer(client, server_id).code, 0);
        assert_int_equal(cf_tls_check_peer(client, client_id).code, CF_E_PEER);
        assert_int_equal(cf_tls_check_peer(client, "00").code, CF_E_PEER);
        assert_int_equal(cf_tls_peer_key_id(server, seen).code, 0);
        assert_string_equal(seen, client_id);
        SSL_free(client);
        SSL_free(server);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        cf_pkey_free(skey);
        cf_pkey_free(ckey);
        cf_buf_done(&scert);
        cf_buf_done(&ccert);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sha_known_answers),
                cmocka_unit_test(test_hkdf_rfc5869_case1),
                cmocka_unit_test(test_hkdf_empty_salt),
                cmocka_unit_test(test_aead_round_trip_and_tamper),
                cmocka_unit_test(test_signatures),
                cmocka_unit_test(test_pem_round_trip_and_garbage),
                cmocka_unit_test(test_tls13_exporter_and_pinning),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
