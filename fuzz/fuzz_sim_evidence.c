/* Fuzz target: the sim evidence decoder and verifier (attest/sim.c). */
#include <stddef.h>
#include <stdint.h>

#include "attest/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct attest_result res;

        if (!cf_ok(attest_result_init(&res))) {
                return 0;
        }
        cf_ignore(sim_evidence_verify(cf_slice_make(data, size), &res)); /* any outcome is fine */
        attest_result_done(&res);
        return 0;
}
