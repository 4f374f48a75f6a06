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

/* ---- manifest sealing ------------------------------------------------------------- */

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

/* One manifest slot as found at open. */
struct slot_rec {
        cf_status s; /* CF_OK: authenticated and decoded; else why not (CF_E_NOT_FOUND: none) */
        struct sh_manifest m;
        uint8_t tag[SHIELD_TAG_SIZE];
};

/* Parses a slot file: checks the header, opens the sealed body into plain (a secret
 * buffer) and hashes the record (the volume tag). Bytes after the record are leftovers of
 * a longer earlier record and are not read. */
static CF_FN unseal(const struct shield_volume *v, struct cf_slice file, struct cf_buf *plain,
                    uint64_t *ret_generation, uint8_t tag[SHIELD_TAG_SIZE])
{
        struct cf_cursor c = cf_cursor_make(file);
        struct cf_slice magic, body, record;
        uint32_t format, len;
        uint64_t generation;

        TRY(cf_cursor_take(&c, SH_MAGIC_SIZE, &magic));
        ENSURE(memcmp(magic.ptr, SH_MAGIC, SH_MAGIC_SIZE) == 0, CF_E_MALFORMED);
        TRY(cf_cursor_u32le(&c, &format));
        ENSURE(format == SH_FILE_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u64le(&c, &generation));
        TRY(cf_cursor_u32le(&c, &len));
        ENSURE(len >= CF_AEAD_OVERHEAD, CF_E_MALFORMED);
        ENSURE(len <= SH_SEALED_MAX, CF_E_LIMIT);
        ENSURE(cf_cursor_left(&c) >= len, CF_E_TRUNCATED);
        TRY(cf_cursor_take(&c, len, &body));
        TRY(cf_aead_open(v->manifest_key, cf_slice_make(file.ptr, SH_HEADER_SIZE), body, plain));
        record = cf_slice_make(file.ptr, SH_HEADER_SIZE + (size_t)len);
        TRY(cf_sha256(&record, 1, tag));
        *ret_generation = generation;
        return CF_OK;
}

/* Seals the manifest into a slot record: header (with the generation and the body length,
 * authenticated as AAD) || nonce || ciphertext || GCM tag. */
static CF_FN seal(const struct shield_volume *v, struct cf_buf *out)
{
        struct cf_buf plain;
        uint8_t head[SH_HEADER_SIZE];
        cf_status s;

        cf_buf_init(&plain, SH_MANIFEST_MAX, true);
        s = sh_manifest_encode(&v->m, &plain);
        if (cf_ok(s) && plain.size + CF_AEAD_OVERHEAD > SH_SEALED_MAX) {
                s = cf_fail(CF_E_LIMIT);
        }
        if (cf_ok(s)) {
                memcpy(head, SH_MAGIC, SH_MAGIC_SIZE);
                put_u32le(head + SH_MAGIC_SIZE, SH_FILE_VERSION);
                put_u64le(head + SH_MAGIC_SIZE + 4, v->m.generation);
                put_u32le(head + SH_MAGIC_SIZE + 12, (uint32_t)(plain.size + CF_AEAD_OVERHEAD));
                s = cf_buf_append(out, head, sizeof(head));
        }
        if (cf_ok(s)) {
                s = cf_aead_seal(v->manifest_key, cf_slice_make(head, sizeof(head)),
                                 cf_buf_slice(&plain), out);
        }
        cf_buf_done(&plain);
        return s;
}

