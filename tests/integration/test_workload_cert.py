"""Workload certificates end to end (issue #5 §3): coffer-run makes the key and sends a CSR with
the activation; cofferd issues the certificate from the policy's CA; the key never leaves the
workload. Unmodified `openssl s_server` and `openssl s_client`, each under coffer-run, complete
a mutually authenticated TLS handshake with only what their policies gave them, and a client of
another policy (another CA) is refused by the server. The openssl command-line tool checks that
the certificate holds what the policy says (not what the CSR says), and activation-probe sends
the requests coffer-run never would."""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import COFFER_RUN, PROBE, measure, sim_policy

PYTHON = os.path.realpath("/usr/bin/python3")
OPENSSL = shutil.which("openssl")
OPENSSL_REAL = os.path.realpath(OPENSSL) if OPENSSL else None
DIR = "/etc/coffer-tls"

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")

# Prints the workload's certificate files and their modes as one JSON object.
SCRIPT = ("import json, os; d = %r; print(json.dumps({n: [open(os.path.join(d, n)).read(), "
          "oct(os.stat(os.path.join(d, n)).st_mode & 0o777)] for n in sorted(os.listdir(d))}))"
          % DIR)


def cert_block(**extra):
    c = {"issuer": "inter", "key_path": DIR + "/key.pem", "cert_path": DIR + "/cert.pem",
         "ca_path": DIR + "/ca.pem"}
    c.update(extra)
    return c


def secrets(root_cn):
    return [{"name": "root", "kind": "x509-ca", "common_name": root_cn, "algorithm": "p384"},
            {"name": "inter", "kind": "x509-ca", "issuer": "root",
             "common_name": root_cn + " Issuing", "validity_days": 1000}]


def service(name, program, command, cert):
    return {"name": name, "command": command,
            "attestation": [{"platform": "sim", "measurement": [measure(program)]}],
            "tolerate": ["simulation"], "certificate": cert}


def policy(world, name, services, root_cn):
    me = world.key_id()
    return {"name": name, "predecessor": None, "access": {"read": [me], "update": [me]},
            "secrets": secrets(root_cn), "services": services}


