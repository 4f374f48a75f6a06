"""libcoffer-shield.so: a program that changes its working directory into a shielded volume
(virtual working directory), and the metadata calls that cp -p, tar, touch and chmod make
(docs/shield-preload.md "Working directory" and "Modes, owners, times and links")."""
import os
import subprocess
import tarfile
import textwrap

import pytest

from test_preload import PYTHON, SHIM, SQLITE, Volume

pytestmark = pytest.mark.skipif(not os.path.exists(SHIM), reason="libcoffer-shield.so not built")


@pytest.fixture
def vol(tmp_path):
    return Volume(tmp_path)


def test_python_chdir(vol, tmp_path):
    r = vol.py("""
        import ctypes, errno, os
        m = %r
        host = os.getcwd()
        os.chdir(m)
        assert os.getcwd() == m, os.getcwd()
        with open("rel.txt", "w") as f:
            f.write("CWDMARKER rel")
        assert os.listdir(".") == ["rel.txt"], os.listdir(".")
        assert os.path.exists("rel.txt") and os.stat("rel.txt").st_size == 13
        os.mkdir("sub")
        os.chdir("sub")
        assert os.getcwd() == m + "/sub", os.getcwd()
        assert open("../rel.txt").read() == "CWDMARKER rel"
        with open("inner", "wb") as f:
            f.write(b"CWDMARKER inner")
        os.rename("inner", "../moved")
        os.chdir("..")
        assert os.getcwd() == m
        assert sorted(os.listdir()) == ["moved", "rel.txt", "sub"], os.listdir()
        assert os.path.realpath("sub/../moved") == m + "/moved"
        # glibc's realpath and getcwd, not Python's own
        libc = ctypes.CDLL(None, use_errno=True)
        libc.realpath.restype = ctypes.c_char_p
        libc.realpath.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        assert libc.realpath(b"sub/../rel.txt", None) == (m + "/rel.txt").encode()
        assert libc.realpath(b"missing", None) is None and ctypes.get_errno() == errno.ENOENT
        libc.getcwd.restype = ctypes.c_char_p
        libc.getcwd.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        assert libc.getcwd(None, 0) == m.encode()
        buf = ctypes.create_string_buffer(4)
        assert libc.getcwd(buf, 4) is None and ctypes.get_errno() == errno.ERANGE
        libc.get_current_dir_name.restype = ctypes.c_char_p
        assert libc.get_current_dir_name() == m.encode()
        # fchdir on a shielded directory descriptor, and on a host one
        fd = os.open("sub", os.O_RDONLY | os.O_DIRECTORY)
        hostfd = os.open(host, os.O_RDONLY | os.O_DIRECTORY)
        os.fchdir(fd)
        assert os.getcwd() == m + "/sub"
        assert open("../moved", "rb").read() == b"CWDMARKER inner"
        os.fchdir(hostfd)
        assert os.getcwd() == host
        os.chdir(m)
        # ".." from the mount point leaves the volume, lexically
        os.chdir("..")
        assert os.getcwd() == os.path.dirname(m), os.getcwd()
        assert "mnt" not in os.listdir(".")  # the host directory: no mount point on disk
        os.chdir("mnt/sub")
        assert os.getcwd() == m + "/sub"
        with open("../../outside.txt", "w") as f:  # a host file, reached through ".."
            f.write("host file")
        # errors
        for bad, code in (("missing", errno.ENOENT), (m + "/rel.txt", errno.ENOTDIR),
                          ("../rel.txt/x", errno.ENOENT)):
            try:
                os.chdir(bad)
                raise SystemExit("chdir %%s accepted" %% bad)
            except OSError as e:
                assert e.errno == code, (bad, e)
        assert os.getcwd() == m + "/sub"
        try:
            os.fchdir(os.open("../rel.txt", os.O_RDONLY))
            raise SystemExit("fchdir to a file accepted")
        except OSError as e:
            assert e.errno == errno.ENOTDIR, e
        os.chdir(host)
        assert os.getcwd() == host
        print(os.environ.get("PWD") is not None)
    """ % vol.mount)
    assert r.stdout.decode().strip() == "True"
    assert (tmp_path / "vol" / "outside.txt").read_text() == "host file"
    r = vol.py("""
        import os
        os.chdir(%r)
        print(sorted(os.listdir()), open("sub/../moved").read())
    """ % vol.mount)
    assert r.stdout.decode().strip() == "['moved', 'rel.txt', 'sub'] CWDMARKER inner"
    vol.assert_no_plaintext(b"CWDMARKER")
    assert not os.path.exists(vol.mount)


