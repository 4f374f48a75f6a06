/* LibOS /dev/attestation evidence provider (SGX enclaves under a Gramine-style library OS).
 *
 * The interface (Gramine's "attestation pseudo-filesystem", documented in its
 * Documentation/attestation.rst): attestation_type names the remote attestation scheme the
 * manifest configured ("none", "epid" or "dcap"); the 64 bytes written to user_report_data
 * become the SGX report's REPORTDATA; reading quote returns the quote generated over it by
 * the quoting enclave. Coffer verifies ECDSA (DCAP) quotes only. */
#include "attest/provider.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "attest/provider_internal.h"
#include "base/log.h"

static const char g_missing_hint[] =
    " (SGX evidence needs a library OS with remote attestation, such as Gramine with "
    "sgx.remote_attestation = \"dcap\" in the manifest)";

static cf_status check_type(int dfd, const char *dir, char *err, size_t err_size)
{
        char type[PROVIDER_ATTR_MAX + 1], shown[PROVIDER_ATTR_MAX + 8];
        cf_status s;

        s = provider_read_text_at(dfd, dir, "attestation_type", type, sizeof(type), err, err_size);
        if (s.code == CF_E_NOT_FOUND) {
                return CF_OK; /* older LibOS versions have no attestation_type: try the quote */
        }
        TRY(s);
        if (strcmp(type, "dcap") == 0) {
                return CF_OK;
        }
        if (strcmp(type, "none") == 0) {
                return provider_fail(cf_fail(CF_E_UNSUPPORTED), err, err_size,
                                     "the LibOS has no remote attestation configured (%s/"
                                     "attestation_type is \"none\"; with Gramine, set "
                                     "sgx.remote_attestation = \"dcap\" in the manifest)",
                                     dir);
        }
        cf_log_escape(type, strlen(type), shown, sizeof(shown));
        return provider_fail(cf_fail(CF_E_UNSUPPORTED), err, err_size,
                             "%s/attestation_type is %s: Coffer verifies DCAP (ECDSA) quotes "
                             "only (with Gramine, set sgx.remote_attestation = \"dcap\")",
                             dir, shown);
}

cf_status provider_libos_get(const char *root,
                             const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                             struct attest_evidence *out, char *err, size_t err_size)
{
        const char *dir = root != NULL ? root : PROVIDER_LIBOS_ROOT_DEFAULT;
        struct attest_evidence ev;
        cf_status s;
        int dfd;

        TRY(provider_open_root(dir, "the LibOS attestation interface", g_missing_hint, &dfd, err,
                               err_size));
        attest_evidence_init(&ev);
        ev.platform = ATTEST_SGX;
        s = check_type(dfd, dir, err, err_size);
        if (cf_ok(s)) {
                s = provider_write_at(dfd, dir, "user_report_data", report_data,
                                      PROVIDER_REPORT_DATA_SIZE, err, err_size);
        }
        if (cf_ok(s)) {
                s = provider_read_at(dfd, dir, "quote", PROVIDER_EVIDENCE_MAX, &ev.bytes, err,
                                     err_size);
        }
        if (cf_ok(s) && ev.bytes.size == 0) {
                s = provider_fail(cf_fail(CF_E_EVIDENCE), err, err_size,
                                  "%s/quote is empty: the LibOS returned no quote", dir);
        }
        close(dfd);
        if (!cf_ok(s)) {
                attest_evidence_done(&ev);
                return s;
        }
        *out = ev;
        return CF_OK;
}
