/* Secrets: generated inside cofferd when a policy version is stored, sealed in the store, and
 * substituted into a service's configuration at activation. Generated values are never
 * returned by the policy API.
 *
 * Versions (docs/formats/store.md, "Secrets"). Each secret has a reference row (table
 * "secret_ref", key "POLICY:SECRET") naming its current generation and at most one previous
 * one; each generation's value is one row (table "secret", key "POLICY:SECRET#GEN", version
 * 1). Making a new generation writes its value, advances the reference with the next store
 * version (a compare-and-swap: a concurrent writer gets CF_E_EXISTS), and deletes the
 * generation that fell out (the previous of the previous), so cofferd holds at most two
 * values of a secret. A row "secret"/"POLICY:SECRET" without a reference is a value stored
 * before versions existed; it is served as the current (and previous) value and moved to a
 * generation by the next provisioning.
 *
 * The stored value is the rendered text that placeholders receive: ascii characters from
 * the charset; hex or base64 text of `size` random bytes; raw bytes for binary. Explicit
 * values are stored the same way (so their previous version exists after a change), but the
 * current one is rendered from the document.
 *
 * Keys and certificates are stored in binary and rendered per placeholder encoding at
 * activation (docs/policy.md, "Placeholders"): a private-key as its PKCS#8 DER; an x509-ca or
 * x509 as a framed pair (PKI_FRAME_VERSION, u16be length, PKCS#8 DER key, u16be length, DER
 * certificate). A public-key stores nothing: it is rendered from its private-key. Certificates
 * are issued in dependency order (a CA before what it issues), and a secret whose issuer was
 * regenerated is regenerated too, so a stored chain always verifies; a certificate close to
 * its expiry is re-issued for the same key at activation (renewal).
 *
 * Imported secrets store nothing: they are rendered from the exporter's rows, after checking
 * again that the exporter exists, exports the secret to the importer and (when pinned) has
 * the pinned digest. */
#include "cas/cas.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "crypto/x509.h"
#include "policy/policy.h"
#include "store/store.h"

#define SECRET_TABLE       "secret"
#define SECRET_REF_TABLE   "secret_ref"
#define SECRET_REF_VERSION 1
#define SECRET_REF_SIZE    17 /* version, current, previous */
#define SECRET_KEY_MAX     400
#define SECRET_VALUE_MAX   16384
#define PKI_FRAME_VERSION  1
/* Longest chain of issuers followed when rendering :chain (the policy forbids cycles; this
 * only bounds the walk). */
#define PKI_CHAIN_MAX POLICY_SECRETS_MAX
#define DAY_SECONDS   86400
/* The policy record of an exporter (policies.c stores the document base64 in JSON). */
#define EXPORTER_DOC_MAX (1u << 20)

static const char g_default_charset[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* ---- store rows ---------------------------------------------------------------------- */

/* Which generations of a secret exist. */
struct sref {
        uint64_t version;  /* store version of the reference row; 0: none (legacy) */
        uint64_t current;  /* generation; 0 with legacy */
        uint64_t previous; /* 0: none, the previous version is the current one */
        bool legacy;       /* a value stored before versions existed, no reference row */
};

static cf_status ref_key(const char *policy, const char *name, char out[static SECRET_KEY_MAX])
{
        int n = snprintf(out, SECRET_KEY_MAX, "%s:%s", policy, name);

        ENSURE(n > 0 && (size_t)n < SECRET_KEY_MAX, CF_E_LIMIT);
        return CF_OK;
}

/* The row of a generation; generation 0 is the legacy row "POLICY:SECRET". */
static cf_status gen_key(const char *policy, const char *name, uint64_t gen,
                         char out[static SECRET_KEY_MAX])
{
        int n = gen == 0 ? snprintf(out, SECRET_KEY_MAX, "%s:%s", policy, name)
                         : snprintf(out, SECRET_KEY_MAX, "%s:%s#%" PRIu64, policy, name, gen);

        ENSURE(n > 0 && (size_t)n < SECRET_KEY_MAX, CF_E_LIMIT);
        return CF_OK;
}

static cf_status ref_decode(struct cf_slice b, struct sref *ret)
{
        struct cf_cursor c = cf_cursor_make(b);
        struct sref r = {0};
        uint8_t version;

        TRY(cf_cursor_u8(&c, &version));
        ENSURE(version == SECRET_REF_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u64be(&c, &r.current));
        TRY(cf_cursor_u64be(&c, &r.previous));
        TRY(cf_cursor_expect_end(&c));
        ENSURE(r.current > 0 && r.previous < r.current, CF_E_MALFORMED);
        *ret = r;
        return CF_OK;
}

static void put_u64be(uint8_t *out, uint64_t v)
{
        for (size_t i = 0; i < 8; i++) {
                out[i] = (uint8_t)(v >> (56 - 8 * i));
        }
}

/* Reads the reference of a secret; CF_E_NOT_FOUND when it has never been stored. */
static cf_status ref_read(struct cas_worker *w, const char *policy, const char *name,
                          struct sref *ret)
{
        char key[SECRET_KEY_MAX];
        struct cf_buf b;
        struct sref r = {0};
        uint64_t latest = 0;
        cf_status s;

        TRY(ref_key(policy, name, key));
        cf_buf_init(&b, SECRET_REF_SIZE, false);
        s = store_get(w->store, SECRET_REF_TABLE, key, 0, &b, &r.version);
        if (cf_ok(s)) {
                uint64_t v = r.version;
                s = ref_decode(cf_buf_slice(&b), &r);
                r.version = v;
                if (!cf_ok(s)) {
                        s = cf_fail(CF_E_TAMPERED); /* authenticated, yet not ours */
                }
        }
        cf_buf_done(&b);
        if (s.code == CF_E_NOT_FOUND) {
                s = store_latest(w->store, SECRET_TABLE, key, &latest);
                r = (struct sref){.legacy = true};
        }
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, SECRET_REF_TABLE, key);
                return s;
        }
        *ret = r;
        return CF_OK;
}

