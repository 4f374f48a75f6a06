/* Workload evidence as cofferd checks it: decode {"type", "data"}, verify with the platform's
 * verifier against the stored collateral, check the binding to the request's TLS connection,
 * then evaluate a service's rules. Shared by activation and by approvals from attested
 * programs, so both admit exactly the same evidence. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>

#include "attest/intel/intel.h"
#include "attest/sim.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "crypto/tls.h"
#include "policy/policy.h"

static cf_status add(struct attest_result *res, const char *name, bool ok, const char *expected,
                     const char *actual)
{
        return attest_checks_add(&res->checks, name, ok, expected, actual);
}

cf_status cas_evidence_decode(json_t *ev, enum attest_platform *ret_platform, struct cf_buf *bytes)
{
        const char *type = NULL, *data = NULL;
        enum attest_platform platform;

        ENSURE(json_unpack(ev, "{s:s, s:s !}", "type", &type, "data", &data) == 0, CF_E_SCHEMA);
        ENSURE(cf_ok(attest_platform_parse(type, &platform)), CF_E_UNSUPPORTED);
        TRY(cf_base64_decode_buf(cf_slice_str(data), bytes));
        *ret_platform = platform;
        return CF_OK;
}

/* Sim evidence is only as good as its platform key: anyone can make one, so only keys this
 * cofferd trusts (its own machine's, and --trust-sim-key) count as "sim hardware". */
static cf_status check_sim_platform(const struct cas *cas, struct attest_result *res)
{
        const char *hex = json_string_value(json_object_get(res->claims, "platform_key"));
        uint8_t key[32];
        bool ok = false;

        if (hex != NULL && cf_ok(cf_hex_decode(cf_slice_str(hex), key, sizeof(key)))) {
                for (size_t i = 0; i < cas->n_trusted_sim_keys && !ok; i++) {
                        ok = memcmp(cas->trusted_sim_keys[i], key, sizeof(key)) == 0;
                }
        }
        return add(res, "sim.platform_key", ok, "a sim platform key this cofferd trusts",
                   hex ? hex : "none");
}

cf_status cas_evidence_verify(struct cas_worker *w, enum attest_platform platform,
                              struct cf_slice bytes, int64_t now, struct attest_result *res)
{
        const struct attest_collateral *coll = NULL;
        cf_status s;

        switch (platform) {
        case ATTEST_SIM:
                TRY(sim_evidence_verify(bytes, res));
                return check_sim_platform(w->cas, res);
        case ATTEST_SGX:
        case ATTEST_TDX: {
                struct intel_options o = { .now = now };
                const char *own = platform == ATTEST_SGX ? "mrenclave" : "mrtd";
                TRY(cas_collateral_current(w, &coll));
                s = intel_verify(bytes, coll, &o, res);
                /* One verifier reads both quote kinds: the declared type must be the real one. */
                TRY(add(res, "evidence.type", json_object_get(res->claims, own) != NULL,
                        attest_platform_name(platform),
                        json_object_get(res->claims, "mrtd") ? "tdx" : "sgx"));
                return s;
        }
        case ATTEST_SNP: {
                struct snp_options o = { .now = now, .expected_stepping = -1 };
                TRY(cas_collateral_current(w, &coll));
                return snp_verify(bytes, coll, &o, res);
        }
        default:
                return cf_fail(CF_E_UNSUPPORTED);
        }
}

cf_status cas_evidence_check_binding(struct evhttp_request *req, struct attest_result *res)
{
        uint8_t exporter[CF_TLS_EXPORTER_SIZE], expected[64];
        char exp_hex[129];
        const char *actual = json_string_value(json_object_get(res->claims, "report_data"));
        SSL *ssl = cas_request_ssl(req);
        bool ok;

        ENSURE(ssl != NULL, CF_E_TLS);
        TRY(cf_tls_exporter(ssl, "EXPORTER-coffer-activation", exporter));
        TRY(sim_activation_report_data(exporter, expected));
        cf_hex_encode(expected, sizeof(expected), exp_hex, sizeof(exp_hex));
        ok = actual != NULL && strlen(actual) == 128 && cf_ct_eq(actual, exp_hex, 128);
        return add(res, "binding.report_data", ok,
                   "SHA-512(\"coffer-activation-v1\" || TLS exporter of this connection)",
                   ok ? "bound to this connection"
                      : "bound to another connection (relayed or replayed evidence)");
}

void cas_evidence_measurement(const struct attest_result *res, char out[static 97])
{
        static const char *const names[] = { "measurement", "mrenclave", "mrtd" };
        const char *m = NULL;

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && m == NULL; i++) {
                m = json_string_value(json_object_get(res->claims, names[i]));
        }
        snprintf(out, 97, "%s", m ? m : "");
}

bool cas_evidence_admits(struct cas_worker *w, struct evhttp_request *req,
                         const struct policy_service *svc, enum attest_platform platform,
                         struct cf_slice bytes, int64_t now, struct attest_result *res,
                         cf_status *ret_status)
{
        cf_status s = cas_evidence_verify(w, platform, bytes, now, res);
        /* A verifier failure is already explained by its failed checks; the binding and the
         * rules are evaluated only for evidence that verified. Admission needs all three. */
        bool ok = cf_ok(s) && res->valid;

        if (ok) {
                s = cas_evidence_check_binding(req, res);
                ok = cf_ok(s) && attest_checks_all_ok(&res->checks);
        }
        if (ok) {
                /* The evaluator's answer decides: checks of rules tried before the one that
                 * matched stay in the list as failures. */
                ok = policy_service_evaluate(svc, platform, res, now, &res->checks);
        }
        *ret_status = s;
        return ok;
}
