"""Releasing a secret to a person: only with the consent of the policy's governors (the
board's rule over approvals of that release, or an update key when there is no board); never
an explicit value; every release is audited."""
import base64
import json
import os
import subprocess

from conftest import sim_policy

SECRETS = [{"name": "db", "kind": "ascii", "size": 24},
           {"name": "given", "kind": "ascii", "value": "typed-by-a-person"},
           {"name": "tls", "kind": "private-key", "algorithm": "p256"}]


def _history_digest(world, name, who="alice"):
    out = json.loads(world.coffer("--json", "policy", "history", name, identity=who).stdout)
    return out["versions"][-1]["digest"]


def _run_value(world, name, var):
    p = world.run("/usr/bin/env", name, "app")
    assert p.returncode == 0, p.stderr
    for line in p.stdout.decode().splitlines():
        if line.startswith(var + "="):
            return line[len(var) + 1:]
    raise AssertionError("%s not in the environment" % var)


def test_update_key_receives_a_secret_of_a_policy_without_board(world):
    me = world.key_id("alice")
    world.key_id("mallory")
    doc = sim_policy("rel/plain", me, "/usr/bin/env", command=["env"],
                     env={"DB": "$$coffer:db$$"}, secrets=SECRETS)
    world.create(doc)
    value = _run_value(world, "rel/plain", "DB")
    p = world.coffer("secret", "release", "rel/plain", "db")
    assert p.stdout == value
    # another key is refused, and so is an explicit value, even to its owner
    p = world.coffer("secret", "release", "rel/plain", "db", identity="mallory", check=False)
    assert p.returncode == 1 and "access.update" in p.stderr
    p = world.coffer("secret", "release", "rel/plain", "given", check=False)
    assert p.returncode == 1 and "explicit" in p.stderr
    # encodings as placeholders have them; a misfit is a clear error
    out = os.path.join(world.tmp, "tls.pem")
    world.coffer("secret", "release", "rel/plain", "tls", "--encoding", "pkcs8", "--out", out)
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    check = subprocess.run(["openssl", "pkey", "-in", out, "-noout", "-text"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "P-256" in check.stdout
    p = world.coffer("secret", "release", "rel/plain", "db", "--encoding", "pem", check=False)
    assert p.returncode == 1 and "encoding" in p.stderr
    p = world.coffer("secret", "release", "rel/plain", "nosuch", check=False)
    assert p.returncode == 1
    # audited with the recipient, never the value
    status, body = world.get("/v1/audit?from=1&limit=1000", identity="alice")
    assert status == 200
    text = body.decode()
    assert "secret.released" in text and value not in text


def _board_doc(world):
    ids = {n: world.key_id(n) for n in ("alice", "bob", "carol")}
    doc = sim_policy("rel/board", ids["alice"], "/usr/bin/env", command=["env"],
                     env={"DB": "$$coffer:db$$"}, secrets=SECRETS[:1])
    doc["board"] = {"members": [{"name": n, "key_id": k} for n, k in ids.items()],
                    "rule": {"at_least": 2, "of": ["alice", "bob", "carol"]}, "veto": ["carol"]}
    return doc, ids


def _approve_doc(world, doc, who):
    path = world.write("doc.json", json.dumps(doc))
    out = os.path.join(world.tmp, "create-%s.sig" % who)
    world.coffer("policy", "approve", path, "--out", out, identity=who)
    return out


def _approve_release(world, who, recipient, digest, secret="db", veto=False):
    out = os.path.join(world.tmp, "rel-%s-%s-%s.sig" % (who, recipient[:8], secret))
    if os.path.exists(out):
        os.unlink(out)
    args = ["secret", "approve", "rel/board", secret, "--for", recipient, "--predecessor",
            digest, "--out", out] + (["--veto"] if veto else [])
    world.coffer(*args, identity=who)
    return out


def test_board_governs_a_release(world):
    doc, ids = _board_doc(world)
    path = world.write("board.json", json.dumps(doc))
    world.coffer("policy", "create", path, "--approval", _approve_doc(world, doc, "alice"),
                 "--approval", _approve_doc(world, doc, "bob"))
    value = _run_value(world, "rel/board", "DB")
    digest = _history_digest(world, "rel/board")
    dave = world.key_id("dave")
    # dave, not a member, asks: nothing without approvals, one is not enough
    p = world.coffer("secret", "release", "rel/board", "db", identity="dave", check=False)
    assert p.returncode == 1 and "board" in p.stderr
    a = _approve_release(world, "alice", dave, digest)
    p = world.coffer("secret", "release", "rel/board", "db", "--approval", a, identity="dave",
                     check=False)
    assert p.returncode == 1
    # approvals for dave do not release to mallory
    world.key_id("mallory")
    b = _approve_release(world, "bob", dave, digest)
    p = world.coffer("secret", "release", "rel/board", "db", "--approval", a, "--approval", b,
                     identity="mallory", check=False)
    assert p.returncode == 1
    # two members approve: dave receives it
    p = world.coffer("--json", "secret", "release", "rel/board", "db", "--approval", a,
                     "--approval", b, identity="dave")
    out = json.loads(p.stdout)
    assert base64.b64decode(out["value"]).decode() == value
    assert out["recipient"] == dave and out["predecessor"] == digest
    # a veto member's veto blocks it
    v = _approve_release(world, "carol", dave, digest, veto=True)
    p = world.coffer("secret", "release", "rel/board", "db", "--approval", a, "--approval", b,
                     "--approval", v, identity="dave", check=False)
    assert p.returncode == 1 and "board" in p.stderr
    # approvals name a version: an approval of another version's release does not count
    other = "0" * 64
    c = _approve_release(world, "carol", dave, other)
    p = world.coffer("secret", "release", "rel/board", "db", "--approval", a, "--approval", c,
                     identity="dave", check=False)
    assert p.returncode == 1


def test_release_endpoint_refuses_hostile_requests(world):
    me = world.key_id("alice")
    world.create(sim_policy("rel/raw", me, "/usr/bin/env", secrets=SECRETS[:1]))
    path = "/v1/policies/rel%2Fraw/secrets/db/release"
    for identity, body, status in [(None, b"", 401), ("alice", b"{", 400),
                                   ("alice", b'{"approvals": 3}', 400),
                                   ("alice", b'{"encoding": "PEM!"}', 400),
                                   ("alice", b'{"approvals": [{"version": 9}]}', 400),
                                   ("alice", b'{"extra": 1}', 400)]:
        c = world.https(identity)
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == status, (identity, body, r.status)
    c = world.https("alice")
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 405
    c = world.https("alice")
    c.request("POST", "/v1/policies/rel%2Fraw/secrets/db/other", body=b"")
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 404
    # and cofferd still serves
    assert world.get("/v1/health")[0] == 200
