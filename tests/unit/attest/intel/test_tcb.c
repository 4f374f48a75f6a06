/* Unit tests of src/attest/intel/tcb.c with crafted structures: Intel's TCB level matching
 * (SGX components, PCESVN, TDX components with the module-major skip rule) applied to
 * TEE_TCB_SVN and TEE_TCB_SVN2, and the TD 1.5 relaunch rule (Intel QVL checkForRelaunch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "attest/intel/intel_internal.h"

static void test_relaunch_table(void **state)
{
        static const char *const rows[][3] = {
            /* launch, current, final */
            {"OutOfDate", "UpToDate", "TDRelaunchAdvised"},
            {"OutOfDate", "SWHardeningNeeded", "TDRelaunchAdvised"},
            {"OutOfDate", "ConfigurationNeeded", "TDRelaunchAdvisedConfigurationNeeded"},
            {"OutOfDate", "ConfigurationAndSWHardeningNeeded",
             "TDRelaunchAdvisedConfigurationNeeded"},
            {"OutOfDateConfigurationNeeded", "UpToDate", "TDRelaunchAdvisedConfigurationNeeded"},
            {"OutOfDateConfigurationNeeded", "SWHardeningNeeded",
             "TDRelaunchAdvisedConfigurationNeeded"},
            /* the current TCB does not help */
            {"OutOfDate", "OutOfDate", "OutOfDate"},
            {"OutOfDate", "OutOfDateConfigurationNeeded", "OutOfDate"},
            {"OutOfDate", "Revoked", "OutOfDate"},
            {"OutOfDateConfigurationNeeded", "Revoked", "OutOfDateConfigurationNeeded"},
            /* only an out-of-date launch can be relaunched */
            {"UpToDate", "UpToDate", "UpToDate"},
            {"SWHardeningNeeded", "UpToDate", "SWHardeningNeeded"},
            {"ConfigurationNeeded", "UpToDate", "ConfigurationNeeded"},
            {"Revoked", "UpToDate", "Revoked"},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                const char *got = intel_relaunch_status(rows[i][0], rows[i][1]);
                if (strcmp(got, rows[i][2]) != 0) {
                        fail_msg("%s + %s: got %s, want %s", rows[i][0], rows[i][1], got,
                                 rows[i][2]);
                }
        }
}

static struct intel_level level(uint8_t sgx, uint8_t tdx0, uint8_t tdx2, const char *status)
{
        struct intel_level l = {.pcesvn = 10, .has_tdx = true};

        memset(l.sgx, sgx, sizeof(l.sgx));
        l.tdx[0] = tdx0;
        l.tdx[1] = 0;
        l.tdx[2] = tdx2;
        snprintf(l.status, sizeof(l.status), "%s", status);
        return l;
}

static void test_match_with_svn2(void **state)
{
        struct intel_level levels[3] = {level(2, 6, 3, "UpToDate"), level(2, 4, 2, "OutOfDate"),
                                        level(1, 1, 1, "OutOfDate")};
        struct intel_tcb_info t = {.version = 3, .levels = levels, .n_levels = 3};
        struct intel_pck_ext e = {.pcesvn = 11};
        uint8_t launch[16] = {4, 0, 2}, current[16] = {6, 0, 3}, low[16] = {0, 0, 0};
        uint8_t major[16] = {0, 1, 3}; /* module major 1: components 0 and 1 skipped */

        (void)state;
        memset(e.comp, 2, sizeof(e.comp));
        assert_ptr_equal(intel_match_platform_svn(&t, &e, launch), &levels[1]);
        assert_ptr_equal(intel_match_platform_svn(&t, &e, current), &levels[0]);
        assert_ptr_equal(intel_match_platform_svn(&t, &e, low), NULL); /* below every TDX level */
        assert_ptr_equal(intel_match_platform_svn(&t, &e, major), &levels[0]);
        assert_ptr_equal(intel_match_platform_svn(&t, &e, NULL), &levels[0]); /* SGX only */
        /* the PCK's SGX SVNs still decide first */
        memset(e.comp, 1, sizeof(e.comp));
        assert_ptr_equal(intel_match_platform_svn(&t, &e, current), &levels[2]);
        e.pcesvn = 9;
        assert_ptr_equal(intel_match_platform_svn(&t, &e, current), NULL);
        /* a launch OutOfDate, current UpToDate TD is told to relaunch */
        memset(e.comp, 2, sizeof(e.comp));
        e.pcesvn = 11;
        assert_string_equal(
            intel_relaunch_status(intel_match_platform_svn(&t, &e, launch)->status,
                                  intel_match_platform_svn(&t, &e, current)->status),
            "TDRelaunchAdvised");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_relaunch_table),
            cmocka_unit_test(test_match_with_svn2),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