static cf_status gen_read(struct cas_worker *w, const char *policy, const char *name, uint64_t gen,
                          struct cf_buf *out)
{
        char key[SECRET_KEY_MAX];
        cf_status s;

        TRY(gen_key(policy, name, gen, key));
        s = store_get(w->store, SECRET_TABLE, key, 0, out, NULL);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, SECRET_TABLE, key);
        }
        return s;
}

/* Reads the stored value of a secret (current or previous version) into out (a secret
 * buffer). A generation deleted between reading the reference and the value (a concurrent
 * rotation) is retried once with the new reference. */
static cf_status stored_read(struct cas_worker *w, const char *policy, const char *name,
                             bool previous, struct cf_buf *out)
{
        struct sref r;
        cf_status s = CF_OK;

        for (int attempt = 0; attempt < 2; attempt++) {
                TRY(ref_read(w, policy, name, &r));
                s = gen_read(w, policy, name, previous && r.previous != 0 ? r.previous : r.current,
                             out);
                if (s.code != CF_E_NOT_FOUND) {
                        return s;
                }
        }
        return s;
}

static cf_status gen_delete(struct cas_worker *w, const char *policy, const char *name,
                            uint64_t gen)
{
        char key[SECRET_KEY_MAX];
        cf_status s;

        TRY(gen_key(policy, name, gen, key));
        s = store_delete(w->store, SECRET_TABLE, key);
        if (!cf_ok(s) && s.code != CF_E_NOT_FOUND) {
                cas_log_store_error(w->cas, s, SECRET_TABLE, key);
                return s;
        }
        return CF_OK;
}

/* Makes value the new current generation. The old current becomes the previous one unless
 * fresh (a new secret, a new kind: no previous), and every generation that is neither is
 * deleted. old is the reference read in the same transaction (NULL: none yet). Must run in
 * a store transaction: CF_E_EXISTS or CF_E_CONFLICT when a concurrent writer advanced the
 * reference first. */
static cf_status ref_advance(struct cas_worker *w, const char *policy, const char *name,
                             const struct sref *old, bool fresh, struct cf_slice value,
                             uint64_t *ret_gen)
{
        char key[SECRET_KEY_MAX];
        uint8_t rec[SECRET_REF_SIZE];
        uint64_t gen = old != NULL ? old->current + 1 : 1;
        uint64_t previous = old != NULL && !fresh && !old->legacy ? old->current : 0;
        cf_status s;

        ENSURE(old == NULL || !old->legacy, CF_E_INTERNAL); /* migrated first */
        ENSURE(gen < STORE_VERSION_MAX, CF_E_LIMIT);
        TRY(gen_key(policy, name, gen, key));
        s = store_put(w->store, SECRET_TABLE, key, 1, value);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, SECRET_TABLE, key);
                return s;
        }
        rec[0] = SECRET_REF_VERSION;
        put_u64be(rec + 1, gen);
        put_u64be(rec + 9, previous);
        TRY(ref_key(policy, name, key));
        s = store_put(w->store, SECRET_REF_TABLE, key, old != NULL ? old->version + 1 : 1,
                      cf_slice_make(rec, sizeof(rec)));
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, SECRET_REF_TABLE, key);
                return s;
        }
        if (old != NULL && old->previous != 0) {
                TRY(gen_delete(w, policy, name, old->previous));
        }
        if (old != NULL && fresh) {
                TRY(gen_delete(w, policy, name, old->current));
        }
        *ret_gen = gen;
        return CF_OK;
}

/* A value stored before versions existed becomes generation 1 (in the caller's
 * transaction); *r is updated. */
static cf_status migrate_legacy(struct cas_worker *w, const char *policy, const char *name,
                                struct sref *r)
{
        struct cf_buf value;
        uint64_t gen = 0;
        cf_status s;

        cf_buf_init(&value, SECRET_VALUE_MAX, true);
        s = gen_read(w, policy, name, 0, &value);
        if (cf_ok(s)) {
                s = ref_advance(w, policy, name, NULL, true, cf_buf_slice(&value), &gen);
        }
        cf_buf_done(&value);
        TRY(s);
        TRY(gen_delete(w, policy, name, 0));
        *r = (struct sref){.version = 1, .current = gen};
        return CF_OK;
}

/* ---- generation ------------------------------------------------------------------------ */

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

/* The stored (rendered) text of raw bytes for the first four kinds. */
static cf_status plain_stored_form(enum policy_secret_kind kind, struct cf_slice raw,
                                   struct cf_buf *out)
{
        switch (kind) {
        case POLICY_SECRET_HEX:
                return append_hex(raw.ptr, raw.size, out);
        case POLICY_SECRET_BASE64:
                return cf_base64_encode_buf(raw.ptr, raw.size, out);
        case POLICY_SECRET_ASCII:
        case POLICY_SECRET_BINARY:
                return cf_buf_append(out, raw.ptr, raw.size);
        default:
                return cf_fail(CF_E_INTERNAL);
        }
}

