/* Policy validation: a jansson tree (from YAML or JSON) -> struct policy.
 *
 * The validator walks the whole document even after an error, so every problem is
 * reported at once; the model it builds on the way is thrown away unless no error was
 * found. Each check reports at the node it is about: the path stack below mirrors the walk
 * and turns into "$.services[0].name" (plus "line L, column C" for YAML). */
#include "policy/policy.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/log.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"
#include "policy/policy_internal.h"

/* The validator's own walk is at most six levels deep (services/N/files/N/path), except for
 * board rules: board/rule plus two elements per level of POLICY_BOARD_DEPTH_MAX, plus one. */
#define VPATH_MAX 24
/* Escaped user strings in messages: about 60 visible characters. */
#define ESC_SIZE 72
#define HEX64    64

struct vel {
        json_t *parent;
        const char *key; /* NULL: a list index */
        size_t index;
};

struct vctx {
        struct policy_errors *errs;
        const struct policy_locs *locs; /* NULL for JSON documents */
        struct vel path[VPATH_MAX];
        size_t depth;
        bool nomem;
        json_t *secret_names;     /* set of declared secret names, for placeholder checks */
        const struct policy *pol; /* the model being built: kinds, for placeholder encodings */
        size_t hex_len;           /* digits item_hex expects (set just before each list) */
};

#define ESC(s, buf) cf_log_escape((s), strlen(s), (buf), sizeof(buf))

static void free_strv(char **v, size_t n);

/* ---- path and error reporting ---------------------------------------------------------- */

static void push_key(struct vctx *v, json_t *parent, const char *key)
{
        cf_assert(v->depth < VPATH_MAX);
        v->path[v->depth++] = (struct vel){parent, key, 0};
}

static void push_index(struct vctx *v, json_t *parent, size_t index)
{
        cf_assert(v->depth < VPATH_MAX);
        v->path[v->depth++] = (struct vel){parent, NULL, index};
}

static void pop(struct vctx *v)
{
        cf_assert(v->depth > 0);
        v->depth--;
}

static __attribute__((format(printf, 4, 5))) void appendf(char *out, size_t size, size_t *o,
                                                          const char *fmt, ...)
{
        va_list ap;
        int n;

        if (*o + 1 >= size) {
                return;
        }
        va_start(ap, fmt);
        n = vsnprintf(out + *o, size - *o, fmt, ap);
        va_end(ap);
        if (n < 0) {
                return;
        }
        if ((size_t)n >= size - *o) {
                /* Truncated: mark it, so a cut path is never mistaken for a real one. */
                *o = size - 1;
                if (size >= 4) {
                        memcpy(out + size - 4, "...", 4);
                }
                return;
        }
        *o += (size_t)n;
}

static bool ident_key(const char *k)
{
        if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_')) {
                return false;
        }
        for (size_t i = 1; k[i] != '\0'; i++) {
                char c = k[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_')) {
                        return false;
                }
        }
        return true;
}

static void path_string(const struct vctx *v, char *out, size_t size)
{
        size_t o = 0;
        char esc[ESC_SIZE];

        out[0] = '\0';
        appendf(out, size, &o, "$");
        for (size_t i = 0; i < v->depth; i++) {
                const struct vel *e = &v->path[i];
                if (e->key == NULL) {
                        appendf(out, size, &o, "[%zu]", e->index);
                } else if (ident_key(e->key)) {
                        appendf(out, size, &o, ".%s", e->key);
                } else {
                        appendf(out, size, &o, "[%s]", ESC(e->key, esc));
                }
        }
}

static void location(const struct vctx *v, bool at_key, char *out, size_t size)
{
        char path[sizeof(((struct policy_error *)0)->location)];
        uint32_t line, col;
        size_t o = 0;

        path_string(v, path, sizeof(path));
        if (v->locs == NULL) {
                appendf(out, size, &o, "%s", path);
                return;
        }
        line = v->locs->root_line;
        col = v->locs->root_col;
        /* The innermost element with a recorded position (all of them have one in
         * practice; the fallback keeps a message useful if not). */
        for (size_t i = v->depth; i > 0; i--) {
                const struct vel *e = &v->path[i - 1];
                const struct policy_loc *l = policy_locs_find(v->locs, e->parent, e->key, e->index);
                if (l != NULL) {
                        bool k = at_key && i == v->depth && e->key != NULL;
                        line = k ? l->key_line : l->line;
                        col = k ? l->key_col : l->col;
                        break;
                }
        }
        appendf(out, size, &o, "line %u, column %u (%s)", line, col, path);
}

static __attribute__((format(printf, 3, 4))) void verr(struct vctx *v, bool at_key, const char *fmt,
                                                       ...)
{
        char loc[sizeof(((struct policy_error *)0)->location)];
        char msg[sizeof(((struct policy_error *)0)->message)];
        va_list ap;

        location(v, at_key, loc, sizeof(loc));
        va_start(ap, fmt);
        if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) {
                msg[0] = '\0';
        }
        va_end(ap);
        policy_errors_add(v->errs, loc, "%s", msg);
}

/* ---- generic checks -------------------------------------------------------------------- */

static const char *type_name(const json_t *j)
{
        switch (json_typeof(j)) {
        case JSON_OBJECT:
                return "a mapping";
        case JSON_ARRAY:
                return "a list";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        case JSON_NULL:
                return "null";
        default:
                return "an unknown value";
        }
}

static char *vdup(struct vctx *v, const char *s)
{
        char *d = strdup(s);

        if (d == NULL) {
                v->nomem = true;
        }
        return d;
}

static void *vcalloc(struct vctx *v, size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size);

        if (p == NULL) {
                v->nomem = true;
        }
        return p;
}

/* Reports every key of obj that is not in allowed (a NULL-terminated list). */
static void check_keys(struct vctx *v, json_t *obj, const char *const *allowed)
{
        const char *key;
        json_t *val;
        char esc[ESC_SIZE];

        json_object_foreach(obj, key, val)
        {
                bool known = false;
                for (size_t i = 0; allowed[i] != NULL && !known; i++) {
                        known = strcmp(key, allowed[i]) == 0;
                }
                if (!known) {
                        push_key(v, obj, key);
                        verr(v, true, "unknown key %s", ESC(key, esc));
                        pop(v);
                }
        }
}

static json_t *get(struct vctx *v, json_t *obj, const char *key, bool required)
{
        json_t *j = json_object_get(obj, key);

        if (j == NULL && required) {
                verr(v, false, "missing required key '%s'", key);
        }
        return j;
}

static bool want_object(struct vctx *v, json_t *j)
{
        if (json_is_object(j)) {
                return true;
        }
        verr(v, false, "expected a mapping, got %s", type_name(j));
        return false;
}

static bool want_list(struct vctx *v, json_t *j, size_t min, size_t max, const char *what)
{
        size_t n;

        if (!json_is_array(j)) {
                verr(v, false, "expected a list of %s, got %s", what, type_name(j));
                return false;
        }
        n = json_array_size(j);
        if (n < min || n > max) {
                verr(v, false, "expected %zu to %zu %s, got %zu", min, max, what, n);
                return false;
        }
        return true;
}

static const char *want_string(struct vctx *v, json_t *j)
{
        if (!json_is_string(j)) {
                verr(v, false, "expected a string, got %s", type_name(j));
                return NULL;
        }
        /* jansson can hold NUL bytes; the model's strings are C strings. */
        if (strlen(json_string_value(j)) != json_string_length(j)) {
                verr(v, false, "strings must not contain NUL bytes");
                return NULL;
        }
        return json_string_value(j);
}

static bool is_lower_hex(uint8_t c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_hex(uint8_t c)
{
        return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

/* True when every byte of s satisfies ok. */
static bool all_bytes(const char *s, bool (*ok)(uint8_t))
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        uint8_t ch;

        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (!ok(ch)) {
                        return false;
                }
        }
        return true;
}

/* 64 hex digits (either case, or lower case only). */
static bool hex64(const char *s, bool lower_only)
{
        return strlen(s) == HEX64 && all_bytes(s, lower_only ? is_lower_hex : is_hex);
}

static void lower(char *s)
{
        for (; *s != '\0'; s++) {
                if (*s >= 'A' && *s <= 'Z') {
                        *s = (char)(*s - 'A' + 'a');
                }
        }
}

/* ---- names ----------------------------------------------------------------------------- */

static bool segment_char(uint8_t c, bool first)
{
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                return true;
        }
        return !first && (c == '.' || c == '_' || c == '-');
}

/* namespace/name: >= 2 segments of [a-z0-9][a-z0-9._-]{0,62}, <= POLICY_NAME_MAX chars. */
static bool policy_name_ok(const char *s)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        size_t segments = 1, seglen = 0;
        uint8_t ch;

        if (strlen(s) > POLICY_NAME_MAX) {
                return false;
        }
        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (ch == '/') {
                        if (seglen == 0) {
                                return false;
                        }
                        segments++;
                        seglen = 0;
                        continue;
                }
                if (!segment_char(ch, seglen == 0) || ++seglen > POLICY_SEGMENT_MAX) {
                        return false;
                }
        }
        return segments >= 2 && seglen > 0;
}

static bool service_char(uint8_t c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* [A-Za-z0-9][A-Za-z0-9._-]{0,63} */
static bool service_name_ok(const char *s)
{
        size_t n = strlen(s);

        return n >= 1 && n <= POLICY_SERVICE_NAME_MAX && all_bytes(s, service_char) &&
               s[0] != '.' && s[0] != '_' && s[0] != '-';
}

static bool env_char(uint8_t c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
}

/* [A-Za-z_][A-Za-z0-9_]* of at most POLICY_ENV_NAME_MAX characters. */
static bool env_name_ok(const char *s)
{
        size_t n = strlen(s);

        return n >= 1 && n <= POLICY_ENV_NAME_MAX && all_bytes(s, env_char) &&
               !(s[0] >= '0' && s[0] <= '9');
}

/* An absolute path without empty, "." or ".." components (the root itself only when
 * allow_root). */
static bool path_ok(const char *s, bool allow_root)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        struct cf_cursor comp_start;
        size_t comp = 0;
        uint8_t ch;

        if (strlen(s) > POLICY_PATH_MAX || s[0] != '/') {
                return false;
        }
        if (strcmp(s, "/") == 0) {
                return allow_root;
        }
        cf_ignore(cf_cursor_skip(&c, 1)); /* the leading '/' */
        comp_start = c;
        for (;;) {
                bool end = !cf_ok(cf_cursor_u8(&c, &ch));
                if (end || ch == '/') {
                        struct cf_slice name;
                        if (comp == 0 || !cf_ok(cf_cursor_take(&comp_start, comp, &name)) ||
                            cf_slice_eq(name, cf_slice_str(".")) ||
                            cf_slice_eq(name, cf_slice_str(".."))) {
                                return false;
                        }
                        if (end) {
                                return true;
                        }
                        comp_start = c;
                        comp = 0;
                        continue;
                }
                comp++;
        }
}

static const char *const secret_kinds[] = {[POLICY_SECRET_ASCII] = "ascii",
                                           [POLICY_SECRET_HEX] = "hex",
                                           [POLICY_SECRET_BASE64] = "base64",
                                           [POLICY_SECRET_BINARY] = "binary",
                                           [POLICY_SECRET_PRIVATE_KEY] = "private-key",
                                           [POLICY_SECRET_PUBLIC_KEY] = "public-key",
                                           [POLICY_SECRET_X509_CA] = "x509-ca",
                                           [POLICY_SECRET_X509] = "x509",
                                           [POLICY_SECRET_IMPORT] = "import"};

static const char *const key_algs[] = {
    [POLICY_ALG_ED25519] = "ed25519", [POLICY_ALG_P256] = "p256",
    [POLICY_ALG_P384] = "p384",       [POLICY_ALG_RSA2048] = "rsa2048",
    [POLICY_ALG_RSA3072] = "rsa3072", [POLICY_ALG_RSA4096] = "rsa4096"};
#define KEY_ALGS_N (sizeof(key_algs) / sizeof(key_algs[0]))

const char *policy_secret_kind_name(enum policy_secret_kind kind)
{
        return kind >= POLICY_SECRET_ASCII && kind <= POLICY_SECRET_KIND_MAX ? secret_kinds[kind]
                                                                             : NULL;
}

const char *policy_platform_name(enum attest_platform p)
{
        switch (p) {
        case ATTEST_SIM:
                return "sim";
        case ATTEST_SGX:
                return "sgx";
        case ATTEST_TDX:
                return "tdx";
        case ATTEST_SNP:
                return "snp";
        default:
                return NULL;
        }
}

static const char *const snp_tcb_names[POLICY_SNP_TCB_N] = {
    [POLICY_SNP_TCB_BOOTLOADER] = "bootloader",
    [POLICY_SNP_TCB_TEE] = "tee",
    [POLICY_SNP_TCB_SNP] = "snp",
    [POLICY_SNP_TCB_MICROCODE] = "microcode",
    [POLICY_SNP_TCB_FMC] = "fmc"};

static const char *const snp_bit_names[POLICY_SNP_BIT_N] = {
    [POLICY_SNP_BIT_DEBUG] = "debug",
    [POLICY_SNP_BIT_MIGRATION_AGENT] = "migration_agent",
    [POLICY_SNP_BIT_SMT] = "smt",
    [POLICY_SNP_BIT_SINGLE_SOCKET] = "single_socket"};

const char *policy_snp_tcb_name(enum policy_snp_tcb c)
{
        return (size_t)c < POLICY_SNP_TCB_N ? snp_tcb_names[c] : NULL;
}

const char *policy_snp_bit_name(enum policy_snp_bit b)
{
        return (size_t)b < POLICY_SNP_BIT_N ? snp_bit_names[b] : NULL;
}

/* The TCB statuses a rule may accept: Intel's names except Revoked and NoMatchingLevel,
 * which no rule can accept (a revoked platform, or one Intel does not know). */
static const char *const tcb_statuses[] = {"UpToDate",
                                           "SWHardeningNeeded",
                                           "ConfigurationNeeded",
                                           "ConfigurationAndSWHardeningNeeded",
                                           "OutOfDate",
                                           "OutOfDateConfigurationNeeded",
                                           "TDRelaunchAdvised",
                                           "TDRelaunchAdvisedConfigurationNeeded",
                                           NULL};

/* ---- placeholders ---------------------------------------------------------------------- */

static void check_placeholders(struct vctx *v, const char *s)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        struct cf_slice lit, name;
        char ref[POLICY_SECRET_NAME_MAX + 1 + POLICY_ENCODING_MAX + 1];
        char cname[POLICY_SECRET_NAME_MAX + 1];
        char esc[ESC_SIZE], esc2[ESC_SIZE];

        for (;;) {
                struct policy_encoding enc;
                const struct policy_secret *sec;
                enum policy_ph r = policy_placeholder_next(&c, &lit, &name);
                if (r == POLICY_PH_END) {
                        return;
                }
                if (r == POLICY_PH_MALFORMED || !cf_ok(cf_slice_to_cstr(name, ref, sizeof(ref)))) {
                        verr(v, false,
                             "malformed placeholder: expected $$coffer:NAME$$ or "
                             "$$coffer:NAME:ENCODING$$ with NAME of [A-Za-z0-9_.-]{1,64}");
                        return;
                }
                if (!cf_ok(policy_placeholder_split(ref, cname, &enc))) {
                        verr(v, false,
                             "unknown encoding in placeholder %s (expected pem, der:base64, hex, "
                             "base64, chain, pkcs8, key, public or json, optionally followed by "
                             ":json, optionally after previous:)",
                             ESC(ref, esc));
                        continue;
                }
                if (json_object_get(v->secret_names, cname) == NULL) {
                        verr(v, false, "placeholder refers to undeclared secret %s",
                             ESC(cname, esc));
                        continue;
                }
                sec = policy_find_secret(v->pol, cname);
                if (sec != NULL && sec->kind == POLICY_SECRET_BINARY && enc.json &&
                    enc.base == POLICY_ENC_DEFAULT) {
                        /* Raw random bytes are not text: JSON could not hold them. */
                        verr(v, false,
                             "placeholder %s: a binary secret cannot be placed in JSON as is; "
                             "use :base64:json or :hex:json",
                             ESC(ref, esc));
                } else if (sec != NULL && sec->kind != 0 &&
                           !policy_encoding_fits(sec->kind, enc.base)) {
                        verr(v, false,
                             "placeholder %s: the encoding does not fit secret %s of kind %s",
                             ESC(ref, esc), ESC(cname, esc2), secret_kinds[sec->kind]);
                }
        }
}

/* ---- lists of strings ------------------------------------------------------------------ */

/* Checks one list item (the path points at it); returns false after reporting. */
typedef bool (*item_fn)(struct vctx *v, const char *s);

/* A list of min..max strings, each passing check; copies are stored in *ret (lower-cased
 * when fold). Duplicates are errors when unique. */
