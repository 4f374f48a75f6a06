/* coffer collateral import|ls|rm: the attestation collateral cofferd uses offline. */
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/checks.h"
#include "base/codec.h"
#include "base/io.h"
#include "cli/cli.h"

static int print_failure(const struct cf_http_response *r, const char *what)
{
        char text[512];

        cf_http_error_text(r, text, sizeof(text));
        return cli_error("%s: %s", what, text);
}

/* A file name as cofferd accepts it: letters, digits, '.', '_', '-' (others become '_'). */
static void safe_name(const char *path, char *out, size_t out_size)
{
        char copy[1024];
        const char *base;
        size_t n = 0;

        snprintf(copy, sizeof(copy), "%s", path);
        base = basename(copy);
        for (size_t i = 0; base[i] != '\0' && n + 1 < out_size && n < 128; i++) {
                char ch = base[i];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
                out[n++] = ok ? ch : '_';
        }
        out[n] = '\0';
        if (n == 0) {
                snprintf(out, out_size, "collateral");
        }
}

static void print_results(const json_t *files, bool refused)
{
        size_t i;
        json_t *f;

        json_array_foreach(files, i, f)
        {
                const char *name = json_string_value(json_object_get(f, "name"));
                const char *kind = json_string_value(json_object_get(f, "kind"));
                const char *issuer = json_string_value(json_object_get(f, "issuer"));
                const char *reason = json_string_value(json_object_get(f, "reason"));
                bool ok = refused ? json_is_true(json_object_get(f, "ok")) : true;
                bool in_window = json_is_true(json_object_get(f, "in_window"));

                if (refused) {
                        fprintf(stderr, "  %-8s %-12s %s%s%s\n", ok ? "ok" : "REFUSED",
                                kind && kind[0] ? kind : "-", name ? name : "", ok ? "" : ": ",
                                ok ? "" : (reason ? reason : ""));
                        continue;
                }
                printf("%s  %-12s %s  verified%s%.16s%s%s\n",
                       json_string_value(json_object_get(f, "digest")), kind ? kind : "",
                       name ? name : "", issuer && issuer[0] ? " by " : "", issuer ? issuer : "",
                       in_window ? "" : " (outside its validity window)",
                       json_is_true(json_object_get(f, "existed")) ? " (already imported)" : "");
        }
}

/* Sends every file in one request, so a self-contained set verifies in any order. */
static int import(struct cli *cli, struct cf_client *c)
{
        json_t *files = json_array(), *req, *j;
        struct cf_http_response resp;
        bool allow_expired = cli->allow_expired;
        char *body = NULL;
        int status = 0;

        for (int i = 2; i < cli->argc && status == 0; i++) {
                struct cf_buf data, b64;
                char name[130];

                cf_buf_init(&data, ATTEST_COLLATERAL_MAX_SIZE, false);
                cf_buf_init(&b64, 2 * ATTEST_COLLATERAL_MAX_SIZE, false);
                if (!cf_ok(cf_read_file(cli->argv[i], ATTEST_COLLATERAL_MAX_SIZE, &data))) {
                        status = cli_error("cannot read '%s' (at most 4 MiB)", cli->argv[i]);
                } else if (!cf_ok(cf_base64_encode_buf(data.ptr, data.size, &b64))) {
                        status = cli_error("cannot encode '%s'", cli->argv[i]);
                } else {
                        safe_name(cli->argv[i], name, sizeof(name));
                        json_array_append_new(files, json_pack("{s:s, s:s}", "name", name, "data",
                                                               (const char *)b64.ptr));
                }
                cf_buf_done(&b64);
                cf_buf_done(&data);
        }
        if (status == 0 && json_array_size(files) == 0) {
                status = cli_usage("usage: coffer collateral import [--allow-expired] FILE...");
        }
        if (status != 0) {
                json_decref(files);
                return status;
        }
        req = json_pack("{s:o, s:b}", "files", files, "allow_expired", allow_expired);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (body == NULL) {
                return cli_error("out of memory");
        }
        cf_http_response_init(&resp);
        if (!cli_request(c, "POST", "/v1/collateral", "application/json", cf_slice_str(body),
                         &resp)) {
                status = CLI_EXIT_FAIL;
        } else if (resp.status != 200 && resp.status != 201) {
                j = cf_http_response_json(&resp);
                status = print_failure(&resp, "collateral import");
                if (j != NULL) {
                        const json_t *fl = json_object_get(
                            json_object_get(json_object_get(j, "error"), "details"), "files");
                        if (cli->json) {
                                cli_print_json(json_incref(json_object_get(j, "error")));
                        }
                        if (fl != NULL) {
                                print_results(fl, true);
                        }
                        json_decref(j);
                }
        } else if ((j = cf_http_response_json(&resp)) != NULL) {
                json_t *fl = json_object_get(j, "files");
                if (cli->json) {
                        cli_print_json(json_incref(fl));
                } else {
                        print_results(fl, false);
                }
                json_decref(j);
        }
        cf_http_response_done(&resp);
        free(body);
        return status;
}

