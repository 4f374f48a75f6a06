/* Unit tests of src/attest/intel: every sgx and tdx row of ../shared/vectors/expected.tsv,
 * byte-flip sweeps over signed regions and signatures, truncation, unknown versions and
 * types, and the other collateral forms (bundles, PCS responses, embedded objects, PEM CRLs).
 * Tests that need the vectors skip with a message when the folder is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attest/intel/intel.h"
#include "base/codec.h"
#include "base/cursor.h"
#include "crypto/crypto.h"
#include "vectors.h"

static struct vec_row g_rows[VEC_MAX_ROWS];
static int g_n_rows = -1;

static int setup(void **state)
{
        (void)state;
        if (!cf_ok(cf_crypto_init())) {
                return -1;
        }
        g_n_rows = vec_load_rows(NULL, g_rows, VEC_MAX_ROWS);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        intel_cache_clear();
        return 0;
}

#define NEED_VECTORS()                                                                             \
        do {                                                                                       \
                if (g_n_rows < 0) {                                                                \
                        print_message("SKIP: vectors folder absent (COFFER_VECTORS)\n");           \
                        skip();                                                                    \
                }                                                                                  \
        } while (0)

static const struct vec_row *row(const char *id)
{
        for (int i = 0; i < g_n_rows; i++) {
                if (strcmp(g_rows[i].case_id, id) == 0) {
                        return &g_rows[i];
                }
        }
        fail_msg("no row %s", id);
        abort(); /* not reached: fail_msg does not return (callers dereference the result) */
}

static cf_status run(struct cf_slice ev, const struct attest_collateral *coll, int64_t now,
                     struct attest_result *res)
{
        struct intel_options opt = {.now = now};

        assert_true(cf_ok(attest_result_init(res)));
        return intel_verify(ev, coll, &opt, res);
}

static void dump_checks(const struct attest_result *res)
{
        for (size_t i = 0; i < res->checks.n; i++) {
                const struct attest_check *c = &res->checks.items[i];
                print_message("    %s %s expected=[%s] actual=[%s]\n", c->ok ? "ok  " : "FAIL",
                              c->name, c->expected, c->actual);
        }
}

static bool advisories_equal(const json_t *adv, const char *expected)
{
        char buf[1024] = "";
        size_t off = 0;

        for (size_t i = 0; i < json_array_size(adv); i++) {
                off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "",
                                        json_string_value(json_array_get(adv, i)));
        }
        return strcmp(buf, strcmp(expected, "-") == 0 ? "" : expected) == 0;
}

/* Drops a collateral item by name (the claims row lists an expected output, not collateral). */
static void drop_item(struct attest_collateral *coll, const char *name, uint8_t **ret,
                      size_t *ret_size)
{
        for (size_t i = 0; i < coll->n; i++) {
                if (strcmp(coll->items[i].name, name) == 0) {
                        *ret = coll->items[i].data;
                        *ret_size = coll->items[i].size;
                        free(coll->items[i].name);
                        coll->items[i] = coll->items[--coll->n];
                        return;
                }
        }
        fail_msg("no collateral %s", name);
}

static void le_hex(uint64_t v, size_t n, char *out)
{
        uint8_t b[8];

        for (size_t i = 0; i < n; i++) {
                b[i] = (uint8_t)(v >> (8 * i));
        }
        cf_hex_encode(b, n, out, 2 * n + 1);
}

static bool json_field_is(const json_t *o, const char *k, const char *hex)
{
        const char *v = json_string_value(json_object_get(o, k));

        return v != NULL && strcmp(v, hex) == 0;
}

