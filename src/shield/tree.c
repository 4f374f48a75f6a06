/* File contents: 4 KiB chunks sealed with AES-256-GCM under a per-file key, and the file's
 * authenticated tree (docs/formats/volume.md, "Files").
 *
 * Every leaf entry holds a chunk's nonce, GCM tag, write version and slot; every inner
 * entry holds the SHA-256 of a child node; the root entry lives in the sealed manifest.
 * A read walks root -> leaf, checking each node's hash against its parent's entry, then
 * opens the chunk with the leaf's nonce and tag; nothing is returned before both pass.
 *
 * Crash consistency without a journal: every chunk and node has two slots. A write goes
 * to the slot the last committed state does not reference (or to the slot already written
 * since that commit), so the committed manifest always names intact bytes.
 *
 * Verified nodes are cached (SHIELD_CACHE_NODES per file). A write marks its leaf and all
 * its ancestors dirty; dirty nodes are never evicted and are hashed and written bottom-up
 * in sh_file_flush, so many writes under one node cost one hash of the path.
 * Invariant: a dirty node's ancestors are cached and dirty.
 *
 * The volume lock is held by every caller of this file's functions. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/mem.h"
#include "crypto/crypto.h"
#include "shield/shield_internal.h"

#define NODE_DOMAIN "coffer-shield-node-v1"
/* Reads of this size or more do not fill the plaintext cache (they still use it): a file
 * streamed through a large buffer would only evict what small reads keep coming back to,
 * at the cost of a copy per chunk. */
#define PC_STREAM_BYTES ((size_t)64 << 10)

struct sh_node {
        uint64_t index;
        uint8_t level;
        bool valid; /* in the hash chains */
        bool dirty;
        bool ref; /* clock bit */
        int32_t next;
        struct sh_entry e[SH_FANOUT];
};

struct sh_state {
        void *hd; /* data backing file */
        void *ht; /* tree backing file */
        EVP_CIPHER_CTX *enc, *dec;
        struct sh_node *nodes[SHIELD_CACHE_NODES];
        uint32_t n_nodes, hand;
        int32_t buckets[SH_BUCKETS];
        uint64_t flush_gen;
        bool d_unsynced; /* the data file was written since its last fsync */
        bool t_unsynced; /* the tree file likewise */
        uint8_t *io;     /* SH_RUN_CHUNKS chunks of ciphertext (runs), allocated on first use */
};

static const char hexdig[] = "0123456789abcdef";

void sh_backing_name(const uint8_t id[SH_ID_SIZE], char kind, char out[SH_ID_SIZE * 2 + 3])
{
        for (unsigned i = 0; i < SH_ID_SIZE; i++) {
                out[2 * i] = hexdig[id[i] >> 4];
                out[2 * i + 1] = hexdig[id[i] & 15];
        }
        out[2 * SH_ID_SIZE] = '.';
        out[2 * SH_ID_SIZE + 1] = kind;
        out[2 * SH_ID_SIZE + 2] = 0;
}

CF_FN sh_file_key(const uint8_t vkey[SHIELD_KEY_SIZE], const uint8_t id[SH_ID_SIZE],
                  uint8_t out[CF_AEAD_KEY_SIZE])
{
        uint8_t info[4 + SH_ID_SIZE];

        memcpy(info, "file", 4);
        memcpy(info + 4, id, SH_ID_SIZE);
        return cf_hkdf_sha256(cf_slice_make(vkey, SHIELD_KEY_SIZE),
                              cf_slice_str("coffer-shield-v1"), cf_slice_make(info, sizeof(info)),
                              out, CF_AEAD_KEY_SIZE);
}

static void put_u64le(uint8_t *p, uint64_t v)
{
        for (unsigned i = 0; i < 8; i++) {
                p[i] = (uint8_t)(v >> (8 * i));
        }
}

/* ---- node cache ------------------------------------------------------------------- */

static uint32_t bucket_of(uint8_t level, uint64_t index)
{
        uint64_t h = (index * 0x9e3779b97f4a7c15u) ^ ((uint64_t)level << 59);

        return (uint32_t)(h >> 40) & (SH_BUCKETS - 1);
}

static struct sh_node *cache_find(struct sh_state *s, uint8_t level, uint64_t index)
{
        for (int32_t i = s->buckets[bucket_of(level, index)]; i >= 0; i = s->nodes[i]->next) {
                struct sh_node *n = s->nodes[i];

                if (n->level == level && n->index == index) {
                        n->ref = true;
                        return n;
                }
        }
        return NULL;
}

static void cache_unlink(struct sh_state *s, uint32_t slot)
{
        struct sh_node *n = s->nodes[slot];
        int32_t *pp;

        if (!n->valid) {
                return;
        }
        pp = &s->buckets[bucket_of(n->level, n->index)];
        while (*pp >= 0 && *pp != (int32_t)slot) {
                pp = &s->nodes[*pp]->next;
        }
        if (*pp == (int32_t)slot) {
                *pp = n->next;
        }
        n->valid = false;
}

static void cache_drop(struct sh_state *s, struct sh_node *n)
{
        for (uint32_t i = 0; i < s->n_nodes; i++) {
                if (s->nodes[i] == n) {
                        cache_unlink(s, i);
                        n->dirty = false;
                        n->ref = false;
                        return;
                }
        }
}

/* A clean, unreferenced slot (clock), or -1. */
static int64_t cache_victim(struct sh_state *s)
{
        for (uint32_t step = 0; step < 2 * SHIELD_CACHE_NODES; step++) {
                uint32_t i = s->hand;
                struct sh_node *n = s->nodes[i];

                s->hand = (s->hand + 1) % s->n_nodes;
                if (!n->valid) {
                        return i;
                }
                if (n->dirty) {
                        continue;
                }
                if (n->ref) {
                        n->ref = false;
                        continue;
                }
                return i;
        }
        return -1;
}

