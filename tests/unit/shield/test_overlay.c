/* Unit tests of src/shield/storage_overlay.c and of read-only volume opens that replay the
 * journal into it: reads across overlay and wrapped bytes (checked against the memory
 * storage itself as the model), merging, extension and truncation, the memory limit, the
 * refused mutations, and that nothing ever reaches the wrapped storage (compared byte for
 * byte); then the machine-crash case end to end and journal tampering, where a read-only
 * open must decide exactly as a read-write one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/mem.h"
#include "crypto/crypto.h"
#include "shield/shield.h"
#include "shield/shield_internal.h"
#include "shield/storage_overlay.h"

static uint8_t g_key[SHIELD_KEY_SIZE];

static int code(cf_status s)
{
        return s.code;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
        uint32_t x = seed * 2654435761u + 1;

        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (uint8_t)(x >> 16);
        }
}

static uint32_t g_rng = 12345;

static uint32_t rnd(uint32_t n)
{
        g_rng = g_rng * 1103515245u + 12345u;
        return (g_rng >> 8) % n;
}

/* a and b hold the same names with the same bytes. */
static void assert_same_storage(struct shield_mem *a, struct shield_mem *b)
{
        assert_int_equal(shield_mem_count(a), shield_mem_count(b));
        for (size_t i = 0; i < shield_mem_count(a); i++) {
                const char *name = shield_mem_name(a, i);
                uint8_t *pa, *pb;
                size_t na, nb;

                assert_int_equal(code(shield_mem_peek(a, name, &pa, &na)), 0);
                assert_int_equal(code(shield_mem_peek(b, name, &pb, &nb)), 0);
                assert_int_equal(na, nb);
                if (na > 0) {
                        assert_memory_equal(pa, pb, na);
                }
        }
}

/* ---- the overlay on its own --------------------------------------------------------- */

struct ovt {
        struct shield_mem *m;    /* wrapped */
        struct shield_mem *snap; /* m as it was: must stay equal */
        struct shield_mem *ref;  /* the model: the same calls applied to a real storage */
        struct sh_overlay *o;
};

static void ovt_setup(struct ovt *t, size_t max)
{
        uint8_t data[10000];

        memset(t, 0, sizeof(*t));
        assert_int_equal(code(shield_mem_new(&t->m)), 0);
        fill(data, sizeof(data), 1);
        assert_int_equal(code(shield_mem_put(t->m, "f", data, sizeof(data))), 0);
        fill(data, sizeof(data), 2);
        assert_int_equal(code(shield_mem_put(t->m, "g", data, 3000)), 0);
        assert_int_equal(code(shield_mem_put(t->m, "empty", NULL, 0)), 0);
        assert_int_equal(code(shield_mem_clone(t->m, &t->snap)), 0);
        assert_int_equal(code(shield_mem_clone(t->m, &t->ref)), 0);
        assert_int_equal(code(sh_overlay_new(&shield_mem_ops, t->m, max, &t->o)), 0);
}

static void ovt_done(struct ovt *t)
{
        assert_same_storage(t->m, t->snap);
        sh_overlay_free(t->o);
        shield_mem_free(t->m);
        shield_mem_free(t->snap);
        shield_mem_free(t->ref);
}

/* The overlay's view of name equals the model's, whole and in random windows. */
static void assert_view(struct ovt *t, const char *name)
{
        void *h, *r;
        uint64_t sh = 0, sr = 0;
        uint8_t *a, *b;
        size_t na = 0, nb = 0;

        assert_int_equal(code(sh_overlay_ops.open(t->o, name, 0, &h)), 0);
        assert_int_equal(code(shield_mem_ops.open(t->ref, name, 0, &r)), 0);
        assert_int_equal(code(sh_overlay_ops.size(t->o, h, &sh)), 0);
        assert_int_equal(code(shield_mem_ops.size(t->ref, r, &sr)), 0);
        assert_int_equal(sh, sr);
        a = malloc((size_t)sr + 100);
        b = malloc((size_t)sr + 100);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(code(sh_overlay_ops.pread(t->o, h, a, (size_t)sr + 100, 0, &na)), 0);
        assert_int_equal(code(shield_mem_ops.pread(t->ref, r, b, (size_t)sr + 100, 0, &nb)), 0);
        assert_int_equal(na, sr);
        assert_int_equal(nb, sr);
        assert_memory_equal(a, b, na);
        for (int k = 0; k < 40; k++) {
                uint64_t off = rnd((uint32_t)sr + 50);
                size_t len = rnd(3000) + 1;

                assert_int_equal(code(sh_overlay_ops.pread(t->o, h, a, len, off, &na)), 0);
                assert_int_equal(code(shield_mem_ops.pread(t->ref, r, b, len, off, &nb)), 0);
                assert_int_equal(na, nb);
                if (na > 0) {
                        assert_memory_equal(a, b, na);
                }
        }
        free(a);
        free(b);
        sh_overlay_ops.close(t->o, h);
        shield_mem_ops.close(t->ref, r);
}

