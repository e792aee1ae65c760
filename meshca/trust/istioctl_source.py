"""The ``istioctl`` source: ``kubectl`` and ``istioctl`` from PATH, as real subprocesses.

Exactly these calls (global flags ``--kubeconfig K --context C`` right after the tool name):
``kubectl get namespaces -o json``; ``kubectl get pods -A -o json`` (or ``-n NS`` per requested
namespace); ``kubectl get secret cacerts|istio-ca-secret -n istio-system -o json``;
``kubectl get configmap istio-REV -n istio-system -o json``; and one
``istioctl proxy-config secret POD -n NS -o json`` per checked pod.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Mapping, Sequence

from ..errors import MeshcaError
from .source import SourceError, SourceTimeout

# kubectl's words for "the API server cannot be reached" (client-go / kubectl messages)
_UNREACHABLE = (
    "Unable to connect to the server",
    "The connection to the server",
    "connection refused",
    "no such host",
    "i/o timeout",
    "TLS handshake timeout",
    "net/http: request canceled",
)
# Reads of the whole cluster get at least this long, whatever the per-pod timeout.
LIST_TIMEOUT = 120.0


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "no output"


class IstioctlSource:
    name = "istioctl"

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        need_istioctl: bool = True,
        env: Mapping[str, str] | None = None,
        list_timeout: float = LIST_TIMEOUT,
    ) -> None:
        self.kubeconfig = kubeconfig or None
        self.context = context or None
        self.env = dict(env) if env is not None else None
        self.list_timeout = list_timeout
        path = (self.env or os.environ).get("PATH", os.defpath)
        # Resolved once, up front: a missing tool is a whole-check failure (exit 2), not N pod errors.
        self.kubectl = shutil.which("kubectl", path=path)
        if self.kubectl is None:
            raise MeshcaError("CheckToolMissing", "kubectl", tool="kubectl")
        self.istioctl = shutil.which("istioctl", path=path) if need_istioctl else None
        if need_istioctl and self.istioctl is None:
            raise MeshcaError("CheckToolMissing", "istioctl", tool="istioctl")

    def close(self) -> None:
        """Nothing to release: every call is its own process."""

    @property
    def where(self) -> str:
        return f"context {self.context}" if self.context else "the current context"

    def _globals(self) -> list[str]:
        flags: list[str] = []
        if self.kubeconfig:
            flags += ["--kubeconfig", self.kubeconfig]
        if self.context:
            flags += ["--context", self.context]
        return flags

    def _run(self, tool: str, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
        exe = self.kubectl if tool == "kubectl" else self.istioctl
        argv = [exe, *self._globals(), *args]
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise MeshcaError("CheckToolMissing", tool, tool=tool) from None

    def _kubectl_json(self, args: Sequence[str], *, not_found_ok: bool = False) -> dict | None:
        shown = "kubectl " + " ".join(args)
        try:
            proc = self._run("kubectl", args, self.list_timeout)
        except subprocess.TimeoutExpired:
            raise MeshcaError("ApiServerUnreachable", self.where, reason=f"{shown} took more than {self.list_timeout:g} s") from None
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            if not_found_ok and "(NotFound)" in stderr:
                return None
            line = _first_line(stderr)
            if any(marker in stderr for marker in _UNREACHABLE):
                raise MeshcaError("ApiServerUnreachable", self.where, reason=line)
            if "context" in stderr and "does not exist" in stderr:
                raise MeshcaError("KubeconfigInvalid", self.kubeconfig or "kubeconfig", reason=line)
            raise MeshcaError("KubectlFailed", shown, reason=line)
        try:
            doc = json.loads(proc.stdout)
        except ValueError as exc:
            raise MeshcaError("ToolOutputNotJson", shown, reason=f"invalid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise MeshcaError("ToolOutputNotJson", shown, reason=f"a JSON {type(doc).__name__}")
        return doc

    # -- ProxySource --------------------------------------------------------------------------

    def list_namespaces(self) -> list[str]:
        doc = self._kubectl_json(["get", "namespaces", "-o", "json"])
        return [i["metadata"]["name"] for i in doc.get("items") or []]

    def list_pods(self, namespaces: list[str] | None) -> list[dict]:
        if namespaces is None:
            return list(self._kubectl_json(["get", "pods", "-A", "-o", "json"]).get("items") or [])
        pods: list[dict] = []
        for ns in namespaces:
            pods += self._kubectl_json(["get", "pods", "-n", ns, "-o", "json"]).get("items") or []
        return pods

    def read_secret(self, name: str, namespace: str = "istio-system") -> dict | None:
        return self._kubectl_json(["get", "secret", name, "-n", namespace, "-o", "json"], not_found_ok=True)

    def read_configmap(self, name: str, namespace: str = "istio-system") -> dict | None:
        return self._kubectl_json(["get", "configmap", name, "-n", namespace, "-o", "json"], not_found_ok=True)

    def fetch_dump(self, pod: dict, timeout: float | None = None) -> bytes:
        if self.istioctl is None:
            raise MeshcaError("CheckToolMissing", "istioctl", tool="istioctl")
        meta = pod["metadata"]
        args = ["proxy-config", "secret", meta["name"], "-n", meta["namespace"], "-o", "json"]
        try:
            proc = self._run("istioctl", args, timeout or 30.0)
        except subprocess.TimeoutExpired:
            raise SourceTimeout(f"istioctl proxy-config secret took more than {timeout:g} s") from None
        if proc.returncode != 0:
            raise SourceError(f"istioctl exited {proc.returncode}: {_first_line(proc.stderr.decode('utf-8', 'replace'))}")
        return proc.stdout
