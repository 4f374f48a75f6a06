/* activate-bench: activations per second and their latency against a running cofferd, or TLS
 * handshakes per second against any TLS 1.3 server (the baseline), with the same client code.
 *
 *   activate-bench --cas HOST:PORT [--cas-key KEYID] --clients N --seconds T
 *                  (--policy P --service S --measurement HEX | --handshake-only)
 *
 * N threads each run a loop for T seconds. One iteration is what coffer-run does to start a
 * program: a NEW TCP connection and TLS 1.3 handshake (cf_client_connect), sim evidence bound
 * to that connection, POST /v1/activate, the whole reply read and checked to be 200, close.
 * With --handshake-only an iteration stops after the handshake (and the key-id check when
 * --cas-key is given), so the same client measures the baseline server.
 *
 * Prints one JSON object on stdout. Nothing is asserted: the caller compares figures.
 * Loopback benchmarking tool only; it is not part of any installed program. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/mem.h"
#include "base/status.h"
#include "client/activate.h"
#include "client/client.h"

#define BENCH_CLIENTS_MAX 256
#define BENCH_SECONDS_MAX 600
#define BENCH_SAMPLES_MAX (1u << 20) /* per thread: bounds memory and the loop count */
#define BENCH_ERRORS_MAX  1000       /* per thread: stop hammering a server that fails */
#define BENCH_TIMEOUT_MS  10000
#define BENCH_NS_PER_MS   1000000.0
#define BENCH_NS_PER_SEC  1000000000ull

struct bench_args {
        const char *cas;
        const char *cas_key;
        const char *policy;
        const char *service;
        uint8_t measurement[32];
        bool have_measurement;
        bool handshake_only;
        uint64_t clients;
        uint64_t seconds;
};

struct bench_worker {
        pthread_t thread;
        const struct bench_args *args;
        const struct cf_pkey *platform; /* shared, read-only: signing does not mutate it */
        uint64_t deadline_ns;
        uint64_t *samples; /* latency of each successful iteration, ns */
        size_t n_samples;
        uint64_t errors;
        cf_status first_error;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * BENCH_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* One activation (or handshake) on a fresh connection; CF_OK only for a complete success. */
static cf_status one_iteration(const struct bench_worker *w)
{
        const struct bench_args *a = w->args;
        struct cf_client *c = NULL;
        struct cf_http_response resp;
        char *body = NULL;
        cf_status s;
        int status;

        TRY(cf_client_connect(a->cas, a->cas_key, cf_slice_make(NULL, 0), NULL, BENCH_TIMEOUT_MS,
                              &c));
        if (a->handshake_only) {
                cf_client_free(c);
                return CF_OK;
        }
        s = cf_activation_body_sim(cf_client_ssl(c), w->platform, a->measurement, a->policy,
                                   a->service, &body);
        if (!cf_ok(s)) {
                cf_client_free(c);
                return s;
        }
        cf_http_response_init(&resp);
        s = cf_client_request(c, "POST", "/v1/activate", "application/json", cf_slice_str(body),
                              &resp);
        status = resp.status;
        cf_http_response_done(&resp);
        cf_wipe_free_str(body);
        cf_client_free(c);
        TRY(s);
        ENSURE(status == 200, CF_E_HTTP);
        return CF_OK;
}

static void *worker_main(void *arg)
{
        struct bench_worker *w = arg;

        while (w->n_samples < BENCH_SAMPLES_MAX && w->errors < BENCH_ERRORS_MAX) {
                uint64_t start = now_ns();
                cf_status s;

                if (start >= w->deadline_ns) {
                        break;
                }
                s = one_iteration(w);
                if (!cf_ok(s)) {
                        if (w->errors == 0) {
                                w->first_error = s;
                        }
                        w->errors++;
                        continue;
                }
                w->samples[w->n_samples++] = now_ns() - start;
        }
        return NULL;
}

/* CPU time (user + system, all threads) this process has used, in ns. */
static uint64_t cpu_ns(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) != 0) {
                return 0;
        }
        return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * BENCH_NS_PER_SEC +
               ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static int cmp_u64(const void *pa, const void *pb)
{
        uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

        return (a > b) - (a < b);
}

/* Nearest-rank percentile of sorted values (n > 0), in ms. */
static double percentile_ms(const uint64_t *sorted, size_t n, unsigned pct)
{
        size_t rank = (n * pct + 99) / 100;

        if (rank == 0) {
                rank = 1;
        }
        return (double)sorted[rank - 1] / BENCH_NS_PER_MS;
}

