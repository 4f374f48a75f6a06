/* Policy records in the store and the /v1/policies endpoints.
 *
 * Table "policy", key = policy name, one store version per policy version. The sealed value
 * is JSON: {"digest", "predecessor", "creator", "created", "deleted", "document" (base64 of
 * the exact submitted bytes)}. The digest of a version is SHA-256 of its document bytes; a
 * deletion is a version with an empty document whose digest is
 * SHA-256("coffer-policy-deleted-v1" || predecessor digest). */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "policy/policy.h"
#include "store/store.h"

#define POLICY_TABLE       "policy"
#define POLICY_DOC_MAX     (1u << 20)
#define POLICY_HISTORY_MAX 1000

void cas_policy_record_init(struct cas_policy_record *r)
{
        memset(r, 0, sizeof(*r));
        /* Documents may carry explicit secret values. */
        cf_buf_init(&r->document, POLICY_DOC_MAX, true);
}

void cas_policy_record_done(struct cas_policy_record *r)
{
        cf_buf_done(&r->document);
}

void cas_log_store_error(struct cas *cas, cf_status s, const char *table, const char *key)
{
        char k[200];

        if (s.code == CF_E_TAMPERED) {
                atomic_fetch_add(&cas->metrics.tamper_detected, 1);
                cf_log_err("store: TAMPERING DETECTED table=%s key=%s: a stored value failed "
                           "authentication (edited, swapped or moved); refusing to serve it",
                           table, cf_log_escape(key, strlen(key), k, sizeof(k)));
        } else if (s.code != CF_E_NOT_FOUND) {
                cf_log_err("store: table=%s key=%s: %s", table,
                           cf_log_escape(key, strlen(key), k, sizeof(k)), cf_strerror(s));
        }
}

static cf_status record_decode(struct cf_slice value, struct cas_policy_record *r)
{
        json_error_t jerr;
        json_t *j = json_loadb((const char *)value.ptr, value.size, JSON_REJECT_DUPLICATES, &jerr);
        const char *digest = NULL, *pred = NULL, *creator = NULL, *doc = NULL;
        json_int_t created = 0;
        int deleted = 0;
        cf_status s = CF_OK;

        ENSURE(j != NULL, CF_E_MALFORMED);
        if (json_unpack(j, "{s:s, s:s, s:s, s:I, s:b, s:s}", "digest", &digest, "predecessor",
                        &pred, "creator", &creator, "created", &created, "deleted", &deleted,
                        "document", &doc) != 0 ||
            strlen(digest) != 64 || strlen(creator) >= sizeof(r->creator) ||
            strlen(pred) >= sizeof(r->predecessor)) {
                s = cf_fail(CF_E_MALFORMED);
        }
        if (cf_ok(s)) {
                memcpy(r->digest, digest, 65);
                memcpy(r->predecessor, pred, strlen(pred) + 1);
                memcpy(r->creator, creator, strlen(creator) + 1);
                r->created = created;
                r->deleted = deleted != 0;
                s = cf_base64_decode_buf(cf_slice_str(doc), &r->document);
        }
        json_decref(j);
        return s;
}

cf_status cas_policy_load(struct cas_worker *w, const char *name, uint64_t version,
                          struct cas_policy_record *ret)
{
        struct cf_buf value;
        cf_status s;

        cf_buf_init(&value, 2 * POLICY_DOC_MAX + 4096, true);
        s = store_get(w->store, POLICY_TABLE, name, version, &value, &ret->version);
        if (cf_ok(s)) {
                s = record_decode(cf_buf_slice(&value), ret);
        }
        cf_buf_done(&value);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, POLICY_TABLE, name);
        }
        return s;
}

