/* The Intel verifier's bounded, thread-safe cache of immutable parsed objects (internal). */
#pragma once

#include <stdint.h>

#include "base/status.h"

enum intel_cache_kind { INTEL_CACHE_CHAIN = 0, INTEL_CACHE_COLL = 1, INTEL_CACHE_KEY = 2 };
#define INTEL_CACHE_KINDS 3

struct intel_cached;

/* A new reference to the entry for key, or NULL. Release it with intel_cache_release. */
struct intel_cached *intel_cache_get(enum intel_cache_kind kind, const uint8_t key[32]);
/* Inserts obj (consumed: freed with free_fn when the last reference goes, or at once on
 * failure), evicting the least recently used entry; *ret is the caller's reference. */
CF_FN intel_cache_put(enum intel_cache_kind kind, const uint8_t key[32], void *obj,
                      void (*free_fn)(void *), struct intel_cached **ret);
/* The cached object (borrowed while the reference is held). */
void *intel_cached_obj(const struct intel_cached *e);
/* Drops a reference (NULL is a no-op). */
void intel_cache_release(struct intel_cached *e);
