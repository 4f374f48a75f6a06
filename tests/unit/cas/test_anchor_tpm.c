/* Unit tests of the tpm freshness anchor (src/cas/anchor_tpm.c and its part of anchor.c):
 * the sealed record format (round trip, truncation at every offset, every bit flipped,
 * unknown version, wrong key), the start-up protocol as a pure decision, the --anchor spec,
 * and, when swtpm is installed, the protocol against a real TPM 2.0 simulator: first use,
 * batched writes, an interrupted write-ahead completed at start, a restored older record
 * refused, and NV indices with foreign attributes refused. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "base/io.h"
#include "base/mem.h"
#include "cas/anchor.h"
#include "crypto/crypto.h"

extern char **environ;

static const char owner_hex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static void fill_key(uint8_t key[32], uint8_t seed)
{
        for (int i = 0; i < 32; i++) {
                key[i] = (uint8_t)(seed + i);
        }
}

static struct cas_anchor_tpm_record sample(void)
{
        struct cas_anchor_tpm_record r = {
            .nv_index = 0x0180c0ffu,
            .counter = 0x0102030405060708ull,
            .version = 42,
        };
        for (int i = 0; i < 32; i++) {
                r.owner[i] = (uint8_t)(0xa0 + i);
        }
        return r;
}

static void seal_sample(const uint8_t key[32], struct cf_buf *b)
{
        struct cas_anchor_tpm_record r = sample();

        cf_buf_init(b, 4096, false);
        assert_true(cf_ok(cas_anchor_tpm_record_seal(key, &r, b)));
        assert_int_equal(b->size, CAS_ANCHOR_TPM_RECORD_SIZE);
}

/* ---- the record ---- */

static void test_record_round_trip(void **state)
{
        uint8_t key[32];
        struct cas_anchor_tpm_record in = sample(), out;
        struct cf_buf b;

        (void)state;
        fill_key(key, 1);
        seal_sample(key, &b);
        assert_memory_equal(b.ptr, "CFAT\x01", 5);
        memset(&out, 0, sizeof(out));
        assert_true(cf_ok(cas_anchor_tpm_record_open(key, cf_buf_slice(&b), &out)));
        assert_int_equal(out.nv_index, in.nv_index);
        assert_true(out.counter == in.counter);
        assert_true(out.version == in.version);
        assert_memory_equal(out.owner, in.owner, 32);
        cf_buf_done(&b);
}

static void test_record_nonces_differ(void **state)
{
        uint8_t key[32];
        struct cf_buf a, b;

        (void)state;
        fill_key(key, 2);
        seal_sample(key, &a);
        seal_sample(key, &b);
        /* A fresh random nonce per write: two seals of one record differ. */
        assert_memory_not_equal(a.ptr, b.ptr, a.size);
        cf_buf_done(&a);
        cf_buf_done(&b);
}

static void test_record_truncated_at_every_offset(void **state)
{
        uint8_t key[32];
        struct cas_anchor_tpm_record out = sample();
        struct cf_buf b;

        (void)state;
        fill_key(key, 3);
        seal_sample(key, &b);
        for (size_t n = 0; n < b.size; n++) {
                out.version = 777;
                cf_status s = cas_anchor_tpm_record_open(key, cf_slice_make(b.ptr, n), &out);
                assert_int_equal(s.code, CF_E_TRUNCATED);
                assert_true(out.version == 777); /* ret untouched on failure */
        }
        cf_buf_done(&b);
}

static void test_record_trailing_byte(void **state)
{
        uint8_t key[32], zero = 0;
        struct cas_anchor_tpm_record out;
        struct cf_buf b;

        (void)state;
        fill_key(key, 4);
        seal_sample(key, &b);
        assert_true(cf_ok(cf_buf_append(&b, &zero, 1)));
        assert_int_equal(cas_anchor_tpm_record_open(key, cf_buf_slice(&b), &out).code,
                         CF_E_TRAILING);
        cf_buf_done(&b);
}

