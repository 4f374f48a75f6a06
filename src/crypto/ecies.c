/* ECIES over OpenSSL: EVP_PKEY_derive for ECDH, then cf_hkdf_sha256 and cf_aead_*. */
#include "crypto/ecies.h"

#include <string.h>

#include <openssl/evp.h>

#include "base/mem.h"

/* Largest ECDH output we produce: 48 bytes for P-384. */
#define ECIES_SHARED_MAX 48
#define ECIES_HEADER_MAX (1 + 2 + CF_ECIES_SPKI_MAX)

static bool ec_type(enum cf_key_type t)
{
        return t == CF_KEY_P256 || t == CF_KEY_P384;
}

/* ECDH of our private key with the peer's public key. OpenSSL checks that the peer's point
 * is valid for the curve (EVP_PKEY_derive_set_peer validates by default). */
static cf_status ecdh(const struct cf_pkey *priv, const struct cf_pkey *peer,
                      uint8_t out[static ECIES_SHARED_MAX], size_t *ret_size)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(cf_pkey_evp(priv), NULL);
        size_t n = 0;
        bool ok;

        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, cf_pkey_evp(peer)) == 1 &&
             EVP_PKEY_derive(ctx, NULL, &n) == 1 && n > 0 && n <= ECIES_SHARED_MAX;
        ok = ok && EVP_PKEY_derive(ctx, out, &n) == 1;
        EVP_PKEY_CTX_free(ctx);
        if (!ok) {
                cf_wipe(out, ECIES_SHARED_MAX);
                return cf_fail(CF_E_KEY);
        }
        *ret_size = n;
        return CF_OK;
}

/* The AEAD key, from the shared secret, the ephemeral SPKI and the recipient's SPKI hash. */
static cf_status derive_key(const struct cf_pkey *priv, const struct cf_pkey *peer,
                            const struct cf_pkey *recipient, struct cf_slice eph_spki,
                            struct cf_slice info, uint8_t key[static CF_AEAD_KEY_SIZE])
{
        uint8_t shared[ECIES_SHARED_MAX];
        CF_WIPE_ON_EXIT(shared);
        uint8_t salt[CF_ECIES_SPKI_MAX + CF_SHA256_SIZE];
        size_t shared_size = 0;
        struct cf_buf rcpt;
        struct cf_slice rs;
        cf_status s;

        ENSURE(eph_spki.size <= CF_ECIES_SPKI_MAX, CF_E_LIMIT);
        cf_buf_init(&rcpt, 1024, false);
        s = cf_pkey_spki_der(recipient, &rcpt);
        if (cf_ok(s)) {
                rs = cf_buf_slice(&rcpt);
                s = cf_sha256(&rs, 1, salt + eph_spki.size);
        }
        cf_buf_done(&rcpt);
        TRY(s);
        memcpy(salt, eph_spki.ptr, eph_spki.size);
        TRY(ecdh(priv, peer, shared, &shared_size));
        return cf_hkdf_sha256(cf_slice_make(shared, shared_size),
                              cf_slice_make(salt, eph_spki.size + CF_SHA256_SIZE), info, key,
                              CF_AEAD_KEY_SIZE);
}

cf_status cf_ecies_seal(const struct cf_pkey *recipient, struct cf_slice info,
                        struct cf_slice plain, struct cf_buf *out)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *eph = NULL;
        uint8_t key[CF_AEAD_KEY_SIZE];
        CF_WIPE_ON_EXIT(key);
        uint8_t header[ECIES_HEADER_MAX];
        struct cf_buf spki, msg;
        size_t header_size = 0;
        cf_status s;

        ENSURE(recipient != NULL && out != NULL, CF_E_INVALID_ARG);
        ENSURE(ec_type(cf_pkey_type(recipient)), CF_E_KEY);
        ENSURE(plain.size <= CF_ECIES_PLAIN_MAX, CF_E_LIMIT);
        ENSURE(info.size <= CF_ECIES_INFO_MAX, CF_E_LIMIT);
        TRY(cf_pkey_generate(cf_pkey_type(recipient), &eph));

        cf_buf_init(&spki, CF_ECIES_SPKI_MAX, false);
        s = cf_pkey_spki_der(eph, &spki);
        if (cf_ok(s)) {
                header[0] = CF_ECIES_VERSION;
                header[1] = (uint8_t)(spki.size >> 8);
                header[2] = (uint8_t)spki.size;
                memcpy(header + 3, spki.ptr, spki.size);
                header_size = 3 + spki.size;
                s = derive_key(eph, recipient, recipient, cf_buf_slice(&spki), info, key);
        }
        cf_buf_done(&spki);
        TRY(s);

        /* Built aside and appended at the end, so out changes only on success. */
        cf_buf_init(&msg, ECIES_HEADER_MAX + CF_ECIES_PLAIN_MAX + CF_AEAD_OVERHEAD, false);
        s = cf_buf_append(&msg, header, header_size);
        if (cf_ok(s)) {
                s = cf_aead_seal(key, cf_slice_make(header, header_size), plain, &msg);
        }
        if (cf_ok(s)) {
                s = cf_buf_append(out, msg.ptr, msg.size);
        }
        cf_buf_done(&msg);
        return s;
}

cf_status cf_ecies_open(const struct cf_pkey *recipient_private, struct cf_slice info,
                        struct cf_slice sealed, struct cf_buf *out)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *eph = NULL;
        struct cf_cursor c = cf_cursor_make(sealed);
        struct cf_cursor whole = c;
        uint8_t key[CF_AEAD_KEY_SIZE];
        CF_WIPE_ON_EXIT(key);
        struct cf_slice spki, header, body;
        uint8_t version;
        uint16_t spki_size;
        cf_status s;

        ENSURE(recipient_private != NULL && out != NULL, CF_E_INVALID_ARG);
        ENSURE(ec_type(cf_pkey_type(recipient_private)), CF_E_KEY);
        ENSURE(info.size <= CF_ECIES_INFO_MAX, CF_E_LIMIT);

        TRY(cf_cursor_u8(&c, &version));
        ENSURE(version == CF_ECIES_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u16be(&c, &spki_size));
        ENSURE(spki_size > 0, CF_E_MALFORMED);
        ENSURE(spki_size <= CF_ECIES_SPKI_MAX, CF_E_LIMIT);
        TRY(cf_cursor_take(&c, spki_size, &spki));
        /* The header again as one slice (the AEAD's additional data), from a second cursor. */
        TRY(cf_cursor_take(&whole, 3 + (size_t)spki_size, &header));
        ENSURE(cf_cursor_left(&c) >= CF_AEAD_OVERHEAD, CF_E_TRUNCATED);
        ENSURE(cf_cursor_left(&c) <= CF_ECIES_PLAIN_MAX + CF_AEAD_OVERHEAD, CF_E_LIMIT);
        TRY(cf_cursor_take(&c, cf_cursor_left(&c), &body));
        TRY(cf_cursor_expect_end(&c));

        s = cf_pkey_from_spki(spki, &eph);
        ENSURE(cf_ok(s), CF_E_KEY);
        /* The ephemeral key must be on the recipient's curve: no cross-curve ECDH. */
        ENSURE(cf_pkey_type(eph) == cf_pkey_type(recipient_private), CF_E_KEY);
        TRY(derive_key(recipient_private, eph, recipient_private, spki, info, key));
        return cf_aead_open(key, header, body, out);
}
