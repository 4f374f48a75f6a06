/* libFuzzer target: the decrypted volume manifest decoder. The manifest is authenticated
 * before it is decoded, so this input can only come from a bug or a stolen key, but the
 * decoder must still fail closed on anything. A decoded manifest is re-encoded and must
 * decode to the same bytes again (round trip).
 * Target functions: sh_manifest_decode, sh_manifest_encode, sh_manifest_done. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shield/shield_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sh_manifest m, m2;
        struct cf_buf b;

        if (!cf_ok(sh_manifest_decode(cf_slice_make(data, size), &m))) {
                return 0;
        }
        cf_buf_init(&b, SH_MANIFEST_MAX, false);
        if (!cf_ok(sh_manifest_encode(&m, &b)) ||
            !cf_ok(sh_manifest_decode(cf_buf_slice(&b), &m2))) {
                abort(); /* a valid manifest must re-encode to a valid manifest */
        }
        if (b.size != size || memcmp(b.ptr, data, size) != 0) {
                abort(); /* the encoding is canonical */
        }
        sh_manifest_done(&m2);
        cf_buf_done(&b);
        sh_manifest_done(&m);
        return 0;
}
