/* The audit chain format and its offline verifier (docs/formats/audit.md). */
#include "client/audit_verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/mem.h"

const char audit_zero_hash[AUDIT_HASH_HEX] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- field syntax -------------------------------------------------------------------- */

static bool is_lower_hex(const char *s, size_t n)
{
        if (strlen(s) != n) {
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
                        return false;
                }
        }
        return true;
}

static bool is_hash_string(const json_t *v)
{
        return json_is_string(v) && is_lower_hex(json_string_value(v), AUDIT_HASH_HEX - 1);
}

/* Only the one spelling cofferd writes is canonical: "YYYY-MM-DDTHH:MM:SSZ". */
static bool is_canonical_time(const json_t *v)
{
        char again[AUDIT_TIME_SIZE];
        int64_t t;

        if (!json_is_string(v) || json_string_length(v) != AUDIT_TIME_SIZE - 1 ||
            !cf_ok(cf_parse_rfc3339(json_string_value(v), &t))) {
                return false;
        }
        cf_format_rfc3339(t, again, sizeof(again));
        return strcmp(again, json_string_value(v)) == 0;
}

static bool is_type(const json_t *v)
{
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);

        if (s == NULL || n == 0 || n > AUDIT_TYPE_MAX || strlen(s) != n) {
                return false;
        }
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool is_actor(const json_t *v)
{
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);

        if (s == NULL || n == 0 || n > AUDIT_ACTOR_MAX || strlen(s) != n) {
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (s[i] < 0x20 || s[i] > 0x7e) {
                        return false;
                }
        }
        return true;
}

static bool is_seq(const json_t *v, json_int_t min)
{
        return json_is_integer(v) && json_integer_value(v) >= min;
}

/* Details may hold objects, arrays, strings, integers, booleans and null; reals are not
 * canonical (their text differs between encoders) and strings may not hide a NUL. */
static cf_status check_details(const json_t *v, unsigned depth)
{
        const char *k;
        const json_t *e;
        size_t i;

        ENSURE(depth <= AUDIT_DETAILS_DEPTH, CF_E_LIMIT);
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                json_object_foreach((json_t *)(uintptr_t)v, k, e)
                {
                        TRY(check_details(e, depth + 1));
                }
                return CF_OK;
        case JSON_ARRAY:
                json_array_foreach(v, i, e)
                {
                        TRY(check_details(e, depth + 1));
                }
                return CF_OK;
        case JSON_STRING:
                ENSURE(strlen(json_string_value(v)) == json_string_length(v), CF_E_SCHEMA);
                return CF_OK;
        case JSON_INTEGER:
        case JSON_TRUE:
        case JSON_FALSE:
        case JSON_NULL:
                return CF_OK;
        case JSON_REAL:
        default:
                return cf_fail(CF_E_SCHEMA);
        }
}

/* Appends the JSON_COMPACT | JSON_SORT_KEYS dump of v, at most max bytes. */
static cf_status dump_canonical(const json_t *v, size_t max, struct cf_buf *out)
{
        char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        size_t n;
        cf_status s;

        ENSURE(text != NULL, CF_E_NOMEM);
        n = strlen(text);
        s = n <= max ? cf_buf_append(out, text, n) : cf_fail(CF_E_LIMIT);
        free(text);
        return s;
}

/* True when obj has exactly the n keys listed. */
static bool has_exactly(const json_t *obj, const char *const *keys, size_t n)
{
        if (!json_is_object(obj) || json_object_size(obj) != n) {
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (json_object_get(obj, keys[i]) == NULL) {
                        return false;
                }
        }
        return true;
}

cf_status audit_entry_canonical(const json_t *entry, struct cf_buf *out)
{
        static const char *const keys[] = {"seq", "prev", "time", "type", "actor", "details"};

        ENSURE(has_exactly(entry, keys, 6), CF_E_SCHEMA);
        ENSURE(is_seq(json_object_get(entry, "seq"), 1), CF_E_SCHEMA);
        ENSURE(is_hash_string(json_object_get(entry, "prev")), CF_E_SCHEMA);
        ENSURE(is_canonical_time(json_object_get(entry, "time")), CF_E_SCHEMA);
        ENSURE(is_type(json_object_get(entry, "type")), CF_E_SCHEMA);
        ENSURE(is_actor(json_object_get(entry, "actor")), CF_E_SCHEMA);
        ENSURE(json_is_object(json_object_get(entry, "details")), CF_E_SCHEMA);
        TRY(check_details(json_object_get(entry, "details"), 1));
        return dump_canonical(entry, AUDIT_ENTRY_MAX, out);
}

