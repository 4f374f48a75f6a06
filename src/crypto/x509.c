/* Keys and certificates for policy secrets: see x509.h.
 *
 * Private keys live in OpenSSL objects only for the duration of one call; every DER or PEM
 * copy of a private key made here is cleansed before it is freed (OPENSSL_clear_free, secure
 * memory BIOs), and what is handed back goes into the caller's (secret) buffer. */
#include "crypto/x509.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/mem.h"
#include "crypto/crypto.h"

static void pkey_freep(EVP_PKEY **p)
{
        EVP_PKEY_free(*p);
        *p = NULL;
}

static void x509_freep(X509 **p)
{
        X509_free(*p);
        *p = NULL;
}

static void bio_freep(BIO **p)
{
        BIO_free(*p);
        *p = NULL;
}

/* Fails with `code` and clears OpenSSL's error queue, so no stale error is reported later
 * by an unrelated caller. */
static cf_status ossl_fail(enum cf_errcode code)
{
        ERR_clear_error();
        return cf_fail(code);
}

/* A PKCS#8 DER private key; every byte must belong to the key. */
static cf_status parse_key(struct cf_slice der, EVP_PKEY **ret)
{
        const unsigned char *p = der.ptr;
        EVP_PKEY *k;

        ENSURE(der.size > 0 && der.size <= CF_X509_KEY_MAX, CF_E_KEY);
        k = d2i_AutoPrivateKey(NULL, &p, (long)der.size);
        if (k == NULL) {
                return ossl_fail(CF_E_KEY);
        }
        if (p != der.ptr + der.size) {
                EVP_PKEY_free(k);
                return cf_fail(CF_E_KEY);
        }
        *ret = k;
        return CF_OK;
}

/* A DER certificate; every byte must belong to it. */
static cf_status parse_cert(struct cf_slice der, X509 **ret)
{
        const unsigned char *p = der.ptr;
        X509 *x;

        ENSURE(der.size > 0 && der.size <= CF_X509_CERT_MAX, CF_E_CERT);
        x = d2i_X509(NULL, &p, (long)der.size);
        if (x == NULL) {
                return ossl_fail(CF_E_CERT);
        }
        if (p != der.ptr + der.size) {
                X509_free(x);
                return cf_fail(CF_E_CERT);
        }
        *ret = x;
        return CF_OK;
}

/* Appends everything a memory BIO holds to out. */
static cf_status append_bio(BIO *bio, struct cf_buf *out)
{
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);

        ENSURE(n > 0 && data != NULL, CF_E_CRYPTO);
        return cf_buf_append(out, data, (size_t)n);
}

cf_status cf_x509_key_generate(enum cf_x509_alg alg, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *k = NULL;
        PKCS8_PRIV_KEY_INFO *p8;
        unsigned char *der = NULL;
        int n;
        cf_status s;

        switch (alg) {
        case CF_X509_ED25519:
                k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
                break;
        case CF_X509_P256:
                k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case CF_X509_P384:
                k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
                break;
        case CF_X509_RSA2048:
                k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
                break;
        case CF_X509_RSA3072:
                k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
                break;
        case CF_X509_RSA4096:
                k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
                break;
        default:
                return cf_fail(CF_E_INVALID_ARG);
        }
        if (k == NULL) {
                return ossl_fail(CF_E_CRYPTO);
        }
        p8 = EVP_PKEY2PKCS8(k);
        if (p8 == NULL) {
                return ossl_fail(CF_E_CRYPTO);
        }
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (n <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        s = (size_t)n <= CF_X509_KEY_MAX ? cf_buf_append(out, der, (size_t)n)
                                         : cf_fail(CF_E_INTERNAL);
        OPENSSL_clear_free(der, (size_t)n);
        return s;
}

/* The digest a key signs certificates with: none for Ed25519 (pure), SHA-384 for P-384,
 * SHA-256 otherwise (P-256, RSA PKCS#1 v1.5). */
static const EVP_MD *sign_md(EVP_PKEY *k)
{
        if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
                return NULL;
        }
        if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC && EVP_PKEY_get_bits(k) > 256) {
                return EVP_sha384();
        }
        return EVP_sha256();
}

/* Adds one extension given in OpenSSL's configuration syntax. value is always a constant
 * built here, never user text (SANs are built as structures below). */
static cf_status add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        int ok;

        if (ext == NULL) {
                return ossl_fail(CF_E_CRYPTO);
        }
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ENSURE(ok == 1, CF_E_CRYPTO);
        return CF_OK;
}

bool cf_x509_ip_ok(const char *text)
{
        uint8_t addr[16];

        return text != NULL &&
               (inet_pton(AF_INET, text, addr) == 1 || inet_pton(AF_INET6, text, addr) == 1);
}

static cf_status add_name(GENERAL_NAMES *names, int type, ASN1_STRING *value)
{
        GENERAL_NAME *gn = GENERAL_NAME_new();

        if (gn == NULL) {
                ASN1_STRING_free(value);
                return cf_fail(CF_E_NOMEM);
        }
        GENERAL_NAME_set0_value(gn, type, value);
        if (sk_GENERAL_NAME_push(names, gn) <= 0) {
                GENERAL_NAME_free(gn);
                return cf_fail(CF_E_NOMEM);
        }
        return CF_OK;
}

