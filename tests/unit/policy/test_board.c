/* Unit tests of src/policy/board.c and the board section of policy.c: board validation with
 * located errors, approval files (sign, parse, every kind of malformed file), and board
 * evaluation (thresholds, nesting, vetoes, attested programs, and every way an approval can
 * be for something else). Keys are generated at run time, so no vectors are needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "policy/policy.h"

#define POLICY_NAME "shop/api"
#define DIG_A       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIG_B       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DIG_C       "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define KID_1       "1111111111111111111111111111111111111111111111111111111111111111"
#define KID_2       "2222222222222222222222222222222222222222222222222222222222222222"
#define KID_3       "3333333333333333333333333333333333333333333333333333333333333333"
#define DOC_MAX     (1u << 20)

#define MIN_SERVICE                                                                                \
        "services:\n"                                                                              \
        "  - name: api\n"                                                                          \
        "    command: [/bin/true]\n"                                                               \
        "    attestation:\n"                                                                       \
        "      - platform: sim\n"                                                                  \
        "        measurement: [\"" DIG_A "\"]\n"

/* Three people (one per key type) and one attested program. */
struct people {
        struct cf_pkey *key[3]; /* alice Ed25519, bob P-256, carol P-384 */
        char *pem[3];
        char kid[3][CF_KEY_ID_HEX];
        struct cf_pkey *stranger;
};
static struct people g;

static const char *const g_names[3] = {"alice", "bob", "carol"};

static char *pem_of(const struct cf_pkey *k)
{
        struct cf_buf b;
        size_t n;

        cf_buf_init(&b, 8192, false);
        assert_true(cf_ok(policy_public_key_pem(k, &b)));
        return (char *)cf_buf_steal(&b, &n);
}

static int setup(void **state)
{
        static const enum cf_key_type types[3] = {CF_KEY_ED25519, CF_KEY_P256, CF_KEY_P384};

        (void)state;
        if (!cf_ok(cf_crypto_init())) {
                return -1;
        }
        for (size_t i = 0; i < 3; i++) {
                if (!cf_ok(cf_pkey_generate(types[i], &g.key[i])) ||
                    !cf_ok(cf_pkey_key_id(g.key[i], g.kid[i]))) {
                        return -1;
                }
                g.pem[i] = pem_of(g.key[i]);
        }
        return cf_ok(cf_pkey_generate(CF_KEY_P256, &g.stranger)) ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        for (size_t i = 0; i < 3; i++) {
                cf_pkey_free(g.key[i]);
                free(g.pem[i]);
        }
        cf_pkey_free(g.stranger);
        return 0;
}

/* A JSON policy document with the given board (a JSON value, consumed). */
static char *doc_with_board(json_t *board)
{
        json_t *doc;
        char *text;

        doc = json_pack("{s:s, s:n, s:o, s:[{s:s, s:[s], s:[{s:s, s:[s]}]}]}", "name", POLICY_NAME,
                        "predecessor", "board", board, "services", "name", "api", "command",
                        "/bin/true", "attestation", "platform", "sim", "measurement", DIG_A);
        assert_non_null(doc);
        text = json_dumps(doc, JSON_PRESERVE_ORDER);
        json_decref(doc);
        assert_non_null(text);
        return text;
}

static json_t *person(size_t i)
{
        return json_pack("{s:s, s:s}", "name", g_names[i], "key", g.pem[i]);
}

static struct policy *parse_board_json(json_t *board)
{
        char *text = doc_with_board(board);
        struct policy *p = NULL;
        static struct policy_errors errs;
        cf_status s = policy_parse(cf_slice_str(text), &p, &errs);

        for (size_t i = 0; !cf_ok(s) && i < errs.n; i++) {
                print_message("  %s: %s\n", errs.items[i].location, errs.items[i].message);
        }
        free(text);
        assert_true(cf_ok(s));
        assert_non_null(p);
        return p;
}

/* The 2-of-3 board of the issue: alice, bob and a program, plus carol, alice can veto. */
static struct policy *board_2of3(void)
{
        json_t *b =
            json_pack("{s:[o, o, o, {s:s, s:s}], s:{s:i, s:[s, s, s]}, s:[s]}", "members",
                      person(0), person(1), person(2), "name", "ci", "service", "shop/ci/checker",
                      "rule", "at_least", 2, "of", "alice", "bob", "carol", "veto", "alice");
        return parse_board_json(b);
}

/* ---- validation ------------------------------------------------------------------------ */

static void test_parse_board(void **state)
{
        struct policy *p;
        const struct policy_board *b;
        json_t *j = NULL, *again = NULL;
        char *text;
        struct policy *p2 = NULL;

        (void)state;
        p = board_2of3();
        b = p->board;
        assert_non_null(b);
        assert_int_equal(b->n_members, 4);
        for (size_t i = 0; i < 3; i++) {
                assert_string_equal(b->members[i].name, g_names[i]);
                assert_int_equal(b->members[i].kind, POLICY_MEMBER_PERSON);
                assert_string_equal(b->members[i].key_id, g.kid[i]);
                assert_non_null(b->members[i].key);
        }
        assert_int_equal(b->members[3].kind, POLICY_MEMBER_SERVICE);
        assert_string_equal(b->members[3].service, "shop/ci/checker");
        assert_int_equal(b->rule.kind, POLICY_BOARD_RULE_AT_LEAST);
        assert_int_equal(b->rule.at_least, 2);
        assert_int_equal(b->rule.n_items, 3);
        assert_int_equal(b->rule.items[1].kind, POLICY_BOARD_RULE_MEMBER);
        assert_int_equal(b->rule.items[1].member, 1);
        assert_int_equal(b->n_veto, 1);
        assert_int_equal(b->veto[0], 0);

        /* The JSON view parses back into the same board. */
        assert_true(cf_ok(policy_to_json(p, &j)));
        text = json_dumps(j, 0);
        assert_non_null(text);
        assert_true(cf_ok(policy_parse(cf_slice_str(text), &p2, NULL)));
        assert_true(cf_ok(policy_to_json(p2, &again)));
        assert_true(json_equal(j, again));
        assert_string_equal(p2->board->members[2].key_id, g.kid[2]);
        free(text);
        json_decref(j);
        json_decref(again);
        policy_free(p2);
        policy_free(p);
}

