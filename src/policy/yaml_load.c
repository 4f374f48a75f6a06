/* YAML -> jansson tree, with a position for every node.
 *
 * libyaml's event parser is driven by hand (not its document loader) so that anchors,
 * aliases, foreign tags and extra documents are refused before they build anything, the
 * nesting limit holds before recursing, and scalars get the small, predictable typing of
 * docs/policy.md instead of YAML 1.1's (where "no", "0o17" and "1_000" are not strings). */
#include "policy/policy_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "base/codec.h"
#include "base/log.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
/* Large enough for any decimal int64 with its sign. */
#define INT_TEXT_MAX 21

struct yl {
        yaml_parser_t parser;
        struct policy_locs *locs;
        struct policy_errors *errs;
        bool soft; /* a soft error was recorded */
};

void policy_errors_add(struct policy_errors *errs, const char *location, const char *fmt, ...)
{
        va_list ap;
        struct policy_error *e;

        if (errs->n >= POLICY_ERRORS_MAX) {
                errs->truncated = true;
                return;
        }
        e = &errs->items[errs->n++];
        if (snprintf(e->location, sizeof(e->location), "%s", location) < 0) {
                e->location[0] = '\0';
        }
        va_start(ap, fmt);
        if (vsnprintf(e->message, sizeof(e->message), fmt, ap) < 0) {
                e->message[0] = '\0';
        }
        va_end(ap);
}

void policy_locs_done(struct policy_locs *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].key);
        }
        free(l->items);
        *l = (struct policy_locs){0};
}

const struct policy_loc *policy_locs_find(const struct policy_locs *l, const json_t *parent,
                                          const char *key, size_t index)
{
        for (size_t i = l->n; i > 0; i--) {
                const struct policy_loc *e = &l->items[i - 1];
                if (e->parent != parent) {
                        continue;
                }
                if (key != NULL ? (e->key != NULL && strcmp(e->key, key) == 0)
                                : (e->key == NULL && e->index == index)) {
                        return e;
                }
        }
        return NULL;
}

static uint32_t mark_u32(size_t v)
{
        return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)(v + 1);
}

static cf_status locs_add(struct policy_locs *l, const json_t *parent, const char *key,
                          size_t index, const yaml_mark_t *key_mark, const yaml_mark_t *mark)
{
        struct policy_loc *e;

        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct policy_loc *items = reallocarray(l->items, cap, sizeof(*items));
                ENSURE(items != NULL, CF_E_NOMEM);
                l->items = items;
                l->cap = cap;
        }
        e = &l->items[l->n];
        *e = (struct policy_loc){.parent = parent, .index = index};
        if (key != NULL) {
                e->key = strdup(key);
                ENSURE(e->key != NULL, CF_E_NOMEM);
        }
        if (key_mark != NULL) {
                e->key_line = mark_u32(key_mark->line);
                e->key_col = mark_u32(key_mark->column);
        }
        e->line = mark_u32(mark->line);
        e->col = mark_u32(mark->column);
        l->n++;
        return CF_OK;
}

static void err_at(struct yl *y, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(struct yl *y, const yaml_mark_t *m, const char *fmt, ...)
{
        char loc[64], msg[256];
        va_list ap;

        snprintf(loc, sizeof(loc), "line %u, column %u", mark_u32(m->line), mark_u32(m->column));
        va_start(ap, fmt);
        if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) {
                msg[0] = '\0';
        }
        va_end(ap);
        policy_errors_add(y->errs, loc, "%s", msg);
}

static cf_status next_event(struct yl *y, yaml_event_t *ev)
{
        if (yaml_parser_parse(&y->parser, ev)) {
                return CF_OK;
        }
        if (y->parser.error == YAML_MEMORY_ERROR) {
                return cf_fail(CF_E_NOMEM);
        }
        const char *problem = y->parser.problem ? y->parser.problem : "unknown error";
        if (y->parser.context != NULL) {
                err_at(y, &y->parser.problem_mark, "YAML syntax error: %s %s", problem,
                       y->parser.context);
        } else {
                err_at(y, &y->parser.problem_mark, "YAML syntax error: %s", problem);
        }
        return cf_fail(CF_E_SYNTAX);
}

static cf_status refuse_anchor(struct yl *y, const yaml_mark_t *m)
{
        err_at(y, m, "YAML anchors and aliases are not supported");
        return cf_fail(CF_E_SYNTAX);
}

