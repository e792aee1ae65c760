"""The simulated mesh: clusters, istiod revisions, namespaces, workloads and their proxies.

It follows the trust model docs/rehearsal.md states ("The model's assumptions"). Known rules are how the code works; every
inferred rule reads a switch (``switches.py``). In short:

- istiod's own CA is read when istiod (re)starts: ``cacerts`` (the four canonical keys), else
  ``istio-ca-secret``, else a new self-signed root stored in ``istio-ca-secret``
  (``phase-c-new-root``). Every revision of a cluster reads the same secrets.
- A ``mesh_ca`` revision's proxies get certificates from the (simulated) Mesh CA; a
  ``citadel`` revision's from istiod's own CA.
- Bundles: the own CA root (``mesh_ca`` revisions only with ``rev2-runs-citadel-ca``) plus,
  with a migration option (multi-root), ``meshConfig.caCertificates``; Mesh CA revisions add
  the Mesh CA root. istiod reads ``caCertificates`` from its ``istio-REV`` ConfigMap when it
  (re)starts, so an edit of the ConfigMap (``meshca mesh-config drop-root``) reaches proxies
  at the next start; it pushes its bundle to every connected proxy of its revision.
- A pod gets its revision when it is created (injection reads the namespace labels, then the
  pod template's ``istio.io/rev``); both namespace labels are an error. A running pod keeps
  its revision, certificate and (when disconnected) bundle until restarted. The pod records
  its revision as its injector's Istio version writes it (``Istiod.version``; rendered by
  ``source.pod_json``, read by ``meshca/injection.py``): 1.6 a label, 1.16 the status
  annotation, 1.19 the ``istio.io/rev`` annotation too.
- Deleting a revision's istiod orphans its proxies (``orphans-keep-state``); simulated time
  (``advance``) rotates certificates at half-life and expires orphans' certificates.
- Faults a scenario may inject: an istiod with no ready replica (``Istiod.ready``: its webhook
  rejects new pods, ``meshca restart`` refuses), a workload whose new pods never become ready
  (``Workload.rollout_error``: the rollout fails, the old pods keep running), bare pods
  (``kind`` ``Pod``: nothing restarts them), an unreachable cluster (``Cluster.reachable``).

State changes are logged (``take_events``) and bump ``version``, which the rehearsal uses to
know when proxy state may have changed. Every change of a workload's proxies also marks that
workload in ``Mesh.dirty`` (and adding or deleting a workload bumps ``Mesh.structure``), so the
rehearsal re-judges only the workloads a step touched. Certificate rotation keeps, per cluster,
a heap of the simulated times proxies may next rotate or expire: ``advance`` looks only at the
proxies that are due, in the order a scan of the cluster would meet them.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..certs import fingerprint, load_certs, short_fingerprint
from . import ca as simca
from .ca import Credential, Signer

SYSTEM_NS = "istio-system"
KUBE_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
CANONICAL_KEYS = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")
MIGRATION_OPTIONS = ("ca-migration-citadel", "ca-migration-meshca")
# istio-ca-secret's key is not readable in the simulation: workload certificates are signed
# with the registered signer (the stack's intermediate, or a generated root), held in memory.
KEY_PLACEHOLDER = b"meshca rehearsal: the signing key is held in memory by the simulated mesh\n"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
NEVER_MATCH = {"istio.io/deactivated": "never-match"}  # istio 1.19.10 istioctl/pkg/util/common.go


class SimError(Exception):
    """A command the simulated cluster refuses; ``code`` names the catalogue message."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


def _digest(*parts: object, n: int = 10) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:n]


