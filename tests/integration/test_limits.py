"""cofferd under hostile clients, with real sockets on 127.0.0.1: the per-request deadline
(--header-timeout) against trickling clients, the per-worker connection cap
(--max-connections), and the aggregation of refused activations in the audit chain
(--refusal-window). Every loop is bounded; every process is stopped by PID (conftest)."""
import http.client
import json
import os
import re
import socket
import ssl
import time

from conftest import sim_policy


def _restart(world, *args):
    world.cas.extra_args = list(args)
    world.cas.restart()


def _ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _tls(world, timeout=10):
    raw = socket.create_connection(("127.0.0.1", world.cas.port), timeout=timeout)
    return _ctx().wrap_socket(raw)


def _closed_within(sock, seconds, trickle=None):
    """Seconds until the peer closed sock (None if still open after `seconds`). With
    trickle, sends one byte of it every 0.5 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.5)
    i = 0
    while time.monotonic() - start < seconds:
        if trickle is not None and i < len(trickle):
            try:
                sock.sendall(trickle[i:i + 1])
            except (OSError, ssl.SSLError):
                return time.monotonic() - start
            i += 1
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError):
            return time.monotonic() - start
    return None


def _metric(world, name):
    status, body = world.get("/v1/metrics")
    assert status == 200
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    assert m, name
    return int(m.group(1))


def test_trickling_headers_are_cut_at_the_deadline(world):
    _restart(world, "--threads", "1", "--header-timeout", "2")
    s = _tls(world)
    try:
        # one byte every 0.5 s: evhttp's own 10 s timeout would never fire
        took = _closed_within(s, 12, trickle=b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " +
                              b"a" * 100)
    finally:
        s.close()
    assert took is not None and took < 5, took
    assert _metric(world, 'cofferd_connections_dropped_total{reason="deadline"}') >= 1


def test_a_stalled_tls_handshake_is_cut_at_the_deadline(world):
    _restart(world, "--threads", "1", "--header-timeout", "2")
    raw = socket.create_connection(("127.0.0.1", world.cas.port), timeout=10)
    try:
        raw.sendall(b"\x16\x03\x01")             # the start of a ClientHello, then nothing
        took = _closed_within(raw, 12)
    finally:
        raw.close()
    assert took is not None and took < 5, took


def test_keep_alive_connections_outlive_the_deadline(world):
    """The deadline is per request: a persistent connection sending complete requests
    (coffer-run's volume agent) stays open well past it."""
    _restart(world, "--threads", "1", "--header-timeout", "1")
    c = http.client.HTTPSConnection("127.0.0.1", world.cas.port, context=_ctx(), timeout=10)
    try:
        c.connect()
        sock = c.sock
        for _ in range(5):                       # 5 x 0.8 s = 4 s, four times the deadline
            c.request("GET", "/v1/health")
            r = c.getresponse()
            assert r.status == 200
            r.read()
            assert c.sock is sock                # the same connection all along
            time.sleep(0.8)
    finally:
        c.close()


def test_connection_cap_keeps_serving_good_clients(world):
    _restart(world, "--threads", "1", "--max-connections", "8", "--header-timeout", "60")
    hogs = []
    try:
        for _ in range(40):                      # five times the cap, all idle
            hogs.append(socket.create_connection(("127.0.0.1", world.cas.port), timeout=10))
        time.sleep(0.3)
        start = time.monotonic()
        for _ in range(3):
            status, _ = world.get("/v1/health")
            assert status == 200
        assert time.monotonic() - start < 5
        # the oldest hogs were closed to make room (the newest may still be open)
        closed = sum(1 for h in hogs[:30] if _closed_within(h, 0.1) is not None)
        assert closed >= 20, closed
        assert _metric(world, 'cofferd_connections_dropped_total{reason="cap"}') >= 30
    finally:
        for h in hogs:
            h.close()


def test_connection_cap_under_churn(world):
    """Hogs keep connecting while a good client retries: it is served in bounded time."""
    _restart(world, "--threads", "1", "--max-connections", "4", "--header-timeout", "60")
    hogs = []
    served = 0
    try:
        deadline = time.monotonic() + 15
        while served < 3 and time.monotonic() < deadline:
            for _ in range(10):
                hogs.append(socket.create_connection(("127.0.0.1", world.cas.port), timeout=5))
            try:
                status, _ = world.get("/v1/health")
                served += status == 200
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
        assert served == 3
    finally:
        for h in hogs:
            h.close()


def _refuse(c, body):
    c.request("POST", "/v1/activate", body=json.dumps(body).encode(),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    return r.status


def _entries(world, tmp_path, name):
    path = str(tmp_path / name)
    world.coffer("audit", "fetch", "--out", path)
    with open(path) as f:
        doc = json.load(f)
    status, body = world.get("/v1/audit/head")
    key = json.loads(body)["audit_key"]
    p = world.coffer("--json", "audit", "verify", path, "--audit-key", key, check=False)
    assert p.returncode == 0, p.stdout
    assert json.loads(p.stdout)["valid"]
    return doc["entries"]


def test_refused_activations_are_aggregated(world, tmp_path):
    _restart(world, "--refusal-window", "3600")
    me = world.key_id()
    world.create(sim_policy("lim/app", me, "/usr/bin/env"))
    bad = {"policy": "lim/app", "service": "app",
           "evidence": {"type": "sim", "data": "QUFB"}}
    c = world.https()
    try:
        for _ in range(200):                     # the same refusal, in a burst
            assert _refuse(c, bad) == 403
        for i in range(100):                     # distinct refusals: more than one window keeps
            assert _refuse(c, dict(bad, policy="lim/none-%d" % i)) == 403
    finally:
        c.close()
    assert _metric(world, 'cofferd_activations_total{result="refused"}') == 300
    world.cas.stop()                             # pending buckets are written at shutdown
    world.cas.start()
    entries = _entries(world, tmp_path, "chain.json")
    refused = [e for e in entries if e["type"] == "activation.refused"]
    assert 1 <= len(refused) <= 65, len(refused)   # AUDIT_REFUSAL_KEYS_MAX + overflow
    assert sum(e["details"]["count"] for e in refused) == 300
    same = [e for e in refused if e["details"].get("policy") == "lim/app"]
    assert len(same) == 1 and same[0]["details"]["count"] == 200
    assert same[0]["details"]["first"] <= same[0]["details"]["last"]
    overflow = [e for e in refused if e["details"].get("overflow")]
    assert len(overflow) == 1 and overflow[0]["details"]["count"] == 100 - 63
    assert _metric(world, "cofferd_audit_failures_total") == 0


def test_refusal_window_flushes_without_shutdown(world, tmp_path):
    _restart(world, "--refusal-window", "1")
    me = world.key_id()
    world.create(sim_policy("lim/win", me, "/usr/bin/env"))
    bad = {"policy": "lim/win", "service": "app",
           "evidence": {"type": "sim", "data": "QUFB"}}
    c = world.https()
    try:
        for _ in range(50):
            assert _refuse(c, bad) == 403
    finally:
        c.close()
    deadline = time.monotonic() + 10
    while True:
        status, body = world.get("/v1/audit/head")
        if json.loads(body)["head"]["seq"] >= 2:
            break
        assert time.monotonic() < deadline, "the window was not flushed"
        time.sleep(0.2)
    entries = _entries(world, tmp_path, "win.json")
    refused = [e for e in entries if e["type"] == "activation.refused"]
    assert sum(e["details"]["count"] for e in refused) == 50
    assert len(refused) <= 3                     # one per window the burst spanned
    # granted activations are still one entry each, written at once
    assert world.run("/usr/bin/env", "lim/win", "app").returncode == 0
    entries = _entries(world, tmp_path, "win2.json")
    assert entries[-1]["type"] == "activation.granted"


def test_policy_change_fails_when_its_entry_cannot_be_written(world, tmp_path):
    """A state change and its audit entry commit together: with the chain's next row taken
    (as if another writer appended behind cofferd's back), the change is refused and nothing
    is stored; the failure is counted."""
    import sqlite3
    me = world.key_id()
    world.create(sim_policy("lim/one", me, "/usr/bin/env"))
    status, body = world.get("/v1/audit/head")
    seq = json.loads(body)["head"]["seq"]
    db = os.path.join(world.cas.data_dir, "store.db")
    con = sqlite3.connect(db, timeout=10)
    try:
        row = con.execute("select * from kv where tbl = 'audit' and key = ?",
                          ("%020d" % seq,)).fetchone()
        cols = [d[0] for d in con.execute("select * from kv limit 0").description]
        values = list(row)
        values[cols.index("key")] = "%020d" % (seq + 1)
        con.execute("insert into kv (%s) values (%s)" % (", ".join(cols),
                                                         ", ".join("?" * len(cols))), values)
        con.commit()
    finally:
        con.close()
    p = world.create(sim_policy("lim/two", me, "/usr/bin/env"), check=False)
    assert p.returncode != 0
    status, _ = world.get("/v1/policies/lim%2Ftwo", identity="alice")
    assert status == 404, status
    assert _metric(world, "cofferd_audit_failures_total") >= 1
