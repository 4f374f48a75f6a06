/* Unit tests of src/policy: parsing (YAML and JSON), every kind of validation error with
 * its location, robustness on truncated and mutated documents, placeholders, and the JSON
 * views. */
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
#include "policy/policy.h"
#include "policy/policy_internal.h"

#define M64A       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define M64B       "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define K64C       "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define K64D       "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD"
#define M64B_LOWER "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define D64E       "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

/* A document using every field. */
static const char VALID_YAML[] =
    "# a full policy\n"
    "name: shop/api\n"
    "predecessor: " D64E "\n"
    "access:\n"
    "  read: [\"" K64C "\"]\n"
    "  update: [\"" K64D "\"]\n"
    "services:\n"
    "  - name: api\n"
    "    command: [\"/usr/bin/python3\", \"-c\", \"print(1)\", \"--key=$$coffer:token$$\"]\n"
    "    environment: {KEY: \"value\", DB_PASSWORD: \"$$coffer:db_password$$\"}\n"
    "    passthrough_env: [TERM, LANG]\n"
    "    working_dir: /app\n"
    "    files:\n"
    "      - {path: /etc/api/db.ini, mode: \"0440\", content: \"password = "
    "$$coffer:db_password$$\\n\"}\n"
    "      - path: /etc/api/motd\n"
    "        content: |\n"
    "          costs $$5\n"
    "    attestation:\n"
    "      - platform: sim\n"
    "        measurement:\n"
    "          - " M64A "\n"
    "          - " M64B "\n"
    "    tolerate: [simulation, debug]\n"
    "  - name: worker.2\n"
    "    command: [/bin/worker]\n"
    "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n"
    "secrets:\n"
    "  - {name: db_password, kind: ascii, size: 32, charset: \"abcdef0123\"}\n"
    "  - {name: token, kind: hex, size: 16}\n"
    "  - {name: blob, kind: base64, size: 32}\n"
    "  - {name: raw, kind: binary, size: 4096}\n"
    "  - {name: api_key, kind: ascii, value: \"hunter2-explicit\"}\n"
    "  - {name: hk, kind: hex, value: \"00FF10\"}\n"
    "  - {name: bk, kind: binary, value: \"AAEC\"}\n";

/* The same policy in JSON. */
static const char VALID_JSON[] =
    "{\"name\": \"shop/api\", \"predecessor\": \"" D64E "\",\n"
    " \"access\": {\"read\": [\"" K64C "\"], \"update\": [\"" K64D "\"]},\n"
    " \"services\": [\n"
    "  {\"name\": \"api\",\n"
    "   \"command\": [\"/usr/bin/python3\", \"-c\", \"print(1)\", "
    "\"--key=$$coffer:token$$\"],\n"
    "   \"environment\": {\"KEY\": \"value\", \"DB_PASSWORD\": \"$$coffer:db_password$$\"},\n"
    "   \"passthrough_env\": [\"TERM\", \"LANG\"], \"working_dir\": \"/app\",\n"
    "   \"files\": [{\"path\": \"/etc/api/db.ini\", \"mode\": \"0440\",\n"
    "              \"content\": \"password = $$coffer:db_password$$\\n\"},\n"
    "             {\"path\": \"/etc/api/motd\", \"content\": \"costs $$5\\n\"}],\n"
    "   \"attestation\": [{\"platform\": \"sim\", \"measurement\": [\"" M64A "\", \"" M64B
    "\"]}],\n"
    "   \"tolerate\": [\"simulation\", \"debug\"]},\n"
    "  {\"name\": \"worker.2\", \"command\": [\"/bin/worker\"],\n"
    "   \"attestation\": [{\"platform\": \"sim\", \"measurement\": [\"" M64A "\"]}]}],\n"
    " \"secrets\": [\n"
    "  {\"name\": \"db_password\", \"kind\": \"ascii\", \"size\": 32, \"charset\": "
    "\"abcdef0123\"},\n"
    "  {\"name\": \"token\", \"kind\": \"hex\", \"size\": 16},\n"
    "  {\"name\": \"blob\", \"kind\": \"base64\", \"size\": 32},\n"
    "  {\"name\": \"raw\", \"kind\": \"binary\", \"size\": 4096},\n"
    "  {\"name\": \"api_key\", \"kind\": \"ascii\", \"value\": \"hunter2-explicit\"},\n"
    "  {\"name\": \"hk\", \"kind\": \"hex\", \"value\": \"00FF10\"},\n"
    "  {\"name\": \"bk\", \"kind\": \"binary\", \"value\": \"AAEC\"}]}\n";

/* The smallest valid policy; negative tests are small edits of it. */
#define MIN_HEAD "name: shop/api\n"
#define MIN_SERVICE                                                                                \
        "services:\n"                                                                              \
        "  - name: api\n"                                                                          \
        "    command: [/bin/true]\n"                                                               \
        "    attestation:\n"                                                                       \
        "      - platform: sim\n"                                                                  \
        "        measurement: [\"" M64A "\"]\n"

static cf_status parse(const char *text, struct policy **ret, struct policy_errors *errs)
{
        return policy_parse(cf_slice_str(text), ret, errs);
}

static void dump_errors(const struct policy_errors *e)
{
        for (size_t i = 0; i < e->n; i++) {
                print_message("  %s: %s\n", e->items[i].location, e->items[i].message);
        }
}

/* Asserts that text fails with code and that some error has exactly this location and a
 * message containing msg. */
static void expect_error(const char *text, int code, const char *loc, const char *msg)
{
        struct policy *p = NULL;
        static struct policy_errors errs;
        struct policy_errors *e = &errs;
        cf_status s;
        bool found = false;

        s = parse(text, &p, e);
        assert_null(p);
        for (size_t i = 0; i < e->n && !found; i++) {
                found = strcmp(e->items[i].location, loc) == 0 &&
                        strstr(e->items[i].message, msg) != NULL;
        }
        if (s.code != code || !found) {
                print_message("expected %d at '%s': '%s'; got %d:\n", code, loc, msg, s.code);
                dump_errors(e);
        }
        assert_int_equal(s.code, code);
        assert_true(found);
}

static struct policy *parse_ok(const char *text)
{
        struct policy *p = NULL;
        struct policy_errors *e = calloc(1, sizeof(*e));
        cf_status s;

        assert_non_null(e);
        s = parse(text, &p, e);
        if (!cf_ok(s)) {
                dump_errors(e);
        }
        assert_int_equal(s.code, 0);
        assert_int_equal(e->n, 0);
        assert_non_null(p);
        free(e);
        return p;
}

/* ---- valid documents ------------------------------------------------------------------- */

static void test_valid_yaml_model(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(VALID_YAML);
        const struct policy_service *s;
        const struct policy_secret *sec;

        (void)state;
        assert_string_equal(p->name, "shop/api");
        assert_true(p->has_predecessor);
        assert_string_equal(p->predecessor, D64E);
        assert_int_equal(p->n_read_ids, 1);
        assert_string_equal(p->read_ids[0], K64C);
        /* Key ids are normalised to lower case. */
        assert_int_equal(p->n_update_ids, 1);
        assert_int_equal(p->update_ids[0][0], 'd');

        assert_int_equal(p->n_services, 2);
        s = policy_find_service(p, "api");
        assert_non_null(s);
        assert_int_equal(s->n_command, 4);
        assert_string_equal(s->command[3], "--key=$$coffer:token$$");
        assert_int_equal(s->n_env, 2);
        assert_string_equal(s->env[0].name, "KEY");
        assert_string_equal(s->env[1].value, "$$coffer:db_password$$");
        assert_int_equal(s->n_passthrough_env, 2);
        assert_string_equal(s->passthrough_env[1], "LANG");
        assert_string_equal(s->working_dir, "/app");
        assert_int_equal(s->n_files, 2);
        assert_int_equal(s->files[0].mode, 0440);
        assert_string_equal(s->files[0].content, "password = $$coffer:db_password$$\n");
        assert_int_equal(s->files[1].mode, POLICY_FILE_MODE_DEFAULT);
        assert_string_equal(s->files[1].content, "costs $$5\n");
        assert_int_equal(s->n_rules, 1);
        assert_int_equal(s->rules[0].platform, ATTEST_SIM);
        assert_int_equal(s->rules[0].n_measurements, 2);
        /* Measurements are normalised to lower case. */
        assert_int_equal(s->rules[0].measurements[1][0], 'b');
        assert_true(s->tolerate_simulation);
        assert_true(s->tolerate_debug);
        assert_false(s->tolerate_outdated_tcb);

        s = policy_find_service(p, "worker.2");
        assert_non_null(s);
        assert_null(s->working_dir);
        assert_int_equal(s->n_env, 0);
        assert_false(s->tolerate_simulation);
        assert_null(policy_find_service(p, "nope"));

        assert_int_equal(p->n_secrets, 7);
        sec = policy_find_secret(p, "db_password");
        assert_non_null(sec);
        assert_int_equal(sec->kind, POLICY_SECRET_ASCII);
        assert_int_equal(sec->size, 32);
        assert_string_equal(sec->charset, "abcdef0123");
        assert_false(sec->has_value);
        sec = policy_find_secret(p, "raw");
        assert_int_equal(sec->kind, POLICY_SECRET_BINARY);
        assert_int_equal(sec->size, 4096);
        assert_null(sec->charset);
        sec = policy_find_secret(p, "api_key");
        assert_true(sec->has_value);
        assert_int_equal(sec->value_size, 16);
        assert_memory_equal(sec->value, "hunter2-explicit", 16);
        sec = policy_find_secret(p, "hk");
        assert_int_equal(sec->kind, POLICY_SECRET_HEX);
        assert_int_equal(sec->value_size, 3);
        assert_int_equal(sec->size, 3);
        assert_memory_equal(sec->value, "\x00\xff\x10", 3);
        sec = policy_find_secret(p, "bk");
        assert_int_equal(sec->value_size, 3);
        assert_memory_equal(sec->value, "\x00\x01\x02", 3);
        assert_null(policy_find_secret(p, "missing"));
}

static void test_yaml_and_json_same_model(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *y = parse_ok(VALID_YAML);
        CF_CLEANUP(policy_freep) struct policy *j = parse_ok(VALID_JSON);
        json_t *jy = NULL, *jj = NULL;

        (void)state;
        assert_int_equal(policy_to_json(y, &jy).code, 0);
        assert_int_equal(policy_to_json(j, &jj).code, 0);
        assert_true(json_equal(jy, jj));
        /* Explicit values are compared directly, since the view redacts them. */
        for (size_t i = 0; i < y->n_secrets; i++) {
                assert_int_equal(y->secrets[i].value_size, j->secrets[i].value_size);
                if (y->secrets[i].value_size > 0) {
                        assert_memory_equal(y->secrets[i].value, j->secrets[i].value,
                                            y->secrets[i].value_size);
                }
        }
        json_decref(jy);
        json_decref(jj);
}

