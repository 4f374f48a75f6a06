/* Unit tests of the chunk nonce pool (src/shield/nonce.c): nonces do not repeat across pool
 * refills, and a forked child never hands out the nonces its parent hands out next (the pool
 * page is wiped in the child), which AES-GCM under a shared file key depends on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shield/shield.h"
#include "shield/shield_internal.h"

#define N 1000u /* nonces per side: three refills of the pool */

static uint8_t g_key[SHIELD_KEY_SIZE];

static int cmp_nonce(const void *a, const void *b)
{
        return memcmp(a, b, SH_NONCE_SIZE);
}

static void open_volume(struct shield_mem **m, struct shield_volume **v)
{
        assert_int_equal(shield_mem_new(m).code, 0);
        assert_int_equal(
            shield_volume_open(&shield_mem_ops, *m, g_key, NULL, 0, SHIELD_OPEN_CREATE, v).code, 0);
}

/* No two equal among n sorted in place. */
static void assert_distinct(uint8_t (*n)[SH_NONCE_SIZE], size_t count)
{
        qsort(n, count, SH_NONCE_SIZE, cmp_nonce);
        for (size_t i = 1; i < count; i++) {
                assert_true(memcmp(n[i - 1], n[i], SH_NONCE_SIZE) != 0);
        }
}

static void test_distinct(void **state)
{
        static uint8_t n[3 * N][SH_NONCE_SIZE];
        struct shield_mem *m;
        struct shield_volume *v;

        (void)state;
        open_volume(&m, &v);
        for (size_t i = 0; i < 3 * N; i++) {
                assert_int_equal(sh_nonce(v, n[i]).code, 0);
        }
        assert_distinct(n, 3 * N);
        shield_volume_close(v);
        shield_mem_free(m);
}

static void test_fork(void **state)
{
        static uint8_t n[2 * N][SH_NONCE_SIZE];
        struct shield_mem *m;
        struct shield_volume *v;
        int fds[2], status = 0;
        pid_t pid;
        size_t got = 0;

        (void)state;
        open_volume(&m, &v);
        assert_int_equal(sh_nonce(v, n[0]).code, 0); /* the pool is filled before the fork */
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                uint8_t x[SH_NONCE_SIZE];

                close(fds[0]);
                for (size_t i = 0; i < N; i++) {
                        if (!cf_ok(sh_nonce(v, x)) || write(fds[1], x, sizeof(x)) != sizeof(x)) {
                                _exit(1);
                        }
                }
                _exit(0);
        }
        close(fds[1]);
        for (size_t i = 1; i < N; i++) {
                assert_int_equal(sh_nonce(v, n[i]).code, 0);
        }
        while (got < (size_t)N * SH_NONCE_SIZE) {
                ssize_t r = read(fds[0], (uint8_t *)n[N] + got, (size_t)N * SH_NONCE_SIZE - got);

                assert_true(r > 0);
                got += (size_t)r;
        }
        close(fds[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_distinct(n, 2 * N);
        shield_volume_close(v);
        shield_mem_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_distinct),
            cmocka_unit_test(test_fork),
        };

        memset(g_key, 0x11, sizeof(g_key));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
