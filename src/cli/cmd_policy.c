/* coffer policy create|show|update|delete|history (propose, proposals and approve: see
 * cmd_proposal.c and cmd_approve.c). */
#include <stdio.h>
#include <string.h>

#include "base/io.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "policy/policy.h"

#define POLICY_FILE_MAX (1u << 20)

static const char *content_type_of(struct cf_slice doc)
{
        for (size_t i = 0; i < doc.size; i++) {
                if (doc.ptr[i] == ' ' || doc.ptr[i] == '\n' || doc.ptr[i] == '\r' ||
                    doc.ptr[i] == '\t') {
                        continue;
                }
                return doc.ptr[i] == '{' ? "application/json" : "application/yaml";
        }
        return "application/yaml";
}

/* Prints an error reply, with every validation error or failed check it carries. */
int cli_print_failure(const struct cf_http_response *r)
{
        char text[512];
        json_t *j = cf_http_response_json(r), *errs = NULL, *e;
        size_t i;

        cf_http_error_text(r, text, sizeof(text));
        fprintf(stderr, "coffer: %s\n", text);
        if (j != NULL &&
            json_unpack(j, "{s:{s:{s:o}}}", "error", "details", "errors", &errs) == 0) {
                json_array_foreach(errs, i, e)
                {
                        fprintf(stderr, "  %s: %s\n",
                                json_string_value(json_object_get(e, "location")),
                                json_string_value(json_object_get(e, "message")));
                }
        } else if (j != NULL &&
                   json_unpack(j, "{s:{s:{s:o}}}", "error", "details", "checks", &errs) == 0) {
                json_array_foreach(errs, i, e)
                {
                        if (!json_is_true(json_object_get(e, "ok"))) {
                                fprintf(stderr,
                                        "  failed check %s\n    expected: %s\n    actual:   %s\n",
                                        json_string_value(json_object_get(e, "name")),
                                        json_string_value(json_object_get(e, "expected")),
                                        json_string_value(json_object_get(e, "actual")));
                        }
                }
        } else if (j != NULL) {
                json_t *d = json_object_get(json_object_get(j, "error"), "details");
                const char *k;
                json_t *v;
                json_object_foreach(d, k, v)
                {
                        if (json_is_string(v)) {
                                fprintf(stderr, "  %s: %s\n", k, json_string_value(v));
                        }
                }
        }
        json_decref(j);
        return CLI_EXIT_FAIL;
}

/* Validates the document locally (the same loader cofferd runs), so mistakes are reported
 * with their locations before anything is sent; cofferd validates again. */
static int load_document(const char *file, struct cf_buf *doc, char *name, size_t name_size)
{
        struct policy_errors errs;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        cf_status s;

        if (!cf_ok(cf_read_file(file, POLICY_FILE_MAX, doc))) {
                return cli_error("cannot read '%s' (at most 1 MiB)", file);
        }
        memset(&errs, 0, sizeof(errs));
        s = policy_parse(cf_buf_slice(doc), &p, &errs);
        if (!cf_ok(s)) {
                fprintf(stderr, "coffer: %s: the policy is invalid (%zu error%s):\n", file, errs.n,
                        errs.n == 1 ? "" : "s");
                for (size_t i = 0; i < errs.n; i++) {
                        fprintf(stderr, "  %s: %s\n", errs.items[i].location,
                                errs.items[i].message);
                }
                return CLI_EXIT_FAIL;
        }
        snprintf(name, name_size, "%s", p->name);
        return 0;
}

/* With --approval files, the change travels as {"document": TEXT, "approvals": [...]} under
 * the content type application/vnd.coffer.change+json (docs/formats/approval.md); a deletion
 * travels as {"approvals": [...]}. */
int cli_load_approvals(const struct cli *cli, json_t *list)
{
        for (size_t i = 0; i < cli->n_approvals; i++) {
                json_error_t jerr;
                json_t *a = json_load_file(cli->approvals[i], JSON_REJECT_DUPLICATES, &jerr);
                if (a == NULL) {
                        return cli_error("approval '%s': %s (line %d)", cli->approvals[i],
                                         jerr.text, jerr.line);
                }
                json_array_append_new(list, a);
        }
        return 0;
}

static int wrap_approvals(const struct cli *cli, struct cf_buf *doc, bool deletion)
{
        json_t *list = json_array(), *env;
        char *text;
        int status = cli_load_approvals(cli, list);

        env = status != 0 ? NULL
              : deletion  ? json_pack("{s:o}", "approvals", list)
                          : json_pack("{s:s%, s:o}", "document", (const char *)doc->ptr, doc->size,
                                      "approvals", list);
        if (status == 0 && env == NULL) {
                status = cli_error("the policy document is not UTF-8 text");
        }
        if (env == NULL) {
                json_decref(list);
        }
        text = env ? json_dumps(env, JSON_COMPACT) : NULL;
        json_decref(env);
        if (status == 0) {
                cf_buf_reset(doc);
                doc->max = 3u << 20;
                if (text == NULL || !cf_ok(cf_buf_append_str(doc, text))) {
                        status = cli_error("the change is too large (at most 3 MiB)");
                }
        }
        if (text != NULL) {
                cf_wipe_free(text, strlen(text));
        }
        return status;
}