static void both_pwrite(struct ovt *t, const char *name, const uint8_t *p, size_t n, uint64_t off)
{
        void *h, *r;

        assert_int_equal(code(sh_overlay_ops.open(t->o, name, 0, &h)), 0);
        assert_int_equal(code(shield_mem_ops.open(t->ref, name, 0, &r)), 0);
        assert_int_equal(code(sh_overlay_ops.pwrite(t->o, h, p, n, off)), 0);
        assert_int_equal(code(shield_mem_ops.pwrite(t->ref, r, p, n, off)), 0);
        sh_overlay_ops.close(t->o, h);
        shield_mem_ops.close(t->ref, r);
}

static void both_truncate(struct ovt *t, const char *name, uint64_t size)
{
        void *h, *r;

        assert_int_equal(code(sh_overlay_ops.open(t->o, name, 0, &h)), 0);
        assert_int_equal(code(shield_mem_ops.open(t->ref, name, 0, &r)), 0);
        assert_int_equal(code(sh_overlay_ops.truncate(t->o, h, size)), 0);
        assert_int_equal(code(shield_mem_ops.truncate(t->ref, r, size)), 0);
        sh_overlay_ops.close(t->o, h);
        shield_mem_ops.close(t->ref, r);
}

/* Reads spanning overlay and wrapped bytes, at every boundary of a few ranges. */
static void test_read_boundaries(void **state)
{
        struct ovt t;
        uint8_t w[700], got[12000], want[12000];
        void *h, *r;

        (void)state;
        ovt_setup(&t, SH_OVERLAY_MAX);
        fill(w, sizeof(w), 7);
        both_pwrite(&t, "f", w, 100, 100);
        both_pwrite(&t, "f", w + 100, 300, 4000);
        both_pwrite(&t, "f", w + 400, 1, 9999);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "f", 0, &h)), 0);
        assert_int_equal(code(shield_mem_ops.open(t.ref, "f", 0, &r)), 0);
        /* Every window starting and ending within 3 bytes of a boundary. */
        {
                const uint64_t edges[] = {0, 100, 200, 4000, 4300, 9999, 10000};

                for (size_t a = 0; a < 7; a++) {
                        for (size_t b = a; b < 7; b++) {
                                for (int da = -3; da <= 3; da++) {
                                        for (int db = -3; db <= 3; db++) {
                                                int64_t s0 = (int64_t)edges[a] + da;
                                                int64_t e0 = (int64_t)edges[b] + db;
                                                size_t ng = 0, nw = 0;

                                                if (s0 < 0 || e0 <= s0) {
                                                        continue;
                                                }
                                                assert_int_equal(code(sh_overlay_ops.pread(
                                                                     t.o, h, got, (size_t)(e0 - s0),
                                                                     (uint64_t)s0, &ng)),
                                                                 0);
                                                assert_int_equal(
                                                    code(shield_mem_ops.pread(t.ref, r, want,
                                                                              (size_t)(e0 - s0),
                                                                              (uint64_t)s0, &nw)),
                                                    0);
                                                assert_int_equal(ng, nw);
                                                if (ng > 0) {
                                                        assert_memory_equal(got, want, ng);
                                                }
                                        }
                                }
                        }
                }
        }
        sh_overlay_ops.close(t.o, h);
        shield_mem_ops.close(t.ref, r);
        /* Stored: 3 ranges and one file. */
        assert_int_equal(sh_overlay_used(t.o), 100 + 300 + 1 + 4 * SH_OVERLAY_ITEM_COST);
        ovt_done(&t);
}