static CF_FN flush_nodes(struct shield_volume *v, struct sh_inode *ino);

/* A cache slot for (level, index), zeroed and linked. May flush the file's dirty nodes
 * when every cached node is dirty; never evicts a dirty node. */
static CF_FN cache_alloc(struct shield_volume *v, struct sh_inode *ino, uint8_t level,
                         uint64_t index, struct sh_node **ret)
{
        struct sh_state *s = ino->state;
        int64_t slot;
        struct sh_node *n;
        uint32_t b;

        if (s->n_nodes < SHIELD_CACHE_NODES) {
                n = malloc(sizeof(*n));
                ENSURE(n != NULL, CF_E_NOMEM);
                slot = s->n_nodes;
                s->nodes[s->n_nodes++] = n;
        } else {
                slot = cache_victim(s);
                if (slot < 0) {
                        TRY(flush_nodes(v, ino));
                        slot = cache_victim(s);
                        ENSURE(slot >= 0, CF_E_INTERNAL);
                }
                cache_unlink(s, (uint32_t)slot);
                n = s->nodes[slot];
        }
        memset(n, 0, sizeof(*n));
        n->level = level;
        n->index = index;
        n->valid = true;
        n->ref = true;
        b = bucket_of(level, index);
        n->next = s->buckets[b];
        s->buckets[b] = (int32_t)slot;
        *ret = n;
        return CF_OK;
}

/* ---- nodes ------------------------------------------------------------------------ */

static CF_FN node_hash(const struct sh_inode *ino, uint8_t level, uint64_t index,
                       const uint8_t bytes[SH_NODE_SIZE], uint8_t out[CF_SHA256_SIZE])
{
        uint8_t where[9];
        struct cf_slice parts[4];

        where[0] = level;
        put_u64le(where + 1, index);
        parts[0] = cf_slice_str(NODE_DOMAIN);
        parts[1] = cf_slice_make(ino->id, SH_ID_SIZE);
        parts[2] = cf_slice_make(where, sizeof(where));
        parts[3] = cf_slice_make(bytes, SH_NODE_SIZE);
        return cf_sha256(parts, 4, out);
}

static unsigned entry_slot(const struct sh_entry *e)
{
        return (e->flags & SH_ENTRY_F_SLOT) ? 1u : 0u;
}

/* The slot to write for an object whose current entry is e: the same slot if it was
 * written since the last commit (pending version), else the other one. */
static unsigned choose_slot(const struct sh_entry *e, uint64_t pending)
{
        if (e->version == pending) {
                return entry_slot(e);
        }
        if (e->version == 0) {
                return 0;
        }
        return 1u - entry_slot(e);
}

/* Reads node (level, index) from the tree file and checks it against its parent's entry
 * e: CF_E_TRUNCATED (short file), CF_E_TAMPERED (hash), CF_E_MALFORMED. */
static CF_FN node_read(struct shield_volume *v, struct sh_inode *ino, void *ht, uint8_t level,
                       uint64_t index, const struct sh_entry *e, struct sh_entry out[SH_FANOUT])
{
        uint8_t bytes[SH_NODE_SIZE], h[CF_SHA256_SIZE];
        size_t got = 0;

        TRY(v->ops->pread(v->st, ht, bytes, sizeof(bytes),
                          sh_node_offset(level, index, entry_slot(e)), &got));
        ENSURE(got == sizeof(bytes), CF_E_TRUNCATED);
        TRY(node_hash(ino, level, index, bytes, h));
        ENSURE(cf_ct_eq(h, e->data, sizeof(h)), CF_E_TAMPERED);
        return sh_node_decode(cf_slice_make(bytes, sizeof(bytes)), level == 0, out);
}

/* The verified node (level, index), loading its ancestors as needed. */
static CF_FN load_node(struct shield_volume *v, struct sh_inode *ino, uint8_t level, uint64_t index,
                       struct sh_node **ret)
{
        struct sh_state *s = ino->state;
        struct sh_node *n = cache_find(s, level, index);
        struct sh_entry e;
        cf_status st;

        if (n != NULL) {
                *ret = n;
                return CF_OK;
        }
        if (level + 1u == ino->height) {
                ENSURE(index == 0, CF_E_INTERNAL);
                e = ino->root;
        } else {
                struct sh_node *p;

                ENSURE(level + 1u < ino->height, CF_E_INTERNAL);
                TRY(load_node(v, ino, (uint8_t)(level + 1), index >> SH_FANOUT_SHIFT, &p));
                e = p->e[index & (SH_FANOUT - 1)]; /* a copy: p may be evicted below */
        }
        TRY(cache_alloc(v, ino, level, index, &n));
        if (e.flags & SH_ENTRY_F_PRESENT) {
                st = node_read(v, ino, s->ht, level, index, &e, n->e);
                if (!cf_ok(st)) {
                        cache_drop(s, n);
                        return st;
                }
        }
        *ret = n;
        return CF_OK;
}

/* Writes every dirty node, level by level from the leaves, into its slot and updates the
 * parent's entry (or the root entry). */
