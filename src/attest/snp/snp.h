/* AMD SEV-SNP evidence: parse and verify ATTESTATION_REPORT structures (versions 2, 3 and 5;
 * Milan, Genoa, Turin), bare or wrapped in an Azure HCL report, against AMD KDS certificates
 * (VCEK or VLEK, ASK or ASVK, ARK).
 *
 * Everything here is a pure function of its inputs: bytes, collateral and the verification
 * time come in, a result with claims and an explained check list goes out. No I/O, no clock,
 * no logging above debug. The only state is a bounded cache of verified certificate chains
 * (thread-safe, see snp_cache_clear). Layouts follow the AMD SEV-SNP Firmware ABI
 * specification 56860 (ATTESTATION_REPORT, TCB_VERSION) and ../shared/vectors/README.md §8.3;
 * see docs/attestation-snp.md for the order of the checks and their names. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "attest/checks.h"
#include "base/cursor.h"
#include "base/status.h"

/* ATTESTATION_REPORT: 0x4A0 bytes; the signature covers [0, 0x2A0). */
#define SNP_REPORT_SIZE     0x4A0
#define SNP_SIGNED_SIZE     0x2A0
#define SNP_SIG_COMPONENT   72 /* R and S fields, little-endian */
#define SNP_SIG_SIGNIFICANT 48 /* P-384: the upper 24 bytes of each field must be zero */
#define SNP_CHIP_ID_SIZE    64
#define SNP_TURIN_CHIP_ID   8 /* Turin: 8 significant bytes of CHIP_ID, then zeros */
/* Azure HCL report: "HCLA" header (0x20), the SNP report, a 20-byte runtime-data header and
 * the variable data it describes; the buffer may be padded with zeros after that. */
#define SNP_HCL_REPORT_OFFSET 0x20
#define SNP_HCL_VAR_OFFSET    0x4D4
#define SNP_HCL_MAX_SIZE      (16u << 10)

enum snp_product {
        SNP_PRODUCT_UNKNOWN = 0,
        SNP_PRODUCT_MILAN,
        SNP_PRODUCT_GENOA,
        SNP_PRODUCT_TURIN,
};

/* The key that signed the report (KEY_INFO bits 4:2). */
enum snp_signing_key { SNP_KEY_VCEK = 0, SNP_KEY_VLEK = 1, SNP_KEY_NONE = 7 };

/* A decoded TCB_VERSION. Milan and Genoa: [BL, TEE, 0, 0, 0, 0, SNP, UCODE];
 * Turin: [FMC, BL, TEE, SNP, 0, 0, 0, UCODE]. reserved_zero is false when a reserved byte of
 * the layout is non-zero. */
struct snp_tcb {
        uint8_t bootloader, tee, snp, microcode, fmc;
        bool has_fmc;
        bool reserved_zero;
};

/* A parsed report: fixed fields are copied; the two slices borrow from the bytes given to
 * snp_report_parse, which must outlive this struct. Nothing in it is trusted before
 * snp_verify returned CF_OK. */
struct snp_report {
        uint32_t version, guest_svn;
        uint64_t policy;
        uint8_t family_id[16], image_id[16];
        uint32_t vmpl, signature_algo;
        uint8_t current_tcb[8];
        uint64_t platform_info;
        uint32_t key_info;
        uint8_t report_data[64], measurement[48], host_data[32];
        uint8_t id_key_digest[48], author_key_digest[48];
        uint8_t report_id[32], report_id_ma[32];
        uint8_t reported_tcb[8];
        uint8_t cpuid_family, cpuid_model, cpuid_stepping; /* v3+; zero in v2 */
        uint8_t chip_id[SNP_CHIP_ID_SIZE];
        uint8_t committed_tcb[8];
        uint8_t current_build, current_minor, current_major;
        uint8_t committed_build, committed_minor, committed_major;
        uint8_t launch_tcb[8];
        uint64_t launch_mit_vector, current_mit_vector; /* v5; zero before */
        uint8_t sig_r[SNP_SIG_COMPONENT], sig_s[SNP_SIG_COMPONENT];
        /* Offset of the first non-zero byte of a reserved range, or 0 when all are zero
         * (0 is never a reserved offset). */
        size_t reserved_nonzero_at;
        struct cf_slice signed_region; /* [0, 0x2A0) of the report */
        /* Azure HCL wrapping (hcl == false for a bare report). */
        bool hcl;
        uint32_t hcl_version, hcl_hash_type;
        struct cf_slice hcl_var_data;
};

