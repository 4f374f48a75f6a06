/* Volumes under coffer-run: the program runs as a child with libcoffer-shield.so preloaded
 * and its volumes configured through an inherited descriptor; coffer-run stays as the child's
 * freshness agent, relaying each prepare and commit of a volume tag to cofferd over the
 * pinned TLS connection ("strict" mode), and exits with the child's status. */
#pragma once

#include <jansson.h>

#include "client/client.h"

struct agent_args {
        const char *cas;           /* address, for reconnecting */
        const char *cas_key;       /* pinned key id */
        const char *policy;        /* the policy whose volumes these are */
        const char *volume_dir;    /* where backing directories live */
        int program_fd;            /* the measured program, for fexecve */
        int64_t cache_mib;         /* each volume's plaintext cache (MiB), -1: the default */
};

/* True when the bundle mounts volumes. */
bool agent_needed(json_t *bundle);
/* Forks and executes the program with argv/envp plus the shield; serves its tag requests on c
 * (consumed); returns coffer-run's exit status (the child's). On failure before the fork,
 * prints why and returns 125. */
int agent_run(const struct agent_args *a, struct cf_client *c, json_t *bundle, char **argv,
              char **envp, size_t envp_max);
