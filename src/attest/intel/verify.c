/* intel_verify: the order of checks for SGX and TDX quotes (docs/attestation-intel.md).
 *
 * 1. parse the quote; 2. PCK chain to the pinned root, windows; 3. quote signature,
 * QE report signature, QE REPORTDATA binding; 4. collateral: parse, CRLs, TCB Info, QE
 * identity (signature, signing certificate, window, consistency); 5. when all of that
 * passed, TCB evaluation. Every decision is one check with expected and actual values. */
#include "attest/intel/intel.h"

#include <stdio.h>
#include <string.h>

#include "attest/intel/intel_cache.h"
#include "attest/intel/intel_internal.h"
#include "base/codec.h"
#include "base/mem.h"

static const uint8_t g_intel_qe_vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                              0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

struct vctx {
        struct attest_result *res;
        const char *pfx; /* "sgx", "tdx", or "intel" before the quote parses */
        int64_t now;
        cf_status first; /* the first failure */
        const struct intel_quote *q;
        const struct intel_chain *chain;
        const struct intel_coll *coll;
};

static CF_FN check(struct vctx *x, const char *name, bool ok, const char *expected,
                   const char *actual, enum cf_errcode code)
{
        char full[96];

        snprintf(full, sizeof(full), "%s.%s", x->pfx, name);
        if (!ok && cf_ok(x->first)) {
                x->first = cf_fail(code);
        }
        return attest_checks_add(&x->res->checks, full, ok, expected, actual);
}

static void fmt_time(int64_t t, char out[32])
{
        cf_format_rfc3339(t, out, 32);
}

/* A validity window check: "from..until" against "now". */
static CF_FN check_window(struct vctx *x, const char *name, int64_t from, int64_t until)
{
        char a[32], b[32], n[32], exp[80], act[96];
        bool ok = x->now >= from && x->now <= until;

        fmt_time(from, a);
        fmt_time(until, b);
        fmt_time(x->now, n);
        snprintf(exp, sizeof(exp), "%s..%s", a, b);
        snprintf(act, sizeof(act), "%s%s", n,
                 ok ? "" : (x->now < from ? " (not yet valid)" : " (expired)"));
        return check(x, name, ok, exp, act, CF_E_EXPIRED);
}

static CF_FN claim_hex(struct vctx *x, const char *name, const uint8_t *p, size_t n)
{
        char hex[2 * 64 + 1];

        cf_assert(n <= 64);
        cf_hex_encode(p, n, hex, sizeof(hex));
        ENSURE(json_object_set_new(x->res->claims, name, json_string(hex)) == 0, CF_E_NOMEM);
        return CF_OK;
}

static CF_FN claim_int(struct vctx *x, const char *name, json_int_t v)
{
        ENSURE(json_object_set_new(x->res->claims, name, json_integer(v)) == 0, CF_E_NOMEM);
        return CF_OK;
}

static CF_FN claim_bool(struct vctx *x, const char *name, bool v)
{
        ENSURE(json_object_set_new(x->res->claims, name, json_boolean(v)) == 0, CF_E_NOMEM);
        return CF_OK;
}

