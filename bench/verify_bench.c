/* verify-bench: attestation verifications per second with warm caches, against the rate of
 * the signature verifications that bound them, all measured in this process (issue 3 §7).
 *
 *   verify-bench --vectors DIR [--seconds T] [--openssl-p256 N --openssl-p384 N] [--only LABEL]
 *
 * For each platform with a vector row in DIR/expected.tsv (SGX sgx-a-ok, TDX tdx-a-ok, SNP
 * snp-gosev-milan-ok and snp-e2e-genoa-ok), the evidence and collateral files are read once
 * into an attest_collateral, verified once (cold: empty caches) and then verified in a loop
 * for T seconds on 1 and on 2 threads (warm: the verifiers' chain caches hold the parsed and
 * verified chains). Every loop iteration must succeed with res.valid; any failure makes the
 * exit status 1.
 *
 * The bound: an Intel quote needs two ECDSA P-256 verifies (quote signature and QE report
 * signature, the PCK chain being cached), an SNP report one ECDSA P-384 verify (the VCEK
 * chain being cached). So the bound is (P-256 verify/s) / 2 for SGX and TDX and P-384
 * verify/s for SNP. The verify rate is measured here with cf_verify (OpenSSL EVP, a new
 * digest context per call, exactly the path the verifiers use) on freshly generated keys,
 * and, when the caller passes them, taken from `openssl speed` (bench/verify-run does).
 * The raw verify and the whole verifications run in VB_ROUNDS alternating rounds, so that
 * both see the same machine load; thread CPU time is recorded as well.
 * Targets are printed, never asserted. Lines starting with "result " are stable. */
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/checks.h"
#include "attest/intel/intel.h"
#include "attest/snp/snp.h"
#include "base/codec.h"
#include "base/cursor.h"
#include "base/io.h"
#include "base/status.h"
#include "crypto/crypto.h"

#define VB_SECONDS_MAX  600
#define VB_THREADS_MAX  2
#define VB_RATE_MAX     100000000u /* verifies per second passed on the command line */
#define VB_TSV_MAX      (4u << 20) /* expected.tsv */
#define VB_FIELD_MAX    4096       /* one TSV field */
#define VB_PATH_MAX     4096
#define VB_FIELDS       10  /* case_id ... mutation */
#define VB_SIG_MAX      512 /* a DER ECDSA signature */
#define VB_EVIDENCE_MAX (1u << 20)
#define VB_NS_PER_SEC   1000000000ull
#define VB_ROUNDS       10 /* alternations of raw and whole verifications */
#define VB_TARGET_RATIO 0.7
/* Message sizes of the bound measurement: the SGX quote's signed header || body (432 bytes)
 * and the SNP report's signed part (0x2A0 bytes), so hashing costs the same. */
#define VB_P256_MSG_SIZE 432
#define VB_P384_MSG_SIZE SNP_SIGNED_SIZE

/* TSV columns used here. */
enum {
        COL_CASE = 0,
        COL_PLATFORM,
        COL_EVIDENCE,
        COL_COLLATERAL,
        COL_TIME,
        COL_SIGNATURE,
        COL_MUTATION = 9
};

struct vb_case {
        const char *label;   /* result name: verify_<label>_per_s */
        const char *case_id; /* row of expected.tsv */
        enum attest_platform platform;
};

static const struct vb_case g_cases[] = {
    {"sgx", "sgx-a-ok", ATTEST_SGX},
    {"tdx", "tdx-a-ok", ATTEST_TDX},
    {"snp_milan", "snp-gosev-milan-ok", ATTEST_SNP},
    {"snp_genoa", "snp-e2e-genoa-ok", ATTEST_SNP},
};
#define VB_N_CASES (sizeof(g_cases) / sizeof(g_cases[0]))

/* One loaded vector: what a verifier gets on every call of the warm loop. */
struct vb_input {
        enum attest_platform platform;
        struct cf_buf evidence;
        struct attest_collateral coll;
        int64_t now;
};

/* The raw signature workload of the bound. */
struct vb_raw {
        struct cf_pkey *key;
        uint8_t msg[VB_P384_MSG_SIZE];
        size_t msg_size;
        struct cf_buf sig;
};

typedef cf_status (*vb_op_fn)(const void *ctx);

