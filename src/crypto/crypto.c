#include "crypto/crypto.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/codec.h"
#include "base/mem.h"

struct cf_pkey {
        EVP_PKEY *pkey;
};

cf_status cf_crypto_init(void)
{
        TRY(cf_mem_init());
        ENSURE(OPENSSL_init_crypto(0, NULL) == 1, CF_E_CRYPTO);
        return CF_OK;
}

cf_status cf_random(void *out, size_t n)
{
        uint8_t *p = out;

        while (n > 0) {
                ssize_t got = getrandom(p, n, 0);
                if (got < 0 && errno == EINTR) {
                        continue;
                }
                ENSURE(got > 0, CF_E_RANDOM);
                p += got;
                n -= (size_t)got;
        }
        return CF_OK;
}

static cf_status digest(const EVP_MD *md, const struct cf_slice *parts, size_t n_parts,
                        uint8_t *out)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok;

        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_DigestInit_ex(ctx, md, NULL) == 1;
        for (size_t i = 0; ok && i < n_parts; i++) {
                ok = EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].size) == 1;
        }
        ok = ok && EVP_DigestFinal_ex(ctx, out, NULL) == 1;
        EVP_MD_CTX_free(ctx);
        ENSURE(ok, CF_E_CRYPTO);
        return CF_OK;
}

cf_status cf_sha256(const struct cf_slice *parts, size_t n_parts, uint8_t out[static CF_SHA256_SIZE])
{
        return digest(EVP_sha256(), parts, n_parts, out);
}

cf_status cf_sha512(const struct cf_slice *parts, size_t n_parts, uint8_t out[static CF_SHA512_SIZE])
{
        return digest(EVP_sha512(), parts, n_parts, out);
}

cf_status cf_sha256_hex(struct cf_slice data, char out[static CF_KEY_ID_HEX])
{
        uint8_t h[CF_SHA256_SIZE];

        TRY(cf_sha256(&data, 1, h));
        cf_hex_encode(h, sizeof(h), out, CF_KEY_ID_HEX);
        return CF_OK;
}

cf_status cf_hkdf_sha256(struct cf_slice ikm, struct cf_slice salt, struct cf_slice info,
                         uint8_t *out, size_t out_size)
{
        static const uint8_t empty[1] = { 0 };
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
        size_t n = out_size;
        bool ok;

        /* OpenSSL refuses a NULL pointer even with a zero length: an empty salt or info
         * is passed as a pointer to nothing. */
        if (salt.ptr == NULL) {
                salt = cf_slice_make(empty, 0);
        }
        if (info.ptr == NULL) {
                info = cf_slice_make(empty, 0);
        }

        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt.ptr, (int)salt.size) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm.ptr, (int)ikm.size) == 1 &&
             EVP_PKEY_CTX_add1_hkdf_info(ctx, info.ptr, (int)info.size) == 1 &&
             EVP_PKEY_derive(ctx, out, &n) == 1 && n == out_size;
        EVP_PKEY_CTX_free(ctx);
        if (!ok) {
                cf_wipe(out, out_size);
                return cf_fail(CF_E_CRYPTO);
        }
        return CF_OK;
}

cf_status cf_aead_seal(const uint8_t key[static CF_AEAD_KEY_SIZE], struct cf_slice aad,
                       struct cf_slice plain, struct cf_buf *out)
{
        EVP_CIPHER_CTX *ctx;
        uint8_t *p;
        int n = 0, fin = 0;
        bool ok;
        size_t total;

        ENSURE(plain.size <= INT32_MAX && aad.size <= INT32_MAX, CF_E_LIMIT);
        ENSURE(!cf_add_overflow(plain.size, (size_t)CF_AEAD_OVERHEAD, &total), CF_E_OVERFLOW);
        TRY(cf_buf_reserve(out, total));
        p = out->ptr + out->size;
        TRY(cf_random(p, CF_AEAD_NONCE_SIZE));
        ctx = EVP_CIPHER_CTX_new();
        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, p) == 1 &&
             (aad.size == 0 || EVP_EncryptUpdate(ctx, NULL, &n, aad.ptr, (int)aad.size) == 1) &&
             EVP_EncryptUpdate(ctx, p + CF_AEAD_NONCE_SIZE, &n, plain.ptr, (int)plain.size) == 1 &&
             EVP_EncryptFinal_ex(ctx, p + CF_AEAD_NONCE_SIZE + n, &fin) == 1 &&
             (size_t)(n + fin) == plain.size &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CF_AEAD_TAG_SIZE,
                                 p + CF_AEAD_NONCE_SIZE + plain.size) == 1;
        EVP_CIPHER_CTX_free(ctx);
        ENSURE(ok, CF_E_CRYPTO);
        out->size += total;
        out->ptr[out->size] = 0;
        return CF_OK;
}

