"""`meshca up --stack dev --to old-root-removed` on the REAL Pulumi CLI against a REAL kube-apiserver (issue 12).

Own cluster, project copy, file backend and invocation log: test_route_history.py's ``route``
fixture, imported (module-scoped, so this module starts and stops its own cluster). The cluster is
seeded as Istio on GKE 1.6 at baseline (test_smoke.seed_objects), the stack file written at
baseline, the stack created with `pulumi stack init`; from there on only `meshca up` runs Pulumi
(Automation API; inline program without pulumi-language-python, meshca/pulumi_run.py).

Two faults, each fixed by hand, then the same command again:
1. A refusal at preview: meshca:istioctlPath as shipped (empty: the istioctl asmcli links into its
   output dir, which the asmcli stand-in does not write) makes distribute-root-done's tag step
   refuse at preview (MCA0340). Expected: positions 0-5 applied, the stack file back at 5
   (distribute-root:4), MCA1014, exit 2. Fixed by pointing meshca:istioctlPath at the istioctl.
2. A failed up: a namespace outside meshca:namespaces relabelled by hand with the retiring
   injection label (``istio-injection=enabled``, namespace ``legacy``). README "The route" /
   procedure.md "What the guide leaves out": moving the default tag (A5) would change that
   namespace's injector unannounced, so A5's ``meshca webhooks strays`` refuses it (MCA0341,
   meshca/messages.yaml "StrayInjectionLabel"). Expected: resumed at 5, stopped at 6 with MCA0341
   and MCA1015, exit 1, the file left at distribute-root-done; after the label is removed the same
   command resumes there and reaches 13 (old-root-removed).

The end state, transcribed from procedure.md: Phase B step 2 labels every namespace
``istio.io/rev=REVISION_2`` (no istio-injection) and restarts it (its pods injected by REVISION_2);
Phase B step 4 deletes istiod-REVISION_1 (Service, Deployment); Phase C step 2 deletes Secrets
cacerts and istio-ca-secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from testinfra.cluster import DEV_CONTEXT

import test_smoke as smoke
from test_route_history import AUTHZ_CRD, edit_stack, route  # noqa: F401  (route: this module's own cluster)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

REV2 = "asm-11910-9-meshca-ca-migration"


def meshca_up(route, what: str, *args: str) -> subprocess.CompletedProcess:
    argv = [str(route["dir"] / ".venv" / "bin" / "meshca"), "up", "--stack", smoke.STACK, *args]
    proc = smoke.run(what, argv, route["env"], route["dir"], route["logs"], timeout=1200, check=False)
    print(f"[e2e] {what}: exit {proc.returncode}\n--- stdout\n{smoke.tail(proc.stdout, 80)}\n--- stderr\n{smoke.tail(proc.stderr, 20)}",
          file=sys.stderr)
    return proc


def live_status(route) -> dict:
    """`meshca status --stack dev --json` of the module's cluster: {live index, stack index, inSync, codes}."""
    argv = [str(route["dir"] / ".venv" / "bin" / "meshca"), "status", "--stack", smoke.STACK, "--json"]
    proc = smoke.run("meshca status --json", argv, route["env"], route["dir"], route["logs"], timeout=300, check=False)
    assert proc.returncode in (0, 1), f"meshca status failed:\n{proc.stdout}\n{proc.stderr}"
    doc = json.loads(proc.stdout)
    (cluster,) = doc["clusters"]
    return {"live": cluster["live"]["index"], "stack": cluster["stack"]["index"], "inSync": cluster["inSync"], "ok": doc["ok"],
            "exit": proc.returncode, "text": proc.stdout}


def stack_phase(route) -> tuple[str, dict]:
    from ruamel.yaml import YAML

    doc = YAML().load((route["dir"] / f"Pulumi.{smoke.STACK}.yaml").read_text())["config"]
    return doc["meshca:phase"], dict(doc["meshca:namespaces"])


