/* The audit chain in cofferd: appends, reads, the signed head and the two endpoints.
 *
 * One process-wide mutex guards the cached heads (the committed one and the tip handed out
 * to queued entries), the queue of entries waiting for their batch, and a store handle of
 * our own. Appends are written through that handle rather than the worker's so that a
 * worker's open transaction can never make an entry (and the cached head) disappear by
 * rolling back; the price is that a caller must not append while its own handle holds the
 * write lock. Reads go through the worker's handle and check every entry against the chain,
 * because the database file is untrusted. */
#include "cas/audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/keyvalq_struct.h>

#include "base/codec.h"
#include "base/log.h"
#include "store/store.h"

#define AUDIT_SEQ_KEY_SIZE 21 /* 20 zero-padded digits and a NUL */
#define AUDIT_KEY_NAME     "ed25519"
#define AUDIT_KEY_PEM_MAX  4096

struct pending;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER; /* a batch was written */
static struct store *g_store; /* the audit module's own handle: init and batch leaders only */
static struct cf_pkey *g_key; /* Ed25519 audit signing key */
static uint8_t g_pub[AUDIT_KEY_SIZE];
static uint64_t g_seq;              /* the last committed entry, 0 for an empty chain */
static char g_hash[AUDIT_HASH_HEX]; /* its hash (audit_zero_hash when empty) */
static uint64_t g_tip_seq;          /* the last seq handed out (>= g_seq) */
static char g_tip_hash[AUDIT_HASH_HEX];
static struct pending *g_first, *g_last; /* queued for the next batch, in seq order */
static bool g_flushing;                  /* a leader is writing a batch */
static bool g_txn;                       /* a caller's transaction holds the tip */
static struct cas *g_cas;                /* for the refusal flusher's metrics */

struct refusal_bucket {
        char *key;       /* compact dump of details with sorted keys; NULL: overflow */
        json_t *details; /* owned */
        uint64_t count;
        int64_t first, last;
};

static pthread_mutex_t g_agg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_agg_cond; /* CLOCK_MONOTONIC: a window opened or a stop */
static pthread_once_t g_agg_once = PTHREAD_ONCE_INIT;
static struct refusal_bucket g_buckets[AUDIT_REFUSAL_KEYS_MAX + 1]; /* the last: overflow */
static size_t g_n_buckets;
static bool g_window_open;
static struct timespec g_window_end;
static pthread_t g_flusher;
static bool g_flusher_running, g_agg_stop;
static unsigned g_window_seconds = AUDIT_REFUSAL_WINDOW;

static void seq_key(uint64_t seq, char out[static AUDIT_SEQ_KEY_SIZE])
{
        snprintf(out, AUDIT_SEQ_KEY_SIZE, "%020llu", (unsigned long long)seq);
}

/* Reads entry seq through st and authenticates it beyond the store's own seal: the value
 * must be an entry in canonical form with that seq. Optionally returns the parsed entry
 * (caller owns it) and its prev link. A missing entry is CF_E_NOT_FOUND (the caller knows
 * whether that is tampering). */
static cf_status load_entry(struct store *st, uint64_t seq, json_t **ret_entry,
                            char hash[static AUDIT_HASH_HEX], char prev[static AUDIT_HASH_HEX],
                            size_t *ret_size)
{
        char key[AUDIT_SEQ_KEY_SIZE];
        struct cf_buf raw, canon;
        json_error_t jerr;
        json_t *e = NULL;
        cf_status s;

        seq_key(seq, key);
        cf_buf_init(&raw, AUDIT_ENTRY_MAX, false);
        cf_buf_init(&canon, AUDIT_ENTRY_MAX, false);
        s = store_get(st, AUDIT_TABLE, key, 1, &raw, NULL);
        if (cf_ok(s)) {
                e = json_loadb((const char *)raw.ptr, raw.size, JSON_REJECT_DUPLICATES, &jerr);
                s = e != NULL && cf_ok(audit_entry_canonical(e, &canon)) &&
                            cf_slice_eq(cf_buf_slice(&raw), cf_buf_slice(&canon)) &&
                            json_integer_value(json_object_get(e, "seq")) == (json_int_t)seq
                        ? CF_OK
                        : cf_fail(CF_E_TAMPERED);
        }
        if (cf_ok(s)) {
                s = audit_hash_hex(cf_buf_slice(&canon), hash);
        }
        if (cf_ok(s)) {
                snprintf(prev, AUDIT_HASH_HEX, "%s", json_string_value(json_object_get(e, "prev")));
        }
        if (cf_ok(s) && ret_size != NULL) {
                *ret_size = canon.size;
        }
        cf_buf_done(&raw);
        cf_buf_done(&canon);
        if (cf_ok(s) && ret_entry != NULL) {
                *ret_entry = TAKE_PTR(e);
        }
        json_decref(e);
        return s;
}

