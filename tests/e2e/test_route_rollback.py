"""Rollbacks A6 and B5 of the dev stack under the REAL Pulumi CLI against a REAL kube-apiserver,
and the way back to the route afterwards (issue 11 "Rollbacks"; issue 9 correctness finding 3).

Same set-up as the smoke (tests/e2e/test_smoke.py: its seed, stack writer, runner, cluster tables;
the helpers are tests/e2e/route_kit.py's), on this module's OWN cluster, project copy and file backend. Every stand-in, the command provider
stand-in and the injector stand-in append to one invocation log (``$MESHCA_STANDIN_LOG``): "nothing
applied" and "the install ran anew" are read from it.

The dev stack with ``meshca:batches`` = [[frontend, cart, checkout], [the other nine]] instead of
``batchSize: 3`` (the same first batch, two batches per phase, so the walk to phase B is short).
The tests run in order, one route:

1. ``baseline``; ``distribute-root`` batch 1 (the smoke's positions, its tables);
2. A6: ``meshca:rollback: true`` at ``distribute-root`` batch 1 (README "The route": the rollback of
   the current phase; ``meshca plan --stack dev --all`` renders A6 there), the cluster against
   ``ROLLED_BACK_A``;
3. returning straight to ``distribute-root`` (rollback false) is refused with ``MCA0669`` by
   ``pulumi preview`` and by ``pulumi up --skip-preview``, nothing applied (the invocation log, the
   live cluster, the stack's state: route_kit ``refused``); the fix's route
   (``baseline``, then ``distribute-root`` again) works: the install runs anew (asmcli in the log),
   the cluster is the smoke's "distribute-root batch 1" again;
4. the walk on to ``mesh-ca`` batch 1 (batch 2 = every namespace on REV1, A3, A4; A5);
5. B5 at ``mesh-ca`` batch 1, the cluster against ``ROLLED_BACK_B``; ``mesh-ca`` straight again is
   refused (``MCA0669``), ``distribute-root-done`` then ``mesh-ca`` batch 1 works.

Expectations (literal, never computed with meshca code) are procedure.md's:
- Phase A step 6 "Rollback (instead of 5): delete the new gateway Deployment; relabel namespaces back
  (`istio.io/rev=OLD_REVISION`, or `istio.io/rev- istio-injection=enabled`); restart deployments;
  delete istiod-REVISION_1 (Service, Deployment, HPA, PDB) and `IstioOperator installed-state-REVISION_1`."
- Phase B step 5 "Rollback (instead of 4): downgrade the gateway in place to REVISION_1; relabel
  namespaces to REVISION_1; restart; delete gateways and istiod of REVISION_2 and
  `installed-state-REVISION_2`."
- README "The route": "Afterwards set the phase back (`baseline` or `distribute-root-done`) with the
  namespaces on the earlier revision, and `rollback: false`, and run `pulumi up`; only then enter the
  phase again (its install runs anew). Returning straight to the rolled-back phase is refused
  (`MCA0669`)"; meshca/messages.yaml MCA0669's fix "set meshca:phase to {back} (rollback false)".
"""

from __future__ import annotations

import json
import sys

import pytest

from testinfra.cluster import DEV_CONTEXT

import route_kit as kit
import test_smoke as smoke

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
BATCH_1 = ("frontend", "cart", "checkout")
ALL = smoke.APP_NAMESPACES
BATCHES = [list(BATCH_1), [ns for ns in ALL if ns not in BATCH_1]]
OLD = ("enabled", None)          # "Two starting points", migrate: istio-injection=enabled
R1 = (None, REV1)                # A2: istio.io/rev=REVISION_1 istio-injection-
R2 = (None, REV2)                # B2: istio.io/rev=REVISION_2

# ---------------------------------------------------------------------------------------------
# The tables. Namespace rows (istio-injection, istio.io/rev); pod rows: the revision whose injector
# wrote the namespace's pod (procedure.md "Which revision a pod runs"); object rows (kind, name) ->
# present, in istio-system (webhook configurations are cluster-scoped).
# ---------------------------------------------------------------------------------------------
TABLES: dict[str, dict] = {}

