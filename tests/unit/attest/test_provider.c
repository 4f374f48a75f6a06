/* Unit tests of src/attest/provider*.c: the configfs-tsm and LibOS /dev/attestation
 * providers, driven against fake trees in a temporary directory.
 *
 * A fake thread watches the tree with inotify and behaves like the kernel or the LibOS: on
 * mkdir of a report entry it creates the attributes (generation last, so it appears once the
 * entry is complete); on close-write of inblob / user_report_data it records the report data,
 * bumps generation and answers through outblob / quote, which are FIFOs so that the
 * provider's read waits for the answer as it waits for the kernel. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/provider.h"
#include "base/mem.h"
#include "crypto/crypto.h"

#define FAKE_MARKER      "FAKE-EVIDENCE:"
#define FAKE_MAX_ENTRIES 16

enum fake_kind { FAKE_TSM = 1, FAKE_LIBOS };
enum fake_answer { ANSWER_NORMAL = 0, ANSWER_EMPTY, ANSWER_OVERSIZED };

struct fake {
        enum fake_kind kind;
        char root[1024];
        /* behaviour */
        const char *provider;         /* TSM: contents of provider */
        const char *generation;       /* TSM: initial generation text ("0\n" when NULL) */
        const char *attestation_type; /* LibOS: NULL = no attestation_type file */
        const char *aux;              /* TSM: auxblob contents; NULL = no auxblob */
        enum fake_answer answer;
        int races; /* TSM: requests on which generation jumps by 2 */
        /* observations (under mu) */
        pthread_mutex_t mu;
        uint8_t rd[64];
        size_t rd_size;
        int requests, entries;
        /* machinery */
        int ifd, stop[2];
        int wds[FAKE_MAX_ENTRIES];
        char names[FAKE_MAX_ENTRIES][NAME_MAX + 1];
        uint64_t gens[FAKE_MAX_ENTRIES];
        size_t n;
        pthread_t thread;
        bool running;
};

static char g_tmp[512];

/* Writes a file atomically (temporary name, then rename). Used by the fake thread too, so it
 * reports failure instead of asserting (cmocka asserts belong to the test's thread). */
static bool put_text(const char *dir, const char *name, const char *text)
{
        char path[PATH_MAX * 2], tmp[PATH_MAX * 2 + 8];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
        f = fopen(tmp, "w");
        if (f == NULL) {
                return false;
        }
        fputs(text, f);
        return fclose(f) == 0 && rename(tmp, path) == 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
        assert_true(put_text(dir, name, text));
}

static bool make_fifo(const char *dir, const char *name)
{
        char path[PATH_MAX * 2];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, name);

        return n > 0 && (size_t)n < sizeof(path) && mkfifo(path, 0600) == 0;
}

/* Opens a FIFO for writing once its reader is there (bounded: 5 s). */
static int open_writer(const char *path)
{
        const struct timespec step = {0, 1000000L};

        for (int i = 0; i < 5000; i++) {
                int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0) {
                        fcntl(fd, F_SETFL, 0);
                        return fd;
                }
                if (errno != ENXIO) {
                        return -1;
                }
                nanosleep(&step, NULL);
        }
        return -1;
}

static void answer(struct fake *f, const char *fifo)
{
        uint8_t chunk[4096];
        int fd = open_writer(fifo);
        size_t total;

        if (fd < 0) {
                return;
        }
        switch (f->answer) {
        case ANSWER_NORMAL:
                (void)!write(fd, FAKE_MARKER, strlen(FAKE_MARKER));
                (void)!write(fd, f->rd, f->rd_size);
                break;
        case ANSWER_OVERSIZED:
                memset(chunk, 'q', sizeof(chunk));
                for (total = 0; total <= PROVIDER_EVIDENCE_MAX; total += sizeof(chunk)) {
                        if (write(fd, chunk, sizeof(chunk)) < 0) {
                                break; /* the reader stopped at its limit (EPIPE) */
                        }
                }
                break;
        case ANSWER_EMPTY:
        default:
                break;
        }
        close(fd);
}

