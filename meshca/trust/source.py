"""The one interface every source of proxy data implements (istioctl, kube, the simulated mesh).

Objects are plain Kubernetes JSON dicts, exactly as ``kubectl get -o json`` or the API
returns them, so the check logic is the same whatever the source. A source raises
``SourceError`` for a per-object failure (that pod is reported as ``error`` with the reason)
and ``MeshcaError`` for a failure that makes the whole check impossible (unreachable API
server, missing tool: exit 2).

Compatible extension: ``fetch_dump`` MAY take a keyword ``timeout`` (seconds); the runner
passes the per-pod timeout to sources whose ``fetch_dump`` accepts it, and a source that gives
up raises ``SourceTimeout``. Sources without it (an in-memory simulation) are called as before.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class SourceError(Exception):
    """Reading one object (usually one proxy's dump) failed; the reason is the message."""


class SourceTimeout(SourceError):
    """Reading one proxy's dump took longer than the per-pod timeout."""


@runtime_checkable
class ProxySource(Protocol):
    name: str

    def list_namespaces(self) -> list[str]:
        """Every namespace name in the cluster."""

    def list_pods(self, namespaces: list[str] | None) -> list[dict]:
        """Pod objects: all namespaces when ``namespaces`` is None, else only those."""

    def read_secret(self, name: str, namespace: str = "istio-system") -> dict | None:
        """A Secret object (``data`` base64), or None when it does not exist."""

    def read_configmap(self, name: str, namespace: str = "istio-system") -> dict | None:
        """A ConfigMap object, or None when it does not exist."""

    def fetch_dump(self, pod: dict) -> bytes:
        """The proxy's secret dump: istioctl ``proxy-config secret -o json`` (camelCase) or
        Envoy's ``config_dump?mask=dynamic_active_secrets`` (snake_case, wrapped)."""
