/* libcoffer-shield.so: the LD_PRELOAD front-end of shielded volumes (docs/shield-preload.md,
 * ARCHITECTURE.md §9, INTERPOSITION.md).
 *
 * Every interposed libc function first asks whether its path or descriptor belongs to a
 * shielded volume. If not, the call goes unchanged to the real libc function (resolved once
 * with dlsym(RTLD_NEXT)). If so, it is served by the shield library under one process-wide
 * mutex; a shielded descriptor is a real kernel descriptor (an empty memfd, see
 * docs/shield-preload.md) used as a placeholder, and the fd table maps it to its open file
 * description. The shim's own libc calls (the shield's POSIX storage included) come back
 * through these same symbols; a thread-local depth counter sends them straight to libc.
 *
 * Linux x86-64 only: off_t is 64 bits, so the "64" names are the same functions. */

/* The build may define _FORTIFY_SOURCE: its inline wrappers of open, read and friends
 * would clash with the definitions of those names in this file. */
#undef _FORTIFY_SOURCE
/* Meson adds -D_FILE_OFFSET_BITS=64, which renames open to open64 and so on in the headers;
 * this file defines both names itself. */
#undef _FILE_OFFSET_BITS

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "base/codec.h"
#include "base/cursor.h"
#include "base/io.h"
#include "base/mem.h"
#include "crypto/crypto.h"
#include "shield/preload/preload_internal.h"

#define PRE_EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(off_t) == 8, "Linux x86-64 only: the 64 variants alias the plain ones");
_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat64 must equal stat");
_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "dirent64 must equal dirent");

/* Process exit status when the shim refuses to run a program (bad configuration, rollback,
 * a volume in use): the program never starts, so it never sees a stale or foreign volume. */
#define PRE_EXIT_REFUSED 125
#define PRE_DEV_BASE     0xc0ff0000u /* st_dev of volume i is PRE_DEV_BASE + i */

/* ---------------------------------------------------------------------------------------
 * The real libc functions. */

static struct {
        int (*openat)(int, const char *, int, ...);
        ssize_t (*read)(int, void *, size_t);
        ssize_t (*write)(int, const void *, size_t);
        ssize_t (*pread)(int, void *, size_t, off_t);
        ssize_t (*pwrite)(int, const void *, size_t, off_t);
        ssize_t (*readv)(int, const struct iovec *, int);
        ssize_t (*writev)(int, const struct iovec *, int);
        ssize_t (*preadv)(int, const struct iovec *, int, off_t);
        ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
        off_t (*lseek)(int, off_t, int);
        int (*fstat)(int, struct stat *);
        int (*fstatat)(int, const char *, struct stat *, int);
        int (*statx)(int, const char *, int, unsigned, struct statx *);
        int (*ftruncate)(int, off_t);
        int (*truncate)(const char *, off_t);
        int (*fsync)(int);
        int (*fdatasync)(int);
        int (*close)(int);
        int (*dup)(int);
        int (*dup2)(int, int);
        int (*dup3)(int, int, int);
        int (*fcntl)(int, int, ...);
        int (*renameat2)(int, const char *, int, const char *, unsigned);
        int (*unlinkat)(int, const char *, int);
        int (*mkdirat)(int, const char *, mode_t);
        int (*faccessat)(int, const char *, int, int);
        DIR *(*opendir)(const char *);
        DIR *(*fdopendir)(int);
        struct dirent *(*readdir)(DIR *);
        struct dirent64 *(*readdir64)(DIR *);
        int (*closedir)(DIR *);
        int (*dirfd)(DIR *);
        void (*rewinddir)(DIR *);
        ssize_t (*copy_file_range)(int, off_t *, int, off_t *, size_t, unsigned);
        ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned);
        ssize_t (*sendfile)(int, int, off_t *, size_t);
        void *(*mmap)(void *, size_t, int, int, int, off_t);
        int (*close_range)(unsigned, unsigned, int);
        ssize_t (*getxattr)(const char *, const char *, void *, size_t);
        ssize_t (*lgetxattr)(const char *, const char *, void *, size_t);
        ssize_t (*fgetxattr)(int, const char *, void *, size_t);
        ssize_t (*listxattr)(const char *, char *, size_t);
        ssize_t (*llistxattr)(const char *, char *, size_t);
        ssize_t (*flistxattr)(int, char *, size_t);
        int (*setxattr)(const char *, const char *, const void *, size_t, int);
        int (*lsetxattr)(const char *, const char *, const void *, size_t, int);
        int (*fsetxattr)(int, const char *, const void *, size_t, int);
        int (*removexattr)(const char *, const char *);
        int (*lremovexattr)(const char *, const char *);
        int (*fremovexattr)(int, const char *);
        int (*chdir)(const char *);
        int (*fchdir)(int);
        char *(*getcwd)(char *, size_t);
        char *(*get_current_dir_name)(void);
        char *(*getwd)(char *);
        char *(*realpath)(const char *, char *);
        char *(*canonicalize_file_name)(const char *);
        ssize_t (*readlink)(const char *, char *, size_t);
        ssize_t (*readlinkat)(int, const char *, char *, size_t);
        int (*link)(const char *, const char *);
        int (*linkat)(int, const char *, int, const char *, int);
        int (*symlink)(const char *, const char *);
        int (*symlinkat)(const char *, int, const char *);
        int (*chmod)(const char *, mode_t);
        int (*lchmod)(const char *, mode_t);
        int (*fchmod)(int, mode_t);
        int (*fchmodat)(int, const char *, mode_t, int);
        int (*chown)(const char *, uid_t, gid_t);
        int (*lchown)(const char *, uid_t, gid_t);
        int (*fchown)(int, uid_t, gid_t);
        int (*fchownat)(int, const char *, uid_t, gid_t, int);
        int (*utime)(const char *, const struct utimbuf *);
        int (*utimes)(const char *, const struct timeval *);
        int (*lutimes)(const char *, const struct timeval *);
        int (*futimes)(int, const struct timeval *);
        int (*futimesat)(int, const char *, const struct timeval *);
        int (*utimensat)(int, const char *, const struct timespec *, int);
        int (*futimens)(int, const struct timespec *);
        int (*euidaccess)(const char *, int);
} g_real;

static void raw_stderr(const char *s, size_t n)
{
        /* A raw system call: this also runs before the real write is resolved. */
        (void)!syscall(SYS_write, 2, s, n);
}

void pre_warn(const char *fmt, ...)
{
        char line[512];
        int saved = errno;
        int n = snprintf(line, sizeof(line), "coffer-shield: ");
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
        if (len > sizeof(line) - 2) {
                len = sizeof(line) - 2;
        }
        line[len++] = '\n';
        raw_stderr(line, len);
        errno = saved;
}

/* Refuses to run: the message says why, and the program never starts. */
__attribute__((format(printf, 1, 2), noreturn)) static void pre_die(const char *fmt, ...)
{
        char line[512];
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        pre_warn("%s", m < 0 ? "refused" : line);
        _exit(PRE_EXIT_REFUSED);
}

static void *need(const char *name)
{
        void *p = dlsym(RTLD_NEXT, name);
        if (p == NULL) {
                pre_warn("libc has no %s: refusing to run unshielded", name);
                abort();
        }
        return p;
}

#define RESOLVE(field, name) (*(void **)&g_real.field = need(name))

static void resolve_real(void)
{
        RESOLVE(openat, "openat");
        RESOLVE(read, "read");
        RESOLVE(write, "write");
        RESOLVE(pread, "pread64");
        RESOLVE(pwrite, "pwrite64");
        RESOLVE(readv, "readv");
        RESOLVE(writev, "writev");
        RESOLVE(preadv, "preadv64");
        RESOLVE(pwritev, "pwritev64");
        RESOLVE(lseek, "lseek64");
        RESOLVE(fstat, "fstat64");
        RESOLVE(fstatat, "fstatat64");
        RESOLVE(statx, "statx");
        RESOLVE(ftruncate, "ftruncate64");
        RESOLVE(truncate, "truncate64");
        RESOLVE(fsync, "fsync");
        RESOLVE(fdatasync, "fdatasync");
        RESOLVE(close, "close");
        RESOLVE(dup, "dup");
        RESOLVE(dup2, "dup2");
        RESOLVE(dup3, "dup3");
        RESOLVE(fcntl, "fcntl64");
        RESOLVE(renameat2, "renameat2");
        RESOLVE(unlinkat, "unlinkat");
        RESOLVE(mkdirat, "mkdirat");
        RESOLVE(faccessat, "faccessat");
        RESOLVE(opendir, "opendir");
        RESOLVE(fdopendir, "fdopendir");
        RESOLVE(readdir, "readdir");
        RESOLVE(readdir64, "readdir64");
        RESOLVE(closedir, "closedir");
        RESOLVE(dirfd, "dirfd");
        RESOLVE(rewinddir, "rewinddir");
        RESOLVE(copy_file_range, "copy_file_range");
        RESOLVE(splice, "splice");
        RESOLVE(sendfile, "sendfile64");
        RESOLVE(mmap, "mmap64");
        RESOLVE(close_range, "close_range");
        RESOLVE(getxattr, "getxattr");
        RESOLVE(lgetxattr, "lgetxattr");
        RESOLVE(fgetxattr, "fgetxattr");
        RESOLVE(listxattr, "listxattr");
        RESOLVE(llistxattr, "llistxattr");
        RESOLVE(flistxattr, "flistxattr");
        RESOLVE(setxattr, "setxattr");
        RESOLVE(lsetxattr, "lsetxattr");
        RESOLVE(fsetxattr, "fsetxattr");
        RESOLVE(removexattr, "removexattr");
        RESOLVE(lremovexattr, "lremovexattr");
        RESOLVE(fremovexattr, "fremovexattr");
        RESOLVE(chdir, "chdir");
        RESOLVE(fchdir, "fchdir");
        RESOLVE(getcwd, "getcwd");
        RESOLVE(get_current_dir_name, "get_current_dir_name");
        RESOLVE(getwd, "getwd");
        RESOLVE(realpath, "realpath");
        RESOLVE(canonicalize_file_name, "canonicalize_file_name");
        RESOLVE(readlink, "readlink");
        RESOLVE(readlinkat, "readlinkat");
        RESOLVE(link, "link");
        RESOLVE(linkat, "linkat");
        RESOLVE(symlink, "symlink");
        RESOLVE(symlinkat, "symlinkat");
        RESOLVE(chmod, "chmod");
        RESOLVE(lchmod, "lchmod");
        RESOLVE(fchmod, "fchmod");
        RESOLVE(fchmodat, "fchmodat");
        RESOLVE(chown, "chown");
        RESOLVE(lchown, "lchown");
        RESOLVE(fchown, "fchown");
        RESOLVE(fchownat, "fchownat");
        RESOLVE(utime, "utime");
        RESOLVE(utimes, "utimes");
        RESOLVE(lutimes, "lutimes");
        RESOLVE(futimes, "futimes");
        RESOLVE(futimesat, "futimesat");
        RESOLVE(utimensat, "utimensat");
        RESOLVE(futimens, "futimens");
        RESOLVE(euidaccess, "euidaccess");
        pre_stdio_resolve(need);
}

/* Another library's constructor may call in before ours ran: resolve on first use. */
static pthread_once_t g_resolve_once = PTHREAD_ONCE_INIT;
#define REAL(fn) (g_real.fn != NULL ? g_real.fn : (pre_resolve(), g_real.fn))

void pre_resolve(void)
{
        pthread_once(&g_resolve_once, resolve_real);
}

/* ---------------------------------------------------------------------------------------
 * State. One mutex guards everything below and every shield call. */

struct pre_vol {
        char mount[PRE_PATH_MAX + 1];
        size_t mount_len;
        char backing[PRE_PATH_MAX + 1];
        struct shield_posix *st; /* NULL for a mount without a volume (denied) */
        struct shield_volume *v; /* NULL likewise */
        int lock_fd;             /* the backing directory, flock'ed exclusively */
        dev_t dev;
        unsigned n_writers;    /* open descriptions with write access */
        bool dirty;            /* changes since the last commit */
        bool rdonly;           /* reopened read-only while a relative writes */
        uint64_t gen;          /* the family generation v reflects */
        struct cf_secret *key; /* kept to reopen v after a relative's commit */
        struct timespec mtime; /* reported as every time of every entry */
        bool batched;          /* freshness "batched": commits are reported after the fact */
        uint32_t window_ms;    /* batched: the bound on how late cofferd may hear of one */
        size_t cache_bytes;    /* plaintext cache budget, set again on every (re)open */
        bool cache_warned;     /* a set_cache failure was reported once */
};

/* An open directory stream of a shielded directory, handed out as a DIR *. */
struct pre_dir {
        struct pre_dir *next;
        int fd; /* its shielded descriptor, closed by closedir */
        struct dirent *ent;
        size_t n, cap, pos;
};

/* State shared by a process and its forked children (a MAP_SHARED anonymous page made by
 * the constructor): per volume, the generation and tag of the last commit by any of them,
 * and which of them holds the write token. See docs/shield-preload.md "fork". */
#define PRE_UNACKED_MAX 16 /* batched commits remembered with their time (see agent_unacked) */
struct pre_unacked {
        uint64_t generation; /* a volume generation reported to the agent, not yet acked */
        int64_t t_ms;        /* CLOCK_MONOTONIC time of that commit */
};
struct pre_family_vol {
        uint64_t gen;
        uint8_t tag[SHIELD_TAG_SIZE];
        pid_t writer; /* 0: nobody has uncommitted changes */
        /* Batched freshness: reported commits cofferd has not confirmed yet, oldest first.
         * When full, the last entry takes the newest generation and keeps its older time,
         * which only makes the bound check earlier (conservative). */
        struct pre_unacked unacked[PRE_UNACKED_MAX];
        unsigned n_unacked;
};
struct pre_family {
        pthread_mutex_t lock; /* process-shared, robust */
        struct pre_family_vol vol[PRE_VOLUMES_MAX];
};

#define PRE_WRITER_WAIT_MS 2000 /* how long a relative waits for the write token */

static struct pre_family *g_family;
static struct pre_vol g_vol[PRE_VOLUMES_MAX];
static size_t g_n_vol;
static struct pre_fdtable g_fds;
static struct pre_dir *g_dirs;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_ready;
static pid_t g_pid; /* this process: a vfork child (no atfork handler ran) differs */
static char g_tag_file[PATH_MAX];
static __thread unsigned t_depth __attribute__((tls_model("initial-exec")));
/* The virtual working directory (docs/shield-preload.md "Working directory"): set by a
 * chdir or fchdir into a shielded directory, absolute and normalised, process-wide like the
 * kernel's. The kernel's working directory is left where it was. Guarded by g_lock. */