static void usage(void)
{
        fprintf(stderr, "usage: activate-bench --cas HOST:PORT [--cas-key KEYID] --clients N "
                        "--seconds T\n"
                        "         (--policy P --service S --measurement HEX | "
                        "--handshake-only)\n");
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
        static const struct option opts[] = {
            {"cas", required_argument, NULL, 'c'},
            {"cas-key", required_argument, NULL, 'k'},
            {"policy", required_argument, NULL, 'p'},
            {"service", required_argument, NULL, 's'},
            {"measurement", required_argument, NULL, 'm'},
            {"clients", required_argument, NULL, 'n'},
            {"seconds", required_argument, NULL, 't'},
            {"handshake-only", no_argument, NULL, 'H'},
            {NULL, 0, NULL, 0},
        };
        int o;

        a->clients = 1;
        a->seconds = 5;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                bool ok = true;

                switch (o) {
                case 'c':
                        a->cas = optarg;
                        break;
                case 'k':
                        a->cas_key = optarg;
                        break;
                case 'p':
                        a->policy = optarg;
                        break;
                case 's':
                        a->service = optarg;
                        break;
                case 'm':
                        ok = cf_ok(cf_hex_decode(cf_slice_str(optarg), a->measurement,
                                                 sizeof(a->measurement)));
                        a->have_measurement = ok;
                        break;
                case 'n':
                        ok = cf_ok(cf_parse_u64(optarg, 1, BENCH_CLIENTS_MAX, &a->clients));
                        break;
                case 't':
                        ok = cf_ok(cf_parse_u64(optarg, 1, BENCH_SECONDS_MAX, &a->seconds));
                        break;
                case 'H':
                        a->handshake_only = true;
                        break;
                default:
                        ok = false;
                        break;
                }
                if (!ok) {
                        usage();
                        return 2;
                }
        }
        if (optind != argc || a->cas == NULL ||
            (!a->handshake_only &&
             (a->policy == NULL || a->service == NULL || !a->have_measurement))) {
                usage();
                return 2;
        }
        return 0;
}

/* Merges the workers' samples and prints the JSON report; returns the exit status. */
static int report(const struct bench_args *a, struct bench_worker *w, uint64_t elapsed_ns,
                  uint64_t cpu_used_ns)
{
        size_t n = 0;
        uint64_t errors = 0;
        const char *first_error = NULL;
        uint64_t *all;
        json_t *out;
        double secs = (double)elapsed_ns / (double)BENCH_NS_PER_SEC;

        for (size_t i = 0; i < a->clients; i++) {
                n += w[i].n_samples;
                errors += w[i].errors;
                if (first_error == NULL && w[i].errors > 0) {
                        first_error = cf_status_name(w[i].first_error);
                }
        }
        all = calloc(n > 0 ? n : 1, sizeof(*all));
        if (all == NULL) {
                fprintf(stderr, "activate-bench: out of memory\n");
                return 1;
        }
        n = 0;
        for (size_t i = 0; i < a->clients; i++) {
                memcpy(all + n, w[i].samples, w[i].n_samples * sizeof(*all));
                n += w[i].n_samples;
        }
        qsort(all, n, sizeof(*all), cmp_u64);
        out = json_pack("{s:s, s:I, s:f, s:I, s:I, s:f}", "mode",
                        a->handshake_only ? "handshake" : "activate", "clients",
                        (json_int_t)a->clients, "seconds", secs, "count", (json_int_t)n, "errors",
                        (json_int_t)errors, "per_second", secs > 0 ? (double)n / secs : 0.0);
        if (out != NULL && n > 0) {
                /* The client shares the machine with the server: its cost per operation
                 * tells how much of the machine the measurement itself takes. */
                json_object_set_new(out, "client_cpu_ms_per_op",
                                    json_real((double)cpu_used_ns / BENCH_NS_PER_MS / (double)n));
                json_object_set_new(out, "p50_ms", json_real(percentile_ms(all, n, 50)));
                json_object_set_new(out, "p99_ms", json_real(percentile_ms(all, n, 99)));
                json_object_set_new(out, "max_ms", json_real((double)all[n - 1] / BENCH_NS_PER_MS));
        }
        if (out != NULL && first_error != NULL) {
                json_object_set_new(out, "first_error", json_string(first_error));
        }
        free(all);
        if (out == NULL || json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0) {
                json_decref(out);
                return 1;
        }
        putchar('\n');
        json_decref(out);
        return n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
        struct bench_args a = {0};
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *platform = NULL;
        struct bench_worker *w;
        uint64_t start, deadline, cpu_start;
        size_t started = 0;
        int status;

        if ((status = parse_args(argc, argv, &a)) != 0) {
                return status;
        }
        if (!cf_ok(cf_crypto_init())) {
                fprintf(stderr, "activate-bench: cannot initialise\n");
                return 1;
        }
        /* The platform key comes from $COFFER_SIM_DIR, as for coffer-run. */
        if (!a.handshake_only && !cf_ok(sim_platform_key_load(NULL, &platform))) {
                fprintf(stderr, "activate-bench: cannot load the sim platform key\n");
                return 1;
        }
        w = calloc(a.clients, sizeof(*w));
        if (w == NULL) {
                fprintf(stderr, "activate-bench: out of memory\n");
                return 1;
        }
        cpu_start = cpu_ns();
        start = now_ns();
        deadline = start + a.seconds * BENCH_NS_PER_SEC;
        for (size_t i = 0; i < a.clients; i++) {
                w[i].args = &a;
                w[i].platform = platform;
                w[i].deadline_ns = deadline;
                w[i].samples = calloc(BENCH_SAMPLES_MAX, sizeof(*w[i].samples));
                if (w[i].samples == NULL ||
                    pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
                        fprintf(stderr, "activate-bench: cannot start client %zu\n", i);
                        break;
                }
                started++;
        }
        for (size_t i = 0; i < started; i++) {
                pthread_join(w[i].thread, NULL);
        }
        status = started == a.clients ? report(&a, w, now_ns() - start, cpu_ns() - cpu_start) : 1;
        for (size_t i = 0; i < a.clients; i++) {
                free(w[i].samples);
        }
        free(w);
        return status;
}
