/* The HTTPS front: one event loop per worker thread, all accepting on the same listening
 * socket, TLS 1.3 through libevent's OpenSSL bufferevents, HTTP/1.1 through evhttp with size
 * limits and timeouts, and JSON replies. */
#include "cas/cas.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "base/log.h"
#include "cas/audit.h"
#include "cas/recovery.h"
#include "crypto/tls.h"
#include "policy/policy.h"
#include "store/store.h"

static struct cas_worker *g_workers;
static int g_n_workers;

/* ---- replies ---------------------------------------------------------------------- */

static void count_status(struct cas *cas, int status)
{
        if (status >= 500) {
                atomic_fetch_add(&cas->metrics.responses_5xx, 1);
        } else if (status >= 400) {
                atomic_fetch_add(&cas->metrics.responses_4xx, 1);
        } else {
                atomic_fetch_add(&cas->metrics.responses_2xx, 1);
        }
}

static struct cas *g_cas;

static void wipe_and_free(const void *data, size_t len, void *arg)
{
        (void)arg;
        cf_wipe_free((void *)(uintptr_t)data, len);
}

static void send_text(struct evhttp_request *req, int status, const char *content_type, char *text,
                      bool secret)
{
        struct evbuffer *buf = evbuffer_new();
        size_t n = strlen(text);

        count_status(g_cas, status);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
        if (buf == NULL) {
                cf_wipe_free(text, n);
                evhttp_send_error(req, 500, NULL);
                return;
        }
        if (secret) {
                /* The reply holds secrets: hand libevent a reference it wipes when sent. */
                if (evbuffer_add_reference(buf, text, n, wipe_and_free, NULL) != 0) {
                        cf_wipe_free(text, n);
                }
        } else {
                evbuffer_add(buf, text, n);
                free(text);
        }
        evhttp_send_reply(req, status, NULL, buf);
        evbuffer_free(buf);
}

static void reply_json(struct evhttp_request *req, int status, json_t *body, bool secret)
{
        char *text = NULL;

        if (body != NULL) {
                text = json_dumps(body, JSON_COMPACT);
                json_decref(body);
        }
        if (text == NULL) {
                count_status(g_cas, 500);
                evhttp_send_error(req, 500, NULL);
                return;
        }
        send_text(req, status, "application/json", text, secret);
}

void cas_reply_json(struct evhttp_request *req, int status, json_t *body)
{
        reply_json(req, status, body, false);
}

void cas_reply_json_secret(struct evhttp_request *req, int status, json_t *body)
{
        reply_json(req, status, body, true);
}

void cas_reply_error(struct evhttp_request *req, int status, const char *code, const char *message,
                     json_t *details)
{
        json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);

        if (err != NULL && details != NULL) {
                json_object_set(err, "details", details);
        }
        json_decref(details);
        reply_json(req, status, json_pack("{s:o*}", "error", err), false);
}

void cas_reply_status(struct evhttp_request *req, cf_status s, const char *what)
{
        int status;
        char msg[256];

        switch (s.code) {
        case CF_E_NOT_FOUND:
                status = 404;
                break;
        case CF_E_PERMISSION:
                status = 403;
                break;
        case CF_E_CONFLICT:
        case CF_E_EXISTS:
                status = 409;
                break;
        case CF_E_LIMIT:
                status = 413;
                break;
        case CF_E_TIMEOUT:
                status = 503;
                break;
        case CF_E_TAMPERED:
        case CF_E_STORE:
        case CF_E_NOMEM:
        case CF_E_INTERNAL:
        case CF_E_IO:
        case CF_E_CRYPTO:
                status = 500;
                break;
        default:
                status = 400;
                break;
        }
        snprintf(msg, sizeof(msg), "%s: %s", what, cf_strerror(s));
        cas_reply_error(req, status, cf_status_name(s), msg, NULL);
}

/* ---- request accessors ------------------------------------------------------------- */

SSL *cas_request_ssl(struct evhttp_request *req)
{
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;

        return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

bool cas_request_key_id(struct evhttp_request *req, char out[static CF_KEY_ID_HEX])
{
        SSL *ssl = cas_request_ssl(req);

        return ssl != NULL && cf_ok(cf_tls_peer_key_id(ssl, out));
}

cf_status cas_request_body(struct evhttp_request *req, size_t max, struct cf_buf *b)
{
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);

        ENSURE(n <= max, CF_E_LIMIT);
        TRY(cf_buf_reserve(b, n));
        ENSURE(evbuffer_remove(in, b->ptr + b->size, n) == (int)n, CF_E_IO);
        b->size += n;
        b->ptr[b->size] = 0;
        return CF_OK;
}

