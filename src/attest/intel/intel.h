/* Intel SGX and TDX (DCAP ECDSA) evidence: quote parsing and offline verification against
 * Intel PCS collateral, with Intel's TCB evaluation and one explained check per decision.
 *
 * Everything here is a pure function of its inputs (quote bytes, collateral blobs, the
 * verification time): no I/O, no clock, no logging above debug. See docs/attestation-intel.md
 * for the order of checks, their names and the TCB algorithm. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/checks.h"
#include "base/cursor.h"
#include "base/status.h"

/* Bounds on untrusted sizes (quote buffers are a few KiB; the PCK chain is ~4 KiB of PEM). */
#define INTEL_QUOTE_MAX          (64u << 10)
#define INTEL_QUOTE_SIG_DATA_MAX (32u << 10)
#define INTEL_QE_AUTH_MAX        512u
#define INTEL_CERT_DATA_MAX      (24u << 10)

#define INTEL_TEE_SGX 0x00000000u
#define INTEL_TEE_TDX 0x00000081u

/* Report body types (quote v5 numbering; v3 is always SGX, v4 follows the TEE type). */
enum intel_body_type { INTEL_BODY_SGX = 1, INTEL_BODY_TD10 = 2, INTEL_BODY_TD15 = 3 };

/* An SGX REPORT body (384 bytes): the application enclave's body or the QE's report. */
struct intel_sgx_report {
        uint8_t cpusvn[16];
        uint32_t miscselect;
        uint8_t attributes[16]; /* flags (8, bit 1 = DEBUG) then XFRM (8) */
        uint8_t mrenclave[32];
        uint8_t mrsigner[32];
        uint16_t isvprodid;
        uint16_t isvsvn;
        uint8_t report_data[64];
};

/* A TD report body (584 bytes; TDX 1.5 adds TEE_TCB_SVN2 and MRSERVICETD). */
struct intel_td_report {
        uint8_t tee_tcb_svn[16]; /* [0] TDX module SVN, [1] module major version */
        uint8_t mrseam[48];
        uint8_t mrsignerseam[48];
        uint8_t seam_attributes[8];
        uint8_t td_attributes[8]; /* bit 0 of byte 0 = DEBUG */
        uint8_t xfam[8];
        uint8_t mrtd[48];
        uint8_t mrconfigid[48];
        uint8_t mrowner[48];
        uint8_t mrownerconfig[48];
        uint8_t rtmr[4][48];
        uint8_t report_data[64];
        uint8_t tee_tcb_svn2[16]; /* body type 3 only, else zero */
        uint8_t mrservicetd[48];  /* body type 3 only, else zero */
};

/* A parsed quote. Slices borrow from the buffer given to intel_quote_parse, which must
 * outlive this struct. Nothing in it is trusted until intel_verify has checked it. */
struct intel_quote {
        uint16_t version;         /* 3, 4 or 5 */
        uint16_t att_key_type;    /* 2 = ECDSA P-256 (the only one accepted) */
        uint32_t tee_type;        /* INTEL_TEE_SGX or INTEL_TEE_TDX */
        uint16_t qe_svn, pce_svn; /* header values: informational only */
        uint8_t qe_vendor_id[16];
        uint8_t user_data[20];
        enum intel_body_type body_type;
        struct intel_sgx_report sgx;   /* body_type == INTEL_BODY_SGX */
        struct intel_td_report td;     /* body_type == INTEL_BODY_TD10 or TD15 */
        struct cf_slice signed_region; /* header || body (v5: with type and size) */
        uint8_t signature[64];         /* r || s, big-endian */
        uint8_t att_key[64];           /* X || Y, big-endian */
        struct cf_slice qe_report_raw; /* 384 bytes signed by the PCK key */
        struct intel_sgx_report qe_report;
        uint8_t qe_report_signature[64];
        struct cf_slice qe_auth_data;
        struct cf_slice pck_chain_pem; /* certification data type 5 */
        size_t size;                   /* bytes delimited by the quote's own length fields */
        size_t trailing;               /* bytes after them (padding of quote-generation buffers) */
};

/* Parses an SGX ECDSA quote v3 or a quote v4/v5 (SGX or TDX bodies) by its length fields.
 * Bytes after the signature data are not an error here: they are counted in ret->trailing.
 * Fails closed: CF_E_VERSION (unknown version or body type), CF_E_UNSUPPORTED (key type
 * other than ECDSA P-256, unknown TEE type, certification data other than a PEM PCK chain),
 * CF_E_TRUNCATED, CF_E_TRAILING (bytes left inside a length-delimited structure),
 * CF_E_MALFORMED, CF_E_LIMIT. ret is written only on success. */
CF_FN intel_quote_parse(struct cf_slice bytes, struct intel_quote *ret);

struct intel_options {
        int64_t now; /* verification time, seconds since the epoch */
};

/* Verifies an SGX ECDSA quote v3 or a TDX quote v4/v5 (body types 2 and 3) against the
 * collateral, recognised by content (Intel PCS TCB Info v2/v3 and QE Identity, as served or
 * split into signed body + hex signature, or inside a dcap-qvl style JSON bundle; issuer
 * chains; PCK and root CA CRLs in DER or PEM; Intel SGX Root CA). The root is pinned by
 * its SHA-256 fingerprint and compiled in. Unrecognised blobs are ignored (noted in a
 * check), so one folder may also hold other platforms' collateral.
 *
 * res must have been initialised with attest_result_init; the caller keeps ownership. It is
 * filled in every case: valid (every check before TCB evaluation passed), tcb_status
 * (Intel's names; "NoMatchingLevel" when no level matches; "" when no TCB Info was given),
 * advisories, claims and checks. Returns CF_OK when valid and, if a TCB Info was given, a
 * TCB level matched; otherwise the status of the first failure (CF_E_SIG_INVALID,
 * CF_E_CHAIN, CF_E_EXPIRED, CF_E_REVOKED, CF_E_COLLATERAL, CF_E_BINDING, CF_E_TCB, parse
 * errors). Thread-safe: parsed and verified PCK chains and collateral are kept in a
 * bounded process-wide cache keyed by SHA-256 of their bytes, behind a mutex. */
CF_FN intel_verify(struct cf_slice quote, const struct attest_collateral *coll,
                   const struct intel_options *opt, struct attest_result *res);

/* Frees every cached chain and collateral set (tests, leak checkers, shutdown). Entries in
 * use by a running intel_verify are freed when it finishes. */
void intel_cache_clear(void);
