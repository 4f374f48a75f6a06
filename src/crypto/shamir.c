/* Shamir secret sharing over GF(2^8). Every multiplication is a fixed eight-round loop of
 * shifts and masks, so the time taken does not depend on the secret or the coefficients
 * (table-based log/exp arithmetic would leak them through the cache). */
#include "crypto/shamir.h"

#include <string.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"

/* x^8 = x^4 + x^3 + x + 1 in the AES field. */
#define GF_REDUCE 0x1b

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
        uint8_t p = 0;

        for (int i = 0; i < 8; i++) {
                /* mask is 0xff when the low bit of b is set, else 0: no branch on b. */
                uint8_t mask = (uint8_t)(0u - (unsigned)(b & 1u));
                uint8_t carry = (uint8_t)(0u - (unsigned)(a >> 7));

                p ^= (uint8_t)(a & mask);
                a = (uint8_t)((unsigned)(a << 1) ^ (carry & GF_REDUCE));
                b = (uint8_t)(b >> 1);
        }
        return p;
}

/* a^254 = a^-1 for a != 0 (the multiplicative group has order 255), by a fixed chain of
 * squarings and multiplications; 0 maps to 0, which callers never pass. */
static uint8_t gf_inv(uint8_t a)
{
        uint8_t r = 1;

        /* 254 = 0b11111110: square-and-multiply from the top bit, same steps for every a. */
        for (int bit = 7; bit >= 0; bit--) {
                r = gf_mul(r, r);
                if (((254u >> bit) & 1u) != 0) { /* public exponent, not secret */
                        r = gf_mul(r, a);
                }
        }
        return r;
}

cf_status cf_shamir_split(const uint8_t *secret, size_t size, uint8_t threshold, uint8_t count,
                          uint8_t *shares)
{
        uint8_t coef[255];
        CF_WIPE_ON_EXIT(coef);
        size_t stride = 1 + size;

        ENSURE(secret != NULL && shares != NULL, CF_E_INVALID_ARG);
        ENSURE(size > 0, CF_E_INVALID_ARG);
        ENSURE(size <= CF_SHAMIR_SECRET_MAX, CF_E_LIMIT);
        ENSURE(threshold >= 2 && threshold <= count, CF_E_INVALID_ARG);

        for (size_t i = 0; i < count; i++) {
                shares[i * stride] = (uint8_t)(i + 1);
        }
        for (size_t b = 0; b < size; b++) {
                cf_status s;

                coef[0] = secret[b];
                s = cf_random(&coef[1], (size_t)threshold - 1);
                if (!cf_ok(s)) {
                        cf_wipe(shares, count * stride);
                        return s;
                }
                for (size_t i = 0; i < count; i++) {
                        uint8_t x = (uint8_t)(i + 1);
                        uint8_t y = 0;

                        /* Horner: y = (((c[k-1] x + c[k-2]) x + ...) x + c[0]. */
                        for (size_t d = threshold; d > 0; d--) {
                                y = (uint8_t)(gf_mul(y, x) ^ coef[d - 1]);
                        }
                        shares[i * stride + 1 + b] = y;
                }
        }
        return CF_OK;
}

cf_status cf_shamir_combine(const uint8_t *shares, size_t share_size, uint8_t n_shares,
                            uint8_t *secret)
{
        uint8_t xs[255];
        struct cf_slice ys[255];
        uint8_t seen[256 / 8] = {0};
        uint8_t out[CF_SHAMIR_SECRET_MAX] = {0};
        CF_WIPE_ON_EXIT(out);
        struct cf_cursor c;

        ENSURE(shares != NULL && secret != NULL, CF_E_INVALID_ARG);
        ENSURE(share_size >= 2, CF_E_INVALID_ARG);
        ENSURE(share_size <= CF_SHAMIR_SHARE_MAX, CF_E_LIMIT);
        ENSURE(n_shares >= 2, CF_E_INVALID_ARG);

        /* Bounded above: n_shares <= 255 and share_size <= 65, no overflow. */
        c = cf_cursor_make(cf_slice_make(shares, (size_t)n_shares * share_size));
        for (size_t i = 0; i < n_shares; i++) {
                uint8_t x;

                TRY(cf_cursor_u8(&c, &x));
                /* x is public (it names the share), so checking it may branch. */
                ENSURE(x != 0, CF_E_MALFORMED);
                ENSURE((seen[x / 8] & (1u << (x % 8))) == 0, CF_E_MALFORMED);
                seen[x / 8] = (uint8_t)(seen[x / 8] | (1u << (x % 8)));
                xs[i] = x;
                TRY(cf_cursor_take(&c, share_size - 1, &ys[i]));
        }
        TRY(cf_cursor_expect_end(&c));

        /* Lagrange interpolation at 0: secret = sum_i y_i * prod_{j != i} x_j / (x_i - x_j),
         * where subtraction is XOR in GF(2^8). */
        for (size_t i = 0; i < n_shares; i++) {
                uint8_t num = 1, den = 1, l;

                for (size_t j = 0; j < n_shares; j++) {
                        if (j == i) {
                                continue;
                        }
                        num = gf_mul(num, xs[j]);
                        den = gf_mul(den, (uint8_t)(xs[i] ^ xs[j]));
                }
                l = gf_mul(num, gf_inv(den));
                for (size_t b = 0; b < ys[i].size; b++) {
                        out[b] ^= gf_mul(l, ys[i].ptr[b]);
                }
        }
        memcpy(secret, out, share_size - 1);
        return CF_OK;
}
