"""Attest-and-provision end to end with unmodified programs."""
import json
import os
import shutil

import pytest

from conftest import measure, sim_policy

PYTHON = os.path.realpath("/usr/bin/python3")


def test_env_sees_policy_argv_and_env_only(world):
    me = world.key_id()
    doc = sim_policy("app/env", me, "/usr/bin/env", command=["env"],
                     env={"GREETING": "hello", "PW": "$$coffer:pw$$"},
                     secrets=[{"name": "pw", "kind": "hex", "size": 16}],
                     extra_service={"passthrough_env": ["LANG"]})
    world.create(doc)
    p = world.run("/usr/bin/env", "app/env", "app",
                  host_env={"HOST_SECRET": "leak", "LANG": "C.UTF-8"})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert env["GREETING"] == "hello"
    assert len(env["PW"]) == 32 and all(c in "0123456789abcdef" for c in env["PW"])
    assert env["LANG"] == "C.UTF-8"
    assert "HOST_SECRET" not in env and "COFFER_CAS" not in env
    # a second activation gets the same generated secret
    p2 = world.run("/usr/bin/env", "app/env", "app")
    assert dict(l.split("=", 1) for l in p2.stdout.decode().splitlines())["PW"] == env["PW"]


def test_python_sees_argv_env_and_injected_file(world):
    me = world.key_id()
    script = ("import os, sys; print(sys.argv[1:]); print(os.environ['TOKEN']);"
              "print(open('/etc/coffer-test/app.ini').read(), end='');"
              "print(oct(os.stat('/etc/coffer-test/app.ini').st_mode & 0o777))")
    doc = sim_policy("app/py", me, PYTHON, command=["python3", "-c", script, "one", "two"],
                     env={"TOKEN": "$$coffer:token$$"},
                     files=[{"path": "/etc/coffer-test/app.ini", "mode": "0440",
                             "content": "token = $$coffer:token$$\n"}],
                     secrets=[{"name": "token", "kind": "ascii", "size": 20}])
    world.create(doc)
    p = world.run(PYTHON, "app/py", "app")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode().splitlines()
    assert out[0] == "['one', 'two']"
    token = out[1]
    assert len(token) == 20 and out[2] == "token = " + token and out[3] == "0o440"
    # the file exists only inside the program's mount namespace, never on the host disk
    assert not os.path.exists("/etc/coffer-test")


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 is not installed")
def test_sqlite3_runs_an_injected_script(world):
    me = world.key_id()
    sqlite = os.path.realpath(shutil.which("sqlite3"))
    doc = sim_policy("app/sql", me, sqlite,
                     command=["sqlite3", ":memory:", ".read /etc/coffer-sql/init.sql"],
                     files=[{"path": "/etc/coffer-sql/init.sql", "mode": "0400",
                             "content": "create table t(k);\ninsert into t values"
                                        "('$$coffer:k$$');\nselect length(k) from t;\n"}],
                     secrets=[{"name": "k", "kind": "base64", "size": 30}])
    world.create(doc)
    p = world.run(sqlite, "app/sql", "app")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip() == "40"


def test_exit_status_is_preserved(world):
    me = world.key_id()
    doc = sim_policy("app/exit", me, "/bin/sh", command=["sh", "-c", "exit 7"])
    world.create(doc)
    assert world.run("/bin/sh", "app/exit", "app").returncode == 7


def test_wrong_measurement_is_refused(world):
    me = world.key_id()
    doc = sim_policy("app/wrong", me, "/usr/bin/env")
    world.create(doc)
    p = world.run("/bin/cat", "app/wrong", "app")
    err = p.stderr.decode()
    assert p.returncode == 126
    assert "rule[0].measurement" in err and measure("/bin/cat") in err
    assert p.stdout == b""


def test_policy_without_tolerate_simulation_is_refused(world):
    me = world.key_id()
    doc = sim_policy("app/notol", me, "/usr/bin/env", tolerate=False)
    world.create(doc)
    p = world.run("/usr/bin/env", "app/notol", "app")
    assert p.returncode == 126 and "tolerate.simulation" in p.stderr.decode()


