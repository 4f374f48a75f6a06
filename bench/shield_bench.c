/* shield-bench: fio-style file workloads on one directory, timed in-process, for comparing a
 * plain directory, a shielded volume (the same binary run under libcoffer-shield.so) and a
 * gocryptfs mount. bench/shield-run drives it (issue 4 §5; docs/benchmarks.md).
 *
 *   shield-bench --dir DIR --workload W [--mib N] [--ops N]
 *
 * Workloads (files are named after the workload family, so one run prepares the next):
 *   seqwrite   create DIR/seq.bin: N MiB in 1 MiB writes, then fsync and close
 *   seqread    read DIR/seq.bin to its end in 1 MiB reads (each block's stamp is checked)
 *   randprep   create DIR/rand.bin: N MiB in 1 MiB writes, fsync (setup, not a result)
 *   randread   --ops preads of 4 KiB at random 4 KiB-aligned offsets of DIR/rand.bin
 *   randwrite  --ops pwrites of 4 KiB at random aligned offsets, then fsync and close
 *   fsync      --ops appends of 100 bytes to DIR/append.log, each followed by fsync
 *
 * The clock (CLOCK_MONOTONIC) runs from just before open to just after close, so process
 * start, loading the shim and opening the volume are not counted. Offsets come from a
 * fixed-seed generator: every target sees the same sequence. Prints one JSON object:
 *   {"workload":"randread","seconds":0.123,"ops":20000,"bytes":81920000,
 *    "sync_seconds":0.001}
 * where sync_seconds is the part spent in the final fsync (0 for reads). Exit status 1 on
 * any failed call or a wrong stamp, with a message on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/status.h"

#define SB_BLOCK       (1024u * 1024u)
#define SB_PAGE        4096u
#define SB_APPEND      100u
#define SB_MIB_MAX     4096u
#define SB_OPS_MAX     10000000u
#define SB_PATH_MAX    4096u
#define SB_NS_PER_SEC  1000000000ull
#define SB_SEED        0x5eed0c0ffe4ull
#define SB_DEFAULT_MIB 256u
#define SB_DEFAULT_OPS 20000u

struct sb_run {
        const char *dir;
        const char *workload;
        uint64_t mib;
        uint64_t ops;
        uint64_t bytes;
        uint64_t ns;
        uint64_t sync_ns;
        uint8_t *buf;
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * SB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* splitmix64: a fixed, portable sequence (not for secrets; rand() is banned anyway). */
static uint64_t next_rand(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Reports the failed call with errno and returns a status, so that every failure is named. */
static cf_status sys_fail(const char *what, const char *path)
{
        int err = errno;

        fprintf(stderr, "shield-bench: %s %s: %s\n", what, path, strerror(err));
        return cf_fail_errno(err);
}

static cf_status join(const struct sb_run *r, const char *name, char out[static SB_PATH_MAX])
{
        int n = snprintf(out, SB_PATH_MAX, "%s/%s", r->dir, name);

        ENSURE(n > 0 && (size_t)n < SB_PATH_MAX, CF_E_LIMIT);
        return CF_OK;
}

/* Marks block number i so that a read can tell a right block from a wrong or empty one. */
static void stamp(uint8_t *block, size_t size, uint64_t i)
{
        memset(block, (int)(i & 0x7fu) | 0x40, size);
        memcpy(block, &i, sizeof(i));
}

static cf_status write_all(int fd, const uint8_t *buf, size_t size, const char *path)
{
        size_t done = 0;

        while (done < size) {
                ssize_t n = write(fd, buf + done, size - done);

                if (n < 0 && errno == EINTR) {
                        continue;
                }
                if (n <= 0) {
                        return sys_fail("write", path);
                }
                done += (size_t)n;
        }
        return CF_OK;
}

static cf_status sync_close(struct sb_run *r, int fd, const char *path)
{
        uint64_t t0 = now_ns();

        if (fsync(fd) != 0) {
                cf_status s = sys_fail("fsync", path);

                close(fd);
                return s;
        }
        r->sync_ns = now_ns() - t0;
        if (close(fd) != 0) {
                return sys_fail("close", path);
        }
        return CF_OK;
}

/* Sequential 1 MiB writes of a new file, then fsync: seqwrite and randprep. */
static cf_status seq_write(struct sb_run *r, const char *name)
{
        char path[SB_PATH_MAX];
        int fd;

        TRY(join(r, name, path));
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                return sys_fail("open", path);
        }
        for (uint64_t i = 0; i < r->mib; i++) {
                cf_status s;

                stamp(r->buf, SB_BLOCK, i);
                s = write_all(fd, r->buf, SB_BLOCK, path);
                if (!cf_ok(s)) {
                        close(fd);
                        return s;
                }
        }
        r->ops = r->mib;
        r->bytes = r->mib * SB_BLOCK;
        return sync_close(r, fd, path);
}

