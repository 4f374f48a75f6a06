/* Volumes: the sealed manifest, the volume tag and freshness check, the name space
 * (files and directories), commit and crash recovery. File contents are in tree.c.
 *
 * The manifest file is SH_MAGIC || u32le format || AES-256-GCM(manifest key, plaintext
 * manifest) with the 12 header bytes as AAD; the volume tag is SHA-256 of the whole file
 * (docs/formats/volume.md). Every public function takes the volume mutex. */
#include "shield/shield.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "crypto/crypto.h"
#include "shield/shield_internal.h"
#include "shield/storage_overlay.h"

/* ---- helpers ---------------------------------------------------------------------- */

static void lock(struct shield_volume *v)
{
        cf_assert(pthread_mutex_lock(&v->lock) == 0);
}

static void unlock(struct shield_volume *v)
{
        cf_assert(pthread_mutex_unlock(&v->lock) == 0);
}

static size_t find(const struct shield_volume *v, const char *path)
{
        return sh_find_sorted(v->m.ino, v->m.n, cf_slice_str(path));
}

static struct sh_inode *lookup(const struct shield_volume *v, const char *path)
{
        size_t i = find(v, path);

        return i == SIZE_MAX ? NULL : v->m.ino[i];
}

static CF_FN check_path(const char *path)
{
        ENSURE(path != NULL, CF_E_INVALID_ARG);
        return sh_path_check(cf_slice_make(path, strnlen(path, SHIELD_PATH_MAX + 1)));
}

static CF_FN check_writable(const struct shield_volume *v)
{
        ENSURE(!(v->flags & SHIELD_OPEN_RDONLY), CF_E_PERMISSION);
        return CF_OK;
}

/* The parent directory of path must exist (the root always does). */
static CF_FN check_parent(const struct shield_volume *v, const char *path)
{
        const char *slash = strrchr(path, '/');
        size_t i;

        if (slash == NULL) {
                return CF_OK;
        }
        i = sh_find_sorted(v->m.ino, v->m.n, cf_slice_make(path, (size_t)(slash - path)));
        ENSURE(i != SIZE_MAX, CF_E_NOT_FOUND);
        ENSURE(v->m.ino[i]->type == SHIELD_TYPE_DIR, CF_E_CONFLICT);
        return CF_OK;
}

static CF_FN insert_inode(struct shield_volume *v, struct sh_inode *ino)
{
        size_t pos = 0;

        ENSURE(v->m.n < SHIELD_FILES_MAX, CF_E_LIMIT);
        if (v->m.n == v->m.cap) {
                size_t cap = v->m.cap ? 2 * v->m.cap : 16;
                struct sh_inode **p = reallocarray(v->m.ino, cap, sizeof(*p));

                ENSURE(p != NULL, CF_E_NOMEM);
                v->m.ino = p;
                v->m.cap = cap;
        }
        while (pos < v->m.n && strcmp(v->m.ino[pos]->name, ino->name) < 0) {
                pos++;
        }
        memmove(&v->m.ino[pos + 1], &v->m.ino[pos], (v->m.n - pos) * sizeof(*v->m.ino));
        v->m.ino[pos] = ino;
        v->m.n++;
        return CF_OK;
}

static CF_FN grave_add(struct shield_volume *v, struct sh_inode *ino)
{
        if (v->n_grave == v->cap_grave) {
                size_t cap = v->cap_grave ? 2 * v->cap_grave : 8;
                struct sh_inode **p = reallocarray(v->grave, cap, sizeof(*p));

                ENSURE(p != NULL, CF_E_NOMEM);
                v->grave = p;
                v->cap_grave = cap;
        }
        ino->unlinked = true;
        v->grave[v->n_grave++] = ino;
        return CF_OK;
}

/* Moves m.ino[i] to the graveyard (files) or frees it (directories). */
static CF_FN remove_at(struct shield_volume *v, size_t i)
{
        struct sh_inode *ino = v->m.ino[i];

        if (ino->type == SHIELD_TYPE_FILE) {
                TRY(grave_add(v, ino));
        } else {
                sh_inode_free(ino);
        }
        memmove(&v->m.ino[i], &v->m.ino[i + 1], (v->m.n - i - 1) * sizeof(*v->m.ino));
        v->m.n--;
        v->changed = true;
        return CF_OK;
}

static bool has_children(const struct shield_volume *v, const char *dir)
{
        size_t len = strlen(dir);

        for (size_t i = 0; i < v->m.n; i++) {
                const char *n = v->m.ino[i]->name;

                if (strncmp(n, dir, len) == 0 && n[len] == '/') {
                        return true;
                }
        }
        return false;
}

/* ---- manifest records ------------------------------------------------------------- */

static CF_FN derive_keys(struct shield_volume *v, const uint8_t key[SHIELD_KEY_SIZE])
{
        memcpy(v->key, key, SHIELD_KEY_SIZE);
        return cf_hkdf_sha256(cf_slice_make(key, SHIELD_KEY_SIZE), cf_slice_str("coffer-shield-v1"),
                              cf_slice_str("manifest"), v->manifest_key, sizeof(v->manifest_key));
}

static void put_u32le(uint8_t *p, uint32_t x)
{
        for (unsigned i = 0; i < 4; i++) {
                p[i] = (uint8_t)(x >> (8 * i));
        }
}

static void put_u64le(uint8_t *p, uint64_t x)
{
        for (unsigned i = 0; i < 8; i++) {
                p[i] = (uint8_t)(x >> (8 * i));
        }
}

static const char *slot_name(int slot)
{
        return slot == 0 ? SH_SLOT_NAME_0 : SH_SLOT_NAME_1;
}

static const uint8_t zero_tag[SHIELD_TAG_SIZE];

/* A manifest record's header (docs/formats/volume.md "Manifest records"). */
struct rec_head {
        uint64_t generation;
        uint32_t len; /* sealed body */
        uint8_t prev[SHIELD_TAG_SIZE];
        uint32_t plen; /* journal payload after the record */
        uint8_t pdigest[CF_SHA256_SIZE];
};

/* Parses a record header (not authenticated: the caller authenticates it as AAD). */
static CF_FN head_parse(struct cf_cursor *c, struct rec_head *ret)
{
        struct rec_head h;
        struct cf_slice magic;
        uint32_t format;

        TRY(cf_cursor_take(c, SH_MAGIC_SIZE, &magic));
        ENSURE(memcmp(magic.ptr, SH_MAGIC, SH_MAGIC_SIZE) == 0, CF_E_MALFORMED);
        TRY(cf_cursor_u32le(c, &format));
        ENSURE(format == SH_FILE_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u64le(c, &h.generation));
        TRY(cf_cursor_u32le(c, &h.len));
        TRY(cf_cursor_copy(c, h.prev, sizeof(h.prev)));
        TRY(cf_cursor_u32le(c, &h.plen));
        TRY(cf_cursor_copy(c, h.pdigest, sizeof(h.pdigest)));
        ENSURE(h.len >= CF_AEAD_OVERHEAD, CF_E_MALFORMED);
        ENSURE(h.len <= SH_SEALED_MAX, CF_E_LIMIT);
        ENSURE(h.plen <= SH_PAYLOAD_MAX, CF_E_LIMIT);
        *ret = h;
        return CF_OK;
}

/* Authenticates the record at the start of `bytes` (bytes after it are not read): checks
 * the header, opens the sealed body into plain (a secret buffer, appended to) and hashes
 * the record (the volume tag). *ret_len is the record's length (header + body). */
static CF_FN unseal(const struct shield_volume *v, struct cf_slice bytes, struct cf_buf *plain,
                    struct rec_head *ret_h, size_t *ret_len, uint8_t tag[SHIELD_TAG_SIZE])
{
        struct cf_cursor c = cf_cursor_make(bytes);
        struct cf_cursor all = cf_cursor_make(bytes);
        struct cf_slice aad, body, record;
        struct rec_head h;

