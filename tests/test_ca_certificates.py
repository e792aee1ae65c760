"""Issue 9 finding 14: meshConfig.caCertificates across overlays, and what C4 requires.

Sources (transcribed, not computed by meshca):

- asmcli 1.19.10-asm.9+config1 passes every overlay to ``istioctl install`` as its own ``-f``
  (anthos-service-mesh-packages ``asmcli/asmcli`` lines 3907-3910, ``gen_install_params``;
  ``--custom_overlay`` accumulated at lines 3557-3560, ``--option`` files at 4451-4468).
- istioctl 1.19 layers the ``-f`` files with ``util.OverlayIOP`` (istio/istio release-1.19
  ``operator/pkg/manifest/shared.go`` lines 280-312), a Kubernetes strategic merge against
  ``iopMergeStruct`` (``operator/pkg/util/merge_iop.go`` lines 231-266), whose ``meshConfig``
  (lines 134-154) has NO ``caCertificates`` field. apimachinery v0.28.1
  ``pkg/util/strategicpatch/patch.go`` ``mergeMap`` (from line 1322) takes a list present in one
  file only as it is, and for a list present in both looks the field up in the struct
  (``LookupPatchMetadataForSlice``) and returns its error: "unable to find api field in struct
  meshConfig for the json field "caCertificates"" (``third_party/forked/golang/json/fields.go``
  line 68). Neither REPLACE nor MERGE: two overlays setting ``caCertificates`` make the install
  fail. Measured with apimachinery v0.29.6 (same ``mergeMap``) on a struct of that shape.
- REV1's option ``ca-migration-citadel`` already sets ``caCertificates`` (the Mesh CA root,
  ``asm/istio/options/ca-migration-citadel.yaml`` lines 27-66 at the tag); ``ca-migration-meshca``
  sets none and ``ENABLE_CA_SERVER: false`` (``asm/istio/options/ca-migration-meshca.yaml`` line 22).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from fakes.trust_cluster import Cluster, make_pki, sidecar_dump
from meshca.certs import fingerprint
from meshca.config import load_stack_file
from meshca import plan as planmod

from harness import ROOT
from test_trust_runner import pods, run

XF = "issue 9 finding 14: "
USER_OVERLAY = """\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    caCertificates:
      - pem: |
{pem}
"""


def stack_with_overlay(tmp_path, overlay_text: str):
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    (tmp_path / "overlays").mkdir()
    (tmp_path / "overlays" / "extra-roots.yaml").write_text(overlay_text)
    doc = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())
    doc["config"]["meshca:customOverlays"] = ["overlays/extra-roots.yaml"]
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "Pulumi.dev.yaml"


def test_a_custom_overlay_setting_ca_certificates_is_refused_with_the_reason(tmp_path):
    pem = "\n".join("          " + line for line in (ROOT / "samples" / "certs" / "root-cert.pem").read_text().strip().splitlines())
    path = stack_with_overlay(tmp_path, USER_OVERLAY.format(pem=pem))
    proc = subprocess.run([sys.executable, "-m", "meshca", "plan", "--config", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert "MCA0152 overlays/extra-roots.yaml: sets spec.meshConfig.caCertificates" in line


def test_an_overlay_without_ca_certificates_stays_allowed(tmp_path):
    path = stack_with_overlay(tmp_path, "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    accessLogFile: /dev/stdout\n")
    assert load_stack_file(path).asmcli.custom_overlays == ("overlays/extra-roots.yaml",)


# ----------------------------------------------------------------------------- C4: exactly the Mesh CA roots


@pytest.fixture(scope="module")
def p():
    return make_pki()


def test_the_old_root_gate_requires_exactly_the_mesh_ca_roots(tmp_path, p):
    c = Cluster()
    new_root = p.other_root  # what an istiod that runs its CA self-signs once the CA secrets are gone
    c.add_pod("shop", "exact", dump=sidecar_dump(p.meshca_chain("shop", "a"), p.pem(p.meshca_root)))
    c.add_pod("shop", "new-root", dump=sidecar_dump(p.meshca_chain("shop", "b"), p.pem(p.meshca_root, new_root)))
    doc = run(tmp_path, c, p, require=("MESHCA",), forbid=("CITADEL", "UNKNOWN"), citadel_roots=(p.citadel_root.cert,))
    got = pods(doc)
    assert got["shop/exact"]["status"] == "ok"
    assert got["shop/new-root"]["status"] == "fail"
    assert got["shop/new-root"]["unknownRoots"] == [fingerprint(new_root.cert)]
    assert "MCA0445 shop/new-root: trusts [MESHCA], including forbidden UNKNOWN" in got["shop/new-root"]["reason"]
    assert doc["ok"] is False


def test_the_c4_gate_step_forbids_every_root_but_the_mesh_ca_roots():
    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    cp = planmod.build(c.at("old-root-removed", False, {n.name: c.rev2 for n in c.namespaces}), {cl.name: planmod.CACERTS_MATCHING for cl in c.clusters}).clusters[0]
    c4 = cp.step("C4.gate.old-root-absent")
    assert c4.params["require"] == ("MESHCA",) or list(c4.params["require"]) == ["MESHCA"]
    assert list(c4.params["forbid"]) == ["CITADEL", "UNKNOWN"]
    assert "--forbid CITADEL,UNKNOWN" in " ".join(c4.argv)


def test_meshca_check_forbids_unknown_roots_on_request():
    from meshca.cli import _Parser
    from meshca.trust import cli as tcli

    parser = _Parser(prog="meshca")
    tcli.register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    req = tcli.build_request(parser.parse_args(["check", "root-cert", "--require", "MESHCA", "--forbid", "CITADEL,UNKNOWN"]))
    assert req.require == ("MESHCA",) and req.forbid == ("CITADEL", "UNKNOWN")


def test_unknown_can_never_be_required():
    # requiring "a root nobody knows" means nothing: a usage error before and after the fix
    proc = subprocess.run([sys.executable, "-m", "meshca", "check", "root-cert", "--require", "UNKNOWN"], capture_output=True, text=True)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "MCA0901 " in line and "UNKNOWN" in line


# ----------------------------------------------------------------------------- the rehearsal


def test_the_rehearsal_assumes_the_pinned_overlay_by_default():
    from meshca.sim import switches as sw

    # asm/istio/options/ca-migration-meshca.yaml line 22 (tag 1.19.10-asm.9+config1): ENABLE_CA_SERVER: false
    assert sw.resolve({})["rev2-runs-citadel-ca"] is False


def test_c4_fails_when_rev2_self_signs_a_new_root():
    from meshca.sim import scenarios

    from test_rehearse_scenarios import run as rehearse

    # a later asmcli without ENABLE_CA_SERVER: false: REV2 runs its CA, and after C2 deletes the
    # CA secrets it self-signs a new root (phase-c-new-root) that reaches every bundle at C3
    r, doc = rehearse(scenarios.get("canary"), switches={"rev2-runs-citadel-ca": True, "phase-c-new-root": True})
    last = doc["steps"][-1]
    assert last["step"] == "C4.gate.old-root-absent" and last["gates"] == {last["step"]: "fail"}
    assert "forbidden UNKNOWN" in last["gateReason"]
    assert doc["summary"]["handshakesFailed"] == 0


def test_the_emulated_install_fails_like_istioctl_on_two_ca_certificates_lists():
    """The simulated asmcli refuses as istioctl 1.19 does (merge_iop.go has no caCertificates)."""
    from meshca.sim.emulator import Emulator

    from test_sim_mesh import final_steps, world

    cfg, mesh, em = world(load_stack_file_builtin())
    steps = final_steps(cfg)
    a1 = steps[f"A1.install.{cfg.rev1}"]
    mesh.write_file("extra-roots.yaml", b"apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  meshConfig:\n    caCertificates:\n      - pem: x\n")
    argv = list(a1.argv)
    at = argv.index("--revision_name")
    argv[at:at] = ["--custom_overlay", "extra-roots.yaml"]  # beside ca-migration-citadel's own list
    result = em.run(argv, a1.stdin)
    assert result.rc != 0 and 'unable to find api field in struct meshConfig for the json field "caCertificates"' in result.stderr
    assert cfg.rev1 not in mesh.clusters["cluster-1"].istiods and isinstance(em, Emulator)


def load_stack_file_builtin():
    from meshca.sim.builtin import builtin_config

    return builtin_config(clusters=1, namespaces=2, batch_size=1)
