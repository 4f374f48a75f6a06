#include "client/activate.h"

#include <string.h>

#include <jansson.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/cursor.h"
#include "crypto/tls.h"
#include "crypto/x509.h"

cf_status cf_activation_report_data(SSL *bind_to,
                                    uint8_t ret[static CF_ACTIVATION_REPORT_DATA_SIZE])
{
        uint8_t exporter[CF_TLS_EXPORTER_SIZE], rd[CF_ACTIVATION_REPORT_DATA_SIZE];

        TRY(cf_tls_exporter(bind_to, "EXPORTER-coffer-activation", exporter));
        TRY(sim_activation_report_data(exporter, rd));
        memcpy(ret, rd, sizeof(rd));
        return CF_OK;
}

/* Sim evidence is ours to parse: refuse to send evidence that binds another connection. */
static cf_status check_sim_binding(SSL *bind_to, struct cf_slice evidence)
{
        uint8_t rd[CF_ACTIVATION_REPORT_DATA_SIZE];
        struct sim_evidence e;

        TRY(sim_evidence_parse(evidence, &e));
        TRY(cf_activation_report_data(bind_to, rd));
        ENSURE(cf_slice_eq(cf_slice_make(e.report_data, sizeof(e.report_data)),
                           cf_slice_make(rd, sizeof(rd))),
               CF_E_BINDING);
        return CF_OK;
}

cf_status cf_activation_body(SSL *bind_to, enum attest_platform platform, struct cf_slice evidence,
                             const char *policy, const char *service, char **ret_body)
{
        const char *type = attest_platform_name(platform);
        struct cf_buf b64;
        json_t *req;
        char *body;
        cf_status s;

        ENSURE(type != NULL && evidence.size > 0, CF_E_INVALID_ARG);
        ENSURE(evidence.size <= CF_ACTIVATION_EVIDENCE_MAX, CF_E_LIMIT);
        if (platform == ATTEST_SIM) {
                TRY(check_sim_binding(bind_to, evidence));
        }
        cf_buf_init(&b64, cf_base64_encoded_size(evidence.size) + 1, false);
        s = cf_base64_encode_buf(evidence.ptr, evidence.size, &b64);
        if (!cf_ok(s)) {
                cf_buf_done(&b64);
                return s;
        }
        req = json_pack("{s:s, s:s, s:{s:s, s:s}}", "policy", policy, "service", service,
                        "evidence", "type", type, "data", (const char *)b64.ptr);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        cf_buf_done(&b64);
        ENSURE(body != NULL, CF_E_NOMEM);
        *ret_body = body;
        return CF_OK;
}

cf_status cf_activation_body_sim(SSL *bind_to, const struct cf_pkey *platform_key,
                                 const uint8_t measurement[static 32], const char *policy,
                                 const char *service, char **ret_body)
{
        uint8_t rd[CF_ACTIVATION_REPORT_DATA_SIZE];
        struct cf_buf ev;
        cf_status s;

        cf_buf_init(&ev, 1024, false);
        s = cf_activation_report_data(bind_to, rd);
        if (cf_ok(s)) {
                s = sim_evidence_make(platform_key, measurement, rd, &ev);
        }
        if (cf_ok(s)) {
                s = cf_activation_body(bind_to, ATTEST_SIM, cf_buf_slice(&ev), policy, service,
                                       ret_body);
        }
        cf_buf_done(&ev);
        return s;
}

cf_status cf_activation_body_with_csr(const char *body, const char *csr_pem, char **ret_body)
{
        json_t *req;
        char *out;
        size_t n;

        ENSURE(body != NULL && csr_pem != NULL && csr_pem[0] != 0, CF_E_INVALID_ARG);
        n = strlen(csr_pem);
        ENSURE(n <= CF_X509_CSR_MAX, CF_E_LIMIT);
        req = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
        if (req == NULL || !json_is_object(req)) {
                json_decref(req);
                return cf_fail(CF_E_SYNTAX);
        }
        if (json_object_set_new(req, "csr", json_stringn(csr_pem, n)) != 0) {
                json_decref(req);
                return cf_fail(CF_E_NOMEM);
        }
        out = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        ENSURE(out != NULL, CF_E_NOMEM);
        *ret_body = out;
        return CF_OK;
}