static void test_parse_board_yaml_and_key_id(void **state)
{
        static const char yaml[] =
            "name: shop/api\n"
            "board:\n"
            "  members:\n"
            "    - {name: alice, key_id: \"" KID_1 "\"}\n"
            "    - {name: bob, key_id: \"" KID_2 "\"}\n"
            "    - {name: ci, service: shop/ci/checker}\n"
            "  rule: {all_of: [alice, {at_least: 1, of: [bob, ci]}]}\n" MIN_SERVICE;
        struct policy *p = NULL;
        struct cf_buf b;

        (void)state;
        assert_true(cf_ok(policy_parse(cf_slice_str(yaml), &p, NULL)));
        assert_null(p->board->members[0].key);
        assert_string_equal(p->board->members[1].key_id, KID_2);
        assert_int_equal(p->board->rule.kind, POLICY_BOARD_RULE_ALL_OF);
        assert_int_equal(p->board->rule.items[1].kind, POLICY_BOARD_RULE_AT_LEAST);
        cf_buf_init(&b, 1024, false);
        assert_true(cf_ok(policy_board_rule_format(p->board, &p->board->rule, &b)));
        assert_string_equal((const char *)b.ptr, "all_of [alice, at_least 1 of [bob, ci]]");
        cf_buf_done(&b);
        policy_free(p);

        /* A policy without a board has none (access.update governs it, as before). */
        assert_true(cf_ok(policy_parse(cf_slice_str("name: shop/api\n" MIN_SERVICE), &p, NULL)));
        assert_null(p->board);
        policy_free(p);
}

/* Asserts that the board (YAML lines under "board:\n") fails with an error at loc (exact) with
 * msg in the message. */
static void expect_board_error(const char *board, const char *loc, const char *msg)
{
        static struct policy_errors errs;
        struct cf_buf doc;
        struct policy *p = NULL;
        cf_status s;
        bool found = false;

        cf_buf_init(&doc, DOC_MAX, false);
        assert_true(cf_ok(cf_buf_printf(&doc, "name: shop/api\nboard:\n%s%s", board, MIN_SERVICE)));
        s = policy_parse(cf_buf_slice(&doc), &p, &errs);
        cf_buf_done(&doc);
        assert_null(p);
        for (size_t i = 0; i < errs.n && !found; i++) {
                found = strcmp(errs.items[i].location, loc) == 0 &&
                        strstr(errs.items[i].message, msg) != NULL;
        }
        if (s.code != CF_E_SCHEMA || !found) {
                print_message("expected at '%s': '%s'; got %d:\n", loc, msg, s.code);
                for (size_t i = 0; i < errs.n; i++) {
                        print_message("  %s: %s\n", errs.items[i].location, errs.items[i].message);
                }
        }
        assert_int_equal(s.code, CF_E_SCHEMA);
        assert_true(found);
}

#define M3                                                                                         \
        "  members:\n"                                                                             \
        "    - {name: alice, key_id: \"" KID_1 "\"}\n"                                             \
        "    - {name: bob, key_id: \"" KID_2 "\"}\n"                                               \
        "    - {name: ci, service: shop/ci/checker}\n"

static void test_board_errors(void **state)
{
        (void)state;
        expect_board_error(M3 "  rule: {at_least: 2, of: [alice, bobby]}\n",
                           "line 7, column 35 ($.board.rule.of[1])", "unknown member 'bobby'");
        expect_board_error("  members:\n    - {name: alice, key_id: \"" KID_1 "\"}\n"
                           "    - {name: alice, key_id: \"" KID_2 "\"}\n  rule: alice\n",
                           "line 5, column 14 ($.board.members[1].name)",
                           "duplicate member 'alice'");
        expect_board_error(M3 "  rule: {at_least: 0, of: [alice, bob]}\n",
                           "line 7, column 20 ($.board.rule.at_least)", "from 1 to 2");
        expect_board_error(M3 "  rule: {at_least: 3, of: [alice, bob]}\n",
                           "line 7, column 20 ($.board.rule.at_least)", "got 3");
        expect_board_error(M3 "  rule: {at_least: two, of: [alice, bob]}\n",
                           "line 7, column 20 ($.board.rule.at_least)", "must be an integer");
        expect_board_error(M3, "line 3, column 3 ($.board)", "missing required key 'rule'");
        expect_board_error(M3 "  rule: alice\n  veto: [alice, mallory]\n",
                           "line 8, column 17 ($.board.veto[1])",
                           "'mallory', which is not a member");
        expect_board_error(M3 "  rule: alice\n  veto: [bob, bob]\n",
                           "line 8, column 15 ($.board.veto[1])", "duplicate entry");
        expect_board_error("  members:\n    - {name: ci, service: checker}\n  rule: ci\n",
                           "line 4, column 27 ($.board.members[0].service)",
                           "expected policy/service");
        expect_board_error("  members:\n    - {name: ci, service: Shop/ci/x}\n  rule: ci\n",
                           "line 4, column 27 ($.board.members[0].service)",
                           "expected policy/service");
        expect_board_error("  members:\n    - {name: ci, service: \"shop/ci/\"}\n  rule: ci\n",
                           "line 4, column 27 ($.board.members[0].service)",
                           "expected policy/service");
        expect_board_error("  members:\n    - {name: x, key: \"not a key\"}\n  rule: x\n",
                           "line 4, column 22 ($.board.members[0].key)", "PEM public key");
        expect_board_error("  members:\n    - {name: x, key_id: \"12\"}\n  rule: x\n",
                           "line 4, column 25 ($.board.members[0].key_id)", "64 hexadecimal");
        expect_board_error("  members:\n    - {name: x}\n  rule: x\n",
                           "line 4, column 7 ($.board.members[0])", "a member needs key");
        expect_board_error("  members:\n    - {name: x, key_id: \"" KID_1 "\", service: a/b/c}\n"
                           "  rule: x\n",
                           "line 4, column 7 ($.board.members[0])", "not both");
        expect_board_error("  members:\n    - {name: x, key_id: \"" KID_1 "\", role: boss}\n"
                           "  rule: x\n",
                           "line 4, column 93 ($.board.members[0].role)", "unknown key");
        expect_board_error(M3 "  rule: alice\n  quorum: 2\n", "line 8, column 3 ($.board.quorum)",
                           "unknown key");
        expect_board_error(M3 "  rule: {all_of: [alice], at_least: 1, of: [bob]}\n",
                           "line 7, column 9 ($.board.rule)", "not both");
        expect_board_error(M3 "  rule: {any_of: [alice]}\n", "line 7, column 9 ($.board.rule)",
                           "expected a member name");
        expect_board_error(M3 "  rule: 2\n", "line 7, column 9 ($.board.rule)",
                           "expected a member name");
        expect_board_error(M3 "  rule: {all_of: []}\n", "line 7, column 18 ($.board.rule.all_of)",
                           "expected 1 to 64 rules");
        expect_board_error(M3 "  rule: {all_of: [alice, alice]}\n",
                           "line 7, column 26 ($.board.rule.all_of[1])", "duplicate entry");
        /* at_least 2 must not count one member twice through overlapping items. */
        expect_board_error(M3 "  rule: {at_least: 2, of: [alice, {all_of: [alice, bob]}]}\n",
                           "line 7, column 35 ($.board.rule.of[1])",
                           "member 'alice' is counted by more than one item");
        expect_board_error("  members:\n    - {name: a, key_id: \"" KID_1 "\"}\n"
                           "    - {name: b, key_id: \"" KID_1 "\"}\n  rule: a\n",
                           "line 5, column 7 ($.board.members[1])", "the same key as member a");
        expect_board_error("  members: []\n  rule: a\n", "line 3, column 12 ($.board.members)",
                           "expected 1 to 64 members");
        expect_board_error("  members:\n    - {name: \"-x\", key_id: \"" KID_1 "\"}\n  rule: a\n",
                           "line 4, column 14 ($.board.members[0].name)", "invalid member name");
}

