/* Unit tests of the certificate-request half of src/crypto/x509.c: requests made by
 * cf_x509_csr_create for every algorithm verify and name their key; certificates issued for
 * a bare public key (cf_x509_issue_for_key) verify under their CA with OpenSSL's verifier and
 * carry what the request says, never what the CSR says; and refusals: truncation at every
 * offset, bit flips anywhere, weak or unsupported keys, weak signature hashes, versions, and
 * every way a PEM text can be more than one clean block. Keys are generated at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"

static const enum cf_x509_alg g_algs[] = {CF_X509_ED25519, CF_X509_P256,    CF_X509_P384,
                                          CF_X509_RSA2048, CF_X509_RSA3072, CF_X509_RSA4096};

static void keygen(enum cf_x509_alg alg, struct cf_buf *out)
{
        cf_buf_init(out, CF_X509_KEY_MAX, true);
        assert_int_equal(cf_x509_key_generate(alg, out).code, 0);
}

static void make_csr(const struct cf_buf *key, const char *cn, struct cf_buf *pem)
{
        cf_buf_init(pem, CF_X509_CSR_MAX, false);
        assert_int_equal(cf_x509_csr_create(cf_buf_slice(key), cn, pem).code, 0);
}

/* A request made directly with OpenSSL, for what cf_x509_csr_create never makes: any key,
 * any digest, a subject and a subjectAltName extension. Returns the PEM text. */
static void ossl_csr(EVP_PKEY *k, const EVP_MD *md, const char *cn, const char *san,
                     struct cf_buf *pem)
{
        X509_REQ *req = X509_REQ_new();
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        long n;

        assert_non_null(req);
        assert_non_null(bio);
        assert_int_equal(X509_REQ_set_version(req, X509_REQ_VERSION_1), 1);
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                                    MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                                    0),
                         1);
        if (san != NULL) {
                STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
                assert_non_null(e);
                assert_true(sk_X509_EXTENSION_push(exts, e) > 0);
                assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        }
        assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
        assert_true(X509_REQ_sign(req, k, md) > 0);
        assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
        n = BIO_get_mem_data(bio, &data);
        cf_buf_init(pem, 1u << 20, false);
        assert_int_equal(cf_buf_append(pem, data, (size_t)n).code, 0);
        BIO_free(bio);
        X509_REQ_free(req);
}

/* The DER inside a PEM request. */
static void pem_to_der(const struct cf_buf *pem, struct cf_buf *der)
{
        BIO *bio = BIO_new_mem_buf(pem->ptr, (int)pem->size);
        X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
        unsigned char *d = NULL;
        int n;

        assert_non_null(req);
        n = i2d_X509_REQ(req, &d);
        assert_true(n > 0);
        cf_buf_init(der, CF_X509_CSR_MAX, false);
        assert_int_equal(cf_buf_append(der, d, (size_t)n).code, 0);
        OPENSSL_free(d);
        X509_REQ_free(req);
        BIO_free(bio);
}

/* The PEM of arbitrary DER bytes labelled as a request. */
static void der_to_pem(const uint8_t *der, size_t n, struct cf_buf *pem)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len;

        assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der, (long)n) > 0);
        len = BIO_get_mem_data(bio, &data);
        cf_buf_init(pem, 1u << 20, false);
        assert_int_equal(cf_buf_append(pem, data, (size_t)len).code, 0);
        BIO_free(bio);
}

static int parse_pem(const char *text, struct cf_x509_csr_key *k)
{
        return cf_x509_csr_parse_verify(cf_slice_str(text), k).code;
}

static void test_alg_names(void **state)
{
        enum cf_x509_alg a = CF_X509_P256;

        (void)state;
        for (size_t i = 0; i < sizeof(g_algs) / sizeof(g_algs[0]); i++) {
                const char *name = cf_x509_alg_name(g_algs[i]);
                assert_non_null(name);
                assert_int_equal(cf_x509_alg_parse(name, &a).code, 0);
                assert_int_equal(a, g_algs[i]);
        }
        assert_null(cf_x509_alg_name((enum cf_x509_alg)0));
        assert_null(cf_x509_alg_name((enum cf_x509_alg)7));
        a = CF_X509_P384;
        assert_int_equal(cf_x509_alg_parse("rsa1024", &a).code, CF_E_UNSUPPORTED);
        assert_int_equal(cf_x509_alg_parse("P256", &a).code, CF_E_UNSUPPORTED);
        assert_int_equal(cf_x509_alg_parse("", &a).code, CF_E_UNSUPPORTED);
        assert_int_equal(cf_x509_alg_parse(NULL, &a).code, CF_E_UNSUPPORTED);
        assert_int_equal(a, CF_X509_P384); /* untouched on failure */
}

