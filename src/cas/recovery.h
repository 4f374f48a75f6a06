/* k-of-n recovery of the store's data key (issue "cofferd protects itself").
 *
 * At `cofferd init --recovery-key FILE... --recovery-threshold K`, the data key is split with
 * Shamir's scheme into one share per recovery key; each share, prefixed with the bundle id, is
 * sealed (ECIES) to its holder's public key, and the bundle is kept in the data directory as
 * recovery.json (public: nothing in it reveals the key without K private keys). Version 2
 * bundles also carry a commitment per share, SHA-256("coffer-recovery-commit-v1" || bundle id
 * || x || y), so a wrong share is refused on arrival instead of spoiling the round. When
 * cofferd starts on a machine whose sealing key cannot unwrap the data key (new hardware, a
 * new measurement), it serves only health, version, its attestation and the recovery
 * endpoints (with a temporary TLS identity, see datadir.c); K holders each decrypt their
 * share and send it over a connection authenticated with their own identity (`coffer cas
 * recover`); cofferd combines them, checks the result against the bundle's check value,
 * restores its TLS key, re-wraps the data key under its own sealing key, and continues as
 * usual. Format: docs/formats/recovery.md. */
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
/* Loads and checks DATA_DIR/recovery.json (versions 1 and 2) for recovery mode; logs why it
 * cannot. Errors: CF_E_NOT_FOUND and I/O errors, CF_E_SYNTAX, CF_E_SCHEMA, CF_E_MALFORMED,
 * CF_E_VERSION (another bundle version), CF_E_NOMEM. */
CF_FN cas_recovery_begin(struct cas *cas);
void cas_recovery_end(struct cas *cas);
/* GET and POST /v1/recovery (recovery mode only). A POST is accepted only from the holder of
 * the share's x (TLS client key id) and, for version 2 bundles, only if the share matches its
 * commitment; a refused share leaves the received ones in place. A POST that completes the
 * recovery restores the TLS key, writes the new datakey.sealed and asks the server to leave
 * recovery mode once the reply is sent. */
void cas_api_recovery(struct cas *cas, struct evhttp_request *req);
