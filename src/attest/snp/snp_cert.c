/* AMD KDS certificates: loading, roles, VCEK/VLEK extensions, and the chain
 * VCEK|VLEK -> ASK|ASVK -> ARK (RSASSA-PSS signatures), pinned to the AMD ARKs by the SHA-256
 * of their DER encoding (vectors README §2). */
#include "attest/snp/snp_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/codec.h"

struct snp_pin {
        enum snp_product product;
        uint8_t fp[CF_SHA256_SIZE];
};

/* SHA-256 of the DER ARK certificates as served by AMD KDS (vectors README §2). */
static const struct snp_pin g_pinned_arks[] = {
    {SNP_PRODUCT_MILAN, {0x69, 0xd0, 0x63, 0xb4, 0x53, 0x44, 0xd2, 0x6a, 0x2e, 0x94, 0xe1,
                         0xf4, 0x21, 0x0d, 0xe4, 0x9e, 0xf5, 0x55, 0x30, 0x82, 0x87, 0xd4,
                         0xc1, 0x74, 0x44, 0x5c, 0x95, 0x63, 0x9a, 0x54, 0x0b, 0xcd}},
    {SNP_PRODUCT_GENOA, {0x4c, 0x65, 0x98, 0xd1, 0x9c, 0x18, 0x71, 0x9c, 0x5d, 0xfd, 0x4a,
                         0x7d, 0x33, 0x5f, 0x67, 0x4e, 0x5b, 0xfe, 0x1d, 0x8f, 0x80, 0x0c,
                         0xea, 0x2c, 0xf2, 0x70, 0xc1, 0x0d, 0x10, 0x3d, 0xb2, 0xf1}},
    {SNP_PRODUCT_TURIN, {0x1f, 0x08, 0x41, 0x61, 0xa4, 0x4b, 0xb6, 0xd9, 0x37, 0x78, 0xa9,
                         0x04, 0x87, 0x7d, 0x48, 0x19, 0xca, 0xfa, 0x5d, 0x05, 0xef, 0x41,
                         0x93, 0xb2, 0xde, 0xd9, 0xdd, 0x9c, 0x73, 0xdd, 0x3f, 0x6a}},
};

#define OID_AMD            "1.3.6.1.4.1.3704.1."
#define OID_STRUCT_VERSION OID_AMD "1"
#define OID_PRODUCT_NAME   OID_AMD "2"
#define OID_BL_SPL         OID_AMD "3.1"
#define OID_TEE_SPL        OID_AMD "3.2"
#define OID_SNP_SPL        OID_AMD "3.3"
#define OID_UCODE_SPL      OID_AMD "3.8"
#define OID_FMC_SPL        OID_AMD "3.9"
#define OID_HWID           OID_AMD "4"
#define OID_CSP_ID         OID_AMD "5"

const char *snp_role_label(enum snp_role r)
{
        switch (r) {
        case SNP_ROLE_ARK:
                return "ark";
        case SNP_ROLE_ASK:
                return "ask";
        case SNP_ROLE_ASVK:
                return "asvk";
        case SNP_ROLE_VCEK:
                return "vcek";
        case SNP_ROLE_VLEK:
                return "vlek";
        default:
                return "cert";
        }
}

bool snp_check(struct snp_ck *ck, const char *name, bool ok, enum cf_errcode code,
               const char *expected, const char *actual)
{
        cf_status s = attest_checks_add(ck->list, name, ok, expected, actual);

        if (!cf_ok(s) && cf_ok(ck->err)) {
                ck->err = s;
        }
        if (!ok && cf_ok(ck->err)) {
                ck->err = cf_fail(code);
        }
        return ok;
}

void snp_pool_init(struct snp_pool *p)
{
        memset(p, 0, sizeof(*p));
}

void snp_pool_done(struct snp_pool *p)
{
        for (size_t i = 0; i < p->n; i++) {
                X509_free(p->certs[i].x);
        }
        memset(p, 0, sizeof(*p));
}

