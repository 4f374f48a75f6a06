/* A write-absorbing overlay over another shield storage (storage_overlay.h): what a
 * read-only volume open replays the journal into, so that it reads the committed state
 * after a machine crash without writing a byte to the backing directory.
 *
 * Each file the overlay has changed is a struct ov_file: its view size, the "floor" below
 * which the wrapped file's bytes show through, and a sorted array of disjoint stored byte
 * ranges. Files never changed through the overlay have no ov_file: their calls pass
 * straight to the wrapped storage, so reading a volume through an overlay that holds
 * nothing costs a name lookup per open. */
#include "shield/storage_overlay.h"

#include <stdlib.h>
#include <string.h>

#include "base/cursor.h"
#include "base/mem.h"

/* Largest view size and write end: what a POSIX off_t can address. */
#define OV_SIZE_MAX ((uint64_t)INT64_MAX)
/* Bytes compared per step when checking whether a write changes the view. */
#define OV_CMP_STEP 4096u

struct ov_range {
        uint64_t off;
        size_t len; /* > 0; data holds exactly len bytes */
        uint8_t *data;
};

struct ov_file {
        char name[SHIELD_STORAGE_NAME_MAX + 1];
        bool has_under; /* the wrapped storage has this name */
        uint64_t size;  /* the view's size */
        /* Bytes of the wrapped file show through below floor (outside ranges); from floor
         * to size, outside ranges, the view reads zeros. Invariant: floor <= size, and no
         * range reaches past size. */
        uint64_t floor;
        struct ov_range *r; /* sorted by off, disjoint and not adjacent */
        size_t n, cap;
};

/* A replay entry of one byte costs 1 + a range in the overlay and SH_JP_ENTRY_HEAD + 1 in
 * the journal; the item cost covers the structures and a malloc header (16 bytes). */
_Static_assert(1u + SH_OVERLAY_ITEM_COST <= 5u * (SH_JP_ENTRY_HEAD + 1u),
               "SH_OVERLAY_MAX covers a journal of one-byte entries");
_Static_assert(sizeof(struct ov_file) + 16u <= SH_OVERLAY_ITEM_COST &&
                   sizeof(struct ov_range) + 16u <= SH_OVERLAY_ITEM_COST,
               "the item cost covers the bookkeeping");

struct sh_overlay {
        const struct shield_storage_ops *ops;
        void *st;
        struct ov_file **f; /* sorted by name */
        size_t n, cap;
        size_t used, max;
};

/* A handle: the wrapped file's handle (NULL for a file made in the overlay) and the name,
 * to find the ov_file another handle may have made since this one was opened. */
struct ov_handle {
        void *uh;
        char name[SHIELD_STORAGE_NAME_MAX + 1];
};

static size_t min_size(size_t a, size_t b)
{
        return a < b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

/* Index of name in o->f, or where it would go (*found false). */
static size_t file_pos(const struct sh_overlay *o, const char *name, bool *found)
{
        size_t lo = 0, hi = o->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(o->f[mid]->name, name);

                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0) {
                        lo = mid + 1;
                } else {
                        hi = mid;
                }
        }
        *found = false;
        return lo;
}

static struct ov_file *file_find(const struct sh_overlay *o, const char *name)
{
        bool found = false;
        size_t i = file_pos(o, name, &found);

        return found ? o->f[i] : NULL;
}

/* Charges n more bytes to the budget. CF_E_LIMIT. */
static CF_FN charge(struct sh_overlay *o, size_t n)
{
        ENSURE(n <= o->max - o->used, CF_E_LIMIT);
        o->used += n;
        return CF_OK;
}

static void refund(struct sh_overlay *o, size_t n)
{
        cf_assert(n <= o->used);
        o->used -= n;
}

/* Starts tracking a file: the view is the wrapped file as it is (size `size`), or, with
 * has_under false, a new empty file. */
static CF_FN file_add(struct sh_overlay *o, const char *name, bool has_under, uint64_t size,
                      struct ov_file **ret)
{
        struct ov_file *f;
        bool found = false;
        size_t pos = file_pos(o, name, &found);

