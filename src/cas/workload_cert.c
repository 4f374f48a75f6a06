/* Workload certificates (docs/policy.md, "Workload certificates"): at activation, cofferd
 * issues a certificate for the public key of the request coffer-run sent, signed by the
 * service's issuer CA. The workload keeps the private key; cofferd sees only the public key,
 * whose possession the request's self-signature proved (cf_x509_csr_parse_verify).
 *
 * What the certificate says comes from the policy alone: common name, SANs, extended key
 * usage, validity. The request's subject, attributes and extensions are never read. The CA's
 * key and certificate are read through cas_secret_value, as placeholders render them, so this
 * file does not depend on how secrets are stored. */
#include "cas/cas.h"

#include <string.h>
#include <time.h>

#include "crypto/x509.h"
#include "policy/policy.h"

#define WORKLOAD_PEM_MAX     (64u << 10) /* a leaf and up to 8 CAs, PEM, RSA 4096 at most */
#define WORKLOAD_KEY_PEM_MAX (16u << 10)

_Static_assert(sizeof(((struct cas_workload_cert *)0)->serial) == CF_X509_SERIAL_HEX_MAX,
               "cas_workload_cert.serial holds a serial's hex");

void cas_workload_cert_init(struct cas_workload_cert *c)
{
        memset(c, 0, sizeof(*c));
        cf_buf_init(&c->cert, WORKLOAD_PEM_MAX, false);
        cf_buf_init(&c->ca, WORKLOAD_PEM_MAX, false);
}

void cas_workload_cert_done(struct cas_workload_cert *c)
{
        cf_buf_done(&c->cert);
        cf_buf_done(&c->ca);
}

const char *cas_workload_cert_algorithm(const struct policy_service *svc)
{
        if (svc == NULL || svc->certificate == NULL) {
                return NULL;
        }
        return cf_x509_alg_name(cas_x509_alg(svc->certificate->algorithm));
}

/* The issuer's key and certificate as DER, from their placeholder renderings. */
static cf_status load_issuer(struct cas_worker *w, const struct policy *p, const char *issuer,
                             struct cf_buf *key_der, struct cf_buf *cert_der)
{
        char ref[POLICY_SECRET_NAME_MAX + 16];
        struct cf_buf pem;
        int n;
        cf_status s;

        n = snprintf(ref, sizeof(ref), "%s:pkcs8", issuer);
        ENSURE(n > 0 && (size_t)n < sizeof(ref), CF_E_LIMIT);
        cf_buf_init(&pem, WORKLOAD_KEY_PEM_MAX, true);
        s = cas_secret_value(w, p, ref, &pem);
        if (cf_ok(s)) {
                s = cf_x509_key_from_pem(cf_buf_slice(&pem), key_der);
        }
        cf_buf_done(&pem);
        TRY(s);
        cf_buf_init(&pem, WORKLOAD_PEM_MAX, false);
        s = cas_secret_value(w, p, issuer, &pem);
        if (cf_ok(s)) {
                s = cf_x509_cert_from_pem(cf_buf_slice(&pem), cert_der);
        }
        cf_buf_done(&pem);
        return s;
}

/* Appends the issuers' certificates below the root (issuer first), then puts the root's in
 * out->ca. The policy validator bounded the chain and refused cycles; the walk is bounded
 * all the same. */
static cf_status chain_and_root(struct cas_worker *w, const struct policy *p,
                                const struct policy_certificate *c, struct cas_workload_cert *out)
{
        const struct policy_secret *sec = policy_find_secret(p, c->issuer);

        for (size_t depth = 0; sec != NULL; depth++) {
                ENSURE(depth <= POLICY_ISSUER_DEPTH_MAX && sec->kind == POLICY_SECRET_X509_CA,
                       CF_E_INTERNAL);
                if (sec->issuer == NULL) {
                        return cas_secret_value(w, p, sec->name, &out->ca);
                }
                if (c->chain) {
                        TRY(cas_secret_value(w, p, sec->name, &out->cert));
                }
                sec = policy_find_secret(p, sec->issuer);
        }
        return cf_fail(CF_E_NOT_FOUND);
}

/* A leaf never outlives its issuer: its validity is cut to the whole days the issuer's
 * certificate has left (the issuer is renewed before issuance when it is due). CF_E_EXPIRED
 * when less than a day is left. */
static cf_status clamp_to_issuer(struct cf_slice issuer_der, int64_t now, uint32_t *days)
{
        char serial[CF_X509_SERIAL_HEX_MAX];
        int64_t not_after = 0, left;

        TRY(cf_x509_cert_info(issuer_der, serial, &not_after));
        left = (not_after - now) / 86400;
        ENSURE(left >= 1, CF_E_EXPIRED);
        if ((int64_t)*days > left) {
                *days = (uint32_t)left;
        }
        return CF_OK;
}

cf_status cas_workload_cert_issue(struct cas_worker *w, const struct policy *p,
                                  const struct policy_service *svc,
                                  const struct cf_x509_csr_key *key, struct cas_workload_cert *out)
{
        const struct policy_certificate *c = svc->certificate;
        struct cf_buf ikey, icert, leaf;
        struct cf_x509_request req;
        cf_status s;

        ENSURE(c != NULL && c->issuer != NULL && c->common_name != NULL, CF_E_INVALID_ARG);
        ENSURE(key->alg == cas_x509_alg(c->algorithm), CF_E_CONFLICT);
        req = (struct cf_x509_request){
            .common_name = c->common_name,
            .ca = false,
            .path_len = -1,
            .dns = (const char *const *)c->dns,
            .n_dns = c->n_dns,
            .ip = (const char *const *)c->ip,
            .n_ip = c->n_ip,
            .eku = ((c->usage & POLICY_USAGE_SERVER) ? CF_X509_EKU_SERVER : 0u) |
                   ((c->usage & POLICY_USAGE_CLIENT) ? CF_X509_EKU_CLIENT : 0u),
            .days = c->validity_days,
        };
        cf_buf_init(&ikey, CF_X509_KEY_MAX, true);
        cf_buf_init(&icert, CF_X509_CERT_MAX, false);
        cf_buf_init(&leaf, CF_X509_CERT_MAX, false);
        s = load_issuer(w, p, c->issuer, &ikey, &icert);
        if (cf_ok(s)) {
                s = clamp_to_issuer(cf_buf_slice(&icert), (int64_t)time(NULL), &req.days);
        }
        if (cf_ok(s)) {
                s = cf_x509_issue_for_key(&req, cf_slice_make(key->spki, key->spki_size),
                                          cf_buf_slice(&ikey), cf_buf_slice(&icert), &leaf);
        }
        cf_buf_done(&ikey);
        if (cf_ok(s)) {
                s = cf_x509_cert_info(cf_buf_slice(&leaf), out->serial, &out->not_after);
        }
        if (cf_ok(s)) {
                s = cf_sha256_hex(cf_slice_make(key->spki, key->spki_size), out->key_id);
        }
        if (cf_ok(s)) {
                s = cf_x509_cert_pem(cf_buf_slice(&leaf), &out->cert);
        }
        if (cf_ok(s)) {
                s = chain_and_root(w, p, c, out);
        }
        cf_buf_done(&leaf);
        cf_buf_done(&icert);
        return s;
}
