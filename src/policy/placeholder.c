/* $$coffer:NAME$$ placeholders: one scanner used both by validation (every name must be a
 * declared secret) and by substitution at activation, so the two can never disagree about
 * what a placeholder is. */
#include "policy/policy.h"

#include <string.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "policy/policy_internal.h"

static bool secret_name_char(uint8_t ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '.' || ch == '-';
}

bool policy_secret_name_ok(struct cf_slice name)
{
        struct cf_cursor c = cf_cursor_make(name);
        uint8_t ch;

        if (name.size == 0 || name.size > POLICY_SECRET_NAME_MAX) {
                return false;
        }
        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (!secret_name_char(ch)) {
                        return false;
                }
        }
        return true;
}

/* True when the bytes at the cursor start with lit (the cursor does not move). */
static bool at_literal(const struct cf_cursor *c, const char *lit)
{
        struct cf_cursor probe = *c;
        struct cf_slice head;
        size_t n = strlen(lit);

        if (!cf_ok(cf_cursor_take(&probe, n, &head))) {
                return false;
        }
        return cf_slice_eq(head, cf_slice_make(lit, n));
}

enum policy_ph policy_placeholder_next(struct cf_cursor *c, struct cf_slice *ret_literal,
                                       struct cf_slice *ret_name)
{
        struct cf_cursor start = *c;
        uint8_t ch;

        while (cf_cursor_left(c) > 0) {
                if (at_literal(c, POLICY_PLACEHOLDER_PREFIX)) {
                        break;
                }
                cf_ignore(cf_cursor_u8(c, &ch)); /* cannot fail: bytes are left */
        }
        /* The literal is everything between the start and the current position. */
        if (!cf_ok(cf_cursor_take(&start, c->pos - start.pos, ret_literal))) {
                return POLICY_PH_MALFORMED; /* impossible: start.pos <= c->pos */
        }
        if (cf_cursor_left(c) == 0) {
                return POLICY_PH_END;
        }

        struct cf_cursor scan = *c;
        struct cf_cursor name_start;
        size_t n = 0;

        cf_ignore(cf_cursor_skip(&scan, strlen(POLICY_PLACEHOLDER_PREFIX))); /* checked above */
        name_start = scan;
        while (cf_cursor_left(&scan) > 0 && !at_literal(&scan, POLICY_PLACEHOLDER_SUFFIX)) {
                cf_ignore(cf_cursor_u8(&scan, &ch));
                if (!secret_name_char(ch) || ++n > POLICY_SECRET_NAME_MAX) {
                        return POLICY_PH_MALFORMED;
                }
        }
        if (n == 0 || !at_literal(&scan, POLICY_PLACEHOLDER_SUFFIX)) {
                return POLICY_PH_MALFORMED;
        }
        if (!cf_ok(cf_cursor_take(&name_start, n, ret_name))) {
                return POLICY_PH_MALFORMED; /* impossible: n bytes were just read */
        }
        cf_ignore(cf_cursor_skip(&scan, strlen(POLICY_PLACEHOLDER_SUFFIX)));
        *c = scan;
        return POLICY_PH_FOUND;
}

static cf_status substitute(const char *text, policy_lookup_fn lookup, void *ctx,
                            struct cf_buf *out)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(text));

        for (;;) {
                struct cf_slice lit, name, value = {0};
                char cname[POLICY_SECRET_NAME_MAX + 1];
                enum policy_ph r = policy_placeholder_next(&c, &lit, &name);

                ENSURE(r != POLICY_PH_MALFORMED, CF_E_MALFORMED);
                TRY(cf_buf_append(out, lit.ptr, lit.size));
                if (r == POLICY_PH_END) {
                        return CF_OK;
                }
                TRY(cf_slice_to_cstr(name, cname, sizeof(cname)));
                TRY(lookup(ctx, cname, &value));
                ENSURE(value.ptr != NULL || value.size == 0, CF_E_INTERNAL);
                TRY(cf_buf_append(out, value.ptr, value.size));
        }
}

cf_status policy_substitute(const char *text, policy_lookup_fn lookup, void *ctx,
                            struct cf_buf *out)
{
        size_t before = out->size;
        cf_status s;

        ENSURE(text != NULL && lookup != NULL, CF_E_INVALID_ARG);
        s = substitute(text, lookup, ctx, out);
        if (!cf_ok(s)) {
                /* Partial output may hold secret bytes: wipe them and restore the size. A
                 * secret buffer that grew reallocated anew and wiped the old block. */
                if (out->ptr != NULL) {
                        cf_wipe(out->ptr + before, out->size - before);
                        out->size = before;
                        out->ptr[before] = 0;
                }
                return s;
        }
        return CF_OK;
}
