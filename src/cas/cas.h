/* cofferd internals shared by its source files. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "base/status.h"
#include "attest/checks.h"
#include "attest/provider.h"
#include "cas/anchor.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"
#include "policy/policy.h"

struct policy;
struct store;

/* Limits on what a peer can make cofferd hold (see docs/operations.md). */
#define CAS_MAX_HEADERS_SIZE   16384
#define CAS_MAX_BODY_SIZE      (4u << 20)
#define CAS_TIMEOUT_SECONDS    10
/* Default time from accept (TLS handshake included) to the first complete request, and from
 * one complete request to the next beyond the idle timeout (cofferd --header-timeout). */
#define CAS_HEADER_TIMEOUT_SECONDS 10
/* Default cap on open connections per worker (cofferd --max-connections); lowered at start
 * so that all workers together stay below RLIMIT_NOFILE. */
#define CAS_MAX_CONNECTIONS_PER_WORKER 512
#define CAS_MAX_THREADS        64
#define CAS_NONCE_MAX          64
#define CAS_POLICY_CACHE_SIZE  64

struct cas_config {
        char data_dir[1024];
        char listen_host[256];
        uint16_t listen_port;
        int threads;              /* 0: one per online CPU */
        const char *anchor;       /* --anchor: "none", "file:PATH", NULL = default file */
        bool anchor_reset;        /* --anchor-reset */
        int sealing;              /* enum cas_sealing_kind; 0 = sim */
        const char *sealing_path; /* --sealing-path: device or directory of the provider */
        const char *tee;          /* --tee: where cofferd's own evidence comes from */
        const char *tsm_root;     /* --tsm-root (configfs-tsm), NULL = default */
        const char *attestation_root; /* --attestation-root (LibOS), NULL = default */
        bool verbose;
        unsigned header_timeout;  /* seconds; 0 = CAS_HEADER_TIMEOUT_SECONDS */
        unsigned max_connections; /* per worker; 0 = CAS_MAX_CONNECTIONS_PER_WORKER */
};

struct cas_metrics {
        atomic_ulong requests;
        atomic_ulong responses_2xx, responses_4xx, responses_5xx;
        atomic_ulong activations_granted, activations_refused;
        atomic_ulong policies_created, policies_updated, policies_deleted;
        atomic_ulong tamper_detected;
        atomic_ulong audit_failures;        /* entries that could not be written */
        atomic_ulong connections_timed_out; /* dropped: no complete request in time */
        atomic_ulong connections_evicted;   /* dropped: over the connection cap */
};

#define CAS_TRUSTED_SIM_KEYS_MAX 16

/* State shared by every worker thread; immutable after start except the atomics. */
struct cas {
        struct cas_config cfg;
        SSL_CTX *tls;
        char key_id[CF_KEY_ID_HEX];       /* cofferd's identity: SHA-256 of its TLS SPKI */
        uint8_t key_id_raw[CF_SHA256_SIZE];
        struct cf_secret *data_key;       /* unwrapped store data key */
        struct cf_pkey *sim_platform_key; /* signs cofferd's own sim evidence */
        uint8_t self_measurement[32];     /* SHA-256 of cofferd's executable */
        /* Sim platform keys whose evidence is believed: this machine's own, plus those given
         * with --trust-sim-key. Anyone can make a key; only these are the "sim hardware". */
        uint8_t trusted_sim_keys[CAS_TRUSTED_SIM_KEYS_MAX][32];
        size_t n_trusted_sim_keys;
        atomic_ulong collateral_generation; /* bumped on every collateral import or delete */
        struct cas_anchor anchor;           /* freshness of the store (rollback detection) */
        struct provider_choice tee;         /* cofferd's own evidence: sim or a TEE provider */
        /* Recovery mode: the sealing key cannot unwrap the data key; only health, version,
         * attestation and /v1/recovery are served until K shares restore it. */
        bool recovery_mode;
        struct cas_recovery_state *recovery;
        /* Serving with a fresh in-memory TLS key (recovery mode on a machine whose sealing
         * key cannot unseal tls.key.sealed); the original returns after the recovery. */
        bool tls_temporary;
        int listen_fd;
        char store_path[1100];
        struct cas_metrics metrics;
        int64_t started_at;
};

