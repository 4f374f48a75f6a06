/* Test tool: writes files into a shielded volume with the shield library, as a workload
 * would, so the offline `coffer volume` commands have something real to read.
 *
 *   volume-tool DIR KEYFILE PATH...   (each file's content is "content of PATH\n" x 1000)
 *
 * The key file holds 32 raw bytes. Prints the committed tag in hex. */
#include <stdio.h>
#include <string.h>

#include "base/codec.h"
#include "base/io.h"
#include "shield/shield.h"

int main(int argc, char **argv)
{
        struct shield_posix *st = NULL;
        struct shield_volume *v = NULL;
        struct cf_buf key;
        uint8_t tag[32];
        char hex[65];

        if (argc < 4) {
                fprintf(stderr, "usage: volume-tool DIR KEYFILE PATH...\n");
                return 2;
        }
        cf_buf_init(&key, 64, true);
        if (!cf_ok(cf_read_file(argv[2], 64, &key)) || key.size != 32 ||
            !cf_ok(shield_posix_open(argv[1], true, &st)) ||
            !cf_ok(shield_volume_open(&shield_posix_ops, st, key.ptr, NULL, 0,
                                      SHIELD_OPEN_CREATE | SHIELD_OPEN_ACCEPT_ANY_TAG, &v))) {
                fprintf(stderr, "volume-tool: cannot open the volume\n");
                return 1;
        }
        for (int i = 3; i < argc; i++) {
                struct shield_file *f = NULL;
                char line[512];
                int n = snprintf(line, sizeof(line), "content of %s\n", argv[i]);
                if (!cf_ok(shield_file_open(v, argv[i], SHIELD_O_CREAT | SHIELD_O_TRUNC, &f))) {
                        fprintf(stderr, "volume-tool: cannot create %s\n", argv[i]);
                        return 1;
                }
                for (int k = 0; k < 1000; k++) {
                        if (!cf_ok(shield_file_pwrite(f, line, (size_t)n, (uint64_t)k * (uint64_t)n))) {
                                return 1;
                        }
                }
                shield_file_close(f);
        }
        if (!cf_ok(shield_volume_commit(v, tag))) {
                return 1;
        }
        cf_hex_encode(tag, sizeof(tag), hex, sizeof(hex));
        printf("%s\n", hex);
        shield_volume_close(v);
        shield_posix_close(st);
        cf_buf_done(&key);
        return 0;
}
