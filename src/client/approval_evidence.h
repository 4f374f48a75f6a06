/* Evidence for an attested approval of an online proposal (docs/api.md, "Proposals"): the
 * approving program proves its identity exactly as coffer-run does for an activation, with
 * evidence whose report data binds the TLS connection the approval is sent on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "base/status.h"

/* Builds the body of POST /v1/policies/NAME/proposals/DIGEST/approvals for an attested
 * program member:
 *   {"service": service, "verdict": "approve"|"veto", "evidence": {"type", "data"}}
 * The evidence comes from tee ("sim", "tdx", "snp", "sgx" or "auto"; NULL means "sim") over
 * the report data SHA-512("coffer-activation-v1" || TLS exporter of bind_to). For sim, it is
 * signed by the sim platform key of $COFFER_SIM_DIR (as coffer-run's) over measurement, the
 * SHA-256 of the approving executable (the caller measures it). tsm_root and libos_root are
 * the configfs-tsm and LibOS attestation roots of the hardware providers (NULL: the
 * defaults), as coffer-run's --tsm-root and --attestation-root. The caller frees *ret_body
 * with free(). On failure err (err_size > 0) says why in one line. Errors: CF_E_INVALID_ARG
 * (unknown tee, bad service), the provider's errors, CF_E_TLS, CF_E_NOMEM. */
CF_FN cf_approval_evidence_body(SSL *bind_to, const char *tee, const char *tsm_root,
                                const char *libos_root, const uint8_t measurement[32],
                                const char *service, bool veto, char **ret_body, char *err,
                                size_t err_size);

/* SHA-256 of the file at path (at most 1 GiB): the sim measurement of a program. */
CF_FN cf_measure_file(const char *path, uint8_t out[32]);