def test_fork_inherits_cwd(vol):
    r = vol.py("""
        import os
        m = %r
        os.mkdir(os.path.join(m, "d"))
        os.chdir(os.path.join(m, "d"))
        pid = os.fork()
        if pid == 0:
            assert os.getcwd() == m + "/d"
            with open("child", "w") as f:
                f.write("FORKCWD child")
            os.chdir("..")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        assert os.getcwd() == m + "/d"  # the child's chdir is its own
        print(open("child").read())
    """ % vol.mount)
    assert r.stdout.decode().strip() == "FORKCWD child"
    vol.assert_no_plaintext(b"FORKCWD")


def test_shell_cd(vol, tmp_path):
    # The shell's builtins run in the process that holds the volume; exec'd programs
    # (cat, ls) have no volume and start in it with PWD: denied, never the host directory.
    (tmp_path / "f").write_text("HOSTFILE")  # what a relative "f" would reach on the host
    r = vol.run(["sh", "-c", "cd %s && echo SHMARKER > f && read x < f && echo got $x && pwd "
                 "&& cd .. && pwd && cd mnt && pwd && cat f" % vol.mount],
                cwd=str(tmp_path), check=False)
    out = r.stdout.decode().split("\n")
    assert out[:4] == ["got SHMARKER", vol.mount, os.path.dirname(vol.mount), vol.mount], r
    assert r.returncode != 0 and b"f: Permission denied" in r.stderr, r.stderr
    assert b"HOSTFILE" not in r.stdout
    r = vol.run(["sh", "-c", "cd %s && /bin/pwd" % vol.mount], check=False)
    assert r.stdout.decode().strip() == vol.mount
    r = vol.run(["sh", "-c", "cd %s/missing" % vol.mount], check=False)
    assert r.returncode != 0
    assert vol.run(["cat", vol.path("f")]).stdout == b"SHMARKER\n"
    vol.assert_no_plaintext(b"SHMARKER")


@pytest.mark.skipif(SQLITE is None, reason="sqlite3 not installed")
def test_sqlite_relative(vol):
    script = ".cd %s\n.open rel.db\nCREATE TABLE t(v);\nINSERT INTO t VALUES('SQLCWD');\n" \
             "SELECT v FROM t;\n" % vol.mount
    r = vol.run([SQLITE], input=script.encode())
    assert r.stdout.decode().split() == ["SQLCWD"]
    r = vol.run([SQLITE], input=(".cd %s\n.open rel.db\nPRAGMA integrity_check;\n"
                                 "SELECT v FROM t;\n" % vol.mount).encode())
    assert r.stdout.decode().split() == ["ok", "SQLCWD"]
    assert vol.run(["ls", vol.mount]).stdout.decode().split() == ["rel.db"]
    vol.assert_no_plaintext(b"SQLCWD", b"SQLite format")


def test_metadata_tools(vol, tmp_path):
    src = tmp_path / "src.txt"
    src.write_bytes(b"METAMARKER\n" * 100)
    os.chmod(src, 0o640)
    vol.run(["cp", "-p", str(src), vol.path("a")])
    vol.run(["cp", "-a", str(src), vol.path("b")])
    vol.run(["touch", vol.path("a"), vol.path("new")])
    vol.run(["touch", "-d", "2001-01-01", vol.path("a")])
    vol.run(["chmod", "600", vol.path("a")])
    vol.run(["chmod", "-R", "u+rwX", vol.mount])
    vol.run(["install", "-m", "644", str(src), vol.path("inst")])
    assert vol.run(["cat", vol.path("inst")]).stdout == src.read_bytes()
    r = vol.run(["chmod", "600", vol.path("nope")], check=False)
    assert r.returncode != 0 and b"No such file" in r.stderr
    r = vol.run(["touch", "-c", "-d", "2001-01-01", vol.path("nope")])
    assert vol.run(["ls", vol.mount]).stdout.decode().split() == ["a", "b", "inst", "new"]
    # tar reads the volume (-C, *at calls) and extracts into it (mkdirat, fchmod, utimens).
    tar = tmp_path / "v.tar"
    vol.run(["tar", "-cf", str(tar), "-C", vol.mount, "."])
    with tarfile.open(tar) as t:
        names = sorted(t.getnames())
    assert names == [".", "./a", "./b", "./inst", "./new"], names
    vol.run(["mkdir", vol.path("x")])
    vol.run(["tar", "-xf", str(tar), "-C", vol.path("x")])
    assert vol.run(["cat", vol.path("x", "b")]).stdout == src.read_bytes()
    vol.assert_no_plaintext(b"METAMARKER")


