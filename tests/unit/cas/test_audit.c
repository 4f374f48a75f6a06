/* Unit tests of src/cas/audit.c (the chain in cofferd: appends, restart, concurrency, a
 * tampered store) and src/client/audit_verify.c (the format and the offline verifier: every
 * kind of tampering is named with the entry it concerns). */
#include <pthread.h>
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

#include "base/codec.h"
#include "base/mem.h"
#include "cas/audit.h"
#include "client/audit_verify.h"
#include "store/store.h"

struct fixture {
        char dir[64];
        struct cas cas;
        struct cas_worker w;
};

static void rm_store_files(const char *path)
{
        static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
        char p[1200];

        for (size_t i = 0; i < 4; i++) {
                snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
                unlink(p);
        }
}

static void open_worker(struct fixture *f)
{
        assert_true(cf_ok(store_open_sqlite(f->cas.store_path, f->cas.data_key->ptr, &f->w.store)));
}

static void close_worker(struct fixture *f)
{
        store_close(f->w.store);
        f->w.store = NULL;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-audit-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->cas.store_path, sizeof(f->cas.store_path), "%s/store.db", f->dir);
        assert_true(cf_ok(cf_secret_new(32, &f->cas.data_key)));
        assert_true(cf_ok(cf_random(f->cas.data_key->ptr, 32)));
        assert_true(cf_ok(cas_audit_init(&f->cas)));
        f->w.cas = &f->cas;
        open_worker(f);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char p[1200];

        cas_audit_done();
        close_worker(f);
        snprintf(p, sizeof(p), "%s/store.db", f->dir);
        rm_store_files(p);
        snprintf(p, sizeof(p), "%s/copy.db", f->dir);
        rm_store_files(p);
        cf_secret_free(f->cas.data_key);
        assert_int_equal(rmdir(f->dir), 0);
        free(f);
        return 0;
}

static void append(struct fixture *f, const char *type, const char *name)
{
        assert_true(cf_ok(cas_audit_append(&f->w, type,
                                           "0123456789abcdef0123456789abcdef0123456789abcdef01234"
                                           "56789abcdef",
                                           json_pack("{s:s, s:i}", "policy", name, "version", 1))));
}

/* Downloads the chain the way `coffer audit fetch` does: head first, then entries. */
static json_t *download(struct fixture *f)
{
        char sig[2 * AUDIT_SIG_SIZE + 1], key[2 * AUDIT_KEY_SIZE + 1];
        uint8_t pub[AUDIT_KEY_SIZE];
        json_t *head = NULL, *all = json_array(), *page = NULL;
        uint64_t from = 1, head_seq = 0, want;

        assert_true(cf_ok(cas_audit_head(&head, sig)));
        want = (uint64_t)json_integer_value(json_object_get(head, "seq"));
        while (from <= want) {
                assert_true(cf_ok(cas_audit_read(&f->w, from, AUDIT_PAGE_MAX, &page, &head_seq)));
                assert_true(json_array_size(page) > 0);
                for (size_t i = 0; i < json_array_size(page) && from <= want; i++, from++) {
                        json_array_append(all, json_array_get(page, i));
                }
                json_decref(page);
        }
        cas_audit_public_key(pub);
        cf_hex_encode(pub, sizeof(pub), key, sizeof(key));
        return json_pack("{s:s, s:s, s:o, s:s, s:o}", "format", AUDIT_FORMAT, "audit_key", key,
                         "head", head, "signature", sig, "entries", all);
}

static enum audit_problem verify(const json_t *doc, uint64_t *ret_seq)
{
        struct audit_verdict v;
        cf_status s = audit_verify_chain(doc, NULL, &v);

        assert_true(cf_ok(s) == (v.problem == AUDIT_VALID));
        if (!cf_ok(s)) {
                assert_int_equal(s.code, CF_E_TAMPERED);
                assert_true(strlen(v.message) > 0);
        }
        if (ret_seq != NULL) {
                *ret_seq = v.seq;
        }
        return v.problem;
}

static json_t *entries_of(json_t *doc)
{
        return json_object_get(doc, "entries");
}

/* ---- format ------------------------------------------------------------------------- */

