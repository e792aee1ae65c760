"""The revision that injected a pod, read as each Istio injector writes it (one reader for
``meshca restart``, the trust gates and the simulated mesh).

- Istio 1.19 (asmcli 1.19.10): the annotation ``istio.io/rev`` (istio/istio release-1.19
  ``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`` line 39,
  ``gateway-injection-template.yaml`` line 8; ``"default"`` for the default revision).
- Istio 1.16 (CSM 1.15/1.16), and 1.19 too: the ``revision`` field of the annotation
  ``sidecar.istio.io/status`` (release-1.16 ``pkg/kube/inject/webhook.go`` ``getInjectionStatus``,
  lines 317-342: the injector no longer sets the ``istio.io/rev`` label, so a tag in that label
  is not overwritten; ``""`` is written as ``default``).
- Istio 1.6 (Istio on GKE): the pod label ``istio.io/rev`` set to istiod's ``REVISION``
  (release-1.6 ``pkg/kube/inject/webhook.go`` line 620), ``""`` for the default revision
  (``pilot/pkg/bootstrap/options.go`` line 136). Its status annotation has no revision.

On 1.16+ a pod label ``istio.io/rev`` is the user's injector selector (a revision or a tag),
not the injector's record, so it is read only when neither annotation names a revision.
"""

from __future__ import annotations

import json

PROXY_CONTAINER = "istio-proxy"
REV_KEY = "istio.io/rev"
STATUS_KEY = "sidecar.istio.io/status"


def has_proxy(pod: dict) -> bool:
    """A container, or a native-sidecar initContainer, named ``istio-proxy``."""
    spec = pod.get("spec") or {}
    return any(c.get("name") == PROXY_CONTAINER for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))


def _status_revision(annotations: dict) -> str | None:
    text = annotations.get(STATUS_KEY)
    if not isinstance(text, str):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    rev = doc.get("revision") if isinstance(doc, dict) else None
    return rev if isinstance(rev, str) and rev else None


def injected_revision(pod: dict) -> str | None:
    """The revision whose injector wrote the pod's ``istio-proxy``; None when the pod has no
    proxy or carries no record of its injector (e.g. ``istioctl kube-inject`` output)."""
    if not has_proxy(pod):
        return None
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    rev = annotations.get(REV_KEY)
    if isinstance(rev, str) and rev:
        return rev  # 1.19
    rev = _status_revision(annotations)
    if rev:
        return rev  # 1.16
    labels = meta.get("labels") or {}
    if REV_KEY in labels:
        return labels[REV_KEY] or "default"  # 1.6: "" is the default revision
    return None


def revision_or_default(pod: dict) -> str:
    """``injected_revision``, with a pod that carries no record of its injector counted as the
    default revision's: the one rule of the trust gates, the restart wait and the gateway cut-over."""
    return injected_revision(pod) or "default"
