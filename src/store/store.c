/* The sealing layer of the store: validates names, seals values under the data key with an
 * AAD that binds (table, key, version), and enforces the version rules, over any backend.
 *
 * Nothing read from the backend is trusted: blobs are opened with cf_aead_open (tag checked
 * before any plaintext is released) and names are validated again. */
#include "store/store.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "crypto/crypto.h"
#include "store/store_backend.h"

#define STORE_AAD_LABEL "coffer-store-v1"
#define STORE_AAD_MAX   (sizeof(STORE_AAD_LABEL) - 1 + 4 + STORE_TABLE_MAX + 4 + STORE_KEY_MAX + 8)

_Static_assert(STORE_DATA_KEY_SIZE == CF_AEAD_KEY_SIZE, "data key is an AES-256-GCM key");
_Static_assert(STORE_SEALED_MAX == (size_t)STORE_VALUE_MAX + CF_AEAD_OVERHEAD,
               "sealed layout is nonce || ciphertext || tag");

struct store {
        const struct store_backend_ops *ops;
        void *be;
        struct cf_secret *key; /* the data key, in guarded memory */
        bool in_tx;            /* a store_begin is open */
        /* Writes of the open transaction, folded into one digest; written to the state row
         * at commit (see store_state). */
        bool tx_dirty;
        uint8_t tx_digest[CF_SHA256_SIZE];
        store_commit_fn on_commit;
        void *on_commit_ctx;
};

/* The state row: every committed write transaction adds one version whose sealed value is
 * the chained digest SHA-256(previous digest || digest of the transaction's writes). Its
 * version is the store's monotonic state version, which the freshness anchor records. */
#define STATE_TABLE "coffer.state"
#define STATE_KEY   "state"

static bool table_char_ok(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
}

static bool key_char_ok(char c)
{
        return c >= 0x20 && c <= 0x7e;
}

/* Checks a NUL-terminated name without reading past max + 1 bytes. */
static CF_FN check_name(const char *s, size_t min, size_t max, bool (*ok)(char))
{
        size_t n;

        ENSURE(s != NULL, CF_E_INVALID_ARG);
        n = strnlen(s, max + 1);
        ENSURE(n >= min && n <= max, CF_E_INVALID_ARG);
        for (size_t i = 0; i < n; i++) {
                ENSURE(ok(s[i]), CF_E_INVALID_ARG);
        }
        return CF_OK;
}

static CF_FN check_table_key(const struct store *s, const char *table, const char *key)
{
        ENSURE(s != NULL, CF_E_INVALID_ARG);
        TRY(check_name(table, 1, STORE_TABLE_MAX, table_char_ok));
        return check_name(key, 1, STORE_KEY_MAX, key_char_ok);
}

static CF_FN append_be(struct cf_buf *b, uint64_t v, size_t n)
{
        uint8_t tmp[8];

        for (size_t i = 0; i < n; i++) {
                tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
        }
        return cf_buf_append(b, tmp, n);
}

/* AAD = "coffer-store-v1" || u32 len(table) || table || u32 len(key) || key || u64 version,
 * all big-endian: length prefixes make the encoding injective, so no two distinct
 * (table, key, version) share an AAD. */
static CF_FN build_aad(const char *table, const char *key, uint64_t version, struct cf_buf *aad)
{
        size_t tlen = strlen(table), klen = strlen(key);

        TRY(cf_buf_append_str(aad, STORE_AAD_LABEL));
        TRY(append_be(aad, tlen, 4));
        TRY(cf_buf_append(aad, table, tlen));
        TRY(append_be(aad, klen, 4));
        TRY(cf_buf_append(aad, key, klen));
        return append_be(aad, version, 8);
}

