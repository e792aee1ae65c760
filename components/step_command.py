"""A plan step with an argv, as a ``command:local:Command`` (shared by the components).

``create`` is exactly ``shlex.join(step.argv)``, so what `pulumi preview` shows is what an
operator would type. No ``delete`` script: removing a Command from the program (a later
phase, a rollback, `pulumi destroy`) never undoes a mesh change behind the operator's back;
undoing is always an explicit step of the plan.
"""

from __future__ import annotations

import shlex
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command

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
    env = {"MESHCA_STEP": step.id, **(environment or {})}
    return command.local.Command(
        resource_name(step),
        create=create if create is not None else shlex.join(step.argv),
        stdin=step.stdin,
        environment=env,
        # The installer's output names paths and revisions only; keep it in the log.
        logging=command.local.Logging.STDOUT_AND_STDERR,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            ignore_changes=["create", "environment"] if ignore_create_changes else None,
        ),
    )
