/* Unit tests of the key and certificate secret kinds (private-key, public-key, x509-ca, x509)
 * and of placeholder encodings: the model the parser builds, every refusal with its
 * location, which encodings fit which kinds, the scanner and splitter of NAME:ENCODING, JSON
 * escaping, the JSON view round trip, and robustness on truncated documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/cursor.h"
#include "base/mem.h"
#include "policy/policy.h"
#include "policy/policy_internal.h"

#define M64A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

#define HEAD "name: shop/pki\n"
/* A service whose environment value is ENV (a YAML double-quoted string body). */
#define SERVICE_ENV(env)                                                                           \
        "services:\n"                                                                              \
        "  - name: api\n"                                                                          \
        "    command: [/bin/true]\n"                                                               \
        "    environment: {V: \"" env "\"}\n"                                                      \
        "    attestation:\n"                                                                       \
        "      - platform: sim\n"                                                                  \
        "        measurement: [\"" M64A "\"]\n"
#define SERVICE SERVICE_ENV("x")

/* Every kind, with defaults and explicit values. */
static const char PKI_YAML[] =
    HEAD SERVICE_ENV("$$coffer:leaf:chain:json$$ $$coffer:leaf:pkcs8$$ $$coffer:pub$$ "
                     "$$coffer:k:der:base64$$ $$coffer:tok:base64$$ "
                     "$$coffer:tok:json$$") "secrets:\n"
                                            "  - {name: tok, kind: ascii, size: 8}\n"
                                            "  - {name: k, kind: private-key, "
                                            "algorithm: ed25519}\n"
                                            "  - {name: k2, kind: private-key}\n"
                                            "  - {name: pub, kind: public-key, of: "
                                            "k}\n"
                                            "  - {name: root, kind: x509-ca, "
                                            "common_name: Root CA, algorithm: p384}\n"
                                            "  - name: inter\n"
                                            "    kind: x509-ca\n"
                                            "    issuer: root\n"
                                            "    common_name: Intermediate\n"
                                            "    validity_days: 1000\n"
                                            "    algorithm: rsa2048\n"
                                            "  - name: leaf\n"
                                            "    kind: x509\n"
                                            "    issuer: inter\n"
                                            "    common_name: api.example.com\n"
                                            "    dns: [api.example.com, "
                                            "\"*.api.example.com\", localhost]\n"
                                            "    ip: [127.0.0.1, \"::1\"]\n"
                                            "    usage: [server, client]\n"
                                            "    validity_days: 30\n"
                                            "  - {name: client, kind: x509, issuer: "
                                            "root, common_name: alice, usage: "
                                            "[client]}\n";

static struct policy_errors g_errs;

static void dump_errors(const struct policy_errors *e)
{
        for (size_t i = 0; i < e->n; i++) {
                print_message("  %s: %s\n", e->items[i].location, e->items[i].message);
        }
}

static struct policy *parse_ok(const char *text)
{
        struct policy *p = NULL;
        cf_status s = policy_parse(cf_slice_str(text), &p, &g_errs);

        if (!cf_ok(s)) {
                dump_errors(&g_errs);
        }
        assert_int_equal(s.code, 0);
        assert_non_null(p);
        return p;
}

/* Asserts that text is refused as a schema error with an error whose location contains loc
 * (e.g. "($.secrets[1].issuer)") and whose message contains msg. */
static void expect_refused(const char *text, const char *loc, const char *msg)
{
        struct policy *p = NULL;
        cf_status s = policy_parse(cf_slice_str(text), &p, &g_errs);
        bool found = false;

        assert_null(p);
        for (size_t i = 0; i < g_errs.n && !found; i++) {
                found = strstr(g_errs.items[i].location, loc) != NULL &&
                        strstr(g_errs.items[i].message, msg) != NULL;
        }
        if (s.code != CF_E_SCHEMA || !found) {
                print_message("expected '%s' at '%s'; got %d:\n", msg, loc, s.code);
                dump_errors(&g_errs);
        }
        assert_int_equal(s.code, CF_E_SCHEMA);
        assert_true(found);
}

/* ---- the model ---------------------------------------------------------------------------- */

static void test_model(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(PKI_YAML);
        const struct policy_secret *s;

        (void)state;
        assert_int_equal(p->n_secrets, 8);
        s = policy_find_secret(p, "k");
        assert_int_equal(s->kind, POLICY_SECRET_PRIVATE_KEY);
        assert_int_equal(s->algorithm, POLICY_ALG_ED25519);
        assert_int_equal(policy_find_secret(p, "k2")->algorithm, POLICY_ALG_P256); /* default */
        s = policy_find_secret(p, "pub");
        assert_int_equal(s->kind, POLICY_SECRET_PUBLIC_KEY);
        assert_string_equal(s->of, "k");
        s = policy_find_secret(p, "root");
        assert_int_equal(s->kind, POLICY_SECRET_X509_CA);
        assert_null(s->issuer);
        assert_string_equal(s->common_name, "Root CA");
        assert_int_equal(s->algorithm, POLICY_ALG_P384);
        assert_int_equal(s->validity_days, POLICY_CA_VALIDITY_DEFAULT);
        assert_int_equal(s->path_len, 1); /* root -> inter -> leaf */
        s = policy_find_secret(p, "inter");
        assert_string_equal(s->issuer, "root");
        assert_int_equal(s->validity_days, 1000);
        assert_int_equal(s->algorithm, POLICY_ALG_RSA2048);
        assert_int_equal(s->path_len, 0);
        s = policy_find_secret(p, "leaf");
        assert_int_equal(s->kind, POLICY_SECRET_X509);
        assert_int_equal(s->n_dns, 3);
        assert_string_equal(s->dns[1], "*.api.example.com");
        assert_int_equal(s->n_ip, 2);
        assert_string_equal(s->ip[1], "::1");
        assert_int_equal(s->usage, POLICY_USAGE_SERVER | POLICY_USAGE_CLIENT);
        assert_int_equal(s->validity_days, 30);
        s = policy_find_secret(p, "client");
        assert_int_equal(s->usage, POLICY_USAGE_CLIENT);
        assert_int_equal(s->validity_days, POLICY_X509_VALIDITY_DEFAULT);
        assert_int_equal(s->n_dns, 0);
        /* A leaf with no usage is a server certificate. */
        {
                CF_CLEANUP(policy_freep)
                struct policy *q =
                    parse_ok(HEAD SERVICE "secrets:\n"
                                          "  - {name: ca, kind: x509-ca, common_name: c}\n"
                                          "  - {name: l, kind: x509, issuer: ca, "
                                          "common_name: l}\n");
                assert_int_equal(policy_find_secret(q, "l")->usage, POLICY_USAGE_SERVER);
                assert_int_equal(policy_find_secret(q, "ca")->path_len, 0);
        }
}

