/* Policy documents: YAML or JSON text -> a validated, self-contained model.
 *
 * A policy names the services that may be activated, the attestation rules that grant
 * each one its configuration (argv, environment, injected files), the secrets those
 * configurations refer to through $$coffer:NAME$$ placeholders, and the key ids that may
 * read or update the policy. The full reference is docs/policy.md.
 *
 * Parsing is all-or-nothing: a document with any error yields no model, and every error
 * found (up to POLICY_ERRORS_MAX) is reported with its location, so an author can fix a
 * document in one round trip. The model never borrows from the input text. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "attest/checks.h"
#include "base/cursor.h"
#include "base/mem.h"
#include "base/status.h"

struct cf_pkey; /* crypto/crypto.h */

/* Named limits of the document format (see docs/policy.md). */
#define POLICY_DOC_MAX           (1u << 20) /* bytes of policy text */
#define POLICY_DEPTH_MAX         32         /* nesting of mappings and lists */
#define POLICY_NAME_MAX          200        /* "namespace/name" characters */
#define POLICY_SEGMENT_MAX       63         /* characters of one name segment */
#define POLICY_ACCESS_MAX        64         /* key ids per access list */
#define POLICY_SERVICES_MAX      64
#define POLICY_SERVICE_NAME_MAX  64
#define POLICY_COMMAND_MAX       256 /* argv elements */
#define POLICY_ENV_MAX           256 /* environment entries, and passthrough names */
#define POLICY_ENV_NAME_MAX      128
#define POLICY_FILES_MAX         256
#define POLICY_PATH_MAX          4096
#define POLICY_FILE_CONTENT_MAX  (1u << 20)
#define POLICY_RULES_MAX         16
#define POLICY_MEASUREMENTS_MAX  64
#define POLICY_SECRETS_MAX       256
#define POLICY_SECRET_NAME_MAX   64
#define POLICY_SECRET_SIZE_MAX   4096
#define POLICY_CHARSET_MIN       2
#define POLICY_CHARSET_MAX       95
#define POLICY_FILE_MODE_DEFAULT 0400u
#define POLICY_VOLUMES_MAX       64
#define POLICY_VOLUME_NAME_MAX   64

/* ---- errors ---------------------------------------------------------------------------- */

#define POLICY_ERRORS_MAX 64
struct policy_error {
        /* YAML: "line 12, column 7 ($.services[0].name)"; JSON: "$.services[0].command[1]";
         * syntax errors: "line L, column C" from the parser. */
        char location[160];
        char message[256]; /* user strings inside are escaped, quoted and capped */
};
struct policy_errors {
        struct policy_error items[POLICY_ERRORS_MAX];
        size_t n;
        bool truncated; /* more errors were found than items can hold */
};

/* ---- model ----------------------------------------------------------------------------- */

enum policy_secret_kind {
        POLICY_SECRET_ASCII = 1,
        POLICY_SECRET_HEX,
        POLICY_SECRET_BASE64,
        POLICY_SECRET_BINARY,
        POLICY_SECRET_PRIVATE_KEY, /* generated key pair (algorithm) */
        POLICY_SECRET_PUBLIC_KEY,  /* the public half of the private-key secret `of` */
        POLICY_SECRET_X509_CA,     /* a CA certificate and its key: self-signed or by `issuer` */
        POLICY_SECRET_X509,        /* a leaf certificate and its key, issued by `issuer` */
        /* Not a document kind: a secret declared with `import` (no `kind`), which takes the
         * exporter's kind; only cofferd can resolve it (docs/policy.md, "Sharing secrets"). */
        POLICY_SECRET_IMPORT,
};
#define POLICY_SECRET_KIND_MAX POLICY_SECRET_X509 /* the last kind a document may name */

/* Limits and defaults of key and certificate secrets (docs/policy.md, "Secrets"). */
#define POLICY_SAN_MAX               64    /* entries of dns, and of ip, per certificate */
#define POLICY_ISSUER_DEPTH_MAX      8     /* x509-ca secrets above any certificate */
#define POLICY_DNS_NAME_MAX          253   /* characters of one DNS name */
#define POLICY_COMMON_NAME_MAX       64    /* characters of a common name */
#define POLICY_VALIDITY_DAYS_MAX     36500 /* 100 years */
#define POLICY_CA_VALIDITY_DEFAULT   3650
#define POLICY_X509_VALIDITY_DEFAULT 365
#define POLICY_USAGE_SERVER          1u /* extendedKeyUsage serverAuth */
#define POLICY_USAGE_CLIENT          2u /* extendedKeyUsage clientAuth */

