"""Online proposals: a change waits in cofferd until its board's rule is met by approvals sent
one at a time (signed statements, or attested programs' evidence), then applies; vetoes close
it, expiry refuses it, and a proposal whose predecessor is no longer current is a conflict."""
import base64
import hashlib
import json
import os
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization

from conftest import COFFER, measure, sim_policy


def _board_doc(world, name="gov/app", rule=None, veto=None, extra_members=()):
    ids = {n: world.key_id(n) for n in ("alice", "bob", "carol")}
    doc = sim_policy(name, ids["alice"], "/usr/bin/env")
    members = [{"name": n, "key_id": k} for n, k in ids.items()] + list(extra_members)
    doc["board"] = {"members": members,
                    "rule": rule or {"at_least": 2, "of": ["alice", "bob", "carol"]}}
    if veto:
        doc["board"]["veto"] = veto
    return doc


def _sig(world, doc, who, extra=()):
    path = world.write("doc-%s-%d.json" % (who, time.monotonic_ns()), json.dumps(doc))
    out = os.path.join(world.tmp, "%s-%d.sig" % (who, time.monotonic_ns()))
    world.coffer("policy", "approve", path, "--out", out, *extra, identity=who)
    return out


def _create_with_board(world, doc):
    path = world.write("create.json", json.dumps(doc))
    p = world.coffer("--json", "policy", "create", path, "--approval", _sig(world, doc, "alice"),
                     "--approval", _sig(world, doc, "bob"))
    return json.loads(p.stdout)


def _propose(world, doc, who="alice", extra=(), check=True):
    path = world.write("proposal-%d.json" % time.monotonic_ns(), json.dumps(doc))
    p = world.coffer("--json", "policy", "propose", path, *extra, identity=who, check=check)
    return json.loads(p.stdout) if p.returncode == 0 else p


def _approve(world, name, digest, who, extra=(), check=False):
    return world.coffer("--json", "policy", "approve", "--online", name, digest, *extra,
                        identity=who, check=check)


def _updated(doc, pred, value):
    d = json.loads(json.dumps(doc))
    d["predecessor"] = pred
    d["services"][0]["environment"] = {"V": value}
    return d


def _path(name, rest=""):
    return "/v1/policies/%s/proposals%s" % (urllib.parse.quote(name, safe=""), rest)


def _raw(world, method, path, body=b"", ctype="application/json", identity="alice"):
    c = world.https(identity)
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_two_of_three_online(world):
    doc = _board_doc(world)
    first = _create_with_board(world, doc)
    doc2 = _updated(doc, first["digest"], "2")
    prop = _propose(world, doc2)
    assert prop["state"] == "pending"
    digest = prop["digest"]
    assert digest == hashlib.sha256(json.dumps(doc2).encode()).hexdigest()
    listed = json.loads(world.coffer("--json", "policy", "proposals", "gov/app").stdout)
    [entry] = listed["proposals"]
    assert entry["digest"] == digest and entry["predecessor"] == first["digest"]
    assert entry["proposer"] == world.key_id("alice") and entry["kind"] == "put"
    assert entry["governors"][0]["needs"] == "at_least 2 of [alice, bob, carol]"
    # one approval: still pending, and the listing names who approved and what is missing
    p = _approve(world, "gov/app", digest, "alice")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["state"] == "pending"
    assert out["governors"][0]["approved_by"] == ["alice"]
    assert out["governors"][0]["needs"] == "at_least 1 of [bob, carol]"
    text = world.coffer("policy", "proposals", "gov/app").stdout
    assert "approve by " + world.key_id("alice") in text and "needs: at_least 1 of" in text
    # the same member again does not count twice
    p = _approve(world, "gov/app", digest, "alice")
    assert json.loads(p.stdout)["state"] == "pending"
    # the second member: applied
    p = _approve(world, "gov/app", digest, "bob")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["state"] == "applied" and out["version"]["version"] == 2
    shown = json.loads(world.coffer("--json", "policy", "show", "gov/app").stdout)
    assert shown["digest"] == digest
    # closed: further approvals are refused
    p = _approve(world, "gov/app", digest, "carol")
    assert p.returncode == 1 and "proposal.closed" in p.stderr
    audit = json.loads(world.coffer("--json", "audit", "fetch", "--out",
                                    os.path.join(world.tmp, "audit.json")).stdout or "{}")
    del audit
    chain = json.load(open(os.path.join(world.tmp, "audit.json")))
    types = [e["type"] for e in chain["entries"]]
    assert "policy.proposed" in types and types.count("policy.approved") >= 2
    assert types.index("policy.update") > types.index("policy.proposed")


