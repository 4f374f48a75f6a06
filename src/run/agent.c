#include "run/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"

#define AGENT_VOLUMES_MAX 16
#define AGENT_LINE_MAX    256

struct volume {
        char name[65];
        char token[65];
        bool batched;
        int64_t delay_ms;    /* batched: a quarter of the window, between two sends */
        bool pending;        /* batched: an advance to send */
        char tag[65];        /* its tag */
        uint64_t generation; /* its generation */
        int64_t due_ms;      /* when to send it (monotonic) */
        int64_t last_ms;     /* the last send */
};

static pid_t g_child = -1;

static void forward(int sig)
{
        if (g_child > 0) {
                kill(g_child, sig);
        }
}

bool agent_needed(json_t *bundle)
{
        return json_array_size(json_object_get(bundle, "volumes")) > 0;
}

/* The shield library: $COFFER_SHIELD_LIB, else next to this program in the build tree or in
 * an installation. */
static bool shield_lib(char *out, size_t out_size)
{
        const char *env = secure_getenv("COFFER_SHIELD_LIB");
        static const char *const rel[] = {"/../shield/preload/libcoffer-shield.so",
                                          "/../lib/coffer/libcoffer-shield.so",
                                          "/libcoffer-shield.so"};
        char exe[PATH_MAX];
        ssize_t n;

        if (env != NULL && env[0] == '/') {
                snprintf(out, out_size, "%s", env);
                return access(out, R_OK) == 0;
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0) {
                return false;
        }
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
                char p[PATH_MAX + 64];
                snprintf(p, sizeof(p), "%s%s", exe, rel[i]);
                if (realpath(p, out) != NULL && access(out, R_OK) == 0) {
                        return true;
                }
        }
        (void)out_size;
        return false;
}

/* Builds the shield configuration (docs/shield-preload.md) and the token list. */
static int configure(const struct agent_args *a, json_t *bundle, json_t **ret_config,
                     struct volume *vols, size_t *ret_n)
{
        json_t *list = json_object_get(bundle, "volumes"), *v, *cfg = json_array();
        char enc[600];
        size_t i;