/* ---- connections: a cap per worker and a deadline per request --------------------------
 *
 * evhttp's timeout restarts with every byte, so a client trickling bytes would hold a
 * connection forever, and libevent 2.1 has no cap on connections. Each connection made by
 * tls_bev gets a struct conn, hung on its SSL object as ex_data so that it is freed exactly
 * when libevent frees the SSL (ssl_conn_freed). A timer drops the connection when no
 * complete request arrived within header_timeout of the accept (TLS handshake included), or
 * within idle timeout + header_timeout of the previous complete request. Connections sit on
 * a per-worker list, least recently productive first; over the cap, the head is dropped.
 *
 * Dropping: evhttp sets itself (the evhttp_connection) as the callback argument of the
 * bufferevent it is given, and bufferevent_free clears it; so the argument, checked against
 * evhttp_connection_get_bufferevent, is the connection while it lives. Drops run from the
 * timer (never inside an evhttp callback), so evhttp_connection_free is safe. */

struct conn;
TAILQ_HEAD(conn_list, conn);

struct front {
        struct cas_worker *w;
        struct conn_list conns; /* least recently productive first */
        size_t n_live;          /* on the list and not doomed */
        size_t cap;
        struct timeval first_tv; /* accept to first complete request */
        struct timeval next_tv;  /* complete request to the next one */
};

struct conn {
        TAILQ_ENTRY(conn) link;
        struct front *f;
        struct bufferevent *bev;
        struct event *timer;
        bool doomed;  /* being dropped: no longer counted */
        bool evicted; /* for the log and metrics: cap rather than deadline */
};

static struct front g_fronts[CAS_MAX_THREADS];
static int g_conn_index = -1;
static pthread_once_t g_conn_once = PTHREAD_ONCE_INIT;

/* OpenSSL calls it for every SSL it frees; ptr is our conn for the ones tls_bev made. */
static void ssl_conn_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
        struct conn *c = ptr;

        (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
        if (c == NULL) {
                return;
        }
        if (c->timer != NULL) {
                event_free(c->timer);
        }
        if (!c->doomed) {
                c->f->n_live--;
        }
        TAILQ_REMOVE(&c->f->conns, c, link);
        free(c);
}

static void conn_index_init(void)
{
        g_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_conn_freed);
}

static struct conn *request_conn(struct evhttp_request *req)
{
        SSL *ssl = cas_request_ssl(req);

        return ssl != NULL && g_conn_index >= 0 ? SSL_get_ex_data(ssl, g_conn_index) : NULL;
}

static void drop(struct conn *c)
{
        bufferevent_data_cb rcb = NULL, wcb = NULL;
        bufferevent_event_cb ecb = NULL;
        void *arg = NULL;

        bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &arg);
        struct evhttp_connection *evcon = arg;
        if (evcon != NULL && evhttp_connection_get_bufferevent(evcon) == c->bev) {
                evhttp_connection_free(evcon); /* frees the SSL, hence c (now or soon) */
        }
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
        struct conn *c = arg;
        struct cas *cas = c->f->w->cas;

        (void)fd, (void)what;
        if (!c->doomed) {
                c->doomed = true;
                c->f->n_live--;
        }
        if (c->evicted) {
                atomic_fetch_add(&cas->metrics.connections_evicted, 1);
                cf_log_debug("connection dropped: over the cap of %zu per worker", c->f->cap);
        } else {
                atomic_fetch_add(&cas->metrics.connections_timed_out, 1);
                cf_log_debug("connection dropped: no complete request within the deadline");
        }
        drop(c);
}

/* Over the cap: the least recently productive connection goes, from the next loop turn
 * (the caller may be inside evhttp's accept path). */
static void evict_one(struct front *f)
{
        struct conn *c;

        TAILQ_FOREACH(c, &f->conns, link)
        {
                if (!c->doomed) {
                        c->doomed = true;
                        c->evicted = true;
                        f->n_live--;
                        evtimer_del(c->timer);
                        event_active(c->timer, EV_TIMEOUT, 1);
                        return;
                }
        }
}

/* A complete request arrived on c: it is the most recently productive, and the next one has
 * the idle timeout and the header deadline to arrive. */
static void conn_productive(struct conn *c)
{
        if (c->doomed) {
                return;
        }
        TAILQ_REMOVE(&c->f->conns, c, link);
        TAILQ_INSERT_TAIL(&c->f->conns, c, link);
        evtimer_add(c->timer, &c->f->next_tv);
}

