/* POSIX storage for shielded volumes: one flat directory, every name opened with openat()
 * under the directory's fd with O_NOFOLLOW and O_CLOEXEC, so a hostile host cannot make
 * the library follow a symlink or leave the directory. Names are re-checked here even
 * though the library only makes well-formed ones. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shield/shield.h"

struct shield_posix {
        int dirfd;
        bool rdonly; /* shield_posix_open_rdonly: nothing is ever written */
};

struct posix_file {
        int fd;
};

static CF_FN check_name(const char *name)
{
        size_t len;

        ENSURE(name != NULL, CF_E_INVALID_ARG);
        len = strnlen(name, SHIELD_STORAGE_NAME_MAX + 1);
        ENSURE(len >= 1 && len <= SHIELD_STORAGE_NAME_MAX, CF_E_INVALID_ARG);
        ENSURE(strcmp(name, ".") != 0 && strcmp(name, "..") != 0, CF_E_INVALID_ARG);
        for (size_t i = 0; i < len; i++) {
                char c = name[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';

                ENSURE(ok, CF_E_INVALID_ARG);
        }
        return CF_OK;
}

static cf_status p_open(void *st, const char *name, unsigned flags, void **ret)
{
        struct shield_posix *p = st;
        int of = (p->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW;
        struct posix_file *f;
        struct stat sb;
        int fd;

        TRY(check_name(name));
        ENSURE(!p->rdonly || !(flags & (SHIELD_ST_CREATE | SHIELD_ST_TRUNC)), CF_E_PERMISSION);
        of |= (flags & SHIELD_ST_CREATE) ? O_CREAT : 0;
        of |= (flags & SHIELD_ST_EXCL) ? O_EXCL : 0;
        of |= (flags & SHIELD_ST_TRUNC) ? O_TRUNC : 0;
        do {
                fd = openat(p->dirfd, name, of, 0600);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) {
                return errno == EEXIST ? cf_fail(CF_E_EXISTS) : cf_fail_errno(errno);
        }
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
                close(fd);
                return cf_fail(CF_E_IO);
        }
        f = malloc(sizeof(*f));
        if (f == NULL) {
                close(fd);
                return cf_fail(CF_E_NOMEM);
        }
        f->fd = fd;
        *ret = f;
        return CF_OK;
}

static void p_close(void *st, void *h)
{
        struct posix_file *f = h;

        (void)st;
        if (f == NULL) {
                return;
        }
        close(f->fd);
        free(f);
}

static cf_status p_pread(void *st, void *h, void *buf, size_t size, uint64_t off, size_t *ret_n)
{
        struct posix_file *f = h;
        uint8_t *b = buf;
        size_t done = 0;

        (void)st;
        ENSURE(off <= INT64_MAX - SHIELD_IO_MAX && size <= SHIELD_IO_MAX, CF_E_LIMIT);
        while (done < size) {
                ssize_t n = pread(f->fd, b + done, size - done, (off_t)(off + done));

                if (n < 0 && errno == EINTR) {
                        continue;
                }
                TRY_ERRNO(n);
                if (n == 0) {
                        break;
                }
                done += (size_t)n;
        }
        *ret_n = done;
        return CF_OK;
}

static cf_status p_pwrite(void *st, void *h, const void *buf, size_t size, uint64_t off)
{
        const struct shield_posix *p = st;
        struct posix_file *f = h;
        const uint8_t *b = buf;
        size_t done = 0;

        ENSURE(!p->rdonly, CF_E_PERMISSION);
        ENSURE(off <= INT64_MAX - SHIELD_IO_MAX && size <= SHIELD_IO_MAX, CF_E_LIMIT);
        while (done < size) {
                ssize_t n = pwrite(f->fd, b + done, size - done, (off_t)(off + done));

                if (n < 0 && errno == EINTR) {
                        continue;
                }
                TRY_ERRNO(n);
                ENSURE(n > 0, CF_E_IO);
                done += (size_t)n;
        }
        return CF_OK;
}

static cf_status p_size(void *st, void *h, uint64_t *ret)
{
        struct posix_file *f = h;
        struct stat sb;

        (void)st;
        TRY_ERRNO(fstat(f->fd, &sb));
        ENSURE(sb.st_size >= 0, CF_E_IO);
        *ret = (uint64_t)sb.st_size;
        return CF_OK;
}

static cf_status p_truncate(void *st, void *h, uint64_t size)
{
        const struct shield_posix *p = st;
        struct posix_file *f = h;

        ENSURE(!p->rdonly, CF_E_PERMISSION);
        ENSURE(size <= INT64_MAX, CF_E_LIMIT);
        TRY_ERRNO(ftruncate(f->fd, (off_t)size));
        return CF_OK;
}

static cf_status p_fsync(void *st, void *h)
{
        struct posix_file *f = h;

        (void)st;
        TRY_ERRNO(fdatasync(f->fd));
        return CF_OK;
}

static cf_status p_rename(void *st, const char *from, const char *to)
{
        struct shield_posix *p = st;

        ENSURE(!p->rdonly, CF_E_PERMISSION);
        TRY(check_name(from));
        TRY(check_name(to));
        TRY_ERRNO(renameat(p->dirfd, from, p->dirfd, to));
        return CF_OK;
}

static cf_status p_unlink(void *st, const char *name)
{
        struct shield_posix *p = st;

        ENSURE(!p->rdonly, CF_E_PERMISSION);
        TRY(check_name(name));
        TRY_ERRNO(unlinkat(p->dirfd, name, 0));
        return CF_OK;
}

static cf_status p_sync_dir(void *st)
{
        struct shield_posix *p = st;

        TRY_ERRNO(fsync(p->dirfd));
        return CF_OK;
}

static cf_status p_list(void *st, shield_name_fn fn, void *ctx)
{
        struct shield_posix *p = st;
        int fd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        struct dirent *e;
        cf_status s = CF_OK;

        TRY_ERRNO(fd);
        d = fdopendir(fd);
        if (d == NULL) {
                int err = errno;

                close(fd);
                return cf_fail_errno(err);
        }
        while (cf_ok(s) && (e = readdir(d)) != NULL) {
                struct stat sb;

                if (!cf_ok(check_name(e->d_name))) {
                        continue; /* not a name we could have made */
                }
                if (fstatat(p->dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                    !S_ISREG(sb.st_mode)) {
                        continue;
                }
                s = fn(ctx, e->d_name);
        }
        closedir(d);
        return s;
}

const struct shield_storage_ops shield_posix_ops = {
    .open = p_open,
    .close = p_close,
    .pread = p_pread,
    .pwrite = p_pwrite,
    .size = p_size,
    .truncate = p_truncate,
    .fsync = p_fsync,
    .rename = p_rename,
    .unlink = p_unlink,
    .sync_dir = p_sync_dir,
    .list = p_list,
};

CF_FN shield_posix_open(const char *dir, bool create, struct shield_posix **ret)
{
        struct shield_posix *p;
        int fd;

        ENSURE(dir != NULL && dir[0] != 0, CF_E_INVALID_ARG);
        if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
                return cf_fail_errno(errno);
        }
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        TRY_ERRNO(fd);
        p = malloc(sizeof(*p));
        if (p == NULL) {
                close(fd);
                return cf_fail(CF_E_NOMEM);
        }
        p->dirfd = fd;
        p->rdonly = false;
        *ret = p;
        return CF_OK;
}

CF_FN shield_posix_open_rdonly(const char *dir, struct shield_posix **ret)
{
        struct shield_posix *p;

        TRY(shield_posix_open(dir, false, &p));
        p->rdonly = true;
        *ret = p;
        return CF_OK;
}

void shield_posix_close(struct shield_posix *st)
{
        if (st == NULL) {
                return;
        }
        close(st->dirfd);
        free(st);
}
