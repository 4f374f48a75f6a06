/* coffer: the command-line tool for people. Shared option state and helpers. */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "base/status.h"
#include "client/client.h"
#include "crypto/crypto.h"

/* Exit statuses: 0 success; 1 the operation failed or was refused; 2 usage error. */
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

struct cli {
        const char *cas;      /* --cas / COFFER_CAS */
        const char *cas_key;  /* --cas-key / COFFER_CAS_KEY */
        char identity[1024];  /* --identity / COFFER_IDENTITY / ~/.config/coffer */
        bool json;
        bool force;                     /* id new --force */
        const char *expect_key;         /* cas attest --expect-key */
        const char *platform;           /* evidence verify --platform */
        const char *collateral;         /* evidence verify --collateral */
        const char *at;                 /* evidence verify --at */
        const char *policy_file;        /* evidence verify --policy */
        const char *service;            /* evidence verify --service */
        const char *trust_sim_key;      /* cas attest --trust-sim-key */
        const char *out;                /* audit fetch --out, policy approve --out */
        bool veto;                      /* policy approve --veto */
        const char *approvals[64];      /* policy create|update --approval FILE (repeatable) */
        size_t n_approvals;
        const char *against;            /* audit verify --against */
        const char *audit_key;          /* audit verify --audit-key */
        const char *key_file;           /* volume --key-file */
        const char *expires;            /* policy propose --expires DURATION */
        bool online;                    /* policy approve --online NAME DIGEST */
        const char *key;                /* policy approve --online --key KEY.pem */
        const char *as_service;         /* policy approve --online --as-service POLICY/SERVICE */
        const char *tee;                /* policy approve --as-service --tee */
        bool deletion;                  /* policy approve --delete, policy propose --delete */
        const char *predecessor;        /* policy approve --predecessor DIGEST */
        bool allow_expired;             /* collateral import --allow-expired */
        const char *recipient;          /* secret approve --for KEYID */
        const char *encoding;           /* secret release --encoding ENC */
        const char *tsm_root;           /* --as-service --tsm-root (or COFFER_TSM_ROOT) */
        const char *attestation_root;   /* --as-service --attestation-root (or
                                           COFFER_ATTESTATION_ROOT) */
        int argc;             /* the command's own arguments */
        char **argv;
};

int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints a JSON value on stdout (pretty, sorted) and consumes it. */
void cli_print_json(json_t *j);

/* Loads the person's identity (certificate PEM into cert, key into *key). */
CF_FN cli_identity_load(const struct cli *cli, struct cf_buf *cert, struct cf_pkey **key);
struct attest_collateral;
/* Loads every regular file of dir into coll (roles are recognised by content); prints why
 * and returns non-zero on failure. */
int cli_load_collateral(const char *dir, struct attest_collateral *coll);

/* Where a successful `coffer cas attest` pins cofferd's key id for the address --cas:
 * IDENTITY/pins/ADDRESS. */
CF_FN cli_pin_path(const struct cli *cli, char *out, size_t out_size);
/* Connects to cofferd; with_identity presents the person's certificate. pin: require
 * --cas-key. Prints the error and returns NULL on failure. */
struct cf_client *cli_connect(const struct cli *cli, bool with_identity, bool pin);
/* One request; prints transport errors. Returns false on failure. */
bool cli_request(struct cf_client *c, const char *method, const char *path,
                 const char *content_type, struct cf_slice body, struct cf_http_response *resp);

int cmd_id(struct cli *cli);
int cmd_measure(struct cli *cli);
int cmd_policy(struct cli *cli);
int cmd_cas(struct cli *cli);
int cmd_evidence(struct cli *cli);
int cmd_collateral(struct cli *cli);
int cmd_sim_key(struct cli *cli);
int cmd_audit(struct cli *cli);
int cmd_cas_recover(struct cli *cli);
int cmd_volume(struct cli *cli);
int cmd_approve(struct cli *cli);
/* Signs the approval statement (policy, digest, predecessor; verdict from --veto/--delete)
 * with the person's identity key and writes the approval file out; what names the approved
 * thing in the message ("the version", "the deletion", "the release"). */
int cli_write_approval(struct cli *cli, const char *name, const char *digest, const char *pred,
                       const char *out, const char *what);
/* Appends the JSON of every --approval file to list; prints why and returns 1 on failure. */
int cli_load_approvals(const struct cli *cli, json_t *list);
/* cmd_secret.c: coffer secret approve | release. */
int cmd_secret(struct cli *cli);
/* cmd_proposal.c: coffer policy propose | proposals | approve --online. */
int cmd_propose(struct cli *cli);
int cmd_proposals(struct cli *cli);
int cmd_approve_online(struct cli *cli);
/* Prints an error reply of cofferd with every validation error or failed check it carries;
 * returns CLI_EXIT_FAIL. */
int cli_print_failure(const struct cf_http_response *r);