static int send_document(struct cli *cli, const char *method, bool create)
{
        struct cf_buf doc;
        struct cf_http_response resp;
        struct cf_client *c;
        char path[700], enc[600], name[256];
        const char *ctype;
        json_t *j;
        int status;

        if (cli->argc != 3) {
                return cli_usage("usage: coffer policy %s FILE", create ? "create" : "update");
        }
        cf_buf_init(&doc, POLICY_FILE_MAX, true);
        status = load_document(cli->argv[2], &doc, name, sizeof(name));
        if (status == 0 && !cf_ok(cf_client_encode_name(name, enc, sizeof(enc)))) {
                status = cli_error("policy name too long");
        }
        if (status != 0) {
                cf_buf_done(&doc);
                return status;
        }
        if (create) {
                snprintf(path, sizeof(path), "/v1/policies");
        } else {
                snprintf(path, sizeof(path), "/v1/policies/%s", enc);
        }
        ctype = content_type_of(cf_buf_slice(&doc));
        if (cli->n_approvals > 0) {
                status = wrap_approvals(cli, &doc, false);
                ctype = "application/vnd.coffer.change+json";
                if (status != 0) {
                        cf_buf_done(&doc);
                        return status;
                }
        }
        c = cli_connect(cli, true, true);
        if (c == NULL) {
                cf_buf_done(&doc);
                return CLI_EXIT_FAIL;
        }
        cf_http_response_init(&resp);
        if (!cli_request(c, method, path, ctype, cf_buf_slice(&doc), &resp)) {
                status = CLI_EXIT_FAIL;
        } else if (resp.status != 200 && resp.status != 201) {
                status = cli_print_failure(&resp);
        } else if ((j = cf_http_response_json(&resp)) == NULL) {
                status = cli_error("cofferd sent a reply that is not JSON");
        } else if (cli->json) {
                cli_print_json(j);
        } else {
                printf("%s version %lld digest %s\n", json_string_value(json_object_get(j, "name")),
                       (long long)json_integer_value(json_object_get(j, "version")),
                       json_string_value(json_object_get(j, "digest")));
                json_decref(j);
        }
        cf_http_response_done(&resp);
        cf_client_free(c);
        cf_buf_done(&doc);
        return status;
}

static int by_name(struct cli *cli, const char *method, const char *suffix)
{
        struct cf_buf body;
        struct cf_http_response resp;
        struct cf_client *c;
        char path[700], enc[600];
        json_t *j;
        int status = 0;

        if (cli->argc != 3) {
                return cli_usage("usage: coffer policy %s NAME", cli->argv[1]);
        }
        if (!cf_ok(cf_client_encode_name(cli->argv[2], enc, sizeof(enc)))) {
                return cli_usage("policy name too long");
        }
        snprintf(path, sizeof(path), "/v1/policies/%s%s", enc, suffix);
        cf_buf_init(&body, 3u << 20, true);
        if (strcmp(method, "DELETE") == 0 && cli->n_approvals > 0 &&
            (status = wrap_approvals(cli, &body, true)) != 0) {
                cf_buf_done(&body);
                return status;
        }
        c = cli_connect(cli, true, true);
        if (c == NULL) {
                cf_buf_done(&body);
                return CLI_EXIT_FAIL;
        }
        cf_http_response_init(&resp);
        if (!cli_request(c, method, path,
                         body.size > 0 ? "application/vnd.coffer.change+json" : NULL,
                         cf_buf_slice(&body), &resp)) {
                status = CLI_EXIT_FAIL;
        } else if (resp.status != 200) {
                status = cli_print_failure(&resp);
        } else if ((j = cf_http_response_json(&resp)) == NULL) {
                status = cli_error("cofferd sent a reply that is not JSON");
        } else if (cli->json || strcmp(cli->argv[1], "show") == 0) {
                cli_print_json(j);
        } else if (strcmp(cli->argv[1], "history") == 0) {
                json_t *v;
                size_t i;
                json_t *versions = json_object_get(j, "versions");
                size_t last = json_array_size(versions) - 1;
                printf("%-8s %-64s %-20s %-16s %s\n", "VERSION", "DIGEST", "CREATED", "BY",
                       "STATE");
                json_array_foreach(versions, i, v)
                {
                        printf("%-8lld %-64s %-20s %.16s %s\n",
                               (long long)json_integer_value(json_object_get(v, "version")),
                               json_string_value(json_object_get(v, "digest")),
                               json_string_value(json_object_get(v, "created")),
                               json_string_value(json_object_get(v, "creator")),
                               json_is_true(json_object_get(v, "deleted")) ? "deleted"
                               : i == last                                 ? "current"
                                                                           : "superseded");
                }
                json_decref(j);
        } else {
                printf("%s deleted (version %lld)\n", cli->argv[2],
                       (long long)json_integer_value(json_object_get(j, "version")));
                json_decref(j);
        }
        cf_http_response_done(&resp);
        cf_client_free(c);
        cf_buf_done(&body);
        return status;
}

int cmd_policy(struct cli *cli)
{
        const char *sub = cli->argc >= 2 ? cli->argv[1] : "";

        if (strcmp(sub, "create") == 0) {
                return send_document(cli, "POST", true);
        }
        if (strcmp(sub, "update") == 0) {
                return send_document(cli, "PUT", false);
        }
        if (strcmp(sub, "show") == 0) {
                return by_name(cli, "GET", "");
        }
        if (strcmp(sub, "history") == 0) {
                return by_name(cli, "GET", "/history");
        }
        if (strcmp(sub, "delete") == 0) {
                return by_name(cli, "DELETE", "");
        }
        return cli_usage("usage: coffer policy create|update|propose FILE | "
                         "show|history|delete|proposals NAME | approve ...");
}
