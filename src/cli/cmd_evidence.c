/* coffer evidence verify: verifies SGX, TDX or SEV-SNP evidence offline against a folder of
 * collateral at a given time, and explains every decision.
 *
 * "valid" means signatures, chains, revocation and collateral windows pass. The exit status
 * is 0 only when the evidence is valid and, with a TCB Info, a TCB level matched (Intel's
 * "TCB not supported" for NoMatchingLevel exits 1 with valid true). */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "attest/intel/intel.h"
#include "attest/sim.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "base/io.h"
#include "cli/cli.h"
#include "client/collateral_dir.h"
#include "policy/policy.h"

#define EVIDENCE_FILE_MAX (1u << 20)

/* Loads every regular file of dir (not recursive); roles are recognised by content. */
int cli_load_collateral(const char *dir, struct attest_collateral *coll)
{
        char err[512] = "";

        if (!cf_ok(cf_collateral_load_dir(dir, coll, err, sizeof(err)))) {
                return cli_error("%s", err);
        }
        return 0;
}

/* Evidence files are raw; a file of hex digits (e.g. an SNP report as text) is decoded. */
static int load_evidence(const char *path, struct cf_buf *out)
{
        struct cf_buf raw;
        size_t n;
        int status = 0;

        cf_buf_init(&raw, 2 * EVIDENCE_FILE_MAX, false);
        if (!cf_ok(cf_read_file(path, 2 * EVIDENCE_FILE_MAX, &raw))) {
                cf_buf_done(&raw);
                return cli_error("cannot read evidence '%s'", path);
        }
        n = raw.size;
        while (n > 0 && (raw.ptr[n - 1] == '\n' || raw.ptr[n - 1] == '\r' || raw.ptr[n - 1] == ' ')) {
                n--;
        }
        if (n > 0 && n % 2 == 0 && strspn((const char *)raw.ptr, "0123456789abcdefABCDEF") == n &&
            cf_ok(cf_hex_decode_buf(cf_slice_make(raw.ptr, n), out))) {
                cf_buf_done(&raw);
                return 0;
        }
        if (!cf_ok(cf_buf_append(out, raw.ptr, raw.size))) {
                status = cli_error("evidence '%s' is too large", path);
        }
        cf_buf_done(&raw);
        return status;
}

static void print_human(const struct attest_result *res, const char *platform, const char *at)
{
        const char *k;
        json_t *v;
        size_t i;

        printf("platform:     %s\nverified at:  %s\nvalid:        %s\n", platform, at,
               res->valid ? "yes" : "no");
        printf("tcb status:   %s\n", res->tcb_status[0] ? res->tcb_status : "n/a");
        printf("advisories:   ");
        if (json_array_size(res->advisories) == 0) {
                printf("none");
        }
        json_array_foreach(res->advisories, i, v)
        {
                printf("%s%s", i ? ", " : "", json_string_value(v));
        }
        printf("\nclaims:\n");
        json_object_foreach(res->claims, k, v)
        {
                char *text = json_dumps(v, JSON_ENCODE_ANY);
                printf("  %-22s %s\n", k, text ? text : "?");
                free(text);
        }
        printf("checks:\n");
        for (i = 0; i < res->checks.n; i++) {
                const struct attest_check *c = &res->checks.items[i];
                printf("  %-4s %s\n", c->ok ? "ok" : "FAIL", c->name);
                if (!c->ok || (c->expected[0] && strcmp(c->expected, c->actual) != 0)) {
                        printf("         expected: %s\n         actual:   %s\n", c->expected,
                               c->actual);
                }
        }
}

/* Evaluates the service of a local policy file against the verified evidence; its checks are
 * appended to res. Returns 1 (accepts), 0 (refuses) or -1 (usage error, printed). */
static int evaluate_policy(const struct cli *cli, enum attest_platform platform, int64_t now,
                           struct attest_result *res)
{
        struct cf_buf doc;
        struct policy_errors errs;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        const struct policy_service *svc;
        int r;

        if (cli->service == NULL) {
                cli_usage("--policy needs --service NAME");
                return -1;
        }
        cf_buf_init(&doc, POLICY_DOC_MAX, true);
        memset(&errs, 0, sizeof(errs));
        if (!cf_ok(cf_read_file(cli->policy_file, POLICY_DOC_MAX, &doc)) ||
            !cf_ok(policy_parse(cf_buf_slice(&doc), &p, &errs))) {
                cf_buf_done(&doc);
                cli_error("cannot use policy '%s'%s", cli->policy_file,
                          errs.n ? " (invalid: run 'coffer policy create' to see why)" : "");
                return -1;
        }
        cf_buf_done(&doc);
        svc = policy_find_service(p, cli->service);
        if (svc == NULL) {
                cli_error("policy '%s' has no service '%s'", cli->policy_file, cli->service);
                return -1;
        }
        r = res->valid && policy_service_evaluate(svc, platform, res, now, &res->checks) ? 1 : 0;
        return r;
}

