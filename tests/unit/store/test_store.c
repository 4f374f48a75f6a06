/* Unit tests of src/store/store.c: the sealing layer over the SQLite backend.
 *
 * Tampering tests edit the database file with the sqlite3 C API directly, as a hostile host
 * would, and expect CF_E_TAMPERED, never a served value. Each test gets a fresh directory
 * made with mkdtemp under /tmp and removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "store/store.h"

struct fixture {
        char dir[64];
        char path[96];
        uint8_t key[STORE_DATA_KEY_SIZE];
        struct store *s;
};

static void remove_file(const struct fixture *f, const char *suffix)
{
        char p[128];

        snprintf(p, sizeof(p), "%s%s", f->path, suffix);
        unlink(p);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
        assert_int_equal(cf_random(f->key, sizeof(f->key)).code, 0);
        assert_int_equal(store_open_sqlite(f->path, f->key, &f->s).code, 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        store_close(f->s);
        remove_file(f, "");
        remove_file(f, "-wal");
        remove_file(f, "-shm");
        assert_int_equal(rmdir(f->dir), 0);
        cf_wipe(f->key, sizeof(f->key));
        free(f);
        return 0;
}

static void reopen(struct fixture *f)
{
        store_close(f->s);
        f->s = NULL;
        assert_int_equal(store_open_sqlite(f->path, f->key, &f->s).code, 0);
}

static void put_str(struct fixture *f, const char *table, const char *key, uint64_t v,
                    const char *value)
{
        assert_int_equal(store_put(f->s, table, key, v, cf_slice_str(value)).code, 0);
}

/* Reads a value and checks it, or checks the failure code when want_code != 0. */
static void expect_get(struct fixture *f, const char *table, const char *key, uint64_t v,
                       int want_code, const char *want_value)
{
        struct cf_buf out;
        uint64_t got_v = 0;
        cf_status st;

        cf_buf_init(&out, STORE_VALUE_MAX, true);
        st = store_get(f->s, table, key, v, &out, &got_v);
        assert_int_equal(st.code, want_code);
        if (want_code == 0) {
                assert_int_equal(out.size, strlen(want_value));
                assert_memory_equal(out.ptr, want_value, out.size);
                if (v != 0) {
                        assert_true(got_v == v);
                }
        } else {
                /* Nothing is released on failure. */
                assert_int_equal(out.size, 0);
        }
        cf_buf_done(&out);
}

/* Direct access to the file, as the host could do. */
static sqlite3 *raw_open(const struct fixture *f)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        return db;
}