/* Path lengths: the longest chain of CAs below each CA, whatever the document order. */
static void test_path_len(void **state)
{
        CF_CLEANUP(policy_freep)
        struct policy *p =
            parse_ok(HEAD SERVICE "secrets:\n"
                                  "  - {name: c3, kind: x509-ca, issuer: c2, common_name: c}\n"
                                  "  - {name: c2, kind: x509-ca, issuer: c1, common_name: c}\n"
                                  "  - {name: c1, kind: x509-ca, common_name: c}\n"
                                  "  - {name: b, kind: x509-ca, issuer: c1, common_name: c}\n"
                                  "  - {name: l, kind: x509, issuer: c3, common_name: l}\n");

        (void)state;
        assert_int_equal(policy_find_secret(p, "c1")->path_len, 2);
        assert_int_equal(policy_find_secret(p, "c2")->path_len, 1);
        assert_int_equal(policy_find_secret(p, "c3")->path_len, 0);
        assert_int_equal(policy_find_secret(p, "b")->path_len, 0);
}

/* ---- refusals ------------------------------------------------------------------------------ */

#define SEC(x) HEAD SERVICE "secrets:\n" x
#define CA     "  - {name: ca, kind: x509-ca, common_name: c}\n"

static void test_refused_algorithms(void **state)
{
        (void)state;
        expect_refused(SEC("  - {name: k, kind: private-key, algorithm: rsa1024}\n"),
                       "($.secrets[0].algorithm)", "RSA below 2048 bits is refused");
        expect_refused(SEC("  - {name: k, kind: private-key, algorithm: rsa}\n"),
                       "($.secrets[0].algorithm)", "unknown or refused algorithm 'rsa'");
        expect_refused(SEC("  - {name: k, kind: private-key, algorithm: p521}\n"),
                       "($.secrets[0].algorithm)", "unknown or refused algorithm 'p521'");
        expect_refused(SEC("  - {name: k, kind: private-key, algorithm: secp256k1}\n"),
                       "($.secrets[0].algorithm)", "'secp256k1'");
        expect_refused(SEC("  - {name: k, kind: x509-ca, common_name: c, algorithm: dsa}\n"),
                       "($.secrets[0].algorithm)", "'dsa'");
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "algorithm: P256}\n"),
                       "($.secrets[1].algorithm)", "'P256'");
        expect_refused(SEC("  - {name: k, kind: private-key, algorithm: 2048}\n"),
                       "($.secrets[0].algorithm)", "expected a string");
}

static void test_refused_issuers(void **state)
{
        (void)state;
        /* a -> b -> a: both are reported. */
        expect_refused(SEC("  - {name: a, kind: x509-ca, issuer: b, common_name: a}\n"
                           "  - {name: b, kind: x509-ca, issuer: a, common_name: b}\n"),
                       "($.secrets[0].issuer)", "issuer cycle");
        expect_refused(SEC("  - {name: a, kind: x509-ca, issuer: b, common_name: a}\n"
                           "  - {name: b, kind: x509-ca, issuer: a, common_name: b}\n"),
                       "($.secrets[1].issuer)", "issuer cycle");
        /* a leaf under a cycle: its chain never reaches a root */
        expect_refused(SEC("  - {name: l, kind: x509, issuer: a, common_name: l}\n"
                           "  - {name: a, kind: x509-ca, issuer: b, common_name: a}\n"
                           "  - {name: b, kind: x509-ca, issuer: c, common_name: b}\n"
                           "  - {name: c, kind: x509-ca, issuer: a, common_name: c}\n"),
                       "($.secrets[0].issuer)", "never reaches a self-signed x509-ca");
        expect_refused(SEC("  - {name: a, kind: x509-ca, issuer: a, common_name: a}\n"),
                       "($.secrets[0].issuer)", "issuer cycle: 'a' issues itself");
        expect_refused(SEC("  - {name: k, kind: private-key}\n"
                           "  - {name: l, kind: x509, issuer: k, common_name: l}\n"),
                       "($.secrets[1].issuer)",
                       "'issuer' must name an x509-ca secret; 'k' is of kind private-key");
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l}\n"
                              "  - {name: m, kind: x509, issuer: l, common_name: m}\n"),
                       "($.secrets[2].issuer)", "'l' is of kind x509");
        expect_refused(SEC("  - {name: l, kind: x509, issuer: nope, common_name: l}\n"),
                       "($.secrets[0].issuer)", "'issuer' refers to undeclared secret 'nope'");
        expect_refused(SEC("  - {name: l, kind: x509, issuer: \"a b\", common_name: l}\n"),
                       "($.secrets[0].issuer)", "invalid secret name");
        expect_refused(SEC("  - {name: l, kind: x509, common_name: l}\n"), "($.secrets[0])",
                       "missing required key 'issuer'");
}

/* A chain of n CAs (c0 the root) and a leaf under the last one. */
static void chain_doc(char *doc, size_t size, int n)
{
        size_t o =
            (size_t)snprintf(doc, size, SEC("  - {name: c0, kind: x509-ca, common_name: c}\n"));
        for (int i = 1; i < n; i++) {
                o += (size_t)snprintf(
                    doc + o, size - o,
                    "  - {name: c%d, kind: x509-ca, issuer: c%d, common_name: c}\n", i, i - 1);
        }
        snprintf(doc + o, size - o, "  - {name: l, kind: x509, issuer: c%d, common_name: l}\n",
                 n - 1);
}

static void test_issuer_depth(void **state)
{
        char doc[4096];

        (void)state;
        chain_doc(doc, sizeof(doc), POLICY_ISSUER_DEPTH_MAX);
        {
                CF_CLEANUP(policy_freep) struct policy *p = parse_ok(doc);
                assert_int_equal(policy_find_secret(p, "c0")->path_len,
                                 POLICY_ISSUER_DEPTH_MAX - 1);
        }
        chain_doc(doc, sizeof(doc), POLICY_ISSUER_DEPTH_MAX + 1);
        expect_refused(doc, "($.secrets[9].issuer)",
                       "issuer chain too long: 9 CAs above 'l' (at most 8)");
}

