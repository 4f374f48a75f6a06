/* coffer cas info|attest: what cofferd says about itself, and checking it. A successful
 * `cas attest` pins cofferd's key id (see cli_pin_path); later commands check the pin when no
 * --cas-key is given. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "cli/cli.h"
#include "client/cas_attest.h"
#include "client/pin.h"
#include "crypto/ecies.h"
#include "crypto/tls.h"
#include "policy/policy.h"

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

/* Records cofferd's attested key id for this address. */
static int pin_key(const struct cli *cli, const char *kid)
{
        char path[1200], line[CF_KEY_ID_HEX + 1];

        if (!cf_ok(cli_pin_path(cli, path, sizeof(path)))) {
                return cli_error("cannot pin cofferd's key");
        }
        snprintf(line, sizeof(line), "%s\n", kid);
        if (!cf_ok(cf_write_file_atomic(path, line, strlen(line), 0600))) {
                return cli_error("cannot write the pin '%s'", path);
        }
        fprintf(stderr, "coffer: pinned cofferd's key id for %s in %s\n", cli->cas, path);
        return 0;
}

/* The trusted sim platform keys: this machine's, and --trust-sim-key. */
static size_t trusted_sim_keys(const struct cli *cli, uint8_t keys[2][32])
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *local = NULL;
        size_t n = 0;

        if (cf_ok(sim_platform_key_load(NULL, &local)) &&
            cf_ok(cf_pkey_ed25519_raw_public(local, keys[n]))) {
                n++;
        }
        if (cli->trust_sim_key != NULL &&
            !cf_ok(cf_hex_decode(cf_slice_str(cli->trust_sim_key), keys[n], 32))) {
                exit(cli_usage("--trust-sim-key wants 64 hex digits"));
        }
        if (cli->trust_sim_key != NULL) {
                n++;
        }
        return n;
}

/* Loads a policy file for `--policy`; NULL (and an error printed) on failure. */
static struct policy *load_expectations(const struct cli *cli)
{
        struct cf_buf doc;
        struct policy *p = NULL;
        struct policy_errors errs;

        memset(&errs, 0, sizeof(errs));
        cf_buf_init(&doc, POLICY_DOC_MAX, true);
        if (!cf_ok(cf_read_file(cli->policy_file, POLICY_DOC_MAX, &doc)) ||
            !cf_ok(policy_parse(cf_buf_slice(&doc), &p, &errs))) {
                cli_error("cannot use '%s' as expectations (a policy document with a service "
                          "'%s')",
                          cli->policy_file, cli->service ? cli->service : "cofferd");
                p = NULL;
        }
        cf_buf_done(&doc);
        return p;
}

/* Fills e for cf_cas_attest: the service of p (may be NULL: no policy), the collateral of
 * --collateral (coll: initialised here, the caller frees it when this returns 0), the trusted
 * sim platform keys and the current time. Prints why and returns an exit status on failure. */
static int fill_expectations(const struct cli *cli, const struct policy *p,
                             struct cf_cas_expect *e, struct attest_collateral *coll,
                             uint8_t keys[2][32])
{
        if (p != NULL) {
                e->service = policy_find_service(p, cli->service ? cli->service : "cofferd");
                if (e->service == NULL) {
                        return cli_error("'%s' has no service '%s'", cli->policy_file,
                                         cli->service ? cli->service : "cofferd");
                }
        }
        attest_collateral_init(coll);
        if (cli->collateral != NULL && cli_load_collateral(cli->collateral, coll) != 0) {
                return CLI_EXIT_FAIL;
        }
        e->collateral = coll; /* for cofferd on a hardware TEE */
        e->sim_keys = (const uint8_t(*)[32])keys;
        e->n_sim_keys = trusted_sim_keys(cli, keys);
        e->now = (int64_t)time(NULL);
        return 0;
}

