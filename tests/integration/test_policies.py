"""Policy lifecycle through the real CLI against a real cofferd."""
import json
import ssl

import pytest

from conftest import sim_policy


def test_health_version_and_metrics(world):
    status, body = world.get("/v1/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body = world.get("/v1/version")
    v = json.loads(body)
    assert status == 200 and v["tee"] == "sim" and v["key_id"] == world.cas.key_id
    status, body = world.get("/v1/metrics")
    assert status == 200 and b"cofferd_requests_total" in body


def test_tls12_is_refused(world):
    c = world.https(tls_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        c.request("GET", "/v1/health")
        c.getresponse()
    c.close()


def test_create_show_history(world):
    me = world.key_id()
    doc = sim_policy("shop/api", me, "/usr/bin/env",
                     env={"PW": "$$coffer:pw$$"},
                     secrets=[{"name": "pw", "kind": "ascii", "size": 24},
                              {"name": "given", "kind": "ascii", "value": "s3cr3t-given"}])
    out = json.loads(world.create(doc).stdout)
    assert out["name"] == "shop/api" and out["version"] == 1 and len(out["digest"]) == 64
    assert out["creator"] == me
    shown = world.coffer("--json", "policy", "show", "shop/api")
    assert "s3cr3t-given" not in shown.stdout          # explicit values are redacted
    p = json.loads(shown.stdout)
    assert p["digest"] == out["digest"] and p["policy"]["name"] == "shop/api"
    hist = json.loads(world.coffer("--json", "policy", "history", "shop/api").stdout)
    assert [v["version"] for v in hist["versions"]] == [1]


def test_create_twice_conflicts(world):
    me = world.key_id()
    doc = sim_policy("shop/dup", me, "/usr/bin/env")
    world.create(doc)
    p = world.create(doc, check=False)
    assert p.returncode == 1 and "exists" in p.stderr


def test_update_needs_current_predecessor(world):
    me = world.key_id()
    doc = sim_policy("shop/upd", me, "/usr/bin/env")
    first = json.loads(world.create(doc).stdout)
    doc["predecessor"] = "00" * 32
    p = world.update(doc, check=False)
    assert p.returncode == 1 and "predecessor" in p.stderr
    doc["predecessor"] = None
    p = world.update(doc, check=False)
    assert p.returncode == 1 and "predecessor" in p.stderr
    doc["predecessor"] = first["digest"]
    second = json.loads(world.update(doc).stdout)
    assert second["version"] == 2 and second["predecessor"] == first["digest"]
    # the old digest is no longer current: a lost update is impossible
    p = world.update(doc, check=False)
    assert p.returncode == 1 and "predecessor" in p.stderr


def test_update_by_key_not_in_access_update(world):
    me = world.key_id("alice")
    world.key_id("mallory")
    doc = sim_policy("shop/acl", me, "/usr/bin/env")
    first = json.loads(world.create(doc).stdout)
    doc["predecessor"] = first["digest"]
    p = world.update(doc, identity="mallory", check=False)
    assert p.returncode == 1 and "access.update" in p.stderr
    p = world.coffer("policy", "show", "shop/acl", identity="mallory", check=False)
    assert p.returncode == 1 and "access.read" in p.stderr
    p = world.coffer("policy", "delete", "shop/acl", identity="mallory", check=False)
    assert p.returncode == 1


def test_requests_without_client_certificate_are_refused(world):
    status, body = world.get("/v1/policies/shop%2Fnone")
    assert status == 401 and b"client certificate" in body


def test_delete_is_recorded_in_history(world):
    me = world.key_id()
    doc = sim_policy("shop/del", me, "/usr/bin/env")
    world.create(doc)
    world.coffer("policy", "delete", "shop/del")
    p = world.coffer("policy", "show", "shop/del", check=False)
    assert p.returncode == 1 and "no such policy" in p.stderr
    hist = json.loads(world.coffer("--json", "policy", "history", "shop/del").stdout)
    assert [v["deleted"] for v in hist["versions"]] == [False, True]
    # only a key that could update it may create the name again
    world.key_id("mallory")
    doc2 = sim_policy("shop/del", world.key_id("mallory"), "/usr/bin/env")
    p = world.create(doc2, identity="mallory", check=False)
    assert p.returncode == 1 and "deleted" in p.stderr
    again = json.loads(world.create(doc).stdout)
    assert again["version"] == 3


def test_invalid_policy_reports_every_error_with_location(world):
    world.key_id()
    path = world.write("bad.yaml", "name: shop/bad\npredecessor: null\nservices:\n"
                       "  - name: x\n    comand: [\"/bin/true\"]\n"
                       "    attestation: [{platform: sim, measurement: [\"zz\"]}]\n")
    p = world.coffer("policy", "create", path, check=False)
    assert p.returncode == 1
    assert "line 5" in p.stderr and "comand" in p.stderr
    assert "line 6" in p.stderr


def test_server_side_validation_of_raw_documents(world):
    world.key_id()
    c = world.https(identity="alice")
    c.request("POST", "/v1/policies", body=b"name: [unclosed", headers={
        "Content-Type": "application/yaml"})
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert r.status == 400 and body["error"]["code"] == "policy.invalid"
    assert body["error"]["details"]["errors"][0]["location"]


def test_cas_attest(world):
    p = world.coffer("cas", "attest", "--expect-key", world.cas.key_id)
    assert "attested" in p.stdout
    p = world.coffer("--json", "cas", "attest", "--expect-key", "ab" * 32, check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["valid"] is False


def test_measure_matches_sha256(world):
    import hashlib
    p = world.coffer("--json", "measure", "/bin/true")
    m = json.loads(p.stdout)[0]["measurement"]
    assert m == hashlib.sha256(open("/bin/true", "rb").read()).hexdigest()


def test_cas_attest_with_expectations_pins_the_key(world):
    import hashlib
    from conftest import COFFERD
    world.key_id()
    m = hashlib.sha256(open(COFFERD, "rb").read()).hexdigest()
    exp = world.write("cas-expect.yaml",
                      "name: expect/cofferd\npredecessor: null\nservices:\n"
                      "  - name: cofferd\n    command: [cofferd]\n    attestation:\n"
                      "      - {platform: sim, measurement: [\"%s\"]}\n"
                      "    tolerate: [simulation]\n" % m)
    env = world.env()
    del env["COFFER_CAS_KEY"]
    # without a pin, policy commands need --cas-key
    p = world.coffer("policy", "history", "x/y", env=env, check=False)
    assert p.returncode == 2
    p = world.coffer("cas", "attest", "--policy", exp, env=env)
    assert "attested" in p.stdout and "pinned" in p.stderr
    # later commands check the pinned key
    p = world.coffer("policy", "history", "x/none", env=env, check=False)
    assert p.returncode == 1 and "no such policy" in p.stderr
    # a wrong measurement is refused and names the rule
    bad = world.write("bad-expect.yaml", open(exp).read().replace(m, "00" * 32))
    p = world.coffer("--json", "cas", "attest", "--policy", bad, env=env, check=False)
    out = json.loads(p.stdout)
    assert p.returncode == 1 and out["valid"] is False
    assert any(c["name"] == "rule[0].measurement" and not c["ok"] for c in out["checks"])


def test_cas_attest_refuses_an_untrusted_sim_platform(world, tmp_path):
    # the client's own sim platform differs from cofferd's: its evidence is not believed
    env = world.env(COFFER_SIM_DIR=str(tmp_path / "elsewhere"))
    p = world.coffer("--json", "cas", "attest", "--expect-key", world.cas.key_id, env=env,
                     check=False)
    out = json.loads(p.stdout)
    assert p.returncode == 1
    assert any(c["name"] == "sim.platform_key" and not c["ok"] for c in out["checks"])
