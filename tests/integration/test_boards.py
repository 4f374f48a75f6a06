"""Policy boards: changes need the approvals the board's rule asks for; a board is replaced
only with its own consent; vetoes block; approvals bind one exact change."""
import json
import os

from conftest import sim_policy


def _board_policy(world, rule=None, veto=None):
    ids = {n: world.key_id(n) for n in ("alice", "bob", "carol")}
    doc = sim_policy("gov/app", ids["alice"], "/usr/bin/env")
    doc["board"] = {"members": [{"name": n, "key_id": k} for n, k in ids.items()],
                    "rule": rule or {"at_least": 2, "of": ["alice", "bob", "carol"]}}
    if veto:
        doc["board"]["veto"] = veto
    return doc


def _approve(world, doc, who, veto=False):
    path = world.write("doc-%s.json" % who, json.dumps(doc))
    out = os.path.join(world.tmp, "%s-%s.sig" % (who, "veto" if veto else "ok"))
    if os.path.exists(out):
        os.unlink(out)
    args = ["policy", "approve", path, "--out", out] + (["--veto"] if veto else [])
    world.coffer(*args, identity=who)
    return out


def _change(world, verb, doc, approvals, who="alice"):
    path = world.write("change.json", json.dumps(doc))
    args = ["--json", "policy", verb, path]
    for a in approvals:
        args += ["--approval", a]
    return world.coffer(*args, identity=who, check=False)


def test_two_of_three_board(world):
    doc = _board_policy(world)
    # the new board must consent to its own creation
    p = _change(world, "create", doc, [])
    assert p.returncode == 1 and "board" in p.stderr
    p = _change(world, "create", doc, [_approve(world, doc, "alice")])
    assert p.returncode == 1 and "board" in p.stderr
    p = _change(world, "create", doc, [_approve(world, doc, "alice"), _approve(world, doc, "bob")])
    assert p.returncode == 0, p.stderr
    first = json.loads(p.stdout)
    # an update: alice alone is not enough, even though she is in access.update
    doc2 = dict(doc, predecessor=first["digest"])
    doc2["services"][0]["environment"] = {"V": "2"}
    p = _change(world, "update", doc2, [_approve(world, doc2, "alice")])
    assert p.returncode == 1 and "board" in p.stderr
    # approvals of the creation do not approve the update (another digest and predecessor)
    p = _change(world, "update", doc2, [os.path.join(world.tmp, "bob-ok.sig"),
                                         _approve(world, doc2, "alice")])
    assert p.returncode == 1
    p = _change(world, "update", doc2, [_approve(world, doc2, "alice"),
                                         _approve(world, doc2, "carol")], who="bob")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["version"] == 2
    # a board cannot be deleted by one person
    p = world.coffer("policy", "delete", "gov/app", check=False)
    assert p.returncode == 1 and "board" in p.stderr


def test_veto_blocks(world):
    doc = _board_policy(world, veto=["alice"])
    approvals = [_approve(world, doc, "bob"), _approve(world, doc, "carol"),
                 _approve(world, doc, "alice", veto=True)]
    p = _change(world, "create", doc, approvals)
    assert p.returncode == 1 and "board" in p.stderr
    p = _change(world, "create", doc, approvals[:2])
    assert p.returncode == 0, p.stderr


def test_non_member_signatures_do_not_count(world):
    doc = _board_policy(world)
    world.key_id("mallory")
    approvals = [_approve(world, doc, "alice"), _approve(world, doc, "mallory")]
    p = _change(world, "create", doc, approvals)
    assert p.returncode == 1 and "board" in p.stderr


def test_tampered_approval_is_refused(world):
    doc = _board_policy(world)
    a = _approve(world, doc, "alice")
    b = _approve(world, doc, "bob")
    j = json.load(open(b))
    sig = bytearray(__import__("base64").b64decode(j["signature"]))
    sig[-1] ^= 1
    j["signature"] = __import__("base64").b64encode(bytes(sig)).decode()
    json.dump(j, open(b, "w"))
    p = _change(world, "create", doc, [a, b])
    assert p.returncode == 1 and "board" in p.stderr


def _approve_delete(world, name, current, who, veto=False):
    out = os.path.join(world.tmp, "%s-del-%s.sig" % (who, "veto" if veto else "ok"))
    if os.path.exists(out):
        os.unlink(out)
    args = ["policy", "approve", "--delete", name, "--predecessor", current, "--out", out]
    world.coffer(*(args + (["--veto"] if veto else [])), identity=who)
    return out


