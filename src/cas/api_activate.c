/* POST /v1/activate: attest, then provision (design section 6).
 *
 * Request:  {"policy": NAME, "service": NAME, "evidence": {"type": "sim", "data": BASE64}}
 * Granted:  200 {"policy", "service", "version", "argv": [..], "env": {..}, "working_dir",
 *                "files": [{"path", "mode", "content": BASE64}]}
 * Refused:  403 {"error": {"code": "activation.refused", "details": {"checks": [failed]}}}
 *
 * Every decision is explained by the checks list: evidence checks from the verifier, then
 * "binding" (report data = SHA-512("coffer-activation-v1" || TLS exporter of this very
 * connection)), then the service's rules. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/intel/intel.h"
#include "attest/sim.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "crypto/tls.h"
#include "policy/policy.h"

#define ACTIVATE_BODY_MAX     (64u << 10)
#define ACTIVATE_EVIDENCE_MAX (32u << 10)
#define BUNDLE_STRING_MAX     (1u << 20)

struct activation {
        struct cas_worker *w;
        struct evhttp_request *req;
        const char *policy_name;
        const char *service_name;
        const struct policy *policy;
        const struct policy_service *service;
        uint64_t version;
        struct attest_result res;
        enum attest_platform platform;
        int64_t now;
        char measurement[97];
};

static cf_status add(struct activation *a, const char *name, bool ok, const char *expected,
                     const char *actual)
{
        return attest_checks_add(&a->res.checks, name, ok, expected, actual);
}

/* Checks the evidence's report data binds this TLS connection. */
static cf_status check_binding(struct activation *a)
{
        uint8_t exporter[CF_TLS_EXPORTER_SIZE], expected[64];
        char exp_hex[129];
        const char *actual = json_string_value(json_object_get(a->res.claims, "report_data"));
        SSL *ssl = cas_request_ssl(a->req);
        bool ok;

        ENSURE(ssl != NULL, CF_E_TLS);
        TRY(cf_tls_exporter(ssl, "EXPORTER-coffer-activation", exporter));
        TRY(sim_activation_report_data(exporter, expected));
        cf_hex_encode(expected, sizeof(expected), exp_hex, sizeof(exp_hex));
        ok = actual != NULL && strlen(actual) == 128 && cf_ct_eq(actual, exp_hex, 128);
        return add(a, "binding.report_data", ok,
                   "SHA-512(\"coffer-activation-v1\" || TLS exporter of this connection)",
                   ok ? "bound to this connection"
                      : "bound to another connection (relayed or replayed evidence)");
}

/* Sim evidence is only as good as its platform key: anyone can make one, so only keys this
 * cofferd trusts (its own machine's, and --trust-sim-key) count as "sim hardware". */
static cf_status check_sim_platform(struct activation *a)
{
        const char *hex = json_string_value(json_object_get(a->res.claims, "platform_key"));
        const struct cas *cas = a->w->cas;
        uint8_t key[32];
        bool ok = false;

        if (hex != NULL && cf_ok(cf_hex_decode(cf_slice_str(hex), key, sizeof(key)))) {
                for (size_t i = 0; i < cas->n_trusted_sim_keys && !ok; i++) {
                        ok = memcmp(cas->trusted_sim_keys[i], key, sizeof(key)) == 0;
                }
        }
        return add(a, "sim.platform_key", ok, "a sim platform key this cofferd trusts",
                   hex ? hex : "none");
}

/* Verifies the evidence with the verifier of its platform, offline, against the collateral
 * this cofferd keeps, at the current time. Fills a->res (claims and checks). */
