"""History and safety of the dev route under the REAL Pulumi CLI against a REAL kube-apiserver (issue 11).

Same set-up as the smoke (tests/e2e/test_smoke.py, whose seed, stack writer, runner and cluster
table this module imports; the helpers are tests/e2e/route_kit.py's), but on its OWN cluster (started here, stopped at the module's end,
so the smoke's cluster and this one never share state) and its own project copy and file
backend. Every stand-in, the command provider stand-in (``pulumi-resource-command``: every
Command it runs), the injector stand-in (every pod it reviews) and a ``kubectl`` wrapper first on
PATH (every kubectl call of a Command, a helper, a dynamic provider such as phase C's backup and
deletion, or the test) append to ONE invocation log, ``$MESHCA_STANDIN_LOG``; "nothing ran" is
proved from it (kubectl reads and dry-runs allowed) and from the live pods' UIDs.

The tests run in order, one route:

1. ``baseline`` (the smoke's position 1), then a refused phase skip ``baseline -> mesh-ca``;
2. ``distribute-root`` batch 1 (the smoke's position 2);
3. History: a second ``up`` with no change runs nothing; changing ``meshca:gateTimeoutSeconds``,
   ``meshca:restartTimeoutSeconds`` and the cluster's kubeconfig path (a copy of the file) runs no
   completed step; changing ``meshca:rev1`` after A1 used it is refused (``MCA0662``);
4. Safety: ``distribute-root-done`` while nine namespaces are still on the old revision is refused;
5. The walk on: ``distribute-root`` batches 2-4 (A2; A3 with ``meshca:meshcaRoot`` = the stand-ins'
   test Mesh CA root; A4) and ``distribute-root-done`` (A5), each against a literal table; then
   ``meshca:meshcaRoot`` moved to another path runs no completed step;
6. Phase B: ``mesh-ca`` batches 1-4 (B0/B1 gates and REV2's install, B2 relabel + restart, B3 the
   gateway upgraded in place); ``mesh-ca-done`` while three namespaces are still on REV1 is refused
   (MCA0131); ``mesh-ca-done`` with a stray REV1 proxy stops at gate B4, and phase C is then refused
   (MCA0658, before its gate); ``mesh-ca-done`` (B4: default tag, Service istiod, REV1 deleted);
7. Issue 9 finding 7 on the real CLI: a program defect injected into the project copy (phase C's
   deletion not after its backups) is stopped by the policy pack's resource rule (MCA0626) in
   ``up --skip-preview`` before any phase C step runs (the invocation log: no backup read, no
   ``kubectl delete secret``, no Command);
8. Phase C: ``old-root-removed`` (C0 gate, C1 0600 backups that read back as the deleted Secrets,
   C2 deletion, C3 control-plane restart, C4 gate);
9. ``pulumi destroy`` leaves the mesh and its labels as they are.

After each position's up the stack's resources are counted (``pulumi stack export``) and printed
with the preview/up wall times (BENCHMARKS.md "Real engine: the dev route's positions (e2e)").

Every refusal is checked on ``pulumi preview --policy-pack policy`` AND on ``pulumi up
--skip-preview --policy-pack policy`` (tests/e2e/route_kit.py ``refused``), and the invocation log, the
live cluster and the stack's state (``pulumi stack export``: every custom resource and the outputs)
show nothing applied.

Expectations (literal, never computed with meshca code):
- procedure.md "The route": the phases are baseline, distribute-root, distribute-root-done,
  mesh-ca, mesh-ca-done, old-root-removed, in this order; a phase is entered only from the one
  before it ("every position is reached by editing the stack file"; phase B starts "when phase A
  is done"). README "Config vocabulary": operational keys (timeouts, kubeconfig) may change, the
  revision names "may not change once the migration started".
- The codes are the catalogue's entries for these cases (meshca/messages.yaml): MCA0650 "A move
  skips one or more phases."; MCA0662 "The stack name, use case, a revision name or another
  identity key ... changed while the migration is under way"; MCA0131 (the config validation,
  before anything is registered) "phase distribute-root-done is impossible while namespace X is on
  default (phase A finishes only when every namespace is on REV1)" (and the same for mesh-ca-done
  and REV2); MCA0658 "Phase C would delete the old CA before a workload-cert gate proved no proxy
  holds a Citadel certificate."; MCA0626 "The CA secrets are deleted without depending on a backup
  of each."
- README "Running a real migration": "`pulumi destroy` never uninstalls the mesh: Commands have no
  delete scripts, namespace patches and the canary gateway are retained".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testinfra.cluster import DEV_CONTEXT

import route_kit as kit
import test_smoke as smoke  # the smoke's helpers and its literal tables (same module object pytest collected)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REV1 = smoke.REV1
BATCH_1 = smoke.BATCH_1
# What counts as "applied" in the invocation log: route_kit.applied (a kubectl call logged by the
# wrapper below counts unless it is a read or a dry-run). A refusal hidden by the preview-time
# istioctl probe's crash is route_kit.ProbeCrashHidesRefusal (issue 9 finding 13).


KUBECTL_LOGGER = """#!/usr/bin/python3 -S
# TEST INFRASTRUCTURE (tests/e2e/test_route_history.py): logs this kubectl call to $MESHCA_STANDIN_LOG
# (the stand-ins' invocation log, standins/README.md), then runs the toolchain's kubectl in its place.
import json, os, sys, time
REAL = __REAL__
log = os.environ.get("MESHCA_STANDIN_LOG")
if log:
    with open(log, "a") as fh:
        fh.write(json.dumps({"tool": "kubectl", "argv": ["kubectl", *sys.argv[1:]], "start": time.time(), "cwd": os.getcwd(), "pid": os.getpid()}) + "\\n")
