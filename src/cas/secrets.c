/* Secrets: generated inside cofferd when a policy version is stored, sealed in the store
 * (table "secret", key "POLICY:SECRET"), and substituted into a service's configuration at
 * activation. Generated values are never returned by the policy API.
 *
 * The stored value is the rendered text that placeholders receive: ascii characters from
 * the charset; hex or base64 text of `size` random bytes; raw bytes for binary.
 *
 * Keys and certificates are stored in binary and rendered per placeholder encoding at
 * activation (docs/policy.md, "Placeholders"): a private-key as its PKCS#8 DER; an x509-ca or
 * x509 as a framed pair (PKI_FRAME_VERSION, u16be length, PKCS#8 DER key, u16be length, DER
 * certificate). A public-key stores nothing: it is rendered from its private-key. Certificates
 * are issued in dependency order (a CA before what it issues), and a secret whose issuer was
 * regenerated is regenerated too, so a stored chain always verifies. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>

#include "base/codec.h"
#include "base/log.h"
#include "crypto/x509.h"
#include "policy/policy.h"
#include "store/store.h"

#define SECRET_TABLE      "secret"
#define SECRET_VALUE_MAX  16384
#define PKI_FRAME_VERSION 1
/* Longest chain of issuers followed when rendering :chain (the policy forbids cycles; this
 * only bounds the walk). */
#define PKI_CHAIN_MAX POLICY_SECRETS_MAX

