/* coffer id new|show, and coffer measure. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "crypto/tls.h"

#define ID_CERT_DAYS     825
#define MEASURE_FILE_MAX (1u << 30)

static int id_new(struct cli *cli)
{
        char key_path[1100], crt_path[1100], kid[CF_KEY_ID_HEX];
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        struct cf_buf key_pem, crt_pem;
        struct stat st;
        cf_status s;

        snprintf(key_path, sizeof(key_path), "%s/identity.key", cli->identity);
        snprintf(crt_path, sizeof(crt_path), "%s/identity.crt", cli->identity);
        if (stat(key_path, &st) == 0 && !cli->force) {
                return cli_error("an identity exists in '%s' (use --force to replace it)",
                                 cli->identity);
        }
        if (!cf_ok(cf_mkdir_p(cli->identity, 0700))) {
                return cli_error("cannot create '%s'", cli->identity);
        }
        cf_buf_init(&key_pem, 1 << 16, true);
        cf_buf_init(&crt_pem, 1 << 16, false);
        s = cf_pkey_generate(CF_KEY_P256, &key);
        if (cf_ok(s)) {
                s = cf_pkey_private_pem(key, &key_pem);
        }
        if (cf_ok(s)) {
                s = cf_x509_self_signed(key, "coffer user", ID_CERT_DAYS, &crt_pem);
        }
        if (cf_ok(s)) {
                s = cf_write_file_atomic(key_path, key_pem.ptr, key_pem.size, 0600);
        }
        if (cf_ok(s)) {
                s = cf_write_file_atomic(crt_path, crt_pem.ptr, crt_pem.size, 0644);
        }
        if (cf_ok(s)) {
                s = cf_pkey_key_id(key, kid);
        }
        cf_buf_done(&key_pem);
        cf_buf_done(&crt_pem);
        if (!cf_ok(s)) {
                return cli_error("cannot create an identity in '%s': %s", cli->identity,
                                 cf_strerror(s));
        }
        if (cli->json) {
                cli_print_json(json_pack("{s:s, s:s, s:s}", "key_id", kid, "certificate",
                                         crt_path, "key", key_path));
        } else {
                printf("%s\n", kid);
                fprintf(stderr, "coffer: identity created in %s (key id above; give it to "
                        "policy owners for access lists)\n", cli->identity);
        }
        return 0;
}

static int id_show(struct cli *cli)
{
        struct cf_buf cert;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        char kid[CF_KEY_ID_HEX];

        cf_buf_init(&cert, 1 << 16, false);
        if (!cf_ok(cli_identity_load(cli, &cert, &key)) ||
            !cf_ok(cf_x509_pem_key_id(cf_buf_slice(&cert), kid))) {
                cf_buf_done(&cert);
                return cli_error("no identity in '%s' (create one with 'coffer id new')",
                                 cli->identity);
        }
        cf_buf_done(&cert);
        if (cli->json) {
                cli_print_json(json_pack("{s:s, s:s}", "key_id", kid, "identity", cli->identity));
        } else {
                printf("%s\n", kid);
        }
        return 0;
}

int cmd_id(struct cli *cli)
{
        if (cli->argc == 2 && strcmp(cli->argv[1], "new") == 0) {
                return id_new(cli);
        }
        if (cli->argc == 2 && strcmp(cli->argv[1], "show") == 0) {
                return id_show(cli);
        }
        return cli_usage("usage: coffer id new [--force] | coffer id show");
}

/* The sim measurement: SHA-256 over the bytes of the file (symbolic links followed), the
 * same value coffer-run computes over the file it executes. */
int cmd_measure(struct cli *cli)
{
        json_t *out = json_array();
        int status = 0;

        if (cli->argc < 2) {
                json_decref(out);
                return cli_usage("usage: coffer measure FILE...");
        }
        for (int i = 1; i < cli->argc; i++) {
                struct cf_buf b;
                uint8_t h[32];
                char hex[65];
                struct cf_slice part;
                cf_status s;

                cf_buf_init(&b, MEASURE_FILE_MAX, false);
                s = cf_read_file(cli->argv[i], MEASURE_FILE_MAX, &b);
                if (cf_ok(s)) {
                        part = cf_buf_slice(&b);
                        s = cf_sha256(&part, 1, h);
                }
                cf_buf_done(&b);
                if (!cf_ok(s)) {
                        status = cli_error("cannot measure '%s': %s", cli->argv[i],
                                           cf_strerror(s));
                        continue;
                }
                cf_hex_encode(h, sizeof(h), hex, sizeof(hex));
                if (cli->json) {
                        json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "file",
                                                             cli->argv[i], "platform", "sim",
                                                             "measurement", hex));
                } else {
                        printf("%s  %s\n", hex, cli->argv[i]);
                }
        }
        if (cli->json) {
                cli_print_json(out);
        } else {
                json_decref(out);
        }
        return status;
}

/* The public key of this machine's sim platform (created on first use): give it to a
 * cofferd on another machine with --trust-sim-key to accept this machine's sim evidence. */
int cmd_sim_key(struct cli *cli)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *k = NULL;
        uint8_t raw[32];
        char hex[65], dir[1024];

        if (cli->argc != 1) {
                return cli_usage("usage: coffer sim-key");
        }
        if (!cf_ok(sim_platform_dir(dir, sizeof(dir))) || !cf_ok(sim_platform_key_load(NULL, &k)) ||
            !cf_ok(cf_pkey_ed25519_raw_public(k, raw))) {
                return cli_error("cannot load or create the sim platform key");
        }
        cf_hex_encode(raw, sizeof(raw), hex, sizeof(hex));
        if (cli->json) {
                cli_print_json(json_pack("{s:s, s:s}", "platform_key", hex, "dir", dir));
        } else {
                printf("%s\n", hex);
        }
        return 0;
}
