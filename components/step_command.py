"""A plan step with an argv, as a ``command:local:Command`` (shared by the components).

``create`` is exactly ``shell_join(step.argv)`` (``shlex.join``; the kubeconfig as ``"$KUBECONFIG"``), so what `pulumi preview` shows is what an
operator would type. No ``delete`` script: removing a Command from the program (a later
phase, a rollback, `pulumi destroy`) never undoes a mesh change behind the operator's back;
undoing is always an explicit step of the plan.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pulumi
import pulumi_command as command

from meshca.commands import shell_join
from meshca.plan import Step


def resource_name(step: Step) -> str:
    return f"{step.cluster}.{step.id}"


def step_command(
    step: Step,
    *,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
    create: pulumi.Input[str] | None = None,
    environment: Mapping[str, pulumi.Input[str]] | None = None,
    ignore_create_changes: bool = False,
) -> command.local.Command:
    env = {"MESHCA_STEP": step.id, **step.env, **(environment or {})}
    return command.local.Command(
        resource_name(step),
        create=create if create is not None else shell_join(step.argv),
        stdin=step.stdin,
        environment=env,
        # The installer's output names paths and revisions only; keep it in the log.
        logging=command.local.Logging.STDOUT_AND_STDERR,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            # History is immutable (issue 9 finding 2). pulumi-command v1.2.1 re-runs `create`
            # on ANY input change of a Command without `update`
            # (provider/pkg/provider/local/commandController.go:79-83, "Use Create command if
            # Update is unspecified"). Operational settings (kubeconfig, timeouts) live in the
            # environment; tool paths and the argv format (a meshca upgrade mid-migration) in
            # create, and what a step feeds its tool on stdin (A5/B4's istiod Service, once read
            # from asm-out/, now built by meshca): none is diffed, so a completed step never
            # runs again. What a step
            # does (its identity: revisions, clusters, CA files, overlays) may not change once
            # used: the transition guard refuses that (MCA0662). Re-run one on purpose with
            # `pulumi up --replace URN`.
            ignore_changes=["create", "environment", "stdin"],
        ),
    )
