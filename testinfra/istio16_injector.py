"""The OLD mesh's injector for seeding e2e clusters: what Istio on GKE 1.6's istiod writes into a pod.

TEST INFRASTRUCTURE. The smoke seeds a cluster as Istio on GKE looks before the migration
(procedure.md, use case ``migrate``): app namespaces labelled ``istio-injection=enabled`` whose
pods were injected by the 1.6 ``default`` revision. The real API server calls this webhook (the
seed's ``istio-sidecar-injector`` MutatingWebhookConfiguration, 1.6 form, at a loopback URL) when
the seed's Deployments create their pods, so the pods carry the 1.6 injection in the same way a
real cluster's would. The 1.19 revisions the migration installs are injected by the injector
stand-in (standins/injector.py), not by this.

What a pod gets, from istio/istio at tag 1.6.14 (only the parts anything here reads, in their 1.6
shape; the proxy never runs):
- ``pkg/kube/inject/webhook.go:616-621``: labels ``security.istio.io/tlsMode: istio``,
  ``service.istio.io/canonical-name`` / ``-revision`` (``extractCanonicalServiceLabels``, :649-690)
  and ``istio.io/rev: <revision>``, the EMPTY string for the default install (1.6 has no revision
  annotation);
- ``pkg/kube/inject/webhook.go:826`` + ``inject.go:1017-1023``: annotation ``sidecar.istio.io/status``
  ``{"version", "initContainers", "containers", "volumes", "imagePullSecrets"}`` (no ``revision``);
- ``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml``: init container
  ``istio-init`` (:7-34, ``istio-iptables``), container ``istio-proxy`` (:113-165: ``proxy sidecar``,
  port 15090, ``CA_ADDR`` of Service istiod), volumes (:350-385: istio-envoy, istio-data,
  istio-podinfo, istio-token, istiod-ca-cert);
- skipped as 1.6 skips: ``sidecar.istio.io/inject: "false"``, host network, already injected.

Usage: python -m testinfra.istio16_injector --listen 127.0.0.1:0 --cert-dir DIR --ready-file FILE
(writes ``{"url", "caBundle"}`` to FILE once serving; POST /inject). The HTTPS admission server is
testinfra/seed_webhook.py; this module gives it the 1.6 injection.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    from testinfra import seed_webhook
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from testinfra import seed_webhook

PROXY_IMAGE = "gke.gcr.io/istio/proxyv2:1.6.14-gke.1"
TEMPLATE_VERSION = "istio-1.6.14-gke.1 (testinfra/istio16_injector.py)"
VOLUMES = ["istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"]


def canonical(labels: dict, workload: str) -> tuple[str, str]:
    """webhook.go:649-690 extractCanonicalServiceLabels."""
    name = labels.get("service.istio.io/canonical-name") or labels.get("app.kubernetes.io/name") or labels.get("app") or workload
    rev = labels.get("service.istio.io/canonical-revision") or labels.get("app.kubernetes.io/version") or labels.get("version") or "latest"
    return name, rev


def workload_name(pod: dict) -> str:
    md = pod.get("metadata") or {}
    owners = md.get("ownerReferences") or []
    name = md.get("generateName") or md.get("name") or ""
    if owners and owners[0].get("kind") == "ReplicaSet":
        # ReplicaSet NAME-HASH; the pod's generateName is NAME-HASH-
        parts = owners[0].get("name", "").rsplit("-", 1)
        return parts[0]
    return name.rstrip("-")


def patch_for(pod: dict, namespace: str, revision: str = "") -> list[dict] | None:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    annotations = dict(md.get("annotations") or {})
    labels = dict(md.get("labels") or {})
    if annotations.get("sidecar.istio.io/inject", "").lower() in ("false", "no", "n", "f", "off") or spec.get("hostNetwork"):
        return None
    if "sidecar.istio.io/status" in annotations:
        return None
    app = labels.get("app") or workload_name(pod)
    init = {
        "name": "istio-init", "image": PROXY_IMAGE, "imagePullPolicy": "Always",
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*",
                 "-d", "15090,15021,15020"],
        "resources": {}, "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
    }
    proxy = {
        "name": "istio-proxy", "image": PROXY_IMAGE,
        "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local", "--serviceCluster", f"{app}.$(POD_NAMESPACE)",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--trust-domain=cluster.local", "--concurrency", "2"],
        "env": [
            {"name": "JWT_POLICY", "value": "third-party-jwt"},
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": f"istiod{'-' + revision if revision else ''}.istio-system.svc:15012"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "initialDelaySeconds": 1, "periodSeconds": 2},
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
                         {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
                         {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
                         {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
                         {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"}],
    }
    volumes = [
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}},
        {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {"path": "istio-token", "expirationSeconds": 43200,
                                                                                   "audience": "istio-ca"}}]}},
        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
    ]
    status = {"version": TEMPLATE_VERSION, "initContainers": ["istio-init"], "containers": ["istio-proxy"], "volumes": VOLUMES,
              "imagePullSecrets": None}
    svc, svc_rev = canonical(labels, workload_name(pod))
    labels.update({"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": svc,
                   "service.istio.io/canonical-revision": svc_rev, "istio.io/rev": revision})
    annotations["sidecar.istio.io/status"] = json.dumps(status, separators=(",", ":"))
    ops: list[dict] = []
    if spec.get("initContainers"):
        ops.append({"op": "add", "path": "/spec/initContainers/-", "value": init})
    else:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": [init]})
    ops.append({"op": "add", "path": "/spec/containers/-", "value": proxy})
    if spec.get("volumes"):
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    else:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    ops.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
    ops.append({"op": "add", "path": "/metadata/labels", "value": labels})
    return ops


def inject(req: dict) -> list[dict] | None:
    """The 1.6 injection of an AdmissionRequest's pod (the default revision)."""
    ops = patch_for(req.get("object") or {}, req.get("namespace") or "")
    if ops:
        pod = req.get("object") or {}
        sys.stderr.write(f"istio16-injector: injected {req.get('namespace')}/{(pod.get('metadata') or {}).get('generateName', '')}\n")
    return ops


def main(argv: list[str] | None = None) -> int:
    return seed_webhook.main("istio16-injector", "Istio 1.6 injection webhook for seeding e2e clusters (test infrastructure)",
                             lambda args: inject, argv)


if __name__ == "__main__":
    sys.exit(main())