static CF_FN flush_nodes(struct shield_volume *v, struct sh_inode *ino)
{
        struct sh_state *s = ino->state;
        uint64_t pending = ino->version + 1;
        uint8_t bytes[SH_NODE_SIZE];

        for (uint8_t level = 0; level < ino->height; level++) {
                for (uint32_t i = 0; i < s->n_nodes; i++) {
                        struct sh_node *n = s->nodes[i];
                        struct sh_entry *pe;
                        unsigned slot;

                        if (!n->valid || !n->dirty || n->level != level) {
                                continue;
                        }
                        if (level + 1u == ino->height) {
                                pe = &ino->root;
                        } else {
                                struct sh_node *p = cache_find(s, (uint8_t)(level + 1),
                                                               n->index >> SH_FANOUT_SHIFT);

                                ENSURE(p != NULL && p->dirty, CF_E_INTERNAL);
                                pe = &p->e[n->index & (SH_FANOUT - 1)];
                        }
                        slot = choose_slot(pe, pending);
                        sh_node_encode(n->e, bytes);
                        s->t_unsynced = true;
                        sh_journal_note(v, ino, SH_JP_TREE, sh_node_offset(level, n->index, slot),
                                        bytes, sizeof(bytes));
                        TRY(v->ops->pwrite(v->st, s->ht, bytes, sizeof(bytes),
                                           sh_node_offset(level, n->index, slot)));
                        memset(pe, 0, sizeof(*pe));
                        TRY(node_hash(ino, level, n->index, bytes, pe->data));
                        pe->version = pending;
                        pe->flags = (uint8_t)(SH_ENTRY_F_PRESENT | (slot ? SH_ENTRY_F_SLOT : 0));
                        n->dirty = false;
                }
        }
        s->flush_gen++;
        return CF_OK;
}

/* Loads the path to chunk's leaf and marks it dirty from the root down. A flush while
 * loading cleans nodes already marked, so the walk restarts. */
static CF_FN path_dirty(struct shield_volume *v, struct sh_inode *ino, uint64_t chunk,
                        struct sh_node **ret)
{
        struct sh_state *s = ino->state;
        struct sh_node *n = NULL;
        unsigned tries = 0;

retry:
        ENSURE(tries++ < 4, CF_E_INTERNAL);
        uint64_t gen = s->flush_gen;

        for (int level = ino->height - 1; level >= 0; level--) {
                TRY(load_node(v, ino, (uint8_t)level,
                              chunk >> (SH_FANOUT_SHIFT * (unsigned)(level + 1)), &n));
                if (s->flush_gen != gen) {
                        goto retry;
                }
                n->dirty = true;
        }
        ENSURE(n != NULL, CF_E_INTERNAL);
        *ret = n;
        return CF_OK;
}

/* Grows the tree so it covers `chunks` chunks. A new root takes the old root's entry as
 * its first child. Heights never shrink (so a slot history is never lost). */
static CF_FN ensure_height(struct shield_volume *v, struct sh_inode *ino, uint64_t chunks)
{
        uint8_t need = sh_height_for(chunks);

        ENSURE(chunks <= sh_capacity(SH_LEVELS_MAX), CF_E_LIMIT);
        while (ino->height < need) {
                struct sh_node *old = NULL, *n;

                if (ino->height > 0) {
                        old = cache_find(ino->state, (uint8_t)(ino->height - 1), 0);
                }
                if (!(ino->root.flags & SH_ENTRY_F_PRESENT) && (old == NULL || !old->dirty)) {
                        /* Nothing below: the new root is an empty node too. */
                        ino->height++;
                        continue;
                }
                TRY(cache_alloc(v, ino, ino->height, 0, &n));
                n->e[0] = ino->root; /* read after cache_alloc, which may flush */
                n->dirty = true;
                memset(&ino->root, 0, sizeof(ino->root));
                ino->height++;
        }
        return CF_OK;
}

/* ---- chunks ----------------------------------------------------------------------- */

static void chunk_aad(const struct sh_inode *ino, uint64_t chunk, uint64_t version,
                      uint8_t aad[SH_ID_SIZE + 16])
{
        memcpy(aad, ino->id, SH_ID_SIZE);
        put_u64le(aad + SH_ID_SIZE, chunk);
        put_u64le(aad + SH_ID_SIZE + 8, version);
}

/* Opens the ciphertext ct of chunk `chunk`, described by leaf entry e (present), into
 * out; out is wiped on failure, so unauthenticated plaintext is never released. */
static CF_FN chunk_decrypt(const struct sh_inode *ino, EVP_CIPHER_CTX *dec, uint64_t chunk,
                           const struct sh_entry *e, const uint8_t *ct,
                           uint8_t out[SHIELD_CHUNK_SIZE])
{
        uint8_t aad[SH_ID_SIZE + 16], tag[SH_GCM_TAG_SIZE];
        int n = 0, fin = 0;
        bool ok;

        chunk_aad(ino, chunk, e->version, aad);
        memcpy(tag, e->data + SH_NONCE_SIZE, sizeof(tag));
        ok = EVP_DecryptInit_ex(dec, NULL, NULL, NULL, e->data) == 1 &&
             EVP_DecryptUpdate(dec, NULL, &n, aad, (int)sizeof(aad)) == 1 &&
             EVP_DecryptUpdate(dec, out, &n, ct, (int)SHIELD_CHUNK_SIZE) == 1 &&
             EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_TAG, (int)sizeof(tag), tag) == 1 &&
             EVP_DecryptFinal_ex(dec, out + n, &fin) == 1;
        if (!ok) {
                cf_wipe(out, SHIELD_CHUNK_SIZE);
                return cf_fail(CF_E_MAC_INVALID);
        }
        return CF_OK;
}

