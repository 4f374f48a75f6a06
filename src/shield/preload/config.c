/* The shim's configuration: a small JSON document read once from the descriptor named by
 * COFFER_SHIELD_FD (schema in docs/shield-preload.md). The parser is a strict subset of
 * JSON (objects, arrays, strings without \u escapes, true/false) read through a cursor; it
 * allocates nothing except the base64 buffer of a key, which is secret and wiped. */
#include <string.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/mem.h"
#include "shield/preload/preload_internal.h"

#define KEY_B64_MAX 64u /* base64 characters of a key (44 for 32 bytes) */
#define TAG_HEX     (2u * SHIELD_TAG_SIZE)

static bool peek(const struct cf_cursor *c, uint8_t *ret)
{
        struct cf_cursor t = *c;
        return cf_ok(cf_cursor_u8(&t, ret));
}

static void skip_ws(struct cf_cursor *c)
{
        uint8_t b;
        while (peek(c, &b) && (b == ' ' || b == '\t' || b == '\n' || b == '\r')) {
                cf_ignore(cf_cursor_skip(c, 1)); /* peek proved the byte is there */
        }
}

/* Skips white space, then consumes the byte ch or fails with CF_E_SYNTAX. */
static CF_FN expect(struct cf_cursor *c, uint8_t ch)
{
        skip_ws(c);
        uint8_t b;
        ENSURE(cf_ok(cf_cursor_u8(c, &b)) && b == ch, CF_E_SYNTAX);
        return CF_OK;
}

/* Consumes ch after white space when it is next; returns whether it did. */
static bool accept(struct cf_cursor *c, uint8_t ch)
{
        skip_ws(c);
        uint8_t b;
        if (peek(c, &b) && b == ch) {
                cf_ignore(cf_cursor_skip(c, 1)); /* peek proved the byte is there */
                return true;
        }
        return false;
}

static CF_FN unescape(uint8_t e, uint8_t *ret)
{
        switch (e) {
        case '"':
        case '\\':
        case '/':
                *ret = e;
                return CF_OK;
        case 'n':
                *ret = '\n';
                return CF_OK;
        case 't':
                *ret = '\t';
                return CF_OK;
        case 'r':
                *ret = '\r';
                return CF_OK;
        default:
                return cf_fail(CF_E_UNSUPPORTED); /* \u, \b, \f: never needed here */
        }
}

/* Reads a JSON string into out as a NUL-terminated string of at most out_size - 1 bytes. */
static CF_FN parse_string(struct cf_cursor *c, char *out, size_t out_size)
{
        TRY(expect(c, '"'));
        size_t n = 0;
        for (;;) {
                uint8_t b;
                ENSURE(cf_ok(cf_cursor_u8(c, &b)), CF_E_SYNTAX);
                if (b == '"') {
                        break;
                }
                ENSURE(b >= 0x20, CF_E_SYNTAX);
                if (b == '\\') {
                        uint8_t e;
                        ENSURE(cf_ok(cf_cursor_u8(c, &e)), CF_E_SYNTAX);
                        TRY(unescape(e, &b));
                }
                ENSURE(b != 0, CF_E_SYNTAX);
                ENSURE(n + 1 < out_size, CF_E_LIMIT);
                out[n++] = (char)b;
        }
        out[n] = '\0';
        return CF_OK;
}

static CF_FN parse_bool(struct cf_cursor *c, bool *ret)
{
        skip_ws(c);
        struct cf_slice s;
        struct cf_cursor t = *c;
        if (cf_ok(cf_cursor_take(&t, 4, &s)) && cf_slice_eq(s, cf_slice_str("true"))) {
                *c = t;
                *ret = true;
                return CF_OK;
        }
        t = *c;
        if (cf_ok(cf_cursor_take(&t, 5, &s)) && cf_slice_eq(s, cf_slice_str("false"))) {
                *c = t;
                *ret = false;
                return CF_OK;
        }
        return cf_fail(CF_E_SYNTAX);
}

/* A mount or backing path: absolute and already in normal form (what pre_path_normalize
 * would make of it), so the prefix test in interpose.c is exact. */
static CF_FN parse_path(struct cf_cursor *c, char *out, bool is_mount)
{
        TRY(parse_string(c, out, PRE_PATH_MAX + 1));
        char norm[PRE_PATH_MAX + 1];
        ENSURE(cf_ok(pre_path_normalize(out, norm, sizeof(norm))), CF_E_SCHEMA);
        ENSURE(strcmp(norm, out) == 0, CF_E_SCHEMA);
        ENSURE(!is_mount || strcmp(out, "/") != 0, CF_E_SCHEMA);
        return CF_OK;
}

