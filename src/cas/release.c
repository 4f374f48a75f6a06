/* POST /v1/policies/NAME/secrets/SECRET/release: a secret given to a person.
 *
 * Secrets are made for workloads; a person sees one only when the policy's governors agree:
 * the board's rule over approvals of the release digest (policy_release_digest: this version,
 * this secret, this recipient), or, for a policy without a board, the recipient being one of
 * its update keys. Explicit values are never released (the person who supplied one has it),
 * nor imported ones (the exporter governs those). Every release is audited.
 *
 * Request:  {"encoding": ENC (optional), "approvals": [APPROVAL...] (optional)}
 * Released: 200 {"policy", "secret", "version", "predecessor", "recipient", "encoding",
 *                "value": BASE64}
 * Refused:  403 secret.release (checks), 404, 409 (the policy changed meanwhile). */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "policy/policy.h"

#define RELEASE_BODY_MAX  (1u << 20)
#define RELEASE_VALUE_MAX (1u << 20)
#define ENCODING_MAX      32

struct release {
        struct cas_worker *w;
        struct evhttp_request *req;
        const char *name;
        const char *secret;
        char recipient[CF_KEY_ID_HEX];
        char encoding[ENCODING_MAX + 1];
        struct policy_approval *approvals[POLICY_APPROVALS_MAX];
        size_t n_approvals;
};

static void release_done(struct release *r)
{
        for (size_t i = 0; i < r->n_approvals; i++) {
                policy_approval_free(r->approvals[i]);
        }
        r->n_approvals = 0;
}

static bool encoding_ok(const char *s)
{
        size_t n = strlen(s);

        return n > 0 && n <= ENCODING_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789:") == n;
}

/* Reads the optional body; replies and returns false on failure. */
static bool read_body(struct release *r)
{
        struct cf_buf body;
        json_error_t jerr;
        json_t *j = NULL, *list = NULL, *item;
        const char *enc = NULL;
        size_t i;
        cf_status s;

        cf_buf_init(&body, RELEASE_BODY_MAX, false);
        s = cas_request_body(r->req, RELEASE_BODY_MAX, &body);
        if (!cf_ok(s)) {
                cf_buf_done(&body);
                cas_reply_error(r->req, 413, "request.too_large",
                                "a release request is at most 1 MiB", NULL);
                return false;
        }
        if (body.size == 0) {
                cf_buf_done(&body);
                return true; /* no body: no approvals, the default encoding */
        }
        j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&body);
        if (j == NULL) {
                cas_reply_error(r->req, 400, "request.json", "the body is not valid JSON", NULL);
                return false;
        }
        if (json_unpack(j, "{s?s, s?o !}", "encoding", &enc, "approvals", &list) != 0 ||
            (list != NULL && (!json_is_array(list) ||
                              json_array_size(list) > POLICY_APPROVALS_MAX)) ||
            (enc != NULL && !encoding_ok(enc))) {
                json_decref(j);
                cas_reply_error(r->req, 400, "request.schema",
                                "expected {\"encoding\": ENCODING, \"approvals\": [APPROVAL...]} "
                                "(at most 64 approvals)",
                                NULL);
                return false;
        }
        if (enc != NULL) {
                snprintf(r->encoding, sizeof(r->encoding), "%s", enc);
        }
        json_array_foreach(list, i, item)
        {
                char *text = json_dumps(item, JSON_COMPACT);
                s = text ? policy_approval_parse(cf_slice_str(text), &r->approvals[r->n_approvals])
                         : cf_fail(CF_E_SCHEMA);
                free(text);
                if (!cf_ok(s)) {
                        char msg[128];
                        snprintf(msg, sizeof(msg),
                                 "approvals[%zu] does not parse: %s (docs/formats/approval.md)", i,
                                 cf_strerror(s));
                        json_decref(j);
                        cas_reply_error(r->req, 400, "request.approval", msg, NULL);
                        return false;
                }
                r->n_approvals++;
        }
        json_decref(j);
        return true;
}

/* Whether the governors allow it: the board's rule, or the recipient's update key. */
static bool allowed(struct release *r, const struct policy *p, const char *pred,
                    const char *digest, struct attest_checks *checks)
{
        bool ok;

        if (p->board == NULL) {
                ok = policy_key_may_update(p, r->recipient);
                cf_ignore(attest_checks_add(checks, "access.update", ok,
                                            "the recipient's key in access.update",
                                            ok ? "listed" : "not listed"));
                return ok;
        }
        return policy_board_decide(p->board, r->name, digest, pred, false, r->approvals,
                                   r->n_approvals, NULL, 0, checks, NULL);
}

static void refuse(struct release *r, int status, const char *code, const char *msg,
                   const struct attest_checks *checks)
{
        json_t *list = NULL;

        if (checks != NULL && !cf_ok(attest_checks_to_json(checks, false, &list))) {
                list = NULL;
        }
        cf_log_info("secret release refused policy=%s secret=%s recipient=%.16s: %s", r->name,
                    r->secret, r->recipient, msg);
        cas_reply_error(r->req, status, code, msg, list ? json_pack("{s:o}", "checks", list) : NULL);
}