static CF_FN add_claims(struct vctx *x, const struct intel_quote *q)
{
        TRY(claim_int(x, "quote_version", q->version));
        if (q->body_type == INTEL_BODY_SGX) {
                const struct intel_sgx_report *r = &q->sgx;
                TRY(claim_hex(x, "mrenclave", r->mrenclave, 32));
                TRY(claim_hex(x, "mrsigner", r->mrsigner, 32));
                TRY(claim_int(x, "isvprodid", r->isvprodid));
                TRY(claim_int(x, "isvsvn", r->isvsvn));
                TRY(claim_hex(x, "attributes", r->attributes, 16));
                TRY(claim_hex(x, "cpusvn", r->cpusvn, 16));
                TRY(claim_int(x, "miscselect", r->miscselect));
                TRY(claim_bool(x, "debug", (r->attributes[0] & 0x02) != 0));
                return claim_hex(x, "report_data", r->report_data, 64);
        }
        const struct intel_td_report *t = &q->td;
        static const char *const rtmr[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
        TRY(claim_hex(x, "mrtd", t->mrtd, 48));
        for (size_t i = 0; i < 4; i++) {
                TRY(claim_hex(x, rtmr[i], t->rtmr[i], 48));
        }
        TRY(claim_hex(x, "mrconfigid", t->mrconfigid, 48));
        TRY(claim_hex(x, "mrowner", t->mrowner, 48));
        TRY(claim_hex(x, "mrownerconfig", t->mrownerconfig, 48));
        TRY(claim_hex(x, "mrseam", t->mrseam, 48));
        TRY(claim_hex(x, "mrsignerseam", t->mrsignerseam, 48));
        TRY(claim_hex(x, "seam_attributes", t->seam_attributes, 8));
        TRY(claim_hex(x, "td_attributes", t->td_attributes, 8));
        TRY(claim_bool(x, "debug", (t->td_attributes[0] & 0x01) != 0));
        TRY(claim_hex(x, "xfam", t->xfam, 8));
        TRY(claim_hex(x, "tee_tcb_svn", t->tee_tcb_svn, 16));
        if (q->body_type == INTEL_BODY_TD15) {
                TRY(claim_hex(x, "tee_tcb_svn2", t->tee_tcb_svn2, 16));
                TRY(claim_hex(x, "mrservicetd", t->mrservicetd, 48));
        }
        return claim_hex(x, "report_data", t->report_data, 64);
}

/* ---- cached objects ---- */

static void chain_free_fn(void *p)
{
        intel_chain_free(p);
}

static void coll_free_fn(void *p)
{
        intel_coll_free(p);
}

static CF_FN get_chain(struct cf_slice pem, struct intel_cached **ret)
{
        uint8_t key[32];
        struct intel_cached *e;
        struct intel_chain *c = NULL;

        TRY(cf_sha256(&pem, 1, key));
        e = intel_cache_get(INTEL_CACHE_CHAIN, key);
        if (e == NULL) {
                TRY(intel_chain_build(pem, &c));
                TRY(intel_cache_put(INTEL_CACHE_CHAIN, key, c, chain_free_fn, &e));
        }
        *ret = e;
        return CF_OK;
}

/* The key of a collateral set: SHA-256 over each blob's size and bytes, in order. */
static CF_FN coll_key(const struct attest_collateral *coll, uint8_t key[32])
{
        struct cf_slice parts[2 * ATTEST_COLLATERAL_MAX_FILES];
        uint8_t sizes[ATTEST_COLLATERAL_MAX_FILES][8];
        size_t n = 0;

        for (size_t i = 0; coll != NULL && i < coll->n; i++) {
                uint64_t s = coll->items[i].size;
                for (size_t j = 0; j < 8; j++) {
                        sizes[i][j] = (uint8_t)(s >> (8 * j));
                }
                parts[n++] = cf_slice_make(sizes[i], 8);
                parts[n++] = cf_slice_make(coll->items[i].data, coll->items[i].size);
        }
        return cf_sha256(parts, n, key);
}

static CF_FN get_coll(const struct attest_collateral *coll, X509 *root, struct intel_cached **ret,
                      struct intel_coll **ret_uncached)
{
        uint8_t key[32];
        struct intel_cached *e;
        struct intel_coll *c = NULL;

        if (root == NULL) {
                /* Without the pinned root nothing can be verified: build, do not cache. */
                TRY(intel_coll_build(coll, NULL, ret_uncached));
                *ret = NULL;
                return CF_OK;
        }
        TRY(coll_key(coll, key));
        e = intel_cache_get(INTEL_CACHE_COLL, key);
        if (e == NULL) {
                TRY(intel_coll_build(coll, root, &c));
                TRY(intel_cache_put(INTEL_CACHE_COLL, key, c, coll_free_fn, &e));
        }
        *ret = e;
        *ret_uncached = NULL;
        return CF_OK;
}

/* ---- the PCK chain and the quote's own signatures ---- */

static CF_FN check_chain(struct vctx *x, const struct intel_chain *c)
{
        static const char *const what[3] = {"pck", "ca", "root"};
        char name[64], exp[160], act[160];
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned mdn = 0;
        bool ca_ok = strcmp(c->cn[1], "Intel SGX PCK Processor CA") == 0 ||
                     strcmp(c->cn[1], "Intel SGX PCK Platform CA") == 0;

        if (X509_digest(c->certs[2], EVP_sha256(), md, &mdn) != 1 || mdn != 32) {
                return cf_fail(CF_E_CRYPTO);
        }
        cf_hex_encode(md, 32, act, sizeof(act));
        TRY(check(x, "pck_chain.root_pinned", c->root_pinned,
                  "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3", act,
                  CF_E_CHAIN));
        TRY(check(x, "pck_chain.names", strcmp(c->cn[0], "Intel SGX PCK Certificate") == 0 && ca_ok,
                  "Intel SGX PCK Certificate <- Intel SGX PCK Processor|Platform CA", c->cn[1],
                  CF_E_CHAIN));
        for (size_t i = 0; i < 3; i++) {
                snprintf(name, sizeof(name), "pck_chain.%s.signature", what[i]);
                snprintf(exp, sizeof(exp), "signed by %s", c->cn[i < 2 ? i + 1 : 2]);
                TRY(check(x, name, c->sig_ok[i], exp, c->sig_ok[i] ? "verified" : "does not verify",
                          CF_E_CHAIN));
        }
        for (size_t i = 0; i < 3; i++) {
                snprintf(name, sizeof(name), "pck_chain.%s.window", what[i]);
                TRY(check_window(x, name, c->not_before[i], c->not_after[i]));
        }
        return CF_OK;
}

static void pkey_free_fn(void *p)
{
        cf_pkey_free(p);
}

/* The attestation key belongs to the platform's QE and repeats across its quotes; decoding
 * a point through OpenSSL 3's decoders costs about as much as a verify, so keep it. */
static CF_FN get_att_key(const uint8_t xy[64], struct intel_cached **ret)
{
        struct cf_slice s = cf_slice_make(xy, 64);
        uint8_t key[32];
        struct intel_cached *e;
        struct cf_pkey *k = NULL;

        TRY(cf_sha256(&s, 1, key));
        e = intel_cache_get(INTEL_CACHE_KEY, key);
        if (e == NULL) {
                TRY(intel_p256_key(xy, &k));
                TRY(intel_cache_put(INTEL_CACHE_KEY, key, k, pkey_free_fn, &e));
        }
        *ret = e;
        return CF_OK;
}

static void cache_releasep(struct intel_cached **p)
{
        intel_cache_release(*p);
        *p = NULL;
}

static CF_FN check_quote_sigs(struct vctx *x, const struct intel_quote *q,
                              const struct intel_chain *c)
{
        CF_CLEANUP(cache_releasep) struct intel_cached *ake = NULL;
        const struct cf_pkey *ak = NULL;
        uint8_t h[CF_SHA256_SIZE], zero[32] = {0};
        struct cf_slice parts[2] = {cf_slice_make(q->att_key, 64), q->qe_auth_data};
        bool ok;

        ok = cf_ok(get_att_key(q->att_key, &ake));
        ak = ok ? intel_cached_obj(ake) : NULL;
        TRY(check(x, "quote.attestation_key", ok, "a P-256 point",
                  ok ? "valid point" : "not a P-256 point", CF_E_KEY));
        ok = ak != NULL && cf_ok(intel_verify_raw(ak, q->signed_region, q->signature));
        TRY(check(x, "quote.signature", ok, "ECDSA P-256 by the attestation key over header||body",
                  ok ? "verified" : "does not verify", CF_E_SIG_INVALID));
        ok = cf_ok(intel_verify_raw(c->pck_key, q->qe_report_raw, q->qe_report_signature));
        TRY(check(x, "qe_report.signature", ok, "ECDSA P-256 by the PCK key over the QE report",
                  ok ? "verified" : "does not verify", CF_E_SIG_INVALID));
        TRY(cf_sha256(parts, 2, h));
        ok = cf_slice_eq(cf_slice_make(h, 32), cf_slice_make(q->qe_report.report_data, 32)) &&
             cf_slice_eq(cf_slice_make(zero, 32), cf_slice_make(q->qe_report.report_data + 32, 32));
        {
                char exp[160], act[160];
                cf_hex_encode(h, 32, exp, sizeof(exp));
                memcpy(exp + 64, "||00*32", 8);
                cf_hex_encode(q->qe_report.report_data, 32, act, sizeof(act));
                TRY(check(x, "qe_report.binding", ok, exp, act, CF_E_BINDING));
        }
        return CF_OK;
}

/* ---- CRLs ---- */

static const struct intel_crl *latest_crl(const struct intel_coll *c, enum intel_crl_role role)
{
        const struct intel_crl *best = NULL;

        for (size_t i = 0; i < c->n_crls; i++) {
                if (c->crls[i].role == role &&
                    (best == NULL || c->crls[i].this_update > best->this_update)) {
                        best = &c->crls[i];
                }
        }
        return best;
}

static CF_FN check_one_crl(struct vctx *x, const char *what, const struct intel_crl *e,
                           X509 *issuer_fallback, X509 *subject)
{
        char name[64], serial[80] = "", act[160];
        X509_REVOKED *rev = NULL;
        int state = e->sig_state;
        BIGNUM *bn;

        if (state == 0 && issuer_fallback != NULL) {
                /* The issuer chain was not given; the quote's CA (already chained to the
                 * pinned root) is the issuer when the names agree. */
                state = X509_NAME_cmp(X509_CRL_get_issuer(e->crl),
                                      X509_get_subject_name(issuer_fallback)) == 0 &&
                                X509_CRL_verify(e->crl, X509_get0_pubkey(issuer_fallback)) == 1
                            ? 1
                            : -1;
        }
        snprintf(name, sizeof(name), "%s.signature", what);
        snprintf(act, sizeof(act), "%s: %s", e->source,
                 state == 1 ? "verified" : (state == 0 ? "issuer not given" : "does not verify"));
        TRY(check(x, name, state == 1, "signed by its issuer (chained to the pinned root)", act,
                  CF_E_SIG_INVALID));
        snprintf(name, sizeof(name), "%s.window", what);
        TRY(check_window(x, name, e->this_update, e->next_update));
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(subject), NULL);
        if (bn != NULL) {
                char *hex = BN_bn2hex(bn);
                if (hex != NULL) {
                        snprintf(serial, sizeof(serial), "serial %s", hex);
                        OPENSSL_free(hex);
                }
                BN_free(bn);
        }
        snprintf(name, sizeof(name), "%s.revocation", what);
        {
                bool revoked =
                    X509_CRL_get0_by_serial(e->crl, &rev, X509_get0_serialNumber(subject)) == 1;
                TRY(check(x, name, !revoked, "not listed", revoked ? serial : "not listed",
                          CF_E_REVOKED));
        }
        return CF_OK;
}

