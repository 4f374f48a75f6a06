/* The plaintext chunk cache of a volume (shield_volume_set_cache).
 *
 * Why: the kernel's page cache holds ciphertext, so without this every re-read of a chunk
 * costs a pread and an AES-GCM decryption, and every partial write a read-modify-write
 * through both (SQLite re-reads its header on every statement; appends rewrite the last
 * chunk). Only plaintext that was authenticated (or that this process wrote) goes in, and the
 * volume's backing directory is locked to this handle, so a cached chunk is the current
 * content: serving it skips no check that could fail.
 *
 * Layout: `n` slots of one chunk each in one anonymous mapping (MAP_NORESERVE: pages are
 * touched only as slots fill; MADV_DONTDUMP: never in a core dump), a hash of (inode,
 * chunk) -> slot with chained buckets, a per-inode doubly linked list of its slots (so a file
 * is dropped in time proportional to what it has cached), and CLOCK replacement. Slot
 * indices are 1-based so that 0 means "none" in calloc'ed inodes. Every caller holds the
 * volume lock; nothing here fails. */
#include <string.h>
#include <sys/mman.h>

#include "base/mem.h"
#include "shield/shield_internal.h"

struct pc_slot {
        const struct sh_inode *ino; /* NULL: free */
        uint64_t chunk;
        uint32_t hnext;        /* next in the bucket chain, or in the free list */
        uint32_t iprev, inext; /* the owning inode's list */
        bool ref;              /* CLOCK bit */
};

/* Slots fill from the start of the mapping, so huge pages turn ~500 page faults (costly in
 * a virtual machine: 30% of a random-read run) into one. */
#define PC_HUGE ((size_t)2 << 20)

struct sh_pcache {
        uint8_t *data; /* n chunks, PC_HUGE aligned */
        uint8_t *map;  /* the mapping (data rounded down to PC_HUGE) */
        size_t map_len;
        struct pc_slot *slot; /* n + 1; [0] unused */
        uint32_t *bucket;     /* nb heads */
        uint32_t n, nb, fresh, free_head, hand;
};

static uint32_t bucket_of(const struct sh_pcache *pc, const struct sh_inode *ino, uint64_t chunk)
{
        uint64_t h =
            ((uint64_t)(uintptr_t)ino >> 4) * 0x9e3779b97f4a7c15u ^ chunk * 0xc2b2ae3d27d4eb4fu;

        return (uint32_t)(h >> 32) & (pc->nb - 1);
}

static uint8_t *slot_data(const struct sh_pcache *pc, uint32_t i)
{
        return pc->data + (size_t)(i - 1) * SHIELD_CHUNK_SIZE;
}

static uint32_t find(const struct sh_pcache *pc, const struct sh_inode *ino, uint64_t chunk)
{
        for (uint32_t i = pc->bucket[bucket_of(pc, ino, chunk)]; i != 0; i = pc->slot[i].hnext) {
                if (pc->slot[i].ino == ino && pc->slot[i].chunk == chunk) {
                        return i;
                }
        }
        return 0;
}

/* Takes slot i out of its bucket and its inode's list, wipes it and frees it. */
static void unlink_slot(struct sh_pcache *pc, uint32_t i, bool to_free_list)
{
        struct pc_slot *s = &pc->slot[i];
        struct sh_inode *ino = (struct sh_inode *)(uintptr_t)s->ino;
        uint32_t *pp = &pc->bucket[bucket_of(pc, s->ino, s->chunk)];

        while (*pp != i) {
                pp = &pc->slot[*pp].hnext;
        }
        *pp = s->hnext;
        if (s->iprev != 0) {
                pc->slot[s->iprev].inext = s->inext;
        } else {
                ino->pc_head = s->inext;
        }
        if (s->inext != 0) {
                pc->slot[s->inext].iprev = s->iprev;
        }
        ino->pc_n--;
        memset(s, 0, sizeof(*s));
        if (to_free_list) {
                cf_wipe(slot_data(pc, i), SHIELD_CHUNK_SIZE);
                s->hnext = pc->free_head;
                pc->free_head = i;
        }
}

/* A slot to fill: a free one, a never used one, or the CLOCK victim (unlinked, not wiped:
 * it is overwritten at once). */
static uint32_t take_slot(struct sh_pcache *pc)
{
        uint32_t i;

        if (pc->free_head != 0) {
                i = pc->free_head;
                pc->free_head = pc->slot[i].hnext;
                pc->slot[i].hnext = 0;
                return i;
        }
        if (pc->fresh < pc->n) {
                return ++pc->fresh;
        }
        /* Every slot is in use: at most two sweeps find one whose bit is clear. */
        for (;;) {
                pc->hand = pc->hand % pc->n + 1;
                if (!pc->slot[pc->hand].ref) {
                        unlink_slot(pc, pc->hand, false);
                        return pc->hand;
                }
                pc->slot[pc->hand].ref = false;
        }
}

const uint8_t *sh_pc_get(struct shield_volume *v, const struct sh_inode *ino, uint64_t chunk)
{
        uint32_t i;

        if (v->pc == NULL || ino->pc_n == 0) {
                return NULL;
        }
        i = find(v->pc, ino, chunk);
        if (i == 0) {
                return NULL;
        }
        v->pc->slot[i].ref = true;
        return slot_data(v->pc, i);
}

