"""The stack program: config (validated) -> plan -> MeshcaStack. ``__main__.py`` calls run().

Invalid config registers nothing: every problem is logged as one coded line and the program
stops before the first resource. The stack's outputs are the evidence promotion and the
transition guard read: phase, namespace map and its digest, and every gate's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from meshca import heap
from meshca import plan as planmod
from meshca.config import NS, StackConfig, from_pulumi_config
from meshca.errors import MeshcaError, MeshcaErrors

from meshca.promote import upstream_refusals

from . import cycle_breaker, output_drain, stack_trace
from .meshca_stack import MeshcaStack, MeshcaStackArgs
from .phase_guard import guard_for, own_gate_results


# The organization of every stack on the local file backend (pulumi/pulumi
# pkg/backend/diy/backend.go:185-187), what pulumi.get_organization() returns there.
DIY_ORGANIZATION = "organization"


def project_dir() -> Path:
    """Where Pulumi.yaml is: the working directory Pulumi runs the program in."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (candidate / "Pulumi.yaml").exists():
            return candidate
    return Path.cwd()


def read_config() -> StackConfig:
    values: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return from_pulumi_config(
        {k: v for k, v in values.items() if k.startswith(f"{NS}:")},
        stack=pulumi.get_stack(),
        project_dir=project_dir(),
        secret_keys=secret_keys,
    )


def fail(errors: MeshcaErrors, what: str = "problem(s) in the stack config") -> None:
    for line in errors.lines():
        pulumi.log.error(line)
    raise pulumi.RunError(f"meshca: {len(errors.errors)} {what}; nothing was registered")


def roles(config: StackConfig) -> dict[str, str]:
    names = {config.old_revision: "old", config.rev1: "rev1", config.rev2: "rev2"}
    return {ns: names[rev] for ns, rev in config.namespace_map.items()}


def upstream_checked(config: StackConfig) -> pulumi.Output | None:
    """The upstream stack's position, read through a StackReference; fails the program when
    this stack would run ahead of it. None without meshca:upstreamStack, or at baseline (a
    stack that has not started cannot be ahead)."""
    if not config.upstream_stack:
        return None
    org, _, rest = config.upstream_stack.partition("/")
    if pulumi.get_organization() == DIY_ORGANIZATION and org != DIY_ORGANIZATION:
        # pulumi/pulumi pkg/backend/diy/store.go:172-174 refuses it inside the engine.
        fail(
            MeshcaErrors([MeshcaError("UpstreamStackOtherBackend", f"{NS}:upstreamStack {config.upstream_stack}", org=org, rest=rest)]),
            what="problem(s) with meshca:upstreamStack",
        )
    if config.phase == "baseline":
        return None
    ref = pulumi.StackReference("upstream", stack_name=config.upstream_stack)

    def judge(outputs: dict) -> str:
        refusals = upstream_refusals(config, outputs)
        if refusals:
            fail(MeshcaErrors(refusals), what=f"reason(s) this stack would run ahead of {config.upstream_stack}")
        return str(outputs.get("phase"))

    return ref.outputs.apply(judge)


def guard_factory(config: StackConfig):
    """The transition guard: judges old -> new in preview (components/phase_guard.py). It also
    waits for the upstream check, so a stack running ahead registers no step at all."""
    upstream = upstream_checked(config)

    def make(parent: pulumi.Resource):
        evidence = own_gate_results(parent)
        if upstream is not None:
            evidence = pulumi.Output.all(evidence, upstream).apply(lambda both: both[0])
        return guard_for(config, parent, evidence)

    return make


def run() -> MeshcaStack:
    cycle_breaker.install()  # before the first resource (see components/cycle_breaker.py)
    output_drain.install()  # before the program returns (see components/output_drain.py)
    stack_trace.install()  # before the first resource (see components/stack_trace.py)
    # A big stack is a large long-lived graph of Outputs: fewer young collections, far fewer full
    # ones (meshca/heap.py). For the process: the language host's, which ends with the program.
    heap.raise_young_threshold()
    try:
        config = read_config()
    except MeshcaErrors as exc:
        fail(exc)
    plan = planmod.build(config)
    stack = MeshcaStack("meshca", MeshcaStackArgs(plan=plan, guard=guard_factory(config)))
    pulumi.export("stack", config.stack)
    pulumi.export("useCase", config.use_case)
    pulumi.export("phase", config.phase)
    pulumi.export("rollback", config.rollback)
    pulumi.export("namespaces", config.namespace_map)
    pulumi.export("namespaceRoles", roles(config))
    pulumi.export("namespaceDigest", planmod.namespace_digest(config.stack, config.namespace_map))
    pulumi.export("position", plan.position)
    pulumi.export("revisions", {"old": config.old_revision, "rev1": config.rev1, "rev2": config.rev2})
    pulumi.export("gates", stack.gates)
    return stack
