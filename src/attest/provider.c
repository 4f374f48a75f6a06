/* Evidence providers: choice of provider, evidence buffers, and the attribute I/O helpers
 * shared by provider_tsm.c and provider_libos.c. */
#include "attest/provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/provider_internal.h"
#include "base/io.h"
#include "base/log.h"

void attest_evidence_init(struct attest_evidence *e)
{
        e->platform = 0;
        cf_buf_init(&e->bytes, PROVIDER_EVIDENCE_MAX, false);
        cf_buf_init(&e->aux, PROVIDER_AUX_MAX, false);
}

void attest_evidence_done(struct attest_evidence *e)
{
        cf_buf_done(&e->bytes);
        cf_buf_done(&e->aux);
        e->platform = 0;
}

cf_status provider_fail(cf_status s, char *err, size_t err_size, const char *fmt, ...)
{
        va_list ap;

        if (err != NULL && err_size > 0) {
                va_start(ap, fmt);
                vsnprintf(err, err_size, fmt, ap);
                va_end(ap);
        }
        return s;
}

cf_status provider_open_at(int dfd, const char *dir, const char *name, int flags, int *ret_fd,
                           char *err, size_t err_size)
{
        int fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

        if (fd < 0) {
                int e = errno;
                return provider_fail(cf_fail_errno(e), err, err_size, "cannot open %s/%s: %s", dir,
                                     name, strerror(e));
        }
        *ret_fd = fd;
        return CF_OK;
}

cf_status provider_read_at(int dfd, const char *dir, const char *name, size_t max, struct cf_buf *b,
                           char *err, size_t err_size)
{
        cf_status s;
        int fd, e;

        TRY(provider_open_at(dfd, dir, name, O_RDONLY, &fd, err, err_size));
        errno = 0;
        s = cf_read_fd(fd, max, b);
        e = errno;
        close(fd);
        if (s.code == CF_E_LIMIT) {
                return provider_fail(s, err, err_size, "%s/%s is larger than %zu bytes", dir, name,
                                     max);
        }
        if (!cf_ok(s)) {
                return provider_fail(s, err, err_size, "cannot read %s/%s: %s", dir, name,
                                     e != 0 ? strerror(e) : cf_strerror(s));
        }
        return CF_OK;
}

cf_status provider_read_text_at(int dfd, const char *dir, const char *name, char *out,
                                size_t out_size, char *err, size_t err_size)
{
        struct cf_buf b;
        struct cf_slice v;
        cf_status s;

        cf_buf_init(&b, PROVIDER_ATTR_MAX, false);
        s = provider_read_at(dfd, dir, name, PROVIDER_ATTR_MAX, &b, err, err_size);
        if (cf_ok(s)) {
                /* Kernel attributes end with one newline; LibOS pseudo-files may not. */
                struct cf_cursor c = cf_cursor_make(cf_buf_slice(&b));
                uint8_t last = 0;

                v = cf_buf_slice(&b);
                if (v.size > 0 && cf_ok(cf_cursor_skip(&c, v.size - 1)) &&
                    cf_ok(cf_cursor_u8(&c, &last)) && last == '\n') {
                        v.size--;
                }
                s = cf_slice_to_cstr(v, out, out_size);
                if (!cf_ok(s)) {
                        s = provider_fail(cf_fail(CF_E_MALFORMED), err, err_size,
                                          "%s/%s does not hold a short line of text", dir, name);
                }
        }
        cf_buf_done(&b);
        return s;
}

cf_status provider_write_at(int dfd, const char *dir, const char *name, const void *data,
                            size_t size, char *err, size_t err_size)
{
        cf_status s;
        int fd, e = 0;

        TRY(provider_open_at(dfd, dir, name, O_WRONLY, &fd, err, err_size));
        errno = 0;
        s = cf_write_all(fd, data, size);
        if (!cf_ok(s)) {
                e = errno;
        }
        if (close(fd) < 0 && cf_ok(s)) {
                e = errno;
                s = cf_fail_errno(e);
        }
        if (!cf_ok(s)) {
                return provider_fail(s, err, err_size, "cannot write %s/%s: %s", dir, name,
                                     e != 0 ? strerror(e) : cf_strerror(s));
        }
        return CF_OK;
}

