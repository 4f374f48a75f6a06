"""Collateral kept by cofferd: verified on import (set-wise, all-or-nothing), idempotent,
listed with its verified status, deleted.

The shared vectors are real Intel and AMD collateral whose short windows (TCB Info, QE
Identity, CRLs) ended in 2025: imports of those use --allow-expired, and the tests still show
that an altered or wrongly signed file is refused."""
import base64
import json
import os

import pytest

from conftest import ROOT

VECTORS = os.path.join(os.path.dirname(ROOT), "shared", "vectors")
HAVE = os.path.isdir(os.path.join(VECTORS, "sgx")) and os.path.isdir(os.path.join(VECTORS, "snp"))
need_vectors = pytest.mark.skipif(not HAVE, reason="shared vectors absent (../shared/vectors)")

ROOT_CA = "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer"
SGX_SET = ["sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json",
           "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex",
           "sgx/dcapqvl_sgx_coll.qe_identity.signed_body.json",
           "sgx/dcapqvl_sgx_coll.qe_identity.sig_rs.hex",
           "sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem", "sgx/dcapqvl_sgx_coll.pck_crl.der",
           "sgx/dcapqvl_sgx_coll.pck_crl_issuer_chain.pem", "sgx/dcapqvl_sgx_coll.root_ca_crl.der",
           ROOT_CA]


def vec(rel):
    return os.path.join(VECTORS, rel)


def listed(world):
    return json.loads(world.coffer("--json", "collateral", "ls").stdout)["collateral"]