static CF_FN check_crls(struct vctx *x, const struct intel_coll *c, const struct intel_chain *ch)
{
        enum intel_crl_role role = strcmp(ch->cn[1], "Intel SGX PCK Processor CA") == 0
                                       ? INTEL_CRL_PROCESSOR
                                       : INTEL_CRL_PLATFORM;
        const struct intel_crl *pck = latest_crl(c, role), *root = latest_crl(c, INTEL_CRL_ROOT);
        const struct intel_crl *other =
            latest_crl(c, role == INTEL_CRL_PROCESSOR ? INTEL_CRL_PLATFORM : INTEL_CRL_PROCESSOR);

        if (pck != NULL) {
                TRY(check_one_crl(x, "pck_crl", pck, ch->certs[1], ch->certs[0]));
        } else if (other != NULL) {
                /* A PCK CRL was given, but of the other CA: revocation of this PCK cannot
                 * be checked, which must not pass silently. */
                TRY(check(x, "pck_crl.issuer", false, ch->cn[1], other->source, CF_E_COLLATERAL));
        }
        if (root != NULL) {
                TRY(check_one_crl(x, "root_crl", root, ch->certs[2], ch->certs[1]));
        }
        return CF_OK;
}

/* ---- TCB Info and QE identity ---- */

/* A signed body: its signature, the window of a TCB Signing certificate that verifies it,
 * and its own window. */
