/* The tpm freshness anchor: a TPM 2.0 NV counter bound to a sealed record in the data
 * directory. The protocol is described in anchor.h and docs/formats/anchor.md. */
#include "cas/anchor.h"

#include <stdio.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "crypto/crypto.h"

static const char record_label[] = "coffer-anchor-tpm-v1";
static const uint8_t record_magic[4] = {'C', 'F', 'A', 'T'};
#define RECORD_FORMAT_VERSION 1
#define RECORD_PLAIN_SIZE     (4 + 8 + 8 + 32)

/* Attributes cofferd defines its index with, and the only ones it accepts (plus WRITTEN,
 * which is state, and OWNERWRITE instead of or besides AUTHWRITE). */
#define NV_TYPE_COUNTER  ((TPMA_NV)(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT))
#define NV_ATTRS_DEFINED (NV_TYPE_COUNTER | TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA)
#define NV_ATTRS_ALLOWED (NV_ATTRS_DEFINED | TPMA_NV_OWNERWRITE | TPMA_NV_WRITTEN)

struct cas_anchor_tpm {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        ESYS_TR nv;         /* ESYS_TR_NONE until the index is known */
        ESYS_TR write_auth; /* the index itself (AUTHWRITE) or the owner hierarchy */
        TPMA_NV attributes;
};

/* ---- the record ---- */

static void put_u32be(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++) {
                p[i] = (uint8_t)(v >> (24 - 8 * i));
        }
}

static void put_u64be(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++) {
                p[i] = (uint8_t)(v >> (56 - 8 * i));
        }
}

cf_status cas_anchor_tpm_derive_key(const uint8_t data_key[CAS_ANCHOR_TPM_KEY_SIZE],
                                    uint8_t out[CAS_ANCHOR_TPM_KEY_SIZE])
{
        /* A subkey so that the record never shares a key with the store's own sealing. */
        return cf_hkdf_sha256(cf_slice_make(data_key, CAS_ANCHOR_TPM_KEY_SIZE),
                              cf_slice_make("", 0), cf_slice_str(record_label), out,
                              CAS_ANCHOR_TPM_KEY_SIZE);
}

cf_status cas_anchor_tpm_record_seal(const uint8_t key[CAS_ANCHOR_TPM_KEY_SIZE],
                                     const struct cas_anchor_tpm_record *r, struct cf_buf *out)
{
        uint8_t plain[RECORD_PLAIN_SIZE];
        uint8_t version = RECORD_FORMAT_VERSION;
        size_t start = out->size;
        cf_status s;

        put_u32be(plain, r->nv_index);
        put_u64be(plain + 4, r->counter);
        put_u64be(plain + 12, r->version);
        memcpy(plain + 20, r->owner, sizeof(r->owner));
        TRY(cf_buf_append(out, record_magic, sizeof(record_magic)));
        TRY(cf_buf_append(out, &version, 1));
        s = cf_aead_seal(key, cf_slice_str(record_label), cf_slice_make(plain, sizeof(plain)), out);
        TRY(s);
        ENSURE(out->size - start == CAS_ANCHOR_TPM_RECORD_SIZE, CF_E_INTERNAL);
        return CF_OK;
}

cf_status cas_anchor_tpm_record_open(const uint8_t key[CAS_ANCHOR_TPM_KEY_SIZE],
                                     struct cf_slice file, struct cas_anchor_tpm_record *ret)
{
        struct cf_cursor c = cf_cursor_make(file), p;
        struct cf_slice magic, sealed;
        struct cas_anchor_tpm_record r;
        struct cf_buf plain;
        uint8_t version = 0;
        cf_status s;

        TRY(cf_cursor_take(&c, sizeof(record_magic), &magic));
        ENSURE(cf_slice_eq(magic, cf_slice_make(record_magic, sizeof(record_magic))),
               CF_E_MALFORMED);
        TRY(cf_cursor_u8(&c, &version));
        ENSURE(version == RECORD_FORMAT_VERSION, CF_E_VERSION);
        TRY(cf_cursor_take(&c, CAS_ANCHOR_TPM_RECORD_SIZE - sizeof(record_magic) - 1, &sealed));
        TRY(cf_cursor_expect_end(&c));