def test_creation_and_deletion_proposals(world):
    doc = _board_doc(world, name="gov/new")
    prop = _propose(world, doc, who="carol")
    assert prop["state"] == "pending" and prop.get("predecessor") is None
    assert _approve(world, "gov/new", prop["digest"], "alice").returncode == 0
    out = json.loads(_approve(world, "gov/new", prop["digest"], "carol").stdout)
    assert out["state"] == "applied" and out["version"]["version"] == 1
    # deletion: approvals must carry the verdict "delete" (the CLI picks it from the kind)
    p = world.coffer("--json", "policy", "propose", "--delete", "gov/new", identity="bob")
    dele = json.loads(p.stdout)
    assert dele["kind"] == "delete" and dele["state"] == "pending"
    assert _approve(world, "gov/new", dele["digest"], "bob").returncode == 0
    out = json.loads(_approve(world, "gov/new", dele["digest"], "carol").stdout)
    assert out["state"] == "applied" and out["version"]["deleted"] is True
    p = world.coffer("policy", "show", "gov/new", check=False)
    assert p.returncode == 1 and "not_found" in p.stderr
    hist = world.coffer("policy", "history", "gov/new").stdout
    assert "deleted" in hist


def test_veto_closes(world):
    doc = _board_doc(world, veto=["carol"])
    first = _create_with_board(world, doc)
    prop = _propose(world, _updated(doc, first["digest"], "x"))
    assert json.loads(_approve(world, "gov/app", prop["digest"], "alice").stdout)["state"] == \
        "pending"
    p = _approve(world, "gov/app", prop["digest"], "carol", extra=("--veto",))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["state"] == "rejected"
    p = _approve(world, "gov/app", prop["digest"], "bob")
    assert p.returncode == 1 and "proposal.closed" in p.stderr
    assert json.loads(world.coffer("--json", "policy", "show", "gov/app").stdout)["version"] == 1


def test_expiry(world):
    doc = _board_doc(world)
    first = _create_with_board(world, doc)
    prop = _propose(world, _updated(doc, first["digest"], "e"), extra=("--expires", "1s"))
    time.sleep(2.2)
    p = _approve(world, "gov/app", prop["digest"], "alice")
    assert p.returncode == 1 and "expired" in p.stderr
    # pruned: gone from the listing
    listed = json.loads(world.coffer("--json", "policy", "proposals", "gov/app").stdout)
    assert listed["proposals"] == []
    p = world.coffer("policy", "propose", "x.json", "--expires", "31d", check=False)
    assert p.returncode == 2


def test_conflict(world):
    doc = _board_doc(world)
    first = _create_with_board(world, doc)
    a = _propose(world, _updated(doc, first["digest"], "a"))
    b = _propose(world, _updated(doc, first["digest"], "b"))
    assert a["digest"] != b["digest"]
    assert _approve(world, "gov/app", a["digest"], "alice").returncode == 0
    assert _approve(world, "gov/app", b["digest"], "alice").returncode == 0
    assert json.loads(_approve(world, "gov/app", a["digest"], "bob").stdout)["state"] == "applied"
    p = _approve(world, "gov/app", b["digest"], "bob")
    assert p.returncode == 1 and "proposal.conflict" in p.stderr
    listed = json.loads(world.coffer("--json", "policy", "proposals", "gov/app").stdout)
    states = {x["digest"]: x["state"] for x in listed["proposals"]}
    assert states[b["digest"]] == "conflict" and states[a["digest"]] == "applied"


