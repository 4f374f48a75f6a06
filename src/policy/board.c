/* Policy boards: offline approvals (docs/formats/approval.md) and the evaluation of a board's
 * rule against them.
 *
 * An approval file is untrusted until policy_board_evaluate has verified its signature over
 * the statement the caller expects; the parser only checks its shape. The statement is
 * rebuilt from the caller's own (policy, digest, predecessor), never from the file, so an
 * approval for anything else cannot verify even if its fields were edited. */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/log.h"
#include "base/mem.h"
#include "crypto/crypto.h"

#define PEM_BEGIN        "-----BEGIN PUBLIC KEY-----"
#define PEM_END          "-----END PUBLIC KEY-----"
#define PEM_LINE         64
#define HEX64            64
#define SIG_B64_MAX      ((POLICY_APPROVAL_SIG_MAX + 2) / 3 * 4)
#define STATEMENT_MAX    (sizeof(POLICY_APPROVAL_DOMAIN) + POLICY_NAME_MAX + 2 * HEX64 + 16)
#define APPROVAL_VERSION 1
#define CHECK_TEXT_MAX   ATTEST_CHECK_VALUE_MAX

/* ---- PEM public keys ------------------------------------------------------------------- */

/* The next line of c (without its "\n" or "\r\n"); false at the end of the input. */
static bool next_line(struct cf_cursor *c, struct cf_slice *ret)
{
        struct cf_cursor start = *c;
        struct cf_slice line;
        size_t n = 0;
        uint8_t ch = 0;

        if (cf_cursor_left(c) == 0) {
                return false;
        }
        while (cf_ok(cf_cursor_u8(c, &ch)) && ch != '\n') {
                n++;
        }
        if (!cf_ok(cf_cursor_take(&start, n, &line))) {
                return false;
        }
        if (line.size > 0 && line.ptr[line.size - 1] == '\r') {
                line.size--;
        }
        *ret = line;
        return true;
}

static bool blank(struct cf_slice s)
{
        struct cf_cursor c = cf_cursor_make(s);
        uint8_t ch;

        while (cf_ok(cf_cursor_u8(&c, &ch))) {
                if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
                        return false;
                }
        }
        return true;
}

cf_status policy_public_key_parse(struct cf_slice pem, struct cf_pkey **ret)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *k = NULL;
        struct cf_cursor c = cf_cursor_make(pem);
        struct cf_buf b64, der;
        struct cf_slice line;
        bool ended = false;
        cf_status s = CF_OK;
        enum cf_key_type t;

        ENSURE(pem.ptr != NULL || pem.size == 0, CF_E_INVALID_ARG);
        ENSURE(pem.size <= POLICY_BOARD_KEY_PEM_MAX, CF_E_LIMIT);
        ENSURE(next_line(&c, &line) && cf_slice_eq(line, cf_slice_str(PEM_BEGIN)), CF_E_ENCODING);
        cf_buf_init(&b64, POLICY_BOARD_KEY_PEM_MAX, false);
        cf_buf_init(&der, POLICY_BOARD_KEY_PEM_MAX, false);
        while (cf_ok(s) && !ended && next_line(&c, &line)) {
                if (cf_slice_eq(line, cf_slice_str(PEM_END))) {
                        ended = true;
                } else if (line.size == 0 || line.size > PEM_LINE) {
                        s = cf_fail(CF_E_ENCODING);
                } else {
                        s = cf_buf_append(&b64, line.ptr, line.size);
                }
        }
        if (cf_ok(s) && !ended) {
                s = cf_fail(CF_E_ENCODING);
        }
        /* Only whitespace may follow the block: no second key, no trailing text. */
        if (cf_ok(s)) {
                struct cf_slice rest;
                s = cf_cursor_take(&c, cf_cursor_left(&c), &rest);
                if (cf_ok(s) && !blank(rest)) {
                        s = cf_fail(CF_E_ENCODING);
                }
        }
        if (cf_ok(s)) {
                s = cf_base64_decode_buf(cf_buf_slice(&b64), &der);
                if (!cf_ok(s) && s.code != CF_E_NOMEM) {
                        s = cf_fail(CF_E_ENCODING);
                }
        }
        if (cf_ok(s)) {
                s = cf_pkey_from_spki(cf_buf_slice(&der), &k);
                if (!cf_ok(s) && s.code != CF_E_NOMEM) {
                        s = cf_fail(CF_E_KEY);
                }
        }
        cf_buf_done(&b64);
        cf_buf_done(&der);
        TRY(s);
        t = cf_pkey_type(k);
        ENSURE(t == CF_KEY_ED25519 || t == CF_KEY_P256 || t == CF_KEY_P384, CF_E_KEY);
        *ret = TAKE_PTR(k);
        return CF_OK;
}