def post(world, body, ctype="application/json", path="/v1/collateral"):
    c = world.https("alice")
    try:
        c.request("POST", path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


@need_vectors
def test_import_list_delete(world):
    world.key_id()
    out = json.loads(world.coffer("--json", "collateral", "import", vec(ROOT_CA)).stdout)
    assert out[0]["kind"] == "certificate" and out[0]["existed"] is False
    assert out[0]["verified"] is True and out[0]["issuer"] == "pinned"
    again = json.loads(world.coffer("--json", "collateral", "import", vec(ROOT_CA)).stdout)
    assert again[0]["digest"] == out[0]["digest"] and again[0]["existed"] is True
    rows = listed(world)
    assert [c["digest"] for c in rows] == [out[0]["digest"]]
    assert "data" not in rows[0] and rows[0]["verified"] is True
    world.coffer("collateral", "rm", out[0]["digest"])
    assert listed(world) == []
    p = world.coffer("collateral", "rm", out[0]["digest"], check=False)
    assert p.returncode == 1 and "no such collateral" in p.stderr


def test_unrecognised_files_are_refused(world, tmp_path):
    world.key_id()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x01" + os.urandom(300))
    p = world.coffer("collateral", "import", str(junk), check=False)
    assert p.returncode == 1 and "not recognised" in p.stderr
    assert listed(world) == []


def test_certificate_of_no_pinned_root_is_refused(world):
    """cofferd's own TLS certificate is a certificate, but not one that chains to a pinned
    root: refused (422) with the reason, nothing stored."""
    world.key_id()
    cert = os.path.join(world.cas.data_dir, "tls.crt")
    p = world.coffer("collateral", "import", cert, check=False)
    assert p.returncode == 1, p.stdout
    assert "tls.crt" in p.stderr and "nothing of this import was stored" in p.stderr
    assert listed(world) == []


def test_collateral_needs_a_client_certificate(world):
    status, body = world.get("/v1/collateral")
    assert status == 401


@need_vectors
def test_self_contained_set_imports_in_any_order(world):
    world.key_id()
    files = [vec(f) for f in reversed(SGX_SET)]
    out = json.loads(world.coffer("--json", "collateral", "import", "--allow-expired",
                                  *files).stdout)
    kinds = {o["name"]: o["kind"] for o in out}
    assert kinds["dcapqvl_sgx_coll.tcb_info.signed_body.json"] == "tcb_info"
    assert kinds["dcapqvl_sgx_coll.tcb_info.sig_rs.hex"] == "signature"
    assert kinds["dcapqvl_sgx_coll.pck_crl.der"] == "crl"
    assert all(o["verified"] for o in out) and len(out) == len(SGX_SET)
    # verified status and issuer digest recorded with each stored file
    rows = {r["name"]: r for r in listed(world)}
    assert len(rows) == len(SGX_SET)
    body = rows["dcapqvl_sgx_coll.tcb_info.signed_body.json"]
    assert body["verified"] is True and len(body["issuer"]) == 64
    # a bundle verifies against what is stored now (the root)
    p = world.coffer("collateral", "import", "--allow-expired",
                     vec("sgx/dcapqvl_sgx_quote_collateral.json"))
    assert "bundle" in p.stdout and "verified by" in p.stdout


@need_vectors
def test_expired_collateral_needs_allow_expired(world):
    world.key_id()
    p = world.coffer("collateral", "import", *[vec(f) for f in SGX_SET], check=False)
    assert p.returncode == 1
    assert "outside its validity window" in p.stderr and "2025-07-19T10:56:11Z" in p.stderr
    assert listed(world) == []          # all or nothing: not even the root was stored


@need_vectors
def test_missing_issuer_is_named_and_later_import_closes_it(world):
    world.key_id()
    body = vec("sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json")
    sig = vec("sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex")
    p = world.coffer("collateral", "import", "--allow-expired", body, sig, check=False)
    assert p.returncode == 1
    assert "'Intel SGX TCB Signing' whose certificate is not in this import nor in stored" \
        in p.stderr
    assert listed(world) == []
    world.coffer("collateral", "import", vec(ROOT_CA),
                 vec("sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem"))
    world.coffer("collateral", "import", "--allow-expired", body, sig)
    assert len(listed(world)) == 4


@need_vectors
@pytest.mark.parametrize("target,offset,reason", [
    ("sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json", 0xac, "verifies this TCB Info body"),
    ("sgx/dcapqvl_sgx_coll.pck_crl.der", -1, "CRL signature does not verify with its issuer"),
    ("snp/virteesev_vcek_milan.der", 0x28, "snp.vcek.signature failed"),
])
def test_altered_file_is_refused_with_422(world, target, offset, reason):
    world.key_id()
    files = SGX_SET if target.startswith("sgx/") else [
        "snp/virteesev_vcek_milan.der", "snp/virteesev_ask_milan.pem", "snp/virteesev_ark_milan.pem"]
    req = []
    for rel in files:
        data = bytearray(open(vec(rel), "rb").read())
        if rel == target:
            data[offset] ^= 0x01 if target.startswith("sgx/") else 0xff
        req.append({"name": os.path.basename(rel), "data": base64.b64encode(data).decode()})
    status, out = post(world, json.dumps({"files": req, "allow_expired": True}))
    assert status == 422, out
    err = out["error"]
    assert err["code"] == "collateral.unverified"
    assert os.path.basename(target) in err["message"] and reason in err["message"]
    bad = [f for f in err["details"]["files"] if not f["ok"]]
    assert os.path.basename(target) in [f["name"] for f in bad]
    assert any(c["name"].endswith(os.path.basename(target) + ": signature") and not c["ok"]
               for c in err["details"]["checks"])
    assert listed(world) == []


@need_vectors
def test_amd_chain_and_raw_single_file_form(world):
    """The older raw-body form (one file, ?name=) still works and is verified too."""
    world.key_id()
    ark = open(vec("snp/virteesev_ark_milan.pem"), "rb").read()
    status, out = post(world, ark, "application/octet-stream", "/v1/collateral?name=ark.pem")
    assert status == 201 and out["verified"] is True and out["issuer"] == "pinned"
    vcek = open(vec("snp/gosevguest_vcek_milan.der"), "rb").read()
    status, out = post(world, vcek, "application/octet-stream", "/v1/collateral?name=vcek.der")
    assert status == 422 and "is not in this import nor in stored collateral" in \
        out["error"]["message"]
    world.coffer("collateral", "import", vec("snp/virteesev_ask_milan.pem"),
                 vec("snp/gosevguest_vcek_milan.der"))
    assert len(listed(world)) == 3
    # a Milan VCEK does not verify with a Genoa chain
    p = world.coffer("collateral", "import", vec("snp/trustee_e2e_snp_vcek_genoa.der"),
                     check=False)
    assert p.returncode == 1 and "REFUSED" in p.stderr


def test_bad_requests(world):
    world.key_id()
    status, out = post(world, b"{\"files\": []}")
    assert status == 400 and out["error"]["code"] == "collateral.request"
    status, out = post(world, json.dumps({"files": [{"name": "a b", "data": "AA=="}]}))
    assert status == 400


def test_missing_cas_is_a_usage_error(world):
    env = world.env()
    del env["COFFER_CAS"]
    p = world.coffer("collateral", "ls", env=env, check=False)
    assert p.returncode == 2
