/* The HTTPS client shared by `coffer` and `coffer-run`: one blocking TLS 1.3 connection to
 * cofferd with its identity pinned by key id, HTTP/1.1 requests with JSON bodies, and a
 * bounded response parser. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define CF_HTTP_HEADERS_MAX   16384
#define CF_HTTP_BODY_MAX      (16u << 20)
#define CF_CLIENT_TIMEOUT_MS  30000

struct cf_client;

struct cf_http_response {
        int status;
        char content_type[64];
        struct cf_buf body; /* a secret buffer: activation replies carry secrets */
};
void cf_http_response_init(struct cf_http_response *r);
void cf_http_response_done(struct cf_http_response *r);

/* Connects to HOST:PORT ([v6]:PORT) and completes the TLS handshake. expect_key_id (hex)
 * pins cofferd's identity; NULL skips the check (only for `coffer cas info`/`attest`, which
 * check by other means). identity_cert_pem/key (may be empty/NULL) authenticate a person. */
CF_FN cf_client_connect(const char *hostport, const char *expect_key_id,
                        struct cf_slice identity_cert_pem, const struct cf_pkey *identity_key,
                        int timeout_ms, struct cf_client **ret);
void cf_client_free(struct cf_client *c);
SSL *cf_client_ssl(struct cf_client *c);

/* Sends one request and reads the whole response. body may be empty. */
CF_FN cf_client_request(struct cf_client *c, const char *method, const char *path,
                        const char *content_type, struct cf_slice body,
                        struct cf_http_response *resp);

/* Parses a complete HTTP/1.1 response head+body from bytes (exposed for fuzzing). *ret_done
 * is false when more bytes are needed; CF_E_PROTOCOL on malformed input. */
CF_FN cf_http_parse_response(struct cf_slice bytes, struct cf_http_response *resp, bool *ret_done);

/* Percent-encodes a policy name for a path segment ('/' becomes %2F). */
CF_FN cf_client_encode_name(const char *name, char *out, size_t out_size);

/* Loads a JSON body; NULL when it is not JSON. */
json_t *cf_http_response_json(const struct cf_http_response *r);
/* Writes "code: message" of an error body (or the status) into out. */
void cf_http_error_text(const struct cf_http_response *r, char *out, size_t out_size);