static void test_board_key_errors(void **state)
{
        struct cf_pkey *rsa = NULL;
        char *rsa_pem;
        json_t *b, *doc;
        char *text;
        static struct policy_errors errs;
        struct policy *p = NULL;
        bool found = false;

        (void)state;
        /* An RSA key parses but is not an accepted member key type. */
        assert_true(cf_ok(cf_pkey_generate(CF_KEY_RSA, &rsa)));
        {
                struct cf_buf der, b64;
                size_t n;
                cf_buf_init(&der, 8192, false);
                cf_buf_init(&b64, 8192, false);
                assert_true(cf_ok(cf_pkey_spki_der(rsa, &der)));
                assert_true(cf_ok(cf_buf_append_str(&b64, "-----BEGIN PUBLIC KEY-----\n")));
                for (size_t i = 0; i < der.size; i += 48) {
                        char line[80];
                        cf_base64_encode(der.ptr + i, der.size - i < 48 ? der.size - i : 48, line,
                                         sizeof(line));
                        assert_true(cf_ok(cf_buf_printf(&b64, "%s\n", line)));
                }
                assert_true(cf_ok(cf_buf_append_str(&b64, "-----END PUBLIC KEY-----\n")));
                rsa_pem = (char *)cf_buf_steal(&b64, &n);
                cf_buf_done(&der);
        }
        {
                struct cf_pkey *k = NULL;
                assert_int_equal(policy_public_key_parse(cf_slice_str(rsa_pem), &k).code, CF_E_KEY);
                assert_null(k);
        }
        b = json_pack("{s:[{s:s, s:s}], s:s}", "members", "name", "r", "key", rsa_pem, "rule", "r");
        text = doc_with_board(b);
        assert_int_equal(policy_parse(cf_slice_str(text), &p, &errs).code, CF_E_SCHEMA);
        for (size_t i = 0; i < errs.n; i++) {
                found = found || (strcmp(errs.items[i].location, "$.board.members[0].key") == 0 &&
                                  strstr(errs.items[i].message, "not an Ed25519") != NULL);
        }
        assert_true(found);
        free(text);

        /* key and key_id must agree. */
        b = json_pack("{s:[{s:s, s:s, s:s}], s:s}", "members", "name", "a", "key", g.pem[0],
                      "key_id", g.kid[1], "rule", "a");
        text = doc_with_board(b);
        assert_int_equal(policy_parse(cf_slice_str(text), &p, &errs).code, CF_E_SCHEMA);
        assert_string_equal(errs.items[0].location, "$.board.members[0].key_id");
        assert_non_null(strstr(errs.items[0].message, "does not match the key"));
        free(text);
        /* ... and agreeing (in upper case) is fine. */
        {
                char up[CF_KEY_ID_HEX];
                for (size_t i = 0; i < sizeof(up); i++) {
                        char c = g.kid[0][i];
                        up[i] = (char)(c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
                }
                b = json_pack("{s:[{s:s, s:s, s:s}], s:s}", "members", "name", "a", "key", g.pem[0],
                              "key_id", up, "rule", "a");
        }
        p = parse_board_json(b);
        assert_string_equal(p->board->members[0].key_id, g.kid[0]);
        policy_free(p);
        free(rsa_pem);
        cf_pkey_free(rsa);

        /* Depth: 8 levels are accepted, 9 are not. */
        doc = json_string("alice");
        for (int d = 1; d < POLICY_BOARD_DEPTH_MAX; d++) {
                doc = json_pack("{s:[o]}", "all_of", doc);
        }
        b = json_pack("{s:[o], s:O}", "members", person(0), "rule", doc);
        p = parse_board_json(b);
        policy_free(p);
        b = json_pack("{s:[o], s:{s:[o]}}", "members", person(0), "rule", "all_of", doc);
        text = doc_with_board(b);
        assert_int_equal(policy_parse(cf_slice_str(text), &p, &errs).code, CF_E_SCHEMA);
        found = false;
        for (size_t i = 0; i < errs.n; i++) {
                found = found || strstr(errs.items[i].message, "deeper than 8") != NULL;
        }
        assert_true(found);
        free(text);
}

static void test_pem_strict(void **state)
{
        struct cf_pkey *k = NULL;
        struct cf_buf b;
        const char *pem = g.pem[1];
        size_t n = strlen(pem);

        (void)state;
        assert_true(cf_ok(policy_public_key_parse(cf_slice_str(pem), &k)));
        cf_pkey_free(k);
        k = NULL;
        /* Trailing whitespace is fine; anything else after the block is not. */
        cf_buf_init(&b, 16384, false);
        assert_true(cf_ok(cf_buf_printf(&b, "%s\n  \n", pem)));
        assert_true(cf_ok(policy_public_key_parse(cf_buf_slice(&b), &k)));
        cf_pkey_free(k);
        k = NULL;
        cf_buf_reset(&b);
        assert_true(cf_ok(cf_buf_printf(&b, "%s%s", pem, pem)));
        assert_int_equal(policy_public_key_parse(cf_buf_slice(&b), &k).code, CF_E_ENCODING);
        cf_buf_reset(&b);
        assert_true(cf_ok(cf_buf_printf(&b, "%sx", pem)));
        assert_int_equal(policy_public_key_parse(cf_buf_slice(&b), &k).code, CF_E_ENCODING);
        cf_buf_reset(&b);
        assert_true(cf_ok(cf_buf_printf(&b, " %s", pem)));
        assert_int_equal(policy_public_key_parse(cf_buf_slice(&b), &k).code, CF_E_ENCODING);
        cf_buf_done(&b);
        /* Truncation at every offset fails. */
        for (size_t i = 0; i + 1 < n; i++) {
                assert_false(cf_ok(policy_public_key_parse(cf_slice_make(pem, i), &k)));
        }
        assert_null(k);
}

/* ---- approvals ------------------------------------------------------------------------- */

static struct policy_approval *approval(size_t who, const char *policy, const char *digest,
                                        const char *pred, bool veto)
{
        struct cf_buf b;
        struct policy_approval *a = NULL;

        cf_buf_init(&b, POLICY_APPROVAL_MAX, false);
        assert_true(cf_ok(policy_approval_sign(who < 3 ? g.key[who] : g.stranger, policy, digest,
                                               pred, veto, &b)));
        assert_true(cf_ok(policy_approval_parse(cf_buf_slice(&b), &a)));
        cf_buf_done(&b);
        return a;
}

static void test_approval_roundtrip(void **state)
{
        struct cf_buf b, st;
        struct policy_approval *a = NULL;
        char kid[CF_KEY_ID_HEX];

        (void)state;
        for (size_t i = 0; i < 3; i++) {
                cf_buf_init(&b, POLICY_APPROVAL_MAX, false);
                assert_true(cf_ok(policy_approval_sign(g.key[i], POLICY_NAME, DIG_A,
                                                       i == 0 ? NULL : DIG_B, i == 2, &b)));
                assert_true(cf_ok(policy_approval_parse(cf_buf_slice(&b), &a)));
                assert_string_equal(a->policy, POLICY_NAME);
                assert_string_equal(a->digest, DIG_A);
                assert_string_equal(a->predecessor, i == 0 ? "" : DIG_B);
                assert_int_equal(a->veto, i == 2);
                assert_true(cf_ok(cf_pkey_key_id(a->key, kid)));
                assert_string_equal(kid, g.kid[i]);
                cf_buf_init(&st, 1024, false);
                assert_true(cf_ok(policy_approval_statement(POLICY_NAME, DIG_A,
                                                            i == 0 ? NULL : DIG_B, i == 2, &st)));
                assert_true(cf_ok(
                    cf_verify(a->key, cf_buf_slice(&st), cf_slice_make(a->sig, a->sig_size))));
                cf_buf_done(&st);
                policy_approval_free(a);
                a = NULL;
                cf_buf_done(&b);
        }

        /* The statement, byte for byte (docs/formats/approval.md). */
        cf_buf_init(&st, 1024, false);
        assert_true(cf_ok(policy_approval_statement(POLICY_NAME, DIG_A, NULL, false, &st)));
        assert_string_equal((const char *)st.ptr,
                            "coffer-approval-v1\nshop/api\n" DIG_A "\nnull\napprove");
        cf_buf_reset(&st);
        assert_true(cf_ok(policy_approval_statement(POLICY_NAME, DIG_A, DIG_B, true, &st)));
        assert_string_equal((const char *)st.ptr,
                            "coffer-approval-v1\nshop/api\n" DIG_A "\n" DIG_B "\nveto");
        cf_buf_reset(&st);
        assert_int_equal(policy_approval_statement("shop", DIG_A, NULL, false, &st).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(policy_approval_statement("shop/api\nx/y", DIG_A, NULL, false, &st).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(policy_approval_statement(POLICY_NAME, "AA", NULL, false, &st).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(policy_approval_statement(POLICY_NAME, DIG_A, "null", false, &st).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(st.size, 0);
        cf_buf_done(&st);

        /* A public key cannot sign; nothing is appended. */
        {
                struct cf_pkey *pub = NULL;
                assert_true(cf_ok(policy_public_key_parse(cf_slice_str(g.pem[0]), &pub)));
                cf_buf_init(&b, POLICY_APPROVAL_MAX, false);
                assert_false(cf_ok(policy_approval_sign(pub, POLICY_NAME, DIG_A, NULL, false, &b)));
                assert_int_equal(b.size, 0);
                cf_buf_done(&b);
                cf_pkey_free(pub);
        }
}

/* Re-encodes a valid approval file with one member changed (set to v; NULL deletes it). */
static char *mutate(const char *text, const char *key, json_t *v)
{
        json_t *o = json_loads(text, 0, NULL);
        char *out;

        assert_non_null(o);
        if (v == NULL) {
                json_object_del(o, key);
        } else {
                json_object_set_new(o, key, v);
        }
        out = json_dumps(o, JSON_PRESERVE_ORDER);
        json_decref(o);
        return out;
}

static void expect_parse_fail(char *text, int code)
{
        struct policy_approval *a = NULL;
        cf_status s = policy_approval_parse(cf_slice_str(text), &a);

        if (s.code != code) {
                print_message("expected %d, got %d for: %s\n", code, s.code, text);
        }
        assert_int_equal(s.code, code);
        assert_null(a);
        free(text);
}

static void test_approval_parse_negative(void **state)
{
        struct cf_buf b;
        const char *t;
        struct policy_approval *a = NULL;
        char big[300];

        (void)state;
        cf_buf_init(&b, POLICY_APPROVAL_MAX, false);
        assert_true(cf_ok(policy_approval_sign(g.key[1], POLICY_NAME, DIG_A, DIG_B, false, &b)));
        t = (const char *)b.ptr;

        /* Truncation at every offset. */
        for (size_t i = 0; i + 1 < b.size; i++) {
                assert_false(cf_ok(policy_approval_parse(cf_slice_make(b.ptr, i), &a)));
                assert_null(a);
        }
        expect_parse_fail(mutate(t, "version", json_integer(2)), CF_E_VERSION);
        expect_parse_fail(mutate(t, "version", json_integer(0)), CF_E_VERSION);
        expect_parse_fail(mutate(t, "version", json_string("1")), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "version", NULL), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "extra", json_true()), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "signature", NULL), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "policy", json_string("shop")), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "policy", json_integer(3)), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "digest", json_string(DIG_A "a")), CF_E_LIMIT);
        expect_parse_fail(mutate(t, "digest",
                                 json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                             "AAAAAAAAAAAAAAAAAAAAAAAA")),
                          CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "predecessor", json_string("null")), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "predecessor", json_false()), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "verdict", json_string("maybe")), CF_E_MALFORMED);
        expect_parse_fail(mutate(t, "key", json_string("garbage")), CF_E_ENCODING);
        expect_parse_fail(mutate(t, "signature", json_string("***")), CF_E_ENCODING);
        expect_parse_fail(mutate(t, "signature", json_string("")), CF_E_MALFORMED);
        memset(big, 'A', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        expect_parse_fail(mutate(t, "signature", json_string(big)), CF_E_LIMIT);
        expect_parse_fail(mutate(t, "policy", json_stringn("shop/a\0pi", 9)), CF_E_SYNTAX);
        /* Not an object, trailing bytes, duplicate members. */
        expect_parse_fail(strdup("[1]"), CF_E_MALFORMED);
        {
                struct cf_buf x;
                size_t n;
                cf_buf_init(&x, POLICY_APPROVAL_MAX * 2, false);
                assert_true(cf_ok(cf_buf_printf(&x, "%s{}", t)));
                expect_parse_fail((char *)cf_buf_steal(&x, &n), CF_E_SYNTAX);
                cf_buf_init(&x, POLICY_APPROVAL_MAX * 2, false);
                /* "version": 1 twice. */
                assert_true(cf_ok(cf_buf_printf(&x, "{\"version\": 1, %s", t + 1)));
                expect_parse_fail((char *)cf_buf_steal(&x, &n), CF_E_SYNTAX);
                cf_buf_init(&x, POLICY_APPROVAL_MAX * 2, false);
                assert_true(cf_ok(cf_buf_reserve(&x, POLICY_APPROVAL_MAX + 1)));
                memset(x.ptr, ' ', POLICY_APPROVAL_MAX + 1);
                x.size = POLICY_APPROVAL_MAX + 1;
                x.ptr[x.size] = 0;
                expect_parse_fail((char *)cf_buf_steal(&x, &n), CF_E_LIMIT);
        }
        cf_buf_done(&b);
}