def openssl(*args, stdin=None, check=True):
    p = subprocess.run([OPENSSL, *args], capture_output=True, timeout=30,
                       input=stdin.encode() if isinstance(stdin, str) else stdin)
    if check:
        assert p.returncode == 0, "openssl %s: %s" % (args, p.stderr.decode())
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world, policy_name, service_name, program, *extra, stdin=None, timeout=60):
    return subprocess.run([COFFER_RUN, "--policy", policy_name, "--service", service_name,
                           *extra, program], capture_output=True, timeout=timeout,
                          env=world.env(), input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def files_of(world, policy_name, service_name, *extra):
    p = run(world, policy_name, service_name, PYTHON, *extra)
    assert p.returncode == 0, p.stderr.decode()
    return {n: v for n, v in json.loads(p.stdout.decode()).items()}


def save(tmp, name, text):
    path = os.path.join(str(tmp), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def x509_text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout.decode()


def spki_der_of_key(path):
    return openssl("pkey", "-in", path, "-pubout", "-outform", "DER").stdout


def spki_der_of_cert(path):
    pem = openssl("x509", "-in", path, "-noout", "-pubkey").stdout
    return openssl("pkey", "-pubin", "-outform", "DER", stdin=pem).stdout


# ---- the delivered files ---------------------------------------------------------------------

@pytest.fixture
def tls(world):
    """One policy: a root, an issuing CA, and a python service that prints its files."""
    svc = service("app", PYTHON, ["python3", "-c", SCRIPT],
                  cert_block(common_name="app.internal", dns=["app.internal"], ip=["127.0.0.1"],
                             usage=["server"], validity_days=10))
    world.create(policy(world, "tls/files", [svc], "Coffer TLS Root"))
    return world


def test_files_key_cert_chain_and_modes(tls, tmp_path):
    files = files_of(tls, "tls/files", "app")
    assert sorted(files) == ["ca.pem", "cert.pem", "key.pem"]
    key, kmode = files["key.pem"]
    cert, cmode = files["cert.pem"]
    ca, amode = files["ca.pem"]
    assert (kmode, cmode, amode) == ("0o400", "0o444", "0o444")
    assert key.startswith("-----BEGIN PRIVATE KEY-----\n")
    # cert.pem: the leaf, then the issuing CA; the root only in ca.pem
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", cert,
                        re.S)
    assert len(blocks) == 2 and "".join(blocks) == cert
    assert ca.count("BEGIN CERTIFICATE") == 1
    kp, cp, ap = (save(tmp_path, n, files[n][0]) for n in ("key.pem", "cert.pem", "ca.pem"))
    leaf = save(tmp_path, "leaf.pem", blocks[0])
    inter = save(tmp_path, "inter.pem", blocks[1])
    assert "Subject: CN = Coffer TLS Root Issuing" in x509_text(inter)
    assert "Subject: CN = Coffer TLS Root\n" in x509_text(ap)
    p = openssl("verify", "-CAfile", ap, "-untrusted", inter, "-purpose", "sslserver", leaf)
    assert p.stdout.decode().strip().endswith(": OK")
    # the key in key_path is the certificate's; P-256 by default
    assert spki_der_of_key(kp) == spki_der_of_cert(leaf)
    assert "prime256v1" in openssl("pkey", "-in", kp, "-noout", "-text").stdout.decode() or \
        "P-256" in openssl("pkey", "-in", kp, "-noout", "-text").stdout.decode()
    text = x509_text(leaf)
    assert "Subject: CN = app.internal" in text
    assert "DNS:app.internal, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text and "Client Authentication" not in text
    assert "CA:FALSE" in text
    assert openssl("x509", "-in", leaf, "-noout", "-checkend", str(9 * 86400),
                   check=False).returncode == 0
    assert openssl("x509", "-in", leaf, "-noout", "-checkend", str(11 * 86400),
                   check=False).returncode != 0
    # every activation: a new key and a new certificate
    again = files_of(tls, "tls/files", "app")
    assert again["key.pem"][0] != key and again["cert.pem"][0] != cert
    assert again["ca.pem"][0] == ca


def test_a_leaf_never_outlives_its_issuer(world, tmp_path):
    """The issuing CA has 5 days, the service asks for 5: the leaf is cut to the whole days
    the CA has left, so it ends before the CA."""
    sec = secrets("Short Root")
    sec[1]["validity_days"] = 5
    svc = service("app", PYTHON, ["python3", "-c", SCRIPT], cert_block(validity_days=5))
    doc = policy(world, "tls/short", [svc], "Short Root")
    doc["secrets"] = sec
    world.create(doc)
    time.sleep(2)   # the CA was issued at creation: without the cut, the leaf would end later
    files = files_of(world, "tls/short", "app")
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n",
                        files["cert.pem"][0], re.S)
    leaf = save(tmp_path, "leaf.pem", blocks[0])
    inter = save(tmp_path, "inter.pem", blocks[1])

    def not_after(path):
        out = openssl("x509", "-in", path, "-noout", "-enddate").stdout.decode().strip()
        return time.mktime(time.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))

    assert not_after(leaf) <= not_after(inter)
    assert not_after(inter) - not_after(leaf) < 86400 + 120