struct vb_worker {
        pthread_t thread;
        vb_op_fn op;
        const void *ctx;
        uint64_t run_ns;
        uint64_t count, elapsed_ns, cpu_ns;
        cf_status error; /* first failure; the worker stops at it */
};

struct vb_args {
        const char *vectors;
        uint64_t seconds;
        uint64_t openssl_p256, openssl_p384; /* 0: not given */
        const char *only;                    /* one case label (profiling), or NULL: all */
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * VB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- expected.tsv ---------------------------------------------------------------------- */

/* Takes the bytes up to the next byte in stops (or the end) and consumes that byte; *ret_stop
 * is the byte found, or 0 at the end of the input. */
static CF_FN take_until(struct cf_cursor *c, const char *stops, struct cf_slice *ret,
                        uint8_t *ret_stop)
{
        struct cf_cursor peek = *c;
        size_t n = 0;
        uint8_t b = 0, stop = 0;

        while (cf_cursor_left(&peek) > 0) {
                TRY(cf_cursor_u8(&peek, &b));
                if (b != 0 && strchr(stops, b) != NULL) {
                        stop = b;
                        break;
                }
                n++;
        }
        TRY(cf_cursor_take(c, n, ret));
        if (stop != 0) {
                TRY(cf_cursor_skip(c, 1));
        }
        *ret_stop = stop;
        return CF_OK;
}

/* Splits one line of the TSV into fields[VB_FIELDS]; fails on a short line. */
static CF_FN split_line(struct cf_slice line, struct cf_slice fields[static VB_FIELDS])
{
        struct cf_cursor c = cf_cursor_make(line);
        uint8_t stop = 0;

        for (size_t i = 0; i < VB_FIELDS; i++) {
                TRY(take_until(&c, "\t", &fields[i], &stop));
                ENSURE(stop == '\t' || i + 1 == VB_FIELDS, CF_E_MALFORMED);
        }
        return CF_OK;
}

static bool slice_is(struct cf_slice s, const char *text)
{
        return cf_slice_eq(s, cf_slice_str(text));
}

/* Finds the row of case_id in the TSV text; its fields borrow from tsv. */
static CF_FN find_row(struct cf_slice tsv, const char *case_id,
                      struct cf_slice ret[static VB_FIELDS])
{
        struct cf_cursor c = cf_cursor_make(tsv);
        struct cf_slice line, fields[VB_FIELDS];
        uint8_t stop = 0;

        while (cf_cursor_left(&c) > 0) {
                TRY(take_until(&c, "\n", &line, &stop));
                if (!cf_ok(split_line(line, fields)) || !slice_is(fields[COL_CASE], case_id)) {
                        continue;
                }
                memcpy(ret, fields, sizeof(fields));
                return CF_OK;
        }
        return cf_fail(CF_E_NOT_FOUND);
}

/* ---- loading a vector ------------------------------------------------------------------ */

/* Reads DIR/rel (rel comes from the TSV: relative, no "..") into b. */
static CF_FN read_vector(const char *dir, struct cf_slice rel, size_t max, struct cf_buf *b)
{
        char name[VB_FIELD_MAX];
        char path[VB_PATH_MAX];
        int n;

        TRY(cf_slice_to_cstr(rel, name, sizeof(name)));
        ENSURE(name[0] != '\0' && name[0] != '/' && strstr(name, "..") == NULL, CF_E_MALFORMED);
        n = snprintf(path, sizeof(path), "%s/%s", dir, name);
        ENSURE(n > 0 && (size_t)n < sizeof(path), CF_E_LIMIT);
        return cf_read_file(path, max, b);
}

static CF_FN add_collateral(const char *dir, struct cf_slice rel, struct attest_collateral *coll)
{
        struct cf_buf b;
        char name[VB_FIELD_MAX];
        cf_status s;

        TRY(cf_slice_to_cstr(rel, name, sizeof(name)));
        cf_buf_init(&b, ATTEST_COLLATERAL_MAX_SIZE, false);
        s = read_vector(dir, rel, ATTEST_COLLATERAL_MAX_SIZE, &b);
        if (cf_ok(s)) {
                s = attest_collateral_add(coll, name, b.ptr, b.size);
        }
        cf_buf_done(&b);
        return s;
}

/* Loads the row's evidence, its comma-separated collateral files and its verification time. */
static CF_FN load_input(const char *dir, const struct cf_slice f[static VB_FIELDS],
                        struct vb_input *in)
{
        struct cf_cursor c = cf_cursor_make(f[COL_COLLATERAL]);
        struct cf_slice item;
        char when[64];
        uint8_t stop = 0;

