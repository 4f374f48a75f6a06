/* SEV-SNP ATTESTATION_REPORT and Azure HCL report parsing (structure only; the verifier
 * judges reserved fields, keys and signatures). Offsets: AMD SEV-SNP Firmware ABI 56860,
 * Table "ATTESTATION_REPORT Structure"; vectors README §8.3 and gotcha G17 for the HCL. */
#include "attest/snp/snp.h"

#include <string.h>

#define HCL_SIGNATURE        0x414c4348u /* "HCLA" little-endian */
#define HCL_REQUEST_TYPE_SNP 2u          /* the only request type seen; others fail closed */
#define HCL_RUNTIME_VERSION  1u
#define HCL_REPORT_TYPE_SNP  2u /* IGVM report type: 2 SNP, 4 TDX (not supported here) */
#define HCL_HASH_SHA256      1u
#define HCL_RUNTIME_HDR_SIZE 20u

const char *snp_product_name(enum snp_product p)
{
        switch (p) {
        case SNP_PRODUCT_MILAN:
                return "Milan";
        case SNP_PRODUCT_GENOA:
                return "Genoa";
        case SNP_PRODUCT_TURIN:
                return "Turin";
        default:
                return "unknown";
        }
}

enum snp_product snp_product_from_cpuid(uint8_t family, uint8_t model)
{
        if (family == 0x19 && model <= 0x0f) {
                return SNP_PRODUCT_MILAN;
        }
        /* Zen 4c parts (Bergamo, Siena: models 0xA0-0xAF) are served as Genoa by KDS. */
        if (family == 0x19 &&
            ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) {
                return SNP_PRODUCT_GENOA;
        }
        if (family == 0x1a) {
                return SNP_PRODUCT_TURIN;
        }
        return SNP_PRODUCT_UNKNOWN;
}

void snp_tcb_decode(const uint8_t raw[static 8], enum snp_product product, struct snp_tcb *ret)
{
        struct snp_tcb t = {0};

        if (product == SNP_PRODUCT_TURIN) {
                t.fmc = raw[0];
                t.bootloader = raw[1];
                t.tee = raw[2];
                t.snp = raw[3];
                t.microcode = raw[7];
                t.has_fmc = true;
                t.reserved_zero = (raw[4] | raw[5] | raw[6]) == 0;
        } else {
                t.bootloader = raw[0];
                t.tee = raw[1];
                t.snp = raw[6];
                t.microcode = raw[7];
                t.reserved_zero = (raw[2] | raw[3] | raw[4] | raw[5]) == 0;
        }
        *ret = t;
}

/* Reads n bytes that must be zero; remembers the report offset of the first non-zero one. */
static CF_FN take_reserved(struct cf_cursor *c, size_t n, size_t base, struct snp_report *r)
{
        struct cf_slice s;

        TRY(cf_cursor_take(c, n, &s));
        for (size_t i = 0; i < s.size; i++) {
                if (s.ptr[i] != 0 && r->reserved_nonzero_at == 0) {
                        r->reserved_nonzero_at = c->pos - base - n + i;
                }
        }
        return CF_OK;
}

static CF_FN parse_head(struct cf_cursor *c, struct snp_report *r)
{
        TRY(cf_cursor_u32le(c, &r->version)); /* 0x000 */
        ENSURE(r->version == 2 || r->version == 3 || r->version == 5, CF_E_VERSION);
        TRY(cf_cursor_u32le(c, &r->guest_svn));                         /* 0x004 */
        TRY(cf_cursor_u64le(c, &r->policy));                            /* 0x008 */
        TRY(cf_cursor_copy(c, r->family_id, sizeof(r->family_id)));     /* 0x010 */
        TRY(cf_cursor_copy(c, r->image_id, sizeof(r->image_id)));       /* 0x020 */
        TRY(cf_cursor_u32le(c, &r->vmpl));                              /* 0x030 */
        TRY(cf_cursor_u32le(c, &r->signature_algo));                    /* 0x034 */
        TRY(cf_cursor_copy(c, r->current_tcb, sizeof(r->current_tcb))); /* 0x038 */
        TRY(cf_cursor_u64le(c, &r->platform_info));                     /* 0x040 */
        TRY(cf_cursor_u32le(c, &r->key_info));                          /* 0x048 */
        return CF_OK;
}