/* One per worker thread: its own event loop, HTTP server and store handle. */
struct cas_cached_policy {
        char name[256];
        uint64_t version;
        struct policy *policy;
};

struct cas_worker {
        struct cas *cas;
        struct event_base *base;
        struct evhttp *http;
        struct store *store;
        struct cas_cached_policy cache[CAS_POLICY_CACHE_SIZE];
        unsigned cache_next;
        struct attest_collateral collateral; /* this worker's copy of the stored collateral */
        bool collateral_loaded;
        unsigned long collateral_generation;
};

/* datadir.c: creates or loads the data directory: sim platform key, own measurement, then
 * cas_datadir_unlock. */
CF_FN cas_datadir_open(struct cas *cas);
/* Unwraps the data key with the sealing key, loads the TLS identity (unsealing
 * tls.key.sealed; migrating an old plain tls.key; creating both on a new directory) into
 * cas->tls and cas->key_id, replacing any previous SSL_CTX (call it only while no worker
 * runs), and checks the store's freshness. When the data key cannot be unwrapped and a
 * recovery bundle exists, sets recovery_mode instead of failing, and serves with the
 * original TLS key if it still unseals, else with a temporary one (tls_temporary). A
 * tls.key.sealed that does not open in normal mode is an error (CF_E_TAMPERED,
 * CF_E_CONFLICT), never a new identity. Errors are logged here. */
CF_FN cas_datadir_unlock(struct cas *cas);
/* After recovery: reseals the original TLS key from tls.key.recovery (opened with key) under
 * this machine's sealing key into tls.key.sealed, then wraps key into datakey.sealed. A TLS
 * key that cannot be restored is logged and does not fail the call (the next unlock refuses
 * to start instead). Errors: the sealing provider's, CF_E_IO and friends from the write. */
CF_FN cas_datadir_store_data_key(struct cas *cas, const uint8_t key[static 32]);
/* True when the data directory has a data key already. */
bool cas_datadir_initialised(const struct cas *cas);

/* server.c: binds the listening socket once (and prints the "listening" line), then serves
 * in the current mode until stopped (returns CF_OK) or until the mode changes. */
CF_FN cas_listen(struct cas *cas);
CF_FN cas_serve(struct cas *cas, bool *ret_mode_changed);
/* Ends the current serving loop so that main continues in another mode. */
void cas_request_mode_change(void);
/* Stops every worker loop (signal-safe: only writes to a pipe). */
void cas_request_stop(void);

/* Response helpers (server.c). Every reply is JSON except metrics. */
void cas_reply_json(struct evhttp_request *req, int status, json_t *body); /* consumes body */
/* Like cas_reply_json, for bodies that hold secrets: the text is wiped when sent. */
void cas_reply_json_secret(struct evhttp_request *req, int status, json_t *body);
void cas_reply_error(struct evhttp_request *req, int status, const char *code, const char *message,
                     json_t *details); /* consumes details (may be NULL) */
void cas_reply_status(struct evhttp_request *req, cf_status s, const char *what);
/* The TLS connection of a request. */
SSL *cas_request_ssl(struct evhttp_request *req);
/* The caller's key id (client certificate); false when none was presented. */
bool cas_request_key_id(struct evhttp_request *req, char out[static CF_KEY_ID_HEX]);
/* cas_request_key_id, replying 401 auth.client_certificate when there is none (policies.c). */
bool cas_require_caller(struct evhttp_request *req, char key_id[static CF_KEY_ID_HEX]);
/* Reads the request body into b (at most max bytes). */
CF_FN cas_request_body(struct evhttp_request *req, size_t max, struct cf_buf *b);

