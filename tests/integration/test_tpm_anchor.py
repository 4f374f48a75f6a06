"""The tpm freshness anchor against swtpm: cofferd binds its store to a TPM 2.0 NV counter
(--anchor tpm:swtpm:...), refuses a restored older copy of its data directory, and survives a
crash right after a commit. Skipped when swtpm is not installed."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import Cofferd, Env, sim_policy

SWTPM = shutil.which("swtpm")
pytestmark = pytest.mark.skipif(
    SWTPM is None, reason="swtpm is not installed (Debian: apt-get install swtpm swtpm-tools); "
    "the TPM anchor is not tested")


def _free_port_pair():
    """Two consecutive free ports on 127.0.0.1 (swtpm's server and control channels)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


class Swtpm:
    """One swtpm process with its state in a directory; stopped by PID."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        self.proc = None
        self.port = None

    def start(self):
        self.port = _free_port_pair()
        self.proc = subprocess.Popen(
            [SWTPM, "socket", "--tpmstate", "dir=" + self.state_dir, "--tpm2",
             "--server", "type=tcp,bindaddr=127.0.0.1,port=%d" % self.port,
             "--ctrl", "type=tcp,bindaddr=127.0.0.1,port=%d" % (self.port + 1),
             "--flags", "not-need-init,startup-clear"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("swtpm exited: " + self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("swtpm did not listen on port %d" % self.port)

    @property
    def anchor(self):
        return "tpm:swtpm:host=127.0.0.1,port=%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()


class TpmEnv(Env):
    """Env whose cofferd anchors in a fresh swtpm (the first start defines the NV index)."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.sim_dir = os.path.join(self.tmp, "sim")
        self.tpm = Swtpm(os.path.join(self.tmp, "tpmstate")).start()
        self.cas = Cofferd(os.path.join(self.tmp, "data"), self.sim_dir)
        self.cas.extra_args = ["--anchor", self.tpm.anchor]
        try:
            self.cas.start()
        except BaseException:
            self.tpm.stop()                # the fixture's finally does not run
            raise


@pytest.fixture
def tworld(tmp_path):
    w = TpmEnv(tmp_path)
    try:
        yield w
    finally:
        w.cas.stop()
        w.tpm.stop()


def _record_path(w):
    return os.path.join(w.cas.data_dir, "anchor.tpm")


def test_first_start_defines_the_counter_and_restarts(tworld):
    w = tworld
    assert os.path.exists(_record_path(w))
    assert "NV counter" in w.cas.logs()
    me = w.key_id()
    w.create(sim_policy("tpm/one", me, "/usr/bin/env"))
    w.create(sim_policy("tpm/two", me, "/usr/bin/env"))
    w.cas.restart()
    assert w.get("/v1/health")[0] == 200
    out = json.loads(w.coffer("--json", "policy", "show", "tpm/two").stdout)
    assert out["version"] == 1
    assert "rollback" not in w.cas.logs()


def test_restoring_an_old_copy_is_refused(tworld):
    w = tworld
    me = w.key_id()
    doc = sim_policy("tpm/app", me, "/usr/bin/env")
    first = json.loads(w.create(doc).stdout)
    w.cas.stop()
    backup = os.path.join(w.tmp, "backup")
    shutil.copytree(w.cas.data_dir, backup)
    w.cas.start()
    doc["predecessor"] = first["digest"]
    w.update(doc)                          # the attacker wants this update undone
    w.cas.stop()
    shutil.rmtree(w.cas.data_dir)
    shutil.copytree(backup, w.cas.data_dir)
    w.cas.start(expect_failure=True)
    assert w.cas.proc.returncode != 0
    logs = w.cas.logs()
    assert "rollback detected" in logs and "TPM NV counter is at" in logs, logs


def test_restoring_only_an_old_store_is_refused(tworld):
    w = tworld
    me = w.key_id()
    doc = sim_policy("tpm/store", me, "/usr/bin/env")
    first = json.loads(w.create(doc).stdout)
    w.cas.stop()
    backup = os.path.join(w.tmp, "backup-store")
    os.makedirs(backup)
    for f in os.listdir(w.cas.data_dir):
        if f.startswith("store.db"):
            shutil.copy2(os.path.join(w.cas.data_dir, f), backup)
    w.cas.start()
    doc["predecessor"] = first["digest"]
    w.update(doc)
    w.cas.stop()
    for f in os.listdir(w.cas.data_dir):
        if f.startswith("store.db"):
            os.remove(os.path.join(w.cas.data_dir, f))
    for f in os.listdir(backup):
        shutil.copy2(os.path.join(backup, f), w.cas.data_dir)
    w.cas.start(expect_failure=True)
    assert w.cas.proc.returncode != 0
    logs = w.cas.logs()
    assert "rollback detected: the store is at state version" in logs, logs


def test_crash_right_after_a_commit_still_starts(tworld):
    w = tworld
    me = w.key_id()
    for i in range(3):
        w.create(sim_policy("tpm/crash%d" % i, me, "/usr/bin/env"))
        os.kill(w.cas.proc.pid, signal.SIGKILL)   # within the batching window, maybe
        w.cas.proc.wait(timeout=10)
        w.cas.stop()
        w.cas.start()
        out = json.loads(w.coffer("--json", "policy", "show", "tpm/crash%d" % i).stdout)
        assert out["version"] == 1


def test_tpm_lost_during_a_write_catches_up_at_start(tworld):
    """A TPM that goes away does not undo commits: the anchor lags behind the store (which
    is accepted, like a crash within the window) and the next start advances it. The
    interrupted write-ahead case (a record one ahead of the counter) is unit-tested in
    tests/unit/cas/test_anchor_tpm.c."""
    w = tworld
    me = w.key_id()
    w.create(sim_policy("tpm/lost0", me, "/usr/bin/env"))
    w.cas.restart()                        # a clean stop: record and counter agree
    w.tpm.stop()
    w.create(sim_policy("tpm/lost1", me, "/usr/bin/env"))   # committed; the anchor fails
    time.sleep(0.5)
    w.cas.stop()
    assert "cannot record version" in w.cas.logs()
    w.tpm.start()                          # same TPM state, new port
    w.cas.extra_args = ["--anchor", w.tpm.anchor]
    w.cas.start()
    assert "advancing the anchor" in w.cas.logs()
    out = json.loads(w.coffer("--json", "policy", "show", "tpm/lost1").stdout)
    assert out["version"] == 1
    w.cas.restart()
    assert w.get("/v1/health")[0] == 200


def test_existing_store_needs_anchor_reset(world, tmp_path):
    """Switching a cofferd with a non-empty store from the file anchor to the TPM needs an
    explicit --anchor-reset: without it, a data directory without a TPM record (a restored
    copy whose record was removed) is refused."""
    me = world.key_id()
    world.create(sim_policy("tpm/migrate", me, "/usr/bin/env"))
    world.cas.stop()
    tpm = Swtpm(os.path.join(str(tmp_path), "tpmstate-migrate")).start()
    try:
        world.cas.extra_args = ["--anchor", tpm.anchor]
        world.cas.start(expect_failure=True)
        assert world.cas.proc.returncode != 0
        assert "--anchor-reset" in world.cas.logs()
        world.cas.extra_args = ["--anchor", tpm.anchor, "--anchor-reset"]
        world.cas.start()
        world.cas.extra_args = ["--anchor", tpm.anchor]
        world.cas.restart()
        out = json.loads(world.coffer("--json", "policy", "show", "tpm/migrate").stdout)
        assert out["version"] == 1
    finally:
        world.cas.stop()
        tpm.stop()


def test_removed_record_is_refused(tworld):
    w = tworld
    me = w.key_id()
    w.create(sim_policy("tpm/rec", me, "/usr/bin/env"))
    w.cas.stop()
    os.remove(_record_path(w))
    w.cas.start(expect_failure=True)
    assert w.cas.proc.returncode != 0
    assert "has no anchor record" in w.cas.logs()
    # --anchor-reset is the operator's word that this data directory is the newest
    w.cas.extra_args = ["--anchor", w.tpm.anchor, "--anchor-reset"]
    w.cas.start()
    w.cas.extra_args = ["--anchor", w.tpm.anchor]
    w.cas.restart()


def test_tampered_record_is_refused(tworld):
    w = tworld
    w.cas.stop()
    path = _record_path(w)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 1
    with open(path, "wb") as f:
        f.write(bytes(data))
    w.cas.start(expect_failure=True)
    assert w.cas.proc.returncode != 0
    assert "tampered" in w.cas.logs()


def test_data_dir_on_another_tpm_is_refused(tworld, tmp_path):
    w = tworld
    me = w.key_id()
    w.create(sim_policy("tpm/other", me, "/usr/bin/env"))
    w.cas.stop()
    other = Swtpm(os.path.join(str(tmp_path), "tpmstate2")).start()
    try:
        w.cas.extra_args = ["--anchor", other.anchor]
        w.cas.start(expect_failure=True)
        assert w.cas.proc.returncode != 0
        assert "never been written" in w.cas.logs()
    finally:
        w.cas.stop()
        other.stop()


def test_missing_tpm_fails_closed(tworld):
    w = tworld
    w.cas.stop()
    w.tpm.stop()
    w.cas.start(expect_failure=True)
    assert w.cas.proc.returncode != 0
    assert "TPM" in w.cas.logs()
