/* Unit tests of src/shield: round trips, the name space, persistence over POSIX storage,
 * every tamper kind (each must fail with its precise status, never return data), rollback,
 * crash consistency with fault injection, plaintext never on the backing storage, and the
 * decoders' negative cases. Tamper tests edit the in-memory backing files directly, as a
 * hostile host would edit the directory. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/io.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "shield/shield.h"
#include "shield/shield_internal.h"

#define MARKER "PLAINTEXT-MARKER-7f3a9c"

static uint8_t g_key[SHIELD_KEY_SIZE];

struct vol {
        struct shield_mem *m;
        struct shield_volume *v;
        uint8_t tag[SHIELD_TAG_SIZE];
};

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
        uint32_t x = seed * 2654435761u + 1;

        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (uint8_t)(x >> 16);
        }
}

static int code(cf_status s)
{
        return s.code;
}

/* Opens x->m's volume expecting x->tag (or creating when create is true). */
static cf_status vol_open(struct vol *x, bool create)
{
        const uint8_t *tags[1] = {x->tag};

        return shield_volume_open(&shield_mem_ops, x->m, g_key, tags, create ? 0 : 1,
                                  create ? SHIELD_OPEN_CREATE : 0, &x->v);
}

static void vol_new(struct vol *x)
{
        memset(x, 0, sizeof(*x));
        assert_int_equal(code(shield_mem_new(&x->m)), 0);
        assert_int_equal(code(vol_open(x, true)), 0);
        assert_int_equal(code(shield_volume_commit(x->v, x->tag)), 0);
}

/* Commits and checkpoints (the state goes into a manifest slot), then reopens. */
static void vol_commit_reopen(struct vol *x)
{
        assert_int_equal(code(shield_volume_commit(x->v, x->tag)), 0);
        assert_int_equal(code(shield_volume_checkpoint(x->v)), 0);
        shield_volume_close(x->v);
        x->v = NULL;
        assert_int_equal(code(vol_open(x, false)), 0);
}

static void vol_done(struct vol *x)
{
        shield_volume_close(x->v);
        shield_mem_free(x->m);
}

/* The manifest slot holding the newest record (the higher generation in its header). */
static const char *newest_slot(struct shield_mem *m)
{
        uint64_t g[2] = {0, 0};
        bool ok[2];

        for (int i = 0; i < 2; i++) {
                uint8_t *p;
                size_t n;

                ok[i] = cf_ok(shield_mem_peek(m, i ? SH_SLOT_NAME_1 : SH_SLOT_NAME_0, &p, &n)) &&
                        n >= SH_HEADER_SIZE;
                for (unsigned k = 0; ok[i] && k < 8; k++) {
                        g[i] |= (uint64_t)p[SH_MAGIC_SIZE + 4 + k] << (8 * k);
                }
        }
        return ok[1] && (!ok[0] || g[1] > g[0]) ? SH_SLOT_NAME_1 : SH_SLOT_NAME_0;
}

static const char *other_slot(const char *slot)
{
        return strcmp(slot, SH_SLOT_NAME_0) == 0 ? SH_SLOT_NAME_1 : SH_SLOT_NAME_0;
}

/* Deletes the manifest (both slots), as a host deleting the volume's metadata. */
static void unlink_slots(struct shield_mem *m)
{
        cf_ignore(shield_mem_ops.unlink(m, SH_SLOT_NAME_0));
        cf_ignore(shield_mem_ops.unlink(m, SH_SLOT_NAME_1));
}

static void put(struct shield_volume *v, const char *path, const void *data, size_t size,
                uint64_t off)
{
        struct shield_file *f;

        assert_int_equal(code(shield_file_open(v, path, SHIELD_O_CREAT, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, data, size, off)), 0);
        shield_file_close(f);
}

/* Reads the whole file; returns the status, and checks the content when it is OK. */
static cf_status get_check(struct shield_volume *v, const char *path, const uint8_t *want,
                           size_t size)
{
        struct shield_file *f;
        uint8_t *buf = malloc(size + 16);
        size_t n = 0;
        uint64_t fsize = 0;
        cf_status s;

        assert_non_null(buf);
        s = shield_file_open(v, path, 0, &f);
        if (!cf_ok(s)) {
                free(buf);
                return s;
        }
        assert_int_equal(code(shield_file_size(f, &fsize)), 0);
        assert_int_equal(fsize, size);
        s = shield_file_pread(f, buf, size + 16, 0, &n);
        if (cf_ok(s)) {
                assert_int_equal(n, size);
                if (want != NULL) {
                        assert_memory_equal(buf, want, size);
                }
        }
        shield_file_close(f);
        free(buf);
        return s;
}

static const struct sh_inode *inode(struct shield_volume *v, const char *path)
{
        size_t i = sh_find_sorted(v->m.ino, v->m.n, cf_slice_str(path));

        assert_true(i != SIZE_MAX);
        return v->m.ino[i];
}

static void backing(struct shield_volume *v, const char *path, char kind, char *out)
{
        sh_backing_name(inode(v, path)->id, kind, out);
}

/* ---- round trips ------------------------------------------------------------------ */

static void test_roundtrip_sizes(void **state)
{
        static const size_t sizes[] = {0, 1, 4095, 4096, 4097, (1u << 20) + 3};
        static const uint64_t offs[] = {0, 1, 4093, 4096, 12289};
        struct vol x;

        (void)state;
        vol_new(&x);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
                        char path[32];
                        size_t total = (size_t)offs[j] + sizes[i];
                        uint8_t *want = calloc(1, total + 1);

                        assert_non_null(want);
                        snprintf(path, sizeof(path), "f%zu_%zu", i, j);
                        fill(want + offs[j], sizes[i], (uint32_t)(i * 31 + j));
                        put(x.v, path, want + offs[j], sizes[i], offs[j]);
                        /* A zero-byte write does not extend the file. */
                        if (sizes[i] == 0) {
                                total = 0;
                        }
                        assert_int_equal(code(get_check(x.v, path, want, total)), 0);
                        free(want);
                }
        }
        vol_commit_reopen(&x);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
                        char path[32];
                        size_t total = sizes[i] ? (size_t)offs[j] + sizes[i] : 0;
                        uint8_t *want = calloc(1, total + 1);

                        assert_non_null(want);
                        snprintf(path, sizeof(path), "f%zu_%zu", i, j);
                        if (sizes[i]) {
                                fill(want + offs[j], sizes[i], (uint32_t)(i * 31 + j));
                        }
                        assert_int_equal(code(get_check(x.v, path, want, total)), 0);
                        free(want);
                }
        }
        assert_int_equal(code(shield_volume_verify(x.v, NULL, NULL)), 0);
        vol_done(&x);
}

static void test_overwrite_and_unaligned(void **state)
{
        struct vol x;
        uint8_t *want = calloc(1, 100000);
        struct shield_file *f;

        (void)state;
        assert_non_null(want);
        vol_new(&x);
        assert_int_equal(code(shield_file_open(x.v, "db", SHIELD_O_CREAT, &f)), 0);
        /* SQLite WAL-like frames: 4120 bytes, each straddling two chunks. */
        for (uint32_t k = 0; k < 24; k++) {
                uint8_t frame[4120];

                fill(frame, sizeof(frame), k);
                memcpy(want + (size_t)k * 4120, frame, sizeof(frame));
                assert_int_equal(
                    code(shield_file_pwrite(f, frame, sizeof(frame), (uint64_t)k * 4120)), 0);
                if (k % 5 == 0) {
                        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
                }
        }
        /* Overwrite a middle range twice in one epoch and once after a commit. */
        fill(want + 5000, 9000, 99);
        assert_int_equal(code(shield_file_pwrite(f, want + 5000, 9000, 5000)), 0);
        fill(want + 7001, 3, 98);
        assert_int_equal(code(shield_file_pwrite(f, want + 7001, 3, 7001)), 0);
        shield_file_close(f);
        assert_int_equal(code(get_check(x.v, "db", want, 24 * 4120)), 0);
        vol_commit_reopen(&x);
        assert_int_equal(code(get_check(x.v, "db", want, 24 * 4120)), 0);
        assert_int_equal(code(shield_volume_verify(x.v, NULL, NULL)), 0);
        vol_done(&x);
        free(want);
}

static void test_sparse_and_truncate(void **state)
{
        struct vol x;
        struct shield_file *f;
        uint8_t buf[8192], zero[8192];
        size_t n;
        uint64_t far = (uint64_t)300 << 20; /* needs a taller tree */

        (void)state;
        memset(zero, 0, sizeof(zero));
        vol_new(&x);
        assert_int_equal(code(shield_file_open(x.v, "s", SHIELD_O_CREAT, &f)), 0);
        fill(buf, 10000 > sizeof(buf) ? sizeof(buf) : 10000, 5);
        assert_int_equal(code(shield_file_pwrite(f, buf, 5000, 0)), 0);
        assert_int_equal(code(shield_file_pwrite(f, "END", 3, far)), 0);
        assert_int_equal(code(shield_file_pread(f, buf + 4096, 4096, far - 4096, &n)), 0);
        assert_int_equal(n, 4096);
        assert_memory_equal(buf + 4096, zero, 4096);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        /* Down into the middle of a chunk, then up again: the tail reads as zeros. */
        assert_int_equal(code(shield_file_truncate(f, 3000)), 0);
        assert_int_equal(code(shield_file_truncate(f, 9000)), 0);
        assert_int_equal(code(shield_file_pread(f, buf, sizeof(buf), 0, &n)), 0);
        assert_int_equal(n, sizeof(buf));
        {
                uint8_t want[3000];

                fill(want, 5000 > sizeof(want) ? sizeof(want) : 5000, 5);
                assert_memory_equal(buf, want, 3000);
        }
        assert_memory_equal(buf + 3000, zero, sizeof(buf) - 3000);
        /* Shrink to 0 and grow in the same epoch, rewriting a chunk committed before. */
        assert_int_equal(code(shield_file_truncate(f, 0)), 0);
        assert_int_equal(code(shield_file_pwrite(f, "xy", 2, 4097)), 0);
        shield_file_close(f);
        vol_commit_reopen(&x);
        {
                uint8_t want[4099] = {0};

                want[4097] = 'x';
                want[4098] = 'y';
                assert_int_equal(code(get_check(x.v, "s", want, sizeof(want))), 0);
        }
        assert_int_equal(code(shield_volume_verify(x.v, NULL, NULL)), 0);
        assert_int_equal(code(shield_file_open(x.v, "s", 0, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, "z", 1, SHIELD_FILE_SIZE_MAX)), CF_E_LIMIT);
        assert_int_equal(code(shield_file_truncate(f, SHIELD_FILE_SIZE_MAX + 1)), CF_E_LIMIT);
        shield_file_close(f);
        vol_done(&x);
}

/* ---- name space ------------------------------------------------------------------- */

struct listing {
        char names[8][32];
        size_t n;
};

