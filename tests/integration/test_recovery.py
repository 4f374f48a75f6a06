"""k-of-n recovery: a cofferd whose sealing key changed (new machine, new measurement) waits
in recovery mode, under a temporary TLS identity, until K holders send their shares; then it
serves its old state again under its original identity."""
import base64
import hashlib
import http.client
import json
import os
import subprocess
import time

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


def _post(world, body, identity=None):
    c = world.https(identity)
    c.request("POST", "/v1/recovery", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


def _wait_serving(world, timeout=10):
    """cofferd leaves recovery mode after its reply to the last share: its serving loop
    restarts, and a connection accepted just before that is closed. Wait (bounded) until it
    answers health as ok."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = world.get("/v1/health")
            if status == 200 and json.loads(body)["status"] == "ok":
                return
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "cofferd did not leave recovery mode"
        time.sleep(0.05)


def _expectations(world):
    """A policy whose service 'cofferd' accepts this build of cofferd (sim)."""
    with open(COFFERD, "rb") as f:
        m = hashlib.sha256(f.read()).hexdigest()
    return world.write("cofferd-expect.yaml",
                       "name: expect/cofferd\npredecessor: null\nservices:\n"
                       "  - name: cofferd\n    command: [cofferd]\n    attestation:\n"
                       "      - {platform: sim, measurement: [\"%s\"]}\n"
                       "    tolerate: [simulation]\n" % m)


def _new_machine(world, data):
    """Restarts cofferd with another sealing key; returns its temporary key id."""
    world.cas.stop()
    os.unlink(os.path.join(data, "sealing.key"))
    world.cas.start()
    logs = world.cas.logs()
    assert "RECOVERY MODE" in logs and "TEMPORARY TLS identity" in logs
    return world.cas.key_id


def _scan_for_private_keys(data):
    for root, _, files in os.walk(data):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert b"PRIVATE KEY" not in f.read(), name


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
    original = world.cas.key_id
    # a new machine: this sealing key cannot unwrap the data key nor the TLS key any more
    temporary = _new_machine(world, data)
    assert temporary != original
    status, body = world.get("/v1/health")
    assert json.loads(body)["status"] == "recovery"
    p = world.coffer("policy", "show", "rec/app", check=False)
    assert p.returncode == 1 and "recovery" in p.stderr
    # a share from another bundle (another cofferd) is refused
    status, body = _post(world, {"share": base64.b64encode(os.urandom(49)).decode()})
    assert status == 400 and body["error"]["code"] == "recovery.bundle"
    # the pinned original identity does not answer: nothing is sent, and the error says why
    p = world.coffer("cas", "recover", "--cas-key", original, identity="alice", check=False)
    assert p.returncode == 1 and "temporary" in p.stderr and "No share was sent" in p.stderr
    assert json.loads(world.get("/v1/recovery")[1])["received"] == 0
    # without a way to check cofferd, recover refuses to start
    env = world.env("alice")
    del env["COFFER_CAS_KEY"]
    p = world.coffer("cas", "recover", env=env, check=False)
    assert p.returncode == 2 and "--policy" in p.stderr
    # the first holder verifies the temporary identity by attestation: one of two
    p = world.coffer("cas", "recover", "--policy", _expectations(world), env=env)
    assert "1 of 2 received, 1 more needed" in p.stdout
    assert "in recovery mode" in p.stderr and temporary in p.stderr
    p = world.coffer("cas", "recover", identity="alice", check=False)
    assert p.returncode == 1 and "already" in p.stderr
    status, _ = world.get("/v1/metrics")
    assert status == 503                       # still recovering with k-1 shares
    # the second holder completes it with the temporary key id from cofferd's log
    p = world.coffer("cas", "recover", "--cas-key", temporary, identity="carol")
    assert "recovered" in p.stdout
    _wait_serving(world)
    # cofferd leaves recovery mode once that reply is sent: wait (bounded) for its switch
    deadline = time.monotonic() + 10
    while "original TLS identity again" not in world.cas.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "original TLS identity again" in world.cas.logs()
    # cofferd is itself again: the key id clients pinned before is back
    world.cas.key_id = original
    info = json.loads(world.coffer("--json", "cas", "info").stdout)
    assert info["tls_key_id"] == original
    status, body = world.get("/v1/health")
    assert json.loads(body)["status"] == "ok"
    after = world.run("/usr/bin/env", "rec/app", "app")
    assert after.returncode == 0 and after.stdout == before
    # and the data key and the TLS key are sealed to the new machine: no recovery at restart
    world.cas.restart()
    assert world.cas.key_id == original
    assert world.get("/v1/health")[0] == 200
    assert json.loads(world.coffer("--json", "policy", "show", "rec/app").stdout)["version"] == 1
    _scan_for_private_keys(data)


def _two_holders_in_recovery(world, name):
    world.cas.stop()
    data = os.path.join(world.tmp, name)
    assert _init(world, data, ["alice", "bob"], 2).returncode == 0
    world.cas = Cofferd(data, world.sim_dir).start()
    return data


def test_a_wrong_share_is_refused_and_keeps_the_round(world):
    data = _two_holders_in_recovery(world, "recoverable2")
    _new_machine(world, data)
    status, body = world.get("/v1/recovery")
    bundle = json.loads(body)
    assert bundle["version"] == 2 and bundle["threshold"] == 2 and "check" not in bundle
    assert all(len(s["commitment"]) == 64 for s in bundle["shares"])
    world.coffer("cas", "recover", identity="alice")
    x_bob = [s["x"] for s in bundle["shares"] if s["key_id"] == world.key_id("bob")][0]
    bogus = bytes.fromhex(bundle["bundle_id"]) + bytes([x_bob]) + os.urandom(32)
    status, body = _post(world, {"share": base64.b64encode(bogus).decode()}, identity="bob")
    assert status == 400 and body["error"]["code"] == "recovery.share"
    assert "commitment" in body["error"]["message"]
    assert json.loads(world.get("/v1/recovery")[1])["received"] == 1   # alice's share kept
    # bob's real share completes it
    assert "recovered" in world.coffer("cas", "recover", identity="bob").stdout
    _wait_serving(world)


def test_a_share_from_a_non_holder_is_refused(world):
    data = _two_holders_in_recovery(world, "recoverable3")
    _new_machine(world, data)
    bundle = json.loads(world.get("/v1/recovery")[1])
    world.key_id("dave")
    x_bob = [s["x"] for s in bundle["shares"] if s["key_id"] == world.key_id("bob")][0]
    share = base64.b64encode(bytes.fromhex(bundle["bundle_id"]) + bytes([x_bob]) +
                             os.urandom(32)).decode()
    for who in (None, "dave", "alice"):                 # anonymous, a stranger, another holder
        status, body = _post(world, {"share": share}, identity=who)
        assert status == 403 and body["error"]["code"] == "recovery.holder", who
    unknown_x = bytes.fromhex(bundle["bundle_id"]) + bytes([200]) + os.urandom(32)
    status, body = _post(world, {"share": base64.b64encode(unknown_x).decode()}, identity="bob")
    assert status == 400 and body["error"]["code"] == "recovery.share"
    assert json.loads(world.get("/v1/recovery")[1])["received"] == 0
    # a holder whose identity is not in the bundle gets nothing to send either
    p = world.coffer("cas", "recover", identity="dave", check=False)
    assert p.returncode == 1 and "no share for your key" in p.stderr


def _rewrite_bundle(data, edit):
    path = os.path.join(data, "recovery.json")
    with open(path) as f:
        bundle = json.load(f)
    edit(bundle)
    with open(path, "w") as f:
        json.dump(bundle, f)


def test_a_version_1_bundle_keeps_the_old_behaviour(world):
    data = _two_holders_in_recovery(world, "recoverable4")

    def to_v1(bundle):
        bundle["version"] = 1
        for s in bundle["shares"]:
            del s["commitment"]
    _rewrite_bundle(data, to_v1)
    _new_machine(world, data)
    bundle = json.loads(world.get("/v1/recovery")[1])   # served once the bundle is loaded
    assert "version 1 (no share commitments)" in world.cas.logs()
    world.coffer("cas", "recover", identity="alice")
    x_bob = [s["x"] for s in bundle["shares"] if s["key_id"] == world.key_id("bob")][0]
    bogus = bytes.fromhex(bundle["bundle_id"]) + bytes([x_bob]) + os.urandom(32)
    status, body = _post(world, {"share": base64.b64encode(bogus).decode()}, identity="bob")
    assert status == 400 and body["error"]["code"] == "recovery.mismatch"
    # the round starts over: both real holders recover it
    world.coffer("cas", "recover", identity="alice")
    assert "recovered" in world.coffer("cas", "recover", identity="bob").stdout


def test_an_unknown_bundle_version_is_refused(world):
    data = _two_holders_in_recovery(world, "recoverable5")
    _rewrite_bundle(data, lambda b: b.update(version=3))
    world.cas.stop()
    os.unlink(os.path.join(data, "sealing.key"))
    world.cas.start()           # it listens, then cannot load the bundle and stops
    world.cas.proc.wait(timeout=20)
    assert world.cas.proc.returncode == 1
    assert "cannot load the recovery bundle" in world.cas.logs()
    assert "versions 1 and 2" in world.cas.logs()


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