cf_status policy_public_key_pem(const struct cf_pkey *k, struct cf_buf *out)
{
        struct cf_buf der, b64;
        size_t old = out->size;
        cf_status s;

        ENSURE(k != NULL, CF_E_INVALID_ARG);
        cf_buf_init(&der, POLICY_BOARD_KEY_PEM_MAX, false);
        cf_buf_init(&b64, POLICY_BOARD_KEY_PEM_MAX, false);
        s = cf_pkey_spki_der(k, &der);
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(der.ptr, der.size, &b64);
        }
        if (cf_ok(s)) {
                s = cf_buf_append_str(out, PEM_BEGIN "\n");
        }
        for (size_t i = 0; cf_ok(s) && i < b64.size; i += PEM_LINE) {
                size_t n = b64.size - i < PEM_LINE ? b64.size - i : PEM_LINE;
                struct cf_cursor c = cf_cursor_make(cf_buf_slice(&b64));
                struct cf_slice part;
                s = cf_cursor_skip(&c, i);
                if (cf_ok(s)) {
                        s = cf_cursor_take(&c, n, &part);
                }
                if (cf_ok(s)) {
                        s = cf_buf_append(out, part.ptr, part.size);
                }
                if (cf_ok(s)) {
                        s = cf_buf_append_str(out, "\n");
                }
        }
        if (cf_ok(s)) {
                s = cf_buf_append_str(out, PEM_END "\n");
        }
        cf_buf_done(&der);
        cf_buf_done(&b64);
        if (!cf_ok(s)) {
                out->size = old;
                if (out->ptr != NULL) {
                        out->ptr[old] = 0;
                }
        }
        return s;
}

/* ---- statements ------------------------------------------------------------------------ */

static bool is_lower_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool digest_ok(const char *s)
{
        size_t i = 0;

        for (; s[i] != '\0' && i <= HEX64; i++) {
                if (!is_lower_hex(s[i])) {
                        return false;
                }
        }
        return i == HEX64;
}

/* NULL and "" mean null. */
static bool predecessor_ok(const char *s)
{
        return s == NULL || s[0] == '\0' || digest_ok(s);
}

/* The statement's word for a verdict; NULL for a value outside the enum. */
static const char *verdict_word(enum policy_verdict v)
{
        switch (v) {
        case POLICY_VERDICT_APPROVE:
                return "approve";
        case POLICY_VERDICT_VETO:
                return "veto";
        case POLICY_VERDICT_DELETE:
                return "delete";
        default:
                return NULL;
        }
}

cf_status policy_deletion_digest(const char *predecessor, char out[static 65])
{
        struct cf_slice parts[2];
        uint8_t h[CF_SHA256_SIZE];

        ENSURE(predecessor != NULL && digest_ok(predecessor), CF_E_INVALID_ARG);
        parts[0] = cf_slice_str(POLICY_DELETION_DOMAIN);
        parts[1] = cf_slice_str(predecessor);
        TRY(cf_sha256(parts, 2, h));
        cf_hex_encode(h, sizeof(h), out, 65);
        return CF_OK;
}

cf_status policy_release_digest(const char *predecessor, const char *secret, const char *recipient,
                                char out[static 65])
{
        struct cf_slice parts[6];
        uint8_t h[CF_SHA256_SIZE];

        ENSURE(predecessor != NULL && digest_ok(predecessor), CF_E_INVALID_ARG);
        ENSURE(recipient != NULL && digest_ok(recipient), CF_E_INVALID_ARG);
        ENSURE(secret != NULL && secret[0] != '\0' && strlen(secret) <= POLICY_SECRET_NAME_MAX &&
                       strchr(secret, '\n') == NULL,
               CF_E_INVALID_ARG);
        parts[0] = cf_slice_str(POLICY_RELEASE_DOMAIN);
        parts[1] = cf_slice_str(predecessor);
        parts[2] = cf_slice_str("\n");
        parts[3] = cf_slice_str(secret);
        parts[4] = cf_slice_str("\n");
        parts[5] = cf_slice_str(recipient);
        TRY(cf_sha256(parts, 6, h));
        cf_hex_encode(h, sizeof(h), out, 65);
        return CF_OK;
}

cf_status policy_approval_statement(const char *policy, const char *digest, const char *predecessor,
                                    bool veto, struct cf_buf *out)
{
        return policy_approval_statement_verdict(
            policy, digest, predecessor, veto ? POLICY_VERDICT_VETO : POLICY_VERDICT_APPROVE, out);
}

