/* A small cache of verified certificate chains (issue 3 §7: parsing one X.509 certificate
 * costs about 118 µs, verifying one RSA-4096 PSS signature more). Keyed by a SHA-256 the
 * caller computes over everything the chain depends on (the collateral bytes and the
 * leaf-selection inputs); only chains whose every time-independent check passed are stored,
 * and validity windows are re-checked at each call, so a hit never changes an outcome. One
 * process-wide mutex guards it; entries are deep-copied in and out, so no caller holds a
 * pointer into the cache. */
#include "attest/snp/snp_internal.h"

#include <pthread.h>
#include <string.h>

struct cache_entry {
        bool used;
        uint8_t key[CF_SHA256_SIZE];
        uint64_t last_use;
        struct snp_chain chain;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry g_entries[SNP_CACHE_ENTRIES];
static uint64_t g_clock;
static uint64_t g_hits;

bool snp_cache_get(const uint8_t key[static CF_SHA256_SIZE], struct snp_chain *out)
{
        bool hit = false;

        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < SNP_CACHE_ENTRIES; i++) {
                struct cache_entry *e = &g_entries[i];
                if (e->used && memcmp(e->key, key, CF_SHA256_SIZE) == 0) {
                        hit = cf_ok(snp_chain_copy(&e->chain, out));
                        if (hit) {
                                e->last_use = ++g_clock;
                                g_hits++;
                        }
                        break;
                }
        }
        pthread_mutex_unlock(&g_lock);
        return hit;
}

void snp_cache_put(const uint8_t key[static CF_SHA256_SIZE], const struct snp_chain *c)
{
        struct cache_entry *victim = &g_entries[0];
        struct snp_chain copy;

        if (!c->ok) {
                return;
        }
        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < SNP_CACHE_ENTRIES; i++) {
                struct cache_entry *e = &g_entries[i];
                if (e->used && memcmp(e->key, key, CF_SHA256_SIZE) == 0) {
                        pthread_mutex_unlock(&g_lock);
                        return; /* another thread stored it first */
                }
                if (!e->used || e->last_use < victim->last_use) {
                        victim = e;
                }
                if (!e->used) {
                        break;
                }
        }
        /* A failed copy just leaves the slot empty: the cache is an optimisation. */
        if (cf_ok(snp_chain_copy(c, &copy))) {
                if (victim->used) {
                        snp_chain_done(&victim->chain);
                }
                victim->used = true;
                memcpy(victim->key, key, CF_SHA256_SIZE);
                victim->last_use = ++g_clock;
                victim->chain = copy;
        }
        pthread_mutex_unlock(&g_lock);
}

void snp_cache_clear(void)
{
        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < SNP_CACHE_ENTRIES; i++) {
                if (g_entries[i].used) {
                        snp_chain_done(&g_entries[i].chain);
                }
                g_entries[i] = (struct cache_entry){0};
        }
        pthread_mutex_unlock(&g_lock);
}

uint64_t snp_cache_hits(void)
{
        uint64_t h;

        pthread_mutex_lock(&g_lock);
        h = g_hits;
        pthread_mutex_unlock(&g_lock);
        return h;
}
