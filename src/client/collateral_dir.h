/* Reading a folder of attestation collateral (coffer evidence verify, coffer cas attest,
 * coffer-run --cas-collateral): every regular file, recognised later by content. */
#pragma once

#include <stddef.h>

#include "attest/checks.h"
#include "base/status.h"

/* Adds every regular file of dir (not recursive, dot files skipped) to coll; on failure err
 * names the file and why. */
CF_FN cf_collateral_load_dir(const char *dir, struct attest_collateral *coll, char *err,
                             size_t err_size);
