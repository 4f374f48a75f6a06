/* POST /v1/activate: attest, then provision (design section 6).
 *
 * Request:  {"policy": NAME, "service": NAME, "evidence": {"type": "sim", "data": BASE64},
 *            "csr": PEM (optional)}
 * Granted:  200 {"policy", "service", "version", "argv": [..], "env": {..}, "working_dir",
 *                "files": [{"path", "mode", "content": BASE64}],
 *                "certificate": {"cert", "ca", "key_path", "cert_path", "ca_path"}}
 * Refused:  403 {"error": {"code": "activation.refused", "details": {"checks": [failed]}}}
 *
 * Every decision is explained by the checks list: evidence checks from the verifier, then
 * "binding" (report data = SHA-512("coffer-activation-v1" || TLS exporter of this very
 * connection)), then the service's rules.
 *
 * A service with `certificate:` needs the CSR (400 request.csr without one, or with one that
 * does not verify; 409 activation.csr_algorithm for a key of another algorithm, naming the
 * one expected, so coffer-run can retry); for other services the CSR is ignored. The CSR is
 * looked at only once the evidence admitted the service: the TLS connection the evidence is
 * bound to carries it, so only the attested workload can have sent it. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "crypto/x509.h"
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
        const char *csr; /* PEM text of the request's "csr", NULL when absent */
        size_t csr_size;
        struct cf_x509_csr_key csr_key;
        struct cas_workload_cert cert; /* issued when the service has a certificate */
};

