/* Unit tests of src/policy/rules.c: every rule kind accepting and refusing, boundaries, `until`
 * dates on both sides, debug tolerance, sim compatibility with cofferd's check names, and the
 * shared vectors run through their verifiers and rules built from their own claims (which
 * proves that the evaluator reads the claim names the verifiers publish). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attest/intel/intel.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "base/cursor.h"
#include "base/mem.h"
#include "policy/policy.h"
#include "vectors.h"

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C96                                                                                        \
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" \
        "cccccccc"
#define D96                                                                                        \
        "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd" \
        "dddddddd"

/* 2026-06-30T00:00:00Z */
#define T_JUNE 1782777600
/* 2026-12-31T00:00:00Z */
#define T_DEC 1798675200

static int64_t at(const char *rfc3339)
{
        int64_t t = 0;

        assert_int_equal(cf_parse_rfc3339(rfc3339, &t).code, 0);
        return t;
}

/* ---- helpers --------------------------------------------------------------------------- */

static struct policy *load(const char *text)
{
        struct policy *p = NULL;
        struct policy_errors *e = calloc(1, sizeof(*e));
        cf_status s;

        assert_non_null(e);
        s = policy_parse(cf_slice_str(text), &p, e);
        if (!cf_ok(s)) {
                for (size_t i = 0; i < e->n; i++) {
                        print_message("  %s: %s\n", e->items[i].location, e->items[i].message);
                }
                print_message("in:\n%s\n", text);
        }
        free(e);
        assert_int_equal(s.code, 0);
        return p;
}

/* A policy with one service "s" whose attestation list is `rules` (block YAML, each line
 * indented by 6) and whose tolerate list is `tolerate` ("" for none). */
static struct policy *load_rules(const char *rules, const char *tolerate)
{
        char *doc = NULL;
        struct policy *p;

        assert_true(asprintf(&doc,
                             "name: t/rules\nservices:\n  - name: s\n    command: [x]\n"
                             "    tolerate: [%s]\n    attestation:\n%s",
                             tolerate, rules) > 0);
        p = load(doc);
        free(doc);
        return p;
}

/* A verified result with the given claims (JSON object text), TCB status and advisories. */
static void make_result(struct attest_result *r, bool valid, const char *claims,
                        const char *tcb_status, const char *advisories)
{
        json_error_t err;

        assert_int_equal(attest_result_init(r).code, 0);
        r->valid = valid;
        json_decref(r->claims);
        r->claims = json_loads(claims, 0, &err);
        if (r->claims == NULL) {
                print_message("claims: %s\n", err.text);
        }
        assert_non_null(r->claims);
        json_decref(r->advisories);
        r->advisories = json_loads(advisories ? advisories : "[]", 0, &err);
        assert_non_null(r->advisories);
        snprintf(r->tcb_status, sizeof(r->tcb_status), "%s", tcb_status ? tcb_status : "");
}

static const struct attest_check *find_opt(const struct attest_checks *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++) {
                if (strcmp(l->items[i].name, name) == 0) {
                        return &l->items[i];
                }
        }
        return NULL;
}

/* The check of that name; a missing one ends the test (callers dereference the result). */
static const struct attest_check *find(const struct attest_checks *l, const char *name)
{
        const struct attest_check *c = find_opt(l, name);

        if (c == NULL) {
                fail_msg("no check named %s", name);
                abort(); /* not reached */
        }
        return c;
}

static void dump(const struct attest_checks *l)
{
        for (size_t i = 0; i < l->n; i++) {
                print_message("  %s %s: expected '%s', actual '%s'\n",
                              l->items[i].ok ? "ok  " : "FAIL", l->items[i].name,
                              l->items[i].expected, l->items[i].actual);
        }
}

/* Evaluates and asserts the decision; when check is not NULL, asserts that this check exists
 * with ok == check_ok. */
static void expect(const struct policy *p, enum attest_platform platform,
                   const struct attest_result *res, int64_t now, bool granted, const char *check,
                   bool check_ok)
{
        struct attest_checks l;
        const struct attest_check *c;
        bool got;

        attest_checks_init(&l);
        got = policy_service_evaluate(&p->services[0], platform, res, now, &l);
        c = check != NULL ? find(&l, check) : NULL;
        if (got != granted || (check != NULL && (c == NULL || c->ok != check_ok))) {
                print_message("expected granted=%d and %s=%d; got granted=%d:\n", granted,
                              check ? check : "-", check_ok, got);
                dump(&l);
        }
        assert_int_equal(got, granted);
        if (check != NULL) {
                assert_non_null(c);
                assert_int_equal(c->ok, check_ok);
        }
        /* A grant never comes with a failure of the matching rule's own checks; a refusal
         * always has some failed check to explain it. */
        if (!granted) {
                assert_true(attest_checks_failed(&l) > 0);
        }
        attest_checks_done(&l);
}

/* ---- SGX ------------------------------------------------------------------------------- */

#define SGX_CLAIMS(mrenclave, isvprodid, isvsvn, debug)                                            \
        "{\"quote_version\": 3, \"mrenclave\": \"" mrenclave "\", \"mrsigner\": \"" B64            \
        "\", \"isvprodid\": " #isvprodid ", \"isvsvn\": " #isvsvn ", \"debug\": " debug            \
        ", \"report_data\": \"00\"}"