/* Overlapping and touching writes merge into one range; the view is the last write's. */
static void test_overlapping_writes(void **state)
{
        struct ovt t;
        uint8_t w[5000];

        (void)state;
        ovt_setup(&t, SH_OVERLAY_MAX);
        fill(w, sizeof(w), 9);
        both_pwrite(&t, "f", w, 100, 1000);       /* [1000, 1100) */
        both_pwrite(&t, "f", w + 200, 100, 1300); /* [1300, 1400) */
        both_pwrite(&t, "f", w + 400, 100, 1050); /* overlaps the first */
        assert_view(&t, "f");
        assert_int_equal(sh_overlay_used(t.o), 150 + 100 + 3 * SH_OVERLAY_ITEM_COST);
        both_pwrite(&t, "f", w + 600, 150, 1150); /* touches both: one range */
        assert_view(&t, "f");
        assert_int_equal(sh_overlay_used(t.o), 400 + 2 * SH_OVERLAY_ITEM_COST);
        both_pwrite(&t, "f", w + 800, 50, 1200);  /* inside: in place */
        both_pwrite(&t, "f", w + 900, 10, 990);   /* before, overlapping */
        both_pwrite(&t, "f", w + 1000, 10, 1410); /* after, not touching */
        assert_view(&t, "f");
        assert_int_equal(sh_overlay_used(t.o), 410 + 10 + 3 * SH_OVERLAY_ITEM_COST);
        both_pwrite(&t, "f", w + 1100, 3000, 500); /* covers everything */
        assert_view(&t, "f");
        assert_int_equal(sh_overlay_used(t.o), 3000 + 2 * SH_OVERLAY_ITEM_COST);
        /* Random writes and truncations against the model. */
        for (int k = 0; k < 400; k++) {
                const char *name = k % 3 == 0 ? "g" : "f";
                uint32_t op = rnd(10);

                if (op < 8) {
                        size_t n = rnd(2000) + 1;

                        both_pwrite(&t, name, w + rnd(1000), n, rnd(14000));
                } else {
                        both_truncate(&t, name, rnd(16000));
                }
                if (k % 20 == 0) {
                        assert_view(&t, "f");
                        assert_view(&t, "g");
                }
        }
        assert_view(&t, "f");
        assert_view(&t, "g");
        assert_view(&t, "empty");
        ovt_done(&t);
}

/* A write of the bytes the view holds stores nothing (the process-crash case). */
static void test_identical_write(void **state)
{
        struct ovt t;
        uint8_t *p, w[10];
        size_t n;

        (void)state;
        ovt_setup(&t, SH_OVERLAY_MAX);
        assert_int_equal(code(shield_mem_peek(t.snap, "f", &p, &n)), 0);
        both_pwrite(&t, "f", p + 123, 5000, 123);
        both_pwrite(&t, "f", p, n, 0);
        both_truncate(&t, "f", n);
        assert_int_equal(sh_overlay_used(t.o), 0);
        fill(w, sizeof(w), 3);
        both_pwrite(&t, "f", w, sizeof(w), 50);
        both_pwrite(&t, "f", w, sizeof(w), 50); /* the view has them now */
        assert_int_equal(sh_overlay_used(t.o), sizeof(w) + 2 * SH_OVERLAY_ITEM_COST);
        assert_view(&t, "f");
        ovt_done(&t);
}

/* Past the wrapped size: gaps read as zeros; bytes cut by a truncation never show again. */
static void test_extension_and_truncation(void **state)
{
        struct ovt t;
        uint8_t w[100];

        (void)state;
        ovt_setup(&t, SH_OVERLAY_MAX);
        fill(w, sizeof(w), 4);
        both_pwrite(&t, "g", w, sizeof(w), 3000 + 5000); /* gap of 5000 after 3000 */
        assert_view(&t, "g");
        both_truncate(&t, "g", 20000); /* grows: zeros */
        assert_view(&t, "g");
        both_truncate(&t, "g", 1000); /* cuts wrapped and stored bytes */
        assert_view(&t, "g");
        assert_int_equal(sh_overlay_used(t.o), SH_OVERLAY_ITEM_COST);
        both_truncate(&t, "g", 6000); /* the wrapped bytes past 1000 stay hidden */
        assert_view(&t, "g");
        both_pwrite(&t, "g", w, sizeof(w), 950); /* across the cut */
        both_truncate(&t, "g", 1020);            /* cuts the range in two */
        assert_view(&t, "g");
        assert_int_equal(sh_overlay_used(t.o), 70 + 2 * SH_OVERLAY_ITEM_COST);
        both_pwrite(&t, "empty", w, sizeof(w), 10);
        assert_view(&t, "empty");
        both_truncate(&t, "f", 10000); /* its size: nothing to track */
        assert_int_equal(sh_overlay_used(t.o), 70 + sizeof(w) + 4 * SH_OVERLAY_ITEM_COST);
        ovt_done(&t);
}