static cf_status list_cb(void *ctx, const char *name, const struct shield_stat *st)
{
        struct listing *l = ctx;

        (void)st;
        assert_true(l->n < 8);
        snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
        return CF_OK;
}

static void test_namespace(void **state)
{
        struct vol x;
        struct listing l = {0};
        struct shield_stat st;
        struct shield_file *f;

        (void)state;
        vol_new(&x);
        assert_int_equal(code(shield_volume_mkdir(x.v, "d")), 0);
        assert_int_equal(code(shield_volume_mkdir(x.v, "d")), CF_E_EXISTS);
        assert_int_equal(code(shield_volume_mkdir(x.v, "nope/e")), CF_E_NOT_FOUND);
        assert_int_equal(code(shield_volume_mkdir(x.v, "d/e")), 0);
        put(x.v, "d/e/f", "abc", 3, 0);
        put(x.v, "d/g", "hello", 5, 0);
        put(x.v, "top", "t", 1, 0);
        assert_int_equal(code(shield_file_open(x.v, "d/g", SHIELD_O_CREAT | SHIELD_O_EXCL, &f)),
                         CF_E_EXISTS);
        assert_int_equal(code(shield_file_open(x.v, "d", 0, &f)), CF_E_CONFLICT);
        assert_int_equal(code(shield_file_open(x.v, "x/y", SHIELD_O_CREAT, &f)), CF_E_NOT_FOUND);
        for (size_t i = 0; i < 6; i++) {
                static const char *bad[] = {"", "/a", "a/", "a//b", "a/../b", "."};

                assert_int_equal(code(shield_file_open(x.v, bad[i], SHIELD_O_CREAT, &f)),
                                 CF_E_INVALID_ARG);
        }
        assert_int_equal(code(shield_volume_list(x.v, "d", list_cb, &l)), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.names[0], "e");
        assert_string_equal(l.names[1], "g");
        assert_int_equal(code(shield_volume_rmdir(x.v, "d")), CF_E_CONFLICT);
        assert_int_equal(code(shield_volume_rename(x.v, "d", "d/e/z")), CF_E_INVALID_ARG);
        assert_int_equal(code(shield_volume_rename(x.v, "d", "dd")), 0);
        vol_commit_reopen(&x);
        assert_int_equal(code(get_check(x.v, "dd/e/f", (const uint8_t *)"abc", 3)), 0);
        assert_int_equal(code(shield_volume_stat(x.v, "d/g", &st)), CF_E_NOT_FOUND);
        assert_int_equal(code(shield_volume_stat(x.v, "dd/g", &st)), 0);
        assert_int_equal(st.type, SHIELD_TYPE_FILE);
        assert_int_equal(st.size, 5);
        /* A file replaces a file; the replaced one's backing files go at commit. */
        assert_int_equal(code(shield_volume_rename(x.v, "top", "dd/g")), 0);
        assert_int_equal(code(get_check(x.v, "dd/g", (const uint8_t *)"t", 1)), 0);
        assert_int_equal(code(shield_volume_unlink(x.v, "dd/e/f")), 0);
        assert_int_equal(code(shield_volume_rmdir(x.v, "dd/e")), 0);
        vol_commit_reopen(&x);
        /* two manifest slots + the journal + one file's two backing files */
        assert_int_equal(shield_mem_count(x.m), 5);
        memset(&l, 0, sizeof(l));
        assert_int_equal(code(shield_volume_list(x.v, "", list_cb, &l)), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.names[0], "dd");
        vol_done(&x);
}

static void test_unlink_open_file(void **state)
{
        struct vol x;
        struct shield_file *f;
        uint8_t buf[4];
        size_t n;

        (void)state;
        vol_new(&x);
        put(x.v, "a", "data", 4, 0);
        assert_int_equal(code(shield_file_open(x.v, "a", 0, &f)), 0);
        assert_int_equal(code(shield_volume_unlink(x.v, "a")), 0);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        assert_int_equal(code(shield_file_pread(f, buf, 4, 0, &n)), 0);
        assert_memory_equal(buf, "data", 4);
        shield_file_close(f);
        put(x.v, "b", "x", 1, 0);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        assert_int_equal(shield_mem_count(x.m), 4); /* two manifest slots, b's two files */
        vol_done(&x);
}

/* ---- plaintext never on the backing storage -------------------------------------- */

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
        size_t k = strlen(needle);

        for (size_t i = 0; i + k <= n; i++) {
                if (memcmp(hay + i, needle, k) == 0) {
                        return true;
                }
        }
        return false;
}

static void test_no_plaintext_mem(void **state)
{
        struct vol x;
        char text[9000];

        (void)state;
        vol_new(&x);
        for (size_t i = 0; i + sizeof(MARKER) < sizeof(text); i += sizeof(MARKER) - 1) {
                memcpy(text + i, MARKER, sizeof(MARKER) - 1);
        }
        text[sizeof(text) - 1] = 0;
        assert_int_equal(code(shield_volume_mkdir(x.v, "secret-directory-name")), 0);
        put(x.v, "secret-directory-name/secret-file-name", text, sizeof(text), 0);
        put(x.v, "odd", MARKER, sizeof(MARKER) - 1, 4090); /* straddles two chunks */
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        for (size_t i = 0; i < shield_mem_count(x.m); i++) {
                uint8_t *p;
                size_t n;

                assert_int_equal(code(shield_mem_peek(x.m, shield_mem_name(x.m, i), &p, &n)), 0);
                assert_false(contains(p, n, MARKER));
                assert_false(contains(p, n, "secret-file-name"));
                assert_false(contains(p, n, "secret-directory-name"));
        }
        vol_done(&x);
}

/* ---- POSIX storage ---------------------------------------------------------------- */

static void scan_dir_for(const char *dir, const char *needle)
{
        DIR *d = opendir(dir);
        struct dirent *e;

        assert_non_null(d);
        while ((e = readdir(d)) != NULL) {
                char path[512];
                size_t keep = strlen(needle), have = 0;
                uint8_t *buf = malloc(((size_t)1 << 20) + keep);
                FILE *fp;

                if (e->d_name[0] == '.') {
                        free(buf);
                        continue;
                }
                assert_non_null(buf);
                assert_false(strstr(e->d_name, "file") != NULL);
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                fp = fopen(path, "rb");
                assert_non_null(fp);
                /* In 1 MiB pieces (sparse data files can be large), each searched together
                 * with the end of the previous piece. */
                for (;;) {
                        size_t n = fread(buf + have, 1, (size_t)1 << 20, fp);

                        if (n == 0) {
                                break;
                        }
                        size_t total = have + n;

                        assert_false(contains(buf, total, needle));
                        have = total < keep ? total : keep;
                        memmove(buf, buf + total - have, have);
                }
                fclose(fp);
                free(buf);
        }
        closedir(d);
}

static void rm_dir(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;

        if (d == NULL) {
                return;
        }
        while ((e = readdir(d)) != NULL) {
                char path[512];

                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                        continue;
                }
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                unlink(path);
        }
        closedir(d);
        rmdir(dir);
}

/* Reopens over a fresh directory fd, as a restarted process would. */
static void posix_reopen(const char *dir, struct shield_posix **p, struct shield_volume **v,
                         const uint8_t tag[SHIELD_TAG_SIZE])
{
        const uint8_t *tags[1] = {tag};

        shield_volume_close(*v);
        shield_posix_close(*p);
        assert_int_equal(code(shield_posix_open(dir, false, p)), 0);
        assert_int_equal(code(shield_volume_open(&shield_posix_ops, *p, g_key, tags, 1, 0, v)), 0);
}

static void test_posix_persistence(void **state)
{
        char dir[] = "/tmp/coffer-shield-XXXXXX";
        struct shield_posix *p;
        struct shield_volume *v;
        uint8_t tag[SHIELD_TAG_SIZE];
        size_t big = (1u << 20) + 3;
        uint8_t *want = malloc(big);
        struct shield_file *f;

        (void)state;
        assert_non_null(want);
        assert_non_null(mkdtemp(dir));
        assert_int_equal(code(shield_posix_open(dir, true, &p)), 0);
        assert_int_equal(
            code(shield_volume_open(&shield_posix_ops, p, g_key, NULL, 0, SHIELD_OPEN_CREATE, &v)),
            0);
        for (size_t i = 0; i + sizeof(MARKER) <= big; i += 4000) {
                memcpy(want + i, MARKER, sizeof(MARKER) - 1);
                fill(want + i + sizeof(MARKER) - 1,
                     4000 - sizeof(MARKER) + 1 < big - i - sizeof(MARKER) + 1
                         ? 4000 - sizeof(MARKER) + 1
                         : big - i - sizeof(MARKER) + 1,
                     (uint32_t)i);
        }
        put(v, "a-file", want, big, 0);
        /* Many leaves far apart: more tree nodes than the cache holds (evictions and
         * flushes under pressure), on a sparse backing file. */
        assert_int_equal(code(shield_file_open(v, "sparse-file", SHIELD_O_CREAT, &f)), 0);
        for (uint32_t i = 0; i < SHIELD_CACHE_NODES + 10; i++) {
                assert_int_equal(code(shield_file_pwrite(f, &i, sizeof(i), (uint64_t)i << 18)), 0);
        }
        shield_file_close(f);
        assert_int_equal(code(shield_volume_commit(v, tag)), 0);
        posix_reopen(dir, &p, &v, tag);
        assert_int_equal(code(get_check(v, "a-file", want, big)), 0);
        assert_int_equal(code(shield_file_open(v, "sparse-file", 0, &f)), 0);
        for (uint32_t i = 0; i < SHIELD_CACHE_NODES + 10; i++) {
                uint32_t got = 0;
                size_t n = 0;

                assert_int_equal(
                    code(shield_file_pread(f, &got, sizeof(got), (uint64_t)i << 18, &n)), 0);
                assert_int_equal(got, i);
        }
        shield_file_close(f);
        assert_int_equal(code(shield_volume_verify(v, NULL, NULL)), 0);
        scan_dir_for(dir, MARKER);
        /* A stale manifest.tmp and an orphan backing file (a crash) are cleaned up. */
        {
                char path[512];
                FILE *fp;

                snprintf(path, sizeof(path), "%s/%s", dir, "00112233445566778899aabbccddeeff.d");
                fp = fopen(path, "w");
                assert_non_null(fp);
                fclose(fp);
                posix_reopen(dir, &p, &v, tag);
                assert_int_equal(access(path, F_OK), -1);
        }
        shield_volume_close(v);
        shield_posix_close(p);
        rm_dir(dir);
        free(want);
}

/* ---- tampering -------------------------------------------------------------------- */

#define TSIZE 10000 /* three chunks */

struct tamper {
        struct vol x;
        uint8_t a[TSIZE], b[TSIZE];
        char ad[40], at[40], bd[40], bt[40];
};

