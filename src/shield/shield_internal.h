/* Internals of src/shield shared by its .c files, its unit tests and its fuzzers.
 * The byte layouts are specified in docs/formats/volume.md; keep both in step. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"
#include "shield/shield.h"

#define SH_FORMAT_VERSION 1u /* plaintext manifest */
#define SH_FILE_VERSION   3u /* manifest record (1: single "manifest" file; 2: no journal) */
#define SH_MAGIC          "CFSHVOL1" /* manifest slot file magic, 8 bytes */
#define SH_MAGIC_SIZE     8u
/* Manifest record header: magic, u32 file version, u64 generation, u32 sealed length,
 * previous tag (32), u32 payload length, payload digest (32). */
#define SH_HEADER_SIZE    (SH_MAGIC_SIZE + 4u + 8u + 4u + 32u + 4u + 32u)
#define SH_HDR_OFF_PREV   (SH_MAGIC_SIZE + 16u)
#define SH_HDR_OFF_PLEN   (SH_HDR_OFF_PREV + 32u)
#define SH_HDR_OFF_DIGEST (SH_HDR_OFF_PLEN + 4u)
#define SH_JOURNAL_NAME   "journal" /* the volume journal (docs/formats/volume.md) */
/* The journal's size: records are appended until the next would pass it, then the commit
 * is a checkpoint (written into a manifest slot) and the journal starts again at 0. */
#define SH_JOURNAL_MAX ((uint64_t)4 << 20)
/* Payload bytes collected for one journal record; past it the commit is a checkpoint. */
#define SH_PAYLOAD_MAX   ((size_t)SH_JOURNAL_MAX)
#define SH_JP_DATA       1u /* payload entry: bytes of a data file */
#define SH_JP_TREE       2u /* payload entry: bytes of a tree file */
#define SH_JP_ENTRY_HEAD (1u + SH_ID_SIZE + 8u + 4u)
/* The largest tree file: both slots of every node of a full 4-level tree. */
#define SH_TREE_FILE_MAX                                                                           \
        ((uint64_t)2 * ((((uint64_t)1 << (SH_FANOUT_SHIFT * SH_LEVELS_MAX)) - 1) / 63) *           \
         SH_NODE_SIZE)
#define SH_SLOT_NAME_0     "manifest.0" /* the two manifest slots (docs/formats/volume.md) */
#define SH_SLOT_NAME_1     "manifest.1"
#define SH_MANIFEST_LEGACY "manifest"     /* format 1: refused with CF_E_VERSION */
#define SH_MANIFEST_TMP    "manifest.tmp" /* format 1 leftover, removed at open */
#define SH_ID_SIZE         16u            /* random per-file id */
#define SH_FANOUT_SHIFT    6u
#define SH_FANOUT          (1u << SH_FANOUT_SHIFT) /* entries per tree node */
#define SH_ENTRY_SIZE      48u
#define SH_NODE_SIZE       (SH_FANOUT * SH_ENTRY_SIZE) /* 3072 */
#define SH_LEVELS_MAX      4u                          /* 64^4 chunks of 4 KiB = 64 GiB */
#define SH_GROUP_CHUNKS    64u                         /* data file: chunks per slot group */
#define SH_NONCE_SIZE      12u
#define SH_GCM_TAG_SIZE    16u
#define SH_ENTRY_F_PRESENT 1u
#define SH_ENTRY_F_SLOT    2u
/* The largest plaintext manifest: header + every entry at its largest. */
#define SH_MANIFEST_MAX                                                                            \
        ((size_t)16 +                                                                              \
         (size_t)SHIELD_FILES_MAX * (3u + SHIELD_PATH_MAX + SH_ID_SIZE + 17u + SH_ENTRY_SIZE))
/* The largest sealed body (nonce || ciphertext || GCM tag) of a slot record. */
#define SH_SEALED_MAX (SH_MANIFEST_MAX + CF_AEAD_OVERHEAD)
/* The largest slot file read at open (a record plus leftovers of a longer earlier one are
 * never longer than the longest record). */
#define SH_SLOT_FILE_MAX (SH_HEADER_SIZE + SH_SEALED_MAX)
#define SH_BUCKETS       1024u /* node cache hash buckets per file (power of two) */
/* Chunks moved by one backing pread or pwrite: a run of chunks that are contiguous on disk
 * (one leaf, one slot: at most one group of SH_GROUP_CHUNKS). */
#define SH_RUN_CHUNKS SH_GROUP_CHUNKS

_Static_assert(SH_NODE_SIZE == 3072, "node size is part of the format");
_Static_assert((uint64_t)SHIELD_CHUNK_SIZE << (SH_FANOUT_SHIFT * SH_LEVELS_MAX) ==
                   SHIELD_FILE_SIZE_MAX,
               "tree height covers the file size limit exactly");

