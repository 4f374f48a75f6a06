"""The audit chain against a real cofferd: every change and activation decision is an entry;
`coffer audit verify` passes on a clean download and fails, naming the entry, for each kind
of tampering; a row edited in the store on disk is detected by cofferd itself."""
import copy
import json
import os
import shutil
import sqlite3
import time

from conftest import Cofferd, sim_policy


def _head_seq(world):
    status, body = world.get("/v1/audit/head")
    assert status == 200
    return json.loads(body)["head"]["seq"]


def _wait_head(world, seq, timeout=10.0):
    """Refusals are aggregated and written when their window ends: wait (bounded)."""
    deadline = time.monotonic() + timeout
    while _head_seq(world) < seq:
        assert time.monotonic() < deadline, "audit head did not reach %d" % seq
        time.sleep(0.2)


def _setup_chain(world):
    """create, update, a granted and a refused activation, delete: five entries."""
    world.cas.extra_args = ["--refusal-window", "1"]
    world.cas.restart()
    me = world.key_id()
    doc = sim_policy("audit/app", me, "/usr/bin/env", command=["env"],
                     env={"PW": "$$coffer:pw$$"},
                     secrets=[{"name": "pw", "kind": "ascii", "size": 16},
                              {"name": "given", "kind": "ascii", "value": "never-in-audit-42"}])
    first = json.loads(world.create(doc).stdout)
    doc["predecessor"] = first["digest"]
    doc["services"][0]["environment"]["X"] = "1"
    world.update(doc)
    assert world.run("/usr/bin/env", "audit/app", "app").returncode == 0
    assert world.run("/bin/cat", "audit/app", "app").returncode == 126
    _wait_head(world, 4)
    world.coffer("policy", "delete", "audit/app")
    return me


def _fetch(world, path):
    p = world.coffer("audit", "fetch", "--out", path)
    assert os.path.exists(path), p.stderr
    with open(path) as f:
        return json.load(f)


def _audit_key(world):
    status, body = world.get("/v1/audit/head")
    assert status == 200
    return json.loads(body)["audit_key"]


def _verify(world, path, *extra):
    p = world.coffer("--json", "audit", "verify", path, "--audit-key", _audit_key(world), *extra,
                     check=False)
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def _write(world, name, doc):
    return world.write(name, json.dumps(doc))


def test_chain_records_changes_and_decisions(world, tmp_path):
    me = _setup_chain(world)
    path = str(tmp_path / "chain.json")
    doc = _fetch(world, path)
    types = [e["type"] for e in doc["entries"]]
    assert types == ["policy.create", "policy.update", "activation.granted",
                     "activation.refused", "policy.delete"]
    assert [e["seq"] for e in doc["entries"]] == [1, 2, 3, 4, 5]
    assert doc["entries"][0]["prev"] == "00" * 32
    assert doc["entries"][0]["actor"] == me and doc["entries"][2]["actor"] == "workload"
    assert doc["entries"][0]["details"]["policy"] == "audit/app"
    refused = doc["entries"][3]["details"]
    assert "rule[0].measurement" in refused["failed_checks"]
    assert refused["count"] == 1 and refused["first"] == refused["last"]
    assert doc["head"]["seq"] == 5
    with open(path) as f:
        assert "never-in-audit-42" not in f.read()        # no secret reaches the chain
    rc, out = _verify(world, path)
    assert rc == 0 and out["valid"] and out["entries"] == 5 and out["audit_key_pinned"]
    # the chain survives a restart and goes on from its head
    world.cas.restart()
    world.create(sim_policy("audit/after", me, "/usr/bin/env"))
    doc2 = _fetch(world, str(tmp_path / "chain2.json"))
    assert doc2["entries"][:5] == doc["entries"] and doc2["head"]["seq"] == 6
    assert _audit_key(world) == doc["audit_key"]
    rc, out = _verify(world, str(tmp_path / "chain2.json"), "--against", path)
    assert rc == 0 and out["against"]["comparison"]["consistent"]