cf_status store_open_backend(const struct store_backend_ops *ops, void *be,
                             const uint8_t data_key[static STORE_DATA_KEY_SIZE], struct store **ret)
{
        CF_AUTOFREE struct store *s = NULL;
        cf_status st;

        cf_assert(ops != NULL && be != NULL);
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
                ops->close(be);
                return cf_fail(CF_E_NOMEM);
        }
        st = cf_secret_new(STORE_DATA_KEY_SIZE, &s->key);
        if (!cf_ok(st)) {
                ops->close(be);
                return st;
        }
        memcpy(s->key->ptr, data_key, STORE_DATA_KEY_SIZE);
        s->ops = ops;
        s->be = be;
        *ret = TAKE_PTR(s);
        return CF_OK;
}

cf_status store_open_sqlite(const char *path, const uint8_t data_key[static STORE_DATA_KEY_SIZE],
                            struct store **ret)
{
        void *be = NULL;

        ENSURE(path != NULL && data_key != NULL && ret != NULL, CF_E_INVALID_ARG);
        TRY(store_sqlite_open(path, &be));
        return store_open_backend(&store_sqlite_ops, be, data_key, ret);
}

void store_close(struct store *s)
{
        if (s == NULL) {
                return;
        }
        s->ops->close(s->be);
        s->key = cf_secret_free(s->key);
        free(s);
}

/* Folds one write into the transaction digest: SHA-256(digest || op || table || 0 || key ||
 * 0 || version || SHA-256(sealed blob)). */
static CF_FN note_write(struct store *s, const char *op, const char *table, const char *key,
                        uint64_t version, struct cf_slice blob)
{
        uint8_t blob_hash[CF_SHA256_SIZE], v[8];
        struct cf_slice parts[8];

        TRY(cf_sha256(&blob, 1, blob_hash));
        for (size_t i = 0; i < 8; i++) {
                v[i] = (uint8_t)(version >> (8 * (7 - i)));
        }
        parts[0] = cf_slice_make(s->tx_digest, sizeof(s->tx_digest));
        parts[1] = cf_slice_str(op);
        parts[2] = cf_slice_make(table, strlen(table) + 1);
        parts[3] = cf_slice_make(key, strlen(key) + 1);
        parts[4] = cf_slice_make(v, sizeof(v));
        parts[5] = cf_slice_make(blob_hash, sizeof(blob_hash));
        TRY(cf_sha256(parts, 6, s->tx_digest));
        s->tx_dirty = true;
        return CF_OK;
}

static CF_FN seal(struct store *s, const char *table, const char *key, uint64_t version,
                  struct cf_slice value, struct cf_buf *blob)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf aad;

        cf_buf_init(&aad, STORE_AAD_MAX, false);
        TRY(build_aad(table, key, version, &aad));
        return cf_aead_seal(s->key->ptr, cf_buf_slice(&aad), value, blob);
}

/* Appends the state row for the transaction's writes; the caller holds the write lock. */
static CF_FN write_state(struct store *s, uint64_t *ret_version)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf blob;
        uint8_t prev[CF_SHA256_SIZE], next[CF_SHA256_SIZE];
        struct cf_slice parts[2];
        uint64_t version = 0;

        cf_buf_init(&blob, STORE_SEALED_MAX, false);
        TRY(store_state(s, &version, prev));
        parts[0] = cf_slice_make(prev, sizeof(prev));
        parts[1] = cf_slice_make(s->tx_digest, sizeof(s->tx_digest));
        TRY(cf_sha256(parts, 2, next));
        TRY(seal(s, STATE_TABLE, STATE_KEY, version + 1, cf_slice_make(next, sizeof(next)), &blob));
        TRY(s->ops->put(s->be, STATE_TABLE, STATE_KEY, version + 1, cf_buf_slice(&blob)));
        *ret_version = version + 1;
        return CF_OK;
}

/* Ends a write transaction: state row, commit, then the commit hook. */
static CF_FN finish(struct store *s)
{
        uint64_t version = 0;
        bool dirty = s->tx_dirty;
        cf_status st = CF_OK;

        if (dirty) {
                st = write_state(s, &version);
        }
        s->tx_dirty = false;
        memset(s->tx_digest, 0, sizeof(s->tx_digest));
        if (!cf_ok(st)) {
                s->ops->rollback(s->be);
                return st;
        }
        TRY(s->ops->commit(s->be));
        if (dirty && s->on_commit != NULL) {
                s->on_commit(s->on_commit_ctx, version);
        }
        return CF_OK;
}