cf_status cas_policy_current(struct cas_worker *w, const char *name, const struct policy **ret,
                             uint64_t *ret_version)
{
        struct cas_policy_record r;
        struct policy_errors errs;
        struct policy *p = NULL;
        struct cas_cached_policy *slot;
        uint64_t latest;
        cf_status s;

        s = store_latest(w->store, POLICY_TABLE, name, &latest);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, POLICY_TABLE, name);
                return s;
        }
        for (size_t i = 0; i < CAS_POLICY_CACHE_SIZE; i++) {
                struct cas_cached_policy *c = &w->cache[i];
                if (c->policy != NULL && c->version == latest && strcmp(c->name, name) == 0) {
                        *ret = c->policy;
                        *ret_version = latest;
                        return CF_OK;
                }
        }
        cas_policy_record_init(&r);
        s = cas_policy_load(w, name, latest, &r);
        if (cf_ok(s) && r.deleted) {
                s = cf_fail(CF_E_NOT_FOUND);
        }
        if (cf_ok(s)) {
                memset(&errs, 0, sizeof(errs));
                s = policy_parse(cf_buf_slice(&r.document), &p, &errs);
        }
        cas_policy_record_done(&r);
        TRY(s);
        ENSURE(strlen(name) < sizeof(slot->name), CF_E_LIMIT);
        slot = &w->cache[w->cache_next++ % CAS_POLICY_CACHE_SIZE];
        policy_free(slot->policy);
        snprintf(slot->name, sizeof(slot->name), "%s", name);
        slot->version = latest;
        slot->policy = p;
        *ret = p;
        *ret_version = latest;
        return CF_OK;
}

static cf_status record_put(struct cas_worker *w, const char *name, uint64_t version,
                            const struct cas_policy_record *r)
{
        struct cf_buf b64;
        json_t *j;
        char *dump;
        size_t n;
        cf_status s;

        cf_buf_init(&b64, 2 * POLICY_DOC_MAX, true);
        TRY(cf_base64_encode_buf(r->document.ptr, r->document.size, &b64));
        j = json_pack("{s:s, s:s, s:s, s:I, s:b, s:s}", "digest", r->digest, "predecessor",
                      r->predecessor, "creator", r->creator, "created", (json_int_t)r->created,
                      "deleted", r->deleted, "document", (const char *)b64.ptr);
        cf_buf_done(&b64);
        ENSURE(j != NULL, CF_E_NOMEM);
        dump = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        ENSURE(dump != NULL, CF_E_NOMEM);
        n = strlen(dump);
        s = store_put(w->store, POLICY_TABLE, name, version, cf_slice_make(dump, n));
        cf_wipe_free(dump, n);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, POLICY_TABLE, name);
        }
        return s;
}

/* ---- helpers for handlers ------------------------------------------------------------ */

static bool require_caller(struct evhttp_request *req, char key_id[static CF_KEY_ID_HEX])
{
        if (!cas_request_key_id(req, key_id)) {
                cas_reply_error(req, 401, "auth.client_certificate",
                                "this endpoint needs a client certificate (see 'coffer id new')",
                                NULL);
                return false;
        }
        return true;
}

static void reply_invalid(struct evhttp_request *req, cf_status s, const struct policy_errors *errs)
{
        json_t *list = NULL;
        char msg[160];

        if (!cf_ok(policy_errors_to_json(errs, &list))) {
                list = json_array();
        }
        snprintf(msg, sizeof(msg), "the policy document is invalid (%zu error%s%s)", errs->n,
                 errs->n == 1 ? "" : "s", errs->truncated ? ", more not shown" : "");
        cas_reply_error(req, s.code == CF_E_LIMIT ? 413 : 400, "policy.invalid", msg,
                        json_pack("{s:o}", "errors", list));
}

static void set_digest(struct cas_policy_record *r)
{
        cf_ignore(policy_digest(cf_buf_slice(&r->document), r->digest)); /* SHA-256 cannot fail
                                                                           short of OOM */
}

