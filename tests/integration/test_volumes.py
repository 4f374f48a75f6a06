"""Volumes at cofferd: a key per volume released only by activation, and the two-phase tag
protocol (prepare, commit) authenticated by a token derived from the volume key."""
import json

from conftest import measure, sim_policy


def _policy(me):
    doc = sim_policy("vol/app", me, "/usr/bin/env", command=["env"],
                     extra_service={"volumes": [{"volume": "data", "path": "/var/lib/app"}]})
    doc["volumes"] = [{"name": "data", "rollback": "protected"}]
    return doc


def _activate(world):
    r = world.probe("normal", "vol/app", "app", measure("/usr/bin/env"))
    assert r["statuses"] == [200], r["bodies"]
    return json.loads(r["bodies"][0])


def _tag(world, body=None, token=None):
    c = world.https()
    if body is None:
        c.request("GET", "/v1/volumes/vol%2Fapp/data/tag",
                  headers={"X-Coffer-Volume-Token": token or ""})
    else:
        c.request("POST", "/v1/volumes/vol%2Fapp/data/tag", body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


def test_activation_releases_the_volume_and_tags_advance(world):
    me = world.key_id()
    world.create(_policy(me))
    b = _activate(world)
    [vol] = b["volumes"]
    assert vol["name"] == "data" and vol["path"] == "/var/lib/app"
    assert vol["rollback"] == "protected" and vol["expected_tags"] == []
    assert len(vol["key"]) == 44 and len(vol["token"]) == 64
    # the policy read API never shows the key
    assert vol["key"] not in world.coffer("--json", "policy", "show", "vol/app").stdout
    t1, t2 = "11" * 32, "22" * 32
    assert _tag(world, {"token": vol["token"], "commit": t1})[0] == 409   # not prepared
    assert _tag(world, {"token": vol["token"], "prepare": t1}) == (
        200, {"committed": None, "prepared": t1})
    assert _tag(world, {"token": vol["token"], "commit": t1}) == (
        200, {"committed": t1, "prepared": None})
    assert _tag(world, {"token": vol["token"], "prepare": t2})[0] == 200
    # a crash between prepare and commit: the next activation accepts either tag
    b2 = _activate(world)
    assert b2["volumes"][0]["expected_tags"] == [t1, t2]
    assert b2["volumes"][0]["key"] == vol["key"]
    assert _tag(world, token=vol["token"]) == (200, {"committed": t1, "prepared": t2})
    # the tags survive a restart of cofferd
    world.cas.restart()
    assert _tag(world, token=vol["token"]) == (200, {"committed": t1, "prepared": t2})


def test_tag_updates_need_the_volume_token(world):
    me = world.key_id()
    world.create(_policy(me))
    _activate(world)
    status, body = _tag(world, {"token": "00" * 32, "prepare": "33" * 32})
    assert status == 403 and body["error"]["code"] == "volume.token"
    assert _tag(world, token="ab" * 32)[0] == 403
    assert _tag(world, {"token": "00" * 32})[0] == 403     # neither prepare nor commit
    c = world.https()
    c.request("POST", "/v1/volumes/vol%2Fapp/nope/tag", body="{}")
    r = c.getresponse()
    assert r.status == 404
    r.read()
    c.close()


def test_policy_validation_of_volumes(world):
    me = world.key_id()
    doc = _policy(me)
    doc["services"][0]["volumes"].append({"volume": "missing", "path": "/x"})
    p = world.create(doc, check=False)
    assert p.returncode == 1 and "no volume named 'missing'" in p.stderr


def _post(world, path, body, identity=None):
    c = world.https(identity)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


def test_batched_advance_needs_growing_generations(world):
    me = world.key_id()
    doc = _policy(me)
    doc["volumes"][0].update({"freshness": "batched", "batched_window_ms": 40})
    world.create(doc)
    vol = _activate(world)["volumes"][0]
    assert vol["freshness"] == "batched" and vol["batched_window_ms"] == 40
    assert vol["generation"] == 0 and vol["reset"] is False
    t1, t2, t3 = "11" * 32, "22" * 32, "33" * 32
    tok = vol["token"]
    # an advance must name its generation
    assert _tag(world, {"token": tok, "advance": t1})[0] == 403
    assert _tag(world, {"token": tok, "advance": t1, "generation": 5}) == (
        200, {"committed": t1, "prepared": None})
    # the same or an older generation cannot move cofferd back (a replayed report)
    status, body = _tag(world, {"token": tok, "advance": t2, "generation": 5})
    assert status == 409 and body["error"]["code"] == "volume.generation"
    assert _tag(world, {"token": tok, "advance": t2, "generation": 4})[0] == 409
    assert _tag(world, {"token": tok, "advance": t3, "generation": 9})[0] == 200
    b = _activate(world)["volumes"][0]
    assert b["expected_tags"] == [t3] and b["generation"] == 9
    assert _tag(world, {"token": tok, "advance": t1, "generation": -1})[0] == 403


def test_reset_needs_update_permission_and_is_audited(world):
    me = world.key_id()
    doc = _policy(me)
    doc["volumes"][0]["rollback"] = "reinitializable"
    world.create(doc)
    vol = _activate(world)["volumes"][0]
    t1 = "11" * 32
    assert _tag(world, {"token": vol["token"], "prepare": t1, "generation": 1})[0] == 200
    assert _tag(world, {"token": vol["token"], "commit": t1, "generation": 1})[0] == 200
    # without a client certificate: refused
    status, body = _post(world, "/v1/volumes/vol%2Fapp/data/reset", {})
    assert status == 401
    status, body = _post(world, "/v1/volumes/vol%2Fapp/nope/reset", {}, identity="alice")
    assert status == 404
    status, body = _post(world, "/v1/volumes/vol%2Fapp/data/reset", {}, identity="alice")
    assert status == 200 and body["reset"] is True, body
    b = _activate(world)["volumes"][0]
    # a new key (the old contents are unreadable), no tags, and the reset flag for the shield
    assert b["key"] != vol["key"] and b["token"] != vol["token"]
    assert b["expected_tags"] == [] and b["reset"] is True and b["generation"] == 0
    # the old token no longer moves the tags
    assert _tag(world, {"token": vol["token"], "prepare": t1})[0] == 403
    # the first tag of the new volume clears the reset flag
    assert _tag(world, {"token": b["token"], "prepare": t1, "generation": 1})[0] == 200
    assert _activate(world)["volumes"][0]["reset"] is False
    status, raw = world.get("/v1/audit?from=1&limit=100", identity="alice")
    assert status == 200
    resets = [e for e in json.loads(raw)["entries"] if e["type"] == "volume.reset"]
    assert len(resets) == 1 and resets[0]["details"] == {"policy": "vol/app", "volume": "data"}


def test_reset_refused_without_update_permission(world):
    me = world.key_id()
    doc = _policy(me)
    world.create(doc)
    world.key_id("bob")
    status, body = _post(world, "/v1/volumes/vol%2Fapp/data/reset", {}, identity="bob")
    assert status == 403 and body["error"]["code"] == "policy.access", body