static void test_sgx_mrenclave(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p = load_rules(
            "      - platform: sgx\n        mrenclave: [\"" B64 "\", \"" A64 "\"]\n", "");
        struct attest_result ok, other;

        (void)state;
        make_result(&ok, true, SGX_CLAIMS(A64, 1, 1, "false"), "UpToDate", NULL);
        make_result(&other, true, SGX_CLAIMS(B64 "", 1, 1, "false"), "UpToDate", NULL);
        expect(p, ATTEST_SGX, &ok, 0, true, "rule[0].mrenclave", true);
        expect(p, ATTEST_SGX, &ok, 0, true, "rule[0].tcb_status", true);
        expect(p, ATTEST_SGX, &ok, 0, true, "rule[0].advisories", true);
        expect(p, ATTEST_SGX, &ok, 0, true, "rule[0].debug", true);
        json_object_set_new(other.claims, "mrenclave", json_string(C96));
        expect(p, ATTEST_SGX, &other, 0, false, "rule[0].mrenclave", false);
        json_object_del(other.claims, "mrenclave");
        expect(p, ATTEST_SGX, &other, 0, false, "rule[0].mrenclave", false);
        /* An sgx rule says nothing about other platforms. */
        expect(p, ATTEST_TDX, &ok, 0, false, "rules.platform", false);
        attest_result_done(&ok);
        attest_result_done(&other);
}

static void test_sgx_mrsigner(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p = load_rules("      - platform: sgx\n        mrsigner: \"" B64
                                      "\"\n        isvprodid: 3\n        min_isvsvn: 5\n",
                                      "");
        struct attest_result r;

        (void)state;
        make_result(&r, true, SGX_CLAIMS(A64, 3, 5, "false"), "UpToDate", NULL);
        expect(p, ATTEST_SGX, &r, 0, true, "rule[0].min_isvsvn", true); /* equal */
        json_object_set_new(r.claims, "isvsvn", json_integer(6));
        expect(p, ATTEST_SGX, &r, 0, true, "rule[0].min_isvsvn", true); /* above */
        json_object_set_new(r.claims, "isvsvn", json_integer(4));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].min_isvsvn", false); /* below */
        json_object_set_new(r.claims, "isvsvn", json_integer(5));
        json_object_set_new(r.claims, "isvprodid", json_integer(4));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].isvprodid", false);
        json_object_set_new(r.claims, "isvprodid", json_integer(2));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].isvprodid", false);
        json_object_set_new(r.claims, "isvprodid", json_integer(3));
        expect(p, ATTEST_SGX, &r, 0, true, "rule[0].isvprodid", true);
        json_object_set_new(r.claims, "mrsigner", json_string(A64));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].mrsigner", false);
        json_object_set_new(r.claims, "mrsigner", json_string(B64));
        json_object_set_new(r.claims, "isvsvn", json_string("5")); /* wrong type: fail closed */
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].min_isvsvn", false);
        attest_result_done(&r);
}

static void test_sgx_default_min_isvsvn(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p =
            load_rules("      - {platform: sgx, mrsigner: \"" B64 "\", isvprodid: 0}\n", "");
        struct attest_result r;

        (void)state;
        make_result(&r, true, SGX_CLAIMS(A64, 0, 0, "false"), "UpToDate", NULL);
        expect(p, ATTEST_SGX, &r, 0, true, "rule[0].min_isvsvn", true);
        attest_result_done(&r);
}

/* ---- TCB status and advisories --------------------------------------------------------- */

static void test_tcb_status_until(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p =
            load_rules("      - platform: sgx\n        mrenclave: [\"" A64 "\"]\n"
                       "        tcb_status: [UpToDate, {status: SWHardeningNeeded, until: "
                       "\"2026-12-31T00:00:00Z\"}]\n",
                       "");
        CF_CLEANUP(policy_freep)
        struct policy *dflt = load_rules("      - {platform: sgx, mrenclave: [\"" A64 "\"]}\n", "");
        struct attest_result r;

        (void)state;
        assert_int_equal(at("2026-12-31T00:00:00Z"), T_DEC);
        make_result(&r, true, SGX_CLAIMS(A64, 1, 1, "false"), "SWHardeningNeeded", NULL);
        expect(p, ATTEST_SGX, &r, T_DEC - 1, true, "rule[0].tcb_status", true);
        expect(p, ATTEST_SGX, &r, T_DEC, true, "rule[0].tcb_status", true);
        expect(p, ATTEST_SGX, &r, T_DEC + 1, false, "rule[0].tcb_status", false);
        /* UpToDate has no date: accepted at any time. */
        snprintf(r.tcb_status, sizeof(r.tcb_status), "UpToDate");
        expect(p, ATTEST_SGX, &r, T_DEC + 100000000, true, "rule[0].tcb_status", true);
        /* Statuses not listed are refused. */
        snprintf(r.tcb_status, sizeof(r.tcb_status), "ConfigurationNeeded");
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].tcb_status", false);
        snprintf(r.tcb_status, sizeof(r.tcb_status), "Revoked");
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].tcb_status", false);
        snprintf(r.tcb_status, sizeof(r.tcb_status), "NoMatchingLevel");
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].tcb_status", false);
        /* No TCB Info in the collateral: not evaluated, refused. */
        r.tcb_status[0] = '\0';
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].tcb_status", false);
        /* The default is UpToDate only. */
        snprintf(r.tcb_status, sizeof(r.tcb_status), "UpToDate");
        expect(dflt, ATTEST_SGX, &r, 0, true, "rule[0].tcb_status", true);
        snprintf(r.tcb_status, sizeof(r.tcb_status), "SWHardeningNeeded");
        expect(dflt, ATTEST_SGX, &r, 0, false, "rule[0].tcb_status", false);
        attest_result_done(&r);
}

