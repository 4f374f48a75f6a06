"""cofferd's TLS private key is never a plain file: tls.key.sealed (under the sealing key) and
tls.key.recovery (under the data key), byte format in docs/formats/tls-key.md. These tests
open both files themselves from that description (with sim sealing the sealing key is a file,
which is exactly why sim protects nothing against root)."""
import hashlib
import json
import os

import pytest



def _crypto():
    """python3-cryptography opens the files as the format document says; without it the
    tests that need to look inside them skip (the others still run)."""
    pytest.importorskip("cryptography", reason="python3-cryptography is needed to open the "
                        "sealed key files as docs/formats/tls-key.md describes")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    return hashes, serialization, AESGCM, HKDF


HEADER = 38


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _hkdf(root, info):
    hashes, _, _, HKDF = _crypto()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=info).derive(root)


def _data_key(data_dir):
    AESGCM = _crypto()[2]
    wrapped = _read(os.path.join(data_dir, "datakey.sealed"))
    seal = _read(os.path.join(data_dir, "sealing.key"))
    return AESGCM(seal).decrypt(wrapped[:12], wrapped[12:], b"coffer-datakey-v1")


def _open(data_dir, name):
    """Opens tls.key.sealed or tls.key.recovery as the format document describes."""
    AESGCM = _crypto()[2]
    blob = _read(os.path.join(data_dir, name))
    header, nonce, rest = blob[:HEADER], blob[HEADER:HEADER + 12], blob[HEADER + 12:]
    assert header[:4] == b"CFTK" and header[4] == 1
    if name == "tls.key.sealed":
        assert header[5] == 1
        key = _hkdf(_read(os.path.join(data_dir, "sealing.key")), b"coffer-tls-key-v1")
    else:
        assert header[5] == 2
        key = _hkdf(_data_key(data_dir), b"coffer-tls-key-recovery-v1")
    return header, AESGCM(key).decrypt(nonce, rest, header)


def _key_id(private_key):
    serialization = _crypto()[1]
    spki = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _secret_forms(pem):
    """Every encoding of the private key a careless implementation might leave on disk."""
    serialization = _crypto()[1]
    key = serialization.load_pem_private_key(pem, password=None)
    forms = [pem, key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()),
             key.private_bytes(serialization.Encoding.DER,
                               serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption()),
             key.private_numbers().private_value.to_bytes(32, "big")]
    return key, forms


def _scan(data_dir, forms):
    """Every file under the data directory, whole: no 'PRIVATE KEY' text, no key bytes."""
    found = []
    for root, _, files in os.walk(data_dir):
        for name in files:
            content = _read(os.path.join(root, name))
            if b"PRIVATE KEY" in content or any(f in content for f in forms):
                found.append(name)
    return found


def test_key_is_sealed_twice_and_nowhere_in_plain(world):
    world.key_id()
    data = world.cas.data_dir
    original = world.cas.key_id
    world.cas.stop()
    assert not os.path.exists(os.path.join(data, "tls.key"))
    for name in ("tls.key.sealed", "tls.key.recovery"):
        assert os.stat(os.path.join(data, name)).st_mode & 0o777 == 0o600
    assert _scan(data, []) == []                         # no PEM private key anywhere
    header, pem = _open(data, "tls.key.sealed")
    assert header[6:] == bytes.fromhex(original)        # bound to tls.crt's key id
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key, forms = _secret_forms(pem)
    assert _key_id(key) == original
    assert _open(data, "tls.key.recovery")[1] == pem
    assert _scan(data, forms) == []
    # the same identity after a restart
    world.cas.start()
    assert world.cas.key_id == original
    info = json.loads(world.coffer("--json", "cas", "info").stdout)
    assert info["tls_key_id"] == original


