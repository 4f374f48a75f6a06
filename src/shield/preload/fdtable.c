/* The shim's table of shielded descriptors, open file descriptions, path helpers and the
 * status-to-errno mapping. Pure bookkeeping: no libc file calls, so it is unit tested on
 * its own (tests/unit/shield/test_fdtable.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "shield/preload/preload_internal.h"

cf_status pre_ofd_new(struct pre_vol *vol, const char *path, int flags, bool dir,
                      struct pre_ofd **ret)
{
        CF_AUTOFREE struct pre_ofd *o = calloc(1, sizeof(*o));
        ENSURE(o != NULL, CF_E_NOMEM);
        o->path = strdup(path);
        ENSURE(o->path != NULL, CF_E_NOMEM);
        o->refs = 1;
        o->vol = vol;
        o->flags = flags;
        o->dir = dir;
        *ret = TAKE_PTR(o);
        return CF_OK;
}

bool pre_ofd_unref(struct pre_ofd *o)
{
        cf_assert(o->refs > 0);
        o->refs--;
        return o->refs == 0;
}

void pre_ofd_free(struct pre_ofd *o)
{
        if (o == NULL) {
                return;
        }
        free(o->path);
        free(o);
}

void pre_fdtable_init(struct pre_fdtable *t)
{
        *t = (struct pre_fdtable){0};
}

void pre_fdtable_done(struct pre_fdtable *t)
{
        free(t->slot);
        *t = (struct pre_fdtable){0};
}

/* Grows the slot array to cover fd, doubling (at least 64 slots), capped at PRE_FD_MAX. */
static CF_FN grow(struct pre_fdtable *t, int fd)
{
        size_t need = (size_t)fd + 1;
        if (need <= t->n_slot) {
                return CF_OK;
        }
        size_t n = t->n_slot < 64 ? 64 : t->n_slot;
        while (n < need) {
                n *= 2;
        }
        if (n > PRE_FD_MAX) {
                n = PRE_FD_MAX;
        }
        struct pre_ofd **s = realloc(t->slot, n * sizeof(*s));
        ENSURE(s != NULL, CF_E_NOMEM);
        memset(s + t->n_slot, 0, (n - t->n_slot) * sizeof(*s));
        t->slot = s;
        t->n_slot = n;
        return CF_OK;
}

cf_status pre_fdtable_set(struct pre_fdtable *t, int fd, struct pre_ofd *o)
{
        ENSURE(fd >= 0 && fd < PRE_FD_MAX && o != NULL, CF_E_INVALID_ARG);
        TRY(grow(t, fd));
        ENSURE(t->slot[fd] == NULL, CF_E_EXISTS);
        t->slot[fd] = o;
        o->refs++;
        t->n_used++;
        return CF_OK;
}

struct pre_ofd *pre_fdtable_get(const struct pre_fdtable *t, int fd)
{
        if (fd < 0 || (size_t)fd >= t->n_slot) {
                return NULL;
        }
        return t->slot[fd];
}

struct pre_ofd *pre_fdtable_take(struct pre_fdtable *t, int fd)
{
        if (fd < 0 || (size_t)fd >= t->n_slot || t->slot[fd] == NULL) {
                return NULL;
        }
        t->n_used--;
        return TAKE_PTR(t->slot[fd]);
}

size_t pre_fdtable_count(const struct pre_fdtable *t)
{
        return t->n_used;
}

/* Appends one component to out (at *len), or for ".." removes the last one. */
static CF_FN push_component(const char *c, size_t n, char *out, size_t out_size, size_t *len)
{
        if (n == 0 || (n == 1 && c[0] == '.')) {
                return CF_OK;
        }
        if (n == 2 && c[0] == '.' && c[1] == '.') {
                while (*len > 0 && out[*len - 1] != '/') {
                        (*len)--;
                }
                if (*len > 0) {
                        (*len)--; /* the '/' before the removed component */
                }
                return CF_OK;
        }
        ENSURE(*len + 1 + n < out_size, CF_E_LIMIT);
        out[(*len)++] = '/';
        memcpy(out + *len, c, n);
        *len += n;
        return CF_OK;
}

cf_status pre_path_normalize(const char *path, char *out, size_t out_size)
{
        ENSURE(path != NULL && path[0] == '/' && out_size >= 2, CF_E_INVALID_ARG);
        size_t len = 0;
        const char *p = path;
        while (*p != '\0') {
                while (*p == '/') {
                        p++;
                }
                const char *c = p;
                while (*p != '\0' && *p != '/') {
                        p++;
                }
                TRY(push_component(c, (size_t)(p - c), out, out_size, &len));
        }
        if (len == 0) {
                out[len++] = '/';
        }
        out[len] = '\0';
        return CF_OK;
}

bool pre_path_under(const char *path, const char *mount, size_t mount_len, const char **ret_rest)
{
        if (strncmp(path, mount, mount_len) != 0) {
                return false;
        }
        if (path[mount_len] == '\0') {
                *ret_rest = path + mount_len;
                return true;
        }
        if (path[mount_len] != '/') {
                return false;
        }
        *ret_rest = path + mount_len + 1;
        return true;
}

int pre_errno(cf_status s)
{
        switch ((enum cf_errcode)s.code) {
        case CF_E_OK:
                return 0;
        case CF_E_NOT_FOUND:
                return ENOENT;
        case CF_E_EXISTS:
                return EEXIST;
        case CF_E_NOMEM:
                return ENOMEM;
        case CF_E_INVALID_ARG:
                return EINVAL;
        case CF_E_PERMISSION:
                return EACCES;
        case CF_E_LIMIT:
        case CF_E_OVERFLOW:
                return EFBIG;
        case CF_E_UNSUPPORTED:
                return EOPNOTSUPP;
        case CF_E_CONFLICT:
                return EBUSY; /* callers that know better map it themselves */
        default:
                /* Integrity failures, rollback and I/O errors all surface as EIO: the
                 * program sees a failing disk, never unauthenticated bytes. */
                return EIO;
        }
}
