/* Evaluation of a service's attestation rules against verified evidence
 * (policy_service_evaluate in policy.h; the rule keys are described in docs/policy.md).
 *
 * The evaluator reads only the claims the verifiers publish (flat keys for sim, SGX and TDX;
 * for SNP the nested objects "policy" and "reported_tcb"), so it never touches evidence bytes.
 * Every decision is one check with the expected and the actual value, because the point of
 * the check list is that a refused user can see which value to fix. Anything missing or of
 * an unexpected type in the claims fails its check: the evaluator fails closed. */
#include "policy/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/codec.h"

/* Room for one expected/actual text: attest_checks_add cuts longer values anyway. */
#define TEXT_SIZE (ATTEST_CHECK_VALUE_MAX + 1)
/* "rule[15].min_tcb.microcode" and the like. */
#define CHECK_NAME_SIZE 64
/* cf_format_rfc3339 output. */
#define DATE_SIZE 32

struct text {
        char s[TEXT_SIZE];
        size_t n;
};

/* Appends to t; a text that does not fit ends in "..." so it is never mistaken for a
 * complete value. */
static __attribute__((format(printf, 2, 3))) void tadd(struct text *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (t->n + 1 >= sizeof(t->s)) {
                return;
        }
        va_start(ap, fmt);
        n = vsnprintf(t->s + t->n, sizeof(t->s) - t->n, fmt, ap);
        va_end(ap);
        if (n < 0) {
                return;
        }
        if ((size_t)n >= sizeof(t->s) - t->n) {
                t->n = sizeof(t->s) - 1;
                memcpy(t->s + sizeof(t->s) - 4, "...", 4);
                return;
        }
        t->n += (size_t)n;
}

struct ectx {
        const struct policy_service *svc;
        const struct attest_result *res;
        int64_t now;
        struct attest_checks *out;
        size_t rule;  /* index of the rule being evaluated */
        bool rule_ok; /* every check of that rule has passed so far */
        bool failed;  /* a check could not be recorded: the decision must be false */
};

static void record(struct ectx *e, const char *name, bool ok, const char *expected,
                   const char *actual)
{
        if (!cf_ok(attest_checks_add(e->out, name, ok, expected, actual))) {
                e->failed = true;
        }
}

/* One check of the current rule, named "rule[i].<key>". */
static void add(struct ectx *e, const char *key, bool ok, const char *expected, const char *actual)
{
        /* The prefix with the widest index, plus a key built in a CHECK_NAME_SIZE buffer:
         * the name is never truncated. */
        char name[sizeof("rule[18446744073709551615].") + CHECK_NAME_SIZE];

        snprintf(name, sizeof(name), "rule[%zu].%s", e->rule, key);
        record(e, name, ok, expected, actual);
        e->rule_ok = e->rule_ok && ok;
}

static json_t *claim(const struct ectx *e, const char *key)
{
        return json_object_get(e->res->claims, key);
}

/* A member of a nested claim object ("policy", "reported_tcb"); NULL when absent. */
static json_t *claim_in(const struct ectx *e, const char *obj, const char *key)
{
        json_t *o = claim(e, obj);

        return json_is_object(o) ? json_object_get(o, key) : NULL;
}

static void format_date(int64_t t, char out[DATE_SIZE])
{
        cf_format_rfc3339(t, out, DATE_SIZE);
}

/* ---- value checks ---------------------------------------------------------------------- */

/* The claim (a lower-case hex string) must equal one of the listed values. */
static void check_hex(struct ectx *e, const char *key, json_t *c, const char *const *values,
                      size_t n)
{
        const char *actual = json_is_string(c) ? json_string_value(c) : NULL;
        struct text exp = {0};
        bool ok = false;

        for (size_t i = 0; actual != NULL && i < n && !ok; i++) {
                ok = strcmp(values[i], actual) == 0;
        }
        if (n == 1) {
                tadd(&exp, "%s", values[0]);
        } else {
                tadd(&exp, "one of %zu values:", n);
                for (size_t i = 0; i < n; i++) {
                        tadd(&exp, " %s", values[i]);
                }
        }
        add(e, key, ok, exp.s, actual != NULL ? actual : "absent from the evidence");
}

