/* The activation request of design section 6, shared by coffer-run, its tests and the
 * activation benchmark. */
#pragma once

#include <stdint.h>

#include <openssl/ssl.h>

#include "attest/checks.h"
#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define CF_ACTIVATION_REPORT_DATA_SIZE 64
/* Largest evidence put in a request (the providers' own limit). */
#define CF_ACTIVATION_EVIDENCE_MAX (64u << 10)

/* Computes the report data that binds an activation to the TLS connection bind_to:
 * SHA-512("coffer-activation-v1" || TLS exporter "EXPORTER-coffer-activation", 32 bytes).
 * Evidence providers put it in the evidence's report data; cofferd recomputes it on its side
 * of the connection. ret is written only on success. Errors: CF_E_TLS (no exporter: the
 * handshake is not complete), CF_E_CRYPTO. */
CF_FN cf_activation_report_data(SSL *bind_to, uint8_t ret[static CF_ACTIVATION_REPORT_DATA_SIZE]);

/* Builds the JSON body of POST /v1/activate:
 * {"policy": policy, "service": service, "evidence": {"type": NAME, "data": BASE64}} with
 * NAME the platform's name ("sim", "sgx", "tdx", "snp") and BASE64 the evidence bytes
 * (borrowed for the call). Sim evidence is parsed first and its report data checked against
 * bind_to (CF_E_BINDING when it binds another connection: a local error instead of a refusal);
 * hardware evidence is sent as it is, for cofferd to verify. The caller frees *ret_body with
 * free(). Errors: CF_E_INVALID_ARG (unknown platform, empty evidence), CF_E_LIMIT (more than
 * CF_ACTIVATION_EVIDENCE_MAX bytes), CF_E_BINDING, parse errors of sim evidence, CF_E_NOMEM. */
CF_FN cf_activation_body(SSL *bind_to, enum attest_platform platform, struct cf_slice evidence,
                         const char *policy, const char *service, char **ret_body);

/* Builds the JSON body of POST /v1/activate with sim evidence over measurement whose report
 * data binds the TLS exporter of bind_to. The caller frees *ret_body with free(). */
CF_FN cf_activation_body_sim(SSL *bind_to, const struct cf_pkey *platform_key,
                             const uint8_t measurement[static 32], const char *policy,
                             const char *service, char **ret_body);

/* Returns a new request body: body (a JSON object, e.g. from cf_activation_body) with the
 * member "csr" set to csr_pem (a PEM certificate request, cf_x509_csr_create), for a service
 * with a workload certificate (docs/api.md). body is only borrowed, so the same evidence can
 * be sent again with another request on the same connection. The caller frees *ret_body
 * with free(). Errors: CF_E_INVALID_ARG (csr_pem empty), CF_E_LIMIT (csr_pem longer than
 * CF_X509_CSR_MAX), CF_E_SYNTAX (body is not a JSON object), CF_E_NOMEM. */
CF_FN cf_activation_body_with_csr(const char *body, const char *csr_pem, char **ret_body);
