/* SEV-SNP verification coordinator: parse, report field rules, certificate chain (cached),
 * validity windows, report signature, VCEK/VLEK bindings, HCL binding, claims. Every decision
 * is a check in the result; docs/attestation-snp.md lists them in this order. */
#include "attest/snp/snp_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "base/codec.h"

#define POLICY_RESERVED_ONE (UINT64_C(1) << 17)
#define POLICY_KNOWN_MASK   ((UINT64_C(1) << 26) - 1) /* bits 25:0 are defined */
#define KEY_INFO_AUTHOR_KEY 0x1u
#define KEY_INFO_MASK_CHIP  0x2u
#define KEY_INFO_KEY_SHIFT  2
#define KEY_INFO_KNOWN_MASK 0x1fu
#define SNP_VMPL_MAX        3u

/* PLATFORM_INFO bits defined by each report version: v2 SMT_EN, TSME_EN, ECC_EN, RAPL_DIS,
 * CIPHERTEXT_HIDING_EN; v3 adds ALIAS_CHECK_COMPLETE; v5 adds SEV-TIO. */
static uint64_t platform_info_mask(uint32_t version)
{
        return version >= 5 ? 0x7f : version >= 3 ? 0x3f : 0x1f;
}

static void check_fields(const struct snp_report *r, struct snp_ck *ck)
{
        char v[64];
        uint32_t key = (r->key_info >> KEY_INFO_KEY_SHIFT) & 7u;
        bool pad_zero = true;

        snprintf(v, sizeof(v), "%" PRIu32, r->version);
        snp_check(ck, "snp.report.version", true, CF_E_OK, "2, 3 or 5", v);
        snprintf(v, sizeof(v), "%" PRIu32, r->signature_algo);
        snp_check(ck, "snp.report.signature_algo", r->signature_algo == 1, CF_E_UNSUPPORTED,
                  "1 (ECDSA P-384 with SHA-384)", v);
        snprintf(v, sizeof(v), "non-zero byte at 0x%zx", r->reserved_nonzero_at);
        snp_check(ck, "snp.report.reserved", r->reserved_nonzero_at == 0, CF_E_MALFORMED, "zero",
                  r->reserved_nonzero_at == 0 ? "zero" : v);
        snprintf(v, sizeof(v), "0x%016" PRIx64, r->policy);
        snp_check(ck, "snp.report.policy.reserved",
                  (r->policy & POLICY_RESERVED_ONE) != 0 && (r->policy & ~POLICY_KNOWN_MASK) == 0,
                  CF_E_MALFORMED, "bit 17 set, bits 63:26 zero", v);
        snprintf(v, sizeof(v), "0x%016" PRIx64, r->platform_info);
        snp_check(ck, "snp.report.platform_info.reserved",
                  (r->platform_info & ~platform_info_mask(r->version)) == 0, CF_E_MALFORMED,
                  "undefined bits zero", v);
        snprintf(v, sizeof(v), "0x%08" PRIx32 " (signing key %" PRIu32 ")", r->key_info, key);
        snp_check(ck, "snp.report.key_info",
                  (r->key_info & ~KEY_INFO_KNOWN_MASK) == 0 &&
                      (r->key_info & KEY_INFO_MASK_CHIP) == 0 &&
                      (key == SNP_KEY_VCEK || key == SNP_KEY_VLEK),
                  CF_E_MALFORMED, "signed by VCEK (0) or VLEK (1), chip key not masked", v);
        snprintf(v, sizeof(v), "%" PRIu32, r->vmpl);
        snp_check(ck, "snp.report.vmpl", r->vmpl <= SNP_VMPL_MAX, CF_E_MALFORMED, "0..3", v);
        for (size_t i = SNP_SIG_SIGNIFICANT; i < SNP_SIG_COMPONENT; i++) {
                pad_zero &= r->sig_r[i] == 0 && r->sig_s[i] == 0;
        }
        snp_check(ck, "snp.report.signature.padding", pad_zero, CF_E_MALFORMED,
                  "bytes 48..71 of R and S zero", pad_zero ? "zero" : "non-zero");
}