/* ---- init ----------------------------------------------------------------------------- */

static cf_status load_key(struct store *st)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *k = NULL;
        struct cf_buf pem;
        cf_status s;

        cf_buf_init(&pem, AUDIT_KEY_PEM_MAX, true);
        s = store_get(st, AUDIT_KEY_TABLE, AUDIT_KEY_NAME, 1, &pem, NULL);
        if (s.code == CF_E_NOT_FOUND) {
                s = cf_pkey_generate(CF_KEY_ED25519, &k);
                if (cf_ok(s)) {
                        s = cf_pkey_private_pem(k, &pem);
                }
                if (cf_ok(s)) {
                        s = store_put(st, AUDIT_KEY_TABLE, AUDIT_KEY_NAME, 1, cf_buf_slice(&pem));
                }
                if (cf_ok(s)) {
                        cf_log_info("audit: created a new audit key");
                }
        } else if (cf_ok(s)) {
                s = cf_pkey_from_pem(cf_buf_slice(&pem), true, &k);
                if (cf_ok(s) && cf_pkey_type(k) != CF_KEY_ED25519) {
                        s = cf_fail(CF_E_KEY);
                }
        }
        cf_buf_done(&pem);
        TRY(s);
        TRY(cf_pkey_ed25519_raw_public(k, g_pub));
        g_key = TAKE_PTR(k);
        return CF_OK;
}

struct scan_ctx {
        uint64_t n;
};

/* The keys must be exactly 1..N in order (zero padding makes byte order numeric order). */
static cf_status scan_key(void *ctx, const char *key, uint64_t latest)
{
        struct scan_ctx *sc = ctx;
        char want[AUDIT_SEQ_KEY_SIZE];

        seq_key(sc->n + 1, want);
        ENSURE(strcmp(key, want) == 0 && latest == 1, CF_E_TAMPERED);
        sc->n++;
        return CF_OK;
}

static cf_status load_head(struct store *st)
{
        struct scan_ctx sc = {0};
        char prev[AUDIT_HASH_HEX];
        cf_status s = store_list(st, AUDIT_TABLE, "", scan_key, &sc);

        if (s.code == CF_E_TAMPERED) {
                cf_log_err("audit: TAMPERING DETECTED: the stored chain is not entries 1..N "
                           "(entry %llu is missing, or a foreign row was added)",
                           (unsigned long long)(sc.n + 1));
        }
        TRY(s);
        g_seq = sc.n;
        memcpy(g_hash, audit_zero_hash, sizeof(g_hash));
        if (sc.n > 0) {
                s = load_entry(st, sc.n, NULL, g_hash, prev, NULL);
                if (!cf_ok(s)) {
                        char key[AUDIT_SEQ_KEY_SIZE];
                        seq_key(sc.n, key);
                        cf_log_err("audit: cannot authenticate the last entry %s: %s", key,
                                   cf_strerror(s));
                        return s.code == CF_E_NOT_FOUND ? cf_fail(CF_E_TAMPERED) : s;
                }
        }
        return CF_OK;
}

cf_status cas_audit_init(struct cas *cas)
{
        cf_status s;

        cas_audit_done();
        pthread_mutex_lock(&g_agg_lock);
        g_agg_stop = false;
        pthread_mutex_unlock(&g_agg_lock);
        g_cas = cas;
        TRY(store_open_sqlite(cas->store_path, cas->data_key->ptr, &g_store));
        /* Audit commits advance the store state like any other write: the anchor follows. */
        store_set_commit_hook(g_store, cas_anchor_note, &cas->anchor);
        s = load_key(g_store);
        if (cf_ok(s)) {
                s = load_head(g_store);
        }
        if (!cf_ok(s)) {
                if (s.code == CF_E_TAMPERED) {
                        atomic_fetch_add(&cas->metrics.tamper_detected, 1);
                }
                cf_log_err("audit: cannot open the audit chain: %s", cf_strerror(s));
                cas_audit_done();
                return s;
        }
        g_tip_seq = g_seq;
        memcpy(g_tip_hash, g_hash, sizeof(g_tip_hash));
        cf_log_info("audit: chain seq=%llu head=%.16s", (unsigned long long)g_seq, g_hash);
        return CF_OK;
}

