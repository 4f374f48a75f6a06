/* Hardware evidence providers: obtain a TEE's evidence for 64 bytes of report data.
 *
 * Two kernel / LibOS interfaces are supported, each rooted at a configurable directory so
 * tests can drive them against a fake tree:
 *   - configfs-tsm (Linux >= 6.7, TDX and SEV-SNP guests): a report entry is created with
 *     mkdir under /sys/kernel/config/tsm/report, report data is written to its inblob and
 *     the quote / attestation report is read from its outblob (provider_tsm.c);
 *   - the LibOS /dev/attestation interface (SGX enclaves under Gramine-style library OSes):
 *     report data is written to user_report_data and the quote read from quote
 *     (provider_libos.c).
 *
 * Besides sim_platform_key_load, this is the only part of attest that does I/O. Providers
 * never parse or verify what they return: the evidence is untrusted bytes for the verifier.
 * Every failure fills a caller-supplied err buffer with one line naming the path and the
 * reason (errno text, unexpected value), ready to show to a person. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "attest/checks.h"
#include "base/cursor.h"
#include "base/status.h"

#define PROVIDER_REPORT_DATA_SIZE   64
#define PROVIDER_TSM_ROOT_DEFAULT   "/sys/kernel/config/tsm/report"
#define PROVIDER_LIBOS_ROOT_DEFAULT "/dev/attestation"
/* Largest quote / report accepted from a provider (TDX quotes with a certification chain are
 * about 5-8 KiB; the kernel caps outblob at 32 KiB today). */
#define PROVIDER_EVIDENCE_MAX (64u << 10)
/* Largest auxiliary blob (SEV-SNP certificate table: VCEK, ASK, ARK, a few KiB). */
#define PROVIDER_AUX_MAX (64u << 10)
/* Largest small text attribute (provider, generation, attestation_type). */
#define PROVIDER_ATTR_MAX 64
/* How many times a configfs-tsm report is retried when another writer raced with us. */
#define PROVIDER_TSM_ATTEMPTS 3
/* How long to wait for a new report entry's attributes to appear (configfs creates them
 * with the directory, so real kernels never wait; user-space emulations of the interface
 * may take a moment). */
#define PROVIDER_TSM_POPULATE_WAIT_MS 2000

/* Evidence obtained from a provider. bytes is the quote / attestation report; aux is
 * supplementary data (the SEV-SNP certificate table from configfs-tsm auxblob) and is empty
 * when the provider has none. */
struct attest_evidence {
        enum attest_platform platform;
        struct cf_buf bytes;
        struct cf_buf aux;
};

/* Initialises e empty (platform 0). Cannot fail. */
void attest_evidence_init(struct attest_evidence *e);
/* Frees e's buffers; e may be initialised-but-empty. */
void attest_evidence_done(struct attest_evidence *e);

/* Obtains a TDX quote or an SEV-SNP attestation report through configfs-tsm at root (NULL
 * means PROVIDER_TSM_ROOT_DEFAULT). Creates a uniquely named report entry, writes
 * report_data to inblob, reads outblob, provider and (SEV-SNP only, when present) auxblob,
 * checks with the generation counter that no other writer raced (retrying up to
 * PROVIDER_TSM_ATTEMPTS times) and removes the entry on every path.
 * On success *out is initialised, filled and owned by the caller (attest_evidence_done);
 * on failure *out is not touched and err (err_size > 0) says why.
 * Errors: CF_E_NOT_FOUND (no configfs-tsm at root), CF_E_IO / CF_E_PERMISSION (a system
 * call failed), CF_E_LIMIT (outblob larger than PROVIDER_EVIDENCE_MAX), CF_E_EVIDENCE (empty
 * outblob), CF_E_UNSUPPORTED (unknown provider), CF_E_MALFORMED (unreadable generation),
 * CF_E_CONFLICT (raced on every attempt), CF_E_TIMEOUT (entry never populated). */
CF_FN provider_tsm_get(const char *root,
                       const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                       struct attest_evidence *out, char *err, size_t err_size);

/* Obtains an SGX DCAP quote through a LibOS /dev/attestation interface at root (NULL means
 * PROVIDER_LIBOS_ROOT_DEFAULT): checks attestation_type when present ("dcap" required),
 * writes report_data to user_report_data and reads quote. Ownership and err as for
 * provider_tsm_get. Errors: CF_E_NOT_FOUND (no interface at root), CF_E_UNSUPPORTED (the LibOS
 * has no DCAP remote attestation configured), CF_E_IO / CF_E_PERMISSION, CF_E_LIMIT,
 * CF_E_EVIDENCE (empty quote). */
CF_FN provider_libos_get(const char *root,
                         const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                         struct attest_evidence *out, char *err, size_t err_size);

enum provider_kind { PROVIDER_SIM = 1, PROVIDER_TSM, PROVIDER_LIBOS };

/* The provider to use and the platform it must deliver (0: whatever configfs-tsm reports,
 * which is what "auto" asks for). */
struct provider_choice {
        enum provider_kind kind;
        enum attest_platform platform;
};

/* Picks the provider for tee: "auto" (configfs-tsm if tsm_root is a directory, else
 * /dev/attestation if libos_root exists, else sim), or an explicit "sim", "tdx", "snp" or
 * "sgx". NULL roots mean the defaults. Only checks existence; nothing is written.
 * Errors: CF_E_INVALID_ARG for an unknown tee (err says which values are accepted). */
CF_FN provider_choose(const char *tee, const char *tsm_root, const char *libos_root,
                      struct provider_choice *ret, char *err, size_t err_size);

/* Obtains evidence from the chosen hardware provider and checks it is of the platform the
 * choice asks for (CF_E_UNSUPPORTED with a message otherwise: e.g. --tee tdx on an SEV-SNP
 * guest). Sim evidence is not made here (it needs the program's measurement and the platform
 * key: see sim_evidence_make): a PROVIDER_SIM choice fails with CF_E_INVALID_ARG.
 * Ownership and err as for provider_tsm_get. */
CF_FN provider_get(const struct provider_choice *choice, const char *tsm_root,
                   const char *libos_root,
                   const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                   struct attest_evidence *out, char *err, size_t err_size);
