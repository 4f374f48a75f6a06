#include "cas/anchor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/io.h"
#include "base/log.h"

#define ANCHOR_FILE_MAX 4096

cf_status cas_anchor_configure(struct cas_anchor *a, const char *spec, const char *default_path,
                               const char *owner)
{
        const char *path = default_path;

        memset(a, 0, sizeof(*a));
        snprintf(a->owner, sizeof(a->owner), "%s", owner);
        if (spec != NULL && strcmp(spec, "none") == 0) {
                a->kind = CAS_ANCHOR_NONE;
                return CF_OK;
        }
        if (spec != NULL) {
                ENSURE(strncmp(spec, "file:", 5) == 0 && spec[5] == '/', CF_E_INVALID_ARG);
                path = spec + 5;
        }
        ENSURE(path != NULL && strlen(path) < sizeof(a->path), CF_E_LIMIT);
        snprintf(a->path, sizeof(a->path), "%s", path);
        a->kind = CAS_ANCHOR_FILE;
        ENSURE(pthread_mutex_init(&a->mu, NULL) == 0, CF_E_INTERNAL);
        ENSURE(pthread_cond_init(&a->cv, NULL) == 0, CF_E_INTERNAL);
        return CF_OK;
}

const char *cas_anchor_describe(const struct cas_anchor *a)
{
        return a->kind == CAS_ANCHOR_FILE ? a->path : "none";
}

static cf_status read_anchor(const struct cas_anchor *a, uint64_t *ret, bool *ret_exists)
{
        struct cf_buf b;
        json_error_t jerr;
        json_t *j;
        json_int_t v = -1;
        const char *owner = NULL;
        cf_status s;

        cf_buf_init(&b, ANCHOR_FILE_MAX, false);
        s = cf_read_file(a->path, ANCHOR_FILE_MAX, &b);
        if (s.code == CF_E_NOT_FOUND) {
                cf_buf_done(&b);
                *ret_exists = false;
                *ret = 0;
                return CF_OK;
        }
        j = cf_ok(s) ? json_loadb((const char *)b.ptr, b.size, JSON_REJECT_DUPLICATES, &jerr)
                     : NULL;
        cf_buf_done(&b);
        TRY(s);
        ENSURE(j != NULL, CF_E_MALFORMED);
        if (json_unpack(j, "{s:I, s:s}", "version", &v, "cofferd", &owner) != 0 || v < 0 ||
            strcmp(owner, a->owner) != 0) {
                json_decref(j);
                return cf_fail(CF_E_MALFORMED);
        }
        json_decref(j);
        *ret = (uint64_t)v;
        *ret_exists = true;
        return CF_OK;
}

static cf_status write_anchor(const struct cas_anchor *a, uint64_t version)
{
        char text[256];
        int n = snprintf(text, sizeof(text), "{\"cofferd\": \"%s\", \"version\": %llu}\n",
                         a->owner, (unsigned long long)version);

        ENSURE(n > 0 && (size_t)n < sizeof(text), CF_E_LIMIT);
        return cf_write_file_atomic(a->path, text, (size_t)n, 0600);
}

cf_status cas_anchor_check(struct cas_anchor *a, uint64_t store_version, char *err,
                           size_t err_size)
{
        uint64_t anchored = 0;
        bool exists = false;
        char dir[1100];
        cf_status s;

        if (a->kind == CAS_ANCHOR_NONE) {
                cf_log_warning("freshness anchor: none. A rollback of cofferd's state (an older "
                               "copy of its data directory) is NOT detected");
                return CF_OK;
        }
        s = read_anchor(a, &anchored, &exists);
        if (!cf_ok(s)) {
                snprintf(err, err_size,
                         "freshness anchor '%s' is unreadable or belongs to another cofferd (%s)",
                         a->path, cf_strerror(s));
                return s;
        }
        if (!exists && store_version > 0 && !a->reset) {
                /* A store with history but no anchor: the anchor may have been deleted along
                 * with a restored store. */
                snprintf(err, err_size,
                         "the freshness anchor '%s' is missing but the store is at state version "
                         "%llu; refusing to start (if this is a deliberate move of the data "
                         "directory, start once with --anchor-reset)",
                         a->path, (unsigned long long)store_version);
                return cf_fail(CF_E_ROLLBACK);
        }
        if (exists && store_version < anchored) {
                snprintf(err, err_size,
                         "rollback detected: the store is at state version %llu but the "
                         "freshness anchor '%s' records version %llu; refusing to start on an "
                         "older copy of the data directory",
                         (unsigned long long)store_version, a->path,
                         (unsigned long long)anchored);
                return cf_fail(CF_E_ROLLBACK);
        }
        if (exists && store_version > anchored) {
                cf_log_info("freshness anchor at version %llu, store at %llu (a stop within the "
                            "%d ms batching window); advancing the anchor",
                            (unsigned long long)anchored, (unsigned long long)store_version,
                            CAS_ANCHOR_WINDOW_MS);
        }
        snprintf(dir, sizeof(dir), "%s", a->path);
        if (strrchr(dir, '/') != NULL && strrchr(dir, '/') != dir) {
                *strrchr(dir, '/') = '\0';
                TRY(cf_mkdir_p(dir, 0700));
        }
        if (!exists || store_version != anchored) {
                TRY(write_anchor(a, store_version));
        }
        a->pending = a->written = store_version;
        return CF_OK;
}

static void *writer(void *arg)
{
        struct cas_anchor *a = arg;
        struct timespec window = { 0, CAS_ANCHOR_WINDOW_MS * 1000000L };

        pthread_mutex_lock(&a->mu);
        for (;;) {
                uint64_t v;
                cf_status s;

                while (!a->stop && a->pending == a->written) {
                        pthread_cond_wait(&a->cv, &a->mu);
                }
                if (a->pending == a->written) {
                        break; /* stopping with nothing left to write */
                }
                v = a->pending;
                pthread_mutex_unlock(&a->mu);
                s = write_anchor(a, v);
                if (!cf_ok(s)) {
                        cf_log_err("freshness anchor '%s': cannot record version %llu: %s",
                                   a->path, (unsigned long long)v, cf_strerror(s));
                }
                pthread_mutex_lock(&a->mu);
                a->last_error = s;
                if (cf_ok(s)) {
                        a->written = v;
                }
                if (!a->stop) {
                        /* One write per window, however many commits it covers. */
                        pthread_mutex_unlock(&a->mu);
                        nanosleep(&window, NULL);
                        pthread_mutex_lock(&a->mu);
                } else if (!cf_ok(s)) {
                        break;
                }
        }
        pthread_mutex_unlock(&a->mu);
        return NULL;
}

cf_status cas_anchor_start(struct cas_anchor *a)
{
        if (a->kind != CAS_ANCHOR_FILE) {
                return CF_OK;
        }
        ENSURE(pthread_create(&a->thread, NULL, writer, a) == 0, CF_E_INTERNAL);
        a->running = true;
        return CF_OK;
}

void cas_anchor_note(void *anchor, uint64_t version)
{
        struct cas_anchor *a = anchor;

        if (a == NULL || a->kind != CAS_ANCHOR_FILE) {
                return;
        }
        pthread_mutex_lock(&a->mu);
        if (version > a->pending) {
                a->pending = version;
                pthread_cond_signal(&a->cv);
        }
        pthread_mutex_unlock(&a->mu);
}

void cas_anchor_stop(struct cas_anchor *a)
{
        if (a->kind != CAS_ANCHOR_FILE || !a->running) {
                return;
        }
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
        a->running = false;
}