/* One tree entry (a chunk in a leaf node, a child node in an inner node, or a file's root
 * in the manifest). data is nonce || GCM tag || 4 zero bytes for chunks and the child's
 * node hash for nodes. version 0 means "never written"; a hole (present clear) with a
 * non-zero version keeps the slot it last used so a rewrite never lands on a slot the
 * committed state still references. */
struct sh_entry {
        uint8_t data[32];
        uint64_t version;
        uint8_t flags;
};

void sh_entry_encode(const struct sh_entry *e, uint8_t out[SH_ENTRY_SIZE]);
/* Decodes and validates one entry; leaf selects the chunk layout. CF_E_MALFORMED. */
CF_FN sh_entry_decode(struct cf_cursor *c, bool leaf, struct sh_entry *ret);
void sh_node_encode(const struct sh_entry e[SH_FANOUT], uint8_t out[SH_NODE_SIZE]);
/* Decodes exactly SH_NODE_SIZE bytes into 64 entries. CF_E_MALFORMED, CF_E_TRUNCATED,
 * CF_E_TRAILING. */
CF_FN sh_node_decode(struct cf_slice bytes, bool leaf, struct sh_entry ret[SH_FANOUT]);

/* Layout arithmetic (pure). */
uint64_t sh_chunks_for(uint64_t size);
uint8_t sh_height_for(uint64_t chunks);
uint64_t sh_capacity(uint8_t height);
uint64_t sh_node_pos(uint8_t level, uint64_t index);
uint64_t sh_node_offset(uint8_t level, uint64_t index, unsigned slot);
uint64_t sh_chunk_offset(uint64_t chunk, unsigned slot);
/* Bytes of data file a file of `size` bytes may use (both slot regions of every group). */
uint64_t sh_data_extent(uint64_t size);

/* Path rules of shield.h. CF_E_INVALID_ARG. */
CF_FN sh_path_check(struct cf_slice path);

struct sh_state;
struct sh_overlay;
struct sh_nonce_pool;

/* One file or directory of the volume (an "inode"). */
struct sh_inode {
        char *name; /* full path, owned */
        enum shield_type type;
        /* files only: */
        uint8_t id[SH_ID_SIZE];
        uint64_t size;    /* plaintext bytes */
        uint64_t version; /* committed file version; pending writes use version + 1 */
        uint8_t height;   /* tree levels; 0 = no tree yet */
        struct sh_entry root;
        bool changed;  /* modified since the last commit */
        bool unlinked; /* no longer named by the manifest */
        bool ckpt;     /* backing files written since the last checkpoint (sync them first) */
        unsigned n_handles;
        struct sh_state *state; /* runtime state (backing handles, keys, cache) or NULL */
        uint32_t pc_head;       /* first of this file's plaintext cache slots (0: none) */
        uint32_t pc_n;          /* how many it has */
};

/* The decrypted manifest. */
struct sh_manifest {
        uint64_t generation;
        struct sh_inode **ino; /* sorted by name, owned */
        size_t n, cap;
};

/* Decodes and validates a plaintext manifest (sorted unique names, parents exist and are
 * directories, unique ids, sizes and heights within limits, consistent roots). *ret is
 * filled only on success. CF_E_MALFORMED, CF_E_TRUNCATED, CF_E_TRAILING, CF_E_VERSION,
 * CF_E_LIMIT, CF_E_NOMEM. */
CF_FN sh_manifest_decode(struct cf_slice plain, struct sh_manifest *ret);
/* Encodes the manifest (unlinked inodes are not in m). Appends to out. */
CF_FN sh_manifest_encode(const struct sh_manifest *m, struct cf_buf *out);
void sh_manifest_done(struct sh_manifest *m);
/* Index of name in the sorted ino[0..n), or SIZE_MAX. */
size_t sh_find_sorted(struct sh_inode *const *ino, size_t n, struct cf_slice name);
void sh_inode_free(struct sh_inode *ino);

struct shield_volume {
        pthread_mutex_t lock;
        const struct shield_storage_ops *ops;
        void *st;
        uint8_t key[SHIELD_KEY_SIZE];
        uint8_t manifest_key[CF_AEAD_KEY_SIZE];
        unsigned flags;
        struct sh_manifest m;
        struct sh_inode **grave; /* unlinked inodes whose backing files are still there */
        size_t n_grave, cap_grave;
        bool changed;   /* anything to commit */
        bool dir_dirty; /* a backing file was created since the directory was last synced */
        int slot;       /* manifest slot (0 or 1) holding the current state; -1: none yet */
        bool has_tag;
        uint8_t tag[SHIELD_TAG_SIZE];
        shield_prepare_fn prepare;
        void *prepare_ctx;
        /* The volume journal (docs/formats/volume.md "Journal"). */
        void *jh;             /* journal backing file, opened on first use */
        uint64_t jofs;        /* end of the last record of the current chain (next append) */
        struct cf_buf jpay;   /* payload entries of the writes since the last commit */
        bool jpay_over;       /* jpay passed SH_PAYLOAD_MAX: the next commit is a checkpoint */
        bool ckpt_all;        /* every file must be synced at the next checkpoint (replayed) */
        struct cf_buf rec;    /* manifest record of the current state (copied at checkpoint) */
        struct sh_pcache *pc; /* plaintext chunk cache (pcache.c), NULL when off */
        struct sh_nonce_pool *nonces; /* nonce.c: random bytes for chunk nonces, or NULL */
        bool no_pool;                 /* the pool cannot be made fork-safe here: none */
        struct sh_overlay *overlay;   /* a read-only open's replayed journal (storage_overlay.h):
                                       * v->ops/v->st read through it; owned; else NULL */
};

