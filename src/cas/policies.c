/* Policy records in the store and the /v1/policies endpoints.
 *
 * Table "policy", key = policy name, one store version per policy version. The sealed value
 * is JSON: {"digest", "predecessor", "creator", "created", "deleted", "document" (base64 of
 * the exact submitted bytes)}. The digest of a version is SHA-256 of its document bytes; a
 * deletion is a version with an empty document whose digest is
 * SHA-256("coffer-policy-deleted-v1" || predecessor digest). */
#include "cas/cas.h"

#include <stdarg.h>
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

/* ---- governance ---------------------------------------------------------------------- */

#define CHECK_NAME_MAX 96

void cas_change_init(struct cas_change *c, enum cas_change_kind kind)
{
        memset(c, 0, sizeof(*c));
        c->kind = kind;
        cas_policy_record_init(&c->record);
}

void cas_change_done(struct cas_change *c)
{
        cas_policy_record_done(&c->record);
        policy_free(c->doc);
        policy_free(c->current);
        c->doc = NULL;
        c->current = NULL;
}

void cas_decision_done(struct cas_decision *d)
{
        json_decref(d->details);
        json_decref(d->governors);
        json_decref(d->approvers);
        json_decref(d->services);
        memset(d, 0, sizeof(*d));
}

json_t *cas_policy_summary(const char *name, const struct cas_policy_record *r)
{
        char when[32];

        cf_format_rfc3339(r->created, when, sizeof(when));
        return json_pack("{s:s, s:I, s:s, s:s*, s:s, s:s, s:b}", "name", name, "version",
                         (json_int_t)r->version, "digest", r->digest, "predecessor",
                         r->predecessor[0] ? r->predecessor : NULL, "creator", r->creator,
                         "created", when, "deleted", r->deleted);
}

/* Loads and parses a stored live version (owned by the caller). */
static cf_status load_parsed(struct cas_worker *w, const char *name, uint64_t version,
                             struct policy **ret)
{
        struct cas_policy_record r;
        struct policy_errors errs;
        cf_status s;

        cas_policy_record_init(&r);
        s = cas_policy_load(w, name, version, &r);
        if (cf_ok(s) && r.deleted) {
                s = cf_fail(CF_E_NOT_FOUND);
        }
        if (cf_ok(s)) {
                memset(&errs, 0, sizeof(errs));
                s = policy_parse(cf_buf_slice(&r.document), ret, &errs);
        }
        cas_policy_record_done(&r);
        return s;
}

/* Evaluation state shared by the governors of one decision. */
struct gov {
        struct cas_worker *w;
        const struct cas_change *c;
        const char *caller;
        struct policy_approval *const *ap;
        size_t n;
        const struct policy_service_vote *votes;
        size_t n_votes;
        struct cas_decision *d;
        json_t *checks; /* every governor's checks, names prefixed with its role */
        bool failed;    /* a governor is not met (the first one named the refusal) */
        bool vetoed;
};

static void refuse(struct cas_decision *d, enum cas_verdict v, int status, const char *code,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void refuse(struct cas_decision *d, enum cas_verdict v, int status, const char *code,
                   const char *fmt, ...)
{
        va_list ap;

        d->verdict = v;
        d->status = status;
        d->code = code;
        va_start(ap, fmt);
        vsnprintf(d->message, sizeof(d->message), fmt, ap);
        va_end(ap);
}

static void add_checks(struct gov *g, const char *role, const struct attest_checks *ch)
{
        for (size_t i = 0; i < ch->n; i++) {
                char name[CHECK_NAME_MAX];
                const struct attest_check *k = &ch->items[i];
                snprintf(name, sizeof(name), "%s.%s", role, k->name);
                json_array_append_new(g->checks,
                                      json_pack("{s:s, s:b, s:s, s:s}", "name", name, "ok", k->ok,
                                                "expected", k->expected, "actual", k->actual));
        }
}

/* The first governor that is not met names the refusal. */
static void governor_failed(struct gov *g, const char *role, const char *owner)
{
        struct cas_decision *d = g->d;

        if (g->failed) {
                return;
        }
        g->failed = true;
        if (strcmp(role, "board") == 0) {
                refuse(d, CAS_PENDING, 403, "policy.board",
                       "the policy's board has not approved this change (send its members' "
                       "approvals: 'coffer policy approve')");
        } else if (strcmp(role, "access") == 0) {
                refuse(d, CAS_PENDING, 403, "policy.access",
                       "your key is not in the policy's 'access.update'");
        } else if (strcmp(role, "namespace") == 0) {
                refuse(d, CAS_PENDING, 403, "policy.namespace",
                       "creating a policy under namespace %s needs that namespace's permission "
                       "(a key of its 'namespace.create', or its board's approval)",
                       owner);
        } else {
                refuse(d, CAS_PENDING, 409, "policy.recreate",
                       "this name was deleted; re-creating it needs the consent of its last "
                       "version's board (or a key of its 'access.update'), over the deletion "
                       "digest as predecessor");
        }
}

static void add_approvers_ids(struct gov *g, char *const *ids, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                json_array_append_new(g->d->approvers, json_string(ids[i]));
        }
}

