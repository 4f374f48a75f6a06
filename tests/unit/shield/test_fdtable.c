/* Unit tests of src/shield/preload: the fd table and open file descriptions (what dup and
 * close rely on), path normalisation and mount matching (what decides shield or libc), the
 * status-to-errno mapping, and the configuration parser with its negative cases
 * (truncation at every offset, every bad field, unknown keys, duplicate keys, limits). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "shield/preload/preload_internal.h"

static struct pre_ofd *new_ofd(const char *path)
{
        struct pre_ofd *o = NULL;
        assert_true(cf_ok(pre_ofd_new(NULL, path, 2, false, &o)));
        assert_non_null(o);
        assert_int_equal(o->refs, 1);
        assert_string_equal(o->path, path);
        return o;
}

static void test_set_get_take(void **state)
{
        (void)state;
        struct pre_fdtable t;
        pre_fdtable_init(&t);
        assert_null(pre_fdtable_get(&t, 3));
        assert_null(pre_fdtable_get(&t, -1));
        struct pre_ofd *o = new_ofd("a/b");
        assert_true(cf_ok(pre_fdtable_set(&t, 3, o)));
        assert_int_equal(o->refs, 2);
        assert_ptr_equal(pre_fdtable_get(&t, 3), o);
        assert_null(pre_fdtable_get(&t, 4));
        assert_int_equal(pre_fdtable_count(&t), 1);
        /* A bound slot is never silently replaced. */
        assert_int_equal(pre_fdtable_set(&t, 3, o).code, CF_E_EXISTS);
        assert_int_equal(o->refs, 2);
        assert_ptr_equal(pre_fdtable_take(&t, 3), o);
        assert_null(pre_fdtable_get(&t, 3));
        assert_null(pre_fdtable_take(&t, 3));
        assert_int_equal(pre_fdtable_count(&t), 0);
        assert_false(pre_ofd_unref(o)); /* the table's reference */
        assert_true(pre_ofd_unref(o));  /* ours: the last */
        pre_ofd_free(o);
        pre_fdtable_done(&t);
}

static void test_bounds(void **state)
{
        (void)state;
        struct pre_fdtable t;
        pre_fdtable_init(&t);
        struct pre_ofd *o = new_ofd("");
        assert_int_equal(pre_fdtable_set(&t, -1, o).code, CF_E_INVALID_ARG);
        assert_int_equal(pre_fdtable_set(&t, PRE_FD_MAX, o).code, CF_E_INVALID_ARG);
        assert_int_equal(pre_fdtable_set(&t, 0, NULL).code, CF_E_INVALID_ARG);
        assert_int_equal(o->refs, 1);
        /* The largest accepted descriptor and growth across several doublings. */
        assert_true(cf_ok(pre_fdtable_set(&t, PRE_FD_MAX - 1, o)));
        assert_true(cf_ok(pre_fdtable_set(&t, 0, o)));
        assert_true(cf_ok(pre_fdtable_set(&t, 70, o)));
        assert_int_equal(o->refs, 4);
        assert_null(pre_fdtable_get(&t, PRE_FD_MAX));
        assert_null(pre_fdtable_take(&t, PRE_FD_MAX));
        assert_null(pre_fdtable_take(&t, -5));
        assert_ptr_equal(pre_fdtable_get(&t, PRE_FD_MAX - 1), o);
        assert_ptr_equal(pre_fdtable_get(&t, 0), o);
        assert_ptr_equal(pre_fdtable_get(&t, 70), o);
        assert_null(pre_fdtable_get(&t, 71));
        assert_int_equal(pre_fdtable_count(&t), 3);
        for (int fd = 0; fd < PRE_FD_MAX; fd++) {
                struct pre_ofd *x = pre_fdtable_take(&t, fd);
                if (x != NULL) {
                        assert_false(pre_ofd_unref(x));
                }
        }
        assert_int_equal(pre_fdtable_count(&t), 0);
        assert_true(pre_ofd_unref(o));
        pre_ofd_free(o);
        pre_fdtable_done(&t);
}