static const char g_default_charset[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static cf_status secret_key(const struct policy *p, const char *name, char *out, size_t out_size)
{
        int n = snprintf(out, out_size, "%s:%s", p->name, name);

        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

/* Uniform characters from charset by rejection sampling (no modulo bias). */
static cf_status gen_ascii(const char *charset, size_t size, struct cf_buf *out)
{
        size_t n = strlen(charset), produced = 0;
        unsigned limit = 256u - 256u % (unsigned)n;
        uint8_t pool[64];
        CF_WIPE_ON_EXIT(pool);

        ENSURE(n >= 2 && n <= 95, CF_E_INVALID_ARG);
        TRY(cf_buf_reserve(out, size));
        while (produced < size) {
                TRY(cf_random(pool, sizeof(pool)));
                for (size_t i = 0; i < sizeof(pool) && produced < size; i++) {
                        if (pool[i] < limit) {
                                out->ptr[out->size++] = (uint8_t)charset[pool[i] % n];
                                produced++;
                        }
                }
        }
        out->ptr[out->size] = 0;
        return CF_OK;
}

static cf_status generate(const struct policy_secret *sec, struct cf_buf *out)
{
        struct cf_buf raw;
        cf_status s;

        if (sec->kind == POLICY_SECRET_ASCII) {
                return gen_ascii(sec->charset ? sec->charset : g_default_charset, sec->size, out);
        }
        cf_buf_init(&raw, SECRET_VALUE_MAX, true);
        s = cf_buf_reserve(&raw, sec->size);
        if (cf_ok(s)) {
                s = cf_random(raw.ptr, sec->size);
                raw.size = sec->size;
        }
        if (cf_ok(s)) {
                switch (sec->kind) {
                case POLICY_SECRET_HEX:
                        s = cf_buf_reserve(out, 2 * raw.size);
                        if (cf_ok(s)) {
                                cf_hex_encode(raw.ptr, raw.size, (char *)out->ptr + out->size,
                                              2 * raw.size + 1);
                                out->size += 2 * raw.size;
                        }
                        break;
                case POLICY_SECRET_BASE64:
                        s = cf_base64_encode_buf(raw.ptr, raw.size, out);
                        break;
                case POLICY_SECRET_BINARY:
                        s = cf_buf_append(out, raw.ptr, raw.size);
                        break;
                default:
                        s = cf_fail(CF_E_INTERNAL);
                        break;
                }
        }
        cf_buf_done(&raw);
        return s;
}

static bool same_str(const char *a, const char *b)
{
        return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
        if (na != nb) {
                return false;
        }
        for (size_t i = 0; i < na; i++) {
                if (!same_str(a[i], b[i])) {
                        return false;
                }
        }
        return true;
}

/* Same definition means same value: an update keeps a generated secret unless its kind,
 * size, charset or (keys and certificates) any field of its definition changed. The caller
 * also regenerates a certificate whose issuer was regenerated. */
static bool same_definition(const struct policy_secret *a, const struct policy_secret *b)
{
        return a->kind == b->kind && a->size == b->size && !a->has_value && !b->has_value &&
               same_str(a->charset, b->charset) && a->algorithm == b->algorithm &&
               same_str(a->issuer, b->issuer) && same_str(a->common_name, b->common_name) &&
               same_strv(a->dns, a->n_dns, b->dns, b->n_dns) &&
               same_strv(a->ip, a->n_ip, b->ip, b->n_ip) && a->usage == b->usage &&
               a->validity_days == b->validity_days && a->path_len == b->path_len;
}

/* ---- keys and certificates -------------------------------------------------------------- */

static enum cf_x509_alg x509_alg(enum policy_key_alg a)
{
        switch (a) {
        case POLICY_ALG_ED25519:
                return CF_X509_ED25519;
        case POLICY_ALG_P384:
                return CF_X509_P384;
        case POLICY_ALG_RSA2048:
                return CF_X509_RSA2048;
        case POLICY_ALG_RSA3072:
                return CF_X509_RSA3072;
        case POLICY_ALG_RSA4096:
                return CF_X509_RSA4096;
        case POLICY_ALG_P256:
        default:
                return CF_X509_P256;
        }
}

static bool is_cert(const struct policy_secret *sec)
{
        return sec->kind == POLICY_SECRET_X509_CA || sec->kind == POLICY_SECRET_X509;
}

static cf_status append_u16be(struct cf_buf *b, size_t v)
{
        uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};

        ENSURE(v <= UINT16_MAX, CF_E_LIMIT);
        return cf_buf_append(b, be, sizeof(be));
}

/* Frames a key and a certificate for storage (see the header comment). */
static cf_status pki_frame(struct cf_slice key, struct cf_slice cert, struct cf_buf *out)
{
        uint8_t version = PKI_FRAME_VERSION;

        TRY(cf_buf_append(out, &version, 1));
        TRY(append_u16be(out, key.size));
        TRY(cf_buf_append(out, key.ptr, key.size));
        TRY(append_u16be(out, cert.size));
        return cf_buf_append(out, cert.ptr, cert.size);
}

/* Splits a stored frame; both slices borrow from stored. The store authenticated the bytes,
 * but they are parsed as strictly as untrusted input all the same. */
static cf_status pki_unframe(struct cf_slice stored, struct cf_slice *ret_key,
                             struct cf_slice *ret_cert)
{
        struct cf_cursor c = cf_cursor_make(stored);
        struct cf_slice key, cert;
        uint8_t version;
        uint16_t n;

        TRY(cf_cursor_u8(&c, &version));
        ENSURE(version == PKI_FRAME_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u16be(&c, &n));
        ENSURE(n > 0 && n <= CF_X509_KEY_MAX, CF_E_MALFORMED);
        TRY(cf_cursor_take(&c, n, &key));
        TRY(cf_cursor_u16be(&c, &n));
        ENSURE(n > 0 && n <= CF_X509_CERT_MAX, CF_E_MALFORMED);
        TRY(cf_cursor_take(&c, n, &cert));
        TRY(cf_cursor_expect_end(&c));
        *ret_key = key;
        *ret_cert = cert;
        return CF_OK;
}

/* Reads the latest stored value of a secret into out (a secret buffer). */
static cf_status load_stored(struct cas_worker *w, const struct policy *p, const char *name,
                             struct cf_buf *out)
{
        char key[400];
        cf_status s;

        TRY(secret_key(p, name, key, sizeof(key)));
        s = store_get(w->store, SECRET_TABLE, key, 0, out, NULL);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, SECRET_TABLE, key);
        }
        return s;
}

/* A new key and certificate for an x509-ca or x509 secret, signed by its issuer's stored key
 * (which provisioning wrote earlier in this same transaction). */