static CF_FN check_signed(struct vctx *x, const char *what, const struct intel_signed *s,
                          int64_t issue, int64_t next)
{
        const struct intel_coll *c = x->coll;
        char name[64], act[160];
        int best = -1;

        snprintf(name, sizeof(name), "%s.signature", what);
        snprintf(act, sizeof(act), "%s: %s", s->source,
                 !s->has_sig ? "unsigned: no detached signature given verifies this body"
                             : (s->verified_by ? "verified" : "does not verify"));
        TRY(check(x, name, s->verified_by != 0,
                  "ECDSA P-256 by an Intel SGX TCB Signing certificate over the exact body", act,
                  CF_E_SIG_INVALID));
        if (s->verified_by != 0) {
                /* Same key, several issues (G11): any one valid now will do. */
                for (size_t i = 0; i < c->n_certs; i++) {
                        int64_t nb, na;
                        if (!(s->verified_by & (UINT64_C(1) << i)) ||
                            !cf_ok(intel_asn1_time(X509_get0_notBefore(c->certs[i]), &nb)) ||
                            !cf_ok(intel_asn1_time(X509_get0_notAfter(c->certs[i]), &na))) {
                                continue;
                        }
                        if (best < 0 || (x->now >= nb && x->now <= na)) {
                                best = (int)i;
                        }
                }
                if (best >= 0) {
                        int64_t nb = 0, na = 0;
                        TRY(intel_asn1_time(X509_get0_notBefore(c->certs[best]), &nb));
                        TRY(intel_asn1_time(X509_get0_notAfter(c->certs[best]), &na));
                        snprintf(name, sizeof(name), "%s.signing_cert.window", what);
                        TRY(check_window(x, name, nb, na));
                }
        }
        snprintf(name, sizeof(name), "%s.window", what);
        return check_window(x, name, issue, next);
}