cf_status cf_aead_open(const uint8_t key[static CF_AEAD_KEY_SIZE], struct cf_slice aad,
                       struct cf_slice sealed, struct cf_buf *out)
{
        EVP_CIPHER_CTX *ctx;
        struct cf_cursor c = cf_cursor_make(sealed);
        struct cf_slice nonce, ct, tag;
        uint8_t *p;
        int n = 0, fin = 0;
        bool ok;

        ENSURE(sealed.size >= CF_AEAD_OVERHEAD, CF_E_MAC_INVALID);
        ENSURE(sealed.size <= INT32_MAX && aad.size <= INT32_MAX, CF_E_LIMIT);
        TRY(cf_cursor_take(&c, CF_AEAD_NONCE_SIZE, &nonce));
        TRY(cf_cursor_take(&c, sealed.size - CF_AEAD_OVERHEAD, &ct));
        TRY(cf_cursor_take(&c, CF_AEAD_TAG_SIZE, &tag));
        TRY(cf_buf_reserve(out, ct.size));
        p = out->ptr + out->size;
        ctx = EVP_CIPHER_CTX_new();
        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce.ptr) == 1 &&
             (aad.size == 0 || EVP_DecryptUpdate(ctx, NULL, &n, aad.ptr, (int)aad.size) == 1) &&
             EVP_DecryptUpdate(ctx, p, &n, ct.ptr, (int)ct.size) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CF_AEAD_TAG_SIZE,
                                 (void *)(uintptr_t)tag.ptr) == 1 &&
             EVP_DecryptFinal_ex(ctx, p + n, &fin) == 1;
        EVP_CIPHER_CTX_free(ctx);
        if (!ok) {
                /* Never release unauthenticated plaintext. */
                cf_wipe(p, ct.size);
                return cf_fail(CF_E_MAC_INVALID);
        }
        out->size += ct.size;
        out->ptr[out->size] = 0;
        return CF_OK;
}

static cf_status wrap(EVP_PKEY *pkey, struct cf_pkey **ret)
{
        struct cf_pkey *k = calloc(1, sizeof(*k));

        if (k == NULL) {
                EVP_PKEY_free(pkey);
                return cf_fail(CF_E_NOMEM);
        }
        k->pkey = pkey;
        *ret = k;
        return CF_OK;
}

cf_status cf_pkey_generate(enum cf_key_type type, struct cf_pkey **ret)
{
        EVP_PKEY *pkey = NULL;

        switch (type) {
        case CF_KEY_ED25519:
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
                break;
        case CF_KEY_P256:
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case CF_KEY_P384:
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
                break;
        case CF_KEY_RSA:
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
                break;
        default:
                return cf_fail(CF_E_INVALID_ARG);
        }
        ENSURE(pkey != NULL, CF_E_CRYPTO);
        return wrap(pkey, ret);
}

static cf_status check_supported(EVP_PKEY *pkey)
{
        struct cf_pkey tmp = { pkey };

        if (cf_pkey_type(&tmp) == 0) {
                EVP_PKEY_free(pkey);
                return cf_fail(CF_E_KEY);
        }
        return CF_OK;
}

cf_status cf_pkey_from_pem(struct cf_slice pem, bool private_key, struct cf_pkey **ret)
{
        BIO *bio;
        EVP_PKEY *pkey;

        ENSURE(pem.size <= INT32_MAX, CF_E_LIMIT);
        bio = BIO_new_mem_buf(pem.ptr, (int)pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        pkey = private_key ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                           : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ENSURE(pkey != NULL, CF_E_KEY);
        TRY(check_supported(pkey));
        return wrap(pkey, ret);
}

cf_status cf_pkey_from_spki(struct cf_slice der, struct cf_pkey **ret)
{
        const unsigned char *p = der.ptr;
        EVP_PKEY *pkey;

        ENSURE(der.size <= INT32_MAX, CF_E_LIMIT);
        pkey = d2i_PUBKEY(NULL, &p, (long)der.size);
        ENSURE(pkey != NULL, CF_E_KEY);
        if (p != der.ptr + der.size) {
                EVP_PKEY_free(pkey);
                return cf_fail(CF_E_TRAILING);
        }
        TRY(check_supported(pkey));
        return wrap(pkey, ret);
}

cf_status cf_pkey_ed25519_public(const uint8_t raw[static 32], struct cf_pkey **ret)
{
        EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);

        ENSURE(pkey != NULL, CF_E_KEY);
        return wrap(pkey, ret);
}