static CF_FN read_all(const struct shield_volume *v, const char *name, struct cf_buf *out)
{
        void *h = NULL;
        uint64_t size = 0;
        size_t got = 0;
        cf_status s;

        TRY(v->ops->open(v->st, name, 0, &h));
        s = v->ops->size(v->st, h, &size);
        if (cf_ok(s) && size > SH_SLOT_FILE_MAX) {
                s = cf_fail(CF_E_LIMIT);
        }
        if (cf_ok(s)) {
                s = cf_buf_reserve(out, (size_t)size);
        }
        if (cf_ok(s)) {
                s = v->ops->pread(v->st, h, out->ptr, (size_t)size, 0, &got);
        }
        v->ops->close(v->st, h);
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

/* Reads, authenticates and decodes one slot into r (r->s says how it went). */
static void load_slot(const struct shield_volume *v, int slot, struct slot_rec *r)
{
        struct cf_buf file, plain;
        uint64_t generation = 0;

        memset(r, 0, sizeof(*r));
        cf_buf_init(&file, SH_SLOT_FILE_MAX, false);
        cf_buf_init(&plain, SH_MANIFEST_MAX, true);
        r->s = read_all(v, slot_name(slot), &file);
        if (cf_ok(r->s)) {
                r->s = unseal(v, cf_buf_slice(&file), &plain, &generation, r->tag);
        }
        if (cf_ok(r->s)) {
                r->s = sh_manifest_decode(cf_buf_slice(&plain), &r->m);
        }
        /* The header's generation is authenticated (AAD) and must be the manifest's. */
        if (cf_ok(r->s) && r->m.generation != generation) {
                sh_manifest_done(&r->m);
                r->s = cf_fail(CF_E_MALFORMED);
        }
        cf_buf_done(&plain);
        cf_buf_done(&file);
}

/* Opens the manifest: of the two slots, the authentic one with the highest generation that
 * the freshness rules accept. A slot that does not authenticate is a write a crash cut
 * short (or an edit): the other slot then holds the previous commit, which is accepted
 * only if its tag is still expected, so falling back never admits an older state than the
 * rules allow. When no slot is accepted, a damaged slot's error is reported (an edit is
 * not a rollback), else CF_E_ROLLBACK. */
static CF_FN load_manifest(struct shield_volume *v, const uint8_t *const expected[], size_t n,
                           uint64_t min_generation, unsigned flags)
{
        struct slot_rec r[2];
        void *h = NULL;
        cf_status s = v->ops->open(v->st, SH_MANIFEST_LEGACY, 0, &h);
        int order[2] = {0, 1}, chosen = -1;
        bool any_valid = false;

        if (cf_ok(s)) {
                v->ops->close(v->st, h);
                return cf_fail(CF_E_VERSION); /* a volume of format 1 */
        }
        if (s.code != CF_E_NOT_FOUND) {
                return s;
        }
        load_slot(v, 0, &r[0]);
        load_slot(v, 1, &r[1]);
        if (cf_ok(r[0].s) && cf_ok(r[1].s) && r[1].m.generation > r[0].m.generation) {
                order[0] = 1;
                order[1] = 0;
        }
        for (int k = 0; k < 2 && chosen < 0; k++) {
                struct slot_rec *x = &r[order[k]];

                if (!cf_ok(x->s)) {
                        continue;
                }
                any_valid = true;
                if ((flags & SHIELD_OPEN_ACCEPT_ANY_TAG) || tag_expected(x->tag, expected, n) ||
                    ((flags & SHIELD_OPEN_ACCEPT_NEWER) && x->m.generation > min_generation)) {
                        chosen = order[k];
                }
        }
        if (chosen >= 0) {
                v->m = r[chosen].m;
                memcpy(v->tag, r[chosen].tag, SHIELD_TAG_SIZE);
                v->has_tag = true;
                v->slot = chosen;
                if (cf_ok(r[1 - chosen].s)) {
                        sh_manifest_done(&r[1 - chosen].m);
                }
                return CF_OK;
        }
        for (int k = 0; k < 2; k++) {
                if (cf_ok(r[k].s)) {
                        sh_manifest_done(&r[k].m);
                }
        }
        for (int k = 0; k < 2; k++) {
                if (!cf_ok(r[k].s) && r[k].s.code != CF_E_NOT_FOUND) {
                        return r[k].s;
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

/* Header of a slot file without the key: its generation and record length. */
static CF_FN peek_slot(const struct shield_storage_ops *ops, void *st, int slot,
                       uint8_t tag[SHIELD_TAG_SIZE], uint64_t *ret_generation)
{
        struct shield_volume probe = {.ops = ops, .st = st};
        struct cf_buf file;
        struct cf_cursor c;
        struct cf_slice magic, record;
        uint32_t format = 0, len = 0;
        uint64_t generation = 0;
        cf_status s;

        cf_buf_init(&file, SH_SLOT_FILE_MAX, false);
        s = read_all(&probe, slot_name(slot), &file);
        c = cf_cursor_make(cf_buf_slice(&file));
        if (cf_ok(s)) {
                s = cf_cursor_take(&c, SH_MAGIC_SIZE, &magic);
        }
        if (cf_ok(s) && memcmp(magic.ptr, SH_MAGIC, SH_MAGIC_SIZE) != 0) {
                s = cf_fail(CF_E_MALFORMED);
        }
        if (cf_ok(s)) {
                s = cf_cursor_u32le(&c, &format);
        }
        if (cf_ok(s)) {
                s = cf_cursor_u64le(&c, &generation);
        }
        if (cf_ok(s)) {
                s = cf_cursor_u32le(&c, &len);
        }
        if (cf_ok(s) && (format != SH_FILE_VERSION || len > cf_cursor_left(&c))) {
                s = cf_fail(CF_E_MALFORMED);
        }
        if (cf_ok(s)) {
                record = cf_slice_make(file.ptr, SH_HEADER_SIZE + (size_t)len);
                s = cf_sha256(&record, 1, tag);
        }
        cf_buf_done(&file);
        TRY(s);
        *ret_generation = generation;
        return CF_OK;
}

CF_FN shield_disk_tag(const struct shield_storage_ops *ops, void *st, uint8_t tag[SHIELD_TAG_SIZE])
{
        uint8_t t[2][SHIELD_TAG_SIZE];
        uint64_t g[2] = {0, 0};
        bool ok[2];

        ENSURE(ops != NULL && tag != NULL, CF_E_INVALID_ARG);
        for (int i = 0; i < 2; i++) {
                ok[i] = cf_ok(peek_slot(ops, st, i, t[i], &g[i]));
        }
        ENSURE(ok[0] || ok[1], CF_E_NOT_FOUND);
        memcpy(tag, t[ok[1] && (!ok[0] || g[1] > g[0]) ? 1 : 0], SHIELD_TAG_SIZE);
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
        for (size_t i = 0; i < v->m.n; i++) {
                sh_file_release(v, v->m.ino[i], true);
        }
        for (size_t i = 0; i < v->n_grave; i++) {
                sh_file_release(v, v->grave[i], true);
                sh_inode_free(v->grave[i]);
        }
        free(v->grave);
        sh_manifest_done(&v->m);
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

static void bump_versions(struct shield_volume *v, int delta)
{
        for (size_t i = 0; i < v->m.n; i++) {
                struct sh_inode *ino = v->m.ino[i];

                if (ino->type == SHIELD_TYPE_FILE && ino->changed) {
                        ino->version = delta > 0 ? ino->version + 1 : ino->version - 1;
                }
        }
}

/* Writes the sealed record into the slot that does not hold the current state, in place,
 * and makes it durable: one fdatasync (plus a directory sync the first time a slot file is
 * created, and whenever backing files were created since the last one, so that the
 * manifest never names a backing file whose directory entry a crash could lose). */
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

/* Flushes, seals and writes the manifest. On failure nothing in memory has changed and
 * the slot holding the current state is untouched. */
static CF_FN commit_write(struct shield_volume *v, uint8_t tag[SHIELD_TAG_SIZE])
{
        struct cf_buf sealed;
        struct cf_slice part;
        int slot = v->slot < 0 ? 0 : 1 - v->slot;
        cf_status s = CF_OK;

        for (size_t i = 0; i < v->m.n && cf_ok(s); i++) {
                if (v->m.ino[i]->type == SHIELD_TYPE_FILE && v->m.ino[i]->changed) {
                        s = sh_file_flush(v, v->m.ino[i], true);
                }
        }
        TRY(s);
        cf_buf_init(&sealed, SH_HEADER_SIZE + SH_SEALED_MAX, false);
        v->m.generation++;
        bump_versions(v, 1);
        s = seal(v, &sealed);
        if (cf_ok(s)) {
                part = cf_slice_make(sealed.ptr, sealed.size);
                s = cf_sha256(&part, 1, tag);
        }
        if (cf_ok(s) && v->prepare != NULL) {
                s = v->prepare(v->prepare_ctx, tag, v->m.generation);
        }
        if (cf_ok(s)) {
                s = write_manifest(v, cf_buf_slice(&sealed), slot);
        }
        cf_buf_done(&sealed);
        if (!cf_ok(s)) {
                bump_versions(v, -1);
                v->m.generation--;
                return s;
        }
        v->slot = slot;
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