/* tdx-quote4-claims: header and body fields equal the quote.* entries of trustee's JSON. */
static int check_claims_json(const uint8_t *ev, size_t ev_size, const uint8_t *js, size_t js_size,
                             const struct attest_result *res)
{
        static const char *const map[][2] = {
            {"mr_config_id", "mrconfigid"},
            {"mr_owner", "mrowner"},
            {"mr_owner_config", "mrownerconfig"},
            {"mr_seam", "mrseam"},
            {"mr_td", "mrtd"},
            {"mrsigner_seam", "mrsignerseam"},
            {"report_data", "report_data"},
            {"rtmr_0", "rtmr0"},
            {"rtmr_1", "rtmr1"},
            {"rtmr_2", "rtmr2"},
            {"rtmr_3", "rtmr3"},
            {"seam_attributes", "seam_attributes"},
            {"tcb_svn", "tee_tcb_svn"},
            {"td_attributes", "td_attributes"},
            {"xfam", "xfam"},
        };
        json_error_t err;
        json_t *doc = json_loadb((const char *)js, js_size, 0, &err);
        const json_t *body = json_object_get(json_object_get(doc, "quote"), "body");
        const json_t *hdr = json_object_get(json_object_get(doc, "quote"), "header");
        struct intel_quote q;
        char hex[80];
        int bad = 0, n = 0;

        if (doc == NULL || !cf_ok(intel_quote_parse(cf_slice_make(ev, ev_size), &q))) {
                json_decref(doc);
                return 1;
        }
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                const char *want = json_string_value(json_object_get(body, map[i][0]));
                const char *got = json_string_value(json_object_get(res->claims, map[i][1]));
                n++;
                if (want == NULL || got == NULL || strcmp(want, got) != 0) {
                        print_message("    claim %s: %s != %s\n", map[i][0], got ? got : "-",
                                      want ? want : "-");
                        bad++;
                }
        }
        le_hex(q.version, 2, hex);
        bad += !json_field_is(hdr, "version", hex);
        le_hex(q.att_key_type, 2, hex);
        bad += !json_field_is(hdr, "att_key_type", hex);
        le_hex(q.tee_type, 4, hex);
        bad += !json_field_is(hdr, "tee_type", hex);
        le_hex((uint64_t)q.qe_svn | (uint64_t)q.pce_svn << 16, 4, hex);
        bad += !json_field_is(hdr, "reserved", hex);
        cf_hex_encode(q.qe_vendor_id, 16, hex, sizeof(hex));
        bad += !json_field_is(hdr, "vendor_id", hex);
        cf_hex_encode(q.user_data, 20, hex, sizeof(hex));
        bad += !json_field_is(hdr, "user_data", hex);
        bad += json_is_true(json_object_get(res->claims, "debug")) ? 0 : 1;
        json_decref(doc);
        return n == 15 ? bad : bad + 1;
}

static int run_row(const struct vec_row *r)
{
        uint8_t *ev = NULL, *claims = NULL;
        size_t ev_size = 0, claims_size = 0;
        struct attest_collateral coll;
        struct attest_result res;
        cf_status s;
        int bad = 0;
        const char *want_status =
            strcmp(r->expected_tcb_status, "n/a") == 0 ? "" : r->expected_tcb_status;

        if (!vec_load_case(r, &ev, &ev_size, &coll)) {
                print_message("%s: cannot load the case\n", r->case_id);
                return 1;
        }
        if (strcmp(r->case_id, "tdx-quote4-claims") == 0) {
                drop_item(&coll, "tdx/trustee_parse_tdx_claims_expected.json", &claims,
                          &claims_size);
        }
        s = run(cf_slice_make(ev, ev_size), &coll, r->verify_at, &res);
        if (res.valid != r->expect_valid) {
                bad++;
        }
        if (strcmp(res.tcb_status, want_status) != 0 ||
            !advisories_equal(res.advisories, r->expected_advisories)) {
                bad++;
        }
        /* CF_OK exactly when valid and (if evaluated) a level matched. */
        if (cf_ok(s) != (r->expect_valid && strcmp(want_status, "NoMatchingLevel") != 0)) {
                bad++;
        }
        if (claims != NULL) {
                bad += check_claims_json(ev, ev_size, claims, claims_size, &res);
        }
        if (bad) {
                print_message(
                    "FAIL %s: status=%s valid=%d tcb=[%s] (want valid=%d tcb=[%s] adv=%s)\n",
                    r->case_id, cf_status_name(s), res.valid, res.tcb_status, r->expect_valid,
                    want_status, r->expected_advisories);
                dump_checks(&res);
        } else {
                print_message("pass %s\n", r->case_id);
        }
        attest_result_done(&res);
        attest_collateral_done(&coll);
        free(ev);
        free(claims);
        return bad ? 1 : 0;
}

