/* Sealing-key providers (see sealing.h). Failures fill the caller's err with one line that
 * names the path; nothing here logs above debug. */
#include "cas/sealing.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cursor.h"
#include "base/io.h"
#include "base/mem.h"
#include "crypto/crypto.h"

/* The ABI as the kernel lays it out (x86-64): if one of these fails, the structs above no
 * longer match include/uapi/linux/sev-guest.h. */
_Static_assert(sizeof(struct cas_snp_derived_key_req) == 32, "snp_derived_key_req size");
_Static_assert(offsetof(struct cas_snp_derived_key_req, guest_field_select) == 8, "field select");
_Static_assert(offsetof(struct cas_snp_derived_key_req, vmpl) == 16, "vmpl");
_Static_assert(offsetof(struct cas_snp_derived_key_req, tcb_version) == 24, "tcb_version");
_Static_assert(sizeof(struct cas_snp_derived_key_resp) == 64, "snp_derived_key_resp size");
_Static_assert(sizeof(struct cas_snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl size");
_Static_assert(offsetof(struct cas_snp_guest_request_ioctl, req_data) == 8, "req_data");
_Static_assert(offsetof(struct cas_snp_guest_request_ioctl, resp_data) == 16, "resp_data");
_Static_assert(offsetof(struct cas_snp_guest_request_ioctl, exitinfo2) == 24, "exitinfo2");
_Static_assert(CAS_SNP_GET_DERIVED_KEY == _IOWR('S', 0x1, struct cas_snp_guest_request_ioctl),
               "SNP_GET_DERIVED_KEY number");

#define SNP_MSG_VERSION  1
#define SNP_IOCTL_TRIES  8
#define SIM_KEY_FILE_MAX 64
#define PATH_MAX_SIZE    1024

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t err_size,
                                                          const char *fmt, ...)
{
        va_list ap;

        if (err == NULL || err_size == 0) {
                return;
        }
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
}

static int real_ioctl(int fd, unsigned long req, void *arg)
{
        return ioctl(fd, req, arg);
}

static bool all_zero(const uint8_t *p, size_t n)
{
        uint8_t acc = 0;

        for (size_t i = 0; i < n; i++) {
                acc |= p[i];
        }
        return acc == 0;
}

/* sim: the key file is created on first use with a fresh random key, then read back, so two
 * processes racing on first start end up with the same key (the last rename wins for both). */
static cf_status sim_key(const char *path, uint8_t key[static CAS_SEALING_KEY_SIZE], char *err,
                         size_t err_size)
{
        struct cf_buf b;
        struct stat st;
        cf_status s = CF_OK;

        if (path == NULL || path[0] == '\0') {
                set_err(err, err_size, "the sim sealing provider needs a key file path");
                return cf_fail(CF_E_INVALID_ARG);
        }
        if (stat(path, &st) != 0) {
                uint8_t fresh[CAS_SEALING_KEY_SIZE];
                CF_WIPE_ON_EXIT(fresh);

                if (errno != ENOENT) {
                        int e = errno;
                        set_err(err, err_size, "cannot stat the sim sealing key '%s': %s", path,
                                strerror(e));
                        return cf_fail_errno(e);
                }
                TRY(cf_random(fresh, sizeof(fresh)));
                s = cf_write_file_atomic(path, fresh, sizeof(fresh), 0600);
                if (!cf_ok(s)) {
                        set_err(err, err_size, "cannot create the sim sealing key '%s': %s", path,
                                cf_strerror(s));
                        return s;
                }
        }
        cf_buf_init(&b, SIM_KEY_FILE_MAX, true);
        s = cf_read_file(path, SIM_KEY_FILE_MAX, &b);
        if (!cf_ok(s)) {
                set_err(err, err_size, "cannot read the sim sealing key '%s': %s", path,
                        cf_strerror(s));
        } else if (b.size != CAS_SEALING_KEY_SIZE) {
                set_err(err, err_size, "the sim sealing key '%s' has %zu bytes, expected %d", path,
                        b.size, CAS_SEALING_KEY_SIZE);
                s = cf_fail(CF_E_MALFORMED);
        } else {
                memcpy(key, b.ptr, CAS_SEALING_KEY_SIZE);
        }
        cf_buf_done(&b);
        return s;
}

/* Reads the firmware's MSG_KEY_RSP through a cursor: status, reserved, key. */
static cf_status snp_parse_resp(const struct cas_snp_derived_key_resp *resp,
                                uint8_t key[static CAS_SEALING_KEY_SIZE], uint32_t *ret_status)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_make(resp->data, sizeof(resp->data)));
        uint32_t status;

        TRY(cf_cursor_u32le(&c, &status));
        TRY(cf_cursor_skip(&c, CAS_SNP_KEY_OFFSET - 4));
        *ret_status = status;
        ENSURE(status == 0, CF_E_IO);
        TRY(cf_cursor_copy(&c, key, CAS_SEALING_KEY_SIZE));
        return cf_cursor_expect_end(&c);
}

