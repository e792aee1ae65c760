"""The typed facts a component states in its props, so the policy pack's resource rules can
refuse it on its own inputs BEFORE any of its steps runs.

The engine hands a resource policy one resource's inputs, never its dependencies
(pulumi/pulumi proto/pulumi/analyzer.proto ``AnalyzeRequest``: type, properties, urn, name,
options, provider), and runs stack policies only after every step of ``pulumi up`` was applied
(pkg/resource/deploy/deployment_executor.go: ``WaitForCompletion`` then ``AnalyzeResources``).
So the component that would do the damage (remove an istiod, install REV2, delete the CA
secrets, move a namespace) states what a rule needs to judge it: the stack's namespace map,
the gates and backups its damaging step waits for (from the plan's ``depends_on``, the same
ids the StepGraph wires), the control planes its cluster keeps. A refused component never
registers, so none of its children can (policy/rules.py, "resource rules").
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from meshca.config import StackConfig
from meshca.plan import ClusterPlan, Step


def stack_facts(config: StackConfig) -> dict[str, Any]:
    """The position: phase, rollback, the namespace map, the three revisions."""
    return {
        "phase": config.phase,
        "rollback": config.rollback,
        "namespaces": dict(config.namespace_map),
        "revisions": {"old": config.old_revision, "rev1": config.rev1, "rev2": config.rev2},
    }


def waits_for(step: Step, steps: Sequence[Step]) -> list[Step]:
    """Every step ``step`` waits for, transitively (plan order)."""
    by_id = {s.id: s for s in steps}
    seen: set[str] = set()
    todo = list(step.depends_on)
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in by_id:
            continue
        seen.add(sid)
        todo.extend(by_id[sid].depends_on)
    return [s for s in steps if s.id in seen]


def gates(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [{"gate": s.id, "check": s.params["check"], "require": list(s.params["require"])} for s in steps if s.action == "gate"]


def control_plane_facts(config: StackConfig, cp: ClusterPlan, steps: Sequence[Step]) -> dict[str, Any]:
    """For a ControlPlaneRevision: who runs which revision after this position, and the gates
    its install waits for."""
    install = next((s for s in steps if s.action == "install"), None)
    gateways = {gw: config.old_revision for gw in cp.desired.old_gateways}
    gateways.update(cp.desired.canary_gateways)
    return {
        **stack_facts(config),
        "gateways": gateways,
        "installAfter": gates(waits_for(install, cp.steps)) if install is not None else [],
    }


def namespace_facts(config: StackConfig, cp: ClusterPlan) -> dict[str, Any]:
    """For a NamespaceRevision: the declared revisions, the control planes its cluster keeps
    after this position, and those this position removes."""
    return {
        "revisions": {"old": config.old_revision, "rev1": config.rev1, "rev2": config.rev2},
        "controlPlanes": list(cp.desired.control_planes),
        "removes": [s.params["revision"] for s in cp.steps if s.action == "delete-istiod"],
    }


def ca_secrets_facts(config: StackConfig, cp: ClusterPlan, steps: Sequence[Step]) -> dict[str, Any]:
    """For CaSecrets: the Secrets its deletion removes, the backups and gates it waits for."""
    deletion = next((s for s in steps if s.action == "delete-ca-secrets"), None)
    before = waits_for(deletion, cp.steps) if deletion is not None else []
    return {
        **stack_facts(config),
        "deletes": [o.rsplit("/", 1)[-1] for o in deletion.objects if o.startswith("Secret/")] if deletion is not None else [],
        "backupsBefore": [s.params["secret"] for s in before if s.action == "backup-ca-secret"],
        "deletionAfter": gates(before),
    }
