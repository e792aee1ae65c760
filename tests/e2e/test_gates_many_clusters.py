"""Gates of 6 clusters poll together: the wall time of a gate step on 6 clusters against one
cluster's, in one run, under the REAL Pulumi CLI against REAL kube-apiservers (issue 11 "Many clusters";
issue 9 finding 8: the dynamic provider host serves every gate with 4 workers, so without polling the
same gate of every cluster together the 5th and 6th clusters' gates would wait for a worker).

Seven loopback clusters (testinfra/cluster.py accepts several contexts; one kubeconfig): ``one-0`` for
a stack ``one`` (1 cluster) and ``six-1`` ... ``six-6`` for a stack ``six`` (6 clusters), both written by
this test (the dev stack's keys; two namespaces with one Deployment each, seeded as Istio on GKE 1.6
as the smoke seeds it, without the ingress gateway; one batch per phase; no gateway). Each stack
walks ``baseline`` -> ``distribute-root`` (every namespace on REV1: A0, A1, A2, then gate A3
root-cert with ``meshca:gateSource: istioctl`` and ``meshca:meshcaRoot`` = the stand-ins' test Mesh
CA root) with ``pulumi up``.

The measured step is gate A3 alone, re-run by ``pulumi up --replace`` of its TrustGate resource(s):
stack ``one``'s one gate, then stack ``six``'s six gates, in the same run. For that step only,
``kubectl`` and ``istioctl`` on PATH are shims that wait ``RTT`` seconds before running the real
kubectl / the istioctl stand-in (a round trip to a remote API server or a port-forward; the bench of
``meshca check`` does the same with 200 ms), so a gate's wall time is mostly waiting, as on a real
fleet, and not the 2 shared cores' CPU. Each shim call is logged (tool, context, start, end): the
gate step's wall time is from the first call to the last call of that ``up``. Serial gates would take
6x one cluster's; the 4-worker limit without polling together 2x. The test asserts the 6-cluster gate
step is below ``MAX_RATIO`` x one cluster's (and that every cluster's gate ran and passed).
Figures are printed (``[e2e] gates:``) and belong in BENCHMARKS.md "Gates of many clusters".
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

import route_kit as kit
import test_smoke as smoke

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
NAMESPACES = ("frontend", "cart")
ONE = ["gke_acme-mesh-fleet_us-central1_one-0"]
SIX = [f"gke_acme-mesh-fleet_us-central1_six-{i}" for i in range(1, 7)]
RTT = 2.0          # seconds each kubectl / istioctl call of the measured step waits
MAX_RATIO = 3.0    # serial: 6x; 4 workers without polling together: 2x (+ the CPU of six checks at once)


@pytest.fixture(scope="module")
def fleet(toolchain):
    # No invocation log: nothing here reads one, and the measured step's stand-ins write none.
    with kit.start_route(toolchain, ONE + SIX, "gates", timings=smoke.TIMINGS, invocation_log=False) as f:
        f["env"]["PYTHONPATH"] = str(smoke.REPO)  # pulumi() below always runs the inline driver
        f["env"]["PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"] = "true"
        f["old_injector"] = kit.start_injector(f, "testinfra.istio16_injector", "istio16-injector")
        f["timings_from"] = len(smoke.TIMINGS)
        yield f


def stack_file(f: dict, stack: str, contexts: list[str], phase: str, rev: str) -> None:
    doc = {"config": {
        "meshca:useCase": "migrate",
        "meshca:phase": phase,
        "meshca:rollback": False,
        "meshca:fleetProject": "acme-mesh-fleet",
        "meshca:oldRevision": "default",
        "meshca:rev1": REV1,
        "meshca:rev2": REV2,
        "meshca:asmcliPath": "./standins/asmcli",
        "meshca:istioctlPath": "./standins/istioctl",
        "meshca:batches": [list(NAMESPACES)],
        "meshca:clusters": [{"name": c.rsplit("_", 1)[1], "project": "acme-mesh-fleet", "location": "us-central1",
                             "kubeconfig": f["kubeconfig"], "context": c} for c in contexts],
        "meshca:caFiles": {"caCert": "samples/certs/ca-cert.pem", "caKey": "samples/certs/ca-key.pem",
                           "rootCert": "samples/certs/root-cert.pem", "certChain": "samples/certs/cert-chain.pem"},
        "meshca:gateways": [],
        "meshca:gateSource": "istioctl",
        "meshca:meshcaRoot": f["meshca_root"],
        "meshca:gateTimeoutSeconds": 300,
        "meshca:gatePollSeconds": 2,
        "meshca:restartTimeoutSeconds": 180,
        "meshca:namespaces": {ns: rev for ns in NAMESPACES},
    }}
    (f["dir"] / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def pulumi(f: dict, stack: str, what: str, sub: str, *rest: str, env: dict | None = None):
    argv = [str(f["dir"] / ".venv" / "bin" / "python"), "-m", "testinfra.pulumi_inline", "--stack", stack, sub, *rest]
    return smoke.run(f"{what} [{stack}]", argv, env or f["env"], f["dir"], f["logs"], timeout=900)


def kubectl(f: dict, ctx: str, *args: str, stdin: str | None = None):
    return smoke.run(f"kubectl {args[0]} {ctx.rsplit('_', 1)[1]}", ["kubectl", "--context", ctx, *args], f["env"], f["dir"], f["logs"],
                     timeout=300, stdin=stdin)


def seed(f: dict, ctx: str) -> None:
    objs = smoke.seed_objects(f["dir"], f["old_injector"]["url"], f["old_injector"]["caBundle"])
    keep = [o for o in objs if "ingressgateway" not in o["metadata"]["name"]
            and (o["kind"] == "MutatingWebhookConfiguration"
                 or o["metadata"].get("namespace", o["metadata"]["name"]) in ("istio-system", *NAMESPACES))]
    base = [o for o in keep if o["kind"] != "Deployment" or o["metadata"]["namespace"] == "istio-system"]
    apps = [o for o in keep if o not in base]
    kubectl(f, ctx, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": base}))
    kit.wait_injecting(f["env"], ctx, NAMESPACES[0], "default", timeout=60)  # the 1.6 webhook injects before the apps' pods exist
    kubectl(f, ctx, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": apps}))
    for ns in NAMESPACES:
        kubectl(f, ctx, "rollout", "status", f"deployment/{ns}", "-n", ns, "--timeout=120s")


def shims(f: dict) -> tuple[dict, Path]:
    """An env whose kubectl and istioctl wait RTT s, then run the real ones; each call logged."""
    d = f["root"] / "rtt-bin"
    d.mkdir(exist_ok=True)
    log = f["root"] / f"rtt-{time.monotonic_ns()}.log"
    real = {"kubectl": shutil.which("kubectl", path=f["env"]["PATH"]), "istioctl": str(f["dir"] / "standins" / "istioctl")}
    for tool, target in real.items():
        script = d / tool
        script.write_text(
            "#!/bin/sh\n"
            f"# TEST SHIM: a {RTT:g} s round trip, then the real {tool}\n"
            "t0=$(date +%s.%N)\n"
            f"sleep {RTT:g}\n"
            f"\"{target}\" \"$@\"\n"
            "rc=$?\n"
            "ctx=$(echo \"$@\" | sed -n 's/.*--context[ =]\\([^ ]*\\).*/\\1/p')\n"
            f"echo \"{tool} $ctx $t0 $(date +%s.%N) $rc\" >> \"$MESHCA_E2E_RTT_LOG\"\n"
            "exit $rc\n")
        script.chmod(0o755)
    env = dict(f["env"])
    env["PATH"] = os.pathsep.join([str(d), env["PATH"]])
    env["MESHCA_E2E_RTT_LOG"] = str(log)
    return env, log


def gate_urns(f: dict, stack: str) -> list[str]:
    import subprocess

    p = subprocess.run(["pulumi", "stack", "export", "--stack", stack, "--non-interactive"], cwd=f["dir"], env=f["env"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)["deployment"]["resources"]
    return sorted(r["urn"] for r in res if r["urn"].split("::")[-1].endswith(".A3.gate.root-cert"))


def gate_outputs(f: dict, stack: str) -> list[dict]:
    import subprocess

    p = subprocess.run(["pulumi", "stack", "export", "--stack", stack, "--non-interactive"], cwd=f["dir"], env=f["env"],
                       capture_output=True, text=True, timeout=120)
    res = json.loads(p.stdout)["deployment"]["resources"]
    return [r.get("outputs") or {} for r in res if r["urn"].split("::")[-1].endswith(".A3.gate.root-cert")]


def span(log: Path) -> tuple[float, dict[str, int]]:
    rows = [line.split() for line in log.read_text().splitlines() if line.strip()]
    starts, ends = [float(r[2]) for r in rows], [float(r[3]) for r in rows]
    per: dict[str, int] = {}
    for r in rows:
        per[r[1]] = per.get(r[1], 0) + 1
    return max(ends) - min(starts), per


def test_walk_both_stacks_to_gate_a3(fleet):
    for ctx in ONE + SIX:
        seed(fleet, ctx)
    for stack, ctxs in (("one", ONE), ("six", SIX)):
        stack_file(fleet, stack, ctxs, "baseline", "default")
        pulumi(fleet, stack, "pulumi stack init", "init")
        pulumi(fleet, stack, "pulumi up (baseline)", "up", "--policy-pack", "policy")
        stack_file(fleet, stack, ctxs, "distribute-root", REV1)
        pulumi(fleet, stack, "pulumi up (distribute-root)", "up", "--policy-pack", "policy")
        outs = gate_outputs(fleet, stack)
        assert len(outs) == len(ctxs) and all(o.get("passed") is True for o in outs), outs


def test_gate_step_of_six_clusters_polls_together(fleet):
    figures = {}
    for stack, ctxs in (("one", ONE), ("six", SIX)):
        urns = gate_urns(fleet, stack)
        assert len(urns) == len(ctxs), urns
        env, log = shims(fleet)
        t0 = time.monotonic()
        pulumi(fleet, stack, "pulumi up --replace gate A3", "up", "--policy-pack", "policy", *[a for u in urns for a in ("--replace", u)], env=env)
        wall = time.monotonic() - t0
        gate, per = span(log)
        outs = gate_outputs(fleet, stack)
        assert len(outs) == len(ctxs) and all(o.get("passed") is True for o in outs), outs
        assert sorted(per) == sorted(ctxs), f"{stack}: the shims saw calls for {per}, want every cluster of the stack"
        figures[stack] = {"gate": gate, "up": wall, "calls": per}
    ratio = figures["six"]["gate"] / figures["one"]["gate"]
    line = (f"gate A3 (root-cert) step, {RTT:g} s per kubectl/istioctl call: 1 cluster {figures['one']['gate']:.1f} s "
            f"(up {figures['one']['up']:.1f} s, {sum(figures['one']['calls'].values())} calls), 6 clusters {figures['six']['gate']:.1f} s "
            f"(up {figures['six']['up']:.1f} s, {sum(figures['six']['calls'].values())} calls): {ratio:.2f}x; load {open('/proc/loadavg').read().split()[0]}; "
            f"calls per cluster {[figures[s]['calls'] for s in ('one', 'six')]}")
    print(f"\n[e2e] gates: {line}", file=sys.stderr)
    (fleet["root"] / "gates.txt").write_text(line + "\n")
    assert ratio < MAX_RATIO, f"6 clusters' gate step took {ratio:.2f}x one cluster's (serial would be 6x): {line}"


def test_zz_timings(fleet):
    mine = smoke.TIMINGS[fleet["timings_from"]:]
    del smoke.TIMINGS[fleet["timings_from"]:]
    lines = [f"cluster start: {fleet['clusters'].timings['start']:.1f} s"] + [f"{what}: {dt:.1f} s" for what, dt in mine]
    print("\n[e2e] gates timings:\n  " + "\n  ".join(lines), file=sys.stderr)