static char g_cwd[PRE_ABS_MAX];
static bool g_cwd_set;

bool pre_active(void)
{
        return t_depth == 0 && __atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) && g_n_vol > 0;
}

static void enter(void)
{
        t_depth++;
        pthread_mutex_lock(&g_lock);
}

static void leave(void)
{
        pthread_mutex_unlock(&g_lock);
        t_depth--;
}

/* Converts an internal result (negative errno on failure) to the libc convention, keeping
 * the caller's errno on success. */
static ssize_t finish(int saved, ssize_t r)
{
        if (r < 0) {
                errno = (int)-r;
                return -1;
        }
        errno = saved;
        return r;
}

static void touch(struct pre_vol *vol)
{
        vol->dirty = true;
        clock_gettime(CLOCK_REALTIME, &vol->mtime);
}

static bool is_writable(int flags)
{
        int acc = flags & O_ACCMODE;
        return acc == O_WRONLY || acc == O_RDWR;
}

/* ---------------------------------------------------------------------------------------
 * The freshness agent (coffer-run's parent process, docs/shield-preload.md "agent"): with
 * COFFER_SHIELD_AGENT_FD, every commit is told to cofferd. One request per line:
 *   prepare INDEX TAGHEX GEN  strict: before the new manifest is written; answered ok|error
 *   commit INDEX TAGHEX GEN   strict: after it was renamed into place; answered ok|error
 *   advance INDEX TAGHEX GEN  batched: after the local commit; not answered at once: the
 *                             agent sends the newest pending one to cofferd within a quarter
 *                             of the window and then writes "ack INDEX GEN"
 * Requests are made (and replies read) under the family lock, so related processes never
 * interleave; an "ack" read by any of them updates the shared family state. */

#define PRE_ENV_AGENT     "COFFER_SHIELD_AGENT_FD"
#define PRE_AGENT_WAIT_MS 30000

static int g_agent_fd = -1;

static int64_t now_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void agent_acked(size_t index, uint64_t generation);

/* Reads one line of at most out_size - 1 bytes, waiting up to wait_ms (0: only when bytes
 * are already there). CF_E_TIMEOUT when none came, CF_E_IO when the agent is gone. */
static CF_FN agent_line(char *out, size_t out_size, int wait_ms)
{
        size_t got = 0;
        for (;;) {
                struct pollfd p = {g_agent_fd, POLLIN, 0};
                int r = poll(&p, 1, got == 0 ? wait_ms : PRE_AGENT_WAIT_MS);
                if (r < 0 && errno == EINTR) {
                        continue;
                }
                ENSURE(r > 0, r == 0 ? CF_E_TIMEOUT : CF_E_IO);
                ssize_t rd = REAL(read)(g_agent_fd, out + got, 1);
                ENSURE(rd == 1, CF_E_IO);
                if (out[got] == '\n') {
                        out[got] = '\0';
                        return CF_OK;
                }
                ENSURE(++got < out_size, CF_E_MALFORMED);
        }
}

/* Handles "ack INDEX GEN"; true when line was one. */
static bool agent_ack_line(const char *line)
{
        uint64_t idx, gen;
        char num[24];
        const char *sp;
        if (strncmp(line, "ack ", 4) != 0 || (sp = strchr(line + 4, ' ')) == NULL ||
            (size_t)(sp - (line + 4)) >= sizeof(num)) {
                return false;
        }
        memcpy(num, line + 4, (size_t)(sp - (line + 4)));
        num[sp - (line + 4)] = '\0';
        if (!cf_ok(cf_parse_u64(num, 0, PRE_VOLUMES_MAX - 1, &idx)) ||
            !cf_ok(cf_parse_u64(sp + 1, 0, UINT64_MAX, &gen))) {
                return false;
        }
        agent_acked((size_t)idx, gen);
        return true;
}

static CF_FN agent_send(const char *verb, size_t index, const uint8_t tag[SHIELD_TAG_SIZE],
                        uint64_t generation)
{
        char line[160];
        size_t n;
        int k = snprintf(line, sizeof(line), "%s %zu ", verb, index);
        ENSURE(k > 0 && (size_t)k < sizeof(line) - 2 * SHIELD_TAG_SIZE - 24, CF_E_LIMIT);
        n = (size_t)k;
        cf_hex_encode(tag, SHIELD_TAG_SIZE, line + n, sizeof(line) - n);
        n += 2 * SHIELD_TAG_SIZE;
        k = snprintf(line + n, sizeof(line) - n, " %llu\n", (unsigned long long)generation);
        ENSURE(k > 0 && (size_t)k < sizeof(line) - n, CF_E_LIMIT);
        n += (size_t)k;
        for (size_t off = 0; off < n;) {
                ssize_t w = REAL(write)(g_agent_fd, line + off, n - off);
                if (w < 0 && errno == EINTR) {
                        continue;
                }
                ENSURE(w > 0, CF_E_IO);
                off += (size_t)w;
        }
        return CF_OK;
}

/* A strict request: waits for its "ok" (acks of batched volumes on the way are handled). */
static cf_status agent_call(const char *verb, size_t index, const uint8_t tag[SHIELD_TAG_SIZE],
                            uint64_t generation)
{
        char reply[64];

        if (g_agent_fd < 0) {
                return CF_OK;
        }
        TRY(agent_send(verb, index, tag, generation));
        do {
                TRY(agent_line(reply, sizeof(reply), PRE_AGENT_WAIT_MS));
        } while (agent_ack_line(reply));
        ENSURE(strcmp(reply, "ok") == 0, CF_E_REFUSED);
        return CF_OK;
}

static cf_status agent_prepare(void *ctx, const uint8_t tag[SHIELD_TAG_SIZE], uint64_t generation);

/* ---------------------------------------------------------------------------------------
 * Commit and the tag file. */

/* Replaces path with data: a temporary file (named after the process) renamed over it.
 * Atomic for readers and after the process dies; deliberately NOT fsync'ed. The tag file
 * is a stand-in for cofferd in tests and benchmarks (the durable copy of a tag is
 * cofferd's), and two more synchronous flushes per commit would dwarf the commit itself. */
static cf_status replace_file(const char *path, const char *data, size_t size)
{
        char tmp[PATH_MAX];
        int n = snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
        ENSURE(n > 0 && (size_t)n < sizeof(tmp), CF_E_LIMIT);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        TRY_ERRNO(fd);
        cf_status s = cf_write_all(fd, data, size);
        if (close(fd) != 0 && cf_ok(s)) {
                s = cf_fail_errno(errno);
        }
        if (cf_ok(s) && rename(tmp, path) != 0) {
                s = cf_fail_errno(errno);
        }
        if (!cf_ok(s)) {
                unlink(tmp);
        }
        return s;
}

/* Writes one line per volume, in configuration order: the hex tag of its last commit, or
 * "none" for a new volume never committed. Atomic (temporary file and rename). */
static void publish_tags(void)
{
        if (g_tag_file[0] == '\0') {
                return;
        }
        char text[PRE_VOLUMES_MAX * (2 * SHIELD_TAG_SIZE + 1) + 1];
        size_t n = 0;
        for (size_t i = 0; i < g_n_vol; i++) {
                uint8_t tag[SHIELD_TAG_SIZE];
                if (g_vol[i].v != NULL && cf_ok(shield_volume_tag(g_vol[i].v, tag))) {
                        cf_hex_encode(tag, sizeof(tag), text + n, sizeof(text) - n);
                        n += 2 * SHIELD_TAG_SIZE;
                } else {
                        memcpy(text + n, "none", 4);
                        n += 4;
                }
                text[n++] = '\n';
        }
        cf_status s = replace_file(g_tag_file, text, n);
        if (!cf_ok(s)) {
                pre_warn("cannot write the tag file %s: %s", g_tag_file, cf_strerror(s));
        }
}

static void family_lock(void)
{
        if (pthread_mutex_lock(&g_family->lock) == EOWNERDEAD) {
                /* A relative died holding it; the data it guards is always consistent. */
                pthread_mutex_consistent(&g_family->lock);
        }
}

static void family_unlock(void)
{
        pthread_mutex_unlock(&g_family->lock);
}

static size_t vol_index(const struct pre_vol *vol)
{
        return (size_t)(vol - g_vol);
}

/* An ack from the agent: cofferd recorded generation `generation` (or newer) of volume
 * `index`. The family lock is held. */
static void agent_acked(size_t index, uint64_t generation)
{
        if (index >= g_n_vol) {
                return;
        }
        struct pre_family_vol *fv = &g_family->vol[index];
        unsigned keep = 0;
        for (unsigned i = 0; i < fv->n_unacked; i++) {
                if (fv->unacked[i].generation > generation) {
                        fv->unacked[keep++] = fv->unacked[i];
                }
        }
        fv->n_unacked = keep;
}

/* Batched: reports a local commit to the agent (no wait). The family lock is held. */
static cf_status agent_advance(struct pre_vol *vol, const uint8_t tag[SHIELD_TAG_SIZE],
                               uint64_t generation)
{
        if (g_agent_fd < 0) {
                return CF_OK;
        }
        struct pre_family_vol *fv = &g_family->vol[vol_index(vol)];
        if (fv->n_unacked < PRE_UNACKED_MAX) {
                fv->unacked[fv->n_unacked].generation = generation;
                fv->unacked[fv->n_unacked].t_ms = now_ms();
                fv->n_unacked++;
        } else {
                fv->unacked[PRE_UNACKED_MAX - 1].generation = generation;
        }
        return agent_send("advance", vol_index(vol), tag, generation);
}

/* Batched: reads the acks that arrived, then waits (up to PRE_AGENT_WAIT_MS) until no
 * reported commit of vol is older than max_age_ms (0: until every one is acked). The
 * family lock is held. CF_E_TIMEOUT, CF_E_IO (the agent is gone). */
static cf_status agent_wait(struct pre_vol *vol, int64_t max_age_ms)
{
        if (g_agent_fd < 0) {
                return CF_OK;
        }
        struct pre_family_vol *fv = &g_family->vol[vol_index(vol)];
        int64_t deadline = now_ms() + PRE_AGENT_WAIT_MS;
        char line[64];
        bool block = false;
        for (;;) {
                int64_t now = now_ms();
                bool late = fv->n_unacked > 0 &&
                            (max_age_ms == 0 || now - fv->unacked[0].t_ms >= max_age_ms);
                if (block && !late) {
                        return CF_OK;
                }
                ENSURE(now < deadline, CF_E_TIMEOUT);
                cf_status s = agent_line(line, sizeof(line), block ? (int)(deadline - now) : 0);
                if (s.code == CF_E_TIMEOUT && !block) {
                        block = true; /* nothing more queued: now wait only if late */
                        continue;
                }
                TRY(s);
                if (!agent_ack_line(line)) {
                        return cf_fail(CF_E_MALFORMED); /* an answer nobody asked for */
                }
        }
}

/* Gives a freshly opened volume its plaintext cache. Not fatal: without it every read
 * decrypts again, which is slower but correct. */
static void apply_cache(struct pre_vol *vol)
{
        cf_status s = shield_volume_set_cache(vol->v, vol->cache_bytes);
        if (!cf_ok(s) && !vol->cache_warned) {
                vol->cache_warned = true;
                pre_warn("no plaintext cache for the volume at %s (%zu bytes): %s; continuing "
                         "without it",
                         vol->mount, vol->cache_bytes, cf_strerror(s));
        }
}

/* Reopens the volume at the family's latest commit (tag-checked: a relative's commit is
 * trusted, the disk is not) and moves every open description to the new volume. Read-only
 * while a relative holds the write token, so its new backing files are not cleaned up. */
static int reload(struct pre_vol *vol, const struct pre_family_vol *fv, bool rdonly)
{
        struct shield_volume *nv;
        const uint8_t *tags[1] = {fv->tag};
        cf_status s = shield_volume_open(&shield_posix_ops, vol->st, vol->key->ptr, tags, 1,
                                         rdonly ? SHIELD_OPEN_RDONLY : 0u, &nv);
        if (!cf_ok(s)) {
                pre_warn("cannot reopen the volume at %s after a commit by a related process: %s",
                         vol->mount, cf_strerror(s));
                return -EIO;
        }
        for (size_t fd = 0; fd < g_fds.n_slot; fd++) {
                struct pre_ofd *o = g_fds.slot[fd];
                if (o == NULL || o->vol != vol || o->file == NULL || o->gen == fv->gen + 1) {
                        continue;
                }
                struct shield_file *nf = NULL;
                if (!cf_ok(shield_file_open(nv, o->path, 0, &nf))) {
                        nf = NULL; /* removed or renamed by the relative: EBADF from now on */
                }
                shield_file_close(o->file);
                o->file = nf;
                o->gen = fv->gen + 1; /* marks descriptions shared by several fds as done */
        }
        shield_volume_close(vol->v);
        vol->v = nv;
        apply_cache(vol);
        if (g_agent_fd >= 0 && !vol->batched) {
                shield_volume_set_prepare(nv, agent_prepare, vol);
        }
        vol->gen = fv->gen;
        vol->rdonly = rdonly;
        return 0;
}

static bool writer_alive(pid_t w)
{
        /* g_pid, not getpid(): this runs before every write. A vfork child (same memory, its
         * parent suspended) counts as its parent here, which is what it is to the volume. */
        return w != 0 && w != g_pid && (kill(w, 0) == 0 || errno == EPERM);
}

/* Brings the volume up to the family's latest commit; with for_write, also takes the write
 * token (waiting up to PRE_WRITER_WAIT_MS for a relative to commit). The shim's lock is
 * held. */
