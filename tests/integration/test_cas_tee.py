"""cofferd on a hardware TEE takes its own evidence from the TEE (here a fake configfs-tsm
that behaves like the kernel), binding the same report data as in sim; clients verify it with
the same verifiers as workloads. The fake's evidence is not a real quote, so the client must
refuse it and say why; what is checked is the wiring: 64 bytes of report data reached the
TEE interface, and the evidence came back typed as the TEE's."""
import json
import os

from conftest import Cofferd
from test_providers import FakeTee


def test_cofferd_self_evidence_comes_from_the_tee(world):
    fake = FakeTee(world.tmp, "tsm", "--provider", "tdx_guest")
    try:
        world.cas.stop()
        world.cas = Cofferd(os.path.join(world.tmp, "data-tee"), world.sim_dir)
        world.cas.extra_args = ["--tee", "tdx", "--tsm-root", fake.root]
        world.cas.start()
        status, body = world.get("/v1/version")
        assert json.loads(body)["tee"] == "tdx"
        # the start warning names only what is still sim: the sealing key file
        log = world.cas.logs()
        assert "sealed by a key file" in log and "signed by a software key" not in log, log
        p = world.coffer("--json", "cas", "attest", "--expect-key", world.cas.key_id,
                         check=False)
        out = json.loads(p.stdout)
        assert p.returncode == 1 and out["valid"] is False
        failed = [c["name"] for c in out["checks"] if not c["ok"]]
        assert failed and failed[0].startswith("intel.quote")   # a fake quote does not parse
        reqs = fake.requests()
        assert reqs and len(bytes.fromhex(reqs[-1]["report_data"])) == 64
    finally:
        fake.stop()


def test_coffer_run_reads_cas_collateral(world, tmp_path):
    import subprocess
    from conftest import COFFER_RUN
    exp = world.write("exp.yaml", "name: expect/cofferd\npredecessor: null\nservices:\n"
                      "  - name: cofferd\n    command: [cofferd]\n    attestation:\n"
                      "      - {platform: sim, measurement: [\"%s\"]}\n"
                      "    tolerate: [simulation]\n" % ("00" * 32))
    env = world.env()
    p = subprocess.run([COFFER_RUN, "--cas-policy", exp, "--cas-collateral",
                        str(tmp_path / "missing"), "--policy", "a/b", "--service", "s",
                        "/bin/true"], capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 125 and "--cas-collateral" in p.stderr