static void test_rows(void **state)
{
        int failed = 0, n = 0;

        (void)state;
        NEED_VECTORS();
        for (int i = 0; i < g_n_rows; i++) {
                if (strcmp(g_rows[i].platform, "sgx") != 0 &&
                    strcmp(g_rows[i].platform, "tdx") != 0) {
                        continue;
                }
                n++;
                failed += run_row(&g_rows[i]);
        }
        print_message("intel rows: %d of %d pass\n", n - failed, n);
        assert_int_equal(n, 43);
        assert_int_equal(failed, 0);
}

/* Rows run twice: the second time from warm caches, with the same outcome. */
static void test_rows_warm_cache(void **state)
{
        (void)state;
        NEED_VECTORS();
        assert_int_equal(run_row(row("sgx-a-ok")), 0);
        assert_int_equal(run_row(row("sgx-a-ok")), 0);
        intel_cache_clear();
        assert_int_equal(run_row(row("tdx-a-ok")), 0);
        assert_int_equal(run_row(row("tdx-a-tcbinfo-tamper")), 0);
        assert_int_equal(run_row(row("tdx-a-ok")), 0);
}

/* Flips every byte of header||body and of the quote signature: each must fail. */
static void sweep(const char *id, size_t sig_offset)
{
        const struct vec_row *r = row(id);
        uint8_t *ev = NULL;
        size_t ev_size = 0, flips = 0;
        struct attest_collateral coll;
        struct intel_quote q;

        assert_true(vec_load_case(r, &ev, &ev_size, &coll));
        assert_true(cf_ok(intel_quote_parse(cf_slice_make(ev, ev_size), &q)));
        assert_int_equal(q.signed_region.size, sig_offset - 4);
        for (size_t i = 0; i < sig_offset + 64; i++) {
                struct attest_result res;
                cf_status s;
                if (i >= sig_offset - 4 && i < sig_offset) {
                        continue; /* the signature data length: covered by the siglen row */
                }
                ev[i] ^= 0xff;
                s = run(cf_slice_make(ev, ev_size), &coll, r->verify_at, &res);
                if (cf_ok(s) || res.valid) {
                        fail_msg("%s: flip at offset %zu verified", id, i);
                }
                attest_result_done(&res);
                ev[i] ^= 0xff;
                flips++;
        }
        print_message("%s: %zu flips, all rejected\n", id, flips);
        attest_collateral_done(&coll);
        free(ev);
}

static void test_flip_sgx(void **state)
{
        (void)state;
        NEED_VECTORS();
        sweep("sgx-a-ok", 436);
}

static void test_flip_tdx(void **state)
{
        (void)state;
        NEED_VECTORS();
        sweep("tdx-a-ok", 636);
}

static void test_flip_tdx_v5(void **state)
{
        (void)state;
        NEED_VECTORS();
        sweep("tdx-v5-sample-gotdx-tcbinfo", 54 + 648 + 4);
}

static void truncate_all(const char *file)
{
        uint8_t *ev = NULL;
        size_t n = 0;
        struct intel_quote q;
        struct attest_collateral none;

        attest_collateral_init(&none);
        assert_true(vec_load_file(file, &ev, &n));
        assert_true(cf_ok(intel_quote_parse(cf_slice_make(ev, n), &q)));
        for (size_t len = 0; len < q.size; len++) {
                struct attest_result res;
                uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
                struct intel_quote t;
                cf_status s;
                assert_non_null(copy);
                memcpy(copy, ev, len);
                if (cf_ok(intel_quote_parse(cf_slice_make(copy, len), &t))) {
                        fail_msg("%s truncated to %zu parsed", file, len);
                }
                if (len % 97 == 0) {
                        s = run(cf_slice_make(copy, len), &none, 0, &res);
                        assert_false(cf_ok(s));
                        assert_false(res.valid);
                        attest_result_done(&res);
                }
                free(copy);
        }
        free(ev);
}

