/* Unit tests of large reads (tree.c read_run: one pread per run of chunks contiguous on disk,
 * verified chunk by chunk): every offset and length class reads back exactly what was
 * written, a chunk that fails authentication in the middle of a run fails the whole read with
 * nothing returned, and several threads reading several volumes at once agree with the data. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shield/shield.h"
#include "shield/shield_internal.h"

#define CH     SHIELD_CHUNK_SIZE
#define FCH    300u /* chunks in the test file: several leaves */
#define FBYTES ((size_t)FCH * CH)

static uint8_t g_key[SHIELD_KEY_SIZE];
static uint8_t g_data[FBYTES];

static int code(cf_status s)
{
        return s.code;
}

struct vol {
        struct shield_mem *m;
        struct shield_volume *v;
        uint8_t tag[SHIELD_TAG_SIZE];
};

/* A volume holding "f" = g_data, committed, checkpointed and reopened (cold caches). */
static void vol_make(struct vol *x)
{
        const uint8_t *tags[1] = {x->tag};
        struct shield_file *f;

        assert_int_equal(code(shield_mem_new(&x->m)), 0);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x->m, g_key, NULL, 0,
                                                 SHIELD_OPEN_CREATE, &x->v)),
                         0);
        assert_int_equal(code(shield_file_open(x->v, "f", SHIELD_O_CREAT, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, g_data, FBYTES, 0)), 0);
        shield_file_close(f);
        assert_int_equal(code(shield_volume_commit(x->v, x->tag)), 0);
        assert_int_equal(code(shield_volume_checkpoint(x->v)), 0);
        shield_volume_close(x->v);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x->m, g_key, tags, 1, 0, &x->v)),
                         0);
}

static void vol_done(struct vol *x)
{
        shield_volume_close(x->v);
        shield_mem_free(x->m);
}

static cf_status read_at(struct shield_volume *v, uint8_t *buf, size_t len, uint64_t off, size_t *n)
{
        struct shield_file *f;
        cf_status s = shield_file_open(v, "f", 0, &f);

        if (cf_ok(s)) {
                s = shield_file_pread(f, buf, len, off, n);
                shield_file_close(f);
        }
        return s;
}

static void test_offsets(void **state)
{
        static const uint64_t offs[] = {0, 1, CH - 1, CH, 5 * CH + 17, 63 * CH, 64 * CH - 3};
        static const size_t lens[] = {17 * CH, 40 * CH + 5, 64 * CH, 100 * CH - 1, FBYTES};
        static uint8_t buf[FBYTES];
        struct vol x;

        (void)state;
        vol_make(&x);
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
                for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
                        size_t n = 0,
                               want = FBYTES - offs[i] < lens[j] ? FBYTES - offs[i] : lens[j];

                        memset(buf, 0xee, sizeof(buf));
                        assert_int_equal(code(read_at(x.v, buf, lens[j], offs[i], &n)), 0);
                        assert_int_equal(n, want);
                        assert_memory_equal(buf, g_data + offs[i], n);
                }
        }
        vol_done(&x);
}

/* Tampers chunk 40, in the middle of a 64-chunk run read from 0. */
static void test_tampered_chunk_fails_closed(void **state)
{
        static uint8_t buf[64 * CH];
        char name[SH_ID_SIZE * 2 + 3];
        struct vol x;
        uint8_t *p;
        size_t n = 0, size;

        (void)state;
        vol_make(&x);
        sh_backing_name(x.v->m.ino[0]->id, 'd', name);
        assert_int_equal(code(shield_mem_peek(x.m, name, &p, &size)), 0);
        for (unsigned slot = 0; slot < 2; slot++) {
                if (sh_chunk_offset(40, slot) + 10 < size) {
                        p[sh_chunk_offset(40, slot) + 10] ^= 1;
                }
        }
        memset(buf, 0xee, sizeof(buf));
        assert_int_equal(code(read_at(x.v, buf, sizeof(buf), 0, &n)), CF_E_MAC_INVALID);
        for (size_t i = 0; i < sizeof(buf); i++) {
                assert_int_equal(buf[i], 0); /* wiped: not even the chunks before it */
        }
        assert_int_equal(code(read_at(x.v, buf, 30 * CH, 0, &n)), 0); /* before it: fine */
        assert_memory_equal(buf, g_data, 30 * CH);
        vol_done(&x);
}

#define THREADS 4

static void *reader(void *arg)
{
        struct vol *x = arg;
        uint8_t *buf = malloc(FBYTES);
        uintptr_t bad = 0;

        for (unsigned round = 0; round < 20 && buf != NULL; round++) {
                uint64_t off = (uint64_t)round * 7 * CH + round;
                size_t n = 0;

                if (!cf_ok(read_at(x->v, buf, FBYTES, off, &n)) || n != FBYTES - off ||
                    memcmp(buf, g_data + off, n) != 0) {
                        bad++;
                }
        }
        free(buf);
        return (void *)(buf == NULL ? 1 : bad);
}

static void test_concurrent_volumes(void **state)
{
        struct vol x[THREADS];
        pthread_t t[THREADS];

        (void)state;
        for (unsigned i = 0; i < THREADS; i++) {
                vol_make(&x[i]);
        }
        for (unsigned i = 0; i < THREADS; i++) {
                assert_int_equal(pthread_create(&t[i], NULL, reader, &x[i]), 0);
        }
        for (unsigned i = 0; i < THREADS; i++) {
                void *r;

                assert_int_equal(pthread_join(t[i], &r), 0);
                assert_null(r);
        }
        for (unsigned i = 0; i < THREADS; i++) {
                vol_done(&x[i]);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_offsets),
            cmocka_unit_test(test_tampered_chunk_fails_closed),
            cmocka_unit_test(test_concurrent_volumes),
        };

        memset(g_key, 0x3c, sizeof(g_key));
        for (size_t i = 0; i < FBYTES; i++) {
                g_data[i] = (uint8_t)((i * 2654435761u) >> 13);
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
