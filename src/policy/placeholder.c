/* $$coffer:NAME$$ and $$coffer:NAME:ENCODING$$ placeholders: one scanner used both by validation
 * (every name must be a declared secret) and by substitution at activation, so the two can never
 * disagree about what a placeholder is. ENCODING may begin with the qualifier "previous"
 * ($$coffer:NAME:previous$$, $$coffer:NAME:previous:pem$$): the secret's previous version. */
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

/* Encodings: lower-case words separated by ':' ("der:base64:json"). */
static bool enc_char(uint8_t ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == ':';
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
        size_t n = 0, enc = 0;
        bool in_enc = false;

        cf_ignore(cf_cursor_skip(&scan, strlen(POLICY_PLACEHOLDER_PREFIX))); /* checked above */
        name_start = scan;
        /* NAME, then optionally ':' and an encoding of [a-z0-9:] (its meaning is checked by
         * policy_placeholder_split, so the scanner stays about shape only). */
        while (cf_cursor_left(&scan) > 0 && !at_literal(&scan, POLICY_PLACEHOLDER_SUFFIX)) {
                cf_ignore(cf_cursor_u8(&scan, &ch));
                if (!in_enc && ch == ':' && n > 0) {
                        in_enc = true;
                } else if (in_enc) {
                        if (!enc_char(ch) || ++enc > POLICY_ENCODING_MAX) {
                                return POLICY_PH_MALFORMED;
                        }
                } else if (!secret_name_char(ch) || ++n > POLICY_SECRET_NAME_MAX) {
                        return POLICY_PH_MALFORMED;
                }
        }
        if (n == 0 || (in_enc && enc == 0) || !at_literal(&scan, POLICY_PLACEHOLDER_SUFFIX)) {
                return POLICY_PH_MALFORMED;
        }
        if (!cf_ok(cf_cursor_take(&name_start, n + (in_enc ? 1 + enc : 0), ret_name))) {
                return POLICY_PH_MALFORMED; /* impossible: these bytes were just read */
        }
        cf_ignore(cf_cursor_skip(&scan, strlen(POLICY_PLACEHOLDER_SUFFIX)));
        *c = scan;
        return POLICY_PH_FOUND;
}

/* ---- encodings ------------------------------------------------------------------------- */

static const char *const enc_names[] = {
    [POLICY_ENC_PEM] = "pem",     [POLICY_ENC_DER_BASE64] = "der:base64",
    [POLICY_ENC_HEX] = "hex",     [POLICY_ENC_BASE64] = "base64",
    [POLICY_ENC_CHAIN] = "chain", [POLICY_ENC_PKCS8] = "pkcs8",
    [POLICY_ENC_KEY] = "key",     [POLICY_ENC_PUBLIC] = "public"};
#define ENC_N (sizeof(enc_names) / sizeof(enc_names[0]))

/* "previous" or "previous:REST": sets *previous and leaves REST (empty for the first) in
 * *rest; otherwise *rest is text. */
static void split_previous(struct cf_slice text, bool *previous, struct cf_slice *rest)
{
        static const char qual[] = "previous";
        const size_t n = sizeof(qual) - 1;
        struct cf_cursor c = cf_cursor_make(text);
        struct cf_slice head;
        uint8_t colon = 0;

        *previous = false;
        *rest = text;
        if (!cf_ok(cf_cursor_take(&c, n, &head)) || !cf_slice_eq(head, cf_slice_make(qual, n))) {
                return;
        }
        if (cf_cursor_left(&c) == 0) {
                *previous = true;
                *rest = cf_slice_make(NULL, 0);
                return;
        }
        if (cf_ok(cf_cursor_u8(&c, &colon)) && colon == ':' && cf_cursor_left(&c) > 0) {
                *previous = true;
                cf_ignore(cf_cursor_take(&c, cf_cursor_left(&c), rest)); /* the bytes are left */
        }
}

static cf_status parse_encoding(struct cf_slice full, struct policy_encoding *ret)
{
        struct policy_encoding e = {POLICY_ENC_DEFAULT, false, false};
        struct cf_slice text, base;
        static const char json_suffix[] = ":json";
        const size_t sfx = sizeof(json_suffix) - 1;

        split_previous(full, &e.previous, &text);
        base = text;
        if (e.previous && text.size == 0) {
                *ret = e;
                return CF_OK;
        }
        if (cf_slice_eq(text, cf_slice_str("json"))) {
                e.json = true;
                *ret = e;
                return CF_OK;
        }
        if (text.size > sfx) {
                struct cf_cursor c = cf_cursor_make(text);
                struct cf_slice head, tail;
                cf_ignore(cf_cursor_take(&c, text.size - sfx, &head)); /* size checked */
                cf_ignore(cf_cursor_take(&c, sfx, &tail));
                if (cf_slice_eq(tail, cf_slice_make(json_suffix, sfx))) {
                        e.json = true;
                        base = head;
                }
        }
        for (size_t i = 1; i < ENC_N; i++) {
                if (cf_slice_eq(base, cf_slice_str(enc_names[i]))) {
                        e.base = (enum policy_enc)i;
                }
        }
        ENSURE(e.base != POLICY_ENC_DEFAULT, CF_E_MALFORMED);
        *ret = e;
        return CF_OK;
}