static enum snp_product product_from_name(const char *s)
{
        static const enum snp_product all[] = {SNP_PRODUCT_MILAN, SNP_PRODUCT_GENOA,
                                               SNP_PRODUCT_TURIN};

        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                if (strcmp(s, snp_product_name(all[i])) == 0) {
                        return all[i];
                }
        }
        return SNP_PRODUCT_UNKNOWN;
}

/* Copies the first CN of a name; "" when absent or not a plain string. */
static void name_cn(const X509_NAME *nm, char out[static SNP_CN_MAX])
{
        int idx = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
        const ASN1_STRING *s;
        int len;

        out[0] = '\0';
        if (idx < 0) {
                return;
        }
        s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx));
        len = ASN1_STRING_length(s);
        if (len < 0 || !cf_ok(cf_slice_to_cstr(cf_slice_make(ASN1_STRING_get0_data(s), (size_t)len),
                                               out, SNP_CN_MAX))) {
                out[0] = '\0';
        }
}

static void classify(struct snp_cert *c)
{
        c->role = SNP_ROLE_NONE;
        c->product = SNP_PRODUCT_UNKNOWN;
        name_cn(X509_get_subject_name(c->x), c->cn);
        if (strcmp(c->cn, "SEV-VCEK") == 0) {
                c->role = SNP_ROLE_VCEK;
        } else if (strcmp(c->cn, "SEV-VLEK") == 0) {
                c->role = SNP_ROLE_VLEK;
        } else if (strncmp(c->cn, "ARK-", 4) == 0) {
                c->role = SNP_ROLE_ARK;
                c->product = product_from_name(c->cn + 4);
        } else if (strncmp(c->cn, "SEV-VLEK-", 9) == 0) {
                c->role = SNP_ROLE_ASVK;
                c->product = product_from_name(c->cn + 9);
        } else if (strncmp(c->cn, "SEV-", 4) == 0) {
                c->role = SNP_ROLE_ASK;
                c->product = product_from_name(c->cn + 4);
        }
}

/* Takes ownership of x. */
static CF_FN pool_add(struct snp_pool *p, X509 *x, size_t *ret_index)
{
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        uint8_t fp[CF_SHA256_SIZE];
        struct cf_slice part;
        cf_status s;

        if (len <= 0) {
                X509_free(x);
                return cf_fail(CF_E_CERT);
        }
        part = cf_slice_make(der, (size_t)len);
        s = cf_sha256(&part, 1, fp);
        OPENSSL_free(der);
        if (!cf_ok(s)) {
                X509_free(x);
                return s;
        }
        for (size_t i = 0; i < p->n; i++) {
                if (memcmp(p->certs[i].fp, fp, sizeof(fp)) == 0) {
                        X509_free(x); /* the same certificate twice: keep one */
                        *ret_index = i;
                        return CF_OK;
                }
        }
        if (p->n >= SNP_POOL_MAX) {
                X509_free(x);
                return cf_fail(CF_E_LIMIT);
        }
        p->certs[p->n] = (struct snp_cert){.x = x};
        memcpy(p->certs[p->n].fp, fp, sizeof(fp));
        classify(&p->certs[p->n]);
        *ret_index = p->n++;
        return CF_OK;
}

static CF_FN add_pem(struct snp_pool *p, struct cf_slice data, size_t *ret_first)
{
        BIO *bio;
        size_t count = 0;
        cf_status s = CF_OK;

        ENSURE(data.size <= INT32_MAX, CF_E_LIMIT);
        bio = BIO_new_mem_buf(data.ptr, (int)data.size);
        ENSURE(bio != NULL, CF_E_NOMEM);
        for (;;) {
                size_t idx;
                X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
                if (x == NULL) {
                        break; /* end of the text, or a block that is not a certificate */
                }
                if (++count > SNP_PEM_CERTS_MAX) {
                        X509_free(x);
                        s = cf_fail(CF_E_LIMIT);
                        break;
                }
                s = pool_add(p, x, &idx);
                if (!cf_ok(s)) {
                        break;
                }
                if (*ret_first == SIZE_MAX) {
                        *ret_first = idx;
                }
        }
        ERR_clear_error();
        BIO_free(bio);
        return s;
}

