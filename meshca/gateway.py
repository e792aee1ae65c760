"""``meshca gateway clone|ready``: the canary gateway as a clone of the live one (issue 9 finding 9).

``clone`` reads the live gateway Deployment, the HorizontalPodAutoscaler that scales it and the
PodDisruptionBudget that selects its pods, and writes their canary copies by server-side
apply. The copy keeps the pod spec (replicas, resources, ports, user env and volumes,
affinity, tolerations, service account, ...) and takes the ``istio-proxy`` container in Istio
1.19's gateway-injection form (istio 1.19.10 ``manifests/charts/gateway/templates/deployment.yaml``
lines 26-49 and ``values.yaml`` line 30): ``image: auto``, pod label
``sidecar.istio.io/inject: "true"``, ``istio.io/rev: REV``, pod annotation
``inject.istio.io/templates: gateway``. What REV's injector writes itself is left out
(``gateway-injection-template.yaml``: the proxy's args, its env such as ``CA_ADDR`` and
``PILOT_CERT_PROVIDER``, its istio volumes): an Istio on GKE 1.6 gateway carries an explicit
``proxyv2`` image, ``CA_ADDR`` of the old istiod and the old revision's ConfigMap ``istio``
(1.6.14 ``manifests/charts/gateways/istio-ingress/templates/deployment.yaml``), which a verbatim
clone would keep. The selector adds ``meshca.io/gateway: NAME`` (never adopts the old pods;
immutable, so a later re-clone with another revision upgrades it in place).

``ready`` passes when the Service's EndpointSlices (label ``kubernetes.io/service-name``) hold
at least max(the old gateway's ready replicas, the HPA's minReplicas) ready endpoints whose pod
belongs to the canary (owned by ReplicaSet ``NAME-<pod-template-hash>``) and was injected by REV.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import yaml

from .errors import MeshcaError, MeshcaErrors
from .kubeaccess import require_cluster_access
from .webhooks import Kube, injected_revision

NAME_LABEL = "meshca.io/gateway"
# What istio 1.19.10's gateway-injection-template.yaml writes into the proxy (env, lines 45-137;
# volumes, lines 154-231), plus the Istio 1.6 gateway's own control-plane volumes.
INJECTED_ENV = {
    "JWT_POLICY", "PILOT_CERT_PROVIDER", "CA_ADDR", "POD_NAME", "POD_NAMESPACE", "INSTANCE_IP", "SERVICE_ACCOUNT",
    "HOST_IP", "ISTIO_CPU_LIMIT", "PROXY_CONFIG", "GOMEMLIMIT", "GOMAXPROCS", "COMPLIANCE_POLICY", "TRUST_DOMAIN", "NODE_NAME",
}
INJECTED_VOLUMES = {
    "workload-socket", "credential-socket", "gke-workload-certificate", "workload-certs", "istio-envoy", "istio-data",
    "istio-podinfo", "istio-token", "istiod-ca-cert", "istio-certs",
    # Istio 1.6.14 gateway chart: bound to the old control plane
    "podinfo", "ingressgatewaysdsudspath", "config-volume",
}
DROP_ANNOTATIONS = ("sidecar.istio.io/inject", "sidecar.istio.io/status", "kubectl.kubernetes.io/restartedAt")


def _injected_env(name: str) -> bool:
    return name in INJECTED_ENV or name.startswith("ISTIO_META_")


def _proxy(container: dict, keep_volumes: set[str]) -> dict:
    out = {"name": "istio-proxy", "image": "auto"}
    for key in ("resources", "ports", "securityContext", "lifecycle"):
        if key in container:
            out[key] = copy.deepcopy(container[key])
    env = [e for e in container.get("env") or () if not _injected_env(e.get("name", ""))]
    if env:
        out["env"] = copy.deepcopy(env)
    mounts = [m for m in container.get("volumeMounts") or () if m.get("name") in keep_volumes]
    if mounts:
        out["volumeMounts"] = copy.deepcopy(mounts)
    return out


def clone_objects(deployment: dict, hpa: dict | None, pdb: dict | None, *, name: str, revision: str) -> list[dict]:
    """The canary's Deployment (and HPA, PDB when the live gateway has them)."""
    meta, spec = deployment["metadata"], deployment["spec"]
    namespace = meta["namespace"]
    selector = {**(spec.get("selector") or {}).get("matchLabels", {}), NAME_LABEL: name}
    template = copy.deepcopy(spec["template"])
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **selector, "sidecar.istio.io/inject": "true", "istio.io/rev": revision}
    tmeta["labels"].pop("pod-template-hash", None)
    annotations = {k: v for k, v in (tmeta.get("annotations") or {}).items() if k not in DROP_ANNOTATIONS}
    tmeta["annotations"] = {**annotations, "inject.istio.io/templates": "gateway"}
    pod = template.setdefault("spec", {})
    keep_volumes = {v["name"] for v in pod.get("volumes") or () if v.get("name") not in INJECTED_VOLUMES}
    containers = []
    for c in pod.get("containers") or ():
        if c.get("name") == "istio-proxy":
            containers.append(_proxy(c, keep_volumes))
        else:
            containers.append(copy.deepcopy(c))
    if "istio-proxy" not in [c["name"] for c in containers]:
        containers.insert(0, {"name": "istio-proxy", "image": "auto"})
    pod["containers"] = containers
    volumes = [v for v in pod.get("volumes") or () if v.get("name") in keep_volumes]
    if volumes:
        pod["volumes"] = volumes
    else:
        pod.pop("volumes", None)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != "istio.io/rev"}
    out = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {**labels, "istio.io/rev": revision, "app.kubernetes.io/managed-by": "meshca"}},
            "spec": {
                **{k: copy.deepcopy(v) for k, v in spec.items() if k in ("replicas", "strategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")},
                "selector": {"matchLabels": selector},
                "template": template,
            },
        }
    ]
    if hpa is not None:
        hspec = copy.deepcopy(hpa["spec"])
        hspec["scaleTargetRef"] = {**hspec.get("scaleTargetRef", {}), "name": name}
        out.append({"apiVersion": hpa.get("apiVersion", "autoscaling/v2"), "kind": "HorizontalPodAutoscaler", "metadata": {"name": name, "namespace": namespace}, "spec": hspec})
    if pdb is not None:
        pspec = {k: copy.deepcopy(v) for k, v in pdb["spec"].items() if k != "selector"}
        pspec["selector"] = {"matchLabels": dict(selector)}
        out.append({"apiVersion": pdb.get("apiVersion", "policy/v1"), "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": namespace}, "spec": pspec})
    return out