static CF_FN parse_key(struct cf_cursor *c, uint8_t key[SHIELD_KEY_SIZE])
{
        char b64[KEY_B64_MAX + 1];
        CF_WIPE_ON_EXIT(b64);
        TRY(parse_string(c, b64, sizeof(b64)));
        struct cf_buf b;
        cf_buf_init(&b, SHIELD_KEY_SIZE + 3, true); /* the decoder reserves whole groups */
        cf_status s = cf_base64_decode_buf(cf_slice_str(b64), &b);
        if (cf_ok(s) && b.size != SHIELD_KEY_SIZE) {
                s = cf_fail(CF_E_ENCODING);
        }
        if (cf_ok(s)) {
                memcpy(key, b.ptr, SHIELD_KEY_SIZE);
        }
        cf_buf_done(&b);
        return s;
}

static CF_FN parse_tags(struct cf_cursor *c, struct pre_volume_config *v)
{
        TRY(expect(c, '['));
        if (accept(c, ']')) {
                return CF_OK;
        }
        do {
                ENSURE(v->n_tags < PRE_TAGS_MAX, CF_E_LIMIT);
                char hex[TAG_HEX + 1];
                TRY(parse_string(c, hex, sizeof(hex)));
                ENSURE(strlen(hex) == TAG_HEX, CF_E_ENCODING);
                TRY(cf_hex_decode(cf_slice_str(hex), v->tags[v->n_tags], SHIELD_TAG_SIZE));
                v->n_tags++;
        } while (accept(c, ','));
        return expect(c, ']');
}

/* One member of a volume object; `seen` records which keys appeared (duplicates fail). */
enum {
        SEEN_MOUNT = 1,
        SEEN_BACKING = 2,
        SEEN_KEY = 4,
        SEEN_TAGS = 8,
        SEEN_ANY = 16,
        SEEN_CREATE = 32,
        SEEN_EMPTY = 64,
        SEEN_RESET = 128,
        SEEN_FRESHNESS = 256,
        SEEN_WINDOW = 512,
        SEEN_GENERATION = 1024,
        SEEN_CACHE = 2048
};

/* An unsigned JSON integer (digits only, no sign, no leading zero) in [min, max]. */
static CF_FN parse_uint(struct cf_cursor *c, uint64_t min, uint64_t max, uint64_t *ret)
{
        char digits[21];
        size_t n = 0;
        uint8_t b;

        skip_ws(c);
        while (peek(c, &b) && b >= '0' && b <= '9') {
                ENSURE(n + 1 < sizeof(digits), CF_E_LIMIT);
                digits[n++] = (char)b;
                cf_ignore(cf_cursor_skip(c, 1)); /* peek proved the byte is there */
        }
        digits[n] = '\0';
        ENSURE(n > 0 && (n == 1 || digits[0] != '0'), CF_E_SYNTAX);
        ENSURE(cf_ok(cf_parse_u64(digits, min, max, ret)), CF_E_SCHEMA);
        return CF_OK;
}

static CF_FN parse_freshness(struct cf_cursor *c, bool *batched)
{
        char f[16];
        TRY(parse_string(c, f, sizeof(f)));
        ENSURE(strcmp(f, "strict") == 0 || strcmp(f, "batched") == 0, CF_E_SCHEMA);
        *batched = strcmp(f, "batched") == 0;
        return CF_OK;
}

static CF_FN mark(unsigned *seen, unsigned bit)
{
        ENSURE((*seen & bit) == 0, CF_E_SCHEMA);
        *seen |= bit;
        return CF_OK;
}

