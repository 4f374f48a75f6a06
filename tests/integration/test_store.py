"""The store is untrusted: edits and swaps in the database file are detected, never served;
everything survives a restart."""
import json
import os
import sqlite3

from conftest import sim_policy


def _rows(db, table):
    con = sqlite3.connect(db)
    try:
        return con.execute("select key, version, value from kv where tbl = ? order by key, version",
                           (table,)).fetchall()
    finally:
        con.close()


def _set_value(db, table, key, version, value):
    con = sqlite3.connect(db)
    try:
        con.execute("update kv set value = ? where tbl = ? and key = ? and version = ?",
                    (value, table, key, version))
        con.commit()
    finally:
        con.close()


def test_restart_keeps_policies_and_secrets(world):
    me = world.key_id()
    doc = sim_policy("keep/app", me, "/usr/bin/env", command=["env"],
                     env={"PW": "$$coffer:pw$$"},
                     secrets=[{"name": "pw", "kind": "ascii", "size": 16}])
    world.create(doc)
    before = world.run("/usr/bin/env", "keep/app", "app").stdout
    world.cas.restart()
    after = world.run("/usr/bin/env", "keep/app", "app")
    assert after.returncode == 0 and after.stdout == before
    assert json.loads(world.coffer("--json", "policy", "show", "keep/app").stdout)["version"] == 1


def test_edited_policy_value_is_detected(world):
    me = world.key_id()
    world.create(sim_policy("tamper/edit", me, "/usr/bin/env"))
    world.cas.stop()
    db = os.path.join(world.cas.data_dir, "store.db")
    key, version, value = _rows(db, "policy")[0]
    edited = bytearray(value)
    edited[len(edited) // 2] ^= 1
    _set_value(db, "policy", key, version, bytes(edited))
    world.cas.start()
    p = world.coffer("policy", "show", "tamper/edit", check=False)
    assert p.returncode == 1
    assert "TAMPERING DETECTED" in world.cas.logs()
    p = world.run("/usr/bin/env", "tamper/edit", "app")
    assert p.returncode != 0 and p.stdout == b""
    # cofferd keeps serving everything else
    assert world.get("/v1/health")[0] == 200


def test_swapped_secret_rows_are_detected(world):
    me = world.key_id()
    doc = sim_policy("tamper/swap", me, "/usr/bin/env", command=["env"],
                     env={"A": "$$coffer:a$$", "B": "$$coffer:b$$"},
                     secrets=[{"name": "a", "kind": "ascii", "size": 16},
                              {"name": "b", "kind": "ascii", "size": 16}])
    world.create(doc)
    assert world.run("/usr/bin/env", "tamper/swap", "app").returncode == 0
    world.cas.stop()
    db = os.path.join(world.cas.data_dir, "store.db")
    (ka, va, a), (kb, vb, b) = _rows(db, "secret")
    _set_value(db, "secret", ka, va, b)
    _set_value(db, "secret", kb, vb, a)
    world.cas.start()
    p = world.run("/usr/bin/env", "tamper/swap", "app")
    assert p.returncode != 0 and p.stdout == b""
    assert "TAMPERING DETECTED" in world.cas.logs()
    status, body = world.get("/v1/metrics")
    assert b"cofferd_store_tamper_detected_total 0\n" not in body


def test_wrong_sealing_key_refuses_to_start(world):
    world.key_id()
    world.cas.stop()
    with open(os.path.join(world.cas.data_dir, "sealing.key"), "wb") as f:
        f.write(os.urandom(32))
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    assert "data key" in world.cas.logs()
