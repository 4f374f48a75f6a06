/* Unit tests of src/crypto/x509.c: key generation for every algorithm, issuing a root, an
 * intermediate and leaves, checked with OpenSSL's own verifier and extension parsers; the
 * renderings (PEM forms, public keys); and refusals: bad requests, wrong or truncated keys,
 * an issuer that is not a CA, corrupted certificates. Keys are generated at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"

struct pki {
        struct cf_buf root_key, root_cert, inter_key, inter_cert, leaf_key, leaf_cert;
};

static struct pki g;

static void keygen(enum cf_x509_alg alg, struct cf_buf *out)
{
        cf_buf_init(out, CF_X509_KEY_MAX, true);
        assert_int_equal(cf_x509_key_generate(alg, out).code, 0);
}

static X509 *parse_x509(const struct cf_buf *b)
{
        const unsigned char *p = b->ptr;
        X509 *x = d2i_X509(NULL, &p, (long)b->size);

        assert_non_null(x);
        return x;
}

static EVP_PKEY *parse_key(const struct cf_buf *b)
{
        const unsigned char *p = b->ptr;
        EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)b->size);

        assert_non_null(k);
        return k;
}

static const char *const g_dns[] = {"api.example.com", "*.example.com"};
static const char *const g_ip[] = {"127.0.0.1", "2001:db8::1"};

static int setup(void **state)
{
        struct cf_x509_request root = {
            .common_name = "Root", .ca = true, .path_len = 1, .days = 3650};
        struct cf_x509_request inter = {
            .common_name = "Inter", .ca = true, .path_len = 0, .days = 1000};
        struct cf_x509_request leaf = {.common_name = "api.example.com",
                                       .path_len = -1,
                                       .dns = g_dns,
                                       .n_dns = 2,
                                       .ip = g_ip,
                                       .n_ip = 2,
                                       .eku = CF_X509_EKU_SERVER | CF_X509_EKU_CLIENT,
                                       .days = 30};

        (void)state;
        if (!cf_ok(cf_crypto_init())) {
                return -1;
        }
        keygen(CF_X509_P384, &g.root_key);
        keygen(CF_X509_RSA2048, &g.inter_key);
        keygen(CF_X509_P256, &g.leaf_key);
        cf_buf_init(&g.root_cert, CF_X509_CERT_MAX, false);
        cf_buf_init(&g.inter_cert, CF_X509_CERT_MAX, false);
        cf_buf_init(&g.leaf_cert, CF_X509_CERT_MAX, false);
        if (!cf_ok(cf_x509_issue(&root, cf_buf_slice(&g.root_key), (struct cf_slice){0},
                                 (struct cf_slice){0}, &g.root_cert)) ||
            !cf_ok(cf_x509_issue(&inter, cf_buf_slice(&g.inter_key), cf_buf_slice(&g.root_key),
                                 cf_buf_slice(&g.root_cert), &g.inter_cert)) ||
            !cf_ok(cf_x509_issue(&leaf, cf_buf_slice(&g.leaf_key), cf_buf_slice(&g.inter_key),
                                 cf_buf_slice(&g.inter_cert), &g.leaf_cert))) {
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        cf_buf_done(&g.root_key);
        cf_buf_done(&g.root_cert);
        cf_buf_done(&g.inter_key);
        cf_buf_done(&g.inter_cert);
        cf_buf_done(&g.leaf_key);
        cf_buf_done(&g.leaf_cert);
        return 0;
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void test_key_generate(void **state)
{
        static const struct {
                enum cf_x509_alg alg;
                int id, bits;
        } algs[] = {
            {CF_X509_ED25519, EVP_PKEY_ED25519, 256}, {CF_X509_P256, EVP_PKEY_EC, 256},
            {CF_X509_P384, EVP_PKEY_EC, 384},         {CF_X509_RSA2048, EVP_PKEY_RSA, 2048},
            {CF_X509_RSA3072, EVP_PKEY_RSA, 3072},    {CF_X509_RSA4096, EVP_PKEY_RSA, 4096}};

        (void)state;
        for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
                struct cf_buf a, b;
                EVP_PKEY *k;
                keygen(algs[i].alg, &a);
                keygen(algs[i].alg, &b);
                k = parse_key(&a);
                assert_int_equal(EVP_PKEY_get_base_id(k), algs[i].id);
                assert_int_equal(EVP_PKEY_get_bits(k), algs[i].bits);
                EVP_PKEY_free(k);
                /* Fresh randomness every time. */
                assert_false(a.size == b.size && memcmp(a.ptr, b.ptr, a.size) == 0);
                cf_buf_done(&a);
                cf_buf_done(&b);
        }
        {
                struct cf_buf out;
                cf_buf_init(&out, CF_X509_KEY_MAX, true);
                assert_int_equal(cf_x509_key_generate((enum cf_x509_alg)0, &out).code,
                                 CF_E_INVALID_ARG);
                assert_int_equal(cf_x509_key_generate((enum cf_x509_alg)99, &out).code,
                                 CF_E_INVALID_ARG);
                assert_int_equal(out.size, 0);
                cf_buf_done(&out);
                /* Too small a buffer: an error, nothing appended. */
                cf_buf_init(&out, 16, true);
                assert_int_equal(cf_x509_key_generate(CF_X509_P256, &out).code, CF_E_LIMIT);
                assert_int_equal(out.size, 0);
                cf_buf_done(&out);
        }
}