static void add_governor(struct gov *g, const char *role, const char *owner, bool met,
                         json_t *approved_by, const char *needs)
{
        json_array_append_new(g->d->governors,
                              json_pack("{s:s, s:s, s:b, s:o, s:s}", "role", role, "policy", owner,
                                        "met", met, "approved_by",
                                        approved_by ? approved_by : json_array(), "needs", needs));
}

/* A board governs: its rule over the approvals and votes. */
static cf_status gov_board(struct gov *g, const char *role, const char *owner,
                           const struct policy_board *b, bool deletion)
{
        struct attest_checks ch;
        struct policy_board_outcome o;
        struct cf_buf needs;
        json_t *by = json_array();
        const struct cas_change *c = g->c;
        cf_status s = CF_OK;
        bool ok;

        ENSURE(by != NULL, CF_E_NOMEM);
        attest_checks_init(&ch);
        ok = policy_board_decide(b, c->name, c->digest, c->base, deletion, g->ap, g->n, g->votes,
                                 g->n_votes, &ch, &o);
        add_checks(g, role, &ch);
        attest_checks_done(&ch);
        cf_buf_init(&needs, 4096, false);
        for (size_t m = 0; m < b->n_members; m++) {
                if (o.approved[m]) {
                        json_array_append_new(by, json_string(b->members[m].name));
                }
                if (b->members[m].kind == POLICY_MEMBER_PERSON) {
                        json_array_append_new(g->d->approvers, json_string(b->members[m].key_id));
                } else {
                        json_array_append_new(g->d->services, json_string(b->members[m].service));
                }
        }
        if (o.vetoed) {
                s = cf_buf_append_str(&needs, "vetoed");
        } else if (!cf_ok(policy_board_needs(b, o.approved, &needs))) {
                cf_buf_reset(&needs);
                s = cf_buf_append_str(&needs, "?");
        }
        if (cf_ok(s)) {
                add_governor(g, role, owner, ok, by, (const char *)needs.ptr);
        } else {
                json_decref(by);
        }
        cf_buf_done(&needs);
        if (o.vetoed) {
                g->vetoed = true;
        }
        if (!ok) {
                governor_failed(g, role, owner);
        }
        return s;
}

static bool in_list(char *const *ids, size_t n, const char *kid)
{
        for (size_t i = 0; kid != NULL && i < n; i++) {
                if (strcmp(ids[i], kid) == 0) {
                        return true;
                }
        }
        return false;
}

/* Whether approval a verifies over the change's statement with the verdict that approves it. */
static bool approval_verifies(const struct cas_change *c, const struct policy_approval *a,
                              char kid[static CF_KEY_ID_HEX])
{
        enum policy_verdict want =
            c->kind == CAS_CHANGE_DELETE ? POLICY_VERDICT_DELETE : POLICY_VERDICT_APPROVE;
        struct cf_buf stmt;
        bool ok;

        if (a == NULL || a->key == NULL || a->verdict != want || strcmp(a->policy, c->name) != 0 ||
            strcmp(a->digest, c->digest) != 0 || strcmp(a->predecessor, c->base) != 0 ||
            !cf_ok(cf_pkey_key_id(a->key, kid))) {
                return false;
        }
        cf_buf_init(&stmt, 1024, false);
        ok = cf_ok(policy_approval_statement_verdict(c->name, c->digest, c->base, want, &stmt)) &&
             cf_ok(cf_verify(a->key, cf_buf_slice(&stmt), cf_slice_make(a->sig, a->sig_size)));
        cf_buf_done(&stmt);
        return ok;
}