static void record(struct fake *f, const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        pthread_mutex_lock(&f->mu);
        n = fd >= 0 ? read(fd, f->rd, sizeof(f->rd)) : -1;
        f->rd_size = n > 0 ? (size_t)n : 0;
        f->requests++;
        pthread_mutex_unlock(&f->mu);
        if (fd >= 0) {
                close(fd);
        }
}

static void tsm_new_entry(struct fake *f, const char *name)
{
        char dir[PATH_MAX * 2];
        int wd;

        if (f->n == FAKE_MAX_ENTRIES) {
                return;
        }
        snprintf(dir, sizeof(dir), "%s/%s", f->root, name);
        if (!put_text(dir, "inblob", "") || !make_fifo(dir, "outblob") ||
            !put_text(dir, "provider", f->provider ? f->provider : "tdx_guest\n") ||
            !put_text(dir, "privlevel", "0\n") || !put_text(dir, "privlevel_floor", "0\n") ||
            (f->aux != NULL && !put_text(dir, "auxblob", f->aux))) {
                return; /* the provider then times out, and the test fails */
        }
        /* Watch before generation appears: the provider writes inblob only after that. */
        wd = inotify_add_watch(f->ifd, dir, IN_CLOSE_WRITE);
        if (wd < 0) {
                return;
        }
        f->wds[f->n] = wd;
        snprintf(f->names[f->n], sizeof(f->names[f->n]), "%s", name);
        f->gens[f->n] = 0;
        f->n++;
        pthread_mutex_lock(&f->mu);
        f->entries++;
        pthread_mutex_unlock(&f->mu);
        (void)put_text(dir, "generation", f->generation ? f->generation : "0\n");
}

static void tsm_inblob_written(struct fake *f, size_t i)
{
        char dir[PATH_MAX * 2], path[PATH_MAX * 3], gen[32];
        int step = 1;

        snprintf(dir, sizeof(dir), "%s/%s", f->root, f->names[i]);
        snprintf(path, sizeof(path), "%s/inblob", dir);
        record(f, path);
        if (f->races > 0) {
                f->races--;
                step = 2; /* as if another process had written an option meanwhile */
        }
        f->gens[i] += (uint64_t)step;
        snprintf(gen, sizeof(gen), "%llu\n", (unsigned long long)f->gens[i]);
        (void)put_text(dir, "generation", gen);
        snprintf(path, sizeof(path), "%s/outblob", dir);
        answer(f, path);
}

static void handle(struct fake *f, const struct inotify_event *ev)
{
        char path[PATH_MAX * 2];

        if (ev->len == 0) {
                return;
        }
        if (f->kind == FAKE_LIBOS) {
                if ((ev->mask & IN_CLOSE_WRITE) && strcmp(ev->name, "user_report_data") == 0) {
                        snprintf(path, sizeof(path), "%s/user_report_data", f->root);
                        record(f, path);
                        snprintf(path, sizeof(path), "%s/quote", f->root);
                        answer(f, path);
                }
                return;
        }
        if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR)) {
                tsm_new_entry(f, ev->name);
                return;
        }
        for (size_t i = 0; i < f->n; i++) {
                if (f->wds[i] == ev->wd && (ev->mask & IN_CLOSE_WRITE) &&
                    strcmp(ev->name, "inblob") == 0) {
                        tsm_inblob_written(f, i);
                }
        }
}

static void *fake_main(void *arg)
{
        struct fake *f = arg;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        for (;;) {
                struct pollfd p[2] = {{f->ifd, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
                ssize_t n;

                if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN)) {
                        return NULL;
                }
                n = read(f->ifd, buf, sizeof(buf));
                if (n <= 0) {
                        continue;
                }
                for (ssize_t off = 0; off < n;) {
                        const struct inotify_event *ev = (const void *)(buf + off);
                        handle(f, ev);
                        off += (ssize_t)(sizeof(*ev) + ev->len);
                }
        }
}

