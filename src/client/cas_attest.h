/* Attesting cofferd from a client (`coffer cas attest`, `coffer-run --cas-policy`): a fresh
 * nonce, cofferd's evidence bound to the TLS key of this very connection and to the nonce,
 * the evidence verified like a workload's, and optionally a policy service's rules evaluated
 * against it. */
#pragma once

#include <stdint.h>

#include "attest/checks.h"
#include "client/client.h"

struct policy_service;

struct cf_cas_expect {
        const char *key_id;                   /* NULL: not checked */
        const struct policy_service *service; /* NULL: no rules evaluated */
        const uint8_t (*sim_keys)[32];        /* trusted sim platform keys */
        size_t n_sim_keys;
        const struct attest_collateral *collateral; /* hardware evidence: NULL = none given */
        int64_t now;
};

/* Fills res (claims, checks); res->valid tells whether the evidence verified. Returns CF_OK
 * only when every check passed (binding, key id, sim platform key, rules), with the attested
 * TLS key id in ret_key_id; CF_E_REFUSED when a check failed; other codes for transport or
 * protocol errors. */
CF_FN cf_cas_attest(struct cf_client *c, const struct cf_cas_expect *expect,
                    struct attest_result *res, char ret_key_id[static CF_KEY_ID_HEX]);