static void string_list(struct vctx *v, json_t *j, size_t min, size_t max, const char *what,
                        item_fn check, bool unique, bool fold, char ***ret, size_t *ret_n)
{
        size_t n;
        char **items;
        char esc[ESC_SIZE];

        if (!want_list(v, j, min, max, what)) {
                return;
        }
        n = json_array_size(j);
        items = vcalloc(v, n, sizeof(*items));
        if (items == NULL) {
                return;
        }
        *ret = items;
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                const char *s;
                push_index(v, j, i);
                s = want_string(v, json_array_get(j, i));
                if (s != NULL && check(v, s)) {
                        items[i] = vdup(v, s);
                        if (items[i] != NULL && fold) {
                                lower(items[i]);
                        }
                        for (size_t k = 0; unique && items[i] != NULL && k < i; k++) {
                                if (items[k] != NULL && strcmp(items[k], items[i]) == 0) {
                                        verr(v, false, "duplicate entry %s", ESC(s, esc));
                                        break;
                                }
                        }
                }
                pop(v);
        }
}

static bool item_key_id(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (!hex64(s, false)) {
                verr(v, false, "expected a key id of 64 hexadecimal digits, got %s", ESC(s, esc));
                return false;
        }
        return true;
}

static bool item_measurement(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (!hex64(s, false)) {
                verr(v, false, "expected a measurement of 64 hexadecimal digits, got %s",
                     ESC(s, esc));
                return false;
        }
        return true;
}

static bool item_argument(struct vctx *v, const char *s)
{
        check_placeholders(v, s);
        return true;
}

static bool item_env_name(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (!env_name_ok(s)) {
                verr(v, false,
                     "invalid environment variable name %s (expected [A-Za-z_][A-Za-z0-9_]*)",
                     ESC(s, esc));
                return false;
        }
        return true;
}

static bool item_tolerate(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (strcmp(s, "simulation") != 0 && strcmp(s, "debug") != 0 &&
            strcmp(s, "outdated_tcb") != 0) {
                verr(v, false,
                     "unknown tolerate value %s (expected simulation, debug or outdated_tcb)",
                     ESC(s, esc));
                return false;
        }
        return true;
}

/* ---- top-level fields ------------------------------------------------------------------ */

static void parse_name(struct vctx *v, json_t *root, struct policy *p)
{
        json_t *j = get(v, root, "name", true);
        const char *s;
        char esc[ESC_SIZE];

        if (j == NULL) {
                return;
        }
        push_key(v, root, "name");
        s = want_string(v, j);
        if (s != NULL && !policy_name_ok(s)) {
                verr(v, false,
                     "invalid policy name %s: expected namespace/name, with segments of "
                     "[a-z0-9][a-z0-9._-]{0,62} and at most %d characters",
                     ESC(s, esc), POLICY_NAME_MAX);
        } else if (s != NULL) {
                p->name = vdup(v, s);
        }
        pop(v);
}

static void parse_predecessor(struct vctx *v, json_t *root, struct policy *p)
{
        json_t *j = get(v, root, "predecessor", false);
        const char *s;
        char esc[ESC_SIZE];

        if (j == NULL || json_is_null(j)) {
                return;
        }
        push_key(v, root, "predecessor");
        if (!json_is_string(j)) {
                verr(v, false, "expected null or a digest of 64 lower-case hex digits, got %s",
                     type_name(j));
        } else if ((s = want_string(v, j)) != NULL) {
                if (!hex64(s, true)) {
                        verr(v, false, "expected a digest of 64 lower-case hex digits, got %s",
                             ESC(s, esc));
                } else {
                        memcpy(p->predecessor, s, HEX64 + 1);
                        p->has_predecessor = true;
                }
        }
        pop(v);
}

static void parse_access(struct vctx *v, json_t *root, struct policy *p)
{
        static const char *const keys[] = {"read", "update", NULL};
        json_t *j = get(v, root, "access", false);
        json_t *l;

        if (j == NULL) {
                return;
        }
        push_key(v, root, "access");
        if (want_object(v, j)) {
                check_keys(v, j, keys);
                if ((l = get(v, j, "read", false)) != NULL) {
                        push_key(v, j, "read");
                        string_list(v, l, 0, POLICY_ACCESS_MAX, "key ids", item_key_id, true, true,
                                    &p->read_ids, &p->n_read_ids);
                        pop(v);
                }
                if ((l = get(v, j, "update", false)) != NULL) {
                        push_key(v, j, "update");
                        string_list(v, l, 0, POLICY_ACCESS_MAX, "key ids", item_key_id, true, true,
                                    &p->update_ids, &p->n_update_ids);
                        pop(v);
                }
        }
        pop(v);
}

/* ---- secrets --------------------------------------------------------------------------- */

static bool printable(uint8_t c)
{
        return c >= 0x20 && c < 0x7f;
}

static void parse_charset(struct vctx *v, json_t *j, struct policy_secret *sec)
{
        const char *s = want_string(v, j);
        size_t n;
        bool seen[128] = {false};
        bool ok;

        if (s == NULL) {
                return;
        }
        n = strlen(s);
        ok = n >= POLICY_CHARSET_MIN && n <= POLICY_CHARSET_MAX && all_bytes(s, printable);
        for (size_t i = 0; ok && i < n; i++) {
                uint8_t c = (uint8_t)s[i];
                ok = !seen[c];
                seen[c] = true;
        }
        if (!ok) {
                verr(v, false, "a charset must have %d to %d distinct printable ASCII characters",
                     POLICY_CHARSET_MIN, POLICY_CHARSET_MAX);
                return;
        }
        sec->charset = vdup(v, s);
}

static void parse_value(struct vctx *v, json_t *j, struct policy_secret *sec)
{
        const char *s = want_string(v, j);
        struct cf_buf b;
        cf_status st = CF_OK;
        size_t n;

        if (s == NULL) {
                return;
        }
        n = strlen(s);
        /* The decoders may reserve a few bytes past the result; the exact limit is
         * checked on the decoded size below. */
        cf_buf_init(&b, POLICY_SECRET_SIZE_MAX + 4, true);
        switch (sec->kind) {
        case POLICY_SECRET_ASCII:
                if (n == 0 || n > POLICY_SECRET_SIZE_MAX || !all_bytes(s, printable)) {
                        verr(v, false, "an ascii value must be 1 to %d printable ASCII characters",
                             POLICY_SECRET_SIZE_MAX);
                        return;
                }
                st = cf_buf_append(&b, s, n);
                break;
        case POLICY_SECRET_HEX:
                st = cf_hex_decode_buf(cf_slice_make(s, n), &b);
                break;
        case POLICY_SECRET_BASE64:
        case POLICY_SECRET_BINARY:
                st = cf_base64_decode_buf(cf_slice_make(s, n), &b);
                break;
        default:
                return; /* the kind was already reported */
        }
        if (st.code == CF_E_NOMEM) {
                v->nomem = true;
        } else if (!cf_ok(st) || b.size == 0 || b.size > POLICY_SECRET_SIZE_MAX) {
                verr(v, false, "the value must be %s encoding 1 to %d bytes",
                     sec->kind == POLICY_SECRET_HEX ? "hex" : "padded base64",
                     POLICY_SECRET_SIZE_MAX);
        } else {
                sec->has_value = true;
                sec->value = cf_buf_steal(&b, &sec->value_size);
                sec->size = sec->value_size;
        }
        cf_buf_done(&b);
}

/* ---- keys and certificates ------------------------------------------------------------ */

/* One DNS label: 1..63 letters, digits and hyphens, not starting or ending with a hyphen. */
static bool dns_label_ok(struct cf_slice l)
{
        struct cf_cursor c = cf_cursor_make(l);
        uint8_t ch = 0, first = 0;

        if (l.size < 1 || l.size > 63) {
                return false;
        }
        cf_ignore(cf_cursor_u8(&c, &first)); /* size >= 1 */
        ch = first;
        for (;;) {
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-')) {
                        return false;
                }
                if (!cf_ok(cf_cursor_u8(&c, &ch))) {
                        break;
                }
        }
        return first != '-' && ch != '-';
}

/* A host name for a SAN: labels separated by dots (no trailing dot), at most
 * POLICY_DNS_NAME_MAX characters; the first label may be "*" (a wildcard). */
static bool dns_name_ok(const char *s)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        struct cf_cursor start = c;
        size_t len = 0, labels = 0;
        uint8_t ch;

        if (strlen(s) < 1 || strlen(s) > POLICY_DNS_NAME_MAX) {
                return false;
        }
        for (;;) {
                bool end = !cf_ok(cf_cursor_u8(&c, &ch));
                if (end || ch == '.') {
                        struct cf_slice label;
                        if (!cf_ok(cf_cursor_take(&start, len, &label))) {
                                return false;
                        }
                        if (!(labels == 0 && cf_slice_eq(label, cf_slice_str("*")) && !end) &&
                            !dns_label_ok(label)) {
                                return false;
                        }
                        labels++;
                        if (end) {
                                return true;
                        }
                        start = c;
                        len = 0;
                        continue;
                }
                len++;
        }
}

static bool item_dns(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (!dns_name_ok(s)) {
                verr(v, false,
                     "invalid DNS name %s (expected dot-separated labels of letters, digits and "
                     "'-', at most %d characters; '*' only as the first label)",
                     ESC(s, esc), POLICY_DNS_NAME_MAX);
                return false;
        }
        return true;
}

static bool item_ip(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (!cf_x509_ip_ok(s)) {
                verr(v, false, "invalid IP address %s (expected IPv4 dotted quad or IPv6)",
                     ESC(s, esc));
                return false;
        }
        return true;
}

static bool item_usage(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (strcmp(s, "server") != 0 && strcmp(s, "client") != 0) {
                verr(v, false, "unknown usage %s (expected server or client)", ESC(s, esc));
                return false;
        }
        return true;
}

/* A printable-ASCII string of 1..max characters, copied into *ret. */
static void pki_string(struct vctx *v, json_t *obj, const char *key, size_t max, char **ret)
{
        json_t *j = json_object_get(obj, key);
        const char *s;

        if (j == NULL) {
                return;
        }
        push_key(v, obj, key);
        s = want_string(v, j);
        if (s != NULL && (strlen(s) < 1 || strlen(s) > max || !all_bytes(s, printable))) {
                verr(v, false, "%s must be 1 to %zu printable ASCII characters", key, max);
        } else if (s != NULL) {
                *ret = vdup(v, s);
        }
        pop(v);
}

/* A reference to another secret of the policy (resolved by check_secret_refs). */
static void pki_ref(struct vctx *v, json_t *obj, const char *key, char **ret)
{
        json_t *j = json_object_get(obj, key);
        const char *s;
        char esc[ESC_SIZE];

        if (j == NULL) {
                return;
        }
        push_key(v, obj, key);
        s = want_string(v, j);
        if (s != NULL && !policy_secret_name_ok(cf_slice_str(s))) {
                verr(v, false, "invalid secret name %s (expected [A-Za-z0-9_.-]{1,64})",
                     ESC(s, esc));
        } else if (s != NULL) {
                *ret = vdup(v, s);
        }
        pop(v);
}

static void parse_algorithm(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        json_t *j = json_object_get(obj, "algorithm");
        const char *s;
        char esc[ESC_SIZE];

        sec->algorithm = POLICY_ALG_P256;
        if (j == NULL) {
                return;
        }
        push_key(v, obj, "algorithm");
        s = want_string(v, j);
        for (size_t i = 1; s != NULL && i < KEY_ALGS_N; i++) {
                if (strcmp(s, key_algs[i]) == 0) {
                        sec->algorithm = (enum policy_key_alg)i;
                        s = NULL;
                }
        }
        if (s != NULL) {
                /* rsa1024, p521, secp256k1, ... : weak or unknown parameters are refused. */
                verr(v, false,
                     "unknown or refused algorithm %s (expected ed25519, p256, p384, rsa2048, "
                     "rsa3072 or rsa4096; RSA below 2048 bits is refused)",
                     ESC(s, esc));
        }
        pop(v);
}

static void parse_validity(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        json_t *j = json_object_get(obj, "validity_days");

        sec->validity_days = sec->kind == POLICY_SECRET_X509_CA ? POLICY_CA_VALIDITY_DEFAULT
                                                                : POLICY_X509_VALIDITY_DEFAULT;
        if (j == NULL) {
                return;
        }
        push_key(v, obj, "validity_days");
        if (!json_is_integer(j)) {
                verr(v, false, "validity_days must be an integer from 1 to %d, got %s",
                     POLICY_VALIDITY_DAYS_MAX, type_name(j));
        } else if (json_integer_value(j) < 1 || json_integer_value(j) > POLICY_VALIDITY_DAYS_MAX) {
                verr(v, false, "validity_days must be from 1 to %d, got %lld",
                     POLICY_VALIDITY_DAYS_MAX, (long long)json_integer_value(j));
        } else {
                sec->validity_days = (uint32_t)json_integer_value(j);
        }
        pop(v);
}

static void parse_usage(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        json_t *j = json_object_get(obj, "usage");
        char **items = NULL;
        size_t n = 0;

        sec->usage = POLICY_USAGE_SERVER;
        if (j == NULL) {
                return;
        }
        push_key(v, obj, "usage");
        string_list(v, j, 1, 2, "usages", item_usage, true, false, &items, &n);
        if (items != NULL) {
                sec->usage = 0;
                for (size_t i = 0; i < n; i++) {
                        if (items[i] != NULL) {
                                sec->usage |= strcmp(items[i], "server") == 0 ? POLICY_USAGE_SERVER
                                                                              : POLICY_USAGE_CLIENT;
                        }
                }
                if (sec->usage == 0) {
                        sec->usage = POLICY_USAGE_SERVER; /* only after a reported error */
                }
        }
        free_strv(items, n);
        pop(v);
}

/* Keys each kind accepts besides name and kind. */
static const char *const *kind_keys(enum policy_secret_kind k)
{
        static const char *const generated[] = {"size", "value", "charset", "rotate", "export",
                                                NULL};
        static const char *const private_key[] = {"algorithm", "rotate", "export", NULL};
        static const char *const public_key[] = {"of", "export", NULL};
        static const char *const ca[] = {"common_name",       "issuer", "algorithm",
                                         "validity_days",     "rotate", "export",
                                         "renew_before_days", NULL};
        static const char *const leaf[] = {"issuer", "common_name",   "dns",
                                           "ip",     "usage",         "algorithm",
                                           "rotate", "validity_days", "renew_before_days",
                                           "export", NULL};

        switch (k) {
        case POLICY_SECRET_PRIVATE_KEY:
                return private_key;
        case POLICY_SECRET_PUBLIC_KEY:
                return public_key;
        case POLICY_SECRET_X509_CA:
                return ca;
        case POLICY_SECRET_X509:
                return leaf;
        default:
                return generated;
        }
}

static void parse_pki(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        switch (sec->kind) {
        case POLICY_SECRET_PRIVATE_KEY:
                parse_algorithm(v, obj, sec);
                break;
        case POLICY_SECRET_PUBLIC_KEY:
                if (get(v, obj, "of", true) != NULL) {
                        pki_ref(v, obj, "of", &sec->of);
                }
                break;
        case POLICY_SECRET_X509:
        case POLICY_SECRET_X509_CA:
                if (sec->kind == POLICY_SECRET_X509) {
                        (void)get(v, obj, "issuer", true); /* reports it when missing */
                }
                parse_algorithm(v, obj, sec);
                parse_validity(v, obj, sec);
                pki_ref(v, obj, "issuer", &sec->issuer);
                if (get(v, obj, "common_name", true) != NULL) {
                        pki_string(v, obj, "common_name", POLICY_COMMON_NAME_MAX,
                                   &sec->common_name);
                }
                if (sec->kind == POLICY_SECRET_X509_CA) {
                        break;
                }
                parse_usage(v, obj, sec);
                if (json_object_get(obj, "dns") != NULL) {
                        push_key(v, obj, "dns");
                        string_list(v, json_object_get(obj, "dns"), 0, POLICY_SAN_MAX, "DNS names",
                                    item_dns, true, false, &sec->dns, &sec->n_dns);
                        pop(v);
                }
                if (json_object_get(obj, "ip") != NULL) {
                        push_key(v, obj, "ip");
                        string_list(v, json_object_get(obj, "ip"), 0, POLICY_SAN_MAX,
                                    "IP addresses", item_ip, true, false, &sec->ip, &sec->n_ip);
                        pop(v);
                }
                break;
        default:
                break;
        }
}

