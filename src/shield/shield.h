/* Shielded volumes: an encrypted, authenticated, rollback-protected file store over an
 * untrusted backing directory (ARCHITECTURE.md §9; byte layout in docs/formats/volume.md).
 *
 * A volume is a set of files and directories named by paths ("a/b/c"). Everything the
 * library writes to the backing storage is ciphertext or authenticated metadata; file
 * names are encrypted (backing files are named by random ids). Every read verifies the
 * chunk's tree path up to the root in the authenticated manifest before any plaintext is
 * returned. The volume tag (SHA-256 of the sealed manifest record) names one consistent
 * state; the caller (cofferd's freshness protocol) keeps it and hands it back at open.
 *
 * Storage reaches the library through struct shield_storage_ops, so tests and fuzzers run
 * in memory (shield_mem_*) and real volumes use a directory (shield_posix_*).
 *
 * Durability: writes become part of the durable, tagged state only at
 * shield_volume_commit (a record appended to the volume journal). After a crash the volume
 * opens at the last committed state (a read-write open replays the journal into the backing
 * files, a read-only one into memory); writes made after it are lost as a whole (never
 * half-applied).
 *
 * Thread-safety: every function taking a volume or a file handle locks the volume's mutex,
 * so handles of one volume may be used from several threads. One volume must not be opened
 * twice at the same time over the same backing storage (by this or another process).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Limits (named, checked on every input, including the decrypted manifest). */
#define SHIELD_KEY_SIZE         32u                  /* volume key (AES-256) */
#define SHIELD_TAG_SIZE         32u                  /* volume tag (SHA-256) */
#define SHIELD_CHUNK_SIZE       4096u                /* plaintext bytes per chunk */
#define SHIELD_FILE_SIZE_MAX    ((uint64_t)64 << 30) /* 64 GiB per file */
#define SHIELD_FILES_MAX        65536u               /* files + directories per volume */
#define SHIELD_PATH_MAX         1024u                /* bytes in a path, no NUL */
#define SHIELD_NAME_MAX         255u                 /* bytes in one path component */
#define SHIELD_CACHE_NODES      1024u /* cached tree nodes per open file (3 MiB at most) */
#define SHIELD_CACHE_DEFAULT    ((size_t)64 << 20) /* plaintext cache of a shielded mount */
#define SHIELD_CACHE_MAX        ((size_t)4 << 30)  /* largest plaintext cache per volume */
#define SHIELD_IO_MAX           ((size_t)1 << 30)  /* bytes in one pread/pwrite call */
#define SHIELD_STORAGE_NAME_MAX 64u                /* backing names ("manifest", ids) */

/* ---------------------------------------------------------------------------------------
 * Storage: a flat directory of named byte files. Everything it returns is untrusted.
 * Names given to it are short ASCII names made by the library ([0-9a-z.] only).
 * Every function receives the storage handle `st` passed to shield_volume_open. */

#define SHIELD_ST_CREATE 1u /* create the file if missing (mode 0600) */
#define SHIELD_ST_EXCL   2u /* with CREATE: fail with CF_E_EXISTS if it exists */
#define SHIELD_ST_TRUNC  4u /* truncate to 0 bytes on open */

/* Called by list for every name in the backing directory; a non-OK status stops the list. */
typedef cf_status (*shield_name_fn)(void *ctx, const char *name);

struct shield_storage_ops {
        /* Opens a backing file for reading and writing; CF_E_NOT_FOUND when it is missing
         * and SHIELD_ST_CREATE is not given. *ret is released with close. */
        cf_status (*open)(void *st, const char *name, unsigned flags, void **ret);
        /* Closes a handle from open. NULL is a no-op. */
        void (*close)(void *st, void *h);
        /* Reads up to size bytes at off; *ret_n < size only at end of file. */
        cf_status (*pread)(void *st, void *h, void *buf, size_t size, uint64_t off, size_t *ret_n);
        /* Writes all size bytes at off (extending the file, zero-filling any gap). */
        cf_status (*pwrite)(void *st, void *h, const void *buf, size_t size, uint64_t off);
        cf_status (*size)(void *st, void *h, uint64_t *ret);
        cf_status (*truncate)(void *st, void *h, uint64_t size);
        /* Makes the file's data durable. */
        cf_status (*fsync)(void *st, void *h);
        /* Atomically replaces `to` with `from`. */
        cf_status (*rename)(void *st, const char *from, const char *to);
        /* CF_E_NOT_FOUND when missing. */
        cf_status (*unlink)(void *st, const char *name);
        /* Makes renames, creations and removals in the directory durable. */
        cf_status (*sync_dir)(void *st);
        /* Calls fn for each regular file name (order unspecified). */
        cf_status (*list)(void *st, shield_name_fn fn, void *ctx);
};

