/* Internals of the SNP verifier shared by its source files and its tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/checks.h"
#include "attest/snp/snp.h"
#include "crypto/crypto.h"

#define SNP_POOL_MAX         32 /* certificates considered from one collateral set */
#define SNP_PEM_CERTS_MAX    8  /* certificates read from one PEM blob */
#define SNP_CN_MAX           64
#define SNP_PRODUCT_NAME_MAX 32
#define SNP_CSP_ID_MAX       128
#define SNP_CACHE_ENTRIES    16

/* Certificate roles, recognised by subject CN (AMD KDS naming). */
enum snp_role {
        SNP_ROLE_NONE = 0, /* not an AMD SEV certificate: ignored */
        SNP_ROLE_ARK,      /* "ARK-<product>" */
        SNP_ROLE_ASK,      /* "SEV-<product>": issues VCEKs */
        SNP_ROLE_ASVK,     /* "SEV-VLEK-<product>": issues VLEKs */
        SNP_ROLE_VCEK,     /* "SEV-VCEK" */
        SNP_ROLE_VLEK,     /* "SEV-VLEK" */
};

/* Lower-case label used in check names: "ark", "ask", "asvk", "vcek", "vlek". */
const char *snp_role_label(enum snp_role r);

/* Records checks and the status of the first failure (or of a failure to record). */
struct snp_ck {
        struct attest_checks *list;
        cf_status err;
};
/* Appends a check; when !ok, remembers code as the failure status if none was recorded yet.
 * Returns ok. */
bool snp_check(struct snp_ck *ck, const char *name, bool ok, enum cf_errcode code,
               const char *expected, const char *actual);

struct snp_cert {
        X509 *x; /* owned */
        enum snp_role role;
        enum snp_product product; /* from the CN for ARK/ASK/ASVK; UNKNOWN for leaves */
        char cn[SNP_CN_MAX];
        uint8_t fp[CF_SHA256_SIZE]; /* SHA-256 of the DER encoding */
};

struct snp_pool {
        struct snp_cert certs[SNP_POOL_MAX];
        size_t n;
};

/* An empty pool; snp_pool_done frees every certificate it owns (the pool owns its X509s). */
void snp_pool_init(struct snp_pool *p);
void snp_pool_done(struct snp_pool *p);
/* Adds every certificate of a blob (DER, or PEM with up to SNP_PEM_CERTS_MAX certificates);
 * identical certificates are kept once. A blob that holds no certificate is recorded as an
 * informational check "snp.collateral.unused" naming it. *ret_first is the pool index of the
 * blob's first certificate, or SIZE_MAX when it held none. */
CF_FN snp_pool_add_blob(struct snp_pool *p, const char *name, struct cf_slice data,
                        struct snp_ck *ck, size_t *ret_first);

/* VCEK/VLEK extensions (1.3.6.1.4.1.3704.1.x). */
struct snp_leaf_info {
        uint8_t struct_version;
        char product_name[SNP_PRODUCT_NAME_MAX];
        int stepping; /* from "<Product>-<Letter><Digit>", else -1 */
        bool has_bl, has_tee, has_snp, has_ucode, has_fmc;
        uint8_t bl, tee, snp, ucode, fmc;
        uint8_t hwid[SNP_CHIP_ID_SIZE];
        size_t hwid_size; /* 0 (VLEK), 8 (Turin) or 64 */
        char csp_id[SNP_CSP_ID_MAX];
};
/* Parses the extensions of a VCEK or VLEK; CF_E_CERT when one is malformed or duplicated. */
CF_FN snp_leaf_info_parse(X509 *x, struct snp_leaf_info *ret);

struct snp_window {
        char label[8];
        int64_t not_before, not_after;
};

/* A verified (or partly verified) chain: what the report checks need from it. */
struct snp_chain {
        enum snp_product product; /* of the pinned ARK */
        enum snp_role target_role;
        EVP_PKEY *leaf_key; /* owned; NULL unless the target is a VCEK/VLEK */
        struct snp_leaf_info leaf;
        struct snp_window win[3];
        size_t n_win;
        struct attest_checks checks; /* time-independent chain checks */
        bool ok;                     /* every check in checks passed */
};
/* An empty chain; snp_chain_done frees the leaf key and the checks. */
void snp_chain_init(struct snp_chain *c);
void snp_chain_done(struct snp_chain *c);

/* Builds and verifies the chain for a report signed by a VCEK (leaf_role SNP_ROLE_VCEK) or a
 * VLEK, choosing among several leaves the one whose hwID equals chip_id. Failures are checks
 * in out->checks; the status is for failures to run (CF_E_NOMEM, CF_E_LIMIT). */
CF_FN snp_chain_for_report(struct snp_pool *pool, enum snp_role leaf_role,
                           const uint8_t chip_id[static SNP_CHIP_ID_SIZE], struct snp_chain *out,
                           cf_status *ret_err);
/* Builds and verifies the chain above pool->certs[target]. */
CF_FN snp_chain_for_target(struct snp_pool *pool, size_t target, struct snp_chain *out,
                           cf_status *ret_err);

/* Checks every window of the chain at now ("snp.<role>.validity", CF_E_EXPIRED). */
void snp_chain_check_windows(const struct snp_chain *c, int64_t now, struct snp_ck *ck);

/* Chain cache (thread-safe). get deep-copies a hit into out (which must be initialised and
 * empty) and returns true; put stores a deep copy of a fully verified chain. */
bool snp_cache_get(const uint8_t key[static CF_SHA256_SIZE], struct snp_chain *out);
void snp_cache_put(const uint8_t key[static CF_SHA256_SIZE], const struct snp_chain *c);
/* Deep copy of a chain (leaf key up-referenced). */
CF_FN snp_chain_copy(const struct snp_chain *src, struct snp_chain *dst);
