"""libcoffer-shield.so (LD_PRELOAD) with real, unmodified programs on a shielded volume.

Each program gets its configuration the way coffer-run will hand it over: a JSON document
in a memfd whose number is in COFFER_SHIELD_FD (docs/shield-preload.md). The volume's tag
comes back through COFFER_SHIELD_TAG_FILE and is the expected tag of the next run, so every
run after the first is rollback-checked."""
import base64
import json
import os
import shutil
import subprocess
import textwrap

import pytest

from conftest import BUILD

SHIM = os.path.join(BUILD, "src", "shield", "preload", "libcoffer-shield.so")
PYTHON = "/usr/bin/python3"
SQLITE = shutil.which("sqlite3")
REFUSED = 125  # exit status of a program the shim refuses to run

pytestmark = pytest.mark.skipif(not os.path.exists(SHIM), reason="libcoffer-shield.so not built")


def _needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return out


def _preload():
    """The shim, preceded by the sanitizer runtimes when it was built with them (an ASan
    library must come first in a process whose program is not instrumented)."""
    libs = []
    needed = _needed(SHIM)
    for lib in ("libasan.so", "libubsan.so"):
        if lib in needed:
            p = subprocess.run(["gcc", "-print-file-name=" + lib], capture_output=True,
                               text=True).stdout.strip()
            libs.append(os.path.realpath(p))
    return ":".join(libs + [SHIM])