static const struct intel_signed *select_tcb_info(const struct intel_coll *c,
                                                  const uint8_t fmspc[6], const char *id,
                                                  int64_t now, bool *any)
{
        const struct intel_signed *best = NULL;
        int best_score = -1;

        *any = false;
        for (size_t i = 0; i < c->n_signed; i++) {
                const struct intel_signed *s = &c->signed_items[i];
                int score;
                if (s->kind != INTEL_SIGNED_TCB_INFO) {
                        continue;
                }
                *any = true;
                if (memcmp(s->tcb.fmspc, fmspc, 6) != 0) {
                        continue;
                }
                score = (strcmp(s->tcb.id, id) == 0) * 4 +
                        (now >= s->tcb.issue_date && now <= s->tcb.next_update) * 2;
                if (score > best_score ||
                    (score == best_score && s->tcb.issue_date > best->tcb.issue_date)) {
                        best = s;
                        best_score = score;
                }
        }
        return best;
}

static CF_FN check_tcb_info(struct vctx *x, const struct intel_signed **ret)
{
        const struct intel_quote *q = x->q;
        const struct intel_pck_ext *e = &x->chain->ext;
        const char *id = q->tee_type == INTEL_TEE_TDX ? "TDX" : "SGX";
        char exp[64], act[64];
        bool any;
        const struct intel_signed *s = select_tcb_info(x->coll, e->fmspc, id, x->now, &any);

        *ret = NULL;
        cf_hex_encode(e->fmspc, 6, exp, sizeof(exp));
        if (!any) {
                return CF_OK; /* no TCB Info given: no TCB evaluation */
        }
        if (s == NULL) {
                return check(x, "tcb_info.fmspc", false, exp, "no TCB Info for this FMSPC",
                             CF_E_COLLATERAL);
        }
        cf_hex_encode(s->tcb.fmspc, 6, act, sizeof(act));
        TRY(check(x, "tcb_info.fmspc", true, exp, act, CF_E_COLLATERAL));
        cf_hex_encode(e->pce_id, 2, exp, sizeof(exp));
        cf_hex_encode(s->tcb.pce_id, 2, act, sizeof(act));
        TRY(check(x, "tcb_info.pce_id", memcmp(e->pce_id, s->tcb.pce_id, 2) == 0, exp, act,
                  CF_E_COLLATERAL));
        TRY(check(x, "tcb_info.id", strcmp(s->tcb.id, id) == 0, id, s->tcb.id, CF_E_COLLATERAL));
        TRY(check_signed(x, "tcb_info", s, s->tcb.issue_date, s->tcb.next_update));
        *ret = s;
        return CF_OK;
}

static CF_FN check_qe_identity(struct vctx *x, const struct intel_signed **ret)
{
        const struct intel_coll *c = x->coll;
        const struct intel_sgx_report *r = &x->q->qe_report;
        const char *id = x->q->tee_type == INTEL_TEE_TDX ? "TD_QE" : "QE";
        const struct intel_signed *s = NULL, *other = NULL;
        char exp[80], act[80];
        uint8_t a1[16], a2[16];

        *ret = NULL;
        for (size_t i = 0; i < c->n_signed; i++) {
                const struct intel_signed *t = &c->signed_items[i];
                if (t->kind != INTEL_SIGNED_QE_IDENTITY) {
                        continue;
                }
                if (strcmp(t->qe.id, id) != 0) {
                        other = t;
                } else if (s == NULL || t->qe.issue_date > s->qe.issue_date) {
                        s = t;
                }
        }
        if (s == NULL) {
                return other == NULL
                           ? CF_OK
                           : check(x, "qe_identity.id", false, id, other->qe.id, CF_E_COLLATERAL);
        }
        TRY(check(x, "qe_identity.id", true, id, s->qe.id, CF_E_COLLATERAL));
        TRY(check_signed(x, "qe_identity", s, s->qe.issue_date, s->qe.next_update));
        cf_hex_encode(s->qe.mrsigner, 32, exp, sizeof(exp));
        cf_hex_encode(r->mrsigner, 32, act, sizeof(act));
        TRY(check(x, "qe_identity.mrsigner", memcmp(s->qe.mrsigner, r->mrsigner, 32) == 0, exp, act,
                  CF_E_COLLATERAL));
        snprintf(exp, sizeof(exp), "%u", s->qe.isvprodid);
        snprintf(act, sizeof(act), "%u", r->isvprodid);
        TRY(check(x, "qe_identity.isvprodid", s->qe.isvprodid == r->isvprodid, exp, act,
                  CF_E_COLLATERAL));
        snprintf(exp, sizeof(exp), "%08x under mask %08x", s->qe.miscselect, s->qe.miscselect_mask);
        snprintf(act, sizeof(act), "%08x", r->miscselect);
        TRY(check(x, "qe_identity.miscselect",
                  (r->miscselect & s->qe.miscselect_mask) ==
                      (s->qe.miscselect & s->qe.miscselect_mask),
                  exp, act, CF_E_COLLATERAL));
        for (size_t i = 0; i < 16; i++) {
                a1[i] = r->attributes[i] & s->qe.attributes_mask[i];
                a2[i] = s->qe.attributes[i] & s->qe.attributes_mask[i];
        }
        cf_hex_encode(a2, 16, exp, sizeof(exp));
        cf_hex_encode(a1, 16, act, sizeof(act));
        TRY(check(x, "qe_identity.attributes", memcmp(a1, a2, 16) == 0, exp, act, CF_E_COLLATERAL));
        *ret = s;
        return CF_OK;
}