static void test_truncation(void **state)
{
        (void)state;
        NEED_VECTORS();
        truncate_all("sgx/dcapqvl_sgx_quote_v3.bin");
        truncate_all("tdx/dcapqvl_tdx_quote_v4.bin");
        truncate_all("tdx/gotdxguest_quote_v5_sample.dat");
}

static cf_status parse_edited(const char *file, size_t off, const uint8_t *bytes, size_t n)
{
        uint8_t *ev = NULL;
        size_t size = 0;
        struct intel_quote q;
        cf_status s;

        assert_true(vec_load_file(file, &ev, &size));
        memcpy(ev + off, bytes, n);
        s = intel_quote_parse(cf_slice_make(ev, size), &q);
        free(ev);
        return s;
}

static void test_unknown_versions_and_types(void **state)
{
        static const uint8_t v2[2] = {2, 0}, v6[2] = {6, 0}, k3[2] = {3, 0}, k0[2] = {0, 0};
        static const uint8_t tee82[4] = {0x82, 0, 0, 0}, tee_sgx[4] = {0, 0, 0, 0};
        static const uint8_t bt4[2] = {4, 0}, bt1[2] = {1, 0}, v3[2] = {3, 0};

        (void)state;
        NEED_VECTORS();
        assert_int_equal(parse_edited("sgx/dcapqvl_sgx_quote_v3.bin", 0, v2, 2).code, CF_E_VERSION);
        assert_int_equal(parse_edited("sgx/dcapqvl_sgx_quote_v3.bin", 0, v6, 2).code, CF_E_VERSION);
        assert_int_equal(parse_edited("sgx/dcapqvl_sgx_quote_v3.bin", 2, k3, 2).code,
                         CF_E_UNSUPPORTED);
        assert_int_equal(parse_edited("sgx/dcapqvl_sgx_quote_v3.bin", 2, k0, 2).code,
                         CF_E_UNSUPPORTED);
        assert_int_equal(parse_edited("tdx/dcapqvl_tdx_quote_v4.bin", 4, tee82, 4).code,
                         CF_E_UNSUPPORTED);
        assert_int_equal(parse_edited("tdx/dcapqvl_tdx_quote_v4.bin", 0, v3, 2).code,
                         CF_E_UNSUPPORTED);
        /* v4 with the SGX TEE type reads a 384-byte body: the rest no longer fits. */
        assert_false(cf_ok(parse_edited("tdx/dcapqvl_tdx_quote_v4.bin", 4, tee_sgx, 4)));
        assert_int_equal(parse_edited("tdx/gotdxguest_quote_v5_sample.dat", 48, bt4, 2).code,
                         CF_E_VERSION);
        assert_int_equal(parse_edited("tdx/gotdxguest_quote_v5_sample.dat", 48, bt1, 2).code,
                         CF_E_MALFORMED);
}