static void parse_generated(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        json_t *size = get(v, obj, "size", false);
        json_t *value = get(v, obj, "value", false);
        json_t *charset = get(v, obj, "charset", false);

        if (size != NULL && value != NULL) {
                verr(v, false, "a secret has either size or value, not both");
        } else if (size == NULL && value == NULL) {
                verr(v, false, "missing required key 'size' (or 'value')");
        } else if (size != NULL) {
                push_key(v, obj, "size");
                if (!json_is_integer(size)) {
                        verr(v, false, "size must be an integer from 1 to %d (bytes), got %s",
                             POLICY_SECRET_SIZE_MAX, type_name(size));
                } else if (json_integer_value(size) < 1 ||
                           json_integer_value(size) > POLICY_SECRET_SIZE_MAX) {
                        verr(v, false, "size must be from 1 to %d (bytes), got %lld",
                             POLICY_SECRET_SIZE_MAX, (long long)json_integer_value(size));
                } else {
                        sec->size = (size_t)json_integer_value(size);
                }
                pop(v);
        } else if (sec->kind != 0) {
                push_key(v, obj, "value");
                parse_value(v, value, sec);
                pop(v);
        }
        if (charset != NULL) {
                push_key(v, obj, "charset");
                if (sec->kind != 0 && sec->kind != POLICY_SECRET_ASCII) {
                        verr(v, false, "charset is only allowed for kind ascii");
                } else if (value != NULL) {
                        verr(v, false, "charset applies to generated secrets (size), not to value");
                } else {
                        parse_charset(v, charset, sec);
                }
                pop(v);
        }
}

/* ---- versions, renewal and sharing (docs/policy.md) ------------------------------------- */

static bool get_int(struct vctx *v, json_t *obj, const char *key, json_int_t min, json_int_t max,
                    json_int_t *ret);

/* A namespace: one or more segments of a policy name ("team", "team/db"). */
static bool namespace_ok(struct cf_slice ns)
{
        struct cf_cursor c = cf_cursor_make(ns);
        size_t seglen = 0;
        uint8_t ch;

        if (ns.size == 0 || ns.size > POLICY_NAME_MAX) {
                return false;
        }
        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (ch == '/') {
                        if (seglen == 0) {
                                return false;
                        }
                        seglen = 0;
                        continue;
                }
                if (!segment_char(ch, seglen == 0) || ++seglen > POLICY_SEGMENT_MAX) {
                        return false;
                }
        }
        return seglen > 0;
}

/* An export entry: a policy name, or a namespace followed by "/" "*". */
static bool item_export(struct vctx *v, const char *s)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        struct cf_slice ns, tail;
        char esc[ESC_SIZE];
        size_t n = strlen(s);

        if (n > 2 && cf_ok(cf_cursor_take(&c, n - 2, &ns)) && cf_ok(cf_cursor_take(&c, 2, &tail)) &&
            cf_slice_eq(tail, cf_slice_str("/*"))) {
                if (namespace_ok(ns)) {
                        return true;
                }
        } else if (policy_name_ok(s)) {
                return true;
        }
        verr(v, false,
             "invalid export entry %s (expected a policy name namespace/name, or a namespace "
             "followed by /* for every policy under it)",
             ESC(s, esc));
        return false;
}

bool policy_export_allows(const struct policy_secret *sec, const char *importer)
{
        size_t n;

        if (sec == NULL || importer == NULL || sec->kind == POLICY_SECRET_IMPORT) {
                return false;
        }
        n = strlen(importer);
        for (size_t i = 0; i < sec->n_export_to; i++) {
                const char *e = sec->export_to[i];
                size_t m = e != NULL ? strlen(e) : 0;
                if (m == 0) {
                        continue;
                }
                if (strcmp(e, importer) == 0) {
                        return true;
                }
                /* "ns/" "*": importer starts with "ns/" and names a policy below it. */
                if (m >= 2 && e[m - 1] == '*' && e[m - 2] == '/' && n > m - 1 &&
                    strncmp(e, importer, m - 1) == 0) {
                        return true;
                }
        }
        return false;
}

/* rotate (generated kinds), renew_before_days (certificates, default a third of the
 * validity, at least 1) and export (every kind a document declares). */
static void parse_lifecycle(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        json_int_t n;
        json_t *j;

        if (json_object_get(obj, "rotate") != NULL && json_object_get(obj, "value") != NULL) {
                push_key(v, obj, "rotate");
                verr(v, false,
                     "rotate applies to generated secrets; an explicit value is rotated by "
                     "changing 'value'");
                pop(v);
        } else if (get_int(v, obj, "rotate", 0, POLICY_ROTATE_MAX, &n)) {
                sec->rotate = (uint32_t)n;
        }
        if (sec->kind == POLICY_SECRET_X509_CA || sec->kind == POLICY_SECRET_X509) {
                sec->renew_before_days = sec->validity_days / 3 > 0 ? sec->validity_days / 3 : 1;
                if (get_int(v, obj, "renew_before_days", 0, POLICY_VALIDITY_DAYS_MAX, &n)) {
                        sec->renew_before_days = (uint32_t)n;
                }
        }
        if ((j = json_object_get(obj, "export")) != NULL) {
                push_key(v, obj, "export");
                string_list(v, j, 1, POLICY_EXPORTS_MAX, "policy names or namespaces",
                            item_export, true, false, &sec->export_to, &sec->n_export_to);
                pop(v);
        }
}

/* A secret declared with `import` (and no kind): {policy, secret, digest?}. */
static void parse_import(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        static const char *const keys[] = {"policy", "secret", "digest", NULL};
        json_t *j = json_object_get(obj, "import"), *f;
        const char *key, *s;
        json_t *val;
        char esc[ESC_SIZE];

        sec->kind = POLICY_SECRET_IMPORT;
        json_object_foreach(obj, key, val)
        {
                if (strcmp(key, "name") != 0 && strcmp(key, "import") != 0) {
                        push_key(v, obj, key);
                        if (strcmp(key, "kind") == 0) {
                                verr(v, true,
                                     "an imported secret takes the exporter's kind: remove "
                                     "'kind'");
                        } else {
                                verr(v, true,
                                     "key %s is not allowed for an imported secret (only name "
                                     "and import)",
                                     ESC(key, esc));
                        }
                        pop(v);
                }
        }
        push_key(v, obj, "import");
        if (!want_object(v, j)) {
                pop(v);
                return;
        }
        check_keys(v, j, keys);
        if ((f = get(v, j, "policy", true)) != NULL) {
                push_key(v, j, "policy");
                s = want_string(v, f);
                if (s != NULL && !policy_name_ok(s)) {
                        verr(v, false, "invalid policy name %s (expected namespace/name)",
                             ESC(s, esc));
                } else if (s != NULL && v->pol->name != NULL && strcmp(s, v->pol->name) == 0) {
                        verr(v, false,
                             "a policy cannot import from itself; use its secret directly");
                } else if (s != NULL) {
                        sec->import_policy = vdup(v, s);
                }
                pop(v);
        }
        if ((f = get(v, j, "secret", true)) != NULL) {
                push_key(v, j, "secret");
                s = want_string(v, f);
                if (s != NULL && !policy_secret_name_ok(cf_slice_str(s))) {
                        verr(v, false, "invalid secret name %s (expected [A-Za-z0-9_.-]{1,64})",
                             ESC(s, esc));
                } else if (s != NULL) {
                        sec->import_secret = vdup(v, s);
                }
                pop(v);
        }
        if ((f = get(v, j, "digest", false)) != NULL) {
                push_key(v, j, "digest");
                s = want_string(v, f);
                if (s != NULL && !hex64(s, false)) {
                        verr(v, false,
                             "digest must be 64 hex digits (the exporter's document digest)");
                } else if (s != NULL) {
                        memcpy(sec->import_digest, s, sizeof(sec->import_digest));
                        lower(sec->import_digest);
                }
                pop(v);
        }
        pop(v);
}

static void parse_secret(struct vctx *v, json_t *obj, struct policy_secret *sec)
{
        static const char *const all_keys[] = {
            "name",   "kind",        "size", "value", "charset", "algorithm",     "of",
            "issuer", "common_name", "dns",  "ip",    "usage",   "validity_days", "rotate",
            "export", "import",      "renew_before_days",        NULL};
        json_t *name = get(v, obj, "name", true);
        json_t *import = json_object_get(obj, "import");
        json_t *kind = get(v, obj, "kind", import == NULL);
        const char *s;
        char esc[ESC_SIZE];

        check_keys(v, obj, all_keys);
        if (name != NULL) {
                push_key(v, obj, "name");
                s = want_string(v, name);
                if (s != NULL && !policy_secret_name_ok(cf_slice_str(s))) {
                        verr(v, false, "invalid secret name %s (expected [A-Za-z0-9_.-]{1,64})",
                             ESC(s, esc));
                } else if (s != NULL && json_object_get(v->secret_names, s) != NULL) {
                        verr(v, false, "duplicate secret %s", ESC(s, esc));
                } else if (s != NULL) {
                        sec->name = vdup(v, s);
                        if (json_object_set_new(v->secret_names, s, json_true()) != 0) {
                                v->nomem = true;
                        }
                }
                pop(v);
        }
        if (import != NULL) {
                parse_import(v, obj, sec);
                return;
        }
        if (kind != NULL) {
                push_key(v, obj, "kind");
                s = want_string(v, kind);
                for (size_t i = POLICY_SECRET_ASCII; s != NULL && i <= POLICY_SECRET_KIND_MAX;
                     i++) {
                        if (strcmp(s, secret_kinds[i]) == 0) {
                                sec->kind = (enum policy_secret_kind)i;
                        }
                }
                if (s != NULL && sec->kind == 0) {
                        verr(v, false,
                             "unknown secret kind %s (expected ascii, hex, base64, binary, "
                             "private-key, "
                             "public-key, x509-ca or x509)",
                             ESC(s, esc));
                }
                pop(v);
        }
        if (sec->kind == 0) {
                return; /* reported: the other keys cannot be checked against a kind */
        }
        /* Keys of other kinds are errors at the key, so a misplaced one is easy to find. */
        {
                const char *const *allowed = kind_keys(sec->kind);
                const char *key;
                json_t *val;
                json_object_foreach(obj, key, val)
                {
                        bool ok = strcmp(key, "name") == 0 || strcmp(key, "kind") == 0;
                        bool known = false;
                        for (size_t i = 0; allowed[i] != NULL && !ok; i++) {
                                ok = strcmp(key, allowed[i]) == 0;
                        }
                        for (size_t i = 0; all_keys[i] != NULL && !ok && !known; i++) {
                                known = strcmp(key, all_keys[i]) == 0;
                        }
                        if (!ok && known) {
                                push_key(v, obj, key);
                                verr(v, true, "key %s is not allowed for kind %s", ESC(key, esc),
                                     secret_kinds[sec->kind]);
                                pop(v);
                        }
                }
        }
        if (sec->kind <= POLICY_SECRET_BINARY) {
                parse_generated(v, obj, sec);
        } else {
                parse_pki(v, obj, sec);
        }
        parse_lifecycle(v, obj, sec);
}

/* Index of the secret called name, or n when there is none. */
static size_t secret_index(const struct policy *p, const char *name)
{
        for (size_t i = 0; name != NULL && i < p->n_secrets; i++) {
                if (p->secrets[i].name != NULL && strcmp(p->secrets[i].name, name) == 0) {
                        return i;
                }
        }
        return p->n_secrets;
}

/* Cross-references between secrets, once all are known: `of` names a private-key, `issuer`
 * an x509-ca, issuer chains end at a self-signed CA (no cycles), a certificate does not
 * outlive its issuer; then the derived path lengths of CAs. */
static void check_secret_refs(struct vctx *v, json_t *list, struct policy *p)
{
        char esc[ESC_SIZE], esc2[ESC_SIZE];
        bool cycles = false;

        for (size_t i = 0; i < p->n_secrets; i++) {
                struct policy_secret *sec = &p->secrets[i];
                json_t *item = json_array_get(list, i);
                size_t k;

                if (sec->of != NULL) {
                        push_index(v, list, i);
                        push_key(v, item, "of");
                        k = secret_index(p, sec->of);
                        if (k == p->n_secrets) {
                                verr(v, false, "'of' refers to undeclared secret %s",
                                     ESC(sec->of, esc));
                        } else if (p->secrets[k].kind != POLICY_SECRET_PRIVATE_KEY &&
                                   p->secrets[k].kind != 0) {
                                verr(v, false,
                                     "'of' must name a private-key secret; %s is of kind %s",
                                     ESC(sec->of, esc), secret_kinds[p->secrets[k].kind]);
                        }
                        pop(v);
                        pop(v);
                }
                if (sec->issuer == NULL) {
                        continue;
                }
                push_index(v, list, i);
                push_key(v, item, "issuer");
                k = secret_index(p, sec->issuer);
                if (k == p->n_secrets) {
                        verr(v, false, "'issuer' refers to undeclared secret %s",
                             ESC(sec->issuer, esc));
                } else if (p->secrets[k].kind != POLICY_SECRET_X509_CA && p->secrets[k].kind != 0) {
                        verr(v, false, "'issuer' must name an x509-ca secret; %s is of kind %s",
                             ESC(sec->issuer, esc), secret_kinds[p->secrets[k].kind]);
                } else if (k == i) {
                        verr(v, false,
                             "issuer cycle: %s issues itself (omit 'issuer' for a "
                             "self-signed CA)",
                             ESC(sec->name ? sec->name : "", esc));
                        cycles = true;
                } else {
                        /* Walk up the chain; coming back to i is a cycle through i. */
                        size_t cur = k, steps = 0;
                        while (p->secrets[cur].issuer != NULL && steps++ <= p->n_secrets) {
                                cur = secret_index(p, p->secrets[cur].issuer);
                                if (cur == p->n_secrets || cur == i) {
                                        break;
                                }
                        }
                        if (cur == i || steps > p->n_secrets) {
                                verr(v, false,
                                     "issuer cycle: the chain of issuers from %s through %s "
                                     "never reaches a self-signed x509-ca",
                                     ESC(sec->name ? sec->name : "", esc), ESC(sec->issuer, esc2));
                                cycles = true;
                        } else if (cur != p->n_secrets && steps + 1 > POLICY_ISSUER_DEPTH_MAX) {
                                verr(v, false,
                                     "issuer chain too long: %zu CAs above %s (at most %d)",
                                     steps + 1, ESC(sec->name ? sec->name : "", esc),
                                     POLICY_ISSUER_DEPTH_MAX);
                        } else if (sec->validity_days > p->secrets[k].validity_days &&
                                   p->secrets[k].kind == POLICY_SECRET_X509_CA) {
                                verr(v, false,
                                     "impossible validity: %u days is longer than the %u days "
                                     "of its issuer %s, which the certificate would outlive",
                                     sec->validity_days, p->secrets[k].validity_days,
                                     ESC(sec->issuer, esc));
                        }
                }
                pop(v);
                pop(v);
        }
        if (cycles) {
                return;
        }
        /* pathLenConstraint: for each CA, every ancestor at distance d gets at least d. */
        for (size_t i = 0; i < p->n_secrets; i++) {
                size_t cur = i;
                int d = 0;
                if (p->secrets[i].kind != POLICY_SECRET_X509_CA) {
                        continue;
                }
                for (size_t steps = 0; steps < p->n_secrets && p->secrets[cur].issuer != NULL;
                     steps++) {
                        cur = secret_index(p, p->secrets[cur].issuer);
                        if (cur == p->n_secrets) {
                                break;
                        }
                        d++;
                        if (p->secrets[cur].path_len < d) {
                                p->secrets[cur].path_len = d;
                        }
                }
        }
}

/* A list of mappings: allocates n elements of elem_size into *ret and calls fn for each
 * mapping (with its index pushed on the path), so every such list validates alike. */
typedef void (*list_item_fn)(struct vctx *v, json_t *item, void *ctx, size_t i);

static bool each_object(struct vctx *v, json_t *j, size_t min, size_t max, const char *what,
                        size_t elem_size, void **ret, size_t *ret_n, void *ctx, list_item_fn fn)
{
        size_t n;

        if (!want_list(v, j, min, max, what)) {
                return false;
        }
        n = json_array_size(j);
        *ret = vcalloc(v, n, elem_size);
        if (*ret == NULL) {
                return false;
        }
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                json_t *item = json_array_get(j, i);
                push_index(v, j, i);
                if (want_object(v, item)) {
                        fn(v, item, ctx, i);
                }
                pop(v);
        }
        return true;
}

/* The same for a top-level key; returns the list when it was read. */
static json_t *parse_list_of(struct vctx *v, json_t *root, const char *key, bool required,
                             size_t min, size_t max, size_t elem_size, void **ret, size_t *ret_n,
                             struct policy *p, list_item_fn fn)
{
        json_t *j = get(v, root, key, required);
        bool ok;

        if (j == NULL) {
                return NULL;
        }
        push_key(v, root, key);
        ok = each_object(v, j, min, max, key, elem_size, ret, ret_n, p, fn);
        pop(v);
        return ok ? j : NULL;
}

static void parse_secret_at(struct vctx *v, json_t *item, void *ctx, size_t i)
{
        struct policy *p = ctx;

        parse_secret(v, item, &p->secrets[i]);
}

static void parse_secrets(struct vctx *v, json_t *root, struct policy *p)
{
        json_t *j =
            parse_list_of(v, root, "secrets", false, 0, POLICY_SECRETS_MAX, sizeof(*p->secrets),
                          (void **)&p->secrets, &p->n_secrets, p, parse_secret_at);

        if (j != NULL) {
                push_key(v, root, "secrets");
                check_secret_refs(v, j, p);
                pop(v);
        }
}