static int sync_vol(struct pre_vol *vol, bool for_write)
{
        struct pre_family_vol *fv = &g_family->vol[vol_index(vol)];
        if (!for_write && !vol->rdonly && __atomic_load_n(&fv->gen, __ATOMIC_ACQUIRE) == vol->gen) {
                return 0;
        }
        for (unsigned waited = 0;; waited++) {
                family_lock();
                pid_t w = fv->writer;
                if (!for_write || !writer_alive(w)) {
                        break;
                }
                family_unlock();
                if (waited >= PRE_WRITER_WAIT_MS) {
                        pre_warn("the volume at %s is being written by process %d: EBUSY",
                                 vol->mount, (int)w);
                        return -EBUSY;
                }
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
        }
        int r = 0;
        bool rdonly = !for_write && writer_alive(fv->writer);
        if (fv->gen != vol->gen && vol->dirty) {
                pre_warn("the volume at %s was committed by a related process while this one "
                         "had uncommitted changes: refusing to overwrite them (EIO)",
                         vol->mount);
                r = -EIO;
        } else if (fv->gen != vol->gen || (vol->rdonly && !rdonly)) {
                r = reload(vol, fv, rdonly);
        }
        if (r == 0 && for_write) {
                fv->writer = g_pid;
        }
        family_unlock();
        return r;
}

/* Called before every change: the change is allowed only with the write token. */
static int claim(struct pre_vol *vol)
{
        return sync_vol(vol, true);
}

static int commit(struct pre_vol *vol)
{
        if (vol->v == NULL || !vol->dirty) {
                return 0;
        }
        uint8_t tag[SHIELD_TAG_SIZE];
        struct pre_family_vol *fv = &g_family->vol[vol_index(vol)];
        family_lock();
        /* Batched: no commit while cofferd is more than one window behind (the bound the
         * documentation promises); usually this only reads the acks that arrived. */
        cf_status s = vol->batched ? agent_wait(vol, (int64_t)vol->window_ms) : CF_OK;
        if (!cf_ok(s)) {
                pre_warn("cofferd has not confirmed the commits of the volume at %s for %u ms: "
                         "%s",
                         vol->mount, vol->window_ms, cf_strerror(s));
        } else {
                s = fv->gen == vol->gen ? shield_volume_commit(vol->v, tag)
                                        : cf_fail(CF_E_CONFLICT);
        }
        if (cf_ok(s)) {
                memcpy(fv->tag, tag, sizeof(tag));
                __atomic_store_n(&fv->gen, fv->gen + 1, __ATOMIC_RELEASE);
                vol->gen = fv->gen;
                fv->writer = 0;
                /* The tag is durable on disk; cofferd still holds it as prepared, which a
                 * restart accepts too, so a failure here loses no data. */
                cf_status a = vol->batched
                                  ? agent_advance(vol, tag, shield_volume_generation(vol->v))
                                  : agent_call("commit", vol_index(vol), tag,
                                               shield_volume_generation(vol->v));
                if (!cf_ok(a)) {
                        pre_warn("cofferd did not record the commit of the volume at %s: %s",
                                 vol->mount, cf_strerror(a));
                }
        }
        family_unlock();
        if (!cf_ok(s)) {
                pre_warn("commit of the volume at %s failed: %s", vol->mount, cf_strerror(s));
                return -EIO;
        }
        vol->dirty = false;
        publish_tags();
        return 0;
}

/* Drops one descriptor's reference. The last one closes the shield file and, when the
 * description wrote and no other writer of the volume is open, commits the volume. */
static int release(struct pre_ofd *o)
{
        if (!pre_ofd_unref(o)) {
                return 0;
        }
        struct pre_vol *vol = o->vol;
        if (is_writable(o->flags) && o->file != NULL) {
                vol->n_writers--;
        }
        shield_file_close(o->file);
        int r = 0;
        if (o->written && vol->n_writers == 0) {
                r = commit(vol);
        }
        pre_ofd_free(o);
        return r;
}

/* Binds a fresh placeholder descriptor to o. A stale entry at the same number (its kernel
 * descriptor was closed behind our back, e.g. by close_range) is dropped first. */
static int bind_fd(int fd, struct pre_ofd *o)
{
        struct pre_ofd *stale = pre_fdtable_take(&g_fds, fd);
        if (stale != NULL) {
                (void)release(stale);
        }
        cf_status s = pre_fdtable_set(&g_fds, fd, o);
        return cf_ok(s) ? 0 : -pre_errno(s);
}

/* ---------------------------------------------------------------------------------------
 * Paths. */

struct target {
        struct pre_vol *vol;
        const char *vpath;     /* the volume path, inside buf */
        const char *libc_path; /* PRE_PASS: the path for libc (the caller's, or buf) */
        int err;               /* for PRE_DENY: the errno to return */
        char buf[PRE_ABS_MAX];
};

static bool join(char *out, size_t out_size, const char *a, const char *b, const char *c)
{
        int n = snprintf(out, out_size, "%s/%s%s%s", a, b, c[0] != '\0' ? "/" : "", c);
        return n >= 0 && (size_t)n < out_size;
}

/* True when the absolute path raw passes through a mount point on its way: some prefix of
 * it, up to a '/', is under a mount. Only asked for paths with "..", whose normal form left
 * every volume: "/mnt/vol/.." cannot be resolved by the kernel (the mount point does not
 * exist on the host), so such a path is resolved lexically. */
static bool passes_mount(const char *raw)
{
        char prefix[PRE_ABS_MAX];
        char norm[PRE_ABS_MAX];
        size_t n = strlen(raw);
        if (strstr(raw, "..") == NULL || n >= sizeof(prefix)) {
                return false;
        }
        for (size_t i = 1; i <= n; i++) {
                if (raw[i] != '/' && raw[i] != '\0') {
                        continue;
                }
                memcpy(prefix, raw, i);
                prefix[i] = '\0';
                if (!cf_ok(pre_path_normalize(prefix, norm, sizeof(norm)))) {
                        return false;
                }
                for (size_t v = 0; v < g_n_vol; v++) {
                        const char *rest;
                        if (pre_path_under(norm, g_vol[v].mount, g_vol[v].mount_len, &rest)) {
                                return true;
                        }
                }
        }
        return false;
}

/* Resolves (dirfd, path) to an absolute normalised path and finds its volume. The lock is
 * held (dirfd may be a shielded directory). A relative path under a virtual working
 * directory is resolved against it, lexically (".." from the mount point leaves the
 * volume); if it then leads outside every volume, t->libc_path is its absolute form, because
 * the kernel's working directory is not the virtual one. */
static enum pre_kind classify(int dirfd, const char *path, struct target *t)
{
        char raw[PRE_ABS_MAX];
        bool virtual_cwd = false;
        t->vol = NULL;
        t->err = EACCES;
        t->libc_path = path;
        if (path == NULL) {
                return PRE_PASS; /* libc reports EFAULT */
        }
        if (path[0] == '/') {
                if (strlen(path) >= sizeof(raw)) {
                        return PRE_PASS; /* the kernel reports ENAMETOOLONG */
                }
                memcpy(raw, path, strlen(path) + 1);
        } else if (dirfd == AT_FDCWD && g_cwd_set) {
                if (path[0] == '\0') {
                        return PRE_PASS; /* ENOENT, whatever the working directory */
                }
                if (!join(raw, sizeof(raw), g_cwd, path, "")) {
                        t->err = ENAMETOOLONG; /* never to the host's working directory */
                        return PRE_DENY;
                }
                virtual_cwd = true;
        } else if (dirfd == AT_FDCWD) {
                char cwd[PATH_MAX];
                if (path[0] == '\0' || REAL(getcwd)(cwd, sizeof(cwd)) == NULL ||
                    !join(raw, sizeof(raw), cwd, path, "")) {
                        return PRE_PASS;
                }
        } else {
                struct pre_ofd *o = pre_fdtable_get(&g_fds, dirfd);
                if (o == NULL || path[0] == '\0') {
                        return PRE_PASS;
                }
                if (!o->dir) {
                        t->err = ENOTDIR;
                        return PRE_DENY;
                }
                if (!join(raw, sizeof(raw), o->vol->mount, o->path, path)) {
                        t->err = ENAMETOOLONG;
                        return PRE_DENY;
                }
        }
        if (!cf_ok(pre_path_normalize(raw, t->buf, sizeof(t->buf)))) {
                t->err = ENAMETOOLONG;
                return virtual_cwd ? PRE_DENY : PRE_PASS;
        }
        for (size_t i = 0; i < g_n_vol; i++) {
                struct pre_vol *vol = &g_vol[i];
                if (pre_path_under(t->buf, vol->mount, vol->mount_len, &t->vpath)) {
                        t->vol = vol;
                        if (vol->v == NULL) {
                                return PRE_DENY;
                        }
                        if (strlen(t->vpath) > SHIELD_PATH_MAX) {
                                t->err = ENAMETOOLONG;
                                return PRE_DENY;
                        }
                        return PRE_SHIELD;
                }
        }
        if (virtual_cwd || dirfd != AT_FDCWD || passes_mount(raw)) {
                t->libc_path = t->buf;
        }
        return PRE_PASS;
}

enum pre_kind pre_path_kind(const char *path, char *buf, size_t buf_size, const char **ret_pass)
{
        struct target t;
        enter();
        enum pre_kind k = classify(AT_FDCWD, path, &t);
        leave();
        *ret_pass = path;
        if (k == PRE_PASS && t.libc_path != path) {
                size_t n = strlen(t.libc_path);
                if (n >= buf_size) {
                        return PRE_DENY; /* never the relative path: it would reach the host */
                }
                memcpy(buf, t.libc_path, n + 1);
                *ret_pass = buf;
        }
        return k;
}

bool pre_fd_shielded(int fd)
{
        enter();
        bool r = pre_fdtable_get(&g_fds, fd) != NULL;
        leave();
        return r;
}

/* FNV-1a of the volume path: a stable inode number per path (never 0), so programs that
 * compare (st_dev, st_ino) see one file per path (SQLite, cp's same-file check). */
static ino_t path_ino(const char *vpath)
{
        uint64_t h = 0xcbf29ce484222325u;
        for (const char *p = vpath; *p != '\0'; p++) {
                h = (h ^ (uint8_t)*p) * 0x100000001b3u;
        }
        return (ino_t)(h | 1u);
}

/* ---------------------------------------------------------------------------------------
 * Start and end of the process. */

/* Prints the rollback refusal with the tag found on disk and the tags expected. */
__attribute__((noreturn)) static void die_rollback(const struct pre_volume_config *c)
{
        char found[2 * SHIELD_TAG_SIZE + 1] = "(no manifest)";
        char want[PRE_TAGS_MAX * (2 * SHIELD_TAG_SIZE + 1) + 8] = "";
        uint8_t tag[SHIELD_TAG_SIZE];
        struct shield_posix *p = NULL;
        if (cf_ok(shield_posix_open(c->backing, false, &p))) {
                if (cf_ok(shield_disk_tag(&shield_posix_ops, p, tag))) {
                        cf_hex_encode(tag, sizeof(tag), found, sizeof(found));
                }
                shield_posix_close(p);
        }
        size_t n = 0;
        for (size_t i = 0; i < c->n_tags; i++) {
                cf_hex_encode(c->tags[i], SHIELD_TAG_SIZE, want + n, sizeof(want) - n);
                n += 2 * SHIELD_TAG_SIZE;
                want[n++] = ' ';
        }
        want[n > 0 ? n - 1 : 0] = '\0';
        pre_die("rollback: the volume mounted at %s (backing %s) has tag %s, expected %s", c->mount,
                c->backing, found, n > 0 ? want : "(none: a new volume)");
}

