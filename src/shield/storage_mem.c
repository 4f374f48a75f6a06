/* In-memory storage for tests and fuzzers: a flat table of named byte arrays with the
 * same semantics as the POSIX storage, plus snapshot (clone), direct access for tamper
 * tests (peek, put) and fault injection (fail_after). */
#include <stdlib.h>
#include <string.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "shield/shield.h"

#define MEM_FILE_MAX ((size_t)1 << 32) /* bytes per in-memory file */

struct mem_file {
        char name[SHIELD_STORAGE_NAME_MAX + 1];
        uint8_t *data;
        size_t size, cap;
        unsigned refs; /* the table's reference + open handles */
        uint8_t *dur;  /* the content as of the last fsync (what a machine crash keeps) */
        size_t dsize;
        bool named; /* the directory entry is durable (a sync_dir since creation) */
};

struct shield_mem {
        struct mem_file **f;
        size_t n, cap;
        size_t fail_after;
};

static void file_unref(struct mem_file *f)
{
        if (f != NULL && --f->refs == 0) {
                free(f->data);
                free(f->dur);
                free(f);
        }
}

static size_t find(const struct shield_mem *m, const char *name)
{
        for (size_t i = 0; i < m->n; i++) {
                if (strcmp(m->f[i]->name, name) == 0) {
                        return i;
                }
        }
        return SIZE_MAX;
}

/* Every mutating call passes here: the fault injector's "machine stopped" point. */
static CF_FN mutation(struct shield_mem *m)
{
        ENSURE(m->fail_after != 0, CF_E_IO);
        if (m->fail_after != SIZE_MAX) {
                m->fail_after--;
        }
        return CF_OK;
}

static CF_FN reserve(struct mem_file *f, size_t size)
{
        size_t cap;
        uint8_t *p;

        if (size <= f->cap) {
                return CF_OK;
        }
        ENSURE(size <= MEM_FILE_MAX, CF_E_LIMIT);
        cap = f->cap ? f->cap : 4096;
        while (cap < size) {
                cap *= 2;
        }
        p = realloc(f->data, cap);
        ENSURE(p != NULL, CF_E_NOMEM);
        f->data = p;
        f->cap = cap;
        return CF_OK;
}

static CF_FN add_file(struct shield_mem *m, const char *name, struct mem_file **ret)
{
        struct mem_file *f;

        ENSURE(strlen(name) <= SHIELD_STORAGE_NAME_MAX && name[0] != 0, CF_E_INVALID_ARG);
        if (m->n == m->cap) {
                size_t cap = m->cap ? 2 * m->cap : 16;
                struct mem_file **p = reallocarray(m->f, cap, sizeof(*p));

                ENSURE(p != NULL, CF_E_NOMEM);
                m->f = p;
                m->cap = cap;
        }
        f = calloc(1, sizeof(*f));
        ENSURE(f != NULL, CF_E_NOMEM);
        memcpy(f->name, name, strlen(name) + 1);
        f->refs = 1;
        m->f[m->n++] = f;
        *ret = f;
        return CF_OK;
}

static void remove_at(struct shield_mem *m, size_t i)
{
        file_unref(m->f[i]);
        m->f[i] = m->f[--m->n];
}

static cf_status m_open(void *st, const char *name, unsigned flags, void **ret)
{
        struct shield_mem *m = st;
        size_t i = find(m, name);
        struct mem_file *f;

        if (i == SIZE_MAX) {
                ENSURE(flags & SHIELD_ST_CREATE, CF_E_NOT_FOUND);
                TRY(mutation(m));
                TRY(add_file(m, name, &f));
        } else {
                ENSURE(!((flags & SHIELD_ST_CREATE) && (flags & SHIELD_ST_EXCL)), CF_E_EXISTS);
                f = m->f[i];
                if (flags & SHIELD_ST_TRUNC) {
                        TRY(mutation(m));
                        f->size = 0;
                }
        }
        f->refs++;
        *ret = f;
        return CF_OK;
}

static void m_close(void *st, void *h)
{
        (void)st;
        file_unref(h);
}

static cf_status m_pread(void *st, void *h, void *buf, size_t size, uint64_t off, size_t *ret_n)
{
        struct mem_file *f = h;
        size_t n = 0;

        (void)st;
        if (off < f->size) {
                n = f->size - (size_t)off < size ? f->size - (size_t)off : size;
                memcpy(buf, f->data + off, n);
        }
        *ret_n = n;
        return CF_OK;
}

static cf_status m_pwrite(void *st, void *h, const void *buf, size_t size, uint64_t off)
{
        struct mem_file *f = h;
        uint64_t end;

        TRY(mutation(st));
        ENSURE(!cf_add_overflow(off, (uint64_t)size, &end) && end <= MEM_FILE_MAX, CF_E_LIMIT);
        TRY(reserve(f, (size_t)end));
        if (off > f->size) {
                memset(f->data + f->size, 0, (size_t)off - f->size);
        }
        memcpy(f->data + off, buf, size);
        if (end > f->size) {
                f->size = (size_t)end;
        }
        return CF_OK;
}

static cf_status m_size(void *st, void *h, uint64_t *ret)
{
        (void)st;
        *ret = ((struct mem_file *)h)->size;
        return CF_OK;
}

