#include "attest/sim.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"

static const char g_magic[8] = { 'C', 'F', 'S', 'I', 'M', 'E', 'V', '1' };
static const char g_sig_context[] = "coffer-sim-evidence-v1";

cf_status sim_evidence_parse(struct cf_slice bytes, struct sim_evidence *ret)
{
        struct cf_cursor c = cf_cursor_make(bytes);
        struct sim_evidence e = { 0 };
        uint8_t magic[8];

        TRY(cf_cursor_copy(&c, magic, sizeof(magic)));
        ENSURE(memcmp(magic, g_magic, sizeof(magic)) == 0, CF_E_MALFORMED);
        TRY(cf_cursor_u16le(&c, &e.version));
        ENSURE(e.version == 1, CF_E_VERSION);
        TRY(cf_cursor_u16le(&c, &e.flags));
        ENSURE(e.flags == 0, CF_E_MALFORMED);
        TRY(cf_cursor_copy(&c, e.measurement, sizeof(e.measurement)));
        TRY(cf_cursor_copy(&c, e.report_data, sizeof(e.report_data)));
        TRY(cf_cursor_copy(&c, e.platform_key, sizeof(e.platform_key)));
        e.signed_part = cf_slice_make(bytes.ptr, c.pos);
        TRY(cf_cursor_copy(&c, e.signature, sizeof(e.signature)));
        TRY(cf_cursor_expect_end(&c));
        *ret = e;
        return CF_OK;
}

static cf_status signed_message(struct cf_slice signed_part, struct cf_buf *msg)
{
        TRY(cf_buf_append(msg, g_sig_context, sizeof(g_sig_context) - 1));
        return cf_buf_append(msg, signed_part.ptr, signed_part.size);
}

static cf_status claim_hex(json_t *claims, const char *name, const uint8_t *p, size_t n)
{
        char hex[2 * SIM_REPORT_DATA_SIZE + 1];

        cf_hex_encode(p, n, hex, sizeof(hex));
        ENSURE(json_object_set_new(claims, name, json_string(hex)) == 0, CF_E_NOMEM);
        return CF_OK;
}

cf_status sim_evidence_verify(struct cf_slice bytes, struct attest_result *res)
{
        struct sim_evidence e;
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        struct cf_buf msg;
        cf_status s;

        s = sim_evidence_parse(bytes, &e);
        TRY(attest_checks_add(&res->checks, "sim.format", cf_ok(s), "sim evidence v1, 204 bytes",
                              cf_ok(s) ? "sim evidence v1" : cf_strerror(s)));
        TRY(s);
        TRY(cf_pkey_ed25519_public(e.platform_key, &key));
        cf_buf_init(&msg, 256, false);
        s = signed_message(e.signed_part, &msg);
        if (cf_ok(s)) {
                s = cf_verify(key, cf_buf_slice(&msg), cf_slice_make(e.signature, 64));
        }
        cf_buf_done(&msg);
        TRY(attest_checks_add(&res->checks, "sim.signature", cf_ok(s),
                              "Ed25519 signature by the platform key",
                              cf_ok(s) ? "valid" : "does not verify"));
        TRY(s);
        TRY(claim_hex(res->claims, "measurement", e.measurement, sizeof(e.measurement)));
        TRY(claim_hex(res->claims, "report_data", e.report_data, sizeof(e.report_data)));
        TRY(claim_hex(res->claims, "platform_key", e.platform_key, sizeof(e.platform_key)));
        res->valid = true;
        return CF_OK;
}

cf_status sim_evidence_make(const struct cf_pkey *platform_key,
                            const uint8_t measurement[static SIM_MEASUREMENT_SIZE],
                            const uint8_t report_data[static SIM_REPORT_DATA_SIZE],
                            struct cf_buf *out)
{
        uint8_t body[SIM_EVIDENCE_SIZE - SIM_SIGNATURE_SIZE];
        uint8_t pub[32];
        struct cf_buf msg, sig;
        cf_status s;

