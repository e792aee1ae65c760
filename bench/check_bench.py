#!/usr/bin/env python3
"""Benchmark of ``meshca check root-cert`` against Google's ``migrate_ca check-root-cert``.

One run, for each cluster size (default 100 and 1,000 meshed pods over 10 namespaces; every
10th pod trusts only the Citadel root), every cluster call costing ``--delay`` (200 ms):

- Google's ``migrate_ca check-root-cert``, extracted at run time from the anthos-service-mesh-packages
  git mirror into a temporary directory (never committed), run by bash with the fake
  ``kubectl``/``istioctl`` of tests/fakes/bin (which sleep ``--delay`` per call and understand its
  exact command lines) and the real gawk, jq and openssl. Where it cannot run (no gawk/jq/openssl,
  no mirror) its call sequence, transcribed with line citations (``migrate_ca_calls``), times the
  per-call time measured in the same run stands in, and the section says so.
- ``meshca check root-cert`` with the default ``kube`` source against the loopback HTTPS
  Kubernetes API server (tests/kube_api_server.py, its own process, sleeping ``--delay`` in every
  request, exec included): no process per pod.
- ``meshca check root-cert --source istioctl`` against the same fakes, and the harness floor:
  meshca's own call log replayed through the same fakes at the same concurrency by a minimal
  driver (the cluster reads side by side, then the proxy reads through a pool).

It asserts that every meshca run exits 1 naming exactly the Citadel-only pods, that every
istioctl run makes the same calls, and that migrate_ca printed one line per meshed pod; it reports
each stand-in's CPU per call (measured with no delay) and the load average.

Usage: .venv/bin/python bench/check_bench.py [--sizes 100,1000] [--delay 0.2] [--repeat 3] [--update-benchmarks]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cryptography import x509  # noqa: E402
from cryptography.x509.oid import ExtensionOID  # noqa: E402

from fakes.trust_cluster import FAKE_BIN, Cluster, fake_env, make_pki, read_log, sidecar_dump  # noqa: E402

ASM_PACKAGES = Path(os.environ.get("MESHCA_ASM_PACKAGES", "/work/.mirror/GoogleCloudPlatform+anthos-service-mesh-packages/repo"))
# The newest tag whose migrate_ca has check-root-cert; the pinned 1.19.10-asm.9+config1 moved the
# script to scripts/migration/ca-migration/ and replaced the subcommand (see pinned_tag_note()).
MIGRATE_CA_TAG = "1.10.6-asm.2+config1"
MIGRATE_CA_PATH = "scripts/ca-migration/migrate_ca"
PINNED_TAG = "1.19.10-asm.9+config1"
PINNED_PATH = "scripts/migration/ca-migration/migrate_ca"
TARGET_KUBE = {100: 30.0, 1000: 40.0}  # x faster than migrate_ca (issue 13)
TARGET_REPLAY = 1.2  # istioctl source within this factor of the replayed floor
ISTIOCTL_CONCURRENCY = 16  # meshca check's default with --source istioctl (meshca/trust/cli.py)
KUBE_CONCURRENCY = 64  # its default with --source kube


# ----------------------------------------------------------------------------- the cluster


def build_cluster(n: int) -> tuple[Cluster, set[str]]:
    """``n`` meshed pods over 10 namespaces; every 10th trusts only Citadel (expected to fail).

    Every dump is istioctl's camelCase JSON (what ``istioctl proxy-config secret -o json`` prints;
    migrate_ca's jq paths need it); the loopback API server's exec serves the same bytes."""
    p = make_pki()
    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem, "ca-cert.pem": p.citadel_ca.cert_pem})
    both = p.pem(p.citadel_root, p.meshca_root)
    bad: set[str] = set()
    for i in range(n):
        ns = f"ns-{i % 10:02d}"
        name = f"app-{i:04d}-5d8c7b9f4-x{i % 7}k{i % 3}z"
        citadel_only = i % 10 == 3
        roots = p.citadel_root.cert_pem if citadel_only else both
        c.add_pod(ns, name, dump=sidecar_dump(p.citadel_chain(ns, f"sa-{i % 5}"), roots))
        if citadel_only:
            bad.add(f"{ns}/{name}")
    return c, bad


def _first_cert(pem: bytes) -> x509.Certificate:
    start = pem.index(b"-----BEGIN CERTIFICATE-----")
    end = pem.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")
    return x509.load_pem_x509_certificate(pem[start:end])


def secret_table(dump: bytes) -> bytes:
    """What ``istioctl proxy-config secret POD`` prints for a camelCase dump: istio 1.10.6
    istioctl/pkg/writer/compare/sds/writer.go:65 (columns) and :69-82 (a tabwriter with
    minwidth 0, padding 5, spaces; one row per secret), util.go:159-166 (ACTIVE rows),
    :189-195 (the chain, else the trusted CA bytes) and :205-226 (the FIRST certificate's decimal
    serial, RFC 3339 times, ``CA`` or ``Cert Chain``)."""
    rows = [["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"]]
    for entry in json.loads(dump)["dynamicActiveSecrets"]:
        secret = entry["secret"]
        b64 = (secret.get("tlsCertificate") or {}).get("certificateChain", {}).get("inlineBytes") or (secret.get("validationContext") or {}).get(
            "trustedCa", {}
        ).get("inlineBytes")
        cert = _first_cert(base64.b64decode(b64))
        try:
            is_ca = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        rows.append([entry["name"], "CA" if is_ca else "Cert Chain", "ACTIVE", "true", str(cert.serial_number), cert.not_valid_after_utc.strftime(fmt), cert.not_valid_before_utc.strftime(fmt)])
    widths = [max(len(r[i]) for r in rows) + 5 for i in range(len(rows[0]) - 1)]
    return "".join("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[-1] + "\n" for r in rows).encode()


def write_cluster(c: Cluster, root: Path) -> Path:
    root = c.write(root)
    for (ns, name), dump in c.dumps.items():
        (root / "dumps" / ns / f"{name}.table").write_bytes(secret_table(dump))
    return root


# ----------------------------------------------------------------------------- processes


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def python_env(base: dict) -> dict:
    """meshca as installed: its bytecode cached (this shell sets PYTHONDONTWRITEBYTECODE, which
    would recompile every module on every start), in a private cache directory."""
    env = dict(base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "meshca-check-bench-pycache")
    return env


def timed(argv: list[str], env: dict, cwd: Path) -> dict:
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL)
    return {"wall": time.perf_counter() - t0, "cpu": children_cpu() - cpu0, "exit": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def load() -> float:
    return os.getloadavg()[0]


# ----------------------------------------------------------------------------- migrate_ca


def extract_migrate_ca(tmp: Path) -> tuple[Path | None, str]:
    """migrate_ca at MIGRATE_CA_TAG into tmp (never into the repo); (None, why) when impossible."""
    if not ASM_PACKAGES.exists():
        return None, f"no anthos-service-mesh-packages mirror at {ASM_PACKAGES}"
    proc = subprocess.run(["git", "--git-dir", str(ASM_PACKAGES), "show", f"{MIGRATE_CA_TAG}:{MIGRATE_CA_PATH}"], capture_output=True)
    if proc.returncode != 0:
        return None, f"git show {MIGRATE_CA_TAG}:{MIGRATE_CA_PATH} failed: {proc.stderr.decode().strip()[:200]}"
    path = tmp / "migrate_ca"
    path.write_bytes(proc.stdout)
    path.chmod(0o755)
    missing = [t for t in ("bash", "jq", "openssl", "awk", "grep", "sed", "base64") if shutil.which(t) is None]
    if not missing and subprocess.run(["awk", "--help"], capture_output=True).returncode != 0:
        missing.append("gawk (awk --help fails: migrate_ca:7 refuses mawk)")
    if missing:
        return None, "missing " + ", ".join(missing)
    return path, ""


def pinned_tag_note() -> str:
    """What the pinned tag's migrate_ca offers instead (read from the mirror in this run)."""
    proc = subprocess.run(["git", "--git-dir", str(ASM_PACKAGES), "show", f"{PINNED_TAG}:{PINNED_PATH}"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"{PINNED_TAG} could not be read"
    text = proc.stdout
    subs = re.findall(r"^    ([a-z-]+)\)$", text, flags=re.M)
    has = "check-root-cert" in subs
    return f"{PINNED_TAG}:{PINNED_PATH} {'has' if has else 'has no'} `check-root-cert` (its subcommands: {', '.join(subs)})"


def migrate_ca_calls(c: Cluster) -> list[tuple[str, ...]]:
    """migrate_ca check-root-cert's cluster calls, transcribed (1.10.6-asm.2+config1
    scripts/ca-migration/migrate_ca): istioctl (:17, no cluster call) and kubectl version (:27);
    kubectl get ns (:174); per namespace but kube-system/-public/-node-lease (:177) one pod list
    (:155); per pod its containers (:158); per pod with istio-proxy the secret table (:110); per
    first-root serial not seen before the JSON dump (:115-116, :43)."""
    calls: list[tuple[str, ...]] = [("istioctl",), ("kubectl", "version"), ("kubectl", "get", "ns", "-o", "jsonpath={.items..metadata.name}")]
    seen: set[str] = set()
    for ns in c.namespaces:
        if ns in ("kube-system", "kube-public", "kube-node-lease"):
            continue
        calls.append(("kubectl", "get", "pod", "-o", "jsonpath={.items..metadata.name}", "-n", ns))
        for pod in [p for p in c.pods if p["metadata"]["namespace"] == ns]:
            name = pod["metadata"]["name"]
            calls.append(("kubectl", "get", "pod", name, "-n", ns, "-o", "jsonpath=={.spec.containers.*.name}"))
            if not any(k.get("name") == "istio-proxy" for k in pod["spec"].get("containers") or []):
                continue
            calls.append(("istioctl", "pc", "secret", name, "-n", ns))
            serial = str(_first_cert(base64.b64decode(_rootca_b64(c.dumps[(ns, name)]))).serial_number)
            if serial not in seen:
                seen.add(serial)
                calls.append(("istioctl", "pc", "secret", name, "-n", ns, "-o", "json"))
    return calls


def _rootca_b64(dump: bytes) -> str:
    for entry in json.loads(dump)["dynamicActiveSecrets"]:
        if entry["name"] == "ROOTCA":
            return entry["secret"]["validationContext"]["trustedCa"]["inlineBytes"]
    raise ValueError("no ROOTCA")


def call_shape(call: tuple[str, ...]) -> str:
    """A call with its pod and namespace names blanked (for per-shape timing)."""
    tool, *argv = call
    out, skip = [], False
    for i, a in enumerate(argv):
        if a == "-n" and i + 1 < len(argv):
            out += ["-n", "NS"]
            skip = True
            continue
        if skip:
            skip = False
            continue
        out.append("POD" if re.match(r"app-\d{4}-", a) else a)
    return " ".join([tool, *out])


def measure_call(call: tuple[str, ...], env: dict, cwd: Path, n: int) -> dict:
    """Mean wall and CPU of one fake call, run n times one after another."""
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    for _ in range(n):
        proc = subprocess.run(list(call), env=env, capture_output=True, cwd=cwd, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, (call, proc.stderr)
    return {"wall": (time.perf_counter() - t0) / n, "cpu": (children_cpu() - cpu0) / n}


def run_migrate_ca(script: Path, cluster_dir: Path, log: Path, delay: float, tmp: Path, bad: set[str], n: int) -> dict:
    log.unlink(missing_ok=True)
    env = fake_env(cluster_dir, log, delay)
    before = load()
    r = timed(["bash", str(script), "check-root-cert"], env, tmp)
    lines = [l for l in r["stdout"].splitlines() if l.startswith(" - ")]
    verdicts = {}
    for line in lines:
        m = re.match(r" - (\S+)\.(\S+) trusts \[(.*)\]$", line)
        if m:
            verdicts[f"{m.group(2)}/{m.group(1)}"] = m.group(3).split()
    assert r["exit"] == 0, r["stderr"][-500:]
    assert len(verdicts) == n, (len(verdicts), r["stdout"][-500:])
    claimed_both_bad = sum(1 for pod in bad if "MESHCA" in verdicts.get(pod, []))
    return {**r, "calls": read_log(log), "verdicts": verdicts, "claimed_both_bad": claimed_both_bad, "load": (before, load())}


# ----------------------------------------------------------------------------- meshca


def start_api_server(cluster_dir: Path, delay: float, tmp: Path) -> tuple[subprocess.Popen, str, Path]:
    info = tmp / f"api-{cluster_dir.name}.json"
    info.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kube_api_server.py"), "--cluster", str(cluster_dir), "--delay", str(delay), "--info", str(info)])
    deadline = time.monotonic() + 60
    while not info.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the loopback API server did not start")
        time.sleep(0.05)
    return proc, json.loads(info.read_text())["kubeconfig"], info


def stop_api_server(proc: subprocess.Popen, info: Path) -> dict:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    return json.loads(info.with_suffix(".stats.json").read_text())


def meshca_argv(meshca_pem: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "meshca", "check", "root-cert", "--meshca-root", str(meshca_pem), "--json", *extra]


def judged(run: dict, bad: set[str]) -> None:
    doc = json.loads(run["stdout"])
    assert "pods" in doc, (run["exit"], run["stderr"][-800:])
    failing = {f"{e['namespace']}/{e['pod']}" for e in doc["pods"] if e["status"] != "ok"}
    assert run["exit"] == 1, run["stderr"][-500:]
    assert failing == bad, (len(failing), len(bad))
    run["stats"] = doc["stats"]


REPLAY = r"""
import json, shutil, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
calls = json.load(open(sys.argv[1])); conc = int(sys.argv[2])
exe = {t: shutil.which(t) for t in {c[0] for c in calls}}
def run(c):
    subprocess.run([exe[c[0]], *c[1:]], capture_output=True, stdin=subprocess.DEVNULL)
with ThreadPoolExecutor(max_workers=conc) as pool:
    list(pool.map(run, [c for c in calls if c[0] == "kubectl"]))
    list(pool.map(run, [c for c in calls if c[0] != "kubectl"]))
"""


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


# ----------------------------------------------------------------------------- one size


def bench_size(n: int, delay: float, tmp: Path, repeat: int, script: Path | None, warm: bool, before: Path | None = None) -> dict:
    cluster, bad = build_cluster(n)
    cluster_dir = write_cluster(cluster, tmp / f"cluster-{n}")
    meshca_pem = tmp / "meshca-root.pem"
    meshca_pem.write_bytes(make_pki().meshca_root.cert_pem)
    out: dict = {"pods": n, "delay": delay, "failing": len(bad)}

    # Google's migrate_ca, one run (it is sequential: ~all of its time is sleeping in the fakes)
    transcribed = migrate_ca_calls(cluster)
    out["migrate_ca_transcribed_calls"] = len(transcribed)
    if script is not None:
        mc = run_migrate_ca(script, cluster_dir, tmp / f"migrate-ca-{n}.log", delay, tmp, bad, n)
        out["migrate_ca"] = {k: mc[k] for k in ("wall", "cpu", "claimed_both_bad", "load")}
        out["migrate_ca"]["calls"] = len(mc["calls"])
        # the transcription must be exactly what it did
        out["transcription_matches"] = sorted(mc["calls"]) == sorted(transcribed)

    # per-call wall (with the delay) and CPU (without) of every fake call shape either tool makes
    env_delay = fake_env(cluster_dir, tmp / "shape.log", delay)
    env_free = fake_env(cluster_dir, tmp / "shape.log", 0.0)
    shapes: dict[str, tuple[str, ...]] = {}
    for call in transcribed:
        shapes.setdefault(call_shape(call), call)
    sample_ns, sample_pod = sorted(bad)[0].split("/")
    for call in (
        ("kubectl", "get", "namespaces", "-o", "json"),
        ("kubectl", "get", "pods", "-A", "-o", "json"),
        ("kubectl", "get", "secret", "cacerts", "-n", "istio-system", "-o", "json"),
        ("istioctl", "proxy-config", "secret", sample_pod, "-n", sample_ns, "-o", "json"),
    ):
        shapes.setdefault(call_shape(call), call)
    per_call = {}
    for shape, call in shapes.items():
        per_call[shape] = {"wall": measure_call(call, env_delay, tmp, 3)["wall"], "cpu": measure_call(call, env_free, tmp, 10)["cpu"]}
    out["per_call"] = per_call
    out["migrate_ca_estimate"] = sum(per_call[call_shape(c)]["wall"] for c in transcribed)

    # meshca, default kube source, against the loopback API server in its own process
    before_tree = before
    server, kubeconfig, info = start_api_server(cluster_dir, delay, tmp)
    try:
        env = python_env(os.environ)
        if warm:  # bytecode cache and page cache, untimed
            timed(meshca_argv(meshca_pem, "--kubeconfig", kubeconfig), env, ROOT)
        before_load = load()
        kube_runs = [timed(meshca_argv(meshca_pem, "--kubeconfig", kubeconfig), env, ROOT) for _ in range(repeat)]
        out["kube_load"] = (before_load, load())
        if before_tree is not None:  # the same check by the code before this change (its own defaults)
            if warm:
                timed(meshca_argv(meshca_pem, "--kubeconfig", kubeconfig), env, before_tree)
            old = [timed(meshca_argv(meshca_pem, "--kubeconfig", kubeconfig), env, before_tree) for _ in range(repeat)]
            for r in old:
                judged(r, bad)
            m = median_run(old)
            out["kube_before"] = {"wall": m["wall"], "walls": [r["wall"] for r in old], "cpu": m["cpu"]}
    finally:
        api_stats = stop_api_server(server, info)
    for r in kube_runs:
        judged(r, bad)
    kube = median_run(kube_runs)
    out["kube"] = {"wall": kube["wall"], "walls": [r["wall"] for r in kube_runs], "cpu": kube["cpu"], "stats": kube["stats"]}
    out["api_server"] = {"cpu_per_request_ms": 1000 * api_stats["cpu"] / max(1, api_stats["requests"]), "requests": api_stats["requests"], "execs": api_stats["execs"]}

    # meshca --source istioctl through the fakes, then its own call log replayed
    env = python_env(fake_env(cluster_dir, tmp / f"istioctl-{n}.log", delay))
    env["KUBECONFIG"] = str(ROOT / "tests" / "fakes" / "kubeconfig.yaml")  # meshca refuses a missing kubeconfig (MCA1001)
    before = load()
    ist_runs = []
    for _ in range(repeat):
        Path(env["MESHCA_FAKE_LOG"]).unlink(missing_ok=True)
        r = timed(meshca_argv(meshca_pem, "--source", "istioctl"), env, ROOT)
        judged(r, bad)
        r["calls"] = read_log(Path(env["MESHCA_FAKE_LOG"]))
        ist_runs.append(r)
    assert all(sorted(r["calls"]) == sorted(ist_runs[0]["calls"]) for r in ist_runs), "runs made different calls"
    ist = median_run(ist_runs)
    calls_file = tmp / f"replay-{n}.json"
    calls_file.write_text(json.dumps([list(c) for c in ist["calls"]]))
    replay_env = fake_env(cluster_dir, tmp / f"replay-{n}.log", delay)
    replays = []
    for _ in range(repeat):
        Path(replay_env["MESHCA_FAKE_LOG"]).unlink(missing_ok=True)
        r = timed([sys.executable, "-S", "-c", REPLAY, str(calls_file), str(ISTIOCTL_CONCURRENCY)], replay_env, ROOT)
        assert r["exit"] == 0, r["stderr"]
        assert sorted(read_log(Path(replay_env["MESHCA_FAKE_LOG"]))) == sorted(ist["calls"]), "the replay made other calls"
        replays.append(r)
    rep = median_run(replays)
    out["istioctl_load"] = (before, load())
    out["istioctl"] = {"wall": ist["wall"], "walls": [r["wall"] for r in ist_runs], "cpu": ist["cpu"], "calls": len(ist["calls"])}
    out["replay"] = {"wall": rep["wall"], "walls": [r["wall"] for r in replays], "cpu": rep["cpu"]}
    base = out["migrate_ca"]["wall"] if "migrate_ca" in out else out["migrate_ca_estimate"]
    out["kube_speedup"] = base / out["kube"]["wall"]
    out["istioctl_speedup"] = base / out["istioctl"]["wall"]
    out["istioctl_vs_replay"] = out["istioctl"]["wall"] / out["replay"]["wall"]
    return out


# ----------------------------------------------------------------------------- report


def markdown(results: list[dict], command: str, how: str, pinned: str) -> str:
    d = results[0]["delay"]
    ran = all("migrate_ca" in r for r in results)
    lines = [
        "## meshca check (trust gates)",
        "",
        f"`meshca check root-cert` against Google's `migrate_ca check-root-cert`, every cluster call or API request costing {d * 1000:.0f} ms,",
        "on a generated cluster (10 namespaces; every 10th pod trusts only the Citadel root), all in one run of the command below.",
        f"migrate_ca: {how}. {pinned}; the newest tag that has it is {MIGRATE_CA_TAG}, whose",
        "`check-root-cert` is what the guide's phase A gate quotes (docs/route.md). It is run by bash with the real gawk, jq and openssl and the",
        f"fake `kubectl`/`istioctl` (tests/fakes/bin) sleeping {d * 1000:.0f} ms per call; its call count is checked against the transcription",
        "(`migrate_ca_calls` in the bench, with line citations), whose per-call sum is the estimate column.",
        f"meshca (kube) is the default source with its default {KUBE_CONCURRENCY} exec streams against the loopback HTTPS API server",
        f"(tests/kube_api_server.py in its own process, sleeping {d * 1000:.0f} ms in every request, exec included): no process per pod.",
        f"meshca (istioctl) is `--source istioctl` at its default {ISTIOCTL_CONCURRENCY} against the same fakes as migrate_ca; the floor is meshca's",
        "own call log of that run replayed through the same fakes at the same concurrency by a minimal driver (kubectl reads side by",
        "side, then the proxy reads through the pool; no parsing). meshca columns are medians of repeated runs (all runs listed).",
        "Every meshca run exits 1 naming exactly the Citadel-only pods; every istioctl run and replay makes the same calls.",
        f"Machine: {os.cpu_count()} CPUs shared with other jobs (load averages below), Python {platform.python_version()}; measured {dt.date.today().isoformat()}.",
        "",
        "| pods | migrate_ca (calls) | estimate from the transcription | meshca (kube) | **x faster** | target | meshca (istioctl) | x faster | replayed floor | istioctl / floor | target |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mc = f"{r['migrate_ca']['wall']:.1f} s ({r['migrate_ca']['calls']})" if "migrate_ca" in r else "not run"
        kube_runs = ", ".join(f"{w:.2f}" for w in r["kube"]["walls"])
        ist_runs = ", ".join(f"{w:.2f}" for w in r["istioctl"]["walls"])
        rep_runs = ", ".join(f"{w:.2f}" for w in r["replay"]["walls"])
        lines.append(
            f"| {r['pods']} | {mc} | {r['migrate_ca_estimate']:.1f} s ({r['migrate_ca_transcribed_calls']}) | {r['kube']['wall']:.2f} s ({kube_runs}) | "
            f"**{r['kube_speedup']:.1f}x** | {TARGET_KUBE.get(r['pods'], 0):g}x | {r['istioctl']['wall']:.2f} s ({ist_runs}) | {r['istioctl_speedup']:.1f}x | "
            f"{r['replay']['wall']:.2f} s ({rep_runs}) | **{r['istioctl_vs_replay']:.2f}** | {TARGET_REPLAY:g} |"
        )
    lines += ["", "| pods | meshca CPU (kube) | meshca + fakes CPU (istioctl) | replay CPU (fakes) | migrate_ca CPU (bash, jq, openssl, fakes) | load avg: migrate_ca, kube, istioctl runs |", "|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        mcpu = f"{r['migrate_ca']['cpu']:.1f} s" if "migrate_ca" in r else "-"
        ml = "{:.1f}/{:.1f}".format(*r["migrate_ca"]["load"]) if "migrate_ca" in r else "-"
        lines.append(
            f"| {r['pods']} | {r['kube']['cpu']:.2f} s | {r['istioctl']['cpu']:.2f} s | {r['replay']['cpu']:.2f} s | {mcpu} | "
            f"{ml}, {r['kube_load'][0]:.1f}/{r['kube_load'][1]:.1f}, {r['istioctl_load'][0]:.1f}/{r['istioctl_load'][1]:.1f} |"
        )
    if all("kube_before" in r for r in results):
        lines += [
            "",
            "The kube source before and after this change (same run, same server; before = the merge-base's code with its defaults:",
            "the generated CoreV1Api imported, the kubeconfig's token hook run on every request, every command's parser built, 16 streams):",
            "",
            "| pods | before: wall (runs), CPU | x faster than migrate_ca | after: wall, CPU | x faster than migrate_ca |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            b = r["kube_before"]
            base = r["migrate_ca"]["wall"] if "migrate_ca" in r else r["migrate_ca_estimate"]
            lines.append(
                f"| {r['pods']} | {b['wall']:.2f} s ({', '.join(f'{w:.2f}' for w in b['walls'])}), {b['cpu']:.2f} s | {base / b['wall']:.1f}x | "
                f"{r['kube']['wall']:.2f} s, {r['kube']['cpu']:.2f} s | {r['kube_speedup']:.1f}x |"
            )
    big = results[-1]
    lines += [
        "",
        f"Stand-ins' cost per call ({big['pods']}-pod cluster): CPU measured with no delay (10 calls one after another), wall with the {d * 1000:.0f} ms delay (3 calls).",
        "",
        "| stand-in call | CPU per call | wall per call |",
        "|---|---:|---:|",
    ]
    for shape, v in sorted(big["per_call"].items()):
        lines.append(f"| `{shape}` | {v['cpu'] * 1000:.1f} ms | {v['wall'] * 1000:.0f} ms |")
    lines.append(
        f"| loopback API server, per request (exec included), over the kube runs | {big['api_server']['cpu_per_request_ms']:.1f} ms | delay + TLS + serving |"
    )
    bad_claims = [f"{r['migrate_ca']['claimed_both_bad']} of {r['failing']}" for r in results if "migrate_ca" in r]
    lines += [
        "",
        "Reading it: migrate_ca makes two calls per pod one after another (the pod's containers, then the secret table), so its",
        "time is about 2 x pods x delay plus each fake's start; meshca (kube) lists once, then runs its exec streams side by side,",
        "so it is a few rounds of the delay plus its own start and CPU (with a token kubeconfig, as here, it does not import the",
        "`kubernetes` package: meshca/trust/kube_direct.py). Under the machine's other load (last column) every CPU-bound part",
        "stretches, meshca's start most; migrate_ca is mostly asleep. migrate_ca also gets the answer wrong here: it caches",
        "verdicts by the serial of the FIRST root in a",
        "bundle (migrate_ca:110-118), every bundle here starts with the Citadel root, so it printed `trusts [CITADEL MESHCA]` for"
        + (f" {', '.join(bad_claims)} Citadel-only pods." if bad_claims else " the Citadel-only pods."),
        "",
        "Command (writes this section):",
        "",
        "```",
        command,
        "```",
        "",
        "The runs it makes, e.g. for the kube source and for migrate_ca:",
        "",
        "```",
        "python tests/kube_api_server.py --cluster <dir> --delay 0.2 --info <file>   # then:",
        ".venv/bin/python -m meshca check root-cert --meshca-root <stand-in Mesh CA root> --json --kubeconfig <its kubeconfig>",
        "MESHCA_FAKE_CLUSTER=<dir> MESHCA_FAKE_LOG=<log> MESHCA_FAKE_DELAY=0.2 PATH=tests/fakes/bin:$PATH bash <tmp>/migrate_ca check-root-cert",
        "```",
        "",
    ]
    return "\n".join(lines)


def update_section(path: Path, section: str) -> None:
    """Replace only the '## meshca check' section (up to the next '## ' heading)."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.startswith("## meshca check"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    path.write_text("".join(lines[:start]) + section.rstrip("\n") + "\n\n" + "".join(lines[end:]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000", help="comma-separated pod counts (default 100,1000)")
    ap.add_argument("--delay", type=float, default=0.2, help="seconds every fake call and API request sleeps (default 0.2)")
    ap.add_argument("--repeat", type=int, default=3, help="meshca runs per size and source; the median is reported (default 3)")
    ap.add_argument("--no-migrate-ca", action="store_true", help="do not run migrate_ca; use its transcribed calls x the measured per-call time")
    ap.add_argument("--before", type=Path, help="a checkout of the code before a change (e.g. a worktree of the merge-base): its kube source is measured too")
    ap.add_argument("--update-benchmarks", action="store_true", help="rewrite the '## meshca check' section of BENCHMARKS.md")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = []
    with tempfile.TemporaryDirectory(prefix="meshca-check-bench-") as tmp_name:
        tmp = Path(tmp_name)
        script, why = (None, "--no-migrate-ca") if args.no_migrate_ca else extract_migrate_ca(tmp)
        how = (
            f"run from {MIGRATE_CA_TAG}:{MIGRATE_CA_PATH}, extracted at run time from the mirror into a temporary directory"
            if script
            else f"NOT run ({why}); its time is the transcribed call sequence x the per-call time measured in this run"
        )
        pinned = pinned_tag_note()
        for i, n in enumerate(sizes):
            r = bench_size(n, args.delay, tmp, args.repeat, script, warm=i == 0, before=args.before)
            results.append(r)
            mc = f"migrate_ca {r['migrate_ca']['wall']:.1f}s ({r['migrate_ca']['calls']} calls, transcription matches: {r['transcription_matches']})" if "migrate_ca" in r else "migrate_ca not run"
            print(
                f"{n} pods: {mc}, estimate {r['migrate_ca_estimate']:.1f}s; kube {r['kube']['wall']:.2f}s {r['kube']['walls']} = {r['kube_speedup']:.1f}x; "
                f"istioctl {r['istioctl']['wall']:.2f}s {r['istioctl']['walls']} = {r['istioctl_speedup']:.1f}x; replay {r['replay']['wall']:.2f}s {r['replay']['walls']}; "
                f"istioctl/replay {r['istioctl_vs_replay']:.2f}; before {r.get('kube_before')}; api server {r['api_server']}; loads {r.get('migrate_ca', {}).get('load')} {r['kube_load']} {r['istioctl_load']}",
                flush=True,
            )
        if script is not None:
            serial = str(make_pki().citadel_root.cert.serial_number)
            Path("/tmp", f"{serial}.pem").unlink(missing_ok=True)  # migrate_ca:54 writes /tmp/SERIAL.pem
    command = ".venv/bin/python bench/check_bench.py " + " ".join(
        (["--sizes", args.sizes] if args.sizes != "100,1000" else [])
        + (["--delay", f"{args.delay:g}"] if args.delay != 0.2 else [])
        + (["--repeat", str(args.repeat)] if args.repeat != 3 else [])
        + (["--no-migrate-ca"] if args.no_migrate_ca else [])
        + (["--before", "<worktree of the merge-base>"] if args.before else [])
        + ["--update-benchmarks"]
    )
    section = markdown(results, command, how, pinned)
    if args.update_benchmarks:
        update_section(ROOT / "BENCHMARKS.md", section)
    else:
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
