/* A write-absorbing overlay over another shield storage, for read-only opens that must
 * see the volume journal applied (docs/formats/volume.md "Journal").
 *
 * The overlay wraps an ops table and its handle and presents the same flat directory.
 * Reads come from the wrapped storage except where bytes were written through the overlay;
 * writes, truncations and creations change only the overlay's memory. Nothing is ever
 * written to the wrapped storage: every call the overlay makes on it is open (flags 0),
 * close, pread, size or list. The overlay is not durable: it ends when it is freed.
 *
 * What each storage call does through the overlay:
 *   open      finds the name in the overlay or the wrapped storage; SHIELD_ST_CREATE of a
 *             missing name makes an in-memory file; EXCL and TRUNC as for any storage
 *             (TRUNC truncates the view only)
 *   pread     overlay bytes where written, the wrapped file's below its size (or the size
 *             a truncation cut it to), zeros in gaps (as a sparse file reads)
 *   pwrite    into memory; a write that leaves the view's bytes as they are stores nothing
 *   size      the view's size (extensions and truncations included)
 *   truncate  the view only (no bytes stored; cut bytes of the wrapped file stay hidden)
 *   fsync,    succeed and do nothing: the wrapped storage never changes, so there is
 *   sync_dir  nothing to make durable, and the overlay's own bytes never can be
 *   rename,   refused with CF_E_PERMISSION: names are the wrapped directory's, and a read-
 *   unlink    only view must not pretend to have removed or moved one
 *   list      the wrapped names, then the files created in the overlay
 *
 * Memory is bounded: every stored byte, and SH_OVERLAY_ITEM_COST for each stored range
 * and each file the overlay tracks, count against the budget given at creation (at most
 * SH_OVERLAY_MAX); a call that would pass it is CF_E_LIMIT and changes nothing. Not
 * thread-safe on its own (the volume's mutex serialises access). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "shield/shield.h"
#include "shield/shield_internal.h"

/* Bytes charged for the bookkeeping of one stored range or one tracked file (at least
 * their structures and an allocator header: checked in storage_overlay.c). */
#define SH_OVERLAY_ITEM_COST 128u
/* The largest budget: enough to replay any journal. A payload entry of len bytes takes
 * SH_JP_ENTRY_HEAD + len bytes of the journal (at most SH_JOURNAL_MAX in all) and at most
 * len bytes and one range in the overlay: never more than 5 times its journal bytes. The
 * files tracked are backing files of the volume's files: two per file at most. */
#define SH_OVERLAY_MAX                                                                             \
        ((size_t)5 * SH_JOURNAL_MAX + (size_t)2 * SHIELD_FILES_MAX * SH_OVERLAY_ITEM_COST)

/* The overlay's ops table; its storage handle is a struct sh_overlay. */
extern const struct shield_storage_ops sh_overlay_ops;
struct sh_overlay;

/* Makes an empty overlay over (ops, st), both borrowed: they must outlive the overlay,
 * and no handle of the wrapped storage may change its files meanwhile. max_bytes is the
 * memory budget (see above), 1..SH_OVERLAY_MAX, else CF_E_INVALID_ARG. Free with
 * sh_overlay_free after every handle opened through it is closed. CF_E_NOMEM. */
CF_FN sh_overlay_new(const struct shield_storage_ops *ops, void *st, size_t max_bytes,
                     struct sh_overlay **ret);
/* Frees every byte the overlay holds (the wrapped storage is untouched). NULL is a no-op. */
void sh_overlay_free(struct sh_overlay *o);
/* Bytes of the budget in use (stored capacity plus item costs). Never fails. */
size_t sh_overlay_used(const struct sh_overlay *o);
