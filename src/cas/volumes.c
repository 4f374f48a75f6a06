/* Shielded volumes at cofferd: each volume of a policy gets a random 32-byte key when the
 * policy is stored, and cofferd keeps the volume's freshness: the tag of its last committed
 * state and a prepared tag (strict: prepare the new tag, write the manifest, commit), each
 * with the manifest generation it names; batched volumes "advance" the committed tag after
 * the fact (docs/formats/volume.md "Freshness").
 *
 * Table "volume", key "POLICY:VOLUME", one store version per change; the sealed value is JSON
 * {"key": BASE64, "committed": HEX|null, "prepared": HEX|null, "generation": N (of committed),
 *  "prepared_generation": N, "reset": true (after a reset, until the first new tag)}; the
 * last three are absent in records written before they existed (generation unknown).
 *
 * Tag changes are not audited one by one (a batched volume advances every window, a strict
 * one at every fsync): the store's own versioned, authenticated history records them.
 * Resets (POST /v1/volumes/POLICY/VOLUME/reset) are audited.
 *
 * The workload proves it holds the volume key (which only an activation releases) with a
 * token derived from it: HKDF-SHA256(key, info "coffer-volume-token-v1"), so tag updates need
 * no session state and survive restarts of cofferd. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "base/codec.h"
#include "base/log.h"
#include "cas/audit.h"
#include "policy/policy.h"
#include "store/store.h"

#define VOLUME_TABLE    "volume"
#define VOLUME_BODY_MAX 4096

struct volume_state {
        uint8_t key[32];
        bool has_committed, has_prepared;
        char committed[65], prepared[65];
        bool has_generation; /* false only for records older than generations */
        uint64_t generation, prepared_generation;
        bool reset;
        uint64_t version;
};

/* A JSON integer in [0, 2^53] or absent; false for anything else. */
static bool opt_u64(json_t *j, bool *present, uint64_t *ret)
{
        *present = j != NULL;
        if (j == NULL) {
                return true;
        }
        if (!json_is_integer(j) || json_integer_value(j) < 0) {
                return false;
        }
        *ret = (uint64_t)json_integer_value(j);
        return true;
}

static cf_status volume_key(const char *policy, const char *volume, char *out, size_t out_size)
{
        int n = snprintf(out, out_size, "%s:%s", policy, volume);

        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

static cf_status load(struct cas_worker *w, const char *key, struct volume_state *st)
{
        struct cf_buf v, k;
        json_error_t jerr;
        json_t *j = NULL, *c, *p, *g = NULL, *pg = NULL;
        const char *kb64 = NULL;
        int reset = 0;
        bool has_pg;
        cf_status s;

        memset(st, 0, sizeof(*st));
        cf_buf_init(&v, 4096, true);
        cf_buf_init(&k, 64, true);
        s = store_get(w->store, VOLUME_TABLE, key, 0, &v, &st->version);
        if (cf_ok(s)) {
                j = json_loadb((const char *)v.ptr, v.size, JSON_REJECT_DUPLICATES, &jerr);
                s = j != NULL &&
                            json_unpack(j, "{s:s, s:o, s:o, s?o, s?o, s?b}", "key", &kb64,
                                        "committed", &c, "prepared", &p, "generation", &g,
                                        "prepared_generation", &pg, "reset", &reset) == 0 &&
                            opt_u64(g, &st->has_generation, &st->generation) &&
                            opt_u64(pg, &has_pg, &st->prepared_generation)
                        ? cf_base64_decode_buf(cf_slice_str(kb64), &k)
                        : cf_fail(CF_E_MALFORMED);
                st->reset = reset != 0;
        }
        if (cf_ok(s) && k.size != 32) {
                s = cf_fail(CF_E_MALFORMED);
        }
        if (cf_ok(s)) {
                memcpy(st->key, k.ptr, 32);
                if ((st->has_committed = json_is_string(c))) {
                        snprintf(st->committed, sizeof(st->committed), "%s", json_string_value(c));
                }
                if ((st->has_prepared = json_is_string(p))) {
                        snprintf(st->prepared, sizeof(st->prepared), "%s", json_string_value(p));
                }
        }
        json_decref(j);
        cf_buf_done(&v);
        cf_buf_done(&k);
        if (!cf_ok(s)) {
                cf_wipe(st, sizeof(*st));
                cas_log_store_error(w->cas, s, VOLUME_TABLE, key);
        }
        return s;
}

static cf_status save(struct cas_worker *w, const char *key, const struct volume_state *st)
{
        char kb64[64];
        json_t *j;
        char *text;
        cf_status s;

        cf_base64_encode(st->key, 32, kb64, sizeof(kb64));
        j = json_pack("{s:s, s:o, s:o}", "key", kb64, "committed",
                      st->has_committed ? json_string(st->committed) : json_null(), "prepared",
                      st->has_prepared ? json_string(st->prepared) : json_null());
        cf_wipe(kb64, sizeof(kb64));
        if (j != NULL && st->has_generation) {
                json_object_set_new(j, "generation", json_integer((json_int_t)st->generation));
        }
        if (j != NULL && st->has_prepared) {
                json_object_set_new(j, "prepared_generation",
                                    json_integer((json_int_t)st->prepared_generation));
        }
        if (j != NULL && st->reset) {
                json_object_set_new(j, "reset", json_true());
        }
        text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
        ENSURE(text != NULL, CF_E_NOMEM);
        s = store_put(w->store, VOLUME_TABLE, key, st->version + 1, cf_slice_str(text));
        cf_wipe_free(text, strlen(text));
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, VOLUME_TABLE, key);
        }
        return s;
}