        TRY(cf_pkey_ed25519_raw_public(platform_key, pub));
        memcpy(body, g_magic, 8);
        body[8] = 1;
        body[9] = 0;
        body[10] = 0;
        body[11] = 0;
        memcpy(body + 12, measurement, SIM_MEASUREMENT_SIZE);
        memcpy(body + 44, report_data, SIM_REPORT_DATA_SIZE);
        memcpy(body + 108, pub, sizeof(pub));
        cf_buf_init(&msg, 256, false);
        cf_buf_init(&sig, 128, false);
        s = signed_message(cf_slice_make(body, sizeof(body)), &msg);
        if (cf_ok(s)) {
                s = cf_sign(platform_key, cf_buf_slice(&msg), &sig);
        }
        if (cf_ok(s) && sig.size != SIM_SIGNATURE_SIZE) {
                s = cf_fail(CF_E_CRYPTO);
        }
        if (cf_ok(s)) {
                s = cf_buf_append(out, body, sizeof(body));
        }
        if (cf_ok(s)) {
                s = cf_buf_append(out, sig.ptr, sig.size);
        }
        cf_buf_done(&msg);
        cf_buf_done(&sig);
        return s;
}

cf_status sim_activation_report_data(const uint8_t exporter[static 32], uint8_t out[static 64])
{
        struct cf_slice parts[2] = { cf_slice_str("coffer-activation-v1"),
                                     cf_slice_make(exporter, 32) };

        return cf_sha512(parts, 2, out);
}

cf_status sim_cas_report_data(const uint8_t key_id[static 32], struct cf_slice nonce,
                              uint8_t out[static 64])
{
        struct cf_slice parts[3] = { cf_slice_str("coffer-cas-attestation-v1"),
                                     cf_slice_make(key_id, 32), nonce };

        return cf_sha512(parts, 3, out);
}

cf_status sim_platform_dir(char *out, size_t out_size)
{
        const char *d = secure_getenv("COFFER_SIM_DIR");
        const char *xdg = secure_getenv("XDG_DATA_HOME");
        const char *home = secure_getenv("HOME");
        int n;

        if (d != NULL && d[0] != '\0') {
                n = snprintf(out, out_size, "%s", d);
        } else if (xdg != NULL && xdg[0] == '/') {
                n = snprintf(out, out_size, "%s/coffer/sim", xdg);
        } else {
                if (home == NULL || home[0] != '/') {
                        struct passwd *pw = getpwuid(getuid());
                        ENSURE(pw != NULL && pw->pw_dir != NULL, CF_E_NOT_FOUND);
                        home = pw->pw_dir;
                }
                n = snprintf(out, out_size, "%s/.local/share/coffer/sim", home);
        }
        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

cf_status sim_platform_key_load(const char *dir, struct cf_pkey **ret)
{
        char d[PATH_MAX], path[PATH_MAX + 32];
        struct cf_buf pem;
        cf_status s;
        int n;

        if (dir == NULL) {
                TRY(sim_platform_dir(d, sizeof(d)));
        } else {
                n = snprintf(d, sizeof(d), "%s", dir);
                ENSURE(n > 0 && (size_t)n < sizeof(d), CF_E_LIMIT);
        }
        n = snprintf(path, sizeof(path), "%s/platform.key", d);
        ENSURE(n > 0 && (size_t)n < sizeof(path), CF_E_LIMIT);
        cf_buf_init(&pem, 1 << 14, true);
        s = cf_read_file(path, 1 << 14, &pem);
        if (s.code == CF_E_NOT_FOUND) {
                CF_CLEANUP(cf_pkey_freep) struct cf_pkey *k = NULL;
                TRY(cf_mkdir_p(d, 0700));
                TRY(cf_pkey_generate(CF_KEY_ED25519, &k));
                s = cf_pkey_private_pem(k, &pem);
                if (cf_ok(s)) {
                        s = cf_write_file_atomic(path, pem.ptr, pem.size, 0600);
                }
                cf_buf_done(&pem);
                TRY(s);
                *ret = TAKE_PTR(k);
                return CF_OK;
        }
        if (cf_ok(s)) {
                s = cf_pkey_from_pem(cf_buf_slice(&pem), true, ret);
        }
        cf_buf_done(&pem);
        TRY(s);
        if (cf_pkey_type(*ret) != CF_KEY_ED25519) {
                cf_pkey_free(*ret);
                *ret = NULL;
                return cf_fail(CF_E_KEY);
        }
        return CF_OK;
}