static cf_status generate(const struct policy_secret *sec, struct cf_buf *out)
{
        struct cf_buf raw;
        cf_status s;

        if (sec->has_value) {
                return plain_stored_form(sec->kind, cf_slice_make(sec->value, sec->value_size),
                                         out);
        }
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
                s = plain_stored_form(sec->kind, cf_buf_slice(&raw), out);
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

/* Explicit values compare in constant time (they are secrets). */
static bool same_value(const struct policy_secret *a, const struct policy_secret *b)
{
        if (a->has_value != b->has_value) {
                return false;
        }
        return !a->has_value ||
               (a->value_size == b->value_size && cf_ct_eq(a->value, b->value, a->value_size));
}

/* Same definition means same value: an update keeps a secret unless its kind, size,
 * charset, explicit value, rotate generation or (keys and certificates) any field of its
 * definition changed. renew_before_days and export do not change the value. The caller also
 * regenerates a certificate whose issuer was regenerated. */
static bool same_definition(const struct policy_secret *a, const struct policy_secret *b)
{
        return a->kind == b->kind && a->size == b->size && same_value(a, b) &&
               a->rotate == b->rotate && same_str(a->charset, b->charset) &&
               a->algorithm == b->algorithm && same_str(a->issuer, b->issuer) &&
               same_str(a->common_name, b->common_name) &&
               same_strv(a->dns, a->n_dns, b->dns, b->n_dns) &&
               same_strv(a->ip, a->n_ip, b->ip, b->n_ip) && a->usage == b->usage &&
               a->validity_days == b->validity_days && a->path_len == b->path_len;
}

/* ---- keys and certificates -------------------------------------------------------------- */

enum cf_x509_alg cas_x509_alg(enum policy_key_alg a)
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

/* Exactly one DER certificate, for X509_check_issued; NULL when it does not parse or has
 * trailing bytes. */
static X509 *cert_parse(struct cf_slice der)
{
        const unsigned char *q = der.ptr;
        X509 *x;

        if (der.size == 0 || der.size > CF_X509_CERT_MAX) {
                return NULL;
        }
        x = d2i_X509(NULL, &q, (long)der.size);
        if (x != NULL && i2d_X509(x, NULL) != (int)der.size) {
                X509_free(x);
                x = NULL;
        }
        return x;
}

/* True when the certificate issuer_der issued subject_der (names and key identifiers). */
static bool cert_issued(struct cf_slice issuer_der, struct cf_slice subject_der)
{
        X509 *i = cert_parse(issuer_der), *c = cert_parse(subject_der);
        bool ok = i != NULL && c != NULL && X509_check_issued(i, c) == X509_V_OK;

        X509_free(i);
        X509_free(c);
        return ok;
}

static struct cf_x509_request cert_request(const struct policy_secret *sec)
{
        return (struct cf_x509_request){
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
}

/* A certificate for key (PKCS#8 DER), signed by its issuer's current key (which
 * provisioning wrote earlier in this same transaction), framed with the key into out. */
static cf_status issue_cert(struct cas_worker *w, const struct policy *p,
                            const struct policy_secret *sec, struct cf_slice key,
                            struct cf_buf *out)
{
        struct cf_x509_request req = cert_request(sec);
        struct cf_buf cert, issuer;
        struct cf_slice ikey = {0}, icert = {0};
        cf_status s = CF_OK;

        cf_buf_init(&cert, CF_X509_CERT_MAX, false);
        cf_buf_init(&issuer, SECRET_VALUE_MAX, true);
        if (sec->issuer != NULL) {
                s = stored_read(w, p->name, sec->issuer, false, &issuer);
                if (cf_ok(s)) {
                        s = pki_unframe(cf_buf_slice(&issuer), &ikey, &icert);
                }
        }
        if (cf_ok(s)) {
                s = cf_x509_issue(&req, key, ikey, icert, &cert);
        }
        if (cf_ok(s)) {
                s = pki_frame(key, cf_buf_slice(&cert), out);
        }
        cf_buf_done(&issuer);
        cf_buf_done(&cert);
        return s;
}

/* A new key and certificate for an x509-ca or x509 secret. */
static cf_status generate_cert(struct cas_worker *w, const struct policy *p,
                               const struct policy_secret *sec, struct cf_buf *out)
{
        struct cf_buf key;
        cf_status s;

        cf_buf_init(&key, CF_X509_KEY_MAX, true);
        s = cf_x509_key_generate(cas_x509_alg(sec->algorithm), &key);
        if (cf_ok(s)) {
                s = issue_cert(w, p, sec, cf_buf_slice(&key), out);
        }
        cf_buf_done(&key);
        return s;
}

/* ---- provisioning --------------------------------------------------------------------- */

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
        bool issuer_new = false, have;
        struct sref ref = {0};
        uint64_t gen = 0;
        struct cf_buf value;
        cf_status s;

        if (sec->kind == POLICY_SECRET_PUBLIC_KEY || sec->kind == POLICY_SECRET_IMPORT) {
                return CF_OK; /* public keys are rendered from their private key, imports from
                                 the exporter's rows */
        }
        for (size_t k = 0; sec->issuer != NULL && k < p->n_secrets; k++) {
                issuer_new =
                    issuer_new || (regenerated[k] && strcmp(p->secrets[k].name, sec->issuer) == 0);
        }
        s = ref_read(w, p->name, sec->name, &ref);
        if (!cf_ok(s) && s.code != CF_E_NOT_FOUND) {
                return s;
        }
        have = cf_ok(s);
        if (have && ref.legacy) {
                TRY(migrate_legacy(w, p->name, sec->name, &ref));
        }
        if (have && old != NULL && same_definition(sec, old) && !issuer_new) {
                return CF_OK;
        }
        cf_buf_init(&value, SECRET_VALUE_MAX, true);
        if (sec->kind == POLICY_SECRET_PRIVATE_KEY) {
                s = cf_x509_key_generate(cas_x509_alg(sec->algorithm), &value);
        } else if (is_cert(sec)) {
                s = generate_cert(w, p, sec, &value);
        } else {
                s = generate(sec, &value);
        }
        if (cf_ok(s)) {
                /* A secret new to the policy (or of another kind than before) has no
                 * previous version: an older value under its name is not its past. */
                s = ref_advance(w, p->name, sec->name, have ? &ref : NULL,
                                old == NULL || old->kind != sec->kind, cf_buf_slice(&value), &gen);
        }
        cf_buf_done(&value);
        if (cf_ok(s)) {
                regenerated[i] = true;
        }
        return s;
}

/* A secret the previous version had and this one has not: its values are deleted (the
 * reference row stays, so generation numbers never repeat). */
static cf_status purge_removed(struct cas_worker *w, const struct policy *p,
                               const struct policy *previous)
{
        for (size_t i = 0; previous != NULL && i < previous->n_secrets; i++) {
                const struct policy_secret *gone = &previous->secrets[i];
                struct sref ref;
                cf_status s;

                if (policy_find_secret(p, gone->name) != NULL) {
                        continue;
                }
                s = ref_read(w, p->name, gone->name, &ref);
                if (s.code == CF_E_NOT_FOUND) {
                        continue;
                }
                TRY(s);
                TRY(gen_delete(w, p->name, gone->name, ref.current));
                if (ref.previous != 0) {
                        TRY(gen_delete(w, p->name, gone->name, ref.previous));
                }
        }
        return CF_OK;
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
        return purge_removed(w, p, previous);
}

/* ---- imports -------------------------------------------------------------------------- */

/* Why an import does not resolve (the messages are shown to the importer's author). */
enum import_state {
        IMPORT_OK = 0,
        IMPORT_NO_POLICY,
        IMPORT_DELETED,
        IMPORT_UNREADABLE,
        IMPORT_NO_SECRET,
        IMPORT_NOT_EXPORTED,
        IMPORT_DIGEST,
};

/* The exporter as stored now: its parsed latest version (owned) and its digest. */
struct exporter {
        struct policy *policy;
        const struct policy_secret *sec; /* the imported secret, in policy */
        char digest[CF_KEY_ID_HEX];
};

static void exporter_done(struct exporter *e)
{
        e->policy = policy_free(e->policy);
        e->sec = NULL;
}

/* Resolves an imported secret of importer. *ret_state says whether (and why not) it
 * resolves; the status is not OK only when the store failed (then nothing may be served).
 * On IMPORT_OK, ret holds the exporter (the caller calls exporter_done). */
static cf_status import_resolve(struct cas_worker *w, const struct policy *importer,
                                const struct policy_secret *sec, struct exporter *ret,
                                enum import_state *ret_state)
{
        struct cas_policy_record rec;
        struct policy_errors errs;
        struct exporter e = {0};
        enum import_state st = IMPORT_OK;
        cf_status s;

        ENSURE(sec->kind == POLICY_SECRET_IMPORT && sec->import_policy != NULL &&
                   sec->import_secret != NULL,
               CF_E_INTERNAL);
        cas_policy_record_init(&rec);
        s = cas_policy_load(w, sec->import_policy, 0, &rec);
        if (s.code == CF_E_NOT_FOUND) {
                st = IMPORT_NO_POLICY;
                s = CF_OK;
        } else if (cf_ok(s) && rec.deleted) {
                st = IMPORT_DELETED;
        } else if (cf_ok(s)) {
                memcpy(e.digest, rec.digest, sizeof(e.digest));
                memset(&errs, 0, sizeof(errs));
                if (!cf_ok(policy_parse(cf_buf_slice(&rec.document), &e.policy, &errs))) {
                        st = IMPORT_UNREADABLE;
                }
        }
        cas_policy_record_done(&rec);
        TRY(s);
        if (st == IMPORT_OK) {
                e.sec = policy_find_secret(e.policy, sec->import_secret);
                if (e.sec == NULL) {
                        st = IMPORT_NO_SECRET;
                } else if (!policy_export_allows(e.sec, importer->name)) {
                        st = IMPORT_NOT_EXPORTED;
                } else if (sec->import_digest[0] != '\0' &&
                           strcmp(sec->import_digest, e.digest) != 0) {
                        st = IMPORT_DIGEST;
                }
        }
        if (st != IMPORT_OK && st != IMPORT_DIGEST) {
                exporter_done(&e);
        }
        *ret_state = st;
        *ret = e; /* with IMPORT_DIGEST the caller reads the digest, then calls exporter_done */
        return CF_OK;
}

/* The explanation of an import state, for errors and activation checks. */
static void import_explain(const struct policy_secret *sec, enum import_state st,
                           const struct exporter *e, char *out, size_t size)
{
        switch (st) {
        case IMPORT_NO_POLICY:
                snprintf(out, size, "exporter policy %s not found", sec->import_policy);
                break;
        case IMPORT_DELETED:
                snprintf(out, size, "exporter deleted: policy %s was deleted", sec->import_policy);
                break;
        case IMPORT_UNREADABLE:
                snprintf(out, size, "exporter policy %s cannot be read", sec->import_policy);
                break;
        case IMPORT_NO_SECRET:
                snprintf(out, size, "secret %s not found in policy %s", sec->import_secret,
                         sec->import_policy);
                break;
        case IMPORT_NOT_EXPORTED:
                snprintf(out, size, "secret %s of policy %s is not exported to this policy",
                         sec->import_secret, sec->import_policy);
                break;
        case IMPORT_DIGEST:
                snprintf(out, size, "pinned digest differs: pinned %s, exporter's digest %s",
                         sec->import_digest, e->digest);
                break;
        case IMPORT_OK:
        default:
                snprintf(out, size, "%s of %s, exported to this policy", sec->import_secret,
                         sec->import_policy);
                break;
        }
}

/* ---- renewal --------------------------------------------------------------------------- */

/* Re-issues the certificate of p->secrets[idx] (same key, new serial and validity) when
 * fewer than renew_before_days remain, after renewing its issuers in the same way. Each
 * secret is considered once per activation (visited, one flag per secret of p), so every
 * placeholder of one bundle sees the same certificate even when renew_before_days is not
 * below validity_days. Runs in its own store transaction (a compare-and-swap on the
 * reference: when another worker renewed first, its certificate is kept) and audits
 * "secret.renewed" after the commit. */
static cf_status renew_if_due(struct cas_worker *w, const struct policy *p, size_t idx, int64_t now,
                              bool *visited, size_t depth)
{
        const struct policy_secret *sec = &p->secrets[idx];
        struct sref ref;
        struct cf_buf stored, value;
        struct cf_slice key, cert;
        int64_t not_after = 0, new_not_after = 0;
        char serial[CF_X509_SERIAL_HEX_MAX], when[32];
        uint64_t gen = 0;
        cf_status s;

        ENSURE(idx < p->n_secrets && depth <= POLICY_ISSUER_DEPTH_MAX + 1, CF_E_INTERNAL);
        if (visited[idx] || !is_cert(sec)) {
                return CF_OK;
        }
        visited[idx] = true;
        if (sec->issuer != NULL && policy_find_secret(p, sec->issuer) != NULL) {
                const struct policy_secret *issuer = policy_find_secret(p, sec->issuer);
                TRY(renew_if_due(w, p, (size_t)(issuer - p->secrets), now, visited, depth + 1));
        }
        if (sec->renew_before_days == 0) {
                return CF_OK;
        }
        s = ref_read(w, p->name, sec->name, &ref);
        if (s.code == CF_E_NOT_FOUND || (cf_ok(s) && ref.legacy)) {
                return CF_OK; /* provisioning migrates or makes it first */
        }
        TRY(s);
        cf_buf_init(&stored, SECRET_VALUE_MAX, true);
        cf_buf_init(&value, SECRET_VALUE_MAX, true);
        s = gen_read(w, p->name, sec->name, ref.current, &stored);
        if (cf_ok(s)) {
                s = pki_unframe(cf_buf_slice(&stored), &key, &cert);
        }
        if (cf_ok(s)) {
                char ignored[CF_X509_SERIAL_HEX_MAX];
                s = cf_x509_cert_info(cert, ignored, &not_after);
        }
        if (cf_ok(s) && not_after - now >= (int64_t)sec->renew_before_days * DAY_SECONDS) {
                goto out; /* not due */
        }
        if (cf_ok(s)) {
                s = issue_cert(w, p, sec, key, &value);
        }
        if (cf_ok(s)) {
                s = store_begin(w->store);
                if (s.code == CF_E_INVALID_ARG) {
                        /* Called inside a caller's transaction: renewal waits for the next
                         * activation rather than write into someone else's change. */
                        s = CF_OK;
                        goto out;
                }
        }
        if (cf_ok(s)) {
                struct sref now_ref;
                /* Inside the transaction: the reference must still be the one renewed. */
                s = ref_read(w, p->name, sec->name, &now_ref);
                if (cf_ok(s) && (now_ref.version != ref.version || now_ref.legacy)) {
                        store_rollback(w->store);
                        goto out; /* another worker renewed or rotated it: keep theirs */
                }
                if (cf_ok(s)) {
                        s = ref_advance(w, p->name, sec->name, &ref, false, cf_buf_slice(&value),
                                        &gen);
                }
                if (cf_ok(s)) {
                        s = store_commit(w->store);
                } else {
                        store_rollback(w->store);
                }
                if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                        s = CF_OK; /* lost the race: the winner's certificate is current */
                        goto out;
                }
        }
        if (cf_ok(s)) {
                struct cf_slice nk, nc;
                s = pki_unframe(cf_buf_slice(&value), &nk, &nc);
                if (cf_ok(s)) {
                        s = cf_x509_cert_info(nc, serial, &new_not_after);
                }
        }
        if (cf_ok(s)) {
                cf_format_rfc3339(new_not_after, when, sizeof(when));
                cf_log_info("secret renewed policy=%s secret=%s serial=%s not_after=%s", p->name,
                            sec->name, serial, when);
                cf_ignore(cas_audit_append(
                    w, "secret.renewed", "cofferd",
                    json_pack("{s:s, s:s, s:s, s:s, s:I}", "policy", p->name, "secret", sec->name,
                              "serial", serial, "not_after", when, "generation", (json_int_t)gen)));
        }
out:
        cf_buf_done(&value);
        cf_buf_done(&stored);
        return s;
}