static bool contains(const struct cf_buf *b, const char *s)
{
        return b->ptr != NULL && strstr((const char *)b->ptr, s) != NULL;
}

static void test_key_renderings(void **state)
{
        struct cf_buf ed, out, pub1, pub2;

        (void)state;
        cf_buf_init(&out, 16384, true);
        assert_int_equal(cf_x509_key_pem(cf_buf_slice(&g.leaf_key), false, &out).code, 0);
        assert_true(contains(&out, "-----BEGIN EC PRIVATE KEY-----\n"));
        cf_buf_reset(&out);
        assert_int_equal(cf_x509_key_pem(cf_buf_slice(&g.leaf_key), true, &out).code, 0);
        assert_true(contains(&out, "-----BEGIN PRIVATE KEY-----\n"));
        cf_buf_reset(&out);
        assert_int_equal(cf_x509_key_pem(cf_buf_slice(&g.inter_key), false, &out).code, 0);
        assert_true(contains(&out, "-----BEGIN RSA PRIVATE KEY-----\n"));
        cf_buf_reset(&out);
        /* Ed25519 has no traditional form: always PKCS#8. */
        keygen(CF_X509_ED25519, &ed);
        assert_int_equal(cf_x509_key_pem(cf_buf_slice(&ed), false, &out).code, 0);
        assert_true(contains(&out, "-----BEGIN PRIVATE KEY-----\n"));
        cf_buf_reset(&out);
        /* The PEM parses back to the same key (through crypto.c's loader). */
        {
                struct cf_pkey *k = NULL;
                char id1[CF_KEY_ID_HEX], id2[CF_KEY_ID_HEX];
                assert_int_equal(cf_x509_key_pem(cf_buf_slice(&ed), true, &out).code, 0);
                assert_int_equal(cf_pkey_from_pem(cf_buf_slice(&out), true, &k).code, 0);
                assert_int_equal(cf_pkey_type(k), CF_KEY_ED25519);
                assert_int_equal(cf_pkey_key_id(k, id1).code, 0);
                cf_pkey_free(k);
                k = NULL;
                cf_buf_reset(&out);
                assert_int_equal(cf_x509_public_key(cf_buf_slice(&ed), false, true, &out).code, 0);
                assert_true(contains(&out, "-----BEGIN PUBLIC KEY-----\n"));
                assert_int_equal(cf_pkey_from_pem(cf_buf_slice(&out), false, &k).code, 0);
                assert_int_equal(cf_pkey_key_id(k, id2).code, 0);
                assert_string_equal(id1, id2);
                cf_pkey_free(k);
        }
        cf_buf_done(&ed);

        /* The public key of the leaf certificate is that of its private key, in both forms. */
        cf_buf_init(&pub1, 4096, false);
        cf_buf_init(&pub2, 4096, false);
        assert_int_equal(cf_x509_public_key(cf_buf_slice(&g.leaf_key), false, true, &pub1).code, 0);
        assert_int_equal(cf_x509_public_key(cf_buf_slice(&g.leaf_cert), true, true, &pub2).code, 0);
        assert_int_equal(pub1.size, pub2.size);
        assert_memory_equal(pub1.ptr, pub2.ptr, pub1.size);
        cf_buf_reset(&pub1);
        cf_buf_reset(&pub2);
        assert_int_equal(cf_x509_public_key(cf_buf_slice(&g.leaf_key), false, false, &pub1).code,
                         0);
        assert_int_equal(cf_x509_public_key(cf_buf_slice(&g.leaf_cert), true, false, &pub2).code,
                         0);
        assert_int_equal(pub1.size, pub2.size);
        assert_memory_equal(pub1.ptr, pub2.ptr, pub1.size);
        assert_int_equal(pub1.ptr[0], 0x30); /* DER SEQUENCE */
        /* A key is not a certificate and the other way round. */
        assert_int_equal(cf_x509_public_key(cf_buf_slice(&g.leaf_key), true, true, &pub1).code,
                         CF_E_CERT);
        assert_int_equal(cf_x509_public_key(cf_buf_slice(&g.leaf_cert), false, true, &pub1).code,
                         CF_E_KEY);
        cf_buf_done(&pub1);
        cf_buf_done(&pub2);

        cf_buf_reset(&out);
        assert_int_equal(cf_x509_cert_pem(cf_buf_slice(&g.leaf_cert), &out).code, 0);
        assert_true(contains(&out, "-----BEGIN CERTIFICATE-----\n"));
        assert_true(contains(&out, "-----END CERTIFICATE-----\n"));
        cf_buf_done(&out);
}

