/* Unit tests of src/attest/collateral_check.c: set-wise verification of imported collateral
 * with the real vectors (skipped when ../shared/vectors is absent) and altered variants:
 * complete sets in any order, sets split between stored and new files, missing issuers,
 * altered bodies, signatures and CRLs, certificates of another root, windows, AMD chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/collateral_check.h"
#include "attest/intel/intel.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "crypto/crypto.h"
#include "vectors.h"

#define SGX_TIME "2025-07-01T00:00:00Z"

static const char *const g_sgx[] = {
    "sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json",
    "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex",
    "sgx/dcapqvl_sgx_coll.qe_identity.signed_body.json",
    "sgx/dcapqvl_sgx_coll.qe_identity.sig_rs.hex",
    "sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem",
    "sgx/dcapqvl_sgx_coll.pck_crl.der",
    "sgx/dcapqvl_sgx_coll.pck_crl_issuer_chain.pem",
    "sgx/dcapqvl_sgx_coll.root_ca_crl.der",
    "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer",
};
#define N_SGX (sizeof(g_sgx) / sizeof(g_sgx[0]))
enum { TCB_BODY = 0, TCB_SIG, QE_BODY, QE_SIG, TCB_CHAIN, PCK_CRL, PCK_CHAIN, ROOT_CRL, ROOT };

static bool g_have_vectors;

static int setup(void **state)
{
        (void)state;
        if (!cf_ok(cf_crypto_init())) {
                return -1;
        }
        g_have_vectors = vec_dir() != NULL;
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        intel_cache_clear();
        snp_cache_clear();
        return 0;
}

#define NEED_VECTORS()                                                                             \
        do {                                                                                       \
                if (!g_have_vectors) {                                                             \
                        print_message("SKIP: vectors folder absent (COFFER_VECTORS)\n");           \
                        skip();                                                                    \
                }                                                                                  \
        } while (0)

static int64_t at(const char *t)
{
        int64_t v = 0;

        assert_true(cf_ok(cf_parse_rfc3339(t, &v)));
        return v;
}

static void add_file(struct attest_collateral *c, const char *rel)
{
        uint8_t *d = NULL;
        size_t n = 0;

        assert_true(vec_load_file(rel, &d, &n));
        assert_true(cf_ok(attest_collateral_add(c, rel, d, n)));
        free(d);
}

/* The SGX set, the files selected by mask (bit i = g_sgx[i]), in order or reversed. */
static void sgx_set(struct attest_collateral *c, unsigned mask, bool reversed)
{
        attest_collateral_init(c);
        for (size_t k = 0; k < N_SGX; k++) {
                size_t i = reversed ? N_SGX - 1 - k : k;
                if (mask & (1u << i)) {
                        add_file(c, g_sgx[i]);
                }
        }
}

static struct attest_collateral_report g_rep;

static cf_status check(const struct attest_collateral *files,
                       const struct attest_collateral *stored, int64_t now, bool allow_expired)
{
        struct attest_checks out;
        cf_status s;

        attest_checks_init(&out);
        s = attest_collateral_check(files, stored, now, allow_expired, &g_rep, &out);
        assert_int_equal(g_rep.n, files->n);
        assert_int_equal(out.n, 2 * files->n);
        for (size_t i = 0; i < files->n; i++) {
                /* the checks say what the report says */
                assert_int_equal(out.items[2 * i].ok, g_rep.files[i].verified);
                assert_non_null(strstr(out.items[2 * i].name, files->items[i].name));
                assert_int_equal(g_rep.files[i].ok, out.items[2 * i].ok && out.items[2 * i + 1].ok);
        }
        attest_checks_done(&out);
        return s;
}

/* Index of the file named name in the last report's input. */
static const struct attest_collateral_file *file(const struct attest_collateral *c,
                                                 const char *name)
{
        for (size_t i = 0; i < c->n; i++) {
                if (strcmp(c->items[i].name, name) == 0) {
                        return &g_rep.files[i];
                }
        }
        static const struct attest_collateral_file none; /* never reached: fail_msg jumps */
        fail_msg("no file %s", name);
        return &none;
}

