/* Shielded volumes at cofferd: each volume of a policy gets a random 32-byte key when the
 * policy is stored, and cofferd keeps the volume's freshness: the tag of its last committed
 * state and a prepared tag (two-phase: prepare the new tag, write the manifest, commit).
 *
 * Table "volume", key "POLICY:VOLUME", one store version per change; the sealed value is JSON
 * {"key": BASE64, "committed": HEX|null, "prepared": HEX|null}.
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
#include "policy/policy.h"
#include "store/store.h"

#define VOLUME_TABLE    "volume"
#define VOLUME_BODY_MAX 4096

struct volume_state {
        uint8_t key[32];
        bool has_committed, has_prepared;
        char committed[65], prepared[65];
        uint64_t version;
};

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
        json_t *j = NULL, *c, *p;
        const char *kb64 = NULL;
        cf_status s;

        memset(st, 0, sizeof(*st));
        cf_buf_init(&v, 4096, true);
        cf_buf_init(&k, 64, true);
        s = store_get(w->store, VOLUME_TABLE, key, 0, &v, &st->version);
        if (cf_ok(s)) {
                j = json_loadb((const char *)v.ptr, v.size, JSON_REJECT_DUPLICATES, &jerr);
                s = j != NULL && json_unpack(j, "{s:s, s:o, s:o}", "key", &kb64, "committed", &c,
                                             "prepared", &p) == 0
                            ? cf_base64_decode_buf(cf_slice_str(kb64), &k)
                            : cf_fail(CF_E_MALFORMED);
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
                struct volume_state st = { 0 };
                char key[400];
                uint64_t v;
                cf_status s;

                TRY(volume_key(p->name, p->volumes[i].name, key, sizeof(key)));
                s = store_latest(w->store, VOLUME_TABLE, key, &v);
                if (cf_ok(s)) {
                        continue; /* a volume keeps its key and tags across policy versions */
                }
                ENSURE(s.code == CF_E_NOT_FOUND, s.code);
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
                item = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "name", vol->name, "path",
                                 svc->mounts[i].path, "rollback",
                                 policy_volume_rollback_name(vol->rollback), "key", kb64, "token",
                                 token, "expected_tags", tags);
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

/* POST {"token", "prepare": TAG} or {"token", "commit": TAG}; GET with the token in the
 * body-less header X-Coffer-Volume-Token. rest is "/POLICY/VOLUME/tag" with '/' in the policy
 * name encoded as %2F. */
void cas_api_volumes(struct cas_worker *w, struct evhttp_request *req, const char *rest)
{
        enum evhttp_cmd_type m = evhttp_request_get_command(req);
        char enc[600], key[400], token[65], tag[65];
        bool is_prepare;
        char *policy = NULL, *slash, *volume;
        struct volume_state st;
        struct cf_buf body;
        json_error_t jerr;
        json_t *j = NULL;
        const char *given = NULL, *prepare = NULL, *commit = NULL;
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
        if (slash == NULL || (slash = strchr(volume, '/')) == NULL || strcmp(slash, "/tag") != 0) {
                cas_reply_error(req, 404, "not_found", "expected /v1/volumes/POLICY/VOLUME/tag",
                                NULL);
                return;
        }
        *slash = '\0';
        *strchr(enc, '/') = '\0';
        policy = evhttp_uridecode(enc, 0, &len);
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
                if (j == NULL || json_unpack(j, "{s:s, s?s, s?s !}", "token", &given, "prepare",
                                             &prepare, "commit", &commit) != 0 ||
                    (prepare == NULL) == (commit == NULL)) {
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
                                "volume is required ({\"token\", \"prepare\"|\"commit\": TAG})",
                                NULL);
                return;
        }
        if (m == EVHTTP_REQ_GET) {
                cf_wipe(st.key, sizeof(st.key));
                reply_tags(req, 200, &st);
                return;
        }
        if (!hex64(prepare ? prepare : commit)) {
                json_decref(j);
                cf_wipe(st.key, sizeof(st.key));
                cas_reply_error(req, 400, "volume.tag", "a tag is 64 lower-case hex digits", NULL);
                return;
        }
        /* Copies: the strings belong to j, which is released before the reply. */
        is_prepare = prepare != NULL;
        snprintf(tag, sizeof(tag), "%s", is_prepare ? prepare : commit);
        json_decref(j);
        if (is_prepare) {
                st.has_prepared = true;
                snprintf(st.prepared, sizeof(st.prepared), "%s", tag);
        } else if (st.has_prepared && strcmp(tag, st.prepared) == 0) {
                st.has_committed = true;
                snprintf(st.committed, sizeof(st.committed), "%s", tag);
                st.has_prepared = false;
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
        cf_log_info("volume %s tag %s=%.16s", key, is_prepare ? "prepared" : "committed", tag);
        reply_tags(req, 200, &st);
}