        TRY(head_parse(&c, &h));
        ENSURE(cf_cursor_left(&c) >= h.len, CF_E_TRUNCATED);
        TRY(cf_cursor_take(&c, h.len, &body));
        TRY(cf_cursor_take(&all, SH_HEADER_SIZE, &aad));
        TRY(cf_aead_open(v->manifest_key, aad, body, plain));
        all = cf_cursor_make(bytes);
        TRY(cf_cursor_take(&all, SH_HEADER_SIZE + (size_t)h.len, &record));
        TRY(cf_sha256(&record, 1, tag));
        *ret_h = h;
        *ret_len = record.size;
        return CF_OK;
}

/* Seals plaintext manifest bytes into a record: header (generation, body length, previous
 * tag, payload length and digest: all authenticated as AAD) || nonce || ciphertext || GCM
 * tag. The payload itself is not appended. */
static CF_FN seal(const struct shield_volume *v, struct cf_slice plain,
                  const uint8_t prev[SHIELD_TAG_SIZE], struct cf_slice payload, struct cf_buf *out)
{
        uint8_t head[SH_HEADER_SIZE];

        ENSURE(plain.size + CF_AEAD_OVERHEAD <= SH_SEALED_MAX, CF_E_LIMIT);
        ENSURE(payload.size <= SH_PAYLOAD_MAX, CF_E_LIMIT);
        memcpy(head, SH_MAGIC, SH_MAGIC_SIZE);
        put_u32le(head + SH_MAGIC_SIZE, SH_FILE_VERSION);
        put_u64le(head + SH_MAGIC_SIZE + 4, v->m.generation);
        put_u32le(head + SH_MAGIC_SIZE + 12, (uint32_t)(plain.size + CF_AEAD_OVERHEAD));
        memcpy(head + SH_HDR_OFF_PREV, prev, SHIELD_TAG_SIZE);
        put_u32le(head + SH_HDR_OFF_PLEN, (uint32_t)payload.size);
        memset(head + SH_HDR_OFF_DIGEST, 0, CF_SHA256_SIZE);
        if (payload.size > 0) {
                TRY(cf_sha256(&payload, 1, head + SH_HDR_OFF_DIGEST));
        }
        TRY(cf_buf_append(out, head, sizeof(head)));
        return cf_aead_seal(v->manifest_key, cf_slice_make(head, sizeof(head)), plain, out);
}

/* Reads a whole backing file of at most max bytes; with clip, a longer file is read up to
 * max (the journal: bytes past its bound are never ours), else it is CF_E_LIMIT. */
static CF_FN read_all(const struct shield_storage_ops *ops, void *st, const char *name,
                      uint64_t max, bool clip, struct cf_buf *out)
{
        void *h = NULL;
        uint64_t size = 0;
        size_t got = 0;
        cf_status s;

        TRY(ops->open(st, name, 0, &h));
        s = ops->size(st, h, &size);
        if (cf_ok(s) && size > max) {
                s = clip ? CF_OK : cf_fail(CF_E_LIMIT);
                size = max;
        }
        if (cf_ok(s)) {
                s = cf_buf_reserve(out, (size_t)size);
        }
        if (cf_ok(s)) {
                s = ops->pread(st, h, out->ptr, (size_t)size, 0, &got);
        }
        ops->close(st, h);
        TRY(s);
        ENSURE(got == size, CF_E_TRUNCATED);
        out->size = got;
        return CF_OK;
}

static bool tag_expected(const uint8_t tag[SHIELD_TAG_SIZE], const uint8_t *const expected[],
                         size_t n)
{
        bool found = false;

        for (size_t i = 0; i < n; i++) {
                found |= expected[i] != NULL && cf_ct_eq(tag, expected[i], SHIELD_TAG_SIZE);
        }
        return found;
}

/* One manifest slot as found at open. */
struct slot_rec {
        cf_status s; /* CF_OK: authenticated and decoded; else why not (CF_E_NOT_FOUND: none) */
        struct sh_manifest m;
        uint8_t tag[SHIELD_TAG_SIZE];
        struct cf_buf rec; /* the record's bytes */
};

/* Reads, authenticates and decodes one slot into r (r->s says how it went). */
static void load_slot(const struct shield_volume *v, int slot, struct slot_rec *r)
{
        struct cf_buf file, plain;
        struct rec_head h = {0};
        size_t len = 0;

        memset(r, 0, sizeof(*r));
        cf_buf_init(&r->rec, SH_SLOT_FILE_MAX, false);
        cf_buf_init(&file, SH_SLOT_FILE_MAX, false);
        cf_buf_init(&plain, SH_MANIFEST_MAX, true);
        r->s = read_all(v->ops, v->st, slot_name(slot), SH_SLOT_FILE_MAX, false, &file);
        if (cf_ok(r->s)) {
                r->s = unseal(v, cf_buf_slice(&file), &plain, &h, &len, r->tag);
        }
        if (cf_ok(r->s)) {
                r->s = sh_manifest_decode(cf_buf_slice(&plain), &r->m);
        }
        /* The header's generation is authenticated (AAD) and must be the manifest's. */
        if (cf_ok(r->s) && r->m.generation != h.generation) {
                sh_manifest_done(&r->m);
                r->s = cf_fail(CF_E_MALFORMED);
        }
        if (cf_ok(r->s)) {
                r->s = cf_buf_append(&r->rec, file.ptr, len);
                if (!cf_ok(r->s)) {
                        sh_manifest_done(&r->m);
                }
        }
        cf_buf_done(&plain);
        cf_buf_done(&file);
}

/* One record of a journal chain. */
struct jrec {
        size_t off;  /* offset in the journal */
        size_t mlen; /* manifest record (header + body) */
        size_t plen; /* payload after it */
        uint8_t tag[SHIELD_TAG_SIZE];
};

struct chain {
        struct jrec *r;
        size_t n, cap;
        cf_status damage; /* a record that names the chain's end as prev but is not valid */
};

/* Follows the journal from its start: each record must name the previous state's tag as
 * prev (the first one the base slot's tag), have the next generation, authenticate, and
 * carry a payload of the digest its header names. The first record that does not name
 * the chain's end ends the chain (a leftover of an earlier epoch, zeros, nothing); one that
 * names it but fails a check ends it too and is remembered as damage (a torn write, or an
 * edit). */
static CF_FN scan_chain(const struct shield_volume *v, struct cf_slice j,
                        const uint8_t base_tag[SHIELD_TAG_SIZE], uint64_t base_gen,
                        struct chain *ret)
{
        struct cf_buf plain;
        uint8_t tag[SHIELD_TAG_SIZE];
        uint64_t gen = base_gen;
        size_t off = 0;
        cf_status s = CF_OK;

        memcpy(tag, base_tag, sizeof(tag));
        cf_buf_init(&plain, SH_MANIFEST_MAX, true);
        for (;;) {
                struct cf_cursor c = cf_cursor_make(j), peek;
                struct cf_slice rest, payload;
                struct rec_head h;
                struct jrec r = {.off = off};
                uint8_t digest[CF_SHA256_SIZE];
                cf_status e;

                if (!cf_ok(cf_cursor_skip(&c, off)) ||
                    !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &rest))) {
                        break;
                }
                peek = cf_cursor_make(rest);
                if (!cf_ok(head_parse(&peek, &h)) || !cf_ct_eq(h.prev, tag, sizeof(tag))) {
                        break;
                }
                cf_buf_reset(&plain);
                e = unseal(v, rest, &plain, &h, &r.mlen, r.tag);
                if (cf_ok(e) && h.generation != gen + 1) {
                        e = cf_fail(CF_E_MALFORMED);
                }
                peek = cf_cursor_make(rest);
                if (cf_ok(e)) {
                        e = cf_cursor_skip(&peek, r.mlen);
                }
                if (cf_ok(e)) {
                        e = cf_cursor_take(&peek, h.plen, &payload);
                }
                if (cf_ok(e) && h.plen > 0) {
                        e = cf_sha256(&payload, 1, digest);
                } else if (cf_ok(e)) {
                        memset(digest, 0, sizeof(digest));
                }
                if (cf_ok(e) && !cf_ct_eq(digest, h.pdigest, sizeof(digest))) {
                        e = cf_fail(CF_E_MAC_INVALID);
                }
                if (!cf_ok(e)) {
                        ret->damage = e;
                        break;
                }
                r.plen = h.plen;
                if (ret->n == ret->cap) {
                        size_t cap = ret->cap ? 2 * ret->cap : 16;
                        struct jrec *p = reallocarray(ret->r, cap, sizeof(*p));

                        if (p == NULL) {
                                s = cf_fail(CF_E_NOMEM);
                                break;
                        }
                        ret->r = p;
                        ret->cap = cap;
                }
                ret->r[ret->n++] = r;
                memcpy(tag, r.tag, sizeof(tag));
                gen++;
                off += r.mlen + r.plen;
        }
        cf_buf_done(&plain);
        return s;
}