static void test_parse_fields(void **state)
{
        uint8_t *ev = NULL;
        size_t n = 0;
        struct intel_quote q;
        char hex[129];

        (void)state;
        NEED_VECTORS();
        assert_true(vec_load_file("sgx/dcapqvl_sgx_quote_v3.bin", &ev, &n));
        assert_true(cf_ok(intel_quote_parse(cf_slice_make(ev, n), &q)));
        assert_int_equal(q.version, 3);
        assert_int_equal(q.body_type, INTEL_BODY_SGX);
        assert_int_equal(q.trailing, 0);
        cf_hex_encode(q.sgx.mrenclave, 32, hex, sizeof(hex));
        assert_string_equal(hex,
                            "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
        cf_hex_encode(q.sgx.mrsigner, 32, hex, sizeof(hex));
        assert_string_equal(hex,
                            "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6");
        assert_memory_equal(q.sgx.report_data, "Hello, world!", 13);
        assert_int_equal(q.qe_report.isvsvn, 10);
        free(ev);
        assert_true(vec_load_file("tdx/dcapqvl_tdx_quote_v4.bin", &ev, &n));
        assert_true(cf_ok(intel_quote_parse(cf_slice_make(ev, n), &q)));
        assert_int_equal(q.trailing, 70);
        assert_int_equal(q.td.tee_tcb_svn[0], 6);
        assert_int_equal(q.td.tee_tcb_svn[1], 1);
        cf_hex_encode(q.td.mrtd, 48, hex, sizeof(hex));
        assert_string_equal(hex, "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
                                 "de03ae6dc5f87f27428b2538873118b7");
        free(ev);
        assert_true(vec_load_file("tdx/gotdxguest_tdx_prod_quote_SPR_E4_v4.dat", &ev, &n));
        assert_true(cf_ok(intel_quote_parse(cf_slice_make(ev, n), &q)));
        assert_int_equal(q.trailing, 39);
        free(ev);
}

/* Runs sgx-a-ok with its collateral replaced by build(), expecting the same result. */
static void expect_sgx_a(struct attest_collateral *coll, const char *what)
{
        const struct vec_row *r = row("sgx-a-ok");
        uint8_t *ev = NULL;
        size_t n = 0;
        struct attest_result res;
        cf_status s;

        assert_true(vec_load_file(r->evidence_file, &ev, &n));
        s = run(cf_slice_make(ev, n), coll, r->verify_at, &res);
        if (!cf_ok(s) || !res.valid ||
            strcmp(res.tcb_status, "ConfigurationAndSWHardeningNeeded") != 0 ||
            !advisories_equal(res.advisories, "INTEL-SA-00289,INTEL-SA-00615")) {
                print_message("%s: status %s tcb [%s]\n", what, cf_status_name(s), res.tcb_status);
                dump_checks(&res);
                fail();
        }
        attest_result_done(&res);
        free(ev);
}

static void add_file(struct attest_collateral *c, const char *file)
{
        uint8_t *d = NULL;
        size_t n = 0;

        assert_true(vec_load_file(file, &d, &n));
        assert_true(cf_ok(attest_collateral_add(c, file, d, n)));
        free(d);
}

static void add_text(struct attest_collateral *c, const char *name, struct cf_buf *b)
{
        assert_true(cf_ok(attest_collateral_add(c, name, b->ptr, b->size)));
        cf_buf_reset(b);
}

/* Appends the file's text without trailing whitespace. */
static void append_file(struct cf_buf *b, const char *file)
{
        uint8_t *d = NULL;
        size_t n = 0;

        assert_true(vec_load_file(file, &d, &n));
        while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) {
                n--;
        }
        assert_true(cf_ok(cf_buf_append(b, d, n)));
        free(d);
}

static void test_collateral_forms(void **state)
{
        struct attest_collateral c;
        struct cf_buf b;

        (void)state;
        NEED_VECTORS();
        cf_buf_init(&b, 1 << 20, false);

        /* dcap-qvl bundle (signed bodies as strings) + root. */
        attest_collateral_init(&c);
        add_file(&c, "sgx/dcapqvl_sgx_quote_collateral.json");
        add_file(&c, "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer");
        expect_sgx_a(&c, "bundle");
        attest_collateral_done(&c);

        /* PCS responses {"tcbInfo":<body>,"signature":..} and a bundle with embedded objects,
         * both built from the split files; CRLs as PEM. */
        attest_collateral_init(&c);
        assert_true(cf_ok(cf_buf_append_str(&b, "{\"tcbInfo\":")));
        append_file(&b, "sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json");
        assert_true(cf_ok(cf_buf_append_str(&b, ", \"signature\" : \"")));
        append_file(&b, "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex");
        assert_true(cf_ok(cf_buf_append_str(&b, "\"}\n")));
        add_text(&c, "pcs-tcbinfo.json", &b);
        assert_true(
            cf_ok(cf_buf_append_str(&b, "{\"other\":[1,{\"a\":\"}\\\"\"}],\"qe_identity\":")));
        append_file(&b, "sgx/dcapqvl_sgx_coll.qe_identity.signed_body.json");
        assert_true(cf_ok(cf_buf_append_str(&b, ",\"qe_identity_signature\":\"")));
        append_file(&b, "sgx/dcapqvl_sgx_coll.qe_identity.sig_rs.hex");
        assert_true(cf_ok(cf_buf_append_str(&b, "\"}")));
        add_text(&c, "embedded-bundle.json", &b);
        add_file(&c, "sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem");
        {
                static const char *const crls[] = {"sgx/dcapqvl_sgx_coll.pck_crl.der",
                                                   "sgx/dcapqvl_sgx_coll.root_ca_crl.der"};
                for (size_t i = 0; i < 2; i++) {
                        uint8_t *d = NULL;
                        size_t n = 0;
                        assert_true(vec_load_file(crls[i], &d, &n));
                        assert_true(cf_ok(cf_buf_append_str(&b, "-----BEGIN X509 CRL-----\n")));
                        assert_true(cf_ok(cf_base64_encode_buf(d, n, &b)));
                        assert_true(cf_ok(cf_buf_append_str(&b, "\n-----END X509 CRL-----\n")));
                        add_text(&c, crls[i], &b);
                        free(d);
                }
        }
        add_file(&c, "tdx/gotdxguest_intel_sgx_root_ca.pem");
        /* Unrelated collateral in the same folder is ignored. */
        add_file(&c, "snp/virteesev_ark_milan.pem");
        expect_sgx_a(&c, "pcs+embedded+pem crls");
        attest_collateral_done(&c);
        cf_buf_done(&b);
}

