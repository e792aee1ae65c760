"""The one kit of the e2e route modules: test_smoke.py, test_route_history.py, test_route_rollback.py,
test_route_csm116.py, test_route_staging.py, test_gates_many_clusters.py (and the operator modules through
test_smoke's names).

TEST CODE, not a test module. The set-up README's shell gives (the project's .venv, the toolchain, a file
backend, the stand-ins on PATH; the program under the real Pulumi CLI through testinfra/pulumi_inline.py
when there is no Python language host), for a project whose stacks name one or several kubeconfig
contexts: ONE ``Clusters`` of all of them per module (testinfra/cluster.py, one kubeconfig), one project
copy, one invocation log (``$MESHCA_STANDIN_LOG``: every Command the command provider stand-in ran, every
asmcli and istioctl run, every pod the injector stand-in reviewed; the dev route adds every kubectl call).

Nothing here knows what a position should look like: each module holds its literal table (transcribed
from procedure.md) and ``assert_position`` / ``table_problems`` only compare the live cluster with a row.
The single-cluster shorthands of the smoke (``smoke.kubectl_json(env, ...)`` and the like, on
``DEV_CONTEXT``) call these.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from testinfra.cluster import Clusters, LaunchError, start as start_proc, wait_for

REPO = Path(__file__).resolve().parents[2]


class ProgramDefect(AssertionError):
    """A defect of the program (issue 9), not of the test or the infrastructure."""


class ProbeCrashHidesRefusal(ProgramDefect):
    """The preview-time istioctl probe (components/cluster_migration.py:74, ``command.local.run_output``
    of ``istioctl version --remote=false --short``) raises a Python exception when the istioctl does not
    exist: with ``meshca:istioctlPath`` empty it is REV1's asmcli output dir (a local leftover of A1,
    issue 9 finding 13), so a stack that never ran A1 gets a traceback ``invoke of command:local:run
    failed ... exit status 127`` instead of its guard line (README "Every problem is one line")."""


def tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------------------------------------
# Running things (each command timed; per-position figures)
# ---------------------------------------------------------------------------------------------
def run_logged(what: str, argv: list[str], *, env: dict, cwd: Path, logdir: Path, timings: list, timeout: float = 900,
               check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ARGV (timed into TIMINGS, its output kept in LOGDIR, a line printed); CHECK: exit 0 or AssertionError."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"{what}: `{' '.join(argv)}` did not finish in {timeout:.0f} s; output tail:\n{tail(out)}") from None
    dt = time.monotonic() - t0
    timings.append((what, dt))
    safe = what.replace(" ", "_").replace("/", "_")[:120]
    (logdir / f"{len(timings):03d}-{safe}.log").write_text(
        f"$ {' '.join(argv)}\nexit {proc.returncode} in {dt:.1f}s\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    print(f"[e2e] {what}: {dt:.1f} s (exit {proc.returncode})", file=sys.stderr, flush=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{what}: `{' '.join(argv)}` exited {proc.returncode} after {dt:.1f} s\n"
                             f"--- stdout tail:\n{tail(proc.stdout)}\n--- stderr tail:\n{tail(proc.stderr)}")
    return proc


def run(route: dict, what: str, argv: list[str], *, check: bool = True, stdin: str | None = None,
        timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_logged(what, argv, env=env or route["env"], cwd=route["dir"], logdir=route["logs"], timings=route["timings"],
                      timeout=timeout, check=check, stdin=stdin)


def pulumi_argv(route: dict, stack: str, args: tuple[str, ...]) -> list[str]:
    """``pulumi ARGS --stack STACK`` for the real CLI, or the same through testinfra/pulumi_inline.py (inline mode)."""
    if route["mode"] == "cli":
        return ["pulumi", *args, "--stack", stack, "--non-interactive", "--color", "never"]
    sub = {"stack": "init"}.get(args[0], args[0])
    rest = [a for a in args[1:] if a not in ("init", stack, "--yes")]
    return [str(route["dir"] / ".venv" / "bin" / "python"), "-m", "testinfra.pulumi_inline", "--stack", stack, sub, *rest]


def failure(what: str, proc: subprocess.CompletedProcess) -> str:
    """A failed pulumi run's error and MCA lines and its output tails."""
    out = proc.stdout + proc.stderr
    errors = list(dict.fromkeys(line.strip() for line in out.splitlines() if "error:" in line or "MCA" in line))
    return (f"{what} exited {proc.returncode}; its errors:\n  " + "\n  ".join(errors[:20])
            + f"\n--- stdout tail:\n{tail(proc.stdout, 40)}\n--- stderr tail:\n{tail(proc.stderr, 20)}")


