/* Intel collateral: recognition by content, parsing, and the checks that depend only on the
 * pinned root (TCB Signing certificates, signed JSON bodies, CRL signatures).
 *
 * Forms recognised (vectors README sections 3, 4, 5 and G6):
 *  - Intel PCS responses {"tcbInfo":{..},"signature":"hex"} and {"enclaveIdentity":..};
 *  - split files: the signed body alone ({"id":..,"tcbLevels":..}) and a hex r||s file;
 *  - dcap-qvl bundles {"tcb_info":"..."|{..},"tcb_info_signature":..,"pck_crl":"hex",..};
 *  - PEM certificate chains and CRLs; DER certificates and CRLs.
 * A signed body is verified over its exact bytes: the raw slice of the value as it appears
 * in the file (found by a small JSON scanner), or the decoded string of a bundle. */
#include "attest/intel/intel_internal.h"

#include <stdio.h>
#include <string.h>

#include "base/codec.h"
#include "base/mem.h"

#define JSON_DEPTH_MAX 64
#define SIG_HEX_SIZE   128u

static void buf_donep(struct cf_buf *b)
{
        cf_buf_done(b);
}

/* ---- a JSON skipper over the cursor: only to find raw value slices in text that jansson
 * has already accepted as valid ---- */

static bool json_ws(uint8_t b)
{
        return b == ' ' || b == '\t' || b == '\r' || b == '\n';
}

static void json_skip_ws(struct cf_cursor *c)
{
        for (;;) {
                struct cf_cursor s = *c;
                uint8_t b;
                if (!cf_ok(cf_cursor_u8(&s, &b)) || !json_ws(b)) {
                        return;
                }
                *c = s;
        }
}

static CF_FN json_peek(const struct cf_cursor *c, uint8_t *ret)
{
        struct cf_cursor s = *c;

        return cf_cursor_u8(&s, ret);
}

static CF_FN json_expect(struct cf_cursor *c, uint8_t want)
{
        uint8_t b;

        TRY(cf_cursor_u8(c, &b));
        ENSURE(b == want, CF_E_SYNTAX);
        return CF_OK;
}

static CF_FN json_skip_string(struct cf_cursor *c)
{
        uint8_t b;

        TRY(json_expect(c, '"'));
        for (;;) {
                TRY(cf_cursor_u8(c, &b));
                if (b == '"') {
                        return CF_OK;
                }
                if (b == '\\') {
                        TRY(cf_cursor_u8(c, &b));
                }
        }
}

static CF_FN json_skip_value(struct cf_cursor *c, int depth);

static CF_FN json_skip_container(struct cf_cursor *c, uint8_t close, bool object, int depth)
{
        uint8_t b;

        ENSURE(depth < JSON_DEPTH_MAX, CF_E_LIMIT);
        TRY(cf_cursor_skip(c, 1));
        json_skip_ws(c);
        TRY(json_peek(c, &b));
        if (b == close) {
                return cf_cursor_skip(c, 1);
        }
        for (;;) {
                json_skip_ws(c);
                if (object) {
                        TRY(json_skip_string(c));
                        json_skip_ws(c);
                        TRY(json_expect(c, ':'));
                        json_skip_ws(c);
                }
                TRY(json_skip_value(c, depth + 1));
                json_skip_ws(c);
                TRY(cf_cursor_u8(c, &b));
                if (b == close) {
                        return CF_OK;
                }
                ENSURE(b == ',', CF_E_SYNTAX);
        }
}

static CF_FN json_skip_value(struct cf_cursor *c, int depth)
{
        uint8_t b;
        size_t n = 0;

        TRY(json_peek(c, &b));
        if (b == '{') {
                return json_skip_container(c, '}', true, depth);
        }
        if (b == '[') {
                return json_skip_container(c, ']', false, depth);
        }
        if (b == '"') {
                return json_skip_string(c);
        }
        /* number, true, false, null */
        while (cf_ok(json_peek(c, &b)) && ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') ||
                                           b == '-' || b == '+' || b == '.' || b == 'E')) {
                TRY(cf_cursor_skip(c, 1));
                n++;
        }
        ENSURE(n > 0, CF_E_SYNTAX);
        return CF_OK;
}