        cf_buf_init(&plain, RECORD_PLAIN_SIZE, false);
        s = cf_aead_open(key, cf_slice_str(record_label), sealed, &plain);
        if (cf_ok(s)) {
                p = cf_cursor_make(cf_buf_slice(&plain));
                s = cf_cursor_u32be(&p, &r.nv_index);
                if (cf_ok(s)) {
                        s = cf_cursor_u64be(&p, &r.counter);
                }
                if (cf_ok(s)) {
                        s = cf_cursor_u64be(&p, &r.version);
                }
                if (cf_ok(s)) {
                        s = cf_cursor_copy(&p, r.owner, sizeof(r.owner));
                }
                if (cf_ok(s)) {
                        s = cf_cursor_expect_end(&p);
                }
        }
        cf_buf_done(&plain);
        TRY(s);
        *ret = r;
        return CF_OK;
}

/* ---- the protocol ---- */

cf_status cas_anchor_tpm_decide(bool counter_written, uint64_t counter,
                                const struct cas_anchor_tpm_record *record, uint64_t store_version,
                                bool allow_reset, char *err, size_t err_size,
                                enum cas_anchor_tpm_action *ret)
{
        unsigned long long t = counter, s = store_version;

        if (record == NULL) {
                /* An empty store holds nothing older to return to (this also covers a crash
                 * during the first anchoring, after the first increment); a non-empty one
                 * without a record is either a first use the operator asks for with --anchor-reset,
                 * or a restored copy whose record was removed. */
                if (store_version == 0 || allow_reset) {
                        *ret = CAS_ANCHOR_TPM_FIRST_USE;
                        return CF_OK;
                }
                if (counter_written) {
                        snprintf(err, err_size,
                                 "rollback detected: the TPM NV counter is at %llu but the data "
                                 "directory has no anchor record (%s) while its store is at state "
                                 "version %llu; refusing to start on a data directory this counter "
                                 "does not anchor (to anchor this data directory as it is, start "
                                 "once with --anchor-reset)",
                                 t, CAS_ANCHOR_TPM_FILE, s);
                        return cf_fail(CF_E_ROLLBACK);
                }
                snprintf(err, err_size,
                         "the data directory has no TPM anchor record (%s) and its store is at "
                         "state version %llu: a first use of the TPM anchor on an existing store, "
                         "or a restored copy whose record was removed; refusing to start. To "
                         "anchor this data directory as it is, start once with --anchor-reset",
                         CAS_ANCHOR_TPM_FILE, s);
                return cf_fail(CF_E_REFUSED);
        }
        unsigned long long c = record->counter, v = record->version;
        if (!counter_written) {
                snprintf(err, err_size,
                         "the data directory's anchor record is at TPM counter %llu but the NV "
                         "counter has never been written (the index was deleted and recreated, "
                         "or this is another TPM); refusing to start",
                         c);
                return cf_fail(CF_E_CONFLICT);
        }
        if (record->counter < counter) {
                snprintf(err, err_size,
                         "rollback detected: the TPM NV counter is at %llu but the data "
                         "directory's anchor record is at counter %llu (state version %llu; the "
                         "store is at %llu); refusing to start on an older copy of the data "
                         "directory",
                         t, c, v, s);
                return cf_fail(CF_E_ROLLBACK);
        }
        if (record->counter - counter > 1) {
                snprintf(err, err_size,
                         "the data directory's anchor record is at TPM counter %llu, ahead of "
                         "the NV counter at %llu (another TPM or NV index?); refusing to start",
                         c, t);
                return cf_fail(CF_E_CONFLICT);
        }
        if (store_version < record->version) {
                snprintf(err, err_size,
                         "rollback detected: the store is at state version %llu but the TPM "
                         "anchor (counter %llu) records version %llu; refusing to start on an "
                         "older copy of the store",
                         s, c, v);
                return cf_fail(CF_E_ROLLBACK);
        }
        *ret = record->counter == counter ? CAS_ANCHOR_TPM_ACCEPT : CAS_ANCHOR_TPM_COMPLETE;
        return CF_OK;
}

