/* coffer policy propose | proposals | approve --online: online proposals (docs/api.md,
 * "Proposals"). A proposal waits in cofferd until the approvals its governors need were sent,
 * then applies; approvals are the signed statements of docs/formats/approval.md, or the
 * attested verdict of a program member. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "client/approval_evidence.h"
#include "policy/policy.h"

#define EXPIRES_DEFAULT (24u * 3600u)
#define EXPIRES_MAX     (30u * 24u * 3600u)
#define PROPOSAL_MAX    (3u << 20)

/* "90", "90s", "30m", "24h", "7d" -> seconds, 1 .. 30 days. */
static bool parse_duration(const char *text, uint64_t *ret)
{
        char digits[32];
        size_t n = text != NULL ? strlen(text) : 0;
        uint64_t unit = 1, v = 0;

        if (n == 0 || n >= sizeof(digits)) {
                return false;
        }
        snprintf(digits, sizeof(digits), "%s", text);
        switch (digits[n - 1]) {
        case 's':
                digits[--n] = '\0';
                break;
        case 'm':
                unit = 60;
                digits[--n] = '\0';
                break;
        case 'h':
                unit = 3600;
                digits[--n] = '\0';
                break;
        case 'd':
                unit = 86400;
                digits[--n] = '\0';
                break;
        default:
                break;
        }
        if (!cf_ok(cf_parse_u64(digits, 1, EXPIRES_MAX, &v)) || v * unit > EXPIRES_MAX) {
                return false;
        }
        *ret = v * unit;
        return true;
}

/* Sends one request with a JSON body (or none) and returns the parsed reply of a 2xx status;
 * prints the failure and returns NULL otherwise. */
static json_t *exchange(struct cf_client *c, const char *method, const char *path, const char *body)
{
        struct cf_http_response resp;
        json_t *j = NULL;

        cf_http_response_init(&resp);
        if (!cli_request(c, method, path, body ? "application/json" : NULL,
                         body ? cf_slice_str(body) : cf_slice_make(NULL, 0), &resp)) {
                j = NULL;
        } else if (resp.status < 200 || resp.status > 299) {
                cli_print_failure(&resp);
        } else if ((j = cf_http_response_json(&resp)) == NULL) {
                cli_error("cofferd sent a reply that is not JSON");
        }
        cf_http_response_done(&resp);
        return j;
}

static void print_governors(json_t *govs)
{
        json_t *g, *m;
        size_t i, k;

        json_array_foreach(govs, i, g)
        {
                printf("  %-9s %-30s approved by: ", json_string_value(json_object_get(g, "role")),
                       json_string_value(json_object_get(g, "policy")));
                json_array_foreach(json_object_get(g, "approved_by"), k, m)
                {
                        printf("%s%s", k ? ", " : "", json_string_value(m));
                }
                if (json_array_size(json_object_get(g, "approved_by")) == 0) {
                        printf("nobody");
                }
                printf("; needs: %s\n", json_string_value(json_object_get(g, "needs")));
        }
}

/* Prints the state of a proposal after a request that changed it. */
static int print_outcome(const struct cli *cli, json_t *j)
{
        const char *state = json_string_value(json_object_get(j, "state"));

        if (cli->json) {
                cli_print_json(j);
                return 0;
        }
        printf("%s proposal %s %s\n", json_string_value(json_object_get(j, "policy")),
               json_string_value(json_object_get(j, "digest")), state ? state : "?");
        if (state != NULL && strcmp(state, "applied") == 0) {
                json_t *v = json_object_get(j, "version");
                printf("%s version %lld digest %s%s\n",
                       json_string_value(json_object_get(v, "name")),
                       (long long)json_integer_value(json_object_get(v, "version")),
                       json_string_value(json_object_get(v, "digest")),
                       json_is_true(json_object_get(v, "deleted")) ? " (deleted)" : "");
        } else {
                print_governors(json_object_get(j, "governors"));
        }
        json_decref(j);
        return 0;
}

static int proposals_path(const char *name, const char *suffix, char *out, size_t out_size)
{
        char enc[600];

        if (!policy_name_valid(name) || !cf_ok(cf_client_encode_name(name, enc, sizeof(enc)))) {
                return cli_usage("'%s' is not a policy name", name);
        }
        snprintf(out, out_size, "/v1/policies/%s/proposals%s", enc, suffix);
        return 0;
}

