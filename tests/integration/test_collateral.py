"""Collateral kept by cofferd: import (recognised by content, idempotent), list, delete."""
import json
import os

import pytest

from conftest import ROOT

VECTORS = os.path.join(os.path.dirname(ROOT), "shared", "vectors")


def test_import_list_delete(world, tmp_path):
    world.key_id()
    cert = os.path.join(world.cas.data_dir, "tls.crt")     # any certificate is collateral-shaped
    out = json.loads(world.coffer("--json", "collateral", "import", cert).stdout)
    assert out[0]["kind"] == "certificate" and out[0]["existed"] is False
    again = json.loads(world.coffer("--json", "collateral", "import", cert).stdout)
    assert again[0]["digest"] == out[0]["digest"] and again[0]["existed"] is True
    listed = json.loads(world.coffer("--json", "collateral", "ls").stdout)["collateral"]
    assert [c["digest"] for c in listed] == [out[0]["digest"]]
    assert "data" not in listed[0]
    world.coffer("collateral", "rm", out[0]["digest"])
    assert json.loads(world.coffer("--json", "collateral", "ls").stdout)["collateral"] == []
    p = world.coffer("collateral", "rm", out[0]["digest"], check=False)
    assert p.returncode == 1 and "no such collateral" in p.stderr


def test_unrecognised_files_are_refused(world, tmp_path):
    world.key_id()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(300))
    p = world.coffer("collateral", "import", str(junk), check=False)
    assert p.returncode == 1 and "not recognised" in p.stderr
    assert json.loads(world.coffer("--json", "collateral", "ls").stdout)["collateral"] == []


def test_collateral_needs_a_client_certificate(world):
    status, body = world.get("/v1/collateral")
    assert status == 401


@pytest.mark.skipif(not os.path.isdir(os.path.join(VECTORS, "sgx")), reason="vectors absent")
def test_intel_collateral_kinds(world):
    world.key_id()
    files = ["sgx/dcapqvl_sgx_coll.tcb_info.signed_body.json",
             "sgx/dcapqvl_sgx_coll.tcb_info.sig_rs.hex", "sgx/dcapqvl_sgx_coll.pck_crl.der",
             "sgx/dcapqvl_sgx_quote_collateral.json"]
    out = json.loads(world.coffer("--json", "collateral", "import",
                                  *[os.path.join(VECTORS, f) for f in files]).stdout)
    assert [o["kind"] for o in out] == ["tcb_info", "signature", "crl", "bundle"]


def test_missing_cas_is_a_usage_error(world):
    env = world.env()
    del env["COFFER_CAS"]
    p = world.coffer("collateral", "ls", env=env, check=False)
    assert p.returncode == 2
