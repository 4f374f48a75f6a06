/* The data directory: cofferd's TLS identity, the sealing key (sim: a key file) and the
 * store's data key wrapped by it. Created on first start, loaded afterwards.
 *
 *   tls.crt           cofferd's self-signed certificate; the key id is SHA-256 of its SPKI
 *   tls.key.sealed    its TLS private key, sealed under the sealing key (tls_key.h)
 *   tls.key.recovery  the same key sealed under the data key: restores the identity after a
 *                     k-of-n recovery on a machine with another sealing key
 *   tls.key           (old data directories) the key as plain PEM: migrated at start
 *   sealing.key       sim sealing key (32 bytes, 0600): protects nothing against root
 *   datakey.sealed    the store data key, AES-256-GCM under the sealing key
 *   store.db          the SQLite store (every value sealed under the data key)
 *
 * Order at start: the sealing key, then the data key (or recovery mode), then the TLS
 * identity, whose recovery copy needs the data key, then the store's freshness, whose anchor
 * is named after the key id. */
#include "cas/cas.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "cas/recovery.h"
#include "cas/sealing.h"
#include "cas/tls_key.h"
#include "crypto/tls.h"
#include "store/keywrap.h"
#include "store/store.h"

#define CAS_CERT_DAYS 3650
#define CRT_MAX       (1 << 16)
#define PLAIN_KEY_MAX (1 << 16)
#define DATADIR_PATH  1100

#define F_CRT      "tls.crt"
#define F_SEALED   "tls.key.sealed"
#define F_RECOVERY "tls.key.recovery"
#define F_PLAIN    "tls.key"

static cf_status path_in(const struct cas *cas, const char *name, char *out, size_t out_size)
{
        int n = snprintf(out, out_size, "%s/%s", cas->cfg.data_dir, name);

        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

static bool exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

/* ---- TLS identity ------------------------------------------------------------------- */

struct tls_files {
        char crt[DATADIR_PATH], sealed[DATADIR_PATH], recovery[DATADIR_PATH], plain[DATADIR_PATH];
};

static cf_status tls_files(const struct cas *cas, struct tls_files *f)
{
        TRY(path_in(cas, F_CRT, f->crt, sizeof(f->crt)));
        TRY(path_in(cas, F_SEALED, f->sealed, sizeof(f->sealed)));
        TRY(path_in(cas, F_RECOVERY, f->recovery, sizeof(f->recovery)));
        return path_in(cas, F_PLAIN, f->plain, sizeof(f->plain));
}

/* Serves with this certificate and key from now on: the key id from the certificate, a new
 * SSL_CTX (which checks that the key is the certificate's) replacing the previous one. Only
 * called while no worker runs (at start, and between serving loops). */
static cf_status tls_install(struct cas *cas, struct cf_slice crt_pem, const struct cf_pkey *key,
                             bool temporary)
{
        char kid[CF_KEY_ID_HEX];
        uint8_t raw[CF_SHA256_SIZE];
        SSL_CTX *ctx = NULL;

        TRY(cf_x509_pem_key_id(crt_pem, kid));
        TRY(cf_hex_decode(cf_slice_make(kid, CF_KEY_ID_HEX - 1), raw, sizeof(raw)));
        TRY(cf_tls_server_ctx(crt_pem, key, true, &ctx));
        SSL_CTX_free(cas->tls);
        cas->tls = ctx;
        memcpy(cas->key_id, kid, sizeof(kid));
        memcpy(cas->key_id_raw, raw, sizeof(raw));
        cas->tls_temporary = temporary;
        return CF_OK;
}

static cf_status read_crt(const char *path, struct cf_buf *crt, uint8_t raw[static 32])
{
        char kid[CF_KEY_ID_HEX];

        TRY(cf_read_file(path, CRT_MAX, crt));
        TRY(cf_x509_pem_key_id(cf_buf_slice(crt), kid));
        return cf_hex_decode(cf_slice_make(kid, CF_KEY_ID_HEX - 1), raw, 32);
}

static cf_status write_sealed(const char *path, enum cas_tls_key_purpose purpose,
                              const uint8_t root[static 32], const uint8_t raw[static 32],
                              struct cf_slice pem)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf out;
        cf_status s;

        cf_buf_init(&out, CAS_TLS_KEY_FILE_MAX, false);
        s = cas_tls_key_seal(purpose, root, raw, pem, &out);
        if (cf_ok(s)) {
                s = cf_write_file_atomic(path, out.ptr, out.size, 0600);
        }
        return s;
}

