"""``meshca restart``: the restart step of a namespace move (A2, A6, B2, B5).

The guide's ``kubectl rollout restart deployment -n NS`` misses StatefulSets and DaemonSets,
does not wait, and restarts pods that already run on the target revision. This runs, with
kubectl from PATH and global flags right after the tool name:

    kubectl [--kubeconfig K] [--context C] get deployment ISTIOD -n istio-system -o json
    kubectl ... get deployments,statefulsets,daemonsets -n NS -o json
    kubectl ... get pods -n NS -o json
    kubectl ... rollout restart KIND/NAME -n NS          (each workload not yet on REV)
    kubectl ... rollout status KIND/NAME -n NS --timeout=T

and names the pods it cannot restart (bare pods, Job pods) so the operator can recreate them.
A rerun restarts only what is not on the target revision yet, so it converges.
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
from dataclasses import dataclass

from .errors import MeshcaError, MeshcaErrors
from .kubeaccess import require_cluster_access
from .injection import has_proxy, injected_revision  # noqa: F401  (has_proxy: part of this module's API)

KIND_NAMES = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset"}


@dataclass(frozen=True)
class Kubectl:
    """kubectl with the cluster's kubeconfig and context (stdin allowed): the one wrapper the
    helper commands share (restart, preflight, mesh-config, webhooks, gateway)."""

    kubeconfig: str | None
    context: str | None

    def argv(self, *args: str) -> list[str]:
        out = ["kubectl"]
        if self.kubeconfig:
            out += ["--kubeconfig", self.kubeconfig]
        if self.context:
            out += ["--context", self.context]
        return out + list(args)

    @property
    def where(self) -> str:
        return f"context {self.context}" if self.context else "the current context"

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = self.argv(*args)
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise MeshcaErrors([MeshcaError("ToolMissing", "kubectl", tool="kubectl")]) from None
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"kubectl {' '.join(args)} did not finish within {timeout:g} s")

    def unreachable(self, proc: subprocess.CompletedProcess) -> MeshcaErrors | None:
        """MCA0421 when kubectl says the API server cannot be reached (its StandardErrorMessage)."""
        if proc.returncode != 0 and any(m in (proc.stderr or "") for m in UNREACHABLE):
            return MeshcaErrors([MeshcaError("ApiServerUnreachable", self.where, reason=kubectl_reason(proc))])
        return None

    def get_json(self, *args: str) -> dict:
        proc = self.run("get", *args, "-o", "json")
        if proc.returncode != 0:
            raise self.unreachable(proc) or MeshcaErrors([MeshcaError("RestartListFailed", " ".join(args), reason=kubectl_reason(proc))])
        return _json(proc, " ".join(args))


# kubectl's words for "the API server cannot be reached": kubernetes/kubernetes
# staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go StandardErrorMessage ("Unable to connect to
# the server: %v", "The connection to the server %s was refused - did you specify the right host
# or port?"), and client-go's dial errors.
UNREACHABLE = ("Unable to connect to the server", "The connection to the server", "connection refused", "no such host", "i/o timeout", "TLS handshake timeout")


def kubectl_reason(proc: subprocess.CompletedProcess) -> str:
    """kubectl's own error, whole: its non-empty stderr lines (stdout if stderr is empty), joined."""
    text = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return "; ".join(lines) or f"exit status {proc.returncode} and no output"


def _json(proc: subprocess.CompletedProcess, what: str) -> dict:
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise MeshcaErrors([MeshcaError("ToolOutputNotJson", f"kubectl get {what}", reason=f"invalid JSON ({exc})")]) from None
    if not isinstance(doc, dict):
        raise MeshcaErrors([MeshcaError("ToolOutputNotJson", f"kubectl get {what}", reason=f"a JSON {type(doc).__name__}")])
    return doc


def istiod_name(revision: str) -> str:
    return "istiod" if revision == "default" else f"istiod-{revision}"


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_revision(pod: dict) -> str | None:
    """The revision that injected the pod, as its injector wrote it (meshca/injection.py), or None."""
    return injected_revision(pod)


def _opted_out(pod: dict) -> bool:
    """Pods that never get a sidecar (sidecar.istio.io/inject: "false") need no restart."""
    meta = pod.get("metadata", {})
    return "false" in (meta.get("labels", {}).get("sidecar.istio.io/inject"), meta.get("annotations", {}).get("sidecar.istio.io/inject"))