cf_status policy_approval_statement_verdict(const char *policy, const char *digest,
                                            const char *predecessor, enum policy_verdict verdict,
                                            struct cf_buf *out)
{
        bool null_pred = predecessor == NULL || predecessor[0] == '\0';
        const char *word = verdict_word(verdict);
        size_t old;
        cf_status s;

        ENSURE(policy != NULL && digest != NULL && out != NULL && word != NULL, CF_E_INVALID_ARG);
        ENSURE(policy_name_valid(policy) && digest_ok(digest) && predecessor_ok(predecessor),
               CF_E_INVALID_ARG);
        old = out->size;
        s = cf_buf_printf(out, "%s\n%s\n%s\n%s\n%s", POLICY_APPROVAL_DOMAIN, policy, digest,
                          null_pred ? "null" : predecessor, word);
        if (!cf_ok(s)) {
                out->size = old;
                if (out->ptr != NULL) {
                        out->ptr[old] = 0;
                }
        }
        return s;
}

/* ---- approval files -------------------------------------------------------------------- */

void policy_approval_free(struct policy_approval *a)
{
        if (a == NULL) {
                return;
        }
        free(a->policy);
        cf_pkey_free(a->key);
        free(a->sig);
        free(a);
}

/* A member's string value of at most max bytes without NUL bytes. */
static cf_status get_string(json_t *o, const char *key, size_t max, const char **ret)
{
        json_t *j = json_object_get(o, key);

        ENSURE(json_is_string(j), CF_E_MALFORMED);
        ENSURE(json_string_length(j) <= max, CF_E_LIMIT);
        ENSURE(strlen(json_string_value(j)) == json_string_length(j), CF_E_MALFORMED);
        *ret = json_string_value(j);
        return CF_OK;
}

static const char *const approval_keys[] = {"version", "policy", "digest",    "predecessor",
                                            "verdict", "key",    "signature", NULL};

static cf_status approval_check_shape(json_t *root)
{
        json_t *ver;
        size_t n = 0;

        ENSURE(json_is_object(root), CF_E_MALFORMED);
        /* The version first, so a future format fails as such whatever else it changed. */
        ver = json_object_get(root, "version");
        ENSURE(ver != NULL, CF_E_MALFORMED);
        ENSURE(json_is_integer(ver), CF_E_MALFORMED);
        ENSURE(json_integer_value(ver) == APPROVAL_VERSION, CF_E_VERSION);
        for (size_t i = 0; approval_keys[i] != NULL; i++) {
                ENSURE(json_object_get(root, approval_keys[i]) != NULL, CF_E_MALFORMED);
                n++;
        }
        ENSURE(json_object_size(root) == n, CF_E_MALFORMED); /* no unknown members */
        return CF_OK;
}

static cf_status approval_fields(json_t *root, struct policy_approval *a)
{
        const char *s;
        json_t *pred = json_object_get(root, "predecessor");

        TRY(get_string(root, "policy", POLICY_NAME_MAX, &s));
        ENSURE(policy_name_valid(s), CF_E_MALFORMED);
        a->policy = strdup(s);
        ENSURE(a->policy != NULL, CF_E_NOMEM);
        TRY(get_string(root, "digest", HEX64, &s));
        ENSURE(digest_ok(s), CF_E_MALFORMED);
        memcpy(a->digest, s, HEX64 + 1);
        if (!json_is_null(pred)) {
                TRY(get_string(root, "predecessor", HEX64, &s));
                ENSURE(digest_ok(s), CF_E_MALFORMED);
                memcpy(a->predecessor, s, HEX64 + 1);
        }
        TRY(get_string(root, "verdict", 16, &s));
        if (strcmp(s, "veto") == 0) {
                a->veto = true;
                a->verdict = POLICY_VERDICT_VETO;
        } else if (strcmp(s, "delete") == 0) {
                a->verdict = POLICY_VERDICT_DELETE;
        } else {
                ENSURE(strcmp(s, "approve") == 0, CF_E_MALFORMED);
                a->verdict = POLICY_VERDICT_APPROVE;
        }
        return CF_OK;
}

static cf_status approval_crypto(json_t *root, struct policy_approval *a)
{
        const char *s;
        struct cf_buf sig;
        cf_status st;

        TRY(get_string(root, "key", POLICY_BOARD_KEY_PEM_MAX, &s));
        TRY(policy_public_key_parse(cf_slice_str(s), &a->key));
        TRY(get_string(root, "signature", SIG_B64_MAX, &s));
        /* The decoder may reserve a little past the result; the exact bound is checked below. */
        cf_buf_init(&sig, POLICY_APPROVAL_SIG_MAX + 4, false);
        st = cf_base64_decode_buf(cf_slice_str(s), &sig);
        if (cf_ok(st) && (sig.size == 0 || sig.size > POLICY_APPROVAL_SIG_MAX)) {
                st = cf_fail(CF_E_MALFORMED);
        } else if (!cf_ok(st) && st.code != CF_E_NOMEM) {
                st = cf_fail(CF_E_ENCODING);
        }
        if (cf_ok(st)) {
                a->sig = cf_buf_steal(&sig, &a->sig_size);
        }
        cf_buf_done(&sig);
        return st;
}