/* The budget: past it, CF_E_LIMIT and nothing changes. */
static void test_limit(void **state)
{
        struct ovt t;
        struct sh_overlay *o;
        uint8_t w[600], got[600];
        void *h;
        size_t n = 0;

        (void)state;
        assert_int_equal(code(sh_overlay_new(&shield_mem_ops, NULL, 0, &o)), CF_E_INVALID_ARG);
        assert_int_equal(code(sh_overlay_new(&shield_mem_ops, NULL, SH_OVERLAY_MAX + 1, &o)),
                         CF_E_INVALID_ARG);
        ovt_setup(&t, 500 + 2 * SH_OVERLAY_ITEM_COST);
        fill(w, sizeof(w), 5);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "f", 0, &h)), 0);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w, 501, 0)), CF_E_LIMIT);
        assert_int_equal(sh_overlay_used(t.o), SH_OVERLAY_ITEM_COST); /* the file is tracked */
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w, 500, 0)), 0);
        assert_int_equal(sh_overlay_used(t.o), 500 + 2 * SH_OVERLAY_ITEM_COST);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w + 1, 1, 500)), CF_E_LIMIT);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w + 1, 1, 900)), CF_E_LIMIT);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w + 7, 100, 200)), 0); /* in place */
        memcpy(w + 200, w + 7, 100);
        assert_int_equal(code(sh_overlay_ops.pread(t.o, h, got, 600, 0, &n)), 0);
        assert_int_equal(n, 600);
        assert_memory_equal(got, w, 500);
        {
                uint8_t *p;
                size_t m;

                assert_int_equal(code(shield_mem_peek(t.snap, "f", &p, &m)), 0);
                assert_memory_equal(got + 500, p + 500, 100);
        }
        /* A new file past the budget is refused too. */
        {
                void *h2;

                assert_int_equal(code(sh_overlay_ops.open(t.o, "new", SHIELD_ST_CREATE, &h2)),
                                 CF_E_LIMIT);
                assert_int_equal(code(sh_overlay_ops.open(t.o, "g", 0, &h2)), 0);
                assert_int_equal(code(sh_overlay_ops.truncate(t.o, h2, 5)), CF_E_LIMIT);
                sh_overlay_ops.close(t.o, h2);
        }
        /* Cutting frees budget. */
        assert_int_equal(code(sh_overlay_ops.truncate(t.o, h, 100)), 0);
        assert_int_equal(sh_overlay_used(t.o), 100 + 2 * SH_OVERLAY_ITEM_COST);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w, 200, 1000)), 0);
        sh_overlay_ops.close(t.o, h);
        ovt_done(&t);
}

struct names {
        char v[8][SHIELD_STORAGE_NAME_MAX + 1];
        size_t n;
};

static cf_status name_cb(void *ctx, const char *name)
{
        struct names *ns = ctx;

        assert_true(ns->n < 8);
        memcpy(ns->v[ns->n++], name, strlen(name) + 1);
        return CF_OK;
}

static bool listed(const struct names *ns, const char *name)
{
        for (size_t i = 0; i < ns->n; i++) {
                if (strcmp(ns->v[i], name) == 0) {
                        return true;
                }
        }
        return false;
}

/* Names: creations live in the overlay; removals and renames are refused; durability calls
 * do nothing; the wrapped storage is byte for byte what it was. */
