"""The check runner: one ``CheckRequest`` against one ``ProxySource`` -> the ``--json`` document.

Used by ``meshca check``, by the TrustGate dynamic provider and by the rehearsal's simulated
mesh. Whatever the source, the verdict is made here, by cryptography only.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from .source import ProxySource

CHECKS = ("root-cert", "workload-cert", "trust-domain")


@dataclass(frozen=True)
class CheckRequest:
    check: str  # "root-cert" | "workload-cert" | "trust-domain"
    require: tuple[str, ...] = ("CITADEL", "MESHCA")
    forbid: tuple[str, ...] = ()
    namespaces: tuple[str, ...] | None = None
    retiring_deployments: tuple[tuple[str, str], ...] = ()  # (namespace, deployment)
    retiring_selectors: tuple[tuple[str, str], ...] = ()  # (namespace, "k=v,k=v")
    citadel_roots: tuple[x509.Certificate, ...] | None = None  # None: read from the cluster
    meshca_roots: tuple[x509.Certificate, ...] | None = None  # None: the pinned real Mesh CA root
    fleet_project: str | None = None
    revisions: tuple[str, ...] = ()
    concurrency: int = 16
    timeout: float = 30.0
    retries: int = 2


def run_check(source: ProxySource, request: CheckRequest, progress=None) -> dict:
    """Run one check over every meshed pod the source lists; return the ``--json`` document.

    ``progress``, when given, is called as ``progress(done, total, pod_result)`` after each pod.
    Raises ``MeshcaError`` only when the check as a whole cannot run (unreachable API server,
    missing tool, unusable reference root); per-pod problems become ``error`` entries.
    """
    raise NotImplementedError("filled in by the next commit")