/* Versions, renewal and sharing (docs/policy.md, "Versions and rotation", "Sharing secrets"). */
#define POLICY_ROTATE_MAX  1000000000 /* largest `rotate` generation */
#define POLICY_EXPORTS_MAX 64         /* entries of one secret's `export` list */

/* Key algorithms of private-key, x509-ca and x509 secrets (default p256). */
enum policy_key_alg {
        POLICY_ALG_ED25519 = 1,
        POLICY_ALG_P256,
        POLICY_ALG_P384,
        POLICY_ALG_RSA2048,
        POLICY_ALG_RSA3072,
        POLICY_ALG_RSA4096,
};

struct policy_secret {
        char *name;
        enum policy_secret_kind kind;
        size_t size;   /* bytes of randomness to generate, or value_size for explicit values */
        char *charset; /* ascii only; NULL = the default set (letters and digits) */
        bool has_value;
        uint8_t *value; /* explicit value: text bytes for ascii, decoded bytes otherwise;
                           a secret, wiped by policy_free */
        size_t value_size;

        /* Keys and certificates; zero/NULL for the other kinds. */
        enum policy_key_alg algorithm; /* private-key, x509-ca, x509 */
        char *of;                      /* public-key: a private-key secret of this policy */
        char *issuer;      /* x509 (required), x509-ca (NULL: self-signed): an x509-ca */
        char *common_name; /* x509-ca, x509 */
        char **dns;        /* x509: SAN DNS names, as written */
        size_t n_dns;
        char **ip; /* x509: SAN IP addresses, as written */
        size_t n_ip;
        unsigned usage;         /* x509: POLICY_USAGE_* bits, never 0 */
        uint32_t validity_days; /* x509-ca, x509 */
        /* x509-ca, derived (not in the document): the longest chain of x509-ca secrets of the
         * policy below this one, which is its certificate's pathLenConstraint. */
        int path_len;

        /* Generated kinds (not explicit values, not public-key, not imports): the generation;
         * an update that changes it makes a new value and keeps the old one as `previous`. */
        uint32_t rotate;
        /* x509-ca, x509: re-issue (same key) when fewer days than this remain; 0 = never.
         * Default: validity_days / 3, at least 1. */
        uint32_t renew_before_days;
        /* Policies that may import this secret: names, or "ns/" "*" for any policy under ns. */
        char **export_to;
        size_t n_export_to;
        /* POLICY_SECRET_IMPORT only: the exporter's policy and secret names, and the
         * exporter's document digest it is pinned to (lower-case hex, "" when not pinned). */
        char *import_policy;
        char *import_secret;
        char import_digest[65];
};

/* True when sec's `export` list names the policy `importer` (exactly, or through a
 * namespace entry "ns/" "*" with importer under ns). False for NULL arguments. */
bool policy_export_allows(const struct policy_secret *sec, const char *importer);

/* How a placeholder renders its secret: $$coffer:NAME$$ or $$coffer:NAME:ENCODING$$.
 * ENCODING is a base encoding, optionally followed by ":json", or "json" alone (the default
 * rendering, JSON-escaped). docs/policy.md lists which encodings fit which kinds. */
enum policy_enc {
        POLICY_ENC_DEFAULT = 0, /* no encoding given: pem for keys and certificates */
        POLICY_ENC_PEM,         /* "pem" */
        POLICY_ENC_DER_BASE64,  /* "der:base64" */
        POLICY_ENC_HEX,         /* "hex" */
        POLICY_ENC_BASE64,      /* "base64" */
        POLICY_ENC_CHAIN,       /* "chain": certificate then its issuers, PEM */
        POLICY_ENC_PKCS8,       /* "pkcs8": private key, PEM PKCS#8 */
        POLICY_ENC_KEY,         /* "key": private key of a certificate secret, PEM */
        POLICY_ENC_PUBLIC,      /* "public": public key, PEM SubjectPublicKeyInfo */
};
#define POLICY_ENCODING_MAX 24 /* characters of an ENCODING, ":json" included */

struct policy_encoding {
        enum policy_enc base;
        bool json;     /* JSON-string-escape the result (no quotes) */
        bool previous; /* "previous" qualifier: the secret's previous version */
};

