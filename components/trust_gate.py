"""TrustGate: one trust check of the plan (A0, A3, B0, B1, B4, C0, C4) as a dynamic resource.

Creating it runs the check (meshca/providers/trust_gate.py) and polls until it passes or its
deadline ends; a failure stops ``pulumi up`` before any step that depends on the gate. Its
inputs include the namespace digest and the restart generation, so any change of the
namespace map or a new restart re-runs it (every input change replaces the gate).

Python attributes are snake_case (``gate.namespace_digest``); the engine, the provider and the
state see camelCase (``namespaceDigest``), as every other meshca resource does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional, Sequence

import pulumi
import pulumi.dynamic

from meshca.providers.trust_gate import TrustGateProvider


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class TrustGateArgs:
    """Args of a TrustGate; each maps to the camelCase input of the same meaning."""

    gate_id: pulumi.Input[str]
    """The plan step id, e.g. ``A3.gate.root-cert``."""
    stack: pulumi.Input[str]
    """Stack name: the evidence is bound to it."""
    phase: pulumi.Input[str]
    """Phase the gate belongs to (distribute-root, mesh-ca, ...)."""
    cluster: pulumi.Input[str]
    """Cluster name from meshca:clusters."""
    check: pulumi.Input[str]
    """``root-of-trust`` | ``root-cert`` | ``workload-cert`` | ``trust-domain``."""
    namespace_digest: pulumi.Input[str]
    """meshca.plan.namespace_digest of the namespace map the gate certifies."""
    context: pulumi.Input[str] = ""
    """kubeconfig context of the cluster ("" = current context)."""
    kubeconfig: pulumi.Input[str] = ""
    """kubeconfig path ("" = $KUBECONFIG or ~/.kube/config)."""
    require: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """Roots every proxy must trust (root-cert) or allowed issuers (workload-cert)."""
    forbid: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """Roots no proxy may still trust (C4: CITADEL)."""
    retiring_deployments: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """``NS/NAME`` Deployments whose pods the phase's finish deletes (reported, not blocking)."""
    retiring_selectors: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """``NS/k=v,k=v`` pod selectors of pods the phase's finish deletes."""
    citadel_root: pulumi.Input[str] = ""
    """Path of today's root-cert.pem ("" = read cacerts / istio-ca-secret from the cluster)."""
    meshca_root: pulumi.Input[str] = ""
    """Path of a Mesh CA root PEM ("" = the pinned real Mesh CA root fingerprint)."""
    root_cert: pulumi.Input[str] = ""
    """root-of-trust only: the root-cert.pem that must equal the cluster's live root."""
    fleet_project: pulumi.Input[str] = ""
    """trust-domain only: FLEET of FLEET.svc.id.goog."""
    revisions: pulumi.Input[Sequence[str]] = field(default_factory=list)
    """trust-domain only: revisions whose ConfigMap istio-REV must accept both domains."""
    source: pulumi.Input[str] = "kube"
    """``kube`` (Kubernetes API + exec) or ``istioctl`` (kubectl and istioctl from PATH)."""
    concurrency: pulumi.Input[int] = 16
    """Proxies read at once."""
    timeout_seconds: pulumi.Input[float] = 600
    """Deadline of the whole gate: it polls until then."""
    poll_seconds: pulumi.Input[float] = 10
    """Pause between two checks while the gate has not passed."""
    restart_generation: pulumi.Input[Any] = 0
    """Changes whenever the restarts the gate certifies are redone."""
    peers: pulumi.Input[Sequence[Any]] = field(default_factory=list)
    """The same gate on the other clusters (camelCase inputs): polled together with this one
    (meshca/providers/trust_gate.py run_gang); operational, never diffed."""

    def to_props(self) -> dict[str, Any]:
        """Snake-case props (Python attribute names); TrustGate translates them to camelCase."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


INPUT_NAMES = tuple(f.name for f in fields(TrustGateArgs))
OUTPUT_NAMES = ("passed", "summary", "checked_at", "rounds")
_TO_CAMEL = {n: _camel(n) for n in INPUT_NAMES + OUTPUT_NAMES}
_TO_SNAKE = {v: k for k, v in _TO_CAMEL.items()}


class TrustGate(pulumi.dynamic.Resource, module="meshca", name="TrustGate"):
    """A trust gate: passes, with its evidence in the outputs, or fails the update."""

    gate_id: pulumi.Output[str]
    stack: pulumi.Output[str]
    phase: pulumi.Output[str]
    cluster: pulumi.Output[str]
    check: pulumi.Output[str]
    namespace_digest: pulumi.Output[str]
    restart_generation: pulumi.Output[Any]
    passed: pulumi.Output[bool]
    """True once the check passed (a failing gate is never created)."""
    summary: pulumi.Output[dict]
    """Counts (meshed, ok, failed, errors, skipped, retiring), or given/live/source for root-of-trust."""
    checked_at: pulumi.Output[str]
    """UTC time the check passed."""
    rounds: pulumi.Output[int]
    """How many checks it took (polling)."""

    def __init__(self, resource_name: str, args: TrustGateArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props = args.to_props()
        props.update({name: None for name in OUTPUT_NAMES})
        super().__init__(TrustGateProvider(), resource_name, props, opts)

    def translate_input_property(self, prop: str) -> str:
        return _TO_CAMEL.get(prop, prop)

    def translate_output_property(self, prop: str) -> str:
        return _TO_SNAKE.get(prop, prop)
