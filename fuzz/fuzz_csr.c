/* libFuzzer target: certificate requests as cofferd receives them in an activation. The
 * first byte chooses the entry point: even, the PEM text (cf_x509_csr_parse_verify); odd, the
 * DER (cf_x509_csr_verify_der). A request that verifies must name a known algorithm and a
 * public key that a certificate can then be issued for (cf_x509_issue_for_key, under a CA
 * made once per process), as cofferd would.
 * Target functions: cf_x509_csr_parse_verify, cf_x509_csr_verify_der, cf_x509_issue_for_key. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cf_buf g_ca_key, g_ca_cert;
static int g_ready;

static void setup(void)
{
        struct cf_x509_request ca = {
            .common_name = "Fuzz CA", .ca = true, .path_len = 0, .days = 2};

        if (g_ready) {
                return;
        }
        cf_buf_init(&g_ca_key, CF_X509_KEY_MAX, true);
        cf_buf_init(&g_ca_cert, CF_X509_CERT_MAX, false);
        if (!cf_ok(cf_crypto_init()) || !cf_ok(cf_x509_key_generate(CF_X509_P256, &g_ca_key)) ||
            !cf_ok(cf_x509_issue(&ca, cf_buf_slice(&g_ca_key), cf_slice_make(NULL, 0),
                                 cf_slice_make(NULL, 0), &g_ca_cert))) {
                abort();
        }
        g_ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const dns[] = {"fuzz.test"};
        struct cf_x509_request leaf = {.common_name = "leaf",
                                       .path_len = -1,
                                       .dns = dns,
                                       .n_dns = 1,
                                       .eku = CF_X509_EKU_SERVER | CF_X509_EKU_CLIENT,
                                       .days = 1};
        struct cf_cursor c = cf_cursor_make(cf_slice_make(data, size));
        struct cf_x509_csr_key key;
        struct cf_slice rest;
        struct cf_buf cert;
        uint8_t mode;
        cf_status s;

        setup();
        if (!cf_ok(cf_cursor_u8(&c, &mode)) ||
            !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &rest))) {
                return 0;
        }
        s = (mode & 1) ? cf_x509_csr_verify_der(rest, &key) : cf_x509_csr_parse_verify(rest, &key);
        if (!cf_ok(s)) {
                return 0;
        }
        if (cf_x509_alg_name(key.alg) == NULL || key.spki_size == 0 ||
            key.spki_size > sizeof(key.spki)) {
                abort();
        }
        cf_buf_init(&cert, CF_X509_CERT_MAX, false);
        if (!cf_ok(cf_x509_issue_for_key(&leaf, cf_slice_make(key.spki, key.spki_size),
                                         cf_buf_slice(&g_ca_key), cf_buf_slice(&g_ca_cert),
                                         &cert))) {
                abort(); /* a verified request's key must be certifiable */
        }
        cf_buf_done(&cert);
        return 0;
}