static void tamper_setup(struct tamper *t)
{
        vol_new(&t->x);
        fill(t->a, TSIZE, 1);
        fill(t->b, TSIZE, 2);
        put(t->x.v, "a", t->a, TSIZE, 0);
        put(t->x.v, "b", t->b, TSIZE, 0);
        vol_commit_reopen(&t->x);
        backing(t->x.v, "a", 'd', t->ad);
        backing(t->x.v, "a", 't', t->at);
        backing(t->x.v, "b", 'd', t->bd);
        backing(t->x.v, "b", 't', t->bt);
}

static uint8_t *bytes_of(struct shield_mem *m, const char *name, size_t *size)
{
        uint8_t *p;

        assert_int_equal(code(shield_mem_peek(m, name, &p, size)), 0);
        return p;
}

struct problems {
        size_t n;
        int last_code;
        enum shield_where last_where;
};

static void problem_cb(void *ctx, const struct shield_problem *p)
{
        struct problems *pr = ctx;

        pr->n++;
        pr->last_code = p->status.code;
        pr->last_where = p->where;
}

/* After tampering: a fresh volume handle must refuse "a" with want (and keep serving "b"),
 * and verify must report want. */
static void expect_tampered(struct tamper *t, int want)
{
        struct problems pr = {0};

        shield_volume_close(t->x.v);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, t->x.m, g_key,
                                                 (const uint8_t *const[]){t->x.tag}, 1,
                                                 SHIELD_OPEN_RDONLY, &t->x.v)),
                         0);
        assert_int_equal(code(get_check(t->x.v, "a", t->a, TSIZE)), want);
        assert_int_equal(code(get_check(t->x.v, "b", t->b, TSIZE)), 0);
        assert_int_equal(code(shield_volume_verify(t->x.v, problem_cb, &pr)), CF_E_TAMPERED);
        assert_true(pr.n >= 1);
        assert_int_equal(pr.last_code, want);
}

static void test_tamper_chunk_bits(void **state)
{
        struct tamper t;
        size_t n;
        uint8_t *p;

        (void)state;
        tamper_setup(&t);
        for (size_t off = 0; off < 3 * SHIELD_CHUNK_SIZE; off += 61) {
                p = bytes_of(t.x.m, t.ad, &n);
                p[sh_chunk_offset(off / SHIELD_CHUNK_SIZE, 0) + off % SHIELD_CHUNK_SIZE] ^= 0x01;
                expect_tampered(&t, CF_E_MAC_INVALID);
                p = bytes_of(t.x.m, t.ad, &n);
                p[sh_chunk_offset(off / SHIELD_CHUNK_SIZE, 0) + off % SHIELD_CHUNK_SIZE] ^= 0x01;
        }
        assert_int_equal(code(get_check(t.x.v, "a", t.a, TSIZE)), 0);
        vol_done(&t.x);
}

static void test_tamper_node_bits(void **state)
{
        struct tamper t;
        size_t n;
        uint8_t *p;

        (void)state;
        tamper_setup(&t);
        /* Every byte of the root (and only) node of "a", in the slot it uses. */
        for (size_t off = 0; off < SH_NODE_SIZE; off++) {
                p = bytes_of(t.x.m, t.at, &n);
                p[sh_node_offset(0, 0, 0) + off] ^= 0x80;
                expect_tampered(&t, CF_E_TAMPERED);
                p = bytes_of(t.x.m, t.at, &n);
                p[sh_node_offset(0, 0, 0) + off] ^= 0x80;
        }
        vol_done(&t.x);
}

static void test_tamper_manifest_bits(void **state)
{
        struct tamper t;
        size_t n;
        uint8_t *p;

        (void)state;
        tamper_setup(&t);
        shield_volume_close(t.x.v);
        t.x.v = NULL;
        /* With the previous commit's slot in place and the newest tag expected, an edit of
         * the newest slot is reported as the edit (not as a rollback to the older slot). */
        {
                const char *cur = newest_slot(t.x.m);
                const size_t offs[] = {0, SH_MAGIC_SIZE, SH_MAGIC_SIZE + 4, SH_HEADER_SIZE,
                                       SH_HEADER_SIZE + 20};
                const int wants[] = {CF_E_MALFORMED, CF_E_VERSION, CF_E_MAC_INVALID,
                                     CF_E_MAC_INVALID, CF_E_MAC_INVALID};

                /* The checkpoint copied the newest record into `cur`; the journal still
                 * holds that record after the older slot, so an edit of `cur` falls back to
                 * the older slot and the journal: the same state, the same tag. */
                {
                        struct shield_mem *c;
                        struct shield_volume *v = NULL;
                        const uint8_t *tags[1] = {t.x.tag};
                        uint8_t *q, tag[SHIELD_TAG_SIZE];
                        size_t qn;

                        assert_int_equal(code(shield_mem_clone(t.x.m, &c)), 0);
                        q = bytes_of(c, cur, &qn);
                        q[SH_HEADER_SIZE + 3] ^= 1;
                        assert_int_equal(
                            code(shield_volume_open(&shield_mem_ops, c, g_key, tags, 1, 0, &v)), 0);
                        assert_int_equal(code(shield_volume_tag(v, tag)), 0);
                        assert_memory_equal(tag, t.x.tag, sizeof(tag));
                        assert_int_equal(code(get_check(v, "a", t.a, TSIZE)), 0);
                        shield_volume_close(v);
                        shield_mem_free(c);
                }
                /* Without the journal, only the slots remain. */
                assert_int_equal(code(shield_mem_ops.unlink(t.x.m, SH_JOURNAL_NAME)), 0);
                p = bytes_of(t.x.m, cur, &n);
                for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
                        struct shield_volume *v = NULL;

                        p[offs[i]] ^= 0x04;
                        {
                                const uint8_t *tags[1] = {t.x.tag};

                                assert_int_equal(code(shield_volume_open(&shield_mem_ops, t.x.m,
                                                                         g_key, tags, 1, 0, &v)),
                                                 wants[i]);
                        }
                        p[offs[i]] ^= 0x04;
                }
                /* A torn newest record (a crash while it was written) with the previous
                 * commit's tag still expected (prepared): the previous state opens. */
                {
                        struct shield_mem *c;
                        struct shield_volume *v = NULL;
                        uint8_t prev[SHIELD_TAG_SIZE], *q;
                        size_t qn;

                        assert_int_equal(code(shield_mem_clone(t.x.m, &c)), 0);
                        q = bytes_of(c, other_slot(cur), &qn);
                        assert_int_equal(code(cf_sha256(&(struct cf_slice){q, qn}, 1, prev)), 0);
                        q = bytes_of(c, cur, &qn);
                        memset(q + qn / 2, 0, qn - qn / 2);
                        assert_int_equal(code(shield_volume_open(
                                             &shield_mem_ops, c, g_key,
                                             (const uint8_t *const[]){t.x.tag, prev}, 2, 0, &v)),
                                         0);
                        assert_int_equal(code(get_check(v, "a", NULL, 0)), CF_E_NOT_FOUND);
                        shield_volume_close(v);
                        /* The next commit goes to the torn slot, never over the one it
                         * opened. */
                        assert_int_equal(
                            code(shield_volume_open(&shield_mem_ops, c, g_key,
                                                    (const uint8_t *const[]){prev}, 1, 0, &v)),
                            0);
                        put(v, "c", "x", 1, 0);
                        assert_int_equal(code(shield_volume_commit(v, prev)), 0);
                        assert_string_equal(newest_slot(c), cur);
                        shield_volume_close(v);
                        shield_mem_free(c);
                }
                /* Without the other slot, nothing to fall back to. */
                assert_int_equal(code(shield_mem_ops.unlink(t.x.m, other_slot(cur))), 0);
                p = bytes_of(t.x.m, cur, &n);
        }
        for (size_t off = 0; off < n; off++) {
                struct shield_volume *v = NULL;
                int got;

                p[off] ^= 0x04;
                /* Even with "accept any tag" a modified manifest never opens. */
                got = code(shield_volume_open(&shield_mem_ops, t.x.m, g_key, NULL, 0,
                                              SHIELD_OPEN_ACCEPT_ANY_TAG | SHIELD_OPEN_RDONLY, &v));
                if (off < SH_MAGIC_SIZE) {
                        assert_int_equal(got, CF_E_MALFORMED);
                } else if (off < SH_MAGIC_SIZE + 4) {
                        assert_int_equal(got, CF_E_VERSION);
                } else if (off < SH_MAGIC_SIZE + 12 || off >= SH_HEADER_SIZE) {
                        assert_int_equal(got, CF_E_MAC_INVALID);
                } else {
                        assert_int_not_equal(got, 0); /* the length: short, long or too long */
                }
                p[off] ^= 0x04;
        }
        /* Truncated manifests. */
        {
                uint8_t *copy = malloc(n);
                const char *cur = newest_slot(t.x.m);

                assert_non_null(copy);
                memcpy(copy, p, n);
                for (size_t len = 0; len < n; len++) {
                        struct shield_volume *v = NULL;

                        assert_int_equal(code(shield_mem_put(t.x.m, cur, copy, len)), 0);
                        assert_int_not_equal(
                            code(shield_volume_open(&shield_mem_ops, t.x.m, g_key, NULL, 0,
                                                    SHIELD_OPEN_ACCEPT_ANY_TAG, &v)),
                            0);
                }
                /* Leftover bytes after the record (a longer earlier record) are not read. */
                {
                        uint8_t *longer = calloc(1, n + 100);
                        struct shield_volume *v = NULL;
                        const uint8_t *tags[1] = {t.x.tag};

                        assert_non_null(longer);
                        memcpy(longer, copy, n);
                        memset(longer + n, 0xee, 100);
                        assert_int_equal(code(shield_mem_put(t.x.m, cur, longer, n + 100)), 0);
                        assert_int_equal(code(shield_volume_open(&shield_mem_ops, t.x.m, g_key,
                                                                 tags, 1, SHIELD_OPEN_RDONLY, &v)),
                                         0);
                        shield_volume_close(v);
                        free(longer);
                }
                assert_int_equal(code(shield_mem_put(t.x.m, cur, copy, n)), 0);
                free(copy);
        }
        /* A volume of format 1 (a single "manifest" file) is refused, not overwritten. */
        {
                struct shield_volume *v = NULL;

                assert_int_equal(code(shield_mem_put(t.x.m, SH_MANIFEST_LEGACY, "x", 1)), 0);
                assert_int_equal(code(shield_volume_open(&shield_mem_ops, t.x.m, g_key, NULL, 0,
                                                         SHIELD_OPEN_ACCEPT_ANY_TAG, &v)),
                                 CF_E_VERSION);
                assert_int_equal(code(shield_mem_ops.unlink(t.x.m, SH_MANIFEST_LEGACY)), 0);
        }
        /* The tag read without the key names the same record. */
        {
                uint8_t tag[SHIELD_TAG_SIZE];

                assert_int_equal(code(shield_disk_tag(&shield_mem_ops, t.x.m, tag)), 0);
                assert_memory_equal(tag, t.x.tag, SHIELD_TAG_SIZE);
        }
        /* The wrong key. */
        {
                uint8_t key2[SHIELD_KEY_SIZE];
                struct shield_volume *v = NULL;

                memcpy(key2, g_key, sizeof(key2));
                key2[0] ^= 1;
                assert_int_equal(code(shield_volume_open(&shield_mem_ops, t.x.m, key2, NULL, 0,
                                                         SHIELD_OPEN_ACCEPT_ANY_TAG, &v)),
                                 CF_E_MAC_INVALID);
        }
        assert_int_equal(code(vol_open(&t.x, false)), 0);
        vol_done(&t.x);
}