static void test_sgx_set_any_order(void **state)
{
        struct attest_collateral c;
        static const char *const kinds[] = {"tcb_info",    "signature",   "qe_identity",
                                            "signature",   "certificate", "crl",
                                            "certificate", "crl",         "certificate"};

        (void)state;
        NEED_VECTORS();
        for (int rev = 0; rev < 2; rev++) {
                sgx_set(&c, 0x1ff, rev != 0);
                assert_true(cf_ok(check(&c, NULL, at(SGX_TIME), false)));
                for (size_t i = 0; i < N_SGX; i++) {
                        const struct attest_collateral_file *f = file(&c, g_sgx[i]);
                        assert_true(f->ok && f->verified && f->in_window);
                        assert_string_equal(f->kind, kinds[i]);
                        assert_string_equal(f->reason, "");
                }
                assert_string_equal(file(&c, g_sgx[ROOT])->issuer, "pinned");
                /* a signed body names its TCB Signing certificate, a CRL its CA */
                assert_int_equal(strlen(file(&c, g_sgx[TCB_BODY])->issuer), 64);
                assert_int_equal(strlen(file(&c, g_sgx[PCK_CRL])->issuer), 64);
                assert_string_not_equal(file(&c, g_sgx[PCK_CRL])->issuer,
                                        file(&c, g_sgx[TCB_BODY])->issuer);
                attest_collateral_done(&c);
        }
}

static void test_sgx_split_between_stored_and_new(void **state)
{
        struct attest_collateral stored, files;

        (void)state;
        NEED_VECTORS();
        /* the root and the chains were imported before; now the bodies, signatures, CRLs */
        sgx_set(&stored, 1u << ROOT | 1u << TCB_CHAIN | 1u << PCK_CHAIN, false);
        sgx_set(&files, 0x1ffu & ~(1u << ROOT | 1u << TCB_CHAIN | 1u << PCK_CHAIN), false);
        assert_true(cf_ok(check(&files, &stored, at(SGX_TIME), false)));
        /* a signature stored earlier pairs with its body imported now */
        attest_collateral_done(&stored);
        attest_collateral_done(&files);
        sgx_set(&stored, 1u << ROOT | 1u << TCB_CHAIN | 1u << TCB_SIG, false);
        sgx_set(&files, 1u << TCB_BODY, false);
        assert_true(cf_ok(check(&files, &stored, at(SGX_TIME), false)));
        attest_collateral_done(&stored);
        attest_collateral_done(&files);
}

static void test_missing_issuer_is_named(void **state)
{
        struct attest_collateral c;
        const struct attest_collateral_file *f;

        (void)state;
        NEED_VECTORS();
        sgx_set(&c, 1u << TCB_BODY | 1u << TCB_SIG, false);
        assert_int_equal(check(&c, NULL, at(SGX_TIME), true).code, CF_E_COLLATERAL);
        f = file(&c, g_sgx[TCB_BODY]);
        assert_false(f->ok || f->verified);
        assert_non_null(strstr(f->reason, "'Intel SGX TCB Signing' whose certificate is not in "
                                          "this import nor in stored collateral"));
        attest_collateral_done(&c);

        /* a PCK CRL without its CA (an issuer chain holds its root: it verifies alone) */
        sgx_set(&c, 1u << PCK_CRL | 1u << TCB_CHAIN, false);
        assert_int_equal(check(&c, NULL, at(SGX_TIME), true).code, CF_E_COLLATERAL);
        assert_non_null(strstr(file(&c, g_sgx[PCK_CRL])->reason, "CRL signed by 'Intel SGX PCK "));
        assert_true(file(&c, g_sgx[TCB_CHAIN])->ok);
        attest_collateral_done(&c);

        /* the root alone is fine: it is the pinned one */
        sgx_set(&c, 1u << ROOT, false);
        assert_true(cf_ok(check(&c, NULL, at(SGX_TIME), false)));
        attest_collateral_done(&c);
}

/* One byte of one file of the complete set changed: that file (and only the files that
 * depend on it) refused, with a reason. */
