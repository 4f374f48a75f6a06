/* The freshness anchor: cofferd's store state version, recorded outside the data directory,
 * so that starting on an older copy of the store (a rollback) is refused.
 *
 *   none   nothing is recorded; a warning at every start says rollback is not detected
 *   file   a file outside the data directory (sim: in the sim platform directory, standing in
 *          for a hardware monotonic counter; it protects nothing against a local root)
 *
 * Updates are batched: a background thread writes the newest version at most every
 * CAS_ANCHOR_WINDOW_MS, so a crash can leave the anchor behind the store by at most the
 * writes of one window; a store that is newer than its anchor is accepted (and the anchor
 * advanced), one that is older is refused. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

#define CAS_ANCHOR_WINDOW_MS 100

enum cas_anchor_kind { CAS_ANCHOR_NONE = 1, CAS_ANCHOR_FILE };

struct cas_anchor {
        enum cas_anchor_kind kind;
        char path[1100];
        char owner[65];  /* cofferd's key id: an anchor belongs to one cofferd */
        pthread_mutex_t mu;
        pthread_cond_t cv;
        pthread_t thread;
        bool running, stop;
        uint64_t pending, written;
        bool reset; /* --anchor-reset: accept a missing anchor once */
        cf_status last_error;
};

/* spec: "none", "file:PATH", or NULL for the default file default_path. */
CF_FN cas_anchor_configure(struct cas_anchor *a, const char *spec, const char *default_path,
                           const char *owner);
/* At start: refuses (CF_E_ROLLBACK, message in err) a store older than the anchor; advances
 * the anchor when the store is newer. */
CF_FN cas_anchor_check(struct cas_anchor *a, uint64_t store_version, char *err, size_t err_size);
/* Starts the batching writer. */
CF_FN cas_anchor_start(struct cas_anchor *a);
/* Store commit hook (store_commit_fn): records a new state version. Thread-safe. */
void cas_anchor_note(void *anchor, uint64_t version);
/* Writes the last version and stops the writer. */
void cas_anchor_stop(struct cas_anchor *a);
const char *cas_anchor_describe(const struct cas_anchor *a);