/* Splits a placeholder reference "NAME" or "NAME:ENCODING" (what policy_substitute passes to
 * its lookup callback) into the secret name (a NUL-terminated copy into name) and the parsed
 * encoding. ENCODING may start with the qualifier "previous" ("previous", "previous:pem",
 * "previous:json"), which sets ret->previous. CF_E_MALFORMED for a bad name or an unknown
 * encoding. */
CF_FN policy_placeholder_split(const char *ref, char name[static POLICY_SECRET_NAME_MAX + 1],
                               struct policy_encoding *ret);

/* True when an encoding can render a secret of that kind (base and JSON form). Every
 * encoding fits POLICY_SECRET_IMPORT: the parser cannot know the exporter's kind, cofferd
 * checks it when the importer is stored and at activation. */
bool policy_encoding_fits(enum policy_secret_kind kind, enum policy_enc base);

/* The document's name of a kind ("private-key"), or NULL when out of range. */
const char *policy_secret_kind_name(enum policy_secret_kind kind);

/* Appends s JSON-string-escaped (no surrounding quotes) to out: '"', '\\' and control
 * characters are escaped, other bytes copied. For values placed inside JSON files. */
CF_FN policy_json_escape(struct cf_slice s, struct cf_buf *out);

struct policy_kv {
        char *name;
        char *value;
};

struct policy_file {
        char *path;
        uint32_t mode;
        char *content;
};

/* Limits of attestation rules (see docs/policy.md, "Attestation rules"). */
#define POLICY_TCB_STATUSES_MAX 6   /* the acceptable Intel TCB statuses */
#define POLICY_ADVISORIES_MAX   128 /* accepted advisory ids per rule */
#define POLICY_ADVISORY_ID_MAX  64  /* characters of one advisory id */
#define POLICY_VMPL_MAX         3   /* SNP VMPLs are 0..3 */
#define POLICY_TDX_RTMRS        4

/* A list of accepted values of one evidence claim, as lower-case hex. n == 0 means the key
 * is absent from the rule: the claim is not constrained. */
struct policy_values {
        char **items;
        size_t n;
};

/* One accepted TCB status (Intel's name) or advisory id (upper case), optionally only until
 * a time: accepted while now <= until (time-staged TCB recovery). */
struct policy_accept {
        char *name;
        bool has_until;
        int64_t until; /* seconds since the epoch */
};

/* Components of an SNP TCB_VERSION that min_tcb may bound. */
enum policy_snp_tcb {
        POLICY_SNP_TCB_BOOTLOADER = 0,
        POLICY_SNP_TCB_TEE,
        POLICY_SNP_TCB_SNP,
        POLICY_SNP_TCB_MICROCODE,
        POLICY_SNP_TCB_FMC, /* Turin only */
        POLICY_SNP_TCB_N
};

/* SNP guest policy bits a rule may require or forbid. */
enum policy_snp_bit {
        POLICY_SNP_BIT_DEBUG = 0,
        POLICY_SNP_BIT_MIGRATION_AGENT,
        POLICY_SNP_BIT_SMT,
        POLICY_SNP_BIT_SINGLE_SOCKET,
        POLICY_SNP_BIT_N
};

enum policy_bit_rule {
        POLICY_BIT_ANY = 0,   /* not constrained */
        POLICY_BIT_REQUIRED,  /* written as true */
        POLICY_BIT_FORBIDDEN, /* written as false */
};

/* One attestation rule. Which fields are used depends on the platform; unused fields are
 * zero. Every hex value is lower case. */
struct policy_rule {
        enum attest_platform platform;
        /* sim (64 hex digits) and snp (96 hex digits): accepted measurements, never empty. */
        char **measurements;
        size_t n_measurements;

        /* sgx: either mrenclave (n > 0), or mrsigner + isvprodid with isvsvn >= min_isvsvn. */
        struct policy_values mrenclave; /* 64 hex digits each */
        bool has_mrsigner;
        char mrsigner[65];
        uint16_t isvprodid;
        uint16_t min_isvsvn;

        /* tdx: each list optional (n == 0); at least one is present. 96 hex digits each. */
        struct policy_values mrtd;
        struct policy_values rtmr[POLICY_TDX_RTMRS];
        struct policy_values mrconfigid;
        struct policy_values mrowner;

        /* snp */
        struct policy_values host_data;     /* 64 hex digits each */
        struct policy_values id_key_digest; /* 96 hex digits each */
        bool has_min_tcb[POLICY_SNP_TCB_N];
        uint8_t min_tcb[POLICY_SNP_TCB_N]; /* against the report's REPORTED_TCB */
        enum policy_bit_rule snp_policy[POLICY_SNP_BIT_N];
        uint8_t vmpl_mask; /* bit v set: VMPL v accepted; 0 = any VMPL */