/* ---- rendering ----------------------------------------------------------------------- */

/* DER bytes in a binary encoding: der:base64 and base64 are the same, hex is hex. */
static cf_status render_der(struct cf_slice der, enum policy_enc enc, struct cf_buf *out)
{
        if (enc == POLICY_ENC_HEX) {
                return append_hex(der.ptr, der.size, out);
        }
        ENSURE(enc == POLICY_ENC_DER_BASE64 || enc == POLICY_ENC_BASE64, CF_E_INTERNAL);
        return cf_base64_encode_buf(der.ptr, der.size, out);
}

/* The stored form of a secret's current or previous version. The current version of an
 * explicit value comes from the document (which the importer or service was granted); its
 * previous one from the store, when there is one. */
static cf_status load_version(struct cas_worker *w, const struct policy *p,
                              const struct policy_secret *sec, bool previous, struct cf_buf *out)
{
        struct sref ref;
        cf_status s;

        if (!sec->has_value) {
                return stored_read(w, p->name, sec->name, previous, out);
        }
        if (previous) {
                s = ref_read(w, p->name, sec->name, &ref);
                if (cf_ok(s) && !ref.legacy && ref.previous != 0) {
                        return gen_read(w, p->name, sec->name, ref.previous, out);
                }
                if (!cf_ok(s) && s.code != CF_E_NOT_FOUND) {
                        return s;
                }
        }
        return plain_stored_form(sec->kind, cf_slice_make(sec->value, sec->value_size), out);
}

