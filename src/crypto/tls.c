#include "crypto/tls.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/codec.h"
#include "base/mem.h"

cf_status cf_x509_self_signed(const struct cf_pkey *key, const char *common_name, int days,
                              struct cf_buf *out)
{
        EVP_PKEY *pkey = cf_pkey_evp(key);
        X509 *x = X509_new();
        X509_NAME *name;
        BIO *bio = NULL;
        ASN1_INTEGER *serial;
        uint8_t rnd[16];
        BIGNUM *bn = NULL;
        char *data;
        long n;
        bool ok;
        cf_status s = CF_OK;

        ENSURE(x != NULL, CF_E_NOMEM);
        TRY(cf_random(rnd, sizeof(rnd)));
        rnd[0] &= 0x7f; /* positive serial */
        bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
        serial = X509_get_serialNumber(x);
        ok = bn != NULL && BN_to_ASN1_INTEGER(bn, serial) != NULL &&
             X509_set_version(x, 2) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -60) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) != NULL &&
             X509_set_pubkey(x, pkey) == 1;
        name = X509_get_subject_name(x);
        ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                              (const unsigned char *)common_name, -1, -1, 0) == 1;
        ok = ok && X509_set_issuer_name(x, name) == 1;
        ok = ok && X509_sign(x, pkey, cf_pkey_type(key) == CF_KEY_ED25519 ? NULL
                                      : cf_pkey_type(key) == CF_KEY_P384 ? EVP_sha384()
                                                                         : EVP_sha256()) > 0;
        if (ok) {
                bio = BIO_new(BIO_s_mem());
                ok = bio != NULL && PEM_write_bio_X509(bio, x) == 1;
        }
        if (ok && (n = BIO_get_mem_data(bio, &data)) > 0) {
                s = cf_buf_append(out, data, (size_t)n);
        } else {
                s = cf_fail(CF_E_CRYPTO);
        }
        BIO_free(bio);
        BN_free(bn);
        X509_free(x);
        return s;
}

cf_status cf_x509_key_id(X509 *cert, char out[static CF_KEY_ID_HEX])
{
        X509_PUBKEY *pub = X509_get_X509_PUBKEY(cert);
        unsigned char *der = NULL;
        int n;
        cf_status s;

        ENSURE(pub != NULL, CF_E_CERT);
        n = i2d_X509_PUBKEY(pub, &der);
        ENSURE(n > 0, CF_E_CERT);
        s = cf_sha256_hex(cf_slice_make(der, (size_t)n), out);
        OPENSSL_free(der);
        return s;
}

cf_status cf_x509_pem_key_id(struct cf_slice pem, char out[static CF_KEY_ID_HEX])
{
        BIO *bio;
        X509 *x;
        cf_status s;

        ENSURE(pem.size <= INT32_MAX, CF_E_LIMIT);
        bio = BIO_new_mem_buf(pem.ptr, (int)pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ENSURE(x != NULL, CF_E_CERT);
        s = cf_x509_key_id(x, out);
        X509_free(x);
        return s;
}

cf_status cf_pem_public_key(struct cf_slice pem, struct cf_pkey **ret)
{
        BIO *bio;
        X509 *x;
        struct cf_buf der;
        unsigned char *p = NULL;
        int n;
        cf_status s;

        ENSURE(pem.size <= INT32_MAX, CF_E_LIMIT);
        bio = BIO_new_mem_buf(pem.ptr, (int)pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (x == NULL) {
                ERR_clear_error();
                return cf_pkey_from_pem(pem, false, ret);
        }
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &p);
        X509_free(x);
        ENSURE(n > 0, CF_E_CERT);
        cf_buf_init(&der, (size_t)n, false);
        s = cf_buf_append(&der, p, (size_t)n);
        OPENSSL_free(p);
        if (cf_ok(s)) {
                s = cf_pkey_from_spki(cf_buf_slice(&der), ret);
        }
        cf_buf_done(&der);
        return s;
}

static int accept_any_cert(int preverify, X509_STORE_CTX *ctx)
{
        /* Identity is the key id, checked by the application after the handshake; TLS has
         * already proven possession of the key through CertificateVerify. */
        (void)preverify;
        (void)ctx;
        return 1;
}

static cf_status load_chain(SSL_CTX *ctx, struct cf_slice cert_pem, const struct cf_pkey *key)
{
        BIO *bio;
        X509 *x;
        bool first = true;

        ENSURE(cert_pem.size <= INT32_MAX, CF_E_LIMIT);
        bio = BIO_new_mem_buf(cert_pem.ptr, (int)cert_pem.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
                long ok = first ? SSL_CTX_use_certificate(ctx, x) : SSL_CTX_add1_chain_cert(ctx, x);
                X509_free(x);
                if (ok != 1) {
                        BIO_free(bio);
                        return cf_fail(CF_E_CERT);
                }
                first = false;
        }
        ERR_clear_error();
        BIO_free(bio);
        ENSURE(!first, CF_E_CERT);
        ENSURE(SSL_CTX_use_PrivateKey(ctx, cf_pkey_evp(key)) == 1, CF_E_KEY);
        ENSURE(SSL_CTX_check_private_key(ctx) == 1, CF_E_KEY);
        return CF_OK;
}

static cf_status new_ctx(const SSL_METHOD *method, SSL_CTX **ret)
{
        SSL_CTX *ctx = SSL_CTX_new(method);

        ENSURE(ctx != NULL, CF_E_NOMEM);
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
                SSL_CTX_free(ctx);
                return cf_fail(CF_E_TLS);
        }
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
        *ret = ctx;
        return CF_OK;
}