def test_unknown_service_is_refused(world):
    me = world.key_id()
    world.create(sim_policy("app/svc", me, "/usr/bin/env"))
    p = world.run("/usr/bin/env", "app/svc", "nope")
    assert p.returncode == 126 and "policy.service" in p.stderr.decode()


def test_evidence_relayed_from_another_connection_is_refused(world):
    me = world.key_id()
    world.create(sim_policy("app/relay", me, "/usr/bin/env"))
    m = measure("/usr/bin/env")
    ok = world.probe("normal", "app/relay", "app", m)
    assert ok["statuses"] == [200]
    relayed = world.probe("relay", "app/relay", "app", m)
    assert relayed["statuses"] == [403]
    checks = json.loads(relayed["bodies"][0])["error"]["details"]["checks"]
    assert [c["name"] for c in checks] == ["binding.report_data"]


def test_replayed_evidence_is_refused(world):
    me = world.key_id()
    world.create(sim_policy("app/replay", me, "/usr/bin/env"))
    r = world.probe("replay", "app/replay", "app", measure("/usr/bin/env"))
    assert r["statuses"] == [200, 403]
    assert "binding.report_data" in r["bodies"][1]


def test_wrong_cas_key_is_refused_before_attesting(world):
    me = world.key_id()
    world.create(sim_policy("app/pin", me, "/usr/bin/env"))
    env = world.env(COFFER_CAS_KEY="ab" * 32)
    import subprocess
    from conftest import COFFER_RUN
    p = subprocess.run([COFFER_RUN, "--policy", "app/pin", "--service", "app", "/usr/bin/env"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 125 and "key id" in p.stderr


def test_evidence_from_an_untrusted_sim_platform_is_refused(world, tmp_path):
    """Anyone can make a sim platform key; only this machine's (and --trust-sim-key) count."""
    me = world.key_id()
    world.create(sim_policy("app/untrusted", me, "/usr/bin/env", command=["env"]))
    import subprocess
    from conftest import COFFER_RUN
    other = str(tmp_path / "other-sim")
    env = world.env(COFFER_SIM_DIR=other)
    p = subprocess.run([COFFER_RUN, "--policy", "app/untrusted", "--service", "app",
                        "/usr/bin/env"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 126 and "sim.platform_key" in p.stderr
    # trusting that key explicitly lets its evidence through
    from conftest import COFFER
    key = subprocess.run([COFFER, "--json", "sim-key"], capture_output=True, text=True,
                         env=env, timeout=30)
    assert key.returncode == 0, key.stderr
    world.cas.stop()
    world.cas.extra_args = ["--trust-sim-key", json.loads(key.stdout)["platform_key"]]
    world.cas.start()
    env = world.env(COFFER_SIM_DIR=other)
    p = subprocess.run([COFFER_RUN, "--policy", "app/untrusted", "--service", "app",
                        "/usr/bin/env"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr


def test_coffer_run_attests_cofferd_instead_of_a_pinned_key(world):
    import hashlib
    import subprocess
    from conftest import COFFER_RUN, COFFERD
    me = world.key_id()
    world.create(sim_policy("app/casatt", me, "/usr/bin/env", command=["env"],
                            env={"X": "y"}))
    m = hashlib.sha256(open(COFFERD, "rb").read()).hexdigest()
    exp = world.write("exp.yaml", "name: expect/cofferd\npredecessor: null\nservices:\n"
                      "  - name: cofferd\n    command: [cofferd]\n    attestation:\n"
                      "      - {platform: sim, measurement: [\"%s\"]}\n"
                      "    tolerate: [simulation]\n" % m)
    env = world.env()
    del env["COFFER_CAS_KEY"]
    p = subprocess.run([COFFER_RUN, "--cas-policy", exp, "--policy", "app/casatt", "--service",
                        "app", "/usr/bin/env"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert "X=y" in p.stdout
    bad = world.write("bad.yaml", open(exp).read().replace(m, "11" * 32))
    p = subprocess.run([COFFER_RUN, "--cas-policy", bad, "--policy", "app/casatt", "--service",
                        "app", "/usr/bin/env"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert p.returncode == 125 and "rule[0].measurement" in p.stderr and p.stdout == ""