static CF_FN parse_middle(struct cf_cursor *c, size_t base, struct snp_report *r)
{
        TRY(take_reserved(c, 4, base, r));                                          /* 0x04C */
        TRY(cf_cursor_copy(c, r->report_data, sizeof(r->report_data)));             /* 0x050 */
        TRY(cf_cursor_copy(c, r->measurement, sizeof(r->measurement)));             /* 0x090 */
        TRY(cf_cursor_copy(c, r->host_data, sizeof(r->host_data)));                 /* 0x0C0 */
        TRY(cf_cursor_copy(c, r->id_key_digest, sizeof(r->id_key_digest)));         /* 0x0E0 */
        TRY(cf_cursor_copy(c, r->author_key_digest, sizeof(r->author_key_digest))); /* 0x110 */
        TRY(cf_cursor_copy(c, r->report_id, sizeof(r->report_id)));                 /* 0x140 */
        TRY(cf_cursor_copy(c, r->report_id_ma, sizeof(r->report_id_ma)));           /* 0x160 */
        TRY(cf_cursor_copy(c, r->reported_tcb, sizeof(r->reported_tcb)));           /* 0x180 */
        if (r->version >= 3) {                                                      /* 0x188 */
                TRY(cf_cursor_u8(c, &r->cpuid_family));
                TRY(cf_cursor_u8(c, &r->cpuid_model));
                TRY(cf_cursor_u8(c, &r->cpuid_stepping));
        } else {
                TRY(take_reserved(c, 3, base, r));
        }
        TRY(take_reserved(c, 21, base, r));                                 /* 0x18B */
        TRY(cf_cursor_copy(c, r->chip_id, sizeof(r->chip_id)));             /* 0x1A0 */
        TRY(cf_cursor_copy(c, r->committed_tcb, sizeof(r->committed_tcb))); /* 0x1E0 */
        return CF_OK;
}

static CF_FN parse_tail(struct cf_cursor *c, size_t base, struct snp_report *r)
{
        TRY(cf_cursor_u8(c, &r->current_build)); /* 0x1E8 */
        TRY(cf_cursor_u8(c, &r->current_minor));
        TRY(cf_cursor_u8(c, &r->current_major));
        TRY(take_reserved(c, 1, base, r));
        TRY(cf_cursor_u8(c, &r->committed_build)); /* 0x1EC */
        TRY(cf_cursor_u8(c, &r->committed_minor));
        TRY(cf_cursor_u8(c, &r->committed_major));
        TRY(take_reserved(c, 1, base, r));
        TRY(cf_cursor_copy(c, r->launch_tcb, sizeof(r->launch_tcb))); /* 0x1F0 */
        if (r->version >= 5) {                                        /* 0x1F8 */
                TRY(cf_cursor_u64le(c, &r->launch_mit_vector));
                TRY(cf_cursor_u64le(c, &r->current_mit_vector));
        } else {
                TRY(take_reserved(c, 16, base, r));
        }
        TRY(take_reserved(c, 0x98, base, r));               /* 0x208 */
        TRY(cf_cursor_copy(c, r->sig_r, sizeof(r->sig_r))); /* 0x2A0 */
        TRY(cf_cursor_copy(c, r->sig_s, sizeof(r->sig_s))); /* 0x2E8 */
        TRY(take_reserved(c, 0x170, base, r));              /* 0x330 */
        return CF_OK;
}

/* Parses the 0x4A0-byte report at the cursor; base is the cursor position of its first byte
 * (offsets in reserved_nonzero_at are relative to the report). */
static CF_FN parse_report(struct cf_cursor *c, struct snp_report *r)
{
        size_t base = c->pos;
        struct cf_cursor signed_c = *c;

        TRY(cf_cursor_take(&signed_c, SNP_SIGNED_SIZE, &r->signed_region));
        TRY(parse_head(c, r));
        TRY(parse_middle(c, base, r));
        TRY(parse_tail(c, base, r));
        return CF_OK;
}

