/* Internals of the Intel DCAP verifier, shared by its .c files and its tests only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "attest/intel/intel.h"
#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define INTEL_PEM_CERTS_MAX   8u /* certificates in one PEM text */
#define INTEL_DER_MAX         (16u << 10)
#define INTEL_CRL_DER_MAX     (1u << 20)
#define INTEL_COLL_CERTS_MAX  64u /* bits of a uint64_t mask */
#define INTEL_COLL_CRLS_MAX   16u
#define INTEL_COLL_SIGNED_MAX 16u
#define INTEL_COLL_SIGS_MAX   16u
#define INTEL_TCB_LEVELS_MAX  128u
#define INTEL_MODULE_IDS_MAX  16u
#define INTEL_NAME_MAX        96u
#define INTEL_STATUS_MAX      48u

/* ---- x509.c: strict PEM/DER loading, times, names, the PCK SGX extension ---- */

/* Decodes every CERTIFICATE block of a PEM text. Only whitespace may separate blocks, and
 * only whitespace and NUL bytes may follow the last (G18). Caller frees certs[0..*ret_n). */
CF_FN intel_pem_certs(struct cf_slice pem, X509 **certs, size_t max, size_t *ret_n);
/* Decodes the single X509 CRL block of a PEM text. */
CF_FN intel_pem_crl(struct cf_slice pem, X509_CRL **ret);
/* DER certificate / CRL; every byte must be consumed. */
CF_FN intel_der_cert(struct cf_slice der, X509 **ret);
CF_FN intel_der_crl(struct cf_slice der, X509_CRL **ret);
/* Seconds since the epoch of an ASN.1 time. */
CF_FN intel_asn1_time(const ASN1_TIME *t, int64_t *ret);
/* Subject / issuer common name, as a C string (CF_E_CERT when absent or too long). */
CF_FN intel_name_cn(const X509_NAME *name, char *out, size_t out_size);
/* True when the SHA-256 of the DER certificate equals the pinned Intel SGX Root CA. */
bool intel_cert_is_pinned_root(X509 *cert);
/* The certificate's public key as a project key (P-256 required: CF_E_KEY otherwise). */
CF_FN intel_cert_key(X509 *cert, struct cf_pkey **ret);
/* The P-256 public key from raw X || Y (CF_E_KEY when not on the curve). */
CF_FN intel_p256_key(const uint8_t xy[64], struct cf_pkey **ret);
/* Verifies a raw r || s ECDSA P-256/SHA-256 signature (Intel's format, G6). */
CF_FN intel_verify_raw(const struct cf_pkey *key, struct cf_slice msg, const uint8_t sig[64]);
/* Verifies that issuer signed cert (DER signature) and that the names chain. */
CF_FN intel_cert_signed_by(X509 *cert, X509 *issuer);

/* The PCK certificate's SGX extension, OID 1.2.840.113741.1.13.1. */
struct intel_pck_ext {
        uint8_t comp[16]; /* SGX TCB component SVNs (.2.1 .. .2.16) */
        uint16_t pcesvn;  /* .2.17 */
        uint8_t cpusvn[16];
        uint8_t pce_id[2];
        uint8_t fmspc[6];
        bool has_instance;
        uint8_t instance_id[16]; /* Platform CA PCKs only */
};
CF_FN intel_pck_ext_parse(X509 *cert, struct intel_pck_ext *ret);

/* ---- chain.c: the PCK chain of a quote, parsed and signature-checked once ---- */

struct intel_chain {
        X509 *certs[3]; /* PCK leaf, PCK CA (Processor or Platform), root */
        struct cf_pkey *pck_key;
        struct intel_pck_ext ext;
        bool root_pinned;
        bool sig_ok[3]; /* leaf by CA, CA by root, root by itself */
        int64_t not_before[3], not_after[3];
        char cn[3][INTEL_NAME_MAX];
};
/* Parses the PEM chain of a quote (exactly leaf, CA, root) and checks its signatures. A
 * chain that parses is returned even when a signature fails (the flags say which), so the
 * caller can explain; parse failures return an error. */
CF_FN intel_chain_build(struct cf_slice pem, struct intel_chain **ret);
void intel_chain_free(struct intel_chain *c);

/* ---- collateral.c: recognition by content and parsing ---- */

struct intel_level {
        uint8_t sgx[16];
        uint16_t pcesvn;
        bool has_tdx;
        uint8_t tdx[16];
        uint16_t isvsvn; /* QE identity and TDX module levels */
        char status[INTEL_STATUS_MAX];
        char date[32];
        json_t *advisories; /* borrowed from the document; NULL when none */
};

struct intel_module_id {
        char id[16]; /* "TDX_01" */
        uint8_t mrsigner[48];
        uint8_t attributes[8], attributes_mask[8];
        struct intel_level *levels;
        size_t n_levels;
};

struct intel_tcb_info {
        int version; /* 2 or 3 */
        char id[8];  /* "SGX" or "TDX" ("SGX" for v2) */
        int64_t issue_date, next_update;
        uint8_t fmspc[6];
        uint8_t pce_id[2];
        int64_t eval_number;
        struct intel_level *levels;
        size_t n_levels;
        bool has_module;
        uint8_t module_mrsigner[48];
        uint8_t module_attributes[8], module_attributes_mask[8];
        struct intel_module_id *modules;
        size_t n_modules;
};