static void open_volume(const struct pre_volume_config *c, size_t idx)
{
        struct pre_vol *vol = &g_vol[idx];
        memcpy(vol->mount, c->mount, sizeof(vol->mount));
        memcpy(vol->backing, c->backing, sizeof(vol->backing));
        vol->mount_len = strlen(vol->mount);
        vol->dev = (dev_t)(PRE_DEV_BASE + idx);
        clock_gettime(CLOCK_REALTIME, &vol->mtime);
        cf_status s = shield_posix_open(c->backing, c->create, &vol->st);
        if (!cf_ok(s)) {
                pre_die("cannot open the backing directory %s: %s", c->backing, cf_strerror(s));
        }
        /* One process per volume: the shield keeps its state in memory. */
        vol->lock_fd = REAL(openat)(AT_FDCWD, c->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (vol->lock_fd < 0 || flock(vol->lock_fd, LOCK_EX | LOCK_NB) != 0) {
                pre_die("the volume at %s (backing %s) is in use by another process", c->mount,
                        c->backing);
        }
        const uint8_t *tags[PRE_TAGS_MAX];
        for (size_t i = 0; i < c->n_tags; i++) {
                tags[i] = c->tags[i];
        }
        /* Batched: a state newer than cofferd's generation is one cofferd was not yet told
         * of (a crash within the window); only with a generation cofferd vouches for. */
        unsigned flags = (c->create ? SHIELD_OPEN_CREATE : 0u) |
                         (c->accept_any_tag ? SHIELD_OPEN_ACCEPT_ANY_TAG : 0u) |
                         (c->accept_empty ? SHIELD_OPEN_ACCEPT_EMPTY : 0u) |
                         (c->reset ? SHIELD_OPEN_RESET : 0u) |
                         (c->batched && c->has_generation ? SHIELD_OPEN_ACCEPT_NEWER : 0u);
        vol->batched = c->batched;
        vol->window_ms = c->window_ms;
        s = cf_secret_new(SHIELD_KEY_SIZE, &vol->key);
        if (!cf_ok(s)) {
                pre_die("cannot allocate key memory: %s", cf_strerror(s));
        }
        memcpy(vol->key->ptr, c->key, SHIELD_KEY_SIZE);
        s = shield_volume_open_ex(&shield_posix_ops, vol->st, c->key, tags, c->n_tags,
                                  c->generation, flags, &vol->v);
        if (s.code == CF_E_ROLLBACK) {
                die_rollback(c);
        }
        if (!cf_ok(s)) {
                pre_die("cannot open the volume at %s (backing %s): %s", c->mount, c->backing,
                        cf_strerror(s));
        }
        vol->cache_bytes = c->cache_bytes;
        apply_cache(vol);
        if (g_agent_fd >= 0 && !vol->batched) {
                shield_volume_set_prepare(vol->v, agent_prepare, vol);
        }
}

/* The shield's prepare hook: cofferd must know the new tag before the manifest changes. */
static cf_status agent_prepare(void *ctx, const uint8_t tag[SHIELD_TAG_SIZE], uint64_t generation)
{
        const struct pre_vol *vol = ctx;
        cf_status s = agent_call("prepare", vol_index(vol), tag, generation);

        if (!cf_ok(s)) {
                pre_warn("cofferd did not accept the new tag of the volume at %s: %s (the "
                         "commit is refused)",
                         vol->mount, cf_strerror(s));
        }
        return s;
}

/* Exec'd children inherit no volume (the configuration descriptor is gone): they get the
 * mount points only, so paths under them fail with EACCES instead of reaching the disk. */
#define PRE_ENV_FD     "COFFER_SHIELD_FD"
#define PRE_ENV_MOUNTS "COFFER_SHIELD_MOUNTS"
#define PRE_ENV_TAG    "COFFER_SHIELD_TAG_FILE"

static void export_mounts(void)
{
        char list[PRE_VOLUMES_MAX * (PRE_PATH_MAX + 1) + 1];
        size_t n = 0;
        for (size_t i = 0; i < g_n_vol; i++) {
                memcpy(list + n, g_vol[i].mount, g_vol[i].mount_len);
                n += g_vol[i].mount_len;
                list[n++] = ':';
        }
        list[n > 0 ? n - 1 : 0] = '\0';
        if (setenv(PRE_ENV_MOUNTS, list, 1) != 0) {
                pre_die("cannot set %s", PRE_ENV_MOUNTS);
        }
}

static void load_denied(const char *list)
{
        const char *p = list;
        while (*p != '\0' && g_n_vol < PRE_VOLUMES_MAX) {
                const char *e = strchr(p, ':');
                size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
                struct pre_vol *vol = &g_vol[g_n_vol];
                if (n > 1 && n <= PRE_PATH_MAX && p[0] == '/') {
                        memcpy(vol->mount, p, n);
                        vol->mount[n] = '\0';
                        vol->mount_len = n;
                        vol->lock_fd = -1;
                        g_n_vol++;
                }
                p += n + (e != NULL ? 1 : 0);
        }
}

static void family_init(void)
{
        void *p = mmap(NULL, sizeof(struct pre_family), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
                pre_die("cannot map the shared volume state");
        }
        g_family = p;
        pthread_mutexattr_t a;
        if (pthread_mutexattr_init(&a) != 0 ||
            pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
            pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
            pthread_mutex_init(&g_family->lock, &a) != 0) {
                pre_die("cannot initialise the shared volume lock");
        }
        pthread_mutexattr_destroy(&a);
}

/* An exec'd child has no volume, but its kernel working directory is wherever its parent's
 * was before that one entered a volume (a virtual chdir never moves the kernel's). When PWD,
 * which shells export and the shim sets on every virtual chdir, names a directory under a
 * mount point, the child starts there: relative paths then fail with EACCES like every
 * path under the mount, instead of reaching the host directory. */
static void adopt_pwd(void)
{
        const char *pwd = secure_getenv("PWD");
        char norm[PRE_ABS_MAX];
        if (pwd == NULL || pwd[0] != '/' || !cf_ok(pre_path_normalize(pwd, norm, sizeof(norm)))) {
                return;
        }
        for (size_t i = 0; i < g_n_vol; i++) {
                const char *rest;
                if (pre_path_under(norm, g_vol[i].mount, g_vol[i].mount_len, &rest)) {
                        memcpy(g_cwd, norm, strlen(norm) + 1);
                        g_cwd_set = true;
                        return;
                }
        }
}

static void load_config(void)
{
        static struct pre_config cfg; /* static: it is large; wiped below */
        const char *v = secure_getenv(PRE_ENV_FD);
        const char *mounts = secure_getenv(PRE_ENV_MOUNTS);
        /* The shim sets the mount list only after it read its configuration, so a process
         * that has it is an exec'd descendant: an inherited descriptor variable is stale
         * (bash keeps its own copy of the environment, so the unsetenv below never reached
         * it) and names whatever this process has at that number. It is never read. */
        if (v == NULL || mounts != NULL) {
                if (v != NULL) {
                        unsetenv(PRE_ENV_FD);
                }
                if (mounts != NULL) {
                        load_denied(mounts);
                        adopt_pwd();
                }
                return;
        }
        uint64_t fd;
        if (!cf_ok(cf_parse_u64(v, 0, INT_MAX, &fd))) {
                pre_die("%s is not a descriptor number", PRE_ENV_FD);
        }
        unsetenv(PRE_ENV_FD);
        struct cf_buf b;
        cf_buf_init(&b, PRE_CONFIG_SIZE_MAX, true);
        cf_status s = cf_read_fd((int)fd, PRE_CONFIG_SIZE_MAX, &b);
        REAL(close)((int)fd);
        if (cf_ok(s)) {
                s = pre_config_parse(b.ptr, b.size, &cfg);
        }
        cf_buf_done(&b);
        if (!cf_ok(s)) {
                pre_die("cannot load the configuration from %s: %s", PRE_ENV_FD, cf_strerror(s));
        }
        family_init();
        for (size_t i = 0; i < cfg.n_vol; i++) {
                open_volume(&cfg.vol[i], i);
                g_n_vol = i + 1;
        }
        pre_config_wipe(&cfg);
        export_mounts();
        publish_tags();
}

/* fork: no thread may be inside the shield while the address space is copied, and the
 * child starts from a committed state (docs/shield-preload.md "fork and exec"). */
static void atfork_prepare(void)
{
        enter();
        for (size_t i = 0; i < g_n_vol; i++) {
                (void)commit(&g_vol[i]); /* a failure was reported; the child sees the last state */
        }
}

static void atfork_parent(void)
{
        leave();
}

static void atfork_child(void)
{
        g_pid = getpid();
        pthread_mutex_init(&g_lock, NULL);
        t_depth--;
}

__attribute__((constructor)) static void pre_init(void)
{
        t_depth++;
        pthread_once(&g_resolve_once, resolve_real);
        pre_fdtable_init(&g_fds);
        cf_status s = cf_crypto_init();
        if (!cf_ok(s)) {
                pre_die("crypto initialisation failed: %s", cf_strerror(s));
        }
        const char *tag_file = secure_getenv(PRE_ENV_TAG);
        if (tag_file != NULL && strlen(tag_file) < sizeof(g_tag_file)) {
                memcpy(g_tag_file, tag_file, strlen(tag_file) + 1);
        }
        g_pid = getpid();
        const char *agent = secure_getenv(PRE_ENV_AGENT);
        uint64_t afd;
        if (agent != NULL) {
                if (!cf_ok(cf_parse_u64(agent, 0, INT32_MAX, &afd)) ||
                    REAL(fcntl)((int)afd, F_SETFD, FD_CLOEXEC) < 0) {
                        pre_die("%s is not an open descriptor", PRE_ENV_AGENT);
                }
                g_agent_fd = (int)afd;
                unsetenv(PRE_ENV_AGENT);
        }
        load_config();
        if (pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0) {
                pre_die("pthread_atfork failed");
        }
        __atomic_store_n(&g_ready, true, __ATOMIC_RELEASE);
        t_depth--;
}

/* At exit: buffered stdio data of shielded streams is written, then every volume commits.
 * A process that ends with _exit or a signal keeps the last committed state. */
__attribute__((destructor)) static void pre_fini(void)
{
        if (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE) || g_n_vol == 0 || t_depth != 0) {
                return;
        }
        fflush(NULL);
        enter();
        for (size_t i = 0; i < g_n_vol; i++) {
                (void)commit(&g_vol[i]); /* a failure was reported on stderr */
        }
        /* Checkpoint (the journal's state into a manifest slot, same tag) when this process
         * holds the family's latest state: a volume a relative committed since is not
         * ours to checkpoint (its journal has records this handle does not know). */
        for (size_t i = 0; i < g_n_vol; i++) {
                struct pre_vol *vol = &g_vol[i];
                if (vol->v == NULL || vol->rdonly || vol->dirty) {
                        continue;
                }
                family_lock();
                if (g_family->vol[vol_index(vol)].gen == vol->gen) {
                        cf_ignore(shield_volume_checkpoint(vol->v)); /* the journal stays valid */
                }
                family_unlock();
        }
        /* Batched: a clean exit leaves cofferd knowing the last state. */
        for (size_t i = 0; i < g_n_vol; i++) {
                if (g_vol[i].batched && g_vol[i].v != NULL) {
                        family_lock();
                        cf_status s = agent_wait(&g_vol[i], 0);
                        family_unlock();
                        if (!cf_ok(s)) {
                                pre_warn("cofferd did not confirm the last commit of the volume "
                                         "at %s: %s",
                                         g_vol[i].mount, cf_strerror(s));
                        }
                }
        }
        leave();
}

/* ---------------------------------------------------------------------------------------
 * Shielded operations. The lock is held; each returns a result or a negative errno. */
/* A new placeholder: an empty memfd sealed against writes and resizes, so that what
 * bypasses the shim (stdio's internal writes after a dup2 onto 1, an exec'd child writing to
 * an inherited descriptor, a raw system call) fails with EPERM instead of vanishing. Locks
 * still work on it (they need an O_RDWR descriptor, which it stays). */
static int placeholder(bool cloexec)
{
        int fd = memfd_create("coffer-shield", MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0u));
        if (fd >= 0 && REAL(fcntl)(fd, F_ADD_SEALS,
                                   F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
                int e = errno;
                REAL(close)(fd);
                errno = e;
                return -1;
        }
        return fd;
}


static int integrity(const struct pre_ofd *o, cf_status s)
{
        switch ((enum cf_errcode)s.code) {
        case CF_E_MAC_INVALID:
        case CF_E_TAMPERED:
        case CF_E_TRUNCATED:
        case CF_E_MALFORMED:
        case CF_E_TRAILING:
                pre_warn("integrity failure in %s/%s: %s", o->vol->mount, o->path, cf_strerror(s));
                break;
        default:
                break;
        }
        return -pre_errno(s);
}

static int sh_open(const struct target *t, int flags)
{
        struct pre_vol *vol = t->vol;
        if ((flags & O_DIRECT) != 0) {
                pre_warn("O_DIRECT is not supported on shielded files (%s): EINVAL", t->buf);
                return -EINVAL;
        }
        if ((flags & O_TMPFILE) == O_TMPFILE) {
                pre_warn("O_TMPFILE is not supported on shielded files (%s): EOPNOTSUPP", t->buf);
                return -EOPNOTSUPP;
        }
        if ((flags & O_PATH) != 0) {
                /* A handle for *at() calls and fstat only: no shield file behind it. */
                flags &= O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
        }
        if ((flags & O_ACCMODE) == O_ACCMODE) {
                return -EINVAL;
        }
        bool wr = is_writable(flags);
        int c = sync_vol(vol, (flags & O_CREAT) != 0 || (wr && (flags & O_TRUNC) != 0));
        if (c < 0) {
                return c;
        }
        struct shield_stat st;
        cf_status s = shield_volume_stat(vol->v, t->vpath, &st);
        bool exists = cf_ok(s);
        if (!exists && s.code != CF_E_NOT_FOUND) {
                return -pre_errno(s);
        }
        bool dir = exists && st.type == SHIELD_TYPE_DIR;
        if (exists && (flags & O_CREAT) != 0 && (flags & O_EXCL) != 0) {
                return -EEXIST;
        }
        if (dir && wr) {
                return -EISDIR;
        }
        if (exists && !dir && (flags & O_DIRECTORY) != 0) {
                return -ENOTDIR;
        }
        if (!exists && ((flags & O_CREAT) == 0 || (flags & O_DIRECTORY) != 0)) {
                return -ENOENT;
        }
        struct shield_file *f = NULL;
        unsigned sf = 0;
        if (!dir && (flags & O_PATH) == 0) {
                sf |= (flags & O_CREAT) != 0 ? SHIELD_O_CREAT : 0u;
                sf |= (flags & O_EXCL) != 0 ? SHIELD_O_EXCL : 0u;
                sf |= (flags & O_TRUNC) != 0 && wr ? SHIELD_O_TRUNC : 0u;
                s = shield_file_open(vol->v, t->vpath, sf, &f);
                if (!cf_ok(s)) {
                        return s.code == CF_E_CONFLICT ? -ENOTDIR : -pre_errno(s);
                }
        }
        int fd = placeholder((flags & O_CLOEXEC) != 0);
        struct pre_ofd *o = NULL;
        int err = fd < 0 ? -errno : 0;
        if (err == 0) {
                s = pre_ofd_new(vol, t->vpath, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC),
                                dir, &o);
                err = cf_ok(s) ? bind_fd(fd, o) : -pre_errno(s);
        }
        if (err != 0) {
                if (fd >= 0) {
                        REAL(close)(fd);
                }
                pre_ofd_free(o);
                shield_file_close(f);
                return err;
        }
        (void)pre_ofd_unref(o); /* the table holds the only reference now */
        o->file = f;
        if (wr && f != NULL) {
                vol->n_writers++;
        }
        if (!exists || (sf & SHIELD_O_TRUNC) != 0) {
                o->written = true;
                touch(vol);
        }
        return fd;
}

static ssize_t sh_read(struct pre_ofd *o, void *buf, size_t n, const uint64_t *at)
{
        if (o->file == NULL) {
                return o->dir ? -EISDIR : -EBADF;
        }
        if ((o->flags & O_ACCMODE) == O_WRONLY) {
                return -EBADF;
        }
        n = n > SHIELD_IO_MAX ? SHIELD_IO_MAX : n;
        uint64_t off = at != NULL ? *at : o->off;
        size_t got = 0;
        cf_status s = shield_file_pread(o->file, buf, n, off, &got);
        if (!cf_ok(s)) {
                return integrity(o, s);
        }
        if (at == NULL) {
                o->off = off + got;
        }
        return (ssize_t)got;
}

static ssize_t sh_write(struct pre_ofd *o, const void *buf, size_t n, const uint64_t *at)
{
        if (o->file == NULL || !is_writable(o->flags)) {
                return -EBADF;
        }
        int c = claim(o->vol);
        if (c < 0) {
                return c;
        }
        if (o->file == NULL) {
                return -EBADF; /* removed by a related process */
        }
        n = n > SHIELD_IO_MAX ? SHIELD_IO_MAX : n;
        uint64_t off = at != NULL ? *at : o->off;
        if (at == NULL && (o->flags & O_APPEND) != 0) {
                cf_status s = shield_file_size(o->file, &off);
                if (!cf_ok(s)) {
                        return integrity(o, s);
                }
        }
        if (n == 0) {
                return 0;
        }
        cf_status s = shield_file_pwrite(o->file, buf, n, off);
        if (!cf_ok(s)) {
                return s.code == CF_E_LIMIT ? -EFBIG : integrity(o, s);
        }
        o->written = true;
        touch(o->vol);
        if (at == NULL) {
                o->off = off + n;
        }
        return (ssize_t)n;
}