@pytest.mark.parametrize("where", ["ciphertext", "tag", "key_id", "purpose"])
def test_a_tampered_sealed_key_is_refused(world, where):
    data = world.cas.data_dir
    world.cas.stop()
    path = os.path.join(data, "tls.key.sealed")
    blob = bytearray(_read(path))
    crt = _read(os.path.join(data, "tls.crt"))
    offset = {"ciphertext": HEADER + 20, "tag": len(blob) - 1, "key_id": 10, "purpose": 5}[where]
    blob[offset] ^= 1 if where != "purpose" else 3     # purpose 1 -> 2
    with open(path, "wb") as f:
        f.write(blob)
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    logs = world.cas.logs()
    assert "cannot unseal cofferd's TLS key" in logs and "refusing to start" in logs
    if where in ("key_id", "purpose"):
        assert "another certificate" in logs
    # never silently replaced by a new identity
    assert _read(path) == bytes(blob)
    assert _read(os.path.join(data, "tls.crt")) == crt
    assert not os.path.exists(os.path.join(data, "tls.key"))


def test_the_recovery_copy_is_not_accepted_as_the_sealed_key(world):
    data = world.cas.data_dir
    world.cas.stop()
    os.replace(os.path.join(data, "tls.key.recovery"), os.path.join(data, "tls.key.sealed"))
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    assert "another certificate" in world.cas.logs()


def test_an_old_plain_key_is_migrated(world):
    me = world.key_id()
    world.create({"name": "mig/app", "predecessor": None, "access": {"read": [me]},
                  "services": [{"name": "app", "command": ["/bin/true"],
                                "attestation": [{"platform": "sim", "measurement": ["00" * 32]}],
                                "tolerate": ["simulation"]}]})
    data = world.cas.data_dir
    original = world.cas.key_id
    world.cas.stop()
    serialization = _crypto()[1]
    _, pem = _open(data, "tls.key.sealed")
    key, forms = _secret_forms(pem)
    # a data directory as older cofferd versions left it: a plain key (here in the
    # traditional "EC PRIVATE KEY" flavour), no sealed files
    plain = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    os.unlink(os.path.join(data, "tls.key.sealed"))
    os.unlink(os.path.join(data, "tls.key.recovery"))
    with open(os.path.join(data, "tls.key"), "wb") as f:
        f.write(plain)
    os.chmod(os.path.join(data, "tls.key"), 0o600)
    world.cas.start()
    assert world.cas.key_id == original
    assert "migrated the plain TLS key" in world.cas.logs()
    assert not os.path.exists(os.path.join(data, "tls.key"))
    assert _open(data, "tls.key.sealed")[1].startswith(b"-----BEGIN PRIVATE KEY-----")
    assert _open(data, "tls.key.recovery")[1] == _open(data, "tls.key.sealed")[1]
    assert _scan(data, forms + [plain]) == []
    # the store is untouched by the migration
    assert json.loads(world.coffer("--json", "policy", "show", "mig/app").stdout)["version"] == 1
    world.cas.restart()
    assert world.cas.key_id == original


def test_a_deleted_sealed_key_comes_back_from_the_recovery_copy(world):
    data = world.cas.data_dir
    original = world.cas.key_id
    world.cas.stop()
    os.unlink(os.path.join(data, "tls.key.sealed"))
    world.cas.start()
    assert world.cas.key_id == original
    assert "resealed cofferd's TLS key" in world.cas.logs()
    assert os.path.exists(os.path.join(data, "tls.key.sealed"))


def test_no_key_at_all_is_refused_not_replaced(world):
    data = world.cas.data_dir
    world.cas.stop()
    os.unlink(os.path.join(data, "tls.key.sealed"))
    os.unlink(os.path.join(data, "tls.key.recovery"))
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    assert "has no private key" in world.cas.logs()
    assert not os.path.exists(os.path.join(data, "tls.key.sealed"))


def test_a_missing_certificate_is_refused(world):
    data = world.cas.data_dir
    world.cas.stop()
    os.unlink(os.path.join(data, "tls.crt"))
    world.cas.start(expect_failure=True)
    assert world.cas.proc.returncode != 0
    assert "tls.crt' is missing" in world.cas.logs()


def test_the_sim_warning_names_the_tls_key(world):
    logs = world.cas.logs()
    line = [l for l in logs.splitlines() if "sealing: sim provider" in l]
    assert len(line) == 1 and "TLS private key" in line[0] and "local root" in line[0]