/* ---- the TPM ---- */

static cf_status tpm_fail(const char *what, TSS2_RC rc, char *err, size_t err_size)
{
        snprintf(err, err_size, "TPM: %s failed (TSS2 response code 0x%08x)", what, (unsigned)rc);
        cf_log_debug("%s", err);
        return cf_fail(CF_E_IO);
}

static cf_status tpm_connect(struct cas_anchor *a, char *err, size_t err_size)
{
        struct cas_anchor_tpm *t = calloc(1, sizeof(*t));
        TSS2_RC rc;

        ENSURE(t != NULL, CF_E_NOMEM);
        t->nv = ESYS_TR_NONE;
        a->tpm = t; /* cas_anchor_tpm_close releases whatever was set up */
        rc = Tss2_TctiLdr_Initialize(a->tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                snprintf(err, err_size,
                         "TPM: cannot open the TCTI '%s' (TSS2 response code 0x%08x)", a->tcti,
                         (unsigned)rc);
                return cf_fail(CF_E_IO);
        }
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                return tpm_fail("Esys_Initialize", rc, err, err_size);
        }
        /* A simulator may need TPM2_Startup; a started TPM answers TPM_RC_INITIALIZE, and a
         * real failure shows in the next command. */
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        cf_log_debug("TPM2_Startup: 0x%08x", (unsigned)rc);
        return CF_OK;
}

static cf_status tpm_index_exists(struct cas_anchor *a, bool *ret, char *err, size_t err_size)
{
        TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = 0;
        TSS2_RC rc;
        bool found;

        rc = Esys_GetCapability(a->tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_HANDLES, a->nv_index, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS) {
                return tpm_fail("GetCapability(handles)", rc, err, err_size);
        }
        found = cap != NULL && cap->capability == TPM2_CAP_HANDLES &&
                cap->data.handles.count >= 1 && cap->data.handles.handle[0] == a->nv_index;
        Esys_Free(cap);
        *ret = found;
        return CF_OK;
}

/* Loads the index, checks its attributes, and chooses the write authorisation. */
static cf_status tpm_load_index(struct cas_anchor *a, char *err, size_t err_size)
{
        struct cas_anchor_tpm *t = a->tpm;
        TPM2B_NV_PUBLIC *pub = NULL;
        TPM2B_NAME *name = NULL;
        TPMA_NV attrs;
        uint32_t index;
        uint16_t size;
        TSS2_RC rc;

        if (t->nv == ESYS_TR_NONE) {
                rc = Esys_TR_FromTPMPublic(t->esys, a->nv_index, ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, &t->nv);
                if (rc != TSS2_RC_SUCCESS) {
                        t->nv = ESYS_TR_NONE;
                        return tpm_fail("loading the NV index", rc, err, err_size);
                }
        }
        rc = Esys_NV_ReadPublic(t->esys, t->nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
                                &name);
        Esys_Free(name);
        if (rc != TSS2_RC_SUCCESS) {
                return tpm_fail("NV_ReadPublic", rc, err, err_size);
        }
        attrs = pub->nvPublic.attributes;
        index = pub->nvPublic.nvIndex;
        size = pub->nvPublic.dataSize;
        Esys_Free(pub);
        if (index != a->nv_index || size != 8 ||
            (attrs & TPMA_NV_TPM2_NT_MASK) != NV_TYPE_COUNTER || (attrs & ~NV_ATTRS_ALLOWED) != 0 ||
            (attrs & TPMA_NV_AUTHREAD) == 0 || (attrs & TPMA_NV_NO_DA) == 0 ||
            (attrs & (TPMA_NV_AUTHWRITE | TPMA_NV_OWNERWRITE)) == 0) {
                snprintf(err, err_size,
                         "TPM NV index 0x%08x exists but is not a counter cofferd can use "
                         "(attributes 0x%08x, size %u; expected COUNTER|AUTHREAD|AUTHWRITE or "
                         "OWNERWRITE|NO_DA); refusing to use it",
                         a->nv_index, (unsigned)attrs, (unsigned)size);
                return cf_fail(CF_E_CONFLICT);
        }
        t->attributes = attrs;
        t->write_auth = (attrs & TPMA_NV_AUTHWRITE) != 0 ? t->nv : ESYS_TR_RH_OWNER;
        return CF_OK;
}