/* Every algorithm: the request verifies, names its algorithm, and its key is the key's. */
static void test_create_and_verify_every_algorithm(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(g_algs) / sizeof(g_algs[0]); i++) {
                struct cf_buf key, pem, spki;
                struct cf_x509_csr_key k;

                keygen(g_algs[i], &key);
                make_csr(&key, "workload", &pem);
                assert_memory_equal(pem.ptr, "-----BEGIN CERTIFICATE REQUEST-----\n", 36);
                assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, 0);
                assert_int_equal(k.alg, g_algs[i]);
                cf_buf_init(&spki, 4096, false);
                assert_int_equal(cf_x509_public_key(cf_buf_slice(&key), false, false, &spki).code,
                                 0);
                assert_int_equal(k.spki_size, spki.size);
                assert_memory_equal(k.spki, spki.ptr, spki.size);
                cf_buf_done(&spki);
                cf_buf_done(&pem);
                cf_buf_done(&key);
        }
}

static void test_create_refuses_bad_arguments(void **state)
{
        struct cf_buf key, pem;
        char long_cn[CF_X509_CN_MAX + 2];

        (void)state;
        keygen(CF_X509_P256, &key);
        cf_buf_init(&pem, CF_X509_CSR_MAX, false);
        memset(long_cn, 'a', sizeof(long_cn) - 1);
        long_cn[sizeof(long_cn) - 1] = 0;
        assert_int_equal(cf_x509_csr_create(cf_buf_slice(&key), "", &pem).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_x509_csr_create(cf_buf_slice(&key), long_cn, &pem).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(cf_x509_csr_create(cf_buf_slice(&key), "a\nb", &pem).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(cf_x509_csr_create(cf_buf_slice(&key), NULL, &pem).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_x509_csr_create(cf_slice_make(key.ptr, key.size - 1), "x", &pem).code,
                         CF_E_KEY);
        assert_int_equal(pem.size, 0);
        cf_buf_done(&pem);
        cf_buf_done(&key);
}

/* A CA, then a leaf for a CSR's key whose subject and SANs say something else: the
 * certificate verifies under the CA, holds the CSR's key, and only the request's names. */
static void test_issue_for_key(void **state)
{
        static const char *const dns[] = {"svc.internal"};
        static const char *const ip[] = {"10.1.2.3"};
        struct cf_x509_request ca_req = {
            .common_name = "Workload CA", .ca = true, .path_len = 0, .days = 100};
        struct cf_x509_request leaf = {.common_name = "server",
                                       .path_len = -1,
                                       .dns = dns,
                                       .n_dns = 1,
                                       .ip = ip,
                                       .n_ip = 1,
                                       .eku = CF_X509_EKU_SERVER,
                                       .days = 30};
        struct cf_buf ca_key, ca_cert, wl_key, pem, cert;
        struct cf_x509_csr_key k;
        EVP_PKEY *wk;
        const unsigned char *p;
        X509 *ca, *x;
        X509_STORE *store;
        X509_STORE_CTX *ctx;
        GENERAL_NAMES *names;
        X509_NAME_ENTRY *e;
        char cn[80];

        (void)state;
        keygen(CF_X509_P384, &ca_key);
        cf_buf_init(&ca_cert, CF_X509_CERT_MAX, false);
        assert_int_equal(cf_x509_issue(&ca_req, cf_buf_slice(&ca_key), cf_slice_make(NULL, 0),
                                       cf_slice_make(NULL, 0), &ca_cert)
                             .code,
                         0);
        keygen(CF_X509_P256, &wl_key);
        p = wl_key.ptr;
        wk = d2i_AutoPrivateKey(NULL, &p, (long)wl_key.size);
        assert_non_null(wk);
        ossl_csr(wk, EVP_sha256(), "evil.example", "DNS:evil.example,IP:6.6.6.6", &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, 0);
        assert_int_equal(k.alg, CF_X509_P256);

        cf_buf_init(&cert, CF_X509_CERT_MAX, false);
        assert_int_equal(cf_x509_issue_for_key(&leaf, cf_slice_make(k.spki, k.spki_size),
                                               cf_buf_slice(&ca_key), cf_buf_slice(&ca_cert), &cert)
                             .code,
                         0);
        p = cert.ptr;
        x = d2i_X509(NULL, &p, (long)cert.size);
        assert_non_null(x);
        p = ca_cert.ptr;
        ca = d2i_X509(NULL, &p, (long)ca_cert.size);
        assert_non_null(ca);
        /* the certificate is for the workload's key, and verifies under the CA */
        assert_int_equal(X509_check_private_key(x, wk), 1);
        store = X509_STORE_new();
        ctx = X509_STORE_CTX_new();
        assert_int_equal(X509_STORE_add_cert(store, ca), 1);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
        assert_int_equal(X509_verify_cert(ctx), 1);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        /* names from the request only */
        e = X509_NAME_get_entry(X509_get_subject_name(x), 0);
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 1);
        assert_int_equal(
            X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)), 6);
        assert_string_equal(cn, "server");
        assert_non_null(e);
        names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        assert_non_null(names);
        assert_int_equal(sk_GENERAL_NAME_num(names), 2);
        assert_int_equal(sk_GENERAL_NAME_value(names, 0)->type, GEN_DNS);
        assert_string_equal(
            (const char *)ASN1_STRING_get0_data(sk_GENERAL_NAME_value(names, 0)->d.dNSName),
            "svc.internal");
        GENERAL_NAMES_free(names);
        assert_true((X509_get_extended_key_usage(x) & XKU_SSL_SERVER) != 0);
        assert_true((X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) == 0);
        assert_int_equal(X509_check_ca(x), 0);
        /* cf_x509_cert_info: the serial as openssl prints it (lower case), notAfter */
        {
                char serial[CF_X509_SERIAL_HEX_MAX], *hex;
                int64_t not_after = 0;
                BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
                time_t now = time(NULL);

                assert_int_equal(cf_x509_cert_info(cf_buf_slice(&cert), serial, &not_after).code,
                                 0);
                hex = BN_bn2hex(bn);
                for (char *h = hex; *h; h++) {
                        *h = (char)(*h >= 'A' && *h <= 'F' ? *h - 'A' + 'a' : *h);
                }
                assert_string_equal(serial, hex);
                assert_true(strlen(serial) >= 30);
                OPENSSL_free(hex);
                BN_free(bn);
                assert_true(not_after >= (int64_t)now + 30 * 86400 - 5 &&
                            not_after <= (int64_t)now + 30 * 86400 + 5);
                assert_int_equal(
                    cf_x509_cert_info(cf_slice_make(cert.ptr, cert.size - 1), serial, &not_after)
                        .code,
                    CF_E_CERT);
        }

        /* refusals: a key that does not parse, trailing bytes, no issuer, a bad request */
        cert.size = 0;
        assert_int_equal(cf_x509_issue_for_key(&leaf, cf_slice_make(k.spki, k.spki_size - 1),
                                               cf_buf_slice(&ca_key), cf_buf_slice(&ca_cert), &cert)
                             .code,
                         CF_E_KEY);
        {
                uint8_t longer[CF_X509_SPKI_MAX + 1] = {0};
                memcpy(longer, k.spki, k.spki_size);
                assert_int_equal(
                    cf_x509_issue_for_key(&leaf, cf_slice_make(longer, k.spki_size + 1),
                                          cf_buf_slice(&ca_key), cf_buf_slice(&ca_cert), &cert)
                        .code,
                    CF_E_KEY);
        }
        assert_int_equal(cf_x509_issue_for_key(&leaf, cf_slice_make(k.spki, k.spki_size),
                                               cf_slice_make(NULL, 0), cf_slice_make(NULL, 0),
                                               &cert)
                             .code,
                         CF_E_INVALID_ARG);
        /* the issuer's key must be the issuer certificate's */
        assert_int_equal(cf_x509_issue_for_key(&leaf, cf_slice_make(k.spki, k.spki_size),
                                               cf_buf_slice(&wl_key), cf_buf_slice(&ca_cert), &cert)
                             .code,
                         CF_E_KEY);
        leaf.days = 0;
        assert_int_equal(cf_x509_issue_for_key(&leaf, cf_slice_make(k.spki, k.spki_size),
                                               cf_buf_slice(&ca_key), cf_buf_slice(&ca_cert), &cert)
                             .code,
                         CF_E_INVALID_ARG);
        assert_int_equal(cert.size, 0);

        X509_free(ca);
        X509_free(x);
        EVP_PKEY_free(wk);
        cf_buf_done(&cert);
        cf_buf_done(&pem);
        cf_buf_done(&wl_key);
        cf_buf_done(&ca_cert);
        cf_buf_done(&ca_key);
}

