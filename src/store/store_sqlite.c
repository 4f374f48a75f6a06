/* SQLite backend of the store: one database file, WAL mode, cached prepared statements.
 *
 * The file is untrusted. Besides the sealing done above this layer, the backend opens it
 * defensively (no triggers, views or untrusted schema functions), insists on exactly the
 * schema it creates, and checks the type and size of every column it reads. */
#include "store/store_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/log.h"
#include "base/mem.h"

#define SQ_SCHEMA_VERSION  1
#define SQ_BUSY_TIMEOUT_MS 5000
/* Keys fetched per statement run by list_keys: the statement is reset before the callback
 * runs, so the callback may use the handle. */
#define SQ_KEYS_PAGE 32

/* The exact text SQLite keeps in sqlite_master; open refuses any other schema. */
static const char sq_kv_sql[] = "CREATE TABLE kv(tbl TEXT NOT NULL, key TEXT NOT NULL, "
                                "version INTEGER NOT NULL, value BLOB NOT NULL, "
                                "PRIMARY KEY(tbl, key, version)) WITHOUT ROWID";
static const char sq_sv_sql[] = "CREATE TABLE schema_version(version INTEGER NOT NULL)";

enum sq_stmt {
        ST_GET,
        ST_PUT,
        ST_VERSIONS,
        ST_LATEST,
        ST_DELETE,
        ST_KEYS,
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST__COUNT
};

