/* Evidence for attested approvals: the same report data, providers and sim platform key as
 * coffer-run's activation (client/activate.c, attest/provider.h), in an approval body. */
#include "client/approval_evidence.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "attest/provider.h"
#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"
#include "client/activate.h"
#include "crypto/crypto.h"

#define MEASURE_MAX (1u << 30)

cf_status cf_measure_file(const char *path, uint8_t out[32])
{
        struct cf_buf b;
        struct cf_slice part;
        uint8_t h[CF_SHA256_SIZE];
        cf_status s;

        cf_buf_init(&b, MEASURE_MAX, false);
        s = cf_read_file(path, MEASURE_MAX, &b);
        if (cf_ok(s)) {
                part = cf_buf_slice(&b);
                s = cf_sha256(&part, 1, h);
        }
        cf_buf_done(&b);
        TRY(s);
        memcpy(out, h, sizeof(h));
        return CF_OK;
}

/* Evidence bytes into ev->bytes (ev initialised by the caller). */
static cf_status evidence(const struct provider_choice *choice, const char *tsm_root,
                          const char *libos_root, const uint8_t rd[64],
                          const uint8_t measurement[32], struct attest_evidence *ev, char *err,
                          size_t err_size)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *platform = NULL;
        cf_status s;

        if (choice->kind != PROVIDER_SIM) {
                return provider_get(choice, tsm_root, libos_root, rd, ev, err, err_size);
        }
        s = sim_platform_key_load(NULL, &platform);
        if (!cf_ok(s)) {
                snprintf(err, err_size, "cannot load or create the sim platform key: %s",
                         cf_strerror(s));
                return s;
        }
        ev->platform = ATTEST_SIM;
        s = sim_evidence_make(platform, measurement, rd, &ev->bytes);
        if (!cf_ok(s)) {
                snprintf(err, err_size, "cannot make sim evidence: %s", cf_strerror(s));
        }
        return s;
}

cf_status cf_approval_evidence_body(SSL *bind_to, const char *tee, const char *tsm_root,
                                    const char *libos_root, const uint8_t measurement[32],
                                    const char *service, bool veto, char **ret_body, char *err,
                                    size_t err_size)
{
        uint8_t rd[CF_ACTIVATION_REPORT_DATA_SIZE];
        struct provider_choice choice;
        struct attest_evidence ev;
        struct cf_buf b64;
        json_t *body;
        char *text;
        cf_status s;

        ENSURE(bind_to != NULL && service != NULL && ret_body != NULL && err_size > 0,
               CF_E_INVALID_ARG);
        err[0] = '\0';
        TRY(provider_choose(tee != NULL ? tee : "sim", tsm_root, libos_root, &choice, err,
                            err_size));
        s = cf_activation_report_data(bind_to, rd);
        if (!cf_ok(s)) {
                snprintf(err, err_size, "cannot derive the channel binding: %s", cf_strerror(s));
                return s;
        }
        attest_evidence_init(&ev);
        s = evidence(&choice, tsm_root, libos_root, rd, measurement, &ev, err, err_size);
        if (!cf_ok(s)) {
                attest_evidence_done(&ev);
                return s;
        }
        cf_buf_init(&b64, cf_base64_encoded_size(ev.bytes.size) + 1, false);
        s = cf_base64_encode_buf(ev.bytes.ptr, ev.bytes.size, &b64);
        body = cf_ok(s)
                   ? json_pack("{s:s, s:s, s:{s:s, s:s}}", "service", service, "verdict",
                               veto ? "veto" : "approve", "evidence", "type",
                               attest_platform_name(ev.platform), "data", (const char *)b64.ptr)
                   : NULL;
        attest_evidence_done(&ev);
        cf_buf_done(&b64);
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (text == NULL) {
                snprintf(err, err_size, "cannot build the approval");
                return cf_ok(s) ? cf_fail(CF_E_NOMEM) : s;
        }
        *ret_body = text;
        return CF_OK;
}
