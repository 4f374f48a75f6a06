#include "client/activate.h"

#include <jansson.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/cursor.h"
#include "crypto/tls.h"

cf_status cf_activation_body_sim(SSL *bind_to, const struct cf_pkey *platform_key,
                                 const uint8_t measurement[static 32], const char *policy,
                                 const char *service, char **ret_body)
{
        uint8_t exporter[CF_TLS_EXPORTER_SIZE], rd[64];
        struct cf_buf ev, b64;
        json_t *req = NULL;
        cf_status s;

        cf_buf_init(&ev, 1024, false);
        cf_buf_init(&b64, 2048, false);
        s = cf_tls_exporter(bind_to, "EXPORTER-coffer-activation", exporter);
        if (cf_ok(s)) {
                s = sim_activation_report_data(exporter, rd);
        }
        if (cf_ok(s)) {
                s = sim_evidence_make(platform_key, measurement, rd, &ev);
        }
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(ev.ptr, ev.size, &b64);
        }
        if (cf_ok(s)) {
                req = json_pack("{s:s, s:s, s:{s:s, s:s}}", "policy", policy, "service", service,
                                "evidence", "type", "sim", "data", (const char *)b64.ptr);
                *ret_body = req ? json_dumps(req, JSON_COMPACT) : NULL;
                s = *ret_body ? CF_OK : cf_fail(CF_E_NOMEM);
        }
        json_decref(req);
        cf_buf_done(&ev);
        cf_buf_done(&b64);
        return s;
}