static void release(struct release *r)
{
        struct cas_policy_record rec;
        const struct policy *p = NULL;
        const struct policy_secret *sec;
        struct attest_checks checks;
        char pred[CF_KEY_ID_HEX], digest[CF_KEY_ID_HEX], ref[POLICY_SECRET_NAME_MAX + ENCODING_MAX + 2];
        uint64_t version = 0;
        struct cf_buf value, b64;
        json_t *reply;
        cf_status s;

        cas_policy_record_init(&rec);
        s = cas_policy_load(r->w, r->name, 0, &rec);
        if (cf_ok(s) && rec.deleted) {
                s = cf_fail(CF_E_NOT_FOUND);
        }
        if (cf_ok(s)) {
                s = policy_digest(cf_buf_slice(&rec.document), pred);
        }
        if (cf_ok(s)) {
                s = cas_policy_current(r->w, r->name, &p, &version);
        }
        if (!cf_ok(s) || version != rec.version) {
                cas_policy_record_done(&rec);
                if (cf_ok(s)) {
                        cas_reply_error(r->req, 409, "policy.conflict",
                                        "the policy changed while the release was decided; retry",
                                        NULL);
                } else {
                        cas_reply_status(r->req, s, "policy");
                }
                return;
        }
        cas_policy_record_done(&rec);
        sec = policy_find_secret(p, r->secret);
        if (sec == NULL) {
                cas_reply_error(r->req, 404, "not_found", "the policy has no such secret", NULL);
                return;
        }
        if (sec->kind == POLICY_SECRET_IMPORT) {
                refuse(r, 403, "secret.imported",
                       "an imported secret is released by its exporter's policy, not here", NULL);
                return;
        }
        if (sec->has_value) {
                refuse(r, 403, "secret.explicit",
                       "explicit values are never released: the person who supplied it has it",
                       NULL);
                return;
        }
        if (!cf_ok(policy_release_digest(pred, r->secret, r->recipient, digest))) {
                cas_reply_error(r->req, 500, "internal", "cannot compute the release digest", NULL);
                return;
        }
        attest_checks_init(&checks);
        if (!allowed(r, p, pred, digest, &checks)) {
                char msg[300];
                snprintf(msg, sizeof(msg),
                         "the release of '%s' to key id %.16s... is not approved: %s", r->secret,
                         r->recipient,
                         p->board ? "the board's rule is not met by approvals of the release "
                                    "digest (coffer secret approve)"
                                  : "your key is not in the policy's 'access.update'");
                refuse(r, 403, "secret.release", msg, &checks);
                attest_checks_done(&checks);
                return;
        }
        snprintf(ref, sizeof(ref), "%s%s%s", r->secret, r->encoding[0] ? ":" : "", r->encoding);
        cf_buf_init(&value, RELEASE_VALUE_MAX, true);
        cf_buf_init(&b64, 2 * RELEASE_VALUE_MAX, true);
        s = cas_secret_value(r->w, p, ref, &value);
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(value.ptr, value.size, &b64);
        }
        cf_buf_done(&value);
        if (!cf_ok(s)) {
                cf_buf_done(&b64);
                attest_checks_done(&checks);
                if (s.code == CF_E_NOT_FOUND || s.code == CF_E_SCHEMA ||
                    s.code == CF_E_MALFORMED || s.code == CF_E_INVALID_ARG ||
                    s.code == CF_E_UNSUPPORTED) {
                        cas_reply_error(r->req, 400, "request.encoding",
                                        "that encoding does not fit the secret's kind "
                                        "(docs/policy.md, Placeholders)",
                                        NULL);
                } else {
                        cas_reply_status(r->req, s, "secret");
                }
                return;
        }
        reply = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s%}", "policy", r->name, "secret",
                          r->secret, "version", (json_int_t)version, "predecessor", pred,
                          "recipient", r->recipient, "encoding",
                          r->encoding[0] ? r->encoding : "default", "value", (const char *)b64.ptr,
                          b64.size);
        cf_buf_done(&b64);
        {
                json_t *by = json_array();
                for (size_t i = 0; by != NULL && i < checks.n; i++) {
                        if (checks.items[i].ok) {
                                json_array_append_new(by, json_string(checks.items[i].name));
                        }
                }
                /* No entry, no secret: a release must never go unrecorded. */
                s = cas_audit_append(r->w, "secret.released", r->recipient,
                                     json_pack("{s:s, s:s, s:I, s:s, s:o*}", "policy", r->name,
                                               "secret", r->secret, "version",
                                               (json_int_t)version, "recipient", r->recipient,
                                               "passed_checks", by));
        }
        attest_checks_done(&checks);
        if (!cf_ok(s)) {
                json_decref(reply);
                cas_reply_error(r->req, 500, "audit.unavailable",
                                "the release cannot be recorded in the audit chain: refused",
                                NULL);
                return;
        }
        cf_log_info("secret released policy=%s version=%llu secret=%s recipient=%.16s", r->name,
                    (unsigned long long)version, r->secret, r->recipient);
        if (reply == NULL) {
                cas_reply_error(r->req, 500, "internal", "out of memory", NULL);
                return;
        }
        cas_reply_json_secret(r->req, 200, reply);
}

void cas_api_release(struct cas_worker *w, struct evhttp_request *req, const char *name,
                     const char *rest)
{
        struct release r = { .w = w, .req = req, .name = name };
        char secret[POLICY_SECRET_NAME_MAX + 1];
        const char *end = strchr(rest, '/');

        if (end == NULL || strcmp(end, "/release") != 0 || end == rest ||
            (size_t)(end - rest) > POLICY_SECRET_NAME_MAX) {
                cas_reply_error(req, 404, "not_found",
                                "no such endpoint (POST /v1/policies/NAME/secrets/SECRET/release)",
                                NULL);
                return;
        }
        if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
                cas_reply_error(req, 405, "method", "use POST to release a secret", NULL);
                return;
        }
        snprintf(secret, sizeof(secret), "%.*s", (int)(end - rest), rest);
        r.secret = secret;
        if (!cas_request_key_id(req, r.recipient)) {
                cas_reply_error(req, 401, "auth.required",
                                "a release needs your client certificate: the secret is released "
                                "to that key",
                                NULL);
                return;
        }
        if (read_body(&r)) {
                release(&r);
        }
        release_done(&r);
}
