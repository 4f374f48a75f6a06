/* cofferd's TLS private key at rest (docs/formats/tls-key.md).
 *
 * The key that the attestation of cofferd binds must not be a plain file: a local root who
 * copied it could impersonate cofferd to every client that pinned its key id. It is kept in
 * two sealed files, both AES-256-GCM over the key's PKCS#8 PEM:
 *
 *   tls.key.sealed    under HKDF-SHA256(sealing key, info "coffer-tls-key-v1"): only this
 *                     TEE instance opens it;
 *   tls.key.recovery  under HKDF-SHA256(data key, info "coffer-tls-key-recovery-v1"): after a
 *                     k-of-n recovery on a new machine (new sealing key) cofferd gets its
 *                     original identity back from it.
 *
 * The additional data is the file's 38-byte header: magic, version, purpose and the raw key
 * id of the certificate the key belongs to, so a file sealed for another certificate, or the
 * other file swapped in, does not open. This module only transforms bytes; the data
 * directory code (datadir.c) reads and writes the files. */
#pragma once

#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define CAS_TLS_KEY_MAGIC       "CFTK"
#define CAS_TLS_KEY_VERSION     1
#define CAS_TLS_KEY_HEADER_SIZE (4 + 1 + 1 + CF_SHA256_SIZE)
/* The PEM of a P-256 PKCS#8 key is about 240 bytes; RSA-4096 about 3.3 KiB. */
#define CAS_TLS_KEY_PEM_MAX       8192
#define CAS_TLS_KEY_FILE_MAX      (CAS_TLS_KEY_HEADER_SIZE + CF_AEAD_OVERHEAD + CAS_TLS_KEY_PEM_MAX)
#define CAS_TLS_KEY_INFO_SEAL     "coffer-tls-key-v1"
#define CAS_TLS_KEY_INFO_RECOVERY "coffer-tls-key-recovery-v1"

/* Which root key a file is sealed under; also its byte 5. */
enum cas_tls_key_purpose {
        CAS_TLS_KEY_SEALED = 1,   /* tls.key.sealed: the sealing key */
        CAS_TLS_KEY_RECOVERY = 2, /* tls.key.recovery: the store's data key */
};

/* Seals key_pem (the private key, PKCS#8 PEM, 1..CAS_TLS_KEY_PEM_MAX bytes) for the
 * certificate whose raw key id is key_id, under a key derived from root (the sealing key for
 * CAS_TLS_KEY_SEALED, the data key for CAS_TLS_KEY_RECOVERY), and appends the file's bytes to
 * out (ciphertext: out need not be secret). root and key_pem are borrowed for the call.
 * Errors: CF_E_INVALID_ARG (unknown purpose, NULL), CF_E_LIMIT (key_pem empty or too large,
 * out too small), CF_E_RANDOM, CF_E_CRYPTO, CF_E_NOMEM. */
CF_FN cas_tls_key_seal(enum cas_tls_key_purpose purpose, const uint8_t root[static 32],
                       const uint8_t key_id[static CF_SHA256_SIZE], struct cf_slice key_pem,
                       struct cf_buf *out);

/* Reads a file made by cas_tls_key_seal (untrusted bytes, through a cursor) and appends the
 * PEM to key_pem, which should be a secret buffer; nothing is appended on failure.
 * Errors: CF_E_TRUNCATED (shorter than a header and an empty seal), CF_E_MALFORMED (wrong
 * magic), CF_E_VERSION (another version), CF_E_CONFLICT (the file is for the other purpose,
 * or for a certificate other than key_id: the two files or tls.crt were swapped),
 * CF_E_LIMIT (larger than CAS_TLS_KEY_FILE_MAX), CF_E_TAMPERED (the seal does not open:
 * modified bytes, or a different root key, e.g. another machine's sealing key; the two cannot
 * be told apart), CF_E_CRYPTO, CF_E_NOMEM. */
CF_FN cas_tls_key_unseal(enum cas_tls_key_purpose purpose, const uint8_t root[static 32],
                         const uint8_t key_id[static CF_SHA256_SIZE], struct cf_slice file,
                         struct cf_buf *key_pem);