cf_status cf_pkey_ed25519_raw_public(const struct cf_pkey *k, uint8_t out[static 32])
{
        size_t n = 32;

        ENSURE(cf_pkey_type(k) == CF_KEY_ED25519, CF_E_KEY);
        ENSURE(EVP_PKEY_get_raw_public_key(k->pkey, out, &n) == 1 && n == 32, CF_E_CRYPTO);
        return CF_OK;
}

void cf_pkey_free(struct cf_pkey *k)
{
        if (k == NULL) {
                return;
        }
        EVP_PKEY_free(k->pkey);
        free(k);
}

enum cf_key_type cf_pkey_type(const struct cf_pkey *k)
{
        char group[32];
        size_t n = 0;

        switch (EVP_PKEY_get_base_id(k->pkey)) {
        case EVP_PKEY_ED25519:
                return CF_KEY_ED25519;
        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
                return EVP_PKEY_get_bits(k->pkey) >= 2048 ? CF_KEY_RSA : 0;
        case EVP_PKEY_EC:
                if (EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                   sizeof(group), &n) != 1) {
                        return 0;
                }
                if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
                        return CF_KEY_P256;
                }
                if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
                        return CF_KEY_P384;
                }
                return 0;
        default:
                return 0;
        }
}

void *cf_pkey_evp(const struct cf_pkey *k)
{
        return k->pkey;
}

cf_status cf_pkey_private_pem(const struct cf_pkey *k, struct cf_buf *out)
{
        BIO *bio = BIO_new(BIO_s_secmem());
        char *data;
        long n;
        cf_status s = CF_OK;

        ENSURE(bio != NULL, CF_E_NOMEM);
        if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
                BIO_free(bio);
                return cf_fail(CF_E_CRYPTO);
        }
        n = BIO_get_mem_data(bio, &data);
        if (n <= 0) {
                s = cf_fail(CF_E_CRYPTO);
        } else {
                s = cf_buf_append(out, data, (size_t)n);
        }
        BIO_free(bio); /* secmem BIOs wipe on free */
        return s;
}

cf_status cf_pkey_spki_der(const struct cf_pkey *k, struct cf_buf *out)
{
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(k->pkey, &der);
        cf_status s;

        ENSURE(n > 0, CF_E_CRYPTO);
        s = cf_buf_append(out, der, (size_t)n);
        OPENSSL_free(der);
        return s;
}

cf_status cf_pkey_key_id(const struct cf_pkey *k, char out[static CF_KEY_ID_HEX])
{
        struct cf_buf der;
        cf_status s;

        cf_buf_init(&der, 1 << 16, false);
        s = cf_pkey_spki_der(k, &der);
        if (cf_ok(s)) {
                s = cf_sha256_hex(cf_buf_slice(&der), out);
        }
        cf_buf_done(&der);
        return s;
}

static const EVP_MD *sig_md(const struct cf_pkey *k)
{
        switch (cf_pkey_type(k)) {
        case CF_KEY_P384:
                return EVP_sha384();
        case CF_KEY_ED25519:
                return NULL;
        default:
                return EVP_sha256();
        }
}

cf_status cf_sign(const struct cf_pkey *k, struct cf_slice msg, struct cf_buf *sig)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = 0;
        bool ok;

        ENSURE(ctx != NULL, CF_E_NOMEM);
        ok = EVP_DigestSignInit(ctx, NULL, sig_md(k), NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, NULL, &n, msg.ptr, msg.size) == 1;
        if (ok && !cf_ok(cf_buf_reserve(sig, n))) {
                ok = false;
        }
        ok = ok && EVP_DigestSign(ctx, sig->ptr + sig->size, &n, msg.ptr, msg.size) == 1;
        EVP_MD_CTX_free(ctx);
        ENSURE(ok, CF_E_CRYPTO);
        sig->size += n;
        sig->ptr[sig->size] = 0;
        return CF_OK;
}

cf_status cf_verify(const struct cf_pkey *k, struct cf_slice msg, struct cf_slice sig)
{
        /* A fresh context per call: contexts must not be shared across key types. */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r;

        ENSURE(ctx != NULL, CF_E_NOMEM);
        r = EVP_DigestVerifyInit(ctx, NULL, sig_md(k), NULL, k->pkey);
        if (r == 1) {
                r = EVP_DigestVerify(ctx, sig.ptr, sig.size, msg.ptr, msg.size);
        }
        EVP_MD_CTX_free(ctx);
        ENSURE(r == 1, CF_E_SIG_INVALID);
        return CF_OK;
}