cf_status cas_volumes_provision(struct cas_worker *w, const struct policy *p)
{
        for (size_t i = 0; i < p->n_volumes; i++) {
                struct volume_state st = {0};
                char key[400];
                uint64_t v;
                cf_status s;

                TRY(volume_key(p->name, p->volumes[i].name, key, sizeof(key)));
                s = store_latest(w->store, VOLUME_TABLE, key, &v);
                if (cf_ok(s)) {
                        continue; /* a volume keeps its key and tags across policy versions */
                }
                ENSURE(s.code == CF_E_NOT_FOUND, s.code);
                st.has_generation = true; /* a new volume: generation 0, nothing committed */
                TRY(cf_random(st.key, sizeof(st.key)));
                s = save(w, key, &st);
                cf_wipe(&st, sizeof(st));
                TRY(s);
        }
        return CF_OK;
}

static cf_status token_of(const uint8_t key[32], char out[65])
{
        uint8_t t[32];
        CF_WIPE_ON_EXIT(t);

        TRY(cf_hkdf_sha256(cf_slice_make(key, 32), cf_slice_make("", 0),
                           cf_slice_str("coffer-volume-token-v1"), t, sizeof(t)));
        cf_hex_encode(t, sizeof(t), out, 65);
        return CF_OK;
}

