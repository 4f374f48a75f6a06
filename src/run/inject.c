#include "run/inject.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"

/* Maps the current user to itself in a new user namespace, which gives this process the
 * capabilities to mount inside it without being root on the host. */
static cf_status enter_user_namespace(void)
{
        char map[64];
        uid_t uid = geteuid();
        gid_t gid = getegid();
        int fd, n;

        TRY_ERRNO(unshare(CLONE_NEWUSER | CLONE_NEWNS));
        fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                cf_ignore(cf_write_all(fd, "deny", 4)); /* absent on old kernels */
                close(fd);
        }
        n = snprintf(map, sizeof(map), "%u %u 1\n", uid, uid);
        fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
        TRY_ERRNO(fd);
        if (!cf_ok(cf_write_all(fd, map, (size_t)n))) {
                close(fd);
                return cf_fail(CF_E_PERMISSION);
        }
        close(fd);
        n = snprintf(map, sizeof(map), "%u %u 1\n", gid, gid);
        fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC);
        TRY_ERRNO(fd);
        if (!cf_ok(cf_write_all(fd, map, (size_t)n))) {
                close(fd);
                return cf_fail(CF_E_PERMISSION);
        }
        close(fd);
        return CF_OK;
}

static void parent_dir(const char *path, char *out, size_t out_size)
{
        const char *slash = strrchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 0;

        if (n == 0 || n >= out_size) {
                snprintf(out, out_size, "/");
                return;
        }
        memcpy(out, path, n);
        out[n] = '\0';
}

/* The deepest existing directory at or above dir. */
static void existing_ancestor(const char *dir, char *out, size_t out_size)
{
        struct stat st;

        snprintf(out, out_size, "%s", dir);
        while (strcmp(out, "/") != 0 && !(stat(out, &st) == 0 && S_ISDIR(st.st_mode))) {
                char up[PATH_MAX];
                parent_dir(out, up, sizeof(up));
                snprintf(out, out_size, "%s", up);
        }
}

static int by_length(const void *a, const void *b)
{
        size_t la = strlen(*(const char *const *)a), lb = strlen(*(const char *const *)b);

        return la < lb ? -1 : la > lb;
}

/* Mounts a tmpfs-backed overlay on each directory so new files land in RAM. */
static cf_status overlay_dirs(char **dirs, size_t n, char *err, size_t err_size)
{
        int fs, mnt;

        qsort(dirs, n, sizeof(dirs[0]), by_length);
        fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        TRY_ERRNO(fs);
        if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                close(fs);
                snprintf(err, err_size, "cannot create a tmpfs: %s", strerror(errno));
                return cf_fail(CF_E_IO);
        }
        mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        close(fs);
        if (mnt < 0) {
                snprintf(err, err_size, "cannot mount a tmpfs: %s", strerror(errno));
                return cf_fail(CF_E_IO);
        }
        for (size_t i = 0; i < n; i++) {
                char upper[32], work[32], opts[PATH_MAX + 128];
                snprintf(upper, sizeof(upper), "u%zu", i);
                snprintf(work, sizeof(work), "w%zu", i);
                if (mkdirat(mnt, upper, 0755) < 0 || mkdirat(mnt, work, 0700) < 0) {
                        snprintf(err, err_size, "tmpfs: %s", strerror(errno));
                        close(mnt);
                        return cf_fail(CF_E_IO);
                }
                snprintf(opts, sizeof(opts),
                         "lowerdir=%s,upperdir=/proc/self/fd/%d/%s,workdir=/proc/self/fd/%d/%s",
                         dirs[i], mnt, upper, mnt, work);
                if (strchr(dirs[i], ',') != NULL || strchr(dirs[i], ':') != NULL) {
                        snprintf(err, err_size, "cannot overlay '%s': ',' and ':' are not "
                                 "supported in directory names", dirs[i]);
                        close(mnt);
                        return cf_fail(CF_E_UNSUPPORTED);
                }
                if (mount("overlay", dirs[i], "overlay", MS_NOSUID | MS_NODEV, opts) < 0) {
                        snprintf(err, err_size, "cannot mount an overlay on '%s': %s", dirs[i],
                                 strerror(errno));
                        close(mnt);
                        return cf_fail(CF_E_IO);
                }
        }
        /* The overlays keep the tmpfs alive; the descriptor is no longer needed. */
        close(mnt);
        return CF_OK;
}

static cf_status write_file(const struct inject_file *f, char *err, size_t err_size)
{
        char dir[PATH_MAX];
        const char *step = "create its directory";
        int fd, e = 0;
        cf_status s;

        parent_dir(f->path, dir, sizeof(dir));
        s = cf_mkdir_p(dir, 0755);
        e = errno;
        if (cf_ok(s)) {
                step = "create it";
                fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
                e = errno;
                s = fd < 0 ? cf_fail_errno(e) : CF_OK;
                if (cf_ok(s)) {
                        step = "write it";
                        s = cf_write_all(fd, f->content, f->size);
                        e = errno;
                        if (cf_ok(s) && fchmod(fd, (mode_t)f->mode) < 0) {
                                step = "set its mode";
                                e = errno;
                                s = cf_fail_errno(e);
                        }
                        close(fd);
                }
        }
        if (!cf_ok(s)) {
                /* errno is captured at each step: later calls would overwrite it. */
                snprintf(err, err_size, "cannot %s: injected file '%s': %s", step, f->path,
                         strerror(e));
        }
        return s;
}

cf_status inject_files(const struct inject_file *files, size_t n, char *err, size_t err_size)
{
        char *dirs[INJECT_MAX_FILES];
        size_t n_dirs = 0;
        cf_status s = CF_OK;

        if (n == 0) {
                return CF_OK;
        }
        ENSURE(n <= INJECT_MAX_FILES, CF_E_LIMIT);
        if (geteuid() == 0) {
                if (unshare(CLONE_NEWNS) < 0) {
                        snprintf(err, err_size, "cannot create a mount namespace: %s",
                                 strerror(errno));
                        return cf_fail(CF_E_PERMISSION);
                }
        } else if (!cf_ok(enter_user_namespace())) {
                snprintf(err, err_size, "cannot create a user and mount namespace (%s): injected "
                         "files need root or unprivileged user namespaces", strerror(errno));
                return cf_fail(CF_E_PERMISSION);
        }
        /* Nothing mounted from here on propagates back to the host. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                snprintf(err, err_size, "cannot make mounts private: %s", strerror(errno));
                return cf_fail(CF_E_PERMISSION);
        }
        for (size_t i = 0; i < n; i++) {
                char d[PATH_MAX], a[PATH_MAX];
                bool seen = false;

                parent_dir(files[i].path, d, sizeof(d));
                existing_ancestor(d, a, sizeof(a));
                if (strcmp(a, "/") == 0) {
                        snprintf(err, err_size, "cannot inject '%s': its top-level directory "
                                 "does not exist (create it on the host first)", files[i].path);
                        s = cf_fail(CF_E_UNSUPPORTED);
                        break;
                }
                for (size_t j = 0; j < n_dirs; j++) {
                        seen = seen || strcmp(dirs[j], a) == 0;
                }
                if (!seen && (dirs[n_dirs] = strdup(a)) != NULL) {
                        n_dirs++;
                }
        }
        if (cf_ok(s)) {
                s = overlay_dirs(dirs, n_dirs, err, err_size);
        }
        for (size_t i = 0; cf_ok(s) && i < n; i++) {
                s = write_file(&files[i], err, err_size);
        }
        for (size_t j = 0; j < n_dirs; j++) {
                free(dirs[j]);
        }
        return s;
}