cf_status audit_hash_hex(struct cf_slice canonical, char out[static AUDIT_HASH_HEX])
{
        return cf_sha256_hex(canonical, out);
}

cf_status audit_head_message(const json_t *head, struct cf_buf *out)
{
        static const char *const keys[] = {"seq", "hash", "time"};
        size_t mark = out->size;
        cf_status s;

        ENSURE(has_exactly(head, keys, 3), CF_E_SCHEMA);
        ENSURE(is_seq(json_object_get(head, "seq"), 0), CF_E_SCHEMA);
        ENSURE(is_hash_string(json_object_get(head, "hash")), CF_E_SCHEMA);
        ENSURE(is_canonical_time(json_object_get(head, "time")), CF_E_SCHEMA);
        TRY(cf_buf_append_str(out, AUDIT_HEAD_DOMAIN));
        s = dump_canonical(head, 4096, out);
        if (!cf_ok(s)) {
                out->size = mark; /* nothing appended on failure */
                out->ptr[mark] = 0;
        }
        return s;
}

cf_status audit_head_verify(const json_t *head, const char *sig_hex,
                            const uint8_t key[static AUDIT_KEY_SIZE])
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *pk = NULL;
        uint8_t sig[AUDIT_SIG_SIZE];
        struct cf_buf msg;
        cf_status s;

        ENSURE(sig_hex != NULL && strlen(sig_hex) == 2 * AUDIT_SIG_SIZE, CF_E_ENCODING);
        TRY(cf_hex_decode(cf_slice_str(sig_hex), sig, sizeof(sig)));
        TRY(cf_pkey_ed25519_public(key, &pk));
        cf_buf_init(&msg, 8192, false);
        s = audit_head_message(head, &msg);
        if (cf_ok(s)) {
                s = cf_verify(pk, cf_buf_slice(&msg), cf_slice_make(sig, sizeof(sig)));
        }
        cf_buf_done(&msg);
        return s;
}

cf_status audit_cas_report_data(const uint8_t key_id[static CF_SHA256_SIZE],
                                const uint8_t audit_key[static AUDIT_KEY_SIZE],
                                struct cf_slice nonce, uint8_t out[static CF_SHA512_SIZE])
{
        struct cf_slice parts[4] = {cf_slice_str(AUDIT_CAS_ATTESTATION_DOMAIN),
                                    cf_slice_make(key_id, CF_SHA256_SIZE),
                                    cf_slice_make(audit_key, AUDIT_KEY_SIZE), nonce};

        return cf_sha512(parts, 4, out);
}

/* ---- verdicts ------------------------------------------------------------------------- */

const char *audit_problem_name(enum audit_problem p)
{
        switch (p) {
        case AUDIT_VALID:
                return "valid";
        case AUDIT_MALFORMED:
                return "malformed";
        case AUDIT_KEY:
                return "audit_key";
        case AUDIT_SIGNATURE:
                return "signature";
        case AUDIT_DELETED:
                return "deleted";
        case AUDIT_REORDERED:
                return "reordered";
        case AUDIT_DUPLICATE:
                return "duplicate";
        case AUDIT_EDITED:
                return "edited";
        case AUDIT_TRUNCATED:
                return "truncated";
        case AUDIT_UNSIGNED:
                return "unsigned";
        case AUDIT_FORK:
                return "fork";
        case AUDIT_ROLLBACK:
                return "rollback";
        default:
                return "unknown";
        }
}

__attribute__((format(printf, 4, 5))) static cf_status
problem(struct audit_verdict *out, enum audit_problem p, uint64_t seq, const char *fmt, ...)
{
        va_list ap;

        out->problem = p;
        out->seq = seq;
        va_start(ap, fmt);
        vsnprintf(out->message, sizeof(out->message), fmt, ap);
        va_end(ap);
        return cf_fail(CF_E_TAMPERED);
}

