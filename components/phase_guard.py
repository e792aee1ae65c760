"""PhaseGuard: the transition guard every step of a stack waits for.

A dynamic resource (``pulumi-python:dynamic/meshca:PhaseGuard``) whose provider
(meshca/providers/phase_guard.py) compares the inputs recorded at the last ``pulumi up`` with
this run's in ``check``, so an unsafe move (a skipped phase, phase B without a passed
root-cert gate for the current namespace map, the old control plane removed while namespaces
use it, phase C early) fails ``pulumi preview`` with a coded line before anything is applied.
The rules are in meshca/transitions.py.

The evidence is the stack's own gate results, as its last ``pulumi up`` exported them
(output ``gates``, read through a StackReference to this very stack): the guard is created
before every other resource of the run, so the gates of this run cannot feed it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, TypedDict

import pulumi
import pulumi.dynamic

from meshca.config import StackConfig

from meshca.transitions import guard_inputs
from meshca.providers.phase_guard import PhaseGuardProvider

TYPE = "pulumi-python:dynamic/meshca:PhaseGuard"


class GateEvidence(TypedDict):
    """One trust gate's result, as the gate resource outputs it."""

    gateId: str
    """The plan step id of the gate, e.g. ``A3.gate.root-cert``."""
    cluster: str
    """The cluster it ran on."""
    check: str
    """``root-of-trust`` | ``root-cert`` | ``workload-cert`` | ``trust-domain``."""
    passed: bool
    """Whether every proxy satisfied the gate."""
    namespaceDigest: str
    """``plan.namespace_digest(stack, map)`` of the namespace map the gate certified."""
    stack: str
    """The stack the gate ran for."""
    phase: str
    """The phase of the gate step."""


class PhaseGuardArgs(TypedDict, total=False):
    """Inputs of a PhaseGuard (wire names; every one may be an Output)."""

    stack: pulumi.Input[str]
    """The stack name (must never change)."""
    useCase: pulumi.Input[str]
    """``migrate`` or ``upgrade`` (must never change)."""
    phase: pulumi.Input[str]
    """The stack's phase (meshca:phase)."""
    rollback: pulumi.Input[bool]
    """Whether the phase is being rolled back (meshca:rollback)."""
    namespaces: pulumi.Input[Mapping[str, str]]
    """The namespace-to-revision map (meshca:namespaces)."""
    namespaceDigest: pulumi.Input[str]
    """``plan.namespace_digest(stack, namespaces)``; checked against the map."""
    revisions: pulumi.Input[Mapping[str, str]]
    """``{old, rev1, rev2}`` revision names (must not change once phase A started)."""
    evidence: pulumi.Input[Sequence[pulumi.Input[GateEvidence]]]
    """Gate results the next transition is judged on (see meshca/transitions.py)."""
    clusters: pulumi.Input[Sequence[str]]
    """Optional: cluster names; when given, each cluster needs its own passed gate."""
    identity: pulumi.Input[Mapping[str, Any]]
    """``plan.identity(config)``: clusters, CA file digests, install options (must not change
    after baseline; operational keys are not part of it)."""


class PhaseGuard(pulumi.dynamic.Resource, module="meshca", name="PhaseGuard"):
    """Refuses, in preview, a move of the stack that is not safe (see meshca/transitions.py)."""

    transition: pulumi.Output[str]
    """The move the last ``pulumi up`` accepted, e.g. ``distribute-root -> distribute-root-done``."""

    def __init__(self, name: str, args: PhaseGuardArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: dict[str, Any] = {key: args.get(key) for key in PhaseGuardArgs.__annotations__ if key in args}
        props.setdefault("rollback", False)
        props.setdefault("evidence", [])
        props["transition"] = None
        super().__init__(PhaseGuardProvider(), name, props, opts)


def evidence_from_gates(gates: Any) -> list[dict[str, Any]]:
    """The stack output ``gates`` ({"<cluster>/<gateId>": {check, passed, ...}}) as evidence."""
    out: list[dict[str, Any]] = []
    if not isinstance(gates, Mapping):
        return out
    for key in sorted(gates):
        result = gates[key]
        if not isinstance(result, Mapping):
            continue
        cluster, _, gate_id = str(key).partition("/")
        out.append(
            {
                "gateId": gate_id,
                "cluster": cluster,
                "check": result.get("check"),
                "passed": result.get("passed"),
                "namespaceDigest": result.get("namespaceDigest"),
                "stack": result.get("stack"),
                "phase": result.get("phase"),
            }
        )
    return out


def own_gate_results(parent: pulumi.Resource) -> pulumi.Output[list]:
    """The gate results this stack's last ``pulumi up`` exported (empty before the first)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    ref = pulumi.StackReference("meshca-own-outputs", stack_name=name, opts=pulumi.ResourceOptions(parent=parent))
    return ref.get_output("gates").apply(evidence_from_gates)


def guard_args(config: StackConfig, evidence: pulumi.Input[Sequence[Any]]) -> PhaseGuardArgs:
    # The same inputs `meshca advance` judges offline (meshca/transitions.py guard_inputs).
    return PhaseGuardArgs(**guard_inputs(config, evidence))


def guard_for(config: StackConfig, parent: pulumi.Resource, evidence: pulumi.Input[Sequence[Any]] | None = None) -> PhaseGuard:
    """The stack's guard, a child of ``parent``. ``evidence`` defaults to the stack's own last
    exported gate results."""
    if evidence is None:
        evidence = own_gate_results(parent)
    return PhaseGuard(f"{config.stack}.phase-guard", guard_args(config, evidence), pulumi.ResourceOptions(parent=parent))
