"""The live mesh of one cluster, read once and judged in pure Python (discover, doctor, status).

``read(kubectl)`` runs only reads, with kubectl from PATH (restart.Kubectl):

    kubectl get namespaces -o json
    kubectl get deployments,statefulsets,daemonsets -A -o json
    kubectl get pods -A -o json
    kubectl get services,horizontalpodautoscalers,poddisruptionbudgets -A -o json
    kubectl get configmaps -n istio-system -o json
    kubectl get mutatingwebhookconfigurations,validatingwebhookconfigurations -o json
    kubectl get istiooperators.install.istio.io -n istio-system -o json   (absent CRD: none)
    kubectl get secrets cacerts istio-ca-secret -n istio-system --ignore-not-found -o json

and ``Snapshot`` answers from those objects alone, so every judgement is unit-tested on
literal objects. What each fact is read from:

- control planes: Deployments ``istiod`` / ``istiod-REV`` in istio-system, revision from their
  ``istio.io/rev`` label (``istiod`` without it is ``default``; istio/istio
  ``manifests/charts/istio-control/istio-discovery/templates/deployment.yaml``, ``istiod{{-
  if not (eq .Values.revision "") }}-{{ .Values.revision }}``); IstioOperators
  ``installed-state[-REV]`` and injector webhooks ``istio-sidecar-injector[-REV]`` name
  revisions too (left behind when their istiod is gone).
- what a revision signs with: its mesh config (ConfigMap ``istio-REV``, key ``mesh``):
  ``defaultConfig.proxyMetadata.CA_PROVIDER`` is ``Citadel`` for ``--ca citadel`` and
  ``GoogleCA`` for ``--ca mesh_ca`` (anthos-service-mesh-packages 1.19.10-asm.9+config1
  ``asm/istio/istio-operator.yaml`` and ``asm/istio/options/citadel-ca.yaml``), and
  ``caCertificates`` is set by ``ca-migration-citadel`` (``asm/istio/options/ca-migration-citadel.yaml``
  lines 27-66): a Citadel revision listing extra roots is a phase-A REV1.
- a namespace's revision: ``istio.io/rev=R`` is R, ``istio-injection=enabled`` the default
  revision (``default``), ``istio-injection=disabled`` none; its pods' revisions as each
  injector wrote them (meshca/injection.py, the one reader).
- CA secrets: ``cacerts`` (plugged in) and ``istio-ca-secret`` (Citadel's self-signed CA,
  istio/istio ``security/pkg/pki/ca/ca.go`` CASecret, keys ``ca-cert.pem``, ``ca-key.pem``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import yaml

from .errors import MeshcaError, MeshcaErrors
from .injection import has_proxy, injected_revision

SYSTEM_NS = "istio-system"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "istio-system", "istio-operator", "default")
INJECTION = "istio-injection"
REV = "istio.io/rev"
INJECT = "sidecar.istio.io/inject"
GATEWAY_TEMPLATE = "inject.istio.io/templates"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

READS: tuple[tuple[str, ...], ...] = (
    ("namespaces",),
    ("deployments,statefulsets,daemonsets", "-A"),
    ("pods", "-A"),
    ("services,horizontalpodautoscalers,poddisruptionbudgets", "-A"),
    ("configmaps", "-n", SYSTEM_NS),
    ("mutatingwebhookconfigurations,validatingwebhookconfigurations",),
    ("istiooperators.install.istio.io", "-n", SYSTEM_NS),
    ("secrets", "cacerts", "istio-ca-secret", "-n", SYSTEM_NS, "--ignore-not-found"),
)


def read(kubectl) -> "Snapshot":
    """Every object the snapshot judges, from the cluster (reads only)."""
    from .restart import kubectl_reason

    items: list[dict] = []
    for args in READS:
        proc = kubectl.run("get", *args, "-o", "json")
        if proc.returncode != 0:
            err = proc.stderr or ""
            if args[0].startswith("istiooperators") and ("the server doesn't have a resource type" in err or "NotFound" in err):
                continue  # no IstioOperator CRD: no operator state
            raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RestartListFailed", f"kubectl get {' '.join(args)}", reason=kubectl_reason(proc))])
        if not proc.stdout.strip():
            continue  # --ignore-not-found with nothing found
        try:
            doc = json.loads(proc.stdout)
        except ValueError as exc:
            raise MeshcaErrors([MeshcaError("ToolOutputNotJson", f"kubectl get {args[0]}", reason=f"invalid JSON ({exc})")]) from None
        kind = args[0]
        for item in doc.get("items") or ([doc] if doc.get("kind") not in (None, "List") else []):
            if "kind" not in item and kind == "namespaces":
                item["kind"] = "Namespace"
            items.append(item)
    return Snapshot(tuple(items))


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _labels(obj: dict) -> dict:
    return _meta(obj).get("labels") or {}


def label_revision(labels: Mapping[str, str]) -> str | None:
    """The revision a namespace's injection label selects (``default`` for istio-injection=enabled)."""
    if labels.get(INJECTION) == "enabled":
        return "default"
    rev = labels.get(REV)
    if rev and labels.get(INJECTION) != "disabled":
        return rev
    return None


