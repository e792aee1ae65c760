"""``SimSource``: one simulated cluster as a ``ProxySource`` (meshca/trust/source.py).

Pods are the Kubernetes JSON a real API server returns (containers or native-sidecar
initContainers named ``istio-proxy``, labels, ownerReferences, ``status.phase``); Secrets
carry base64 ``data``; ``istio-REV`` ConfigMaps a ``mesh`` YAML key; dumps are rendered by
``meshca.trust.dumps`` in the spelling of the gate's ``--source``: ``kube`` reads Envoy's admin
``config_dump`` (snake_case, wrapped), ``istioctl`` its camelCase ``proxy-config secret``.
So a gate in the rehearsal runs the same ``run_check`` and returns the same JSON as
``meshca check`` against a live cluster.
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import serialization

from ..errors import MeshcaError
from ..trust.dumps import DEFAULT, ROOTCA, render_item, render_items
from ..trust.source import SourceError
from .mesh import Cluster, Pod, Workload, _digest

GATEWAY_CREDENTIAL = "kubernetes://ingress-credential"
OWNER_KIND = {"Deployment": "ReplicaSet", "StatefulSet": "StatefulSet", "DaemonSet": "DaemonSet"}


def pod_json(cluster: Cluster, pod: Pod) -> dict:
    w = pod.workload
    labels = dict(pod.labels)
    owner = w.name
    if w.bare:
        owner = None
    elif w.kind == "Deployment":
        pth = pod.name[len(w.name) + 1 :].rsplit("-", 1)[0]
        labels["pod-template-hash"] = pth
        owner = f"{w.name}-{pth}"
    app = {"name": "app", "image": f"example/{w.name}:1"}
    containers = [] if w.gateway else [app]
    init: list[dict] = []
    annotations: dict[str, str] = {}
    if pod.meshed:
        proxy = {
            "name": "istio-proxy",
            "image": "gcr.io/gke-release/asm/proxyv2:1.19.10-asm.9",
            "args": ["proxy", "router" if w.gateway else "sidecar"],
        }
        if w.native_sidecar and not w.gateway:
            init.append({**proxy, "restartPolicy": "Always"})
        else:
            containers.append(proxy)
        if w.bound_revision is None:
            _record_injection(pod, labels, annotations)
    spec: dict = {"serviceAccountName": w.service_account, "containers": containers}
    if init:
        spec["initContainers"] = init
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": _digest(cluster.name, pod.namespace, pod.name, n=32),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": OWNER_KIND[w.kind], "name": owner, "controller": True}] if owner else [],
        },
        "spec": spec,
        "status": {"phase": "Running"},
    }


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # what json.dumps(obj, separators=(",", ":")) builds on every call


def _record_injection(pod: Pod, labels: dict, annotations: dict) -> None:
    """How the injector of ``pod.injector``'s Istio version records the revision (istio/istio):

    - 1.6: the pod LABEL ``istio.io/rev`` = istiod's REVISION, ``""`` for the default revision
      (release-1.6 ``pkg/kube/inject/webhook.go`` line 620; ``addLabels`` lines 493-523 keeps a
      non-empty value the pod already has; ``pilot/pkg/bootstrap/options.go`` line 136); its
      ``sidecar.istio.io/status`` has no revision (``pkg/kube/inject/inject.go`` lines 1017-1023).
    - 1.16: only ``sidecar.istio.io/status`` ``.revision`` (release-1.16 ``pkg/kube/inject/webhook.go``
      ``getInjectionStatus``, lines 317-342).
    - 1.19: that, and the ANNOTATION ``istio.io/rev`` (release-1.19
      ``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`` line 39,
      ``gateway-injection-template.yaml`` line 8).
    """
    containers = ["istio-proxy"] if pod.workload.gateway else ["app", "istio-proxy"]
    if pod.injector == "1.6":
        if not labels.get("istio.io/rev"):
            labels["istio.io/rev"] = "" if pod.revision == "default" else str(pod.revision)
        status = {"version": "istio-on-gke-1.6", "initContainers": ["istio-init"], "containers": containers, "volumes": ["istio-envoy", "istio-certs"], "imagePullSecrets": None}
    else:
        status = {"initContainers": ["istio-init"], "containers": containers, "volumes": ["istio-envoy", "istio-data"], "imagePullSecrets": None, "revision": pod.revision}
        if pod.injector != "1.16":
            annotations["istio.io/rev"] = str(pod.revision)
    annotations["sidecar.istio.io/status"] = _COMPACT.encode(status)  # json.dumps(status, separators=(",", ":"))


def workload_json(w: Workload) -> dict:
    selector = {k: v for k, v in w.template_labels.items() if k not in ("istio.io/rev", "sidecar.istio.io/inject")}
    if w.manifest:
        selector = ((w.manifest.get("spec") or {}).get("selector") or {}).get("matchLabels") or selector
    return {
        "apiVersion": "apps/v1",
        "kind": w.kind,
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": dict(w.labels)},
        "spec": {"selector": {"matchLabels": selector}, "template": {"metadata": {"labels": dict(w.template_labels), "annotations": dict(w.template_annotations)}}},
    }


_DUMPS: dict[tuple, tuple[object, tuple, bytes]] = {}
_DUMPS_MAX = 16384
_ITEMS: dict[tuple, tuple[object, str]] = {}  # one rendered secret, by (spelling, name, id of what it renders)


def _item(style: str, name: str, owner, render) -> str:
    """A secret rendered once per (spelling, name, object): ``owner`` (a credential or a
    bundle tuple) is held by the memo, so its id is not reused while it is there."""
    key = (style, name, id(owner))
    hit = _ITEMS.get(key)
    if hit is not None and hit[0] is owner:
        return hit[1]
    text = render()
    if len(_ITEMS) >= _DUMPS_MAX:
        _ITEMS.clear()
    _ITEMS[key] = (owner, text)
    return text


def _bundle_item(style: str, bundle: tuple) -> str:
    key = (style, ROOTCA, tuple(map(id, bundle)))
    hit = _ITEMS.get(key)
    if hit is not None:  # held objects keep their ids: a key found is these very roots
        return hit[1]
    text = render_item(ROOTCA, "ca", b"".join(r.public_bytes(serialization.Encoding.PEM) for r in bundle), style)
    if len(_ITEMS) >= _DUMPS_MAX:
        _ITEMS.clear()
    _ITEMS[key] = (bundle, text)
    return text


def _rendered(style: str, gateway: bool, credential, bundle: tuple) -> bytes:
    """A proxy's dump bytes, rendered once per (spelling, chain, bundle): the same proxy state
    always dumps the same bytes (what ``meshca.trust.dumps.render_dump`` would write again;
    each secret is rendered once and the dump assembled by ``render_items``)."""
    key = (style, gateway, id(credential), tuple(map(id, bundle)))
    hit = _DUMPS.get(key)
    if hit is not None:  # the entry holds the very objects whose ids make its key: they are these
        return hit[2]
    items: list[str] = []
    if credential is not None:
        chain = _item(style, DEFAULT, credential, lambda: render_item(DEFAULT, "cert", credential.chain_pem, style))
        if gateway:
            # Gateways list credentials of their own before the workload's: select by name.
            items.append(_item(style, GATEWAY_CREDENTIAL, credential, lambda: render_item(GATEWAY_CREDENTIAL, "cert", credential.chain_pem, style)))
        items.append(chain)
    items.append(_bundle_item(style, bundle))
    data = render_items(items, style)
    if len(_DUMPS) >= _DUMPS_MAX:
        _DUMPS.clear()
    _DUMPS[key] = (credential, bundle, data)  # holding the objects keeps their ids unique
    return data


def _listed_json(cluster: Cluster, pod: Pod) -> dict:
    """``pod_json`` of a pod as a list returns it, once per pod (kept on the pod): what it renders
    (name, labels, revision, owner, containers) is fixed when the pod is created. Readers never
    change it."""
    if pod.listed is None:
        pod.listed = pod_json(cluster, pod)
    return pod.listed


class SimSource:
    """A ProxySource over one simulated cluster."""

    in_process = True  # answers from memory: the check runner calls it on its own thread, in order

    def __init__(self, cluster: Cluster, style: str = "snake") -> None:
        self.cluster = cluster
        self.style = style
        self.name = f"sim:{cluster.name}"
        self.fetches = 0
        self._listed: dict[tuple[str, str], Pod] = {}  # the pods list_pods returned, by namespace/name

    def _reachable(self) -> None:
        if not self.cluster.reachable:
            raise MeshcaError("ApiServerUnreachable", f"context {self.cluster.context}", reason="the simulated cluster is unreachable")

    def list_namespaces(self) -> list[str]:
        self._reachable()
        return sorted(self.cluster.namespaces)

    def list_pods(self, namespaces: list[str] | None) -> list[dict]:
        self._reachable()
        wanted = set(namespaces) if namespaces is not None else None
        out = []
        for w in sorted(self.cluster.workloads.values(), key=lambda w: (w.namespace, w.name)):
            if wanted is not None and w.namespace not in wanted:
                continue
            for p in w.pods:
                out.append(_listed_json(self.cluster, p))
                self._listed[(p.namespace, p.name)] = p
        return out

    def read_secret(self, name: str, namespace: str = "istio-system") -> dict | None:
        self._reachable()
        data = self.cluster.secrets.get((namespace, name))
        if data is None:
            return None
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }

    def read_configmap(self, name: str, namespace: str = "istio-system") -> dict | None:
        self._reachable()
        obj = self.cluster.objects.get(("ConfigMap", namespace, name))
        return json.loads(json.dumps(obj)) if obj is not None else None

    def pod(self, pod: dict) -> Pod:
        meta = pod.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name")
        listed = self._listed.get((ns, name))
        if listed is not None and self.cluster.workloads.get(listed.workload.key) is listed.workload:
            for p in listed.workload.pods:
                if p is listed:
                    return listed
        for w in self.cluster.workloads.values():
            if w.namespace != ns:
                continue
            for p in w.pods:
                if p.name == name:
                    return p
        raise SourceError(f"pod {ns}/{name} not found (deleted since it was listed)")

    def fetch_dump(self, pod: dict) -> bytes:
        self._reachable()
        self.fetches += 1
        p = self.pod(pod)
        if not p.meshed:
            raise SourceError(f"pod {p.namespace}/{p.name} has no istio-proxy")
        return _rendered(self.style, p.workload.gateway, p.credential, p.bundle)