/* dup semantics: several descriptors share one description; it goes with the last one. */
static void test_dup_sharing(void **state)
{
        (void)state;
        struct pre_fdtable t;
        pre_fdtable_init(&t);
        struct pre_ofd *a = new_ofd("x");
        struct pre_ofd *b = new_ofd("y");
        int fds[] = {5, 9, 200};
        for (size_t i = 0; i < 3; i++) {
                assert_true(cf_ok(pre_fdtable_set(&t, fds[i], a)));
        }
        assert_true(cf_ok(pre_fdtable_set(&t, 6, b)));
        assert_false(pre_ofd_unref(a));
        assert_false(pre_ofd_unref(b));
        assert_int_equal(a->refs, 3);
        pre_fdtable_get(&t, 9)->off = 1234;                    /* an lseek through one dup ... */
        assert_int_equal(pre_fdtable_get(&t, 200)->off, 1234); /* ... moves them all */
        /* dup2(6, 9): 9 drops a, then shares b. */
        struct pre_ofd *prev = pre_fdtable_take(&t, 9);
        assert_ptr_equal(prev, a);
        assert_false(pre_ofd_unref(prev));
        assert_true(cf_ok(pre_fdtable_set(&t, 9, b)));
        assert_int_equal(a->refs, 2);
        assert_int_equal(b->refs, 2);
        int order[] = {5, 6, 200, 9};
        bool last[] = {false, false, true, true};
        for (size_t i = 0; i < 4; i++) {
                struct pre_ofd *o = pre_fdtable_take(&t, order[i]);
                assert_non_null(o);
                bool was_last = pre_ofd_unref(o);
                assert_int_equal(was_last, last[i]);
                if (was_last) {
                        pre_ofd_free(o);
                }
        }
        assert_int_equal(pre_fdtable_count(&t), 0);
        pre_ofd_free(NULL);
        pre_fdtable_done(&t);
}

static void check_norm(const char *in, const char *want)
{
        char out[64];
        cf_status s = pre_path_normalize(in, out, sizeof(out));
        if (want == NULL) {
                assert_false(cf_ok(s));
                return;
        }
        assert_true(cf_ok(s));
        assert_string_equal(out, want);
}

static void test_normalize(void **state)
{
        (void)state;
        check_norm("/", "/");
        check_norm("//", "/");
        check_norm("/a", "/a");
        check_norm("/a/", "/a");
        check_norm("//a//b///c", "/a/b/c");
        check_norm("/a/./b/.", "/a/b");
        check_norm("/a/b/../c", "/a/c");
        check_norm("/a/b/../../..", "/");
        check_norm("/../a", "/a");
        check_norm("/a/..b/.c", "/a/..b/.c");
        check_norm("/mnt/vol/../vol/x", "/mnt/vol/x");
        check_norm("relative", NULL);
        check_norm("", NULL);
        /* Too long for the output: refused, never cut. */
        char out[8];
        assert_int_equal(pre_path_normalize("/abcdefgh", out, sizeof(out)).code, CF_E_LIMIT);
        assert_true(cf_ok(pre_path_normalize("/abcdef", out, sizeof(out))));
        assert_int_equal(pre_path_normalize("/a", out, 1).code, CF_E_INVALID_ARG);
}

static void test_under(void **state)
{
        (void)state;
        const char *m = "/mnt/vol";
        size_t n = strlen(m);
        const char *rest = NULL;
        assert_true(pre_path_under("/mnt/vol", m, n, &rest));
        assert_string_equal(rest, "");
        assert_true(pre_path_under("/mnt/vol/a/b", m, n, &rest));
        assert_string_equal(rest, "a/b");
        assert_false(pre_path_under("/mnt/volume", m, n, &rest));
        assert_false(pre_path_under("/mnt/vo", m, n, &rest));
        assert_false(pre_path_under("/mnt", m, n, &rest));
        assert_false(pre_path_under("/other/mnt/vol", m, n, &rest));
}