static json_t *record_summary(const char *name, const struct cas_policy_record *r)
{
        char when[32];

        cf_format_rfc3339(r->created, when, sizeof(when));
        return json_pack("{s:s, s:I, s:s, s:s*, s:s, s:s, s:b}", "name", name, "version",
                         (json_int_t)r->version, "digest", r->digest, "predecessor",
                         r->predecessor[0] ? r->predecessor : NULL, "creator", r->creator,
                         "created", when, "deleted", r->deleted);
}

/* Parses the body as a policy document; replies with every error on failure. */
#define CHANGE_CONTENT_TYPE "application/vnd.coffer.change+json"
#define CHANGE_BODY_MAX     (3u << 20)

/* Approvals that came with a change (board policies). */
struct approvals {
        struct policy_approval *items[POLICY_APPROVALS_MAX];
        size_t n;
};

static void approvals_done(struct approvals *a)
{
        for (size_t i = 0; i < a->n; i++) {
                policy_approval_free(a->items[i]);
        }
        a->n = 0;
}

/* A change is either the document itself, or the envelope CHANGE_CONTENT_TYPE:
 * {"document": TEXT, "approvals": [APPROVAL...]} (docs/formats/approval.md). */
static cf_status read_change(struct evhttp_request *req, struct cas_policy_record *r,
                             struct approvals *ap, const char **why)
{
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        struct cf_buf body;
        json_error_t jerr;
        json_t *j, *list, *item;
        const char *doc = NULL;
        size_t i;
        cf_status s = CF_OK;

        if (ct == NULL || strncmp(ct, CHANGE_CONTENT_TYPE, strlen(CHANGE_CONTENT_TYPE)) != 0) {
                *why = "the policy document exceeds 1 MiB";
                return cas_request_body(req, POLICY_DOC_MAX, &r->document);
        }
        cf_buf_init(&body, CHANGE_BODY_MAX, true);
        *why = "the change is not {\"document\": TEXT, \"approvals\": [...]} within 3 MiB";
        TRY(cas_request_body(req, CHANGE_BODY_MAX, &body));
        j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&body);
        if (j == NULL || json_unpack(j, "{s:s, s:o !}", "document", &doc, "approvals", &list) != 0 ||
            !json_is_array(list) || json_array_size(list) > POLICY_APPROVALS_MAX) {
                json_decref(j);
                return cf_fail(CF_E_SCHEMA);
        }
        s = cf_buf_append(&r->document, doc, strlen(doc));
        json_array_foreach(list, i, item)
        {
                char *text = cf_ok(s) ? json_dumps(item, JSON_COMPACT) : NULL;
                if (cf_ok(s) && text == NULL) {
                        s = cf_fail(CF_E_SCHEMA);
                }
                if (cf_ok(s)) {
                        *why = "an approval does not parse (docs/formats/approval.md)";
                        s = policy_approval_parse(cf_slice_str(text), &ap->items[ap->n]);
                        if (cf_ok(s)) {
                                ap->n++;
                        }
                }
                free(text);
        }
        json_decref(j);
        return s;
}

static struct policy *parse_body(struct evhttp_request *req, struct cas_policy_record *r,
                                 struct approvals *ap)
{
        struct policy_errors errs;
        struct policy *p = NULL;
        const char *why = NULL;
        cf_status s;

        memset(&errs, 0, sizeof(errs));
        s = read_change(req, r, ap, &why);
        if (!cf_ok(s)) {
                cas_reply_error(req, s.code == CF_E_LIMIT ? 413 : 400, "request.change", why,
                                NULL);
                return NULL;
        }
        s = policy_parse(cf_buf_slice(&r->document), &p, &errs);
        if (!cf_ok(s)) {
                reply_invalid(req, s, &errs);
                return NULL;
        }
        set_digest(r);
        return p;
}

/* A board decides changes of its policy: the approvals must satisfy its rule for exactly
 * this (name, digest, predecessor). Replies 403 with every check when they do not. */