static cf_status generate_cert(struct cas_worker *w, const struct policy *p,
                               const struct policy_secret *sec, struct cf_buf *out)
{
        struct cf_x509_request req = {
            .common_name = sec->common_name,
            .ca = sec->kind == POLICY_SECRET_X509_CA,
            .path_len = sec->kind == POLICY_SECRET_X509_CA ? sec->path_len : -1,
            .dns = (const char *const *)sec->dns,
            .n_dns = sec->n_dns,
            .ip = (const char *const *)sec->ip,
            .n_ip = sec->n_ip,
            .eku = sec->kind == POLICY_SECRET_X509
                       ? ((sec->usage & POLICY_USAGE_SERVER) ? CF_X509_EKU_SERVER : 0u) |
                             ((sec->usage & POLICY_USAGE_CLIENT) ? CF_X509_EKU_CLIENT : 0u)
                       : 0u,
            .days = sec->validity_days,
        };
        struct cf_buf key, cert, issuer;
        struct cf_slice ikey = {0}, icert = {0};
        cf_status s;

        cf_buf_init(&key, CF_X509_KEY_MAX, true);
        cf_buf_init(&cert, CF_X509_CERT_MAX, false);
        cf_buf_init(&issuer, SECRET_VALUE_MAX, true);
        s = cf_x509_key_generate(x509_alg(sec->algorithm), &key);
        if (cf_ok(s) && sec->issuer != NULL) {
                s = load_stored(w, p, sec->issuer, &issuer);
                if (cf_ok(s)) {
                        s = pki_unframe(cf_buf_slice(&issuer), &ikey, &icert);
                }
        }
        if (cf_ok(s)) {
                s = cf_x509_issue(&req, cf_buf_slice(&key), ikey, icert, &cert);
        }
        if (cf_ok(s)) {
                s = pki_frame(cf_buf_slice(&key), cf_buf_slice(&cert), out);
        }
        cf_buf_done(&issuer);
        cf_buf_done(&cert);
        cf_buf_done(&key);
        return s;
}

/* Number of issuers above a certificate secret (0 for roots and for other kinds). */
static size_t issuer_depth(const struct policy *p, const struct policy_secret *sec)
{
        size_t d = 0;

        while (sec != NULL && sec->issuer != NULL && d < p->n_secrets) {
                sec = policy_find_secret(p, sec->issuer);
                d++;
        }
        return d;
}

static cf_status provision_one(struct cas_worker *w, const struct policy *p,
                               const struct policy *previous, size_t i, bool *regenerated)
{
        const struct policy_secret *sec = &p->secrets[i];
        const struct policy_secret *old = previous ? policy_find_secret(previous, sec->name) : NULL;
        bool issuer_new = false;
        char key[400];
        uint64_t latest = 0;
        struct cf_buf value;
        cf_status s;

        if (sec->has_value || sec->kind == POLICY_SECRET_PUBLIC_KEY) {
                return CF_OK; /* explicit values live in the (sealed) document; public keys
                                 are rendered from their private key */
        }
        for (size_t k = 0; sec->issuer != NULL && k < p->n_secrets; k++) {
                issuer_new =
                    issuer_new || (regenerated[k] && strcmp(p->secrets[k].name, sec->issuer) == 0);
        }
        TRY(secret_key(p, sec->name, key, sizeof(key)));
        s = store_latest(w->store, SECRET_TABLE, key, &latest);
        if (cf_ok(s) && old != NULL && same_definition(sec, old) && !issuer_new) {
                return CF_OK;
        }
        if (!cf_ok(s) && s.code != CF_E_NOT_FOUND) {
                cas_log_store_error(w->cas, s, SECRET_TABLE, key);
                return s;
        }
        cf_buf_init(&value, SECRET_VALUE_MAX, true);
        if (sec->kind == POLICY_SECRET_PRIVATE_KEY) {
                s = cf_x509_key_generate(x509_alg(sec->algorithm), &value);
        } else if (is_cert(sec)) {
                s = generate_cert(w, p, sec, &value);
        } else {
                s = generate(sec, &value);
        }
        if (cf_ok(s)) {
                s = store_put(w->store, SECRET_TABLE, key, latest + 1, cf_buf_slice(&value));
                if (!cf_ok(s)) {
                        cas_log_store_error(w->cas, s, SECRET_TABLE, key);
                }
        }
        cf_buf_done(&value);
        if (cf_ok(s)) {
                regenerated[i] = true;
        }
        return s;
}

cf_status cas_secrets_provision(struct cas_worker *w, const struct policy *p,
                                const struct policy *previous)
{
        CF_AUTOFREE bool *regenerated = calloc(p->n_secrets ? p->n_secrets : 1, sizeof(bool));
        size_t max_depth = 0;

        ENSURE(regenerated != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < p->n_secrets; i++) {
                size_t d = issuer_depth(p, &p->secrets[i]);
                max_depth = d > max_depth ? d : max_depth;
        }
        /* By depth: every issuer is stored (and known to be new or not) before what it
         * issues. The policy validator refused cycles, so depths are finite. */
        for (size_t d = 0; d <= max_depth; d++) {
                for (size_t i = 0; i < p->n_secrets; i++) {
                        if (issuer_depth(p, &p->secrets[i]) == d) {
                                TRY(provision_one(w, p, previous, i, regenerated));
                        }
                }
        }
        return CF_OK;
}

/* ---- rendering ----------------------------------------------------------------------- */