static void test_refused_validity(void **state)
{
        (void)state;
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: c, validity_days: 0}\n"),
                       "($.secrets[0].validity_days)", "from 1 to 36500, got 0");
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: c, validity_days: -5}\n"),
                       "($.secrets[0].validity_days)", "got -5");
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: c, validity_days: 36501}\n"),
                       "($.secrets[0].validity_days)", "got 36501");
        expect_refused(
            SEC("  - {name: ca, kind: x509-ca, common_name: c, validity_days: \"10\"}\n"),
            "($.secrets[0].validity_days)", "must be an integer");
        /* A certificate cannot outlive its issuer. */
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "validity_days: 3651}\n"),
                       "($.secrets[1].issuer)", "impossible validity: 3651 days");
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: c, validity_days: 10}\n"
                           "  - {name: l, kind: x509, issuer: ca, common_name: l}\n"),
                       "($.secrets[1].issuer)", "longer than the 10 days of its issuer 'ca'");
}

static void test_refused_sans(void **state)
{
        char doc[8192];
        size_t o = 0;

        (void)state;
        o += (size_t)snprintf(
            doc + o, sizeof(doc) - o,
            SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, dns: ["));
        for (int i = 0; i < POLICY_SAN_MAX + 1; i++) {
                o += (size_t)snprintf(doc + o, sizeof(doc) - o, "%sh%d.example", i ? ", " : "", i);
        }
        snprintf(doc + o, sizeof(doc) - o, "]}\n");
        expect_refused(doc, "($.secrets[1].dns)", "expected 0 to 64 DNS names, got 65");
        o = 0;
        o +=
            (size_t)snprintf(doc + o, sizeof(doc) - o,
                             SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, ip: ["));
        for (int i = 0; i < POLICY_SAN_MAX + 1; i++) {
                o += (size_t)snprintf(doc + o, sizeof(doc) - o, "%s10.0.0.%d", i ? ", " : "", i);
        }
        snprintf(doc + o, sizeof(doc) - o, "]}\n");
        expect_refused(doc, "($.secrets[1].ip)", "expected 0 to 64 IP addresses, got 65");

        static const char *const bad_dns[] = {
            "-a.example",
            "a-.example",
            "a..example",
            "a.example.",
            "a_b.example",
            "a b",
            "",
            "a.*.example",
            "*",
            "ex\\u00e4mple.com",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"};
        for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
                snprintf(doc, sizeof(doc),
                         SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                                "dns: [ok.example, \"%s\"]}\n"),
                         bad_dns[i]);
                expect_refused(doc, "($.secrets[1].dns[1])", "invalid DNS name");
        }
        static const char *const bad_ip[] = {
            "256.1.1.1", "1.2.3",    "1.2.3.4/24", "::g",
            "localhost", "1.2.3.4 ", "",           "1:2:3:4:5:6:7:8:9"};
        for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
                snprintf(doc, sizeof(doc),
                         SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                                "ip: [\"%s\"]}\n"),
                         bad_ip[i]);
                expect_refused(doc, "($.secrets[1].ip[0])", "invalid IP address");
        }
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "dns: [a.example, a.example]}\n"),
                       "($.secrets[1].dns[1])", "duplicate entry");
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "usage: [server, admin]}\n"),
                       "($.secrets[1].usage[1])", "unknown usage 'admin'");
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "usage: []}\n"),
                       "($.secrets[1].usage)", "expected 1 to 2 usages");
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "usage: [client, client]}\n"),
                       "($.secrets[1].usage[1])", "duplicate entry");
}

static void test_refused_fields(void **state)
{
        (void)state;
        expect_refused(SEC("  - {name: p, kind: public-key, of: t}\n"
                           "  - {name: t, kind: ascii, size: 4}\n"),
                       "($.secrets[0].of)",
                       "'of' must name a private-key secret; 't' is of kind ascii");
        expect_refused(SEC(CA "  - {name: p, kind: public-key, of: ca}\n"), "($.secrets[1].of)",
                       "'ca' is of kind x509-ca");
        expect_refused(SEC("  - {name: p, kind: public-key, of: nope}\n"), "($.secrets[0].of)",
                       "'of' refers to undeclared secret 'nope'");
        expect_refused(SEC("  - {name: p, kind: public-key}\n"), "($.secrets[0])",
                       "missing required key 'of'");
        expect_refused(SEC("  - {name: ca, kind: x509-ca}\n"), "($.secrets[0])",
                       "missing required key 'common_name'");
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: \"\"}\n"),
                       "($.secrets[0].common_name)", "1 to 64 printable ASCII");
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: \"a\\tb\"}\n"),
                       "($.secrets[0].common_name)", "1 to 64 printable ASCII");
        expect_refused(SEC("  - {name: ca, kind: x509-ca, common_name: "
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n"),
                       "($.secrets[0].common_name)", "1 to 64 printable ASCII");
        /* Keys of other kinds are refused at the key. */
        expect_refused(SEC("  - {name: k, kind: private-key, size: 32}\n"), "($.secrets[0].size)",
                       "key 'size' is not allowed for kind private-key");
        expect_refused(SEC("  - {name: k, kind: ascii, size: 8, algorithm: p256}\n"),
                       "($.secrets[0].algorithm)", "key 'algorithm' is not allowed for kind ascii");
        expect_refused(SEC(CA "  - {name: k, kind: x509-ca, common_name: c, dns: [a.b]}\n"),
                       "($.secrets[1].dns)", "key 'dns' is not allowed for kind x509-ca");
        expect_refused(SEC("  - {name: k, kind: public-key, of: k, algorithm: p256}\n"),
                       "($.secrets[0].algorithm)", "not allowed for kind public-key");
        expect_refused(SEC("  - {name: k, kind: private-key, value: abc}\n"),
                       "($.secrets[0].value)", "not allowed for kind private-key");
        expect_refused(SEC("  - {name: k, kind: private-key, curve: p256}\n"),
                       "($.secrets[0].curve)", "unknown key 'curve'");
        expect_refused(SEC("  - {name: k, kind: rsa2048}\n"), "($.secrets[0].kind)",
                       "unknown secret kind 'rsa2048'");
}

/* ---- encodings --------------------------------------------------------------------------- */

