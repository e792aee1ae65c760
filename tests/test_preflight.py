"""Issue 9 finding 13: preconditions no step checked, now coded refusals before the step that needs them.

Sources (transcribed, not computed by meshca):

- Gateway injection needs a namespace WITHOUT ``istio-injection``: istio/istio release-1.19
  ``manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`` lines 54-66
  (``rev.namespace.sidecar-injector``: ``istio-injection`` DoesNotExist) and 75-90
  (``rev.object.sidecar-injector``, the pod's own ``istio.io/rev``: ``istio-injection``
  DoesNotExist); ``istio-injection=enabled`` goes to the default revision's webhook (lines
  103-114). An uninjected gateway pod keeps ``image: auto`` and never starts: istio/istio#37482
  ("Did you set istio-injection=disable on the namespace maybe?").
- An in-cluster operator recreates what A5 deletes: Google's
  ``scripts/migration/migrate-to-asm`` (anthos-service-mesh-packages, tag 1.19.10-asm.9+config1)
  ``remove_istio`` runs ``kubectl delete ns istio-operator --ignore-not-found=true`` (line 1492)
  before deleting the old istiod. The operator is Deployment ``istio-operator`` (release-1.6
  ``manifests/charts/istio-operator/templates/deployment.yaml`` lines 1-10, namespace
  ``istio-operator`` from values.yaml line 3) or ``istio-operator-REV`` (release-1.16, same file
  lines 1-14), selector ``name: istio-operator``.
- Service ``istiod``: the kpt package's ``asm/istio/istiod-service.yaml`` at tag
  1.19.10-asm.9+config1, lines 19-46, with the ``ASM_REV`` setter set to the revision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshca import plan

from harness import ROOT

FAKE = Path(__file__).parent / "fakes" / "workloads"
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
DEV = "--context gke_acme-mesh-dev_us-central1_dev-1"
XF = "issue 9 finding 13: "


def kpt_istiod_service(rev: str) -> dict:
    """asm/istio/istiod-service.yaml (tag 1.19.10-asm.9+config1) lines 19-46, ASM_REV = rev."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"istio.io/rev": rev, "app": "istiod", "istio": "pilot", "release": "istio"}},
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": {"app": "istiod", "istio.io/rev": rev},
        },
    }


def at(stack: str, phase: str):
    from meshca.config import load_stack_file

    c = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    rev = {"distribute-root": c.rev1, "distribute-root-done": c.rev1, "mesh-ca": c.rev2, "mesh-ca-done": c.rev2}[phase]
    return plan.build(c.at(phase, False, {n.name: rev for n in c.namespaces}), {cl.name: plan.CACERTS_MATCHING for cl in c.clusters}).clusters[0]


# ----------------------------------------------------------------------------- the istiod Service


@pytest.mark.parametrize("phase, procedure, rev", [("distribute-root-done", "A5", REV1), ("mesh-ca-done", "B4", REV2)])
def test_the_istiod_service_step_reads_no_local_file_and_applies_the_kpt_packages_service(phase, procedure, rev):
    step = at("dev", phase).step(f"{procedure}.apply-istiod-service")
    assert " ".join(step.argv) == f"kubectl {DEV} apply -f -"
    assert "asm-out" not in " ".join(step.argv) and "file" not in step.params
    assert yaml.safe_load(step.stdin) == kpt_istiod_service(rev)


# ----------------------------------------------------------------------------- the pre-flight steps


