#!/usr/bin/env python3
"""Benchmark of ``meshca rehearse``: how time and memory grow with the simulated mesh.

Every row is one process of the real CLI (``meshca rehearse ... --json --quiet``, the canary
route), timed by ``/usr/bin/time`` (wall, user+system CPU, max RSS of the whole process), with
its JSON ``stats``: steps, pairs judged (every caller/callee pair after every step), real mTLS
handshakes (one per new pair of equivalence classes), gate checks and where the engine's time
went (gates: the real ``run_check`` over every pod; judging; handshakes).

- the target: ``--clusters 10 --namespaces 300 --workloads 3 --batch-size 75`` (under 20 s, 1 GB);
- growth curves: namespaces at 3 clusters, clusters at 300 namespaces (batches of N/4);
- the largest built-in mesh (16 x 1000 x 3) and the same mesh as a stack file (``--config``);
- 3x20x3 against the merge-base with main, in the same run: a temporary ``git worktree`` of
  that commit runs with this venv (``python -m meshca`` from its directory), both trees
  alternating, the median of ``--repeat`` runs each.

Usage: .venv/bin/python bench/rehearse_bench.py [--quick] [--repeat 3] [--update-benchmarks]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PY = sys.executable
TARGET = "10x300x3"
NAMESPACE_CURVE = ("3x20x3", "3x100x3", "3x300x3", "3x1000x3")
CLUSTER_CURVE = ("1x300x3", "3x300x3", "10x300x3", "16x300x3")
LARGEST = "16x1000x3"
QUICK = {"namespaces": ("3x20x3", "3x100x3"), "clusters": ("1x100x3", "3x100x3"), "largest": "3x100x3"}


def size_args(spec: str) -> list[str]:
    clusters, namespaces, workloads = (int(x) for x in spec.split("x"))
    batch = max(1, namespaces // 4)  # four batches per phase, like the shipped stacks
    return ["--clusters", str(clusters), "--namespaces", str(namespaces), "--workloads", str(workloads), "--batch-size", str(batch)]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(argv: list[str], cwd: Path) -> dict:
    """One process under /usr/bin/time: wall, CPU and max RSS, and its JSON document."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%e %U %S %M", *argv], cwd=cwd, capture_output=True, text=True, timeout=7200)
        wall, user, sys_, rss = tf.read().split()[-4:]
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-800:]}")
    doc = json.loads(proc.stdout)
    return {"wall": float(wall), "cpu": float(user) + float(sys_), "rss_mb": int(rss) / 1024, "rc": proc.returncode, "doc": doc}


def rehearse(args: list[str], tree: Path = ROOT) -> dict:
    return timed([PY, "-m", "meshca", "rehearse", *args, "--json", "--quiet"], tree)


def row(label: str, args: list[str], tree: Path = ROOT) -> dict:
    r = rehearse(args, tree)
    st, sm = r["doc"]["stats"], r["doc"]["summary"]
    out = {
        "label": label,
        "command": "meshca rehearse " + " ".join(args) + " --json --quiet",
        "rc": r["rc"],
        "steps": sm["steps"],
        "pairs": st["pairsJudged"],
        "failed": sm["handshakesFailed"],
        "handshakes": st["realHandshakes"],
        "gates": st["gateChecks"],
        "wall": r["wall"],
        "cpu": r["cpu"],
        "rss": r["rss_mb"],
        "engine": st["elapsedSeconds"],
        "gate_s": st["gateSeconds"],
        "judging_s": st["judgingSeconds"],
    }
    print(f"{label}: {out['steps']} steps, {out['pairs']:,} pairs, wall {out['wall']:.2f} s, cpu {out['cpu']:.2f} s, "
          f"max RSS {out['rss']:.0f} MB (gates {out['gate_s']:.2f} s, judging {out['judging_s']:.2f} s) [load {loadavg()}]", flush=True)
    return out


