"""coffer-run's hardware evidence providers against fake configfs-tsm and /dev/attestation
trees (tests/integration/fake_tee.py) and a real cofferd. The fake's evidence is not a real
quote, so cofferd refuses it (exit 126 with failed checks: "evidence.type" while cofferd
accepts sim evidence only, a quote parse check once it verifies hardware evidence); these
tests check that the provider was driven correctly and the evidence reached cofferd."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import COFFER_RUN, sim_policy

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_tee.py")
PROGRAM = os.path.realpath("/bin/true")


class FakeTee:
    """The fake interface as a separate process, stopped by PID."""

    def __init__(self, tmp, kind, *extra):
        self.root = os.path.join(tmp, "fake-" + kind)
        self.log = os.path.join(tmp, "fake-%s.log" % kind)
        os.mkdir(self.root)
        self.proc = subprocess.Popen([sys.executable, FAKE, kind, self.root, self.log,
                                      "--timeout", "120", *extra],
                                     stdin=subprocess.DEVNULL)
        self.wait_for(lambda ev: ev["event"] == "ready")

    def events(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_for(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [ev for ev in self.events() if pred(ev)]
            if found:
                return found
            assert self.proc.poll() is None, "the fake TEE exited"
            time.sleep(0.01)
        raise AssertionError("the fake TEE did not report in time: %s" % self.events())

    def requests(self):
        return [ev for ev in self.events() if ev["event"] == "request"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def tsm(world):
    fake = FakeTee(world.tmp, "tsm")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def libos(world):
    fake = FakeTee(world.tmp, "libos")
    try:
        yield fake
    finally:
        fake.stop()


def run(world, *args, env=None):
    e = world.env()
    e.update(env or {})
    return subprocess.run([COFFER_RUN, "--policy", "app/hw", "--service", "app", *args, PROGRAM],
                          capture_output=True, timeout=60, env=e, stdin=subprocess.DEVNULL)


def make_policy(world):
    world.create(sim_policy("app/hw", world.key_id(), PROGRAM))


def test_tdx_evidence_from_configfs_tsm_reaches_cofferd(world, tsm):
    make_policy(world)
    p = run(world, "--tee", "tdx", "--tsm-root", tsm.root)
    err = p.stderr.decode()
    assert p.returncode == 126, err
    # cofferd received the evidence and refused it with its checks
    assert "failed check " in err, err
    assert "sim mode" not in err
    reqs = tsm.requests()
    assert len(reqs) == 1
    assert len(bytes.fromhex(reqs[0]["report_data"])) == 64
    # the report entry was removed
    tsm.wait_for(lambda ev: ev["event"] == "removed" and ev["entry"] == reqs[0]["entry"])
    assert os.listdir(tsm.root) == []


def test_report_data_binds_each_connection(world, tsm):
    make_policy(world)
    for _ in range(2):
        p = run(world, env={"COFFER_TEE": "tdx", "COFFER_TSM_ROOT": tsm.root})
        assert p.returncode == 126, p.stderr.decode()
    reqs = tsm.requests()
    assert len(reqs) == 2
    # SHA-512 over a fresh TLS exporter: never the same twice
    assert reqs[0]["report_data"] != reqs[1]["report_data"]
    assert os.listdir(tsm.root) == []


def test_auto_picks_configfs_tsm(world, tsm):
    make_policy(world)
    p = run(world, "--tee", "auto", "--tsm-root", tsm.root,
            "--attestation-root", os.path.join(world.tmp, "absent"))
    assert p.returncode == 126, p.stderr.decode()
    assert "sim mode" not in p.stderr.decode()
    assert len(tsm.requests()) == 1


def test_wrong_platform_is_a_setup_error(world, tsm):
    make_policy(world)
    p = run(world, "--tee", "snp", "--tsm-root", tsm.root)
    err = p.stderr.decode()
    assert p.returncode == 125, err
    assert "snp evidence was asked for" in err and "provides tdx evidence" in err, err
    assert os.listdir(tsm.root) == []


def test_sgx_evidence_from_libos(world, libos):
    make_policy(world)
    p = run(world, "--tee", "sgx", "--attestation-root", libos.root)
    err = p.stderr.decode()
    assert p.returncode == 126, err
    assert "failed check " in err, err
    reqs = libos.requests()
    assert len(reqs) == 1 and len(bytes.fromhex(reqs[0]["report_data"])) == 64


def test_missing_interfaces_and_bad_tee(world):
    make_policy(world)
    absent = os.path.join(world.tmp, "no-tsm")
    p = run(world, "--tee", "tdx", "--tsm-root", absent)
    assert p.returncode == 125
    assert ("configfs-tsm not found at " + absent) in p.stderr.decode()
    p = run(world, "--tee", "sgx", "--attestation-root", absent)
    assert p.returncode == 125
    assert "attestation interface not found at" in p.stderr.decode()
    p = run(world, "--tee", "tpm")
    assert p.returncode == 125
    assert "unknown TEE 'tpm'" in p.stderr.decode()