static int list(struct cli *cli, struct cf_client *c)
{
        struct cf_http_response resp;
        json_t *j, *v;
        size_t i;
        int status = 0;

        cf_http_response_init(&resp);
        if (!cli_request(c, "GET", "/v1/collateral", NULL, cf_slice_make(NULL, 0), &resp)) {
                status = CLI_EXIT_FAIL;
        } else if (resp.status != 200 || (j = cf_http_response_json(&resp)) == NULL) {
                status = print_failure(&resp, "collateral list");
        } else if (cli->json) {
                cli_print_json(j);
        } else {
                printf("%-64s %-12s %s\n", "DIGEST", "KIND", "NAME");
                json_array_foreach(json_object_get(j, "collateral"), i, v)
                {
                        printf("%-64s %-12s %s\n", json_string_value(json_object_get(v, "digest")),
                               json_string_value(json_object_get(v, "kind")),
                               json_string_value(json_object_get(v, "name")));
                }
                json_decref(j);
        }
        cf_http_response_done(&resp);
        return status;
}

static int remove_one(struct cli *cli, struct cf_client *c)
{
        struct cf_http_response resp;
        char path[128];
        int status = 0;

        if (strlen(cli->argv[2]) != 64) {
                return cli_usage("usage: coffer collateral rm DIGEST (64 hex digits)");
        }
        snprintf(path, sizeof(path), "/v1/collateral/%s", cli->argv[2]);
        cf_http_response_init(&resp);
        if (!cli_request(c, "DELETE", path, NULL, cf_slice_make(NULL, 0), &resp)) {
                status = CLI_EXIT_FAIL;
        } else if (resp.status != 200) {
                status = print_failure(&resp, "collateral rm");
        } else if (!cli->json) {
                printf("deleted %s\n", cli->argv[2]);
        } else {
                cli_print_json(cf_http_response_json(&resp));
        }
        cf_http_response_done(&resp);
        return status;
}

int cmd_collateral(struct cli *cli)
{
        const char *sub = cli->argc >= 2 ? cli->argv[1] : "";
        struct cf_client *c;
        int status;

        if (!((strcmp(sub, "import") == 0 && cli->argc >= 3) ||
              (strcmp(sub, "ls") == 0 && cli->argc == 2) ||
              (strcmp(sub, "rm") == 0 && cli->argc == 3))) {
                return cli_usage(
                    "usage: coffer collateral import [--allow-expired] FILE... | ls | rm DIGEST");
        }
        c = cli_connect(cli, true, true);
        if (c == NULL) {
                return CLI_EXIT_FAIL;
        }
        if (strcmp(sub, "import") == 0) {
                status = import(cli, c);
        } else if (strcmp(sub, "ls") == 0) {
                status = list(cli, c);
        } else {
                status = remove_one(cli, c);
        }
        cf_client_free(c);
        return status;
}
