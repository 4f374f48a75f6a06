/* Online proposals: /v1/policies/NAME/proposals (docs/api.md, "Proposals").
 *
 * A proposal is a change (a new version, or a deletion) waiting for its governors' approvals.
 * It is stored sealed in table "proposal", key "NAME:DIGEST" (':' never occurs in a policy
 * name), one store version per state change, so two concurrent approvals cannot both append
 * to the same version. The value is JSON:
 *   {"kind": "put"|"delete", "policy", "digest", "base", "proposer", "created", "expires",
 *    "state": "pending"|"applied"|"rejected"|"conflict", "document": BASE64 ("" for a
 *    deletion), "approvals": [APPROVAL...], "votes": [{"service", "veto"}]}
 * "base" is the digest of the latest stored version when the proposal was made ("" for a
 * name never used): every approval names it as predecessor, and the proposal applies only
 * while it is still the latest version (otherwise it is closed as a conflict).
 *
 * Approvals are the signed statements of docs/formats/approval.md, or the verdict of an
 * attested program member, whose evidence must bind this TLS connection and satisfy its own
 * service's rules (cas_evidence_admits, exactly as an activation). A proposal applies, in the
 * same transaction as its state change, as soon as every governor is met. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/keyvalq_struct.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "policy/policy.h"
#include "store/store.h"

#define PROPOSAL_TABLE           "proposal"
#define PROPOSAL_BODY_MAX        (3u << 20)   /* POST proposals: the document is inside */
#define APPROVAL_BODY_MAX        (256u << 10) /* POST approvals: an approval or evidence */
#define PROPOSAL_VALUE_MAX       (8u << 20)
#define PROPOSAL_EXPIRES_DEFAULT (24 * 3600)
#define PROPOSAL_EXPIRES_MAX     (30 * 24 * 3600)
#define PROPOSAL_LIST_MAX        256
#define PROPOSAL_KEY_MAX         (256 + 1 + 64 + 1)
#define EVIDENCE_MAX             (64u << 10)
#define JSON_TYPE                "application/json"

/* One stored proposal: its JSON record and its store version. */
struct proposal {
        char key[PROPOSAL_KEY_MAX];
        json_t *rec;
        uint64_t version;
};

static void proposal_done(struct proposal *p)
{
        json_decref(p->rec);
        p->rec = NULL;
}

static const char *pget(const struct proposal *p, const char *k)
{
        const char *v = json_string_value(json_object_get(p->rec, k));

        return v != NULL ? v : "";
}

static int64_t pint(const struct proposal *p, const char *k)
{
        return (int64_t)json_integer_value(json_object_get(p->rec, k));
}

static bool hex64(const char *s)
{
        size_t i = 0;

        for (; s[i] != '\0'; i++) {
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
                        return false;
                }
        }
        return i == 64;
}

static cf_status proposal_key(const char *name, const char *digest,
                              char out[static PROPOSAL_KEY_MAX])
{
        int n = snprintf(out, PROPOSAL_KEY_MAX, "%s:%s", name, digest);

        ENSURE(n > 0 && (size_t)n < PROPOSAL_KEY_MAX, CF_E_LIMIT);
        return CF_OK;
}

/* Loads and checks the shape of a stored proposal. CF_E_NOT_FOUND when absent. */
static cf_status proposal_load(struct cas_worker *w, const char *key, struct proposal *ret)
{
        struct cf_buf value;
        json_error_t jerr;
        json_t *j, *ap = NULL, *votes = NULL;
        const char *kind, *policy, *digest, *base, *proposer, *state, *doc;
        json_int_t created, expires;
        uint64_t version = 0;
        cf_status s;

        /* The document may hold explicit secret values. */
        cf_buf_init(&value, PROPOSAL_VALUE_MAX, true);
        s = store_get(w->store, PROPOSAL_TABLE, key, 0, &value, &version);
        if (!cf_ok(s)) {
                cf_buf_done(&value);
                cas_log_store_error(w->cas, s, PROPOSAL_TABLE, key);
                return s;
        }
        j = json_loadb((const char *)value.ptr, value.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&value);
        if (j == NULL ||
            json_unpack(j, "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:o !}", "kind",
                        &kind, "policy", &policy, "digest", &digest, "base", &base, "proposer",
                        &proposer, "created", &created, "expires", &expires, "state", &state,
                        "document", &doc, "approvals", &ap, "votes", &votes) != 0 ||
            !json_is_array(ap) || !json_is_array(votes)) {
                json_decref(j);
                return cf_fail(CF_E_MALFORMED);
        }
        snprintf(ret->key, sizeof(ret->key), "%s", key);
        ret->rec = j;
        ret->version = version;
        return CF_OK;
}