        cf_assert(!found);
        if (o->n == o->cap) {
                size_t cap = o->cap ? 2 * o->cap : 16;
                struct ov_file **p = reallocarray(o->f, cap, sizeof(*p));

                ENSURE(p != NULL, CF_E_NOMEM);
                o->f = p;
                o->cap = cap;
        }
        TRY(charge(o, SH_OVERLAY_ITEM_COST));
        f = calloc(1, sizeof(*f));
        if (f == NULL) {
                refund(o, SH_OVERLAY_ITEM_COST);
                return cf_fail(CF_E_NOMEM);
        }
        memcpy(f->name, name, strlen(name) + 1);
        f->has_under = has_under;
        f->size = size;
        f->floor = size;
        memmove(&o->f[pos + 1], &o->f[pos], (o->n - pos) * sizeof(*o->f));
        o->f[pos] = f;
        o->n++;
        *ret = f;
        return CF_OK;
}

/* The tracked file of h, made on first use (the view as the wrapped file is now). */
static CF_FN file_of(struct sh_overlay *o, struct ov_handle *h, struct ov_file **ret)
{
        struct ov_file *f = file_find(o, h->name);
        uint64_t size = 0;

        if (f == NULL) {
                cf_assert(h->uh != NULL); /* a file made in the overlay is always tracked */
                TRY(o->ops->size(o->st, h->uh, &size));
                TRY(file_add(o, h->name, true, size, &f));
        }
        *ret = f;
        return CF_OK;
}

/* Index of the first range that ends after pos. */
static size_t range_after(const struct ov_file *f, uint64_t pos)
{
        size_t lo = 0, hi = f->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (f->r[mid].off + f->r[mid].len <= pos) {
                        lo = mid + 1;
                } else {
                        hi = mid;
                }
        }
        return lo;
}

/* Reads [pos, pos + n) of the wrapped file into buf; bytes past its end (it cannot shrink
 * while the overlay is in use, but is not ours to trust) read as zeros, as past a sparse
 * end. */
static CF_FN read_under(struct sh_overlay *o, struct ov_handle *h, uint8_t *buf, size_t n,
                        uint64_t pos)
{
        size_t got = 0;

        cf_assert(h->uh != NULL);
        TRY(o->ops->pread(o->st, h->uh, buf, n, pos, &got));
        ENSURE(got <= n, CF_E_INTERNAL);
        memset(buf + got, 0, n - got);
        return CF_OK;
}

/* Reads the view of a tracked file: [off, off + size) clipped to its size. */
static CF_FN view_read(struct sh_overlay *o, struct ov_handle *h, const struct ov_file *f,
                       uint8_t *buf, size_t size, uint64_t off, size_t *ret_n)
{
        size_t n, i;
        uint64_t pos, end;

        if (off >= f->size) {
                *ret_n = 0;
                return CF_OK;
        }
        n = (size_t)min_u64(size, f->size - off);
        pos = off;
        end = off + n;
        i = range_after(f, pos);
        while (pos < end) {
                const struct ov_range *r = i < f->n ? &f->r[i] : NULL;
                uint64_t next, under_end;

                if (r != NULL && r->off <= pos) {
                        size_t take = (size_t)(min_u64(end, r->off + r->len) - pos);

                        memcpy(buf + (pos - off), r->data + (pos - r->off), take);
                        pos += take;
                        i++;
                        continue;
                }
                next = r != NULL ? min_u64(end, r->off) : end;
                under_end = min_u64(next, f->floor);
                if (pos < under_end) {
                        TRY(read_under(o, h, buf + (pos - off), (size_t)(under_end - pos), pos));
                        pos = under_end;
                }
                if (pos < next) {
                        memset(buf + (pos - off), 0, (size_t)(next - pos));
                        pos = next;
                }
        }
        *ret_n = n;
        return CF_OK;
}

/* True when the view holds exactly buf at [off, off + size) (the write would change
 * nothing); f may be NULL (an untracked file reads as the wrapped one). */