def test_issuance_is_audited_and_the_key_stays_in_the_workload(tls, tmp_path):
    files = files_of(tls, "tls/files", "app")
    key = files["key.pem"][0]
    kp = save(tmp_path, "key.pem", key)
    leaf = save(tmp_path, "cert.pem", files["cert.pem"][0])
    spki = spki_der_of_key(kp)
    path = str(tmp_path / "chain.json")
    tls.coffer("audit", "fetch", "--out", path)
    with open(path) as f:
        chain = json.load(f)
    issued = [e for e in chain["entries"] if e["type"] == "certificate.issued"]
    assert len(issued) == 1
    d = issued[0]["details"]
    assert d["policy"] == "tls/files" and d["service"] == "app" and d["issuer"] == "inter"
    assert d["key_id"] == hashlib.sha256(spki).hexdigest()
    serial = openssl("x509", "-in", leaf, "-noout", "-serial").stdout.decode().strip()
    assert d["serial"] == serial.split("=", 1)[1].lower()
    assert abs(d["not_after"] - (time.time() + 10 * 86400)) < 300
    # neither the private scalar (raw) nor a line of the key's PEM (text) is anywhere in
    # cofferd's data directory or its log
    der = base64.b64decode("".join(key.splitlines()[1:-1]))
    at = der.index(b"\x04\x20", 30)  # PKCS#8 P-256: ... OCTET STRING (32) privateKey
    scalar = der[at + 2:at + 34]
    line = key.splitlines()[2].encode()
    paths = [tls.cas.log_path]
    for root, _, names in os.walk(tls.cas.data_dir):
        paths += [os.path.join(root, n) for n in names]
    assert len(paths) > 2
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        assert scalar not in data and line not in data, path
    with open(tls.cas.log_path, "rb") as f:
        assert b"PRIVATE KEY" not in f.read()  # (the data directory has cofferd's own keys)


def test_algorithm_negotiation_and_no_csr(world):
    """A p384 service: coffer-run sends a p256 CSR, cofferd answers 409 naming p384, and
    coffer-run retries once on the same connection; --csr-algorithm avoids the round trip;
    --no-csr is refused."""
    svc = service("app", PYTHON, ["python3", "-c", SCRIPT],
                  cert_block(algorithm="p384", usage=["client"]))
    world.create(policy(world, "tls/p384", [svc], "Root 384"))
    for extra in ((), ("--csr-algorithm", "p384")):
        files = files_of(world, "tls/p384", "app", *extra)
        out = openssl("pkey", "-noout", "-text", stdin=files["key.pem"][0]).stdout.decode()
        assert "P-384" in out or "secp384r1" in out
    p = run(world, "tls/p384", "app", PYTHON, "--no-csr")
    assert p.returncode == 125
    assert b"needs a \"csr\"" in p.stderr, p.stderr
    p = run(world, "tls/p384", "app", PYTHON, "--csr-algorithm", "rsa1024")
    assert p.returncode == 125 and b"--csr-algorithm" in p.stderr


# ---- mutual TLS between two programs under coffer-run -----------------------------------------

# cert.pem holds the leaf and then the issuing CA; openssl's -cert reads only the first
# certificate of a file, and -cert_chain the ones it sends after it.
def server_command(port):
    return ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-www",
            "-cert", DIR + "/cert.pem", "-cert_chain", DIR + "/cert.pem",
            "-key", DIR + "/key.pem", "-CAfile", DIR + "/ca.pem",
            "-Verify", "3", "-verify_return_error"]


def client_command(port, verify=True):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3", "-ign_eof",
           "-cert", DIR + "/cert.pem", "-cert_chain", DIR + "/cert.pem", "-key", DIR + "/key.pem",
           "-CAfile", DIR + "/ca.pem"]
    if verify:
        cmd += ["-verify_return_error", "-verify_ip", "127.0.0.1"]
    return cmd


def connect(world, policy_name, service_name):
    """Runs a client service under coffer-run, retrying while the server is not up yet."""
    deadline = time.monotonic() + 20
    while True:
        p = run(world, policy_name, service_name, OPENSSL_REAL,
                stdin=b"GET / HTTP/1.0\r\n\r\n", timeout=30)
        if (b"connect:errno" not in p.stderr and b"Connection refused" not in p.stderr) or \
                time.monotonic() > deadline:
            return p
        time.sleep(0.2)


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    out = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    return out


