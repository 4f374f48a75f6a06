/* coffer: identities, measurements, policies and cofferd attestation for people. */
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "client/pin.h"
#include "crypto/tls.h"

static const char g_usage[] =
        "Usage: coffer [GLOBAL OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  id new [--force]            create your identity (P-256 key, self-signed certificate)\n"
        "  id show                     print your key id\n"
        "  measure FILE...             print the sim measurement of programs (SHA-256 of the file)\n"
        "  sim-key                     print this machine's sim platform key (for --trust-sim-key)\n"
        "  policy create FILE [--approval A.sig ...]\n"
        "                              store a new policy (YAML or JSON); a policy with a board\n"
        "                              needs its board's approvals\n"
        "  policy show NAME            print a policy (secret values are never shown)\n"
        "  policy update FILE [--approval A.sig ...]\n"
        "                              store a new version; FILE names its predecessor's digest;\n"
        "                              with a board, the current board's approvals are needed\n"
        "  policy approve FILE [--veto] [--predecessor DIGEST] --out NAME.sig\n"
        "                              sign an offline approval (or veto) of FILE's version;\n"
        "                              --predecessor: the deletion digest of a re-created name\n"
        "  policy approve --delete NAME --predecessor DIGEST [--veto] --out NAME.sig\n"
        "                              sign an offline approval of deleting version DIGEST\n"
        "  policy propose FILE [--expires DURATION] | propose --delete NAME [--expires D]\n"
        "                              propose a change online; it applies once its board's\n"
        "                              rule is met (DURATION: 30s, 90m, 24h (default), 30d max)\n"
        "  policy proposals NAME       list the pending proposals and what each still needs\n"
        "  policy approve --online NAME DIGEST [--key KEY.pem] [--veto]\n"
        "                              approve (or veto) a proposal with your key\n"
        "  policy approve --online NAME DIGEST --as-service POLICY/SERVICE [--tee TEE] [--veto]\n"
        "                              approve as an attested program member: evidence from TEE\n"
        "                              (sim: over the SHA-256 of this coffer executable;\n"
        "                              --tsm-root, --attestation-root as for coffer-run)\n"
        "  policy delete NAME [--approval A.sig ...]\n"
        "                              delete a policy (its history is kept); a board policy\n"
        "                              needs its board's 'delete' approvals\n"
        "  policy history NAME         list every version with its digest\n"
        "  cas info                    print cofferd's version, key id and measurement\n"
        "  cas attest (--expect-key KEYID | --policy FILE [--service NAME])\n"
        "                              verify cofferd's attestation (fresh nonce, TLS binding,\n"
        "                              trusted platform key, the policy's rules) and pin its\n"
        "                              key id for later commands\n"
        "  cas recover [--policy FILE [--service NAME]]\n"
        "                              send your recovery share to a cofferd in recovery mode\n"
        "                              (attested with --policy, or by its exact key id)\n"
        "  volume ls DIR [PATH] | cat DIR PATH | verify DIR --key-file FILE\n"
        "                              read a shielded volume offline with its key; verify\n"
        "                              lists every corrupt chunk, tree node and file\n"
        "  evidence verify FILE --platform sgx|tdx|snp|sim [--collateral DIR] [--at TIME]\n"
        "                  [--policy FILE --service NAME]\n"
        "                              verify evidence offline and explain every check;\n"
        "                              collateral files are recognised by content; with a\n"
        "                              policy, also evaluate that service's rules\n"
        "  secret approve POLICY SECRET --for KEYID --predecessor DIGEST [--veto] --out F.sig\n"
        "                              sign a board approval of releasing SECRET of version\n"
        "                              DIGEST to the person with key id KEYID\n"
        "  secret release POLICY SECRET [--encoding ENC] [--approval A.sig ...] [--out FILE]\n"
        "                              receive a secret: with the board's approvals, or as\n"
        "                              an update key of a policy without a board\n"
        "  collateral import [--allow-expired] FILE...\n"
        "                              give cofferd attestation collateral (Intel PCS, AMD\n"
        "                              KDS); verified as a set, all or nothing\n"
        "  collateral ls | rm DIGEST   list or delete stored collateral\n"
        "  audit fetch [--out FILE]    download cofferd's audit chain and its signed head\n"
        "  audit verify FILE [--against FILE2] [--audit-key HEX]\n"
        "                              check a downloaded chain offline: deletion, edit,\n"
        "                              reordering, truncation; a fork between two copies\n"
        "\n"
        "Options (anywhere on the line):\n"
        "  --cas HOST:PORT     cofferd's address (or COFFER_CAS)\n"
        "  --cas-key KEYID     cofferd's key id (or COFFER_CAS_KEY); policy and collateral\n"
        "                      commands need it, or a pin left by 'coffer cas attest'\n"
        "  --trust-sim-key HEX also trust this sim platform key (cas attest)\n"
        "  --identity DIR      your identity directory (or COFFER_IDENTITY; default\n"
        "                      ~/.config/coffer)\n"
        "  --json              machine-readable output on standard output\n"
        "  -h, --help          show this help\n"
        "  -V, --version       show the version\n"
        "\n"
        "Exit status: 0 success, 1 failure or refusal, 2 usage error.\n";

