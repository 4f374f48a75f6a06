/* Unit tests of src/cas/sealing.c against fakes that behave like the real interfaces: an
 * SEV guest "driver" (injected ioctl) that checks the request layout and derives its answer
 * from the request and the guest's identity, a LibOS keys directory, and the sim key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/mem.h"
#include "cas/sealing.h"
#include "crypto/crypto.h"

static char g_dir[256];

static void rm_rf(const char *dir)
{
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
                fprintf(stderr, "cannot remove %s\n", dir);
        }
}

static int setup(void **state)
{
        (void)state;
        if (!cf_ok(cf_crypto_init())) {
                return -1;
        }
        snprintf(g_dir, sizeof(g_dir), "/tmp/coffer-test-sealing-XXXXXX");
        return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        rm_rf(g_dir);
        return 0;
}

static void path_of(const char *name, char *out, size_t out_size)
{
        int n = snprintf(out, out_size, "%s/%s", g_dir, name);
        assert_true(n > 0 && (size_t)n < out_size);
}

static void write_bytes(const char *path, const void *data, size_t size)
{
        assert_int_equal(cf_write_file_atomic(path, data, size, 0600).code, 0);
}

/* --- sim ------------------------------------------------------------------------------ */

static void test_sim_creates_then_reuses(void **state)
{
        char path[512], err[256];
        uint8_t k1[32], k2[32];
        struct stat st;

        (void)state;
        path_of("sealing.key", path, sizeof(path));
        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, path, NULL, k1, err, sizeof(err)).code,
                         0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, 32);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, path, NULL, k2, err, sizeof(err)).code,
                         0);
        assert_memory_equal(k1, k2, 32);

        /* Another file, another key. */
        char other[512];
        path_of("other.key", other, sizeof(other));
        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, other, NULL, k2, err, sizeof(err)).code,
                         0);
        assert_memory_not_equal(k1, k2, 32);
}

static void test_sim_refuses_bad_files(void **state)
{
        char path[512], err[256];
        uint8_t key[32], sentinel[32];
        uint8_t junk[33] = {1};

        (void)state;
        memset(sentinel, 0xee, sizeof(sentinel));
        memcpy(key, sentinel, sizeof(key));
        path_of("short.key", path, sizeof(path));
        write_bytes(path, junk, 31);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, path, NULL, key, err, sizeof(err)).code,
                         CF_E_MALFORMED);
        assert_non_null(strstr(err, path));
        assert_memory_equal(key, sentinel, 32); /* written only on success */
        write_bytes(path, junk, 33);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, path, NULL, key, err, sizeof(err)).code,
                         CF_E_MALFORMED);

        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, NULL, NULL, key, err, sizeof(err)).code,
                         CF_E_INVALID_ARG);
        assert_true(strlen(err) > 0);
        /* A directory that does not exist: the create fails and names the path. */
        assert_int_not_equal(cas_sealing_key(CAS_SEALING_SIM, "/nonexistent-coffer/dir/k", NULL,
                                             key, err, sizeof(err))
                                 .code,
                             0);
        assert_non_null(strstr(err, "/nonexistent-coffer/dir/k"));
        /* err may be absent. */
        assert_int_equal(cas_sealing_key(CAS_SEALING_SIM, NULL, NULL, key, NULL, 0).code,
                         CF_E_INVALID_ARG);
        assert_int_equal(
            cas_sealing_key((enum cas_sealing_kind)9, path, NULL, key, err, sizeof(err)).code,
            CF_E_INVALID_ARG);
        assert_memory_equal(key, sentinel, 32);
}

/* --- snp: a fake driver ---------------------------------------------------------------- */

/* What the fake "firmware" knows about the guest that asks. */
static struct {
        uint8_t chip_secret[32];
        uint8_t measurement[48];
        uint64_t policy;
        int calls;
        int fail_errno;     /* when set, the ioctl fails with this errno */
        uint64_t exitinfo2; /* and reports these error codes */
        uint32_t status;    /* MSG_KEY_RSP status */
        int eintr_first;    /* fail with EINTR this many times first */
        int leave_empty;    /* succeed without writing the response */
} g_fw;

/* Like the SEV firmware: the key is a function of the chip secret and exactly the fields
 * the request selects. Any unexpected layout fails the test. */