/* ---- evaluation ------------------------------------------------------------------------ */

static bool eval(const struct policy *p, struct policy_approval **a, size_t n,
                 const char *const *svc, size_t n_svc, struct attest_checks *out)
{
        return policy_board_evaluate(p->board, POLICY_NAME, DIG_A, DIG_B,
                                     (struct policy_approval *const *)a, n, svc, n_svc, out);
}

/* The check of that name; a missing one ends the test (callers dereference the result). */
static const struct attest_check *find_check(const struct attest_checks *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++) {
                if (strcmp(l->items[i].name, name) == 0) {
                        return &l->items[i];
                }
        }
        fail_msg("no check named %s", name);
        abort(); /* not reached */
}

static void free_all(struct policy_approval **a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                policy_approval_free(a[i]);
        }
}

static void test_two_of_three(void **state)
{
        struct policy *p = board_2of3();
        struct policy_approval *a[3];
        struct attest_checks c;
        const struct attest_check *k;

        (void)state;
        a[0] = approval(1, POLICY_NAME, DIG_A, DIG_B, false);
        a[1] = approval(2, POLICY_NAME, DIG_A, DIG_B, false);
        a[2] = approval(1, POLICY_NAME, DIG_A, DIG_B, false); /* bob again */

        /* One approval is refused. */
        attest_checks_init(&c);
        assert_false(eval(p, a, 1, NULL, 0, &c));
        k = find_check(&c, "board.rule");
        assert_non_null(k);
        assert_false(k->ok);
        assert_string_equal(k->expected, "at_least 2 of [alice, bob, carol]");
        assert_string_equal(k->actual, "approved by: bob");
        attest_checks_done(&c);

        /* The same member twice still counts once. */
        attest_checks_init(&c);
        assert_false(eval(p, (struct policy_approval *[]){a[0], a[2]}, 2, NULL, 0, &c));
        assert_non_null(strstr(find_check(&c, "board.approval[1]")->actual, "counted once"));
        attest_checks_done(&c);

        /* Two are accepted. */
        attest_checks_init(&c);
        assert_true(eval(p, a, 2, NULL, 0, &c));
        assert_true(find_check(&c, "board.approval[0]")->ok);
        assert_string_equal(find_check(&c, "board.approval[1]")->actual, "approve by carol");
        assert_string_equal(find_check(&c, "board.rule")->actual, "approved by: bob, carol");
        assert_true(find_check(&c, "board.veto")->ok);
        assert_true(attest_checks_all_ok(&c));
        attest_checks_done(&c);

        /* No approvals at all. */
        attest_checks_init(&c);
        assert_false(eval(p, NULL, 0, NULL, 0, &c));
        assert_string_equal(find_check(&c, "board.rule")->actual, "approved by: nobody");
        attest_checks_done(&c);
        free_all(a, 3);
        policy_free(p);
}