static void swap_chunks(uint8_t *p1, uint64_t c1, uint8_t *p2, uint64_t c2)
{
        uint8_t tmp[SHIELD_CHUNK_SIZE];

        memcpy(tmp, p1 + sh_chunk_offset(c1, 0), sizeof(tmp));
        memcpy(p1 + sh_chunk_offset(c1, 0), p2 + sh_chunk_offset(c2, 0), sizeof(tmp));
        memcpy(p2 + sh_chunk_offset(c2, 0), tmp, sizeof(tmp));
}

static void test_tamper_swaps(void **state)
{
        struct tamper t;
        size_t n;
        uint8_t *pa, *pb;

        (void)state;
        tamper_setup(&t);
        /* Within a file. */
        pa = bytes_of(t.x.m, t.ad, &n);
        swap_chunks(pa, 0, pa, 1);
        expect_tampered(&t, CF_E_MAC_INVALID);
        pa = bytes_of(t.x.m, t.ad, &n);
        swap_chunks(pa, 0, pa, 1);
        /* Across files (same index): b's chunk copied over a's. */
        {
                uint8_t saved[SHIELD_CHUNK_SIZE];

                pa = bytes_of(t.x.m, t.ad, &n);
                pb = bytes_of(t.x.m, t.bd, &n);
                memcpy(saved, pa + sh_chunk_offset(1, 0), sizeof(saved));
                memcpy(pa + sh_chunk_offset(1, 0), pb + sh_chunk_offset(1, 0), sizeof(saved));
                expect_tampered(&t, CF_E_MAC_INVALID);
                pa = bytes_of(t.x.m, t.ad, &n);
                memcpy(pa + sh_chunk_offset(1, 0), saved, sizeof(saved));
        }
        assert_int_equal(code(get_check(t.x.v, "a", t.a, TSIZE)), 0);
        /* Whole tree files swapped between the two files. */
        {
                size_t na, nb;
                uint8_t *ta = bytes_of(t.x.m, t.at, &na), *tb;
                uint8_t *copy = malloc(na);

                assert_non_null(copy);
                memcpy(copy, ta, na);
                tb = bytes_of(t.x.m, t.bt, &nb);
                assert_int_equal(code(shield_mem_put(t.x.m, t.at, tb, nb)), 0);
                expect_tampered(&t, CF_E_TAMPERED);
                assert_int_equal(code(shield_mem_put(t.x.m, t.at, copy, na)), 0);
                free(copy);
        }
        vol_done(&t.x);
}

static void test_tamper_truncate_extend(void **state)
{
        struct tamper t;
        size_t n;
        uint8_t *p, *copy;

        (void)state;
        tamper_setup(&t);
        p = bytes_of(t.x.m, t.ad, &n);
        copy = malloc(n + 100);
        assert_non_null(copy);
        memcpy(copy, p, n);
        /* Truncated into a referenced chunk. */
        assert_int_equal(code(shield_mem_put(t.x.m, t.ad, copy, 5000)), 0);
        expect_tampered(&t, CF_E_TRUNCATED);
        /* Truncated after the chunks: reads still work, verify reports it. */
        {
                struct problems pr = {0};

                assert_int_equal(code(shield_mem_put(t.x.m, t.ad, copy, n - 100)), 0);
                assert_int_equal(code(get_check(t.x.v, "a", t.a, TSIZE)), 0);
                assert_int_equal(code(shield_volume_verify(t.x.v, problem_cb, &pr)), CF_E_TAMPERED);
                assert_int_equal(pr.n, 1);
                assert_int_equal(pr.last_code, CF_E_TRUNCATED);
                assert_int_equal(pr.last_where, SHIELD_AT_FILE);
        }
        /* Extended: appended bytes are never read; verify reports them. */
        {
                struct problems pr = {0};

                memset(copy + n, 'X', 100);
                assert_int_equal(code(shield_mem_put(t.x.m, t.ad, copy, n + 100)), 0);
                assert_int_equal(code(get_check(t.x.v, "a", t.a, TSIZE)), 0);
                assert_int_equal(code(shield_volume_verify(t.x.v, problem_cb, &pr)), CF_E_TAMPERED);
                assert_int_equal(pr.n, 1);
                assert_int_equal(pr.last_code, CF_E_TRAILING);
        }
        /* The tree file truncated. */
        assert_int_equal(code(shield_mem_put(t.x.m, t.ad, copy, n)), 0);
        p = bytes_of(t.x.m, t.at, &n);
        memcpy(copy, p, 100);
        assert_int_equal(code(shield_mem_put(t.x.m, t.at, copy, 100)), 0);
        expect_tampered(&t, CF_E_TRUNCATED);
        free(copy);
        vol_done(&t.x);
}

static void test_tamper_renamed(void **state)
{
        struct tamper t;

        (void)state;
        tamper_setup(&t);
        /* A backing file renamed away: the file is missing. */
        assert_int_equal(code(shield_mem_ops.rename(t.x.m, t.ad, "elsewhere")), 0);
        expect_tampered(&t, CF_E_TAMPERED);
        assert_int_equal(code(shield_mem_ops.rename(t.x.m, "elsewhere", t.ad)), 0);
        /* Two files' data files exchanged by renames. */
        assert_int_equal(code(shield_mem_ops.rename(t.x.m, t.ad, "tmp")), 0);
        assert_int_equal(code(shield_mem_ops.rename(t.x.m, t.bd, t.ad)), 0);
        assert_int_equal(code(shield_mem_ops.rename(t.x.m, "tmp", t.bd)), 0);
        shield_volume_close(t.x.v);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, t.x.m, g_key,
                                                 (const uint8_t *const[]){t.x.tag}, 1,
                                                 SHIELD_OPEN_RDONLY, &t.x.v)),
                         0);
        assert_int_equal(code(get_check(t.x.v, "a", t.a, TSIZE)), CF_E_MAC_INVALID);
        assert_int_equal(code(get_check(t.x.v, "b", t.b, TSIZE)), CF_E_MAC_INVALID);
        vol_done(&t.x);
}

static void test_tamper_old_file_version(void **state)
{
        struct tamper t;
        size_t nd, nt, old_nt;
        uint8_t *pd, *pt, *old_d, *old_t;
        struct shield_file *f;

        (void)state;
        tamper_setup(&t);
        pd = bytes_of(t.x.m, t.ad, &nd);
        old_d = malloc(nd);
        assert_non_null(old_d);
        memcpy(old_d, pd, nd);
        pt = bytes_of(t.x.m, t.at, &nt);
        old_t = malloc(nt);
        assert_non_null(old_t);
        memcpy(old_t, pt, nt);
        old_nt = nt;
        /* A new version of "a" (one chunk changed). */
        fill(t.a + 5000, 10, 77);
        assert_int_equal(code(shield_file_open(t.x.v, "a", 0, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, t.a + 5000, 10, 5000)), 0);
        shield_file_close(f);
        vol_commit_reopen(&t.x);
        assert_int_equal(code(get_check(t.x.v, "a", t.a, TSIZE)), 0);
        pt = bytes_of(t.x.m, t.at, &nt);
        {
                uint8_t *cur_t = malloc(nt), *pt_saved = malloc(nt);
                size_t cur_nt = nt;

                assert_non_null(cur_t);
                assert_non_null(pt_saved);
                memcpy(cur_t, pt, nt);
                memcpy(pt_saved, pt, nt);
                /* The old tree file: it lacks the slot the new root is in. */
                assert_int_equal(code(shield_mem_put(t.x.m, t.at, old_t, old_nt)), 0);
                expect_tampered(&t, CF_E_TRUNCATED);
                /* The old tree file padded to length: the root does not match. */
                {
                        uint8_t *padded = calloc(1, cur_nt);

                        assert_non_null(padded);
                        memcpy(padded, old_t, old_nt);
                        assert_int_equal(code(shield_mem_put(t.x.m, t.at, padded, cur_nt)), 0);
                        expect_tampered(&t, CF_E_TAMPERED);
                        free(padded);
                }
                /* Both slots from the current file, but the old root slot's bytes. */
                memcpy(cur_t + 0, old_t, old_nt);
                memcpy(cur_t + old_nt, old_t, old_nt);
                assert_int_equal(code(shield_mem_put(t.x.m, t.at, cur_t, cur_nt)), 0);
                expect_tampered(&t, CF_E_TAMPERED);
                memcpy(cur_t, pt_saved, cur_nt);
                assert_int_equal(code(shield_mem_put(t.x.m, t.at, cur_t, cur_nt)), 0);
                free(cur_t);
                free(pt_saved);
        }
        /* The old data file with the current tree: the changed chunk is stale. */
        assert_int_equal(code(shield_mem_put(t.x.m, t.ad, old_d, nd)), 0);
        expect_tampered(&t, CF_E_MAC_INVALID);
        free(old_d);
        free(old_t);
        vol_done(&t.x);
}

/* ---- freshness -------------------------------------------------------------------- */

static void test_rollback_whole_volume(void **state)
{
        struct vol x;
        struct shield_mem *old;
        struct shield_volume *v = NULL;
        uint8_t tag1[SHIELD_TAG_SIZE];

        (void)state;
        vol_new(&x);
        put(x.v, "f", "one", 3, 0);
        assert_int_equal(code(shield_volume_commit(x.v, tag1)), 0);
        assert_int_equal(code(shield_mem_clone(x.m, &old)), 0);
        put(x.v, "f", "two", 3, 0);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        assert_memory_not_equal(tag1, x.tag, SHIELD_TAG_SIZE);
        /* The old copy, while cofferd expects the new tag: refused. */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key,
                                                 (const uint8_t *const[]){x.tag}, 1, 0, &v)),
                         CF_E_ROLLBACK);
        /* No tag committed yet, but a manifest exists: refused too. */
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, old, g_key, NULL, 0, SHIELD_OPEN_CREATE, &v)),
            CF_E_ROLLBACK);
        /* The prepared tag is accepted beside the committed one. */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key,
                                                 (const uint8_t *const[]){x.tag, tag1}, 2, 0, &v)),
                         0);
        assert_int_equal(code(get_check(v, "f", (const uint8_t *)"one", 3)), 0);
        shield_volume_close(v);
        /* "Accept any tag" (reinitialisable volumes, tools). */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key, NULL, 0,
                                                 SHIELD_OPEN_ACCEPT_ANY_TAG, &v)),
                         0);
        shield_volume_close(v);
        /* The manifest deleted: not silently a new volume. */
        unlink_slots(old);
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, old, g_key, (const uint8_t *const[]){x.tag}, 1,
                                    SHIELD_OPEN_CREATE, &v)),
            CF_E_ROLLBACK);
        shield_mem_free(old);
        vol_done(&x);
}

