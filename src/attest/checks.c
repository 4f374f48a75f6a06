#include "attest/checks.h"

#include <stdlib.h>
#include <string.h>

static const char *const g_platforms[] = {
        [ATTEST_SIM] = "sim",
        [ATTEST_SGX] = "sgx",
        [ATTEST_TDX] = "tdx",
        [ATTEST_SNP] = "snp",
};

const char *attest_platform_name(enum attest_platform p)
{
        if ((size_t)p >= sizeof(g_platforms) / sizeof(g_platforms[0])) {
                return NULL;
        }
        return g_platforms[p];
}

cf_status attest_platform_parse(const char *name, enum attest_platform *ret)
{
        for (size_t i = 1; i < sizeof(g_platforms) / sizeof(g_platforms[0]); i++) {
                if (strcmp(name, g_platforms[i]) == 0) {
                        *ret = (enum attest_platform)i;
                        return CF_OK;
                }
        }
        return cf_fail(CF_E_UNSUPPORTED);
}

void attest_checks_init(struct attest_checks *l)
{
        *l = (struct attest_checks){ 0 };
}

void attest_checks_done(struct attest_checks *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].name);
                free(l->items[i].expected);
                free(l->items[i].actual);
        }
        free(l->items);
        *l = (struct attest_checks){ 0 };
}

static char *copy_capped(const char *s)
{
        size_t n;
        char *r;

        if (s == NULL) {
                s = "";
        }
        n = strnlen(s, ATTEST_CHECK_VALUE_MAX + 1);
        if (n <= ATTEST_CHECK_VALUE_MAX) {
                return strdup(s);
        }
        r = malloc(ATTEST_CHECK_VALUE_MAX + 4);
        if (r != NULL) {
                memcpy(r, s, ATTEST_CHECK_VALUE_MAX);
                memcpy(r + ATTEST_CHECK_VALUE_MAX, "...", 4);
        }
        return r;
}

cf_status attest_checks_add(struct attest_checks *l, const char *name, bool ok,
                            const char *expected, const char *actual)
{
        struct attest_check c;

        ENSURE(l->n < ATTEST_CHECKS_MAX, CF_E_LIMIT);
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct attest_check *p = realloc(l->items, cap * sizeof(*p));
                ENSURE(p != NULL, CF_E_NOMEM);
                l->items = p;
                l->cap = cap;
        }
        c.name = strdup(name);
        c.ok = ok;
        c.expected = copy_capped(expected);
        c.actual = copy_capped(actual);
        if (c.name == NULL || c.expected == NULL || c.actual == NULL) {
                free(c.name);
                free(c.expected);
                free(c.actual);
                return cf_fail(CF_E_NOMEM);
        }
        l->items[l->n++] = c;
        return CF_OK;
}

bool attest_checks_all_ok(const struct attest_checks *l)
{
        return attest_checks_failed(l) == 0;
}

size_t attest_checks_failed(const struct attest_checks *l)
{
        size_t failed = 0;

        for (size_t i = 0; i < l->n; i++) {
                failed += !l->items[i].ok;
        }
        return failed;
}

cf_status attest_checks_to_json(const struct attest_checks *l, bool only_failed, json_t **ret)
{
        json_t *arr = json_array();

        ENSURE(arr != NULL, CF_E_NOMEM);
        for (size_t i = 0; i < l->n; i++) {
                const struct attest_check *c = &l->items[i];
                if (only_failed && c->ok) {
                        continue;
                }
                if (json_array_append_new(arr, json_pack("{s:s, s:b, s:s, s:s}", "name", c->name,
                                                         "ok", c->ok, "expected", c->expected,
                                                         "actual", c->actual)) != 0) {
                        json_decref(arr);
                        return cf_fail(CF_E_NOMEM);
                }
        }
        *ret = arr;
        return CF_OK;
}

cf_status attest_result_init(struct attest_result *r)
{
        *r = (struct attest_result){ 0 };
        r->advisories = json_array();
        r->claims = json_object();
        attest_checks_init(&r->checks);
        if (r->advisories == NULL || r->claims == NULL) {
                attest_result_done(r);
                return cf_fail(CF_E_NOMEM);
        }
        return CF_OK;
}

void attest_result_done(struct attest_result *r)
{
        json_decref(r->advisories);
        json_decref(r->claims);
        attest_checks_done(&r->checks);
        *r = (struct attest_result){ 0 };
}

void attest_collateral_init(struct attest_collateral *c)
{
        memset(c, 0, sizeof(*c));
}

void attest_collateral_done(struct attest_collateral *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->items[i].name);
                free(c->items[i].data);
        }
        c->n = 0;
}

cf_status attest_collateral_add(struct attest_collateral *c, const char *name, const void *data,
                                size_t size)
{
        struct attest_blob *b;

        ENSURE(c->n < ATTEST_COLLATERAL_MAX_FILES, CF_E_LIMIT);
        ENSURE(size <= ATTEST_COLLATERAL_MAX_SIZE, CF_E_LIMIT);
        b = &c->items[c->n];
        b->name = strdup(name);
        b->data = malloc(size + 1);
        if (b->name == NULL || b->data == NULL) {
                free(b->name);
                free(b->data);
                return cf_fail(CF_E_NOMEM);
        }
        if (size > 0) {
                memcpy(b->data, data, size);
        }
        b->data[size] = 0; /* convenient for text formats; not counted in size */
        b->size = size;
        c->n++;
        return CF_OK;
}
