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
 * under us), CF_E_NOMEM. Failures are logged here. */
CF_FN cas_audit_append(struct cas_worker *w, const char *type, const char *actor, json_t *details);

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
