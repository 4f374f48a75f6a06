"""coffer evidence verify against the shared SGX/TDX/SNP vectors: the same expected results
as the unit tests, through the CLI, with collateral recognised by content in a folder."""
import csv
import json
import os
import shutil
import subprocess

import pytest

from conftest import COFFER, ROOT

VECTORS = os.path.join(os.path.dirname(ROOT), "shared", "vectors")
TSV = os.path.join(VECTORS, "expected.tsv")


def rows():
    if not os.path.exists(TSV):
        return []
    with open(TSV, newline="") as f:
        out = []
        for r in csv.DictReader(f, delimiter="\t"):
            ev = r["evidence_file"]
            if r["mutation"] != "-" or ev.endswith((".pem", ".der", ".cer")):
                continue  # byte mutations and chain-only rows are covered by the unit tests
            out.append(r)
        return out


ROWS = rows()


@pytest.mark.skipif(not ROWS, reason="shared vectors absent (../shared/vectors/expected.tsv)")
@pytest.mark.parametrize("row", ROWS, ids=[r["case_id"] for r in ROWS])
def test_vector_row_through_cli(row, tmp_path):
    coll = tmp_path / "collateral"
    coll.mkdir()
    if row["collateral_files"] != "-":
        for i, rel in enumerate(row["collateral_files"].split(",")):
            # distinct names; the verifier must not rely on them
            shutil.copy(os.path.join(VECTORS, rel), coll / ("%02d-%s" % (i, os.path.basename(rel))))
    p = subprocess.run([COFFER, "--json", "evidence", "verify",
                        os.path.join(VECTORS, row["evidence_file"]), "--platform", row["platform"],
                        "--collateral", str(coll), "--at", row["verify_time"]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1), p.stderr
    out = json.loads(p.stdout)
    assert set(out) >= {"valid", "tcb_status", "advisories", "claims", "checks"}
    for c in out["checks"]:
        assert set(c) == {"name", "ok", "expected", "actual"}
    if row["expected_signature"] == "valid" and row["expected_tcb_status"] == "NoMatchingLevel":
        assert out["valid"] is True and p.returncode == 1
        assert out["tcb_status"] == "NoMatchingLevel"
    elif row["expected_signature"] == "valid":
        assert out["valid"] is True and p.returncode == 0, [c for c in out["checks"] if not c["ok"]]
    else:
        assert out["valid"] is False and p.returncode == 1
    if row["expected_tcb_status"] not in ("n/a", "NoMatchingLevel"):
        assert out["tcb_status"] == row["expected_tcb_status"]
        want = [] if row["expected_advisories"] == "-" else row["expected_advisories"].split(",")
        assert out["advisories"] == want


def test_usage_errors_exit_2(tmp_path):
    p = subprocess.run([COFFER, "evidence", "verify", "/nonexistent"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "--platform" in p.stderr
    p = subprocess.run([COFFER, "evidence", "verify", "/bin/true", "--platform", "sgx", "--at",
                        "yesterday"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "RFC 3339" in p.stderr


def test_garbage_evidence_is_invalid_not_a_crash(tmp_path):
    f = tmp_path / "junk.bin"
    f.write_bytes(os.urandom(5000))
    for platform in ("sgx", "tdx", "snp", "sim"):
        p = subprocess.run([COFFER, "--json", "evidence", "verify", str(f), "--platform",
                            platform], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, (platform, p.stderr)
        assert json.loads(p.stdout)["valid"] is False


SGX_ROW_COLLATERAL = [
    "sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json", "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex",
    "sgx/dcapqvl_sgx_coll.qe_identity.signed_body.json", "sgx/dcapqvl_sgx_coll.qe_identity.sig_rs.hex",
    "sgx/dcapqvl_sgx_coll.tcb_info_issuer_chain.pem", "sgx/dcapqvl_sgx_coll.pck_crl.der",
    "sgx/dcapqvl_sgx_coll.pck_crl_issuer_chain.pem", "sgx/dcapqvl_sgx_coll.root_ca_crl.der",
    "sgx/dcaprs_Intel_SGX_Provisioning_Certification_RootCA.cer"]

SGX_POLICY = """name: hw/sgx
predecessor: null
services:
  - name: enclave
    command: ["/app"]
    attestation:
      - platform: sgx
        mrenclave: ["33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"]
        tcb_status: [UpToDate, {status: ConfigurationAndSWHardeningNeeded, until: "2025-12-31T00:00:00Z"}]
        advisories: [INTEL-SA-00289, {id: INTEL-SA-00615, until: "UNTIL"}]
"""


@pytest.mark.skipif(not os.path.exists(TSV), reason="shared vectors absent")
@pytest.mark.parametrize("until,accepts", [("2025-08-01T00:00:00Z", True),
                                           ("2025-06-30T00:00:00Z", False)])
def test_policy_evaluation_with_time_staged_advisory(tmp_path, until, accepts):
    coll = tmp_path / "c"
    coll.mkdir()
    for rel in SGX_ROW_COLLATERAL:
        shutil.copy(os.path.join(VECTORS, rel), coll)
    pol = tmp_path / "p.yaml"
    pol.write_text(SGX_POLICY.replace("UNTIL", until))
    p = subprocess.run([COFFER, "--json", "evidence", "verify",
                        os.path.join(VECTORS, "sgx/dcapqvl_sgx_quote_v3.bin"), "--platform", "sgx",
                        "--collateral", str(coll), "--at", "2025-07-01T00:00:00Z",
                        "--policy", str(pol), "--service", "enclave"],
                       capture_output=True, text=True, timeout=60)
    out = json.loads(p.stdout)
    assert out["valid"] is True and out["policy_accepts"] is accepts
    assert p.returncode == (0 if accepts else 1)
    adv = [c for c in out["checks"] if c["name"] == "rule[0].advisories"][0]
    assert adv["ok"] is accepts
