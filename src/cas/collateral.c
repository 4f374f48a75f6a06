/* Attestation collateral kept by cofferd: Intel PCS responses, CRLs, issuer chains and AMD
 * KDS certificates, imported by people and used offline at every activation.
 *
 * Table "collateral", key = hex SHA-256 of the file's bytes (so importing the same file
 * twice is idempotent), version 1. The sealed value is JSON {"name", "kind", "imported",
 * "by", "data" (base64)}. On import a file must be recognisable as collateral (certificate or
 * CRL in PEM or DER, TCB Info / QE Identity / bundle JSON, or a hex signature file); its
 * signatures and validity are checked at use by the verifiers, which cache what verified. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/queue.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "store/store.h"

#define COLLATERAL_TABLE "collateral"
#define COLLATERAL_NAME_MAX 128

/* What a blob looks like; NULL when it is not collateral. */
static const char *classify(struct cf_slice b)
{
        const unsigned char *p = b.ptr;
        json_error_t jerr;
        json_t *j;
        const char *kind = NULL;
        X509 *x;
        X509_CRL *crl;
        size_t hex_len = b.size;

        if (b.ptr == NULL || b.size == 0 || b.size > INT32_MAX) {
                return NULL;
        }
        if ((x = d2i_X509(NULL, &p, (long)b.size)) != NULL) {
                X509_free(x);
                return "certificate";
        }
        p = b.ptr;
        if ((crl = d2i_X509_CRL(NULL, &p, (long)b.size)) != NULL) {
                X509_CRL_free(crl);
                return "crl";
        }
        j = json_loadb((const char *)b.ptr, b.size, JSON_REJECT_DUPLICATES, &jerr);
        if (j != NULL) {
                if (json_object_get(j, "tcb_info") && json_object_get(j, "qe_identity")) {
                        kind = "bundle";
                } else if (json_object_get(j, "tcbInfo") || json_object_get(j, "tcb_info") ||
                           json_object_get(j, "tcbLevels")) {
                        kind = "tcb_info";
                } else if (json_object_get(j, "enclaveIdentity") ||
                           json_object_get(j, "qe_identity") || json_object_get(j, "tcbEvaluationDataNumber")) {
                        kind = "qe_identity";
                } else if (json_is_object(j) && json_object_size(j) > 0) {
                        kind = "json";
                }
                json_decref(j);
                return kind;
        }
        /* PEM after JSON: bundles carry PEM text inside their strings. */
        if (memmem(b.ptr, b.size, "-----BEGIN CERTIFICATE-----", 27) != NULL) {
                return "certificate";
        }
        if (memmem(b.ptr, b.size, "-----BEGIN X509 CRL-----", 24) != NULL) {
                return "crl";
        }
        while (hex_len > 0 && (b.ptr[hex_len - 1] == '\n' || b.ptr[hex_len - 1] == '\r')) {
                hex_len--;
        }
        if (hex_len < 64 || hex_len > 1024) {
                return NULL;
        }
        for (size_t i = 0; i < hex_len; i++) {
                if (strchr("0123456789abcdefABCDEF", b.ptr[i]) == NULL || b.ptr[i] == 0) {
                        return NULL;
                }
        }
        return "signature";
}

static bool valid_name(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > COLLATERAL_NAME_MAX) {
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-')) {
                        return false;
                }
        }
        return true;
}

struct count_ctx {
        size_t n;
        json_t *list; /* optional */
        struct cas_worker *w;
};

static cf_status count_key(void *ctx, const char *key, uint64_t latest)
{
        struct count_ctx *c = ctx;

        (void)latest;
        c->n++;
        if (c->list != NULL) {
                json_array_append_new(c->list, json_string(key));
        }
        return CF_OK;
}

