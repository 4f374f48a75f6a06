#include "base/codec.h"

#include <string.h>

#include "base/mem.h"

/* Branch-free nibble -> hex digit: 0..9 -> '0'..'9', 10..15 -> 'a'..'f'. */
static char hex_digit(unsigned v)
{
        unsigned alpha = ((9u - v) >> 8) & 1u; /* 1 when v > 9 */
        return (char)('0' + v + alpha * ('a' - '0' - 10));
}

void cf_hex_encode(const void *in, size_t n, char *out, size_t out_size)
{
        const uint8_t *p = in;

        cf_assert(out_size >= 2 * n + 1);
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex_digit(p[i] >> 4);
                out[2 * i + 1] = hex_digit(p[i] & 15u);
        }
        out[2 * n] = '\0';
}

/* Branch-free hex digit -> value, or a value with bit 8 set when c is not a hex digit.
 * A mask is -1 when its range test holds: x in [0, n] iff (x | (n - x)) is non-negative. */
static unsigned hex_value(uint8_t c)
{
        int num = (int)c - '0';
        int alpha = ((int)c | 0x20) - 'a';
        int is_num = ~((num | (9 - num)) >> 31);
        int is_alpha = ~((alpha | (5 - alpha)) >> 31);
        int v = (is_num & num) | (is_alpha & (alpha + 10));

        return (unsigned)v | ((unsigned)~(is_num | is_alpha) & 0x100u);
}

cf_status cf_hex_decode(struct cf_slice hex, uint8_t *out, size_t out_size)
{
        unsigned bad = 0;

        ENSURE(hex.size == 2 * out_size, CF_E_ENCODING);
        for (size_t i = 0; i < out_size; i++) {
                unsigned hi = hex_value(hex.ptr[2 * i]);
                unsigned lo = hex_value(hex.ptr[2 * i + 1]);
                bad |= (hi | lo) & 0x100u;
                out[i] = (uint8_t)((hi << 4) | (lo & 15u));
        }
        if (bad) {
                cf_wipe(out, out_size);
                return cf_fail(CF_E_ENCODING);
        }
        return CF_OK;
}

cf_status cf_hex_decode_buf(struct cf_slice hex, struct cf_buf *b)
{
        size_t n = hex.size / 2;

        ENSURE(hex.size % 2 == 0, CF_E_ENCODING);
        TRY(cf_buf_reserve(b, n));
        TRY(cf_hex_decode(hex, b->ptr + b->size, n));
        b->size += n;
        b->ptr[b->size] = 0;
        return CF_OK;
}

static char b64_char(unsigned v)
{
        /* 0..25 'A'.., 26..51 'a'.., 52..61 '0'.., 62 '+', 63 '/', branch-free. */
        unsigned lt26 = ((v - 26u) >> 8) & 1u;
        unsigned lt52 = ((v - 52u) >> 8) & 1u;
        unsigned lt62 = ((v - 62u) >> 8) & 1u;
        unsigned is62 = ((v ^ 62u) - 1u) >> 8 & 1u;
        unsigned c = lt26 * ('A' + v) + (lt52 - lt26) * ('a' + v - 26u) +
                     (lt62 - lt52) * ('0' + v - 52u) + (1u - lt62) * ((unsigned)'/' - is62 * (unsigned)('/' - '+'));
        return (char)c;
}

void cf_base64_encode(const void *in, size_t n, char *out, size_t out_size)
{
        const uint8_t *p = in;
        size_t o = 0, i = 0;

        cf_assert(out_size >= cf_base64_encoded_size(n) + 1);
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                out[o++] = b64_char(v >> 18 & 63u);
                out[o++] = b64_char(v >> 12 & 63u);
                out[o++] = b64_char(v >> 6 & 63u);
                out[o++] = b64_char(v & 63u);
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)p[i] << 16;
                out[o++] = b64_char(v >> 18 & 63u);
                out[o++] = b64_char(v >> 12 & 63u);
                out[o++] = '=';
                out[o++] = '=';
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
                out[o++] = b64_char(v >> 18 & 63u);
                out[o++] = b64_char(v >> 12 & 63u);
                out[o++] = b64_char(v >> 6 & 63u);
                out[o++] = '=';
        }
        out[o] = '\0';
}

cf_status cf_base64_encode_buf(const void *in, size_t n, struct cf_buf *b)
{
        size_t need = cf_base64_encoded_size(n);

        ENSURE(n <= SIZE_MAX / 2, CF_E_OVERFLOW);
        TRY(cf_buf_reserve(b, need));
        cf_base64_encode(in, n, (char *)b->ptr + b->size, need + 1);
        b->size += need;
        return CF_OK;
}

/* Returns 0..63, or a value with bit 8 set for anything outside the alphabet. */
static unsigned b64_value(uint8_t ch)
{
        unsigned c = ch;
        unsigned up = ((c - 'A') | ('Z' - c)) >> 8 & 1u;  /* 1 when outside */
        unsigned lo = ((c - 'a') | ('z' - c)) >> 8 & 1u;
        unsigned dg = ((c - '0') | ('9' - c)) >> 8 & 1u;
        unsigned pl = ((c ^ '+') - 1u) >> 8 & 1u;        /* 1 when equal */
        unsigned sl = ((c ^ '/') - 1u) >> 8 & 1u;
        unsigned v = (1u - up) * (c - 'A') + (1u - lo) * (c - 'a' + 26u) +
                     (1u - dg) * (c - '0' + 52u) + pl * 62u + sl * 63u;
        unsigned valid = (1u - up) | (1u - lo) | (1u - dg) | pl | sl;

        return (v & 63u) | ((1u - valid) << 8);
}