/* Opens chunk `chunk` described by leaf entry e into out (wiped on failure). */
static CF_FN chunk_open(struct shield_volume *v, struct sh_inode *ino, void *hd,
                        EVP_CIPHER_CTX *dec, uint64_t chunk, const struct sh_entry *e,
                        uint8_t out[SHIELD_CHUNK_SIZE])
{
        uint8_t ct[SHIELD_CHUNK_SIZE];
        size_t got = 0;

        if (!(e->flags & SH_ENTRY_F_PRESENT)) {
                memset(out, 0, SHIELD_CHUNK_SIZE);
                return CF_OK;
        }
        TRY(v->ops->pread(v->st, hd, ct, sizeof(ct), sh_chunk_offset(chunk, entry_slot(e)), &got));
        ENSURE(got == sizeof(ct), CF_E_TRUNCATED);
        return chunk_decrypt(ino, dec, chunk, e, ct, out);
}

static CF_FN read_chunk(struct shield_volume *v, struct sh_inode *ino, uint64_t chunk,
                        uint8_t out[SHIELD_CHUNK_SIZE])
{
        struct sh_node *leaf;
        const struct sh_entry *e;
        const uint8_t *hit;

        if (chunk >= sh_capacity(ino->height)) {
                memset(out, 0, SHIELD_CHUNK_SIZE);
                return CF_OK;
        }
        hit = sh_pc_get(v, ino, chunk);
        if (hit != NULL) {
                memcpy(out, hit, SHIELD_CHUNK_SIZE);
                return CF_OK;
        }
        TRY(load_node(v, ino, 0, chunk >> SH_FANOUT_SHIFT, &leaf));
        e = &leaf->e[chunk & (SH_FANOUT - 1)];
        TRY(chunk_open(v, ino, ino->state->hd, ino->state->dec, chunk, e, out));
        if (e->flags & SH_ENTRY_F_PRESENT) {
                sh_pc_put(v, ino, chunk, out);
        }
        return CF_OK;
}

static CF_FN io_buffer(struct sh_state *s)
{
        if (s->io == NULL) {
                s->io = malloc((size_t)SH_RUN_CHUNKS * SHIELD_CHUNK_SIZE);
                ENSURE(s->io != NULL, CF_E_NOMEM);
        }
        return CF_OK;
}

/* Reads chunks [first, last] (last < capacity) into dst, which receives the plaintext of
 * bytes [skip, skip + len) of that range. Chunks that lie next to each other on disk (one
 * leaf, present, one slot) are read with one pread and verified against the leaf one by
 * one; full chunks are decrypted straight into dst. With keep, each chunk it authenticated
 * also goes into the plaintext cache. Reports through *ret_n how many bytes of dst it filled
 * (at least one chunk's worth). */
static CF_FN read_run(struct shield_volume *v, struct sh_inode *ino, uint64_t first, uint64_t last,
                      size_t skip, size_t len, uint8_t *dst, uint8_t tmp[SHIELD_CHUNK_SIZE],
                      bool keep, size_t *ret_n)
{
        struct sh_state *s = ino->state;
        struct sh_node *leaf;
        const struct sh_entry *e0;
        uint64_t end = first + 1, leaf_end = ((first >> SH_FANOUT_SHIFT) + 1) << SH_FANOUT_SHIFT;
        size_t got = 0, done = 0;

        TRY(load_node(v, ino, 0, first >> SH_FANOUT_SHIFT, &leaf));
        e0 = &leaf->e[first & (SH_FANOUT - 1)];
        if (!(e0->flags & SH_ENTRY_F_PRESENT) || first == last) {
                size_t n = SHIELD_CHUNK_SIZE - skip < len ? SHIELD_CHUNK_SIZE - skip : len;
                const uint8_t *plain = tmp;

                if (skip == 0 && n == SHIELD_CHUNK_SIZE) {
                        TRY(chunk_open(v, ino, s->hd, s->dec, first, e0, dst));
                        plain = dst;
                } else {
                        TRY(chunk_open(v, ino, s->hd, s->dec, first, e0, tmp));
                        memcpy(dst, tmp + skip, n);
                }
                if (keep && (e0->flags & SH_ENTRY_F_PRESENT)) {
                        sh_pc_put(v, ino, first, plain);
                }
                *ret_n = n;
                return CF_OK;
        }
        while (end <= last && end < leaf_end) {
                const struct sh_entry *e = &leaf->e[end & (SH_FANOUT - 1)];

                if (!(e->flags & SH_ENTRY_F_PRESENT) || entry_slot(e) != entry_slot(e0)) {
                        break;
                }
                end++;
        }
        TRY(io_buffer(s));
        TRY(v->ops->pread(v->st, s->hd, s->io, (size_t)(end - first) * SHIELD_CHUNK_SIZE,
                          sh_chunk_offset(first, entry_slot(e0)), &got));
        ENSURE(got == (size_t)(end - first) * SHIELD_CHUNK_SIZE, CF_E_TRUNCATED);
        for (uint64_t c = first; c < end && done < len; c++) {
                const uint8_t *ct = s->io + (size_t)(c - first) * SHIELD_CHUNK_SIZE;
                const struct sh_entry *e = &leaf->e[c & (SH_FANOUT - 1)];
                size_t in = c == first ? skip : 0;
                size_t n =
                    SHIELD_CHUNK_SIZE - in < len - done ? SHIELD_CHUNK_SIZE - in : len - done;

                if (in == 0 && n == SHIELD_CHUNK_SIZE) {
                        TRY(chunk_decrypt(ino, s->dec, c, e, ct, dst + done));
                        if (keep) {
                                sh_pc_put(v, ino, c, dst + done);
                        }
                } else {
                        TRY(chunk_decrypt(ino, s->dec, c, e, ct, tmp));
                        if (keep) {
                                sh_pc_put(v, ino, c, tmp);
                        }
                        memcpy(dst + done, tmp + in, n);
                }
                done += n;
        }
        *ret_n = done;
        return CF_OK;
}