static void check_values(struct ectx *e, const char *key, const struct policy_values *v)
{
        if (v->n > 0) {
                check_hex(e, key, claim(e, key), (const char *const *)v->items, v->n);
        }
}

/* The claim (an integer) must be at least min. */
static void check_min(struct ectx *e, const char *key, json_t *c, unsigned min, bool absent_ok)
{
        struct text exp = {0}, act = {0};
        bool ok;

        tadd(&exp, ">= %u", min);
        if (json_is_integer(c)) {
                ok = json_integer_value(c) >= (json_int_t)min;
                tadd(&act, "%lld", (long long)json_integer_value(c));
        } else {
                /* Only a minimum of 0 holds for a component the product does not have. */
                ok = c == NULL && absent_ok && min == 0;
                tadd(&act, "absent from the evidence");
        }
        add(e, key, ok, exp.s, act.s);
}

/* Debug evidence: the host can read the TEE's memory, so it is refused unless tolerated. */
static void check_debug(struct ectx *e, json_t *c)
{
        bool tol = e->svc->tolerate_debug;
        const char *expected = tol ? "production, or debug (tolerate: [debug])"
                                   : "production (debug is refused without tolerate: [debug])";

        if (!json_is_boolean(c)) {
                add(e, "debug", false, expected, "absent from the evidence");
                return;
        }
        add(e, "debug", !json_is_true(c) || tol, expected,
            json_is_true(c) ? (tol ? "debug, tolerated" : "debug") : "production");
}

static bool outdated(const char *status)
{
        return strcmp(status, "OutOfDate") == 0 ||
               strcmp(status, "OutOfDateConfigurationNeeded") == 0;
}

/* Lists accepted names with their until dates into t. */
static void list_accepts(struct text *t, const struct policy_accept *a, size_t n)
{
        char date[DATE_SIZE];

        for (size_t i = 0; i < n; i++) {
                tadd(t, "%s%s", i > 0 ? ", " : "", a[i].name);
                if (a[i].has_until) {
                        format_date(a[i].until, date);
                        tadd(t, " until %s", date);
                }
        }
}

/* Finds name (case-insensitively for advisory ids); *ret_expired is set when it is listed
 * but its until date has passed. */
static bool accepted(const struct ectx *e, const struct policy_accept *a, size_t n,
                     const char *name, const struct policy_accept **ret_expired)
{
        *ret_expired = NULL;
        for (size_t i = 0; i < n; i++) {
                if (strcasecmp(a[i].name, name) != 0) {
                        continue;
                }
                if (!a[i].has_until || e->now <= a[i].until) {
                        return true;
                }
                *ret_expired = &a[i];
        }
        return false;
}

static void check_tcb_status(struct ectx *e, const struct policy_rule *r)
{
        const char *status = e->res->tcb_status;
        const struct policy_accept *expired = NULL;
        struct text exp = {0}, act = {0};
        char date[DATE_SIZE];
        bool ok = false;

        tadd(&exp, "one of: ");
        list_accepts(&exp, r->tcb_status, r->n_tcb_status);
        if (e->svc->tolerate_outdated_tcb) {
                tadd(&exp, "; OutOfDate, OutOfDateConfigurationNeeded (tolerate: [outdated_tcb])");
        }
        if (status[0] == '\0') {
                tadd(&act, "not evaluated (no TCB Info in the collateral)");
        } else {
                ok = accepted(e, r->tcb_status, r->n_tcb_status, status, &expired);
                tadd(&act, "%s", status);
                if (!ok && e->svc->tolerate_outdated_tcb && outdated(status)) {
                        ok = true;
                        tadd(&act, " (tolerated: outdated_tcb)");
                } else if (!ok && expired != NULL) {
                        format_date(expired->until, date);
                        tadd(&act, " (accepted only until %s)", date);
                }
        }
        add(e, "tcb_status", ok, exp.s, act.s);
}