/* What the checks need of one entry. */
struct entry_info {
        uint64_t seq;
        uint8_t hash[CF_SHA256_SIZE];
        uint8_t prev[CF_SHA256_SIZE];
};

struct chain {
        const json_t *head;
        uint64_t head_seq;
        int64_t head_time;
        uint8_t head_hash[CF_SHA256_SIZE];
        uint8_t key[AUDIT_KEY_SIZE];
        struct entry_info *e;
        size_t n;
};

static void chain_done(struct chain *c)
{
        free(c->e);
        c->e = NULL;
}

static cf_status hex32(const json_t *v, uint8_t out[static CF_SHA256_SIZE])
{
        const char *s = json_string_value(v);

        ENSURE(s != NULL, CF_E_SCHEMA);
        return cf_hex_decode(cf_slice_str(s), out, CF_SHA256_SIZE);
}

/* Reads the document's envelope and head (no signature check). */
static cf_status read_envelope(const json_t *doc, struct chain *c, struct audit_verdict *out)
{
        static const char *const keys[] = {"format", "audit_key", "head", "signature", "entries"};
        const char *fmt = json_string_value(json_object_get(doc, "format"));
        const char *key = json_string_value(json_object_get(doc, "audit_key"));
        const json_t *head = json_object_get(doc, "head");
        struct cf_buf tmp;
        cf_status s;

        if (!has_exactly(doc, keys, 5) || fmt == NULL || key == NULL ||
            !json_is_array(json_object_get(doc, "entries"))) {
                return problem(out, AUDIT_MALFORMED, 0,
                               "the file is not a downloaded audit chain (expected the keys "
                               "format, audit_key, head, signature and entries)");
        }
        if (strcmp(fmt, AUDIT_FORMAT) != 0) {
                return problem(out, AUDIT_MALFORMED, 0, "unknown format '%.64s' (expected %s)", fmt,
                               AUDIT_FORMAT);
        }
        if (!is_lower_hex(key, 2 * AUDIT_KEY_SIZE) ||
            !cf_ok(cf_hex_decode(cf_slice_str(key), c->key, sizeof(c->key)))) {
                return problem(out, AUDIT_MALFORMED, 0, "'audit_key' is not 64 hex digits");
        }
        snprintf(out->audit_key, sizeof(out->audit_key), "%s", key);
        cf_buf_init(&tmp, 8192, false);
        s = audit_head_message(head, &tmp);
        cf_buf_done(&tmp);
        if (!cf_ok(s) || !cf_ok(hex32(json_object_get(head, "hash"), c->head_hash)) ||
            !cf_ok(cf_parse_rfc3339(json_string_value(json_object_get(head, "time")),
                                    &c->head_time))) {
                return problem(out, AUDIT_MALFORMED, 0,
                               "the head is not {\"seq\", \"hash\", \"time\"} in canonical form");
        }
        c->head = head;
        c->head_seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
        out->head_seq = c->head_seq;
        snprintf(out->head_hash, sizeof(out->head_hash), "%s",
                 json_string_value(json_object_get(head, "hash")));
        snprintf(out->head_time, sizeof(out->head_time), "%s",
                 json_string_value(json_object_get(head, "time")));
        return CF_OK;
}