static CF_FN add_der(struct snp_pool *p, struct cf_slice data, size_t *ret_first)
{
        const unsigned char *q = data.ptr;
        X509 *x;

        ENSURE(data.size <= INT32_MAX, CF_E_LIMIT);
        x = d2i_X509(NULL, &q, (long)data.size);
        ERR_clear_error();
        if (x == NULL) {
                return CF_OK; /* not a certificate (a CRL, JSON, ...): not ours */
        }
        if (q != data.ptr + data.size) {
                X509_free(x); /* trailing bytes: not a DER certificate file */
                return CF_OK;
        }
        return pool_add(p, x, ret_first);
}

cf_status snp_pool_add_blob(struct snp_pool *p, const char *name, struct cf_slice data,
                            struct snp_ck *ck, size_t *ret_first)
{
        static const char marker[] = "-----BEGIN CERTIFICATE-----";
        size_t first = SIZE_MAX;

        if (memmem(data.ptr, data.size, marker, sizeof(marker) - 1) != NULL) {
                TRY(add_pem(p, data, &first));
        } else {
                TRY(add_der(p, data, &first));
        }
        if (first == SIZE_MAX) {
                snp_check(ck, "snp.collateral.unused", true, CF_E_OK, "AMD certificate", name);
        }
        *ret_first = first;
        return CF_OK;
}

/* DER INTEGER 0..255 (one byte, or 00 + one byte >= 0x80: gotcha G3). */
static CF_FN der_small_uint(struct cf_slice s, uint8_t *ret)
{
        struct cf_cursor c = cf_cursor_make(s);
        uint8_t tag, len, b0, b1;

        TRY(cf_cursor_u8(&c, &tag));
        ENSURE(tag == 0x02, CF_E_CERT);
        TRY(cf_cursor_u8(&c, &len));
        TRY(cf_cursor_u8(&c, &b0));
        if (len == 1) {
                ENSURE(b0 < 0x80, CF_E_CERT); /* negative */
                TRY(cf_cursor_expect_end(&c));
                *ret = b0;
                return CF_OK;
        }
        ENSURE(len == 2 && b0 == 0, CF_E_CERT);
        TRY(cf_cursor_u8(&c, &b1));
        ENSURE(b1 >= 0x80, CF_E_CERT); /* not minimal */
        TRY(cf_cursor_expect_end(&c));
        *ret = b1;
        return CF_OK;
}

/* DER IA5String of printable ASCII, short length form, into out. */
static CF_FN der_ia5(struct cf_slice s, char *out, size_t out_size)
{
        struct cf_cursor c = cf_cursor_make(s);
        struct cf_slice v;
        uint8_t tag, len;

        TRY(cf_cursor_u8(&c, &tag));
        ENSURE(tag == 0x16, CF_E_CERT);
        TRY(cf_cursor_u8(&c, &len));
        ENSURE(len < 0x80, CF_E_CERT);
        TRY(cf_cursor_take(&c, len, &v));
        TRY(cf_cursor_expect_end(&c));
        for (size_t i = 0; i < v.size; i++) {
                ENSURE(v.ptr[i] >= 0x20 && v.ptr[i] < 0x7f, CF_E_CERT);
        }
        ENSURE(cf_ok(cf_slice_to_cstr(v, out, out_size)), CF_E_CERT);
        return CF_OK;
}