static const char *const sq_stmt_sql[ST__COUNT] = {
    [ST_GET] = "SELECT value FROM kv WHERE tbl = ?1 AND key = ?2 AND version = ?3",
    [ST_PUT] = "INSERT INTO kv(tbl, key, version, value) VALUES (?1, ?2, ?3, ?4)",
    [ST_VERSIONS] = "SELECT version FROM kv WHERE tbl = ?1 AND key = ?2 "
                    "ORDER BY version LIMIT ?3",
    [ST_LATEST] = "SELECT version FROM kv WHERE tbl = ?1 AND key = ?2 "
                  "ORDER BY version DESC LIMIT 1",
    [ST_DELETE] = "DELETE FROM kv WHERE tbl = ?1 AND key = ?2",
    /* ?2 = prefix, ?3 = prefix || 0x7f (valid keys never contain 0x7f, so every key with
     * the prefix sorts below it), ?4 = last key of the previous page. */
    [ST_KEYS] = "SELECT key, MAX(version) FROM kv WHERE tbl = ?1 AND key >= ?2 AND key < ?3 "
                "AND key > ?4 GROUP BY key ORDER BY key LIMIT ?5",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

struct sq {
        sqlite3 *db;
        sqlite3_stmt *st[ST__COUNT];
};

struct sq_page {
        char keys[SQ_KEYS_PAGE][STORE_KEY_MAX + 1];
        uint64_t versions[SQ_KEYS_PAGE];
        size_t n;
};

static void sq_close(void *be)
{
        struct sq *q = be;

        if (q == NULL) {
                return;
        }
        for (size_t i = 0; i < ST__COUNT; i++) {
                sqlite3_finalize(q->st[i]);
        }
        if (q->db != NULL && !sqlite3_get_autocommit(q->db)) {
                /* Best effort: closing discards an open transaction anyway. */
                sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        }
        sqlite3_close(q->db);
        free(q);
}

static void sq_closep(struct sq **p)
{
        sq_close(*p);
        *p = NULL;
}

/* Statements are reset when the scope that used them ends, so a TRY anywhere is safe and
 * no read transaction is left open. */
static void sq_resetp(sqlite3_stmt **p)
{
        if (*p != NULL) {
                sqlite3_reset(*p);
                sqlite3_clear_bindings(*p);
        }
}
#define SQ_STMT(q, id) CF_CLEANUP(sq_resetp) sqlite3_stmt *stmt = (q)->st[(id)]

static cf_status sq_fail(const struct sq *q, int rc)
{
        cf_log_debug("store: sqlite rc=%d msg='%s'", rc,
                     q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return cf_fail(CF_E_NOMEM);
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return cf_fail(CF_E_TIMEOUT);
        case SQLITE_CORRUPT:
                return cf_fail(CF_E_TAMPERED);
        default:
                return cf_fail(CF_E_STORE);
        }
}

static CF_FN sq_bind_text(const struct sq *q, sqlite3_stmt *stmt, int idx, const char *s)
{
        int rc = sqlite3_bind_text(stmt, idx, s, -1, SQLITE_STATIC);

        return rc == SQLITE_OK ? CF_OK : sq_fail(q, rc);
}

static CF_FN sq_bind_u64(const struct sq *q, sqlite3_stmt *stmt, int idx, uint64_t v)
{
        int rc;

        ENSURE(v <= (uint64_t)INT64_MAX, CF_E_LIMIT);
        rc = sqlite3_bind_int64(stmt, idx, (sqlite3_int64)v);
        return rc == SQLITE_OK ? CF_OK : sq_fail(q, rc);
}

static CF_FN sq_bind_name(const struct sq *q, sqlite3_stmt *stmt, const char *table,
                          const char *key)
{
        TRY(sq_bind_text(q, stmt, 1, table));
        return sq_bind_text(q, stmt, 2, key);
}

/* Reads a version column: an INTEGER >= 1, else the row was not written by us. */
static CF_FN sq_col_version(sqlite3_stmt *stmt, int col, uint64_t *ret)
{
        sqlite3_int64 v;

        ENSURE(sqlite3_column_type(stmt, col) == SQLITE_INTEGER, CF_E_TAMPERED);
        v = sqlite3_column_int64(stmt, col);
        ENSURE(v >= 1, CF_E_TAMPERED);
        *ret = (uint64_t)v;
        return CF_OK;
}

static CF_FN sq_get(void *be, const char *table, const char *key, uint64_t version,
                    struct cf_buf *out)
{
        struct sq *q = be;
        SQ_STMT(q, ST_GET);
        const void *blob;
        int rc, n;

        TRY(sq_bind_name(q, stmt, table, key));
        TRY(sq_bind_u64(q, stmt, 3, version));
        rc = sqlite3_step(stmt);
        ENSURE(rc != SQLITE_DONE, CF_E_NOT_FOUND);
        if (rc != SQLITE_ROW) {
                return sq_fail(q, rc);
        }
        ENSURE(sqlite3_column_type(stmt, 0) == SQLITE_BLOB, CF_E_TAMPERED);
        blob = sqlite3_column_blob(stmt, 0);
        n = sqlite3_column_bytes(stmt, 0);
        ENSURE(n >= 0 && (size_t)n <= STORE_SEALED_MAX, CF_E_TAMPERED);
        ENSURE(blob != NULL || n == 0, CF_E_NOMEM);
        return cf_buf_append(out, blob, (size_t)n);
}

static CF_FN sq_put(void *be, const char *table, const char *key, uint64_t version,
                    struct cf_slice blob)
{
        struct sq *q = be;
        SQ_STMT(q, ST_PUT);
        int rc;

        ENSURE(blob.size <= STORE_SEALED_MAX, CF_E_LIMIT);
        TRY(sq_bind_name(q, stmt, table, key));
        TRY(sq_bind_u64(q, stmt, 3, version));
        /* A zero-length blob must still be bound as a blob, never as NULL. */
        rc = sqlite3_bind_blob(stmt, 4, blob.size > 0 ? (const void *)blob.ptr : (const void *)"",
                               (int)blob.size, SQLITE_STATIC);
        if (rc != SQLITE_OK) {
                return sq_fail(q, rc);
        }
        rc = sqlite3_step(stmt);
        ENSURE(rc != SQLITE_CONSTRAINT_PRIMARYKEY, CF_E_EXISTS);
        return rc == SQLITE_DONE ? CF_OK : sq_fail(q, rc);
}

static CF_FN sq_list_versions(void *be, const char *table, const char *key, uint64_t *out,
                              size_t max, size_t *ret_n)
{
        struct sq *q = be;
        SQ_STMT(q, ST_VERSIONS);
        size_t n = 0;
        int rc;

        ENSURE(max < (size_t)INT64_MAX, CF_E_LIMIT);
        TRY(sq_bind_name(q, stmt, table, key));
        /* One more than max, to tell "exactly max" from "more than max". */
        TRY(sq_bind_u64(q, stmt, 3, (uint64_t)max + 1));
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                ENSURE(n < max, CF_E_LIMIT);
                TRY(sq_col_version(stmt, 0, &out[n]));
                n++;
        }
        if (rc != SQLITE_DONE) {
                return sq_fail(q, rc);
        }
        *ret_n = n;
        return CF_OK;
}