static bool id_named(const struct sh_manifest *m, const uint8_t id[SH_ID_SIZE])
{
        for (size_t i = 0; i < m->n; i++) {
                if (m->ino[i]->type == SHIELD_TYPE_FILE &&
                    memcmp(m->ino[i]->id, id, SH_ID_SIZE) == 0) {
                        return true;
                }
        }
        return false;
}

static CF_FN trim_data(struct shield_volume *v, struct sh_inode *ino);

static struct sh_inode *inode_of_id(const struct sh_manifest *m, const uint8_t id[SH_ID_SIZE])
{
        for (size_t i = 0; i < m->n; i++) {
                if (m->ino[i]->type == SHIELD_TYPE_FILE &&
                    memcmp(m->ino[i]->id, id, SH_ID_SIZE) == 0) {
                        return m->ino[i];
                }
        }
        return NULL;
}

/* Writes one record's payload entries to their backing files: only for files the opened
 * state names. A backing file missing is created for a file the base slot does not name
 * (created since the checkpoint: its directory entry may be lost in a crash); for other
 * files it is left missing (opening the file reports CF_E_TAMPERED). */
static CF_FN replay_payload(struct shield_volume *v, struct cf_slice payload,
                            const struct sh_manifest *base)
{
        struct cf_cursor c = cf_cursor_make(payload);

        while (cf_cursor_left(&c) > 0) {
                uint8_t kind = 0, id[SH_ID_SIZE];
                uint64_t off = 0;
                uint32_t len = 0;
                struct cf_slice bytes;
                char name[SH_ID_SIZE * 2 + 3];
                void *h = NULL;
                cf_status s;

                TRY(cf_cursor_u8(&c, &kind));
                TRY(cf_cursor_copy(&c, id, sizeof(id)));
                TRY(cf_cursor_u64le(&c, &off));
                TRY(cf_cursor_u32le(&c, &len));
                ENSURE(kind == SH_JP_DATA || kind == SH_JP_TREE, CF_E_MALFORMED);
                ENSURE(len > 0 && len <= (size_t)SH_RUN_CHUNKS * SHIELD_CHUNK_SIZE, CF_E_MALFORMED);
                ENSURE(off <= (kind == SH_JP_DATA ? sh_data_extent(SHIELD_FILE_SIZE_MAX)
                                                  : SH_TREE_FILE_MAX) -
                                  len,
                       CF_E_MALFORMED);
                TRY(cf_cursor_take(&c, len, &bytes));
                if (!id_named(&v->m, id)) {
                        continue;
                }
                sh_backing_name(id, kind == SH_JP_DATA ? 'd' : 't', name);
                s = v->ops->open(v->st, name, id_named(base, id) ? 0 : SHIELD_ST_CREATE, &h);
                if (s.code == CF_E_NOT_FOUND) {
                        continue;
                }
                TRY(s);
                s = v->ops->pwrite(v->st, h, bytes.ptr, bytes.size, off);
                v->ops->close(v->st, h);
                TRY(s);
                if (v->overlay != NULL) {
                        /* The commit also set the data file's size (commit_apply), which a
                         * read-write open's recover() sets again; the overlay must too. */
                        TRY(trim_data(v, inode_of_id(&v->m, id)));
                }
        }
        return CF_OK;
}

/* A read-only open of a state the journal carries: the records' payloads are replayed
 * into an in-memory overlay of the storage (storage_overlay.h), which the volume then
 * reads through for its whole life, so the committed state reads back after a machine
 * crash while nothing is written to the backing storage. */
static CF_FN replay_rdonly(struct shield_volume *v, const struct sh_manifest *base,
                           const struct chain *ch, size_t j, struct cf_slice journal)
{
        struct sh_overlay *o = NULL;

        TRY(sh_overlay_new(v->ops, v->st, SH_OVERLAY_MAX, &o));
        v->ops = &sh_overlay_ops;
        v->st = o;
        v->overlay = o; /* freed by volume_free, even if the replay fails */
        for (size_t i = 0; i < j; i++) {
                struct cf_cursor c = cf_cursor_make(journal);
                struct cf_slice payload;

                TRY(cf_cursor_skip(&c, ch->r[i].off + ch->r[i].mlen));
                TRY(cf_cursor_take(&c, ch->r[i].plen, &payload));
                TRY(replay_payload(v, payload, base));
        }
        return CF_OK;
}

/* Makes state (slot, j) of the slot's chain the volume's state: the slot's own manifest
 * (j = 0) or that of the chain's j-th record; on read-write opens, replays the payloads
 * of records 1..j and, when later records exist (a walk back), cuts the chain after j. */
static CF_FN take_state(struct shield_volume *v, struct slot_rec *r, int slot,
                        const struct chain *ch, size_t j, struct cf_slice journal)
{
        struct cf_buf plain;
        struct cf_slice bytes;
        struct rec_head h;
        size_t len = 0;
        uint8_t tag[SHIELD_TAG_SIZE];
        cf_status s = CF_OK;

        v->slot = slot;
        v->has_tag = true;
        if (j == 0) {
                v->m = r->m;
                memset(&r->m, 0, sizeof(r->m));
                memcpy(v->tag, r->tag, SHIELD_TAG_SIZE);
                cf_buf_reset(&v->rec);
                TRY(cf_buf_append(&v->rec, r->rec.ptr, r->rec.size));
                v->jofs = 0;
        } else {
                const struct jrec *x = &ch->r[j - 1];
                struct cf_cursor c = cf_cursor_make(journal);

                TRY(cf_cursor_skip(&c, x->off));
                TRY(cf_cursor_take(&c, x->mlen, &bytes));
                cf_buf_init(&plain, SH_MANIFEST_MAX, true);
                s = unseal(v, bytes, &plain, &h, &len, tag);
                if (cf_ok(s)) {
                        s = sh_manifest_decode(cf_buf_slice(&plain), &v->m);
                }
                cf_buf_done(&plain);
                TRY(s);
                ENSURE(v->m.generation == h.generation, CF_E_MALFORMED);
                memcpy(v->tag, x->tag, SHIELD_TAG_SIZE);
                cf_buf_reset(&v->rec);
                TRY(cf_buf_append(&v->rec, bytes.ptr, bytes.size));
                v->jofs = x->off + x->mlen + x->plen;
        }
        if (v->flags & SHIELD_OPEN_RDONLY) {
                return j == 0 ? CF_OK : replay_rdonly(v, &r->m, ch, j, journal);
        }
        for (size_t i = 0; i < j; i++) {
                struct cf_cursor c = cf_cursor_make(journal);
                struct cf_slice payload;

                TRY(cf_cursor_skip(&c, ch->r[i].off + ch->r[i].mlen));
                TRY(cf_cursor_take(&c, ch->r[i].plen, &payload));
                TRY(replay_payload(v, payload, &r->m));
        }
        if (j > 0) {
                /* Replayed bytes are not durable yet: the next checkpoint syncs every file
                 * (and the directory, for backing files the replay created). */
                v->ckpt_all = true;
                v->dir_dirty = true;
        }
        if (j < ch->n) {
                /* A walk back: the records after j must not chain again. */
                uint8_t zero[SH_HEADER_SIZE] = {0};
                void *jh = NULL;

                TRY(v->ops->open(v->st, SH_JOURNAL_NAME, 0, &jh));
                s = v->ops->pwrite(v->st, jh, zero, sizeof(zero), v->jofs);
                if (cf_ok(s)) {
                        s = v->ops->fsync(v->st, jh);
                }
                v->ops->close(v->st, jh);
                TRY(s);
        }
        return CF_OK;
}

