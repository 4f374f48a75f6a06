/* On-disk encodings of the shield (docs/formats/volume.md): tree entries and nodes, the
 * plaintext manifest, path rules and the layout arithmetic of the backing files.
 *
 * Decoders here read bytes that came from untrusted storage (nodes) or that were just
 * authenticated (manifest); both are read only through struct cf_cursor and validated
 * field by field, so a bug elsewhere cannot turn into an out-of-bounds access. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "shield/shield_internal.h"

static bool all_zero(const uint8_t *p, size_t n)
{
        uint8_t acc = 0;

        for (size_t i = 0; i < n; i++) {
                acc |= p[i];
        }
        return acc == 0;
}

static void put_u64le(uint8_t *p, uint64_t v)
{
        for (unsigned i = 0; i < 8; i++) {
                p[i] = (uint8_t)(v >> (8 * i));
        }
}

void sh_entry_encode(const struct sh_entry *e, uint8_t out[SH_ENTRY_SIZE])
{
        memset(out, 0, SH_ENTRY_SIZE);
        memcpy(out, e->data, sizeof(e->data));
        put_u64le(out + 32, e->version);
        out[40] = e->flags;
}

CF_FN sh_entry_decode(struct cf_cursor *c, bool leaf, struct sh_entry *ret)
{
        struct sh_entry e = {0};
        uint8_t reserved[7];

        TRY(cf_cursor_copy(c, e.data, sizeof(e.data)));
        TRY(cf_cursor_u64le(c, &e.version));
        TRY(cf_cursor_u8(c, &e.flags));
        TRY(cf_cursor_copy(c, reserved, sizeof(reserved)));
        ENSURE(all_zero(reserved, sizeof(reserved)), CF_E_MALFORMED);
        ENSURE((e.flags & ~(unsigned)(SH_ENTRY_F_PRESENT | SH_ENTRY_F_SLOT)) == 0, CF_E_MALFORMED);
        /* Never written: nothing else may be set. */
        ENSURE(e.version != 0 || (e.flags == 0 && all_zero(e.data, sizeof(e.data))),
               CF_E_MALFORMED);
        if (!(e.flags & SH_ENTRY_F_PRESENT)) {
                /* A hole keeps only its slot history; inner nodes never become holes. */
                ENSURE(all_zero(e.data, sizeof(e.data)), CF_E_MALFORMED);
                ENSURE(leaf || e.version == 0, CF_E_MALFORMED);
        } else if (leaf) {
                ENSURE(all_zero(e.data + SH_NONCE_SIZE + SH_GCM_TAG_SIZE, 4), CF_E_MALFORMED);
        }
        *ret = e;
        return CF_OK;
}

void sh_node_encode(const struct sh_entry e[SH_FANOUT], uint8_t out[SH_NODE_SIZE])
{
        for (unsigned i = 0; i < SH_FANOUT; i++) {
                sh_entry_encode(&e[i], out + (size_t)i * SH_ENTRY_SIZE);
        }
}

CF_FN sh_node_decode(struct cf_slice bytes, bool leaf, struct sh_entry ret[SH_FANOUT])
{
        struct cf_cursor c = cf_cursor_make(bytes);
        struct sh_entry e[SH_FANOUT];

        ENSURE(bytes.size >= SH_NODE_SIZE, CF_E_TRUNCATED);
        for (unsigned i = 0; i < SH_FANOUT; i++) {
                TRY(sh_entry_decode(&c, leaf, &e[i]));
        }
        TRY(cf_cursor_expect_end(&c));
        memcpy(ret, e, sizeof(e));
        return CF_OK;
}

uint64_t sh_chunks_for(uint64_t size)
{
        return size / SHIELD_CHUNK_SIZE + (size % SHIELD_CHUNK_SIZE != 0);
}

uint64_t sh_capacity(uint8_t height)
{
        return height == 0 ? 0 : (uint64_t)1 << (SH_FANOUT_SHIFT * height);
}

