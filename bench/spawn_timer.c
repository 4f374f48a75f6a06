/* spawn-timer: wall time of starting a program until it exits, for two commands run
 * alternately, so that drift in machine load affects both the same way.
 *
 *   spawn-timer --runs N -- BASELINE ARGS... :: COMMAND ARGS...
 *
 * Each run is posix_spawn + waitpid with stdout and stderr on /dev/null, timed with
 * CLOCK_MONOTONIC. Prints one JSON object: per command the median, p90, min and max in ms and
 * the number of runs that did not exit 0, and the difference of the medians ("added_ms").
 * Nothing is asserted. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/codec.h"
#include "base/status.h"

#define TIMER_RUNS_MAX   10000
#define TIMER_WARMUP     3
#define TIMER_NS_PER_MS  1000000.0
#define TIMER_NS_PER_SEC 1000000000ull

extern char **environ;

struct timer_cmd {
        char **argv;
        uint64_t *samples;
        size_t n_samples;
        uint64_t failures;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * TIMER_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Runs argv once; *ret_ns is the wall time, *ret_ok whether it exited with status 0. */
static cf_status run_once(char **argv, uint64_t *ret_ns, bool *ret_ok)
{
        posix_spawn_file_actions_t fa;
        uint64_t start, end;
        pid_t pid;
        int r, wstatus = 0;

        ENSURE(posix_spawn_file_actions_init(&fa) == 0, CF_E_NOMEM);
        r = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (r == 0) {
                r = posix_spawn_file_actions_adddup2(&fa, 1, 2);
        }
        start = now_ns();
        if (r == 0) {
                r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        }
        posix_spawn_file_actions_destroy(&fa);
        ENSURE(r == 0, CF_E_IO);
        while (waitpid(pid, &wstatus, 0) < 0) {
                ENSURE(errno == EINTR, CF_E_IO);
        }
        end = now_ns();
        *ret_ns = end - start;
        *ret_ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
        return CF_OK;
}

static cf_status run_sample(struct timer_cmd *c, bool keep)
{
        uint64_t ns = 0;
        bool ok = false;

        TRY(run_once(c->argv, &ns, &ok));
        if (!ok) {
                c->failures++;
        }
        if (keep) {
                c->samples[c->n_samples++] = ns;
        }
        return CF_OK;
}

static int cmp_u64(const void *pa, const void *pb)
{
        uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

        return (a > b) - (a < b);
}

/* Median of sorted values (n > 0), in ms; the mean of the middle two for even n. */
static double median_ms(const uint64_t *v, size_t n)
{
        if (n % 2 == 1) {
                return (double)v[n / 2] / TIMER_NS_PER_MS;
        }
        return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0 / TIMER_NS_PER_MS;
}

static json_t *summary(struct timer_cmd *c)
{
        size_t n = c->n_samples;

        qsort(c->samples, n, sizeof(*c->samples), cmp_u64);
        return json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:f}", "program", c->argv[0], "runs",
                         (json_int_t)n, "failures", (json_int_t)c->failures, "median_ms",
                         median_ms(c->samples, n), "p90_ms",
                         (double)c->samples[(n * 9 + 9) / 10 - 1] / TIMER_NS_PER_MS, "min_ms",
                         (double)c->samples[0] / TIMER_NS_PER_MS, "max_ms",
                         (double)c->samples[n - 1] / TIMER_NS_PER_MS);
}

static int usage(void)
{
        fprintf(stderr, "usage: spawn-timer --runs N -- BASELINE ARGS... :: COMMAND ARGS...\n");
        return 2;
}

/* Splits argv after "--" into the two commands at "::" (in place: the "::" becomes NULL). */
static bool split_commands(int argc, char **argv, int first, struct timer_cmd cmds[static 2])
{
        int sep = -1;

        for (int i = first; i < argc; i++) {
                if (strcmp(argv[i], "::") == 0) {
                        sep = i;
                        break;
                }
        }
        if (sep <= first || sep + 1 >= argc) {
                return false;
        }
        argv[sep] = NULL;
        cmds[0].argv = argv + first;
        cmds[1].argv = argv + sep + 1;
        return true;
}

int main(int argc, char **argv)
{
        struct timer_cmd cmds[2] = {{0}, {0}};
        uint64_t runs = 0;
        json_t *out, *base, *cmd;
        double added;
        cf_status s = CF_OK;

        if (argc < 6 || strcmp(argv[1], "--runs") != 0 ||
            !cf_ok(cf_parse_u64(argv[2], 1, TIMER_RUNS_MAX, &runs)) || strcmp(argv[3], "--") != 0 ||
            !split_commands(argc, argv, 4, cmds)) {
                return usage();
        }
        for (size_t k = 0; k < 2; k++) {
                cmds[k].samples = calloc(runs, sizeof(*cmds[k].samples));
                if (cmds[k].samples == NULL) {
                        fprintf(stderr, "spawn-timer: out of memory\n");
                        return 1;
                }
        }
        /* Warm the page cache and dynamic loader first; those runs are not kept. */
        for (size_t i = 0; i < TIMER_WARMUP && cf_ok(s); i++) {
                s = run_sample(&cmds[0], false);
                if (cf_ok(s)) {
                        s = run_sample(&cmds[1], false);
                }
        }
        cmds[0].failures = cmds[1].failures = 0;
        for (uint64_t i = 0; i < runs && cf_ok(s); i++) {
                s = run_sample(&cmds[0], true);
                if (cf_ok(s)) {
                        s = run_sample(&cmds[1], true);
                }
        }
        if (!cf_ok(s)) {
                fprintf(stderr, "spawn-timer: cannot run a command: %s\n", cf_strerror(s));
                return 1;
        }
        base = summary(&cmds[0]); /* sorts the samples, so medians are read after it */
        cmd = summary(&cmds[1]);
        added = median_ms(cmds[1].samples, runs) - median_ms(cmds[0].samples, runs);
        out = json_pack("{s:o, s:o, s:f}", "baseline", base, "command", cmd, "added_ms", added);
        free(cmds[0].samples);
        free(cmds[1].samples);
        if (out == NULL || json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0) {
                json_decref(out);
                return 1;
        }
        putchar('\n');
        json_decref(out);
        return cmds[0].failures == 0 && cmds[1].failures == 0 ? 0 : 1;
}
