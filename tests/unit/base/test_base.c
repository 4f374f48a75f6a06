/* Unit tests of src/base: cursor, buffers, codecs, number and time parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/mem.h"

static void test_cursor_reads(void **state)
{
        static const uint8_t in[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
        struct cf_cursor c = cf_cursor_make(cf_slice_make(in, sizeof(in)));
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;

        (void)state;
        assert_int_equal(cf_cursor_u8(&c, &u8).code, 0);
        assert_int_equal(u8, 1);
        assert_int_equal(cf_cursor_u16le(&c, &u16).code, 0);
        assert_int_equal(u16, 0x0302);
        assert_int_equal(cf_cursor_u32be(&c, &u32).code, 0);
        assert_int_equal(u32, 0x04050607);
        assert_int_equal(cf_cursor_u64le(&c, &u64).code, 0);
        assert_true(u64 == 0x0f0e0d0c0b0a0908ull);
        assert_int_equal(cf_cursor_expect_end(&c).code, 0);
        /* A failed read leaves the cursor unmoved. */
        assert_int_equal(cf_cursor_u8(&c, &u8).code, CF_E_TRUNCATED);
        assert_int_equal(c.pos, sizeof(in));
}

static void test_cursor_truncation_every_offset(void **state)
{
        static const uint8_t in[8] = { 0 };

        (void)state;
        for (size_t n = 0; n < sizeof(in); n++) {
                struct cf_cursor c = cf_cursor_make(cf_slice_make(in, n));
                uint64_t v;
                assert_int_equal(cf_cursor_u64le(&c, &v).code, CF_E_TRUNCATED);
                assert_int_equal(c.pos, 0);
        }
}

static void test_cursor_sub_and_trailing(void **state)
{
        static const uint8_t in[] = { 2, 0xaa, 0xbb, 0xcc };
        struct cf_cursor c = cf_cursor_make(cf_slice_make(in, sizeof(in)));
        struct cf_cursor sub;
        uint8_t n;

        (void)state;
        assert_int_equal(cf_cursor_u8(&c, &n).code, 0);
        assert_int_equal(cf_cursor_sub(&c, n, &sub).code, 0);
        assert_int_equal(cf_cursor_left(&sub), 2);
        assert_int_equal(cf_cursor_expect_end(&c).code, CF_E_TRAILING);
        assert_int_equal(cf_cursor_sub(&c, 2, &sub).code, CF_E_TRUNCATED);
        assert_int_equal(cf_cursor_skip(&c, SIZE_MAX).code, CF_E_TRUNCATED);
}

static void test_buf_limit(void **state)
{
        struct cf_buf b;

        (void)state;
        cf_buf_init(&b, 10, true);
        assert_int_equal(cf_buf_append(&b, "0123456789", 10).code, 0);
        assert_int_equal(cf_buf_append(&b, "x", 1).code, CF_E_LIMIT);
        assert_int_equal(b.size, 10);
        assert_int_equal(cf_buf_reserve(&b, SIZE_MAX).code, CF_E_OVERFLOW);
        cf_buf_done(&b);
        cf_buf_init(&b, 1000, false);
        assert_int_equal(cf_buf_printf(&b, "%s-%d", "a", 42).code, 0);
        assert_string_equal((char *)b.ptr, "a-42");
        cf_buf_done(&b);
}

static void test_hex(void **state)
{
        uint8_t out[4];
        char txt[9];
        static const uint8_t bytes[4] = { 0x00, 0x9f, 0xa0, 0xff };

        (void)state;
        cf_hex_encode(bytes, 4, txt, sizeof(txt));
        assert_string_equal(txt, "009fa0ff");
        assert_int_equal(cf_hex_decode(cf_slice_str("009FA0ff"), out, 4).code, 0);
        assert_memory_equal(out, bytes, 4);
        assert_int_equal(cf_hex_decode(cf_slice_str("009fa0f"), out, 4).code, CF_E_ENCODING);
        const char *bad[] = { "009fa0fg", "g09fa0ff", "009f a0f", "009fa0f/", "009fa0f:",
                              "009fa0f@", "009fa0f`", "009fa0fG" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(cf_hex_decode(cf_slice_str(bad[i]), out, 4).code, CF_E_ENCODING);
                assert_memory_equal(out, "\0\0\0\0", 4); /* wiped on failure */
        }
}