/* The canonical bytes and hash of an entry are fixed by docs/formats/audit.md. */
static void test_canonical_known_answer(void **state)
{
        static const char text[] =
            "{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000"
            "000000\",\"time\":\"2026-01-02T03:04:05Z\",\"type\":\"policy.create\","
            "\"actor\":\"workload\",\"details\":{\"z\":[1,true,null],\"a\":\"\\u00e9/\\n\"}}";
        static const char canonical[] =
            "{\"actor\":\"workload\",\"details\":{\"a\":\"\xc3\xa9/\\n\",\"z\":[1,true,null]},"
            "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
            "\"seq\":1,\"time\":\"2026-01-02T03:04:05Z\",\"type\":\"policy.create\"}";
        char hash[AUDIT_HASH_HEX], again[AUDIT_HASH_HEX];
        struct cf_buf b;
        json_error_t err;
        json_t *e = json_loads(text, 0, &err);

        (void)state;
        assert_non_null(e);
        cf_buf_init(&b, AUDIT_ENTRY_MAX, false);
        assert_true(cf_ok(audit_entry_canonical(e, &b)));
        assert_int_equal(b.size, strlen(canonical));
        assert_memory_equal(b.ptr, canonical, b.size);
        assert_true(cf_ok(audit_hash_hex(cf_buf_slice(&b), hash)));
        assert_true(cf_ok(cf_sha256_hex(cf_slice_str(canonical), again)));
        assert_string_equal(hash, again);
        cf_buf_done(&b);
        json_decref(e);
}

static void expect_not_canonical(const char *text)
{
        json_error_t err;
        json_t *e = json_loads(text, JSON_REJECT_DUPLICATES, &err);
        struct cf_buf b;

        assert_non_null(e);
        cf_buf_init(&b, AUDIT_ENTRY_MAX, false);
        assert_false(cf_ok(audit_entry_canonical(e, &b)));
        assert_int_equal(b.size, 0);
        cf_buf_done(&b);
        json_decref(e);
}

#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"
#define T   "\"2026-01-02T03:04:05Z\""

static void test_non_canonical_entries(void **state)
{
        (void)state;
        /* missing, extra or renamed keys */
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\"}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{},\"x\":1}");
        expect_not_canonical("{\"Seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        /* seq: 0, negative, real, string */
        expect_not_canonical("{\"seq\":0,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":-1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1.0,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":\"1\",\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        /* prev: upper case, short, long */
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{\"r\":0.5}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"A" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"ABCDEF0000000000000000000000000000000000000"
                             "000000000000000000000\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"00\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        /* time: offset, fraction, not a time */
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":\"2026-01-02T03:04:05+00:00"
                             "\",\"type\":\"a\",\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":\"2026-01-02T03:04:05.0Z"
                             "\",\"type\":\"a\",\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":5,\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{}}");
        /* type, actor, details */
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"A\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"\","
                             "\"actor\":\"w\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"a\\nb\",\"details\":{}}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":[]}");
        expect_not_canonical("{\"seq\":1,\"prev\":\"" Z64 "\",\"time\":" T ",\"type\":\"a\","
                             "\"actor\":\"w\",\"details\":{\"a\":[[[[[[[[[1]]]]]]]]]}}");
}

/* The attestation report data binds both keys in a fixed order behind its own domain. */
static void test_cas_report_data(void **state)
{
        uint8_t kid[32], key[32], nonce[5] = "nonce", rd[64], again[64], flat[25 + 32 + 32 + 5];

        (void)state;
        memset(kid, 0x11, sizeof(kid));
        memset(key, 0x22, sizeof(key));
        memcpy(flat, "coffer-cas-attestation-v2", 25);
        memcpy(flat + 25, kid, 32);
        memcpy(flat + 57, key, 32);
        memcpy(flat + 89, nonce, 5);
        struct cf_slice all = cf_slice_make(flat, sizeof(flat));
        assert_true(cf_ok(audit_cas_report_data(kid, key, cf_slice_make(nonce, 5), rd)));
        assert_true(cf_ok(cf_sha512(&all, 1, again)));
        assert_memory_equal(rd, again, 64);
        /* swapping the two keys changes it */
        assert_true(cf_ok(audit_cas_report_data(key, kid, cf_slice_make(nonce, 5), again)));
        assert_memory_not_equal(rd, again, 64);
}

/* ---- the chain in cofferd ----------------------------------------------------------- */