static void fake_init(struct fake *f, enum fake_kind kind, const char *name)
{
        memset(f, 0, sizeof(*f));
        f->kind = kind;
        snprintf(f->root, sizeof(f->root), "%s/%s", g_tmp, name);
        assert_int_equal(mkdir(f->root, 0700), 0);
        pthread_mutex_init(&f->mu, NULL);
        f->ifd = -1;
}

/* Starts the fake: call after setting its behaviour. */
static void fake_start(struct fake *f)
{
        f->ifd = inotify_init1(IN_CLOEXEC);
        assert_true(f->ifd >= 0);
        assert_int_equal(pipe2(f->stop, O_CLOEXEC), 0);
        if (f->kind == FAKE_LIBOS) {
                if (f->attestation_type != NULL) {
                        write_text(f->root, "attestation_type", f->attestation_type);
                }
                write_text(f->root, "user_report_data", "");
                assert_true(make_fifo(f->root, "quote"));
                assert_true(inotify_add_watch(f->ifd, f->root, IN_CLOSE_WRITE) >= 0);
        } else {
                assert_true(inotify_add_watch(f->ifd, f->root, IN_CREATE) >= 0);
        }
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        f->running = true;
}

static void fake_stop(struct fake *f)
{
        if (f->running) {
                assert_int_equal(write(f->stop[1], "x", 1), 1);
                pthread_join(f->thread, NULL);
                close(f->stop[0]);
                close(f->stop[1]);
                f->running = false;
        }
        if (f->ifd >= 0) {
                close(f->ifd);
        }
        pthread_mutex_destroy(&f->mu);
}

/* Number of entries left under dir (the provider must remove what it made). */
static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;

        assert_non_null(d);
        while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                        n++;
                }
        }
        closedir(d);
        return n;
}

static void random_rd(uint8_t rd[64])
{
        assert_int_equal(cf_random(rd, 64).code, 0);
}

static void assert_answer(const struct attest_evidence *ev, const uint8_t rd[64])
{
        size_t m = strlen(FAKE_MARKER);

        assert_int_equal(ev->bytes.size, m + 64);
        assert_memory_equal(ev->bytes.ptr, FAKE_MARKER, m);
        assert_memory_equal(ev->bytes.ptr + m, rd, 64);
}

static void assert_seen(struct fake *f, const uint8_t rd[64])
{
        pthread_mutex_lock(&f->mu);
        assert_int_equal(f->rd_size, 64);
        assert_memory_equal(f->rd, rd, 64);
        pthread_mutex_unlock(&f->mu);
}

static void assert_err(const char *err, const char *part)
{
        if (strstr(err, part) == NULL) {
                fail_msg("error message '%s' lacks '%s'", err, part);
        }
}

/* configfs-tsm */

static void test_tsm_tdx(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-tdx");
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, 0);
        assert_int_equal(ev.platform, ATTEST_TDX);
        assert_answer(&ev, rd);
        assert_int_equal(ev.aux.size, 0);
        assert_seen(&f, rd);
        assert_int_equal(f.entries, 1);
        assert_int_equal(count_entries(f.root), 0);
        attest_evidence_done(&ev);
        /* A second request works the same way on a fresh entry. */
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, 0);
        assert_answer(&ev, rd);
        assert_int_equal(count_entries(f.root), 0);
        attest_evidence_done(&ev);
        fake_stop(&f);
}

static void test_tsm_snp_aux(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-snp");
        f.provider = "sev_guest\n";
        f.aux = "CERT-TABLE";
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, 0);
        assert_int_equal(ev.platform, ATTEST_SNP);
        assert_answer(&ev, rd);
        assert_int_equal(ev.aux.size, strlen("CERT-TABLE"));
        assert_memory_equal(ev.aux.ptr, "CERT-TABLE", ev.aux.size);
        assert_int_equal(count_entries(f.root), 0);
        attest_evidence_done(&ev);
        fake_stop(&f);
}

