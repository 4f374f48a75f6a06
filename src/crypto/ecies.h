/* ECIES to a person's EC key (P-256 or P-384, the keys `coffer id new` makes).
 *
 * seal makes an ephemeral key on the recipient's curve, does ECDH with the recipient's
 * public key, derives an AES-256-GCM key with HKDF-SHA256 and encrypts. Layout of a sealed
 * message (docs/formats/recovery.md):
 *
 *   u8  version (CF_ECIES_VERSION)
 *   u16 big-endian length of the ephemeral public key, then that SubjectPublicKeyInfo (DER)
 *   nonce (12) || AES-256-GCM ciphertext || tag (16)
 *
 * key = HKDF-SHA256(ikm = ECDH shared secret (x coordinate),
 *                   salt = ephemeral SPKI DER || SHA-256(recipient SPKI DER),
 *                   info = the caller's info string)
 * The AEAD's additional data is the header (version, length and ephemeral SPKI), so no byte
 * of the message can change without the tag failing. The info string separates uses: a
 * message sealed for one purpose does not open under another. */
#pragma once

#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define CF_ECIES_VERSION   1
#define CF_ECIES_SPKI_MAX  256 /* a P-384 SPKI is 120 bytes */
#define CF_ECIES_PLAIN_MAX (1u << 20)
#define CF_ECIES_INFO_MAX  1024

/* Seals plain to recipient (a P-256 or P-384 public or private key, borrowed) and appends
 * the sealed message to out, only on success (out need not be secret: it is ciphertext).
 * Errors: CF_E_KEY (not a P-256/P-384 key), CF_E_LIMIT (plain or info too large),
 * CF_E_RANDOM, CF_E_CRYPTO, CF_E_NOMEM. */
CF_FN cf_ecies_seal(const struct cf_pkey *recipient, struct cf_slice info, struct cf_slice plain,
                    struct cf_buf *out);

/* Opens a message made by cf_ecies_seal with the recipient's private key (borrowed) and the
 * same info, and appends the plaintext to out only on success (pass a secret buffer).
 * sealed is untrusted. Errors: CF_E_VERSION (unknown version), CF_E_TRUNCATED, CF_E_LIMIT or
 * CF_E_MALFORMED (bad lengths), CF_E_KEY (the recipient is not a P-256/P-384 private key, or
 * the ephemeral key is not on the recipient's curve or does not parse), CF_E_MAC_INVALID
 * (wrong key, wrong info, or modified bytes: they cannot be told apart), CF_E_CRYPTO,
 * CF_E_NOMEM. */
CF_FN cf_ecies_open(const struct cf_pkey *recipient_private, struct cf_slice info,
                    struct cf_slice sealed, struct cf_buf *out);