        /* Only plain valid rows: a mutated row would not measure a successful verification. */
        ENSURE(slice_is(f[COL_SIGNATURE], "valid") && slice_is(f[COL_MUTATION], "-"),
               CF_E_MALFORMED);
        TRY(cf_slice_to_cstr(f[COL_TIME], when, sizeof(when)));
        TRY(cf_parse_rfc3339(when, &in->now));
        TRY(read_vector(dir, f[COL_EVIDENCE], VB_EVIDENCE_MAX, &in->evidence));
        while (cf_cursor_left(&c) > 0) {
                TRY(take_until(&c, ",", &item, &stop));
                TRY(add_collateral(dir, item, &in->coll));
        }
        return CF_OK;
}

static void input_init(struct vb_input *in, enum attest_platform platform)
{
        in->platform = platform;
        cf_buf_init(&in->evidence, VB_EVIDENCE_MAX, false);
        attest_collateral_init(&in->coll);
        in->now = 0;
}

static void input_done(struct vb_input *in)
{
        cf_buf_done(&in->evidence);
        attest_collateral_done(&in->coll);
}

/* ---- the measured operations ----------------------------------------------------------- */

/* One verification as a caller does it: a fresh result, verify, require valid, free. */
static cf_status verify_once(const void *ctx)
{
        const struct vb_input *in = ctx;
        struct attest_result res;
        cf_status s;

        TRY(attest_result_init(&res));
        if (in->platform == ATTEST_SNP) {
                struct snp_options o = {.now = in->now, .expected_stepping = -1};
                s = snp_verify(cf_buf_slice(&in->evidence), &in->coll, &o, &res);
        } else {
                struct intel_options o = {.now = in->now};
                s = intel_verify(cf_buf_slice(&in->evidence), &in->coll, &o, &res);
        }
        if (cf_ok(s) && !res.valid) {
                s = cf_fail(CF_E_INTERNAL); /* CF_OK without valid: a verifier bug */
        }
        attest_result_done(&res);
        return s;
}

static cf_status raw_verify_once(const void *ctx)
{
        const struct vb_raw *r = ctx;

        return cf_verify(r->key, cf_slice_make(r->msg, r->msg_size), cf_buf_slice(&r->sig));
}

static void raw_init(struct vb_raw *r)
{
        memset(r, 0, sizeof(*r));
        cf_buf_init(&r->sig, VB_SIG_MAX, false);
}

/* A fresh key, a random message and its signature; verified once before it is timed. */
static CF_FN raw_prepare(struct vb_raw *r, enum cf_key_type type, size_t msg_size)
{
        ENSURE(msg_size <= sizeof(r->msg), CF_E_INVALID_ARG);
        r->msg_size = msg_size;
        TRY(cf_random(r->msg, msg_size));
        TRY(cf_pkey_generate(type, &r->key));
        TRY(cf_sign(r->key, cf_slice_make(r->msg, r->msg_size), &r->sig));
        return raw_verify_once(r);
}

static void raw_done(struct vb_raw *r)
{
        cf_pkey_free(r->key);
        r->key = NULL;
        cf_buf_done(&r->sig);
}

/* ---- timing loop ----------------------------------------------------------------------- */

/* What the threads of one or more measurements did: operations, wall time summed over the
 * threads, and the threads' own CPU time. */
struct vb_tally {
        uint64_t count, wall_ns, cpu_ns;
        size_t threads;
};

static uint64_t thread_cpu_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t)ts.tv_sec * VB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void *worker_main(void *arg)
{
        struct vb_worker *w = arg;
        uint64_t start = now_ns(), cpu0 = thread_cpu_ns();
        uint64_t deadline = start + w->run_ns, t = start;

        while (t < deadline) {
                cf_status s = w->op(w->ctx);
                t = now_ns();
                if (!cf_ok(s)) {
                        w->error = s;
                        break;
                }
                w->count++;
        }
        w->elapsed_ns = t - start;
        w->cpu_ns = thread_cpu_ns() - cpu0;
        return NULL;
}