cf_status cas_volumes_bundle(struct cas_worker *w, const struct policy *p,
                             const struct policy_service *svc, json_t *bundle)
{
        json_t *list = json_array();

        ENSURE(list != NULL, CF_E_NOMEM);
        ENSURE(json_object_set_new(bundle, "volumes", list) == 0, CF_E_NOMEM);
        for (size_t i = 0; i < svc->n_mounts; i++) {
                const struct policy_volume *vol = policy_find_volume(p, svc->mounts[i].volume);
                struct volume_state st;
                char key[400], kb64[64], token[65];
                json_t *tags, *item;

                ENSURE(vol != NULL, CF_E_INTERNAL);
                TRY(volume_key(p->name, vol->name, key, sizeof(key)));
                TRY(load(w, key, &st));
                cf_base64_encode(st.key, 32, kb64, sizeof(kb64));
                if (!cf_ok(token_of(st.key, token))) {
                        cf_wipe(&st, sizeof(st));
                        return cf_fail(CF_E_CRYPTO);
                }
                tags = json_array();
                if (st.has_committed) {
                        json_array_append_new(tags, json_string(st.committed));
                }
                if (st.has_prepared) {
                        json_array_append_new(tags, json_string(st.prepared));
                }
                item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:b}", "name", vol->name,
                                 "path", svc->mounts[i].path, "rollback",
                                 policy_volume_rollback_name(vol->rollback), "key", kb64, "token",
                                 token, "expected_tags", tags, "freshness",
                                 policy_volume_freshness_name(vol->freshness), "batched_window_ms",
                                 (json_int_t)vol->batched_window_ms, "reset", st.reset);
                /* Batched volumes accept a newer manifest than this generation: only sent
                 * when cofferd knows it (records older than generations do not). */
                if (item != NULL && st.has_generation) {
                        json_object_set_new(item, "generation",
                                            json_integer((json_int_t)st.generation));
                }
                cf_wipe(kb64, sizeof(kb64));
                cf_wipe(token, sizeof(token));
                cf_wipe(&st, sizeof(st));
                ENSURE(item != NULL && json_array_append_new(list, item) == 0, CF_E_NOMEM);
        }
        return CF_OK;
}

static bool hex64(const char *s)
{
        return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static void reply_tags(struct evhttp_request *req, int status, const struct volume_state *st)
{
        cas_reply_json(req, status,
                       json_pack("{s:o, s:o}", "committed",
                                 st->has_committed ? json_string(st->committed) : json_null(),
                                 "prepared",
                                 st->has_prepared ? json_string(st->prepared) : json_null()));
}

/* POST /v1/volumes/POLICY/VOLUME/reset (client certificate with the policy's update
 * permission; no board): the volume gets a new key and no tags, so its old contents are
 * unreadable and the next start creates it empty (and removes the old backing files).
 * Audited as "volume.reset". */
static void volume_reset(struct cas_worker *w, struct evhttp_request *req, const char *policy,
                         const char *volume, const char *key)
{
        char caller[CF_KEY_ID_HEX];
        const struct policy *p = NULL;
        struct cas_audit_txn audit = { 0 };
        struct volume_state st;
        uint64_t pv;
        cf_status s;

        if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
                cas_reply_error(req, 405, "method", "POST only", NULL);
                return;
        }
        if (!cas_request_key_id(req, caller)) {
                cas_reply_error(req, 401, "auth.client_certificate",
                                "this endpoint needs a client certificate (see 'coffer id new')",
                                NULL);
                return;
        }
        s = cas_policy_current(w, policy, &p, &pv);
        if (!cf_ok(s) || policy_find_volume(p, volume) == NULL) {
                cas_reply_error(req, 404, "volume.not_found", "no such volume", NULL);
                return;
        }
        /* A board governs its policy's changes; its approval of a reset is not modelled
         * yet, so one person must not be able to destroy a board's data. */
        if (p->board != NULL || !policy_key_may_update(p, caller)) {
                cas_reply_error(req, 403, "policy.access",
                                p->board != NULL
                                    ? "a volume of a policy governed by a board cannot be reset"
                                    : "your key is not in the policy's 'access.update'",
                                json_pack("{s:s}", "key_id", caller));
                return;
        }
        if (!cf_ok(load(w, key, &st))) {
                cas_reply_error(req, 404, "volume.not_found", "no such volume", NULL);
                return;
        }
        st.has_committed = st.has_prepared = false;
        st.has_generation = true;
        st.generation = st.prepared_generation = 0;
        st.reset = true;
        s = cf_random(st.key, sizeof(st.key));
        /* The reset and its audit entry commit together or not at all. */
        if (cf_ok(s)) {
                s = cas_audit_txn_begin(&audit);
        }
        if (cf_ok(s)) {
                s = store_begin(w->store);
        }
        if (cf_ok(s)) {
                s = save(w, key, &st);
        }
        if (cf_ok(s)) {
                s = cas_audit_txn_put(w, &audit, "volume.reset", caller,
                                      json_pack("{s:s, s:s}", "policy", policy, "volume", volume));
        }
        if (cf_ok(s)) {
                s = store_commit(w->store);
        } else {
                store_rollback(w->store);
        }
        cas_audit_txn_end(&audit, cf_ok(s));
        cf_wipe(st.key, sizeof(st.key));
        if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                cas_reply_error(req, 409, "volume.concurrent",
                                "the volume changed concurrently; retry", NULL);
                return;
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "volume reset");
                return;
        }
        cf_log_info("volume %s reset by=%.16s", key, caller);
        cas_reply_json(
            req, 200, json_pack("{s:s, s:s, s:b}", "policy", policy, "volume", volume, "reset", 1));
}