cf_status policy_placeholder_split(const char *ref, char name[static POLICY_SECRET_NAME_MAX + 1],
                                   struct policy_encoding *ret)
{
        struct cf_cursor c;
        struct cf_slice nm, enc = {0};
        struct policy_encoding e = {POLICY_ENC_DEFAULT, false};
        size_t n = 0;
        uint8_t ch;

        ENSURE(ref != NULL && ret != NULL, CF_E_INVALID_ARG);
        c = cf_cursor_make(cf_slice_str(ref));
        while (cf_ok(cf_cursor_u8(&c, &ch)) && ch != ':') {
                n++;
        }
        nm = cf_slice_make(ref, n);
        ENSURE(policy_secret_name_ok(nm), CF_E_MALFORMED);
        if (n < strlen(ref)) {
                /* The cursor sits after the ':'; the rest is the encoding. */
                ENSURE(cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &enc)), CF_E_INTERNAL);
                ENSURE(enc.size > 0 && enc.size <= POLICY_ENCODING_MAX, CF_E_MALFORMED);
                TRY(parse_encoding(enc, &e));
        }
        TRY(cf_slice_to_cstr(nm, name, POLICY_SECRET_NAME_MAX + 1));
        *ret = e;
        return CF_OK;
}

bool policy_encoding_fits(enum policy_secret_kind kind, enum policy_enc base)
{
        switch (kind) {
        case POLICY_SECRET_ASCII:
        case POLICY_SECRET_HEX:
        case POLICY_SECRET_BASE64:
        case POLICY_SECRET_BINARY:
                return base == POLICY_ENC_DEFAULT || base == POLICY_ENC_HEX ||
                       base == POLICY_ENC_BASE64;
        case POLICY_SECRET_PRIVATE_KEY:
                return base == POLICY_ENC_DEFAULT || base == POLICY_ENC_PEM ||
                       base == POLICY_ENC_DER_BASE64 || base == POLICY_ENC_HEX ||
                       base == POLICY_ENC_BASE64 || base == POLICY_ENC_PKCS8 ||
                       base == POLICY_ENC_PUBLIC;
        case POLICY_SECRET_PUBLIC_KEY:
                return base == POLICY_ENC_DEFAULT || base == POLICY_ENC_PEM ||
                       base == POLICY_ENC_DER_BASE64 || base == POLICY_ENC_HEX ||
                       base == POLICY_ENC_BASE64 || base == POLICY_ENC_PUBLIC;
        case POLICY_SECRET_X509_CA:
        case POLICY_SECRET_X509:
                return (size_t)base < ENC_N;
        case POLICY_SECRET_IMPORT:
                /* Unknown until cofferd resolves the exporter, which checks it again. */
                return (size_t)base < ENC_N;
        default:
                return false;
        }
}

cf_status policy_json_escape(struct cf_slice s, struct cf_buf *out)
{
        static const char hexd[] = "0123456789abcdef";
        struct cf_cursor c = cf_cursor_make(s);
        uint8_t ch;

        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                char e[7];
                size_t n = 2;
                e[0] = '\\';
                switch (ch) {
                case '"':
                        e[1] = '"';
                        break;
                case '\\':
                        e[1] = '\\';
                        break;
                case '\n':
                        e[1] = 'n';
                        break;
                case '\r':
                        e[1] = 'r';
                        break;
                case '\t':
                        e[1] = 't';
                        break;
                default:
                        if (ch >= 0x20 && ch != 0x7f) {
                                e[0] = (char)ch;
                                n = 1;
                        } else {
                                e[1] = 'u';
                                e[2] = '0';
                                e[3] = '0';
                                e[4] = hexd[ch >> 4];
                                e[5] = hexd[ch & 15];
                                n = 6;
                        }
                        break;
                }
                TRY(cf_buf_append(out, e, n));
        }
        return CF_OK;
}

static cf_status substitute(const char *text, policy_lookup_fn lookup, void *ctx,
                            struct cf_buf *out)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(text));

        for (;;) {
                struct cf_slice lit, name, value = {0};
                char cname[POLICY_SECRET_NAME_MAX + 1 + POLICY_ENCODING_MAX + 1];
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