uint8_t sh_height_for(uint64_t chunks)
{
        uint8_t h = 0;

        while (sh_capacity(h) < chunks && h < SH_LEVELS_MAX) {
                h++;
        }
        return h;
}

/* Positions in a full subtree rooted at `level`: (64^(level+1) - 1) / 63. */
static uint64_t subtree_size(unsigned level)
{
        return (((uint64_t)1 << (SH_FANOUT_SHIFT * (level + 1))) - 1) / (SH_FANOUT - 1);
}

/* Nodes are laid out as if every file had the tallest tree: a subtree is its first child's
 * subtree, then its own node, then the other children's subtrees. A node's position then
 * never changes when the tree grows, and a file's tree file stays proportional to its data
 * (the root of a tall tree sits right after its first child's subtree). */
uint64_t sh_node_pos(uint8_t level, uint64_t index)
{
        uint64_t base = 0;

        for (unsigned cur = SH_LEVELS_MAX - 1; cur > level; cur--) {
                uint64_t j = (index >> (SH_FANOUT_SHIFT * (cur - 1u - level))) & (SH_FANOUT - 1);

                if (j != 0) {
                        base += 1 + j * subtree_size(cur - 1);
                }
        }
        return base + (level == 0 ? 0 : subtree_size(level - 1u));
}

uint64_t sh_node_offset(uint8_t level, uint64_t index, unsigned slot)
{
        return (2 * sh_node_pos(level, index) + slot) * SH_NODE_SIZE;
}

/* Chunks come in groups of 64: the group's slot-0 region, then its slot-1 region, so a
 * sequential read of chunks that share a slot stays sequential on disk. */
uint64_t sh_chunk_offset(uint64_t chunk, unsigned slot)
{
        uint64_t group = chunk / SH_GROUP_CHUNKS;

        return ((group * 2 + slot) * SH_GROUP_CHUNKS + chunk % SH_GROUP_CHUNKS) * SHIELD_CHUNK_SIZE;
}

uint64_t sh_data_extent(uint64_t size)
{
        uint64_t groups = (sh_chunks_for(size) + SH_GROUP_CHUNKS - 1) / SH_GROUP_CHUNKS;

        return groups * 2 * SH_GROUP_CHUNKS * SHIELD_CHUNK_SIZE;
}

CF_FN sh_path_check(struct cf_slice path)
{
        size_t start = 0;

        ENSURE(path.size >= 1 && path.size <= SHIELD_PATH_MAX, CF_E_INVALID_ARG);
        for (size_t i = 0; i <= path.size; i++) {
                if (i < path.size && path.ptr[i] != '/') {
                        ENSURE(path.ptr[i] != 0, CF_E_INVALID_ARG);
                        continue;
                }
                size_t len = i - start;

                ENSURE(len >= 1 && len <= SHIELD_NAME_MAX, CF_E_INVALID_ARG);
                ENSURE(!(len == 1 && path.ptr[start] == '.'), CF_E_INVALID_ARG);
                ENSURE(!(len == 2 && path.ptr[start] == '.' && path.ptr[start + 1] == '.'),
                       CF_E_INVALID_ARG);
                start = i + 1;
        }
        return CF_OK;
}

void sh_inode_free(struct sh_inode *ino)
{
        if (ino == NULL) {
                return;
        }
        free(ino->name);
        free(ino);
}

void sh_manifest_done(struct sh_manifest *m)
{
        for (size_t i = 0; i < m->n; i++) {
                sh_inode_free(m->ino[i]);
        }
        free(m->ino);
        *m = (struct sh_manifest){0};
}

/* Finds name in the sorted prefix m->ino[0..n); returns its index or SIZE_MAX. */
size_t sh_find_sorted(struct sh_inode *const *ino, size_t n, struct cf_slice name)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                size_t len = strlen(ino[mid]->name);
                size_t k = len < name.size ? len : name.size;
                int r = memcmp(ino[mid]->name, name.ptr, k);

                if (r == 0) {
                        r = len < name.size ? -1 : (len > name.size ? 1 : 0);
                }
                if (r == 0) {
                        return mid;
                }
                if (r < 0) {
                        lo = mid + 1;
                } else {
                        hi = mid;
                }
        }
        return SIZE_MAX;
}