static void check_advisories(struct ectx *e, const struct policy_rule *r)
{
        const json_t *list = e->res->advisories;
        struct text exp = {0}, act = {0}, refused = {0};
        const struct policy_accept *expired;
        char date[DATE_SIZE];
        size_t i;
        json_t *item;
        bool ok = json_is_array(list);

        if (r->n_advisories == 0) {
                tadd(&exp, "no advisories (none accepted)");
        } else {
                tadd(&exp, "only: ");
                list_accepts(&exp, r->advisories, r->n_advisories);
        }
        if (!ok || json_array_size(list) == 0) {
                add(e, "advisories", ok, exp.s, ok ? "none" : "absent from the evidence");
                return;
        }
        json_array_foreach(list, i, item)
        {
                const char *id = json_is_string(item) ? json_string_value(item) : NULL;
                tadd(&act, "%s%s", i > 0 ? ", " : "", id != NULL ? id : "(not a string)");
                if (id != NULL && accepted(e, r->advisories, r->n_advisories, id, &expired)) {
                        continue;
                }
                ok = false;
                tadd(&refused, "%s%s", refused.n > 0 ? ", " : "", id != NULL ? id : "?");
                if (id != NULL && expired != NULL) {
                        format_date(expired->until, date);
                        tadd(&refused, " (accepted only until %s)", date);
                }
        }
        if (!ok) {
                tadd(&act, "; not accepted: %s", refused.s);
        }
        add(e, "advisories", ok, exp.s, act.s);
}

/* ---- rules per platform ---------------------------------------------------------------- */

/* The same checks, names and texts as cofferd's own sim evaluation had, so that cofferd's
 * refusals do not change when it switches to this evaluator. */
static void eval_sim(struct ectx *e, const struct policy_rule *r)
{
        const char *m = json_string_value(claim(e, "measurement"));
        char expected[256];
        bool matched = false;

        for (size_t j = 0; m != NULL && j < r->n_measurements && !matched; j++) {
                matched = strcmp(r->measurements[j], m) == 0;
        }
        /* Refusals reach unauthenticated callers: say how many values, not which. */
        snprintf(expected, sizeof(expected), "one of the %zu measurement%s of the rule",
                 r->n_measurements, r->n_measurements == 1 ? "" : "s");
        add(e, "measurement", matched, expected, m != NULL ? m : "");
}

static void eval_sgx(struct ectx *e, const struct policy_rule *r)
{
        char value[16];
        json_t *c;

        if (r->mrenclave.n > 0) {
                check_values(e, "mrenclave", &r->mrenclave);
        } else {
                const char *signer = r->mrsigner;
                struct text act = {0};
                check_hex(e, "mrsigner", claim(e, "mrsigner"), &signer, 1);
                c = claim(e, "isvprodid");
                snprintf(value, sizeof(value), "%u", (unsigned)r->isvprodid);
                if (json_is_integer(c)) {
                        tadd(&act, "%lld", (long long)json_integer_value(c));
                } else {
                        tadd(&act, "absent from the evidence");
                }
                add(e, "isvprodid", json_is_integer(c) && json_integer_value(c) == r->isvprodid,
                    value, act.s);
                check_min(e, "min_isvsvn", claim(e, "isvsvn"), r->min_isvsvn, false);
        }
        check_debug(e, claim(e, "debug"));
        check_tcb_status(e, r);
        check_advisories(e, r);
}

static void eval_tdx(struct ectx *e, const struct policy_rule *r)
{
        static const char *const rtmr[POLICY_TDX_RTMRS] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
        bool any = r->mrtd.n > 0 || r->mrconfigid.n > 0 || r->mrowner.n > 0;

        check_values(e, "mrtd", &r->mrtd);
        for (size_t i = 0; i < POLICY_TDX_RTMRS; i++) {
                any = any || r->rtmr[i].n > 0;
                check_values(e, rtmr[i], &r->rtmr[i]);
        }
        check_values(e, "mrconfigid", &r->mrconfigid);
        check_values(e, "mrowner", &r->mrowner);
        if (!any) {
                /* The parser refuses such rules; a model built by hand must not admit every
                 * TD either. */
                add(e, "mrtd", false, "a rule with at least one measurement", "none in the rule");
        }
        check_debug(e, claim(e, "debug"));
        check_tcb_status(e, r);
        check_advisories(e, r);
}