void cas_audit_done(void)
{
        cas_audit_flush_refusals(); /* normally done by cas_serve already: then a no-op */
        cf_pkey_free(g_key);
        g_key = NULL;
        store_close(g_store);
        g_store = NULL;
        g_seq = 0;
        g_tip_seq = 0;
        memcpy(g_hash, audit_zero_hash, sizeof(g_hash));
        memcpy(g_tip_hash, audit_zero_hash, sizeof(g_tip_hash));
}

void cas_audit_public_key(uint8_t out[static AUDIT_KEY_SIZE])
{
        memcpy(out, g_pub, AUDIT_KEY_SIZE);
}

/* ---- append ----------------------------------------------------------------------------
 *
 * Group commit: an appender builds its entry on the tip of the chain and queues it, all under
 * g_lock, so seq and prev are assigned in order. Whoever then finds no write in progress
 * becomes the leader and writes everything queued in one store transaction (one fsync for
 * the batch) with g_lock released; the others wait on g_done. A failed batch fails every
 * entry queued on top of it too, since they are chained on the lost ones, and the tip goes
 * back to the committed head. Each pending entry lives in its appender's stack frame, which
 * waits until the leader marks it done. */

struct pending {
        struct pending *next;
        struct cf_buf canon;
        char hash[AUDIT_HASH_HEX];
        uint64_t seq;
        bool done;
        cf_status status;
};

/* Another process sharing the store appended behind our back: find the real head. */
static cf_status resync_locked(void)
{
        char key[AUDIT_SEQ_KEY_SIZE], prev[AUDIT_HASH_HEX], hash[AUDIT_HASH_HEX];
        uint64_t seq = g_seq, v;

        for (;;) {
                seq_key(seq + 1, key);
                cf_status s = store_latest(g_store, AUDIT_TABLE, key, &v);
                if (s.code == CF_E_NOT_FOUND) {
                        break;
                }
                TRY(s);
                ENSURE(seq < AUDIT_SEQ_MAX, CF_E_LIMIT);
                seq++;
        }
        if (seq != g_seq) {
                TRY(load_entry(g_store, seq, NULL, hash, prev, NULL));
                g_seq = seq;
                memcpy(g_hash, hash, sizeof(g_hash));
        }
        return CF_OK;
}

/* Builds the canonical bytes and hash of entry seq linked to prev. */
static cf_status build_entry(uint64_t seq, const char *prev, const char *type, const char *actor,
                             json_t *details, struct cf_buf *canon,
                             char hash[static AUDIT_HASH_HEX])
{
        char when[AUDIT_TIME_SIZE];
        json_t *e;
        cf_status s;

        cf_format_rfc3339((int64_t)time(NULL), when, sizeof(when));
        e = json_pack("{s:I, s:s, s:s, s:s, s:s, s:O}", "seq", (json_int_t)seq, "prev", prev,
                      "time", when, "type", type, "actor", actor, "details", details);
        ENSURE(e != NULL, CF_E_INVALID_ARG); /* only bad UTF-8 or memory exhaustion */
        cf_buf_reset(canon);
        s = audit_entry_canonical(e, canon);
        json_decref(e);
        if (cf_ok(s)) {
                s = audit_hash_hex(cf_buf_slice(canon), hash);
        }
        return s;
}

/* Builds the entry after the tip into p and queues it. */
static cf_status enqueue_locked(const char *type, const char *actor, json_t *details,
                                struct pending *p)
{
        ENSURE(g_store != NULL && g_key != NULL, CF_E_INVALID_ARG);
        ENSURE(g_tip_seq < AUDIT_SEQ_MAX, CF_E_LIMIT);
        TRY(build_entry(g_tip_seq + 1, g_tip_hash, type, actor, details, &p->canon, p->hash));
        p->seq = ++g_tip_seq;
        memcpy(g_tip_hash, p->hash, sizeof(g_tip_hash));
        p->next = NULL;
        p->done = false;
        p->status = CF_OK;
        if (g_last != NULL) {
                g_last->next = p;
        } else {
                g_first = p;
        }
        g_last = p;
        return CF_OK;
}