def stack_file(spec: str, directory: Path) -> Path:
    """The built-in mesh of ``spec`` written as a stack file with its own CA files (what a user
    of that size would have), for ``meshca rehearse --config``."""
    from meshca import pki
    from meshca.sim.builtin import builtin_config

    clusters, namespaces, _ = (int(x) for x in spec.split("x"))
    ca = directory / "ca"
    ca.mkdir(parents=True, exist_ok=True)
    root, inter = pki.citadel_ca("meshca-rehearse-bench-TEST-ONLY")
    pki.write_ca_files(ca, root, inter)
    project = directory / "project"
    project.mkdir(exist_ok=True)
    builtin_config(clusters=clusters, namespaces=namespaces, batch_size=max(1, namespaces // 4), directory=project, ca_dir=ca)
    return project / "Pulumi.builtin.yaml"


def merge_base_rows(repeat: int, ref: str | None = None) -> tuple[dict, dict, str]:
    """3x20x3 on this tree and on a temporary worktree of ``ref`` (default: the merge-base with
    main), alternating."""
    if ref is None:
        base = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    else:
        base = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    where = Path(tempfile.mkdtemp(prefix="meshca-rehearse-base-"))
    tree = where / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), base], cwd=ROOT, capture_output=True, check=True)
    args = size_args("3x20x3")
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    try:
        for _ in range(repeat):
            for name, t in (("base", tree), ("head", ROOT)):
                r = rehearse(args, t)
                runs[name].append(r)
                print(f"3x20x3 {name}: wall {r['wall']:.2f} s, cpu {r['cpu']:.2f} s, {r['rss_mb']:.0f} MB [load {loadavg()}]", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        shutil.rmtree(where, ignore_errors=True)
    a, b = runs["base"][0]["doc"], runs["head"][0]["doc"]
    same = all(a["summary"][k] == b["summary"][k] for k in ("steps", "handshakes", "handshakesFailed", "firstBrokenStep", "completed")) and a["stats"]["pairsJudged"] == b["stats"]["pairsJudged"]
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    out = {name: {"wall": med(rs, "wall"), "cpu": med(rs, "cpu"), "rss": max(r["rss_mb"] for r in rs), "walls": [r["wall"] for r in rs]} for name, rs in runs.items()}
    out["same"] = same
    out["pairs"] = b["stats"]["pairsJudged"]
    which = "the merge-base with main" if ref is None else f"`--base {ref}`"
    return out["base"], out["head"], f"{which}, {base[:7]} ({'same figures' if same else 'FIGURES DIFFER'}, {out['pairs']:,} pairs judged)"


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| mesh | steps | pairs judged | real handshakes | gate checks | wall | CPU | max RSS | gates | judging |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['steps']:,} | {r['pairs']:,} | {r['handshakes']} | {r['gates']} | {r['wall']:.2f} s | {r['cpu']:.2f} s | "
            f"{r['rss']:.0f} MB | {r['gate_s']:.2f} s | {r['judging_s']:.2f} s |"
        )
    return lines


def markdown(target: dict, ns_rows: list[dict], cl_rows: list[dict], largest: list[dict], base: dict, head: dict, base_label: str, dev: dict, command: str, loads: tuple[str, str]) -> str:
    ok = target["wall"] < 20 and target["rss"] < 1024
    lines = [
        "## meshca rehearse (simulated mesh)",
        "",
        "The canary route on the built-in mesh (`CLUSTERSxNAMESPACESxWORKLOADS`, four batches per phase), each",
        "row one process: `/usr/bin/time` gives wall, CPU (user + system) and max RSS of the whole process; the",
        "rest is the run's JSON `stats`. *Pairs judged* counts every caller/callee pair after every step (every",
        "workload calls the entry workload of every other namespace in every cluster, gateways call every",
        "namespace); they are counted by equivalence class of proxy states (`meshca/sim/pairs.py`): a step",
        "re-judges only the workloads it touched, a *real handshake* runs once per new pair of classes, and",
        "failed pairs are listed from the failing classes only. *Gates* is the real `run_check` over every pod",
        "of the cluster at every gate step, every chain verified per pod (only parsing is cached: byte-identical",
        "dumps and PEM bundles, certificate fingerprints, and the simulated source's rendering of a dump).",
        f"Machine: {os.cpu_count()} CPUs (shared with other sessions), Python {platform.python_version()}; measured {dt.date.today().isoformat()};",
        f"load average before/after: {loads[0]} / {loads[1]}. Under load the wall times are upper bounds; CPU is the run's own.",
        f"Command (writes this section): `{command}`. Each row runs",
        "`.venv/bin/python -m meshca rehearse --clusters C --namespaces N --workloads W --batch-size N/4 --json --quiet`.",
        "",
        f"Target (`{target['command']}`, under 20 s and 1 GB{'; --quick: a smaller mesh stands in' if target['label'] != TARGET else ''}): "
        f"**{target['wall']:.1f} s wall, {target['cpu']:.1f} s CPU, {target['rss']:.0f} MB** ({'holds' if ok else 'MISSED'}; "
        f"the median of {len(target.get('walls') or [0])} runs, walls {', '.join(f'{w:.1f}' for w in target.get('walls') or [target['wall']])} s); "
        f"{target['steps']:,} steps, {target['pairs']:,} pairs judged from {target['handshakes']} real handshakes.",
        "",
        f"3x20x3 against {base_label}, the same run, alternating, median of {len(head['walls'])}:",
        f"base {base['wall']:.2f} s wall ({base['cpu']:.2f} s CPU, {base['rss']:.0f} MB), this tree {head['wall']:.2f} s wall "
        f"({head['cpu']:.2f} s CPU, {head['rss']:.0f} MB): **{base['wall'] / head['wall']:.2f}x** "
        f"(walls: base {', '.join(f'{w:.2f}' for w in base['walls'])}; this tree {', '.join(f'{w:.2f}' for w in head['walls'])}).",
        "",
        "Growth with namespaces (3 clusters):",
        "",
        *table(ns_rows),
        "",
        "Growth with clusters (300 namespaces):",
        "",
        *table(cl_rows),
        "",
        "The largest built-in mesh, and the same mesh as a stack file (`meshca rehearse --config Pulumi.builtin.yaml`,",
        "written by `stack_file()` with its own CA files):",
        "",
        *table(largest),
        "",
        "Reading it: pairs judged grow with the square of the mesh per step (callers x namespaces) times the",
        "steps, but the work per step is what the step changed: a restart re-classifies the workloads of one",
        "namespace and updates the class histograms of that namespace and cluster; counting the pairs is a",
        "product of histograms over a handful of classes. What grows with the mesh is the steps themselves (the",
        "emulated commands, the plan at each route point) and the gates, which read every pod of their",
        "cluster (6 gates per cluster): both linear in namespaces x clusters.",
        f"The dev stack (`meshca rehearse --stack dev --json --quiet`): {dev['steps']} steps, {dev['pairs']:,} pairs judged,",
        f"{dev['handshakes']} real handshakes, {dev['wall']:.2f} s wall, {dev['rss']:.0f} MB.",
        "",
    ]
    return "\n".join(lines)