/* The bytes of a secret of the first four kinds, for :hex/:base64: the random (or given)
 * bytes for hex/base64/binary, the characters for ascii. */
static cf_status plain_bytes(struct cas_worker *w, const struct policy *p,
                             const struct policy_secret *sec, bool previous, struct cf_buf *out)
{
        struct cf_buf text;
        cf_status s;

        if (sec->kind == POLICY_SECRET_ASCII || sec->kind == POLICY_SECRET_BINARY) {
                return load_version(w, p, sec, previous, out);
        }
        cf_buf_init(&text, SECRET_VALUE_MAX, true);
        s = load_version(w, p, sec, previous, &text);
        if (cf_ok(s)) {
                s = sec->kind == POLICY_SECRET_HEX ? cf_hex_decode_buf(cf_buf_slice(&text), out)
                                                   : cf_base64_decode_buf(cf_buf_slice(&text), out);
        }
        cf_buf_done(&text);
        return s;
}

/* Placeholders without an encoding keep their behaviour from before encodings existed: the
 * stored text. */
static cf_status render_plain(struct cas_worker *w, const struct policy *p,
                              const struct policy_secret *sec, enum policy_enc enc, bool previous,
                              struct cf_buf *out)
{
        struct cf_buf raw;
        cf_status s;

        if (enc == POLICY_ENC_DEFAULT) {
                return load_version(w, p, sec, previous, out);
        }
        cf_buf_init(&raw, SECRET_VALUE_MAX, true);
        s = plain_bytes(w, p, sec, previous, &raw);
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

/* Appends to out the frame of the version of issuer that issued the certificate child: its
 * current version, or else its previous one (after a CA rotation, a previous certificate
 * was issued by the previous CA). */
static cf_status issuer_version(struct cas_worker *w, const struct policy *p,
                                const struct policy_secret *issuer, struct cf_slice child,
                                struct cf_buf *out)
{
        struct cf_slice key, cert;
        cf_status s;

