/* coffer-run: attests a program to cofferd, receives its configuration, injects its files
 * and executes it with the policy's argv and environment. See docs/coffer-run.md. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "base/mem.h"
#include "client/activate.h"
#include "client/cas_attest.h"
#include "client/collateral_dir.h"
#include "client/pin.h"
#include "client/client.h"
#include "crypto/tls.h"
#include "crypto/x509.h"
#include "policy/policy.h"
#include "run/agent.h"
#include "run/inject.h"
#include "shield/shield.h"

/* Exit statuses of coffer-run itself (the program's own status is passed through). */
#define EXIT_SETUP   125 /* usage, configuration, connection or verification of cofferd */
#define EXIT_REFUSED 126 /* cofferd refused the activation */
#define EXIT_EXEC    127 /* the program could not be executed */

#define RUN_PROGRAM_MAX (1u << 30)
#define RUN_ARGS_MAX    4096

extern char **environ;

static const char g_usage[] =
        "Usage: coffer-run [OPTIONS] [--] PROGRAM\n"
        "\n"
        "Measures PROGRAM, attests it to cofferd over a TLS connection whose identity is\n"
        "pinned, receives the configuration its policy releases to it (argv, environment,\n"
        "working directory, files with secrets), and executes exactly the measured file.\n"
        "The host's arguments and environment are not passed to the program, except the\n"
        "environment variables the policy lists under passthrough_env.\n"
        "\n"
        "Options (each also from the environment variable shown):\n"
        "  --cas HOST:PORT     cofferd's address                      COFFER_CAS\n"
        "  --cas-key KEYID     cofferd's key id (64 hex digits)       COFFER_CAS_KEY\n"
        "                      (default: the key pinned by 'coffer cas attest')\n"
        "  --cas-policy FILE   instead of --cas-key: attest cofferd against the rules of a\n"
        "                      policy file's service (see 'coffer cas attest')\n"
        "                                                             COFFER_CAS_POLICY\n"
        "  --cas-service NAME  that service (default: cofferd)       COFFER_CAS_SERVICE\n"
        "  --cas-collateral DIR  collateral to verify a cofferd on a hardware TEE\n"
        "                                                             COFFER_CAS_COLLATERAL\n"
        "  --volume-dir DIR    backing directories of the policy's volumes\n"
        "                      (default /var/lib/coffer/volumes)     COFFER_VOLUME_DIR\n"
        "  --volume-cache MIB  plaintext cache of each volume in the program's memory,\n"
        "                      0 to 4096 MiB (default 64; 0 turns it off)\n"
        "                                                             COFFER_VOLUME_CACHE\n"
        "  --policy NAME       the policy (namespace/name)            COFFER_POLICY\n"
        "  --service NAME      the service in that policy             COFFER_SERVICE\n"
        "  --tee TEE           auto, sim, tdx, snp or sgx (default sim) COFFER_TEE\n"
        "  --tsm-root PATH     configfs-tsm report directory          COFFER_TSM_ROOT\n"
        "                      (default " PROVIDER_TSM_ROOT_DEFAULT ")\n"
        "  --attestation-root PATH  LibOS attestation interface       COFFER_ATTESTATION_ROOT\n"
        "                      (default " PROVIDER_LIBOS_ROOT_DEFAULT ")\n"
        "  --csr-algorithm ALG the workload key's algorithm for a service with a certificate:\n"
        "                      p256 (default), p384, ed25519, rsa2048, rsa3072 or rsa4096\n"
        "                      (cofferd names the one it wants and coffer-run retries once)\n"
        "  --no-csr            do not send a certificate request (a service with a\n"
        "                      certificate is then refused)\n"
        "  -v, --verbose       say what happens on standard error\n"
        "  -h, --help          show this help\n"
        "  -V, --version       show the version\n"
        "\n"
        "Exit status: the program's own, or 125 (setup or connection error), 126 (activation\n"
        "refused; the failed checks are printed), 127 (the program could not be executed).\n"
        "\n"
        "TEE (--tee), the source of the evidence:\n"
        "  sim   signed by the software platform key in $COFFER_SIM_DIR (default\n"
        "        ~/.local/share/coffer/sim) over PROGRAM's SHA-256: this protects nothing\n"
        "        against a local root. The default for now.\n"
        "  tdx, snp  a TDX quote or an SEV-SNP attestation report from configfs-tsm (a Linux\n"
        "        6.7+ confidential VM guest; needs root).\n"
        "  sgx   an SGX DCAP quote from the library OS's /dev/attestation (e.g. Gramine).\n"
        "  auto  picks hardware when present: configfs-tsm, else /dev/attestation, else sim.\n"
        "With a hardware TEE the measurement is the TEE's own (of the VM or the enclave), not\n"
        "PROGRAM's hash; the policy's attestation rules say which measurements are accepted.\n";

