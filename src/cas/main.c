/* cofferd: the Coffer configuration and attestation service. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "cas/audit.h"
#include "cas/cas.h"
#include "cas/recovery.h"
#include "cas/sealing.h"
#include "crypto/tls.h"

static const char g_usage[] =
        "Usage: cofferd [OPTIONS]\n"
        "       cofferd init --data-dir DIR [--recovery-key FILE ... --recovery-threshold K]\n"
        "\n"
        "The Coffer configuration and attestation service (CAS): stores policies and\n"
        "secrets, attests workloads and releases each workload's configuration only to\n"
        "code whose evidence satisfies its policy. Speaks HTTPS (TLS 1.3 only) under /v1.\n"
        "\n"
        "Options:\n"
        "  -d, --data-dir DIR     state directory, created on first start (required)\n"
        "  -l, --listen ADDR:PORT address to listen on (default 127.0.0.1:8443);\n"
        "                         port 0 picks a free port; IPv6 as [::1]:PORT\n"
        "  -t, --threads N        worker threads (default: one per CPU)\n"
        "  -c, --config FILE      JSON configuration file with the keys data_dir, listen,\n"
        "                         threads and log_level; command-line flags override it\n"
        "      --log-level LEVEL  error, warning, info (default) or debug\n"
        "      --header-timeout SECONDS\n"
        "                         a connection must deliver its first complete request\n"
        "                         this long after accept (TLS handshake included), and\n"
        "                         each next one within 10 s + this of the previous one,\n"
        "                         however slowly bytes trickle in (default 10, 1 to 3600)\n"
        "      --max-connections N\n"
        "                         open connections per worker thread (default 512, lowered\n"
        "                         to fit RLIMIT_NOFILE); over it, the connection that\n"
        "                         completed a request least recently is closed\n"
        "      --refusal-window SECONDS\n"
        "                         refused activations with equal details are audited as\n"
        "                         one entry per window (default 60, 1 to 3600)\n"
        "      --anchor SPEC      freshness anchor of the store: 'file:/PATH', 'tpm:TCTI'\n"
        "                         (a TPM 2.0 NV counter, e.g. tpm:device:/dev/tpmrm0 or\n"
        "                         tpm:swtpm:host=127.0.0.1,port=2321; 'tpm@0xINDEX:TCTI' picks\n"
        "                         the index) or 'none' (no rollback detection). Default: a\n"
        "                         file in the sim platform directory, outside the data dir\n"
        "      --anchor-reset     accept a store whose anchor is missing (a deliberate move)\n"
        "      --tee TEE          where cofferd's own evidence comes from: sim (default), auto,\n"
        "                         tdx, snp (configfs-tsm) or sgx (LibOS /dev/attestation)\n"
        "      --tsm-root DIR     configfs-tsm report directory (tests use a fake one)\n"
        "      --attestation-root DIR\n"
        "                         the LibOS attestation directory\n"
        "      --trust-sim-key HEX\n"
        "                         also accept sim evidence signed by this platform key (64\n"
        "                         hex digits, see 'coffer sim-key'); repeatable. By default\n"
        "                         only this machine's sim platform key is trusted\n"
        "      --sealing KIND     how the data key is sealed to this machine: sim (default: a\n"
        "                         key file), snp (SEV-SNP derived key), sgx (LibOS sealing key)\n"
        "      --sealing-path P   the provider's device or directory (snp: /dev/sev-guest,\n"
        "                         sgx: /dev/attestation/keys)\n"
        "      --recovery-key F   (init) a recovery holder's certificate or public key (PEM,\n"
        "                         e.g. their identity.crt); repeat for each holder\n"
        "      --recovery-threshold K\n"
        "                         (init) how many holders together can recover the data key\n"
        "  -h, --help             show this help\n"
        "  -V, --version          show the version\n"
        "\n"
        "'cofferd init' creates the data directory and, with recovery keys, splits the data\n"
        "key K of N among them (recovery.json); a later start on a machine whose sealing key\n"
        "differs waits in recovery mode for K holders to run 'coffer cas recover'.\n"
        "\n"
        "On start it prints 'cofferd key id: HEX' (clients pin it with --cas-key) and\n"
        "'cofferd listening on ADDR:PORT' on standard output. SIGTERM or SIGINT stop it.\n"
        "\n"
        "TEE: with --tee sim (the default) its own evidence is signed by a software key, and\n"
        "with --sealing sim (the default) its data key is sealed by a key file; either\n"
        "protects nothing against a local root, and a warning says so at every start.\n";

static cf_status parse_listen(const char *arg, struct cas_config *cfg)
{
        const char *colon;
        char port[8];
        uint64_t p;
        size_t hlen;

        if (arg[0] == '[') {
                const char *end = strchr(arg, ']');
                ENSURE(end != NULL && end[1] == ':', CF_E_MALFORMED);
                hlen = (size_t)(end - arg - 1);
                ENSURE(hlen < sizeof(cfg->listen_host), CF_E_LIMIT);
                memcpy(cfg->listen_host, arg + 1, hlen);
                colon = end + 1;
        } else {
                colon = strrchr(arg, ':');
                ENSURE(colon != NULL, CF_E_MALFORMED);
                hlen = (size_t)(colon - arg);
                ENSURE(hlen > 0 && hlen < sizeof(cfg->listen_host), CF_E_LIMIT);
                memcpy(cfg->listen_host, arg, hlen);
        }
        cfg->listen_host[hlen] = '\0';
        ENSURE(strlen(colon + 1) < sizeof(port), CF_E_MALFORMED);
        snprintf(port, sizeof(port), "%s", colon + 1);
        TRY(cf_parse_u64(port, 0, 65535, &p));
        cfg->listen_port = (uint16_t)p;
        return CF_OK;
}

static cf_status parse_level(const char *s, enum cf_log_level *ret)
{
        static const struct {
                const char *name;
                enum cf_log_level level;
        } levels[] = { { "error", CF_LOG_ERR },
                       { "warning", CF_LOG_WARNING },
                       { "info", CF_LOG_INFO },
                       { "debug", CF_LOG_DEBUG } };

        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
                if (strcmp(s, levels[i].name) == 0) {
                        *ret = levels[i].level;
                        return CF_OK;
                }
        }
        return cf_fail(CF_E_INVALID_ARG);
}

static cf_status load_config(const char *path, struct cas_config *cfg, enum cf_log_level *level)
{
        struct cf_buf text;
        json_error_t jerr;
        json_t *j;
        const char *dir = NULL, *listen = NULL, *lvl = NULL;
        json_int_t threads = -1;
        cf_status s = CF_OK;

        cf_buf_init(&text, 1 << 16, false);
        TRY(cf_read_file(path, 1 << 16, &text));
        j = json_loadb((const char *)text.ptr, text.size, JSON_REJECT_DUPLICATES, &jerr);
        cf_buf_done(&text);
        if (j == NULL) {
                fprintf(stderr, "cofferd: %s:%d:%d: %s\n", path, jerr.line, jerr.column,
                        jerr.text);
                return cf_fail(CF_E_SYNTAX);
        }
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s?s, s?s, s?I, s?s}", "data_dir", &dir,
                           "listen", &listen, "threads", &threads, "log_level", &lvl) != 0) {
                fprintf(stderr, "cofferd: %s: %s (known keys: data_dir, listen, threads, "
                        "log_level)\n", path, jerr.text);
                s = cf_fail(CF_E_SCHEMA);
        }
        if (cf_ok(s) && dir != NULL) {
                snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", dir);
        }
        if (cf_ok(s) && listen != NULL) {
                s = parse_listen(listen, cfg);
        }
        if (cf_ok(s) && threads >= 0) {
                cfg->threads = threads > CAS_MAX_THREADS ? CAS_MAX_THREADS : (int)threads;
        }
        if (cf_ok(s) && lvl != NULL) {
                s = parse_level(lvl, level);
        }
        json_decref(j);
        return s;
}

static int usage_error(const char *msg, const char *arg);

/* cofferd init: creates the data directory and, with recovery keys, the recovery bundle. */
static int run_init(struct cas *cas, const char *const *files, size_t n, const char *threshold)
{
        struct cf_pkey *keys[CAS_RECOVERY_KEYS_MAX] = { 0 };
        uint64_t k = 0;
        cf_status s = CF_OK;
        int status = 0;

        if (cas_datadir_initialised(cas)) {
                fprintf(stderr, "cofferd: '%s' is initialised already\n", cas->cfg.data_dir);
                return 1;
        }
        if (n > 0 && (threshold == NULL || !cf_ok(cf_parse_u64(threshold, 2, n, &k)))) {
                return usage_error("--recovery-threshold wants a number from 2 to the number of "
                                   "--recovery-key",
                                   threshold);
        }
        if (n == 1) {
                return usage_error("give at least two --recovery-key (or none)", NULL);
        }
        for (size_t i = 0; i < n && cf_ok(s); i++) {
                struct cf_buf pem;
                cf_buf_init(&pem, 1 << 16, false);
                s = cf_read_file(files[i], 1 << 16, &pem);
                if (cf_ok(s)) {
                        s = cf_pem_public_key(cf_buf_slice(&pem), &keys[i]);
                }
                cf_buf_done(&pem);
                if (!cf_ok(s)) {
                        fprintf(stderr, "cofferd: --recovery-key '%s': not a PEM certificate or "
                                "public key (%s)\n", files[i], cf_strerror(s));
                }
        }
        if (cf_ok(s)) {
                s = cas_datadir_open(cas);
        }
        if (cf_ok(s) && n > 0) {
                s = cas_recovery_create(cas, cas->data_key->ptr, keys, n, (unsigned)k);
        }
        for (size_t i = 0; i < n; i++) {
                cf_pkey_free(keys[i]);
        }
        if (!cf_ok(s)) {
                fprintf(stderr, "cofferd: init failed: %s\n", cf_strerror(s));
                status = 1;
        } else {
                printf("cofferd key id: %s\n", cas->key_id);
                if (n > 0) {
                        printf("recovery: data key split %llu of %zu (%s/recovery.json)\n",
                               (unsigned long long)k, n, cas->cfg.data_dir);
                }
        }
        SSL_CTX_free(cas->tls);
        cas->data_key = cf_secret_free(cas->data_key);
        cf_pkey_free(cas->sim_platform_key);
        return status;
}