/* Seals a full chunk of plaintext for slot `slot` into ct and describes it in *e. */
static CF_FN chunk_seal(struct shield_volume *v, struct sh_inode *ino, uint64_t chunk,
                        unsigned slot, const uint8_t plain[SHIELD_CHUNK_SIZE],
                        uint8_t ct[SHIELD_CHUNK_SIZE], struct sh_entry *e)
{
        struct sh_state *s = ino->state;
        uint8_t aad[SH_ID_SIZE + 16], nonce[SH_NONCE_SIZE], tag[SH_GCM_TAG_SIZE];
        uint64_t pending = ino->version + 1;
        int n = 0, fin = 0;
        bool ok;

        TRY(sh_nonce(v, nonce));
        chunk_aad(ino, chunk, pending, aad);
        ok = EVP_EncryptInit_ex(s->enc, NULL, NULL, NULL, nonce) == 1 &&
             EVP_EncryptUpdate(s->enc, NULL, &n, aad, (int)sizeof(aad)) == 1 &&
             EVP_EncryptUpdate(s->enc, ct, &n, plain, SHIELD_CHUNK_SIZE) == 1 &&
             EVP_EncryptFinal_ex(s->enc, ct + n, &fin) == 1 && n + fin == SHIELD_CHUNK_SIZE &&
             EVP_CIPHER_CTX_ctrl(s->enc, EVP_CTRL_GCM_GET_TAG, (int)sizeof(tag), tag) == 1;
        ENSURE(ok, CF_E_CRYPTO);
        memset(e, 0, sizeof(*e));
        memcpy(e->data, nonce, sizeof(nonce));
        memcpy(e->data + SH_NONCE_SIZE, tag, sizeof(tag));
        e->version = pending;
        e->flags = (uint8_t)(SH_ENTRY_F_PRESENT | (slot ? SH_ENTRY_F_SLOT : 0));
        return CF_OK;
}

/* Seals a full chunk of plaintext into its free slot and records it in the leaf. */
static CF_FN write_chunk(struct shield_volume *v, struct sh_inode *ino, uint64_t chunk,
                         const uint8_t plain[SHIELD_CHUNK_SIZE])
{
        struct sh_state *s = ino->state;
        uint8_t ct[SHIELD_CHUNK_SIZE];
        struct sh_node *leaf;
        struct sh_entry *e, ne;
        unsigned slot;

        TRY(path_dirty(v, ino, chunk, &leaf));
        e = &leaf->e[chunk & (SH_FANOUT - 1)];
        slot = choose_slot(e, ino->version + 1);
        TRY(chunk_seal(v, ino, chunk, slot, plain, ct, &ne));
        s->d_unsynced = true;
        sh_journal_note(v, ino, SH_JP_DATA, sh_chunk_offset(chunk, slot), ct, sizeof(ct));
        TRY(v->ops->pwrite(v->st, s->hd, ct, sizeof(ct), sh_chunk_offset(chunk, slot)));
        *e = ne;
        sh_pc_put(v, ino, chunk, plain);
        return CF_OK;
}

/* Full chunks sealed into the state's io buffer, waiting for one pwrite: chunks
 * first .. first + n - 1 of one leaf, all for one slot (so contiguous on disk). */
struct wrun {
        uint64_t first;
        unsigned slot, n;
        struct sh_entry e[SH_RUN_CHUNKS];
        const uint8_t *plain[SH_RUN_CHUNKS]; /* the caller's plaintext, for the cache */
};

/* Writes a pending run with one pwrite, then records its entries in the leaf (only after
 * the ciphertext is written: a failed write leaves the old entries, so the old content). */
static CF_FN wrun_flush(struct shield_volume *v, struct sh_inode *ino, struct wrun *r)
{
        struct sh_state *s = ino->state;
        unsigned n = r->n;

        if (n == 0) {
                return CF_OK;
        }
        r->n = 0;
        s->d_unsynced = true;
        sh_journal_note(v, ino, SH_JP_DATA, sh_chunk_offset(r->first, r->slot), s->io,
                        (size_t)n * SHIELD_CHUNK_SIZE);
        TRY(v->ops->pwrite(v->st, s->hd, s->io, (size_t)n * SHIELD_CHUNK_SIZE,
                           sh_chunk_offset(r->first, r->slot)));
        for (unsigned j = 0; j < n; j++) {
                struct sh_node *leaf;

                TRY(path_dirty(v, ino, r->first + j, &leaf));
                leaf->e[(r->first + j) & (SH_FANOUT - 1)] = r->e[j];
                sh_pc_update(v, ino, r->first + j, r->plain[j]);
        }
        if ((r->first + n) * SHIELD_CHUNK_SIZE > ino->size) {
                ino->size = (r->first + n) * SHIELD_CHUNK_SIZE;
        }
        return CF_OK;
}

/* Seals full chunk `chunk` into the pending run, flushing the run first when the chunk
 * does not extend it. */
