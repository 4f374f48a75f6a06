/* Chunk nonces from a pool of random bytes (sh_nonce).
 *
 * Why: every sealed chunk needs a fresh 96-bit random nonce, and a getrandom system call
 * per 4 KiB write was a quarter of the shield's system calls on random writes. The pool is
 * filled from the kernel's generator 4 KiB at a time.
 *
 * Fork: a child that inherited the pool would hand out the parent's next nonces under the
 * same file keys, which breaks AES-GCM. The pool lives in a page marked MADV_WIPEONFORK, so
 * a forked child finds it zeroed (no bytes available) and refills; where the kernel refuses
 * that mark, no pool is used and every nonce comes from cf_random. A vfork child shares the
 * parent's memory, pool included, so the two never hand out the same bytes. Callers hold
 * the volume lock; the pool is per volume. */
#include <string.h>
#include <sys/mman.h>

#include "base/mem.h"
#include "shield/shield_internal.h"

#define POOL_SIZE ((size_t)4096)

struct sh_nonce_pool {
        uint32_t avail; /* unused bytes at the end of bytes[]; 0 after a fork (wiped) */
        uint8_t bytes[POOL_SIZE - 8];
};

_Static_assert(sizeof(struct sh_nonce_pool) <= POOL_SIZE, "one page");

CF_FN sh_nonce(struct shield_volume *v, uint8_t out[SH_NONCE_SIZE])
{
        struct sh_nonce_pool *p = v->nonces;

        if (p == NULL && !v->no_pool) {
                void *m = mmap(NULL, POOL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);

                if (m == MAP_FAILED) {
                        v->no_pool = true;
                } else if (madvise(m, POOL_SIZE, MADV_WIPEONFORK) != 0 ||
                           madvise(m, POOL_SIZE, MADV_DONTDUMP) != 0) {
                        munmap(m, POOL_SIZE);
                        v->no_pool = true;
                } else {
                        p = v->nonces = m;
                }
        }
        if (p == NULL) {
                return cf_random(out, SH_NONCE_SIZE);
        }
        if (p->avail < SH_NONCE_SIZE) {
                TRY(cf_random(p->bytes, sizeof(p->bytes)));
                p->avail = (uint32_t)sizeof(p->bytes);
        }
        p->avail -= SH_NONCE_SIZE;
        memcpy(out, p->bytes + p->avail, SH_NONCE_SIZE);
        cf_wipe(p->bytes + p->avail, SH_NONCE_SIZE); /* a handed-out nonce is not kept */
        return CF_OK;
}

void sh_nonce_free(struct shield_volume *v)
{
        if (v->nonces != NULL) {
                cf_wipe(v->nonces, POOL_SIZE);
                munmap(v->nonces, POOL_SIZE);
                v->nonces = NULL;
        }
}
