/* coffer volume ls|cat|verify: offline tools for a shielded volume, given its key (for tests
 * and incident work; cofferd never releases volume keys to people). */
#include <stdio.h>
#include <string.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "shield/shield.h"

/* The key file holds the 32-byte key as raw bytes, hex or base64 text. */
static int load_key(const char *path, uint8_t key[32])
{
        struct cf_buf b, dec;
        size_t n;
        int status = 0;

        cf_buf_init(&b, 256, true);
        cf_buf_init(&dec, 64, true);
        if (path == NULL || !cf_ok(cf_read_file(path, 256, &b))) {
                status = cli_usage("give the volume key with --key-file FILE (32 bytes: raw, hex "
                                   "or base64)");
        } else {
                /* Exactly 32 bytes is a raw key, even when its last byte is a newline; text
                 * forms may end with line breaks. */
                bool raw = b.size == 32, ok = false;
                n = b.size;
                while (!raw && n > 0 && (b.ptr[n - 1] == '\n' || b.ptr[n - 1] == '\r')) {
                        n--;
                }
                if (raw) {
                        memcpy(key, b.ptr, 32);
                        ok = true;
                } else if (n == 64) {
                        ok = cf_ok(cf_hex_decode(cf_slice_make(b.ptr, n), key, 32));
                } else if (cf_ok(cf_base64_decode_buf(cf_slice_make(b.ptr, n), &dec)) &&
                           dec.size == 32) {
                        memcpy(key, dec.ptr, 32);
                        ok = true;
                }
                if (!ok) {
                        status = cli_error("'%s' does not hold a 32-byte key", path);
                }
        }
        cf_buf_done(&b);
        cf_buf_done(&dec);
        return status;
}

static int open_volume(const char *dir, const char *key_file, struct shield_posix **st,
                       struct shield_volume **v)
{
        uint8_t key[32];
        CF_WIPE_ON_EXIT(key);
        cf_status s;
        int status = load_key(key_file, key);

        if (status != 0) {
                return status;
        }
        s = shield_posix_open_rdonly(dir, st);
        if (cf_ok(s)) {
                s = shield_volume_open(&shield_posix_ops, *st, key, NULL, 0,
                                       SHIELD_OPEN_ACCEPT_ANY_TAG | SHIELD_OPEN_RDONLY, v);
                if (!cf_ok(s)) {
                        shield_posix_close(*st);
                }
        }
        if (!cf_ok(s)) {
                return cli_error("cannot open volume '%s': %s%s", dir, cf_strerror(s),
                                 s.code == CF_E_MAC_INVALID || s.code == CF_E_TAMPERED
                                         ? " (wrong key, or the manifest was modified)"
                                         : "");
        }
        return 0;
}

struct walk {
        json_t *out;
        bool json;
        int problems;
};

static cf_status list_one(void *ctx, const char *name, const struct shield_stat *st)
{
        struct walk *w = ctx;

        if (w->json) {
                json_array_append_new(w->out, json_pack("{s:s, s:s, s:I}", "path", name, "type",
                                                        st->type == SHIELD_TYPE_DIR ? "dir" : "file",
                                                        "size", (json_int_t)st->size));
        } else {
                printf("%s %12llu  %s\n", st->type == SHIELD_TYPE_DIR ? "d" : "-",
                       (unsigned long long)st->size, name);
        }
        return CF_OK;
}

static void on_problem(void *ctx, const struct shield_problem *p)
{
        static const char *const where[] = { "file", "tree node", "chunk" };
        struct walk *w = ctx;

        if (w->json) {
                json_array_append_new(w->out,
                                      json_pack("{s:s, s:s, s:i, s:I, s:s}", "path",
                                                p->path ? p->path : "", "where", where[p->where],
                                                "level", (int)p->level, "index",
                                                (json_int_t)p->index, "error",
                                                cf_strerror(p->status)));
        } else {
                printf("CORRUPT %s: %s %llu%s: %s\n", p->path ? p->path : "(volume)",
                       where[p->where], (unsigned long long)p->index,
                       p->where == SHIELD_AT_NODE ? " (tree)" : "", cf_strerror(p->status));
        }
        w->problems++;
}

int cmd_volume(struct cli *cli)
{
        const char *sub = cli->argc >= 2 ? cli->argv[1] : "";
        struct shield_posix *st = NULL;
        struct shield_volume *v = NULL;
        struct walk w = { 0 };
        cf_status s = CF_OK;
        int status;

        if (!((strcmp(sub, "ls") == 0 && (cli->argc == 3 || cli->argc == 4)) ||
              (strcmp(sub, "cat") == 0 && cli->argc == 4) ||
              (strcmp(sub, "verify") == 0 && cli->argc == 3))) {
                return cli_usage("usage: coffer volume ls DIR [PATH] | cat DIR PATH | verify DIR "
                                 "--key-file FILE");
        }
        status = open_volume(cli->argv[2], cli->key_file, &st, &v);
        if (status != 0) {
                return status;
        }
        w.json = cli->json;
        w.out = json_array();
        if (strcmp(sub, "ls") == 0) {
                s = shield_volume_list(v, cli->argc == 4 ? cli->argv[3] : "", list_one, &w);
        } else if (strcmp(sub, "verify") == 0) {
                s = shield_volume_verify(v, on_problem, &w);
                if (cf_ok(s) && w.problems > 0) {
                        status = CLI_EXIT_FAIL;
                }
                if (!cli->json) {
                        printf("%s: %d problem%s\n", w.problems ? "CORRUPT" : "ok", w.problems,
                               w.problems == 1 ? "" : "s");
                }
        } else {
                struct shield_file *f = NULL;
                uint8_t buf[65536];
                uint64_t off = 0;
                size_t n = 1;
                s = shield_file_open(v, cli->argv[3], 0, &f);
                while (cf_ok(s) && n > 0) {
                        s = shield_file_pread(f, buf, sizeof(buf), off, &n);
                        if (cf_ok(s) && n > 0) {
                                fwrite(buf, 1, n, stdout);
                                off += n;
                        }
                }
                cf_wipe(buf, sizeof(buf));
                shield_file_close(f);
        }
        if (cli->json && strcmp(sub, "cat") != 0) {
                cli_print_json(json_pack("{s:o}", strcmp(sub, "ls") == 0 ? "entries" : "problems",
                                         w.out));
        } else {
                json_decref(w.out);
        }
        shield_volume_close(v);
        shield_posix_close(st);
        if (!cf_ok(s)) {
                return cli_error("volume %s: %s", sub, cf_strerror(s));
        }
        return status;
}