static cf_status read_sealed(const char *path, enum cas_tls_key_purpose purpose,
                             const uint8_t root[static 32], const uint8_t raw[static 32],
                             struct cf_buf *pem)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf file;

        cf_buf_init(&file, CAS_TLS_KEY_FILE_MAX, false);
        TRY(cf_read_file(path, CAS_TLS_KEY_FILE_MAX, &file));
        return cas_tls_key_unseal(purpose, root, raw, cf_buf_slice(&file), pem);
}

static cf_status fsync_dir(const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc;

        TRY_ERRNO(fd);
        rc = fsync(fd);
        close(fd);
        TRY_ERRNO(rc);
        return CF_OK;
}

/* Overwrites a plain key file with zeros, makes that durable, then unlinks it: a later look
 * at the disk blocks (or at a file system that keeps the old inode) finds zeros. */
static cf_status destroy_plain_key(const struct cas *cas, const char *path)
{
        static const uint8_t zeros[4096];
        struct stat st;
        off_t left;
        int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        cf_status s = CF_OK;

        TRY_ERRNO(fd);
        if (fstat(fd, &st) != 0) {
                s = cf_fail_errno(errno);
        }
        for (left = st.st_size; cf_ok(s) && left > 0;) {
                size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
                s = cf_write_all(fd, zeros, n);
                left -= (off_t)n;
        }
        if (cf_ok(s) && fsync(fd) != 0) {
                s = cf_fail_errno(errno);
        }
        close(fd);
        TRY(s);
        TRY_ERRNO(unlink(path));
        return fsync_dir(cas->cfg.data_dir);
}

/* The recovery copy must open under the data key and hold the same key; a missing or stale
 * one is (re)written from the key in hand. */
static cf_status ensure_recovery_copy(const struct tls_files *f, const uint8_t data_key[static 32],
                                      const uint8_t raw[static 32], struct cf_slice pem)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf copy;
        cf_status s;

        cf_buf_init(&copy, CAS_TLS_KEY_PEM_MAX, true);
        if (exists(f->recovery)) {
                s = read_sealed(f->recovery, CAS_TLS_KEY_RECOVERY, data_key, raw, &copy);
                if (cf_ok(s) && copy.size == pem.size && cf_ct_eq(copy.ptr, pem.ptr, pem.size)) {
                        return CF_OK;
                }
                cf_log_warning("'%s' does not hold this TLS key (%s); rewriting it", f->recovery,
                               cf_ok(s) ? "another key" : cf_strerror(s));
        }
        return write_sealed(f->recovery, CAS_TLS_KEY_RECOVERY, data_key, raw, pem);
}

/* A new data directory: a new key, sealed twice, then its certificate. */
static cf_status tls_create(struct cas *cas, const struct tls_files *f,
                            const uint8_t seal[static 32], const uint8_t data_key[static 32])
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        CF_CLEANUP(cf_buf_done) struct cf_buf pem;
        CF_CLEANUP(cf_buf_done) struct cf_buf crt;
        uint8_t raw[CF_SHA256_SIZE];

        cf_buf_init(&pem, CAS_TLS_KEY_PEM_MAX, true);
        cf_buf_init(&crt, CRT_MAX, false);
        TRY(cf_pkey_generate(CF_KEY_P256, &key));
        TRY(cf_pkey_private_pem(key, &pem));
        TRY(cf_x509_self_signed(key, "cofferd", CAS_CERT_DAYS, &crt));
        TRY(tls_install(cas, cf_buf_slice(&crt), key, false));
        memcpy(raw, cas->key_id_raw, sizeof(raw));
        TRY(write_sealed(f->sealed, CAS_TLS_KEY_SEALED, seal, raw, cf_buf_slice(&pem)));
        TRY(write_sealed(f->recovery, CAS_TLS_KEY_RECOVERY, data_key, raw, cf_buf_slice(&pem)));
        return cf_write_file_atomic(f->crt, crt.ptr, crt.size, 0644);
}

/* Recovery mode without the original key: a fresh key that lives only in memory. Clients
 * cannot know its key id in advance; they verify it by cofferd's attestation (which binds
 * it, and binds an all-zero audit key in recovery mode) or take it from the log. */