static void test_veto(void **state)
{
        struct policy *p = board_2of3();
        struct policy_approval *a[4];
        struct attest_checks c;

        (void)state;
        a[0] = approval(1, POLICY_NAME, DIG_A, DIG_B, false);
        a[1] = approval(2, POLICY_NAME, DIG_A, DIG_B, false);
        a[2] = approval(0, POLICY_NAME, DIG_A, DIG_B, true); /* alice vetoes */
        a[3] = approval(1, POLICY_NAME, DIG_A, DIG_B, true); /* bob "vetoes": not allowed */

        /* The rule is met, but alice's veto blocks. */
        attest_checks_init(&c);
        assert_false(eval(p, a, 3, NULL, 0, &c));
        assert_true(find_check(&c, "board.rule")->ok);
        assert_false(find_check(&c, "board.veto")->ok);
        assert_string_equal(find_check(&c, "board.veto")->actual, "veto by alice");
        assert_string_equal(find_check(&c, "board.veto")->expected, "no veto by any of [alice]");
        attest_checks_done(&c);

        /* bob may not veto: his veto is ignored, but he no longer approves either. */
        attest_checks_init(&c);
        assert_false(eval(p, (struct policy_approval *[]){a[0], a[1], a[3]}, 3, NULL, 0, &c));
        assert_false(find_check(&c, "board.approval[2]")->ok);
        assert_true(find_check(&c, "board.veto")->ok);
        assert_false(find_check(&c, "board.rule")->ok);
        assert_string_equal(find_check(&c, "board.rule")->actual, "approved by: carol");
        attest_checks_done(&c);
        free_all(a, 4);
        policy_free(p);
}

