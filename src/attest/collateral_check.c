/* Set-wise verification of imported collateral. The Intel parts reuse the Intel verifier's
 * collateral loader (recognition by content, TCB Signing certificates, signed bodies and
 * detached signatures) and its X.509 helpers; the AMD parts reuse snp_verify_cert. Nothing
 * here parses X.509 itself.
 *
 * The combined set is the new files (named "n<i>" inside) plus the stored blobs ("s<j>"), so
 * that every element found by the Intel loader can be traced back to the file it came from. */
#include "attest/collateral_check.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/intel/intel_internal.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "base/mem.h"

#define CHAIN_DEPTH_MAX 4
#define AMD_CERTS_MAX   32u

/* The verdict being assembled for one new file. */
struct acc {
        bool seen;      /* some element of the file was judged */
        bool sig_ok;    /* every element verified */
        bool in_window; /* every element within its window */
        char reason[ATTEST_COLL_REASON_MAX];
        char issuer[ATTEST_COLL_DIGEST_HEX];
        char window[96];
        char window_fail[200];
};

struct ctx {
        const struct attest_collateral *files;
        int64_t now;
        struct intel_coll *coll;      /* combined set, verified against the pinned root */
        X509 *root;                   /* the pinned Intel root, borrowed from coll; may be NULL */
        struct attest_collateral amd; /* every AMD certificate of the combined set, DER */
        struct acc acc[ATTEST_COLLATERAL_MAX_FILES];
};

static void coll_freep(struct intel_coll **p)
{
        intel_coll_free(*p);
        *p = NULL;
}

static void cpy(char *out, size_t size, const char *s)
{
        snprintf(out, size, "%s", s != NULL ? s : "");
}

/* The index of the new file a source tag "n<i>" names; -1 for stored blobs. */
static int new_index(const char *source)
{
        uint64_t v = 0;

        if (source[0] != 'n' ||
            !cf_ok(cf_parse_u64(source + 1, 0, ATTEST_COLLATERAL_MAX_FILES - 1, &v))) {
                return -1;
        }
        return (int)v;
}

/* Records a failure; the first reason of a file is the one reported. */
static void fail(struct acc *a, const char *reason)
{
        a->seen = true;
        if (a->sig_ok) {
                cpy(a->reason, sizeof(a->reason), reason);
        }
        a->sig_ok = false;
}

static void pass(struct acc *a, const char *issuer)
{
        a->seen = true;
        if (a->issuer[0] == '\0' && issuer != NULL) {
                cpy(a->issuer, sizeof(a->issuer), issuer);
        }
}

/* Records a validity window of one element of the file. */
static void window(struct ctx *x, struct acc *a, const char *what, int64_t from, int64_t until)
{
        char f[32], u[32], n[32];

        cf_format_rfc3339(from, f, sizeof(f));
        cf_format_rfc3339(until, u, sizeof(u));
        if (a->window[0] == '\0') {
                snprintf(a->window, sizeof(a->window), "%s .. %s", f, u);
        }
        if (x->now >= from && x->now <= until) {
                return;
        }
        if (a->in_window) {
                cf_format_rfc3339(x->now, n, sizeof(n));
                snprintf(a->window_fail, sizeof(a->window_fail), "%s valid %s .. %s, now %s", what,
                         f, u, n);
        }
        a->in_window = false;
}

static void cert_digest(X509 *x, char out[ATTEST_COLL_DIGEST_HEX])
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        out[0] = '\0';
        if (X509_digest(x, EVP_sha256(), md, &n) == 1 && n == 32) {
                cf_hex_encode(md, 32, out, ATTEST_COLL_DIGEST_HEX);
        }
}

static void cn_of(const X509_NAME *name, char out[INTEL_NAME_MAX])
{
        if (!cf_ok(intel_name_cn(name, out, INTEL_NAME_MAX))) {
                cpy(out, INTEL_NAME_MAX, "(no common name)");
        }
}

static bool is_amd_cn(const char *cn)
{
        return strncmp(cn, "ARK-", 4) == 0 || strncmp(cn, "SEV-", 4) == 0;
}

/* ---- Intel certificates: a chain by signature to the pinned root ---- */