static void test_to_json_round_trip_and_redaction(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(VALID_YAML);
        CF_CLEANUP(policy_freep) struct policy *q = NULL;
        json_t *j = NULL, *j2 = NULL;
        char *text;

        (void)state;
        assert_int_equal(policy_to_json(p, &j).code, 0);
        text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        /* The explicit value never appears; the marker does, once per explicit secret. */
        assert_null(strstr(text, "hunter2"));
        assert_null(strstr(text, "00FF10"));
        assert_null(strstr(text, "00ff10"));
        assert_null(strstr(text, "AAEC"));
        assert_non_null(strstr(text, "\"value\":\"<redacted>\""));
        assert_non_null(strstr(text, "\"mode\":\"0440\""));
        assert_non_null(strstr(text, "\"predecessor\":\"" D64E "\""));
        /* The view is itself a valid policy document (hex/base64 values aside, which the
         * marker does not decode as): drop those and parse it back. */
        json_t *secrets = json_object_get(j, "secrets");
        size_t i = 0;
        while (i < json_array_size(secrets)) {
                const char *kind =
                    json_string_value(json_object_get(json_array_get(secrets, i), "kind"));
                if (json_object_get(json_array_get(secrets, i), "value") != NULL &&
                    strcmp(kind, "ascii") != 0) {
                        assert_int_equal(json_array_remove(secrets, i), 0);
                } else {
                        i++;
                }
        }
        free(text);
        text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        q = parse_ok(text);
        assert_int_equal(policy_to_json(q, &j2).code, 0);
        assert_true(json_equal(j, j2));
        free(text);
        json_decref(j);
        json_decref(j2);
}

static void test_minimal_and_scalar_typing(void **state)
{
        (void)state;
        {
                CF_CLEANUP(policy_freep) struct policy *p = parse_ok(MIN_HEAD MIN_SERVICE);
                assert_false(p->has_predecessor);
                assert_int_equal(p->n_secrets, 0);
                assert_int_equal(p->n_read_ids, 0);
        }
        /* `~`, `null` and an empty value are all null. */
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(MIN_HEAD "predecessor: ~\n" MIN_SERVICE);
                assert_false(p->has_predecessor);
        }
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(MIN_HEAD "predecessor:\n" MIN_SERVICE);
                assert_false(p->has_predecessor);
        }
        /* A quoted number is a string; a plain one is an integer. */
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: \"12\"}]\n",
                     CF_E_SCHEMA, "line 8, column 38 ($.secrets[0].size)",
                     "size must be an integer");
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(MIN_HEAD MIN_SERVICE
                                            "secrets: [{name: \"12\", kind: hex, size: 12}]\n");
                assert_int_equal(p->secrets[0].size, 12);
                assert_string_equal(p->secrets[0].name, "12");
        }
        /* A plain "true" is a boolean, not the string it looks like. */
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [true]\n"
                              "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n",
                     CF_E_SCHEMA, "line 4, column 15 ($.services[0].command[0])",
                     "expected a string, got a boolean");
        /* Standard tags are accepted: !!str makes a string of a plain number. */
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(
                    MIN_HEAD "services:\n  - name: !!str 1\n    command: [/x]\n"
                             "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n");
                assert_string_equal(p->services[0].name, "1");
        }
        /* Plain "1.5" is a string, not a number. */
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: 1.5}]\n",
                     CF_E_SCHEMA, "line 8, column 38 ($.secrets[0].size)", "got a string");
}

/* ---- errors with their locations ------------------------------------------------------- */

static void test_unknown_keys(void **state)
{
        (void)state;
        expect_error(MIN_HEAD "comand: x\n" MIN_SERVICE, CF_E_SCHEMA, "line 2, column 1 ($.comand)",
                     "unknown key 'comand'");
        expect_error(MIN_HEAD MIN_SERVICE "    comand: [x]\n", CF_E_SCHEMA,
                     "line 8, column 5 ($.services[0].comand)", "unknown key 'comand'");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, content: x, owner: root}]\n",
                     CF_E_SCHEMA, "line 8, column 36 ($.services[0].files[0].owner)",
                     "unknown key 'owner'");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: 1, sise: 2}]\n",
                     CF_E_SCHEMA, "line 8, column 41 ($.secrets[0].sise)", "unknown key 'sise'");
        expect_error(MIN_HEAD MIN_SERVICE "        min_tcb: 3\n", CF_E_SCHEMA,
                     "line 8, column 9 ($.services[0].attestation[0].min_tcb)",
                     "unknown key 'min_tcb'");
        expect_error(MIN_HEAD "access: {reed: []}\n" MIN_SERVICE, CF_E_SCHEMA,
                     "line 2, column 10 ($.access.reed)", "unknown key 'reed'");
        /* Odd keys are shown escaped in the path and the message. */
        expect_error(MIN_HEAD "\"we'ird key\": 1\n" MIN_SERVICE, CF_E_SCHEMA,
                     "line 2, column 1 ($['we\\x27ird key'])", "unknown key 'we\\x27ird key'");
}

static void test_wrong_types_and_missing(void **state)
{
        (void)state;
        expect_error(MIN_HEAD "services: {name: api}\n", CF_E_SCHEMA,
                     "line 2, column 11 ($.services)",
                     "expected a list of services, got a mapping");
        expect_error("name: shop/api\n", CF_E_SCHEMA, "line 1, column 1 ($)",
                     "missing required key 'services'");
        expect_error(MIN_SERVICE, CF_E_SCHEMA, "line 1, column 1 ($)",
                     "missing required key 'name'");
        expect_error(MIN_HEAD "services:\n  - name: api\n    attestation: []\n", CF_E_SCHEMA,
                     "line 3, column 5 ($.services[0])", "missing required key 'command'");
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n", CF_E_SCHEMA,
                     "line 3, column 5 ($.services[0])", "missing required key 'attestation'");
        expect_error(MIN_HEAD "services: [x]\n", CF_E_SCHEMA, "line 2, column 12 ($.services[0])",
                     "expected a mapping, got a string");
        expect_error("- a\n- b\n", CF_E_SCHEMA, "line 1, column 1 ($)",
                     "expected a mapping at the top level");
        expect_error(MIN_HEAD MIN_SERVICE "    environment: [A]\n", CF_E_SCHEMA,
                     "line 8, column 18 ($.services[0].environment)", "expected a mapping");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a}]\n", CF_E_SCHEMA,
                     "line 8, column 13 ($.services[0].files[0])",
                     "missing required key 'content'");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: ascii}]\n", CF_E_SCHEMA,
                     "line 8, column 11 ($.secrets[0])", "missing required key 'size'");
        expect_error(MIN_HEAD "predecessor: 5\n" MIN_SERVICE, CF_E_SCHEMA,
                     "line 2, column 14 ($.predecessor)", "expected null or a digest");
        /* JSON locations are paths. */
        expect_error(
            "{\"name\": \"shop/api\", \"services\": [{\"name\": \"api\", \"command\": "
            "[\"/x\", 7], \"attestation\": [{\"platform\": \"sim\", \"measurement\": [\"" M64A
            "\"]}]}]}",
            CF_E_SCHEMA, "$.services[0].command[1]", "expected a string, got an integer");
        expect_error("{\"name\": \"shop/api\", \"services\": [], \"x\": null}", CF_E_SCHEMA, "$.x",
                     "unknown key 'x'");
        expect_error("{\"name\": \"shop/api\", \"services\": []}", CF_E_SCHEMA, "$.services",
                     "expected 1 to 64 services, got 0");
        expect_error(
            "{\"name\": \"shop/api\", \"services\": [{\"name\": \"a\", \"command\": [\"/x\"],"
            " \"attestation\": [{\"platform\": \"sim\", \"measurement\": [\"" M64A
            "\"]}]}], \"secrets\": [{\"name\": \"s\", \"kind\": \"hex\", \"size\": 1.0}]}",
            CF_E_SCHEMA, "$.secrets[0].size", "got a number");
}

static void test_bad_names(void **state)
{
        (void)state;
        expect_error("name: shop\n" MIN_SERVICE, CF_E_SCHEMA, "line 1, column 7 ($.name)",
                     "invalid policy name 'shop'");
        expect_error("name: Shop/api\n" MIN_SERVICE, CF_E_SCHEMA, "line 1, column 7 ($.name)",
                     "invalid policy name");
        expect_error("name: shop//api\n" MIN_SERVICE, CF_E_SCHEMA, "line 1, column 7 ($.name)",
                     "invalid policy name");
        expect_error("name: shop/.api\n" MIN_SERVICE, CF_E_SCHEMA, "line 1, column 7 ($.name)",
                     "invalid policy name");
        expect_error("name: shop/api/\n" MIN_SERVICE, CF_E_SCHEMA, "line 1, column 7 ($.name)",
                     "invalid policy name");
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok("name: a/b.c_d-e/0\n" MIN_SERVICE);
                assert_string_equal(p->name, "a/b.c_d-e/0");
        }
        /* A 64-character segment is one too many; 63 is fine. */
        char doc[1024];
        char seg[70];
        memset(seg, 'x', 64);
        seg[64] = '\0';
        snprintf(doc, sizeof(doc), "name: ns/%s\n%s", seg, MIN_SERVICE);
        expect_error(doc, CF_E_SCHEMA, "line 1, column 7 ($.name)", "invalid policy name");
        seg[63] = '\0';
        snprintf(doc, sizeof(doc), "name: ns/%s\n%s", seg, MIN_SERVICE);
        policy_free(parse_ok(doc));
        /* Total length: 4 segments of 50 = 203 characters > 200. */
        char s50[51];
        memset(s50, 'y', 50);
        s50[50] = '\0';
        snprintf(doc, sizeof(doc), "name: %s/%s/%s/%s\n%s", s50, s50, s50, s50, MIN_SERVICE);
        expect_error(doc, CF_E_SCHEMA, "line 1, column 7 ($.name)", "at most 200 characters");

        expect_error(MIN_HEAD "services:\n  - name: -api\n    command: [x]\n"
                              "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n",
                     CF_E_SCHEMA, "line 3, column 11 ($.services[0].name)",
                     "invalid service name '-api'");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: \"a b\", kind: hex, size: 1}]\n",
                     CF_E_SCHEMA, "line 8, column 18 ($.secrets[0].name)",
                     "invalid secret name 'a b'");
        expect_error(MIN_HEAD MIN_SERVICE "    environment: {1X: a}\n", CF_E_SCHEMA,
                     "line 8, column 19 ($.services[0].environment['1X'])",
                     "invalid environment variable name '1X'");
        expect_error(MIN_HEAD MIN_SERVICE "    passthrough_env: [TERM, A-B]\n", CF_E_SCHEMA,
                     "line 8, column 29 ($.services[0].passthrough_env[1])",
                     "invalid environment variable name 'A-B'");
        expect_error(MIN_HEAD MIN_SERVICE "    environment: {TERM: x}\n"
                                          "    passthrough_env: [TERM]\n",
                     CF_E_SCHEMA, "line 9, column 23 ($.services[0].passthrough_env[0])",
                     "set in environment and also passed through");
}

