/* Test tool: activations that coffer-run would never send, to prove cofferd refuses them.
 *
 *   activation-probe MODE HOST:PORT KEYID POLICY SERVICE MEASUREMENT
 *
 * MODE is "normal" (evidence bound to its own connection), "relay" (evidence bound to
 * connection A, sent on connection B) or "replay" (sent on A, then the same bytes again on a
 * new connection C). Prints one JSON object: {"statuses": [..], "bodies": [..]}.
 *
 *   activation-probe raw HOST:PORT KEYID POLICY SERVICE TYPE FILE
 *
 * sends the bytes of FILE as evidence of TYPE (e.g. a recorded SGX quote).
 *
 *   activation-probe csr HOST:PORT KEYID POLICY SERVICE MEASUREMENT FILE
 *
 * sends normal sim evidence with the text of FILE, whatever it holds, as the request's "csr"
 * (certificate requests coffer-run would never send: bogus names, bad signatures, weak keys,
 * malformed or oversized PEM). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "client/activate.h"
#include "client/client.h"

static struct cf_client *connect_or_die(const char *hp, const char *key)
{
        struct cf_client *c = NULL;

        if (!cf_ok(cf_client_connect(hp, key, cf_slice_make(NULL, 0), NULL, 10000, &c))) {
                fprintf(stderr, "activation-probe: cannot connect\n");
                exit(2);
        }
        return c;
}

static void send_on(struct cf_client *c, const char *body, json_t *statuses, json_t *bodies)
{
        struct cf_http_response r;

        cf_http_response_init(&r);
        if (!cf_ok(cf_client_request(c, "POST", "/v1/activate", "application/json",
                                     cf_slice_str(body), &r))) {
                fprintf(stderr, "activation-probe: request failed\n");
                exit(2);
        }
        json_array_append_new(statuses, json_integer(r.status));
        json_array_append_new(bodies, json_stringn((const char *)r.body.ptr, r.body.size));
        cf_http_response_done(&r);
}

static int send_raw(char **argv)
{
        struct cf_buf file, b64;
        struct cf_client *a;
        json_t *statuses = json_array(), *bodies = json_array(), *req, *out;
        char *body;

        cf_buf_init(&file, 1 << 20, false);
        cf_buf_init(&b64, 2 << 20, false);
        if (!cf_ok(cf_crypto_init()) || !cf_ok(cf_read_file(argv[7], 1 << 20, &file)) ||
            !cf_ok(cf_base64_encode_buf(file.ptr, file.size, &b64))) {
                fprintf(stderr, "activation-probe: cannot read %s\n", argv[7]);
                return 2;
        }
        req = json_pack("{s:s, s:s, s:{s:s, s:s}}", "policy", argv[4], "service", argv[5],
                        "evidence", "type", argv[6], "data", (const char *)b64.ptr);
        body = json_dumps(req, JSON_COMPACT);
        a = connect_or_die(argv[2], argv[3]);
        send_on(a, body, statuses, bodies);
        cf_client_free(a);
        out = json_pack("{s:o, s:o}", "statuses", statuses, "bodies", bodies);
        json_dumpf(out, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(out);
        json_decref(req);
        free(body);
        cf_buf_done(&file);
        cf_buf_done(&b64);
        return 0;
}

static int send_csr(char **argv)
{
        struct cf_pkey *platform = NULL;
        struct cf_buf file;
        struct cf_client *a;
        json_t *statuses = json_array(), *bodies = json_array(), *req, *out;
        char *body = NULL, *with = NULL;
        uint8_t m[32];

        cf_buf_init(&file, 1 << 20, false);
        if (!cf_ok(cf_crypto_init()) || !cf_ok(cf_hex_decode(cf_slice_str(argv[6]), m, sizeof(m))) ||
            !cf_ok(sim_platform_key_load(NULL, &platform)) ||
            !cf_ok(cf_read_file(argv[7], 1 << 20, &file))) {
                fprintf(stderr, "activation-probe: bad arguments\n");
                return 2;
        }
        a = connect_or_die(argv[2], argv[3]);
        if (!cf_ok(cf_activation_body_sim(cf_client_ssl(a), platform, m, argv[4], argv[5],
                                          &body))) {
                return 2;
        }
        /* Not cf_activation_body_with_csr: it refuses what this tool must be able to send. */
        req = json_loads(body, 0, NULL);
        if (req == NULL || json_object_set_new(req, "csr", json_stringn((const char *)file.ptr,
                                                                        file.size)) != 0 ||
            (with = json_dumps(req, JSON_COMPACT)) == NULL) {
                fprintf(stderr, "activation-probe: cannot build the request\n");
                return 2;
        }
        send_on(a, with, statuses, bodies);
        cf_client_free(a);
        out = json_pack("{s:o, s:o}", "statuses", statuses, "bodies", bodies);
        json_dumpf(out, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(out);
        json_decref(req);
        free(with);
        free(body);
        cf_buf_done(&file);
        cf_pkey_free(platform);
        return 0;
}

int main(int argc, char **argv)
{
        struct cf_pkey *platform = NULL;
        struct cf_client *a, *b;
        uint8_t m[32];
        char *body = NULL;
        json_t *statuses, *bodies;

        if (argc == 8 && strcmp(argv[1], "raw") == 0) {
                return send_raw(argv);
        }
        if (argc == 8 && strcmp(argv[1], "csr") == 0) {
                return send_csr(argv);
        }
        statuses = json_array();
        bodies = json_array();
        if (argc != 7 || !cf_ok(cf_crypto_init()) ||
            !cf_ok(cf_hex_decode(cf_slice_str(argv[6]), m, sizeof(m))) ||
            !cf_ok(sim_platform_key_load(NULL, &platform))) {
                fprintf(stderr, "usage: activation-probe normal|relay|replay HOST:PORT KEYID "
                                "POLICY SERVICE MEASUREMENT\n");
                return 2;
        }
        a = connect_or_die(argv[2], argv[3]);
        if (!cf_ok(cf_activation_body_sim(cf_client_ssl(a), platform, m, argv[4], argv[5],
                                          &body))) {
                return 2;
        }
        if (strcmp(argv[1], "normal") == 0) {
                send_on(a, body, statuses, bodies);
        } else if (strcmp(argv[1], "relay") == 0) {
                b = connect_or_die(argv[2], argv[3]);
                send_on(b, body, statuses, bodies);
                cf_client_free(b);
        } else if (strcmp(argv[1], "replay") == 0) {
                send_on(a, body, statuses, bodies);
                b = connect_or_die(argv[2], argv[3]);
                send_on(b, body, statuses, bodies);
                cf_client_free(b);
        } else {
                return 2;
        }
        cf_client_free(a);
        free(body);
        cf_pkey_free(platform);
        json_t *out = json_pack("{s:o, s:o}", "statuses", statuses, "bodies", bodies);
        json_dumpf(out, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(out);
        return 0;
}