# A6 after batch 1: "relabel namespaces back (... istio.io/rev- istio-injection=enabled)": every
# namespace as seeded; "restart deployments": every pod injected by the old revision again;
# "delete istiod-REVISION_1 (Service, Deployment, HPA, PDB) and IstioOperator installed-state-REVISION_1".
# The old control plane and gateway were never touched (A5 did not run); cacerts is not in A6's list.
TABLES["A6 rolled back"] = {
    "namespaces": {ns: OLD for ns in ALL},
    "pods": {ns: "default" for ns in ALL},
    "objects": {
        ("deployment", "istiod"): True, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", f"istiod-{REV1}"): False, ("service", f"istiod-{REV1}"): False,
        ("horizontalpodautoscaler", f"istiod-{REV1}"): False, ("poddisruptionbudget", f"istiod-{REV1}"): False,
        ("istiooperator", f"installed-state-{REV1}"): False,
    },
    # A6 "delete the new gateway Deployment" (none yet at batch 1: A4 runs when every namespace is on
    # REVISION_1); the old 1.6 gateway serves alone (not injected: explicit proxy image, "unknown").
    "gateway": ["unknown"],
    "inject": {"frontend": "default", "ads": "default"},
}
# Phase A after batch 2 = every namespace (A2 for all, A3, then A4 "install a new gateway Deployment
# with revision REVISION_1 ... selected by the same Service ... keep the old gateway").
TABLES["distribute-root all"] = {
    "namespaces": {ns: R1 for ns in ALL},
    "pods": {ns: REV1 for ns in ALL},
    "objects": {
        ("deployment", "istiod"): True, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", f"istiod-{REV1}"): True, ("service", f"istiod-{REV1}"): True,
    },
    "gateway": [REV1, "unknown"],
}
# A5: "delete the old ingress gateway (migrate: deploy/istio-ingressgateway); delete the old istiod
# (Service,Deployment,HPA,PDB named istiod)" with the Service istiod applied from REVISION_1's output
# dir (procedure.md's mistake: the Service stays, now REVISION_1's).
TABLES["distribute-root-done"] = {
    "namespaces": {ns: R1 for ns in ALL},
    "pods": {ns: REV1 for ns in ALL},
    "objects": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", f"istiod-{REV1}"): True, ("service", f"istiod-{REV1}"): True,
    },
    "gateway": [REV1],
    "inject": {"frontend": REV1, "ads": REV1},
}
# B1 installs REVISION_2 (Deployment/Service istiod-REVISION_2); B2 batch 1 relabels and restarts
# frontend, cart, checkout; B3 (gateway in place) only when every namespace is on REVISION_2.
TABLES["mesh-ca batch 1"] = {
    "namespaces": {ns: (R2 if ns in BATCH_1 else R1) for ns in ALL},
    "pods": {ns: (REV2 if ns in BATCH_1 else REV1) for ns in ALL},
    "objects": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", f"istiod-{REV1}"): True, ("service", f"istiod-{REV1}"): True,
        ("deployment", f"istiod-{REV2}"): True, ("service", f"istiod-{REV2}"): True,
        ("istiooperator", f"installed-state-{REV2}"): True,
    },
    "gateway": [REV1],
}
# B5 at batch 1: "relabel namespaces to REVISION_1; restart": every namespace and pod on REVISION_1;
# "delete gateways and istiod of REVISION_2 and installed-state-REVISION_2"; "downgrade the gateway
# in place to REVISION_1": the gateway (still REVISION_1's, B3 never ran) serves on REVISION_1.
# Phase A's result stays (the old istiod and gateway are gone since A5; the CA secrets until phase C).
TABLES["B5 rolled back"] = {
    "namespaces": {ns: R1 for ns in ALL},
    "pods": {ns: REV1 for ns in ALL},
    "objects": {
        ("deployment", "istiod"): False, ("service", "istiod"): True,
        ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
        ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
        ("deployment", f"istiod-{REV1}"): True, ("service", f"istiod-{REV1}"): True,
        ("deployment", f"istiod-{REV2}"): False, ("service", f"istiod-{REV2}"): False,
        ("horizontalpodautoscaler", f"istiod-{REV2}"): False, ("poddisruptionbudget", f"istiod-{REV2}"): False,
        ("istiooperator", f"installed-state-{REV2}"): False,
    },
    "gateway": [REV1],
    "inject": {"frontend": REV1, "ads": REV1},
}