/* ---- volumes -------------------------------------------------------------------------- */

static const char *const volume_rollbacks[] = {[POLICY_VOLUME_PROTECTED] = "protected",
                                               [POLICY_VOLUME_REINITIALIZABLE] = "reinitializable",
                                               [POLICY_VOLUME_EPHEMERAL] = "ephemeral"};

static const char *const volume_freshnesses[] = {[POLICY_VOLUME_STRICT] = "strict",
                                                  [POLICY_VOLUME_BATCHED] = "batched"};

const char *policy_volume_freshness_name(enum policy_volume_freshness f)
{
        if (f < POLICY_VOLUME_STRICT || f > POLICY_VOLUME_BATCHED) {
                return NULL;
        }
        return volume_freshnesses[f];
}

const char *policy_volume_rollback_name(enum policy_volume_rollback r)
{
        if (r < POLICY_VOLUME_PROTECTED || r > POLICY_VOLUME_EPHEMERAL) {
                return NULL;
        }
        return volume_rollbacks[r];
}

/* The required "name" of item idx of a list: [A-Za-z0-9][A-Za-z0-9._-]{0,63} and unique among
 * the items before it, whose names are the char * at name_offset in each elem_size element
 * of base. Returns a copy, or NULL (with the error recorded). */
static char *unique_name(struct vctx *v, json_t *obj, const char *what, const void *base,
                         size_t elem_size, size_t name_offset, size_t idx)
{
        json_t *j = get(v, obj, "name", true);
        const char *s;
        char esc[ESC_SIZE], *copy = NULL;

        if (j == NULL) {
                return NULL;
        }
        push_key(v, obj, "name");
        s = want_string(v, j);
        if (s != NULL && !service_name_ok(s)) {
                verr(v, false, "invalid %s name %s (expected [A-Za-z0-9][A-Za-z0-9._-]{0,63})",
                     what, ESC(s, esc));
        } else if (s != NULL) {
                for (size_t k = 0; k < idx; k++) {
                        const char *other;
                        memcpy(&other, (const char *)base + k * elem_size + name_offset,
                               sizeof(other));
                        if (other != NULL && strcmp(other, s) == 0) {
                                verr(v, false, "duplicate %s %s", what, ESC(s, esc));
                        }
                }
                copy = vdup(v, s);
        }
        pop(v);
        return copy;
}

static bool get_int(struct vctx *v, json_t *obj, const char *key, json_int_t min, json_int_t max,
                    json_int_t *ret);

/* A volume's "freshness" (strict | batched) and "batched_window_ms" (batched only). */
static void parse_volume_freshness(struct vctx *v, json_t *obj, struct policy_volume *vol)
{
        json_t *j;
        json_int_t ms;
        const char *s;
        char esc[ESC_SIZE];

        vol->freshness = POLICY_VOLUME_STRICT;
        vol->batched_window_ms = POLICY_VOLUME_WINDOW_DEFAULT_MS;
        if ((j = get(v, obj, "freshness", false)) != NULL) {
                push_key(v, obj, "freshness");
                s = want_string(v, j);
                if (s != NULL && strcmp(s, "batched") == 0) {
                        vol->freshness = POLICY_VOLUME_BATCHED;
                } else if (s != NULL && strcmp(s, "strict") != 0) {
                        verr(v, false, "unknown freshness %s (expected strict or batched)",
                             ESC(s, esc));
                }
                pop(v);
        }
        if (json_object_get(obj, "batched_window_ms") != NULL &&
            vol->freshness != POLICY_VOLUME_BATCHED) {
                push_key(v, obj, "batched_window_ms");
                verr(v, false, "batched_window_ms needs freshness: batched");
                pop(v);
        } else if (get_int(v, obj, "batched_window_ms", POLICY_VOLUME_WINDOW_MIN_MS,
                           POLICY_VOLUME_WINDOW_MAX_MS, &ms)) {
                vol->batched_window_ms = (uint32_t)ms;
        }
}

static void parse_volume(struct vctx *v, json_t *obj, struct policy *p, size_t idx)
{
        static const char *const keys[] = {"name", "rollback", "freshness", "batched_window_ms",
                                           NULL};
        struct policy_volume *vol = &p->volumes[idx];
        json_t *j;
        const char *s;
        char esc[ESC_SIZE];

        check_keys(v, obj, keys);
        vol->rollback = POLICY_VOLUME_PROTECTED;
        vol->name = unique_name(v, obj, "volume", p->volumes, sizeof(p->volumes[0]),
                                offsetof(struct policy_volume, name), idx);
        if ((j = get(v, obj, "rollback", false)) != NULL) {
                push_key(v, obj, "rollback");
                s = want_string(v, j);
                vol->rollback = 0;
                for (int r = POLICY_VOLUME_PROTECTED; s != NULL && r <= POLICY_VOLUME_EPHEMERAL;
                     r++) {
                        if (strcmp(s, volume_rollbacks[r]) == 0) {
                                vol->rollback = (enum policy_volume_rollback)r;
                        }
                }
                if (s != NULL && vol->rollback == 0) {
                        verr(v, false,
                             "unknown rollback %s (expected protected, reinitializable or "
                             "ephemeral)",
                             ESC(s, esc));
                }
                pop(v);
        }
        parse_volume_freshness(v, obj, vol);
}

static void parse_volume_at(struct vctx *v, json_t *item, void *ctx, size_t i)
{
        parse_volume(v, item, ctx, i);
}

static void parse_volumes(struct vctx *v, json_t *root, struct policy *p)
{
        (void)(parse_list_of(v, root, "volumes", false, 0, POLICY_VOLUMES_MAX, sizeof(*p->volumes),
                             (void **)&p->volumes, &p->n_volumes, p, parse_volume_at));
}

/* A service's mounts: each names a declared volume and an absolute path, no path twice. */
static void parse_mounts(struct vctx *v, json_t *j, const struct policy *p,
                         struct policy_service *svc)
{
        static const char *const keys[] = {"volume", "path", NULL};
        char esc[ESC_SIZE];
        size_t n;

        if (!want_list(v, j, 0, POLICY_VOLUMES_MAX, "volume mounts")) {
                return;
        }
        n = json_array_size(j);
        svc->mounts = vcalloc(v, n, sizeof(*svc->mounts));
        if (svc->mounts == NULL) {
                return;
        }
        svc->n_mounts = n;
        for (size_t i = 0; i < n; i++) {
                json_t *item = json_array_get(j, i), *f;
                const char *s;

                push_index(v, j, i);
                if (!want_object(v, item)) {
                        pop(v);
                        continue;
                }
                check_keys(v, item, keys);
                if ((f = get(v, item, "volume", true)) != NULL) {
                        push_key(v, item, "volume");
                        s = want_string(v, f);
                        if (s != NULL && policy_find_volume(p, s) == NULL) {
                                verr(v, false, "no volume named %s in 'volumes'", ESC(s, esc));
                        } else if (s != NULL) {
                                svc->mounts[i].volume = vdup(v, s);
                        }
                        pop(v);
                }
                if ((f = get(v, item, "path", true)) != NULL) {
                        push_key(v, item, "path");
                        s = want_string(v, f);
                        if (s != NULL && !path_ok(s, false)) {
                                verr(v, false,
                                     "invalid mount path %s: expected an absolute path without "
                                     "empty, '.' or '..' components (not /)",
                                     ESC(s, esc));
                        } else if (s != NULL) {
                                for (size_t k = 0; k < i; k++) {
                                        if (svc->mounts[k].path != NULL &&
                                            strcmp(svc->mounts[k].path, s) == 0) {
                                                verr(v, false, "path %s is mounted twice",
                                                     ESC(s, esc));
                                        }
                                }
                                svc->mounts[i].path = vdup(v, s);
                        }
                        pop(v);
                }
                pop(v);
        }
}

/* ---- services -------------------------------------------------------------------------- */

static void parse_env(struct vctx *v, json_t *j, struct policy_service *svc)
{
        const char *key;
        json_t *val;
        size_t i = 0;
        char esc[ESC_SIZE];

        if (!want_object(v, j)) {
                return;
        }
        if (json_object_size(j) > POLICY_ENV_MAX) {
                verr(v, false, "expected at most %d environment variables", POLICY_ENV_MAX);
                return;
        }
        svc->env = vcalloc(v, json_object_size(j), sizeof(*svc->env));
        if (svc->env == NULL) {
                return;
        }
        svc->n_env = json_object_size(j);
        json_object_foreach(j, key, val)
        {
                const char *s;
                push_key(v, j, key);
                if (!env_name_ok(key)) {
                        verr(v, true,
                             "invalid environment variable name %s (expected "
                             "[A-Za-z_][A-Za-z0-9_]*)",
                             ESC(key, esc));
                } else if ((s = want_string(v, val)) != NULL) {
                        check_placeholders(v, s);
                        svc->env[i].name = vdup(v, key);
                        svc->env[i].value = vdup(v, s);
                }
                pop(v);
                i++;
        }
}

static bool mode_char(uint8_t c)
{
        return c >= '0' && c <= '7';
}

static void parse_file(struct vctx *v, json_t *obj, struct policy_service *svc, size_t idx)
{
        static const char *const keys[] = {"path", "mode", "content", NULL};
        struct policy_file *f = &svc->files[idx];
        json_t *path = get(v, obj, "path", true);
        json_t *mode = get(v, obj, "mode", false);
        json_t *content = get(v, obj, "content", true);
        const char *s;
        char esc[ESC_SIZE];

        check_keys(v, obj, keys);
        f->mode = POLICY_FILE_MODE_DEFAULT;
        if (path != NULL) {
                push_key(v, obj, "path");
                s = want_string(v, path);
                if (s != NULL && !path_ok(s, false)) {
                        verr(v, false,
                             "invalid path %s: expected an absolute path without empty, '.' or "
                             "'..' components",
                             ESC(s, esc));
                } else if (s != NULL) {
                        for (size_t k = 0; k < idx; k++) {
                                if (svc->files[k].path != NULL &&
                                    strcmp(svc->files[k].path, s) == 0) {
                                        verr(v, false, "duplicate file path %s", ESC(s, esc));
                                }
                        }
                        f->path = vdup(v, s);
                }
                pop(v);
        }
        if (mode != NULL) {
                push_key(v, obj, "mode");
                if (json_is_integer(mode)) {
                        verr(v, false, "expected the mode as a quoted string such as \"0400\"");
                } else if ((s = want_string(v, mode)) != NULL) {
                        size_t n = strlen(s);
                        uint32_t m = 0;
                        if (n < 3 || n > 4 || !all_bytes(s, mode_char)) {
                                verr(v, false, "invalid mode %s: expected 3 or 4 octal digits",
                                     ESC(s, esc));
                        } else {
                                for (size_t k = 0; k < n; k++) {
                                        m = m * 8 + (uint32_t)(s[k] - '0');
                                }
                                if (m > 0777) {
                                        verr(v, false,
                                             "invalid mode %s: setuid, setgid and sticky bits "
                                             "are not allowed",
                                             ESC(s, esc));
                                } else {
                                        f->mode = m;
                                }
                        }
                }
                pop(v);
        }
        if (content != NULL) {
                push_key(v, obj, "content");
                s = want_string(v, content);
                if (s != NULL && strlen(s) > POLICY_FILE_CONTENT_MAX) {
                        verr(v, false, "file content is larger than %u bytes",
                             POLICY_FILE_CONTENT_MAX);
                } else if (s != NULL) {
                        check_placeholders(v, s);
                        f->content = vdup(v, s);
                }
                pop(v);
        }
}

static void parse_file_at(struct vctx *v, json_t *item, void *ctx, size_t i)
{
        parse_file(v, item, ctx, i);
}

static void parse_files(struct vctx *v, json_t *j, struct policy_service *svc)
{
        (void)each_object(v, j, 0, POLICY_FILES_MAX, "files", sizeof(*svc->files),
                          (void **)&svc->files, &svc->n_files, svc, parse_file_at);
}

/* ---- attestation rules ----------------------------------------------------------------- */

/* Exactly n hex digits (either case). */
static bool hexn(const char *s, size_t n)
{
        return strlen(s) == n && all_bytes(s, is_hex);
}

static bool item_hex(struct vctx *v, const char *s)
{
        char esc[ESC_SIZE];

        if (!hexn(s, v->hex_len)) {
                verr(v, false, "expected %zu hexadecimal digits, got %s", v->hex_len, ESC(s, esc));
                return false;
        }
        return true;
}

/* An optional (or required) list of 1..POLICY_MEASUREMENTS_MAX distinct hex values of
 * hex_len digits under key, stored in lower case. */
static void hex_values(struct vctx *v, json_t *obj, const char *key, size_t hex_len, bool required,
                       struct policy_values *ret)
{
        json_t *j = get(v, obj, key, required);

        if (j == NULL) {
                return;
        }
        push_key(v, obj, key);
        v->hex_len = hex_len;
        string_list(v, j, 1, POLICY_MEASUREMENTS_MAX, "values", item_hex, true, true, &ret->items,
                    &ret->n);
        pop(v);
}

/* An integer in [min, max] under key (the path points at obj). False when absent or
 * invalid (reported). */
static bool get_int(struct vctx *v, json_t *obj, const char *key, json_int_t min, json_int_t max,
                    json_int_t *ret)
{
        json_t *j = json_object_get(obj, key);
        bool ok = false;

        if (j == NULL) {
                return false;
        }
        push_key(v, obj, key);
        if (!json_is_integer(j)) {
                verr(v, false, "expected an integer from %lld to %lld, got %s", (long long)min,
                     (long long)max, type_name(j));
        } else if (json_integer_value(j) < min || json_integer_value(j) > max) {
                verr(v, false, "expected an integer from %lld to %lld, got %lld", (long long)min,
                     (long long)max, (long long)json_integer_value(j));
        } else {
                *ret = json_integer_value(j);
                ok = true;
        }
        pop(v);
        return ok;
}

static bool has(json_t *obj, const char *key)
{
        return json_object_get(obj, key) != NULL;
}

