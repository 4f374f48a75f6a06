/* Internals shared by the policy module's own files and its unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/cursor.h"
#include "base/status.h"
#include "policy/policy.h"

/* ---- source locations of a YAML document ------------------------------------------------
 *
 * jansson nodes carry no positions, and null/true/false are shared singletons, so a
 * position is recorded per (container, member): the key (objects) or index (lists) under
 * which a node sits. Containers are unique, so the pair identifies one node. */
struct policy_loc {
        const json_t *parent;
        char *key;                  /* owned; NULL for list items */
        size_t index;               /* list items */
        uint32_t key_line, key_col; /* 1-based position of the key (objects) */
        uint32_t line, col;         /* 1-based position of the value */
};

struct policy_locs {
        struct policy_loc *items;
        size_t n, cap;
        uint32_t root_line, root_col;
};

void policy_locs_done(struct policy_locs *l);

/* The most recent record for a member (key for objects, index for lists), or NULL. The
 * search runs backwards because a freed container's address may be reused later in the
 * load; the newest record is then the right one. */
const struct policy_loc *policy_locs_find(const struct policy_locs *l, const json_t *parent,
                                          const char *key, size_t index);

/* Loads YAML text into a jansson tree (scalar typing as in docs/policy.md), recording
 * positions into locs (which the caller initialised to zero and frees with
 * policy_locs_done, also on failure). Errors go to errs:
 *  - CF_E_SYNTAX: a syntax error, an anchor or alias, an unsupported tag, several
 *    documents or none; *ret is untouched.
 *  - CF_E_LIMIT: nesting deeper than POLICY_DEPTH_MAX; *ret is untouched.
 *  - CF_E_SCHEMA: "soft" errors (duplicate keys, non-scalar keys, NUL bytes, integers out
 *    of range) were recorded but a tree was still built and is returned in *ret, so that
 *    validation can report the remaining errors as well.
 *  - CF_E_NOMEM. */
CF_FN policy_yaml_load(struct cf_slice text, json_t **ret, struct policy_locs *locs,
                       struct policy_errors *errs);

/* Records one error (formatted message) unless the list is full, in which case it sets
 * errs->truncated. */
__attribute__((format(printf, 3, 4))) void
policy_errors_add(struct policy_errors *errs, const char *location, const char *fmt, ...);

/* ---- placeholders ---------------------------------------------------------------------- */

#define POLICY_PLACEHOLDER_PREFIX "$$coffer:"
#define POLICY_PLACEHOLDER_SUFFIX "$$"

enum policy_ph {
        POLICY_PH_END = 0,   /* no more placeholders; *ret_literal is the rest */
        POLICY_PH_FOUND,     /* *ret_literal precedes a placeholder named *ret_name */
        POLICY_PH_MALFORMED, /* "$$coffer:" that does not start a well-formed placeholder */
};

/* Scans c for the next placeholder. Literal text before it goes to *ret_literal; on
 * POLICY_PH_FOUND the cursor is left after the closing "$$". Placeholders never overlap:
 * scanning resumes after the previous one. Both slices borrow from c's input; the name may
 * carry an encoding (NAME:ENCODING, see policy_placeholder_split). */
enum policy_ph policy_placeholder_next(struct cf_cursor *c, struct cf_slice *ret_literal,
                                       struct cf_slice *ret_name);

/* True for a valid secret name: [A-Za-z0-9_.-]{1,64}. */
bool policy_secret_name_ok(struct cf_slice name);
