/* coffer secret approve | release: a secret given to a person, with the consent of the
 * policy's governors (docs/policy.md, "Releasing a secret to a person"). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "policy/policy.h"

#define SECRET_USAGE                                                                              \
        "usage: coffer secret approve POLICY SECRET --for KEYID --predecessor DIGEST [--veto] "    \
        "--out F.sig\n"                                                                           \
        "       coffer secret release POLICY SECRET [--encoding ENC] [--approval A.sig ...] "      \
        "[--out FILE]"
#define SECRET_VALUE_MAX (1u << 20)

static bool hex64(const char *s)
{
        return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int approve(struct cli *cli)
{
        char digest[65];
        struct stat st;

        if (cli->argc != 4 || cli->out == NULL || !policy_name_valid(cli->argv[2]) ||
            !hex64(cli->recipient) || !hex64(cli->predecessor) || cli->deletion) {
                return cli_usage("%s\n--for is the recipient's key id and --predecessor the "
                                 "current version's digest (64 hex digits each; 'coffer policy "
                                 "history')",
                                 SECRET_USAGE);
        }
        if (!cli->force && stat(cli->out, &st) == 0) {
                return cli_error("'%s' exists (use --force to replace it)", cli->out);
        }
        if (!cf_ok(policy_release_digest(cli->predecessor, cli->argv[3], cli->recipient,
                                         digest))) {
                return cli_usage("bad secret name '%s'", cli->argv[3]);
        }
        return cli_write_approval(cli, cli->argv[2], digest, cli->predecessor, cli->out,
                                  "the release");
}

/* {"encoding": ENC, "approvals": [...]} from the options. */
static int request_body(const struct cli *cli, char **ret)
{
        json_t *body = json_object(), *list = json_array();
        int status = cli_load_approvals(cli, list);

        json_object_set_new(body, "approvals", list);
        if (cli->encoding != NULL) {
                json_object_set_new(body, "encoding", json_string(cli->encoding));
        }
        *ret = status == 0 ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (status == 0 && *ret == NULL) {
                status = cli_error("out of memory");
        }
        return status;
}

static int release(struct cli *cli)
{
        struct cf_http_response resp;
        struct cf_client *c;
        struct cf_buf value;
        char enc[600], sec[200], path[900], *body = NULL;
        const char *b64;
        json_t *j = NULL;
        int status;

        if (cli->argc != 4 || !policy_name_valid(cli->argv[2])) {
                return cli_usage(SECRET_USAGE);
        }
        if (!cf_ok(cf_client_encode_name(cli->argv[2], enc, sizeof(enc))) ||
            !cf_ok(cf_client_encode_name(cli->argv[3], sec, sizeof(sec)))) {
                return cli_usage("policy or secret name too long");
        }
        snprintf(path, sizeof(path), "/v1/policies/%s/secrets/%s/release", enc, sec);
        if ((status = request_body(cli, &body)) != 0) {
                return status;
        }
        c = cli_connect(cli, true, true);
        if (c == NULL) {
                free(body);
                return CLI_EXIT_FAIL;
        }
        cf_http_response_init(&resp);
        cf_buf_init(&value, SECRET_VALUE_MAX, true);
        if (!cli_request(c, "POST", path, "application/json", cf_slice_str(body), &resp)) {
                status = CLI_EXIT_FAIL;
        } else if (resp.status != 200) {
                status = cli_print_failure(&resp);
        } else if ((j = cf_http_response_json(&resp)) == NULL ||
                   (b64 = json_string_value(json_object_get(j, "value"))) == NULL ||
                   !cf_ok(cf_base64_decode_buf(cf_slice_str(b64), &value))) {
                status = cli_error("cofferd sent a reply without a value");
        } else if (cli->out != NULL) {
                if (!cf_ok(cf_write_file_atomic(cli->out, value.ptr, value.size, 0600))) {
                        status = cli_error("cannot write '%s'", cli->out);
                } else if (cli->json) {
                        json_object_del(j, "value");
                        json_object_set_new(j, "file", json_string(cli->out));
                        cli_print_json(json_incref(j));
                } else {
                        fprintf(stderr, "coffer: %s of %s version %lld written to %s (0600)\n",
                                cli->argv[3], cli->argv[2],
                                (long long)json_integer_value(json_object_get(j, "version")),
                                cli->out);
                }
        } else if (cli->json) {
                cli_print_json(json_incref(j));
        } else if (fwrite(value.ptr, 1, value.size, stdout) != value.size) {
                status = cli_error("cannot write the value to standard output");
        }
        json_decref(j);
        cf_buf_done(&value);
        cf_http_response_done(&resp);
        cf_client_free(c);
        free(body);
        return status;
}

int cmd_secret(struct cli *cli)
{
        if (cli->argc >= 2 && strcmp(cli->argv[1], "approve") == 0) {
                return approve(cli);
        }
        if (cli->argc >= 2 && strcmp(cli->argv[1], "release") == 0) {
                return release(cli);
        }
        return cli_usage(SECRET_USAGE);
}
