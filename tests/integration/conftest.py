"""Fixtures for integration tests: real cofferd, coffer and coffer-run processes on
127.0.0.1 with ephemeral ports and temporary directories, every process stopped by PID."""
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("COFFER_BUILD", os.path.join(ROOT, "build"))


def binary(*parts):
    path = os.path.join(BUILD, *parts)
    if not os.path.exists(path):
        pytest.fail("missing binary %s: build first (make build)" % path)
    return path


COFFERD = binary("src", "cas", "cofferd")
COFFER = binary("src", "cli", "coffer")
COFFER_RUN = binary("src", "run", "coffer-run")
PROBE = binary("tests", "integration", "activation-probe")


def measure(path):
    with open(os.path.realpath(path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Cofferd:
    """One cofferd process; start() waits for its 'listening' line (bounded)."""

    def __init__(self, data_dir, sim_dir, threads=2):
        self.data_dir = data_dir
        self.sim_dir = sim_dir
        self.threads = threads
        self.proc = None
        self.extra_args = []
        self.port = None
        self.key_id = None
        self.log_path = os.path.join(os.path.dirname(data_dir), "cofferd-%d.log" % id(self))

    def start(self, expect_failure=False):
        env = dict(os.environ, COFFER_SIM_DIR=self.sim_dir)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [COFFERD, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
             "--threads", str(self.threads), *self.extra_args],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            m = re.match(r"cofferd key id: ([0-9a-f]{64})", line)
            if m:
                self.key_id = m.group(1)
            m = re.match(r"cofferd listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return self
        if expect_failure:
            self.proc.wait(timeout=10)
            return self
        self.stop()
        raise RuntimeError("cofferd did not start:\n" + self.logs())

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.log.close() if getattr(self, "log", None) else None

    def restart(self):
        self.stop()
        return self.start()


class Env:
    """A temporary world: one cofferd, a sim platform, and identities for people."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.sim_dir = os.path.join(self.tmp, "sim")
        self.cas = Cofferd(os.path.join(self.tmp, "data"), self.sim_dir).start()

    def env(self, identity="alice", **extra):
        e = dict(os.environ, COFFER_CAS=self.cas.address, COFFER_CAS_KEY=self.cas.key_id,
                 COFFER_SIM_DIR=self.sim_dir,
                 COFFER_IDENTITY=os.path.join(self.tmp, "id-" + identity))
        e.update(extra)
        return e

    def coffer(self, *args, identity="alice", check=True, env=None):
        p = subprocess.run([COFFER, *args], capture_output=True, text=True, timeout=30,
                           env=env or self.env(identity), stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError("coffer %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return p

    def key_id(self, identity="alice"):
        path = os.path.join(self.tmp, "id-" + identity, "identity.key")
        if not os.path.exists(path):
            self.coffer("id", "new", identity=identity)
        return self.coffer("id", "show", identity=identity).stdout.strip()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def create(self, doc, identity="alice", check=True):
        path = self.write("policy-%d.json" % time.monotonic_ns(), json.dumps(doc))
        return self.coffer("--json", "policy", "create", path, identity=identity, check=check)

    def update(self, doc, identity="alice", check=True):
        path = self.write("policy-%d.json" % time.monotonic_ns(), json.dumps(doc))
        return self.coffer("--json", "policy", "update", path, identity=identity, check=check)

    def run(self, program, policy, service, host_env=None, timeout=60):
        env = self.env()
        env.update(host_env or {})
        return subprocess.run([COFFER_RUN, "--policy", policy, "--service", service, program],
                              capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)

    def probe(self, mode, policy, service, measurement):
        p = subprocess.run([PROBE, mode, self.cas.address, self.cas.key_id, policy, service,
                            measurement], capture_output=True, text=True, timeout=30,
                           env=self.env(), stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def https(self, identity=None, tls_version=ssl.TLSVersion.TLSv1_3):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = tls_version
        ctx.maximum_version = tls_version
        if identity:
            d = os.path.join(self.tmp, "id-" + identity)
            ctx.load_cert_chain(os.path.join(d, "identity.crt"), os.path.join(d, "identity.key"))
        return http.client.HTTPSConnection("127.0.0.1", self.cas.port, context=ctx, timeout=10)

    def get(self, path, identity=None):
        c = self.https(identity)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()


@pytest.fixture
def world(tmp_path):
    w = Env(tmp_path)
    try:
        yield w
    finally:
        w.cas.stop()


def sim_policy(name, key_id, program, service="app", command=None, env=None, files=None,
               secrets=None, tolerate=True, extra_service=None):
    svc = {
        "name": service,
        "command": command or [program],
        "attestation": [{"platform": "sim", "measurement": [measure(program)]}],
    }
    if tolerate:
        svc["tolerate"] = ["simulation"]
    if env:
        svc["environment"] = env
    if files:
        svc["files"] = files
    if extra_service:
        svc.update(extra_service)
    doc = {"name": name, "predecessor": None,
           "access": {"read": [key_id], "update": [key_id]}, "services": [svc]}
    if secrets:
        doc["secrets"] = secrets
    return doc
