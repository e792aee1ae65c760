"""Before a command reaches a cluster: the kubeconfig file and the context exist.

kubectl and the Kubernetes client resolve the kubeconfig as ``--kubeconfig``, else every file
of ``$KUBECONFIG`` (``:``-separated; missing ones are skipped, as kubectl skips them), else
``~/.kube/config``. A file that does not exist or a context no file defines would otherwise
surface as a tool's own error after a process was started (or, for kubectl without a context,
as the in-cluster or localhost:8080 default). Here it is one coded line before anything runs:
MCA1001 names the file, MCA1002 the context and the contexts the files do define.

A file that exists but does not parse is left to the tool (it names the parse error itself);
inside a pod without any kubeconfig (``KUBERNETES_SERVICE_HOST`` set) the in-cluster config
is the tool's to use.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import MeshcaError, MeshcaErrors


def kubeconfig_files(kubeconfig: str | None) -> tuple[list[Path], str]:
    """The files the tools would read, and where that list came from (for the message)."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()], "--kubeconfig"
    env = os.environ.get("KUBECONFIG", "")
    listed = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    if listed:
        return listed, "$KUBECONFIG"
    return [Path("~/.kube/config").expanduser()], "the default"


def _contexts(path: Path) -> list[str] | None:
    """Context names a kubeconfig defines; None when it cannot be read as one (the tool judges)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict):
        return None
    entries = doc.get("contexts") or []
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            out.append(entry["name"])
    return out


def require_cluster_access(kubeconfig: str | None, context: str | None) -> None:
    """Raise one coded line (MCA1001/MCA1002) when the kubeconfig or the context does not exist."""
    files, origin = kubeconfig_files(kubeconfig)
    present = [p for p in files if p.is_file()]
    if not present:
        if origin == "the default" and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return  # in a pod: the in-cluster config
        shown = os.pathsep.join(str(p) for p in files)
        raise MeshcaErrors([MeshcaError("KubeconfigNotFound", shown, origin=origin)])
    if not context:
        return
    known: list[str] = []
    for path in present:
        names = _contexts(path)
        if names is None:
            return  # unreadable: the tool reports its own parse error
        known += names
    if context not in known:
        shown = os.pathsep.join(str(p) for p in present)
        raise MeshcaErrors([MeshcaError("KubeContextNotFound", f"context {context}", files=shown, known=", ".join(sorted(set(known))) or "none")])