/* POSIX storage over one directory: every name is opened with openat() under a directory
 * fd (O_NOFOLLOW, O_CLOEXEC, mode 0600); names with '/', "." or ".." or of more than
 * SHIELD_STORAGE_NAME_MAX bytes are refused with CF_E_INVALID_ARG. */
extern const struct shield_storage_ops shield_posix_ops;
struct shield_posix;
/* Opens dir (created with mode 0700 when create is true and it is missing). Symlinked
 * directories are refused. Free with shield_posix_close. */
CF_FN shield_posix_open(const char *dir, bool create, struct shield_posix **ret);
/* Closes the directory fd and frees st. NULL is a no-op. */
/* The same over a directory that is only read (offline inspection, read-only media): files
 * are opened O_RDONLY; creating, truncating, writing, renaming and unlinking are refused
 * with CF_E_PERMISSION. fsync and sync_dir still work (on descriptors opened read-only).
 * For volumes opened with SHIELD_OPEN_RDONLY. */
CF_FN shield_posix_open_rdonly(const char *dir, struct shield_posix **ret);
void shield_posix_close(struct shield_posix *st);

/* In-memory storage for tests and fuzzers (not thread-safe on its own; the volume's mutex
 * serialises access). */
extern const struct shield_storage_ops shield_mem_ops;
struct shield_mem;
CF_FN shield_mem_new(struct shield_mem **ret);
/* Frees every file. NULL is a no-op. */
void shield_mem_free(struct shield_mem *st);
/* Copies every file of src into a new storage (a snapshot, for rollback tests). */
CF_FN shield_mem_clone(const struct shield_mem *src, struct shield_mem **ret);
/* What a machine crash would leave of src, in a new storage: each file as of its last
 * fsync (empty if never synced), and only the files whose directory entry a sync_dir made
 * durable (a file created after the last sync_dir is gone). Unlinks and truncations are
 * kept as they are (not rolled back). Files written with shield_mem_put count as durable. */
CF_FN shield_mem_crash_clone(const struct shield_mem *src, struct shield_mem **ret);
/* Returns a borrowed view of a file's bytes, valid until the next change; CF_E_NOT_FOUND. */
CF_FN shield_mem_peek(struct shield_mem *st, const char *name, uint8_t **ret_ptr, size_t *ret_size);
/* Replaces (or creates) a file's bytes with a copy of data. */
CF_FN shield_mem_put(struct shield_mem *st, const char *name, const void *data, size_t size);
/* Fault injection: after n more successful mutating calls (pwrite, truncate, fsync,
 * rename, unlink, sync_dir, open with CREATE), every mutating call fails with CF_E_IO, as
 * if the machine had stopped. n = SIZE_MAX disables it. */
void shield_mem_fail_after(struct shield_mem *st, size_t n);
/* Number of files, and the i-th name (i < count; order is stable until a change). */
size_t shield_mem_count(const struct shield_mem *st);
const char *shield_mem_name(const struct shield_mem *st, size_t i);

/* ---------------------------------------------------------------------------------------
 * Volumes. */

struct shield_volume;
struct shield_file;

#define SHIELD_OPEN_CREATE 1u /* create an empty volume when there is no manifest */
#define SHIELD_OPEN_ACCEPT_ANY_TAG                                                                 \
        2u                    /* skip the rollback check (reinitialisable volumes,                 \
                               * offline tools); never for protected volumes */
#define SHIELD_OPEN_RDONLY 4u /* no writes at all (offline tools): no clean-up, journal in memory  \
                               */
