/* Thin wrappers over OpenSSL 3: randomness, hashes, HKDF, AES-256-GCM, signatures, key ids.
 *
 * No function here logs above debug or keeps state between calls, except cf_crypto_init. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"

#define CF_SHA256_SIZE    32
#define CF_SHA512_SIZE    64
#define CF_KEY_ID_HEX     (2 * CF_SHA256_SIZE + 1)
#define CF_AEAD_KEY_SIZE  32
#define CF_AEAD_NONCE_SIZE 12
#define CF_AEAD_TAG_SIZE  16
#define CF_AEAD_OVERHEAD  (CF_AEAD_NONCE_SIZE + CF_AEAD_TAG_SIZE)

CF_FN cf_crypto_init(void);

/* Fills out from getrandom(2); fails closed, never falls back. */
CF_FN cf_random(void *out, size_t n);

/* SHA-256 / SHA-512 over the concatenation of n_parts slices. */
CF_FN cf_sha256(const struct cf_slice *parts, size_t n_parts, uint8_t out[static CF_SHA256_SIZE]);
CF_FN cf_sha512(const struct cf_slice *parts, size_t n_parts, uint8_t out[static CF_SHA512_SIZE]);
/* Hex SHA-256 of one slice, into out (CF_KEY_ID_HEX bytes). */
CF_FN cf_sha256_hex(struct cf_slice data, char out[static CF_KEY_ID_HEX]);

/* HKDF-SHA256 (RFC 5869). */
CF_FN cf_hkdf_sha256(struct cf_slice ikm, struct cf_slice salt, struct cf_slice info, uint8_t *out,
                     size_t out_size);

/* AES-256-GCM with a random 96-bit nonce. Output: nonce || ciphertext || tag, appended to
 * out. open verifies the tag before releasing any plaintext; on failure nothing is appended
 * and the status is CF_E_MAC_INVALID. */
CF_FN cf_aead_seal(const uint8_t key[static CF_AEAD_KEY_SIZE], struct cf_slice aad,
                   struct cf_slice plain, struct cf_buf *out);
CF_FN cf_aead_open(const uint8_t key[static CF_AEAD_KEY_SIZE], struct cf_slice aad,
                   struct cf_slice sealed, struct cf_buf *out);

/* Asymmetric keys (opaque EVP_PKEY). */
enum cf_key_type { CF_KEY_ED25519 = 1, CF_KEY_P256, CF_KEY_P384, CF_KEY_RSA };
struct cf_pkey;

CF_FN cf_pkey_generate(enum cf_key_type type, struct cf_pkey **ret);
/* Loads a PEM private key (PKCS#8 or traditional) or public key (SPKI). */
CF_FN cf_pkey_from_pem(struct cf_slice pem, bool private_key, struct cf_pkey **ret);
/* Loads a DER SubjectPublicKeyInfo. */
CF_FN cf_pkey_from_spki(struct cf_slice der, struct cf_pkey **ret);
/* Ed25519 public key from its 32 raw bytes. */
CF_FN cf_pkey_ed25519_public(const uint8_t raw[static 32], struct cf_pkey **ret);
CF_FN cf_pkey_ed25519_raw_public(const struct cf_pkey *k, uint8_t out[static 32]);
void cf_pkey_free(struct cf_pkey *k);
static inline void cf_pkey_freep(struct cf_pkey **p)
{
        cf_pkey_free(*p);
        *p = NULL;
}
enum cf_key_type cf_pkey_type(const struct cf_pkey *k);
/* The underlying EVP_PKEY (borrowed), for TLS and X.509 glue inside crypto/. */
void *cf_pkey_evp(const struct cf_pkey *k);
/* PEM encodings, appended to out. The private one is a secret buffer's job: pass a secret buf. */
CF_FN cf_pkey_private_pem(const struct cf_pkey *k, struct cf_buf *out);
CF_FN cf_pkey_spki_der(const struct cf_pkey *k, struct cf_buf *out);
/* Key id: hex SHA-256 of the DER SubjectPublicKeyInfo. */
CF_FN cf_pkey_key_id(const struct cf_pkey *k, char out[static CF_KEY_ID_HEX]);

/* Signatures: Ed25519 (pure), ECDSA with SHA-256 (P-256) or SHA-384 (P-384), DER encoded. */
CF_FN cf_sign(const struct cf_pkey *k, struct cf_slice msg, struct cf_buf *sig);
CF_FN cf_verify(const struct cf_pkey *k, struct cf_slice msg, struct cf_slice sig);