static bool advisory_char(uint8_t c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

/* A TCB status (status) or an advisory id (!status); the path points at the string. */
static bool accept_name_ok(struct vctx *v, const char *s, bool status)
{
        char esc[ESC_SIZE];

        if (!status) {
                if (strlen(s) == 0 || strlen(s) > POLICY_ADVISORY_ID_MAX ||
                    !all_bytes(s, advisory_char)) {
                        verr(v, false,
                             "invalid advisory id %s (expected an id such as INTEL-SA-00615: "
                             "1 to %d of A-Z a-z 0-9 . _ -)",
                             ESC(s, esc), POLICY_ADVISORY_ID_MAX);
                        return false;
                }
                return true;
        }
        for (size_t i = 0; tcb_statuses[i] != NULL; i++) {
                if (strcmp(s, tcb_statuses[i]) == 0) {
                        return true;
                }
        }
        if (strcmp(s, "Revoked") == 0 || strcmp(s, "NoMatchingLevel") == 0) {
                verr(v, false, "TCB status %s can never be accepted", ESC(s, esc));
        } else {
                verr(v, false,
                     "unknown TCB status %s (expected UpToDate, SWHardeningNeeded, "
                     "ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate or "
                     "OutOfDateConfigurationNeeded)",
                     ESC(s, esc));
        }
        return false;
}

/* One item of tcb_status or advisories: a name, or {status|id: name, until: RFC 3339}. */
static void parse_accept(struct vctx *v, json_t *item, bool status, struct policy_accept *a)
{
        static const char *const status_keys[] = {"status", "until", NULL};
        static const char *const id_keys[] = {"id", "until", NULL};
        const char *name_key = status ? "status" : "id";
        json_t *name = item, *until = NULL;
        const char *s;
        char esc[ESC_SIZE];

        if (json_is_object(item)) {
                check_keys(v, item, status ? status_keys : id_keys);
                name = get(v, item, name_key, true);
                until = get(v, item, "until", true);
                if (name != NULL) {
                        push_key(v, item, name_key);
                }
        } else if (!json_is_string(item)) {
                verr(v, false, "expected %s, or a mapping {%s: ..., until: DATE}, got %s",
                     status ? "a TCB status" : "an advisory id", name_key, type_name(item));
                return;
        }
        if (name != NULL) {
                s = want_string(v, name);
                if (s != NULL && accept_name_ok(v, s, status)) {
                        a->name = vdup(v, s);
                        if (a->name != NULL && !status) {
                                /* Intel's ids are upper case; compare without case. */
                                for (char *c = a->name; *c != '\0'; c++) {
                                        if (*c >= 'a' && *c <= 'z') {
                                                *c = (char)(*c - 'a' + 'A');
                                        }
                                }
                        }
                }
                if (json_is_object(item)) {
                        pop(v);
                }
        }
        if (until != NULL) {
                push_key(v, item, "until");
                s = want_string(v, until);
                if (s != NULL && !cf_ok(cf_parse_rfc3339(s, &a->until))) {
                        verr(v, false,
                             "invalid date %s (expected RFC 3339, such as "
                             "\"2026-06-30T00:00:00Z\")",
                             ESC(s, esc));
                } else if (s != NULL) {
                        a->has_until = true;
                }
                pop(v);
        }
}

/* tcb_status (status) or advisories (!status) of an sgx or tdx rule. */
static void accept_list(struct vctx *v, json_t *obj, bool status, struct policy_accept **ret,
                        size_t *ret_n)
{
        const char *key = status ? "tcb_status" : "advisories";
        json_t *j = get(v, obj, key, false);
        struct policy_accept *items;
        size_t n;
        char esc[ESC_SIZE];

        if (j == NULL) {
                if (status) {
                        /* The default: only UpToDate platforms. */
                        *ret = vcalloc(v, 1, sizeof(**ret));
                        if (*ret != NULL) {
                                (*ret)[0].name = vdup(v, "UpToDate");
                                *ret_n = 1;
                        }
                }
                return;
        }
        push_key(v, obj, key);
        if (want_list(v, j, status ? 1 : 0,
                      status ? POLICY_TCB_STATUSES_MAX : POLICY_ADVISORIES_MAX,
                      status ? "TCB statuses" : "advisories")) {
                n = json_array_size(j);
                items = vcalloc(v, n, sizeof(*items));
                if (items != NULL) {
                        *ret = items;
                        *ret_n = n;
                        for (size_t i = 0; i < n; i++) {
                                push_index(v, j, i);
                                parse_accept(v, json_array_get(j, i), status, &items[i]);
                                for (size_t k = 0; items[i].name != NULL && k < i; k++) {
                                        if (items[k].name != NULL &&
                                            strcmp(items[k].name, items[i].name) == 0) {
                                                verr(v, false, "duplicate entry %s",
                                                     ESC(items[i].name, esc));
                                                break;
                                        }
                                }
                                pop(v);
                        }
                }
        }
        pop(v);
}

static void parse_rule_sim(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        static const char *const keys[] = {"platform", "measurement", NULL};
        json_t *m;

        check_keys(v, obj, keys);
        m = get(v, obj, "measurement", true);
        if (m != NULL) {
                push_key(v, obj, "measurement");
                string_list(v, m, 1, POLICY_MEASUREMENTS_MAX, "measurements", item_measurement,
                            true, true, &r->measurements, &r->n_measurements);
                pop(v);
        }
}

static void parse_rule_sgx(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        static const char *const keys[] = {"platform",   "mrenclave",  "mrsigner",   "isvprodid",
                                           "min_isvsvn", "tcb_status", "advisories", NULL};
        bool by_enclave = has(obj, "mrenclave");
        bool by_signer = has(obj, "mrsigner") || has(obj, "isvprodid") || has(obj, "min_isvsvn");
        json_t *j;
        json_int_t n;
        const char *s;
        char esc[ESC_SIZE];

        check_keys(v, obj, keys);
        if (by_enclave && by_signer) {
                verr(v, false,
                     "an sgx rule names either mrenclave, or mrsigner with isvprodid (and "
                     "min_isvsvn), not both");
        } else if (!by_enclave && !by_signer) {
                verr(v, false, "an sgx rule needs mrenclave, or mrsigner and isvprodid");
        } else if (by_signer) {
                (void)get(v, obj, "mrsigner", true);
                (void)get(v, obj, "isvprodid", true);
        }
        hex_values(v, obj, "mrenclave", 64, false, &r->mrenclave);
        if ((j = json_object_get(obj, "mrsigner")) != NULL) {
                push_key(v, obj, "mrsigner");
                s = want_string(v, j);
                if (s != NULL && !hexn(s, 64)) {
                        verr(v, false, "expected an MRSIGNER of 64 hexadecimal digits, got %s",
                             ESC(s, esc));
                } else if (s != NULL) {
                        memcpy(r->mrsigner, s, 65);
                        lower(r->mrsigner);
                        r->has_mrsigner = true;
                }
                pop(v);
        }
        if (get_int(v, obj, "isvprodid", 0, UINT16_MAX, &n)) {
                r->isvprodid = (uint16_t)n;
        }
        if (get_int(v, obj, "min_isvsvn", 0, UINT16_MAX, &n)) {
                r->min_isvsvn = (uint16_t)n;
        }
        accept_list(v, obj, true, &r->tcb_status, &r->n_tcb_status);
        accept_list(v, obj, false, &r->advisories, &r->n_advisories);
}

static const char *const tdx_rtmr_keys[POLICY_TDX_RTMRS] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

static void parse_rule_tdx(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        static const char *const keys[] = {"platform",   "mrtd",       "rtmr0",      "rtmr1",
                                           "rtmr2",      "rtmr3",      "mrconfigid", "mrowner",
                                           "tcb_status", "advisories", NULL};
        bool any = has(obj, "mrtd") || has(obj, "mrconfigid") || has(obj, "mrowner");

        check_keys(v, obj, keys);
        hex_values(v, obj, "mrtd", 96, false, &r->mrtd);
        for (size_t i = 0; i < POLICY_TDX_RTMRS; i++) {
                any = any || has(obj, tdx_rtmr_keys[i]);
                hex_values(v, obj, tdx_rtmr_keys[i], 96, false, &r->rtmr[i]);
        }
        hex_values(v, obj, "mrconfigid", 96, false, &r->mrconfigid);
        hex_values(v, obj, "mrowner", 96, false, &r->mrowner);
        if (!any) {
                /* A rule without any measurement would admit every TD on the platform. */
                verr(v, false,
                     "a tdx rule needs at least one of mrtd, rtmr0, rtmr1, rtmr2, rtmr3, "
                     "mrconfigid, mrowner");
        }
        accept_list(v, obj, true, &r->tcb_status, &r->n_tcb_status);
        accept_list(v, obj, false, &r->advisories, &r->n_advisories);
}

static void parse_min_tcb(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        static const char *const keys[] = {"bootloader", "tee", "snp", "microcode", "fmc", NULL};
        json_t *j = json_object_get(obj, "min_tcb");
        json_int_t n;

        if (j == NULL) {
                return;
        }
        push_key(v, obj, "min_tcb");
        if (want_object(v, j)) {
                check_keys(v, j, keys);
                if (json_object_size(j) == 0) {
                        verr(v, false,
                             "min_tcb needs at least one of bootloader, tee, snp, microcode, fmc");
                }
                for (size_t c = 0; c < POLICY_SNP_TCB_N; c++) {
                        if (get_int(v, j, snp_tcb_names[c], 0, UINT8_MAX, &n)) {
                                r->has_min_tcb[c] = true;
                                r->min_tcb[c] = (uint8_t)n;
                        }
                }
        }
        pop(v);
}

static void parse_snp_policy(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        static const char *const keys[] = {"debug", "migration_agent", "smt", "single_socket",
                                           NULL};
        json_t *j = json_object_get(obj, "policy");

        if (j == NULL) {
                return;
        }
        push_key(v, obj, "policy");
        if (want_object(v, j)) {
                check_keys(v, j, keys);
                if (json_object_size(j) == 0) {
                        verr(v, false,
                             "policy needs at least one of debug, migration_agent, smt, "
                             "single_socket");
                }
                for (size_t b = 0; b < POLICY_SNP_BIT_N; b++) {
                        json_t *bit = json_object_get(j, snp_bit_names[b]);
                        if (bit == NULL) {
                                continue;
                        }
                        push_key(v, j, snp_bit_names[b]);
                        if (!json_is_boolean(bit)) {
                                verr(v, false,
                                     "expected true (bit required) or false (bit forbidden), "
                                     "got %s",
                                     type_name(bit));
                        } else {
                                r->snp_policy[b] =
                                    json_is_true(bit) ? POLICY_BIT_REQUIRED : POLICY_BIT_FORBIDDEN;
                        }
                        pop(v);
                }
        }
        pop(v);
}

static void parse_vmpl(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        json_t *j = json_object_get(obj, "vmpl");
        json_int_t n;

        if (j == NULL) {
                return;
        }
        push_key(v, obj, "vmpl");
        if (want_list(v, j, 1, POLICY_VMPL_MAX + 1, "VMPLs")) {
                for (size_t i = 0; i < json_array_size(j); i++) {
                        json_t *item = json_array_get(j, i);
                        push_index(v, j, i);
                        if (!json_is_integer(item)) {
                                verr(v, false, "expected a VMPL from 0 to %d, got %s",
                                     POLICY_VMPL_MAX, type_name(item));
                        } else if ((n = json_integer_value(item)) < 0 || n > POLICY_VMPL_MAX) {
                                verr(v, false, "expected a VMPL from 0 to %d, got %lld",
                                     POLICY_VMPL_MAX, (long long)n);
                        } else if (r->vmpl_mask & (1u << n)) {
                                verr(v, false, "duplicate entry %lld", (long long)n);
                        } else {
                                r->vmpl_mask = (uint8_t)(r->vmpl_mask | (1u << n));
                        }
                        pop(v);
                }
        }
        pop(v);
}

static void parse_rule_snp(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        static const char *const keys[] = {"platform", "measurement", "host_data", "id_key_digest",
                                           "min_tcb", "policy", "vmpl",
                                           /* refused below with a precise message */
                                           "tcb_status", "advisories", NULL};
        struct policy_values m = {0};

        check_keys(v, obj, keys);
        hex_values(v, obj, "measurement", 96, true, &m);
        r->measurements = m.items;
        r->n_measurements = m.n;
        hex_values(v, obj, "host_data", 64, false, &r->host_data);
        hex_values(v, obj, "id_key_digest", 96, false, &r->id_key_digest);
        parse_min_tcb(v, obj, r);
        parse_snp_policy(v, obj, r);
        parse_vmpl(v, obj, r);
        if (has(obj, "tcb_status")) {
                push_key(v, obj, "tcb_status");
                verr(v, true,
                     "tcb_status is not used for snp rules: the VCEK binds the reported TCB; "
                     "bound it with min_tcb");
                pop(v);
        }
        if (has(obj, "advisories")) {
                push_key(v, obj, "advisories");
                verr(v, true,
                     "advisories are not used for snp rules (AMD evidence has none): "
                     "bound the TCB with min_tcb");
                pop(v);
        }
}

static void parse_rule(struct vctx *v, json_t *obj, struct policy_rule *r)
{
        json_t *j = get(v, obj, "platform", true);
        const char *s;
        char esc[ESC_SIZE];

        if (j == NULL) {
                return;
        }
        push_key(v, obj, "platform");
        s = want_string(v, j);
        pop(v);
        if (s == NULL) {
                return;
        }
        /* One case per platform, each with its own keys. */
        if (strcmp(s, "sim") == 0) {
                r->platform = ATTEST_SIM;
                parse_rule_sim(v, obj, r);
        } else if (strcmp(s, "sgx") == 0) {
                r->platform = ATTEST_SGX;
                parse_rule_sgx(v, obj, r);
        } else if (strcmp(s, "tdx") == 0) {
                r->platform = ATTEST_TDX;
                parse_rule_tdx(v, obj, r);
        } else if (strcmp(s, "snp") == 0) {
                r->platform = ATTEST_SNP;
                parse_rule_snp(v, obj, r);
        } else {
                push_key(v, obj, "platform");
                verr(v, false, "unknown platform %s (expected sim, sgx, tdx or snp)", ESC(s, esc));
                pop(v);
        }
}

/* Cross-field rule checks that need the service's tolerate list. */
static void check_rules_tolerate(struct vctx *v, json_t *svc_obj, const struct policy_service *svc)
{
        json_t *att = json_object_get(svc_obj, "attestation");

        if (!json_is_array(att) || svc->rules == NULL) {
                return;
        }
        for (size_t i = 0; i < svc->n_rules && i < json_array_size(att); i++) {
                json_t *rule = json_array_get(att, i);
                json_t *pol = json_object_get(rule, "policy");
                if (svc->rules[i].platform != ATTEST_SNP ||
                    svc->rules[i].snp_policy[POLICY_SNP_BIT_DEBUG] != POLICY_BIT_REQUIRED ||
                    svc->tolerate_debug || !json_is_object(pol)) {
                        continue;
                }
                push_key(v, svc_obj, "attestation");
                push_index(v, att, i);
                push_key(v, rule, "policy");
                push_key(v, pol, "debug");
                verr(v, false, "requiring the debug bit needs tolerate: [debug] in the service");
                pop(v);
                pop(v);
                pop(v);
                pop(v);
        }
}

static void parse_rules(struct vctx *v, json_t *j, struct policy_service *svc)
{
        size_t n;

        if (!want_list(v, j, 1, POLICY_RULES_MAX, "attestation rules")) {
                return;
        }
        n = json_array_size(j);
        svc->rules = vcalloc(v, n, sizeof(*svc->rules));
        if (svc->rules == NULL) {
                return;
        }
        svc->n_rules = n;
        for (size_t i = 0; i < n; i++) {
                json_t *item = json_array_get(j, i);
                push_index(v, j, i);
                if (want_object(v, item)) {
                        parse_rule(v, item, &svc->rules[i]);
                }
                pop(v);
        }
}

static void parse_tolerate(struct vctx *v, json_t *j, struct policy_service *svc)
{
        char **vals = NULL;
        size_t n = 0;

        string_list(v, j, 0, 3, "tolerate values", item_tolerate, true, false, &vals, &n);
        for (size_t i = 0; i < n; i++) {
                if (vals[i] == NULL) {
                        continue;
                }
                svc->tolerate_simulation |= strcmp(vals[i], "simulation") == 0;
                svc->tolerate_debug |= strcmp(vals[i], "debug") == 0;
                svc->tolerate_outdated_tcb |= strcmp(vals[i], "outdated_tcb") == 0;
                free(vals[i]);
        }
        free(vals);
}

/* ---- workload certificates -------------------------------------------------------------- */

/* A path of a service's certificate: the rules of files' paths, and no path used twice among
 * the service's files and its certificate's paths. */
static void cert_path(struct vctx *v, json_t *obj, const char *key, bool required,
                      const struct policy_service *svc, char **ret)
{
        const struct policy_certificate *c = svc->certificate;
        json_t *j = get(v, obj, key, required);
        const char *s;
        char esc[ESC_SIZE];

        if (j == NULL) {
                return;
        }
        push_key(v, obj, key);
        s = want_string(v, j);
        if (s != NULL && !path_ok(s, false)) {
                verr(v, false,
                     "invalid path %s: expected an absolute path without empty, '.' or '..' "
                     "components",
                     ESC(s, esc));
                s = NULL;
        }
        for (size_t k = 0; s != NULL && k < svc->n_files; k++) {
                if (svc->files[k].path != NULL && strcmp(svc->files[k].path, s) == 0) {
                        verr(v, false, "path %s is also the path of files[%zu]", ESC(s, esc), k);
                        s = NULL;
                }
        }
        if (s != NULL && ((c->key_path != NULL && strcmp(c->key_path, s) == 0) ||
                          (c->cert_path != NULL && strcmp(c->cert_path, s) == 0))) {
                verr(v, false, "path %s is used twice in certificate", ESC(s, esc));
                s = NULL;
        }
        if (s != NULL) {
                *ret = vdup(v, s);
        }
        pop(v);
}

/* The issuer of a workload certificate: an x509-ca secret of this policy that outlives it. */
static void cert_issuer(struct vctx *v, json_t *obj, const struct policy *p,
                        struct policy_certificate *c)
{
        const struct policy_secret *ca = policy_find_secret(p, c->issuer);
        const char *kind;
        char esc[ESC_SIZE];

        push_key(v, obj, "issuer");
        if (ca == NULL) {
                verr(v, false, "'issuer' refers to undeclared secret %s", ESC(c->issuer, esc));
        } else if (ca->kind != POLICY_SECRET_X509_CA && ca->kind != 0) {
                kind = policy_secret_kind_name(ca->kind);
                verr(v, false, "'issuer' must name an x509-ca secret of this policy; %s is %s%s",
                     ESC(c->issuer, esc), kind != NULL ? "of kind " : "imported",
                     kind != NULL ? kind : "");
        }
        pop(v);
        if (ca != NULL && ca->kind == POLICY_SECRET_X509_CA &&
            c->validity_days > ca->validity_days) {
                push_key(v, obj, "validity_days");
                verr(v, false,
                     "impossible validity: %u days is longer than the %u days of its issuer %s, "
                     "which the certificate would outlive",
                     c->validity_days, ca->validity_days, ESC(c->issuer, esc));
                pop(v);
        }
}

/* certificate: {issuer, common_name, dns, ip, usage, validity_days, algorithm, key_path,
 * cert_path, ca_path, chain}. The x509 secret helpers parse the shared keys into a scratch
 * secret, so both read alike; only the defaults differ. */
static void parse_certificate(struct vctx *v, json_t *obj, const struct policy *p,
                              struct policy_service *svc)
{
        static const char *const keys[] = {"issuer",    "common_name",   "dns",       "ip",
                                           "usage",     "validity_days", "algorithm", "key_path",
                                           "cert_path", "ca_path",       "chain",     NULL};
        struct policy_secret tmp = {.kind = POLICY_SECRET_X509};
        struct policy_certificate *c;
        json_t *j;

        if (!want_object(v, obj) || (c = vcalloc(v, 1, sizeof(*c))) == NULL) {
                return;
        }
        svc->certificate = c;
        check_keys(v, obj, keys);
        if (get(v, obj, "issuer", true) != NULL) {
                pki_ref(v, obj, "issuer", &c->issuer);
        }
        pki_string(v, obj, "common_name", POLICY_COMMON_NAME_MAX, &c->common_name);
        if (json_object_get(obj, "common_name") == NULL && svc->name != NULL) {
                c->common_name = vdup(v, svc->name);
        }
        if ((j = json_object_get(obj, "dns")) != NULL) {
                push_key(v, obj, "dns");
                string_list(v, j, 0, POLICY_SAN_MAX, "DNS names", item_dns, true, false, &c->dns,
                            &c->n_dns);
                pop(v);
        }
        if ((j = json_object_get(obj, "ip")) != NULL) {
                push_key(v, obj, "ip");
                string_list(v, j, 0, POLICY_SAN_MAX, "IP addresses", item_ip, true, false, &c->ip,
                            &c->n_ip);
                pop(v);
        }
        parse_usage(v, obj, &tmp);
        c->usage = json_object_get(obj, "usage") != NULL ? tmp.usage
                                                         : POLICY_USAGE_SERVER | POLICY_USAGE_CLIENT;
        parse_validity(v, obj, &tmp);
        c->validity_days = json_object_get(obj, "validity_days") != NULL
                               ? tmp.validity_days
                               : POLICY_WORKLOAD_VALIDITY_DEFAULT;
        parse_algorithm(v, obj, &tmp);
        c->algorithm = tmp.algorithm;
        c->chain = true;
        if ((j = json_object_get(obj, "chain")) != NULL) {
                push_key(v, obj, "chain");
                if (!json_is_boolean(j)) {
                        verr(v, false, "chain must be true or false, got %s", type_name(j));
                } else {
                        c->chain = json_is_true(j);
                }
                pop(v);
        }
        cert_path(v, obj, "key_path", true, svc, &c->key_path);
        cert_path(v, obj, "cert_path", true, svc, &c->cert_path);
        cert_path(v, obj, "ca_path", false, svc, &c->ca_path);
        if (c->issuer != NULL) {
                cert_issuer(v, obj, p, c);
        }
}

static void parse_service(struct vctx *v, json_t *obj, struct policy *p, size_t idx)
{
        static const char *const keys[] = {
            "name",  "command", "environment", "passthrough_env", "working_dir",
            "files", "volumes", "attestation", "tolerate",        "certificate", NULL};
        struct policy_service *svc = &p->services[idx];
        json_t *j;
        const char *s;
        char esc[ESC_SIZE];

        check_keys(v, obj, keys);
        svc->name = unique_name(v, obj, "service", p->services, sizeof(p->services[0]),
                                offsetof(struct policy_service, name), idx);
        if ((j = get(v, obj, "command", true)) != NULL) {
                push_key(v, obj, "command");
                string_list(v, j, 1, POLICY_COMMAND_MAX, "strings", item_argument, false, false,
                            &svc->command, &svc->n_command);
                if (svc->n_command > 0 && svc->command[0] != NULL && svc->command[0][0] == '\0') {
                        push_index(v, j, 0);
                        verr(v, false, "the program (command[0]) must not be empty");
                        pop(v);
                }
                pop(v);
        }
        if ((j = get(v, obj, "environment", false)) != NULL) {
                push_key(v, obj, "environment");
                parse_env(v, j, svc);
                pop(v);
        }
        if ((j = get(v, obj, "passthrough_env", false)) != NULL) {
                push_key(v, obj, "passthrough_env");
                string_list(v, j, 0, POLICY_ENV_MAX, "environment variable names", item_env_name,
                            true, false, &svc->passthrough_env, &svc->n_passthrough_env);
                for (size_t i = 0; i < svc->n_passthrough_env; i++) {
                        const char *name = svc->passthrough_env[i];
                        json_t *env = json_object_get(obj, "environment");
                        if (name != NULL && json_is_object(env) &&
                            json_object_get(env, name) != NULL) {
                                push_index(v, j, i);
                                verr(v, false, "%s is set in environment and also passed through",
                                     ESC(name, esc));
                                pop(v);
                        }
                }
                pop(v);
        }
        if ((j = get(v, obj, "working_dir", false)) != NULL) {
                push_key(v, obj, "working_dir");
                s = want_string(v, j);
                if (s != NULL && !path_ok(s, true)) {
                        verr(v, false,
                             "invalid working_dir %s: expected an absolute path without empty, "
                             "'.' or '..' components",
                             ESC(s, esc));
                } else if (s != NULL) {
                        svc->working_dir = vdup(v, s);
                }
                pop(v);
        }
        if ((j = get(v, obj, "files", false)) != NULL) {
                push_key(v, obj, "files");
                parse_files(v, j, svc);
                pop(v);
        }
        if ((j = get(v, obj, "volumes", false)) != NULL) {
                push_key(v, obj, "volumes");
                parse_mounts(v, j, p, svc);
                pop(v);
        }
        if ((j = get(v, obj, "certificate", false)) != NULL) {
                /* After files: its paths must not be theirs. */
                push_key(v, obj, "certificate");
                parse_certificate(v, j, p, svc);
                pop(v);
        }
        if ((j = get(v, obj, "attestation", true)) != NULL) {
                push_key(v, obj, "attestation");
                parse_rules(v, j, svc);
                pop(v);
        }
        if ((j = get(v, obj, "tolerate", false)) != NULL) {
                push_key(v, obj, "tolerate");
                parse_tolerate(v, j, svc);
                pop(v);
        }
        check_rules_tolerate(v, obj, svc);
}

static void parse_service_at(struct vctx *v, json_t *item, void *ctx, size_t i)
{
        parse_service(v, item, ctx, i);
}

static void parse_services(struct vctx *v, json_t *root, struct policy *p)
{
        (void)(parse_list_of(v, root, "services", true, 1, POLICY_SERVICES_MAX,
                             sizeof(*p->services), (void **)&p->services, &p->n_services, p,
                             parse_service_at));
}

/* ---- boards ---------------------------------------------------------------------------- */

bool policy_name_valid(const char *name)
{
        return name != NULL && policy_name_ok(name);
}

bool policy_service_name_valid(const char *name)
{
        return name != NULL && service_name_ok(name);
}

/* "policy/service": a valid policy name, '/', a valid service name. */
static bool service_ref_ok(const char *s)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str(s));
        struct cf_slice pol, svc;
        char pname[POLICY_NAME_MAX + 1], sname[POLICY_SERVICE_NAME_MAX + 1];
        size_t last = 0, i = 0;
        bool found = false;
        uint8_t ch;

        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (ch == '/') {
                        last = i;
                        found = true;
                }
                i++;
        }
        c = cf_cursor_make(cf_slice_str(s));
        if (!found || !cf_ok(cf_cursor_take(&c, last, &pol)) || !cf_ok(cf_cursor_skip(&c, 1)) ||
            !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &svc))) {
                return false;
        }
        return cf_ok(cf_slice_to_cstr(pol, pname, sizeof(pname))) &&
               cf_ok(cf_slice_to_cstr(svc, sname, sizeof(sname))) && policy_name_ok(pname) &&
               service_name_ok(sname);
}