def istiod_revision(deployment: dict) -> str | None:
    """The revision of an istiod Deployment in istio-system, or None when it is not one."""
    m = _meta(deployment)
    name = str(m.get("name") or "")
    if m.get("namespace") != SYSTEM_NS or deployment.get("kind") != "Deployment":
        return None
    if name == "istiod":
        return _labels(deployment).get(REV) or "default"
    if name.startswith("istiod-"):
        return _labels(deployment).get(REV) or name[len("istiod-"):]
    return None


def _live_pod(pod: dict) -> bool:
    return not _meta(pod).get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _b64(data: Mapping[str, str], key: str) -> bytes:
    try:
        return base64.b64decode(data.get(key) or "", validate=True)
    except ValueError:
        return b""


@dataclass(frozen=True)
class GatewayFact:
    namespace: str
    deployment: str
    service: str | None
    selector: Mapping[str, str]
    service_account: str
    hpa: str | None
    pdb: str | None
    revision: str | None  # the revision that injected its pods
    base: str  # the listed gateway's name (a canary's suffix dropped)


@dataclass(frozen=True)
class Snapshot:
    items: tuple[dict, ...] = field(default_factory=tuple)

    def of(self, *kinds: str) -> list[dict]:
        return [i for i in self.items if i.get("kind") in kinds]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        for i in self.of(kind):
            m = _meta(i)
            if m.get("name") == name and (namespace is None or m.get("namespace") == namespace):
                return i
        return None

    # -- control planes ------------------------------------------------------------------

    def control_planes(self) -> list[str]:
        """Revisions with an istiod Deployment, in name order."""
        return sorted({r for d in self.of("Deployment") if (r := istiod_revision(d))})

    def leftover_revisions(self) -> list[str]:
        """Revisions named by an IstioOperator or injector webhook whose istiod is gone."""
        found = set()
        for op in self.of("IstioOperator"):
            name = str(_meta(op).get("name") or "")
            if name.startswith("installed-state"):
                found.add(((op.get("spec") or {}).get("revision")) or (name[len("installed-state-"):] if name != "installed-state" else "default"))
        for wh in self.of("MutatingWebhookConfiguration"):
            name = str(_meta(wh).get("name") or "")
            if name == "istio-sidecar-injector":
                found.add(_labels(wh).get(REV) or "default")
            elif name.startswith("istio-sidecar-injector-"):
                found.add(_labels(wh).get(REV) or name[len("istio-sidecar-injector-"):])
        return sorted(found - set(self.control_planes()))

    def default_tag(self) -> str | None:
        """The revision the ``default`` revision tag points at (webhook istio-revision-tag-default)."""
        wh = self.get("MutatingWebhookConfiguration", "istio-revision-tag-default")
        return _labels(wh).get(REV) if wh else None

    def mesh_config(self, revision: str) -> dict:
        name = "istio" if revision == "default" else f"istio-{revision}"
        cm = self.get("ConfigMap", name, SYSTEM_NS)
        try:
            doc = yaml.safe_load(((cm or {}).get("data") or {}).get("mesh") or "") or {}
        except yaml.YAMLError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def ca_kind(self, revision: str) -> str | None:
        """``citadel-migration`` (--ca citadel with ca-migration-citadel), ``citadel``, ``mesh_ca``, or None."""
        mesh = self.mesh_config(revision)
        provider = (((mesh.get("defaultConfig") or {}).get("proxyMetadata")) or {}).get("CA_PROVIDER")
        if provider == "GoogleCA":
            return "mesh_ca"
        if provider == "Citadel":
            return "citadel-migration" if mesh.get("caCertificates") else "citadel"
        return None

    # -- namespaces and pods ---------------------------------------------------------------

    def namespaces(self) -> dict[str, dict[str, str]]:
        return {str(_meta(n).get("name")): dict(_labels(n)) for n in self.of("Namespace")}

    def pods(self, namespace: str | None = None) -> list[dict]:
        return [p for p in self.of("Pod") if _live_pod(p) and (namespace is None or _meta(p).get("namespace") == namespace)]

    def pod_revisions(self, namespace: str) -> dict[str, int]:
        """revision -> count of the namespace's live pods with a proxy ("none": without one)."""
        out: dict[str, int] = {}
        for p in self.pods(namespace):
            rev = injected_revision(p) if has_proxy(p) else None
            key = rev or ("unrecorded" if has_proxy(p) else "none")
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def injected_namespaces(self, gateway_namespaces: Iterable[str] = ()) -> dict[str, str]:
        """Namespaces (not system ones) whose label selects a revision: name -> revision."""
        skip = set(SYSTEM_NAMESPACES) | set(gateway_namespaces)
        return {n: r for n, labels in sorted(self.namespaces().items()) if n not in skip and (r := label_revision(labels))}

    def pinned_workloads(self) -> list[tuple[str, str]]:
        """(kind/namespace/name, what) of workloads that pin a revision or opt out in their pod template."""
        out = []
        for w in self.of(*WORKLOAD_KINDS):
            m = _meta(w)
            if m.get("namespace") in SYSTEM_NAMESPACES:
                continue
            tmpl = _meta(((w.get("spec") or {}).get("template")) or {})
            labels, ann = tmpl.get("labels") or {}, tmpl.get("annotations") or {}
            where = f"{w.get('kind')}/{m.get('namespace')}/{m.get('name')}"
            if labels.get(REV):
                out.append((where, f"pins revision {labels[REV]} (pod label {REV}={labels[REV]})"))
            for source, values in (("label", labels), ("annotation", ann)):
                if str(values.get(INJECT, "")).lower() == "false":
                    out.append((where, f"opts out of injection (pod {source} {INJECT}: \"false\")"))
                elif str(values.get(INJECT, "")).lower() == "true" and not label_revision(self.namespaces().get(m.get("namespace"), {})):
                    out.append((where, f"opts in at pod level in an unlabelled namespace (pod {source} {INJECT}: \"true\")"))
        return sorted(out)

    # -- gateways --------------------------------------------------------------------------

    def gateways(self) -> list[GatewayFact]:
        """Deployments whose pods are Istio gateways: a template in the 1.19 gateway-injection form
        (``inject.istio.io/templates: gateway``) or an explicit ``istio-proxy`` running ``proxy router``
        (Istio 1.6 charts/gateways), with the Services selecting them, their HPA and PDB."""
        revisions = set(self.control_planes()) | set(self.leftover_revisions())
        out = []
        for d in self.of("Deployment"):
            spec = d.get("spec") or {}
            tmpl = spec.get("template") or {}
            tmeta, tspec = _meta(tmpl), tmpl.get("spec") or {}
            containers = tspec.get("containers") or []
            is_gw = (tmeta.get("annotations") or {}).get(GATEWAY_TEMPLATE) == "gateway" or any(
                c.get("name") == "istio-proxy" and "router" in (c.get("args") or []) for c in containers
            )
            if not is_gw:
                continue
            m = _meta(d)
            ns, name = m.get("namespace"), str(m.get("name"))
            pod_labels = tmeta.get("labels") or {}
            services = [s for s in self.of("Service") if _meta(s).get("namespace") == ns and (sel := (s.get("spec") or {}).get("selector")) and all(pod_labels.get(k) == v for k, v in sel.items())]
            svc = sorted(services, key=lambda s: _meta(s).get("name"))[0] if services else None
            hpa = next((_meta(h).get("name") for h in self.of("HorizontalPodAutoscaler") if _meta(h).get("namespace") == ns and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name), None)
            pdb = next((_meta(p).get("name") for p in self.of("PodDisruptionBudget") if _meta(p).get("namespace") == ns and (ml := (((p.get("spec") or {}).get("selector")) or {}).get("matchLabels")) and all(pod_labels.get(k) == v for k, v in ml.items())), None)
            sel = dict(((spec.get("selector") or {}).get("matchLabels")) or {})
            mine = [p for p in self.pods(ns) if sel and all((_labels(p)).get(k) == v for k, v in sel.items())]
            revs = {injected_revision(p) for p in mine if has_proxy(p)}
            base = name
            for r in revisions:
                if name.endswith(f"-{r}"):
                    base = name[: -len(r) - 1]
            out.append(GatewayFact(ns, name, _meta(svc).get("name") if svc else None, dict((svc or {}).get("spec", {}).get("selector") or {}),
                                   tspec.get("serviceAccountName") or "default", hpa, pdb, next(iter(revs)) if len(revs) == 1 else None, base))
        return sorted(out, key=lambda g: (g.namespace, g.deployment))

    # -- CA secrets ------------------------------------------------------------------------

    def ca_secrets(self) -> dict[str, dict]:
        return {n: s for n in ("cacerts", "istio-ca-secret") if (s := self.get("Secret", n, SYSTEM_NS))}

    def trusted_root_pem(self) -> tuple[str, bytes] | None:
        """(source, PEM) of the Citadel root the mesh trusts today: cacerts' root-cert.pem when
        plugged in (istiod reads cacerts first), else istio-ca-secret's self-signed ca-cert.pem."""
        secrets = self.ca_secrets()
        if "cacerts" in secrets:
            pem = _b64(secrets["cacerts"].get("data") or {}, "root-cert.pem")
            if pem:
                return "Secret istio-system/cacerts root-cert.pem", pem
        if "istio-ca-secret" in secrets:
            pem = _b64(secrets["istio-ca-secret"].get("data") or {}, "ca-cert.pem")
            if pem:
                return "Secret istio-system/istio-ca-secret ca-cert.pem", pem
        return None

    def ca_files(self) -> tuple[str, dict[str, bytes]] | None:
        """(source, the four asmcli files) of the CA the mesh trusts today, or None.

        Plugged in: cacerts' four keys as they are (asmcli names the keys after the files).
        Istio on GKE: istio-ca-secret holds a self-signed root and its key; as a CA of its own
        it is ca-cert.pem = root-cert.pem = cert-chain.pem = that root, ca-key.pem its key."""
        secrets = self.ca_secrets()
        if "cacerts" in secrets:
            data = secrets["cacerts"].get("data") or {}
            files = {k: _b64(data, k) for k in ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")}
            if all(files.values()):
                return "Secret istio-system/cacerts", files
        if "istio-ca-secret" in secrets:
            data = secrets["istio-ca-secret"].get("data") or {}
            cert, key = _b64(data, "ca-cert.pem"), _b64(data, "ca-key.pem")
            if cert and key:
                return "Secret istio-system/istio-ca-secret", {"ca-cert.pem": cert, "ca-key.pem": key, "root-cert.pem": cert, "cert-chain.pem": cert}
        return None

    def operators(self) -> list[dict]:
        from .preflight import is_operator

        return [d for d in self.of("Deployment") if is_operator(d)]


# ----------------------------------------------------------------------------- positions


def live_phase(control_planes: Iterable[str], old: str, rev1: str, rev2: str, ca_secrets: bool) -> str:
    """The phase a cluster is in, from which istiods run (procedure.md "The route": REV1 beside
    the old one is phase A; the old one gone, phase A done; REV2 beside REV1 is phase B; REV1
    gone, phase B done; the CA secrets gone, phase C)."""
    cps = set(control_planes)
    if rev2 in cps:
        if rev1 in cps:
            return "mesh-ca"
        return "mesh-ca-done" if ca_secrets else "old-root-removed"
    if rev1 in cps:
        return "distribute-root" if old in cps else "distribute-root-done"
    return "baseline"


def live_namespace_map(snapshot: Snapshot, names: Iterable[str], old: str) -> dict[str, str | None]:
    """Each namespace's revision as its injection label selects it (stack terms: ``default`` is
    the old revision of migrate), None when it carries none."""
    labels = snapshot.namespaces()
    out = {}
    for n in names:
        rev = label_revision(labels.get(n, {}))
        out[n] = old if rev == "default" and old == "default" else rev
    return out


def describe_position(config, phase: str, namespace_map: Mapping[str, str | None]):
    """(index or None, label) of a live state on the stack's route (meshca.plan.route; baseline = 0)."""
    from . import plan as planmod

    positions = planmod.route(config)
    if any(v is None for v in namespace_map.values()):
        return None, "off the route (a namespace carries no injection label)"
    matches = [p for p in positions if p.phase == phase and p.namespace_map == dict(namespace_map)]
    if not matches:
        return None, f"off the route ({phase} with a namespace map outside the batch order)"
    return matches[-1].index, matches[-1].label