static void test_encoding_fit(void **state)
{
        static const enum policy_secret_kind plain[] = {POLICY_SECRET_ASCII, POLICY_SECRET_HEX,
                                                        POLICY_SECRET_BASE64, POLICY_SECRET_BINARY};

        (void)state;
        for (size_t i = 0; i < 4; i++) {
                assert_true(policy_encoding_fits(plain[i], POLICY_ENC_DEFAULT));
                assert_true(policy_encoding_fits(plain[i], POLICY_ENC_HEX));
                assert_true(policy_encoding_fits(plain[i], POLICY_ENC_BASE64));
                assert_false(policy_encoding_fits(plain[i], POLICY_ENC_PEM));
                assert_false(policy_encoding_fits(plain[i], POLICY_ENC_DER_BASE64));
                assert_false(policy_encoding_fits(plain[i], POLICY_ENC_CHAIN));
                assert_false(policy_encoding_fits(plain[i], POLICY_ENC_PKCS8));
                assert_false(policy_encoding_fits(plain[i], POLICY_ENC_KEY));
                assert_false(policy_encoding_fits(plain[i], POLICY_ENC_PUBLIC));
        }
        assert_true(policy_encoding_fits(POLICY_SECRET_PRIVATE_KEY, POLICY_ENC_PKCS8));
        assert_true(policy_encoding_fits(POLICY_SECRET_PRIVATE_KEY, POLICY_ENC_PUBLIC));
        assert_true(policy_encoding_fits(POLICY_SECRET_PRIVATE_KEY, POLICY_ENC_DER_BASE64));
        assert_false(policy_encoding_fits(POLICY_SECRET_PRIVATE_KEY, POLICY_ENC_CHAIN));
        assert_false(policy_encoding_fits(POLICY_SECRET_PRIVATE_KEY, POLICY_ENC_KEY));
        assert_true(policy_encoding_fits(POLICY_SECRET_PUBLIC_KEY, POLICY_ENC_PEM));
        assert_false(policy_encoding_fits(POLICY_SECRET_PUBLIC_KEY, POLICY_ENC_PKCS8));
        assert_false(policy_encoding_fits(POLICY_SECRET_PUBLIC_KEY, POLICY_ENC_CHAIN));
        for (int e = POLICY_ENC_DEFAULT; e <= POLICY_ENC_PUBLIC; e++) {
                assert_true(policy_encoding_fits(POLICY_SECRET_X509, (enum policy_enc)e));
                assert_true(policy_encoding_fits(POLICY_SECRET_X509_CA, (enum policy_enc)e));
        }
        assert_false(policy_encoding_fits((enum policy_secret_kind)0, POLICY_ENC_DEFAULT));
        assert_false(policy_encoding_fits((enum policy_secret_kind)99, POLICY_ENC_DEFAULT));
        assert_string_equal(policy_secret_kind_name(POLICY_SECRET_X509_CA), "x509-ca");
        assert_null(policy_secret_kind_name((enum policy_secret_kind)0));
        assert_null(policy_secret_kind_name((enum policy_secret_kind)(POLICY_SECRET_KIND_MAX + 1)));
}

static void test_encodings_in_documents(void **state)
{
        (void)state;
        expect_refused(HEAD SERVICE_ENV("$$coffer:k:chain$$") "secrets:\n"
                                                              "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)",
                       "placeholder 'k:chain': the encoding does not fit secret 'k' of kind "
                       "private-key");
        expect_refused(HEAD SERVICE_ENV("$$coffer:t:pem$$") "secrets:\n"
                                                            "  - {name: t, kind: hex, size: 4}\n",
                       "($.services[0].environment.V)", "does not fit secret 't' of kind hex");
        expect_refused(
            HEAD SERVICE_ENV("$$coffer:p:pkcs8:json$$") "secrets:\n"
                                                        "  - {name: k, kind: private-key}\n"
                                                        "  - {name: p, kind: public-key, of: k}\n",
            "($.services[0].environment.V)", "of kind public-key");
        expect_refused(HEAD SERVICE_ENV("$$coffer:k:der$$") "secrets:\n"
                                                            "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)", "unknown encoding in placeholder 'k:der'");
        expect_refused(
            HEAD SERVICE_ENV("$$coffer:k:json:pem$$") "secrets:\n"
                                                      "  - {name: k, kind: private-key}\n",
            "($.services[0].environment.V)", "unknown encoding");
        expect_refused(
            HEAD SERVICE_ENV("$$coffer:k:json:json$$") "secrets:\n"
                                                       "  - {name: k, kind: private-key}\n",
            "($.services[0].environment.V)", "unknown encoding");
        expect_refused(HEAD SERVICE_ENV("$$coffer:k:$$") "secrets:\n"
                                                         "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)", "malformed placeholder");
        expect_refused(HEAD SERVICE_ENV("$$coffer:k:PEM$$") "secrets:\n"
                                                            "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)", "malformed placeholder");
        expect_refused(HEAD SERVICE_ENV("$$coffer::pem$$") "secrets:\n"
                                                           "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)", "malformed placeholder");
        expect_refused(HEAD SERVICE_ENV("$$coffer:nope:pem$$") "secrets:\n"
                                                               "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)", "undeclared secret 'nope'");
        expect_refused(
            HEAD SERVICE_ENV("$$coffer:b:json$$") "secrets:\n"
                                                  "  - {name: b, kind: binary, size: 4}\n",
            "($.services[0].environment.V)",
            "placeholder 'b:json': a binary secret cannot be placed in JSON as is");
        /* Each fitting encoding is accepted, in files too. */
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(HEAD SERVICE_ENV(
                    "$$coffer:ca:pem$$$$coffer:ca:der:base64$$"
                    "$$coffer:ca:hex$$$$coffer:ca:base64$$$$coffer:ca:chain$$"
                    "$$coffer:ca:pkcs8$$$$coffer:ca:key$$$$coffer:ca:public$$"
                    "$$coffer:ca:json$$$$coffer:ca:chain:json$$"
                    "$$coffer:t:hex$$$$coffer:t:base64:json$$") "secrets:\n" CA
                                                                "  - {name: t, kind: binary, size: "
                                                                "4}\n");
                assert_non_null(strstr(p->services[0].env[0].value, "$$coffer:ca:der:base64$$"));
        }
}