def update_section(path: Path, section: str) -> None:
    """Replace only the '## meshca rehearse' section (up to the next '## ' heading)."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.startswith("## meshca rehearse"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    path.write_text("".join(lines[:start]) + section.rstrip("\n") + "\n" + ("\n" if end < len(lines) else "") + "".join(lines[end:]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run of the bench itself)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tree for the merge-base comparison, and of the target (default 3)")
    ap.add_argument("--base", default=None, help="the commit 3x20x3 is compared with (default: the merge-base with main; on main itself, name the commit the change started from)")
    ap.add_argument("--namespace-curve", default=",".join(NAMESPACE_CURVE), help="sizes of the namespace growth curve")
    ap.add_argument("--cluster-curve", default=",".join(CLUSTER_CURVE), help="sizes of the cluster growth curve")
    ap.add_argument("--largest", default=LARGEST, help=f"the largest mesh, built-in and as a stack file (default {LARGEST})")
    ap.add_argument("--update-benchmarks", action="store_true", help="rewrite the '## meshca rehearse' section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    before = loadavg()
    base, head, base_label = merge_base_rows(args.repeat, args.base)
    ns_sizes = QUICK["namespaces"] if args.quick else tuple(s for s in args.namespace_curve.split(",") if s)
    cl_sizes = QUICK["clusters"] if args.quick else tuple(s for s in args.cluster_curve.split(",") if s)
    largest_size = QUICK["largest"] if args.quick else args.largest
    target_size = "3x100x3" if args.quick else TARGET
    done: dict[str, dict] = {}

    def once(spec: str) -> dict:
        if spec not in done:
            done[spec] = row(spec, size_args(spec))
        return done[spec]

    # First, the figure the issue asks for: the median (by wall) of --repeat runs, each its own process.
    tries = sorted((row(target_size, size_args(target_size)) for _ in range(max(1, args.repeat))), key=lambda r: r["wall"])
    target = done[target_size] = dict(tries[len(tries) // 2], walls=[r["wall"] for r in tries])
    ns_rows = [once(s) for s in ns_sizes]
    cl_rows = [once(s) for s in cl_sizes]
    largest = [once(largest_size)]
    with tempfile.TemporaryDirectory(prefix="meshca-rehearse-stack-") as d:
        path = stack_file(largest_size, Path(d))
        largest.append(row(f"{largest_size} (stack file)", ["--config", str(path), "--workloads", largest_size.split("x")[2]]))
    dev = row("dev stack", ["--stack", "dev"])
    after = loadavg()
    extra = [f"--{k.replace('_', '-')} {v}" for k, v in (("namespace_curve", args.namespace_curve), ("cluster_curve", args.cluster_curve), ("largest", args.largest))
             if not args.quick and v != {"namespace_curve": ",".join(NAMESPACE_CURVE), "cluster_curve": ",".join(CLUSTER_CURVE), "largest": LARGEST}[k]]
    command = " ".join([".venv/bin/python bench/rehearse_bench.py", *(["--quick"] if args.quick else []), *([f"--repeat {args.repeat}"] if args.repeat != 3 else []), *extra, "--update-benchmarks"])
    section = markdown(target, ns_rows, cl_rows, largest, base, head, base_label, dev, command, (before, after))
    if args.update_benchmarks:
        update_section(ROOT / "BENCHMARKS.md", section)
        print("BENCHMARKS.md: '## meshca rehearse' updated")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