static void raw_exec(const struct fixture *f, const char *sql)
{
        sqlite3 *db = raw_open(f);

        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void raw_get(const struct fixture *f, const char *table, const char *key, int64_t v,
                    struct cf_buf *out)
{
        sqlite3 *db = raw_open(f);
        sqlite3_stmt *stmt = NULL;

        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT value FROM kv WHERE tbl=?1 AND key=?2 AND "
                                            "version=?3",
                                            -1, &stmt, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, v);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(
            cf_buf_append(out, sqlite3_column_blob(stmt, 0), (size_t)sqlite3_column_bytes(stmt, 0))
                .code,
            0);
        sqlite3_finalize(stmt);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void raw_set(const struct fixture *f, const char *table, const char *key, int64_t v,
                    struct cf_slice blob)
{
        sqlite3 *db = raw_open(f);
        sqlite3_stmt *stmt = NULL;

        assert_int_equal(sqlite3_prepare_v2(db,
                                            "UPDATE kv SET value=?4 WHERE tbl=?1 AND key=?2 AND "
                                            "version=?3",
                                            -1, &stmt, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, v);
        sqlite3_bind_blob(stmt, 4, blob.size ? (const void *)blob.ptr : (const void *)"",
                          (int)blob.size, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
        assert_int_equal(sqlite3_changes(db), 1);
        sqlite3_finalize(stmt);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_round_trip(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;
        uint64_t v = 0;

        put_str(f, "secrets", "app/db-password", 1, "hunter2");
        expect_get(f, "secrets", "app/db-password", 0, 0, "hunter2");
        expect_get(f, "secrets", "app/db-password", 1, 0, "hunter2");
        /* An empty value is a value. */
        put_str(f, "secrets", "empty", 1, "");
        expect_get(f, "secrets", "empty", 0, 0, "");
        /* Binary values with NULs survive. */
        cf_buf_init(&out, 8, false);
        assert_int_equal(store_put(f->s, "bin", "k", 1, cf_slice_make("\0\1\2\0", 4)).code, 0);
        assert_int_equal(store_get(f->s, "bin", "k", 0, &out, &v).code, 0);
        assert_true(v == 1);
        assert_int_equal(out.size, 4);
        assert_memory_equal(out.ptr, "\0\1\2\0", 4);
        /* store_get appends: the caller's buffer keeps its bytes. */
        assert_int_equal(store_get(f->s, "bin", "k", 1, &out, NULL).code, 0);
        assert_int_equal(out.size, 8);
        /* out->max bounds what may be read, and nothing is appended on failure. */
        assert_int_equal(store_get(f->s, "bin", "k", 1, &out, NULL).code, CF_E_LIMIT);
        assert_int_equal(out.size, 8);
        cf_buf_done(&out);
}

static void test_versions(void **state)
{
        struct fixture *f = *state;
        uint64_t vs[4] = {0}, latest = 0;
        size_t n = 99;

        put_str(f, "t", "k", 1, "one");
        put_str(f, "t", "k", 2, "two");
        put_str(f, "t", "k", 3, "three");
        assert_int_equal(store_latest(f->s, "t", "k", &latest).code, 0);
        assert_true(latest == 3);
        expect_get(f, "t", "k", 0, 0, "three");
        expect_get(f, "t", "k", 1, 0, "one");
        expect_get(f, "t", "k", 2, 0, "two");
        assert_int_equal(store_versions(f->s, "t", "k", vs, 4, &n).code, 0);
        assert_int_equal(n, 3);
        assert_true(vs[0] == 1 && vs[1] == 2 && vs[2] == 3);
        assert_int_equal(store_versions(f->s, "t", "k", vs, 3, &n).code, 0);
        assert_int_equal(n, 3);
        n = 99;
        assert_int_equal(store_versions(f->s, "t", "k", vs, 2, &n).code, CF_E_LIMIT);
        assert_int_equal(n, 99);
        assert_int_equal(store_versions(f->s, "t", "missing", vs, 4, &n).code, 0);
        assert_int_equal(n, 0);
        /* Keys and tables are separate namespaces. */
        put_str(f, "t2", "k", 1, "other table");
        expect_get(f, "t", "k", 0, 0, "three");
        expect_get(f, "t2", "k", 0, 0, "other table");
}

static void test_conflicts(void **state)
{
        struct fixture *f = *state;
        struct cf_slice v = cf_slice_str("x");

        assert_int_equal(store_put(f->s, "t", "k", 0, v).code, CF_E_INVALID_ARG);
        assert_int_equal(store_put(f->s, "t", "k", 2, v).code, CF_E_CONFLICT);
        assert_int_equal(store_put(f->s, "t", "k", 1, v).code, 0);
        assert_int_equal(store_put(f->s, "t", "k", 1, v).code, CF_E_EXISTS);
        assert_int_equal(store_put(f->s, "t", "k", 3, v).code, CF_E_CONFLICT);
        assert_int_equal(store_put(f->s, "t", "k", UINT64_MAX, v).code, CF_E_LIMIT);
        assert_int_equal(store_put(f->s, "t", "k", 2, v).code, 0);
        assert_int_equal(store_put(f->s, "t", "k", 1, v).code, CF_E_EXISTS);
        /* The failed puts changed nothing. */
        expect_get(f, "t", "k", 0, 0, "x");
        expect_get(f, "t", "k", 3, CF_E_NOT_FOUND, NULL);
}

static void test_not_found(void **state)
{
        struct fixture *f = *state;
        uint64_t v = 77;

        expect_get(f, "t", "nothing", 0, CF_E_NOT_FOUND, NULL);
        expect_get(f, "t", "nothing", 1, CF_E_NOT_FOUND, NULL);
        assert_int_equal(store_latest(f->s, "t", "nothing", &v).code, CF_E_NOT_FOUND);
        assert_true(v == 77);
        put_str(f, "t", "k", 1, "v");
        expect_get(f, "t", "k", 2, CF_E_NOT_FOUND, NULL);
        expect_get(f, "t", "k", UINT64_MAX, CF_E_NOT_FOUND, NULL);
        expect_get(f, "u", "k", 0, CF_E_NOT_FOUND, NULL);
}

static void test_value_limit(void **state)
{
        struct fixture *f = *state;
        uint8_t *big = calloc(1, (size_t)STORE_VALUE_MAX + 1);
        struct cf_buf out;

        assert_non_null(big);
        big[7] = 0x5a;
        assert_int_equal(
            store_put(f->s, "t", "big", 1, cf_slice_make(big, (size_t)STORE_VALUE_MAX + 1)).code,
            CF_E_LIMIT);
        assert_int_equal(store_put(f->s, "t", "big", 1, cf_slice_make(big, STORE_VALUE_MAX)).code,
                         0);
        cf_buf_init(&out, STORE_VALUE_MAX, false);
        assert_int_equal(store_get(f->s, "t", "big", 1, &out, NULL).code, 0);
        assert_int_equal(out.size, STORE_VALUE_MAX);
        assert_memory_equal(out.ptr, big, STORE_VALUE_MAX);
        cf_buf_done(&out);
        free(big);
}

static void test_persistence(void **state)
{
        struct fixture *f = *state;
        uint64_t v = 0;

        put_str(f, "t", "a", 1, "alpha");
        put_str(f, "t", "a", 2, "alpha2");
        reopen(f);
        expect_get(f, "t", "a", 0, 0, "alpha2");
        expect_get(f, "t", "a", 1, 0, "alpha");
        assert_int_equal(store_latest(f->s, "t", "a", &v).code, 0);
        assert_true(v == 2);
        put_str(f, "t", "a", 3, "alpha3");
        reopen(f);
        expect_get(f, "t", "a", 0, 0, "alpha3");
}

static void test_wrong_data_key(void **state)
{
        struct fixture *f = *state;
        uint8_t other[STORE_DATA_KEY_SIZE];

        put_str(f, "t", "a", 1, "alpha");
        store_close(f->s);
        memcpy(other, f->key, sizeof(other));
        other[31] ^= 1;
        assert_int_equal(store_open_sqlite(f->path, other, &f->s).code, 0);
        expect_get(f, "t", "a", 0, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "a", 1, CF_E_TAMPERED, NULL);
}

static void test_tamper_flip_every_byte(void **state)
{
        struct fixture *f = *state;
        struct cf_buf orig, mod;

        put_str(f, "t", "a", 1, "a secret value");
        store_close(f->s);
        f->s = NULL;
        cf_buf_init(&orig, 4096, false);
        cf_buf_init(&mod, 4096, false);
        raw_get(f, "t", "a", 1, &orig);
        assert_int_equal(orig.size, strlen("a secret value") + 28);
        /* Nonce, ciphertext and tag: every byte is covered. */
        for (size_t i = 0; i < orig.size; i++) {
                cf_buf_reset(&mod);
                assert_int_equal(cf_buf_append(&mod, orig.ptr, orig.size).code, 0);
                mod.ptr[i] ^= (uint8_t)(1u << (i % 8));
                raw_set(f, "t", "a", 1, cf_buf_slice(&mod));
                reopen(f);
                expect_get(f, "t", "a", 1, CF_E_TAMPERED, NULL);
                expect_get(f, "t", "a", 0, CF_E_TAMPERED, NULL);
        }
        /* Restoring the original bytes makes it readable again: the check is exact. */
        raw_set(f, "t", "a", 1, cf_buf_slice(&orig));
        reopen(f);
        expect_get(f, "t", "a", 1, 0, "a secret value");
        cf_buf_done(&orig);
        cf_buf_done(&mod);
}

static void test_tamper_truncate_and_extend(void **state)
{
        struct fixture *f = *state;
        struct cf_buf orig, mod;

        put_str(f, "t", "a", 1, "value");
        store_close(f->s);
        f->s = NULL;
        cf_buf_init(&orig, 4096, false);
        cf_buf_init(&mod, 4096, false);
        raw_get(f, "t", "a", 1, &orig);
        for (size_t n = 0; n < orig.size; n++) {
                raw_set(f, "t", "a", 1, cf_slice_make(orig.ptr, n));
                reopen(f);
                expect_get(f, "t", "a", 1, CF_E_TAMPERED, NULL);
        }
        assert_int_equal(cf_buf_append(&mod, orig.ptr, orig.size).code, 0);
        assert_int_equal(cf_buf_append(&mod, "\0", 1).code, 0);
        raw_set(f, "t", "a", 1, cf_buf_slice(&mod));
        reopen(f);
        expect_get(f, "t", "a", 1, CF_E_TAMPERED, NULL);
        cf_buf_done(&orig);
        cf_buf_done(&mod);
}

static void test_tamper_swap_rows(void **state)
{
        struct fixture *f = *state;
        struct cf_buf a, b;

        put_str(f, "t", "a", 1, "value of a");
        put_str(f, "t", "b", 1, "value of b");
        store_close(f->s);
        f->s = NULL;
        cf_buf_init(&a, 4096, false);
        cf_buf_init(&b, 4096, false);
        raw_get(f, "t", "a", 1, &a);
        raw_get(f, "t", "b", 1, &b);
        raw_set(f, "t", "a", 1, cf_buf_slice(&b));
        raw_set(f, "t", "b", 1, cf_buf_slice(&a));
        reopen(f);
        expect_get(f, "t", "a", 0, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "b", 0, CF_E_TAMPERED, NULL);
        cf_buf_done(&a);
        cf_buf_done(&b);
}

static void test_tamper_swap_versions(void **state)
{
        struct fixture *f = *state;

        put_str(f, "t", "a", 1, "old");
        put_str(f, "t", "a", 2, "new");
        store_close(f->s);
        f->s = NULL;
        /* Swap the version numbers of the two rows (via a free number). */
        raw_exec(f, "UPDATE kv SET version=3 WHERE key='a' AND version=1;"
                    "UPDATE kv SET version=1 WHERE key='a' AND version=2;"
                    "UPDATE kv SET version=2 WHERE key='a' AND version=3;");
        reopen(f);
        expect_get(f, "t", "a", 1, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "a", 2, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "a", 0, CF_E_TAMPERED, NULL);
}

static void test_tamper_move_to_other_version(void **state)
{
        struct fixture *f = *state;

        put_str(f, "t", "a", 1, "v1");
        store_close(f->s);
        f->s = NULL;
        /* Move: the only row now claims to be version 2. */
        raw_exec(f, "UPDATE kv SET version=2 WHERE tbl='t' AND key='a' AND version=1");
        reopen(f);
        expect_get(f, "t", "a", 2, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "a", 0, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "a", 1, CF_E_NOT_FOUND, NULL);
        /* Copy: an old value replayed as a newer version. */
        store_close(f->s);
        f->s = NULL;
        raw_exec(f, "UPDATE kv SET version=1 WHERE tbl='t' AND key='a';"
                    "INSERT INTO kv SELECT tbl, key, 2, value FROM kv WHERE key='a'");
        reopen(f);
        expect_get(f, "t", "a", 1, 0, "v1");
        expect_get(f, "t", "a", 2, CF_E_TAMPERED, NULL);
}

static void test_tamper_move_to_other_table_or_key(void **state)
{
        struct fixture *f = *state;

        /* ("ab", "c") and ("a", "bc") concatenate alike: the length prefixes separate them. */
        put_str(f, "ab", "c", 1, "ab/c");
        put_str(f, "t", "key", 1, "t/key");
        store_close(f->s);
        f->s = NULL;
        raw_exec(f, "UPDATE kv SET tbl='a', key='bc' WHERE tbl='ab';"
                    "UPDATE kv SET key='key2' WHERE tbl='t' AND key='key'");
        reopen(f);
        expect_get(f, "a", "bc", 1, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "key2", 1, CF_E_TAMPERED, NULL);
        /* And a value moved to another table under the same key. */
        store_close(f->s);
        f->s = NULL;
        raw_exec(f, "UPDATE kv SET tbl='u' WHERE key='key2'");
        reopen(f);
        expect_get(f, "u", "key2", 1, CF_E_TAMPERED, NULL);
}

static void test_tamper_column_types(void **state)
{
        struct fixture *f = *state;

        put_str(f, "t", "a", 1, "value");
        put_str(f, "t", "b", 1, "value");
        put_str(f, "t", "c", 1, "value");
        store_close(f->s);
        f->s = NULL;
        raw_exec(f, "UPDATE kv SET value=CAST(value AS TEXT) WHERE key='a';"
                    "UPDATE kv SET value=42 WHERE key='b';"
                    "UPDATE kv SET version='1x' WHERE key='c'");
        reopen(f);
        expect_get(f, "t", "a", 1, CF_E_TAMPERED, NULL);
        expect_get(f, "t", "b", 1, CF_E_TAMPERED, NULL);
        /* A TEXT version no longer matches the INTEGER lookup... */
        expect_get(f, "t", "c", 1, CF_E_NOT_FOUND, NULL);
        /* ...and is refused when read back as the latest version. */
        expect_get(f, "t", "c", 0, CF_E_TAMPERED, NULL);
}

/* Pins the documented format (docs/formats/store.md): a value sealed by hand with the
 * documented AAD and layout, inserted directly into the file, is served. */
static void test_documented_format(void **state)
{
        struct fixture *f = *state;
        static const uint8_t aad[] = {'c', 'o', 'f', 'f', 'e', 'r', '-', 's', 't', 'o', 'r', 'e',
                                      '-', 'v', '1', 0,   0,   0,   2,   'd', 'b', 0,   0,   0,
                                      3,   'a', '/', 'b', 0,   0,   0,   0,   0,   0,   0,   1};
        struct cf_buf blob;

        cf_buf_init(&blob, 4096, false);
        assert_int_equal(
            cf_aead_seal(f->key, cf_slice_make(aad, sizeof(aad)), cf_slice_str("by hand"), &blob)
                .code,
            0);
        put_str(f, "db", "a/b", 1, "by store");
        store_close(f->s);
        f->s = NULL;
        raw_set(f, "db", "a/b", 1, cf_buf_slice(&blob));
        reopen(f);
        expect_get(f, "db", "a/b", 1, 0, "by hand");
        cf_buf_done(&blob);
}

static void test_transactions(void **state)
{
        struct fixture *f = *state;
        uint64_t v = 0;

        assert_int_equal(store_begin(f->s).code, 0);
        assert_int_equal(store_begin(f->s).code, CF_E_INVALID_ARG);
        put_str(f, "t", "a", 1, "a1");
        put_str(f, "t", "a", 2, "a2");
        put_str(f, "t", "b", 1, "b1");
        /* A failed put inside a transaction leaves it usable. */
        assert_int_equal(store_put(f->s, "t", "b", 5, cf_slice_str("x")).code, CF_E_CONFLICT);
        expect_get(f, "t", "a", 0, 0, "a2");
        store_rollback(f->s);
        assert_int_equal(store_latest(f->s, "t", "a", &v).code, CF_E_NOT_FOUND);
        assert_int_equal(store_latest(f->s, "t", "b", &v).code, CF_E_NOT_FOUND);
        reopen(f);
        assert_int_equal(store_latest(f->s, "t", "a", &v).code, CF_E_NOT_FOUND);
        /* Rollback without a transaction and commit without one. */
        store_rollback(f->s);
        assert_int_equal(store_commit(f->s).code, CF_E_INVALID_ARG);
        /* Commit makes every put visible and durable. */
        assert_int_equal(store_begin(f->s).code, 0);
        put_str(f, "t", "a", 1, "a1");
        put_str(f, "t", "b", 1, "b1");
        assert_int_equal(store_commit(f->s).code, 0);
        assert_int_equal(store_commit(f->s).code, CF_E_INVALID_ARG);
        reopen(f);
        expect_get(f, "t", "a", 0, 0, "a1");
        expect_get(f, "t", "b", 0, 0, "b1");
        /* Closing with an open transaction discards it. */
        assert_int_equal(store_begin(f->s).code, 0);
        put_str(f, "t", "c", 1, "c1");
        reopen(f);
        assert_int_equal(store_latest(f->s, "t", "c", &v).code, CF_E_NOT_FOUND);
}

static void test_two_handles(void **state)
{
        struct fixture *f = *state;
        struct store *s2 = NULL;
        struct cf_buf out;

        assert_int_equal(store_open_sqlite(f->path, f->key, &s2).code, 0);
        put_str(f, "t", "a", 1, "from one");
        cf_buf_init(&out, 64, false);
        assert_int_equal(store_get(s2, "t", "a", 0, &out, NULL).code, 0);
        assert_memory_equal(out.ptr, "from one", out.size);
        /* The second writer must see the first one's version. */
        assert_int_equal(store_put(s2, "t", "a", 1, cf_slice_str("x")).code, CF_E_EXISTS);
        assert_int_equal(store_put(s2, "t", "a", 2, cf_slice_str("from two")).code, 0);
        expect_get(f, "t", "a", 0, 0, "from two");
        cf_buf_done(&out);
        store_close(s2);
}

static void test_name_validation(void **state)
{
        struct fixture *f = *state;
        static const char *const bad_keys[] = {"",        "new\nline",     "tab\there",
                                               "del\x7f", "utf8-\xc3\xa9", "\x01"};
        static const char *const bad_tables[] = {"", "a b", "a/b", "t\n", "caf\xc3\xa9", "x;y"};
        char long_key[STORE_KEY_MAX + 2];
        char long_table[STORE_TABLE_MAX + 2];
        struct cf_buf out;
        uint64_t v;
        struct cf_slice val = cf_slice_str("v");

        cf_buf_init(&out, 64, false);
        for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
                assert_int_equal(store_put(f->s, "t", bad_keys[i], 1, val).code, CF_E_INVALID_ARG);
                assert_int_equal(store_get(f->s, "t", bad_keys[i], 0, &out, &v).code,
                                 CF_E_INVALID_ARG);
                assert_int_equal(store_latest(f->s, "t", bad_keys[i], &v).code, CF_E_INVALID_ARG);
        }
        for (size_t i = 0; i < sizeof(bad_tables) / sizeof(bad_tables[0]); i++) {
                assert_int_equal(store_put(f->s, bad_tables[i], "k", 1, val).code,
                                 CF_E_INVALID_ARG);
                assert_int_equal(store_get(f->s, bad_tables[i], "k", 0, &out, &v).code,
                                 CF_E_INVALID_ARG);
        }
        assert_int_equal(store_put(f->s, NULL, "k", 1, val).code, CF_E_INVALID_ARG);
        assert_int_equal(store_put(f->s, "t", NULL, 1, val).code, CF_E_INVALID_ARG);
        assert_int_equal(store_put(NULL, "t", "k", 1, val).code, CF_E_INVALID_ARG);
        /* Length limits: exactly the maximum is fine, one more is not. */
        memset(long_key, 'k', sizeof(long_key));
        long_key[STORE_KEY_MAX + 1] = '\0';
        assert_int_equal(store_put(f->s, "t", long_key, 1, val).code, CF_E_INVALID_ARG);
        long_key[STORE_KEY_MAX] = '\0';
        assert_int_equal(store_put(f->s, "t", long_key, 1, val).code, 0);
        memset(long_table, 't', sizeof(long_table));
        long_table[STORE_TABLE_MAX + 1] = '\0';
        assert_int_equal(store_put(f->s, long_table, "k", 1, val).code, CF_E_INVALID_ARG);
        long_table[STORE_TABLE_MAX] = '\0';
        assert_int_equal(store_put(f->s, long_table, "k", 1, val).code, 0);
        /* Keys may contain '/', spaces and other printable characters. */
        put_str(f, "t", "a/b/c", 1, "slash");
        put_str(f, "t", " spaced key ~!@#$%^&*()'\"", 1, "punct");
        put_str(f, "Tbl-1.x_y", "k", 1, "table chars");
        expect_get(f, "t", "a/b/c", 0, 0, "slash");
        expect_get(f, "t", " spaced key ~!@#$%^&*()'\"", 0, 0, "punct");
        cf_buf_done(&out);
}

struct seen {
        char keys[8][32];
        uint64_t versions[8];
        size_t n, stop_after;
};

static cf_status collect(void *ctx, const char *key, uint64_t latest)
{
        struct seen *s = ctx;

        if (s->stop_after != 0 && s->n == s->stop_after) {
                return cf_fail(CF_E_REFUSED);
        }
        assert_true(s->n < 8);
        snprintf(s->keys[s->n], sizeof(s->keys[s->n]), "%s", key);
        s->versions[s->n] = latest;
        s->n++;
        return CF_OK;
}

static void test_list(void **state)
{
        struct fixture *f = *state;
        struct seen s = {0};

        put_str(f, "t", "a/2", 1, "x");
        put_str(f, "t", "a/1", 1, "x");
        put_str(f, "t", "a/1", 2, "x");
        put_str(f, "t", "b/1", 1, "x");
        put_str(f, "t", "a", 1, "x");
        put_str(f, "u", "a/3", 1, "other table");
        assert_int_equal(store_list(f->s, "t", "a/", collect, &s).code, 0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.keys[0], "a/1");
        assert_true(s.versions[0] == 2);
        assert_string_equal(s.keys[1], "a/2");
        assert_true(s.versions[1] == 1);
        memset(&s, 0, sizeof(s));
        assert_int_equal(store_list(f->s, "t", "", collect, &s).code, 0);
        assert_int_equal(s.n, 4);
        assert_string_equal(s.keys[0], "a");
        assert_string_equal(s.keys[3], "b/1");
        memset(&s, 0, sizeof(s));
        assert_int_equal(store_list(f->s, "t", "zz", collect, &s).code, 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(store_list(f->s, "none", "", collect, &s).code, 0);
        assert_int_equal(s.n, 0);
        /* The callback stops the listing, and its status comes back. */
        s.stop_after = 1;
        assert_int_equal(store_list(f->s, "t", "", collect, &s).code, CF_E_REFUSED);
        assert_int_equal(s.n, 1);
        assert_int_equal(store_list(f->s, "t", "bad\n", collect, &s).code, CF_E_INVALID_ARG);
        assert_int_equal(store_list(f->s, "t", "", NULL, &s).code, CF_E_INVALID_ARG);
}

struct counter {
        struct store *s;
        size_t n;
        char last[32];
};

/* Uses the handle from inside the callback, which the listing must allow. */
static cf_status count_and_read(void *ctx, const char *key, uint64_t latest)
{
        struct counter *c = ctx;
        struct cf_buf out;
        cf_status st;

        assert_true(strcmp(key, c->last) > 0);
        snprintf(c->last, sizeof(c->last), "%s", key);
        cf_buf_init(&out, 64, false);
        st = store_get(c->s, "many", key, latest, &out, NULL);
        cf_buf_done(&out);
        c->n++;
        return st;
}

static void test_list_many_pages(void **state)
{
        struct fixture *f = *state;
        struct counter c = {.s = f->s};
        char key[32];

        assert_int_equal(store_begin(f->s).code, 0);
        for (int i = 0; i < 200; i++) {
                snprintf(key, sizeof(key), "k%03d", i);
                put_str(f, "many", key, 1, "v");
        }
        assert_int_equal(store_commit(f->s).code, 0);
        assert_int_equal(store_list(f->s, "many", "k", count_and_read, &c).code, 0);
        assert_int_equal(c.n, 200);
        memset(&c, 0, sizeof(c));
        c.s = f->s;
        assert_int_equal(store_list(f->s, "many", "k1", count_and_read, &c).code, 0);
        assert_int_equal(c.n, 100);
}

static void test_list_tampered_names(void **state)
{
        struct fixture *f = *state;
        struct seen s = {0};

        put_str(f, "t", "a", 1, "x");
        store_close(f->s);
        f->s = NULL;
        raw_exec(f, "INSERT INTO kv VALUES ('t', 'a' || char(10), 1, x'00')");
        reopen(f);
        assert_int_equal(store_list(f->s, "t", "", collect, &s).code, CF_E_TAMPERED);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
            cmocka_unit_test_setup_teardown(test_value_limit, setup, teardown),
            cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
            cmocka_unit_test_setup_teardown(test_wrong_data_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tamper_flip_every_byte, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tamper_truncate_and_extend, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tamper_swap_rows, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tamper_swap_versions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tamper_move_to_other_version, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tamper_move_to_other_table_or_key, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_tamper_column_types, setup, teardown),
            cmocka_unit_test_setup_teardown(test_documented_format, setup, teardown),
            cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
            cmocka_unit_test_setup_teardown(test_name_validation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_many_pages, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_tampered_names, setup, teardown),
        };

        if (!cf_ok(cf_crypto_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
