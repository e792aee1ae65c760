#!/usr/bin/env python3
"""Benchmark of the stack at scale (issue 13): plan, program, policy pack and guard on big stacks.

A generated stack (``C`` clusters in one project, ``N`` namespaces, one gateway, batches of
``N/4``, at most 75; made-up contexts and kubeconfigs) is written in a temporary project
directory (``Pulumi.yaml`` and ``samples/certs`` copied beside it) at the route's FINAL position
(``old-root-removed``, every namespace on REV2: the longest plan). Each part runs in its own
process under ``/usr/bin/time -v`` (max RSS) and times itself (``time.perf_counter``):

- ``plan``: the CLI, ``meshca plan --config <dir>/Pulumi.scale.yaml`` (the default view) and
  ``--all --json`` (every step since the starting point);
- ``program``: components/program.py under the SDK's mocks (tests/harness.py ``run_program``);
- ``policy``: the policy pack as the engine runs it (policy/testing.py ``analyze_engine``:
  ``Analyze`` on every resource's inputs, then ``AnalyzeStack`` on the outputs), fed by one
  program run (not counted in its time, counted in its RSS);
- ``guard``: the transition guard's check (PhaseGuardProvider.check) of the move
  ``mesh-ca-done`` -> ``old-root-removed``, with the evidence of the gates a run at
  ``mesh-ca-done`` exported (that program run is not counted in its time).

Every part is repeated (``--repeat``, default 3) and the median reported, with the load average
before and after; the 2 cores are shared with other work, so compare figures of one run.

Usage: .venv/bin/python bench/stack_scale_bench.py [--sizes 1x30,...] [--repeat 3] [--update-benchmarks]
       .venv/bin/python bench/stack_scale_bench.py --one PART CxN   (one part, one process; prints JSON)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

MESHCA = str(Path(sys.executable).with_name("meshca"))
DEFAULT_SIZES = "1x30,1x100,1x300,3x30,3x100,3x300,10x30,10x100,10x300"
PARTS = ("plan", "plan-all", "program", "policy", "guard")
SECTION = "## Stack at scale"
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"


def size(spec: str) -> tuple[int, int]:
    c, n = spec.lower().split("x")
    return int(c), int(n)


def stack_doc(clusters: int, namespaces: int, phase: str = "old-root-removed", on: str = REV2) -> dict:
    names = [f"ns-{i:04d}" for i in range(namespaces)]
    batch = max(1, min(75, namespaces // 4))
    return {
        "config": {
            "meshca:useCase": "migrate",
            "meshca:phase": phase,
            "meshca:rollback": False,
            "meshca:fleetProject": "acme-mesh-scale",
            "meshca:oldRevision": "default",
            "meshca:rev1": REV1,
            "meshca:rev2": REV2,
            "meshca:asmcliPath": "./asmcli",
            "meshca:asmcliVersion": "1.19.10-asm.9+config1",
            "meshca:batches": [names[i : i + batch] for i in range(0, namespaces, batch)],
            "meshca:clusters": [
                {
                    "name": f"scale-{i:02d}",
                    "project": "acme-mesh-scale",
                    "location": "us-central1",
                    "kubeconfig": f"kubeconfigs/scale-{i:02d}.yaml",
                    "context": f"gke_acme-mesh-scale_us-central1_scale-{i:02d}",
                }
                for i in range(clusters)
            ],
            "meshca:caFiles": {
                "caCert": "samples/certs/ca-cert.pem",
                "caKey": "samples/certs/ca-key.pem",
                "rootCert": "samples/certs/root-cert.pem",
                "certChain": "samples/certs/cert-chain.pem",
            },
            "meshca:gateways": [
                {
                    "namespace": "istio-system",
                    "deployment": "istio-ingressgateway",
                    "service": "istio-ingressgateway",
                    "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"},
                }
            ],
            "meshca:namespaces": {n: on for n in names},
        }
    }


def project(clusters: int, namespaces: int, parent: Path) -> Path:
    d = parent / f"scale-{clusters}x{namespaces}"
    d.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", d / "Pulumi.yaml")
    shutil.copytree(ROOT / "samples" / "certs", d / "samples" / "certs")
    (d / "Pulumi.scale.yaml").write_text(yaml.safe_dump(stack_doc(clusters, namespaces), sort_keys=False))
    # the position before, as the same stack (a stack's name is its file's): the guard's olds
    (d / "prev").mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", d / "prev" / "Pulumi.yaml")
    (d / "prev" / "samples").symlink_to(d / "samples")
    (d / "prev" / "Pulumi.scale.yaml").write_text(yaml.safe_dump(stack_doc(clusters, namespaces, "mesh-ca-done"), sort_keys=False))
    return d


# ----------------------------------------------------------------------------- one part


def one(part: str, spec: str) -> dict:
    clusters, namespaces = size(spec)
    with tempfile.TemporaryDirectory(prefix="meshca-scale-") as tmp:
        d = project(clusters, namespaces, Path(tmp))
        os.chdir(d)
        if part in ("plan", "plan-all"):
            argv = [MESHCA, "plan", "--config", str(d / "Pulumi.scale.yaml")] + (["--all", "--json"] if part == "plan-all" else [])
            t = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True)
            wall = time.perf_counter() - t
            assert proc.returncode == 0, proc.stderr
            out = {"seconds": wall, "bytes": len(proc.stdout)}
            if part == "plan-all":
                doc = json.loads(proc.stdout)
                out["steps"] = sum(len(c["steps"]) for c in doc["clusters"])
                out["positions"] = len(doc["positions"])
            return out
        from harness import run_program

        if part == "program":
            t = time.perf_counter()
            result = run_program("scale", stack_file=d / "Pulumi.scale.yaml")
            wall = time.perf_counter() - t
            assert result.error is None, result.error
            return {"seconds": wall, "resources": len(result.resources), "commands": len(result.commands())}
        if part == "policy":
            from policy import testing as T

            result = run_program("scale", stack_file=d / "Pulumi.scale.yaml")
            assert result.error is None, result.error
            t = time.perf_counter()
            diags = T.analyze_engine(T.servicer(), result.resources)
            wall = time.perf_counter() - t
            mandatory = T.mandatory(diags)
            assert mandatory == [], mandatory[:5]
            return {"seconds": wall, "resources": len(result.resources), "diagnostics": len(diags)}
        if part == "guard":
            from components.phase_guard import evidence_from_gates, guard_args
            from meshca.config import load_stack_file
            from meshca.providers.phase_guard import PhaseGuardProvider

            # the gates a run at mesh-ca-done exported: the evidence of the move (and, for
            # simplicity, of the olds too: the guard judges the new evidence)
            prev = run_program("scale", stack_file=d / "prev" / "Pulumi.scale.yaml")
            assert prev.error is None, prev.error
            evidence = evidence_from_gates(prev.outputs["gates"])
            olds = dict(guard_args(load_stack_file(d / "prev" / "Pulumi.scale.yaml"), evidence))
            news = dict(guard_args(load_stack_file(d / "Pulumi.scale.yaml"), evidence))
            provider = PhaseGuardProvider()
            t = time.perf_counter()
            failures = provider.check(olds, news).failures
            wall = time.perf_counter() - t
            assert not failures, [f.reason for f in failures][:3]
            return {"seconds": wall, "evidence": len(evidence)}
    raise SystemExit(f"unknown part {part}")


# ----------------------------------------------------------------------------- driver


def measure(part: str, spec: str) -> dict:
    argv = ["/usr/bin/time", "-v", sys.executable, __file__, "--one", part, spec]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{part} {spec} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    out["rss_mb"] = int(rss.group(1)) / 1024 if rss else float("nan")
    return out


def run_size(spec: str, repeat: int) -> dict:
    row: dict = {"size": spec}
    for part in PARTS:
        runs = [measure(part, spec) for _ in range(repeat)]
        row[part] = {**runs[0], "seconds": statistics.median(r["seconds"] for r in runs), "runs": [r["seconds"] for r in runs], "rss_mb": max(r["rss_mb"] for r in runs)}
    return row


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 1 else f"{x:.2f} s"


def markdown(rows: list[dict], command: str, loads: tuple[str, str], repeat: int) -> str:
    lines = [
        SECTION,
        "",
        "`meshca plan`, the program under mocks, the policy pack and the transition guard on generated stacks at",
        "the route's final position (`old-root-removed`): `C` clusters in one project, `N` namespaces, one gateway,",
        "batches of N/4 (at most 75). Each cell is the median of "
        f"{repeat} runs, each run its own process; `max RSS` is `/usr/bin/time -v`'s, the largest of the runs",
        "(policy and guard: the process includes the mocked program run that feeds them). `plan` is the whole",
        "`meshca plan --config ...` process (default view: the current phase's steps), `plan --all` the same with",
        "`--all --json` (every step since the starting point); `program` is `run_program` (tests/harness.py) alone;",
        "`policy` is `analyze_engine` (Analyze per resource + AnalyzeStack) alone; `guard` is",
        "`PhaseGuardProvider.check` of the move `mesh-ca-done` -> `old-root-removed` alone.",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; measured {dt.date.today().isoformat()};"
        f" load average before/after: {loads[0]} / {loads[1]} (shared cores: compare within one run).",
        f"Command (writes this section): `{command}`.",
        "",
        "| stack (CxN) | steps (all) | resources | plan | plan --all | program | policy | guard | max RSS plan --all / program / policy / guard |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['plan-all']['steps']:,} | {r['program']['resources']:,} | {fmt_s(r['plan']['seconds'])} | {fmt_s(r['plan-all']['seconds'])}"
            f" | {fmt_s(r['program']['seconds'])} | {fmt_s(r['policy']['seconds'])} | {fmt_s(r['guard']['seconds'])}"
            f" | {r['plan-all']['rss_mb']:.0f} / {r['program']['rss_mb']:.0f} / {r['policy']['rss_mb']:.0f} / {r['guard']['rss_mb']:.0f} MB |"
        )
    lines.append("")
    return "\n".join(lines) + "\n"


def update_section(path: Path, section: str) -> None:
    """Replace only this script's section (up to the next '## ' heading); append it if absent."""
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == SECTION), None)
    if start is None:
        text = "".join(lines).rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
        path.write_text(text)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    path.write_text("".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" if end < len(lines) else "") + "".join(lines[end:]))


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated CLUSTERSxNAMESPACES (default {DEFAULT_SIZES})")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("PART", "CxN"), help="run one part once in this process; print JSON")
    ap.add_argument("--update-benchmarks", action="store_true", help=f"rewrite the '{SECTION}' section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one)))
        return 0
    before = loadavg()
    rows = []
    for spec in [s for s in args.sizes.split(",") if s]:
        r = run_size(spec, args.repeat)
        rows.append(r)
        print(spec, " ".join(f"{p}={r[p]['seconds']:.3f}s/{r[p]['rss_mb']:.0f}MB" for p in PARTS), flush=True)
    after = loadavg()
    command = ".venv/bin/python bench/stack_scale_bench.py" + (f" --sizes {args.sizes}" if args.sizes != DEFAULT_SIZES else "") + (f" --repeat {args.repeat}" if args.repeat != 3 else "") + " --update-benchmarks"
    section = markdown(rows, command, (before, after), args.repeat)
    if args.update_benchmarks:
        update_section(ROOT / "BENCHMARKS.md", section)
        print(f"BENCHMARKS.md: '{SECTION}' updated")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