# ---------------------------------------------------------------------------------------------
# Fixture: own cluster, own project, one invocation log
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rb(toolchain):
    with kit.start_route(toolchain, [DEV_CONTEXT], "rollback", timings=smoke.TIMINGS) as route:
        route["old_injector"] = kit.start_injector(route, "testinfra.istio16_injector", "istio16-injector")
        route["timings_from"] = len(smoke.TIMINGS)
        yield route


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def position(rb: dict, phase: str, namespaces: dict[str, str], rollback: bool = False) -> None:
    """Pulumi.dev.yaml at PHASE with NAMESPACES (ns -> revision), this module's batches (meshca:batches
    instead of meshca:batchSize; both: MCA1000)."""
    smoke.write_stack(rb["dir"], rb["kubeconfig"], phase=phase, moved=(), istioctl=True)
    kit.edit_stack(rb, smoke.STACK, batchSize=None, batches=BATCHES, rollback=rollback, meshcaRoot=rb["meshca_root"],
                   istioctlPath="./standins/istioctl", namespaces={ns: namespaces.get(ns, "default") for ns in ALL})


def on(rev: str, namespaces=ALL, rest: str = "default") -> dict[str, str]:
    return {ns: (rev if ns in namespaces else rest) for ns in ALL}


def live(env: dict) -> dict:
    return kit.live_snapshot(env, [DEV_CONTEXT])


def ready_gateway_pods(env: dict) -> list[str]:
    return sorted(str(smoke.injected_by(p)) for p in kit.ready_endpoint_pods(env, DEV_CONTEXT, "istio-ingressgateway"))


def assert_table(rb: dict, name: str) -> None:
    t = TABLES[name]
    smoke.EXPECTED_NAMESPACES[name] = t["namespaces"]
    smoke.EXPECTED_POD_REVISIONS[name] = t["pods"]
    smoke.EXPECTED_OBJECTS[name] = t["objects"]
    problems = []
    try:
        smoke.assert_cluster(rb["env"], name, rb["dir"])
    except AssertionError as exc:
        problems.append(str(exc))
    gw = ready_gateway_pods(rb["env"])
    if gw != t["gateway"]:
        problems.append(f"Service istio-ingressgateway's ready pods injected by {gw}, want {t['gateway']}")
    for ns, rev in (t.get("inject") or {}).items():  # a new pod there now is injected by REV
        try:
            smoke.wait_injecting(rb["env"], ns, rev, timeout=15)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, f"live cluster after {name}:\n  " + "\n  ".join(problems)


def up(rb: dict, what: str, preview: bool = True) -> list[dict]:
    """preview + up (smoke.preview_and_up), or the up alone (the walk's transit positions, each
    previewed in tests/e2e/test_route_history.py); returns the invocation-log records."""
    before = len(kit.log_lines(rb))
    if preview:
        smoke.preview_and_up(rb, what, {})
    else:
        smoke.pulumi(rb, f"pulumi up ({what})", "up", "--yes", "--policy-pack", "policy")
    return kit.log_lines(rb)[before:]


def refused_0669(rb: dict, what: str, back: str) -> None:
    """preview AND up --skip-preview fail with MCA0669 naming BACK; nothing applied, cluster and state
    unchanged (route_kit.refused)."""
    kit.refused(rb, smoke.STACK, [DEV_CONTEXT], what, "MCA0669", fix=f"set meshca:phase to {back}")


def asmcli_installs(records: list[dict]) -> list[str]:
    revs = []
    for rec in records:
        argv = [str(a) for a in rec.get("argv") or []]
        if rec.get("tool") == "asmcli" and "install" in argv and "--revision_name" in argv:
            revs.append(argv[argv.index("--revision_name") + 1])
    return revs


# ---------------------------------------------------------------------------------------------
# The route (in order)
# ---------------------------------------------------------------------------------------------
AUTHZ_CRD = kit.AUTHZ_CRD  # Istio 1.6's CRD, as tests/e2e/test_route_history.py seeds it (A5's proof dry-runs one)


