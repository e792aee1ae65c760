"""Issue 9 finding 12: a pod's revision, read as each Istio injector writes it.

The pods below are transcribed from istio/istio, not computed by meshca:

- Istio 1.6 (Istio on GKE): ``pkg/kube/inject/webhook.go`` (release-1.6) ``createPatch`` adds the
  pod LABEL ``istio.io/rev`` with the injector's revision (line 620, through ``addLabels``,
  lines 493-523, which adds it only where the pod has no non-empty value, line 518). The revision
  is istiod's ``REVISION`` env, default ``""`` (``pilot/pkg/bootstrap/options.go`` line 136): the
  default revision writes an EMPTY label. Its ``sidecar.istio.io/status`` annotation has no
  revision (``pkg/kube/inject/inject.go`` lines 1017-1023: version, initContainers, containers,
  volumes, imagePullSecrets).
- Istio 1.16 (CSM 1.15/1.16): no ``istio.io/rev`` in the injection template's metadata
  (``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`` lines 29-37,
  release-1.16) and none added by the webhook; the revision is the ``revision`` field of the
  ``sidecar.istio.io/status`` annotation (``pkg/kube/inject/webhook.go`` ``getInjectionStatus``
  lines 317-342: "Rather than setting istio.io/rev label on injected pods include them here in
  status annotation", ``""`` written as ``default``; field order ``pkg/kube/inject/inject.go``
  lines 819-825).
- Istio 1.19 (asmcli 1.19.10): the ANNOTATION ``istio.io/rev: {{ .Revision | default "default" }}``
  (``injection-template.yaml`` line 39, release-1.19; ``gateway-injection-template.yaml`` line 8
  for gateways) and the same status annotation (``pkg/kube/inject/webhook.go`` lines 389-414).
  A pod label ``istio.io/rev`` on 1.16+ is the user's injector selector (a tag or a revision),
  never the injector's record.
"""

from __future__ import annotations

import json

import pytest

from meshca.restart import plan_restart
from meshca.trust.runner import pod_revision as gate_revision

OWNER = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6", "controller": True}]
SPEC = {
    "initContainers": [{"name": "istio-init", "image": "proxyv2"}],
    "containers": [{"name": "web", "image": "example/web:1"}, {"name": "istio-proxy", "image": "proxyv2", "args": ["proxy", "sidecar"]}],
}


def status_16_19(revision: str) -> str:
    # json.Marshal of SidecarInjectionStatus (release-1.16 inject.go 819-825; release-1.19 813-819)
    return json.dumps(
        {"initContainers": ["istio-init"], "containers": ["web", "istio-proxy"], "volumes": ["istio-envoy", "istio-data"], "imagePullSecrets": None, "revision": revision},
        separators=(",", ":"),
    )


def pod(labels: dict, annotations: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-7d4b9c8f6-x2b9q", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6", **labels}, "annotations": annotations, "ownerReferences": OWNER},
        "spec": SPEC,
        "status": {"phase": "Running"},
    }


def istio_16(revision: str) -> dict:
    """Istio 1.6: label istio.io/rev = REVISION ("" for the default revision), status without revision."""
    status = json.dumps({"version": "4c3ab3d2b5c8", "initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": ["istio-envoy", "istio-certs"], "imagePullSecrets": None}, separators=(",", ":"))
    return pod(
        {"istio.io/rev": "" if revision == "default" else revision, "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": "web", "service.istio.io/canonical-revision": "latest"},
        {"sidecar.istio.io/status": status},
    )


def istio_1_16(revision: str, selector_label: str | None = None) -> dict:
    """Istio 1.16: the revision only in sidecar.istio.io/status; a pod label istio.io/rev, if any, is the user's selector."""
    labels = {"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": "web", "service.istio.io/canonical-revision": "latest"}
    if selector_label is not None:
        labels["istio.io/rev"] = selector_label
    return pod(labels, {"sidecar.istio.io/status": status_16_19(revision), "kubectl.kubernetes.io/default-container": "web"})


def istio_1_19(revision: str) -> dict:
    """Istio 1.19: annotation istio.io/rev (default "default") and the status annotation with the revision."""
    labels = {"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": "web", "service.istio.io/canonical-revision": "latest"}
    return pod(labels, {"istio.io/rev": revision, "sidecar.istio.io/status": status_16_19(revision), "kubectl.kubernetes.io/default-container": "web"})


WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}}

CASES = [
    pytest.param(istio_16("default"), "default", id="1.6-default-empty-label"),
    pytest.param(istio_16("canary"), "canary", id="1.6-named-revision"),
    pytest.param(istio_1_16("asm-1169-3"), "asm-1169-3", id="1.16-status"),
    pytest.param(istio_1_16("default"), "default", id="1.16-default-status"),
    pytest.param(istio_1_16("asm-1169-3", selector_label="prod-stable"), "asm-1169-3", id="1.16-tag-selected"),
    pytest.param(istio_1_19("asm-11910-9"), "asm-11910-9", id="1.19-annotation"),
    pytest.param(istio_1_19("default"), "default", id="1.19-default"),
]


@pytest.mark.parametrize("the_pod, revision", CASES)
def test_restart_skips_a_workload_whose_pods_the_target_revision_injected(the_pod, revision):
    todo, orphans = plan_restart([WEB], [the_pod], revision)
    assert todo == [] and orphans == []


@pytest.mark.parametrize(
    "the_pod, other",
    [
        pytest.param(istio_16("default"), "asm-11910-9-distribute-root", id="1.6-default"),
        pytest.param(istio_1_16("asm-1169-3", selector_label="asm-11910-9"), "asm-11910-9", id="1.16-selector-label-is-not-the-injector"),
        pytest.param(istio_1_19("asm-11910-9-distribute-root"), "asm-11910-9-mesh-ca", id="1.19-rev1-to-rev2"),
    ],
)
def test_restart_restarts_a_workload_injected_by_another_revision(the_pod, other):
    todo, _ = plan_restart([WEB], [the_pod], other)
    assert todo == [("Deployment", "web")]


@pytest.mark.parametrize(
    "the_pod, revision",
    [
        pytest.param(istio_16("default"), "default", id="1.6-default"),
        pytest.param(istio_16("canary"), "canary", id="1.6-named"),
        pytest.param(istio_1_16("asm-1169-3"), "asm-1169-3", id="1.16"),
        pytest.param(istio_1_16("asm-1169-3", selector_label="prod-stable"), "asm-1169-3", id="1.16-tag-selected"),
        pytest.param(istio_1_19("asm-11910-9"), "asm-11910-9", id="1.19"),
    ],
)
def test_gates_report_the_revision_that_injected_the_pod(the_pod, revision):
    assert gate_revision(the_pod) == revision


@pytest.mark.parametrize("the_pod, revision", CASES)
def test_webhook_probe_and_gateway_cutover_read_the_same_revision(the_pod, revision):
    # meshca/webhooks.py (the default tag's dry-run probe) and meshca/gateway.py (which pods serve a
    # gateway) once kept a reader of their own that knew only the 1.19 annotation and the status
    # field: a 1.6 pod of a named revision read as "default" there.
    from meshca.webhooks import injected_revision as webhook_revision

    assert webhook_revision(the_pod) == revision


def test_webhook_probe_without_a_sidecar_reads_no_revision():
    from meshca.webhooks import injected_revision as webhook_revision

    bare = pod({}, {})
    bare["spec"] = {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.9"}]}
    assert webhook_revision(bare) is None