static cf_status proposal_dump(const struct proposal *p, char **ret, size_t *ret_n)
{
        char *dump = json_dumps(p->rec, JSON_COMPACT | JSON_SORT_KEYS);

        ENSURE(dump != NULL, CF_E_NOMEM);
        *ret = dump;
        *ret_n = strlen(dump);
        return CF_OK;
}

/* Writes the next version of p (alone, outside a policy change). */
static cf_status proposal_save(struct cas_worker *w, struct proposal *p)
{
        char *dump = NULL;
        size_t n = 0;
        cf_status s;

        TRY(proposal_dump(p, &dump, &n));
        s = store_put(w->store, PROPOSAL_TABLE, p->key, p->version + 1, cf_slice_make(dump, n));
        cf_wipe_free(dump, n);
        if (cf_ok(s)) {
                p->version++;
        } else {
                cas_log_store_error(w->cas, s, PROPOSAL_TABLE, p->key);
        }
        return s;
}

static void set_state(struct proposal *p, const char *state)
{
        json_object_set_new(p->rec, "state", json_string(state));
}

static void audit(struct cas_worker *w, const char *type, const char *actor,
                  const struct proposal *p, const char *who)
{
        cf_ignore(cas_audit_append(w, type, actor,
                                   json_pack("{s:s, s:s, s:s, s:s?}", "policy", pget(p, "policy"),
                                             "digest", pget(p, "digest"), "kind", pget(p, "kind"),
                                             "member", who)));
}

/* An expired proposal is refused and removed; a pending one is audited as expired. True when
 * it was expired (and is gone). */
static bool prune_if_expired(struct cas_worker *w, struct proposal *p, int64_t now)
{
        if (now <= pint(p, "expires")) {
                return false;
        }
        if (strcmp(pget(p, "state"), "pending") == 0) {
                audit(w, "proposal.expired", "cofferd", p, NULL);
        }
        if (!cf_ok(store_delete(w->store, PROPOSAL_TABLE, p->key))) {
                cf_log_debug("proposal %s: cannot prune", p->key);
        }
        return true;
}

/* ---- the change a proposal makes ----------------------------------------------------- */

struct votes {
        struct policy_approval *items[POLICY_APPROVALS_MAX];
        size_t n;
        struct policy_service_vote v[POLICY_APPROVALS_MAX];
        size_t n_v;
};

static void votes_done(struct votes *v)
{
        for (size_t i = 0; i < v->n; i++) {
                policy_approval_free(v->items[i]);
        }
        v->n = 0;
        v->n_v = 0;
}

/* The stored approvals and votes (borrowing service names from p->rec). */
static cf_status votes_load(const struct proposal *p, struct votes *out)
{
        json_t *list = json_object_get(p->rec, "approvals"), *item;
        size_t i;

        ENSURE(json_array_size(list) <= POLICY_APPROVALS_MAX, CF_E_LIMIT);
        json_array_foreach(list, i, item)
        {
                char *text = json_dumps(item, JSON_COMPACT);
                cf_status s;
                ENSURE(text != NULL, CF_E_NOMEM);
                s = policy_approval_parse(cf_slice_str(text), &out->items[out->n]);
                free(text);
                TRY(s);
                out->n++;
        }
        list = json_object_get(p->rec, "votes");
        ENSURE(json_array_size(list) <= POLICY_APPROVALS_MAX, CF_E_LIMIT);
        json_array_foreach(list, i, item)
        {
                const char *svc = json_string_value(json_object_get(item, "service"));
                ENSURE(svc != NULL, CF_E_MALFORMED);
                out->v[out->n_v].service = svc;
                out->v[out->n_v].veto = json_is_true(json_object_get(item, "veto"));
                out->n_v++;
        }
        return CF_OK;
}

/* Rebuilds the change from a proposal's record into c (initialised and empty). */
static cf_status proposal_change(const struct proposal *p, const char *name, struct cas_change *c)
{
        struct policy_errors errs;
        bool deletion = strcmp(pget(p, "kind"), "delete") == 0;

        c->kind = deletion ? CAS_CHANGE_DELETE : CAS_CHANGE_CREATE;
        snprintf(c->name, sizeof(c->name), "%s", name);
        if (deletion) {
                return CF_OK;
        }
        TRY(cf_base64_decode_buf(cf_slice_str(pget(p, "document")), &c->record.document));
        memset(&errs, 0, sizeof(errs));
        TRY(policy_parse(cf_buf_slice(&c->record.document), &c->doc, &errs));
        c->kind = c->doc->has_predecessor ? CAS_CHANGE_UPDATE : CAS_CHANGE_CREATE;
        return policy_digest(cf_buf_slice(&c->record.document), c->digest);
}