/* hwID: 64 (or 8 on Turin) raw bytes; some fixtures wrap them in an OCTET STRING. */
static CF_FN der_hwid(struct cf_slice s, uint8_t out[static SNP_CHIP_ID_SIZE], size_t *ret_size)
{
        struct cf_cursor c = cf_cursor_make(s);
        struct cf_slice v;
        uint8_t tag, len;

        if (s.size == SNP_CHIP_ID_SIZE || s.size == SNP_TURIN_CHIP_ID) {
                TRY(cf_cursor_copy(&c, out, s.size));
                *ret_size = s.size;
                return CF_OK;
        }
        TRY(cf_cursor_u8(&c, &tag));
        TRY(cf_cursor_u8(&c, &len));
        ENSURE(tag == 0x04 && (len == SNP_CHIP_ID_SIZE || len == SNP_TURIN_CHIP_ID), CF_E_CERT);
        TRY(cf_cursor_take(&c, len, &v));
        TRY(cf_cursor_expect_end(&c));
        memcpy(out, v.ptr, v.size);
        *ret_size = v.size;
        return CF_OK;
}

/* The content of a non-duplicated extension; *found false when absent. */
static CF_FN ext_content(X509 *x, const char *oid, struct cf_slice *ret, bool *found)
{
        ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
        const ASN1_OCTET_STRING *os;
        int i, j, len;

        ENSURE(obj != NULL, CF_E_NOMEM);
        i = X509_get_ext_by_OBJ(x, obj, -1);
        j = i >= 0 ? X509_get_ext_by_OBJ(x, obj, i) : -1;
        ASN1_OBJECT_free(obj);
        ENSURE(j < 0, CF_E_CERT);
        *found = i >= 0;
        if (i < 0) {
                return CF_OK;
        }
        os = X509_EXTENSION_get_data(X509_get_ext(x, i));
        len = ASN1_STRING_length(os);
        ENSURE(len >= 0, CF_E_CERT);
        *ret = cf_slice_make(ASN1_STRING_get0_data(os), (size_t)len);
        return CF_OK;
}

static CF_FN ext_uint(X509 *x, const char *oid, bool *has, uint8_t *ret)
{
        struct cf_slice s = {0};

        TRY(ext_content(x, oid, &s, has));
        if (*has) {
                TRY(der_small_uint(s, ret));
        }
        return CF_OK;
}

/* "Milan-B0" -> 0; -1 when the name carries no stepping ("Milan", "Genoa", "Turin"). */
static int stepping_of(const char *name)
{
        const char *dash = strchr(name, '-');

        if (dash == NULL || dash[1] < 'A' || dash[1] > 'Z' || dash[2] < '0' || dash[2] > '9' ||
            dash[3] != '\0') {
                return -1;
        }
        return dash[2] - '0';
}

cf_status snp_leaf_info_parse(X509 *x, struct snp_leaf_info *ret)
{
        struct snp_leaf_info li = {.stepping = -1};
        struct cf_slice s;
        bool has;

        TRY(ext_uint(x, OID_STRUCT_VERSION, &has, &li.struct_version));
        ENSURE(has, CF_E_CERT);
        TRY(ext_content(x, OID_PRODUCT_NAME, &s, &has));
        ENSURE(has, CF_E_CERT);
        TRY(der_ia5(s, li.product_name, sizeof(li.product_name)));
        li.stepping = stepping_of(li.product_name);
        TRY(ext_uint(x, OID_BL_SPL, &li.has_bl, &li.bl));
        TRY(ext_uint(x, OID_TEE_SPL, &li.has_tee, &li.tee));
        TRY(ext_uint(x, OID_SNP_SPL, &li.has_snp, &li.snp));
        TRY(ext_uint(x, OID_UCODE_SPL, &li.has_ucode, &li.ucode));
        TRY(ext_uint(x, OID_FMC_SPL, &li.has_fmc, &li.fmc));
        TRY(ext_content(x, OID_HWID, &s, &has));
        if (has) {
                TRY(der_hwid(s, li.hwid, &li.hwid_size));
        }
        TRY(ext_content(x, OID_CSP_ID, &s, &has));
        if (has) {
                TRY(der_ia5(s, li.csp_id, sizeof(li.csp_id)));
        }
        *ret = li;
        return CF_OK;
}

