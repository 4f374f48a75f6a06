/* Intel DCAP quote parsing: SGX ECDSA quote v3 and quotes v4/v5 (SGX, TD 1.0, TD 1.5 bodies).
 *
 * Layouts: Intel's sgx_quote_3.h, sgx_quote_4.h, sgx_quote_5.h (as summarised in the vectors
 * README section 8). Every field is read through the cursor, little-endian unless noted. */
#include "attest/intel/intel.h"

#include <string.h>

#define SGX_REPORT_SIZE 384u
#define TD10_SIZE       584u
#define TD15_SIZE       648u
#define QE_CERT_TYPE    6u /* QE report certification data (v4/v5) */
#define PCK_CHAIN_TYPE  5u /* PCK leaf || CA || root, PEM */

/* sgx_report_body_t, 384 bytes. */
static CF_FN parse_sgx_report(struct cf_cursor *c, struct intel_sgx_report *ret)
{
        struct intel_sgx_report r = {0};

        TRY(cf_cursor_copy(c, r.cpusvn, sizeof(r.cpusvn)));
        TRY(cf_cursor_u32le(c, &r.miscselect));
        TRY(cf_cursor_skip(c, 12 + 16)); /* reserved, ISVEXTPRODID */
        TRY(cf_cursor_copy(c, r.attributes, sizeof(r.attributes)));
        TRY(cf_cursor_copy(c, r.mrenclave, sizeof(r.mrenclave)));
        TRY(cf_cursor_skip(c, 32)); /* reserved */
        TRY(cf_cursor_copy(c, r.mrsigner, sizeof(r.mrsigner)));
        TRY(cf_cursor_skip(c, 32 + 64)); /* reserved, CONFIGID */
        TRY(cf_cursor_u16le(c, &r.isvprodid));
        TRY(cf_cursor_u16le(c, &r.isvsvn));
        TRY(cf_cursor_skip(c, 2 + 42 + 16)); /* CONFIGSVN, reserved, ISVFAMILYID */
        TRY(cf_cursor_copy(c, r.report_data, sizeof(r.report_data)));
        *ret = r;
        return CF_OK;
}

/* sgx_report2_body_t (TD 1.0) and its TD 1.5 extension. */
static CF_FN parse_td_report(struct cf_cursor *c, bool td15, struct intel_td_report *ret)
{
        struct intel_td_report r = {0};

        TRY(cf_cursor_copy(c, r.tee_tcb_svn, sizeof(r.tee_tcb_svn)));
        TRY(cf_cursor_copy(c, r.mrseam, sizeof(r.mrseam)));
        TRY(cf_cursor_copy(c, r.mrsignerseam, sizeof(r.mrsignerseam)));
        TRY(cf_cursor_copy(c, r.seam_attributes, sizeof(r.seam_attributes)));
        TRY(cf_cursor_copy(c, r.td_attributes, sizeof(r.td_attributes)));
        TRY(cf_cursor_copy(c, r.xfam, sizeof(r.xfam)));
        TRY(cf_cursor_copy(c, r.mrtd, sizeof(r.mrtd)));
        TRY(cf_cursor_copy(c, r.mrconfigid, sizeof(r.mrconfigid)));
        TRY(cf_cursor_copy(c, r.mrowner, sizeof(r.mrowner)));
        TRY(cf_cursor_copy(c, r.mrownerconfig, sizeof(r.mrownerconfig)));
        for (size_t i = 0; i < 4; i++) {
                TRY(cf_cursor_copy(c, r.rtmr[i], sizeof(r.rtmr[i])));
        }
        TRY(cf_cursor_copy(c, r.report_data, sizeof(r.report_data)));
        if (td15) {
                TRY(cf_cursor_copy(c, r.tee_tcb_svn2, sizeof(r.tee_tcb_svn2)));
                TRY(cf_cursor_copy(c, r.mrservicetd, sizeof(r.mrservicetd)));
        }
        *ret = r;
        return CF_OK;
}

/* Header (48 bytes). The 4 bytes at offset 4 are "reserved" in v3 and the TEE type later. */
static CF_FN parse_header(struct cf_cursor *c, struct intel_quote *q)
{
        TRY(cf_cursor_u16le(c, &q->version));
        ENSURE(q->version >= 3 && q->version <= 5, CF_E_VERSION);
        TRY(cf_cursor_u16le(c, &q->att_key_type));
        ENSURE(q->att_key_type == 2, CF_E_UNSUPPORTED); /* ECDSA-256-with-P-256 only */
        TRY(cf_cursor_u32le(c, &q->tee_type));
        ENSURE(q->tee_type == INTEL_TEE_SGX || (q->version >= 4 && q->tee_type == INTEL_TEE_TDX),
               CF_E_UNSUPPORTED);
        TRY(cf_cursor_u16le(c, &q->qe_svn));
        TRY(cf_cursor_u16le(c, &q->pce_svn));
        TRY(cf_cursor_copy(c, q->qe_vendor_id, sizeof(q->qe_vendor_id)));
        TRY(cf_cursor_copy(c, q->user_data, sizeof(q->user_data)));
        return CF_OK;
}

