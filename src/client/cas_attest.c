#include "client/cas_attest.h"

#include <stdio.h>
#include <string.h>

#include "attest/intel/intel.h"
#include "attest/sim.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "client/audit_verify.h"
#include "crypto/tls.h"
#include "policy/policy.h"

static cf_status fetch(struct cf_client *c, const uint8_t nonce[32], struct cf_buf *evidence,
                       char type[8], uint8_t audit_key[static AUDIT_KEY_SIZE])
{
        char nonce_hex[65], path[128];
        struct cf_http_response r;
        const char *t = NULL, *data = NULL, *ak = NULL;
        json_t *j = NULL;
        cf_status s;

        cf_hex_encode(nonce, 32, nonce_hex, sizeof(nonce_hex));
        snprintf(path, sizeof(path), "/v1/cas/attestation?nonce=%s", nonce_hex);
        cf_http_response_init(&r);
        s = cf_client_request(c, "GET", path, NULL, cf_slice_make(NULL, 0), &r);
        if (cf_ok(s) && (r.status != 200 || (j = cf_http_response_json(&r)) == NULL)) {
                s = cf_fail(CF_E_HTTP);
        }
        cf_http_response_done(&r);
        TRY(s);
        if (json_unpack(j, "{s:s, s:{s:s, s:s}}", "audit_key", &ak, "evidence", "type", &t, "data",
                        &data) != 0 ||
            strlen(t) >= 8 || strlen(ak) != 2 * AUDIT_KEY_SIZE ||
            !cf_ok(cf_hex_decode(cf_slice_str(ak), audit_key, AUDIT_KEY_SIZE))) {
                json_decref(j);
                return cf_fail(CF_E_PROTOCOL);
        }
        snprintf(type, 8, "%s", t);
        s = cf_base64_decode_buf(cf_slice_str(data), evidence);
        json_decref(j);
        return s;
}

static cf_status check_binding(struct cf_client *c, const uint8_t nonce[32],
                               const uint8_t audit_key[static AUDIT_KEY_SIZE],
                               struct attest_result *res, char kid[static CF_KEY_ID_HEX])
{
        uint8_t kid_raw[32], rd[64];
        char rd_hex[129], ak_hex[2 * AUDIT_KEY_SIZE + 1];
        const char *got = json_string_value(json_object_get(res->claims, "report_data"));
        bool ok;

        TRY(cf_tls_peer_key_id(cf_client_ssl(c), kid));
        TRY(cf_hex_decode(cf_slice_make(kid, CF_KEY_ID_HEX - 1), kid_raw, sizeof(kid_raw)));
        TRY(audit_cas_report_data(kid_raw, audit_key, cf_slice_make(nonce, 32), rd));
        cf_hex_encode(rd, sizeof(rd), rd_hex, sizeof(rd_hex));
        ok = got != NULL && strcmp(got, rd_hex) == 0;
        if (ok) {
                /* Bound by the evidence: callers may pin it for `coffer audit verify`. */
                cf_hex_encode(audit_key, AUDIT_KEY_SIZE, ak_hex, sizeof(ak_hex));
                ENSURE(json_object_set_new(res->claims, "audit_key", json_string(ak_hex)) == 0,
                       CF_E_NOMEM);
        }
        return attest_checks_add(&res->checks, "binding.report_data", ok,
                                 "SHA-512(\"coffer-cas-attestation-v2\" || TLS key id || audit "
                                 "key || our nonce)",
                                 ok ? "bound to this connection, its audit key and our nonce"
                                    : "not bound");
}

static cf_status check_sim_key(const struct cf_cas_expect *e, struct attest_result *res)
{
        const char *hex = json_string_value(json_object_get(res->claims, "platform_key"));
        uint8_t key[32];
        bool ok = false;

        if (hex != NULL && cf_ok(cf_hex_decode(cf_slice_str(hex), key, sizeof(key)))) {
                for (size_t i = 0; i < e->n_sim_keys && !ok; i++) {
                        ok = memcmp(e->sim_keys[i], key, sizeof(key)) == 0;
                }
        }
        return attest_checks_add(&res->checks, "sim.platform_key", ok,
                                 "a trusted sim platform key (this machine's, or --trust-sim-key)",
                                 hex ? hex : "none");
}

static cf_status verify(enum attest_platform platform, struct cf_slice ev,
                        const struct cf_cas_expect *e, struct attest_result *res)
{
        struct attest_collateral none;
        const struct attest_collateral *coll = e->collateral;

        attest_collateral_init(&none);
        if (coll == NULL) {
                coll = &none;
        }
        switch (platform) {
        case ATTEST_SIM:
                return sim_evidence_verify(ev, res);
        case ATTEST_SGX:
        case ATTEST_TDX: {
                struct intel_options o = { .now = e->now };
                return intel_verify(ev, coll, &o, res);
        }
        case ATTEST_SNP: {
                struct snp_options o = { .now = e->now, .expected_stepping = -1 };
                return snp_verify(ev, coll, &o, res);
        }
        default:
                return cf_fail(CF_E_UNSUPPORTED);
        }
}

cf_status cf_cas_attest(struct cf_client *c, const struct cf_cas_expect *e,
                        struct attest_result *res, char ret_key_id[static CF_KEY_ID_HEX])
{
        uint8_t nonce[32], audit_key[AUDIT_KEY_SIZE];
        char type[8] = "", kid[CF_KEY_ID_HEX];
        struct cf_buf ev;
        enum attest_platform platform;
        cf_status s;

        TRY(cf_random(nonce, sizeof(nonce)));
        cf_buf_init(&ev, 64 * 1024, false);
        s = fetch(c, nonce, &ev, type, audit_key);
        if (cf_ok(s) && !cf_ok(attest_platform_parse(type, &platform))) {
                s = cf_fail(CF_E_UNSUPPORTED);
        }
        if (cf_ok(s)) {
                /* The same verifiers as for workloads; the outcome is explained in checks. */
                cf_ignore(verify(platform, cf_buf_slice(&ev), e, res));
        }
        cf_buf_done(&ev);
        TRY(s);
        ENSURE(res->valid, CF_E_REFUSED); /* the verifier's checks say why */
        if (platform == ATTEST_SIM) {
                TRY(check_sim_key(e, res));
        }
        TRY(check_binding(c, nonce, audit_key, res, kid));
        if (e->key_id != NULL) {
                TRY(attest_checks_add(&res->checks, "key_id", strcmp(kid, e->key_id) == 0,
                                      e->key_id, kid));
        }
        /* Rules are evaluated only for evidence that is genuine and bound to us; their own
         * answer decides (checks of rules tried before a match remain as failures). */
        ENSURE(attest_checks_all_ok(&res->checks), CF_E_REFUSED);
        if (e->service != NULL) {
                ENSURE(policy_service_evaluate(e->service, platform, res, e->now, &res->checks),
                       CF_E_REFUSED);
        }
        memcpy(ret_key_id, kid, CF_KEY_ID_HEX);
        return CF_OK;
}