cf_status policy_approval_parse(struct cf_slice json, struct policy_approval **ret)
{
        CF_CLEANUP(json_decrefp) json_t *root = NULL;
        CF_CLEANUP(policy_approval_freep) struct policy_approval *a = NULL;
        json_error_t jerr;

        ENSURE(ret != NULL && (json.ptr != NULL || json.size == 0), CF_E_INVALID_ARG);
        ENSURE(json.size <= POLICY_APPROVAL_MAX, CF_E_LIMIT);
        /* json_loadb rejects anything but whitespace after the object. */
        root = json_loadb((const char *)json.ptr, json.size, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL) {
                ENSURE(json_error_code(&jerr) != json_error_out_of_memory, CF_E_NOMEM);
                return cf_fail(CF_E_SYNTAX);
        }
        TRY(approval_check_shape(root));
        a = calloc(1, sizeof(*a));
        ENSURE(a != NULL, CF_E_NOMEM);
        TRY(approval_fields(root, a));
        TRY(approval_crypto(root, a));
        *ret = TAKE_PTR(a);
        return CF_OK;
}

/* Adds v under k; consumes v. */
static cf_status jset(json_t *o, const char *k, json_t *v)
{
        ENSURE(v != NULL, CF_E_NOMEM);
        ENSURE(json_object_set_new(o, k, v) == 0, CF_E_NOMEM);
        return CF_OK;
}

static void free_str(char **p)
{
        free(*p);
}

static cf_status approval_json(const struct cf_pkey *key, const char *policy, const char *digest,
                               const char *predecessor, enum policy_verdict verdict,
                               struct cf_slice sig, struct cf_buf *out_json)
{
        CF_CLEANUP(json_decrefp) json_t *o = json_object();
        CF_CLEANUP(free_str) char *text = NULL;
        struct cf_buf pem, b64;
        cf_status s;
        bool null_pred = predecessor == NULL || predecessor[0] == '\0';

        ENSURE(o != NULL, CF_E_NOMEM);
        cf_buf_init(&pem, POLICY_BOARD_KEY_PEM_MAX, false);
        cf_buf_init(&b64, SIG_B64_MAX + 1, false);
        s = policy_public_key_pem(key, &pem);
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(sig.ptr, sig.size, &b64);
        }
        if (cf_ok(s)) {
                s = jset(o, "version", json_integer(APPROVAL_VERSION));
        }
        if (cf_ok(s)) {
                s = jset(o, "policy", json_string(policy));
        }
        if (cf_ok(s)) {
                s = jset(o, "digest", json_string(digest));
        }
        if (cf_ok(s)) {
                s = jset(o, "predecessor", null_pred ? json_null() : json_string(predecessor));
        }
        if (cf_ok(s)) {
                s = jset(o, "verdict", json_string(verdict_word(verdict)));
        }
        if (cf_ok(s)) {
                s = jset(o, "key", json_stringn((const char *)pem.ptr, pem.size));
        }
        if (cf_ok(s)) {
                s = jset(o, "signature", json_stringn((const char *)b64.ptr, b64.size));
        }
        cf_buf_done(&pem);
        cf_buf_done(&b64);
        TRY(s);
        text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        ENSURE(text != NULL, CF_E_NOMEM);
        TRY(cf_buf_append_str(out_json, text));
        return cf_buf_append_str(out_json, "\n");
}

cf_status policy_approval_sign(const struct cf_pkey *key, const char *policy, const char *digest,
                               const char *predecessor, bool veto, struct cf_buf *out_json)
{
        return policy_approval_sign_verdict(key, policy, digest, predecessor,
                                            veto ? POLICY_VERDICT_VETO : POLICY_VERDICT_APPROVE,
                                            out_json);
}

cf_status policy_approval_sign_verdict(const struct cf_pkey *key, const char *policy,
                                       const char *digest, const char *predecessor,
                                       enum policy_verdict verdict, struct cf_buf *out_json)
{
        struct cf_buf stmt, sig;
        enum cf_key_type t;
        size_t old;
        cf_status s;