def test_non_member_and_other_digest_refused(world):
    doc = _board_doc(world)
    first = _create_with_board(world, doc)
    doc2 = _updated(doc, first["digest"], "n")
    prop = _propose(world, doc2)
    world.key_id("mallory")
    # mallory may not even read the proposal, and her signature does not count
    p = _approve(world, "gov/app", prop["digest"], "mallory")
    assert p.returncode == 1 and "proposal.access" in p.stderr
    st, body = _raw(world, "POST", _path("gov/app", "/%s/approvals" % prop["digest"]),
                    open(_sig(world, doc2, "mallory"), "rb").read(), identity="mallory")
    assert st == 403 and b"proposal.not_member" in body
    # a valid member's approval of another digest, sent to this proposal
    other = _sig(world, _updated(doc, first["digest"], "other"), "bob")
    st, body = _raw(world, "POST", _path("gov/app", "/%s/approvals" % prop["digest"]),
                    open(other, "rb").read())
    assert st == 403 and b"proposal.approval" in body
    # an offline approval of the creation replayed against this proposal
    st, body = _raw(world, "POST", _path("gov/app", "/%s/approvals" % prop["digest"]),
                    open(_sig(world, doc, "carol"), "rb").read())
    assert st == 403
    # a tampered signature
    good = json.load(open(_sig(world, doc2, "bob", ("--predecessor", first["digest"]))))
    sig = bytearray(base64.b64decode(good["signature"]))
    sig[-1] ^= 1
    good["signature"] = base64.b64encode(bytes(sig)).decode()
    st, body = _raw(world, "POST", _path("gov/app", "/%s/approvals" % prop["digest"]),
                    json.dumps(good).encode())
    assert st == 403 and b"does not verify" in body
    listed = json.loads(world.coffer("--json", "policy", "proposals", "gov/app").stdout)
    assert listed["proposals"][0]["approvals"] == []


def test_endpoint_negatives(world):
    doc = _board_doc(world)
    first = _create_with_board(world, doc)
    prop = _propose(world, _updated(doc, first["digest"], "neg"))
    base = _path("gov/app")
    appr = _path("gov/app", "/%s/approvals" % prop["digest"])
    # wrong content type
    assert _raw(world, "POST", base, b"{}", ctype="text/plain")[0] == 415
    assert _raw(world, "POST", appr, b"{}", ctype="application/yaml")[0] == 415
    # malformed JSON and wrong shapes
    assert _raw(world, "POST", base, b"{not json")[0] == 400
    assert _raw(world, "POST", base, b'{"kind": "put"}')[0] == 400
    assert _raw(world, "POST", base, b'{"kind": "delete", "expires": 0}')[0] == 400
    assert _raw(world, "POST", base, b'{"kind": "put", "document": "x", "extra": 1}')[0] == 400
    assert _raw(world, "POST", appr, b"[1, 2]")[0] == 400
    assert _raw(world, "POST", appr, b'{"version": 1}')[0] == 400
    assert _raw(world, "POST", appr, b'{"service": "gov/ci/x", "verdict": "maybe", '
                b'"evidence": {}}')[0] == 400
    # invalid documents: 422 with the errors
    st, body = _raw(world, "POST", base, json.dumps({"kind": "put",
                                                      "document": "name: 1\n"}).encode())
    assert st == 422 and b"policy.invalid" in body
    # oversized bodies
    assert _raw(world, "POST", appr, b" " * (300 << 10))[0] == 413
    assert _raw(world, "POST", base, b" " * ((3 << 20) + 10))[0] == 413
    # unknown digests and malformed ones
    unknown = "0" * 64
    assert _raw(world, "GET", _path("gov/app", "/" + unknown))[0] == 404
    assert _raw(world, "POST", _path("gov/app", "/%s/approvals" % unknown), b"{}")[0] == 404
    assert _raw(world, "GET", _path("gov/app", "/xyz"))[0] == 400
    assert _raw(world, "GET", _path("gov/app", "/%s/other" % unknown))[0] == 404
    # methods and authentication
    assert _raw(world, "DELETE", base)[0] == 405
    assert _raw(world, "GET", base, identity=None)[0] == 401
    # the document is shown to the people who may approve it, not to anyone
    st, body = _raw(world, "GET", _path("gov/app", "/" + prop["digest"]), identity="bob")
    assert st == 200 and json.loads(body)["document"]
    world.key_id("mallory")
    st, _ = _raw(world, "GET", _path("gov/app", "/" + prop["digest"]), identity="mallory")
    assert st == 403
    # the same change twice
    p = _propose(world, _updated(doc, first["digest"], "neg"), check=False)
    assert p.returncode == 1 and "proposal.exists" in p.stderr


