/* libFuzzer target: cofferd's sealed TLS key file (docs/formats/tls-key.md) as untrusted
 * input. The first byte picks the purpose the file is opened for; the rest is the file. When
 * that byte has its high bit set, the rest is first sealed as a key (under the fixed root and
 * key id) and the sealed bytes, with their first header bytes overwritten by the input's next
 * bytes, are opened instead: this reaches the paths past the seal, and a round trip of an
 * untouched file must give the same bytes back.
 * Target functions: cas_tls_key_unseal, cas_tls_key_seal. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "cas/tls_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t g_root[32] = { 1, 2, 3, 4 };
static const uint8_t g_key_id[CF_SHA256_SIZE] = { 9, 8, 7 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_make(data, size));
        struct cf_slice rest;
        struct cf_buf sealed, opened;
        uint8_t mode;
        enum cas_tls_key_purpose purpose;

        if (!cf_ok(cf_cursor_u8(&c, &mode)) ||
            !cf_ok(cf_cursor_take(&c, cf_cursor_left(&c), &rest))) {
                return 0;
        }
        purpose = (mode & 1) ? CAS_TLS_KEY_RECOVERY : CAS_TLS_KEY_SEALED;
        cf_buf_init(&opened, CAS_TLS_KEY_PEM_MAX, true);
        if ((mode & 0x80) == 0) {
                cf_ignore(cas_tls_key_unseal(purpose, g_root, g_key_id, rest, &opened));
                cf_buf_done(&opened);
                return 0;
        }
        cf_buf_init(&sealed, CAS_TLS_KEY_FILE_MAX, false);
        if (cf_ok(cas_tls_key_seal(purpose, g_root, g_key_id, rest, &sealed))) {
                size_t edits = (mode >> 1) & 0x3f; /* header bytes to overwrite, 0..63 */
                bool touched = false;
                for (size_t i = 0; i < edits && i < rest.size && i < sealed.size; i++) {
                        touched |= sealed.ptr[i] != rest.ptr[i];
                        sealed.ptr[i] = rest.ptr[i];
                }
                cf_status s = cas_tls_key_unseal(purpose, g_root, g_key_id,
                                                 cf_buf_slice(&sealed), &opened);
                if (!touched && (!cf_ok(s) || opened.size != rest.size ||
                                 memcmp(opened.ptr, rest.ptr, rest.size) != 0)) {
                        abort(); /* an untouched file must open to what was sealed */
                }
        }
        cf_buf_done(&sealed);
        cf_buf_done(&opened);
        return 0;
}