/* Every connection is TLS: evhttp would make a plain one if this returned NULL, so a
 * failure returns a plain bufferevent whose requests route() refuses (no conn on it). */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
        struct front *f = arg;
        struct conn *c = calloc(1, sizeof(*c));
        SSL *ssl = NULL;
        struct bufferevent *bev = NULL;

        if (c != NULL) {
                c->f = f;
                c->timer = evtimer_new(base, on_conn_timer, c);
                ssl = c->timer != NULL ? SSL_new(f->w->cas->tls) : NULL;
        }
        if (ssl == NULL || SSL_set_ex_data(ssl, g_conn_index, c) != 1) {
                SSL_free(ssl);
                if (c != NULL && c->timer != NULL) {
                        event_free(c->timer);
                }
                free(c);
                cf_log_err("cannot set up a TLS connection (out of memory)");
                return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        }
        /* From here the SSL owns c: freeing it (even on failure below) frees c. */
        if (f->n_live >= f->cap) {
                evict_one(f);
        }
        TAILQ_INSERT_TAIL(&f->conns, c, link);
        f->n_live++;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
                cf_log_err("cannot set up a TLS connection (out of memory)");
                return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        }
        c->bev = bev;
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        evtimer_add(c->timer, &f->first_tv);
        return bev;
}

/* ---- routing ----------------------------------------------------------------------- */

/* In recovery mode there is no store: only what recovery needs is served. */
static void route_recovery(struct cas_worker *w, struct evhttp_request *req, const char *path,
                           enum evhttp_cmd_type m)
{
        if (strcmp(path, "/health") == 0 && m == EVHTTP_REQ_GET) {
                cas_reply_json(req, 200, json_pack("{s:s}", "status", "recovery"));
        } else if (strcmp(path, "/version") == 0 && m == EVHTTP_REQ_GET) {
                cas_api_version(w, req);
        } else if (strcmp(path, "/cas/attestation") == 0 && m == EVHTTP_REQ_GET) {
                cas_api_attestation(w, req);
        } else if (strcmp(path, "/recovery") == 0) {
                cas_api_recovery(w->cas, req);
        } else {
                cas_reply_error(req, 503, "recovery.required",
                                "cofferd is in recovery mode: its sealing key cannot unwrap the "
                                "data key; holders of recovery keys must run 'coffer cas recover'",
                                NULL);
        }
}

static void route(struct evhttp_request *req, void *arg)
{
        struct cas_worker *w = arg;
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        enum evhttp_cmd_type m = evhttp_request_get_command(req);

        struct conn *c = request_conn(req);

        atomic_fetch_add(&w->cas->metrics.requests, 1);
        if (c == NULL) {
                /* Only a connection tls_bev failed to set up (memory exhaustion). */
                evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
                cas_reply_error(req, 400, "request.tls", "cofferd speaks HTTPS only", NULL);
                return;
        }
        conn_productive(c);
        if (path == NULL || strncmp(path, "/v1/", 4) != 0) {
                cas_reply_error(req, 404, "not_found", "no such endpoint (the API is under /v1/)",
                                NULL);
                return;
        }
        path += 3;
        if (w->cas->recovery_mode) {
                route_recovery(w, req, path, m);
                return;
        }
        if (strcmp(path, "/health") == 0 && m == EVHTTP_REQ_GET) {
                cas_api_health(w, req);
        } else if (strcmp(path, "/version") == 0 && m == EVHTTP_REQ_GET) {
                cas_api_version(w, req);
        } else if (strcmp(path, "/metrics") == 0 && m == EVHTTP_REQ_GET) {
                cas_api_metrics(w, req);
        } else if (strcmp(path, "/cas/attestation") == 0 && m == EVHTTP_REQ_GET) {
                cas_api_attestation(w, req);
        } else if (strcmp(path, "/recovery") == 0) {
                cas_reply_error(req, 404, "recovery.none", "cofferd is not in recovery mode",
                                NULL);
        } else if (strcmp(path, "/activate") == 0 && m == EVHTTP_REQ_POST) {
                cas_api_activate(w, req);
        } else if (strncmp(path, "/volumes/", 9) == 0) {
                cas_api_volumes(w, req, path + 8);
        } else if (strcmp(path, "/collateral") == 0 || strncmp(path, "/collateral/", 12) == 0) {
                cas_api_collateral(w, req, path + 11);
        } else if (strcmp(path, "/audit") == 0 || strncmp(path, "/audit/", 7) == 0) {
                cas_api_audit(w, req, path + 6);
        } else if (strcmp(path, "/policies") == 0 || strncmp(path, "/policies/", 10) == 0) {
                cas_api_policies(w, req, path + 9);
        } else {
                cas_reply_error(req, 404, "not_found", "no such endpoint or method", NULL);
        }
}