        for (int previous = 0; previous < 2; previous++) {
                cf_buf_reset(out);
                s = load_version(w, p, issuer, previous != 0, out);
                if (cf_ok(s)) {
                        s = pki_unframe(cf_buf_slice(out), &key, &cert);
                }
                TRY(s);
                if (cert_issued(cert, child)) {
                        return CF_OK;
                }
        }
        /* Neither: serve the current one (the chain will not verify, as stored). */
        cf_buf_reset(out);
        return load_version(w, p, issuer, false, out);
}

/* The certificate of an x509-ca or x509 secret, then those of its issuers, as PEM. */
static cf_status render_chain(struct cas_worker *w, const struct policy *p,
                              const struct policy_secret *sec, bool previous, struct cf_buf *out)
{
        struct cf_buf stored, next;
        struct cf_slice key, cert;
        cf_status s;

        cf_buf_init(&stored, SECRET_VALUE_MAX, true);
        cf_buf_init(&next, SECRET_VALUE_MAX, true);
        s = load_version(w, p, sec, previous, &stored);
        for (size_t n = 0; cf_ok(s); n++) {
                const struct policy_secret *issuer;
                struct cf_buf tmp;

                if (n >= PKI_CHAIN_MAX || !is_cert(sec)) {
                        s = cf_fail(CF_E_INTERNAL);
                        break;
                }
                s = pki_unframe(cf_buf_slice(&stored), &key, &cert);
                if (cf_ok(s)) {
                        s = cf_x509_cert_pem(cert, out);
                }
                issuer = sec->issuer != NULL ? policy_find_secret(p, sec->issuer) : NULL;
                if (!cf_ok(s) || issuer == NULL) {
                        break;
                }
                s = issuer_version(w, p, issuer, cert, &next);
                tmp = stored;
                stored = next;
                next = tmp;
                sec = issuer;
        }
        cf_buf_done(&next);
        cf_buf_done(&stored);
        return s;
}

static cf_status render_cert(struct cas_worker *w, const struct policy *p,
                             const struct policy_secret *sec, enum policy_enc enc, bool previous,
                             struct cf_buf *out)
{
        struct cf_buf stored;
        struct cf_slice key, cert;
        cf_status s;