        /* sgx and tdx: accepted TCB statuses (never empty: the default is [UpToDate]) and
         * accepted advisories (empty by default: evidence with any advisory is refused). */
        struct policy_accept *tcb_status;
        size_t n_tcb_status;
        struct policy_accept *advisories;
        size_t n_advisories;
};

/* Shielded volumes (docs/formats/volume.md): what a rollback of the volume means. */
enum policy_volume_rollback {
        POLICY_VOLUME_PROTECTED = 1,   /* an unexpected tag is refused as a rollback */
        POLICY_VOLUME_REINITIALIZABLE, /* an unexpected tag may be replaced by a new volume */
        POLICY_VOLUME_EPHEMERAL,       /* no freshness: any tag is accepted */
};
/* How tag changes reach cofferd (docs/formats/volume.md "Freshness"). */
enum policy_volume_freshness {
        POLICY_VOLUME_STRICT = 1, /* every fsync waits until cofferd holds the new tag */
        POLICY_VOLUME_BATCHED,    /* fsync is local; cofferd learns the tag within a window */
};
#define POLICY_VOLUME_WINDOW_MIN_MS     10u
#define POLICY_VOLUME_WINDOW_MAX_MS     1000u
#define POLICY_VOLUME_WINDOW_DEFAULT_MS 100u
struct policy_volume {
        char *name; /* [A-Za-z0-9][A-Za-z0-9._-]{0,63}, unique */
        enum policy_volume_rollback rollback;
        enum policy_volume_freshness freshness; /* default strict */
        uint32_t batched_window_ms; /* batched only: WINDOW_MIN_MS..WINDOW_MAX_MS, default 100 */
};
/* A service mounts a volume at an absolute path. */
struct policy_mount {
        char *volume;
        char *path;
};

/* A service's workload certificate (docs/policy.md, "Workload certificates"): cofferd issues
 * it at activation, signed by `issuer`, for the key of the CSR coffer-run sends; the private
 * key never leaves the workload. Every field but the paths says what the certificate holds. */
#define POLICY_WORKLOAD_VALIDITY_DEFAULT 30
struct policy_certificate {
        char *issuer;      /* an x509-ca secret of the same policy */
        char *common_name; /* default: the service name */
        char **dns;        /* SAN DNS names, as written */
        size_t n_dns;
        char **ip; /* SAN IP addresses, as written */
        size_t n_ip;
        unsigned usage;                /* POLICY_USAGE_* bits, never 0; default both */
        uint32_t validity_days;        /* default 30, at most the issuer's */
        enum policy_key_alg algorithm; /* of the workload's key; default p256 */
        char *key_path;                /* where coffer-run writes the private key (0400) */
        char *cert_path;               /* the certificate, then its chain when chain */
        char *ca_path;                 /* the root CA certificate; NULL when absent */
        bool chain; /* cert_path also holds the issuers up to, not including, the root */
};

struct policy_service {
        char *name;
        char **command;
        size_t n_command;
        struct policy_kv *env;
        size_t n_env;
        char **passthrough_env;
        size_t n_passthrough_env;
        char *working_dir; /* NULL when absent */
        struct policy_file *files;
        size_t n_files;
        struct policy_rule *rules;
        size_t n_rules;
        struct policy_mount *mounts;
        size_t n_mounts;
        bool tolerate_simulation;
        bool tolerate_debug;
        bool tolerate_outdated_tcb;
        struct policy_certificate *certificate; /* NULL when the service has none */
};

/* ---- boards (docs/policy.md, "Boards") --------------------------------------------------- */

#define POLICY_BOARD_MEMBERS_MAX    64   /* members of one board */
#define POLICY_BOARD_NAME_MAX       64   /* characters of a member name */
#define POLICY_BOARD_DEPTH_MAX      8    /* nesting of rules: a bare name is depth 1 */
#define POLICY_BOARD_RULE_ITEMS_MAX 64   /* items of one all_of or of list */
#define POLICY_BOARD_KEY_PEM_MAX    4096 /* characters of a member's PEM public key */

enum policy_member_kind {
        POLICY_MEMBER_PERSON = 1, /* identified by a public key (key id) */
        POLICY_MEMBER_SERVICE,    /* an attested program, "policy/service" */
};