int cmd_propose(struct cli *cli)
{
        uint64_t expires = EXPIRES_DEFAULT;
        char path[800], name[POLICY_NAME_MAX + 1];
        struct cf_buf doc;
        struct cf_client *c;
        json_t *body, *j;
        char *text;
        int status;

        if (cli->argc != 3) {
                return cli_usage("usage: coffer policy propose FILE [--expires DURATION] | "
                                 "propose --delete NAME [--expires DURATION]");
        }
        if (cli->expires != NULL && !parse_duration(cli->expires, &expires)) {
                return cli_usage("--expires: a duration of 1s to 30d (e.g. 90s, 30m, 24h, 7d)");
        }
        cf_buf_init(&doc, POLICY_DOC_MAX, true);
        if (cli->deletion) {
                snprintf(name, sizeof(name), "%s", cli->argv[2]);
                body = json_pack("{s:s, s:I}", "kind", "delete", "expires", (json_int_t)expires);
        } else {
                struct policy_errors errs;
                struct policy *p = NULL;
                memset(&errs, 0, sizeof(errs));
                if (!cf_ok(cf_read_file(cli->argv[2], POLICY_DOC_MAX, &doc))) {
                        cf_buf_done(&doc);
                        return cli_error("cannot read '%s' (at most 1 MiB)", cli->argv[2]);
                }
                if (!cf_ok(policy_parse(cf_buf_slice(&doc), &p, &errs))) {
                        fprintf(stderr, "coffer: %s: the policy is invalid (%zu error%s):\n",
                                cli->argv[2], errs.n, errs.n == 1 ? "" : "s");
                        for (size_t i = 0; i < errs.n; i++) {
                                fprintf(stderr, "  %s: %s\n", errs.items[i].location,
                                        errs.items[i].message);
                        }
                        cf_buf_done(&doc);
                        return CLI_EXIT_FAIL;
                }
                snprintf(name, sizeof(name), "%s", p->name);
                policy_free(p);
                body = json_pack("{s:s, s:s%, s:I}", "kind", "put", "document",
                                 (const char *)doc.ptr, doc.size, "expires", (json_int_t)expires);
        }
        cf_buf_done(&doc);
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (text == NULL) {
                return cli_error("the policy document is not UTF-8 text");
        }
        if ((status = proposals_path(name, "", path, sizeof(path))) != 0) {
                cf_wipe_free(text, strlen(text));
                return status;
        }
        c = cli_connect(cli, true, true);
        j = c ? exchange(c, "POST", path, text) : NULL;
        cf_wipe_free(text, strlen(text));
        cf_client_free(c);
        return j ? print_outcome(cli, j) : CLI_EXIT_FAIL;
}

int cmd_proposals(struct cli *cli)
{
        char path[800];
        struct cf_client *c;
        json_t *j, *p;
        size_t i;
        int status;

        if (cli->argc != 3) {
                return cli_usage("usage: coffer policy proposals NAME [--json]");
        }
        if ((status = proposals_path(cli->argv[2], "", path, sizeof(path))) != 0) {
                return status;
        }
        c = cli_connect(cli, true, true);
        j = c ? exchange(c, "GET", path, NULL) : NULL;
        cf_client_free(c);
        if (j == NULL) {
                return CLI_EXIT_FAIL;
        }
        if (cli->json) {
                cli_print_json(j);
                return 0;
        }
        json_array_foreach(json_object_get(j, "proposals"), i, p)
        {
                json_t *a;
                size_t k;
                printf("%s %s %s\n  predecessor %s\n  proposer %s, created %s, expires %s\n",
                       json_string_value(json_object_get(p, "digest")),
                       json_string_value(json_object_get(p, "kind")),
                       json_string_value(json_object_get(p, "state")),
                       json_is_string(json_object_get(p, "predecessor"))
                           ? json_string_value(json_object_get(p, "predecessor"))
                           : "null",
                       json_string_value(json_object_get(p, "proposer")),
                       json_string_value(json_object_get(p, "created")),
                       json_string_value(json_object_get(p, "expires")));
                json_array_foreach(json_object_get(p, "approvals"), k, a)
                {
                        const char *who = json_string_value(json_object_get(a, "key_id"));
                        printf("  %s by %s\n", json_string_value(json_object_get(a, "verdict")),
                               who ? who : json_string_value(json_object_get(a, "service")));
                }
                print_governors(json_object_get(p, "governors"));
        }
        if (json_array_size(json_object_get(j, "proposals")) == 0) {
                printf("no proposals for %s\n", cli->argv[2]);
        }
        json_decref(j);
        return 0;
}

/* Checks what the proposal says it changes against its digest, so that nobody signs a
 * digest whose document they did not see; fills the predecessor ("" for null). */
static int check_proposal(const char *name, const char *digest, json_t *p, char pred[static 65],
                          bool *ret_deletion)
{
        const char *kind = json_string_value(json_object_get(p, "kind"));
        json_t *jp = json_object_get(p, "predecessor");
        char computed[65];

        snprintf(pred, 65, "%s", json_is_string(jp) ? json_string_value(jp) : "");
        if (kind != NULL && strcmp(kind, "delete") == 0) {
                if (pred[0] == '\0' || !cf_ok(policy_deletion_digest(pred, computed)) ||
                    strcmp(computed, digest) != 0) {
                        return cli_error("the proposal's digest is not the deletion of its "
                                         "predecessor");
                }
                *ret_deletion = true;
                return 0;
        }
        {
                const char *doc = json_string_value(json_object_get(p, "document"));
                struct policy_errors errs;
                struct policy *parsed = NULL;
                size_t n = doc ? json_string_length(json_object_get(p, "document")) : 0;
                bool ok;
                memset(&errs, 0, sizeof(errs));
                ok = doc != NULL && cf_ok(policy_digest(cf_slice_make(doc, n), computed)) &&
                     strcmp(computed, digest) == 0 &&
                     cf_ok(policy_parse(cf_slice_make(doc, n), &parsed, &errs)) &&
                     strcmp(parsed->name, name) == 0;
                policy_free(parsed);
                if (!ok) {
                        return cli_error("the proposal's document does not match its digest "
                                         "and name");
                }
        }
        *ret_deletion = false;
        return 0;
}

