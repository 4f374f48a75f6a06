/* Attestation collateral kept by cofferd: Intel PCS responses, CRLs, issuer chains and AMD
 * KDS certificates, imported by people and used offline at every activation.
 *
 * Table "collateral", key = hex SHA-256 of the file's bytes (so importing the same file
 * twice is idempotent), version 1. The sealed value is JSON {"name", "kind", "imported",
 * "by", "data" (base64), "verified", "issuer", "window"}.
 *
 * Import is verified (attest_collateral_check): every file of a request must verify against
 * the pinned roots, the stored collateral and the other files of the same request, and be
 * within its validity window unless the request allows expired collateral; otherwise nothing
 * of the request is stored (422). The verified status and the digest of the certificate that
 * verified each file are recorded; the verifiers still re-check everything at use (from
 * their caches keyed by digest) and evaluate windows at verification time.
 *
 * Two request forms: application/json {"files":[{"name","data"(base64)}],"allow_expired"}
 * (what `coffer collateral import A B C` sends, so a self-contained set imports in any
 * order), and the older raw body with ?name=NAME[&allow_expired=true] for one file. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#include "attest/collateral_check.h"
#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "store/store.h"

#define COLLATERAL_TABLE    "collateral"
#define COLLATERAL_NAME_MAX 128

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

/* One import request: its files and whether expired collateral is accepted. */
struct import_req {
        struct attest_collateral files;
        bool allow_expired;
        bool json; /* the JSON form (reply with a list) */
};