static CF_FN view_same(struct sh_overlay *o, struct ov_handle *h, const struct ov_file *f,
                       const uint8_t *buf, size_t size, uint64_t off, bool *ret)
{
        uint8_t cur[OV_CMP_STEP];
        size_t done = 0;
        bool same = true;

        while (same && done < size) {
                size_t step = min_size(size - done, sizeof(cur)), got = 0;

                if (f != NULL) {
                        TRY(view_read(o, h, f, cur, step, off + done, &got));
                } else {
                        TRY(o->ops->pread(o->st, h->uh, cur, step, off + done, &got));
                }
                /* Ciphertext and authenticated metadata, never secrets: memcmp is fine. */
                same = got == step && memcmp(cur, buf + done, step) == 0;
                done += step;
        }
        *ret = same;
        return CF_OK;
}

/* Stores buf at [off, end) in f, merging every range it overlaps or touches into one. */
static CF_FN store(struct sh_overlay *o, struct ov_file *f, const uint8_t *buf, size_t size,
                   uint64_t off, uint64_t end)
{
        size_t i = range_after(f, off == 0 ? 0 : off - 1), k = i, old = 0, len;
        uint64_t start = off, stop = end;
        uint8_t *data;

        /* Ranges [i, k) overlap or touch [off, end). */
        while (k < f->n && f->r[k].off <= end) {
                start = min_u64(start, f->r[k].off);
                stop = f->r[k].off + f->r[k].len > stop ? f->r[k].off + f->r[k].len : stop;
                old += f->r[k].len + SH_OVERLAY_ITEM_COST;
                k++;
        }
        ENSURE(stop - start <= SIZE_MAX - SH_OVERLAY_ITEM_COST, CF_E_LIMIT);
        len = (size_t)(stop - start);
        if (k == i + 1 && f->r[i].off <= off && f->r[i].off + f->r[i].len >= end) {
                /* Inside one range: in place. */
                memcpy(f->r[i].data + (off - f->r[i].off), buf, size);
                return CF_OK;
        }
        /* The budget with the merged ranges given back and the new one taken. */
        ENSURE(len + SH_OVERLAY_ITEM_COST <= o->max - (o->used - old), CF_E_LIMIT);
        if (k == i && f->n == f->cap) {
                size_t cap = f->cap ? 2 * f->cap : 8;
                struct ov_range *p = reallocarray(f->r, cap, sizeof(*p));

                ENSURE(p != NULL, CF_E_NOMEM);
                f->r = p;
                f->cap = cap;
        }
        data = malloc(len);
        ENSURE(data != NULL, CF_E_NOMEM);
        for (size_t x = i; x < k; x++) {
                memcpy(data + (f->r[x].off - start), f->r[x].data, f->r[x].len);
                free(f->r[x].data);
        }
        memcpy(data + (off - start), buf, size);
        o->used = o->used - old + len + SH_OVERLAY_ITEM_COST;
        if (k == i) {
                memmove(&f->r[i + 1], &f->r[i], (f->n - i) * sizeof(*f->r));
                f->n++;
        } else {
                memmove(&f->r[i + 1], &f->r[k], (f->n - k) * sizeof(*f->r));
                f->n -= k - i - 1;
        }
        f->r[i] = (struct ov_range){.off = start, .len = len, .data = data};
        return CF_OK;
}

/* Sets a tracked file's view size: bytes past it are dropped (and the wrapped file's stay
 * hidden even if the view grows again); growing adds zeros. Never fails. */
static void view_truncate(struct sh_overlay *o, struct ov_file *f, uint64_t size)
{
        if (size < f->size) {
                size_t i = range_after(f, size);

                if (i < f->n && f->r[i].off < size) {
                        /* The range across the new end keeps its first bytes. */
                        size_t keep = (size_t)(size - f->r[i].off);
                        uint8_t *p = realloc(f->r[i].data, keep);

                        if (p != NULL) {
                                f->r[i].data = p; /* else the longer buffer is kept */
                        }
                        refund(o, f->r[i].len - keep);
                        f->r[i].len = keep;
                        i++;
                }
                for (size_t x = i; x < f->n; x++) {
                        refund(o, f->r[x].len + SH_OVERLAY_ITEM_COST);
                        free(f->r[x].data);
                }
                f->n = i;
                f->floor = min_u64(f->floor, size);
        }
        f->size = size;
}