static void test_scanner_and_split(void **state)
{
        struct cf_cursor c = cf_cursor_make(cf_slice_str("a$$coffer:x:der:base64$$b$$coffer:y$$"));
        struct cf_slice lit, name;
        char n[POLICY_SECRET_NAME_MAX + 1];
        struct policy_encoding e;

        (void)state;
        assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_FOUND);
        assert_true(cf_slice_eq(name, cf_slice_str("x:der:base64")));
        assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_FOUND);
        assert_true(cf_slice_eq(lit, cf_slice_str("b")));
        assert_true(cf_slice_eq(name, cf_slice_str("y")));
        assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_END);

        static const char *const malformed[] = {
            "$$coffer:x:$$",
            "$$coffer::pem$$",
            "$$coffer:x:PEM$$",
            "$$coffer:x:p-m$$",
            "$$coffer:x:aaaaaaaaaaaaaaaaaaaaaaaaa$$" /* 25 > POLICY_ENCODING_MAX */,
            "$$coffer:x:pem"};
        for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
                c = cf_cursor_make(cf_slice_str(malformed[i]));
                assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_MALFORMED);
        }

        assert_int_equal(policy_placeholder_split("abc", n, &e).code, 0);
        assert_string_equal(n, "abc");
        assert_int_equal(e.base, POLICY_ENC_DEFAULT);
        assert_false(e.json);
        assert_int_equal(policy_placeholder_split("a.b:der:base64", n, &e).code, 0);
        assert_string_equal(n, "a.b");
        assert_int_equal(e.base, POLICY_ENC_DER_BASE64);
        assert_false(e.json);
        assert_int_equal(policy_placeholder_split("k:chain:json", n, &e).code, 0);
        assert_int_equal(e.base, POLICY_ENC_CHAIN);
        assert_true(e.json);
        assert_int_equal(policy_placeholder_split("k:json", n, &e).code, 0);
        assert_int_equal(e.base, POLICY_ENC_DEFAULT);
        assert_true(e.json);
        static const struct {
                const char *enc;
                enum policy_enc base;
        } all[] = {{"pem", POLICY_ENC_PEM},     {"der:base64", POLICY_ENC_DER_BASE64},
                   {"hex", POLICY_ENC_HEX},     {"base64", POLICY_ENC_BASE64},
                   {"chain", POLICY_ENC_CHAIN}, {"pkcs8", POLICY_ENC_PKCS8},
                   {"key", POLICY_ENC_KEY},     {"public", POLICY_ENC_PUBLIC}};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                char ref[64];
                snprintf(ref, sizeof(ref), "s:%s", all[i].enc);
                assert_int_equal(policy_placeholder_split(ref, n, &e).code, 0);
                assert_int_equal(e.base, all[i].base);
                snprintf(ref, sizeof(ref), "s:%s:json", all[i].enc);
                assert_int_equal(policy_placeholder_split(ref, n, &e).code, 0);
                assert_int_equal(e.base, all[i].base);
                assert_true(e.json);
        }
        static const char *const bad[] = {"",
                                          ":pem",
                                          "a:",
                                          "a:der",
                                          "a:base64:der",
                                          "a:json:json",
                                          "a:pem:json:json",
                                          "a:JSON",
                                          "a b:pem",
                                          "a:jsonx",
                                          "a::json"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                e.base = POLICY_ENC_PEM;
                assert_int_equal(policy_placeholder_split(bad[i], n, &e).code, CF_E_MALFORMED);
                assert_int_equal(e.base, POLICY_ENC_PEM); /* untouched on failure */
        }
}

static cf_status lookup(void *ctx, const char *name, struct cf_slice *ret)
{
        struct cf_buf *seen = ctx;

        /* The whole reference reaches the lookup: it decides how to render. */
        TRY(cf_buf_append_str(seen, "|"));
        TRY(cf_buf_append_str(seen, name));
        *ret = cf_slice_str("V");
        return CF_OK;
}

static void test_substitute_passes_reference(void **state)
{
        struct cf_buf seen, out;

        (void)state;
        cf_buf_init(&seen, 1024, false);
        cf_buf_init(&out, 1024, true);
        assert_int_equal(
            policy_substitute("a$$coffer:k:pkcs8$$b$$coffer:k$$c$$coffer:c:chain:json$$", lookup,
                              &seen, &out)
                .code,
            0);
        assert_string_equal((const char *)seen.ptr, "|k:pkcs8|k|c:chain:json");
        assert_string_equal((const char *)out.ptr, "aVbVcV");
        cf_buf_reset(&out);
        assert_int_equal(policy_substitute("x$$coffer:k:$$", lookup, &seen, &out).code,
                         CF_E_MALFORMED);
        assert_int_equal(out.size, 0);
        cf_buf_done(&out);
        cf_buf_done(&seen);
}

static void test_json_escape(void **state)
{
        struct cf_buf out;
        static const uint8_t in[] = "-----BEGIN X-----\nab\"c\\d\te\r\x01\x7f\xc3\xa4/";

        (void)state;
        cf_buf_init(&out, 256, false);
        assert_int_equal(policy_json_escape(cf_slice_make(in, sizeof(in) - 1), &out).code, 0);
        assert_string_equal((const char *)out.ptr,
                            "-----BEGIN X-----\\nab\\\"c\\\\d\\te\\r\\u0001\\u007f\xc3\xa4/");
        cf_buf_reset(&out);
        assert_int_equal(policy_json_escape(cf_slice_make("\0", 1), &out).code, 0);
        assert_string_equal((const char *)out.ptr, "\\u0000");
        cf_buf_done(&out);
        /* A too-small buffer fails instead of truncating. */
        cf_buf_init(&out, 4, false);
        assert_int_equal(policy_json_escape(cf_slice_str("\n\n\n"), &out).code, CF_E_LIMIT);
        cf_buf_done(&out);
}

/* ---- JSON view and robustness -------------------------------------------------------------- */

static void test_json_round_trip(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(PKI_YAML);
        CF_CLEANUP(policy_freep) struct policy *q = NULL;
        json_t *j = NULL;
        char *text;

        (void)state;
        assert_int_equal(policy_to_json(p, &j).code, 0);
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        assert_non_null(text);
        q = parse_ok(text);
        free(text);
        assert_int_equal(q->n_secrets, p->n_secrets);
        for (size_t i = 0; i < p->n_secrets; i++) {
                const struct policy_secret *a = &p->secrets[i], *b = &q->secrets[i];
                assert_string_equal(a->name, b->name);
                assert_int_equal(a->kind, b->kind);
                assert_int_equal(a->algorithm, b->algorithm);
                assert_int_equal(a->validity_days, b->validity_days);
                assert_int_equal(a->usage, b->usage);
                assert_int_equal(a->path_len, b->path_len);
                assert_int_equal(a->n_dns, b->n_dns);
                assert_int_equal(a->n_ip, b->n_ip);
                assert_true((a->issuer == NULL) == (b->issuer == NULL));
                assert_true((a->of == NULL) == (b->of == NULL));
        }
}

