/* X.509 glue for the Intel verifier: strict PEM and DER loading, times, names, raw ECDSA
 * signatures, the PCK SGX extension, and the parsed PCK chain of a quote.
 *
 * OpenSSL parses the DER; everything around it (PEM framing, the SGX extension's DER) is
 * read through the cursor. */
#include "attest/intel/intel_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "base/codec.h"
#include "base/mem.h"

/* SHA-256 of the DER Intel SGX Root CA (vectors README section 2). */
static const uint8_t g_root_sha256[32] = {
    0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
    0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
};

static void buf_donep(struct cf_buf *b)
{
        cf_buf_done(b);
}

static bool is_ws(uint8_t b)
{
        return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

static bool is_b64(uint8_t b)
{
        return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
               b == '+' || b == '/' || b == '=';
}

static void skip_ws(struct cf_cursor *c)
{
        for (;;) {
                struct cf_cursor s = *c;
                uint8_t b;
                if (!cf_ok(cf_cursor_u8(&s, &b)) || !is_ws(b)) {
                        return;
                }
                *c = s;
        }
}

static CF_FN expect_lit(struct cf_cursor *c, const char *lit)
{
        struct cf_slice s;

        TRY(cf_cursor_take(c, strlen(lit), &s));
        ENSURE(cf_slice_eq(s, cf_slice_str(lit)), CF_E_ENCODING);
        return CF_OK;
}

/* One "-----BEGIN label-----" .. "-----END label-----" block, base64 decoded into der. */
static CF_FN pem_block(struct cf_cursor *c, const char *label, struct cf_buf *der)
{
        CF_CLEANUP(buf_donep) struct cf_buf b64;
        char begin[48], end[48];

        cf_buf_init(&b64, 2 * INTEL_CRL_DER_MAX, false);
        snprintf(begin, sizeof(begin), "-----BEGIN %s-----", label);
        snprintf(end, sizeof(end), "-----END %s-----", label);
        TRY(expect_lit(c, begin));
        for (;;) {
                struct cf_cursor s = *c;
                uint8_t b;
                TRY(cf_cursor_u8(&s, &b));
                if (b == '-') {
                        break;
                }
                *c = s;
                if (is_ws(b)) {
                        continue;
                }
                ENSURE(is_b64(b), CF_E_ENCODING);
                TRY(cf_buf_append(&b64, &b, 1));
        }
        TRY(expect_lit(c, end));
        return cf_base64_decode_buf(cf_buf_slice(&b64), der);
}

/* True when only whitespace and NUL bytes remain (the PCK chain's "\n\0" ending, G18). */
static bool only_padding_left(struct cf_cursor c)
{
        uint8_t b;

        while (cf_ok(cf_cursor_u8(&c, &b))) {
                if (b != 0 && !is_ws(b)) {
                        return false;
                }
        }
        return true;
}

cf_status intel_der_cert(struct cf_slice der, X509 **ret)
{
        const unsigned char *p = der.ptr;
        X509 *x;

        ENSURE(der.size > 0 && der.size <= INTEL_DER_MAX, CF_E_CERT);
        x = d2i_X509(NULL, &p, (long)der.size);
        ENSURE(x != NULL, CF_E_CERT);
        if ((size_t)(p - der.ptr) != der.size) {
                X509_free(x);
                return cf_fail(CF_E_TRAILING);
        }
        *ret = x;
        return CF_OK;
}

cf_status intel_der_crl(struct cf_slice der, X509_CRL **ret)
{
        const unsigned char *p = der.ptr;
        X509_CRL *x;

        ENSURE(der.size > 0 && der.size <= INTEL_CRL_DER_MAX, CF_E_CERT);
        x = d2i_X509_CRL(NULL, &p, (long)der.size);
        ENSURE(x != NULL, CF_E_CERT);
        if ((size_t)(p - der.ptr) != der.size) {
                X509_CRL_free(x);
                return cf_fail(CF_E_TRAILING);
        }
        *ret = x;
        return CF_OK;
}

static void free_certs(X509 **certs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                X509_free(certs[i]);
        }
}

static CF_FN pem_certs_into(struct cf_cursor *c, X509 **certs, size_t max, size_t *n)
{
        for (;;) {
                CF_CLEANUP(buf_donep) struct cf_buf der = {0};
                X509 *x;

                cf_buf_init(&der, INTEL_DER_MAX, false);
                skip_ws(c);
                if (only_padding_left(*c)) {
                        return CF_OK;
                }
                ENSURE(*n < max, CF_E_LIMIT);
                TRY(pem_block(c, "CERTIFICATE", &der));
                TRY(intel_der_cert(cf_buf_slice(&der), &x));
                certs[(*n)++] = x;
        }
}