static bool verify_report_sig(EVP_PKEY *key, const struct snp_report *r)
{
        BIGNUM *br = BN_lebin2bn(r->sig_r, SNP_SIG_SIGNIFICANT, NULL);
        BIGNUM *bs = BN_lebin2bn(r->sig_s, SNP_SIG_SIGNIFICANT, NULL);
        ECDSA_SIG *sig = ECDSA_SIG_new();
        unsigned char *der = NULL;
        EVP_MD_CTX *ctx;
        int der_len;
        bool ok;

        if (br == NULL || bs == NULL || sig == NULL || ECDSA_SIG_set0(sig, br, bs) != 1) {
                BN_free(br);
                BN_free(bs);
                ECDSA_SIG_free(sig);
                return false;
        }
        der_len = i2d_ECDSA_SIG(sig, &der);
        ECDSA_SIG_free(sig);
        /* A fresh context per verify: a context shared across key types once made valid P-384
         * signatures fail (issue 3 §7). */
        ctx = EVP_MD_CTX_new();
        ok = der_len > 0 && ctx != NULL &&
             EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, key) == 1 &&
             EVP_DigestVerify(ctx, der, (size_t)der_len, r->signed_region.ptr,
                              r->signed_region.size) == 1;
        EVP_MD_CTX_free(ctx);
        OPENSSL_free(der);
        ERR_clear_error();
        return ok;
}

/* Appends a chain's checks; err is the status of its first failure (CF_OK if none). */
static void append_checks(const struct attest_checks *from, cf_status err, struct snp_ck *ck)
{
        for (size_t i = 0; i < from->n; i++) {
                const struct attest_check *k = &from->items[i];
                cf_status s = attest_checks_add(ck->list, k->name, k->ok, k->expected, k->actual);
                if (!cf_ok(s) && cf_ok(ck->err)) {
                        ck->err = s;
                }
        }
        if (!cf_ok(err) && cf_ok(ck->err)) {
                ck->err = err;
        }
}

/* The cache key covers every input of chain building: the collateral bytes (each with its
 * size, so blob boundaries count), the leaf kind and the chip id used to pick a leaf. */
static CF_FN chain_key(const struct attest_collateral *coll, enum snp_role role,
                       const uint8_t chip_id[static SNP_CHIP_ID_SIZE],
                       uint8_t out[static CF_SHA256_SIZE])
{
        struct cf_slice parts[2 * ATTEST_COLLATERAL_MAX_FILES + 2];
        uint8_t sizes[ATTEST_COLLATERAL_MAX_FILES][8];
        uint8_t role_byte = (uint8_t)role;
        size_t n = 0;

        ENSURE(coll->n <= ATTEST_COLLATERAL_MAX_FILES, CF_E_LIMIT);
        for (size_t i = 0; i < coll->n; i++) {
                uint64_t sz = coll->items[i].size;
                for (size_t b = 0; b < 8; b++) {
                        sizes[i][b] = (uint8_t)(sz >> (8 * b));
                }
                parts[n++] = cf_slice_make(sizes[i], 8);
                parts[n++] = cf_slice_make(coll->items[i].data, coll->items[i].size);
        }
        parts[n++] = cf_slice_make(&role_byte, 1);
        parts[n++] = cf_slice_make(chip_id, SNP_CHIP_ID_SIZE);
        return cf_sha256(parts, n, out);
}

static CF_FN load_pool(struct snp_pool *pool, const struct attest_collateral *coll,
                       struct snp_ck *ck)
{
        for (size_t i = 0; i < coll->n; i++) {
                size_t first;
                cf_status s = snp_pool_add_blob(
                    pool, coll->items[i].name,
                    cf_slice_make(coll->items[i].data, coll->items[i].size), ck, &first);
                if (!cf_ok(s)) {
                        snp_check(ck, "snp.collateral.load", false, CF_E_COLLATERAL,
                                  "at most 32 certificates", cf_status_name(s));
                        return s;
                }
        }
        return CF_OK;
}