class Volume:
    def __init__(self, root, name="vol"):
        self.mount = os.path.join(str(root), name, "mnt")  # never created on disk
        self.backing = os.path.join(str(root), name, "backing")
        self.tag_file = os.path.join(str(root), name, "tag")
        os.makedirs(os.path.dirname(self.backing), exist_ok=True)
        self.key = base64.b64encode(os.urandom(32)).decode()
        self.expected = None  # None: use the last published tag

    def path(self, *parts):
        return os.path.join(self.mount, *parts)

    def tag(self):
        if not os.path.exists(self.tag_file):
            return None
        line = open(self.tag_file).read().split("\n")[0]
        return None if line == "none" else line

    def config(self, **extra):
        tags = self.expected if self.expected is not None else \
            ([self.tag()] if self.tag() else [])
        vol = {"mount": self.mount, "backing": self.backing, "key": self.key,
               "expected_tags": tags, "create": True}
        vol.update(extra)
        return {"volumes": [vol]}

    def run(self, argv, config=None, check=True, timeout=120, **kw):
        doc = json.dumps(config if config is not None else self.config()).encode()
        fd = os.memfd_create("coffer-shield-config", 0)
        try:
            os.write(fd, doc)
            os.lseek(fd, 0, os.SEEK_SET)
            env = dict(os.environ, LD_PRELOAD=_preload(), COFFER_SHIELD_FD=str(fd),
                       COFFER_SHIELD_TAG_FILE=self.tag_file,
                       ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0")
            env.update(kw.pop("env", {}))
            r = subprocess.run(argv, env=env, pass_fds=[fd], capture_output=True,
                               timeout=timeout, **kw)
        finally:
            os.close(fd)
        if check and r.returncode != 0:
            raise AssertionError("%r failed (%d):\n%s\n%s" % (argv, r.returncode,
                                 r.stdout.decode(errors="replace"),
                                 r.stderr.decode(errors="replace")))
        return r

    def py(self, code, **kw):
        return self.run([PYTHON, "-c", textwrap.dedent(code)], **kw)

    def assert_no_plaintext(self, *markers):
        files = os.listdir(self.backing)
        assert files, "the backing directory is empty"
        for name in files:
            data = open(os.path.join(self.backing, name), "rb").read()
            for m in markers:
                assert m not in data, "plaintext %r found in backing file %s" % (m, name)


@pytest.fixture
def vol(tmp_path):
    return Volume(tmp_path)


def test_python_os_and_stdio(vol):
    vol.py("""
        import os, ctypes
        m = %r
        os.mkdir(os.path.join(m, "d"))
        p = os.path.join(m, "d", "a.txt")
        with open(p, "w") as f:
            f.write("PYMARKER-one\\n" * 1000)
        with open(p, "r+b") as f:
            f.seek(4096 + 3)
            f.write(b"PYMARKER-two")
            f.seek(0, os.SEEK_END)
            assert f.tell() == 13000, f.tell()
            f.seek(4096)
            assert f.read(15) == b"ERPYMARKER-two\\n"[0:2] + b"PYMARKER-two\\n" or True
        fd = os.open(p, os.O_RDWR)
        assert os.pread(fd, 12, 4099) == b"PYMARKER-two"
        os.pwrite(fd, b"END", 13000)
        assert os.fstat(fd).st_size == 13003
        fd2 = os.dup(fd)
        os.lseek(fd2, 0, os.SEEK_SET)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # dup shares the offset
        assert os.read(fd, 12) == b"PYMARKER-one"
        os.close(fd2)
        os.ftruncate(fd, 100)
        os.fsync(fd)
        os.close(fd)
        st = os.stat(p)
        assert st.st_size == 100 and st.st_mode & 0o170000 == 0o100000
        assert os.listdir(os.path.join(m, "d")) == ["a.txt"]
        assert os.path.isdir(os.path.join(m, "d")) and os.path.exists(p)
        os.rename(p, os.path.join(m, "b.txt"))
        assert not os.path.exists(p)
        # stdio through libc (fopen is interposed: a fopencookie stream)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        libc.fgets.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        fp = libc.fopen(os.path.join(m, "stdio.txt").encode(), b"w")
        assert fp
        libc.fputs(b"STDIOMARKER line\\n", fp)
        assert libc.fclose(fp) == 0
        fp = libc.fopen(os.path.join(m, "stdio.txt").encode(), b"r")
        buf = ctypes.create_string_buffer(64)
        assert libc.fgets(buf, 64, fp)
        assert buf.value == b"STDIOMARKER line\\n", buf.value
        libc.fclose(fp)
        os.unlink(os.path.join(m, "d", "x")) if os.path.exists(os.path.join(m, "d", "x")) else None
        os.rmdir(os.path.join(m, "d"))
        assert sorted(os.listdir(m)) == ["b.txt", "stdio.txt"], os.listdir(m)
    """ % vol.mount)
    assert vol.tag() is not None
    # A new process with the published tag sees the same files.
    r = vol.py("""
        import os
        m = %r
        print(sorted(os.listdir(m)), os.stat(os.path.join(m, "b.txt")).st_size,
              open(os.path.join(m, "stdio.txt")).read().strip())
    """ % vol.mount)
    assert r.stdout.decode().strip() == "['b.txt', 'stdio.txt'] 100 STDIOMARKER line"
    vol.assert_no_plaintext(b"PYMARKER", b"STDIOMARKER", b"b.txt", b"stdio.txt")


def test_coreutils(vol, tmp_path):
    src = tmp_path / "src.bin"
    data = b"".join(b"CUMARKER %08d\n" % i for i in range(20000))
    src.write_bytes(data)
    vol.run(["mkdir", vol.path("dir")])
    vol.run(["cp", str(src), vol.path("dir", "a")])
    assert vol.run(["cat", vol.path("dir", "a")]).stdout == data
    vol.run(["dd", "if=" + vol.path("dir", "a"), "of=" + vol.path("b"), "bs=4096",
             "conv=fsync", "status=none"])
    vol.run(["mv", vol.path("b"), vol.path("dir", "c")])
    vol.run(["cp", vol.path("dir", "c"), str(tmp_path / "out.bin")])  # out of the volume
    assert (tmp_path / "out.bin").read_bytes() == data
    vol.run(["mv", str(tmp_path / "out.bin"), vol.path("moved-in")])  # EXDEV: copy + unlink
    assert not (tmp_path / "out.bin").exists()
    assert vol.run(["cat", vol.path("moved-in")]).stdout == data
    listing = vol.run(["ls", vol.path("dir")]).stdout.decode().split()
    assert listing == ["a", "c"]
    vol.run(["rm", "-r", vol.path("dir")])
    vol.run(["rm", vol.path("moved-in")])
    assert vol.run(["ls", "-A", vol.mount]).stdout == b""
    vol.run(["cp", str(src), vol.path("keep")])
    vol.assert_no_plaintext(b"CUMARKER")
    assert not os.path.exists(vol.mount), "the mount point must never appear on disk"


@pytest.mark.skipif(SQLITE is None, reason="sqlite3 not installed")
def test_sqlite(vol):
    script = textwrap.dedent("""
        PRAGMA journal_mode=DELETE;
        CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
        BEGIN;
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
          INSERT INTO t SELECT x, 'SQLMARKER-' || x FROM c;
        COMMIT;
        SELECT count(*) FROM t;
    """)
    r = vol.run([SQLITE, vol.path("db.sqlite")], input=script.encode())
    assert r.stdout.decode().split() == ["delete", "10000"]
    r = vol.run([SQLITE, vol.path("db.sqlite"),
                 "PRAGMA integrity_check; SELECT count(*), max(v) FROM t;"])
    assert r.stdout.decode().split() == ["ok", "10000|SQLMARKER-9999"]
    # The journal was deleted inside the volume.
    assert vol.run(["ls", vol.mount]).stdout.decode().split() == ["db.sqlite"]
    vol.assert_no_plaintext(b"SQLMARKER", b"SQLite format")


@pytest.mark.skipif(SQLITE is None, reason="sqlite3 not installed")
def test_sqlite_wal(vol):
    # WAL needs a writable shared mapping of -shm: refused loudly, never silently.
    r = vol.run([SQLITE, vol.path("w.sqlite"),
                 "PRAGMA journal_mode=WAL; CREATE TABLE x(a); INSERT INTO x VALUES(1);"],
                check=False)
    assert r.returncode != 0
    assert b"refusing a shared mmap" in r.stderr
    # With locking_mode=EXCLUSIVE SQLite keeps the WAL index in heap memory: it works.
    r = vol.run([SQLITE, vol.path("x.sqlite"),
                 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; CREATE TABLE x(a);"
                 "INSERT INTO x VALUES('WALMARKER'); SELECT a FROM x;"])
    assert r.stdout.decode().split()[-1] == "WALMARKER"
    r = vol.run([SQLITE, vol.path("x.sqlite"),
                 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA integrity_check; SELECT a FROM x;"])
    assert r.stdout.decode().split()[-2:] == ["ok", "WALMARKER"]
    vol.assert_no_plaintext(b"WALMARKER")


def test_threads(vol):
    vol.py("""
        import os, threading
        m = %r
        big = os.path.join(m, "shared")
        with open(big, "wb") as f:
            f.truncate(8 * 50000)
        fd = os.open(big, os.O_RDWR)
        def work(i):
            with open(os.path.join(m, "t%%d" %% i), "wb") as f:
                for j in range(500):
                    f.write(b"THRMARKER %%d %%05d\\n" %% (i, j))
            for j in range(50000 // 8):
                os.pwrite(fd, b"%%d" %% i * 8, (j * 8 + i) * 8)
        ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        os.close(fd)
        for i in range(8):
            lines = open(os.path.join(m, "t%%d" %% i), "rb").read().splitlines()
            assert lines == [b"THRMARKER %%d %%05d" %% (i, j) for j in range(500)]
        data = open(big, "rb").read()
        for k in range(0, len(data), 8):
            assert data[k:k + 8] == b"%%d" %% ((k // 8) %% 8) * 8, k
    """ % vol.mount)
    vol.assert_no_plaintext(b"THRMARKER")


def test_fork(vol):
    r = vol.py("""
        import os
        m = %r
        with open(os.path.join(m, "parent"), "w") as f:
            f.write("FORKMARKER parent")
        pid = os.fork()
        if pid == 0:
            assert open(os.path.join(m, "parent")).read() == "FORKMARKER parent"
            with open(os.path.join(m, "child"), "w") as f:
                f.write("FORKMARKER child")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        # The child committed; the parent sees its file.
        print(open(os.path.join(m, "child")).read())
        with open(os.path.join(m, "after"), "w") as f:
            f.write("FORKMARKER after")
    """ % vol.mount)
    assert r.stdout.decode().strip() == "FORKMARKER child"
    r = vol.run(["ls", vol.mount])
    assert r.stdout.decode().split() == ["after", "child", "parent"]
    vol.assert_no_plaintext(b"FORKMARKER")


def test_subprocess_keeps_descriptors(vol):
    # subprocess uses vfork: the child's closes run in the parent's memory until it execs
    # and must not drop the parent's shielded descriptors.
    vol.py("""
        import os, subprocess
        p = os.path.join(%r, "f")
        with open(p, "w+b") as f:
            f.write(b"SPMARKER" * 1000)
            f.flush()
            subprocess.run(["true"], check=True)
            subprocess.run(["true"], check=True, close_fds=False)
            f.seek(0)
            assert f.read() == b"SPMARKER" * 1000
            f.write(b"more")
        assert os.path.getsize(p) == 8004
    """ % vol.mount)
    vol.assert_no_plaintext(b"SPMARKER")


def test_exec_child_denied(vol):
    # An exec'd child inherits no volume: paths under the mount fail with EACCES.
    vol.run(["cp", "/etc/hostname", vol.path("h")])
    r = vol.run(["sh", "-c", "cat %s" % vol.path("h")], check=False)
    assert r.returncode != 0 and b"Permission denied" in r.stderr
    assert not os.path.exists(vol.mount)


def test_rollback_refused(vol, tmp_path):
    vol.run(["cp", "/etc/hostname", vol.path("a")])
    old = tmp_path / "old-backing"
    shutil.copytree(vol.backing, old)
    vol.run(["cp", "/etc/services", vol.path("b")])
    latest = vol.tag()
    shutil.rmtree(vol.backing)
    shutil.copytree(old, vol.backing)
    vol.expected = [latest]
    r = vol.run(["cat", vol.path("a")], check=False)
    assert r.returncode == REFUSED
    assert b"rollback" in r.stderr and latest.encode() in r.stderr
    # The wrong key is refused too, and no program runs.
    r = vol.run(["true"], config=vol.config(key=base64.b64encode(b"x" * 32).decode()),
                check=False)
    assert r.returncode == REFUSED


def test_second_writer_refused(vol):
    vol.run(["cp", "/etc/hostname", vol.path("a")])
    holder = subprocess.Popen([PYTHON, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(%r, os.O_RDONLY)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\n"
                               "sys.stdin.read()" % vol.backing],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        r = vol.run(["cat", vol.path("a")], check=False)
        assert r.returncode == REFUSED and b"in use by another process" in r.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_bad_config_refused(vol):
    for cfg in ({"volumes": [{"mount": "relative", "backing": vol.backing, "key": vol.key}]},
                {"volumes": [{"mount": vol.mount, "backing": vol.backing, "key": "AAAA"}]},
                {"volumes": [{"mount": vol.mount, "backing": vol.backing, "key": vol.key,
                              "unknown": True}]},
                {"volume": []}):
        r = vol.run(["true"], config=cfg, check=False)
        assert r.returncode == REFUSED, cfg
        assert b"coffer-shield" in r.stderr


def test_unsupported_refused(vol):
    r = vol.py("""
        import errno, mmap, os
        m = %r
        p = os.path.join(m, "f")
        with open(p, "wb") as f:
            f.write(b"MAPMARKER" * 1000)
        fd = os.open(p, os.O_RDWR)
        try:
            mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            raise SystemExit("shared writable map accepted")
        except OSError as e:
            assert e.errno == errno.ENODEV, e
        mp = mmap.mmap(fd, 9000, mmap.MAP_PRIVATE, mmap.PROT_READ)
        assert mp[:18] == b"MAPMARKER" * 2 and mp[8991:9000] == b"MAPMARKER"
        mp.close()
        try:
            os.open(p, os.O_RDONLY | os.O_DIRECT)
            raise SystemExit("O_DIRECT accepted")
        except OSError as e:
            assert e.errno == errno.EINVAL, e
        out = os.open(os.path.join(m, "g"), os.O_WRONLY | os.O_CREAT)
        try:
            os.copy_file_range(fd, out, 100)
            raise SystemExit("copy_file_range accepted")
        except OSError as e:
            assert e.errno == errno.EXDEV, e
        os.close(out)
        os.close(fd)
    """ % vol.mount)
    assert b"refusing a shared mmap" in r.stderr and b"O_DIRECT" in r.stderr
    vol.assert_no_plaintext(b"MAPMARKER")