void snp_chain_init(struct snp_chain *c)
{
        memset(c, 0, sizeof(*c));
        attest_checks_init(&c->checks);
}

void snp_chain_done(struct snp_chain *c)
{
        EVP_PKEY_free(c->leaf_key);
        attest_checks_done(&c->checks);
        memset(c, 0, sizeof(*c));
}

cf_status snp_chain_copy(const struct snp_chain *src, struct snp_chain *dst)
{
        struct attest_checks l;

        attest_checks_init(&l);
        for (size_t i = 0; i < src->checks.n; i++) {
                const struct attest_check *k = &src->checks.items[i];
                cf_status s = attest_checks_add(&l, k->name, k->ok, k->expected, k->actual);
                if (!cf_ok(s)) {
                        attest_checks_done(&l);
                        return s;
                }
        }
        if (src->leaf_key != NULL && EVP_PKEY_up_ref(src->leaf_key) != 1) {
                attest_checks_done(&l);
                return cf_fail(CF_E_CRYPTO);
        }
        *dst = *src;
        dst->checks = l;
        return CF_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static CF_FN asn1_epoch(const ASN1_TIME *t, int64_t *ret)
{
        struct tm tm;

        ENSURE(t != NULL && ASN1_TIME_to_tm(t, &tm) == 1, CF_E_CERT);
        *ret = days_from_civil((int64_t)tm.tm_year + 1900, (int64_t)tm.tm_mon + 1, tm.tm_mday) *
                   86400 +
               (int64_t)tm.tm_hour * 3600 + (int64_t)tm.tm_min * 60 + tm.tm_sec;
        return CF_OK;
}

static void add_window(struct snp_chain *out, const struct snp_cert *c, enum snp_role role,
                       struct snp_ck *ck)
{
        struct snp_window w = {0};
        char name[48];

        snprintf(name, sizeof(name), "snp.%s.validity", snp_role_label(role));
        if (!cf_ok(asn1_epoch(X509_get0_notBefore(c->x), &w.not_before)) ||
            !cf_ok(asn1_epoch(X509_get0_notAfter(c->x), &w.not_after))) {
                snp_check(ck, name, false, CF_E_CERT, "notBefore and notAfter", "unreadable");
                return;
        }
        snprintf(w.label, sizeof(w.label), "%s", snp_role_label(role));
        if (out->n_win < sizeof(out->win) / sizeof(out->win[0])) {
                out->win[out->n_win++] = w;
        }
}

void snp_chain_check_windows(const struct snp_chain *c, int64_t now, struct snp_ck *ck)
{
        for (size_t i = 0; i < c->n_win; i++) {
                const struct snp_window *w = &c->win[i];
                char name[48], nb[32], na[32], at[32], expected[80];
                bool ok = w->not_before <= now && now <= w->not_after;

                snprintf(name, sizeof(name), "snp.%s.validity", w->label);
                cf_format_rfc3339(w->not_before, nb, sizeof(nb));
                cf_format_rfc3339(w->not_after, na, sizeof(na));
                cf_format_rfc3339(now, at, sizeof(at));
                snprintf(expected, sizeof(expected), "%s .. %s", nb, na);
                snp_check(ck, name, ok, CF_E_EXPIRED, expected, at);
        }
}

static bool signed_by(X509 *child, X509 *parent)
{
        EVP_PKEY *pk = X509_get0_pubkey(parent);
        bool ok = pk != NULL && X509_get_signature_nid(child) == NID_rsassaPss &&
                  X509_verify(child, pk) == 1;

        ERR_clear_error();
        return ok;
}

static bool issued_by(X509 *child, X509 *parent)
{
        return X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) == 0;
}

static const struct snp_pin *find_pin(const uint8_t fp[static CF_SHA256_SIZE])
{
        for (size_t i = 0; i < sizeof(g_pinned_arks) / sizeof(g_pinned_arks[0]); i++) {
                if (memcmp(g_pinned_arks[i].fp, fp, CF_SHA256_SIZE) == 0) {
                        return &g_pinned_arks[i];
                }
        }
        return NULL;
}