static void test_errno(void **state)
{
        (void)state;
        assert_int_equal(pre_errno(CF_OK), 0);
        assert_int_equal(pre_errno((cf_status){CF_E_NOT_FOUND}), ENOENT);
        assert_int_equal(pre_errno((cf_status){CF_E_EXISTS}), EEXIST);
        assert_int_equal(pre_errno((cf_status){CF_E_NOMEM}), ENOMEM);
        assert_int_equal(pre_errno((cf_status){CF_E_LIMIT}), EFBIG);
        assert_int_equal(pre_errno((cf_status){CF_E_INVALID_ARG}), EINVAL);
        /* Every integrity failure looks like a failing disk, never like data. */
        int integrity[] = {CF_E_MAC_INVALID, CF_E_TAMPERED,  CF_E_TRUNCATED,
                           CF_E_ROLLBACK,    CF_E_MALFORMED, CF_E_IO};
        for (size_t i = 0; i < sizeof(integrity) / sizeof(integrity[0]); i++) {
                assert_int_equal(pre_errno((cf_status){integrity[i]}), EIO);
        }
}

/* ---- configuration */

#define KEY_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 0..31 */
#define TAG_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define GOOD                                                                                       \
        "{\"volumes\": [{\"mount\": \"/mnt/a\", \"backing\": \"/var/b\", \"key\": \"" KEY_B64      \
        "\",\n \"expected_tags\": [\"" TAG_HEX "\"], \"accept_any_tag\": false, "                  \
        "\"create\": true}, {\"mount\": \"/mnt/c\", \"backing\": \"/var/d\", \"key\": \"" KEY_B64  \
        "\"}]}"

static cf_status parse(const char *doc, struct pre_config *c)
{
        return pre_config_parse((const uint8_t *)doc, strlen(doc), c);
}

static struct pre_config g_cfg;

static void test_config_good(void **state)
{
        (void)state;
        assert_true(cf_ok(parse(GOOD, &g_cfg)));
        assert_int_equal(g_cfg.n_vol, 2);
        assert_string_equal(g_cfg.vol[0].mount, "/mnt/a");
        assert_string_equal(g_cfg.vol[0].backing, "/var/b");
        for (uint8_t i = 0; i < SHIELD_KEY_SIZE; i++) {
                assert_int_equal(g_cfg.vol[0].key[i], i);
        }
        assert_int_equal(g_cfg.vol[0].n_tags, 1);
        assert_int_equal(g_cfg.vol[0].tags[0][0], 0x00);
        assert_int_equal(g_cfg.vol[0].tags[0][31], 0xff);
        assert_true(g_cfg.vol[0].create);
        assert_false(g_cfg.vol[0].accept_any_tag);
        assert_false(g_cfg.vol[1].create);
        assert_int_equal(g_cfg.vol[1].n_tags, 0);
        pre_config_wipe(&g_cfg);
        assert_int_equal(g_cfg.n_vol, 0);
        assert_int_equal(g_cfg.vol[0].key[5], 0);
        /* Empty list, white space, escapes in paths. */
        assert_true(cf_ok(parse(" { \"volumes\" : [ ] } \n", &g_cfg)));
        assert_int_equal(g_cfg.n_vol, 0);
        assert_true(cf_ok(parse("{\"volumes\":[{\"mount\":\"\\/m\\/x\",\"backing\":\"/b\","
                                "\"key\":\"" KEY_B64 "\",\"expected_tags\":[]}]}",
                                &g_cfg)));
        assert_string_equal(g_cfg.vol[0].mount, "/m/x");
        assert_int_equal(g_cfg.vol[0].cache_bytes, SHIELD_CACHE_DEFAULT); /* absent: default */
        pre_config_wipe(&g_cfg);
        /* The plaintext cache: 0 (off) and the largest value. */
        assert_true(cf_ok(
            parse("{\"volumes\":[{\"mount\":\"/m\",\"backing\":\"/b\",\"key\":\"" KEY_B64
                  "\",\"cache_mib\":0},{\"mount\":\"/n\",\"backing\":\"/c\",\"key\":\"" KEY_B64
                  "\",\"cache_mib\":4096}]}",
                  &g_cfg)));
        assert_int_equal(g_cfg.vol[0].cache_bytes, 0);
        assert_int_equal(g_cfg.vol[1].cache_bytes, (size_t)4096 << 20);
        pre_config_wipe(&g_cfg);
}

