"""NamespaceRevision: the injection label of one namespace on one cluster, and its restarts.

Each move is the documented atomic ``kubectl label namespace NS istio.io/rev=R
istio-injection- --overwrite`` (one request, so the namespace never carries both labels;
it removes ``istio-injection`` even where kubectl set it, which a server-side-apply patch
could not, as Pulumi does not own that field). A ``NamespacePatch`` then holds the desired
labels as state (a forced server-side apply, see below): drift shows in preview, and the policy
pack judges its labels. ``retain_on_delete``: destroy or a later phase never strips a label;
a rollback is a new label value. Every revision change restarts the namespace's Deployments,
StatefulSets and DaemonSets and waits for the rollouts (``meshca restart``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from meshca.plan import Step

from .step_command import step_command
from .step_graph import StepGraph

TYPE = "meshca:index:NamespaceRevision"


@dataclass
class NamespaceRevisionArgs:
    """Args of a NamespaceRevision."""

    cluster: str
    """Cluster name from meshca:clusters."""
    namespace: str
    """The namespace."""
    revision: str
    """The revision its pods run once the position's steps are done."""
    labels: Mapping[str, str]
    """The desired labels (the one injection label plus the stack's extra labels)."""
    steps: Sequence[Step]
    """The plan's label and restart steps of this namespace, in plan order."""
    graph: StepGraph
    """Where step resources are published for other components' dependencies."""
    provider: k8s.Provider
    """The cluster's Kubernetes provider."""
    facts: Mapping[str, Any] | None = None
    """Typed facts the policy pack judges this component on, before its steps (components/policy_facts.py)."""


class NamespaceRevision(pulumi.ComponentResource):
    revision: pulumi.Output[str]
    labels: pulumi.Output[dict]

    def __init__(self, name: str, args: NamespaceRevisionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        state = {"cluster": args.cluster, "namespace": args.namespace, "revision": args.revision, **(args.facts or {})}
        super().__init__(TYPE, name, state, opts)
        last_label = None
        for step in args.steps:
            resource = step_command(step, parent=self, depends_on=args.graph.after(step))
            args.graph.done(step, resource)
            if step.action == "label":
                last_label = resource
        self.patch = k8s.core.v1.NamespacePatch(
            f"{args.cluster}.namespace.{args.namespace}",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=args.namespace,
                labels=dict(args.labels),
                # Forced: preview server-side dry-runs the patch while the live label still
                # holds the previous revision, co-owned by kubectl-label since the last move,
                # so an unforced apply conflicts ("conflict with kubectl-label ... istio.io/rev",
                # seen on the real engine at mesh-ca batch 1). pulumi-kubernetes 4.25.0, the
                # provider the Go module proxy serves (toolchain/pins.json), forces only through
                # this annotation, which it also writes on the live Namespace (only
                # pulumi.com/autonamed is internal, provider/pkg/metadata/annotations.go); the
                # provider-level enablePatchForce that keeps objects clean exists from 4.29
                # (#4242). Switch to it when the pin can move.
                annotations={"pulumi.com/patchForce": "true"},
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[last_label] if last_label else None,
                retain_on_delete=True,
            ),
        )
        self.revision = pulumi.Output.from_input(args.revision)
        self.labels = pulumi.Output.from_input(dict(args.labels))
        self.register_outputs({**state, "labels": self.labels})