/* Runs op on n_threads threads for run_ns each and adds what they did to *tally. */
static CF_FN measure(vb_op_fn op, const void *ctx, size_t n_threads, uint64_t run_ns,
                     struct vb_tally *tally)
{
        struct vb_worker w[VB_THREADS_MAX];
        size_t started = 0;
        cf_status s = CF_OK;

        ENSURE(n_threads >= 1 && n_threads <= VB_THREADS_MAX, CF_E_INVALID_ARG);
        memset(w, 0, sizeof(w));
        for (size_t i = 0; i < n_threads; i++) {
                w[i].op = op;
                w[i].ctx = ctx;
                w[i].run_ns = run_ns;
                if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
                        s = cf_fail(CF_E_NOMEM);
                        break;
                }
                started++;
        }
        for (size_t i = 0; i < started; i++) {
                pthread_join(w[i].thread, NULL);
                if (cf_ok(s) && !cf_ok(w[i].error)) {
                        s = w[i].error;
                }
                tally->count += w[i].count;
                tally->wall_ns += w[i].elapsed_ns;
                tally->cpu_ns += w[i].cpu_ns;
        }
        tally->threads = n_threads;
        return s;
}

/* Operations per wall-clock second, summed over the threads (throughput). */
static double wall_rate(const struct vb_tally *t)
{
        return t->wall_ns > 0 ? (double)t->count * (double)t->threads * (double)VB_NS_PER_SEC /
                                    (double)t->wall_ns
                              : 0.0;
}

/* Microseconds of CPU per operation (cost; not affected by other processes taking CPU). */
static double cpu_us(const struct vb_tally *t)
{
        return t->count > 0 ? (double)t->cpu_ns / 1000.0 / (double)t->count : 0.0;
}

/* ---- reporting ------------------------------------------------------------------------- */

static double ratio_of(double rate, double bound)
{
        return bound > 0.0 ? rate / bound : 0.0;
}

/* The rate of whole verifications that the signature verifies alone would allow. */
static double platform_bound(enum attest_platform p, double p256, double p384)
{
        return p == ATTEST_SNP ? p384 : p256 / 2.0;
}

static void print_ratio(const char *label, const char *result, const char *what, double rate,
                        double bound)
{
        double ratio = ratio_of(rate, bound);

        printf("  %-40s %10.1f %10.1f %6.2f  %s\n", what, rate, bound, ratio,
               ratio >= VB_TARGET_RATIO ? "holds" : "MISSED");
        printf("result verify_%s_%s %.3f\n", label, result, ratio);
}

/* ver[n] and sig[n]: verifications and the platform's raw signature verifies on n threads,
 * measured in alternating rounds. */
static void report_case(const struct vb_args *a, const struct vb_case *k,
                        const struct vb_tally ver[static 3], const struct vb_tally sig[static 3])
{
        enum attest_platform p = k->platform;
        double per_sig = p == ATTEST_SNP ? 1.0 : 2.0;

        printf("  %-40s %10s %10s %6s  (target >= %.1f)\n", "", "verif/s", "bound/s", "ratio",
               VB_TARGET_RATIO);
        if (a->openssl_p256 > 0 && a->openssl_p384 > 0) {
                print_ratio(k->label, "ratio_openssl_speed", "1 thread, bound from openssl speed",
                            wall_rate(&ver[1]),
                            platform_bound(p, (double)a->openssl_p256, (double)a->openssl_p384));
        }
        print_ratio(k->label, "ratio", "1 thread, bound from cf_verify", wall_rate(&ver[1]),
                    wall_rate(&sig[1]) / per_sig);
        print_ratio(k->label, "cpu_ratio", "1 thread, CPU time (sig us / verif us)",
                    1e6 / cpu_us(&ver[1]), 1e6 / cpu_us(&sig[1]) / per_sig);
        print_ratio(k->label, "threads_2_ratio", "2 threads, bound from cf_verify",
                    wall_rate(&ver[2]), wall_rate(&sig[2]) / per_sig);
        printf("  CPU per verification %.1f us; per %s verify %.1f us\n", cpu_us(&ver[1]),
               p == ATTEST_SNP ? "P-384" : "P-256", cpu_us(&sig[1]));
        printf("result verify_%s_per_s %.1f\n", k->label, wall_rate(&ver[1]));
        printf("result verify_%s_threads_2_per_s %.1f\n", k->label, wall_rate(&ver[2]));
        printf("result verify_%s_cpu_us %.1f\n", k->label, cpu_us(&ver[1]));
        printf("result verify_%s_bound_per_s %.1f\n", k->label, wall_rate(&sig[1]) / per_sig);
        printf("result verify_%s_threads_2_bound_per_s %.1f\n", k->label,
               wall_rate(&sig[2]) / per_sig);
}