def test_links_refused(vol, tmp_path):
    vol.run(["cp", "/etc/hostname", vol.path("a")])
    for argv in (["ln", "-s", "a", vol.path("s")], ["ln", vol.path("a"), vol.path("h")],
                 ["ln", vol.path("a"), str(tmp_path / "out")]):
        r = vol.run(argv, check=False)
        assert r.returncode != 0 and b"Operation not permitted" in r.stderr, r
        assert b"coffer-shield: links are not supported in a volume" in r.stderr
    assert not (tmp_path / "out").exists()
    vol.py("""
        import errno, os
        m = %r
        try:
            os.readlink(os.path.join(m, "a"))
            raise SystemExit("readlink accepted")
        except OSError as e:
            assert e.errno == errno.EINVAL, e
        try:
            os.readlink(os.path.join(m, "missing"))
            raise SystemExit("readlink accepted")
        except OSError as e:
            assert e.errno == errno.ENOENT, e
        for f in (os.chmod, lambda p, m: os.chown(p, os.getuid(), os.getgid()),
                  lambda p, m: os.utime(p, (1, 2))):
            try:
                f(os.path.join(m, "missing"), 0o600)
                raise SystemExit("metadata call on a missing file accepted")
            except FileNotFoundError:
                pass
        os.chmod(os.path.join(m, "a"), 0o644)
        os.chown(os.path.join(m, "a"), os.getuid(), os.getgid())
        os.utime(os.path.join(m, "a"), ns=(1, 2))
        st = os.stat(os.path.join(m, "a"))
        assert st.st_mode & 0o777 == 0o600  # unchanged: the shield keeps no modes
    """ % vol.mount)
    assert vol.run(["ls", vol.mount]).stdout.decode().split() == ["a"]


def test_cache_config(vol):
    # "cache_mib" is accepted in range (0 turns the cache off), refused outside it.
    for mib in (0, 1, 4096):
        vol.run(["cp", "/etc/services", vol.path("s%d" % mib)], config=vol.config(cache_mib=mib))
        r = vol.run(["cat", vol.path("s%d" % mib)], config=vol.config(cache_mib=mib))
        assert r.stdout == open("/etc/services", "rb").read()
    for bad in (4097, -1, "64", 1.5):
        r = vol.run(["true"], config=vol.config(cache_mib=bad), check=False)
        assert r.returncode == 125 and b"coffer-shield" in r.stderr, bad


def test_bypassing_writes_fail_loudly(vol, tmp_path):
    # bash's builtin echo writes through stdio's internal write after dup2 onto stdout, and
    # an exec'd cat inherits the shielded descriptor: neither passes through the shim, so the
    # sealed placeholder refuses the bytes (EPERM) rather than letting them vanish.
    r = vol.run(["bash", "-c", "echo LOSTMARKER > %s" % vol.path("a")], check=False)
    assert r.returncode != 0 and b"write error: Operation not permitted" in r.stderr, r
    (tmp_path / "src.txt").write_text("LOSTMARKER\n")
    r = vol.run(["bash", "-c", "cat %s > %s" % (tmp_path / "src.txt", vol.path("b"))],
                check=False)
    assert r.returncode != 0 and b"Operation not permitted" in r.stderr, r
    # dash's echo is a plain write: interposed, so it lands in the volume
    vol.run(["dash", "-c", "echo KEPTMARKER > %s" % vol.path("c")])
    assert vol.run(["cat", vol.path("c")]).stdout == b"KEPTMARKER\n"
    vol.assert_no_plaintext(b"LOSTMARKER", b"KEPTMARKER")