        if (enc == POLICY_ENC_CHAIN) {
                return render_chain(w, p, sec, previous, out);
        }
        cf_buf_init(&stored, SECRET_VALUE_MAX, true);
        s = load_version(w, p, sec, previous, &stored);
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
                        const struct policy_secret *sec, struct policy_encoding enc,
                        struct cf_buf *out);

/* An imported secret: the exporter's, rendered as the exporter's policy defines it, after
 * checking the exporter's consent again (it may have been withdrawn since the importer was
 * stored). */
static cf_status render_import(struct cas_worker *w, const struct policy *p,
                               const struct policy_secret *sec, struct policy_encoding enc,
                               struct cf_buf *out)
{
        struct exporter e = {0};
        enum import_state st = IMPORT_OK;
        cf_status s;

        TRY(import_resolve(w, p, sec, &e, &st));
        if (st != IMPORT_OK) {
                exporter_done(&e);
                return cf_fail(CF_E_PERMISSION);
        }
        /* The exporter's secret is never itself an import (imports cannot be exported). */
        s = e.sec->kind != POLICY_SECRET_IMPORT ? render(w, e.policy, e.sec, enc, out)
                                                : cf_fail(CF_E_INTERNAL);
        exporter_done(&e);
        return s;
}

static cf_status render(struct cas_worker *w, const struct policy *p,
                        const struct policy_secret *sec, struct policy_encoding enc,
                        struct cf_buf *out)
{
        struct cf_buf key;
        const struct policy_secret *priv;
        cf_status s;

        if (sec->kind == POLICY_SECRET_IMPORT) {
                return render_import(w, p, sec, enc, out);
        }
        /* Validation refused every unfit encoding; this guards stored policies (and the
         * exporter of an import, checked when the importer was stored) all the same. */
        ENSURE(policy_encoding_fits(sec->kind, enc.base), CF_E_UNSUPPORTED);
        switch (sec->kind) {
        case POLICY_SECRET_PRIVATE_KEY:
        case POLICY_SECRET_PUBLIC_KEY:
                priv = sec->kind == POLICY_SECRET_PUBLIC_KEY ? policy_find_secret(p, sec->of) : sec;
                ENSURE(priv != NULL && priv->kind == POLICY_SECRET_PRIVATE_KEY, CF_E_NOT_FOUND);
                cf_buf_init(&key, SECRET_VALUE_MAX, true);
                s = load_version(w, p, priv, enc.previous, &key);
                if (cf_ok(s)) {
                        s = sec->kind == POLICY_SECRET_PRIVATE_KEY
                                ? render_private_key(cf_buf_slice(&key), enc.base, out)
                                : render_public_key(cf_buf_slice(&key), enc.base, out);
                }
                cf_buf_done(&key);
                return s;
        case POLICY_SECRET_X509_CA:
        case POLICY_SECRET_X509:
                return render_cert(w, p, sec, enc.base, enc.previous, out);
        default:
                return render_plain(w, p, sec, enc.base, enc.previous, out);
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
                return render(w, p, sec, enc, out);
        }
        cf_buf_init(&tmp, out->max, true);
        s = render(w, p, sec, enc, &tmp);
        if (cf_ok(s)) {
                s = policy_json_escape(cf_buf_slice(&tmp), out);
        }
        cf_buf_done(&tmp);
        return s;
}

/* ---- checks of imports (create, update, activation) ------------------------------------ */

static cf_status add_error(json_t *errors, const char *location, const char *message)
{
        json_t *e = json_pack("{s:s, s:s}", "location", location, "message", message);

        ENSURE(e != NULL && json_array_append_new(errors, e) == 0, CF_E_NOMEM);
        return CF_OK;
}

/* What check_lookup needs: the importer, the exporters' kinds (kinds[i] for p->secrets[i];
 * 0: not an import, or unresolved), where the text is, and where errors go. */
struct text_check {
        const struct policy *p;
        const enum policy_secret_kind *kinds;
        const char *location;
        json_t *errors;
};

/* A policy_substitute lookup that renders nothing: it checks that a placeholder naming an
 * import fits its exporter's kind, the check the parser could not make. */
static cf_status check_lookup(void *ctx, const char *ref, struct cf_slice *ret)
{
        struct text_check *t = ctx;
        char cname[POLICY_SECRET_NAME_MAX + 1];
        char msg[400];
        struct policy_encoding enc;
        const struct policy_secret *sec;
        enum policy_secret_kind kind;

        *ret = cf_slice_make(NULL, 0);
        if (!cf_ok(policy_placeholder_split(ref, cname, &enc)) ||
            (sec = policy_find_secret(t->p, cname)) == NULL || sec->kind != POLICY_SECRET_IMPORT) {
                return CF_OK;
        }
        kind = t->kinds[(size_t)(sec - t->p->secrets)];
        if (kind == POLICY_SECRET_BINARY && enc.json && enc.base == POLICY_ENC_DEFAULT) {
                snprintf(msg, sizeof(msg),
                         "placeholder '%s': the imported secret '%s' is binary and cannot be "
                         "placed in JSON as is; use :base64:json or :hex:json",
                         ref, cname);
                return add_error(t->errors, t->location, msg);
        }
        if (kind != 0 && !policy_encoding_fits(kind, enc.base)) {
                snprintf(msg, sizeof(msg),
                         "placeholder '%s': the encoding does not fit the imported secret '%s', "
                         "of kind %s in its exporter",
                         ref, cname, policy_secret_kind_name(kind));
                return add_error(t->errors, t->location, msg);
        }
        return CF_OK;
}

static cf_status check_text(const struct policy *p, const enum policy_secret_kind *kinds,
                            const char *text, const char *location, json_t *errors)
{
        struct text_check t = {p, kinds, location, errors};
        struct cf_buf out;
        cf_status s;

        cf_buf_init(&out, POLICY_FILE_CONTENT_MAX + 1, false);
        s = policy_substitute(text, check_lookup, &t, &out);
        cf_buf_done(&out);
        return s;
}

cf_status cas_secrets_validate_imports(struct cas_worker *w, const struct policy *p,
                                       json_t **ret_errors)
{
        CF_CLEANUP(json_decrefp) json_t *errors = json_array();
        CF_AUTOFREE enum policy_secret_kind *kinds =
            calloc(p->n_secrets ? p->n_secrets : 1, sizeof(*kinds));
        char loc[200], msg[400];
        bool any = false;

        ENSURE(errors != NULL && kinds != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < p->n_secrets; i++) {
                const struct policy_secret *sec = &p->secrets[i];
                struct exporter e = {0};
                enum import_state st = IMPORT_OK;

                if (sec->kind != POLICY_SECRET_IMPORT) {
                        continue;
                }
                any = true;
                TRY(import_resolve(w, p, sec, &e, &st));
                if (st == IMPORT_OK) {
                        kinds[i] = e.sec->kind;
                } else {
                        snprintf(loc, sizeof(loc), "$.secrets[%zu].import", i);
                        import_explain(sec, st, &e, msg, sizeof(msg));
                        TRY(add_error(errors, loc, msg));
                }
                exporter_done(&e);
        }
        for (size_t i = 0; any && i < p->n_services; i++) {
                const struct policy_service *svc = &p->services[i];
                for (size_t k = 0; k < svc->n_command; k++) {
                        snprintf(loc, sizeof(loc), "$.services[%zu].command[%zu]", i, k);
                        TRY(check_text(p, kinds, svc->command[k], loc, errors));
                }
                for (size_t k = 0; k < svc->n_env; k++) {
                        snprintf(loc, sizeof(loc), "$.services[%zu].environment.%s", i,
                                 svc->env[k].name);
                        TRY(check_text(p, kinds, svc->env[k].value, loc, errors));
                }
                for (size_t k = 0; k < svc->n_files; k++) {
                        snprintf(loc, sizeof(loc), "$.services[%zu].files[%zu].content", i, k);
                        TRY(check_text(p, kinds, svc->files[k].content, loc, errors));
                }
        }
        *ret_errors = TAKE_PTR(errors);
        return CF_OK;
}

bool cas_secrets_imports_ok(struct cas_worker *w, struct evhttp_request *req,
                            const struct policy *p)
{
        json_t *errors = NULL;
        char msg[160];
        cf_status s = cas_secrets_validate_imports(w, p, &errors);

        if (!cf_ok(s)) {
                cas_reply_status(req, s, "imported secrets");
                return false;
        }
        if (json_array_size(errors) == 0) {
                json_decref(errors);
                return true;
        }
        snprintf(msg, sizeof(msg), "an imported secret cannot be used (%zu error%s)",
                 json_array_size(errors), json_array_size(errors) == 1 ? "" : "s");
        cas_reply_error(req, 422, "policy.import", msg, json_pack("{s:o}", "errors", errors));
        return false;
}

/* Renews what is due among the certificates of p (failures are logged: the current
 * certificate is still served, and renewal is retried at the next activation). */
static void renew_all(struct cas_worker *w, const struct policy *p, int64_t now)
{
        bool *visited = calloc(p->n_secrets ? p->n_secrets : 1, sizeof(bool));

        for (size_t i = 0; visited != NULL && i < p->n_secrets; i++) {
                cf_status s = renew_if_due(w, p, i, now, visited, 0);
                if (!cf_ok(s)) {
                        cf_log_warning("secret renewal failed policy=%s secret=%s: %s", p->name,
                                       p->secrets[i].name, cf_strerror(s));
                }
        }
        free(visited);
}

bool cas_secrets_activate(struct cas_worker *w, const struct policy *p, int64_t now,
                          struct attest_checks *checks)
{
        bool ok = true;