static bool intel_chain(const struct intel_coll *c, size_t k, int depth, int *ret_issuer, char *why,
                        size_t why_size)
{
        X509 *x = c->certs[k];
        char subj[INTEL_NAME_MAX], iss[INTEL_NAME_MAX], sub_why[ATTEST_COLL_REASON_MAX];
        bool named = false, not_ca = false;

        if (intel_cert_is_pinned_root(x)) {
                *ret_issuer = -1;
                return true;
        }
        cn_of(X509_get_subject_name(x), subj);
        cn_of(X509_get_issuer_name(x), iss);
        if (strcmp(subj, "Intel SGX Root CA") == 0) {
                snprintf(why, why_size,
                         "certificate '%s' is not the pinned Intel SGX Root CA (SHA-256 "
                         "44a0196b..74d3)",
                         subj);
                return false;
        }
        if (depth >= CHAIN_DEPTH_MAX) {
                snprintf(why, why_size, "'%s': chain longer than %d certificates", subj,
                         CHAIN_DEPTH_MAX);
                return false;
        }
        sub_why[0] = '\0';
        for (size_t j = 0; j < c->n_certs; j++) {
                int unused;
                if (j == k || X509_check_issued(c->certs[j], x) != X509_V_OK) {
                        continue;
                }
                named = true;
                if (X509_check_ca(c->certs[j]) <= 0) {
                        not_ca = true;
                        continue;
                }
                if (!cf_ok(intel_cert_signed_by(x, c->certs[j]))) {
                        continue;
                }
                if (intel_chain(c, j, depth + 1, &unused, sub_why, sizeof(sub_why))) {
                        *ret_issuer = (int)j;
                        return true;
                }
        }
        if (!named) {
                snprintf(why, why_size,
                         "'%s' is issued by '%s' whose certificate is not in this import nor "
                         "in stored collateral",
                         subj, iss);
        } else if (sub_why[0] != '\0') {
                snprintf(why, why_size,
                         "'%.60s': its issuer '%.60s' does not chain to the pinned "
                         "root: %.140s",
                         subj, iss, sub_why);
        } else if (not_ca) {
                snprintf(why, why_size, "'%s': its issuer '%s' is not a CA certificate", subj, iss);
        } else {
                snprintf(why, why_size, "'%s': signature does not verify with its issuer '%s'",
                         subj, iss);
        }
        return false;
}

static void judge_intel_cert(struct ctx *x, size_t k, struct acc *a)
{
        const struct intel_coll *c = x->coll;
        char why[ATTEST_COLL_REASON_MAX], dig[ATTEST_COLL_DIGEST_HEX];
        int64_t nb, na;
        int issuer = -1;

        if (!intel_chain(c, k, 0, &issuer, why, sizeof(why))) {
                fail(a, why);
        } else if (issuer < 0) {
                pass(a, "pinned");
        } else {
                cert_digest(c->certs[issuer], dig);
                pass(a, dig);
        }
        if (cf_ok(intel_asn1_time(X509_get0_notBefore(c->certs[k]), &nb)) &&
            cf_ok(intel_asn1_time(X509_get0_notAfter(c->certs[k]), &na))) {
                char cn[INTEL_NAME_MAX], what[INTEL_NAME_MAX + 16];
                cn_of(X509_get_subject_name(c->certs[k]), cn);
                snprintf(what, sizeof(what), "certificate '%s'", cn);
                window(x, a, what, nb, na);
        }
}

/* ---- AMD certificates: snp_verify_cert against every AMD certificate of the set ---- */