static void test_record_every_bit_flip(void **state)
{
        uint8_t key[32];
        struct cas_anchor_tpm_record out;
        struct cf_buf b;

        (void)state;
        fill_key(key, 5);
        seal_sample(key, &b);
        for (size_t i = 0; i < b.size; i++) {
                for (int bit = 0; bit < 8; bit++) {
                        int expect =
                            i < 4 ? CF_E_MALFORMED : (i == 4 ? CF_E_VERSION : CF_E_MAC_INVALID);

                        b.ptr[i] ^= (uint8_t)(1u << bit);
                        assert_int_equal(
                            cas_anchor_tpm_record_open(key, cf_buf_slice(&b), &out).code, expect);
                        b.ptr[i] ^= (uint8_t)(1u << bit);
                }
        }
        assert_true(cf_ok(cas_anchor_tpm_record_open(key, cf_buf_slice(&b), &out)));
        cf_buf_done(&b);
}

static void test_record_unknown_version(void **state)
{
        uint8_t key[32];
        struct cas_anchor_tpm_record out;
        struct cf_buf b;

        (void)state;
        fill_key(key, 6);
        seal_sample(key, &b);
        b.ptr[4] = 2;
        assert_int_equal(cas_anchor_tpm_record_open(key, cf_buf_slice(&b), &out).code,
                         CF_E_VERSION);
        b.ptr[4] = 0;
        assert_int_equal(cas_anchor_tpm_record_open(key, cf_buf_slice(&b), &out).code,
                         CF_E_VERSION);
        cf_buf_done(&b);
}

static void test_record_wrong_key(void **state)
{
        uint8_t key[32], other[32];
        struct cas_anchor_tpm_record out;
        struct cf_buf b;

        (void)state;
        fill_key(key, 7);
        fill_key(other, 8);
        seal_sample(key, &b);
        assert_int_equal(cas_anchor_tpm_record_open(other, cf_buf_slice(&b), &out).code,
                         CF_E_MAC_INVALID);
        cf_buf_done(&b);
}

static void test_derived_key(void **state)
{
        uint8_t data_key[32], k1[32], k2[32], k3[32];
        struct cas_anchor_tpm_record out;
        struct cf_buf b;

        (void)state;
        fill_key(data_key, 9);
        assert_true(cf_ok(cas_anchor_tpm_derive_key(data_key, k1)));
        assert_true(cf_ok(cas_anchor_tpm_derive_key(data_key, k2)));
        assert_memory_equal(k1, k2, 32);
        assert_memory_not_equal(k1, data_key, 32);
        data_key[0] ^= 1;
        assert_true(cf_ok(cas_anchor_tpm_derive_key(data_key, k3)));
        assert_memory_not_equal(k1, k3, 32);
        /* A record sealed under the raw data key does not open under the record key. */
        data_key[0] ^= 1;
        seal_sample(data_key, &b);
        assert_int_equal(cas_anchor_tpm_record_open(k1, cf_buf_slice(&b), &out).code,
                         CF_E_MAC_INVALID);
        cf_buf_done(&b);
}

/* ---- the protocol without a TPM ---- */

static cf_status decide_init(bool written, uint64_t t, const struct cas_anchor_tpm_record *r,
                             uint64_t s, bool init, char *err, enum cas_anchor_tpm_action *action)
{
        err[0] = '\0';
        return cas_anchor_tpm_decide(written, t, r, s, init, err, 512, action);
}

static cf_status decide(bool written, uint64_t t, const struct cas_anchor_tpm_record *r, uint64_t s,
                        char *err, enum cas_anchor_tpm_action *action)
{
        return decide_init(written, t, r, s, false, err, action);
}