/* ---- TLS and workers --------------------------------------------------------------- */

static cf_status worker_setup(struct cas_worker *w, struct front *f, struct cas *cas, int listen_fd,
                              size_t cap)
{
        unsigned header =
            cas->cfg.header_timeout ? cas->cfg.header_timeout : CAS_HEADER_TIMEOUT_SECONDS;
        int fd;

        w->cas = cas;
        memset(f, 0, sizeof(*f));
        f->w = w;
        TAILQ_INIT(&f->conns);
        f->cap = cap;
        f->first_tv.tv_sec = (time_t)header;
        f->next_tv.tv_sec = (time_t)header + CAS_TIMEOUT_SECONDS;
        if (!cas->recovery_mode) {
                TRY(store_open_sqlite(cas->store_path, cas->data_key->ptr, &w->store));
                store_set_commit_hook(w->store, cas_anchor_note, &cas->anchor);
        }
        w->base = event_base_new();
        ENSURE(w->base != NULL, CF_E_NOMEM);
        w->http = evhttp_new(w->base);
        ENSURE(w->http != NULL, CF_E_NOMEM);
        evhttp_set_bevcb(w->http, tls_bev, f);
        evhttp_set_gencb(w->http, route, w);
        evhttp_set_max_headers_size(w->http, CAS_MAX_HEADERS_SIZE);
        evhttp_set_max_body_size(w->http, CAS_MAX_BODY_SIZE);
        evhttp_set_timeout(w->http, CAS_TIMEOUT_SECONDS);
        evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                                    EVHTTP_REQ_DELETE);
        /* Each loop gets its own descriptor of the one listening socket. */
        fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 3);
        TRY_ERRNO(fd);
        ENSURE(evhttp_accept_socket(w->http, fd) == 0, CF_E_IO);
        return CF_OK;
}

static void worker_teardown(struct cas_worker *w, struct front *f)
{
        struct conn *c;

        /* The SSLs of open connections are freed while the base goes away: their timers
         * must be gone first. */
        TAILQ_FOREACH(c, &f->conns, link)
        {
                if (c->timer != NULL) {
                        event_free(c->timer);
                        c->timer = NULL;
                }
        }
        if (w->http != NULL) {
                evhttp_free(w->http);
        }
        if (w->base != NULL) {
                event_base_free(w->base);
        }
        for (size_t i = 0; i < CAS_POLICY_CACHE_SIZE; i++) {
                policy_free(w->cache[i].policy);
        }
        store_close(w->store);
        attest_collateral_done(&w->collateral);
        memset(w, 0, sizeof(*w));
}

static void *worker_main(void *arg)
{
        struct cas_worker *w = arg;

        event_base_dispatch(w->base);
        return NULL;
}

static cf_status listen_socket(const struct cas_config *cfg, int *ret_fd, uint16_t *ret_port)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int one = 1, fd;
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        memset(&ss, 0, sizeof(ss));
        if (inet_pton(AF_INET, cfg->listen_host, &in4->sin_addr) == 1) {
                in4->sin_family = AF_INET;
                in4->sin_port = htons(cfg->listen_port);
                len = sizeof(*in4);
        } else if (inet_pton(AF_INET6, cfg->listen_host, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(cfg->listen_port);
                len = sizeof(*in6);
        } else {
                cf_log_err("--listen: '%s' is not an IPv4 or IPv6 address", cfg->listen_host);
                return cf_fail(CF_E_INVALID_ARG);
        }
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        TRY_ERRNO(fd);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* Accepted sockets inherit it: small replies must not wait for delayed ACKs. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
                int e = errno;
                cf_log_err("cannot listen on %s:%u: %s", cfg->listen_host, cfg->listen_port,
                           strerror(e));
                close(fd);
                return cf_fail_errno(e);
        }
        len = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &len);
        *ret_port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
        *ret_fd = fd;
        return CF_OK;
}

static int g_stop_pipe[2] = { -1, -1 };

static void poke(char c)
{
        if (g_stop_pipe[1] >= 0) {
                ssize_t r = write(g_stop_pipe[1], &c, 1);
                (void)r;
        }
}

void cas_request_stop(void)
{
        poke('x');
}

void cas_request_mode_change(void)
{
        poke('m');
}