cf_status cf_base64_decode_buf(struct cf_slice text, struct cf_buf *b)
{
        size_t pad = 0, n, start = b->size;
        unsigned bad = 0;

        ENSURE(text.size % 4 == 0, CF_E_ENCODING);
        if (text.size == 0) {
                return CF_OK;
        }
        if (text.ptr[text.size - 1] == '=') {
                pad++;
                if (text.ptr[text.size - 2] == '=') {
                        pad++;
                }
        }
        n = text.size / 4 * 3 - pad;
        TRY(cf_buf_reserve(b, n + 3));
        for (size_t i = 0; i < text.size; i += 4) {
                bool last = i + 4 == text.size;
                unsigned v0 = b64_value(text.ptr[i]);
                unsigned v1 = b64_value(text.ptr[i + 1]);
                unsigned v2 = last && pad == 2 ? 0 : b64_value(text.ptr[i + 2]);
                unsigned v3 = last && pad >= 1 ? 0 : b64_value(text.ptr[i + 3]);
                uint32_t v = v0 << 18 | v1 << 12 | (v2 & 63u) << 6 | (v3 & 63u);

                bad |= (v0 | v1 | v2 | v3) & 0x100u;
                b->ptr[b->size++] = (uint8_t)(v >> 16);
                b->ptr[b->size++] = (uint8_t)(v >> 8);
                b->ptr[b->size++] = (uint8_t)v;
                /* Non-canonical padding bits are rejected so every input has one meaning. */
                if (last && pad == 1) {
                        bad |= (v & 0xffu) ? 0x100u : 0u;
                }
                if (last && pad == 2) {
                        bad |= (v & 0xffffu) ? 0x100u : 0u;
                }
        }
        b->size = start + n;
        b->ptr[b->size] = 0;
        if (bad) {
                cf_wipe(b->ptr + start, n + 3);
                b->size = start;
                return cf_fail(CF_E_ENCODING);
        }
        return CF_OK;
}

cf_status cf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        ENSURE(s != NULL && *s != '\0', CF_E_MALFORMED);
        ENSURE(strlen(s) <= 20, CF_E_MALFORMED);
        for (const char *p = s; *p; p++) {
                ENSURE(*p >= '0' && *p <= '9', CF_E_MALFORMED);
                ENSURE(!cf_mul_overflow(v, (uint64_t)10, &v), CF_E_OVERFLOW);
                ENSURE(!cf_add_overflow(v, (uint64_t)(*p - '0'), &v), CF_E_OVERFLOW);
        }
        ENSURE(v >= min && v <= max, CF_E_LIMIT);
        *ret = v;
        return CF_OK;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
        /* Howard Hinnant's days-from-civil algorithm (public domain description). */
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static cf_status digits(const char **p, int n, int64_t *ret)
{
        int64_t v = 0;

        for (int i = 0; i < n; i++) {
                ENSURE((*p)[i] >= '0' && (*p)[i] <= '9', CF_E_MALFORMED);
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return CF_OK;
}

static cf_status expect_char(const char **p, char c)
{
        ENSURE(**p == c, CF_E_MALFORMED);
        (*p)++;
        return CF_OK;
}

cf_status cf_parse_rfc3339(const char *s, int64_t *ret)
{
        static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
        const char *p = s;

        TRY(digits(&p, 4, &y));
        TRY(expect_char(&p, '-'));
        TRY(digits(&p, 2, &mo));
        TRY(expect_char(&p, '-'));
        TRY(digits(&p, 2, &d));
        ENSURE(*p == 'T' || *p == 't' || *p == ' ', CF_E_MALFORMED);
        p++;
        TRY(digits(&p, 2, &h));
        TRY(expect_char(&p, ':'));
        TRY(digits(&p, 2, &mi));
        TRY(expect_char(&p, ':'));
        TRY(digits(&p, 2, &sec));
        if (*p == '.') {
                p++;
                ENSURE(*p >= '0' && *p <= '9', CF_E_MALFORMED);
                for (int i = 0; *p >= '0' && *p <= '9'; i++, p++) {
                        ENSURE(i < 9, CF_E_MALFORMED);
                }
        }
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else {
                ENSURE(*p == '+' || *p == '-', CF_E_MALFORMED);
                sign = *p == '+' ? 1 : -1;
                p++;
                TRY(digits(&p, 2, &oh));
                TRY(expect_char(&p, ':'));
                TRY(digits(&p, 2, &om));
                ENSURE(oh <= 23 && om <= 59, CF_E_MALFORMED);
        }
        ENSURE(*p == '\0', CF_E_TRAILING);
        ENSURE(mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1], CF_E_MALFORMED);
        ENSURE(!(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)),
               CF_E_MALFORMED);
        ENSURE(h <= 23 && mi <= 59 && sec <= 60, CF_E_MALFORMED);
        if (sec == 60) {
                sec = 59; /* leap second: clamp, POSIX time has none */
        }
        *ret = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
               sign * (oh * 3600 + om * 60);
        return CF_OK;
}

void cf_format_rfc3339(int64_t t, char *out, size_t out_size)
{
        struct tm tm;
        time_t tt = (time_t)t;

        gmtime_r(&tt, &tm);
        strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