static cf_status append_hex(const uint8_t *data, size_t n, struct cf_buf *out)
{
        size_t need;

        ENSURE(!cf_mul_overflow(n, (size_t)2, &need), CF_E_OVERFLOW);
        TRY(cf_buf_reserve(out, need + 1));
        cf_hex_encode(data, n, (char *)out->ptr + out->size, need + 1);
        out->size += need;
        out->ptr[out->size] = 0;
        return CF_OK;
}

/* DER bytes in a binary encoding: der:base64 and base64 are the same, hex is hex. */
static cf_status render_der(struct cf_slice der, enum policy_enc enc, struct cf_buf *out)
{
        if (enc == POLICY_ENC_HEX) {
                return append_hex(der.ptr, der.size, out);
        }
        ENSURE(enc == POLICY_ENC_DER_BASE64 || enc == POLICY_ENC_BASE64, CF_E_INTERNAL);
        return cf_base64_encode_buf(der.ptr, der.size, out);
}

/* The bytes of a generated or explicit secret of the first four kinds, for :hex/:base64:
 * the random (or given) bytes for hex/base64/binary, the characters for ascii. */
static cf_status plain_bytes(struct cas_worker *w, const struct policy *p,
                             const struct policy_secret *sec, struct cf_buf *out)
{
        struct cf_buf text;
        cf_status s;

        if (sec->has_value) {
                return cf_buf_append(out, sec->value, sec->value_size);
        }
        if (sec->kind == POLICY_SECRET_ASCII || sec->kind == POLICY_SECRET_BINARY) {
                return load_stored(w, p, sec->name, out);
        }
        cf_buf_init(&text, SECRET_VALUE_MAX, true);
        s = load_stored(w, p, sec->name, &text);
        if (cf_ok(s)) {
                s = sec->kind == POLICY_SECRET_HEX ? cf_hex_decode_buf(cf_buf_slice(&text), out)
                                                   : cf_base64_decode_buf(cf_buf_slice(&text), out);
        }
        cf_buf_done(&text);
        return s;
}

/* Placeholders without an encoding keep their behaviour from before encodings existed. */
static cf_status render_plain(struct cas_worker *w, const struct policy *p,
                              const struct policy_secret *sec, enum policy_enc enc,
                              struct cf_buf *out)
{
        struct cf_buf raw;
        cf_status s;

        if (enc == POLICY_ENC_DEFAULT) {
                if (!sec->has_value) {
                        return load_stored(w, p, sec->name, out);
                }
                switch (sec->kind) {
                case POLICY_SECRET_HEX:
                        return append_hex(sec->value, sec->value_size, out);
                case POLICY_SECRET_BASE64:
                        return cf_base64_encode_buf(sec->value, sec->value_size, out);
                default:
                        return cf_buf_append(out, sec->value, sec->value_size);
                }
        }
        cf_buf_init(&raw, SECRET_VALUE_MAX, true);
        s = plain_bytes(w, p, sec, &raw);
        if (cf_ok(s)) {
                s = render_der(cf_buf_slice(&raw), enc, out);
        }
        cf_buf_done(&raw);
        return s;
}

static cf_status render_private_key(struct cf_slice key, enum policy_enc enc, struct cf_buf *out)
{
        switch (enc) {
        case POLICY_ENC_DEFAULT:
        case POLICY_ENC_PEM:
        case POLICY_ENC_KEY:
                return cf_x509_key_pem(key, false, out);
        case POLICY_ENC_PKCS8:
                return cf_x509_key_pem(key, true, out);
        case POLICY_ENC_PUBLIC:
                return cf_x509_public_key(key, false, true, out);
        default:
                return render_der(key, enc, out);
        }
}

static cf_status render_public_key(struct cf_slice key, enum policy_enc enc, struct cf_buf *out)
{
        struct cf_buf spki;
        cf_status s;

        if (enc == POLICY_ENC_DEFAULT || enc == POLICY_ENC_PEM || enc == POLICY_ENC_PUBLIC) {
                return cf_x509_public_key(key, false, true, out);
        }
        cf_buf_init(&spki, SECRET_VALUE_MAX, false);
        s = cf_x509_public_key(key, false, false, &spki);
        if (cf_ok(s)) {
                s = render_der(cf_buf_slice(&spki), enc, out);
        }
        cf_buf_done(&spki);
        return s;
}

