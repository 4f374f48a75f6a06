/* coffer policy approve FILE [--veto] [--predecessor DIGEST] --out NAME.sig: an offline
 * approval (or veto) of a policy version, and coffer policy approve --delete NAME
 * --predecessor DIGEST --out NAME.sig: of the deletion of version DIGEST; signed with the
 * person's identity key (docs/formats/approval.md).
 *
 * The document is validated first, so nobody signs a version cofferd would refuse anyway;
 * the digest is computed over the file's exact bytes, as cofferd computes it, and the
 * predecessor is the one the document names. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/io.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "policy/policy.h"

#define APPROVE_USAGE                                                                              \
        "usage: coffer policy approve FILE [--veto] [--predecessor DIGEST] --out NAME.sig\n"       \
        "       coffer policy approve --delete NAME --predecessor DIGEST [--veto] --out "          \
        "NAME.sig\n"                                                                               \
        "       coffer policy approve --online NAME DIGEST [--key KEY.pem | --as-service "         \
        "POLICY/SERVICE [--tee TEE]] [--veto]"

static void print_errors(const char *file, const struct policy_errors *errs)
{
        fprintf(stderr, "coffer: %s: the policy is invalid (%zu error%s):\n", file, errs->n,
                errs->n == 1 ? "" : "s");
        for (size_t i = 0; i < errs->n; i++) {
                fprintf(stderr, "  %s: %s\n", errs->items[i].location, errs->items[i].message);
        }
}

/* Reads and validates FILE; fills its name, digest and predecessor ("" for null). */
static int load(const char *file, char *name, size_t name_size, char digest[static 65],
                char pred[static 65])
{
        static struct policy_errors errs;
        CF_CLEANUP(policy_freep) struct policy *p = NULL;
        struct cf_buf doc;
        cf_status s;

        /* A secret buffer: the document may hold explicit secret values. */
        cf_buf_init(&doc, POLICY_DOC_MAX, true);
        if (!cf_ok(cf_read_file(file, POLICY_DOC_MAX, &doc))) {
                cf_buf_done(&doc);
                return cli_error("cannot read '%s' (at most 1 MiB)", file);
        }
        memset(&errs, 0, sizeof(errs));
        s = policy_parse(cf_buf_slice(&doc), &p, &errs);
        if (cf_ok(s)) {
                s = policy_digest(cf_buf_slice(&doc), digest);
        }
        cf_buf_done(&doc);
        if (!cf_ok(s) && errs.n > 0) {
                print_errors(file, &errs);
                return CLI_EXIT_FAIL;
        }
        if (!cf_ok(s)) {
                return cli_error("cannot load '%s': %s", file, cf_strerror(s));
        }
        snprintf(name, name_size, "%s", p->name);
        snprintf(pred, 65, "%s", p->has_predecessor ? p->predecessor : "");
        return 0;
}

static bool hex64(const char *s)
{
        return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

int cli_write_approval(struct cli *cli, const char *name, const char *digest, const char *pred,
                       const char *out, const char *what)
{
        enum policy_verdict verdict = cli->veto       ? POLICY_VERDICT_VETO
                                      : cli->deletion ? POLICY_VERDICT_DELETE
                                                      : POLICY_VERDICT_APPROVE;
        const char *word = cli->veto ? "veto" : cli->deletion ? "delete" : "approve";
        CF_CLEANUP(cf_pkey_freep) struct cf_pkey *key = NULL;
        struct cf_buf cert, json;
        char kid[CF_KEY_ID_HEX];
        cf_status s;

        cf_buf_init(&cert, 1 << 16, false);
        s = cli_identity_load(cli, &cert, &key);
        cf_buf_done(&cert);
        if (!cf_ok(s)) {
                return cli_error("no identity in '%s' (create one with 'coffer id new')",
                                 cli->identity);
        }
        cf_buf_init(&json, POLICY_APPROVAL_MAX, false);
        s = cf_pkey_key_id(key, kid);
        if (cf_ok(s)) {
                s = policy_approval_sign_verdict(key, name, digest, pred[0] != '\0' ? pred : NULL,
                                                 verdict, &json);
        }
        if (cf_ok(s)) {
                s = cf_write_file_atomic(out, json.ptr, json.size, 0644);
        }
        cf_buf_done(&json);
        if (!cf_ok(s)) {
                return cli_error("cannot write the approval to '%s': %s", out, cf_strerror(s));
        }
        if (cli->json) {
                cli_print_json(json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s}", "policy", name,
                                         "digest", digest, "predecessor",
                                         pred[0] != '\0' ? pred : NULL, "verdict", word, "key_id",
                                         kid, "file", out));
        } else {
                printf("%s\n", out);
                fprintf(stderr, "coffer: %s %s of %s, digest %s (predecessor %s) as key id %s\n",
                        cli->veto ? "vetoed" : "approved", what, name, digest,
                        pred[0] != '\0' ? pred : "null", kid);
        }
        return 0;
}

int cmd_approve(struct cli *cli)
{
        char name[POLICY_NAME_MAX + 1], digest[65], pred[65];
        struct stat st;
        int status;

        if (cli->argc != 3 || cli->out == NULL || cli->out[0] == '\0') {
                return cli_usage(APPROVE_USAGE);
        }
        /* An approval is a signature someone will rely on: never replace one by accident. */
        if (!cli->force && stat(cli->out, &st) == 0) {
                return cli_error("'%s' exists (use --force to replace it)", cli->out);
        }
        if (cli->deletion) {
                /* The statement names the deletion digest; its predecessor is the version
                 * deleted. */
                if (!policy_name_valid(cli->argv[2]) || !hex64(cli->predecessor)) {
                        return cli_usage("--delete needs a policy NAME and --predecessor, the "
                                         "current version's digest (64 hex digits)");
                }
                snprintf(name, sizeof(name), "%s", cli->argv[2]);
                snprintf(pred, sizeof(pred), "%s", cli->predecessor);
                if (!cf_ok(policy_deletion_digest(pred, digest))) {
                        return cli_error("cannot compute the deletion digest");
                }
                return cli_write_approval(cli, name, digest, pred, cli->out, "the deletion");
        }
        status = load(cli->argv[2], name, sizeof(name), digest, pred);
        if (status != 0) {
                return status;
        }
        if (cli->predecessor != NULL) {
                /* Re-creating a deleted name: the statement names the deletion's digest. */
                if (!hex64(cli->predecessor) ||
                    (pred[0] != '\0' && strcmp(pred, cli->predecessor) != 0)) {
                        return cli_usage("--predecessor must be 64 hex digits and, when the "
                                         "document names a predecessor, equal it");
                }
                snprintf(pred, sizeof(pred), "%s", cli->predecessor);
        }
        return cli_write_approval(cli, name, digest, pred, cli->out, "the version");
}
