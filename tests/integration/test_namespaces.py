"""Namespaces: creating a/b/c needs the permission of the nearest existing ancestor that
declares `namespace:`; a deleted name keeps its history and is re-created only with the
consent of whoever governed it."""
import json
import os

from conftest import sim_policy


def _doc(world, name, owner="alice", **extra):
    d = sim_policy(name, world.key_id(owner), "/usr/bin/env")
    d.update(extra)
    return d


def test_namespace_create_keys(world):
    world.key_id("bob")
    world.create(_doc(world, "team/app", namespace={"create": [world.key_id("alice")]}))
    p = world.create(_doc(world, "team/app/worker", owner="bob"), identity="bob", check=False)
    assert p.returncode == 1 and "policy.namespace" in p.stderr and "team/app" in p.stderr
    p = world.create(_doc(world, "team/app/worker", owner="bob"), identity="alice", check=False)
    assert p.returncode == 0, p.stderr
    # deeper names: the nearest ancestor with a namespace decides (team/app/worker has none)
    p = world.create(_doc(world, "team/app/worker/x", owner="bob"), identity="bob", check=False)
    assert p.returncode == 1 and "policy.namespace" in p.stderr
    # top level, and names outside any namespace: any authenticated client, as before
    assert world.create(_doc(world, "team/other", owner="bob"), identity="bob",
                        check=False).returncode == 0
    # namespace is shown back
    shown = json.loads(world.coffer("--json", "policy", "show", "team/app").stdout)
    assert shown["policy"]["namespace"]["create"] == [world.key_id("alice")]


def test_namespace_governed_by_board(world):
    ids = {n: world.key_id(n) for n in ("alice", "bob", "carol")}
    owner = _doc(world, "org/unit", namespace={})
    owner["board"] = {"members": [{"name": n, "key_id": k} for n, k in ids.items()],
                      "rule": {"at_least": 2, "of": ["alice", "bob", "carol"]}}
    path = world.write("owner.json", json.dumps(owner))
    sigs = []
    for who in ("alice", "bob"):
        out = os.path.join(world.tmp, "owner-%s.sig" % who)
        world.coffer("policy", "approve", path, "--out", out, identity=who)
        sigs.append(out)
    world.coffer("policy", "create", path, "--approval", sigs[0], "--approval", sigs[1])
    child = _doc(world, "org/unit/svc", owner="carol")
    cpath = world.write("child.json", json.dumps(child))
    p = world.coffer("policy", "create", cpath, identity="carol", check=False)
    assert p.returncode == 1 and "policy.namespace" in p.stderr
    csigs = []
    for who in ("bob", "carol"):
        out = os.path.join(world.tmp, "child-%s.sig" % who)
        world.coffer("policy", "approve", cpath, "--out", out, identity=who)
        csigs.append(out)
    p = world.coffer("policy", "create", cpath, "--approval", csigs[0], identity="carol",
                     check=False)
    assert p.returncode == 1 and "policy.namespace" in p.stderr
    p = world.coffer("policy", "create", cpath, "--approval", csigs[0], "--approval", csigs[1],
                     identity="carol", check=False)
    assert p.returncode == 0, p.stderr


def test_deleted_name_recreation(world):
    world.key_id("bob")
    first = json.loads(world.create(_doc(world, "keep/name")).stdout)
    deleted = json.loads(world.coffer("--json", "policy", "delete", "keep/name").stdout)
    assert deleted["deleted"] is True
    # someone else cannot silently re-create it: 409 naming who must approve
    p = world.create(_doc(world, "keep/name", owner="bob"), identity="bob", check=False)
    assert p.returncode == 1 and "policy.recreate" in p.stderr and "HTTP 409" in p.stderr
    # the history keeps the deletion
    hist = world.coffer("policy", "history", "keep/name").stdout
    assert first["digest"] in hist and "deleted" in hist
    # a key of the deleted version's access.update may
    p = world.create(_doc(world, "keep/name"), identity="alice", check=False)
    assert p.returncode == 0, p.stderr
    again = json.loads(p.stdout)
    assert again["version"] == 3 and again["predecessor"] == deleted["digest"]
    # and bob may, with alice's approval over the deletion digest
    world.coffer("policy", "delete", "keep/name")
    last = json.loads(world.coffer("--json", "policy", "history", "keep/name").stdout)
    dele = last["versions"][-1]["digest"]
    doc = _doc(world, "keep/name", owner="bob")
    path = world.write("bob.json", json.dumps(doc))
    sig = os.path.join(world.tmp, "alice-recreate.sig")
    world.coffer("policy", "approve", path, "--predecessor", dele, "--out", sig)
    p = world.coffer("policy", "create", path, "--approval", sig, identity="bob", check=False)
    assert p.returncode == 0, p.stderr