def test_baseline(rb):
    smoke.run("seed Istio 1.6 CRDs (kubectl apply)", ["kubectl", "--context", DEV_CONTEXT, "apply", "-f", "-"], rb["env"],
              rb["dir"], rb["logs"], stdin=json.dumps(AUTHZ_CRD), timeout=60)
    smoke.test_baseline(rb)  # seeds, writes the stack at baseline, stack init, preview + up, the smoke's table


def test_distribute_root_batch_1(rb):
    position(rb, "distribute-root", on(REV1, BATCH_1))
    up(rb, "distribute-root batch 1")
    smoke.assert_cluster(rb["env"], "distribute-root batch 1", rb["dir"])


def test_rollback_a6(rb):
    position(rb, "distribute-root", on(REV1, BATCH_1), rollback=True)
    up(rb, "A6 rolled back")
    assert_table(rb, "A6 rolled back")


def test_return_to_distribute_root_refused(rb):
    position(rb, "distribute-root", on(REV1, BATCH_1))
    refused_0669(rb, "A6 -> distribute-root", "baseline")
    assert_table(rb, "A6 rolled back")


def test_way_back_after_a6(rb):
    # the fix's route: baseline (rollback false; the install leaves the state, nothing runs) ...
    position(rb, "baseline", {})
    before = live(rb["env"])
    up(rb, "baseline after A6")
    assert live(rb["env"]) == before, "going back to baseline changed namespace labels or pods"
    assert_table(rb, "A6 rolled back")
    # ... then distribute-root again: its install runs anew
    position(rb, "distribute-root", on(REV1, BATCH_1))
    records = up(rb, "distribute-root batch 1 again")
    assert asmcli_installs(records) == [REV1], f"asmcli installs in the re-entry: {asmcli_installs(records)}"
    smoke.assert_cluster(rb["env"], "distribute-root batch 1", rb["dir"])


def test_walk_to_mesh_ca_batch_1(rb):
    position(rb, "distribute-root", on(REV1))
    up(rb, "distribute-root all", preview=False)
    assert_table(rb, "distribute-root all")
    position(rb, "distribute-root-done", on(REV1))
    up(rb, "distribute-root-done", preview=False)
    assert_table(rb, "distribute-root-done")
    position(rb, "mesh-ca", on(REV2, BATCH_1, rest=REV1))
    up(rb, "mesh-ca batch 1", preview=False)
    assert_table(rb, "mesh-ca batch 1")


def test_rollback_b5(rb):
    position(rb, "mesh-ca", on(REV2, BATCH_1, rest=REV1), rollback=True)
    up(rb, "B5 rolled back")
    assert_table(rb, "B5 rolled back")


def test_return_to_mesh_ca_refused(rb):
    position(rb, "mesh-ca", on(REV2, BATCH_1, rest=REV1))
    refused_0669(rb, "B5 -> mesh-ca", "distribute-root-done")
    assert_table(rb, "B5 rolled back")


def test_way_back_after_b5(rb):
    position(rb, "distribute-root-done", on(REV1))
    before = live(rb["env"])
    up(rb, "distribute-root-done after B5")
    assert live(rb["env"]) == before, "going back to distribute-root-done changed namespace labels or pods"
    assert_table(rb, "B5 rolled back")
    position(rb, "mesh-ca", on(REV2, BATCH_1, rest=REV1))
    records = up(rb, "mesh-ca batch 1 again")
    assert asmcli_installs(records) == [REV2], f"asmcli installs in the re-entry: {asmcli_installs(records)}"
    assert_table(rb, "mesh-ca batch 1")


def test_zz_timings(rb):
    """Not a check: prints this module's timed commands (taken out of smoke.TIMINGS again)."""
    mine = smoke.TIMINGS[rb["timings_from"]:]
    del smoke.TIMINGS[rb["timings_from"]:]
    lines = [f"cluster start: {rb['clusters'].timings['start']:.1f} s"] + [f"{what}: {dt:.1f} s" for what, dt in mine]
    print("\n[e2e] rollback timings:\n  " + "\n  ".join(lines), file=sys.stderr)
