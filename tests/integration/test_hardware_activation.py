"""Hardware evidence reaches the real verifiers inside cofferd: recorded SGX/TDX quotes and an
SNP report, with their collateral imported, are verified offline at activation time. Recorded
evidence cannot carry this connection's TLS binding (and its collateral has expired by now),
so every activation is refused; the refusal must name the checks that failed."""
import json
import os
import subprocess

import pytest

from conftest import PROBE, ROOT

VECTORS = os.path.join(os.path.dirname(ROOT), "shared", "vectors")
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(VECTORS, "sgx")),
                                reason="shared vectors absent (../shared/vectors)")

SGX_COLL = ["sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json",
            "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex",
            "sgx/dcapqvl_sgx_coll.qe_identity.signed_body.json",
            "sgx/dcapqvl_sgx_coll.qe_identity.sig_rs.hex",
            "sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem", "sgx/dcapqvl_sgx_coll.pck_crl.der",
            "sgx/dcapqvl_sgx_coll.pck_crl_issuer_chain.pem",
            "sgx/dcapqvl_sgx_coll.root_ca_crl.der",
            "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer"]
MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"


def raw(world, policy, service, typ, path):
    p = subprocess.run([PROBE, "raw", world.cas.address, world.cas.key_id, policy, service, typ,
                        path], capture_output=True, text=True, timeout=30, env=world.env())
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return out["statuses"][0], json.loads(out["bodies"][0])


def sgx_policy(me):
    return {"name": "hw/sgx", "predecessor": None, "access": {"read": [me], "update": [me]},
            "services": [{"name": "enclave", "command": ["/app"],
                          "attestation": [{"platform": "sgx", "mrenclave": [MRENCLAVE]}]}]}


def test_sgx_quote_is_verified_with_imported_collateral(world):
    me = world.key_id()
    world.create(sgx_policy(me))
    world.coffer("collateral", "import", "--allow-expired",
                 *[os.path.join(VECTORS, f) for f in SGX_COLL])
    status, body = raw(world, "hw/sgx", "enclave", "sgx",
                       os.path.join(VECTORS, "sgx/dcapqvl_sgx_quote_v3.bin"))
    assert status == 403
    failed = {c["name"] for c in body["error"]["details"]["checks"]}
    # the quote and chain verified; what fails is time (collateral expired in 2025) or the binding
    assert not any(n.endswith(".signature") for n in failed), failed
    assert any("window" in n or "binding" in n for n in failed), failed


def test_declared_type_must_match_the_quote(world):
    me = world.key_id()
    world.create(sgx_policy(me))
    status, body = raw(world, "hw/sgx", "enclave", "tdx",
                       os.path.join(VECTORS, "sgx/dcapqvl_sgx_quote_v3.bin"))
    assert status == 403
    assert "evidence.type" in {c["name"] for c in body["error"]["details"]["checks"]}


def test_snp_report_without_collateral_is_refused_with_reasons(world):
    me = world.key_id()
    doc = {"name": "hw/snp", "predecessor": None, "access": {"read": [me], "update": [me]},
           "services": [{"name": "vm", "command": ["/init"],
                         "attestation": [{"platform": "snp", "measurement": ["00" * 48]}]}]}
    world.create(doc)
    status, body = raw(world, "hw/snp", "vm", "snp",
                       os.path.join(VECTORS, "snp/gosevguest_attestation_milan.bin"))
    assert status == 403
    failed = [c for c in body["error"]["details"]["checks"] if not c["ok"]]
    assert failed and all(c["expected"] is not None for c in failed)


def test_garbage_quote_is_refused_not_a_crash(world):
    me = world.key_id()
    world.create(sgx_policy(me))
    junk = os.path.join(world.tmp, "junk.bin")
    with open(junk, "wb") as f:
        f.write(os.urandom(5000))
    for typ in ("sgx", "tdx", "snp"):
        status, body = raw(world, "hw/sgx", "enclave", typ, junk)
        assert status == 403, (typ, body)
    assert world.get("/v1/health")[0] == 200
