/* The sealed, versioned key-value store (ARCHITECTURE.md §8).
 *
 * The backing database is untrusted: the host can read, copy, edit and replace it. Every
 * value is sealed with AES-256-GCM under a 32-byte data key, and the AAD binds table, key
 * and version, so an edited value, or a value moved to another row, fails with
 * CF_E_TAMPERED and is never served. Deleting rows or restoring an older copy of the whole
 * database is not detected here: that is the freshness anchor's job (docs/formats/store.md).
 *
 * Names: a table is 1..STORE_TABLE_MAX bytes of [A-Za-z0-9_.-]; a key is 1..STORE_KEY_MAX
 * bytes of printable ASCII (0x20..0x7e, '/' allowed). Anything else is CF_E_INVALID_ARG.
 *
 * Thread-safety: a handle is not thread-safe (SQLite is opened without its mutexes); use
 * one handle per thread. Several handles, in one or several processes, may share a file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"

struct store;

#define STORE_TABLE_MAX     64                    /* bytes of a table name */
#define STORE_KEY_MAX       512                   /* bytes of a key name */
#define STORE_VALUE_MAX     (8u << 20)            /* bytes of a plaintext value */
#define STORE_VERSION_MAX   ((uint64_t)INT64_MAX) /* SQLite integers are signed 64-bit */
#define STORE_DATA_KEY_SIZE 32

/* Opens (creating it with mode 0600 if needed) the SQLite store at path and keeps a copy of
 * data_key in guarded memory (the caller still owns and wipes its own copy). The caller
 * owns *ret and frees it with store_close(). Requires cf_crypto_init(). Errors:
 * CF_E_INVALID_ARG, CF_E_IO (cannot create the file), CF_E_VERSION (unknown schema),
 * CF_E_STORE (SQLite failure, not a database), CF_E_NOMEM. */
CF_FN store_open_sqlite(const char *path, const uint8_t data_key[static STORE_DATA_KEY_SIZE],
                        struct store **ret);

/* Closes the handle, rolling back an open transaction, and wipes the key copy. NULL is a
 * no-op. */
void store_close(struct store *s);

/* Writes version `version` of (table, key), sealed. Versions start at 1 and must be exactly
 * latest + 1: CF_E_EXISTS if version <= latest (that version exists), CF_E_CONFLICT if it
 * skips ahead, CF_E_INVALID_ARG for 0 or bad names, CF_E_LIMIT for a value larger than
 * STORE_VALUE_MAX or a version above STORE_VERSION_MAX, CF_E_STORE, CF_E_TIMEOUT (the file
 * stayed locked by another writer). Outside a transaction the check and the write are one
 * atomic transaction of their own. value is borrowed for the call. */
CF_FN store_put(struct store *s, const char *table, const char *key, uint64_t version,
                struct cf_slice value);

/* Latest version number of (table, key); CF_E_NOT_FOUND when none. The number itself is
 * not authenticated (see the header comment); store_get authenticates what it serves. */
CF_FN store_latest(struct store *s, const char *table, const char *key, uint64_t *ret_version);

/* The store's state: a monotonic version, increased by every committed write transaction,
 * and a chained digest of everything written (both authenticated like any value). A store
 * with no writes is at version 0 with an all-zero digest. The freshness anchor records the
 * version so that starting on an older copy of the store is refused. */
CF_FN store_state(struct store *s, uint64_t *ret_version, uint8_t ret_digest[static 32]);
/* Called after each committed write transaction with the new state version (on the thread
 * that committed). */
typedef void (*store_commit_fn)(void *ctx, uint64_t state_version);
void store_set_commit_hook(struct store *s, store_commit_fn fn, void *ctx);

/* Removes every version of (table, key). Deletion is not authenticated by this layer: the
 * host can delete rows too; detecting that is the freshness anchor's job. */
CF_FN store_delete(struct store *s, const char *table, const char *key);

/* Reads and authenticates one version (0 = latest) and appends the plaintext to out; the
 * caller decides whether out is a secret buffer, and out->max bounds the value. On success
 * *ret_version (may be NULL) is the version served. Errors: CF_E_NOT_FOUND, CF_E_TAMPERED
 * (tag or AAD mismatch, malformed row), CF_E_LIMIT (out too small), CF_E_STORE. Nothing is
 * appended on failure. */
CF_FN store_get(struct store *s, const char *table, const char *key, uint64_t version,
                struct cf_buf *out, uint64_t *ret_version);

/* Lists the version numbers of (table, key) in ascending order into out[0..max) and sets
 * *ret_n (0 when the key does not exist). CF_E_LIMIT when there are more than max versions;
 * out's contents are unspecified on failure. The numbers are not authenticated. */
CF_FN store_versions(struct store *s, const char *table, const char *key, uint64_t *out, size_t max,
                     size_t *ret_n);

/* Called once per key by store_list; key is borrowed for the call only. Returning non-OK
 * stops the listing and that status is returned by store_list. */
typedef cf_status (*store_key_fn)(void *ctx, const char *key, uint64_t latest_version);

/* Calls fn for each key of table that starts with prefix ("" = all), in byte order, with
 * its latest version number (not authenticated). fn may call other store functions on the
 * same handle: no database statement is active while fn runs. Errors: CF_E_INVALID_ARG,
 * CF_E_TAMPERED (a key name in the database is not a valid name), CF_E_STORE, or fn's. */
CF_FN store_list(struct store *s, const char *table, const char *prefix, store_key_fn fn,
                 void *ctx);

/* Transactions group several puts atomically (BEGIN IMMEDIATE: the write lock is taken at
 * begin). Nesting, or committing without a transaction, is CF_E_INVALID_ARG. A failed
 * commit rolls back and returns CF_E_STORE or CF_E_TIMEOUT; either way the transaction is
 * over. A put that fails inside a transaction leaves the transaction open. */
CF_FN store_begin(struct store *s);
CF_FN store_commit(struct store *s);
/* Discards the open transaction; a no-op without one. */
void store_rollback(struct store *s);