static cf_status san_entries(const struct cf_x509_request *req, GENERAL_NAMES *names)
{
        for (size_t i = 0; i < req->n_dns; i++) {
                ASN1_IA5STRING *s = ASN1_IA5STRING_new();
                ENSURE(s != NULL, CF_E_NOMEM);
                if (ASN1_STRING_set(s, req->dns[i], -1) != 1) {
                        ASN1_IA5STRING_free(s);
                        return cf_fail(CF_E_NOMEM);
                }
                TRY(add_name(names, GEN_DNS, s));
        }
        for (size_t i = 0; i < req->n_ip; i++) {
                uint8_t addr[16];
                int len = 0;
                ASN1_OCTET_STRING *s;

                if (inet_pton(AF_INET, req->ip[i], addr) == 1) {
                        len = 4;
                } else if (inet_pton(AF_INET6, req->ip[i], addr) == 1) {
                        len = 16;
                }
                ENSURE(len > 0, CF_E_INVALID_ARG);
                s = ASN1_OCTET_STRING_new();
                ENSURE(s != NULL, CF_E_NOMEM);
                if (ASN1_OCTET_STRING_set(s, addr, len) != 1) {
                        ASN1_OCTET_STRING_free(s);
                        return cf_fail(CF_E_NOMEM);
                }
                TRY(add_name(names, GEN_IPADD, s));
        }
        return CF_OK;
}

static cf_status add_san(X509 *x, const struct cf_x509_request *req)
{
        GENERAL_NAMES *names;
        cf_status s;

        if (req->n_dns == 0 && req->n_ip == 0) {
                return CF_OK;
        }
        names = GENERAL_NAMES_new();
        ENSURE(names != NULL, CF_E_NOMEM);
        s = san_entries(req, names);
        if (cf_ok(s) && X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0) != 1) {
                s = ossl_fail(CF_E_CRYPTO);
        }
        GENERAL_NAMES_free(names);
        return s;
}

static bool request_ok(const struct cf_x509_request *req)
{
        size_t n;

        if (req == NULL || req->common_name == NULL || req->days < 1 ||
            req->days > CF_X509_DAYS_MAX || req->n_dns > CF_X509_SAN_MAX ||
            req->n_ip > CF_X509_SAN_MAX || (req->n_dns > 0 && req->dns == NULL) ||
            (req->n_ip > 0 && req->ip == NULL) ||
            (req->eku & ~(CF_X509_EKU_SERVER | CF_X509_EKU_CLIENT)) != 0 ||
            (req->ca && req->eku != 0) || req->path_len < -1 || req->path_len > 32) {
                return false;
        }
        n = strlen(req->common_name);
        if (n < 1 || n > CF_X509_CN_MAX) {
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (req->common_name[i] < 0x20 || req->common_name[i] > 0x7e) {
                        return false;
                }
        }
        return true;
}