static bool truthy(const char *v)
{
        return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* Parses either request form into r; on failure replies and returns false. */
static bool parse_import(struct evhttp_request *req, struct import_req *r)
{
        const char *ctype =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        struct cf_buf body;
        cf_status s;

        cf_buf_init(&body, CAS_MAX_BODY_SIZE, false);
        if (!cf_ok(cas_request_body(req, CAS_MAX_BODY_SIZE, &body))) {
                cf_buf_done(&body);
                cas_reply_error(req, 413, "request.too_large",
                                "an import request is at most 4 MiB; import a large set in "
                                "several requests, issuers first",
                                NULL);
                return false;
        }
        r->json = ctype != NULL && strncmp(ctype, "application/json", 16) == 0;
        if (!r->json) {
                struct evkeyvalq q;
                const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
                const char *name = NULL;
                char nm[COLLATERAL_NAME_MAX + 1] = "collateral";

                TAILQ_INIT(&q);
                if (query != NULL && evhttp_parse_query_str(query, &q) == 0) {
                        name = evhttp_find_header(&q, "name");
                        r->allow_expired = truthy(evhttp_find_header(&q, "allow_expired"));
                }
                if (name != NULL && !valid_name(name)) {
                        evhttp_clear_headers(&q);
                        cf_buf_done(&body);
                        cas_reply_error(req, 400, "collateral.name",
                                        "'name' must be 1 to 128 letters, digits, '.', '_' or '-'",
                                        NULL);
                        return false;
                }
                if (name != NULL) {
                        snprintf(nm, sizeof(nm), "%s", name);
                }
                evhttp_clear_headers(&q);
                s = body.size > ATTEST_COLLATERAL_MAX_SIZE
                        ? cf_fail(CF_E_LIMIT)
                        : attest_collateral_add(&r->files, nm, body.ptr, body.size);
                cf_buf_done(&body);
                if (!cf_ok(s)) {
                        cas_reply_status(req, s, "collateral import");
                }
                return cf_ok(s);
        }
        {
                json_error_t jerr;
                json_t *doc =
                    json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
                json_t *files = json_object_get(doc, "files"), *f, *ae;
                const char *bad = NULL;
                size_t i;

                cf_buf_done(&body);
                ae = json_object_get(doc, "allow_expired");
                if (!json_is_array(files) || json_array_size(files) == 0 ||
                    json_array_size(files) > ATTEST_COLLATERAL_MAX_FILES ||
                    (ae != NULL && !json_is_boolean(ae))) {
                        bad =
                            "expected {\"files\": [{\"name\": NAME, \"data\": BASE64}, ...] (1 to "
                            "64), \"allow_expired\": BOOL}";
                }
                r->allow_expired = json_is_true(ae);
                json_array_foreach(files, i, f)
                {
                        const char *name = NULL, *data = NULL;
                        struct cf_buf raw;
                        if (bad != NULL) {
                                break;
                        }
                        if (json_unpack(f, "{s:s, s:s}", "name", &name, "data", &data) != 0 ||
                            !valid_name(name)) {
                                bad = "every file needs a 'name' (1 to 128 letters, digits, '.', "
                                      "'_' or '-') and base64 'data'";
                                break;
                        }
                        cf_buf_init(&raw, ATTEST_COLLATERAL_MAX_SIZE, false);
                        s = cf_base64_decode_buf(cf_slice_str(data), &raw);
                        if (cf_ok(s)) {
                                s = attest_collateral_add(&r->files, name, raw.ptr, raw.size);
                        }
                        cf_buf_done(&raw);
                        if (!cf_ok(s)) {
                                bad = "a file's 'data' is not base64 of at most 4 MiB";
                        }
                }
                json_decref(doc);
                if (bad != NULL) {
                        cas_reply_error(req, 400, "collateral.request", bad, NULL);
                        return false;
                }
        }
        return true;
}

/* Per-file results of the check, as JSON. */
static json_t *file_results(const struct import_req *r, const struct attest_collateral_report *rep)
{
        json_t *out = json_array();

        for (size_t i = 0; out != NULL && i < rep->n; i++) {
                const struct attest_collateral_file *f = &rep->files[i];
                json_array_append_new(out, json_pack("{s:s, s:s, s:b, s:b, s:b, s:s, s:s, s:s}",
                                                     "name", r->files.items[i].name, "kind",
                                                     f->kind, "ok", f->ok, "verified", f->verified,
                                                     "in_window", f->in_window, "issuer", f->issuer,
                                                     "window", f->window, "reason", f->reason));
        }
        return out;
}

/* A refused import: 400 when a file is not collateral at all, 422 when it does not verify. */
static void reply_refused(struct evhttp_request *req, const struct import_req *r,
                          const struct attest_collateral_report *rep, struct attest_checks *checks)
{
        char msg[512];
        const char *code = "collateral.unverified";
        int status = 422;
        size_t refused = 0, first = 0;
        json_t *cj = NULL;

        for (size_t i = rep->n; i-- > 0;) {
                if (!rep->files[i].ok) {
                        refused++;
                        first = i;
                }
        }
        if (rep->files[first].kind[0] == '\0') {
                code = "collateral.unrecognised";
                status = 400;
        }
        snprintf(msg, sizeof(msg), "%s: %s%s; nothing of this import was stored",
                 r->files.items[first].name, rep->files[first].reason,
                 refused > 1 ? " (and other files: see details)" : "");
        cf_ignore(attest_checks_to_json(checks, false, &cj));
        cas_reply_error(req, status, code, msg,
                        json_pack("{s:o, s:o*}", "files", file_results(r, rep), "checks", cj));
}

static void collateral_import(struct cas_worker *w, struct evhttp_request *req, const char *caller)
{
        struct import_req r = {.allow_expired = false};
        const struct attest_collateral *stored = NULL;
        CF_AUTOFREE struct attest_collateral_report *rep = calloc(1, sizeof(*rep));
        struct attest_checks checks;
        char digest[ATTEST_COLLATERAL_MAX_FILES][CF_KEY_ID_HEX];
        bool existed[ATTEST_COLLATERAL_MAX_FILES] = {false}, any_new = false;
        struct count_ctx cnt = {0, NULL, w};
        size_t n_new = 0;
        json_t *results = NULL;
        cf_status s;

        attest_collateral_init(&r.files);
        attest_checks_init(&checks);
        if (rep == NULL) {
                cas_reply_status(req, cf_fail(CF_E_NOMEM), "collateral import");
                return;
        }
        if (!parse_import(req, &r)) {
                attest_collateral_done(&r.files);
                return;
        }
        s = cas_collateral_current(w, &stored);
        if (cf_ok(s)) {
                s = attest_collateral_check(&r.files, stored, (int64_t)time(NULL), r.allow_expired,
                                            rep, &checks);
                if (s.code == CF_E_COLLATERAL) {
                        reply_refused(req, &r, rep, &checks);
                        goto out;
                }
        }
        /* Digests; a file already stored, or repeated in the request, is not stored again. */
        for (size_t i = 0; cf_ok(s) && i < r.files.n; i++) {
                uint64_t v;
                s = cf_sha256_hex(cf_slice_make(r.files.items[i].data, r.files.items[i].size),
                                  digest[i]);
                existed[i] =
                    cf_ok(s) && cf_ok(store_latest(w->store, COLLATERAL_TABLE, digest[i], &v));
                for (size_t j = 0; cf_ok(s) && j < i && !existed[i]; j++) {
                        existed[i] = strcmp(digest[i], digest[j]) == 0;
                }
                n_new += existed[i] ? 0 : 1;
        }
        if (cf_ok(s)) {
                s = store_list(w->store, COLLATERAL_TABLE, "", count_key, &cnt);
        }
        if (cf_ok(s) && cnt.n + n_new > ATTEST_COLLATERAL_MAX_FILES) {
                cas_reply_error(req, 409, "collateral.full",
                                "cofferd keeps at most 64 collateral files; delete outdated ones",
                                NULL);
                goto out;
        }
        if (cf_ok(s) && n_new > 0) {
                s = store_begin(w->store);
                for (size_t i = 0; cf_ok(s) && i < r.files.n; i++) {
                        const struct attest_collateral_file *f = &rep->files[i];
                        struct cf_buf b64;
                        json_t *rec;
                        char *dump = NULL;
                        if (existed[i]) {
                                continue;
                        }
                        cf_buf_init(&b64, 2 * ATTEST_COLLATERAL_MAX_SIZE, false);
                        s = cf_base64_encode_buf(r.files.items[i].data, r.files.items[i].size,
                                                 &b64);
                        rec = cf_ok(s)
                                  ? json_pack("{s:s, s:s, s:I, s:s, s:s, s:b, s:s, s:s}", "name",
                                              r.files.items[i].name, "kind", f->kind, "imported",
                                              (json_int_t)time(NULL), "by", caller, "data",
                                              (const char *)b64.ptr, "verified", f->verified,
                                              "issuer", f->issuer, "window", f->window)
                                  : NULL;
                        cf_buf_done(&b64);
                        dump = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                        json_decref(rec);
                        if (cf_ok(s)) {
                                s = dump != NULL ? store_put(w->store, COLLATERAL_TABLE, digest[i],
                                                             1, cf_slice_str(dump))
                                                 : cf_fail(CF_E_NOMEM);
                        }
                        free(dump);
                }
                if (cf_ok(s)) {
                        s = store_commit(w->store);
                } else {
                        store_rollback(w->store);
                }
                any_new = cf_ok(s);
        }
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, COLLATERAL_TABLE, "import");
                cas_reply_status(req, s, "collateral import");
                goto out;
        }
        if (any_new) {
                atomic_fetch_add(&w->cas->collateral_generation, 1);
        }
        results = json_array();
        for (size_t i = 0; i < r.files.n; i++) {
                const struct attest_collateral_file *f = &rep->files[i];
                if (!existed[i]) {
                        cf_log_info("collateral imported digest=%.16s kind=%s name=%s by=%.16s",
                                    digest[i], f->kind, r.files.items[i].name, caller);
                        cf_ignore(cas_audit_append(
                            w, "collateral.import", caller,
                            json_pack("{s:s, s:s, s:s, s:s}", "digest", digest[i], "kind", f->kind,
                                      "name", r.files.items[i].name, "issuer",
                                      f->issuer))); /* a failure is logged there */
                }
                json_array_append_new(
                    results, json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:s, s:s}", "digest",
                                       digest[i], "name", r.files.items[i].name, "kind", f->kind,
                                       "existed", existed[i], "verified", f->verified, "in_window",
                                       f->in_window, "issuer", f->issuer, "window", f->window));
        }
        if (r.json) {
                json_t *cj = NULL;
                cf_ignore(attest_checks_to_json(&checks, false, &cj));
                cas_reply_json(req, any_new ? 201 : 200,
                               json_pack("{s:o, s:o*}", "files", results, "checks", cj));
        } else {
                json_t *one = json_incref(json_array_get(results, 0));
                json_decref(results);
                cas_reply_json(req, any_new ? 201 : 200, one);
        }
out:
        attest_checks_done(&checks);
        attest_collateral_done(&r.files);
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
        struct count_ctx cnt = {0, json_array(), w};
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
        cf_ignore(
            cas_audit_append(w, "collateral.delete", caller, json_pack("{s:s}", "digest", digest)));
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