/* Fills chain (cached or built) and appends its checks to ck. */
static CF_FN get_chain(const struct attest_collateral *coll, enum snp_role role,
                       const uint8_t chip_id[static SNP_CHIP_ID_SIZE], struct snp_chain *chain,
                       struct snp_ck *ck)
{
        uint8_t key[CF_SHA256_SIZE];
        struct snp_pool pool;
        struct snp_ck load_ck = {&chain->checks, CF_OK};
        cf_status err = CF_OK, s;

        TRY(chain_key(coll, role, chip_id, key));
        if (snp_cache_get(key, chain)) {
                append_checks(&chain->checks, CF_OK, ck);
                return CF_OK;
        }
        snp_pool_init(&pool);
        s = load_pool(&pool, coll, &load_ck);
        if (cf_ok(s)) {
                s = snp_chain_for_report(&pool, role, chip_id, chain, &err);
        }
        snp_pool_done(&pool);
        TRY(s);
        append_checks(&chain->checks, cf_ok(err) ? load_ck.err : err, ck);
        chain->ok = chain->ok && cf_ok(load_ck.err);
        snp_cache_put(key, chain);
        return CF_OK;
}

static void check_tcb_component(struct snp_ck *ck, const char *label, const char *what, bool has,
                                uint8_t cert_value, uint8_t report_value)
{
        char name[64], e[24], a[8];

        snprintf(name, sizeof(name), "snp.%s.tcb.%s", label, what);
        snprintf(e, sizeof(e), has ? "%u" : "extension missing", cert_value);
        snprintf(a, sizeof(a), "%u", report_value);
        snp_check(ck, name, has && cert_value == report_value, CF_E_COLLATERAL, e, a);
}

static bool all_zero(const uint8_t *p, size_t n)
{
        uint8_t acc = 0;

        for (size_t i = 0; i < n; i++) {
                acc |= p[i];
        }
        return acc == 0;
}

static void check_hwid(const struct snp_report *r, const struct snp_chain *c, struct snp_ck *ck)
{
        size_t want = c->product == SNP_PRODUCT_TURIN ? SNP_TURIN_CHIP_ID : SNP_CHIP_ID_SIZE;
        char e[2 * SNP_CHIP_ID_SIZE + 1], a[2 * SNP_CHIP_ID_SIZE + 1];
        bool ok;

        cf_hex_encode(c->leaf.hwid, c->leaf.hwid_size, e, sizeof(e));
        if (all_zero(r->chip_id, sizeof(r->chip_id))) {
                /* MASK_CHIP_ID: the VCEK signature still binds the report to this chip. */
                snp_check(ck, "snp.vcek.hwid", c->leaf.hwid_size == want, CF_E_COLLATERAL, e,
                          "masked (all zero)");
                return;
        }
        cf_hex_encode(r->chip_id, want, a, sizeof(a));
        ok = c->leaf.hwid_size == want && memcmp(c->leaf.hwid, r->chip_id, want) == 0 &&
             all_zero(r->chip_id + want, sizeof(r->chip_id) - want);
        snp_check(ck, "snp.vcek.hwid", ok, CF_E_COLLATERAL, e, a);
}