/* The raw text of the value of a member of the top-level object of text; size 0 when the
 * key is absent. Keys are compared as raw bytes (Intel keys need no escapes). */
static CF_FN json_member_raw(struct cf_slice text, const char *key, struct cf_slice *ret)
{
        struct cf_cursor c = cf_cursor_make(text);
        uint8_t b;

        json_skip_ws(&c);
        TRY(json_expect(&c, '{'));
        json_skip_ws(&c);
        TRY(json_peek(&c, &b));
        if (b == '}') {
                *ret = cf_slice_make(NULL, 0);
                return CF_OK;
        }
        for (;;) {
                struct cf_cursor ks, vs;
                struct cf_slice k;
                bool match;

                json_skip_ws(&c);
                ks = c;
                TRY(json_skip_string(&c));
                /* The key without its quotes. */
                TRY(cf_cursor_skip(&ks, 1));
                TRY(cf_cursor_take(&ks, c.pos - ks.pos - 1, &k));
                match = cf_slice_eq(k, cf_slice_str(key));
                json_skip_ws(&c);
                TRY(json_expect(&c, ':'));
                json_skip_ws(&c);
                vs = c;
                TRY(json_skip_value(&c, 1));
                if (match) {
                        return cf_cursor_take(&vs, c.pos - vs.pos, ret);
                }
                json_skip_ws(&c);
                TRY(cf_cursor_u8(&c, &b));
                if (b == '}') {
                        *ret = cf_slice_make(NULL, 0);
                        return CF_OK;
                }
                ENSURE(b == ',', CF_E_SYNTAX);
        }
}

/* ---- typed access to jansson documents ---- */

static CF_FN j_str(const json_t *o, const char *k, const char **ret)
{
        const json_t *v = json_object_get(o, k);

        ENSURE(json_is_string(v), CF_E_SCHEMA);
        *ret = json_string_value(v);
        return CF_OK;
}

static CF_FN j_int(const json_t *o, const char *k, int64_t min, int64_t max, int64_t *ret)
{
        const json_t *v = json_object_get(o, k);
        int64_t x;

        ENSURE(json_is_integer(v), CF_E_SCHEMA);
        x = (int64_t)json_integer_value(v);
        ENSURE(x >= min && x <= max, CF_E_SCHEMA);
        *ret = x;
        return CF_OK;
}

static CF_FN j_hex(const json_t *o, const char *k, uint8_t *out, size_t n)
{
        const json_t *v = json_object_get(o, k);

        ENSURE(json_is_string(v), CF_E_SCHEMA);
        return cf_hex_decode(cf_slice_make(json_string_value(v), json_string_length(v)), out, n);
}

static CF_FN j_time(const json_t *o, const char *k, int64_t *ret)
{
        const char *s = NULL;

        TRY(j_str(o, k, &s));
        return cf_parse_rfc3339(s, ret);
}

static CF_FN j_cstr(const json_t *o, const char *k, char *out, size_t out_size)
{
        const char *s = NULL;

        TRY(j_str(o, k, &s));
        return cf_slice_to_cstr(cf_slice_str(s), out, out_size);
}

/* ---- TCB levels ---- */

enum level_kind { LEVEL_SGX_V2, LEVEL_SGX_V3, LEVEL_TDX_V3, LEVEL_ISVSVN };

static CF_FN parse_components(const json_t *arr, uint8_t out[16])
{
        int64_t v = 0;

        ENSURE(json_is_array(arr) && json_array_size(arr) == 16, CF_E_SCHEMA);
        for (size_t i = 0; i < 16; i++) {
                TRY(j_int(json_array_get(arr, i), "svn", 0, 255, &v));
                out[i] = (uint8_t)v;
        }
        return CF_OK;
}