/* Weak and unsupported keys and signature hashes. */
static void test_refused_keys_and_hashes(void **state)
{
        struct cf_x509_csr_key k;
        struct cf_buf pem;
        EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        EVP_PKEY *rsa2560 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2560);
        EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
        EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
        EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");

        (void)state;
        assert_non_null(rsa1024);
        assert_non_null(rsa2560);
        assert_non_null(p521);
        assert_non_null(k1);
        assert_non_null(p256);
        assert_non_null(ed448);
        ossl_csr(rsa1024, EVP_sha256(), "weak", NULL, &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, CF_E_KEY);
        cf_buf_done(&pem);
        ossl_csr(rsa2560, EVP_sha256(), "odd", NULL, &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, CF_E_UNSUPPORTED);
        cf_buf_done(&pem);
        ossl_csr(p521, EVP_sha512(), "p521", NULL, &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, CF_E_UNSUPPORTED);
        cf_buf_done(&pem);
        ossl_csr(k1, EVP_sha256(), "k1", NULL, &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, CF_E_UNSUPPORTED);
        cf_buf_done(&pem);
        ossl_csr(ed448, NULL, "ed448", NULL, &pem);
        assert_int_not_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, 0);
        cf_buf_done(&pem);
        /* SHA-1 proves nothing any more; SHA-384 and SHA-512 are fine */
        ossl_csr(p256, EVP_sha1(), "sha1", NULL, &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, CF_E_SIG_INVALID);
        cf_buf_done(&pem);
        ossl_csr(p256, EVP_sha512(), "sha512", "DNS:a.example", &pem);
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&pem), &k).code, 0);
        assert_int_equal(k.alg, CF_X509_P256);
        cf_buf_done(&pem);
        EVP_PKEY_free(rsa1024);
        EVP_PKEY_free(rsa2560);
        EVP_PKEY_free(p521);
        EVP_PKEY_free(k1);
        EVP_PKEY_free(p256);
        EVP_PKEY_free(ed448);
}

