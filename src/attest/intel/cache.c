/* A small process-wide cache of parsed, signature-checked PCK chains and collateral sets,
 * keyed by SHA-256 of their bytes. Parsing one certificate costs more than two P-256
 * verifies, so warm verification reuses these objects. Cached objects are immutable after
 * they are built; reference counts let an entry be evicted while a verifier still uses it. */
#include "attest/intel/intel_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "attest/intel/intel.h"

#define CACHE_SLOTS 32u /* per kind: bounded memory, LRU eviction */

struct intel_cached {
        unsigned refs;
        void *obj;
        void (*free_fn)(void *);
};

struct slot {
        uint8_t key[32];
        struct intel_cached *entry; /* NULL: empty */
        uint64_t stamp;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot g_slots[INTEL_CACHE_KINDS][CACHE_SLOTS];
static uint64_t g_clock;

/* Drops one reference; the caller holds g_lock. */
static void unref_locked(struct intel_cached *e)
{
        if (--e->refs == 0) {
                e->free_fn(e->obj);
                free(e);
        }
}

struct intel_cached *intel_cache_get(enum intel_cache_kind kind, const uint8_t key[32])
{
        struct intel_cached *found = NULL;

        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < CACHE_SLOTS; i++) {
                struct slot *s = &g_slots[kind][i];
                if (s->entry != NULL && memcmp(s->key, key, 32) == 0) {
                        s->stamp = ++g_clock;
                        found = s->entry;
                        found->refs++;
                        break;
                }
        }
        pthread_mutex_unlock(&g_lock);
        return found;
}

cf_status intel_cache_put(enum intel_cache_kind kind, const uint8_t key[32], void *obj,
                          void (*free_fn)(void *), struct intel_cached **ret)
{
        struct intel_cached *e = calloc(1, sizeof(*e));
        struct slot *victim;

        if (e == NULL) {
                free_fn(obj);
                return cf_fail(CF_E_NOMEM);
        }
        e->obj = obj;
        e->free_fn = free_fn;
        e->refs = 2; /* the cache and the caller */
        pthread_mutex_lock(&g_lock);
        victim = &g_slots[kind][0];
        for (size_t i = 0; i < CACHE_SLOTS; i++) {
                struct slot *s = &g_slots[kind][i];
                if (s->entry == NULL) {
                        victim = s;
                        break;
                }
                if (s->stamp < victim->stamp) {
                        victim = s;
                }
        }
        if (victim->entry != NULL) {
                unref_locked(victim->entry);
        }
        memcpy(victim->key, key, 32);
        victim->entry = e;
        victim->stamp = ++g_clock;
        pthread_mutex_unlock(&g_lock);
        *ret = e;
        return CF_OK;
}

void *intel_cached_obj(const struct intel_cached *e)
{
        return e->obj;
}

void intel_cache_release(struct intel_cached *e)
{
        if (e == NULL) {
                return;
        }
        pthread_mutex_lock(&g_lock);
        unref_locked(e);
        pthread_mutex_unlock(&g_lock);
}

void intel_cache_clear(void)
{
        pthread_mutex_lock(&g_lock);
        for (size_t k = 0; k < INTEL_CACHE_KINDS; k++) {
                for (size_t i = 0; i < CACHE_SLOTS; i++) {
                        if (g_slots[k][i].entry != NULL) {
                                unref_locked(g_slots[k][i].entry);
                        }
                        g_slots[k][i] = (struct slot){0};
                }
        }
        pthread_mutex_unlock(&g_lock);
}
