"""``meshca preflight``: preconditions of a step, checked before it runs (issue 9 finding 13).

    kubectl [--kubeconfig K] [--context C] get namespace NS -o json      (each --gateway-namespace)
    kubectl ... get deployments -A -o json                               (--no-operator)

- ``--gateway-namespace NS`` (before A4 and B3, which create or upgrade gateway pods that
  istiod REV must inject): NS must carry no ``istio-injection`` label. istiod's revisioned
  webhooks select only namespaces without it (istio/istio release-1.19
  ``manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`` lines 54-90),
  ``enabled`` hands the pods to the default revision's webhook (lines 103-114), and an
  uninjected gateway pod keeps ``image: auto`` and never starts (istio/istio#37482). A
  namespace labelled ``istio.io/rev`` for another revision would also take the pods elsewhere.
- ``--no-operator`` (before A5 and B4 delete gateways and istiod): no in-cluster Istio operator
  may run, or it recreates what the step deletes. Google's ``migrate-to-asm`` deletes
  ``ns istio-operator`` for this reason (anthos-service-mesh-packages
  ``scripts/migration/migrate-to-asm`` ``remove_istio``, line 1492 at 1.19.10-asm.9+config1).
  The operator is Deployment ``istio-operator`` or ``istio-operator-REV`` with selector
  ``name: istio-operator`` (istio/istio ``manifests/charts/istio-operator/templates/deployment.yaml``,
  release-1.6 and release-1.16); one scaled to 0 reconciles nothing.

Every problem is one coded line; exit 2. Nothing is changed.
"""

from __future__ import annotations

import argparse
import sys

from .errors import MeshcaError, MeshcaErrors
from .kubeaccess import require_cluster_access
from .restart import Kubectl, _json, kubectl_reason

OPERATOR = "istio-operator"


def namespace_problems(doc: dict, revision: str) -> list[MeshcaError]:
    """Why pods of this namespace labelled for ``revision`` would not be injected by it (pure)."""
    meta = doc.get("metadata") or {}
    name = meta.get("name") or "?"
    labels = meta.get("labels") or {}
    out = []
    if "istio-injection" in labels:
        value = labels["istio-injection"]
        why = (
            "the default revision's webhook injects its pods instead"
            if value == "enabled"
            else "no revision's webhook injects its pods, so a gateway keeps image: auto and never starts (istio/istio#37482)"
        )
        out.append(MeshcaError("GatewayNamespaceInjectionLabel", f"namespace/{name}", namespace=name, label=f"istio-injection={value}", key="istio-injection", revision=revision, why=why))
    elif labels.get("istio.io/rev", revision) != revision:
        out.append(
            MeshcaError(
                "GatewayNamespaceInjectionLabel", f"namespace/{name}", namespace=name, label=f"istio.io/rev={labels['istio.io/rev']}", key="istio.io/rev", revision=revision,
                why=f"revision {labels['istio.io/rev']}'s webhook injects its pods instead",
            )
        )
    return out


def is_operator(deployment: dict) -> bool:
    meta = deployment.get("metadata") or {}
    name = str(meta.get("name") or "")
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return name == OPERATOR or name.startswith(OPERATOR + "-") or selector.get("name") == OPERATOR


def operator_problems(deployments: list[dict]) -> list[MeshcaError]:
    """Running in-cluster Istio operators (pure)."""
    out = []
    for d in deployments:
        if not is_operator(d):
            continue
        replicas = (d.get("spec") or {}).get("replicas")
        replicas = 1 if replicas is None else int(replicas)
        if replicas == 0:
            continue
        meta = d.get("metadata") or {}
        ns, name = meta.get("namespace") or "default", meta.get("name")
        out.append(MeshcaError("InClusterOperatorRunning", f"{ns}/{name}", namespace=ns, name=name, replicas=replicas))
    return out


def preflight(kubectl: Kubectl, revision: str, gateway_namespaces: list[str], no_operator: bool, out=sys.stdout) -> int:
    problems: list[MeshcaError] = []
    for ns in dict.fromkeys(gateway_namespaces):
        proc = kubectl.run("get", "namespace", ns, "-o", "json")
        if proc.returncode != 0:
            raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RestartListFailed", f"namespace/{ns}", reason=kubectl_reason(proc))])
        problems += namespace_problems(_json(proc, f"namespace {ns}"), revision)
    if no_operator:
        deployments = kubectl.get_json("deployments", "-A").get("items") or []
        problems += operator_problems(deployments)
    if problems:
        raise MeshcaErrors(problems)
    checked = [f"gateway namespace {ns}" for ns in dict.fromkeys(gateway_namespaces)] + (["no in-cluster Istio operator"] if no_operator else [])
    print(f"pre-flight for {revision}: {', '.join(checked) or 'nothing to check'}: ok", file=out)
    return 0


def cmd_preflight(args: argparse.Namespace) -> int:
    require_cluster_access(args.kubeconfig, args.context)
    return preflight(Kubectl(args.kubeconfig, args.context), args.revision, args.gateway_namespace or [], args.no_operator)


def register(subparsers) -> None:
    p = subparsers.add_parser("preflight", help="check a step's preconditions on the cluster (gateway namespaces, no in-cluster operator)")
    p.add_argument("--kubeconfig")
    p.add_argument("--context")
    p.add_argument("--revision", required=True, help="the revision the next step installs gateways for, or keeps")
    p.add_argument("--gateway-namespace", action="append", help="a namespace whose gateway pods REVISION must inject (repeatable)")
    p.add_argument("--no-operator", action="store_true", help="refuse while an in-cluster Istio operator runs")
    p.set_defaults(func=cmd_preflight)