static CF_FN wrun_add(struct shield_volume *v, struct sh_inode *ino, struct wrun *r, uint64_t chunk,
                      const uint8_t plain[SHIELD_CHUNK_SIZE])
{
        struct sh_state *s = ino->state;
        struct sh_node *leaf;
        unsigned slot;

        TRY(load_node(v, ino, 0, chunk >> SH_FANOUT_SHIFT, &leaf));
        slot = choose_slot(&leaf->e[chunk & (SH_FANOUT - 1)], ino->version + 1);
        if (r->n > 0 && (chunk != r->first + r->n || slot != r->slot ||
                         (chunk >> SH_FANOUT_SHIFT) != (r->first >> SH_FANOUT_SHIFT))) {
                TRY(wrun_flush(v, ino, r));
        }
        TRY(io_buffer(s));
        if (r->n == 0) {
                r->first = chunk;
                r->slot = slot;
        }
        TRY(chunk_seal(v, ino, chunk, slot, plain, s->io + (size_t)r->n * SHIELD_CHUNK_SIZE,
                       &r->e[r->n]));
        r->plain[r->n] = plain;
        r->n++;
        return CF_OK;
}

/* ---- file operations -------------------------------------------------------------- */

CF_FN sh_file_read(struct shield_volume *v, struct sh_inode *ino, uint8_t *buf, size_t size,
                   uint64_t off, size_t *ret_n)
{
        uint8_t tmp[SHIELD_CHUNK_SIZE];
        CF_WIPE_ON_EXIT(tmp);
        size_t done = 0, want;
        uint64_t last, cap = sh_capacity(ino->height);

        ENSURE(size <= SHIELD_IO_MAX, CF_E_LIMIT);
        if (off >= ino->size) {
                *ret_n = 0;
                return CF_OK;
        }
        want = (ino->size - off < size) ? (size_t)(ino->size - off) : size;
        last = (off + want - 1) / SHIELD_CHUNK_SIZE;
        while (done < want) {
                uint64_t pos = off + done, chunk = pos / SHIELD_CHUNK_SIZE;
                size_t in = (size_t)(pos % SHIELD_CHUNK_SIZE);
                size_t n = 0;
                const uint8_t *hit = chunk < cap ? sh_pc_get(v, ino, chunk) : NULL;
                uint64_t run_last = chunk;
                cf_status s = CF_OK;

                if (chunk >= cap || hit != NULL) {
                        /* A cached chunk, or past the tree: a hole (cannot happen below the
                         * size). */
                        n = SHIELD_CHUNK_SIZE - in < want - done ? SHIELD_CHUNK_SIZE - in
                                                                 : want - done;
                        if (hit != NULL) {
                                memcpy(buf + done, hit + in, n);
                        } else {
                                memset(buf + done, 0, n);
                        }
                } else {
                        /* Decrypt up to the next cached chunk (a run also ends at its leaf,
                         * so looking further than one run is wasted). */
                        while (run_last < last && run_last - chunk < SH_RUN_CHUNKS &&
                               sh_pc_get(v, ino, run_last + 1) == NULL) {
                                run_last++;
                        }
                        s = read_run(v, ino, chunk, run_last, in, want - done, buf + done, tmp,
                                     want < PC_STREAM_BYTES, &n);
                }
                if (!cf_ok(s)) {
                        cf_wipe(buf, size);
                        return s;
                }
                done += n;
        }
        *ret_n = want;
        return CF_OK;
}

static CF_FN write_range(struct shield_volume *v, struct sh_inode *ino, const uint8_t *buf,
                         size_t size, uint64_t off, struct wrun *r)
{
        uint8_t tmp[SHIELD_CHUNK_SIZE];
        CF_WIPE_ON_EXIT(tmp);
        size_t done = 0;

        while (done < size) {
                uint64_t pos = off + done, chunk = pos / SHIELD_CHUNK_SIZE;
                size_t in = (size_t)(pos % SHIELD_CHUNK_SIZE);
                size_t n = SHIELD_CHUNK_SIZE - in;

                if (n > size - done) {
                        n = size - done;
                }
                if (in == 0 && n == SHIELD_CHUNK_SIZE) {
                        TRY(wrun_add(v, ino, r, chunk, buf + done));
                        done += n;
                        continue;
                }
                TRY(wrun_flush(v, ino, r));
                /* Read-modify-write; past the old end there is nothing to read (no present
                 * entry beyond the size, and the last chunk's tail is zero). */
                if (chunk * SHIELD_CHUNK_SIZE < ino->size) {
                        TRY(read_chunk(v, ino, chunk, tmp));
                } else {
                        memset(tmp, 0, sizeof(tmp));
                }
                memcpy(tmp + in, buf + done, n);
                TRY(write_chunk(v, ino, chunk, tmp));
                done += n;
                if (pos + n > ino->size) {
                        ino->size = pos + n;
                }
        }
        return wrun_flush(v, ino, r);
}

CF_FN sh_file_write(struct shield_volume *v, struct sh_inode *ino, const uint8_t *buf, size_t size,
                    uint64_t off)
{
        struct wrun *r;
        uint64_t end;
        cf_status s;

        ENSURE(size <= SHIELD_IO_MAX, CF_E_LIMIT);
        ENSURE(!cf_add_overflow(off, (uint64_t)size, &end), CF_E_OVERFLOW);
        ENSURE(end <= SHIELD_FILE_SIZE_MAX, CF_E_LIMIT);
        if (size == 0) {
                return CF_OK;
        }
        ino->changed = true;
        v->changed = true;
        TRY(ensure_height(v, ino, sh_chunks_for(end)));
        r = malloc(sizeof(*r));
        ENSURE(r != NULL, CF_E_NOMEM);
        r->n = 0;
        s = write_range(v, ino, buf, size, off, r);
        free(r);
        return s;
}