struct run_args {
        const char *cas, *cas_key, *policy, *service, *program;
        const char *cas_policy, *cas_service; /* attest cofferd instead of pinning its key */
        char pinned[CF_KEY_ID_HEX];           /* from `coffer cas attest`, when no --cas-key */
        char attested[CF_KEY_ID_HEX];         /* --cas-policy: the key id attested at start */
        const char *volume_dir;               /* backing directories of volumes */
        const char *volume_cache;             /* --volume-cache, MiB (NULL: the shield's) */
        uint64_t volume_cache_mib;            /* its value */
        const char *cas_collateral;           /* collateral for a cofferd on a hardware TEE */
        const char *tee, *tsm_root, *attestation_root;
        struct provider_choice choice;
        bool verbose;
        bool no_csr;                /* --no-csr */
        enum cf_x509_alg csr_alg;   /* --csr-algorithm, default p256 */
};

static int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int status, const char *fmt, ...)
{
        va_list ap;

        fputs("coffer-run: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

static const char *from_env(const char *value, const char *name)
{
        return value != NULL ? value : secure_getenv(name);
}

/* Opens PROGRAM as execvp would find it, for measuring and executing the same file. */
static int open_program(const char *prog, char *resolved, size_t resolved_size)
{
        const char *path;
        char *copy, *save = NULL;
        int fd = -1;

        if (prog == NULL || prog[0] == 0) {
                errno = ENOENT;
                return -1;
        }
        if (strchr(prog, '/') != NULL) {
                snprintf(resolved, resolved_size, "%s", prog);
                return open(prog, O_RDONLY | O_CLOEXEC);
        }
        path = secure_getenv("PATH");
        copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        if (copy == NULL) {
                return -1;
        }
        for (char *d = strtok_r(copy, ":", &save); d && fd < 0; d = strtok_r(NULL, ":", &save)) {
                struct stat st;
                snprintf(resolved, resolved_size, "%s/%s", *d ? d : ".", prog);
                if (stat(resolved, &st) == 0 && S_ISREG(st.st_mode) &&
                    access(resolved, X_OK) == 0) {
                        fd = open(resolved, O_RDONLY | O_CLOEXEC);
                }
        }
        free(copy);
        if (fd < 0) {
                errno = ENOENT;
        }
        return fd;
}

static cf_status measure_fd(int fd, uint8_t out[static 32])
{
        struct cf_buf b;
        struct cf_slice part;
        cf_status s;

        cf_buf_init(&b, RUN_PROGRAM_MAX, false);
        s = cf_read_fd(fd, RUN_PROGRAM_MAX, &b);
        if (cf_ok(s)) {
                part = cf_buf_slice(&b);
                s = cf_sha256(&part, 1, out);
        }
        cf_buf_done(&b);
        return s;
}

static void print_refusal(const struct cf_http_response *r)
{
        json_t *j = cf_http_response_json(r), *checks, *c;
        const char *msg = NULL;
        size_t i;

        if (j == NULL || json_unpack(j, "{s:{s:s, s:{s:o}}}", "error", "message", &msg,
                                     "details", "checks", &checks) != 0) {
                char text[512];
                cf_http_error_text(r, text, sizeof(text));
                fprintf(stderr, "coffer-run: activation refused: %s\n", text);
                json_decref(j);
                return;
        }
        fprintf(stderr, "coffer-run: %s\n", msg);
        json_array_foreach(checks, i, c)
        {
                const char *name = "?", *exp = "", *act = "";
                if (json_unpack(c, "{s:s, s?s, s?s}", "name", &name, "expected", &exp, "actual",
                                &act) == 0) {
                        fprintf(stderr, "  failed check %s\n    expected: %s\n    actual:   %s\n",
                                name, exp, act);
                }
        }
        json_decref(j);
}

/* The request body with sim evidence over the program's measurement m. */
static int body_sim(struct cf_client *c, const struct run_args *a, const uint8_t m[32],
                    char **ret_body)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *platform = NULL;
        cf_status s;

        if (!cf_ok(sim_platform_key_load(NULL, &platform))) {
                return fail(EXIT_SETUP, "cannot load or create the sim platform key");
        }
        s = cf_activation_body_sim(cf_client_ssl(c), platform, m, a->policy, a->service, ret_body);
        if (!cf_ok(s)) {
                return fail(EXIT_SETUP, "cannot create evidence: %s", cf_strerror(s));
        }
        return 0;
}

/* The request body with evidence from the hardware TEE's provider, over the report data that
 * binds this connection. */
static int body_hardware(struct cf_client *c, const struct run_args *a, char **ret_body)
{
        uint8_t rd[CF_ACTIVATION_REPORT_DATA_SIZE];
        struct attest_evidence ev;
        char err[1024] = "";
        cf_status s;

        s = cf_activation_report_data(cf_client_ssl(c), rd);
        if (!cf_ok(s)) {
                return fail(EXIT_SETUP, "cannot derive the channel binding: %s", cf_strerror(s));
        }
        s = provider_get(&a->choice, a->tsm_root, a->attestation_root, rd, &ev, err,
                         sizeof(err));
        if (!cf_ok(s)) {
                return fail(EXIT_SETUP, "cannot obtain evidence from the TEE: %s", err);
        }
        /* The SEV-SNP certificate table (ev.aux) is not sent: cofferd verifies with the
         * collateral imported into it, offline. */
        cf_log_info("evidence type=%s size=%zu aux_size=%zu", attest_platform_name(ev.platform),
                    ev.bytes.size, ev.aux.size);
        s = cf_activation_body(cf_client_ssl(c), ev.platform, cf_buf_slice(&ev.bytes), a->policy,
                               a->service, ret_body);
        attest_evidence_done(&ev);
        if (!cf_ok(s)) {
                return fail(EXIT_SETUP, "cannot create the activation request: %s",
                            cf_strerror(s));
        }
        return 0;
}

/* A new workload key of alg into key (PKCS#8, a secret buffer), and body with a certificate
 * request for it. The key stays in this process: cofferd gets the CSR only. */
static int body_with_csr(const char *body, enum cf_x509_alg alg, struct cf_buf *key,
                         char **ret_body)
{
        struct cf_buf csr;
        cf_status s;

        cf_buf_reset(key); /* wipes a key made for an earlier attempt */
        cf_buf_init(&csr, CF_X509_CSR_MAX, false);
        s = cf_x509_key_generate(alg, key);
        if (cf_ok(s)) {
                s = cf_x509_csr_create(cf_buf_slice(key), "coffer-run", &csr);
        }
        if (cf_ok(s)) {
                s = cf_activation_body_with_csr(body, (const char *)csr.ptr, ret_body);
        }
        cf_buf_done(&csr);
        if (!cf_ok(s)) {
                return fail(EXIT_SETUP, "cannot make the certificate request: %s",
                            cf_strerror(s));
        }
        cf_log_info("certificate request for a new %s key", cf_x509_alg_name(alg));
        return 0;
}

/* True when cofferd answered 409 activation.csr_algorithm naming another algorithm than the
 * one sent; *alg is then that algorithm. */
static bool csr_algorithm_wanted(const struct cf_http_response *r, enum cf_x509_alg *alg)
{
        json_t *j = r->status == 409 ? cf_http_response_json(r) : NULL;
        const char *code = NULL, *name = NULL;
        enum cf_x509_alg want;
        bool ok;

        ok = j != NULL &&
             json_unpack(j, "{s:{s:s, s:{s:s}}}", "error", "code", &code, "details",
                         "algorithm", &name) == 0 &&
             strcmp(code, "activation.csr_algorithm") == 0 &&
             cf_ok(cf_x509_alg_parse(name, &want)) && want != *alg;
        json_decref(j);
        if (ok) {
                cf_log_info("cofferd wants a %s key for the certificate: retrying", name);
                *alg = want;
        }
        return ok;
}

/* Attests over c and returns the parsed bundle, or an exit status. m is the program's
 * measurement (sim only). Unless --no-csr, a certificate request goes with the evidence,
 * for a key made into key; when cofferd wants another algorithm, the same evidence (bound
 * to this same connection) is sent once more with a request for a key of that algorithm. */
static int activate(struct cf_client *c, const struct run_args *a, const uint8_t m[32],
                    struct cf_buf *key, json_t **ret)
{
        struct cf_http_response resp;
        enum cf_x509_alg alg = a->csr_alg;
        char *body = NULL, *sent = NULL;
        cf_status s;
        int status;

        status = a->choice.kind == PROVIDER_SIM ? body_sim(c, a, m, &body)
                                                : body_hardware(c, a, &body);
        for (int attempt = 0; status == 0; attempt++) {
                if (!a->no_csr && (status = body_with_csr(body, alg, key, &sent)) != 0) {
                        break;
                }
                cf_http_response_init(&resp);
                s = cf_client_request(c, "POST", "/v1/activate", "application/json",
                                      cf_slice_str(sent != NULL ? sent : body), &resp);
                free(sent);
                sent = NULL;
                if (cf_ok(s) && !a->no_csr && attempt == 0 && csr_algorithm_wanted(&resp, &alg)) {
                        cf_http_response_done(&resp);
                        continue;
                }
                break;
        }
        free(body);
        if (status != 0) {
                return status;
        }
        if (!cf_ok(s)) {
                status = fail(EXIT_SETUP, "activation request failed: %s", cf_strerror(s));
        } else if (resp.status == 403) {
                print_refusal(&resp);
                status = EXIT_REFUSED;
        } else if (resp.status != 200 || (*ret = cf_http_response_json(&resp)) == NULL) {
                char text[512];
                cf_http_error_text(&resp, text, sizeof(text));
                status = fail(EXIT_SETUP, "activation failed: %s", text);
        }
        cf_http_response_done(&resp);
        return status;
}

/* Builds argv and envp from the bundle (borrowing its strings). */
static int build_exec(json_t *bundle, char **argv, char **envp, size_t max)
{
        json_t *args = json_object_get(bundle, "argv"), *env = json_object_get(bundle, "env");
        json_t *pass = json_object_get(bundle, "passthrough_env"), *v;
        const char *k;
        size_t i, n_env = 0;

        if (!json_is_array(args) || json_array_size(args) == 0 || !json_is_object(env) ||
            json_array_size(args) >= max || json_object_size(env) + json_array_size(pass) >= max) {
                return fail(EXIT_SETUP, "cofferd sent a malformed configuration");
        }
        json_array_foreach(args, i, v)
        {
                argv[i] = (char *)(uintptr_t)json_string_value(v);
                if (argv[i] == NULL) {
                        return fail(EXIT_SETUP, "cofferd sent a malformed argv");
                }
        }
        argv[json_array_size(args)] = NULL;
        json_object_foreach(env, k, v)
        {
                const char *val = json_string_value(v);
                size_t len = strlen(k) + (val ? strlen(val) : 0) + 2;
                char *kv = malloc(len);
                if (val == NULL || kv == NULL) {
                        return fail(EXIT_SETUP, "cofferd sent a malformed environment");
                }
                snprintf(kv, len, "%s=%s", k, val);
                envp[n_env++] = kv; /* freed by exec; holds secrets only until then */
        }
        json_array_foreach(pass, i, v)
        {
                const char *name = json_string_value(v), *val;
                if (name == NULL || (val = secure_getenv(name)) == NULL) {
                        continue;
                }
                size_t len = strlen(name) + strlen(val) + 2;
                char *kv = malloc(len);
                if (kv != NULL) {
                        snprintf(kv, len, "%s=%s", name, val);
                        envp[n_env++] = kv;
                }
        }
        envp[n_env] = NULL;
        return 0;
}

/* The workload certificate's files: the key made here (PKCS#8 PEM, 0400), the certificate
 * cofferd issued for it and the root CA (0444), appended to files[*n]. The certificate must
 * be for this key: a mismatch is cofferd's error, found here rather than by the program. */
static int certificate_files(json_t *cert, const struct cf_buf *key, struct inject_file *files,
                             size_t *n, struct cf_buf *key_pem)
{
        const char *pem = NULL, *ca = NULL, *key_path = NULL, *cert_path = NULL, *ca_path = NULL;
        struct cf_buf der, a, b;
        bool same;
        cf_status s;

        if (json_unpack(cert, "{s:s, s:s, s:s, s:s, s?s}", "cert", &pem, "ca", &ca, "key_path",
                        &key_path, "cert_path", &cert_path, "ca_path", &ca_path) != 0 ||
            key_path[0] != '/' || cert_path[0] != '/' || (ca_path != NULL && ca_path[0] != '/') ||
            *n + 3 > INJECT_MAX_FILES) {
                return fail(EXIT_SETUP, "cofferd sent a malformed certificate entry");
        }
        if (key->size == 0) {
                return fail(EXIT_SETUP, "the service has a certificate, but no certificate "
                                        "request was sent (--no-csr)");
        }
        cf_buf_init(&der, CF_X509_CERT_MAX, false);
        cf_buf_init(&a, CF_X509_SPKI_MAX, false);
        cf_buf_init(&b, CF_X509_SPKI_MAX, false);
        s = cf_x509_cert_from_pem(cf_slice_str(pem), &der);
        if (cf_ok(s)) {
                s = cf_x509_public_key(cf_buf_slice(&der), true, false, &a);
        }
        if (cf_ok(s)) {
                s = cf_x509_public_key(cf_buf_slice(key), false, false, &b);
        }
        same = cf_ok(s) && cf_slice_eq(cf_buf_slice(&a), cf_buf_slice(&b));
        cf_buf_done(&der);
        cf_buf_done(&a);
        cf_buf_done(&b);
        if (!same) {
                return fail(EXIT_SETUP, "cofferd sent a certificate that is not for this "
                                        "workload's key");
        }
        if (!cf_ok(cf_x509_key_pem(cf_buf_slice(key), true, key_pem))) {
                return fail(EXIT_SETUP, "cannot encode the workload key");
        }
        files[(*n)++] = (struct inject_file){ key_path, 0400, key_pem->ptr, key_pem->size };
        files[(*n)++] = (struct inject_file){ cert_path, 0444, (const uint8_t *)pem, strlen(pem) };
        if (ca_path != NULL) {
                files[(*n)++] = (struct inject_file){ ca_path, 0444, (const uint8_t *)ca,
                                                      strlen(ca) };
        }
        return 0;
}

static int setup_files(json_t *bundle, struct cf_buf *contents, const struct cf_buf *key,
                       struct cf_buf *key_pem)
{
        struct inject_file files[INJECT_MAX_FILES];
        json_t *list = json_object_get(bundle, "files"), *f;
        size_t i, n = json_array_size(list);
        char err[512] = "";

        if (n > INJECT_MAX_FILES) {
                return fail(EXIT_SETUP, "too many injected files");
        }
        json_array_foreach(list, i, f)
        {
                const char *path = NULL, *b64 = NULL;
                json_int_t mode = 0;
                cf_buf_init(&contents[i], 2u << 20, true);
                if (json_unpack(f, "{s:s, s:I, s:s}", "path", &path, "mode", &mode, "content",
                                &b64) != 0 ||
                    path[0] != '/' || mode < 0 || mode > 07777 ||
                    !cf_ok(cf_base64_decode_buf(cf_slice_str(b64), &contents[i]))) {
                        return fail(EXIT_SETUP, "cofferd sent a malformed file entry");
                }
                files[i] = (struct inject_file){ path, (uint32_t)mode, contents[i].ptr,
                                                 contents[i].size };
        }
        if (json_object_get(bundle, "certificate") != NULL) {
                int status = certificate_files(json_object_get(bundle, "certificate"), key, files,
                                               &n, key_pem);
                if (status != 0) {
                        return status;
                }
        }
        if (!cf_ok(inject_files(files, n, err, sizeof(err)))) {
                return fail(EXIT_SETUP, "%s", err);
        }
        return 0;
}

/* Attests cofferd on this connection against a policy file's service before anything is
 * sent; with --cas-key as well, the key id must match too. Without it, the attested key id
 * becomes a->cas_key, so that the freshness agent's reconnections are pinned to the cofferd
 * that was attested, not to whoever answers at the address. */
static int attest_cas(struct cf_client *c, struct run_args *a)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *local = NULL;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        struct policy_errors errs;
        struct cf_cas_expect e = { 0 };
        struct attest_collateral coll;
        char err[512] = "";
        struct attest_result res;
        uint8_t keys[1][32];
        char kid[CF_KEY_ID_HEX];
        struct cf_buf doc;
        const char *svc = a->cas_service ? a->cas_service : "cofferd";
        cf_status s;

        memset(&errs, 0, sizeof(errs));
        cf_buf_init(&doc, POLICY_DOC_MAX, false);
        s = cf_read_file(a->cas_policy, POLICY_DOC_MAX, &doc);
        if (cf_ok(s)) {
                s = policy_parse(cf_buf_slice(&doc), &p, &errs);
        }
        cf_buf_done(&doc);
        if (!cf_ok(s) || (e.service = policy_find_service(p, svc)) == NULL) {
                return fail(EXIT_SETUP, "--cas-policy: '%s' is not a policy with a service '%s'",
                            a->cas_policy, svc);
        }
        if (cf_ok(sim_platform_key_load(NULL, &local)) &&
            cf_ok(cf_pkey_ed25519_raw_public(local, keys[0]))) {
                e.sim_keys = (const uint8_t(*)[32])keys;
                e.n_sim_keys = 1;
        }
        e.key_id = a->cas_key;
        e.now = (int64_t)time(NULL);
        attest_collateral_init(&coll);
        if (a->cas_collateral != NULL &&
            !cf_ok(cf_collateral_load_dir(a->cas_collateral, &coll, err, sizeof(err)))) {
                return fail(EXIT_SETUP, "--cas-collateral: %s", err);
        }
        e.collateral = &coll;
        if (!cf_ok(attest_result_init(&res))) {
                attest_collateral_done(&coll);
                return fail(EXIT_SETUP, "out of memory");
        }
        s = cf_cas_attest(c, &e, &res, kid);
        attest_collateral_done(&coll);
        if (!cf_ok(s)) {
                fprintf(stderr, "coffer-run: cofferd at %s is not attested (%s)\n", a->cas,
                        cf_strerror(s));
                for (size_t i = 0; i < res.checks.n; i++) {
                        const struct attest_check *ch = &res.checks.items[i];
                        if (!ch->ok) {
                                fprintf(stderr, "  failed check %s\n    expected: %s\n    "
                                        "actual:   %s\n",
                                        ch->name, ch->expected, ch->actual);
                        }
                }
        }
        attest_result_done(&res);
        if (!cf_ok(s)) {
                return EXIT_SETUP;
        }
        cf_log_info("cofferd attested key_id=%s", kid);
        if (a->cas_key == NULL) {
                memcpy(a->attested, kid, sizeof(a->attested));
                a->cas_key = a->attested;
        }
        return 0;
}