static void test_append_read_verify(void **state)
{
        struct fixture *f = *state;
        json_t *doc, *e;
        char prev[AUDIT_HASH_HEX];
        uint64_t seq = 99;

        doc = download(f);
        assert_int_equal(verify(doc, NULL), AUDIT_VALID); /* the empty chain */
        json_decref(doc);
        for (int i = 0; i < 7; i++) {
                append(f, i % 2 ? "policy.update" : "policy.create", "app");
        }
        doc = download(f);
        assert_int_equal(verify(doc, &seq), AUDIT_VALID);
        assert_int_equal(seq, 0);
        assert_int_equal(json_array_size(entries_of(doc)), 7);
        /* entry 1 starts from zero, every other one links to its predecessor */
        memcpy(prev, audit_zero_hash, sizeof(prev));
        for (size_t i = 0; i < 7; i++) {
                struct cf_buf b;
                e = json_array_get(entries_of(doc), i);
                assert_int_equal(json_integer_value(json_object_get(e, "seq")), i + 1);
                assert_string_equal(json_string_value(json_object_get(e, "prev")), prev);
                cf_buf_init(&b, AUDIT_ENTRY_MAX, false);
                assert_true(cf_ok(audit_entry_canonical(e, &b)));
                assert_true(cf_ok(audit_hash_hex(cf_buf_slice(&b), prev)));
                cf_buf_done(&b);
        }
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(doc, "head"), "hash")), prev);
        json_decref(doc);
}

static void test_pages(void **state)
{
        struct fixture *f = *state;
        json_t *page = NULL;
        uint64_t head = 0;

        for (int i = 0; i < 5; i++) {
                append(f, "collateral.import", "c");
        }
        assert_true(cf_ok(cas_audit_read(&f->w, 2, 2, &page, &head)));
        assert_int_equal(head, 5);
        assert_int_equal(json_array_size(page), 2);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 0), "seq")), 2);
        json_decref(page);
        assert_true(cf_ok(cas_audit_read(&f->w, 5, 100, &page, &head)));
        assert_int_equal(json_array_size(page), 1);
        json_decref(page);
        assert_true(cf_ok(cas_audit_read(&f->w, 9, 100, &page, &head)));
        assert_int_equal(json_array_size(page), 0);
        json_decref(page);
        assert_false(cf_ok(cas_audit_read(&f->w, 0, 100, &page, &head)));
}

static void test_bad_appends_leave_chain_alone(void **state)
{
        struct fixture *f = *state;
        json_t *page = NULL;
        uint64_t head = 0;
        char big[2000];

        append(f, "policy.create", "a");
        assert_false(cf_ok(cas_audit_append(&f->w, "Policy.Create", "x", json_object())));
        assert_false(cf_ok(cas_audit_append(&f->w, "a", "x", json_array())));
        assert_false(cf_ok(cas_audit_append(&f->w, "a", "x", NULL)));
        assert_false(cf_ok(cas_audit_append(&f->w, "a", "", json_object())));
        assert_false(cf_ok(cas_audit_append(&f->w, "a", "x", json_pack("{s:f}", "r", 0.5))));
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        json_t *huge = json_array();
        for (int i = 0; i < 40; i++) {
                json_array_append_new(huge, json_string(big));
        }
        assert_false(cf_ok(cas_audit_append(&f->w, "a", "x", json_pack("{s:o}", "l", huge))));
        append(f, "policy.update", "a");
        assert_true(cf_ok(cas_audit_read(&f->w, 1, 100, &page, &head)));
        assert_int_equal(head, 2);
        json_decref(page);
        json_t *doc = download(f);
        assert_int_equal(verify(doc, NULL), AUDIT_VALID);
        json_decref(doc);
}

static void test_restart_continues_chain(void **state)
{
        struct fixture *f = *state;
        uint8_t k1[AUDIT_KEY_SIZE], k2[AUDIT_KEY_SIZE];
        json_t *doc;

        append(f, "policy.create", "a");
        append(f, "policy.update", "a");
        cas_audit_public_key(k1);
        assert_true(cf_ok(cas_audit_init(&f->cas)));
        cas_audit_public_key(k2);
        assert_memory_equal(k1, k2, sizeof(k1)); /* the key is kept, sealed in the store */
        append(f, "policy.delete", "a");
        doc = download(f);
        assert_int_equal(verify(doc, NULL), AUDIT_VALID);
        assert_int_equal(json_array_size(entries_of(doc)), 3);
        json_decref(doc);
}