        ENSURE(key != NULL && out_json != NULL, CF_E_INVALID_ARG);
        t = cf_pkey_type(key);
        ENSURE(t == CF_KEY_ED25519 || t == CF_KEY_P256 || t == CF_KEY_P384, CF_E_KEY);
        old = out_json->size;
        cf_buf_init(&stmt, STATEMENT_MAX, false);
        cf_buf_init(&sig, POLICY_APPROVAL_SIG_MAX + 16, false);
        s = policy_approval_statement_verdict(policy, digest, predecessor, verdict, &stmt);
        if (cf_ok(s)) {
                /* A public-only key cannot sign: the library reports that as a crypto error. */
                s = cf_sign(key, cf_buf_slice(&stmt), &sig);
                if (!cf_ok(s) && s.code == CF_E_CRYPTO) {
                        s = cf_fail(CF_E_KEY);
                }
        }
        if (cf_ok(s)) {
                s = approval_json(key, policy, digest, predecessor, verdict, cf_buf_slice(&sig),
                                  out_json);
        }
        cf_buf_done(&stmt);
        cf_buf_done(&sig);
        if (!cf_ok(s)) {
                out_json->size = old;
                if (out_json->ptr != NULL) {
                        out_json->ptr[old] = 0;
                }
        }
        return s;
}

/* ---- rules ----------------------------------------------------------------------------- */

static cf_status rule_format(const struct policy_board *b, const struct policy_board_rule *r,
                             size_t depth, struct cf_buf *out)
{
        ENSURE(depth <= POLICY_BOARD_DEPTH_MAX, CF_E_LIMIT);
        switch (r->kind) {
        case POLICY_BOARD_RULE_MEMBER:
                ENSURE(r->member < b->n_members, CF_E_INTERNAL);
                return cf_buf_append_str(out, b->members[r->member].name);
        case POLICY_BOARD_RULE_ALL_OF:
                TRY(cf_buf_append_str(out, "all_of ["));
                break;
        case POLICY_BOARD_RULE_AT_LEAST:
                TRY(cf_buf_printf(out, "at_least %zu of [", r->at_least));
                break;
        default:
                return cf_fail(CF_E_INTERNAL);
        }
        for (size_t i = 0; i < r->n_items; i++) {
                if (i > 0) {
                        TRY(cf_buf_append_str(out, ", "));
                }
                TRY(rule_format(b, &r->items[i], depth + 1, out));
        }
        return cf_buf_append_str(out, "]");
}

cf_status policy_board_rule_format(const struct policy_board *b, const struct policy_board_rule *r,
                                   struct cf_buf *out)
{
        ENSURE(b != NULL && r != NULL && out != NULL, CF_E_INVALID_ARG);
        return rule_format(b, r, 1, out);
}

/* Whether the rule is met by the members marked in approved; false past the depth limit or
 * for an impossible model (fail closed). */
static bool rule_met(const struct policy_board *b, const struct policy_board_rule *r,
                     const bool *approved, size_t depth)
{
        size_t met = 0;

        if (depth > POLICY_BOARD_DEPTH_MAX) {
                return false;
        }
        switch (r->kind) {
        case POLICY_BOARD_RULE_MEMBER:
                return r->member < b->n_members && approved[r->member];
        case POLICY_BOARD_RULE_ALL_OF:
        case POLICY_BOARD_RULE_AT_LEAST:
                break;
        default:
                return false;
        }
        if (r->n_items == 0 || r->items == NULL) {
                return false;
        }
        for (size_t i = 0; i < r->n_items; i++) {
                met += rule_met(b, &r->items[i], approved, depth + 1) ? 1 : 0;
        }
        if (r->kind == POLICY_BOARD_RULE_ALL_OF) {
                return met == r->n_items;
        }
        return r->at_least >= 1 && met >= r->at_least;
}

/* ---- evaluation ------------------------------------------------------------------------ */

struct tally {
        bool approved[POLICY_BOARD_MEMBERS_MAX];
        bool vetoed[POLICY_BOARD_MEMBERS_MAX]; /* signed a veto statement */
};

static bool is_veto_member(const struct policy_board *b, size_t m)
{
        for (size_t i = 0; i < b->n_veto; i++) {
                if (b->veto[i] == m) {
                        return true;
                }
        }
        return false;
}

static bool same_predecessor(const char *want, const char *got)
{
        bool want_null = want == NULL || want[0] == '\0';

        return want_null ? got[0] == '\0' : strcmp(want, got) == 0;
}

static const char *pred_text(const char *p)
{
        return p == NULL || p[0] == '\0' ? "null" : p;
}