/* Batched freshness (shield_volume_open_ex): also accept a manifest whose authenticated
 * generation is above min_generation, the newest generation cofferd has recorded. Only the
 * key holder can write such a manifest, and cofferd hears of every generation at most one
 * window after it was committed, so this admits at most the states of the last window. */
#define SHIELD_OPEN_ACCEPT_NEWER 8u
/* Reinitialisable volumes: a missing manifest (the volume was deleted or never written)
 * opens a new empty volume instead of CF_E_ROLLBACK; an existing manifest must still have
 * an expected tag. Needs SHIELD_OPEN_CREATE. */
#define SHIELD_OPEN_ACCEPT_EMPTY 16u
/* A reset authorised at cofferd: every backing file (an old manifest, data of an old key)
 * is removed before a new empty volume is created. Needs SHIELD_OPEN_CREATE and
 * n_expected == 0. */
#define SHIELD_OPEN_RESET 32u

/* Called by shield_volume_commit with the new tag after the new manifest is sealed and the
 * data it names is durable, and before the manifest replaces the old one: the freshness
 * protocol's "prepare" step. A non-OK status aborts the commit (the old manifest stays). */
typedef cf_status (*shield_prepare_fn)(void *ctx, const uint8_t tag[SHIELD_TAG_SIZE],
                                       uint64_t generation);

/* Opens the volume stored in `st` through `ops` (both borrowed: they must outlive the
 * volume) with the 32-byte volume key (copied; the caller wipes its own copy).
 *
 * Freshness: unless flags has SHIELD_OPEN_ACCEPT_ANY_TAG, the volume's tag must equal one
 * of expected_tags[0..n_expected) (the committed and the prepared tag), else CF_E_ROLLBACK.
 * With n_expected == 0 no manifest may exist yet (a new volume; needs SHIELD_OPEN_CREATE).
 * A missing manifest while tags are expected is CF_E_ROLLBACK too (the volume was deleted).
 *
 * A new volume exists only in memory until the first shield_volume_commit.
 * Unless SHIELD_OPEN_RDONLY, open also cleans up after a crash: it removes backing files
 * the manifest does not name and trims data files to the size the manifest implies.
 *
 * Errors: CF_E_NOT_FOUND (no manifest, no CREATE), CF_E_MAC_INVALID (manifest modified or
 * wrong key), CF_E_MALFORMED / CF_E_VERSION / CF_E_TRUNCATED (not a manifest of ours),
 * CF_E_ROLLBACK, CF_E_IO, CF_E_NOMEM. */
CF_FN shield_volume_open(const struct shield_storage_ops *ops, void *st,
                         const uint8_t key[SHIELD_KEY_SIZE], const uint8_t *const expected_tags[],
                         size_t n_expected, unsigned flags, struct shield_volume **ret);
/* shield_volume_open with batched freshness: with SHIELD_OPEN_ACCEPT_NEWER in flags, a
 * manifest whose tag is not expected is still accepted when its generation is greater than
 * min_generation (else CF_E_ROLLBACK). Other flags and errors as shield_volume_open. */
CF_FN shield_volume_open_ex(const struct shield_storage_ops *ops, void *st,
                            const uint8_t key[SHIELD_KEY_SIZE],
                            const uint8_t *const expected_tags[], size_t n_expected,
                            uint64_t min_generation, unsigned flags, struct shield_volume **ret);
/* The generation of the last committed (or opened) manifest: 0 for a new volume, then one
 * more per commit. Never fails. */
uint64_t shield_volume_generation(struct shield_volume *v);
/* Sets the budget of the volume's plaintext chunk cache in bytes (rounded down to whole
 * chunks, at most SHIELD_CACHE_MAX; 0, the default, turns it off and drops what it held).
 * The cache keeps chunks that were already authenticated, so a re-read costs a copy instead
 * of a pread and a decryption; it lives in anonymous memory excluded from core dumps and is
 * wiped when dropped. Writes keep cached chunks current; nothing else can change a chunk
 * while the volume is open (the backing directory is this handle's alone), so a cached chunk
 * is always the volume's current content. CF_E_NOMEM. */