struct hook {
        int calls;
        bool fail;
        uint64_t generation;
        uint8_t tag[SHIELD_TAG_SIZE];
};

static cf_status prepare_hook(void *ctx, const uint8_t tag[SHIELD_TAG_SIZE], uint64_t generation)
{
        struct hook *h = ctx;

        h->calls++;
        h->generation = generation;
        memcpy(h->tag, tag, SHIELD_TAG_SIZE);
        return h->fail ? cf_fail(CF_E_REFUSED) : CF_OK;
}

static void test_prepare_hook(void **state)
{
        struct vol x;
        struct hook h = {0};
        uint8_t tag[SHIELD_TAG_SIZE];

        (void)state;
        vol_new(&x);
        shield_volume_set_prepare(x.v, prepare_hook, &h);
        put(x.v, "f", "one", 3, 0);
        h.fail = true;
        assert_int_equal(code(shield_volume_commit(x.v, tag)), CF_E_REFUSED);
        assert_int_equal(h.calls, 1);
        /* The old manifest is still the one on disk. */
        shield_volume_close(x.v);
        assert_int_equal(code(vol_open(&x, false)), 0);
        assert_int_equal(code(shield_volume_stat(x.v, "f", &(struct shield_stat){0})),
                         CF_E_NOT_FOUND);
        shield_volume_set_prepare(x.v, prepare_hook, &h);
        put(x.v, "f", "one", 3, 0);
        h.fail = false;
        assert_int_equal(code(shield_volume_commit(x.v, tag)), 0);
        assert_memory_equal(tag, h.tag, SHIELD_TAG_SIZE);
        /* The hook sees the generation the new manifest carries. */
        assert_int_equal(h.generation, shield_volume_generation(x.v));
        assert_int_equal(h.generation, 2);
        /* No change: no new manifest, no hook call. */
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        assert_memory_equal(tag, x.tag, SHIELD_TAG_SIZE);
        assert_int_equal(h.calls, 2);
        vol_done(&x);
}

/* Crash at every mutating storage call of a commit cycle: the volume then opens at the
 * committed or the prepared tag, passes verify, and holds the old or the new content. */
/* Opens st with the old tag and the prepared one, and checks that it is exactly the old
 * state (a = a1, b present) or the new one (a = a2, b gone), and passes verify. */
static void check_old_or_new(struct shield_mem *st, const uint8_t tag1[SHIELD_TAG_SIZE],
                             const struct hook *h, const uint8_t *a1, const uint8_t *a2,
                             size_t asize)
{
        const uint8_t *tags[2] = {tag1, h->tag};
        struct shield_volume *v = NULL;
        struct shield_file *g;
        uint8_t *got = malloc(asize);
        size_t nread = 0;
        int st_b;

        assert_non_null(got);
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, st, g_key, tags, h->calls ? 2 : 1, 0, &v)), 0);
        assert_int_equal(code(shield_volume_verify(v, NULL, NULL)), 0);
        assert_int_equal(code(shield_file_open(v, "a", 0, &g)), 0);
        assert_int_equal(code(shield_file_pread(g, got, asize, 0, &nread)), 0);
        shield_file_close(g);
        assert_int_equal(nread, asize);
        st_b = code(shield_volume_stat(v, "b", &(struct shield_stat){0}));
        if (memcmp(got, a2, asize) == 0) {
                assert_int_equal(st_b, CF_E_NOT_FOUND);
        } else {
                assert_memory_equal(got, a1, asize);
                assert_int_equal(st_b, 0);
        }
        shield_volume_close(v);
        free(got);
}

/* Stops the storage at every mutating call of a write + unlink + commit (a journal record)
 * + checkpoint cycle, after two earlier journal commits (so the chain is not empty and the
 * checkpoint has work). Each stop is checked twice: as a process crash (every write made
 * stays) and as a machine crash (only what was fsynced stays, and only backing files whose
 * directory entry was synced): the volume opens at the old or the new tag with exactly
 * that content. Then the same with a commit too large for the journal (a checkpoint). */
static void test_crash_consistency(void **state)
{
        static uint8_t a1[20000], a2[20000], big1[5 << 20], big2[5 << 20];
        (void)state;
        fill(a1, sizeof(a1), 10);
        memcpy(a2, a1, sizeof(a2));
        fill(a2 + 3000, 9000, 11);
        fill(big1, sizeof(big1), 12);
        memcpy(big2, big1, sizeof(big2));
        fill(big2 + 100, sizeof(big2) - 200, 13);
        for (int big = 0; big < 2; big++) {
                const uint8_t *o = big ? big1 : a1, *w = big ? big2 : a2;
                size_t asize = big ? sizeof(big1) : sizeof(a1);
                bool completed = false;

                for (size_t n = 0; !completed && n < 2000; n++) {
                        struct vol x;
                        struct hook h = {0};
                        struct shield_file *f;
                        struct shield_mem *crash = NULL;
                        uint8_t tag1[SHIELD_TAG_SIZE];
                        cf_status s;

                        vol_new(&x);
                        put(x.v, "a", o, asize, 0);
                        put(x.v, "b", "bbb", 3, 0);
                        assert_int_equal(code(shield_volume_commit(x.v, tag1)), 0);
                        put(x.v, "b", "BBB", 3, 0);
                        put(x.v, "b", "bbb", 3, 0);
                        assert_int_equal(code(shield_volume_commit(x.v, tag1)), 0);
                        assert_true(big || x.v->jofs > 0);
                        memcpy(x.tag, tag1, sizeof(tag1));
                        shield_volume_set_prepare(x.v, prepare_hook, &h);
                        shield_mem_fail_after(x.m, n);
                        s = shield_file_open(x.v, "a", 0, &f);
                        if (cf_ok(s)) {
                                s = big ? shield_file_pwrite(f, w + 100, asize - 200, 100)
                                        : shield_file_pwrite(f, w + 3000, 9000, 3000);
                                shield_file_close(f);
                        }
                        if (cf_ok(s)) {
                                s = shield_volume_unlink(x.v, "b");
                        }
                        if (cf_ok(s)) {
                                s = shield_volume_commit(x.v, x.tag);
                        }
                        if (cf_ok(s)) {
                                s = shield_volume_checkpoint(x.v);
                        }
                        completed = cf_ok(s);
                        assert_int_equal(code(shield_mem_crash_clone(x.m, &crash)), 0);
                        shield_volume_close(x.v);
                        x.v = NULL;
                        shield_mem_fail_after(x.m, SIZE_MAX);
                        check_old_or_new(crash, tag1, &h, o, w, asize);
                        check_old_or_new(x.m, tag1, &h, o, w, asize);
                        shield_mem_free(crash);
                        vol_done(&x);
                }
                assert_true(completed);
        }
}

/* Storage ops that count the synchronous calls (forwarding to the in-memory storage). */
static size_t g_fsyncs, g_dirsyncs;

static cf_status count_fsync(void *st, void *h)
{
        g_fsyncs++;
        return shield_mem_ops.fsync(st, h);
}

static cf_status count_sync_dir(void *st)
{
        g_dirsyncs++;
        return shield_mem_ops.sync_dir(st);
}

/* A small commit costs one fsync (the journal) and nothing else synchronous; the manifest
 * slots are not written; the tag changes every commit; a machine crash after any commit
 * keeps it (replayed from the journal), and the uncommitted write after it is lost. */
static void test_journal_one_flush(void **state)
{
        struct shield_storage_ops ops = shield_mem_ops;
        struct shield_mem *m, *crash;
        struct shield_volume *v, *w;
        struct shield_file *f;
        uint8_t tag[SHIELD_TAG_SIZE], prev[SHIELD_TAG_SIZE], *slot0, *slot1, line[100];
        uint8_t *want = calloc(1, 100 * 100);
        size_t n0, n1, n0b, n1b;
        uint8_t *s0copy, *s1copy;

        (void)state;
        assert_non_null(want);
        ops.fsync = count_fsync;
        ops.sync_dir = count_sync_dir;
        assert_int_equal(code(shield_mem_new(&m)), 0);
        assert_int_equal(code(shield_volume_open(&ops, m, g_key, NULL, 0, SHIELD_OPEN_CREATE, &v)),
                         0);
        assert_int_equal(code(shield_file_open(v, "log", SHIELD_O_CREAT, &f)), 0);
        assert_int_equal(code(shield_file_pwrite(f, "x", 1, 0)), 0);
        assert_int_equal(code(shield_volume_commit(v, prev)), 0); /* the first: a slot */
        assert_int_equal(code(shield_file_truncate(f, 0)), 0);
        assert_int_equal(code(shield_volume_commit(v, prev)), 0); /* creates the journal */
        slot0 = bytes_of(m, SH_SLOT_NAME_0, &n0);
        s0copy = malloc(n0);
        assert_non_null(s0copy);
        memcpy(s0copy, slot0, n0);
        s1copy = NULL;
        n1 = 0;
        if (cf_ok(shield_mem_peek(m, SH_SLOT_NAME_1, &slot1, &n1))) {
                s1copy = malloc(n1);
                assert_non_null(s1copy);
                memcpy(s1copy, slot1, n1);
        }
        for (unsigned i = 0; i < 100; i++) {
                fill(line, sizeof(line), 100 + i);
                memcpy(want + (size_t)i * 100, line, sizeof(line));
                g_fsyncs = g_dirsyncs = 0;
                assert_int_equal(code(shield_file_pwrite(f, line, sizeof(line), (uint64_t)i * 100)),
                                 0);
                assert_int_equal(code(shield_volume_commit(v, tag)), 0);
                assert_int_equal(g_fsyncs, 1);
                assert_int_equal(g_dirsyncs, 0);
                assert_memory_not_equal(tag, prev, sizeof(tag));
                memcpy(prev, tag, sizeof(tag));
                if (i % 17 == 0 || i == 99) {
                        const uint8_t *tags[1] = {tag};

                        /* An uncommitted write after the commit is lost in a crash. */
                        assert_int_equal(code(shield_file_pwrite(f, "LOST", 4, 100 * 100)), 0);
                        assert_int_equal(code(shield_mem_crash_clone(m, &crash)), 0);
                        assert_int_equal(
                            code(shield_volume_open(&shield_mem_ops, crash, g_key, tags, 1, 0, &w)),
                            0);
                        assert_int_equal(code(get_check(w, "log", want, (size_t)(i + 1) * 100)), 0);
                        assert_int_equal(code(shield_volume_verify(w, NULL, NULL)), 0);
                        shield_volume_close(w);
                        shield_mem_free(crash);
                        assert_int_equal(code(shield_file_truncate(f, (uint64_t)(i + 1) * 100)), 0);
                }
        }
        /* The slots were not written by the journal commits. */
        slot0 = bytes_of(m, SH_SLOT_NAME_0, &n0b);
        assert_int_equal(n0b, n0);
        assert_memory_equal(slot0, s0copy, n0);
        if (s1copy != NULL) {
                slot1 = bytes_of(m, SH_SLOT_NAME_1, &n1b);
                assert_int_equal(n1b, n1);
                assert_memory_equal(slot1, s1copy, n1);
        }
        /* The tag read without the key follows the journal. */
        {
                uint8_t disk[SHIELD_TAG_SIZE];

                assert_int_equal(code(shield_disk_tag(&shield_mem_ops, m, disk)), 0);
                assert_memory_equal(disk, tag, sizeof(disk));
        }
        /* A checkpoint keeps the tag and empties the chain; then the slot holds it. */
        assert_int_equal(code(shield_file_truncate(f, 100 * 100)), 0);
        assert_int_equal(code(shield_volume_commit(v, tag)), 0);
        assert_int_equal(code(shield_volume_checkpoint(v)), 0);
        assert_int_equal(v->jofs, 0);
        assert_int_equal(code(shield_volume_tag(v, prev)), 0);
        assert_memory_equal(prev, tag, sizeof(tag));
        shield_file_close(f);
        shield_volume_close(v);
        {
                const uint8_t *tags[1] = {tag};

                assert_int_equal(code(shield_mem_crash_clone(m, &crash)), 0);
                assert_int_equal(code(shield_mem_ops.unlink(crash, SH_JOURNAL_NAME)), 0);
                assert_int_equal(
                    code(shield_volume_open(&shield_mem_ops, crash, g_key, tags, 1, 0, &w)), 0);
                assert_int_equal(code(get_check(w, "log", want, 100 * 100)), 0);
                shield_volume_close(w);
                shield_mem_free(crash);
        }
        free(s0copy);
        free(s1copy);
        free(want);
        shield_mem_free(m);
}