/* The decision for a proposal as stored now; *ret_conflict when it can no longer apply. */
static cf_status proposal_decide(struct cas_worker *w, const struct proposal *p, const char *name,
                                 struct cas_change *c, struct votes *v, struct cas_decision *d,
                                 bool *ret_conflict)
{
        TRY(proposal_change(p, name, c));
        TRY(votes_load(p, v));
        TRY(cas_change_decide(w, c, pget(p, "proposer"), v->items, v->n, v->v, v->n_v, d));
        *ret_conflict = d->verdict == CAS_REFUSED || strcmp(c->base, pget(p, "base")) != 0 ||
                        strcmp(c->digest, pget(p, "digest")) != 0;
        return CF_OK;
}

static json_t *proposal_summary(const struct proposal *p, const struct cas_decision *d)
{
        char created[32], expires[32];
        json_t *o;
        json_t *ap = json_array(), *item;
        size_t i;

        cf_format_rfc3339(pint(p, "created"), created, sizeof(created));
        cf_format_rfc3339(pint(p, "expires"), expires, sizeof(expires));
        json_array_foreach(json_object_get(p->rec, "approvals"), i, item)
        {
                const char *pem = json_string_value(json_object_get(item, "key"));
                struct cf_pkey *k = NULL;
                char kid[CF_KEY_ID_HEX] = "";
                if (pem != NULL && cf_ok(policy_public_key_parse(cf_slice_str(pem), &k))) {
                        cf_ignore(cf_pkey_key_id(k, kid));
                }
                cf_pkey_free(k);
                json_array_append_new(
                    ap, json_pack("{s:s, s:s}", "key_id", kid, "verdict",
                                  json_string_value(json_object_get(item, "verdict"))));
        }
        json_array_foreach(json_object_get(p->rec, "votes"), i, item)
        {
                json_array_append_new(
                    ap,
                    json_pack("{s:O, s:s}", "service", json_object_get(item, "service"), "verdict",
                              json_is_true(json_object_get(item, "veto")) ? "veto" : "approve"));
        }
        o = json_pack("{s:s, s:s, s:s, s:s*, s:s, s:s, s:s, s:s, s:o}", "policy", pget(p, "policy"),
                      "kind", pget(p, "kind"), "digest", pget(p, "digest"), "predecessor",
                      pget(p, "base")[0] ? pget(p, "base") : NULL, "proposer", pget(p, "proposer"),
                      "created", created, "expires", expires, "state", pget(p, "state"),
                      "approvals", ap);
        if (o != NULL && d != NULL && d->governors != NULL) {
                json_object_set(o, "governors", d->governors);
        }
        return o;
}

/* ---- request helpers ----------------------------------------------------------------- */

/* Reads a JSON object body of at most max bytes sent as application/json; replies 415, 413
 * or 400 and returns NULL otherwise. The body may hold a document, hence the wiping. */
static json_t *read_json(struct evhttp_request *req, size_t max)
{
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        struct cf_buf body;
        json_error_t jerr;
        json_t *j;
        cf_status s;

        if (ct == NULL || strncmp(ct, JSON_TYPE, strlen(JSON_TYPE)) != 0 ||
            (ct[strlen(JSON_TYPE)] != '\0' && ct[strlen(JSON_TYPE)] != ';')) {
                cas_reply_error(req, 415, "request.content_type",
                                "send the body as application/json", NULL);
                return NULL;
        }
        cf_buf_init(&body, max, true);
        s = cas_request_body(req, max, &body);
        if (!cf_ok(s)) {
                cf_buf_done(&body);
                cas_reply_error(req, s.code == CF_E_LIMIT ? 413 : 400,
                                s.code == CF_E_LIMIT ? "request.too_large" : "request.body",
                                s.code == CF_E_LIMIT ? "the body is too large"
                                                     : "cannot read "
                                                       "the body",
                                json_pack("{s:I}", "max", (json_int_t)max));
                return NULL;
        }
        j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&body);
        if (!json_is_object(j)) {
                json_decref(j);
                cas_reply_error(req, 400, "request.json", "the body is not a JSON object", NULL);
                return NULL;
        }
        return j;
}

/* Loads the proposal NAME:DIGEST; replies 400, 404 or 410 (pruning it) and returns false. */
static bool load_live(struct cas_worker *w, struct evhttp_request *req, const char *name,
                      const char *digest, struct proposal *p)
{
        char key[PROPOSAL_KEY_MAX];
        cf_status s;

        if (!hex64(digest) || !cf_ok(proposal_key(name, digest, key))) {
                cas_reply_error(req, 400, "request.path",
                                "the proposal digest must be 64 lower-case hex digits", NULL);
                return false;
        }
        s = proposal_load(w, key, p);
        if (s.code == CF_E_NOT_FOUND) {
                cas_reply_error(req, 404, "proposal.not_found", "no such proposal", NULL);
                return false;
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal store");
                return false;
        }
        if (prune_if_expired(w, p, (int64_t)time(NULL))) {
                char when[32];
                cf_format_rfc3339(pint(p, "expires"), when, sizeof(when));
                cas_reply_error(req, 410, "proposal.expired", "the proposal expired",
                                json_pack("{s:s}", "expires", when));
                proposal_done(p);
                return false;
        }
        return true;
}

