#include "client/pin.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "client/client.h"

void cf_identity_dir(char *out, size_t out_size)
{
        const char *env = secure_getenv("COFFER_IDENTITY");
        const char *xdg = secure_getenv("XDG_CONFIG_HOME");
        const char *home = secure_getenv("HOME");

        if (env != NULL && env[0] != '\0') {
                snprintf(out, out_size, "%s", env);
        } else if (xdg != NULL && xdg[0] == '/') {
                snprintf(out, out_size, "%s/coffer", xdg);
        } else {
                if (home == NULL || home[0] != '/') {
                        struct passwd *pw = getpwuid(getuid());
                        home = pw && pw->pw_dir ? pw->pw_dir : "/";
                }
                snprintf(out, out_size, "%s/.config/coffer", home);
        }
}

cf_status cf_pin_path(const char *identity_dir, const char *address, char *out, size_t out_size)
{
        char dir[1100], enc[300];
        int n;

        ENSURE(address != NULL, CF_E_INVALID_ARG);
        TRY(cf_client_encode_name(address, enc, sizeof(enc)));
        n = snprintf(dir, sizeof(dir), "%s/pins", identity_dir);
        ENSURE(n > 0 && (size_t)n < sizeof(dir), CF_E_LIMIT);
        TRY(cf_mkdir_p(dir, 0700));
        n = snprintf(out, out_size, "%s/%s", dir, enc);
        ENSURE(n > 0 && (size_t)n < out_size, CF_E_LIMIT);
        return CF_OK;
}

bool cf_pinned_key(const char *identity_dir, const char *address, char out[static CF_KEY_ID_HEX])
{
        char path[1200];
        struct cf_buf b;
        bool ok;

        if (!cf_ok(cf_pin_path(identity_dir, address, path, sizeof(path)))) {
                return false;
        }
        cf_buf_init(&b, 256, false);
        ok = cf_ok(cf_read_file(path, 256, &b)) && b.size >= CF_KEY_ID_HEX - 1 &&
             strspn((const char *)b.ptr, "0123456789abcdef") == CF_KEY_ID_HEX - 1;
        if (ok) {
                memcpy(out, b.ptr, CF_KEY_ID_HEX - 1);
                out[CF_KEY_ID_HEX - 1] = '\0';
        }
        cf_buf_done(&b);
        return ok;
}