static int parse_args(int argc, char **argv, struct run_args *a)
{
        static const struct option opts[] = {
                { "cas", required_argument, NULL, 'c' },
                { "cas-key", required_argument, NULL, 'k' },
                { "policy", required_argument, NULL, 'p' },
                { "service", required_argument, NULL, 's' },
                { "cas-policy", required_argument, NULL, 'P' },
                { "cas-service", required_argument, NULL, 'S' },
                { "volume-dir", required_argument, NULL, 'D' },
                { "volume-cache", required_argument, NULL, 'M' },
                { "cas-collateral", required_argument, NULL, 'C' },
                { "tee", required_argument, NULL, 't' },
                { "tsm-root", required_argument, NULL, 'T' },
                { "attestation-root", required_argument, NULL, 'A' },
                { "csr-algorithm", required_argument, NULL, 'G' },
                { "no-csr", no_argument, NULL, 'N' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        char err[512] = "";
        int c;

        while ((c = getopt_long(argc, argv, "+vhV", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        a->cas = optarg;
                        break;
                case 'k':
                        a->cas_key = optarg;
                        break;
                case 'p':
                        a->policy = optarg;
                        break;
                case 's':
                        a->service = optarg;
                        break;
                case 'P':
                        a->cas_policy = optarg;
                        break;
                case 'S':
                        a->cas_service = optarg;
                        break;
                case 'D':
                        a->volume_dir = optarg;
                        break;
                case 'M':
                        a->volume_cache = optarg;
                        break;
                case 'C':
                        a->cas_collateral = optarg;
                        break;
                case 't':
                        a->tee = optarg;
                        break;
                case 'T':
                        a->tsm_root = optarg;
                        break;
                case 'A':
                        a->attestation_root = optarg;
                        break;
                case 'G':
                        if (!cf_ok(cf_x509_alg_parse(optarg, &a->csr_alg))) {
                                return fail(EXIT_SETUP, "--csr-algorithm: expected p256, p384, "
                                            "ed25519, rsa2048, rsa3072 or rsa4096");
                        }
                        break;
                case 'N':
                        a->no_csr = true;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case 'h':
                        fputs(g_usage, stdout);
                        exit(0);
                case 'V':
                        printf("coffer-run %s\n", COFFER_VERSION);
                        exit(0);
                default:
                        return fail(EXIT_SETUP, "invalid option (try 'coffer-run --help')");
                }
        }
        a->cas = from_env(a->cas, "COFFER_CAS");
        a->cas_key = from_env(a->cas_key, "COFFER_CAS_KEY");
        a->policy = from_env(a->policy, "COFFER_POLICY");
        a->service = from_env(a->service, "COFFER_SERVICE");
        a->cas_policy = from_env(a->cas_policy, "COFFER_CAS_POLICY");
        a->cas_service = from_env(a->cas_service, "COFFER_CAS_SERVICE");
        a->volume_dir = from_env(a->volume_dir, "COFFER_VOLUME_DIR");
        a->volume_cache = from_env(a->volume_cache, "COFFER_VOLUME_CACHE");
        if (a->volume_cache != NULL &&
            !cf_ok(cf_parse_u64(a->volume_cache, 0, SHIELD_CACHE_MAX >> 20, &a->volume_cache_mib))) {
                return fail(EXIT_SETUP, "--volume-cache: expected a number of MiB from 0 to %zu",
                            SHIELD_CACHE_MAX >> 20);
        }
        a->cas_collateral = from_env(a->cas_collateral, "COFFER_CAS_COLLATERAL");
        if (a->volume_dir == NULL) {
                a->volume_dir = "/var/lib/coffer/volumes";
        }
        a->tee = from_env(a->tee, "COFFER_TEE");
        a->tsm_root = from_env(a->tsm_root, "COFFER_TSM_ROOT");
        a->attestation_root = from_env(a->attestation_root, "COFFER_ATTESTATION_ROOT");
        if (a->tee == NULL || a->tee[0] == 0) {
                /* Explicit rather than "auto": a machine whose TEE interface is missing must
                 * not fall back to sim evidence without the operator asking for it. */
                a->tee = "sim";
        }
        if (optind + 1 != argc) {
                return fail(EXIT_SETUP, "give exactly one PROGRAM to run (try 'coffer-run --help')");
        }
        a->program = argv[optind];
        if (a->cas != NULL && a->cas_key == NULL && a->cas_policy == NULL) {
                /* A key id pinned by an earlier `coffer cas attest` of this user. */
                char dir[1024];
                cf_identity_dir(dir, sizeof(dir));
                if (cf_pinned_key(dir, a->cas, a->pinned)) {
                        a->cas_key = a->pinned;
                }
        }
        if (a->cas == NULL || (a->cas_key == NULL && a->cas_policy == NULL) ||
            a->policy == NULL || a->service == NULL) {
                return fail(EXIT_SETUP, "--cas, --cas-key (or --cas-policy), --policy and --service "
                            "are required (or COFFER_CAS, COFFER_CAS_KEY, COFFER_POLICY, "
                            "COFFER_SERVICE)");
        }
        if (a->cas_key != NULL &&
            (strlen(a->cas_key) != 64 || strspn(a->cas_key, "0123456789abcdef") != 64)) {
                return fail(EXIT_SETUP, "--cas-key must be 64 lower-case hex digits");
        }
        if (!cf_ok(provider_choose(a->tee, a->tsm_root, a->attestation_root, &a->choice, err,
                                   sizeof(err)))) {
                return fail(EXIT_SETUP, "--tee: %s", err);
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct run_args a = { .csr_alg = CF_X509_P256 };
        char resolved[PATH_MAX], mhex[65];
        char *new_argv[RUN_ARGS_MAX], *new_envp[RUN_ARGS_MAX];
        static struct cf_buf contents[INJECT_MAX_FILES];
        struct cf_buf key, key_pem; /* the workload's own key (secret buffers, wiped) */
        uint8_t m[32];
        struct cf_client *c = NULL;
        json_t *bundle = NULL;
        const char *wd;
        int fd, status;
        cf_status s;

        if ((status = parse_args(argc, argv, &a)) != 0) {
                return status;
        }
        cf_log_setup("coffer-run", a.verbose ? CF_LOG_INFO : CF_LOG_WARNING);
        json_set_alloc_funcs(cf_wiping_malloc, cf_wiping_free);
        if (!cf_ok(cf_crypto_init()) || !cf_ok(cf_harden_process())) {
                return fail(EXIT_SETUP, "cannot initialise");
        }
        if (a.choice.kind == PROVIDER_SIM) {
                cf_log_warning("TEE: sim mode: evidence is signed by a software key; this "
                               "protects nothing against a local root");
        } else {
                cf_log_info("TEE: %s from %s", a.tee,
                            a.choice.kind == PROVIDER_TSM
                                    ? (a.tsm_root ? a.tsm_root : PROVIDER_TSM_ROOT_DEFAULT)
                                    : (a.attestation_root ? a.attestation_root
                                                          : PROVIDER_LIBOS_ROOT_DEFAULT));
        }
        fd = open_program(a.program, resolved, sizeof(resolved));
        if (fd < 0) {
                return fail(EXIT_EXEC, "cannot open program '%s': %s", a.program, strerror(errno));
        }
        memset(m, 0, sizeof(m));
        if (a.choice.kind == PROVIDER_SIM) {
                /* Hardware TEEs measure the VM or enclave themselves. */
                if (!cf_ok(measure_fd(fd, m))) {
                        return fail(EXIT_EXEC, "cannot read program '%s'", resolved);
                }
                cf_hex_encode(m, sizeof(m), mhex, sizeof(mhex));
                cf_log_info("program=%s measurement=%s", resolved, mhex);
        } else {
                cf_log_info("program=%s", resolved);
        }
        s = cf_client_connect(a.cas, a.cas_key, cf_slice_make(NULL, 0), NULL, 0, &c);
        if (!cf_ok(s)) {
                return fail(EXIT_SETUP, "cannot connect to cofferd at %s: %s%s", a.cas,
                            cf_strerror(s),
                            s.code == CF_E_PEER ? " (its key id is not the one given by "
                                                  "--cas-key)"
                                                : "");
        }
        if (a.cas_policy != NULL && (status = attest_cas(c, &a)) != 0) {
                cf_client_free(c);
                return status;
        }
        cf_buf_init(&key, CF_X509_KEY_MAX, true);
        cf_buf_init(&key_pem, 4 * CF_X509_KEY_MAX, true);
        status = activate(c, &a, m, &key, &bundle);
        if (status != 0 || !agent_needed(bundle)) {
                /* Without volumes nothing more is said to cofferd. */
                cf_client_free(c);
                c = NULL;
        }
        if (status != 0) {
                cf_buf_done(&key);
                return status;
        }
        cf_log_info("activation granted policy=%s service=%s", a.policy, a.service);
        status = setup_files(bundle, contents, &key, &key_pem);
        /* The key now exists only in the program's tmpfs file (or nowhere: no certificate). */
        cf_buf_done(&key);
        cf_buf_done(&key_pem);
        if (status != 0 || (status = build_exec(bundle, new_argv, new_envp, RUN_ARGS_MAX)) != 0) {
                json_decref(bundle);
                return status;
        }
        wd = json_string_value(json_object_get(bundle, "working_dir"));
        if (wd != NULL && chdir(wd) < 0) {
                return fail(EXIT_EXEC, "cannot change to working directory '%s': %s", wd,
                            strerror(errno));
        }
        for (size_t i = 0; i < INJECT_MAX_FILES; i++) {
                cf_buf_done(&contents[i]);
        }
        /* A script's interpreter opens the program through /dev/fd, so keep it open for it. */
        {
                char head[2] = { 0 };
                if (pread(fd, head, 2, 0) == 2 && head[0] == '#' && head[1] == '!') {
                        fcntl(fd, F_SETFD, 0);
                }
        }
        if (c != NULL) {
                struct agent_args ag = { a.cas, a.cas_key, a.policy, a.volume_dir, fd,
                                         a.volume_cache != NULL ? (int64_t)a.volume_cache_mib
                                                                : -1 };
                status = agent_run(&ag, c, bundle, new_argv, new_envp, RUN_ARGS_MAX);
                json_decref(bundle);
                return status;
        }
        fexecve(fd, new_argv, new_envp);
        status = fail(EXIT_EXEC, "cannot execute '%s': %s", resolved, strerror(errno));
        json_decref(bundle);
        return status;
}