static void collateral_import(struct cas_worker *w, struct evhttp_request *req, const char *caller)
{
        struct evkeyvalq q;
        const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        const char *name = NULL, *kind;
        struct cf_buf body, b64;
        struct count_ctx cnt = { 0, NULL, w };
        char digest[CF_KEY_ID_HEX], nm[COLLATERAL_NAME_MAX + 1] = "collateral";
        uint64_t v;
        json_t *rec;
        char *dump;
        cf_status s;

        TAILQ_INIT(&q);
        if (query != NULL && evhttp_parse_query_str(query, &q) == 0) {
                name = evhttp_find_header(&q, "name");
        }
        if (name != NULL && !valid_name(name)) {
                evhttp_clear_headers(&q);
                cas_reply_error(req, 400, "collateral.name",
                                "'name' must be 1 to 128 letters, digits, '.', '_' or '-'", NULL);
                return;
        }
        if (name != NULL) {
                snprintf(nm, sizeof(nm), "%s", name);
        }
        evhttp_clear_headers(&q);
        cf_buf_init(&body, ATTEST_COLLATERAL_MAX_SIZE, false);
        if (!cf_ok(cas_request_body(req, ATTEST_COLLATERAL_MAX_SIZE, &body))) {
                cf_buf_done(&body);
                cas_reply_error(req, 413, "request.too_large", "collateral files are at most 4 MiB",
                                NULL);
                return;
        }
        kind = classify(cf_buf_slice(&body));
        if (kind == NULL) {
                cf_buf_done(&body);
                cas_reply_error(req, 400, "collateral.unrecognised",
                                "not recognised as attestation collateral (a certificate, CRL, "
                                "TCB Info, QE Identity, collateral bundle or hex signature)",
                                json_pack("{s:s}", "name", nm));
                return;
        }
        s = cf_sha256_hex(cf_buf_slice(&body), digest);
        if (cf_ok(s) && cf_ok(store_latest(w->store, COLLATERAL_TABLE, digest, &v))) {
                cf_buf_done(&body);
                cas_reply_json(req, 200, json_pack("{s:s, s:s, s:s, s:b}", "digest", digest,
                                                   "name", nm, "kind", kind, "existed", 1));
                return;
        }
        if (cf_ok(s)) {
                s = store_list(w->store, COLLATERAL_TABLE, "", count_key, &cnt);
        }
        if (cf_ok(s) && cnt.n >= ATTEST_COLLATERAL_MAX_FILES) {
                cf_buf_done(&body);
                cas_reply_error(req, 409, "collateral.full",
                                "cofferd keeps at most 64 collateral files; delete outdated ones",
                                NULL);
                return;
        }
        cf_buf_init(&b64, 2 * ATTEST_COLLATERAL_MAX_SIZE, false);
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(body.ptr, body.size, &b64);
        }
        cf_buf_done(&body);
        rec = cf_ok(s) ? json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", nm, "kind", kind,
                                   "imported", (json_int_t)time(NULL), "by", caller, "data",
                                   (const char *)b64.ptr)
                       : NULL;
        cf_buf_done(&b64);
        dump = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(rec);
        if (dump != NULL) {
                s = store_put(w->store, COLLATERAL_TABLE, digest, 1, cf_slice_str(dump));
        } else if (cf_ok(s)) {
                s = cf_fail(CF_E_NOMEM);
        }
        free(dump);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, COLLATERAL_TABLE, digest);
                cas_reply_status(req, s, "collateral import");
                return;
        }
        atomic_fetch_add(&w->cas->collateral_generation, 1);
        cf_log_info("collateral imported digest=%.16s kind=%s name=%s by=%.16s", digest, kind, nm,
                    caller);
        cf_ignore(cas_audit_append(w, "collateral.import", caller,
                                   json_pack("{s:s, s:s, s:s}", "digest", digest, "kind", kind,
                                             "name", nm))); /* a failure is logged there */
        cas_reply_json(req, 201, json_pack("{s:s, s:s, s:s, s:b}", "digest", digest, "name", nm,
                                           "kind", kind, "existed", 0));
}

static cf_status load_record(struct cas_worker *w, const char *digest, json_t **ret)
{
        struct cf_buf v;
        json_error_t jerr;
        cf_status s;

        cf_buf_init(&v, 3 * ATTEST_COLLATERAL_MAX_SIZE, false);
        s = store_get(w->store, COLLATERAL_TABLE, digest, 1, &v, NULL);
        if (cf_ok(s)) {
                *ret = json_loadb((const char *)v.ptr, v.size, JSON_REJECT_DUPLICATES, &jerr);
                s = *ret ? CF_OK : cf_fail(CF_E_MALFORMED);
        }
        cf_buf_done(&v);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, COLLATERAL_TABLE, digest);
        }
        return s;
}