cf_status intel_pem_certs(struct cf_slice pem, X509 **certs, size_t max, size_t *ret_n)
{
        struct cf_cursor c = cf_cursor_make(pem);
        size_t n = 0;
        cf_status s = pem_certs_into(&c, certs, max, &n);

        if (!cf_ok(s) || n == 0) {
                free_certs(certs, n);
                return cf_ok(s) ? cf_fail(CF_E_ENCODING) : s;
        }
        *ret_n = n;
        return CF_OK;
}

cf_status intel_pem_crl(struct cf_slice pem, X509_CRL **ret)
{
        CF_CLEANUP(buf_donep) struct cf_buf der;
        struct cf_cursor c = cf_cursor_make(pem);

        cf_buf_init(&der, INTEL_CRL_DER_MAX, false);
        skip_ws(&c);
        TRY(pem_block(&c, "X509 CRL", &der));
        ENSURE(only_padding_left(c), CF_E_TRAILING);
        return intel_der_crl(cf_buf_slice(&der), ret);
}

cf_status intel_asn1_time(const ASN1_TIME *t, int64_t *ret)
{
        struct tm tm = {0};
        time_t v;

        ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, CF_E_CERT);
        v = timegm(&tm);
        ENSURE(v != (time_t)-1, CF_E_CERT);
        *ret = (int64_t)v;
        return CF_OK;
}

cf_status intel_name_cn(const X509_NAME *name, char *out, size_t out_size)
{
        int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        const ASN1_STRING *s;

        ENSURE(i >= 0, CF_E_CERT);
        s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        ENSURE(s != NULL && ASN1_STRING_length(s) >= 0, CF_E_CERT);
        return cf_slice_to_cstr(
            cf_slice_make(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)), out, out_size);
}

bool intel_cert_is_pinned_root(X509 *cert)
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != sizeof(g_root_sha256)) {
                return false;
        }
        return cf_slice_eq(cf_slice_make(md, n), cf_slice_make(g_root_sha256, n));
}

cf_status intel_cert_key(X509 *cert, struct cf_pkey **ret)
{
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
        struct cf_pkey *k = NULL;
        cf_status s;

        ENSURE(n > 0, CF_E_KEY);
        s = cf_pkey_from_spki(cf_slice_make(der, (size_t)n), &k);
        OPENSSL_free(der);
        TRY(s);
        if (cf_pkey_type(k) != CF_KEY_P256) {
                cf_pkey_free(k);
                return cf_fail(CF_E_KEY);
        }
        *ret = k;
        return CF_OK;
}

cf_status intel_p256_key(const uint8_t xy[64], struct cf_pkey **ret)
{
        /* SubjectPublicKeyInfo header for an uncompressed P-256 point. */
        static const uint8_t prefix[27] = {
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
        };
        uint8_t spki[sizeof(prefix) + 64];

        memcpy(spki, prefix, sizeof(prefix));
        memcpy(spki + sizeof(prefix), xy, 64);
        return cf_pkey_from_spki(cf_slice_make(spki, sizeof(spki)), ret);
}

cf_status intel_verify_raw(const struct cf_pkey *key, struct cf_slice msg, const uint8_t sig[64])
{
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        unsigned char *der = NULL;
        int n = -1;
        cf_status st;

        if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
                ECDSA_SIG_free(es);
                BN_free(r);
                BN_free(s);
                return cf_fail(CF_E_NOMEM);
        }
        n = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es); /* owns r and s now */
        ENSURE(n > 0, CF_E_CRYPTO);
        st = cf_verify(key, msg, cf_slice_make(der, (size_t)n));
        OPENSSL_free(der);
        return st;
}

cf_status intel_cert_signed_by(X509 *cert, X509 *issuer)
{
        EVP_PKEY *k = X509_get0_pubkey(issuer);

        ENSURE(X509_check_issued(issuer, cert) == X509_V_OK, CF_E_CHAIN);
        ENSURE(k != NULL && X509_verify(cert, k) == 1, CF_E_SIG_INVALID);
        return CF_OK;
}

/* ---- DER of the SGX extension (read through the cursor) ---- */

