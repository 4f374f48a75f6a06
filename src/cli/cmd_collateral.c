/* coffer collateral import|ls|rm: the attestation collateral cofferd uses offline. */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "attest/checks.h"
#include "base/io.h"
#include "cli/cli.h"

static int print_failure(const struct cf_http_response *r, const char *what)
{
        char text[512];

        cf_http_error_text(r, text, sizeof(text));
        return cli_error("%s: %s", what, text);
}

static int import(struct cli *cli, struct cf_client *c)
{
        json_t *all = json_array();
        int status = 0;

        for (int i = 2; i < cli->argc; i++) {
                struct cf_buf data;
                struct cf_http_response resp;
                char path[400], copy[1024], *base;
                json_t *j;

                snprintf(copy, sizeof(copy), "%s", cli->argv[i]);
                base = basename(copy);
                cf_buf_init(&data, ATTEST_COLLATERAL_MAX_SIZE, false);
                if (!cf_ok(cf_read_file(cli->argv[i], ATTEST_COLLATERAL_MAX_SIZE, &data))) {
                        status = cli_error("cannot read '%s' (at most 4 MiB)", cli->argv[i]);
                        cf_buf_done(&data);
                        continue;
                }
                if (!cf_ok(cf_client_encode_name(base, copy, sizeof(copy)))) {
                        snprintf(copy, sizeof(copy), "collateral");
                }
                snprintf(path, sizeof(path), "/v1/collateral?name=%.300s", copy);
                cf_http_response_init(&resp);
                if (!cli_request(c, "POST", path, "application/octet-stream", cf_buf_slice(&data),
                                 &resp)) {
                        status = CLI_EXIT_FAIL;
                } else if (resp.status != 200 && resp.status != 201) {
                        status = print_failure(&resp, cli->argv[i]);
                } else if ((j = cf_http_response_json(&resp)) != NULL) {
                        if (!cli->json) {
                                printf("%s  %-12s %s%s\n",
                                       json_string_value(json_object_get(j, "digest")),
                                       json_string_value(json_object_get(j, "kind")), cli->argv[i],
                                       json_is_true(json_object_get(j, "existed"))
                                               ? " (already imported)"
                                               : "");
                        }
                        json_array_append_new(all, j);
                }
                cf_http_response_done(&resp);
                cf_buf_done(&data);
        }
        if (cli->json) {
                cli_print_json(all);
        } else {
                json_decref(all);
        }
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
                return cli_usage("usage: coffer collateral import FILE... | ls | rm DIGEST");
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