static cf_status seq_read(struct sb_run *r)
{
        char path[SB_PATH_MAX];
        uint64_t blocks = 0;
        int fd;

        TRY(join(r, "seq.bin", path));
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                return sys_fail("open", path);
        }
        for (;;) {
                size_t got = 0;
                uint64_t mark;

                while (got < SB_BLOCK) {
                        ssize_t n = read(fd, r->buf + got, SB_BLOCK - got);

                        if (n < 0 && errno == EINTR) {
                                continue;
                        }
                        if (n < 0) {
                                cf_status s = sys_fail("read", path);

                                close(fd);
                                return s;
                        }
                        if (n == 0) {
                                break;
                        }
                        got += (size_t)n;
                }
                if (got == 0) {
                        break;
                }
                memcpy(&mark, r->buf, sizeof(mark));
                if (got != SB_BLOCK || mark != blocks) {
                        fprintf(stderr, "shield-bench: %s: block %llu is wrong (%zu bytes)\n", path,
                                (unsigned long long)blocks, got);
                        close(fd);
                        return cf_fail(CF_E_MALFORMED);
                }
                blocks++;
                r->bytes += got;
        }
        r->ops = blocks;
        if (close(fd) != 0) {
                return sys_fail("close", path);
        }
        return CF_OK;
}

/* Random 4 KiB reads (write == false) or writes over DIR/rand.bin, made by randprep. */
static cf_status rand_io(struct sb_run *r, bool write_mode)
{
        char path[SB_PATH_MAX];
        uint64_t state = SB_SEED + (write_mode ? 1u : 0u);
        uint64_t pages;
        struct stat st;
        int fd;

        TRY(join(r, "rand.bin", path));
        fd = open(path, (write_mode ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
                return sys_fail("open", path);
        }
        if (fstat(fd, &st) != 0 || st.st_size < (off_t)SB_PAGE) {
                cf_status s = sys_fail("fstat (or too small: run randprep first)", path);

                close(fd);
                return s;
        }
        pages = (uint64_t)st.st_size / SB_PAGE;
        for (uint64_t i = 0; i < r->ops; i++) {
                uint64_t page = next_rand(&state) % pages;
                off_t off = (off_t)(page * SB_PAGE);
                ssize_t n;

                if (write_mode) {
                        stamp(r->buf, SB_PAGE, page);
                        n = pwrite(fd, r->buf, SB_PAGE, off);
                } else {
                        n = pread(fd, r->buf, SB_PAGE, off);
                }
                if (n != (ssize_t)SB_PAGE) {
                        cf_status s = sys_fail(write_mode ? "pwrite" : "pread", path);

                        close(fd);
                        return s;
                }
                r->bytes += SB_PAGE;
        }
        if (write_mode) {
                return sync_close(r, fd, path);
        }
        if (close(fd) != 0) {
                return sys_fail("close", path);
        }
        return CF_OK;
}

/* Small appends, each made durable before the next: a log or a database journal. */
static cf_status append_fsync(struct sb_run *r)
{
        char path[SB_PATH_MAX];
        int fd;

        TRY(join(r, "append.log", path));
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
                return sys_fail("open", path);
        }
        for (uint64_t i = 0; i < r->ops; i++) {
                cf_status s;

                stamp(r->buf, SB_APPEND, i);
                r->buf[SB_APPEND - 1] = '\n';
                s = write_all(fd, r->buf, SB_APPEND, path);
                if (cf_ok(s) && fsync(fd) != 0) {
                        s = sys_fail("fsync", path);
                }
                if (!cf_ok(s)) {
                        close(fd);
                        return s;
                }
                r->bytes += SB_APPEND;
        }
        if (close(fd) != 0) {
                return sys_fail("close", path);
        }
        return CF_OK;
}

