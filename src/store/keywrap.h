/* Wrapping of the store's data key under a sealing key (ARCHITECTURE.md §8).
 *
 * cofferd generates the data key once, wraps it under a key from the TEE's sealing facility
 * (or, in sim, a key file) and keeps only the wrapped form on disk. Layout of a wrapped key
 * (STORE_WRAPPED_KEY_SIZE bytes): nonce (12) || AES-256-GCM(data key) (32) || tag (16),
 * with AAD "coffer-datakey-v1". */
#pragma once

#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"

#define STORE_WRAP_KEY_SIZE    32
#define STORE_WRAPPED_KEY_SIZE (12 + 32 + 16)

/* Wraps a 32-byte data key under a 32-byte sealing key and appends the result to out (not
 * secret: it is ciphertext). Both keys are borrowed for the call. Errors: CF_E_LIMIT (out
 * too small), CF_E_RANDOM, CF_E_CRYPTO, CF_E_NOMEM. */
CF_FN store_wrap_key(const uint8_t sealing_key[static STORE_WRAP_KEY_SIZE],
                     const uint8_t data_key[static STORE_WRAP_KEY_SIZE], struct cf_buf *out);

/* Unwraps a key made by store_wrap_key into data_key, which is written only on success (the
 * caller wipes it after use). Errors: CF_E_MALFORMED (wrong size), CF_E_TAMPERED (wrong
 * sealing key or modified bytes; the two cannot be told apart), CF_E_CRYPTO, CF_E_NOMEM. */
CF_FN store_unwrap_key(const uint8_t sealing_key[static STORE_WRAP_KEY_SIZE],
                       struct cf_slice wrapped, uint8_t data_key[static STORE_WRAP_KEY_SIZE]);