static CF_FN check_collateral_form(struct vctx *x, const struct intel_coll *c)
{
        char act[INTEL_NAME_MAX + 64];

        if (!cf_ok(c->error)) {
                snprintf(act, sizeof(act), "%s: %s", c->error_source, cf_status_name(c->error));
                TRY(check(x, "collateral.parse", false, "recognised, well-formed collateral", act,
                          CF_E_COLLATERAL));
        }
        if (c->bad_root[0] != '\0') {
                TRY(check(x, "collateral.root_pinned", false, "the pinned Intel SGX Root CA",
                          c->bad_root, CF_E_CHAIN));
        }
        for (size_t i = 0; i < c->n_ignored; i++) {
                TRY(check(x, "collateral.ignored", true, "", c->ignored[i], CF_E_COLLATERAL));
        }
        return CF_OK;
}

/* ---- TCB evaluation ---- */

static CF_FN add_advisories(json_t *out, const json_t *adv)
{
        for (size_t i = 0; adv != NULL && i < json_array_size(adv); i++) {
                const char *a = json_string_value(json_array_get(adv, i));
                bool seen = false;
                for (size_t j = 0; j < json_array_size(out); j++) {
                        seen = seen || strcmp(json_string_value(json_array_get(out, j)), a) == 0;
                }
                if (!seen) {
                        ENSURE(json_array_append_new(out, json_string(a)) == 0, CF_E_NOMEM);
                }
        }
        return CF_OK;
}

static void set_status(struct vctx *x, const char *s)
{
        snprintf(x->res->tcb_status, sizeof(x->res->tcb_status), "%s", s);
}

/* TDX module identity (G7): with major version 0 only tdxModule's MRSIGNER and attributes;
 * otherwise the identity TDX_<major> and its level for the module SVN. */
static CF_FN eval_module(struct vctx *x, const struct intel_tcb_info *t,
                         const struct intel_level **ret)
{
        const struct intel_td_report *td = &x->q->td;
        const uint8_t *mrsigner = t->module_mrsigner, *attr = t->module_attributes,
                      *mask = t->module_attributes_mask;
        const struct intel_module_id *m = NULL;
        char id[16], act[128];
        bool ok = true;

        *ret = NULL;
        snprintf(id, sizeof(id), "TDX_%02X", td->tee_tcb_svn[1]);
        if (td->tee_tcb_svn[1] > 0) {
                for (size_t i = 0; i < t->n_modules && m == NULL; i++) {
                        m = strcmp(t->modules[i].id, id) == 0 ? &t->modules[i] : NULL;
                }
                TRY(check(x, "tcb.tdx_module.identity", m != NULL, id,
                          m != NULL ? m->id : "no such module identity", CF_E_TCB));
                if (m == NULL) {
                        return CF_OK;
                }
                mrsigner = m->mrsigner;
                attr = m->attributes;
                mask = m->attributes_mask;
        } else if (!t->has_module) {
                return CF_OK;
        }
        for (size_t i = 0; i < 8; i++) {
                ok = ok && (td->seam_attributes[i] & mask[i]) == (attr[i] & mask[i]);
        }
        ok = ok && memcmp(mrsigner, td->mrsignerseam, 48) == 0;
        cf_hex_encode(td->mrsignerseam, 48, act, sizeof(act));
        TRY(check(x, "tcb.tdx_module.mrsigner_attributes", ok, "TCB Info tdxModule values", act,
                  CF_E_TCB));
        if (!ok || m == NULL) {
                return CF_OK;
        }
        *ret = intel_match_isvsvn(m->levels, m->n_levels, td->tee_tcb_svn[0]);
        snprintf(act, sizeof(act), "module SVN %u: %s", td->tee_tcb_svn[0],
                 *ret != NULL ? (*ret)->status : "no level");
        return check(x, "tcb.tdx_module.level", *ret != NULL, id, act, CF_E_TCB);
}

/* TD 1.5 (quote v5, body type 3): Intel's QVL evaluates the TCB a second time with
 * TEE_TCB_SVN2, the SVNs of the TDX module the TD runs on now (it differs from TEE_TCB_SVN,
 * the module the TD was launched on, after a TD-preserving module update): the platform
 * level (same skip rule, keyed on TEE_TCB_SVN2[1]), the module identity TDX_<SVN2[1]> and
 * its level for SVN2[0] when the major version is non-zero, and the same QE level. A
 * failure to match here makes the whole TCB unsupported, as in the QVL. *ret is the
 * current status, or NULL when it could not be evaluated. */