/* Every prefix of a valid PKI document: no crash, no leak (ASan), a model or an error. */
static void test_truncation(void **state)
{
        size_t n = strlen(PKI_YAML);

        (void)state;
        for (size_t i = 0; i < n; i++) {
                struct policy *p = NULL;
                cf_status s = policy_parse(cf_slice_make(PKI_YAML, i), &p, &g_errs);
                if (cf_ok(s)) {
                        assert_non_null(p);
                        p = policy_free(p);
                } else {
                        assert_null(p);
                        assert_true(g_errs.n > 0);
                }
        }
}

/* Every single-byte change of the secrets section: no crash, and a model only when valid. */
static void test_mutation(void **state)
{
        size_t n = strlen(PKI_YAML);
        char *copy = malloc(n + 1);
        static const char subst[] = {'x', ':', '-', '$', '1', ' ', '"'};

        (void)state;
        assert_non_null(copy);
        for (size_t i = strlen(HEAD); i < n; i += 3) {
                for (size_t k = 0; k < sizeof(subst); k++) {
                        struct policy *p = NULL;
                        memcpy(copy, PKI_YAML, n + 1);
                        copy[i] = subst[k];
                        if (cf_ok(policy_parse(cf_slice_make(copy, n), &p, &g_errs))) {
                                p = policy_free(p);
                        }
                }
        }
        free(copy);
}

/* ---- versions, renewal, export and import ------------------------------------------------- */

static const char VERSIONS_YAML[] = HEAD SERVICE_ENV(
    "$$coffer:tok:previous$$ $$coffer:leaf:previous:chain:json$$ "
    "$$coffer:db:previous:der:base64:json$$ $$coffer:db:chain$$") "secrets:\n"
                                                                  "  - {name: tok, kind: ascii, "
                                                                  "size: 8, rotate: 2, export: "
                                                                  "[shop/app, \"team/*\"]}\n"
                                                                  "  - {name: k, kind: "
                                                                  "private-key, rotate: 1}\n"
                                                                  "  - {name: pub, kind: "
                                                                  "public-key, of: k, export: "
                                                                  "[a/b/c]}\n"
                                                                  "  - {name: ca, kind: x509-ca, "
                                                                  "common_name: c, rotate: 7, "
                                                                  "renew_before_days: 0}\n"
                                                                  "  - {name: leaf, kind: x509, "
                                                                  "issuer: ca, common_name: l, "
                                                                  "validity_days: 30}\n"
                                                                  "  - {name: short, kind: x509, "
                                                                  "issuer: ca, common_name: s, "
                                                                  "validity_days: 2, "
                                                                  "renew_before_days: 3}\n"
                                                                  "  - name: db\n"
                                                                  "    import: {policy: team/db, "
                                                                  "secret: password, digest: "
                                                                  "\"ABCDEF0123456789abcdef01234567"
                                                                  "89ABCDEF0123456789abcdef01234567"
                                                                  "89\"}\n"
                                                                  "  - {name: db2, import: "
                                                                  "{policy: team/db, secret: "
                                                                  "cert}}\n";

static void test_versions_model(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(VERSIONS_YAML);
        const struct policy_secret *s;

        (void)state;
        s = policy_find_secret(p, "tok");
        assert_int_equal(s->rotate, 2);
        assert_int_equal(s->n_export_to, 2);
        assert_string_equal(s->export_to[0], "shop/app");
        assert_string_equal(s->export_to[1], "team/*");
        assert_int_equal(policy_find_secret(p, "k")->rotate, 1);
        assert_int_equal(policy_find_secret(p, "k")->n_export_to, 0);
        assert_int_equal(policy_find_secret(p, "pub")->rotate, 0);
        s = policy_find_secret(p, "ca");
        assert_int_equal(s->rotate, 7);
        assert_int_equal(s->renew_before_days, 0); /* never renewed */
        /* default: a third of the validity, at least one day */
        assert_int_equal(policy_find_secret(p, "leaf")->renew_before_days, 10);
        assert_int_equal(policy_find_secret(p, "short")->renew_before_days, 3);
        {
                CF_CLEANUP(policy_freep)
                struct policy *q = parse_ok(SEC(CA "  - {name: l, kind: x509, issuer: ca, "
                                                   "common_name: l, validity_days: 2}\n"));
                assert_int_equal(policy_find_secret(q, "l")->renew_before_days, 1);
                assert_int_equal(policy_find_secret(q, "ca")->renew_before_days,
                                 POLICY_CA_VALIDITY_DEFAULT / 3);
        }
        s = policy_find_secret(p, "db");
        assert_int_equal(s->kind, POLICY_SECRET_IMPORT);
        assert_string_equal(s->import_policy, "team/db");
        assert_string_equal(s->import_secret, "password");
        assert_string_equal(s->import_digest,
                            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        s = policy_find_secret(p, "db2");
        assert_int_equal(s->kind, POLICY_SECRET_IMPORT);
        assert_string_equal(s->import_digest, "");                  /* not pinned */
        assert_null(policy_secret_kind_name(POLICY_SECRET_IMPORT)); /* not a document kind */
}

static void test_versions_refused(void **state)
{
        (void)state;
        expect_refused(SEC("  - {name: t, kind: ascii, value: abc, rotate: 1}\n"),
                       "($.secrets[0].rotate)", "rotate applies to generated secrets");
        expect_refused(SEC("  - {name: t, kind: hex, size: 4, rotate: -1}\n"),
                       "($.secrets[0].rotate)", "expected an integer from 0 to 1000000000");
        expect_refused(SEC("  - {name: t, kind: hex, size: 4, rotate: \"2\"}\n"),
                       "($.secrets[0].rotate)", "got a string");
        expect_refused(SEC("  - {name: k, kind: private-key}\n"
                           "  - {name: p, kind: public-key, of: k, rotate: 1}\n"),
                       "($.secrets[1].rotate)", "key 'rotate' is not allowed for kind public-key");
        expect_refused(SEC("  - {name: k, kind: private-key, renew_before_days: 3}\n"),
                       "($.secrets[0].renew_before_days)",
                       "key 'renew_before_days' is not allowed for kind private-key");
        expect_refused(SEC("  - {name: t, kind: ascii, size: 3, renew_before_days: 3}\n"),
                       "($.secrets[0].renew_before_days)", "not allowed for kind ascii");
        expect_refused(SEC("  - {name: c, kind: x509-ca, common_name: c, renew_before_days: -1}\n"),
                       "($.secrets[0].renew_before_days)", "expected an integer from 0 to 36500");
        expect_refused(SEC(CA "  - {name: l, kind: x509, issuer: ca, common_name: l, "
                              "renew_before_days: 36501}\n"),
                       "($.secrets[1].renew_before_days)", "got 36501");
}

static void test_export_refused(void **state)
{
        static const char *const bad[] = {"a",    "a/",   "/*",   "*",    "a/*/b", "A/b",
                                          "a/**", "a//b", "a/b/", "-a/b", "a/*x"};
        char doc[1024];

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(doc, sizeof(doc),
                         SEC("  - {name: t, kind: ascii, size: 3, export: "
                             "[ok/x, \"%s\"]}\n"),
                         bad[i]);
                expect_refused(doc, "($.secrets[0].export[1])", "invalid export entry");
        }
        expect_refused(SEC("  - {name: t, kind: ascii, size: 3, export: []}\n"),
                       "($.secrets[0].export)", "expected 1 to 64 policy names or namespaces");
        expect_refused(SEC("  - {name: t, kind: ascii, size: 3, export: a/b}\n"),
                       "($.secrets[0].export)", "expected a list");
        expect_refused(SEC("  - {name: t, kind: ascii, size: 3, export: [a/b, a/b]}\n"),
                       "($.secrets[0].export[1])", "duplicate entry 'a/b'");
        {
                char big[8192];
                size_t o = (size_t)snprintf(big, sizeof(big), "%s",
                                            SEC("  - {name: t, kind: ascii, size: 3, export: ["));
                for (int i = 0; i <= POLICY_EXPORTS_MAX; i++) {
                        o +=
                            (size_t)snprintf(big + o, sizeof(big) - o, "%sa/p%d", i ? ", " : "", i);
                }
                snprintf(big + o, sizeof(big) - o, "]}\n");
                expect_refused(big, "($.secrets[0].export)", "got 65");
        }
}

