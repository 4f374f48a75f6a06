/* The storage backend interface under the sealing layer (store.c).
 *
 * A backend stores opaque sealed blobs under (table, key, version) and knows nothing about
 * keys or cryptography, so a PostgreSQL backend can be added beside SQLite. Everything a
 * backend returns comes from an untrusted file or server: the sealing layer authenticates
 * values and validates names again. Names passed in are already validated by store.c.
 *
 * Every operation takes the backend handle `be` made by the backend's open function. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"
#include "store/store.h"

/* Largest sealed blob: nonce || ciphertext || tag of a STORE_VALUE_MAX value. */
#define STORE_SEALED_MAX ((size_t)STORE_VALUE_MAX + 28u)

struct store_backend_ops {
        /* Appends the blob of one version to out. CF_E_NOT_FOUND; CF_E_TAMPERED when the row
         * is not a blob of at most STORE_SEALED_MAX bytes. */
        CF_FN (*get)(void *be, const char *table, const char *key, uint64_t version,
                     struct cf_buf *out);
        /* Inserts one version; CF_E_EXISTS if it exists. blob is borrowed for the call. */
        CF_FN (*put)(void *be, const char *table, const char *key, uint64_t version,
                     struct cf_slice blob);
        /* Ascending versions into out[0..max); CF_E_LIMIT if there are more than max. */
        CF_FN (*list_versions)(void *be, const char *table, const char *key, uint64_t *out,
                               size_t max, size_t *ret_n);
        /* Highest version; CF_E_NOT_FOUND when the key has none. */
        CF_FN (*latest_version)(void *be, const char *table, const char *key,
                                uint64_t *ret_version);
        /* Calls fn for each key of table starting with prefix, in byte order, with no
         * statement active while fn runs; stops at and returns fn's first non-OK status. */
        /* Removes every version of (table, key); CF_E_NOT_FOUND when there is none. */
        CF_FN (*delete_key)(void *be, const char *table, const char *key);
        CF_FN (*list_keys)(void *be, const char *table, const char *prefix, store_key_fn fn,
                           void *ctx);
        /* Starts a write transaction (takes the write lock). */
        CF_FN (*begin)(void *be);
        /* Commits; on failure the transaction is rolled back. */
        CF_FN (*commit)(void *be);
        /* Rolls back the open transaction; a no-op without one. */
        void (*rollback)(void *be);
        /* Rolls back any open transaction and frees the handle. NULL is a no-op. */
        void (*close)(void *be);
};

/* The SQLite backend (store_sqlite.c). */
extern const struct store_backend_ops store_sqlite_ops;

/* Opens or creates the SQLite file at path (mode 0600 when created; symlinks refused), sets
 * WAL mode, synchronous=FULL and a busy timeout, creates or checks the schema (CF_E_VERSION
 * when it is not exactly ours) and prepares the statements. *ret is released with
 * store_sqlite_ops.close. Not thread-safe: one handle per thread. */
CF_FN store_sqlite_open(const char *path, void **ret);

/* Wraps an open backend handle in a store with a copy of data_key. Consumes be: on failure
 * it is closed with ops->close. */
CF_FN store_open_backend(const struct store_backend_ops *ops, void *be,
                         const uint8_t data_key[static STORE_DATA_KEY_SIZE], struct store **ret);
