/* coffer audit fetch|verify: download cofferd's audit chain and check copies offline
 * (docs/formats/audit.md). verify needs no network: it checks the head signature, every
 * entry's canonical form and links, and with --against whether two copies fork. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/io.h"
#include "cli/cli.h"
#include "client/audit_verify.h"

#define AUDIT_FETCH_PAGE 1000

static json_t *get_json(struct cf_client *c, const char *path)
{
        struct cf_http_response resp;
        json_t *j = NULL;

        cf_http_response_init(&resp);
        if (cli_request(c, "GET", path, NULL, cf_slice_make(NULL, 0), &resp)) {
                j = cf_http_response_json(&resp);
                if (resp.status != 200 || j == NULL) {
                        char text[512];
                        cf_http_error_text(&resp, text, sizeof(text));
                        cli_error("%s: %s", path, text);
                        json_decref(j);
                        j = NULL;
                }
        }
        cf_http_response_done(&resp);
        return j;
}

/* Entries 1..want, page by page; the reply may run past want (appends since the head). */
static json_t *fetch_entries(struct cf_client *c, uint64_t want)
{
        json_t *all = json_array();
        uint64_t from = 1;
        char path[96];

        while (all != NULL && from <= want) {
                json_t *page, *list, *e;
                size_t i;

                snprintf(path, sizeof(path), "/v1/audit?from=%llu&limit=%d",
                         (unsigned long long)from, AUDIT_FETCH_PAGE);
                page = get_json(c, path);
                list = json_object_get(page, "entries");
                if (json_array_size(list) == 0) {
                        if (page != NULL) {
                                cli_error("cofferd returned no entries from %llu (its head "
                                          "is %llu)",
                                          (unsigned long long)from, (unsigned long long)want);
                        }
                        json_decref(page);
                        json_decref(all);
                        return NULL;
                }
                json_array_foreach(list, i, e)
                {
                        if (from > want) {
                                break;
                        }
                        json_array_append(all, e);
                        from++;
                }
                json_decref(page);
        }
        return all;
}

static int write_doc(struct cli *cli, json_t *doc)
{
        char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
        cf_status s;

        if (text == NULL) {
                return cli_error("out of memory");
        }
        if (cli->out == NULL) {
                fputs(text, stdout);
                fputc('\n', stdout);
                free(text);
                return 0;
        }
        s = cf_write_file_atomic(cli->out, text, strlen(text), 0644);
        free(text);
        if (!cf_ok(s)) {
                return cli_error("cannot write '%s': %s", cli->out, cf_strerror(s));
        }
        return 0;
}

static int audit_fetch(struct cli *cli)
{
        struct audit_verdict v;
        struct cf_client *c;
        json_t *h, *head, *entries, *doc;
        const char *alg, *sig, *key;
        int status;

        if (cli->argc != 2) {
                return cli_usage("usage: coffer audit fetch [--out FILE]");
        }
        c = cli_connect(cli, true, true);
        if (c == NULL) {
                return CLI_EXIT_FAIL;
        }
        /* The head first: every entry it covers exists already. */
        h = get_json(c, "/v1/audit/head");
        if (h == NULL ||
            json_unpack(h, "{s:o, s:s, s:s, s:s}", "head", &head, "signature", &sig, "audit_key",
                        &key, "algorithm", &alg) != 0 ||
            strcmp(alg, "ed25519") != 0 || !json_is_integer(json_object_get(head, "seq")) ||
            json_integer_value(json_object_get(head, "seq")) < 0) {
                cf_client_free(c);
                json_decref(h);
                return cli_error("cofferd sent no usable audit head");
        }
        entries = fetch_entries(c, (uint64_t)json_integer_value(json_object_get(head, "seq")));
        cf_client_free(c);
        if (entries == NULL) {
                json_decref(h);
                return CLI_EXIT_FAIL;
        }
        doc = json_pack("{s:s, s:s, s:O, s:s, s:o}", "format", AUDIT_FORMAT, "audit_key", key,
                        "head", head, "signature", sig, "entries", entries);
        json_decref(h);
        if (doc == NULL) {
                return cli_error("out of memory");
        }
        /* Written even when it does not verify: a bad chain is evidence worth keeping. */
        status = write_doc(cli, doc);
        if (status == 0 && !cf_ok(audit_verify_chain(doc, NULL, &v))) {
                status = cli_error("the downloaded chain does not verify: %s", v.message);
        } else if (status == 0) {
                fprintf(stderr,
                        "coffer: fetched %llu entries; head %s (seq %llu) signed at %s "
                        "by audit key %s\n",
                        (unsigned long long)v.n_entries, v.head_hash,
                        (unsigned long long)v.head_seq, v.head_time, v.audit_key);
        }
        json_decref(doc);
        return status;
}

static json_t *load_doc(const char *path)
{
        struct cf_buf b;
        json_error_t err;
        json_t *j = NULL;
        cf_status s;

        cf_buf_init(&b, AUDIT_DOC_MAX, false);
        s = cf_read_file(path, AUDIT_DOC_MAX, &b);
        if (!cf_ok(s)) {
                cli_error("cannot read '%s': %s", path, cf_strerror(s));
        } else {
                j = json_loadb((const char *)b.ptr, b.size, JSON_REJECT_DUPLICATES, &err);
                if (j == NULL) {
                        cli_error("'%s' is not JSON (line %d: %s)", path, err.line, err.text);
                }
        }
        cf_buf_done(&b);
        return j;
}

