"""GatewayRevision: one ingress gateway on one cluster through the migration.

Phase A: a canary Deployment of REV1 beside the old gateway, cloned from the live one with
its HPA and PDB (``meshca gateway clone``: the pod spec, the labels the old Service selects,
the service account, the proxy in the 1.19 gateway-injection form), its own name label in the
(immutable) selector; A5 waits until the Service serves from it (``meshca gateway ready``).
Phase B re-clones it in place onto REV2 (B5: back to REV1). The retired gateways
are deleted by explicit Commands that name their Deployment (never a label selector, which
also matches gateways nobody listed: issue 9 finding 11), so they never match the canary.
Commands without a delete script: once the old gateway is gone the canary serves all traffic,
so neither `pulumi destroy` nor a later phase deletes it; a rollback deletes it with its own step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from meshca.plan import Step

from .step_command import step_command
from .step_graph import StepGraph

TYPE = "meshca:index:GatewayRevision"


@dataclass
class GatewayRevisionArgs:
    """Args of a GatewayRevision."""

    cluster: str
    """Cluster name from meshca:clusters."""
    gateway: str
    """The original gateway, "namespace/deployment"."""
    steps: Sequence[Step]
    """The plan's gateway and delete-gateway steps of this gateway, in plan order."""
    graph: StepGraph
    """Where step resources are published for other components' dependencies."""
    provider: k8s.Provider
    """The cluster's Kubernetes provider."""


class GatewayRevision(pulumi.ComponentResource):
    canary: pulumi.Output[str | None]
    revision: pulumi.Output[str | None]

    def __init__(self, name: str, args: GatewayRevisionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        applies = [s for s in args.steps if s.action == "gateway"]
        current = applies[-1] if applies else None
        state = {
            "cluster": args.cluster,
            "gateway": args.gateway,
            "canary": current.params["deployment"] if current else None,
            "revision": current.params["revision"] if current else None,
        }
        super().__init__(TYPE, name, state, opts)
        # Every step is a Command (issue 9 finding 9): A4 `meshca gateway clone` copies the live
        # gateway's Deployment, HPA and PDB by server-side apply, `meshca gateway ready` waits
        # until the Service serves from the canary, B3/B5 re-clone it onto another revision.
        # No delete script: `pulumi destroy` or a later phase never removes the canary; a
        # rollback deletes it with its own step.
        for step in args.steps:
            args.graph.done(step, step_command(step, parent=self, depends_on=args.graph.after(step)))
        self.canary = pulumi.Output.from_input(current.params["deployment"] if current else None)
        self.revision = pulumi.Output.from_input(current.params["revision"] if current else None)
        self.register_outputs({**state, "deletes": [s.id for s in args.steps if s.action == "delete-gateway"]})
