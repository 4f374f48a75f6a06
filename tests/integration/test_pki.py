"""Keys and certificates as policy secrets, end to end: a real cofferd generates a CA, an
intermediate, a server and a client certificate and several keys; an unmodified program run
by coffer-run receives them as injected files in every encoding; the openssl command-line
tool then checks key types and curves, chain verification, SANs, EKU, validity, and that the
encodings decode to what they claim."""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import sim_policy

PYTHON = os.path.realpath("/usr/bin/python3")
OPENSSL = shutil.which("openssl")
DIR = "/etc/coffer-pki"

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")

# file name -> placeholder text injected at DIR/name
FILES = {
    "root.pem": "$$coffer:root$$",
    "inter.pem": "$$coffer:inter:pem$$",
    "server.pem": "$$coffer:server$$",
    "server.key": "$$coffer:server:key$$",
    "server.pkcs8": "$$coffer:server:pkcs8$$",
    "server.chain": "$$coffer:server:chain$$",
    "server.b64": "$$coffer:server:der:base64$$",
    "server.hex": "$$coffer:server:hex$$",
    "server.pub": "$$coffer:server:public$$",
    "client.pem": "$$coffer:client$$",
    "client.key": "$$coffer:client:pkcs8$$",
    "client.chain": "$$coffer:client:chain$$",
    "ed.key": "$$coffer:ed$$",
    "ed.pkcs8": "$$coffer:ed:pkcs8$$",
    "ed.pub": "$$coffer:ed:public$$",
    "ed.der.b64": "$$coffer:ed:der:base64$$",
    "pub.pem": "$$coffer:pub$$",
    "pub.b64": "$$coffer:pub:der:base64$$",
    "pub.hex": "$$coffer:pub:hex$$",
    "rsa.key": "$$coffer:rsa$$",
    "p384.key": "$$coffer:p384$$",
    "conf.json": '{"chain": "$$coffer:server:chain:json$$", "cert": "$$coffer:server:json$$",'
                 ' "tok": "$$coffer:tok:json$$", "tokhex": "$$coffer:tok:hex$$"}',
}

SECRETS = [
    {"name": "root", "kind": "x509-ca", "common_name": "Coffer Test Root", "algorithm": "p384"},
    {"name": "inter", "kind": "x509-ca", "common_name": "Coffer Test Intermediate",
     "issuer": "root", "validity_days": 1000, "algorithm": "rsa2048"},
    {"name": "server", "kind": "x509", "issuer": "inter", "common_name": "api.test",
     "dns": ["api.test", "*.api.test"], "ip": ["127.0.0.1", "::1"], "validity_days": 30},
    {"name": "client", "kind": "x509", "issuer": "inter", "common_name": "alice",
     "usage": ["client"], "algorithm": "ed25519"},
    {"name": "ed", "kind": "private-key", "algorithm": "ed25519"},
    {"name": "pub", "kind": "public-key", "of": "ed"},
    {"name": "rsa", "kind": "private-key", "algorithm": "rsa3072"},
    {"name": "p384", "kind": "private-key", "algorithm": "p384"},
    {"name": "tok", "kind": "ascii", "size": 12, "charset": "ab\"\\"},
]

# Reads every injected file and prints them as one JSON object (the files exist only in the
# program's mount namespace).
SCRIPT = ("import json, os; d = %r; print(json.dumps({n: open(os.path.join(d, n)).read() "
          "for n in sorted(os.listdir(d))}))" % DIR)


def pki_policy(world, name, secrets=SECRETS, files=FILES):
    me = world.key_id()
    return sim_policy(name, me, PYTHON, command=["python3", "-c", SCRIPT],
                      files=[{"path": DIR + "/" + n, "content": c} for n, c in files.items()],
                      secrets=secrets)


def activate(world, name):
    p = world.run(PYTHON, name, "app")
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode())


def openssl(*args, stdin=None, check=True):
    p = subprocess.run([OPENSSL, *args], capture_output=True, timeout=30,
                       input=stdin.encode() if isinstance(stdin, str) else stdin)
    if check:
        assert p.returncode == 0, "openssl %s: %s" % (args, p.stderr.decode())
    return p


def save(tmp, files):
    out = {}
    for n, c in files.items():
        path = os.path.join(tmp, n)
        with open(path, "w") as f:
            f.write(c)
        out[n] = path
    return out


def text(path):
    return openssl("x509", "-in", path, "-noout", "-text").stdout.decode()