/* One transaction for the whole batch (the leader only, g_lock not held). */
static cf_status write_batch(const struct pending *first)
{
        char key[AUDIT_SEQ_KEY_SIZE];
        cf_status s;

        TRY(store_begin(g_store));
        s = CF_OK;
        for (const struct pending *p = first; p != NULL && cf_ok(s); p = p->next) {
                seq_key(p->seq, key);
                s = store_put(g_store, AUDIT_TABLE, key, 1, cf_buf_slice(&p->canon));
        }
        if (cf_ok(s)) {
                s = store_commit(g_store);
        } else {
                store_rollback(g_store);
        }
        return s;
}

/* Called with g_lock held and no leader: writes everything queued, marks it done, and wakes
 * the waiters. */
static void flush_locked(void)
{
        struct pending *batch = g_first, *last = g_last, *p, *next;
        cf_status s;

        if (batch == NULL) {
                return;
        }
        g_first = g_last = NULL;
        g_flushing = true;
        pthread_mutex_unlock(&g_lock);
        s = write_batch(batch);
        pthread_mutex_lock(&g_lock);
        if (cf_ok(s)) {
                g_seq = last->seq;
                memcpy(g_hash, last->hash, sizeof(g_hash));
        } else {
                last->next = g_first; /* queued meanwhile, chained on what was lost */
                g_first = g_last = NULL;
                if (s.code == CF_E_EXISTS) {
                        cf_ignore(resync_locked()); /* a failure leaves the old head; retried */
                }
                g_tip_seq = g_seq;
                memcpy(g_tip_hash, g_hash, sizeof(g_tip_hash));
        }
        for (p = batch; p != NULL; p = next) {
                next = p->next;
                p->status = s;
                p->done = true;
        }
        g_flushing = false;
        pthread_cond_broadcast(&g_done);
}

/* The append itself, for a worker or for the refusal flusher (which has no worker). */
static cf_status append_entry(struct cas *cas, const char *type, const char *actor, json_t *details)
{
        struct pending p = {0};
        cf_status s = CF_OK;

        if (type == NULL || actor == NULL || !json_is_object(details)) {
                json_decref(details);
                return cf_fail(CF_E_INVALID_ARG);
        }
        cf_buf_init(&p.canon, AUDIT_ENTRY_MAX, false);
        pthread_mutex_lock(&g_lock);
        /* A state change writing its entry in its own transaction owns the chain's tip. */
        while (g_txn) {
                pthread_cond_wait(&g_done, &g_lock);
        }
        /* A second attempt only after a conflict with another writer of the same store. */
        for (int attempt = 0; attempt < 2; attempt++) {
                s = enqueue_locked(type, actor, details, &p);
                while (cf_ok(s) && !p.done) {
                        if (g_flushing) {
                                pthread_cond_wait(&g_done, &g_lock);
                        } else {
                                flush_locked();
                        }
                }
                if (cf_ok(s)) {
                        s = p.status;
                }
                if (s.code != CF_E_EXISTS) {
                        break;
                }
        }
        pthread_mutex_unlock(&g_lock);
        cf_buf_done(&p.canon);
        json_decref(details);
        if (!cf_ok(s)) {
                if (cas != NULL) {
                        atomic_fetch_add(&cas->metrics.audit_failures, 1);
                        if (s.code == CF_E_TAMPERED) {
                                cas_log_store_error(cas, s, AUDIT_TABLE, "head");
                        }
                }
                cf_log_err("audit: cannot append type=%s: %s", type, cf_strerror(s));
                return s;
        }
        cf_log_debug("audit: appended seq=%llu type=%s", (unsigned long long)p.seq, type);
        return CF_OK;
}

cf_status cas_audit_append(struct cas_worker *w, const char *type, const char *actor,
                           json_t *details)
{
        return append_entry(w != NULL ? w->cas : g_cas, type, actor, details);
}

/* ---- entries written in the caller's transaction ---------------------------------------
 *
 * A state change must not stand without its entry. The caller takes the chain's turn (no
 * batch in flight, nothing queued, other appenders wait), then opens its own transaction,
 * puts its change and its entry through its own handle, and commits: both or neither. The
 * order matters: the turn is taken before the caller's write lock, since a batch leader
 * needs that lock to finish. */