static CF_FN sq_latest_version(void *be, const char *table, const char *key, uint64_t *ret_version)
{
        struct sq *q = be;
        SQ_STMT(q, ST_LATEST);
        int rc;

        TRY(sq_bind_name(q, stmt, table, key));
        rc = sqlite3_step(stmt);
        ENSURE(rc != SQLITE_DONE, CF_E_NOT_FOUND);
        if (rc != SQLITE_ROW) {
                return sq_fail(q, rc);
        }
        return sq_col_version(stmt, 0, ret_version);
}

static CF_FN sq_delete(void *be, const char *table, const char *key)
{
        struct sq *q = be;
        SQ_STMT(q, ST_DELETE);
        int rc;

        TRY(sq_bind_name(q, stmt, table, key));
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) {
                return sq_fail(q, rc);
        }
        ENSURE(sqlite3_changes(q->db) > 0, CF_E_NOT_FOUND);
        return CF_OK;
}

/* Copies a key column, which must be TEXT of at most STORE_KEY_MAX bytes without NUL. */
static CF_FN sq_col_key(sqlite3_stmt *stmt, int col, char out[static STORE_KEY_MAX + 1])
{
        const unsigned char *text;
        int n;

        ENSURE(sqlite3_column_type(stmt, col) == SQLITE_TEXT, CF_E_TAMPERED);
        text = sqlite3_column_text(stmt, col);
        n = sqlite3_column_bytes(stmt, col);
        ENSURE(text != NULL, CF_E_NOMEM);
        ENSURE(n >= 0 && (size_t)n <= STORE_KEY_MAX, CF_E_TAMPERED);
        return cf_slice_to_cstr(cf_slice_make(text, (size_t)n), out, STORE_KEY_MAX + 1).code == 0
                   ? CF_OK
                   : cf_fail(CF_E_TAMPERED);
}

static CF_FN sq_keys_page(struct sq *q, const char *table, const char *prefix, const char *upper,
                          const char *after, struct sq_page *page)
{
        SQ_STMT(q, ST_KEYS);
        int rc;

        page->n = 0;
        TRY(sq_bind_name(q, stmt, table, prefix));
        TRY(sq_bind_text(q, stmt, 3, upper));
        TRY(sq_bind_text(q, stmt, 4, after));
        TRY(sq_bind_u64(q, stmt, 5, SQ_KEYS_PAGE));
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                ENSURE(page->n < SQ_KEYS_PAGE, CF_E_INTERNAL);
                TRY(sq_col_key(stmt, 0, page->keys[page->n]));
                TRY(sq_col_version(stmt, 1, &page->versions[page->n]));
                page->n++;
        }
        return rc == SQLITE_DONE ? CF_OK : sq_fail(q, rc);
}

static CF_FN sq_list_keys(void *be, const char *table, const char *prefix, store_key_fn fn,
                          void *ctx)
{
        struct sq *q = be;
        CF_AUTOFREE struct sq_page *page = NULL;
        char upper[STORE_KEY_MAX + 2], after[STORE_KEY_MAX + 1] = "";
        size_t plen = strnlen(prefix, STORE_KEY_MAX + 1);

        ENSURE(plen <= STORE_KEY_MAX, CF_E_INVALID_ARG);
        memcpy(upper, prefix, plen);
        upper[plen] = 0x7f;
        upper[plen + 1] = '\0';
        page = calloc(1, sizeof(*page));
        ENSURE(page != NULL, CF_E_NOMEM);
        for (;;) {
                TRY(sq_keys_page(q, table, prefix, upper, after, page));
                for (size_t i = 0; i < page->n; i++) {
                        TRY(fn(ctx, page->keys[i], page->versions[i]));
                }
                if (page->n < SQ_KEYS_PAGE) {
                        return CF_OK;
                }
                /* Keys come back strictly ascending, so the next page starts after this one. */
                memcpy(after, page->keys[page->n - 1], sizeof(after));
        }
}