/* ---- one platform ---------------------------------------------------------------------- */

/* The warm loops: VB_ROUNDS rounds that alternate the platform's raw signature verify and
 * whole verifications, so that both see the same machine load; 2 * seconds per thread count. */
static CF_FN measure_case(const struct vb_args *a, const struct vb_input *in,
                          const struct vb_raw *raw, struct vb_tally ver[static 3],
                          struct vb_tally sig[static 3])
{
        uint64_t slice_ns = a->seconds * VB_NS_PER_SEC / VB_ROUNDS;

        for (size_t n = 1; n <= VB_THREADS_MAX; n++) {
                for (size_t r = 0; r < VB_ROUNDS; r++) {
                        TRY(measure(raw_verify_once, raw, n, slice_ns, &sig[n]));
                        TRY(measure(verify_once, in, n, slice_ns, &ver[n]));
                }
        }
        return CF_OK;
}

/* Verifies once cold (empty caches), then measures warm. */
static CF_FN run_input(const struct vb_args *a, const struct vb_case *k, const struct vb_input *in,
                       const struct vb_raw *raw)
{
        struct vb_tally ver[VB_THREADS_MAX + 1], sig[VB_THREADS_MAX + 1];
        uint64_t t0 = now_ns(), hits0;
        double cold_us;

        memset(ver, 0, sizeof(ver));
        memset(sig, 0, sizeof(sig));
        TRY(verify_once(in));
        cold_us = (double)(now_ns() - t0) / 1000.0;
        hits0 = snp_cache_hits();
        TRY(measure_case(a, in, raw, ver, sig));
        printf("%s (%s, %zu collateral files): cold %.0f us, warm %.1f/s, 2 threads %.1f/s\n",
               k->label, k->case_id, in->coll.n, cold_us, wall_rate(&ver[1]), wall_rate(&ver[2]));
        if (k->platform == ATTEST_SNP) {
                printf("  (SNP chain cache hits in the warm loops: %llu)\n",
                       (unsigned long long)(snp_cache_hits() - hits0));
        }
        printf("result verify_%s_cold_us %.1f\n", k->label, cold_us);
        report_case(a, k, ver, sig);
        return CF_OK;
}

/* Loads one vector and benchmarks it. CF_E_NOT_FOUND when the row or a file is absent. */
static CF_FN bench_case(const struct vb_args *a, struct cf_slice tsv, const struct vb_case *k,
                        const struct vb_raw *raw)
{
        struct cf_slice f[VB_FIELDS] = {0};
        struct vb_input in;
        cf_status s;

        TRY(find_row(tsv, k->case_id, f));
        input_init(&in, k->platform);
        s = load_input(a->vectors, f, &in);
        if (cf_ok(s)) {
                s = run_input(a, k, &in, raw);
                if (!cf_ok(s)) {
                        fprintf(stderr, "verify-bench: %s (%s): verification failed: %s\n",
                                k->label, k->case_id, cf_status_name(s));
                }
        }
        input_done(&in);
        return s;
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
        fprintf(stderr, "usage: verify-bench --vectors DIR [--seconds T] [--openssl-p256 N "
                        "--openssl-p384 N] [--only sgx|tdx|snp_milan|snp_genoa]\n");
}

static CF_FN parse_args(int argc, char **argv, struct vb_args *ret)
{
        static const struct option opts[] = {
            {"vectors", required_argument, NULL, 'v'},
            {"seconds", required_argument, NULL, 's'},
            {"openssl-p256", required_argument, NULL, '2'},
            {"openssl-p384", required_argument, NULL, '3'},
            {"only", required_argument, NULL, 'o'},
            {NULL, 0, NULL, 0},
        };
        struct vb_args a = {.seconds = 5};
        int o;

        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 'v':
                        a.vectors = optarg;
                        break;
                case 'o':
                        a.only = optarg;
                        break;
                case 's':
                        TRY(cf_parse_u64(optarg, 1, VB_SECONDS_MAX, &a.seconds));
                        break;
                case '2':
                        TRY(cf_parse_u64(optarg, 1, VB_RATE_MAX, &a.openssl_p256));
                        break;
                case '3':
                        TRY(cf_parse_u64(optarg, 1, VB_RATE_MAX, &a.openssl_p384));
                        break;
                default:
                        return cf_fail(CF_E_INVALID_ARG);
                }
        }
        ENSURE(optind == argc && a.vectors != NULL, CF_E_INVALID_ARG);
        *ret = a;
        return CF_OK;
}