static ssize_t sh_iov(struct pre_ofd *o, const struct iovec *iov, int n_iov, const uint64_t *at,
                      bool write)
{
        if (n_iov < 0 || n_iov > IOV_MAX) {
                return -EINVAL;
        }
        size_t total = 0;
        for (int i = 0; i < n_iov; i++) {
                uint64_t pos = at != NULL ? *at + total : 0;
                ssize_t r =
                    write ? sh_write(o, iov[i].iov_base, iov[i].iov_len, at != NULL ? &pos : NULL)
                          : sh_read(o, iov[i].iov_base, iov[i].iov_len, at != NULL ? &pos : NULL);
                if (r < 0) {
                        return total > 0 ? (ssize_t)total : r;
                }
                total += (size_t)r;
                if ((size_t)r < iov[i].iov_len) {
                        break;
                }
        }
        return (ssize_t)total;
}

static off_t sh_lseek(struct pre_ofd *o, off_t off, int whence)
{
        uint64_t size = 0;
        if (o->file != NULL) {
                cf_status s = shield_file_size(o->file, &size);
                if (!cf_ok(s)) {
                        return integrity(o, s);
                }
        }
        int64_t base;
        switch (whence) {
        case SEEK_SET:
                base = 0;
                break;
        case SEEK_CUR:
                base = (int64_t)o->off;
                break;
        case SEEK_END:
                base = (int64_t)size;
                break;
        case SEEK_DATA:
        case SEEK_HOLE:
                if (off < 0 || (uint64_t)off >= size) {
                        return -ENXIO;
                }
                o->off = whence == SEEK_DATA ? (uint64_t)off : size;
                return (off_t)o->off;
        default:
                return -EINVAL;
        }
        int64_t r;
        if (cf_add_overflow(base, (int64_t)off, &r) || r < 0) {
                return -EINVAL;
        }
        o->off = (uint64_t)r;
        return (off_t)r;
}

static void fill_stat(const struct pre_vol *vol, const char *vpath, const struct shield_stat *ss,
                      struct stat *st)
{
        bool dir = ss->type == SHIELD_TYPE_DIR;
        memset(st, 0, sizeof(*st));
        st->st_dev = vol->dev;
        st->st_ino = path_ino(vpath);
        st->st_mode = dir ? (S_IFDIR | 0700) : (S_IFREG | 0600);
        st->st_nlink = 1; /* for directories too: "unknown", so fts never skips subdirectories */
        st->st_uid = geteuid();
        st->st_gid = getegid();
        st->st_size = (off_t)ss->size;
        st->st_blksize = SHIELD_CHUNK_SIZE;
        st->st_blocks = (blkcnt_t)((ss->size + 511) / 512);
        st->st_atim = vol->mtime;
        st->st_mtim = vol->mtime;
        st->st_ctim = vol->mtime;
}

static int sh_fstat(struct pre_ofd *o, struct stat *st)
{
        struct shield_stat ss = {.type = o->dir ? SHIELD_TYPE_DIR : SHIELD_TYPE_FILE};
        if (o->file == NULL && !o->dir) {
                /* An O_PATH handle: the file as its path names it now. */
                cf_status s = shield_volume_stat(o->vol->v, o->path, &ss);
                if (!cf_ok(s)) {
                        return -pre_errno(s);
                }
        }
        if (o->file != NULL) {
                cf_status s = shield_file_size(o->file, &ss.size);
                if (!cf_ok(s)) {
                        return integrity(o, s);
                }
        }
        fill_stat(o->vol, o->path, &ss, st);
        return 0;
}

static int sh_stat(const struct target *t, struct stat *st)
{
        struct shield_stat ss;
        cf_status s = shield_volume_stat(t->vol->v, t->vpath, &ss);
        if (!cf_ok(s)) {
                return -pre_errno(s);
        }
        fill_stat(t->vol, t->vpath, &ss, st);
        return 0;
}

static void to_statx(const struct stat *st, struct statx *sx)
{
        memset(sx, 0, sizeof(*sx));
        sx->stx_mask = STATX_BASIC_STATS;
        sx->stx_blksize = (uint32_t)st->st_blksize;
        sx->stx_nlink = (uint32_t)st->st_nlink;
        sx->stx_uid = st->st_uid;
        sx->stx_gid = st->st_gid;
        sx->stx_mode = (uint16_t)st->st_mode;
        sx->stx_ino = st->st_ino;
        sx->stx_size = (uint64_t)st->st_size;
        sx->stx_blocks = (uint64_t)st->st_blocks;
        struct statx_timestamp ts = {.tv_sec = st->st_mtim.tv_sec,
                                     .tv_nsec = (uint32_t)st->st_mtim.tv_nsec};
        sx->stx_atime = ts;
        sx->stx_btime = ts;
        sx->stx_ctime = ts;
        sx->stx_mtime = ts;
        sx->stx_dev_major = (uint32_t)(st->st_dev >> 8);
        sx->stx_dev_minor = (uint32_t)(st->st_dev & 0xff);
}

static int sh_truncate_file(struct pre_ofd *o, off_t len)
{
        if (len < 0 || o->file == NULL || !is_writable(o->flags)) {
                return -EINVAL;
        }
        int c = claim(o->vol);
        if (c < 0 || o->file == NULL) {
                return c < 0 ? c : -EBADF;
        }
        cf_status s = shield_file_truncate(o->file, (uint64_t)len);
        if (!cf_ok(s)) {
                return s.code == CF_E_LIMIT ? -EFBIG : integrity(o, s);
        }
        o->written = true;
        touch(o->vol);
        return 0;
}

/* Namespace changes commit at once: a program that renamed or unlinked a file (SQLite
 * deleting its journal) may rely on that being durable. */
static int sh_namespace_done(struct pre_vol *vol)
{
        touch(vol);
        return commit(vol);
}

static int sh_unlink(const struct target *t, bool rmdir)
{
        int c = claim(t->vol);
        if (c < 0) {
                return c;
        }
        struct shield_stat ss;
        cf_status s = shield_volume_stat(t->vol->v, t->vpath, &ss);
        if (!cf_ok(s)) {
                return -pre_errno(s);
        }
        if (t->vpath[0] == '\0') {
                return -EBUSY;
        }
        if (rmdir != (ss.type == SHIELD_TYPE_DIR)) {
                return rmdir ? -ENOTDIR : -EISDIR;
        }
        s = rmdir ? shield_volume_rmdir(t->vol->v, t->vpath)
                  : shield_volume_unlink(t->vol->v, t->vpath);
        if (!cf_ok(s)) {
                return s.code == CF_E_CONFLICT ? -ENOTEMPTY : -pre_errno(s);
        }
        return sh_namespace_done(t->vol);
}

static int sh_mkdir(const struct target *t)
{
        int c = claim(t->vol);
        if (c < 0) {
                return c;
        }
        if (t->vpath[0] == '\0') {
                return -EEXIST;
        }
        cf_status s = shield_volume_mkdir(t->vol->v, t->vpath);
        if (!cf_ok(s)) {
                return s.code == CF_E_CONFLICT ? -ENOTDIR : -pre_errno(s);
        }
        return sh_namespace_done(t->vol);
}

static int sh_rename(const struct target *a, const struct target *b, unsigned flags)
{
        if (a->vol != b->vol) {
                return -EXDEV;
        }
        if ((flags & ~(unsigned)RENAME_NOREPLACE) != 0) {
                return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
        }
        if (a->vpath[0] == '\0' || b->vpath[0] == '\0') {
                return -EBUSY;
        }
        int c = claim(a->vol);
        if (c < 0) {
                return c;
        }
        struct shield_stat ss;
        if ((flags & RENAME_NOREPLACE) != 0 &&
            cf_ok(shield_volume_stat(a->vol->v, b->vpath, &ss))) {
                return -EEXIST;
        }
        if (strcmp(a->vpath, b->vpath) == 0) {
                cf_status s = shield_volume_stat(a->vol->v, a->vpath, &ss);
                return cf_ok(s) ? 0 : -pre_errno(s);
        }
        cf_status s = shield_volume_rename(a->vol->v, a->vpath, b->vpath);
        if (!cf_ok(s)) {
                return s.code == CF_E_CONFLICT ? -ENOTEMPTY : -pre_errno(s);
        }
        return sh_namespace_done(a->vol);
}

static int sh_access(const struct target *t, int mode)
{
        struct shield_stat ss;
        cf_status s = shield_volume_stat(t->vol->v, t->vpath, &ss);
        if (!cf_ok(s)) {
                return -pre_errno(s);
        }
        if ((mode & X_OK) != 0 && ss.type == SHIELD_TYPE_FILE) {
                return -EACCES;
        }
        return 0;
}

/* A private map is served from an anonymous mapping holding a decrypted copy; a shared
 * map would need the kernel to write pages back to the file, which the shield cannot see. */
static void *sh_mmap(struct pre_ofd *o, void *addr, size_t len, int prot, int flags, off_t off,
                     int *err)
{
        if ((flags & MAP_TYPE) != MAP_PRIVATE) {
                pre_warn("refusing a shared mmap of the shielded file %s/%s (ENODEV): the "
                         "shield cannot see writes through shared pages",
                         o->vol->mount, o->path);
                *err = ENODEV;
                return MAP_FAILED;
        }
        long page = sysconf(_SC_PAGESIZE);
        if (o->file == NULL || (o->flags & O_ACCMODE) == O_WRONLY) {
                *err = o->file == NULL ? ENODEV : EACCES;
                return MAP_FAILED;
        }
        if (len == 0 || off < 0 || page <= 0 || off % page != 0) {
                *err = EINVAL;
                return MAP_FAILED;
        }
        void *p = REAL(mmap)(addr, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
                *err = errno;
                return MAP_FAILED;
        }
        size_t done = 0;
        while (done < len) {
                size_t want = len - done > SHIELD_IO_MAX ? SHIELD_IO_MAX : len - done;
                size_t got = 0;
                cf_status s = shield_file_pread(o->file, (uint8_t *)p + done, want,
                                                (uint64_t)off + done, &got);
                if (!cf_ok(s)) {
                        *err = -integrity(o, s);
                        munmap(p, len);
                        return MAP_FAILED;
                }
                if (got < want) {
                        break;
                }
                done += got;
        }
        if (mprotect(p, len, prot) != 0) {
                *err = errno;
                munmap(p, len);
                return MAP_FAILED;
        }
        return p;
}

/* ---------------------------------------------------------------------------------------
 * Interposed functions. Each one decides first whether the call is ours; if not it goes to
 * libc unchanged. The unlocked n_used test only skips the lock when no descriptor is
 * shielded at all (a stale read at worst takes the lock for nothing or passes a descriptor
 * that is being opened by another thread and is not yet returned to anyone). */

static bool maybe_shielded_fd(void)
{
        return pre_active() && __atomic_load_n(&g_fds.n_used, __ATOMIC_RELAXED) > 0;
}

/* For calls that change the descriptor table (close, dup2, ...): a vfork child (Python's
 * subprocess, posix_spawn users) shares the parent's memory until it execs, so its closes
 * must not touch the parent's table. They go to libc; the placeholders keep them harmless. */
static bool may_change_table(void)
{
        return maybe_shielded_fd() && getpid() == g_pid;
}

/* Runs `pass` when fd is not shielded; otherwise binds `o` under the lock and evaluates
 * `shielded` (a negative errno or a result), then unlocks and returns it. */
#define FD_DISPATCH(type, fd, pass, shielded)                                                      \
        do {                                                                                       \
                if (!maybe_shielded_fd()) {                                                        \
                        return pass;                                                               \
                }                                                                                  \
                int saved_ = errno;                                                                \
                enter();                                                                           \
                struct pre_ofd *o = pre_fdtable_get(&g_fds, (fd));                                 \
                if (o == NULL) {                                                                   \
                        leave();                                                                   \
                        return pass;                                                               \
                }                                                                                  \
                ssize_t r_ = sync_vol(o->vol, false);                                              \
                r_ = r_ < 0 ? r_ : (shielded);                                                     \
                leave();                                                                           \
                return (type)finish(saved_, r_);                                                   \
        } while (0)

/* Same for a path: `t` is the classified target. `path` must name a variable: a relative
 * path under a virtual working directory that leads outside every volume is replaced by
 * its absolute form before `pass` runs (the kernel's working directory is elsewhere). */
#define PATH_DISPATCH(type, dirfd, path, pass, shielded)                                           \
        do {                                                                                       \
                if (!pre_active()) {                                                               \
                        return pass;                                                               \
                }                                                                                  \
                int saved_ = errno;                                                                \
                struct target t;                                                                   \
                enter();                                                                           \
                enum pre_kind k_ = classify((dirfd), (path), &t);                                  \
                if (k_ == PRE_PASS) {                                                              \
                        leave();                                                                   \
                        (path) = t.libc_path;                                                      \
                        return pass;                                                               \
                }                                                                                  \
                ssize_t r_ = k_ == PRE_DENY ? -t.err : sync_vol(t.vol, false);                     \
                r_ = r_ < 0 ? r_ : (shielded);                                                     \
                leave();                                                                           \
                return (type)finish(saved_, r_);                                                   \
        } while (0)

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
        PATH_DISPATCH(int, dirfd, path, REAL(openat)(dirfd, path, flags, mode), sh_open(&t, flags));
}

static mode_t mode_arg(int flags, va_list ap)
{
        if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
                return (mode_t)va_arg(ap, unsigned);
        }
        return 0;
}

PRE_EXPORT int open(const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return do_openat(AT_FDCWD, path, flags, mode);
}

PRE_EXPORT int open64(const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return do_openat(AT_FDCWD, path, flags, mode);
}

PRE_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return do_openat(dirfd, path, flags, mode);
}

PRE_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = mode_arg(flags, ap);
        va_end(ap);
        return do_openat(dirfd, path, flags, mode);
}

PRE_EXPORT int creat(const char *path, mode_t mode)
{
        return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

PRE_EXPORT int creat64(const char *path, mode_t mode)
{
        return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* The _FORTIFY_SOURCE entry points take no mode (glibc refuses O_CREAT there). glibc's
 * headers do not declare them. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buf_size);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buf_size);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buf_size);

PRE_EXPORT int __open_2(const char *path, int flags)
{
        return do_openat(AT_FDCWD, path, flags, 0);
}

PRE_EXPORT int __open64_2(const char *path, int flags)
{
        return do_openat(AT_FDCWD, path, flags, 0);
}

PRE_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
        return do_openat(dirfd, path, flags, 0);
}

