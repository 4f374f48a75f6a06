/* cofferd's tamper-evident audit chain (ARCHITECTURE.md §10, docs/formats/audit.md).
 *
 * Every state change and every activation decision is appended as an entry whose "prev" is
 * the SHA-256 of the previous entry's canonical bytes. Entries live in the sealed store
 * (table "audit", key = seq as 20 zero-padded digits, version 1), so an edited, swapped or
 * moved row fails authentication; a missing row below the head is reported as tampering.
 * cofferd signs the head {"seq", "hash", "time"} with its Ed25519 audit key, which is kept
 * sealed in the store (table "audit_key") and which cofferd's attestation binds.
 *
 * State is process-wide (one chain per cofferd): cas_audit_init once before the workers
 * start, cas_audit_done after they stopped. */
#pragma once

#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>

#include "base/status.h"
#include "cas/cas.h"
#include "client/audit_verify.h"

#define AUDIT_TABLE        "audit"
#define AUDIT_KEY_TABLE    "audit_key"
#define AUDIT_PAGE_MAX     1000 /* entries per GET /v1/audit reply */
#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_BYTES   (4u << 20) /* a page stops once its entries hold this many bytes */
/* Refused activations are aggregated (docs/formats/audit.md, "Aggregated refusals"): */
#define AUDIT_REFUSAL_WINDOW   60 /* default seconds from a window's first refusal to its flush */
#define AUDIT_REFUSAL_KEYS_MAX 64 /* distinct buckets per window; more go to one overflow entry */

/* Loads the audit signing key from the store at cas->store_path (creating it on first
 * start), checks that the stored entries are exactly 1..N with no hole, authenticates the
 * last one and remembers the head. Needs cas->store_path and cas->data_key (call after
 * cas_datadir_open, and not in recovery mode) and cf_crypto_init. Opens its own store
 * handle, kept until cas_audit_done; its commits are reported to cas->anchor like the
 * workers'. Errors: CF_E_TAMPERED (a hole, a foreign key or an unauthentic entry; the
 * reason is logged), CF_E_STORE, CF_E_NOMEM, CF_E_CRYPTO. Not thread-safe: call before the
 * workers start. */
CF_FN cas_audit_init(struct cas *cas);

/* Frees the key and closes the audit store handle. Safe to call without init. */
void cas_audit_done(void);

/* Appends one entry: type is [a-z0-9._-]{1,64} (e.g. "policy.create", "policy.update",
 * "policy.delete", "activation.granted", "activation.refused", "collateral.import",
 * "collateral.delete"); actor is a key id or "workload"; details is a JSON object
 * (consumed, even on failure) holding no reals and never any secret. Thread-safe: entries
 * are ordered under a process-wide mutex and written in batches (group commit) through the
 * audit module's own store handle; it returns once the entry is durable. The caller's
 * handle (w->store) must NOT be inside a transaction (the write would wait for the
 * caller's own lock): call it after store_commit. Errors:
 * CF_E_INVALID_ARG / CF_E_SCHEMA (bad type, actor or details), CF_E_LIMIT (entry above
 * AUDIT_ENTRY_MAX), CF_E_STORE, CF_E_TIMEOUT, CF_E_TAMPERED (the chain on disk changed
 * under us), CF_E_NOMEM. Failures are logged here and counted in metrics.audit_failures.
 * For a state change, use cas_audit_txn_* instead: its entry must commit with it. */
CF_FN cas_audit_append(struct cas_worker *w, const char *type, const char *actor, json_t *details);

/* A refused activation (details as cas_audit_append would take them: policy, service,
 * version, platform, measurement, reason, failed_checks; consumed). Not written now:
 * refusals with equal details are counted in the current window and written as one
 * "activation.refused" entry with "count", "first" and "last" when the window ends (a
 * thread of this module wakes for it) or at cas_audit_flush_refusals. Best effort: a
 * refusal that cannot be recorded is logged and counted in metrics.audit_failures. */
void cas_audit_refused(struct cas_worker *w, json_t *details);

/* Length of the aggregation window in seconds (cofferd --refusal-window); call before the
 * workers start. */
void cas_audit_set_refusal_window(unsigned seconds);

/* Stops the aggregation thread and writes every pending bucket now (shutdown: cas_serve
 * calls it after the workers stopped and before the anchor records the last state; later
 * refusals are written one entry each). Safe to call twice or without init. */
void cas_audit_flush_refusals(void);

/* A state change and its entry in one store transaction (docs/formats/audit.md, "Failure
 * rule"). Use:
 *     TRY(cas_audit_txn_begin(&t));            -- before store_begin(w->store)
 *     store_begin(w->store); ...puts...; cas_audit_txn_put(w, &t, ...); store_commit(...)
 *     cas_audit_txn_end(&t, committed);        -- always, after the commit or rollback
 * Between begin and end this caller owns the tip of the chain and every other appender
 * waits, so keep the transaction short; never call cas_audit_append in between. */
struct cas_audit_txn {
        bool held;
        uint64_t seq;              /* the last entry this transaction wrote (or the head) */
        char hash[AUDIT_HASH_HEX]; /* and its hash */
};
/* Waits until no batch is being written, writes what is queued, then takes the tip.
 * CF_E_INVALID_ARG before init. */
CF_FN cas_audit_txn_begin(struct cas_audit_txn *t);
/* Puts the next entry through w->store, which must be inside its transaction. details is
 * consumed. Errors: as cas_audit_append, plus the put's (CF_E_EXISTS: another process
 * appended); counted in metrics.audit_failures. The caller must then roll back. */
CF_FN cas_audit_txn_put(struct cas_worker *w, struct cas_audit_txn *t, const char *type,
                        const char *actor, json_t *details);
/* Gives the tip back; committed says whether the caller's transaction committed (its
 * entries become the head). A no-op when t was not begun. */
void cas_audit_txn_end(struct cas_audit_txn *t, bool committed);

/* GET /v1/audit?from=N&limit=M (client certificate required) and GET /v1/audit/head (open);
 * rest is the path after "/v1/audit" ("" or "/head"). */
void cas_api_audit(struct cas_worker *w, struct evhttp_request *req, const char *rest);

/* The raw Ed25519 audit public key, for cofferd's attestation report data. Valid after
 * cas_audit_init. */
void cas_audit_public_key(uint8_t out[static AUDIT_KEY_SIZE]);

/* The current head, signed now: *ret_head is a new {"seq", "hash", "time"} object (caller
 * owns it) and sig_hex the hex Ed25519 signature over AUDIT_HEAD_DOMAIN || canonical head.
 * CF_E_INVALID_ARG before init, CF_E_NOMEM, CF_E_CRYPTO. Thread-safe. */
CF_FN cas_audit_head(json_t **ret_head, char sig_hex[static 2 * AUDIT_SIG_SIZE + 1]);

/* Reads entries from..from+limit-1 (stopping at the head, or after AUDIT_PAGE_BYTES) through
 * w->store into *ret (a new array the caller owns), authenticating each and checking its canonical
 * form, its seq and its link to the previous entry. *ret_head_seq is the head when the read
 * started. Errors: CF_E_TAMPERED (a missing, moved or unlinked entry; counted and logged),
 * CF_E_STORE, CF_E_NOMEM. */
CF_FN cas_audit_read(struct cas_worker *w, uint64_t from, uint64_t limit, json_t **ret,
                     uint64_t *ret_head_seq);