# README "Running a real migration": the preview runs with PULUMI_SKIP_CHECKPOINTS=true (meshca/pulumi_run.py)
PREVIEW_ENV = {"PULUMI_SKIP_CHECKPOINTS": "true"}


def pulumi(route: dict, stack: str, what: str, *args: str, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """``pulumi ARGS --stack STACK`` with the real CLI (inline mode: testinfra/pulumi_inline.py)."""
    env = {**route["env"], **extra_env} if extra_env else None
    return run(route, f"{what} [{stack}, {route['mode']}]", pulumi_argv(route, stack, args), check=check, env=env)


def stack_outputs(route: dict, stack: str) -> tuple[dict, str]:
    """``pulumi stack output --json --stack STACK``: the real CLI (reads the state; no program runs)."""
    proc = run(route, f"pulumi stack output --json [{stack}]",
               ["pulumi", "stack", "output", "--json", "--stack", stack, "--non-interactive", "--color", "never"])
    return json.loads(proc.stdout), proc.stdout


def state_resources(route: dict, stack: str) -> dict:
    """What the stack's state holds that a step can change (``pulumi stack export``, the real CLI): every
    custom resource but providers and StackReferences (reads), with its outputs, and the stack's
    outputs. Components (grouping only, no side effect) are left out: a refused run records the
    position's components (see the staging module), never a step."""
    proc = run(route, f"pulumi stack export [{stack}]", ["pulumi", "stack", "export", "--stack", stack, "--non-interactive"])
    doc = json.loads(proc.stdout)
    out = {}
    for r in (doc.get("deployment") or {}).get("resources") or []:
        typ = r["urn"].split("::")[2].rsplit("$", 1)[-1]
        if typ == "pulumi:pulumi:Stack":
            out[r["urn"]] = r.get("outputs")
        elif r.get("custom") and not typ.startswith("pulumi:providers:") and typ != "pulumi:pulumi:StackReference":
            # a dynamic resource's __provider is a secret: its ciphertext changes at every save
            out[r["urn"]] = {k: v for k, v in (r.get("outputs") or {}).items() if k != "__provider"}
    return out


def preview_and_up(route: dict, stack: str, position: str) -> dict:
    """preview --policy-pack policy (as README runs it: PREVIEW_ENV), then up --yes --policy-pack policy;
    returns the two wall times."""
    times = {}
    for step, args in (("preview", ["preview", "--policy-pack", "policy"]), ("up", ["up", "--yes", "--policy-pack", "policy"])):
        t0 = time.monotonic()
        proc = pulumi(route, stack, f"pulumi {step} ({position})", *args, check=False,
                      extra_env=PREVIEW_ENV if step == "preview" else None)
        times[step] = time.monotonic() - t0
        if proc.returncode != 0:
            raise AssertionError(failure(f"pulumi {step} of {stack} at {position}", proc))
    route["positions"].append((stack, position, times["preview"], times["up"]))
    return times


# ---------------------------------------------------------------------------------------------
# The module's clusters, project and environment
# ---------------------------------------------------------------------------------------------
def copy_project(dest: Path) -> None:
    """The project's tracked files, the repo's .venv linked in."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if not src.exists():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    (dest / ".venv").symlink_to(REPO / ".venv")


def project_env(cluster_env: dict, toolchain, proj: Path, root: Path) -> dict:
    """The shell README's set-up gives (the project's .venv and toolchain/env.sh) over the clusters'
    environment, with a file backend under ``root/state``, and nothing else."""
    env = dict(cluster_env)
    venv = proj / ".venv"
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(toolchain.bin), str(venv / "bin"), env["PATH"]])
    for var in ("PYTHONHOME", "PYTHONPATH"):  # nothing of this pytest process leaks into the user's shell
        env.pop(var, None)
    env.update({
        "PULUMI_HOME": str(toolchain.pulumi_home),
        "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "e2e",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "NO_COLOR": "1",
    })
    return env


def project_copy(root: Path, cluster_env: dict, toolchain) -> tuple[Path, Path, dict]:
    """ROOT/project (copy_project), ROOT/logs, ROOT/state (the file backend) and the project's env."""
    proj = root / "project"
    copy_project(proj)
    logs = root / "logs"
    logs.mkdir()
    (root / "state").mkdir()
    return proj, logs, project_env(cluster_env, toolchain, proj, root)