os.execv(REAL, [REAL, *sys.argv[1:]])
"""


def write_kubectl_logger(bindir: Path, real: Path) -> Path:
    """A ``kubectl`` first on PATH that appends each call to the invocation log, then execs the real one:
    what the dynamic providers (phase C's backups and deletion) and the Commands run is in the log too."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / "kubectl"
    path.write_text(KUBECTL_LOGGER.replace("__REAL__", repr(str(real))))
    path.chmod(0o755)
    return bindir


# ---------------------------------------------------------------------------------------------
# Fixture: own cluster, own project, one invocation log
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def route(toolchain):
    # The dev stack's one cluster (route_kit.start_route: one invocation log, one stand-in state dir, the
    # stand-ins' test Mesh CA root as meshca:meshcaRoot), every kubectl call logged too, the 1.6 injector.
    with kit.start_route(toolchain, [DEV_CONTEXT], "route", timings=smoke.TIMINGS) as route:
        route["env"]["PATH"] = os.pathsep.join([str(write_kubectl_logger(route["root"] / "bin", toolchain.bin / "kubectl")),
                                                route["env"]["PATH"]])
        route["old_injector"] = kit.start_injector(route, "testinfra.istio16_injector", "istio16-injector")
        route["timings_from"] = len(smoke.TIMINGS)
        yield route


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def edit_stack(project: dict, **keys) -> None:
    """Set meshca:KEY values in Pulumi.dev.yaml (after smoke.write_stack): route_kit.edit_stack."""
    kit.edit_stack(project, smoke.STACK, **keys)


log_lines, describe, applied = kit.log_lines, kit.describe, kit.applied


def live_snapshot(env: dict) -> dict:
    """Namespace labels and every pod's UID (a restart or a re-injection changes them)."""
    return kit.live_snapshot(env, [DEV_CONTEXT])


def run_nothing(project: dict, what: str, *args: str) -> None:
    """`pulumi ARGS` succeeds and applies nothing: no Command, asmcli, istioctl write or new pod."""
    before = live_snapshot(project["env"])
    before_log = len(log_lines(project))  # after the test's own kubectl reads
    smoke.pulumi(project, what, *args)
    new = log_lines(project)[before_log:]
    print(f"[e2e] {what}: {len(new)} invocation(s): " + "; ".join(describe(r) for r in new), file=sys.stderr)
    ran = applied(new)
    after = live_snapshot(project["env"])
    assert not ran, f"{what} ran completed steps again:\n  " + "\n  ".join(ran)
    assert after == before, f"{what} changed the live cluster (namespace labels or pods)"


def refused(project: dict, position: str, code: str, state: bool = True) -> None:
    """route_kit.refused on the dev stack: preview AND up --skip-preview fail with CODE's Error line; nothing
    applied (the invocation log, the live cluster, with STATE the stack's state)."""
    kit.refused(project, smoke.STACK, [DEV_CONTEXT], position, code, state=state)


# ---------------------------------------------------------------------------------------------
# The route (in order)
# ---------------------------------------------------------------------------------------------
# Istio on GKE 1.6 ships Istio's CRDs; A5's proof dry-runs an AuthorizationPolicy (route_kit.AUTHZ_CRD).
AUTHZ_CRD = kit.AUTHZ_CRD


def test_baseline(route):
    smoke.run("seed Istio 1.6 CRDs (kubectl apply)", ["kubectl", "--context", DEV_CONTEXT, "apply", "-f", "-"], route["env"],
              route["dir"], route["logs"], stdin=json.dumps(AUTHZ_CRD), timeout=60)
    smoke.run("wait for the CRD", ["kubectl", "--context", DEV_CONTEXT, "wait", "--for=condition=Established",
                                   "crd/authorizationpolicies.security.istio.io", "--timeout=30s"],
              route["env"], route["dir"], route["logs"], timeout=60)
    smoke.test_baseline(route)
    count_resources(route, "baseline")


def test_skip_baseline_to_mesh_ca_refused_default_istioctl(route):
    # procedure.md "The route": mesh-ca follows distribute-root-done; baseline -> mesh-ca skips two phases.
    # Namespaces as mesh-ca allows them (all on REV1) so that only the skip is wrong. meshca:istioctlPath
    # as shipped (empty: the istioctl of the tagged revision's asmcli output dir, never written here).
    smoke.write_stack(route["dir"], route["kubeconfig"], phase="mesh-ca", moved=smoke.APP_NAMESPACES, istioctl=True)
    try:
        refused(route, "baseline -> mesh-ca", "MCA0650")
    finally:
        smoke.assert_cluster(route["env"], "baseline", route["dir"])


def test_skip_baseline_to_mesh_ca_refused(route):
    # The same skip with an istioctl that exists (meshca:istioctlPath, a tool path: operational).
    smoke.write_stack(route["dir"], route["kubeconfig"], phase="mesh-ca", moved=smoke.APP_NAMESPACES, istioctl=True)
    edit_stack(route, istioctlPath="./standins/istioctl")
    refused(route, "baseline -> mesh-ca", "MCA0650")
    smoke.assert_cluster(route["env"], "baseline", route["dir"])


def test_distribute_root_batch_1(route):
    smoke.test_distribute_root_batch_1(route)
    count_resources(route, "distribute-root batch 1")


def test_second_up_runs_nothing(route):
    run_nothing(route, "pulumi up, no change (distribute-root batch 1)", "up", "--yes", "--policy-pack", "policy")
    smoke.assert_cluster(route["env"], "distribute-root batch 1", route["dir"])


@pytest.mark.parametrize("key,value", [
    ("gateTimeoutSeconds", 75),          # write_stack sets 60
    ("restartTimeoutSeconds", 150),      # write_stack sets 120
    ("kubeconfig", "copy"),              # another path, same file content
])
def test_operational_key_runs_no_completed_step(route, key, value):
    if value == "copy":
        other = route["root"] / "other-operator" / "kubeconfig.yaml"
        other.parent.mkdir(exist_ok=True)
        shutil.copy2(route["kubeconfig"], other)
        value = str(other)
    edit_stack(route, **{key: value})
    run_nothing(route, f"pulumi up, {key} changed (distribute-root batch 1)", "up", "--yes", "--policy-pack", "policy")
    smoke.assert_cluster(route["env"], "distribute-root batch 1", route["dir"])


def test_identity_key_change_refused(route):
    # README: rev1 "may not change once the migration started" (A1 installed it). Renamed consistently:
    # the batch already moved names the new rev1 too (else the map itself is invalid, MCA0130).
    other = "asm-11910-9-other-name"
    edit_stack(route, rev1=other, namespaces={ns: other for ns in BATCH_1})
    try:
        refused(route, "rev1 changed after A1", "MCA0662")
    finally:
        edit_stack(route, rev1=REV1, namespaces={ns: REV1 for ns in BATCH_1})
    smoke.assert_cluster(route["env"], "distribute-root batch 1", route["dir"])


def test_finish_phase_a_early_refused(route):
    # procedure.md "The route": distribute-root-done (A5 deletes the old istiod) needs every namespace
    # on REV1 and gate A3 passed; batch 1 leaves nine namespaces on the old revision.
    smoke.write_stack(route["dir"], route["kubeconfig"], phase="distribute-root-done", moved=BATCH_1, istioctl=True)
    try:
        refused(route, "distribute-root batch 1 -> distribute-root-done", "MCA0131")
    finally:
        smoke.write_stack(route["dir"], route["kubeconfig"], phase="distribute-root", moved=BATCH_1, istioctl=True)
    smoke.assert_cluster(route["env"], "distribute-root batch 1", route["dir"])


# ---------------------------------------------------------------------------------------------
# Walk further: the rest of distribute-root and distribute-root-done (procedure.md Phase A).
# Literal tables. Namespace rows: (istio-injection, istio.io/rev); "R1" rows are
# (None, "asm-11910-9-distribute-root") by Phase A step 2's `kubectl label namespace NS
# istio.io/rev=REVISION_1 istio-injection- --overwrite`; "OLD" rows ("enabled", None) as seeded.
# Pod rows: the revision whose injector wrote the namespace's pod (step 2's restart re-injects).
# Batches (meshca plan --stack dev, batchSize 3 in declaration order): 2 = payments, catalog,
# search; 3 = recommendations, shipping, inventory; 4 = accounts, notifications, ads.
# ---------------------------------------------------------------------------------------------
R1 = (None, "asm-11910-9-distribute-root")
OLD = ("enabled", None)
WALK_NAMESPACES = {
    "distribute-root batch 2": {
        "frontend": R1, "cart": R1, "checkout": R1, "payments": R1, "catalog": R1, "search": R1,
        "recommendations": OLD, "shipping": OLD, "inventory": OLD, "accounts": OLD, "notifications": OLD, "ads": OLD,
    },
    "distribute-root batch 3": {
        "frontend": R1, "cart": R1, "checkout": R1, "payments": R1, "catalog": R1, "search": R1,
        "recommendations": R1, "shipping": R1, "inventory": R1, "accounts": OLD, "notifications": OLD, "ads": OLD,
    },
    "distribute-root batch 4": {
        "frontend": R1, "cart": R1, "checkout": R1, "payments": R1, "catalog": R1, "search": R1,
        "recommendations": R1, "shipping": R1, "inventory": R1, "accounts": R1, "notifications": R1, "ads": R1,
    },
    "distribute-root-done": {
        "frontend": R1, "cart": R1, "checkout": R1, "payments": R1, "catalog": R1, "search": R1,
        "recommendations": R1, "shipping": R1, "inventory": R1, "accounts": R1, "notifications": R1, "ads": R1,
    },
}
P1, P0 = "asm-11910-9-distribute-root", "default"
# Phase B step 2 (`kubectl label namespace NS istio.io/rev=REVISION_2 --overwrite`, restart): batch 1 of
# mesh-ca is again frontend, cart, checkout.
R2 = (None, "asm-11910-9-meshca-ca-migration")
P2 = "asm-11910-9-meshca-ca-migration"
WALK_NAMESPACES["mesh-ca batch 1"] = {
    "frontend": R2, "cart": R2, "checkout": R2, "payments": R1, "catalog": R1, "search": R1,
    "recommendations": R1, "shipping": R1, "inventory": R1, "accounts": R1, "notifications": R1, "ads": R1,
}
WALK_PODS = {
    "distribute-root batch 2": {
        "frontend": P1, "cart": P1, "checkout": P1, "payments": P1, "catalog": P1, "search": P1,
        "recommendations": P0, "shipping": P0, "inventory": P0, "accounts": P0, "notifications": P0, "ads": P0,
    },
    "distribute-root batch 3": {
        "frontend": P1, "cart": P1, "checkout": P1, "payments": P1, "catalog": P1, "search": P1,
        "recommendations": P1, "shipping": P1, "inventory": P1, "accounts": P0, "notifications": P0, "ads": P0,
    },
    "distribute-root batch 4": {
        "frontend": P1, "cart": P1, "checkout": P1, "payments": P1, "catalog": P1, "search": P1,
        "recommendations": P1, "shipping": P1, "inventory": P1, "accounts": P1, "notifications": P1, "ads": P1,
    },
    "distribute-root-done": {
        "frontend": P1, "cart": P1, "checkout": P1, "payments": P1, "catalog": P1, "search": P1,
        "recommendations": P1, "shipping": P1, "inventory": P1, "accounts": P1, "notifications": P1, "ads": P1,
    },
}
WALK_PODS["mesh-ca batch 1"] = {
    "frontend": P2, "cart": P2, "checkout": P2, "payments": P1, "catalog": P1, "search": P1,
    "recommendations": P1, "shipping": P1, "inventory": P1, "accounts": P1, "notifications": P1, "ads": P1,
}
# istio-system objects: A1's stay through phase A; A5 deletes the old istiod (Service, Deployment
# named istiod; the Service istiod is then the one of istiod-service.yaml, see below) and the old
# gateway Deployment istio-ingressgateway; the gateway Service stays (A4: "selected by the same Service").
WALK_OBJECTS = {
    "distribute-root batch 2": {
        ("deployment", "istiod"): True, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
    },
    "distribute-root batch 3": {
        ("deployment", "istiod"): True, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
    },
    "distribute-root batch 4": {
        ("deployment", "istiod"): True, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
    },
    "distribute-root-done": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
    },
}
# Phase B step 1 installs REVISION_2 (asmcli: Deployment/Service istiod-REV2, its injector webhook);
# nothing of phase A's result goes (B4 deletes REVISION_1 only at mesh-ca-done; the CA secrets stay
# until phase C).
WALK_OBJECTS["mesh-ca batch 1"] = {
    ("deployment", "istiod"): False, ("service", "istiod"): True,
    ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
    ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
    ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
    ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
    ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
    ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True, ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
    ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
}
# Gateway pods behind Service istio-ingressgateway (its EndpointSlices' ready endpoints), by the
# revision that injected them (None = not injected: the 1.6 gateway has an explicit proxy image,
# procedure.md "What the guide leaves out"): before A4 only the old one; A4 adds a clone injected
# by REVISION_1 ("selected by the same Service ... keep the old gateway"); A5 deletes the old one.
WALK_GATEWAY_PODS = {
    "distribute-root batch 2": ["unknown"],
    "distribute-root batch 3": ["unknown"],
    "distribute-root batch 4": ["asm-11910-9-distribute-root", "unknown"],
    "distribute-root-done": ["asm-11910-9-distribute-root"],
    "mesh-ca batch 1": ["asm-11910-9-distribute-root"],  # B3 upgrades it only when every namespace is on REV2
}
BATCHES = {
    "distribute-root batch 2": ("frontend", "cart", "checkout", "payments", "catalog", "search"),
    "distribute-root batch 3": ("frontend", "cart", "checkout", "payments", "catalog", "search", "recommendations", "shipping", "inventory"),
    "distribute-root batch 4": smoke.APP_NAMESPACES,
    "distribute-root-done": smoke.APP_NAMESPACES,
}


