"""Rollbacks A6 and B5 of the dev stack under the REAL Pulumi CLI against a REAL kube-apiserver,
and the way back to the route afterwards (issue 11 "Rollbacks"; issue 9 correctness finding 3).

Same set-up as the smoke (tests/e2e/test_smoke.py: its seed, stack writer, runner, cluster tables),
on this module's OWN cluster, project copy and file backend. Every stand-in, the command provider
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
   ``pulumi preview`` and by ``pulumi up --skip-preview``, nothing applied; the fix's route
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
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from testinfra.cluster import DEV_CONTEXT, Clusters, LaunchError

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
    root = Path(tempfile.mkdtemp(prefix="meshca-e2e-rollback-"))
    print(f"[e2e] rollback dir {root} (MESHCA_E2E_KEEP=1 keeps it)", file=sys.stderr)
    log = root / "invocations.jsonl"
    log.touch()
    saved = {k: os.environ.get(k) for k in ("MESHCA_STANDIN_LOG", "MESHCA_STANDIN_STATE")}
    os.environ["MESHCA_STANDIN_LOG"] = str(log)  # the injector the cluster starts logs its reviews here
    os.environ["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
    clusters = Clusters([DEV_CONTEXT], bindir=toolchain.bin)
    try:
        clusters.start()
        sys.path.insert(0, str(smoke.REPO))
        from standins import pki as standin_pki

        meshca_root = root / "meshca-root.pem"  # the stand-ins' test Mesh CA root (standins/README.md)
        meshca_root.write_bytes(standin_pki.meshca_root_pem(str(root / "standin-state")))
    except LaunchError as exc:
        print(clusters.logs(), file=sys.stderr)
        clusters.stop()
        pytest.fail(f"cluster did not start: {exc}", pytrace=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    print(f"[e2e] rollback cluster up in {clusters.timings['start']:.1f} s", file=sys.stderr)
    proj = root / "project"
    smoke.copy_project(proj)
    (root / "logs").mkdir()
    (root / "state").mkdir()
    env = smoke.project_env(clusters.env, toolchain, proj, root)
    env["MESHCA_STANDIN_LOG"] = str(log)
    env["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
    mode = "cli" if shutil.which("pulumi-language-python", path=env["PATH"]) else "inline"
    if mode == "inline":
        env["PYTHONPATH"] = str(smoke.REPO)
        env["PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"] = "true"
    env["PATH"] = os.pathsep.join([str(smoke.standin(proj, "istioctl").parent), env["PATH"]])
    old = smoke.start_old_injector(root / "istio16-injector", clusters.env)
    project = {"dir": proj, "root": root, "logs": root / "logs", "env": env, "kubeconfig": str(clusters.kubeconfig),
               "clusters": clusters, "old_injector": old, "mode": mode, "log": log, "meshca_root": str(meshca_root),
               "timings_from": len(smoke.TIMINGS)}
    yield project
    old["proc"].stop()
    keep = os.environ.get("MESHCA_E2E_KEEP") == "1"
    clusters.stop(keep=keep)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def position(rb: dict, phase: str, namespaces: dict[str, str], rollback: bool = False) -> None:
    """Pulumi.dev.yaml at PHASE with NAMESPACES (ns -> revision), this module's batches."""
    from ruamel.yaml import YAML

    smoke.write_stack(rb["dir"], rb["kubeconfig"], phase=phase, moved=(), istioctl=True)
    yaml = YAML()
    yaml.preserve_quotes = True
    path = rb["dir"] / f"Pulumi.{smoke.STACK}.yaml"
    doc = yaml.load(path.read_text())
    cfg = doc["config"]
    cfg.pop("meshca:batchSize", None)  # meshca:batches instead (both: MCA1000)
    cfg["meshca:batches"] = BATCHES
    cfg["meshca:rollback"] = rollback
    cfg["meshca:meshcaRoot"] = rb["meshca_root"]
    cfg["meshca:istioctlPath"] = "./standins/istioctl"
    for ns in ALL:
        cfg["meshca:namespaces"][ns] = namespaces.get(ns, "default")
    with path.open("w") as fh:
        yaml.dump(doc, fh)


def on(rev: str, namespaces=ALL, rest: str = "default") -> dict[str, str]:
    return {ns: (rev if ns in namespaces else rest) for ns in ALL}


def log_lines(rb: dict) -> list[dict]:
    return [json.loads(line) for line in rb["log"].read_text().splitlines() if line.strip()]