/* Runs every case; returns the number that failed (skips do not count). raw[0] is the P-256
 * workload, raw[1] the P-384 one. */
static size_t run_cases(const struct vb_args *a, struct cf_slice tsv, const struct vb_raw raw[2])
{
        size_t failed = 0;

        for (size_t i = 0; i < VB_N_CASES; i++) {
                const struct vb_case *k = &g_cases[i];
                cf_status s;

                if (a->only != NULL && strcmp(a->only, k->label) != 0) {
                        continue;
                }
                s = bench_case(a, tsv, k, &raw[k->platform == ATTEST_SNP ? 1 : 0]);
                if (s.code == CF_E_NOT_FOUND) {
                        printf("%s: SKIPPED: row %s or one of its files is not in %s\n", k->label,
                               k->case_id, a->vectors);
                        printf("result verify_%s_per_s skipped\n", k->label);
                } else if (!cf_ok(s)) {
                        fprintf(stderr, "verify-bench: %s: %s\n", k->label, cf_strerror(s));
                        failed++;
                }
                fflush(stdout);
        }
        return failed;
}

/* Reads expected.tsv, sets up the two raw workloads and runs the cases; the exit status. */
static int run(const struct vb_args *a)
{
        struct vb_raw raw[2];
        struct cf_buf tsv;
        char path[VB_PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/expected.tsv", a->vectors), rc = 1;

        cf_buf_init(&tsv, VB_TSV_MAX, false);
        if (n <= 0 || (size_t)n >= sizeof(path) || !cf_ok(cf_read_file(path, VB_TSV_MAX, &tsv))) {
                printf("verify-bench: SKIPPED: no vectors (%s not readable)\n", path);
                cf_buf_done(&tsv);
                return 0;
        }
        printf("verify-bench: %llu s per measurement (in %d rounds alternating with the raw "
               "signature verify), 1 and %d threads, vectors %s\n",
               (unsigned long long)a->seconds, VB_ROUNDS, VB_THREADS_MAX, a->vectors);
        if (a->openssl_p256 > 0 && a->openssl_p384 > 0) {
                printf("openssl speed: P-256 %llu verify/s, P-384 %llu verify/s\n",
                       (unsigned long long)a->openssl_p256, (unsigned long long)a->openssl_p384);
                printf("result openssl_speed_p256_verify_per_s %llu\n",
                       (unsigned long long)a->openssl_p256);
                printf("result openssl_speed_p384_verify_per_s %llu\n",
                       (unsigned long long)a->openssl_p384);
        }
        fflush(stdout);
        raw_init(&raw[0]);
        raw_init(&raw[1]);
        if (!cf_ok(raw_prepare(&raw[0], CF_KEY_P256, VB_P256_MSG_SIZE)) ||
            !cf_ok(raw_prepare(&raw[1], CF_KEY_P384, VB_P384_MSG_SIZE))) {
                fprintf(stderr, "verify-bench: cannot set up the raw signature workload\n");
        } else if (run_cases(a, cf_buf_slice(&tsv), raw) == 0) {
                rc = 0;
        }
        raw_done(&raw[0]);
        raw_done(&raw[1]);
        cf_buf_done(&tsv);
        return rc;
}

int main(int argc, char **argv)
{
        struct vb_args a = {0};
        int rc;

        if (!cf_ok(parse_args(argc, argv, &a))) {
                usage();
                return 2;
        }
        if (!cf_ok(cf_crypto_init())) {
                fprintf(stderr, "verify-bench: crypto initialisation failed\n");
                return 1;
        }
        rc = run(&a);
        /* Release cached chains so leak checkers see a clean exit. */
        intel_cache_clear();
        snp_cache_clear();
        return rc;
}
