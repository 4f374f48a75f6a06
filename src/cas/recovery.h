/* k-of-n recovery of the store's data key (issue "cofferd protects itself").
 *
 * At `cofferd init --recovery-key FILE... --recovery-threshold K`, the data key is split with
 * Shamir's scheme into one share per recovery key; each share, prefixed with the bundle id, is
 * sealed (ECIES) to its holder's public key, and the bundle is kept in the data directory as
 * recovery.json (public: nothing in it reveals the key without K private keys). When cofferd
 * starts on a machine whose sealing key cannot unwrap the data key (new hardware, a new
 * measurement), it serves only health, version, its attestation and the recovery endpoints;
 * K holders each decrypt their share and send it (`coffer cas recover`); cofferd combines them,
 * checks the result against the bundle's check value, re-wraps the data key under its own
 * sealing key, and continues as usual. Format: docs/formats/recovery.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/http.h>

#include "base/status.h"
#include "crypto/crypto.h"

struct cas;

#define CAS_RECOVERY_KEYS_MAX   32
#define CAS_RECOVERY_BUNDLE_MAX (1u << 20)
#define CAS_RECOVERY_SHARE_SIZE (16 + 1 + 32) /* bundle id || x || y */

/* Writes DATA_DIR/recovery.json for the data key (init only). */
CF_FN cas_recovery_create(const struct cas *cas, const uint8_t data_key[static 32],
                          struct cf_pkey *const *keys, size_t n_keys, unsigned threshold);
/* True when DATA_DIR/recovery.json exists. */
bool cas_recovery_available(const struct cas *cas);
/* Loads the bundle for recovery mode. */
CF_FN cas_recovery_begin(struct cas *cas);
void cas_recovery_end(struct cas *cas);
/* GET and POST /v1/recovery (recovery mode only). A POST that completes the recovery
 * writes the new datakey.sealed and asks the server to leave recovery mode. */
void cas_api_recovery(struct cas *cas, struct evhttp_request *req);