static void altered(size_t which, size_t off_from_end, bool from_end, size_t off,
                    const char *want_reason)
{
        struct attest_collateral c;
        struct attest_blob *b;

        sgx_set(&c, 0x1ff, false);
        b = &c.items[which];
        b->data[from_end ? b->size - 1 - off_from_end : off] ^= 0x01;
        assert_int_equal(check(&c, NULL, at(SGX_TIME), true).code, CF_E_COLLATERAL);
        assert_false(g_rep.files[which].ok);
        assert_false(g_rep.files[which].verified);
        assert_non_null(strstr(g_rep.files[which].reason, want_reason));
        assert_true(g_rep.files[ROOT].ok);
        attest_collateral_done(&c);
}

static void test_altered_files_are_refused(void **state)
{
        (void)state;
        NEED_VECTORS();
        /* tcbEvaluationDataNumber 17 -> 16 in the signed body (the vectors' mutation) */
        altered(TCB_BODY, 0, false, 0xac, "no detached signature in this import");
        altered(TCB_SIG, 3, true, 0, "verifies no TCB Info or QE Identity body");
        altered(QE_SIG, 3, true, 0, "verifies no TCB Info or QE Identity body");
        /* the last byte of the DER CRL is inside its signature */
        altered(PCK_CRL, 0, true, 0, "CRL signature does not verify with its issuer");
        altered(ROOT_CRL, 0, true, 0, "CRL signature does not verify with its issuer");
}

static void test_altered_body_of_pcs_response(void **state)
{
        struct attest_collateral c;
        uint8_t *d = NULL;
        size_t n = 0;
        char *p;

        (void)state;
        NEED_VECTORS();
        attest_collateral_init(&c);
        add_file(&c, "sgx/dcaprs_signing_cert.pem");
        add_file(&c, "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer");
        add_file(&c, "sgx/dcaprs_tcbinfov2.json");
        assert_true(cf_ok(check(&c, NULL, at("2025-02-13T04:00:32Z"), false)));
        assert_string_equal(g_rep.files[2].kind, "tcb_info");
        attest_collateral_done(&c);

        /* one digit of the JSON body changed: the signature no longer verifies */
        assert_true(vec_load_file("sgx/dcaprs_tcbinfov2.json", &d, &n));
        p = memmem(d, n, "\"pcesvn\":", 9);
        assert_non_null(p);
        p[9] = p[9] == '1' ? '2' : '1';
        attest_collateral_init(&c);
        add_file(&c, "sgx/dcaprs_signing_cert.pem");
        add_file(&c, "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer");
        assert_true(cf_ok(attest_collateral_add(&c, "tcbinfo.json", d, n)));
        free(d);
        assert_int_equal(check(&c, NULL, at("2025-02-13T04:00:32Z"), true).code, CF_E_COLLATERAL);
        assert_non_null(
            strstr(g_rep.files[2].reason, "signature does not verify over the exact body"));
        assert_true(g_rep.files[0].ok && g_rep.files[1].ok);
        attest_collateral_done(&c);
}

static void test_bundle(void **state)
{
        struct attest_collateral c;

        (void)state;
        NEED_VECTORS();
        attest_collateral_init(&c);
        add_file(&c, "sgx/dcapqvl_sgx_quote_collateral.json");
        add_file(&c, "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer");
        assert_true(cf_ok(check(&c, NULL, at(SGX_TIME), true)));
        assert_string_equal(g_rep.files[0].kind, "bundle");
        assert_true(g_rep.files[0].verified);
        attest_collateral_done(&c);
}

static void test_windows(void **state)
{
        struct attest_collateral c;
        const struct attest_collateral_file *f;

        (void)state;
        NEED_VECTORS();
        sgx_set(&c, 0x1ff, false);
        /* after the TCB Info's nextUpdate: refused with both dates, unless allow_expired */
        assert_int_equal(check(&c, NULL, at("2026-11-24T00:00:00Z"), false).code, CF_E_COLLATERAL);
        f = file(&c, g_sgx[TCB_BODY]);
        assert_true(f->verified);
        assert_false(f->ok || f->in_window);
        assert_non_null(strstr(f->reason, "2025-06-19T10:56:11Z .. 2025-07-19T10:56:11Z"));
        assert_non_null(strstr(f->reason, "now 2026-11-24T00:00:00Z"));
        assert_true(file(&c, g_sgx[ROOT])->ok); /* the root is valid until 2049 */
        assert_true(cf_ok(check(&c, NULL, at("2026-11-24T00:00:00Z"), true)));
        f = file(&c, g_sgx[TCB_BODY]);
        assert_true(f->ok && f->verified && !f->in_window);
        /* before the issue date */
        assert_int_equal(check(&c, NULL, at("2025-06-01T00:00:00Z"), false).code, CF_E_COLLATERAL);
        assert_false(file(&c, g_sgx[TCB_BODY])->ok);
        attest_collateral_done(&c);
}