def replicas_needed(old: dict | None, hpa: dict | None) -> int:
    ready = int(((old or {}).get("status") or {}).get("readyReplicas") or 0)
    minimum = int(((hpa or {}).get("spec") or {}).get("minReplicas") or 1)
    return max(ready, minimum, 1)


def _owner_rs(pod: dict) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "ReplicaSet":
            return ref.get("name")
    return None


def ready_canary_pods(slices: list[dict], pods: list[dict], *, name: str, revision: str) -> list[str]:
    """Names of ready endpoints' pods that the canary owns and REV injected."""
    by_name = {(p.get("metadata") or {}).get("name"): p for p in pods}
    out = set()
    for s in slices:
        for ep in s.get("endpoints") or ():
            ref = ep.get("targetRef") or {}
            if ref.get("kind") != "Pod" or not (ep.get("conditions") or {}).get("ready"):
                continue
            pod = by_name.get(ref.get("name"))
            if pod is None:
                continue
            rs = _owner_rs(pod) or ""
            template_hash = ((pod.get("metadata") or {}).get("labels") or {}).get("pod-template-hash")
            owned = rs == f"{name}-{template_hash}" if template_hash else rs.rsplit("-", 1)[0] == name
            if owned and injected_revision(pod) == revision:
                out.add(ref["name"])
    return sorted(out)


# ----------------------------------------------------------------------------- live cluster


def _get(kube, *args: str, optional: bool = False) -> dict | None:
    proc = kube.run("get", *args, "-o", "json")
    if proc.returncode != 0:
        if optional and "NotFound" in proc.stderr:
            return None
        raise MeshcaErrors([MeshcaError("GatewayReadFailed", " ".join(args), what="get " + " ".join(args[:2]), reason=(proc.stderr.strip() or "no output")[:200])])
    return json.loads(proc.stdout)