CF_FN shield_volume_set_cache(struct shield_volume *v, size_t bytes);
/* Installs (or with fn == NULL removes) the prepare hook; ctx is borrowed. */
void shield_volume_set_prepare(struct shield_volume *v, shield_prepare_fn fn, void *ctx);
/* Closes every remaining file handle's state and frees the volume. Uncommitted changes
 * are discarded (the backing storage keeps the last committed state). NULL is a no-op. */
void shield_volume_close(struct shield_volume *v);

/* Makes every change durable and names it: flushes trees, seals the new manifest, calls
 * the prepare hook, then appends the manifest record with the bytes written since the last
 * commit to the volume journal and fsyncs it (one fdatasync). When the journal is full or
 * the changes are larger than a journal record, the commit is a checkpoint instead: the
 * backing files written since the last checkpoint are fsynced and the record is written in
 * place into the manifest slot that does not hold the base state (the directory is synced
 * too when backing files were created). Writes the new tag to tag_out. With no change
 * since the last commit it writes the current tag and touches nothing. */
CF_FN shield_volume_commit(struct shield_volume *v, uint8_t tag_out[SHIELD_TAG_SIZE]);
/* Checkpoint: makes the backing files written since the last checkpoint durable, copies
 * the current state's manifest record into the manifest slot that does not hold the base,
 * and starts the journal again. The tag does not change (the record's bytes are the same).
 * Call it when this handle is the volume's only writer (at exit): a handle whose volume a
 * related process committed since must not checkpoint. Nothing to do when the journal is
 * empty. CF_E_PERMISSION (read-only), CF_E_IO. */
CF_FN shield_volume_checkpoint(struct shield_volume *v);
/* The tag of the last committed (or opened) manifest; CF_E_NOT_FOUND for a new volume
 * that was never committed. */
CF_FN shield_volume_tag(struct shield_volume *v, uint8_t tag_out[SHIELD_TAG_SIZE]);

/* The tag of the newest manifest record in the backing storage, read WITHOUT the key:
 * unauthenticated, for messages only (a rollback refusal names the tag it found). Picks
 * the slot whose header has the higher generation. CF_E_NOT_FOUND when no slot has a
 * well-formed header; CF_E_IO, CF_E_NOMEM. */
CF_FN shield_disk_tag(const struct shield_storage_ops *ops, void *st, uint8_t tag[SHIELD_TAG_SIZE]);

enum shield_type { SHIELD_TYPE_FILE = 1, SHIELD_TYPE_DIR = 2 };

struct shield_stat {
        enum shield_type type;
        uint64_t size; /* plaintext bytes (0 for directories) */
};

/* Path rules (every call): 1..SHIELD_PATH_MAX bytes, components of 1..SHIELD_NAME_MAX
 * bytes separated by single '/', no leading or trailing '/', no "." or ".." component, no
 * NUL. Anything else is CF_E_INVALID_ARG. The root directory is the empty path "" (only
 * for shield_volume_list and shield_volume_stat). */
CF_FN shield_volume_stat(struct shield_volume *v, const char *path, struct shield_stat *ret);
/* CF_E_EXISTS, CF_E_NOT_FOUND (no parent), CF_E_LIMIT (too many entries). */
CF_FN shield_volume_mkdir(struct shield_volume *v, const char *path);
/* Removes an empty directory: CF_E_NOT_FOUND, CF_E_CONFLICT (not empty or not a dir). */
CF_FN shield_volume_rmdir(struct shield_volume *v, const char *path);
/* Removes a file name. Open handles keep working on the now nameless file; its backing
 * files go after the last handle closes and a commit. CF_E_NOT_FOUND, CF_E_CONFLICT (dir). */
CF_FN shield_volume_unlink(struct shield_volume *v, const char *path);
/* Renames a file or directory (with everything below it). An existing file `to` is
 * replaced by a file `from`; an existing empty directory `to` by a directory `from`;
 * anything else is CF_E_EXISTS / CF_E_CONFLICT. Moving a directory under itself is
 * CF_E_INVALID_ARG. */
CF_FN shield_volume_rename(struct shield_volume *v, const char *from, const char *to);

