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

struct policy;
struct store;

/* Limits on what a peer can make cofferd hold (see docs/operations.md). */
#define CAS_MAX_HEADERS_SIZE   16384
#define CAS_MAX_BODY_SIZE      (4u << 20)
#define CAS_TIMEOUT_SECONDS    10
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
};

struct cas_metrics {
        atomic_ulong requests;
        atomic_ulong responses_2xx, responses_4xx, responses_5xx;
        atomic_ulong activations_granted, activations_refused;
        atomic_ulong policies_created, policies_updated, policies_deleted;
        atomic_ulong tamper_detected;
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

/* datadir.c: creates or loads the data directory: TLS identity, sim platform key, own
 * measurement, then unlocks the store (cas_datadir_unlock). */
CF_FN cas_datadir_open(struct cas *cas);
/* Unwraps the data key with the sealing key and checks the store's freshness; when the key
 * cannot be unwrapped and a recovery bundle exists, sets recovery_mode instead of failing. */
CF_FN cas_datadir_unlock(struct cas *cas);
/* Wraps key under this machine's sealing key into datakey.sealed (after recovery). */
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
/* Renders a secret for substitution into out (a secret buffer); ref is NAME or
 * NAME:ENCODING as written in the placeholder (docs/policy.md). */
CF_FN cas_secret_value(struct cas_worker *w, const struct policy *p, const char *name,
                       struct cf_buf *out);

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

/* Logs a store failure with what was asked; counts tampering. */
void cas_log_store_error(struct cas *cas, cf_status s, const char *table, const char *key);