static void test_outdated_tcb_tolerated(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p =
            load_rules("      - {platform: sgx, mrenclave: [\"" A64 "\"]}\n", "outdated_tcb");
        struct attest_result r;

        (void)state;
        make_result(&r, true, SGX_CLAIMS(A64, 1, 1, "false"), "OutOfDate", NULL);
        expect(p, ATTEST_SGX, &r, 0, true, "rule[0].tcb_status", true);
        snprintf(r.tcb_status, sizeof(r.tcb_status), "OutOfDateConfigurationNeeded");
        expect(p, ATTEST_SGX, &r, 0, true, "rule[0].tcb_status", true);
        /* Other statuses are still governed by the list. */
        snprintf(r.tcb_status, sizeof(r.tcb_status), "SWHardeningNeeded");
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].tcb_status", false);
        attest_result_done(&r);
}

static void test_advisories_until(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p = load_rules(
            "      - platform: sgx\n        mrenclave: [\"" A64 "\"]\n"
            "        tcb_status: [SWHardeningNeeded]\n"
            "        advisories: [{id: INTEL-SA-00615, until: \"2026-06-30T00:00:00Z\"}, "
            "intel-sa-00289]\n",
            "");
        CF_CLEANUP(policy_freep)
        struct policy *none = load_rules("      - {platform: sgx, mrenclave: [\"" A64
                                         "\"], tcb_status: [SWHardeningNeeded]}\n",
                                         "");
        struct attest_result r;
        struct attest_checks l;

        (void)state;
        assert_int_equal(at("2026-06-30T00:00:00Z"), T_JUNE);
        make_result(&r, true, SGX_CLAIMS(A64, 1, 1, "false"), "SWHardeningNeeded",
                    "[\"INTEL-SA-00289\", \"INTEL-SA-00615\"]");
        expect(p, ATTEST_SGX, &r, T_JUNE - 1, true, "rule[0].advisories", true);
        expect(p, ATTEST_SGX, &r, T_JUNE, true, "rule[0].advisories", true);
        expect(p, ATTEST_SGX, &r, T_JUNE + 1, false, "rule[0].advisories", false);
        /* The refusal names the advisory and its date. */
        attest_checks_init(&l);
        assert_false(policy_service_evaluate(&p->services[0], ATTEST_SGX, &r, T_JUNE + 1, &l));
        assert_non_null(strstr(find(&l, "rule[0].advisories")->actual,
                               "not accepted: INTEL-SA-00615 (accepted only until "
                               "2026-06-30T00:00:00Z)"));
        attest_checks_done(&l);
        /* An advisory that is not listed. */
        json_array_append_new(r.advisories, json_string("INTEL-SA-00999"));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].advisories", false);
        /* By default no advisory is accepted; none present is fine. */
        expect(none, ATTEST_SGX, &r, 0, false, "rule[0].advisories", false);
        json_array_clear(r.advisories);
        expect(none, ATTEST_SGX, &r, 0, true, "rule[0].advisories", true);
        /* A malformed advisory list fails closed. */
        json_array_append_new(r.advisories, json_integer(615));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[0].advisories", false);
        attest_result_done(&r);
}

/* ---- debug ----------------------------------------------------------------------------- */

static void test_debug(void **state)
{
        static const char rules[] = "      - {platform: sgx, mrenclave: [\"" A64 "\"]}\n"
                                    "      - {platform: tdx, mrtd: [\"" C96 "\"]}\n"
                                    "      - {platform: snp, measurement: [\"" C96 "\"]}\n";
        CF_CLEANUP(policy_freep) struct policy *strict = load_rules(rules, "");
        CF_CLEANUP(policy_freep) struct policy *tol = load_rules(rules, "debug");
        struct attest_result sgx, tdx, snp;

        (void)state;
        make_result(&sgx, true, SGX_CLAIMS(A64, 1, 1, "true"), "UpToDate", NULL);
        make_result(&tdx, true, "{\"mrtd\": \"" C96 "\", \"debug\": true}", "UpToDate", NULL);
        make_result(&snp, true,
                    "{\"measurement\": \"" C96 "\", \"policy\": {\"debug\": true, \"smt\": true}}",
                    "", NULL);
        expect(strict, ATTEST_SGX, &sgx, 0, false, "rule[0].debug", false);
        expect(tol, ATTEST_SGX, &sgx, 0, true, "rule[0].debug", true);
        expect(strict, ATTEST_TDX, &tdx, 0, false, "rule[1].debug", false);
        expect(tol, ATTEST_TDX, &tdx, 0, true, "rule[1].debug", true);
        expect(strict, ATTEST_SNP, &snp, 0, false, "rule[2].debug", false);
        expect(tol, ATTEST_SNP, &snp, 0, true, "rule[2].debug", true);
        /* Production evidence passes either way; a missing debug claim fails closed. */
        json_object_set_new(sgx.claims, "debug", json_false());
        expect(strict, ATTEST_SGX, &sgx, 0, true, "rule[0].debug", true);
        json_object_del(sgx.claims, "debug");
        expect(tol, ATTEST_SGX, &sgx, 0, false, "rule[0].debug", false);
        json_object_del(json_object_get(snp.claims, "policy"), "debug");
        expect(tol, ATTEST_SNP, &snp, 0, false, "rule[2].debug", false);
        attest_result_done(&sgx);
        attest_result_done(&tdx);
        attest_result_done(&snp);
}