def test_pre_flight_steps_come_before_the_steps_that_need_them():
    a4 = at("dev", "distribute-root")
    pre = a4.step("A4.preflight")
    assert " ".join(pre.argv) == f".venv/bin/meshca preflight {DEV} --revision {REV1} --gateway-namespace istio-system"
    assert "A4.preflight" in a4.step("A4.gateway.istio-system.istio-ingressgateway").depends_on
    a5 = at("dev", "distribute-root-done")
    pre = a5.step("A5.preflight")
    assert " ".join(pre.argv) == f".venv/bin/meshca preflight {DEV} --revision {REV1} --no-operator"
    # the pre-flight comes first in A5: the default tag moves after it, the deletions after the tag
    assert "A5.preflight" in a5.step("A5.injection-labels").depends_on
    b3 = at("dev", "mesh-ca")
    assert " ".join(b3.step("B3.preflight").argv) == f".venv/bin/meshca preflight {DEV} --revision {REV2} --gateway-namespace istio-system"
    assert "B3.preflight" in b3.step("B3.gateway.istio-system.istio-ingressgateway").depends_on
    b4 = at("dev", "mesh-ca-done")
    assert " ".join(b4.step("B4.preflight").argv) == f".venv/bin/meshca preflight {DEV} --revision {REV2} --no-operator"
    assert "B4.preflight" in b4.step("B4.injection-labels").depends_on


# ----------------------------------------------------------------------------- meshca preflight


def fake_state(tmp_path: Path, **overrides) -> None:
    state = {
        "istiod": {f"istiod-{REV1}": 1},
        "namespaces": {"istio-system": {"labels": {}, "workloads": [{"kind": "Deployment", "name": "istio-ingressgateway"}]}, "shop": {"labels": {"istio.io/rev": REV1}}},
    }
    state.update(overrides)
    (tmp_path / "state.json").write_text(json.dumps(state))


def preflight(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list]:
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {**os.environ, "PATH": f"{FAKE}:{os.environ['PATH']}", "MESHCA_STATE": str(tmp_path / "state.json"), "MESHCA_FAKE_LOG": str(log)}
    proc = subprocess.run([sys.executable, "-m", "meshca", "preflight", "--context", "ctx", "--revision", REV1, *args], capture_output=True, text=True, env=env)
    return proc, [json.loads(line) for line in log.read_text().splitlines()]


def test_a_clean_cluster_passes(tmp_path):
    fake_state(tmp_path)
    proc, calls = preflight(tmp_path, "--gateway-namespace", "istio-system", "--no-operator")
    assert proc.returncode == 0, proc.stderr
    assert calls == [["--context", "ctx", "get", "namespace", "istio-system", "-o", "json"], ["--context", "ctx", "get", "deployments", "-A", "-o", "json"]]


@pytest.mark.parametrize("value", ["disabled", "enabled"])
def test_an_injection_label_on_the_gateway_namespace_is_refused(tmp_path, value):
    fake_state(tmp_path, namespaces={"istio-system": {"labels": {"istio-injection": value}}})
    proc, _ = preflight(tmp_path, "--gateway-namespace", "istio-system")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert f"MCA0854 namespace/istio-system: namespace istio-system carries istio-injection={value}" in line
    assert f"kubectl label namespace istio-system istio-injection-" in line


@pytest.mark.parametrize("name", ["istio-operator", "istio-operator-1-16-7"])
def test_a_running_in_cluster_operator_is_refused(tmp_path, name):
    operator = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "istio-operator"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "istio-operator"}}},
    }
    fake_state(tmp_path, deployments=[operator])
    proc, _ = preflight(tmp_path, "--no-operator")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert f"MCA0855 istio-operator/{name}: " in line
    assert "kubectl delete ns istio-operator" in line
    # scaled to zero, it reconciles nothing
    operator["spec"]["replicas"] = 0
    fake_state(tmp_path, deployments=[operator])
    proc, _ = preflight(tmp_path, "--no-operator")
    assert proc.returncode == 0, proc.stderr


def test_an_unreachable_cluster_is_named(tmp_path):
    fake_state(tmp_path, unreachable="Unable to connect to the server: dial tcp 127.0.0.1:6443: i/o timeout")
    proc, _ = preflight(tmp_path, "--no-operator")
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert "MCA0421 context ctx: cannot reach the Kubernetes API server (Unable to connect to the server" in line