/* Tags: only the standard ones, and only where they agree with the node's kind. Returns
 * the suffix after "tag:yaml.org,2002:" (or "" for none and for the non-specific "!"). */
static cf_status check_tag(struct yl *y, const yaml_char_t *tag, const yaml_mark_t *m,
                           const char *const *allowed, const char **ret)
{
        char esc[80];
        const char *t = (const char *)tag;

        if (t == NULL || strcmp(t, "!") == 0) {
                *ret = "";
                return CF_OK;
        }
        if (strncmp(t, TAG_PREFIX, strlen(TAG_PREFIX)) == 0) {
                const char *suffix = t + strlen(TAG_PREFIX);
                for (size_t i = 0; allowed[i] != NULL; i++) {
                        if (strcmp(suffix, allowed[i]) == 0) {
                                *ret = suffix;
                                return CF_OK;
                        }
                }
        }
        err_at(y, m, "YAML tag %s is not supported here",
               cf_log_escape(t, strlen(t), esc, sizeof(esc)));
        return cf_fail(CF_E_SYNTAX);
}

static bool is_decimal(const char *s, size_t n)
{
        size_t i = 0;

        if (n > 0 && s[0] == '-') {
                i = 1;
        }
        if (i == n) {
                return false;
        }
        for (; i < n; i++) {
                if (s[i] < '0' || s[i] > '9') {
                        return false;
                }
        }
        return true;
}

/* Parses a decimal integer into a json integer; NULL (with a soft error) when out of range. */
static json_t *make_int(struct yl *y, const char *s, size_t n, const yaml_mark_t *m, bool *nomem)
{
        char digits[INT_TEXT_MAX + 1];
        bool neg = s[0] == '-';
        uint64_t mag;

        if (n > INT_TEXT_MAX ||
            !cf_ok(cf_slice_to_cstr(cf_slice_make(s + neg, n - neg), digits, sizeof(digits))) ||
            !cf_ok(cf_parse_u64(digits, 0, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX,
                                &mag))) {
                err_at(y, m, "integer out of range");
                y->soft = true;
                return json_null();
        }
        json_t *j = json_integer(neg ? (json_int_t)(0 - mag) : (json_int_t)mag);
        *nomem = j == NULL;
        return j;
}

static cf_status build_scalar(struct yl *y, const yaml_event_t *ev, json_t **ret)
{
        static const char *const allowed[] = {"str", "null", "bool", "int", NULL};
        const char *s = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        const yaml_mark_t *m = &ev->start_mark;
        const char *tag;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        bool nomem = false;
        json_t *j;

        if (ev->data.scalar.anchor != NULL) {
                return refuse_anchor(y, m);
        }
        TRY(check_tag(y, ev->data.scalar.tag, m, allowed, &tag));
        if (memchr(s, 0, n) != NULL) {
                err_at(y, m, "strings must not contain NUL bytes");
                y->soft = true;
                *ret = json_null();
                return CF_OK;
        }
        bool is_null = n == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0;
        bool is_bool = strcmp(s, "true") == 0 || strcmp(s, "false") == 0;
        bool is_int = is_decimal(s, n);

        if (strcmp(tag, "str") == 0 || (tag[0] == '\0' && !plain)) {
                j = json_stringn(s, n);
                nomem = j == NULL;
        } else if (strcmp(tag, "null") == 0 || (tag[0] == '\0' && is_null)) {
                if (!is_null) {
                        err_at(y, m, "a !!null value must be empty, null or ~");
                        return cf_fail(CF_E_SYNTAX);
                }
                j = json_null();
        } else if (strcmp(tag, "bool") == 0 || (tag[0] == '\0' && is_bool)) {
                if (!is_bool) {
                        err_at(y, m, "a !!bool value must be true or false");
                        return cf_fail(CF_E_SYNTAX);
                }
                j = json_boolean(s[0] == 't');
        } else if (strcmp(tag, "int") == 0 || (tag[0] == '\0' && is_int)) {
                if (!is_int) {
                        err_at(y, m, "a !!int value must be a decimal integer");
                        return cf_fail(CF_E_SYNTAX);
                }
                j = make_int(y, s, n, m, &nomem);
        } else {
                j = json_stringn(s, n);
                nomem = j == NULL;
        }
        ENSURE(!nomem, CF_E_NOMEM);
        *ret = j;
        return CF_OK;
}

static cf_status build(struct yl *y, const yaml_event_t *ev, unsigned depth, json_t **ret);