static void test_names_and_refusals(void **state)
{
        struct ovt t;
        struct names ns = {0};
        void *h, *h2;
        uint64_t size = 1;
        uint8_t w[50], got[60];
        size_t n = 0;

        (void)state;
        ovt_setup(&t, SH_OVERLAY_MAX);
        fill(w, sizeof(w), 6);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "nope", 0, &h)), CF_E_NOT_FOUND);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "", SHIELD_ST_CREATE, &h)),
                         CF_E_INVALID_ARG);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "f", 64, &h)), CF_E_INVALID_ARG);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "f", SHIELD_ST_CREATE | SHIELD_ST_EXCL, &h)),
                         CF_E_EXISTS);
        /* A new file: in memory only, listed, then EXCL refuses it too. */
        assert_int_equal(
            code(sh_overlay_ops.open(t.o, "new", SHIELD_ST_CREATE | SHIELD_ST_EXCL, &h)), 0);
        assert_int_equal(code(sh_overlay_ops.size(t.o, h, &size)), 0);
        assert_int_equal(size, 0);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h, w, sizeof(w), 10)), 0);
        assert_int_equal(code(sh_overlay_ops.fsync(t.o, h)), 0);
        sh_overlay_ops.close(t.o, h);
        assert_int_equal(code(sh_overlay_ops.sync_dir(t.o)), 0);
        assert_int_equal(
            code(sh_overlay_ops.open(t.o, "new", SHIELD_ST_CREATE | SHIELD_ST_EXCL, &h)),
            CF_E_EXISTS);
        assert_int_equal(code(sh_overlay_ops.open(t.o, "new", 0, &h)), 0);
        assert_int_equal(code(sh_overlay_ops.pread(t.o, h, got, sizeof(got), 0, &n)), 0);
        assert_int_equal(n, 60);
        assert_memory_equal(got + 10, w, sizeof(w));
        for (size_t i = 0; i < 10; i++) {
                assert_int_equal(got[i], 0);
        }
        /* Two handles see the same view. */
        assert_int_equal(code(sh_overlay_ops.open(t.o, "new", SHIELD_ST_CREATE, &h2)), 0);
        assert_int_equal(code(sh_overlay_ops.pwrite(t.o, h2, "xy", 2, 0)), 0);
        assert_int_equal(code(sh_overlay_ops.pread(t.o, h, got, 2, 0, &n)), 0);
        assert_memory_equal(got, "xy", 2);
        sh_overlay_ops.close(t.o, h2);
        sh_overlay_ops.close(t.o, h);
        assert_int_equal(code(sh_overlay_ops.list(t.o, name_cb, &ns)), 0);
        assert_int_equal(ns.n, 4);
        assert_true(listed(&ns, "f") && listed(&ns, "g") && listed(&ns, "empty") &&
                    listed(&ns, "new"));
        /* TRUNC empties the view only. */
        assert_int_equal(code(sh_overlay_ops.open(t.o, "f", SHIELD_ST_TRUNC, &h)), 0);
        assert_int_equal(code(sh_overlay_ops.size(t.o, h, &size)), 0);
        assert_int_equal(size, 0);
        assert_int_equal(code(sh_overlay_ops.pread(t.o, h, got, 10, 0, &n)), 0);
        assert_int_equal(n, 0);
        sh_overlay_ops.close(t.o, h);
        /* Refused. */
        assert_int_equal(code(sh_overlay_ops.unlink(t.o, "f")), CF_E_PERMISSION);
        assert_int_equal(code(sh_overlay_ops.unlink(t.o, "new")), CF_E_PERMISSION);
        assert_int_equal(code(sh_overlay_ops.rename(t.o, "g", "f")), CF_E_PERMISSION);
        sh_overlay_ops.close(t.o, NULL);
        /* Nothing reached the wrapped storage (checked in ovt_done), not even the name. */
        assert_int_equal(code(shield_mem_ops.open(t.m, "new", 0, &h)), CF_E_NOT_FOUND);
        ovt_done(&t);
}

/* ---- read-only volume opens ---------------------------------------------------------- */

static void put(struct shield_volume *v, const char *path, const uint8_t *data, size_t size,
                uint64_t off)
{
        struct shield_file *f;

        assert_int_equal(code(shield_file_open(v, path, SHIELD_O_CREAT, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, data, size, off)), 0);
        shield_file_close(f);
}

static void truncate_to(struct shield_volume *v, const char *path, uint64_t size)
{
        struct shield_file *f;

        assert_int_equal(code(shield_file_open(v, path, 0, &f)), 0);
        assert_int_equal(code(shield_file_truncate(f, size)), 0);
        shield_file_close(f);
}

/* Reads the whole file; returns the status and checks size and content when it is OK. */
static int get_check(struct shield_volume *v, const char *path, const uint8_t *want, size_t size)
{
        struct shield_file *f;
        uint8_t *buf = malloc(size + 16);
        uint64_t fsize = 0;
        size_t n = 0;
        cf_status s;

        assert_non_null(buf);
        s = shield_file_open(v, path, 0, &f);
        if (cf_ok(s)) {
                assert_int_equal(code(shield_file_size(f, &fsize)), 0);
                assert_int_equal(fsize, size);
                s = shield_file_pread(f, buf, size + 16, 0, &n);
                if (cf_ok(s)) {
                        assert_int_equal(n, size);
                        assert_memory_equal(buf, want, size);
                }
                shield_file_close(f);
        }
        free(buf);
        return s.code;
}