/* ---- TDX ------------------------------------------------------------------------------- */

static void test_tdx_each_register(void **state)
{
        static const char *const regs[] = {"mrtd",  "rtmr0",      "rtmr1",  "rtmr2",
                                           "rtmr3", "mrconfigid", "mrowner"};
        (void)state;
        for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
                char rule[512], name[64];
                struct attest_result r;
                struct policy *p;
                snprintf(rule, sizeof(rule),
                         "      - {platform: tdx, %s: [\"" D96 "\", \"" C96 "\"]}\n", regs[i]);
                p = load_rules(rule, "");
                /* Every register holds C96: only the listed one is compared. */
                make_result(&r, true,
                            "{\"mrtd\": \"" C96 "\", \"rtmr0\": \"" C96 "\", \"rtmr1\": \"" C96
                            "\", \"rtmr2\": \"" C96 "\", \"rtmr3\": \"" C96
                            "\", \"mrconfigid\": \"" C96 "\", \"mrowner\": \"" C96
                            "\", \"debug\": false}",
                            "UpToDate", NULL);
                snprintf(name, sizeof(name), "rule[0].%s", regs[i]);
                expect(p, ATTEST_TDX, &r, 0, true, name, true);
                json_object_set_new(r.claims, regs[i], json_string(A64 A64));
                expect(p, ATTEST_TDX, &r, 0, false, name, false);
                /* Another register changing does not matter. */
                json_object_set_new(r.claims, regs[i], json_string(D96));
                json_object_set_new(r.claims, regs[(i + 1) % 7], json_string(A64 A64));
                expect(p, ATTEST_TDX, &r, 0, true, name, true);
                attest_result_done(&r);
                policy_free(p);
        }
}

static void test_tdx_all_registers_must_match(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p = load_rules("      - platform: tdx\n        mrtd: [\"" C96
                                      "\"]\n        rtmr1: [\"" D96 "\"]\n"
                                      "        tcb_status: [UpToDate, OutOfDate]\n",
                                      "");
        struct attest_result r;

        (void)state;
        make_result(&r, true, "{\"mrtd\": \"" C96 "\", \"rtmr1\": \"" D96 "\", \"debug\": false}",
                    "OutOfDate", NULL);
        expect(p, ATTEST_TDX, &r, 0, true, "rule[0].rtmr1", true);
        json_object_set_new(r.claims, "rtmr1", json_string(C96));
        expect(p, ATTEST_TDX, &r, 0, false, "rule[0].rtmr1", false);
        attest_result_done(&r);
}

/* ---- SNP ------------------------------------------------------------------------------- */

#define SNP_CLAIMS                                                                                 \
        "{\"measurement\": \"" C96 "\", \"host_data\": \"" A64 "\", \"id_key_digest\": \"" D96     \
        "\", \"vmpl\": 0, "                                                                        \
        "\"policy\": {\"debug\": false, \"migration_agent\": false, \"smt\": true, "               \
        "\"single_socket\": false}, "                                                              \
        "\"reported_tcb\": {\"bootloader\": 3, \"tee\": 0, \"snp\": 8, \"microcode\": 115, "       \
        "\"raw\": \"0300000000000873\"}}"

static void test_snp_min_tcb(void **state)
{
        static const char *const comps[] = {"bootloader", "tee", "snp", "microcode"};
        static const int values[] = {3, 0, 8, 115};

        (void)state;
        for (size_t i = 0; i < 4; i++) {
                char rule[512], name[64];
                struct attest_result r;
                struct policy *p;
                /* Equal: accepted. */
                snprintf(rule, sizeof(rule),
                         "      - {platform: snp, measurement: [\"" C96 "\"], min_tcb: {%s: %d}}\n",
                         comps[i], values[i]);
                p = load_rules(rule, "");
                make_result(&r, true, SNP_CLAIMS, "", NULL);
                snprintf(name, sizeof(name), "rule[0].min_tcb.%s", comps[i]);
                expect(p, ATTEST_SNP, &r, 0, true, name, true);
                policy_free(p);
                /* One above the evidence: refused. */
                snprintf(rule, sizeof(rule),
                         "      - {platform: snp, measurement: [\"" C96 "\"], min_tcb: {%s: %d}}\n",
                         comps[i], values[i] + 1);
                p = load_rules(rule, "");
                expect(p, ATTEST_SNP, &r, 0, false, name, false);
                policy_free(p);
                attest_result_done(&r);
        }
}

static void test_snp_fmc(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *zero = load_rules(
            "      - {platform: snp, measurement: [\"" C96 "\"], min_tcb: {fmc: 0}}\n", "");
        CF_CLEANUP(policy_freep)
        struct policy *one = load_rules(
            "      - {platform: snp, measurement: [\"" C96 "\"], min_tcb: {fmc: 1}}\n", "");
        struct attest_result r;

        (void)state;
        /* Milan/Genoa reports have no FMC: only a minimum of 0 holds. */
        make_result(&r, true, SNP_CLAIMS, "", NULL);
        expect(zero, ATTEST_SNP, &r, 0, true, "rule[0].min_tcb.fmc", true);
        expect(one, ATTEST_SNP, &r, 0, false, "rule[0].min_tcb.fmc", false);
        json_object_set_new(json_object_get(r.claims, "reported_tcb"), "fmc", json_integer(1));
        expect(one, ATTEST_SNP, &r, 0, true, "rule[0].min_tcb.fmc", true);
        json_object_set_new(json_object_get(r.claims, "reported_tcb"), "fmc", json_integer(0));
        expect(one, ATTEST_SNP, &r, 0, false, "rule[0].min_tcb.fmc", false);
        attest_result_done(&r);
}