/* Canonicalises and hashes every entry into c->e. */
static cf_status read_entries(const json_t *doc, struct chain *c, struct audit_verdict *out)
{
        const json_t *entries = json_object_get(doc, "entries");
        size_t n = json_array_size(entries);
        struct cf_buf canon;
        cf_status s = CF_OK;

        if (n > AUDIT_ENTRIES_MAX) {
                return problem(out, AUDIT_MALFORMED, 0, "more than %u entries", AUDIT_ENTRIES_MAX);
        }
        c->e = calloc(n ? n : 1, sizeof(*c->e));
        ENSURE(c->e != NULL, CF_E_NOMEM);
        c->n = n;
        out->n_entries = n;
        cf_buf_init(&canon, AUDIT_ENTRY_MAX, false);
        for (size_t i = 0; i < n && cf_ok(s); i++) {
                const json_t *e = json_array_get(entries, i);
                const json_t *seq = json_object_get(e, "seq");
                struct cf_slice part;

                cf_buf_reset(&canon);
                s = audit_entry_canonical(e, &canon);
                if (s.code == CF_E_NOMEM) {
                        break;
                }
                if (!cf_ok(s)) {
                        uint64_t label = is_seq(seq, 1) ? (uint64_t)json_integer_value(seq) : i + 1;
                        s = problem(out, AUDIT_MALFORMED, label,
                                    "entry %llu (position %zu): not a canonical audit entry "
                                    "(wrong keys, types, field syntax or size)",
                                    (unsigned long long)label, i + 1);
                        break;
                }
                part = cf_buf_slice(&canon);
                c->e[i].seq = (uint64_t)json_integer_value(seq);
                s = cf_sha256(&part, 1, c->e[i].hash);
                if (cf_ok(s)) {
                        s = hex32(json_object_get(e, "prev"), c->e[i].prev);
                }
        }
        cf_buf_done(&canon);
        return s;
}

/* Entry i must have seq i + 1; otherwise says whether an entry is missing, out of order or
 * repeated, naming the first expected seq that is not where it should be. */
static cf_status check_sequence(const struct chain *c, struct audit_verdict *out)
{
        for (size_t i = 0; i < c->n; i++) {
                uint64_t want = i + 1, got = c->e[i].seq;

                if (got == want) {
                        continue;
                }
                /* Entries 1..i are in place, so a smaller seq was seen already. */
                if (got < want) {
                        return problem(out, AUDIT_DUPLICATE, got,
                                       "entry %llu: appears twice (again at position %zu)",
                                       (unsigned long long)got, i + 1);
                }
                for (size_t j = i + 1; j < c->n; j++) {
                        if (c->e[j].seq == want) {
                                return problem(out, AUDIT_REORDERED, want,
                                               "entry %llu: out of order (it comes after entry "
                                               "%llu, at position %zu)",
                                               (unsigned long long)want, (unsigned long long)got,
                                               j + 1);
                        }
                }
                return problem(out, AUDIT_DELETED, want,
                               "entry %llu: missing (deleted): entry %llu follows entry %llu",
                               (unsigned long long)want, (unsigned long long)got,
                               (unsigned long long)(want - 1));
        }
        return CF_OK;
}

/* From the signed head backwards: the head commits to the last entry's hash and each entry
 * to its predecessor's, so the first mismatch names the entry whose bytes changed. */
static cf_status check_links(const struct chain *c, struct audit_verdict *out)
{
        static const uint8_t zero[CF_SHA256_SIZE];

        if (c->head_seq > c->n) {
                return problem(out, AUDIT_TRUNCATED, c->n + 1,
                               "entry %llu: missing at the end (truncated): the signed head "
                               "covers %llu entries, the file has %zu",
                               (unsigned long long)(c->n + 1), (unsigned long long)c->head_seq,
                               c->n);
        }
        if (c->head_seq < c->n) {
                return problem(out, AUDIT_UNSIGNED, c->head_seq + 1,
                               "entry %llu: not covered by the signed head (which ends at entry "
                               "%llu)",
                               (unsigned long long)(c->head_seq + 1),
                               (unsigned long long)c->head_seq);
        }
        if (c->n == 0) {
                if (!cf_slice_eq(cf_slice_make(c->head_hash, 32), cf_slice_make(zero, 32))) {
                        return problem(out, AUDIT_MALFORMED, 0,
                                       "the head of an empty chain must have the zero hash");
                }
                return CF_OK;
        }
        if (!cf_slice_eq(cf_slice_make(c->e[c->n - 1].hash, 32), cf_slice_make(c->head_hash, 32))) {
                return problem(out, AUDIT_EDITED, c->n,
                               "entry %zu: edited: its hash differs from the signed head's", c->n);
        }
        for (size_t k = c->n - 1; k >= 1; k--) {
                if (!cf_slice_eq(cf_slice_make(c->e[k].prev, 32),
                                 cf_slice_make(c->e[k - 1].hash, 32))) {
                        return problem(out, AUDIT_EDITED, k,
                                       "entry %zu: edited: its hash differs from the 'prev' "
                                       "link of entry %zu",
                                       k, k + 1);
                }
        }
        if (!cf_slice_eq(cf_slice_make(c->e[0].prev, 32), cf_slice_make(zero, 32))) {
                return problem(out, AUDIT_EDITED, 1, "entry 1: edited: its 'prev' is not zero");
        }
        return CF_OK;
}

