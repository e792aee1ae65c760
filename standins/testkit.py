"""Helpers for the stand-ins' own e2e tests (tests/e2e/test_standins_*.py). Not used by the stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import kubeapi  # noqa: E402

ASMCLI = HERE / "asmcli"
ISTIOCTL = HERE / "istioctl"


def run(tool: Path, args: list[str], env: dict, *, stdin: str | None = "", timeout: float = 120, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a stand-in as a program (its shebang), as meshca and pulumi run it."""
    return subprocess.run([str(tool), *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def kube(kubeconfig: str, context: str) -> kubeapi.Kube:
    return kubeapi.Kube.from_kubeconfig(kubeconfig, context)


def wait_for(what: str, fn, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except kubeapi.ApiError as exc:
            last = exc
            if not exc.not_found:
                raise
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def log_records(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def ensure_namespace(k: kubeapi.Kube, name: str, labels: dict | None = None) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    if k.get_or_none("v1", "namespaces", name) is None:
        k.create("v1", "namespaces", obj)
    else:
        k.merge_patch("v1", "namespaces", name, {"metadata": {"labels": labels or {}}})
    # pods are admitted only once the namespace's default ServiceAccount exists
    wait_for(f"serviceaccount default in {name}", lambda: k.get_or_none("v1", "serviceaccounts", "default", name), 30)


def create_pod(k: kubeapi.Kube, ns: str, name: str, *, labels: dict | None = None, annotations: dict | None = None,
               containers: list[dict] | None = None) -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}, "annotations": annotations or {}},
        "spec": {"containers": containers or [{"name": "app", "image": "example.invalid/app:1", "ports": [{"containerPort": 8080, "name": "http"}]}]},
    }
    return k.create("v1", "pods", pod, ns)


def wait_running(k: kubeapi.Kube, ns: str, name: str, timeout: float = 60) -> dict:
    def running():
        p = k.get("v1", "pods", name, ns)
        return p if (p.get("status") or {}).get("phase") == "Running" else None

    return wait_for(f"pod {ns}/{name} Running", running, timeout)


def env_for(clusters) -> dict:
    """The environment the fixture gives every process it starts (KUBECONFIG, injector URL/CA)."""
    env = dict(getattr(clusters, "env", None) or os.environ)
    env.update(getattr(clusters, "exports", {}) or {})
    return env


def standins_cluster(clusters_factory, context: str) -> dict:
    """One cluster for the stand-ins' tests (its own context, so the smoke's cluster stays untouched).

    The stand-ins' state dir is their default (beside the kubeconfig), so every module and every
    process of the session agree on the test Mesh CA; the invocation log is one file per session."""
    c = clusters_factory([context])
    env = env_for(c)
    env.pop("MESHCA_STANDIN_STATE", None)
    log = Path(env["KUBECONFIG"]).parent / "standins-tests.jsonl"
    env["MESHCA_STANDIN_LOG"] = str(log)
    return {"env": env, "kube": kube(env["KUBECONFIG"], context), "kubeconfig": env["KUBECONFIG"], "log": log, "clusters": c,
            "context": context}