static void test_bad_hex(void **state)
{
        (void)state;
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                              "    attestation: [{platform: sim, measurement: [\"" M64A "0\"]}]\n",
                     CF_E_SCHEMA, "line 5, column 49 ($.services[0].attestation[0].measurement[0])",
                     "expected a measurement of 64 hexadecimal digits");
        expect_error(MIN_HEAD
                     "services:\n  - name: api\n    command: [x]\n"
                     "    attestation: [{platform: sim, measurement: "
                     "[gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]}]\n",
                     CF_E_SCHEMA, "line 5, column 49 ($.services[0].attestation[0].measurement[0])",
                     "64 hexadecimal digits");
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                              "    attestation: [{platform: sim, measurement: []}]\n",
                     CF_E_SCHEMA, "line 5, column 48 ($.services[0].attestation[0].measurement)",
                     "expected 1 to 64 measurements, got 0");
        expect_error(
            MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                     "    attestation: [{platform: sim, measurement: [" M64A ", " M64A "]}]\n",
            CF_E_SCHEMA, "line 5, column 115 ($.services[0].attestation[0].measurement[1])",
            "duplicate entry");
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                              "    attestation: [{platform: sim}]\n",
                     CF_E_SCHEMA, "line 5, column 19 ($.services[0].attestation[0])",
                     "missing required key 'measurement'");
        /* Predecessors must be lower case exactly as policy_digest writes them. */
        expect_error(MIN_HEAD "predecessor: " M64B "\n" MIN_SERVICE, CF_E_SCHEMA,
                     "line 2, column 14 ($.predecessor)", "64 lower-case hex digits");
        expect_error(MIN_HEAD "access: {read: [abc]}\n" MIN_SERVICE, CF_E_SCHEMA,
                     "line 2, column 17 ($.access.read[0])", "expected a key id");
}

static void test_files(void **state)
{
        (void)state;
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, mode: \"0800\", content: x}]\n",
                     CF_E_SCHEMA, "line 8, column 30 ($.services[0].files[0].mode)",
                     "invalid mode '0800'");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, mode: \"40\", content: x}]\n",
                     CF_E_SCHEMA, "line 8, column 30 ($.services[0].files[0].mode)",
                     "3 or 4 octal digits");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, mode: \"4755\", content: x}]\n",
                     CF_E_SCHEMA, "line 8, column 30 ($.services[0].files[0].mode)",
                     "setuid, setgid and sticky bits");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, mode: 0400, content: x}]\n",
                     CF_E_SCHEMA, "line 8, column 30 ($.services[0].files[0].mode)",
                     "quoted string such as \"0400\"");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: etc/a, content: x}]\n", CF_E_SCHEMA,
                     "line 8, column 20 ($.services[0].files[0].path)",
                     "invalid path 'etc/a': expected an absolute path");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /etc/../a, content: x}]\n",
                     CF_E_SCHEMA, "line 8, column 20 ($.services[0].files[0].path)",
                     "invalid path '/etc/../a'");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /etc/.., content: x}]\n", CF_E_SCHEMA,
                     "line 8, column 20 ($.services[0].files[0].path)", "invalid path");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /etc//a, content: x}]\n", CF_E_SCHEMA,
                     "line 8, column 20 ($.services[0].files[0].path)", "invalid path");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /etc/, content: x}]\n", CF_E_SCHEMA,
                     "line 8, column 20 ($.services[0].files[0].path)", "invalid path");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /, content: x}]\n", CF_E_SCHEMA,
                     "line 8, column 20 ($.services[0].files[0].path)", "invalid path");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: \"/a\\0b\", content: x}]\n",
                     CF_E_SCHEMA, "line 8, column 20", "NUL bytes");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, content: x}, "
                                          "{path: /a, content: y}]\n",
                     CF_E_SCHEMA, "line 8, column 44 ($.services[0].files[1].path)",
                     "duplicate file path '/a'");
        expect_error(MIN_HEAD MIN_SERVICE "    working_dir: app\n", CF_E_SCHEMA,
                     "line 8, column 18 ($.services[0].working_dir)", "invalid working_dir");
        {
                CF_CLEANUP(policy_freep)
                struct policy *p =
                    parse_ok(MIN_HEAD MIN_SERVICE "    working_dir: /\n"
                                                  "    files: [{path: /a/.b/c.d, mode: \"600\","
                                                  " content: \"\"}]\n");
                assert_string_equal(p->services[0].working_dir, "/");
                assert_int_equal(p->services[0].files[0].mode, 0600);
                assert_string_equal(p->services[0].files[0].content, "");
        }
}

static void test_duplicates(void **state)
{
        (void)state;
        expect_error(MIN_HEAD MIN_SERVICE "  - name: api\n    command: [x]\n"
                                          "    attestation: [{platform: sim, measurement: [\"" M64A
                                          "\"]}]\n",
                     CF_E_SCHEMA, "line 8, column 11 ($.services[1].name)",
                     "duplicate service 'api'");
        expect_error(MIN_HEAD MIN_SERVICE "secrets:\n  - {name: s, kind: hex, size: 1}\n"
                                          "  - {name: s, kind: hex, size: 2}\n",
                     CF_E_SCHEMA, "line 10, column 12 ($.secrets[1].name)", "duplicate secret 's'");
        /* Duplicate YAML keys are found by the loader, at the second key. */
        expect_error(MIN_HEAD "name: other/x\n" MIN_SERVICE, CF_E_SCHEMA, "line 2, column 1",
                     "duplicate key 'name'");
        expect_error(MIN_HEAD MIN_SERVICE "    environment: {A: x, A: y}\n", CF_E_SCHEMA,
                     "line 8, column 25", "duplicate key 'A'");
        /* JSON duplicates are refused by the JSON parser itself. */
        expect_error("{\"name\": \"a/b\", \"name\": \"c/d\"}", CF_E_SYNTAX, "line 1, column 22",
                     "duplicate object key");
}

static void test_placeholders_in_documents(void **state)
{
        (void)state;
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [/x, \"$$coffer:nope$$\"]\n"
                              "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n",
                     CF_E_SCHEMA, "line 4, column 19 ($.services[0].command[1])",
                     "placeholder refers to undeclared secret 'nope'");
        expect_error(MIN_HEAD MIN_SERVICE "    environment: {A: \"x $$coffer:db_pass\"}\n"
                                          "secrets: [{name: db_pass, kind: ascii, size: 8}]\n",
                     CF_E_SCHEMA, "line 8, column 22 ($.services[0].environment.A)",
                     "malformed placeholder");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, content: \"$$coffer:$$\"}]\n",
                     CF_E_SCHEMA, "line 8, column 33 ($.services[0].files[0].content)",
                     "malformed placeholder");
        expect_error(MIN_HEAD MIN_SERVICE "    files: [{path: /a, content: \"$$coffer:a b$$\"}]\n",
                     CF_E_SCHEMA, "line 8, column 33 ($.services[0].files[0].content)",
                     "malformed placeholder");
        /* "$$" without "coffer:" is literal; declared names are fine anywhere. */
        {
                CF_CLEANUP(policy_freep)
                struct policy *p =
                    parse_ok(MIN_HEAD MIN_SERVICE
                             "    environment: {A: \"$$ $$x $$coffer:s.1$$$$coffer:s.1$$\"}\n"
                             "secrets: [{name: s.1, kind: ascii, size: 8}]\n");
                assert_string_equal(p->services[0].env[0].value,
                                    "$$ $$x $$coffer:s.1$$$$coffer:s.1$$");
        }
}

static void test_secrets(void **state)
{
        (void)state;
        expect_error(
            MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: 1, value: \"00\"}]\n",
            CF_E_SCHEMA, "line 8, column 11 ($.secrets[0])", "either size or value, not both");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: rsa, size: 1}]\n", CF_E_SCHEMA,
                     "line 8, column 27 ($.secrets[0].kind)", "unknown secret kind 'rsa'");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: 0}]\n", CF_E_SCHEMA,
                     "line 8, column 38 ($.secrets[0].size)", "from 1 to 4096 (bytes), got 0");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: 4097}]\n",
                     CF_E_SCHEMA, "line 8, column 38 ($.secrets[0].size)", "got 4097");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: -1}]\n",
                     CF_E_SCHEMA, "line 8, column 38 ($.secrets[0].size)", "got -1");
        expect_error(MIN_HEAD MIN_SERVICE
                     "secrets: [{name: a, kind: hex, size: 99999999999999999999999}]\n",
                     CF_E_SCHEMA, "line 8, column 38", "integer out of range");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, value: \"0g\"}]\n",
                     CF_E_SCHEMA, "line 8, column 39 ($.secrets[0].value)", "hex encoding");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, value: \"\"}]\n",
                     CF_E_SCHEMA, "line 8, column 39 ($.secrets[0].value)", "1 to 4096 bytes");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: base64, value: \"AAE\"}]\n",
                     CF_E_SCHEMA, "line 8, column 42 ($.secrets[0].value)", "padded base64");
        expect_error(MIN_HEAD MIN_SERVICE
                     "secrets: [{name: a, kind: ascii, value: \"tab\\there\"}]\n",
                     CF_E_SCHEMA, "line 8, column 41 ($.secrets[0].value)", "printable ASCII");
        expect_error(MIN_HEAD MIN_SERVICE "secrets: [{name: a, kind: hex, size: 2, charset: ab}]\n",
                     CF_E_SCHEMA, "line 8, column 50 ($.secrets[0].charset)",
                     "only allowed for kind ascii");
        expect_error(MIN_HEAD MIN_SERVICE
                     "secrets: [{name: a, kind: ascii, size: 2, charset: aa}]\n",
                     CF_E_SCHEMA, "line 8, column 52 ($.secrets[0].charset)", "distinct");
        expect_error(MIN_HEAD MIN_SERVICE
                     "secrets: [{name: a, kind: ascii, size: 2, charset: a}]\n",
                     CF_E_SCHEMA, "line 8, column 52 ($.secrets[0].charset)", "2 to 95");
        /* 4096 bytes of hex is fine; 4097 is not. */
        size_t big = 2 * 4097 + 256;
        char *doc = malloc(big + 512);
        char *hex = malloc(big);
        if (doc == NULL || hex == NULL) {
                fail_msg("out of memory");
                return;
        }
        memset(hex, 'a', 2 * 4096);
        hex[2 * 4096] = '\0';
        snprintf(doc, big + 512, "%s%ssecrets: [{name: a, kind: hex, value: \"%s\"}]\n", MIN_HEAD,
                 MIN_SERVICE, hex);
        policy_free(parse_ok(doc));
        memset(hex, 'a', 2 * 4097);
        hex[2 * 4097] = '\0';
        snprintf(doc, big + 512, "%s%ssecrets: [{name: a, kind: hex, value: \"%s\"}]\n", MIN_HEAD,
                 MIN_SERVICE, hex);
        expect_error(doc, CF_E_SCHEMA, "line 8, column 39 ($.secrets[0].value)", "1 to 4096 bytes");
        free(doc);
        free(hex);
}

