"""The built-in mesh: a stack written to a temporary project and loaded through the real
config validation, so scenarios run on exactly what a user's stack would be.

Its CA is a throwaway test CA generated once per process (TEST ONLY, like samples/certs).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

import yaml

from .. import pki
from ..config import StackConfig, load_stack_file
from ..errors import MeshcaError

NAMES = (
    "frontend", "cart", "checkout", "payments", "catalog", "search", "recommendations", "shipping",
    "inventory", "accounts", "notifications", "ads", "reviews", "pricing", "orders", "media",
    "auth", "billing", "reports", "gateway-api",
)
LIMITS = {"clusters": (1, 16), "namespaces": (1, 1000), "workloads": (1, 30), "batch_size": (1, 1000)}
DEFAULTS = {"clusters": 2, "namespaces": 4, "workloads": 3, "batch_size": 2}
FLEET = "builtin-mesh"

_LOCK = threading.Lock()
_CA_DIR: list[Path] = []


def check_size(option: str, value: int) -> int:
    low, high = LIMITS[option.lstrip("-").replace("-", "_")]
    if not low <= value <= high:
        raise MeshcaError("RehearseSizeInvalid", f"--{option.lstrip('-').replace('_', '-')}", value=value, low=low, high=high)
    return value


def namespace_names(count: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"ns-{i + 1}" for i in range(count)]


def _location(i: int) -> str:
    """Zone of cluster ``i`` (1-based): us-central1-a..h, then us-east1-a..h."""
    return f"{('us-central1', 'us-east1')[(i - 1) // 8]}-{'abcdefgh'[(i - 1) % 8]}"


def _ca_dir() -> Path:
    with _LOCK:
        if not _CA_DIR:
            directory = Path(tempfile.mkdtemp(prefix="meshca-builtin-ca-"))
            atexit.register(shutil.rmtree, directory, True)
            root, ca = pki.citadel_ca("meshca-rehearsal-builtin-TEST-ONLY")
            pki.write_ca_files(directory, root, ca)
            _CA_DIR.append(directory)
        return _CA_DIR[0]


def builtin_config(
    *,
    clusters: int = DEFAULTS["clusters"],
    namespaces: int = DEFAULTS["namespaces"],
    batch_size: int = DEFAULTS["batch_size"],
    use_case: str = "migrate",
    gateway: bool = True,
    directory: Path | None = None,
    ca_dir: Path | None = None,
) -> StackConfig:
    """The built-in mesh's stack, validated like any Pulumi.<stack>.yaml: written to
    ``directory`` (default: a temporary project), with the four CA files of ``ca_dir``
    (default: the throwaway test CA of this process)."""
    check_size("clusters", clusters)
    check_size("namespaces", namespaces)
    check_size("batch_size", batch_size)
    ca = ca_dir or _ca_dir()
    project = directory or Path(tempfile.mkdtemp(prefix="meshca-builtin-"))
    if directory is None:
        atexit.register(shutil.rmtree, project, True)
    old = "default" if use_case == "migrate" else "asm-1169-3"
    config = {
        "meshca:useCase": use_case,
        "meshca:phase": "baseline",
        "meshca:fleetProject": FLEET,
        "meshca:oldRevision": old,
        "meshca:rev1": "asm-11910-9-distribute-root",
        "meshca:rev2": "asm-11910-9-meshca-ca-migration",
        "meshca:batchSize": batch_size,
        "meshca:clusters": [
            {
                "name": f"cluster-{i}",
                "project": FLEET,
                "location": _location(i),
                "kubeconfig": "kubeconfigs/builtin.yaml",
                "context": f"gke_{FLEET}_{_location(i)}_cluster-{i}",
            }
            for i in range(1, clusters + 1)
        ],
        "meshca:caFiles": {
            "caCert": str(ca / "ca-cert.pem"),
            "caKey": str(ca / "ca-key.pem"),
            "rootCert": str(ca / "root-cert.pem"),
            "certChain": str(ca / "cert-chain.pem"),
        },
        "meshca:gateways": [{"namespace": "istio-system", "deployment": "istio-ingressgateway", "service": "istio-ingressgateway"}] if gateway else [],
        "meshca:namespaces": {n: old for n in namespace_names(namespaces)},
    }
    (project / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "meshca-builtin", "runtime": "python"}))
    path = project / "Pulumi.builtin.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return load_stack_file(path)