static int usage_error(const char *msg, const char *arg)
{
        fprintf(stderr, "cofferd: %s%s%s\nTry 'cofferd --help'.\n", msg, arg ? ": " : "",
                arg ? arg : "");
        return 2;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "data-dir", required_argument, NULL, 'd' },
                { "listen", required_argument, NULL, 'l' },
                { "threads", required_argument, NULL, 't' },
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, 'L' },
                { "trust-sim-key", required_argument, NULL, 'T' },
                { "anchor", required_argument, NULL, 'a' },
                { "anchor-reset", no_argument, NULL, 'R' },
                { "tee", required_argument, NULL, 256 },
                { "tsm-root", required_argument, NULL, 257 },
                { "attestation-root", required_argument, NULL, 258 },
                { "sealing", required_argument, NULL, 's' },
                { "sealing-path", required_argument, NULL, 'S' },
                { "recovery-key", required_argument, NULL, 'r' },
                { "recovery-threshold", required_argument, NULL, 'k' },
                { "header-timeout", required_argument, NULL, 259 },
                { "max-connections", required_argument, NULL, 260 },
                { "refusal-window", required_argument, NULL, 261 },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        static struct cas cas; /* large; lives for the whole process */
        const char *recovery_files[CAS_RECOVERY_KEYS_MAX], *threshold = NULL;
        size_t n_recovery = 0;
        bool init = false, mode_changed = false;
        enum cf_log_level level = CF_LOG_INFO;
        const char *config = NULL, *data_dir = NULL, *listen = NULL, *threads = NULL,
                   *log_level = NULL;
        uint64_t n;
        int c;
        cf_status s;

        while ((c = getopt_long(argc, argv, "d:l:t:c:hV", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        data_dir = optarg;
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case 't':
                        threads = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'L':
                        log_level = optarg;
                        break;
                case 'a':
                        cas.cfg.anchor = optarg;
                        break;
                case 'R':
                        cas.cfg.anchor_reset = true;
                        break;
                case 256:
                        cas.cfg.tee = optarg;
                        break;
                case 257:
                        cas.cfg.tsm_root = optarg;
                        break;
                case 258:
                        cas.cfg.attestation_root = optarg;
                        break;
                case 259:
                        if (!cf_ok(cf_parse_u64(optarg, 1, 3600, &n))) {
                                return usage_error("--header-timeout wants seconds from 1 to "
                                                   "3600",
                                                   optarg);
                        }
                        cas.cfg.header_timeout = (unsigned)n;
                        break;
                case 260:
                        if (!cf_ok(cf_parse_u64(optarg, 1, 1000000, &n))) {
                                return usage_error("--max-connections wants a number from 1 to "
                                                   "1000000",
                                                   optarg);
                        }
                        cas.cfg.max_connections = (unsigned)n;
                        break;
                case 261:
                        if (!cf_ok(cf_parse_u64(optarg, 1, 3600, &n))) {
                                return usage_error("--refusal-window wants seconds from 1 to "
                                                   "3600",
                                                   optarg);
                        }
                        cas_audit_set_refusal_window((unsigned)n);
                        break;
                case 's': {
                        enum cas_sealing_kind kind;
                        if (!cf_ok(cas_sealing_kind_parse(optarg, &kind))) {
                                return usage_error("--sealing wants sim, snp or sgx", optarg);
                        }
                        cas.cfg.sealing = (int)kind;
                        break;
                }
                case 'S':
                        cas.cfg.sealing_path = optarg;
                        break;
                case 'r':
                        if (n_recovery >= CAS_RECOVERY_KEYS_MAX) {
                                return usage_error("too many --recovery-key", NULL);
                        }
                        recovery_files[n_recovery++] = optarg;
                        break;
                case 'k':
                        threshold = optarg;
                        break;
                case 'T':
                        if (cas.n_trusted_sim_keys >= CAS_TRUSTED_SIM_KEYS_MAX - 1 ||
                            !cf_ok(cf_hex_decode(cf_slice_str(optarg),
                                                 cas.trusted_sim_keys[cas.n_trusted_sim_keys],
                                                 32))) {
                                return usage_error("--trust-sim-key wants 64 hex digits (at most "
                                                   "15 keys)",
                                                   optarg);
                        }
                        cas.n_trusted_sim_keys++;
                        break;
                case 'h':
                        fputs(g_usage, stdout);
                        return 0;
                case 'V':
                        printf("cofferd %s\n", COFFER_VERSION);
                        return 0;
                default:
                        return usage_error("invalid option", NULL);
                }
        }
        if (optind < argc && strcmp(argv[optind], "init") == 0) {
                init = true;
                optind++;
        }
        if (optind < argc) {
                return usage_error("unexpected argument", argv[optind]);
        }
        if (!init && (n_recovery > 0 || threshold != NULL)) {
                return usage_error("--recovery-key and --recovery-threshold belong to 'cofferd "
                                   "init'",
                                   NULL);
        }
        snprintf(cas.cfg.listen_host, sizeof(cas.cfg.listen_host), "127.0.0.1");
        cas.cfg.listen_port = 8443;
        if (config != NULL && !cf_ok(load_config(config, &cas.cfg, &level))) {
                fprintf(stderr, "cofferd: cannot use the configuration file '%s'\n", config);
                return 2;
        }
        if (data_dir != NULL) {
                snprintf(cas.cfg.data_dir, sizeof(cas.cfg.data_dir), "%s", data_dir);
        }
        if (listen != NULL && !cf_ok(parse_listen(listen, &cas.cfg))) {
                return usage_error("--listen wants ADDRESS:PORT", listen);
        }
        if (threads != NULL) {
                if (!cf_ok(cf_parse_u64(threads, 1, CAS_MAX_THREADS, &n))) {
                        return usage_error("--threads wants a number from 1 to 64", threads);
                }
                cas.cfg.threads = (int)n;
        }
        if (log_level != NULL && !cf_ok(parse_level(log_level, &level))) {
                return usage_error("--log-level wants error, warning, info or debug", log_level);
        }
        if (cas.cfg.data_dir[0] == '\0') {
                return usage_error("--data-dir is required", NULL);
        }
        cf_log_setup("cofferd", level);
        json_set_alloc_funcs(cf_wiping_malloc, cf_wiping_free);
        if (!cf_ok(cf_crypto_init()) || !cf_ok(cf_harden_process())) {
                fprintf(stderr, "cofferd: cannot initialise cryptography or harden the process\n");
                return 1;
        }
        cas.started_at = (int64_t)time(NULL);
        {
                char err[256] = "";
                if (!cf_ok(provider_choose(cas.cfg.tee ? cas.cfg.tee : "sim", cas.cfg.tsm_root,
                                           cas.cfg.attestation_root, &cas.tee, err,
                                           sizeof(err)))) {
                        return usage_error("--tee", err);
                }
        }
        if (cas.tee.kind == PROVIDER_SIM || cas.cfg.sealing <= CAS_SEALING_SIM) {
                cf_log_warning("TEE: sim mode. %s%s: this protects nothing against a local root. "
                               "Use it for development and tests only.",
                               cas.tee.kind == PROVIDER_SIM
                                   ? "cofferd's evidence is signed by a software key"
                                   : "",
                               cas.cfg.sealing > CAS_SEALING_SIM
                                   ? ""
                                   : (cas.tee.kind == PROVIDER_SIM
                                          ? " and its state is sealed by a key file"
                                          : "cofferd's state is sealed by a key file"));
        }
        if (init) {
                return run_init(&cas, recovery_files, n_recovery, threshold);
        }
        s = cas_datadir_open(&cas);
        if (!cf_ok(s)) {
                fprintf(stderr, "cofferd: cannot open the data directory '%s': %s\n",
                        cas.cfg.data_dir, cf_strerror(s));
                return 1;
        }
        if (!cas.recovery_mode) {
                s = cas_audit_init(&cas);
                if (!cf_ok(s)) {
                        fprintf(stderr, "cofferd: cannot open the audit chain: %s\n",
                                cf_strerror(s));
                        return 1;
                }
        }
        printf("cofferd key id: %s%s\n", cas.key_id,
               cas.tls_temporary ? " (temporary: recovery mode)" : "");
        fflush(stdout);
        s = cas_listen(&cas);
        while (cf_ok(s)) {
                if (cas.recovery_mode && cas.recovery == NULL) {
                        s = cas_recovery_begin(&cas);
                        if (!cf_ok(s)) {
                                break;
                        }
                }
                s = cas_serve(&cas, &mode_changed);
                if (!cf_ok(s) || !mode_changed) {
                        break;
                }
                /* Recovery finished: the data key is sealed to this machine now. */
                cas_recovery_end(&cas);
                s = cas_datadir_unlock(&cas);
                if (cf_ok(s)) {
                        s = cas_audit_init(&cas); /* the store is readable now */
                }
        }
        cas_recovery_end(&cas);
        cas_audit_done();
        SSL_CTX_free(cas.tls);
        cas.data_key = cf_secret_free(cas.data_key);
        cf_pkey_free(cas.sim_platform_key);
        return cf_ok(s) ? 0 : 1;
}