static void verify_ark(const struct snp_cert *ark, struct snp_chain *out, struct snp_ck *ck)
{
        const struct snp_pin *pin = find_pin(ark->fp);
        char fp_hex[2 * CF_SHA256_SIZE + 1];

        out->product = SNP_PRODUCT_UNKNOWN;
        if (pin != NULL) {
                out->product = pin->product;
        }
        cf_hex_encode(ark->fp, sizeof(ark->fp), fp_hex, sizeof(fp_hex));
        snp_check(ck, "snp.ark.pinned", out->product != SNP_PRODUCT_UNKNOWN, CF_E_CHAIN,
                  "SHA-256 of a pinned AMD ARK (Milan, Genoa, Turin)", fp_hex);
        snp_check(ck, "snp.ark.self_signed", issued_by(ark->x, ark->x) && signed_by(ark->x, ark->x),
                  CF_E_CHAIN, "RSASSA-PSS self-signature", ark->cn);
        add_window(out, ark, SNP_ROLE_ARK, ck);
}

static void verify_inter(const struct snp_cert *in, const struct snp_cert *ark, enum snp_role want,
                         struct snp_chain *out, struct snp_ck *ck)
{
        const char *label = snp_role_label(want);
        char name[48], expected[96], issuer_cn[SNP_CN_MAX];

        snprintf(name, sizeof(name), "snp.%s.role", label);
        snprintf(expected, sizeof(expected), "%s%s", want == SNP_ROLE_ASVK ? "SEV-VLEK-" : "SEV-",
                 snp_product_name(out->product));
        snp_check(ck, name, strcmp(in->cn, expected) == 0, CF_E_CHAIN, expected, in->cn);
        name_cn(X509_get_issuer_name(in->x), issuer_cn);
        snprintf(name, sizeof(name), "snp.%s.issuer", label);
        snp_check(ck, name, issued_by(in->x, ark->x), CF_E_CHAIN, ark->cn, issuer_cn);
        snprintf(name, sizeof(name), "snp.%s.signature", label);
        snprintf(expected, sizeof(expected), "RSASSA-PSS signature by %s", ark->cn);
        snp_check(ck, name, signed_by(in->x, ark->x), CF_E_CHAIN, expected,
                  signed_by(in->x, ark->x) ? "valid" : "invalid");
        snprintf(name, sizeof(name), "snp.%s.ca", label);
        snp_check(ck, name, X509_check_ca(in->x) >= 1, CF_E_CHAIN, "CA certificate",
                  X509_check_ca(in->x) >= 1 ? "CA" : "not a CA");
        add_window(out, in, want, ck);
}

static bool is_p384(EVP_PKEY *pk)
{
        char group[32];
        size_t n = 0;

        return pk != NULL && EVP_PKEY_is_a(pk, "EC") &&
               EVP_PKEY_get_group_name(pk, group, sizeof(group), &n) == 1 &&
               strcmp(group, "secp384r1") == 0;
}

static void check_leaf_product(struct snp_chain *out, const char *label, struct snp_ck *ck)
{
        char name[48], prefix[SNP_PRODUCT_NAME_MAX];
        const char *dash;
        size_t n;

        snprintf(name, sizeof(name), "snp.%s.product", label);
        dash = strchr(out->leaf.product_name, '-');
        n = dash != NULL ? (size_t)(dash - out->leaf.product_name) : strlen(out->leaf.product_name);
        memcpy(prefix, out->leaf.product_name, n);
        prefix[n] = '\0';
        snp_check(ck, name, strcmp(prefix, snp_product_name(out->product)) == 0, CF_E_COLLATERAL,
                  snp_product_name(out->product), out->leaf.product_name);
}

