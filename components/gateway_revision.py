"""GatewayRevision: one ingress gateway on one cluster through the migration.

Phase A: a canary Deployment of REV1 beside the old gateway, with the labels the old Service
selects (so both serve), its own name label in the (immutable) selector, and the old
gateway's service account (same SPIFFE identity). Phase B upgrades it in place: only the
``istio.io/rev`` labels of the Deployment and its pod template change. The retired gateways
are deleted by explicit Commands that name their Deployment (never a label selector, which
also matches gateways nobody listed: issue 9 finding 11), so they never match the canary.
``retain_on_delete``: once the old gateway is gone the canary serves all traffic, so neither
`pulumi destroy` nor a later phase deletes it; a rollback deletes it with its own step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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


def deployment_args(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's manifest as typed pulumi-kubernetes args (wire names done by the SDK)."""
    meta = manifest["metadata"]
    spec = manifest["spec"]
    template = spec["template"]
    return {
        "metadata": k8s.meta.v1.ObjectMetaArgs(name=meta["name"], namespace=meta["namespace"], labels=dict(meta["labels"])),
        "spec": k8s.apps.v1.DeploymentSpecArgs(
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(spec["selector"]["matchLabels"])),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    labels=dict(template["metadata"]["labels"]),
                    annotations=dict(template["metadata"]["annotations"]),
                ),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=template["spec"]["serviceAccountName"],
                    containers=[
                        k8s.core.v1.ContainerArgs(name=c["name"], image=c["image"]) for c in template["spec"]["containers"]
                    ],
                ),
            ),
        ),
    }


class GatewayRevision(pulumi.ComponentResource):
    canary: pulumi.Output[str | None]
    revision: pulumi.Output[str | None]

    def __init__(self, name: str, args: GatewayRevisionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        applies = [s for s in args.steps if s.action == "gateway"]
        current = applies[-1] if applies else None
        super().__init__(
            TYPE,
            name,
            {
                "cluster": args.cluster,
                "gateway": args.gateway,
                "canary": current.params["deployment"] if current else None,
                "revision": current.params["revision"] if current else None,
            },
            opts,
        )
        self.deployment = None
        if current is not None:
            # One Deployment for every gateway step (A4 canary, B3 upgrade, B5 downgrade):
            # its props and dependencies are the last step's; earlier steps hand over.
            self.deployment = k8s.apps.v1.Deployment(
                f"{args.cluster}.gateway.{current.params['namespace']}.{current.params['deployment']}",
                **deployment_args(current.params["manifest"]),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.provider,
                    depends_on=args.graph.after(current),
                    retain_on_delete=True,
                ),
            )
            for step in applies[:-1]:
                args.graph.stand_in(step)
            args.graph.done(current, self.deployment)
        for step in args.steps:
            if step.action == "delete-gateway":
                args.graph.done(step, step_command(step, parent=self, depends_on=args.graph.after(step)))
        self.canary = pulumi.Output.from_input(current.params["deployment"] if current else None)
        self.revision = pulumi.Output.from_input(current.params["revision"] if current else None)
        self.register_outputs({"canary": self.canary, "revision": self.revision})