struct shield_file {
        struct shield_volume *v;
        struct sh_inode *ino;
};

/* tree.c: per-file runtime state and content operations. The volume lock is held. */
CF_FN sh_file_activate(struct shield_volume *v, struct sh_inode *ino, bool create);
/* Releases the runtime state when the inode has no handle and nothing pending; with force,
 * always, and the inode's cached plaintext too (force means the inode is about to be freed). */
void sh_file_release(struct shield_volume *v, struct sh_inode *ino, bool force);
CF_FN sh_file_read(struct shield_volume *v, struct sh_inode *ino, uint8_t *buf, size_t size,
                   uint64_t off, size_t *ret_n);
CF_FN sh_file_write(struct shield_volume *v, struct sh_inode *ino, const uint8_t *buf, size_t size,
                    uint64_t off);
CF_FN sh_file_truncate(struct shield_volume *v, struct sh_inode *ino, uint64_t size);
/* Writes every dirty node (bottom-up) and, if sync, fsyncs both backing files. */
CF_FN sh_file_flush(struct shield_volume *v, struct sh_inode *ino, bool sync);
/* Records bytes about to be written to a backing file of ino (kind SH_JP_DATA or
 * SH_JP_TREE) in the payload of the next journal record, and marks ino for the next
 * checkpoint. Never fails: past SH_PAYLOAD_MAX the next commit becomes a checkpoint. */
void sh_journal_note(struct shield_volume *v, struct sh_inode *ino, uint8_t kind, uint64_t off,
                     const uint8_t *bytes, size_t len);
/* Writes ino's dirty nodes and fsyncs both its backing files (opened by name when the file
 * has no runtime state; a missing one is skipped). For checkpoints. */
CF_FN sh_file_sync_all(struct shield_volume *v, struct sh_inode *ino);
/* pcache.c: the plaintext chunk cache (shield_volume_set_cache). Chunks are keyed by inode
 * and index; callers hold the volume lock and put only authenticated plaintext. None of these
 * fail: a cache that is off (v->pc == NULL) holds nothing. */
/* The cached plaintext of the chunk, or NULL. Marks it recently used. */
const uint8_t *sh_pc_get(struct shield_volume *v, const struct sh_inode *ino, uint64_t chunk);
/* Caches the chunk's plaintext, replacing what it held (evicts the least recently used). */
void sh_pc_put(struct shield_volume *v, struct sh_inode *ino, uint64_t chunk,
               const uint8_t plain[SHIELD_CHUNK_SIZE]);
/* Replaces the chunk's plaintext if it is cached; caches nothing new. */
void sh_pc_update(struct shield_volume *v, const struct sh_inode *ino, uint64_t chunk,
                  const uint8_t plain[SHIELD_CHUNK_SIZE]);
/* Drops the file's chunks in [from, to) (wiped). */
void sh_pc_drop(struct shield_volume *v, struct sh_inode *ino, uint64_t from, uint64_t to);
/* Drops every chunk of the file (before the inode is freed). */
void sh_pc_forget(struct shield_volume *v, struct sh_inode *ino);
/* Wipes and frees the whole cache (volume close). */
void sh_pc_free(struct shield_volume *v);
/* nonce.c: a fresh random chunk nonce, from a per-volume pool of random bytes that a forked
 * child never shares (MADV_WIPEONFORK), or straight from cf_random. CF_E_CRYPTO. */
CF_FN sh_nonce(struct shield_volume *v, uint8_t out[SH_NONCE_SIZE]);
/* Wipes and unmaps the pool (volume close). */
void sh_nonce_free(struct shield_volume *v);
/* Backing file names: 32 hex digits of the id + ".d" (data) or ".t" (tree). */
void sh_backing_name(const uint8_t id[SH_ID_SIZE], char kind, char out[SH_ID_SIZE * 2 + 3]);
/* Checks one file from the backing storage (see shield_volume_verify); returns the number
 * of problems through *n_problems. */
CF_FN sh_file_verify(struct shield_volume *v, struct sh_inode *ino, shield_verify_fn fn, void *ctx,
                     size_t *n_problems);
/* Per-file key: HKDF-SHA256(volume key, salt "coffer-shield-v1", info "file" || id). */
CF_FN sh_file_key(const uint8_t vkey[SHIELD_KEY_SIZE], const uint8_t id[SH_ID_SIZE],
                  uint8_t out[CF_AEAD_KEY_SIZE]);
