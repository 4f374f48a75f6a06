"""Secret versions, renewal and sharing against a real cofferd: an update with a new `rotate`
gives a service the new value at NAME and the old one at NAME:previous while unchanged secrets
keep theirs; rotating a CA re-issues what it signed; a certificate close to its expiry is
re-issued for the same key at activation (checked with the openssl command-line tool); a
secret exported to another policy (or a namespace) can be imported, and every refusal
(no consent, a pinned digest that differs, consent withdrawn, exporter deleted) reaches the
author or the activation with its reason."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import sim_policy

PYTHON = os.path.realpath("/usr/bin/python3")
OPENSSL = shutil.which("openssl")
DIR = "/etc/coffer-secrets"

# Reads every injected file and prints them as one JSON object (the files exist only in the
# program's mount namespace).
SCRIPT = ("import json, os; d = %r; print(json.dumps({n: open(os.path.join(d, n)).read() "
          "for n in sorted(os.listdir(d))}))" % DIR)

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


def policy(world, name, secrets, files, predecessor=None):
    doc = sim_policy(name, world.key_id(), PYTHON, command=["python3", "-c", SCRIPT],
                     files=[{"path": DIR + "/" + n, "content": c} for n, c in files.items()],
                     secrets=secrets)
    doc["predecessor"] = predecessor
    return doc


def create(world, doc):
    return json.loads(world.create(doc).stdout)["digest"]


def update(world, doc, predecessor):
    doc = dict(doc, predecessor=predecessor)
    return json.loads(world.update(doc).stdout)["digest"]


def activate(world, name):
    p = world.run(PYTHON, name, "app")
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode())


def refused(world, name):
    p = world.run(PYTHON, name, "app")
    assert p.returncode != 0, p.stdout.decode()
    return p.stderr.decode()


def openssl(*args, stdin=None):
    p = subprocess.run([OPENSSL, *args], capture_output=True, timeout=30,
                       input=stdin.encode() if isinstance(stdin, str) else stdin)
    assert p.returncode == 0, "openssl %s: %s" % (args, p.stderr.decode())
    return p.stdout.decode()


def save(tmp, name, text):
    path = os.path.join(str(tmp), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def serial(pem):
    return openssl("x509", "-noout", "-serial", stdin=pem).strip()


def pubkey(pem):
    return openssl("x509", "-noout", "-pubkey", stdin=pem)


# ---- rotation ----------------------------------------------------------------------------

ROT_FILES = {
    "tok": "$$coffer:tok$$", "tok.prev": "$$coffer:tok:previous$$",
    "tok.prev.hex": "$$coffer:tok:previous:hex$$",
    "keep": "$$coffer:keep$$", "keep.prev": "$$coffer:keep:previous$$",
    "key.pub": "$$coffer:key:public$$", "key.prev.pub": "$$coffer:key:previous:public$$",
    "pub.prev": "$$coffer:pub:previous$$",
    "pw": "$$coffer:pw$$", "pw.prev": "$$coffer:pw:previous:json$$",
}


def rot_secrets(tok_rotate=None, key_rotate=None, pw="one"):
    tok = {"name": "tok", "kind": "ascii", "size": 24}
    if tok_rotate is not None:
        tok["rotate"] = tok_rotate
    key = {"name": "key", "kind": "private-key"}
    if key_rotate is not None:
        key["rotate"] = key_rotate
    return [tok, {"name": "keep", "kind": "hex", "size": 16}, key,
            {"name": "pub", "kind": "public-key", "of": "key"},
            {"name": "pw", "kind": "ascii", "value": pw}]


def test_rotation_keeps_one_previous_version(world):
    doc = policy(world, "rot/app", rot_secrets(), ROT_FILES)
    d = create(world, doc)
    v1 = activate(world, "rot/app")
    # never rotated: the previous version is the current one
    assert v1["tok.prev"] == v1["tok"] and v1["keep.prev"] == v1["keep"]
    assert v1["key.prev.pub"] == v1["key.pub"] == v1["pub.prev"]
    assert v1["pw"] == "one" and v1["pw.prev"] == "one"
    assert v1["tok.prev.hex"] == v1["tok"].encode().hex()

    # rotate: 2 makes a new tok; the old one is tok:previous; the rest keeps its value
    d = update(world, policy(world, "rot/app", rot_secrets(tok_rotate=2), ROT_FILES), d)
    v2 = activate(world, "rot/app")
    assert v2["tok"] != v1["tok"] and len(v2["tok"]) == 24
    assert v2["tok.prev"] == v1["tok"]
    assert v2["keep"] == v1["keep"] and v2["keep.prev"] == v1["keep"]
    assert v2["key.pub"] == v1["key.pub"]
    assert activate(world, "rot/app") == v2          # stable across activations

    # rotate again: only one previous version is kept (the one just replaced)
    d = update(world, policy(world, "rot/app", rot_secrets(tok_rotate=3), ROT_FILES), d)
    v3 = activate(world, "rot/app")
    assert v3["tok.prev"] == v2["tok"] and v3["tok"] not in (v1["tok"], v2["tok"])

    # a key rotates too, and the public-key secret follows it; a changed explicit value keeps
    # the old value as previous
    d = update(world, policy(world, "rot/app", rot_secrets(3, key_rotate=1, pw="two"),
                             ROT_FILES), d)
    v4 = activate(world, "rot/app")
    assert v4["key.pub"] != v3["key.pub"] and v4["key.prev.pub"] == v3["key.pub"]
    assert v4["pub.prev"] == v3["key.pub"]
    assert v4["pw"] == "two" and v4["pw.prev"] == "one"
    assert v4["tok"] == v3["tok"] and v4["tok.prev"] == v2["tok"]

    # an update that changes nothing keeps current and previous values
    update(world, policy(world, "rot/app", rot_secrets(3, key_rotate=1, pw="two"), ROT_FILES),
           d)
    assert activate(world, "rot/app") == v4


def test_previous_placeholder_refusals_at_load(world):
    me = world.key_id()
    for env, needle in [
        ("$$coffer:k:previous:chain$$", "placeholder 'k:previous:chain': the encoding does "
                                        "not fit secret 'k' of kind private-key"),
        ("$$coffer:k:prev$$", "unknown encoding in placeholder 'k:prev'"),
        ("$$coffer:k:previous:previous$$", "unknown encoding in placeholder"),
    ]:
        doc = sim_policy("rot/bad", me, PYTHON, env={"K": env},
                         secrets=[{"name": "k", "kind": "private-key"}])
        p = world.create(doc, check=False)
        assert p.returncode != 0
        assert needle in p.stderr, p.stderr
    doc = sim_policy("rot/bad", me, PYTHON,
                     secrets=[{"name": "k", "kind": "ascii", "value": "v", "rotate": 1}])
    p = world.create(doc, check=False)
    assert p.returncode != 0 and "$.secrets[0].rotate: rotate applies to generated" in p.stderr


CA_FILES = {
    "ca": "$$coffer:ca$$", "ca.prev": "$$coffer:ca:previous$$",
    "leaf": "$$coffer:leaf$$", "leaf.prev": "$$coffer:leaf:previous:pem$$",
    "leaf.chain": "$$coffer:leaf:chain$$", "leaf.prev.chain": "$$coffer:leaf:previous:chain$$",
    "bundle": "$$coffer:ca$$$$coffer:ca:previous$$",
}


def ca_secrets(ca_rotate=0, leaf_days=30, renew=None):
    leaf = {"name": "leaf", "kind": "x509", "issuer": "ca", "common_name": "svc.test",
            "dns": ["svc.test"], "validity_days": leaf_days}
    if renew is not None:
        leaf["renew_before_days"] = renew
    return [{"name": "ca", "kind": "x509-ca", "common_name": "Rotating CA", "rotate": ca_rotate},
            leaf]


@needs_openssl
def test_rotating_a_ca_reissues_what_it_signed(world, tmp_path):
    d = create(world, policy(world, "rot/ca", ca_secrets(), CA_FILES))
    v1 = activate(world, "rot/ca")
    update(world, policy(world, "rot/ca", ca_secrets(ca_rotate=1), CA_FILES), d)
    v2 = activate(world, "rot/ca")
    assert v2["ca"] != v1["ca"] and v2["ca.prev"] == v1["ca"]
    assert v2["leaf"] != v1["leaf"] and v2["leaf.prev"] == v1["leaf"]
    assert pubkey(v2["leaf"]) != pubkey(v1["leaf"])
    # the new leaf verifies under the new CA only, the old one under the old CA; a bundle of
    # both CAs trusts both during a rolling update
    new_ca, old_ca = save(tmp_path, "new.pem", v2["ca"]), save(tmp_path, "old.pem", v2["ca.prev"])
    both = save(tmp_path, "both.pem", v2["bundle"])
    leaf, old_leaf = save(tmp_path, "l.pem", v2["leaf"]), save(tmp_path, "ol.pem", v2["leaf.prev"])
    openssl("verify", "-CAfile", new_ca, leaf)
    openssl("verify", "-CAfile", old_ca, old_leaf)
    openssl("verify", "-CAfile", both, leaf)
    openssl("verify", "-CAfile", both, old_leaf)
    p = subprocess.run([OPENSSL, "verify", "-CAfile", new_ca, old_leaf], capture_output=True)
    assert p.returncode != 0
    # :previous:chain is the old leaf and the old CA
    assert v2["leaf.prev.chain"] == v1["leaf"] + v1["ca"]
    assert v2["leaf.chain"] == v2["leaf"] + v2["ca"]


# ---- renewal -----------------------------------------------------------------------------

@needs_openssl
def test_certificate_renewed_at_activation_keeps_its_key(world, tmp_path):
    # 2 days of validity, renewed when fewer than 3 remain: re-issued at every activation
    create(world, policy(world, "ren/app", ca_secrets(leaf_days=2, renew=3), CA_FILES))
    first = activate(world, "ren/app")
    second = activate(world, "ren/app")
    third = activate(world, "ren/app")
    serials = {serial(first["leaf"]), serial(second["leaf"]), serial(third["leaf"])}
    assert len(serials) == 3
    assert pubkey(first["leaf"]) == pubkey(second["leaf"]) == pubkey(third["leaf"])
    assert second["leaf.prev"] == first["leaf"] and third["leaf.prev"] == second["leaf"]
    # one bundle is consistent: chain and certificate are the same renewal
    assert third["leaf.chain"] == third["leaf"] + third["ca"]
    # the CA (default renewal: a third of ten years) is not renewed
    assert first["ca"] == third["ca"]
    out = openssl("x509", "-noout", "-text", stdin=third["leaf"])
    assert "DNS:svc.test" in out
    ca = save(tmp_path, "ca.pem", third["ca"])
    openssl("verify", "-CAfile", ca, save(tmp_path, "leaf.pem", third["leaf"]))
    # each renewal is audited, without key material
    path = str(tmp_path / "chain.json")
    world.coffer("audit", "fetch", "--out", path)
    with open(path) as f:
        entries = json.load(f)["entries"]
    renewed = [e["details"] for e in entries if e["type"] == "secret.renewed"]
    assert len(renewed) >= 2
    assert renewed[0]["policy"] == "ren/app" and renewed[0]["secret"] == "leaf"
    assert set(renewed[0]) >= {"serial", "not_after"}
    assert "PRIVATE" not in json.dumps(entries)


@needs_openssl
def test_certificate_not_due_is_kept(world):
    create(world, policy(world, "ren/keep", ca_secrets(leaf_days=30, renew=10), CA_FILES))
    a = activate(world, "ren/keep")
    b = activate(world, "ren/keep")
    assert a["leaf"] == b["leaf"] and a["leaf.prev"] == a["leaf"]


def test_renew_before_days_refusals(world):
    me = world.key_id()
    for value, needle in [(-1, "expected an integer from 0 to 36500, got -1"),
                          ("3", "expected an integer from 0 to 36500, got a string")]:
        doc = sim_policy("ren/bad", me, PYTHON, secrets=[
            {"name": "ca", "kind": "x509-ca", "common_name": "c", "renew_before_days": value}])
        p = world.create(doc, check=False)
        assert p.returncode != 0 and "$.secrets[0].renew_before_days: " + needle in p.stderr, \
            p.stderr
    doc = sim_policy("ren/bad", me, PYTHON, secrets=[
        {"name": "k", "kind": "private-key", "renew_before_days": 3}])
    p = world.create(doc, check=False)
    assert p.returncode != 0 and "key 'renew_before_days' is not allowed for kind private-key" \
        in p.stderr, p.stderr


# ---- export and import -------------------------------------------------------------------

EXP_FILES = {"pw": "$$coffer:pw$$", "pw.prev": "$$coffer:pw:previous$$",
             "cert": "$$coffer:cert:chain$$", "ca": "$$coffer:ca$$"}


def exporter(world, name, export, rotate=0):
    secrets = [{"name": "pw", "kind": "ascii", "size": 20, "rotate": rotate, "export": export},
               {"name": "ca", "kind": "x509-ca", "common_name": "Shared CA", "export": export},
               {"name": "cert", "kind": "x509", "issuer": "ca", "common_name": "db.test",
                "export": export}]
    return policy(world, name, secrets, EXP_FILES)


IMP_FILES = {"db_pw": "$$coffer:db_pw$$", "db_pw.prev": "$$coffer:db_pw:previous$$",
             "db_cert": "$$coffer:db_cert:chain$$", "own": "$$coffer:own$$"}


def importer(world, name, source="team/db", digest=None, files=IMP_FILES):
    pw = {"name": "db_pw", "import": {"policy": source, "secret": "pw"}}
    if digest:
        pw["import"]["digest"] = digest
    secrets = [pw, {"name": "db_cert", "import": {"policy": source, "secret": "cert"}},
               {"name": "own", "kind": "hex", "size": 8}]
    return policy(world, name, secrets, files)


@needs_openssl
def test_import_of_an_exported_secret(world, tmp_path):
    d = create(world, exporter(world, "team/db", ["team/app"]))
    exp = activate(world, "team/db")
    create(world, importer(world, "team/app", digest=d))
    imp = activate(world, "team/app")
    assert imp["db_pw"] == exp["pw"] and imp["db_pw.prev"] == exp["pw"]
    assert imp["db_cert"] == exp["cert"]
    ca = save(tmp_path, "ca.pem", exp["ca"])
    openssl("verify", "-CAfile", ca, save(tmp_path, "c.pem", imp["db_cert"]))
    # the exporter rotates its password: the importer (unpinned) sees the new value and the
    # previous one
    d = update(world, exporter(world, "team/db", ["team/app", "team/app2"]), d)
    create(world, importer(world, "team/app2"))
    assert activate(world, "team/app2")["db_pw"] == exp["pw"]
    update(world, exporter(world, "team/db", ["team/app", "team/app2"], rotate=1), d)
    exp2 = activate(world, "team/db")
    imp2 = activate(world, "team/app2")
    assert imp2["db_pw"] == exp2["pw"] != exp["pw"]
    assert imp2["db_pw.prev"] == exp["pw"]


def test_import_refused_without_consent(world):
    create(world, exporter(world, "team/db", ["team/other"]))
    p = world.create(importer(world, "team/app"), check=False)
    assert p.returncode != 0
    assert "$.secrets[0].import: secret pw of policy team/db is not exported to this policy" \
        in p.stderr, p.stderr
    assert "$.secrets[1].import" in p.stderr
    # an exporter that does not exist, and a secret it does not have
    p = world.create(importer(world, "team/app", source="team/nothing"), check=False)
    assert p.returncode != 0 and "exporter policy team/nothing not found" in p.stderr
    doc = importer(world, "team/app")
    doc["secrets"][0]["import"]["secret"] = "nope"
    p = world.create(doc, check=False)
    assert p.returncode != 0 and "secret nope not found in policy team/db" in p.stderr


def test_import_refused_when_the_pinned_digest_differs(world):
    d = create(world, exporter(world, "team/db", ["team/app"]))
    wrong = "ab" * 32
    p = world.create(importer(world, "team/app", digest=wrong), check=False)
    assert p.returncode != 0
    assert "pinned digest differs: pinned %s, exporter's digest %s" % (wrong, d) in p.stderr, \
        p.stderr
    # pinned to the right digest: allowed; then the exporter changes and activation is refused
    create(world, importer(world, "team/app", digest=d))
    activate(world, "team/app")
    d2 = update(world, exporter(world, "team/db", ["team/app"], rotate=1), d)
    err = refused(world, "team/app")
    assert "failed check import.db_pw" in err
    assert "expected: digest " + d in err and "actual:   digest " + d2 in err, err


def test_consent_withdrawn_refuses_the_importer(world):
    d = create(world, exporter(world, "team/db", ["team/app"]))
    create(world, importer(world, "team/app"))
    activate(world, "team/app")
    update(world, exporter(world, "team/db", ["team/other"]), d)
    err = refused(world, "team/app")
    assert "failed check import.db_pw" in err
    assert "is not exported to this policy" in err, err


def test_exporter_deleted_refuses_the_importer(world):
    create(world, exporter(world, "team/db", ["team/app"]))
    create(world, importer(world, "team/app"))
    world.coffer("policy", "delete", "team/db")
    err = refused(world, "team/app")
    assert "failed check import.db_pw" in err and "exporter deleted" in err, err


def test_namespace_wildcard(world):
    create(world, exporter(world, "team/db", ["team/*"]))
    exp = activate(world, "team/db")
    create(world, importer(world, "team/sub/app"))
    assert activate(world, "team/sub/app")["db_pw"] == exp["pw"]
    p = world.create(importer(world, "teams/app"), check=False)
    assert p.returncode != 0 and "is not exported to this policy" in p.stderr


def test_import_encoding_checked_against_the_exporter_kind(world):
    create(world, exporter(world, "team/db", ["team/app"]))
    files = dict(IMP_FILES, bad="$$coffer:db_pw:chain$$")
    p = world.create(importer(world, "team/app", files=files), check=False)
    assert p.returncode != 0
    assert "$.services[0].files[" in p.stderr
    assert "placeholder 'db_pw:chain': the encoding does not fit the imported secret " \
        "'db_pw', of kind ascii in its exporter" in p.stderr, p.stderr


def test_import_declaration_refusals_at_load(world):
    me = world.key_id()
    for imp, needle in [
        ({"name": "x", "kind": "ascii", "import": {"policy": "a/b", "secret": "s"}},
         "$.secrets[0].kind: an imported secret takes the exporter's kind"),
        ({"name": "x", "import": {"policy": "nons", "secret": "s"}},
         "$.secrets[0].import.policy: invalid policy name 'nons'"),
        ({"name": "x", "import": {"policy": "a/b", "secret": "s", "digest": "12"}},
         "$.secrets[0].import.digest: digest must be 64 hex digits"),
        ({"name": "x", "import": {"policy": "imp/self", "secret": "s"}},
         "a policy cannot import from itself"),
        ({"name": "x", "import": {"policy": "a/b"}},
         "$.secrets[0].import: missing required key 'secret'"),
        ({"name": "x", "import": {"policy": "a/b", "secret": "s"}, "export": ["a/c"]},
         "key 'export' is not allowed for an imported secret"),
        ({"name": "x", "kind": "ascii", "size": 4, "export": ["a"]},
         "$.secrets[0].export[0]: invalid export entry 'a'"),
    ]:
        doc = sim_policy("imp/self", me, PYTHON, secrets=[imp])
        p = world.create(doc, check=False)
        assert p.returncode != 0
        assert needle in p.stderr, (needle, p.stderr)
