/* Health, version, metrics and cofferd's own attestation. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>

#include "attest/provider.h"
#include "attest/sim.h"
#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"

void cas_api_health(struct cas_worker *w, struct evhttp_request *req)
{
        (void)w;
        cas_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void cas_api_version(struct cas_worker *w, struct evhttp_request *req)
{
        char m[65];

        cf_hex_encode(w->cas->self_measurement, 32, m, sizeof(m));
        cas_reply_json(req, 200,
                       json_pack("{s:s, s:s, s:s, s:s, s:s}", "version", COFFER_VERSION, "api", "v1",
                                 "tee",
                                 w->cas->tee.kind == PROVIDER_SIM ? "sim"
                                 : w->cas->tee.platform     ? attest_platform_name(w->cas->tee.platform)
                                                            : "auto",
                                 "key_id", w->cas->key_id, "measurement", m));
}

void cas_api_metrics(struct cas_worker *w, struct evhttp_request *req)
{
        const struct cas_metrics *m = &w->cas->metrics;
        struct evbuffer *buf = evbuffer_new();

        if (buf == NULL) {
                evhttp_send_error(req, 500, NULL);
                return;
        }
        evbuffer_add_printf(
                buf,
                "# HELP cofferd_requests_total HTTP requests received.\n"
                "# TYPE cofferd_requests_total counter\n"
                "cofferd_requests_total %lu\n"
                "# HELP cofferd_responses_total HTTP responses by status class.\n"
                "# TYPE cofferd_responses_total counter\n"
                "cofferd_responses_total{class=\"2xx\"} %lu\n"
                "cofferd_responses_total{class=\"4xx\"} %lu\n"
                "cofferd_responses_total{class=\"5xx\"} %lu\n"
                "# HELP cofferd_activations_total Activation decisions.\n"
                "# TYPE cofferd_activations_total counter\n"
                "cofferd_activations_total{result=\"granted\"} %lu\n"
                "cofferd_activations_total{result=\"refused\"} %lu\n"
                "# HELP cofferd_policy_changes_total Policy versions written.\n"
                "# TYPE cofferd_policy_changes_total counter\n"
                "cofferd_policy_changes_total{op=\"create\"} %lu\n"
                "cofferd_policy_changes_total{op=\"update\"} %lu\n"
                "cofferd_policy_changes_total{op=\"delete\"} %lu\n"
                "# HELP cofferd_store_tamper_detected_total Stored values that failed authentication.\n"
                "# TYPE cofferd_store_tamper_detected_total counter\n"
                "cofferd_store_tamper_detected_total %lu\n"
                "# HELP cofferd_audit_failures_total Audit entries that could not be written.\n"
                "# TYPE cofferd_audit_failures_total counter\n"
                "cofferd_audit_failures_total %lu\n"
                "# HELP cofferd_connections_dropped_total Connections closed by cofferd's limits.\n"
                "# TYPE cofferd_connections_dropped_total counter\n"
                "cofferd_connections_dropped_total{reason=\"deadline\"} %lu\n"
                "cofferd_connections_dropped_total{reason=\"cap\"} %lu\n"
                "# HELP cofferd_start_time_seconds Start time of the process.\n"
                "# TYPE cofferd_start_time_seconds gauge\n"
                "cofferd_start_time_seconds %lld\n",
                atomic_load(&m->requests), atomic_load(&m->responses_2xx),
                atomic_load(&m->responses_4xx), atomic_load(&m->responses_5xx),
                atomic_load(&m->activations_granted), atomic_load(&m->activations_refused),
                atomic_load(&m->policies_created), atomic_load(&m->policies_updated),
                atomic_load(&m->policies_deleted), atomic_load(&m->tamper_detected),
                atomic_load(&m->audit_failures), atomic_load(&m->connections_timed_out),
                atomic_load(&m->connections_evicted),
                (long long)w->cas->started_at);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4");
        evhttp_send_reply(req, 200, NULL, buf);
        evbuffer_free(buf);
}

/* GET /v1/cas/attestation?nonce=HEX: sim evidence over cofferd's measurement whose report
 * data binds the key id of its TLS certificate, its audit key and the client's nonce. */
void cas_api_attestation(struct cas_worker *w, struct evhttp_request *req)
{
        struct evkeyvalq q;
        const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        const char *nonce_hex;
        uint8_t nonce[CAS_NONCE_MAX], rd[64];
        size_t nonce_size;
        struct cf_buf ev, b64;
        enum attest_platform platform = ATTEST_SIM;
        uint8_t audit_key[AUDIT_KEY_SIZE];
        char audit_hex[2 * AUDIT_KEY_SIZE + 1];
        cf_status s;

        TAILQ_INIT(&q);
        if (query == NULL || evhttp_parse_query_str(query, &q) != 0 ||
            (nonce_hex = evhttp_find_header(&q, "nonce")) == NULL) {
                evhttp_clear_headers(&q);
                cas_reply_error(req, 400, "request.nonce",
                                "query parameter 'nonce' (hex, 1 to 64 bytes) is required", NULL);
                return;
        }
        nonce_size = strlen(nonce_hex) / 2;
        if (nonce_size == 0 || nonce_size > CAS_NONCE_MAX ||
            !cf_ok(cf_hex_decode(cf_slice_str(nonce_hex), nonce, nonce_size))) {
                evhttp_clear_headers(&q);
                cas_reply_error(req, 400, "request.nonce",
                                "'nonce' must be 2 to 128 hex digits (1 to 64 bytes)", NULL);
                return;
        }
        evhttp_clear_headers(&q);
        cf_buf_init(&ev, 64 * 1024, false);
        cf_buf_init(&b64, 128 * 1024, false);
        cas_audit_public_key(audit_key);
        cf_hex_encode(audit_key, sizeof(audit_key), audit_hex, sizeof(audit_hex));
        s = audit_cas_report_data(w->cas->key_id_raw, audit_key, cf_slice_make(nonce, nonce_size),
                                  rd);
        if (cf_ok(s) && w->cas->tee.kind == PROVIDER_SIM) {
                s = sim_evidence_make(w->cas->sim_platform_key, w->cas->self_measurement, rd, &ev);
                platform = ATTEST_SIM;
        } else if (cf_ok(s)) {
                /* On a hardware TEE the evidence comes from it, with the same report data. */
                struct attest_evidence hw;
                char err[256] = "";
                attest_evidence_init(&hw);
                s = provider_get(&w->cas->tee, w->cas->cfg.tsm_root, w->cas->cfg.attestation_root,
                                 rd, &hw, err, sizeof(err));
                if (cf_ok(s)) {
                        platform = hw.platform;
                        s = cf_buf_append(&ev, hw.bytes.ptr, hw.bytes.size);
                } else {
                        cf_log_err("attestation: cannot get evidence from the TEE: %s", err);
                }
                attest_evidence_done(&hw);
        }
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(ev.ptr, ev.size, &b64);
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "attestation");
        } else {
                cas_reply_json(req, 200,
                               json_pack("{s:s, s:s, s:{s:s, s:s}}", "key_id", w->cas->key_id,
                                         "audit_key", audit_hex, "evidence", "type",
                                         attest_platform_name(platform), "data",
                                         (char *)b64.ptr));
        }
        cf_buf_done(&ev);
        cf_buf_done(&b64);
}