/* A key list governs: met by the caller's key, or by an approval signed by one of its keys. */
static cf_status gov_keys(struct gov *g, const char *role, const char *owner, const char *list,
                          char *const *ids, size_t n_ids)
{
        char kid[CF_KEY_ID_HEX], expected[300], actual[300], name[CHECK_NAME_MAX];
        json_t *by = json_array();
        bool ok = in_list(ids, n_ids, g->caller);

        ENSURE(by != NULL, CF_E_NOMEM);
        if (ok) {
                json_array_append_new(by, json_string(g->caller));
                snprintf(actual, sizeof(actual), "the caller %s", g->caller);
        }
        for (size_t i = 0; i < g->n; i++) {
                if (approval_verifies(g->c, g->ap[i], kid) && in_list(ids, n_ids, kid)) {
                        if (!ok) {
                                snprintf(actual, sizeof(actual), "an approval by %s", kid);
                        }
                        ok = true;
                        json_array_append_new(by, json_string(kid));
                }
        }
        if (!ok) {
                snprintf(actual, sizeof(actual),
                         "%s%s is not in it, and no approval by one of "
                         "its keys",
                         g->caller ? "the caller " : "no caller", g->caller ? g->caller : "");
        }
        add_approvers_ids(g, ids, n_ids);
        snprintf(expected, sizeof(expected), "a key of %s's '%s'", owner, list);
        snprintf(name, sizeof(name), "%s.keys", role);
        json_array_append_new(g->checks, json_pack("{s:s, s:b, s:s, s:s}", "name", name, "ok", ok,
                                                   "expected", expected, "actual", actual));
        snprintf(expected, sizeof(expected), "a key of %s's '%s'", owner, list);
        add_governor(g, role, owner, ok, by, ok ? "met" : expected);
        if (!ok) {
                governor_failed(g, role, owner);
        }
        return CF_OK;
}

/* The nearest existing ancestor of name that declares a namespace (owned), or NULL. */
static cf_status namespace_owner(struct cas_worker *w, const char *name, struct policy **ret)
{
        char prefix[256];
        char *slash;

        *ret = NULL;
        snprintf(prefix, sizeof(prefix), "%s", name);
        while ((slash = strrchr(prefix, '/')) != NULL) {
                struct policy *p = NULL;
                cf_status s;
                *slash = '\0';
                if (!policy_name_valid(prefix)) {
                        break; /* one segment: not a policy name */
                }
                s = load_parsed(w, prefix, 0, &p);
                if (s.code == CF_E_NOT_FOUND || (cf_ok(s) && p->ns == NULL)) {
                        policy_free(p);
                        continue;
                }
                TRY(s);
                *ret = p;
                return CF_OK;
        }
        return CF_OK;
}

static cf_status gov_create(struct gov *g, const struct cas_policy_record *last, bool deleted)
{
        const struct cas_change *c = g->c;
        CF_CLEANUP(policy_freep) struct policy *ns = NULL;
        CF_CLEANUP(policy_freep) struct policy *prev = NULL;
        cf_status s;

        if (c->doc->board != NULL) {
                TRY(gov_board(g, "board", c->name, c->doc->board, false));
        }
        TRY(namespace_owner(g->w, c->name, &ns));
        if (ns != NULL && ns->ns->n_create_ids > 0) {
                TRY(gov_keys(g, "namespace", ns->name, "namespace.create", ns->ns->create_ids,
                             ns->ns->n_create_ids));
        } else if (ns != NULL && ns->board != NULL) {
                TRY(gov_board(g, "namespace", ns->name, ns->board, false));
        } else if (ns != NULL) {
                TRY(gov_keys(g, "namespace", ns->name, "access.update", ns->update_ids,
                             ns->n_update_ids));
        }
        if (deleted) {
                /* The deletion's predecessor is the last live version: its governors decide
                 * whether the name may live again. */
                s = last->version > 1 ? load_parsed(g->w, c->name, last->version - 1, &prev)
                                      : cf_fail(CF_E_NOT_FOUND);
                if (!cf_ok(s) && s.code != CF_E_NOT_FOUND && s.code != CF_E_SCHEMA &&
                    s.code != CF_E_SYNTAX && s.code != CF_E_LIMIT) {
                        return s;
                }
                if (prev != NULL && prev->board != NULL) {
                        TRY(gov_board(g, "recreate", c->name, prev->board, false));
                } else {
                        TRY(gov_keys(g, "recreate", c->name, "access.update",
                                     prev ? prev->update_ids : NULL,
                                     prev ? prev->n_update_ids : 0));
                }
        }
        return CF_OK;
}

