#include "client/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "base/codec.h"
#include "base/mem.h"
#include "crypto/tls.h"

struct cf_client {
        int fd;
        SSL_CTX *ctx;
        SSL *ssl;
        char host[256];
        int timeout_ms;
};

void cf_http_response_init(struct cf_http_response *r)
{
        memset(r, 0, sizeof(*r));
        cf_buf_init(&r->body, CF_HTTP_BODY_MAX, true);
}

void cf_http_response_done(struct cf_http_response *r)
{
        cf_buf_done(&r->body);
}

static cf_status split_hostport(const char *hp, char *host, size_t host_size, char *port,
                                size_t port_size)
{
        const char *colon;
        size_t n;

        if (hp[0] == '[') {
                const char *end = strchr(hp, ']');
                ENSURE(end != NULL && end[1] == ':', CF_E_MALFORMED);
                n = (size_t)(end - hp - 1);
                ENSURE(n < host_size, CF_E_LIMIT);
                memcpy(host, hp + 1, n);
                colon = end + 1;
        } else {
                colon = strrchr(hp, ':');
                ENSURE(colon != NULL && colon != hp, CF_E_MALFORMED);
                n = (size_t)(colon - hp);
                ENSURE(n < host_size, CF_E_LIMIT);
                memcpy(host, hp, n);
        }
        host[n] = '\0';
        ENSURE(strlen(colon + 1) > 0 && strlen(colon + 1) < port_size, CF_E_MALFORMED);
        memcpy(port, colon + 1, strlen(colon + 1) + 1);
        return CF_OK;
}

static cf_status wait_fd(int fd, short events, int timeout_ms)
{
        struct pollfd p = { fd, events, 0 };
        int r;

        do {
                r = poll(&p, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        TRY_ERRNO(r);
        ENSURE(r > 0, CF_E_TIMEOUT);
        return CF_OK;
}

static cf_status tcp_connect(const char *host, const char *port, int timeout_ms, int *ret)
{
        struct addrinfo hints = { 0 }, *res = NULL, *ai;
        int fd = -1, err = 0;
        socklen_t len = sizeof(err);

        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        ENSURE(getaddrinfo(host, port, &hints, &res) == 0, CF_E_NOT_FOUND);
        for (ai = res; ai != NULL; ai = ai->ai_next) {
                fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                            ai->ai_protocol);
                if (fd < 0) {
                        continue;
                }
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
                    (errno == EINPROGRESS && cf_ok(wait_fd(fd, POLLOUT, timeout_ms)) &&
                     getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)) {
                        break;
                }
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        ENSURE(fd >= 0, CF_E_IO);
        /* Requests are small and latency-bound: never wait for a delayed ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
        *ret = fd;
        return CF_OK;
}

/* Runs an SSL operation on the non-blocking socket until it completes or times out. */
static cf_status ssl_io(struct cf_client *c, int r)
{
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
                return wait_fd(c->fd, POLLIN, c->timeout_ms);
        case SSL_ERROR_WANT_WRITE:
                return wait_fd(c->fd, POLLOUT, c->timeout_ms);
        case SSL_ERROR_ZERO_RETURN:
                return cf_fail(CF_E_PROTOCOL);
        default:
                ERR_clear_error();
                return cf_fail(CF_E_TLS);
        }
}

cf_status cf_client_connect(const char *hostport, const char *expect_key_id,
                            struct cf_slice identity_cert_pem, const struct cf_pkey *identity_key,
                            int timeout_ms, struct cf_client **ret)
{
        char host[256], port[16];
        struct cf_client *c;
        int r;
        cf_status s;

        TRY(split_hostport(hostport, host, sizeof(host), port, sizeof(port)));
        c = calloc(1, sizeof(*c));
        ENSURE(c != NULL, CF_E_NOMEM);
        c->fd = -1;
        c->timeout_ms = timeout_ms > 0 ? timeout_ms : CF_CLIENT_TIMEOUT_MS;
        snprintf(c->host, sizeof(c->host), "%s", host);
        s = cf_tls_client_ctx(identity_cert_pem, identity_key, &c->ctx);
        if (cf_ok(s)) {
                s = tcp_connect(host, port, c->timeout_ms, &c->fd);
        }
        if (cf_ok(s)) {
                c->ssl = SSL_new(c->ctx);
                s = c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) == 1 ? CF_OK
                                                                      : cf_fail(CF_E_NOMEM);
        }
        while (cf_ok(s) && (r = SSL_connect(c->ssl)) != 1) {
                s = ssl_io(c, r);
        }
        if (cf_ok(s) && expect_key_id != NULL) {
                s = cf_tls_check_peer(c->ssl, expect_key_id);
        }
        if (!cf_ok(s)) {
                cf_client_free(c);
                return s;
        }
        *ret = c;
        return CF_OK;
}