/* api_*.c: route handlers; path is the part after "/v1". */
void cas_api_health(struct cas_worker *w, struct evhttp_request *req);
void cas_api_version(struct cas_worker *w, struct evhttp_request *req);
void cas_api_metrics(struct cas_worker *w, struct evhttp_request *req);
void cas_api_attestation(struct cas_worker *w, struct evhttp_request *req);
void cas_api_policies(struct cas_worker *w, struct evhttp_request *req, const char *rest);
void cas_api_activate(struct cas_worker *w, struct evhttp_request *req);
void cas_api_collateral(struct cas_worker *w, struct evhttp_request *req, const char *rest);

/* collateral.c: every stored collateral file, reloaded when an import or delete happened
 * (borrowed until the next call on this worker). */
CF_FN cas_collateral_current(struct cas_worker *w, const struct attest_collateral **ret);

/* policies.c: the stored policy records, shared by the policy and activation handlers. */
struct cas_policy_record {
        uint64_t version;
        char digest[CF_KEY_ID_HEX];
        char predecessor[CF_KEY_ID_HEX]; /* "" for the first version */
        char creator[CF_KEY_ID_HEX];
        int64_t created;
        bool deleted;
        struct cf_buf document;          /* exact bytes as submitted */
};
void cas_policy_record_init(struct cas_policy_record *r);
void cas_policy_record_done(struct cas_policy_record *r);
/* Loads a version (0 = latest). CF_E_NOT_FOUND, CF_E_TAMPERED, ... */
CF_FN cas_policy_load(struct cas_worker *w, const char *name, uint64_t version,
                      struct cas_policy_record *ret);
/* The parsed latest version of a live policy, cached per worker (borrowed until the next
 * call on this worker). CF_E_NOT_FOUND for absent or deleted policies. */
CF_FN cas_policy_current(struct cas_worker *w, const char *name, const struct policy **ret,
                         uint64_t *ret_version);

/* secrets.c: generation on create/update and lookup at activation. */
CF_FN cas_secrets_provision(struct cas_worker *w, const struct policy *p,
                            const struct policy *previous);
/* The x509 module's algorithm for a policy key algorithm (mapped name by name). */
enum cf_x509_alg cas_x509_alg(enum policy_key_alg a);
/* Renders a secret for substitution into out (a secret buffer); ref is NAME or
 * NAME:ENCODING as written in the placeholder (docs/policy.md). */
CF_FN cas_secret_value(struct cas_worker *w, const struct policy *p, const char *name,
                       struct cf_buf *out);
/* Checks every imported secret of p (a version about to be stored) against its exporter as
 * stored now: the exporter exists and is not deleted, has the secret, exports it to p->name
 * and, when pinned, has the pinned digest; and every placeholder naming an import fits the
 * exporter's kind. *ret_errors is a new array (the caller owns it) of {"location",
 * "message"}, empty when all is well. Errors: a store failure (CF_E_TAMPERED, CF_E_STORE),
 * CF_E_NOMEM. */
CF_FN cas_secrets_validate_imports(struct cas_worker *w, const struct policy *p,
                                   json_t **ret_errors);
/* For the create and update handlers, before storing p: true when its imports resolve;
 * otherwise replies 422 "policy.import" with {"errors": [...]} (or the store failure's
 * status) and returns false. */
bool cas_secrets_imports_ok(struct cas_worker *w, struct evhttp_request *req,
                            const struct policy *p);
/* At activation, once the evidence was admitted and before the bundle is built: appends one
 * check "import.NAME" per imported secret (the exporter still exists, exports the secret to
 * p and matches the pinned digest: expected and actual say which), then renews the
 * certificates that are due (p's and its exporters'; renewal failures are logged and never
 * refuse). False when an import check failed: refuse the activation. now is the activation
 * time (seconds since the epoch). */
bool cas_secrets_activate(struct cas_worker *w, const struct policy *p, int64_t now,
                          struct attest_checks *checks);

/* volumes.c: volume keys (made when a policy version is stored), activation bundle entries,
 * and the two-phase tag endpoint POST|GET /v1/volumes/POLICY/VOLUME/tag. */
