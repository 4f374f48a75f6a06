#!/usr/bin/env python3
"""A fake TEE evidence interface for integration tests: configfs-tsm or a LibOS
/dev/attestation, emulated in an ordinary directory by polling it (bounded in time).

    fake_tee.py tsm ROOT LOG [--provider tdx_guest] [--timeout SECONDS]
    fake_tee.py libos ROOT LOG [--attestation-type dcap] [--timeout SECONDS]

tsm: every directory created under ROOT gets the attributes the kernel creates
(inblob, outblob, provider, privlevel, privlevel_floor; generation last). When 64 bytes
arrive in inblob, generation is bumped and the answer "FAKE-EVIDENCE:" + report data is
written to outblob, a FIFO, so the reader waits for it as it waits for the kernel.
libos: ROOT gets attestation_type, user_report_data and quote (a FIFO), answered likewise.

LOG receives one JSON object per line: {"event": "ready"}, {"event": "request", "entry":
NAME, "report_data": HEX} and, for tsm, {"event": "removed", "entry": NAME} once the
requester removed its entry. The process exits on SIGTERM or after --timeout seconds."""
import argparse
import errno
import json
import os
import signal
import stat
import sys
import time

MARKER = b"FAKE-EVIDENCE:"
POLL = 0.002


class Log:
    def __init__(self, path):
        self.f = open(path, "a")

    def __call__(self, **event):
        self.f.write(json.dumps(event) + "\n")
        self.f.flush()


def put(path, data):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def answer(fifo, data, deadline):
    """Writes data to the FIFO once its reader has opened it (bounded)."""
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.EINTR):
                time.sleep(POLL)
                continue
            return False
        try:
            os.set_blocking(fd, True)
            os.write(fd, data)
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)
        return True
    return False


def read_request(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if st.st_size < 64:
        return None
    with open(path, "rb") as f:
        return f.read(64)


def run_tsm(args, log, deadline):
    entries = {}  # name -> {"gen": int, "answered": bool}
    while time.monotonic() < deadline:
        names = set()
        for name in os.listdir(args.root):
            path = os.path.join(args.root, name)
            try:
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    names.add(name)
                    serve_entry(path, name, entries, args, log, deadline)
            except FileNotFoundError:
                pass  # the requester removed its entry meanwhile
        for name in list(entries):
            if name not in names:
                log(event="removed", entry=name)
                del entries[name]
        time.sleep(POLL)


def serve_entry(path, name, entries, args, log, deadline):
    if name not in entries:
        entries[name] = {"gen": 0, "answered": False}
        put(os.path.join(path, "inblob"), b"")
        os.mkfifo(os.path.join(path, "outblob"), 0o600)
        put(os.path.join(path, "provider"), (args.provider + "\n").encode())
        put(os.path.join(path, "privlevel"), b"0\n")
        put(os.path.join(path, "privlevel_floor"), b"0\n")
        put(os.path.join(path, "generation"), b"0\n")  # last: the entry is complete
    e = entries[name]
    if not e["answered"]:
        rd = read_request(os.path.join(path, "inblob"))
        if rd is not None:
            e["answered"] = True
            e["gen"] += 1
            log(event="request", entry=name, report_data=rd.hex())
            put(os.path.join(path, "generation"), b"%d\n" % e["gen"])
            answer(os.path.join(path, "outblob"), MARKER + rd, deadline)


def run_libos(args, log, deadline):
    if args.attestation_type:
        put(os.path.join(args.root, "attestation_type"), args.attestation_type.encode())
    put(os.path.join(args.root, "user_report_data"), b"")
    os.mkfifo(os.path.join(args.root, "quote"), 0o600)
    log(event="ready")
    urd = os.path.join(args.root, "user_report_data")
    while time.monotonic() < deadline:
        rd = read_request(urd)
        if rd is not None:
            put(urd, b"")
            log(event="request", entry="", report_data=rd.hex())
            answer(os.path.join(args.root, "quote"), MARKER + rd, deadline)
        time.sleep(POLL)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["tsm", "libos"])
    p.add_argument("root")
    p.add_argument("log")
    p.add_argument("--provider", default="tdx_guest")
    p.add_argument("--attestation-type", default="dcap")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log = Log(args.log)
    deadline = time.monotonic() + args.timeout
    if args.kind == "tsm":
        log(event="ready")
        run_tsm(args, log, deadline)
    else:
        run_libos(args, log, deadline)


if __name__ == "__main__":
    main()