static bool json_has(json_t *list, const char *s)
{
        json_t *v;
        size_t i;

        json_array_foreach(list, i, v)
        {
                if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
                        return true;
                }
        }
        return false;
}

/* A person member of p's board (a closed proposal has no governors left to ask). */
static bool board_member(const struct policy *p, const char *kid)
{
        for (size_t i = 0; p != NULL && p->board != NULL && i < p->board->n_members; i++) {
                const struct policy_member *m = &p->board->members[i];
                if (m->kind == POLICY_MEMBER_PERSON && strcmp(m->key_id, kid) == 0) {
                        return true;
                }
        }
        return false;
}

/* ---- handlers ------------------------------------------------------------------------ */

/* Applies an allowed proposal together with its "applied" state. */
static void apply(struct cas_worker *w, struct evhttp_request *req, struct proposal *p,
                  struct cas_change *c, int status)
{
        char *dump = NULL;
        size_t n = 0;
        cf_status s;

        /* The exporters' consent is checked when the change applies, as for direct changes. */
        if (c->kind != CAS_CHANGE_DELETE && !cas_secrets_imports_ok(w, req, c->doc)) {
                return;
        }
        set_state(p, "applied");
        s = proposal_dump(p, &dump, &n);
        if (cf_ok(s)) {
                s = cas_change_apply(w, c, pget(p, "proposer"), PROPOSAL_TABLE, p->key,
                                     p->version + 1, cf_slice_make(dump, n));
        }
        if (dump != NULL) {
                cf_wipe_free(dump, n);
        }
        if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                cas_reply_error(req, 409, "proposal.conflict",
                                "a concurrent change of the policy or the proposal won; fetch "
                                "them again",
                                NULL);
                return;
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal apply");
                return;
        }
        p->version++;
        cas_reply_json(req, status,
                       json_pack("{s:s, s:s, s:s, s:o}", "policy", c->name, "digest", c->digest,
                                 "state", "applied", "version",
                                 cas_policy_summary(c->name, &c->record)));
}