/* Opens the volume's state: for each authentic slot, the chain of journal records that
 * follows it; candidates are each chain's end and the state before it (the previous
 * commit, as the two slots gave before the journal), newest final generation first; the
 * first candidate the freshness rules accept is opened. When none is, a damaged slot's
 * error is reported, else a damaged journal record's (an edit is not a rollback), else
 * CF_E_ROLLBACK. */
static CF_FN load_manifest(struct shield_volume *v, const uint8_t *const expected[], size_t n,
                           uint64_t min_generation, unsigned flags)
{
        struct slot_rec r[2];
        struct chain ch[2];
        struct cf_buf journal;
        void *h = NULL;
        cf_status s = v->ops->open(v->st, SH_MANIFEST_LEGACY, 0, &h);
        int order[2] = {0, 1};
        bool any_valid = false, chosen = false;

        if (cf_ok(s)) {
                v->ops->close(v->st, h);
                return cf_fail(CF_E_VERSION); /* a volume of format 1 */
        }
        if (s.code != CF_E_NOT_FOUND) {
                return s;
        }
        memset(ch, 0, sizeof(ch));
        cf_buf_init(&journal, (size_t)SH_JOURNAL_MAX, false);
        s = read_all(v->ops, v->st, SH_JOURNAL_NAME, SH_JOURNAL_MAX, true, &journal);
        if (s.code == CF_E_NOT_FOUND) {
                s = CF_OK;
        }
        load_slot(v, 0, &r[0]);
        load_slot(v, 1, &r[1]);
        for (int k = 0; k < 2 && cf_ok(s); k++) {
                if (cf_ok(r[k].s)) {
                        s = scan_chain(v, cf_buf_slice(&journal), r[k].tag, r[k].m.generation,
                                       &ch[k]);
                }
        }
        if (cf_ok(r[0].s) && cf_ok(r[1].s)) {
                uint64_t f0 = r[0].m.generation + ch[0].n, f1 = r[1].m.generation + ch[1].n;

                if (f1 > f0 || (f1 == f0 && r[1].m.generation > r[0].m.generation)) {
                        order[0] = 1;
                        order[1] = 0;
                }
        }
        for (int k = 0; k < 2 && cf_ok(s) && !chosen; k++) {
                int x = order[k];

                if (!cf_ok(r[x].s)) {
                        continue;
                }
                any_valid = true;
                for (size_t back = 0; back < 2 && back <= ch[x].n && !chosen; back++) {
                        size_t j = ch[x].n - back;
                        const uint8_t *tag = j == 0 ? r[x].tag : ch[x].r[j - 1].tag;
                        uint64_t gen = r[x].m.generation + j;

                        if ((flags & SHIELD_OPEN_ACCEPT_ANY_TAG) ||
                            tag_expected(tag, expected, n) ||
                            ((flags & SHIELD_OPEN_ACCEPT_NEWER) && gen > min_generation)) {
                                chosen = true;
                                s = take_state(v, &r[x], x, &ch[x], j, cf_buf_slice(&journal));
                        }
                }
        }
        for (int k = 0; k < 2; k++) {
                if (cf_ok(r[k].s)) {
                        sh_manifest_done(&r[k].m);
                }
                cf_buf_done(&r[k].rec);
                free(ch[k].r);
        }
        cf_buf_done(&journal);
        TRY(s);
        if (chosen) {
                return CF_OK;
        }
        for (int k = 0; k < 2; k++) {
                if (!cf_ok(r[k].s) && r[k].s.code != CF_E_NOT_FOUND) {
                        return r[k].s;
                }
        }
        for (int k = 0; k < 2; k++) {
                if (cf_ok(r[k].s) && !cf_ok(ch[k].damage)) {
                        return ch[k].damage;
                }
        }
        ENSURE(!any_valid, CF_E_ROLLBACK);
        /* No manifest at all. A volume that had a tag cannot silently become a new one
         * (unless the policy says it may: reinitialisable). */
        ENSURE((flags & (SHIELD_OPEN_ACCEPT_ANY_TAG | SHIELD_OPEN_ACCEPT_EMPTY)) || n == 0,
               CF_E_ROLLBACK);
        ENSURE(flags & SHIELD_OPEN_CREATE, CF_E_NOT_FOUND);
        v->changed = true;
        return CF_OK;
}

/* The newest state without the key (unauthenticated, for messages only): for each slot
 * with a well-formed header, follow the journal records that name its tag, then theirs. */
CF_FN shield_disk_tag(const struct shield_storage_ops *ops, void *st, uint8_t tag[SHIELD_TAG_SIZE])
{
        struct cf_buf journal;
        uint8_t best[SHIELD_TAG_SIZE];
        uint64_t best_gen = 0;
        bool found = false;
        cf_status s;

        ENSURE(ops != NULL && tag != NULL, CF_E_INVALID_ARG);
        cf_buf_init(&journal, (size_t)SH_JOURNAL_MAX, false);
        s = read_all(ops, st, SH_JOURNAL_NAME, SH_JOURNAL_MAX, true, &journal);
        if (!cf_ok(s)) {
                journal.size = 0;
        }
        for (int i = 0; i < 2; i++) {
                struct cf_buf file;
                uint8_t t[SHIELD_TAG_SIZE];
                uint64_t gen = 0;
                size_t off = 0;
                bool ok = false;

                cf_buf_init(&file, SH_SLOT_FILE_MAX, false);
                if (cf_ok(read_all(ops, st, slot_name(i), SH_SLOT_FILE_MAX, false, &file))) {
                        struct cf_cursor c = cf_cursor_make(cf_buf_slice(&file));
                        struct cf_cursor all = cf_cursor_make(cf_buf_slice(&file));
                        struct rec_head h;
                        struct cf_slice record;

                        ok = cf_ok(head_parse(&c, &h)) &&
                             cf_ok(cf_cursor_take(&all, SH_HEADER_SIZE + (size_t)h.len, &record)) &&
                             cf_ok(cf_sha256(&record, 1, t));
                        gen = h.generation;
                }
                cf_buf_done(&file);
                for (; ok;) {
                        struct cf_cursor c = cf_cursor_make(cf_buf_slice(&journal)), peek;
                        struct cf_slice rest, record;
                        struct rec_head h;

                        if (!cf_ok(cf_cursor_skip(&c, off)) ||
                            !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &rest))) {
                                break;
                        }
                        peek = cf_cursor_make(rest);
                        if (!cf_ok(head_parse(&peek, &h)) || !cf_ct_eq(h.prev, t, sizeof(t)) ||
                            h.generation != gen + 1) {
                                break;
                        }
                        peek = cf_cursor_make(rest);
                        if (!cf_ok(
                                cf_cursor_take(&peek, SH_HEADER_SIZE + (size_t)h.len, &record)) ||
                            cf_cursor_left(&peek) < h.plen || !cf_ok(cf_sha256(&record, 1, t))) {
                                break;
                        }
                        gen++;
                        off += record.size + h.plen;
                }
                if (ok && (!found || gen > best_gen)) {
                        memcpy(best, t, sizeof(best));
                        best_gen = gen;
                        found = true;
                }
        }
        cf_buf_done(&journal);
        ENSURE(found, CF_E_NOT_FOUND);
        memcpy(tag, best, SHIELD_TAG_SIZE);
        return CF_OK;
}

/* ---- recovery --------------------------------------------------------------------- */

struct names {
        char **v;
        size_t n, cap;
};

static cf_status collect_name(void *ctx, const char *name)
{
        struct names *ns = ctx;

        if (ns->n == ns->cap) {
                size_t cap = ns->cap ? 2 * ns->cap : 64;
                char **p = reallocarray(ns->v, cap, sizeof(*p));

                ENSURE(p != NULL, CF_E_NOMEM);
                ns->v = p;
                ns->cap = cap;
        }
        ns->v[ns->n] = strdup(name);
        ENSURE(ns->v[ns->n] != NULL, CF_E_NOMEM);
        ns->n++;
        return CF_OK;
}

