/* Unit tests of src/crypto/shamir.c: hand-computed known answers in GF(2^8), every k-subset
 * of a 3-of-5 split, k-1 shares revealing nothing (exhaustively and statistically for a
 * 1-byte secret), and refusal of bad arguments and malformed shares. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "crypto/shamir.h"

static int setup(void **state)
{
        (void)state;
        return cf_ok(cf_crypto_init()) ? 0 : -1;
}

/* Shares of one-byte secrets computed by hand (x, y pairs). */
struct kat {
        const char *what;
        uint8_t secret;
        uint8_t n; /* number of shares below, all needed (threshold = n) or more */
        uint8_t shares[4][2];
};

static const struct kat kats[] = {
    /* f(x) = 0x42 + 0x03 x: 0x03*0x02 = 0x06, 0x03*0x03 = (x+1)^2 = x^2+1 = 0x05. */
    {"linear", 0x42, 2, {{1, 0x41}, {2, 0x44}}},
    {"linear, other pair", 0x42, 2, {{2, 0x44}, {3, 0x47}}},
    {"linear, reversed order", 0x42, 2, {{3, 0x47}, {1, 0x41}}},
    /* f(x) = 0x80 x: 0x80*0x02 = x^8 = x^4+x^3+x+1 = 0x1b (the reduction). */
    {"reduction", 0x00, 2, {{1, 0x80}, {2, 0x1b}}},
    /* f(x) = 0x57 x: 0x57*0x83 = 0xc1 (the FIPS-197 section 4.2 example). */
    {"fips-197 product", 0x00, 2, {{0x83, 0xc1}, {1, 0x57}}},
    /* f(x) = 0x01 + 0x02 x + 0x03 x^2:
     *   x=1: 1^2^3 = 0x00
     *   x=2: 1 ^ 0x04 ^ 0x03*0x04 = 1 ^ 0x04 ^ 0x0c = 0x09
     *   x=3: 1 ^ 0x06 ^ 0x03*0x05 = 1 ^ 0x06 ^ 0x0f = 0x08
     *   x=4: 1 ^ 0x08 ^ 0x03*0x10 = 1 ^ 0x08 ^ 0x30 = 0x39 */
    {"quadratic 1,2,3", 0x01, 3, {{1, 0x00}, {2, 0x09}, {3, 0x08}}},
    {"quadratic 2,3,4", 0x01, 3, {{2, 0x09}, {3, 0x08}, {4, 0x39}}},
    {"quadratic 4 shares", 0x01, 4, {{4, 0x39}, {1, 0x00}, {3, 0x08}, {2, 0x09}}},
};

static void test_known_answers(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
                uint8_t buf[8], out = 0xee;

                for (size_t j = 0; j < kats[i].n; j++) {
                        memcpy(buf + 2 * j, kats[i].shares[j], 2);
                }
                assert_int_equal(cf_shamir_combine(buf, 2, kats[i].n, &out).code, 0);
                if (out != kats[i].secret) {
                        fail_msg("%s: got %02x, want %02x", kats[i].what, out, kats[i].secret);
                }
        }
}

/* Combines the shares whose indexes are set in mask (bit i = share i). */
static cf_status combine_subset(const uint8_t *shares, size_t stride, unsigned mask,
                                uint8_t *secret)
{
        uint8_t pick[255 * CF_SHAMIR_SHARE_MAX];
        uint8_t n = 0;

        for (unsigned i = 0; i < 16; i++) {
                if ((mask & (1u << i)) != 0) {
                        memcpy(pick + n * stride, shares + i * stride, stride);
                        n++;
                }
        }
        return cf_shamir_combine(pick, stride, n, secret);
}

