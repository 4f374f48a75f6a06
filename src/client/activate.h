/* The activation request of design section 6, shared by coffer-run, its tests and the
 * activation benchmark. */
#pragma once

#include <stdint.h>

#include <openssl/ssl.h>

#include "base/status.h"
#include "crypto/crypto.h"

/* Builds the JSON body of POST /v1/activate with sim evidence over measurement whose report
 * data binds the TLS exporter of bind_to. The caller frees *ret_body with free(). */
CF_FN cf_activation_body_sim(SSL *bind_to, const struct cf_pkey *platform_key,
                             const uint8_t measurement[static 32], const char *policy,
                             const char *service, char **ret_body);