PRE_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
        return do_openat(dirfd, path, flags, 0);
}

static ssize_t do_read(int fd, void *buf, size_t n)
{
        FD_DISPATCH(ssize_t, fd, REAL(read)(fd, buf, n), sh_read(o, buf, n, NULL));
}

static ssize_t do_pread(int fd, void *buf, size_t n, off_t off)
{
        uint64_t at = (uint64_t)off;
        FD_DISPATCH(ssize_t, fd, REAL(pread)(fd, buf, n, off),
                    off < 0 ? -EINVAL : sh_read(o, buf, n, &at));
}

static ssize_t do_write(int fd, const void *buf, size_t n)
{
        FD_DISPATCH(ssize_t, fd, REAL(write)(fd, buf, n), sh_write(o, buf, n, NULL));
}

static ssize_t do_pwrite(int fd, const void *buf, size_t n, off_t off)
{
        uint64_t at = (uint64_t)off;
        FD_DISPATCH(ssize_t, fd, REAL(pwrite)(fd, buf, n, off),
                    off < 0 ? -EINVAL : sh_write(o, buf, n, &at));
}

PRE_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
        return do_read(fd, buf, n);
}

extern _Noreturn void __chk_fail(void);

PRE_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buf_size)
{
        if (n > buf_size) {
                __chk_fail();
        }
        return do_read(fd, buf, n);
}

PRE_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
        return do_write(fd, buf, n);
}

PRE_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
        return do_pread(fd, buf, n, off);
}

PRE_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
        return do_pread(fd, buf, n, off);
}

PRE_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buf_size)
{
        if (n > buf_size) {
                __chk_fail();
        }
        return do_pread(fd, buf, n, off);
}

PRE_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buf_size)
{
        if (n > buf_size) {
                __chk_fail();
        }
        return do_pread(fd, buf, n, off);
}

PRE_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
        return do_pwrite(fd, buf, n, off);
}

PRE_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
        return do_pwrite(fd, buf, n, off);
}

PRE_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n_iov)
{
        FD_DISPATCH(ssize_t, fd, REAL(readv)(fd, iov, n_iov), sh_iov(o, iov, n_iov, NULL, false));
}

PRE_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n_iov)
{
        FD_DISPATCH(ssize_t, fd, REAL(writev)(fd, iov, n_iov), sh_iov(o, iov, n_iov, NULL, true));
}

static ssize_t do_preadv(int fd, const struct iovec *iov, int n_iov, off_t off)
{
        uint64_t at = (uint64_t)off;
        FD_DISPATCH(ssize_t, fd, REAL(preadv)(fd, iov, n_iov, off),
                    off < 0 ? -EINVAL : sh_iov(o, iov, n_iov, &at, false));
}

static ssize_t do_pwritev(int fd, const struct iovec *iov, int n_iov, off_t off)
{
        uint64_t at = (uint64_t)off;
        FD_DISPATCH(ssize_t, fd, REAL(pwritev)(fd, iov, n_iov, off),
                    off < 0 ? -EINVAL : sh_iov(o, iov, n_iov, &at, true));
}

PRE_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int n_iov, off_t off)
{
        return do_preadv(fd, iov, n_iov, off);
}

PRE_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int n_iov, off_t off)
{
        return do_preadv(fd, iov, n_iov, off);
}

PRE_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int n_iov, off_t off)
{
        return do_pwritev(fd, iov, n_iov, off);
}

PRE_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int n_iov, off_t off)
{
        return do_pwritev(fd, iov, n_iov, off);
}

static off_t do_lseek(int fd, off_t off, int whence)
{
        FD_DISPATCH(off_t, fd, REAL(lseek)(fd, off, whence), sh_lseek(o, off, whence));
}

PRE_EXPORT off_t lseek(int fd, off_t off, int whence)
{
        return do_lseek(fd, off, whence);
}

PRE_EXPORT off_t lseek64(int fd, off_t off, int whence)
{
        return do_lseek(fd, off, whence);
}

/* ---- stat family */

static int do_fstat(int fd, struct stat *st)
{
        FD_DISPATCH(int, fd, REAL(fstat)(fd, st), sh_fstat(o, st));
}

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
        if (path != NULL && path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0 && dirfd == AT_FDCWD) {
                path = "."; /* the working directory, which may be a virtual one */
        }
        if (path != NULL && path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0) {
                FD_DISPATCH(int, dirfd, REAL(fstatat)(dirfd, path, st, flags), sh_fstat(o, st));
        }
        PATH_DISPATCH(int, dirfd, path, REAL(fstatat)(dirfd, path, st, flags), sh_stat(&t, st));
}

PRE_EXPORT int fstat(int fd, struct stat *st)
{
        return do_fstat(fd, st);
}

PRE_EXPORT int fstat64(int fd, struct stat64 *st)
{
        return do_fstat(fd, (struct stat *)st);
}

PRE_EXPORT int stat(const char *path, struct stat *st)
{
        return do_fstatat(AT_FDCWD, path, st, 0);
}

PRE_EXPORT int stat64(const char *path, struct stat64 *st)
{
        return do_fstatat(AT_FDCWD, path, (struct stat *)st, 0);
}

PRE_EXPORT int lstat(const char *path, struct stat *st)
{
        return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

PRE_EXPORT int lstat64(const char *path, struct stat64 *st)
{
        return do_fstatat(AT_FDCWD, path, (struct stat *)st, AT_SYMLINK_NOFOLLOW);
}

PRE_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
        return do_fstatat(dirfd, path, st, flags);
}

PRE_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
        return do_fstatat(dirfd, path, (struct stat *)st, flags);
}

static int sh_statx_fd(struct pre_ofd *o, struct statx *sx)
{
        struct stat st;
        int r = sh_fstat(o, &st);
        if (r == 0) {
                to_statx(&st, sx);
        }
        return r;
}

static int sh_statx_path(const struct target *t, struct statx *sx)
{
        struct stat st;
        int r = sh_stat(t, &st);
        if (r == 0) {
                to_statx(&st, sx);
        }
        return r;
}

PRE_EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx)
{
        if (path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0 && dirfd == AT_FDCWD) {
                path = ".";
        }
        if (path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0) {
                FD_DISPATCH(int, dirfd, REAL(statx)(dirfd, path, flags, mask, sx),
                            sh_statx_fd(o, sx));
        }
        PATH_DISPATCH(int, dirfd, path, REAL(statx)(dirfd, path, flags, mask, sx),
                      sh_statx_path(&t, sx));
}

/* ---- size and durability */

static int do_ftruncate(int fd, off_t len)
{
        FD_DISPATCH(int, fd, REAL(ftruncate)(fd, len), sh_truncate_file(o, len));
}

PRE_EXPORT int ftruncate(int fd, off_t len)
{
        return do_ftruncate(fd, len);
}

PRE_EXPORT int ftruncate64(int fd, off_t len)
{
        return do_ftruncate(fd, len);
}

static int sh_truncate_path(const struct target *t, off_t len)
{
        if (len < 0) {
                return -EINVAL;
        }
        int c = claim(t->vol);
        if (c < 0) {
                return c;
        }
        struct shield_file *f;
        cf_status s = shield_file_open(t->vol->v, t->vpath, 0, &f);
        if (!cf_ok(s)) {
                return s.code == CF_E_CONFLICT ? -EISDIR : -pre_errno(s);
        }
        s = shield_file_truncate(f, (uint64_t)len);
        shield_file_close(f);
        if (!cf_ok(s)) {
                return s.code == CF_E_LIMIT ? -EFBIG : -pre_errno(s);
        }
        touch(t->vol);
        return t->vol->n_writers == 0 ? commit(t->vol) : 0;
}

static int do_truncate(const char *path, off_t len)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(truncate)(path, len), sh_truncate_path(&t, len));
}

PRE_EXPORT int truncate(const char *path, off_t len)
{
        return do_truncate(path, len);
}

PRE_EXPORT int truncate64(const char *path, off_t len)
{
        return do_truncate(path, len);
}

/* fsync and fdatasync commit the whole volume: the data is durable and named by a tag. */
PRE_EXPORT int fsync(int fd)
{
        FD_DISPATCH(int, fd, REAL(fsync)(fd), commit(o->vol));
}

PRE_EXPORT int fdatasync(int fd)
{
        FD_DISPATCH(int, fd, REAL(fdatasync)(fd), commit(o->vol));
}

/* ---- descriptors */

PRE_EXPORT int close(int fd)
{
        if (!may_change_table()) {
                return REAL(close)(fd);
        }
        int saved = errno;
        enter();
        struct pre_ofd *o = pre_fdtable_take(&g_fds, fd);
        if (o == NULL) {
                leave();
                return REAL(close)(fd);
        }
        REAL(close)(fd); /* the placeholder; nothing to report */
        int r = release(o);
        leave();
        return (int)finish(saved, r);
}

/* close_range: shielded descriptors in the range are released too (CLOSE_RANGE_CLOEXEC
 * only marks descriptors, so it changes nothing here). */
PRE_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
        if (!may_change_table() || ((unsigned)flags & CLOSE_RANGE_CLOEXEC) != 0) {
                return REAL(close_range)(first, last, flags);
        }
        int saved = errno;
        enter();
        int r = REAL(close_range)(first, last, flags);
        int e = r < 0 ? errno : 0;
        if (r == 0) {
                size_t end = last < g_fds.n_slot ? (size_t)last + 1 : g_fds.n_slot;
                for (size_t fd = first; fd < end; fd++) {
                        struct pre_ofd *o = pre_fdtable_take(&g_fds, (int)fd);
                        if (o != NULL) {
                                (void)release(o); /* a commit failure was reported */
                        }
                }
        }
        leave();
        errno = r < 0 ? e : saved;
        return r;
}

/* After a real dup of a placeholder to newfd: newfd shares o. */
static int dup_done(int newfd, struct pre_ofd *o)
{
        if (newfd < 0) {
                return -errno;
        }
        int r = bind_fd(newfd, o);
        if (r < 0) {
                REAL(close)(newfd);
                return r;
        }
        return newfd;
}

PRE_EXPORT int dup(int fd) /* banned-ok: defines the interposed libc name */
{
        FD_DISPATCH(int, fd, REAL(dup)(fd), dup_done(REAL(dup)(fd), o));
}

/* dup2/dup3: newfd first loses whatever it was (shielded or not), then shares oldfd's. */
static int do_dup3(int oldfd, int newfd, int flags, bool is_dup3)
{
        if (!may_change_table()) {
                return is_dup3 ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
        }
        int saved = errno;
        enter();
        struct pre_ofd *o = pre_fdtable_get(&g_fds, oldfd);
        int r = is_dup3 ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
        if (r < 0 || oldfd == newfd) {
                leave();
                return r;
        }
        int e = 0;
        struct pre_ofd *prev = pre_fdtable_take(&g_fds, newfd);
        if (prev != NULL) {
                e = release(prev);
        }
        if (o != NULL) {
                int b = bind_fd(newfd, o);
                e = b < 0 ? b : e;
        }
        leave();
        return (int)finish(saved, e < 0 ? e : r);
}

PRE_EXPORT int dup2(int oldfd, int newfd)
{
        return do_dup3(oldfd, newfd, 0, false);
}

PRE_EXPORT int dup3(int oldfd, int newfd, int flags)
{
        return do_dup3(oldfd, newfd, flags, true);
}

static int do_fcntl(int fd, int cmd, void *arg)
{
        /* Locks and descriptor flags act on the placeholder: straight to libc, before the
         * getpid of may_change_table (SQLite takes and drops locks on every statement). */
        if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC && cmd != F_GETFL && cmd != F_SETFL) {
                return REAL(fcntl)(fd, cmd, arg);
        }
        if (!may_change_table()) {
                return REAL(fcntl)(fd, cmd, arg);
        }
        int saved = errno;
        enter();
        struct pre_ofd *o = pre_fdtable_get(&g_fds, fd);
        int r;
        const int settable = O_APPEND | O_NONBLOCK | O_ASYNC | O_NOATIME;
        int v = (int)(intptr_t)arg;
        switch (o == NULL ? -1 : cmd) {
        case F_DUPFD:
        case F_DUPFD_CLOEXEC:
                r = dup_done(REAL(fcntl)(fd, cmd, arg), o);
                break;
        case F_GETFL:
                r = o->flags;
                break;
        case F_SETFL:
                if ((v & O_DIRECT) != 0) {
                        pre_warn("O_DIRECT is not supported on shielded files: EINVAL");
                        r = -EINVAL;
                        break;
                }
                o->flags = (o->flags & ~settable) | (v & settable);
                r = 0;
                break;
        default:
                /* Not ours, or descriptor flags and locks: they act on the placeholder
                 * (F_SETLKW may block, so never under the lock). */
                leave();
                return REAL(fcntl)(fd, cmd, arg);
        }
        leave();
        return (int)finish(saved, r);
}

PRE_EXPORT int fcntl(int fd, int cmd, ...)
{
        va_list ap;
        va_start(ap, cmd);
        void *arg = va_arg(ap, void *); /* glibc reads every argument this way too */
        va_end(ap);
        return do_fcntl(fd, cmd, arg);
}

PRE_EXPORT int fcntl64(int fd, int cmd, ...)
{
        va_list ap;
        va_start(ap, cmd);
        void *arg = va_arg(ap, void *);
        va_end(ap);
        return do_fcntl(fd, cmd, arg);
}

/* ---- names */

static int do_renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags)
{
        if (!pre_active()) {
                return REAL(renameat2)(olddir, from, newdir, to, flags);
        }
        int saved = errno;
        struct target a, b;
        enter();
        enum pre_kind ka = classify(olddir, from, &a);
        enum pre_kind kb = classify(newdir, to, &b);
        if (ka == PRE_PASS && kb == PRE_PASS) {
                leave();
                return REAL(renameat2)(olddir, a.libc_path, newdir, b.libc_path, flags);
        }
        int r;
        if (ka == PRE_DENY || kb == PRE_DENY) {
                r = ka == PRE_DENY ? -a.err : -b.err;
        } else if (a.vol != b.vol) {
                r = -EXDEV; /* mv falls back to copy and unlink, through the shield */
        } else if ((r = sync_vol(a.vol, false)) < 0) {
                /* r says why */
        } else {
                r = sh_rename(&a, &b, flags);
        }
        leave();
        return (int)finish(saved, r);
}

PRE_EXPORT int rename(const char *from, const char *to)
{
        return do_renameat2(AT_FDCWD, from, AT_FDCWD, to, 0);
}