static cf_status add(struct activation *a, const char *name, bool ok, const char *expected,
                     const char *actual)
{
        return attest_checks_add(&a->res.checks, name, ok, expected, actual);
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

/* "certificate": the issued certificate (never a key: cofferd never had it) and where
 * coffer-run puts the files. */
static cf_status bundle_certificate(struct activation *a, json_t *b)
{
        const struct policy_certificate *c = a->service->certificate;
        json_t *o = json_pack("{s:s%, s:s%, s:s, s:s}", "cert", (const char *)a->cert.cert.ptr,
                              a->cert.cert.size, "ca", (const char *)a->cert.ca.ptr,
                              a->cert.ca.size, "key_path", c->key_path, "cert_path", c->cert_path);

        ENSURE(o != NULL, CF_E_NOMEM);
        if (c->ca_path != NULL && json_object_set_new(o, "ca_path", json_string(c->ca_path)) != 0) {
                json_decref(o);
                return cf_fail(CF_E_NOMEM);
        }
        ENSURE(json_object_set_new(b, "certificate", o) == 0, CF_E_NOMEM);
        return CF_OK;
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
        if (cf_ok(s) && svc->certificate != NULL) {
                s = bundle_certificate(a, b);
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
 * evidence bytes or anything of the bundle. Decisions are best effort: a failed append is
 * logged and counted (metrics.audit_failures) by the audit module. Refusals, which anyone
 * can cause, are aggregated there (one entry per distinct refusal and window). */
static void audit_decision(struct activation *a, bool granted, const char *why)
{
        json_t *failed = json_array(), *details;

        for (size_t i = 0; failed != NULL && i < a->res.checks.n; i++) {
                if (!a->res.checks.items[i].ok) {
                        json_array_append_new(failed, json_string(a->res.checks.items[i].name));
                }
        }
        details = json_pack("{s:s?, s:s?, s:I, s:s?, s:s?, s:s?, s:o*}", "policy", a->policy_name,
                            "service", a->service_name, "version", (json_int_t)a->version,
                            "platform", attest_platform_name(a->platform), "measurement",
                            a->measurement[0] ? a->measurement : NULL, "reason", why,
                            "failed_checks", failed);
        if (granted) {
                cf_ignore(cas_audit_append(a->w, "activation.granted", "workload", details));
        } else {
                cas_audit_refused(a->w, details);
        }
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

/* The audit entry of an issued workload certificate: what identifies it, never its bytes. */
static void audit_certificate(struct activation *a)
{
        cf_ignore(cas_audit_append(
                a->w, "certificate.issued", "workload",
                json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:s}", "policy", a->policy_name,
                          "service", a->service_name, "version", (json_int_t)a->version,
                          "issuer", a->service->certificate->issuer, "serial", a->cert.serial,
                          "not_after", (json_int_t)a->cert.not_after, "key_id",
                          a->cert.key_id)));
}

/* A request error about the CSR of an admitted workload: audited like a refusal (the
 * workload attested, but gets nothing), answered with status and code. */
static void refuse_csr(struct activation *a, int status, const char *code, const char *msg,
                       json_t *details)
{
        cf_log_info("activation refused policy=%s service=%s: %s", a->policy_name,
                    a->service_name, msg);
        audit_decision(a, false, msg);
        cas_reply_error(a->req, status, code, msg, details);
}

/* For a service with a certificate: the CSR must be there, verify, and be for a key of the
 * policy's algorithm. Replies and returns false otherwise. */
static bool check_csr(struct activation *a)
{
        const char *want = cas_workload_cert_algorithm(a->service);
        char msg[256];
        cf_status s;

        if (a->csr == NULL) {
                snprintf(msg, sizeof(msg),
                         "service '%s' has a certificate: the activation request needs a "
                         "\"csr\" (PKCS#10, PEM)",
                         a->service_name);
                refuse_csr(a, 400, "request.csr", msg, NULL);
                return false;
        }
        /* The whole JSON string: a NUL inside is refused, not a place to stop reading. */
        s = cf_x509_csr_parse_verify(cf_slice_make(a->csr, a->csr_size), &a->csr_key);
        if (!cf_ok(s) && s.code != CF_E_UNSUPPORTED) {
                snprintf(msg, sizeof(msg), "the csr for service '%s' is refused: %s",
                         a->service_name,
                         s.code == CF_E_KEY           ? "weak or invalid key (RSA needs 2048 bits)"
                         : s.code == CF_E_SIG_INVALID ? "its signature does not verify"
                         : s.code == CF_E_ENCODING    ? "not one PEM CERTIFICATE REQUEST block"
                                                      : "not a valid PKCS#10 request");
                refuse_csr(a, 400, "request.csr", msg, NULL);
                return false;
        }
        if (!cf_ok(s) || strcmp(cf_x509_alg_name(a->csr_key.alg), want) != 0) {
                snprintf(msg, sizeof(msg),
                         "service '%s' wants a %s key for its certificate; the csr has %s",
                         a->service_name, want,
                         cf_ok(s) ? cf_x509_alg_name(a->csr_key.alg) : "another kind of key");
                refuse_csr(a, 409, "activation.csr_algorithm", msg,
                           json_pack("{s:s}", "algorithm", want));
                return false;
        }
        return true;
}

static void activate(struct activation *a, json_t *body)
{
        json_t *ev = NULL, *bundle = NULL;
        struct cf_buf bytes;
        bool granted;
        cf_status s;

        if (json_unpack(body, "{s:s, s:s, s:o, s?s% !}", "policy", &a->policy_name, "service",
                        &a->service_name, "evidence", &ev, "csr", &a->csr, &a->csr_size) != 0) {
                cas_reply_error(a->req, 400, "request.schema",
                                "expected {\"policy\": NAME, \"service\": NAME, \"evidence\": "
                                "{\"type\": PLATFORM, \"data\": BASE64}, \"csr\": PEM "
                                "(optional)}",
                                NULL);
                return;
        }
        if (a->csr != NULL && a->csr_size > CF_X509_CSR_MAX) {
                cas_reply_error(a->req, 400, "request.csr", "the csr is larger than 16 KiB", NULL);
                return;
        }
        cf_buf_init(&bytes, ACTIVATE_EVIDENCE_MAX, false);
        s = cas_evidence_decode(ev, &a->platform, &bytes);
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
        granted = cas_evidence_admits(a->w, a->req, a->service, a->platform, cf_buf_slice(&bytes),
                                      a->now, &a->res, &s);
        cf_buf_done(&bytes);
        cas_evidence_measurement(&a->res, a->measurement);
        if (!granted) {
                refuse(a, attest_checks_failed(&a->res.checks) > 0 ? "the evidence does not "
                                                                     "satisfy the policy"
                          : !cf_ok(s) ? cf_strerror(s)
                                      : "the evidence could not be evaluated");
                return;
        }
        /* Imports still consented to; certificates due for renewal renewed (before a workload
         * certificate is issued by a CA that is due). */
        if (!cas_secrets_activate(a->w, a->policy, a->now, &a->res.checks)) {
                refuse(a, "an imported secret is not available");
                return;
        }
        if (a->service->certificate != NULL) {
                if (!check_csr(a)) {
                        return;
                }
                s = cas_workload_cert_issue(a->w, a->policy, a->service, &a->csr_key, &a->cert);
                if (!cf_ok(s)) {
                        cf_log_err("activation policy=%s service=%s: cannot issue the workload "
                                   "certificate: %s",
                                   a->policy_name, a->service_name, cf_strerror(s));
                        cas_reply_error(a->req, 500, "activation.certificate",
                                        "cannot issue the workload certificate", NULL);
                        return;
                }
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
        if (a->service->certificate != NULL) {
                cf_log_info("certificate issued policy=%s service=%s serial=%s key_id=%s",
                            a->policy_name, a->service_name, a->cert.serial, a->cert.key_id);
                audit_certificate(a);
        }
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
        cas_workload_cert_init(&a.cert);
        activate(&a, j);
        cas_workload_cert_done(&a.cert);
        attest_result_done(&a.res);
        json_decref(j);
}