static void test_platforms_and_tolerate(void **state)
{
        (void)state;
        /* Hardware platforms are supported; their keys are checked (test_hw_rule_errors). */
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                              "    attestation: [{platform: snp, measurement: [\"" M64A "\"]}]\n",
                     CF_E_SCHEMA, "line 5, column 49 ($.services[0].attestation[0].measurement[0])",
                     "expected 96 hexadecimal digits");
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                              "    attestation: [{platform: 7}]\n",
                     CF_E_SCHEMA, "line 5, column 30 ($.services[0].attestation[0].platform)",
                     "expected a string, got an integer");
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [x]\n"
                              "    attestation: [{platform: tpm}]\n",
                     CF_E_SCHEMA, "line 5, column 30 ($.services[0].attestation[0].platform)",
                     "unknown platform 'tpm'");
        expect_error(MIN_HEAD MIN_SERVICE "    tolerate: [simulation, everything]\n", CF_E_SCHEMA,
                     "line 8, column 28 ($.services[0].tolerate[1])",
                     "unknown tolerate value 'everything'");
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(MIN_HEAD MIN_SERVICE "    tolerate: [outdated_tcb]\n");
                assert_true(p->services[0].tolerate_outdated_tcb);
                assert_false(p->services[0].tolerate_simulation);
        }
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: [\"\"]\n"
                              "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n",
                     CF_E_SCHEMA, "line 4, column 15 ($.services[0].command[0])",
                     "must not be empty");
        expect_error(MIN_HEAD "services:\n  - name: api\n    command: []\n"
                              "    attestation: [{platform: sim, measurement: [\"" M64A "\"]}]\n",
                     CF_E_SCHEMA, "line 4, column 14 ($.services[0].command)",
                     "expected 1 to 256 strings, got 0");
}

/* ---- per-platform attestation rules ------------------------------------------------------ */

#define H64A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H96B                                                                                       \
        "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB" \
        "BBBB"                                                                                     \
        "BBBB"
#define H96C                                                                                       \
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" \
        "cccccccc"

/* A service "api" whose attestation list is RULES (YAML flow or block text after
 * "    attestation:\n"); the rule starts on line 6. */
#define RULE_DOC(rules)                                                                            \
        MIN_HEAD "services:\n  - name: api\n    command: [x]\n    attestation:\n" rules

static const char HW_YAML[] =
    MIN_HEAD "services:\n"
             "  - name: api\n"
             "    command: [x]\n"
             "    tolerate: [debug]\n"
             "    attestation:\n"
             "      - platform: sgx\n"
             "        mrenclave: [\"" M64B "\", \"" H64A "\"]\n"
             "        tcb_status: [UpToDate, {status: SWHardeningNeeded, until: "
             "\"2026-12-31T00:00:00Z\"}]\n"
             "        advisories: [{id: intel-sa-00615, until: 2026-06-30T00:00:00Z}, "
             "INTEL-SA-00289]\n"
             "      - platform: sgx\n"
             "        mrsigner: \"" M64B "\"\n"
             "        isvprodid: 3\n"
             "        min_isvsvn: 2\n"
             "      - platform: tdx\n"
             "        mrtd: [\"" H96B "\"]\n"
             "        rtmr2: [\"" H96C "\"]\n"
             "        mrowner: [\"" H96C "\"]\n"
             "        tcb_status: [OutOfDate]\n"
             "      - platform: snp\n"
             "        measurement: [\"" H96B "\"]\n"
             "        host_data: [\"" H64A "\"]\n"
             "        id_key_digest: [\"" H96C "\"]\n"
             "        min_tcb: {bootloader: 3, tee: 0, snp: 8, microcode: 115, fmc: 255}\n"
             "        policy: {debug: true, migration_agent: false, smt: true}\n"
             "        vmpl: [0, 2]\n"
             "      - platform: sim\n"
             "        measurement: [\"" M64A "\"]\n";

static void test_hw_rules_model(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(HW_YAML);
        const struct policy_service *s = &p->services[0];
        const struct policy_rule *r;
        int64_t t;

        (void)state;
        assert_int_equal(s->n_rules, 5);
        r = &s->rules[0];
        assert_int_equal(r->platform, ATTEST_SGX);
        assert_int_equal(r->mrenclave.n, 2);
        assert_string_equal(r->mrenclave.items[0], M64B_LOWER);
        assert_false(r->has_mrsigner);
        assert_int_equal(r->n_tcb_status, 2);
        assert_string_equal(r->tcb_status[0].name, "UpToDate");
        assert_false(r->tcb_status[0].has_until);
        assert_string_equal(r->tcb_status[1].name, "SWHardeningNeeded");
        assert_true(r->tcb_status[1].has_until);
        assert_int_equal(cf_parse_rfc3339("2026-12-31T00:00:00Z", &t).code, 0);
        assert_int_equal(r->tcb_status[1].until, t);
        assert_int_equal(r->n_advisories, 2);
        assert_string_equal(r->advisories[0].name, "INTEL-SA-00615"); /* upper-cased */
        assert_true(r->advisories[0].has_until);
        assert_string_equal(r->advisories[1].name, "INTEL-SA-00289");
        assert_false(r->advisories[1].has_until);

        r = &s->rules[1];
        assert_int_equal(r->mrenclave.n, 0);
        assert_true(r->has_mrsigner);
        assert_string_equal(r->mrsigner, M64B_LOWER);
        assert_int_equal(r->isvprodid, 3);
        assert_int_equal(r->min_isvsvn, 2);
        /* The default: UpToDate only, no advisories. */
        assert_int_equal(r->n_tcb_status, 1);
        assert_string_equal(r->tcb_status[0].name, "UpToDate");
        assert_int_equal(r->n_advisories, 0);

        r = &s->rules[2];
        assert_int_equal(r->platform, ATTEST_TDX);
        assert_int_equal(r->mrtd.n, 1);
        assert_int_equal(r->mrtd.items[0][0], 'b');
        assert_int_equal(r->rtmr[0].n, 0);
        assert_int_equal(r->rtmr[2].n, 1);
        assert_int_equal(r->mrconfigid.n, 0);
        assert_int_equal(r->mrowner.n, 1);
        assert_string_equal(r->tcb_status[0].name, "OutOfDate");

        r = &s->rules[3];
        assert_int_equal(r->platform, ATTEST_SNP);
        assert_int_equal(r->n_measurements, 1);
        assert_int_equal(r->measurements[0][0], 'b');
        assert_int_equal(r->host_data.n, 1);
        assert_int_equal(r->id_key_digest.n, 1);
        assert_true(r->has_min_tcb[POLICY_SNP_TCB_BOOTLOADER]);
        assert_int_equal(r->min_tcb[POLICY_SNP_TCB_BOOTLOADER], 3);
        assert_true(r->has_min_tcb[POLICY_SNP_TCB_TEE]);
        assert_int_equal(r->min_tcb[POLICY_SNP_TCB_MICROCODE], 115);
        assert_int_equal(r->min_tcb[POLICY_SNP_TCB_FMC], 255);
        assert_int_equal(r->snp_policy[POLICY_SNP_BIT_DEBUG], POLICY_BIT_REQUIRED);
        assert_int_equal(r->snp_policy[POLICY_SNP_BIT_MIGRATION_AGENT], POLICY_BIT_FORBIDDEN);
        assert_int_equal(r->snp_policy[POLICY_SNP_BIT_SMT], POLICY_BIT_REQUIRED);
        assert_int_equal(r->snp_policy[POLICY_SNP_BIT_SINGLE_SOCKET], POLICY_BIT_ANY);
        assert_int_equal(r->vmpl_mask, 0x5);
        assert_int_equal(r->n_tcb_status, 0);

        assert_int_equal(s->rules[4].platform, ATTEST_SIM);
        assert_string_equal(policy_snp_tcb_name(POLICY_SNP_TCB_MICROCODE), "microcode");
        assert_string_equal(policy_snp_bit_name(POLICY_SNP_BIT_SINGLE_SOCKET), "single_socket");
        assert_null(policy_snp_tcb_name(POLICY_SNP_TCB_N));
        assert_null(policy_snp_bit_name(POLICY_SNP_BIT_N));
}

/* The JSON view of hardware rules parses back into the same view. */
static void test_hw_rules_round_trip(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(HW_YAML);
        CF_CLEANUP(policy_freep) struct policy *q = NULL;
        json_t *j = NULL, *j2 = NULL;
        char *text;

        (void)state;
        assert_int_equal(policy_to_json(p, &j).code, 0);
        text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        assert_non_null(strstr(text, "{\"status\":\"SWHardeningNeeded\",\"until\":"
                                     "\"2026-12-31T00:00:00Z\"}"));
        assert_non_null(strstr(text, "\"min_tcb\":{\"bootloader\":3,\"tee\":0,\"snp\":8,"
                                     "\"microcode\":115,\"fmc\":255}"));
        assert_non_null(strstr(text, "\"vmpl\":[0,2]"));
        assert_non_null(strstr(text, "\"mrsigner\":\"" M64B_LOWER "\",\"isvprodid\":3,"
                                     "\"min_isvsvn\":2"));
        q = parse_ok(text);
        assert_int_equal(policy_to_json(q, &j2).code, 0);
        assert_true(json_equal(j, j2));
        free(text);
        json_decref(j);
        json_decref(j2);
}