static void test_import_refused(void **state)
{
        (void)state;
        expect_refused(SEC("  - {name: x, kind: ascii, import: {policy: a/b, secret: s}}\n"),
                       "($.secrets[0].kind)", "an imported secret takes the exporter's kind");
        expect_refused(SEC("  - {name: x, size: 3, import: {policy: a/b, secret: s}}\n"),
                       "($.secrets[0].size)", "key 'size' is not allowed for an imported secret");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s}, export: [c/d]}\n"),
                       "($.secrets[0].export)", "not allowed for an imported secret");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s}, rotate: 1}\n"),
                       "($.secrets[0].rotate)", "not allowed for an imported secret");
        expect_refused(SEC("  - {name: x, import: {policy: ab, secret: s}}\n"),
                       "($.secrets[0].import.policy)", "invalid policy name 'ab'");
        expect_refused(SEC("  - {name: x, import: {policy: shop/pki, secret: s}}\n"),
                       "($.secrets[0].import.policy)", "a policy cannot import from itself");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: \"s s\"}}\n"),
                       "($.secrets[0].import.secret)", "invalid secret name 's s'");
        expect_refused(SEC("  - {name: x, import: {policy: a/b}}\n"), "($.secrets[0].import)",
                       "missing required key 'secret'");
        expect_refused(SEC("  - {name: x, import: {secret: s}}\n"), "($.secrets[0].import)",
                       "missing required key 'policy'");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s, digest: abc}}\n"),
                       "($.secrets[0].import.digest)", "digest must be 64 hex digits");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s, digest: " M64A "0}}\n"),
                       "($.secrets[0].import.digest)", "digest must be 64 hex digits");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s, pin: x}}\n"),
                       "($.secrets[0].import.pin)", "unknown key 'pin'");
        expect_refused(SEC("  - {name: x, import: a/b}\n"), "($.secrets[0].import)",
                       "expected a mapping");
        expect_refused(SEC("  - {name: x}\n"), "($.secrets[0])", "missing required key 'kind'");
        /* An import is not a local CA or private key: issuer and of must be local. */
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s}}\n"
                           "  - {name: l, kind: x509, issuer: x, common_name: l}\n"),
                       "($.secrets[1].issuer)", "'x' is of kind import");
        expect_refused(SEC("  - {name: x, import: {policy: a/b, secret: s}}\n"
                           "  - {name: p, kind: public-key, of: x}\n"),
                       "($.secrets[1].of)", "'x' is of kind import");
}

static void test_previous_split(void **state)
{
        char n[POLICY_SECRET_NAME_MAX + 1];
        struct policy_encoding e;
        struct cf_cursor c;
        struct cf_slice lit, name;

        (void)state;
        assert_int_equal(policy_placeholder_split("k", n, &e).code, 0);
        assert_false(e.previous);
        assert_int_equal(policy_placeholder_split("k:previous", n, &e).code, 0);
        assert_string_equal(n, "k");
        assert_true(e.previous);
        assert_false(e.json);
        assert_int_equal(e.base, POLICY_ENC_DEFAULT);
        assert_int_equal(policy_placeholder_split("k:previous:pem", n, &e).code, 0);
        assert_true(e.previous);
        assert_int_equal(e.base, POLICY_ENC_PEM);
        assert_int_equal(policy_placeholder_split("k:previous:json", n, &e).code, 0);
        assert_true(e.previous && e.json);
        assert_int_equal(e.base, POLICY_ENC_DEFAULT);
        assert_int_equal(policy_placeholder_split("k:previous:der:base64:json", n, &e).code, 0);
        assert_true(e.previous && e.json);
        assert_int_equal(e.base, POLICY_ENC_DER_BASE64);
        assert_int_equal(policy_placeholder_split("k:pem", n, &e).code, 0);
        assert_false(e.previous);
        static const char *const bad[] = {
            "k:previous:",   "k:previous:previous", "k:prev",
            "k:Previous",    "k:pem:previous",      "k:previousx",
            "k:previouspem", "k:previous::pem",     "k:json:previous"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(policy_placeholder_split(bad[i], n, &e).code, CF_E_MALFORMED);
        }
        /* The longest form fits the scanner's limit exactly. */
        c = cf_cursor_make(cf_slice_str("$$coffer:k:previous:der:base64:json$$"));
        assert_int_equal(policy_placeholder_next(&c, &lit, &name), POLICY_PH_FOUND);
        assert_true(cf_slice_eq(name, cf_slice_str("k:previous:der:base64:json")));
}