static bool board_allows(struct evhttp_request *req, const struct policy_board *board,
                         const char *name, const char *digest, const char *predecessor,
                         const struct approvals *ap)
{
        struct attest_checks checks;
        json_t *failed = NULL;
        bool ok;

        attest_checks_init(&checks);
        ok = policy_board_evaluate(board, name, digest, predecessor, ap->items, ap->n, NULL, 0,
                                   &checks);
        if (!ok) {
                if (!cf_ok(attest_checks_to_json(&checks, false, &failed))) {
                        failed = json_array();
                }
                cas_reply_error(req, 403, "policy.board",
                                "the policy's board has not approved this change (send its "
                                "members' approvals: 'coffer policy approve')",
                                json_pack("{s:o}", "checks", failed));
        }
        attest_checks_done(&checks);
        return ok;
}

static cf_status write_version(struct cas_worker *w, const char *name, uint64_t version,
                               const struct cas_policy_record *r, const struct policy *p,
                               const struct policy *previous)
{
        cf_status s;

        TRY(store_begin(w->store));
        s = record_put(w, name, version, r);
        if (cf_ok(s) && p != NULL) {
                s = cas_secrets_provision(w, p, previous);
        }
        if (cf_ok(s) && p != NULL) {
                s = cas_volumes_provision(w, p);
        }
        if (cf_ok(s)) {
                s = store_commit(w->store);
        }
        if (!cf_ok(s)) {
                store_rollback(w->store);
        }
        return s;
}

/* ---- handlers ----------------------------------------------------------------------- */

static void policy_create(struct cas_worker *w, struct evhttp_request *req)
{
        struct approvals ap = { .n = 0 };
        char caller[CF_KEY_ID_HEX];
        struct cas_policy_record r, last;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        uint64_t version = 1;
        cf_status s;

        if (!require_caller(req, caller)) {
                return;
        }
        cas_policy_record_init(&r);
        cas_policy_record_init(&last);
        p = parse_body(req, &r, &ap);
        if (p == NULL) {
                goto out;
        }
        /* A board must consent to its own creation. */
        if (p->board != NULL && !board_allows(req, p->board, p->name, r.digest, NULL, &ap)) {
                goto out;
        }
        if (p->has_predecessor) {
                cas_reply_error(req, 400, "policy.predecessor",
                                "a new policy must have 'predecessor: null'", NULL);
                goto out;
        }
        s = cas_policy_load(w, p->name, 0, &last);
        if (cf_ok(s) && !last.deleted) {
                cas_reply_error(req, 409, "policy.exists",
                                "a policy of this name exists; update it with its digest as "
                                "'predecessor'",
                                json_pack("{s:s}", "digest", last.digest));
                goto out;
        }
        if (cf_ok(s)) {
                /* A deleted name is re-created only by someone who could update it. */
                struct policy_errors errs;
                struct cas_policy_record live;
                CF_CLEANUP(policy_freep) struct policy *old = NULL;
                bool allowed = false;

                cas_policy_record_init(&live);
                if (last.version > 1 && cf_ok(cas_policy_load(w, p->name, last.version - 1, &live)) &&
                    cf_ok(policy_parse(cf_buf_slice(&live.document), &old, &errs))) {
                        allowed = policy_key_may_update(old, caller);
                }
                cas_policy_record_done(&live);
                if (!allowed) {
                        cas_reply_error(req, 403, "policy.recreate",
                                        "this name was deleted; only a key in its last "
                                        "'access.update' may create it again",
                                        NULL);
                        goto out;
                }
                version = last.version + 1;
                memcpy(r.predecessor, last.digest, sizeof(r.predecessor));
        } else if (s.code != CF_E_NOT_FOUND) {
                cas_reply_status(req, s, "policy store");
                goto out;
        }
        memcpy(r.creator, caller, sizeof(r.creator));
        r.created = (int64_t)time(NULL);
        r.version = version;
        s = write_version(w, p->name, version, &r, p, NULL);
        if (!cf_ok(s)) {
                if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                        cas_reply_error(req, 409, "policy.exists",
                                        "a concurrent request created this policy", NULL);
                } else {
                        cas_reply_status(req, s, "policy create");
                }
                goto out;
        }
        atomic_fetch_add(&w->cas->metrics.policies_created, 1);
        cf_log_info("policy created name=%s version=%llu digest=%.16s creator=%.16s", p->name,
                    (unsigned long long)version, r.digest, caller);
        /* After the commit: the audit module writes through its own store handle. */
        cf_ignore(cas_audit_append(w, "policy.create", caller,
                                   json_pack("{s:s, s:I, s:s, s:s?}", "policy", p->name, "version",
                                             (json_int_t)version, "digest", r.digest,
                                             "predecessor",
                                             r.predecessor[0] ? r.predecessor : NULL)));
        cas_reply_json(req, 201, record_summary(p->name, &r));
