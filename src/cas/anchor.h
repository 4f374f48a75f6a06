/* The freshness anchor: cofferd's store state version, recorded outside the data directory,
 * so that starting on an older copy of the store (a rollback) is refused.
 *
 *   none   nothing is recorded; a warning at every start says rollback is not detected
 *   file   a file outside the data directory (sim: in the sim platform directory, standing in
 *          for a hardware monotonic counter; it protects nothing against a local root)
 *   tpm    a TPM 2.0 NV counter (tpm2-tss ESAPI, any TCTI) bound to a sealed record in the
 *          data directory; see below and docs/formats/anchor.md
 *
 * Updates are batched: a background thread writes the newest version at most every
 * CAS_ANCHOR_WINDOW_MS, so a crash can leave the anchor behind the store by at most the
 * writes of one window; a store that is newer than its anchor is accepted (and the anchor
 * advanced), one that is older is refused.
 *
 * The tpm anchor. A TPM counter cannot be set to the store version, only incremented, so the
 * two are bound by a record R = (C, V) sealed with AES-256-GCM under a key derived from the
 * store's data key (HKDF info and AAD "coffer-anchor-tpm-v1") in DATA_DIR/anchor.tpm. The
 * record says "when the TPM counter reads C, the store is at state version V or later".
 * Every anchor write is write-ahead: first R = (T+1, V) is written atomically and durably,
 * then the counter is incremented from T to T+1. At start, with T the counter, S the store:
 *
 *   R.C == T       current record: accept if S >= R.V, else refuse (rollback).
 *   R.C == T + 1   a crash between writing R and incrementing: accept if S >= R.V, then
 *                  increment (completing the interrupted write).
 *   R.C <  T       refuse: the data directory is an older copy (rollback).
 *   R.C >  T + 1   refuse: the record belongs to another counter or TPM.
 *   no R, S == 0 or --anchor-reset (a->reset): first use; the index is defined if needed and
 *                  incremented if never written, and R = (T, S) written (an empty store
 *                  holds nothing older to return to).
 *   no R, S > 0 without --anchor-reset: refuse (the record of a restored copy may have been
 *                  removed, and with an empty owner auth so may the index).
 *   R but no written counter: refuse (the index was recreated, or another TPM).
 *
 * Because the record is written before the counter moves, any copy of the data directory
 * taken before the last completed write carries R.C < T and is refused; what a rollback can
 * still undo is only what a crash can lose anyway: the commits not yet anchored (one
 * window). The NV index (default CAS_ANCHOR_TPM_INDEX_DEFAULT, owner hierarchy, empty auth,
 * no policy) must have exactly the attributes COUNTER | AUTHREAD | (AUTHWRITE or
 * OWNERWRITE) | NO_DA (| WRITTEN); any other index is refused. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "base/status.h"

#define CAS_ANCHOR_WINDOW_MS 100

/* The TCG registry's owner range of NV indices is 0x01800000..0x01BFFFFF. */
#define CAS_ANCHOR_TPM_INDEX_DEFAULT 0x0180c0ffu
#define CAS_ANCHOR_TPM_INDEX_MIN     0x01000000u /* TPM2_HR_NV_INDEX */
#define CAS_ANCHOR_TPM_INDEX_MAX     0x01ffffffu
#define CAS_ANCHOR_TPM_TCTI_MAX      511 /* bytes of a TCTI name:config string */
#define CAS_ANCHOR_TPM_FILE          "anchor.tpm"
#define CAS_ANCHOR_TPM_KEY_SIZE      32

enum cas_anchor_kind { CAS_ANCHOR_NONE = 1, CAS_ANCHOR_FILE, CAS_ANCHOR_TPM };

struct cas_anchor_tpm; /* the TPM connection (anchor_tpm.c) */

struct cas_anchor {
        enum cas_anchor_kind kind;
        char path[1100]; /* file: the anchor file; tpm: the record file in the data dir */
        char owner[65];  /* cofferd's key id: an anchor belongs to one cofferd */
        pthread_mutex_t mu;
        pthread_cond_t cv;
        pthread_t thread;
        bool running, stop;
        uint64_t pending, written;
        bool reset; /* --anchor-reset: accept a missing anchor once */
        cf_status last_error;
        /* tpm only */
        char tcti[CAS_ANCHOR_TPM_TCTI_MAX + 1];
        char description[CAS_ANCHOR_TPM_TCTI_MAX + 64];
        uint32_t nv_index;
        struct cf_secret *record_key; /* derived from the data key by cas_anchor_set_key */
        struct cas_anchor_tpm *tpm;   /* open between cas_anchor_check and cas_anchor_stop */
        uint64_t counter;             /* the TPM counter value the record on disk matches */
};

/* spec: "none", "file:PATH", "tpm[@INDEX]:TCTI" (INDEX: 0x and hex, 0x01000000 to
 * 0x01ffffff, default CAS_ANCHOR_TPM_INDEX_DEFAULT; TCTI is a tpm2-tss TCTI loader string such as
 * "swtpm:host=127.0.0.1,port=2321" or "device:/dev/tpmrm0"), or NULL for the default file
 * default_path. Does not touch the TPM. CF_E_INVALID_ARG or CF_E_LIMIT on a bad spec. */
