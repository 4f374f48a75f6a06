/* coffer cas info|attest: what cofferd says about itself, and checking it. */
#include <stdio.h>
#include <string.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "cli/cli.h"
#include "crypto/tls.h"

static json_t *get_json(struct cf_client *c, const char *path, int *ret_status)
{
        struct cf_http_response resp;
        json_t *j = NULL;

        cf_http_response_init(&resp);
        if (cli_request(c, "GET", path, NULL, cf_slice_make(NULL, 0), &resp)) {
                *ret_status = resp.status;
                j = cf_http_response_json(&resp);
                if (resp.status != 200) {
                        char text[512];
                        cf_http_error_text(&resp, text, sizeof(text));
                        cli_error("%s: %s", path, text);
                        json_decref(j);
                        j = NULL;
                }
        }
        cf_http_response_done(&resp);
        return j;
}

static int cas_info(struct cli *cli)
{
        struct cf_client *c = cli_connect(cli, false, cli->cas_key != NULL);
        char kid[CF_KEY_ID_HEX];
        int status = 0;
        json_t *v;

        if (c == NULL) {
                return CLI_EXIT_FAIL;
        }
        if (!cf_ok(cf_tls_peer_key_id(cf_client_ssl(c), kid))) {
                cf_client_free(c);
                return cli_error("cofferd presented no certificate");
        }
        v = get_json(c, "/v1/version", &status);
        cf_client_free(c);
        if (v == NULL) {
                return CLI_EXIT_FAIL;
        }
        json_object_set_new(v, "tls_key_id", json_string(kid));
        if (cli->json) {
                cli_print_json(v);
                return 0;
        }
        printf("address:     %s\nversion:     %s\ntee:         %s\nkey id:      %s\n"
               "measurement: %s\n",
               cli->cas, json_string_value(json_object_get(v, "version")),
               json_string_value(json_object_get(v, "tee")), kid,
               json_string_value(json_object_get(v, "measurement")));
        if (cli->cas_key == NULL) {
                fprintf(stderr, "coffer: the key id above was not checked against anything; "
                        "verify it with 'coffer cas attest --expect-key KEYID' and pin it with "
                        "--cas-key\n");
        }
        json_decref(v);
        return 0;
}

/* Fetches cofferd's evidence for a fresh nonce and checks: signature, that its report
 * data binds the key id of the TLS connection it came over and our nonce, that this key id
 * is the expected one, and optionally the measurement. */
static int cas_attest(struct cli *cli)
{
        uint8_t nonce[32], kid_raw[32], rd[64];
        char nonce_hex[65], kid[CF_KEY_ID_HEX], path[128], rd_hex[129];
        struct attest_result res;
        struct cf_client *c;
        struct cf_buf ev;
        json_t *j, *out;
        const char *data = NULL, *type = NULL, *got_rd, *m;
        int status = 0;
        bool ok;

        if (cli->expect_key == NULL) {
                return cli_usage("usage: coffer cas attest --expect-key KEYID "
                                 "[--expect-measurement HEX]");
        }
        c = cli_connect(cli, false, false);
        if (c == NULL) {
                return CLI_EXIT_FAIL;
        }
        if (!cf_ok(cf_random(nonce, sizeof(nonce))) ||
            !cf_ok(cf_tls_peer_key_id(cf_client_ssl(c), kid))) {
                cf_client_free(c);
                return cli_error("cannot start the attestation");
        }
        cf_hex_encode(nonce, sizeof(nonce), nonce_hex, sizeof(nonce_hex));
        snprintf(path, sizeof(path), "/v1/cas/attestation?nonce=%s", nonce_hex);
        j = get_json(c, path, &status);
        cf_client_free(c);
        if (j == NULL || json_unpack(j, "{s:{s:s, s:s}}", "evidence", "type", &type, "data",
                                     &data) != 0 ||
            strcmp(type, "sim") != 0) {
                json_decref(j);
                return cli_error("cofferd sent no sim evidence");
        }
        cf_buf_init(&ev, 4096, false);
        if (!cf_ok(attest_result_init(&res))) {
                json_decref(j);
                return cli_error("out of memory");
        }
        if (!cf_ok(cf_base64_decode_buf(cf_slice_str(data), &ev))) {
                cf_ignore(attest_checks_add(&res.checks, "evidence.encoding", false, "base64",
                                            "not base64"));
        } else {
                cf_ignore(sim_evidence_verify(cf_buf_slice(&ev), &res)); /* recorded in checks */
        }
        cf_buf_done(&ev);
        json_decref(j);
        ok = cf_ok(cf_hex_decode(cf_slice_str(kid), kid_raw, sizeof(kid_raw))) &&
             cf_ok(sim_cas_report_data(kid_raw, cf_slice_make(nonce, sizeof(nonce)), rd));
        cf_hex_encode(rd, sizeof(rd), rd_hex, sizeof(rd_hex));
        got_rd = json_string_value(json_object_get(res.claims, "report_data"));
        cf_ignore(attest_checks_add(
                &res.checks, "binding.report_data", ok && got_rd && strcmp(got_rd, rd_hex) == 0,
                "SHA-512(\"coffer-cas-attestation-v1\" || TLS key id || our nonce)",
                got_rd && ok && strcmp(got_rd, rd_hex) == 0 ? "bound" : "not bound"));
        cf_ignore(attest_checks_add(&res.checks, "key_id", strcmp(kid, cli->expect_key) == 0,
                                    cli->expect_key, kid));
        m = json_string_value(json_object_get(res.claims, "measurement"));
        if (cli->expect_measurement != NULL) {
                cf_ignore(attest_checks_add(&res.checks, "measurement",
                                            m && strcmp(m, cli->expect_measurement) == 0,
                                            cli->expect_measurement, m ? m : ""));
        }
        ok = attest_checks_all_ok(&res.checks);
        if (cli->json) {
                json_t *checks = NULL;
                cf_ignore(attest_checks_to_json(&res.checks, false, &checks));
                out = json_pack("{s:b, s:s, s:s, s:s*, s:o}", "valid", ok, "platform", "sim",
                                "key_id", kid, "measurement", m, "checks", checks);
                cli_print_json(out);
        } else {
                for (size_t i = 0; i < res.checks.n; i++) {
                        const struct attest_check *ch = &res.checks.items[i];
                        printf("%-4s %-22s expected %s, actual %s\n", ch->ok ? "ok" : "FAIL",
                               ch->name, ch->expected, ch->actual);
                }
                printf("%s: cofferd at %s (measurement %s)\n",
                       ok ? "attested" : "NOT attested", cli->cas, m ? m : "unknown");
                printf("warning: sim evidence protects nothing against a local root\n");
        }
        attest_result_done(&res);
        return ok ? 0 : CLI_EXIT_FAIL;
}

int cmd_cas(struct cli *cli)
{
        const char *sub = cli->argc >= 2 ? cli->argv[1] : "";

        if (strcmp(sub, "info") == 0 && cli->argc == 2) {
                return cas_info(cli);
        }
        if (strcmp(sub, "attest") == 0 && cli->argc == 2) {
                return cas_attest(cli);
        }
        return cli_usage("usage: coffer cas info | coffer cas attest --expect-key KEYID");
}