static cf_status tls_temporary(struct cas *cas)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        CF_CLEANUP(cf_buf_done) struct cf_buf crt;

        cf_buf_init(&crt, CRT_MAX, false);
        TRY(cf_pkey_generate(CF_KEY_P256, &key));
        TRY(cf_x509_self_signed(key, "cofferd recovery", 1, &crt));
        TRY(tls_install(cas, cf_buf_slice(&crt), key, true));
        cf_log_warning("recovery mode: serving with a TEMPORARY TLS identity, key id %s; "
                       "cofferd takes its original identity back once the data key is "
                       "recovered",
                       cas->key_id);
        return CF_OK;
}

static cf_status install_pem(struct cas *cas, const struct cf_buf *crt, const struct cf_buf *pem)
{
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;

        TRY(cf_pkey_from_pem(cf_buf_slice(pem), true, &key));
        return tls_install(cas, cf_buf_slice(crt), key, false);
}

/* An old data directory's plain tls.key: sealed (both copies) first, then destroyed. */
static cf_status migrate_plain(struct cas *cas, const struct tls_files *f,
                               const uint8_t seal[static 32], const uint8_t data_key[static 32],
                               const uint8_t raw[static 32], const struct cf_buf *pem)
{
        TRY(write_sealed(f->sealed, CAS_TLS_KEY_SEALED, seal, raw, cf_buf_slice(pem)));
        TRY(write_sealed(f->recovery, CAS_TLS_KEY_RECOVERY, data_key, raw, cf_buf_slice(pem)));
        TRY(destroy_plain_key(cas, f->plain));
        cf_log_info("migrated the plain TLS key '%s' to '%s' (sealed) and '%s'; the plain file "
                    "was overwritten with zeros and removed",
                    f->plain, f->sealed, f->recovery);
        return CF_OK;
}

/* Loads (or creates, or migrates) the TLS identity. data_key is NULL in recovery mode. */
static cf_status tls_identity_in(struct cas *cas, const struct tls_files *f,
                                 const uint8_t seal[static 32], const uint8_t *data_key,
                                 bool *created)
{
        CF_CLEANUP(cf_buf_done) struct cf_buf crt;
        CF_CLEANUP(cf_buf_done) struct cf_buf pem;
        uint8_t raw[CF_SHA256_SIZE];
        bool have_sealed = exists(f->sealed), have_recovery = exists(f->recovery),
             have_plain = exists(f->plain);
        cf_status s;

        cf_buf_init(&crt, CRT_MAX, false);
        cf_buf_init(&pem, PLAIN_KEY_MAX, true);
        if (!exists(f->crt)) {
                if (have_sealed || have_recovery || have_plain || data_key == NULL) {
                        cf_log_err("'%s' is missing in a data directory that was set up "
                                   "already: restore it from a backup (a new identity is never "
                                   "made silently)",
                                   f->crt);
                        return cf_fail(CF_E_NOT_FOUND);
                }
                *created = true;
                return tls_create(cas, f, seal, data_key);
        }
        s = read_crt(f->crt, &crt, raw);
        if (!cf_ok(s)) {
                cf_log_err("cannot read the certificate '%s': %s", f->crt, cf_strerror(s));
                return s;
        }
        if (have_sealed) {
                s = read_sealed(f->sealed, CAS_TLS_KEY_SEALED, seal, raw, &pem);
                if (!cf_ok(s) && data_key == NULL && s.code == CF_E_TAMPERED) {
                        /* Expected on a new machine: the key comes back with the data key. */
                        if (!have_recovery) {
                                cf_log_warning("'%s' is missing: after the recovery cofferd "
                                               "cannot take its original TLS identity back",
                                               f->recovery);
                        }
                        if (!have_plain) {
                                return tls_temporary(cas);
                        }
                        have_sealed = false; /* an old plain key is still the original */
                } else if (!cf_ok(s)) {
                        cf_log_err("cannot unseal cofferd's TLS key '%s': %s (%s); refusing to "
                                   "start rather than take another identity",
                                   f->sealed, cf_strerror(s),
                                   s.code == CF_E_CONFLICT
                                       ? "it was sealed for another certificate than "
                                         "tls.crt"
                                       : "the file was modified, or sealed by another "
                                         "sealing key");
                        return s;
                }
        }
        if (have_sealed) {
                TRY(install_pem(cas, &crt, &pem));
                if (data_key != NULL) {
                        TRY(ensure_recovery_copy(f, data_key, raw, cf_buf_slice(&pem)));
                }
                if (have_plain && data_key != NULL) {
                        /* A migration that stopped after sealing. */
                        TRY(destroy_plain_key(cas, f->plain));
                        cf_log_info("removed the left-over plain TLS key '%s'", f->plain);
                }
                return CF_OK;
        }
        if (have_plain) {
                CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
                CF_CLEANUP(cf_buf_done) struct cf_buf pkcs8;

                /* Sealed as PKCS#8 whatever PEM flavour the old file used. */
                cf_buf_init(&pkcs8, CAS_TLS_KEY_PEM_MAX, true);
                s = cf_read_file(f->plain, PLAIN_KEY_MAX, &pem);
                if (cf_ok(s)) {
                        s = cf_pkey_from_pem(cf_buf_slice(&pem), true, &key);
                }
                if (cf_ok(s)) {
                        s = tls_install(cas, cf_buf_slice(&crt), key, false);
                }
                if (cf_ok(s)) {
                        s = cf_pkey_private_pem(key, &pkcs8);
                }
                if (!cf_ok(s)) {
                        cf_log_err("cannot use the TLS key '%s': %s", f->plain, cf_strerror(s));
                        return s;
                }
                if (data_key == NULL) {
                        cf_log_warning("the plain TLS key '%s' is sealed once the data key is "
                                       "recovered",
                                       f->plain);
                        return CF_OK;
                }
                return migrate_plain(cas, f, seal, data_key, raw, &pkcs8);
        }
        if (have_recovery && data_key != NULL) {
                /* tls.key.sealed was removed: the data key still opens the recovery copy. */
                s = read_sealed(f->recovery, CAS_TLS_KEY_RECOVERY, data_key, raw, &pem);
                if (cf_ok(s)) {
                        s = install_pem(cas, &crt, &pem);
                }
                if (cf_ok(s)) {
                        s = write_sealed(f->sealed, CAS_TLS_KEY_SEALED, seal, raw,
                                         cf_buf_slice(&pem));
                }
                if (!cf_ok(s)) {
                        cf_log_err("cannot restore the TLS key from '%s': %s", f->recovery,
                                   cf_strerror(s));
                        return s;
                }
                cf_log_warning("'%s' was missing: resealed cofferd's TLS key from '%s'", f->sealed,
                               f->recovery);
                return CF_OK;
        }
        if (data_key == NULL) {
                return tls_temporary(cas);
        }
        cf_log_err("'%s' has no private key (neither %s nor %s nor %s): restore them from a "
                   "backup (a new identity is never made silently)",
                   f->crt, F_SEALED, F_RECOVERY, F_PLAIN);
        return cf_fail(CF_E_NOT_FOUND);
}