PRE_EXPORT int renameat(int olddir, const char *from, int newdir, const char *to)
{
        return do_renameat2(olddir, from, newdir, to, 0);
}

PRE_EXPORT int renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags)
{
        return do_renameat2(olddir, from, newdir, to, flags);
}

PRE_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
        PATH_DISPATCH(int, dirfd, path, REAL(unlinkat)(dirfd, path, flags),
                      sh_unlink(&t, (flags & AT_REMOVEDIR) != 0));
}

PRE_EXPORT int unlink(const char *path)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(unlinkat)(AT_FDCWD, path, 0), sh_unlink(&t, false));
}

PRE_EXPORT int rmdir(const char *path)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(unlinkat)(AT_FDCWD, path, AT_REMOVEDIR),
                      sh_unlink(&t, true));
}

PRE_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
        PATH_DISPATCH(int, dirfd, path, REAL(mkdirat)(dirfd, path, mode), sh_mkdir(&t));
}

PRE_EXPORT int mkdir(const char *path, mode_t mode)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(mkdirat)(AT_FDCWD, path, mode), sh_mkdir(&t));
}

PRE_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
        PATH_DISPATCH(int, dirfd, path, REAL(faccessat)(dirfd, path, mode, flags),
                      sh_access(&t, mode));
}

PRE_EXPORT int access(const char *path, int mode)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(faccessat)(AT_FDCWD, path, mode, 0),
                      sh_access(&t, mode));
}

/* ---- directory streams: a snapshot of the listing taken at opendir */

#define PRE_DIR_ENTRIES_MAX (SHIELD_FILES_MAX + 2u)

static int dir_add(struct pre_dir *d, const char *name, unsigned char type, ino_t ino)
{
        if (d->n == d->cap) {
                size_t cap = d->cap == 0 ? 16 : 2 * d->cap;
                if (cap > PRE_DIR_ENTRIES_MAX) {
                        return -ENOMEM;
                }
                struct dirent *e = realloc(d->ent, cap * sizeof(*e));
                if (e == NULL) {
                        return -ENOMEM;
                }
                d->ent = e;
                d->cap = cap;
        }
        struct dirent *e = &d->ent[d->n];
        memset(e, 0, sizeof(*e));
        size_t len = strlen(name);
        if (len >= sizeof(e->d_name)) {
                return -ENAMETOOLONG;
        }
        memcpy(e->d_name, name, len + 1);
        e->d_ino = ino;
        e->d_off = (off_t)(d->n + 1);
        e->d_reclen = (unsigned short)sizeof(*e);
        e->d_type = type;
        d->n++;
        return 0;
}

struct list_ctx {
        struct pre_dir *d;
        const char *dir; /* volume path of the directory */
};

static cf_status list_one(void *ctx, const char *name, const struct shield_stat *st)
{
        struct list_ctx *c = ctx;
        char path[SHIELD_PATH_MAX + SHIELD_NAME_MAX + 2];
        int n = snprintf(path, sizeof(path), "%s%s%s", c->dir, c->dir[0] != '\0' ? "/" : "", name);
        ENSURE(n >= 0 && (size_t)n < sizeof(path), CF_E_LIMIT);
        unsigned char type = st->type == SHIELD_TYPE_DIR ? DT_DIR : DT_REG;
        ENSURE(dir_add(c->d, name, type, path_ino(path)) == 0, CF_E_NOMEM);
        return CF_OK;
}

static void dir_free(struct pre_dir *d)
{
        if (d != NULL) {
                free(d->ent);
                free(d);
        }
}

/* Makes a stream over the shielded directory descriptor fd (which it then owns). */
static struct pre_dir *sh_dir_new(int fd, const struct pre_ofd *o, int *err)
{
        struct pre_dir *d = calloc(1, sizeof(*d));
        if (d == NULL) {
                *err = ENOMEM;
                return NULL;
        }
        d->fd = fd;
        struct list_ctx c = {d, o->path};
        int r = dir_add(d, ".", DT_DIR, path_ino(o->path));
        r = r == 0 ? dir_add(d, "..", DT_DIR, 1) : r;
        if (r == 0) {
                cf_status s = shield_volume_list(o->vol->v, o->path, list_one, &c);
                r = cf_ok(s) ? 0 : -pre_errno(s);
        }
        if (r != 0) {
                dir_free(d);
                *err = -r;
                return NULL;
        }
        d->next = g_dirs;
        __atomic_store_n(&g_dirs, d, __ATOMIC_RELEASE);
        return d;
}

/* Finds and, with unlink, removes one of our streams. The lock is held. */
static struct pre_dir *find_dir(const void *dp, bool unlink)
{
        for (struct pre_dir **p = &g_dirs; *p != NULL; p = &(*p)->next) {
                if ((const void *)*p == dp) {
                        struct pre_dir *d = *p;
                        if (unlink) {
                                *p = d->next;
                        }
                        return d;
                }
        }
        return NULL;
}

/* Closes a shielded descriptor the shim opened itself. The lock is held. */
static int close_own(int fd)
{
        struct pre_ofd *o = pre_fdtable_take(&g_fds, fd);
        REAL(close)(fd);
        return o != NULL ? release(o) : 0;
}

PRE_EXPORT DIR *opendir(const char *path)
{
        if (!pre_active()) {
                return REAL(opendir)(path);
        }
        int saved = errno;
        struct target t;
        enter();
        enum pre_kind k = classify(AT_FDCWD, path, &t);
        if (k == PRE_PASS) {
                leave();
                return REAL(opendir)(t.libc_path);
        }
        int err = t.err;
        struct pre_dir *d = NULL;
        if (k == PRE_SHIELD && (err = -sync_vol(t.vol, false)) == 0) {
                int fd = sh_open(&t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                err = fd < 0 ? -fd : 0;
                if (fd >= 0) {
                        d = sh_dir_new(fd, pre_fdtable_get(&g_fds, fd), &err);
                        if (d == NULL) {
                                (void)close_own(fd);
                        }
                }
        }
        leave();
        errno = d != NULL ? saved : err;
        return (DIR *)d;
}

PRE_EXPORT DIR *fdopendir(int fd)
{
        if (!maybe_shielded_fd()) {
                return REAL(fdopendir)(fd);
        }
        int saved = errno;
        enter();
        struct pre_ofd *o = pre_fdtable_get(&g_fds, fd);
        if (o == NULL) {
                leave();
                return REAL(fdopendir)(fd);
        }
        int err = ENOTDIR;
        struct pre_dir *d = o->dir ? sh_dir_new(fd, o, &err) : NULL;
        leave();
        errno = d != NULL ? saved : err;
        return (DIR *)d;
}

/* Our streams are only looked up when one exists; the shim's own listing of the backing
 * directory (depth > 0) always goes to libc. */
static struct pre_dir *our_dir(DIR *dp)
{
        if (t_depth != 0 || __atomic_load_n(&g_dirs, __ATOMIC_ACQUIRE) == NULL) {
                return NULL;
        }
        enter();
        struct pre_dir *d = find_dir(dp, false);
        leave();
        return d;
}

static struct dirent *dir_next(struct pre_dir *d)
{
        enter();
        struct dirent *e = d->pos < d->n ? &d->ent[d->pos++] : NULL;
        leave();
        return e;
}

PRE_EXPORT struct dirent *readdir(DIR *dp)
{
        struct pre_dir *d = our_dir(dp);
        return d != NULL ? dir_next(d) : REAL(readdir)(dp);
}

PRE_EXPORT struct dirent64 *readdir64(DIR *dp)
{
        struct pre_dir *d = our_dir(dp);
        return d != NULL ? (struct dirent64 *)(void *)dir_next(d) : REAL(readdir64)(dp);
}

PRE_EXPORT int dirfd(DIR *dp)
{
        struct pre_dir *d = our_dir(dp);
        return d != NULL ? d->fd : REAL(dirfd)(dp);
}

PRE_EXPORT void rewinddir(DIR *dp)
{
        struct pre_dir *d = our_dir(dp);
        if (d == NULL) {
                REAL(rewinddir)(dp);
                return;
        }
        enter();
        d->pos = 0;
        leave();
}

PRE_EXPORT int closedir(DIR *dp)
{
        if (t_depth != 0 || __atomic_load_n(&g_dirs, __ATOMIC_ACQUIRE) == NULL) {
                return REAL(closedir)(dp);
        }
        int saved = errno;
        enter();
        struct pre_dir *d = find_dir(dp, true);
        if (d == NULL) {
                leave();
                return REAL(closedir)(dp);
        }
        int r = close_own(d->fd);
        dir_free(d);
        leave();
        return (int)finish(saved, r);
}

/* ---- kernel-side copies and mappings */

static bool either_shielded(int a, int b)
{
        if (!maybe_shielded_fd()) {
                return false;
        }
        enter();
        bool r = pre_fdtable_get(&g_fds, a) != NULL || pre_fdtable_get(&g_fds, b) != NULL;
        leave();
        return r;
}

/* Refused with EXDEV: the kernel would copy the (empty) placeholder, not the plaintext;
 * cat, cp and Python then fall back to read and write, which the shield serves. */
PRE_EXPORT ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t n,
                                   unsigned flags)
{
        if (either_shielded(in, out)) {
                errno = EXDEV;
                return -1;
        }
        return REAL(copy_file_range)(in, in_off, out, out_off, n, flags);
}

PRE_EXPORT ssize_t splice(int in, off_t *in_off, int out, off_t *out_off, size_t n, unsigned flags)
{
        if (either_shielded(in, out)) {
                errno = EXDEV;
                return -1;
        }
        return REAL(splice)(in, in_off, out, out_off, n, flags);
}

PRE_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
        if (either_shielded(in, out)) {
                errno = EXDEV;
                return -1;
        }
        return REAL(sendfile)(out, in, off, n);
}

PRE_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n)
{
        return sendfile(out, in, off, n);
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        if ((flags & MAP_ANONYMOUS) != 0 || fd < 0 || !maybe_shielded_fd()) {
                return REAL(mmap)(addr, len, prot, flags, fd, off);
        }
        int saved = errno;
        enter();
        struct pre_ofd *o = pre_fdtable_get(&g_fds, fd);
        if (o == NULL) {
                leave();
                return REAL(mmap)(addr, len, prot, flags, fd, off);
        }
        int err = 0;
        void *p = sh_mmap(o, addr, len, prot, flags, off, &err);
        leave();
        errno = p == MAP_FAILED ? err : saved;
        return p;
}

PRE_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        return do_mmap(addr, len, prot, flags, fd, off);
}

PRE_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        return do_mmap(addr, len, prot, flags, fd, off);
}

/* ---- extended attributes: a shielded file has none (ls -l asks for ACLs and labels) */

PRE_EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
        PATH_DISPATCH(ssize_t, AT_FDCWD, path, REAL(getxattr)(path, name, value, size), -ENOTSUP);
}

PRE_EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
        PATH_DISPATCH(ssize_t, AT_FDCWD, path, REAL(lgetxattr)(path, name, value, size), -ENOTSUP);
}

PRE_EXPORT ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
        FD_DISPATCH(ssize_t, fd, REAL(fgetxattr)(fd, name, value, size), -ENOTSUP);
}

PRE_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
        PATH_DISPATCH(ssize_t, AT_FDCWD, path, REAL(listxattr)(path, list, size), 0);
}

PRE_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
        PATH_DISPATCH(ssize_t, AT_FDCWD, path, REAL(llistxattr)(path, list, size), 0);
}

PRE_EXPORT ssize_t flistxattr(int fd, char *list, size_t size)
{
        FD_DISPATCH(ssize_t, fd, REAL(flistxattr)(fd, list, size), 0);
}

PRE_EXPORT int setxattr(const char *path, const char *name, const void *value, size_t size,
                        int flags)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(setxattr)(path, name, value, size, flags),
                      -ENOTSUP);
}

PRE_EXPORT int lsetxattr(const char *path, const char *name, const void *value, size_t size,
                         int flags)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(lsetxattr)(path, name, value, size, flags),
                      -ENOTSUP);
}

PRE_EXPORT int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
{
        FD_DISPATCH(int, fd, REAL(fsetxattr)(fd, name, value, size, flags), -ENOTSUP);
}

PRE_EXPORT int removexattr(const char *path, const char *name)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(removexattr)(path, name), -ENOTSUP);
}

PRE_EXPORT int lremovexattr(const char *path, const char *name)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(lremovexattr)(path, name), -ENOTSUP);
}

PRE_EXPORT int fremovexattr(int fd, const char *name)
{
        FD_DISPATCH(int, fd, REAL(fremovexattr)(fd, name), -ENOTSUP);
}

/* ---------------------------------------------------------------------------------------
 * The working directory (docs/shield-preload.md "Working directory"). A chdir into a
 * shielded directory only records it (g_cwd); the kernel's working directory stays where
 * it was, since the mount point does not exist on the host. */

/* A vfork child shares the parent's memory (and environment) until it execs: its chdir
 * must not move the parent's virtual working directory. */
static bool own_process(void)
{
        return getpid() == g_pid;
}

/* PWD follows the working directory, as a shell's cd keeps it: an exec'd child with the
 * shim starts from it (adopt_pwd). The lock is held. */
static void export_pwd(const char *path)
{
        if (setenv("PWD", path, 1) != 0) {
                unsetenv("PWD"); /* ENOMEM: better no PWD than a stale one */
        }
}

/* Enters the shielded directory abs (absolute, normalised, under a mount). Lock held. */
static void cwd_enter(const char *abs)
{
        size_t n = strlen(abs);
        cf_assert(n < sizeof(g_cwd));
        memcpy(g_cwd, abs, n + 1);
        g_cwd_set = true;
        export_pwd(g_cwd);
}

/* After a real chdir or fchdir succeeded: the kernel's working directory counts again. */
static void cwd_leave(void)
{
        if (!g_cwd_set) {
                return;
        }
        g_cwd_set = false;
        char cwd[PATH_MAX];
        if (REAL(getcwd)(cwd, sizeof(cwd)) != NULL) {
                export_pwd(cwd);
        } else {
                unsetenv("PWD");
        }
}

static int sh_chdir(const struct target *t)
{
        struct shield_stat ss;
        cf_status s = shield_volume_stat(t->vol->v, t->vpath, &ss);
        if (!cf_ok(s)) {
                return -pre_errno(s);
        }
        if (ss.type != SHIELD_TYPE_DIR) {
                return -ENOTDIR;
        }
        if (!own_process()) {
                return -EACCES; /* a vfork child: the program it execs has no volume */
        }
        cwd_enter(t->buf);
        return 0;
}