def pulumi_mode(env: dict) -> str:
    """``cli`` when the Python language host is on ENV's PATH; else ``inline``: without it (toolchain/README.md:
    the proxy refuses it) the CLI cannot launch a ``runtime: python`` program, and the same CLI runs it
    through the Automation API's inline mode (testinfra/pulumi_inline.py, the driver module taken from the
    repo; the program is the copy's __main__.py), the policy pack as an executable analyzer plugin
    (testinfra/bin/meshca-policy-pack)."""
    mode = "cli" if shutil.which("pulumi-language-python", path=env["PATH"]) else "inline"
    if mode == "inline":
        env["PYTHONPATH"] = str(REPO)
        env["PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"] = "true"
    return mode


def standin(project: Path, name: str) -> Path:
    cand = project / "standins" / name
    if not cand.exists():
        pytest.fail(f"stand-in {name} not found: standins/{name} is not a tracked file of the project (written by the "
                    "stand-ins work of issue 10)", pytrace=False)
    return cand


def launch_injector(d: Path, env: dict, module: str, name: str, *extra: str):
    """An old mesh's seed injector (testinfra/istio16_injector.py or istio116_injector.py) on loopback, in
    dir D: returns its process and its ready file (``{"url", "caBundle"}``)."""
    d.mkdir(parents=True)
    ready = d / "ready.json"
    penv = dict(env)
    penv["PYTHONPATH"] = os.pathsep.join(x for x in (str(REPO), env.get("PYTHONPATH", "")) if x)
    proc = start_proc(name, [sys.executable, "-m", module, *extra, "--listen", "127.0.0.1:0", "--cert-dir", str(d / "certs"),
                             "--ready-file", str(ready)], d / "log", penv, cwd=REPO)
    try:
        wait_for(f"{name} to write {ready}", ready.exists, 30, [proc])
    except BaseException:
        proc.stop()
        raise
    return proc, json.loads(ready.read_text())


def start_clusters(toolchain, contexts: list[str]) -> Clusters:
    """One ``Clusters`` of CONTEXTS, started (one kubeconfig); a launch error fails the test with the processes' logs."""
    clusters = Clusters(contexts, bindir=toolchain.bin)
    try:
        clusters.start()
    except LaunchError as exc:
        print(clusters.logs(), file=sys.stderr)
        clusters.stop()
        pytest.fail(f"clusters {contexts} did not start: {exc}", pytrace=False)
    return clusters


@contextlib.contextmanager
def start_route(toolchain, contexts: list[str], prefix: str, *, timings: list | None = None, invocation_log: bool = True):
    """The module's clusters, project copy and environment as a route dict; everything torn down after.

    TIMINGS: the list every ``run`` records into (default a new one, ``route["timings"]``).
    INVOCATION_LOG: one invocation log (``route["log"]``, ``$MESHCA_STANDIN_LOG`` of the clusters'
    injector stand-in and of the project's env); without it no stand-in logs anything."""
    root = Path(tempfile.mkdtemp(prefix=f"meshca-e2e-{prefix}-"))
    print(f"[e2e] {prefix} dir {root} (MESHCA_E2E_KEEP=1 keeps it)", file=sys.stderr)
    log = root / "invocations.jsonl" if invocation_log else None
    # One stand-in state dir for every process (its default follows the kubeconfig's directory, which a
    # test may change), and the stand-ins' test Mesh CA root as the gates' reference (meshca:meshcaRoot):
    # standins/README.md "Consequence for meshca's gates" (Google's pinned root is not the stand-ins').
    standin_env = {"MESHCA_STANDIN_STATE": str(root / "standin-state")}
    if log is not None:
        log.touch()
        standin_env["MESHCA_STANDIN_LOG"] = str(log)  # the injector stand-in the clusters start logs its reviews here
    saved = {k: os.environ.get(k) for k in standin_env}
    clusters, procs = None, []
    try:
        os.environ.update(standin_env)
        try:
            clusters = start_clusters(toolchain, contexts)
            print(f"[e2e] {prefix} clusters {contexts} up in {clusters.timings['start']:.1f} s; workdir {clusters.workdir}", file=sys.stderr)
            sys.path.insert(0, str(REPO))
            from standins import pki as standin_pki

            meshca_root = root / "meshca-root.pem"
            meshca_root.write_bytes(standin_pki.meshca_root_pem(standin_env["MESHCA_STANDIN_STATE"]))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        proj, logs, env = project_copy(root, clusters.env, toolchain)
        env.update(standin_env)
        mode = pulumi_mode(env)
        standin(proj, "asmcli")
        env["PATH"] = os.pathsep.join([str(standin(proj, "istioctl").parent), env["PATH"]])
        yield {"dir": proj, "root": root, "logs": logs, "env": env, "kubeconfig": str(clusters.kubeconfig), "clusters": clusters,
               "mode": mode, "log": log, "meshca_root": str(meshca_root), "timings": [] if timings is None else timings,
               "positions": [], "procs": procs}
    finally:
        for p in procs:
            p.stop()
        keep = os.environ.get("MESHCA_E2E_KEEP") == "1"
        if clusters is not None:
            clusters.stop(keep=keep)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def start_injector(route: dict, module: str, name: str, *extra: str) -> dict:
    """An old mesh's seed injector (launch_injector) in ROUTE's root, stopped with the route."""
    proc, doc = launch_injector(route["root"] / name, route["clusters"].env, module, name, *extra)
    route["procs"].append(proc)
    return doc