static void test_decide(void **state)
{
        struct cas_anchor_tpm_record r = sample();
        enum cas_anchor_tpm_action act = 0;
        char err[512];

        (void)state;
        r.counter = 10;
        r.version = 100;

        /* first use: no record, an empty store */
        assert_true(cf_ok(decide(false, 0, NULL, 0, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_FIRST_USE);
        /* crash after the first increment, empty store: adopt the counter */
        act = 0;
        assert_true(cf_ok(decide(true, 7, NULL, 0, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_FIRST_USE);
        /* a non-empty store without a record: refused unless the operator says --anchor-reset */
        act = 0;
        assert_int_equal(decide(false, 0, NULL, 55, err, &act).code, CF_E_REFUSED);
        assert_int_equal(act, 0);
        assert_non_null(strstr(err, "state version 55"));
        assert_non_null(strstr(err, "--anchor-reset"));
        assert_int_equal(decide(true, 7, NULL, 3, err, &act).code, CF_E_ROLLBACK);
        assert_int_equal(act, 0);
        assert_non_null(strstr(err, "rollback detected"));
        assert_non_null(strstr(err, "at 7"));
        assert_true(cf_ok(decide_init(false, 0, NULL, 55, true, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_FIRST_USE);
        act = 0;
        assert_true(cf_ok(decide_init(true, 7, NULL, 3, true, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_FIRST_USE);
        /* --anchor-reset changes nothing once there is a record */
        assert_int_equal(decide_init(true, 11, &r, 100, true, err, &act).code, CF_E_ROLLBACK);
        assert_int_equal(decide_init(true, 10, &r, 99, true, err, &act).code, CF_E_ROLLBACK);
        /* a record but a counter never written: another TPM or a recreated index */
        assert_int_equal(decide(false, 0, &r, 100, err, &act).code, CF_E_CONFLICT);
        assert_non_null(strstr(err, "never been written"));

        /* current record */
        assert_true(cf_ok(decide(true, 10, &r, 100, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_ACCEPT);
        assert_true(cf_ok(decide(true, 10, &r, 105, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_ACCEPT);
        act = 0;
        assert_int_equal(decide(true, 10, &r, 99, err, &act).code, CF_E_ROLLBACK);
        assert_int_equal(act, 0);
        assert_non_null(strstr(err, "state version 99"));
        assert_non_null(strstr(err, "records version 100"));

        /* interrupted write-ahead: record one ahead */
        assert_true(cf_ok(decide(true, 9, &r, 100, err, &act)));
        assert_int_equal(act, CAS_ANCHOR_TPM_COMPLETE);
        assert_int_equal(decide(true, 9, &r, 98, err, &act).code, CF_E_ROLLBACK);

        /* an older record: the data directory is an older copy */
        assert_int_equal(decide(true, 11, &r, 100, err, &act).code, CF_E_ROLLBACK);
        assert_non_null(strstr(err, "counter is at 11"));
        assert_non_null(strstr(err, "record is at counter 10"));
        assert_int_equal(decide(true, UINT64_MAX, &r, UINT64_MAX, err, &act).code, CF_E_ROLLBACK);

        /* a record more than one ahead: not this counter */
        assert_int_equal(decide(true, 8, &r, 100, err, &act).code, CF_E_CONFLICT);
        assert_int_equal(decide(true, 0, &r, 100, err, &act).code, CF_E_CONFLICT);
        r.counter = UINT64_MAX;
        assert_int_equal(decide(true, 0, &r, 100, err, &act).code, CF_E_CONFLICT);
}

/* ---- --anchor spec ---- */

static void test_configure(void **state)
{
        static const char *const bad[] = {
            "tpm+init:swtpm",
            "tpm@0x01800000+init:swtpm",
            "tpm@0x0180000000:swtpm",
            "tpm:",
            "tpm@",
            "tpm@:swtpm:",
            "tpm@0x:swtpm:",
            "tpm@01800000:swtpm:",
            "tpm@0x123456789:swtpm:",
            "tpm@0x1:swtpm:",
            "tpm@0x02000000:swtpm:",
            "tpm@0xg1800000:swtpm:",
            "tpm@0x01800000",
            "tpm@0x01800000:",
            "tpmx:swtpm:",
            "TPM:swtpm:",
        };
        struct cas_anchor a;
        char long_spec[CAS_ANCHOR_TPM_TCTI_MAX + 16];

        (void)state;
        assert_true(
            cf_ok(cas_anchor_configure(&a, "tpm:swtpm:host=127.0.0.1,port=2321", NULL, owner_hex)));
        assert_int_equal(a.kind, CAS_ANCHOR_TPM);
        assert_int_equal(a.nv_index, CAS_ANCHOR_TPM_INDEX_DEFAULT);
        assert_string_equal(a.tcti, "swtpm:host=127.0.0.1,port=2321");
        assert_non_null(strstr(cas_anchor_describe(&a), "0x0180c0ff"));
        cas_anchor_stop(&a);

        assert_true(
            cf_ok(cas_anchor_configure(&a, "tpm@0x01800001:device:/dev/tpmrm0", NULL, owner_hex)));
        assert_int_equal(a.nv_index, 0x01800001u);
        assert_string_equal(a.tcti, "device:/dev/tpmrm0");
        cas_anchor_stop(&a);
        assert_true(cf_ok(cas_anchor_configure(&a, "tpm@0X1BfFfFf:mssim", NULL, owner_hex)));
        assert_int_equal(a.nv_index, 0x01bfffffu);
        cas_anchor_stop(&a);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cf_status s = cas_anchor_configure(&a, bad[i], "/tmp/x", owner_hex);
                if (cf_ok(s)) {
                        fail_msg("accepted bad spec '%s'", bad[i]);
                }
        }
        memset(long_spec, 'a', sizeof(long_spec) - 1);
        long_spec[sizeof(long_spec) - 1] = '\0';
        memcpy(long_spec, "tpm:", 4);
        assert_int_equal(cas_anchor_configure(&a, long_spec, NULL, owner_hex).code, CF_E_LIMIT);
        /* the record names its cofferd by key id, which must be 64 hex digits */
        assert_false(cf_ok(cas_anchor_configure(&a, "tpm:swtpm", NULL, "not-a-key-id")));
        /* the other kinds still parse */
        assert_true(cf_ok(cas_anchor_configure(&a, "none", NULL, owner_hex)));
        assert_int_equal(a.kind, CAS_ANCHOR_NONE);
        assert_true(cf_ok(cas_anchor_configure(&a, "file:/tmp/a.json", NULL, owner_hex)));
        assert_int_equal(a.kind, CAS_ANCHOR_FILE);
        /* set_key is a no-op for them */
        assert_true(cf_ok(cas_anchor_set_key(&a, (const uint8_t *)owner_hex, "/tmp")));
        assert_null(a.record_key);
        assert_string_equal(a.path, "/tmp/a.json");
}

static void test_check_without_key_fails_cleanly(void **state)
{
        struct cas_anchor a;
        char err[512] = "";

        (void)state;
        /* Port 1 has no TPM: the check must fail on the missing key before connecting. */
        assert_true(
            cf_ok(cas_anchor_configure(&a, "tpm:swtpm:host=127.0.0.1,port=1", NULL, owner_hex)));
        assert_int_equal(cas_anchor_check(&a, 5, err, sizeof(err)).code, CF_E_KEY);
        assert_non_null(strstr(err, "data key is missing"));
        assert_null(a.tpm);
        cas_anchor_stop(&a);
}

/* ---- against swtpm ---- */

struct swtpm {
        pid_t pid;
        int port;
        char dir[64];
        char tcti[128];
};

static const char *find_swtpm(void)
{
        static const char *const paths[] = {"/usr/bin/swtpm", "/usr/local/bin/swtpm"};

        for (size_t i = 0; i < 2; i++) {
                if (access(paths[i], X_OK) == 0) {
                        return paths[i];
                }
        }
        return NULL;
}

static bool port_free(int port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool ok;

        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (fd >= 0) {
                close(fd);
        }
        return ok;
}

static bool can_connect(int port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        bool ok;

        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (fd >= 0) {
                close(fd);
        }
        return ok;
}

/* Starts swtpm on two free consecutive ports; false when swtpm is not installed. */
static bool swtpm_start(struct swtpm *t)
{
        const char *bin = find_swtpm();
        char state[128], server[96], ctrl[96];
        struct timespec pause = {0, 20 * 1000000L};

        if (bin == NULL) {
                return false;
        }
        snprintf(t->dir, sizeof(t->dir), "/tmp/coffer-tpm-XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        srandom((unsigned)getpid() ^ (unsigned)time(NULL));
        for (int tries = 0;; tries++) {
                assert_true(tries < 100);
                t->port = 20000 + (int)(random() % 40000);
                if (port_free(t->port) && port_free(t->port + 1)) {
                        break;
                }
        }
        snprintf(state, sizeof(state), "dir=%s", t->dir);
        snprintf(server, sizeof(server), "type=tcp,bindaddr=127.0.0.1,port=%d", t->port);
        snprintf(ctrl, sizeof(ctrl), "type=tcp,bindaddr=127.0.0.1,port=%d", t->port + 1);
        char a_bin[128], a_socket[] = "socket", a_state[] = "--tpmstate", a_tpm2[] = "--tpm2",
                         a_server[] = "--server", a_ctrl[] = "--ctrl", a_flags[] = "--flags",
                         flags[] = "not-need-init,startup-clear";
        char *argv[] = {a_bin,  a_socket, a_state, state,   a_tpm2, a_server,
                        server, a_ctrl,   ctrl,    a_flags, flags,  NULL};

        snprintf(a_bin, sizeof(a_bin), "%s", bin);
        posix_spawn_file_actions_t fa;

        /* swtpm must not hold the test's stdout: a pipe reader would wait for it. */
        assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
        assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
        assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
        assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0), 0);
        assert_int_equal(posix_spawn(&t->pid, bin, &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        for (int i = 0; i < 250 && !can_connect(t->port); i++) {
                nanosleep(&pause, NULL);
        }
        assert_true(can_connect(t->port));
        snprintf(t->tcti, sizeof(t->tcti), "swtpm:host=127.0.0.1,port=%d", t->port);
        return true;
}

static void swtpm_stop(struct swtpm *t)
{
        char cmd[128];

        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        assert_int_equal(system(cmd), 0);
}

static int swtpm_setup(void **state)
{
        struct swtpm *t = calloc(1, sizeof(*t));

        assert_non_null(t);
        if (!swtpm_start(t)) {
                free(t);
                t = NULL;
        }
        *state = t;
        return 0;
}

/* Runs even when the test failed, so that no swtpm outlives the test. */
static int swtpm_teardown(void **state)
{
        struct swtpm *t = *state;

        if (t != NULL) {
                swtpm_stop(t);
                free(t);
        }
        return 0;
}

/* A cas_anchor on swtpm at nv_index with a record in dir. */
static void anchor_open(struct cas_anchor *a, const struct swtpm *t, uint32_t nv_index,
                        const uint8_t data_key[32], bool init)
{
        char spec[200];

        snprintf(spec, sizeof(spec), "tpm@0x%08x:%s", nv_index, t->tcti);
        assert_true(cf_ok(cas_anchor_configure(a, spec, NULL, owner_hex)));
        a->reset = init; /* --anchor-reset, as datadir.c sets it */
        assert_true(cf_ok(cas_anchor_set_key(a, data_key, t->dir)));
}

static cf_status anchor_check_init(const struct swtpm *t, uint32_t nv_index, const uint8_t key[32],
                                   uint64_t version, bool init, char *err, uint64_t *ret_counter)
{
        struct cas_anchor a;
        cf_status s;

        anchor_open(&a, t, nv_index, key, init);
        err[0] = '\0';
        s = cas_anchor_check(&a, version, err, 512);
        if (ret_counter != NULL) {
                *ret_counter = a.counter;
        }
        cas_anchor_stop(&a);
        return s;
}

static cf_status anchor_check(const struct swtpm *t, uint32_t nv_index, const uint8_t key[32],
                              uint64_t version, char *err, uint64_t *ret_counter)
{
        return anchor_check_init(t, nv_index, key, version, false, err, ret_counter);
}

static void read_record(const struct swtpm *t, const uint8_t data_key[32],
                        struct cas_anchor_tpm_record *ret)
{
        char path[128];
        uint8_t key[32];
        struct cf_buf b;

        snprintf(path, sizeof(path), "%s/%s", t->dir, CAS_ANCHOR_TPM_FILE);
        cf_buf_init(&b, 4096, false);
        assert_true(cf_ok(cf_read_file(path, 4096, &b)));
        assert_true(cf_ok(cas_anchor_tpm_derive_key(data_key, key)));
        assert_true(cf_ok(cas_anchor_tpm_record_open(key, cf_buf_slice(&b), ret)));
        cf_buf_done(&b);
}

static void write_record(const struct swtpm *t, const uint8_t data_key[32],
                         const struct cas_anchor_tpm_record *r)
{
        char path[128];
        uint8_t key[32];
        struct cf_buf b;

        snprintf(path, sizeof(path), "%s/%s", t->dir, CAS_ANCHOR_TPM_FILE);
        cf_buf_init(&b, 4096, false);
        assert_true(cf_ok(cas_anchor_tpm_derive_key(data_key, key)));
        assert_true(cf_ok(cas_anchor_tpm_record_seal(key, r, &b)));
        assert_true(cf_ok(cf_write_file_atomic(path, b.ptr, b.size, 0600)));
        cf_buf_done(&b);
}

/* Defines an index with the given attributes through ESAPI directly. */
static void define_index(const struct swtpm *t, uint32_t index, TPMA_NV attrs, uint16_t size)
{
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *esys = NULL;
        ESYS_TR nv = ESYS_TR_NONE;
        TPM2B_AUTH auth = {.size = 0};
        TPM2B_NV_PUBLIC pub = {.nvPublic = {.nvIndex = index,
                                            .nameAlg = TPM2_ALG_SHA256,
                                            .attributes = attrs,
                                            .dataSize = size}};

        assert_int_equal(Tss2_TctiLdr_Initialize(t->tcti, &tcti), TSS2_RC_SUCCESS);
        assert_int_equal(Esys_Initialize(&esys, tcti, NULL), TSS2_RC_SUCCESS);
        assert_int_equal(Esys_NV_DefineSpace(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                             ESYS_TR_NONE, &auth, &pub, &nv),
                         TSS2_RC_SUCCESS);
        Esys_TR_Close(esys, &nv);
        Esys_Finalize(&esys);
        Tss2_TctiLdr_Finalize(&tcti);
}

/* Deletes an index with the owner's (empty) auth, as a local root could. */
static void undefine_index(const struct swtpm *t, uint32_t index)
{
        TSS2_TCTI_CONTEXT *tcti = NULL;
        ESYS_CONTEXT *esys = NULL;
        ESYS_TR nv = ESYS_TR_NONE;

        assert_int_equal(Tss2_TctiLdr_Initialize(t->tcti, &tcti), TSS2_RC_SUCCESS);
        assert_int_equal(Esys_Initialize(&esys, tcti, NULL), TSS2_RC_SUCCESS);
        assert_int_equal(
            Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv),
            TSS2_RC_SUCCESS);
        assert_int_equal(Esys_NV_UndefineSpace(esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD,
                                               ESYS_TR_NONE, ESYS_TR_NONE),
                         TSS2_RC_SUCCESS);
        Esys_Finalize(&esys);
        Tss2_TctiLdr_Finalize(&tcti);
}

static void test_swtpm_protocol(void **state)
{
        const uint32_t idx = 0x01800010u;
        struct swtpm *t = *state;
        struct cas_anchor a;
        struct cas_anchor_tpm_record r, old;
        uint8_t key[32];
        uint64_t c0 = 0, c = 0;
        char err[512] = "";

        if (t == NULL) {
                print_message("SKIP: swtpm is not installed (Debian: swtpm swtpm-tools)\n");
                skip();
        }
        fill_key(key, 20);

        /* first use: defines the index, increments it, writes the record */
        /* a non-empty store without a record needs the operator's --anchor-reset */
        assert_int_equal(anchor_check(t, idx, key, 3, err, NULL).code, CF_E_REFUSED);
        assert_non_null(strstr(err, "--anchor-reset"));
        assert_true(cf_ok(anchor_check_init(t, idx, key, 3, true, err, &c0)));
        read_record(t, key, &r);
        assert_true(r.counter == c0 && r.version == 3 && r.nv_index == idx);
        /* restart on the same state: accepted, nothing written */
        assert_true(cf_ok(anchor_check(t, idx, key, 3, err, &c)));
        assert_true(c == c0);

        /* batched writes through the writer thread */
        anchor_open(&a, t, idx, key, false);
        assert_true(cf_ok(cas_anchor_check(&a, 3, err, sizeof(err))));
        assert_true(cf_ok(cas_anchor_start(&a)));
        for (uint64_t v = 4; v <= 20; v++) {
                cas_anchor_note(&a, v);
        }
        cas_anchor_stop(&a); /* writes the last version */
        read_record(t, key, &r);
        assert_true(r.version == 20);
        assert_true(r.counter > c0 && r.counter <= c0 + 17);
        old = r;

        /* a store newer than its record (a stop within the window): advanced at start */
        assert_true(cf_ok(anchor_check(t, idx, key, 25, err, &c)));
        read_record(t, key, &r);
        assert_true(r.version == 25 && r.counter == old.counter + 1 && c == r.counter);

        /* the older record restored: refused as a rollback, with both values */
        write_record(t, key, &old);
        assert_int_equal(anchor_check(t, idx, key, 25, err, NULL).code, CF_E_ROLLBACK);
        assert_non_null(strstr(err, "rollback detected"));

        /* an interrupted write-ahead: a record one ahead of the counter is completed */
        r.counter += 1;
        r.version = 30;
        write_record(t, key, &r);
        assert_int_equal(anchor_check(t, idx, key, 29, err, NULL).code, CF_E_ROLLBACK);
        assert_true(cf_ok(anchor_check(t, idx, key, 30, err, &c)));
        assert_true(c == r.counter);
        assert_true(cf_ok(anchor_check(t, idx, key, 30, err, &c)));
        assert_true(c == r.counter);

        /* a store older than the record: refused */
        assert_int_equal(anchor_check(t, idx, key, 29, err, NULL).code, CF_E_ROLLBACK);
        assert_non_null(strstr(err, "store is at state version 29"));

        /* a record more than one ahead, and a record of another index: refused */
        r.counter += 2;
        write_record(t, key, &r);
        assert_int_equal(anchor_check(t, idx, key, 30, err, NULL).code, CF_E_CONFLICT);
        r.counter -= 2;
        r.nv_index = idx + 1;
        write_record(t, key, &r);
        assert_int_equal(anchor_check(t, idx, key, 30, err, NULL).code, CF_E_CONFLICT);
        /* a record under another data key: refused */
        assert_int_equal(anchor_check(t, idx + 1, (const uint8_t *)owner_hex, 30, err, NULL).code,
                         CF_E_MAC_INVALID);

        /* the index deleted (and recreated at the next start) under a data directory with a
         * record: refused, the index is left as it is */
        r.nv_index = idx;
        write_record(t, key, &r);
        assert_true(cf_ok(anchor_check(t, idx, key, 30, err, &c)));
        undefine_index(t, idx);
        assert_int_equal(anchor_check(t, idx, key, 30, err, NULL).code, CF_E_CONFLICT);
        assert_non_null(strstr(err, "never been written"));
        define_index(t, idx,
                     (TPMA_NV)(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHREAD |
                         TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA,
                     8);
        assert_int_equal(anchor_check(t, idx, key, 30, err, NULL).code, CF_E_CONFLICT);
        /* a recreated counter does not restart low: the TPM starts it at the highest value a
         * deleted counter had, so an old record still cannot match it */
        {
                char path[128];

                snprintf(path, sizeof(path), "%s/%s", t->dir, CAS_ANCHOR_TPM_FILE);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(anchor_check(t, idx, key, 30, err, NULL).code, CF_E_REFUSED);
        assert_true(cf_ok(anchor_check_init(t, idx, key, 30, true, err, &c)));
        assert_true(c > r.counter);
}

static void test_swtpm_foreign_index_refused(void **state)
{
        const TPMA_NV counter = (TPMA_NV)(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT);
        const TPMA_NV good = counter | TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA;
        const struct {
                TPMA_NV attrs;
                uint16_t size;
        } bad[] = {
            {counter | TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE, 8},       /* DA applies */
            {good | TPMA_NV_ORDERLY, 8},                               /* may jump */
            {good | TPMA_NV_OWNERREAD, 8},                             /* extra */
            {TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA, 8}, /* ordinary */
            {counter | TPMA_NV_OWNERREAD | TPMA_NV_OWNERWRITE | TPMA_NV_NO_DA, 8},
        };
        struct swtpm *t = *state;
        uint8_t key[32];
        char err[512];
        uint64_t c = 0;

        if (t == NULL) {
                print_message("SKIP: swtpm is not installed (Debian: swtpm swtpm-tools)\n");
                skip();
        }
        fill_key(key, 30);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint32_t index = 0x01800100u + (uint32_t)i;

                define_index(t, index, bad[i].attrs, bad[i].size);
                assert_int_equal(anchor_check(t, index, key, 1, err, NULL).code, CF_E_CONFLICT);
                assert_non_null(strstr(err, "not a counter cofferd can use"));
        }
        /* an index someone else defined with the right attributes is used, and the owner-write
         * variant too */
        define_index(t, 0x01800200u, good, 8);
        assert_true(cf_ok(anchor_check_init(t, 0x01800200u, key, 1, true, err, &c)));
        assert_true(c > 0);
        define_index(t, 0x01800201u,
                     counter | TPMA_NV_AUTHREAD | TPMA_NV_OWNERWRITE | TPMA_NV_NO_DA, 8);
        {
                char path[128];

                snprintf(path, sizeof(path), "%s/%s", t->dir, CAS_ANCHOR_TPM_FILE);
                unlink(path);
        }
        assert_true(cf_ok(anchor_check_init(t, 0x01800201u, key, 1, true, err, &c)));
        assert_true(cf_ok(anchor_check(t, 0x01800201u, key, 2, err, &c)));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_record_round_trip),
            cmocka_unit_test(test_record_nonces_differ),
            cmocka_unit_test(test_record_truncated_at_every_offset),
            cmocka_unit_test(test_record_trailing_byte),
            cmocka_unit_test(test_record_every_bit_flip),
            cmocka_unit_test(test_record_unknown_version),
            cmocka_unit_test(test_record_wrong_key),
            cmocka_unit_test(test_derived_key),
            cmocka_unit_test(test_decide),
            cmocka_unit_test(test_configure),
            cmocka_unit_test(test_check_without_key_fails_cleanly),
            cmocka_unit_test_setup_teardown(test_swtpm_protocol, swtpm_setup, swtpm_teardown),
            cmocka_unit_test_setup_teardown(test_swtpm_foreign_index_refused, swtpm_setup,
                                            swtpm_teardown),
        };

        if (!cf_ok(cf_mem_init())) {
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