static void check_stepping(const struct snp_report *r, const struct snp_chain *c,
                           const struct snp_options *opt, struct snp_ck *ck)
{
        char name[48], e[16], a[64];
        int actual = c->leaf.stepping;

        if (opt->expected_stepping < 0) {
                return;
        }
        if (actual < 0 && r->version >= 3) {
                actual = r->cpuid_stepping;
        }
        snprintf(name, sizeof(name), "snp.%s.stepping", snp_role_label(c->target_role));
        snprintf(e, sizeof(e), "%d", opt->expected_stepping);
        if (actual < 0) {
                snprintf(a, sizeof(a), "unknown (productName %s)", c->leaf.product_name);
        } else {
                snprintf(a, sizeof(a), "%d (productName %s)", actual, c->leaf.product_name);
        }
        snp_check(ck, name, actual == opt->expected_stepping, CF_E_COLLATERAL, e, a);
}

static void check_bindings(const struct snp_report *r, const struct snp_chain *c,
                           const struct snp_options *opt, struct snp_ck *ck)
{
        const char *label = snp_role_label(c->target_role);
        struct snp_tcb t;

        if (r->version >= 3) {
                enum snp_product p = snp_product_from_cpuid(r->cpuid_family, r->cpuid_model);
                char a[64];
                snprintf(a, sizeof(a), "%s (family 0x%02x model 0x%02x)", snp_product_name(p),
                         r->cpuid_family, r->cpuid_model);
                snp_check(ck, "snp.report.product", p == c->product, CF_E_COLLATERAL,
                          snp_product_name(c->product), a);
        }
        snp_tcb_decode(r->reported_tcb, c->product, &t);
        snp_check(ck, "snp.report.tcb.reserved", t.reserved_zero, CF_E_MALFORMED, "zero",
                  t.reserved_zero ? "zero" : "non-zero");
        if (c->product == SNP_PRODUCT_TURIN) {
                check_tcb_component(ck, label, "fmc", c->leaf.has_fmc, c->leaf.fmc, t.fmc);
        }
        check_tcb_component(ck, label, "bootloader", c->leaf.has_bl, c->leaf.bl, t.bootloader);
        check_tcb_component(ck, label, "tee", c->leaf.has_tee, c->leaf.tee, t.tee);
        check_tcb_component(ck, label, "snp", c->leaf.has_snp, c->leaf.snp, t.snp);
        check_tcb_component(ck, label, "microcode", c->leaf.has_ucode, c->leaf.ucode, t.microcode);
        if (c->target_role == SNP_ROLE_VCEK) {
                check_hwid(r, c, ck);
        }
        check_stepping(r, c, opt, ck);
}

static void check_hcl(const struct snp_report *r, struct snp_ck *ck)
{
        uint8_t d[CF_SHA256_SIZE];
        char e[2 * CF_SHA256_SIZE + 1], a[2 * CF_SHA256_SIZE + 1];
        bool ok = cf_ok(cf_sha256(&r->hcl_var_data, 1, d));

        cf_hex_encode(d, sizeof(d), e, sizeof(e));
        cf_hex_encode(r->report_data, CF_SHA256_SIZE, a, sizeof(a));
        ok = ok && memcmp(d, r->report_data, sizeof(d)) == 0 &&
             all_zero(r->report_data + CF_SHA256_SIZE, sizeof(r->report_data) - CF_SHA256_SIZE);
        snp_check(ck, "snp.hcl.binding", ok, CF_E_BINDING, e, a);
}

/* ---- claims ---- */

static CF_FN set(json_t *o, const char *k, json_t *v)
{
        ENSURE(v != NULL, CF_E_NOMEM);
        ENSURE(json_object_set_new(o, k, v) == 0, CF_E_NOMEM);
        return CF_OK;
}

static CF_FN set_hex(json_t *o, const char *k, const uint8_t *p, size_t n)
{
        char buf[2 * SNP_CHIP_ID_SIZE + 1];

        ENSURE(n <= SNP_CHIP_ID_SIZE, CF_E_INTERNAL);
        cf_hex_encode(p, n, buf, sizeof(buf));
        return set(o, k, json_string(buf));
}