static CF_FN parse_level_tcb(const json_t *tcb, enum level_kind kind, struct intel_level *l)
{
        int64_t v = 0;
        char key[24];

        ENSURE(json_is_object(tcb), CF_E_SCHEMA);
        switch (kind) {
        case LEVEL_ISVSVN:
                TRY(j_int(tcb, "isvsvn", 0, 0xffff, &v));
                l->isvsvn = (uint16_t)v;
                return CF_OK;
        case LEVEL_SGX_V2:
                for (int i = 0; i < 16; i++) {
                        snprintf(key, sizeof(key), "sgxtcbcomp%02dsvn", i + 1);
                        TRY(j_int(tcb, key, 0, 255, &v));
                        l->sgx[i] = (uint8_t)v;
                }
                break;
        case LEVEL_SGX_V3:
        case LEVEL_TDX_V3:
                TRY(parse_components(json_object_get(tcb, "sgxtcbcomponents"), l->sgx));
                if (kind == LEVEL_TDX_V3) {
                        TRY(parse_components(json_object_get(tcb, "tdxtcbcomponents"), l->tdx));
                        l->has_tdx = true;
                }
                break;
        default:
                return cf_fail(CF_E_INTERNAL);
        }
        TRY(j_int(tcb, "pcesvn", 0, 0xffff, &v));
        l->pcesvn = (uint16_t)v;
        return CF_OK;
}

static CF_FN parse_level(const json_t *o, enum level_kind kind, struct intel_level *l)
{
        const json_t *adv = json_object_get(o, "advisoryIDs");
        const char *date = NULL;

        ENSURE(json_is_object(o), CF_E_SCHEMA);
        TRY(parse_level_tcb(json_object_get(o, "tcb"), kind, l));
        TRY(j_cstr(o, "tcbStatus", l->status, sizeof(l->status)));
        ENSURE(intel_status_rank(l->status) >= 0, CF_E_SCHEMA); /* unknown status: fail closed */
        if (cf_ok(j_str(o, "tcbDate", &date))) {
                TRY(cf_slice_to_cstr(cf_slice_str(date), l->date, sizeof(l->date)));
        }
        if (adv != NULL) {
                ENSURE(json_is_array(adv), CF_E_SCHEMA);
                for (size_t i = 0; i < json_array_size(adv); i++) {
                        ENSURE(json_is_string(json_array_get(adv, i)), CF_E_SCHEMA);
                }
                l->advisories = (json_t *)(uintptr_t)adv;
        }
        return CF_OK;
}

static CF_FN parse_levels(const json_t *arr, enum level_kind kind, struct intel_level **ret,
                          size_t *ret_n)
{
        size_t n;
        struct intel_level *l;

        ENSURE(json_is_array(arr), CF_E_SCHEMA);
        n = json_array_size(arr);
        ENSURE(n >= 1 && n <= INTEL_TCB_LEVELS_MAX, CF_E_SCHEMA);
        l = calloc(n, sizeof(*l));
        ENSURE(l != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < n; i++) {
                cf_status s = parse_level(json_array_get(arr, i), kind, &l[i]);
                if (!cf_ok(s)) {
                        free(l);
                        return s;
                }
        }
        *ret = l;
        *ret_n = n;
        return CF_OK;
}

static CF_FN parse_module_ids(const json_t *arr, struct intel_tcb_info *t)
{
        size_t n;

        if (arr == NULL) {
                return CF_OK;
        }
        ENSURE(json_is_array(arr), CF_E_SCHEMA);
        n = json_array_size(arr);
        ENSURE(n <= INTEL_MODULE_IDS_MAX, CF_E_SCHEMA);
        if (n == 0) {
                return CF_OK;
        }
        t->modules = calloc(n, sizeof(*t->modules));
        ENSURE(t->modules != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < n; i++) {
                const json_t *o = json_array_get(arr, i);
                struct intel_module_id *m = &t->modules[i];
                t->n_modules = i + 1; /* so the levels of a failed entry are freed too */
                ENSURE(json_is_object(o), CF_E_SCHEMA);
                TRY(j_cstr(o, "id", m->id, sizeof(m->id)));
                TRY(j_hex(o, "mrsigner", m->mrsigner, sizeof(m->mrsigner)));
                TRY(j_hex(o, "attributes", m->attributes, sizeof(m->attributes)));
                TRY(j_hex(o, "attributesMask", m->attributes_mask, sizeof(m->attributes_mask)));
                TRY(parse_levels(json_object_get(o, "tcbLevels"), LEVEL_ISVSVN, &m->levels,
                                 &m->n_levels));
        }
        return CF_OK;
}