static void test_refused_approvals(void **state)
{
        struct policy *p = board_2of3();
        struct policy_approval *good, *bad[5];
        struct attest_checks c;

        (void)state;
        good = approval(1, POLICY_NAME, DIG_A, DIG_B, false);
        bad[0] = approval(3, POLICY_NAME, DIG_A, DIG_B, false);  /* not a member */
        bad[1] = approval(2, POLICY_NAME, DIG_C, DIG_B, false);  /* another digest */
        bad[2] = approval(2, "shop/other", DIG_A, DIG_B, false); /* another policy */
        bad[3] = approval(2, POLICY_NAME, DIG_A, DIG_C, false);  /* an older predecessor */
        bad[4] = approval(2, POLICY_NAME, DIG_A, NULL, false);   /* a creation's approval */
        for (size_t i = 0; i < 5; i++) {
                attest_checks_init(&c);
                assert_false(eval(p, (struct policy_approval *[]){good, bad[i]}, 2, NULL, 0, &c));
                assert_true(find_check(&c, "board.approval[0]")->ok);
                assert_false(find_check(&c, "board.approval[1]")->ok);
                assert_string_equal(find_check(&c, "board.rule")->actual, "approved by: bob");
                attest_checks_done(&c);
        }
        /* The message names why. */
        attest_checks_init(&c);
        assert_false(eval(p, &bad[0], 1, NULL, 0, &c));
        assert_non_null(strstr(c.items[0].actual, "not a member's"));
        attest_checks_done(&c);

        /* An approval whose fields were edited to match no longer verifies. */
        memcpy(bad[1]->digest, DIG_A, sizeof(bad[1]->digest));
        attest_checks_init(&c);
        assert_false(eval(p, (struct policy_approval *[]){good, bad[1]}, 2, NULL, 0, &c));
        assert_non_null(strstr(find_check(&c, "board.approval[1]")->actual, "does not verify"));
        attest_checks_done(&c);
        /* A creation approval (null predecessor) is accepted for a creation only. */
        {
                struct policy_approval *create = approval(1, POLICY_NAME, DIG_A, NULL, false);
                attest_checks_init(&c);
                assert_true(policy_board_evaluate(p->board, POLICY_NAME, DIG_A, NULL,
                                                  (struct policy_approval *const[]){bad[4], create},
                                                  2, NULL, 0, &c));
                attest_checks_done(&c);
                policy_approval_free(create);
        }

        /* Bad arguments fail closed. */
        attest_checks_init(&c);
        assert_false(policy_board_evaluate(NULL, POLICY_NAME, DIG_A, DIG_B, &good, 1, NULL, 0, &c));
        assert_false(
            policy_board_evaluate(p->board, POLICY_NAME, DIG_A, DIG_B, NULL, 1, NULL, 0, &c));
        assert_false(policy_board_evaluate(p->board, "x", DIG_A, DIG_B, &good, 1, NULL, 0, &c));
        assert_false(
            policy_board_evaluate(p->board, POLICY_NAME, "AB", DIG_B, &good, 1, NULL, 0, &c));
        attest_checks_done(&c);
        policy_approval_free(good);
        free_all(bad, 5);
        policy_free(p);
}

static void test_nested_and_services(void **state)
{
        json_t *b =
            json_pack("{s:[o, o, o, {s:s, s:s}], s:{s:[s, {s:i, s:[s, s]}]}}", "members", person(0),
                      person(1), person(2), "name", "ci", "service", "shop/ci/checker", "rule",
                      "all_of", "alice", "at_least", 1, "of", "bob", "ci");
        struct policy *p = parse_board_json(b);
        struct policy_approval *alice = approval(0, POLICY_NAME, DIG_A, DIG_B, false);
        struct policy_approval *bob = approval(1, POLICY_NAME, DIG_A, DIG_B, false);
        struct policy_approval *carol = approval(2, POLICY_NAME, DIG_A, DIG_B, false);
        const char *ci[] = {"shop/ci/checker"}, *other[] = {"shop/ci/other"};
        struct attest_checks c;

        (void)state;
        attest_checks_init(&c);
        assert_true(eval(p, &alice, 1, ci, 1, &c));
        assert_string_equal(find_check(&c, "board.service[0]")->actual,
                            "approve by ci (attested 'shop/ci/checker')");
        attest_checks_done(&c);
        attest_checks_init(&c);
        assert_true(eval(p, (struct policy_approval *[]){alice, bob}, 2, NULL, 0, &c));
        attest_checks_done(&c);
        attest_checks_init(&c);
        assert_false(eval(p, &alice, 1, NULL, 0, &c)); /* alice alone */
        attest_checks_done(&c);
        attest_checks_init(&c);
        assert_false(
            eval(p, (struct policy_approval *[]){bob, carol}, 2, ci, 1, &c)); /* no alice */
        assert_string_equal(find_check(&c, "board.rule")->expected,
                            "all_of [alice, at_least 1 of [bob, ci]]");
        attest_checks_done(&c);
        attest_checks_init(&c);
        assert_false(eval(p, &alice, 1, other, 1, &c)); /* not a member program */
        assert_false(find_check(&c, "board.service[0]")->ok);
        attest_checks_done(&c);
        policy_approval_free(alice);
        policy_approval_free(bob);
        policy_approval_free(carol);
        policy_free(p);
}

/* Signing any statement other than the exact one (each byte flipped in turn) never yields an
 * accepted approval, for each key type; nor does any flipped signature byte. */