/* One approval: decides what it counts for and records "board.approval[i]". */
static bool one_approval(const struct policy_board *b, const char *policy, const char *digest,
                         const char *predecessor, bool deletion, const struct policy_approval *a,
                         size_t i, struct tally *t, struct attest_checks *out)
{
        char name[40], expected[CHECK_TEXT_MAX], actual[CHECK_TEXT_MAX], kid[CF_KEY_ID_HEX];
        char esc[80];
        struct cf_buf stmt;
        size_t m = b->n_members;
        bool ok = false;
        cf_status s;

        snprintf(name, sizeof(name), "board.approval[%zu]", i);
        snprintf(expected, sizeof(expected), "%s%s %s after %s, signed by a member",
                 deletion ? "deletion of " : "", policy, digest, pred_text(predecessor));
        if (a == NULL || a->policy == NULL || a->key == NULL) {
                return cf_ok(attest_checks_add(out, name, false, expected, "no approval"));
        }
        if (strcmp(a->policy, policy) != 0 || strcmp(a->digest, digest) != 0 ||
            !same_predecessor(predecessor, a->predecessor)) {
                snprintf(actual, sizeof(actual), "for %s %s after %s (ignored)",
                         cf_log_escape(a->policy, strlen(a->policy), esc, sizeof(esc)), a->digest,
                         pred_text(a->predecessor));
                return cf_ok(attest_checks_add(out, name, false, expected, actual));
        }
        /* "delete" approves only deletions, "approve" only versions: a signature for one
         * kind of change never counts for the other. */
        if (a->verdict != POLICY_VERDICT_VETO &&
            (a->verdict == POLICY_VERDICT_DELETE) != deletion) {
                snprintf(actual, sizeof(actual), "verdict %s, which does not approve %s (ignored)",
                         a->verdict == POLICY_VERDICT_DELETE ? "delete" : "approve",
                         deletion ? "a deletion" : "a version");
                return cf_ok(attest_checks_add(out, name, false, expected, actual));
        }
        if (!cf_ok(cf_pkey_key_id(a->key, kid))) {
                return false;
        }
        /* The statement comes from the caller's values, which the approval's equal. */
        cf_buf_init(&stmt, STATEMENT_MAX, false);
        s = policy_approval_statement_verdict(policy, digest, predecessor, a->verdict, &stmt);
        if (cf_ok(s)) {
                s = cf_verify(a->key, cf_buf_slice(&stmt), cf_slice_make(a->sig, a->sig_size));
        }
        cf_buf_done(&stmt);
        if (!cf_ok(s)) {
                snprintf(actual, sizeof(actual), "the signature by key %s does not verify", kid);
                return cf_ok(attest_checks_add(out, name, false, expected, actual));
        }
        for (size_t k = 0; k < b->n_members && m == b->n_members; k++) {
                if (b->members[k].kind == POLICY_MEMBER_PERSON &&
                    strcmp(b->members[k].key_id, kid) == 0) {
                        m = k;
                }
        }
        if (m == b->n_members) {
                snprintf(actual, sizeof(actual), "signed by key %s, which is not a member's", kid);
                return cf_ok(attest_checks_add(out, name, false, expected, actual));
        }
        if (a->verdict == POLICY_VERDICT_VETO) {
                ok = is_veto_member(b, m);
                snprintf(actual, sizeof(actual), "veto by %s%s", b->members[m].name,
                         ok ? "" : ", who may not veto (ignored; not counted as approving)");
                t->vetoed[m] = true;
        } else {
                ok = true;
                snprintf(actual, sizeof(actual), "approve by %s%s", b->members[m].name,
                         t->approved[m] ? " (again: counted once)" : "");
                t->approved[m] = true;
        }
        return cf_ok(attest_checks_add(out, name, ok, expected, actual));
}

/* One attested program's approval or veto: records "board.service[k]". */
static bool one_service(const struct policy_board *b, const struct policy_service_vote *v, size_t k,
                        struct tally *t, struct attest_checks *out)
{
        char name[40], actual[CHECK_TEXT_MAX], esc[POLICY_NAME_MAX + 80];
        const char *svc = v->service;
        size_t m = b->n_members;
        bool ok;