/* Called by shield_volume_list for each direct child of a directory, in byte order of the
 * names; name is the last component (borrowed for the call). A non-OK status stops the
 * list and is returned. */
typedef cf_status (*shield_list_fn)(void *ctx, const char *name, const struct shield_stat *st);
CF_FN shield_volume_list(struct shield_volume *v, const char *dir, shield_list_fn fn, void *ctx);

/* Integrity check of the whole volume: every tree node and every chunk of every file is
 * read from the backing storage and verified (pending changes are flushed first).
 * fn is called once per problem found: path of the file, what failed, and the status:
 *   CF_E_TAMPERED   a tree node does not match its parent's hash, or a backing file of
 *                   the file is missing (renamed or deleted)
 *   CF_E_MAC_INVALID a chunk does not authenticate (edited, swapped or stale)
 *   CF_E_TRUNCATED  a backing file ends before a referenced chunk or node, or a data
 *                   file is shorter than the manifest implies
 *   CF_E_TRAILING   a data file is longer than the manifest implies (appended bytes; they
 *                   are never read)
 *   CF_E_MALFORMED  an authenticated node is not well formed (never written by us)
 * A bad node is reported once; its subtree is skipped. Returns CF_OK when nothing was
 * found, CF_E_TAMPERED when something was, or the error that stopped the check. */
enum shield_where { SHIELD_AT_FILE = 0, SHIELD_AT_NODE = 1, SHIELD_AT_CHUNK = 2 };
struct shield_problem {
        const char *path;        /* borrowed for the call */
        enum shield_where where; /* what the index refers to */
        uint8_t level;           /* tree level, for SHIELD_AT_NODE */
        uint64_t index;          /* chunk index or node index within its level */
        cf_status status;
};
typedef void (*shield_verify_fn)(void *ctx, const struct shield_problem *p);
CF_FN shield_volume_verify(struct shield_volume *v, shield_verify_fn fn, void *ctx);

/* ---------------------------------------------------------------------------------------
 * Files. */

#define SHIELD_O_CREAT 1u /* create when missing (its parent directory must exist) */
#define SHIELD_O_EXCL  2u /* with CREAT: CF_E_EXISTS when it exists */
#define SHIELD_O_TRUNC 4u /* truncate to 0 bytes */

/* Opens a file by path. The handle is released with shield_file_close, which the caller
 * must call before shield_volume_close. Errors: CF_E_NOT_FOUND, CF_E_EXISTS,
 * CF_E_CONFLICT (a directory), CF_E_PERMISSION (read-only volume and CREAT/TRUNC),
 * CF_E_TAMPERED (a backing file of the file is missing), CF_E_LIMIT, CF_E_IO. */
CF_FN shield_file_open(struct shield_volume *v, const char *path, unsigned flags,
                       struct shield_file **ret);
/* Releases a handle. NULL is a no-op. Uncommitted changes stay pending in the volume. */
void shield_file_close(struct shield_file *f);
/* Reads up to size bytes at off into buf; *ret_n is less than size only at end of file.
 * Every byte is authenticated before it is copied to buf; on failure *buf is wiped.
 * Errors: CF_E_MAC_INVALID (chunk), CF_E_TAMPERED (tree), CF_E_TRUNCATED, CF_E_LIMIT. */
CF_FN shield_file_pread(struct shield_file *f, void *buf, size_t size, uint64_t off, size_t *ret_n);
/* Writes size bytes at off, extending the file (a gap reads as zeros). CF_E_LIMIT past
 * SHIELD_FILE_SIZE_MAX; read errors of a partly overwritten chunk as for pread. */
CF_FN shield_file_pwrite(struct shield_file *f, const void *buf, size_t size, uint64_t off);
/* Sets the size; growing adds zeros. */
CF_FN shield_file_truncate(struct shield_file *f, uint64_t size);
/* The current plaintext size. */
CF_FN shield_file_size(struct shield_file *f, uint64_t *ret);
/* Writes this file's pending tree nodes and fsyncs its backing files. This makes the data
 * durable but not yet part of the tagged state: call shield_volume_commit for that. */
CF_FN shield_file_flush(struct shield_file *f);
