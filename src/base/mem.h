/* Memory: scope cleanup, ownership transfer, wiping, constant-time comparison, and
 * guarded secret allocations (libsodium: guard pages, canary, mlock, no core dump). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/status.h"

/* Must be called once before any other cf_secret_* call (initialises libsodium). */
CF_FN cf_mem_init(void);

/* Wipes memory in a way the optimiser may not remove. */
void cf_wipe(void *p, size_t n);
/* Constant-time equality of two equal-length buffers. */
bool cf_ct_eq(const void *a, const void *b, size_t n);
/* Wipes n bytes then frees p (heap blocks that held secrets). NULL is a no-op. */
void cf_wipe_free(void *p, size_t n);
/* Wipes a NUL-terminated heap string then frees it. NULL is a no-op. */
void cf_wipe_free_str(char *s);

/* A secret of fixed size in guarded memory. */
struct cf_secret {
        uint8_t *ptr;
        size_t size;
};
CF_FN cf_secret_new(size_t size, struct cf_secret **ret);
/* Wipes and unmaps; returns NULL so callers can write p = cf_secret_free(p). */
struct cf_secret *cf_secret_free(struct cf_secret *s);

/* Scope cleanup (systemd style). */
#define CF_CLEANUP(fn) __attribute__((cleanup(fn)))
#define CF_DEFINE_CLEANUP(type, fn)                                                                \
        static inline void fn##p(type *p)                                                          \
        {                                                                                          \
                if (*p) {                                                                          \
                        fn(*p);                                                                    \
                }                                                                                  \
        }
static inline void cf_freep(void *p)
{
        free(*(void **)p);
}
#define CF_AUTOFREE CF_CLEANUP(cf_freep)
static inline void cf_secret_freep(struct cf_secret **p)
{
        *p = cf_secret_free(*p);
}

/* Returns the value of a pointer variable and NULLs the variable (ownership transfer). */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                typeof(p) tp_ = (p);                                                               \
                (p) = NULL;                                                                        \
                tp_;                                                                               \
        })

/* Wipes a stack array when it goes out of scope: declare right after the variable. */
struct cf_wipe_guard {
        void *p;
        size_t n;
};
static inline void cf_wipe_guard_run(struct cf_wipe_guard *g)
{
        cf_wipe(g->p, g->n);
}
#define CF_WIPE_CAT2(a, b) a##b
#define CF_WIPE_CAT(a, b)  CF_WIPE_CAT2(a, b)
#define CF_WIPE_ON_EXIT(var)                                                                       \
        __attribute__((cleanup(cf_wipe_guard_run), unused)) struct cf_wipe_guard CF_WIPE_CAT(      \
                wipe_guard_, __LINE__) = { &(var), sizeof(var) }

/* Process hardening for programs that hold secrets: no core dumps, not ptrace-able by
 * non-root peers (PR_SET_DUMPABLE=0, RLIMIT_CORE=0). */
CF_FN cf_harden_process(void);

/* malloc/free pair for libraries that may hold secrets in their own allocations (jansson
 * trees and dumps): the free wipes the whole usable block first. */
void *cf_wiping_malloc(size_t n);
void cf_wiping_free(void *p);