int cli_error(const char *fmt, ...)
{
        va_list ap;

        fputs("coffer: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return CLI_EXIT_FAIL;
}

int cli_usage(const char *fmt, ...)
{
        va_list ap;

        fputs("coffer: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'coffer --help'.\n", stderr);
        return CLI_EXIT_USAGE;
}

void cli_print_json(json_t *j)
{
        if (j != NULL) {
                json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                fputc('\n', stdout);
                json_decref(j);
        }
}

cf_status cli_identity_load(const struct cli *cli, struct cf_buf *cert, struct cf_pkey **key)
{
        char path[1100];
        struct cf_buf pem;
        cf_status s;

        snprintf(path, sizeof(path), "%s/identity.crt", cli->identity);
        TRY(cf_read_file(path, 1 << 16, cert));
        snprintf(path, sizeof(path), "%s/identity.key", cli->identity);
        cf_buf_init(&pem, 1 << 16, true);
        s = cf_read_file(path, 1 << 16, &pem);
        if (cf_ok(s)) {
                s = cf_pkey_from_pem(cf_buf_slice(&pem), true, key);
        }
        cf_buf_done(&pem);
        return s;
}

cf_status cli_pin_path(const struct cli *cli, char *out, size_t out_size)
{
        return cf_pin_path(cli->identity, cli->cas, out, out_size);
}

struct cf_client *cli_connect(const struct cli *cli, bool with_identity, bool pin)
{
        char pinned[CF_KEY_ID_HEX];
        const char *expect = cli->cas_key;
        struct cf_buf cert;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        struct cf_client *c = NULL;
        cf_status s;

        /* Missing options are usage errors: exit 2 right here, as documented. */
        if (cli->cas == NULL) {
                exit(cli_usage("no cofferd address: give --cas HOST:PORT or set COFFER_CAS"));
        }
        if (pin && expect == NULL && cf_pinned_key(cli->identity, cli->cas, pinned)) {
                expect = pinned; /* attested earlier with `coffer cas attest` */
        }
        if (pin && expect == NULL) {
                exit(cli_usage("give cofferd's key id with --cas-key or COFFER_CAS_KEY, or attest "
                               "and pin it with 'coffer cas attest'"));
        }
        cf_buf_init(&cert, 1 << 16, false);
        if (with_identity && !cf_ok(cli_identity_load(cli, &cert, &key))) {
                cf_buf_done(&cert);
                cli_error("no identity in '%s' (create one with 'coffer id new')", cli->identity);
                return NULL;
        }
        s = cf_client_connect(cli->cas, pin ? expect : NULL, cf_buf_slice(&cert), key, 0, &c);
        cf_buf_done(&cert);
        if (!cf_ok(s)) {
                cli_error("cannot connect to cofferd at %s: %s%s", cli->cas, cf_strerror(s),
                          s.code == CF_E_PEER ? " (its key id differs from --cas-key)" : "");
                return NULL;
        }
        return c;
}

bool cli_request(struct cf_client *c, const char *method, const char *path,
                 const char *content_type, struct cf_slice body, struct cf_http_response *resp)
{
        cf_status s = cf_client_request(c, method, path, content_type, body, resp);

        if (!cf_ok(s)) {
                cli_error("request %s %s failed: %s", method, path, cf_strerror(s));
                return false;
        }
        return true;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "cas", required_argument, NULL, 'c' },
                { "cas-key", required_argument, NULL, 'k' },
                { "identity", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, 'j' },
                { "force", no_argument, NULL, 'f' },
                { "expect-key", required_argument, NULL, 'K' },
                { "platform", required_argument, NULL, 'P' },
                { "collateral", required_argument, NULL, 'C' },
                { "at", required_argument, NULL, 'A' },
                { "policy", required_argument, NULL, 'O' },
                { "service", required_argument, NULL, 'S' },
                { "trust-sim-key", required_argument, NULL, 'T' },
                { "key-file", required_argument, NULL, 'F' },
                { "out", required_argument, NULL, 256 },
                { "against", required_argument, NULL, 257 },
                { "audit-key", required_argument, NULL, 258 },
                { "veto", no_argument, NULL, 259 },
                { "approval", required_argument, NULL, 260 },
                { "expires", required_argument, NULL, 261 },
                { "online", no_argument, NULL, 262 },
                { "key", required_argument, NULL, 263 },
                { "as-service", required_argument, NULL, 264 },
                { "tee", required_argument, NULL, 265 },
                { "delete", no_argument, NULL, 266 },
                { "predecessor", required_argument, NULL, 267 },
                { "allow-expired", no_argument, NULL, 268 },
                { "for", required_argument, NULL, 269 },
                { "encoding", required_argument, NULL, 270 },
                { "tsm-root", required_argument, NULL, 271 },
                { "attestation-root", required_argument, NULL, 272 },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        struct cli cli = { 0 };
        const char *cmd;
        int c;

        cf_identity_dir(cli.identity, sizeof(cli.identity));
        while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        cli.cas = optarg;
                        break;
                case 'k':
                        cli.cas_key = optarg;
                        break;
                case 'i':
                        snprintf(cli.identity, sizeof(cli.identity), "%s", optarg);
                        break;
                case 'j':
                        cli.json = true;
                        break;
                case 'f':
                        cli.force = true;
                        break;
                case 'K':
                        cli.expect_key = optarg;
                        break;
                case 'P':
                        cli.platform = optarg;
                        break;
                case 'C':
                        cli.collateral = optarg;
                        break;
                case 'A':
                        cli.at = optarg;
                        break;
                case 'O':
                        cli.policy_file = optarg;
                        break;
                case 'S':
                        cli.service = optarg;
                        break;
                case 'T':
                        cli.trust_sim_key = optarg;
                        break;
                case 'F':
                        cli.key_file = optarg;
                        break;
                case 256:
                        cli.out = optarg;
                        break;
                case 257:
                        cli.against = optarg;
                        break;
                case 259:
                        cli.veto = true;
                        break;
                case 260:
                        if (cli.n_approvals >= sizeof(cli.approvals) / sizeof(cli.approvals[0])) {
                                return cli_usage("too many --approval (at most 64)");
                        }
                        cli.approvals[cli.n_approvals++] = optarg;
                        break;
                case 258:
                        cli.audit_key = optarg;
                        break;
                case 261:
                        cli.expires = optarg;
                        break;
                case 262:
                        cli.online = true;
                        break;
                case 263:
                        cli.key = optarg;
                        break;
                case 264:
                        cli.as_service = optarg;
                        break;
                case 265:
                        cli.tee = optarg;
                        break;
                case 266:
                        cli.deletion = true;
                        break;
                case 267:
                        cli.predecessor = optarg;
                        break;
                case 268:
                        cli.allow_expired = true;
                        break;
                case 269:
                        cli.recipient = optarg;
                        break;
                case 270:
                        cli.encoding = optarg;
                        break;
                case 271:
                        cli.tsm_root = optarg;
                        break;
                case 272:
                        cli.attestation_root = optarg;
                        break;
                case 'h':
                        fputs(g_usage, stdout);
                        return 0;
                case 'V':
                        printf("coffer %s\n", COFFER_VERSION);
                        return 0;
                default:
                        return cli_usage("invalid option");
                }
        }
        if (cli.cas == NULL) {
                cli.cas = secure_getenv("COFFER_CAS");
        }
        if (cli.cas_key == NULL) {
                cli.cas_key = secure_getenv("COFFER_CAS_KEY");
        }
        if (cli.tsm_root == NULL) {
                cli.tsm_root = secure_getenv("COFFER_TSM_ROOT");
        }
        if (cli.attestation_root == NULL) {
                cli.attestation_root = secure_getenv("COFFER_ATTESTATION_ROOT");
        }
        if (optind >= argc) {
                fputs(g_usage, stderr);
                return CLI_EXIT_USAGE;
        }
        cmd = argv[optind];
        cli.argc = argc - optind;
        cli.argv = argv + optind;
        cf_log_setup("coffer", CF_LOG_WARNING);
        json_set_alloc_funcs(cf_wiping_malloc, cf_wiping_free);
        if (!cf_ok(cf_crypto_init())) {
                return cli_error("cannot initialise cryptography");
        }
        if (strcmp(cmd, "id") == 0) {
                return cmd_id(&cli);
        }
        if (strcmp(cmd, "measure") == 0) {
                return cmd_measure(&cli);
        }
        if (strcmp(cmd, "policy") == 0 && cli.argc >= 2 && strcmp(cli.argv[1], "approve") == 0) {
                return cli.online ? cmd_approve_online(&cli) : cmd_approve(&cli);
        }
        if (strcmp(cmd, "policy") == 0 && cli.argc >= 2 && strcmp(cli.argv[1], "propose") == 0) {
                return cmd_propose(&cli);
        }
        if (strcmp(cmd, "policy") == 0 && cli.argc >= 2 &&
            strcmp(cli.argv[1], "proposals") == 0) {
                return cmd_proposals(&cli);
        }
        if (strcmp(cmd, "policy") == 0) {
                return cmd_policy(&cli);
        }
        if (strcmp(cmd, "secret") == 0) {
                return cmd_secret(&cli);
        }
        if (strcmp(cmd, "cas") == 0) {
                return cmd_cas(&cli);
        }
        if (strcmp(cmd, "evidence") == 0) {
                return cmd_evidence(&cli);
        }
        if (strcmp(cmd, "collateral") == 0) {
                return cmd_collateral(&cli);
        }
        if (strcmp(cmd, "volume") == 0) {
                return cmd_volume(&cli);
        }
        if (strcmp(cmd, "audit") == 0) {
                return cmd_audit(&cli);
        }
        if (strcmp(cmd, "sim-key") == 0) {
                return cmd_sim_key(&cli);
        }
        return cli_usage("unknown command '%s'", cmd);
}
