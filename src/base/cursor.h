/* Slices, a bounds-checked read cursor, and a bounded growable buffer.
 *
 * Untrusted bytes are read only through struct cf_cursor: every call checks the bytes
 * remaining before it moves, and a failed call leaves the cursor where it was. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/status.h"

/* A borrowed, read-only view of bytes. The owner of ptr must outlive the slice. */
struct cf_slice {
        const uint8_t *ptr;
        size_t size;
};

/* Invariant: pos <= in.size. */
struct cf_cursor {
        struct cf_slice in;
        size_t pos;
};

static inline struct cf_slice cf_slice_make(const void *ptr, size_t size)
{
        return (struct cf_slice){ (const uint8_t *)ptr, size };
}

static inline struct cf_slice cf_slice_str(const char *s)
{
        return cf_slice_make(s, strlen(s));
}

static inline struct cf_cursor cf_cursor_make(struct cf_slice in)
{
        return (struct cf_cursor){ in, 0 };
}

static inline size_t cf_cursor_left(const struct cf_cursor *c)
{
        return c->in.size - c->pos;
}

/* True when both slices have the same bytes. Not constant time: never for secrets. */
bool cf_slice_eq(struct cf_slice a, struct cf_slice b);
/* Copies s into out as a NUL-terminated string; fails with CF_E_LIMIT if s.size >= out_size
 * and with CF_E_MALFORMED if s contains a NUL byte. */
CF_FN cf_slice_to_cstr(struct cf_slice s, char *out, size_t out_size);

CF_FN cf_cursor_take(struct cf_cursor *c, size_t n, struct cf_slice *ret);
CF_FN cf_cursor_sub(struct cf_cursor *c, size_t n, struct cf_cursor *ret);
CF_FN cf_cursor_copy(struct cf_cursor *c, void *out, size_t n);
CF_FN cf_cursor_skip(struct cf_cursor *c, size_t n);
CF_FN cf_cursor_u8(struct cf_cursor *c, uint8_t *ret);
CF_FN cf_cursor_u16le(struct cf_cursor *c, uint16_t *ret);
CF_FN cf_cursor_u32le(struct cf_cursor *c, uint32_t *ret);
CF_FN cf_cursor_u64le(struct cf_cursor *c, uint64_t *ret);
CF_FN cf_cursor_u16be(struct cf_cursor *c, uint16_t *ret);
CF_FN cf_cursor_u32be(struct cf_cursor *c, uint32_t *ret);
CF_FN cf_cursor_u64be(struct cf_cursor *c, uint64_t *ret);
/* Fails with CF_E_TRAILING unless every byte was consumed. */
CF_FN cf_cursor_expect_end(const struct cf_cursor *c);

/* An owned, growable byte buffer that never grows past max. A secret buffer never
 * reallocates in place: it allocates anew, copies, and wipes the old block; cf_buf_done
 * wipes it. ptr is always NUL-terminated past size (not counted), for convenience. */
struct cf_buf {
        uint8_t *ptr;
        size_t size, cap, max;
        bool secret;
};

void cf_buf_init(struct cf_buf *b, size_t max, bool secret);
void cf_buf_done(struct cf_buf *b);
void cf_buf_reset(struct cf_buf *b);
CF_FN cf_buf_reserve(struct cf_buf *b, size_t extra);
CF_FN cf_buf_append(struct cf_buf *b, const void *data, size_t n);
CF_FN cf_buf_append_str(struct cf_buf *b, const char *s);
CF_FN cf_buf_printf(struct cf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline struct cf_slice cf_buf_slice(const struct cf_buf *b)
{
        return cf_slice_make(b->ptr, b->size);
}
/* Hands the bytes to the caller (free with free(), or cf_wipe_free for secrets). */
uint8_t *cf_buf_steal(struct cf_buf *b, size_t *ret_size);

#define cf_add_overflow(a, b, r) __builtin_add_overflow((a), (b), (r))
#define cf_mul_overflow(a, b, r) __builtin_mul_overflow((a), (b), (r))