static void test_statement_byte_flips(void **state)
{
        json_t *b = json_pack("{s:[o, o, o], s:s}", "members", person(0), person(1), person(2),
                              "rule", "alice");
        struct policy *p;
        struct cf_buf st, sig;
        struct attest_checks c;

        (void)state;
        cf_buf_init(&st, 1024, false);
        assert_true(cf_ok(policy_approval_statement(POLICY_NAME, DIG_A, DIG_B, false, &st)));
        for (size_t who = 0; who < 3; who++) {
                struct policy_approval *a = approval(who, POLICY_NAME, DIG_A, DIG_B, false);
                /* A board whose rule is this person. */
                json_object_set_new(b, "rule", json_string(g_names[who]));
                p = parse_board_json(json_deep_copy(b));
                attest_checks_init(&c);
                assert_true(eval(p, &a, 1, NULL, 0, &c));
                attest_checks_done(&c);
                for (size_t i = 0; i < st.size; i++) {
                        st.ptr[i] ^= 0x01;
                        cf_buf_init(&sig, 512, false);
                        assert_true(cf_ok(cf_sign(g.key[who], cf_buf_slice(&st), &sig)));
                        st.ptr[i] ^= 0x01;
                        free(a->sig);
                        a->sig = cf_buf_steal(&sig, &a->sig_size);
                        attest_checks_init(&c);
                        assert_false(eval(p, &a, 1, NULL, 0, &c));
                        attest_checks_done(&c);
                }
                /* Back to a good signature, then flip each of its bytes. */
                policy_approval_free(a);
                a = approval(who, POLICY_NAME, DIG_A, DIG_B, false);
                for (size_t i = 0; i < a->sig_size; i++) {
                        a->sig[i] ^= 0x80;
                        attest_checks_init(&c);
                        assert_false(eval(p, &a, 1, NULL, 0, &c));
                        attest_checks_done(&c);
                        a->sig[i] ^= 0x80;
                }
                policy_approval_free(a);
                policy_free(p);
        }
        json_decref(b);
        cf_buf_done(&st);
}

static struct policy_approval *approval_v(size_t who, const char *digest, const char *pred,
                                          enum policy_verdict v)
{
        struct cf_buf b;
        struct policy_approval *a = NULL;

        cf_buf_init(&b, POLICY_APPROVAL_MAX, false);
        assert_true(
            cf_ok(policy_approval_sign_verdict(g.key[who], POLICY_NAME, digest, pred, v, &b)));
        assert_non_null(strstr((const char *)b.ptr, v == POLICY_VERDICT_DELETE ? "\"delete\""
                                                    : v == POLICY_VERDICT_VETO ? "\"veto\""
                                                                               : "\"approve\""));
        assert_true(cf_ok(policy_approval_parse(cf_buf_slice(&b), &a)));
        assert_int_equal(a->verdict, v);
        assert_int_equal(a->veto, v == POLICY_VERDICT_VETO);
        cf_buf_done(&b);
        return a;
}

/* "delete" statements: their own bytes, their own digest, and they approve only deletions. */
static void test_deletion_verdict(void **state)
{
        struct policy *p = board_2of3();
        char del[65], del2[65];
        struct cf_buf st;
        struct policy_approval *d[3], *v[2];
        struct attest_checks c;

        (void)state;
        assert_true(cf_ok(policy_deletion_digest(DIG_B, del)));
        assert_true(cf_ok(policy_deletion_digest(DIG_C, del2)));
        assert_string_not_equal(del, del2);
        assert_false(cf_ok(policy_deletion_digest("xyz", del2)));
        assert_false(cf_ok(policy_deletion_digest(NULL, del2)));
        cf_buf_init(&st, 1024, false);
        assert_true(cf_ok(policy_approval_statement_verdict(POLICY_NAME, del, DIG_B,
                                                            POLICY_VERDICT_DELETE, &st)));
        assert_non_null(strstr((const char *)st.ptr, "\ndelete"));
        {
                char want[512];
                snprintf(want, sizeof(want), "coffer-approval-v1\n%s\n%s\n%s\ndelete", POLICY_NAME,
                         del, DIG_B);
                assert_string_equal((const char *)st.ptr, want);
        }
        cf_buf_done(&st);
        cf_buf_init(&st, 1024, false);
        assert_false(cf_ok(policy_approval_statement_verdict(POLICY_NAME, del, DIG_B,
                                                             (enum policy_verdict)9, &st)));
        cf_buf_done(&st);

        d[0] = approval_v(0, del, DIG_B, POLICY_VERDICT_DELETE);
        d[1] = approval_v(1, del, DIG_B, POLICY_VERDICT_DELETE);
        d[2] = approval_v(2, del, DIG_B, POLICY_VERDICT_VETO);
        v[0] = approval_v(0, del, DIG_B, POLICY_VERDICT_APPROVE); /* wrong verdict */
        v[1] = approval_v(1, del, DIG_B, POLICY_VERDICT_APPROVE);

        attest_checks_init(&c);
        assert_true(
            policy_board_decide(p->board, POLICY_NAME, del, DIG_B, true, d, 2, NULL, 0, &c, NULL));
        attest_checks_done(&c);
        /* "approve" statements do not approve a deletion, nor "delete" ones a version. */
        attest_checks_init(&c);
        assert_false(
            policy_board_decide(p->board, POLICY_NAME, del, DIG_B, true, v, 2, NULL, 0, &c, NULL));
        assert_non_null(strstr(find_check(&c, "board.approval[0]")->actual, "verdict approve"));
        attest_checks_done(&c);
        attest_checks_init(&c);
        assert_false(
            policy_board_decide(p->board, POLICY_NAME, del, DIG_B, false, d, 2, NULL, 0, &c, NULL));
        attest_checks_done(&c);
        /* A deletion has a predecessor. */
        attest_checks_init(&c);
        assert_false(
            policy_board_decide(p->board, POLICY_NAME, del, NULL, true, d, 2, NULL, 0, &c, NULL));
        attest_checks_done(&c);
        /* A deletion statement edited into "approve" fails verification. */
        v[0]->verdict = POLICY_VERDICT_DELETE;
        attest_checks_init(&c);
        assert_false(
            policy_board_decide(p->board, POLICY_NAME, del, DIG_B, true, v, 1, NULL, 0, &c, NULL));
        assert_non_null(strstr(find_check(&c, "board.approval[0]")->actual, "does not verify"));
        attest_checks_done(&c);
        free_all(d, 3);
        free_all(v, 2);
        policy_free(p);
}

/* Old and new verdict words parse; anything else does not. */
static void test_verdict_parse(void **state)
{
        static const char *const bad[] = {"Delete", "deletе", "", "approve ", "remove", NULL};
        struct policy_approval *a = approval_v(0, DIG_A, DIG_B, POLICY_VERDICT_DELETE);
        struct cf_buf b;

        (void)state;
        policy_approval_free(a);
        for (size_t i = 0; bad[i] != NULL; i++) {
                json_t *j;
                char *text;
                struct policy_approval *r = NULL;
                cf_buf_init(&b, POLICY_APPROVAL_MAX, false);
                assert_true(cf_ok(policy_approval_sign_verdict(g.key[0], POLICY_NAME, DIG_A, DIG_B,
                                                               POLICY_VERDICT_DELETE, &b)));
                j = json_loadb((const char *)b.ptr, b.size, 0, NULL);
                assert_non_null(j);
                json_object_set_new(j, "verdict", json_string(bad[i]));
                text = json_dumps(j, 0);
                assert_false(cf_ok(policy_approval_parse(cf_slice_str(text), &r)));
                assert_null(r);
                free(text);
                json_decref(j);
                cf_buf_done(&b);
        }
}

