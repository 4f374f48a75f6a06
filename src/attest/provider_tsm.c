/* configfs-tsm evidence provider (TDX and SEV-SNP guests, Linux >= 6.7).
 *
 * The interface is specified in the kernel's Documentation/ABI/testing/configfs-tsm-report
 * (named configfs-tsm before Linux 6.10): mkdir of an entry under
 * /sys/kernel/config/tsm/report makes the kernel create its attributes (inblob, outblob,
 * auxblob, provider, generation, privlevel, ...); up to 64 bytes written to inblob become the
 * report data; reading outblob returns the quote or report generated from it, in the format
 * the provider attribute names ("tdx_guest": a TDX quote; "sev_guest": a raw SEV-SNP
 * ATTESTATION_REPORT, whose certificate table, if the host supplies one, is in auxblob).
 * generation increments on every write to inblob or an option: the ABI asks user space to
 * read it before writing and to check, after reading outblob, that it moved by exactly the
 * number of its own writes, since another process may write to the same entry. We create a
 * uniquely named entry per request and still check, retrying a bounded number of times. */
#include "attest/provider.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/provider_internal.h"
#include "base/codec.h"
#include "base/log.h"
#include "crypto/crypto.h"

#define TSM_NAME_MAX     64
#define TSM_POLL_STEP_MS 2

static const char g_missing_hint[] =
    " (configfs-tsm needs Linux 6.7 or later in a TDX or SEV-SNP guest, with the tdx_guest or "
    "sev_guest driver loaded and configfs mounted on /sys/kernel/config)";

/* Every attribute name of the ABI: the only names removed from an emulated entry. */
static const char *const g_attributes[] = {
    "inblob",
    "outblob",
    "auxblob",
    "manifestblob",
    "provider",
    "generation",
    "privlevel",
    "privlevel_floor",
    "service_provider",
    "service_guid",
    "service_manifest_version",
};

static cf_status read_generation(int dfd, const char *dir, uint64_t *ret, char *err,
                                 size_t err_size)
{
        char text[PROVIDER_ATTR_MAX + 1], shown[PROVIDER_ATTR_MAX + 8];

        TRY(provider_read_text_at(dfd, dir, "generation", text, sizeof(text), err, err_size));
        if (!cf_ok(cf_parse_u64(text, 0, UINT64_MAX - 1, ret))) {
                cf_log_escape(text, strlen(text), shown, sizeof(shown));
                return provider_fail(cf_fail(CF_E_MALFORMED), err, err_size,
                                     "%s/generation is not a decimal number: %s", dir, shown);
        }
        return CF_OK;
}

/* configfs creates an entry's attributes with the directory; an emulation may lag. */
static cf_status wait_populated(int dfd, const char *dir, char *err, size_t err_size)
{
        const struct timespec step = {0, TSM_POLL_STEP_MS * 1000000L};
        struct stat st;

        for (unsigned waited = 0;; waited += TSM_POLL_STEP_MS) {
                if (fstatat(dfd, "generation", &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        return CF_OK;
                }
                if (errno != ENOENT) {
                        int e = errno;
                        return provider_fail(cf_fail_errno(e), err, err_size,
                                             "cannot look up %s/generation: %s", dir, strerror(e));
                }
                if (waited >= PROVIDER_TSM_POPULATE_WAIT_MS) {
                        return provider_fail(cf_fail(CF_E_TIMEOUT), err, err_size,
                                             "%s was created but not populated: no generation "
                                             "attribute after %u ms (is this configfs-tsm?)",
                                             dir, (unsigned)PROVIDER_TSM_POPULATE_WAIT_MS);
                }
                nanosleep(&step, NULL);
        }
}

static cf_status map_provider(const char *dir, const char *name, enum attest_platform *ret,
                              char *err, size_t err_size)
{
        char shown[PROVIDER_ATTR_MAX + 8];

        if (strcmp(name, "tdx_guest") == 0) {
                *ret = ATTEST_TDX;
                return CF_OK;
        }
        if (strcmp(name, "sev_guest") == 0) {
                *ret = ATTEST_SNP;
                return CF_OK;
        }
        cf_log_escape(name, strlen(name), shown, sizeof(shown));
        return provider_fail(cf_fail(CF_E_UNSUPPORTED), err, err_size,
                             "unknown configfs-tsm provider %s in %s/provider (known: tdx_guest "
                             "for TDX, sev_guest for SEV-SNP)",
                             shown, dir);
}

/* One report on the entry open at dfd (path dir). Sets *raced when generation shows another
 * writer. */
static cf_status exchange(int dfd, const char *dir,
                          const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                          struct attest_evidence *ev, bool *raced, char *err, size_t err_size)
{
        char provider[PROVIDER_ATTR_MAX + 1];
        uint64_t before, after;
        cf_status s;

        TRY(wait_populated(dfd, dir, err, err_size));
        TRY(read_generation(dfd, dir, &before, err, err_size));
        TRY(provider_write_at(dfd, dir, "inblob", report_data, PROVIDER_REPORT_DATA_SIZE, err,
                              err_size));
        TRY(provider_read_at(dfd, dir, "outblob", PROVIDER_EVIDENCE_MAX, &ev->bytes, err,
                             err_size));
        if (ev->bytes.size == 0) {
                return provider_fail(cf_fail(CF_E_EVIDENCE), err, err_size,
                                     "%s/outblob is empty: the TEE returned no report", dir);
        }
        TRY(provider_read_text_at(dfd, dir, "provider", provider, sizeof(provider), err, err_size));
        TRY(map_provider(dir, provider, &ev->platform, err, err_size));
        if (ev->platform == ATTEST_SNP) {
                /* Optional: present only on kernels with auxblob and empty without host
                 * certificates. */
                s = provider_read_at(dfd, dir, "auxblob", PROVIDER_AUX_MAX, &ev->aux, err,
                                     err_size);
                if (s.code == CF_E_NOT_FOUND) {
                        cf_buf_reset(&ev->aux);
                        s = CF_OK;
                }
                TRY(s);
        }
        TRY(read_generation(dfd, dir, &after, err, err_size));
        if (after != before + 1) {
                *raced = true;
                return provider_fail(cf_fail(CF_E_CONFLICT), err, err_size,
                                     "%s/generation went from %llu to %llu across our one write: "
                                     "another process wrote to the report entry",
                                     dir, (unsigned long long)before, (unsigned long long)after);
        }
        return CF_OK;
}

/* Removes the entry name under rootfd (dfd is the entry itself). */
static cf_status remove_entry(int rootfd, int dfd, const char *name, const char *path, char *err,
                              size_t err_size)
{
        int e;

        if (unlinkat(rootfd, name, AT_REMOVEDIR) == 0) {
                return CF_OK;
        }
        if (errno == ENOTEMPTY || errno == EEXIST) {
                /* configfs removes an item's attributes with the item; an emulated tree in an
                 * ordinary file system (tests, tooling) needs its attribute files removed
                 * first. Only the ABI's names are removed, inside our own entry. */
                for (size_t i = 0; i < sizeof(g_attributes) / sizeof(g_attributes[0]); i++) {
                        (void)unlinkat(dfd, g_attributes[i], 0); /* absent ones are fine */
                }
                if (unlinkat(rootfd, name, AT_REMOVEDIR) == 0) {
                        return CF_OK;
                }
        }
        e = errno;
        return provider_fail(cf_fail_errno(e), err, err_size,
                             "cannot remove the report entry %s: %s", path, strerror(e));
}

static cf_status make_name(char *out, size_t out_size)
{
        uint8_t rnd[8];
        char hex[2 * sizeof(rnd) + 1];
        int n;

        TRY(cf_random(rnd, sizeof(rnd)));
        cf_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex));
        n = snprintf(out, out_size, "coffer-%ld-%s", (long)getpid(), hex);
        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