        snprintf(name, sizeof(name), "board.service[%zu]", k);
        if (svc == NULL) {
                return cf_ok(attest_checks_add(out, name, false, "a member service", "none"));
        }
        for (size_t i = 0; i < b->n_members && m == b->n_members; i++) {
                if (b->members[i].kind == POLICY_MEMBER_SERVICE &&
                    strcmp(b->members[i].service, svc) == 0) {
                        m = i;
                }
        }
        cf_log_escape(svc, strlen(svc), esc, sizeof(esc));
        if (m == b->n_members) {
                snprintf(actual, sizeof(actual), "%s is not a member of the board", esc);
                return cf_ok(attest_checks_add(out, name, false, "a member service", actual));
        }
        if (v->veto) {
                ok = is_veto_member(b, m);
                t->vetoed[m] = true;
                snprintf(actual, sizeof(actual), "veto by %s (attested %s)%s", b->members[m].name,
                         esc, ok ? "" : ", who may not veto (ignored; not counted as approving)");
                return cf_ok(attest_checks_add(out, name, ok, "a member service", actual));
        }
        t->approved[m] = true;
        snprintf(actual, sizeof(actual), "approve by %s (attested %s)", b->members[m].name, esc);
        return cf_ok(attest_checks_add(out, name, true, "a member service", actual));
}

/* "board.rule": the rule against who approved. */
static bool record_rule(const struct policy_board *b, const bool *approved, bool met,
                        struct attest_checks *out)
{
        struct cf_buf exp, act;
        bool any = false, ok;
        cf_status s;

        cf_buf_init(&exp, CHECK_TEXT_MAX * 4, false);
        cf_buf_init(&act, CHECK_TEXT_MAX * 4, false);
        s = policy_board_rule_format(b, &b->rule, &exp);
        if (cf_ok(s)) {
                s = cf_buf_append_str(&act, "approved by: ");
        }
        for (size_t m = 0; cf_ok(s) && m < b->n_members; m++) {
                if (approved[m]) {
                        s = cf_buf_printf(&act, "%s%s", any ? ", " : "", b->members[m].name);
                        any = true;
                }
        }
        if (cf_ok(s) && !any) {
                s = cf_buf_append_str(&act, "nobody");
        }
        ok = cf_ok(s) && cf_ok(attest_checks_add(out, "board.rule", met, (const char *)exp.ptr,
                                                 (const char *)act.ptr));
        cf_buf_done(&exp);
        cf_buf_done(&act);
        return ok;
}

/* "board.veto": whether a veto member vetoed. */
static bool record_veto(const struct policy_board *b, const struct tally *t, bool *ret_vetoed,
                        struct attest_checks *out)
{
        struct cf_buf exp, act;
        bool vetoed = false, ok;
        cf_status s;

        cf_buf_init(&exp, CHECK_TEXT_MAX * 4, false);
        cf_buf_init(&act, CHECK_TEXT_MAX * 4, false);
        s = cf_buf_append_str(&exp, b->n_veto == 0 ? "no veto members" : "no veto by any of [");
        for (size_t i = 0; cf_ok(s) && i < b->n_veto; i++) {
                s = cf_buf_printf(&exp, "%s%s", i > 0 ? ", " : "", b->members[b->veto[i]].name);
        }
        if (cf_ok(s) && b->n_veto > 0) {
                s = cf_buf_append_str(&exp, "]");
        }
        for (size_t i = 0; cf_ok(s) && i < b->n_veto; i++) {
                if (t->vetoed[b->veto[i]]) {
                        s = cf_buf_printf(&act, "%s%s", vetoed ? ", " : "veto by ",
                                          b->members[b->veto[i]].name);
                        vetoed = true;
                }
        }
        if (cf_ok(s) && !vetoed) {
                s = cf_buf_append_str(&act, "no veto");
        }
        ok = cf_ok(s) && cf_ok(attest_checks_add(out, "board.veto", !vetoed, (const char *)exp.ptr,
                                                 (const char *)act.ptr));
        cf_buf_done(&exp);
        cf_buf_done(&act);
        *ret_vetoed = vetoed;
        return ok;
}

static bool board_sane(const struct policy_board *b)
{
        if (b->n_members == 0 || b->n_members > POLICY_BOARD_MEMBERS_MAX || b->members == NULL ||
            b->n_veto > b->n_members || (b->n_veto > 0 && b->veto == NULL)) {
                return false;
        }
        for (size_t i = 0; i < b->n_veto; i++) {
                if (b->veto[i] >= b->n_members) {
                        return false;
                }
        }
        for (size_t i = 0; i < b->n_members; i++) {
                const struct policy_member *m = &b->members[i];
                if (m->name == NULL || (m->kind == POLICY_MEMBER_SERVICE && m->service == NULL) ||
                    (m->kind != POLICY_MEMBER_SERVICE && m->kind != POLICY_MEMBER_PERSON)) {
                        return false;
                }
        }
        return true;
}

bool policy_board_decide(const struct policy_board *b, const char *policy, const char *digest,
                         const char *predecessor, bool deletion,
                         struct policy_approval *const *approvals, size_t n,
                         const struct policy_service_vote *votes, size_t n_votes,
                         struct attest_checks *out, struct policy_board_outcome *ret)
{
        struct tally t;
        bool approved[POLICY_BOARD_MEMBERS_MAX] = {false};
        bool met, vetoed = true;