struct policy_member {
        char *name; /* [A-Za-z0-9][A-Za-z0-9._-]{0,63}, unique in the board */
        enum policy_member_kind kind;
        /* People: the key id (lower-case hex SHA-256 of the SPKI) always; the key and its PEM
         * text when the document gave one (NULL when only key_id was given). */
        char key_id[65];
        struct cf_pkey *key;
        char *key_pem;
        /* Programs: "namespace/name/service" (a policy name, '/', a service name). */
        char *service;
};

enum policy_board_rule_kind {
        POLICY_BOARD_RULE_MEMBER = 1, /* met when that member approved */
        POLICY_BOARD_RULE_ALL_OF,     /* met when every item is met */
        POLICY_BOARD_RULE_AT_LEAST,   /* met when at least `at_least` items are met */
};

struct policy_board_rule {
        enum policy_board_rule_kind kind;
        size_t member;                   /* MEMBER: index into policy_board.members */
        size_t at_least;                 /* AT_LEAST: 1..n_items */
        struct policy_board_rule *items; /* ALL_OF, AT_LEAST: 1..POLICY_BOARD_RULE_ITEMS_MAX */
        size_t n_items;
};

/* A namespace: creating NAME/... needs a key of create, or (create empty) the board's
 * approval, or (no board either) a key of access.update. */
#define POLICY_NAMESPACE_CREATE_MAX 64
struct policy_namespace {
        char **create_ids; /* lower-case hex key ids; may be empty */
        size_t n_create_ids;
};

/* Who must approve a change of the policy (create, update, delete). */
struct policy_board {
        struct policy_member *members;
        size_t n_members;
        struct policy_board_rule rule;
        size_t *veto; /* indices into members; any of them can block */
        size_t n_veto;
};

struct policy {
        char *name;
        bool has_predecessor;
        char predecessor[65]; /* lower-case hex; "" when has_predecessor is false */
        char **read_ids;      /* lower-case hex key ids */
        size_t n_read_ids;
        char **update_ids;
        size_t n_update_ids;
        struct policy_service *services;
        size_t n_services;
        struct policy_secret *secrets;
        size_t n_secrets;
        struct policy_volume *volumes;
        size_t n_volumes;
        /* NULL when the document has no board: then access.update governs changes as before. */
        struct policy_board *board;
        /* namespace: who may create policies strictly under this name (docs/policy.md,
         * "Namespaces"); NULL when the document has no namespace key. */
        struct policy_namespace *ns;
};

/* ---- API ------------------------------------------------------------------------------- */

/* Parses and validates a policy document (JSON when its first non-blank byte is '{', YAML
 * otherwise). On success *ret is a new model owned by the caller (policy_free) and errs,
 * if not NULL, is emptied. On failure *ret is untouched, errs (if not NULL) lists every
 * error found, and the status is CF_E_SYNTAX (the text does not parse, or uses an
 * unsupported YAML feature), CF_E_LIMIT (size or nesting limit), CF_E_SCHEMA (the
 * document parses but is not a valid policy) or CF_E_NOMEM. text is only borrowed. */
CF_FN policy_parse(struct cf_slice text, struct policy **ret, struct policy_errors *errs);

/* Frees a model and everything it owns, wiping explicit secret values. NULL is a no-op.
 * Returns NULL so callers can write p = policy_free(p). */
struct policy *policy_free(struct policy *p);
CF_DEFINE_CLEANUP(struct policy *, policy_free)

/* Writes the lower-case hex SHA-256 of the exact bytes of text (the digest a successor
 * names as its predecessor) and a NUL into out. */
CF_FN policy_digest(struct cf_slice text, char out[static 65]);

/* True for a valid policy name: namespace/name, at least two segments of
 * [a-z0-9][a-z0-9._-]{0,62}, at most POLICY_NAME_MAX characters. NULL is not valid. */
bool policy_name_valid(const char *name);
/* True for a valid service (and board member) name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}. */
bool policy_service_name_valid(const char *name);

/* Lookups by exact name; the result is borrowed from p (NULL when absent). */
const struct policy_service *policy_find_service(const struct policy *p, const char *name);
const struct policy_volume *policy_find_volume(const struct policy *p, const char *name);
const char *policy_volume_rollback_name(enum policy_volume_rollback r);
/* "strict" or "batched"; NULL for a value outside the enum. */
const char *policy_volume_freshness_name(enum policy_volume_freshness f);
const struct policy_secret *policy_find_secret(const struct policy *p, const char *name);