static cf_status tls_identity(struct cas *cas, const uint8_t seal[static 32],
                              const uint8_t *data_key, bool *created)
{
        struct tls_files f;
        cf_status s;

        TRY(tls_files(cas, &f));
        s = tls_identity_in(cas, &f, seal, data_key, created);
        if (!cf_ok(s)) {
                cf_log_err("cannot set up the TLS identity in '%s': %s", cas->cfg.data_dir,
                           cf_strerror(s));
        }
        return s;
}

/* ---- sealing and data key --------------------------------------------------------------- */

static cf_status sealing_key(struct cas *cas, uint8_t out[static 32])
{
        static bool warned; /* once per process: unlock runs again after a recovery */
        char path[DATADIR_PATH], err[512] = "";
        enum cas_sealing_kind kind = cas->cfg.sealing ? (enum cas_sealing_kind)cas->cfg.sealing
                                                      : CAS_SEALING_SIM;
        const char *where = cas->cfg.sealing_path;
        cf_status s;

        if (kind == CAS_SEALING_SIM) {
                TRY(path_in(cas, "sealing.key", path, sizeof(path)));
                where = path;
                if (!warned) {
                        cf_log_warning("sealing: sim provider: the data key and cofferd's TLS "
                                       "private key are sealed by a key file in the data "
                                       "directory; this protects nothing against a local root");
                        warned = true;
                }
        }
        s = cas_sealing_key(kind, where, NULL, out, err, sizeof(err));
        if (!cf_ok(s)) {
                cf_log_err("sealing (%s): %s", cas_sealing_kind_name(kind), err);
        }
        return s;
}

bool cas_datadir_initialised(const struct cas *cas)
{
        char path[DATADIR_PATH];

        return cf_ok(path_in(cas, "datakey.sealed", path, sizeof(path))) && exists(path);
}

/* After a recovery the original TLS key comes back from its copy under the data key and is
 * sealed to this machine; tls.key.sealed is written before datakey.sealed, so a crash in
 * between leaves cofferd in recovery mode, where it started. */