void cf_client_free(struct cf_client *c)
{
        if (c == NULL) {
                return;
        }
        if (c->ssl != NULL) {
                SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
        }
        SSL_CTX_free(c->ctx);
        if (c->fd >= 0) {
                close(c->fd);
        }
        free(c);
}

SSL *cf_client_ssl(struct cf_client *c)
{
        return c->ssl;
}

static cf_status write_all(struct cf_client *c, const void *data, size_t n)
{
        const uint8_t *p = data;

        while (n > 0) {
                size_t done = 0;
                int r = SSL_write_ex(c->ssl, p, n, &done);
                if (r == 1) {
                        p += done;
                        n -= done;
                        continue;
                }
                TRY(ssl_io(c, r));
        }
        return CF_OK;
}

/* Case-insensitive header name match at the start of a line slice. */
static bool header_is(struct cf_slice line, const char *name, struct cf_slice *value)
{
        size_t n = strlen(name);

        if (line.size <= n || strncasecmp((const char *)line.ptr, name, n) != 0 ||
            line.ptr[n] != ':') {
                return false;
        }
        struct cf_cursor c = cf_cursor_make(line);
        cf_ignore(cf_cursor_skip(&c, n + 1)); /* checked above */
        while (cf_cursor_left(&c) > 0 && (c.in.ptr[c.pos] == ' ' || c.in.ptr[c.pos] == '\t')) {
                c.pos++;
        }
        *value = cf_slice_make(c.in.ptr + c.pos, cf_cursor_left(&c));
        return true;
}

/* Takes one CRLF-terminated line from the cursor. */
static cf_status take_line(struct cf_cursor *c, struct cf_slice *ret, bool *ret_more)
{
        const uint8_t *start = c->in.ptr + c->pos;
        size_t left = cf_cursor_left(c);
        const uint8_t *lf = memchr(start, '\n', left);
        struct cf_slice line;

        if (lf == NULL) {
                *ret_more = true;
                ENSURE(left < CF_HTTP_HEADERS_MAX, CF_E_PROTOCOL);
                return CF_OK;
        }
        TRY(cf_cursor_take(c, (size_t)(lf - start) + 1, &line));
        ENSURE(line.size >= 2 && line.ptr[line.size - 2] == '\r', CF_E_PROTOCOL);
        *ret = cf_slice_make(line.ptr, line.size - 2);
        *ret_more = false;
        return CF_OK;
}

cf_status cf_http_parse_response(struct cf_slice bytes, struct cf_http_response *resp,
                                 bool *ret_done)
{
        struct cf_cursor c = cf_cursor_make(bytes);
        struct cf_slice line, v, body;
        char num[24];
        uint64_t status, length = 0;
        bool more = false, have_length = false;

        *ret_done = false;
        TRY(take_line(&c, &line, &more));
        if (more) {
                return CF_OK;
        }
        /* "HTTP/1.1 200 Reason" */
        ENSURE(line.size >= 12 && memcmp(line.ptr, "HTTP/1.", 7) == 0 && line.ptr[8] == ' ',
               CF_E_PROTOCOL);
        ENSURE(line.ptr[7] == '0' || line.ptr[7] == '1', CF_E_PROTOCOL);
        memcpy(num, line.ptr + 9, 3);
        num[3] = '\0';
        TRY(cf_parse_u64(num, 100, 599, &status));
        ENSURE(line.size == 12 || line.ptr[12] == ' ', CF_E_PROTOCOL);
        for (size_t n_headers = 0;; n_headers++) {
                ENSURE(n_headers < 100, CF_E_PROTOCOL);
                TRY(take_line(&c, &line, &more));
                if (more) {
                        return CF_OK;
                }
                if (line.size == 0) {
                        break;
                }
                if (header_is(line, "Content-Length", &v)) {
                        ENSURE(!have_length && v.size > 0 && v.size < sizeof(num), CF_E_PROTOCOL);
                        TRY(cf_slice_to_cstr(v, num, sizeof(num)));
                        TRY(cf_parse_u64(num, 0, CF_HTTP_BODY_MAX, &length));
                        have_length = true;
                } else if (header_is(line, "Transfer-Encoding", &v)) {
                        return cf_fail(CF_E_PROTOCOL); /* cofferd always sends a length */
                } else if (header_is(line, "Content-Type", &v)) {
                        size_t n = v.size < sizeof(resp->content_type) - 1
                                           ? v.size
                                           : sizeof(resp->content_type) - 1;
                        memcpy(resp->content_type, v.ptr, n);
                        resp->content_type[n] = '\0';
                }
        }
        ENSURE(c.pos <= CF_HTTP_HEADERS_MAX, CF_E_PROTOCOL);
        ENSURE(have_length, CF_E_PROTOCOL);
        if (cf_cursor_left(&c) < length) {
                return CF_OK;
        }
        TRY(cf_cursor_take(&c, (size_t)length, &body));
        TRY(cf_cursor_expect_end(&c));
        cf_buf_reset(&resp->body);
        TRY(cf_buf_append(&resp->body, body.ptr, body.size));
        resp->status = (int)status;
        *ret_done = true;
        return CF_OK;
}

