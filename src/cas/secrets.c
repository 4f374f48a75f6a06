/* Secrets: generated inside cofferd when a policy version is stored, sealed in the store
 * (table "secret", key "POLICY:SECRET"), and substituted into a service's configuration at
 * activation. Generated values are never returned by the policy API.
 *
 * The stored value is the rendered text that placeholders receive: ascii characters from
 * the charset; hex or base64 text of `size` random bytes; raw bytes for binary. */
#include "cas/cas.h"

#include <stdio.h>
#include <string.h>

#include "base/codec.h"
#include "base/log.h"
#include "policy/policy.h"
#include "store/store.h"

#define SECRET_TABLE     "secret"
#define SECRET_VALUE_MAX 16384

static const char g_default_charset[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static cf_status secret_key(const struct policy *p, const char *name, char *out, size_t out_size)
{
        int n = snprintf(out, out_size, "%s:%s", p->name, name);

        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

/* Uniform characters from charset by rejection sampling (no modulo bias). */
static cf_status gen_ascii(const char *charset, size_t size, struct cf_buf *out)
{
        size_t n = strlen(charset), produced = 0;
        unsigned limit = 256u - 256u % (unsigned)n;
        uint8_t pool[64];
        CF_WIPE_ON_EXIT(pool);

        ENSURE(n >= 2 && n <= 95, CF_E_INVALID_ARG);
        TRY(cf_buf_reserve(out, size));
        while (produced < size) {
                TRY(cf_random(pool, sizeof(pool)));
                for (size_t i = 0; i < sizeof(pool) && produced < size; i++) {
                        if (pool[i] < limit) {
                                out->ptr[out->size++] = (uint8_t)charset[pool[i] % n];
                                produced++;
                        }
                }
        }
        out->ptr[out->size] = 0;
        return CF_OK;
}

static cf_status generate(const struct policy_secret *sec, struct cf_buf *out)
{
        struct cf_buf raw;
        cf_status s;

        if (sec->kind == POLICY_SECRET_ASCII) {
                return gen_ascii(sec->charset ? sec->charset : g_default_charset, sec->size, out);
        }
        cf_buf_init(&raw, SECRET_VALUE_MAX, true);
        s = cf_buf_reserve(&raw, sec->size);
        if (cf_ok(s)) {
                s = cf_random(raw.ptr, sec->size);
                raw.size = sec->size;
        }
        if (cf_ok(s)) {
                switch (sec->kind) {
                case POLICY_SECRET_HEX:
                        s = cf_buf_reserve(out, 2 * raw.size);
                        if (cf_ok(s)) {
                                cf_hex_encode(raw.ptr, raw.size, (char *)out->ptr + out->size,
                                              2 * raw.size + 1);
                                out->size += 2 * raw.size;
                        }
                        break;
                case POLICY_SECRET_BASE64:
                        s = cf_base64_encode_buf(raw.ptr, raw.size, out);
                        break;
                case POLICY_SECRET_BINARY:
                        s = cf_buf_append(out, raw.ptr, raw.size);
                        break;
                default:
                        s = cf_fail(CF_E_INTERNAL);
                        break;
                }
        }
        cf_buf_done(&raw);
        return s;
}

/* Same definition means same value: an update keeps a generated secret unless its kind,
 * size or charset changed. */
static bool same_definition(const struct policy_secret *a, const struct policy_secret *b)
{
        return a->kind == b->kind && a->size == b->size && !a->has_value && !b->has_value &&
               ((a->charset == NULL && b->charset == NULL) ||
                (a->charset != NULL && b->charset != NULL && strcmp(a->charset, b->charset) == 0));
}

cf_status cas_secrets_provision(struct cas_worker *w, const struct policy *p,
                                const struct policy *previous)
{
        for (size_t i = 0; i < p->n_secrets; i++) {
                const struct policy_secret *sec = &p->secrets[i];
                const struct policy_secret *old =
                        previous ? policy_find_secret(previous, sec->name) : NULL;
                char key[400];
                uint64_t latest = 0;
                struct cf_buf value;
                cf_status s;

                if (sec->has_value) {
                        continue; /* explicit values live in the (sealed) document */
                }
                TRY(secret_key(p, sec->name, key, sizeof(key)));
                s = store_latest(w->store, SECRET_TABLE, key, &latest);
                if (cf_ok(s) && old != NULL && same_definition(sec, old)) {
                        continue;
                }
                if (!cf_ok(s) && s.code != CF_E_NOT_FOUND) {
                        cas_log_store_error(w->cas, s, SECRET_TABLE, key);
                        return s;
                }
                cf_buf_init(&value, SECRET_VALUE_MAX, true);
                s = generate(sec, &value);
                if (cf_ok(s)) {
                        s = store_put(w->store, SECRET_TABLE, key, latest + 1,
                                      cf_buf_slice(&value));
                }
                cf_buf_done(&value);
                if (!cf_ok(s)) {
                        cas_log_store_error(w->cas, s, SECRET_TABLE, key);
                        return s;
                }
        }
        return CF_OK;
}

cf_status cas_secret_value(struct cas_worker *w, const struct policy *p, const char *name,
                           struct cf_buf *out)
{
        const struct policy_secret *sec = policy_find_secret(p, name);
        char key[400];
        uint64_t version;
        cf_status s;

        ENSURE(sec != NULL, CF_E_NOT_FOUND);
        if (sec->has_value) {
                switch (sec->kind) {
                case POLICY_SECRET_HEX:
                        TRY(cf_buf_reserve(out, 2 * sec->value_size));
                        cf_hex_encode(sec->value, sec->value_size, (char *)out->ptr + out->size,
                                      2 * sec->value_size + 1);
                        out->size += 2 * sec->value_size;
                        return CF_OK;
                case POLICY_SECRET_BASE64:
                        return cf_base64_encode_buf(sec->value, sec->value_size, out);
                default:
                        return cf_buf_append(out, sec->value, sec->value_size);
                }
        }
        TRY(secret_key(p, name, key, sizeof(key)));
        s = store_get(w->store, SECRET_TABLE, key, 0, out, &version);
        if (!cf_ok(s)) {
                cas_log_store_error(w->cas, s, SECRET_TABLE, key);
        }
        return s;
}