static void test_snp_policy_bits(void **state)
{
        static const char *const bits[] = {"migration_agent", "smt", "single_socket", "debug"};

        (void)state;
        for (size_t i = 0; i < 4; i++) {
                char rule[512], name[64];
                struct attest_result r;
                struct policy *req, *forb;
                const char *tol = strcmp(bits[i], "debug") == 0 ? "debug" : "";
                snprintf(rule, sizeof(rule),
                         "      - {platform: snp, measurement: [\"" C96
                         "\"], policy: {%s: true}}\n",
                         bits[i]);
                req = load_rules(rule, tol);
                snprintf(rule, sizeof(rule),
                         "      - {platform: snp, measurement: [\"" C96
                         "\"], policy: {%s: false}}\n",
                         bits[i]);
                forb = load_rules(rule, tol);
                snprintf(name, sizeof(name), "rule[0].policy.%s", bits[i]);
                make_result(&r, true, SNP_CLAIMS, "", NULL);
                json_object_set_new(json_object_get(r.claims, "policy"), bits[i], json_true());
                expect(req, ATTEST_SNP, &r, 0, true, name, true);
                expect(forb, ATTEST_SNP, &r, 0, false, name, false);
                json_object_set_new(json_object_get(r.claims, "policy"), bits[i], json_false());
                expect(req, ATTEST_SNP, &r, 0, false, name, false);
                expect(forb, ATTEST_SNP, &r, 0, true, name, true);
                json_object_del(json_object_get(r.claims, "policy"), bits[i]);
                expect(req, ATTEST_SNP, &r, 0, false, name, false);
                expect(forb, ATTEST_SNP, &r, 0, false, name, false);
                attest_result_done(&r);
                policy_free(req);
                policy_free(forb);
        }
}

static void test_snp_values_and_vmpl(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p =
            load_rules("      - platform: snp\n        measurement: [\"" D96 "\", \"" C96
                       "\"]\n        host_data: [\"" A64 "\"]\n        id_key_digest: [\"" D96
                       "\"]\n        vmpl: [0, 2]\n",
                       "");
        struct attest_result r;

        (void)state;
        make_result(&r, true, SNP_CLAIMS, "", NULL);
        expect(p, ATTEST_SNP, &r, 0, true, "rule[0].measurement", true);
        expect(p, ATTEST_SNP, &r, 0, true, "rule[0].vmpl", true);
        json_object_set_new(r.claims, "vmpl", json_integer(2));
        expect(p, ATTEST_SNP, &r, 0, true, "rule[0].vmpl", true);
        json_object_set_new(r.claims, "vmpl", json_integer(1));
        expect(p, ATTEST_SNP, &r, 0, false, "rule[0].vmpl", false);
        json_object_set_new(r.claims, "vmpl", json_integer(3));
        expect(p, ATTEST_SNP, &r, 0, false, "rule[0].vmpl", false);
        json_object_set_new(r.claims, "vmpl", json_integer(0));
        json_object_set_new(r.claims, "host_data", json_string(B64));
        expect(p, ATTEST_SNP, &r, 0, false, "rule[0].host_data", false);
        json_object_set_new(r.claims, "host_data", json_string(A64));
        json_object_set_new(r.claims, "id_key_digest", json_string(C96));
        expect(p, ATTEST_SNP, &r, 0, false, "rule[0].id_key_digest", false);
        json_object_set_new(r.claims, "id_key_digest", json_string(D96));
        json_object_set_new(r.claims, "measurement", json_string(A64 A64));
        expect(p, ATTEST_SNP, &r, 0, false, "rule[0].measurement", false);
        json_object_set_new(r.claims, "measurement", json_string(D96));
        expect(p, ATTEST_SNP, &r, 0, true, "rule[0].measurement", true);
        /* Intel's TCB status is not consulted for SNP. */
        snprintf(r.tcb_status, sizeof(r.tcb_status), "OutOfDate");
        expect(p, ATTEST_SNP, &r, 0, true, NULL, false);
        attest_result_done(&r);
}

/* ---- sim, invalid evidence, several rules ---------------------------------------------- */

static void test_sim_matches_cofferd(void **state)
{
        static const char rules[] = "      - {platform: sim, measurement: [\"" A64 "\"]}\n";
        CF_CLEANUP(policy_freep) struct policy *tol = load_rules(rules, "simulation");
        CF_CLEANUP(policy_freep) struct policy *strict = load_rules(rules, "");
        struct attest_result r;
        struct attest_checks l;

        (void)state;
        make_result(&r, true, "{\"measurement\": \"" A64 "\", \"report_data\": \"00\"}", "", NULL);
        expect(tol, ATTEST_SIM, &r, 0, true, "rule[0].measurement", true);
        expect(tol, ATTEST_SIM, &r, 0, true, "tolerate.simulation", true);
        expect(strict, ATTEST_SIM, &r, 0, false, "tolerate.simulation", false);
        /* The texts cofferd's own evaluation produced. */
        attest_checks_init(&l);
        assert_false(policy_service_evaluate(&strict->services[0], ATTEST_SIM, &r, 0, &l));
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].name, "rule[0].measurement");
        assert_string_equal(l.items[0].expected, "one of the 1 measurement of the rule");
        assert_string_equal(l.items[0].actual, A64);
        assert_string_equal(l.items[1].name, "tolerate.simulation");
        assert_string_equal(l.items[1].expected, "tolerate: [simulation]");
        assert_string_equal(l.items[1].actual, "not tolerated by the policy");
        attest_checks_done(&l);
        json_object_set_new(r.claims, "measurement", json_string(B64));
        expect(tol, ATTEST_SIM, &r, 0, false, "rule[0].measurement", false);
        attest_result_done(&r);
}

