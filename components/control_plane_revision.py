"""ControlPlaneRevision: one istiod revision on one cluster, from install to removal.

Renders the plan's steps for the revision: ``asmcli --version`` (the pinned version), the
``asmcli install`` with its phase's flags (REV1 ``--ca citadel`` + the four files +
``ca-migration-citadel``; REV2 ``--ca mesh_ca`` + ``ca-migration-meshca``, no certificate
flag), the ``istiod`` Service re-targeted from its output dir, and the explicit removal
Commands of finish and rollback. `pulumi destroy` never uninstalls a revision: there is no
delete script; removal is always a step of the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pulumi

from meshca.commands import shell_join
from meshca.config import StackConfig
from meshca.plan import Step, build_cluster

from .step_command import step_command
from .step_graph import StepGraph

TYPE = "meshca:index:ControlPlaneRevision"


@dataclass
class ControlPlaneRevisionArgs:
    """Args of a ControlPlaneRevision."""

    config: StackConfig
    """The validated stack config (the plan's source)."""
    cluster: str
    """Cluster name from meshca:clusters."""
    revision: str
    """The istiod revision (old, rev1 or rev2)."""
    role: str
    """"old", "rev1" or "rev2"."""
    steps: Sequence[Step]
    """The plan's steps for this revision, in plan order."""
    graph: StepGraph
    """Where step resources are published for other components' dependencies."""
    cacerts: pulumi.Input[str] | None = None
    """For a citadel install: what the cacerts probe found (absent | matching)."""
    facts: Mapping[str, Any] | None = None
    """Typed facts the policy pack judges this component on, before its steps (components/policy_facts.py)."""
    istioctl: dict | None = None
    """Per tag-default step id: the version its istioctl reported (probed at preview, MCA0340)."""


class ControlPlaneRevision(pulumi.ComponentResource):
    revision: pulumi.Output[str]
    installed: pulumi.Output[bool]
    removed: pulumi.Output[bool]

    def __init__(self, name: str, args: ControlPlaneRevisionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        ca = next((s.params["ca"] for s in args.steps if s.action == "install"), None)
        installs = any(s.action == "install" for s in args.steps)
        removes = any(s.action == "delete-istiod" for s in args.steps)
        state = {"cluster": args.cluster, "revision": args.revision, "role": args.role, "ca": ca, "removed": removes, "installs": installs, **(args.facts or {})}
        super().__init__(TYPE, name, state, opts)
        cluster = next(c for c in args.config.clusters if c.name == args.cluster)
        for step in args.steps:
            deps = args.graph.after(step)
            if step.action == "install":
                environment = {}
                create = None
                if step.params["ca"] == "citadel" and args.cacerts is not None:
                    # The certificate flags depend on whether a matching cacerts exists
                    # (read at preview); the plan renders the argv for that fact.
                    create = pulumi.Output.from_input(args.cacerts).apply(
                        lambda fact, step=step: shell_join(build_cluster(args.config, cluster, fact).step(step.id).argv)
                    )
                    environment["MESHCA_CACERTS"] = args.cacerts
                resource = step_command(
                    step,
                    parent=self,
                    depends_on=deps,
                    create=create,
                    environment=environment,
                    # Once installed, a changed fact (cacerts now exists) or a new asmcli
                    # version must not re-run the install; reinstall with `pulumi up --replace`.
                    ignore_create_changes=True,
                )
            elif step.action == "tag-default" and args.istioctl and step.id in args.istioctl:
                # The probe's fact is an input: a wrong istioctl stops preview before any step.
                resource = step_command(step, parent=self, depends_on=deps, environment={"MESHCA_ISTIOCTL_VERSION": args.istioctl[step.id]})
            else:
                resource = step_command(step, parent=self, depends_on=deps)
            args.graph.done(step, resource)
        self.revision = pulumi.Output.from_input(args.revision)
        self.installed = pulumi.Output.from_input(installs and not removes)
        self.removed = pulumi.Output.from_input(removes)
        # Outputs are what stack policies see: the full state, plus what this position does.
        self.register_outputs({**state, "installed": self.installed})