static cf_status tpm_define(struct cas_anchor *a, char *err, size_t err_size)
{
        struct cas_anchor_tpm *t = a->tpm;
        TPM2B_AUTH auth = {.size = 0};
        TPM2B_NV_PUBLIC pub = {
            .nvPublic =
                {
                    .nvIndex = a->nv_index,
                    .nameAlg = TPM2_ALG_SHA256,
                    .attributes = NV_ATTRS_DEFINED,
                    .authPolicy = {.size = 0},
                    .dataSize = 8,
                },
        };
        TSS2_RC rc;

        rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &auth, &pub, &t->nv);
        if (rc != TSS2_RC_SUCCESS) {
                t->nv = ESYS_TR_NONE;
                return tpm_fail("NV_DefineSpace (owner hierarchy, empty owner auth)", rc, err,
                                err_size);
        }
        cf_log_info("defined TPM NV counter index 0x%08x", a->nv_index);
        return CF_OK;
}

static cf_status tpm_read(struct cas_anchor *a, uint64_t *ret, char *err, size_t err_size)
{
        struct cas_anchor_tpm *t = a->tpm;
        TPM2B_MAX_NV_BUFFER *data = NULL;
        struct cf_cursor c;
        uint64_t v = 0;
        cf_status s;
        TSS2_RC rc;

        rc = Esys_NV_Read(t->esys, t->nv, t->nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0,
                          &data);
        if (rc != TSS2_RC_SUCCESS) {
                return tpm_fail("NV_Read", rc, err, err_size);
        }
        c = cf_cursor_make(cf_slice_make(data->buffer, data->size));
        s = cf_cursor_u64be(&c, &v);
        if (cf_ok(s)) {
                s = cf_cursor_expect_end(&c);
        }
        Esys_Free(data);
        if (!cf_ok(s)) {
                snprintf(err, err_size, "TPM: the NV counter read returned a malformed value");
                return s;
        }
        *ret = v;
        return CF_OK;
}

static cf_status tpm_increment(struct cas_anchor *a, char *err, size_t err_size)
{
        struct cas_anchor_tpm *t = a->tpm;
        TSS2_RC rc;

        rc = Esys_NV_Increment(t->esys, t->write_auth, t->nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
                return tpm_fail("NV_Increment", rc, err, err_size);
        }
        return CF_OK;
}

/* ---- the record file ---- */

static cf_status owner_bytes(const struct cas_anchor *a, uint8_t out[32])
{
        return cf_hex_decode(cf_slice_str(a->owner), out, 32);
}

static cf_status write_record(struct cas_anchor *a, uint64_t counter, uint64_t version)
{
        struct cas_anchor_tpm_record r = {
            .nv_index = a->nv_index, .counter = counter, .version = version};
        struct cf_buf b;
        cf_status s;

        TRY(owner_bytes(a, r.owner));
        cf_buf_init(&b, CAS_ANCHOR_TPM_RECORD_SIZE, false);
        s = cas_anchor_tpm_record_seal(a->record_key->ptr, &r, &b);
        if (cf_ok(s)) {
                s = cf_write_file_atomic(a->path, b.ptr, b.size, 0600);
        }
        cf_buf_done(&b);
        return s;
}