struct thread_arg {
        struct fixture *f;
        struct cas_worker w;
        int n;
};

static void *appender(void *p)
{
        struct thread_arg *a = p;

        for (int i = 0; i < a->n; i++) {
                if (!cf_ok(cas_audit_append(&a->w, "activation.granted", "workload",
                                            json_pack("{s:i}", "i", i)))) {
                        return p;
                }
        }
        return NULL;
}

static void test_concurrent_appends(void **state)
{
        struct fixture *f = *state;
        struct thread_arg a[4];
        pthread_t t[4];
        json_t *doc;

        for (int i = 0; i < 4; i++) {
                a[i].f = f;
                a[i].w.cas = &f->cas;
                a[i].n = 40;
                assert_true(cf_ok(
                    store_open_sqlite(f->cas.store_path, f->cas.data_key->ptr, &a[i].w.store)));
                assert_int_equal(pthread_create(&t[i], NULL, appender, &a[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                void *r = &a[i];
                assert_int_equal(pthread_join(t[i], &r), 0);
                assert_null(r);
                store_close(a[i].w.store);
        }
        doc = download(f);
        assert_int_equal(json_array_size(entries_of(doc)), 160);
        assert_int_equal(verify(doc, NULL), AUDIT_VALID);
        json_decref(doc);
}

/* Another writer of the same store took the next seq: the append conflicts, cofferd reloads
 * the head from the store and chains its entry after the foreign one. */
static void test_conflicting_writer_is_followed(void **state)
{
        struct fixture *f = *state;
        char sig[2 * AUDIT_SIG_SIZE + 1];
        json_t *head = NULL, *e, *doc;
        struct cf_buf b;

        append(f, "policy.create", "a");
        assert_true(cf_ok(cas_audit_head(&head, sig)));
        e = json_pack("{s:i, s:O, s:s, s:s, s:s, s:{}}", "seq", 2, "prev",
                      json_object_get(head, "hash"), "time", "2026-01-01T00:00:00Z", "type",
                      "policy.update", "actor", "someone-else", "details");
        json_decref(head);
        cf_buf_init(&b, AUDIT_ENTRY_MAX, false);
        assert_true(cf_ok(audit_entry_canonical(e, &b)));
        assert_true(
            cf_ok(store_put(f->w.store, AUDIT_TABLE, "00000000000000000002", 1, cf_buf_slice(&b))));
        cf_buf_done(&b);
        json_decref(e);
        append(f, "policy.delete", "a");
        doc = download(f);
        assert_int_equal(json_array_size(entries_of(doc)), 3);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(entries_of(doc), 1), "actor")),
            "someone-else");
        assert_int_equal(verify(doc, NULL), AUDIT_VALID);
        json_decref(doc);
}

/* ---- a tampered store ------------------------------------------------------------------ */

static void sql(const struct fixture *f, const char *stmt, bool changes)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(f->cas.store_path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
        if (changes) {
                assert_true(sqlite3_changes(db) > 0);
        }
        sqlite3_close(db);
}

