/* Where a person's identity lives, and the cofferd key ids pinned by `coffer cas attest`
 * (IDENTITY/pins/ADDRESS, the address percent-encoded), shared by coffer and coffer-run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "crypto/crypto.h"

/* $COFFER_IDENTITY, else $XDG_CONFIG_HOME/coffer, else ~/.config/coffer. */
void cf_identity_dir(char *out, size_t out_size);
/* The pin file of address under identity_dir (its directory is created, mode 0700). */
CF_FN cf_pin_path(const char *identity_dir, const char *address, char *out, size_t out_size);
/* The pinned key id of address into out; false when there is none. */
bool cf_pinned_key(const char *identity_dir, const char *address, char out[static CF_KEY_ID_HEX]);