void sh_pc_update(struct shield_volume *v, const struct sh_inode *ino, uint64_t chunk,
                  const uint8_t plain[SHIELD_CHUNK_SIZE])
{
        uint32_t i;

        if (v->pc == NULL || ino->pc_n == 0) {
                return;
        }
        i = find(v->pc, ino, chunk);
        if (i != 0) {
                memcpy(slot_data(v->pc, i), plain, SHIELD_CHUNK_SIZE);
                v->pc->slot[i].ref = true;
        }
}

void sh_pc_put(struct shield_volume *v, struct sh_inode *ino, uint64_t chunk,
               const uint8_t plain[SHIELD_CHUNK_SIZE])
{
        struct sh_pcache *pc = v->pc;
        struct pc_slot *s;
        uint32_t i, b;

        if (pc == NULL) {
                return;
        }
        i = ino->pc_n == 0 ? 0 : find(pc, ino, chunk);
        if (i == 0) {
                i = take_slot(pc);
                s = &pc->slot[i];
                s->ino = ino;
                s->chunk = chunk;
                b = bucket_of(pc, ino, chunk);
                s->hnext = pc->bucket[b];
                pc->bucket[b] = i;
                s->iprev = 0;
                s->inext = ino->pc_head;
                if (ino->pc_head != 0) {
                        pc->slot[ino->pc_head].iprev = i;
                }
                ino->pc_head = i;
                ino->pc_n++;
        }
        pc->slot[i].ref = true;
        memcpy(slot_data(pc, i), plain, SHIELD_CHUNK_SIZE);
}

void sh_pc_drop(struct shield_volume *v, struct sh_inode *ino, uint64_t from, uint64_t to)
{
        struct sh_pcache *pc = v->pc;

        if (pc == NULL || ino->pc_n == 0 || from >= to) {
                return;
        }
        if (to - from <= ino->pc_n) {
                for (uint64_t c = from; c < to; c++) {
                        uint32_t i = find(pc, ino, c);

                        if (i != 0) {
                                unlink_slot(pc, i, true);
                        }
                }
                return;
        }
        for (uint32_t i = ino->pc_head; i != 0;) {
                uint32_t next = pc->slot[i].inext;

                if (pc->slot[i].chunk >= from && pc->slot[i].chunk < to) {
                        unlink_slot(pc, i, true);
                }
                i = next;
        }
}

void sh_pc_forget(struct shield_volume *v, struct sh_inode *ino)
{
        while (v->pc != NULL && ino->pc_head != 0) {
                unlink_slot(v->pc, ino->pc_head, true);
        }
}

/* Wipes every slot ever filled, unmaps, and detaches the cache from every inode. */
void sh_pc_free(struct shield_volume *v)
{
        struct sh_pcache *pc = v->pc;

        if (pc == NULL) {
                return;
        }
        for (uint32_t i = 1; i <= pc->fresh; i++) {
                struct pc_slot *s = &pc->slot[i];

                if (s->ino != NULL) {
                        struct sh_inode *ino = (struct sh_inode *)(uintptr_t)s->ino;

                        ino->pc_head = 0;
                        ino->pc_n = 0;
                }
        }
        cf_wipe(pc->data, (size_t)pc->fresh * SHIELD_CHUNK_SIZE);
        munmap(pc->map, pc->map_len);
        free(pc->slot);
        free(pc->bucket);
        free(pc);
        v->pc = NULL;
}

static CF_FN pcache_create(uint32_t n, struct sh_pcache **ret)
{
        struct sh_pcache *pc = calloc(1, sizeof(*pc));
        uint32_t nb = 64;

        ENSURE(pc != NULL, CF_E_NOMEM);
        while (nb < n && nb < ((uint32_t)1 << 31)) {
                nb <<= 1;
        }
        pc->n = n;
        pc->nb = nb;
        pc->map_len = (size_t)n * SHIELD_CHUNK_SIZE + PC_HUGE;
        pc->slot = calloc((size_t)n + 1, sizeof(*pc->slot));
        pc->bucket = calloc(nb, sizeof(*pc->bucket));
        pc->map = mmap(NULL, pc->map_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (pc->slot == NULL || pc->bucket == NULL || pc->map == MAP_FAILED) {
                if (pc->map != MAP_FAILED) {
                        munmap(pc->map, pc->map_len);
                }
                free(pc->slot);
                free(pc->bucket);
                free(pc);
                return cf_fail(CF_E_NOMEM);
        }
        pc->data = pc->map + (PC_HUGE - (uintptr_t)pc->map % PC_HUGE) % PC_HUGE;
        /* Both best effort: without MADV_DONTDUMP the process still runs with core dumps
         * off (coffer-run), and without huge pages the cache is only slower to fill. */
        (void)madvise(pc->map, pc->map_len, MADV_DONTDUMP);
        (void)madvise(pc->data, (size_t)n * SHIELD_CHUNK_SIZE, MADV_HUGEPAGE);
        *ret = pc;
        return CF_OK;
}

CF_FN shield_volume_set_cache(struct shield_volume *v, size_t bytes)
{
        size_t n = (bytes < SHIELD_CACHE_MAX ? bytes : SHIELD_CACHE_MAX) / SHIELD_CHUNK_SIZE;
        struct sh_pcache *pc = NULL;
        cf_status s = CF_OK;

        cf_assert(pthread_mutex_lock(&v->lock) == 0);
        if (v->pc == NULL || v->pc->n != n) {
                sh_pc_free(v);
                if (n > 0) {
                        s = pcache_create((uint32_t)n, &pc);
                        if (cf_ok(s)) {
                                v->pc = pc;
                        }
                }
        }
        cf_assert(pthread_mutex_unlock(&v->lock) == 0);
        return s;
}