/* Turns present entries of chunks [from, to) into holes (keeping their slot history). */
static CF_FN clear_chunks(struct shield_volume *v, struct sh_inode *ino, uint64_t from, uint64_t to)
{
        uint64_t cap = sh_capacity(ino->height);

        if (to > cap) {
                to = cap;
        }
        sh_pc_drop(v, ino, from, to);
        for (uint64_t c = from; c < to;) {
                uint64_t leaf_idx = c >> SH_FANOUT_SHIFT;
                uint64_t leaf_end = (leaf_idx + 1) << SH_FANOUT_SHIFT;
                struct sh_node *leaf;
                bool any = false;

                if (leaf_end > to) {
                        leaf_end = to;
                }
                TRY(load_node(v, ino, 0, leaf_idx, &leaf));
                for (uint64_t k = c; k < leaf_end; k++) {
                        any |= (leaf->e[k & (SH_FANOUT - 1)].flags & SH_ENTRY_F_PRESENT) != 0;
                }
                if (any) {
                        TRY(path_dirty(v, ino, c, &leaf));
                        for (uint64_t k = c; k < leaf_end; k++) {
                                struct sh_entry *e = &leaf->e[k & (SH_FANOUT - 1)];

                                memset(e->data, 0, sizeof(e->data));
                                e->flags &= (uint8_t)~SH_ENTRY_F_PRESENT;
                        }
                }
                c = leaf_end;
        }
        return CF_OK;
}

CF_FN sh_file_truncate(struct shield_volume *v, struct sh_inode *ino, uint64_t size)
{
        uint8_t tmp[SHIELD_CHUNK_SIZE];
        CF_WIPE_ON_EXIT(tmp);

        ENSURE(size <= SHIELD_FILE_SIZE_MAX, CF_E_LIMIT);
        if (size == ino->size) {
                return CF_OK;
        }
        ino->changed = true;
        v->changed = true;
        if (size > ino->size) {
                /* The gap reads as zeros: no entry is present past the old size and the
                 * old last chunk's tail is zero. */
                TRY(ensure_height(v, ino, sh_chunks_for(size)));
                ino->size = size;
                return CF_OK;
        }
        if (size % SHIELD_CHUNK_SIZE != 0) {
                uint64_t chunk = size / SHIELD_CHUNK_SIZE;
                size_t keep = (size_t)(size % SHIELD_CHUNK_SIZE);

                TRY(read_chunk(v, ino, chunk, tmp));
                memset(tmp + keep, 0, sizeof(tmp) - keep);
                TRY(write_chunk(v, ino, chunk, tmp));
        }
        TRY(clear_chunks(v, ino, sh_chunks_for(size), sh_chunks_for(ino->size)));
        ino->size = size;
        return CF_OK;
}

CF_FN sh_file_flush(struct shield_volume *v, struct sh_inode *ino, bool sync)
{
        struct sh_state *s = ino->state;

        if (s == NULL) {
                return CF_OK;
        }
        TRY(flush_nodes(v, ino));
        /* Only the backing files written since their last sync: a commit that changed one
         * file's data costs its data file's sync, not every file's. */
        if (sync && s->d_unsynced) {
                TRY(v->ops->fsync(v->st, s->hd));
                s->d_unsynced = false;
        }
        if (sync && s->t_unsynced) {
                TRY(v->ops->fsync(v->st, s->ht));
                s->t_unsynced = false;
        }
        return CF_OK;
}

CF_FN sh_file_sync_all(struct shield_volume *v, struct sh_inode *ino)
{
        struct sh_state *s = ino->state;
        static const char kinds[2] = {'d', 't'};

        if (s != NULL) {
                TRY(flush_nodes(v, ino));
                TRY(v->ops->fsync(v->st, s->hd));
                s->d_unsynced = false;
                TRY(v->ops->fsync(v->st, s->ht));
                s->t_unsynced = false;
                return CF_OK;
        }
        for (unsigned k = 0; k < 2; k++) {
                char name[SH_ID_SIZE * 2 + 3];
                void *h = NULL;
                cf_status st;

                sh_backing_name(ino->id, kinds[k], name);
                st = v->ops->open(v->st, name, 0, &h);
                if (st.code == CF_E_NOT_FOUND) {
                        continue; /* reported when the file is opened or verified */
                }
                TRY(st);
                st = v->ops->fsync(v->st, h);
                v->ops->close(v->st, h);
                TRY(st);
        }
        return CF_OK;
}

/* ---- runtime state ---------------------------------------------------------------- */

static void state_free(struct shield_volume *v, struct sh_state *s)
{
        if (s == NULL) {
                return;
        }
        for (uint32_t i = 0; i < s->n_nodes; i++) {
                free(s->nodes[i]);
        }
        free(s->io);
        v->ops->close(v->st, s->hd);
        v->ops->close(v->st, s->ht);
        EVP_CIPHER_CTX_free(s->enc); /* frees clear the key schedules */
        EVP_CIPHER_CTX_free(s->dec);
        free(s);
}

static CF_FN state_open(struct shield_volume *v, struct sh_inode *ino, bool create,
                        struct sh_state *s)
{
        uint8_t key[CF_AEAD_KEY_SIZE];
        CF_WIPE_ON_EXIT(key);
        char name[SH_ID_SIZE * 2 + 3];
        unsigned fl = create ? (SHIELD_ST_CREATE | SHIELD_ST_EXCL) : 0;
        cf_status st;