/* True when key_id (lower-case hex) is in the read or update list. */
bool policy_key_may_read(const struct policy *p, const char *key_id);
/* True when key_id (lower-case hex) is in the update list. */
bool policy_key_may_update(const struct policy *p, const char *key_id);

/* Resolves a placeholder reference, "NAME" or "NAME:ENCODING" (policy_placeholder_split), to
 * its bytes. The slice must stay valid until the callback is
 * called again or policy_substitute returns. CF_E_NOT_FOUND for an unknown name. */
typedef cf_status (*policy_lookup_fn)(void *ctx, const char *name, struct cf_slice *ret);

/* Appends text to out with every $$coffer:REF$$ replaced by lookup(ctx, REF), REF being
 * NAME or NAME:ENCODING. "$$" not
 * followed by "coffer:" is copied literally. out should be a secret buffer the caller
 * initialised (cf_buf_init(&b, max, true)). Errors: CF_E_MALFORMED for a malformed
 * placeholder, the lookup's status (CF_E_NOT_FOUND for unknown names), CF_E_LIMIT when out
 * would grow past its max. On failure out is restored to its previous size, and the bytes
 * that had been appended are wiped. */
CF_FN policy_substitute(const char *text, policy_lookup_fn lookup, void *ctx, struct cf_buf *out);

/* A JSON view of the model for the read API and `coffer policy show --json`: every field,
 * in the document's own shape (it parses back into an equivalent policy), except that
 * explicit secret values are the string "<redacted>". The caller owns *ret. */
CF_FN policy_to_json(const struct policy *p, json_t **ret);

/* [{"location": ..., "message": ...}, ...], plus a final {"location": "", "message":
 * "more errors were not reported"} when errs->truncated. The caller owns *ret. */
CF_FN policy_errors_to_json(const struct policy_errors *errs, json_t **ret);

/* Appends one line per error, "<location>: <message>\n", to out (CLI and HTTP details). */
CF_FN policy_errors_format(const struct policy_errors *errs, struct cf_buf *out);

/* "sim", "sgx", "tdx", "snp"; NULL for an unknown value. */
const char *policy_platform_name(enum attest_platform p);

/* The policy document's names of SNP TCB components ("bootloader", "tee", "snp",
 * "microcode", "fmc") and guest policy bits ("debug", "migration_agent", "smt",
 * "single_socket"), which are also the verifier's claim names; NULL when out of range. */
const char *policy_snp_tcb_name(enum policy_snp_tcb c);
const char *policy_snp_bit_name(enum policy_snp_bit b);

/* ---- evaluation (rules.c) -------------------------------------------------------------- */

/* Evaluates the service's attestation rules against verified evidence of one platform and
 * says whether the service may be granted its configuration.
 *
 * res must come from that platform's verifier (sim_evidence_verify, intel_verify,
 * snp_verify); its claims are read, never changed. When res->valid is false the result is
 * false and one failing check "evidence.valid" is appended; no rule is evaluated. Otherwise
 * the rules whose platform equals `platform` are evaluated in order until one matches (a
 * rule matches when every one of its keys does); the rest are not considered. Each decision
 * appends one check to out, with the expected and actual values, named "rule[i].<key>"
 * ("rule[0].mrenclave", "rule[1].min_tcb.microcode", "rule[0].policy.smt",
 * "rule[0].tcb_status", "rule[0].advisories", "rule[0].debug"); "rules.platform" fails when
 * no rule names this platform, and for sim "tolerate.simulation" records whether the
 * service tolerates simulated evidence (without it, sim evidence is never granted).
 *
 * The result is the decision: true only when a rule matched (and, for sim, simulation is
 * tolerated). Checks of rules tried before the matching one stay in out as failures, to
 * explain the decision, so callers must use the result and not attest_checks_all_ok(out).
 * Fails closed: false when a check cannot be recorded (out of memory, ATTEST_CHECKS_MAX),
 * for a claim that is absent or of the wrong type, and for any argument that is NULL.
 * `now` (seconds since the epoch) is compared with the `until` dates of accepted TCB
 * statuses and advisories; the clock is never read here. */
bool policy_service_evaluate(const struct policy_service *svc, enum attest_platform platform,
                             const struct attest_result *res, int64_t now,
                             struct attest_checks *out);

/* ---- boards and approvals (board.c, docs/formats/approval.md) ------------------------------ */