/* True when name is "<32 hex>.d" or "<32 hex>.t" (a backing file of ours). */
static bool backing_id(const char *name, uint8_t id[SH_ID_SIZE])
{
        if (strlen(name) != 2 * SH_ID_SIZE + 2 || name[2 * SH_ID_SIZE] != '.' ||
            (name[2 * SH_ID_SIZE + 1] != 'd' && name[2 * SH_ID_SIZE + 1] != 't')) {
                return false;
        }
        for (unsigned i = 0; i < 2 * SH_ID_SIZE; i++) {
                char ch = name[i];
                int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                        : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                                                   : -1;

                if (d < 0) {
                        return false;
                }
                if (i % 2 == 0) {
                        id[i / 2] = (uint8_t)(d << 4);
                } else {
                        id[i / 2] |= (uint8_t)d;
                }
        }
        return true;
}

static bool id_in_use(const struct shield_volume *v, const uint8_t id[SH_ID_SIZE])
{
        for (size_t i = 0; i < v->m.n; i++) {
                if (v->m.ino[i]->type == SHIELD_TYPE_FILE &&
                    memcmp(v->m.ino[i]->id, id, SH_ID_SIZE) == 0) {
                        return true;
                }
        }
        return false;
}

/* Sets a data file's size to exactly what its manifest entry implies (both slot regions of
 * every group; sparse on POSIX). Bytes past it were written after the last commit and are
 * never read; a committed data file therefore has one exact size, which verify checks. */
static CF_FN trim_data(struct shield_volume *v, struct sh_inode *ino)
{
        char name[SH_ID_SIZE * 2 + 3];
        void *h = NULL;
        uint64_t size = 0, extent = sh_data_extent(ino->size);
        cf_status s;

        sh_backing_name(ino->id, 'd', name);
        s = v->ops->open(v->st, name, 0, &h);
        if (s.code == CF_E_NOT_FOUND) {
                return CF_OK; /* reported when the file is opened or verified */
        }
        TRY(s);
        s = v->ops->size(v->st, h, &size);
        if (cf_ok(s) && size != extent) {
                s = v->ops->truncate(v->st, h, extent);
        }
        v->ops->close(v->st, h);
        return s;
}

/* After a crash: drop the temporary manifest, backing files no manifest entry names, and
 * data written past what the manifest references. Read-write opens only. */
static CF_FN recover(struct shield_volume *v)
{
        struct names ns = {0};
        uint8_t id[SH_ID_SIZE];
        cf_status s = v->ops->unlink(v->st, SH_MANIFEST_TMP);

        if (s.code != CF_E_NOT_FOUND) {
                TRY(s);
        }
        if (v->slot < 0) {
                /* A new volume: a journal left by an earlier one chains to nothing. */
                s = v->ops->unlink(v->st, SH_JOURNAL_NAME);
                if (s.code != CF_E_NOT_FOUND) {
                        TRY(s);
                }
        }
        s = v->ops->list(v->st, collect_name, &ns);
        for (size_t i = 0; i < ns.n; i++) {
                if (cf_ok(s) && backing_id(ns.v[i], id) && !id_in_use(v, id)) {
                        s = v->ops->unlink(v->st, ns.v[i]);
                }
                free(ns.v[i]);
        }
        free(ns.v);
        TRY(s);
        for (size_t i = 0; i < v->m.n; i++) {
                if (v->m.ino[i]->type == SHIELD_TYPE_FILE) {
                        TRY(trim_data(v, v->m.ino[i]));
                }
        }
        return CF_OK;
}

/* ---- open / close ----------------------------------------------------------------- */

static void volume_free(struct shield_volume *v)
{
        sh_pc_free(v); /* first: its slots name the inodes freed below */
        sh_nonce_free(v);
        for (size_t i = 0; i < v->m.n; i++) {
                sh_file_release(v, v->m.ino[i], true);
        }
        for (size_t i = 0; i < v->n_grave; i++) {
                sh_file_release(v, v->grave[i], true);
                sh_inode_free(v->grave[i]);
        }
        free(v->grave);
        sh_manifest_done(&v->m);
        if (v->jh != NULL) {
                v->ops->close(v->st, v->jh);
        }
        sh_overlay_free(v->overlay); /* after every handle through it is closed */
        cf_buf_done(&v->jpay);
        cf_buf_done(&v->rec);
        cf_wipe(v->key, sizeof(v->key));
        cf_wipe(v->manifest_key, sizeof(v->manifest_key));
        pthread_mutex_destroy(&v->lock);
        free(v);
}

/* A reset: removes every name in the backing directory (the old volume is unreadable
 * with the new key anyway; this reclaims its space and leaves no manifest to refuse). */
static CF_FN wipe_backing(struct shield_volume *v)
{
        struct names ns = {0};
        cf_status s = v->ops->list(v->st, collect_name, &ns);

        for (size_t i = 0; i < ns.n; i++) {
                if (cf_ok(s)) {
                        s = v->ops->unlink(v->st, ns.v[i]);
                        if (s.code == CF_E_NOT_FOUND) {
                                s = CF_OK;
                        }
                }
                free(ns.v[i]);
        }
        free(ns.v);
        TRY(s);
        return v->ops->sync_dir(v->st);
}

CF_FN shield_volume_open(const struct shield_storage_ops *ops, void *st,
                         const uint8_t key[SHIELD_KEY_SIZE], const uint8_t *const expected_tags[],
                         size_t n_expected, unsigned flags, struct shield_volume **ret)
{
        ENSURE((flags & SHIELD_OPEN_ACCEPT_NEWER) == 0, CF_E_INVALID_ARG);
        return shield_volume_open_ex(ops, st, key, expected_tags, n_expected, 0, flags, ret);
}

CF_FN shield_volume_open_ex(const struct shield_storage_ops *ops, void *st,
                            const uint8_t key[SHIELD_KEY_SIZE],
                            const uint8_t *const expected_tags[], size_t n_expected,
                            uint64_t min_generation, unsigned flags, struct shield_volume **ret)
{
        struct shield_volume *v;
        cf_status s;

        ENSURE(ops != NULL && key != NULL && ret != NULL, CF_E_INVALID_ARG);
        ENSURE(n_expected == 0 || expected_tags != NULL, CF_E_INVALID_ARG);
        ENSURE((flags & ~(unsigned)(SHIELD_OPEN_CREATE | SHIELD_OPEN_ACCEPT_ANY_TAG |
                                    SHIELD_OPEN_RDONLY | SHIELD_OPEN_ACCEPT_NEWER |
                                    SHIELD_OPEN_ACCEPT_EMPTY | SHIELD_OPEN_RESET)) == 0,
               CF_E_INVALID_ARG);
        ENSURE(!(flags & (SHIELD_OPEN_ACCEPT_EMPTY | SHIELD_OPEN_RESET)) ||
                   ((flags & SHIELD_OPEN_CREATE) && !(flags & SHIELD_OPEN_RDONLY)),
               CF_E_INVALID_ARG);
        ENSURE(!(flags & SHIELD_OPEN_RESET) || n_expected == 0, CF_E_INVALID_ARG);
        v = calloc(1, sizeof(*v));
        ENSURE(v != NULL, CF_E_NOMEM);
        if (pthread_mutex_init(&v->lock, NULL) != 0) {
                free(v);
                return cf_fail(CF_E_NOMEM);
        }
        v->ops = ops;
        v->st = st;
        v->flags = flags;
        v->slot = -1;
        cf_buf_init(&v->jpay, SH_PAYLOAD_MAX, false);
        cf_buf_init(&v->rec, SH_HEADER_SIZE + SH_SEALED_MAX, false);
        s = derive_keys(v, key);
        if (cf_ok(s) && (flags & SHIELD_OPEN_RESET)) {
                s = wipe_backing(v);
        }
        if (cf_ok(s)) {
                s = load_manifest(v, expected_tags, n_expected, min_generation, flags);
        }
        if (cf_ok(s) && !(flags & SHIELD_OPEN_RDONLY)) {
                s = recover(v);
        }
        if (!cf_ok(s)) {
                volume_free(v);
                return s;
        }
        *ret = v;
        return CF_OK;
}

uint64_t shield_volume_generation(struct shield_volume *v)
{
        uint64_t g;

        lock(v);
        g = v->m.generation;
        unlock(v);
        return g;
}

void shield_volume_set_prepare(struct shield_volume *v, shield_prepare_fn fn, void *ctx)
{
        lock(v);
        v->prepare = fn;
        v->prepare_ctx = ctx;
        unlock(v);
}