static void test_hw_rule_errors(void **state)
{
        (void)state;
        /* sgx: identity choices */
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A "\"], mrsigner: \"" M64A
                              "\", isvprodid: 1}\n"),
                     CF_E_SCHEMA, "line 6, column 9 ($.services[0].attestation[0])",
                     "either mrenclave, or mrsigner");
        expect_error(RULE_DOC("      - {platform: sgx}\n"), CF_E_SCHEMA,
                     "line 6, column 9 ($.services[0].attestation[0])",
                     "an sgx rule needs mrenclave, or mrsigner and isvprodid");
        expect_error(RULE_DOC("      - {platform: sgx, mrsigner: \"" M64A "\"}\n"), CF_E_SCHEMA,
                     "line 6, column 9 ($.services[0].attestation[0])",
                     "missing required key 'isvprodid'");
        expect_error(RULE_DOC("      - {platform: sgx, isvprodid: 1}\n"), CF_E_SCHEMA,
                     "line 6, column 9 ($.services[0].attestation[0])",
                     "missing required key 'mrsigner'");
        expect_error(RULE_DOC("      - {platform: sgx, mrsigner: \"abc\", isvprodid: 1}\n"),
                     CF_E_SCHEMA, "line 6, column 35 ($.services[0].attestation[0].mrsigner)",
                     "expected an MRSIGNER of 64 hexadecimal digits, got 'abc'");
        expect_error(
            RULE_DOC("      - {platform: sgx, mrsigner: \"" M64A "\", isvprodid: 65536}\n"),
            CF_E_SCHEMA, "line 6, column 114 ($.services[0].attestation[0].isvprodid)",
            "expected an integer from 0 to 65535, got 65536");
        expect_error(RULE_DOC("      - {platform: sgx, mrsigner: \"" M64A
                              "\", isvprodid: 1, min_isvsvn: \"2\"}\n"),
                     CF_E_SCHEMA, "line 6, column 129 ($.services[0].attestation[0].min_isvsvn)",
                     "expected an integer from 0 to 65535, got a string");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" H96C "\"]}\n"), CF_E_SCHEMA,
                     "line 6, column 37 ($.services[0].attestation[0].mrenclave[0])",
                     "expected 64 hexadecimal digits");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A "\"], measurement: "
                              "[\"" M64A "\"]}\n"),
                     CF_E_SCHEMA, "line 6, column 106 ($.services[0].attestation[0].measurement)",
                     "unknown key 'measurement'");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: []}\n"), CF_E_SCHEMA,
                     "line 6, column 36 ($.services[0].attestation[0].mrenclave)",
                     "expected 1 to 64 values, got 0");
        /* TCB statuses */
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [UpToDate, Revoked]}\n"),
                     CF_E_SCHEMA, "line 6, column 129 ($.services[0].attestation[0].tcb_status[1])",
                     "TCB status 'Revoked' can never be accepted");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [NoMatchingLevel]}\n"),
                     CF_E_SCHEMA, "line 6, column 119 ($.services[0].attestation[0].tcb_status[0])",
                     "TCB status 'NoMatchingLevel' can never be accepted");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [uptodate]}\n"),
                     CF_E_SCHEMA, "line 6, column 119 ($.services[0].attestation[0].tcb_status[0])",
                     "unknown TCB status 'uptodate'");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [UpToDate, UpToDate]}\n"),
                     CF_E_SCHEMA, "line 6, column 129 ($.services[0].attestation[0].tcb_status[1])",
                     "duplicate entry 'UpToDate'");
        expect_error(
            RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A "\"], tcb_status: []}\n"),
            CF_E_SCHEMA, "line 6, column 118 ($.services[0].attestation[0].tcb_status)",
            "expected 1 to 6 TCB statuses, got 0");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [{status: OutOfDate, until: tomorrow}]}\n"),
                     CF_E_SCHEMA,
                     "line 6, column 146 ($.services[0].attestation[0].tcb_status[0].until)",
                     "invalid date 'tomorrow'");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [{status: OutOfDate}]}\n"),
                     CF_E_SCHEMA, "line 6, column 119 ($.services[0].attestation[0].tcb_status[0])",
                     "missing required key 'until'");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], tcb_status: [{status: OutOfDate, until: "
                              "\"2026-01-01T00:00:00Z\", by: x}]}\n"),
                     CF_E_SCHEMA,
                     "line 6, column 170 ($.services[0].attestation[0].tcb_status[0].by)",
                     "unknown key 'by'");
        expect_error(
            RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A "\"], tcb_status: [3]}\n"),
            CF_E_SCHEMA, "line 6, column 119 ($.services[0].attestation[0].tcb_status[0])",
            "expected a TCB status, or a mapping {status: ..., until: DATE}, got an "
            "integer");
        /* advisories */
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], advisories: [\"INTEL SA\"]}\n"),
                     CF_E_SCHEMA, "line 6, column 119 ($.services[0].attestation[0].advisories[0])",
                     "invalid advisory id 'INTEL SA'");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], advisories: [INTEL-SA-1, intel-sa-1]}\n"),
                     CF_E_SCHEMA, "line 6, column 131 ($.services[0].attestation[0].advisories[1])",
                     "duplicate entry 'INTEL-SA-1'");
        expect_error(RULE_DOC("      - {platform: sgx, mrenclave: [\"" M64A
                              "\"], advisories: [{status: INTEL-SA-1, until: "
                              "\"2026-01-01T00:00:00Z\"}]}\n"),
                     CF_E_SCHEMA,
                     "line 6, column 120 ($.services[0].attestation[0].advisories[0].status)",
                     "unknown key 'status'");
        /* tdx */
        expect_error(RULE_DOC("      - {platform: tdx}\n"), CF_E_SCHEMA,
                     "line 6, column 9 ($.services[0].attestation[0])",
                     "a tdx rule needs at least one of mrtd");
        expect_error(RULE_DOC("      - {platform: tdx, rtmr3: [\"" M64A "\"]}\n"), CF_E_SCHEMA,
                     "line 6, column 33 ($.services[0].attestation[0].rtmr3[0])",
                     "expected 96 hexadecimal digits");
        expect_error(RULE_DOC("      - {platform: tdx, rtmr4: [\"" H96C "\"]}\n"), CF_E_SCHEMA,
                     "line 6, column 25 ($.services[0].attestation[0].rtmr4)",
                     "unknown key 'rtmr4'");
        expect_error(RULE_DOC("      - {platform: tdx, mrtd: [\"" H96C "\", \"" H96C "\"]}\n"),
                     CF_E_SCHEMA, "line 6, column 132 ($.services[0].attestation[0].mrtd[1])",
                     "duplicate entry");
        /* snp */
        expect_error(RULE_DOC("      - {platform: snp}\n"), CF_E_SCHEMA,
                     "line 6, column 9 ($.services[0].attestation[0])",
                     "missing required key 'measurement'");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" M64A "\"]}\n"),
                     CF_E_SCHEMA, "line 6, column 39 ($.services[0].attestation[0].measurement[0])",
                     "expected 96 hexadecimal digits");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C
                              "\"], tcb_status: [UpToDate]}\n"),
                     CF_E_SCHEMA, "line 6, column 140 ($.services[0].attestation[0].tcb_status)",
                     "tcb_status is not used for snp rules");
        expect_error(
            RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], advisories: []}\n"),
            CF_E_SCHEMA, "line 6, column 140 ($.services[0].attestation[0].advisories)",
            "advisories are not used for snp rules");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C
                              "\"], min_tcb: {microcode: 256}}\n"),
                     CF_E_SCHEMA,
                     "line 6, column 161 ($.services[0].attestation[0].min_tcb.microcode)",
                     "expected an integer from 0 to 255, got 256");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C
                              "\"], min_tcb: {microcode: -1}}\n"),
                     CF_E_SCHEMA,
                     "line 6, column 161 ($.services[0].attestation[0].min_tcb.microcode)",
                     "got -1");
        expect_error(
            RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], min_tcb: {ucode: 1}}\n"),
            CF_E_SCHEMA, "line 6, column 150 ($.services[0].attestation[0].min_tcb.ucode)",
            "unknown key 'ucode'");
        expect_error(
            RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], min_tcb: {}}\n"),
            CF_E_SCHEMA, "line 6, column 149 ($.services[0].attestation[0].min_tcb)",
            "min_tcb needs at least one of");
        expect_error(
            RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], policy: {smt: 1}}\n"),
            CF_E_SCHEMA, "line 6, column 154 ($.services[0].attestation[0].policy.smt)",
            "expected true (bit required) or false (bit forbidden), got an integer");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C
                              "\"], policy: {sev_es: true}}\n"),
                     CF_E_SCHEMA, "line 6, column 149 ($.services[0].attestation[0].policy.sev_es)",
                     "unknown key 'sev_es'");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C
                              "\"], policy: {debug: true}}\n"),
                     CF_E_SCHEMA, "line 6, column 156 ($.services[0].attestation[0].policy.debug)",
                     "requiring the debug bit needs tolerate: [debug]");
        expect_error(
            RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], vmpl: [0, 4]}\n"),
            CF_E_SCHEMA, "line 6, column 150 ($.services[0].attestation[0].vmpl[1])",
            "expected a VMPL from 0 to 3, got 4");
        expect_error(
            RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], vmpl: [1, 1]}\n"),
            CF_E_SCHEMA, "line 6, column 150 ($.services[0].attestation[0].vmpl[1])",
            "duplicate entry 1");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C "\"], vmpl: []}\n"),
                     CF_E_SCHEMA, "line 6, column 146 ($.services[0].attestation[0].vmpl)",
                     "expected 1 to 4 VMPLs, got 0");
        expect_error(RULE_DOC("      - {platform: snp, measurement: [\"" H96C
                              "\"], host_data: [\"" H96C "\"]}\n"),
                     CF_E_SCHEMA, "line 6, column 152 ($.services[0].attestation[0].host_data[0])",
                     "expected 64 hexadecimal digits");
        /* JSON documents report paths. */
        expect_error("{\"name\": \"shop/api\", \"services\": [{\"name\": \"api\", \"command\": "
                     "[\"x\"], \"attestation\": [{\"platform\": \"tdx\", \"mrtd\": [\"" H96C
                     "\"], \"tcb_status\": [{\"status\": \"Revoked\", \"until\": "
                     "\"2026-01-01T00:00:00Z\"}]}]}]}",
                     CF_E_SCHEMA, "$.services[0].attestation[0].tcb_status[0].status",
                     "can never be accepted");
}