static void verify_leaf(const struct snp_cert *leaf, const struct snp_cert *in,
                        struct snp_chain *out, struct snp_ck *ck)
{
        const char *label = snp_role_label(leaf->role);
        EVP_PKEY *pk = X509_get0_pubkey(leaf->x);
        char name[48], expected[96], issuer_cn[SNP_CN_MAX];
        bool sig_ok = signed_by(leaf->x, in->x);
        bool ext_ok;

        name_cn(X509_get_issuer_name(leaf->x), issuer_cn);
        snprintf(name, sizeof(name), "snp.%s.issuer", label);
        snp_check(ck, name, issued_by(leaf->x, in->x), CF_E_CHAIN, in->cn, issuer_cn);
        snprintf(name, sizeof(name), "snp.%s.signature", label);
        snprintf(expected, sizeof(expected), "RSASSA-PSS signature by %s", in->cn);
        snp_check(ck, name, sig_ok, CF_E_CHAIN, expected, sig_ok ? "valid" : "invalid");
        snprintf(name, sizeof(name), "snp.%s.key", label);
        if (snp_check(ck, name, is_p384(pk), CF_E_KEY, "ECDSA P-384",
                      is_p384(pk) ? "ECDSA P-384" : "other") &&
            EVP_PKEY_up_ref(pk) == 1) {
                out->leaf_key = pk;
        }
        snprintf(name, sizeof(name), "snp.%s.extensions", label);
        ext_ok = cf_ok(snp_leaf_info_parse(leaf->x, &out->leaf));
        ERR_clear_error();
        snp_check(ck, name, ext_ok, CF_E_CERT, "AMD extensions 1.3.6.1.4.1.3704.1.*",
                  ext_ok ? "well-formed" : "malformed or missing");
        if (ext_ok) {
                char v[8];
                snprintf(name, sizeof(name), "snp.%s.struct_version", label);
                snprintf(v, sizeof(v), "%u", out->leaf.struct_version);
                snp_check(ck, name, out->leaf.struct_version <= 1, CF_E_CERT, "0 or 1", v);
                check_leaf_product(out, label, ck);
        }
        add_window(out, leaf, leaf->role, ck);
}

/* The best parent for child among certificates of the given roles: a wanted-role certificate
 * whose subject is the child's issuer, then any such certificate of an accepted role, then
 * the first of the wanted role, then the first of an accepted role. */
static const struct snp_cert *pick_parent(const struct snp_pool *p, X509 *child, enum snp_role want,
                                          enum snp_role other)
{
        const struct snp_cert *best = NULL;
        int best_rank = 0;

        for (size_t i = 0; i < p->n; i++) {
                const struct snp_cert *c = &p->certs[i];
                int rank;
                if (c->role != want && c->role != other) {
                        continue;
                }
                rank = (issued_by(child, c->x) ? 2 : 0) + (c->role == want ? 1 : 0) + 1;
                if (rank > best_rank) {
                        best = c;
                        best_rank = rank;
                }
        }
        return best;
}

static void missing(struct snp_ck *ck, const char *what, enum cf_errcode code, const char *expected)
{
        char name[48];

        snprintf(name, sizeof(name), "snp.collateral.%s", what);
        snp_check(ck, name, false, code, expected, "none");
}

static void chain_from_inter(struct snp_pool *pool, const struct snp_cert *in, enum snp_role want,
                             struct snp_chain *out, struct snp_ck *ck)
{
        const struct snp_cert *ark = pick_parent(pool, in->x, SNP_ROLE_ARK, SNP_ROLE_ARK);

        if (ark == NULL) {
                missing(ck, "ark", CF_E_CHAIN, "a self-signed AMD ARK certificate");
                return;
        }
        verify_ark(ark, out, ck);
        verify_inter(in, ark, want, out, ck);
}