static CF_FN parse_member(struct cf_cursor *c, struct pre_volume_config *v, unsigned *seen)
{
        char name[32];
        TRY(parse_string(c, name, sizeof(name)));
        TRY(expect(c, ':'));
        if (strcmp(name, "mount") == 0) {
                TRY(mark(seen, SEEN_MOUNT));
                return parse_path(c, v->mount, true);
        }
        if (strcmp(name, "backing") == 0) {
                TRY(mark(seen, SEEN_BACKING));
                return parse_path(c, v->backing, false);
        }
        if (strcmp(name, "key") == 0) {
                TRY(mark(seen, SEEN_KEY));
                return parse_key(c, v->key);
        }
        if (strcmp(name, "expected_tags") == 0) {
                TRY(mark(seen, SEEN_TAGS));
                return parse_tags(c, v);
        }
        if (strcmp(name, "accept_any_tag") == 0) {
                TRY(mark(seen, SEEN_ANY));
                return parse_bool(c, &v->accept_any_tag);
        }
        if (strcmp(name, "create") == 0) {
                TRY(mark(seen, SEEN_CREATE));
                return parse_bool(c, &v->create);
        }
        if (strcmp(name, "accept_empty") == 0) {
                TRY(mark(seen, SEEN_EMPTY));
                return parse_bool(c, &v->accept_empty);
        }
        if (strcmp(name, "reset") == 0) {
                TRY(mark(seen, SEEN_RESET));
                return parse_bool(c, &v->reset);
        }
        if (strcmp(name, "freshness") == 0) {
                TRY(mark(seen, SEEN_FRESHNESS));
                return parse_freshness(c, &v->batched);
        }
        if (strcmp(name, "window_ms") == 0) {
                uint64_t ms;
                TRY(mark(seen, SEEN_WINDOW));
                TRY(parse_uint(c, PRE_WINDOW_MIN_MS, PRE_WINDOW_MAX_MS, &ms));
                v->window_ms = (uint32_t)ms;
                return CF_OK;
        }
        if (strcmp(name, "generation") == 0) {
                TRY(mark(seen, SEEN_GENERATION));
                v->has_generation = true;
                return parse_uint(c, 0, UINT64_MAX, &v->generation);
        }
        if (strcmp(name, "cache_mib") == 0) {
                uint64_t mib;
                TRY(mark(seen, SEEN_CACHE));
                TRY(parse_uint(c, 0, PRE_CACHE_MIB_MAX, &mib));
                v->cache_bytes = (size_t)mib << 20;
                return CF_OK;
        }
        return cf_fail(CF_E_SCHEMA); /* unknown keys fail closed */
}

static CF_FN parse_volume(struct cf_cursor *c, struct pre_volume_config *v)
{
        TRY(expect(c, '{'));
        unsigned seen = 0;
        if (!accept(c, '}')) {
                do {
                        TRY(parse_member(c, v, &seen));
                } while (accept(c, ','));
                TRY(expect(c, '}'));
        }
        const unsigned need = SEEN_MOUNT | SEEN_BACKING | SEEN_KEY;
        ENSURE((seen & need) == need, CF_E_SCHEMA);
        /* A window only means something in batched mode; a reset starts from nothing. */
        ENSURE(!(seen & SEEN_WINDOW) || v->batched, CF_E_SCHEMA);
        if (!(seen & SEEN_WINDOW)) {
                v->window_ms = PRE_WINDOW_DEFAULT_MS;
        }
        if (!(seen & SEEN_CACHE)) {
                v->cache_bytes = SHIELD_CACHE_DEFAULT;
        }
        ENSURE(!v->reset || (v->n_tags == 0 && v->create), CF_E_SCHEMA);
        ENSURE(!v->accept_empty || v->create, CF_E_SCHEMA);
        return CF_OK;
}

/* No mount may equal or contain another: a path must belong to exactly one volume. */
static CF_FN check_mounts(const struct pre_config *cfg)
{
        for (size_t i = 0; i < cfg->n_vol; i++) {
                for (size_t j = 0; j < cfg->n_vol; j++) {
                        const char *rest;
                        const char *m = cfg->vol[j].mount;
                        ENSURE(i == j || !pre_path_under(cfg->vol[i].mount, m, strlen(m), &rest),
                               CF_E_SCHEMA);
                }
        }
        return CF_OK;
}

static CF_FN parse_doc(struct cf_cursor *c, struct pre_config *cfg)
{
        TRY(expect(c, '{'));
        char name[16];
        TRY(parse_string(c, name, sizeof(name)));
        ENSURE(strcmp(name, "volumes") == 0, CF_E_SCHEMA);
        TRY(expect(c, ':'));
        TRY(expect(c, '['));
        if (!accept(c, ']')) {
                do {
                        ENSURE(cfg->n_vol < PRE_VOLUMES_MAX, CF_E_LIMIT);
                        TRY(parse_volume(c, &cfg->vol[cfg->n_vol]));
                        cfg->n_vol++;
                } while (accept(c, ','));
                TRY(expect(c, ']'));
        }
        TRY(expect(c, '}'));
        skip_ws(c);
        TRY(cf_cursor_expect_end(c));
        return check_mounts(cfg);
}

cf_status pre_config_parse(const uint8_t *doc, size_t size, struct pre_config *ret)
{
        pre_config_wipe(ret);
        ENSURE(size <= PRE_CONFIG_SIZE_MAX, CF_E_LIMIT);
        struct cf_cursor c = cf_cursor_make(cf_slice_make(doc, size));
        cf_status s = parse_doc(&c, ret);
        if (!cf_ok(s)) {
                pre_config_wipe(ret);
        }
        return s;
}

void pre_config_wipe(struct pre_config *c)
{
        cf_wipe(c, sizeof(*c));
}
