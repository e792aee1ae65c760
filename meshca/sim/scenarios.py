"""Built-in scenarios: mutations of a stack config, of its route, or of its step list, and
faults injected by hooks (with the operator's remedy before ``pulumi up`` runs again).

None of them states an outcome: each only changes what is done, and the engine, the
simulated mesh and real handshakes decide what happens. Tests derive the expected failures
independently, from the trust rules. ``FAULTS`` names the fault rehearsals: each injects one
fault a real migration meets; tests/test_fault_scenarios.py checks that the plan's guards
keep every handshake working, that the fault is reported with a code, and that a rerun
converges.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import pki
from ..certs import CaFiles
from ..config import StackConfig
from ..errors import MeshcaError
from ..plan import Position, Step, batches_of
from .emulator import Result
from .engine import CANARY, Hook, HookContext, Remedy, RoutePoint, Scenario, StepContext, default_points
from .mesh import Workload


# ----------------------------------------------------------------------------- big-bang


def _mesh_ca_first(ctx: StepContext, steps: list[Step]) -> list[Step]:
    """A1 installs a Mesh CA-signing revision (no root distributed first), as before 1.10."""
    out = []
    for s in steps:
        if s.action == "install" and s.params.get("ca") == "citadel":
            argv = list(s.argv)
            i = argv.index("--ca")
            argv[i + 1] = "mesh_ca"
            for flag in ("--ca_cert", "--ca_key", "--root_cert", "--cert_chain"):
                if flag in argv:
                    j = argv.index(flag)
                    del argv[j : j + 2]
            argv[argv.index("ca-migration-citadel")] = "ca-migration-meshca"
            params = {**s.params, "ca": "mesh_ca", "option": "ca-migration-meshca", "certFlags": False}
            s = dataclasses.replace(s, argv=tuple(argv), params=params, title=f"{s.title} [big-bang: --ca mesh_ca]")
        out.append(s)
    return out


# ----------------------------------------------------------------------------- skip-restart


def _no_restarts_in_a(ctx: StepContext, steps: list[Step]) -> list[Step]:
    return [s for s in steps if not (s.action == "restart" and s.phase == "distribute-root")]


# ----------------------------------------------------------------------------- early-secret-delete


def _secrets_after_first_b_batch(ctx: StepContext, steps: list[Step]) -> list[Step]:
    """Phase C's backup, secret deletion and control-plane restart right after the first B2
    batch, while the later batches' namespaces still run REV1 with Citadel certificates."""
    pos = ctx.point.position
    if pos.phase != "mesh-ca" or pos.batch != 1 or pos.rollback:
        return steps
    final = ctx.final_plan().cluster(ctx.cluster)
    early = [s for s in final.steps if s.procedure in ("C1", "C2", "C3")]
    return steps + [dataclasses.replace(s, title=f"{s.title} [early]") for s in early]


# ----------------------------------------------------------------------------- REV2's explicit Citadel root


def _without_root_overlay(config: StackConfig, workspace: Path) -> StackConfig:
    """meshca:rev2CitadelRoot false: the plan renders neither the overlay nor its removal."""
    return dataclasses.replace(config, rev2_citadel_root=False)


def _no_drop_root(ctx: StepContext, steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.action != "drop-root"]


# ----------------------------------------------------------------------------- wrong-root


def _new_ca_files(config: StackConfig, workspace: Path) -> StackConfig:
    """CA files of a brand-new root instead of the one the mesh trusts today."""
    root, ca = pki.citadel_ca("meshca-rehearsal-WRONG-root")
    paths = pki.write_ca_files(workspace / "wrong-ca", root, ca)
    files = CaFiles(**paths, display={role: str(p) for role, p in paths.items()})
    return dataclasses.replace(config, ca_files=files)


# ----------------------------------------------------------------------------- rollbacks