static void test_invalid_evidence(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p = load_rules("      - {platform: sgx, mrenclave: [\"" A64 "\"]}\n", "");
        struct attest_result r;
        struct attest_checks l;

        (void)state;
        make_result(&r, false, SGX_CLAIMS(A64, 1, 1, "false"), "UpToDate", NULL);
        attest_checks_init(&l);
        assert_false(policy_service_evaluate(&p->services[0], ATTEST_SGX, &r, 0, &l));
        assert_int_equal(l.n, 1);
        assert_string_equal(l.items[0].name, "evidence.valid");
        assert_false(l.items[0].ok);
        attest_checks_done(&l);
        /* NULL arguments fail closed. */
        r.valid = true;
        attest_checks_init(&l);
        assert_false(policy_service_evaluate(NULL, ATTEST_SGX, &r, 0, &l));
        assert_false(policy_service_evaluate(&p->services[0], ATTEST_SGX, NULL, 0, &l));
        assert_false(policy_service_evaluate(&p->services[0], ATTEST_SGX, &r, 0, NULL));
        assert_true(policy_service_evaluate(&p->services[0], ATTEST_SGX, &r, 0, &l));
        attest_checks_done(&l);
        attest_result_done(&r);
}

static void test_multiple_rules(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p = load_rules("      - {platform: sgx, mrenclave: [\"" B64 "\"]}\n"
                                      "      - {platform: sim, measurement: [\"" A64 "\"]}\n"
                                      "      - {platform: sgx, mrenclave: [\"" A64 "\"]}\n"
                                      "      - {platform: sgx, mrenclave: [\"" A64 "\"]}\n",
                                      "");
        struct attest_result r;
        struct attest_checks l;

        (void)state;
        make_result(&r, true, SGX_CLAIMS(A64, 1, 1, "false"), "UpToDate", NULL);
        attest_checks_init(&l);
        assert_true(policy_service_evaluate(&p->services[0], ATTEST_SGX, &r, 0, &l));
        assert_false(find(&l, "rule[0].mrenclave")->ok);
        assert_null(find_opt(&l, "rule[1].measurement")); /* another platform */
        assert_true(find(&l, "rule[2].mrenclave")->ok);
        assert_null(find_opt(&l, "rule[3].mrenclave")); /* not needed after a match */
        assert_null(find_opt(&l, "rules.platform"));
        attest_checks_done(&l);
        /* None matches. */
        json_object_set_new(r.claims, "mrenclave", json_string(D96));
        expect(p, ATTEST_SGX, &r, 0, false, "rule[3].mrenclave", false);
        attest_result_done(&r);
}

static void test_no_rule_for_platform(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p =
            load_rules("      - {platform: sim, measurement: [\"" A64 "\"]}\n", "simulation");
        struct attest_result r;

        (void)state;
        make_result(&r, true, "{\"measurement\": \"" C96 "\"}", "", NULL);
        expect(p, ATTEST_SNP, &r, 0, false, "rules.platform", false);
        expect(p, (enum attest_platform)99, &r, 0, false, "rules.platform", false);
        attest_result_done(&r);
}

/* ---- shared vectors: verifier claims -> rules ------------------------------------------ */

static bool is_certificate(const char *path)
{
        size_t n = strlen(path);

        return (n > 4 && (strcmp(path + n - 4, ".pem") == 0 || strcmp(path + n - 4, ".der") == 0 ||
                          strcmp(path + n - 4, ".cer") == 0));
}

static const char *cstr(const json_t *claims, const char *key)
{
        const char *s = json_string_value(json_object_get(claims, key));

        assert_non_null(s);
        return s;
}

static json_int_t cint(const json_t *o, const char *key)
{
        const json_t *j = json_object_get(o, key);

        assert_true(json_is_integer(j));
        return json_integer_value(j);
}

/* tcb_status and advisories accepting exactly what the evidence has; false when its status
 * can never be accepted (then the rule must refuse). */
static bool intel_accepts(struct cf_buf *b, const struct attest_result *res)
{
        bool acceptable = strcmp(res->tcb_status, "Revoked") != 0 &&
                          strcmp(res->tcb_status, "NoMatchingLevel") != 0 &&
                          res->tcb_status[0] != '\0';
        size_t i;
        json_t *a;

        assert_int_equal(cf_buf_printf(b, "        tcb_status: [%s]\n",
                                       acceptable ? res->tcb_status : "UpToDate")
                             .code,
                         0);
        assert_int_equal(cf_buf_printf(b, "        advisories: [").code, 0);
        json_array_foreach(res->advisories, i, a)
        {
                assert_int_equal(cf_buf_printf(b, "%s%s", i ? ", " : "", json_string_value(a)).code,
                                 0);
        }
        assert_int_equal(cf_buf_printf(b, "]\n").code, 0);
        return acceptable;
}

enum variant { V_SKIP, V_POSITIVE, V_NEGATIVE };