static cf_status verify_into(const json_t *doc, const uint8_t *pinned_key, struct chain *c,
                             struct audit_verdict *out)
{
        cf_status s;

        memset(out, 0, sizeof(*out));
        TRY(read_envelope(doc, c, out));
        if (pinned_key != NULL &&
            !cf_slice_eq(cf_slice_make(pinned_key, AUDIT_KEY_SIZE), cf_slice_make(c->key, 32))) {
                return problem(out, AUDIT_KEY, 0,
                               "the chain is signed by audit key %.16s..., not the expected one",
                               out->audit_key);
        }
        s = audit_head_verify(c->head, json_string_value(json_object_get(doc, "signature")),
                              c->key);
        if (s.code == CF_E_NOMEM || s.code == CF_E_CRYPTO) {
                return s;
        }
        if (!cf_ok(s)) {
                return problem(out, AUDIT_SIGNATURE, 0,
                               "the head signature does not verify with audit key %.16s...",
                               out->audit_key);
        }
        TRY(read_entries(doc, c, out));
        TRY(check_sequence(c, out));
        TRY(check_links(c, out));
        snprintf(out->message, sizeof(out->message),
                 "valid: %zu entries, head %.16s... signed at %s", c->n, out->head_hash,
                 out->head_time);
        return CF_OK;
}

cf_status audit_verify_chain(const json_t *doc, const uint8_t *pinned_key,
                             struct audit_verdict *out)
{
        struct chain c = {0};
        cf_status s = verify_into(doc, pinned_key, &c, out);

        chain_done(&c);
        return s;
}

static cf_status compare(const struct chain *a, const struct chain *b, struct audit_verdict *out)
{
        size_t common = a->n < b->n ? a->n : b->n;
        const struct chain *shorter = a->n < b->n ? a : b, *longer = a->n < b->n ? b : a;

        if (!cf_slice_eq(cf_slice_make(a->key, 32), cf_slice_make(b->key, 32))) {
                return problem(out, AUDIT_KEY, 0,
                               "the two copies are signed by different audit keys");
        }
        for (size_t i = 0; i < common; i++) {
                if (!cf_slice_eq(cf_slice_make(a->e[i].hash, 32),
                                 cf_slice_make(b->e[i].hash, 32))) {
                        return problem(out, AUDIT_FORK, i + 1,
                                       "entry %zu: differs between the two copies (fork); they "
                                       "agree up to entry %zu",
                                       i + 1, i);
                }
        }
        if (a->n != b->n && shorter->head_time > longer->head_time) {
                return problem(out, AUDIT_ROLLBACK, shorter->n + 1,
                               "entry %zu: rolled back: the copy signed later has %zu entries, "
                               "the copy signed earlier has %zu",
                               shorter->n + 1, shorter->n, longer->n);
        }
        snprintf(out->message, sizeof(out->message),
                 "consistent: the copies agree on their %zu common entries%s", common,
                 a->n == b->n ? " and have the same head" : "; the longer one extends the other");
        return CF_OK;
}

cf_status audit_compare_chains(const json_t *a, const json_t *b, struct audit_verdict *out)
{
        struct chain ca = {0}, cb = {0};
        struct audit_verdict tmp;
        cf_status s;

        s = verify_into(a, NULL, &ca, &tmp);
        if (cf_ok(s)) {
                s = verify_into(b, NULL, &cb, out);
        }
        if (cf_ok(s)) {
                memset(out, 0, sizeof(*out));
                out->n_entries = ca.n;
                s = compare(&ca, &cb, out);
        } else if (s.code == CF_E_TAMPERED) {
                memset(out, 0, sizeof(*out));
                s = problem(out, AUDIT_MALFORMED, 0, "compare valid chains only");
        }
        chain_done(&ca);
        chain_done(&cb);
        return s;
}