struct intel_qe_identity {
        char id[16]; /* "QE", "TD_QE", "QVE" */
        int version;
        int64_t issue_date, next_update;
        uint32_t miscselect, miscselect_mask;
        uint8_t attributes[16], attributes_mask[16];
        uint8_t mrsigner[32];
        uint16_t isvprodid;
        struct intel_level *levels;
        size_t n_levels;
};

enum intel_signed_kind { INTEL_SIGNED_TCB_INFO = 1, INTEL_SIGNED_QE_IDENTITY };

struct intel_signed {
        enum intel_signed_kind kind;
        char source[INTEL_NAME_MAX];
        uint8_t *body; /* exact signed bytes */
        size_t body_size;
        bool has_sig;
        uint8_t sig[64];
        json_t *doc;
        struct intel_tcb_info tcb;   /* kind == TCB_INFO */
        struct intel_qe_identity qe; /* kind == QE_IDENTITY */
        uint64_t verified_by;        /* bit i: signing cert i verifies the signature */
};

enum intel_crl_role { INTEL_CRL_ROOT = 1, INTEL_CRL_PROCESSOR, INTEL_CRL_PLATFORM };

struct intel_crl {
        X509_CRL *crl;
        enum intel_crl_role role;
        char source[INTEL_NAME_MAX];
        int64_t this_update, next_update;
        int sig_state; /* 1 verified, 0 not verified yet (issuer not given), -1 bad */
};

struct intel_coll {
        struct intel_signed signed_items[INTEL_COLL_SIGNED_MAX];
        size_t n_signed;
        X509 *certs[INTEL_COLL_CERTS_MAX];
        char cert_source[INTEL_COLL_CERTS_MAX][INTEL_NAME_MAX];
        size_t n_certs;
        uint64_t signing_ok; /* bit i: certs[i] is a TCB Signing cert issued by the root */
        struct intel_crl crls[INTEL_COLL_CRLS_MAX];
        size_t n_crls;
        uint8_t loose_sigs[INTEL_COLL_SIGS_MAX][64];
        char loose_source[INTEL_COLL_SIGS_MAX][INTEL_NAME_MAX];
        bool loose_used[INTEL_COLL_SIGS_MAX];
        size_t n_loose;
        char ignored[8][INTEL_NAME_MAX];
        size_t n_ignored;
        char bad_root[INTEL_NAME_MAX]; /* a root-named certificate that is not the pinned one */
        cf_status error;               /* first malformed blob: the whole set is refused */
        char error_source[INTEL_NAME_MAX];
};

/* Recognises and parses every blob; verifies what needs only the (pinned) root: TCB
 * Signing certificates, signed JSON bodies, CRLs whose issuer is the root or a PCK CA given
 * in the collateral. root may be NULL (then nothing is verified). A malformed blob is
 * recorded in ret->error instead of failing, so the caller can explain. */
CF_FN intel_coll_build(const struct attest_collateral *coll, X509 *root, struct intel_coll **ret);
void intel_coll_free(struct intel_coll *c);

/* ---- tcb.c: Intel's TCB level matching and status merge ---- */

/* Index of a known status name (severity order), or -1. */
int intel_status_rank(const char *status);
/* The first platform level the PCK's SGX SVNs and PCESVN (and, for TDX, TEE_TCB_SVN) reach;
 * NULL when none does (TCB not supported). */
const struct intel_level *intel_match_platform(const struct intel_tcb_info *t,
                                               const struct intel_pck_ext *e,
                                               const struct intel_quote *q);
/* The same with explicit TEE TCB SVNs (TEE_TCB_SVN or, for the current TCB of a TD 1.5,
 * TEE_TCB_SVN2); NULL tee_tcb_svn matches SGX levels only. */
const struct intel_level *intel_match_platform_svn(const struct intel_tcb_info *t,
                                                   const struct intel_pck_ext *e,
                                                   const uint8_t *tee_tcb_svn);
/* The first level whose ISVSVN the given one reaches (QE identity, TDX module). */
const struct intel_level *intel_match_isvsvn(const struct intel_level *levels, size_t n,
                                             uint16_t isvsvn);
/* The platform status raised by an OutOfDate or Revoked QE or TDX module status. */
const char *intel_merge_status(const char *platform, const char *other);

/* TD 1.5 statuses of Intel's QVL (never found in collateral, only produced by evaluation). */
#define INTEL_TD_RELAUNCH_ADVISED        "TDRelaunchAdvised"
#define INTEL_TD_RELAUNCH_ADVISED_CONFIG "TDRelaunchAdvisedConfigurationNeeded"
/* Intel QVL's checkForRelaunch: the final status of a TD 1.5 quote from its launch status
 * (evaluated with TEE_TCB_SVN) and its current status (evaluated with TEE_TCB_SVN2). Returns
 * launch, or one of the two relaunch statuses (static strings). */
const char *intel_relaunch_status(const char *launch, const char *current);
