"""cofferd refuses to start on an older copy of its own state (rollback), and survives a crash
between a commit and the batched anchor update."""
import json
import os
import shutil
import signal

from conftest import sim_policy


def _anchor(world):
    files = [f for f in os.listdir(world.sim_dir) if f.startswith("anchor-")]
    assert len(files) == 1
    with open(os.path.join(world.sim_dir, files[0])) as f:
        return json.load(f)


def test_restoring_an_old_copy_is_refused(world):
    me = world.key_id()
    doc = sim_policy("fresh/app", me, "/usr/bin/env")
    first = json.loads(world.create(doc).stdout)
    world.cas.stop()
    backup = os.path.join(world.tmp, "backup")
    shutil.copytree(world.cas.data_dir, backup)
    world.cas.start()
    doc["predecessor"] = first["digest"]
    world.update(doc)                      # the attacker wants this update undone
    world.cas.stop()
    newest = _anchor(world)["version"]
    shutil.rmtree(world.cas.data_dir)
    shutil.copytree(backup, world.cas.data_dir)
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    logs = world.cas.logs()
    assert "rollback detected" in logs and ("records version %d" % newest) in logs
    # an operator who accepts the risk can start without an anchor, and is warned
    world.cas.extra_args = ["--anchor", "none"]
    world.cas.start()
    assert "NOT detected" in world.cas.logs()


def test_anchor_follows_the_store(world):
    me = world.key_id()
    world.create(sim_policy("fresh/one", me, "/usr/bin/env"))
    world.create(sim_policy("fresh/two", me, "/usr/bin/env"))
    world.cas.stop()                       # a clean stop writes the last version
    v = _anchor(world)["version"]
    assert v >= 2
    world.cas.start()
    assert world.get("/v1/health")[0] == 200


def test_crash_right_after_a_commit_still_starts(world):
    me = world.key_id()
    world.create(sim_policy("fresh/crash", me, "/usr/bin/env"))
    os.kill(world.cas.proc.pid, signal.SIGKILL)   # within the batching window, maybe
    world.cas.proc.wait(timeout=10)
    world.cas.start()
    out = json.loads(world.coffer("--json", "policy", "show", "fresh/crash").stdout)
    assert out["version"] == 1


def test_anchor_of_another_cofferd_is_refused(world):
    world.cas.stop()
    files = [f for f in os.listdir(world.sim_dir) if f.startswith("anchor-")]
    path = os.path.join(world.sim_dir, files[0])
    with open(path, "w") as f:
        json.dump({"cofferd": "ab" * 32, "version": 1}, f)
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    assert "another cofferd" in world.cas.logs()


def test_a_deleted_anchor_is_refused(world):
    me = world.key_id()
    world.create(sim_policy("fresh/del", me, "/usr/bin/env"))
    world.cas.stop()
    for f in os.listdir(world.sim_dir):
        if f.startswith("anchor-"):
            os.unlink(os.path.join(world.sim_dir, f))
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0 and "anchor-reset" in world.cas.logs()
    world.cas.extra_args = ["--anchor-reset"]
    world.cas.start()
    assert world.get("/v1/health")[0] == 200