cf_status cf_client_request(struct cf_client *c, const char *method, const char *path,
                            const char *content_type, struct cf_slice body,
                            struct cf_http_response *resp)
{
        struct cf_buf head, in;
        bool done = false;
        cf_status s;

        cf_buf_init(&head, 4096, false);
        s = cf_buf_printf(&head,
                          "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: coffer/%s\r\n"
                          "Accept: application/json\r\nContent-Length: %zu\r\n",
                          method, path, c->host, COFFER_VERSION, body.size);
        if (cf_ok(s) && content_type != NULL) {
                s = cf_buf_printf(&head, "Content-Type: %s\r\n", content_type);
        }
        if (cf_ok(s)) {
                s = cf_buf_append_str(&head, "\r\n");
        }
        if (cf_ok(s)) {
                s = write_all(c, head.ptr, head.size);
        }
        cf_buf_done(&head);
        TRY(s);
        if (body.size > 0) {
                TRY(write_all(c, body.ptr, body.size));
        }
        cf_buf_init(&in, CF_HTTP_HEADERS_MAX + CF_HTTP_BODY_MAX, true);
        while (cf_ok(s) && !done) {
                size_t got = 0;
                int r;

                s = cf_buf_reserve(&in, 16384);
                if (!cf_ok(s)) {
                        break;
                }
                r = SSL_read_ex(c->ssl, in.ptr + in.size, in.cap - 1 - in.size, &got);
                if (r == 1) {
                        in.size += got;
                        s = cf_http_parse_response(cf_buf_slice(&in), resp, &done);
                        continue;
                }
                s = ssl_io(c, r);
        }
        cf_buf_done(&in);
        return s;
}

cf_status cf_client_encode_name(const char *name, char *out, size_t out_size)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
                bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                             (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_';
                ENSURE(o + 4 < out_size, CF_E_LIMIT);
                if (plain) {
                        out[o++] = (char)*p;
                } else {
                        out[o++] = '%';
                        out[o++] = hex[*p >> 4];
                        out[o++] = hex[*p & 15];
                }
        }
        ENSURE(o < out_size, CF_E_LIMIT);
        out[o] = '\0';
        return CF_OK;
}

json_t *cf_http_response_json(const struct cf_http_response *r)
{
        json_error_t err;

        return json_loadb((const char *)r->body.ptr, r->body.size, JSON_REJECT_DUPLICATES, &err);
}

void cf_http_error_text(const struct cf_http_response *r, char *out, size_t out_size)
{
        json_t *j = cf_http_response_json(r);
        const char *code = NULL, *msg = NULL;

        if (j != NULL && json_unpack(j, "{s:{s:s, s:s}}", "error", "code", &code, "message",
                                     &msg) == 0) {
                snprintf(out, out_size, "%s (%s, HTTP %d)", msg, code, r->status);
        } else {
                snprintf(out, out_size, "HTTP %d", r->status);
        }
        json_decref(j);
}