CF_FN cas_anchor_configure(struct cas_anchor *a, const char *spec, const char *default_path,
                           const char *owner);
/* Gives the anchor the store's data key (copied; a subkey is derived and kept in guarded
 * memory) and the data directory where the tpm anchor keeps its record. Needed by the tpm
 * kind before cas_anchor_check (which fails with CF_E_KEY otherwise); the other kinds ignore
 * it. CF_E_LIMIT if the path is too long. */
CF_FN cas_anchor_set_key(struct cas_anchor *a, const uint8_t data_key[CAS_ANCHOR_TPM_KEY_SIZE],
                         const char *data_dir);
/* At start: refuses (CF_E_ROLLBACK, message in err) a store older than the anchor; advances
 * the anchor when the store is newer. Other failures (unreadable anchor, TPM errors, a
 * foreign NV index) also return their status with a message in err. */
CF_FN cas_anchor_check(struct cas_anchor *a, uint64_t store_version, char *err, size_t err_size);
/* Starts the batching writer. */
CF_FN cas_anchor_start(struct cas_anchor *a);
/* Store commit hook (store_commit_fn): records a new state version. Thread-safe. */
void cas_anchor_note(void *anchor, uint64_t version);
/* Writes the last version, stops the writer, and releases the TPM connection and key. */
void cas_anchor_stop(struct cas_anchor *a);
/* A short description of the anchor for logs (borrowed from a). */
const char *cas_anchor_describe(const struct cas_anchor *a);

/* ---- tpm anchor internals (anchor_tpm.c), public for anchor.c and the unit tests ---- */

/* The sealed record: "the counter at nv_index reading counter means the store is at state
 * version version or later", for the cofferd whose key id is owner. */
struct cas_anchor_tpm_record {
        uint32_t nv_index;
        uint64_t counter;
        uint64_t version;
        uint8_t owner[32];
};

#define CAS_ANCHOR_TPM_RECORD_SIZE 85 /* bytes of anchor.tpm, see docs/formats/anchor.md */

/* Derives the record key from the data key (HKDF-SHA256, info "coffer-anchor-tpm-v1"). */
CF_FN cas_anchor_tpm_derive_key(const uint8_t data_key[CAS_ANCHOR_TPM_KEY_SIZE],
                                uint8_t out[CAS_ANCHOR_TPM_KEY_SIZE]);
/* Seals r under key and appends the file bytes (exactly CAS_ANCHOR_TPM_RECORD_SIZE) to out. */
CF_FN cas_anchor_tpm_record_seal(const uint8_t key[CAS_ANCHOR_TPM_KEY_SIZE],
                                 const struct cas_anchor_tpm_record *r, struct cf_buf *out);
/* Parses and opens the file bytes. Errors: CF_E_TRUNCATED / CF_E_TRAILING (size),
 * CF_E_MALFORMED (magic), CF_E_VERSION (format version), CF_E_MAC_INVALID (wrong key or
 * tampered). ret is written only on success. */
CF_FN cas_anchor_tpm_record_open(const uint8_t key[CAS_ANCHOR_TPM_KEY_SIZE], struct cf_slice file,
                                 struct cas_anchor_tpm_record *ret);

/* What the start-up check decided (cas_anchor_tpm_decide). */
enum cas_anchor_tpm_action {
        CAS_ANCHOR_TPM_ACCEPT = 1, /* record current */
        CAS_ANCHOR_TPM_COMPLETE,   /* record one ahead: increment the counter to finish */
        CAS_ANCHOR_TPM_FIRST_USE,  /* no record, counter never written: initialise */
};

/* The protocol at start, without the TPM: counter_written says whether the NV counter has a
 * value (counter is then its value); record is NULL when the data dir has none; allow_reset
 * (--anchor-reset) accepts a non-empty store without a record as a first use. On refusal
 * returns CF_E_ROLLBACK (an older copy of the data directory or store), CF_E_CONFLICT (a
 * record and a counter that do not belong together) or CF_E_REFUSED (a non-empty store
 * without a record and without allow_reset) with a message naming both values in err; *ret
 * is written only on success. */
CF_FN cas_anchor_tpm_decide(bool counter_written, uint64_t counter,
                            const struct cas_anchor_tpm_record *record, uint64_t store_version,
                            bool allow_reset, char *err, size_t err_size,
                            enum cas_anchor_tpm_action *ret);

/* The tpm kind's part of cas_anchor_check: connects, checks the index and runs the protocol. */
CF_FN cas_anchor_tpm_check(struct cas_anchor *a, uint64_t store_version, char *err,
                           size_t err_size);
/* One write-ahead anchor write (record (T+1, version), then increment). Writer thread only. */
CF_FN cas_anchor_tpm_write(struct cas_anchor *a, uint64_t version);
/* Closes the TPM connection and wipes the record key. Idempotent. */
void cas_anchor_tpm_close(struct cas_anchor *a);