/* Verifies cofferd's attestation (fresh nonce; evidence bound to this TLS connection's key and
 * the nonce; a trusted sim platform key), optionally its key id and a policy service's rules,
 * and on success pins its key id for later commands. */
static int cas_attest(struct cli *cli)
{
        uint8_t keys[2][32];
        struct cf_cas_expect e = { 0 };
        struct attest_collateral coll;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        struct attest_result res;
        struct cf_client *c;
        char kid[CF_KEY_ID_HEX] = "";
        const char *m, *ak;
        cf_status s;
        int status;
        bool ok;

        if (cli->expect_key == NULL && cli->policy_file == NULL) {
                return cli_usage("usage: coffer cas attest (--expect-key KEYID | --policy FILE "
                                 "[--service NAME]) [--trust-sim-key HEX] [--collateral DIR]");
        }
        if (cli->policy_file != NULL && (p = load_expectations(cli)) == NULL) {
                return CLI_EXIT_FAIL;
        }
        if ((status = fill_expectations(cli, p, &e, &coll, keys)) != 0) {
                return status;
        }
        e.key_id = cli->expect_key;
        c = cli_connect(cli, false, false);
        if (c == NULL) {
                attest_collateral_done(&coll);
                return CLI_EXIT_FAIL;
        }
        if (!cf_ok(attest_result_init(&res))) {
                cf_client_free(c);
                attest_collateral_done(&coll);
                return cli_error("out of memory");
        }
        s = cf_cas_attest(c, &e, &res, kid);
        cf_client_free(c);
        attest_collateral_done(&coll);
        ok = cf_ok(s);
        if (!ok && s.code != CF_E_REFUSED) {
                attest_result_done(&res);
                return cli_error("cannot attest cofferd at %s: %s", cli->cas, cf_strerror(s));
        }
        m = json_string_value(json_object_get(res.claims, "measurement"));
        ak = ok ? json_string_value(json_object_get(res.claims, "audit_key")) : NULL;
        if (ok) {
                ok = pin_key(cli, kid) == 0;
        }
        if (cli->json) {
                json_t *checks = NULL;
                cf_ignore(attest_checks_to_json(&res.checks, false, &checks));
                cli_print_json(json_pack("{s:b, s:s, s:s*, s:s*, s:s*, s:o}", "valid", ok,
                                         "platform", "sim", "key_id", kid[0] ? kid : NULL,
                                         "audit_key", ak, "measurement", m, "checks", checks));
        } else {
                for (size_t i = 0; i < res.checks.n; i++) {
                        const struct attest_check *ch = &res.checks.items[i];
                        printf("%-4s %-22s expected %s, actual %s\n", ch->ok ? "ok" : "FAIL",
                               ch->name, ch->expected, ch->actual);
                }
                printf("%s: cofferd at %s (measurement %s)\n", ok ? "attested" : "NOT attested",
                       cli->cas, m ? m : "unknown");
                if (ak != NULL) {
                        printf("audit key: %s (bound by this attestation: give it to 'coffer "
                               "audit verify --audit-key')\n",
                               ak);
                }
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
        if (strcmp(sub, "recover") == 0 && cli->argc == 2) {
                return cmd_cas_recover(cli);
        }
        return cli_usage("usage: coffer cas info | attest --expect-key KEYID | recover "
                         "(--policy FILE | --cas-key KEYID)");
}

/* Attests the cofferd at the other end of c for `cas recover --policy FILE`: its evidence
 * must verify, bind this very connection's (temporary) TLS key and a fresh nonce, satisfy the
 * policy's service rules, and bind an all-zero audit key, which only a cofferd in recovery
 * mode does (it has no store, hence no audit key). Prints the checks that failed. */
static int attest_for_recovery(const struct cli *cli, struct cf_client *c)
{
        static const uint8_t zero_audit_key[32];
        uint8_t keys[2][32];
        struct cf_cas_expect e = {0};
        struct attest_collateral coll;
        CF_CLEANUP(policy_freep) struct policy *p = load_expectations(cli);
        struct attest_result res;
        char kid[CF_KEY_ID_HEX] = "", zeros_hex[65];
        const char *m, *ak;
        cf_status s;
        int status = 0;

        if (p == NULL) {
                return CLI_EXIT_FAIL;
        }
        if ((status = fill_expectations(cli, p, &e, &coll, keys)) != 0) {
                return status;
        }
        if (!cf_ok(attest_result_init(&res))) {
                attest_collateral_done(&coll);
                return cli_error("out of memory");
        }
        s = cf_cas_attest(c, &e, &res, kid);
        attest_collateral_done(&coll);
        m = json_string_value(json_object_get(res.claims, "measurement"));
        ak = json_string_value(json_object_get(res.claims, "audit_key"));
        cf_hex_encode(zero_audit_key, sizeof(zero_audit_key), zeros_hex, sizeof(zeros_hex));
        if (!cf_ok(s)) {
                for (size_t i = 0; i < res.checks.n; i++) {
                        const struct attest_check *ch = &res.checks.items[i];
                        if (!ch->ok) {
                                fprintf(stderr, "FAIL %-22s expected %s, actual %s\n", ch->name,
                                        ch->expected, ch->actual);
                        }
                }
                status = cli_error("cofferd at %s is NOT attested (%s): no share was sent",
                                   cli->cas, cf_strerror(s));
        } else if (ak == NULL || strcmp(ak, zeros_hex) != 0) {
                status = cli_error("cofferd at %s is attested but not in recovery mode (it "
                                   "has an audit key): no share was sent",
                                   cli->cas);
        } else {
                fprintf(stderr,
                        "coffer: attested cofferd at %s in recovery mode (measurement "
                        "%s, temporary key id %s)\n",
                        cli->cas, m ? m : "unknown", kid);
        }
        attest_result_done(&res);
        return status;
}

/* Connects to a cofferd in recovery mode and checks who answers before any share leaves:
 * by attestation with --policy FILE, else by an exact key id (--cas-key or the pin). In
 * recovery mode cofferd usually serves with a temporary TLS key, so the pin of its normal
 * identity does not fit; the error says what to do. */
static struct cf_client *recover_connect(const struct cli *cli)
{
        char pinned[CF_KEY_ID_HEX], kid[CF_KEY_ID_HEX];
        const char *expect = cli->cas_key;
        struct cf_client *c;

        if (expect == NULL && cli->cas != NULL && cf_pinned_key(cli->identity, cli->cas, pinned)) {
                expect = pinned;
        }
        if (cli->policy_file == NULL && expect == NULL) {
                exit(cli_usage("coffer cas recover needs to know cofferd: --policy FILE (attest "
                               "it) or --cas-key KEYID (the key id cofferd logged in recovery "
                               "mode)"));
        }
        c = cli_connect(cli, true, false);
        if (c == NULL) {
                return NULL;
        }
        if (cli->policy_file != NULL) {
                if (attest_for_recovery(cli, c) != 0) {
                        cf_client_free(c);
                        return NULL;
                }
                return c;
        }
        if (!cf_ok(cf_tls_check_peer(cf_client_ssl(c), expect))) {
                if (!cf_ok(cf_tls_peer_key_id(cf_client_ssl(c), kid))) {
                        snprintf(kid, sizeof(kid), "none");
                }
                cli_error("cofferd at %s presents key id %s, not %s. In recovery mode cofferd "
                          "serves with a temporary key that its log prints ('cofferd key id: "
                          "... (temporary: recovery mode)'): check it out of band and give it "
                          "with --cas-key, or verify cofferd by attestation with --policy FILE. "
                          "No share was sent",
                          cli->cas, kid, expect);
                cf_client_free(c);
                return NULL;
        }
        return c;
}

/* coffer cas recover: sends this person's share of the data key to a cofferd in recovery
 * mode. The share is decrypted here, with the identity's private key, and travels only over
 * a TLS connection whose server was checked (recover_connect), authenticated with the same
 * identity: cofferd takes a share only from the holder it was sealed to. */
int cmd_cas_recover(struct cli *cli)
{
        struct cf_buf cert, sealed, plain, b64;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        struct cf_http_response resp;
        struct cf_client *c;
        char kid[CF_KEY_ID_HEX], text[512];
        json_t *bundle = NULL, *share, *req;
        const char *mine = NULL;
        char *body = NULL;
        size_t i;
        int status = 0;

        cf_buf_init(&cert, 1 << 16, false);
        if (!cf_ok(cli_identity_load(cli, &cert, &key)) || !cf_ok(cf_pkey_key_id(key, kid))) {
                cf_buf_done(&cert);
                return cli_error("no identity in '%s'", cli->identity);
        }
        cf_buf_done(&cert);
        c = recover_connect(cli);
        if (c == NULL) {
                return CLI_EXIT_FAIL;
        }
        cf_http_response_init(&resp);
        if (!cli_request(c, "GET", "/v1/recovery", NULL, cf_slice_make(NULL, 0), &resp) ||
            resp.status != 200 || (bundle = cf_http_response_json(&resp)) == NULL) {
                cf_http_error_text(&resp, text, sizeof(text));
                cf_http_response_done(&resp);
                cf_client_free(c);
                return cli_error("cofferd gives no recovery bundle: %s", text);
        }
        cf_http_response_done(&resp);
        json_array_foreach(json_object_get(bundle, "shares"), i, share)
        {
                const char *k = json_string_value(json_object_get(share, "key_id"));
                if (k != NULL && strcmp(k, kid) == 0) {
                        mine = json_string_value(json_object_get(share, "sealed"));
                }
        }
        if (mine == NULL) {
                json_decref(bundle);
                cf_client_free(c);
                return cli_error("the recovery bundle holds no share for your key %.16s...", kid);
        }
        cf_buf_init(&sealed, 8192, false);
        cf_buf_init(&plain, 256, true);
        cf_buf_init(&b64, 512, true);
        if (!cf_ok(cf_base64_decode_buf(cf_slice_str(mine), &sealed)) ||
            !cf_ok(cf_ecies_open(key, cf_slice_str("coffer-recovery-share-v1"),
                                 cf_buf_slice(&sealed), &plain)) ||
            !cf_ok(cf_base64_encode_buf(plain.ptr, plain.size, &b64))) {
                status = cli_error("your share cannot be decrypted with your identity's key");
        }
        json_decref(bundle);
        cf_buf_done(&sealed);
        cf_buf_done(&plain);
        if (status == 0) {
                req = json_pack("{s:s}", "share", (const char *)b64.ptr);
                body = req ? json_dumps(req, JSON_COMPACT) : NULL;
                json_decref(req);
        }
        cf_buf_done(&b64);
        if (status == 0 && body != NULL) {
                cf_http_response_init(&resp);
                if (!cli_request(c, "POST", "/v1/recovery", "application/json", cf_slice_str(body),
                                 &resp)) {
                        status = CLI_EXIT_FAIL;
                } else if (resp.status == 200) {
                        printf("recovered: cofferd has its data key again\n");
                } else if (resp.status == 202) {
                        json_t *j = cf_http_response_json(&resp);
                        printf("share accepted: %lld of %lld received, %lld more needed\n",
                               (long long)json_integer_value(json_object_get(j, "received")),
                               (long long)json_integer_value(json_object_get(j, "threshold")),
                               (long long)json_integer_value(json_object_get(j, "needed")));
                        json_decref(j);
                } else {
                        cf_http_error_text(&resp, text, sizeof(text));
                        status = cli_error("recovery: %s", text);
                }
                cf_http_response_done(&resp);
        }
        if (body != NULL) {
                cf_wipe_free(body, strlen(body));
        }
        cf_client_free(c);
        return status;
}