static CF_FN set_tcb(json_t *o, const char *k, const uint8_t raw[static 8], enum snp_product p)
{
        struct snp_tcb t;
        json_t *j;

        snp_tcb_decode(raw, p, &t);
        j = json_pack("{s:i, s:i, s:i, s:i}", "bootloader", t.bootloader, "tee", t.tee, "snp",
                      t.snp, "microcode", t.microcode);
        TRY(set(o, k, j)); /* o owns j from here */
        if (t.has_fmc) {
                TRY(set(j, "fmc", json_integer(t.fmc)));
        }
        return set_hex(j, "raw", raw, 8);
}

static CF_FN set_policy(json_t *o, uint64_t pol)
{
        char raw[24];

        snprintf(raw, sizeof(raw), "0x%016" PRIx64, pol);
        return set(
            o, "policy",
            json_pack("{s:s, s:i, s:i, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "raw", raw,
                      "abi_minor", (int)(pol & 0xff), "abi_major", (int)((pol >> 8) & 0xff), "smt",
                      (int)((pol >> 16) & 1), "migration_agent", (int)((pol >> 18) & 1), "debug",
                      (int)((pol >> 19) & 1), "single_socket", (int)((pol >> 20) & 1), "cxl_allow",
                      (int)((pol >> 21) & 1), "mem_aes_256_xts", (int)((pol >> 22) & 1), "rapl_dis",
                      (int)((pol >> 23) & 1), "ciphertext_hiding", (int)((pol >> 24) & 1),
                      "page_swap_disable", (int)((pol >> 25) & 1)));
}

static CF_FN set_fw(json_t *o, const char *k, uint8_t major, uint8_t minor, uint8_t build)
{
        char v[24];

        snprintf(v, sizeof(v), "%u.%u.%u", major, minor, build);
        return set(o, k, json_string(v));
}

static CF_FN report_claims(json_t *o, const struct snp_report *r, enum snp_product p)
{
        uint32_t key = (r->key_info >> KEY_INFO_KEY_SHIFT) & 7u;
        size_t chip_size = p == SNP_PRODUCT_TURIN ? SNP_TURIN_CHIP_ID : SNP_CHIP_ID_SIZE;

        TRY(set(o, "version", json_integer(r->version)));
        TRY(set(o, "guest_svn", json_integer(r->guest_svn)));
        TRY(set_policy(o, r->policy));
        TRY(set_hex(o, "family_id", r->family_id, sizeof(r->family_id)));
        TRY(set_hex(o, "image_id", r->image_id, sizeof(r->image_id)));
        TRY(set(o, "vmpl", json_integer(r->vmpl)));
        TRY(set(o, "platform_info", json_integer((json_int_t)(r->platform_info & INT64_MAX))));
        TRY(set(o, "signing_key",
                json_string(key == SNP_KEY_VCEK   ? "vcek"
                            : key == SNP_KEY_VLEK ? "vlek"
                                                  : "none")));
        TRY(set(o, "author_key_en", json_boolean(r->key_info & KEY_INFO_AUTHOR_KEY)));
        TRY(set_hex(o, "report_data", r->report_data, sizeof(r->report_data)));
        TRY(set_hex(o, "measurement", r->measurement, sizeof(r->measurement)));
        TRY(set_hex(o, "host_data", r->host_data, sizeof(r->host_data)));
        TRY(set_hex(o, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest)));
        TRY(set_hex(o, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest)));
        TRY(set_hex(o, "report_id", r->report_id, sizeof(r->report_id)));
        TRY(set_hex(o, "report_id_ma", r->report_id_ma, sizeof(r->report_id_ma)));
        TRY(set_hex(o, "chip_id", r->chip_id, chip_size));
        TRY(set_tcb(o, "reported_tcb", r->reported_tcb, p));
        TRY(set_tcb(o, "current_tcb", r->current_tcb, p));
        TRY(set_tcb(o, "committed_tcb", r->committed_tcb, p));
        TRY(set_tcb(o, "launch_tcb", r->launch_tcb, p));
        TRY(set_fw(o, "firmware_current", r->current_major, r->current_minor, r->current_build));
        TRY(set_fw(o, "firmware_committed", r->committed_major, r->committed_minor,
                   r->committed_build));
        TRY(set(o, "product", json_string(snp_product_name(p))));
        if (r->version >= 3) {
                TRY(set(o, "cpuid",
                        json_pack("{s:i, s:i, s:i}", "family", r->cpuid_family, "model",
                                  r->cpuid_model, "stepping", r->cpuid_stepping)));
        }
        TRY(set(o, "azure_hcl", json_boolean(r->hcl)));
        return CF_OK;
}

