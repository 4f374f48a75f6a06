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
#include "crypto/crypto.h"

#define ANCHOR_FILE_MAX 4096

/* "tpm[@0xINDEX]:TCTI". */
static cf_status configure_tpm(struct cas_anchor *a, const char *spec)
{
        const char *p = spec + 3, *tcti;
        uint32_t index = CAS_ANCHOR_TPM_INDEX_DEFAULT;
        uint8_t raw[32];

        if (*p == '@') {
                size_t digits = 0;
                uint8_t be[4] = {0};
                char hex[9] = "00000000";

                ENSURE(p[1] == '0' && (p[2] == 'x' || p[2] == 'X'), CF_E_INVALID_ARG);
                p += 3;
                while (digits <= 8 && p[digits] != '\0' && p[digits] != ':') {
                        digits++;
                }
                ENSURE(digits >= 1 && digits <= 8, CF_E_INVALID_ARG);
                /* Left-pad to 8 digits and decode as 4 big-endian bytes. */
                memcpy(hex + 8 - digits, p, digits);
                TRY(cf_hex_decode(cf_slice_make(hex, 8), be, sizeof(be)));
                index =
                    (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];
                p += digits;
        }
        ENSURE(*p == ':', CF_E_INVALID_ARG);
        tcti = p + 1;
        ENSURE(*tcti != '\0', CF_E_INVALID_ARG);
        ENSURE(strlen(tcti) <= CAS_ANCHOR_TPM_TCTI_MAX, CF_E_LIMIT);
        ENSURE(index >= CAS_ANCHOR_TPM_INDEX_MIN && index <= CAS_ANCHOR_TPM_INDEX_MAX,
               CF_E_INVALID_ARG);
        /* The record names its cofferd by key id: it must be one. */
        TRY(cf_hex_decode(cf_slice_str(a->owner), raw, sizeof(raw)));
        snprintf(a->tcti, sizeof(a->tcti), "%s", tcti);
        snprintf(a->description, sizeof(a->description), "tpm:%s (NV counter 0x%08x)", tcti, index);
        a->nv_index = index;
        a->kind = CAS_ANCHOR_TPM;
        return CF_OK;
}

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
        if (spec != NULL && strncmp(spec, "tpm", 3) == 0 && (spec[3] == ':' || spec[3] == '@')) {
                TRY(configure_tpm(a, spec));
        } else {
                if (spec != NULL) {
                        ENSURE(strncmp(spec, "file:", 5) == 0 && spec[5] == '/', CF_E_INVALID_ARG);
                        path = spec + 5;
                }
                ENSURE(path != NULL && strlen(path) < sizeof(a->path), CF_E_LIMIT);
                snprintf(a->path, sizeof(a->path), "%s", path);
                a->kind = CAS_ANCHOR_FILE;
        }
        ENSURE(pthread_mutex_init(&a->mu, NULL) == 0, CF_E_INTERNAL);
        ENSURE(pthread_cond_init(&a->cv, NULL) == 0, CF_E_INTERNAL);
        return CF_OK;
}

cf_status cas_anchor_set_key(struct cas_anchor *a, const uint8_t data_key[CAS_ANCHOR_TPM_KEY_SIZE],
                             const char *data_dir)
{
        struct cf_secret *key = NULL;
        char path[sizeof(a->path)];
        int n;
        cf_status s;

        if (a->kind != CAS_ANCHOR_TPM) {
                return CF_OK;
        }
        n = snprintf(path, sizeof(path), "%s/%s", data_dir, CAS_ANCHOR_TPM_FILE);
        ENSURE(n > 0 && (size_t)n < sizeof(path), CF_E_LIMIT);
        TRY(cf_secret_new(CAS_ANCHOR_TPM_KEY_SIZE, &key));
        s = cas_anchor_tpm_derive_key(data_key, key->ptr);
        if (!cf_ok(s)) {
                cf_secret_free(key);
                return s;
        }
        cf_secret_free(a->record_key);
        a->record_key = key;
        memcpy(a->path, path, (size_t)n + 1);
        return CF_OK;
}

const char *cas_anchor_describe(const struct cas_anchor *a)
{
        switch (a->kind) {
        case CAS_ANCHOR_FILE:
                return a->path;
        case CAS_ANCHOR_TPM:
                return a->description;
        case CAS_ANCHOR_NONE:
                break;
        }
        return "none";
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
        int n = snprintf(text, sizeof(text), "{\"cofferd\": \"%s\", \"version\": %llu}\n", a->owner,
                         (unsigned long long)version);

        ENSURE(n > 0 && (size_t)n < sizeof(text), CF_E_LIMIT);
        return cf_write_file_atomic(a->path, text, (size_t)n, 0600);
}

cf_status cas_anchor_check(struct cas_anchor *a, uint64_t store_version, char *err, size_t err_size)
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
        if (a->kind == CAS_ANCHOR_TPM) {
                TRY(cas_anchor_tpm_check(a, store_version, err, err_size));
                a->pending = a->written = store_version;
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
                         (unsigned long long)store_version, a->path, (unsigned long long)anchored);
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

static cf_status write_version(struct cas_anchor *a, uint64_t version)
{
        if (a->kind == CAS_ANCHOR_TPM) {
                return cas_anchor_tpm_write(a, version);
        }
        return write_anchor(a, version);
}

static void *writer(void *arg)
{
        struct cas_anchor *a = arg;
        struct timespec window = {0, CAS_ANCHOR_WINDOW_MS * 1000000L};

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
                s = write_version(a, v);
                if (!cf_ok(s)) {
                        cf_log_err("freshness anchor '%s': cannot record version %llu: %s",
                                   cas_anchor_describe(a), (unsigned long long)v, cf_strerror(s));
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
        if (a->kind != CAS_ANCHOR_FILE && a->kind != CAS_ANCHOR_TPM) {
                return CF_OK;
        }
        ENSURE(pthread_create(&a->thread, NULL, writer, a) == 0, CF_E_INTERNAL);
        a->running = true;
        return CF_OK;
}

void cas_anchor_note(void *anchor, uint64_t version)
{
        struct cas_anchor *a = anchor;

        if (a == NULL || (a->kind != CAS_ANCHOR_FILE && a->kind != CAS_ANCHOR_TPM)) {
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
        if (a->running) {
                pthread_mutex_lock(&a->mu);
                a->stop = true;
                pthread_cond_signal(&a->cv);
                pthread_mutex_unlock(&a->mu);
                pthread_join(a->thread, NULL);
                a->running = false;
        }
        if (a->kind == CAS_ANCHOR_TPM) {
                cas_anchor_tpm_close(a);
        }
}