/* A journal full (or a commit larger than a record may be) becomes a checkpoint: the
 * chain starts again and the state stays readable after a machine crash. */
static void test_journal_wraps(void **state)
{
        struct vol x;
        struct shield_file *f;
        struct shield_mem *crash;
        struct shield_volume *w;
        static uint8_t data[64 << 10];
        uint64_t last_jofs = 0;
        bool wrapped = false;

        (void)state;
        vol_new(&x);
        assert_int_equal(code(shield_file_open(x.v, "f", SHIELD_O_CREAT, &f)), 0);
        for (unsigned i = 0; i < 200 && !wrapped; i++) {
                fill(data, sizeof(data), 300 + i);
                assert_int_equal(code(shield_file_pwrite(f, data, sizeof(data), 0)), 0);
                assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
                wrapped = x.v->jofs < last_jofs;
                last_jofs = x.v->jofs;
                assert_true(x.v->jofs <= SH_JOURNAL_MAX);
        }
        assert_true(wrapped);
        /* Bigger than a record: straight to a checkpoint. */
        {
                uint8_t *big = malloc(SH_JOURNAL_MAX + 4096);

                assert_non_null(big);
                fill(big, SH_JOURNAL_MAX + 4096, 7);
                assert_int_equal(code(shield_file_pwrite(f, big, SH_JOURNAL_MAX + 4096, 0)), 0);
                assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
                assert_int_equal(x.v->jofs, 0);
                assert_int_equal(code(shield_mem_crash_clone(x.m, &crash)), 0);
                {
                        const uint8_t *tags[1] = {x.tag};

                        assert_int_equal(
                            code(shield_volume_open(&shield_mem_ops, crash, g_key, tags, 1, 0, &w)),
                            0);
                }
                assert_int_equal(code(get_check(w, "f", big, SH_JOURNAL_MAX + 4096)), 0);
                shield_volume_close(w);
                shield_mem_free(crash);
                free(big);
        }
        shield_file_close(f);
        vol_done(&x);
}

/* Every tamper kind on the journal: bit flips (header, body, payload), truncation,
 * reordered records, an old record replayed, a journal of another volume or of an earlier
 * epoch of this one. None opens a state the rules do not accept; an edit of a record that
 * chains is reported as such (CF_E_MAC_INVALID / CF_E_TRUNCATED), a chain cut short as a
 * rollback; a record cut or edited at the end opens the previous state when that state's
 * tag is expected (the crash case). */
struct jvol {
        struct vol x;
        uint8_t t[4][SHIELD_TAG_SIZE]; /* t[0]: the slot, t[1..3]: the journal records */
        size_t off[4];                 /* record k starts at off[k-1], ends at off[k] */
        uint8_t *j;                    /* copy of the journal's chain */
};

static void jvol_setup(struct jvol *jv, const uint8_t *key)
{
        const uint8_t *tags[1];

        memset(jv, 0, sizeof(*jv));
        assert_int_equal(code(shield_mem_new(&jv->x.m)), 0);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, jv->x.m, key, NULL, 0,
                                                 SHIELD_OPEN_CREATE, &jv->x.v)),
                         0);
        assert_int_equal(code(shield_volume_commit(jv->x.v, jv->t[0])), 0);
        for (int k = 1; k <= 3; k++) {
                char name[8] = "f0";
                uint8_t data[6000];

                name[1] = (char)('0' + k);
                fill(data, sizeof(data), (uint32_t)k);
                put(jv->x.v, name, data, sizeof(data), 0);
                put(jv->x.v, "f1", data, 100, (uint64_t)k * 50);
                assert_int_equal(code(shield_volume_commit(jv->x.v, jv->t[k])), 0);
                jv->off[k] = jv->x.v->jofs;
        }
        shield_volume_close(jv->x.v);
        jv->x.v = NULL;
        jv->j = malloc(jv->off[3]);
        assert_non_null(jv->j);
        {
                size_t n;
                uint8_t *p = bytes_of(jv->x.m, SH_JOURNAL_NAME, &n);

                assert_true(n >= jv->off[3]);
                memcpy(jv->j, p, jv->off[3]);
        }
        tags[0] = jv->t[3];
        {
                struct shield_volume *v;

                assert_int_equal(code(shield_volume_open(&shield_mem_ops, jv->x.m, key, tags, 1,
                                                         SHIELD_OPEN_RDONLY, &v)),
                                 0);
                shield_volume_close(v);
        }
}

static void jvol_done(struct jvol *jv)
{
        free(jv->j);
        shield_mem_free(jv->x.m);
}

/* Opens with the given expected tags (read-only: the journal is not changed). */
static int jopen(struct shield_mem *m, const uint8_t *t0, const uint8_t *t1,
                 uint8_t got[SHIELD_TAG_SIZE])
{
        const uint8_t *tags[2] = {t0, t1};
        struct shield_volume *v = NULL;
        int c = code(shield_volume_open(&shield_mem_ops, m, g_key, tags, t1 ? 2 : 1,
                                        SHIELD_OPEN_RDONLY, &v));

        if (c == 0) {
                assert_int_equal(code(shield_volume_tag(v, got)), 0);
                shield_volume_close(v);
        }
        return c;
}

static void put_journal(struct shield_mem *m, const uint8_t *p, size_t n)
{
        assert_int_equal(code(shield_mem_put(m, SH_JOURNAL_NAME, p, n)), 0);
}

static void test_journal_tamper(void **state)
{
        struct jvol jv;
        uint8_t got[SHIELD_TAG_SIZE];
        uint8_t *buf;
        size_t end;

        (void)state;
        jvol_setup(&jv, g_key);
        end = jv.off[3];
        buf = malloc(4 * end);
        assert_non_null(buf);
        /* Bit flips: every byte of record 3's header and body, and a sample of its payload
         * and of the earlier records. */
        for (size_t i = 0; i < end; i++) {
                size_t r3 = jv.off[2];
                bool head = i >= r3 && i < r3 + SH_HEADER_SIZE + 200;
                int c;

                if (!head && i % 53 != 0) {
                        continue;
                }
                memcpy(buf, jv.j, end);
                buf[i] ^= 0x10;
                put_journal(jv.x.m, buf, end);
                c = jopen(jv.x.m, jv.t[3], NULL, got);
                assert_true(c == CF_E_MAC_INVALID || c == CF_E_ROLLBACK || c == CF_E_TRUNCATED);
                if (i >= jv.off[2]) {
                        /* The last record damaged: the previous commit's state, when its tag
                         * is expected too (a torn last write). */
                        assert_int_equal(jopen(jv.x.m, jv.t[3], jv.t[2], got), 0);
                        assert_memory_equal(got, jv.t[2], SHIELD_TAG_SIZE);
                }
        }
        /* Truncation at every offset. */
        for (size_t n = 0; n < end; n += (n < 256 ? 1 : 31)) {
                int c;

                put_journal(jv.x.m, jv.j, n);
                c = jopen(jv.x.m, jv.t[3], NULL, got);
                assert_true(c == CF_E_ROLLBACK || c == CF_E_TRUNCATED || c == CF_E_MAC_INVALID);
                if (n >= jv.off[2]) {
                        assert_int_equal(jopen(jv.x.m, jv.t[3], jv.t[2], got), 0);
                        assert_memory_equal(got, jv.t[2], SHIELD_TAG_SIZE);
                }
        }
        /* Reordered: records 1, 3, 2. */
        memcpy(buf, jv.j, jv.off[1]);
        memcpy(buf + jv.off[1], jv.j + jv.off[2], end - jv.off[2]);
        memcpy(buf + jv.off[1] + (end - jv.off[2]), jv.j + jv.off[1], jv.off[2] - jv.off[1]);
        put_journal(jv.x.m, buf, end);
        assert_int_equal(jopen(jv.x.m, jv.t[3], NULL, got), CF_E_ROLLBACK);
        assert_int_equal(jopen(jv.x.m, jv.t[1], NULL, got), 0); /* what still chains */
        assert_memory_equal(got, jv.t[1], SHIELD_TAG_SIZE);
        /* An old record replayed in place of record 3 (record 2 again), or after the end. */
        memcpy(buf, jv.j, jv.off[2]);
        memcpy(buf + jv.off[2], jv.j + jv.off[1], jv.off[2] - jv.off[1]);
        put_journal(jv.x.m, buf, jv.off[2] + (jv.off[2] - jv.off[1]));
        assert_int_equal(jopen(jv.x.m, jv.t[3], NULL, got), CF_E_ROLLBACK);
        memcpy(buf, jv.j, end);
        memcpy(buf + end, jv.j, jv.off[1]);
        put_journal(jv.x.m, buf, end + jv.off[1]);
        assert_int_equal(jopen(jv.x.m, jv.t[3], NULL, got), 0); /* ignored: never chains */
        assert_memory_equal(got, jv.t[3], SHIELD_TAG_SIZE);
        /* Spliced: the journal of another volume (another key), and one record of it in
         * place of record 3. */
        {
                struct jvol other;
                uint8_t key2[SHIELD_KEY_SIZE];

                memcpy(key2, g_key, sizeof(key2));
                key2[5] ^= 0x40;
                jvol_setup(&other, key2);
                put_journal(jv.x.m, other.j, other.off[3]);
                assert_int_equal(jopen(jv.x.m, jv.t[3], NULL, got), CF_E_ROLLBACK);
                memcpy(buf, jv.j, jv.off[2]);
                memcpy(buf + jv.off[2], other.j + other.off[2], other.off[3] - other.off[2]);
                put_journal(jv.x.m, buf, jv.off[2] + other.off[3] - other.off[2]);
                assert_int_equal(jopen(jv.x.m, jv.t[3], NULL, got), CF_E_ROLLBACK);
                jvol_done(&other);
        }
        /* A record spliced with its header's prev field set to follow record 2: it does
         * not authenticate (prev is authenticated data). */
        memcpy(buf, jv.j, end);
        buf[jv.off[2] + SH_HDR_OFF_PREV] ^= 1;
        put_journal(jv.x.m, buf, end);
        assert_int_equal(jopen(jv.x.m, jv.t[3], NULL, got), CF_E_ROLLBACK);
        /* The journal of an earlier epoch after a checkpoint: nothing chains to the new
         * base, so the checkpointed state opens (the old records are never replayed). */
        put_journal(jv.x.m, jv.j, end);
        {
                struct shield_volume *v;
                const uint8_t *tags[1] = {jv.t[3]};
                uint8_t t4[SHIELD_TAG_SIZE];

                assert_int_equal(
                    code(shield_volume_open(&shield_mem_ops, jv.x.m, g_key, tags, 1, 0, &v)), 0);
                put(v, "g", "new", 3, 0);
                assert_int_equal(code(shield_volume_commit(v, t4)), 0);
                assert_int_equal(code(shield_volume_checkpoint(v)), 0);
                shield_volume_close(v);
                put_journal(jv.x.m, jv.j, end); /* the old chain back */
                assert_int_equal(jopen(jv.x.m, t4, NULL, got), 0);
                assert_memory_equal(got, t4, SHIELD_TAG_SIZE);
                /* Read-write: nothing of the old chain is replayed onto the new base. */
                {
                        const uint8_t *t4s[1] = {t4};

                        assert_int_equal(
                            code(shield_volume_open(&shield_mem_ops, jv.x.m, g_key, t4s, 1, 0, &v)),
                            0);
                        assert_int_equal(code(shield_volume_verify(v, NULL, NULL)), 0);
                        assert_int_equal(code(get_check(v, "g", (const uint8_t *)"new", 3)), 0);
                        shield_volume_close(v);
                }
                /* (The old slot with the old chain is still the older state t3: accepted
                 * only while t3 is expected, like any older state.) */
        }
        free(buf);
        jvol_done(&jv);
}

