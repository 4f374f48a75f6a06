#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/io.h"

const char *vec_dir(void)
{
        const char *d = secure_getenv("COFFER_VECTORS");
        struct stat st;
        char path[4096];

        if (d == NULL) {
                return NULL;
        }
        snprintf(path, sizeof(path), "%s/expected.tsv", d);
        return stat(path, &st) == 0 ? d : NULL;
}

static bool split_tab(char **p, char *out, size_t out_size)
{
        char *tab = strchr(*p, '\t');
        size_t n = tab ? (size_t)(tab - *p) : strlen(*p);

        if (n >= out_size) {
                return false;
        }
        memcpy(out, *p, n);
        out[n] = '\0';
        *p += n + (tab ? 1 : 0);
        return true;
}

static void parse_stepping(struct vec_row *r)
{
        const char *o = strstr(r->mutation, "opt:expected_stepping=");
        uint64_t v;
        char num[16] = { 0 };

        r->expected_stepping = -1;
        if (o == NULL) {
                return;
        }
        o += strlen("opt:expected_stepping=");
        for (size_t i = 0; i + 1 < sizeof(num) && o[i] >= '0' && o[i] <= '9'; i++) {
                num[i] = o[i];
        }
        if (cf_ok(cf_parse_u64(num, 0, 255, &v))) {
                r->expected_stepping = (int)v;
        }
}

int vec_load_rows(const char *platform, struct vec_row *rows, size_t max)
{
        char path[4096];
        struct cf_buf b;
        char *line, *save = NULL;
        int n = 0;
        const char *dir = vec_dir();

        if (dir == NULL) {
                return -1;
        }
        snprintf(path, sizeof(path), "%s/expected.tsv", dir);
        cf_buf_init(&b, 1 << 22, false);
        if (!cf_ok(cf_read_file(path, 1 << 22, &b))) {
                cf_buf_done(&b);
                return -1;
        }
        line = strtok_r((char *)b.ptr, "\n", &save); /* header */
        while ((line = strtok_r(NULL, "\n", &save)) != NULL && (size_t)n < max) {
                struct vec_row r = { 0 };
                char sig[16], *p = line;
                bool ok = split_tab(&p, r.case_id, sizeof(r.case_id)) &&
                          split_tab(&p, r.platform, sizeof(r.platform)) &&
                          split_tab(&p, r.evidence_file, sizeof(r.evidence_file)) &&
                          split_tab(&p, r.collateral_files, sizeof(r.collateral_files)) &&
                          split_tab(&p, r.verify_time, sizeof(r.verify_time)) &&
                          split_tab(&p, sig, sizeof(sig)) &&
                          split_tab(&p, r.expected_tcb_status, sizeof(r.expected_tcb_status)) &&
                          split_tab(&p, r.expected_advisories, sizeof(r.expected_advisories)) &&
                          split_tab(&p, r.notes, sizeof(r.notes)) &&
                          split_tab(&p, r.mutation, sizeof(r.mutation));
                if (!ok || !cf_ok(cf_parse_rfc3339(r.verify_time, &r.verify_at))) {
                        fprintf(stderr, "vectors: malformed row %d\n", n + 2);
                        cf_buf_done(&b);
                        return -1;
                }
                r.expect_valid = strcmp(sig, "valid") == 0;
                parse_stepping(&r);
                if (platform == NULL || strcmp(platform, r.platform) == 0) {
                        rows[n++] = r;
                }
        }
        cf_buf_done(&b);
        return n;
}

bool vec_load_file(const char *rel, uint8_t **ret, size_t *ret_size)
{
        char path[4096];
        struct cf_buf b, dec;
        size_t len = strlen(rel);

        snprintf(path, sizeof(path), "%s/%s", vec_dir(), rel);
        cf_buf_init(&b, 16u << 20, false);
        if (!cf_ok(cf_read_file(path, 16u << 20, &b))) {
                cf_buf_done(&b);
                return false;
        }
        if (len > 4 && strcmp(rel + len - 4, ".hex") == 0 && strncmp(rel, "snp/", 4) == 0) {
                size_t n = b.size;
                while (n > 0 && (b.ptr[n - 1] == '\n' || b.ptr[n - 1] == '\r' ||
                                 b.ptr[n - 1] == ' ')) {
                        n--;
                }
                cf_buf_init(&dec, 16u << 20, false);
                if (!cf_ok(cf_hex_decode_buf(cf_slice_make(b.ptr, n), &dec))) {
                        cf_buf_done(&b);
                        cf_buf_done(&dec);
                        return false;
                }
                cf_buf_done(&b);
                b = dec;
        }
        *ret = cf_buf_steal(&b, ret_size);
        return true;
}

