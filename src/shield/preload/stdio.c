/* stdio on shielded files. glibc's fopen opens and reads through internal entry points that
 * no preload can see, so fopen, fopen64, fdopen and freopen are interposed themselves: a
 * shielded path gets a FILE made with fopencookie whose callbacks call the interposed
 * read, write, lseek64 and close of its shielded descriptor (fileno() of such a stream is
 * -1, as for every cookie stream). */
#undef _FORTIFY_SOURCE /* see interpose.c */
#undef _FILE_OFFSET_BITS

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shield/preload/preload_internal.h"

#define PRE_EXPORT __attribute__((visibility("default")))

static struct {
        FILE *(*fopen)(const char *, const char *);
        FILE *(*fdopen)(int, const char *);
        FILE *(*freopen)(const char *, const char *, FILE *);
} g_real_stdio;

void pre_stdio_resolve(void *(*need)(const char *name))
{
        *(void **)&g_real_stdio.fopen = need("fopen64");
        *(void **)&g_real_stdio.fdopen = need("fdopen");
        *(void **)&g_real_stdio.freopen = need("freopen64");
}

#define REAL(fn) (g_real_stdio.fn != NULL ? g_real_stdio.fn : (pre_resolve(), g_real_stdio.fn))

struct cookie {
        int fd;
};

static ssize_t c_read(void *p, char *buf, size_t n)
{
        const struct cookie *c = p;
        return read(c->fd, buf, n);
}

static ssize_t c_write(void *p, const char *buf, size_t n)
{
        const struct cookie *c = p;
        ssize_t r = write(c->fd, buf, n);
        return r < 0 ? 0 : r; /* fopencookie: 0 means error for writes */
}

static int c_seek(void *p, off64_t *pos, int whence)
{
        const struct cookie *c = p;
        off_t r = lseek64(c->fd, *pos, whence);
        if (r < 0) {
                return -1;
        }
        *pos = r;
        return 0;
}

static int c_close(void *p)
{
        struct cookie *c = p;
        int r = close(c->fd);
        free(c);
        return r;
}

/* Parses an fopen mode ("r", "w+", "ab", "re", "wx", ...) into open(2) flags. */
static int mode_flags(const char *mode, int *ret)
{
        int flags;
        switch (mode[0]) {
        case 'r':
                flags = O_RDONLY;
                break;
        case 'w':
                flags = O_WRONLY | O_CREAT | O_TRUNC;
                break;
        case 'a':
                flags = O_WRONLY | O_CREAT | O_APPEND;
                break;
        default:
                return -EINVAL;
        }
        for (const char *m = mode + 1; *m != '\0' && *m != ','; m++) {
                switch (*m) {
                case '+':
                        flags = (flags & ~O_ACCMODE) | O_RDWR;
                        break;
                case 'e':
                        flags |= O_CLOEXEC;
                        break;
                case 'x':
                        flags |= O_EXCL;
                        break;
                case 'b':
                case 'm':
                case 'c':
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (strchr(mode, ',') != NULL) {
                return -EINVAL; /* ",ccs=": wide-character conversion is not supported */
        }
        *ret = flags;
        return 0;
}

/* A stream over shielded fd (owned by the stream from now on, also on failure). */
static FILE *cookie_stream(int fd, const char *mode)
{
        struct cookie *c = malloc(sizeof(*c));
        if (c == NULL) {
                close(fd);
                errno = ENOMEM;
                return NULL;
        }
        c->fd = fd;
        cookie_io_functions_t io = {c_read, c_write, c_seek, c_close};
        FILE *f = fopencookie(c, mode, io);
        if (f == NULL) {
                int e = errno;
                free(c);
                close(fd);
                errno = e;
        }
        return f;
}

static FILE *do_fopen(const char *path, const char *mode)
{
        if (!pre_active() || path == NULL || mode == NULL) {
                return REAL(fopen)(path, mode);
        }
        char abs[PRE_ABS_MAX];
        const char *pass;
        enum pre_kind k = pre_path_kind(path, abs, sizeof(abs), &pass);
        if (k == PRE_PASS) {
                return REAL(fopen)(pass, mode);
        }
        int flags;
        int r = mode_flags(mode, &flags);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        int fd = open(path, flags, 0600);
        if (fd < 0) {
                return NULL;
        }
        return cookie_stream(fd, mode);
}

PRE_EXPORT FILE *fopen(const char *path, const char *mode)
{
        return do_fopen(path, mode);
}

PRE_EXPORT FILE *fopen64(const char *path, const char *mode)
{
        return do_fopen(path, mode);
}

PRE_EXPORT FILE *fdopen(int fd, const char *mode)
{
        if (!pre_active() || !pre_fd_shielded(fd)) {
                return REAL(fdopen)(fd, mode);
        }
        int flags;
        int r = mode != NULL ? mode_flags(mode, &flags) : -EINVAL;
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        if ((flags & O_APPEND) != 0) {
                int cur = fcntl(fd, F_GETFL);
                if (cur >= 0) {
                        (void)fcntl(fd, F_SETFL, cur | O_APPEND); /* as glibc's fdopen does */
                }
        }
        struct cookie *c = malloc(sizeof(*c));
        if (c == NULL) {
                errno = ENOMEM;
                return NULL;
        }
        c->fd = fd;
        cookie_io_functions_t io = {c_read, c_write, c_seek, c_close};
        FILE *f = fopencookie(c, mode, io);
        if (f == NULL) {
                free(c); /* fdopen failing leaves fd open */
        }
        return f;
}

/* freopen cannot turn an existing FILE into a cookie stream: a shielded path is refused
 * loudly rather than opened on the backing disk. */
static FILE *do_freopen(const char *path, const char *mode, FILE *stream)
{
        char abs[PRE_ABS_MAX];
        const char *pass = path;
        if (pre_active() && path != NULL &&
            pre_path_kind(path, abs, sizeof(abs), &pass) != PRE_PASS) {
                pre_warn("freopen of the shielded path %s is not supported (EOPNOTSUPP)", path);
                fclose(stream);
                errno = EOPNOTSUPP;
                return NULL;
        }
        return REAL(freopen)(pass, mode, stream);
}

PRE_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
        return do_freopen(path, mode, stream);
}

PRE_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
        return do_freopen(path, mode, stream);
}
