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

/* Intel QvE isTdxTcbHigherOrEqual: with a non-zero module major version (svn[1]),
 * components 0 and 1 are graded by the module identity instead. TD quotes are v4 or v5, so
 * the QvE's "quote version >= 4" condition always holds here. */
static bool tdx_higher_or_equal(const struct intel_level *l, const uint8_t svn[16])
{
        size_t start = svn[1] > 0 ? 2 : 0;

        if (!l->has_tdx) {
                return false;
        }
        for (size_t i = start; i < 16; i++) {
                if (svn[i] < l->tdx[i]) {
                        return false;
                }
        }
        return true;
}

const struct intel_level *intel_match_platform_svn(const struct intel_tcb_info *t,
                                                   const struct intel_pck_ext *e,
                                                   const uint8_t *tee_tcb_svn)
{
        for (size_t i = 0; i < t->n_levels; i++) {
                const struct intel_level *l = &t->levels[i];
                if (sgx_higher_or_equal(l, e) &&
                    (tee_tcb_svn == NULL || tdx_higher_or_equal(l, tee_tcb_svn))) {
                        return l;
                }
        }
        return NULL;
}

const struct intel_level *intel_match_platform(const struct intel_tcb_info *t,
                                               const struct intel_pck_ext *e,
                                               const struct intel_quote *q)
{
        return intel_match_platform_svn(t, e,
                                        q->tee_type == INTEL_TEE_TDX ? q->td.tee_tcb_svn : NULL);
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

static bool config_needed(const char *s)
{
        return strcmp(s, "ConfigurationNeeded") == 0 ||
               strcmp(s, "OutOfDateConfigurationNeeded") == 0 ||
               strcmp(s, "ConfigurationAndSWHardeningNeeded") == 0 ||
               strcmp(s, INTEL_TD_RELAUNCH_ADVISED_CONFIG) == 0;
}

/* Intel's QVL (TDRelaunchCheck, checkForRelaunch of launch and current statuses): a TD whose
 * launch TCB is out of date while the TCB it runs on now is not (the TDX module was updated
 * under it, TD-preserving) is told to relaunch instead of being called OutOfDate. Any other
 * combination keeps the launch status; a Revoked or OutOfDate current status never helps. */
const char *intel_relaunch_status(const char *launch, const char *current)
{
        bool launch_ood =
            strcmp(launch, "OutOfDate") == 0 || strcmp(launch, "OutOfDateConfigurationNeeded") == 0;
        bool current_ok = strcmp(current, "UpToDate") == 0 ||
                          strcmp(current, "SWHardeningNeeded") == 0 ||
                          strcmp(current, "ConfigurationNeeded") == 0 ||
                          strcmp(current, "ConfigurationAndSWHardeningNeeded") == 0;

        if (!launch_ood || !current_ok) {
                return launch;
        }
        return config_needed(launch) || config_needed(current) ? INTEL_TD_RELAUNCH_ADVISED_CONFIG
                                                               : INTEL_TD_RELAUNCH_ADVISED;
}
