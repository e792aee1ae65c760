"""MeshcaStack: the root component of a stack: what the stack declares, for people and policy.

Its props are the stack-level facts the policy pack judges (clusters and their projects, the
three revisions, the namespace map and the batch moved at this position); its children are
the transition guard, the optional fleet prerequisites and one ClusterMigration per cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from meshca.plan import Plan, batches_of

from .cluster_migration import ClusterMigration, ClusterMigrationArgs
from .fleet_prerequisites import FleetPrerequisites, FleetPrerequisitesArgs

TYPE = "meshca:index:MeshcaStack"


@dataclass
class MeshcaStackArgs:
    """Args of MeshcaStack."""

    plan: Plan
    """The plan at the stack's position."""
    guard: Any = None
    """A factory ``guard(parent) -> Resource`` for the transition guard every step waits for."""


def current_batch(plan: Plan) -> list[str]:
    """The namespaces this position moved relative to the previous one on the route."""
    if plan.position is None or plan.position == 0:
        return []
    before = plan.route[plan.position - 1].namespace_map
    now = plan.route[plan.position].namespace_map
    return [n for n in now if now[n] != before[n]]


def stack_props(plan: Plan) -> dict[str, Any]:
    from meshca.plan import namespace_digest

    c = plan.config
    return {
        "stack": c.stack,
        "useCase": c.use_case,
        "phase": c.phase,
        "rollback": c.rollback,
        "fleetProject": c.fleet_project,
        "clusters": [{"name": cl.name, "project": cl.project, "location": cl.location, "context": cl.context} for cl in c.clusters],
        "revisions": {"old": c.old_revision, "rev1": c.rev1, "rev2": c.rev2},
        "namespaces": c.namespace_map,
        "namespaceDigest": namespace_digest(c.stack, c.namespace_map),
        "currentBatch": current_batch(plan),
        "totalNamespaces": len(c.namespaces),
        "batches": [list(b) for b in batches_of(c)],
    }


class MeshcaStack(pulumi.ComponentResource):
    gates: pulumi.Output[dict]

    def __init__(self, name: str, args: MeshcaStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        plan = args.plan
        c = plan.config
        super().__init__(TYPE, name, stack_props(plan), opts)
        after: list[pulumi.Resource] = []
        self.guard = args.guard(self) if args.guard else None
        if self.guard is not None:
            after.append(self.guard)
        if c.prerequisites == "pulumi":
            after.append(FleetPrerequisites("fleet", FleetPrerequisitesArgs(c), pulumi.ResourceOptions(parent=self)))
        self.cluster_migrations = [
            ClusterMigration(cp.cluster.name, ClusterMigrationArgs(c, cp, after), pulumi.ResourceOptions(parent=self))
            for cp in plan.clusters
        ]
        self.gates = pulumi.Output.all(*[cm.gates for cm in self.cluster_migrations]).apply(
            lambda per_cluster: {
                f"{cp.cluster.name}/{gate_id}": result
                for cp, gates in zip(plan.clusters, per_cluster)
                for gate_id, result in (gates or {}).items()
            }
        )
        # The engine's stack policies see a component's register_outputs only (they replace its
        # outputs): the full typed state, then the derived gate results.
        self.register_outputs({**stack_props(plan), "gates": self.gates})