static CF_FN parse_body(struct cf_cursor *c, struct intel_quote *q)
{
        uint16_t type;
        uint32_t size;
        struct cf_cursor body;

        if (q->version < 5) {
                q->body_type = q->tee_type == INTEL_TEE_TDX ? INTEL_BODY_TD10 : INTEL_BODY_SGX;
                size = q->body_type == INTEL_BODY_SGX ? SGX_REPORT_SIZE : TD10_SIZE;
        } else {
                TRY(cf_cursor_u16le(c, &type));
                TRY(cf_cursor_u32le(c, &size));
                switch (type) {
                case INTEL_BODY_SGX:
                        ENSURE(q->tee_type == INTEL_TEE_SGX && size == SGX_REPORT_SIZE,
                               CF_E_MALFORMED);
                        break;
                case INTEL_BODY_TD10:
                        ENSURE(q->tee_type == INTEL_TEE_TDX && size == TD10_SIZE, CF_E_MALFORMED);
                        break;
                case INTEL_BODY_TD15:
                        ENSURE(q->tee_type == INTEL_TEE_TDX && size == TD15_SIZE, CF_E_MALFORMED);
                        break;
                default:
                        return cf_fail(CF_E_VERSION);
                }
                q->body_type = (enum intel_body_type)type;
        }
        TRY(cf_cursor_sub(c, size, &body));
        if (q->body_type == INTEL_BODY_SGX) {
                TRY(parse_sgx_report(&body, &q->sgx));
        } else {
                TRY(parse_td_report(&body, q->body_type == INTEL_BODY_TD15, &q->td));
        }
        return cf_cursor_expect_end(&body);
}

/* QE report, its signature, QE auth data and the PCK chain: the tail shared by the v3
 * signature data and the v4/v5 QE report certification data. */
static CF_FN parse_qe_part(struct cf_cursor *c, struct intel_quote *q)
{
        struct cf_cursor rep;
        uint16_t auth_size, cert_type;
        uint32_t cert_size;

        TRY(cf_cursor_take(c, SGX_REPORT_SIZE, &q->qe_report_raw));
        rep = cf_cursor_make(q->qe_report_raw);
        TRY(parse_sgx_report(&rep, &q->qe_report));
        TRY(cf_cursor_copy(c, q->qe_report_signature, sizeof(q->qe_report_signature)));
        TRY(cf_cursor_u16le(c, &auth_size));
        ENSURE(auth_size <= INTEL_QE_AUTH_MAX, CF_E_LIMIT);
        TRY(cf_cursor_take(c, auth_size, &q->qe_auth_data));
        TRY(cf_cursor_u16le(c, &cert_type));
        ENSURE(cert_type == PCK_CHAIN_TYPE, CF_E_UNSUPPORTED);
        TRY(cf_cursor_u32le(c, &cert_size));
        ENSURE(cert_size <= INTEL_CERT_DATA_MAX, CF_E_LIMIT);
        ENSURE(cert_size > 0, CF_E_MALFORMED);
        TRY(cf_cursor_take(c, cert_size, &q->pck_chain_pem));
        return CF_OK;
}

static CF_FN parse_sig_data(struct cf_cursor *c, struct intel_quote *q)
{
        uint32_t sig_size, qe_size;
        uint16_t cert_type;
        struct cf_cursor sd, qc;

        TRY(cf_cursor_u32le(c, &sig_size));
        ENSURE(sig_size <= INTEL_QUOTE_SIG_DATA_MAX, CF_E_LIMIT);
        TRY(cf_cursor_sub(c, sig_size, &sd));
        TRY(cf_cursor_copy(&sd, q->signature, sizeof(q->signature)));
        TRY(cf_cursor_copy(&sd, q->att_key, sizeof(q->att_key)));
        if (q->version == 3) {
                TRY(parse_qe_part(&sd, q));
                return cf_cursor_expect_end(&sd);
        }
        TRY(cf_cursor_u16le(&sd, &cert_type));
        ENSURE(cert_type == QE_CERT_TYPE, CF_E_UNSUPPORTED);
        TRY(cf_cursor_u32le(&sd, &qe_size));
        TRY(cf_cursor_sub(&sd, qe_size, &qc));
        TRY(parse_qe_part(&qc, q));
        TRY(cf_cursor_expect_end(&qc));
        return cf_cursor_expect_end(&sd);
}

cf_status intel_quote_parse(struct cf_slice bytes, struct intel_quote *ret)
{
        struct intel_quote q = {0};
        struct cf_cursor c = cf_cursor_make(bytes);

        ENSURE(bytes.size <= INTEL_QUOTE_MAX, CF_E_LIMIT);
        TRY(parse_header(&c, &q));
        TRY(parse_body(&c, &q));
        /* The signed region is the prefix read so far: header and body (G14). */
        q.signed_region = cf_slice_make(bytes.ptr, c.pos);
        TRY(parse_sig_data(&c, &q));
        q.size = c.pos;
        q.trailing = cf_cursor_left(&c);
        *ret = q;
        return CF_OK;
}