static CF_FN parse_tcb_info(const json_t *d, struct intel_tcb_info *t)
{
        int64_t v = 0;
        const json_t *mod;
        enum level_kind kind;

        TRY(j_int(d, "version", 2, 3, &v));
        t->version = (int)v;
        if (t->version == 2) {
                ENSURE(json_object_get(d, "id") == NULL, CF_E_SCHEMA);
                memcpy(t->id, "SGX", 4);
                kind = LEVEL_SGX_V2;
        } else {
                TRY(j_cstr(d, "id", t->id, sizeof(t->id)));
                ENSURE(strcmp(t->id, "SGX") == 0 || strcmp(t->id, "TDX") == 0, CF_E_SCHEMA);
                kind = strcmp(t->id, "TDX") == 0 ? LEVEL_TDX_V3 : LEVEL_SGX_V3;
        }
        TRY(j_time(d, "issueDate", &t->issue_date));
        TRY(j_time(d, "nextUpdate", &t->next_update));
        TRY(j_hex(d, "fmspc", t->fmspc, sizeof(t->fmspc)));
        TRY(j_hex(d, "pceId", t->pce_id, sizeof(t->pce_id)));
        TRY(j_int(d, "tcbType", 0, 0, &v)); /* only type 0 is defined */
        TRY(j_int(d, "tcbEvaluationDataNumber", 0, INT32_MAX, &t->eval_number));
        mod = json_object_get(d, "tdxModule");
        if (mod != NULL) {
                ENSURE(json_is_object(mod), CF_E_SCHEMA);
                TRY(j_hex(mod, "mrsigner", t->module_mrsigner, sizeof(t->module_mrsigner)));
                TRY(j_hex(mod, "attributes", t->module_attributes, sizeof(t->module_attributes)));
                TRY(j_hex(mod, "attributesMask", t->module_attributes_mask,
                          sizeof(t->module_attributes_mask)));
                t->has_module = true;
        }
        TRY(parse_module_ids(json_object_get(d, "tdxModuleIdentities"), t));
        return parse_levels(json_object_get(d, "tcbLevels"), kind, &t->levels, &t->n_levels);
}

