/* The audit chain format (docs/formats/audit.md) and its offline verifier, shared by cofferd
 * (which writes entries and signs heads), `coffer audit verify` and the tests.
 *
 * An entry is a JSON object {"seq", "prev", "time", "type", "actor", "details"}; its
 * canonical bytes are jansson's JSON_COMPACT | JSON_SORT_KEYS dump, and its hash is SHA-256
 * of those bytes. Canonical form is checked, never assumed: exact key set, integer seq,
 * lower-case hex links, "YYYY-MM-DDTHH:MM:SSZ" times, and no real numbers anywhere (their
 * text is not stable across encoders). A head {"seq", "hash", "time"} is signed with Ed25519
 * over "coffer-audit-head-v1" || canonical head bytes.
 *
 * Nothing here logs, prints or does I/O. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define AUDIT_FORMAT        "coffer-audit-chain-v1" /* "format" of a downloaded chain */
#define AUDIT_HEAD_DOMAIN   "coffer-audit-head-v1"  /* prefix of the signed head bytes */
#define AUDIT_HASH_HEX      CF_KEY_ID_HEX           /* 64 hex digits and a NUL */
#define AUDIT_KEY_SIZE      32                      /* raw Ed25519 public key */
#define AUDIT_SIG_SIZE      64                      /* raw Ed25519 signature */
#define AUDIT_TYPE_MAX      64                      /* bytes of an entry type */
#define AUDIT_ACTOR_MAX     128                     /* bytes of an actor */
#define AUDIT_ENTRY_MAX     (64u << 10)             /* canonical bytes of one entry */
#define AUDIT_DETAILS_DEPTH 8                       /* nesting of arrays/objects in details */
#define AUDIT_SEQ_MAX       ((uint64_t)INT64_MAX)   /* jansson integers are signed 64-bit */
#define AUDIT_TIME_SIZE     21                      /* "YYYY-MM-DDTHH:MM:SSZ" and a NUL */
#define AUDIT_DOC_MAX       (512u << 20)            /* bytes of a downloaded chain file */
#define AUDIT_ENTRIES_MAX   10000000                /* entries in a downloaded chain */

/* "00" * 32: the "prev" of entry 1 and the "hash" of the head of an empty chain. */
extern const char audit_zero_hash[AUDIT_HASH_HEX];

/* Checks that entry is a well-formed entry in canonical form (see the header comment) and
 * appends its canonical bytes to out (a non-secret buffer with max >= AUDIT_ENTRY_MAX is
 * enough). entry is borrowed. CF_E_SCHEMA (wrong keys, types or field syntax),
 * CF_E_LIMIT (too long or too deeply nested), CF_E_NOMEM. Nothing is appended on failure. */
CF_FN audit_entry_canonical(const json_t *entry, struct cf_buf *out);

/* Lower-case hex SHA-256 of canonical bytes (an entry's hash). */
CF_FN audit_hash_hex(struct cf_slice canonical, char out[static AUDIT_HASH_HEX]);

/* Checks a head object {"seq", "hash", "time"} and appends the exact bytes its signature
 * covers: AUDIT_HEAD_DOMAIN followed by the canonical head. CF_E_SCHEMA, CF_E_NOMEM. */
CF_FN audit_head_message(const json_t *head, struct cf_buf *out);

/* Verifies a hex Ed25519 signature over a head with a raw public key. CF_E_SCHEMA,
 * CF_E_ENCODING (bad hex), CF_E_SIG_INVALID. */
CF_FN audit_head_verify(const json_t *head, const char *sig_hex,
                        const uint8_t key[static AUDIT_KEY_SIZE]);

/* What is wrong with a chain, first problem only. */
enum audit_problem {
        AUDIT_VALID = 0,
        AUDIT_MALFORMED, /* the document or an entry is not in the format */
        AUDIT_KEY,       /* the audit key differs from the pinned one */
        AUDIT_SIGNATURE, /* the head signature does not verify */
        AUDIT_DELETED,   /* an entry is missing from the sequence */
        AUDIT_REORDERED, /* entries are out of order */
        AUDIT_DUPLICATE, /* an entry appears twice */
        AUDIT_EDITED,    /* an entry's bytes differ from what the chain committed to */
        AUDIT_TRUNCATED, /* entries covered by the signed head are missing at the end */
        AUDIT_UNSIGNED,  /* entries after the signed head */
        AUDIT_FORK,      /* two copies differ inside their common prefix */
        AUDIT_ROLLBACK,  /* the copy signed later is shorter than the one signed earlier */
};

/* The verdict on one chain (or on a comparison of two). */
struct audit_verdict {
        enum audit_problem problem;
        uint64_t seq;      /* the entry concerned; 0 for the document or head */
        char message[320]; /* one sentence naming the entry and the problem */
        /* A summary of the chain (filled as far as it could be read). */
        uint64_t n_entries;
        uint64_t head_seq;
        char head_hash[AUDIT_HASH_HEX];
        char head_time[AUDIT_TIME_SIZE];
        char audit_key[2 * AUDIT_KEY_SIZE + 1];
};

/* Stable lower-case name of a problem ("valid", "deleted", "edited", ...). */
const char *audit_problem_name(enum audit_problem p);

/* Verifies a downloaded chain offline: {"format", "audit_key", "head", "signature",
 * "entries"}. Checks the format, the audit key against pinned_key (NULL: the document's own
 * key is used, which proves only internal consistency), the head signature, each entry's
 * canonical form, seq continuity (deletion, reordering, duplicates), that the head covers
 * exactly the entries (truncation, unsigned additions) and every prev link from the signed
 * head backwards, so the first broken link names the edited entry. doc is borrowed; out is
 * always filled. CF_OK when valid; otherwise CF_E_TAMPERED (out->problem says what),
 * CF_E_NOMEM or CF_E_CRYPTO. */
CF_FN audit_verify_chain(const json_t *doc, const uint8_t *pinned_key, struct audit_verdict *out);

/* Report data of cofferd's attestation (v2), which binds its audit key next to its TLS key:
 * SHA-512("coffer-cas-attestation-v2" || TLS key id (32 raw bytes: SHA-256 of the
 * certificate's SubjectPublicKeyInfo) || audit public key (32 raw Ed25519 bytes) || nonce).
 * Every part but the last has a fixed size, so the concatenation is unambiguous. */
#define AUDIT_CAS_ATTESTATION_DOMAIN "coffer-cas-attestation-v2"
CF_FN audit_cas_report_data(const uint8_t key_id[static CF_SHA256_SIZE],
                            const uint8_t audit_key[static AUDIT_KEY_SIZE], struct cf_slice nonce,
                            uint8_t out[static CF_SHA512_SIZE]);

/* Compares two chains that each verified with audit_verify_chain (the caller checks that
 * first): their common prefix must be identical (else AUDIT_FORK naming the first differing
 * seq), and the one whose head was signed later must not be shorter (else AUDIT_ROLLBACK).
 * Both documents are borrowed; out is always filled. CF_OK, CF_E_TAMPERED, CF_E_NOMEM. */
CF_FN audit_compare_chains(const json_t *a, const json_t *b, struct audit_verdict *out);