static void collateral_list(struct cas_worker *w, struct evhttp_request *req)
{
        struct count_ctx cnt = { 0, json_array(), w };
        json_t *out = json_array(), *key;
        size_t i;
        cf_status s = store_list(w->store, COLLATERAL_TABLE, "", count_key, &cnt);

        json_array_foreach(cnt.list, i, key)
        {
                json_t *rec = NULL;
                const char *d = json_string_value(key);
                if (!cf_ok(s) || !cf_ok(s = load_record(w, d, &rec))) {
                        break;
                }
                json_object_del(rec, "data");
                json_object_set_new(rec, "digest", json_string(d));
                json_array_append_new(out, rec);
        }
        json_decref(cnt.list);
        if (!cf_ok(s)) {
                json_decref(out);
                cas_reply_status(req, s, "collateral list");
                return;
        }
        cas_reply_json(req, 200, json_pack("{s:o}", "collateral", out));
}

static void collateral_delete(struct cas_worker *w, struct evhttp_request *req, const char *digest,
                              const char *caller)
{
        uint64_t v;
        cf_status s;

        if (strlen(digest) != 64 || strspn(digest, "0123456789abcdef") != 64) {
                cas_reply_error(req, 400, "collateral.digest", "expected a 64-hex digest", NULL);
                return;
        }
        s = store_latest(w->store, COLLATERAL_TABLE, digest, &v);
        if (cf_ok(s)) {
                s = store_delete(w->store, COLLATERAL_TABLE, digest);
        }
        if (!cf_ok(s)) {
                if (s.code == CF_E_NOT_FOUND) {
                        cas_reply_error(req, 404, "collateral.not_found", "no such collateral",
                                        NULL);
                } else {
                        cas_reply_status(req, s, "collateral delete");
                }
                return;
        }
        atomic_fetch_add(&w->cas->collateral_generation, 1);
        cf_log_info("collateral deleted digest=%.16s by=%.16s", digest, caller);
        cf_ignore(cas_audit_append(w, "collateral.delete", caller,
                                   json_pack("{s:s}", "digest", digest)));
        cas_reply_json(req, 200, json_pack("{s:s, s:b}", "digest", digest, "deleted", 1));
}

void cas_api_collateral(struct cas_worker *w, struct evhttp_request *req, const char *rest)
{
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char caller[CF_KEY_ID_HEX];

        if (!cas_request_key_id(req, caller)) {
                cas_reply_error(req, 401, "auth.client_certificate",
                                "this endpoint needs a client certificate (see 'coffer id new')",
                                NULL);
                return;
        }
        if (rest[0] == '\0' && m == EVHTTP_REQ_POST) {
                collateral_import(w, req, caller);
        } else if (rest[0] == '\0' && m == EVHTTP_REQ_GET) {
                collateral_list(w, req);
        } else if (rest[0] == '/' && m == EVHTTP_REQ_DELETE) {
                collateral_delete(w, req, rest + 1, caller);
        } else {
                cas_reply_error(req, 405, "method", "method not allowed here", NULL);
        }
}

static cf_status add_blob(void *ctx, const char *key, uint64_t latest)
{
        struct cas_worker *w = ctx;
        json_t *rec = NULL;
        const char *name = NULL, *data = NULL;
        struct cf_buf raw;
        cf_status s;

        (void)latest;
        TRY(load_record(w, key, &rec));
        cf_buf_init(&raw, ATTEST_COLLATERAL_MAX_SIZE, false);
        if (json_unpack(rec, "{s:s, s:s}", "name", &name, "data", &data) != 0) {
                s = cf_fail(CF_E_MALFORMED);
        } else {
                s = cf_base64_decode_buf(cf_slice_str(data), &raw);
        }
        if (cf_ok(s)) {
                s = attest_collateral_add(&w->collateral, name, raw.ptr, raw.size);
        }
        cf_buf_done(&raw);
        json_decref(rec);
        return s;
}

cf_status cas_collateral_current(struct cas_worker *w, const struct attest_collateral **ret)
{
        unsigned long gen = atomic_load(&w->cas->collateral_generation);

        if (!w->collateral_loaded || w->collateral_generation != gen) {
                attest_collateral_done(&w->collateral);
                w->collateral_loaded = false;
                TRY(store_list(w->store, COLLATERAL_TABLE, "", add_blob, w));
                w->collateral_generation = gen;
                w->collateral_loaded = true;
        }
        *ret = &w->collateral;
        return CF_OK;
}