static CF_FN parse_qe_identity(const json_t *d, struct intel_qe_identity *q)
{
        int64_t v;
        uint8_t b4[4];

        TRY(j_cstr(d, "id", q->id, sizeof(q->id)));
        TRY(j_int(d, "version", 2, 2, &v));
        q->version = (int)v;
        TRY(j_time(d, "issueDate", &q->issue_date));
        TRY(j_time(d, "nextUpdate", &q->next_update));
        /* MISCSELECT is shown big-endian in the JSON; the report holds it little-endian. */
        TRY(j_hex(d, "miscselect", b4, 4));
        q->miscselect =
            (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
        TRY(j_hex(d, "miscselectMask", b4, 4));
        q->miscselect_mask =
            (uint32_t)b4[0] << 24 | (uint32_t)b4[1] << 16 | (uint32_t)b4[2] << 8 | b4[3];
        TRY(j_hex(d, "attributes", q->attributes, sizeof(q->attributes)));
        TRY(j_hex(d, "attributesMask", q->attributes_mask, sizeof(q->attributes_mask)));
        TRY(j_hex(d, "mrsigner", q->mrsigner, sizeof(q->mrsigner)));
        TRY(j_int(d, "isvprodid", 0, 0xffff, &v));
        q->isvprodid = (uint16_t)v;
        return parse_levels(json_object_get(d, "tcbLevels"), LEVEL_ISVSVN, &q->levels,
                            &q->n_levels);
}

/* ---- the collateral set ---- */

static void signed_done(struct intel_signed *s)
{
        free(s->body);
        json_decref(s->doc);
        free(s->tcb.levels);
        for (size_t i = 0; i < s->tcb.n_modules; i++) {
                free(s->tcb.modules[i].levels);
        }
        free(s->tcb.modules);
        free(s->qe.levels);
}

void intel_coll_free(struct intel_coll *c)
{
        if (c == NULL) {
                return;
        }
        for (size_t i = 0; i < c->n_signed; i++) {
                signed_done(&c->signed_items[i]);
        }
        for (size_t i = 0; i < c->n_certs; i++) {
                X509_free(c->certs[i]);
        }
        for (size_t i = 0; i < c->n_crls; i++) {
                X509_CRL_free(c->crls[i].crl);
        }
        free(c);
}

static void intel_coll_freep(struct intel_coll **p)
{
        intel_coll_free(*p);
        *p = NULL;
}

static void copy_name(char *out, const char *name)
{
        snprintf(out, INTEL_NAME_MAX, "%s", name != NULL ? name : "");
}

static CF_FN add_signed(struct intel_coll *c, enum intel_signed_kind kind, const char *source,
                        struct cf_slice body, const uint8_t *sig)
{
        struct intel_signed *s;
        json_error_t err;

        ENSURE(c->n_signed < INTEL_COLL_SIGNED_MAX, CF_E_LIMIT);
        ENSURE(body.size > 0, CF_E_SCHEMA);
        s = &c->signed_items[c->n_signed++];
        *s = (struct intel_signed){.kind = kind};
        copy_name(s->source, source);
        s->body = malloc(body.size);
        ENSURE(s->body != NULL, CF_E_NOMEM);
        memcpy(s->body, body.ptr, body.size);
        s->body_size = body.size;
        if (sig != NULL) {
                memcpy(s->sig, sig, 64);
                s->has_sig = true;
        }
        s->doc = json_loadb((const char *)s->body, s->body_size, JSON_REJECT_DUPLICATES, &err);
        ENSURE(json_is_object(s->doc), CF_E_SYNTAX);
        if (kind == INTEL_SIGNED_TCB_INFO) {
                return parse_tcb_info(s->doc, &s->tcb);
        }
        return parse_qe_identity(s->doc, &s->qe);
}

static CF_FN decode_sig_hex(struct cf_slice hex, uint8_t out[64])
{
        return cf_hex_decode(hex, out, 64);
}

/* A detached signature file: 128 hex digits, then optional whitespace. */
static bool is_sig_hex_text(struct cf_slice b, struct cf_slice *ret)
{
        struct cf_cursor c = cf_cursor_make(b), rest;
        struct cf_slice hex;
        uint8_t tmp[64];

        if (!cf_ok(cf_cursor_take(&c, SIG_HEX_SIZE, &hex)) ||
            !cf_ok(cf_hex_decode(hex, tmp, sizeof(tmp)))) {
                return false;
        }
        rest = c;
        json_skip_ws(&rest);
        if (cf_cursor_left(&rest) != 0) {
                return false;
        }
        *ret = hex;
        return true;
}

/* True when the text (after whitespace) starts with lit. */
static bool starts_with(struct cf_cursor c, const char *lit)
{
        struct cf_slice s;

        json_skip_ws(&c);
        return cf_ok(cf_cursor_take(&c, strlen(lit), &s)) && cf_slice_eq(s, cf_slice_str(lit));
}

static CF_FN add_cert(struct intel_coll *c, X509 *x, const char *source)
{
        if (c->n_certs >= INTEL_COLL_CERTS_MAX) {
                X509_free(x);
                return cf_fail(CF_E_LIMIT);
        }
        copy_name(c->cert_source[c->n_certs], source);
        c->certs[c->n_certs++] = x;
        return CF_OK;
}

static CF_FN add_pem_certs(struct intel_coll *c, struct cf_slice pem, const char *source)
{
        X509 *certs[INTEL_PEM_CERTS_MAX];
        size_t n = 0;
        cf_status s = CF_OK;

        TRY(intel_pem_certs(pem, certs, INTEL_PEM_CERTS_MAX, &n));
        for (size_t i = 0; i < n; i++) {
                cf_status t = add_cert(c, certs[i], source); /* consumes certs[i] */
                if (cf_ok(s)) {
                        s = t;
                }
        }
        return s;
}

static CF_FN add_crl(struct intel_coll *c, X509_CRL *crl, const char *source)
{
        char cn[INTEL_NAME_MAX];
        struct intel_crl *e;
        enum intel_crl_role role;
        cf_status s = intel_name_cn(X509_CRL_get_issuer(crl), cn, sizeof(cn));

        if (!cf_ok(s)) {
                X509_CRL_free(crl);
                return s;
        }
        if (strcmp(cn, "Intel SGX Root CA") == 0) {
                role = INTEL_CRL_ROOT;
        } else if (strcmp(cn, "Intel SGX PCK Processor CA") == 0) {
                role = INTEL_CRL_PROCESSOR;
        } else if (strcmp(cn, "Intel SGX PCK Platform CA") == 0) {
                role = INTEL_CRL_PLATFORM;
        } else {
                X509_CRL_free(crl); /* another issuer's CRL: not ours */
                if (c->n_ignored < 8) {
                        copy_name(c->ignored[c->n_ignored++], source);
                }
                return CF_OK;
        }
        if (c->n_crls >= INTEL_COLL_CRLS_MAX) {
                X509_CRL_free(crl);
                return cf_fail(CF_E_LIMIT);
        }
        e = &c->crls[c->n_crls++];
        *e = (struct intel_crl){.crl = crl, .role = role};
        copy_name(e->source, source);
        TRY(intel_asn1_time(X509_CRL_get0_lastUpdate(crl), &e->this_update));
        return intel_asn1_time(X509_CRL_get0_nextUpdate(crl), &e->next_update);
}

/* A CRL given as text in a bundle: PEM, or hex of the DER. */
static CF_FN add_crl_text(struct intel_coll *c, const json_t *v, const char *source)
{
        CF_CLEANUP(buf_donep) struct cf_buf der;
        struct cf_slice t;
        X509_CRL *crl;

        cf_buf_init(&der, INTEL_CRL_DER_MAX, false);
        ENSURE(json_is_string(v), CF_E_SCHEMA);
        t = cf_slice_make(json_string_value(v), json_string_length(v));
        if (starts_with(cf_cursor_make(t), "-----BEGIN")) {
                TRY(intel_pem_crl(t, &crl));
        } else {
                TRY(cf_hex_decode_buf(t, &der));
                TRY(intel_der_crl(cf_buf_slice(&der), &crl));
        }
        return add_crl(c, crl, source);
}

/* A PCS response {"tcbInfo":{..},"signature":".."} held in text (a file or a bundle value). */
static CF_FN add_pcs_response(struct intel_coll *c, struct cf_slice text, const json_t *doc,
                              const char *key, enum intel_signed_kind kind, const char *source)
{
        struct cf_slice raw;
        const char *sig_hex = NULL;
        uint8_t sig[64];

        TRY(json_member_raw(text, key, &raw));
        ENSURE(json_is_object(json_object_get(doc, key)), CF_E_SCHEMA);
        TRY(j_str(doc, "signature", &sig_hex));
        TRY(decode_sig_hex(cf_slice_str(sig_hex), sig));
        return add_signed(c, kind, source, raw, sig);
}

/* One signed body of a bundle: a string (the exact signed text) or an object (its raw text
 * in the bundle, itself possibly a PCS response). */
static CF_FN add_bundle_body(struct intel_coll *c, struct cf_slice text, const json_t *doc,
                             const char *key, const char *sig_key, const char *pcs_key,
                             enum intel_signed_kind kind, const char *source)
{
        const json_t *v = json_object_get(doc, key);
        const json_t *sv = json_object_get(doc, sig_key);
        struct cf_slice raw, body;
        uint8_t sig[64];

        if (v == NULL) {
                return CF_OK;
        }
        if (json_is_string(v)) {
                body = cf_slice_make(json_string_value(v), json_string_length(v));
        } else {
                ENSURE(json_is_object(v), CF_E_SCHEMA);
                TRY(json_member_raw(text, key, &raw));
                if (json_object_get(v, pcs_key) != NULL && sv == NULL) {
                        return add_pcs_response(c, raw, v, pcs_key, kind, source);
                }
                body = raw;
        }
        ENSURE(json_is_string(sv), CF_E_SCHEMA);
        TRY(decode_sig_hex(cf_slice_make(json_string_value(sv), json_string_length(sv)), sig));
        return add_signed(c, kind, source, body, sig);
}

static CF_FN add_bundle(struct intel_coll *c, struct cf_slice text, const json_t *doc,
                        const char *source)
{
        static const char *const chains[] = {"tcb_info_issuer_chain", "qe_identity_issuer_chain",
                                             "pck_crl_issuer_chain", "pck_certificate_chain"};
        static const char *const crls[] = {"pck_crl", "root_ca_crl"};

        TRY(add_bundle_body(c, text, doc, "tcb_info", "tcb_info_signature", "tcbInfo",
                            INTEL_SIGNED_TCB_INFO, source));
        TRY(add_bundle_body(c, text, doc, "qe_identity", "qe_identity_signature", "enclaveIdentity",
                            INTEL_SIGNED_QE_IDENTITY, source));
        for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
                const json_t *v = json_object_get(doc, chains[i]);
                if (v != NULL) {
                        ENSURE(json_is_string(v), CF_E_SCHEMA);
                        TRY(add_pem_certs(
                            c, cf_slice_make(json_string_value(v), json_string_length(v)), source));
                }
        }
        for (size_t i = 0; i < sizeof(crls) / sizeof(crls[0]); i++) {
                const json_t *v = json_object_get(doc, crls[i]);
                if (v != NULL) {
                        TRY(add_crl_text(c, v, source));
                }
        }
        return CF_OK;
}