def edit_stack(route: dict, stack: str, **keys) -> None:
    """Set ``meshca:KEY`` values in Pulumi.STACK.yaml (round trip); ``kubeconfig`` sets every cluster's;
    ``namespaces`` maps namespace -> revision (a ``{revision, labels}`` entry keeps its labels); a value
    None removes the key."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    path = route["dir"] / f"Pulumi.{stack}.yaml"
    doc = yaml.load(path.read_text())
    cfg = doc["config"]
    for key, value in keys.items():
        if key == "kubeconfig":
            for c in cfg["meshca:clusters"]:
                c["kubeconfig"] = value
        elif key == "keep_namespaces":  # drop every other namespace from meshca:namespaces
            for ns in [n for n in cfg["meshca:namespaces"] if n not in value]:
                del cfg["meshca:namespaces"][ns]
        elif key == "namespaces":
            for ns, rev in value.items():
                if isinstance(cfg["meshca:namespaces"][ns], dict):
                    cfg["meshca:namespaces"][ns]["revision"] = rev
                else:
                    cfg["meshca:namespaces"][ns] = rev
        elif value is None:
            cfg.pop(f"meshca:{key}", None)
        else:
            cfg[f"meshca:{key}"] = value
    with path.open("w") as fh:
        yaml.dump(doc, fh)


def stack_config(route: dict, stack: str) -> dict:
    import yaml

    return yaml.safe_load((route["dir"] / f"Pulumi.{stack}.yaml").read_text())["config"]


# ---------------------------------------------------------------------------------------------
# Reading a cluster (kubectl of the toolchain, per context)
# ---------------------------------------------------------------------------------------------
def injected_by(pod: dict) -> str | None:
    """The revision whose injector wrote the pod, read as each version writes it (procedure.md
    "Which revision a pod runs"): 1.19 annotation istio.io/rev; 1.16 sidecar.istio.io/status
    .revision; 1.6 pod label istio.io/rev (empty = default). None: no istio-proxy container."""
    spec, md = pod.get("spec") or {}, pod.get("metadata") or {}
    if not any(c.get("name") == "istio-proxy" for c in spec.get("containers") or []):
        return None
    annotations, labels = md.get("annotations") or {}, md.get("labels") or {}
    if "istio.io/rev" in annotations:
        return annotations["istio.io/rev"]
    status = annotations.get("sidecar.istio.io/status")
    if status:
        try:
            rev = json.loads(status).get("revision")
        except ValueError:
            rev = None
        if rev:
            return rev
    if "istio.io/rev" in labels:
        return labels["istio.io/rev"] or "default"
    return "unknown"


def kubectl_json(env: dict, ctx: str, *args: str) -> dict:
    proc = subprocess.run(["kubectl", "--context", ctx, *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl --context {ctx} {' '.join(args)}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def exists(env: dict, ctx: str, kind: str, name: str, namespace: str | None) -> bool:
    ns = ["-n", namespace] if namespace else []
    proc = subprocess.run(["kubectl", "--context", ctx, "get", kind, name, *ns, "--ignore-not-found", "-o", "name"],
                          env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl --context {ctx} get {kind} {name}: {proc.stderr.strip()}")
    return bool(proc.stdout.strip())


def apply(route: dict, ctx: str, what: str, objs: list[dict]) -> None:
    run(route, f"{what} ({ctx})", ["kubectl", "--context", ctx, "apply", "-f", "-"],
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}), timeout=120)


def wait_injecting(env: dict, ctx: str, namespace: str, revision: str, timeout: float = 30) -> None:
    """Until a server-side dry-run Pod in NAMESPACE comes back injected by REVISION (the API server
    picks up a new webhook configuration within a moment; pods created before that are not injected)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "probe-", "labels": {"app": "probe"}},
           "spec": {"containers": [{"name": "probe", "image": "example.invalid/probe:1"}]}}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        proc = subprocess.run(["kubectl", "--context", ctx, "create", "-n", namespace, "-f", "-", "--dry-run=server", "-o", "json"],
                              input=json.dumps(pod), env=env, capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            last = str(injected_by(json.loads(proc.stdout)))
            if last == revision:
                return
        else:
            last = proc.stderr.strip()
        if time.monotonic() > deadline:
            raise AssertionError(f"{ctx}: a dry-run pod in {namespace} is not injected by {revision} after {timeout:.0f} s (last: {last})")
        time.sleep(0.5)


def rollouts(route: dict, ctx: str, deployments: list[tuple[str, str]]) -> None:
    for ns, name in deployments:
        run(route, f"seed rollout {ns}/{name} ({ctx})", ["kubectl", "--context", ctx, "rollout", "status", f"deployment/{name}",
                                                           "-n", ns, "--timeout=90s"], timeout=120)


def ready_endpoint_pods(env: dict, ctx: str, service: str, namespace: str = "istio-system") -> list[dict]:
    slices = kubectl_json(env, ctx, "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")["items"]
    names = {e["targetRef"]["name"] for sl in slices for e in sl.get("endpoints") or []
             if (e.get("conditions") or {}).get("ready") and (e.get("targetRef") or {}).get("kind") == "Pod"}
    pods = kubectl_json(env, ctx, "get", "pods", "-n", namespace)["items"]
    return [p for p in pods if p["metadata"]["name"] in names]


def secret_data(env: dict, ctx: str, name: str) -> dict | None:
    if not exists(env, ctx, "secret", name, "istio-system"):
        return None
    return kubectl_json(env, ctx, "get", "secret", name, "-n", "istio-system").get("data") or {}


CLUSTER_SCOPED = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration", "customresourcedefinition")


def table_problems(env: dict, ctx: str, want: dict) -> list[str]:
    """Differences between cluster CTX and the rows namespaces, labels (optional), pods and objects of the
    literal row WANT."""
    problems: list[str] = []
    namespaces = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in kubectl_json(env, ctx, "get", "namespaces")["items"]}
    for ns, (injection, rev) in want["namespaces"].items():
        labels = namespaces.get(ns)
        if labels is None:
            problems.append(f"namespace {ns}: missing")
            continue
        got = (labels.get("istio-injection"), labels.get("istio.io/rev"))
        if got != (injection, rev):
            problems.append(f"namespace {ns}: (istio-injection, istio.io/rev) = {got}, want {(injection, rev)}")
    for ns, extra in (want.get("labels") or {}).items():
        for k, v in extra.items():
            if (namespaces.get(ns) or {}).get(k) != v:
                problems.append(f"namespace {ns}: label {k}={(namespaces.get(ns) or {}).get(k)}, want {v}")
    pods = kubectl_json(env, ctx, "get", "pods", "--all-namespaces")["items"]
    for ns, rev in want["pods"].items():
        mine = [p for p in pods if p["metadata"]["namespace"] == ns and not p["metadata"].get("deletionTimestamp")]
        revs = sorted(f"{p['metadata']['name']}={injected_by(p)}" for p in mine)
        if len(mine) != 1 or injected_by(mine[0]) != rev:
            problems.append(f"pods of {ns}: {revs or 'none'}, want one pod injected by {rev}")
        for p in mine:
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or []):
                problems.append(f"pod {ns}/{p['metadata']['name']} not Ready")
    for (kind, name), present in want["objects"].items():
        ns = None if kind in CLUSTER_SCOPED else "istio-system"
        if exists(env, ctx, kind, name, ns) != present:
            problems.append(f"{kind} {name}: {'missing' if present else 'present, should be gone'}")
    return problems


