"""Volumes under coffer-run: an unmodified python3 writes to a shielded volume; the data is
encrypted on disk, survives runs, and an older copy of the volume is refused as a rollback
because cofferd keeps the volume's tag (prepare, commit) on every commit."""
import hashlib
import os
import shutil
import struct
import subprocess

import pytest

from conftest import BUILD, COFFER_RUN, measure, sim_policy

SHIM = os.path.join(BUILD, "src", "shield", "preload", "libcoffer-shield.so")
PYTHON = os.path.realpath("/usr/bin/python3")


def _sanitized():
    out = subprocess.run(["ldd", SHIM], capture_output=True, text=True).stdout
    return "libasan" in out or "libubsan" in out


pytestmark = pytest.mark.skipif(not os.path.exists(SHIM) or _sanitized(),
                                reason="the shield is preloaded into an unsanitized python3; "
                                       "covered by the normal build")

SCRIPT = """
import os, sys
path = os.path.join(sys.argv[1], "notes.txt")
old = open(path).read() if os.path.exists(path) else ""
print("before:", old.replace("\\n", "|"))
with open(path, "a") as f:
    f.write(sys.argv[2] + "-secret-marker\\n")
    f.flush()
    os.fsync(f.fileno())
"""


def _setup(world, **volume):
    me = world.key_id()
    mount = os.path.join(world.tmp, "mnt", "data")
    doc = sim_policy("run/vol", me, PYTHON, command=["python3", "-c", SCRIPT, mount, "WORD"],
                     extra_service={"volumes": [{"volume": "data", "path": mount}]})
    doc["volumes"] = [dict({"name": "data", "rollback": "protected"}, **volume)]
    world.create(doc)
    return doc, mount


def _run(world, doc, word):
    import json
    svc = doc["services"][0]
    svc["command"][-1] = word
    cur = json.loads(world.coffer("--json", "policy", "show", "run/vol").stdout)
    doc["predecessor"] = cur["digest"]
    world.update(doc)
    env = world.env(COFFER_VOLUME_DIR=os.path.join(world.tmp, "vols"))
    return subprocess.run([COFFER_RUN, "--policy", "run/vol", "--service", "app", PYTHON],
                          capture_output=True, text=True, env=env, timeout=60)


def test_volume_persists_encrypted_and_refuses_rollback(world):
    doc, mount = _setup(world)
    p = _run(world, doc, "one")
    assert p.returncode == 0, p.stderr
    assert "before: \n" in p.stdout or p.stdout.startswith("before: ")
    p = _run(world, doc, "two")
    assert p.returncode == 0, p.stderr
    assert "one-secret-marker" in p.stdout
    backing = os.path.join(world.tmp, "vols")
    for root, _, files in os.walk(backing):
        for f in files:
            assert b"secret-marker" not in open(os.path.join(root, f), "rb").read()
    assert not os.path.exists(mount)
    # the attacker keeps a copy, lets the program write more, then restores the copy
    shutil.copytree(backing, os.path.join(world.tmp, "old"))
    p = _run(world, doc, "three")
    assert p.returncode == 0 and "two-secret-marker" in p.stdout, p.stderr
    shutil.rmtree(backing)
    shutil.copytree(os.path.join(world.tmp, "old"), backing)
    p = _run(world, doc, "four")
    assert p.returncode == 125 and "rollback" in p.stderr, (p.returncode, p.stderr)


WRITER = """
import os, sys, time
path = os.path.join(sys.argv[1], "log.txt")
n = 0
if os.path.exists(path):
    n = len(open(path).read().splitlines())
    print("resumed after", n, "lines", flush=True)
with open(path, "a") as f:
    for i in range(100000):
        f.write("line %d of heavy writing\\n" % (n + i))
        f.flush()
        os.fsync(f.fileno())
        if i == 20:
            print("writing", flush=True)
"""