        for (size_t i = 0; i < p->n_secrets; i++) {
                const struct policy_secret *sec = &p->secrets[i];
                struct exporter e = {0};
                enum import_state st = IMPORT_OK;
                char name[16 + POLICY_SECRET_NAME_MAX], expected[400], actual[400];
                cf_status s;

                if (sec->kind != POLICY_SECRET_IMPORT) {
                        continue;
                }
                s = import_resolve(w, p, sec, &e, &st);
                snprintf(name, sizeof(name), "import.%s", sec->name);
                import_explain(sec, IMPORT_OK, &e, expected, sizeof(expected));
                if (!cf_ok(s)) {
                        snprintf(actual, sizeof(actual), "cannot be read: %s", cf_strerror(s));
                } else {
                        import_explain(sec, st, &e, actual, sizeof(actual));
                }
                if (cf_ok(s) && st == IMPORT_DIGEST) {
                        snprintf(expected, sizeof(expected), "digest %s", sec->import_digest);
                        snprintf(actual, sizeof(actual), "digest %s", e.digest);
                }
                if (cf_ok(s) && st == IMPORT_OK) {
                        /* The exporter's certificates renew like local ones. */
                        renew_all(w, e.policy, now);
                }
                ok = cf_ok(attest_checks_add(checks, name, cf_ok(s) && st == IMPORT_OK, expected,
                                             actual)) &&
                     ok && cf_ok(s) && st == IMPORT_OK;
                exporter_done(&e);
        }
        if (ok) {
                renew_all(w, p, now);
        }
        return ok;
}
