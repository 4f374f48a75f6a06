/* Text codecs: hex and base64 (standard alphabet, padded), constant time in the data so
 * they are safe for keys; bounded number parsing; RFC 3339 time. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/cursor.h"
#include "base/status.h"

/* Writes 2*n lower-case hex digits and a NUL: out_size must be >= 2*n + 1. */
void cf_hex_encode(const void *in, size_t n, char *out, size_t out_size);
/* Decodes exactly out_size bytes from hex (either case); wipes out on failure. */
CF_FN cf_hex_decode(struct cf_slice hex, uint8_t *out, size_t out_size);
/* Decodes hex of any even length up to max bytes into b. */
CF_FN cf_hex_decode_buf(struct cf_slice hex, struct cf_buf *b);

static inline size_t cf_base64_encoded_size(size_t n)
{
        return (n + 2) / 3 * 4;
}
/* Writes the padded encoding and a NUL: out_size must be >= cf_base64_encoded_size(n) + 1. */
void cf_base64_encode(const void *in, size_t n, char *out, size_t out_size);
CF_FN cf_base64_encode_buf(const void *in, size_t n, struct cf_buf *b);
/* Decodes padded standard base64 (no whitespace) and appends to b. */
CF_FN cf_base64_decode_buf(struct cf_slice text, struct cf_buf *b);

/* Parses a decimal unsigned integer in [min, max]; the whole string must be digits. */
CF_FN cf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" to seconds since the epoch. */
CF_FN cf_parse_rfc3339(const char *s, int64_t *ret);
/* Formats seconds since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (out_size >= 21). */
void cf_format_rfc3339(int64_t t, char *out, size_t out_size);