        if (ret != NULL) {
                memset(ret, 0, sizeof(*ret));
        }
        if (b == NULL || policy == NULL || digest == NULL || out == NULL ||
            (n > 0 && approvals == NULL) || (n_votes > 0 && votes == NULL) ||
            n > POLICY_APPROVALS_MAX || n_votes > POLICY_APPROVALS_MAX || !board_sane(b) ||
            !policy_name_valid(policy) || !digest_ok(digest) || !predecessor_ok(predecessor) ||
            (deletion && (predecessor == NULL || predecessor[0] == '\0'))) {
                return false;
        }
        memset(&t, 0, sizeof(t));
        for (size_t i = 0; i < n; i++) {
                if (!one_approval(b, policy, digest, predecessor, deletion, approvals[i], i, &t,
                                  out)) {
                        return false;
                }
        }
        for (size_t k = 0; k < n_votes; k++) {
                if (!one_service(b, &votes[k], k, &t, out)) {
                        return false;
                }
        }
        /* A member that signed a veto statement never approves, even if it also approved:
         * contradictory statements count as the more cautious one. */
        for (size_t m = 0; m < b->n_members; m++) {
                approved[m] = t.approved[m] && !t.vetoed[m];
        }
        met = rule_met(b, &b->rule, approved, 1);
        if (!record_rule(b, approved, met, out) || !record_veto(b, &t, &vetoed, out)) {
                return false;
        }
        if (ret != NULL) {
                memcpy(ret->approved, approved, sizeof(ret->approved));
                ret->vetoed = vetoed;
                ret->met = met;
        }
        return met && !vetoed;
}

bool policy_board_evaluate(const struct policy_board *b, const char *policy, const char *digest,
                           const char *predecessor, struct policy_approval *const *approvals,
                           size_t n, const char *const *attested_services, size_t n_services,
                           struct attest_checks *out)
{
        struct policy_service_vote votes[POLICY_APPROVALS_MAX];

        if (n_services > POLICY_APPROVALS_MAX || (n_services > 0 && attested_services == NULL)) {
                return false;
        }
        for (size_t k = 0; k < n_services; k++) {
                if (attested_services[k] == NULL) {
                        return false;
                }
                votes[k].service = attested_services[k];
                votes[k].veto = false;
        }
        return policy_board_decide(b, policy, digest, predecessor, false, approvals, n, votes,
                                   n_services, out, NULL);
}

/* ---- what a rule still needs --------------------------------------------------------- */

static cf_status needs(const struct policy_board *b, const struct policy_board_rule *r,
                       const bool *approved, size_t depth, struct cf_buf *out)
{
        size_t met = 0, missing;
        bool first = true;

        ENSURE(depth <= POLICY_BOARD_DEPTH_MAX, CF_E_LIMIT);
        if (r->kind == POLICY_BOARD_RULE_MEMBER) {
                ENSURE(r->member < b->n_members, CF_E_INTERNAL);
                return cf_buf_append_str(out, b->members[r->member].name);
        }
        ENSURE(r->kind == POLICY_BOARD_RULE_ALL_OF || r->kind == POLICY_BOARD_RULE_AT_LEAST,
               CF_E_INTERNAL);
        for (size_t i = 0; i < r->n_items; i++) {
                met += rule_met(b, &r->items[i], approved, depth + 1) ? 1 : 0;
        }
        missing = r->kind == POLICY_BOARD_RULE_ALL_OF ? r->n_items - met : r->at_least - met;
        TRY(r->kind == POLICY_BOARD_RULE_ALL_OF ? cf_buf_append_str(out, "all_of [")
                                                : cf_buf_printf(out, "at_least %zu of [", missing));
        for (size_t i = 0; i < r->n_items; i++) {
                if (rule_met(b, &r->items[i], approved, depth + 1)) {
                        continue;
                }
                if (!first) {
                        TRY(cf_buf_append_str(out, ", "));
                }
                first = false;
                TRY(needs(b, &r->items[i], approved, depth + 1, out));
        }
        return cf_buf_append_str(out, "]");
}

cf_status policy_board_needs(const struct policy_board *b, const bool *approved, struct cf_buf *out)
{
        ENSURE(b != NULL && approved != NULL && out != NULL && board_sane(b), CF_E_INVALID_ARG);
        if (rule_met(b, &b->rule, approved, 1)) {
                return cf_buf_append_str(out, "met");
        }
        return needs(b, &b->rule, approved, 1, out);
}