static cf_status restore_tls_key(struct cas *cas, const uint8_t seal[static 32],
                                 const uint8_t data_key[static 32])
{
        CF_CLEANUP(cf_buf_done) struct cf_buf crt;
        CF_CLEANUP(cf_buf_done) struct cf_buf pem;
        uint8_t raw[CF_SHA256_SIZE];
        struct tls_files f;
        cf_status s;

        TRY(tls_files(cas, &f));
        if (!exists(f.recovery)) {
                if (!exists(f.plain)) {
                        cf_log_err("recovery: '%s' is missing: cofferd's original TLS key "
                                   "cannot be restored",
                                   f.recovery);
                }
                return CF_OK; /* a plain tls.key is migrated at unlock */
        }
        cf_buf_init(&crt, CRT_MAX, false);
        cf_buf_init(&pem, CAS_TLS_KEY_PEM_MAX, true);
        s = read_crt(f.crt, &crt, raw);
        if (cf_ok(s)) {
                s = read_sealed(f.recovery, CAS_TLS_KEY_RECOVERY, data_key, raw, &pem);
        }
        if (cf_ok(s)) {
                s = write_sealed(f.sealed, CAS_TLS_KEY_SEALED, seal, raw, cf_buf_slice(&pem));
        }
        if (!cf_ok(s)) {
                cf_log_err("recovery: cannot restore cofferd's TLS key from '%s': %s", f.recovery,
                           cf_strerror(s));
                return s;
        }
        cf_log_info("recovery: cofferd's original TLS key was sealed to this machine");
        return CF_OK;
}

cf_status cas_datadir_store_data_key(struct cas *cas, const uint8_t key[static 32])
{
        uint8_t seal[32];
        CF_WIPE_ON_EXIT(seal);
        char path[DATADIR_PATH];
        struct cf_buf wrapped;
        cf_status s;

        TRY(sealing_key(cas, seal));
        TRY(path_in(cas, "datakey.sealed", path, sizeof(path)));
        /* A TLS key that cannot be restored does not block the data key: cofferd then
         * refuses to start with a clear error instead of changing its identity. */
        cf_ignore(restore_tls_key(cas, seal, key));
        cf_buf_init(&wrapped, 1024, false);
        s = store_wrap_key(seal, key, &wrapped);
        if (cf_ok(s)) {
                s = cf_write_file_atomic(path, wrapped.ptr, wrapped.size, 0600);
        }
        cf_buf_done(&wrapped);
        return s;
}

static cf_status data_key(struct cas *cas, const uint8_t seal[static 32])
{
        char path[DATADIR_PATH];
        struct cf_buf wrapped;
        cf_status s;

        TRY(path_in(cas, "datakey.sealed", path, sizeof(path)));
        TRY(cf_secret_new(32, &cas->data_key));
        cf_buf_init(&wrapped, 1024, false);
        if (!exists(path)) {
                s = cf_random(cas->data_key->ptr, 32);
                if (cf_ok(s)) {
                        s = store_wrap_key(seal, cas->data_key->ptr, &wrapped);
                }
                if (cf_ok(s)) {
                        s = cf_write_file_atomic(path, wrapped.ptr, wrapped.size, 0600);
                }
        } else {
                s = cf_read_file(path, 1024, &wrapped);
                if (cf_ok(s)) {
                        s = store_unwrap_key(seal, cf_buf_slice(&wrapped), cas->data_key->ptr);
                }
                if (s.code == CF_E_TAMPERED && cas_recovery_available(cas)) {
                        cf_log_warning("the sealing key of this machine cannot unwrap the data "
                                       "key (new hardware or a new cofferd measurement): "
                                       "RECOVERY MODE, waiting for recovery shares "
                                       "('coffer cas recover')");
                        cas->recovery_mode = true;
                        cas->data_key = cf_secret_free(cas->data_key);
                        cf_buf_done(&wrapped);
                        return CF_OK;
                }
                if (!cf_ok(s)) {
                        cf_log_err("cannot unwrap the data key '%s': %s (wrong sealing key, or the "
                                   "file was modified)",
                                   path, cf_strerror(s));
                }
        }
        cf_buf_done(&wrapped);
        return s;
}