/* Parses a bare ATTESTATION_REPORT (exactly SNP_REPORT_SIZE bytes; trailing bytes are an
 * error) or an Azure HCL report (detected by its "HCLA" signature; zero padding after the
 * variable data is allowed, anything else is not). Checks structure only: the size, the
 * version (2, 3 or 5, else CF_E_VERSION), the HCL header fields; reserved fields are reported
 * in reserved_nonzero_at for snp_verify to judge. Errors: CF_E_TRUNCATED, CF_E_TRAILING,
 * CF_E_VERSION, CF_E_MALFORMED, CF_E_UNSUPPORTED (HCL types other than SNP/SHA-256), CF_E_LIMIT.
 * ret is written only on success and borrows from bytes. */
CF_FN snp_report_parse(struct cf_slice bytes, struct snp_report *ret);

/* Decodes a raw TCB_VERSION for a product (UNKNOWN decodes with the Milan/Genoa layout). */
void snp_tcb_decode(const uint8_t raw[static 8], enum snp_product product, struct snp_tcb *ret);

/* Product from the report's CPUID bytes (v3+): family 0x19 model 0x00-0x0F Milan, 0x10-0x1F or
 * 0xA0-0xAF Genoa; family 0x1A Turin; anything else UNKNOWN. */
enum snp_product snp_product_from_cpuid(uint8_t family, uint8_t model);
/* "Milan", "Genoa", "Turin", or "unknown". */
const char *snp_product_name(enum snp_product p);

struct snp_options {
        int64_t now;           /* verification time, seconds since the epoch */
        int expected_stepping; /* -1: not checked */
};

/* Verifies an SNP attestation report (bare, or wrapped in an Azure HCL report whose
 * REPORT_DATA[0:32] must be SHA-256 of its variable data and REPORT_DATA[32:64] zero) against
 * collateral: VCEK or VLEK (DER or PEM), ASK or ASVK and ARK (PEM or DER, or one PEM with
 * several certificates); roles are recognised by certificate subject, never by position. The
 * ARK must be self-signed and equal to a pinned AMD ARK. res must have been set up with
 * attest_result_init; this appends checks and claims (claims are filled whenever the report
 * parses, and mean nothing unless res->valid) and sets res->valid; tcb_status stays "" (no
 * TCB status is evaluated for SNP). Returns CF_OK when res->valid, else the status of the
 * first failed check: CF_E_TRUNCATED, CF_E_TRAILING, CF_E_VERSION, CF_E_MALFORMED (reserved
 * fields, algorithm, key info), CF_E_COLLATERAL (certificates missing, TCB/chip id/product
 * mismatches), CF_E_CHAIN (pinning, issuers, chain signatures), CF_E_EXPIRED (with both dates
 * in the check), CF_E_SIG_INVALID (report signature), CF_E_BINDING (HCL), CF_E_KEY, CF_E_CERT,
 * CF_E_NOMEM, CF_E_LIMIT. Thread-safe. */
CF_FN snp_verify(struct cf_slice evidence, const struct attest_collateral *coll,
                 const struct snp_options *opt, struct attest_result *res);

/* Chain-only verification: cert holds a VCEK, VLEK, ASK or ASVK certificate (DER or PEM; a
 * PEM with several certificates names its first as the target and provides the others as
 * chain), verified against the certificates in cert and coll up to a pinned ARK, with
 * validity windows at opt->now. Claims describe the target (role, product, subject, window,
 * and for a VCEK/VLEK its TCB extensions and hwID). Same result and status conventions as
 * snp_verify. */
CF_FN snp_verify_cert(struct cf_slice cert, const struct attest_collateral *coll,
                      const struct snp_options *opt, struct attest_result *res);

/* Drops every cached verified chain (tests; or after the trust configuration changes). */
void snp_cache_clear(void);
/* Number of cache hits since start (tests and benchmarks). */
uint64_t snp_cache_hits(void);