/* ---- decoders --------------------------------------------------------------------- */

static struct sh_inode *mk_inode(const char *name, enum shield_type type, uint8_t idbyte)
{
        struct sh_inode *ino = calloc(1, sizeof(*ino));

        assert_non_null(ino);
        ino->name = strdup(name);
        assert_non_null(ino->name);
        ino->type = type;
        if (type == SHIELD_TYPE_FILE) {
                memset(ino->id, idbyte, sizeof(ino->id));
                ino->size = 5000;
                ino->version = 3;
                ino->height = 1;
                ino->root.version = 2;
                ino->root.flags = SH_ENTRY_F_PRESENT | SH_ENTRY_F_SLOT;
                memset(ino->root.data, 0xab, sizeof(ino->root.data));
        }
        return ino;
}

static void encode3(struct cf_buf *b, struct sh_inode *i0, struct sh_inode *i1, struct sh_inode *i2)
{
        struct sh_inode *arr[3] = {i0, i1, i2};
        struct sh_manifest m = {7, arr, 3, 3};

        cf_buf_init(b, 1 << 20, false);
        assert_int_equal(code(sh_manifest_encode(&m, b)), 0);
}

static void free3(struct sh_inode *i0, struct sh_inode *i1, struct sh_inode *i2)
{
        sh_inode_free(i0);
        sh_inode_free(i1);
        sh_inode_free(i2);
}

static void test_manifest_decode(void **state)
{
        struct sh_inode *d = mk_inode("d", SHIELD_TYPE_DIR, 0);
        struct sh_inode *f1 = mk_inode("d/x", SHIELD_TYPE_FILE, 1);
        struct sh_inode *f2 = mk_inode("e", SHIELD_TYPE_FILE, 2);
        struct sh_manifest m;
        struct cf_buf b;

        (void)state;
        encode3(&b, d, f1, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), 0);
        assert_int_equal(m.n, 3);
        assert_int_equal(m.generation, 7);
        assert_string_equal(m.ino[1]->name, "d/x");
        assert_int_equal(m.ino[1]->size, 5000);
        assert_memory_equal(&m.ino[2]->root, &f2->root, sizeof(f2->root));
        sh_manifest_done(&m);
        /* Truncation at every offset, and one trailing byte. */
        for (size_t len = 0; len < b.size; len++) {
                assert_int_not_equal(code(sh_manifest_decode(cf_slice_make(b.ptr, len), &m)), 0);
        }
        assert_int_equal(code(cf_buf_append(&b, "", 1)), 0);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_TRAILING);
        b.size--;
        /* Unknown format version. */
        b.ptr[0] = 2;
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_VERSION);
        b.ptr[0] = 1;
        /* A huge entry count. */
        b.ptr[12] = 0xff;
        b.ptr[13] = 0xff;
        b.ptr[14] = 0xff;
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_LIMIT);
        cf_buf_done(&b);
        /* Out of order; parent missing or not a directory; duplicate ids; bad sizes. */
        encode3(&b, f1, d, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_MALFORMED);
        cf_buf_done(&b);
        d->type = SHIELD_TYPE_FILE;
        memset(d->id, 9, sizeof(d->id));
        encode3(&b, d, f1, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_MALFORMED);
        cf_buf_done(&b);
        d->type = SHIELD_TYPE_DIR;
        memset(f2->id, 1, sizeof(f2->id));
        encode3(&b, d, f1, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_MALFORMED);
        cf_buf_done(&b);
        memset(f2->id, 2, sizeof(f2->id));
        f2->size = 64u * 4096 + 1; /* more than a height-1 tree holds */
        encode3(&b, d, f1, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_MALFORMED);
        cf_buf_done(&b);
        f2->size = 10;
        f2->root.version = 4; /* newer than the file */
        encode3(&b, d, f1, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_MALFORMED);
        cf_buf_done(&b);
        f2->root.version = 2;
        free(f2->name);
        f2->name = strdup("a/../b");
        encode3(&b, d, f1, f2);
        assert_int_equal(code(sh_manifest_decode(cf_buf_slice(&b), &m)), CF_E_MALFORMED);
        cf_buf_done(&b);
        free3(d, f1, f2);
}

static void test_node_decode(void **state)
{
        struct sh_entry e[SH_FANOUT], out[SH_FANOUT];
        uint8_t bytes[SH_NODE_SIZE];

        (void)state;
        memset(e, 0, sizeof(e));
        fill(e[3].data, 28, 3);
        e[3].version = 5;
        e[3].flags = SH_ENTRY_F_PRESENT;
        e[9].version = 2; /* a hole with history */
        e[9].flags = SH_ENTRY_F_SLOT;
        sh_node_encode(e, bytes);
        assert_int_equal(code(sh_node_decode(cf_slice_make(bytes, sizeof(bytes)), true, out)), 0);
        assert_memory_equal(&out[3], &e[3], sizeof(e[3]));
        assert_memory_equal(&out[9], &e[9], sizeof(e[9]));
        /* A hole with history is not valid in an inner node; a chunk's padding must be 0. */
        assert_int_equal(code(sh_node_decode(cf_slice_make(bytes, sizeof(bytes)), false, out)),
                         CF_E_MALFORMED);
        for (size_t len = 0; len < sizeof(bytes); len += 7) {
                assert_int_not_equal(code(sh_node_decode(cf_slice_make(bytes, len), true, out)), 0);
        }
        {
                static const size_t bad[] = {3 * SH_ENTRY_SIZE + 30, /* chunk padding */
                                             3 * SH_ENTRY_SIZE + 41, /* reserved */
                                             3 * SH_ENTRY_SIZE + 40, /* flags: bit 2 */
                                             0,                      /* data, version 0 */
                                             9 * SH_ENTRY_SIZE + 5}; /* data in a hole */

                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        bytes[bad[i]] ^= 0x04;
                        assert_int_equal(
                            code(sh_node_decode(cf_slice_make(bytes, sizeof(bytes)), true, out)),
                            CF_E_MALFORMED);
                        bytes[bad[i]] ^= 0x04;
                }
        }
}

/* Records position p as taken; it must be in range and new. (The explicit range check
 * also shows the compiler that seen[p] is in bounds.) */
static void mark_unique(uint8_t *seen, size_t max, uint64_t p)
{
        assert_true(p < max);
        if (p < max) {
                assert_false(seen[p]);
                seen[p] = 1;
        }
}

static void test_layout(void **state)
{
        /* Positions of nodes are unique and stable; check a 3-level sample exhaustively. */
        size_t max = 3 * 4096 * 2;
        uint8_t *seen = calloc(1, max);

        (void)state;
        assert_non_null(seen);
        assert_int_equal(sh_node_pos(0, 0), 0);
        assert_int_equal(sh_node_pos(1, 0), 1);
        assert_int_equal(sh_node_pos(0, 1), 2);
        assert_int_equal(sh_node_pos(2, 0), 65);
        assert_int_equal(sh_node_pos(0, 64), 66);
        assert_int_equal(sh_node_pos(1, 1), 67);
        for (uint64_t i = 0; i < 3 * 4096; i++) {
                mark_unique(seen, max, sh_node_pos(0, i));
        }
        for (uint64_t i = 0; i < 3 * 64; i++) {
                mark_unique(seen, max, sh_node_pos(1, i));
        }
        for (uint64_t i = 0; i < 3; i++) {
                mark_unique(seen, max, sh_node_pos(2, i));
        }
        free(seen);
        assert_int_equal(sh_height_for(0), 0);
        assert_int_equal(sh_height_for(1), 1);
        assert_int_equal(sh_height_for(64), 1);
        assert_int_equal(sh_height_for(65), 2);
        assert_int_equal(sh_chunk_offset(0, 1), 64 * 4096);
        assert_int_equal(sh_chunk_offset(65, 0), (2 * 64 + 1) * 4096);
        assert_int_equal(sh_data_extent(1), 2 * 64 * 4096);
}

/* ---- threads ---------------------------------------------------------------------- */