static cf_status verify_evidence(struct activation *a, struct cf_slice bytes)
{
        const struct attest_collateral *coll = NULL;
        cf_status s;

        switch (a->platform) {
        case ATTEST_SIM:
                TRY(sim_evidence_verify(bytes, &a->res));
                return check_sim_platform(a);
        case ATTEST_SGX:
        case ATTEST_TDX: {
                struct intel_options o = { .now = a->now };
                const char *own = a->platform == ATTEST_SGX ? "mrenclave" : "mrtd";
                TRY(cas_collateral_current(a->w, &coll));
                s = intel_verify(bytes, coll, &o, &a->res);
                /* One verifier reads both quote kinds: the declared type must be the real one. */
                TRY(add(a, "evidence.type", json_object_get(a->res.claims, own) != NULL,
                        attest_platform_name(a->platform),
                        json_object_get(a->res.claims, "mrtd") ? "tdx" : "sgx"));
                return s;
        }
        case ATTEST_SNP: {
                struct snp_options o = { .now = a->now, .expected_stepping = -1 };
                TRY(cas_collateral_current(a->w, &coll));
                return snp_verify(bytes, coll, &o, &a->res);
        }
        default:
                return cf_fail(CF_E_UNSUPPORTED);
        }
}

/* The claim that names the code, for logs: measurement (sim, snp), mrenclave, mrtd. */
static void note_measurement(struct activation *a)
{
        static const char *const names[] = { "measurement", "mrenclave", "mrtd" };
        const char *m = NULL;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && m == NULL; i++) {
                m = json_string_value(json_object_get(a->res.claims, names[i]));
        }
        snprintf(a->measurement, sizeof(a->measurement), "%s", m ? m : "");
}

struct lookup_ctx {
        struct activation *a;
        struct cf_buf value;
};

static cf_status lookup(void *ctx, const char *name, struct cf_slice *ret)
{
        struct lookup_ctx *l = ctx;

        cf_buf_reset(&l->value);
        TRY(cas_secret_value(l->a->w, l->a->policy, name, &l->value));
        *ret = cf_buf_slice(&l->value);
        return CF_OK;
}

/* Substitutes placeholders into a JSON string. Binary secrets that are not valid UTF-8 or
 * hold NUL bytes cannot go into argv or env: CF_E_ENCODING. */
static cf_status subst_string(struct lookup_ctx *l, const char *text, json_t **ret)
{
        struct cf_buf out;
        json_t *j = NULL;

        cf_buf_init(&out, BUNDLE_STRING_MAX, true);
        cf_status s = policy_substitute(text, lookup, l, &out);
        if (cf_ok(s) && (memchr(out.ptr, 0, out.size) != NULL ||
                         (j = json_stringn((const char *)out.ptr, out.size)) == NULL)) {
                s = cf_fail(CF_E_ENCODING);
        }
        cf_buf_done(&out);
        TRY(s);
        *ret = j;
        return CF_OK;
}

static cf_status subst_base64(struct lookup_ctx *l, const char *text, json_t **ret)
{
        struct cf_buf out, b64;
        cf_status s;

        cf_buf_init(&out, BUNDLE_STRING_MAX, true);
        cf_buf_init(&b64, 2 * BUNDLE_STRING_MAX, true);
        s = policy_substitute(text, lookup, l, &out);
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(out.ptr, out.size, &b64);
        }
        if (cf_ok(s)) {
                *ret = json_stringn((const char *)b64.ptr, b64.size);
                s = *ret ? CF_OK : cf_fail(CF_E_NOMEM);
        }
        cf_buf_done(&out);
        cf_buf_done(&b64);
        return s;
}

