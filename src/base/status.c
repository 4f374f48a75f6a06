#include "base/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"

struct code_text {
        const char *name;
        const char *text;
};

static const struct code_text g_codes[CF_E__COUNT] = {
        [CF_E_OK] = { "ok", "success" },
        [CF_E_INVALID_ARG] = { "invalid_argument", "invalid argument" },
        [CF_E_NOMEM] = { "nomem", "out of memory" },
        [CF_E_LIMIT] = { "limit", "a size or count limit was exceeded" },
        [CF_E_OVERFLOW] = { "overflow", "length arithmetic overflowed" },
        [CF_E_IO] = { "io", "input/output error" },
        [CF_E_NOT_FOUND] = { "not_found", "not found" },
        [CF_E_EXISTS] = { "exists", "already exists" },
        [CF_E_PERMISSION] = { "permission", "permission denied" },
        [CF_E_INTERNAL] = { "internal", "internal error" },
        [CF_E_UNSUPPORTED] = { "unsupported", "not supported" },
        [CF_E_CONFLICT] = { "conflict", "precondition failed" },
        [CF_E_TIMEOUT] = { "timeout", "timed out" },
        [CF_E_TRUNCATED] = { "parse.truncated", "input is truncated" },
        [CF_E_TRAILING] = { "parse.trailing", "unexpected trailing bytes" },
        [CF_E_MALFORMED] = { "parse.malformed", "malformed field" },
        [CF_E_VERSION] = { "parse.version", "unknown version" },
        [CF_E_ENCODING] = { "parse.encoding", "bad encoding" },
        [CF_E_SYNTAX] = { "parse.syntax", "syntax error" },
        [CF_E_SCHEMA] = { "parse.schema", "document does not match its schema" },
        [CF_E_CRYPTO] = { "crypto", "cryptographic operation failed" },
        [CF_E_SIG_INVALID] = { "crypto.signature", "signature does not verify" },
        [CF_E_MAC_INVALID] = { "crypto.mac", "authentication tag does not verify" },
        [CF_E_KEY] = { "crypto.key", "bad key" },
        [CF_E_RANDOM] = { "crypto.random", "random source failed" },
        [CF_E_CERT] = { "x509.cert", "certificate does not parse" },
        [CF_E_CHAIN] = { "x509.chain", "certificate chain does not verify" },
        [CF_E_EXPIRED] = { "x509.validity", "outside its validity period" },
        [CF_E_REVOKED] = { "x509.revoked", "revoked" },
        [CF_E_COLLATERAL] = { "attest.collateral", "collateral missing or inconsistent" },
        [CF_E_TCB] = { "attest.tcb", "TCB not acceptable" },
        [CF_E_BINDING] = { "attest.binding", "evidence does not bind the expected data" },
        [CF_E_EVIDENCE] = { "attest.evidence", "evidence does not satisfy the rules" },
        [CF_E_REFUSED] = { "refused", "refused by policy" },
        [CF_E_TAMPERED] = { "store.tampered", "stored data was tampered with" },
        [CF_E_STORE] = { "store.error", "store error" },
        [CF_E_ROLLBACK] = { "store.rollback", "state is older than its freshness anchor" },
        [CF_E_TLS] = { "net.tls", "TLS failure" },
        [CF_E_PEER] = { "net.peer", "peer identity mismatch" },
        [CF_E_PROTOCOL] = { "net.protocol", "protocol error" },
        [CF_E_HTTP] = { "net.http", "HTTP error status" },
};

static const struct code_text *lookup(cf_status s)
{
        if (s.code < 0 || s.code >= CF_E__COUNT || g_codes[s.code].name == NULL) {
                return NULL;
        }
        return &g_codes[s.code];
}

const char *cf_status_name(cf_status s)
{
        const struct code_text *t = lookup(s);
        return t ? t->name : "unknown";
}

const char *cf_strerror(cf_status s)
{
        const struct code_text *t = lookup(s);
        return t ? t->text : "unknown error";
}

cf_status cf_fail_at(enum cf_errcode code, const char *file, int line)
{
        cf_log_debug("fail code=%s at=%s:%d", g_codes[code].name, file, line);
        return (cf_status){ (int32_t)code };
}

cf_status cf_fail_errno_at(int err, const char *file, int line)
{
        switch (err) {
        case ENOMEM:
                return cf_fail_at(CF_E_NOMEM, file, line);
        case ENOENT:
                return cf_fail_at(CF_E_NOT_FOUND, file, line);
        case EEXIST:
                return cf_fail_at(CF_E_EXISTS, file, line);
        case EACCES:
        case EPERM:
                return cf_fail_at(CF_E_PERMISSION, file, line);
        case ETIMEDOUT:
                return cf_fail_at(CF_E_TIMEOUT, file, line);
        default:
                cf_log_debug("errno=%d", err);
                return cf_fail_at(CF_E_IO, file, line);
        }
}

void cf_assert_fail(const char *expr, const char *file, int line)
{
        fprintf(stderr, "coffer: assertion failed: %s at %s:%d\n", expr, file, line);
        abort();
}