def assert_position(route: dict, ctx: str, position: str, want: dict) -> list[str]:
    """Differences between cluster CTX and the literal row WANT (keys: namespaces, pods, objects, gateway,
    istiod, tag, probes, labels). Returns the problems (empty: as the row says)."""
    env = route["env"]
    problems = table_problems(env, ctx, want)
    gw = sorted(str(injected_by(p)) for p in ready_endpoint_pods(env, ctx, "istio-ingressgateway"))
    if gw != want["gateway"]:
        problems.append(f"Service istio-ingressgateway's ready pods injected by {gw}, want {want['gateway']}")
    selector, backend = want["istiod"]
    svc = kubectl_json(env, ctx, "get", "service", "istiod", "-n", "istio-system") if exists(env, ctx, "service", "istiod", "istio-system") else None
    if svc is None:
        problems.append("Service istio-system/istiod: missing")
    else:
        got_sel = svc["spec"].get("selector") or {}
        if got_sel != selector:
            problems.append(f"Service istiod selects {got_sel}, want {selector}")
        backends = sorted({(p["metadata"].get("labels") or {}).get("istio.io/rev", "?") for p in ready_endpoint_pods(env, ctx, "istiod")})
        if backends != [backend]:
            problems.append(f"Service istiod's ready endpoints are pods of revision(s) {backends}, want [{backend}]")
    tag = want.get("tag")
    if tag is not None:
        if not exists(env, ctx, "mutatingwebhookconfiguration", "istio-revision-tag-default", None):
            problems.append("mutatingwebhookconfiguration istio-revision-tag-default: missing")
        else:
            doc = kubectl_json(env, ctx, "get", "mutatingwebhookconfiguration", "istio-revision-tag-default")
            labels = doc["metadata"].get("labels") or {}
            if labels.get("istio.io/rev") != tag or labels.get("istio.io/tag") != "default":
                problems.append(f"istio-revision-tag-default labels {labels}, want istio.io/rev={tag}, istio.io/tag=default")
    for name in want.get("emptied") or ():
        if exists(env, ctx, "mutatingwebhookconfiguration", name, None):
            if kubectl_json(env, ctx, "get", "mutatingwebhookconfiguration", name).get("webhooks"):
                problems.append(f"mutatingwebhookconfiguration {name} still has webhooks")
    for ns, rev in (want.get("probes") or {}).items():
        try:
            wait_injecting(env, ctx, ns, rev, timeout=15)
        except AssertionError as exc:
            problems.append(str(exc))
    return [f"{ctx}: {p}" for p in problems]