/* Builds one rule from the claims. Variant 0 (and 3 for sgx) accepts what the evidence has;
 * the others change one value, and *ret_check names the check that must then fail. */
static enum variant build_rule(const char *platform, const struct attest_result *res, int mutate,
                               struct cf_buf *b, const char **ret_check, bool *ret_acceptable)
{
        const json_t *c = res->claims;
        char first[97];

        *ret_check = NULL;
        if (strcmp(platform, "sgx") == 0) {
                if (mutate == 0 || mutate == 1) {
                        snprintf(first, sizeof(first), "%s", cstr(c, "mrenclave"));
                        if (mutate == 1) {
                                first[0] = first[0] == '0' ? '1' : '0';
                                *ret_check = "rule[0].mrenclave";
                        }
                        assert_int_equal(
                            cf_buf_printf(b, "      - platform: sgx\n        mrenclave: [\"%s\"]\n",
                                          first)
                                .code,
                            0);
                } else if (mutate == 2 || mutate == 3) {
                        /* The signer form, with min_isvsvn one above the evidence or equal. */
                        json_int_t svn = cint(c, "isvsvn") + (mutate == 2);
                        if (svn > UINT16_MAX) {
                                return V_SKIP;
                        }
                        *ret_check = mutate == 2 ? "rule[0].min_isvsvn" : NULL;
                        assert_int_equal(cf_buf_printf(b,
                                                       "      - platform: sgx\n"
                                                       "        mrsigner: \"%s\"\n"
                                                       "        isvprodid: %lld\n"
                                                       "        min_isvsvn: %lld\n",
                                                       cstr(c, "mrsigner"),
                                                       (long long)cint(c, "isvprodid"),
                                                       (long long)svn)
                                             .code,
                                         0);
                } else {
                        return V_SKIP;
                }
                *ret_acceptable = intel_accepts(b, res);
                return *ret_check != NULL ? V_NEGATIVE : V_POSITIVE;
        }
        if (strcmp(platform, "tdx") == 0) {
                static const char *const regs[] = {"mrtd",  "rtmr0",      "rtmr1",  "rtmr2",
                                                   "rtmr3", "mrconfigid", "mrowner"};
                static const char *const checks[] = {
                    "rule[0].mrtd",  "rule[0].rtmr0",      "rule[0].rtmr1",  "rule[0].rtmr2",
                    "rule[0].rtmr3", "rule[0].mrconfigid", "rule[0].mrowner"};
                if (mutate > 7) {
                        return V_SKIP;
                }
                assert_int_equal(cf_buf_printf(b, "      - platform: tdx\n").code, 0);
                for (size_t i = 0; i < 7; i++) {
                        snprintf(first, sizeof(first), "%s", cstr(c, regs[i]));
                        if (mutate == (int)i + 1) {
                                first[95] = first[95] == '0' ? '1' : '0';
                                *ret_check = checks[i];
                        }
                        assert_int_equal(
                            cf_buf_printf(b, "        %s: [\"%s\"]\n", regs[i], first).code, 0);
                }
                *ret_acceptable = intel_accepts(b, res);
                return *ret_check != NULL ? V_NEGATIVE : V_POSITIVE;
        }
        const json_t *tcb = json_object_get(c, "reported_tcb");
        const json_t *pol = json_object_get(c, "policy");
        json_int_t ucode = cint(tcb, "microcode") + (mutate == 2);
        if (mutate > 3 || ucode > UINT8_MAX) {
                return V_SKIP;
        }
        snprintf(first, sizeof(first), "%s", cstr(c, "measurement"));
        if (mutate == 1) {
                first[10] = first[10] == 'f' ? 'e' : 'f';
                *ret_check = "rule[0].measurement";
        } else if (mutate == 2) {
                *ret_check = "rule[0].min_tcb.microcode";
        } else if (mutate == 3) {
                *ret_check = "rule[0].policy.smt";
        }
        assert_int_equal(cf_buf_printf(b,
                                       "      - platform: snp\n        measurement: [\"%s\"]\n"
                                       "        host_data: [\"%s\"]\n"
                                       "        id_key_digest: [\"%s\"]\n"
                                       "        vmpl: [%lld]\n"
                                       "        min_tcb: {bootloader: %lld, tee: %lld, "
                                       "snp: %lld, microcode: %lld",
                                       first, cstr(c, "host_data"), cstr(c, "id_key_digest"),
                                       (long long)cint(c, "vmpl"),
                                       (long long)cint(tcb, "bootloader"),
                                       (long long)cint(tcb, "tee"), (long long)cint(tcb, "snp"),
                                       (long long)ucode)
                             .code,
                         0);
        if (json_object_get(tcb, "fmc") != NULL) {
                assert_int_equal(cf_buf_printf(b, ", fmc: %lld", (long long)cint(tcb, "fmc")).code,
                                 0);
        }
        assert_int_equal(
            cf_buf_printf(
                b,
                "}\n        policy: {debug: %s, migration_agent: %s, smt: %s, single_socket: %s}\n",
                json_is_true(json_object_get(pol, "debug")) ? "true" : "false",
                json_is_true(json_object_get(pol, "migration_agent")) ? "true" : "false",
                json_is_true(json_object_get(pol, "smt")) != (mutate == 3) ? "true" : "false",
                json_is_true(json_object_get(pol, "single_socket")) ? "true" : "false")
                .code,
            0);
        *ret_acceptable = true;
        return *ret_check != NULL ? V_NEGATIVE : V_POSITIVE;
}