static void test_tsm_snp_no_aux(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-snp-noaux");
        f.provider = "sev_guest\n";
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, 0);
        assert_int_equal(ev.platform, ATTEST_SNP);
        assert_answer(&ev, rd);
        assert_int_equal(ev.aux.size, 0);
        attest_evidence_done(&ev);
        fake_stop(&f);
}

static void test_tsm_race_retried(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-race");
        f.races = 1;
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, 0);
        assert_answer(&ev, rd);
        assert_int_equal(f.entries, 2);
        assert_int_equal(f.requests, 2);
        assert_int_equal(count_entries(f.root), 0);
        attest_evidence_done(&ev);
        fake_stop(&f);
}

static void test_tsm_race_every_time(void **state)
{
        struct attest_evidence ev = {.platform = 99};
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-race-always");
        f.races = 1000;
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, CF_E_CONFLICT);
        assert_err(err, "generation went from 0 to 2");
        assert_err(err, "another process");
        assert_int_equal(ev.platform, 99); /* out untouched on failure */
        assert_int_equal(f.entries, PROVIDER_TSM_ATTEMPTS);
        assert_int_equal(count_entries(f.root), 0);
        fake_stop(&f);
}

static void test_tsm_missing_root(void **state)
{
        struct attest_evidence ev;
        char root[PATH_MAX + 16], err[512] = "";
        uint8_t rd[64] = {0};

        (void)state;
        snprintf(root, sizeof(root), "%s/no-such-tsm", g_tmp);
        assert_int_equal(provider_tsm_get(root, rd, &ev, err, sizeof(err)).code, CF_E_NOT_FOUND);
        assert_err(err, "configfs-tsm not found at");
        assert_err(err, root);
        assert_err(err, "Linux 6.7");
}

static void test_tsm_unknown_provider(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-unknown");
        f.provider = "arm_cca_guest\n";
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code,
                         CF_E_UNSUPPORTED);
        assert_err(err, "unknown configfs-tsm provider 'arm_cca_guest'");
        assert_err(err, "/provider");
        assert_int_equal(count_entries(f.root), 0);
        fake_stop(&f);
}

static void test_tsm_empty_outblob(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-empty");
        f.answer = ANSWER_EMPTY;
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, CF_E_EVIDENCE);
        assert_err(err, "/outblob is empty");
        assert_seen(&f, rd);
        assert_int_equal(count_entries(f.root), 0);
        fake_stop(&f);
}

static void test_tsm_oversized_outblob(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-big");
        f.answer = ANSWER_OVERSIZED;
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, CF_E_LIMIT);
        assert_err(err, "/outblob is larger than 65536 bytes");
        assert_int_equal(count_entries(f.root), 0);
        fake_stop(&f);
}

static void test_tsm_bad_generation(void **state)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "tsm-badgen");
        f.generation = "-1\n";
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_tsm_get(f.root, rd, &ev, err, sizeof(err)).code, CF_E_MALFORMED);
        assert_err(err, "generation is not a decimal number: '-1'");
        assert_int_equal(count_entries(f.root), 0);
        fake_stop(&f);
}

static void test_tsm_not_populated(void **state)
{
        struct attest_evidence ev;
        char root[PATH_MAX + 16], err[512] = "";
        uint8_t rd[64] = {0};

        (void)state;
        /* A plain directory: nothing populates the entry. */
        snprintf(root, sizeof(root), "%s/tsm-dead", g_tmp);
        assert_int_equal(mkdir(root, 0700), 0);
        assert_int_equal(provider_tsm_get(root, rd, &ev, err, sizeof(err)).code, CF_E_TIMEOUT);
        assert_err(err, "not populated");
        assert_int_equal(count_entries(root), 0);
}

static void test_tsm_root_is_file(void **state)
{
        struct attest_evidence ev;
        char root[PATH_MAX + 16], err[512] = "";
        uint8_t rd[64] = {0};

        (void)state;
        snprintf(root, sizeof(root), "%s/tsm-file", g_tmp);
        write_text(g_tmp, "tsm-file", "x");
        assert_int_not_equal(provider_tsm_get(root, rd, &ev, err, sizeof(err)).code, 0);
        assert_err(err, root);
        assert_err(err, "Not a directory");
}

