/* The data directory: cofferd's TLS identity, the sealing key (sim: a key file) and the
 * store's data key wrapped by it. Created on first start, loaded afterwards.
 *
 *   tls.key         cofferd's TLS private key (P-256, PEM, 0600)
 *   tls.crt         its self-signed certificate; the key id is SHA-256 of its SPKI
 *   sealing.key     sim sealing key (32 bytes, 0600): protects nothing against root
 *   datakey.sealed  the store data key, AES-256-GCM under the sealing key
 *   store.db        the SQLite store (every value sealed under the data key)
 */
#include "cas/cas.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/sim.h"
#include "base/codec.h"
#include "base/io.h"
#include "base/log.h"
#include "crypto/tls.h"
#include "cas/recovery.h"
#include "cas/sealing.h"
#include "store/keywrap.h"
#include "store/store.h"

#define CAS_CERT_DAYS 3650

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

static cf_status tls_identity(struct cas *cas, bool *created)
{
        char key_path[1100], crt_path[1100];
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        struct cf_buf key_pem, crt_pem;
        cf_status s;

        TRY(path_in(cas, "tls.key", key_path, sizeof(key_path)));
        TRY(path_in(cas, "tls.crt", crt_path, sizeof(crt_path)));
        cf_buf_init(&key_pem, 1 << 16, true);
        cf_buf_init(&crt_pem, 1 << 16, false);
        if (!exists(key_path)) {
                s = cf_pkey_generate(CF_KEY_P256, &key);
                if (cf_ok(s)) {
                        s = cf_pkey_private_pem(key, &key_pem);
                }
                if (cf_ok(s)) {
                        s = cf_x509_self_signed(key, "cofferd", CAS_CERT_DAYS, &crt_pem);
                }
                if (cf_ok(s)) {
                        s = cf_write_file_atomic(key_path, key_pem.ptr, key_pem.size, 0600);
                }
                if (cf_ok(s)) {
                        s = cf_write_file_atomic(crt_path, crt_pem.ptr, crt_pem.size, 0644);
                }
                *created = true;
        } else {
                s = cf_read_file(key_path, 1 << 16, &key_pem);
                if (cf_ok(s)) {
                        s = cf_pkey_from_pem(cf_buf_slice(&key_pem), true, &key);
                }
                if (cf_ok(s)) {
                        s = cf_read_file(crt_path, 1 << 16, &crt_pem);
                }
        }
        if (cf_ok(s)) {
                s = cf_x509_pem_key_id(cf_buf_slice(&crt_pem), cas->key_id);
        }
        if (cf_ok(s)) {
                s = cf_hex_decode(cf_slice_make(cas->key_id, CF_KEY_ID_HEX - 1), cas->key_id_raw,
                                  sizeof(cas->key_id_raw));
        }
        if (cf_ok(s)) {
                s = cf_tls_server_ctx(cf_buf_slice(&crt_pem), key, true, &cas->tls);
        }
        cf_buf_done(&key_pem);
        cf_buf_done(&crt_pem);
        if (!cf_ok(s)) {
                cf_log_err("cannot set up the TLS identity in '%s': %s", cas->cfg.data_dir,
                           cf_strerror(s));
        }
        return s;
}

static cf_status sealing_key(struct cas *cas, uint8_t out[static 32])
{
        char path[1100], err[512] = "";
        enum cas_sealing_kind kind = cas->cfg.sealing ? (enum cas_sealing_kind)cas->cfg.sealing
                                                      : CAS_SEALING_SIM;
        const char *where = cas->cfg.sealing_path;
        cf_status s;

        if (kind == CAS_SEALING_SIM) {
                TRY(path_in(cas, "sealing.key", path, sizeof(path)));
                where = path;
                cf_log_warning("sealing: sim provider: the data key is wrapped by a key file in "
                               "the data directory; this protects nothing against a local root");
        }
        s = cas_sealing_key(kind, where, NULL, out, err, sizeof(err));
        if (!cf_ok(s)) {
                cf_log_err("sealing (%s): %s", cas_sealing_kind_name(kind), err);
        }
        return s;
}

bool cas_datadir_initialised(const struct cas *cas)
{
        char path[1100];

        return cf_ok(path_in(cas, "datakey.sealed", path, sizeof(path))) && exists(path);
}

cf_status cas_datadir_store_data_key(struct cas *cas, const uint8_t key[static 32])
{
        uint8_t seal[32];
        CF_WIPE_ON_EXIT(seal);
        char path[1100];
        struct cf_buf wrapped;
        cf_status s;

        TRY(sealing_key(cas, seal));
        TRY(path_in(cas, "datakey.sealed", path, sizeof(path)));
        cf_buf_init(&wrapped, 1024, false);
        s = store_wrap_key(seal, key, &wrapped);
        if (cf_ok(s)) {
                s = cf_write_file_atomic(path, wrapped.ptr, wrapped.size, 0600);
        }
        cf_buf_done(&wrapped);
        return s;
}

static cf_status data_key(struct cas *cas)
{
        uint8_t seal[32];
        CF_WIPE_ON_EXIT(seal);
        char path[1100];
        struct cf_buf wrapped;
        cf_status s;

        TRY(sealing_key(cas, seal));
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
        cas->recovery_mode = false;
        cas->data_key = cf_secret_free(cas->data_key);
        TRY(data_key(cas));
        if (cas->recovery_mode) {
                return CF_OK;
        }
        TRY(path_in(cas, "store.db", cas->store_path, sizeof(cas->store_path)));
        return freshness(cas);
}

cf_status cas_datadir_open(struct cas *cas)
{
        bool created = false;
        struct stat st;

        TRY(cf_mkdir_p(cas->cfg.data_dir, 0700));
        if (stat(cas->cfg.data_dir, &st) == 0 && (st.st_mode & 077) != 0) {
                cf_log_warning("data directory '%s' is accessible by other users (mode %03o)",
                               cas->cfg.data_dir, st.st_mode & 0777);
        }
        TRY(tls_identity(cas, &created));
        TRY(sim_platform_key_load(NULL, &cas->sim_platform_key));
        /* This machine's sim platform is trusted first; --trust-sim-key adds others. */
        ENSURE(cas->n_trusted_sim_keys < CAS_TRUSTED_SIM_KEYS_MAX, CF_E_LIMIT);
        memmove(cas->trusted_sim_keys[1], cas->trusted_sim_keys[0],
                cas->n_trusted_sim_keys * sizeof(cas->trusted_sim_keys[0]));
        TRY(cf_pkey_ed25519_raw_public(cas->sim_platform_key, cas->trusted_sim_keys[0]));
        cas->n_trusted_sim_keys++;
        TRY(self_measurement(cas));
        TRY(cas_datadir_unlock(cas));
        if (created) {
                cf_log_info("initialised data directory '%s'", cas->cfg.data_dir);
        }
        return CF_OK;
}