def _delete(world, name, approvals, who="alice"):
    args = ["--json", "policy", "delete", name]
    for a in approvals:
        args += ["--approval", a]
    return world.coffer(*args, identity=who, check=False)


def test_deletion_needs_the_board(world):
    doc = _board_policy(world, veto=["carol"])
    p = _change(world, "create", doc, [_approve(world, doc, "alice"), _approve(world, doc, "bob")])
    current = json.loads(p.stdout)["digest"]
    # no approvals, one approval, and approvals of the version (not of its deletion)
    assert "board" in _delete(world, "gov/app", []).stderr
    assert _delete(world, "gov/app", [_approve_delete(world, "gov/app", current,
                                                      "alice")]).returncode == 1
    p = _delete(world, "gov/app", [_approve(world, doc, "alice"), _approve(world, doc, "bob")])
    assert p.returncode == 1 and "board" in p.stderr
    # a deletion approval over another predecessor does not count
    other = _approve_delete(world, "gov/app", "0" * 64, "bob")
    p = _delete(world, "gov/app", [_approve_delete(world, "gov/app", current, "alice"), other])
    assert p.returncode == 1
    # a veto blocks the deletion
    dels = [_approve_delete(world, "gov/app", current, w) for w in ("alice", "bob")]
    p = _delete(world, "gov/app", dels + [_approve_delete(world, "gov/app", current, "carol",
                                                          veto=True)])
    assert p.returncode == 1 and "board" in p.stderr
    p = _delete(world, "gov/app", dels, who="carol")
    assert p.returncode == 0, p.stderr
    deleted = json.loads(p.stdout)
    assert deleted["deleted"] is True and deleted["predecessor"] == current
    assert "deleted" in world.coffer("policy", "history", "gov/app").stdout
    # re-creation needs the deleted version's board, over the deletion digest as predecessor
    p = _change(world, "create", doc, [_approve(world, doc, "alice"), _approve(world, doc, "bob")])
    assert p.returncode == 1 and ("policy.recreate" in p.stderr or "board" in p.stderr)
    path = world.write("recreate.json", json.dumps(doc))
    sigs = []
    for who in ("alice", "bob"):
        out = os.path.join(world.tmp, "%s-recreate.sig" % who)
        world.coffer("policy", "approve", path, "--predecessor", deleted["digest"], "--out", out,
                     identity=who)
        sigs.append(out)
    p = _change(world, "create", doc, sigs)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["predecessor"] == deleted["digest"]


def test_concurrent_updates_with_one_predecessor_one_wins(world):
    """Two updates that name the same predecessor, sent at the same time: exactly one is
    stored, the other is refused with a conflict that says why."""
    import threading
    doc = _board_policy(world)
    p = _change(world, "create", doc, [_approve(world, doc, "alice"), _approve(world, doc, "bob")])
    assert p.returncode == 0, p.stderr
    base = json.loads(p.stdout)["digest"]
    docs, approvals = [], []
    for v in ("a", "b"):
        d = json.loads(json.dumps(doc))
        d["predecessor"] = base
        d["services"][0]["environment"] = {"V": v}
        docs.append(d)
        path = world.write("doc-%s.json" % v, json.dumps(d))
        sigs = []
        for who in ("alice", "bob"):
            out = os.path.join(world.tmp, "upd-%s-%s.sig" % (v, who))
            world.coffer("policy", "approve", path, "--out", out, identity=who)
            sigs.append(out)
        approvals.append((path, sigs))
    results = [None, None]

    def send(i):
        path, sigs = approvals[i]
        results[i] = world.coffer("--json", "policy", "update", path, "--approval", sigs[0],
                                  "--approval", sigs[1], check=False)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [(r.returncode, r.stderr) for r in results]
    loser = [r for r in results if r.returncode == 1][0]
    assert "predecessor" in loser.stderr or "conflict" in loser.stderr, loser.stderr
    history = json.loads(world.coffer("--json", "policy", "history", "gov/app").stdout)
    assert [v["version"] for v in history["versions"]] == [1, 2]


def test_an_approval_for_another_policy_does_not_count(world):
    doc = _board_policy(world)
    other = json.loads(json.dumps(doc))
    other["name"] = "gov/other"
    a = _approve(world, doc, "alice")
    path = world.write("other.json", json.dumps(other))
    b = os.path.join(world.tmp, "bob-other.sig")
    world.coffer("policy", "approve", path, "--out", b, identity="bob")
    p = _change(world, "create", doc, [a, b])
    assert p.returncode == 1 and "board" in p.stderr