static void test_yaml_features_refused(void **state)
{
        (void)state;
        expect_error(MIN_HEAD "x: &anchor 1\n" MIN_SERVICE, CF_E_SYNTAX, "line 2, column 4",
                     "YAML anchors and aliases are not supported");
        expect_error(MIN_HEAD "services:\n  - &svc\n    name: api\n  - *svc\n", CF_E_SYNTAX,
                     "line 3, column 5", "YAML anchors and aliases are not supported");
        expect_error("name: &n shop/api\nx: *n\n", CF_E_SYNTAX, "line 1, column 7",
                     "YAML anchors and aliases are not supported");
        expect_error(MIN_HEAD "x: !custom 1\n" MIN_SERVICE, CF_E_SYNTAX, "line 2, column 4",
                     "YAML tag '!custom' is not supported");
        expect_error(MIN_HEAD "x: !!binary aGk=\n" MIN_SERVICE, CF_E_SYNTAX, "line 2, column 4",
                     "YAML tag 'tag:yaml.org,2002:binary' is not supported");
        expect_error(MIN_HEAD "x: !!int abc\n", CF_E_SYNTAX, "line 2, column 4",
                     "!!int value must be a decimal integer");
        expect_error(MIN_HEAD MIN_SERVICE "---\nname: other/x\n", CF_E_SYNTAX, "line 8, column 1",
                     "multiple YAML documents are not supported");
        expect_error("", CF_E_SYNTAX, "line 1, column 1", "the document is empty");
        expect_error("# only a comment\n", CF_E_SYNTAX, "line 2, column 1",
                     "the document is empty");
        /* Syntax errors carry the parser's line and column. */
        expect_error(MIN_HEAD "services:\n  - name: api\n   bad: [\n", CF_E_SYNTAX,
                     "line 4, column 4", "YAML syntax error");
        expect_error(MIN_HEAD "x: \"unterminated\n", CF_E_SYNTAX, "line 3, column 1",
                     "YAML syntax error");
        expect_error("{\"name\": \"shop/api\",\n \"services\": [}\n", CF_E_SYNTAX,
                     "line 2, column 15", "JSON syntax error");
        expect_error("{\"name\": \"shop/api\"} trailing", CF_E_SYNTAX, "line 1, column 29",
                     "JSON syntax error");
        /* A mapping used as a key, and a NUL byte in a key. */
        expect_error(MIN_HEAD "? [a, b]\n: 1\n" MIN_SERVICE, CF_E_SCHEMA, "line 2, column 3",
                     "mapping keys must be strings");
        expect_error(MIN_HEAD "\"a\\0b\": 1\n" MIN_SERVICE, CF_E_SCHEMA, "line 2, column 1",
                     "NUL bytes");
}

/* Appends s to the NUL-terminated dst of size bytes (tests only build small documents). */
static void cat(char *dst, size_t size, const char *s)
{
        size_t have = strlen(dst), n = strlen(s);

        assert_true(have + n < size);
        memcpy(dst + have, s, n + 1);
}

static void test_limits(void **state)
{
        char *doc;
        size_t n;

        (void)state;
        /* Nesting: 32 levels are fine for the loader (the schema then refuses the key), 33
         * are a limit error, for YAML and JSON alike. */
        doc = calloc(1, 8192);
        assert_non_null(doc);
        doc[0] = '\0';
        cat(doc, 8192, MIN_HEAD MIN_SERVICE "x: ");
        for (int i = 0; i < 31; i++) {
                cat(doc, 8192, "[");
        }
        for (int i = 0; i < 31; i++) {
                cat(doc, 8192, "]");
        }
        cat(doc, 8192, "\n");
        expect_error(doc, CF_E_SCHEMA, "line 8, column 1 ($.x)", "unknown key 'x'");
        doc[0] = '\0';
        cat(doc, 8192, MIN_HEAD MIN_SERVICE "x: ");
        for (int i = 0; i < 32; i++) {
                cat(doc, 8192, "[");
        }
        for (int i = 0; i < 32; i++) {
                cat(doc, 8192, "]");
        }
        cat(doc, 8192, "\n");
        expect_error(doc, CF_E_LIMIT, "line 8, column 35", "nesting deeper than 32 levels");
        doc[0] = '\0';
        cat(doc, 8192, "{\"x\": ");
        for (int i = 0; i < 32; i++) {
                cat(doc, 8192, "[");
        }
        for (int i = 0; i < 32; i++) {
                cat(doc, 8192, "]");
        }
        cat(doc, 8192, "}");
        expect_error(doc, CF_E_LIMIT, "$", "nesting deeper than 32 levels");
        free(doc);

        /* Size: one byte over 1 MiB is refused before parsing. */
        n = POLICY_DOC_MAX + 1;
        doc = malloc(n + 1);
        assert_non_null(doc);
        memset(doc, '#', n);
        doc[n] = '\0';
        expect_error(doc, CF_E_LIMIT, "$", "larger than 1048576 bytes");
        free(doc);

        /* More than 64 errors: the first 64 are kept and truncated is set. */
        doc = calloc(1, 8192);
        assert_non_null(doc);
        doc[0] = '\0';
        cat(doc, 8192, MIN_HEAD MIN_SERVICE);
        for (int i = 0; i < 70; i++) {
                char line[32];
                snprintf(line, sizeof(line), "k%d: 1\n", i);
                cat(doc, 8192, line);
        }
        {
                struct policy *p = NULL;
                struct policy_errors *e = calloc(1, sizeof(*e));
                assert_non_null(e);
                assert_int_equal(parse(doc, &p, e).code, CF_E_SCHEMA);
                assert_int_equal(e->n, POLICY_ERRORS_MAX);
                assert_true(e->truncated);
                json_t *j = NULL;
                assert_int_equal(policy_errors_to_json(e, &j).code, 0);
                assert_int_equal(json_array_size(j), POLICY_ERRORS_MAX + 1);
                json_decref(j);
                free(e);
        }
        free(doc);
}

static void test_many_errors_all_reported(void **state)
{
        static const char doc[] = "name: Bad\n"
                                  "comand: x\n"
                                  "services:\n"
                                  "  - name: api\n"
                                  "    command: [\"$$coffer:nope$$\"]\n"
                                  "    files: [{path: rel, mode: \"9\", content: x}]\n"
                                  "    attestation: [{platform: snp}]\n"
                                  "secrets: [{name: s, kind: hex, size: 0}]\n";
        static const char *const expected[][2] = {
            {"line 1, column 7 ($.name)", "invalid policy name"},
            {"line 2, column 1 ($.comand)", "unknown key 'comand'"},
            {"line 5, column 15 ($.services[0].command[0])", "undeclared secret 'nope'"},
            {"line 6, column 20 ($.services[0].files[0].path)", "invalid path 'rel'"},
            {"line 6, column 31 ($.services[0].files[0].mode)", "invalid mode '9'"},
            {"line 7, column 19 ($.services[0].attestation[0])",
             "missing required key 'measurement'"},
            {"line 8, column 38 ($.secrets[0].size)", "got 0"},
        };
        struct policy *p = NULL;
        struct policy_errors *e = calloc(1, sizeof(*e));
        struct cf_buf b;

        (void)state;
        assert_non_null(e);
        assert_int_equal(parse(doc, &p, e).code, CF_E_SCHEMA);
        assert_null(p);
        assert_int_equal(e->n, sizeof(expected) / sizeof(expected[0]));
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
                bool found = false;
                for (size_t k = 0; k < e->n && !found; k++) {
                        found = strcmp(e->items[k].location, expected[i][0]) == 0 &&
                                strstr(e->items[k].message, expected[i][1]) != NULL;
                }
                if (!found) {
                        print_message("missing: %s: %s\n", expected[i][0], expected[i][1]);
                        dump_errors(e);
                }
                assert_true(found);
        }

        /* The text form: one line per error. */
        cf_buf_init(&b, 1 << 16, false);
        assert_int_equal(policy_errors_format(e, &b).code, 0);
        size_t lines = 0;
        for (size_t i = 0; i < b.size; i++) {
                lines += b.ptr[i] == '\n';
        }
        assert_int_equal(lines, e->n);
        assert_non_null(
            strstr((char *)b.ptr, "line 2, column 1 ($.comand): unknown key 'comand'\n"));
        cf_buf_done(&b);

        /* The JSON form. */
        json_t *j = NULL;
        assert_int_equal(policy_errors_to_json(e, &j).code, 0);
        assert_int_equal(json_array_size(j), e->n);
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "location")),
                            e->items[1].location);
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "message")),
                            e->items[1].message);
        json_decref(j);
        free(e);
}