/* A person's key (PEM) and/or key id; the path points at the member. */
static void parse_member_key(struct vctx *v, json_t *obj, struct policy_board *b, size_t idx)
{
        struct policy_member *m = &b->members[idx];
        json_t *key = json_object_get(obj, "key"), *kid = json_object_get(obj, "key_id");
        const char *s;
        char esc[ESC_SIZE];
        bool have = false;

        m->kind = POLICY_MEMBER_PERSON;
        if (key != NULL) {
                push_key(v, obj, "key");
                s = want_string(v, key);
                if (s != NULL) {
                        cf_status st = policy_public_key_parse(cf_slice_str(s), &m->key);
                        if (st.code == CF_E_NOMEM) {
                                v->nomem = true;
                        } else if (st.code == CF_E_KEY) {
                                verr(v, false,
                                     "the key does not parse or is not an Ed25519, ECDSA P-256 "
                                     "or ECDSA P-384 public key");
                        } else if (!cf_ok(st)) {
                                verr(v, false,
                                     "expected one PEM public key (\"-----BEGIN PUBLIC "
                                     "KEY-----\", SubjectPublicKeyInfo) of at most %d characters",
                                     POLICY_BOARD_KEY_PEM_MAX);
                        } else if (!cf_ok(cf_pkey_key_id(m->key, m->key_id))) {
                                v->nomem = true;
                        } else {
                                m->key_pem = vdup(v, s);
                                have = true;
                        }
                }
                pop(v);
        }
        if (kid != NULL) {
                push_key(v, obj, "key_id");
                s = want_string(v, kid);
                if (s != NULL && item_key_id(v, s)) {
                        char low[HEX64 + 1];
                        memcpy(low, s, HEX64 + 1);
                        lower(low);
                        if (have && strcmp(low, m->key_id) != 0) {
                                verr(v, false, "key_id does not match the key (whose key id is %s)",
                                     m->key_id);
                        } else if (key == NULL) {
                                memcpy(m->key_id, low, HEX64 + 1);
                        }
                }
                pop(v);
        }
        for (size_t k = 0; m->key_id[0] != '\0' && k < idx; k++) {
                if (b->members[k].kind == POLICY_MEMBER_PERSON &&
                    strcmp(b->members[k].key_id, m->key_id) == 0) {
                        verr(v, false, "member %s has the same key as member %s",
                             m->name != NULL ? ESC(m->name, esc) : "?",
                             b->members[k].name != NULL ? b->members[k].name : "?");
                        break;
                }
        }
}

static void parse_member_service(struct vctx *v, json_t *obj, struct policy_board *b, size_t idx)
{
        struct policy_member *m = &b->members[idx];
        const char *s;
        char esc[ESC_SIZE];

        m->kind = POLICY_MEMBER_SERVICE;
        push_key(v, obj, "service");
        s = want_string(v, json_object_get(obj, "service"));
        if (s != NULL && !service_ref_ok(s)) {
                verr(v, false,
                     "invalid service %s: expected policy/service, such as shop/ci/checker (a "
                     "policy name, '/', a service name)",
                     ESC(s, esc));
        } else if (s != NULL) {
                for (size_t k = 0; k < idx; k++) {
                        if (b->members[k].service != NULL &&
                            strcmp(b->members[k].service, s) == 0) {
                                verr(v, false, "service %s is already member %s", ESC(s, esc),
                                     b->members[k].name != NULL ? b->members[k].name : "?");
                        }
                }
                m->service = vdup(v, s);
        }
        pop(v);
}

static void parse_member(struct vctx *v, json_t *obj, struct policy_board *b, size_t idx)
{
        static const char *const keys[] = {"name", "key", "key_id", "service", NULL};
        bool person = has(obj, "key") || has(obj, "key_id");

        check_keys(v, obj, keys);
        b->members[idx].name = unique_name(v, obj, "member", b->members, sizeof(b->members[0]),
                                           offsetof(struct policy_member, name), idx);
        if (person && has(obj, "service")) {
                verr(v, false,
                     "a member is a person (key, key_id) or an attested program (service), not "
                     "both");
        } else if (person) {
                parse_member_key(v, obj, b, idx);
        } else if (has(obj, "service")) {
                parse_member_service(v, obj, b, idx);
        } else {
                verr(v, false,
                     "a member needs key (or key_id) for a person, or service for an attested "
                     "program");
        }
}

static bool member_index(const struct policy_board *b, const char *name, size_t *ret)
{
        for (size_t i = 0; i < b->n_members; i++) {
                if (b->members[i].name != NULL && strcmp(b->members[i].name, name) == 0) {
                        *ret = i;
                        return true;
                }
        }
        return false;
}

static uint64_t parse_brule(struct vctx *v, json_t *j, const struct policy_board *b,
                            struct policy_board_rule *r, size_t depth);

/* The first member in mask (for messages). */
static const char *first_member(const struct policy_board *b, uint64_t mask)
{
        for (size_t i = 0; i < b->n_members; i++) {
                if ((mask >> i) & 1u) {
                        return b->members[i].name;
                }
        }
        return "?";
}

/* The items of all_of or of. disjoint: at_least N >= 2 would count a member shared by two
 * items twice, so sibling items must name disjoint sets of members. */
static uint64_t parse_brule_items(struct vctx *v, json_t *list, const struct policy_board *b,
                                  struct policy_board_rule *r, size_t depth, bool disjoint)
{
        uint64_t all = 0, bare = 0;
        size_t n;
        char esc[ESC_SIZE];

        if (!want_list(v, list, 1, POLICY_BOARD_RULE_ITEMS_MAX, "rules")) {
                return 0;
        }
        n = json_array_size(list);
        r->items = vcalloc(v, n, sizeof(*r->items));
        if (r->items == NULL) {
                return 0;
        }
        r->n_items = n;
        for (size_t i = 0; i < n; i++) {
                uint64_t m;
                push_index(v, list, i);
                m = parse_brule(v, json_array_get(list, i), b, &r->items[i], depth + 1);
                if (disjoint && (m & all) != 0) {
                        verr(v, false,
                             "member %s is counted by more than one item of this at_least rule "
                             "(items of at_least N >= 2 must name different members)",
                             ESC(first_member(b, m & all), esc));
                } else if (r->items[i].kind == POLICY_BOARD_RULE_MEMBER && (m & bare) != 0) {
                        verr(v, false, "duplicate entry %s", ESC(first_member(b, m), esc));
                }
                if (r->items[i].kind == POLICY_BOARD_RULE_MEMBER) {
                        bare |= m;
                }
                all |= m;
                pop(v);
        }
        return all;
}

static uint64_t parse_brule_at_least(struct vctx *v, json_t *obj, const struct policy_board *b,
                                     struct policy_board_rule *r, size_t depth)
{
        static const char *const keys[] = {"at_least", "of", NULL};
        json_t *at = get(v, obj, "at_least", true), *of = get(v, obj, "of", true);
        size_t n_of = json_is_array(of) ? json_array_size(of) : 0;
        uint64_t mask = 0;

        check_keys(v, obj, keys);
        r->kind = POLICY_BOARD_RULE_AT_LEAST;
        if (at != NULL) {
                push_key(v, obj, "at_least");
                if (!json_is_integer(at)) {
                        verr(v, false, "at_least must be an integer, got %s", type_name(at));
                } else if (n_of > 0 &&
                           (json_integer_value(at) < 1 || (size_t)json_integer_value(at) > n_of)) {
                        verr(v, false,
                             "at_least must be from 1 to %zu (the number of items in of), got %lld",
                             n_of, (long long)json_integer_value(at));
                } else if (n_of > 0) {
                        r->at_least = (size_t)json_integer_value(at);
                }
                pop(v);
        }
        if (of != NULL) {
                push_key(v, obj, "of");
                mask = parse_brule_items(v, of, b, r, depth, r->at_least >= 2);
                pop(v);
        }
        return mask;
}

/* RULE = NAME | {all_of: [RULE...]} | {at_least: N, of: [RULE...]}. Returns the set of
 * members the rule names (bit i: member i); the path points at the rule. */
static uint64_t parse_brule(struct vctx *v, json_t *j, const struct policy_board *b,
                            struct policy_board_rule *r, size_t depth)
{
        static const char *const all_keys[] = {"all_of", NULL};
        uint64_t mask = 0;
        const char *s;
        size_t m;
        char esc[ESC_SIZE];

        if (depth > POLICY_BOARD_DEPTH_MAX) {
                verr(v, false, "board rules nest deeper than %d levels", POLICY_BOARD_DEPTH_MAX);
                return 0;
        }
        if (json_is_string(j)) {
                s = want_string(v, j);
                if (s != NULL && !member_index(b, s, &m)) {
                        verr(v, false, "unknown member %s in rule", ESC(s, esc));
                } else if (s != NULL) {
                        r->kind = POLICY_BOARD_RULE_MEMBER;
                        r->member = m;
                        mask = (uint64_t)1 << m;
                }
                return mask;
        }
        if (json_is_object(j) && has(j, "all_of") && (has(j, "at_least") || has(j, "of"))) {
                verr(v, false, "a rule has either all_of, or at_least with of, not both");
        } else if (json_is_object(j) && has(j, "all_of")) {
                check_keys(v, j, all_keys);
                r->kind = POLICY_BOARD_RULE_ALL_OF;
                push_key(v, j, "all_of");
                mask = parse_brule_items(v, json_object_get(j, "all_of"), b, r, depth, false);
                pop(v);
        } else if (json_is_object(j) && (has(j, "at_least") || has(j, "of"))) {
                mask = parse_brule_at_least(v, j, b, r, depth);
        } else {
                verr(v, false,
                     "expected a member name, {all_of: [...]} or {at_least: N, of: [...]}, got %s",
                     type_name(j));
        }
        return mask;
}

