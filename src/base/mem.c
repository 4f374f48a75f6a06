#include "base/mem.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sodium.h>

cf_status cf_mem_init(void)
{
        ENSURE(sodium_init() >= 0, CF_E_INTERNAL);
        return CF_OK;
}

void cf_wipe(void *p, size_t n)
{
        if (p != NULL && n > 0) {
                sodium_memzero(p, n);
        }
}

bool cf_ct_eq(const void *a, const void *b, size_t n)
{
        return sodium_memcmp(a, b, n) == 0;
}

void cf_wipe_free(void *p, size_t n)
{
        if (p == NULL) {
                return;
        }
        cf_wipe(p, n);
        free(p);
}

void cf_wipe_free_str(char *s)
{
        if (s == NULL) {
                return;
        }
        cf_wipe_free(s, strlen(s));
}

cf_status cf_secret_new(size_t size, struct cf_secret **ret)
{
        struct cf_secret *s;

        ENSURE(size > 0, CF_E_INVALID_ARG);
        s = calloc(1, sizeof(*s));
        ENSURE(s != NULL, CF_E_NOMEM);
        s->ptr = sodium_malloc(size);
        if (s->ptr == NULL) {
                free(s);
                return cf_fail(CF_E_NOMEM);
        }
        s->size = size;
        memset(s->ptr, 0, size);
        *ret = s;
        return CF_OK;
}

struct cf_secret *cf_secret_free(struct cf_secret *s)
{
        if (s == NULL) {
                return NULL;
        }
        sodium_free(s->ptr); /* wipes before unmapping */
        free(s);
        return NULL;
}

cf_status cf_harden_process(void)
{
        struct rlimit no_core = { 0, 0 };

        TRY_ERRNO(setrlimit(RLIMIT_CORE, &no_core));
        TRY_ERRNO(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0));
        return CF_OK;
}

void *cf_wiping_malloc(size_t n)
{
        return malloc(n);
}

void cf_wiping_free(void *p)
{
        if (p == NULL) {
                return;
        }
        cf_wipe(p, malloc_usable_size(p));
        free(p);
}