static void test_error_messages_escape_user_text(void **state)
{
        struct policy *p = NULL;
        struct policy_errors *e = calloc(1, sizeof(*e));
        char doc[2048];
        char longkey[400];

        (void)state;
        assert_non_null(e);
        memset(longkey, 'k', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        snprintf(doc, sizeof(doc), "%s%s\"\\e[31m%s\": 1\n", MIN_HEAD, MIN_SERVICE, longkey);
        assert_int_equal(parse(doc, &p, e).code, CF_E_SCHEMA);
        assert_int_equal(e->n, 1);
        /* The escape byte is escaped, and the key is capped in both fields. */
        assert_null(strchr(e->items[0].message, 0x1b));
        assert_non_null(strstr(e->items[0].message, "\\x1b"));
        assert_non_null(strstr(e->items[0].message, "..."));
        assert_true(strlen(e->items[0].message) < 120);
        assert_true(strlen(e->items[0].location) < sizeof(e->items[0].location));
        free(e);
}

/* ---- robustness ------------------------------------------------------------------------ */

static void check_any_result(const char *text, size_t n)
{
        struct policy *p = NULL;
        static struct policy_errors e;
        cf_status s = policy_parse(cf_slice_make(text, n), &p, &e);

        if (cf_ok(s)) {
                assert_non_null(p);
                assert_int_equal(e.n, 0);
                policy_free(p);
                return;
        }
        assert_null(p);
        assert_true(s.code == CF_E_SYNTAX || s.code == CF_E_SCHEMA || s.code == CF_E_LIMIT);
        assert_true(e.n > 0);
        for (size_t i = 0; i < e.n; i++) {
                assert_true(e.items[i].location[0] != '\0');
                assert_true(e.items[i].message[0] != '\0');
        }
}

static void test_truncation_every_offset(void **state)
{
        const char *docs[] = {VALID_YAML, VALID_JSON};
        size_t ok_yaml = 0;

        (void)state;
        for (size_t d = 0; d < 2; d++) {
                size_t len = strlen(docs[d]);
                for (size_t n = 0; n < len; n++) {
                        /* An exact-size copy, so ASan sees any read past the end. */
                        char *copy = malloc(n ? n : 1);
                        struct policy *p = NULL;
                        static struct policy_errors e;
                        assert_non_null(copy);
                        memcpy(copy, docs[d], n);
                        check_any_result(copy, n);
                        if (d == 0 && cf_ok(policy_parse(cf_slice_make(copy, n), &p, &e))) {
                                ok_yaml++;
                                policy_free(p);
                        }
                        free(copy);
                }
        }
        /* Some YAML prefixes end at a line boundary after the last secret and are still
         * valid documents; the JSON ones never are. */
        assert_true(ok_yaml > 0);
}

static void test_mutation_every_offset(void **state)
{
        static const char subst[] = {'\0', '"', ':', '[', '{', '&', '\n', '\xff', ' ', '-'};
        size_t len = strlen(VALID_YAML);
        char *copy = malloc(len);

        (void)state;
        assert_non_null(copy);
        for (size_t i = 0; i < len; i++) {
                for (size_t k = 0; k < sizeof(subst); k++) {
                        memcpy(copy, VALID_YAML, len);
                        copy[i] = subst[k];
                        check_any_result(copy, len);
                }
        }
        free(copy);
        len = strlen(VALID_JSON);
        copy = malloc(len);
        assert_non_null(copy);
        for (size_t i = 0; i < len; i++) {
                for (size_t k = 0; k < sizeof(subst); k++) {
                        memcpy(copy, VALID_JSON, len);
                        copy[i] = subst[k];
                        check_any_result(copy, len);
                }
        }
        free(copy);
}

/* ---- placeholders ---------------------------------------------------------------------- */

struct kv_ctx {
        unsigned calls;
};

static cf_status lookup(void *ctx, const char *name, struct cf_slice *ret)
{
        struct kv_ctx *c = ctx;

        c->calls++;
        if (strcmp(name, "pw") == 0) {
                *ret = cf_slice_str("s3cret");
                return CF_OK;
        }
        if (strcmp(name, "bin") == 0) {
                *ret = cf_slice_make("\x00\x01\x00", 3);
                return CF_OK;
        }
        if (strcmp(name, "empty") == 0) {
                *ret = cf_slice_make(NULL, 0);
                return CF_OK;
        }
        return cf_fail(CF_E_NOT_FOUND);
}

static void expect_subst(const char *in, const char *out)
{
        struct kv_ctx ctx = {0};
        struct cf_buf b;

        cf_buf_init(&b, 1024, true);
        assert_int_equal(policy_substitute(in, lookup, &ctx, &b).code, 0);
        assert_int_equal(b.size, strlen(out));
        assert_memory_equal(b.ptr, out, b.size);
        cf_buf_done(&b);
}

static void expect_subst_fail(const char *in, int code)
{
        struct kv_ctx ctx = {0};
        struct cf_buf b;

        cf_buf_init(&b, 1024, true);
        assert_int_equal(cf_buf_append_str(&b, "prefix").code, 0);
        assert_int_equal(policy_substitute(in, lookup, &ctx, &b).code, code);
        /* The buffer is restored to what it held before the call. */
        assert_int_equal(b.size, 6);
        assert_string_equal((char *)b.ptr, "prefix");
        cf_buf_done(&b);
}

static void test_substitute(void **state)
{
        (void)state;
        expect_subst("", "");
        expect_subst("plain text", "plain text");
        expect_subst("$$coffer:pw$$", "s3cret");
        expect_subst("a=$$coffer:pw$$;b=$$coffer:pw$$", "a=s3cret;b=s3cret");
        expect_subst("$$coffer:pw$$$$coffer:pw$$", "s3crets3cret");
        expect_subst("x$$coffer:empty$$y", "xy");
        /* "$$" without "coffer:" is literal, also right before a placeholder. */
        expect_subst("$$ $$x $", "$$ $$x $");
        expect_subst("$$$coffer:pw$$", "$s3cret");
        expect_subst("$$coffer:pw$$$", "s3cret$");
        expect_subst("$$COFFER:pw$$", "$$COFFER:pw$$");
        {
                struct kv_ctx ctx = {0};
                struct cf_buf b;
                cf_buf_init(&b, 64, true);
                assert_int_equal(policy_substitute("<$$coffer:bin$$>", lookup, &ctx, &b).code, 0);
                assert_int_equal(b.size, 5);
                assert_memory_equal(b.ptr, "<\x00\x01\x00>", 5);
                assert_int_equal(ctx.calls, 1);
                cf_buf_done(&b);
        }
        expect_subst_fail("$$coffer:", CF_E_MALFORMED);
        expect_subst_fail("$$coffer:pw", CF_E_MALFORMED);
        expect_subst_fail("$$coffer:pw$", CF_E_MALFORMED);
        expect_subst_fail("$$coffer:$$", CF_E_MALFORMED);
        expect_subst_fail("$$coffer:p w$$", CF_E_MALFORMED);
        expect_subst_fail("ok $$coffer:pw$$ then $$coffer:bad/name$$", CF_E_MALFORMED);
        expect_subst_fail("$$coffer:missing$$", CF_E_NOT_FOUND);
        expect_subst_fail("$$coffer:pw$$ $$coffer:missing$$", CF_E_NOT_FOUND);
        /* 64-character names are allowed (and looked up), 65 are malformed. */
        char text[128];
        snprintf(text, sizeof(text), "$$coffer:%064d$$", 0);
        expect_subst_fail(text, CF_E_NOT_FOUND);
        snprintf(text, sizeof(text), "$$coffer:%065d$$", 0);
        expect_subst_fail(text, CF_E_MALFORMED);
        /* The output limit holds. */
        {
                struct kv_ctx ctx = {0};
                struct cf_buf b;
                cf_buf_init(&b, 8, true);
                assert_int_equal(policy_substitute("ab$$coffer:pw$$", lookup, &ctx, &b).code, 0);
                assert_int_equal(policy_substitute("$$coffer:pw$$", lookup, &ctx, &b).code,
                                 CF_E_LIMIT);
                assert_int_equal(b.size, 8);
                assert_memory_equal(b.ptr, "abs3cret", 8);
                cf_buf_done(&b);
        }
}

static void test_placeholder_scanner(void **state)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str("a$$coffer:x$$b"));
        struct cf_slice lit, name;

        (void)state;
        assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_FOUND);
        assert_true(cf_slice_eq(lit, cf_slice_str("a")));
        assert_true(cf_slice_eq(name, cf_slice_str("x")));
        assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_END);
        assert_true(cf_slice_eq(lit, cf_slice_str("b")));
        assert_true(policy_secret_name_ok(cf_slice_str("a.B_9-")));
        assert_false(policy_secret_name_ok(cf_slice_str("")));
        assert_false(policy_secret_name_ok(cf_slice_str("a$")));
}

/* ---- small API ------------------------------------------------------------------------- */