static void propose(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        char caller[CF_KEY_ID_HEX];
        CF_CLEANUP(json_decrefp) json_t *body = NULL;
        const char *kind = NULL, *doc = NULL;
        json_int_t expires = PROPOSAL_EXPIRES_DEFAULT;
        struct cas_change c;
        struct cas_decision d;
        struct proposal p = {.version = 0};
        struct cf_buf b64;
        int64_t now = (int64_t)time(NULL);
        cf_status s;

        if (!cas_require_caller(req, caller) || (body = read_json(req, PROPOSAL_BODY_MAX)) == NULL) {
                return;
        }
        if (json_unpack(body, "{s:s, s?s, s?I !}", "kind", &kind, "document", &doc, "expires",
                        &expires) != 0 ||
            (strcmp(kind, "put") != 0 && strcmp(kind, "delete") != 0) ||
            (strcmp(kind, "put") == 0) != (doc != NULL) || expires < 1 ||
            expires > PROPOSAL_EXPIRES_MAX) {
                cas_reply_error(req, 400, "request.proposal",
                                "the proposal is not {\"kind\": \"put\", \"document\": TEXT} or "
                                "{\"kind\": \"delete\"}, with an optional \"expires\" of 1 to "
                                "2592000 seconds",
                                NULL);
                return;
        }
        cas_change_init(&c, CAS_CHANGE_DELETE);
        memset(&d, 0, sizeof(d));
        cf_buf_init(&b64, 2 * PROPOSAL_BODY_MAX, true);
        snprintf(c.name, sizeof(c.name), "%s", name);
        if (doc != NULL) {
                struct policy_errors errs;
                memset(&errs, 0, sizeof(errs));
                s = cf_buf_append(&c.record.document, doc, strlen(doc));
                if (cf_ok(s)) {
                        s = policy_parse(cf_buf_slice(&c.record.document), &c.doc, &errs);
                }
                if (!cf_ok(s)) {
                        json_t *list = NULL;
                        if (!cf_ok(policy_errors_to_json(&errs, &list))) {
                                list = json_array();
                        }
                        cas_reply_error(req, 422, "policy.invalid",
                                        "the proposed policy document is invalid",
                                        json_pack("{s:o}", "errors", list));
                        goto out;
                }
                if (strcmp(c.doc->name, name) != 0) {
                        cas_reply_error(
                            req, 400, "policy.name",
                            "the document's 'name' differs from the policy in the "
                            "path",
                            json_pack("{s:s, s:s}", "expected", name, "actual", c.doc->name));
                        goto out;
                }
                c.kind = c.doc->has_predecessor ? CAS_CHANGE_UPDATE : CAS_CHANGE_CREATE;
                cf_ignore(policy_digest(cf_buf_slice(&c.record.document), c.digest));
        }
        s = cas_change_decide(w, &c, caller, NULL, 0, NULL, 0, &d);
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "policy store");
                goto out;
        }
        if (d.verdict == CAS_REFUSED) {
                json_t *details = d.details;
                d.details = NULL;
                cas_reply_error(req, d.status, d.code, d.message, details);
                goto out;
        }
        s = cf_base64_encode_buf(c.record.document.ptr, c.record.document.size, &b64);
        if (cf_ok(s)) {
                s = proposal_key(name, c.digest, p.key);
        }
        p.rec = cf_ok(s)
                    ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:[], s:[]}", "kind",
                                kind, "policy", name, "digest", c.digest, "base", c.base,
                                "proposer", caller, "created", (json_int_t)now, "expires",
                                (json_int_t)(now + expires), "state", "pending", "document",
                                b64.size ? (const char *)b64.ptr : "", "approvals", "votes")
                    : NULL;
        if (p.rec == NULL) {
                cas_reply_status(req, cf_ok(s) ? cf_fail(CF_E_NOMEM) : s, "proposal");
                goto out;
        }
        /* An expired proposal of the same digest gives way to the new one. */
        {
                struct proposal old = {.version = 0};
                if (cf_ok(proposal_load(w, p.key, &old))) {
                        if (!prune_if_expired(w, &old, now)) {
                                cas_reply_error(req, 409, "proposal.exists",
                                                "this change is proposed already",
                                                json_pack("{s:s, s:s}", "digest", c.digest, "state",
                                                          pget(&old, "state")));
                                proposal_done(&old);
                                goto out;
                        }
                        proposal_done(&old);
                }
        }
        audit(w, "policy.proposed", caller, &p, NULL);
        if (d.verdict == CAS_ALLOWED) {
                /* Nothing to wait for (e.g. the proposer alone may make this change). */
                apply(w, req, &p, &c, 201);
                goto out;
        }
        s = proposal_save(w, &p);
        if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                cas_reply_error(req, 409, "proposal.exists", "this change is proposed already",
                                json_pack("{s:s}", "digest", c.digest));
        } else if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal store");
        } else {
                cf_log_info("proposal name=%s digest=%.16s by=%.16s", name, c.digest, caller);
                cas_reply_json(req, 201, proposal_summary(&p, &d));
        }
out:
        cf_buf_done(&b64);
        proposal_done(&p);
        cas_decision_done(&d);
        cas_change_done(&c);
}

struct list_ctx {
        char keys[PROPOSAL_LIST_MAX][PROPOSAL_KEY_MAX];
        size_t n;
};

static cf_status collect(void *ctx, const char *key, uint64_t latest)
{
        struct list_ctx *l = ctx;

        (void)latest;
        ENSURE(l->n < PROPOSAL_LIST_MAX, CF_E_LIMIT);
        ENSURE(strlen(key) < PROPOSAL_KEY_MAX, CF_E_LIMIT);
        snprintf(l->keys[l->n++], PROPOSAL_KEY_MAX, "%s", key);
        return CF_OK;
}

static void list(struct cas_worker *w, struct evhttp_request *req, const char *name)
{
        char caller[CF_KEY_ID_HEX], prefix[PROPOSAL_KEY_MAX];
        struct list_ctx *l;
        json_t *out;
        int64_t now = (int64_t)time(NULL);
        cf_status s;

        if (!cas_require_caller(req, caller)) {
                return;
        }
        l = calloc(1, sizeof(*l));
        out = json_array();
        if (l == NULL || out == NULL) {
                free(l);
                json_decref(out);
                cas_reply_status(req, cf_fail(CF_E_NOMEM), "proposals");
                return;
        }
        snprintf(prefix, sizeof(prefix), "%s:", name);
        s = store_list(w->store, PROPOSAL_TABLE, prefix, collect, l);
        for (size_t i = 0; cf_ok(s) && i < l->n; i++) {
                struct proposal p = {.version = 0};
                struct cas_change c;
                struct cas_decision d;
                struct votes v = {.n = 0};
                bool conflict = false;
                s = proposal_load(w, l->keys[i], &p);
                if (!cf_ok(s) || prune_if_expired(w, &p, now)) {
                        proposal_done(&p);
                        continue;
                }
                memset(&d, 0, sizeof(d));
                cas_change_init(&c, CAS_CHANGE_DELETE);
                /* Progress is shown for pending proposals only. */
                if (strcmp(pget(&p, "state"), "pending") != 0 ||
                    !cf_ok(proposal_decide(w, &p, name, &c, &v, &d, &conflict))) {
                        cas_decision_done(&d);
                }
                cas_change_done(&c);
                json_array_append_new(out, proposal_summary(&p, &d));
                if (conflict) {
                        json_object_set_new(json_array_get(out, json_array_size(out) - 1),
                                            "conflict", json_true());
                }
                votes_done(&v);
                cas_decision_done(&d);
                proposal_done(&p);
        }
        free(l);
        if (!cf_ok(s)) {
                json_decref(out);
                cas_reply_status(req, s, "proposals");
                return;
        }
        cas_reply_json(req, 200, json_pack("{s:s, s:o}", "policy", name, "proposals", out));
}