out:
        approvals_done(&ap);
        cas_policy_record_done(&r);
        cas_policy_record_done(&last);
}

/* Loads the live current version and checks the caller may read (or update) it. */
static const struct policy *authorize(struct cas_worker *w, struct evhttp_request *req,
                                      const char *name, const char *caller, bool update,
                                      struct cas_policy_record *rec)
{
        const struct policy *p = NULL;
        uint64_t version;
        cf_status s = cas_policy_current(w, name, &p, &version);

        if (s.code == CF_E_NOT_FOUND) {
                cas_reply_error(req, 404, "policy.not_found", "no such policy", NULL);
                return NULL;
        }
        if (cf_ok(s)) {
                s = cas_policy_load(w, name, version, rec);
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "policy store");
                return NULL;
        }
        /* A board, when present, decides changes itself (board_allows); access.update then
         * does not apply. */
        if (update ? p->board == NULL && !policy_key_may_update(p, caller)
                   : !(policy_key_may_read(p, caller) || policy_key_may_update(p, caller))) {
                cas_reply_error(req, 403, "policy.access",
                                update ? "your key is not in the policy's 'access.update'"
                                       : "your key is not in the policy's 'access.read'",
                                json_pack("{s:s}", "key_id", caller));
                return NULL;
        }
        return p;
}

static void policy_read(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        char caller[CF_KEY_ID_HEX];
        struct cas_policy_record r;
        const struct policy *p;
        json_t *out, *model = NULL;

        if (!require_caller(req, caller)) {
                return;
        }
        cas_policy_record_init(&r);
        p = authorize(w, req, name, caller, false, &r);
        if (p != NULL) {
                out = record_summary(name, &r);
                if (out == NULL || !cf_ok(policy_to_json(p, &model))) {
                        json_decref(out);
                        cas_reply_error(req, 500, "internal", "cannot render the policy", NULL);
                } else {
                        json_object_set_new(out, "policy", model);
                        cas_reply_json(req, 200, out);
                }
        }
        cas_policy_record_done(&r);
}

