"""The simulated mesh at a stack's starting point (baseline), built from the stack config.

- ``migrate`` (Istio on GKE): istiod revision ``default`` (Service, Deployment, HPA, PDB
  ``istiod``, ConfigMap ``istio``), namespaces labelled ``istio-injection=enabled``, only
  ``istio-ca-secret`` whose ``ca-cert.pem`` is the stack's ``root-cert.pem``. istiod signs with
  the stack's intermediate (ca-cert/ca-key), so no root key is needed: verdicts depend only on
  roots. The original ``istio-ingressgateway`` is not injected: its proxy is bound to ``default``.
- ``upgrade`` (CSM 1.15/1.16 with Istio CA): ``istiod-OLD``, namespaces ``istio.io/rev=OLD``,
  a plugged-in ``cacerts`` made from the stack's four files, gateways labelled
  ``app=istio-ingressgateway,istio.io/rev=OLD`` and injected by that label.

Each application namespace gets ``workloads`` workloads, cycling Deployment, StatefulSet,
DaemonSet (``api``, ``store``, ``agent``, ``api-2``...); StatefulSets use a native sidecar
(``initContainers``), so the gates see both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import DEFAULT_GATEWAY_LABELS, StackConfig
from . import ca as simca
from .mesh import KEY_PLACEHOLDER, KUBE_NAMESPACES, SYSTEM_NS, Istiod, Mesh, Namespace, Workload

KINDS = ("Deployment", "StatefulSet", "DaemonSet")
BASE_NAMES = {"Deployment": "api", "StatefulSet": "store", "DaemonSet": "agent"}
REPLICAS = {"Deployment": 1, "StatefulSet": 1, "DaemonSet": 2}  # a DaemonSet on two nodes


@dataclass(frozen=True)
class MeshShape:
    workloads: int = 3  # per application namespace
    replicas: Mapping[str, int] | None = None


def workload_names(count: int) -> list[tuple[str, str]]:
    out = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        round_ = i // len(KINDS)
        out.append((kind, BASE_NAMES[kind] if round_ == 0 else f"{BASE_NAMES[kind]}-{round_ + 1}"))
    return out


def base_aliases(fleet: str) -> tuple[str, ...]:
    # asm/istio/istio-operator.yaml's trustDomainAliases kpt setter
    return (f"{fleet}.svc.id.goog", f"{fleet}.hub.id.goog")


def files_signer(config: StackConfig) -> simca.Signer:
    f = config.ca_files
    return simca.signer_from_plugged(
        "citadel (stack files)", f.ca_cert.read_bytes(), f.ca_key.read_bytes(), f.root_cert.read_bytes(), f.cert_chain.read_bytes()
    )


def build_mesh(config: StackConfig, switches: Mapping[str, Any], shape: MeshShape = MeshShape()) -> Mesh:
    mesh = Mesh(switches=switches, project_dir=config.project_dir)
    replicas = dict(REPLICAS, **(shape.replicas or {}))
    signer = files_signer(config)
    fleet = config.fleet_project
    migrate = config.use_case == "migrate"
    old = config.old_revision
    for cl in config.clusters:
        cluster = mesh.add_cluster(cl.name, cl.kubeconfig, cl.context)
        for name in (*KUBE_NAMESPACES, "default", SYSTEM_NS):
            cluster.namespaces[name] = Namespace(name, {})
        f = config.ca_files
        if migrate:
            # Istio on GKE: istiod's self-signed CA, whose ca-cert.pem is today's root.
            mesh.signers[signer.root_fp] = signer
            cluster.put_secret("istio-ca-secret", {"ca-cert.pem": f.root_cert.read_bytes(), "ca-key.pem": KEY_PLACEHOLDER})
            # Istio on GKE runs Istio 1.6: its injector labels pods istio.io/rev="" (pod_json)
            istiod = Istiod(revision=old, ca="citadel", options=(), trust_domain="cluster.local", aliases=(), fleet_domain=f"{fleet}.svc.id.goog", version="1.6")
            cluster.add_istiod(istiod)
        else:
            cluster.put_secret(
                "cacerts",
                {
                    "ca-cert.pem": f.ca_cert.read_bytes(),
                    "ca-key.pem": f.ca_key.read_bytes(),
                    "root-cert.pem": f.root_cert.read_bytes(),
                    "cert-chain.pem": f.cert_chain.read_bytes(),
                },
            )
            aliases = base_aliases(fleet) if switches["citadel-keeps-base-aliases"] else ()
            # CSM 1.15/1.16: the revision is recorded in sidecar.istio.io/status only (pod_json)
            istiod = Istiod(revision=old, ca="citadel", options=(), trust_domain="cluster.local", aliases=aliases, fleet_domain=f"{fleet}.svc.id.goog", version="1.16")
            cluster.add_istiod(istiod, installed_state=f"installed-state-{old}")
            # The `default` revision tag of a CSM 1.16 mesh serves istio-injection=enabled and
            # istio.io/rev=default, and its istiod-default-validator validates unlabelled
            # Istio config: both call Service istiod-OLD (procedure.md "What the guide leaves
            # out"; istio 1.16.7 manifests/charts/base/templates/default.yaml line 21,
            # `name: istiod-{{ .Values.defaultRevision }}`).
            service = {"service": {"name": f"istiod-{old}", "namespace": SYSTEM_NS}}
            cluster.objects[("MutatingWebhookConfiguration", "", "istio-revision-tag-default")] = {
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "istio-revision-tag-default", "labels": {"istio.io/rev": old, "istio.io/tag": "default"}},
                "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": service}],
            }
            cluster.objects[("ValidatingWebhookConfiguration", "", "istiod-default-validator")] = {
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "istiod-default-validator", "labels": {"app": "istiod", "istio.io/rev": old}},
                "webhooks": [{"name": "validation.istio.io", "clientConfig": service}],
            }
        for g in config.gateways:
            if not g.on(cl.name):
                continue
            labels = dict(g.labels or DEFAULT_GATEWAY_LABELS)
            if migrate:
                w = Workload(
                    kind="Deployment",
                    namespace=g.namespace,
                    name=g.deployment,
                    labels=dict(labels),
                    template_labels=dict(labels),
                    template_annotations={"sidecar.istio.io/inject": "false"},
                    service_account=g.deployment,
                    replicas=1,
                    bound_revision=old,
                    gateway=True,
                )
            else:
                w = Workload(
                    kind="Deployment",
                    namespace=g.namespace,
                    name=g.deployment,
                    labels={**labels, "istio.io/rev": old},
                    template_labels={**labels, "istio.io/rev": old, "sidecar.istio.io/inject": "true"},
                    template_annotations={"inject.istio.io/templates": "gateway"},
                    service_account=g.deployment,
                    replicas=1,
                    gateway=True,
                )
            cluster.namespaces.setdefault(g.namespace, Namespace(g.namespace, {}))
            cluster.objects[("Service", g.namespace, g.service)] = {"kind": "Service", "metadata": {"name": g.service, "namespace": g.namespace}, "spec": {"selector": dict(labels)}}
            # Both charts give the gateway an HPA and a PDB (Istio 1.6.14 gateways/istio-ingress
            # templates/autoscale.yaml and poddisruptionbudget.yaml): the canary clones them.
            cluster.objects[("HorizontalPodAutoscaler", g.namespace, g.deployment)] = {
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": g.deployment, "namespace": g.namespace},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": g.deployment}, "minReplicas": 1, "maxReplicas": 5},
            }
            cluster.objects[("PodDisruptionBudget", g.namespace, g.deployment)] = {
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": g.deployment, "namespace": g.namespace},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(labels)}},
            }
            cluster.add_workload(w)
        for ns in config.namespaces:
            labels = {**ns.labels, **({"istio-injection": "enabled"} if migrate else {"istio.io/rev": old})}
            cluster.namespaces[ns.name] = Namespace(ns.name, labels)
            for kind, name in workload_names(shape.workloads):
                app = {"app": name}
                cluster.add_workload(
                    Workload(
                        kind=kind,
                        namespace=ns.name,
                        name=name,
                        labels=dict(app),
                        template_labels=dict(app),
                        template_annotations={},
                        service_account=name,
                        replicas=replicas[kind],
                        native_sidecar=kind == "StatefulSet",
                    )
                )
    mesh.take_events()  # the starting point is not a change
    mesh.touch()
    return mesh
