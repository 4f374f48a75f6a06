/* A second thread for the shield's large reads (sh_par_post / sh_par_wait).
 *
 * Why: decrypting and authenticating a chunk costs more than copying it from the page cache,
 * so a large read is bound by AES-GCM on one core. Splitting a run of chunks between the
 * caller and one worker halves that part. One worker per process, started on first use; a
 * job is posted only when the worker is idle (otherwise the caller does all the work), so
 * callers never queue behind each other.
 *
 * The worker blocks every signal (the program's handlers never run on it) and calls no libc
 * file function, so under the preload it never re-enters the shim. After fork only the
 * forking thread exists: a child sees a different pid and starts a worker of its own. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include "shield/shield_internal.h"

static struct {
        pthread_mutex_t mu;
        pthread_cond_t go, done;
        pid_t pid;              /* the process whose worker runs; 0: none */
        bool failed;            /* could not start one in this process: never try again */
        struct sh_par_job *job; /* posted or running; NULL: the worker is idle */
        bool posted;            /* the worker has not taken it yet */
} g_par = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *worker(void *unused)
{
        (void)unused;
        cf_assert(pthread_mutex_lock(&g_par.mu) == 0);
        for (;;) {
                while (!g_par.posted) {
                        cf_assert(pthread_cond_wait(&g_par.go, &g_par.mu) == 0);
                }
                struct sh_par_job *j = g_par.job;

                g_par.posted = false;
                cf_assert(pthread_mutex_unlock(&g_par.mu) == 0);
                j->fn(j->arg);
                cf_assert(pthread_mutex_lock(&g_par.mu) == 0);
                j->finished = true;
                g_par.job = NULL;
                /* Each poster waits for its own job's flag, not for an idle worker: the
                 * worker may already run the next thread's job when a poster wakes. */
                cf_assert(pthread_cond_broadcast(&g_par.done) == 0);
        }
        return NULL;
}

/* Starts this process's worker. g_par.mu is held. */
static bool start(pid_t me)
{
        sigset_t all, old;
        pthread_attr_t attr;
        pthread_t t;
        bool ok;

        if (g_par.pid == me) {
                return true;
        }
        if (g_par.failed) {
                return false;
        }
        sigfillset(&all);
        if (pthread_attr_init(&attr) != 0) {
                g_par.failed = true;
                return false;
        }
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        (void)pthread_attr_setstacksize(&attr, (size_t)64 << 10);
        cf_assert(pthread_sigmask(SIG_SETMASK, &all, &old) == 0);
        ok = pthread_create(&t, &attr, worker, NULL) == 0;
        cf_assert(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
        pthread_attr_destroy(&attr);
        if (!ok) {
                g_par.failed = true;
                return false;
        }
        g_par.pid = me;
        return true;
}

bool sh_par_post(struct sh_par_job *job)
{
        pid_t me = getpid();
        bool posted = false;

        if (g_par.pid != me && g_par.pid != 0) {
                /* A forked child: the worker and any job belong to the parent. The only
                 * thread here is the one that forked, outside this module. */
                pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
                pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

                g_par.mu = mu;
                g_par.go = cv;
                g_par.done = cv;
                g_par.pid = 0;
                g_par.failed = false;
                g_par.job = NULL;
                g_par.posted = false;
        }
        if (pthread_mutex_trylock(&g_par.mu) != 0) {
                return false;
        }
        if (g_par.job == NULL && start(me)) {
                job->finished = false;
                g_par.job = job;
                g_par.posted = true;
                cf_assert(pthread_cond_signal(&g_par.go) == 0);
                posted = true;
        }
        cf_assert(pthread_mutex_unlock(&g_par.mu) == 0);
        return posted;
}

void sh_par_wait(struct sh_par_job *job)
{
        cf_assert(pthread_mutex_lock(&g_par.mu) == 0);
        while (!job->finished) {
                cf_assert(pthread_cond_wait(&g_par.done, &g_par.mu) == 0);
        }
        cf_assert(pthread_mutex_unlock(&g_par.mu) == 0);
}