static void count_problem(void *ctx, const struct shield_problem *p)
{
        size_t *n = ctx;

        (void)p;
        (*n)++;
}

static cf_status count_entry(void *ctx, const char *name, const struct shield_stat *st)
{
        size_t *n = ctx;

        (void)name;
        (void)st;
        (*n)++;
        return CF_OK;
}

#define A_SIZE 25000u
#define B_SIZE 9000u
#define D_SIZE 12000u
#define E_SIZE 5000u

/* The committed contents the crash test expects. */
struct model {
        uint8_t a[A_SIZE], b[B_SIZE], d[D_SIZE], e[E_SIZE];
        size_t a_size, b_size;
};

static void expect_model(struct shield_volume *v, const struct model *md)
{
        size_t problems = 0, entries = 0;

        assert_int_equal(get_check(v, "a", md->a, md->a_size), 0);
        assert_int_equal(get_check(v, "b", md->b, md->b_size), 0);
        assert_int_equal(get_check(v, "d", md->d, D_SIZE), 0);
        assert_int_equal(get_check(v, "e2", md->e, E_SIZE), 0);
        assert_int_equal(get_check(v, "dir/e", md->e, E_SIZE), CF_E_NOT_FOUND);
        assert_int_equal(code(shield_volume_verify(v, count_problem, &problems)), 0);
        assert_int_equal(problems, 0);
        assert_int_equal(code(shield_volume_list(v, "", count_entry, &entries)), 0);
        assert_int_equal(entries, 5); /* a b d dir e2 */
}

/* A checkpointed volume, then four journal commits (overwrite, new files and a directory,
 * truncation and extension, a rename), then an uncommitted write. Returns the last tag and
 * the one before. */
static void crash_setup(struct shield_mem **ret_m, struct model *md, uint8_t t3[SHIELD_TAG_SIZE],
                        uint8_t t4[SHIELD_TAG_SIZE], char d_name[SH_ID_SIZE * 2 + 3])
{
        struct shield_mem *m;
        struct shield_volume *v;
        uint8_t tag[SHIELD_TAG_SIZE], w[6000];

        memset(md, 0, sizeof(*md));
        assert_int_equal(code(shield_mem_new(&m)), 0);
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, m, g_key, NULL, 0, SHIELD_OPEN_CREATE, &v)),
            0);
        fill(md->a, 20000, 11);
        md->a_size = 20000;
        fill(md->b, B_SIZE, 12);
        md->b_size = B_SIZE;
        put(v, "a", md->a, md->a_size, 0);
        put(v, "b", md->b, md->b_size, 0);
        assert_int_equal(code(shield_volume_commit(v, tag)), 0); /* into a slot */
        fill(w, 5000, 13);
        memcpy(md->a + 3000, w, 5000);
        put(v, "a", w, 5000, 3000);
        assert_int_equal(code(shield_volume_commit(v, tag)), 0); /* the journal's first */
        assert_true(v->jofs > 0);
        fill(md->d, D_SIZE, 14);
        fill(md->e, E_SIZE, 15);
        put(v, "d", md->d, D_SIZE, 0);
        assert_int_equal(code(shield_volume_mkdir(v, "dir")), 0);
        put(v, "dir/e", md->e, E_SIZE, 0);
        assert_int_equal(code(shield_volume_commit(v, tag)), 0);
        truncate_to(v, "b", 4000);
        md->b_size = 4000;
        fill(w, 5000, 16);
        memcpy(md->a + 19000, w, 6000 - 1000);
        put(v, "a", w, 5000, 19000);
        md->a_size = 24000;
        assert_int_equal(code(shield_volume_commit(v, t3)), 0);
        assert_int_equal(code(shield_volume_rename(v, "dir/e", "e2")), 0);
        assert_int_equal(code(shield_volume_commit(v, t4)), 0);
        {
                size_t i = sh_find_sorted(v->m.ino, v->m.n, cf_slice_str("d"));

                assert_true(i != SIZE_MAX);
                sh_backing_name(v->m.ino[i]->id, 'd', d_name);
        }
        put(v, "a", (const uint8_t *)"LOST", 4, 100); /* never committed */
        {
                struct shield_file *f;

                assert_int_equal(code(shield_file_open(v, "a", 0, &f)), 0);
                assert_int_equal(code(shield_file_flush(f)), 0); /* even on disk */
                shield_file_close(f);
        }
        shield_volume_close(v);
        *ret_m = m;
}

/* The machine-crash case: a read-only open reads every committed file and verifies clean,
 * writing nothing; then a read-write open still replays and works. */