/* Reads one child event and builds its node; *ret_end is set at the container's end. */
static cf_status build_child(struct yl *y, unsigned depth, yaml_event_type_t end, bool *ret_end,
                             yaml_mark_t *ret_mark, json_t **ret)
{
        yaml_event_t ev;
        cf_status s;

        TRY(next_event(y, &ev));
        *ret_mark = ev.start_mark;
        if (ev.type == end) {
                yaml_event_delete(&ev);
                *ret_end = true;
                return CF_OK;
        }
        *ret_end = false;
        s = build(y, &ev, depth, ret);
        yaml_event_delete(&ev);
        return s;
}

/* Reads a mapping key. Keys are always names: a plain key such as 1 or true keeps its
 * text. *ret stays NULL (with a soft error) for a key that is a mapping or a list. */
static cf_status read_key(struct yl *y, unsigned depth, bool *ret_end, yaml_mark_t *ret_mark,
                          char **ret)
{
        static const char *const allowed[] = {"str", NULL};
        yaml_event_t ev;
        cf_status s = CF_OK;
        const char *tag;

        TRY(next_event(y, &ev));
        *ret_mark = ev.start_mark;
        *ret_end = ev.type == YAML_MAPPING_END_EVENT;
        if (ev.type == YAML_SCALAR_EVENT) {
                const char *text = (const char *)ev.data.scalar.value;
                if (ev.data.scalar.anchor != NULL) {
                        s = refuse_anchor(y, &ev.start_mark);
                } else if (s = check_tag(y, ev.data.scalar.tag, &ev.start_mark, allowed, &tag),
                           !cf_ok(s)) {
                        /* s is the error */
                } else if (memchr(text, 0, ev.data.scalar.length) != NULL) {
                        err_at(y, &ev.start_mark, "strings must not contain NUL bytes");
                        y->soft = true;
                } else {
                        *ret = strdup(text);
                        s = *ret != NULL ? CF_OK : cf_fail(CF_E_NOMEM);
                }
        } else if (!*ret_end) {
                /* Build and drop the node, so the event stream stays in step. */
                json_t *j = NULL;
                s = build(y, &ev, depth, &j);
                json_decref(j);
                if (cf_ok(s)) {
                        err_at(y, &ev.start_mark, "mapping keys must be strings");
                        y->soft = true;
                }
        }
        yaml_event_delete(&ev);
        return s;
}

static cf_status build_mapping(struct yl *y, json_t *obj, unsigned depth)
{
        for (;;) {
                CF_AUTOFREE char *key = NULL;
                CF_CLEANUP(json_decrefp) json_t *v = NULL;
                yaml_mark_t km, vm;
                bool end;
                char esc[80];

                TRY(read_key(y, depth, &end, &km, &key));
                if (end) {
                        return CF_OK;
                }
                TRY(build_child(y, depth, YAML_MAPPING_END_EVENT, &end, &vm, &v));
                ENSURE(!end, CF_E_SYNTAX); /* libyaml always pairs keys and values */
                if (key == NULL) {
                        continue;
                }
                if (json_object_get(obj, key) != NULL) {
                        err_at(y, &km, "duplicate key %s",
                               cf_log_escape(key, strlen(key), esc, sizeof(esc)));
                        y->soft = true;
                        continue;
                }
                TRY(locs_add(y->locs, obj, key, 0, &km, &vm));
                ENSURE(json_object_set(obj, key, v) == 0, CF_E_NOMEM);
        }
}

static cf_status build_sequence(struct yl *y, json_t *arr, unsigned depth)
{
        for (size_t i = 0;; i++) {
                CF_CLEANUP(json_decrefp) json_t *v = NULL;
                yaml_mark_t vm;
                bool end;

                TRY(build_child(y, depth, YAML_SEQUENCE_END_EVENT, &end, &vm, &v));
                if (end) {
                        return CF_OK;
                }
                TRY(locs_add(y->locs, arr, NULL, i, NULL, &vm));
                ENSURE(json_array_append(arr, v) == 0, CF_E_NOMEM);
        }
}

/* Builds the node that starts with ev (owned by the caller); depth counts the containers
 * enclosing it. */
