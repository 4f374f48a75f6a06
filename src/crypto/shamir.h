/* Shamir secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), byte by byte.
 *
 * A share is x (1 byte, 1..255) || y (one byte per secret byte). Any threshold shares give
 * the secret back; fewer give every secret with equal probability. The field arithmetic is
 * constant time: no table lookups and no branches on secret values.
 * Format and use in cofferd: docs/formats/recovery.md. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define CF_SHAMIR_SECRET_MAX 64
#define CF_SHAMIR_SHARE_MAX  (1 + CF_SHAMIR_SECRET_MAX)

/* Splits secret (size bytes, 1..CF_SHAMIR_SECRET_MAX) into count shares of which threshold
 * are needed (2 <= threshold <= count). Writes count * (1 + size) bytes to shares: share i
 * has x = i + 1. The caller owns both buffers; shares are secret and the caller wipes them.
 * The random coefficients are wiped before returning. Errors: CF_E_INVALID_ARG (threshold
 * or count out of range, size 0), CF_E_LIMIT (size too large), CF_E_RANDOM (then the
 * part of shares already written is wiped). */
CF_FN cf_shamir_split(const uint8_t *secret, size_t size, uint8_t threshold, uint8_t count,
                      uint8_t *shares);

/* Reconstructs a secret from n_shares shares laid out one after the other, each share_size
 * bytes (1 + secret size), and writes share_size - 1 bytes to secret, only on success.
 * The shares are untrusted input. With fewer shares than the threshold used at split time
 * the result is a different, unpredictable value: callers that know the threshold check the
 * count first. Errors: CF_E_INVALID_ARG (n_shares < 2, share_size < 2), CF_E_LIMIT
 * (share_size > CF_SHAMIR_SHARE_MAX), CF_E_MALFORMED (an x of zero or two shares with the
 * same x). */
CF_FN cf_shamir_combine(const uint8_t *shares, size_t share_size, uint8_t n_shares,
                        uint8_t *secret);
