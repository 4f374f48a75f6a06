/* Unit tests of the store's state version and digest (store_state) and the commit hook. */
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

#include "crypto/crypto.h"
#include "store/store.h"

static uint8_t g_key[32];
static char g_dir[64], g_path[128];
static uint64_t g_hook_version;
static int g_hook_calls;

static void hook(void *ctx, uint64_t v)
{
        (void)ctx;
        g_hook_version = v;
        g_hook_calls++;
}

static int setup(void **state)
{
        (void)state;
        snprintf(g_dir, sizeof(g_dir), "/tmp/coffer-state-XXXXXX");
        if (!cf_ok(cf_crypto_init()) || mkdtemp(g_dir) == NULL ||
            !cf_ok(cf_random(g_key, sizeof(g_key)))) {
                return -1;
        }
        snprintf(g_path, sizeof(g_path), "%s/store.db", g_dir);
        return 0;
}

static int teardown(void **state)
{
        char p[160];

        (void)state;
        static const char *const suffixes[] = { "", "-wal", "-shm" };

        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
                snprintf(p, sizeof(p), "%s%s", g_path, suffixes[i]);
                unlink(p);
        }
        rmdir(g_dir);
        return 0;
}

static struct store *open_store(void)
{
        struct store *s = NULL;

        assert_int_equal(store_open_sqlite(g_path, g_key, &s).code, 0);
        store_set_commit_hook(s, hook, NULL);
        return s;
}

static void expect_state(struct store *s, uint64_t want)
{
        uint64_t v = 99;
        uint8_t d[32];

        assert_int_equal(store_state(s, &v, d).code, 0);
        assert_int_equal(v, want);
}

static void test_version_counts_committed_transactions(void **state)
{
        struct store *s = open_store();
        uint8_t d0[32], d1[32];
        uint64_t v;

        (void)state;
        expect_state(s, 0);
        assert_int_equal(store_state(s, &v, d0).code, 0);
        assert_memory_equal(d0, (uint8_t[32]){ 0 }, 32);
        /* a single put is one transaction */
        assert_int_equal(store_put(s, "t", "a", 1, cf_slice_str("x")).code, 0);
        expect_state(s, 1);
        assert_int_equal(g_hook_calls, 1);
        assert_int_equal(g_hook_version, 1);
        /* three puts in one transaction are one state version */
        assert_int_equal(store_begin(s).code, 0);
        assert_int_equal(store_put(s, "t", "a", 2, cf_slice_str("y")).code, 0);
        assert_int_equal(store_put(s, "t", "b", 1, cf_slice_str("z")).code, 0);
        assert_int_equal(store_put(s, "t", "c", 1, cf_slice_str("w")).code, 0);
        assert_int_equal(store_commit(s).code, 0);
        expect_state(s, 2);
        assert_int_equal(g_hook_version, 2);
        /* a rolled back transaction changes nothing and calls no hook */
        assert_int_equal(store_begin(s).code, 0);
        assert_int_equal(store_put(s, "t", "d", 1, cf_slice_str("v")).code, 0);
        store_rollback(s);
        expect_state(s, 2);
        assert_int_equal(g_hook_calls, 2);
        /* a failed put is no write */
        assert_int_equal(store_put(s, "t", "a", 7, cf_slice_str("q")).code, CF_E_CONFLICT);
        expect_state(s, 2);
        /* a delete is a write */
        assert_int_equal(store_delete(s, "t", "c").code, 0);
        expect_state(s, 3);
        assert_int_equal(store_state(s, &v, d1).code, 0);
        assert_memory_not_equal(d0, d1, 32);
        /* an empty transaction is no write */
        assert_int_equal(store_begin(s).code, 0);
        assert_int_equal(store_commit(s).code, 0);
        expect_state(s, 3);
        store_close(s);
        /* the state survives reopening */
        s = open_store();
        expect_state(s, 3);
        store_close(s);
}

static void test_state_table_is_reserved(void **state)
{
        struct store *s = open_store();

        (void)state;
        assert_int_equal(store_put(s, "coffer.state", "state", 100, cf_slice_str("x")).code,
                         CF_E_PERMISSION);
        assert_int_equal(store_delete(s, "coffer.state", "state").code, CF_E_PERMISSION);
        store_close(s);
}

static void test_edited_state_is_tampering(void **state)
{
        struct store *s = open_store();
        sqlite3 *db;
        uint64_t v;
        uint8_t d[32];

        (void)state;
        assert_int_equal(store_put(s, "t", "e", 1, cf_slice_str("x")).code, 0);
        store_close(s);
        assert_int_equal(sqlite3_open(g_path, &db), SQLITE_OK);
        /* Claim a far newer state by renumbering the latest state row. */
        assert_int_equal(sqlite3_exec(db,
                                      "UPDATE kv SET version = version + 1000 WHERE tbl = "
                                      "'coffer.state' AND version = (SELECT max(version) FROM kv "
                                      "WHERE tbl = 'coffer.state')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        s = open_store();
        assert_int_equal(store_state(s, &v, d).code, CF_E_TAMPERED);
        store_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_version_counts_committed_transactions),
                cmocka_unit_test(test_state_table_is_reserved),
                cmocka_unit_test(test_edited_state_is_tampering),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