static CF_FN der_any(struct cf_cursor *c, uint8_t *ret_tag, struct cf_cursor *ret)
{
        uint8_t tag, l, b;
        size_t len = 0;

        TRY(cf_cursor_u8(c, &tag));
        TRY(cf_cursor_u8(c, &l));
        if (l < 0x80) {
                len = l;
        } else {
                size_t n = l & 0x7fu;
                ENSURE(n >= 1 && n <= 3, CF_E_MALFORMED);
                for (size_t i = 0; i < n; i++) {
                        TRY(cf_cursor_u8(c, &b));
                        len = len << 8 | b;
                }
        }
        TRY(cf_cursor_sub(c, len, ret));
        *ret_tag = tag;
        return CF_OK;
}

static CF_FN der_tlv(struct cf_cursor *c, uint8_t want, struct cf_cursor *ret)
{
        uint8_t tag = 0;
        struct cf_cursor v;

        TRY(der_any(c, &tag, &v));
        ENSURE(tag == want, CF_E_MALFORMED);
        *ret = v;
        return CF_OK;
}

/* A non-negative INTEGER up to max. */
static CF_FN der_uint(struct cf_cursor *c, uint32_t max, uint32_t *ret)
{
        struct cf_cursor v;
        uint8_t b;
        uint32_t x = 0;

        TRY(der_tlv(c, 0x02, &v));
        ENSURE(cf_cursor_left(&v) >= 1 && cf_cursor_left(&v) <= 3, CF_E_MALFORMED);
        for (size_t i = 0; cf_ok(cf_cursor_u8(&v, &b)); i++) {
                ENSURE(i > 0 || (b & 0x80) == 0, CF_E_MALFORMED);
                x = x << 8 | b;
        }
        ENSURE(x <= max, CF_E_MALFORMED);
        *ret = x;
        return CF_OK;
}

static CF_FN der_octets(struct cf_cursor *c, uint8_t *out, size_t n)
{
        struct cf_cursor v;

        TRY(der_tlv(c, 0x04, &v));
        ENSURE(cf_cursor_left(&v) == n, CF_E_MALFORMED);
        return cf_cursor_copy(&v, out, n);
}

/* OID 1.2.840.113741.1.13.1 followed by arcs (each < 128): returns the arcs. */
static CF_FN sgx_oid(struct cf_cursor *c, uint8_t *arcs, size_t max, size_t *ret_n)
{
        static const uint8_t prefix[9] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
        struct cf_cursor v;
        struct cf_slice p;
        size_t n = 0;
        uint8_t b;

        TRY(der_tlv(c, 0x06, &v));
        TRY(cf_cursor_take(&v, sizeof(prefix), &p));
        ENSURE(cf_slice_eq(p, cf_slice_make(prefix, sizeof(prefix))), CF_E_MALFORMED);
        while (cf_ok(cf_cursor_u8(&v, &b))) {
                ENSURE(n < max && b < 0x80, CF_E_MALFORMED);
                arcs[n++] = b;
        }
        *ret_n = n;
        return CF_OK;
}

#define HAVE_COMPS  0x1ffffu /* components 1..16 and PCESVN */
#define HAVE_PCEID  (1u << 20)
#define HAVE_FMSPC  (1u << 21)
#define HAVE_CPUSVN (1u << 22)

static CF_FN parse_tcb_seq(struct cf_cursor *c, struct intel_pck_ext *e, uint32_t *have)
{
        while (cf_cursor_left(c) > 0) {
                struct cf_cursor ent;
                uint8_t arcs[4];
                size_t n;
                uint32_t v;

                TRY(der_tlv(c, 0x30, &ent));
                TRY(sgx_oid(&ent, arcs, sizeof(arcs), &n));
                ENSURE(n == 2 && arcs[0] == 2 && arcs[1] >= 1 && arcs[1] <= 18, CF_E_MALFORMED);
                if (arcs[1] <= 16) {
                        TRY(der_uint(&ent, 255, &v));
                        e->comp[arcs[1] - 1] = (uint8_t)v;
                        *have |= 1u << (arcs[1] - 1);
                } else if (arcs[1] == 17) {
                        TRY(der_uint(&ent, 0xffff, &v));
                        e->pcesvn = (uint16_t)v;
                        *have |= 1u << 16;
                } else {
                        TRY(der_octets(&ent, e->cpusvn, sizeof(e->cpusvn)));
                        *have |= HAVE_CPUSVN;
                }
                TRY(cf_cursor_expect_end(&ent));
        }
        return CF_OK;
}

