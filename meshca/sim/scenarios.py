"""Built-in scenarios: mutations of a stack config, of its route, or of its step list.

None of them states an outcome: each only changes what is done, and the engine, the
simulated mesh and real handshakes decide what happens. Tests derive the expected failures
independently, from the trust rules.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import pki
from ..certs import CaFiles
from ..config import StackConfig
from ..errors import MeshcaError
from ..plan import Position, Step, batches_of
from .engine import CANARY, RoutePoint, Scenario, StepContext, default_points


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
    )
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise MeshcaError("RehearseScenarioUnknown", f"--scenario {name}", name=name, known=", ".join(SCENARIOS)) from None