/* Flips one bit of a stored value, the way a host editing the file would. */
static void flip_value_bit(const struct fixture *f, const char *key, int offset, int bit)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        uint8_t v[4096];
        int n;

        assert_int_equal(sqlite3_open(f->cas.store_path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT value FROM kv WHERE tbl = 'audit' AND "
                                            "key = ?1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_bytes(st, 0);
        assert_true(n > offset && (size_t)n <= sizeof(v));
        memcpy(v, sqlite3_column_blob(st, 0), (size_t)n);
        sqlite3_finalize(st);
        v[offset] ^= (uint8_t)(1u << bit);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "UPDATE kv SET value = ?1 WHERE tbl = 'audit' "
                                            "AND key = ?2",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(st, 1, v, n, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static void expect_read_tampered(struct fixture *f)
{
        json_t *page = NULL;
        uint64_t head = 0;
        cf_status s = cas_audit_read(&f->w, 1, 100, &page, &head);

        assert_int_equal(s.code, CF_E_TAMPERED);
        assert_null(page);
}

static void test_store_edit_detected(void **state)
{
        struct fixture *f = *state;

        for (int i = 0; i < 4; i++) {
                append(f, "policy.create", "x");
        }
        /* flip one byte in the middle of entry 2's sealed value */
        flip_value_bit(f, "00000000000000000002", 40, 0);
        expect_read_tampered(f);
        assert_true(atomic_load(&f->cas.metrics.tamper_detected) > 0);
}

static void test_store_swap_and_delete_detected(void **state)
{
        struct fixture *f = *state;

        for (int i = 0; i < 4; i++) {
                append(f, "policy.create", "x");
        }
        sql(f,
            "UPDATE kv SET value = (SELECT value FROM kv WHERE tbl = 'audit' AND key = "
            "'00000000000000000003') WHERE tbl = 'audit' AND key = '00000000000000000002'",
            true);
        expect_read_tampered(f);
        sql(f, "DELETE FROM kv WHERE tbl = 'audit' AND key = '00000000000000000002'", true);
        expect_read_tampered(f);
        /* a hole in the chain also stops a restart */
        assert_int_equal(cas_audit_init(&f->cas).code, CF_E_TAMPERED);
}

static void test_store_last_entry_edit_stops_restart(void **state)
{
        struct fixture *f = *state;

        append(f, "policy.create", "x");
        append(f, "policy.create", "y");
        flip_value_bit(f, "00000000000000000002", 30, 2);
        assert_int_equal(cas_audit_init(&f->cas).code, CF_E_TAMPERED);
}

/* ---- the offline verifier -------------------------------------------------------------- */

static json_t *chain_of(struct fixture *f, int n)
{
        char name[16];

        for (int i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "p%d", i);
                append(f, "policy.create", name);
        }
        return download(f);
}

static void test_verify_deletion(void **state)
{
        struct fixture *f = *state;
        json_t *doc = chain_of(f, 6);
        uint64_t seq;

        for (size_t k = 0; k < 6; k++) {
                json_t *copy = json_deep_copy(doc);
                json_array_remove(entries_of(copy), k);
                /* the last one gone looks like truncation; any other is a deletion */
                assert_int_equal(verify(copy, &seq), k == 5 ? AUDIT_TRUNCATED : AUDIT_DELETED);
                assert_int_equal(seq, k + 1);
                json_decref(copy);
        }
        json_decref(doc);
}

static void test_verify_edit_every_field(void **state)
{
        struct fixture *f = *state;
        json_t *doc = chain_of(f, 5);
        static const char *const fields[] = {"details", "time", "type", "actor", "prev"};
        uint64_t seq;

        for (size_t k = 0; k < 5; k++) {
                for (size_t j = 0; j < 5; j++) {
                        json_t *copy = json_deep_copy(doc);
                        json_t *e = json_array_get(entries_of(copy), k);
                        if (strcmp(fields[j], "details") == 0) {
                                json_object_set_new(json_object_get(e, "details"), "policy",
                                                    json_string("evil"));
                        } else if (strcmp(fields[j], "time") == 0) {
                                json_object_set_new(e, "time", json_string("2001-01-01T00:00:00Z"));
                        } else if (strcmp(fields[j], "type") == 0) {
                                json_object_set_new(e, "type", json_string("policy.delete"));
                        } else if (strcmp(fields[j], "actor") == 0) {
                                json_object_set_new(e, "actor", json_string("workload"));
                        } else {
                                json_object_set_new(e, "prev",
                                                    json_string("ab00000000000000000000000000000000"
                                                                "0000000000000000000000000000cd"));
                        }
                        assert_int_equal(verify(copy, &seq), AUDIT_EDITED);
                        assert_int_equal(seq, k + 1);
                        json_decref(copy);
                }
        }
        json_decref(doc);
}

static void test_verify_reorder_duplicate_truncate_extend(void **state)
{
        struct fixture *f = *state;
        json_t *doc = chain_of(f, 5), *copy, *e;
        uint64_t seq;

        for (size_t k = 0; k + 1 < 5; k++) {
                copy = json_deep_copy(doc);
                e = json_incref(json_array_get(entries_of(copy), k));
                json_array_remove(entries_of(copy), k);
                json_array_insert_new(entries_of(copy), k + 1, e);
                assert_int_equal(verify(copy, &seq), AUDIT_REORDERED);
                assert_int_equal(seq, k + 1);
                json_decref(copy);
        }
        copy = json_deep_copy(doc);
        json_array_insert(entries_of(copy), 3, json_array_get(entries_of(copy), 2));
        assert_int_equal(verify(copy, &seq), AUDIT_DUPLICATE);
        assert_int_equal(seq, 3);
        json_decref(copy);
        /* truncation at every length */
        for (size_t keep = 0; keep < 5; keep++) {
                copy = json_deep_copy(doc);
                while (json_array_size(entries_of(copy)) > keep) {
                        json_array_remove(entries_of(copy), keep);
                }
                assert_int_equal(verify(copy, &seq), AUDIT_TRUNCATED);
                assert_int_equal(seq, keep + 1);
                json_decref(copy);
        }
        /* an entry appended without the key is not covered by the head */
        copy = json_deep_copy(doc);
        e = json_deep_copy(json_array_get(entries_of(copy), 4));
        json_object_set_new(e, "seq", json_integer(6));
        json_array_append_new(entries_of(copy), e);
        assert_int_equal(verify(copy, &seq), AUDIT_UNSIGNED);
        assert_int_equal(seq, 6);
        json_decref(copy);
        json_decref(doc);
}

static void test_verify_head_signature_and_key(void **state)
{
        struct fixture *f = *state;
        json_t *doc = chain_of(f, 3), *copy, *head;
        const char *sig = json_string_value(json_object_get(doc, "signature"));
        uint8_t pub[AUDIT_KEY_SIZE], other[AUDIT_KEY_SIZE] = {1};
        struct audit_verdict v;
        char flipped[2 * AUDIT_SIG_SIZE + 1];

        /* every hex digit of the signature */
        for (size_t i = 0; i < 2 * AUDIT_SIG_SIZE; i++) {
                snprintf(flipped, sizeof(flipped), "%s", sig);
                flipped[i] = flipped[i] == '0' ? '1' : '0';
                copy = json_deep_copy(doc);
                json_object_set_new(copy, "signature", json_string(flipped));
                assert_int_equal(verify(copy, NULL), AUDIT_SIGNATURE);
                json_decref(copy);
        }
        /* a head that claims another seq, hash or time */
        copy = json_deep_copy(doc);
        head = json_object_get(copy, "head");
        json_object_set_new(head, "seq", json_integer(2));
        assert_int_equal(verify(copy, NULL), AUDIT_SIGNATURE);
        json_decref(copy);
        copy = json_deep_copy(doc);
        json_object_set_new(json_object_get(copy, "head"), "time",
                            json_string("2099-01-01T00:00:00Z"));
        assert_int_equal(verify(copy, NULL), AUDIT_SIGNATURE);
        json_decref(copy);
        /* pinning */
        cas_audit_public_key(pub);
        assert_true(cf_ok(audit_verify_chain(doc, pub, &v)));
        assert_int_equal(audit_verify_chain(doc, other, &v).code, CF_E_TAMPERED);
        assert_int_equal(v.problem, AUDIT_KEY);
        /* the envelope fails closed */
        copy = json_deep_copy(doc);
        json_object_set_new(copy, "format", json_string("coffer-audit-chain-v2"));
        assert_int_equal(verify(copy, NULL), AUDIT_MALFORMED);
        json_decref(copy);
        copy = json_deep_copy(doc);
        json_object_set_new(copy, "extra", json_true());
        assert_int_equal(verify(copy, NULL), AUDIT_MALFORMED);
        json_decref(copy);
        copy = json_deep_copy(doc);
        json_object_del(copy, "signature");
        assert_int_equal(verify(copy, NULL), AUDIT_MALFORMED);
        json_decref(copy);
        copy = json_deep_copy(doc);
        json_object_set_new(copy, "audit_key", json_string("00"));
        assert_int_equal(verify(copy, NULL), AUDIT_MALFORMED);
        json_decref(copy);
        json_decref(doc);
}

/* Every prefix of the serialised download fails to parse or fails to verify. */
static void test_verify_truncated_text(void **state)
{
        struct fixture *f = *state;
        json_t *doc = chain_of(f, 2);
        char *text = json_dumps(doc, JSON_COMPACT);
        size_t n = strlen(text);

        for (size_t cut = 0; cut < n; cut++) {
                json_error_t err;
                json_t *j = json_loadb(text, cut, JSON_REJECT_DUPLICATES, &err);
                if (j != NULL) {
                        assert_int_not_equal(verify(j, NULL), AUDIT_VALID);
                        json_decref(j);
                }
        }
        free(text);
        json_decref(doc);
}

static void test_compare_fork_and_rollback(void **state)
{
        struct fixture *f = *state;
        char copy_path[sizeof(f->cas.store_path)], cmd[2600];
        json_t *a, *b, *old, *later;
        struct audit_verdict v;

        for (int i = 0; i < 3; i++) {
                append(f, "policy.create", "common");
        }
        old = download(f);
        /* a copy of the database as it is now (same data key, hence the same audit key) */
        snprintf(copy_path, sizeof(copy_path), "%s/copy.db", f->dir);
        snprintf(cmd, sizeof(cmd), "VACUUM INTO '%s'", copy_path);
        sql(f, cmd, false);
        append(f, "policy.update", "a-branch");
        append(f, "policy.update", "a-branch");
        a = download(f);
        /* cofferd restarted on the copy and went on: a fork from entry 4 */
        close_worker(f);
        snprintf(f->cas.store_path, sizeof(f->cas.store_path), "%s", copy_path);
        assert_true(cf_ok(cas_audit_init(&f->cas)));
        open_worker(f);
        append(f, "policy.update", "b-branch");
        b = download(f);
        assert_int_equal(verify(a, NULL), AUDIT_VALID);
        assert_int_equal(verify(b, NULL), AUDIT_VALID);
        assert_int_equal(audit_compare_chains(a, b, &v).code, CF_E_TAMPERED);
        assert_int_equal(v.problem, AUDIT_FORK);
        assert_int_equal(v.seq, 4);
        assert_int_equal(audit_compare_chains(b, a, &v).code, CF_E_TAMPERED);
        assert_int_equal(v.seq, 4);
        /* a prefix is consistent, and so is a copy with itself */
        assert_true(cf_ok(audit_compare_chains(old, a, &v)));
        assert_true(cf_ok(audit_compare_chains(b, old, &v)));
        assert_true(cf_ok(audit_compare_chains(a, a, &v)));
        /* back on the first database: its tail deleted while cofferd was stopped cannot be
         * seen by cofferd, but a head signed later over fewer entries is a rollback */
        close_worker(f);
        snprintf(f->cas.store_path, sizeof(f->cas.store_path), "%s/store.db", f->dir);
        cas_audit_done();
        sql(f, "DELETE FROM kv WHERE tbl = 'audit' AND key >= '00000000000000000004'", true);
        assert_true(cf_ok(cas_audit_init(&f->cas)));
        open_worker(f);
        sleep(1); /* head times have one-second resolution */
        later = download(f);
        assert_int_equal(json_array_size(entries_of(later)), 3);
        assert_int_equal(verify(later, NULL), AUDIT_VALID);
        assert_int_equal(audit_compare_chains(a, later, &v).code, CF_E_TAMPERED);
        assert_int_equal(v.problem, AUDIT_ROLLBACK);
        assert_int_equal(v.seq, 4);
        assert_int_equal(audit_compare_chains(later, a, &v).code, CF_E_TAMPERED);
        assert_int_equal(v.problem, AUDIT_ROLLBACK);
        /* compare refuses chains that do not verify */
        json_object_set_new(later, "signature", json_string("00"));
        assert_int_equal(audit_compare_chains(a, later, &v).code, CF_E_TAMPERED);
        assert_int_equal(v.problem, AUDIT_MALFORMED);
        json_decref(a);
        json_decref(b);
        json_decref(old);
        json_decref(later);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_canonical_known_answer),
            cmocka_unit_test(test_non_canonical_entries),
            cmocka_unit_test(test_cas_report_data),
            cmocka_unit_test_setup_teardown(test_append_read_verify, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pages, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_appends_leave_chain_alone, setup, teardown),
            cmocka_unit_test_setup_teardown(test_restart_continues_chain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
            cmocka_unit_test_setup_teardown(test_conflicting_writer_is_followed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store_edit_detected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store_swap_and_delete_detected, setup, teardown),
            cmocka_unit_test_setup_teardown(test_store_last_entry_edit_stops_restart, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_verify_deletion, setup, teardown),
            cmocka_unit_test_setup_teardown(test_verify_edit_every_field, setup, teardown),
            cmocka_unit_test_setup_teardown(test_verify_reorder_duplicate_truncate_extend, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_verify_head_signature_and_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_verify_truncated_text, setup, teardown),
            cmocka_unit_test_setup_teardown(test_compare_fork_and_rollback, setup, teardown),
        };

        if (!cf_ok(cf_mem_init()) || !cf_ok(cf_crypto_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
