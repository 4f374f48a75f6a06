#include "client/collateral_dir.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base/io.h"

cf_status cf_collateral_load_dir(const char *dir, struct attest_collateral *coll, char *err,
                                 size_t err_size)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        cf_status s = CF_OK;

        if (d == NULL) {
                snprintf(err, err_size, "cannot open collateral folder '%s'", dir);
                return cf_fail(CF_E_NOT_FOUND);
        }
        while (cf_ok(s) && (e = readdir(d)) != NULL) {
                char path[PATH_MAX];
                struct stat st;
                struct cf_buf b;

                if (e->d_name[0] == '.') {
                        continue;
                }
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                        continue;
                }
                cf_buf_init(&b, ATTEST_COLLATERAL_MAX_SIZE, false);
                s = cf_read_file(path, ATTEST_COLLATERAL_MAX_SIZE, &b);
                if (!cf_ok(s)) {
                        snprintf(err, err_size, "cannot read '%s' (at most 4 MiB)", path);
                } else if (!cf_ok(s = attest_collateral_add(coll, e->d_name, b.ptr, b.size))) {
                        snprintf(err, err_size, "too many collateral files in '%s' (at most %d)",
                                 dir, ATTEST_COLLATERAL_MAX_FILES);
                }
                cf_buf_done(&b);
        }
        closedir(d);
        return s;
}