@pytest.fixture
def pki(world, tmp_path):
    digest = json.loads(world.create(pki_policy(world, "pki/app")).stdout)["digest"]
    files = activate(world, "pki/app")
    d = tmp_path / "out"
    d.mkdir()
    return world, files, save(str(d), files), digest


def test_keys_have_the_declared_types(pki):
    _, files, path, _ = pki
    assert files["rsa.key"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    out = openssl("pkey", "-in", path["rsa.key"], "-noout", "-text").stdout.decode()
    assert "Private-Key: (3072 bit" in out
    assert files["p384.key"].startswith("-----BEGIN EC PRIVATE KEY-----\n")
    out = openssl("pkey", "-in", path["p384.key"], "-noout", "-text").stdout.decode()
    assert "NIST CURVE: P-384" in out or "secp384r1" in out
    # Ed25519 has no traditional PEM form: pem and pkcs8 are both PKCS#8
    assert files["ed.key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert files["ed.pkcs8"] == files["ed.key"]
    out = openssl("pkey", "-in", path["ed.key"], "-noout", "-text").stdout.decode()
    assert "ED25519 Private-Key" in out
    # the server key: default p256, traditional for :key, PKCS#8 for :pkcs8, same key
    assert files["server.key"].startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert files["server.pkcs8"].startswith("-----BEGIN PRIVATE KEY-----\n")
    out = openssl("pkey", "-in", path["server.pkcs8"], "-noout", "-text").stdout.decode()
    assert "NIST CURVE: P-256" in out or "prime256v1" in out
    pub_a = openssl("pkey", "-in", path["server.key"], "-pubout").stdout
    pub_b = openssl("pkey", "-in", path["server.pkcs8"], "-pubout").stdout
    assert pub_a == pub_b


def test_chain_verifies_with_openssl(pki):
    _, files, path, _ = pki
    for leaf, purpose in (("server.pem", "sslserver"), ("client.pem", "sslclient")):
        p = openssl("verify", "-CAfile", path["root.pem"], "-untrusted", path["inter.pem"],
                    "-purpose", purpose, path[leaf])
        assert p.stdout.decode().strip().endswith(": OK")
    # the client certificate is not a server certificate, and nothing verifies without the
    # intermediate or against the wrong root
    p = openssl("verify", "-CAfile", path["root.pem"], "-untrusted", path["inter.pem"],
                "-purpose", "sslserver", path["client.pem"], check=False)
    assert p.returncode != 0
    p = openssl("verify", "-CAfile", path["root.pem"], path["server.pem"], check=False)
    assert p.returncode != 0
    p = openssl("verify", "-CAfile", path["inter.pem"], path["server.pem"], check=False)
    assert p.returncode != 0
    # :chain is leaf, intermediate, root, and verifies as a bundle
    chain = files["server.chain"]
    certs = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", chain,
                       re.S)
    assert len(certs) == 3 and "".join(certs) == chain
    assert certs[0] == files["server.pem"] and certs[1] == files["inter.pem"]
    assert certs[2] == files["root.pem"]
    assert files["client.chain"].count("BEGIN CERTIFICATE") == 3
    p = openssl("verify", "-CAfile", path["root.pem"], "-untrusted", path["server.chain"],
                path["server.pem"])
    assert p.returncode == 0


def test_extensions_sans_eku_validity(pki):
    _, _, path, _ = pki
    root = text(path["root.pem"])
    assert "CA:TRUE, pathlen:1" in root
    assert "Subject: CN = Coffer Test Root" in root and "Issuer: CN = Coffer Test Root" in root
    assert "Certificate Sign, CRL Sign" in root
    assert "Subject Key Identifier" in root
    inter = text(path["inter.pem"])
    assert "CA:TRUE, pathlen:0" in inter and "Issuer: CN = Coffer Test Root" in inter
    assert "rsaEncryption" in inter and "ecdsa-with-SHA384" in inter  # signed by the P-384 root
    server = text(path["server.pem"])
    assert "CA:FALSE" in server
    assert "DNS:api.test, DNS:*.api.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" \
        in server
    assert "TLS Web Server Authentication" in server
    assert "TLS Web Client Authentication" not in server
    assert "Digital Signature" in server and "Certificate Sign" not in server
    assert "Authority Key Identifier" in server
    assert "Issuer: CN = Coffer Test Intermediate" in server
    assert "sha256WithRSAEncryption" in server  # signed by the RSA intermediate
    client = text(path["client.pem"])
    assert "TLS Web Client Authentication" in client
    assert "TLS Web Server Authentication" not in client
    assert "ED25519" in client
    # serial: 128 random bits
    serial = openssl("x509", "-in", path["server.pem"], "-noout", "-serial").stdout.decode()
    assert len(serial.strip().split("=")[1]) >= 30
    # validity: valid now, not in 29 days' time for the 30-day server certificate's
    # successor check, expired after 31 days; the root lasts 10 years
    assert openssl("x509", "-in", path["server.pem"], "-noout", "-checkend", "0",
                   check=False).returncode == 0
    assert openssl("x509", "-in", path["server.pem"], "-noout", "-checkend",
                   str(29 * 86400), check=False).returncode == 0
    assert openssl("x509", "-in", path["server.pem"], "-noout", "-checkend",
                   str(31 * 86400), check=False).returncode != 0
    assert openssl("x509", "-in", path["root.pem"], "-noout", "-checkend",
                   str(3640 * 86400), check=False).returncode == 0
    assert openssl("x509", "-in", path["root.pem"], "-noout", "-checkend",
                   str(3651 * 86400), check=False).returncode != 0


def test_encodings(pki):
    _, files, path, _ = pki
    der = base64.b64decode(files["server.b64"], validate=True)
    assert der == bytes.fromhex(files["server.hex"])
    pem_der = openssl("x509", "-in", path["server.pem"], "-outform", "DER").stdout
    assert der == pem_der
    # :public of a certificate and of a private key, and the public-key kind, agree
    assert files["server.pub"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert files["server.pub"].encode() == openssl("x509", "-in", path["server.pem"], "-noout",
                                                   "-pubkey").stdout
    assert files["pub.pem"] == files["ed.pub"]
    assert files["pub.pem"].encode() == openssl("pkey", "-in", path["ed.key"], "-pubout").stdout
    spki = base64.b64decode(files["pub.b64"], validate=True)
    assert spki == bytes.fromhex(files["pub.hex"])
    assert spki == openssl("pkey", "-pubin", "-in", path["pub.pem"], "-outform", "DER").stdout
    key_der = base64.b64decode(files["ed.der.b64"], validate=True)
    assert key_der == openssl("pkey", "-in", path["ed.key"], "-outform", "DER").stdout
    # the certificate's public key matches its private key
    assert openssl("pkey", "-in", path["server.key"], "-pubout").stdout == \
        openssl("x509", "-in", path["server.pem"], "-noout", "-pubkey").stdout
    # :json escapes for a JSON file: it parses, and holds the exact PEM texts
    conf = json.loads(files["conf.json"])
    assert conf["chain"] == files["server.chain"] and conf["cert"] == files["server.pem"]
    assert len(conf["tok"]) == 12 and set(conf["tok"]) <= set('ab"\\')
    assert bytes.fromhex(conf["tokhex"]).decode() == conf["tok"]


def test_stable_across_activations_and_updates(pki, tmp_path):
    world, files, _, digest = pki
    again = activate(world, "pki/app")
    assert again == files
    # an update that keeps every definition keeps every key and certificate
    doc = pki_policy(world, "pki/app")
    doc["predecessor"] = digest
    digest = json.loads(world.update(doc).stdout)["digest"]
    assert activate(world, "pki/app") == files
    # a new root common name re-issues the root and everything below it, and the new chain
    # verifies; unrelated keys are kept
    secrets = [dict(s) for s in SECRETS]
    secrets[0]["common_name"] = "Coffer Test Root 2"
    doc = pki_policy(world, "pki/app", secrets=secrets)
    doc["predecessor"] = digest
    world.update(doc)
    new = activate(world, "pki/app")
    for n in ("root.pem", "inter.pem", "server.pem", "server.key", "client.pem"):
        assert new[n] != files[n], n
    for n in ("ed.key", "rsa.key", "p384.key", "pub.pem"):
        assert new[n] == files[n], n
    d = tmp_path / "new"
    d.mkdir()
    path = save(str(d), new)
    openssl("verify", "-CAfile", path["root.pem"], "-untrusted", path["inter.pem"],
            path["server.pem"])


@pytest.mark.parametrize("secrets,needle", [
    ([{"name": "k", "kind": "private-key", "algorithm": "rsa1024"}],
     "$.secrets[0].algorithm: unknown or refused algorithm 'rsa1024'"),
    ([{"name": "k", "kind": "private-key", "algorithm": "p521"}],
     "$.secrets[0].algorithm: unknown or refused algorithm 'p521'"),
    ([{"name": "a", "kind": "x509-ca", "common_name": "a", "issuer": "b"},
      {"name": "b", "kind": "x509-ca", "common_name": "b", "issuer": "a"}],
     "$.secrets[0].issuer: issuer cycle"),
    ([{"name": "ca", "kind": "x509-ca", "common_name": "a", "validity_days": 40000}],
     "$.secrets[0].validity_days: validity_days must be from 1 to 36500, got 40000"),
    ([{"name": "ca", "kind": "x509-ca", "common_name": "a"},
      {"name": "l", "kind": "x509", "issuer": "ca", "common_name": "l",
       "dns": ["h%d.test" % i for i in range(65)]}],
     "$.secrets[1].dns: expected 0 to 64 DNS names, got 65"),
    ([{"name": "ca", "kind": "x509-ca", "common_name": "a"},
      {"name": "l", "kind": "x509", "issuer": "ca", "common_name": "l", "ip": ["1.2.3.256"]}],
     "$.secrets[1].ip[0]: invalid IP address '1.2.3.256'"),
    ([{"name": "t", "kind": "ascii", "size": 4},
      {"name": "p", "kind": "public-key", "of": "t"}],
     "$.secrets[1].of: 'of' must name a private-key secret"),
])
def test_refusals_reach_the_author(world, secrets, needle):
    me = world.key_id()
    doc = sim_policy("pki/bad", me, PYTHON, secrets=secrets)
    p = world.create(doc, check=False)
    assert p.returncode != 0
    assert needle in p.stdout + p.stderr, p.stdout + p.stderr


def test_unfit_encoding_is_refused_at_load(world):
    me = world.key_id()
    doc = sim_policy("pki/enc", me, PYTHON, env={"K": "$$coffer:k:chain$$"},
                     secrets=[{"name": "k", "kind": "private-key"}])
    p = world.create(doc, check=False)
    assert p.returncode != 0
    assert "$.services[0].environment.K: placeholder 'k:chain': the encoding does not fit " \
        "secret 'k' of kind private-key" in p.stdout + p.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s_server(path, port):
    return subprocess.Popen(
        [OPENSSL, "s_server", "-accept", "127.0.0.1:%d" % port, "-naccept", "1", "-www",
         "-cert", path["server.pem"], "-key", path["server.key"],
         "-cert_chain", path["inter.pem"], "-CAfile", path["root.pem"],
         "-Verify", "3", "-verify_return_error"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def s_client(path, port, *client_args):
    deadline = time.monotonic() + 20
    while True:
        cli = subprocess.run(
            [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3", "-ign_eof",
             "-CAfile", path["root.pem"], "-verify_return_error",
             "-verify_hostname", "api.test", *client_args],
            input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=30)
        if b"connect:errno" not in cli.stderr or time.monotonic() > deadline:
            return cli
        time.sleep(0.2)


def stop(srv):
    if srv.poll() is None:
        srv.kill()
    srv.wait(timeout=10)
    out = srv.stdout.read().decode(errors="replace")
    srv.stdout.close()
    return out


def test_mutual_tls_with_openssl(pki):
    """The delivered files are usable as they are: openssl s_server and s_client complete a
    mutually authenticated TLS 1.3 handshake, each verifying the other against the root."""
    _, _, path, _ = pki
    port = free_port()
    srv = s_server(path, port)
    try:
        cli = s_client(path, port, "-cert", path["client.pem"], "-key", path["client.key"],
                       "-cert_chain", path["inter.pem"])
        out = cli.stdout.decode(errors="replace")
        assert "Verify return code: 0 (ok)" in out, out + cli.stderr.decode(errors="replace")
        assert "HTTP/1.0 200 ok" in out, out
        # s_server -www describes the client certificate it verified
        assert "alice" in out.split("HTTP/1.0 200 ok", 1)[1], out
    finally:
        stop(srv)
    # without a client certificate the server refuses the connection
    port = free_port()
    srv = s_server(path, port)
    try:
        cli = s_client(path, port)
        assert "HTTP/1.0 200 ok" not in cli.stdout.decode(errors="replace")
    finally:
        served = stop(srv)
    assert "peer did not return a certificate" in served or "error" in served.lower(), served
