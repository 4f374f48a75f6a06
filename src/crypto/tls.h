/* X.509 identities and TLS 1.3 contexts.
 *
 * Identities are self-signed certificates; what identifies a peer is its key id (hex
 * SHA-256 of the certificate's SubjectPublicKeyInfo), so certificates can be renewed
 * without changing identity. Verification of peers is therefore by pinned key id, not by
 * CA chains. */
#pragma once

#include <stdbool.h>

#include <openssl/ssl.h>

#include "base/cursor.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define CF_TLS_EXPORTER_SIZE 32

/* Issues a self-signed certificate for key with the given common name, valid from now for
 * days; appends its PEM to out. */
CF_FN cf_x509_self_signed(const struct cf_pkey *key, const char *common_name, int days,
                          struct cf_buf *out);
/* Key id of the (first) certificate in a PEM text. */
CF_FN cf_x509_pem_key_id(struct cf_slice pem, char out[static CF_KEY_ID_HEX]);
/* The public key of the (first) certificate in a PEM text, or of a PEM public key (SPKI). */
CF_FN cf_pem_public_key(struct cf_slice pem, struct cf_pkey **ret);
/* Key id of a certificate object. */
CF_FN cf_x509_key_id(X509 *cert, char out[static CF_KEY_ID_HEX]);

/* A TLS 1.3-only server context with the certificate chain (PEM) and key. When
 * request_client_cert is set, clients may present any certificate: its possession is proven
 * by the handshake and its key id identifies the person; verification is by key id later. */
CF_FN cf_tls_server_ctx(struct cf_slice cert_pem, const struct cf_pkey *key,
                        bool request_client_cert, SSL_CTX **ret);
/* A TLS 1.3-only client context; cert_pem/key may be NULL/empty for no client certificate.
 * The server certificate is not checked against CAs: call cf_tls_check_peer after the
 * handshake. */
CF_FN cf_tls_client_ctx(struct cf_slice cert_pem, const struct cf_pkey *key, SSL_CTX **ret);
/* Key id of the peer's certificate; CF_E_PEER when it has none. */
CF_FN cf_tls_peer_key_id(SSL *ssl, char out[static CF_KEY_ID_HEX]);
/* Fails with CF_E_PEER unless the peer's key id equals expected_hex (constant time). */
CF_FN cf_tls_check_peer(SSL *ssl, const char *expected_hex);
/* RFC 8446 section 7.5 exporter with an empty context. */
CF_FN cf_tls_exporter(SSL *ssl, const char *label, uint8_t out[static CF_TLS_EXPORTER_SIZE]);
/* Key id of our own certificate on this connection. */
CF_FN cf_tls_own_key_id(SSL *ssl, char out[static CF_KEY_ID_HEX]);