void shield_volume_close(struct shield_volume *v)
{
        if (v == NULL) {
                return;
        }
        volume_free(v);
}

CF_FN shield_volume_tag(struct shield_volume *v, uint8_t tag_out[SHIELD_TAG_SIZE])
{
        cf_status s = CF_OK;

        lock(v);
        if (v->has_tag) {
                memcpy(tag_out, v->tag, SHIELD_TAG_SIZE);
        } else {
                s = cf_fail(CF_E_NOT_FOUND);
        }
        unlock(v);
        return s;
}

/* ---- commit ----------------------------------------------------------------------- */

void sh_journal_note(struct shield_volume *v, struct sh_inode *ino, uint8_t kind, uint64_t off,
                     const uint8_t *bytes, size_t len)
{
        uint8_t head[SH_JP_ENTRY_HEAD];

        ino->ckpt = true;
        if (v->jpay_over) {
                return;
        }
        if (len > SH_PAYLOAD_MAX || v->jpay.size + sizeof(head) + len > SH_PAYLOAD_MAX) {
                v->jpay_over = true;
                cf_buf_reset(&v->jpay);
                return;
        }
        head[0] = kind;
        memcpy(head + 1, ino->id, SH_ID_SIZE);
        put_u64le(head + 1 + SH_ID_SIZE, off);
        put_u32le(head + 1 + SH_ID_SIZE + 8, (uint32_t)len);
        if (!cf_ok(cf_buf_append(&v->jpay, head, sizeof(head))) ||
            !cf_ok(cf_buf_append(&v->jpay, bytes, len))) {
                v->jpay_over = true; /* out of memory: the next commit is a checkpoint */
                cf_buf_reset(&v->jpay);
        }
}

static void bump_versions(struct shield_volume *v, int delta)
{
        for (size_t i = 0; i < v->m.n; i++) {
                struct sh_inode *ino = v->m.ino[i];

                if (ino->type == SHIELD_TYPE_FILE && ino->changed) {
                        ino->version = delta > 0 ? ino->version + 1 : ino->version - 1;
                }
        }
}

/* Writes a record into the slot that does not hold the current state, in place, and makes
 * it durable: one fdatasync (plus a directory sync the first time a slot file is created,
 * and whenever backing files were created since the last one, so that the manifest never
 * names a backing file whose directory entry a crash could lose). */
static CF_FN write_manifest(struct shield_volume *v, struct cf_slice sealed, int slot)
{
        void *h = NULL;
        cf_status s = v->ops->open(v->st, slot_name(slot), 0, &h);

        if (s.code == CF_E_NOT_FOUND) {
                v->dir_dirty = true;
                s = v->ops->open(v->st, slot_name(slot), SHIELD_ST_CREATE, &h);
        }
        TRY(s);
        if (v->dir_dirty) {
                /* Before the record: its new backing files must exist after a crash. */
                s = v->ops->sync_dir(v->st);
        }
        if (cf_ok(s)) {
                v->dir_dirty = false;
                s = v->ops->pwrite(v->st, h, sealed.ptr, sealed.size, 0);
        }
        if (cf_ok(s)) {
                s = v->ops->fsync(v->st, h);
        }
        v->ops->close(v->st, h);
        return s;
}

/* Before a record goes into a slot: every backing file written since the last checkpoint
 * is made durable (the slot is the base the journal no longer covers). */
static CF_FN checkpoint_sync(struct shield_volume *v)
{
        for (size_t i = 0; i < v->m.n; i++) {
                struct sh_inode *ino = v->m.ino[i];

                if (ino->type == SHIELD_TYPE_FILE && (ino->ckpt || ino->changed || v->ckpt_all)) {
                        TRY(sh_file_sync_all(v, ino));
                }
        }
        return CF_OK;
}

static void checkpoint_done(struct shield_volume *v, int slot)
{
        v->slot = slot;
        v->jofs = 0;
        v->ckpt_all = false;
        for (size_t i = 0; i < v->m.n; i++) {
                v->m.ino[i]->ckpt = false;
        }
}

/* The journal file, opened on first use. A new one is filled with zeros up to its bound
 * (so appends overwrite allocated blocks: an fdatasync then flushes data only, no size or
 * allocation change) and its directory entry is made durable. */
static CF_FN journal_open(struct shield_volume *v)
{
        static const size_t step = 256u << 10;
        cf_status s;
        uint8_t *zero;

        if (v->jh != NULL) {
                return CF_OK;
        }
        s = v->ops->open(v->st, SH_JOURNAL_NAME, 0, &v->jh);
        if (s.code != CF_E_NOT_FOUND) {
                return s;
        }
        TRY(v->ops->open(v->st, SH_JOURNAL_NAME, SHIELD_ST_CREATE, &v->jh));
        s = CF_OK;
        zero = calloc(1, step);
        ENSURE(zero != NULL, CF_E_NOMEM);
        for (uint64_t off = 0; off < SH_JOURNAL_MAX && cf_ok(s); off += step) {
                s = v->ops->pwrite(v->st, v->jh, zero, step, off);
        }
        free(zero);
        if (cf_ok(s)) {
                s = v->ops->fsync(v->st, v->jh);
        }
        if (cf_ok(s)) {
                s = v->ops->sync_dir(v->st);
        }
        if (!cf_ok(s)) {
                v->ops->close(v->st, v->jh);
                v->jh = NULL;
        }
        return s;
}

/* Appends record || payload at the end of the chain and makes it durable: one fdatasync. */
static CF_FN journal_append(struct shield_volume *v, struct cf_buf *rec)
{
        TRY(journal_open(v));
        TRY(cf_buf_append(rec, v->jpay.ptr, v->jpay.size));
        TRY(v->ops->pwrite(v->st, v->jh, rec->ptr, rec->size, v->jofs));
        return v->ops->fsync(v->st, v->jh);
}

/* Flushes, seals and writes the new state: as a journal record (the changed bytes as its
 * payload, one fdatasync) when the chain has a base slot and record and payload fit in
 * the journal; else as a checkpoint (backing files synced, record written into the other
 * slot). On failure nothing in memory has changed and no durable state is overwritten. */
static CF_FN commit_write(struct shield_volume *v, uint8_t tag[SHIELD_TAG_SIZE])
{
        struct cf_buf plain, rec;
        struct cf_slice part;
        int slot = v->slot < 0 ? 0 : 1 - v->slot;
        bool journal = false;
        cf_status s = CF_OK;

        for (size_t i = 0; i < v->m.n && cf_ok(s); i++) {
                if (v->m.ino[i]->type == SHIELD_TYPE_FILE && v->m.ino[i]->changed) {
                        s = sh_file_flush(v, v->m.ino[i], false);
                }
        }
        TRY(s);
        cf_buf_init(&plain, SH_MANIFEST_MAX, true);
        cf_buf_init(&rec, SH_HEADER_SIZE + SH_SEALED_MAX + SH_PAYLOAD_MAX, false);
        v->m.generation++;
        bump_versions(v, 1);
        s = sh_manifest_encode(&v->m, &plain);
        if (cf_ok(s)) {
                uint64_t need =
                    (uint64_t)SH_HEADER_SIZE + plain.size + CF_AEAD_OVERHEAD + v->jpay.size;

                journal =
                    v->slot >= 0 && v->has_tag && !v->jpay_over && v->jofs + need <= SH_JOURNAL_MAX;
                s = seal(v, cf_buf_slice(&plain), v->has_tag ? v->tag : zero_tag,
                         journal ? cf_buf_slice(&v->jpay) : cf_slice_make(NULL, 0), &rec);
        }
        cf_buf_done(&plain);
        if (cf_ok(s)) {
                part = cf_slice_make(rec.ptr, rec.size);
                s = cf_sha256(&part, 1, tag);
        }
        if (cf_ok(s) && !journal) {
                s = checkpoint_sync(v);
        }
        if (cf_ok(s) && v->prepare != NULL) {
                s = v->prepare(v->prepare_ctx, tag, v->m.generation);
        }
        if (cf_ok(s)) {
                cf_buf_reset(&v->rec);
                s = cf_buf_append(&v->rec, rec.ptr, rec.size);
        }
        if (cf_ok(s)) {
                s = journal ? journal_append(v, &rec) : write_manifest(v, cf_buf_slice(&rec), slot);
        }
        cf_buf_done(&rec);
        if (!cf_ok(s)) {
                bump_versions(v, -1);
                v->m.generation--;
                return s;
        }
        if (journal) {
                v->jofs += v->rec.size + v->jpay.size;
        } else {
                checkpoint_done(v, slot);
        }
        cf_buf_reset(&v->jpay);
        v->jpay_over = false;
        return CF_OK;
}

