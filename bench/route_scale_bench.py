#!/usr/bin/env python3
"""Benchmark of the route at scale on the REAL engine (issue 11 "Figures", issue 13): `pulumi preview`
against the growing history of Commands. NOT in CI (it takes long); `make bench` runs it.

C loopback clusters (testinfra/cluster.py: real etcd, kube-apiserver, kube-controller-manager, KWOK),
each seeded as Istio on GKE 1.6 looks at baseline (tests/e2e/test_smoke.py's seed: istiod, the
ingress gateway, istio-ca-secret, the 1.6 injector webhook) plus N namespaces ``ns-0000``... with one
Deployment (one pod) each. A stack ``scale`` of those C clusters, ONE batch per phase (``meshca:batches``
= [all N]), walks the whole route under the real Pulumi CLI (inline mode, testinfra/pulumi_inline.py,
as the e2e does), with the stand-ins (standins/) and the policy pack:

    baseline -> distribute-root (all on REV1) -> distribute-root-done -> mesh-ca (all on REV2)
    -> mesh-ca-done -> old-root-removed

At each position (each phase's last, and only, position): ``pulumi preview --policy-pack policy``
(timed: the engine's cost as the route's history grows), the same preview again with
``PULUMI_SKIP_CHECKPOINTS=true`` (timed: what ``meshca up`` runs, meshca/pulumi_run.py), ``pulumi up
--yes --policy-pack policy`` (timed; with ``--up-skip-checkpoints`` it too skips them, marked), then the state's resource count (``pulumi stack export``: all, and ``command:local:Command``).
Every figure is written to ``--out`` (JSON) as soon as it exists, so a run cut short still leaves
what finished; ``--update-benchmarks`` writes BENCHMARKS.md's section "## The route at scale" from it.

Usage (root, iproute2, ``make toolchain`` done):
    .venv/bin/python bench/route_scale_bench.py [--clusters 3] [--namespaces 300] [--out FILE] [--only-skip-preview] [--up-skip-checkpoints] [--update-benchmarks]
    .venv/bin/python bench/route_scale_bench.py --from-json FILE [--from-json FILE...] --update-benchmarks   (section only)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from meshca.pulumi_run import PREVIEW_ENVIRONMENT  # noqa: E402 (after the path)

SECTION = "## The route at scale (real engine)"
STACK = "scale"
# What `meshca up` adds to a preview (meshca/pulumi_run.py); --up-skip-checkpoints sets it for ups too.
SKIP_CHECKPOINTS = dict(PREVIEW_ENVIRONMENT)
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
# procedure.md "The route", one batch per phase: (position, meshca:phase, revision of every namespace)
POSITIONS = (
    ("baseline", "baseline", "default"),
    ("distribute-root", "distribute-root", REV1),
    ("distribute-root-done", "distribute-root-done", REV1),
    ("mesh-ca", "mesh-ca", REV2),
    ("mesh-ca-done", "mesh-ca-done", REV2),
    ("old-root-removed", "old-root-removed", REV2),
)
AUTHZ_CRD = {  # as tests/e2e/test_route_history.py seeds it (Istio 1.6's CRD; A5's proof dry-runs one)
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "authorizationpolicies.security.istio.io", "labels": {"app": "istio-pilot", "istio": "security", "release": "istio"}},
    "spec": {"group": "security.istio.io", "scope": "Namespaced",
             "names": {"kind": "AuthorizationPolicy", "listKind": "AuthorizationPolicyList", "plural": "authorizationpolicies",
                       "singular": "authorizationpolicy", "categories": ["istio-io", "security-istio-io"]},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def contexts(n: int) -> list[str]:
    return [f"gke_acme-mesh-scale_us-central1_scale-{i:02d}" for i in range(n)]


def ns_names(n: int) -> list[str]:
    return [f"ns-{i:04d}" for i in range(n)]


def stack_doc(ctxs: list[str], names: list[str], kubeconfig: str, meshca_root: str, phase: str, on: str) -> dict:
    return {"config": {
        "meshca:useCase": "migrate",
        "meshca:phase": phase,
        "meshca:rollback": False,
        "meshca:fleetProject": "acme-mesh-scale",
        "meshca:oldRevision": "default",
        "meshca:rev1": REV1,
        "meshca:rev2": REV2,
        "meshca:asmcliPath": "./standins/asmcli",
        "meshca:istioctlPath": "./standins/istioctl",
        "meshca:asmcliVersion": "1.19.10-asm.9+config1",
        "meshca:batches": [list(names)],
        "meshca:clusters": [{"name": f"scale-{i:02d}", "project": "acme-mesh-scale", "location": "us-central1",
                             "kubeconfig": kubeconfig, "context": c} for i, c in enumerate(ctxs)],
        "meshca:caFiles": {"caCert": "samples/certs/ca-cert.pem", "caKey": "samples/certs/ca-key.pem",
                           "rootCert": "samples/certs/root-cert.pem", "certChain": "samples/certs/cert-chain.pem"},
        "meshca:gateways": [{"namespace": "istio-system", "deployment": "istio-ingressgateway", "service": "istio-ingressgateway"}],
        "meshca:gateSource": "istioctl",
        "meshca:meshcaRoot": meshca_root,
        "meshca:gateTimeoutSeconds": 1800,
        "meshca:gatePollSeconds": 5,
        "meshca:restartTimeoutSeconds": 900,
        "meshca:namespaces": {n: on for n in names},
    }}


class Run:
    def __init__(self, root: Path, env: dict, proj: Path) -> None:
        self.root, self.env, self.proj = root, env, proj
        self.n = 0

    def cmd(self, what: str, argv: list[str], timeout: float = 7200, stdin: str | None = None, check: bool = True,
            extra_env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
        self.n += 1
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=self.proj, env={**self.env, **(extra_env or {})}, capture_output=True, text=True, timeout=timeout, input=stdin)
        dt_ = time.monotonic() - t0
        safe = what.replace(" ", "_").replace("/", "_")
        (self.root / "logs" / f"{self.n:02d}-{safe}.log").write_text(
            f"$ {' '.join(argv)}\nexit {proc.returncode} in {dt_:.1f}s\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        print(f"[bench] {what}: {dt_:.1f} s (exit {proc.returncode}; load {loadavg()})", file=sys.stderr, flush=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n" + "\n".join((proc.stdout + proc.stderr).splitlines()[-40:]))
        return dt_, proc

    def pulumi(self, what: str, sub: str, *rest: str, check: bool = True, extra_env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
        argv = [str(self.proj / ".venv" / "bin" / "python"), "-m", "testinfra.pulumi_inline", "--stack", STACK, sub, *rest]
        return self.cmd(what, argv, check=check, extra_env=extra_env)

    def previews(self, row: dict, position: str, default_too: bool = True) -> None:
        """The preview twice on the same state: as the CLI runs it by default (``preview``), then with
        ``PULUMI_SKIP_CHECKPOINTS=true`` as ``meshca up`` runs it (``previewSkip``; meshca/pulumi_run.py
        ``PREVIEW_ENVIRONMENT``: the default serializes the whole state on every step of a preview)."""
        if default_too:
            row["preview"] = round(self.pulumi(f"pulumi preview ({position})", "preview", "--policy-pack", "policy")[0], 1)
        row["previewSkip"] = round(self.pulumi(f"pulumi preview, skip checkpoints ({position})", "preview", "--policy-pack", "policy",
                                               extra_env=SKIP_CHECKPOINTS)[0], 1)

    def resources(self) -> dict:
        _, proc = self.cmd("pulumi stack export", ["pulumi", "stack", "export", "--stack", STACK, "--non-interactive"])
        res = json.loads(proc.stdout).get("deployment", {}).get("resources") or []
        by_type: dict[str, int] = {}
        for r in res:
            by_type[r["type"]] = by_type.get(r["type"], 0) + 1
        return {"resources": len(res), "commands": by_type.get("command:local:Command", 0), "byType": by_type}


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def seed(run: Run, ctx: str, names: list[str], old: dict, project: Path) -> None:
    import test_smoke as smoke

    base = [o for o in smoke.seed_objects(project, old["url"], old["caBundle"])
            if o["metadata"].get("namespace", o["metadata"]["name"]) not in smoke.APP_NAMESPACES]
    run.cmd(f"seed CRD {ctx}", ["kubectl", "--context", ctx, "apply", "-f", "-"], stdin=json.dumps(AUTHZ_CRD), timeout=120)
    run.cmd(f"seed mesh {ctx}", ["kubectl", "--context", ctx, "apply", "-f", "-"],
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": base}), timeout=300)
    nss, deps = [], []
    for ns in names:
        nss.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}}})
        deps.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": ns, "namespace": ns, "labels": {"app": ns}},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": ns}},
                              "template": {"metadata": {"labels": {"app": ns, "version": "v1"}},
                                           "spec": {"containers": [{"name": ns, "image": f"example.invalid/acme/{ns}:1.0",
                                                                    "ports": [{"containerPort": 8080, "name": "http"}]}]}}}})
    run.cmd(f"seed namespaces {ctx}", ["kubectl", "--context", ctx, "apply", "-f", "-"],
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": nss}), timeout=600)
    # the 1.6 webhook must inject before the apps' pods are created (as test_smoke.wait_injecting)
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "probe-"},
             "spec": {"containers": [{"name": "probe", "image": "example.invalid/probe:1"}]}}
    deadline = time.monotonic() + 60
    while True:
        p = subprocess.run(["kubectl", "--context", ctx, "create", "-n", names[0], "-f", "-", "--dry-run=server", "-o", "json"],
                           input=json.dumps(probe), env=run.env, capture_output=True, text=True, timeout=30)
        if p.returncode == 0 and smoke.injected_by(json.loads(p.stdout)) == "default":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ctx}: the 1.6 injector does not inject: {p.stderr.strip()[:300]}")
        time.sleep(0.5)
    run.cmd(f"seed apps {ctx}", ["kubectl", "--context", ctx, "apply", "-f", "-"],
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": deps}), timeout=900)


def wait_available(run: Run, ctxs: list[str], want: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    for ctx in ctxs:
        while True:
            p = subprocess.run(["kubectl", "--context", ctx, "get", "deployments", "-A", "-o", "json"], env=run.env,
                               capture_output=True, text=True, timeout=120)
            items = json.loads(p.stdout)["items"] if p.returncode == 0 else []
            ok = sum(1 for d in items if (d.get("status") or {}).get("availableReplicas", 0) >= 1)
            if ok >= want:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ctx}: {ok}/{want} deployments available after {timeout:.0f} s")
            time.sleep(3)


def walk(args: argparse.Namespace) -> dict:
    from testinfra.cluster import Clusters, toolchain_bin, toolchain_pulumi_home
    import test_smoke as smoke

    from standins import pki as standin_pki

    ctxs, names = contexts(args.clusters), ns_names(args.namespaces)
    root = Path(tempfile.mkdtemp(prefix="meshca-route-scale-"))
    (root / "logs").mkdir()
    (root / "state").mkdir()
    result: dict = {"clusters": args.clusters, "namespaces": args.namespaces, "date": dt.date.today().isoformat(),
                    "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}", "dir": str(root),
                    "command": " ".join(["bench/route_scale_bench.py", *sys.argv[1:]]), "positions": [], "done": False}
    out = Path(args.out)

    def save() -> None:
        out.write_text(json.dumps(result, indent=2))

    print(f"[bench] dir {root}; figures -> {out}", file=sys.stderr)
    os.environ["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
    clusters = Clusters(ctxs, bindir=toolchain_bin(ROOT))
    old = None
    try:
        t0 = time.monotonic()
        clusters.start()
        result["clusterStart"] = round(time.monotonic() - t0, 1)
        proj = root / "project"
        smoke.copy_project(proj)

        class TC:  # the toolchain fixture's shape
            bin = toolchain_bin(ROOT)
            pulumi_home = toolchain_pulumi_home(ROOT)

        env = smoke.project_env(clusters.env, TC, proj, root)
        env["PYTHONPATH"] = str(ROOT)
        env["PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"] = "true"
        env["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
        env["PATH"] = os.pathsep.join([str(proj / "standins"), env["PATH"]])
        meshca_root = root / "meshca-root.pem"
        meshca_root.write_bytes(standin_pki.meshca_root_pem(env["MESHCA_STANDIN_STATE"]))
        run = Run(root, env, proj)
        old = smoke.start_old_injector(root / "istio16-injector", clusters.env)
        t0 = time.monotonic()
        for ctx in ctxs:
            seed(run, ctx, names, old, proj)
        wait_available(run, ctxs, len(names) + 2)
        result["seed"] = round(time.monotonic() - t0, 1)
        save()
        stack_file = proj / f"Pulumi.{STACK}.yaml"
        run.pulumi("pulumi stack init", "init")
        for position, phase, on in POSITIONS:
            stack_file.write_text(yaml.safe_dump(stack_doc(ctxs, names, str(clusters.kubeconfig), str(meshca_root), phase, on), sort_keys=False))
            row: dict = {"position": position, "load": loadavg()}
            result["positions"].append(row)
            run.previews(row, position, not args.only_skip_preview)
            save()
            row["up"] = round(run.pulumi(f"pulumi up ({position})", "up", "--policy-pack", "policy",
                                         extra_env=SKIP_CHECKPOINTS if args.up_skip_checkpoints else None)[0], 1)
            if args.up_skip_checkpoints:
                row["upSkipCheckpoints"] = True
            row.update(run.resources())
            save()
        # the history at its longest: a preview with no change at the final position
        row = {"position": "old-root-removed (no change)", "load": loadavg()}
        result["positions"].append(row)
        run.previews(row, "no change", not args.only_skip_preview)
        row.update(run.resources())
        result["done"] = True
    except Exception as exc:  # record what finished
        result["error"] = " ".join(str(exc).split())[:1500]
        print(f"[bench] stopped: {exc}", file=sys.stderr)
    finally:
        save()
        if old is not None:
            old["proc"].stop()
        clusters.stop(keep=os.environ.get("MESHCA_E2E_KEEP") == "1")
        if os.environ.get("MESHCA_E2E_KEEP") != "1" and result.get("done"):
            shutil.rmtree(root, ignore_errors=True)
    return result


def markdown(runs: list[dict]) -> str:
    r0 = runs[0]
    lines = [
        SECTION, "",
        "`pulumi preview --policy-pack policy` and `pulumi up --yes --policy-pack policy` at each position of a "
        "C-cluster x N-namespace stack (one Deployment per namespace, ONE batch per phase), walked on the real engine "
        "(Pulumi CLI 3.274.1 in inline mode, pulumi-resource-kubernetes 4.25.0, the command provider stand-in) against "
        "real kube-apiservers (loopback clusters, KWOK) with the stand-ins; the preview is the one an operator runs "
        "before the `up` of that position, so it sees the history of every earlier position; the last row previews "
        "the final position again with no change (the whole history). Resources are counted in the state after the "
        "`up` (`pulumi stack export`). The second preview column is the same preview again on the same state with "
        "`PULUMI_SKIP_CHECKPOINTS=true`, as `meshca up` runs it (— where the run predates that column, or ran only that "
        "one); an `up` marked \"(skip checkpoints)\" ran with it too (`--up-skip-checkpoints`, to reach the later "
        "positions sooner), which an operator should not do. "
        f"Machine: {r0['machine']}, shared with other work (load average when the row started); one run per size.",
        "",
        "Command (writes this section; not in CI; root and `make toolchain` needed):",
        "",
        "```",
        ".venv/bin/python bench/route_scale_bench.py --clusters 3 --namespaces 300 --update-benchmarks",
        "```",
        "",
    ]
    for r in runs:
        lines += [
            f"**{r['clusters']} x {r['namespaces']}** (measured {r['date']}; `{r['command']}`)",
            "",
            "| position | preview | preview, `PULUMI_SKIP_CHECKPOINTS=true` | up | resources after | of them Commands | load avg |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for p in r["positions"]:
            cell = lambda k, unit=" s": f"{p[k]}{unit}" if k in p else "—"  # noqa: E731
            up = cell("up") + (" (skip checkpoints)" if p.get("upSkipCheckpoints") else "")
            lines.append(f"| {p['position']} | {cell('preview')} | {cell('previewSkip')} | {up} | {cell('resources', '')} | {cell('commands', '')} | {p.get('load', '')} |")
        lines.append("")
        if r.get("clusterStart") is not None:
            lines.append(f"Cluster start {r['clusterStart']} s; seeding {r.get('seed', '—')} s.")
        if not r.get("done"):
            lines.append(f"**The run did not finish**: {r.get('error', 'cut short at the deadline')}. Rows without figures did not run.")
        lines.append("")
    return "\n".join(lines)


def update_section(path: Path, section: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == SECTION), None)
    if start is None:
        path.write_text("".join(lines).rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    path.write_text("".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" if end < len(lines) else "") + "".join(lines[end:]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=3)
    ap.add_argument("--namespaces", type=int, default=300)
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "meshca-route-scale.json"))
    ap.add_argument("--from-json", action="append", default=[], help="only write the section from saved runs (repeatable: one table each)")
    ap.add_argument("--update-benchmarks", action="store_true")
    ap.add_argument("--only-skip-preview", action="store_true",
                    help="time only the preview with PULUMI_SKIP_CHECKPOINTS=true (the default preview of a big move takes minutes)")
    ap.add_argument("--up-skip-checkpoints", action="store_true",
                    help="run each up with PULUMI_SKIP_CHECKPOINTS=true (reaches the later positions sooner; "
                         "those up figures are marked and are not what an operator's up costs)")
    args = ap.parse_args(argv)
    # SIGTERM (a run stopped by hand) unwinds like Ctrl-C, so the clusters and their netns are torn
    # down by walk()'s finally instead of outliving the run
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = [json.loads(Path(p).read_text()) for p in args.from_json] if args.from_json else [walk(args)]
    result = runs[-1]
    section = markdown(runs)
    print(section)
    if args.update_benchmarks:
        update_section(ROOT / "BENCHMARKS.md", section)
    return 0 if result.get("done") else 1


if __name__ == "__main__":
    sys.exit(main())