static cf_status build(struct yl *y, const yaml_event_t *ev, unsigned depth, json_t **ret)
{
        static const char *const map_tags[] = {"map", NULL};
        static const char *const seq_tags[] = {"seq", NULL};
        CF_CLEANUP(json_decrefp) json_t *j = NULL;
        const char *tag;

        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                return build_scalar(y, ev, ret);
        case YAML_ALIAS_EVENT:
                return refuse_anchor(y, &ev->start_mark);
        case YAML_MAPPING_START_EVENT:
                if (ev->data.mapping_start.anchor != NULL) {
                        return refuse_anchor(y, &ev->start_mark);
                }
                TRY(check_tag(y, ev->data.mapping_start.tag, &ev->start_mark, map_tags, &tag));
                if (depth + 1 > POLICY_DEPTH_MAX) {
                        err_at(y, &ev->start_mark, "nesting deeper than %d levels",
                               POLICY_DEPTH_MAX);
                        return cf_fail(CF_E_LIMIT);
                }
                j = json_object();
                ENSURE(j != NULL, CF_E_NOMEM);
                TRY(build_mapping(y, j, depth + 1));
                break;
        case YAML_SEQUENCE_START_EVENT:
                if (ev->data.sequence_start.anchor != NULL) {
                        return refuse_anchor(y, &ev->start_mark);
                }
                TRY(check_tag(y, ev->data.sequence_start.tag, &ev->start_mark, seq_tags, &tag));
                if (depth + 1 > POLICY_DEPTH_MAX) {
                        err_at(y, &ev->start_mark, "nesting deeper than %d levels",
                               POLICY_DEPTH_MAX);
                        return cf_fail(CF_E_LIMIT);
                }
                j = json_array();
                ENSURE(j != NULL, CF_E_NOMEM);
                TRY(build_sequence(y, j, depth + 1));
                break;
        default:
                err_at(y, &ev->start_mark, "unexpected YAML event");
                return cf_fail(CF_E_SYNTAX);
        }
        *ret = TAKE_PTR(j);
        return CF_OK;
}

static cf_status expect_event(struct yl *y, yaml_event_type_t type, yaml_event_t *ev)
{
        TRY(next_event(y, ev));
        if (ev->type != type) {
                err_at(y, &ev->start_mark, "unexpected YAML structure");
                yaml_event_delete(ev);
                return cf_fail(CF_E_SYNTAX);
        }
        return CF_OK;
}

static cf_status load(struct yl *y, json_t **ret)
{
        CF_CLEANUP(json_decrefp) json_t *root = NULL;
        yaml_event_t ev;
        cf_status s;

        TRY(expect_event(y, YAML_STREAM_START_EVENT, &ev));
        yaml_event_delete(&ev);
        TRY(next_event(y, &ev));
        if (ev.type == YAML_STREAM_END_EVENT) {
                err_at(y, &ev.start_mark, "the document is empty");
                yaml_event_delete(&ev);
                return cf_fail(CF_E_SYNTAX);
        }
        if (ev.type != YAML_DOCUMENT_START_EVENT) {
                err_at(y, &ev.start_mark, "unexpected YAML structure");
                yaml_event_delete(&ev);
                return cf_fail(CF_E_SYNTAX);
        }
        yaml_event_delete(&ev);

        TRY(next_event(y, &ev));
        y->locs->root_line = mark_u32(ev.start_mark.line);
        y->locs->root_col = mark_u32(ev.start_mark.column);
        s = build(y, &ev, 0, &root);
        yaml_event_delete(&ev);
        TRY(s);

        TRY(expect_event(y, YAML_DOCUMENT_END_EVENT, &ev));
        yaml_event_delete(&ev);
        TRY(next_event(y, &ev));
        if (ev.type != YAML_STREAM_END_EVENT) {
                err_at(y, &ev.start_mark, "multiple YAML documents are not supported");
                yaml_event_delete(&ev);
                return cf_fail(CF_E_SYNTAX);
        }
        yaml_event_delete(&ev);
        *ret = TAKE_PTR(root);
        return CF_OK;
}

cf_status policy_yaml_load(struct cf_slice text, json_t **ret, struct policy_locs *locs,
                           struct policy_errors *errs)
{
        struct yl y = {.locs = locs, .errs = errs};
        json_t *root = NULL;
        cf_status s;

        ENSURE(text.size <= POLICY_DOC_MAX, CF_E_LIMIT);
        ENSURE(yaml_parser_initialize(&y.parser), CF_E_NOMEM);
        yaml_parser_set_input_string(&y.parser, text.ptr, text.size);
        s = load(&y, &root);
        yaml_parser_delete(&y.parser);
        TRY(s);
        *ret = root;
        if (y.soft) {
                return cf_fail(CF_E_SCHEMA);
        }
        return CF_OK;
}