/* POST {"token", "prepare"|"commit"|"advance": TAG, "generation": N} (generation optional
 * for prepare and commit, required for advance); GET with the token in the body-less header
 * X-Coffer-Volume-Token. rest is "/POLICY/VOLUME/tag" (or "/reset") with '/' in the policy
 * name encoded as %2F. */
void cas_api_volumes(struct cas_worker *w, struct evhttp_request *req, const char *rest)
{
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char enc[600], key[400], token[65], tag[65];
        enum { PREPARE, COMMIT, ADVANCE } op;
        char *policy = NULL, *slash, *volume;
        struct volume_state st;
        struct cf_buf body;
        json_error_t jerr;
        json_t *j = NULL, *gen = NULL;
        const char *given = NULL, *prepare = NULL, *commit = NULL, *advance = NULL;
        uint64_t generation = 0;
        bool has_gen = false, is_reset;
        size_t len = 0;
        cf_status s;

        if (strlen(rest) >= sizeof(enc) || rest[0] != '/') {
                cas_reply_error(req, 404, "not_found", "expected /v1/volumes/POLICY/VOLUME/tag",
                                NULL);
                return;
        }
        snprintf(enc, sizeof(enc), "%s", rest + 1);
        slash = strchr(enc, '/');
        volume = slash ? slash + 1 : NULL;
        if (slash == NULL || (slash = strchr(volume, '/')) == NULL ||
            (strcmp(slash, "/tag") != 0 && strcmp(slash, "/reset") != 0)) {
                cas_reply_error(req, 404, "not_found",
                                "expected /v1/volumes/POLICY/VOLUME/tag or .../reset", NULL);
                return;
        }
        is_reset = strcmp(slash, "/reset") == 0;
        *slash = '\0';
        *strchr(enc, '/') = '\0';
        policy = evhttp_uridecode(enc, 0, &len);
        if (policy != NULL && is_reset && cf_ok(volume_key(policy, volume, key, sizeof(key)))) {
                volume_reset(w, req, policy, volume, key);
                free(policy);
                return;
        }
        if (policy == NULL || !cf_ok(volume_key(policy, volume, key, sizeof(key))) ||
            !cf_ok(load(w, key, &st))) {
                free(policy);
                cas_reply_error(req, 404, "volume.not_found", "no such volume", NULL);
                return;
        }
        free(policy);
        cf_buf_init(&body, VOLUME_BODY_MAX, false);
        if (m == EVHTTP_REQ_GET) {
                given = evhttp_find_header(evhttp_request_get_input_headers(req),
                                           "X-Coffer-Volume-Token");
        } else if (m == EVHTTP_REQ_POST && cf_ok(cas_request_body(req, VOLUME_BODY_MAX, &body))) {
                j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
                if (j == NULL ||
                    json_unpack(j, "{s:s, s?s, s?s, s?s, s?o !}", "token", &given, "prepare",
                                &prepare, "commit", &commit, "advance", &advance, "generation",
                                &gen) != 0 ||
                    (prepare != NULL) + (commit != NULL) + (advance != NULL) != 1 ||
                    !opt_u64(gen, &has_gen, &generation) || (advance != NULL && !has_gen)) {
                        given = NULL;
                }
        }
        cf_buf_done(&body);
        s = token_of(st.key, token);
        if (!cf_ok(s) || given == NULL || strlen(given) != 64 || !cf_ct_eq(given, token, 64)) {
                json_decref(j);
                cf_wipe(&st, sizeof(st));
                cas_reply_error(req, m == EVHTTP_REQ_GET || m == EVHTTP_REQ_POST ? 403 : 405,
                                "volume.token",
                                "a volume token from an activation of a service mounting this "
                                "volume is required ({\"token\", \"prepare\"|\"commit\"|"
                                "\"advance\": TAG, \"generation\": N})",
                                NULL);
                return;
        }
        if (m == EVHTTP_REQ_GET) {
                cf_wipe(st.key, sizeof(st.key));
                reply_tags(req, 200, &st);
                return;
        }
        op = prepare != NULL ? PREPARE : commit != NULL ? COMMIT : ADVANCE;
        if (!hex64(op == PREPARE ? prepare : op == COMMIT ? commit : advance)) {
                json_decref(j);
                cf_wipe(st.key, sizeof(st.key));
                cas_reply_error(req, 400, "volume.tag", "a tag is 64 lower-case hex digits", NULL);
                return;
        }
        /* Copies: the strings belong to j, which is released before the reply. */
        snprintf(tag, sizeof(tag), "%s", op == PREPARE ? prepare : op == COMMIT ? commit : advance);
        json_decref(j);
        if (op == PREPARE) {
                st.has_prepared = true;
                snprintf(st.prepared, sizeof(st.prepared), "%s", tag);
                st.prepared_generation = generation;
                st.reset = false;
        } else if (op == ADVANCE) {
                /* Batched: the state is already on disk. Generations only grow, so an
                 * older report (or a replay) cannot move cofferd back. */
                if (st.has_generation && st.has_committed && generation <= st.generation) {
                        cf_wipe(st.key, sizeof(st.key));
                        cas_reply_error(req, 409, "volume.generation",
                                        "the volume already has this or a newer generation", NULL);
                        return;
                }
                st.has_committed = true;
                snprintf(st.committed, sizeof(st.committed), "%s", tag);
                st.has_prepared = false;
                st.has_generation = true;
                st.generation = generation;
                st.reset = false;
        } else if (st.has_prepared && strcmp(tag, st.prepared) == 0) {
                st.has_committed = true;
                snprintf(st.committed, sizeof(st.committed), "%s", tag);
                st.has_prepared = false;
                /* Known when the prepare said it (and the commit agrees). */
                st.has_generation = has_gen && generation == st.prepared_generation;
                st.generation = st.prepared_generation;
        } else if (!(st.has_committed && strcmp(tag, st.committed) == 0)) {
                cf_wipe(st.key, sizeof(st.key));
                cas_reply_error(req, 409, "volume.not_prepared",
                                "only the prepared tag can be committed", NULL);
                return;
        }
        /* Written as the version after the one read: a concurrent change in between makes
         * the store refuse this write (no lost update). */
        s = save(w, key, &st);
        cf_wipe(st.key, sizeof(st.key));
        if (s.code == CF_E_EXISTS || s.code == CF_E_CONFLICT) {
                cas_reply_error(req, 409, "volume.concurrent",
                                "the volume's tags changed concurrently; read them and retry",
                                NULL);
                return;
        }
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "volume tag");
                return;
        }
        cf_log_debug("volume %s tag %s=%.16s generation %llu", key,
                     op == PREPARE  ? "prepared"
                     : op == COMMIT ? "committed"
                                    : "advanced",
                     tag, (unsigned long long)generation);
        reply_tags(req, 200, &st);
}