/* After the record is durable: the new state is the committed one. */
static CF_FN commit_apply(struct shield_volume *v, const uint8_t tag[SHIELD_TAG_SIZE])
{
        cf_status s = CF_OK;
        size_t keep = 0;

        memcpy(v->tag, tag, SHIELD_TAG_SIZE);
        v->has_tag = true;
        v->changed = false;
        for (size_t i = 0; i < v->m.n; i++) {
                struct sh_inode *ino = v->m.ino[i];

                if (ino->type == SHIELD_TYPE_FILE && ino->changed) {
                        ino->changed = false;
                        if (cf_ok(s)) {
                                s = trim_data(v, ino);
                        }
                        sh_file_release(v, ino, false);
                }
        }
        /* Nameless files with no handle: the manifest on disk no longer names them. */
        for (size_t i = 0; i < v->n_grave; i++) {
                struct sh_inode *g = v->grave[i];
                char name[SH_ID_SIZE * 2 + 3];

                if (g->n_handles > 0) {
                        v->grave[keep++] = g;
                        continue;
                }
                sh_file_release(v, g, true);
                sh_backing_name(g->id, 'd', name);
                cf_ignore(v->ops->unlink(v->st, name)); /* leftovers go at the next open */
                sh_backing_name(g->id, 't', name);
                cf_ignore(v->ops->unlink(v->st, name));
                sh_inode_free(g);
        }
        v->n_grave = keep;
        return s;
}

CF_FN shield_volume_commit(struct shield_volume *v, uint8_t tag_out[SHIELD_TAG_SIZE])
{
        uint8_t tag[SHIELD_TAG_SIZE];
        cf_status s;

        lock(v);
        s = check_writable(v);
        if (cf_ok(s) && !v->changed && v->has_tag) {
                memcpy(tag_out, v->tag, SHIELD_TAG_SIZE);
                unlock(v);
                return CF_OK;
        }
        if (cf_ok(s)) {
                s = commit_write(v, tag);
        }
        if (cf_ok(s)) {
                s = commit_apply(v, tag);
        }
        if (cf_ok(s)) {
                memcpy(tag_out, tag, SHIELD_TAG_SIZE);
        }
        unlock(v);
        return s;
}

CF_FN shield_volume_checkpoint(struct shield_volume *v)
{
        cf_status s;

        lock(v);
        s = check_writable(v);
        if (cf_ok(s) && v->jofs > 0 && v->slot >= 0) {
                int slot = 1 - v->slot;

                s = checkpoint_sync(v);
                if (cf_ok(s)) {
                        s = write_manifest(v, cf_buf_slice(&v->rec), slot);
                }
                if (cf_ok(s)) {
                        checkpoint_done(v, slot);
                }
        }
        unlock(v);
        return s;
}

/* ---- name space ------------------------------------------------------------------- */

static CF_FN stat_locked(struct shield_volume *v, const char *path, struct shield_stat *ret)
{
        struct sh_inode *ino;

        ENSURE(path != NULL, CF_E_INVALID_ARG);
        if (path[0] == 0) {
                *ret = (struct shield_stat){SHIELD_TYPE_DIR, 0};
                return CF_OK;
        }
        TRY(check_path(path));
        ino = lookup(v, path);
        ENSURE(ino != NULL, CF_E_NOT_FOUND);
        *ret = (struct shield_stat){ino->type, ino->type == SHIELD_TYPE_FILE ? ino->size : 0};
        return CF_OK;
}

CF_FN shield_volume_stat(struct shield_volume *v, const char *path, struct shield_stat *ret)
{
        struct shield_stat st;
        cf_status s;

        lock(v);
        s = stat_locked(v, path, &st);
        unlock(v);
        TRY(s);
        *ret = st;
        return CF_OK;
}

static CF_FN new_inode(const char *path, enum shield_type type, struct sh_inode **ret)
{
        struct sh_inode *ino = calloc(1, sizeof(*ino));

        ENSURE(ino != NULL, CF_E_NOMEM);
        ino->type = type;
        ino->name = strdup(path);
        if (ino->name == NULL) {
                free(ino);
                return cf_fail(CF_E_NOMEM);
        }
        if (type == SHIELD_TYPE_FILE) {
                cf_status s = cf_random(ino->id, sizeof(ino->id));

                if (!cf_ok(s)) {
                        sh_inode_free(ino);
                        return s;
                }
                ino->changed = true;
        }
        *ret = ino;
        return CF_OK;
}

static CF_FN mkdir_locked(struct shield_volume *v, const char *path)
{
        struct sh_inode *ino = NULL;
        cf_status s;

        TRY(check_writable(v));
        TRY(check_path(path));
        ENSURE(lookup(v, path) == NULL, CF_E_EXISTS);
        TRY(check_parent(v, path));
        TRY(new_inode(path, SHIELD_TYPE_DIR, &ino));
        s = insert_inode(v, ino);
        if (!cf_ok(s)) {
                sh_inode_free(ino);
                return s;
        }
        v->changed = true;
        return CF_OK;
}

CF_FN shield_volume_mkdir(struct shield_volume *v, const char *path)
{
        cf_status s;

        lock(v);
        s = mkdir_locked(v, path);
        unlock(v);
        return s;
}

static CF_FN remove_locked(struct shield_volume *v, const char *path, enum shield_type type)
{
        size_t i;

        TRY(check_writable(v));
        TRY(check_path(path));
        i = find(v, path);
        ENSURE(i != SIZE_MAX, CF_E_NOT_FOUND);
        ENSURE(v->m.ino[i]->type == type, CF_E_CONFLICT);
        ENSURE(type != SHIELD_TYPE_DIR || !has_children(v, path), CF_E_CONFLICT);
        return remove_at(v, i);
}

CF_FN shield_volume_rmdir(struct shield_volume *v, const char *path)
{
        cf_status s;

        lock(v);
        s = remove_locked(v, path, SHIELD_TYPE_DIR);
        unlock(v);
        return s;
}

CF_FN shield_volume_unlink(struct shield_volume *v, const char *path)
{
        cf_status s;

        lock(v);
        s = remove_locked(v, path, SHIELD_TYPE_FILE);
        unlock(v);
        return s;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp((*(struct sh_inode *const *)a)->name, (*(struct sh_inode *const *)b)->name);
}

/* Renames `from` (and, for a directory, everything below it) to `to`. All new names are
 * built before any is replaced, so a failure leaves the name space unchanged. */
static CF_FN rename_names(struct shield_volume *v, const char *from, const char *to)
{
        size_t flen = strlen(from), tlen = strlen(to), n = 0;
        CF_AUTOFREE char **names = calloc(v->m.n + 1, sizeof(*names));
        cf_status s = CF_OK;

        ENSURE(names != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < v->m.n && cf_ok(s); i++) {
                const char *old = v->m.ino[i]->name;
                size_t olen = strlen(old);

                if (strncmp(old, from, flen) != 0 || (old[flen] != 0 && old[flen] != '/')) {
                        continue;
                }
                if (tlen + (olen - flen) > SHIELD_PATH_MAX) {
                        s = cf_fail(CF_E_LIMIT);
                        break;
                }
                names[i] = malloc(tlen + (olen - flen) + 1);
                if (names[i] == NULL) {
                        s = cf_fail(CF_E_NOMEM);
                        break;
                }
                memcpy(names[i], to, tlen);
                memcpy(names[i] + tlen, old + flen, olen - flen + 1);
                n++;
        }
        for (size_t i = 0; i < v->m.n; i++) {
                if (names[i] != NULL && cf_ok(s)) {
                        free(v->m.ino[i]->name);
                        v->m.ino[i]->name = names[i];
                } else {
                        free(names[i]);
                }
        }
        TRY(s);
        ENSURE(n > 0, CF_E_INTERNAL);
        qsort(v->m.ino, v->m.n, sizeof(*v->m.ino), cmp_name);
        v->changed = true;
        return CF_OK;
}

