/* Test helper: the rows of ../shared/vectors/expected.tsv, with their files loaded and their
 * mutations applied, for the attestation verifier tests. Not part of any library. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/checks.h"

#define VEC_MAX_ROWS 256

struct vec_row {
        char case_id[96];
        char platform[8];
        char evidence_file[160];
        char collateral_files[2048];
        char verify_time[32];
        int64_t verify_at;              /* verify_time parsed */
        bool expect_valid;
        char expected_tcb_status[48];
        char expected_advisories[512];
        char notes[1024];
        char mutation[512];
        int expected_stepping;          /* from opt:expected_stepping=N, else -1 */
};

/* Directory of the vectors (COFFER_VECTORS), or NULL when absent: tests then skip. */
const char *vec_dir(void);
/* Loads every row of expected.tsv whose platform matches (NULL = all). Returns the count, or
 * -1 when the file is absent or malformed (the message is printed). */
int vec_load_rows(const char *platform, struct vec_row *rows, size_t max);
/* Loads a file relative to the vectors dir; .hex files under snp/ are hex-decoded (see the
 * vectors README). Caller frees *ret. Returns false when missing. */
bool vec_load_file(const char *rel, uint8_t **ret, size_t *ret_size);
/* Loads the row's evidence and collateral (in the listed order, named by their relative
 * path) and applies its byte mutations. Returns false on any load/mutation error. */
bool vec_load_case(const struct vec_row *row, uint8_t **evidence, size_t *evidence_size,
                   struct attest_collateral *coll);
/* Applies "xor|set|add:TARGET:OFFSET:VALUE" edits joined by ';' to one buffer named target
 * ("evidence" or a collateral path). opt: entries are ignored here. Returns false on a bad
 * edit or an offset out of range. */
bool vec_apply_mutation(const char *mutation, const char *target, uint8_t *data, size_t size);