static CF_FN decode_file_fields(struct cf_cursor *c, struct sh_inode *ino)
{
        TRY(cf_cursor_copy(c, ino->id, sizeof(ino->id)));
        TRY(cf_cursor_u64le(c, &ino->size));
        TRY(cf_cursor_u64le(c, &ino->version));
        TRY(cf_cursor_u8(c, &ino->height));
        TRY(sh_entry_decode(c, false, &ino->root));
        ENSURE(ino->size <= SHIELD_FILE_SIZE_MAX, CF_E_MALFORMED);
        ENSURE(ino->height <= SH_LEVELS_MAX, CF_E_MALFORMED);
        ENSURE(sh_capacity(ino->height) >= sh_chunks_for(ino->size), CF_E_MALFORMED);
        ENSURE(ino->height != 0 || ino->root.version == 0, CF_E_MALFORMED);
        /* The root cannot be newer than the file's committed version. */
        ENSURE(ino->root.version <= ino->version, CF_E_MALFORMED);
        return CF_OK;
}

static CF_FN decode_inode(struct cf_cursor *c, const struct sh_manifest *m, struct sh_inode **ret)
{
        uint8_t type;
        uint16_t name_len;
        struct cf_slice name;
        struct sh_inode *ino;

        TRY(cf_cursor_u8(c, &type));
        ENSURE(type == SHIELD_TYPE_FILE || type == SHIELD_TYPE_DIR, CF_E_MALFORMED);
        TRY(cf_cursor_u16le(c, &name_len));
        ENSURE(name_len >= 1 && name_len <= SHIELD_PATH_MAX, CF_E_MALFORMED);
        TRY(cf_cursor_take(c, name_len, &name));
        ENSURE(cf_ok(sh_path_check(name)), CF_E_MALFORMED);
        if (m->n > 0) {
                /* Strictly ascending byte order: no duplicates, binary search works. */
                const char *prev = m->ino[m->n - 1]->name;
                size_t plen = strlen(prev), k = plen < name.size ? plen : name.size;
                int r = memcmp(prev, name.ptr, k);

                ENSURE(r < 0 || (r == 0 && plen < name.size), CF_E_MALFORMED);
        }
        for (size_t i = name.size; i > 0; i--) {
                if (name.ptr[i - 1] == '/') {
                        size_t p = sh_find_sorted(m->ino, m->n, cf_slice_make(name.ptr, i - 1));

                        ENSURE(p != SIZE_MAX && m->ino[p]->type == SHIELD_TYPE_DIR, CF_E_MALFORMED);
                        break;
                }
        }
        ino = calloc(1, sizeof(*ino));
        ENSURE(ino != NULL, CF_E_NOMEM);
        ino->type = (enum shield_type)type;
        ino->name = calloc(1, (size_t)name_len + 1);
        if (ino->name == NULL) {
                free(ino);
                return cf_fail(CF_E_NOMEM);
        }
        memcpy(ino->name, name.ptr, name.size);
        if (type == SHIELD_TYPE_FILE) {
                cf_status s = decode_file_fields(c, ino);

                if (!cf_ok(s)) {
                        sh_inode_free(ino);
                        return s;
                }
        }
        *ret = ino;
        return CF_OK;
}

static int cmp_id(const void *a, const void *b)
{
        const struct sh_inode *x = *(struct sh_inode *const *)a;
        const struct sh_inode *y = *(struct sh_inode *const *)b;

        return memcmp(x->id, y->id, SH_ID_SIZE);
}