def pod_suffix(*parts: object, n: int = 5) -> str:
    """Kubernetes-style random-looking suffix, deterministic for the simulation."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    raw = int(_digest(*parts, n=16), 16)
    out = []
    for _ in range(n):
        raw, i = divmod(raw, len(alphabet))
        out.append(alphabet[i])
    return "".join(out)


# ----------------------------------------------------------------------------- control plane


@dataclass
class Istiod:
    """One istiod revision of one cluster."""

    revision: str
    ca: str  # citadel | mesh_ca
    options: tuple[str, ...]
    trust_domain: str
    aliases: tuple[str, ...]
    fleet_domain: str  # FLEET.svc.id.goog: the trust domain Mesh CA signs
    ca_certificates: tuple[x509.Certificate, ...] = ()
    signer: Signer | None = None  # its own CA, read at start
    excluded_roots: set[str] = field(default_factory=set)  # fault injection: roots dropped from its bundle
    starts: int = 0
    ready: bool = True  # fault injection: no ready replica (webhook rejects, meshca restart refuses)
    # The Istio minor version of its injector, which decides how a pod records its revision
    # (meshca/injection.py): "1.6" Istio on GKE, "1.16" CSM 1.15/1.16, "1.19" asmcli 1.19.10.
    version: str = "1.19"

    @property
    def deployment(self) -> str:
        return "istiod" if self.revision == "default" else f"istiod-{self.revision}"

    @property
    def configmap(self) -> str:
        return "istio" if self.revision == "default" else f"istio-{self.revision}"

    @property
    def webhook(self) -> str:
        return "istio-sidecar-injector" if self.revision == "default" else f"istio-sidecar-injector-{self.revision}"

    @property
    def multiroot(self) -> bool:
        # ISTIO_MULTIROOT_MESH=true + PROXY_CONFIG_XDS_AGENT=true come with either migration option.
        return any(o in MIGRATION_OPTIONS for o in self.options)

    @property
    def spiffe_domain(self) -> str:
        return self.fleet_domain if self.ca == "mesh_ca" else self.trust_domain

    def workload_signer(self, meshca: Signer) -> Signer | None:
        return meshca if self.ca == "mesh_ca" else self.signer

    def bundle(self, meshca: Signer) -> tuple[x509.Certificate, ...]:
        roots: list[x509.Certificate] = []
        if self.ca == "mesh_ca":
            roots.append(meshca.root)
            if self.multiroot and self.signer is not None:
                roots.append(self.signer.root)
        elif self.signer is not None:
            roots.append(self.signer.root)
        if self.multiroot:
            roots.extend(self.ca_certificates)
        # istiod dedups and sorts the roots it merges (pilot/pkg/trustbundle).
        unique = {fingerprint(r): r for r in roots}
        return tuple(unique[fp] for fp in sorted(unique) if fp not in self.excluded_roots)

    def mesh_config(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"trustDomain": self.trust_domain}
        if self.aliases:
            doc["trustDomainAliases"] = list(self.aliases)
        if self.ca_certificates:
            doc["caCertificates"] = [{"pem": c.public_bytes(serialization.Encoding.PEM).decode()} for c in self.ca_certificates]
        meta = {"CA_PROVIDER": "GoogleCA" if self.ca == "mesh_ca" else "Citadel"}
        if self.multiroot:
            meta["PROXY_CONFIG_XDS_AGENT"] = "true"
        doc["defaultConfig"] = {"proxyMetadata": meta}
        return doc


# ----------------------------------------------------------------------------- data plane


@dataclass
class Pod:
    name: str
    namespace: str
    workload: "Workload"
    revision: str | None  # None: not injected (no istio-proxy)
    labels: dict[str, str]
    credential: Credential | None = None
    bundle: tuple[x509.Certificate, ...] = ()
    trust_domain: str = ""
    aliases: tuple[str, ...] = ()
    connected: bool = False
    issued_at: float = 0.0  # simulated minutes
    problem: str = ""  # why the proxy has no usable certificate
    injector: str = ""  # Istiod.version of the revision that injected it (how pod_json records the revision)
    listed: dict | None = field(default=None, repr=False, compare=False)  # source.pod_json as a list returns it, once
    watched: tuple[float, int] | None = field(default=None, repr=False, compare=False)  # its newest pending (minute, ticket) in Cluster._due
    # Connected, and its last rotation re-issued the credential it held: its rotations since
    # ``issued_at`` change nothing until its istiod changes, so they are not queued; Cluster._wake
    # replays them (their times) when its istiod changes or goes.
    lazy: bool = field(default=False, repr=False, compare=False)

    @property
    def meshed(self) -> bool:
        return self.revision is not None


@dataclass
class Workload:
    kind: str  # Deployment | StatefulSet | DaemonSet | Pod (a bare pod: nothing restarts it)
    namespace: str
    name: str
    labels: dict[str, str]
    template_labels: dict[str, str]
    template_annotations: dict[str, str]
    service_account: str
    replicas: int = 1
    native_sidecar: bool = False
    # Istio on GKE's own ingress gateway is not injected: its proxy is deployed with, and bound
    # to, the control plane of this revision.
    bound_revision: str | None = None
    gateway: bool = False
    generation: int = 0
    pods: list[Pod] = field(default_factory=list)
    manifest: dict | None = None
    rollout_error: str | None = None  # fault injection: new pods never become ready
    seq: int = 0  # position in its cluster's workloads (creation order)

    @property
    def bare(self) -> bool:
        return self.kind == "Pod"

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass
class Namespace:
    name: str
    labels: dict[str, str]


class Cluster:
    def __init__(self, mesh: "Mesh", name: str, kubeconfig: str, context: str) -> None:
        self.mesh = mesh
        self.name = name
        self.kubeconfig = kubeconfig
        self.context = context
        self.namespaces: dict[str, Namespace] = {}
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name) -> manifest
        self.istiods: dict[str, Istiod] = {}
        self.workloads: dict[tuple[str, str], Workload] = {}
        self.generated = 0
        self.reachable = True
        self._due: list[tuple[float, int, Pod]] = []  # (simulated minute, tie-break, proxy): when advance may change it
        self._ticket = itertools.count()
        self._seq = itertools.count()
        self._by_ns: dict[str, dict[tuple[str, str], Workload]] = {}
        self._by_ns_size = -1

    # -- helpers --------------------------------------------------------------------------

    def log(self, text: str) -> None:
        self.mesh.log(f"{self.name}: {text}")

    def namespace(self, name: str) -> Namespace:
        ns = self.namespaces.get(name)
        if ns is None:
            raise SimError(f'namespaces "{name}" not found', not_found=True)
        return ns

    def pods(self) -> Iterable[Pod]:
        for w in self.workloads.values():
            yield from w.pods

    def in_namespace(self, namespace: str) -> list[Workload]:
        """The namespace's workloads, in creation order (an index, not a scan of the cluster)."""
        if self._by_ns_size != len(self.workloads):
            self._by_ns = {}
            for key, w in self.workloads.items():
                self._by_ns.setdefault(w.namespace, {})[key] = w
            self._by_ns_size = len(self.workloads)
        return list(self._by_ns.get(namespace, {}).values())

    def changed(self, w: Workload) -> None:
        """``w``'s proxies changed: the rehearsal re-judges it."""
        self.mesh.dirty.add((self.name, w.namespace, w.name))

    def _ttl(self) -> float:
        return float(self.mesh.switches["cert-ttl-hours"]) * 60

    def _watch(self, pod: Pod, when: float | None = None) -> None:
        """A proxy connected or certified now: it may rotate at half-life from its issue time."""
        entry = (pod.issued_at + self._ttl() / 2 if when is None else when, next(self._ticket), pod)
        pod.watched = entry[:2]
        heapq.heappush(self._due, entry)

    def istiod_by_deployment(self, name: str) -> Istiod | None:
        return next((i for i in self.istiods.values() if i.deployment == name), None)

    # -- secrets --------------------------------------------------------------------------

    def put_secret(self, name: str, data: Mapping[str, bytes], namespace: str = SYSTEM_NS) -> None:
        self.secrets[(namespace, name)] = dict(data)
        self.log(f"Secret {namespace}/{name} created")

    def delete_secret(self, name: str, namespace: str = SYSTEM_NS) -> bool:
        if self.secrets.pop((namespace, name), None) is None:
            return False
        self.log(f"Secret {namespace}/{name} deleted")
        return True

    def load_ca(self) -> Signer | None:
        """What an istiod starting now uses as its CA (same secrets for every revision)."""
        cacerts = self.secrets.get((SYSTEM_NS, "cacerts"))
        if cacerts is not None and all(k in cacerts for k in CANONICAL_KEYS):
            return simca.signer_from_plugged(
                "cacerts", cacerts["ca-cert.pem"], cacerts["ca-key.pem"], cacerts["root-cert.pem"], cacerts["cert-chain.pem"]
            )
        selfsigned = self.secrets.get((SYSTEM_NS, "istio-ca-secret"))
        if selfsigned is not None:
            root = load_certs(selfsigned["ca-cert.pem"])[0]
            signer = self.mesh.signers.get(fingerprint(root))
            if signer is None:
                raise SimError(f"istio-ca-secret on {self.name} holds a root the simulation has no signing material for")
            return signer
        if not self.mesh.switches["phase-c-new-root"]:
            return None
        self.generated += 1
        signer = simca.generated_root(self.name, self.generated)
        self.mesh.signers[signer.root_fp] = signer
        self.put_secret("istio-ca-secret", {"ca-cert.pem": signer.root_pem, "ca-key.pem": KEY_PLACEHOLDER})
        self.log(f"istiod generated a new self-signed root sha256 {short_fingerprint(signer.root_fp)}")
        return signer

    # -- control plane --------------------------------------------------------------------

    def add_istiod(self, istiod: Istiod, *, objects: bool = True, installed_state: str | None = None) -> None:
        """Create or update a revision's control plane and start it."""
        name = istiod.deployment
        labels = {"app": "istiod", "istio.io/rev": istiod.revision}
        if objects:
            for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
                self.objects[(kind, SYSTEM_NS, name)] = {"kind": kind, "metadata": {"name": name, "namespace": SYSTEM_NS, "labels": labels}}
            self.put_webhooks(istiod)
            if installed_state:
                self.objects[("IstioOperator", SYSTEM_NS, installed_state)] = {"kind": "IstioOperator", "metadata": {"name": installed_state, "namespace": SYSTEM_NS}}
        if istiod.revision in self.istiods:
            self._wake(istiod.revision)  # another control plane for the revision: its proxies rotate from it
        self.istiods[istiod.revision] = istiod
        self.objects[("ConfigMap", SYSTEM_NS, istiod.configmap)] = {
            "kind": "ConfigMap",
            "metadata": {"name": istiod.configmap, "namespace": SYSTEM_NS, "labels": labels},
            "data": {"mesh": yaml.safe_dump(istiod.mesh_config(), sort_keys=False)},
        }
        self.start_istiod(istiod.revision)

    def put_webhooks(self, istiod: Istiod) -> None:
        """The revision's injector and validator as its chart writes them (issue 9 finding 10).

        Istio 1.6 (``default``): ``istio-sidecar-injector`` (label ``istio.io/rev: default``,
        webhook ``namespace.sidecar-injector.istio.io``) and the base chart's ``istiod-istio-system``
        (label ``app: istiod``, webhook ``validation.istio.io``), both calling Service ``istiod``
        (istio 1.6.14 ``manifests/charts/base/templates/validatingwebhookconfiguration.yaml``);
        1.16/1.19: ``istio-sidecar-injector-REV`` and ``istio-validator-REV-istio-system``
        (``rev.validation.istio.io``, objects labelled ``istio.io/rev=REV``), calling
        ``istiod-REV`` (istio 1.19.10 istio-discovery ``mutatingwebhook.yaml`` line 39,
        ``validatingwebhookconfiguration.yaml`` lines 5-21).
        """
        from ..commands import webhook_configurations

        mutating, validating = webhook_configurations(istiod.revision)
        service = {"service": {"name": istiod.deployment, "namespace": SYSTEM_NS}}
        labels = {"app": "sidecar-injector", "istio.io/rev": istiod.revision}
        default = istiod.revision == "default"
        self.objects[("MutatingWebhookConfiguration", "", mutating)] = {
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": mutating, "labels": labels},
            "webhooks": [{"name": f"{'' if default else 'rev.'}namespace.sidecar-injector.istio.io", "clientConfig": service}],
        }
        self.objects[("ValidatingWebhookConfiguration", "", validating)] = {
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": validating, "labels": {"app": "istiod", "istio.io/rev": istiod.revision}},
            "webhooks": [{"name": "validation.istio.io" if default else "rev.validation.istio.io", "clientConfig": service}],
        }

    def service_revision(self, name: str) -> str | None:
        """The istiod revision behind Service ``name`` (its selector), None when it is gone."""
        svc = self.objects.get(("Service", SYSTEM_NS, name))
        if svc is None:
            return None
        selector = (svc.get("spec") or {}).get("selector") or {}
        return selector.get("istio.io/rev") or (svc.get("metadata") or {}).get("labels", {}).get("istio.io/rev")

    def injector_for(self, target: str) -> tuple[str, str, str | None] | None:
        """(configuration, Service, revision behind it) of the injector that selects pods
        meant for ``target`` (a revision or a tag), or None when no webhook selects them.

        A revision tag's configuration (label ``istio.io/tag``, istio 1.19.10
        ``revision-tags.yaml``) serves the tag name; a revision's own injector serves its
        ``istio.io/rev``. A webhook deactivated by ``istioctl tag set default`` (namespace
        selector ``istio.io/deactivated: never-match``, istio 1.19.10
        ``istioctl/pkg/util/common.go`` NeverMatch) or emptied selects nothing.
        """
        for (kind, _, name), doc in sorted(self.objects.items()):
            if kind != "MutatingWebhookConfiguration":
                continue
            labels = (doc.get("metadata") or {}).get("labels") or {}
            tag = labels.get("istio.io/tag")
            if not (tag == target or (tag is None and labels.get("istio.io/rev") == target)):
                continue
            active = [w for w in doc.get("webhooks") or () if (w.get("namespaceSelector") or {}).get("matchLabels") != NEVER_MATCH]
            if active:
                service = active[0]["clientConfig"]["service"]["name"]
                return name, service, self.service_revision(service)
        return None

    def configured_roots(self, istiod: Istiod) -> tuple[x509.Certificate, ...] | None:
        """``caCertificates`` of the revision's ConfigMap (``istio-REV``, key ``mesh``) as istiod
        reads it at start; None when the ConfigMap or its ``mesh`` key is absent or unreadable."""
        cm = self.objects.get(("ConfigMap", SYSTEM_NS, istiod.configmap))
        text = ((cm or {}).get("data") or {}).get("mesh")
        if not isinstance(text, str):
            return None
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            return None
        roots: list[x509.Certificate] = []
        for entry in (doc.get("caCertificates") or ()) if isinstance(doc, dict) else ():
            pem = entry.get("pem") if isinstance(entry, dict) else None
            if pem:
                try:
                    roots.extend(load_certs(pem.encode()))
                except ValueError:
                    continue  # istiod skips an entry it cannot parse
        return tuple(roots)

    def start_istiod(self, revision: str) -> None:
        """(Re)start a revision's istiod: it reads its mesh config (``caCertificates``) and its CA
        secrets now; a later edit of either reaches proxies only through a later start."""
        istiod = self.istiods[revision]
        configured = self.configured_roots(istiod)
        if configured is not None:
            istiod.ca_certificates = configured
        runs_ca = istiod.ca == "citadel" or self.mesh.switches["rev2-runs-citadel-ca"]
        istiod.signer = self.load_ca() if runs_ca else None
        istiod.starts += 1
        root = f"sha256 {short_fingerprint(istiod.signer.root_fp)}" if istiod.signer else "none"
        self.log(f"istiod {revision} started (own CA root {root})")
        self.push(revision)

    def push(self, revision: str) -> None:
        """istiod pushes its bundle and mesh config to every proxy of its revision.

        A proxy that lost its istiod (orphan) reconnects when the revision is back; if its
        certificate expired meanwhile it asks for a new one at once.
        """
        istiod = self.istiods.get(revision)
        if istiod is None:
            return
        self._wake(revision)  # a push follows every start: the signer may have changed
        bundle = istiod.bundle(self.mesh.meshca)
        changed = 0
        for pod in self.pods():
            if pod.revision != revision:
                continue
            before = (pod.bundle, pod.trust_domain, pod.aliases, pod.connected, pod.credential)
            pod.bundle = bundle
            pod.trust_domain, pod.aliases = istiod.trust_domain, istiod.aliases
            if not pod.connected:
                pod.connected = True
                if pod.credential is None or pod.credential.expired:
                    self._certify(pod, istiod)
            if before != (pod.bundle, pod.trust_domain, pod.aliases, pod.connected, pod.credential):
                changed += 1
                self.changed(pod.workload)
                self._watch(pod)
        if changed:
            self.mesh.touch()
            self.log(f"istiod {revision} pushed its bundle ({len(bundle)} roots) to {changed} proxies")

    def remove_istiod(self, revision: str) -> None:
        if revision not in self.istiods:
            return
        self._wake(revision)  # an orphan's certificate ages from its last rotation
        istiod = self.istiods.pop(revision)
        # Only the Deployment went: asmcli's ConfigMap and injection webhook stay behind, as
        # they do after `kubectl delete Service,Deployment,HPA,PDB istiod-REV`.
        orphans = [p for p in self.pods() if p.revision == revision and p.connected]
        for pod in orphans:
            self.changed(pod.workload)
            pod.connected = False
            if not self.mesh.switches["orphans-keep-state"]:
                pod.credential = None
                pod.problem = f"istiod {revision} removed: the proxy lost its certificate"
        if orphans:
            self.mesh.touch()
            self.log(f"istiod {revision} removed: {len(orphans)} proxies orphaned")
        else:
            self.log(f"istiod {revision} removed")

    def restart_istio_system(self) -> list[str]:
        """``kubectl rollout restart deployment -n istio-system``: every Deployment there.

        istiods first (in name order, so which one generates a new root is deterministic),
        then gateways, whose new pods are injected by the restarted control plane.
        """
        names = []
        for istiod in sorted(self.istiods.values(), key=lambda i: i.deployment):
            if ("Deployment", SYSTEM_NS, istiod.deployment) in self.objects:
                self.start_istiod(istiod.revision)
                names.append(istiod.deployment)
        for w in sorted((w for w in self.workloads.values() if w.namespace == SYSTEM_NS and w.kind == "Deployment"), key=lambda w: w.name):
            self.rollout(w)
            names.append(w.name)
        return names

    # -- data plane -----------------------------------------------------------------------

    def injection_revision(self, w: Workload) -> str | None:
        """The revision whose webhook injects ``w``'s new pods (None: no sidecar)."""
        if w.bound_revision:
            return w.bound_revision
        labels = self.namespace(w.namespace).labels
        if "istio-injection" in labels and "istio.io/rev" in labels:
            raise SimError(
                f"namespace {w.namespace} has both istio-injection={labels['istio-injection']} and "
                f"istio.io/rev={labels['istio.io/rev']}: injection is undefined"
            )
        if w.template_annotations.get("sidecar.istio.io/inject") == "false" or w.template_labels.get("sidecar.istio.io/inject") == "false":
            return None
        if labels.get("istio-injection") == "disabled":
            return None
        if "istio.io/rev" in labels:
            target = labels["istio.io/rev"]
        elif labels.get("istio-injection") == "enabled":
            target = "default"
        elif "istio.io/rev" in w.template_labels:
            target = w.template_labels["istio.io/rev"]
        elif w.template_labels.get("sidecar.istio.io/inject") == "true":
            target = "default"
        else:
            return None
        found = self.injector_for(target)
        if found is None:
            return None  # no webhook selects the pod: it starts without a sidecar
        hook, service, serving = found
        if serving is None or serving not in self.istiods:
            # The webhook is there but its istiod is gone: failurePolicy Fail rejects the pod.
            why = f'service "{service}" not found' if serving is None else f"istiod {serving} is not running"
            raise SimError(f"Internal error occurred: failed calling webhook {hook}: {why}")
        if not self.istiods[serving].ready:
            raise SimError(f"Internal error occurred: failed calling webhook {hook}: no endpoints available for service {service}")
        return serving

    def _certify(self, pod: Pod, istiod: Istiod, *, watch: bool = True) -> None:
        before = (pod.credential, pod.problem)
        signer = istiod.workload_signer(self.mesh.meshca)
        if signer is None:
            pod.credential = None
            pod.problem = f"istiod {istiod.revision} runs no CA: no workload certificate"
        else:
            spiffe = f"spiffe://{istiod.spiffe_domain}/ns/{pod.namespace}/sa/{pod.workload.service_account}"
            pod.credential = simca.issue(signer, spiffe)
            pod.issued_at = self.mesh.now
            pod.problem = ""
            if watch:
                self._watch(pod)
        if (pod.credential, pod.problem) != before:
            self.changed(pod.workload)

    def rollout(self, w: Workload) -> None:
        """Replace every pod of ``w`` (a restart or a template change)."""
        revision = self.injection_revision(w)  # raises before any pod is replaced
        if revision is not None and revision not in self.istiods:
            raise SimError(f"istiod {revision} is not running: the proxies of {w.namespace}/{w.name} cannot start")
        if w.rollout_error and w.pods:
            # The new pods never become ready; the old ones keep serving (maxUnavailable).
            raise SimError(f"{w.kind} {w.namespace}/{w.name}: {w.rollout_error}")
        w.generation += 1
        old = {p.revision for p in w.pods}
        w.pods = [self._new_pod(w, i, revision) for i in range(w.replicas)]
        self.changed(w)
        self.mesh.touch()
        now = revision or "no sidecar"
        if old:
            was = ",".join(sorted(r or "no sidecar" for r in old))
            self.log(f"{w.kind} {w.namespace}/{w.name} restarted ({was} -> {now})")
        else:
            self.log(f"{w.kind} {w.namespace}/{w.name} created ({now})")

    def _new_pod(self, w: Workload, index: int, revision: str | None) -> Pod:
        if w.bare:
            name = w.name
        elif w.kind == "StatefulSet":
            name = f"{w.name}-{index}"
        elif w.kind == "DaemonSet":
            name = f"{w.name}-{pod_suffix(self.name, w.namespace, w.name, w.generation, index)}"
        else:
            rs = pod_suffix(self.name, w.namespace, w.name, w.generation, n=10)
            name = f"{w.name}-{rs}-{pod_suffix(self.name, w.namespace, w.name, w.generation, index)}"
        labels = dict(w.template_labels)
        if revision is not None:
            # Injection's own record of the revision (a label on 1.6, annotations on 1.16+) is
            # rendered by source.pod_json from ``Pod.injector``; never invented here.
            labels.setdefault("security.istio.io/tlsMode", "istio")
        pod = Pod(name=name, namespace=w.namespace, workload=w, revision=revision, labels=labels)
        if revision is not None:
            istiod = self.istiods[revision]
            pod.injector = istiod.version
            self._certify(pod, istiod)
            pod.bundle = istiod.bundle(self.mesh.meshca)
            pod.trust_domain, pod.aliases = istiod.trust_domain, istiod.aliases
            pod.connected = True
        return pod

    def add_workload(self, w: Workload, *, start: bool = True) -> None:
        old = self.workloads.get(w.key)
        w.seq = old.seq if old is not None else next(self._seq)  # a replaced key keeps its place
        self.workloads[w.key] = w
        self._by_ns_size = -1
        self.mesh.structure += 1
        self.changed(w)
        if start:
            self.rollout(w)

    def delete_workload(self, namespace: str, name: str) -> bool:
        w = self.workloads.pop((namespace, name), None)
        if w is None:
            return False
        self._by_ns_size = -1
        self.mesh.structure += 1
        self.changed(w)
        self.mesh.touch()
        self.log(f"{w.kind} {namespace}/{name} deleted")
        return True

    def restart_namespace(self, namespace: str, revision: str) -> list[Workload]:
        """``meshca restart``: check istiod-REV is ready, restart every Deployment,
        StatefulSet and DaemonSet of the namespace, wait for the rollouts."""
        self.namespace(namespace)
        if revision not in self.istiods or ("Deployment", SYSTEM_NS, self.istiods[revision].deployment) not in self.objects or not self.istiods[revision].ready:
            raise SimError(f"istiod {revision} is not ready to inject in cluster {self.name}")
        workloads = sorted((w for w in self.in_namespace(namespace) if w.kind in WORKLOAD_KINDS), key=lambda w: (w.kind, w.name))
        for w in workloads:
            self.rollout(w)
        return workloads

    def advance(self, minutes: float, ttl_minutes: float) -> None:
        """Rotate certificates at half-life from the current signer; orphans expire.

        Only the proxies whose time has come (the heap), in the order a scan of every pod of
        the cluster would meet them; each is then watched again for its next time."""
        now = self.mesh.now
        if not self._due or self._due[0][0] > now:
            return
        seen: dict[int, tuple[tuple[int, int], Pod]] = {}
        while self._due and self._due[0][0] <= now:
            minute, ticket, pod = heapq.heappop(self._due)
            if pod.watched == (minute, ticket):
                pod.watched = None  # no longer pending
            w = pod.workload
            if id(pod) in seen or pod.lazy or self.workloads.get(w.key) is not w:
                continue  # a lazy pod's older entries: its rotations are replayed (_wake)
            index = next((i for i, p in enumerate(w.pods) if p is pod), None)
            if index is not None:  # a pod a rollout replaced is gone
                seen[id(pod)] = ((w.seq, index), pod)
        for _, pod in sorted(seen.values(), key=lambda item: item[0]):
            self._advance_pod(pod, ttl_minutes)
            if pod.lazy:
                continue
            due = self._next_due(pod, ttl_minutes)
            # Not again when an entry for that very minute is still pending (the rotation's own
            # _certify just made it): a second one would only be popped and skipped with it.
            if due != float("inf") and (pod.watched is None or pod.watched[0] != due):
                self._watch(pod, due)

    def _advance_pod(self, pod: Pod, ttl_minutes: float) -> None:
        if pod.credential is None or pod.revision is None:
            return
        age = self.mesh.now - pod.issued_at
        istiod = self.istiods.get(pod.revision)
        if pod.connected and istiod is not None and age >= ttl_minutes / 2:
            before = pod.credential
            self._certify(pod, istiod, watch=False)
            if pod.credential is before and not pod.problem:
                pod.lazy = True  # the same credential again: so will every rotation be, until _wake
                return
            self._watch(pod)
            if pod.credential is not before:
                self.mesh.touch()
                self.log(f"{pod.namespace}/{pod.name} rotated its certificate ({pod.credential.signer.label if pod.credential else pod.problem})")
        elif not pod.connected and age >= ttl_minutes and not pod.credential.expired:
            pod.credential = simca.issue(pod.credential.signer, pod.credential.spiffe, expired=True)
            pod.problem = f"certificate expired; istiod {pod.revision} is gone, so it cannot rotate"
            self.changed(pod.workload)
            self.mesh.touch()
            self.log(f"{pod.namespace}/{pod.name}: certificate expired (orphaned)")

    def _wake(self, revision: str) -> None:
        """The proxies of ``revision`` rotate for real again: its istiod changed or goes.

        Each lazy proxy's rotations since ``issued_at`` are replayed at the times ``advance``
        would have made them (the first step time at which its entry was due and its age
        reached half the TTL, from the last one), then it is queued for the next, as if it had
        never stopped."""
        half = self._ttl() / 2
        times, now = self.mesh.times, self.mesh.now
        for pod in self.pods():
            if not pod.lazy or pod.revision != revision:
                continue
            t = pod.issued_at
            while True:
                i = bisect.bisect_left(times, t + half)  # advance pops the entry at t + half
                while i < len(times) and not times[i] - t >= half:  # ... and rotates at this age
                    i += 1
                if i >= len(times) or times[i] > now:
                    break
                t = times[i]
            pod.issued_at = t
            pod.lazy = False
            self._watch(pod)

    def _next_due(self, pod: Pod, ttl_minutes: float) -> float:
        """When ``advance`` may next change this proxy (inf: never, until something else does)."""
        if pod.credential is None or pod.revision is None:
            return float("inf")
        if pod.connected:
            return pod.issued_at + ttl_minutes / 2
        return float("inf") if pod.credential.expired else pod.issued_at + ttl_minutes