/* A self-signed P-256 certificate named cn, or one issued by issuer/issuer_key. */
static X509 *make_cert(const char *cn, X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY **ret_key)
{
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *x = X509_new();

        assert_non_null(k);
        assert_non_null(x);
        assert_int_equal(X509_set_version(x, 2), 1);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365 * 30);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
        X509_set_pubkey(x, k);
        if (issuer == NULL) {
                X509_EXTENSION *e =
                    X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
                assert_non_null(e);
                assert_int_equal(X509_add_ext(x, e, -1), 1);
                X509_EXTENSION_free(e);
        }
        assert_true(X509_sign(x, issuer_key ? issuer_key : k, EVP_sha256()) > 0);
        *ret_key = k;
        return x;
}

static void add_der(struct attest_collateral *c, const char *name, X509 *x)
{
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);

        assert_true(n > 0);
        assert_true(cf_ok(attest_collateral_add(c, name, der, (size_t)n)));
        OPENSSL_free(der);
}

static void test_other_root_is_refused(void **state)
{
        struct attest_collateral c;
        EVP_PKEY *rk, *sk;
        X509 *root = make_cert("Intel SGX Root CA", NULL, NULL, &rk);
        X509 *sign = make_cert("Intel SGX TCB Signing", root, rk, &sk);

        (void)state;
        attest_collateral_init(&c);
        add_der(&c, "fake-root.der", root);
        add_der(&c, "fake-signing.der", sign);
        assert_int_equal(check(&c, NULL, at("2030-01-01T00:00:00Z"), true).code, CF_E_COLLATERAL);
        assert_non_null(strstr(g_rep.files[0].reason, "is not the pinned Intel SGX Root CA"));
        assert_non_null(strstr(g_rep.files[1].reason, "does not chain to the pinned root"));
        attest_collateral_done(&c);
        /* a certificate of no known root at all */
        X509_free(sign);
        EVP_PKEY_free(sk);
        sign = make_cert("some service", root, rk, &sk);
        attest_collateral_init(&c);
        add_der(&c, "other.der", sign);
        assert_int_equal(check(&c, NULL, at("2030-01-01T00:00:00Z"), true).code, CF_E_COLLATERAL);
        assert_non_null(strstr(g_rep.files[0].reason, "whose certificate is not in this import"));
        attest_collateral_done(&c);
        X509_free(sign);
        X509_free(root);
        EVP_PKEY_free(sk);
        EVP_PKEY_free(rk);
}

static void test_unrecognised_and_malformed(void **state)
{
        struct attest_collateral c;
        uint8_t der_junk[64] = {0x30, 0x3e};
        const char *text = "hello, this is not collateral\n";

        (void)state;
        attest_collateral_init(&c);
        assert_true(cf_ok(attest_collateral_add(&c, "junk.der", der_junk, sizeof(der_junk))));
        assert_true(cf_ok(attest_collateral_add(&c, "junk.txt", text, strlen(text))));
        assert_true(cf_ok(attest_collateral_add(&c, "other.json", "{\"a\":1}", 7)));
        assert_int_equal(check(&c, NULL, at("2030-01-01T00:00:00Z"), true).code, CF_E_COLLATERAL);
        assert_non_null(strstr(g_rep.files[0].reason, "malformed collateral"));
        assert_non_null(strstr(g_rep.files[1].reason, "not recognised"));
        assert_non_null(strstr(g_rep.files[2].reason, "not recognised"));
        attest_collateral_done(&c);
}