def test_verify_names_each_tampering(world, tmp_path):
    _setup_chain(world)
    path = str(tmp_path / "chain.json")
    clean = _fetch(world, path)

    def check(name, mutate, problem, seq):
        doc = copy.deepcopy(clean)
        mutate(doc)
        rc, out = _verify(world, _write(world, name, doc))
        assert rc == 1 and not out["valid"], (name, out)
        assert out["problem"] == problem and out["seq"] == seq, (name, out)
        assert ("entry %d" % seq) in out["message"], out

    check("deleted.json", lambda d: d["entries"].pop(2), "deleted", 3)

    def edit(d):
        d["entries"][1]["details"]["policy"] = "audit/other"
    check("edited.json", edit, "edited", 2)

    def edit_actor(d):
        d["entries"][0]["actor"] = "workload"
    check("edited-actor.json", edit_actor, "edited", 1)

    def reorder(d):
        e = d["entries"]
        e[2], e[3] = e[3], e[2]
    check("reordered.json", reorder, "reordered", 3)

    def truncate(d):
        del d["entries"][3:]
    check("truncated.json", truncate, "truncated", 4)

    # the plain output names the entry too
    doc = copy.deepcopy(clean)
    doc["entries"][4]["details"]["version"] = 99
    bad = _write(world, "edited-last.json", doc)
    p = world.coffer("audit", "verify", bad, check=False)
    assert p.returncode == 1 and "entry 5" in p.stdout and "edited" in p.stdout
    assert "--audit-key" in p.stderr                        # unpinned: warned

    # another audit key, a forged signature, a file that is not JSON
    rc, out = _verify(world, path)
    assert rc == 0
    p = world.coffer("audit", "verify", path, "--audit-key", "11" * 32, check=False)
    assert p.returncode == 1 and "audit_key" in p.stdout
    doc = copy.deepcopy(clean)
    doc["signature"] = ("00" if doc["signature"][:2] != "00" else "11") + doc["signature"][2:]
    rc, out = _verify(world, _write(world, "sig.json", doc))
    assert rc == 1 and out["problem"] == "signature"
    with open(path) as f:
        text = f.read()
    rc, out = _verify(world, world.write("cut.json", text[: len(text) // 2]))
    assert rc == 1 and out["problem"] == "malformed"

    # usage errors exit 2
    assert world.coffer("audit", "verify", check=False).returncode == 2
    assert world.coffer("audit", "verify", path, "--audit-key", "zz", check=False).returncode == 2
    assert world.coffer("audit", "nope", check=False).returncode == 2


def test_fork_between_two_downloads(world, tmp_path):
    me = _setup_chain(world)
    # a copy of cofferd's whole state, then both go on separately
    world.cas.stop()
    twin_dir = str(tmp_path / "twin")
    shutil.copytree(world.cas.data_dir, twin_dir)
    world.cas.start()
    twin = Cofferd(twin_dir, world.sim_dir).start()
    try:
        world.create(sim_policy("audit/mine", me, "/usr/bin/env"))
        env = world.env(COFFER_CAS=twin.address)
        world.coffer("--json", "policy", "create",
                     world.write("other.json", json.dumps(sim_policy("audit/theirs", me,
                                                                      "/usr/bin/env"))),
                     env=env)
        a = str(tmp_path / "a.json")
        _fetch(world, a)
        b = str(tmp_path / "b.json")
        p = world.coffer("audit", "fetch", "--out", b, env=env)
        assert p.returncode == 0
    finally:
        twin.stop()
    rc, out = _verify(world, a, "--against", b)
    assert rc == 1
    cmp = out["against"]["comparison"]
    assert not cmp["consistent"] and cmp["problem"] == "fork" and cmp["seq"] == 6
    p = world.coffer("audit", "verify", a, "--against", b, check=False)
    assert p.returncode == 1 and "entry 6" in p.stdout and "fork" in p.stdout


def _audit_row(db, key):
    con = sqlite3.connect(db)
    try:
        return con.execute("select value from kv where tbl = 'audit' and key = ?",
                           (key,)).fetchone()[0]
    finally:
        con.close()


def _sql(db, stmt, args):
    con = sqlite3.connect(db)
    try:
        con.execute(stmt, args)
        con.commit()
    finally:
        con.close()


def test_tampered_store_row_is_detected(world, tmp_path):
    _setup_chain(world)
    world.cas.stop()
    db = os.path.join(world.cas.data_dir, "store.db")
    key = "%020d" % 2
    value = bytearray(_audit_row(db, key))
    value[len(value) // 2] ^= 1
    _sql(db, "update kv set value = ? where tbl = 'audit' and key = ?", (bytes(value), key))
    world.cas.start()
    world.key_id()
    status, body = world.get("/v1/audit?from=1&limit=10", identity="alice")
    assert status == 500 and json.loads(body)["error"]["code"] == "store.tampered"
    assert "TAMPERING DETECTED" in world.cas.logs()
    p = world.coffer("audit", "fetch", "--out", str(tmp_path / "x.json"), check=False)
    assert p.returncode == 1
    # entries after the edited one are still served
    status, body = world.get("/v1/audit?from=4&limit=10", identity="alice")
    assert status == 200 and [e["seq"] for e in json.loads(body)["entries"]] == [4, 5]
    # a deleted row leaves a hole: cofferd refuses to start on that chain
    world.cas.stop()
    _sql(db, "delete from kv where tbl = 'audit' and key = ?", ("%020d" % 3,))
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    assert "audit" in world.cas.logs() and "TAMPERING DETECTED" in world.cas.logs()


def test_endpoints(world):
    _setup_chain(world)
    status, body = world.get("/v1/audit/head")
    head = json.loads(body)
    assert status == 200 and head["algorithm"] == "ed25519" and head["head"]["seq"] == 5
    assert len(head["signature"]) == 128 and len(head["audit_key"]) == 64
    assert world.get("/v1/audit")[0] == 401                 # entries need a client certificate
    status, body = world.get("/v1/audit?from=2&limit=2", identity="alice")
    page = json.loads(body)
    assert status == 200 and [e["seq"] for e in page["entries"]] == [2, 3]
    assert page["head_seq"] == 5 and page["next"] == 4
    status, body = world.get("/v1/audit?from=9", identity="alice")
    assert status == 200 and json.loads(body)["entries"] == [] and json.loads(body)["next"] is None
    for q in ("from=0", "limit=0", "limit=1001", "from=x", "nope=1"):
        assert world.get("/v1/audit?" + q, identity="alice")[0] == 400, q
    assert world.get("/v1/audit/nope", identity="alice")[0] == 404
    c = world.https("alice")
    try:
        c.request("POST", "/v1/audit", body=b"{}")
        assert c.getresponse().status == 405
    finally:
        c.close()


def test_attestation_binds_the_audit_key(world):
    """cofferd's evidence binds its TLS key id and its audit key (report data v2)."""
    import base64
    import hashlib
    nonce = os.urandom(32)
    status, body = world.get("/v1/cas/attestation?nonce=" + nonce.hex())
    att = json.loads(body)
    assert status == 200 and att["audit_key"] == _audit_key(world)
    evidence = base64.b64decode(att["evidence"]["data"])
    report_data = evidence[44:108]                # docs/formats/sim-evidence.md
    expected = hashlib.sha512(b"coffer-cas-attestation-v2" + bytes.fromhex(world.cas.key_id) +
                              bytes.fromhex(att["audit_key"]) + nonce).digest()
    assert report_data == expected
    p = world.coffer("--json", "cas", "attest", "--expect-key", world.cas.key_id)
    out = json.loads(p.stdout)
    assert out["valid"] and out["audit_key"] == att["audit_key"]
