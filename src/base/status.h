/* Status codes: the one error convention of Coffer (see docs/DEVELOPMENT.md).
 *
 * Every fallible function returns cf_status through CF_FN, so ignoring a result is a
 * compiler warning. A code says what failed; it never carries data. Precise context goes
 * to the local log where the error is handled, or into a module's own diagnostic
 * structure (policy validation errors, attestation check lists). */
#pragma once

#include <stdint.h>

typedef struct {
        int32_t code;
} cf_status;

enum cf_errcode {
        CF_E_OK = 0,
        /* generic */
        CF_E_INVALID_ARG,   /* a caller passed an impossible argument */
        CF_E_NOMEM,         /* allocation failed */
        CF_E_LIMIT,         /* a named limit was exceeded */
        CF_E_OVERFLOW,      /* length arithmetic overflowed */
        CF_E_IO,            /* an I/O call failed (errno in the log) */
        CF_E_NOT_FOUND,     /* no such object */
        CF_E_EXISTS,        /* the object exists already */
        CF_E_PERMISSION,    /* the caller may not do this */
        CF_E_INTERNAL,      /* an "impossible" state was reached (CF_NEVER) */
        CF_E_UNSUPPORTED,   /* recognised but not supported */
        CF_E_CONFLICT,      /* a precondition (e.g. predecessor digest) does not hold */
        CF_E_TIMEOUT,       /* an operation ran out of time */
        /* parsing */
        CF_E_TRUNCATED,     /* input ended before a field */
        CF_E_TRAILING,      /* bytes after the end of a structure */
        CF_E_MALFORMED,     /* a field has an impossible value */
        CF_E_VERSION,       /* unknown format or protocol version */
        CF_E_ENCODING,      /* bad hex/base64/UTF-8/PEM/DER */
        CF_E_SYNTAX,        /* JSON/YAML syntax error */
        CF_E_SCHEMA,        /* a document does not satisfy its schema */
        /* cryptography */
        CF_E_CRYPTO,        /* a crypto library call failed unexpectedly */
        CF_E_SIG_INVALID,   /* a signature does not verify */
        CF_E_MAC_INVALID,   /* an AEAD tag or MAC does not verify: tampering */
        CF_E_KEY,           /* a key is malformed or of the wrong type */
        CF_E_RANDOM,        /* the random source failed */
        /* certificates and collateral */
        CF_E_CERT,          /* a certificate does not parse */
        CF_E_CHAIN,         /* a certificate chain does not verify to a pinned root */
        CF_E_EXPIRED,       /* outside a validity window */
        CF_E_REVOKED,       /* revoked by a CRL */
        CF_E_COLLATERAL,    /* collateral missing, inconsistent or not for this evidence */
        CF_E_TCB,           /* the TCB is not acceptable or not supported */
        /* attestation and policy decisions */
        CF_E_BINDING,       /* evidence does not bind the expected data */
        CF_E_EVIDENCE,      /* evidence does not satisfy the rules */
        CF_E_REFUSED,       /* a policy refuses the request */
        /* storage */
        CF_E_TAMPERED,      /* stored data was modified, swapped or replayed */
        CF_E_STORE,         /* the store failed (SQLite error in the log) */
        CF_E_ROLLBACK,      /* state is older than its anchor */
        /* network and protocol */
        CF_E_TLS,           /* TLS handshake or record failure */
        CF_E_PEER,          /* the peer's identity is not the expected one */
        CF_E_PROTOCOL,      /* the peer spoke something we do not understand */
        CF_E_HTTP,          /* the peer answered with an HTTP error status */
        CF_E__COUNT
};

#define CF_OK       ((cf_status){ 0 })
#define CF_MUST_USE __attribute__((warn_unused_result))
#define CF_FN       CF_MUST_USE cf_status

/* Records the failure site in the debug log, then returns the status. */
cf_status cf_fail_at(enum cf_errcode code, const char *file, int line);
#define cf_fail(code) cf_fail_at((code), __FILE__, __LINE__)
/* Maps an errno value to a status (ENOMEM -> CF_E_NOMEM, ENOENT -> CF_E_NOT_FOUND, else IO). */
cf_status cf_fail_errno_at(int err, const char *file, int line);
#define cf_fail_errno(e) cf_fail_errno_at((e), __FILE__, __LINE__)

#define TRY(expr)                                                                                  \
        do {                                                                                       \
                cf_status t_ = (expr);                                                             \
                if (t_.code != 0) {                                                                \
                        return t_;                                                                 \
                }                                                                                  \
        } while (0)
#define ENSURE(cond, code)                                                                         \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        return cf_fail(code);                                                      \
                }                                                                                  \
        } while (0)
#define TRY_ERRNO(call)                                                                            \
        do {                                                                                       \
                if ((call) < 0) {                                                                  \
                        return cf_fail_errno(errno);                                               \
                }                                                                                  \
        } while (0)

static inline int cf_ok(cf_status s)
{
        return s.code == 0;
}

/* Deliberately ignores a status; always say why at the call site. */
static inline void cf_ignore(cf_status s)
{
        (void)s;
}

/* Stable, lower-case, dotted names ("parse.truncated") for logs and API error codes. */
const char *cf_status_name(cf_status s);
/* A short human sentence for the code. */
const char *cf_strerror(cf_status s);

/* Programming errors: always on, aborts with the site. Never <assert.h>. */
_Noreturn void cf_assert_fail(const char *expr, const char *file, int line);
#define cf_assert(x)                                                                               \
        do {                                                                                       \
                if (!(x)) {                                                                        \
                        cf_assert_fail(#x, __FILE__, __LINE__);                                    \
                }                                                                                  \
        } while (0)

/* "Impossible" input states: an error in release builds, an abort in debug builds. */
#ifdef NDEBUG
#        define CF_NEVER(x) (x)
#else
#        define CF_NEVER(x) ((x) ? (cf_assert_fail(#x, __FILE__, __LINE__), 1) : 0)
#endif
