/* libFuzzer target: Shamir share sets as untrusted input. The first byte is the number of
 * shares; the rest is split into that many equal shares (x || y). Whatever combines is split
 * again and recombined, which must give the same bytes back (split/combine inverse).
 * Target functions: cf_shamir_combine, cf_shamir_split. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cursor.h"
#include "crypto/shamir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_make(data, size));
        struct cf_slice rest;
        uint8_t n, secret[CF_SHAMIR_SECRET_MAX], again[CF_SHAMIR_SECRET_MAX];
        uint8_t shares[3 * CF_SHAMIR_SHARE_MAX];
        size_t share_size;

        if (!cf_ok(cf_cursor_u8(&c, &n)) || n == 0 ||
            !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &rest))) {
                return 0;
        }
        share_size = rest.size / n;
        if (!cf_ok(cf_shamir_combine(rest.ptr, share_size, n, secret))) {
                return 0;
        }
        if (!cf_ok(cf_shamir_split(secret, share_size - 1, 2, 3, shares))) {
                abort(); /* a combinable size must be splittable */
        }
        if (!cf_ok(cf_shamir_combine(shares + share_size, share_size, 2, again)) ||
            memcmp(again, secret, share_size - 1) != 0) {
                abort();
        }
        return 0;
}
