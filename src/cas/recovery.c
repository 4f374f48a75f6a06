#include "cas/recovery.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/buffer.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "cas/cas.h"
#include "crypto/ecies.h"
#include "crypto/shamir.h"

#define RECOVERY_FILE     "recovery.json"
#define RECOVERY_INFO     "coffer-recovery-share-v1"
#define RECOVERY_CHECK    "coffer-recovery-check-v1"
#define RECOVERY_COMMIT   "coffer-recovery-commit-v1"
#define RECOVERY_BODY_MAX 4096
/* Version 1 bundles have no commitments: a wrong share is only noticed when the round is
 * combined, and discards it. Version 2 refuses it on arrival. */
#define RECOVERY_VERSION_OLD 1
#define RECOVERY_VERSION     2

/* What the bundle says about one share: its x, its holder, and (version 2) its commitment. */
struct recovery_holder {
        uint8_t x;
        char key_id[CF_KEY_ID_HEX];
        uint8_t commitment[32];
};

struct cas_recovery_state {
        pthread_mutex_t mu;
        json_t *bundle;
        int version;
        uint8_t bundle_id[16];
        uint8_t check[32];
        unsigned threshold;
        struct recovery_holder holders[CAS_RECOVERY_KEYS_MAX];
        size_t n_holders;
        struct cf_secret *shares; /* threshold * (1 + 32): x || y, in arrival order */
        size_t n;
};

