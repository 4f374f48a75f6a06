/* Unit tests of src/store/store_sqlite.c: the SQLite backend on its own (file creation,
 * WAL mode, exact schema check, defensive reads of hostile rows). */
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
#include <sqlite3.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "store/store_backend.h"

struct fixture {
        char dir[64];
        char path[96];
        void *be;
};

static void remove_path(const struct fixture *f, const char *suffix)
{
        char p[128];

        snprintf(p, sizeof(p), "%s%s", f->path, suffix);
        unlink(p);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-sqlite-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        store_sqlite_ops.close(f->be);
        remove_path(f, "");
        remove_path(f, "-wal");
        remove_path(f, "-shm");
        remove_path(f, "-journal");
        assert_int_equal(rmdir(f->dir), 0);
        free(f);
        return 0;
}

static void open_ok(struct fixture *f)
{
        store_sqlite_ops.close(f->be);
        f->be = NULL;
        assert_int_equal(store_sqlite_open(f->path, &f->be).code, 0);
}

static int open_code(struct fixture *f)
{
        void *be = NULL;
        cf_status st;

        store_sqlite_ops.close(f->be);
        f->be = NULL;
        st = store_sqlite_open(f->path, &be);
        if (cf_ok(st)) {
                f->be = be;
        } else {
                assert_null(be);
        }
        return st.code;
}

