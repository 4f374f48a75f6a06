"""coffer volume ls|cat|verify read a real shielded volume offline with its key, and verify
lists the corruption it finds."""
import base64
import json
import os
import subprocess

from conftest import BUILD, COFFER

TOOL = os.path.join(BUILD, "tests", "integration", "volume-tool")


def _volume(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    vol = tmp_path / "vol"
    p = subprocess.run([TOOL, str(vol), str(key), "a.txt", "b.txt"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return vol, key


def coffer(*args):
    return subprocess.run([COFFER, *args], capture_output=True, timeout=60)


def test_ls_cat_verify(tmp_path):
    vol, key = _volume(tmp_path)
    p = coffer("--json", "volume", "ls", str(vol), "--key-file", str(key))
    entries = json.loads(p.stdout)["entries"]
    assert sorted(e["path"] for e in entries) == ["a.txt", "b.txt"]
    assert all(e["size"] == 1000 * len("content of a.txt\n") for e in entries)
    p = coffer("volume", "cat", str(vol), "a.txt", "--key-file", str(key))
    assert p.returncode == 0 and p.stdout == b"content of a.txt\n" * 1000
    p = coffer("volume", "verify", str(vol), "--key-file", str(key))
    assert p.returncode == 0 and b"ok: 0 problems" in p.stdout
    # plaintext never reaches the backing files, names included
    for name in os.listdir(vol):
        data = open(os.path.join(vol, name), "rb").read()
        assert b"content of" not in data and b"a.txt" not in data


def test_verify_names_corrupt_chunks(tmp_path):
    vol, key = _volume(tmp_path)
    data_files = [f for f in os.listdir(vol) if f.endswith(".d")]
    assert data_files
    path = os.path.join(vol, data_files[0])
    with open(path, "r+b") as f:
        f.seek(5000)
        b = f.read(1)
        f.seek(5000)
        f.write(bytes([b[0] ^ 1]))
    p = coffer("--json", "volume", "verify", str(vol), "--key-file", str(key))
    assert p.returncode == 1
    problems = json.loads(p.stdout)["problems"]
    assert problems and problems[0]["where"] == "chunk" and problems[0]["index"] == 1
    p = coffer("volume", "cat", str(vol), "a.txt", "--key-file", str(key))
    q = coffer("volume", "cat", str(vol), "b.txt", "--key-file", str(key))
    assert (p.returncode != 0) != (q.returncode != 0)   # exactly the damaged file fails


def test_wrong_key_is_refused(tmp_path):
    vol, key = _volume(tmp_path)
    other = tmp_path / "other"
    other.write_bytes(os.urandom(32))
    p = coffer("volume", "ls", str(vol), "--key-file", str(other))
    assert p.returncode == 1 and b"wrong key" in p.stderr
    p = coffer("volume", "ls", str(vol))
    assert p.returncode == 2



def test_key_file_forms(tmp_path):
    """A 32-byte file is a raw key even when its last byte is a newline; hex and base64 text
    may end with line breaks."""
    key = tmp_path / "key"
    key.write_bytes(os.urandom(31) + b"\n")
    vol = tmp_path / "vol"
    p = subprocess.run([TOOL, str(vol), str(key), "a.txt"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    raw = key.read_bytes()
    forms = {"raw": raw, "hex": raw.hex().encode() + b"\n",
             "b64": base64.b64encode(raw) + b"\r\n"}
    for name, data in forms.items():
        f = tmp_path / name
        f.write_bytes(data)
        p = coffer("volume", "ls", str(vol), "--key-file", str(f))
        assert p.returncode == 0, (name, p.stderr)


def _snapshot(vol):
    return {n: open(os.path.join(vol, n), "rb").read() for n in sorted(os.listdir(vol))}


def test_read_only_tools_replay_the_journal_in_memory(tmp_path):
    """After a machine crash the in-place writes of journal commits may be lost (only the
    journal was synced). The offline tools open read-only: they must still read the committed
    state (replaying the journal in memory) and write nothing."""
    vol, key = _volume(tmp_path)             # a.txt, b.txt: the first commit, into a slot
    before = _snapshot(vol)
    # A new file "c": the tool writes it in 1000 small writes; with a short name the
    # commit's payload still fits in one journal record.
    p = subprocess.run([TOOL, str(vol), str(key), "c"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    after = _snapshot(vol)
    assert after.get("journal", b"").strip(b"\0"), "the second commit is a journal record"
    assert after["manifest.0"] == before["manifest.0"] and "manifest.1" not in after
    # The crash: only the journal was synced. c's data file lost its content, and its tree
    # file its directory entry; the other backing files are as before.
    new = sorted(n for n in after if n not in before and n != "journal")
    assert len(new) == 2 and new[0].endswith(".d") and new[1].endswith(".t")
    with open(os.path.join(vol, new[0]), "wb"):
        pass
    os.unlink(os.path.join(vol, new[1]))
    crashed = _snapshot(vol)
    for name, want in (("a.txt", b"content of a.txt\n" * 1000),
                       ("b.txt", b"content of b.txt\n" * 1000),
                       ("c", b"content of c\n" * 1000)):
        p = coffer("volume", "cat", str(vol), name, "--key-file", str(key))
        assert p.returncode == 0, p.stderr
        assert p.stdout == want
    p = coffer("volume", "verify", str(vol), "--key-file", str(key))
    assert p.returncode == 0 and b"ok: 0 problems" in p.stdout, p.stdout + p.stderr
    p = coffer("--json", "volume", "ls", str(vol), "--key-file", str(key))
    assert sorted(e["path"] for e in json.loads(p.stdout)["entries"]) == \
        ["a.txt", "b.txt", "c"]
    assert _snapshot(vol) == crashed        # nothing was written
    # A read-write open (the tool) replays for real; the tools still agree.
    p = subprocess.run([TOOL, str(vol), str(key), "d.txt"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    p = coffer("volume", "verify", str(vol), "--key-file", str(key))
    assert p.returncode == 0 and b"ok: 0 problems" in p.stdout, p.stdout + p.stderr
    p = coffer("volume", "cat", str(vol), "c", "--key-file", str(key))
    assert p.returncode == 0 and p.stdout == b"content of c\n" * 1000


def test_read_only_media(tmp_path):
    """Incident work on a copy mounted read-only: ls, cat and verify open every backing file
    read-only and write nothing (a read-only bind mount in a private mount namespace)."""
    import pytest
    import shlex
    vol, key = _volume(tmp_path)
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("cannot make a private mount namespace here (unshare -m): %s"
                    % probe.stderr.decode().strip())
    mount = "mount --bind {v} {v} && mount -o remount,bind,ro {v}".format(v=shlex.quote(str(vol)))
    cmds = [
        "touch %s/x 2>/dev/null && echo WRITABLE" % shlex.quote(str(vol)),
        "%s --json volume ls %s --key-file %s" % (COFFER, vol, key),
        "%s volume cat %s a.txt --key-file %s" % (COFFER, vol, key),
        "%s volume verify %s --key-file %s" % (COFFER, vol, key),
    ]
    before = {n: open(os.path.join(vol, n), "rb").read() for n in os.listdir(vol)}
    p = subprocess.run(["unshare", "-m", "sh", "-c", mount + " && " + " && ".join(cmds[1:]) +
                        " && { " + cmds[0] + " || true; }"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "WRITABLE" not in out  # the mount really is read-only
    assert '"a.txt"' in out and "content of a.txt\n" * 1000 in out and "ok: 0 problems" in out
    assert {n: open(os.path.join(vol, n), "rb").read() for n in os.listdir(vol)} == before