static void show(struct cas_worker *w, struct evhttp_request *req, const char *name,
                 const char *digest)
{
        char caller[CF_KEY_ID_HEX];
        struct proposal p = {.version = 0};
        struct cas_change c;
        struct cas_decision d;
        struct votes v = {.n = 0};
        bool conflict = false, viewer;
        json_t *out;
        cf_status s;

        if (!cas_require_caller(req, caller) || !load_live(w, req, name, digest, &p)) {
                return;
        }
        memset(&d, 0, sizeof(d));
        cas_change_init(&c, CAS_CHANGE_DELETE);
        s = proposal_decide(w, &p, name, &c, &v, &d, &conflict);
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal");
                goto out;
        }
        /* The document may hold explicit secret values: only its proposer and the people who
         * may approve it (or read the current version) see it. */
        viewer = strcmp(caller, pget(&p, "proposer")) == 0 || json_has(d.approvers, caller) ||
                 board_member(c.current, caller) ||
                 (c.current != NULL && (policy_key_may_read(c.current, caller) ||
                                        policy_key_may_update(c.current, caller)));
        if (!viewer) {
                cas_reply_error(req, 403, "proposal.access",
                                "only the proposer, the people who may approve it and the "
                                "policy's readers may read a proposal",
                                json_pack("{s:s}", "key_id", caller));
                goto out;
        }
        out = proposal_summary(&p, strcmp(pget(&p, "state"), "pending") == 0 ? &d : NULL);
        if (out != NULL && c.kind != CAS_CHANGE_DELETE) {
                json_object_set_new(
                    out, "document",
                    json_stringn((const char *)c.record.document.ptr, c.record.document.size));
        }
        if (out != NULL && conflict) {
                json_object_set_new(out, "conflict", json_true());
        }
        cas_reply_json_secret(req, 200, out);
out:
        votes_done(&v);
        cas_decision_done(&d);
        cas_change_done(&c);
        proposal_done(&p);
}

/* Verifies an attested program's evidence against its own service's rules. */
static bool service_admitted(struct cas_worker *w, struct evhttp_request *req, const char *svc,
                             json_t *evidence)
{
        char pol[256], esc[300];
        const char *slash = strrchr(svc, '/');
        const struct policy *p = NULL;
        const struct policy_service *s = NULL;
        enum attest_platform platform;
        struct attest_result res;
        struct cf_buf bytes;
        uint64_t version;
        json_t *failed = NULL;
        cf_status st;
        bool ok = false;

        if (slash == NULL || (size_t)(slash - svc) >= sizeof(pol)) {
                cas_reply_error(req, 400, "request.approval", "a service is POLICY/SERVICE", NULL);
                return false;
        }
        snprintf(pol, sizeof(pol), "%.*s", (int)(slash - svc), svc);
        if (!cf_ok(cas_policy_current(w, pol, &p, &version)) ||
            (s = policy_find_service(p, slash + 1)) == NULL) {
                cas_reply_error(req, 403, "proposal.evidence",
                                "the approving service does not exist (its policy is not stored "
                                "or has no such service)",
                                json_pack("{s:s}", "service",
                                          cf_log_escape(svc, strlen(svc), esc, sizeof(esc))));
                return false;
        }
        cf_buf_init(&bytes, EVIDENCE_MAX, false);
        st = cas_evidence_decode(evidence, &platform, &bytes);
        if (!cf_ok(st)) {
                cf_buf_done(&bytes);
                cas_reply_error(req, 400, "request.evidence",
                                "evidence is {\"type\": PLATFORM, \"data\": BASE64}", NULL);
                return false;
        }
        if (!cf_ok(attest_result_init(&res))) {
                cf_buf_done(&bytes);
                cas_reply_status(req, cf_fail(CF_E_NOMEM), "evidence");
                return false;
        }
        ok = cas_evidence_admits(w, req, s, platform, cf_buf_slice(&bytes), (int64_t)time(NULL),
                                 &res, &st);
        cf_buf_done(&bytes);
        if (!ok) {
                if (!cf_ok(attest_checks_to_json(&res.checks, true, &failed))) {
                        failed = json_array();
                }
                cas_reply_error(req, 403, "proposal.evidence",
                                "the approving program's evidence does not satisfy its own "
                                "service's rules",
                                json_pack("{s:s, s:o}", "service", svc, "checks", failed));
        }
        attest_result_done(&res);
        return ok;
}