def test_attested_approver(world):
    doc = _board_doc(world, extra_members=[{"name": "ci", "service": "gov/ci/checker"}],
                     rule={"all_of": ["alice", "ci"]})
    ci = sim_policy("gov/ci", world.key_id("alice"), "/usr/bin/env", service="checker")
    ci["services"][0]["attestation"][0]["measurement"] = [measure(COFFER)]
    world.create(ci)
    prop = _propose(world, doc)
    assert prop["state"] == "pending"
    assert _approve(world, "gov/app", prop["digest"], "alice").returncode == 0
    # the coffer binary's measurement satisfies gov/ci/checker's rule: counted as 'ci'
    p = _approve(world, "gov/app", prop["digest"], "bob",
                 extra=("--as-service", "gov/ci/checker", "--tee", "sim"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["state"] == "applied"


def test_attested_approver_refused(world):
    other = hashlib.sha256(b"another program").hexdigest()
    doc = _board_doc(world, extra_members=[{"name": "ci", "service": "gov/ci/checker"}],
                     rule={"all_of": ["alice", "ci"]})
    ci = sim_policy("gov/ci", world.key_id("alice"), "/usr/bin/env", service="checker")
    ci["services"][0]["attestation"][0]["measurement"] = [other]
    world.create(ci)
    prop = _propose(world, doc)
    # a rule with another measurement: refused with the failed checks
    p = _approve(world, "gov/app", prop["digest"], "bob",
                 extra=("--as-service", "gov/ci/checker"))
    assert p.returncode == 1 and "proposal.evidence" in p.stderr
    assert "failed check rule[0].measurement" in p.stderr
    # a service that is not a member of the board
    p = _approve(world, "gov/app", prop["digest"], "bob", extra=("--as-service", "gov/ci/nope"))
    assert p.returncode == 1 and "not_member" in p.stderr
    # evidence bound to another connection (valid sim evidence over the coffer binary)
    ci["predecessor"] = json.loads(world.coffer("--json", "policy", "show",
                                                "gov/ci").stdout)["digest"]
    ci["services"][0]["attestation"][0]["measurement"] = [measure(COFFER)]
    world.update(ci)
    key = serialization.load_pem_private_key(
        open(os.path.join(world.sim_dir, "platform.key"), "rb").read(), None)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    body = (b"CFSIMEV1" + (1).to_bytes(2, "little") + (0).to_bytes(2, "little") +
            bytes.fromhex(measure(COFFER)) + os.urandom(64) + pub)
    ev = body + key.sign(b"coffer-sim-evidence-v1" + body)
    req = {"service": "gov/ci/checker", "verdict": "approve",
           "evidence": {"type": "sim", "data": base64.b64encode(ev).decode()}}
    st, reply = _raw(world, "POST", _path("gov/app", "/%s/approvals" % prop["digest"]),
                     json.dumps(req).encode(), identity=None)
    assert st == 403 and b"binding.report_data" in reply
    # and the real thing still works on its own connection
    p = _approve(world, "gov/app", prop["digest"], "bob", extra=("--as-service", "gov/ci/checker"))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["state"] == "pending"  # alice has not approved yet
    out = json.loads(_approve(world, "gov/app", prop["digest"], "alice").stdout)
    assert out["state"] == "applied"


def test_attested_approver_on_hardware_uses_the_given_tsm_root(world):
    """--tee tdx with --tsm-root: the evidence comes from that configfs-tsm tree (here the
    fake one), bound to the approval's connection, and cofferd verifies it as TDX evidence
    (the fake's evidence is no real quote, so it is refused with the verifier's checks)."""
    from test_providers import FakeTee
    doc = _board_doc(world, extra_members=[{"name": "ci", "service": "gov/ci/checker"}],
                     rule={"all_of": ["alice", "ci"]})
    ci = sim_policy("gov/ci", world.key_id("alice"), "/usr/bin/env", service="checker")
    ci["services"][0]["attestation"] = [{"platform": "tdx", "mrtd": ["00" * 48]}]
    world.create(ci)
    prop = _propose(world, doc)
    fake = FakeTee(world.tmp, "tsm")
    try:
        p = _approve(world, "gov/app", prop["digest"], "bob",
                     extra=("--as-service", "gov/ci/checker", "--tee", "tdx",
                            "--tsm-root", fake.root))
        assert p.returncode == 1 and "proposal.evidence" in p.stderr, p.stderr
        reqs = fake.requests()
        assert len(reqs) == 1 and len(bytes.fromhex(reqs[0]["report_data"])) == 64
    finally:
        fake.stop()
    # without a tree there is no evidence to send: a clear local error, nothing sent
    p = _approve(world, "gov/app", prop["digest"], "bob",
                 extra=("--as-service", "gov/ci/checker", "--tee", "tdx", "--tsm-root",
                        os.path.join(world.tmp, "no-such-tsm")))
    assert p.returncode == 1 and "cannot make evidence" in p.stderr, p.stderr