/* LibOS /dev/attestation */

static void libos_ok(const char *name, const char *type)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        fake_init(&f, FAKE_LIBOS, name);
        f.attestation_type = type;
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_libos_get(f.root, rd, &ev, err, sizeof(err)).code, 0);
        assert_int_equal(ev.platform, ATTEST_SGX);
        assert_answer(&ev, rd);
        assert_seen(&f, rd);
        attest_evidence_done(&ev);
        fake_stop(&f);
}

static void test_libos_dcap(void **state)
{
        (void)state;
        libos_ok("libos-dcap", "dcap");
        libos_ok("libos-dcap-nl", "dcap\n");
        libos_ok("libos-notype", NULL);
}

static void libos_fails(const char *name, const char *type, enum fake_answer a, int code,
                        const char *part)
{
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        fake_init(&f, FAKE_LIBOS, name);
        f.attestation_type = type;
        f.answer = a;
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_libos_get(f.root, rd, &ev, err, sizeof(err)).code, code);
        assert_err(err, part);
        fake_stop(&f);
}

static void test_libos_errors(void **state)
{
        (void)state;
        libos_fails("libos-none", "none", ANSWER_NORMAL, CF_E_UNSUPPORTED,
                    "no remote attestation configured");
        libos_fails("libos-epid", "epid", ANSWER_NORMAL, CF_E_UNSUPPORTED,
                    "attestation_type is 'epid'");
        libos_fails("libos-empty", "dcap", ANSWER_EMPTY, CF_E_EVIDENCE, "/quote is empty");
        libos_fails("libos-big", "dcap", ANSWER_OVERSIZED, CF_E_LIMIT,
                    "/quote is larger than 65536 bytes");
}

static void test_libos_missing_root(void **state)
{
        struct attest_evidence ev;
        char root[PATH_MAX + 16], err[512] = "";
        uint8_t rd[64] = {0};

        (void)state;
        snprintf(root, sizeof(root), "%s/no-such-attestation", g_tmp);
        assert_int_equal(provider_libos_get(root, rd, &ev, err, sizeof(err)).code, CF_E_NOT_FOUND);
        assert_err(err, "the LibOS attestation interface not found at");
        assert_err(err, root);
}

/* Choice of provider */

static void test_choose(void **state)
{
        struct provider_choice c;
        char tsm[PATH_MAX + 16], libos[PATH_MAX + 16], none[PATH_MAX + 16], err[512] = "";

        (void)state;
        snprintf(tsm, sizeof(tsm), "%s/choose-tsm", g_tmp);
        snprintf(libos, sizeof(libos), "%s/choose-libos", g_tmp);
        snprintf(none, sizeof(none), "%s/choose-none", g_tmp);
        assert_int_equal(mkdir(tsm, 0700), 0);
        assert_int_equal(mkdir(libos, 0700), 0);

        assert_int_equal(provider_choose("sim", tsm, libos, &c, err, sizeof(err)).code, 0);
        assert_int_equal(c.kind, PROVIDER_SIM);
        assert_int_equal(provider_choose("tdx", none, none, &c, err, sizeof(err)).code, 0);
        assert_true(c.kind == PROVIDER_TSM && c.platform == ATTEST_TDX);
        assert_int_equal(provider_choose("snp", none, none, &c, err, sizeof(err)).code, 0);
        assert_true(c.kind == PROVIDER_TSM && c.platform == ATTEST_SNP);
        assert_int_equal(provider_choose("sgx", none, none, &c, err, sizeof(err)).code, 0);
        assert_true(c.kind == PROVIDER_LIBOS && c.platform == ATTEST_SGX);

        assert_int_equal(provider_choose("auto", tsm, libos, &c, err, sizeof(err)).code, 0);
        assert_true(c.kind == PROVIDER_TSM && c.platform == 0);
        assert_int_equal(provider_choose("auto", none, libos, &c, err, sizeof(err)).code, 0);
        assert_true(c.kind == PROVIDER_LIBOS && c.platform == ATTEST_SGX);
        assert_int_equal(provider_choose("auto", none, none, &c, err, sizeof(err)).code, 0);
        assert_int_equal(c.kind, PROVIDER_SIM);

        assert_int_equal(provider_choose("TDX", tsm, libos, &c, err, sizeof(err)).code,
                         CF_E_INVALID_ARG);
        assert_err(err, "unknown TEE 'TDX' (expected auto, sim, tdx, snp or sgx)");
        assert_int_equal(provider_choose(NULL, tsm, libos, &c, err, sizeof(err)).code,
                         CF_E_INVALID_ARG);
}