def _middle(config: StackConfig) -> int:
    return max(1, len(batches_of(config)) // 2)


def _rollback_route(phase: str, resume_from: str):
    """The route up to the middle batch of ``phase``, its rollback there, the position the
    rollback leaves the mesh in (``resume_from``), then the route again from ``phase``'s start."""

    def route(config: StackConfig, positions: tuple[Position, ...]) -> list[RoutePoint]:
        batch = _middle(config)
        at = next(p.index for p in positions if p.phase == phase and p.batch == batch)
        back = next(p for p in positions if p.phase == resume_from)
        start = next(p.index for p in positions if p.phase == phase)
        points = default_points(positions[: at + 1])
        here = positions[at]
        points.append(RoutePoint(dataclasses.replace(here, rollback=True), f"{phase}: ROLLBACK from batch {batch}/{here.batches}"))
        points.append(RoutePoint(back, f"{back.phase}: after the rollback"))
        points += default_points(positions[start:])
        return points

    return route


# ----------------------------------------------------------------------------- faults
#
# Hooks fire once per rehearsal (``Rehearsal.scratch`` keeps what they did); each acts on the
# first cluster unless it says otherwise, so the scenarios run on any stack.


def _first_cluster(ctx: HookContext) -> bool:
    return ctx.step.cluster == ctx.rehearsal.config.clusters[0].name


def _once(ctx: HookContext, key: str) -> bool:
    """True the first time ``key`` is claimed in this rehearsal."""
    if ctx.rehearsal.scratch.get(key):
        return False
    ctx.rehearsal.scratch[key] = True
    return True


def _second_batch_first_namespace(config: StackConfig) -> str:
    batches = batches_of(config)
    return batches[1][0] if len(batches) > 1 else batches[0][0]


def _break_a_rollout(ctx: HookContext) -> None:
    """A workload of one namespace whose new pods never start (the old ones keep serving)."""
    ns = ctx.step.params.get("namespace")
    if not _first_cluster(ctx) or ns != _second_batch_first_namespace(ctx.rehearsal.config) or not _once(ctx, "rollout-fault"):
        return
    mine = sorted((w for w in ctx.cluster.workloads.values() if w.namespace == ns and not w.bare), key=lambda w: (w.kind != "StatefulSet", w.name))
    mine[0].rollout_error = "0/1 new pods ready: ImagePullBackOff (the registry refused the image)"
    ctx.note(f"fault: {mine[0].kind} {ns}/{mine[0].name} cannot start new pods")


def _fix_rollouts(rehearsal) -> None:
    for cluster in rehearsal.mesh.clusters.values():
        for w in cluster.workloads.values():
            w.rollout_error = None


def _last_namespace_of_phase_a(config: StackConfig) -> str:
    return batches_of(config)[-1][-1]


def _slow_rollout(ctx: HookContext) -> Result | None:
    """The last restart of phase A returns before its pods are replaced (still rolling out)."""
    step = ctx.step
    if step.phase != "distribute-root" or step.params.get("namespace") != _last_namespace_of_phase_a(ctx.rehearsal.config):
        return None
    if not _first_cluster(ctx) or not _once(ctx, "slow-rollout"):
        return None
    ctx.rehearsal.scratch["slow-rollout-pending"] = (step.cluster, step.params.get("namespace"), ctx.rehearsal.config.rev1)
    return Result(0, f"namespace {step.params.get('namespace')}: rollout restarted, pods still being replaced", cluster=step.cluster)


def _rollout_finishes(ctx: HookContext) -> None:
    pending = ctx.rehearsal.scratch.get("slow-rollout-pending")
    if pending and ctx.cluster.name == pending[0] and ctx.attempt >= 2:
        ctx.cluster.restart_namespace(pending[1], pending[2])
        ctx.rehearsal.scratch["slow-rollout-pending"] = None
        ctx.note(f"namespace {pending[1]}: rollout finished while the gate polled")


def _interrupt_after_asmcli(ctx: HookContext) -> Result | None:
    """pulumi up is interrupted while A1 runs, after asmcli created cacerts and installed REV1."""
    if not _first_cluster(ctx) or not _once(ctx, "interrupt-a1"):
        return None
    done = ctx.rehearsal.emulator.run(ctx.step.argv, ctx.step.stdin, subject=f"{ctx.step.cluster}: {ctx.step.id}")
    ctx.note(f"asmcli exited {done.rc}; then pulumi up was interrupted")
    return Result(130, stderr="pulumi up interrupted (SIGINT) while asmcli install ran; asmcli had already created Secret istio-system/cacerts", cluster=ctx.step.cluster)


def _interrupt_before_a_restart(ctx: HookContext) -> Result | None:
    """pulumi up is interrupted again in phase A's second batch: labelled, not yet restarted."""
    step = ctx.step
    if step.phase != "distribute-root" or step.params.get("namespace") != _second_batch_first_namespace(ctx.rehearsal.config):
        return None
    if not _first_cluster(ctx) or not _once(ctx, "interrupt-a2"):
        return None
    return Result(130, stderr=f"pulumi up interrupted (SIGINT) after labelling {step.params.get('namespace')}, before its restart", cluster=step.cluster)


def _istiod_not_ready(ctx: HookContext) -> None:
    if not _first_cluster(ctx) or not _once(ctx, "istiod-not-ready"):
        return
    rev = ctx.rehearsal.config.rev1
    ctx.cluster.istiods[rev].ready = False
    ctx.note(f"fault: istiod-{rev} has no ready replica (its pods are Pending)")


def _istiods_ready(rehearsal) -> None:
    for cluster in rehearsal.mesh.clusters.values():
        for istiod in cluster.istiods.values():
            istiod.ready = True


def _cut_last_cluster(ctx: HookContext) -> None:
    """The last cluster becomes unreachable after phase A's first batch moved on it."""
    config = ctx.rehearsal.config
    if ctx.step.cluster != config.clusters[-1].name or ctx.step.phase != "distribute-root":
        return
    if ctx.step.params.get("namespace") != batches_of(config)[0][-1] or not _once(ctx, "cut"):
        return
    ctx.cluster.reachable = False
    ctx.note("fault: the API server is unreachable (network path lost)")


def _reconnect(rehearsal) -> None:
    for cluster in rehearsal.mesh.clusters.values():
        cluster.reachable = True


BARE_POD = "debug-shell"


def _start_a_bare_pod(ctx: HookContext) -> None:
    """Someone started a bare pod (no controller) in the namespace phase A moves last."""
    if not _first_cluster(ctx) or not _once(ctx, "bare-pod"):
        return
    ns = _last_namespace_of_phase_a(ctx.rehearsal.config)
    labels = {"app": BARE_POD}
    ctx.cluster.add_workload(Workload(kind="Pod", namespace=ns, name=BARE_POD, labels=dict(labels), template_labels=dict(labels), template_annotations={}, service_account="default"))
    ctx.note(f"a bare pod {ns}/{BARE_POD} runs on the old revision")


def _recreate_bare_pods(rehearsal) -> None:
    """Two days later the operator reads the gate's report and recreates the pod it names."""
    rehearsal.mesh.advance(48 * 60)
    for cluster in rehearsal.mesh.clusters.values():
        for w in list(cluster.workloads.values()):
            if w.bare:
                cluster.rollout(w)


def _stopped_batch_of_b(config: StackConfig, positions: tuple[Position, ...]) -> Position:
    batch = len(batches_of(config))  # the last batch of phase B (the only one if there is one)
    return next(p for p in positions if p.phase == "mesh-ca" and p.batch == batch)


def _rollback_mid_batch_route(config: StackConfig, positions: tuple[Position, ...]) -> list[RoutePoint]:
    """Phase B up to its last batch, which stops in its middle; a rollback (B5) from that map,
    distribute-root-done again, then phase B from its start."""
    cut = _stopped_batch_of_b(config, positions)
    back = next(p for p in positions if p.phase == "distribute-root-done")
    start = next(p.index for p in positions if p.phase == "mesh-ca")
    points = default_points(positions[: cut.index + 1])
    points.append(RoutePoint(dataclasses.replace(cut, rollback=True), f"mesh-ca: ROLLBACK from the middle of batch {cut.batch}/{cut.batches}"))
    points.append(RoutePoint(back, f"{back.phase}: after the rollback"))
    points += default_points(positions[start:])
    return points


def _break_the_batch(ctx: HookContext) -> None:
    """In phase B's last batch, the last namespace cannot start its new pods (the first moved)."""
    config = ctx.rehearsal.config
    batch = batches_of(config)[-1]
    ns = ctx.step.params.get("namespace")
    if ctx.step.phase != "mesh-ca" or ns != batch[-1] or not _first_cluster(ctx) or not _once(ctx, "batch-fault"):
        return
    mine = sorted((w for w in ctx.cluster.workloads.values() if w.namespace == ns and not w.bare), key=lambda w: w.name)
    mine[-1].rollout_error = "0/1 new pods ready: CrashLoopBackOff (the application fails on the new revision)"
    ctx.note(f"fault: {mine[-1].kind} {ns}/{mine[-1].name} cannot start on the new revision")


def _fix_later(rehearsal) -> None:
    rehearsal.scratch["fix-before-phase-b"] = True


def _fixed_after_the_rollback(ctx: HookContext) -> None:
    """Phase B starts again (B0) only once the application runs on REV2."""
    if ctx.rehearsal.scratch.pop("fix-before-phase-b", False):
        _fix_rollouts(ctx.rehearsal)
        ctx.note("the application is fixed before phase B runs again")


FAULT_SCENARIOS = (
    Scenario(
        "restart-fails",
        "a restart that fails for one namespace",
        "in phase A's second batch, one workload of the first namespace cannot start new pods (ImagePullBackOff): "
        "its restart fails while the old pods keep serving; the image is fixed and pulumi up runs again",
        hooks=(Hook("before", "A2.restart.*", _break_a_rollout, times=None),),
        remedy=Remedy("the workload's image is fixed", _fix_rollouts),
    ),
    Scenario(
        "gate-late",
        "a gate that fails, then passes on a later poll",
        "the last restart of phase A returns before its pods are replaced; gate A3 finds them still on the old "
        "revision, polls, and the rollout finishes at its second poll",
        hooks=(Hook("before", "A2.restart.*", _slow_rollout, times=None), Hook("poll", "A3.gate.root-cert", _rollout_finishes, times=None)),
    ),
    Scenario(
        "interrupted",
        "an interrupted phase, resumed",
        "pulumi up is interrupted twice in phase A: during A1 after asmcli created cacerts and installed REV1, and "
        "after a namespace of the second batch was relabelled but before its restart; each time pulumi up runs again",
        hooks=(Hook("before", "A1.install.*", _interrupt_after_asmcli, times=None), Hook("before", "A2.restart.*", _interrupt_before_a_restart, times=None)),
        remedy=Remedy("none: pulumi up runs again"),
    ),
    Scenario(
        "rollback-mid-batch",
        "a rollback in the middle of a batch",
        "in phase B's last batch the first namespace moves, then the last one's restart fails (its application "
        "cannot start on REV2); the operator rolls back (B5) from there, returns to distribute-root-done, fixes the "
        "application and runs phase B again",
        route=_rollback_mid_batch_route,
        hooks=(Hook("before", "B2.restart.*", _break_the_batch, times=None), Hook("before", "B0.gate.root-cert", _fixed_after_the_rollback, times=None)),
        remedy=Remedy(
            "the operator rolls phase B back from there (meshca:rollback true), the application still broken on REV2",
            _fix_later,
            resume="next",
        ),
    ),
    Scenario(
        "istiod-not-ready",
        "the new revision's istiod not ready",
        "after A1, istiod-REV1 has no ready replica on the first cluster: its injection webhook has no endpoint; "
        "it gets a ready replica and pulumi up runs again",
        hooks=(Hook("after", "A1.install.*", _istiod_not_ready, times=None),),
        remedy=Remedy("istiod-REV1 gets a ready replica", _istiods_ready),
    ),
    Scenario(
        "cluster-unreachable",
        "one cluster unreachable in a multi-cluster stack",
        "the last cluster's API server becomes unreachable after phase A's first batch moved on it; the network "
        "path is restored and pulumi up runs again",
        hooks=(Hook("after", "A2.restart.*", _cut_last_cluster, times=None),),
        remedy=Remedy("the network path to the cluster is restored", _reconnect),
    ),
    Scenario(
        "cert-expiry",
        "a certificate that would expire during the move",
        "workload certificates live 2 hours; a bare pod (no controller, so no restart moves it) runs in the "
        "namespace phase A moves last, holding a certificate only the old istiod can renew; two days pass before "
        "the operator recreates it and pulumi up runs again",
        switches={"cert-ttl-hours": 2},
        hooks=(Hook("before", "*", _start_a_bare_pod, times=None),),
        remedy=Remedy("two days later, the bare pod is deleted and recreated", _recreate_bare_pods),
    ),
)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        CANARY,
        Scenario(
            "big-bang",
            "Mesh CA without distributing its root first",
            "A1 installs its revision with --ca mesh_ca --option ca-migration-meshca instead of --ca citadel: the first "
            "namespaces moved get Mesh CA certificates while the others trust only the Citadel root (before 1.10)",
            steps=_mesh_ca_first,
        ),
        Scenario(
            "skip-restart",
            "relabel without restarting",
            "phase A's namespaces are relabelled but never restarted, so their pods stay on the old revision",
            steps=_no_restarts_in_a,
        ),
        Scenario(
            "early-secret-delete",
            "CA secrets deleted while REV1 workloads remain",
            "phase C's backup, deletion of cacerts/istio-ca-secret and control-plane restart run right after the first "
            "phase B batch, while later batches still hold Citadel-signed certificates",
            steps=_secrets_after_first_b_batch,
        ),
        Scenario(
            "no-root-overlay",
            "REV2 installed with the guide's literal command",
            "meshca:rev2CitadelRoot false: B1 installs REV2 without the overlay that lists today's Citadel root in its "
            "meshConfig.caCertificates, and C2 has nothing to drop; REV2 proxies then hold the Citadel root only if REV2's "
            "istiod merges its own CA's root (switch rev2-runs-citadel-ca)",
            config=_without_root_overlay,
        ),
        Scenario(
            "skip-drop-root",
            "phase C without dropping REV2's listed Citadel root",
            "C2.drop-citadel-root is left out: REV2's ConfigMap still lists today's root in meshConfig.caCertificates when "
            "C3 restarts istio-system",
            steps=_no_drop_root,
        ),
        Scenario(
            "wrong-root",
            "REV1 installed with a new root",
            "the stack's four CA files are a brand-new CA instead of the one the mesh trusts today; the pre-flight gate "
            "A0 compares root-cert.pem with the live root (disable it with --no-preflight)",
            config=_new_ca_files,
        ),
        Scenario(
            "rollback-a",
            "rollback of phase A mid-way, then resume",
            "phase A is rolled back (A6) after its middle batch, the stack returns to baseline, then the route runs again",
            route=_rollback_route("distribute-root", "baseline"),
        ),
        Scenario(
            "rollback-b",
            "rollback of phase B mid-way, then resume",
            "phase B is rolled back (B5) after its middle batch, the stack returns to distribute-root-done, then phase B runs again",
            route=_rollback_route("mesh-ca", "distribute-root-done"),
        ),
        *FAULT_SCENARIOS,
    )
}
FAULTS = tuple(s.name for s in FAULT_SCENARIOS)


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise MeshcaError("RehearseScenarioUnknown", f"--scenario {name}", name=name, known=", ".join(SCENARIOS)) from None