/* ---- certificates ------------------------------------------------------------------------- */

static int verify_chain(X509 *leaf, X509 *inter, X509 *root, int purpose)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        int ok;

        assert_non_null(store);
        assert_non_null(ctx);
        assert_non_null(untrusted);
        assert_int_equal(X509_STORE_add_cert(store, root), 1);
        if (inter != NULL) {
                assert_true(sk_X509_push(untrusted, inter) > 0);
        }
        assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
        if (purpose != 0) {
                X509_STORE_CTX_set_purpose(ctx, purpose);
        }
        ok = X509_verify_cert(ctx);
        X509_STORE_CTX_free(ctx);
        sk_X509_free(untrusted);
        X509_STORE_free(store);
        return ok;
}

static void test_chain_verifies(void **state)
{
        X509 *root = parse_x509(&g.root_cert);
        X509 *inter = parse_x509(&g.inter_cert);
        X509 *leaf = parse_x509(&g.leaf_cert);

        (void)state;
        assert_int_equal(verify_chain(leaf, inter, root, X509_PURPOSE_SSL_SERVER), 1);
        assert_int_equal(verify_chain(leaf, inter, root, X509_PURPOSE_SSL_CLIENT), 1);
        /* Without the intermediate there is no path. */
        assert_int_equal(verify_chain(leaf, NULL, root, 0), 0);
        /* The intermediate is not a root of its own. */
        assert_int_equal(verify_chain(leaf, NULL, inter, 0), 0);
        X509_free(root);
        X509_free(inter);
        X509_free(leaf);
}