static cf_status snp_key(const char *path, const struct cas_sealing_ops *ops,
                         uint8_t key[static CAS_SEALING_KEY_SIZE], char *err, size_t err_size)
{
        int (*do_ioctl)(int, unsigned long, void *) = real_ioctl;
        struct cas_snp_derived_key_req req = {
            .root_key_select = CAS_SNP_ROOT_KEY_VCEK,
            .guest_field_select = CAS_SNP_KEY_FIELDS,
            .vmpl = 0,
        };
        struct cas_snp_derived_key_resp resp = {{0}};
        CF_WIPE_ON_EXIT(resp);
        struct cas_snp_guest_request_ioctl io;
        uint8_t out[CAS_SEALING_KEY_SIZE];
        CF_WIPE_ON_EXIT(out);
        uint32_t status = 0;
        int fd, rc, e = 0;
        cf_status s;

        if (path == NULL) {
                path = CAS_SEALING_SNP_DEVICE;
        }
        if (ops != NULL && ops->ioctl != NULL) {
                do_ioctl = ops->ioctl;
        }
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                e = errno;
                set_err(err, err_size,
                        "cannot open the SEV-SNP guest device '%s': %s (is this an SNP guest with "
                        "the sev-guest driver loaded?)",
                        path, strerror(e));
                return cf_fail_errno(e);
        }
        /* The driver retries a busy host itself; EINTR and EAGAIN are retried here, bounded. */
        for (int tries = 0; tries < SNP_IOCTL_TRIES; tries++) {
                io = (struct cas_snp_guest_request_ioctl){
                    .msg_version = SNP_MSG_VERSION,
                    .req_data = (uint64_t)(uintptr_t)&req,
                    .resp_data = (uint64_t)(uintptr_t)&resp,
                };
                rc = do_ioctl(fd, CAS_SNP_GET_DERIVED_KEY, &io);
                e = rc < 0 ? errno : 0;
                if (rc >= 0 || (e != EINTR && e != EAGAIN)) {
                        break;
                }
        }
        close(fd);
        if (rc < 0) {
                set_err(err, err_size,
                        "SNP_GET_DERIVED_KEY on '%s' failed: %s (firmware error 0x%x, VMM error "
                        "0x%x)",
                        path, strerror(e), (unsigned)(io.exitinfo2 & 0xffffffffu),
                        (unsigned)(io.exitinfo2 >> 32));
                return cf_fail(e == EPERM || e == EACCES ? CF_E_PERMISSION : CF_E_IO);
        }
        s = snp_parse_resp(&resp, out, &status);
        if (!cf_ok(s)) {
                set_err(err, err_size,
                        "SNP_GET_DERIVED_KEY on '%s': the firmware answered status 0x%x", path,
                        status);
                return s;
        }
        if (all_zero(out, sizeof(out))) {
                /* A driver that returned success without filling the response. */
                set_err(err, err_size, "SNP_GET_DERIVED_KEY on '%s' returned an all-zero key",
                        path);
                return cf_fail(CF_E_IO);
        }
        memcpy(key, out, CAS_SEALING_KEY_SIZE);
        return CF_OK;
}