@pytest.mark.parametrize("freshness", ["strict", "batched"])
def test_kill_9_during_heavy_writes_then_continue(world, freshness):
    import signal
    import time
    me = world.key_id()
    mount = os.path.join(world.tmp, "mnt", "crash")
    doc = sim_policy("run/crash", me, PYTHON, command=["python3", "-c", WRITER, mount],
                     extra_service={"volumes": [{"volume": "data", "path": mount}]})
    doc["volumes"] = [{"name": "data", "rollback": "protected", "freshness": freshness}]
    world.create(doc)
    env = world.env(COFFER_VOLUME_DIR=os.path.join(world.tmp, "vols"))
    proc = subprocess.Popen([COFFER_RUN, "--policy", "run/crash", "--service", "app", PYTHON],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        children = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
        assert children, "the program runs as coffer-run's child"
        os.kill(int(children[0]), signal.SIGKILL)      # mid-commit, most likely
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 128 + signal.SIGKILL
    # offline, with the volume's key (as an activation releases it): every chunk verifies
    import base64
    import json
    from conftest import COFFER
    bundle = json.loads(world.probe("normal", "run/crash", "app", measure(PYTHON))["bodies"][0])
    keyfile = os.path.join(world.tmp, "volume.key")
    with open(keyfile, "wb") as f:
        f.write(base64.b64decode(bundle["volumes"][0]["key"]))
    backing = os.path.join(world.tmp, "vols", "run%2Fcrash", "data")
    v = subprocess.run([COFFER, "volume", "verify", backing, "--key-file", keyfile],
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "ok: 0 problems" in v.stdout, v.stdout + v.stderr
    # the next run opens the volume at the committed or the prepared tag and continues
    cont = subprocess.Popen([COFFER_RUN, "--policy", "run/crash", "--service", "app", PYTHON],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = cont.stdout.readline().strip()
        assert first.startswith("resumed after"), (first, cont.stderr.read() if cont.poll() else "")
        assert int(first.split()[2]) > 20
    finally:
        cont.kill()
        cont.wait(timeout=10)


def _backing(world):
    return os.path.join(world.tmp, "vols", "run%2Fvol", "data")


def _cofferd_tags(world):
    import json
    bundle = json.loads(world.probe("normal", "run/vol", "app", measure(PYTHON))["bodies"][0])
    return bundle["volumes"][0]


def _disk_tag(world):
    """The tag of the manifest slot with the newest generation (docs/formats/volume.md,
    "Manifest records"): header = magic (8), u32 version, u64 generation, u32 body length,
    prev tag (32), u32 payload length, payload digest (32); the tag is SHA-256 of the
    92-byte header and the body (bytes after them are leftovers). A clean exit checkpoints,
    so the newest slot holds the last state (the journal then adds nothing)."""
    best = None
    for name in ("manifest.0", "manifest.1"):
        path = os.path.join(_backing(world), name)
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        generation, length = struct.unpack_from("<QI", data, 12)
        if best is None or generation > best[0]:
            best = (generation, hashlib.sha256(data[:92 + length]).hexdigest())
    assert best is not None, "no manifest slot in the backing directory"
    return best[1]


def test_batched_mode_end_to_end_and_rollback_refused(world):
    doc, mount = _setup(world, freshness="batched", batched_window_ms=50)
    p = _run(world, doc, "one")
    assert p.returncode == 0, p.stderr
    # a clean exit waits for cofferd: it knows the state on disk, with its generation
    vol = _cofferd_tags(world)
    assert vol["freshness"] == "batched" and vol["expected_tags"] == [_disk_tag(world)]
    assert vol["generation"] >= 1
    p = _run(world, doc, "two")
    assert p.returncode == 0 and "one-secret-marker" in p.stdout, p.stderr
    backing = _backing(world)
    old = os.path.join(world.tmp, "old")
    shutil.copytree(backing, old)
    p = _run(world, doc, "three")
    assert p.returncode == 0 and "two-secret-marker" in p.stdout, p.stderr
    assert _cofferd_tags(world)["generation"] > vol["generation"]
    shutil.rmtree(backing)
    shutil.copytree(old, backing)
    p = _run(world, doc, "four")
    assert p.returncode == 125 and "rollback" in p.stderr, (p.returncode, p.stderr)


def test_reinitializable_refuses_rollback_starts_empty_and_resets(world):
    import json
    doc, mount = _setup(world, rollback="reinitializable")
    assert _run(world, doc, "one").returncode == 0
    backing = _backing(world)
    old = os.path.join(world.tmp, "old")
    shutil.copytree(backing, old)
    p = _run(world, doc, "two")
    assert p.returncode == 0 and "one-secret-marker" in p.stdout, p.stderr
    # an older copy is still a rollback
    saved = os.path.join(world.tmp, "saved")
    shutil.move(backing, saved)
    shutil.copytree(old, backing)
    p = _run(world, doc, "three")
    assert p.returncode == 125 and "rollback" in p.stderr, (p.returncode, p.stderr)
    # a deleted volume starts empty (that is what reinitializable allows)
    shutil.rmtree(backing)
    p = _run(world, doc, "four")
    assert p.returncode == 0 and p.stdout.startswith("before: \n"), p.stdout + p.stderr
    # an authorised reset: a new key; the next start wipes the old files and starts empty
    shutil.rmtree(backing)
    shutil.move(saved, backing)
    c = world.https("alice")
    c.request("POST", "/v1/volumes/run%2Fvol/data/reset", body="{}")
    r = c.getresponse()
    assert r.status == 200, r.read()
    r.read()
    c.close()
    p = _run(world, doc, "five")
    assert p.returncode == 0 and p.stdout.startswith("before: \n"), p.stdout + p.stderr
    p = _run(world, doc, "six")
    assert p.returncode == 0 and "five-secret-marker" in p.stdout, p.stderr
    assert "one-secret-marker" not in p.stdout
    assert _cofferd_tags(world)["reset"] is False


def test_volume_cache_option(world):
    """--volume-cache reaches the shield (which refuses a configuration it cannot parse, so a
    run proves the value was carried); bad values are refused before anything runs."""
    doc, mount = _setup(world)
    env = world.env(COFFER_VOLUME_DIR=os.path.join(world.tmp, "vols"))
    base = [COFFER_RUN, "--policy", "run/vol", "--service", "app"]
    for i, mib in enumerate(["0", "1", "4096"]):
        p = subprocess.run(base + ["--volume-cache", mib, PYTHON], capture_output=True,
                           text=True, env=env, timeout=60)
        assert p.returncode == 0, (mib, p.stderr)
        assert p.stdout.count("WORD-secret-marker") == i, p.stdout
    p = subprocess.run(base + [PYTHON], capture_output=True, text=True, timeout=60,
                       env=dict(env, COFFER_VOLUME_CACHE="8"))
    assert p.returncode == 0 and p.stdout.count("WORD-secret-marker") == 3, p.stderr
    for bad in ["4097", "-1", "x", ""]:
        p = subprocess.run(base + ["--volume-cache", bad, PYTHON], capture_output=True,
                           text=True, env=env, timeout=60)
        assert p.returncode == 125 and "--volume-cache" in p.stderr, (bad, p.stderr)


STEPPER = """
import os, sys, time
path, go = os.path.join(sys.argv[1], "log.txt"), sys.argv[2]
with open(path, "a") as f:
    f.write("first\\n"); f.flush(); os.fsync(f.fileno())
    print("ready", flush=True)
    for _ in range(300):
        if os.path.exists(go):
            break
        time.sleep(0.1)
    f.write("second\\n"); f.flush()
    try:
        os.fsync(f.fileno())
        print("second: ok", flush=True)
    except OSError as e:
        print("second: error", e.errno, flush=True)
"""


def test_agent_reconnects_only_to_the_attested_cofferd(world):
    """With --cas-policy (no key id given), the freshness agent's reconnection is pinned to
    the key id attested at start: an impostor at the same address that says yes to
    everything is never believed, and the program's fsync fails instead."""
    import socket
    import ssl
    import threading
    from conftest import COFFERD
    me = world.key_id()
    mount = os.path.join(world.tmp, "mnt", "data")
    go = os.path.join(world.tmp, "go")
    doc = sim_policy("run/vol", me, PYTHON, command=["python3", "-c", STEPPER, mount, go],
                     extra_service={"volumes": [{"volume": "data", "path": mount}]})
    doc["volumes"] = [{"name": "data", "rollback": "protected", "freshness": "strict"}]
    world.create(doc)
    m = hashlib.sha256(open(COFFERD, "rb").read()).hexdigest()
    exp = world.write("exp.yaml", "name: expect/cofferd\npredecessor: null\nservices:\n"
                      "  - name: cofferd\n    command: [cofferd]\n    attestation:\n"
                      "      - {platform: sim, measurement: [\"%s\"]}\n"
                      "    tolerate: [simulation]\n" % m)
    env = world.env(COFFER_VOLUME_DIR=os.path.join(world.tmp, "vols"))
    del env["COFFER_CAS_KEY"]
    key, crt = os.path.join(world.tmp, "imp.key"), os.path.join(world.tmp, "imp.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "1", "-subj", "/CN=impostor"], check=True, capture_output=True, timeout=30)
    proc = subprocess.Popen([COFFER_RUN, "--cas-policy", exp, "--policy", "run/vol",
                             "--service", "app", PYTHON], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    lsock = None
    try:
        assert proc.stdout.readline().strip() == "ready"
        port = world.cas.port
        world.cas.stop()
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(4)
        lsock.settimeout(20)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)

        def impostor():
            for _ in range(4):  # bounded: the agent connects at most twice per tag
                try:
                    conn, _ = lsock.accept()
                except OSError:
                    return
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.settimeout(5)
                        data = tls.recv(65536)
                        seen.append(data)
                        if data:
                            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                        b"Content-Length: 2\r\n\r\n{}")
                except (OSError, ssl.SSLError):
                    pass

        t = threading.Thread(target=impostor, daemon=True)
        t.start()
        open(go, "w").close()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if lsock is not None:
            lsock.close()
    assert "second: error" in out, (out, err)
    assert not any(seen), seen  # no request ever reached the impostor