static cf_status build_bundle(struct activation *a, json_t **ret)
{
        const struct policy_service *svc = a->service;
        struct lookup_ctx l = { a, { 0 } };
        json_t *b = json_pack("{s:s, s:s, s:I, s:[], s:{}, s:[]}", "policy", a->policy_name,
                              "service", a->service_name, "version", (json_int_t)a->version,
                              "argv", "env", "files");
        json_t *v = NULL;
        cf_status s = b ? CF_OK : cf_fail(CF_E_NOMEM);

        cf_buf_init(&l.value, BUNDLE_STRING_MAX, true);
        for (size_t i = 0; cf_ok(s) && i < svc->n_command; i++) {
                s = subst_string(&l, svc->command[i], &v);
                if (cf_ok(s)) {
                        json_array_append_new(json_object_get(b, "argv"), v);
                }
        }
        for (size_t i = 0; cf_ok(s) && i < svc->n_env; i++) {
                s = subst_string(&l, svc->env[i].value, &v);
                if (cf_ok(s)) {
                        json_object_set_new(json_object_get(b, "env"), svc->env[i].name, v);
                }
        }
        for (size_t i = 0; cf_ok(s) && i < svc->n_files; i++) {
                const struct policy_file *f = &svc->files[i];
                s = subst_base64(&l, f->content, &v);
                if (cf_ok(s)) {
                        json_array_append_new(json_object_get(b, "files"),
                                              json_pack("{s:s, s:i, s:o}", "path", f->path,
                                                        "mode", (int)f->mode, "content", v));
                }
        }
        if (cf_ok(s)) {
                s = cas_volumes_bundle(a->w, a->policy, svc, b);
        }
        if (cf_ok(s) && svc->working_dir != NULL) {
                json_object_set_new(b, "working_dir", json_string(svc->working_dir));
        }
        if (cf_ok(s) && svc->n_passthrough_env > 0) {
                json_t *pt = json_array();
                for (size_t i = 0; i < svc->n_passthrough_env; i++) {
                        json_array_append_new(pt, json_string(svc->passthrough_env[i]));
                }
                json_object_set_new(b, "passthrough_env", pt);
        }
        cf_buf_done(&l.value);
        if (!cf_ok(s)) {
                json_decref(b);
                return s;
        }
        *ret = b;
        return CF_OK;
}

/* The audit entry of a decision: names, the measurement and the failed checks' names; never
 * evidence bytes or anything of the bundle. A failed append is logged by the audit module. */
static void audit_decision(struct activation *a, bool granted, const char *why)
{
        json_t *failed = json_array();

        for (size_t i = 0; failed != NULL && i < a->res.checks.n; i++) {
                if (!a->res.checks.items[i].ok) {
                        json_array_append_new(failed, json_string(a->res.checks.items[i].name));
                }
        }
        cf_ignore(cas_audit_append(
                a->w, granted ? "activation.granted" : "activation.refused", "workload",
                json_pack("{s:s?, s:s?, s:I, s:s?, s:s?, s:s?, s:o*}", "policy", a->policy_name,
                          "service", a->service_name, "version", (json_int_t)a->version,
                          "platform", attest_platform_name(a->platform), "measurement",
                          a->measurement[0] ? a->measurement : NULL, "reason", why,
                          "failed_checks", failed)));
}

static void refuse(struct activation *a, const char *why)
{
        json_t *failed = NULL;
        char msg[256];

        atomic_fetch_add(&a->w->cas->metrics.activations_refused, 1);
        if (!cf_ok(attest_checks_to_json(&a->res.checks, true, &failed))) {
                failed = json_array();
        }
        snprintf(msg, sizeof(msg), "activation refused: %s", why);
        cf_log_info("activation refused policy=%s service=%s platform=%s measurement=%.16s "
                    "failed_checks=%zu reason='%s'",
                    a->policy_name ? a->policy_name : "-", a->service_name ? a->service_name : "-",
                    attest_platform_name(a->platform) ? attest_platform_name(a->platform) : "-",
                    a->measurement[0] ? a->measurement : "-", attest_checks_failed(&a->res.checks),
                    why);
        audit_decision(a, false, why);
        cas_reply_error(a->req, 403, "activation.refused", msg,
                        json_pack("{s:o}", "checks", failed));
}

static cf_status decode_evidence(json_t *ev, struct activation *a, struct cf_buf *bytes)
{
        const char *type = NULL, *data = NULL;

        ENSURE(json_unpack(ev, "{s:s, s:s !}", "type", &type, "data", &data) == 0, CF_E_SCHEMA);
        ENSURE(cf_ok(attest_platform_parse(type, &a->platform)), CF_E_UNSUPPORTED);
        return cf_base64_decode_buf(cf_slice_str(data), bytes);
}

