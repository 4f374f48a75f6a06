/* File helpers: bounded reads and atomic, durable writes. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "base/cursor.h"
#include "base/status.h"

/* Reads a whole regular file of at most max bytes into b (appends). CF_E_LIMIT if larger. */
CF_FN cf_read_file(const char *path, size_t max, struct cf_buf *b);
/* Reads all of fd (a file or pipe) up to max bytes into b. */
CF_FN cf_read_fd(int fd, size_t max, struct cf_buf *b);
/* Writes data to path atomically: a temporary file in the same directory with the given
 * mode (O_EXCL|O_NOFOLLOW), fsync, rename over path, fsync the directory. */
CF_FN cf_write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* Creates a directory and its parents with mode (existing ones are kept as they are). */
CF_FN cf_mkdir_p(const char *path, mode_t mode);
/* Writes all bytes, retrying on EINTR and short writes. */
CF_FN cf_write_all(int fd, const void *data, size_t size);