/* Checks a signed approval against the proposal; replies and returns false when it does not
 * count. *ret_veto is its verdict. */
static bool approval_ok(struct evhttp_request *req, const struct proposal *p,
                        const struct policy_approval *a, const struct cas_decision *d,
                        char kid[static CF_KEY_ID_HEX])
{
        bool deletion = strcmp(pget(p, "kind"), "delete") == 0;
        struct cf_buf stmt;
        bool ok;

        if (strcmp(a->policy, pget(p, "policy")) != 0 ||
            strcmp(a->digest, pget(p, "digest")) != 0 ||
            strcmp(a->predecessor, pget(p, "base")) != 0) {
                cas_reply_error(req, 403, "proposal.approval",
                                "the approval is for another policy, digest or predecessor",
                                json_pack("{s:s, s:s, s:s*}", "policy", pget(p, "policy"), "digest",
                                          pget(p, "digest"), "predecessor",
                                          pget(p, "base")[0] ? pget(p, "base") : NULL));
                return false;
        }
        if (a->verdict != POLICY_VERDICT_VETO &&
            (a->verdict == POLICY_VERDICT_DELETE) != deletion) {
                cas_reply_error(req, 403, "proposal.approval",
                                deletion ? "a deletion is approved with the verdict 'delete'"
                                         : "a version is approved with the verdict 'approve'",
                                NULL);
                return false;
        }
        cf_buf_init(&stmt, 1024, false);
        ok = cf_ok(policy_approval_statement_verdict(a->policy, a->digest, a->predecessor,
                                                     a->verdict, &stmt)) &&
             cf_ok(cf_verify(a->key, cf_buf_slice(&stmt), cf_slice_make(a->sig, a->sig_size))) &&
             cf_ok(cf_pkey_key_id(a->key, kid));
        cf_buf_done(&stmt);
        if (!ok) {
                cas_reply_error(req, 403, "proposal.approval", "the signature does not verify",
                                NULL);
                return false;
        }
        if (!json_has(d->approvers, kid)) {
                cas_reply_error(req, 403, "proposal.not_member",
                                "the signer is not a member of a board (or a key of a list) "
                                "that governs this change",
                                json_pack("{s:s}", "key_id", kid));
                return false;
        }
        return true;
}