        if (json_array_size(list) > AGENT_VOLUMES_MAX ||
            !cf_ok(cf_client_encode_name(a->policy, enc, sizeof(enc)))) {
                json_decref(cfg);
                fprintf(stderr, "coffer-run: too many volumes\n");
                return 125;
        }
        json_array_foreach(list, i, v)
        {
                const char *name = NULL, *path = NULL, *rollback = NULL, *key = NULL, *token = NULL,
                           *freshness = "strict";
                json_t *tags = NULL, *gen = NULL, *item;
                json_int_t window = 100;
                int reset = 0;
                char backing[PATH_MAX];
                struct stat st;

                if (json_unpack(v, "{s:s, s:s, s:s, s:s, s:s, s:o, s?s, s?I, s?o, s?b}", "name",
                                &name, "path", &path, "rollback", &rollback, "key", &key, "token",
                                &token, "expected_tags", &tags, "freshness", &freshness,
                                "batched_window_ms", &window, "generation", &gen, "reset",
                                &reset) != 0 ||
                    strlen(name) >= sizeof(vols[i].name) || strlen(token) != 64 ||
                    (strcmp(freshness, "strict") != 0 && strcmp(freshness, "batched") != 0) ||
                    window < 10 || window > 1000 ||
                    (gen != NULL && (!json_is_integer(gen) || json_integer_value(gen) < 0))) {
                        json_decref(cfg);
                        fprintf(stderr, "coffer-run: cofferd sent a malformed volume\n");
                        return 125;
                }
                snprintf(backing, sizeof(backing), "%s/%s/%s", a->volume_dir, enc, name);
                if (!cf_ok(cf_mkdir_p(backing, 0700))) {
                        json_decref(cfg);
                        fprintf(stderr, "coffer-run: cannot create the volume directory '%s'\n",
                                backing);
                        return 125;
                }
                /* The mount point must not be reachable on the host: a program without the
                 * shield (a static binary, an exec'd helper) would write plaintext there. */
                if (stat(path, &st) == 0) {
                        json_decref(cfg);
                        fprintf(stderr,
                                "coffer-run: the volume mount point '%s' exists on the "
                                "host; it must not (plaintext could reach it)\n",
                                path);
                        return 125;
                }
                memset(&vols[i], 0, sizeof(vols[i]));
                snprintf(vols[i].name, sizeof(vols[i].name), "%s", name);
                snprintf(vols[i].token, sizeof(vols[i].token), "%s", token);
                vols[i].batched = strcmp(freshness, "batched") == 0;
                vols[i].delay_ms = window / 4;
                /* protected: the tag must be expected; reinitializable: also, but a deleted
                 * volume starts empty and a reset at cofferd wipes it; ephemeral: any tag. */
                item = json_pack("{s:s, s:s, s:s, s:O, s:b, s:b, s:b, s:b, s:s}", "mount", path,
                                 "backing", backing, "key", key, "expected_tags", tags,
                                 "accept_any_tag", strcmp(rollback, "ephemeral") == 0,
                                 "accept_empty", strcmp(rollback, "reinitializable") == 0, "reset",
                                 reset && json_array_size(tags) == 0, "create",
                                 json_array_size(tags) == 0 || strcmp(rollback, "protected") != 0,
                                 "freshness", freshness);
                if (item != NULL && vols[i].batched) {
                        json_object_set_new(item, "window_ms", json_integer(window));
                }
                if (item != NULL && gen != NULL) {
                        json_object_set(item, "generation", gen);
                }
                if (item != NULL && a->cache_mib >= 0) {
                        json_object_set_new(item, "cache_mib", json_integer(a->cache_mib));
                }
                json_array_append_new(cfg, item);
        }
        *ret_n = i;
        *ret_config = json_pack("{s:o}", "volumes", cfg);
        return *ret_config ? 0 : 125;
}

static int64_t mono_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sends one tag change of volume idx to cofferd: verb is prepare, commit or advance. */
static bool send_tag(const struct agent_args *a, struct cf_client **c, const struct volume *vols,
                     size_t idx, const char *verb, const char *tag, uint64_t generation)
{
        char path[800], enc[600];
        struct cf_http_response r;
        json_t *req;
        char *body;
        bool ok = false;

        if (!cf_ok(cf_client_encode_name(a->policy, enc, sizeof(enc)))) {
                return false;
        }
        snprintf(path, sizeof(path), "/v1/volumes/%s/%s/tag", enc, vols[idx].name);
        req = json_pack("{s:s, s:s, s:I}", "token", vols[idx].token, verb, tag, "generation",
                        (json_int_t)generation);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (body == NULL) {
                return false;
        }
        for (int attempt = 0; attempt < 2 && !ok; attempt++) {
                cf_status s;
                if (*c == NULL && !cf_ok(cf_client_connect(a->cas, a->cas_key,
                                                           cf_slice_make(NULL, 0), NULL, 0, c))) {
                        break;
                }
                cf_http_response_init(&r);
                s = cf_client_request(*c, "POST", path, "application/json", cf_slice_str(body), &r);
                ok = cf_ok(s) && r.status == 200;
                if (!cf_ok(s)) {
                        /* cofferd closes idle connections: connect again once. */
                        cf_client_free(*c);
                        *c = NULL;
                } else if (!ok) {
                        char text[256];
                        cf_http_error_text(&r, text, sizeof(text));
                        fprintf(stderr, "coffer-run: cofferd refused the %s of volume %s: %s\n",
                                verb, vols[idx].name, text);
                        attempt = 2;
                }
                cf_http_response_done(&r);
        }
        cf_wipe_free(body, strlen(body));
        cf_log_info("volume %s %s %.16s: %s", vols[idx].name, verb, tag, ok ? "ok" : "refused");
        return ok;
}