/* Attested programs may veto; the outcome reports the tally; needs names what is missing. */
static void test_service_votes_and_needs(void **state)
{
        json_t *b =
            json_pack("{s:[o, o, o, {s:s, s:s}], s:{s:i, s:[s, s, s, s]}, s:[s]}", "members",
                      person(0), person(1), person(2), "name", "ci", "service", "shop/ci/checker",
                      "rule", "at_least", 3, "of", "alice", "bob", "carol", "ci", "veto", "ci");
        struct policy *p = parse_board_json(b);
        struct policy_approval *alice = approval(0, POLICY_NAME, DIG_A, DIG_B, false);
        struct policy_approval *bob = approval(1, POLICY_NAME, DIG_A, DIG_B, false);
        struct policy_service_vote yes = {"shop/ci/checker", false}, no = {"shop/ci/checker", true};
        struct policy_board_outcome o;
        struct attest_checks c;
        struct cf_buf n;

        (void)state;
        attest_checks_init(&c);
        assert_false(policy_board_decide(p->board, POLICY_NAME, DIG_A, DIG_B, false, &alice, 1,
                                         &yes, 1, &c, &o));
        assert_true(o.approved[0] && o.approved[3] && !o.approved[1] && !o.met && !o.vetoed);
        cf_buf_init(&n, 4096, false);
        assert_true(cf_ok(policy_board_needs(p->board, o.approved, &n)));
        assert_string_equal((const char *)n.ptr, "at_least 1 of [bob, carol]");
        cf_buf_done(&n);
        attest_checks_done(&c);

        attest_checks_init(&c);
        assert_true(policy_board_decide(p->board, POLICY_NAME, DIG_A, DIG_B, false,
                                        (struct policy_approval *[]){alice, bob}, 2, &yes, 1, &c,
                                        &o));
        assert_true(o.met && !o.vetoed);
        cf_buf_init(&n, 4096, false);
        assert_true(cf_ok(policy_board_needs(p->board, o.approved, &n)));
        assert_string_equal((const char *)n.ptr, "met");
        cf_buf_done(&n);
        attest_checks_done(&c);

        /* The program vetoes: blocked, although three people-or-programs would suffice. */
        attest_checks_init(&c);
        assert_false(policy_board_decide(p->board, POLICY_NAME, DIG_A, DIG_B, false,
                                         (struct policy_approval *[]){alice, bob}, 2, &no, 1, &c,
                                         &o));
        assert_true(o.vetoed);
        assert_false(find_check(&c, "board.veto")->ok);
        assert_non_null(strstr(find_check(&c, "board.service[0]")->actual, "veto by ci"));
        attest_checks_done(&c);

        /* Invalid arguments zero the outcome. */
        attest_checks_init(&c);
        assert_false(policy_board_decide(p->board, POLICY_NAME, "nothex", DIG_B, false, &alice, 1,
                                         NULL, 0, &c, &o));
        assert_false(o.approved[0] || o.met || o.vetoed);
        assert_false(policy_board_decide(p->board, POLICY_NAME, DIG_A, DIG_B, false, &alice, 1,
                                         NULL, 1, &c, &o));
        attest_checks_done(&c);
        policy_approval_free(alice);
        policy_approval_free(bob);
        policy_free(p);
}

/* namespace: {create: [...]} parses, round-trips and refuses bad shapes. */
static void test_namespace_parse(void **state)
{
        static const char *const bad[] = {
            "namespace: []\n", "namespace: {create: [nothex]}\n", "namespace: {other: 1}\n",
            "namespace: {create: [\"" KID_1 "\", \"" KID_1 "\"]}\n", NULL};
        struct policy_errors errs;
        struct policy *p = NULL;
        json_t *j = NULL;
        char doc[2048];

        (void)state;
        snprintf(doc, sizeof(doc), "name: a/b\nnamespace: {create: [\"%s\"]}\n" MIN_SERVICE, KID_1);
        assert_true(cf_ok(policy_parse(cf_slice_str(doc), &p, &errs)));
        assert_non_null(p->ns);
        assert_int_equal(p->ns->n_create_ids, 1);
        assert_string_equal(p->ns->create_ids[0], KID_1);
        assert_true(cf_ok(policy_to_json(p, &j)));
        assert_string_equal(json_string_value(json_array_get(
                                json_object_get(json_object_get(j, "namespace"), "create"), 0)),
                            KID_1);
        json_decref(j);
        policy_free(p);
        p = NULL;
        snprintf(doc, sizeof(doc), "name: a/b\nnamespace: {}\n" MIN_SERVICE);
        assert_true(cf_ok(policy_parse(cf_slice_str(doc), &p, &errs)));
        assert_non_null(p->ns);
        assert_int_equal(p->ns->n_create_ids, 0);
        policy_free(p);
        p = NULL;
        snprintf(doc, sizeof(doc), "name: a/b\n" MIN_SERVICE);
        assert_true(cf_ok(policy_parse(cf_slice_str(doc), &p, &errs)));
        assert_null(p->ns);
        policy_free(p);
        for (size_t i = 0; bad[i] != NULL; i++) {
                p = NULL;
                snprintf(doc, sizeof(doc), "name: a/b\n%s" MIN_SERVICE, bad[i]);
                assert_int_equal(policy_parse(cf_slice_str(doc), &p, &errs).code, CF_E_SCHEMA);
                assert_null(p);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_board),
            cmocka_unit_test(test_parse_board_yaml_and_key_id),
            cmocka_unit_test(test_board_errors),
            cmocka_unit_test(test_board_key_errors),
            cmocka_unit_test(test_pem_strict),
            cmocka_unit_test(test_approval_roundtrip),
            cmocka_unit_test(test_approval_parse_negative),
            cmocka_unit_test(test_two_of_three),
            cmocka_unit_test(test_veto),
            cmocka_unit_test(test_refused_approvals),
            cmocka_unit_test(test_nested_and_services),
            cmocka_unit_test(test_statement_byte_flips),
            cmocka_unit_test(test_deletion_verdict),
            cmocka_unit_test(test_verdict_parse),
            cmocka_unit_test(test_service_votes_and_needs),
            cmocka_unit_test(test_namespace_parse),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