def check_position(route: dict, contexts: list[str], position: str, want: dict) -> None:
    problems = [p for ctx in contexts for p in assert_position(route, ctx, position, want)]
    assert not problems, f"live clusters after {position} differ from procedure.md:\n  " + "\n  ".join(problems)


def check_backups(route: dict, stack: str, cluster: str, ctx: str, before: dict[str, dict | None]) -> list[str]:
    """Phase C's backups (procedure.md Phase C 1: `kubectl get secret/NAME -n istio-system -o yaml`) of
    the Secrets whose live data was BEFORE: each a 0600 file (README `meshca:backupDir`, default
    `backups`) that reads back as that Secret's data; a Secret that did not exist is recorded absent."""
    import yaml

    problems = []
    for secret, data in before.items():
        path = route["dir"] / "backups" / stack / cluster / f"{secret}.yaml"
        if not path.exists():
            problems.append(f"{ctx}: no backup {path}")
            continue
        mode = path.stat().st_mode & 0o777
        if mode != 0o600:
            problems.append(f"{ctx}: backup {path} has mode {oct(mode)}, want 0o600")
        doc = yaml.safe_load(path.read_text())
        if data is None:
            if not (isinstance(doc, dict) and doc.get("meshca.io/absent") is True):
                problems.append(f"{ctx}: {secret} did not exist, but its backup is not a record of absence")
        elif (doc or {}).get("data") != data:
            problems.append(f"{ctx}: backup {path} does not read back as the live {secret}'s data "
                            f"(keys {sorted((doc or {}).get('data') or {})} vs {sorted(data)})")
        elif (doc.get("metadata") or {}).get("name") != secret:
            problems.append(f"{ctx}: backup {path} names {(doc.get('metadata') or {}).get('name')}")
    return problems