static void test_get_checks_platform(void **state)
{
        struct provider_choice c = {PROVIDER_TSM, ATTEST_TDX};
        struct attest_evidence ev;
        struct fake f;
        uint8_t rd[64];
        char err[512] = "";

        (void)state;
        fake_init(&f, FAKE_TSM, "get-snp");
        f.provider = "sev_guest\n";
        fake_start(&f);
        random_rd(rd);
        assert_int_equal(provider_get(&c, f.root, NULL, rd, &ev, err, sizeof(err)).code,
                         CF_E_UNSUPPORTED);
        assert_err(err, "tdx evidence was asked for");
        assert_err(err, "provides snp evidence");
        assert_int_equal(count_entries(f.root), 0);
        /* The same tree serves --tee snp and --tee auto. */
        c.platform = ATTEST_SNP;
        assert_int_equal(provider_get(&c, f.root, NULL, rd, &ev, err, sizeof(err)).code, 0);
        assert_int_equal(ev.platform, ATTEST_SNP);
        assert_answer(&ev, rd);
        attest_evidence_done(&ev);
        c.platform = 0;
        assert_int_equal(provider_get(&c, f.root, NULL, rd, &ev, err, sizeof(err)).code, 0);
        assert_int_equal(ev.platform, ATTEST_SNP);
        attest_evidence_done(&ev);
        fake_stop(&f);

        c = (struct provider_choice){PROVIDER_SIM, ATTEST_SIM};
        assert_int_equal(provider_get(&c, NULL, NULL, rd, &ev, err, sizeof(err)).code,
                         CF_E_INVALID_ARG);
}

static int setup(void **state)
{
        const char *base = secure_getenv("TMPDIR");

        (void)state;
        /* The oversized answers end with the provider closing its end of a FIFO. */
        signal(SIGPIPE, SIG_IGN);
        if (!cf_ok(cf_crypto_init())) {
                return -1;
        }
        snprintf(g_tmp, sizeof(g_tmp), "%s/coffer-test-provider-XXXXXX",
                 base && *base ? base : "/tmp");
        return mkdtemp(g_tmp) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[PATH_MAX + 16];

        (void)state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tsm_tdx),
            cmocka_unit_test(test_tsm_snp_aux),
            cmocka_unit_test(test_tsm_snp_no_aux),
            cmocka_unit_test(test_tsm_race_retried),
            cmocka_unit_test(test_tsm_race_every_time),
            cmocka_unit_test(test_tsm_missing_root),
            cmocka_unit_test(test_tsm_unknown_provider),
            cmocka_unit_test(test_tsm_empty_outblob),
            cmocka_unit_test(test_tsm_oversized_outblob),
            cmocka_unit_test(test_tsm_bad_generation),
            cmocka_unit_test(test_tsm_not_populated),
            cmocka_unit_test(test_tsm_root_is_file),
            cmocka_unit_test(test_libos_dcap),
            cmocka_unit_test(test_libos_errors),
            cmocka_unit_test(test_libos_missing_root),
            cmocka_unit_test(test_choose),
            cmocka_unit_test(test_get_checks_platform),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