/* Creates an entry, runs one exchange and removes the entry on every path. */
static cf_status attempt(int rootfd, const char *root,
                         const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                         struct attest_evidence *ev, bool *raced, char *err, size_t err_size)
{
        char name[TSM_NAME_MAX], path[PATH_MAX], rerr[PATH_MAX + 128];
        cf_status s, r;
        int n, dfd;

        TRY(make_name(name, sizeof(name)));
        n = snprintf(path, sizeof(path), "%s/%s", root, name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
                return provider_fail(cf_fail(CF_E_LIMIT), err, err_size,
                                     "configfs-tsm path too long: %s", root);
        }
        if (mkdirat(rootfd, name, 0700) < 0) {
                int e = errno;
                return provider_fail(cf_fail_errno(e), err, err_size,
                                     "cannot create the report entry %s: %s%s", path, strerror(e),
                                     e == EACCES || e == EPERM ? " (configfs-tsm needs root)" : "");
        }
        dfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0) {
                int e = errno;
                (void)unlinkat(rootfd, name, AT_REMOVEDIR); /* best effort; the error says why */
                return provider_fail(cf_fail_errno(e), err, err_size, "cannot open %s: %s", path,
                                     strerror(e));
        }
        s = exchange(dfd, path, report_data, ev, raced, err, err_size);
        r = remove_entry(rootfd, dfd, name, path, rerr, sizeof(rerr));
        close(dfd);
        if (cf_ok(s) && !cf_ok(r)) {
                return provider_fail(r, err, err_size, "%s", rerr);
        }
        return s;
}

cf_status provider_tsm_get(const char *root,
                           const uint8_t report_data[static PROVIDER_REPORT_DATA_SIZE],
                           struct attest_evidence *out, char *err, size_t err_size)
{
        const char *dir = root != NULL ? root : PROVIDER_TSM_ROOT_DEFAULT;
        struct attest_evidence ev;
        cf_status s = CF_OK;
        int rootfd;

        TRY(provider_open_root(dir, "configfs-tsm", g_missing_hint, &rootfd, err, err_size));
        for (unsigned i = 0; i < PROVIDER_TSM_ATTEMPTS; i++) {
                bool raced = false;

                attest_evidence_init(&ev);
                s = attempt(rootfd, dir, report_data, &ev, &raced, err, err_size);
                if (cf_ok(s)) {
                        close(rootfd);
                        *out = ev;
                        return CF_OK;
                }
                attest_evidence_done(&ev);
                if (!raced) {
                        break;
                }
                cf_log_debug("configfs-tsm generation race at %s, attempt %u of %u", dir, i + 1,
                             (unsigned)PROVIDER_TSM_ATTEMPTS);
        }
        close(rootfd);
        return s;
}