/* Parses "VERB INDEX TAG GEN". */
static bool parse_request(const char *line, size_t n, char verb[16], size_t *ret_idx, char tag[65],
                          uint64_t *ret_gen)
{
        char num[24], gen[24];
        uint64_t idx;

        if (sscanf(line, "%15s %23s %64s %23s", verb, num, tag, gen) != 4 || strlen(tag) != 64 ||
            strspn(tag, "0123456789abcdef") != 64 || !cf_ok(cf_parse_u64(num, 0, n - 1, &idx)) ||
            !cf_ok(cf_parse_u64(gen, 0, INT64_MAX, ret_gen))) {
                return false;
        }
        *ret_idx = (size_t)idx;
        return true;
}

/* Batched: sends every pending advance that is due (all of them when flush is true) and
 * acknowledges each one cofferd recorded. A failed send stays pending and is retried. */
static void send_due(const struct agent_args *a, struct cf_client **c, int fd, struct volume *vols,
                     size_t n, bool flush)
{
        for (size_t i = 0; i < n; i++) {
                struct volume *v = &vols[i];
                char ack[64];
                int k;

                if (!v->pending || (!flush && mono_ms() < v->due_ms)) {
                        continue;
                }
                v->last_ms = mono_ms();
                if (!send_tag(a, c, vols, i, "advance", v->tag, v->generation)) {
                        v->due_ms = v->last_ms + (v->delay_ms > 0 ? v->delay_ms : 1);
                        if (flush) {
                                v->pending = false; /* the program is gone: give up */
                        }
                        continue;
                }
                v->pending = false;
                k = snprintf(ack, sizeof(ack), "ack %zu %llu\n", i,
                             (unsigned long long)v->generation);
                cf_ignore(cf_write_all(fd, ack, (size_t)k));
        }
}

/* One line from the shield. Strict requests are relayed at once and answered ok|error;
 * batched advances are coalesced per volume (the newest wins) and sent when due. */
static void handle(const struct agent_args *a, struct cf_client **c, int fd, struct volume *vols,
                   size_t n, const char *line)
{
        char verb[16], tag[65];
        size_t idx;
        uint64_t gen;
        bool ok;

        if (!parse_request(line, n, verb, &idx, tag, &gen)) {
                cf_ignore(cf_write_all(fd, "error\n", 6));
                return;
        }
        if (strcmp(verb, "advance") == 0 && vols[idx].batched) {
                struct volume *v = &vols[idx];
                if (!v->pending || gen > v->generation) {
                        memcpy(v->tag, tag, sizeof(v->tag));
                        v->generation = gen;
                }
                if (!v->pending) {
                        int64_t earliest = v->last_ms + v->delay_ms;
                        int64_t now = mono_ms();
                        v->due_ms = earliest > now ? earliest : now;
                        v->pending = true;
                }
                return;
        }
        ok = (strcmp(verb, "prepare") == 0 || strcmp(verb, "commit") == 0) &&
             send_tag(a, c, vols, idx, verb, tag, gen);
        cf_ignore(cf_write_all(fd, ok ? "ok\n" : "error\n", ok ? 3 : 6));
}