static void test_every_subset_of_3_of_5(void **state)
{
        uint8_t secret[32], shares[5 * 33], out[32];

        (void)state;
        assert_int_equal(cf_random(secret, sizeof(secret)).code, 0);
        assert_int_equal(cf_shamir_split(secret, 32, 3, 5, shares).code, 0);
        for (unsigned i = 0; i < 5; i++) {
                assert_int_equal(shares[i * 33], i + 1);
        }
        unsigned good = 0, short_ = 0;
        for (unsigned mask = 0; mask < 32; mask++) {
                int bits = __builtin_popcount(mask);

                if (bits < 2) {
                        assert_int_equal(combine_subset(shares, 33, mask, out).code,
                                         CF_E_INVALID_ARG);
                        continue;
                }
                assert_int_equal(combine_subset(shares, 33, mask, out).code, 0);
                if (bits >= 3) {
                        assert_memory_equal(out, secret, 32);
                        good++;
                } else {
                        /* Two shares of a degree-2 polynomial: a line through them, whose
                         * value at 0 is unrelated to the secret (equal with prob. 2^-256). */
                        assert_memory_not_equal(out, secret, 32);
                        short_++;
                }
        }
        assert_int_equal(good, 10 + 5 + 1); /* C(5,3) + C(5,4) + C(5,5) */
        assert_int_equal(short_, 10);       /* C(5,2) */
}

/* With one share of a 2-of-n split fixed, each of the 256 possible second shares yields a
 * different secret: every secret is possible, so one share says nothing. */
static void test_one_share_reveals_nothing(void **state)
{
        uint8_t secret = 0x5a, shares[2 * 2], pair[4], out;
        uint8_t hit[256] = {0};

        (void)state;
        assert_int_equal(cf_shamir_split(&secret, 1, 2, 2, shares).code, 0);
        memcpy(pair, shares, 2); /* share x=1 as split */
        pair[2] = 2;
        for (unsigned y = 0; y < 256; y++) {
                pair[3] = (uint8_t)y;
                assert_int_equal(cf_shamir_combine(pair, 2, 2, &out).code, 0);
                hit[out]++;
        }
        for (unsigned v = 0; v < 256; v++) {
                assert_int_equal(hit[v], 1);
        }
}

/* Statistical: over many splits of the same 1-byte secret, the y of one share is uniform
 * over all 256 values (chi-square with 255 degrees of freedom; mean 255, sd 22.6; the bound
 * 420 is over 7 sd away, so a correct implementation essentially never fails, while a
 * biased coefficient source (e.g. never 0, or a constant) fails at once). */
static void test_share_distribution_uniform(void **state)
{
        enum { ROUNDS = 256 * 100 };
        static unsigned count[256];
        uint8_t secret = 0xc3, shares[3 * 2];
        double chi = 0;

        (void)state;
        memset(count, 0, sizeof(count));
        for (unsigned r = 0; r < ROUNDS; r++) {
                assert_int_equal(cf_shamir_split(&secret, 1, 2, 3, shares).code, 0);
                count[shares[1]]++;
        }
        for (unsigned v = 0; v < 256; v++) {
                double d = (double)count[v] - ROUNDS / 256.0;
                chi += d * d / (ROUNDS / 256.0);
        }
        if (chi > 420.0) {
                fail_msg("share values not uniform: chi-square %.1f", chi);
        }
}

static void test_threshold_equals_count_255(void **state)
{
        static uint8_t shares[255 * 17];
        uint8_t secret[16], out[16];

        (void)state;
        assert_int_equal(cf_random(secret, sizeof(secret)).code, 0);
        assert_int_equal(cf_shamir_split(secret, 16, 255, 255, shares).code, 0);
        assert_int_equal(cf_shamir_combine(shares, 17, 255, out).code, 0);
        assert_memory_equal(out, secret, 16);
        /* 254 of 255: a different value. */
        assert_int_equal(cf_shamir_combine(shares + 17, 17, 254, out).code, 0);
        assert_memory_not_equal(out, secret, 16);
}