static void abandon(struct store *s)
{
        s->ops->rollback(s->be);
        s->tx_dirty = false;
        memset(s->tx_digest, 0, sizeof(s->tx_digest));
}

/* The version check and the insert; the caller holds the write lock (a transaction). */
static CF_FN put_locked(struct store *s, const char *table, const char *key, uint64_t version,
                        struct cf_slice blob)
{
        uint64_t latest = 0;
        cf_status st = s->ops->latest_version(s->be, table, key, &latest);

        if (st.code == CF_E_NOT_FOUND) {
                latest = 0;
        } else {
                TRY(st);
        }
        ENSURE(version > latest, CF_E_EXISTS);
        ENSURE(version == latest + 1, CF_E_CONFLICT);
        TRY(s->ops->put(s->be, table, key, version, blob));
        return note_write(s, "put", table, key, version, blob);
}

cf_status store_put(struct store *s, const char *table, const char *key, uint64_t version,
                    struct cf_slice value)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf aad, blob;
        cf_status st;

        cf_buf_init(&aad, STORE_AAD_MAX, false);
        cf_buf_init(&blob, STORE_SEALED_MAX, false);
        TRY(check_table_key(s, table, key));
        ENSURE(strcmp(table, STATE_TABLE) != 0, CF_E_PERMISSION);
        ENSURE(version >= 1, CF_E_INVALID_ARG);
        ENSURE(version <= STORE_VERSION_MAX, CF_E_LIMIT);
        ENSURE(value.size <= STORE_VALUE_MAX, CF_E_LIMIT);
        ENSURE(value.ptr != NULL || value.size == 0, CF_E_INVALID_ARG);
        /* Seal before taking the write lock: encryption of a large value needs no lock. */
        TRY(build_aad(table, key, version, &aad));
        TRY(cf_aead_seal(s->key->ptr, cf_buf_slice(&aad), value, &blob));
        if (s->in_tx) {
                return put_locked(s, table, key, version, cf_buf_slice(&blob));
        }
        TRY(s->ops->begin(s->be));
        st = put_locked(s, table, key, version, cf_buf_slice(&blob));
        if (!cf_ok(st)) {
                abandon(s);
                return st;
        }
        return finish(s);
}

cf_status store_latest(struct store *s, const char *table, const char *key, uint64_t *ret_version)
{
        TRY(check_table_key(s, table, key));
        ENSURE(ret_version != NULL, CF_E_INVALID_ARG);
        return s->ops->latest_version(s->be, table, key, ret_version);
}

cf_status store_delete(struct store *s, const char *table, const char *key)
{
        cf_status st;

        TRY(check_table_key(s, table, key));
        ENSURE(strcmp(table, STATE_TABLE) != 0, CF_E_PERMISSION);
        if (!s->in_tx) {
                TRY(s->ops->begin(s->be));
        }
        st = s->ops->delete_key(s->be, table, key);
        if (cf_ok(st)) {
                st = note_write(s, "delete", table, key, 0, cf_slice_make(NULL, 0));
        }
        if (s->in_tx) {
                return st;
        }
        if (!cf_ok(st)) {
                abandon(s);
                return st;
        }
        return finish(s);
}

cf_status store_state(struct store *s, uint64_t *ret_version, uint8_t ret_digest[static 32])
{
        CF_CLEANUP(cf_buf_done) struct cf_buf v;
        uint64_t version = 0;
        cf_status st;

        cf_buf_init(&v, 64, false);
        st = store_get(s, STATE_TABLE, STATE_KEY, 0, &v, &version);
        if (st.code == CF_E_NOT_FOUND) {
                *ret_version = 0;
                memset(ret_digest, 0, 32);
                return CF_OK;
        }
        TRY(st);
        ENSURE(v.size == 32, CF_E_TAMPERED);
        memcpy(ret_digest, v.ptr, 32);
        *ret_version = version;
        return CF_OK;
}