static void test_config_truncated(void **state)
{
        (void)state;
        size_t n = strlen(GOOD);
        for (size_t i = 0; i < n; i++) {
                cf_status s = pre_config_parse((const uint8_t *)GOOD, i, &g_cfg);
                assert_false(cf_ok(s));
                assert_int_equal(g_cfg.n_vol, 0); /* wiped on failure */
                assert_int_equal(g_cfg.vol[0].key[1], 0);
        }
}

static void test_config_bad(void **state)
{
        (void)state;
        const char *bad[] = {
            "",
            "[]",
            "{\"volumes\": {}}",
            "{\"vols\": []}",
            "{\"volumes\": []} x",
            "{\"volumes\": []}{}",
            "{\"volumes\": [{}]}",
            /* missing key, mount or backing */
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\"}]}",
            "{\"volumes\": [{\"backing\": \"/b\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"key\": \"" KEY_B64 "\"}]}",
            /* unknown and duplicate keys */
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"extra\": true}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"mount\": \"/n\", \"backing\": \"/b\", "
            "\"key\": \"" KEY_B64 "\"}]}",
            /* paths: relative, not normal, the root, nested mounts */
            "{\"volumes\": [{\"mount\": \"m\", \"backing\": \"/b\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m/\", \"backing\": \"/b\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m/../n\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\"}]}",
            "{\"volumes\": [{\"mount\": \"/\", \"backing\": \"/b\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"b\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\"}, {\"mount\": \"/m/x\", \"backing\": \"/c\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\"}, {\"mount\": \"/m\", \"backing\": \"/c\", \"key\": \"" KEY_B64 "\"}]}",
            /* keys: short, long, not base64 */
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"AAAA\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "AAAA\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"!!!!\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": 5}]}",
            /* tags: short, not hex, not a list, too many */
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"expected_tags\": [\"0011\"]}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"expected_tags\": [\"" TAG_HEX "0\"]}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"expected_tags\": [\"zz112233445566778899aabbccddeeff00112233445566778899"
            "aabbccddeeff\"]}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"expected_tags\": \"" TAG_HEX "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"expected_tags\": [\"" TAG_HEX "\", \"" TAG_HEX "\", \"" TAG_HEX "\", \"" TAG_HEX
            "\", \"" TAG_HEX "\"]}]}",
            /* booleans and strings */
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"create\": 1}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"create\": tru}]}",
            "{\"volumes\": [{\"mount\": \"/m\\u0041\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\n\", \"backing\": \"/b\", \"key\": \"" KEY_B64 "\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64 "\",}]}",
            /* cache_mib: too large, negative, a string, a fraction, repeated */
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"cache_mib\": 4097}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"cache_mib\": -1}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"cache_mib\": \"64\"}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"cache_mib\": 1.5}]}",
            "{\"volumes\": [{\"mount\": \"/m\", \"backing\": \"/b\", \"key\": \"" KEY_B64
            "\", \"cache_mib\": 1, \"cache_mib\": 2}]}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cf_status s = parse(bad[i], &g_cfg);
                if (cf_ok(s)) {
                        fail_msg("accepted bad config %zu: %s", i, bad[i]);
                }
                assert_int_equal(g_cfg.n_vol, 0);
        }
}