cf_status cf_tls_server_ctx(struct cf_slice cert_pem, const struct cf_pkey *key,
                            bool request_client_cert, SSL_CTX **ret)
{
        SSL_CTX *ctx = NULL;
        cf_status s;

        TRY(new_ctx(TLS_server_method(), &ctx));
        s = load_chain(ctx, cert_pem, key);
        if (!cf_ok(s)) {
                SSL_CTX_free(ctx);
                return s;
        }
        if (request_client_cert) {
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
        }
        /* Every activation is a fresh connection bound to its exporter: no tickets. */
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        *ret = ctx;
        return CF_OK;
}

cf_status cf_tls_client_ctx(struct cf_slice cert_pem, const struct cf_pkey *key, SSL_CTX **ret)
{
        SSL_CTX *ctx = NULL;

        TRY(new_ctx(TLS_client_method(), &ctx));
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
        if (key != NULL && cert_pem.size > 0) {
                cf_status s = load_chain(ctx, cert_pem, key);
                if (!cf_ok(s)) {
                        SSL_CTX_free(ctx);
                        return s;
                }
        }
        *ret = ctx;
        return CF_OK;
}

cf_status cf_tls_peer_key_id(SSL *ssl, char out[static CF_KEY_ID_HEX])
{
        X509 *peer = SSL_get1_peer_certificate(ssl);
        cf_status s;

        ENSURE(peer != NULL, CF_E_PEER);
        s = cf_x509_key_id(peer, out);
        X509_free(peer);
        return s;
}

cf_status cf_tls_own_key_id(SSL *ssl, char out[static CF_KEY_ID_HEX])
{
        X509 *own = SSL_get_certificate(ssl);

        ENSURE(own != NULL, CF_E_PEER);
        return cf_x509_key_id(own, out);
}

cf_status cf_tls_check_peer(SSL *ssl, const char *expected_hex)
{
        char got[CF_KEY_ID_HEX];

        TRY(cf_tls_peer_key_id(ssl, got));
        ENSURE(strlen(expected_hex) == CF_KEY_ID_HEX - 1, CF_E_PEER);
        ENSURE(cf_ct_eq(got, expected_hex, CF_KEY_ID_HEX - 1), CF_E_PEER);
        return CF_OK;
}

cf_status cf_tls_exporter(SSL *ssl, const char *label, uint8_t out[static CF_TLS_EXPORTER_SIZE])
{
        ENSURE(SSL_version(ssl) == TLS1_3_VERSION, CF_E_TLS);
        ENSURE(SSL_export_keying_material(ssl, out, CF_TLS_EXPORTER_SIZE, label, strlen(label),
                                          NULL, 0, 0) == 1,
               CF_E_TLS);
        return CF_OK;
}
