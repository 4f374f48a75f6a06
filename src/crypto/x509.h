/* Private keys and X.509 certificates for policy secrets (docs/policy.md, "Secrets"): key
 * generation, certificate issuing (self-signed CAs, intermediates, leaves), and the
 * encodings placeholders render (PEM, PKCS#8, public keys, DER).
 *
 * Keys cross this interface only as PKCS#8 DER in secret buffers and certificates only as
 * DER, which is how cofferd stores them; OpenSSL objects never leave this file. Every
 * function that handles private key bytes wipes its own copies. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cursor.h"
#include "base/status.h"

#define CF_X509_SAN_MAX    64    /* DNS names, and IP addresses, per certificate (each) */
#define CF_X509_DAYS_MAX   36500 /* longest validity (100 years) */
#define CF_X509_CN_MAX     64    /* characters of a common name (X.520 ub-common-name) */
#define CF_X509_KEY_MAX    4096  /* bytes of a PKCS#8 DER private key (RSA 4096: ~2.4 KiB) */
#define CF_X509_CERT_MAX   8192  /* bytes of a DER certificate */
#define CF_X509_EKU_SERVER 1u    /* extendedKeyUsage serverAuth */
#define CF_X509_EKU_CLIENT 2u    /* extendedKeyUsage clientAuth */

enum cf_x509_alg {
        CF_X509_ED25519 = 1,
        CF_X509_P256,
        CF_X509_P384,
        CF_X509_RSA2048,
        CF_X509_RSA3072,
        CF_X509_RSA4096,
};

/* Generates a private key and appends its PKCS#8 DER encoding to out, which should be a
 * secret buffer. CF_E_INVALID_ARG for an unknown algorithm, CF_E_CRYPTO when OpenSSL fails,
 * CF_E_LIMIT when out is too small (out keeps its previous size). */
CF_FN cf_x509_key_generate(enum cf_x509_alg alg, struct cf_buf *out);

/* What a certificate says about its subject. */
struct cf_x509_request {
        const char *common_name; /* 1..CF_X509_CN_MAX printable characters */
        bool ca;                 /* basicConstraints CA:TRUE, keyUsage keyCertSign and cRLSign */
        int path_len;            /* CAs: pathLenConstraint, or -1 for none */
        const char *const *dns;  /* SAN dNSName entries (leaves), n_dns <= CF_X509_SAN_MAX */
        size_t n_dns;
        const char *const *ip; /* SAN iPAddress entries, IPv4 or IPv6 text, n_ip <= max */
        size_t n_ip;
        unsigned eku;  /* leaves: CF_X509_EKU_* bits; 0 means no extendedKeyUsage */
        uint32_t days; /* 1..CF_X509_DAYS_MAX, from now; notBefore is now - 60 s */
};

/* Issues a certificate for the key subject_key (PKCS#8 DER). When issuer_cert is empty the
 * certificate is self-signed with subject_key (issuer_key is ignored); otherwise it is
 * signed by issuer_key (PKCS#8 DER), whose certificate issuer_cert (DER) gives the issuer
 * name and authority key id, and must hold issuer_key's public key. The serial number is 128
 * random bits; subject and authority key identifiers are set. Appends the DER certificate to
 * out. Errors: CF_E_INVALID_ARG (bad request fields, an IP that does not parse), CF_E_KEY (a
 * key that does not parse, or an issuer certificate for another key), CF_E_CERT (issuer_cert
 * does not parse or is not a CA), CF_E_CRYPTO, CF_E_LIMIT (out too small; out keeps its size).
 * All inputs are borrowed. */
CF_FN cf_x509_issue(const struct cf_x509_request *req, struct cf_slice subject_key,
                    struct cf_slice issuer_key, struct cf_slice issuer_cert, struct cf_buf *out);

/* Renders a PKCS#8 DER private key as PEM, appended to out (a secret buffer): PKCS#8
 * ("PRIVATE KEY") when pkcs8, otherwise the traditional form programs often expect (RSA:
 * PKCS#1 "RSA PRIVATE KEY", ECDSA: SEC 1 "EC PRIVATE KEY"; Ed25519 has none and is PKCS#8).
 * CF_E_KEY when key does not parse; CF_E_LIMIT when out is too small. */
CF_FN cf_x509_key_pem(struct cf_slice key, bool pkcs8, struct cf_buf *out);

/* Appends the SubjectPublicKeyInfo of src to out, as a PEM "PUBLIC KEY" block when pem, else
 * as DER. src is a DER certificate when from_cert, else a PKCS#8 DER private key. CF_E_CERT
 * or CF_E_KEY when src does not parse. */
CF_FN cf_x509_public_key(struct cf_slice src, bool from_cert, bool pem, struct cf_buf *out);

/* Appends the PEM "CERTIFICATE" block of a DER certificate to out. CF_E_CERT when der is not
 * exactly one certificate. */
CF_FN cf_x509_cert_pem(struct cf_slice der, struct cf_buf *out);

/* True when text is an IPv4 dotted quad or an IPv6 address that a certificate can hold. */
bool cf_x509_ip_ok(const char *text);