static void policy_update(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        struct approvals ap = { .n = 0 };
        char caller[CF_KEY_ID_HEX];
        struct cas_policy_record cur, r;
        const struct policy *old;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        cf_status s;

        if (!require_caller(req, caller)) {
                return;
        }
        cas_policy_record_init(&cur);
        cas_policy_record_init(&r);
        old = authorize(w, req, name, caller, true, &cur);
        if (old == NULL || (p = parse_body(req, &r, &ap)) == NULL) {
                goto out;
        }
        /* The CURRENT board approves its replacement, so a board changes only with the
         * consent of the board it replaces. */
        if (old->board != NULL &&
            !board_allows(req, old->board, name, r.digest, cur.digest, &ap)) {
                goto out;
        }
        if (strcmp(p->name, name) != 0) {
                cas_reply_error(req, 400, "policy.name",
                                "the document's 'name' differs from the policy being updated",
                                json_pack("{s:s, s:s}", "expected", name, "actual", p->name));
                goto out;
        }
        if (!p->has_predecessor || strcmp(p->predecessor, cur.digest) != 0) {
                cas_reply_error(req, 409, "policy.predecessor_mismatch",
                                "'predecessor' must be the digest of the current version",
                                json_pack("{s:s, s:s}", "expected", cur.digest, "actual",
                                          p->has_predecessor ? p->predecessor : "null"));
                goto out;
        }
        memcpy(r.predecessor, cur.digest, sizeof(r.predecessor));
        memcpy(r.creator, caller, sizeof(r.creator));
        r.created = (int64_t)time(NULL);
        r.version = cur.version + 1;
        s = write_version(w, name, r.version, &r, p, old);
        if (!cf_ok(s)) {
                if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                        cas_reply_error(req, 409, "policy.predecessor_mismatch",
                                        "a concurrent update changed the policy; fetch it again",
                                        NULL);
                } else {
                        cas_reply_status(req, s, "policy update");
                }
                goto out;
        }
        atomic_fetch_add(&w->cas->metrics.policies_updated, 1);
        cf_log_info("policy updated name=%s version=%llu digest=%.16s by=%.16s", name,
                    (unsigned long long)r.version, r.digest, caller);
        cf_ignore(cas_audit_append(w, "policy.update", caller,
                                   json_pack("{s:s, s:I, s:s, s:s}", "policy", name, "version",
                                             (json_int_t)r.version, "digest", r.digest,
                                             "predecessor", r.predecessor)));
        cas_reply_json(req, 200, record_summary(name, &r));
out:
        approvals_done(&ap);
        cas_policy_record_done(&cur);
        cas_policy_record_done(&r);
}

static void policy_delete(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        const struct policy *old;
        char caller[CF_KEY_ID_HEX];
        struct cas_policy_record cur, r;
        struct cf_slice parts[2];
        uint8_t h[32];
        cf_status s;

        if (!require_caller(req, caller)) {
                return;
        }
        cas_policy_record_init(&cur);
        cas_policy_record_init(&r);
        old = authorize(w, req, name, caller, true, &cur);
        if (old == NULL) {
                goto out;
        }
        if (old->board != NULL) {
                /* TODO(#6): approvals over the deletion statement; until then one person must
                 * not be able to delete what a board governs. */
                cas_reply_error(req, 403, "policy.board",
                                "a policy governed by a board cannot be deleted yet; replace it "
                                "with an update its board approves",
                                NULL);
                goto out;
        }
        parts[0] = cf_slice_str("coffer-policy-deleted-v1");
        parts[1] = cf_slice_str(cur.digest);
        s = cf_sha256(parts, 2, h);
        cf_hex_encode(h, sizeof(h), r.digest, sizeof(r.digest));
        memcpy(r.predecessor, cur.digest, sizeof(r.predecessor));
        memcpy(r.creator, caller, sizeof(r.creator));
        r.created = (int64_t)time(NULL);
        r.deleted = true;
        r.version = cur.version + 1;
        if (cf_ok(s)) {
                s = write_version(w, name, r.version, &r, NULL, NULL);
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "policy delete");
                goto out;
        }
        atomic_fetch_add(&w->cas->metrics.policies_deleted, 1);
        cf_log_info("policy deleted name=%s version=%llu by=%.16s", name,
                    (unsigned long long)r.version, caller);
        cf_ignore(cas_audit_append(w, "policy.delete", caller,
                                   json_pack("{s:s, s:I, s:s, s:s}", "policy", name, "version",
                                             (json_int_t)r.version, "digest", r.digest,
                                             "predecessor", r.predecessor)));
        cas_reply_json(req, 200, record_summary(name, &r));
out:
        cas_policy_record_done(&cur);
        cas_policy_record_done(&r);
}

