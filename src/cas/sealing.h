/* Sealing-key providers: a 32-byte key that only this TEE instance (same platform, same
 * measurement) can derive. cofferd wraps the store's data key under it (store/keywrap.h);
 * on a machine where the key differs it falls back to k-of-n recovery
 * (docs/formats/recovery.md).
 *
 *   sim  a random key in a file (created 0600 on first use). Protects nothing against a local
 *        root; the caller warns loudly.
 *   snp  the SEV-SNP firmware's derived key, through the Linux SEV guest driver's
 *        SNP_GET_DERIVED_KEY ioctl: root key VCEK (bound to this chip), mixing in the guest
 *        measurement and the guest policy, so another cofferd build or a weaker policy derives
 *        a different key. VMPL 0 is requested: the guest kernel must run at VMPL 0.
 *   sgx  the MRENCLAVE sealing key that the LibOS (Gramine) exposes as the 16-byte file
 *        <dir>/_sgx_mrenclave, expanded with HKDF-SHA256 (info "coffer-sealing-v1").
 *
 * The hardware interfaces are reached only through paths given by the caller and an
 * injectable ioctl, so tests run against fakes that behave like the kernel. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define CAS_SEALING_KEY_SIZE     32
#define CAS_SEALING_SNP_DEVICE   "/dev/sev-guest"
#define CAS_SEALING_SGX_KEYS_DIR "/dev/attestation/keys"
#define CAS_SEALING_SGX_KEY_NAME "_sgx_mrenclave"
#define CAS_SEALING_SGX_KEY_SIZE 16
#define CAS_SEALING_HKDF_INFO    "coffer-sealing-v1"

enum cas_sealing_kind { CAS_SEALING_SIM = 1, CAS_SEALING_SNP, CAS_SEALING_SGX };

/* How the provider reaches the kernel; NULL (or a NULL member) means the real ioctl(2). */
struct cas_sealing_ops {
        int (*ioctl)(int fd, unsigned long req, void *arg);
};

/* Derives (snp, sgx) or loads/creates (sim) the sealing key into key, written only on success;
 * the caller wipes it after use.
 *   path: sim: the key file (required); snp: the guest device (NULL: CAS_SEALING_SNP_DEVICE);
 *         sgx: the LibOS keys directory (NULL: CAS_SEALING_SGX_KEYS_DIR).
 *   ops:  NULL for the real kernel; tests pass a fake ioctl (used by snp only).
 *   err:  on failure, a one-line reason naming the path (may be NULL when err_size is 0); the
 *         library does not log it: the caller does, once.
 * Errors: CF_E_INVALID_ARG (unknown kind, sim without a path), CF_E_NOT_FOUND (device, key
 * file or directory missing), CF_E_PERMISSION, CF_E_IO (the ioctl or the firmware failed;
 * err has the firmware and VMM error codes), CF_E_MALFORMED (a key file of the wrong size),
 * CF_E_LIMIT (path too long), CF_E_RANDOM, CF_E_CRYPTO. */
CF_FN cas_sealing_key(enum cas_sealing_kind kind, const char *path,
                      const struct cas_sealing_ops *ops, uint8_t key[static CAS_SEALING_KEY_SIZE],
                      char *err, size_t err_size);

/* "sim", "snp", "sgx" <-> the kind. parse fails with CF_E_INVALID_ARG for anything else. */
CF_FN cas_sealing_kind_parse(const char *name, enum cas_sealing_kind *ret);
const char *cas_sealing_kind_name(enum cas_sealing_kind kind);

/* The Linux SEV guest driver's ABI (include/uapi/linux/sev-guest.h), written out here with
 * size checks so the build does not depend on kernel headers; exposed for test fakes. */
struct cas_snp_derived_key_req {
        uint32_t root_key_select; /* 0 = VCEK, 1 = VMRK */
        uint32_t rsvd;
        uint64_t guest_field_select; /* CAS_SNP_FIELD_* */
        uint32_t vmpl;
        uint32_t guest_svn;
        uint64_t tcb_version;
};

/* The firmware's MSG_KEY_RSP: status (u32 LE), 28 reserved bytes, the 32-byte derived key. */
struct cas_snp_derived_key_resp {
        uint8_t data[64];
};

struct cas_snp_guest_request_ioctl {
        uint8_t msg_version; /* must be non-zero; 1 */
        uint64_t req_data;   /* user address of the request */
        uint64_t resp_data;  /* user address of the response */
        uint64_t exitinfo2;  /* bits 31..0 firmware error, bits 63..32 VMM error */
};

#define CAS_SNP_ROOT_KEY_VCEK      0u
#define CAS_SNP_FIELD_GUEST_POLICY (1u << 0)
#define CAS_SNP_FIELD_IMAGE_ID     (1u << 1)
#define CAS_SNP_FIELD_FAMILY_ID    (1u << 2)
#define CAS_SNP_FIELD_MEASUREMENT  (1u << 3)
#define CAS_SNP_FIELD_GUEST_SVN    (1u << 4)
#define CAS_SNP_FIELD_TCB_VERSION  (1u << 5)
#define CAS_SNP_KEY_FIELDS         (CAS_SNP_FIELD_GUEST_POLICY | CAS_SNP_FIELD_MEASUREMENT)
#define CAS_SNP_KEY_OFFSET         32
/* _IOWR('S', 0x1, struct snp_guest_request_ioctl): read/write, size 32, type 'S', number 1. */
#define CAS_SNP_GET_DERIVED_KEY 0xc0205301ul