static CF_FN parse_bare(struct cf_slice bytes, struct snp_report *r)
{
        struct cf_cursor c = cf_cursor_make(bytes);

        TRY(parse_report(&c, r));
        /* configfs-tsm and /dev/sev-guest return exactly one report: nothing may follow. */
        TRY(cf_cursor_expect_end(&c));
        return CF_OK;
}

static CF_FN expect_zeros(struct cf_cursor *c, size_t n, enum cf_errcode code)
{
        struct cf_slice s;

        TRY(cf_cursor_take(c, n, &s));
        for (size_t i = 0; i < s.size; i++) {
                ENSURE(s.ptr[i] == 0, code);
        }
        return CF_OK;
}

/* HCL header (0x20 bytes): signature, version, report size, request type, status, 12
 * reserved bytes. Runtime data header at 0x4C0: data size, version, report type, hash type,
 * variable-data size; the variable data at 0x4D4. */
static CF_FN parse_hcl(struct cf_slice bytes, struct snp_report *r)
{
        struct cf_cursor c = cf_cursor_make(bytes);
        uint32_t sig, report_size, request_type, status, data_size, rt_version, report_type,
            var_size;
        size_t expect_size;

        ENSURE(bytes.size <= SNP_HCL_MAX_SIZE, CF_E_LIMIT);
        TRY(cf_cursor_u32le(&c, &sig));
        ENSURE(sig == HCL_SIGNATURE, CF_E_MALFORMED);
        TRY(cf_cursor_u32le(&c, &r->hcl_version));
        ENSURE(r->hcl_version == 1 || r->hcl_version == 2, CF_E_VERSION);
        TRY(cf_cursor_u32le(&c, &report_size));
        TRY(cf_cursor_u32le(&c, &request_type));
        ENSURE(request_type == HCL_REQUEST_TYPE_SNP, CF_E_UNSUPPORTED);
        TRY(cf_cursor_u32le(&c, &status));
        ENSURE(status == 0, CF_E_MALFORMED);
        TRY(expect_zeros(&c, 12, CF_E_MALFORMED));
        TRY(parse_report(&c, r));
        TRY(cf_cursor_u32le(&c, &data_size));
        TRY(cf_cursor_u32le(&c, &rt_version));
        ENSURE(rt_version == HCL_RUNTIME_VERSION, CF_E_VERSION);
        TRY(cf_cursor_u32le(&c, &report_type));
        ENSURE(report_type == HCL_REPORT_TYPE_SNP, CF_E_UNSUPPORTED);
        TRY(cf_cursor_u32le(&c, &r->hcl_hash_type));
        ENSURE(r->hcl_hash_type == HCL_HASH_SHA256, CF_E_UNSUPPORTED);
        TRY(cf_cursor_u32le(&c, &var_size));
        ENSURE(var_size <= SNP_HCL_MAX_SIZE, CF_E_LIMIT);
        ENSURE(var_size <= cf_cursor_left(&c), CF_E_TRUNCATED);
        ENSURE(data_size == HCL_RUNTIME_HDR_SIZE + var_size, CF_E_MALFORMED);
        expect_size = SNP_HCL_VAR_OFFSET + var_size;
        ENSURE(report_size == expect_size, CF_E_MALFORMED);
        TRY(cf_cursor_take(&c, var_size, &r->hcl_var_data));
        /* The HCL buffer has a fixed size: only zero padding may follow the variable data. */
        TRY(expect_zeros(&c, cf_cursor_left(&c), CF_E_TRAILING));
        r->hcl = true;
        return CF_OK;
}

cf_status snp_report_parse(struct cf_slice bytes, struct snp_report *ret)
{
        struct snp_report r = {0};
        struct cf_cursor c = cf_cursor_make(bytes);
        uint32_t magic = 0;

        /* A bare report starts with its version (2..5), an HCL report with "HCLA". */
        if (cf_ok(cf_cursor_u32le(&c, &magic)) && magic == HCL_SIGNATURE) {
                TRY(parse_hcl(bytes, &r));
        } else {
                TRY(parse_bare(bytes, &r));
        }
        *ret = r;
        return CF_OK;
}
