/* Logging: one line of key=value text per event, on stderr.
 *
 * Library modules (base, crypto, attest, policy, store, shield) never log above debug;
 * programs log once where an error is handled. Never log keys, plaintext, tokens or whole
 * evidence; log sizes, ids and 8-byte fingerprints. Untrusted strings go through
 * cf_log_escape(). */
#pragma once

#include <stdarg.h>
#include <stddef.h>

enum cf_log_level { CF_LOG_ERR = 3, CF_LOG_WARNING = 4, CF_LOG_INFO = 6, CF_LOG_DEBUG = 7 };

/* Process-wide settings; call once at start, before threads. */
void cf_log_setup(const char *program, enum cf_log_level max_level);
enum cf_log_level cf_log_max_level(void);

__attribute__((format(printf, 2, 3))) void cf_log(enum cf_log_level level, const char *fmt, ...);

#define cf_log_err(...)     cf_log(CF_LOG_ERR, __VA_ARGS__)
#define cf_log_warning(...) cf_log(CF_LOG_WARNING, __VA_ARGS__)
#define cf_log_info(...)    cf_log(CF_LOG_INFO, __VA_ARGS__)
#define cf_log_debug(...)                                                                          \
        do {                                                                                       \
                if (cf_log_max_level() >= CF_LOG_DEBUG) {                                          \
                        cf_log(CF_LOG_DEBUG, __VA_ARGS__);                                         \
                }                                                                                  \
        } while (0)

/* Writes a printable, quoted, length-capped copy of untrusted bytes into out (always
 * NUL-terminated; truncation is marked with "..."). Returns out. */
char *cf_log_escape(const void *data, size_t size, char *out, size_t out_size);