static void raw_exec(const struct fixture *f, const char *sql)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_create_mode_and_wal(void **state)
{
        struct fixture *f = *state;
        mode_t old = umask(0);
        struct stat sb;
        char wal[128];
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;

        open_ok(f);
        umask(old);
        assert_int_equal(stat(f->path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        /* A write creates the WAL file, which must be as private as the database. */
        assert_int_equal(store_sqlite_ops.put(f->be, "t", "k", 1, cf_slice_str("blob")).code, 0);
        snprintf(wal, sizeof(wal), "%s-wal", f->path);
        assert_int_equal(stat(wal, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
        sqlite3_finalize(stmt);
        sqlite3_close(db);
}

static void test_ops(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;
        uint64_t v = 0, vs[3];
        size_t n = 0;

        open_ok(f);
        cf_buf_init(&out, STORE_SEALED_MAX, false);
        assert_int_equal(store_sqlite_ops.latest_version(f->be, "t", "k", &v).code, CF_E_NOT_FOUND);
        assert_int_equal(store_sqlite_ops.get(f->be, "t", "k", 1, &out).code, CF_E_NOT_FOUND);
        assert_int_equal(store_sqlite_ops.put(f->be, "t", "k", 1, cf_slice_str("one")).code, 0);
        assert_int_equal(store_sqlite_ops.put(f->be, "t", "k", 1, cf_slice_str("again")).code,
                         CF_E_EXISTS);
        assert_int_equal(store_sqlite_ops.put(f->be, "t", "k", 2, cf_slice_make(NULL, 0)).code, 0);
        assert_int_equal(store_sqlite_ops.get(f->be, "t", "k", 1, &out).code, 0);
        assert_int_equal(out.size, 3);
        assert_memory_equal(out.ptr, "one", 3);
        cf_buf_reset(&out);
        assert_int_equal(store_sqlite_ops.get(f->be, "t", "k", 2, &out).code, 0);
        assert_int_equal(out.size, 0);
        assert_int_equal(store_sqlite_ops.latest_version(f->be, "t", "k", &v).code, 0);
        assert_true(v == 2);
        assert_int_equal(store_sqlite_ops.list_versions(f->be, "t", "k", vs, 3, &n).code, 0);
        assert_int_equal(n, 2);
        assert_int_equal(store_sqlite_ops.list_versions(f->be, "t", "k", vs, 1, &n).code,
                         CF_E_LIMIT);
        assert_int_equal(
            store_sqlite_ops.put(f->be, "t", "k", (uint64_t)INT64_MAX + 1, cf_slice_str("x")).code,
            CF_E_LIMIT);
        /* Transactions: nesting refused, rollback discards, rollback without one is a no-op. */
        assert_int_equal(store_sqlite_ops.begin(f->be).code, 0);
        assert_int_equal(store_sqlite_ops.begin(f->be).code, CF_E_INVALID_ARG);
        assert_int_equal(store_sqlite_ops.put(f->be, "t", "k", 3, cf_slice_str("3")).code, 0);
        store_sqlite_ops.rollback(f->be);
        store_sqlite_ops.rollback(f->be);
        assert_int_equal(store_sqlite_ops.latest_version(f->be, "t", "k", &v).code, 0);
        assert_true(v == 2);
        assert_int_equal(store_sqlite_ops.commit(f->be).code, CF_E_STORE);
        cf_buf_done(&out);
}

static void test_reopen_and_schema_checks(void **state)
{
        struct fixture *f = *state;
        static const char *const edits[] = {
            "UPDATE schema_version SET version=2",
            "INSERT INTO schema_version VALUES (1)",
            "DELETE FROM schema_version",
            "UPDATE schema_version SET version='1x'",
            "CREATE TABLE extra(x)",
            "CREATE INDEX kv_value ON kv(value)",
            "CREATE VIEW v AS SELECT 1",
            "CREATE TRIGGER tr AFTER INSERT ON kv BEGIN SELECT 1; END",
            "DROP TABLE kv; CREATE TABLE kv(tbl, key, version, value)",
            "DROP TABLE schema_version",
        };

        open_ok(f);
        open_ok(f);
        for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
                store_sqlite_ops.close(f->be);
                f->be = NULL;
                remove_path(f, "");
                remove_path(f, "-wal");
                remove_path(f, "-shm");
                open_ok(f);
                store_sqlite_ops.close(f->be);
                f->be = NULL;
                raw_exec(f, edits[i]);
                assert_int_equal(open_code(f), CF_E_VERSION);
        }
}

static void test_not_a_database(void **state)
{
        struct fixture *f = *state;
        FILE *fp = fopen(f->path, "w");

        assert_non_null(fp);
        for (int i = 0; i < 64; i++) {
                fputs("this is not an SQLite database file. ", fp);
        }
        fclose(fp);
        assert_int_equal(open_code(f), CF_E_STORE);
}

static void test_refuses_symlink_and_dir(void **state)
{
        struct fixture *f = *state;
        char target[128];

        snprintf(target, sizeof(target), "%s/target.db", f->dir);
        assert_int_equal(symlink(target, f->path), 0);
        assert_int_not_equal(open_code(f), 0);
        assert_int_not_equal(access(target, F_OK), 0);
        unlink(f->path);
        assert_int_equal(mkdir(f->path, 0700), 0);
        assert_int_not_equal(open_code(f), 0);
        assert_int_equal(rmdir(f->path), 0);
        assert_int_equal(store_sqlite_open("", &f->be).code, CF_E_INVALID_ARG);
        assert_null(f->be);
}

static void test_hostile_rows(void **state)
{
        struct fixture *f = *state;
        struct cf_buf out;
        uint64_t v = 0, vs[4];
        size_t n = 0;

        open_ok(f);
        store_sqlite_ops.close(f->be);
        f->be = NULL;
        /* A blob one byte over the largest sealed value, a negative version, a zero version. */
        raw_exec(f, "INSERT INTO kv VALUES ('t', 'big', 1, zeroblob(8388637));"
                    "INSERT INTO kv VALUES ('t', 'neg', -5, x'00');"
                    "INSERT INTO kv VALUES ('t', 'zero', 0, x'00');"
                    "INSERT INTO kv VALUES ('t', 'txt', 1, 'text')");
        open_ok(f);
        cf_buf_init(&out, STORE_SEALED_MAX + 16, false);
        assert_int_equal(store_sqlite_ops.get(f->be, "t", "big", 1, &out).code, CF_E_TAMPERED);
        assert_int_equal(store_sqlite_ops.get(f->be, "t", "txt", 1, &out).code, CF_E_TAMPERED);
        assert_int_equal(out.size, 0);
        assert_int_equal(store_sqlite_ops.latest_version(f->be, "t", "neg", &v).code,
                         CF_E_TAMPERED);
        assert_int_equal(store_sqlite_ops.latest_version(f->be, "t", "zero", &v).code,
                         CF_E_TAMPERED);
        assert_int_equal(store_sqlite_ops.list_versions(f->be, "t", "neg", vs, 4, &n).code,
                         CF_E_TAMPERED);
        cf_buf_done(&out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_create_mode_and_wal, setup, teardown),
            cmocka_unit_test_setup_teardown(test_ops, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reopen_and_schema_checks, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refuses_symlink_and_dir, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hostile_rows, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
