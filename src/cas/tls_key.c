/* cofferd's TLS private key at rest: seal and unseal (see tls_key.h). */
#include "cas/tls_key.h"

#include <string.h>

#include "base/mem.h"

_Static_assert(CAS_TLS_KEY_HEADER_SIZE == 38, "magic, version, purpose, key id");
_Static_assert(sizeof(CAS_TLS_KEY_MAGIC) - 1 == 4, "four magic bytes");

static const char *purpose_info(enum cas_tls_key_purpose purpose)
{
        switch (purpose) {
        case CAS_TLS_KEY_SEALED:
                return CAS_TLS_KEY_INFO_SEAL;
        case CAS_TLS_KEY_RECOVERY:
                return CAS_TLS_KEY_INFO_RECOVERY;
        default:
                return NULL;
        }
}

/* The AEAD key of a purpose: HKDF-SHA256 with its own info string, so the same root key
 * (the sealing key also wraps the data key, the data key also seals the store) never serves
 * two purposes directly. */
static cf_status derive(enum cas_tls_key_purpose purpose, const uint8_t root[static 32],
                        uint8_t out[static CF_AEAD_KEY_SIZE])
{
        const char *info = purpose_info(purpose);

        ENSURE(info != NULL, CF_E_INVALID_ARG);
        return cf_hkdf_sha256(cf_slice_make(root, 32), cf_slice_make("", 0), cf_slice_str(info),
                              out, CF_AEAD_KEY_SIZE);
}

static void make_header(enum cas_tls_key_purpose purpose,
                        const uint8_t key_id[static CF_SHA256_SIZE],
                        uint8_t out[static CAS_TLS_KEY_HEADER_SIZE])
{
        memcpy(out, CAS_TLS_KEY_MAGIC, 4);
        out[4] = CAS_TLS_KEY_VERSION;
        out[5] = (uint8_t)purpose;
        memcpy(out + 6, key_id, CF_SHA256_SIZE);
}

cf_status cas_tls_key_seal(enum cas_tls_key_purpose purpose, const uint8_t root[static 32],
                           const uint8_t key_id[static CF_SHA256_SIZE], struct cf_slice key_pem,
                           struct cf_buf *out)
{
        uint8_t header[CAS_TLS_KEY_HEADER_SIZE], key[CF_AEAD_KEY_SIZE];
        CF_WIPE_ON_EXIT(key);
        size_t mark;
        cf_status s;

        ENSURE(root != NULL && key_id != NULL && out != NULL, CF_E_INVALID_ARG);
        ENSURE(purpose_info(purpose) != NULL, CF_E_INVALID_ARG);
        ENSURE(key_pem.ptr != NULL && key_pem.size > 0 && key_pem.size <= CAS_TLS_KEY_PEM_MAX,
               CF_E_LIMIT);
        TRY(derive(purpose, root, key));
        make_header(purpose, key_id, header);
        mark = out->size;
        s = cf_buf_append(out, header, sizeof(header));
        if (cf_ok(s)) {
                s = cf_aead_seal(key, cf_slice_make(header, sizeof(header)), key_pem, out);
        }
        if (!cf_ok(s)) {
                out->size = mark; /* nothing half-written is left behind */
        }
        return s;
}

cf_status cas_tls_key_unseal(enum cas_tls_key_purpose purpose, const uint8_t root[static 32],
                             const uint8_t key_id[static CF_SHA256_SIZE], struct cf_slice file,
                             struct cf_buf *key_pem)
{
        struct cf_cursor c = cf_cursor_make(file);
        struct cf_slice header, sealed;
        uint8_t magic[4], version, got_purpose, got_id[CF_SHA256_SIZE], key[CF_AEAD_KEY_SIZE];
        CF_WIPE_ON_EXIT(key);
        cf_status s;

        ENSURE(root != NULL && key_id != NULL && key_pem != NULL, CF_E_INVALID_ARG);
        ENSURE(purpose_info(purpose) != NULL, CF_E_INVALID_ARG);
        ENSURE(file.size <= CAS_TLS_KEY_FILE_MAX, CF_E_LIMIT);
        ENSURE(file.size >= CAS_TLS_KEY_HEADER_SIZE + CF_AEAD_OVERHEAD + 1, CF_E_TRUNCATED);
        TRY(cf_cursor_take(&c, CAS_TLS_KEY_HEADER_SIZE, &header));
        {
                struct cf_cursor h = cf_cursor_make(header);
                TRY(cf_cursor_copy(&h, magic, sizeof(magic)));
                TRY(cf_cursor_u8(&h, &version));
                TRY(cf_cursor_u8(&h, &got_purpose));
                TRY(cf_cursor_copy(&h, got_id, sizeof(got_id)));
                TRY(cf_cursor_expect_end(&h));
        }
        ENSURE(memcmp(magic, CAS_TLS_KEY_MAGIC, sizeof(magic)) == 0, CF_E_MALFORMED);
        ENSURE(version == CAS_TLS_KEY_VERSION, CF_E_VERSION);
        ENSURE(got_purpose == (uint8_t)purpose, CF_E_CONFLICT);
        /* Key ids are public: a plain comparison, for a precise error before the AEAD. */
        ENSURE(memcmp(got_id, key_id, sizeof(got_id)) == 0, CF_E_CONFLICT);
        TRY(cf_cursor_take(&c, cf_cursor_left(&c), &sealed));
        TRY(cf_cursor_expect_end(&c));
        TRY(derive(purpose, root, key));
        /* The file's size limit bounds the plaintext by CAS_TLS_KEY_PEM_MAX. */
        s = cf_aead_open(key, header, sealed, key_pem);
        ENSURE(s.code != CF_E_MAC_INVALID, CF_E_TAMPERED);
        TRY(s);
        return CF_OK;
}