static cf_status read_record(struct cas_anchor *a, struct cas_anchor_tpm_record *ret,
                             bool *ret_exists, char *err, size_t err_size)
{
        struct cas_anchor_tpm_record r;
        uint8_t owner[32];
        struct cf_buf b;
        cf_status s;

        cf_buf_init(&b, CAS_ANCHOR_TPM_RECORD_SIZE + 1, false);
        s = cf_read_file(a->path, CAS_ANCHOR_TPM_RECORD_SIZE + 1, &b);
        if (s.code == CF_E_NOT_FOUND) {
                cf_buf_done(&b);
                *ret_exists = false;
                return CF_OK;
        }
        if (cf_ok(s)) {
                s = cas_anchor_tpm_record_open(a->record_key->ptr, cf_buf_slice(&b), &r);
        }
        cf_buf_done(&b);
        if (!cf_ok(s)) {
                snprintf(err, err_size,
                         "the TPM anchor record '%s' is unreadable, tampered with, or belongs to "
                         "another cofferd (%s)",
                         a->path, cf_strerror(s));
                return s;
        }
        TRY(owner_bytes(a, owner));
        if (memcmp(owner, r.owner, sizeof(owner)) != 0 || r.nv_index != a->nv_index) {
                snprintf(err, err_size,
                         "the TPM anchor record '%s' is for NV index 0x%08x of another cofferd or "
                         "index (configured: 0x%08x); refusing to start",
                         a->path, r.nv_index, a->nv_index);
                return cf_fail(CF_E_CONFLICT);
        }
        *ret = r;
        *ret_exists = true;
        return CF_OK;
}

/* Write-ahead: the record for the next counter value is durable before the counter moves,
 * so a crash in between leaves a record exactly one ahead, which the start accepts. */
static cf_status advance(struct cas_anchor *a, uint64_t version, char *err, size_t err_size)
{
        uint64_t next, now = 0;
        cf_status s;

        /* The counter the record must name: after a failed increment its value is uncertain
         * (the command may have run with its answer lost), so ask the TPM every time. */
        TRY(tpm_read(a, &now, err, err_size));
        if (now != a->counter) {
                cf_log_debug("TPM anchor: NV counter at %llu, expected %llu",
                             (unsigned long long)now, (unsigned long long)a->counter);
                a->counter = now;
        }
        ENSURE(!cf_add_overflow(a->counter, 1, &next), CF_E_OVERFLOW);
        s = write_record(a, next, version);
        if (!cf_ok(s)) {
                snprintf(err, err_size, "cannot write the TPM anchor record '%s': %s", a->path,
                         cf_strerror(s));
                return s;
        }
        s = tpm_increment(a, err, err_size);
        /* Read back in every case: an increment whose answer was lost may have happened, and
         * an increment by anyone else would make the record stale. */
        if (cf_ok(tpm_read(a, &now, err, err_size))) {
                a->counter = now;
        }
        TRY(s);
        if (a->counter != next) {
                snprintf(err, err_size,
                         "the TPM NV counter 0x%08x is at %llu after an increment to %llu: "
                         "something else increments it; give each cofferd its own index",
                         a->nv_index, (unsigned long long)a->counter, (unsigned long long)next);
                return cf_fail(CF_E_CONFLICT);
        }
        return CF_OK;
}