static CF_FN collect_amd(struct ctx *x)
{
        for (size_t k = 0; k < x->coll->n_certs; k++) {
                char cn[INTEL_NAME_MAX];
                unsigned char *der = NULL;
                int n;
                cf_status s;
                bool dup = false;

                cn_of(X509_get_subject_name(x->coll->certs[k]), cn);
                if (!is_amd_cn(cn)) {
                        continue;
                }
                n = i2d_X509(x->coll->certs[k], &der);
                ENSURE(n > 0, CF_E_NOMEM);
                for (size_t j = 0; j < x->amd.n && !dup; j++) {
                        dup = cf_slice_eq(cf_slice_make(x->amd.items[j].data, x->amd.items[j].size),
                                          cf_slice_make(der, (size_t)n));
                }
                s = dup || x->amd.n >= AMD_CERTS_MAX
                        ? CF_OK
                        : attest_collateral_add(&x->amd, cn, der, (size_t)n);
                OPENSSL_free(der);
                TRY(s);
        }
        return CF_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

static CF_FN judge_amd_cert(struct ctx *x, size_t k, struct acc *a)
{
        X509 *cert = x->coll->certs[k];
        struct snp_options opt = {.now = x->now, .expected_stepping = -1};
        struct attest_result res;
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);
        char dig[ATTEST_COLL_DIGEST_HEX], cn[INTEL_NAME_MAX];
        const struct attest_check *bad = NULL;
        int64_t nb, na;
        cf_status s;

        ENSURE(n > 0, CF_E_NOMEM);
        s = attest_result_init(&res);
        if (!cf_ok(s)) {
                OPENSSL_free(der);
                return s;
        }
        /* The status is the first failed check's; the checks themselves are judged here. */
        cf_ignore(snp_verify_cert(cf_slice_make(der, (size_t)n), &x->amd, &opt, &res));
        OPENSSL_free(der);
        for (size_t i = 0; i < res.checks.n && bad == NULL; i++) {
                const struct attest_check *ch = &res.checks.items[i];
                if (!ch->ok && !ends_with(ch->name, ".validity")) {
                        bad = ch;
                }
        }
        cn_of(X509_get_subject_name(cert), cn);
        if (bad != NULL) {
                char why[ATTEST_COLL_REASON_MAX];
                if (strncmp(bad->name, "snp.collateral.", 15) == 0) {
                        snprintf(why, sizeof(why),
                                 "AMD certificate '%.40s' is issued by %.80s whose certificate "
                                 "is not in this import nor in stored collateral",
                                 cn, bad->expected);
                } else {
                        snprintf(why, sizeof(why),
                                 "AMD certificate '%.40s': %.50s failed (expected %.80s, "
                                 "actual %.80s)",
                                 cn, bad->name, bad->expected, bad->actual);
                }
                fail(a, why);
        } else {
                const char *issuer = NULL;
                if (strncmp(cn, "ARK-", 4) == 0) {
                        issuer = "pinned";
                } else {
                        for (size_t j = 0; j < x->coll->n_certs && issuer == NULL; j++) {
                                if (j != k &&
                                    X509_check_issued(x->coll->certs[j], cert) == X509_V_OK) {
                                        cert_digest(x->coll->certs[j], dig);
                                        issuer = dig;
                                }
                        }
                }
                pass(a, issuer);
        }
        attest_result_done(&res);
        if (cf_ok(intel_asn1_time(X509_get0_notBefore(cert), &nb)) &&
            cf_ok(intel_asn1_time(X509_get0_notAfter(cert), &na))) {
                char what[INTEL_NAME_MAX + 16];
                snprintf(what, sizeof(what), "certificate '%s'", cn);
                window(x, a, what, nb, na);
        }
        return CF_OK;
}

/* ---- CRLs: signed by their issuer, itself chained to the pinned root ---- */

static void judge_crl(struct ctx *x, const struct intel_crl *e, struct acc *a)
{
        const struct intel_coll *c = x->coll;
        char iss[INTEL_NAME_MAX], why[ATTEST_COLL_REASON_MAX], dig[ATTEST_COLL_DIGEST_HEX];
        bool named = false, chained = false;
        const char *what = "CRL";

        cn_of(X509_CRL_get_issuer(e->crl), iss);
        for (size_t j = 0; j < c->n_certs; j++) {
                int unused;
                if (X509_NAME_cmp(X509_get_subject_name(c->certs[j]),
                                  X509_CRL_get_issuer(e->crl)) != 0) {
                        continue;
                }
                named = true;
                if (!intel_chain(c, j, 0, &unused, why, sizeof(why))) {
                        continue;
                }
                chained = true;
                if (X509_CRL_verify(e->crl, X509_get0_pubkey(c->certs[j])) == 1) {
                        cert_digest(c->certs[j], dig);
                        pass(a, dig);
                        window(x, a, what, e->this_update, e->next_update);
                        return;
                }
        }
        if (!named) {
                {
                        char why_[ATTEST_COLL_REASON_MAX];
                        snprintf(why_, sizeof(why_),
                                 "CRL signed by '%s' whose certificate is not in this import nor "
                                 "in stored collateral",
                                 iss);
                        fail(a, why_);
                }
        } else if (!chained) {
                {
                        char why_[ATTEST_COLL_REASON_MAX];
                        snprintf(why_, sizeof(why_),
                                 "CRL issuer '%s' does not chain to the pinned Intel SGX Root CA",
                                 iss);
                        fail(a, why_);
                }
        } else {
                {
                        char why_[ATTEST_COLL_REASON_MAX];
                        snprintf(why_, sizeof(why_),
                                 "CRL signature does not verify with its issuer '%s' (not signed "
                                 "by its issuer, or altered)",
                                 iss);
                        fail(a, why_);
                }
        }
        window(x, a, what, e->this_update, e->next_update);
}