static void test_digest_and_access(void **state)
{
        char hex[65];
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(VALID_YAML);
        char upper_d[65];

        (void)state;
        /* SHA-256("abc"), FIPS 180-2 appendix B.1. */
        assert_int_equal(policy_digest(cf_slice_str("abc"), hex).code, 0);
        assert_string_equal(hex,
                            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_true(policy_key_may_read(p, K64C));
        assert_false(policy_key_may_update(p, K64C));
        /* Updaters may read. Ids are compared in lower case, as the model stores them. */
        memset(upper_d, 'd', 64);
        upper_d[64] = '\0';
        assert_true(policy_key_may_update(p, upper_d));
        assert_true(policy_key_may_read(p, upper_d));
        assert_false(policy_key_may_read(p, M64A));
        assert_false(policy_key_may_read(p, NULL));
        assert_false(policy_key_may_read(NULL, K64C));
        assert_null(policy_free(NULL));
        assert_string_equal(policy_platform_name(ATTEST_SIM), "sim");
        assert_null(policy_platform_name((enum attest_platform)0));
}

static void test_errors_null_and_reuse(void **state)
{
        struct policy *p = NULL;
        struct policy_errors *e = calloc(1, sizeof(*e));

        (void)state;
        assert_non_null(e);
        /* errs may be NULL. */
        assert_int_equal(parse("name: x\n", &p, NULL).code, CF_E_SCHEMA);
        assert_null(p);
        /* A reused error list is emptied by the next parse. */
        assert_int_equal(parse("name: x\n", &p, e).code, CF_E_SCHEMA);
        assert_true(e->n > 0);
        p = NULL;
        assert_int_equal(parse(MIN_HEAD MIN_SERVICE, &p, e).code, 0);
        assert_int_equal(e->n, 0);
        assert_false(e->truncated);
        policy_free(p);
        free(e);
}

/* Volumes: freshness strict | batched and its window (docs/policy.md, volume section). */
static void test_volume_freshness(void **state)
{
        (void)state;
        {
                CF_CLEANUP(policy_freep) struct policy *p = parse_ok(
                    MIN_HEAD MIN_SERVICE "volumes:\n  - name: a\n  - name: b\n    freshness: batched\n"
                                         "  - name: c\n    freshness: batched\n"
                                         "    batched_window_ms: 250\n"
                                         "  - name: d\n    freshness: strict\n");
                json_t *j = NULL;

                assert_int_equal(p->n_volumes, 4);
                assert_int_equal(p->volumes[0].freshness, POLICY_VOLUME_STRICT);
                assert_int_equal(p->volumes[1].freshness, POLICY_VOLUME_BATCHED);
                assert_int_equal(p->volumes[1].batched_window_ms, POLICY_VOLUME_WINDOW_DEFAULT_MS);
                assert_int_equal(p->volumes[2].batched_window_ms, 250);
                assert_int_equal(p->volumes[3].freshness, POLICY_VOLUME_STRICT);
                assert_string_equal(policy_volume_freshness_name(POLICY_VOLUME_BATCHED), "batched");
                assert_null(policy_volume_freshness_name((enum policy_volume_freshness)0));
                assert_int_equal(policy_to_json(p, &j).code, 0);
                json_t *v = json_array_get(json_object_get(j, "volumes"), 2);
                assert_string_equal(json_string_value(json_object_get(v, "freshness")), "batched");
                assert_int_equal(json_integer_value(json_object_get(v, "batched_window_ms")), 250);
                v = json_array_get(json_object_get(j, "volumes"), 0);
                assert_string_equal(json_string_value(json_object_get(v, "freshness")), "strict");
                assert_null(json_object_get(v, "batched_window_ms"));
                json_decref(j);
        }
        expect_error(MIN_HEAD MIN_SERVICE "volumes: [{name: a, freshness: lazy}]\n", CF_E_SCHEMA,
                     "line 8, column 32 ($.volumes[0].freshness)", "unknown freshness");
        expect_error(MIN_HEAD MIN_SERVICE "volumes: [{name: a, freshness: 1}]\n", CF_E_SCHEMA,
                     "line 8, column 32 ($.volumes[0].freshness)", "");
        expect_error(MIN_HEAD MIN_SERVICE
                     "volumes: [{name: a, freshness: batched, batched_window_ms: 9}]\n",
                     CF_E_SCHEMA, "line 8, column 60 ($.volumes[0].batched_window_ms)",
                     "from 10 to 1000");
        expect_error(MIN_HEAD MIN_SERVICE
                     "volumes: [{name: a, freshness: batched, batched_window_ms: 1001}]\n",
                     CF_E_SCHEMA, "line 8, column 60 ($.volumes[0].batched_window_ms)",
                     "from 10 to 1000");
        expect_error(MIN_HEAD MIN_SERVICE "volumes: [{name: a, batched_window_ms: 100}]\n",
                     CF_E_SCHEMA, "line 8, column 40 ($.volumes[0].batched_window_ms)",
                     "needs freshness: batched");
        expect_error(MIN_HEAD MIN_SERVICE "volumes: [{name: a, window: 100}]\n", CF_E_SCHEMA,
                     "line 8, column 21 ($.volumes[0].window)", "");
}


/* ---- workload certificates (services[].certificate) --------------------------------------- */

/* A JSON policy with a root CA, an intermediate, a private key, one file and a service whose
 * certificate is CERT (the members inside the braces). */
#define CERT_DOC(CERT)                                                                             \
        "{\"name\": \"shop/api\", \"secrets\": ["                                                \
        "{\"name\": \"root\", \"kind\": \"x509-ca\", \"common_name\": \"R\", \"validity_days\": "  \
        "400},"                                                                                    \
        "{\"name\": \"inter\", \"kind\": \"x509-ca\", \"issuer\": \"root\", \"common_name\": "     \
        "\"I\", \"validity_days\": 100},"                                                          \
        "{\"name\": \"k\", \"kind\": \"private-key\"}],"                                          \
        " \"services\": [{\"name\": \"web\", \"command\": [\"/bin/true\"],"                       \
        " \"files\": [{\"path\": \"/etc/web/app.ini\", \"content\": \"x\"}],"                      \
        " \"attestation\": [{\"platform\": \"sim\", \"measurement\": [\"" M64A "\"]}],"            \
        " \"certificate\": {" CERT "}}]}"

#define CERT_MIN "\"issuer\": \"inter\", \"key_path\": \"/run/tls/key.pem\", " \
                 "\"cert_path\": \"/run/tls/cert.pem\""

static void test_workload_certificate(void **state)
{
        (void)state;
        {
                /* defaults */
                CF_CLEANUP(policy_freep) struct policy *p = parse_ok(CERT_DOC(CERT_MIN));
                const struct policy_certificate *c = p->services[0].certificate;
                json_t *j = NULL;

                assert_non_null(c);
                assert_string_equal(c->issuer, "inter");
                assert_string_equal(c->common_name, "web");
                assert_int_equal(c->n_dns, 0);
                assert_int_equal(c->n_ip, 0);
                assert_int_equal(c->usage, POLICY_USAGE_SERVER | POLICY_USAGE_CLIENT);
                assert_int_equal(c->validity_days, POLICY_WORKLOAD_VALIDITY_DEFAULT);
                assert_int_equal(c->algorithm, POLICY_ALG_P256);
                assert_string_equal(c->key_path, "/run/tls/key.pem");
                assert_string_equal(c->cert_path, "/run/tls/cert.pem");
                assert_null(c->ca_path);
                assert_true(c->chain);
                /* the JSON view writes the defaults out and parses back to the same model */
                assert_int_equal(policy_to_json(p, &j).code, 0);
                json_t *cj = json_object_get(json_array_get(json_object_get(j, "services"), 0),
                                             "certificate");
                assert_string_equal(json_string_value(json_object_get(cj, "algorithm")), "p256");
                assert_int_equal(json_integer_value(json_object_get(cj, "validity_days")), 30);
                assert_true(json_is_true(json_object_get(cj, "chain")));
                assert_int_equal(json_array_size(json_object_get(cj, "usage")), 2);
                char *text = json_dumps(j, 0);
                assert_non_null(text);
                CF_CLEANUP(policy_freep) struct policy *q = parse_ok(text);
                assert_string_equal(q->services[0].certificate->common_name, "web");
                assert_int_equal(q->services[0].certificate->usage,
                                 POLICY_USAGE_SERVER | POLICY_USAGE_CLIENT);
                free(text);
                json_decref(j);
                /* a service without certificate has none */
                CF_CLEANUP(policy_freep) struct policy *m = parse_ok(MIN_HEAD MIN_SERVICE);
                assert_null(m->services[0].certificate);
        }
        {
                /* every key, in YAML */
                CF_CLEANUP(policy_freep) struct policy *p = parse_ok(
                    MIN_HEAD "secrets:\n  - {name: ca, kind: x509-ca, common_name: CA}\n"
                    MIN_SERVICE "    certificate:\n"
                    "      issuer: ca\n      common_name: api.internal\n"
                    "      dns: [api.internal, \"*.api.internal\"]\n      ip: [10.0.0.1, \"::1\"]\n"
                    "      usage: [client]\n      validity_days: 3650\n      algorithm: ed25519\n"
                    "      key_path: /k\n      cert_path: /c\n      ca_path: /ca\n"
                    "      chain: false\n");
                const struct policy_certificate *c = p->services[0].certificate;

                assert_string_equal(c->common_name, "api.internal");
                assert_int_equal(c->n_dns, 2);
                assert_string_equal(c->dns[1], "*.api.internal");
                assert_int_equal(c->n_ip, 2);
                assert_int_equal(c->usage, POLICY_USAGE_CLIENT);
                assert_int_equal(c->validity_days, 3650);
                assert_int_equal(c->algorithm, POLICY_ALG_ED25519);
                assert_string_equal(c->ca_path, "/ca");
                assert_false(c->chain);
        }
        /* refusals, each at its key */
        expect_error(CERT_DOC("\"key_path\": \"/k\", \"cert_path\": \"/c\""), CF_E_SCHEMA,
                     "$.services[0].certificate", "issuer");
        expect_error(CERT_DOC("\"issuer\": \"nope\", \"key_path\": \"/k\", \"cert_path\": \"/c\""),
                     CF_E_SCHEMA, "$.services[0].certificate.issuer",
                     "'issuer' refers to undeclared secret 'nope'");
        expect_error(CERT_DOC("\"issuer\": \"k\", \"key_path\": \"/k\", \"cert_path\": \"/c\""),
                     CF_E_SCHEMA, "$.services[0].certificate.issuer",
                     "must name an x509-ca secret of this policy; 'k' is of kind private-key");
        expect_error(CERT_DOC(CERT_MIN ", \"validity_days\": 101"), CF_E_SCHEMA,
                     "$.services[0].certificate.validity_days", "impossible validity: 101 days");
        expect_error(CERT_DOC(CERT_MIN ", \"validity_days\": 0"), CF_E_SCHEMA,
                     "$.services[0].certificate.validity_days", "from 1 to 36500");
        expect_error(CERT_DOC(CERT_MIN ", \"dns\": [\"a..b\"]"), CF_E_SCHEMA,
                     "$.services[0].certificate.dns[0]", "invalid DNS name 'a..b'");
        expect_error(CERT_DOC(CERT_MIN ", \"dns\": [\"a.b\", \"a.b\"]"), CF_E_SCHEMA,
                     "$.services[0].certificate.dns[1]", "duplicate entry 'a.b'");
        expect_error(CERT_DOC(CERT_MIN ", \"ip\": [\"10.0.0.0/8\"]"), CF_E_SCHEMA,
                     "$.services[0].certificate.ip[0]", "invalid IP address '10.0.0.0/8'");
        expect_error(CERT_DOC(CERT_MIN ", \"usage\": [\"signing\"]"), CF_E_SCHEMA,
                     "$.services[0].certificate.usage[0]", "unknown usage 'signing'");
        expect_error(CERT_DOC(CERT_MIN ", \"algorithm\": \"rsa1024\""), CF_E_SCHEMA,
                     "$.services[0].certificate.algorithm", "unknown or refused algorithm");
        expect_error(CERT_DOC(CERT_MIN ", \"common_name\": \"\""), CF_E_SCHEMA,
                     "$.services[0].certificate.common_name", "1 to 64 printable");
        expect_error(CERT_DOC(CERT_MIN ", \"chain\": \"yes\""), CF_E_SCHEMA,
                     "$.services[0].certificate.chain", "chain must be true or false");
        expect_error(CERT_DOC(CERT_MIN ", \"mode\": \"0400\""), CF_E_SCHEMA,
                     "$.services[0].certificate.mode", "");
        expect_error(CERT_DOC("\"issuer\": \"inter\", \"cert_path\": \"/c\""), CF_E_SCHEMA,
                     "$.services[0].certificate", "key_path");
        expect_error(CERT_DOC("\"issuer\": \"inter\", \"key_path\": \"/k\""), CF_E_SCHEMA,
                     "$.services[0].certificate", "cert_path");
        expect_error(CERT_DOC("\"issuer\": \"inter\", \"key_path\": \"k\", \"cert_path\": \"/c\""),
                     CF_E_SCHEMA, "$.services[0].certificate.key_path", "invalid path 'k'");
        expect_error(
            CERT_DOC("\"issuer\": \"inter\", \"key_path\": \"/a/../k\", \"cert_path\": \"/c\""),
            CF_E_SCHEMA, "$.services[0].certificate.key_path", "invalid path");
        expect_error(CERT_DOC("\"issuer\": \"inter\", \"key_path\": \"/etc/web/app.ini\", "
                              "\"cert_path\": \"/c\""),
                     CF_E_SCHEMA, "$.services[0].certificate.key_path",
                     "is also the path of files[0]");
        expect_error(CERT_DOC("\"issuer\": \"inter\", \"key_path\": \"/k\", \"cert_path\": \"/k\""),
                     CF_E_SCHEMA, "$.services[0].certificate.cert_path", "used twice");
        expect_error(CERT_DOC(CERT_MIN ", \"ca_path\": \"/run/tls/cert.pem\""), CF_E_SCHEMA,
                     "$.services[0].certificate.ca_path", "used twice");
        expect_error(CERT_DOC("\"issuer\": \"inter\", \"key_path\": 5, \"cert_path\": \"/c\""),
                     CF_E_SCHEMA, "$.services[0].certificate.key_path", "");
        expect_error(
            "{\"name\": \"shop/api\", \"services\": [{\"name\": \"web\", \"command\": [\"x\"],"
            " \"attestation\": [{\"platform\": \"sim\", \"measurement\": [\"" M64A "\"]}],"
            " \"certificate\": [1]}]}",
            CF_E_SCHEMA, "$.services[0].certificate", "");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_valid_yaml_model),
            cmocka_unit_test(test_yaml_and_json_same_model),
            cmocka_unit_test(test_to_json_round_trip_and_redaction),
            cmocka_unit_test(test_minimal_and_scalar_typing),
            cmocka_unit_test(test_unknown_keys),
            cmocka_unit_test(test_wrong_types_and_missing),
            cmocka_unit_test(test_bad_names),
            cmocka_unit_test(test_bad_hex),
            cmocka_unit_test(test_files),
            cmocka_unit_test(test_duplicates),
            cmocka_unit_test(test_placeholders_in_documents),
            cmocka_unit_test(test_secrets),
            cmocka_unit_test(test_platforms_and_tolerate),
            cmocka_unit_test(test_hw_rules_model),
            cmocka_unit_test(test_hw_rules_round_trip),
            cmocka_unit_test(test_hw_rule_errors),
            cmocka_unit_test(test_yaml_features_refused),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_many_errors_all_reported),
            cmocka_unit_test(test_error_messages_escape_user_text),
            cmocka_unit_test(test_truncation_every_offset),
            cmocka_unit_test(test_mutation_every_offset),
            cmocka_unit_test(test_substitute),
            cmocka_unit_test(test_placeholder_scanner),
            cmocka_unit_test(test_digest_and_access),
            cmocka_unit_test(test_errors_null_and_reuse),
            cmocka_unit_test(test_volume_freshness),
            cmocka_unit_test(test_workload_certificate),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