static json_t *verdict_json(const char *file, cf_status s, const struct audit_verdict *v)
{
        return json_pack("{s:s, s:b, s:s, s:o, s:s, s:I, s:{s:I, s:s, s:s}, s:s}", "file", file,
                         "valid", cf_ok(s), "problem", audit_problem_name(v->problem), "seq",
                         v->seq ? json_integer((json_int_t)v->seq) : json_null(), "message",
                         v->message, "entries", (json_int_t)v->n_entries, "head", "seq",
                         (json_int_t)v->head_seq, "hash", v->head_hash, "time", v->head_time,
                         "audit_key", v->audit_key);
}

static void print_verdict(const char *file, cf_status s, const struct audit_verdict *v)
{
        if (cf_ok(s)) {
                printf("%s: %s\n  audit key %s\n", file, v->message, v->audit_key);
        } else {
                printf("%s: INVALID (%s): %s\n", file, audit_problem_name(v->problem), v->message);
        }
}

/* Verifies one file; *ret_doc keeps it for a comparison (NULL when unreadable). */
static cf_status verify_file(const char *path, const uint8_t *pinned, json_t **ret_doc,
                             struct audit_verdict *v)
{
        json_t *doc = load_doc(path);
        cf_status s;

        memset(v, 0, sizeof(*v));
        if (doc == NULL) {
                v->problem = AUDIT_MALFORMED;
                snprintf(v->message, sizeof(v->message), "the file cannot be read as JSON");
                *ret_doc = NULL;
                return cf_fail(CF_E_SYNTAX);
        }
        s = audit_verify_chain(doc, pinned, v);
        *ret_doc = doc;
        return s;
}

static int audit_verify(struct cli *cli)
{
        uint8_t key[AUDIT_KEY_SIZE];
        const uint8_t *pinned = NULL;
        struct audit_verdict v, va, vc;
        json_t *doc = NULL, *other = NULL, *out = NULL;
        cf_status s, sa = CF_OK, sc = CF_OK;
        const char *file;

        if (cli->argc != 3) {
                return cli_usage("usage: coffer audit verify FILE [--against FILE2] "
                                 "[--audit-key HEX]");
        }
        file = cli->argv[2];
        if (cli->audit_key != NULL) {
                if (strlen(cli->audit_key) != 2 * AUDIT_KEY_SIZE ||
                    !cf_ok(cf_hex_decode(cf_slice_str(cli->audit_key), key, sizeof(key)))) {
                        return cli_usage("--audit-key wants 64 hex digits (GET /v1/audit/head)");
                }
                pinned = key;
        } else {
                fprintf(stderr, "coffer: warning: no --audit-key: the chain is checked against "
                                "the key in the file itself, which proves only that it is "
                                "consistent; pin the key that cofferd's attestation binds\n");
        }
        s = verify_file(file, pinned, &doc, &v);
        if (cf_ok(s) && cli->against != NULL) {
                sa = verify_file(cli->against, pinned, &other, &va);
                if (cf_ok(sa)) {
                        sc = audit_compare_chains(doc, other, &vc);
                }
        }
        if (cli->json) {
                out = verdict_json(file, s, &v);
                if (cf_ok(s) && cli->against != NULL) {
                        json_t *a = verdict_json(cli->against, sa, &va);
                        if (cf_ok(sa)) {
                                json_object_set_new(
                                    a, "comparison",
                                    json_pack("{s:b, s:s, s:o, s:s}", "consistent", cf_ok(sc),
                                              "problem", audit_problem_name(vc.problem), "seq",
                                              vc.seq ? json_integer((json_int_t)vc.seq)
                                                     : json_null(),
                                              "message", vc.message));
                        }
                        json_object_set_new(out, "against", a);
                }
                json_object_set_new(out, "audit_key_pinned", json_boolean(pinned != NULL));
                cli_print_json(out);
        } else {
                print_verdict(file, s, &v);
                if (cf_ok(s) && cli->against != NULL) {
                        print_verdict(cli->against, sa, &va);
                        if (cf_ok(sa)) {
                                printf("%s against %s: %s%s\n", file, cli->against,
                                       cf_ok(sc) ? "" : "INCONSISTENT: ", vc.message);
                        }
                }
        }
        json_decref(doc);
        json_decref(other);
        return cf_ok(s) && cf_ok(sa) && cf_ok(sc) ? 0 : CLI_EXIT_FAIL;
}

int cmd_audit(struct cli *cli)
{
        const char *sub = cli->argc >= 2 ? cli->argv[1] : "";

        if (strcmp(sub, "fetch") == 0) {
                return audit_fetch(cli);
        }
        if (strcmp(sub, "verify") == 0) {
                return audit_verify(cli);
        }
        return cli_usage("usage: coffer audit fetch [--out FILE] | coffer audit verify FILE "
                         "[--against FILE2] [--audit-key HEX]");
}
