/* Data key wrapping: one AES-256-GCM seal with a fixed AAD that names the purpose, so a
 * wrapped data key cannot be confused with any other blob sealed under the same key. */
#include "store/keywrap.h"

#include <string.h>

#include "base/mem.h"
#include "crypto/crypto.h"

#define KEYWRAP_AAD "coffer-datakey-v1"

_Static_assert(STORE_WRAPPED_KEY_SIZE == CF_AEAD_OVERHEAD + STORE_WRAP_KEY_SIZE,
               "wrapped key = nonce || ciphertext || tag");
_Static_assert(STORE_WRAP_KEY_SIZE == CF_AEAD_KEY_SIZE, "sealing key is an AES-256 key");

cf_status store_wrap_key(const uint8_t sealing_key[static STORE_WRAP_KEY_SIZE],
                         const uint8_t data_key[static STORE_WRAP_KEY_SIZE], struct cf_buf *out)
{
        ENSURE(sealing_key != NULL && data_key != NULL && out != NULL, CF_E_INVALID_ARG);
        return cf_aead_seal(sealing_key, cf_slice_str(KEYWRAP_AAD),
                            cf_slice_make(data_key, STORE_WRAP_KEY_SIZE), out);
}

cf_status store_unwrap_key(const uint8_t sealing_key[static STORE_WRAP_KEY_SIZE],
                           struct cf_slice wrapped, uint8_t data_key[static STORE_WRAP_KEY_SIZE])
{
        CF_CLEANUP(cf_buf_done) struct cf_buf plain;
        cf_status st;

        cf_buf_init(&plain, STORE_WRAP_KEY_SIZE, true);
        ENSURE(sealing_key != NULL && data_key != NULL, CF_E_INVALID_ARG);
        ENSURE(wrapped.ptr != NULL && wrapped.size == STORE_WRAPPED_KEY_SIZE, CF_E_MALFORMED);
        st = cf_aead_open(sealing_key, cf_slice_str(KEYWRAP_AAD), wrapped, &plain);
        ENSURE(st.code != CF_E_MAC_INVALID, CF_E_TAMPERED);
        TRY(st);
        ENSURE(plain.size == STORE_WRAP_KEY_SIZE, CF_E_INTERNAL);
        memcpy(data_key, plain.ptr, STORE_WRAP_KEY_SIZE);
        return CF_OK;
}