static CF_FN eval_current(struct vctx *x, const struct intel_tcb_info *t,
                          const struct intel_level *ql, bool have_qe, const char **ret)
{
        const uint8_t *svn = x->q->td.tee_tcb_svn2;
        const struct intel_level *pl = intel_match_platform_svn(t, &x->chain->ext, svn);
        const struct intel_level *ml = NULL;
        const struct intel_module_id *m = NULL;
        char hex[40], act[160], id[16];
        const char *status;

        *ret = NULL;
        cf_hex_encode(svn, 16, hex, sizeof(hex));
        snprintf(act, sizeof(act), "TEE_TCB_SVN2 %s: %s%s%s", hex,
                 pl ? pl->status : "NoMatchingLevel", pl && pl->date[0] ? " level " : "",
                 pl ? pl->date : "");
        TRY(check(x, "tcb.current.platform", pl != NULL,
                  "a TCB level reached by the PCK SVNs and TEE_TCB_SVN2", act, CF_E_TCB));
        if (pl == NULL) {
                return CF_OK;
        }
        status = pl->status;
        if (svn[1] > 0) {
                snprintf(id, sizeof(id), "TDX_%02X", svn[1]);
                for (size_t i = 0; i < t->n_modules && m == NULL; i++) {
                        m = strcmp(t->modules[i].id, id) == 0 ? &t->modules[i] : NULL;
                }
                ml = m != NULL ? intel_match_isvsvn(m->levels, m->n_levels, svn[0]) : NULL;
                snprintf(act, sizeof(act), "module SVN %u: %s", svn[0],
                         m == NULL ? "no such module identity"
                                   : (ml != NULL ? ml->status : "no level"));
                TRY(check(x, "tcb.current.tdx_module", ml != NULL, id, act, CF_E_TCB));
                if (ml == NULL) {
                        return CF_OK;
                }
                status = intel_merge_status(status, ml->status);
        }
        if (have_qe) {
                status = intel_merge_status(status, ql ? ql->status : "OutOfDate");
        }
        *ret = status;
        return CF_OK;
}

static CF_FN evaluate(struct vctx *x, const struct intel_tcb_info *t, const struct intel_signed *qe)
{
        const struct intel_level *pl = intel_match_platform(t, &x->chain->ext, x->q);
        const struct intel_level *ml = NULL, *ql = NULL;
        const char *status;
        char act[160];

        snprintf(act, sizeof(act), "%s%s%s", pl ? pl->status : "NoMatchingLevel",
                 pl && pl->date[0] ? " level " : "", pl ? pl->date : "");
        TRY(check(x, "tcb.platform", pl != NULL, "a TCB level reached by the PCK SVNs", act,
                  CF_E_TCB));
        if (pl == NULL) {
                set_status(x, "NoMatchingLevel");
                return CF_OK;
        }
        status = pl->status;
        TRY(add_advisories(x->res->advisories, pl->advisories));
        if (x->q->tee_type == INTEL_TEE_TDX) {
                size_t before = attest_checks_failed(&x->res->checks);
                TRY(eval_module(x, t, &ml));
                if (attest_checks_failed(&x->res->checks) != before) {
                        return CF_OK; /* module identity failed: no status */
                }
        }
        if (qe != NULL) {
                ql = intel_match_isvsvn(qe->qe.levels, qe->qe.n_levels, x->q->qe_report.isvsvn);
                snprintf(act, sizeof(act), "ISVSVN %u: %s", x->q->qe_report.isvsvn,
                         ql ? ql->status : "below every level (OutOfDate)");
                TRY(check(x, "tcb.qe", true, "", act, CF_E_TCB));
        }
        if (ml != NULL) {
                status = intel_merge_status(status, ml->status);
                if (strcmp(ml->status, "UpToDate") != 0) {
                        TRY(add_advisories(x->res->advisories, ml->advisories));
                }
        }
        if (qe != NULL) {
                status = intel_merge_status(status, ql ? ql->status : "OutOfDate");
                if (ql != NULL && strcmp(ql->status, "UpToDate") != 0) {
                        TRY(add_advisories(x->res->advisories, ql->advisories));
                }
        }
        if (x->q->tee_type == INTEL_TEE_TDX && x->q->body_type == INTEL_BODY_TD15) {
                const char *cur = NULL, *fin;
                TRY(eval_current(x, t, ql, qe != NULL, &cur));
                if (cur == NULL) {
                        /* as for the launch TCB: no level is NoMatchingLevel, a module
                         * identity failure leaves no status */
                        if (intel_match_platform_svn(t, &x->chain->ext, x->q->td.tee_tcb_svn2) ==
                            NULL) {
                                set_status(x, "NoMatchingLevel");
                        }
                        return CF_OK;
                }
                fin = intel_relaunch_status(status, cur);
                snprintf(act, sizeof(act), "launch %s, current %s: %s", status, cur, fin);
                TRY(check(x, "tcb.relaunch", true,
                          "launch TCB (TEE_TCB_SVN) and current TCB (TEE_TCB_SVN2), Intel QVL "
                          "checkForRelaunch",
                          act, CF_E_TCB));
                status = fin;
        }
        set_status(x, status);
        return check(x, "tcb.status", true, "", status, CF_E_TCB);
}