static void test_amd_chains(void **state)
{
        struct attest_collateral c, stored;

        (void)state;
        NEED_VECTORS();
        attest_collateral_init(&c);
        add_file(&c, "snp/gosevguest_vcek_milan.der");
        add_file(&c, "snp/virteesev_ask_milan.pem");
        add_file(&c, "snp/virteesev_ark_milan.pem");
        assert_true(cf_ok(check(&c, NULL, at("2025-06-01T00:00:00Z"), false)));
        assert_string_equal(g_rep.files[2].issuer, "pinned");
        assert_int_equal(strlen(g_rep.files[0].issuer), 64);
        attest_collateral_done(&c);

        /* the VCEK alone, then with its chain stored */
        attest_collateral_init(&c);
        add_file(&c, "snp/gosevguest_vcek_milan.der");
        assert_int_equal(check(&c, NULL, at("2025-06-01T00:00:00Z"), true).code, CF_E_COLLATERAL);
        assert_non_null(strstr(g_rep.files[0].reason, "AMD certificate 'SEV-VCEK'"));
        attest_collateral_init(&stored);
        add_file(&stored, "snp/gosevguest_ask_ark_milan.pem");
        assert_true(cf_ok(check(&c, &stored, at("2025-06-01T00:00:00Z"), false)));
        attest_collateral_done(&stored);

        /* another product's chain (Genoa ASK/ARK for a Milan VCEK) */
        attest_collateral_init(&stored);
        add_file(&stored, "snp/gosevguest_ask_ark_genoa.pem");
        assert_int_equal(check(&c, &stored, at("2025-06-01T00:00:00Z"), true).code,
                         CF_E_COLLATERAL);
        attest_collateral_done(&stored);
        attest_collateral_done(&c);

        /* a VLEK through the ASVK; a Turin VCEK */
        attest_collateral_init(&c);
        add_file(&c, "snp/trustee_test-vlek.der");
        add_file(&c, "snp/gosevguest_ask_ark_milan_vlek.pem");
        add_file(&c, "snp/virteesev_vcek_turin.der");
        add_file(&c, "snp/virteesev_ask_turin.pem");
        add_file(&c, "snp/virteesev_ark_turin.pem");
        assert_true(cf_ok(check(&c, NULL, at("2025-06-01T00:00:00Z"), false)));
        attest_collateral_done(&c);

        /* a VCEK byte inside its signed part changed: its ASK signature fails */
        attest_collateral_init(&c);
        add_file(&c, "snp/virteesev_vcek_milan.der");
        add_file(&c, "snp/virteesev_ask_milan.pem");
        add_file(&c, "snp/virteesev_ark_milan.pem");
        c.items[0].data[0x28] ^= 0xff;
        assert_int_equal(check(&c, NULL, at("2025-06-01T00:00:00Z"), true).code, CF_E_COLLATERAL);
        assert_false(g_rep.files[0].ok);
        assert_true(g_rep.files[1].ok && g_rep.files[2].ok);
        attest_collateral_done(&c);
}

static void test_limits(void **state)
{
        struct attest_collateral c;

        (void)state;
        NEED_VECTORS();
        /* 17 TCB Info bodies exceed the verifier's 16 signed bodies: refused at import rather
         * than breaking verification later */
        attest_collateral_init(&c);
        add_file(&c, "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer");
        for (int i = 0; i < 17; i++) {
                add_file(&c, "sgx/dcaprs_tcbinfov2.json");
        }
        assert_int_equal(check(&c, NULL, at("2025-02-13T04:00:32Z"), true).code, CF_E_COLLATERAL);
        assert_non_null(strstr(g_rep.files[1].reason, "together with the stored collateral"));
        attest_collateral_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sgx_set_any_order),
            cmocka_unit_test(test_sgx_split_between_stored_and_new),
            cmocka_unit_test(test_missing_issuer_is_named),
            cmocka_unit_test(test_altered_files_are_refused),
            cmocka_unit_test(test_altered_body_of_pcs_response),
            cmocka_unit_test(test_bundle),
            cmocka_unit_test(test_windows),
            cmocka_unit_test(test_other_root_is_refused),
            cmocka_unit_test(test_unrecognised_and_malformed),
            cmocka_unit_test(test_amd_chains),
            cmocka_unit_test(test_limits),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