/* ---- signed TCB Info / QE Identity bodies and detached signatures ---- */

static void judge_signed(struct ctx *x, const struct intel_signed *s, struct acc *a)
{
        const struct intel_coll *c = x->coll;
        const char *what = s->kind == INTEL_SIGNED_TCB_INFO ? "TCB Info" : "QE Identity";
        char dig[ATTEST_COLL_DIGEST_HEX];

        if (s->verified_by != 0) {
                for (size_t i = 0; i < c->n_certs; i++) {
                        if (s->verified_by & (UINT64_C(1) << i)) {
                                cert_digest(c->certs[i], dig);
                                pass(a, dig);
                                break;
                        }
                }
        } else if (c->signing_ok == 0) {
                {
                        char why_[ATTEST_COLL_REASON_MAX];
                        snprintf(why_, sizeof(why_),
                                 "%s signed by 'Intel SGX TCB Signing' whose certificate is not in "
                                 "this import nor in stored collateral (or does not chain to the "
                                 "pinned Intel SGX Root CA)",
                                 what);
                        fail(a, why_);
                }
        } else if (s->has_sig) {
                {
                        char why_[ATTEST_COLL_REASON_MAX];
                        snprintf(why_, sizeof(why_),
                                 "%s signature does not verify over the exact body with any Intel "
                                 "SGX TCB Signing certificate (altered body or wrong signature)",
                                 what);
                        fail(a, why_);
                }
        } else {
                {
                        char why_[ATTEST_COLL_REASON_MAX];
                        snprintf(
                            why_, sizeof(why_),
                            "no detached signature in this import or stored collateral verifies "
                            "this %s body (altered body, or its signature file is missing)",
                            what);
                        fail(a, why_);
                }
        }
        if (s->kind == INTEL_SIGNED_TCB_INFO) {
                window(x, a, what, s->tcb.issue_date, s->tcb.next_update);
        } else {
                window(x, a, what, s->qe.issue_date, s->qe.next_update);
        }
}

static void judge_loose(struct ctx *x, size_t j, struct acc *a)
{
        if (x->coll->loose_used[j]) {
                pass(a, NULL);
                return;
        }
        fail(a, "this signature verifies no TCB Info or QE Identity body of this import or of "
                "stored collateral with an Intel SGX TCB Signing certificate");
}

/* ---- kinds, from the file parsed alone ---- */

static const char *kind_of(const struct intel_coll *c, const struct attest_blob *b)
{
        size_t parts = c->n_signed + c->n_crls + c->n_loose + (c->n_certs > 0 ? 1 : 0);
        bool json = false;

        for (size_t i = 0; i < b->size; i++) {
                uint8_t ch = b->data[i];
                if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
                        json = ch == '{';
                        break;
                }
        }
        if (parts == 0) {
                return NULL;
        }
        if (json && (parts > 1 || c->n_signed == 0)) {
                return "bundle";
        }
        if (c->n_signed == 1 && parts == 1) {
                return c->signed_items[0].kind == INTEL_SIGNED_TCB_INFO ? "tcb_info"
                                                                        : "qe_identity";
        }
        if (c->n_loose == 1 && parts == 1) {
                return "signature";
        }
        if (c->n_crls == 1 && parts == 1) {
                return "crl";
        }
        if (c->n_certs > 0 && parts == 1) {
                return "certificate";
        }
        return "bundle";
}

/* ---- the combined set ---- */

static CF_FN add_tagged(struct attest_collateral *comb, char tag, size_t i,
                        const struct attest_blob *b)
{
        char name[24];

        snprintf(name, sizeof(name), "%c%zu", tag, i);
        return attest_collateral_add(comb, name, b->data, b->size);
}

static bool same_as_new(const struct attest_collateral *files, const struct attest_blob *b)
{
        for (size_t i = 0; i < files->n; i++) {
                if (cf_slice_eq(cf_slice_make(files->items[i].data, files->items[i].size),
                                cf_slice_make(b->data, b->size))) {
                        return true;
                }
        }
        return false;
}

