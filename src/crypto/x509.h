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

#define CF_X509_SAN_MAX    64          /* DNS names, and IP addresses, per certificate (each) */
#define CF_X509_DAYS_MAX   36500       /* longest validity (100 years) */
#define CF_X509_CN_MAX     64          /* characters of a common name (X.520 ub-common-name) */
#define CF_X509_KEY_MAX    4096        /* bytes of a PKCS#8 DER private key (RSA 4096: ~2.4 KiB) */
#define CF_X509_CERT_MAX   8192        /* bytes of a DER certificate */
#define CF_X509_CSR_MAX    (16u << 10) /* bytes of a PEM certificate request (and so its DER) */
#define CF_X509_SPKI_MAX   1024        /* bytes of a DER SubjectPublicKeyInfo (RSA 4096: 550) */
#define CF_X509_EKU_SERVER 1u          /* extendedKeyUsage serverAuth */
#define CF_X509_EKU_CLIENT 2u          /* extendedKeyUsage clientAuth */

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

/* ---- certificate requests (workload certificates, docs/policy.md) --------------------- */

/* The document's name of an algorithm ("p256", "rsa3072", ...), or NULL when out of range. */
const char *cf_x509_alg_name(enum cf_x509_alg alg);

/* Parses an algorithm name as cf_x509_alg_name writes it. CF_E_UNSUPPORTED for any other
 * text (rsa1024, p521, ...); *ret is written only on success. */
CF_FN cf_x509_alg_parse(const char *name, enum cf_x509_alg *ret);

/* What a verified certificate request proves: its signer holds the private key of spki.
 * Nothing else of the request (subject, attributes, extensions) is kept. */
struct cf_x509_csr_key {
        enum cf_x509_alg alg;
        uint8_t spki[CF_X509_SPKI_MAX]; /* DER SubjectPublicKeyInfo, as OpenSSL re-encodes it */
        size_t spki_size;
};

/* Parses one PEM "CERTIFICATE REQUEST" (PKCS#10) block and verifies its self-signature
 * (proof of possession). Strict: at most CF_X509_CSR_MAX bytes, no NUL, the text starts
 * with the BEGIN line, no PEM headers, nothing but whitespace after the END line; then as
 * cf_x509_csr_verify_der. Errors: CF_E_LIMIT (size), CF_E_ENCODING (not one clean PEM
 * block), and those of cf_x509_csr_verify_der. *ret is written only on success. */
CF_FN cf_x509_csr_parse_verify(struct cf_slice pem, struct cf_x509_csr_key *ret);

/* Parses a DER certificate request (every byte must belong to it, at most CF_X509_CSR_MAX),
 * checks version 1, a signature algorithm of the allow-list (RSA PKCS#1 v1.5 or ECDSA with
 * SHA-256/384/512, or Ed25519) and verifies the signature with the request's own key. The
 * key must be one cf_x509_key_generate can make, with named curves only. Errors: CF_E_LIMIT,
 * CF_E_MALFORMED (does not parse, trailing bytes), CF_E_VERSION, CF_E_SIG_INVALID (signature
 * does not verify, or a refused signature algorithm), CF_E_KEY (a weak key: RSA below 2048
 * bits, or a public key that fails its checks), CF_E_UNSUPPORTED (another key type, curve
 * or RSA size). *ret is written only on success. */
CF_FN cf_x509_csr_verify_der(struct cf_slice der, struct cf_x509_csr_key *ret);

/* Makes a certificate request for key (PKCS#8 DER, as cf_x509_key_generate writes it) with
 * subject CN=common_name and no extensions, signed by key, and appends its PEM text to out.
 * Errors: CF_E_INVALID_ARG (common name not 1..CF_X509_CN_MAX printable characters), CF_E_KEY,
 * CF_E_CRYPTO, CF_E_LIMIT. */
CF_FN cf_x509_csr_create(struct cf_slice key, const char *common_name, struct cf_buf *out);

/* Like cf_x509_issue for a subject whose private key is elsewhere: subject_spki is its DER
 * SubjectPublicKeyInfo (e.g. from cf_x509_csr_parse_verify). An issuer is required
 * (issuer_key PKCS#8 DER and issuer_cert DER). Errors as cf_x509_issue; CF_E_KEY as well
 * for a subject key that does not parse. */
CF_FN cf_x509_issue_for_key(const struct cf_x509_request *req, struct cf_slice subject_spki,
                            struct cf_slice issuer_key, struct cf_slice issuer_cert,
                            struct cf_buf *out);

/* Converts one PEM private key (PKCS#8 or traditional) to PKCS#8 DER appended to out (a
 * secret buffer). CF_E_KEY when pem is not exactly one private key. */
CF_FN cf_x509_key_from_pem(struct cf_slice pem, struct cf_buf *out);

/* Appends the DER of the first PEM "CERTIFICATE" block of pem to out (a bundle's first
 * certificate). CF_E_CERT when there is none or it does not parse. */
CF_FN cf_x509_cert_from_pem(struct cf_slice pem, struct cf_buf *out);

#define CF_X509_SERIAL_HEX_MAX 41 /* lower-case hex digits of a serial (20 octets) and a NUL */

/* What an audit entry says about an issued certificate: its serial number in lower-case hex,
 * two digits per octet (what `openssl x509 -serial` prints, in lower case), and its notAfter
 * in seconds since the epoch. CF_E_CERT when der is not exactly one certificate or its fields
 * are out of range. Outputs are written only on success. */
CF_FN cf_x509_cert_info(struct cf_slice der, char serial[static CF_X509_SERIAL_HEX_MAX],
                        int64_t *ret_not_after);