static void test_rdonly_after_machine_crash(void **state)
{
        struct shield_mem *m, *crash, *snap;
        struct shield_volume *v;
        struct model *md = calloc(1, sizeof(*md));
        uint8_t t3[SHIELD_TAG_SIZE], t4[SHIELD_TAG_SIZE], got[SHIELD_TAG_SIZE];
        const uint8_t *tags[1] = {t4};
        char d_name[SH_ID_SIZE * 2 + 3];
        uint8_t *p;
        size_t n;

        (void)state;
        assert_non_null(md);
        crash_setup(&m, md, t3, t4, d_name);
        assert_int_equal(code(shield_mem_crash_clone(m, &crash)), 0);
        /* The crash did lose in-place writes: d's backing file never had a durable name. */
        assert_int_equal(code(shield_mem_peek(m, d_name, &p, &n)), 0);
        assert_int_equal(code(shield_mem_peek(crash, d_name, &p, &n)), CF_E_NOT_FOUND);
        assert_int_equal(code(shield_mem_clone(crash, &snap)), 0);

        assert_int_equal(code(shield_volume_open(&shield_mem_ops, crash, g_key, tags, 1,
                                                 SHIELD_OPEN_RDONLY, &v)),
                         0);
        assert_int_equal(code(shield_volume_tag(v, got)), 0);
        assert_memory_equal(got, t4, SHIELD_TAG_SIZE);
        expect_model(v, md);
        assert_true(v->ops == &sh_overlay_ops);
        assert_true(sh_overlay_used(v->st) > D_SIZE); /* d at least lives in the overlay */
        /* Still read-only. */
        {
                struct shield_file *f;

                assert_int_equal(code(shield_file_open(v, "a", 0, &f)), 0);
                assert_int_equal(code(shield_file_pwrite(f, "x", 1, 0)), CF_E_PERMISSION);
                shield_file_close(f);
                assert_int_equal(code(shield_volume_checkpoint(v)), CF_E_PERMISSION);
        }
        shield_volume_close(v);
        assert_same_storage(crash, snap);

        /* Any tag (the offline tools), and a walk back to the state before the chain's end:
         * the journal is not cut (nothing is written). */
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, crash, g_key, NULL, 0,
                                    SHIELD_OPEN_ACCEPT_ANY_TAG | SHIELD_OPEN_RDONLY, &v)),
            0);
        expect_model(v, md);
        shield_volume_close(v);
        {
                const uint8_t *t3s[1] = {t3};
                size_t problems = 0;

                assert_int_equal(code(shield_volume_open(&shield_mem_ops, crash, g_key, t3s, 1,
                                                         SHIELD_OPEN_RDONLY, &v)),
                                 0);
                assert_int_equal(get_check(v, "dir/e", md->e, E_SIZE), 0);
                assert_int_equal(get_check(v, "d", md->d, D_SIZE), 0);
                assert_int_equal(code(shield_volume_verify(v, count_problem, &problems)), 0);
                shield_volume_close(v);
        }
        assert_same_storage(crash, snap);

        /* A read-write open replays for real and goes on. */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, crash, g_key, tags, 1, 0, &v)),
                         0);
        assert_true(v->ops == &shield_mem_ops);
        expect_model(v, md);
        put(v, "a", (const uint8_t *)"more", 4, 0);
        memcpy(md->a, "more", 4);
        assert_int_equal(code(shield_volume_commit(v, t4)), 0);
        shield_volume_close(v);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, crash, g_key, tags, 1,
                                                 SHIELD_OPEN_RDONLY, &v)),
                         0);
        expect_model(v, md);
        shield_volume_close(v);

        /* After a process crash (the in-place writes are all there) the read-only view is
         * the same, and the original storage is untouched too. */
        shield_mem_free(snap);
        assert_int_equal(code(shield_mem_clone(m, &snap)), 0);
        tags[0] = got; /* m's own last commit (it never saw the one above) */
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, m, g_key, tags, 1, SHIELD_OPEN_RDONLY, &v)),
            0);
        assert_int_equal(get_check(v, "d", md->d, D_SIZE), 0);
        assert_int_equal(get_check(v, "b", md->b, md->b_size), 0);
        assert_int_equal(get_check(v, "e2", md->e, E_SIZE), 0);
        assert_int_equal(code(shield_volume_verify(v, NULL, NULL)), 0);
        shield_volume_close(v);
        assert_same_storage(m, snap);
        shield_mem_free(snap);
        shield_mem_free(crash);
        shield_mem_free(m);
        free(md);
}