CF_FN cas_volumes_provision(struct cas_worker *w, const struct policy *p);
struct policy_service;
CF_FN cas_volumes_bundle(struct cas_worker *w, const struct policy *p,
                         const struct policy_service *svc, json_t *bundle);
void cas_api_volumes(struct cas_worker *w, struct evhttp_request *req, const char *rest);

/* evidence.c: workload evidence as activation and attested approvals check it. */
struct policy_service;
/* Decodes {"type": PLATFORM, "data": BASE64} into bytes (bounded by the buffer's max).
 * CF_E_SCHEMA (shape), CF_E_UNSUPPORTED (unknown type), CF_E_LIMIT, CF_E_ENCODING. */
CF_FN cas_evidence_decode(json_t *ev, enum attest_platform *ret_platform, struct cf_buf *bytes);
/* Verifies evidence of platform with its verifier, offline, against this cofferd's collateral
 * (and, for sim, its trusted sim platform keys) at now. Claims and checks go to res. */
CF_FN cas_evidence_verify(struct cas_worker *w, enum attest_platform platform,
                          struct cf_slice bytes, int64_t now, struct attest_result *res);
/* Appends "binding.report_data": the evidence's report data must be
 * SHA-512("coffer-activation-v1" || TLS exporter of req's connection). */
CF_FN cas_evidence_check_binding(struct evhttp_request *req, struct attest_result *res);
/* The claim that names the code (measurement, mrenclave or mrtd), or "", for logs. */
void cas_evidence_measurement(const struct attest_result *res, char out[static 97]);
/* Verify, check the binding, then evaluate svc's rules: true only when all three pass.
 * *ret_status is the verifier's or binding's status (for refusals without failed checks). */
bool cas_evidence_admits(struct cas_worker *w, struct evhttp_request *req,
                         const struct policy_service *svc, enum attest_platform platform,
                         struct cf_slice bytes, int64_t now, struct attest_result *res,
                         cf_status *ret_status);

/* workload_cert.c: the certificate of a service's `certificate:` (docs/policy.md, "Workload
 * certificates"), issued at activation for the key of a verified certificate request. */
struct cf_x509_csr_key;
struct cas_workload_cert {
        struct cf_buf cert;         /* PEM: the leaf, then (chain) its issuers below the root */
        struct cf_buf ca;           /* PEM: the root CA of the issuer's chain */
        char serial[41];            /* lower-case hex (CF_X509_SERIAL_HEX_MAX) */
        int64_t not_after;          /* seconds since the epoch */
        char key_id[CF_KEY_ID_HEX]; /* SHA-256 of the workload's SubjectPublicKeyInfo */
};
void cas_workload_cert_init(struct cas_workload_cert *c);
void cas_workload_cert_done(struct cas_workload_cert *c);
/* The name of the key algorithm svc's certificate wants ("p256", ...); NULL without one. */
const char *cas_workload_cert_algorithm(const struct policy_service *svc);
/* Issues svc's certificate for key (from cf_x509_csr_parse_verify) with the policy's issuer
 * CA, read through cas_secret_value. out must be initialised; on failure it may hold part of
 * the result (cas_workload_cert_done frees it either way). Errors: CF_E_INVALID_ARG (svc has
 * no certificate), CF_E_CONFLICT (key is not of the policy's algorithm), the secret lookup's
 * and the x509 module's errors. */
CF_FN cas_workload_cert_issue(struct cas_worker *w, const struct policy *p,
                              const struct policy_service *svc, const struct cf_x509_csr_key *key,
                              struct cas_workload_cert *out);

/* Logs a store failure with what was asked; counts tampering. */
void cas_log_store_error(struct cas *cas, cf_status s, const char *table, const char *key);

/* policies.c, proposals.c: who governs a change of a policy (its board or access.update, the
 * namespace it is created in, the board of a deleted name it re-creates), docs/policy.md. */
