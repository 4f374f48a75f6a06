/* The sim platform: evidence signed by a software platform key, for development and CI.
 *
 * It protects NOTHING against a local root, who can read the platform key and sign any
 * measurement. A policy accepts sim evidence only with `tolerate: [simulation]`.
 *
 * Evidence format v1 (little-endian, 204 bytes, docs/formats/sim-evidence.md):
 *   0   8  magic "CFSIMEV1"
 *   8   2  version = 1
 *   10  2  flags = 0 (reserved, must be zero)
 *   12 32  measurement (SHA-256 of the program file, see `coffer measure`)
 *   44 64  report data (chosen by the requester: binds a TLS channel or a nonce)
 *   108 32 platform public key (Ed25519)
 *   140 64 Ed25519 signature over "coffer-sim-evidence-v1" || bytes 0..139
 */
#pragma once

#include <stdint.h>

#include "attest/checks.h"
#include "base/cursor.h"
#include "crypto/crypto.h"

#define SIM_EVIDENCE_SIZE     204
#define SIM_MEASUREMENT_SIZE  32
#define SIM_REPORT_DATA_SIZE  64
#define SIM_PLATFORM_KEY_SIZE 32
#define SIM_SIGNATURE_SIZE    64

struct sim_evidence {
        uint16_t version;
        uint16_t flags;
        uint8_t measurement[SIM_MEASUREMENT_SIZE];
        uint8_t report_data[SIM_REPORT_DATA_SIZE];
        uint8_t platform_key[SIM_PLATFORM_KEY_SIZE];
        uint8_t signature[SIM_SIGNATURE_SIZE];
        struct cf_slice signed_part; /* borrows the input */
};

/* Parses (no verification). Fails closed on a bad magic, version, flags or size. */
CF_FN sim_evidence_parse(struct cf_slice bytes, struct sim_evidence *ret);
/* Parses and verifies the signature; fills res->claims (measurement, report_data,
 * platform_key as hex) and res->checks. CF_OK only when valid. */
CF_FN sim_evidence_verify(struct cf_slice bytes, struct attest_result *res);
/* Creates evidence signed by platform_key (an Ed25519 private key); appends to out. */
CF_FN sim_evidence_make(const struct cf_pkey *platform_key,
                        const uint8_t measurement[static SIM_MEASUREMENT_SIZE],
                        const uint8_t report_data[static SIM_REPORT_DATA_SIZE], struct cf_buf *out);

/* Report data that binds an activation to its TLS connection (design section 6):
 * SHA-512("coffer-activation-v1" || exporter). */
CF_FN sim_activation_report_data(const uint8_t exporter[static 32], uint8_t out[static 64]);
/* Report data of cofferd's own attestation: SHA-512("coffer-cas-attestation-v1" ||
 * key id (32 raw bytes of the TLS SubjectPublicKeyInfo hash) || nonce). */
CF_FN sim_cas_report_data(const uint8_t key_id[static 32], struct cf_slice nonce,
                          uint8_t out[static 64]);

/* Evidence provider (the only part of attest that does I/O): loads the sim platform key
 * from dir/platform.key, creating it (0600, directory 0700) on first use. dir NULL means
 * $COFFER_SIM_DIR, else $XDG_DATA_HOME/coffer/sim, else ~/.local/share/coffer/sim. */
CF_FN sim_platform_key_load(const char *dir, struct cf_pkey **ret);
/* The directory sim_platform_key_load(NULL, ...) uses, into out. */
CF_FN sim_platform_dir(char *out, size_t out_size);