cf_status cas_listen(struct cas *cas)
{
        uint16_t port = 0;

        TRY_ERRNO(pipe2(g_stop_pipe, O_CLOEXEC));
        TRY(listen_socket(&cas->cfg, &cas->listen_fd, &port));
        /* The line tests and scripts wait for; flushed before anything else can happen. */
        if (strchr(cas->cfg.listen_host, ':') != NULL) {
                printf("cofferd listening on [%s]:%u\n", cas->cfg.listen_host, port);
        } else {
                printf("cofferd listening on %s:%u\n", cas->cfg.listen_host, port);
        }
        fflush(stdout);
        cf_log_info("listening address=%s:%u key_id=%s", cas->cfg.listen_host, port,
                    cas->key_id);
        return CF_OK;
}

/* The per-worker cap: the configured one, lowered so that every worker at its cap still
 * leaves CAS_FD_RESERVE descriptors of RLIMIT_NOFILE for the store, logs and accept. */
#define CAS_FD_RESERVE 64

static size_t connection_cap(const struct cas *cas, int workers)
{
        size_t cap =
            cas->cfg.max_connections ? cas->cfg.max_connections : CAS_MAX_CONNECTIONS_PER_WORKER;
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
                rlim_t room = rl.rlim_cur > 2 * CAS_FD_RESERVE ? rl.rlim_cur - CAS_FD_RESERVE
                                                               : CAS_FD_RESERVE;
                size_t per = (size_t)(room / (rlim_t)workers);
                if (per < cap) {
                        cf_log_warning("max connections lowered to %zu per worker (%d workers, "
                                       "%llu file descriptors)",
                                       per > 0 ? per : 1, workers, (unsigned long long)rl.rlim_cur);
                        cap = per > 0 ? per : 1;
                }
        }
        return cap;
}

static void on_signal(int sig)
{
        (void)sig;
        cas_request_stop();
}

cf_status cas_serve(struct cas *cas, bool *ret_mode_changed)
{
        pthread_t threads[CAS_MAX_THREADS];
        struct cas_worker workers[CAS_MAX_THREADS];
        int n = cas->cfg.threads;
        cf_status s = CF_OK;
        size_t cap;
        char c = 0;

        g_cas = cas;
        *ret_mode_changed = false;
        ENSURE(evthread_use_pthreads() == 0, CF_E_INTERNAL);
        if (n <= 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                n = cpus > 0 ? (int)cpus : 1;
        }
        if (n > CAS_MAX_THREADS) {
                n = CAS_MAX_THREADS;
        }
        pthread_once(&g_conn_once, conn_index_init);
        ENSURE(g_conn_index >= 0, CF_E_NOMEM);
        cap = connection_cap(cas, n);
        memset(workers, 0, sizeof(workers));
        for (int i = 0; i < n && cf_ok(s); i++) {
                s = worker_setup(&workers[i], &g_fronts[i], cas, cas->listen_fd, cap);
        }
        if (!cf_ok(s)) {
                cf_log_err("cannot start workers: %s", cf_strerror(s));
                for (int i = 0; i < n; i++) {
                        worker_teardown(&workers[i], &g_fronts[i]);
                }
                return s;
        }
        g_workers = workers;
        g_n_workers = n;
        if (!cas->recovery_mode) {
                TRY(cas_anchor_start(&cas->anchor));
        }
        signal(SIGPIPE, SIG_IGN);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        for (int i = 0; i < n; i++) {
                pthread_create(&threads[i], NULL, worker_main, &workers[i]);
        }
        cf_log_info("serving mode=%s threads=%d max_connections=%zu/worker header_timeout=%us",
                    cas->recovery_mode ? "recovery" : "normal", n, cap,
                    cas->cfg.header_timeout ? cas->cfg.header_timeout : CAS_HEADER_TIMEOUT_SECONDS);
        while (read(g_stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
        }
        for (int i = 0; i < n; i++) {
                event_base_loopexit(workers[i].base, NULL);
        }
        for (int i = 0; i < n; i++) {
                pthread_join(threads[i], NULL);
                worker_teardown(&workers[i], &g_fronts[i]);
        }
        if (!cas->recovery_mode) {
                cas_audit_flush_refusals();    /* pending refusals, before the last state */
                cas_anchor_stop(&cas->anchor); /* records the last state before exiting */
        }
        *ret_mode_changed = c == 'm';
        if (!*ret_mode_changed) {
                cf_log_info("stopping");
                close(cas->listen_fd);
        }
        return CF_OK;
}