cf_status cas_audit_txn_begin(struct cas_audit_txn *t)
{
        pthread_mutex_lock(&g_lock);
        if (g_store == NULL || g_key == NULL) {
                pthread_mutex_unlock(&g_lock);
                return cf_fail(CF_E_INVALID_ARG);
        }
        while (g_txn || g_flushing || g_first != NULL) {
                if (g_txn || g_flushing) {
                        pthread_cond_wait(&g_done, &g_lock);
                } else {
                        flush_locked();
                }
        }
        g_txn = true;
        t->held = true;
        t->seq = g_seq;
        memcpy(t->hash, g_hash, sizeof(t->hash));
        pthread_mutex_unlock(&g_lock);
        return CF_OK;
}

cf_status cas_audit_txn_put(struct cas_worker *w, struct cas_audit_txn *t, const char *type,
                            const char *actor, json_t *details)
{
        char key[AUDIT_SEQ_KEY_SIZE], hash[AUDIT_HASH_HEX];
        struct cf_buf canon;
        cf_status s;

        if (!t->held || type == NULL || actor == NULL || !json_is_object(details) ||
            t->seq >= AUDIT_SEQ_MAX) {
                json_decref(details);
                return cf_fail(CF_E_INVALID_ARG);
        }
        cf_buf_init(&canon, AUDIT_ENTRY_MAX, false);
        /* g_seq and g_hash cannot move while we hold the turn: no lock needed for t. */
        s = build_entry(t->seq + 1, t->hash, type, actor, details, &canon, hash);
        json_decref(details);
        if (cf_ok(s)) {
                seq_key(t->seq + 1, key);
                s = store_put(w->store, AUDIT_TABLE, key, 1, cf_buf_slice(&canon));
        }
        cf_buf_done(&canon);
        if (!cf_ok(s)) {
                atomic_fetch_add(&w->cas->metrics.audit_failures, 1);
                cf_log_err("audit: cannot write type=%s with its change: %s", type, cf_strerror(s));
                return s;
        }
        t->seq++;
        memcpy(t->hash, hash, sizeof(t->hash));
        return CF_OK;
}

void cas_audit_txn_end(struct cas_audit_txn *t, bool committed)
{
        if (!t->held) {
                return;
        }
        pthread_mutex_lock(&g_lock);
        if (committed && t->seq > g_seq) {
                g_seq = g_tip_seq = t->seq;
                memcpy(g_hash, t->hash, sizeof(g_hash));
                memcpy(g_tip_hash, t->hash, sizeof(g_tip_hash));
                cf_log_debug("audit: appended seq=%llu with its change",
                             (unsigned long long)t->seq);
        }
        g_txn = false;
        t->held = false;
        pthread_cond_broadcast(&g_done);
        pthread_mutex_unlock(&g_lock);
}

/* ---- refused activations, aggregated ---------------------------------------------------
 *
 * Anyone can send evidence that fails; one durable entry per refusal would let anyone fill
 * the disk and the chain. Refusals with the same details are counted in a bucket instead;
 * a window opens with the first refusal and, AUDIT_REFUSAL_WINDOW seconds later (or at
 * shutdown), every bucket becomes one entry with "count", "first" and "last". Past
 * AUDIT_REFUSAL_KEYS_MAX distinct buckets in a window, refusals go to one overflow bucket,
 * so a window writes at most AUDIT_REFUSAL_KEYS_MAX + 1 entries whatever the caller sends. */

static void agg_init(void)
{
        pthread_condattr_t a;

        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&g_agg_cond, &a);
        pthread_condattr_destroy(&a);
}

/* Moves the buckets out (g_agg_lock held); the caller writes and frees them. */
static size_t take_buckets_locked(struct refusal_bucket out[static AUDIT_REFUSAL_KEYS_MAX + 1])
{
        size_t n = 0;

        for (size_t i = 0; i < AUDIT_REFUSAL_KEYS_MAX + 1; i++) {
                if (g_buckets[i].count > 0) {
                        out[n++] = g_buckets[i];
                }
                memset(&g_buckets[i], 0, sizeof(g_buckets[i]));
        }
        g_n_buckets = 0;
        g_window_open = false;
        return n;
}