/* Everything but the signature: version, serial, validity, names, key, extensions. */
static cf_status fill_cert(X509 *x, const struct cf_x509_request *req, EVP_PKEY *subject,
                           X509 *issuer_x)
{
        uint8_t rnd[16];
        BIGNUM *bn;
        X509_NAME *name;
        X509V3_CTX ctx;
        char bc[48];
        bool ok;

        /* 128 random bits (RFC 5280 allows 20 octets; a leading zero keeps it positive). */
        TRY(cf_random(rnd, sizeof(rnd)));
        rnd[0] |= 0x01; /* never zero, even in theory */
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
        ENSURE(bn != NULL, CF_E_NOMEM);
        ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
        BN_free(bn);
        ok = ok && X509_set_version(x, X509_VERSION_3) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -60) != NULL &&
             X509_time_adj_ex(X509_getm_notAfter(x), (int)req->days, 0, NULL) != NULL &&
             X509_set_pubkey(x, subject) == 1;
        name = X509_get_subject_name(x);
        ok = ok &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)req->common_name, -1, -1, 0) == 1;
        ok = ok && X509_set_issuer_name(x, issuer_x != NULL ? X509_get_subject_name(issuer_x)
                                                            : name) == 1;
        if (!ok) {
                return ossl_fail(CF_E_CRYPTO);
        }

        X509V3_set_ctx(&ctx, issuer_x != NULL ? issuer_x : x, x, NULL, NULL, 0);
        if (req->ca && req->path_len >= 0) {
                int n = snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", req->path_len);
                ENSURE(n > 0 && (size_t)n < sizeof(bc), CF_E_INTERNAL);
        } else {
                int n = snprintf(bc, sizeof(bc), "%s",
                                 req->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
                ENSURE(n > 0 && (size_t)n < sizeof(bc), CF_E_INTERNAL);
        }
        TRY(add_ext(x, &ctx, NID_basic_constraints, bc));
        if (req->ca) {
                TRY(add_ext(x, &ctx, NID_key_usage,
                            "critical,digitalSignature,keyCertSign,cRLSign"));
        } else if (EVP_PKEY_get_base_id(subject) == EVP_PKEY_RSA) {
                /* RSA key transport (TLS 1.2 RSA suites) needs keyEncipherment. */
                TRY(add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment"));
        } else {
                TRY(add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"));
        }
        if (req->eku == (CF_X509_EKU_SERVER | CF_X509_EKU_CLIENT)) {
                TRY(add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth"));
        } else if (req->eku == CF_X509_EKU_SERVER) {
                TRY(add_ext(x, &ctx, NID_ext_key_usage, "serverAuth"));
        } else if (req->eku == CF_X509_EKU_CLIENT) {
                TRY(add_ext(x, &ctx, NID_ext_key_usage, "clientAuth"));
        }
        TRY(add_san(x, req));
        TRY(add_ext(x, &ctx, NID_subject_key_identifier, "hash"));
        /* For a self-signed certificate this finds the subject key id just added. */
        TRY(add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"));
        return CF_OK;
}

cf_status cf_x509_issue(const struct cf_x509_request *req, struct cf_slice subject_key,
                        struct cf_slice issuer_key, struct cf_slice issuer_cert, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *subject = NULL;
        CF_CLEANUP(pkey_freep) EVP_PKEY *signer = NULL;
        CF_CLEANUP(x509_freep) X509 *issuer_x = NULL;
        CF_CLEANUP(x509_freep) X509 *x = NULL;
        unsigned char *der = NULL;
        EVP_PKEY *sign_key;
        int n;
        cf_status s;

        ENSURE(out != NULL && request_ok(req), CF_E_INVALID_ARG);
        TRY(parse_key(subject_key, &subject));
        sign_key = subject;
        if (issuer_cert.size > 0) {
                TRY(parse_cert(issuer_cert, &issuer_x));
                TRY(parse_key(issuer_key, &signer));
                if (X509_check_private_key(issuer_x, signer) != 1) {
                        return ossl_fail(CF_E_KEY);
                }
                /* 1: a CA by basicConstraints. Anything else cannot sign certificates. */
                ENSURE(X509_check_ca(issuer_x) == 1, CF_E_CERT);
                sign_key = signer;
        }
        x = X509_new();
        ENSURE(x != NULL, CF_E_NOMEM);
        TRY(fill_cert(x, req, subject, issuer_x));
        if (X509_sign(x, sign_key, sign_md(sign_key)) <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        n = i2d_X509(x, &der);
        if (n <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        s = (size_t)n <= CF_X509_CERT_MAX ? cf_buf_append(out, der, (size_t)n)
                                          : cf_fail(CF_E_LIMIT);
        OPENSSL_free(der);
        return s;
}

cf_status cf_x509_key_pem(struct cf_slice key, bool pkcs8, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *k = NULL;
        CF_CLEANUP(bio_freep) BIO *bio = NULL;
        int ok;

        TRY(parse_key(key, &k));
        /* A secure-memory BIO: its buffer is cleansed when freed. */
        bio = BIO_new(BIO_s_secmem());
        ENSURE(bio != NULL, CF_E_NOMEM);
        if (pkcs8 || EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
                ok = PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
        } else {
                ok = PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL);
        }
        if (ok != 1) {
                return ossl_fail(CF_E_CRYPTO);
        }
        return append_bio(bio, out);
}

cf_status cf_x509_public_key(struct cf_slice src, bool from_cert, bool pem, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *k = NULL;
        CF_CLEANUP(x509_freep) X509 *x = NULL;
        CF_CLEANUP(bio_freep) BIO *bio = NULL;
        EVP_PKEY *pub;
        unsigned char *der = NULL;
        int n;
        cf_status s;

        if (from_cert) {
                TRY(parse_cert(src, &x));
                pub = X509_get0_pubkey(x);
                ENSURE(pub != NULL, CF_E_CERT);
        } else {
                TRY(parse_key(src, &k));
                pub = k;
        }
        if (pem) {
                bio = BIO_new(BIO_s_mem());
                ENSURE(bio != NULL, CF_E_NOMEM);
                if (PEM_write_bio_PUBKEY(bio, pub) != 1) {
                        return ossl_fail(CF_E_CRYPTO);
                }
                return append_bio(bio, out);
        }
        n = i2d_PUBKEY(pub, &der);
        if (n <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        s = cf_buf_append(out, der, (size_t)n);
        OPENSSL_free(der);
        return s;
}

cf_status cf_x509_cert_pem(struct cf_slice der, struct cf_buf *out)
{
        CF_CLEANUP(x509_freep) X509 *x = NULL;
        CF_CLEANUP(bio_freep) BIO *bio = NULL;

        TRY(parse_cert(der, &x));
        bio = BIO_new(BIO_s_mem());
        ENSURE(bio != NULL, CF_E_NOMEM);
        if (PEM_write_bio_X509(bio, x) != 1) {
                return ossl_fail(CF_E_CRYPTO);
        }
        return append_bio(bio, out);
}
