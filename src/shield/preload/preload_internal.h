/* libcoffer-shield.so internals: the configuration parser and the table of shielded file
 * descriptors (docs/shield-preload.md). Nothing here is exported from the shared object:
 * the build uses -fvisibility=hidden and exports.map lists only the interposed libc names.
 *
 * Locking: the fd table is not locked by itself. interpose.c holds its one process-wide
 * mutex around every call here and around every shield call, so the table, the offsets and
 * the volumes change under one lock. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/status.h"
#include "shield/shield.h"

/* ---------------------------------------------------------------------------------------
 * Configuration: the JSON document read once from COFFER_SHIELD_FD. */

#define PRE_CONFIG_SIZE_MAX ((size_t)64 << 10) /* bytes of the JSON document */
#define PRE_VOLUMES_MAX     16u                /* volumes in one document */
#define PRE_TAGS_MAX        4u                 /* expected tags per volume */
#define PRE_PATH_MAX        1024u              /* bytes of a mount or backing path, no NUL */
#define PRE_CACHE_MIB_MAX   4096u              /* "cache_mib": SHIELD_CACHE_MAX in MiB */
#define PRE_ABS_MAX         (2 * PATH_MAX + 2) /* a joined path before normalisation */

struct pre_volume_config {
        char mount[PRE_PATH_MAX + 1];   /* absolute, normalised, not "/" */
        char backing[PRE_PATH_MAX + 1]; /* absolute */
        uint8_t key[SHIELD_KEY_SIZE];
        uint8_t tags[PRE_TAGS_MAX][SHIELD_TAG_SIZE];
        size_t n_tags;
        bool accept_any_tag;
        bool create;
        bool accept_empty;   /* reinitialisable: no manifest opens a new volume */
        bool reset;          /* cofferd reset the volume: wipe the backing directory */
        bool batched;        /* freshness "batched" (else "strict") */
        uint32_t window_ms;  /* batched: PRE_WINDOW_MIN_MS..PRE_WINDOW_MAX_MS */
        bool has_generation; /* cofferd recorded the generation of its committed tag */
        uint64_t generation; /* that generation (batched: newer manifests are accepted) */
        size_t cache_bytes;  /* plaintext cache budget ("cache_mib"; SHIELD_CACHE_DEFAULT) */
};

#define PRE_WINDOW_MIN_MS     10u
#define PRE_WINDOW_MAX_MS     1000u
#define PRE_WINDOW_DEFAULT_MS 100u

struct pre_config {
        struct pre_volume_config vol[PRE_VOLUMES_MAX];
        size_t n_vol;
};

/* Parses the configuration document (schema in docs/shield-preload.md) into *ret, which
 * the caller owns and must wipe with pre_config_wipe (it holds keys). Fails closed: an
 * unknown key, a missing "mount", "backing" or "key", a key that is not base64 of 32
 * bytes, a tag that is not 64 hex digits, a relative or non-normalised path, a mount of
 * "/", two mounts where one contains the other, or bytes after the document are errors
 * (CF_E_SYNTAX, CF_E_SCHEMA, CF_E_ENCODING, CF_E_LIMIT). *ret is wiped on failure. */
CF_FN pre_config_parse(const uint8_t *doc, size_t size, struct pre_config *ret);
/* Wipes every key and tag of c. */
void pre_config_wipe(struct pre_config *c);

/* Normalises an absolute path lexically into out ("//" and "/./" collapse, ".." removes
 * the previous component, no trailing '/'; "/" stays "/"). CF_E_INVALID_ARG for a relative
 * path, CF_E_LIMIT when the result does not fit in out_size bytes with its NUL. */
CF_FN pre_path_normalize(const char *path, char *out, size_t out_size);
/* When path (normalised) is mount itself or below it, writes a pointer to the volume path
 * (the rest without its leading '/', "" for the mount itself) and returns true. */
bool pre_path_under(const char *path, const char *mount, size_t mount_len, const char **ret_rest);

/* ---------------------------------------------------------------------------------------
 * Open file descriptions and the fd table. */

struct pre_vol; /* a configured, open volume (interpose.c) */