# ---------------------------------------------------------------------------------------------
# The invocation log: "nothing applied"
# ---------------------------------------------------------------------------------------------
def log_lines(route: dict) -> list[dict]:
    return [json.loads(line) for line in route["log"].read_text().splitlines() if line.strip()]


def describe(rec: dict) -> str:
    if rec.get("standin") == "pulumi-resource-command":
        return f"command provider {rec.get('op')} {rec.get('urn', '').rsplit('::', 1)[-1]}: {str(rec.get('command') or rec.get('argv'))[:160]}"
    if rec.get("tool") == "injector":
        return f"injector review {rec.get('namespace')}/{rec.get('name')} revision {rec.get('revision')}"
    return f"{rec.get('tool')}: {' '.join(map(str, rec.get('argv') or []))[:160]}"


# What counts as "applied" in the invocation log: any Command the command provider ran (create, update
# or delete of a command:local:Command; an invoke of command:local:run is a preview-time probe, allowed
# only as the two reads the program probes with: kubectl get, istioctl version), any asmcli run, any
# istioctl other than reads (version, proxy-config), any kubectl but a read (the dev route's kubectl
# logger), any pod the injector stand-in reviewed (a pod was created: a restart).
ISTIOCTL_READS = ("version", "proxy-config")
KUBECTL_VALUE_FLAGS = {"--context", "-n", "--namespace", "--kubeconfig", "-o", "--output", "-l", "--selector", "--timeout",
                       "-f", "--filename", "--field-selector", "--request-timeout", "-c", "--container", "--for"}
KUBECTL_READS = {"get", "describe", "wait", "version", "api-resources", "api-versions", "auth", "config", "explain", "logs", "top"}


def kubectl_is_read(argv: list) -> bool:
    """A kubectl call that changes nothing: a read verb, ``rollout status/history``, or a dry-run."""
    words, skip = [], False
    for arg in map(str, argv[1:]):
        if skip:
            skip = False
        elif arg.startswith("-"):
            if arg.startswith("--dry-run") and not arg.endswith("=none"):
                return True
            skip = "=" not in arg and arg in KUBECTL_VALUE_FLAGS
        else:
            words.append(arg)
    if not words:
        return True
    return words[0] in KUBECTL_READS or (words[0] == "rollout" and words[1:2] in (["status"], ["history"]))


def applied(records: list[dict]) -> list[str]:
    """The records that changed something (above), described."""
    out = []
    for rec in records:
        if rec.get("standin") == "pulumi-resource-command":
            words = str(rec.get("command") or "").split()
            is_read = rec.get("op") == "invoke" and (
                (words[:1] == ["kubectl"] and "get" in words and not {"apply", "label", "delete", "patch", "create"} & set(words))
                or words[1:3] == ["version", "--remote=false"])
            if not is_read:
                out.append(describe(rec))
        elif rec.get("tool") == "kubectl":
            if not kubectl_is_read(rec.get("argv") or []):
                out.append(describe(rec))
        elif rec.get("tool") == "istioctl":
            argv = [a for a in rec.get("argv") or [] if not a.startswith("-")]
            if len(argv) < 2 or argv[1] not in ISTIOCTL_READS:
                out.append(describe(rec))
        else:  # asmcli, the injector (a pod was created), anything else
            out.append(describe(rec))
    return out


def live_snapshot(env: dict, contexts: list[str]) -> dict:
    snap = {}
    for ctx in contexts:
        namespaces = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in kubectl_json(env, ctx, "get", "namespaces")["items"]}
        pods = sorted(f"{p['metadata']['namespace']}/{p['metadata']['name']}/{p['metadata']['uid']}"
                      for p in kubectl_json(env, ctx, "get", "pods", "--all-namespaces")["items"]
                      if not p["metadata"].get("deletionTimestamp"))
        snap[ctx] = {"namespaces": namespaces, "pods": pods}
    return snap