static void policy_history(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        char caller[CF_KEY_ID_HEX];
        uint64_t versions[POLICY_HISTORY_MAX];
        size_t n = 0;
        struct cas_policy_record r;
        CF_CLEANUP(policy_freep) struct policy *live = NULL;
        json_t *list = json_array();
        cf_status s;

        if (!require_caller(req, caller)) {
                json_decref(list);
                return;
        }
        s = store_versions(w->store, POLICY_TABLE, name, versions, POLICY_HISTORY_MAX, &n);
        if (cf_ok(s) && n == 0) {
                s = cf_fail(CF_E_NOT_FOUND);
        }
        if (!cf_ok(s)) {
                json_decref(list);
                if (s.code == CF_E_NOT_FOUND) {
                        cas_reply_error(req, 404, "policy.not_found", "no such policy", NULL);
                } else {
                        cas_log_store_error(w->cas, s, POLICY_TABLE, name);
                        cas_reply_status(req, s, "policy history");
                }
                return;
        }
        for (size_t i = 0; i < n && cf_ok(s); i++) {
                cas_policy_record_init(&r);
                s = cas_policy_load(w, name, versions[i], &r);
                if (cf_ok(s)) {
                        json_array_append_new(list, record_summary(name, &r));
                        if (!r.deleted) {
                                struct policy_errors errs;
                                policy_free(live);
                                live = NULL;
                                cf_ignore(policy_parse(cf_buf_slice(&r.document), &live, &errs));
                        }
                }
                cas_policy_record_done(&r);
        }
        if (!cf_ok(s)) {
                json_decref(list);
                cas_reply_status(req, s, "policy history");
                return;
        }
        /* Access follows the last live version, so a deleted policy's history stays visible
         * to the people who could see it. */
        if (live == NULL ||
            !(policy_key_may_read(live, caller) || policy_key_may_update(live, caller))) {
                json_decref(list);
                cas_reply_error(req, 403, "policy.access",
                                "your key is not in the policy's 'access.read'", NULL);
                return;
        }
        cas_reply_json(req, 200, json_pack("{s:s, s:o}", "name", name, "versions", list));
}

/* rest is "" (collection), or "/NAME" or "/NAME/history" with '/' inside NAME encoded as
 * %2F so that names and sub-resources cannot be confused. */
void cas_api_policies(struct cas_worker *w, struct evhttp_request *req, const char *rest)
{
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char enc[600], *slash, *name;
        size_t len = 0;
        bool history = false;

        if (rest[0] == '\0') {
                if (m == EVHTTP_REQ_POST) {
                        policy_create(w, req);
                } else {
                        cas_reply_error(req, 405, "method", "use POST to create a policy", NULL);
                }
                return;
        }
        if (strlen(rest + 1) >= sizeof(enc)) {
                cas_reply_error(req, 400, "request.path", "the policy name is too long", NULL);
                return;
        }
        snprintf(enc, sizeof(enc), "%s", rest + 1);
        slash = strchr(enc, '/');
        if (slash != NULL) {
                if (strcmp(slash, "/history") != 0) {
                        cas_reply_error(req, 404, "not_found",
                                        "no such endpoint (encode '/' in policy names as %2F)",
                                        NULL);
                        return;
                }
                *slash = '\0';
                history = true;
        }
        name = evhttp_uridecode(enc, 0, &len);
        if (name == NULL || len == 0 || strlen(name) != len) {
                free(name);
                cas_reply_error(req, 400, "request.path", "bad policy name in the path", NULL);
                return;
        }
        if (history && m == EVHTTP_REQ_GET) {
                policy_history(w, req, name);
        } else if (!history && m == EVHTTP_REQ_GET) {
                policy_read(w, req, name);
        } else if (!history && m == EVHTTP_REQ_PUT) {
                policy_update(w, req, name);
        } else if (!history && m == EVHTTP_REQ_DELETE) {
                policy_delete(w, req, name);
        } else {
                cas_reply_error(req, 405, "method", "method not allowed here", NULL);
        }
        free(name);
}