# ---------------------------------------------------------------------------------------------
# Walk on: phase B (procedure.md "Phase B: switch signing to Mesh CA") and phase C ("Phase C:
# remove the old root"). Literal tables, as above. Batches of mesh-ca (`meshca plan --stack dev`,
# batchSize 3 in declaration order, the same as phase A's): 1 = frontend, cart, checkout;
# 2 = payments, catalog, search; 3 = recommendations, shipping, inventory; 4 = accounts,
# notifications, ads.
#   B2: `kubectl label namespace NS istio.io/rev=REVISION_2 --overwrite`, restart: the batch's
#       namespaces (None, REV2) and their pods injected by REVISION_2.
#   B3: "Upgrade the gateway Deployment installed in A.4 in place to REVISION_2": only once
#       every namespace is on REVISION_2 (batch 4); the Service's ready pods are then REV2's.
#   B4 (mesh-ca-done): "apply istiod-service.yaml of REVISION_2; delete gateways of REVISION_1;
#       delete istiod-REVISION_1 (Service, Deployment, HPA, PDB); delete installed-state-REVISION_1";
#       "What the guide leaves out": the default tag (istio-revision-tag-default,
#       istiod-default-validator) moved to REV2 before B4's deletions, and REV1's webhooks lose
#       their backend with it (so they go too).
#   C1-C3 (old-root-removed): back up cacerts and istio-ca-secret, `kubectl delete secret cacerts
#       istio-ca-secret -n istio-system`, `kubectl rollout restart deployment -n istio-system`.
# ---------------------------------------------------------------------------------------------
MESH_CA_MOVED = {
    "mesh-ca batch 2": ("frontend", "cart", "checkout", "payments", "catalog", "search"),
    "mesh-ca batch 3": ("frontend", "cart", "checkout", "payments", "catalog", "search", "recommendations", "shipping", "inventory"),
    "mesh-ca batch 4": smoke.APP_NAMESPACES,
}
WALK_NAMESPACES.update({
    "mesh-ca batch 2": {
        "frontend": R2, "cart": R2, "checkout": R2, "payments": R2, "catalog": R2, "search": R2,
        "recommendations": R1, "shipping": R1, "inventory": R1, "accounts": R1, "notifications": R1, "ads": R1,
    },
    "mesh-ca batch 3": {
        "frontend": R2, "cart": R2, "checkout": R2, "payments": R2, "catalog": R2, "search": R2,
        "recommendations": R2, "shipping": R2, "inventory": R2, "accounts": R1, "notifications": R1, "ads": R1,
    },
    "mesh-ca batch 4": {
        "frontend": R2, "cart": R2, "checkout": R2, "payments": R2, "catalog": R2, "search": R2,
        "recommendations": R2, "shipping": R2, "inventory": R2, "accounts": R2, "notifications": R2, "ads": R2,
    },
    "mesh-ca-done": {
        "frontend": R2, "cart": R2, "checkout": R2, "payments": R2, "catalog": R2, "search": R2,
        "recommendations": R2, "shipping": R2, "inventory": R2, "accounts": R2, "notifications": R2, "ads": R2,
    },
    "old-root-removed": {
        "frontend": R2, "cart": R2, "checkout": R2, "payments": R2, "catalog": R2, "search": R2,
        "recommendations": R2, "shipping": R2, "inventory": R2, "accounts": R2, "notifications": R2, "ads": R2,
    },
})
WALK_PODS.update({
    "mesh-ca batch 2": {
        "frontend": P2, "cart": P2, "checkout": P2, "payments": P2, "catalog": P2, "search": P2,
        "recommendations": P1, "shipping": P1, "inventory": P1, "accounts": P1, "notifications": P1, "ads": P1,
    },
    "mesh-ca batch 3": {
        "frontend": P2, "cart": P2, "checkout": P2, "payments": P2, "catalog": P2, "search": P2,
        "recommendations": P2, "shipping": P2, "inventory": P2, "accounts": P1, "notifications": P1, "ads": P1,
    },
    "mesh-ca batch 4": {
        "frontend": P2, "cart": P2, "checkout": P2, "payments": P2, "catalog": P2, "search": P2,
        "recommendations": P2, "shipping": P2, "inventory": P2, "accounts": P2, "notifications": P2, "ads": P2,
    },
    "mesh-ca-done": {
        "frontend": P2, "cart": P2, "checkout": P2, "payments": P2, "catalog": P2, "search": P2,
        "recommendations": P2, "shipping": P2, "inventory": P2, "accounts": P2, "notifications": P2, "ads": P2,
    },
    "old-root-removed": {
        "frontend": P2, "cart": P2, "checkout": P2, "payments": P2, "catalog": P2, "search": P2,
        "recommendations": P2, "shipping": P2, "inventory": P2, "accounts": P2, "notifications": P2, "ads": P2,
    },
})
WALK_OBJECTS.update({
    "mesh-ca batch 2": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
        ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True, ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
    },
    "mesh-ca batch 3": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
        ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True, ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
    },
    "mesh-ca batch 4": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
        ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True, ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
    },
    "mesh-ca-done": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
        ("istiooperator", "installed-state-asm-11910-9-distribute-root"): False,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): False,
        ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
        ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True, ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
    },
    "old-root-removed": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): False, ("secret", "cacerts"): False,
        ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
        ("istiooperator", "installed-state-asm-11910-9-distribute-root"): False,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): False,
        ("mutatingwebhookconfiguration", "istio-revision-tag-default"): True,
        ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True, ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
        ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
    },
})
WALK_GATEWAY_PODS.update({
    "mesh-ca batch 2": ["asm-11910-9-distribute-root"],
    "mesh-ca batch 3": ["asm-11910-9-distribute-root"],
    "mesh-ca batch 4": ["asm-11910-9-meshca-ca-migration"],  # B3: the A4 gateway upgraded in place
    "mesh-ca-done": ["asm-11910-9-meshca-ca-migration"],
    "old-root-removed": ["asm-11910-9-meshca-ca-migration"],
})
# Service istiod's selector revision (A5 / B4 "apply istiod-service.yaml" of the new revision:
# anthos-service-mesh-packages asm/istio/istiod-service.yaml selects app: istiod, istio.io/rev:
# REVISION) and the revision the default tag belongs to (istio-revision-tag-default and
# istiod-default-validator labelled istio.io/rev=REV, istio.io/tag=default; a dry-run pod
# labelled istio.io/rev=default in an unlabelled namespace is injected by REV: istio 1.19.10
# manifests/charts/istio-control/istio-discovery/templates/revision-tags.yaml rev.object.*).
WALK_CONTROL = {
    "distribute-root-done": "asm-11910-9-distribute-root",
    "mesh-ca batch 1": "asm-11910-9-distribute-root",
    "mesh-ca batch 2": "asm-11910-9-distribute-root",
    "mesh-ca batch 3": "asm-11910-9-distribute-root",
    "mesh-ca batch 4": "asm-11910-9-distribute-root",
    "mesh-ca-done": "asm-11910-9-meshca-ca-migration",
    "old-root-removed": "asm-11910-9-meshca-ca-migration",
}
# Phase C's Secrets (procedure.md C1/C2), as `kubectl get secret/NAME -n istio-system -o yaml` shows them.
CA_SECRETS = ("cacerts", "istio-ca-secret")
RESOURCE_COUNTS: dict[str, dict] = {}