static cf_status sgx_key(const char *dir, uint8_t key[static CAS_SEALING_KEY_SIZE], char *err,
                         size_t err_size)
{
        char path[PATH_MAX_SIZE];
        struct cf_buf b;
        cf_status s;
        int n;

        if (dir == NULL) {
                dir = CAS_SEALING_SGX_KEYS_DIR;
        }
        n = snprintf(path, sizeof(path), "%s/%s", dir, CAS_SEALING_SGX_KEY_NAME);
        if (n < 0 || (size_t)n >= sizeof(path)) {
                set_err(err, err_size, "the SGX keys directory path is too long");
                return cf_fail(CF_E_LIMIT);
        }
        cf_buf_init(&b, SIM_KEY_FILE_MAX, true);
        s = cf_read_file(path, SIM_KEY_FILE_MAX, &b);
        if (!cf_ok(s)) {
                set_err(err, err_size,
                        "cannot read the SGX sealing key '%s': %s (is cofferd running in an SGX "
                        "enclave under a LibOS with /dev/attestation?)",
                        path, cf_strerror(s));
        } else if (b.size != CAS_SEALING_SGX_KEY_SIZE) {
                set_err(err, err_size, "the SGX sealing key '%s' has %zu bytes, expected %d", path,
                        b.size, CAS_SEALING_SGX_KEY_SIZE);
                s = cf_fail(CF_E_MALFORMED);
        } else {
                /* Expanded rather than used as is: 16 bytes in, a 32-byte AES-256 key out,
                 * and the info string keeps this use apart from any other of the seal key. */
                s = cf_hkdf_sha256(cf_buf_slice(&b), cf_slice_make("", 0),
                                   cf_slice_str(CAS_SEALING_HKDF_INFO), key, CAS_SEALING_KEY_SIZE);
                if (!cf_ok(s)) {
                        set_err(err, err_size, "cannot expand the SGX sealing key: %s",
                                cf_strerror(s));
                }
        }
        cf_buf_done(&b);
        return s;
}

cf_status cas_sealing_key(enum cas_sealing_kind kind, const char *path,
                          const struct cas_sealing_ops *ops,
                          uint8_t key[static CAS_SEALING_KEY_SIZE], char *err, size_t err_size)
{
        uint8_t tmp[CAS_SEALING_KEY_SIZE];
        CF_WIPE_ON_EXIT(tmp);
        cf_status s;

        if (err != NULL && err_size > 0) {
                err[0] = '\0';
        }
        switch (kind) {
        case CAS_SEALING_SIM:
                s = sim_key(path, tmp, err, err_size);
                break;
        case CAS_SEALING_SNP:
                s = snp_key(path, ops, tmp, err, err_size);
                break;
        case CAS_SEALING_SGX:
                s = sgx_key(path, tmp, err, err_size);
                break;
        default:
                set_err(err, err_size, "unknown sealing provider %d", (int)kind);
                return cf_fail(CF_E_INVALID_ARG);
        }
        TRY(s);
        memcpy(key, tmp, CAS_SEALING_KEY_SIZE);
        return CF_OK;
}

cf_status cas_sealing_kind_parse(const char *name, enum cas_sealing_kind *ret)
{
        static const enum cas_sealing_kind kinds[] = {CAS_SEALING_SIM, CAS_SEALING_SNP,
                                                      CAS_SEALING_SGX};

        ENSURE(name != NULL, CF_E_INVALID_ARG);
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                if (strcmp(name, cas_sealing_kind_name(kinds[i])) == 0) {
                        *ret = kinds[i];
                        return CF_OK;
                }
        }
        return cf_fail(CF_E_INVALID_ARG);
}

const char *cas_sealing_kind_name(enum cas_sealing_kind kind)
{
        switch (kind) {
        case CAS_SEALING_SIM:
                return "sim";
        case CAS_SEALING_SNP:
                return "snp";
        case CAS_SEALING_SGX:
                return "sgx";
        default:
                return "unknown";
        }
}