/* A pretty-printed copy of a signed body no longer verifies (G6), and a broken CRL is an
 * error, never a skipped revocation check. */
static void test_collateral_negative(void **state)
{
        const struct vec_row *r;
        uint8_t *ev = NULL;
        size_t n = 0;
        struct attest_collateral c;
        struct attest_result res;
        struct cf_buf b;

        (void)state;
        NEED_VECTORS();
        r = row("sgx-a-ok");
        assert_true(vec_load_file(r->evidence_file, &ev, &n));
        cf_buf_init(&b, 1 << 20, false);
        attest_collateral_init(&c);
        assert_true(cf_ok(cf_buf_append_str(&b, "{\"tcbInfo\": ")));
        append_file(&b, "sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json");
        /* Insert a space after the first colon inside the body. */
        {
                uint8_t *p = memchr(b.ptr + 12, ':', b.size - 12);
                size_t at = (size_t)(p - b.ptr) + 1;
                assert_true(cf_ok(cf_buf_append(&b, " ", 1)));
                memmove(b.ptr + at + 1, b.ptr + at, b.size - at - 1);
                b.ptr[at] = ' ';
        }
        assert_true(cf_ok(cf_buf_append_str(&b, ",\"signature\":\"")));
        append_file(&b, "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex");
        assert_true(cf_ok(cf_buf_append_str(&b, "\"}")));
        add_text(&c, "reformatted.json", &b);
        add_file(&c, "sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem");
        assert_int_equal(run(cf_slice_make(ev, n), &c, r->verify_at, &res).code, CF_E_SIG_INVALID);
        assert_false(res.valid);
        attest_result_done(&res);
        attest_collateral_done(&c);

        attest_collateral_init(&c);
        {
                uint8_t *d = NULL;
                size_t dn = 0;
                assert_true(vec_load_file("sgx/dcapqvl_sgx_coll.pck_crl.der", &d, &dn));
                d[1] ^= 0x01; /* outer length */
                assert_true(cf_ok(attest_collateral_add(&c, "bad.crl", d, dn)));
                free(d);
        }
        assert_false(cf_ok(run(cf_slice_make(ev, n), &c, r->verify_at, &res)));
        assert_false(res.valid);
        attest_result_done(&res);
        attest_collateral_done(&c);
        cf_buf_done(&b);
        free(ev);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_rows),
            cmocka_unit_test(test_rows_warm_cache),
            cmocka_unit_test(test_flip_sgx),
            cmocka_unit_test(test_flip_tdx),
            cmocka_unit_test(test_flip_tdx_v5),
            cmocka_unit_test(test_truncation),
            cmocka_unit_test(test_unknown_versions_and_types),
            cmocka_unit_test(test_parse_fields),
            cmocka_unit_test(test_collateral_forms),
            cmocka_unit_test(test_collateral_negative),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
