/* Attestation decisions are explained: every verifier and rule evaluator appends one
 * check per decision (name, ok, expected, actual) to a list that cofferd returns in
 * refusals and `coffer evidence verify` prints. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/status.h"

enum attest_platform { ATTEST_SIM = 1, ATTEST_SGX, ATTEST_TDX, ATTEST_SNP };

/* "sim", "sgx", "tdx", "snp"; NULL for an unknown value. */
const char *attest_platform_name(enum attest_platform p);
/* CF_E_UNSUPPORTED for an unknown name. */
CF_FN attest_platform_parse(const char *name, enum attest_platform *ret);

struct attest_check {
        char *name;     /* dotted, stable: "sim.signature", "sgx.qe_report.signature" */
        bool ok;
        char *expected; /* human-readable; may be "" */
        char *actual;
};

struct attest_checks {
        struct attest_check *items;
        size_t n, cap;
};

void attest_checks_init(struct attest_checks *l);
void attest_checks_done(struct attest_checks *l);
/* Copies the strings; expected/actual may be NULL (stored as ""). Values longer than
 * ATTEST_CHECK_VALUE_MAX are cut and marked with "...". */
#define ATTEST_CHECK_VALUE_MAX 512
#define ATTEST_CHECKS_MAX      256
CF_FN attest_checks_add(struct attest_checks *l, const char *name, bool ok, const char *expected,
                        const char *actual);
bool attest_checks_all_ok(const struct attest_checks *l);
size_t attest_checks_failed(const struct attest_checks *l);
/* [{"name":..,"ok":..,"expected":..,"actual":..}, ...]; only_failed selects failures. */
CF_FN attest_checks_to_json(const struct attest_checks *l, bool only_failed, json_t **ret);

/* The outcome of verifying one piece of evidence (any platform). */
#define ATTEST_TCB_STATUS_MAX 48
struct attest_result {
        bool valid;                                /* signatures, chains, revocation, windows */
        char tcb_status[ATTEST_TCB_STATUS_MAX];    /* Intel's names; "" when not evaluated */
        json_t *advisories;                        /* array of strings (owned) */
        json_t *claims;                            /* object: hex strings, numbers, booleans */
        struct attest_checks checks;
};
CF_FN attest_result_init(struct attest_result *r);
void attest_result_done(struct attest_result *r);

/* Collateral: a set of named blobs whose roles the verifiers recognise by content, never by
 * name or position (TCB Info, QE Identity, CRLs, certificates, AMD KDS certificates,
 * dcap-qvl style JSON bundles, split signed-body and signature files). */
#define ATTEST_COLLATERAL_MAX_FILES 64
#define ATTEST_COLLATERAL_MAX_SIZE  (4u << 20)
struct attest_blob {
        char *name;          /* for messages only */
        uint8_t *data;
        size_t size;
};
struct attest_collateral {
        struct attest_blob items[ATTEST_COLLATERAL_MAX_FILES];
        size_t n;
};
void attest_collateral_init(struct attest_collateral *c);
void attest_collateral_done(struct attest_collateral *c);
/* Copies data. */
CF_FN attest_collateral_add(struct attest_collateral *c, const char *name, const void *data,
                            size_t size);