static void write_buckets(struct refusal_bucket *b, size_t n)
{
        char first[AUDIT_TIME_SIZE], last[AUDIT_TIME_SIZE];

        for (size_t i = 0; i < n; i++) {
                json_t *d = b[i].details;
                cf_format_rfc3339(b[i].first, first, sizeof(first));
                cf_format_rfc3339(b[i].last, last, sizeof(last));
                if (d == NULL) {
                        d = json_pack("{s:s, s:b}", "reason",
                                      "more distinct refusals than one window aggregates",
                                      "overflow", 1);
                }
                if (d != NULL &&
                    (json_object_set_new(d, "count", json_integer((json_int_t)b[i].count)) != 0 ||
                     json_object_set_new(d, "first", json_string(first)) != 0 ||
                     json_object_set_new(d, "last", json_string(last)) != 0)) {
                        json_decref(d);
                        d = NULL;
                }
                if (d == NULL) {
                        atomic_fetch_add(&g_cas->metrics.audit_failures, 1);
                        cf_log_err("audit: lost %llu refused activations (out of memory)",
                                   (unsigned long long)b[i].count);
                } else {
                        cf_ignore(append_entry(g_cas, "activation.refused", "workload", d));
                }
                free(b[i].key);
        }
}

static void *flusher_main(void *arg)
{
        struct refusal_bucket taken[AUDIT_REFUSAL_KEYS_MAX + 1];
        size_t n;

        (void)arg;
        pthread_mutex_lock(&g_agg_lock);
        while (!g_agg_stop) {
                if (!g_window_open) {
                        pthread_cond_wait(&g_agg_cond, &g_agg_lock);
                        continue;
                }
                if (pthread_cond_timedwait(&g_agg_cond, &g_agg_lock, &g_window_end) != ETIMEDOUT ||
                    g_agg_stop) {
                        continue;
                }
                n = take_buckets_locked(taken);
                pthread_mutex_unlock(&g_agg_lock);
                write_buckets(taken, n);
                pthread_mutex_lock(&g_agg_lock);
        }
        pthread_mutex_unlock(&g_agg_lock);
        return NULL;
}

void cas_audit_set_refusal_window(unsigned seconds)
{
        pthread_mutex_lock(&g_agg_lock);
        g_window_seconds = seconds > 0 ? seconds : 1;
        pthread_mutex_unlock(&g_agg_lock);
}

void cas_audit_refused(struct cas_worker *w, json_t *details)
{
        struct refusal_bucket *b = NULL;
        char *key;
        int64_t now = (int64_t)time(NULL);

        pthread_once(&g_agg_once, agg_init);
        if (!json_is_object(details)) {
                json_decref(details);
                atomic_fetch_add(&w->cas->metrics.audit_failures, 1);
                cf_log_err("audit: a refused activation was not recorded (out of memory)");
                return;
        }
        key = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
        pthread_mutex_lock(&g_agg_lock);
        if (!g_flusher_running && !g_agg_stop) {
                g_flusher_running = pthread_create(&g_flusher, NULL, flusher_main, NULL) == 0;
        }
        if (!g_flusher_running) {
                /* Stopped (shutting down) or no thread: one entry, as before. */
                pthread_mutex_unlock(&g_agg_lock);
                free(key);
                char when[AUDIT_TIME_SIZE];
                cf_format_rfc3339(now, when, sizeof(when));
                json_object_set_new(details, "count", json_integer(1));
                json_object_set_new(details, "first", json_string(when));
                json_object_set_new(details, "last", json_string(when));
                cf_ignore(append_entry(w->cas, "activation.refused", "workload", details));
                return;
        }
        for (size_t i = 0; key != NULL && i < g_n_buckets; i++) {
                if (strcmp(g_buckets[i].key, key) == 0) {
                        b = &g_buckets[i];
                        break;
                }
        }
        if (b == NULL && key != NULL && g_n_buckets < AUDIT_REFUSAL_KEYS_MAX) {
                b = &g_buckets[g_n_buckets++];
                b->key = TAKE_PTR(key);
                b->details = TAKE_PTR(details);
        }
        if (b == NULL) {
                b = &g_buckets[AUDIT_REFUSAL_KEYS_MAX]; /* overflow: details dropped */
        }
        if (b->count == 0) {
                b->first = now;
        }
        b->count++;
        b->last = now;
        if (!g_window_open) {
                g_window_open = true;
                clock_gettime(CLOCK_MONOTONIC, &g_window_end);
                g_window_end.tv_sec += (time_t)g_window_seconds;
                pthread_cond_signal(&g_agg_cond);
        }
        pthread_mutex_unlock(&g_agg_lock);
        free(key);
        json_decref(details);
}