static void test_extensions(void **state)
{
        X509 *root = parse_x509(&g.root_cert);
        X509 *inter = parse_x509(&g.inter_cert);
        X509 *leaf = parse_x509(&g.leaf_cert);
        GENERAL_NAMES *san;
        const ASN1_INTEGER *serial;
        BIGNUM *bn;
        int crit = 0;

        (void)state;
        /* CA flags and path lengths */
        assert_int_equal(X509_check_ca(root), 1);
        assert_int_equal(X509_check_ca(inter), 1);
        assert_int_equal(X509_check_ca(leaf), 0);
        assert_int_equal(X509_get_pathlen(root), 1);
        assert_int_equal(X509_get_pathlen(inter), 0);
        assert_true(X509_get_extension_flags(root) & EXFLAG_SS);
        assert_false(X509_get_extension_flags(inter) & EXFLAG_SS);
        /* key usage */
        assert_true(X509_get_key_usage(root) & KU_KEY_CERT_SIGN);
        assert_true(X509_get_key_usage(root) & KU_CRL_SIGN);
        assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
        assert_false(X509_get_key_usage(leaf) & KU_KEY_CERT_SIGN);
        assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
        assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);
        /* key identifiers link each certificate to its issuer */
        assert_non_null(X509_get0_subject_key_id(root));
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(inter),
                                               X509_get0_subject_key_id(root)),
                         0);
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
                                               X509_get0_subject_key_id(inter)),
                         0);
        /* names */
        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(inter)),
                         0);
        assert_int_equal(X509_check_host(leaf, "api.example.com", 0, 0, NULL), 1);
        assert_int_equal(X509_check_host(leaf, "www.example.com", 0, 0, NULL), 1); /* wildcard */
        assert_int_equal(X509_check_host(leaf, "other.test", 0, 0, NULL), 0);
        assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
        assert_int_equal(X509_check_ip_asc(leaf, "2001:db8::1", 0), 1);
        assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.2", 0), 0);
        san = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
        assert_non_null(san);
        assert_int_equal(sk_GENERAL_NAME_num(san), 4);
        GENERAL_NAMES_free(san);
        /* serial: positive, up to 128 bits, and differs between certificates */
        serial = X509_get0_serialNumber(leaf);
        bn = ASN1_INTEGER_to_BN(serial, NULL);
        assert_non_null(bn);
        assert_false(BN_is_negative(bn));
        assert_true(BN_num_bits(bn) <= 128 && BN_num_bits(bn) > 64);
        BN_free(bn);
        assert_int_not_equal(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(inter)), 0);
        /* validity: not before is in the past (now - 60 s), not after is days from now */
        {
                int days = 0, secs = 0;
                assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(leaf)), 1);
                assert_true(days == 0 && secs <= -59 && secs >= -120);
                assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)), 1);
                assert_true(days == 29 || (days == 30 && secs <= 0));
                assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(root)), 1);
                assert_true(days >= 3649 && days <= 3650);
        }
        X509_free(root);
        X509_free(inter);
        X509_free(leaf);
}

static void test_every_algorithm_signs(void **state)
{
        static const enum cf_x509_alg algs[] = {CF_X509_ED25519, CF_X509_P256, CF_X509_P384,
                                                CF_X509_RSA2048};

        (void)state;
        for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
                struct cf_x509_request ca = {
                    .common_name = "c", .ca = true, .path_len = -1, .days = 10};
                struct cf_x509_request lf = {
                    .common_name = "l", .path_len = -1, .eku = CF_X509_EKU_CLIENT, .days = 5};
                struct cf_buf ck, cc, lk, lc;
                X509 *xc, *xl;
                keygen(algs[i], &ck);
                keygen(algs[(i + 1) % 4], &lk);
                cf_buf_init(&cc, CF_X509_CERT_MAX, false);
                cf_buf_init(&lc, CF_X509_CERT_MAX, false);
                assert_int_equal(cf_x509_issue(&ca, cf_buf_slice(&ck), (struct cf_slice){0},
                                               (struct cf_slice){0}, &cc)
                                     .code,
                                 0);
                assert_int_equal(
                    cf_x509_issue(&lf, cf_buf_slice(&lk), cf_buf_slice(&ck), cf_buf_slice(&cc), &lc)
                        .code,
                    0);
                xc = parse_x509(&cc);
                xl = parse_x509(&lc);
                assert_int_equal(X509_get_pathlen(xc), -1); /* no constraint asked */
                assert_int_equal(verify_chain(xl, NULL, xc, X509_PURPOSE_SSL_CLIENT), 1);
                assert_int_equal(verify_chain(xl, NULL, xc, X509_PURPOSE_SSL_SERVER), 0);
                X509_free(xc);
                X509_free(xl);
                cf_buf_done(&ck);
                cf_buf_done(&cc);
                cf_buf_done(&lk);
                cf_buf_done(&lc);
        }
}