/* Every kind of journal damage: a read-only open decides exactly as a read-write one
 * (same status, same state, a clean verify), and writes nothing. */
static void test_rdonly_tampered_journal(void **state)
{
        struct shield_mem *m, *base;
        struct model *md = calloc(1, sizeof(*md));
        uint8_t t3[SHIELD_TAG_SIZE], t4[SHIELD_TAG_SIZE];
        char d_name[SH_ID_SIZE * 2 + 3];
        uint8_t *j, *p;
        size_t jn, end = 0, tried = 0, opened = 0;

        (void)state;
        assert_non_null(md);
        crash_setup(&m, md, t3, t4, d_name);
        assert_int_equal(code(shield_mem_crash_clone(m, &base)), 0);
        assert_int_equal(code(shield_mem_peek(base, SH_JOURNAL_NAME, &p, &jn)), 0);
        j = malloc(jn);
        assert_non_null(j);
        memcpy(j, p, jn);
        /* The chain's end: where the zeros start for good. */
        for (size_t i = 0; i < jn; i++) {
                if (j[i] != 0) {
                        end = i + 1;
                }
        }
        assert_true(end > 0 && end < jn);
        jn = end + 64; /* the zeros after the chain read as no record: keep the copies small */
        assert_int_equal(code(shield_mem_put(base, SH_JOURNAL_NAME, j, jn)), 0);
        for (size_t i = 0; i < end + 16; i += (i < SH_HEADER_SIZE || i + 16 > end ? 1 : 397)) {
                for (int both = 0; both < 2; both++) {
                        const uint8_t *tags[2] = {t4, t3};
                        struct shield_mem *ro, *rw, *snap;
                        struct shield_volume *vr = NULL, *vw = NULL;
                        int cr, cw;

                        j[i] ^= 0x08;
                        assert_int_equal(code(shield_mem_clone(base, &ro)), 0);
                        assert_int_equal(code(shield_mem_put(ro, SH_JOURNAL_NAME, j, jn)), 0);
                        j[i] ^= 0x08;
                        assert_int_equal(code(shield_mem_clone(ro, &rw)), 0);
                        assert_int_equal(code(shield_mem_clone(ro, &snap)), 0);
                        cr = code(shield_volume_open(&shield_mem_ops, ro, g_key, tags, both ? 2 : 1,
                                                     SHIELD_OPEN_RDONLY, &vr));
                        cw = code(shield_volume_open(&shield_mem_ops, rw, g_key, tags, both ? 2 : 1,
                                                     0, &vw));
                        assert_int_equal(cr, cw);
                        tried++;
                        if (cr == 0) {
                                uint8_t a[SHIELD_TAG_SIZE], b[SHIELD_TAG_SIZE];

                                assert_int_equal(code(shield_volume_tag(vr, a)), 0);
                                assert_int_equal(code(shield_volume_tag(vw, b)), 0);
                                assert_memory_equal(a, b, SHIELD_TAG_SIZE);
                                assert_int_equal(code(shield_volume_verify(vr, NULL, NULL)), 0);
                                assert_int_equal(code(shield_volume_verify(vw, NULL, NULL)), 0);
                                assert_int_equal(get_check(vr, "d", md->d, D_SIZE), 0);
                                opened++;
                        } else {
                                assert_true(cr == CF_E_MAC_INVALID || cr == CF_E_ROLLBACK ||
                                            cr == CF_E_TRUNCATED);
                        }
                        shield_volume_close(vr);
                        shield_volume_close(vw);
                        assert_same_storage(ro, snap);
                        shield_mem_free(ro);
                        shield_mem_free(rw);
                        shield_mem_free(snap);
                }
        }
        assert_true(opened > 0 && opened < tried);
        free(j);
        shield_mem_free(base);
        shield_mem_free(m);
        free(md);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_read_boundaries),
            cmocka_unit_test(test_overlapping_writes),
            cmocka_unit_test(test_identical_write),
            cmocka_unit_test(test_extension_and_truncation),
            cmocka_unit_test(test_limit),
            cmocka_unit_test(test_names_and_refusals),
            cmocka_unit_test(test_rdonly_after_machine_crash),
            cmocka_unit_test(test_rdonly_tampered_journal),
        };

        if (!cf_ok(cf_mem_init()) || !cf_ok(cf_crypto_init()) ||
            !cf_ok(cf_random(g_key, sizeof(g_key)))) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