void cas_audit_flush_refusals(void)
{
        struct refusal_bucket taken[AUDIT_REFUSAL_KEYS_MAX + 1];
        bool join;
        size_t n;

        pthread_once(&g_agg_once, agg_init);
        pthread_mutex_lock(&g_agg_lock);
        g_agg_stop = true;
        join = g_flusher_running;
        pthread_cond_signal(&g_agg_cond);
        pthread_mutex_unlock(&g_agg_lock);
        if (join) {
                pthread_join(g_flusher, NULL);
        }
        pthread_mutex_lock(&g_agg_lock);
        g_flusher_running = false;
        n = take_buckets_locked(taken);
        pthread_mutex_unlock(&g_agg_lock);
        if (g_store != NULL) {
                write_buckets(taken, n);
        } else {
                for (size_t i = 0; i < n; i++) {
                        free(taken[i].key);
                        json_decref(taken[i].details);
                }
        }
}

/* ---- head and reads ------------------------------------------------------------------- */

cf_status cas_audit_head(json_t **ret_head, char sig_hex[static 2 * AUDIT_SIG_SIZE + 1])
{
        char when[AUDIT_TIME_SIZE];
        struct cf_buf msg, sig;
        json_t *head;
        cf_status s;

        cf_format_rfc3339((int64_t)time(NULL), when, sizeof(when));
        pthread_mutex_lock(&g_lock);
        head = g_key != NULL ? json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)g_seq, "hash",
                                         g_hash, "time", when)
                             : NULL;
        cf_buf_init(&msg, 4096, false);
        cf_buf_init(&sig, 256, false);
        s = head != NULL ? audit_head_message(head, &msg)
                         : cf_fail(g_key == NULL ? CF_E_INVALID_ARG : CF_E_NOMEM);
        if (cf_ok(s)) {
                s = cf_sign(g_key, cf_buf_slice(&msg), &sig);
        }
        pthread_mutex_unlock(&g_lock);
        if (cf_ok(s) && sig.size != AUDIT_SIG_SIZE) {
                s = cf_fail(CF_E_CRYPTO);
        }
        if (cf_ok(s)) {
                cf_hex_encode(sig.ptr, sig.size, sig_hex, 2 * AUDIT_SIG_SIZE + 1);
                *ret_head = TAKE_PTR(head);
        }
        json_decref(head);
        cf_buf_done(&msg);
        cf_buf_done(&sig);
        return s;
}

static cf_status read_one(struct cas_worker *w, uint64_t seq, json_t **ret_entry,
                          char hash[static AUDIT_HASH_HEX], char prev[static AUDIT_HASH_HEX],
                          size_t *ret_size)
{
        char key[AUDIT_SEQ_KEY_SIZE];
        cf_status s = load_entry(w->store, seq, ret_entry, hash, prev, ret_size);

        /* Every entry up to the head was written: a missing one was deleted. */
        if (s.code == CF_E_NOT_FOUND) {
                s = cf_fail(CF_E_TAMPERED);
        }
        if (!cf_ok(s)) {
                seq_key(seq, key);
                cas_log_store_error(w->cas, s, AUDIT_TABLE, key);
        }
        return s;
}

cf_status cas_audit_read(struct cas_worker *w, uint64_t from, uint64_t limit, json_t **ret,
                         uint64_t *ret_head_seq)
{
        char hash[AUDIT_HASH_HEX], prev[AUDIT_HASH_HEX], last[AUDIT_HASH_HEX];
        uint64_t head;
        json_t *list, *e = NULL;
        size_t total = 0;
        cf_status s = CF_OK;

        ENSURE(from >= 1 && limit >= 1, CF_E_INVALID_ARG);
        pthread_mutex_lock(&g_lock);
        head = g_seq;
        pthread_mutex_unlock(&g_lock);
        memcpy(last, audit_zero_hash, sizeof(last));
        if (from > 1 && from - 1 <= head) {
                TRY(read_one(w, from - 1, NULL, last, prev, NULL));
        }
        list = json_array();
        ENSURE(list != NULL, CF_E_NOMEM);
        /* A page stops at limit entries or once it holds AUDIT_PAGE_BYTES. */
        for (uint64_t seq = from;
             seq <= head && seq - from < limit && total < AUDIT_PAGE_BYTES && cf_ok(s); seq++) {
                size_t size = 0;
                s = read_one(w, seq, &e, hash, prev, &size);
                total += size;
                if (cf_ok(s) && strcmp(prev, last) != 0) {
                        /* Each row is sealed, but a row restored from another copy of the
                         * database would still authenticate: the link catches it. */
                        char key[AUDIT_SEQ_KEY_SIZE];
                        seq_key(seq, key);
                        s = cf_fail(CF_E_TAMPERED);
                        cas_log_store_error(w->cas, s, AUDIT_TABLE, key);
                }
                if (cf_ok(s)) {
                        memcpy(last, hash, sizeof(last));
                        s = json_array_append_new(list, TAKE_PTR(e)) == 0 ? CF_OK
                                                                          : cf_fail(CF_E_NOMEM);
                }
                json_decref(e);
                e = NULL;
        }
        if (!cf_ok(s)) {
                json_decref(list);
                return s;
        }
        *ret = list;
        *ret_head_seq = head;
        return CF_OK;
}