/* Loads the stored state and checks that the change applies to it; false after refusing. */
static cf_status load_state(struct cas_worker *w, struct cas_change *c, struct cas_decision *d,
                            struct cas_policy_record *last, bool *ret_ok)
{
        struct policy_errors errs;
        cf_status s = cas_policy_load(w, c->name, 0, last);
        bool exists = cf_ok(s);

        *ret_ok = false;
        if (!exists && s.code != CF_E_NOT_FOUND) {
                return s;
        }
        c->version = exists ? last->version + 1 : 1;
        snprintf(c->base, sizeof(c->base), "%s", exists ? last->digest : "");
        if (c->kind == CAS_CHANGE_CREATE) {
                if (c->doc->has_predecessor) {
                        refuse(d, CAS_REFUSED, 400, "policy.predecessor",
                               "a new policy must have 'predecessor: null'");
                } else if (exists && !last->deleted) {
                        refuse(d, CAS_REFUSED, 409, "policy.exists",
                               "a policy of this name exists; update it with its digest as "
                               "'predecessor'");
                        d->details = json_pack("{s:s}", "digest", last->digest);
                } else {
                        *ret_ok = true;
                }
                return CF_OK;
        }
        if (!exists || last->deleted) {
                refuse(d, CAS_REFUSED, 404, "policy.not_found", "no such policy");
                return CF_OK;
        }
        memset(&errs, 0, sizeof(errs));
        TRY(policy_parse(cf_buf_slice(&last->document), &c->current, &errs));
        if (c->kind == CAS_CHANGE_DELETE) {
                TRY(policy_deletion_digest(c->base, c->digest));
                *ret_ok = true;
        } else if (strcmp(c->doc->name, c->name) != 0) {
                refuse(d, CAS_REFUSED, 400, "policy.name",
                       "the document's 'name' differs from the policy being updated");
                d->details = json_pack("{s:s, s:s}", "expected", c->name, "actual", c->doc->name);
        } else if (!c->doc->has_predecessor || strcmp(c->doc->predecessor, c->base) != 0) {
                refuse(d, CAS_REFUSED, 409, "policy.predecessor_mismatch",
                       "'predecessor' must be the digest of the current version");
                d->details = json_pack("{s:s, s:s}", "expected", c->base, "actual",
                                       c->doc->has_predecessor ? c->doc->predecessor : "null");
        } else {
                *ret_ok = true;
        }
        return CF_OK;
}

cf_status cas_change_decide(struct cas_worker *w, struct cas_change *c, const char *caller,
                            struct policy_approval *const *approvals, size_t n,
                            const struct policy_service_vote *votes, size_t n_votes,
                            struct cas_decision *ret)
{
        struct gov g = {.w = w,
                        .c = c,
                        .caller = caller,
                        .ap = approvals,
                        .n = n,
                        .votes = votes,
                        .n_votes = n_votes,
                        .d = ret};
        struct cas_policy_record last;
        bool ok = false;
        cf_status s;

        memset(ret, 0, sizeof(*ret));
        ret->governors = json_array();
        ret->approvers = json_array();
        ret->services = json_array();
        g.checks = json_array();
        ENSURE(ret->governors != NULL && ret->approvers != NULL && ret->services != NULL &&
                   g.checks != NULL,
               CF_E_NOMEM);
        ENSURE(c->kind == CAS_CHANGE_DELETE || c->doc != NULL, CF_E_INVALID_ARG);
        cas_policy_record_init(&last);
        s = load_state(w, c, ret, &last, &ok);
        if (cf_ok(s) && ok) {
                switch (c->kind) {
                case CAS_CHANGE_CREATE:
                        s = gov_create(&g, &last, last.version > 0 && last.deleted);
                        break;
                case CAS_CHANGE_UPDATE:
                case CAS_CHANGE_DELETE:
                        s = c->current->board != NULL
                                ? gov_board(&g, "board", c->name, c->current->board,
                                            c->kind == CAS_CHANGE_DELETE)
                                : gov_keys(&g, "access", c->name, "access.update",
                                           c->current->update_ids, c->current->n_update_ids);
                        break;
                }
        }
        cas_policy_record_done(&last);
        if (!cf_ok(s)) {
                json_decref(g.checks);
                return s;
        }
        if (ok && g.vetoed) {
                ret->verdict = CAS_VETOED;
                ret->status = 403;
                snprintf(ret->message, sizeof(ret->message),
                         "a veto member of the board vetoed this change");
        } else if (ok && !g.failed) {
                ret->verdict = CAS_ALLOWED;
        }
        if (ok && ret->verdict != CAS_ALLOWED && ret->details == NULL) {
                ret->details =
                    json_pack("{s:O, s:O}", "checks", g.checks, "governors", ret->governors);
                if (strcmp(ret->code, "policy.access") == 0 && caller != NULL) {
                        json_object_set_new(ret->details, "key_id", json_string(caller));
                }
        }
        json_decref(g.checks);
        return CF_OK;
}