/* The positive variant: every check of rule[0] passes, except tcb_status when Intel's status
 * can never be accepted (then the service is refused). */
static void expect_positive(const struct vec_row *row, const struct policy *p,
                            enum attest_platform platform, const struct attest_result *res,
                            bool acceptable)
{
        struct attest_checks l;
        bool granted;

        attest_checks_init(&l);
        granted = policy_service_evaluate(&p->services[0], platform, res, row->verify_at, &l);
        if (granted != acceptable) {
                print_message("%s:\n", row->case_id);
                dump(&l);
        }
        assert_int_equal(granted, acceptable);
        for (size_t i = 0; i < l.n; i++) {
                if (strcmp(l.items[i].name, "rule[0].tcb_status") != 0 && !l.items[i].ok) {
                        print_message("%s: %s failed\n", row->case_id, l.items[i].name);
                        dump(&l);
                        fail();
                }
        }
        attest_checks_done(&l);
}

static void run_vector_row(const struct vec_row *row, size_t *n_rows, size_t *n_evals)
{
        uint8_t *ev = NULL;
        size_t ev_size = 0;
        struct attest_collateral coll;
        struct attest_result res;
        enum attest_platform platform;
        bool debug;
        cf_status s;

        attest_collateral_init(&coll);
        assert_true(vec_load_case(row, &ev, &ev_size, &coll));
        assert_int_equal(attest_result_init(&res).code, 0);
        if (strcmp(row->platform, "snp") == 0) {
                struct snp_options opt = {.now = row->verify_at, .expected_stepping = -1};
                platform = ATTEST_SNP;
                s = snp_verify(cf_slice_make(ev, ev_size), &coll, &opt, &res);
        } else {
                struct intel_options opt = {.now = row->verify_at};
                platform = strcmp(row->platform, "sgx") == 0 ? ATTEST_SGX : ATTEST_TDX;
                s = intel_verify(cf_slice_make(ev, ev_size), &coll, &opt, &res);
        }
        (void)s; /* NoMatchingLevel rows are valid, yet their status is CF_E_TCB */
        if (!res.valid) {
                print_message("%s: not valid\n", row->case_id);
        }
        assert_true(res.valid);
        debug = json_is_true(json_object_get(res.claims, "debug")) ||
                json_is_true(json_object_get(json_object_get(res.claims, "policy"), "debug"));
        for (int mutate = 0; mutate <= 7; mutate++) {
                struct cf_buf b;
                const char *check = NULL;
                bool acceptable = false;
                enum variant kind;
                struct policy *p;
                char *doc = NULL;
                cf_buf_init(&b, 1 << 16, false);
                kind = build_rule(row->platform, &res, mutate, &b, &check, &acceptable);
                if (kind == V_SKIP) {
                        cf_buf_done(&b);
                        continue;
                }
                assert_true(asprintf(&doc,
                                     "name: t/vectors\nservices:\n  - name: s\n    command: [x]\n"
                                     "    tolerate: [%s]\n    attestation:\n%s",
                                     debug ? "debug" : "", (const char *)b.ptr) > 0);
                cf_buf_done(&b);
                p = load(doc);
                free(doc);
                if (kind == V_POSITIVE) {
                        expect_positive(row, p, platform, &res, acceptable);
                } else {
                        expect(p, platform, &res, row->verify_at, false, check, false);
                }
                (*n_evals)++;
                policy_free(p);
        }
        (*n_rows)++;
        attest_result_done(&res);
        attest_collateral_done(&coll);
        free(ev);
}

static void test_vectors_claims_match_rules(void **state)
{
        struct vec_row *rows;
        int n;
        size_t done = 0, evals = 0;

        (void)state;
        if (vec_dir() == NULL) {
                print_message("SKIP: COFFER_VECTORS is not set or ../shared/vectors is absent\n");
                skip();
                return;
        }
        rows = calloc(VEC_MAX_ROWS, sizeof(*rows));
        assert_non_null(rows);
        n = vec_load_rows(NULL, rows, VEC_MAX_ROWS);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
                const struct vec_row *r = &rows[i];
                if (!r->expect_valid || strcmp(r->mutation, "-") != 0 ||
                    is_certificate(r->evidence_file)) {
                        continue;
                }
                run_vector_row(r, &done, &evals);
        }
        print_message("vectors: %zu valid evidence rows, %zu evaluations\n", done, evals);
        assert_true(done > 0);
        intel_cache_clear();
        snp_cache_clear();
        free(rows);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sgx_mrenclave),
            cmocka_unit_test(test_sgx_mrsigner),
            cmocka_unit_test(test_sgx_default_min_isvsvn),
            cmocka_unit_test(test_tcb_status_until),
            cmocka_unit_test(test_outdated_tcb_tolerated),
            cmocka_unit_test(test_advisories_until),
            cmocka_unit_test(test_debug),
            cmocka_unit_test(test_tdx_each_register),
            cmocka_unit_test(test_tdx_all_registers_must_match),
            cmocka_unit_test(test_snp_min_tcb),
            cmocka_unit_test(test_snp_fmc),
            cmocka_unit_test(test_snp_policy_bits),
            cmocka_unit_test(test_snp_values_and_vmpl),
            cmocka_unit_test(test_sim_matches_cofferd),
            cmocka_unit_test(test_invalid_evidence),
            cmocka_unit_test(test_multiple_rules),
            cmocka_unit_test(test_no_rule_for_platform),
            cmocka_unit_test(test_vectors_claims_match_rules),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