static cf_status bundle_path(const struct cas *cas, char *out, size_t out_size)
{
        int n = snprintf(out, out_size, "%s/%s", cas->cfg.data_dir, RECOVERY_FILE);

        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

/* check = SHA-256(label || bundle id || data key): tells a right reconstruction from a wrong
 * one without revealing the key. */
static cf_status check_value(const uint8_t bundle_id[16], const uint8_t key[32], uint8_t out[32])
{
        struct cf_slice parts[3] = { cf_slice_str(RECOVERY_CHECK), cf_slice_make(bundle_id, 16),
                                     cf_slice_make(key, 32) };

        return cf_sha256(parts, 3, out);
}

/* commitment = SHA-256(label || bundle id || x || y): public, since y is 32 random-looking
 * bytes that no one can find from their hash, and it lets cofferd refuse a wrong share the
 * moment it arrives instead of after K shares were combined. */
static cf_status commitment(const uint8_t bundle_id[16], const uint8_t share[33], uint8_t out[32])
{
        struct cf_slice parts[3] = {cf_slice_str(RECOVERY_COMMIT), cf_slice_make(bundle_id, 16),
                                    cf_slice_make(share, 33)};

        return cf_sha256(parts, 3, out);
}

static cf_status seal_share(struct cf_pkey *key, const uint8_t bundle_id[16], const uint8_t *share,
                            json_t *list)
{
        uint8_t plain[CAS_RECOVERY_SHARE_SIZE], commit[32];
        CF_WIPE_ON_EXIT(plain);
        char kid[CF_KEY_ID_HEX], commit_hex[65];
        struct cf_buf sealed, b64;
        cf_status s;

        memcpy(plain, bundle_id, 16);
        memcpy(plain + 16, share, 33);
        cf_buf_init(&sealed, 4096, false);
        cf_buf_init(&b64, 8192, false);
        s = commitment(bundle_id, share, commit);
        cf_hex_encode(commit, sizeof(commit), commit_hex, sizeof(commit_hex));
        if (cf_ok(s)) {
                s = cf_pkey_key_id(key, kid);
        }
        if (cf_ok(s)) {
                s = cf_ecies_seal(key, cf_slice_str(RECOVERY_INFO),
                                  cf_slice_make(plain, sizeof(plain)), &sealed);
        }
        if (cf_ok(s)) {
                s = cf_base64_encode_buf(sealed.ptr, sealed.size, &b64);
        }
        if (cf_ok(s) &&
            json_array_append_new(list, json_pack("{s:s, s:i, s:s, s:s}", "key_id", kid, "x",
                                                  (int)share[0], "sealed", (const char *)b64.ptr,
                                                  "commitment", commit_hex)) != 0) {
                s = cf_fail(CF_E_NOMEM);
        }
        cf_buf_done(&sealed);
        cf_buf_done(&b64);
        return s;
}

cf_status cas_recovery_create(const struct cas *cas, const uint8_t data_key[static 32],
                              struct cf_pkey *const *keys, size_t n_keys, unsigned threshold)
{
        uint8_t bundle_id[16], check[32];
        char id_hex[33], check_hex[65], path[1200];
        CF_CLEANUP(cf_secret_freep) struct cf_secret *shares = NULL;
        json_t *list, *bundle;
        char *text;
        cf_status s = CF_OK;

        ENSURE(n_keys >= 2 && n_keys <= CAS_RECOVERY_KEYS_MAX, CF_E_INVALID_ARG);
        ENSURE(threshold >= 2 && threshold <= n_keys, CF_E_INVALID_ARG);
        TRY(cf_random(bundle_id, sizeof(bundle_id)));
        TRY(check_value(bundle_id, data_key, check));
        TRY(cf_secret_new(n_keys * 33, &shares));
        TRY(cf_shamir_split(data_key, 32, (uint8_t)threshold, (uint8_t)n_keys, shares->ptr));
        list = json_array();
        ENSURE(list != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < n_keys && cf_ok(s); i++) {
                s = seal_share(keys[i], bundle_id, shares->ptr + i * 33, list);
        }
        if (!cf_ok(s)) {
                json_decref(list);
                return s;
        }
        cf_hex_encode(bundle_id, sizeof(bundle_id), id_hex, sizeof(id_hex));
        cf_hex_encode(check, sizeof(check), check_hex, sizeof(check_hex));
        bundle = json_pack("{s:i, s:s, s:i, s:i, s:s, s:o}", "version", RECOVERY_VERSION,
                           "bundle_id", id_hex, "threshold", (int)threshold, "count", (int)n_keys,
                           "check", check_hex, "shares", list);
        text = bundle ? json_dumps(bundle, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(bundle);
        ENSURE(text != NULL, CF_E_NOMEM);
        s = bundle_path(cas, path, sizeof(path));
        if (cf_ok(s)) {
                s = cf_write_file_atomic(path, text, strlen(text), 0600);
        }
        free(text);
        return s;
}

bool cas_recovery_available(const struct cas *cas)
{
        char path[1200];
        struct stat st;

        return cf_ok(bundle_path(cas, path, sizeof(path))) && stat(path, &st) == 0;
}

/* One entry of "shares": {"key_id", "x", "sealed"[, "commitment"]}. x in 1..255, distinct;
 * the commitment is required from version 2 on and refused before. */
static cf_status parse_holder(json_t *entry, int version, struct recovery_holder *h)
{
        const char *kid = NULL, *sealed = NULL, *commit = NULL;
        json_int_t x = 0;
        size_t n_fields = version >= RECOVERY_VERSION ? 4 : 3;

        ENSURE(json_is_object(entry) && json_object_size(entry) == n_fields, CF_E_SCHEMA);
        ENSURE(json_unpack(entry, "{s:s, s:I, s:s, s?s}", "key_id", &kid, "x", &x, "sealed",
                           &sealed, "commitment", &commit) == 0,
               CF_E_SCHEMA);
        ENSURE(x >= 1 && x <= 255, CF_E_MALFORMED);
        ENSURE(strlen(kid) == CF_KEY_ID_HEX - 1, CF_E_MALFORMED);
        ENSURE((commit != NULL) == (version >= RECOVERY_VERSION), CF_E_SCHEMA);
        if (commit != NULL) {
                TRY(cf_hex_decode(cf_slice_str(commit), h->commitment, sizeof(h->commitment)));
        }
        h->x = (uint8_t)x;
        memcpy(h->key_id, kid, CF_KEY_ID_HEX);
        return CF_OK;
}

static cf_status parse_bundle(struct cas_recovery_state *r)
{
        const char *id = NULL, *check = NULL;
        json_int_t version = 0, threshold = 0, count = 0;
        json_t *shares = NULL, *entry;
        size_t i;

        ENSURE(json_unpack(r->bundle, "{s:I}", "version", &version) == 0, CF_E_SCHEMA);
        ENSURE(version == RECOVERY_VERSION_OLD || version == RECOVERY_VERSION, CF_E_VERSION);
        ENSURE(json_unpack(r->bundle, "{s:s, s:I, s:I, s:s, s:o}", "bundle_id", &id, "threshold",
                           &threshold, "count", &count, "check", &check, "shares", &shares) == 0 &&
                   json_is_array(shares),
               CF_E_SCHEMA);
        ENSURE(count >= 2 && count <= CAS_RECOVERY_KEYS_MAX &&
                   (size_t)count == json_array_size(shares),
               CF_E_MALFORMED);
        ENSURE(threshold >= 2 && threshold <= count, CF_E_MALFORMED);
        TRY(cf_hex_decode(cf_slice_str(id), r->bundle_id, sizeof(r->bundle_id)));
        TRY(cf_hex_decode(cf_slice_str(check), r->check, sizeof(r->check)));
        json_array_foreach(shares, i, entry)
        {
                TRY(parse_holder(entry, (int)version, &r->holders[i]));
                for (size_t j = 0; j < i; j++) {
                        ENSURE(r->holders[j].x != r->holders[i].x, CF_E_MALFORMED);
                }
        }
        r->version = (int)version;
        r->n_holders = (size_t)count;
        r->threshold = (unsigned)threshold;
        return CF_OK;
}

cf_status cas_recovery_begin(struct cas *cas)
{
        char path[1200];
        struct cf_buf text;
        json_error_t jerr;
        struct cas_recovery_state *r;
        cf_status s;

        TRY(bundle_path(cas, path, sizeof(path)));
        r = calloc(1, sizeof(*r));
        ENSURE(r != NULL, CF_E_NOMEM);
        pthread_mutex_init(&r->mu, NULL);
        cf_buf_init(&text, CAS_RECOVERY_BUNDLE_MAX, false);
        s = cf_read_file(path, CAS_RECOVERY_BUNDLE_MAX, &text);
        if (cf_ok(s)) {
                r->bundle = json_loadb((const char *)text.ptr, text.size, JSON_REJECT_DUPLICATES,
                                       &jerr);
                s = r->bundle ? CF_OK : cf_fail(CF_E_SYNTAX);
        }
        cf_buf_done(&text);
        if (cf_ok(s)) {
                s = parse_bundle(r);
        }
        if (cf_ok(s)) {
                s = cf_secret_new(r->threshold * 33, &r->shares);
        }
        if (!cf_ok(s)) {
                json_decref(r->bundle);
                pthread_mutex_destroy(&r->mu);
                free(r);
                cf_log_err("cannot load the recovery bundle '%s': %s%s", path, cf_strerror(s),
                           s.code == CF_E_VERSION ? " (this cofferd reads versions 1 and 2)" : "");
                return s;
        }
        if (r->version == RECOVERY_VERSION_OLD) {
                cf_log_warning("recovery bundle '%s' is version 1 (no share commitments): a wrong "
                               "share is noticed only when %u shares are combined, and then "
                               "discards all of them",
                               path, r->threshold);
        }
        cas->recovery = r;
        return CF_OK;
}

void cas_recovery_end(struct cas *cas)
{
        struct cas_recovery_state *r = cas->recovery;

        if (r == NULL) {
                return;
        }
        json_decref(r->bundle);
        r->shares = cf_secret_free(r->shares);
        pthread_mutex_destroy(&r->mu);
        free(r);
        cas->recovery = NULL;
}

static void reply_progress(struct evhttp_request *req, int status, const struct cas_recovery_state *r)
{
        char id[33];

        cf_hex_encode(r->bundle_id, sizeof(r->bundle_id), id, sizeof(id));
        cas_reply_json(req, status,
                       json_pack("{s:b, s:s, s:i, s:i, s:i}", "recovered", 0, "bundle_id", id,
                                 "threshold", (int)r->threshold, "received", (int)r->n, "needed",
                                 (int)(r->threshold - r->n)));
}

/* Combines the shares; on success the data key is re-wrapped under this machine's sealing key. */
static cf_status complete(struct cas *cas, struct cas_recovery_state *r)
{
        uint8_t key[32], check[32];
        CF_WIPE_ON_EXIT(key);

        TRY(cf_shamir_combine(r->shares->ptr, 33, (uint8_t)r->n, key));
        TRY(check_value(r->bundle_id, key, check));
        ENSURE(cf_ct_eq(check, r->check, sizeof(check)), CF_E_MAC_INVALID);
        return cas_datadir_store_data_key(cas, key);
}

static void on_reply_sent(struct evhttp_request *req, void *arg)
{
        (void)req;
        (void)arg;
        cas_request_mode_change();
}

static const struct recovery_holder *find_holder(const struct cas_recovery_state *r, uint8_t x)
{
        for (size_t i = 0; i < r->n_holders; i++) {
                if (r->holders[i].x == x) {
                        return &r->holders[i];
                }
        }
        return NULL;
}

/* Checks an arriving share (bundle id || x || y) against the bundle, under r->mu. On refusal
 * fills the reply's status, code and message and returns false; the shares received so far
 * are kept. */
static bool share_acceptable(const struct cas_recovery_state *r, const uint8_t *share,
                             const char *sender, int *status, const char **code,
                             const char **message)
{
        const struct recovery_holder *h;
        uint8_t commit[32];

        if (!cf_ct_eq(share, r->bundle_id, 16)) {
                *status = 400;
                *code = "recovery.bundle";
                *message = "this share belongs to another recovery bundle (another cofferd)";
                return false;
        }
        h = find_holder(r, share[16]);
        if (h == NULL) {
                *status = 400;
                *code = "recovery.share";
                *message = "the recovery bundle has no share with this x";
                return false;
        }
        /* Only the holder the bundle names may send its share: a stolen decrypted share is
         * useless to anyone else, and strangers cannot fill the round. */
        if (sender == NULL || strcmp(sender, h->key_id) != 0) {
                *status = 403;
                *code = "recovery.holder";
                *message = "a share is accepted only over a connection authenticated with its "
                           "holder's identity (the key the share was sealed to)";
                return false;
        }
        if (r->version >= RECOVERY_VERSION &&
            (!cf_ok(commitment(r->bundle_id, share + 16, commit)) ||
             !cf_ct_eq(commit, h->commitment, sizeof(commit)))) {
                *status = 400;
                *code = "recovery.share";
                *message = "this share does not match its commitment in the recovery bundle "
                           "(a wrong or damaged share); the shares received so far are kept";
                return false;
        }
        for (size_t i = 0; i < r->n; i++) {
                if (r->shares->ptr[i * 33] == share[16]) {
                        *status = 409;
                        *code = "recovery.duplicate";
                        *message = "this share was received already";
                        return false;
                }
        }
        return true;
}

static void post_share(struct cas *cas, struct evhttp_request *req)
{
        struct cas_recovery_state *r = cas->recovery;
        struct cf_buf body, share;
        json_error_t jerr;
        json_t *j = NULL;
        const char *b64 = NULL, *code = NULL, *message = NULL;
        char sender[CF_KEY_ID_HEX];
        bool has_sender = cas_request_key_id(req, sender);
        int status = 0;
        cf_status s;

        cf_buf_init(&body, RECOVERY_BODY_MAX, true);
        cf_buf_init(&share, 128, true);
        s = cas_request_body(req, RECOVERY_BODY_MAX, &body);
        if (cf_ok(s)) {
                j = json_loadb((const char *)body.ptr, body.size, JSON_REJECT_DUPLICATES, &jerr);
        }
        cf_buf_done(&body);
        if (j == NULL || json_unpack(j, "{s:s !}", "share", &b64) != 0 ||
            !cf_ok(cf_base64_decode_buf(cf_slice_str(b64), &share)) ||
            share.size != CAS_RECOVERY_SHARE_SIZE) {
                json_decref(j);
                cf_buf_done(&share);
                cas_reply_error(req, 400, "recovery.share",
                                "expected {\"share\": BASE64} holding one decrypted share", NULL);
                return;
        }
        json_decref(j);
        pthread_mutex_lock(&r->mu);
        if (!share_acceptable(r, share.ptr, has_sender ? sender : NULL, &status, &code, &message)) {
                pthread_mutex_unlock(&r->mu);
                cf_log_info("recovery: a share for x=%u was refused (%s)", share.ptr[16], code);
                cf_buf_done(&share);
                cas_reply_error(req, status, code, message, NULL);
                return;
        }
        memcpy(r->shares->ptr + r->n * 33, share.ptr + 16, 33);
        r->n++;
        cf_buf_done(&share);
        cf_log_info("recovery: share %zu of %u received", r->n, r->threshold);
        if (r->n < r->threshold) {
                reply_progress(req, 202, r);
                pthread_mutex_unlock(&r->mu);
                return;
        }
        s = complete(cas, r);
        /* Used shares are wiped whatever the outcome. */
        cf_wipe(r->shares->ptr, r->shares->size);
        r->n = 0;
        pthread_mutex_unlock(&r->mu);
        if (!cf_ok(s) && s.code != CF_E_MAC_INVALID) {
                cf_log_err("recovery: cannot keep the recovered data key: %s; all shares were "
                           "discarded",
                           cf_strerror(s));
                cas_reply_error(req, 500, "recovery.failed",
                                "the data key was recovered but cannot be sealed to this "
                                "machine (see cofferd's log); send the shares again",
                                NULL);
                return;
        }
        if (!cf_ok(s)) {
                /* Version 2: every share matched its commitment, so the bundle itself is
                 * inconsistent (its check value or commitments were edited). */
                cf_log_err("recovery: the %u shares do not reconstruct the data key (%s); all "
                           "shares were discarded",
                           r->threshold, cf_strerror(s));
                cas_reply_error(req, 400, "recovery.mismatch",
                                "the shares do not reconstruct the data key (a wrong share); all "
                                "shares were discarded, send them again",
                                NULL);
                return;
        }
        cf_log_info("recovery: data key restored and sealed to this machine; leaving recovery mode");
        /* Leave recovery mode only once this reply has reached the holder. */
        evhttp_request_set_on_complete_cb(req, on_reply_sent, NULL);
        cas_reply_json(req, 200, json_pack("{s:b}", "recovered", 1));
}

void cas_api_recovery(struct cas *cas, struct evhttp_request *req)
{
        struct cas_recovery_state *r = cas->recovery;
        enum evhttp_cmd_type m = evhttp_request_get_command(req);

        if (r == NULL) {
                cas_reply_error(req, 404, "recovery.none", "cofferd is not in recovery mode", NULL);
                return;
        }
        if (m == EVHTTP_REQ_GET) {
                json_t *out;
                pthread_mutex_lock(&r->mu);
                out = json_deep_copy(r->bundle);
                json_object_set_new(out, "received", json_integer((json_int_t)r->n));
                pthread_mutex_unlock(&r->mu);
                json_object_del(out, "check");
                cas_reply_json(req, 200, out);
        } else if (m == EVHTTP_REQ_POST) {
                post_share(cas, req);
        } else {
                cas_reply_error(req, 405, "method", "use GET or POST", NULL);
        }
}
