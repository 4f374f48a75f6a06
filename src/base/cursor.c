#include "base/cursor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/mem.h"

bool cf_slice_eq(struct cf_slice a, struct cf_slice b)
{
        return a.size == b.size && (a.size == 0 || memcmp(a.ptr, b.ptr, a.size) == 0);
}

cf_status cf_slice_to_cstr(struct cf_slice s, char *out, size_t out_size)
{
        ENSURE(out_size > 0 && s.size < out_size, CF_E_LIMIT);
        ENSURE(s.size == 0 || memchr(s.ptr, 0, s.size) == NULL, CF_E_MALFORMED);
        if (s.size > 0) {
                memcpy(out, s.ptr, s.size);
        }
        out[s.size] = '\0';
        return CF_OK;
}

cf_status cf_cursor_take(struct cf_cursor *c, size_t n, struct cf_slice *ret)
{
        ENSURE(n <= cf_cursor_left(c), CF_E_TRUNCATED);
        *ret = cf_slice_make(c->in.ptr + c->pos, n);
        c->pos += n;
        return CF_OK;
}

cf_status cf_cursor_sub(struct cf_cursor *c, size_t n, struct cf_cursor *ret)
{
        struct cf_slice s;

        TRY(cf_cursor_take(c, n, &s));
        *ret = cf_cursor_make(s);
        return CF_OK;
}

cf_status cf_cursor_copy(struct cf_cursor *c, void *out, size_t n)
{
        struct cf_slice s;

        TRY(cf_cursor_take(c, n, &s));
        if (n > 0) {
                memcpy(out, s.ptr, n);
        }
        return CF_OK;
}

cf_status cf_cursor_skip(struct cf_cursor *c, size_t n)
{
        struct cf_slice s;

        return cf_cursor_take(c, n, &s);
}

cf_status cf_cursor_u8(struct cf_cursor *c, uint8_t *ret)
{
        struct cf_slice s;

        TRY(cf_cursor_take(c, 1, &s));
        *ret = s.ptr[0];
        return CF_OK;
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = n; i > 0; i--) {
                v = (v << 8) | p[i - 1];
        }
        return v;
}

static uint64_t load_be(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++) {
                v = (v << 8) | p[i];
        }
        return v;
}

#define DEFINE_INT_READER(name, type, width, loader)                                              \
        cf_status name(struct cf_cursor *c, type *ret)                                             \
        {                                                                                          \
                struct cf_slice s;                                                                 \
                TRY(cf_cursor_take(c, (width), &s));                                               \
                *ret = (type)loader(s.ptr, (width));                                               \
                return CF_OK;                                                                      \
        }

DEFINE_INT_READER(cf_cursor_u16le, uint16_t, 2, load_le)
DEFINE_INT_READER(cf_cursor_u32le, uint32_t, 4, load_le)
DEFINE_INT_READER(cf_cursor_u64le, uint64_t, 8, load_le)
DEFINE_INT_READER(cf_cursor_u16be, uint16_t, 2, load_be)
DEFINE_INT_READER(cf_cursor_u32be, uint32_t, 4, load_be)
DEFINE_INT_READER(cf_cursor_u64be, uint64_t, 8, load_be)

cf_status cf_cursor_expect_end(const struct cf_cursor *c)
{
        ENSURE(c->pos == c->in.size, CF_E_TRAILING);
        return CF_OK;
}

void cf_buf_init(struct cf_buf *b, size_t max, bool secret)
{
        *b = (struct cf_buf){ .max = max, .secret = secret };
}

void cf_buf_done(struct cf_buf *b)
{
        if (b->ptr != NULL && b->secret) {
                cf_wipe(b->ptr, b->cap);
        }
        free(b->ptr);
        b->ptr = NULL;
        b->size = b->cap = 0;
}

void cf_buf_reset(struct cf_buf *b)
{
        if (b->ptr != NULL && b->secret) {
                cf_wipe(b->ptr, b->cap);
        }
        b->size = 0;
        if (b->ptr != NULL) {
                b->ptr[0] = 0;
        }
}

cf_status cf_buf_reserve(struct cf_buf *b, size_t extra)
{
        size_t need, cap;
        uint8_t *p;

        ENSURE(!cf_add_overflow(b->size, extra, &need), CF_E_OVERFLOW);
        ENSURE(need <= b->max, CF_E_LIMIT);
        if (need + 1 <= b->cap) {
                return CF_OK;
        }
        cap = b->cap ? b->cap : 64;
        while (cap < need + 1) {
                ENSURE(!cf_mul_overflow(cap, (size_t)2, &cap), CF_E_OVERFLOW);
        }
        if (cap > b->max + 1) {
                cap = b->max + 1;
        }
        p = malloc(cap);
        ENSURE(p != NULL, CF_E_NOMEM);
        if (b->ptr != NULL) {
                memcpy(p, b->ptr, b->size + 1);
                if (b->secret) {
                        cf_wipe(b->ptr, b->cap);
                }
                free(b->ptr);
        } else {
                p[0] = 0;
        }
        b->ptr = p;
        b->cap = cap;
        return CF_OK;
}

cf_status cf_buf_append(struct cf_buf *b, const void *data, size_t n)
{
        TRY(cf_buf_reserve(b, n));
        if (n > 0) {
                memcpy(b->ptr + b->size, data, n);
        }
        b->size += n;
        b->ptr[b->size] = 0;
        return CF_OK;
}

cf_status cf_buf_append_str(struct cf_buf *b, const char *s)
{
        return cf_buf_append(b, s, strlen(s));
}

cf_status cf_buf_printf(struct cf_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        ENSURE(n >= 0, CF_E_INTERNAL);
        TRY(cf_buf_reserve(b, (size_t)n));
        va_start(ap, fmt);
        vsnprintf((char *)b->ptr + b->size, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->size += (size_t)n;
        return CF_OK;
}

uint8_t *cf_buf_steal(struct cf_buf *b, size_t *ret_size)
{
        uint8_t *p = b->ptr;

        if (ret_size != NULL) {
                *ret_size = b->size;
        }
        b->ptr = NULL;
        b->size = b->cap = 0;
        return p;
}