static void test_base64(void **state)
{
        struct cf_buf b;
        char txt[64];
        static const char *vec[][2] = { { "", "" },         { "f", "Zg==" },
                                        { "fo", "Zm8=" },   { "foo", "Zm9v" },
                                        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
                                        { "foobar", "Zm9vYmFy" } };

        (void)state;
        for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
                cf_base64_encode(vec[i][0], strlen(vec[i][0]), txt, sizeof(txt));
                assert_string_equal(txt, vec[i][1]);
                cf_buf_init(&b, 100, false);
                assert_int_equal(cf_base64_decode_buf(cf_slice_str(vec[i][1]), &b).code, 0);
                assert_int_equal(b.size, strlen(vec[i][0]));
                assert_memory_equal(b.ptr, vec[i][0], b.size);
                cf_buf_done(&b);
        }
        /* every byte value round-trips */
        uint8_t all[256];
        for (int i = 0; i < 256; i++) {
                all[i] = (uint8_t)i;
        }
        char big[400];
        cf_base64_encode(all, sizeof(all), big, sizeof(big));
        cf_buf_init(&b, 1000, false);
        assert_int_equal(cf_base64_decode_buf(cf_slice_str(big), &b).code, 0);
        assert_memory_equal(b.ptr, all, 256);
        cf_buf_done(&b);
        const char *bad[] = { "Zg=", "Zh==", "Zm9=", "Z===", "Zm9v!A==", "Zm 9", "====" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cf_buf_init(&b, 100, false);
                assert_int_equal(cf_base64_decode_buf(cf_slice_str(bad[i]), &b).code,
                                 CF_E_ENCODING);
                assert_int_equal(b.size, 0);
                cf_buf_done(&b);
        }
}

static void test_parse_u64(void **state)
{
        uint64_t v;

        (void)state;
        assert_int_equal(cf_parse_u64("42", 0, 100, &v).code, 0);
        assert_int_equal(v, 42);
        assert_int_equal(cf_parse_u64("101", 0, 100, &v).code, CF_E_LIMIT);
        assert_int_equal(cf_parse_u64("", 0, 100, &v).code, CF_E_MALFORMED);
        assert_int_equal(cf_parse_u64("-1", 0, 100, &v).code, CF_E_MALFORMED);
        assert_int_equal(cf_parse_u64("1x", 0, 100, &v).code, CF_E_MALFORMED);
        assert_int_equal(cf_parse_u64("18446744073709551616", 0, UINT64_MAX, &v).code,
                         CF_E_OVERFLOW);
        assert_int_equal(cf_parse_u64("18446744073709551615", 0, UINT64_MAX, &v).code, 0);
}

static void test_rfc3339(void **state)
{
        int64_t t;
        char out[32];

        (void)state;
        assert_int_equal(cf_parse_rfc3339("1970-01-01T00:00:00Z", &t).code, 0);
        assert_int_equal(t, 0);
        assert_int_equal(cf_parse_rfc3339("2025-07-19T10:01:17Z", &t).code, 0);
        assert_int_equal(t, 1752919277);
        cf_format_rfc3339(t, out, sizeof(out));
        assert_string_equal(out, "2025-07-19T10:01:17Z");
        assert_int_equal(cf_parse_rfc3339("2025-07-19T12:01:17.123+02:00", &t).code, 0);
        assert_int_equal(t, 1752919277);
        assert_int_equal(cf_parse_rfc3339("2024-02-29T00:00:00Z", &t).code, 0);
        const char *bad[] = { "2025-02-29T00:00:00Z", "2025-13-01T00:00:00Z",
                              "2025-07-19T24:00:00Z", "2025-07-19T10:01:17",
                              "2025-07-19T10:01:17Zx", "2025-7-19T10:01:17Z", "" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_not_equal(cf_parse_rfc3339(bad[i], &t).code, 0);
        }
}

static void test_ct_eq_and_secret(void **state)
{
        struct cf_secret *s = NULL;

        (void)state;
        assert_int_equal(cf_mem_init().code, 0);
        assert_true(cf_ct_eq("abc", "abc", 3));
        assert_false(cf_ct_eq("abc", "abd", 3));
        assert_int_equal(cf_secret_new(32, &s).code, 0);
        assert_non_null(s);
        s->ptr[31] = 7;
        s = cf_secret_free(s);
        assert_null(s);
        assert_int_equal(cf_secret_new(0, &s).code, CF_E_INVALID_ARG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cursor_reads),
                cmocka_unit_test(test_cursor_truncation_every_offset),
                cmocka_unit_test(test_cursor_sub_and_trailing),
                cmocka_unit_test(test_buf_limit),
                cmocka_unit_test(test_hex),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_parse_u64),
                cmocka_unit_test(test_rfc3339),
                cmocka_unit_test(test_ct_eq_and_secret),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