void store_set_commit_hook(struct store *s, store_commit_fn fn, void *ctx)
{
        s->on_commit = fn;
        s->on_commit_ctx = ctx;
}

cf_status store_get(struct store *s, const char *table, const char *key, uint64_t version,
                    struct cf_buf *out, uint64_t *ret_version)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf aad, blob;
        uint64_t v = version;
        cf_status st;

        cf_buf_init(&aad, STORE_AAD_MAX, false);
        cf_buf_init(&blob, STORE_SEALED_MAX, false);
        TRY(check_table_key(s, table, key));
        ENSURE(out != NULL, CF_E_INVALID_ARG);
        if (v == 0) {
                TRY(s->ops->latest_version(s->be, table, key, &v));
        }
        /* A version SQLite cannot hold cannot exist. */
        ENSURE(v <= STORE_VERSION_MAX, CF_E_NOT_FOUND);
        TRY(s->ops->get(s->be, table, key, v, &blob));
        TRY(build_aad(table, key, v, &aad));
        st = cf_aead_open(s->key->ptr, cf_buf_slice(&aad), cf_buf_slice(&blob), out);
        /* A tag mismatch here means the row was edited, moved or sealed under another key. */
        ENSURE(st.code != CF_E_MAC_INVALID, CF_E_TAMPERED);
        TRY(st);
        if (ret_version != NULL) {
                *ret_version = v;
        }
        return CF_OK;
}

cf_status store_versions(struct store *s, const char *table, const char *key, uint64_t *out,
                         size_t max, size_t *ret_n)
{
        size_t n = 0;

        TRY(check_table_key(s, table, key));
        ENSURE(ret_n != NULL && (out != NULL || max == 0), CF_E_INVALID_ARG);
        TRY(s->ops->list_versions(s->be, table, key, out, max, &n));
        *ret_n = n;
        return CF_OK;
}

struct list_ctx {
        const char *prefix;
        size_t prefix_size;
        store_key_fn fn;
        void *ctx;
};

/* Re-validates what the backend returns before the caller sees it. */
static cf_status list_check(void *ctx, const char *key, uint64_t latest_version)
{
        const struct list_ctx *lc = ctx;

        ENSURE(cf_ok(check_name(key, 1, STORE_KEY_MAX, key_char_ok)), CF_E_TAMPERED);
        ENSURE(strncmp(key, lc->prefix, lc->prefix_size) == 0, CF_E_TAMPERED);
        ENSURE(latest_version >= 1 && latest_version <= STORE_VERSION_MAX, CF_E_TAMPERED);
        return lc->fn(lc->ctx, key, latest_version);
}

cf_status store_list(struct store *s, const char *table, const char *prefix, store_key_fn fn,
                     void *ctx)
{
        struct list_ctx lc = {.prefix = prefix, .fn = fn, .ctx = ctx};

        ENSURE(s != NULL && fn != NULL, CF_E_INVALID_ARG);
        TRY(check_name(table, 1, STORE_TABLE_MAX, table_char_ok));
        TRY(check_name(prefix, 0, STORE_KEY_MAX, key_char_ok));
        lc.prefix_size = strlen(prefix);
        return s->ops->list_keys(s->be, table, prefix, list_check, &lc);
}

cf_status store_begin(struct store *s)
{
        ENSURE(s != NULL && !s->in_tx, CF_E_INVALID_ARG);
        TRY(s->ops->begin(s->be));
        s->in_tx = true;
        return CF_OK;
}

cf_status store_commit(struct store *s)
{
        ENSURE(s != NULL && s->in_tx, CF_E_INVALID_ARG);
        /* The backend rolls back a failed commit, so the transaction is over either way. */
        s->in_tx = false;
        return finish(s);
}

void store_rollback(struct store *s)
{
        if (s == NULL || !s->in_tx) {
                return;
        }
        abandon(s);
        s->in_tx = false;
}