cf_status cas_anchor_tpm_check(struct cas_anchor *a, uint64_t store_version, char *err,
                               size_t err_size)
{
        struct cas_anchor_tpm_record record = {0};
        enum cas_anchor_tpm_action action = CAS_ANCHOR_TPM_ACCEPT;
        bool have_record = false, exists = false, written = false;
        uint64_t counter = 0;

        if (a->record_key == NULL) {
                snprintf(err, err_size,
                         "freshness anchor %s: the data key is missing (cas_anchor_set_key was "
                         "not called), so the TPM anchor record cannot be checked",
                         a->description);
                return cf_fail(CF_E_KEY);
        }
        TRY(read_record(a, &record, &have_record, err, err_size));
        if (a->tpm == NULL) {
                TRY(tpm_connect(a, err, err_size));
        }
        TRY(tpm_index_exists(a, &exists, err, err_size));
        if (exists) {
                TRY(tpm_load_index(a, err, err_size));
                written = (a->tpm->attributes & TPMA_NV_WRITTEN) != 0;
                if (written) {
                        TRY(tpm_read(a, &counter, err, err_size));
                }
        }
        TRY(cas_anchor_tpm_decide(written, counter, have_record ? &record : NULL, store_version,
                                  a->reset, err, err_size, &action));
        switch (action) {
        case CAS_ANCHOR_TPM_FIRST_USE:
                if (!exists) {
                        TRY(tpm_define(a, err, err_size));
                        TRY(tpm_load_index(a, err, err_size));
                }
                if (!written) {
                        /* A new counter starts at the highest value any counter of this TPM
                         * has had, so its value is only known after the first increment. */
                        TRY(tpm_increment(a, err, err_size));
                        TRY(tpm_read(a, &counter, err, err_size));
                }
                cf_log_info("TPM anchor: NV counter 0x%08x at %llu, first use at store version "
                            "%llu",
                            a->nv_index, (unsigned long long)counter,
                            (unsigned long long)store_version);
                a->counter = counter;
                if (cf_ok(write_record(a, counter, store_version))) {
                        break;
                }
                snprintf(err, err_size, "cannot write the TPM anchor record '%s'", a->path);
                return cf_fail(CF_E_IO);
        case CAS_ANCHOR_TPM_COMPLETE:
                cf_log_info("TPM anchor: completing an interrupted write (record at counter "
                            "%llu, NV counter at %llu)",
                            (unsigned long long)record.counter, (unsigned long long)counter);
                TRY(tpm_increment(a, err, err_size));
                TRY(tpm_read(a, &a->counter, err, err_size));
                if (a->counter != record.counter) {
                        snprintf(err, err_size,
                                 "the TPM NV counter 0x%08x is at %llu after completing the "
                                 "write to %llu: something else increments it",
                                 a->nv_index, (unsigned long long)a->counter,
                                 (unsigned long long)record.counter);
                        return cf_fail(CF_E_CONFLICT);
                }
                break;
        case CAS_ANCHOR_TPM_ACCEPT:
                a->counter = counter;
                break;
        }
        if (have_record && store_version > record.version) {
                cf_log_info("TPM anchor at version %llu, store at %llu (a stop within the %d ms "
                            "batching window); advancing the anchor",
                            (unsigned long long)record.version, (unsigned long long)store_version,
                            CAS_ANCHOR_WINDOW_MS);
                TRY(advance(a, store_version, err, err_size));
        }
        return CF_OK;
}

cf_status cas_anchor_tpm_write(struct cas_anchor *a, uint64_t version)
{
        /* Room for the record path plus the longest message around it. */
        char err[sizeof(a->path) + 256] = "";
        cf_status s;

        ENSURE(a->tpm != NULL && a->record_key != NULL, CF_E_INTERNAL);
        s = advance(a, version, err, sizeof(err));
        if (!cf_ok(s)) {
                /* The writer logs the failure; this says which TPM step failed. */
                cf_log_warning("TPM anchor: %s", err);
        }
        return s;
}

void cas_anchor_tpm_close(struct cas_anchor *a)
{
        struct cas_anchor_tpm *t = a->tpm;

        if (t != NULL) {
                if (t->esys != NULL) {
                        if (t->nv != ESYS_TR_NONE) {
                                /* Only frees ESAPI's handle object; the index stays. */
                                (void)Esys_TR_Close(t->esys, &t->nv);
                        }
                        Esys_Finalize(&t->esys);
                }
                if (t->tcti != NULL) {
                        Tss2_TctiLdr_Finalize(&t->tcti);
                }
                free(t);
                a->tpm = NULL;
        }
        a->record_key = cf_secret_free(a->record_key);
}