/* ---- refusals ------------------------------------------------------------------------------ */

static cf_status issue_leaf(const struct cf_x509_request *r, struct cf_buf *out)
{
        return cf_x509_issue(r, cf_buf_slice(&g.leaf_key), cf_buf_slice(&g.inter_key),
                             cf_buf_slice(&g.inter_cert), out);
}

static void test_bad_requests(void **state)
{
        static const char *const many[CF_X509_SAN_MAX + 1] = {0};
        static const char *const bad_ip[] = {"300.1.1.1"};
        struct cf_x509_request ok = {.common_name = "x", .path_len = -1, .days = 1};
        struct cf_x509_request r;
        struct cf_buf out;

        (void)state;
        cf_buf_init(&out, CF_X509_CERT_MAX, false);
        assert_int_equal(issue_leaf(&ok, &out).code, 0);
        cf_buf_reset(&out);
#define BAD(field_assignments)                                                                     \
        do {                                                                                       \
                r = ok;                                                                            \
                field_assignments;                                                                 \
                assert_int_equal(issue_leaf(&r, &out).code, CF_E_INVALID_ARG);                     \
                assert_int_equal(out.size, 0);                                                     \
        } while (0)
        BAD(r.days = 0);
        BAD(r.days = CF_X509_DAYS_MAX + 1);
        BAD(r.common_name = NULL);
        BAD(r.common_name = "");
        BAD(r.common_name = "a\nb");
        BAD(r.common_name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        BAD((r.dns = many, r.n_dns = CF_X509_SAN_MAX + 1));
        BAD((r.ip = many, r.n_ip = CF_X509_SAN_MAX + 1));
        BAD(r.n_dns = 1);
        BAD((r.ip = bad_ip, r.n_ip = 1));
        BAD(r.eku = 4);
        BAD((r.ca = true, r.eku = CF_X509_EKU_SERVER));
        BAD(r.path_len = -2);
        BAD(r.path_len = 33);
#undef BAD
        assert_int_equal(cf_x509_issue(NULL, cf_buf_slice(&g.leaf_key), (struct cf_slice){0},
                                       (struct cf_slice){0}, &out)
                             .code,
                         CF_E_INVALID_ARG);
        assert_int_equal(cf_x509_issue(&ok, cf_buf_slice(&g.leaf_key), (struct cf_slice){0},
                                       (struct cf_slice){0}, NULL)
                             .code,
                         CF_E_INVALID_ARG);
        cf_buf_done(&out);
        assert_true(cf_x509_ip_ok("10.1.2.3"));
        assert_true(cf_x509_ip_ok("fe80::1"));
        assert_false(cf_x509_ip_ok("10.1.2"));
        assert_false(cf_x509_ip_ok(""));
        assert_false(cf_x509_ip_ok(NULL));
}

static void test_wrong_issuers(void **state)
{
        struct cf_x509_request r = {.common_name = "x", .path_len = -1, .days = 1};
        struct cf_buf out;

        (void)state;
        cf_buf_init(&out, CF_X509_CERT_MAX, false);
        /* The issuer key does not match the issuer certificate. */
        assert_int_equal(cf_x509_issue(&r, cf_buf_slice(&g.leaf_key), cf_buf_slice(&g.root_key),
                                       cf_buf_slice(&g.inter_cert), &out)
                             .code,
                         CF_E_KEY);
        /* A leaf cannot issue. */
        assert_int_equal(cf_x509_issue(&r, cf_buf_slice(&g.inter_key), cf_buf_slice(&g.leaf_key),
                                       cf_buf_slice(&g.leaf_cert), &out)
                             .code,
                         CF_E_CERT);
        /* Keys and certificates swapped. */
        assert_int_equal(cf_x509_issue(&r, cf_buf_slice(&g.leaf_cert), (struct cf_slice){0},
                                       (struct cf_slice){0}, &out)
                             .code,
                         CF_E_KEY);
        assert_int_equal(cf_x509_issue(&r, cf_buf_slice(&g.leaf_key), cf_buf_slice(&g.root_key),
                                       cf_buf_slice(&g.root_key), &out)
                             .code,
                         CF_E_CERT);
        assert_int_equal(out.size, 0);
        cf_buf_done(&out);
}

/* Every truncation and an appended byte of keys and certificates is refused. */
static void test_truncated_inputs(void **state)
{
        struct cf_x509_request r = {.common_name = "x", .path_len = -1, .days = 1};
        struct cf_buf out, longer;

        (void)state;
        cf_buf_init(&out, 16384, true);
        for (size_t n = 0; n < g.leaf_key.size; n++) {
                struct cf_slice k = cf_slice_make(g.leaf_key.ptr, n);
                assert_int_equal(cf_x509_key_pem(k, true, &out).code, CF_E_KEY);
                assert_int_equal(
                    cf_x509_issue(&r, k, (struct cf_slice){0}, (struct cf_slice){0}, &out).code,
                    CF_E_KEY);
        }
        for (size_t n = 0; n < g.inter_cert.size; n++) {
                struct cf_slice c = cf_slice_make(g.inter_cert.ptr, n);
                assert_int_equal(cf_x509_cert_pem(c, &out).code, CF_E_CERT);
                assert_int_equal(cf_x509_public_key(c, true, true, &out).code, CF_E_CERT);
                /* An empty issuer certificate means self-signed: not a truncation. */
                if (n > 0) {
                        assert_int_equal(cf_x509_issue(&r, cf_buf_slice(&g.leaf_key),
                                                       cf_buf_slice(&g.inter_key), c, &out)
                                             .code,
                                         CF_E_CERT);
                }
        }
        assert_int_equal(out.size, 0);
        cf_buf_init(&longer, 16384, true);
        assert_int_equal(cf_buf_append(&longer, g.leaf_key.ptr, g.leaf_key.size).code, 0);
        assert_int_equal(cf_buf_append(&longer, "\0", 1).code, 0);
        assert_int_equal(cf_x509_key_pem(cf_buf_slice(&longer), true, &out).code, CF_E_KEY);
        cf_buf_reset(&longer);
        assert_int_equal(cf_buf_append(&longer, g.leaf_cert.ptr, g.leaf_cert.size).code, 0);
        assert_int_equal(cf_buf_append(&longer, "\0", 1).code, 0);
        assert_int_equal(cf_x509_cert_pem(cf_buf_slice(&longer), &out).code, CF_E_CERT);
        cf_buf_done(&longer);
        cf_buf_done(&out);
}

/* A flipped bit in the signed part or the signature makes verification fail. */
static void test_bit_flips(void **state)
{
        X509 *root = parse_x509(&g.root_cert);
        X509 *inter = parse_x509(&g.inter_cert);
        struct cf_buf copy;
        size_t failures = 0, tried = 0;

        (void)state;
        cf_buf_init(&copy, CF_X509_CERT_MAX, false);
        for (size_t i = 4; i < g.leaf_cert.size; i += 7) {
                const unsigned char *p;
                X509 *x;
                cf_buf_reset(&copy);
                assert_int_equal(cf_buf_append(&copy, g.leaf_cert.ptr, g.leaf_cert.size).code, 0);
                copy.ptr[i] ^= 0x01;
                p = copy.ptr;
                x = d2i_X509(NULL, &p, (long)copy.size);
                tried++;
                if (x == NULL || verify_chain(x, inter, root, 0) != 1) {
                        failures++;
                }
                X509_free(x);
        }
        assert_true(tried > 10);
        assert_int_equal(failures, tried);
        cf_buf_done(&copy);
        X509_free(root);
        X509_free(inter);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_key_generate),
            cmocka_unit_test(test_key_renderings),
            cmocka_unit_test(test_chain_verifies),
            cmocka_unit_test(test_extensions),
            cmocka_unit_test(test_every_algorithm_signs),
            cmocka_unit_test(test_bad_requests),
            cmocka_unit_test(test_wrong_issuers),
            cmocka_unit_test(test_truncated_inputs),
            cmocka_unit_test(test_bit_flips),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
