/* libFuzzer target: a file's tree nodes and chunks as read back from hostile storage.
 * Mode byte 0: the input is a tree node, decoded as a leaf and as an inner node.
 * Mode byte 1: a small volume (two files, three chunks each, committed) is built in memory
 * once; each run clones it and applies the input as edits (u8 target, u32le offset, u8
 * xor) to the backing files, then opens the volume, reads every file and verifies it. A
 * read that succeeds must return exactly the original bytes: unauthenticated data is
 * never served.
 * Target functions: sh_node_decode, shield_volume_open, shield_file_pread,
 * shield_volume_verify. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "shield/shield_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_SIZE 10000u

static struct shield_mem *g_base;
static uint8_t g_key[SHIELD_KEY_SIZE];
static uint8_t g_tag[SHIELD_TAG_SIZE];
static uint8_t g_content[2][FILE_SIZE];

static void make_base(void)
{
        struct shield_volume *v;

        if (!cf_ok(cf_mem_init()) || !cf_ok(cf_crypto_init()) || !cf_ok(shield_mem_new(&g_base))) {
                abort();
        }
        memset(g_key, 0x42, sizeof(g_key));
        if (!cf_ok(shield_volume_open(&shield_mem_ops, g_base, g_key, NULL, 0, SHIELD_OPEN_CREATE,
                                      &v))) {
                abort();
        }
        for (unsigned i = 0; i < 2; i++) {
                struct shield_file *f;
                const char *path = i ? "b" : "a";

                for (unsigned k = 0; k < FILE_SIZE; k++) {
                        g_content[i][k] = (uint8_t)(k * 7 + i);
                }
                if (!cf_ok(shield_file_open(v, path, SHIELD_O_CREAT, &f)) ||
                    !cf_ok(shield_file_pwrite(f, g_content[i], FILE_SIZE, 0))) {
                        abort();
                }
                shield_file_close(f);
        }
        if (!cf_ok(shield_volume_commit(v, g_tag))) {
                abort();
        }
        shield_volume_close(v);
}

static void read_back(struct shield_volume *v, unsigned i)
{
        static uint8_t buf[FILE_SIZE + 16];
        struct shield_file *f;
        size_t n = 0;

        if (!cf_ok(shield_file_open(v, i ? "b" : "a", 0, &f))) {
                return;
        }
        if (cf_ok(shield_file_pread(f, buf, sizeof(buf), 0, &n)) &&
            (n != FILE_SIZE || memcmp(buf, g_content[i], FILE_SIZE) != 0)) {
                abort(); /* tampered data was served */
        }
        shield_file_close(f);
}

static void run_edits(struct cf_cursor *c)
{
        struct shield_mem *m;
        struct shield_volume *v;
        const uint8_t *tags[1] = {g_tag};
        uint8_t target, x;
        uint32_t off;

        if (!cf_ok(shield_mem_clone(g_base, &m))) {
                abort();
        }
        while (cf_ok(cf_cursor_u8(c, &target)) && cf_ok(cf_cursor_u32le(c, &off)) &&
               cf_ok(cf_cursor_u8(c, &x))) {
                size_t n = shield_mem_count(m), len = 0;
                uint8_t *p;

                if (n == 0 ||
                    !cf_ok(shield_mem_peek(m, shield_mem_name(m, target % n), &p, &len)) ||
                    len == 0) {
                        continue;
                }
                p[off % len] ^= x;
        }
        if (cf_ok(shield_volume_open(&shield_mem_ops, m, g_key, tags, 1, SHIELD_OPEN_RDONLY, &v))) {
                read_back(v, 0);
                read_back(v, 1);
                cf_ignore(shield_volume_verify(v, NULL, NULL)); /* must not crash */
                shield_volume_close(v);
        }
        shield_mem_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_make(data, size));
        struct sh_entry e[SH_FANOUT];
        struct cf_slice rest;
        uint8_t mode;

        if (!cf_ok(cf_cursor_u8(&c, &mode))) {
                return 0;
        }
        if (mode % 2 == 0) {
                if (cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &rest))) {
                        cf_ignore(sh_node_decode(rest, true, e));
                        cf_ignore(sh_node_decode(rest, false, e));
                }
                return 0;
        }
        if (g_base == NULL) {
                make_base();
        }
        run_edits(&c);
        return 0;
}