static void note_ignored(struct intel_coll *c, const char *source)
{
        if (c->n_ignored < 8) {
                copy_name(c->ignored[c->n_ignored++], source);
        }
}

static CF_FN add_json(struct intel_coll *c, struct cf_slice text, const char *source)
{
        CF_CLEANUP(json_decrefp) json_t *doc = NULL;
        json_error_t err;

        doc = json_loadb((const char *)text.ptr, text.size, JSON_REJECT_DUPLICATES, &err);
        ENSURE(json_is_object(doc), CF_E_SYNTAX);
        if (json_object_get(doc, "tcbInfo") != NULL) {
                return add_pcs_response(c, text, doc, "tcbInfo", INTEL_SIGNED_TCB_INFO, source);
        }
        if (json_object_get(doc, "enclaveIdentity") != NULL) {
                return add_pcs_response(c, text, doc, "enclaveIdentity", INTEL_SIGNED_QE_IDENTITY,
                                        source);
        }
        if (json_object_get(doc, "tcb_info") != NULL ||
            json_object_get(doc, "qe_identity") != NULL) {
                return add_bundle(c, text, doc, source);
        }
        if (json_object_get(doc, "tcbLevels") != NULL && json_object_get(doc, "fmspc") != NULL) {
                return add_signed(c, INTEL_SIGNED_TCB_INFO, source, text, NULL);
        }
        if (json_object_get(doc, "tcbLevels") != NULL && json_object_get(doc, "mrsigner") != NULL) {
                return add_signed(c, INTEL_SIGNED_QE_IDENTITY, source, text, NULL);
        }
        note_ignored(c, source);
        return CF_OK;
}