def test_seed_and_stack_init(route):
    env, proj = route["env"], route["dir"]
    smoke.run("seed Istio 1.6 CRDs", ["kubectl", "--context", DEV_CONTEXT, "apply", "-f", "-"], env, proj, route["logs"],
              stdin=json.dumps(AUTHZ_CRD), timeout=60)
    objs = smoke.seed_objects(proj, route["old_injector"]["url"], route["old_injector"]["caBundle"])
    apps = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["namespace"] in smoke.APP_NAMESPACES]
    base = [o for o in objs if o not in apps]
    smoke.run("seed mesh", ["kubectl", "--context", DEV_CONTEXT, "apply", "-f", "-"], env, proj, route["logs"],
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": base}), timeout=120)
    smoke.wait_injecting(env, "frontend", "default")
    smoke.run("seed apps", ["kubectl", "--context", DEV_CONTEXT, "apply", "-f", "-"], env, proj, route["logs"],
              stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": apps}), timeout=120)
    for ns, name in [("istio-system", "istiod"), ("istio-system", "istio-ingressgateway")] + [(n, n) for n in smoke.APP_NAMESPACES]:
        smoke.run(f"seed rollout {ns}/{name}", ["kubectl", "--context", DEV_CONTEXT, "rollout", "status", f"deployment/{name}", "-n", ns,
                                                "--timeout=60s"], env, proj, route["logs"], timeout=90)
    smoke.assert_cluster(env, "baseline", proj)
    # The fault, by hand: a namespace meshca does not manage with the retiring injection label.
    smoke.run("kubectl create namespace legacy", ["kubectl", "--context", DEV_CONTEXT, "create", "namespace", "legacy"], env, proj, route["logs"])
    smoke.run("kubectl label legacy", ["kubectl", "--context", DEV_CONTEXT, "label", "namespace", "legacy", "istio-injection=enabled"],
              env, proj, route["logs"])
    smoke.write_stack(proj, route["kubeconfig"], phase="baseline", moved=(), istioctl=True)
    edit_stack(route, meshcaRoot=route["meshca_root"])
    smoke.pulumi(route, "pulumi stack init", "stack", "init")


def test_up_refused_at_preview_restores_the_file(route):
    # Fault 1 (a refusal): meshca:istioctlPath as shipped (empty) names the istioctl asmcli links into
    # REV1's output dir, which the asmcli stand-in does not write; distribute-root-done's tag step
    # probes it at preview and refuses (MCA0340). Everything before it is applied.
    proc = meshca_up(route, "meshca up --to old-root-removed (no istioctl)", "--to", "old-root-removed")
    assert proc.returncode == 2, f"meshca up was not refused:\n{smoke.tail(proc.stdout)}\n{proc.stderr}"
    err = proc.stderr.splitlines()
    assert any(line.startswith("Error MCA0340 ") for line in err), proc.stderr
    assert err[-1].startswith("Error MCA1014 position 6 distribute-root-done: position 6 distribute-root-done refused by "
                              "pulumi preview --policy-pack policy (MCA0340); the stack file is back at 5 distribute-root:4;"), proc.stderr
    # Positions 0-5 previewed and applied, in order; the progress names each position and gate.
    for n, ref in enumerate(["baseline", "distribute-root:0", "distribute-root:1", "distribute-root:2", "distribute-root:3",
                             "distribute-root:4", "distribute-root-done"], start=1):
        assert f"[{n}/14] position {n - 1} {ref}" in proc.stdout
    assert proc.stdout.count("  up: done") == 6 and proc.stdout.count("  preview: ok") == 6
    # Every preview ran the policy pack (the engine's summary names it: policy/PulumiPolicy.yaml's pack).
    previews = [line for line in proc.stdout.splitlines() if line.startswith("  preview: ok")]
    assert all("; policy packs meshca@" in line for line in previews), previews
    assert "gate dev-1.A0.gate.root-of-trust: passed" in proc.stdout and "gate dev-1.A3.gate.root-cert: passed" in proc.stdout
    # The stack file is back at the last applied position (5: every namespace on REV1, phase distribute-root).
    phase, namespaces = stack_phase(route)
    assert phase == "distribute-root" and set(namespaces.values()) == {smoke.REV1}
    # meshca status reads the same position off the live cluster (the route's index, baseline = 0):
    # 5 = distribute-root with every namespace moved (docs/route.md), in sync with the file.
    st = live_status(route)
    assert (st["live"], st["stack"], st["inSync"], st["exit"]) == (5, 5, True, 0), st["text"]


def test_up_resumes_and_stops_at_the_stray_label(route):
    # Fix 1: the istioctl of the pinned release (operational key). Fault 2 (a failed up): the
    # namespace `legacy` relabelled by hand (seeded above) is refused by A5's strays step.
    edit_stack(route, istioctlPath="./standins/istioctl")
    proc = meshca_up(route, "meshca up --to old-root-removed (stray label)", "--to", "old-root-removed")
    assert proc.returncode == 1, f"meshca up did not stop with exit 1:\n{smoke.tail(proc.stdout)}\n{proc.stderr}"
    assert proc.stdout.splitlines()[0].startswith("meshca up dev: 5 distribute-root:4 -> 13 old-root-removed, 9 position(s)")
    err = proc.stderr.splitlines()
    assert any(line.startswith("Error MCA0341 ") and "legacy" in line for line in err), proc.stderr
    assert err[-1].startswith("Error MCA1015 ") and "pulumi up at position 6 distribute-root-done failed: MCA0341" in err[-1], proc.stderr
    # The file stays at the failed position, so rerunning resumes there.
    phase, namespaces = stack_phase(route)
    assert phase == "distribute-root-done" and set(namespaces.values()) == {smoke.REV1}
    # The file says 6, the cluster is still at 5 (A5 stopped at its first check: the old control
    # plane, the default tag and the old gateway are as they were): status reports the live one and
    # the mismatch, exit 1.
    st = live_status(route)
    assert (st["live"], st["stack"], st["inSync"], st["exit"]) == (5, 6, False, 1), st["text"]


def test_up_resumes_after_the_fix_and_reaches_old_root_removed(route):
    env = route["env"]
    smoke.run("kubectl unlabel legacy", ["kubectl", "--context", DEV_CONTEXT, "label", "namespace", "legacy", "istio-injection-"],
              env, route["dir"], route["logs"])
    t0 = time.monotonic()
    proc = meshca_up(route, "meshca up --to old-root-removed (resumed)", "--to", "old-root-removed")
    assert proc.returncode == 0, f"resumed meshca up failed:\n{smoke.tail(proc.stdout)}\n{proc.stderr}"
    assert proc.stdout.splitlines()[0].startswith("meshca up dev: 6 distribute-root-done -> 13 old-root-removed, 8 position(s)")
    assert "reached position 13 old-root-removed (the route's last position: the migration is complete)" in proc.stdout
    print(f"[e2e] resumed walk 6 -> 13: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    phase, namespaces = stack_phase(route)
    assert phase == "old-root-removed" and set(namespaces.values()) == {REV2}
    st = live_status(route)
    assert (st["live"], st["stack"], st["inSync"]) == (13, 13, True), st["text"]
    labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in smoke.kubectl_json(env, "get", "namespaces")["items"]}
    pods = smoke.kubectl_json(env, "get", "pods", "--all-namespaces")["items"]
    problems = []
    for ns in smoke.APP_NAMESPACES:
        got = (labels[ns].get("istio-injection"), labels[ns].get("istio.io/rev"))
        if got != (None, REV2):
            problems.append(f"namespace {ns}: {got}, want (None, {REV2})")
        mine = [p for p in pods if p["metadata"]["namespace"] == ns and not p["metadata"].get("deletionTimestamp")]
        if [smoke.injected_by(p) for p in mine] != [REV2]:
            problems.append(f"pods of {ns}: {[smoke.injected_by(p) for p in mine]}, want [{REV2}]")
    for kind, name, present in (("secret", "cacerts", False), ("secret", "istio-ca-secret", False),
                                ("deployment", "istiod-asm-11910-9-distribute-root", False), ("service", "istiod-asm-11910-9-distribute-root", False),
                                ("deployment", f"istiod-{REV2}", True)):
        if smoke.exists(env, kind, name, "istio-system") != present:
            problems.append(f"{kind} istio-system/{name}: {'missing' if present else 'still present'}")
    assert not problems, "live cluster at old-root-removed:\n  " + "\n  ".join(problems)
