"""The OLD mesh's injector for seeding the csm116 e2e clusters: what CSM 1.16's istiod writes into a pod.

TEST INFRASTRUCTURE. tests/e2e/test_route_csm116.py seeds clusters as Cloud Service Mesh 1.16
with Istio CA looks before the migration (procedure.md, use case ``upgrade``): namespaces labelled
``istio.io/rev=OLD_REVISION`` whose pods were injected by that revision, and an ingress gateway
injected with the gateway template. The real API server calls this webhook (the seed's
``istio-sidecar-injector-OLD`` MutatingWebhookConfiguration, 1.16 form, at a loopback URL).
The 1.19 revisions the migration installs are injected by the injector stand-in
(standins/injector.py), not by this.

What a pod gets, from istio/istio at tag 1.16.7 (only the parts anything here reads, in their 1.16
shape; the proxy never runs):
- ``pkg/kube/inject/webhook.go:317-342`` (``getInjectionStatus``): annotation
  ``sidecar.istio.io/status`` ``{"initContainers", "containers", "volumes", "imagePullSecrets",
  "revision"}`` with the REVISION (``default`` when empty); 1.16 sets NO ``istio.io/rev``
  annotation and, for sidecars, no ``istio.io/rev`` pod label ("Rather than setting istio.io/rev
  label on injected pods include them here in status annotation", :334-335);
- ``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml``: labels
  ``security.istio.io/tlsMode`` and ``service.istio.io/canonical-name``/``-revision`` (:29-35),
  annotations ``kubectl.kubernetes.io/default-container``/``-logs-container`` (:36-44), init
  container ``istio-init`` and container ``istio-proxy`` (:188, ``CA_ADDR`` :236,
  ``TRUST_DOMAIN`` :308);
- ``files/gateway-injection-template.yaml`` (``inject.istio.io/templates: gateway``): the
  canonical labels and ``istio.io/rev`` (the pod's own label, else the revision) (:4-7), the
  ``istio-proxy`` container (``proxy router``, :15-33) replacing the pod's ``image: auto``
  placeholder, no init container;
- skipped as istiod skips: ``sidecar.istio.io/inject`` false-y, host network, already injected.

Usage: python -m testinfra.istio116_injector --revision REV --listen 127.0.0.1:0 --cert-dir DIR
--ready-file FILE (writes ``{"url", "caBundle"}`` to FILE once serving; POST /inject; POST
/validate allows everything: the old revision's validator is only seeded to be deleted). The HTTPS
admission server is testinfra/seed_webhook.py; this module gives it the 1.16 injection of REV.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from testinfra import seed_webhook
    from testinfra.istio16_injector import canonical, workload_name
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from testinfra import seed_webhook
    from testinfra.istio16_injector import canonical, workload_name

PROXY_IMAGE = "gcr.io/gke-release/asm/proxyv2:1.16.7-asm.3"
VOLUMES = ["workload-socket", "credential-socket", "workload-certs", "istio-envoy", "istio-data", "istio-podinfo",
           "istio-token", "istiod-ca-cert"]


def _proxy(revision: str, router: bool, app: str) -> dict:
    args = ["proxy", "router" if router else "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
            "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"]
    return {
        "name": "istio-proxy", "image": PROXY_IMAGE,
        "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
        "args": args,
        "env": [
            {"name": "JWT_POLICY", "value": "third-party-jwt"},
            {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
            {"name": "CA_ADDR", "value": f"istiod{'' if revision == 'default' else '-' + revision}.istio-system.svc:15012"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "ISTIO_META_APP_CONTAINERS", "value": app},
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
            {"name": "TRUST_DOMAIN", "value": "cluster.local"},
        ],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "initialDelaySeconds": 1, "periodSeconds": 2},
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},
                         {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
                         {"name": "istio-data", "mountPath": "/var/lib/istio/data"},
                         {"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
                         {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"},
                         {"name": "istio-podinfo", "mountPath": "/etc/istio/pod"}],
    }


def _volumes() -> list[dict]:
    return [
        {"name": "workload-socket", "emptyDir": {}},
        {"name": "credential-socket", "emptyDir": {}},
        {"name": "workload-certs", "emptyDir": {}},
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
        {"name": "istio-data", "emptyDir": {}},
        {"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}},
        {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {"path": "istio-token", "expirationSeconds": 43200,
                                                                                   "audience": "istio-ca"}}]}},
        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
    ]


def patch_for(pod: dict, revision: str) -> list[dict] | None:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    annotations = dict(md.get("annotations") or {})
    labels = dict(md.get("labels") or {})
    flag = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject", ""))
    if str(flag).lower() in ("false", "no", "n", "f", "off") or spec.get("hostNetwork"):
        return None
    if "sidecar.istio.io/status" in annotations:
        return None
    gateway = annotations.get("inject.istio.io/templates") == "gateway"
    app_containers = [c["name"] for c in spec.get("containers") or [] if c.get("name") != "istio-proxy"]
    svc, svc_rev = canonical(labels, workload_name(pod))
    labels.update({"service.istio.io/canonical-name": svc, "service.istio.io/canonical-revision": svc_rev})
    if gateway:
        labels["istio.io/rev"] = labels.get("istio.io/rev") or revision
    else:
        labels["security.istio.io/tlsMode"] = labels.get("security.istio.io/tlsMode") or "istio"
    if app_containers:
        annotations.setdefault("kubectl.kubernetes.io/default-logs-container", app_containers[0])
        annotations.setdefault("kubectl.kubernetes.io/default-container", app_containers[0])
    proxy = _proxy(revision, gateway, ",".join(app_containers))
    containers = [dict(c) for c in spec.get("containers") or []]
    ops: list[dict] = []
    init_names: list[str] = []
    if gateway:
        # The pod's own istio-proxy (image: auto) is merged with the template's; the template wins here.
        containers = [({**c, **proxy} if c.get("name") == "istio-proxy" else c) for c in containers]
        if not any(c.get("name") == "istio-proxy" for c in containers):
            containers.append(proxy)
    else:
        containers.append(proxy)
        init = {"name": "istio-init", "image": PROXY_IMAGE,
                "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "",
                         "-b", "*", "-d", "15090,15021,15020"],
                "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}}
        inits = list(spec.get("initContainers") or []) + [init]
        init_names = [c["name"] for c in inits]
        ops.append({"op": "add", "path": "/spec/initContainers", "value": inits})
    ops.append({"op": "replace" if spec.get("containers") else "add", "path": "/spec/containers", "value": containers})
    volumes = list(spec.get("volumes") or []) + _volumes()
    ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    status = {"initContainers": init_names or None, "containers": [c["name"] for c in containers],
              "volumes": [v["name"] for v in volumes], "imagePullSecrets": None, "revision": revision or "default"}
    annotations["sidecar.istio.io/status"] = json.dumps(status, separators=(",", ":"))
    ops.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
    ops.append({"op": "add", "path": "/metadata/labels", "value": labels})
    return ops


def main(argv: list[str] | None = None) -> int:
    def options(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--revision", required=True)

    def injector(args: argparse.Namespace) -> seed_webhook.Inject:
        return lambda req: patch_for(req.get("object") or {}, args.revision)

    return seed_webhook.main("istio116-injector", "CSM 1.16 injection webhook for seeding e2e clusters (test infrastructure)",
                             injector, argv, options)


if __name__ == "__main__":
    sys.exit(main())