static void parse_veto(struct vctx *v, json_t *j, struct policy_board *b)
{
        size_t n;
        char esc[ESC_SIZE];

        if (!want_list(v, j, 0, POLICY_BOARD_MEMBERS_MAX, "member names")) {
                return;
        }
        n = json_array_size(j);
        b->veto = vcalloc(v, n, sizeof(*b->veto));
        if (b->veto == NULL) {
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const char *s;
                size_t m;
                push_index(v, j, i);
                s = want_string(v, json_array_get(j, i));
                if (s != NULL && !member_index(b, s, &m)) {
                        verr(v, false, "veto names %s, which is not a member", ESC(s, esc));
                } else if (s != NULL) {
                        bool dup = false;
                        for (size_t k = 0; k < b->n_veto; k++) {
                                dup = dup || b->veto[k] == m;
                        }
                        if (dup) {
                                verr(v, false, "duplicate entry %s", ESC(s, esc));
                        } else {
                                b->veto[b->n_veto++] = m;
                        }
                }
                pop(v);
        }
}

static void parse_member_at(struct vctx *v, json_t *item, void *ctx, size_t i)
{
        parse_member(v, item, ctx, i);
}

static void parse_members(struct vctx *v, json_t *j, struct policy_board *b)
{
        (void)each_object(v, j, 1, POLICY_BOARD_MEMBERS_MAX, "members", sizeof(*b->members),
                          (void **)&b->members, &b->n_members, b, parse_member_at);
}

static void parse_board(struct vctx *v, json_t *root, struct policy *p)
{
        static const char *const keys[] = {"members", "rule", "veto", NULL};
        json_t *j = get(v, root, "board", false), *f;
        struct policy_board *b;

        if (j == NULL) {
                return;
        }
        push_key(v, root, "board");
        if (want_object(v, j) && (b = vcalloc(v, 1, sizeof(*b))) != NULL) {
                p->board = b;
                check_keys(v, j, keys);
                if ((f = get(v, j, "members", true)) != NULL) {
                        push_key(v, j, "members");
                        parse_members(v, f, b);
                        pop(v);
                }
                if ((f = get(v, j, "rule", true)) != NULL) {
                        push_key(v, j, "rule");
                        (void)parse_brule(v, f, b, &b->rule, 1);
                        pop(v);
                }
                if ((f = get(v, j, "veto", false)) != NULL) {
                        push_key(v, j, "veto");
                        parse_veto(v, f, b);
                        pop(v);
                }
        }
        pop(v);
}

/* namespace: {create: [KEYID...]} (docs/policy.md, "Namespaces"). */
static void parse_namespace(struct vctx *v, json_t *root, struct policy *p)
{
        static const char *const keys[] = {"create", NULL};
        json_t *j = get(v, root, "namespace", false), *l;

        if (j == NULL) {
                return;
        }
        push_key(v, root, "namespace");
        if (want_object(v, j) && (p->ns = vcalloc(v, 1, sizeof(*p->ns))) != NULL) {
                check_keys(v, j, keys);
                if ((l = get(v, j, "create", false)) != NULL) {
                        push_key(v, j, "create");
                        string_list(v, l, 0, POLICY_NAMESPACE_CREATE_MAX, "key ids", item_key_id,
                                    true, true, &p->ns->create_ids, &p->ns->n_create_ids);
                        pop(v);
                }
        }
        pop(v);
}

static void validate(struct vctx *v, json_t *root, struct policy *p)
{
        static const char *const keys[] = {"name",    "predecessor", "access",    "board",
                                           "services", "secrets",    "volumes",   "namespace",
                                           NULL};

        if (!json_is_object(root)) {
                verr(v, false, "expected a mapping at the top level, got %s", type_name(root));
                return;
        }
        check_keys(v, root, keys);
        parse_name(v, root, p);
        parse_predecessor(v, root, p);
        parse_access(v, root, p);
        parse_board(v, root, p);
        parse_namespace(v, root, p);
        /* Secrets first: placeholders in services are checked against their names. */
        parse_secrets(v, root, p);
        /* Volumes before services, whose mounts name them. */
        parse_volumes(v, root, p);
        parse_services(v, root, p);
}

/* ---- loading --------------------------------------------------------------------------- */

/* JSON when the first non-blank byte is '{', so JSON errors can be reported as paths. */
static bool looks_like_json(struct cf_slice text)
{
        struct cf_cursor c = cf_cursor_make(text);
        uint8_t ch;

        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
                        return ch == '{';
                }
        }
        return false;
}

/* Depth of nested containers (1 for a flat object), stopping early past the limit. */
static size_t json_depth(json_t *j, size_t limit)
{
        size_t max = 0, d;
        const char *key;
        json_t *val;
        size_t i;

        if (limit == 0) {
                return 1;
        }
        if (json_is_object(j)) {
                json_object_foreach(j, key, val)
                {
                        d = json_depth(val, limit - 1);
                        max = d > max ? d : max;
                }
                return max + 1;
        }
        if (json_is_array(j)) {
                json_array_foreach(j, i, val)
                {
                        d = json_depth(val, limit - 1);
                        max = d > max ? d : max;
                }
                return max + 1;
        }
        return 0;
}

static cf_status load_json(struct cf_slice text, json_t **ret, struct policy_errors *errs)
{
        json_error_t jerr;
        json_t *root = json_loadb((const char *)text.ptr, text.size, JSON_REJECT_DUPLICATES, &jerr);

        if (root == NULL) {
                char loc[64];
                if (json_error_code(&jerr) == json_error_out_of_memory) {
                        return cf_fail(CF_E_NOMEM);
                }
                snprintf(loc, sizeof(loc), "line %d, column %d", jerr.line, jerr.column);
                policy_errors_add(errs, loc, "JSON syntax error: %s", jerr.text);
                return cf_fail(CF_E_SYNTAX);
        }
        if (json_depth(root, POLICY_DEPTH_MAX + 1) > POLICY_DEPTH_MAX) {
                json_decref(root);
                policy_errors_add(errs, "$", "nesting deeper than %d levels", POLICY_DEPTH_MAX);
                return cf_fail(CF_E_LIMIT);
        }
        *ret = root;
        return CF_OK;
}

static void locs_cleanup(struct policy_locs *l)
{
        policy_locs_done(l);
}

cf_status policy_parse(struct cf_slice text, struct policy **ret, struct policy_errors *errs)
{
        CF_CLEANUP(json_decrefp) json_t *root = NULL;
        CF_CLEANUP(json_decrefp) json_t *names = NULL;
        CF_CLEANUP(locs_cleanup) struct policy_locs locs = {0};
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        CF_AUTOFREE struct policy_errors *scratch = NULL;
        cf_status load = CF_OK;
        bool json_doc;

        ENSURE(text.ptr != NULL || text.size == 0, CF_E_INVALID_ARG);
        if (errs == NULL) {
                scratch = calloc(1, sizeof(*scratch));
                ENSURE(scratch != NULL, CF_E_NOMEM);
                errs = scratch;
        }
        *errs = (struct policy_errors){0};
        if (text.size > POLICY_DOC_MAX) {
                policy_errors_add(errs, "$", "the document is larger than %u bytes",
                                  POLICY_DOC_MAX);
                return cf_fail(CF_E_LIMIT);
        }
        json_doc = looks_like_json(text);
        if (json_doc) {
                TRY(load_json(text, &root, errs));
        } else {
                load = policy_yaml_load(text, &root, &locs, errs);
                if (!cf_ok(load) && load.code != CF_E_SCHEMA) {
                        return load;
                }
        }

        names = json_object();
        p = calloc(1, sizeof(*p));
        ENSURE(names != NULL && p != NULL, CF_E_NOMEM);
        struct vctx v = {
            .errs = errs, .locs = json_doc ? NULL : &locs, .secret_names = names, .pol = p};
        validate(&v, root, p);
        ENSURE(!v.nomem, CF_E_NOMEM);
        if (!cf_ok(load) || errs->n > 0 || errs->truncated) {
                return cf_fail(CF_E_SCHEMA);
        }
        *ret = TAKE_PTR(p);
        return CF_OK;
}

/* ---- model helpers --------------------------------------------------------------------- */

static void free_strv(char **v, size_t n)
{
        for (size_t i = 0; v != NULL && i < n; i++) {
                free(v[i]);
        }
        free(v);
}

static void values_done(struct policy_values *v)
{
        free_strv(v->items, v->n);
}

static void accepts_done(struct policy_accept *a, size_t n)
{
        for (size_t i = 0; a != NULL && i < n; i++) {
                free(a[i].name);
        }
        free(a);
}

static void rule_done(struct policy_rule *r)
{
        free_strv(r->measurements, r->n_measurements);
        values_done(&r->mrenclave);
        values_done(&r->mrtd);
        for (size_t i = 0; i < POLICY_TDX_RTMRS; i++) {
                values_done(&r->rtmr[i]);
        }
        values_done(&r->mrconfigid);
        values_done(&r->mrowner);
        values_done(&r->host_data);
        values_done(&r->id_key_digest);
        accepts_done(r->tcb_status, r->n_tcb_status);
        accepts_done(r->advisories, r->n_advisories);
}

static void service_done(struct policy_service *s)
{
        free(s->name);
        free_strv(s->command, s->n_command);
        for (size_t i = 0; s->env != NULL && i < s->n_env; i++) {
                free(s->env[i].name);
                free(s->env[i].value);
        }
        free(s->env);
        free_strv(s->passthrough_env, s->n_passthrough_env);
        free(s->working_dir);
        for (size_t i = 0; s->files != NULL && i < s->n_files; i++) {
                free(s->files[i].path);
                free(s->files[i].content);
        }
        free(s->files);
        for (size_t i = 0; s->rules != NULL && i < s->n_rules; i++) {
                rule_done(&s->rules[i]);
        }
        free(s->rules);
        for (size_t i = 0; s->mounts != NULL && i < s->n_mounts; i++) {
                free(s->mounts[i].volume);
                free(s->mounts[i].path);
        }
        free(s->mounts);
        if (s->certificate != NULL) {
                struct policy_certificate *c = s->certificate;
                free(c->issuer);
                free(c->common_name);
                free_strv(c->dns, c->n_dns);
                free_strv(c->ip, c->n_ip);
                free(c->key_path);
                free(c->cert_path);
                free(c->ca_path);
                free(c);
        }
}

static void brule_done(struct policy_board_rule *r)
{
        for (size_t i = 0; r->items != NULL && i < r->n_items; i++) {
                brule_done(&r->items[i]);
        }
        free(r->items);
}

static void board_free(struct policy_board *b)
{
        if (b == NULL) {
                return;
        }
        for (size_t i = 0; b->members != NULL && i < b->n_members; i++) {
                free(b->members[i].name);
                cf_pkey_free(b->members[i].key);
                free(b->members[i].key_pem);
                free(b->members[i].service);
        }
        free(b->members);
        brule_done(&b->rule);
        free(b->veto);
        free(b);
}

struct policy *policy_free(struct policy *p)
{
        if (p == NULL) {
                return NULL;
        }
        free(p->name);
        free_strv(p->read_ids, p->n_read_ids);
        free_strv(p->update_ids, p->n_update_ids);
        for (size_t i = 0; p->services != NULL && i < p->n_services; i++) {
                service_done(&p->services[i]);
        }
        free(p->services);
        for (size_t i = 0; p->secrets != NULL && i < p->n_secrets; i++) {
                struct policy_secret *s = &p->secrets[i];
                free(s->name);
                free(s->charset);
                cf_wipe_free(s->value, s->value_size);
                free(s->of);
                free(s->issuer);
                free(s->common_name);
                free_strv(s->dns, s->n_dns);
                free_strv(s->ip, s->n_ip);
                free_strv(s->export_to, s->n_export_to);
                free(s->import_policy);
                free(s->import_secret);
        }
        free(p->secrets);
        for (size_t i = 0; p->volumes != NULL && i < p->n_volumes; i++) {
                free(p->volumes[i].name);
        }
        free(p->volumes);
        board_free(p->board);
        if (p->ns != NULL) {
                free_strv(p->ns->create_ids, p->ns->n_create_ids);
                free(p->ns);
        }
        free(p);
        return NULL;
}

cf_status policy_digest(struct cf_slice text, char out[static 65])
{
        return cf_sha256_hex(text, out);
}

const struct policy_service *policy_find_service(const struct policy *p, const char *name)
{
        for (size_t i = 0; p != NULL && name != NULL && i < p->n_services; i++) {
                if (strcmp(p->services[i].name, name) == 0) {
                        return &p->services[i];
                }
        }
        return NULL;
}

const struct policy_secret *policy_find_secret(const struct policy *p, const char *name)
{
        for (size_t i = 0; p != NULL && name != NULL && i < p->n_secrets; i++) {
                /* Names are never NULL in a parsed model, but they may be while validating. */
                if (p->secrets[i].name != NULL && strcmp(p->secrets[i].name, name) == 0) {
                        return &p->secrets[i];
                }
        }
        return NULL;
}

const struct policy_volume *policy_find_volume(const struct policy *p, const char *name)
{
        for (size_t i = 0; p != NULL && name != NULL && i < p->n_volumes; i++) {
                if (p->volumes[i].name != NULL && strcmp(p->volumes[i].name, name) == 0) {
                        return &p->volumes[i];
                }
        }
        return NULL;
}

static bool in_list(char *const *ids, size_t n, const char *key_id)
{
        for (size_t i = 0; i < n; i++) {
                if (strcmp(ids[i], key_id) == 0) {
                        return true;
                }
        }
        return false;
}

bool policy_key_may_update(const struct policy *p, const char *key_id)
{
        return p != NULL && key_id != NULL && in_list(p->update_ids, p->n_update_ids, key_id);
}

bool policy_key_may_read(const struct policy *p, const char *key_id)
{
        return p != NULL && key_id != NULL &&
               (in_list(p->read_ids, p->n_read_ids, key_id) || policy_key_may_update(p, key_id));
}

/* ---- JSON views ------------------------------------------------------------------------ */

/* Adds v under k; consumes v (also when it is NULL after a failed allocation). */
static cf_status jset(json_t *o, const char *k, json_t *v)
{
        ENSURE(v != NULL, CF_E_NOMEM);
        ENSURE(json_object_set_new(o, k, v) == 0, CF_E_NOMEM);
        return CF_OK;
}

static cf_status jappend(json_t *a, json_t *v)
{
        ENSURE(v != NULL, CF_E_NOMEM);
        ENSURE(json_array_append_new(a, v) == 0, CF_E_NOMEM);
        return CF_OK;
}

static cf_status strv_json(char *const *v, size_t n, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *a = json_array();

        ENSURE(a != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < n; i++) {
                TRY(jappend(a, json_string(v[i])));
        }
        *ret = TAKE_PTR(a);
        return CF_OK;
}

/* The SAN lists and extended key usages of a certificate (x509 secrets, service
 * certificates) into o: "dns", "ip" and "usage". */
static cf_status names_usage_json(json_t *o, char *const *dns, size_t n_dns, char *const *ip,
                                  size_t n_ip, unsigned usage)
{
        CF_CLEANUP(json_decrefp) json_t *u = json_array();
        json_t *tmp = NULL;

        ENSURE(u != NULL, CF_E_NOMEM);
        TRY(strv_json(dns, n_dns, &tmp));
        TRY(jset(o, "dns", tmp));
        TRY(strv_json(ip, n_ip, &tmp));
        TRY(jset(o, "ip", tmp));
        if (usage & POLICY_USAGE_SERVER) {
                TRY(jappend(u, json_string("server")));
        }
        if (usage & POLICY_USAGE_CLIENT) {
                TRY(jappend(u, json_string("client")));
        }
        return jset(o, "usage", TAKE_PTR(u));
}

/* Sets key to the list when the rule has it (n > 0). */
static cf_status values_json(json_t *o, const char *key, const struct policy_values *v)
{
        json_t *tmp = NULL;

        if (v->n == 0) {
                return CF_OK;
        }
        TRY(strv_json(v->items, v->n, &tmp));
        return jset(o, key, tmp);
}

/* tcb_status or advisories: plain names, or {status|id: name, until: date}. */
static cf_status accepts_json(json_t *o, const char *key, const char *name_key,
                              const struct policy_accept *a, size_t n)
{
        CF_CLEANUP(json_decrefp) json_t *l = json_array();
        char date[32];

        ENSURE(l != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < n; i++) {
                json_t *e;
                if (!a[i].has_until) {
                        TRY(jappend(l, json_string(a[i].name)));
                        continue;
                }
                e = json_object();
                TRY(jappend(l, e));
                cf_format_rfc3339(a[i].until, date, sizeof(date));
                TRY(jset(e, name_key, json_string(a[i].name)));
                TRY(jset(e, "until", json_string(date)));
        }
        return jset(o, key, TAKE_PTR(l));
}