static cf_status m_truncate(void *st, void *h, uint64_t size)
{
        struct mem_file *f = h;

        TRY(mutation(st));
        ENSURE(size <= MEM_FILE_MAX, CF_E_LIMIT);
        TRY(reserve(f, (size_t)size));
        if (size > f->size) {
                memset(f->data + f->size, 0, (size_t)size - f->size);
        }
        f->size = (size_t)size;
        return CF_OK;
}

/* Copies a file's content into its durable copy. */
static CF_FN make_durable(struct mem_file *f)
{
        uint8_t *p = NULL;

        if (f->size > 0) {
                p = malloc(f->size);
                ENSURE(p != NULL, CF_E_NOMEM);
                memcpy(p, f->data, f->size);
        }
        free(f->dur);
        f->dur = p;
        f->dsize = f->size;
        return CF_OK;
}

static cf_status m_fsync(void *st, void *h)
{
        TRY(mutation(st));
        return make_durable(h);
}

static cf_status m_rename(void *st, const char *from, const char *to)
{
        struct shield_mem *m = st;
        size_t i, j;

        TRY(mutation(m));
        i = find(m, from);
        ENSURE(i != SIZE_MAX, CF_E_NOT_FOUND);
        ENSURE(strlen(to) <= SHIELD_STORAGE_NAME_MAX && to[0] != 0, CF_E_INVALID_ARG);
        j = find(m, to);
        if (j != SIZE_MAX && j != i) {
                struct mem_file *f = m->f[i];

                remove_at(m, j);
                i = find(m, from);
                cf_assert(m->f[i] == f);
        }
        memcpy(m->f[i]->name, to, strlen(to) + 1);
        return CF_OK;
}

static cf_status m_unlink(void *st, const char *name)
{
        struct shield_mem *m = st;
        size_t i;

        TRY(mutation(m));
        i = find(m, name);
        ENSURE(i != SIZE_MAX, CF_E_NOT_FOUND);
        remove_at(m, i);
        return CF_OK;
}

static cf_status m_sync_dir(void *st)
{
        struct shield_mem *m = st;

        TRY(mutation(m));
        for (size_t i = 0; i < m->n; i++) {
                m->f[i]->named = true;
        }
        return CF_OK;
}

static cf_status m_list(void *st, shield_name_fn fn, void *ctx)
{
        struct shield_mem *m = st;

        for (size_t i = 0; i < m->n; i++) {
                TRY(fn(ctx, m->f[i]->name));
        }
        return CF_OK;
}

const struct shield_storage_ops shield_mem_ops = {
    .open = m_open,
    .close = m_close,
    .pread = m_pread,
    .pwrite = m_pwrite,
    .size = m_size,
    .truncate = m_truncate,
    .fsync = m_fsync,
    .rename = m_rename,
    .unlink = m_unlink,
    .sync_dir = m_sync_dir,
    .list = m_list,
};

CF_FN shield_mem_new(struct shield_mem **ret)
{
        struct shield_mem *m = calloc(1, sizeof(*m));

        ENSURE(m != NULL, CF_E_NOMEM);
        m->fail_after = SIZE_MAX;
        *ret = m;
        return CF_OK;
}

void shield_mem_free(struct shield_mem *st)
{
        if (st == NULL) {
                return;
        }
        for (size_t i = 0; i < st->n; i++) {
                file_unref(st->f[i]);
        }
        free(st->f);
        free(st);
}

CF_FN shield_mem_put(struct shield_mem *st, const char *name, const void *data, size_t size)
{
        size_t i = find(st, name);
        struct mem_file *f;

        if (i == SIZE_MAX) {
                TRY(add_file(st, name, &f));
        } else {
                f = st->f[i];
        }
        TRY(reserve(f, size));
        if (size > 0) {
                memcpy(f->data, data, size);
        }
        f->size = size;
        f->named = true;
        return make_durable(f);
}

CF_FN shield_mem_crash_clone(const struct shield_mem *src, struct shield_mem **ret)
{
        struct shield_mem *m;
        cf_status s = CF_OK;

        TRY(shield_mem_new(&m));
        for (size_t i = 0; i < src->n && cf_ok(s); i++) {
                if (src->f[i]->named) {
                        s = shield_mem_put(m, src->f[i]->name, src->f[i]->dur, src->f[i]->dsize);
                }
        }
        if (!cf_ok(s)) {
                shield_mem_free(m);
                return s;
        }
        *ret = m;
        return CF_OK;
}

CF_FN shield_mem_clone(const struct shield_mem *src, struct shield_mem **ret)
{
        struct shield_mem *m;
        cf_status s = CF_OK;

        TRY(shield_mem_new(&m));
        for (size_t i = 0; i < src->n && cf_ok(s); i++) {
                s = shield_mem_put(m, src->f[i]->name, src->f[i]->data, src->f[i]->size);
        }
        if (!cf_ok(s)) {
                shield_mem_free(m);
                return s;
        }
        *ret = m;
        return CF_OK;
}

CF_FN shield_mem_peek(struct shield_mem *st, const char *name, uint8_t **ret_ptr, size_t *ret_size)
{
        size_t i = find(st, name);

        ENSURE(i != SIZE_MAX, CF_E_NOT_FOUND);
        *ret_ptr = st->f[i]->data;
        *ret_size = st->f[i]->size;
        return CF_OK;
}

void shield_mem_fail_after(struct shield_mem *st, size_t n)
{
        st->fail_after = n;
}

size_t shield_mem_count(const struct shield_mem *st)
{
        return st->n;
}

const char *shield_mem_name(const struct shield_mem *st, size_t i)
{
        return i < st->n ? st->f[i]->name : NULL;
}