static cf_status run(struct sb_run *r)
{
        const char *w = r->workload;
        cf_status s = cf_fail(CF_E_INVALID_ARG);
        uint64_t t0 = now_ns();

        if (strcmp(w, "seqwrite") == 0) {
                s = seq_write(r, "seq.bin");
        } else if (strcmp(w, "randprep") == 0) {
                s = seq_write(r, "rand.bin");
        } else if (strcmp(w, "seqread") == 0) {
                s = seq_read(r);
        } else if (strcmp(w, "randread") == 0) {
                s = rand_io(r, false);
        } else if (strcmp(w, "randwrite") == 0) {
                s = rand_io(r, true);
        } else if (strcmp(w, "fsync") == 0) {
                s = append_fsync(r);
        } else {
                fprintf(stderr, "shield-bench: unknown workload %s\n", w);
        }
        r->ns = now_ns() - t0;
        return s;
}

static int usage(void)
{
        fprintf(stderr, "usage: shield-bench --dir DIR --workload "
                        "seqwrite|seqread|randprep|randread|randwrite|fsync [--mib N] [--ops N]\n");
        return 2;
}

int main(int argc, char **argv)
{
        struct sb_run r = {.mib = SB_DEFAULT_MIB, .ops = SB_DEFAULT_OPS};
        cf_status s;

        for (int i = 1; i < argc; i++) {
                if (i + 1 >= argc) {
                        return usage();
                }
                if (strcmp(argv[i], "--dir") == 0) {
                        r.dir = argv[++i];
                } else if (strcmp(argv[i], "--workload") == 0) {
                        r.workload = argv[++i];
                } else if (strcmp(argv[i], "--mib") == 0) {
                        if (!cf_ok(cf_parse_u64(argv[++i], 1, SB_MIB_MAX, &r.mib))) {
                                return usage();
                        }
                } else if (strcmp(argv[i], "--ops") == 0) {
                        if (!cf_ok(cf_parse_u64(argv[++i], 1, SB_OPS_MAX, &r.ops))) {
                                return usage();
                        }
                } else {
                        return usage();
                }
        }
        if (r.dir == NULL || r.workload == NULL) {
                return usage();
        }
        r.buf = aligned_alloc(SB_PAGE, SB_BLOCK);
        if (r.buf == NULL) {
                fprintf(stderr, "shield-bench: out of memory\n");
                return 1;
        }
        s = run(&r);
        free(r.buf);
        if (!cf_ok(s)) {
                fprintf(stderr, "shield-bench: %s failed: %s\n", r.workload, cf_strerror(s));
                return 1;
        }
        printf("{\"workload\":\"%s\",\"seconds\":%.6f,\"ops\":%llu,\"bytes\":%llu,"
               "\"sync_seconds\":%.6f}\n",
               r.workload, (double)r.ns / (double)SB_NS_PER_SEC, (unsigned long long)r.ops,
               (unsigned long long)r.bytes, (double)r.sync_ns / (double)SB_NS_PER_SEC);
        return 0;
}