struct worker {
        struct shield_volume *v;
        int id;
};

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        char path[16];
        struct shield_file *f;
        uint8_t buf[1000];

        snprintf(path, sizeof(path), "w%d", w->id);
        if (!cf_ok(shield_file_open(w->v, path, SHIELD_O_CREAT, &f))) {
                return (void *)1;
        }
        for (uint32_t i = 0; i < 100; i++) {
                fill(buf, sizeof(buf), i + (uint32_t)w->id * 1000);
                if (!cf_ok(shield_file_pwrite(f, buf, sizeof(buf), (uint64_t)i * 997))) {
                        shield_file_close(f);
                        return (void *)1;
                }
                if (w->id == 0 && i % 10 == 0) {
                        uint8_t tag[SHIELD_TAG_SIZE];

                        if (!cf_ok(shield_volume_commit(w->v, tag))) {
                                shield_file_close(f);
                                return (void *)1;
                        }
                }
        }
        shield_file_close(f);
        return NULL;
}

static void test_threads(void **state)
{
        struct vol x;
        pthread_t th[4];
        struct worker w[4];

        (void)state;
        vol_new(&x);
        for (int i = 0; i < 4; i++) {
                w[i] = (struct worker){x.v, i};
                assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                void *r;

                assert_int_equal(pthread_join(th[i], &r), 0);
                assert_null(r);
        }
        vol_commit_reopen(&x);
        for (int i = 0; i < 4; i++) {
                char path[16];
                uint8_t buf[1000], got[1000];
                struct shield_file *f;
                size_t n;

                snprintf(path, sizeof(path), "w%d", i);
                assert_int_equal(code(shield_file_open(x.v, path, 0, &f)), 0);
                fill(buf, sizeof(buf), 99 + (uint32_t)i * 1000);
                assert_int_equal(code(shield_file_pread(f, got, sizeof(got), 99 * 997, &n)), 0);
                assert_memory_equal(got, buf, sizeof(buf));
                shield_file_close(f);
        }
        assert_int_equal(code(shield_volume_verify(x.v, NULL, NULL)), 0);
        vol_done(&x);
}

/* Batched freshness: a manifest newer than cofferd's generation is accepted only with
 * SHIELD_OPEN_ACCEPT_NEWER; an older one never. */
static void test_open_newer_generation(void **state)
{
        struct vol x;
        struct shield_mem *old;
        struct shield_volume *v = NULL;
        const uint8_t *none[1] = {NULL};
        uint8_t known[SHIELD_TAG_SIZE];
        uint64_t g_known;

        (void)state;
        vol_new(&x);
        put(x.v, "f", "one", 3, 0);
        assert_int_equal(code(shield_volume_commit(x.v, known)), 0);
        assert_int_equal(code(shield_volume_checkpoint(x.v)), 0); /* states in the slots */
        g_known = shield_volume_generation(x.v);
        assert_int_equal(code(shield_mem_clone(x.m, &old)), 0);
        put(x.v, "f", "two", 3, 0);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        assert_int_equal(code(shield_volume_checkpoint(x.v)), 0);
        assert_int_equal(shield_volume_generation(x.v), g_known + 1);
        shield_volume_close(x.v);
        x.v = NULL;
        /* cofferd knows `known` (generation g_known); the disk is one commit newer. Without
         * the flag the newer slot is not accepted: the older slot, which holds `known`,
         * opens (the newest state the rules accept). Without that slot: a rollback. */
        const uint8_t *tags[1] = {known};
        assert_int_equal(
            code(shield_volume_open_ex(&shield_mem_ops, x.m, g_key, tags, 1, g_known, 0, &v)), 0);
        assert_int_equal(code(get_check(v, "f", (const uint8_t *)"one", 3)), 0);
        shield_volume_close(v);
        {
                struct shield_mem *c;

                assert_int_equal(code(shield_mem_clone(x.m, &c)), 0);
                assert_int_equal(code(shield_mem_ops.unlink(c, other_slot(newest_slot(c)))), 0);
                assert_int_equal(
                    code(shield_volume_open_ex(&shield_mem_ops, c, g_key, tags, 1, g_known, 0, &v)),
                    CF_E_ROLLBACK);
                shield_mem_free(c);
        }
        assert_int_equal(code(shield_volume_open_ex(&shield_mem_ops, x.m, g_key, tags, 1, g_known,
                                                    SHIELD_OPEN_ACCEPT_NEWER, &v)),
                         0);
        assert_int_equal(code(get_check(v, "f", (const uint8_t *)"two", 3)), 0);
        assert_int_equal(shield_volume_generation(v), g_known + 1);
        shield_volume_close(v);
        /* Not newer than what cofferd has recorded: refused even with the flag. */
        assert_int_equal(code(shield_volume_open_ex(&shield_mem_ops, x.m, g_key, none, 0,
                                                    g_known + 1, SHIELD_OPEN_ACCEPT_NEWER, &v)),
                         CF_E_ROLLBACK);
        /* The old copy once cofferd heard of the newer state: refused. */
        const uint8_t *newest[1] = {x.tag};
        assert_int_equal(code(shield_volume_open_ex(&shield_mem_ops, old, g_key, newest, 1,
                                                    g_known + 1, SHIELD_OPEN_ACCEPT_NEWER, &v)),
                         CF_E_ROLLBACK);
        /* The expected tag itself still opens. */
        assert_int_equal(code(shield_volume_open_ex(&shield_mem_ops, old, g_key, tags, 1, g_known,
                                                    SHIELD_OPEN_ACCEPT_NEWER, &v)),
                         0);
        shield_volume_close(v);
        /* A modified manifest is never "newer": authentication comes first. */
        uint8_t *ptr;
        size_t size;
        assert_int_equal(code(shield_mem_ops.unlink(x.m, other_slot(newest_slot(x.m)))), 0);
        assert_int_equal(code(shield_mem_peek(x.m, newest_slot(x.m), &ptr, &size)), 0);
        ptr[size - 1] ^= 1;
        assert_int_equal(code(shield_volume_open_ex(&shield_mem_ops, x.m, g_key, tags, 1, 0,
                                                    SHIELD_OPEN_ACCEPT_NEWER, &v)),
                         CF_E_MAC_INVALID);
        /* shield_volume_open refuses the flag (it has no generation to compare with). */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key, tags, 1,
                                                 SHIELD_OPEN_ACCEPT_NEWER, &v)),
                         CF_E_INVALID_ARG);
        shield_mem_free(old);
        shield_mem_free(x.m);
}

/* Reinitialisable volumes: a deleted volume opens empty, an old one is still a rollback;
 * a reset removes every backing file and starts empty. */
static void test_open_reinit_and_reset(void **state)
{
        struct vol x;
        struct shield_mem *old;
        struct shield_volume *v = NULL;
        uint8_t tag1[SHIELD_TAG_SIZE];
        const unsigned reinit = SHIELD_OPEN_CREATE | SHIELD_OPEN_ACCEPT_EMPTY;

        (void)state;
        vol_new(&x);
        put(x.v, "f", "one", 3, 0);
        assert_int_equal(code(shield_volume_commit(x.v, tag1)), 0);
        assert_int_equal(code(shield_mem_clone(x.m, &old)), 0);
        put(x.v, "f", "two", 3, 0);
        assert_int_equal(code(shield_volume_commit(x.v, x.tag)), 0);
        const uint8_t *tags[1] = {x.tag};
        /* An older copy: still a rollback for a reinitialisable volume. */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key, tags, 1, reinit, &v)),
                         CF_E_ROLLBACK);
        /* Deleted (no manifest): a new empty volume, and its orphans are cleaned up. */
        unlink_slots(old);
        assert_true(shield_mem_count(old) > 0);
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, old, g_key, tags, 1, SHIELD_OPEN_CREATE, &v)),
            CF_E_ROLLBACK);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key, tags, 1, reinit, &v)),
                         0);
        assert_int_equal(code(shield_volume_stat(v, "f", &(struct shield_stat){0})),
                         CF_E_NOT_FOUND);
        assert_int_equal(shield_mem_count(old), 0);
        shield_volume_close(v);
        /* Flags that make no sense together. */
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, old, g_key, tags, 1,
                                                 SHIELD_OPEN_ACCEPT_EMPTY, &v)),
                         CF_E_INVALID_ARG);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x.m, g_key, tags, 1,
                                                 SHIELD_OPEN_CREATE | SHIELD_OPEN_RESET, &v)),
                         CF_E_INVALID_ARG);
        /* A reset with a new key: the old volume (a foreign manifest) goes, a new one starts. */
        uint8_t key2[SHIELD_KEY_SIZE];
        memset(key2, 0x5a, sizeof(key2));
        shield_volume_close(x.v);
        x.v = NULL;
        assert_int_equal(
            code(shield_volume_open(&shield_mem_ops, x.m, key2, NULL, 0, SHIELD_OPEN_CREATE, &v)),
            CF_E_MAC_INVALID);
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x.m, key2, NULL, 0,
                                                 SHIELD_OPEN_CREATE | SHIELD_OPEN_RESET, &v)),
                         0);
        assert_int_equal(shield_mem_count(x.m), 0);
        assert_int_equal(code(shield_volume_stat(v, "f", &(struct shield_stat){0})),
                         CF_E_NOT_FOUND);
        put(v, "g", "new", 3, 0);
        assert_int_equal(code(shield_volume_commit(v, tag1)), 0);
        assert_int_equal(shield_volume_generation(v), 1);
        shield_volume_close(v);
        const uint8_t *t2[1] = {tag1};
        assert_int_equal(code(shield_volume_open(&shield_mem_ops, x.m, key2, t2, 1, 0, &v)), 0);
        assert_int_equal(code(get_check(v, "g", (const uint8_t *)"new", 3)), 0);
        shield_volume_close(v);
        shield_mem_free(old);
        shield_mem_free(x.m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_roundtrip_sizes),
            cmocka_unit_test(test_overwrite_and_unaligned),
            cmocka_unit_test(test_sparse_and_truncate),
            cmocka_unit_test(test_namespace),
            cmocka_unit_test(test_unlink_open_file),
            cmocka_unit_test(test_no_plaintext_mem),
            cmocka_unit_test(test_posix_persistence),
            cmocka_unit_test(test_tamper_chunk_bits),
            cmocka_unit_test(test_tamper_node_bits),
            cmocka_unit_test(test_tamper_manifest_bits),
            cmocka_unit_test(test_tamper_swaps),
            cmocka_unit_test(test_tamper_truncate_extend),
            cmocka_unit_test(test_tamper_renamed),
            cmocka_unit_test(test_tamper_old_file_version),
            cmocka_unit_test(test_rollback_whole_volume),
            cmocka_unit_test(test_prepare_hook),
            cmocka_unit_test(test_crash_consistency),
            cmocka_unit_test(test_journal_one_flush),
            cmocka_unit_test(test_journal_wraps),
            cmocka_unit_test(test_journal_tamper),
            cmocka_unit_test(test_manifest_decode),
            cmocka_unit_test(test_node_decode),
            cmocka_unit_test(test_layout),
            cmocka_unit_test(test_threads),
            cmocka_unit_test(test_open_newer_generation),
            cmocka_unit_test(test_open_reinit_and_reset),
        };

        if (!cf_ok(cf_mem_init()) || !cf_ok(cf_crypto_init()) ||
            !cf_ok(cf_random(g_key, sizeof(g_key)))) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
