/* Unit tests of the plaintext chunk cache (src/shield/pcache.c): a cached volume reads and
 * writes exactly what an uncached one does (a random model test with a tiny cache, so that
 * eviction runs constantly), only authenticated plaintext is ever cached, writes, truncation,
 * unlink and rename keep it current, and turning it off or resizing it drops everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/mem.h"
#include "shield/shield.h"
#include "shield/shield_internal.h"

#define CH      SHIELD_CHUNK_SIZE
#define NCHUNKS 48u
#define FSIZE   ((size_t)NCHUNKS * CH)
#define OPS     3000u

static uint8_t g_key[SHIELD_KEY_SIZE];

static int code(cf_status s)
{
        return s.code;
}

struct vol {
        struct shield_mem *m;
        struct shield_volume *v;
        uint8_t tag[SHIELD_TAG_SIZE];
};

static void vol_new(struct vol *x, size_t cache)
{
        memset(x, 0, sizeof(*x));
        assert_int_equal(code(shield_mem_new(&x->m)), 0);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x->m, g_key, NULL, 0,
                                                 SHIELD_OPEN_CREATE, &x->v)),
                         0);
        assert_int_equal(code(shield_volume_set_cache(x->v, cache)), 0);
        assert_int_equal(code(shield_volume_commit(x->v, x->tag)), 0);
}

static void vol_reopen(struct vol *x, size_t cache)
{
        const uint8_t *tags[1] = {x->tag};

        assert_int_equal(code(shield_volume_commit(x->v, x->tag)), 0);
        assert_int_equal(code(shield_volume_checkpoint(x->v)), 0);
        shield_volume_close(x->v);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x->m, g_key, tags, 1, 0, &x->v)),
                         0);
        assert_int_equal(code(shield_volume_set_cache(x->v, cache)), 0);
}

static void vol_done(struct vol *x)
{
        shield_volume_close(x->v);
        shield_mem_free(x->m);
}

static void put(struct shield_volume *v, const char *path, const void *data, size_t size,
                uint64_t off)
{
        struct shield_file *f;

        assert_int_equal(code(shield_file_open(v, path, SHIELD_O_CREAT, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, data, size, off)), 0);
        shield_file_close(f);
}

static cf_status get(struct shield_volume *v, const char *path, void *buf, size_t size,
                     uint64_t off, size_t *n)
{
        struct shield_file *f;
        cf_status s = shield_file_open(v, path, 0, &f);

        if (!cf_ok(s)) {
                return s;
        }
        s = shield_file_pread(f, buf, size, off, n);
        shield_file_close(f);
        return s;
}

static void expect(struct shield_volume *v, const char *path, const uint8_t *want, size_t size)
{
        uint8_t *got = malloc(size + 1);
        size_t n = 0;

        assert_non_null(got);
        assert_int_equal(code(get(v, path, got, size + 1, 0, &n)), 0);
        assert_int_equal(n, size);
        assert_memory_equal(got, want, size);
        free(got);
}

/* Flips one byte of every copy of chunk `chunk` of the file's data file (both slots). */
static void flip_chunk(struct shield_mem *m, const struct shield_volume *v, const char *path,
                       uint64_t chunk)
{
        char name[SH_ID_SIZE * 2 + 3];
        size_t i = sh_find_sorted(v->m.ino, v->m.n, cf_slice_str(path));
        uint8_t *p;
        size_t n;

        assert_true(i != SIZE_MAX);
        sh_backing_name(v->m.ino[i]->id, 'd', name);
        assert_int_equal(code(shield_mem_peek(m, name, &p, &n)), 0);
        for (unsigned slot = 0; slot < 2; slot++) {
                uint64_t off = sh_chunk_offset(chunk, slot);

                if (off + 100 <= n) {
                        p[off + 99] ^= 0x40;
                }
        }
}

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(uint64_t bound)
{
        g_rng ^= g_rng << 13;
        g_rng ^= g_rng >> 7;
        g_rng ^= g_rng << 17;
        return g_rng % bound;
}