def test_mutual_tls_between_coffer_run_programs(world):
    port = free_port()
    a = policy(world, "tls/a", [
        service("server", OPENSSL_REAL, server_command(port),
                cert_block(common_name="server.a", ip=["127.0.0.1"], usage=["server"])),
        service("client", OPENSSL_REAL, client_command(port),
                cert_block(common_name="client.a", usage=["client"])),
        # a client of this policy whose certificate is for servers only
        service("wrong-usage", OPENSSL_REAL, client_command(port),
                cert_block(common_name="wrong.a", usage=["server"])),
    ], "Policy A Root")
    b = policy(world, "tls/b", [
        # trusts nothing of A's, so it goes on without verifying the server: only the
        # server's own refusal can stop it
        service("client", OPENSSL_REAL, client_command(port, verify=False),
                cert_block(common_name="client.b", usage=["client"])),
    ], "Policy B Root")
    world.create(a)
    world.create(b)
    srv = subprocess.Popen([COFFER_RUN, "--policy", "tls/a", "--service", "server",
                            OPENSSL_REAL], env=world.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        good = connect(world, "tls/a", "client")
        out = good.stdout.decode(errors="replace")
        assert good.returncode == 0, out + good.stderr.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in out, out
        assert "HTTP/1.0 200 ok" in out, out
        # s_server -www describes the client certificate it verified
        assert "client.a" in out.split("HTTP/1.0 200 ok", 1)[1], out
        other = connect(world, "tls/b", "client")
        out_b = other.stdout.decode(errors="replace")
        assert "HTTP/1.0 200 ok" not in out_b, out_b
        usage = connect(world, "tls/a", "wrong-usage")
        assert "HTTP/1.0 200 ok" not in usage.stdout.decode(errors="replace")
        # and the server still serves its own policy's clients afterwards
        again = connect(world, "tls/a", "client")
        assert "HTTP/1.0 200 ok" in again.stdout.decode(errors="replace")
    finally:
        served = stop(srv)
    # the refusals were the server's: B's chain does not lead to A's root, and a server-only
    # certificate is not a client certificate
    assert re.search(r"CN = Policy B Root Issuing\nverify error:num=20", served), served
    assert re.search(r"CN = wrong\.a\nverify error:num=26:unsuitable certificate purpose",
                     served), served
    assert served.count("depth=0 CN = client.a\nverify return:1") == 2, served


# ---- requests coffer-run never sends ---------------------------------------------------------

@pytest.fixture
def probe_world(world, tmp_path):
    svc = service("app", PYTHON, ["python3", "-c", "print(1)"],
                  cert_block(common_name="probe.internal", dns=["probe.internal"],
                             usage=["client"], validity_days=5))
    plain = {"name": "plain", "command": ["python3", "-c", "print(1)"],
             "attestation": [{"platform": "sim", "measurement": [measure(PYTHON)]}],
             "tolerate": ["simulation"]}
    world.create(policy(world, "tls/probe", [svc, plain], "Probe Root"))
    keys = {}
    for name, args in (("p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                       ("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
                       ("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])):
        path = str(tmp_path / (name + ".key"))
        openssl("genpkey", *args, "-out", path)
        keys[name] = path
    return world, keys, tmp_path


def make_csr(key, subject="/CN=evil.example", san="DNS:evil.example,IP:6.6.6.6"):
    return openssl("req", "-new", "-key", key, "-subj", subject, "-addext",
                   "subjectAltName=" + san, "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "extendedKeyUsage=codeSigning").stdout.decode()


def probe_csr(world, tmp_path, text, service_name="app"):
    path = str(tmp_path / ("csr-%d" % time.monotonic_ns()))
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([PROBE, "csr", world.cas.address, world.cas.key_id, "tls/probe",
                        service_name, measure(PYTHON), path], capture_output=True, text=True,
                       timeout=30, env=world.env(), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return out["statuses"][0], json.loads(out["bodies"][0])


def test_certificate_content_comes_from_the_policy_not_the_csr(probe_world):
    world, keys, tmp = probe_world
    status, bundle = probe_csr(world, tmp, make_csr(keys["p256"]))
    assert status == 200, bundle
    cert = bundle["certificate"]
    assert "key" not in cert and "PRIVATE" not in json.dumps(bundle)
    assert cert["key_path"] == DIR + "/key.pem" and cert["ca_path"] == DIR + "/ca.pem"
    leaf = save(tmp, "leaf.pem", cert["cert"].split("-----END CERTIFICATE-----\n")[0] +
                "-----END CERTIFICATE-----\n")
    text = x509_text(leaf)
    assert "Subject: CN = probe.internal" in text and "evil" not in text
    assert "DNS:probe.internal" in text and "6.6.6.6" not in text
    assert "TLS Web Client Authentication" in text and "Code Signing" not in text
    assert "CA:FALSE" in text and "CA:TRUE" not in text
    assert openssl("x509", "-in", leaf, "-noout", "-checkend", str(4 * 86400),
                   check=False).returncode == 0
    assert openssl("x509", "-in", leaf, "-noout", "-checkend", str(6 * 86400),
                   check=False).returncode != 0
    assert spki_der_of_cert(leaf) == spki_der_of_key(keys["p256"])
    ca = save(tmp, "ca.pem", cert["ca"])
    chain = save(tmp, "chain.pem", cert["cert"])
    openssl("verify", "-CAfile", ca, "-untrusted", chain, "-purpose", "sslclient", leaf)


def test_bad_requests_are_refused(probe_world):
    world, keys, tmp = probe_world
    good = make_csr(keys["p256"])
    # a bad signature: flip a bit in the last byte of the DER (inside the signature)
    der = bytearray(openssl("req", "-in", "/dev/stdin", "-outform", "DER", stdin=good).stdout)
    der[-1] ^= 1
    bad_sig = "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" % \
        "\n".join(re.findall(".{1,64}", base64.b64encode(bytes(der)).decode()))
    cases = [
        (bad_sig, 400, "request.csr", "signature does not verify"),
        (make_csr(keys["rsa1024"]), 400, "request.csr", "weak or invalid key"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n",
         400, "request.csr", "not one PEM"),
        ("junk\n" + good, 400, "request.csr", "not one PEM"),
        (good + good, 400, "request.csr", "not one PEM"),
        (good + "\n" * (17 * 1024), 400, "request.csr", "larger than 16 KiB"),
        (make_csr(keys["p384"]), 409, "activation.csr_algorithm", "wants a p256 key"),
    ]
    for text, status, code, message in cases:
        got, body = probe_csr(world, tmp, text)
        assert got == status, (message, body)
        assert body["error"]["code"] == code, body
        assert message in body["error"]["message"], body
    got, body = probe_csr(world, tmp, make_csr(keys["p384"]))
    assert body["error"]["details"] == {"algorithm": "p256"}
    # no CSR for a service with a certificate: 400 naming the service
    out = world.probe("normal", "tls/probe", "app", measure(PYTHON))
    assert out["statuses"] == [400]
    body = json.loads(out["bodies"][0])
    assert body["error"]["code"] == "request.csr" and "'app'" in body["error"]["message"]
    # a CSR for a service without a certificate is ignored, even a bad one
    got, body = probe_csr(world, tmp, bad_sig, service_name="plain")
    assert got == 200 and "certificate" not in body
    # unattested: refused for the evidence (403), before the CSR is looked at
    p = subprocess.run([PROBE, "csr", world.cas.address, world.cas.key_id, "tls/probe", "app",
                        "00" * 32, save(tmp, "good.csr", good)], capture_output=True,
                       text=True, timeout=30, env=world.env(), stdin=subprocess.DEVNULL)
    assert json.loads(p.stdout)["statuses"] == [403]


def test_policy_refusals_reach_the_author(world):
    me = world.key_id()
    doc = sim_policy("tls/bad", me, PYTHON, secrets=secrets("R") + [
        {"name": "k", "kind": "private-key"}],
        extra_service={"certificate": cert_block(issuer="k", dns=["a..b"])})
    p = world.create(doc, check=False)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "$.services[0].certificate.issuer: 'issuer' must name an x509-ca secret" in out, out
    assert "$.services[0].certificate.dns[0]: invalid DNS name 'a..b'" in out, out