static CF_FN parse_sgx_ext(struct cf_cursor *c, struct intel_pck_ext *e)
{
        struct cf_cursor seq;
        uint32_t have = 0;

        TRY(der_tlv(c, 0x30, &seq));
        TRY(cf_cursor_expect_end(c));
        while (cf_cursor_left(&seq) > 0) {
                struct cf_cursor ent, v;
                uint8_t arcs[4], tag;
                size_t n;

                TRY(der_tlv(&seq, 0x30, &ent));
                TRY(sgx_oid(&ent, arcs, sizeof(arcs), &n));
                ENSURE(n == 1, CF_E_MALFORMED);
                switch (arcs[0]) {
                case 2:
                        TRY(der_tlv(&ent, 0x30, &v));
                        TRY(parse_tcb_seq(&v, e, &have));
                        break;
                case 3:
                        TRY(der_octets(&ent, e->pce_id, sizeof(e->pce_id)));
                        have |= HAVE_PCEID;
                        break;
                case 4:
                        TRY(der_octets(&ent, e->fmspc, sizeof(e->fmspc)));
                        have |= HAVE_FMSPC;
                        break;
                case 6:
                        TRY(der_octets(&ent, e->instance_id, sizeof(e->instance_id)));
                        e->has_instance = true;
                        break;
                default: /* PPID, SGX type, configuration: not used here */
                        TRY(der_any(&ent, &tag, &v));
                        break;
                }
                TRY(cf_cursor_expect_end(&ent));
        }
        ENSURE((have & (HAVE_COMPS | HAVE_PCEID | HAVE_FMSPC)) ==
                   (HAVE_COMPS | HAVE_PCEID | HAVE_FMSPC),
               CF_E_CERT);
        return CF_OK;
}

cf_status intel_pck_ext_parse(X509 *cert, struct intel_pck_ext *ret)
{
        ASN1_OBJECT *oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        struct intel_pck_ext e = {0};
        const ASN1_OCTET_STRING *data;
        struct cf_cursor c;
        int i;

        ENSURE(oid != NULL, CF_E_NOMEM);
        i = X509_get_ext_by_OBJ(cert, oid, -1);
        ASN1_OBJECT_free(oid);
        ENSURE(i >= 0, CF_E_CERT);
        data = X509_EXTENSION_get_data(X509_get_ext(cert, i));
        ENSURE(data != NULL && ASN1_STRING_length(data) > 0, CF_E_CERT);
        c = cf_cursor_make(
            cf_slice_make(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data)));
        TRY(parse_sgx_ext(&c, &e));
        *ret = e;
        return CF_OK;
}

/* ---- the PCK chain ---- */

void intel_chain_free(struct intel_chain *c)
{
        if (c == NULL) {
                return;
        }
        free_certs(c->certs, 3);
        cf_pkey_free(c->pck_key);
        free(c);
}

static void intel_chain_freep(struct intel_chain **p)
{
        intel_chain_free(*p);
        *p = NULL;
}

cf_status intel_chain_build(struct cf_slice pem, struct intel_chain **ret)
{
        CF_CLEANUP(intel_chain_freep) struct intel_chain *c = calloc(1, sizeof(*c));
        X509 *certs[INTEL_PEM_CERTS_MAX];
        size_t n = 0;

        ENSURE(c != NULL, CF_E_NOMEM);
        TRY(intel_pem_certs(pem, certs, INTEL_PEM_CERTS_MAX, &n));
        if (n != 3) {
                free_certs(certs, n);
                return cf_fail(CF_E_CHAIN);
        }
        memcpy(c->certs, certs, sizeof(c->certs));
        for (size_t i = 0; i < 3; i++) {
                TRY(intel_asn1_time(X509_get0_notBefore(c->certs[i]), &c->not_before[i]));
                TRY(intel_asn1_time(X509_get0_notAfter(c->certs[i]), &c->not_after[i]));
                TRY(intel_name_cn(X509_get_subject_name(c->certs[i]), c->cn[i], INTEL_NAME_MAX));
        }
        TRY(intel_cert_key(c->certs[0], &c->pck_key));
        TRY(intel_pck_ext_parse(c->certs[0], &c->ext));
        c->root_pinned = intel_cert_is_pinned_root(c->certs[2]);
        c->sig_ok[0] =
            cf_ok(intel_cert_signed_by(c->certs[0], c->certs[1])) && X509_check_ca(c->certs[1]) > 0;
        c->sig_ok[1] =
            cf_ok(intel_cert_signed_by(c->certs[1], c->certs[2])) && X509_check_ca(c->certs[2]) > 0;
        c->sig_ok[2] = cf_ok(intel_cert_signed_by(c->certs[2], c->certs[2]));
        *ret = TAKE_PTR(c);
        return CF_OK;
}