/* Every prefix of the DER and of the PEM fails; so does every one-bit change of the DER. */
static void test_truncation_and_bit_flips(void **state)
{
        static const enum cf_x509_alg algs[] = {CF_X509_P256, CF_X509_ED25519, CF_X509_RSA2048};

        (void)state;
        for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
                struct cf_buf key, pem, der, flipped;
                struct cf_x509_csr_key k;

                keygen(algs[a], &key);
                make_csr(&key, "workload", &pem);
                pem_to_der(&pem, &der);
                assert_int_equal(cf_x509_csr_verify_der(cf_buf_slice(&der), &k).code, 0);
                for (size_t n = 0; n < der.size; n++) {
                        assert_int_not_equal(
                            cf_x509_csr_verify_der(cf_slice_make(der.ptr, n), &k).code, 0);
                }
                for (size_t n = 0; n < pem.size; n++) {
                        /* a prefix that ends inside the final newline is still complete */
                        int code = cf_x509_csr_parse_verify(cf_slice_make(pem.ptr, n), &k).code;
                        assert_true(n == pem.size - 1 ? code == 0 : code != 0);
                }
                cf_buf_init(&flipped, CF_X509_CSR_MAX, false);
                assert_int_equal(cf_buf_append(&flipped, der.ptr, der.size).code, 0);
                for (size_t i = 0; i < der.size; i++) {
                        for (unsigned bit = 0; bit < 8; bit += 3) {
                                flipped.ptr[i] ^= (uint8_t)(1u << bit);
                                assert_int_not_equal(
                                    cf_x509_csr_verify_der(cf_buf_slice(&flipped), &k).code, 0);
                                flipped.ptr[i] ^= (uint8_t)(1u << bit);
                        }
                }
                /* the signature is the last bytes: flipping its last byte is a bad signature */
                flipped.ptr[flipped.size - 1] ^= 0x01;
                assert_int_equal(cf_x509_csr_verify_der(cf_buf_slice(&flipped), &k).code,
                                 CF_E_SIG_INVALID);
                cf_buf_done(&flipped);
                cf_buf_done(&der);
                cf_buf_done(&pem);
                cf_buf_done(&key);
        }
}