static CF_FN rename_locked(struct shield_volume *v, const char *from, const char *to)
{
        struct sh_inode *src, *dst;
        size_t flen;

        TRY(check_writable(v));
        TRY(check_path(from));
        TRY(check_path(to));
        src = lookup(v, from);
        ENSURE(src != NULL, CF_E_NOT_FOUND);
        TRY(check_parent(v, to));
        if (strcmp(from, to) == 0) {
                return CF_OK;
        }
        flen = strlen(from);
        ENSURE(!(strncmp(to, from, flen) == 0 && to[flen] == '/'), CF_E_INVALID_ARG);
        dst = lookup(v, to);
        if (dst != NULL) {
                ENSURE(dst->type == src->type, CF_E_CONFLICT);
                ENSURE(dst->type != SHIELD_TYPE_DIR || !has_children(v, to), CF_E_EXISTS);
                TRY(remove_at(v, find(v, to)));
        }
        return rename_names(v, from, to);
}

CF_FN shield_volume_rename(struct shield_volume *v, const char *from, const char *to)
{
        cf_status s;

        lock(v);
        s = rename_locked(v, from, to);
        unlock(v);
        return s;
}

static CF_FN list_locked(struct shield_volume *v, const char *dir, shield_list_fn fn, void *ctx)
{
        size_t dlen;

        ENSURE(dir != NULL && fn != NULL, CF_E_INVALID_ARG);
        dlen = strlen(dir);
        if (dlen > 0) {
                struct sh_inode *d;

                TRY(check_path(dir));
                d = lookup(v, dir);
                ENSURE(d != NULL, CF_E_NOT_FOUND);
                ENSURE(d->type == SHIELD_TYPE_DIR, CF_E_CONFLICT);
        }
        for (size_t i = 0; i < v->m.n; i++) {
                const struct sh_inode *ino = v->m.ino[i];
                const char *rest = ino->name;
                struct shield_stat st = {ino->type, ino->type == SHIELD_TYPE_FILE ? ino->size : 0};

                if (dlen > 0) {
                        if (strncmp(rest, dir, dlen) != 0 || rest[dlen] != '/') {
                                continue;
                        }
                        rest += dlen + 1;
                }
                if (strchr(rest, '/') != NULL) {
                        continue;
                }
                TRY(fn(ctx, rest, &st));
        }
        return CF_OK;
}

CF_FN shield_volume_list(struct shield_volume *v, const char *dir, shield_list_fn fn, void *ctx)
{
        cf_status s;

        lock(v);
        s = list_locked(v, dir, fn, ctx);
        unlock(v);
        return s;
}

CF_FN shield_volume_verify(struct shield_volume *v, shield_verify_fn fn, void *ctx)
{
        size_t total = 0;
        cf_status s = CF_OK;

        lock(v);
        for (size_t i = 0; i < v->m.n && cf_ok(s); i++) {
                struct sh_inode *ino = v->m.ino[i];
                size_t n = 0;

                if (ino->type != SHIELD_TYPE_FILE) {
                        continue;
                }
                s = sh_file_verify(v, ino, fn, ctx, &n);
                total += n;
                sh_file_release(v, ino, false);
        }
        unlock(v);
        TRY(s);
        ENSURE(total == 0, CF_E_TAMPERED);
        return CF_OK;
}

/* ---- file handles ----------------------------------------------------------------- */

static CF_FN create_file(struct shield_volume *v, const char *path, struct sh_inode **ret)
{
        struct sh_inode *ino = NULL;
        cf_status s;

        TRY(check_parent(v, path));
        ENSURE(v->m.n < SHIELD_FILES_MAX, CF_E_LIMIT);
        TRY(new_inode(path, SHIELD_TYPE_FILE, &ino));
        s = sh_file_activate(v, ino, true);
        if (cf_ok(s)) {
                s = insert_inode(v, ino);
        }
        if (!cf_ok(s)) {
                sh_file_release(v, ino, true);
                sh_inode_free(ino);
                return s;
        }
        v->changed = true;
        *ret = ino;
        return CF_OK;
}

static CF_FN open_locked(struct shield_volume *v, const char *path, unsigned flags,
                         struct shield_file *f)
{
        struct sh_inode *ino;

        ENSURE((flags & ~(unsigned)(SHIELD_O_CREAT | SHIELD_O_EXCL | SHIELD_O_TRUNC)) == 0,
               CF_E_INVALID_ARG);
        TRY(check_path(path));
        ino = lookup(v, path);
        if (flags & (SHIELD_O_CREAT | SHIELD_O_TRUNC)) {
                TRY(check_writable(v));
        }
        if (ino == NULL) {
                ENSURE(flags & SHIELD_O_CREAT, CF_E_NOT_FOUND);
                TRY(create_file(v, path, &ino));
        } else {
                ENSURE(!((flags & SHIELD_O_CREAT) && (flags & SHIELD_O_EXCL)), CF_E_EXISTS);
                ENSURE(ino->type == SHIELD_TYPE_FILE, CF_E_CONFLICT);
                TRY(sh_file_activate(v, ino, false));
        }
        ino->n_handles++;
        f->v = v;
        f->ino = ino;
        if (flags & SHIELD_O_TRUNC) {
                cf_status s = sh_file_truncate(v, ino, 0);

                if (!cf_ok(s)) {
                        ino->n_handles--;
                        sh_file_release(v, ino, false);
                        return s;
                }
        }
        return CF_OK;
}

CF_FN shield_file_open(struct shield_volume *v, const char *path, unsigned flags,
                       struct shield_file **ret)
{
        struct shield_file *f = calloc(1, sizeof(*f));
        cf_status s;

        ENSURE(f != NULL, CF_E_NOMEM);
        lock(v);
        s = open_locked(v, path, flags, f);
        unlock(v);
        if (!cf_ok(s)) {
                free(f);
                return s;
        }
        *ret = f;
        return CF_OK;
}

void shield_file_close(struct shield_file *f)
{
        struct shield_volume *v;

        if (f == NULL) {
                return;
        }
        v = f->v;
        lock(v);
        cf_assert(f->ino->n_handles > 0);
        f->ino->n_handles--;
        sh_file_release(v, f->ino, false);
        unlock(v);
        free(f);
}

CF_FN shield_file_pread(struct shield_file *f, void *buf, size_t size, uint64_t off, size_t *ret_n)
{
        size_t n = 0;
        cf_status s;

        ENSURE(buf != NULL || size == 0, CF_E_INVALID_ARG);
        lock(f->v);
        s = sh_file_read(f->v, f->ino, buf, size, off, &n);
        unlock(f->v);
        TRY(s);
        *ret_n = n;
        return CF_OK;
}

CF_FN shield_file_pwrite(struct shield_file *f, const void *buf, size_t size, uint64_t off)
{
        cf_status s;

        ENSURE(buf != NULL || size == 0, CF_E_INVALID_ARG);
        lock(f->v);
        s = check_writable(f->v);
        if (cf_ok(s)) {
                s = sh_file_write(f->v, f->ino, buf, size, off);
        }
        unlock(f->v);
        return s;
}

CF_FN shield_file_truncate(struct shield_file *f, uint64_t size)
{
        cf_status s;

        lock(f->v);
        s = check_writable(f->v);
        if (cf_ok(s)) {
                s = sh_file_truncate(f->v, f->ino, size);
        }
        unlock(f->v);
        return s;
}

CF_FN shield_file_size(struct shield_file *f, uint64_t *ret)
{
        lock(f->v);
        *ret = f->ino->size;
        unlock(f->v);
        return CF_OK;
}

CF_FN shield_file_flush(struct shield_file *f)
{
        cf_status s = CF_OK;

        lock(f->v);
        if (f->ino->changed) {
                s = sh_file_flush(f->v, f->ino, true);
        }
        unlock(f->v);
        return s;
}