class Mesh:
    """Every simulated cluster, the simulated Mesh CA, the switches, the clock and files."""

    def __init__(self, *, switches: Mapping[str, Any], project_dir: Path) -> None:
        self.switches = dict(switches)
        self.project_dir = Path(project_dir)
        self.clusters: dict[str, Cluster] = {}
        self.meshca = simca.meshca_signer()
        self.signers: dict[str, Signer] = {}  # root fingerprint -> signing material (istio-ca-secret roots)
        self.files: dict[str, bytes] = {}  # what the steps wrote (asmcli output dirs, overlays), by write_file
        self.now = 0.0  # simulated minutes
        self.times: list[float] = []  # every time advance set, in order (Cluster._wake replays rotations over them)
        self.version = 0
        self.dirty: set[tuple[str, str, str]] = set()  # (cluster, namespace, workload) whose proxies changed
        self.structure = 0  # bumped when a workload is added or deleted
        self._events: list[str] = []

    def touch(self) -> None:
        self.version += 1

    def log(self, text: str) -> None:
        self._events.append(text)

    def take_events(self) -> list[str]:
        out, self._events = self._events, []
        return out

    def add_cluster(self, name: str, kubeconfig: str, context: str) -> Cluster:
        cluster = Cluster(self, name, kubeconfig, context)
        self.clusters[name] = cluster
        return cluster

    def cluster_for(self, kubeconfig: str | None, context: str | None) -> Cluster:
        for c in self.clusters.values():
            if c.context == context and (kubeconfig is None or c.kubeconfig == kubeconfig):
                if not c.reachable:
                    raise SimError(f"Unable to connect to the server: context {context} is unreachable")
                return c
        raise SimError(f'context "{context}" does not exist in kubeconfig {kubeconfig}')

    def advance(self, minutes: float) -> None:
        if minutes <= 0:
            return
        self.now += minutes
        self.times.append(self.now)
        ttl = float(self.switches["cert-ttl-hours"]) * 60
        for c in self.clusters.values():
            c.advance(minutes, ttl)

    def _file_key(self, path: str) -> str:
        """One spelling per file the steps write: relative to the project dir, normalised."""
        p = Path(os.path.normpath(path))
        if p.is_absolute():
            try:
                p = p.relative_to(self.project_dir)
            except ValueError:
                pass
        return p.as_posix()

    def wrote(self, path: str) -> bool:
        """Whether a step wrote ``path`` (then commands read it from memory, not from disk)."""
        return self._file_key(path) in self.files

    def write_file(self, path: str, data: bytes) -> None:
        """A file a step writes (asmcli's output dir, meshca's overlay): kept in memory."""
        self.files[self._file_key(path)] = data

    def read_file(self, path: str) -> bytes:
        """A file as a command would read it: what the steps wrote first, then the project directory."""
        key = self._file_key(path)
        if key in self.files:
            return self.files[key]
        try:
            return self.real_path(path).read_bytes()
        except OSError as exc:
            raise SimError(f"the path \"{path}\" does not exist", not_found=True) from exc

    def file_exists(self, path: str) -> bool:
        return self.wrote(path) or self.real_path(path).exists()

    def real_path(self, path: str) -> Path:
        """Where a project file is on disk (commands run in the project directory)."""
        p = Path(path)
        return p if p.is_absolute() else self.project_dir / p