/* Random reads, writes (aligned and not, across chunks), truncations and reopenings of two
 * files, on a volume whose cache holds 5 chunks, compared with a model after every step. */
static void test_model(void **state)
{
        static uint8_t model[2][FSIZE + 2 * CH], buf[FSIZE + 2 * CH];
        static const char *const names[2] = {"a", "d/b"};
        size_t size[2] = {0, 0};
        struct vol x;

        (void)state;
        vol_new(&x, 5 * CH);
        assert_int_equal(code(shield_volume_mkdir(x.v, "d")), 0);
        memset(model, 0, sizeof(model));
        for (unsigned op = 0; op < OPS; op++) {
                unsigned f = (unsigned)rnd(2), kind = (unsigned)rnd(10);
                uint64_t off = rnd(FSIZE);
                size_t len = (size_t)(rnd(4) == 0 ? rnd(3 * CH) : rnd(200)) + 1, n = 0;

                if (rnd(3) == 0) { /* whole chunks: the sealed-run path */
                        off -= off % CH;
                        len = (size_t)(rnd(4) + 1) * CH;
                }
                if (off + len > FSIZE) {
                        len = (size_t)(FSIZE - off);
                }
                if (kind < 4) {
                        for (size_t i = 0; i < len; i++) {
                                buf[i] = (uint8_t)rnd(256);
                        }
                        put(x.v, names[f], buf, len, off);
                        memcpy(model[f] + off, buf, len);
                        if (off + len > size[f]) {
                                size[f] = (size_t)(off + len);
                        }
                } else if (kind < 8) {
                        if (size[f] == 0) {
                                continue;
                        }
                        assert_int_equal(code(get(x.v, names[f], buf, len, off, &n)), 0);
                        assert_int_equal(
                            n, off >= size[f] ? 0 : (size[f] - off < len ? size[f] - off : len));
                        assert_memory_equal(buf, model[f] + off, n);
                } else if (kind == 8 && size[f] > 0) {
                        struct shield_file *h;
                        size_t to = (size_t)rnd(size[f] + 2 * CH);

                        assert_int_equal(code(shield_file_open(x.v, names[f], 0, &h)), 0);
                        assert_int_equal(code(shield_file_truncate(h, to)), 0);
                        shield_file_close(h);
                        if (to < size[f]) {
                                memset(model[f] + to, 0, size[f] - to);
                        }
                        size[f] = to;
                } else if (kind == 9 && rnd(20) == 0) {
                        vol_reopen(&x, 5 * CH);
                }
                if (op % 97 == 0) {
                        for (unsigned k = 0; k < 2; k++) {
                                if (size[k] > 0) {
                                        expect(x.v, names[k], model[k], size[k]);
                                }
                        }
                }
        }
        vol_reopen(&x, 0); /* the uncached view of the same bytes */
        for (unsigned k = 0; k < 2; k++) {
                expect(x.v, names[k], model[k], size[k]);
        }
        vol_done(&x);
}

/* A chunk that fails authentication is not cached: it fails again on the next read, and
 * nothing else of the file is lost. */
static void test_failed_not_cached(void **state)
{
        static uint8_t data[8 * CH], got[8 * CH];
        struct vol x;
        size_t n;

        (void)state;
        for (size_t i = 0; i < sizeof(data); i++) {
                data[i] = (uint8_t)(i * 7);
        }
        vol_new(&x, 64 * CH);
        put(x.v, "f", data, sizeof(data), 0);
        vol_reopen(&x, 64 * CH); /* empty cache */
        flip_chunk(x.m, x.v, "f", 3);
        for (int round = 0; round < 2; round++) {
                assert_int_equal(code(get(x.v, "f", got, CH, 3 * CH, &n)), CF_E_MAC_INVALID);
                assert_int_equal(code(get(x.v, "f", got, sizeof(got), 0, &n)), CF_E_MAC_INVALID);
        }
        assert_int_equal(code(get(x.v, "f", got, 3 * CH, 0, &n)), 0);
        assert_memory_equal(got, data, 3 * CH);
        assert_int_equal(code(get(x.v, "f", got, 4 * CH, 4 * CH, &n)), 0);
        assert_memory_equal(got, data + 4 * CH, 4 * CH);
        vol_done(&x);
}