        for (unsigned i = 0; i < SH_BUCKETS; i++) {
                s->buckets[i] = -1;
        }
        sh_backing_name(ino->id, 'd', name);
        if (create) {
                v->dir_dirty = true; /* the next commit syncs the directory first */
        }
        st = v->ops->open(v->st, name, fl, &s->hd);
        /* The manifest names this file: a missing backing file was renamed or deleted. */
        ENSURE(st.code != CF_E_NOT_FOUND, CF_E_TAMPERED);
        TRY(st);
        sh_backing_name(ino->id, 't', name);
        st = v->ops->open(v->st, name, fl, &s->ht);
        ENSURE(st.code != CF_E_NOT_FOUND, CF_E_TAMPERED);
        TRY(st);
        TRY(sh_file_key(v->key, ino->id, key));
        s->enc = EVP_CIPHER_CTX_new();
        s->dec = EVP_CIPHER_CTX_new();
        ENSURE(s->enc != NULL && s->dec != NULL, CF_E_NOMEM);
        ENSURE(EVP_EncryptInit_ex(s->enc, EVP_aes_256_gcm(), NULL, key, NULL) == 1 &&
                   EVP_DecryptInit_ex(s->dec, EVP_aes_256_gcm(), NULL, key, NULL) == 1,
               CF_E_CRYPTO);
        return CF_OK;
}

CF_FN sh_file_activate(struct shield_volume *v, struct sh_inode *ino, bool create)
{
        struct sh_state *s;
        cf_status st;

        if (ino->state != NULL) {
                return CF_OK;
        }
        s = calloc(1, sizeof(*s));
        ENSURE(s != NULL, CF_E_NOMEM);
        st = state_open(v, ino, create, s);
        if (!cf_ok(st)) {
                state_free(v, s);
                return st;
        }
        ino->state = s;
        return CF_OK;
}

void sh_file_release(struct shield_volume *v, struct sh_inode *ino, bool force)
{
        if (force) {
                sh_pc_forget(v, ino); /* the inode is going away */
        }
        if (ino->state == NULL) {
                return;
        }
        if (!force && (ino->n_handles > 0 || ino->changed)) {
                return;
        }
        state_free(v, ino->state);
        ino->state = NULL;
}

/* ---- verification ----------------------------------------------------------------- */

struct verify_ctx {
        struct shield_volume *v;
        struct sh_inode *ino;
        shield_verify_fn fn;
        void *ctx;
        size_t n;
};

static void report(struct verify_ctx *vc, enum shield_where where, uint8_t level, uint64_t index,
                   cf_status s)
{
        struct shield_problem p = {vc->ino->name, where, level, index, s};

        vc->n++;
        if (vc->fn != NULL) {
                vc->fn(vc->ctx, &p);
        }
}

/* Status codes that describe damage (reported); anything else stops the check. */
static bool is_damage(cf_status s)
{
        return s.code == CF_E_TAMPERED || s.code == CF_E_MAC_INVALID || s.code == CF_E_TRUNCATED ||
               s.code == CF_E_MALFORMED || s.code == CF_E_TRAILING;
}

static CF_FN verify_node(struct verify_ctx *vc, uint8_t level, uint64_t index,
                         const struct sh_entry *pe)
{
        struct sh_state *s = vc->ino->state;
        struct sh_entry e[SH_FANOUT];
        uint8_t plain[SHIELD_CHUNK_SIZE];
        CF_WIPE_ON_EXIT(plain);
        uint64_t chunks = sh_chunks_for(vc->ino->size);
        cf_status st;

        if (!(pe->flags & SH_ENTRY_F_PRESENT)) {
                return CF_OK;
        }
        st = node_read(vc->v, vc->ino, s->ht, level, index, pe, e);
        if (!cf_ok(st)) {
                if (!is_damage(st)) {
                        return st;
                }
                report(vc, SHIELD_AT_NODE, level, index, st);
                return CF_OK;
        }
        for (uint64_t j = 0; j < SH_FANOUT; j++) {
                uint64_t child = (index << SH_FANOUT_SHIFT) + j;

                if (level > 0) {
                        TRY(verify_node(vc, (uint8_t)(level - 1), child, &e[j]));
                        continue;
                }
                if (!(e[j].flags & SH_ENTRY_F_PRESENT)) {
                        continue;
                }
                st = child < chunks ? chunk_open(vc->v, vc->ino, s->hd, s->dec, child, &e[j], plain)
                                    : cf_fail(CF_E_MALFORMED);
                if (!cf_ok(st)) {
                        if (!is_damage(st)) {
                                return st;
                        }
                        report(vc, SHIELD_AT_CHUNK, 0, child, st);
                }
        }
        return CF_OK;
}

CF_FN sh_file_verify(struct shield_volume *v, struct sh_inode *ino, shield_verify_fn fn, void *ctx,
                     size_t *n_problems)
{
        struct verify_ctx vc = {v, ino, fn, ctx, 0};
        uint64_t dsize = 0;
        cf_status st = sh_file_activate(v, ino, false);

        if (!cf_ok(st)) {
                if (st.code != CF_E_TAMPERED) {
                        return st;
                }
                report(&vc, SHIELD_AT_FILE, 0, 0, st);
                *n_problems = vc.n;
                return CF_OK;
        }
        if (ino->changed) {
                TRY(flush_nodes(v, ino));
        }
        if (ino->height > 0) {
                TRY(verify_node(&vc, (uint8_t)(ino->height - 1), 0, &ino->root));
        }
        TRY(v->ops->size(v->st, ino->state->hd, &dsize));
        /* A committed data file has exactly its extent (commit and open set it). */
        if (dsize > sh_data_extent(ino->size) && !ino->changed) {
                report(&vc, SHIELD_AT_FILE, 0, 0, cf_fail(CF_E_TRAILING));
        } else if (dsize < sh_data_extent(ino->size) && !ino->changed) {
                report(&vc, SHIELD_AT_FILE, 0, 0, cf_fail(CF_E_TRUNCATED));
        }
        *n_problems = vc.n;
        return CF_OK;
}