static CF_FN check_unique_ids(const struct sh_manifest *m)
{
        CF_AUTOFREE struct sh_inode **files = calloc(m->n + 1, sizeof(*files));
        size_t n = 0;

        ENSURE(files != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < m->n; i++) {
                if (m->ino[i]->type == SHIELD_TYPE_FILE) {
                        files[n++] = m->ino[i];
                }
        }
        qsort(files, n, sizeof(*files), cmp_id);
        for (size_t i = 1; i < n; i++) {
                ENSURE(memcmp(files[i - 1]->id, files[i]->id, SH_ID_SIZE) != 0, CF_E_MALFORMED);
        }
        return CF_OK;
}

static CF_FN decode_entries(struct cf_cursor *c, uint32_t n, struct sh_manifest *m)
{
        for (uint32_t i = 0; i < n; i++) {
                TRY(decode_inode(c, m, &m->ino[m->n]));
                m->n++;
        }
        TRY(cf_cursor_expect_end(c));
        return check_unique_ids(m);
}

CF_FN sh_manifest_decode(struct cf_slice plain, struct sh_manifest *ret)
{
        struct cf_cursor c = cf_cursor_make(plain);
        struct sh_manifest m = {0};
        uint32_t format, n;
        cf_status s;

        ENSURE(plain.size <= SH_MANIFEST_MAX, CF_E_LIMIT);
        TRY(cf_cursor_u32le(&c, &format));
        ENSURE(format == SH_FORMAT_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u64le(&c, &m.generation));
        TRY(cf_cursor_u32le(&c, &n));
        ENSURE(n <= SHIELD_FILES_MAX, CF_E_LIMIT);
        /* Each entry takes at least 4 bytes: refuse counts the input cannot hold before
         * allocating for them. */
        ENSURE(n <= cf_cursor_left(&c) / 4, CF_E_TRUNCATED);
        m.cap = (size_t)n + 1;
        m.ino = calloc(m.cap, sizeof(*m.ino));
        ENSURE(m.ino != NULL, CF_E_NOMEM);
        s = decode_entries(&c, n, &m);
        if (!cf_ok(s)) {
                sh_manifest_done(&m);
                return s;
        }
        *ret = m;
        return CF_OK;
}

static CF_FN encode_inode(const struct sh_inode *ino, struct cf_buf *out)
{
        uint8_t head[3], fixed[SH_ID_SIZE + 17 + SH_ENTRY_SIZE];
        size_t len = strlen(ino->name);

        head[0] = (uint8_t)ino->type;
        head[1] = (uint8_t)(len & 0xff);
        head[2] = (uint8_t)(len >> 8);
        TRY(cf_buf_append(out, head, sizeof(head)));
        TRY(cf_buf_append(out, ino->name, len));
        if (ino->type != SHIELD_TYPE_FILE) {
                return CF_OK;
        }
        memcpy(fixed, ino->id, SH_ID_SIZE);
        put_u64le(fixed + SH_ID_SIZE, ino->size);
        put_u64le(fixed + SH_ID_SIZE + 8, ino->version);
        fixed[SH_ID_SIZE + 16] = ino->height;
        sh_entry_encode(&ino->root, fixed + SH_ID_SIZE + 17);
        return cf_buf_append(out, fixed, sizeof(fixed));
}

CF_FN sh_manifest_encode(const struct sh_manifest *m, struct cf_buf *out)
{
        uint8_t head[16];

        ENSURE(m->n <= SHIELD_FILES_MAX, CF_E_LIMIT);
        memset(head, 0, sizeof(head));
        head[0] = (uint8_t)SH_FORMAT_VERSION;
        put_u64le(head + 4, m->generation);
        head[12] = (uint8_t)(m->n & 0xff);
        head[13] = (uint8_t)((m->n >> 8) & 0xff);
        head[14] = (uint8_t)((m->n >> 16) & 0xff);
        head[15] = (uint8_t)((m->n >> 24) & 0xff);
        TRY(cf_buf_append(out, head, sizeof(head)));
        for (size_t i = 0; i < m->n; i++) {
                TRY(encode_inode(m->ino[i], out));
        }
        return CF_OK;
}