static CF_FN signer_claims(json_t *o, const struct snp_chain *c)
{
        json_t *s = json_object();

        ENSURE(s != NULL, CF_E_NOMEM);
        TRY(set(o, "signer", s)); /* o owns s from here */
        TRY(set(s, "role", json_string(snp_role_label(c->target_role))));
        TRY(set(s, "product", json_string(snp_product_name(c->product))));
        if (c->target_role != SNP_ROLE_VCEK && c->target_role != SNP_ROLE_VLEK) {
                return CF_OK;
        }
        TRY(set(s, "product_name", json_string(c->leaf.product_name)));
        TRY(set(s, "struct_version", json_integer(c->leaf.struct_version)));
        TRY(set(s, "tcb",
                json_pack("{s:i, s:i, s:i, s:i}", "bootloader", c->leaf.bl, "tee", c->leaf.tee,
                          "snp", c->leaf.snp, "microcode", c->leaf.ucode)));
        if (c->leaf.has_fmc) {
                TRY(set(json_object_get(s, "tcb"), "fmc", json_integer(c->leaf.fmc)));
        }
        if (c->leaf.hwid_size > 0) {
                TRY(set_hex(s, "hwid", c->leaf.hwid, c->leaf.hwid_size));
        }
        if (c->leaf.csp_id[0] != '\0') {
                TRY(set(s, "csp_id", json_string(c->leaf.csp_id)));
        }
        return CF_OK;
}

static CF_FN window_claims(json_t *o, const struct snp_chain *c)
{
        for (size_t i = 0; i < c->n_win; i++) {
                if (strcmp(c->win[i].label, snp_role_label(c->target_role)) == 0) {
                        char nb[32], na[32];
                        json_t *s = json_object_get(o, "signer");
                        cf_format_rfc3339(c->win[i].not_before, nb, sizeof(nb));
                        cf_format_rfc3339(c->win[i].not_after, na, sizeof(na));
                        ENSURE(s != NULL, CF_E_INTERNAL);
                        TRY(set(s, "not_before", json_string(nb)));
                        TRY(set(s, "not_after", json_string(na)));
                }
        }
        return CF_OK;
}

/* ---- coordinators ---- */

static cf_status finish(struct attest_result *res, struct snp_ck *ck)
{
        res->valid = cf_ok(ck->err);
        return ck->err;
}

static CF_FN verify_parsed(const struct snp_report *r, const struct attest_collateral *coll,
                           const struct snp_options *opt, struct attest_result *res,
                           struct snp_ck *ck)
{
        uint32_t key = (r->key_info >> KEY_INFO_KEY_SHIFT) & 7u;
        enum snp_role role = key == SNP_KEY_VLEK ? SNP_ROLE_VLEK : SNP_ROLE_VCEK;
        struct snp_chain chain;
        enum snp_product p;
        cf_status s;