int cmd_evidence(struct cli *cli)
{
        struct attest_collateral coll;
        struct attest_result res;
        struct cf_buf ev;
        enum attest_platform platform;
        int64_t now = (int64_t)time(NULL);
        char at[32];
        int status, accepted = -2; /* -2: no policy given */
        cf_status s;

        if (cli->argc != 3 || strcmp(cli->argv[1], "verify") != 0 || cli->platform == NULL) {
                return cli_usage("usage: coffer evidence verify FILE --platform sgx|tdx|snp|sim "
                                 "[--collateral DIR] [--at RFC3339] [--policy FILE --service "
                                 "NAME] [--json]");
        }
        if (!cf_ok(attest_platform_parse(cli->platform, &platform))) {
                return cli_usage("--platform must be sgx, tdx, snp or sim");
        }
        if (cli->at != NULL && !cf_ok(cf_parse_rfc3339(cli->at, &now))) {
                return cli_usage("--at wants an RFC 3339 time such as 2025-07-01T00:00:00Z");
        }
        cf_format_rfc3339(now, at, sizeof(at));
        attest_collateral_init(&coll);
        cf_buf_init(&ev, EVIDENCE_FILE_MAX, false);
        status = load_evidence(cli->argv[2], &ev);
        if (status == 0 && cli->collateral != NULL) {
                status = cli_load_collateral(cli->collateral, &coll);
        }
        if (status != 0 || !cf_ok(attest_result_init(&res))) {
                attest_collateral_done(&coll);
                cf_buf_done(&ev);
                return status ? status : cli_error("out of memory");
        }
        switch (platform) {
        case ATTEST_SGX:
        case ATTEST_TDX: {
                struct intel_options o = { .now = now };
                s = intel_verify(cf_buf_slice(&ev), &coll, &o, &res);
                break;
        }
        case ATTEST_SNP: {
                struct snp_options o = { .now = now, .expected_stepping = -1 };
                s = snp_verify(cf_buf_slice(&ev), &coll, &o, &res);
                break;
        }
        case ATTEST_SIM:
                s = sim_evidence_verify(cf_buf_slice(&ev), &res);
                break;
        default:
                s = cf_fail(CF_E_UNSUPPORTED);
                break;
        }
        if (cli->policy_file != NULL) {
                accepted = evaluate_policy(cli, platform, now, &res);
                if (accepted < 0) {
                        attest_result_done(&res);
                        attest_collateral_done(&coll);
                        cf_buf_done(&ev);
                        return CLI_EXIT_USAGE;
                }
        }
        if (cli->json) {
                json_t *checks = NULL;
                cf_ignore(attest_checks_to_json(&res.checks, false, &checks));
                /* tcb_status is null where no TCB evaluation applies (SNP, sim, no TCB Info). */
                json_t *out = json_pack("{s:b, s:s, s:s, s:o, s:O, s:O, s:o}", "valid", res.valid,
                                        "platform", cli->platform, "at", at, "tcb_status",
                                        res.tcb_status[0] ? json_string(res.tcb_status)
                                                          : json_null(),
                                        "advisories", res.advisories, "claims", res.claims,
                                        "checks", checks);
                if (cli->policy_file != NULL) {
                        json_object_set_new(out, "policy_accepts", json_boolean(accepted == 1));
                }
                cli_print_json(out);
        } else {
                print_human(&res, cli->platform, at);
                printf("result:       %s\n", cf_ok(s) && res.valid ? "VALID"
                                              : res.valid         ? "REFUSED (TCB not supported)"
                                                                  : "INVALID");
                if (cli->policy_file != NULL) {
                        printf("policy:       %s service %s: %s\n", cli->policy_file,
                               cli->service, accepted == 1 ? "ACCEPTS" : "REFUSES");
                }
        }
        status = cf_ok(s) && res.valid && accepted != 0 ? 0 : CLI_EXIT_FAIL;
        attest_result_done(&res);
        attest_collateral_done(&coll);
        cf_buf_done(&ev);
        return status;
}