static CF_FN add_blob(struct intel_coll *c, const struct attest_blob *b)
{
        struct cf_slice data = cf_slice_make(b->data, b->size), sig;
        struct cf_cursor cur = cf_cursor_make(data);
        uint8_t first = 0;
        X509_CRL *crl;
        X509 *x;

        json_skip_ws(&cur);
        if (!cf_ok(json_peek(&cur, &first))) {
                note_ignored(c, b->name);
                return CF_OK;
        }
        if (first == '{') {
                return add_json(c, data, b->name);
        }
        if (is_sig_hex_text(data, &sig)) {
                ENSURE(c->n_loose < INTEL_COLL_SIGS_MAX, CF_E_LIMIT);
                TRY(decode_sig_hex(sig, c->loose_sigs[c->n_loose]));
                copy_name(c->loose_source[c->n_loose], b->name);
                c->n_loose++;
                return CF_OK;
        }
        if (starts_with(cur, "-----BEGIN X509 CRL-----")) {
                TRY(intel_pem_crl(data, &crl));
                return add_crl(c, crl, b->name);
        }
        if (first == '-') {
                return add_pem_certs(c, data, b->name);
        }
        if (first == 0x30) {
                /* DER: a CRL or a certificate; anything else that looks like DER is refused,
                 * so a damaged CRL cannot silently disable revocation checks. */
                if (cf_ok(intel_der_crl(data, &crl))) {
                        return add_crl(c, crl, b->name);
                }
                TRY(intel_der_cert(data, &x));
                return add_cert(c, x, b->name);
        }
        note_ignored(c, b->name);
        return CF_OK;
}