static void eval_snp(struct ectx *e, const struct policy_rule *r)
{
        char key[CHECK_NAME_SIZE];

        if (r->n_measurements == 0) {
                add(e, "measurement", false, "a rule with at least one measurement",
                    "none in the rule");
        } else {
                check_hex(e, "measurement", claim(e, "measurement"),
                          (const char *const *)r->measurements, r->n_measurements);
        }
        check_values(e, "host_data", &r->host_data);
        check_values(e, "id_key_digest", &r->id_key_digest);
        for (size_t c = 0; c < POLICY_SNP_TCB_N; c++) {
                const char *comp = policy_snp_tcb_name((enum policy_snp_tcb)c);
                if (!r->has_min_tcb[c]) {
                        continue;
                }
                snprintf(key, sizeof(key), "min_tcb.%s", comp);
                /* REPORTED_TCB: the TCB the VCEK was derived from, so the verifier has bound
                 * it to the signing key. Only Turin has an FMC component. */
                check_min(e, key, claim_in(e, "reported_tcb", comp), r->min_tcb[c],
                          c == POLICY_SNP_TCB_FMC);
        }
        for (size_t b = 0; b < POLICY_SNP_BIT_N; b++) {
                const char *bit = policy_snp_bit_name((enum policy_snp_bit)b);
                json_t *v = claim_in(e, "policy", bit);
                bool required = r->snp_policy[b] == POLICY_BIT_REQUIRED;
                if (r->snp_policy[b] == POLICY_BIT_ANY) {
                        continue;
                }
                snprintf(key, sizeof(key), "policy.%s", bit);
                add(e, key, json_is_boolean(v) && json_is_true(v) == required,
                    required ? "set (true)" : "clear (false)",
                    !json_is_boolean(v) ? "absent from the evidence"
                    : json_is_true(v)   ? "set (true)"
                                        : "clear (false)");
        }
        if (r->vmpl_mask != 0) {
                json_t *v = claim(e, "vmpl");
                struct text exp = {0}, act = {0};
                bool ok = false;
                tadd(&exp, "one of:");
                for (unsigned k = 0; k <= POLICY_VMPL_MAX; k++) {
                        if (r->vmpl_mask & (1u << k)) {
                                tadd(&exp, " %u", k);
                        }
                }
                if (json_is_integer(v)) {
                        json_int_t n = json_integer_value(v);
                        ok = n >= 0 && n <= POLICY_VMPL_MAX && (r->vmpl_mask & (1u << n)) != 0;
                        tadd(&act, "%lld", (long long)n);
                } else {
                        tadd(&act, "absent from the evidence");
                }
                add(e, "vmpl", ok, exp.s, act.s);
        }
        check_debug(e, claim_in(e, "policy", "debug"));
}

bool policy_service_evaluate(const struct policy_service *svc, enum attest_platform platform,
                             const struct attest_result *res, int64_t now,
                             struct attest_checks *out)
{
        struct ectx e = {.svc = svc, .res = res, .now = now, .out = out};
        bool any_rule = false, matched = false;

        if (svc == NULL || res == NULL || out == NULL) {
                return false;
        }
        if (!res->valid) {
                record(&e, "evidence.valid", false,
                       "valid evidence (signatures, certificate chains, revocation and "
                       "collateral windows)",
                       "invalid (see the verifier's checks)");
                return false;
        }
        for (size_t i = 0; i < svc->n_rules && !matched; i++) {
                const struct policy_rule *r = &svc->rules[i];
                if (r->platform != platform) {
                        continue;
                }
                any_rule = true;
                e.rule = i;
                e.rule_ok = true;
                switch (platform) {
                case ATTEST_SIM:
                        eval_sim(&e, r);
                        break;
                case ATTEST_SGX:
                        eval_sgx(&e, r);
                        break;
                case ATTEST_TDX:
                        eval_tdx(&e, r);
                        break;
                case ATTEST_SNP:
                        eval_snp(&e, r);
                        break;
                default:
                        e.rule_ok = false;
                        break;
                }
                matched = e.rule_ok;
        }
        if (!any_rule) {
                char expected[64];
                const char *name = policy_platform_name(platform);
                snprintf(expected, sizeof(expected), "a rule with platform: %s",
                         name != NULL ? name : "(unknown)");
                record(&e, "rules.platform", false, expected, "no rule for this platform");
        }
        if (platform == ATTEST_SIM) {
                record(&e, "tolerate.simulation", svc->tolerate_simulation,
                       "tolerate: [simulation]",
                       svc->tolerate_simulation ? "tolerated" : "not tolerated by the policy");
                matched = matched && svc->tolerate_simulation;
        }
        return matched && !e.failed;
}