struct policy_approval;
struct policy_service_vote;
enum cas_change_kind { CAS_CHANGE_CREATE = 1, CAS_CHANGE_UPDATE, CAS_CHANGE_DELETE };
struct cas_change {
        enum cas_change_kind kind;
        char name[256];
        /* The new document's digest, or for a deletion SHA-256(POLICY_DELETION_DOMAIN||base). */
        char digest[CF_KEY_ID_HEX];
        /* The digest of the latest stored version (live or a deletion) when the change was
         * decided, "" when the name was never used: the predecessor every approval statement
         * names, and the one the written version records. */
        char base[CF_KEY_ID_HEX];
        uint64_t version;                /* the version the change writes (base's + 1) */
        struct cas_policy_record record; /* the version to write (document bytes) */
        struct policy *doc;              /* create and update: the parsed document (owned) */
        struct policy *current;          /* update and delete: the current version (owned) */
};
/* Initialises a change for name (kind and, except for deletions, record.document and doc are
 * the caller's to fill). cas_change_done frees what it owns. */
void cas_change_init(struct cas_change *c, enum cas_change_kind kind);
void cas_change_done(struct cas_change *c);

enum cas_verdict {
        CAS_ALLOWED = 1, /* every governor approved */
        CAS_PENDING,     /* a governor has not approved (yet) */
        CAS_VETOED,      /* a veto member of a board vetoed: the change cannot pass */
        CAS_REFUSED,     /* the change cannot apply to the stored state (404, 409, 400) */
};
struct cas_decision {
        enum cas_verdict verdict;
        int status;        /* for anything but CAS_ALLOWED: the HTTP status of the refusal */
        const char *code;  /* and its error code */
        char message[400];
        json_t *details;   /* owned: {"checks": [...]} or other details; may be NULL */
        /* owned: one entry per governor {"role", "policy", "met", "approved_by", "needs"} */
        json_t *governors;
        /* owned: key ids of the people who may approve (members, create and update keys) */
        json_t *approvers;
        /* owned: "policy/service" of the attested programs that are members of a board */
        json_t *services;
};
void cas_decision_done(struct cas_decision *d);

/* Loads the stored state of c->name, sets c->base, c->version (and c->current, and for a
 * deletion c->digest), then evaluates every governor against the approvals and the attested
 * programs' votes, with caller (a key id, or NULL for none) counting as a key-list approver.
 * The outcome is in *ret (always initialised; cas_decision_done). Errors are store failures
 * only (CF_E_STORE, CF_E_TAMPERED, CF_E_NOMEM): refusals are verdicts. */
CF_FN cas_change_decide(struct cas_worker *w, struct cas_change *c, const char *caller,
                        struct policy_approval *const *approvals, size_t n,
                        const struct policy_service_vote *votes, size_t n_votes,
                        struct cas_decision *ret);

/* Writes an allowed change (its record, secrets and volume keys) in one transaction, with
 * one more put in the same transaction when extra_table is not NULL (a proposal's new
 * state), and its audit entry policy.create / policy.update / policy.delete with actor in
 * the same transaction (cas_audit_txn_*): when the entry cannot be written nothing is.
 * CF_E_EXISTS / CF_E_CONFLICT when a concurrent change won. */
CF_FN cas_change_apply(struct cas_worker *w, struct cas_change *c, const char *actor,
                       const char *extra_table, const char *extra_key, uint64_t extra_version,
                       struct cf_slice extra_value);

/* The JSON summary of a stored version (as the policy endpoints reply). */
json_t *cas_policy_summary(const char *name, const struct cas_policy_record *r);

/* proposals.c: /v1/policies/NAME/proposals[/DIGEST[/approvals]]; rest is what follows
 * "/proposals" ("" or "/DIGEST" or "/DIGEST/approvals"). */
void cas_api_proposals(struct cas_worker *w, struct evhttp_request *req, const char *name,
                       const char *rest);

/* release.c: POST /v1/policies/NAME/secrets/SECRET/release (a secret given to a person with
 * its governors' consent); rest is what follows "/secrets/". */
void cas_api_release(struct cas_worker *w, struct evhttp_request *req, const char *name,
                     const char *rest);
