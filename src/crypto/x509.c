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
#include <openssl/core_names.h>
#include <openssl/ec.h>
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

static void req_freep(X509_REQ **p)
{
        X509_REQ_free(*p);
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

/* PEM password callback: keys handled here are never encrypted, and OpenSSL's default would
 * prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
        (void)buf;
        (void)size;
        (void)rwflag;
        (void)u;
        return -1;
}

/* Appends everything a memory BIO holds to out. */
static cf_status append_bio(BIO *bio, struct cf_buf *out)
{
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);

        ENSURE(n > 0 && data != NULL, CF_E_CRYPTO);
        return cf_buf_append(out, data, (size_t)n);
}

/* Appends k's PKCS#8 DER to out; a key longer than CF_X509_KEY_MAX is too_big. The DER
 * copy OpenSSL made is wiped. */
static cf_status pkcs8_append(EVP_PKEY *k, enum cf_errcode too_big, struct cf_buf *out)
{
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
        unsigned char *der = NULL;
        cf_status s;
        int n;

        if (p8 == NULL) {
                return ossl_fail(CF_E_CRYPTO);
        }
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (n <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        s = (size_t)n <= CF_X509_KEY_MAX ? cf_buf_append(out, der, (size_t)n) : cf_fail(too_big);
        OPENSSL_clear_free(der, (size_t)n);
        return s;
}

cf_status cf_x509_key_generate(enum cf_x509_alg alg, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *k = NULL;

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
        return pkcs8_append(k, CF_E_INTERNAL, out);
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

static bool common_name_ok(const char *cn)
{
        size_t n = cn != NULL ? strlen(cn) : 0;

        if (n < 1 || n > CF_X509_CN_MAX) {
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (cn[i] < 0x20 || cn[i] > 0x7e) {
                        return false;
                }
        }
        return true;
}

static bool request_ok(const struct cf_x509_request *req)
{
        if (req == NULL || req->common_name == NULL || req->days < 1 ||
            req->days > CF_X509_DAYS_MAX || req->n_dns > CF_X509_SAN_MAX ||
            req->n_ip > CF_X509_SAN_MAX || (req->n_dns > 0 && req->dns == NULL) ||
            (req->n_ip > 0 && req->ip == NULL) ||
            (req->eku & ~(CF_X509_EKU_SERVER | CF_X509_EKU_CLIENT)) != 0 ||
            (req->ca && req->eku != 0) || req->path_len < -1 || req->path_len > 32) {
                return false;
        }
        return common_name_ok(req->common_name);
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

/* Signs a certificate for subject with sign_key; issuer_x is NULL for a self-signed one. */
static cf_status issue_with(const struct cf_x509_request *req, EVP_PKEY *subject,
                            EVP_PKEY *sign_key, X509 *issuer_x, struct cf_buf *out)
{
        CF_CLEANUP(x509_freep) X509 *x = NULL;
        unsigned char *der = NULL;
        int n;
        cf_status s;

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

/* The issuer's certificate and key, which must belong together and be a CA's. */
static cf_status load_issuer(struct cf_slice issuer_key, struct cf_slice issuer_cert, X509 **ret_x,
                             EVP_PKEY **ret_key)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *signer = NULL;
        CF_CLEANUP(x509_freep) X509 *issuer_x = NULL;

        TRY(parse_cert(issuer_cert, &issuer_x));
        TRY(parse_key(issuer_key, &signer));
        if (X509_check_private_key(issuer_x, signer) != 1) {
                return ossl_fail(CF_E_KEY);
        }
        /* 1: a CA by basicConstraints. Anything else cannot sign certificates. */
        ENSURE(X509_check_ca(issuer_x) == 1, CF_E_CERT);
        *ret_x = TAKE_PTR(issuer_x);
        *ret_key = TAKE_PTR(signer);
        return CF_OK;
}

cf_status cf_x509_issue(const struct cf_x509_request *req, struct cf_slice subject_key,
                        struct cf_slice issuer_key, struct cf_slice issuer_cert, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *subject = NULL;
        CF_CLEANUP(pkey_freep) EVP_PKEY *signer = NULL;
        CF_CLEANUP(x509_freep) X509 *issuer_x = NULL;

        ENSURE(out != NULL && request_ok(req), CF_E_INVALID_ARG);
        TRY(parse_key(subject_key, &subject));
        if (issuer_cert.size == 0) {
                return issue_with(req, subject, subject, NULL, out);
        }
        TRY(load_issuer(issuer_key, issuer_cert, &issuer_x, &signer));
        return issue_with(req, subject, signer, issuer_x, out);
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

/* ---- certificate requests ---------------------------------------------------------------- */

static const char *const g_alg_names[] = {
    [CF_X509_ED25519] = "ed25519", [CF_X509_P256] = "p256",       [CF_X509_P384] = "p384",
    [CF_X509_RSA2048] = "rsa2048", [CF_X509_RSA3072] = "rsa3072", [CF_X509_RSA4096] = "rsa4096",
};
#define ALG_NAMES_N (sizeof(g_alg_names) / sizeof(g_alg_names[0]))

const char *cf_x509_alg_name(enum cf_x509_alg alg)
{
        if ((size_t)alg < 1 || (size_t)alg >= ALG_NAMES_N) {
                return NULL;
        }
        return g_alg_names[alg];
}

cf_status cf_x509_alg_parse(const char *name, enum cf_x509_alg *ret)
{
        for (size_t i = 1; name != NULL && i < ALG_NAMES_N; i++) {
                if (strcmp(name, g_alg_names[i]) == 0) {
                        *ret = (enum cf_x509_alg)i;
                        return CF_OK;
                }
        }
        return cf_fail(CF_E_UNSUPPORTED);
}

/* The curve of an EC key, when it is named (explicit parameters are refused: a request could
 * otherwise smuggle a look-alike curve). */
static cf_status ec_alg(EVP_PKEY *k, enum cf_x509_alg *ret)
{
        char group[64];
        size_t len = 0;
        int explicit_params = 0, nid;

        if (EVP_PKEY_get_int_param(k, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                   &explicit_params) == 1 &&
            explicit_params != 0) {
                return ossl_fail(CF_E_UNSUPPORTED);
        }
        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &len) != 1) {
                return ossl_fail(CF_E_UNSUPPORTED);
        }
        nid = OBJ_sn2nid(group);
        if (nid == NID_undef) {
                nid = EC_curve_nist2nid(group);
        }
        if (nid == NID_X9_62_prime256v1) {
                *ret = CF_X509_P256;
        } else if (nid == NID_secp384r1) {
                *ret = CF_X509_P384;
        } else {
                return ossl_fail(CF_E_UNSUPPORTED);
        }
        return CF_OK;
}

/* Which of the algorithms cf_x509_key_generate makes a public key is; RSA below 2048 bits
 * is weak (CF_E_KEY), other types, curves and RSA sizes are CF_E_UNSUPPORTED. */
static cf_status key_alg(EVP_PKEY *k, enum cf_x509_alg *ret)
{
        int bits = EVP_PKEY_get_bits(k);

        switch (EVP_PKEY_get_base_id(k)) {
        case EVP_PKEY_ED25519:
                *ret = CF_X509_ED25519;
                return CF_OK;
        case EVP_PKEY_EC:
                return ec_alg(k, ret);
        case EVP_PKEY_RSA:
                ENSURE(bits >= 2048, CF_E_KEY);
                if (bits == 2048) {
                        *ret = CF_X509_RSA2048;
                } else if (bits == 3072) {
                        *ret = CF_X509_RSA3072;
                } else if (bits == 4096) {
                        *ret = CF_X509_RSA4096;
                } else {
                        return cf_fail(CF_E_UNSUPPORTED);
                }
                return CF_OK;
        default:
                return cf_fail(CF_E_UNSUPPORTED);
        }
}

/* OpenSSL's own consistency checks of a public key (point on the curve, RSA modulus and
 * exponent sanity). */
static cf_status public_check(EVP_PKEY *k)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        int ok;

        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_PKEY_public_check(ctx);
        EVP_PKEY_CTX_free(ctx);
        if (ok != 1) {
                return ossl_fail(CF_E_KEY);
        }
        return CF_OK;
}

/* The signature algorithm's parameters are not covered by the signature: only the exact
 * forms RFC 4055, RFC 5758 and RFC 8410 give are accepted (NULL or absent for RSA, absent for
 * ECDSA and Ed25519), so a request has a single encoding. */
static bool csr_sig_params_ok(const X509_REQ *req)
{
        const X509_ALGOR *alg = NULL;
        const ASN1_OBJECT *obj = NULL;
        const void *val = NULL;
        int type = V_ASN1_UNDEF;
        int nid = X509_REQ_get_signature_nid(req);

        X509_REQ_get0_signature(req, NULL, &alg);
        if (alg == NULL) {
                return false;
        }
        X509_ALGOR_get0(&obj, &type, &val, alg);
        if (nid == NID_sha256WithRSAEncryption || nid == NID_sha384WithRSAEncryption ||
            nid == NID_sha512WithRSAEncryption) {
                return type == V_ASN1_UNDEF || type == V_ASN1_NULL;
        }
        return type == V_ASN1_UNDEF;
}

/* The signature algorithms a request may use: proof of possession with a current hash. */
static bool csr_sig_allowed(int nid)
{
        static const int allowed[] = {
            NID_sha256WithRSAEncryption,
            NID_sha384WithRSAEncryption,
            NID_sha512WithRSAEncryption,
            NID_ecdsa_with_SHA256,
            NID_ecdsa_with_SHA384,
            NID_ecdsa_with_SHA512,
            NID_ED25519,
        };

        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
                if (allowed[i] == nid) {
                        return true;
                }
        }
        return false;
}

