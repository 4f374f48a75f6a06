/* Helpers shared by the evidence providers (provider*.c) and their tests: attribute I/O
 * under a directory file descriptor, with one-line error messages that name the path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/provider.h"
#include "base/cursor.h"
#include "base/status.h"

/* Writes the formatted message to err (when err_size > 0; always NUL-terminated) and returns
 * s, so callers write `return provider_fail(s, err, err_size, ...)`. */
cf_status provider_fail(cf_status s, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Opens dir/name (dfd is an open descriptor of dir; dir is for messages) with flags plus
 * O_CLOEXEC, O_NOFOLLOW and O_NOCTTY and stores the descriptor in *ret_fd. Errors map errno
 * through cf_fail_errno (CF_E_NOT_FOUND for ENOENT) with a message naming the path. */
CF_FN provider_open_at(int dfd, const char *dir, const char *name, int flags, int *ret_fd,
                       char *err, size_t err_size);

/* Appends all of dir/name, at most max bytes, to b. CF_E_LIMIT (message names the limit)
 * when larger. The file may be a regular file, a configfs attribute or a pipe. */
CF_FN provider_read_at(int dfd, const char *dir, const char *name, size_t max, struct cf_buf *b,
                       char *err, size_t err_size);

/* Reads the small text attribute dir/name (at most PROVIDER_ATTR_MAX bytes) into out as a
 * C string without its trailing newline. CF_E_MALFORMED for a NUL byte in the value. */
CF_FN provider_read_text_at(int dfd, const char *dir, const char *name, char *out, size_t out_size,
                            char *err, size_t err_size);

/* Writes data to dir/name in one open-write-close: configfs and LibOS pseudo-files take the
 * value when the file is closed, so a failure of close is reported too. */
CF_FN provider_write_at(int dfd, const char *dir, const char *name, const void *data, size_t size,
                        char *err, size_t err_size);

/* Opens dir as a directory (O_DIRECTORY | O_CLOEXEC) into *ret_fd; what names the interface
 * in the message ("configfs-tsm", "the LibOS attestation interface"); hint is appended to the
 * message when the directory does not exist. */
CF_FN provider_open_root(const char *dir, const char *what, const char *hint, int *ret_fd,
                         char *err, size_t err_size);
