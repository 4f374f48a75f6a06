/* Set-wise verification of attestation collateral when it is imported (cofferd's
 * POST /v1/collateral): every file is verified as far as it can be against the pinned roots
 * (Intel SGX Root CA, AMD ARK Milan/Genoa/Turin), the collateral already stored and the other
 * files of the same import. A pure function: bytes and time in, one verdict per file out.
 *
 * The verifiers (intel_verify, snp_verify) stay the authority at use: they re-check
 * signatures (from their caches) and every validity window at verification time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/checks.h"
#include "base/status.h"

#define ATTEST_COLL_KIND_MAX   24
#define ATTEST_COLL_REASON_MAX 320
#define ATTEST_COLL_DIGEST_HEX 65

/* The verdict on one imported file. */
struct attest_collateral_file {
        bool ok;        /* verified, and within its window unless allow_expired */
        bool verified;  /* every signature and chain verified (windows aside) */
        bool in_window; /* every part of the file is within its validity window at now */
        /* "certificate", "crl", "tcb_info", "qe_identity", "bundle", "signature" */
        char kind[ATTEST_COLL_KIND_MAX];
        /* Lower-case hex SHA-256 of the DER certificate that verified the file (its issuer,
         * or the TCB Signing certificate of a signed body); "pinned" for a pinned root;
         * "" when unknown or not verified. */
        char issuer[ATTEST_COLL_DIGEST_HEX];
        char reason[ATTEST_COLL_REASON_MAX]; /* why not ok; "" when ok */
        char window[96];                     /* "from .. until" of the file, "" when none */
};

struct attest_collateral_report {
        struct attest_collateral_file files[ATTEST_COLLATERAL_MAX_FILES];
        size_t n; /* == files->n */
};

/* Verifies every blob of files (the files of one import request) against the pinned roots,
 * the blobs of stored (collateral already kept; may be NULL) and the other blobs of files.
 *
 * Rules: a certificate must chain by signature to the pinned Intel SGX Root CA or be it; an
 * AMD certificate (CN ARK-*, SEV-*) must verify with snp_verify_cert up to the pinned ARK of
 * its product (VCEK/VLEK through ASK/ASVK); a CRL must be signed by its issuer, itself
 * chained to the pinned root; a TCB Info or QE Identity body must be signed over its exact
 * bytes by an Intel SGX TCB Signing certificate issued by the pinned root; a detached
 * signature file must verify one such body; a bundle must satisfy this for each part. A file
 * whose issuer is missing is refused, naming the issuer. Each file must also be within its
 * validity window at now, unless allow_expired. Stored blobs only supply issuers and
 * signatures: they are not judged (they may have expired since their import), and stored
 * blobs that do not parse are skipped.
 *
 * ret is filled in every case (ret->n = files->n); out (may be NULL) gets two checks per file,
 * "collateral[i] NAME: signature" and "collateral[i] NAME: window". Returns CF_OK when every
 * file is ok, CF_E_COLLATERAL otherwise; CF_E_NOMEM, CF_E_LIMIT (too many checks) on internal
 * failures. Thread-safe. */
CF_FN attest_collateral_check(const struct attest_collateral *files,
                              const struct attest_collateral *stored, int64_t now,
                              bool allow_expired, struct attest_collateral_report *ret,
                              struct attest_checks *out);
