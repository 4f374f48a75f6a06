"""k-of-n recovery: a cofferd whose sealing key changed (new machine, new measurement) waits
in recovery mode until K holders send their shares, then serves its old state again."""
import base64
import json
import os
import subprocess

from conftest import COFFERD, Cofferd, sim_policy


def _init(world, data_dir, holders, k):
    certs = []
    for h in holders:
        world.key_id(h)
        certs += ["--recovery-key", os.path.join(world.tmp, "id-" + h, "identity.crt")]
    env = dict(os.environ, COFFER_SIM_DIR=world.sim_dir)
    return subprocess.run([COFFERD, "init", "--data-dir", data_dir, *certs,
                           "--recovery-threshold", str(k)], capture_output=True, text=True,
                          env=env, timeout=30)


def _post(world, body):
    c = world.https()
    c.request("POST", "/v1/recovery", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


def test_two_of_three_recovery(world):
    world.cas.stop()
    data = os.path.join(world.tmp, "recoverable")
    p = _init(world, data, ["alice", "bob", "carol"], 2)
    assert p.returncode == 0, p.stderr
    assert "split 2 of 3" in p.stdout
    p = _init(world, data, ["alice", "bob", "carol"], 2)
    assert p.returncode == 1 and "initialised already" in p.stderr
    world.cas = Cofferd(data, world.sim_dir).start()
    me = world.key_id("alice")
    doc = sim_policy("rec/app", me, "/usr/bin/env", command=["env"],
                     env={"S": "$$coffer:s$$"}, secrets=[{"name": "s", "kind": "ascii", "size": 24}])
    world.create(doc)
    before = world.run("/usr/bin/env", "rec/app", "app").stdout
    assert before
    # a new machine: this sealing key cannot unwrap the data key any more
    world.cas.stop()
    os.unlink(os.path.join(data, "sealing.key"))
    world.cas.start()
    assert "RECOVERY MODE" in world.cas.logs()
    status, body = world.get("/v1/health")
    assert json.loads(body)["status"] == "recovery"
    p = world.coffer("policy", "show", "rec/app", check=False)
    assert p.returncode == 1 and "recovery" in p.stderr
    # a share from another bundle (another cofferd) is refused
    status, body = _post(world, {"share": base64.b64encode(os.urandom(49)).decode()})
    assert status == 400 and body["error"]["code"] == "recovery.bundle"
    # the first holder: one of two
    p = world.coffer("cas", "recover", identity="alice")
    assert "1 of 2 received, 1 more needed" in p.stdout
    p = world.coffer("cas", "recover", identity="alice", check=False)
    assert p.returncode == 1 and "already" in p.stderr
    status, _ = world.get("/v1/metrics")
    assert status == 503                       # still recovering with k-1 shares
    # the second holder completes it
    p = world.coffer("cas", "recover", identity="carol")
    assert "recovered" in p.stdout
    status, body = world.get("/v1/health")
    assert json.loads(body)["status"] == "ok"
    after = world.run("/usr/bin/env", "rec/app", "app")
    assert after.returncode == 0 and after.stdout == before
    # and the data key is sealed to the new machine: a restart needs no recovery
    world.cas.restart()
    assert world.get("/v1/health")[0] == 200
    assert json.loads(world.coffer("--json", "policy", "show", "rec/app").stdout)["version"] == 1


def test_a_wrong_share_discards_the_round(world):
    world.cas.stop()
    data = os.path.join(world.tmp, "recoverable2")
    assert _init(world, data, ["alice", "bob"], 2).returncode == 0
    world.cas = Cofferd(data, world.sim_dir).start()
    world.cas.stop()
    os.unlink(os.path.join(data, "sealing.key"))
    world.cas.start()
    status, body = world.get("/v1/recovery")
    bundle = json.loads(body)
    assert bundle["threshold"] == 2 and "check" not in bundle
    world.coffer("cas", "recover", identity="alice")
    bogus = bytes.fromhex(bundle["bundle_id"]) + bytes([2]) + os.urandom(32)
    status, body = _post(world, {"share": base64.b64encode(bogus).decode()})
    assert status == 400 and body["error"]["code"] == "recovery.mismatch"
    # the round starts over: both real holders recover it
    world.coffer("cas", "recover", identity="alice")
    assert "recovered" in world.coffer("cas", "recover", identity="bob").stdout


def test_recovery_needs_two_keys_and_a_threshold(world):
    data = os.path.join(world.tmp, "bad")
    world.key_id("alice")
    env = dict(os.environ, COFFER_SIM_DIR=world.sim_dir)
    crt = os.path.join(world.tmp, "id-alice", "identity.crt")
    p = subprocess.run([COFFERD, "init", "--data-dir", data, "--recovery-key", crt,
                        "--recovery-threshold", "2"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert p.returncode == 2
    p = subprocess.run([COFFERD, "--data-dir", data, "--recovery-key", crt],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 2 and "init" in p.stderr