/* Parses one blob alone: NULL coll means it does not parse; *ret_err gets the status. */
static CF_FN parse_alone(const struct attest_blob *b, struct intel_coll **ret, cf_status *ret_err)
{
        struct attest_collateral one;
        cf_status s;

        attest_collateral_init(&one);
        s = attest_collateral_add(&one, "alone", b->data, b->size);
        if (cf_ok(s)) {
                s = intel_coll_build(&one, NULL, ret);
        }
        attest_collateral_done(&one);
        TRY(s);
        *ret_err = (*ret)->error;
        return CF_OK;
}

static CF_FN judge_all(struct ctx *x)
{
        const struct intel_coll *c = x->coll;
        int i;

        for (size_t k = 0; k < c->n_certs; k++) {
                char cn[INTEL_NAME_MAX];
                if ((i = new_index(c->cert_source[k])) < 0) {
                        continue;
                }
                cn_of(X509_get_subject_name(c->certs[k]), cn);
                if (is_amd_cn(cn)) {
                        TRY(judge_amd_cert(x, k, &x->acc[i]));
                } else {
                        judge_intel_cert(x, k, &x->acc[i]);
                }
        }
        for (size_t k = 0; k < c->n_crls; k++) {
                if ((i = new_index(c->crls[k].source)) >= 0) {
                        judge_crl(x, &c->crls[k], &x->acc[i]);
                }
        }
        for (size_t k = 0; k < c->n_signed; k++) {
                if ((i = new_index(c->signed_items[k].source)) >= 0) {
                        judge_signed(x, &c->signed_items[k], &x->acc[i]);
                }
        }
        for (size_t k = 0; k < c->n_loose; k++) {
                if ((i = new_index(c->loose_source[k])) >= 0) {
                        judge_loose(x, k, &x->acc[i]);
                }
        }
        return CF_OK;
}

/* Builds the combined set twice: once to find the pinned root among its certificates, once
 * to verify against it. */
static CF_FN build_combined(struct ctx *x, const struct attest_collateral *files,
                            const struct attest_collateral *stored, const bool *parses,
                            struct attest_collateral *comb)
{
        CF_CLEANUP(coll_freep) struct intel_coll *probe = NULL;
        X509 *root = NULL;

        for (size_t i = 0; i < files->n; i++) {
                if (parses[i]) {
                        TRY(add_tagged(comb, 'n', i, &files->items[i]));
                }
        }
        for (size_t j = 0; stored != NULL && j < stored->n; j++) {
                struct intel_coll *one = NULL;
                cf_status err = CF_OK;
                if (same_as_new(files, &stored->items[j])) {
                        continue;
                }
                TRY(parse_alone(&stored->items[j], &one, &err));
                intel_coll_free(one);
                if (cf_ok(err)) {
                        TRY(add_tagged(comb, 's', j, &stored->items[j]));
                }
        }
        TRY(intel_coll_build(comb, NULL, &probe));
        for (size_t k = 0; cf_ok(probe->error) && k < probe->n_certs && root == NULL; k++) {
                if (intel_cert_is_pinned_root(probe->certs[k])) {
                        root = probe->certs[k];
                }
        }
        TRY(intel_coll_build(comb, root, &x->coll));
        for (size_t k = 0; k < x->coll->n_certs && x->root == NULL; k++) {
                if (intel_cert_is_pinned_root(x->coll->certs[k])) {
                        x->root = x->coll->certs[k];
                }
        }
        return CF_OK;
}

static CF_FN add_checks(struct attest_checks *out, size_t i, const char *name,
                        const struct attest_collateral_file *f, bool allow_expired)
{
        char n[ATTEST_CHECK_VALUE_MAX], exp[160];

        snprintf(n, sizeof(n), "collateral[%zu] %.200s: signature", i, name);
        snprintf(exp, sizeof(exp), "%s verified up to a pinned root (Intel SGX Root CA or AMD ARK)",
                 f->kind[0] ? f->kind : "collateral");
        TRY(attest_checks_add(out, n, f->verified, exp,
                              f->verified ? (f->issuer[0] ? f->issuer : "verified") : f->reason));
        snprintf(n, sizeof(n), "collateral[%zu] %.200s: window", i, name);
        return attest_checks_add(out, n, f->in_window || allow_expired,
                                 f->window[0] ? f->window : "no validity window",
                                 f->in_window    ? "within its window"
                                 : allow_expired ? "outside its window, accepted (allow_expired)"
                                                 : f->reason);
}