static void activate(struct activation *a, json_t *body)
{
        json_t *ev = NULL, *bundle = NULL;
        struct cf_buf bytes;
        bool granted;
        cf_status s;

        if (json_unpack(body, "{s:s, s:s, s:o !}", "policy", &a->policy_name, "service",
                        &a->service_name, "evidence", &ev) != 0) {
                cas_reply_error(a->req, 400, "request.schema",
                                "expected {\"policy\": NAME, \"service\": NAME, \"evidence\": "
                                "{\"type\": PLATFORM, \"data\": BASE64}}",
                                NULL);
                return;
        }
        cf_buf_init(&bytes, ACTIVATE_EVIDENCE_MAX, false);
        s = decode_evidence(ev, a, &bytes);
        if (!cf_ok(s)) {
                cf_buf_done(&bytes);
                cas_reply_error(a->req, 400, "request.evidence",
                                s.code == CF_E_UNSUPPORTED
                                        ? "unknown evidence type (sim, sgx, tdx or snp)"
                                        : "'evidence' must be {\"type\": PLATFORM, \"data\": "
                                          "BASE64} with at most 32 KiB of data",
                                NULL);
                return;
        }
        s = cas_policy_current(a->w, a->policy_name, &a->policy, &a->version);
        a->service = cf_ok(s) ? policy_find_service(a->policy, a->service_name) : NULL;
        cf_ignore(add(a, "policy.service", a->service != NULL, "an existing policy and service",
                      a->service ? "found" : "no such policy or service"));
        if (a->service == NULL) {
                cf_buf_done(&bytes);
                refuse(a, "no such policy or service");
                return;
        }
        s = verify_evidence(a, cf_buf_slice(&bytes));
        cf_buf_done(&bytes);
        note_measurement(a);
        /* A verifier failure is already explained by its failed checks; the binding and the
         * rules are evaluated only for evidence that verified. Granting needs all three. */
        granted = cf_ok(s) && a->res.valid;
        if (granted) {
                s = check_binding(a);
                granted = cf_ok(s) && attest_checks_all_ok(&a->res.checks);
        }
        if (granted) {
                /* The evaluator's answer decides: checks of rules tried before the one that
                 * matched stay in the list as failures. */
                granted = policy_service_evaluate(a->service, a->platform, &a->res, a->now,
                                                  &a->res.checks);
        }
        if (!granted) {
                refuse(a, attest_checks_failed(&a->res.checks) > 0 ? "the evidence does not "
                                                                     "satisfy the policy"
                          : !cf_ok(s) ? cf_strerror(s)
                                      : "the evidence could not be evaluated");
                return;
        }
        s = build_bundle(a, &bundle);
        if (!cf_ok(s)) {
                cf_log_err("activation policy=%s service=%s: cannot build the configuration: %s",
                           a->policy_name, a->service_name, cf_strerror(s));
                cas_reply_error(a->req, s.code == CF_E_ENCODING ? 422 : 500, "activation.bundle",
                                s.code == CF_E_ENCODING
                                        ? "a binary secret cannot be placed in argv or environment"
                                        : "cannot build the configuration",
                                NULL);
                return;
        }
        atomic_fetch_add(&a->w->cas->metrics.activations_granted, 1);
        cf_log_info("activation granted policy=%s version=%llu service=%s platform=%s "
                    "measurement=%.16s",
                    a->policy_name, (unsigned long long)a->version, a->service_name,
                    attest_platform_name(a->platform), a->measurement);
        audit_decision(a, true, NULL);
        cas_reply_json_secret(a->req, 200, bundle);
}

void cas_api_activate(struct cas_worker *w, struct evhttp_request *req)
{
        struct activation a = { .w = w, .req = req, .now = (int64_t)time(NULL) };
        struct cf_buf body;
        json_error_t jerr;
        json_t *j = NULL;

        cf_buf_init(&body, ACTIVATE_BODY_MAX, false);
        if (!cf_ok(cas_request_body(req, ACTIVATE_BODY_MAX, &body))) {
                cf_buf_done(&body);
                cas_reply_error(req, 413, "request.too_large", "activation requests are at most "
                                "64 KiB", NULL);
                return;
        }
        j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&body);
        if (j == NULL) {
                cas_reply_error(req, 400, "request.json", "the body is not valid JSON", NULL);
                return;
        }
        if (!cf_ok(attest_result_init(&a.res))) {
                json_decref(j);
                cas_reply_error(req, 500, "internal", "out of memory", NULL);
                return;
        }
        activate(&a, j);
        attest_result_done(&a.res);
        json_decref(j);
}
