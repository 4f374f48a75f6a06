/* Injected files: a private mount namespace in which each file the policy injects appears at
 * its path, backed by a tmpfs (RAM) overlay, so plaintext never reaches persistent disk and
 * other processes never see it. See docs/coffer-run.md for the mechanism and its limits. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* The policy's files (POLICY_FILES_MAX) and the workload certificate's key, certificate and CA
 * files. */
#define INJECT_MAX_FILES (256 + 3)

struct inject_file {
        const char *path;      /* absolute, validated by cofferd's policy loader */
        uint32_t mode;
        const uint8_t *content;
        size_t size;
};

/* Enters a new mount namespace (and a user namespace when not root) and writes the files.
 * On failure, err receives a one-line explanation. */
CF_FN inject_files(const struct inject_file *files, size_t n, char *err, size_t err_size);