static cf_status spki_of(EVP_PKEY *k, struct cf_x509_csr_key *out)
{
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(k, &der);

        if (n <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        if ((size_t)n > sizeof(out->spki)) {
                OPENSSL_free(der);
                return cf_fail(CF_E_LIMIT);
        }
        memcpy(out->spki, der, (size_t)n);
        out->spki_size = (size_t)n;
        OPENSSL_free(der);
        return CF_OK;
}

cf_status cf_x509_csr_verify_der(struct cf_slice der, struct cf_x509_csr_key *ret)
{
        CF_CLEANUP(req_freep) X509_REQ *req = NULL;
        struct cf_x509_csr_key key = {0};
        const unsigned char *p = der.ptr;
        EVP_PKEY *pub;

        ENSURE(der.size > 0, CF_E_MALFORMED);
        ENSURE(der.size <= CF_X509_CSR_MAX, CF_E_LIMIT);
        req = d2i_X509_REQ(NULL, &p, (long)der.size);
        if (req == NULL) {
                return ossl_fail(CF_E_MALFORMED);
        }
        ENSURE(p == der.ptr + der.size, CF_E_MALFORMED);
        ENSURE(X509_REQ_get_version(req) == X509_REQ_VERSION_1, CF_E_VERSION);
        ENSURE(csr_sig_allowed(X509_REQ_get_signature_nid(req)), CF_E_SIG_INVALID);
        ENSURE(csr_sig_params_ok(req), CF_E_MALFORMED);
        pub = X509_REQ_get0_pubkey(req);
        if (pub == NULL) {
                return ossl_fail(CF_E_KEY);
        }
        TRY(key_alg(pub, &key.alg));
        TRY(public_check(pub));
        /* 1: verifies. 0 and -1 (the algorithm does not fit the key, bad encoding) refuse. */
        if (X509_REQ_verify(req, pub) != 1) {
                return ossl_fail(CF_E_SIG_INVALID);
        }
        TRY(spki_of(pub, &key));
        *ret = key;
        return CF_OK;
}

static bool is_space(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* True when the cursor holds nothing but whitespace. */
static bool only_space(struct cf_cursor c)
{
        uint8_t ch;

        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (!is_space(ch)) {
                        return false;
                }
        }
        return true;
}

cf_status cf_x509_csr_parse_verify(struct cf_slice pem, struct cf_x509_csr_key *ret)
{
        static const char begin[] = "-----BEGIN CERTIFICATE REQUEST-----";
        CF_CLEANUP(bio_freep) BIO *bio = NULL;
        struct cf_cursor c = cf_cursor_make(pem);
        struct cf_slice head;
        char *name = NULL, *header = NULL, *rest = NULL;
        unsigned char *data = NULL;
        long len = 0, left;
        cf_status s;

        ENSURE(pem.size <= CF_X509_CSR_MAX, CF_E_LIMIT);
        ENSURE(pem.size > 0 && memchr(pem.ptr, 0, pem.size) == NULL, CF_E_ENCODING);
        /* OpenSSL's reader skips text before a BEGIN line; a request is only the block. */
        TRY(cf_cursor_take(&c, sizeof(begin) - 1, &head));
        ENSURE(cf_slice_eq(head, cf_slice_make(begin, sizeof(begin) - 1)), CF_E_ENCODING);
        bio = BIO_new_mem_buf(pem.ptr, (int)pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        if (PEM_read_bio(bio, &name, &header, &data, &len) != 1) {
                return ossl_fail(CF_E_ENCODING);
        }
        s = strcmp(name, PEM_STRING_X509_REQ) == 0 && header[0] == '\0' && len > 0
                ? CF_OK
                : cf_fail(CF_E_ENCODING);
        left = BIO_get_mem_data(bio, &rest);
        if (cf_ok(s) && left > 0 &&
            !only_space(cf_cursor_make(cf_slice_make(rest, (size_t)left)))) {
                s = cf_fail(CF_E_ENCODING);
        }
        if (cf_ok(s)) {
                s = cf_x509_csr_verify_der(cf_slice_make(data, (size_t)len), ret);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        return s;
}

cf_status cf_x509_csr_create(struct cf_slice key, const char *common_name, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *k = NULL;
        CF_CLEANUP(req_freep) X509_REQ *req = NULL;
        CF_CLEANUP(bio_freep) BIO *bio = NULL;
        X509_NAME *name;

        ENSURE(out != NULL && common_name_ok(common_name), CF_E_INVALID_ARG);
        TRY(parse_key(key, &k));
        req = X509_REQ_new();
        ENSURE(req != NULL, CF_E_NOMEM);
        name = X509_REQ_get_subject_name(req);
        if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)common_name,
                                       -1, -1, 0) != 1 ||
            X509_REQ_set_pubkey(req, k) != 1 || X509_REQ_sign(req, k, sign_md(k)) <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        bio = BIO_new(BIO_s_mem());
        ENSURE(bio != NULL, CF_E_NOMEM);
        if (PEM_write_bio_X509_REQ(bio, req) != 1) {
                return ossl_fail(CF_E_CRYPTO);
        }
        return append_bio(bio, out);
}

cf_status cf_x509_issue_for_key(const struct cf_x509_request *req, struct cf_slice subject_spki,
                                struct cf_slice issuer_key, struct cf_slice issuer_cert,
                                struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *subject = NULL;
        CF_CLEANUP(pkey_freep) EVP_PKEY *signer = NULL;
        CF_CLEANUP(x509_freep) X509 *issuer_x = NULL;
        const unsigned char *p = subject_spki.ptr;

        ENSURE(out != NULL && request_ok(req) && issuer_cert.size > 0, CF_E_INVALID_ARG);
        ENSURE(subject_spki.size > 0 && subject_spki.size <= CF_X509_SPKI_MAX, CF_E_KEY);
        subject = d2i_PUBKEY(NULL, &p, (long)subject_spki.size);
        if (subject == NULL) {
                return ossl_fail(CF_E_KEY);
        }
        ENSURE(p == subject_spki.ptr + subject_spki.size, CF_E_KEY);
        TRY(load_issuer(issuer_key, issuer_cert, &issuer_x, &signer));
        return issue_with(req, subject, signer, issuer_x, out);
}

cf_status cf_x509_key_from_pem(struct cf_slice pem, struct cf_buf *out)
{
        CF_CLEANUP(pkey_freep) EVP_PKEY *k = NULL;
        CF_CLEANUP(bio_freep) BIO *bio = NULL;

        ENSURE(pem.size > 0 && pem.size <= 4 * CF_X509_KEY_MAX, CF_E_KEY);
        bio = BIO_new_mem_buf(pem.ptr, (int)pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        k = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        if (k == NULL) {
                return ossl_fail(CF_E_KEY);
        }
        return pkcs8_append(k, CF_E_KEY, out);
}

cf_status cf_x509_cert_from_pem(struct cf_slice pem, struct cf_buf *out)
{
        CF_CLEANUP(x509_freep) X509 *x = NULL;
        CF_CLEANUP(bio_freep) BIO *bio = NULL;
        unsigned char *der = NULL;
        int n;
        cf_status s;

        ENSURE(pem.size > 0 && pem.size <= (1u << 20), CF_E_CERT);
        bio = BIO_new_mem_buf(pem.ptr, (int)pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (x == NULL) {
                return ossl_fail(CF_E_CERT);
        }
        n = i2d_X509(x, &der);
        if (n <= 0) {
                return ossl_fail(CF_E_CRYPTO);
        }
        s = (size_t)n <= CF_X509_CERT_MAX ? cf_buf_append(out, der, (size_t)n) : cf_fail(CF_E_CERT);
        OPENSSL_free(der);
        return s;
}

cf_status cf_x509_cert_info(struct cf_slice der, char serial[static CF_X509_SERIAL_HEX_MAX],
                            int64_t *ret_not_after)
{
        CF_CLEANUP(x509_freep) X509 *x = NULL;
        ASN1_TIME *epoch;
        BIGNUM *bn;
        char *hex;
        int days = 0, secs = 0, ok;
        size_t n;

        TRY(parse_cert(der, &x));
        epoch = ASN1_TIME_set(NULL, 0);
        ENSURE(epoch != NULL, CF_E_NOMEM);
        ok = ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(x));
        ASN1_TIME_free(epoch);
        if (ok != 1 || days < 0 || secs < 0) {
                return ossl_fail(CF_E_CERT);
        }
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        if (bn == NULL) {
                return ossl_fail(CF_E_CERT);
        }
        hex = BN_bn2hex(bn);
        BN_free(bn);
        if (hex == NULL) {
                return ossl_fail(CF_E_NOMEM);
        }
        n = strlen(hex);
        if (n == 0 || n >= CF_X509_SERIAL_HEX_MAX || hex[0] == '-') {
                OPENSSL_free(hex);
                return cf_fail(CF_E_CERT);
        }
        for (size_t i = 0; i <= n; i++) {
                serial[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? (char)(hex[i] - 'A' + 'a') : hex[i];
        }
        OPENSSL_free(hex);
        *ret_not_after = (int64_t)days * 86400 + secs;
        return CF_OK;
}