static void approve(struct cas_worker *w, struct evhttp_request *req, const char *name,
                    const char *digest)
{
        CF_CLEANUP(json_decrefp) json_t *body = NULL;
        CF_CLEANUP(policy_approval_freep) struct policy_approval *a = NULL;
        struct proposal p = {.version = 0};
        struct cas_change c;
        struct cas_decision d;
        struct votes v = {.n = 0};
        char kid[CF_KEY_ID_HEX] = "";
        const char *svc = NULL, *verdict = "approve";
        json_t *evidence = NULL;
        bool conflict = false, veto;
        cf_status s;

        if ((body = read_json(req, APPROVAL_BODY_MAX)) == NULL ||
            !load_live(w, req, name, digest, &p)) {
                return;
        }
        cas_change_init(&c, CAS_CHANGE_DELETE);
        memset(&d, 0, sizeof(d));
        if (strcmp(pget(&p, "state"), "pending") != 0) {
                cas_reply_error(req, 409, "proposal.closed", "the proposal is closed",
                                json_pack("{s:s}", "state", pget(&p, "state")));
                goto out;
        }
        if (json_object_get(body, "service") != NULL) {
                if (json_unpack(body, "{s:s, s:o, s?s !}", "service", &svc, "evidence", &evidence,
                                "verdict", &verdict) != 0 ||
                    (strcmp(verdict, "approve") != 0 && strcmp(verdict, "veto") != 0)) {
                        cas_reply_error(req, 400, "request.approval",
                                        "an attested approval is {\"service\": POLICY/SERVICE, "
                                        "\"evidence\": {...}, \"verdict\": \"approve\"|\"veto\"}",
                                        NULL);
                        goto out;
                }
        } else {
                char *text = json_dumps(body, JSON_COMPACT);
                s = text ? policy_approval_parse(cf_slice_str(text), &a) : cf_fail(CF_E_NOMEM);
                free(text);
                if (!cf_ok(s)) {
                        cas_reply_error(req, 400, "request.approval",
                                        "the approval does not parse (docs/formats/approval.md)",
                                        json_pack("{s:s}", "reason", cf_strerror(s)));
                        goto out;
                }
        }
        s = proposal_decide(w, &p, name, &c, &v, &d, &conflict);
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal");
                goto out;
        }
        if (conflict) {
                set_state(&p, "conflict");
                cf_ignore(proposal_save(w, &p));
                audit(w, "proposal.conflict", "cofferd", &p, NULL);
                cas_reply_error(
                    req, 409, "proposal.conflict",
                    "the policy changed since this proposal was made (its predecessor "
                    "is no longer the current version); the proposal is closed",
                    json_pack("{s:s, s:s}", "predecessor", pget(&p, "base"), "current", c.base));
                goto out;
        }
        if (svc != NULL) {
                if (!json_has(d.services, svc)) {
                        cas_reply_error(req, 403, "proposal.not_member",
                                        "the service is not a member of a board that governs "
                                        "this change",
                                        json_pack("{s:s}", "service", svc));
                        goto out;
                }
                if (!service_admitted(w, req, svc, evidence)) {
                        goto out;
                }
                veto = strcmp(verdict, "veto") == 0;
        } else {
                if (!approval_ok(req, &p, a, &d, kid)) {
                        goto out;
                }
                veto = a->verdict == POLICY_VERDICT_VETO;
        }
        if (json_array_size(json_object_get(p.rec, "approvals")) +
                json_array_size(json_object_get(p.rec, "votes")) >=
            POLICY_APPROVALS_MAX) {
                cas_reply_error(req, 409, "proposal.full", "the proposal holds 64 approvals", NULL);
                goto out;
        }
        if (svc != NULL) {
                json_array_append_new(json_object_get(p.rec, "votes"),
                                      json_pack("{s:s, s:b}", "service", svc, "veto", veto));
        } else {
                json_array_append(json_object_get(p.rec, "approvals"), body);
        }
        /* Decide again with the new approval. */
        votes_done(&v);
        cas_decision_done(&d);
        cas_change_done(&c);
        cas_change_init(&c, CAS_CHANGE_DELETE);
        s = proposal_decide(w, &p, name, &c, &v, &d, &conflict);
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal");
                goto out;
        }
        if (d.verdict == CAS_ALLOWED && !conflict) {
                audit(w, "policy.approved", svc ? "workload" : kid, &p, svc ? svc : kid);
                apply(w, req, &p, &c, 200);
                goto out;
        }
        if (d.verdict == CAS_VETOED) {
                set_state(&p, "rejected");
        }
        s = proposal_save(w, &p);
        if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                cas_reply_error(req, 409, "proposal.concurrent",
                                "another approval was recorded at the same time; send yours "
                                "again",
                                NULL);
        } else if (!cf_ok(s)) {
                cas_reply_status(req, s, "proposal store");
        } else {
                audit(w, veto ? "policy.vetoed" : "policy.approved", svc ? "workload" : kid, &p,
                      svc ? svc : kid);
                if (d.verdict == CAS_VETOED) {
                        audit(w, "proposal.rejected", "cofferd", &p, NULL);
                }
                cas_reply_json(req, 200, proposal_summary(&p, &d));
        }
out:
        votes_done(&v);
        cas_decision_done(&d);
        cas_change_done(&c);
        proposal_done(&p);
}

void cas_api_proposals(struct cas_worker *w, struct evhttp_request *req, const char *name,
                       const char *rest)
{
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char digest[80];
        const char *slash;

        if (!policy_name_valid(name)) {
                cas_reply_error(req, 400, "request.path", "bad policy name in the path", NULL);
                return;
        }
        if (rest[0] == '\0') {
                if (m == EVHTTP_REQ_POST) {
                        propose(w, req, name);
                } else if (m == EVHTTP_REQ_GET) {
                        list(w, req, name);
                } else {
                        cas_reply_error(req, 405, "method", "use GET or POST", NULL);
                }
                return;
        }
        slash = strchr(rest + 1, '/');
        if (slash == NULL) {
                snprintf(digest, sizeof(digest), "%s", rest + 1);
        } else if ((size_t)(slash - rest - 1) < sizeof(digest) &&
                   strcmp(slash, "/approvals") == 0) {
                snprintf(digest, sizeof(digest), "%.*s", (int)(slash - rest - 1), rest + 1);
        } else {
                cas_reply_error(req, 404, "not_found", "no such endpoint", NULL);
                return;
        }
        if (slash == NULL && m == EVHTTP_REQ_GET) {
                show(w, req, name, digest);
        } else if (slash != NULL && m == EVHTTP_REQ_POST) {
                approve(w, req, name, digest);
        } else {
                cas_reply_error(req, 405, "method", "method not allowed here", NULL);
        }
}