/* One open of a shielded file or directory: what the kernel calls an open file description.
 * dup, dup2, dup3 and fcntl(F_DUPFD*) share it (offset and status flags included), so it is
 * reference counted; the fd table holds one reference per descriptor. */
struct pre_ofd {
        unsigned refs;
        struct pre_vol *vol;
        struct shield_file *file; /* NULL for a directory */
        char *path;               /* volume path at open ("" = the mount point), owned */
        uint64_t off;
        int flags;    /* open(2) flags: access mode, O_APPEND, O_NONBLOCK, ... */
        bool dir;     /* a directory (O_DIRECTORY or a directory path) */
        bool written; /* a write, truncate or pwrite went through this description */
        uint64_t gen; /* interpose.c's reload bookkeeping */
};

/* Allocates a description with one reference and copies path. CF_E_NOMEM. */
CF_FN pre_ofd_new(struct pre_vol *vol, const char *path, int flags, bool dir, struct pre_ofd **ret);
/* Drops one reference; returns true when it was the last (the caller then releases
 * o->file and calls pre_ofd_free). */
bool pre_ofd_unref(struct pre_ofd *o);
/* Frees the description and its path (not o->file). NULL is a no-op. */
void pre_ofd_free(struct pre_ofd *o);

#define PRE_FD_MAX (1 << 20) /* the largest descriptor number the table accepts, plus one */

/* Maps descriptor numbers (placeholder kernel fds) to descriptions. */
struct pre_fdtable {
        struct pre_ofd **slot; /* indexed by fd, NULL = not shielded */
        size_t n_slot;
        size_t n_used;
};

/* An empty table (no allocation until the first set). */
void pre_fdtable_init(struct pre_fdtable *t);
/* Frees the slot array; the caller has dropped every description first. */
void pre_fdtable_done(struct pre_fdtable *t);
/* Binds fd to o and takes a reference on o. CF_E_INVALID_ARG for fd < 0 or >= PRE_FD_MAX,
 * CF_E_EXISTS when fd is already bound (the caller must remove it first), CF_E_NOMEM. */
CF_FN pre_fdtable_set(struct pre_fdtable *t, int fd, struct pre_ofd *o);
/* The description bound to fd, or NULL (also for a negative or out-of-range fd). Borrowed. */
struct pre_ofd *pre_fdtable_get(const struct pre_fdtable *t, int fd);
/* Unbinds fd and hands its reference to the caller (NULL when fd was not bound). */
struct pre_ofd *pre_fdtable_take(struct pre_fdtable *t, int fd);
/* Number of bound descriptors. */
size_t pre_fdtable_count(const struct pre_fdtable *t);

/* Maps a shield status to an errno value for the interposed call. */
int pre_errno(cf_status s);

/* ---------------------------------------------------------------------------------------
 * Between interpose.c and stdio.c (both inside the shared object). */

enum pre_kind {
        PRE_PASS = 0,   /* not under a mount point: straight to libc */
        PRE_SHIELD = 1, /* under a configured volume */
        PRE_DENY = 2,   /* under a mount point with no volume (exec'd child): EACCES */
};

/* True when the shim is initialised, has mount points and this thread is not inside it. */
bool pre_active(void);
/* Where a path (relative to the working directory, the shim's virtual one included) leads.
 * For PRE_PASS, *ret_pass is the path to hand libc: path itself, or its absolute form in
 * buf (buf_size bytes) when path is relative and the working directory is virtual (the
 * kernel's working directory is elsewhere). Takes the shim's lock. */
enum pre_kind pre_path_kind(const char *path, char *buf, size_t buf_size, const char **ret_pass);
/* True when fd is a shielded descriptor. Takes the shim's lock. */
bool pre_fd_shielded(int fd);
/* Writes "coffer-shield: <message>\n" to stderr (refusals and integrity failures only). */
void pre_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Resolves every real function once (other libraries' constructors may call in before the
 * shim's constructor ran). */
void pre_resolve(void);
/* Resolves the real stdio functions (called once by interpose.c's resolver). */
void pre_stdio_resolve(void *(*need)(const char *name));