/* ---- the ops table ----------------------------------------------------------------- */

static CF_FN check_name(const char *name)
{
        size_t len;

        ENSURE(name != NULL, CF_E_INVALID_ARG);
        len = strnlen(name, SHIELD_STORAGE_NAME_MAX + 1);
        ENSURE(len >= 1 && len <= SHIELD_STORAGE_NAME_MAX, CF_E_INVALID_ARG);
        return CF_OK;
}

static cf_status ov_truncate(void *st, void *hv, uint64_t size);

/* Opens name in the view; the wrapped storage is only ever opened with flags 0. */
static CF_FN open_view(struct sh_overlay *o, struct ov_handle *h, unsigned flags)
{
        struct ov_file *f = file_find(o, h->name);
        bool excl = (flags & SHIELD_ST_CREATE) && (flags & SHIELD_ST_EXCL);
        cf_status s;

        if (f != NULL) {
                ENSURE(!excl, CF_E_EXISTS);
                if (f->has_under) {
                        TRY(o->ops->open(o->st, h->name, 0, &h->uh));
                }
        } else {
                s = o->ops->open(o->st, h->name, 0, &h->uh);
                if (s.code == CF_E_NOT_FOUND && (flags & SHIELD_ST_CREATE)) {
                        return file_add(o, h->name, false, 0, &f);
                }
                TRY(s);
                ENSURE(!excl, CF_E_EXISTS);
        }
        if (flags & SHIELD_ST_TRUNC) {
                TRY(ov_truncate(o, h, 0));
        }
        return CF_OK;
}

static cf_status ov_open(void *st, const char *name, unsigned flags, void **ret)
{
        struct sh_overlay *o = st;
        struct ov_handle *h;
        cf_status s;

        TRY(check_name(name));
        ENSURE((flags & ~(SHIELD_ST_CREATE | SHIELD_ST_EXCL | SHIELD_ST_TRUNC)) == 0,
               CF_E_INVALID_ARG);
        h = calloc(1, sizeof(*h));
        ENSURE(h != NULL, CF_E_NOMEM);
        memcpy(h->name, name, strlen(name) + 1);
        s = open_view(o, h, flags);
        if (!cf_ok(s)) {
                if (h->uh != NULL) {
                        o->ops->close(o->st, h->uh);
                }
                free(h);
                return s;
        }
        *ret = h;
        return CF_OK;
}

static void ov_close(void *st, void *hv)
{
        struct sh_overlay *o = st;
        struct ov_handle *h = hv;

        if (h == NULL) {
                return;
        }
        if (h->uh != NULL) {
                o->ops->close(o->st, h->uh);
        }
        free(h);
}

static cf_status ov_pread(void *st, void *hv, void *buf, size_t size, uint64_t off, size_t *ret_n)
{
        struct sh_overlay *o = st;
        struct ov_handle *h = hv;
        const struct ov_file *f = file_find(o, h->name);

        if (f == NULL) {
                return o->ops->pread(o->st, h->uh, buf, size, off, ret_n);
        }
        return view_read(o, h, f, buf, size, off, ret_n);
}

static cf_status ov_pwrite(void *st, void *hv, const void *buf, size_t size, uint64_t off)
{
        struct sh_overlay *o = st;
        struct ov_handle *h = hv;
        struct ov_file *f = file_find(o, h->name);
        uint64_t end, cur = 0;
        bool same = false;

        ENSURE(!cf_add_overflow(off, (uint64_t)size, &end) && end <= OV_SIZE_MAX, CF_E_LIMIT);
        if (f != NULL) {
                cur = f->size;
        } else {
                TRY(o->ops->size(o->st, h->uh, &cur));
        }
        if (end <= cur) {
                /* The common case after a process crash, or for a live writer's relatives:
                 * the wrapped file holds the bytes already, and nothing is stored. */
                TRY(view_same(o, h, f, buf, size, off, &same));
                if (same) {
                        return CF_OK;
                }
        }
        TRY(file_of(o, h, &f));
        if (size > 0) {
                TRY(store(o, f, buf, size, off, end));
        }
        if (end > f->size) {
                f->size = end; /* the gap from the old size reads as zeros (above floor) */
        }
        return CF_OK;
}