static cf_status self_measurement(struct cas *cas)
{
        struct cf_buf exe;
        cf_status s;

        cf_buf_init(&exe, 256u << 20, false);
        s = cf_read_file("/proc/self/exe", 256u << 20, &exe);
        if (cf_ok(s)) {
                struct cf_slice part = cf_buf_slice(&exe);
                s = cf_sha256(&part, 1, cas->self_measurement);
        }
        cf_buf_done(&exe);
        return s;
}

/* Checks the store against its freshness anchor (refusing an older copy), before any worker
 * opens it. The default anchor lives in the sim platform directory, outside the data dir. */
static cf_status freshness(struct cas *cas)
{
        char dir[1024], path[1200], err[512] = "";
        struct store *st = NULL;
        uint8_t digest[32];
        uint64_t version = 0;
        cf_status s;

        TRY(sim_platform_dir(dir, sizeof(dir)));
        snprintf(path, sizeof(path), "%s/anchor-%.16s.json", dir, cas->key_id);
        s = cas_anchor_configure(&cas->anchor, cas->cfg.anchor, path, cas->key_id);
        if (!cf_ok(s)) {
                cf_log_err("--anchor: expected 'none', 'file:/absolute/path', 'tpm:TCTI' or "
                           "'tpm@0xINDEX:TCTI'");
                return s;
        }
        cas->anchor.reset = cas->cfg.anchor_reset;
        TRY(store_open_sqlite(cas->store_path, cas->data_key->ptr, &st));
        s = store_state(st, &version, digest);
        store_close(st);
        if (!cf_ok(s)) {
                cf_log_err("cannot read the store's state: %s", cf_strerror(s));
                return s;
        }
        s = cas_anchor_set_key(&cas->anchor, cas->data_key->ptr, cas->cfg.data_dir);
        if (!cf_ok(s)) {
                cf_log_err("freshness anchor: %s", cf_strerror(s));
                return s;
        }
        s = cas_anchor_check(&cas->anchor, version, err, sizeof(err));
        if (!cf_ok(s)) {
                cf_log_err("%s", err);
                return s;
        }
        cf_log_info("store state version=%llu anchor=%s", (unsigned long long)version,
                    cas_anchor_describe(&cas->anchor));
        return CF_OK;
}

cf_status cas_datadir_unlock(struct cas *cas)
{
        uint8_t seal[32];
        CF_WIPE_ON_EXIT(seal);
        bool created = false, was_temporary = cas->tls_temporary;

        cas->recovery_mode = false;
        cas->data_key = cf_secret_free(cas->data_key);
        TRY(sealing_key(cas, seal));
        TRY(data_key(cas, seal));
        TRY(tls_identity(cas, seal, cas->recovery_mode ? NULL : cas->data_key->ptr, &created));
        if (created) {
                cf_log_info("created cofferd's TLS identity, key id %s", cas->key_id);
        }
        if (was_temporary && !cas->tls_temporary) {
                cf_log_info("recovery: serving with cofferd's original TLS identity again, key "
                            "id %s",
                            cas->key_id);
        }
        if (cas->recovery_mode) {
                return CF_OK;
        }
        TRY(path_in(cas, "store.db", cas->store_path, sizeof(cas->store_path)));
        return freshness(cas);
}

cf_status cas_datadir_open(struct cas *cas)
{
        bool fresh;
        struct stat st;

        TRY(cf_mkdir_p(cas->cfg.data_dir, 0700));
        if (stat(cas->cfg.data_dir, &st) == 0 && (st.st_mode & 077) != 0) {
                cf_log_warning("data directory '%s' is accessible by other users (mode %03o)",
                               cas->cfg.data_dir, st.st_mode & 0777);
        }
        fresh = !cas_datadir_initialised(cas);
        TRY(sim_platform_key_load(NULL, &cas->sim_platform_key));
        /* This machine's sim platform is trusted first; --trust-sim-key adds others. */
        ENSURE(cas->n_trusted_sim_keys < CAS_TRUSTED_SIM_KEYS_MAX, CF_E_LIMIT);
        memmove(cas->trusted_sim_keys[1], cas->trusted_sim_keys[0],
                cas->n_trusted_sim_keys * sizeof(cas->trusted_sim_keys[0]));
        TRY(cf_pkey_ed25519_raw_public(cas->sim_platform_key, cas->trusted_sim_keys[0]));
        cas->n_trusted_sim_keys++;
        TRY(self_measurement(cas));
        TRY(cas_datadir_unlock(cas));
        if (fresh) {
                cf_log_info("initialised data directory '%s'", cas->cfg.data_dir);
        }
        return CF_OK;
}