static int fake_ioctl(int fd, unsigned long req, void *arg)
{
        struct cas_snp_guest_request_ioctl *io = arg;
        const struct cas_snp_derived_key_req *r;
        struct cas_snp_derived_key_resp *resp;
        uint8_t h[32];

        assert_true(fd >= 0);
        g_fw.calls++;
        assert_int_equal(req, 0xc0205301ul); /* _IOWR('S', 1, 32-byte struct) */
        assert_int_equal(io->msg_version, 1);
        assert_true(io->req_data != 0 && io->resp_data != 0);
        if (g_fw.eintr_first > 0) {
                g_fw.eintr_first--;
                errno = EINTR;
                return -1;
        }
        if (g_fw.fail_errno != 0) {
                io->exitinfo2 = g_fw.exitinfo2;
                errno = g_fw.fail_errno;
                return -1;
        }
        r = (const struct cas_snp_derived_key_req *)(uintptr_t)io->req_data;
        resp = (struct cas_snp_derived_key_resp *)(uintptr_t)io->resp_data;
        /* Request layout: VCEK, measurement and policy mixed in, VMPL 0, reserved zero. */
        assert_int_equal(r->root_key_select, 0);
        assert_int_equal(r->rsvd, 0);
        assert_int_equal(r->guest_field_select, (1u << 0) | (1u << 3));
        assert_int_equal(r->vmpl, 0);
        assert_int_equal(r->guest_svn, 0);
        assert_int_equal(r->tcb_version, 0);
        if (g_fw.leave_empty) {
                return 0;
        }

        struct cf_slice parts[4] = {
            cf_slice_make(g_fw.chip_secret, 32),
            cf_slice_make(r, sizeof(*r)),
            cf_slice_make((r->guest_field_select & (1u << 3)) ? g_fw.measurement : h,
                          (r->guest_field_select & (1u << 3)) ? 48 : 0),
            cf_slice_make(&g_fw.policy, (r->guest_field_select & 1u) ? 8 : 0),
        };
        assert_int_equal(cf_sha256(parts, 4, h).code, 0);
        memset(resp->data, 0, sizeof(resp->data));
        resp->data[0] = (uint8_t)g_fw.status;
        resp->data[1] = (uint8_t)(g_fw.status >> 8);
        resp->data[2] = (uint8_t)(g_fw.status >> 16);
        resp->data[3] = (uint8_t)(g_fw.status >> 24);
        if (g_fw.status == 0) {
                memcpy(resp->data + 32, h, 32);
        }
        return 0;
}

static const struct cas_sealing_ops fake_ops = {fake_ioctl};

static void fw_reset(void)
{
        memset(&g_fw, 0, sizeof(g_fw));
        memset(g_fw.chip_secret, 0xc1, sizeof(g_fw.chip_secret));
        memset(g_fw.measurement, 0x4d, sizeof(g_fw.measurement));
        g_fw.policy = 0x30000;
}

static void fake_device(char *path, size_t size)
{
        path_of("sev-guest", path, size);
        write_bytes(path, "", 0);
}

static void test_snp_key_bound_to_measurement_policy_chip(void **state)
{
        char dev[512], err[256];
        uint8_t k1[32], k2[32];

        (void)state;
        fw_reset();
        fake_device(dev, sizeof(dev));
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, k1, err, sizeof(err)).code, 0);
        assert_int_equal(g_fw.calls, 1);
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, k2, err, sizeof(err)).code, 0);
        assert_memory_equal(k1, k2, 32); /* stable on the same guest */

        g_fw.measurement[0] ^= 1; /* another cofferd build */
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, k2, err, sizeof(err)).code, 0);
        assert_memory_not_equal(k1, k2, 32);
        g_fw.measurement[0] ^= 1;

        g_fw.policy |= 1u << 19; /* debug allowed: a weaker policy */
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, k2, err, sizeof(err)).code, 0);
        assert_memory_not_equal(k1, k2, 32);
        g_fw.policy &= ~(1ull << 19);

        g_fw.chip_secret[0] ^= 1; /* another machine */
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, k2, err, sizeof(err)).code, 0);
        assert_memory_not_equal(k1, k2, 32);
}

static void test_snp_errors(void **state)
{
        char dev[512], err[256];
        uint8_t key[32], sentinel[32];

        (void)state;
        memset(sentinel, 0xee, sizeof(sentinel));
        memcpy(key, sentinel, sizeof(key));
        fw_reset();
        fake_device(dev, sizeof(dev));

        /* Missing device: a clear error naming the path; the ioctl is never reached. */
        char missing[512];
        path_of("no-such-device", missing, sizeof(missing));
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, missing, &fake_ops, key, err, sizeof(err)).code,
            CF_E_NOT_FOUND);
        assert_non_null(strstr(err, missing));
        assert_int_equal(g_fw.calls, 0);

        /* Firmware refuses (e.g. an invalid VMPL): errno from the driver, both codes shown. */
        g_fw.fail_errno = EIO;
        g_fw.exitinfo2 = 0x16;
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, key, err, sizeof(err)).code, CF_E_IO);
        assert_non_null(strstr(err, "firmware error 0x16"));
        assert_non_null(strstr(err, dev));
        g_fw.fail_errno = 0;

        /* The request succeeded but the firmware's status is not 0. */
        g_fw.status = 0x27;
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, key, err, sizeof(err)).code, CF_E_IO);
        assert_non_null(strstr(err, "status 0x27"));
        g_fw.status = 0;

        /* A "success" that left the response empty. */
        g_fw.leave_empty = 1;
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, key, err, sizeof(err)).code, CF_E_IO);
        assert_non_null(strstr(err, "all-zero"));
        g_fw.leave_empty = 0;
        assert_memory_equal(key, sentinel, 32);

        /* Interrupted calls are retried. */
        g_fw.calls = 0;
        g_fw.eintr_first = 2;
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SNP, dev, &fake_ops, key, err, sizeof(err)).code, 0);
        assert_int_equal(g_fw.calls, 3);
        assert_memory_not_equal(key, sentinel, 32);
}