static void test_config_limits(void **state)
{
        (void)state;
        /* PRE_VOLUMES_MAX volumes are accepted, one more is not. */
        struct cf_buf b;
        cf_buf_init(&b, (size_t)1 << 20, false);
        for (unsigned n = PRE_VOLUMES_MAX; n <= PRE_VOLUMES_MAX + 1; n++) {
                cf_buf_reset(&b);
                assert_true(cf_ok(cf_buf_append_str(&b, "{\"volumes\": [")));
                for (unsigned i = 0; i < n; i++) {
                        assert_true(cf_ok(cf_buf_printf(&b,
                                                        "%s{\"mount\": \"/m%u\", \"backing\": "
                                                        "\"/b\", \"key\": \"" KEY_B64 "\"}",
                                                        i > 0 ? ", " : "", i)));
                }
                assert_true(cf_ok(cf_buf_append_str(&b, "]}")));
                cf_status s = pre_config_parse(b.ptr, b.size, &g_cfg);
                if (n == PRE_VOLUMES_MAX) {
                        assert_true(cf_ok(s));
                } else {
                        assert_int_equal(s.code, CF_E_LIMIT);
                }
                pre_config_wipe(&g_cfg);
        }
        /* A path of PRE_PATH_MAX bytes fits, one more does not. */
        for (size_t len = PRE_PATH_MAX; len <= PRE_PATH_MAX + 1; len++) {
                cf_buf_reset(&b);
                assert_true(cf_ok(cf_buf_append_str(&b, "{\"volumes\": [{\"mount\": \"/")));
                for (size_t i = 1; i < len; i++) {
                        assert_true(cf_ok(cf_buf_append(&b, "m", 1)));
                }
                assert_true(cf_ok(
                    cf_buf_append_str(&b, "\", \"backing\": \"/b\", \"key\": \"" KEY_B64 "\"}]}")));
                cf_status s = pre_config_parse(b.ptr, b.size, &g_cfg);
                assert_int_equal(cf_ok(s), len == PRE_PATH_MAX);
                pre_config_wipe(&g_cfg);
        }
        /* The document size limit. */
        assert_int_equal(pre_config_parse(b.ptr, PRE_CONFIG_SIZE_MAX + 1, &g_cfg).code, CF_E_LIMIT);
        cf_buf_done(&b);
}

/* Every single-bit flip of a good document either fails or still parses to a valid
 * configuration (never crashes, never leaves a half-filled result). */
static void test_config_bitflips(void **state)
{
        (void)state;
        size_t n = strlen(GOOD);
        uint8_t *doc = malloc(n);
        assert_non_null(doc);
        for (size_t i = 0; i < n; i++) {
                for (unsigned bit = 0; bit < 8; bit++) {
                        memcpy(doc, GOOD, n);
                        doc[i] ^= (uint8_t)(1u << bit);
                        cf_status s = pre_config_parse(doc, n, &g_cfg);
                        if (!cf_ok(s)) {
                                assert_int_equal(g_cfg.n_vol, 0);
                        } else {
                                assert_true(g_cfg.n_vol >= 1);
                                assert_int_equal(g_cfg.vol[0].mount[0], '/');
                        }
                        pre_config_wipe(&g_cfg);
                }
        }
        free(doc);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_set_get_take),    cmocka_unit_test(test_bounds),
            cmocka_unit_test(test_dup_sharing),     cmocka_unit_test(test_normalize),
            cmocka_unit_test(test_under),           cmocka_unit_test(test_errno),
            cmocka_unit_test(test_config_good),     cmocka_unit_test(test_config_truncated),
            cmocka_unit_test(test_config_bad),      cmocka_unit_test(test_config_limits),
            cmocka_unit_test(test_config_bitflips),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