        check_fields(r, ck);
        snp_chain_init(&chain);
        s = get_chain(coll, role, r->chip_id, &chain, ck);
        if (!cf_ok(s)) {
                snp_chain_done(&chain);
                return s;
        }
        snp_chain_check_windows(&chain, opt->now, ck);
        if (chain.leaf_key != NULL) {
                bool sig_ok = verify_report_sig(chain.leaf_key, r);
                snp_check(ck, "snp.report.signature", sig_ok, CF_E_SIG_INVALID,
                          "ECDSA P-384 signature by the VCEK/VLEK", sig_ok ? "valid" : "invalid");
                check_bindings(r, &chain, opt, ck);
        } else {
                snp_check(ck, "snp.report.signature", false, CF_E_SIG_INVALID,
                          "ECDSA P-384 signature by the VCEK/VLEK", "not verified: no signing key");
        }
        if (r->hcl) {
                check_hcl(r, ck);
        }
        p = chain.product != SNP_PRODUCT_UNKNOWN
                ? chain.product
                : snp_product_from_cpuid(r->cpuid_family, r->cpuid_model);
        s = report_claims(res->claims, r, p);
        if (cf_ok(s) && chain.leaf_key != NULL) {
                s = signer_claims(res->claims, &chain);
                s = cf_ok(s) ? window_claims(res->claims, &chain) : s;
        }
        snp_chain_done(&chain);
        return s;
}

cf_status snp_verify(struct cf_slice evidence, const struct attest_collateral *coll,
                     const struct snp_options *opt, struct attest_result *res)
{
        struct snp_report r;
        struct snp_ck ck;
        cf_status s;

        ENSURE(coll != NULL && opt != NULL && res != NULL && res->claims != NULL, CF_E_INVALID_ARG);
        res->valid = false;
        ck = (struct snp_ck){&res->checks, CF_OK};
        s = snp_report_parse(evidence, &r);
        if (!cf_ok(s)) {
                /* Keep the parser's precise code (truncated, trailing, version, ...). */
                snp_check(&ck, "snp.report.parse", false, CF_E_MALFORMED,
                          "ATTESTATION_REPORT v2, v3 or v5, bare or in an Azure HCL report",
                          cf_status_name(s));
                return s;
        }
        snp_check(&ck, "snp.report.parse", true, CF_E_OK,
                  "ATTESTATION_REPORT v2, v3 or v5, bare or in an Azure HCL report",
                  r.hcl ? "Azure HCL report" : "bare report");
        TRY(verify_parsed(&r, coll, opt, res, &ck));
        return finish(res, &ck);
}

cf_status snp_verify_cert(struct cf_slice cert, const struct attest_collateral *coll,
                          const struct snp_options *opt, struct attest_result *res)
{
        struct snp_pool pool;
        struct snp_chain chain;
        struct snp_ck ck;
        size_t target = SIZE_MAX;
        cf_status s, err = CF_OK;

        ENSURE(coll != NULL && opt != NULL && res != NULL && res->claims != NULL, CF_E_INVALID_ARG);
        res->valid = false;
        ck = (struct snp_ck){&res->checks, CF_OK};
        snp_pool_init(&pool);
        snp_chain_init(&chain);
        s = snp_pool_add_blob(&pool, "evidence", cert, &ck, &target);
        if (!cf_ok(s)) {
                snp_check(&ck, "snp.cert.parse", false, CF_E_CERT, "a DER or PEM certificate",
                          cf_status_name(s));
        } else if (target == SIZE_MAX) {
                snp_check(&ck, "snp.cert.parse", false, CF_E_CERT, "a DER or PEM certificate",
                          "none");
        }
        if (cf_ok(s) && target != SIZE_MAX) {
                s = load_pool(&pool, coll, &ck);
        }
        if (cf_ok(s) && target != SIZE_MAX) {
                s = snp_chain_for_target(&pool, target, &chain, &err);
        }
        snp_pool_done(&pool);
        if (cf_ok(s) && target != SIZE_MAX) {
                append_checks(&chain.checks, err, &ck);
                snp_chain_check_windows(&chain, opt->now, &ck);
                s = signer_claims(res->claims, &chain);
                s = cf_ok(s) ? window_claims(res->claims, &chain) : s;
        }
        snp_chain_done(&chain);
        TRY(s);
        return finish(res, &ck);
}
