"""``meshca webhooks strays|verify``: the checks around the default revision tag (A5, B4).

Issue 9 finding 10. Before a finish deletes the old control plane, the ``default`` revision
tag is moved to the new revision (``istioctl tag set default --revision REV --overwrite``, as
anthos-service-mesh-packages ``scripts/migration/migrate-to-asm`` ``set_default_tag`` does).
These two helpers guard and prove that step against the live API server:

- ``strays``: every namespace outside ``meshca:namespaces`` that still carries an injection
  label of the retiring revision is refused (MCA0341): its new pods would call an injector
  the finish deletes (failurePolicy Fail) or none at all.
- ``verify``: two server-side dry-runs (nothing is created):
  1. an AuthorizationPolicy with ``action: CUSTOM`` and no ``rules`` must be DENIED by the
     validating webhook (istio 1.19.10 ``pkg/config/validation/validation.go`` lines 1998-2001).
     An invalid ``action`` would not do: the CRD's OpenAPI enum (``crd-all.gen.yaml``) refuses
     it before any webhook runs, so it proves nothing about the validator (MCA0342 otherwise);
  2. a Pod the ``default`` tag selects (in a namespace labelled ``istio-injection=enabled`` or
     ``istio.io/rev=default``; else, labelled ``istio.io/rev=default`` itself in an unlabelled
     namespace: the tag's object selector, istio 1.19.10 ``revision-tags.yaml`` lines 66-81)
     must come back with an ``istio-proxy`` injected by REV (MCA0343 otherwise).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import yaml

from .errors import MeshcaError, MeshcaErrors
from .injection import has_proxy
from .injection import revision_or_default
from .kubeaccess import require_cluster_access
from .restart import Kubectl

PROBE = "meshca-webhook-probe"
NOT_INJECTABLE = ("kube-system", "kube-public", "kube-node-lease", "istio-system")
TAGGED = (("istio-injection", "enabled"), ("istio.io/rev", "default"))


# kubectl with the cluster's kubeconfig and context: restart's wrapper (it also names a
# timeout instead of raising).
Kube = Kubectl


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else "no output"


def namespaces(kube) -> dict[str, dict[str, str]]:
    proc = kube.run("get", "namespaces", "-o", "json")
    if proc.returncode != 0:
        raise MeshcaErrors([MeshcaError("WebhookProbeFailed", "namespaces", what="get namespaces", reason=_first_line(proc.stderr))])
    try:
        items = json.loads(proc.stdout)["items"]
        return {i["metadata"]["name"]: dict(i["metadata"].get("labels") or {}) for i in items}
    except (ValueError, KeyError, TypeError):
        raise MeshcaErrors([MeshcaError("WebhookProbeFailed", "namespaces", what="get namespaces", reason="not a namespace list")]) from None


def strays(kube, labels: dict[str, str], managed: list[str]) -> list[MeshcaError]:
    out = []
    for name, have in sorted(namespaces(kube).items()):
        if name in managed:
            continue
        for k, v in labels.items():
            if have.get(k) == v:
                out.append(MeshcaError("StrayInjectionLabel", f"namespace {name}", label=f"{k}={v}"))
    return out


def _dry_run(kube, doc: dict) -> subprocess.CompletedProcess:
    return kube.run("create", "--dry-run=server", "-f", "-", "-o", "json", stdin=yaml.safe_dump(doc, sort_keys=False))


def check_validation(kube) -> list[MeshcaError]:
    policy = {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": PROBE, "namespace": "istio-system"},
        "spec": {"action": "CUSTOM"},  # no rules: validation.go refuses it
    }
    proc = _dry_run(kube, policy)
    if proc.returncode == 0:
        return [MeshcaError("ValidationNotEnforced", "AuthorizationPolicy istio-system/" + PROBE, what="accepted")]
    if "denied the request" not in proc.stderr or "admission webhook" not in proc.stderr:
        return [MeshcaError("ValidationNotEnforced", "AuthorizationPolicy istio-system/" + PROBE, what=_first_line(proc.stderr))]
    return []


def injected_revision(pod: dict) -> str | None:
    """The revision that injected a pod, as the trust gates read it: the one reader
    (meshca/injection.py), with a proxy that carries no record of its injector counted as the
    default revision; None without an istio-proxy."""
    if not has_proxy(pod):
        return None
    return revision_or_default(pod)


def check_injection(kube, revision: str) -> list[MeshcaError]:
    found = namespaces(kube)
    tagged = sorted(n for n, labels in found.items() if any(labels.get(k) == v for k, v in TAGGED))
    if tagged:
        ns, pod_labels, where = tagged[0], {}, f"namespace {tagged[0]}"
    else:
        plain = sorted(n for n, labels in found.items() if n not in NOT_INJECTABLE and "istio-injection" not in labels and "istio.io/rev" not in labels)
        if not plain:
            return [MeshcaError("InjectionNotByRevision", "Pod", where="the cluster", what="unprobed (no namespace the default tag can select)", revision=revision)]
        ns = "default" if "default" in plain else plain[0]
        pod_labels, where = {"istio.io/rev": "default"}, f"namespace {ns} (pod labelled istio.io/rev=default)"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE, "namespace": ns, "labels": pod_labels},
        "spec": {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.9"}]},
    }
    proc = _dry_run(kube, pod)
    subject = f"Pod {ns}/{PROBE}"
    if proc.returncode != 0:
        return [MeshcaError("InjectionNotByRevision", subject, where=where, what=f"refused ({_first_line(proc.stderr)})", revision=revision)]
    try:
        got = injected_revision(json.loads(proc.stdout))
    except ValueError:
        return [MeshcaError("WebhookProbeFailed", subject, what="create --dry-run=server", reason="the answer is not JSON")]
    if got != revision:
        return [MeshcaError("InjectionNotByRevision", subject, where=where, what=f"injected by {got}" if got else "without a sidecar", revision=revision)]
    return []


def cmd_strays(args: argparse.Namespace) -> int:
    require_cluster_access(args.kubeconfig, args.context)
    labels = {}
    for item in args.label:
        k, eq, v = item.partition("=")
        if not eq or not k:
            raise MeshcaErrors([MeshcaError("UsageError", "meshca webhooks strays", problem=f"--label {item}: not key=value", usage="--label KEY=VALUE")])
        labels[k] = v
    errors = strays(Kube(args.kubeconfig, args.context), labels, list(args.namespace))
    if errors:
        raise MeshcaErrors(errors)
    shown = ", ".join(f"{k}={v}" for k, v in labels.items())
    print(f"no namespace outside the {len(args.namespace)} managed ones carries {shown}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    require_cluster_access(args.kubeconfig, args.context)
    kube = Kube(args.kubeconfig, args.context)
    errors = check_validation(kube) + check_injection(kube, args.revision)
    if errors:
        raise MeshcaErrors(errors)
    print("validation: an invalid AuthorizationPolicy was denied by the validating webhook")
    print(f"injection: a dry-run pod selected by the default tag got a {args.revision} sidecar")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("webhooks", help="guard and prove the default revision tag (steps A5, B4)")
    sub = p.add_subparsers(dest="webhooks_command", required=True, parser_class=type(p))
    s = sub.add_parser("strays", help="refuse namespaces outside meshca:namespaces that carry a retiring injection label")
    s.add_argument("--kubeconfig")
    s.add_argument("--context")
    s.add_argument("--label", action="append", required=True, metavar="KEY=VALUE")
    s.add_argument("--namespace", action="append", default=[], metavar="NS", help="a namespace meshca manages (repeat)")
    s.set_defaults(func=cmd_strays)
    v = sub.add_parser("verify", help="server-side dry-runs: the validator denies, the default tag injects REV")
    v.add_argument("--kubeconfig")
    v.add_argument("--context")
    v.add_argument("--revision", required=True)
    v.set_defaults(func=cmd_verify)


if __name__ == "__main__":  # pragma: no cover
    from .cli import main

    sys.exit(main(["webhooks", *sys.argv[1:]]))