#define POLICY_APPROVAL_MAX     (16u << 10) /* bytes of an approval file */
#define POLICY_APPROVAL_SIG_MAX 160         /* bytes of a decoded signature (P-384 DER: 104) */
#define POLICY_APPROVAL_DOMAIN  "coffer-approval-v1"
#define POLICY_APPROVALS_MAX    64 /* approvals evaluated in one decision */

/* One offline approval (or veto) of a policy version, as parsed from an approval file. The
 * signature is not verified by the parser: policy_board_evaluate verifies it over the
 * statement the caller expects. */
/* The verdict of an approval statement. "delete" approves the deletion of the policy: the
 * statement's digest is then the deletion digest (policy_deletion_digest) and its
 * predecessor the digest of the version deleted. */
enum policy_verdict {
        POLICY_VERDICT_APPROVE = 1, /* "approve" */
        POLICY_VERDICT_VETO,        /* "veto": blocks the change (a version or a deletion) */
        POLICY_VERDICT_DELETE,      /* "delete" */
};
#define POLICY_DELETION_DOMAIN "coffer-policy-deleted-v1"

struct policy_approval {
        char *policy;         /* a valid policy name */
        char digest[65];      /* lower-case hex SHA-256 of the approved document */
        char predecessor[65]; /* lower-case hex; "" when the statement names null */
        bool veto;            /* the verdict is "veto" (kept for callers of the first format) */
        enum policy_verdict verdict;
        struct cf_pkey *key;  /* the signer's public key (Ed25519, P-256 or P-384) */
        uint8_t *sig;
        size_t sig_size;
};

/* Appends the exact signed statement to out:
 *   "coffer-approval-v1\n" policy "\n" digest "\n" (predecessor | "null") "\n" verdict
 * where verdict is "approve" or "veto" and there is no final newline. predecessor NULL (or "")
 * means null. CF_E_INVALID_ARG for a policy name that is not valid or a digest or predecessor
 * that is not 64 lower-case hex digits; CF_E_LIMIT when out would grow past its max. */
CF_FN policy_approval_statement(const char *policy, const char *digest, const char *predecessor,
                                bool veto, struct cf_buf *out);

/* Parses an approval file: a JSON object with exactly the members version (1), policy, digest,
 * predecessor (string or null), verdict, key (PEM SubjectPublicKeyInfo) and signature (padded
 * base64), and at most POLICY_APPROVAL_MAX bytes. Strict: duplicate or unknown members, an
 * unknown version (CF_E_VERSION), a malformed field (CF_E_MALFORMED, CF_E_ENCODING), a key
 * that does not parse or is not Ed25519/P-256/P-384 (CF_E_KEY) and anything after the object
 * (CF_E_SYNTAX) fail. json is only borrowed; on success *ret is owned by the caller
 * (policy_approval_free). The signature is NOT verified here. */
CF_FN policy_approval_parse(struct cf_slice json, struct policy_approval **ret);

/* Frees an approval. NULL is a no-op. */
void policy_approval_free(struct policy_approval *a);
static inline void policy_approval_freep(struct policy_approval **a)
{
        policy_approval_free(*a);
        *a = NULL;
}

/* Signs the statement for (policy, digest, predecessor, verdict) with key (a private
 * Ed25519, P-256 or P-384 key) and appends the approval file (JSON, one object and a
 * newline) to out_json. predecessor NULL means null. CF_E_INVALID_ARG for malformed
 * arguments, CF_E_KEY for an unsupported or public-only key, CF_E_LIMIT when out_json is
 * too small. On failure out_json keeps its previous size. */
CF_FN policy_approval_sign(const struct cf_pkey *key, const char *policy, const char *digest,
                           const char *predecessor, bool veto, struct cf_buf *out_json);

/* Evaluates a board against approvals for (policy, digest, predecessor); predecessor NULL
 * (or "") means the statement names null (a creation).
 *
 * Each approval is checked in order and recorded as "board.approval[i]": it must be for this
 * policy, digest and predecessor (an approval of another version, or a replay for an older
 * predecessor, is ignored), its signature must verify over the exact statement, and its key
 * id must equal a person member's key id. A member counts once however many approvals it
 * sent; a member that signed both an approval and a veto does not approve; a veto counts only
 * from a member listed in the board's veto list. attested_services lists "policy/service"
 * names whose approval came from an attested program (cofferd fills it after verifying the
 * program's evidence; the CLI passes none); each is recorded as "board.service[k]" and counts
 * for the service member of that name. Then "board.rule" (expected: the rule, actual: who
 * approved) and "board.veto" are appended.
 *
 * True when the rule is met and no veto member vetoed. Fails closed: false for any NULL
 * argument (n == 0 and n_services == 0 allow NULL arrays), more than POLICY_APPROVALS_MAX
 * approvals or services, and when a check cannot be recorded. Checks of ignored approvals
 * stay in out as failures, so callers must use the result, not attest_checks_all_ok(out). */
