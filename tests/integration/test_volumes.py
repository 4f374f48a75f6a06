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