/* The version field: only v1 (0). The DER's version INTEGER is the first one in the TBS:
 * 30 LL 30 LL 02 01 00. */
static void test_unknown_version(void **state)
{
        struct cf_buf key, pem, der;
        struct cf_x509_csr_key k;
        size_t at = 0;
        int code;

        (void)state;
        keygen(CF_X509_P256, &key);
        make_csr(&key, "v", &pem);
        pem_to_der(&pem, &der);
        for (size_t i = 0; i + 2 < der.size && at == 0; i++) {
                if (der.ptr[i] == 0x02 && der.ptr[i + 1] == 0x01 && der.ptr[i + 2] == 0x00) {
                        at = i + 2;
                }
        }
        assert_true(at > 0 && at < 12);
        der.ptr[at] = 0x01;
        code = cf_x509_csr_verify_der(cf_buf_slice(&der), &k).code;
        assert_true(code == CF_E_VERSION || code == CF_E_MALFORMED);
        cf_buf_done(&der);
        cf_buf_done(&pem);
        cf_buf_done(&key);
}

/* One clean PEM block and nothing else. */
static void test_pem_strictness(void **state)
{
        struct cf_buf key, pem, der, text, other;
        struct cf_x509_csr_key k;
        const char *body;

        (void)state;
        keygen(CF_X509_P256, &key);
        make_csr(&key, "p", &pem);
        pem_to_der(&pem, &der);
        cf_buf_init(&text, 1u << 20, false);
        body = (const char *)pem.ptr;

        assert_int_equal(parse_pem(body, &k), 0);
        /* trailing whitespace is fine, anything else is not */
        assert_int_equal(cf_buf_printf(&text, "%s\n \t\r\n", body).code, 0);
        assert_int_equal(parse_pem((const char *)text.ptr, &k), 0);
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_printf(&text, "%sx", body).code, 0);
        assert_int_equal(parse_pem((const char *)text.ptr, &k), CF_E_ENCODING);
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_printf(&text, "%s%s", body, body).code, 0);
        assert_int_equal(parse_pem((const char *)text.ptr, &k), CF_E_ENCODING);
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_printf(&text, "junk\n%s", body).code, 0);
        assert_int_equal(parse_pem((const char *)text.ptr, &k), CF_E_ENCODING);
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_printf(&text, " %s", body).code, 0);
        assert_int_equal(parse_pem((const char *)text.ptr, &k), CF_E_ENCODING);
        /* a NUL inside */
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_append(&text, pem.ptr, pem.size).code, 0);
        text.ptr[40] = 0;
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&text), &k).code, CF_E_ENCODING);
        /* another label with the same bytes */
        {
                BIO *bio = BIO_new(BIO_s_mem());
                char *data = NULL;
                long n;
                assert_true(PEM_write_bio(bio, "CERTIFICATE", "", der.ptr, (long)der.size) > 0);
                n = BIO_get_mem_data(bio, &data);
                cf_buf_init(&other, 1u << 20, false);
                assert_int_equal(cf_buf_append(&other, data, (size_t)n).code, 0);
                BIO_free(bio);
                assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&other), &k).code,
                                 CF_E_ENCODING);
                cf_buf_done(&other);
        }
        /* PEM headers (RFC 1421 encapsulation) */
        {
                BIO *bio = BIO_new(BIO_s_mem());
                char *data = NULL;
                long n;
                assert_true(PEM_write_bio(bio, "CERTIFICATE REQUEST", "Comment: hi\n", der.ptr,
                                          (long)der.size) > 0);
                n = BIO_get_mem_data(bio, &data);
                cf_buf_init(&other, 1u << 20, false);
                assert_int_equal(cf_buf_append(&other, data, (size_t)n).code, 0);
                BIO_free(bio);
                assert_int_not_equal(cf_x509_csr_parse_verify(cf_buf_slice(&other), &k).code, 0);
                cf_buf_done(&other);
        }
        /* bad base64 */
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_append(&text, pem.ptr, pem.size).code, 0);
        text.ptr[45] = '*';
        assert_int_not_equal(cf_x509_csr_parse_verify(cf_buf_slice(&text), &k).code, 0);
        /* the DER with a byte appended, as PEM: trailing bytes inside the block */
        {
                uint8_t more[CF_X509_CSR_MAX];
                memcpy(more, der.ptr, der.size);
                more[der.size] = 0;
                der_to_pem(more, der.size + 1, &other);
                assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&other), &k).code,
                                 CF_E_MALFORMED);
                cf_buf_done(&other);
        }
        /* empty, oversized */
        assert_int_equal(cf_x509_csr_parse_verify(cf_slice_make(NULL, 0), &k).code, CF_E_ENCODING);
        cf_buf_reset(&text);
        assert_int_equal(cf_buf_append(&text, pem.ptr, pem.size).code, 0);
        while (text.size <= CF_X509_CSR_MAX) {
                assert_int_equal(cf_buf_append_str(&text, "\n").code, 0);
        }
        assert_int_equal(cf_x509_csr_parse_verify(cf_buf_slice(&text), &k).code, CF_E_LIMIT);
        cf_buf_done(&text);
        cf_buf_done(&der);
        cf_buf_done(&pem);
        cf_buf_done(&key);
}