static cf_status rule_json(const struct policy_rule *r, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();
        json_t *tmp = NULL;

        ENSURE(o != NULL, CF_E_NOMEM);
        ENSURE(policy_platform_name(r->platform) != NULL, CF_E_INTERNAL);
        TRY(jset(o, "platform", json_string(policy_platform_name(r->platform))));
        if (r->n_measurements > 0) {
                TRY(strv_json(r->measurements, r->n_measurements, &tmp));
                TRY(jset(o, "measurement", tmp));
        }
        TRY(values_json(o, "mrenclave", &r->mrenclave));
        if (r->has_mrsigner) {
                TRY(jset(o, "mrsigner", json_string(r->mrsigner)));
                TRY(jset(o, "isvprodid", json_integer(r->isvprodid)));
                TRY(jset(o, "min_isvsvn", json_integer(r->min_isvsvn)));
        }
        TRY(values_json(o, "mrtd", &r->mrtd));
        for (size_t i = 0; i < POLICY_TDX_RTMRS; i++) {
                TRY(values_json(o, tdx_rtmr_keys[i], &r->rtmr[i]));
        }
        TRY(values_json(o, "mrconfigid", &r->mrconfigid));
        TRY(values_json(o, "mrowner", &r->mrowner));
        TRY(values_json(o, "host_data", &r->host_data));
        TRY(values_json(o, "id_key_digest", &r->id_key_digest));
        for (size_t c = 0; c < POLICY_SNP_TCB_N; c++) {
                if (!r->has_min_tcb[c]) {
                        continue;
                }
                if (json_object_get(o, "min_tcb") == NULL) {
                        TRY(jset(o, "min_tcb", json_object()));
                }
                TRY(jset(json_object_get(o, "min_tcb"), snp_tcb_names[c],
                         json_integer(r->min_tcb[c])));
        }
        for (size_t b = 0; b < POLICY_SNP_BIT_N; b++) {
                if (r->snp_policy[b] == POLICY_BIT_ANY) {
                        continue;
                }
                if (json_object_get(o, "policy") == NULL) {
                        TRY(jset(o, "policy", json_object()));
                }
                TRY(jset(json_object_get(o, "policy"), snp_bit_names[b],
                         json_boolean(r->snp_policy[b] == POLICY_BIT_REQUIRED)));
        }
        if (r->vmpl_mask != 0) {
                CF_CLEANUP(json_decrefp) json_t *l = json_array();
                ENSURE(l != NULL, CF_E_NOMEM);
                for (int k = 0; k <= POLICY_VMPL_MAX; k++) {
                        if (r->vmpl_mask & (1u << k)) {
                                TRY(jappend(l, json_integer(k)));
                        }
                }
                TRY(jset(o, "vmpl", TAKE_PTR(l)));
        }
        if (r->platform == ATTEST_SGX || r->platform == ATTEST_TDX) {
                TRY(accepts_json(o, "tcb_status", "status", r->tcb_status, r->n_tcb_status));
                TRY(accepts_json(o, "advisories", "id", r->advisories, r->n_advisories));
        }
        *ret = TAKE_PTR(o);
        return CF_OK;
}

/* A service's certificate, in the document's shape (defaults written out). */
static cf_status certificate_json(const struct policy_certificate *c, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();

        ENSURE(o != NULL, CF_E_NOMEM);
        ENSURE(c->algorithm >= POLICY_ALG_ED25519 && (size_t)c->algorithm < KEY_ALGS_N,
               CF_E_INTERNAL);
        TRY(jset(o, "issuer", json_string(c->issuer)));
        TRY(jset(o, "common_name", json_string(c->common_name)));
        TRY(names_usage_json(o, c->dns, c->n_dns, c->ip, c->n_ip, c->usage));
        TRY(jset(o, "validity_days", json_integer(c->validity_days)));
        TRY(jset(o, "algorithm", json_string(key_algs[c->algorithm])));
        TRY(jset(o, "key_path", json_string(c->key_path)));
        TRY(jset(o, "cert_path", json_string(c->cert_path)));
        if (c->ca_path != NULL) {
                TRY(jset(o, "ca_path", json_string(c->ca_path)));
        }
        TRY(jset(o, "chain", json_boolean(c->chain)));
        *ret = TAKE_PTR(o);
        return CF_OK;
}

static cf_status service_json(const struct policy_service *s, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();
        CF_CLEANUP(json_decrefp) json_t *env = json_object();
        CF_CLEANUP(json_decrefp) json_t *files = json_array();
        CF_CLEANUP(json_decrefp) json_t *rules = json_array();
        CF_CLEANUP(json_decrefp) json_t *tol = json_array();
        json_t *tmp = NULL;
        char mode[8];

        ENSURE(o && env && files && rules && tol, CF_E_NOMEM);
        TRY(jset(o, "name", json_string(s->name)));
        TRY(strv_json(s->command, s->n_command, &tmp));
        TRY(jset(o, "command", tmp));
        for (size_t i = 0; i < s->n_env; i++) {
                TRY(jset(env, s->env[i].name, json_string(s->env[i].value)));
        }
        TRY(jset(o, "environment", TAKE_PTR(env)));
        TRY(strv_json(s->passthrough_env, s->n_passthrough_env, &tmp));
        TRY(jset(o, "passthrough_env", tmp));
        if (s->working_dir != NULL) {
                TRY(jset(o, "working_dir", json_string(s->working_dir)));
        }
        for (size_t i = 0; i < s->n_files; i++) {
                json_t *f = json_object();
                TRY(jappend(files, f));
                snprintf(mode, sizeof(mode), "%04o", (unsigned)s->files[i].mode);
                TRY(jset(f, "path", json_string(s->files[i].path)));
                TRY(jset(f, "mode", json_string(mode)));
                TRY(jset(f, "content", json_string(s->files[i].content)));
        }
        TRY(jset(o, "files", TAKE_PTR(files)));
        if (s->n_mounts > 0) {
                json_t *mounts = json_array();
                TRY(jset(o, "volumes", mounts));
                for (size_t i = 0; i < s->n_mounts; i++) {
                        TRY(jappend(mounts, json_pack("{s:s, s:s}", "volume", s->mounts[i].volume,
                                                      "path", s->mounts[i].path)));
                }
        }
        for (size_t i = 0; i < s->n_rules; i++) {
                TRY(rule_json(&s->rules[i], &tmp));
                TRY(jappend(rules, tmp));
        }
        TRY(jset(o, "attestation", TAKE_PTR(rules)));
        if (s->tolerate_simulation) {
                TRY(jappend(tol, json_string("simulation")));
        }
        if (s->tolerate_debug) {
                TRY(jappend(tol, json_string("debug")));
        }
        if (s->tolerate_outdated_tcb) {
                TRY(jappend(tol, json_string("outdated_tcb")));
        }
        TRY(jset(o, "tolerate", TAKE_PTR(tol)));
        if (s->certificate != NULL) {
                TRY(certificate_json(s->certificate, &tmp));
                TRY(jset(o, "certificate", tmp));
        }
        *ret = TAKE_PTR(o);
        return CF_OK;
}

/* The key and certificate fields, in the document's shape (defaults written out). */
static cf_status pki_json(const struct policy_secret *s, json_t *o, json_t **ret)
{
        if (s->kind == POLICY_SECRET_PUBLIC_KEY) {
                TRY(jset(o, "of", json_string(s->of)));
                *ret = json_incref(o);
                return CF_OK;
        }
        ENSURE(s->algorithm >= POLICY_ALG_ED25519 && (size_t)s->algorithm < KEY_ALGS_N,
               CF_E_INTERNAL);
        TRY(jset(o, "algorithm", json_string(key_algs[s->algorithm])));
        if (s->kind == POLICY_SECRET_PRIVATE_KEY) {
                *ret = json_incref(o);
                return CF_OK;
        }
        TRY(jset(o, "common_name", json_string(s->common_name)));
        if (s->issuer != NULL) {
                TRY(jset(o, "issuer", json_string(s->issuer)));
        }
        TRY(jset(o, "validity_days", json_integer((json_int_t)s->validity_days)));
        if (s->kind == POLICY_SECRET_X509) {
                TRY(names_usage_json(o, s->dns, s->n_dns, s->ip, s->n_ip, s->usage));
        }
        *ret = json_incref(o);
        return CF_OK;
}

/* rotate, renew_before_days and export, when the document can have them. */
static cf_status lifecycle_json(const struct policy_secret *s, json_t *o)
{
        json_t *tmp = NULL;

        if (s->rotate > 0) {
                TRY(jset(o, "rotate", json_integer((json_int_t)s->rotate)));
        }
        if (s->kind == POLICY_SECRET_X509_CA || s->kind == POLICY_SECRET_X509) {
                TRY(jset(o, "renew_before_days", json_integer((json_int_t)s->renew_before_days)));
        }
        if (s->n_export_to > 0) {
                TRY(strv_json(s->export_to, s->n_export_to, &tmp));
                TRY(jset(o, "export", tmp));
        }
        return CF_OK;
}

static cf_status secret_json(const struct policy_secret *s, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();

        ENSURE(o != NULL, CF_E_NOMEM);
        TRY(jset(o, "name", json_string(s->name)));
        if (s->kind == POLICY_SECRET_IMPORT) {
                json_t *imp = json_pack("{s:s, s:s}", "policy", s->import_policy, "secret",
                                        s->import_secret);
                if (imp != NULL && s->import_digest[0] != '\0' &&
                    json_object_set_new(imp, "digest", json_string(s->import_digest)) != 0) {
                        json_decref(imp);
                        imp = NULL;
                }
                TRY(jset(o, "import", imp));
                *ret = TAKE_PTR(o);
                return CF_OK;
        }
        ENSURE(s->kind >= POLICY_SECRET_ASCII && s->kind <= POLICY_SECRET_KIND_MAX, CF_E_INTERNAL);
        TRY(jset(o, "kind", json_string(secret_kinds[s->kind])));
        TRY(lifecycle_json(s, o));
        if (s->kind > POLICY_SECRET_BINARY) {
                return pki_json(s, o, ret);
        }
        if (s->has_value) {
                /* Never the value: this view is shown to readers of the policy. */
                TRY(jset(o, "value", json_string("<redacted>")));
        } else {
                TRY(jset(o, "size", json_integer((json_int_t)s->size)));
        }
        if (s->charset != NULL) {
                TRY(jset(o, "charset", json_string(s->charset)));
        }
        *ret = TAKE_PTR(o);
        return CF_OK;
}

static cf_status brule_json(const struct policy_board *b, const struct policy_board_rule *r,
                            size_t depth, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();
        CF_CLEANUP(json_decrefp) json_t *items = json_array();
        json_t *tmp = NULL;

        ENSURE(o != NULL && items != NULL, CF_E_NOMEM);
        ENSURE(depth <= POLICY_BOARD_DEPTH_MAX, CF_E_INTERNAL);
        if (r->kind == POLICY_BOARD_RULE_MEMBER) {
                ENSURE(r->member < b->n_members, CF_E_INTERNAL);
                tmp = json_string(b->members[r->member].name);
                ENSURE(tmp != NULL, CF_E_NOMEM);
                *ret = tmp;
                return CF_OK;
        }
        ENSURE(r->kind == POLICY_BOARD_RULE_ALL_OF || r->kind == POLICY_BOARD_RULE_AT_LEAST,
               CF_E_INTERNAL);
        for (size_t i = 0; i < r->n_items; i++) {
                TRY(brule_json(b, &r->items[i], depth + 1, &tmp));
                TRY(jappend(items, tmp));
        }
        if (r->kind == POLICY_BOARD_RULE_ALL_OF) {
                TRY(jset(o, "all_of", TAKE_PTR(items)));
        } else {
                TRY(jset(o, "at_least", json_integer((json_int_t)r->at_least)));
                TRY(jset(o, "of", TAKE_PTR(items)));
        }
        *ret = TAKE_PTR(o);
        return CF_OK;
}

static cf_status board_json(const struct policy_board *b, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();
        CF_CLEANUP(json_decrefp) json_t *members = json_array();
        CF_CLEANUP(json_decrefp) json_t *veto = json_array();
        json_t *tmp = NULL;

        ENSURE(o != NULL && members != NULL && veto != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < b->n_members; i++) {
                const struct policy_member *m = &b->members[i];
                json_t *e = json_object();
                TRY(jappend(members, e));
                TRY(jset(e, "name", json_string(m->name)));
                if (m->kind == POLICY_MEMBER_SERVICE) {
                        TRY(jset(e, "service", json_string(m->service)));
                        continue;
                }
                TRY(jset(e, "key_id", json_string(m->key_id)));
                if (m->key_pem != NULL) {
                        TRY(jset(e, "key", json_string(m->key_pem)));
                }
        }
        TRY(jset(o, "members", TAKE_PTR(members)));
        TRY(brule_json(b, &b->rule, 1, &tmp));
        TRY(jset(o, "rule", tmp));
        if (b->n_veto > 0) {
                for (size_t i = 0; i < b->n_veto; i++) {
                        ENSURE(b->veto[i] < b->n_members, CF_E_INTERNAL);
                        TRY(jappend(veto, json_string(b->members[b->veto[i]].name)));
                }
                TRY(jset(o, "veto", TAKE_PTR(veto)));
        }
        *ret = TAKE_PTR(o);
        return CF_OK;
}

cf_status policy_to_json(const struct policy *p, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();
        CF_CLEANUP(json_decrefp) json_t *access = json_object();
        CF_CLEANUP(json_decrefp) json_t *services = json_array();
        CF_CLEANUP(json_decrefp) json_t *secrets = json_array();
        json_t *tmp = NULL;

        ENSURE(p != NULL, CF_E_INVALID_ARG);
        ENSURE(o && access && services && secrets, CF_E_NOMEM);
        TRY(jset(o, "name", json_string(p->name)));
        TRY(jset(o, "predecessor", p->has_predecessor ? json_string(p->predecessor) : json_null()));
        TRY(strv_json(p->read_ids, p->n_read_ids, &tmp));
        TRY(jset(access, "read", tmp));
        TRY(strv_json(p->update_ids, p->n_update_ids, &tmp));
        TRY(jset(access, "update", tmp));
        TRY(jset(o, "access", TAKE_PTR(access)));
        if (p->board != NULL) {
                TRY(board_json(p->board, &tmp));
                TRY(jset(o, "board", tmp));
        }
        if (p->ns != NULL) {
                json_t *ns = json_object();
                ENSURE(ns != NULL, CF_E_NOMEM);
                TRY(jset(o, "namespace", ns));
                TRY(strv_json(p->ns->create_ids, p->ns->n_create_ids, &tmp));
                TRY(jset(ns, "create", tmp));
        }
        for (size_t i = 0; i < p->n_services; i++) {
                TRY(service_json(&p->services[i], &tmp));
                TRY(jappend(services, tmp));
        }
        TRY(jset(o, "services", TAKE_PTR(services)));
        for (size_t i = 0; i < p->n_secrets; i++) {
                TRY(secret_json(&p->secrets[i], &tmp));
                TRY(jappend(secrets, tmp));
        }
        TRY(jset(o, "secrets", TAKE_PTR(secrets)));
        if (p->n_volumes > 0) {
                json_t *vols = json_array();
                TRY(jset(o, "volumes", vols));
                for (size_t i = 0; i < p->n_volumes; i++) {
                        const struct policy_volume *pv = &p->volumes[i];
                        json_t *vj = json_pack("{s:s, s:s, s:s}", "name", pv->name, "rollback",
                                               volume_rollbacks[pv->rollback], "freshness",
                                               volume_freshnesses[pv->freshness]);
                        if (vj != NULL && pv->freshness == POLICY_VOLUME_BATCHED &&
                            json_object_set_new(vj, "batched_window_ms",
                                                json_integer(pv->batched_window_ms)) != 0) {
                                json_decref(vj);
                                vj = NULL;
                        }
                        TRY(jappend(vols, vj));
                }
        }
        *ret = TAKE_PTR(o);
        return CF_OK;
}

cf_status policy_errors_to_json(const struct policy_errors *errs, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *a = json_array();

        ENSURE(errs != NULL && errs->n <= POLICY_ERRORS_MAX, CF_E_INVALID_ARG);
        ENSURE(a != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < errs->n; i++) {
                json_t *e = json_object();
                TRY(jappend(a, e));
                TRY(jset(e, "location", json_string(errs->items[i].location)));
                TRY(jset(e, "message", json_string(errs->items[i].message)));
        }
        if (errs->truncated) {
                json_t *e = json_object();
                TRY(jappend(a, e));
                TRY(jset(e, "location", json_string("")));
                TRY(jset(e, "message", json_string("more errors were not reported")));
        }
        *ret = TAKE_PTR(a);
        return CF_OK;
}

cf_status policy_errors_format(const struct policy_errors *errs, struct cf_buf *out)
{
        ENSURE(errs != NULL && errs->n <= POLICY_ERRORS_MAX, CF_E_INVALID_ARG);
        for (size_t i = 0; i < errs->n; i++) {
                TRY(cf_buf_printf(out, "%s: %s\n", errs->items[i].location,
                                  errs->items[i].message));
        }
        if (errs->truncated) {
                TRY(cf_buf_printf(out, "(more errors were not reported)\n"));
        }
        return CF_OK;
}