static CF_FN sq_run(struct sq *q, enum sq_stmt id)
{
        SQ_STMT(q, id);
        int rc = sqlite3_step(stmt);

        return rc == SQLITE_DONE ? CF_OK : sq_fail(q, rc);
}

static CF_FN sq_begin(void *be)
{
        struct sq *q = be;

        ENSURE(sqlite3_get_autocommit(q->db), CF_E_INVALID_ARG);
        return sq_run(q, ST_BEGIN);
}

static void sq_rollback(void *be)
{
        struct sq *q = be;

        if (!sqlite3_get_autocommit(q->db)) {
                /* Nothing useful to do if it fails: the transaction ends with the handle. */
                cf_ignore(sq_run(q, ST_ROLLBACK));
        }
}

static CF_FN sq_commit(void *be)
{
        struct sq *q = be;
        cf_status st = sq_run(q, ST_COMMIT);

        if (!cf_ok(st)) {
                /* A busy COMMIT leaves the transaction open: end it so the state is simple. */
                sq_rollback(q);
        }
        return st;
}

/* Creates the file with mode 0600 before SQLite sees it (SQLite would use 0644 & ~umask;
 * its -wal and -shm files copy the database file's mode). */
static CF_FN sq_precreate(const char *path)
{
        struct stat sb;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        int r;

        TRY_ERRNO(fd);
        r = fstat(fd, &sb);
        close(fd);
        TRY_ERRNO(r);
        ENSURE(S_ISREG(sb.st_mode), CF_E_STORE);
        return CF_OK;
}

static CF_FN sq_exec(struct sq *q, const char *sql)
{
        int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? CF_OK : sq_fail(q, rc);
}

static void sq_finalizep(sqlite3_stmt **p)
{
        sqlite3_finalize(*p);
        *p = NULL;
}

static CF_FN sq_prepare(struct sq *q, const char *sql, unsigned flags, sqlite3_stmt **ret)
{
        int rc = sqlite3_prepare_v3(q->db, sql, -1, flags, ret, NULL);

        return rc == SQLITE_OK ? CF_OK : sq_fail(q, rc);
}

/* Hardening for an untrusted file (SQLite's "defense against the dark arts"), then the
 * durability settings. */
static CF_FN sq_configure(struct sq *q)
{
        static const int off[] = {SQLITE_DBCONFIG_TRUSTED_SCHEMA, SQLITE_DBCONFIG_ENABLE_TRIGGER,
                                  SQLITE_DBCONFIG_ENABLE_VIEW};
        CF_CLEANUP(sq_finalizep) sqlite3_stmt *jm = NULL;
        const unsigned char *mode = NULL;
        int rc;

        ENSURE(sqlite3_db_config(q->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) == SQLITE_OK,
               CF_E_STORE);
        for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
                ENSURE(sqlite3_db_config(q->db, off[i], 0, NULL) == SQLITE_OK, CF_E_STORE);
        }
        ENSURE(sqlite3_busy_timeout(q->db, SQ_BUSY_TIMEOUT_MS) == SQLITE_OK, CF_E_STORE);
        TRY(sq_prepare(q, "PRAGMA journal_mode=WAL", 0, &jm));
        rc = sqlite3_step(jm);
        if (rc != SQLITE_ROW) {
                return sq_fail(q, rc);
        }
        mode = sqlite3_column_text(jm, 0);
        ENSURE(mode != NULL && strcmp((const char *)mode, "wal") == 0, CF_E_STORE);
        return sq_exec(q, "PRAGMA synchronous=FULL");
}

/* Compares the schema with ours: exactly the two tables, with exactly our SQL text. A
 * fresh file has no schema at all. */