def plan_restart(workloads: list[dict], pods: list[dict], revision: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(workloads to restart as (kind, name), pods that cannot be restarted), pure."""
    todo = []
    for w in workloads:
        kind = w.get("kind")
        name = w["metadata"]["name"]
        selector = w.get("spec", {}).get("selector", {}).get("matchLabels", {})
        mine = [p for p in pods if _matches(selector, p.get("metadata", {}).get("labels", {})) and not _opted_out(p)]
        if not mine or any(pod_revision(p) != revision for p in mine):
            todo.append((kind, name))
    orphans = []
    for p in pods:
        owners = p.get("metadata", {}).get("ownerReferences") or []
        kinds = {o.get("kind") for o in owners}
        if p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if not owners:
            orphans.append(f"{p['metadata']['name']} (bare pod: delete and recreate it)")
        elif kinds & {"Job", "CronJob"}:
            orphans.append(f"{p['metadata']['name']} (Job pod: picks up {revision} at its next run)")
    return todo, orphans


def restart(kubectl: Kubectl, namespace: str, revision: str, timeout: str, out=sys.stdout) -> int:
    istiod = kubectl.run("get", "deployment", istiod_name(revision), "-n", "istio-system", "-o", "json")
    if istiod.returncode != 0:
        subject = f"istio-system/{istiod_name(revision)}"
        if "(NotFound)" in (istiod.stderr or ""):
            raise MeshcaErrors([MeshcaError("IstiodMissing", subject, name=istiod_name(revision), revision=revision, reason=kubectl_reason(istiod))])
        raise kubectl.unreachable(istiod) or MeshcaErrors([MeshcaError("RestartListFailed", subject, reason=kubectl_reason(istiod))])
    ready = int((_json(istiod, f"deployment {istiod_name(revision)}").get("status") or {}).get("readyReplicas") or 0)
    if ready < 1:
        raise MeshcaErrors([MeshcaError("IstiodNotReady", f"istio-system/{istiod_name(revision)}", name=istiod_name(revision), ready=ready)])
    workloads = kubectl.get_json("deployments,statefulsets,daemonsets", "-n", namespace).get("items", [])
    pods = kubectl.get_json("pods", "-n", namespace).get("items", [])
    todo, orphans = plan_restart(workloads, pods, revision)
    for kind, name in todo:
        ref = f"{KIND_NAMES[kind]}/{name}"
        proc = kubectl.run("rollout", "restart", ref, "-n", namespace)
        if proc.returncode != 0:
            raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RolloutFailed", f"{namespace}/{ref}", kind=KIND_NAMES[kind], name=name, timeout=timeout, namespace=namespace, reason=kubectl_reason(proc))])
        print(f"restarted {namespace}/{ref}", file=out)
    for kind, name in todo:
        ref = f"{KIND_NAMES[kind]}/{name}"
        seconds = float(timeout.rstrip("s")) + 30
        proc = kubectl.run("rollout", "status", ref, "-n", namespace, f"--timeout={timeout}", timeout=seconds)
        if proc.returncode != 0:
            raise kubectl.unreachable(proc) or MeshcaErrors([MeshcaError("RolloutFailed", f"{namespace}/{ref}", kind=KIND_NAMES[kind], name=name, timeout=timeout, namespace=namespace, reason=kubectl_reason(proc))])
        print(f"rolled out {namespace}/{ref}", file=out)
    skipped = len(workloads) - len(todo)
    print(f"namespace {namespace}: {len(todo)} restarted onto {revision}, {skipped} already on it", file=out)
    for orphan in orphans:
        print(f"cannot restart {namespace}/{orphan}", file=out)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    require_cluster_access(args.kubeconfig, args.context)
    return restart(Kubectl(args.kubeconfig, args.context), args.namespace, args.revision, args.timeout)


def register(subparsers) -> None:
    p = subparsers.add_parser("restart", help="restart a namespace's workloads onto a revision and wait (the restart step)")
    p.add_argument("--kubeconfig")
    p.add_argument("--context")
    p.add_argument("--namespace", "-n", required=True)
    p.add_argument("--revision", required=True, help="the revision the namespace is labelled for")
    # The restart step passes it in its environment (operational: never part of the argv).
    p.add_argument("--timeout", default=os.environ.get("MESHCA_RESTART_TIMEOUT") or "600s", help="per-workload rollout timeout, e.g. 600s (default: $MESHCA_RESTART_TIMEOUT or 600s)")
    p.set_defaults(func=cmd_restart)