/* The default device path when none is given; this test host is not an SNP guest (if it
 * were, the real driver would answer, which is also fine). */
static void test_snp_default_device(void **state)
{
        char err[256];
        uint8_t key[32];
        struct stat st;

        (void)state;
        if (stat(CAS_SEALING_SNP_DEVICE, &st) == 0) {
                skip();
        }
        assert_int_not_equal(
            cas_sealing_key(CAS_SEALING_SNP, NULL, NULL, key, err, sizeof(err)).code, 0);
        assert_non_null(strstr(err, "/dev/sev-guest"));
}

/* --- sgx: a fake LibOS keys directory --------------------------------------------------- */

static void test_sgx_key_from_libos_dir(void **state)
{
        char keys[512], file[600], err[256];
        uint8_t raw[16], key[32], want[32], other[32];

        (void)state;
        path_of("keys", keys, sizeof(keys));
        assert_int_equal(mkdir(keys, 0700), 0);
        snprintf(file, sizeof(file), "%s/_sgx_mrenclave", keys);
        for (unsigned i = 0; i < 16; i++) {
                raw[i] = (uint8_t)(0xa0 + i);
        }
        write_bytes(file, raw, 16);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SGX, keys, NULL, key, err, sizeof(err)).code,
                         0);
        /* HKDF-SHA256(ikm = the 16-byte seal key, no salt, info "coffer-sealing-v1"). */
        assert_int_equal(cf_hkdf_sha256(cf_slice_make(raw, 16), cf_slice_make("", 0),
                                        cf_slice_str("coffer-sealing-v1"), want, 32)
                             .code,
                         0);
        assert_memory_equal(key, want, 32);
        /* The same value computed independently (Python hmac, RFC 5869 with an empty salt). */
        char hex[65];
        cf_hex_encode(key, 32, hex, sizeof(hex));
        assert_string_equal(hex,
                            "94a2b36ae4d2988f156544595c8895c263b67eb3db61890b11cc488e17d523e2");

        raw[15] ^= 1; /* another enclave measurement: another seal key */
        write_bytes(file, raw, 16);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SGX, keys, NULL, other, err, sizeof(err)).code,
                         0);
        assert_memory_not_equal(other, key, 32);

        memset(other, 0xee, sizeof(other));
        memcpy(want, other, 32);
        write_bytes(file, raw, 15);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SGX, keys, NULL, other, err, sizeof(err)).code,
                         CF_E_MALFORMED);
        assert_non_null(strstr(err, file));
        write_bytes(file, "0123456789abcdef0", 17);
        assert_int_equal(cas_sealing_key(CAS_SEALING_SGX, keys, NULL, other, err, sizeof(err)).code,
                         CF_E_MALFORMED);
        assert_memory_equal(other, want, 32);

        char missing[512];
        path_of("no-keys", missing, sizeof(missing));
        assert_int_equal(
            cas_sealing_key(CAS_SEALING_SGX, missing, NULL, other, err, sizeof(err)).code,
            CF_E_NOT_FOUND);
        assert_non_null(strstr(err, missing));
        assert_non_null(strstr(err, "_sgx_mrenclave"));
}

static void test_kind_names(void **state)
{
        enum cas_sealing_kind k;

        (void)state;
        assert_int_equal(cas_sealing_kind_parse("sim", &k).code, 0);
        assert_int_equal(k, CAS_SEALING_SIM);
        assert_int_equal(cas_sealing_kind_parse("snp", &k).code, 0);
        assert_int_equal(k, CAS_SEALING_SNP);
        assert_int_equal(cas_sealing_kind_parse("sgx", &k).code, 0);
        assert_int_equal(k, CAS_SEALING_SGX);
        assert_int_equal(cas_sealing_kind_parse("tdx", &k).code, CF_E_INVALID_ARG);
        assert_int_equal(cas_sealing_kind_parse("SIM", &k).code, CF_E_INVALID_ARG);
        assert_int_equal(cas_sealing_kind_parse("", &k).code, CF_E_INVALID_ARG);
        assert_string_equal(cas_sealing_kind_name(CAS_SEALING_SGX), "sgx");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sim_creates_then_reuses),
            cmocka_unit_test(test_sim_refuses_bad_files),
            cmocka_unit_test(test_snp_key_bound_to_measurement_policy_chip),
            cmocka_unit_test(test_snp_errors),
            cmocka_unit_test(test_snp_default_device),
            cmocka_unit_test(test_sgx_key_from_libos_dir),
            cmocka_unit_test(test_kind_names),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