/* PEM to DER conversions cofferd uses for the issuing CA's key and certificate. */
static void test_from_pem(void **state)
{
        struct cf_x509_request ca_req = {
            .common_name = "CA", .ca = true, .path_len = -1, .days = 9};
        struct cf_buf key, cert, pem, der;

        (void)state;
        keygen(CF_X509_RSA2048, &key);
        cf_buf_init(&cert, CF_X509_CERT_MAX, false);
        assert_int_equal(cf_x509_issue(&ca_req, cf_buf_slice(&key), cf_slice_make(NULL, 0),
                                       cf_slice_make(NULL, 0), &cert)
                             .code,
                         0);
        for (int pkcs8 = 0; pkcs8 < 2; pkcs8++) {
                cf_buf_init(&pem, 16384, true);
                cf_buf_init(&der, CF_X509_KEY_MAX, true);
                assert_int_equal(cf_x509_key_pem(cf_buf_slice(&key), pkcs8 != 0, &pem).code, 0);
                assert_int_equal(cf_x509_key_from_pem(cf_buf_slice(&pem), &der).code, 0);
                assert_int_equal(der.size, key.size);
                assert_memory_equal(der.ptr, key.ptr, key.size);
                der.size = 0;
                assert_int_equal(cf_x509_key_from_pem(cf_slice_make(pem.ptr, 30), &der).code,
                                 CF_E_KEY);
                cf_buf_done(&der);
                cf_buf_done(&pem);
        }
        cf_buf_init(&pem, 16384, false);
        cf_buf_init(&der, CF_X509_CERT_MAX, false);
        assert_int_equal(cf_x509_cert_pem(cf_buf_slice(&cert), &pem).code, 0);
        {
                /* a bundle: the first certificate counts */
                uint8_t copy[16384];
                size_t n = pem.size;
                memcpy(copy, pem.ptr, n);
                assert_int_equal(cf_buf_append(&pem, copy, n).code, 0);
        }
        assert_int_equal(cf_x509_cert_from_pem(cf_buf_slice(&pem), &der).code, 0);
        assert_int_equal(der.size, cert.size);
        assert_memory_equal(der.ptr, cert.ptr, cert.size);
        der.size = 0;
        assert_int_equal(
            cf_x509_cert_from_pem(cf_slice_str("-----BEGIN CERTIFICATE-----\n"), &der).code,
            CF_E_CERT);
        assert_int_equal(cf_x509_cert_from_pem(cf_slice_make(NULL, 0), &der).code, CF_E_CERT);
        cf_buf_done(&der);
        cf_buf_done(&pem);
        cf_buf_done(&cert);
        cf_buf_done(&key);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_alg_names),
            cmocka_unit_test(test_create_and_verify_every_algorithm),
            cmocka_unit_test(test_create_refuses_bad_arguments),
            cmocka_unit_test(test_issue_for_key),
            cmocka_unit_test(test_refused_keys_and_hashes),
            cmocka_unit_test(test_truncation_and_bit_flips),
            cmocka_unit_test(test_unknown_version),
            cmocka_unit_test(test_pem_strictness),
            cmocka_unit_test(test_from_pem),
        };

        if (!cf_ok(cf_crypto_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