/* ---- the coordinator ---- */

static CF_FN verify_parsed(struct vctx *x, const struct attest_collateral *coll)
{
        struct intel_cached *ce = NULL, *ke = NULL;
        struct intel_coll *uncached = NULL;
        const struct intel_signed *tcb = NULL, *qe = NULL;
        const struct intel_chain *ch;
        cf_status s;
        char act[64];

        s = get_chain(x->q->pck_chain_pem, &ce);
        TRY(check(x, "pck_chain.parse", cf_ok(s), "PCK leaf, PCK CA, root (PEM)", cf_status_name(s),
                  CF_E_CHAIN));
        if (!cf_ok(s)) {
                return CF_OK;
        }
        ch = intel_cached_obj(ce);
        x->chain = ch;
        cf_hex_encode(ch->ext.fmspc, 6, act, sizeof(act));
        s = json_object_set_new(x->res->claims, "fmspc", json_string(act)) == 0
                ? CF_OK
                : cf_fail(CF_E_NOMEM);
        s = cf_ok(s) ? check_chain(x, ch) : s;
        s = cf_ok(s) ? check_quote_sigs(x, x->q, ch) : s;
        s = cf_ok(s) ? get_coll(coll, ch->root_pinned ? ch->certs[2] : NULL, &ke, &uncached) : s;
        if (cf_ok(s)) {
                x->coll = ke != NULL ? intel_cached_obj(ke) : uncached;
                s = check_collateral_form(x, x->coll);
        }
        if (cf_ok(s) && cf_ok(x->coll->error)) {
                s = check_crls(x, x->coll, ch);
                s = cf_ok(s) ? check_tcb_info(x, &tcb) : s;
                s = cf_ok(s) ? check_qe_identity(x, &qe) : s;
        }
        x->res->valid = cf_ok(s) && cf_ok(x->first);
        if (x->res->valid && tcb != NULL) {
                s = evaluate(x, &tcb->tcb, qe);
        }
        intel_coll_free(uncached);
        intel_cache_release(ke);
        intel_cache_release(ce);
        return s;
}

cf_status intel_verify(struct cf_slice quote, const struct attest_collateral *coll,
                       const struct intel_options *opt, struct attest_result *res)
{
        struct intel_quote q;
        struct vctx x = {.res = res, .pfx = "intel", .now = opt->now};
        cf_status s = intel_quote_parse(quote, &q);
        char act[96];

        res->valid = false;
        res->tcb_status[0] = '\0';
        TRY(check(&x, "quote.parse", cf_ok(s), "SGX quote v3 or TDX quote v4/v5, ECDSA P-256",
                  cf_status_name(s), CF_E_MALFORMED));
        if (!cf_ok(s)) {
                return s;
        }
        x.q = &q;
        x.pfx = q.tee_type == INTEL_TEE_TDX ? "tdx" : "sgx";
        TRY(add_claims(&x, &q));
        /* TCB Info and QE identities describe Intel's QE only. */
        cf_hex_encode(q.qe_vendor_id, 16, act, sizeof(act));
        TRY(check(
            &x, "quote.qe_vendor_id",
            cf_slice_eq(cf_slice_make(q.qe_vendor_id, 16), cf_slice_make(g_intel_qe_vendor, 16)),
            "939a7233f79c4ca9940a0db3957f0607", act, CF_E_UNSUPPORTED));
        if (q.trailing > 0) {
                /* Quote-generation buffers are padded (G12): verify as delimited. */
                snprintf(act, sizeof(act), "%zu bytes after the signature data, ignored",
                         q.trailing);
                TRY(check(&x, "quote.trailing", true, "quote delimited by its length fields", act,
                          CF_E_TRAILING));
        }
        TRY(verify_parsed(&x, coll));
        if (!cf_ok(x.first)) {
                return x.first;
        }
        return CF_OK;
}