cf_status attest_collateral_check(const struct attest_collateral *files,
                                  const struct attest_collateral *stored, int64_t now,
                                  bool allow_expired, struct attest_collateral_report *ret,
                                  struct attest_checks *out)
{
        CF_AUTOFREE struct ctx *x = calloc(1, sizeof(*x));
        struct attest_collateral comb;
        bool parses[ATTEST_COLLATERAL_MAX_FILES] = {false};
        cf_status s = CF_OK, build = CF_OK;
        bool all_ok = true;

        ENSURE(x != NULL, CF_E_NOMEM);
        ENSURE(files != NULL && files->n <= ATTEST_COLLATERAL_MAX_FILES, CF_E_INVALID_ARG);
        memset(ret, 0, sizeof(*ret));
        ret->n = files->n;
        x->files = files;
        x->now = now;
        attest_collateral_init(&comb);
        attest_collateral_init(&x->amd);
        for (size_t i = 0; i < files->n; i++) {
                struct intel_coll *one = NULL;
                cf_status err = CF_OK;
                const char *kind = NULL;

                x->acc[i] = (struct acc){.sig_ok = true, .in_window = true};
                s = parse_alone(&files->items[i], &one, &err);
                if (!cf_ok(s)) {
                        break;
                }
                kind = cf_ok(err) ? kind_of(one, &files->items[i]) : NULL;
                intel_coll_free(one);
                if (!cf_ok(err)) {
                        {
                                char why_[ATTEST_COLL_REASON_MAX];
                                snprintf(why_, sizeof(why_), "malformed collateral (%s)",
                                         cf_status_name(err));
                                fail(&x->acc[i], why_);
                        }
                } else if (kind == NULL) {
                        fail(&x->acc[i], "not recognised as Intel or AMD collateral");
                } else {
                        cpy(ret->files[i].kind, sizeof(ret->files[i].kind), kind);
                        parses[i] = true;
                }
        }
        if (cf_ok(s)) {
                build = build_combined(x, files, stored, parses, &comb);
                if (cf_ok(build) && !cf_ok(x->coll->error)) {
                        build = x->coll->error;
                }
                if (!cf_ok(build) && build.code == CF_E_NOMEM) {
                        s = build;
                }
        }
        if (cf_ok(s) && cf_ok(build)) {
                s = collect_amd(x);
                s = cf_ok(s) ? judge_all(x) : s;
        }
        for (size_t i = 0; cf_ok(s) && i < files->n; i++) {
                struct attest_collateral_file *f = &ret->files[i];
                struct acc *a = &x->acc[i];
                if (parses[i] && !cf_ok(build)) {
                        {
                                char why_[ATTEST_COLL_REASON_MAX];
                                snprintf(why_, sizeof(why_),
                                         "cannot be verified together with the stored collateral "
                                         "(%s: the verifier's limits are 64 certificates, 16 CRLs, "
                                         "16 signed bodies)",
                                         cf_status_name(build));
                                fail(a, why_);
                        }
                } else if (parses[i] && !a->seen) {
                        fail(a, "not recognised as Intel or AMD collateral");
                }
                f->verified = a->sig_ok;
                f->in_window = a->in_window;
                f->ok = a->sig_ok && (a->in_window || allow_expired);
                cpy(f->issuer, sizeof(f->issuer), a->sig_ok ? a->issuer : "");
                cpy(f->window, sizeof(f->window), a->window);
                if (!a->sig_ok) {
                        cpy(f->reason, sizeof(f->reason), a->reason);
                } else if (!a->in_window && !allow_expired) {
                        snprintf(f->reason, sizeof(f->reason),
                                 "outside its validity window: %s (import with allow_expired to "
                                 "keep it for verifying old evidence)",
                                 a->window_fail);
                }
                all_ok = all_ok && f->ok;
                if (out != NULL) {
                        s = add_checks(out, i, files->items[i].name, f, allow_expired);
                }
        }
        intel_coll_free(x->coll);
        attest_collateral_done(&x->amd);
        attest_collateral_done(&comb);
        TRY(s);
        ENSURE(all_ok, CF_E_COLLATERAL);
        return CF_OK;
}
