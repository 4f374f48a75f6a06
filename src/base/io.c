#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"

cf_status cf_read_fd(int fd, size_t max, struct cf_buf *b)
{
        for (;;) {
                ssize_t n;

                TRY(cf_buf_reserve(b, b->size < max ? 1 : max + 1));
                {
                        size_t room = b->cap - 1 - b->size;
                        n = read(fd, b->ptr + b->size, room);
                }
                if (n < 0 && errno == EINTR) {
                        continue;
                }
                TRY_ERRNO(n);
                if (n == 0) {
                        return CF_OK;
                }
                b->size += (size_t)n;
                b->ptr[b->size] = 0;
                ENSURE(b->size <= max, CF_E_LIMIT);
        }
}

cf_status cf_read_file(const char *path, size_t max, struct cf_buf *b)
{
        struct stat st;
        cf_status s;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        TRY_ERRNO(fd);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return cf_fail(CF_E_IO);
        }
        if ((uint64_t)st.st_size > max) {
                close(fd);
                return cf_fail(CF_E_LIMIT);
        }
        s = cf_read_fd(fd, max, b);
        close(fd);
        return s;
}

cf_status cf_write_all(int fd, const void *data, size_t size)
{
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0 && errno == EINTR) {
                        continue;
                }
                TRY_ERRNO(n);
                p += n;
                size -= (size_t)n;
        }
        return CF_OK;
}

static cf_status fsync_dir_of(const char *path)
{
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        int fd;

        if (slash == NULL) {
                snprintf(dir, sizeof(dir), ".");
        } else {
                size_t n = (size_t)(slash - path);
                ENSURE(n < sizeof(dir), CF_E_LIMIT);
                memcpy(dir, path, n);
                dir[n == 0 ? 1 : n] = '\0';
                if (n == 0) {
                        dir[0] = '/';
                }
        }
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        TRY_ERRNO(fd);
        if (fsync(fd) < 0) {
                int e = errno;
                close(fd);
                return cf_fail_errno(e);
        }
        close(fd);
        return CF_OK;
}

cf_status cf_write_file_atomic(const char *path, const void *data, size_t size, mode_t mode)
{
        char tmp[PATH_MAX];
        uint8_t rnd[6];
        char suffix[13];
        int fd, n;
        cf_status s;

        /* A random suffix avoids collisions between concurrent writers. */
        ENSURE(getrandom(rnd, sizeof(rnd), 0) == (ssize_t)sizeof(rnd), CF_E_RANDOM);
        snprintf(suffix, sizeof(suffix), "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5]);
        n = snprintf(tmp, sizeof(tmp), "%s.tmp-%s", path, suffix);
        ENSURE(n > 0 && (size_t)n < sizeof(tmp), CF_E_LIMIT);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        TRY_ERRNO(fd);
        s = cf_write_all(fd, data, size);
        if (cf_ok(s) && fsync(fd) < 0) {
                s = cf_fail_errno(errno);
        }
        close(fd);
        if (cf_ok(s) && rename(tmp, path) < 0) {
                s = cf_fail_errno(errno);
        }
        if (!cf_ok(s)) {
                unlink(tmp);
                return s;
        }
        return fsync_dir_of(path);
}

cf_status cf_mkdir_p(const char *path, mode_t mode)
{
        char p[PATH_MAX];
        size_t n = strlen(path);

        ENSURE(n > 0 && n < sizeof(p), CF_E_LIMIT);
        memcpy(p, path, n + 1);
        for (size_t i = 1; i <= n; i++) {
                if (p[i] == '/' || p[i] == '\0') {
                        char saved = p[i];
                        p[i] = '\0';
                        if (mkdir(p, mode) < 0 && errno != EEXIST) {
                                return cf_fail_errno(errno);
                        }
                        p[i] = saved;
                }
        }
        return CF_OK;
}