static cf_status record_put_extra(struct cas_worker *w, const char *table, const char *key,
                                  uint64_t version, struct cf_slice value)
{
        cf_status s = store_put(w->store, table, key, version, value);

        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, table, key);
        }
        return s;
}

cf_status cas_change_apply(struct cas_worker *w, struct cas_change *c, const char *actor,
                           const char *extra_table, const char *extra_key, uint64_t extra_version,
                           struct cf_slice extra_value)
{
        static const char *const types[] = {[CAS_CHANGE_CREATE] = "policy.create",
                                            [CAS_CHANGE_UPDATE] = "policy.update",
                                            [CAS_CHANGE_DELETE] = "policy.delete"};
        struct cas_policy_record *r = &c->record;
        cf_status s;

        ENSURE(c->kind >= CAS_CHANGE_CREATE && c->kind <= CAS_CHANGE_DELETE, CF_E_INVALID_ARG);
        ENSURE(strlen(actor) < sizeof(r->creator), CF_E_INVALID_ARG);
        memcpy(r->digest, c->digest, sizeof(r->digest));
        memcpy(r->predecessor, c->base, sizeof(r->predecessor));
        snprintf(r->creator, sizeof(r->creator), "%s", actor);
        r->created = (int64_t)time(NULL);
        r->deleted = c->kind == CAS_CHANGE_DELETE;
        r->version = c->version;
        if (r->deleted) {
                cf_buf_reset(&r->document);
        }
        /* The entry commits with the change or neither does (docs/formats/audit.md). */
        struct cas_audit_txn audit = { 0 };
        TRY(cas_audit_txn_begin(&audit));
        s = store_begin(w->store);
        if (!cf_ok(s)) {
                cas_audit_txn_end(&audit, false);
                return s;
        }
        s = record_put(w, c->name, c->version, r);
        if (cf_ok(s) && c->doc != NULL && !r->deleted) {
                s = cas_secrets_provision(w, c->doc,
                                          c->kind == CAS_CHANGE_UPDATE ? c->current : NULL);
        }
        if (cf_ok(s) && c->doc != NULL && !r->deleted) {
                s = cas_volumes_provision(w, c->doc);
        }
        if (cf_ok(s) && extra_table != NULL) {
                s = record_put_extra(w, extra_table, extra_key, extra_version, extra_value);
        }
        if (cf_ok(s)) {
                s = cas_audit_txn_put(
                    w, &audit, types[c->kind], actor,
                    json_pack("{s:s, s:I, s:s, s:s?}", "policy", c->name, "version",
                              (json_int_t)c->version, "digest", r->digest, "predecessor",
                              r->predecessor[0] ? r->predecessor : NULL));
        }
        if (cf_ok(s)) {
                s = store_commit(w->store);
        }
        if (!cf_ok(s)) {
                store_rollback(w->store);
                cas_audit_txn_end(&audit, false);
                return s;
        }
        cas_audit_txn_end(&audit, true);
        if (c->kind == CAS_CHANGE_CREATE) {
                atomic_fetch_add(&w->cas->metrics.policies_created, 1);
        } else if (c->kind == CAS_CHANGE_UPDATE) {
                atomic_fetch_add(&w->cas->metrics.policies_updated, 1);
        } else {
                atomic_fetch_add(&w->cas->metrics.policies_deleted, 1);
        }
        cf_log_info("%s name=%s version=%llu digest=%.16s by=%.16s", types[c->kind], c->name,
                    (unsigned long long)c->version, r->digest, actor);
        return CF_OK;
}