/* ---- verification against the pinned root ---- */

static bool cert_cn_is(X509 *x, const char *cn)
{
        char got[INTEL_NAME_MAX];

        return cf_ok(intel_name_cn(X509_get_subject_name(x), got, sizeof(got))) &&
               strcmp(got, cn) == 0;
}

static void verify_certs(struct intel_coll *c, X509 *root)
{
        for (size_t i = 0; i < c->n_certs; i++) {
                X509 *x = c->certs[i];
                if (cert_cn_is(x, "Intel SGX Root CA")) {
                        if (!intel_cert_is_pinned_root(x)) {
                                copy_name(c->bad_root, c->cert_source[i]);
                        }
                        continue;
                }
                if (root != NULL && cert_cn_is(x, "Intel SGX TCB Signing") &&
                    cf_ok(intel_cert_signed_by(x, root))) {
                        c->signing_ok |= UINT64_C(1) << i;
                }
        }
}

static bool signed_verifies(struct intel_coll *c, struct intel_signed *s, const uint8_t sig[64])
{
        uint64_t by = 0;

        for (size_t i = 0; i < c->n_certs; i++) {
                struct cf_pkey *k = NULL;
                if (!(c->signing_ok & (UINT64_C(1) << i)) ||
                    !cf_ok(intel_cert_key(c->certs[i], &k))) {
                        continue;
                }
                if (cf_ok(intel_verify_raw(k, cf_slice_make(s->body, s->body_size), sig))) {
                        by |= UINT64_C(1) << i;
                }
                cf_pkey_free(k);
        }
        s->verified_by = by;
        return by != 0;
}

static void verify_signed(struct intel_coll *c)
{
        for (size_t i = 0; i < c->n_signed; i++) {
                struct intel_signed *s = &c->signed_items[i];
                if (s->has_sig) {
                        (void)signed_verifies(c, s, s->sig);
                        continue;
                }
                /* A split body: pair it with the loose signature that verifies it. */
                for (size_t j = 0; j < c->n_loose; j++) {
                        if (!c->loose_used[j] && signed_verifies(c, s, c->loose_sigs[j])) {
                                c->loose_used[j] = true;
                                memcpy(s->sig, c->loose_sigs[j], 64);
                                s->has_sig = true;
                                break;
                        }
                }
        }
}

static void verify_crls(struct intel_coll *c, X509 *root)
{
        for (size_t i = 0; i < c->n_crls; i++) {
                struct intel_crl *e = &c->crls[i];
                const char *cn = e->role == INTEL_CRL_PROCESSOR ? "Intel SGX PCK Processor CA"
                                                                : "Intel SGX PCK Platform CA";
                if (root == NULL) {
                        continue;
                }
                if (e->role == INTEL_CRL_ROOT) {
                        e->sig_state =
                            X509_CRL_verify(e->crl, X509_get0_pubkey(root)) == 1 ? 1 : -1;
                        continue;
                }
                for (size_t j = 0; j < c->n_certs && e->sig_state == 0; j++) {
                        X509 *ca = c->certs[j];
                        if (!cert_cn_is(ca, cn) || !cf_ok(intel_cert_signed_by(ca, root))) {
                                continue;
                        }
                        e->sig_state = X509_CRL_verify(e->crl, X509_get0_pubkey(ca)) == 1 ? 1 : -1;
                }
        }
}

cf_status intel_coll_build(const struct attest_collateral *coll, X509 *root,
                           struct intel_coll **ret)
{
        CF_CLEANUP(intel_coll_freep) struct intel_coll *c = calloc(1, sizeof(*c));

        ENSURE(c != NULL, CF_E_NOMEM);
        for (size_t i = 0; coll != NULL && i < coll->n; i++) {
                cf_status s = add_blob(c, &coll->items[i]);
                if (!cf_ok(s)) {
                        c->error = s;
                        copy_name(c->error_source, coll->items[i].name);
                        break;
                }
        }
        if (cf_ok(c->error)) {
                verify_certs(c, root);
                verify_signed(c);
                verify_crls(c, root);
        }
        *ret = TAKE_PTR(c);
        return CF_OK;
}