cf_status provider_open_root(const char *dir, const char *what, const char *hint, int *ret_fd,
                             char *err, size_t err_size)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0) {
                int e = errno;
                if (e == ENOENT) {
                        return provider_fail(cf_fail(CF_E_NOT_FOUND), err, err_size,
                                             "%s not found at %s%s", what, dir, hint);
                }
                return provider_fail(cf_fail_errno(e), err, err_size, "cannot open %s at %s: %s",
                                     what, dir, strerror(e));
        }
        *ret_fd = fd;
        return CF_OK;
}

static bool is_dir(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

cf_status provider_choose(const char *tee, const char *tsm_root, const char *libos_root,
                          struct provider_choice *ret, char *err, size_t err_size)
{
        static const struct {
                const char *name;
                struct provider_choice choice;
        } named[] = {
            {"sim", {PROVIDER_SIM, ATTEST_SIM}},
            {"tdx", {PROVIDER_TSM, ATTEST_TDX}},
            {"snp", {PROVIDER_TSM, ATTEST_SNP}},
            {"sgx", {PROVIDER_LIBOS, ATTEST_SGX}},
        };
        struct stat st;

        if (tee == NULL) {
                return provider_fail(cf_fail(CF_E_INVALID_ARG), err, err_size, "no TEE given");
        }
        for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
                if (strcmp(tee, named[i].name) == 0) {
                        *ret = named[i].choice;
                        return CF_OK;
                }
        }
        if (strcmp(tee, "auto") != 0) {
                char shown[64];
                cf_log_escape(tee, strlen(tee), shown, sizeof(shown));
                return provider_fail(cf_fail(CF_E_INVALID_ARG), err, err_size,
                                     "unknown TEE %s (expected auto, sim, tdx, snp or sgx)", shown);
        }
        if (is_dir(tsm_root ? tsm_root : PROVIDER_TSM_ROOT_DEFAULT)) {
                *ret = (struct provider_choice){PROVIDER_TSM, 0};
        } else if (stat(libos_root ? libos_root : PROVIDER_LIBOS_ROOT_DEFAULT, &st) == 0) {
                *ret = (struct provider_choice){PROVIDER_LIBOS, ATTEST_SGX};
        } else {
                *ret = (struct provider_choice){PROVIDER_SIM, ATTEST_SIM};
        }
        return CF_OK;
}

cf_status provider_get(const struct provider_choice *choice, const char *tsm_root,
                       const char *libos_root,
                       const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                       struct attest_evidence *out, char *err, size_t err_size)
{
        struct attest_evidence ev;
        const char *got, *want;

        switch (choice->kind) {
        case PROVIDER_TSM:
                TRY(provider_tsm_get(tsm_root, report_data, &ev, err, err_size));
                break;
        case PROVIDER_LIBOS:
                TRY(provider_libos_get(libos_root, report_data, &ev, err, err_size));
                break;
        case PROVIDER_SIM:
                return provider_fail(cf_fail(CF_E_INVALID_ARG), err, err_size,
                                     "sim evidence is not made by a hardware provider");
        default:
                return provider_fail(cf_fail(CF_E_INVALID_ARG), err, err_size,
                                     "unknown evidence provider");
        }
        if (choice->platform != 0 && ev.platform != choice->platform) {
                got = attest_platform_name(ev.platform);
                want = attest_platform_name(choice->platform);
                attest_evidence_done(&ev);
                return provider_fail(cf_fail(CF_E_UNSUPPORTED), err, err_size,
                                     "%s evidence was asked for, but configfs-tsm at %s "
                                     "provides %s evidence",
                                     want ? want : "?",
                                     tsm_root ? tsm_root : PROVIDER_TSM_ROOT_DEFAULT,
                                     got ? got : "?");
        }
        *out = ev;
        return CF_OK;
}