static CF_FN sq_schema_is(struct sq *q, bool *ret_fresh)
{
        static const char *const want[][2] = {{"kv", sq_kv_sql}, {"schema_version", sq_sv_sql}};
        CF_CLEANUP(sq_finalizep) sqlite3_stmt *stmt = NULL;
        size_t n = 0;
        int rc;

        TRY(sq_prepare(q, "SELECT type, name, sql FROM sqlite_master ORDER BY name", 0, &stmt));
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                const unsigned char *type = sqlite3_column_text(stmt, 0);
                const unsigned char *name = sqlite3_column_text(stmt, 1);
                const unsigned char *sql = sqlite3_column_text(stmt, 2);

                ENSURE(n < 2 && type != NULL && name != NULL && sql != NULL, CF_E_VERSION);
                ENSURE(strcmp((const char *)type, "table") == 0, CF_E_VERSION);
                ENSURE(strcmp((const char *)name, want[n][0]) == 0, CF_E_VERSION);
                ENSURE(strcmp((const char *)sql, want[n][1]) == 0, CF_E_VERSION);
                n++;
        }
        if (rc != SQLITE_DONE) {
                return sq_fail(q, rc);
        }
        ENSURE(n == 0 || n == 2, CF_E_VERSION);
        *ret_fresh = n == 0;
        return CF_OK;
}

static CF_FN sq_schema_version(struct sq *q)
{
        CF_CLEANUP(sq_finalizep) sqlite3_stmt *stmt = NULL;
        int rc;

        TRY(sq_prepare(q, "SELECT version FROM schema_version", 0, &stmt));
        rc = sqlite3_step(stmt);
        ENSURE(rc != SQLITE_DONE, CF_E_VERSION);
        if (rc != SQLITE_ROW) {
                return sq_fail(q, rc);
        }
        ENSURE(sqlite3_column_type(stmt, 0) == SQLITE_INTEGER, CF_E_VERSION);
        ENSURE(sqlite3_column_int64(stmt, 0) == SQ_SCHEMA_VERSION, CF_E_VERSION);
        ENSURE(sqlite3_step(stmt) == SQLITE_DONE, CF_E_VERSION);
        return CF_OK;
}

static CF_FN sq_schema_create(struct sq *q)
{
        TRY(sq_exec(q, sq_kv_sql));
        TRY(sq_exec(q, sq_sv_sql));
        return sq_exec(q, "INSERT INTO schema_version(version) VALUES (1)");
}

/* Checks or creates the schema inside one write transaction, so two processes creating the
 * same fresh file cannot both create it. */
static CF_FN sq_schema(struct sq *q)
{
        bool fresh = false;
        cf_status st;

        TRY(sq_exec(q, "BEGIN IMMEDIATE"));
        st = sq_schema_is(q, &fresh);
        if (cf_ok(st)) {
                st = fresh ? sq_schema_create(q) : sq_schema_version(q);
        }
        if (cf_ok(st)) {
                st = sq_exec(q, "COMMIT");
        }
        if (!cf_ok(st) && !sqlite3_get_autocommit(q->db)) {
                /* Best effort; the handle is closed next anyway. */
                sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        }
        return st;
}

cf_status store_sqlite_open(const char *path, void **ret)
{
        CF_CLEANUP(sq_closep) struct sq *q = NULL;
        int rc;

        ENSURE(path != NULL && path[0] != '\0' && ret != NULL, CF_E_INVALID_ARG);
        TRY(sq_precreate(path));
        q = calloc(1, sizeof(*q));
        ENSURE(q != NULL, CF_E_NOMEM);
        /* NOMUTEX: a handle is used by one thread at a time (documented in store.h). */
        rc = sqlite3_open_v2(path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
                                 SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK) {
                return sq_fail(q, rc);
        }
        TRY(sq_configure(q));
        TRY(sq_schema(q));
        for (size_t i = 0; i < ST__COUNT; i++) {
                TRY(sq_prepare(q, sq_stmt_sql[i], SQLITE_PREPARE_PERSISTENT, &q->st[i]));
        }
        *ret = TAKE_PTR(q);
        return CF_OK;
}

const struct store_backend_ops store_sqlite_ops = {
    .get = sq_get,
    .put = sq_put,
    .list_versions = sq_list_versions,
    .latest_version = sq_latest_version,
    .delete_key = sq_delete,
    .list_keys = sq_list_keys,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
};