/* ---- helpers for handlers ------------------------------------------------------------ */

bool cas_require_caller(struct evhttp_request *req, char key_id[static CF_KEY_ID_HEX])
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

/* Replies the refusal a decision carries (consumes its details). */
static void reply_decision(struct evhttp_request *req, struct cas_decision *d)
{
        json_t *details = d->details;

        d->details = NULL;
        cas_reply_error(req, d->status, d->code ? d->code : "policy.board", d->message, details);
}

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
 * {"document": TEXT, "approvals": [APPROVAL...]} (docs/formats/approval.md); a deletion's
 * envelope is {"approvals": [...]} and a deletion without that content type has no body. */
static cf_status read_change(struct evhttp_request *req, bool deletion, struct cf_buf *document,
                             struct approvals *ap, const char **why)
{
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        struct cf_buf body;
        json_error_t jerr;
        json_t *j, *list = NULL, *item;
        const char *doc = NULL;
        size_t i;
        int bad;
        cf_status s = CF_OK;

        if (ct == NULL || strncmp(ct, CHANGE_CONTENT_TYPE, strlen(CHANGE_CONTENT_TYPE)) != 0) {
                if (deletion) {
                        return CF_OK;
                }
                *why = "the policy document exceeds 1 MiB";
                return cas_request_body(req, POLICY_DOC_MAX, document);
        }
        cf_buf_init(&body, CHANGE_BODY_MAX, true);
        *why = deletion ? "the deletion is not {\"approvals\": [...]} within 3 MiB"
                        : "the change is not {\"document\": TEXT, \"approvals\": [...]} within "
                          "3 MiB";
        s = cas_request_body(req, CHANGE_BODY_MAX, &body);
        if (!cf_ok(s)) {
                cf_buf_done(&body);
                return s;
        }
        j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&body);
        bad = j == NULL  ? -1
              : deletion ? json_unpack(j, "{s:o !}", "approvals", &list)
                         : json_unpack(j, "{s:s, s:o !}", "document", &doc, "approvals", &list);
        if (bad != 0 || !json_is_array(list) || json_array_size(list) > POLICY_APPROVALS_MAX) {
                json_decref(j);
                return cf_fail(CF_E_SCHEMA);
        }
        if (doc != NULL) {
                s = cf_buf_append(document, doc, strlen(doc));
        }
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

/* Reads the change into c (document, digest, parsed model); replies on failure. */
static bool parse_body(struct evhttp_request *req, struct cas_change *c, struct approvals *ap)
{
        struct policy_errors errs;
        const char *why = NULL;
        cf_status s;

        memset(&errs, 0, sizeof(errs));
        s = read_change(req, c->kind == CAS_CHANGE_DELETE, &c->record.document, ap, &why);
        if (!cf_ok(s)) {
                cas_reply_error(req, s.code == CF_E_LIMIT ? 413 : 400, "request.change", why, NULL);
                return false;
        }
        if (c->kind == CAS_CHANGE_DELETE) {
                return true;
        }
        s = policy_parse(cf_buf_slice(&c->record.document), &c->doc, &errs);
        if (!cf_ok(s)) {
                reply_invalid(req, s, &errs);
                return false;
        }
        cf_ignore(policy_digest(cf_buf_slice(&c->record.document), c->digest));
        return true;
}

/* ---- handlers ----------------------------------------------------------------------- */

/* Create (name NULL: the document names it), update or delete, with offline approvals. */
static void policy_change(struct cas_worker *w, struct evhttp_request *req,
                          enum cas_change_kind kind, const char *name)
{
        struct approvals ap = {.n = 0};
        char caller[CF_KEY_ID_HEX];
        struct cas_change c;
        struct cas_decision d;
        cf_status s;