static void test_max_secret_size(void **state)
{
        uint8_t secret[CF_SHAMIR_SECRET_MAX + 1], shares[3 * (CF_SHAMIR_SHARE_MAX + 1)];
        uint8_t out[CF_SHAMIR_SECRET_MAX];

        (void)state;
        assert_int_equal(cf_random(secret, sizeof(secret)).code, 0);
        assert_int_equal(cf_shamir_split(secret, CF_SHAMIR_SECRET_MAX, 2, 3, shares).code, 0);
        assert_int_equal(
            cf_shamir_combine(shares + CF_SHAMIR_SHARE_MAX, CF_SHAMIR_SHARE_MAX, 2, out).code, 0);
        assert_memory_equal(out, secret, CF_SHAMIR_SECRET_MAX);
        assert_int_equal(cf_shamir_split(secret, CF_SHAMIR_SECRET_MAX + 1, 2, 3, shares).code,
                         CF_E_LIMIT);
        assert_int_equal(cf_shamir_combine(shares, CF_SHAMIR_SHARE_MAX + 1, 2, out).code,
                         CF_E_LIMIT);
}

static void test_split_bad_arguments(void **state)
{
        uint8_t secret[4] = {1, 2, 3, 4}, shares[255 * 5];

        (void)state;
        assert_int_equal(cf_shamir_split(secret, 4, 1, 3, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 4, 0, 3, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 4, 4, 3, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 4, 2, 0, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 4, 2, 1, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 0, 2, 3, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(NULL, 4, 2, 3, shares).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 4, 2, 3, NULL).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_split(secret, 4, 2, 2, shares).code, 0);
}

static void test_combine_refuses_bad_shares(void **state)
{
        uint8_t secret[4] = {9, 8, 7, 6}, shares[3 * 5], bad[3 * 5], out[4];
        const uint8_t sentinel[4] = {0xee, 0xee, 0xee, 0xee};

        (void)state;
        assert_int_equal(cf_shamir_split(secret, 4, 2, 3, shares).code, 0);

        /* Duplicate x (same share twice, and two different shares claiming the same x). */
        memcpy(bad, shares, 5);
        memcpy(bad + 5, shares, 5);
        memcpy(out, sentinel, 4);
        assert_int_equal(cf_shamir_combine(bad, 5, 2, out).code, CF_E_MALFORMED);
        assert_memory_equal(out, sentinel, 4); /* written only on success */
        memcpy(bad, shares, 15);
        bad[10] = bad[0];
        assert_int_equal(cf_shamir_combine(bad, 5, 3, out).code, CF_E_MALFORMED);

        /* x = 0 would be the secret itself: never a valid share. */
        memcpy(bad, shares, 10);
        bad[5] = 0;
        assert_int_equal(cf_shamir_combine(bad, 5, 2, out).code, CF_E_MALFORMED);
        assert_memory_equal(out, sentinel, 4);

        /* Too few shares, sizes out of range. */
        assert_int_equal(cf_shamir_combine(shares, 5, 1, out).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_combine(shares, 5, 0, out).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_combine(shares, 1, 3, out).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_combine(shares, 0, 3, out).code, CF_E_INVALID_ARG);
        assert_int_equal(cf_shamir_combine(NULL, 5, 2, out).code, CF_E_INVALID_ARG);

        /* A flipped y bit changes the result (no integrity here: that is the ECIES layer's
         * job), and the right shares still work. */
        memcpy(bad, shares, 10);
        bad[6] ^= 1;
        assert_int_equal(cf_shamir_combine(bad, 5, 2, out).code, 0);
        assert_memory_not_equal(out, secret, 4);
        assert_int_equal(cf_shamir_combine(shares + 5, 5, 2, out).code, 0);
        assert_memory_equal(out, secret, 4);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_known_answers),
            cmocka_unit_test(test_every_subset_of_3_of_5),
            cmocka_unit_test(test_one_share_reveals_nothing),
            cmocka_unit_test(test_share_distribution_uniform),
            cmocka_unit_test(test_threshold_equals_count_255),
            cmocka_unit_test(test_max_secret_size),
            cmocka_unit_test(test_split_bad_arguments),
            cmocka_unit_test(test_combine_refuses_bad_shares),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