def applied(records: list[dict]) -> list[str]:
    """What a run applied: a Command created, updated or deleted by the command provider (an invoke
    is a preview-time read), asmcli, an istioctl other than version/proxy-config, a pod reviewed by
    the injector stand-in (a pod was created)."""
    out = []
    for rec in records:
        if rec.get("standin") == "pulumi-resource-command":
            if rec.get("op") != "invoke":
                out.append(f"command provider {rec.get('op')} {str(rec.get('urn', '')).rsplit('::', 1)[-1]}")
        elif rec.get("tool") == "istioctl":
            words = [a for a in rec.get("argv") or [] if not a.startswith("-")]
            if len(words) < 2 or words[1] not in ("version", "proxy-config"):
                out.append(f"istioctl {' '.join(words)}")
        else:
            out.append(f"{rec.get('tool')} {rec.get('namespace') or ''} {' '.join(map(str, rec.get('argv') or []))[:120]}")
    return out


def live(env: dict) -> dict:
    namespaces = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in smoke.kubectl_json(env, "get", "namespaces")["items"]}
    pods = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}/{p['metadata']['uid']}"
                  for p in smoke.kubectl_json(env, "get", "pods", "--all-namespaces")["items"] if not p["metadata"].get("deletionTimestamp"))
    return {"namespaces": namespaces, "pods": pods}


def ready_gateway_pods(env: dict) -> list[str]:
    slices = smoke.kubectl_json(env, "get", "endpointslices", "-n", "istio-system", "-l", "kubernetes.io/service-name=istio-ingressgateway")["items"]
    names = {e["targetRef"]["name"] for sl in slices for e in sl.get("endpoints") or []
             if (e.get("conditions") or {}).get("ready") and (e.get("targetRef") or {}).get("kind") == "Pod"}
    return sorted(str(smoke.injected_by(p)) for p in smoke.kubectl_json(env, "get", "pods", "-n", "istio-system")["items"]
                  if p["metadata"]["name"] in names)


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
    before = len(log_lines(rb))
    if preview:
        smoke.preview_and_up(rb, what, {})
    else:
        smoke.pulumi(rb, f"pulumi up ({what})", "up", "--yes", "--policy-pack", "policy")
    return log_lines(rb)[before:]


def refused_0669(rb: dict, what: str, back: str) -> None:
    """preview AND up --skip-preview fail with MCA0669 naming BACK; nothing applied, cluster unchanged."""
    for run, args in ((f"pulumi preview ({what})", ("preview", "--policy-pack", "policy")),
                      (f"pulumi up --skip-preview ({what})", ("up", "--yes", "--skip-preview", "--policy-pack", "policy"))):
        before_log, before = len(log_lines(rb)), live(rb["env"])
        proc = smoke.pulumi(rb, run, *args, check=False)
        out = proc.stdout + proc.stderr
        lines = list(dict.fromkeys(line.strip() for line in out.splitlines() if "MCA0669" in line))
        assert proc.returncode != 0, f"{run} was not refused:\n{smoke.tail(proc.stdout, 40)}"
        mca = list(dict.fromkeys(line.strip() for line in out.splitlines() if "MCA" in line))
        assert lines, f"{run} was refused without MCA0669; its MCA lines:\n  " + "\n  ".join(mca[:12]) + f"\n{smoke.tail(out, 30)}"
        assert any("Error MCA0669 " in line and f"set meshca:phase to {back}" in line for line in lines), lines[:3]
        print(f"[e2e] {run} refused: {lines[0][:300]}", file=sys.stderr)
        ran = applied(log_lines(rb)[before_log:])
        assert not ran, f"{run} was refused but applied:\n  " + "\n  ".join(ran)
        assert live(rb["env"]) == before, f"{run} was refused but changed the live cluster"


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
AUTHZ_CRD = {  # Istio 1.6's CRD, as tests/e2e/test_route_history.py seeds it (A5's proof dry-runs one)
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "authorizationpolicies.security.istio.io", "labels": {"app": "istio-pilot", "istio": "security", "release": "istio"}},
    "spec": {"group": "security.istio.io", "scope": "Namespaced",
             "names": {"kind": "AuthorizationPolicy", "listKind": "AuthorizationPolicyList", "plural": "authorizationpolicies",
                       "singular": "authorizationpolicy", "categories": ["istio-io", "security-istio-io"]},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


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