bool policy_board_evaluate(const struct policy_board *b, const char *policy, const char *digest,
                           const char *predecessor, struct policy_approval *const *approvals,
                           size_t n, const char *const *attested_services, size_t n_services,
                           struct attest_checks *out);

/* The digest of the deletion of the version whose digest is predecessor (64 lower-case
 * hex digits): lower-case hex SHA-256(POLICY_DELETION_DOMAIN || predecessor), as cofferd
 * records it and as "delete" statements name it. CF_E_INVALID_ARG for a malformed
 * predecessor. */
CF_FN policy_deletion_digest(const char *predecessor, char out[static 65]);

/* The digest a board approves to release secret of the version predecessor to the person
 * whose key id is recipient (coffer secret release, docs/formats/approval.md):
 * lower-case hex SHA-256(POLICY_RELEASE_DOMAIN || predecessor || "\n" || secret || "\n" ||
 * recipient). Approvals name it with the verdict "approve" and predecessor as predecessor.
 * CF_E_INVALID_ARG unless predecessor and recipient are 64 lower-case hex digits and secret a
 * name without newlines. */
#define POLICY_RELEASE_DOMAIN "coffer-secret-release-v1"
CF_FN policy_release_digest(const char *predecessor, const char *secret, const char *recipient,
                            char out[static 65]);

/* The statement of policy_approval_statement with any verdict ("approve", "veto" or
 * "delete"). CF_E_INVALID_ARG for an unknown verdict and as policy_approval_statement. */
CF_FN policy_approval_statement_verdict(const char *policy, const char *digest,
                                        const char *predecessor, enum policy_verdict verdict,
                                        struct cf_buf *out);

/* policy_approval_sign with any verdict. */
CF_FN policy_approval_sign_verdict(const struct cf_pkey *key, const char *policy,
                                   const char *digest, const char *predecessor,
                                   enum policy_verdict verdict, struct cf_buf *out_json);

/* The verdict of an attested program member ("policy/service"), which cofferd accepts only
 * after the program's evidence satisfied that service's rules. */
struct policy_service_vote {
        const char *service;
        bool veto;
};

/* What a decision found, for callers that report progress (online proposals). */
struct policy_board_outcome {
        bool approved[POLICY_BOARD_MEMBERS_MAX]; /* members whose approval counts */
        bool vetoed;                             /* a member of the veto list vetoed */
        bool met;                                /* the rule is met (vetoes aside) */
};

/* The general form of policy_board_evaluate: deletion selects which verdict approves
 * ("delete" instead of "approve"; an approval with the other verdict is ignored), and
 * attested programs may veto as well as approve (votes; a program that vetoes counts like a
 * person who vetoed). Checks and fail-closed rules are those of policy_board_evaluate. ret
 * (may be NULL) receives the tally even when the result is false, except when a check could
 * not be recorded or an argument is invalid (then it is zeroed). */
bool policy_board_decide(const struct policy_board *b, const char *policy, const char *digest,
                         const char *predecessor, bool deletion,
                         struct policy_approval *const *approvals, size_t n,
                         const struct policy_service_vote *votes, size_t n_votes,
                         struct attest_checks *out, struct policy_board_outcome *ret);

/* Appends what the rule still needs given the members in approved ("met" when nothing):
 * unmet members by name, "at_least K of [...]" with K the number still missing. */
CF_FN policy_board_needs(const struct policy_board *b, const bool *approved, struct cf_buf *out);

/* Appends a human-readable form of a rule ("at_least 2 of [alice, bob, ci]") to out. */
CF_FN policy_board_rule_format(const struct policy_board *b, const struct policy_board_rule *r,
                               struct cf_buf *out);

/* Parses a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo) strictly: one block, base64 lines,
 * nothing but whitespace after it. CF_E_ENCODING for bad PEM, CF_E_KEY for a key that is not
 * Ed25519, P-256 or P-384. The caller owns *ret. */
CF_FN policy_public_key_parse(struct cf_slice pem, struct cf_pkey **ret);

/* Appends the PEM "PUBLIC KEY" block of k (64-character lines, final newline) to out. */
CF_FN policy_public_key_pem(const struct cf_pkey *k, struct cf_buf *out);