static void chain_from_leaf(struct snp_pool *pool, const struct snp_cert *leaf,
                            struct snp_chain *out, struct snp_ck *ck)
{
        enum snp_role want = leaf->role == SNP_ROLE_VLEK ? SNP_ROLE_ASVK : SNP_ROLE_ASK;
        enum snp_role other = want == SNP_ROLE_ASK ? SNP_ROLE_ASVK : SNP_ROLE_ASK;
        const struct snp_cert *in = pick_parent(pool, leaf->x, want, other);

        out->target_role = leaf->role;
        if (in == NULL) {
                missing(ck, snp_role_label(want), CF_E_COLLATERAL,
                        want == SNP_ROLE_ASK ? "an AMD ASK certificate (SEV-<product>)"
                                             : "an AMD ASVK certificate (SEV-VLEK-<product>)");
                return;
        }
        chain_from_inter(pool, in, want, out, ck);
        verify_leaf(leaf, in, out, ck);
}

static void finish(struct snp_chain *out, struct snp_ck *ck, cf_status *ret_err)
{
        out->ok = cf_ok(ck->err) && attest_checks_all_ok(&out->checks);
        *ret_err = ck->err;
}

cf_status snp_chain_for_report(struct snp_pool *pool, enum snp_role leaf_role,
                               const uint8_t chip_id[static SNP_CHIP_ID_SIZE],
                               struct snp_chain *out, cf_status *ret_err)
{
        struct snp_ck ck = {&out->checks, CF_OK};
        const struct snp_cert *leaf = NULL;
        bool other_kind = false;

        for (size_t i = 0; i < pool->n; i++) {
                const struct snp_cert *c = &pool->certs[i];
                struct snp_leaf_info li;
                if (c->role != leaf_role) {
                        other_kind |= c->role == SNP_ROLE_VCEK || c->role == SNP_ROLE_VLEK;
                        continue;
                }
                if (leaf == NULL) {
                        leaf = c;
                }
                /* Several leaves (a collateral folder): prefer the one issued for this chip. */
                if (cf_ok(snp_leaf_info_parse(c->x, &li)) && li.hwid_size > 0 &&
                    memcmp(li.hwid, chip_id, li.hwid_size) == 0) {
                        leaf = c;
                        break;
                }
        }
        ERR_clear_error();
        if (leaf == NULL) {
                char expected[48];
                snprintf(expected, sizeof(expected), "a %s certificate",
                         leaf_role == SNP_ROLE_VLEK ? "SEV-VLEK" : "SEV-VCEK");
                snp_check(
                    &ck, leaf_role == SNP_ROLE_VLEK ? "snp.collateral.vlek" : "snp.collateral.vcek",
                    false, CF_E_COLLATERAL, expected,
                    other_kind ? (leaf_role == SNP_ROLE_VLEK ? "only SEV-VCEK" : "only SEV-VLEK")
                               : "none");
        } else {
                chain_from_leaf(pool, leaf, out, &ck);
        }
        finish(out, &ck, ret_err);
        return CF_OK;
}

cf_status snp_chain_for_target(struct snp_pool *pool, size_t target, struct snp_chain *out,
                               cf_status *ret_err)
{
        struct snp_ck ck = {&out->checks, CF_OK};
        const struct snp_cert *t;

        ENSURE(target < pool->n, CF_E_INVALID_ARG);
        t = &pool->certs[target];
        out->target_role = t->role;
        switch (t->role) {
        case SNP_ROLE_VCEK:
        case SNP_ROLE_VLEK:
                chain_from_leaf(pool, t, out, &ck);
                break;
        case SNP_ROLE_ASK:
        case SNP_ROLE_ASVK:
                chain_from_inter(pool, t, t->role, out, &ck);
                break;
        case SNP_ROLE_ARK:
                verify_ark(t, out, &ck);
                break;
        default:
                snp_check(&ck, "snp.cert.role", false, CF_E_CERT,
                          "ARK-*, SEV-*, SEV-VLEK-*, SEV-VCEK or SEV-VLEK", t->cn);
                break;
        }
        finish(out, &ck, ret_err);
        return CF_OK;
}