def live_objects(kube, namespace: str, deployment: str) -> tuple[dict, dict | None, dict | None]:
    dep = _get(kube, "deployment", deployment, "-n", namespace)
    hpas = _get(kube, "horizontalpodautoscaler", "-n", namespace)["items"]
    hpa = next((h for h in hpas if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == deployment), None)
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    pdbs = _get(kube, "poddisruptionbudget", "-n", namespace)["items"]
    selects = lambda p: ((p.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}  # noqa: E731
    pdb = next((p for p in pdbs if selects(p) and all(labels.get(k) == v for k, v in selects(p).items())), None)
    return dep, hpa, pdb


def clone(kube, namespace: str, deployment: str, service: str, name: str, revision: str) -> str:
    """Read the live objects, refuse a Service that would not select the clone, apply it."""
    dep, hpa, pdb = live_objects(kube, namespace, deployment)
    svc = _get(kube, "service", service, "-n", namespace)
    objs = clone_objects(dep, hpa, pdb, name=name, revision=revision)
    selector = (svc.get("spec") or {}).get("selector") or {}
    pod_labels = objs[0]["spec"]["template"]["metadata"]["labels"]
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        raise MeshcaErrors([MeshcaError("ServiceMissesCanary", f"Service {namespace}/{service}", selector=json.dumps(selector, sort_keys=True), deployment=deployment)])
    text = yaml.safe_dump_all(objs, sort_keys=False)
    proc = kube.run("apply", "--server-side", "--field-manager", "meshca", "-f", "-", stdin=text)
    if proc.returncode != 0:
        raise MeshcaErrors([MeshcaError("GatewayReadFailed", f"Deployment {namespace}/{name}", what="apply --server-side", reason=(proc.stderr.strip() or "no output")[:200])])
    return proc.stdout.strip()


def ready_check(kube, namespace: str, deployment: str, service: str, name: str, revision: str) -> tuple[list[str], int]:
    """(ready canary pods behind the Service, how many are needed), read once."""
    old = _get(kube, "deployment", deployment, "-n", namespace, optional=True)
    hpas = _get(kube, "horizontalpodautoscaler", "-n", namespace)["items"]
    hpa = next((h for h in hpas if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") in (name, deployment)), None)
    need = replicas_needed(old, hpa)
    slices = _get(kube, "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")["items"]
    pods = _get(kube, "pods", "-n", namespace)["items"]
    return ready_canary_pods(slices, pods, name=name, revision=revision), need


def not_serving(namespace: str, service: str, name: str, revision: str, ready: list[str], need: int) -> MeshcaError:
    return MeshcaError("CanaryNotServing", f"Service {namespace}/{service}", ready=len(ready), need=need, revision=revision, name=name, namespace=namespace)


def cmd_clone(args: argparse.Namespace) -> int:
    require_cluster_access(args.kubeconfig, args.context)
    print(clone(Kube(args.kubeconfig, args.context), args.namespace, args.deployment, args.service, args.name, args.revision))
    return 0


def cmd_ready(args: argparse.Namespace) -> int:
    require_cluster_access(args.kubeconfig, args.context)
    kube = Kube(args.kubeconfig, args.context)
    deadline = time.monotonic() + args.timeout
    while True:
        ready, need = ready_check(kube, args.namespace, args.deployment, args.service, args.name, args.revision)
        if len(ready) >= need:
            print(f"Service {args.namespace}/{args.service}: {len(ready)} ready {args.revision} canary endpoints (need {need})")
            return 0
        if time.monotonic() >= deadline:
            raise MeshcaErrors([not_serving(args.namespace, args.service, args.name, args.revision, ready, need)])
        time.sleep(min(args.poll, max(0.0, deadline - time.monotonic())))


def _seconds(text: str) -> float:
    return float(text[:-1]) if text.endswith("s") else float(text)


def register(subparsers) -> None:
    p = subparsers.add_parser("gateway", help="the canary gateway: clone the live one (A4), wait until it serves (before A5)")
    sub = p.add_subparsers(dest="gateway_command", required=True, parser_class=type(p))
    for verb, helptext in (("clone", "server-side apply the canary Deployment/HPA/PDB cloned from the live gateway"), ("ready", "wait until the Service's EndpointSlices hold enough ready canary pods of REV")):
        s = sub.add_parser(verb, help=helptext)
        s.add_argument("--kubeconfig")
        s.add_argument("--context")
        s.add_argument("--namespace", required=True)
        s.add_argument("--deployment", required=True, help="the live gateway Deployment")
        s.add_argument("--service", required=True)
        s.add_argument("--name", required=True, help="the canary Deployment")
        s.add_argument("--revision", required=True)
        if verb == "ready":
            s.add_argument("--timeout", type=_seconds, default=900.0)
            s.add_argument("--poll", type=float, default=5.0)
        s.set_defaults(func=cmd_clone if verb == "clone" else cmd_ready)