static void serve(const struct agent_args *a, struct cf_client *c, int fd, struct volume *vols,
                  size_t n)
{
        char buf[AGENT_LINE_MAX];
        size_t used = 0;

        for (;;) {
                int64_t wait = -1, now = mono_ms();
                struct pollfd p = {fd, POLLIN, 0};
                ssize_t got;
                char *nl;
                int r;

                for (size_t i = 0; i < n; i++) {
                        if (vols[i].pending) {
                                int64_t d = vols[i].due_ms > now ? vols[i].due_ms - now : 0;
                                wait = wait < 0 || d < wait ? d : wait;
                        }
                }
                r = poll(&p, 1, wait > INT32_MAX ? INT32_MAX : (int)wait);
                if (r < 0 && errno == EINTR) {
                        continue;
                }
                if (r == 0) {
                        send_due(a, &c, fd, vols, n, false);
                        continue;
                }
                got = read(fd, buf + used, sizeof(buf) - 1 - used);
                if (got < 0 && errno == EINTR) {
                        continue;
                }
                if (got <= 0) {
                        break; /* every holder of the other end is gone */
                }
                used += (size_t)got;
                buf[used] = '\0';
                while ((nl = memchr(buf, '\n', used)) != NULL) {
                        *nl = '\0';
                        handle(a, &c, fd, vols, n, buf);
                        used -= (size_t)(nl + 1 - buf);
                        memmove(buf, nl + 1, used);
                }
                if (used == sizeof(buf) - 1) {
                        break; /* a line longer than any request: not the shield */
                }
                send_due(a, &c, fd, vols, n, false);
        }
        /* The program is gone (maybe killed): cofferd still learns its last commits. */
        send_due(a, &c, fd, vols, n, true);
        cf_client_free(c);
}

int agent_run(const struct agent_args *a, struct cf_client *c, json_t *bundle, char **argv,
              char **envp, size_t envp_max)
{
        struct volume vols[AGENT_VOLUMES_MAX];
        char lib[PATH_MAX], env_lib[PATH_MAX + 16], env_fd[48], env_agent[48];
        json_t *config = NULL;
        char *text;
        size_t n = 0, ne = 0;
        int mfd, sv[2], status;

        if (!shield_lib(lib, sizeof(lib))) {
                cf_client_free(c);
                fprintf(stderr,
                        "coffer-run: libcoffer-shield.so not found (set COFFER_SHIELD_LIB)\n");
                return 125;
        }
        if ((status = configure(a, bundle, &config, vols, &n)) != 0) {
                cf_client_free(c);
                return status;
        }
        text = json_dumps(config, JSON_COMPACT);
        json_decref(config);
        mfd = memfd_create("coffer-shield", 0); /* inherited by the program on purpose */
        if (text == NULL || mfd < 0 || !cf_ok(cf_write_all(mfd, text, strlen(text))) ||
            lseek(mfd, 0, SEEK_SET) != 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
            fcntl(sv[1], F_SETFD, 0) < 0) {
                cf_client_free(c);
                fprintf(stderr, "coffer-run: cannot hand the volumes to the shield: %s\n",
                        strerror(errno));
                return 125;
        }
        cf_wipe_free(text, strlen(text));
        while (envp[ne] != NULL) {
                ne++;
        }
        if (ne + 4 > envp_max) {
                cf_client_free(c);
                return 125;
        }
        snprintf(env_lib, sizeof(env_lib), "LD_PRELOAD=%s", lib);
        snprintf(env_fd, sizeof(env_fd), "COFFER_SHIELD_FD=%d", mfd);
        snprintf(env_agent, sizeof(env_agent), "COFFER_SHIELD_AGENT_FD=%d", sv[1]);
        envp[ne++] = env_lib;
        envp[ne++] = env_fd;
        envp[ne++] = env_agent;
        envp[ne] = NULL;
        g_child = fork();
        if (g_child < 0) {
                cf_client_free(c);
                return 125;
        }
        if (g_child == 0) {
                close(sv[0]);
                fexecve(a->program_fd, argv, envp);
                fprintf(stderr, "coffer-run: cannot execute the program: %s\n", strerror(errno));
                _exit(127);
        }
        close(mfd);
        close(sv[1]);
        signal(SIGTERM, forward);
        signal(SIGINT, forward);
        signal(SIGHUP, forward);
        /* A reply to a program that just died must not kill the agent: its status is what
         * coffer-run reports. */
        signal(SIGPIPE, SIG_IGN);
        serve(a, c, sv[0], vols, n);
        close(sv[0]);
        cf_wipe(vols, sizeof(vols));
        while (waitpid(g_child, &status, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