static int sh_fchdir(const struct pre_ofd *o)
{
        char raw[PRE_ABS_MAX];
        char norm[PRE_ABS_MAX];
        if (!o->dir) {
                return -ENOTDIR;
        }
        if (!own_process()) {
                return -EACCES;
        }
        if (!join(raw, sizeof(raw), o->vol->mount, o->path, "") ||
            !cf_ok(pre_path_normalize(raw, norm, sizeof(norm)))) {
                return -ENAMETOOLONG;
        }
        cwd_enter(norm);
        return 0;
}

PRE_EXPORT int chdir(const char *path)
{
        if (!pre_active()) {
                return REAL(chdir)(path);
        }
        int saved = errno;
        struct target t;
        enter();
        enum pre_kind k = classify(AT_FDCWD, path, &t);
        int r;
        if (k == PRE_PASS) {
                /* Under the lock: no other thread resolves a relative path in between. */
                r = REAL(chdir)(t.libc_path);
                int e = errno;
                if (r == 0 && own_process()) {
                        cwd_leave();
                }
                leave();
                errno = r == 0 ? saved : e;
                return r;
        }
        r = k == PRE_DENY ? -t.err : sync_vol(t.vol, false);
        r = r < 0 ? r : sh_chdir(&t);
        leave();
        return (int)finish(saved, r);
}

PRE_EXPORT int fchdir(int fd)
{
        if (!pre_active()) {
                return REAL(fchdir)(fd);
        }
        int saved = errno;
        enter();
        struct pre_ofd *o = pre_fdtable_get(&g_fds, fd);
        int r;
        if (o == NULL) {
                r = REAL(fchdir)(fd);
                int e = errno;
                if (r == 0 && own_process()) {
                        cwd_leave();
                }
                leave();
                errno = r == 0 ? saved : e;
                return r;
        }
        r = sh_fchdir(o);
        leave();
        return (int)finish(saved, r);
}

/* Copies the virtual working directory into out (PRE_ABS_MAX bytes); false when the
 * working directory is the kernel's. */
static bool cwd_copy(char *out)
{
        if (!pre_active()) {
                return false;
        }
        enter();
        bool set = g_cwd_set;
        if (set) {
                memcpy(out, g_cwd, strlen(g_cwd) + 1);
        }
        leave();
        return set;
}

static char *do_getcwd(char *buf, size_t size)
{
        char cwd[PRE_ABS_MAX];
        if (!cwd_copy(cwd)) {
                return REAL(getcwd)(buf, size);
        }
        size_t n = strlen(cwd) + 1;
        if (buf == NULL) {
                /* glibc's extension: allocate size bytes, or as many as needed for 0. */
                if (size != 0 && size < n) {
                        errno = ERANGE;
                        return NULL;
                }
                char *p = malloc(size != 0 ? size : n);
                if (p == NULL) {
                        errno = ENOMEM;
                        return NULL;
                }
                memcpy(p, cwd, n);
                return p;
        }
        if (size == 0) {
                errno = EINVAL;
                return NULL;
        }
        if (size < n) {
                errno = ERANGE;
                return NULL;
        }
        memcpy(buf, cwd, n);
        return buf;
}

PRE_EXPORT char *getcwd(char *buf, size_t size)
{
        return do_getcwd(buf, size);
}

/* The _FORTIFY_SOURCE entry points call glibc's internal getcwd, realpath and readlink,
 * which no preload sees: they are interposed too. glibc's headers do not declare them. */
char *__getcwd_chk(char *buf, size_t size, size_t buflen);
char *__getwd_chk(char *buf, size_t buflen);
char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen);
ssize_t __readlink_chk(const char *path, char *buf, size_t len, size_t buflen);
ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t len, size_t buflen);

PRE_EXPORT char *__getcwd_chk(char *buf, size_t size, size_t buflen)
{
        if (size > buflen) {
                __chk_fail();
        }
        return do_getcwd(buf, size);
}

PRE_EXPORT char *get_current_dir_name(void)
{
        char cwd[PRE_ABS_MAX];
        if (!cwd_copy(cwd)) {
                return REAL(get_current_dir_name)();
        }
        return strdup(cwd);
}

PRE_EXPORT char *getwd(char *buf)
{
        char cwd[PRE_ABS_MAX];
        if (!cwd_copy(cwd)) {
                return REAL(getwd)(buf);
        }
        size_t n = strlen(cwd) + 1;
        if (n > PATH_MAX) {
                /* getwd reports failures as a message in buf (at most PATH_MAX bytes). */
                snprintf(buf, PATH_MAX, "%s", strerror(ENAMETOOLONG));
                errno = ENAMETOOLONG;
                return NULL;
        }
        memcpy(buf, cwd, n);
        return buf;
}

PRE_EXPORT char *__getwd_chk(char *buf, size_t buflen)
{
        char *r = do_getcwd(buf, buflen);
        if (r == NULL && errno == ERANGE) {
                __chk_fail();
        }
        return r;
}

/* ---- realpath: glibc's walks the path with internal readlink calls the shim cannot see,
 * so a shielded path is resolved here, lexically (a volume has no links). */

static int sh_exists(const struct target *t)
{
        struct shield_stat ss;
        cf_status s = shield_volume_stat(t->vol->v, t->vpath, &ss);
        return cf_ok(s) ? 0 : -pre_errno(s);
}

static char *do_realpath(const char *path, char *resolved)
{
        if (!pre_active() || path == NULL) {
                return REAL(realpath)(path, resolved);
        }
        int saved = errno;
        struct target t;
        enter();
        enum pre_kind k = classify(AT_FDCWD, path, &t);
        if (k == PRE_PASS) {
                leave();
                return REAL(realpath)(t.libc_path, resolved);
        }
        int r = k == PRE_DENY ? -t.err : sync_vol(t.vol, false);
        r = r < 0 ? r : sh_exists(&t);
        leave();
        size_t n = strlen(t.buf) + 1;
        if (r == 0 && resolved != NULL && n > PATH_MAX) {
                r = -ENAMETOOLONG;
        }
        char *out = r == 0 && resolved == NULL ? strdup(t.buf) : resolved;
        if (r == 0 && out == NULL) {
                r = -ENOMEM;
        }
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        if (out == resolved) {
                memcpy(resolved, t.buf, n);
        }
        errno = saved;
        return out;
}

PRE_EXPORT char *realpath(const char *path, char *resolved)
{
        return do_realpath(path, resolved);
}

PRE_EXPORT char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen)
{
        if (resolvedlen < PATH_MAX) {
                __chk_fail();
        }
        return do_realpath(path, resolved);
}

PRE_EXPORT char *canonicalize_file_name(const char *path)
{
        if (!pre_active()) {
                return REAL(canonicalize_file_name)(path);
        }
        return do_realpath(path, NULL);
}

/* ---- links: a volume has none. readlink of an existing entry says "not a link". */

static ssize_t sh_readlink(const struct target *t)
{
        int r = sh_exists(t);
        return r < 0 ? r : -EINVAL;
}

static ssize_t do_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
        PATH_DISPATCH(ssize_t, dirfd, path, REAL(readlinkat)(dirfd, path, buf, size),
                      sh_readlink(&t));
}

PRE_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
        PATH_DISPATCH(ssize_t, AT_FDCWD, path, REAL(readlink)(path, buf, size), sh_readlink(&t));
}

PRE_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
        return do_readlinkat(dirfd, path, buf, size);
}

PRE_EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t len, size_t buflen)
{
        if (len > buflen) {
                __chk_fail();
        }
        return do_readlinkat(AT_FDCWD, path, buf, len);
}

PRE_EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t len,
                                    size_t buflen)
{
        if (len > buflen) {
                __chk_fail();
        }
        return do_readlinkat(dirfd, path, buf, len);
}

static int refuse_link(const char *where)
{
        pre_warn("links are not supported in a volume (%s): EPERM", where);
        return -EPERM;
}

/* link and linkat: refused when either side is shielded (AT_EMPTY_PATH included). */
static int do_linkat(int olddir, const char *from, int newdir, const char *to, int flags,
                     bool plain)
{
        if (!pre_active()) {
                return plain ? REAL(link)(from, to) : REAL(linkat)(olddir, from, newdir, to, flags);
        }
        int saved = errno;
        struct target a, b;
        enter();
        enum pre_kind ka = classify(olddir, from, &a);
        enum pre_kind kb = classify(newdir, to, &b);
        bool fd_src = from != NULL && from[0] == '\0' && (flags & AT_EMPTY_PATH) != 0 &&
                      pre_fdtable_get(&g_fds, olddir) != NULL;
        if (ka == PRE_PASS && kb == PRE_PASS && !fd_src) {
                leave();
                return plain ? REAL(link)(a.libc_path, b.libc_path)
                             : REAL(linkat)(olddir, a.libc_path, newdir, b.libc_path, flags);
        }
        int r;
        if (ka == PRE_DENY || kb == PRE_DENY) {
                r = ka == PRE_DENY ? -a.err : -b.err;
        } else {
                r = refuse_link(kb == PRE_SHIELD   ? b.buf
                                : ka == PRE_SHIELD ? a.buf
                                                   : "a shielded descriptor");
        }
        leave();
        return (int)finish(saved, r);
}

PRE_EXPORT int link(const char *from, const char *to)
{
        return do_linkat(AT_FDCWD, from, AT_FDCWD, to, 0, true);
}

PRE_EXPORT int linkat(int olddir, const char *from, int newdir, const char *to, int flags)
{
        return do_linkat(olddir, from, newdir, to, flags, false);
}

/* symlink and symlinkat: the link's own path decides (its target is only a string). */
PRE_EXPORT int symlink(const char *target, const char *path)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(symlink)(target, path), refuse_link(t.buf));
}

PRE_EXPORT int symlinkat(const char *target, int dirfd, const char *path)
{
        PATH_DISPATCH(int, dirfd, path, REAL(symlinkat)(target, dirfd, path), refuse_link(t.buf));
}

/* ---- modes, owners and times: the shield keeps none (stat reports fixed ones), so these
 * succeed on anything that exists; cp -p, tar, rsync, install and touch rely on them. */

PRE_EXPORT int chmod(const char *path, mode_t mode)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(chmod)(path, mode), sh_exists(&t));
}

PRE_EXPORT int lchmod(const char *path, mode_t mode)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(lchmod)(path, mode), sh_exists(&t));
}

PRE_EXPORT int fchmod(int fd, mode_t mode)
{
        FD_DISPATCH(int, fd, REAL(fchmod)(fd, mode), 0);
}

PRE_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
        PATH_DISPATCH(int, dirfd, path, REAL(fchmodat)(dirfd, path, mode, flags), sh_exists(&t));
}

PRE_EXPORT int chown(const char *path, uid_t uid, gid_t gid)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(chown)(path, uid, gid), sh_exists(&t));
}

PRE_EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(lchown)(path, uid, gid), sh_exists(&t));
}

PRE_EXPORT int fchown(int fd, uid_t uid, gid_t gid)
{
        FD_DISPATCH(int, fd, REAL(fchown)(fd, uid, gid), 0);
}

PRE_EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
        if (path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0) {
                if (dirfd == AT_FDCWD) {
                        path = ".";
                } else {
                        FD_DISPATCH(int, dirfd, REAL(fchownat)(dirfd, path, uid, gid, flags), 0);
                }
        }
        PATH_DISPATCH(int, dirfd, path, REAL(fchownat)(dirfd, path, uid, gid, flags),
                      sh_exists(&t));
}

PRE_EXPORT int utime(const char *path, const struct utimbuf *times)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(utime)(path, times), sh_exists(&t));
}

PRE_EXPORT int utimes(const char *path, const struct timeval times[2])
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(utimes)(path, times), sh_exists(&t));
}

PRE_EXPORT int lutimes(const char *path, const struct timeval times[2])
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(lutimes)(path, times), sh_exists(&t));
}

PRE_EXPORT int futimes(int fd, const struct timeval times[2])
{
        FD_DISPATCH(int, fd, REAL(futimes)(fd, times), 0);
}

PRE_EXPORT int futimesat(int dirfd, const char *path, const struct timeval times[2])
{
        if (path == NULL) {
                FD_DISPATCH(int, dirfd, REAL(futimesat)(dirfd, path, times), 0);
        }
        PATH_DISPATCH(int, dirfd, path, REAL(futimesat)(dirfd, path, times), sh_exists(&t));
}

/* The kernel's checks on a timespec pair: UTIME_NOW, UTIME_OMIT or a valid nanosecond. */
static int times_ok(const struct timespec *ts)
{
        for (int i = 0; ts != NULL && i < 2; i++) {
                long ns = ts[i].tv_nsec;
                if (ns != UTIME_NOW && ns != UTIME_OMIT && (ns < 0 || ns > 999999999L)) {
                        return -EINVAL;
                }
        }
        return 0;
}

/* Hides a pointer's origin from the optimiser: glibc declares utimensat's path nonnull, yet
 * Linux defines a NULL path (futimens), and that test must not be folded away. */
static const char *opaque(const char *p)
{
        __asm__("" : "+r"(p));
        return p;
}

PRE_EXPORT int utimensat(int dirfd, const char *path_arg, const struct timespec times[2], int flags)
{
        const char *path = opaque(path_arg);
        if (path == NULL || (path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0)) {
                if (path != NULL && dirfd == AT_FDCWD) {
                        path = ".";
                } else {
                        /* futimens: glibc passes a NULL path */
                        FD_DISPATCH(int, dirfd, REAL(utimensat)(dirfd, path, times, flags),
                                    times_ok(times));
                }
        }
        int bad = times_ok(times);
        PATH_DISPATCH(int, dirfd, path, REAL(utimensat)(dirfd, path, times, flags),
                      bad < 0 ? bad : sh_exists(&t));
}

PRE_EXPORT int futimens(int fd, const struct timespec times[2])
{
        FD_DISPATCH(int, fd, REAL(futimens)(fd, times), times_ok(times));
}

PRE_EXPORT int euidaccess(const char *path, int mode)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(euidaccess)(path, mode), sh_access(&t, mode));
}

PRE_EXPORT int eaccess(const char *path, int mode)
{
        PATH_DISPATCH(int, AT_FDCWD, path, REAL(euidaccess)(path, mode), sh_access(&t, mode));
}