static void test_previous_in_documents(void **state)
{
        (void)state;
        expect_refused(HEAD SERVICE_ENV("$$coffer:k:previous:chain$$") "secrets:\n"
                                                                       "  - {name: k, kind: "
                                                                       "private-key}\n",
                       "($.services[0].environment.V)",
                       "placeholder 'k:previous:chain': the encoding does not fit secret 'k'");
        expect_refused(HEAD SERVICE_ENV("$$coffer:b:previous:json$$") "secrets:\n"
                                                                      "  - {name: b, kind: "
                                                                      "binary, size: 4}\n",
                       "($.services[0].environment.V)", "a binary secret cannot be placed in JSON");
        expect_refused(HEAD SERVICE_ENV("$$coffer:k:prev$$") "secrets:\n"
                                                             "  - {name: k, kind: private-key}\n",
                       "($.services[0].environment.V)", "optionally after previous:");
        expect_refused(HEAD SERVICE_ENV("$$coffer:nope:previous$$") "secrets:\n"
                                                                    "  - {name: k, kind: "
                                                                    "private-key}\n",
                       "($.services[0].environment.V)", "undeclared secret 'nope'");
        /* An import accepts every encoding the parser knows; cofferd checks the kind. */
        {
                CF_CLEANUP(policy_freep)
                struct policy *p = parse_ok(
                    HEAD SERVICE_ENV("$$coffer:x:chain$$$$coffer:x:previous:pkcs8:json$$$$coffer:x:"
                                     "json$$") "secrets:\n"
                                               "  - {name: x, import: {policy: a/b, secret: s}}\n");
                assert_int_equal(p->n_secrets, 1);
        }
        for (int e = POLICY_ENC_DEFAULT; e <= POLICY_ENC_PUBLIC; e++) {
                assert_true(policy_encoding_fits(POLICY_SECRET_IMPORT, (enum policy_enc)e));
        }
}

static void test_export_allows(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(VERSIONS_YAML);
        const struct policy_secret *tok = policy_find_secret(p, "tok");
        const struct policy_secret *pub = policy_find_secret(p, "pub");

        (void)state;
        assert_true(policy_export_allows(tok, "shop/app"));
        assert_true(policy_export_allows(tok, "team/app"));
        assert_true(policy_export_allows(tok, "team/sub/app"));
        assert_false(policy_export_allows(tok, "team"));
        assert_false(policy_export_allows(tok, "teams/app"));
        assert_false(policy_export_allows(tok, "shop/app2"));
        assert_false(policy_export_allows(tok, "shop/ap"));
        assert_false(policy_export_allows(tok, "shop/app/x"));
        assert_true(policy_export_allows(pub, "a/b/c"));
        assert_false(policy_export_allows(pub, "a/b"));
        assert_false(policy_export_allows(policy_find_secret(p, "k"), "shop/app"));
        assert_false(policy_export_allows(policy_find_secret(p, "db"), "shop/app"));
        assert_false(policy_export_allows(NULL, "shop/app"));
        assert_false(policy_export_allows(tok, NULL));
}

static void test_versions_json_round_trip(void **state)
{
        CF_CLEANUP(policy_freep) struct policy *p = parse_ok(VERSIONS_YAML);
        CF_CLEANUP(policy_freep) struct policy *q = NULL;
        json_t *j = NULL;
        char *text;

        (void)state;
        assert_int_equal(policy_to_json(p, &j).code, 0);
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        assert_non_null(text);
        q = parse_ok(text);
        free(text);
        assert_int_equal(q->n_secrets, p->n_secrets);
        for (size_t i = 0; i < p->n_secrets; i++) {
                const struct policy_secret *a = &p->secrets[i], *b = &q->secrets[i];
                assert_string_equal(a->name, b->name);
                assert_int_equal(a->kind, b->kind);
                assert_int_equal(a->rotate, b->rotate);
                assert_int_equal(a->renew_before_days, b->renew_before_days);
                assert_int_equal(a->n_export_to, b->n_export_to);
                for (size_t k = 0; k < a->n_export_to; k++) {
                        assert_string_equal(a->export_to[k], b->export_to[k]);
                }
                assert_string_equal(a->import_digest, b->import_digest);
                assert_true((a->import_policy == NULL) == (b->import_policy == NULL));
                if (a->import_policy != NULL) {
                        assert_string_equal(a->import_policy, b->import_policy);
                        assert_string_equal(a->import_secret, b->import_secret);
                }
        }
}

/* Every prefix and single-byte changes of the versions document: no crash, no leak. */
static void test_versions_truncation_and_mutation(void **state)
{
        size_t n = strlen(VERSIONS_YAML);
        char *copy = malloc(n + 1);
        static const char subst[] = {'x', ':', '-', '/', '*', ' ', '{'};

        (void)state;
        assert_non_null(copy);
        for (size_t i = 0; i < n; i++) {
                struct policy *p = NULL;
                if (cf_ok(policy_parse(cf_slice_make(VERSIONS_YAML, i), &p, &g_errs))) {
                        p = policy_free(p);
                } else {
                        assert_null(p);
                        assert_true(g_errs.n > 0);
                }
        }
        for (size_t i = strlen(HEAD); i < n; i += 2) {
                for (size_t k = 0; k < sizeof(subst); k++) {
                        struct policy *p = NULL;
                        memcpy(copy, VERSIONS_YAML, n + 1);
                        copy[i] = subst[k];
                        if (cf_ok(policy_parse(cf_slice_make(copy, n), &p, &g_errs))) {
                                p = policy_free(p);
                        }
                }
        }
        free(copy);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_model),
            cmocka_unit_test(test_path_len),
            cmocka_unit_test(test_refused_algorithms),
            cmocka_unit_test(test_refused_issuers),
            cmocka_unit_test(test_refused_validity),
            cmocka_unit_test(test_issuer_depth),
            cmocka_unit_test(test_refused_sans),
            cmocka_unit_test(test_refused_fields),
            cmocka_unit_test(test_encoding_fit),
            cmocka_unit_test(test_encodings_in_documents),
            cmocka_unit_test(test_scanner_and_split),
            cmocka_unit_test(test_substitute_passes_reference),
            cmocka_unit_test(test_json_escape),
            cmocka_unit_test(test_json_round_trip),
            cmocka_unit_test(test_truncation),
            cmocka_unit_test(test_mutation),
            cmocka_unit_test(test_versions_model),
            cmocka_unit_test(test_versions_refused),
            cmocka_unit_test(test_export_refused),
            cmocka_unit_test(test_import_refused),
            cmocka_unit_test(test_previous_split),
            cmocka_unit_test(test_previous_in_documents),
            cmocka_unit_test(test_export_allows),
            cmocka_unit_test(test_versions_json_round_trip),
            cmocka_unit_test(test_versions_truncation_and_mutation),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