        if (!cas_require_caller(req, caller)) {
                return;
        }
        cas_change_init(&c, kind);
        memset(&d, 0, sizeof(d));
        if (!parse_body(req, &c, &ap)) {
                goto out;
        }
        snprintf(c.name, sizeof(c.name), "%s", name != NULL ? name : c.doc->name);
        s = cas_change_decide(w, &c, caller, ap.items, ap.n, NULL, 0, &d);
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "policy store");
                goto out;
        }
        if (d.verdict != CAS_ALLOWED) {
                reply_decision(req, &d);
                goto out;
        }
        /* Imports are resolved against the exporters' current state (their consent). */
        if (kind != CAS_CHANGE_DELETE && !cas_secrets_imports_ok(w, req, c.doc)) {
                goto out;
        }
        s = cas_change_apply(w, &c, caller, NULL, NULL, 0, cf_slice_make(NULL, 0));
        if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                cas_reply_error(req, 409,
                                kind == CAS_CHANGE_CREATE ? "policy.exists"
                                                          : "policy.predecessor_mismatch",
                                "a concurrent request changed this policy; fetch it again", NULL);
        } else if (!cf_ok(s)) {
                cas_reply_status(req, s, "policy change");
        } else {
                cas_reply_json(req, kind == CAS_CHANGE_CREATE ? 201 : 200,
                               cas_policy_summary(c.name, &c.record));
        }
out:
        cas_decision_done(&d);
        approvals_done(&ap);
        cas_change_done(&c);
}

/* Loads the live current version and checks the caller may read it. */
static const struct policy *authorize_read(struct cas_worker *w, struct evhttp_request *req,
                                           const char *name, const char *caller,
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
        if (!(policy_key_may_read(p, caller) || policy_key_may_update(p, caller))) {
                cas_reply_error(req, 403, "policy.access",
                                "your key is not in the policy's 'access.read'",
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

        if (!cas_require_caller(req, caller)) {
                return;
        }
        cas_policy_record_init(&r);
        p = authorize_read(w, req, name, caller, &r);
        if (p != NULL) {
                out = cas_policy_summary(name, &r);
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

static void policy_history(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        char caller[CF_KEY_ID_HEX];
        uint64_t versions[POLICY_HISTORY_MAX];
        size_t n = 0;
        struct cas_policy_record r;
        CF_CLEANUP(policy_freep) struct policy *live = NULL;
        json_t *list = json_array();
        cf_status s;

        if (!cas_require_caller(req, caller)) {
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
                        json_array_append_new(list, cas_policy_summary(name, &r));
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

/* rest is "" (collection), or "/NAME", "/NAME/history", "/NAME/proposals[/...]" or
 * "/NAME/secrets/SECRET/release", with '/' inside NAME encoded as %2F so that names and sub-resources cannot be confused. */
void cas_api_policies(struct cas_worker *w, struct evhttp_request *req, const char *rest)
{
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char enc[600], *slash, *name;
        const char *sub = "";
        size_t len = 0;

        if (rest[0] == '\0') {
                if (m == EVHTTP_REQ_POST) {
                        policy_change(w, req, CAS_CHANGE_CREATE, NULL);
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
                sub = rest + 1 + (slash - enc);
                if (strcmp(sub, "/history") != 0 && strcmp(sub, "/proposals") != 0 &&
                    strncmp(sub, "/proposals/", 11) != 0 && strncmp(sub, "/secrets/", 9) != 0) {
                        cas_reply_error(req, 404, "not_found",
                                        "no such endpoint (encode '/' in policy names as %2F)",
                                        NULL);
                        return;
                }
                *slash = '\0';
        }
        name = evhttp_uridecode(enc, 0, &len);
        if (name == NULL || len == 0 || strlen(name) != len) {
                free(name);
                cas_reply_error(req, 400, "request.path", "bad policy name in the path", NULL);
                return;
        }
        if (strncmp(sub, "/proposals", 10) == 0) {
                cas_api_proposals(w, req, name, sub + 10);
        } else if (strncmp(sub, "/secrets/", 9) == 0) {
                cas_api_release(w, req, name, sub + 9);
        } else if (sub[0] != '\0' && m == EVHTTP_REQ_GET) {
                policy_history(w, req, name);
        } else if (sub[0] == '\0' && m == EVHTTP_REQ_GET) {
                policy_read(w, req, name);
        } else if (sub[0] == '\0' && m == EVHTTP_REQ_PUT) {
                policy_change(w, req, CAS_CHANGE_UPDATE, name);
        } else if (sub[0] == '\0' && m == EVHTTP_REQ_DELETE) {
                policy_change(w, req, CAS_CHANGE_DELETE, name);
        } else {
                cas_reply_error(req, 405, "method", "method not allowed here", NULL);
        }
        free(name);
}