/* A signed approval of NAME DIGEST with --key or the identity key. */
static int signed_body(struct cli *cli, struct cf_client *c, const char *name, const char *digest,
                       struct cf_buf *out)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        char path[800], pred[65];
        bool deletion = false;
        json_t *p;
        cf_status s;
        int status;

        if ((status = proposals_path(name, "/", path, sizeof(path))) != 0) {
                return status;
        }
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", digest);
        if ((p = exchange(c, "GET", path, NULL)) == NULL) {
                return CLI_EXIT_FAIL;
        }
        status = check_proposal(name, digest, p, pred, &deletion);
        json_decref(p);
        if (status != 0) {
                return status;
        }
        if (cli->key != NULL) {
                struct cf_buf pem;
                cf_buf_init(&pem, 1 << 16, true);
                s = cf_read_file(cli->key, 1 << 16, &pem);
                if (cf_ok(s)) {
                        s = cf_pkey_from_pem(cf_buf_slice(&pem), true, &key);
                }
                cf_buf_done(&pem);
                if (!cf_ok(s)) {
                        return cli_error("cannot load the private key '%s': %s", cli->key,
                                         cf_strerror(s));
                }
        } else {
                struct cf_buf cert;
                cf_buf_init(&cert, 1 << 16, false);
                s = cli_identity_load(cli, &cert, &key);
                cf_buf_done(&cert);
                if (!cf_ok(s)) {
                        return cli_error("no identity in '%s' (or give --key KEY.pem)",
                                         cli->identity);
                }
        }
        s = policy_approval_sign_verdict(key, name, digest, pred[0] ? pred : NULL,
                                         cli->veto  ? POLICY_VERDICT_VETO
                                         : deletion ? POLICY_VERDICT_DELETE
                                                    : POLICY_VERDICT_APPROVE,
                                         out);
        if (!cf_ok(s)) {
                return cli_error("cannot sign the approval: %s", cf_strerror(s));
        }
        return 0;
}

int cmd_approve_online(struct cli *cli)
{
        char path[800];
        const char *name, *digest;
        struct cf_client *c;
        struct cf_buf body;
        json_t *j = NULL;
        int status;

        if (cli->argc != 4 || (cli->key != NULL && cli->as_service != NULL)) {
                return cli_usage("usage: coffer policy approve --online NAME DIGEST "
                                 "[--key KEY.pem | --as-service POLICY/SERVICE [--tee TEE]] "
                                 "[--veto]");
        }
        name = cli->argv[2];
        digest = cli->argv[3];
        if (strlen(digest) != 64 || strspn(digest, "0123456789abcdef") != 64) {
                return cli_usage("DIGEST must be 64 lower-case hex digits");
        }
        if ((status = proposals_path(name, "/", path, sizeof(path))) != 0) {
                return status;
        }
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s/approvals", digest);
        /* A program member is authenticated by its evidence, not by a person's identity. */
        c = cli_connect(cli, cli->as_service == NULL, true);
        if (c == NULL) {
                return CLI_EXIT_FAIL;
        }
        cf_buf_init(&body, POLICY_APPROVAL_MAX, false);
        if (cli->as_service != NULL) {
                uint8_t m[32] = {0};
                char err[512] = "", *text = NULL;
                cf_status s = cf_measure_file("/proc/self/exe", m);
                if (cf_ok(s)) {
                        s = cf_approval_evidence_body(cf_client_ssl(c), cli->tee, cli->tsm_root,
                                                      cli->attestation_root, m, cli->as_service,
                                                      cli->veto, &text, err, sizeof(err));
                }
                if (!cf_ok(s)) {
                        status =
                            cli_error("cannot make evidence: %s", err[0] ? err : cf_strerror(s));
                } else {
                        j = exchange(c, "POST", path, text);
                        status = j ? 0 : CLI_EXIT_FAIL;
                }
                free(text);
        } else {
                status = signed_body(cli, c, name, digest, &body);
                if (status == 0) {
                        j = exchange(c, "POST", path, (const char *)body.ptr);
                        status = j ? 0 : CLI_EXIT_FAIL;
                }
        }
        cf_buf_done(&body);
        cf_client_free(c);
        return status == 0 ? print_outcome(cli, j) : status;
}