def ready_endpoint_pods(env: dict, service: str, namespace: str = "istio-system") -> list[dict]:
    return kit.ready_endpoint_pods(env, DEV_CONTEXT, service, namespace)


def wait_tag_injecting(env: dict, revision: str, timeout: float = 15) -> str | None:
    """A server-side dry-run Pod labelled istio.io/rev=default in namespace default (no injection
    label): the default tag's rev.object webhook injects it with REVISION's sidecar. Returns a
    problem or None."""
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "tag-probe-", "labels": {"app": "tag-probe", "istio.io/rev": "default"}},
           "spec": {"containers": [{"name": "probe", "image": "example.invalid/probe:1"}]}}
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(["kubectl", "--context", DEV_CONTEXT, "create", "-n", "default", "-f", "-", "--dry-run=server", "-o", "json"],
                              input=json.dumps(pod), env=env, capture_output=True, text=True, timeout=30)
        last = str(smoke.injected_by(json.loads(proc.stdout))) if proc.returncode == 0 else proc.stderr.strip()
        if last == revision:
            return None
        if time.monotonic() > deadline:
            return f"a dry-run pod labelled istio.io/rev=default is injected by {last}, want {revision} (the default tag)"
        time.sleep(0.5)


def assert_walk(env: dict, position: str, project: Path) -> None:
    smoke.EXPECTED_NAMESPACES[position] = WALK_NAMESPACES[position]
    smoke.EXPECTED_POD_REVISIONS[position] = WALK_PODS[position]
    smoke.EXPECTED_OBJECTS[position] = WALK_OBJECTS[position]
    problems: list[str] = []
    try:
        smoke.assert_cluster(env, position, project)
    except AssertionError as exc:
        problems.append(str(exc))
    gw = sorted(str(smoke.injected_by(p)) for p in ready_endpoint_pods(env, "istio-ingressgateway"))
    if gw != WALK_GATEWAY_PODS[position]:
        problems.append(f"Service istio-ingressgateway's ready pods injected by {gw}, want {WALK_GATEWAY_PODS[position]}")
    control = WALK_CONTROL.get(position)
    if control:
        sel = smoke.kubectl_json(env, "get", "service", "istiod", "-n", "istio-system")["spec"].get("selector") or {}
        if sel.get("app") != "istiod" or sel.get("istio.io/rev") != control:
            problems.append(f"Service istiod selects {sel}, want app=istiod, istio.io/rev={control}")
        backends = sorted({(p["metadata"].get("labels") or {}).get("istio.io/rev", "?") for p in ready_endpoint_pods(env, "istiod")})
        if backends != [control]:
            problems.append(f"Service istiod's ready endpoints are pods of revision(s) {backends}, want only istiod-{control}'s")
        for kind, name in (("mutatingwebhookconfiguration", "istio-revision-tag-default"),
                           ("validatingwebhookconfiguration", "istiod-default-validator")):
            if not smoke.exists(env, kind, name, None):
                problems.append(f"{kind} {name} missing (the default tag)")
                continue
            labels = smoke.kubectl_json(env, "get", kind, name)["metadata"].get("labels") or {}
            if labels.get("istio.io/rev") != control or labels.get("istio.io/tag") != "default":
                problems.append(f"{kind} {name} labels {labels}, want istio.io/rev={control}, istio.io/tag=default")
        if smoke.exists(env, "mutatingwebhookconfiguration", "istio-sidecar-injector", None):
            old = smoke.kubectl_json(env, "get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
            if old.get("webhooks"):
                problems.append("the old istio-sidecar-injector still has webhooks (migrate-to-asm set_default_tag empties them)")
        problem = wait_tag_injecting(env, control)
        if problem:
            problems.append(problem)
    if position == "distribute-root-done":
        for probe_ns in ("frontend", "ads"):
            try:
                smoke.wait_injecting(env, probe_ns, "asm-11910-9-distribute-root", timeout=15)
            except AssertionError as exc:
                problems.append(str(exc))
    assert not problems, f"live cluster after {position}:\n  " + "\n  ".join(problems)


def count_resources(route: dict, position: str) -> None:
    """The stack's resources after POSITION's up (`pulumi stack export`: the real CLI reads the file
    backend without a language host), by kind; printed with the timings."""
    proc = subprocess.run(["pulumi", "stack", "export", "--stack", smoke.STACK, "--non-interactive"], cwd=route["dir"], env=route["env"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"pulumi stack export: {proc.stderr.strip()[-500:]}"
    resources = json.loads(proc.stdout)["deployment"].get("resources") or []
    kinds: dict[str, int] = {}
    for r in resources:
        t = r["type"]
        kind = ("command" if t.startswith("command:") else "kubernetes" if t.startswith("kubernetes:") else
                "dynamic" if t.startswith("pulumi-python:dynamic") else "component" if t.startswith("meshca:") else "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    RESOURCE_COUNTS[position] = {"total": len(resources), **kinds}
    print(f"[e2e] resources after {position}: {RESOURCE_COUNTS[position]}", file=sys.stderr)


@pytest.mark.parametrize("position", list(BATCHES))
def test_walk_distribute_root(route, position):
    phase = "distribute-root-done" if position == "distribute-root-done" else "distribute-root"
    smoke.write_stack(route["dir"], route["kubeconfig"], phase=phase, moved=BATCHES[position], istioctl=True)
    edit_stack(route, meshcaRoot=route["meshca_root"])
    smoke.preview_and_up(route, position, {})
    assert_walk(route["env"], position, route["dir"])
    count_resources(route, position)


def test_meshca_root_path_runs_no_completed_step(route):
    # meshca:meshcaRoot is operational (README's config table): another path of the same root after
    # gate A3 passed on it re-runs neither A3 nor anything after it.
    other = route["root"] / "other-operator" / "meshca-root.pem"
    other.parent.mkdir(exist_ok=True)
    shutil.copy2(route["meshca_root"], other)
    edit_stack(route, meshcaRoot=str(other))
    run_nothing(route, "pulumi up, meshcaRoot changed (distribute-root-done)", "up", "--yes", "--policy-pack", "policy")
    assert_walk(route["env"], "distribute-root-done", route["dir"])


class NamespacePatchConflict(smoke.ProgramDefect):
    """Phase B's relabel cannot be previewed: the namespace's NamespacePatch (components/namespace_revision.py:64-80,
    server-side apply without force, components/cluster_migration.py:120-126) dry-runs istio.io/rev=REV2 while
    the field is co-owned since A2 by the `kubectl label` step's manager "kubectl-label" with REV1 (the B2
    label step has not run in a preview), so pulumi-kubernetes 4.25.0 reports "Apply failed with 1 conflict:
    conflict with "kubectl-label" using v1: .metadata.labels.istio.io/rev". The comment there ("the patch
    applies the values the kubectl label step just set") holds for A2 (a new field) only. Measured once
    (not a test): `pulumi up --skip-preview` of the same position exits 0 and its table holds, so the
    conflict stops the preview (and `pulumi up`, which previews first under the real CLI) only."""


def mesh_ca_stack(route: dict, phase: str, moved: tuple[str, ...], **keys) -> None:
    """The dev stack at PHASE (mesh-ca or later) with MOVED on REV2 and the rest on REV1."""
    smoke.write_stack(route["dir"], route["kubeconfig"], phase=phase, moved=smoke.APP_NAMESPACES, istioctl=True)
    edit_stack(route, meshcaRoot=route["meshca_root"], namespaces={ns: P2 for ns in moved}, **keys)


def test_walk_mesh_ca_batch_1(route):
    position = "mesh-ca batch 1"
    mesh_ca_stack(route, "mesh-ca", BATCH_1)
    smoke.preview_and_up(route, position, {'conflict with "kubectl-label"': NamespacePatchConflict})
    assert_walk(route["env"], position, route["dir"])
    count_resources(route, position)


@pytest.mark.parametrize("position", ["mesh-ca batch 2", "mesh-ca batch 3"])
def test_walk_mesh_ca(route, position):
    mesh_ca_stack(route, "mesh-ca", MESH_CA_MOVED[position])
    smoke.preview_and_up(route, position, {})
    assert_walk(route["env"], position, route["dir"])
    count_resources(route, position)


def test_finish_phase_b_early_refused(route):
    # procedure.md Phase B step 4 deletes istiod-REVISION_1: mesh-ca-done needs every namespace on
    # REVISION_2; batch 3 leaves accounts, notifications, ads on REVISION_1. MCA0131 (messages.yaml:
    # "The phase does not follow from the namespace map").
    mesh_ca_stack(route, "mesh-ca-done", MESH_CA_MOVED["mesh-ca batch 3"])
    try:
        refused(route, "mesh-ca batch 3 -> mesh-ca-done", "MCA0131")
    finally:
        mesh_ca_stack(route, "mesh-ca", MESH_CA_MOVED["mesh-ca batch 3"])
    assert_walk(route["env"], "mesh-ca batch 3", route["dir"])


def test_walk_mesh_ca_batch_4(route):
    position = "mesh-ca batch 4"
    mesh_ca_stack(route, "mesh-ca", MESH_CA_MOVED[position])
    smoke.preview_and_up(route, position, {})
    assert_walk(route["env"], position, route["dir"])
    count_resources(route, position)


# A pod outside meshca:namespaces that REV1 injected (pod label istio.io/rev=REV1 in an unlabelled
# namespace: REV1's rev.object webhook, istio 1.19.10 templates/mutatingwebhook.yaml) still holds a
# Citadel certificate: the B4 workload-cert gate ("every proxy holds a Mesh CA certificate") cannot pass.
STRAY = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "stray-rev1", "namespace": "default", "labels": {"app": "stray", "istio.io/rev": "asm-11910-9-distribute-root"}},
         "spec": {"containers": [{"name": "stray", "image": "example.invalid/acme/stray:1.0"}]}}


def test_phase_c_before_its_gate_refused(route):
    """mesh-ca-done's up stops at gate B4 (a REV1 proxy remains); phase C is then refused (MCA0658,
    messages.yaml "Phase C would delete the old CA before a workload-cert gate proved no proxy holds a
    Citadel certificate") by preview and by up --skip-preview, with nothing applied."""
    env = route["env"]
    smoke.run("stray REV1 pod (kubectl apply)", ["kubectl", "--context", DEV_CONTEXT, "apply", "-f", "-"], env, route["dir"], route["logs"],
              stdin=json.dumps(STRAY), timeout=60)
    try:
        smoke.run("stray pod ready", ["kubectl", "--context", DEV_CONTEXT, "wait", "--for=condition=Ready", "pod/stray-rev1", "-n", "default",
                                      "--timeout=30s"], env, route["dir"], route["logs"], timeout=60)
        assert smoke.injected_by(smoke.kubectl_json(env, "get", "pod", "stray-rev1", "-n", "default")) == P1
        # The shortest deadline the config allows (MCA0142: 10..86400); operational, so the retry
        # below with write_stack's 60 re-runs nothing that completed.
        mesh_ca_stack(route, "mesh-ca-done", smoke.APP_NAMESPACES, gateTimeoutSeconds=10)
        before_log = len(log_lines(route))
        proc = smoke.pulumi(route, "pulumi up (mesh-ca-done, B4 gate fails)", "up", "--yes", "--policy-pack", "policy", check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, "mesh-ca-done's up passed gate B4 with a REV1 proxy in the cluster"
        errors = list(dict.fromkeys(line.strip() for line in out.splitlines() if "error" in line.lower()))
        print("[e2e] mesh-ca-done with a REV1 proxy: " + " | ".join(errors[:4])[:600], file=sys.stderr)
        assert "workload-cert" in out and "stray-rev1" in out, \
            "mesh-ca-done's up failed, but not at gate B4 on the stray REV1 proxy:\n  " + "\n  ".join(errors[:12])
        ran = applied(log_lines(route)[before_log:])
        assert not any("tag set" in r or " delete " in r or "apply -f -" in r for r in ran), \
            "steps after gate B4 ran although it failed:\n  " + "\n  ".join(ran)
        assert smoke.exists(env, "deployment", "istiod-asm-11910-9-distribute-root", "istio-system"), "REV1's istiod deleted behind a failed gate"
        mesh_ca_stack(route, "old-root-removed", smoke.APP_NAMESPACES)
        refused(route, "mesh-ca-done (gate B4 failed) -> old-root-removed", "MCA0658")
        assert smoke.exists(env, "secret", "cacerts", "istio-system") and smoke.exists(env, "secret", "istio-ca-secret", "istio-system")
    finally:
        smoke.run("stray pod deleted", ["kubectl", "--context", DEV_CONTEXT, "delete", "pod", "stray-rev1", "-n", "default", "--ignore-not-found",
                                        "--wait=true", "--timeout=30s"], env, route["dir"], route["logs"], timeout=60)


def test_walk_mesh_ca_done(route):
    position = "mesh-ca-done"
    mesh_ca_stack(route, "mesh-ca-done", smoke.APP_NAMESPACES)
    smoke.preview_and_up(route, position, {})
    assert_walk(route["env"], position, route["dir"])
    count_resources(route, position)


# Finding 7 of issue 9 on the real CLI: in `pulumi up` the engine runs stack policies only after
# every step (pulumi/pulumi pkg/resource/deploy/deployment_executor.go: WaitForCompletion, then
# AnalyzeResources), but a resource policy on each resource's inputs before its step
# (step_generator.go: analyzeAll, then "resource %s is invalid"). A program defect injected into the
# project copy: phase C's deletion C2 no longer lists the C1 backups among the steps it waits for
# (meshca/plan.py remove_old_root: ``depends_on=[c0, *backups]`` -> ``[c0]``; the plan adds the last
# gate to every step itself, so a dropped gate is not a fault the plan can make). The policy pack's
# resource rule on the CaSecrets component (MCA0626, messages.yaml "The CA secrets are deleted
# without depending on a backup of each") must stop `up --skip-preview` before any phase C step runs:
# no backup, no `kubectl delete secret`, no drop-root, no control-plane restart.
PLAN_FAULT = (
    ("            depends_on=[c0, *backups],\n            backups=backups,", "            depends_on=[c0],\n            backups=backups,"),
)


def touches_ca_secrets(argv: list) -> bool:
    """C1's `kubectl get secret/NAME -n istio-system -o yaml` or C2's `kubectl delete secret cacerts istio-ca-secret`."""
    argv = [str(a) for a in argv]
    return any(f"secret/{s}" in argv for s in CA_SECRETS) or ("delete" in argv and any(s in argv for s in CA_SECRETS))


def test_blocking_rule_stops_up_before_the_damaging_step(route):
    env = route["env"]
    plan_py = route["dir"] / "meshca" / "plan.py"
    original = plan_py.read_text()
    faulty = original
    for old, new in PLAN_FAULT:
        assert faulty.count(old) == 1, f"the fault cannot be injected: {old!r} not found once in meshca/plan.py"
        faulty = faulty.replace(old, new)
    plan_py.write_text(faulty)
    mesh_ca_stack(route, "old-root-removed", smoke.APP_NAMESPACES)
    try:
        # Without the pack the faulty program would delete the CA secrets (preview only: nothing runs).
        proc = smoke.pulumi(route, "pulumi preview without the policy pack (faulty plan, old-root-removed)", "preview", check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"the faulty program's preview failed:\n{smoke.tail(out, 30)}"
        planned = [line.strip() for line in out.splitlines() if "CaSecretDeletion" in line and "create" in line]
        assert planned, f"the faulty program does not plan the CA secret deletion:\n{smoke.tail(out, 40)}"
        before_log = len(log_lines(route))
        # The pack refuses CaSecrets at its registration, in the up itself (step_generator.go above): the
        # steps registered before it (the guard first, components/meshca_stack.py) may already have run,
        # so the state is printed, not asserted; what must not have run is checked below.
        refused(route, "old-root-removed, C2 not after C1", "MCA0626", state=False)
        phase_c = [describe(r) for r in log_lines(route)[before_log:] if r.get("tool") == "kubectl" and touches_ca_secrets(r["argv"])]
        assert not phase_c, "phase C touched the CA secrets although the pack refused CaSecrets:\n  " + "\n  ".join(phase_c)
    finally:
        plan_py.write_text(original)
    for secret in CA_SECRETS:
        assert smoke.exists(env, "secret", secret, "istio-system"), f"secret {secret} deleted although the pack refused its deletion"
    assert not list((route["dir"] / "backups").rglob("*.yaml")), "a backup of phase C ran although the pack refused CaSecrets"


def test_walk_old_root_removed(route):
    position = "old-root-removed"
    env = route["env"]
    live = {s: smoke.kubectl_json(env, "get", "secret", s, "-n", "istio-system") for s in CA_SECRETS}
    before_uids = {p["metadata"]["uid"] for p in smoke.kubectl_json(env, "get", "pods", "-n", "istio-system")["items"]}
    mesh_ca_stack(route, "old-root-removed", smoke.APP_NAMESPACES)
    before_log = len(log_lines(route))
    smoke.preview_and_up(route, position, {})
    calls = [r for r in log_lines(route)[before_log:] if r.get("tool") == "kubectl"]
    deployments = [d["metadata"]["name"] for d in smoke.kubectl_json(env, "get", "deployments", "-n", "istio-system")["items"]]
    for name in deployments:
        smoke.run(f"rollout status istio-system/{name}", ["kubectl", "--context", DEV_CONTEXT, "rollout", "status", f"deployment/{name}",
                                                          "-n", "istio-system", "--timeout=60s"], env, route["dir"], route["logs"], timeout=90)
    assert_walk(env, position, route["dir"])
    problems = []
    # C3 `kubectl rollout restart deployment -n istio-system`: every Deployment there runs new pods.
    pods = [p for p in smoke.kubectl_json(env, "get", "pods", "-n", "istio-system")["items"] if not p["metadata"].get("deletionTimestamp")]
    for name in deployments:
        mine = [p for p in pods if p["metadata"]["name"].startswith(name + "-")]
        if not mine or any(p["metadata"]["uid"] in before_uids for p in mine):
            problems.append(f"deployment istio-system/{name} was not restarted (pods {[p['metadata']['name'] for p in mine]})")
    # C1 "back up ... `kubectl get secret/cacerts -n istio-system -o yaml` and the same for
    # istio-ca-secret" (README: meshca:backupDir, default `backups`, 0600): one file per Secret under
    # the project's backups/, mode 0600, that parses back as the Secret deleted (name, type, data).
    import stat as stat_mod

    import yaml

    for secret in CA_SECRETS:
        files = sorted((route["dir"] / "backups").rglob(f"{secret}.yaml"))
        if len(files) != 1:
            problems.append(f"backups of {secret}: {[str(f) for f in files]}, want one")
            continue
        mode = stat_mod.S_IMODE(files[0].stat().st_mode)
        if mode != 0o600:
            problems.append(f"backup {files[0]} has mode {oct(mode)}, want 0o600")
        doc = yaml.safe_load(files[0].read_text())
        got = (doc.get("kind"), (doc.get("metadata") or {}).get("name"), (doc.get("metadata") or {}).get("namespace"), doc.get("type"), doc.get("data"))
        want = ("Secret", secret, "istio-system", live[secret].get("type"), live[secret].get("data"))
        if got != want:
            problems.append(f"backup {files[0]} does not read back as the deleted Secret {secret} "
                            f"(kind, name, namespace, type equal: {got[:4] == want[:4]}; data equal: {got[4] == want[4]})")
    # C2 only after C1 (the invocation log, kubectl calls in order): `kubectl delete secret cacerts
    # istio-ca-secret` ran once, after each Secret was read for its backup and after both files were written.
    deletions = [r for r in calls if "delete" in r["argv"] and "cacerts" in r["argv"] and "istio-ca-secret" in r["argv"]]
    if len(deletions) != 1:
        problems.append(f"`kubectl delete secret cacerts istio-ca-secret` ran {len(deletions)} time(s), want once")
    else:
        t = deletions[0]["start"]
        for secret in CA_SECRETS:
            reads = [r["start"] for r in calls if f"secret/{secret}" in r["argv"] and "yaml" in r["argv"]]
            if not reads or min(reads) > t:
                problems.append(f"secret {secret} deleted before it was read for its backup")
            files = list((route["dir"] / "backups").rglob(f"{secret}.yaml"))
            if files and files[0].stat().st_mtime > t:
                problems.append(f"backup {files[0]} written after the deletion")
    assert not problems, f"live cluster after {position}:\n  " + "\n  ".join(problems)
    count_resources(route, position)


def test_zz_destroy_leaves_the_mesh(route):
    before = live_snapshot(route["env"])
    before_log = len(log_lines(route))
    smoke.pulumi(route, "pulumi destroy (old-root-removed)", "destroy", "--yes")
    new = log_lines(route)[before_log:]
    print(f"[e2e] pulumi destroy: {len(new)} invocation(s): " + "; ".join(describe(r) for r in new), file=sys.stderr)
    assert not applied(new), "destroy ran:\n  " + "\n  ".join(applied(new))
    # The mesh as it was (the last position of the walk).
    assert_walk(route["env"], "old-root-removed", route["dir"])
    assert live_snapshot(route["env"]) == before, "destroy changed namespace labels or pods"


def test_zz_timings(route):
    """Not a check: prints this module's timed commands (smoke.run records them in smoke.TIMINGS; taken
    out again so the smoke's own timings list stays its own), then per position of the walk its
    preview and up wall times and the stack's resource count after the up."""
    mine = smoke.TIMINGS[route["timings_from"]:]
    del smoke.TIMINGS[route["timings_from"]:]
    lines = [f"cluster start: {route['clusters'].timings['start']:.1f} s"] + [f"{what}: {dt:.1f} s" for what, dt in mine]
    times = dict(mine)
    table = []
    for position, counts in RESOURCE_COUNTS.items():
        pre = times.get(f"pulumi preview ({position}) [{route['mode']}]")
        up = times.get(f"pulumi up ({position}) [{route['mode']}]")
        rest = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "total")
        table.append(f"| {position} | {pre if pre is None else f'{pre:.1f}'} | {up if up is None else f'{up:.1f}'} | {counts['total']} ({rest}) |")
    lines += ["", "| position | preview (s) | up (s) | resources |", "|---|---:|---:|---|"] + table
    (route["root"] / "timings.txt").write_text("\n".join(lines) + "\n")
    print("\n[e2e] route timings:\n  " + "\n  ".join(lines), file=sys.stderr)