/* The certificate of an x509-ca or x509 secret, then those of its issuers, as PEM. */
static cf_status render_chain(struct cas_worker *w, const struct policy *p,
                              const struct policy_secret *sec, struct cf_buf *out)
{
        for (size_t n = 0; sec != NULL; n++) {
                struct cf_buf stored;
                struct cf_slice key, cert;
                cf_status s;

                ENSURE(n < PKI_CHAIN_MAX && is_cert(sec), CF_E_INTERNAL);
                cf_buf_init(&stored, SECRET_VALUE_MAX, true);
                s = load_stored(w, p, sec->name, &stored);
                if (cf_ok(s)) {
                        s = pki_unframe(cf_buf_slice(&stored), &key, &cert);
                }
                if (cf_ok(s)) {
                        s = cf_x509_cert_pem(cert, out);
                }
                cf_buf_done(&stored);
                TRY(s);
                sec = sec->issuer != NULL ? policy_find_secret(p, sec->issuer) : NULL;
        }
        return CF_OK;
}

static cf_status render_cert(struct cas_worker *w, const struct policy *p,
                             const struct policy_secret *sec, enum policy_enc enc,
                             struct cf_buf *out)
{
        struct cf_buf stored;
        struct cf_slice key, cert;
        cf_status s;

        if (enc == POLICY_ENC_CHAIN) {
                return render_chain(w, p, sec, out);
        }
        cf_buf_init(&stored, SECRET_VALUE_MAX, true);
        s = load_stored(w, p, sec->name, &stored);
        if (cf_ok(s)) {
                s = pki_unframe(cf_buf_slice(&stored), &key, &cert);
        }
        if (cf_ok(s)) {
                switch (enc) {
                case POLICY_ENC_DEFAULT:
                case POLICY_ENC_PEM:
                        s = cf_x509_cert_pem(cert, out);
                        break;
                case POLICY_ENC_KEY:
                        s = cf_x509_key_pem(key, false, out);
                        break;
                case POLICY_ENC_PKCS8:
                        s = cf_x509_key_pem(key, true, out);
                        break;
                case POLICY_ENC_PUBLIC:
                        s = cf_x509_public_key(cert, true, true, out);
                        break;
                default:
                        s = render_der(cert, enc, out);
                        break;
                }
        }
        cf_buf_done(&stored);
        return s;
}

static cf_status render(struct cas_worker *w, const struct policy *p,
                        const struct policy_secret *sec, enum policy_enc enc, struct cf_buf *out)
{
        struct cf_buf key;
        const struct policy_secret *priv;
        cf_status s;

        /* Validation refused every unfit encoding; this guards stored policies all the same. */
        ENSURE(policy_encoding_fits(sec->kind, enc), CF_E_UNSUPPORTED);
        switch (sec->kind) {
        case POLICY_SECRET_PRIVATE_KEY:
        case POLICY_SECRET_PUBLIC_KEY:
                priv = sec->kind == POLICY_SECRET_PUBLIC_KEY ? policy_find_secret(p, sec->of) : sec;
                ENSURE(priv != NULL && priv->kind == POLICY_SECRET_PRIVATE_KEY, CF_E_NOT_FOUND);
                cf_buf_init(&key, SECRET_VALUE_MAX, true);
                s = load_stored(w, p, priv->name, &key);
                if (cf_ok(s)) {
                        s = sec->kind == POLICY_SECRET_PRIVATE_KEY
                                ? render_private_key(cf_buf_slice(&key), enc, out)
                                : render_public_key(cf_buf_slice(&key), enc, out);
                }
                cf_buf_done(&key);
                return s;
        case POLICY_SECRET_X509_CA:
        case POLICY_SECRET_X509:
                return render_cert(w, p, sec, enc, out);
        default:
                return render_plain(w, p, sec, enc, out);
        }
}

cf_status cas_secret_value(struct cas_worker *w, const struct policy *p, const char *name,
                           struct cf_buf *out)
{
        char secret_name[POLICY_SECRET_NAME_MAX + 1];
        struct policy_encoding enc;
        const struct policy_secret *sec;
        struct cf_buf tmp;
        cf_status s;

        /* name is a placeholder reference: NAME or NAME:ENCODING. */
        TRY(policy_placeholder_split(name, secret_name, &enc));
        sec = policy_find_secret(p, secret_name);
        ENSURE(sec != NULL, CF_E_NOT_FOUND);
        if (!enc.json) {
                return render(w, p, sec, enc.base, out);
        }
        cf_buf_init(&tmp, out->max, true);
        s = render(w, p, sec, enc.base, &tmp);
        if (cf_ok(s)) {
                s = policy_json_escape(cf_buf_slice(&tmp), out);
        }
        cf_buf_done(&tmp);
        return s;
}