def refused(route: dict, stack: str, contexts: list[str], position: str, code: str, *, fix: str | None = None,
            state: bool = True) -> list[str]:
    """preview AND up --skip-preview of STACK fail with CODE's Error line (one that also says FIX, if
    given) and no traceback; nothing applied (the invocation log, the live clusters, and, with STATE,
    the stack's state; without it what changed there is printed). Returns the lines seen."""
    seen = []
    for what, args in ((f"pulumi preview ({position})", ("preview", "--policy-pack", "policy")),
                       (f"pulumi up --skip-preview ({position})", ("up", "--yes", "--skip-preview", "--policy-pack", "policy"))):
        before = live_snapshot(route["env"], contexts)
        before_state = state_resources(route, stack)
        before_log = len(log_lines(route))  # after the test's own kubectl reads
        proc = pulumi(route, stack, what, *args, check=False)
        out = proc.stdout + proc.stderr
        new = log_lines(route)[before_log:]
        print(f"[e2e] {what}: {len(new)} invocation(s): " + "; ".join(describe(r) for r in new), file=sys.stderr)
        assert proc.returncode != 0, f"{what} of {stack} was not refused:\n{tail(proc.stdout, 40)}"
        lines = list(dict.fromkeys(line.strip() for line in out.splitlines() if f"Error {code} " in line))
        if not lines and "invoke of command:local:run failed" in out:
            crash = [line.strip() for line in out.splitlines() if "command:local:run" in line or "not found" in line]
            raise ProbeCrashHidesRefusal(f"{what}: refused by a crash, not {code}:\n  " + "\n  ".join(crash[:6]))
        mca = list(dict.fromkeys(line.strip() for line in out.splitlines() if "MCA" in line))
        assert lines, f"{what} of {stack} was refused without an `Error {code}` line; its MCA lines:\n  " + "\n  ".join(mca[:12]) \
            + f"\n{tail(out, 30)}"
        if fix is not None:
            assert any(fix in line for line in lines), f"{what} of {stack}: no `Error {code}` line says `{fix}`: {lines[:3]}"
        if "Traceback" in out:  # the traceback itself in the message (the output's tail may not reach it)
            at = out.index("Traceback")
            raise AssertionError(f"{what} of {stack}: a traceback besides {code}:\n{out[max(0, at - 600):at + 4000]}")
        print(f"[e2e] {what} refused: {lines[0][:300]}", file=sys.stderr)
        ran = applied(new)
        assert not ran, f"{what} of {stack} was refused but applied:\n  " + "\n  ".join(ran)
        assert live_snapshot(route["env"], contexts) == before, f"{what} of {stack} was refused but changed a live cluster"
        after_state = state_resources(route, stack)
        changed = sorted(u.rsplit("::", 1)[-1] for u in set(before_state) | set(after_state) if before_state.get(u) != after_state.get(u))
        if not state:
            print(f"[e2e] {what}: the state of {changed or 'nothing'} changed (not asserted)", file=sys.stderr)
        else:
            assert not changed, f"{what} of {stack} was refused but changed the state of {changed} (a step, the guard or the outputs)"
        seen.append(lines[0])
    return seen


def print_timings(route: dict, title: str) -> None:
    c = route["clusters"]
    lines = [f"cluster start ({len(c.contexts)} contexts): {c.timings['start']:.1f} s"]
    lines += [f"{stack} {pos}: preview {p:.1f} s, up {u:.1f} s" for stack, pos, p, u in route["positions"]]
    lines += ["", "every command:"] + [f"  {what}: {dt:.1f} s" for what, dt in route["timings"]]
    (route["root"] / "timings.txt").write_text("\n".join(lines) + "\n")
    print(f"\n[e2e] {title} timings:\n  " + "\n  ".join(lines), file=sys.stderr)


# Istio ships its CRDs (istio/istio 1.6.14 manifests/charts/base/files/crd-all.gen.yaml, 1.16.7
# manifests/charts/base/crds/crd-all.gen.yaml: authorizationpolicies.security.istio.io, group
# security.istio.io, kind AuthorizationPolicy, served version v1beta1, labels app=istio-pilot,
# istio=security, release=istio). A5/B4's proof dry-runs an AuthorizationPolicy (meshca/webhooks.py),
# which needs the kind to exist. Served here as apiextensions v1 (the API server no longer serves
# v1beta1) with the schema left open.
AUTHZ_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "authorizationpolicies.security.istio.io", "labels": {"app": "istio-pilot", "istio": "security", "release": "istio"}},
    "spec": {"group": "security.istio.io", "scope": "Namespaced",
             "names": {"kind": "AuthorizationPolicy", "listKind": "AuthorizationPolicyList", "plural": "authorizationpolicies",
                       "singular": "authorizationpolicy", "categories": ["istio-io", "security-istio-io"]},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
