/* Fuzz target: the HTTP/1.1 response parser of the client (client/client.c), which reads
 * bytes from the network before any of them is trusted. */
#include <stddef.h>
#include <stdint.h>

#include "client/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cf_http_response r;
        bool done = false;

        cf_http_response_init(&r);
        cf_ignore(cf_http_parse_response(cf_slice_make(data, size), &r, &done)); /* any outcome */
        cf_http_response_done(&r);
        return 0;
}