/* A chunk authenticated once is served from memory: a later edit of the backing file
 * cannot change what the program reads; without the cache the same edit is refused. */
static void test_cached_is_authenticated_copy(void **state)
{
        static uint8_t data[4 * CH], got[4 * CH];
        struct vol x;
        size_t n;

        (void)state;
        memset(data, 'q', sizeof(data));
        vol_new(&x, 64 * CH);
        put(x.v, "f", data, sizeof(data), 0);
        vol_reopen(&x, 64 * CH);
        assert_int_equal(code(get(x.v, "f", got, sizeof(got), 0, &n)), 0);
        flip_chunk(x.m, x.v, "f", 2);
        assert_int_equal(code(get(x.v, "f", got, sizeof(got), 0, &n)), 0);
        assert_memory_equal(got, data, sizeof(data));
        assert_int_equal(code(shield_volume_set_cache(x.v, 0)), 0); /* dropped */
        assert_int_equal(code(get(x.v, "f", got, sizeof(got), 0, &n)), CF_E_MAC_INVALID);
        vol_done(&x);
}

/* Names change, contents follow: unlink + re-create under the same name never shows the old
 * file's cached bytes; a renamed file keeps its content; a file replaced by rename shows the
 * new content. */
static void test_names(void **state)
{
        static uint8_t a[2 * CH], b[2 * CH], got[2 * CH];
        struct vol x;
        size_t n;

        (void)state;
        memset(a, 'a', sizeof(a));
        memset(b, 'b', sizeof(b));
        vol_new(&x, 64 * CH);
        put(x.v, "f", a, sizeof(a), 0);
        expect(x.v, "f", a, sizeof(a));
        assert_int_equal(code(shield_volume_unlink(x.v, "f")), 0);
        put(x.v, "f", b, CH, 0);
        expect(x.v, "f", b, CH);
        assert_int_equal(code(shield_volume_rename(x.v, "f", "g")), 0);
        expect(x.v, "g", b, CH);
        put(x.v, "h", a, sizeof(a), 0);
        expect(x.v, "h", a, sizeof(a));
        assert_int_equal(code(shield_volume_rename(x.v, "g", "h")), 0);
        expect(x.v, "h", b, CH);
        assert_int_equal(code(get(x.v, "g", got, sizeof(got), 0, &n)), CF_E_NOT_FOUND);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0); /* frees the replaced */
        expect(x.v, "h", b, CH);
        vol_done(&x);
}

/* Resizing keeps the volume correct; limits are clamped; 0 turns the cache off. */
static void test_resize(void **state)
{
        static uint8_t data[16 * CH];
        struct vol x;

        (void)state;
        for (size_t i = 0; i < sizeof(data); i++) {
                data[i] = (uint8_t)(i / CH + 1);
        }
        vol_new(&x, 2 * CH);
        put(x.v, "f", data, sizeof(data), 0);
        expect(x.v, "f", data, sizeof(data));
        assert_non_null(x.v->pc);
        assert_int_equal(code(shield_volume_set_cache(x.v, CH - 1)), 0); /* < one chunk: off */
        assert_null(x.v->pc);
        expect(x.v, "f", data, sizeof(data));
        assert_int_equal(code(shield_volume_set_cache(x.v, (size_t)1 << 40)), 0); /* clamped */
        assert_non_null(x.v->pc);
        expect(x.v, "f", data, sizeof(data));
        expect(x.v, "f", data, sizeof(data));
        vol_done(&x);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_model),
            cmocka_unit_test(test_failed_not_cached),
            cmocka_unit_test(test_cached_is_authenticated_copy),
            cmocka_unit_test(test_names),
            cmocka_unit_test(test_resize),
        };

        memset(g_key, 0x5c, sizeof(g_key));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