static bool apply_one(const char *edit, const char *target, uint8_t *data, size_t size)
{
        char op[8], tgt[256], off[32], val[32];
        const char *p = edit;
        uint64_t offset, value;
        char *outs[4] = { op, tgt, off, val };
        size_t caps[4] = { sizeof(op), sizeof(tgt), sizeof(off), sizeof(val) };

        for (int i = 0; i < 4; i++) {
                const char *end = i < 3 ? strchr(p, ':') : p + strlen(p);
                size_t n;
                if (end == NULL) {
                        return false;
                }
                n = (size_t)(end - p);
                if (n >= caps[i]) {
                        return false;
                }
                memcpy(outs[i], p, n);
                outs[i][n] = '\0';
                p = end + (i < 3 ? 1 : 0);
        }
        if (strcmp(tgt, target) != 0) {
                return true; /* an edit of another buffer */
        }
        {
                struct cf_buf hb;
                bool ok;
                char hex[40];
                const char *o = strncmp(off, "0x", 2) == 0 ? off + 2 : off;
                size_t ol = strlen(o);
                if (ol == 0 || ol > 16) {
                        return false;
                }
                /* OFFSET is hexadecimal; left-pad to 16 digits and decode as big-endian. */
                memset(hex, '0', 16);
                memcpy(hex + 16 - ol, o, ol);
                cf_buf_init(&hb, 16, false);
                ok = cf_ok(cf_hex_decode_buf(cf_slice_make(hex, 16), &hb));
                offset = 0;
                for (size_t i = 0; ok && i < 8; i++) {
                        offset = offset << 8 | hb.ptr[i];
                }
                cf_buf_done(&hb);
                if (!ok) {
                        return false;
                }
        }
        if (strncmp(val, "0x", 2) == 0) {
                uint8_t v1;
                char two[3] = { '0', '0', 0 };
                size_t vl = strlen(val + 2);
                if (vl == 0 || vl > 2) {
                        return false;
                }
                memcpy(two + 2 - vl, val + 2, vl);
                if (!cf_ok(cf_hex_decode(cf_slice_make(two, 2), &v1, 1))) {
                        return false;
                }
                value = v1;
        } else if (!cf_ok(cf_parse_u64(val, 0, 255, &value))) {
                return false;
        }
        if (offset >= size) {
                return false;
        }
        if (strcmp(op, "xor") == 0) {
                data[offset] ^= (uint8_t)value;
        } else if (strcmp(op, "set") == 0) {
                data[offset] = (uint8_t)value;
        } else if (strcmp(op, "add") == 0) {
                data[offset] = (uint8_t)(data[offset] + value);
        } else {
                return false;
        }
        return true;
}

bool vec_apply_mutation(const char *mutation, const char *target, uint8_t *data, size_t size)
{
        char copy[512], *save = NULL, *edit;

        if (strcmp(mutation, "-") == 0) {
                return true;
        }
        if (strlen(mutation) >= sizeof(copy)) {
                return false;
        }
        memcpy(copy, mutation, strlen(mutation) + 1);
        for (edit = strtok_r(copy, ";", &save); edit; edit = strtok_r(NULL, ";", &save)) {
                if (strncmp(edit, "opt:", 4) == 0) {
                        continue;
                }
                if (!apply_one(edit, target, data, size)) {
                        return false;
                }
        }
        return true;
}

bool vec_load_case(const struct vec_row *row, uint8_t **evidence, size_t *evidence_size,
                   struct attest_collateral *coll)
{
        char list[2048], *save = NULL, *f;

        if (!vec_load_file(row->evidence_file, evidence, evidence_size)) {
                return false;
        }
        if (!vec_apply_mutation(row->mutation, "evidence", *evidence, *evidence_size)) {
                free(*evidence);
                return false;
        }
        attest_collateral_init(coll);
        if (strcmp(row->collateral_files, "-") == 0) {
                return true;
        }
        memcpy(list, row->collateral_files, strlen(row->collateral_files) + 1);
        for (f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
                uint8_t *d;
                size_t n;
                bool ok = vec_load_file(f, &d, &n) && vec_apply_mutation(row->mutation, f, d, n) &&
                          cf_ok(attest_collateral_add(coll, f, d, n));
                if (!ok) {
                        attest_collateral_done(coll);
                        free(*evidence);
                        return false;
                }
                free(d);
        }
        return true;
}