static cf_status ov_size(void *st, void *hv, uint64_t *ret)
{
        struct sh_overlay *o = st;
        struct ov_handle *h = hv;
        const struct ov_file *f = file_find(o, h->name);

        if (f == NULL) {
                return o->ops->size(o->st, h->uh, ret);
        }
        *ret = f->size;
        return CF_OK;
}

static cf_status ov_truncate(void *st, void *hv, uint64_t size)
{
        struct sh_overlay *o = st;
        struct ov_handle *h = hv;
        struct ov_file *f = file_find(o, h->name);
        uint64_t cur = 0;

        ENSURE(size <= OV_SIZE_MAX, CF_E_LIMIT);
        if (f == NULL) {
                TRY(o->ops->size(o->st, h->uh, &cur));
                if (cur == size) {
                        return CF_OK;
                }
        }
        TRY(file_of(o, h, &f));
        view_truncate(o, f, size);
        return CF_OK;
}

/* Nothing to make durable: the wrapped storage does not change, the overlay never can. */
static cf_status ov_fsync(void *st, void *hv)
{
        (void)st;
        (void)hv;
        return CF_OK;
}

static cf_status ov_sync_dir(void *st)
{
        (void)st;
        return CF_OK;
}

/* A read-only view may not rename or remove the wrapped directory's names. */
static cf_status ov_rename(void *st, const char *from, const char *to)
{
        (void)st;
        (void)from;
        (void)to;
        return cf_fail(CF_E_PERMISSION);
}

static cf_status ov_unlink(void *st, const char *name)
{
        (void)st;
        (void)name;
        return cf_fail(CF_E_PERMISSION);
}

static cf_status ov_list(void *st, shield_name_fn fn, void *ctx)
{
        struct sh_overlay *o = st;

        TRY(o->ops->list(o->st, fn, ctx));
        for (size_t i = 0; i < o->n; i++) {
                if (!o->f[i]->has_under) {
                        TRY(fn(ctx, o->f[i]->name));
                }
        }
        return CF_OK;
}

const struct shield_storage_ops sh_overlay_ops = {
    .open = ov_open,
    .close = ov_close,
    .pread = ov_pread,
    .pwrite = ov_pwrite,
    .size = ov_size,
    .truncate = ov_truncate,
    .fsync = ov_fsync,
    .rename = ov_rename,
    .unlink = ov_unlink,
    .sync_dir = ov_sync_dir,
    .list = ov_list,
};

CF_FN sh_overlay_new(const struct shield_storage_ops *ops, void *st, size_t max_bytes,
                     struct sh_overlay **ret)
{
        struct sh_overlay *o;

        ENSURE(ops != NULL && ret != NULL, CF_E_INVALID_ARG);
        ENSURE(max_bytes >= 1 && max_bytes <= SH_OVERLAY_MAX, CF_E_INVALID_ARG);
        o = calloc(1, sizeof(*o));
        ENSURE(o != NULL, CF_E_NOMEM);
        o->ops = ops;
        o->st = st;
        o->max = max_bytes;
        *ret = o;
        return CF_OK;
}

void sh_overlay_free(struct sh_overlay *o)
{
        if (o == NULL) {
                return;
        }
        for (size_t i = 0; i < o->n; i++) {
                for (size_t x = 0; x < o->f[i]->n; x++) {
                        free(o->f[i]->r[x].data);
                }
                free(o->f[i]->r);
                free(o->f[i]);
        }
        free(o->f);
        free(o);
}

size_t sh_overlay_used(const struct sh_overlay *o)
{
        return o->used;
}
