/* Intel's TCB evaluation: platform level matching (SGX components and PCESVN from the PCK
 * certificate; for TDX also TEE_TCB_SVN with the QvE skip rule), level lookup by ISVSVN for
 * the QE and the TDX module, and the merge of the three statuses (vectors README G7-G9). */
#include "attest/intel/intel_internal.h"

#include <string.h>

/* Severity order (dcap-qvl, G9). */
static const char *const g_statuses[] = {
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
};

int intel_status_rank(const char *status)
{
        for (size_t i = 0; i < sizeof(g_statuses) / sizeof(g_statuses[0]); i++) {
                if (strcmp(status, g_statuses[i]) == 0) {
                        return (int)i;
                }
        }
        return -1;
}

static bool sgx_higher_or_equal(const struct intel_level *l, const struct intel_pck_ext *e)
{
        for (size_t i = 0; i < 16; i++) {
                if (e->comp[i] < l->sgx[i]) {
                        return false;
                }
        }
        return e->pcesvn >= l->pcesvn;
}

/* Intel QvE isTdxTcbHigherOrEqual: with quote version >= 4 and a non-zero module major
 * version (TEE_TCB_SVN[1]), components 0 and 1 are graded by the module identity instead. */
static bool tdx_higher_or_equal(const struct intel_level *l, const struct intel_quote *q)
{
        size_t start = q->version >= 4 && q->td.tee_tcb_svn[1] > 0 ? 2 : 0;

        if (!l->has_tdx) {
                return false;
        }
        for (size_t i = start; i < 16; i++) {
                if (q->td.tee_tcb_svn[i] < l->tdx[i]) {
                        return false;
                }
        }
        return true;
}

const struct intel_level *intel_match_platform(const struct intel_tcb_info *t,
                                               const struct intel_pck_ext *e,
                                               const struct intel_quote *q)
{
        bool tdx = q->tee_type == INTEL_TEE_TDX;

        for (size_t i = 0; i < t->n_levels; i++) {
                const struct intel_level *l = &t->levels[i];
                if (sgx_higher_or_equal(l, e) && (!tdx || tdx_higher_or_equal(l, q))) {
                        return l;
                }
        }
        return NULL;
}

const struct intel_level *intel_match_isvsvn(const struct intel_level *levels, size_t n,
                                             uint16_t isvsvn)
{
        for (size_t i = 0; i < n; i++) {
                if (isvsvn >= levels[i].isvsvn) {
                        return &levels[i];
                }
        }
        return NULL;
}

const char *intel_merge_status(const char *platform, const char *other)
{
        if (strcmp(other, "Revoked") == 0) {
                return "Revoked";
        }
        if (strcmp(other, "OutOfDate") != 0) {
                return platform;
        }
        if (strcmp(platform, "UpToDate") == 0 || strcmp(platform, "SWHardeningNeeded") == 0) {
                return "OutOfDate";
        }
        if (strcmp(platform, "ConfigurationNeeded") == 0 ||
            strcmp(platform, "ConfigurationAndSWHardeningNeeded") == 0) {
                return "OutOfDateConfigurationNeeded";
        }
        return platform;
}