/* ---- endpoints ------------------------------------------------------------------------- */

static void api_head(struct cas_worker *w, struct evhttp_request *req)
{
        char sig[2 * AUDIT_SIG_SIZE + 1], key[2 * AUDIT_KEY_SIZE + 1];
        json_t *head = NULL;
        cf_status s = cas_audit_head(&head, sig);

        (void)w;
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "audit head");
                return;
        }
        cf_hex_encode(g_pub, sizeof(g_pub), key, sizeof(key));
        cas_reply_json(req, 200,
                       json_pack("{s:o, s:s, s:s, s:s}", "head", head, "signature", sig,
                                 "audit_key", key, "algorithm", "ed25519"));
}

/* from (default 1) and limit (default AUDIT_PAGE_DEFAULT); any other parameter is refused. */
static cf_status parse_page(struct evhttp_request *req, uint64_t *ret_from, uint64_t *ret_limit)
{
        const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        struct evkeyvalq q;
        struct evkeyval *kv;
        uint64_t from = 1, limit = AUDIT_PAGE_DEFAULT;
        cf_status s = CF_OK;

        TAILQ_INIT(&q);
        if (query == NULL) {
                *ret_from = from;
                *ret_limit = limit;
                return CF_OK;
        }
        if (evhttp_parse_query_str(query, &q) != 0) {
                evhttp_clear_headers(&q);
                return cf_fail(CF_E_SYNTAX);
        }
        TAILQ_FOREACH(kv, &q, next)
        {
                if (!cf_ok(s)) {
                        break;
                }
                if (strcmp(kv->key, "from") == 0) {
                        s = cf_parse_u64(kv->value, 1, AUDIT_SEQ_MAX, &from);
                } else if (strcmp(kv->key, "limit") == 0) {
                        s = cf_parse_u64(kv->value, 1, AUDIT_PAGE_MAX, &limit);
                } else {
                        s = cf_fail(CF_E_SCHEMA);
                }
        }
        evhttp_clear_headers(&q);
        TRY(s);
        *ret_from = from;
        *ret_limit = limit;
        return CF_OK;
}

static void api_entries(struct cas_worker *w, struct evhttp_request *req)
{
        char caller[CF_KEY_ID_HEX];
        uint64_t from = 1, limit = AUDIT_PAGE_DEFAULT, head = 0, n;
        json_t *list = NULL;
        cf_status s;

        if (!cas_request_key_id(req, caller)) {
                cas_reply_error(req, 401, "auth.client_certificate",
                                "this endpoint needs a client certificate (see 'coffer id new')",
                                NULL);
                return;
        }
        if (!cf_ok(parse_page(req, &from, &limit))) {
                cas_reply_error(req, 400, "request.query",
                                "query parameters: from (1 or more) and limit (1 to 1000)", NULL);
                return;
        }
        s = cas_audit_read(w, from, limit, &list, &head);
        if (!cf_ok(s)) {
                cas_reply_status(req, s, "audit read");
                return;
        }
        n = (uint64_t)json_array_size(list);
        cas_reply_json(
            req, 200,
            json_pack("{s:o, s:I, s:o}", "entries", list, "head_seq", (json_int_t)head, "next",
                      from + n <= head ? json_integer((json_int_t)(from + n)) : json_null()));
}

void cas_api_audit(struct cas_worker *w, struct evhttp_request *req, const char *rest)
{
        if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
                cas_reply_error(req, 405, "method", "the audit chain is read with GET", NULL);
        } else if (strcmp(rest, "/head") == 0) {
                api_head(w, req);
        } else if (rest[0] == '\0') {
                api_entries(w, req);
        } else {
                cas_reply_error(req, 404, "not_found",
                                "no such endpoint (/v1/audit or "
                                "/v1/audit/head)",
                                NULL);
        }
}
