"""Helpers of the multi-cluster routes (tests/e2e/test_route_csm116.py, test_route_staging.py).

TEST CODE, not a test module. The same set-up as the smoke and the dev route (the README's shell:
the project's .venv, the toolchain, a file backend, the stand-ins on PATH; the program under the
real Pulumi CLI through testinfra/pulumi_inline.py when there is no Python language host), for a
project whose stacks name several kubeconfig contexts: ONE ``Clusters`` of all of them per module
(testinfra/cluster.py, one kubeconfig), one project copy, one invocation log
(``$MESHCA_STANDIN_LOG``: every Command the command provider stand-in ran, every asmcli and
istioctl run, every pod the injector stand-in reviewed).

Nothing here knows what a position should look like: each module holds its literal table
(transcribed from procedure.md) and ``assert_position`` only compares the live cluster with a row.
"""

from __future__ import annotations

import base64
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

import test_smoke as smoke  # copy_project, project_env, start_old_injector, injected_by (pure helpers)

REPO = smoke.REPO


# ---------------------------------------------------------------------------------------------
# Running things (each command timed; per-position figures)
# ---------------------------------------------------------------------------------------------
def run(route: dict, what: str, argv: list[str], *, check: bool = True, stdin: str | None = None,
        timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=route["dir"], env=env or route["env"], capture_output=True, text=True,
                              timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"{what}: `{' '.join(argv)}` did not finish in {timeout:.0f} s:\n{smoke.tail(out)}") from None
    dt = time.monotonic() - t0
    route["timings"].append((what, dt))
    n = len(route["timings"])
    safe = what.replace(" ", "_").replace("/", "_")[:120]
    (route["logs"] / f"{n:03d}-{safe}.log").write_text(
        f"$ {' '.join(argv)}\nexit {proc.returncode} in {dt:.1f}s\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    print(f"[e2e] {what}: {dt:.1f} s (exit {proc.returncode})", file=sys.stderr, flush=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{what}: `{' '.join(argv)}` exited {proc.returncode} after {dt:.1f} s\n"
                             f"--- stdout tail:\n{smoke.tail(proc.stdout)}\n--- stderr tail:\n{smoke.tail(proc.stderr)}")
    return proc


def pulumi(route: dict, stack: str, what: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``pulumi ARGS --stack STACK`` with the real CLI (inline mode: testinfra/pulumi_inline.py)."""
    if route["mode"] == "cli":
        argv = ["pulumi", *args, "--stack", stack, "--non-interactive", "--color", "never"]
    else:
        sub = {"stack": "init"}.get(args[0], args[0])
        rest = [a for a in args[1:] if a not in ("init", stack, "--yes")]
        argv = [str(route["dir"] / ".venv" / "bin" / "python"), "-m", "testinfra.pulumi_inline", "--stack", stack, sub, *rest]
    return run(route, f"{what} [{stack}, {route['mode']}]", argv, check=check)


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
    """preview --policy-pack policy, then up --yes --policy-pack policy; returns the two wall times."""
    times = {}
    for step, args in (("preview", ["preview", "--policy-pack", "policy"]), ("up", ["up", "--yes", "--policy-pack", "policy"])):
        t0 = time.monotonic()
        proc = pulumi(route, stack, f"pulumi {step} ({position})", *args, check=False)
        times[step] = time.monotonic() - t0
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            errors = list(dict.fromkeys(line.strip() for line in out.splitlines() if "error:" in line or "MCA" in line))
            raise AssertionError(f"pulumi {step} of {stack} at {position} exited {proc.returncode}; its errors:\n  "
                                 + "\n  ".join(errors[:20]) + f"\n--- stdout tail:\n{smoke.tail(proc.stdout, 40)}"
                                 + f"\n--- stderr tail:\n{smoke.tail(proc.stderr, 20)}")
    route["positions"].append((stack, position, times["preview"], times["up"]))
    return times


# ---------------------------------------------------------------------------------------------
# The module's clusters, project and environment
# ---------------------------------------------------------------------------------------------
def start_route(toolchain, contexts: list[str], prefix: str):
    """Generator for a module fixture: yields the route dict, tears everything down after."""
    root = Path(tempfile.mkdtemp(prefix=f"meshca-e2e-{prefix}-"))
    print(f"[e2e] {prefix} dir {root} (MESHCA_E2E_KEEP=1 keeps it)", file=sys.stderr)
    log = root / "invocations.jsonl"
    log.touch()
    saved = {k: os.environ.get(k) for k in ("MESHCA_STANDIN_LOG", "MESHCA_STANDIN_STATE")}
    os.environ["MESHCA_STANDIN_LOG"] = str(log)
    os.environ["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
    clusters = Clusters(contexts, bindir=toolchain.bin)
    try:
        clusters.start()
    except LaunchError as exc:
        print(clusters.logs(), file=sys.stderr)
        clusters.stop()
        pytest.fail(f"clusters {contexts} did not start: {exc}", pytrace=False)
    print(f"[e2e] {prefix} clusters {contexts} up in {clusters.timings['start']:.1f} s; workdir {clusters.workdir}", file=sys.stderr)
    sys.path.insert(0, str(REPO))
    from standins import pki as standin_pki

    meshca_root = root / "meshca-root.pem"
    meshca_root.write_bytes(standin_pki.meshca_root_pem(os.environ["MESHCA_STANDIN_STATE"]))
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proj = root / "project"
    smoke.copy_project(proj)
    logs = root / "logs"
    logs.mkdir()
    (root / "state").mkdir()
    env = smoke.project_env(clusters.env, toolchain, proj, root)
    env["MESHCA_STANDIN_LOG"] = str(log)
    env["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
    mode = "cli" if shutil.which("pulumi-language-python", path=env["PATH"]) else "inline"
    if mode == "inline":
        env["PYTHONPATH"] = str(REPO)
        env["PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK"] = "true"
    env["PATH"] = os.pathsep.join([str(proj / "standins"), env["PATH"]])
    route = {"dir": proj, "root": root, "logs": logs, "env": env, "kubeconfig": str(clusters.kubeconfig), "clusters": clusters,
             "mode": mode, "log": log, "meshca_root": str(meshca_root), "timings": [], "positions": [], "procs": []}
    try:
        yield route
    finally:
        for p in route["procs"]:
            p.stop()
        keep = os.environ.get("MESHCA_E2E_KEEP") == "1"
        clusters.stop(keep=keep)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def start_injector(route: dict, module: str, name: str, *extra: str) -> dict:
    """An old mesh's injector (testinfra/istio16_injector.py or istio116_injector.py) on loopback."""
    d = route["root"] / name
    d.mkdir(parents=True)
    ready = d / "ready.json"
    penv = dict(route["clusters"].env)
    penv["PYTHONPATH"] = str(REPO)
    proc = start_proc(name, [sys.executable, "-m", module, *extra, "--listen", "127.0.0.1:0", "--cert-dir", str(d / "certs"),
                             "--ready-file", str(ready)], d / "log", penv, cwd=REPO)
    route["procs"].append(proc)
    wait_for(f"{name} to write {ready}", ready.exists, 30, [proc])
    return json.loads(ready.read_text())


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
        if "the server doesn't have a resource type" in proc.stderr:
            return False
        raise AssertionError(f"kubectl --context {ctx} get {kind} {name}: {proc.stderr.strip()}")
    return bool(proc.stdout.strip())


def apply(route: dict, ctx: str, what: str, objs: list[dict]) -> None:
    run(route, f"{what} ({ctx})", ["kubectl", "--context", ctx, "apply", "-f", "-"],
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}), timeout=120)


def wait_injecting(env: dict, ctx: str, namespace: str, revision: str, timeout: float = 30) -> None:
    """Until a server-side dry-run Pod in NAMESPACE comes back injected by REVISION."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "probe-", "labels": {"app": "probe"}},
           "spec": {"containers": [{"name": "probe", "image": "example.invalid/probe:1"}]}}
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        proc = subprocess.run(["kubectl", "--context", ctx, "create", "-n", namespace, "-f", "-", "--dry-run=server", "-o", "json"],
                              input=json.dumps(pod), env=env, capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            last = str(smoke.injected_by(json.loads(proc.stdout)))
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


def assert_position(route: dict, ctx: str, position: str, want: dict) -> list[str]:
    """Differences between cluster CTX and the literal row WANT (keys: namespaces, pods, objects, gateway,
    istiod, tag, probes, labels). Returns the problems (empty: as the row says)."""
    env = route["env"]
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
        revs = sorted(f"{p['metadata']['name']}={smoke.injected_by(p)}" for p in mine)
        if len(mine) != 1 or smoke.injected_by(mine[0]) != rev:
            problems.append(f"pods of {ns}: {revs or 'none'}, want one pod injected by {rev}")
        for p in mine:
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or []):
                problems.append(f"pod {ns}/{p['metadata']['name']} not Ready")
    for (kind, name), present in want["objects"].items():
        ns = None if kind in CLUSTER_SCOPED else "istio-system"
        if exists(env, ctx, kind, name, ns) != present:
            problems.append(f"{kind} {name}: {'missing' if present else 'present, should be gone'}")
    gw = sorted(str(smoke.injected_by(p)) for p in ready_endpoint_pods(env, ctx, "istio-ingressgateway"))
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


def applied(records: list[dict]) -> list[str]:
    """Records that changed something: any Command run (create/update/delete), any asmcli run, any
    istioctl but its reads (version, proxy-config), any pod the injector stand-in reviewed. A preview
    probe (invoke of command:local:run) is a read when it is `kubectl ... get` or `istioctl version`."""
    out = []
    for rec in records:
        if rec.get("standin") == "pulumi-resource-command":
            words = str(rec.get("command") or "").split()
            is_read = rec.get("op") == "invoke" and (
                (words[:1] == ["kubectl"] and "get" in words and not {"apply", "label", "delete", "patch", "create"} & set(words))
                or words[1:3] == ["version", "--remote=false"])
            if not is_read:
                out.append(describe(rec))
        elif rec.get("tool") == "istioctl":
            argv = [a for a in rec.get("argv") or [] if not a.startswith("-")]
            if len(argv) < 2 or argv[1] not in ("version", "proxy-config"):
                out.append(describe(rec))
        else:
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


def refused(route: dict, stack: str, contexts: list[str], position: str, code: str) -> list[str]:
    """preview AND up --skip-preview of STACK fail with CODE's Error line; nothing applied (the
    invocation log, the live clusters, the stack's state). Returns the lines seen."""
    seen = []
    for what, args in ((f"pulumi preview ({position})", ("preview", "--policy-pack", "policy")),
                       (f"pulumi up --skip-preview ({position})", ("up", "--yes", "--skip-preview", "--policy-pack", "policy"))):
        before_log = len(log_lines(route))
        before = live_snapshot(route["env"], contexts)
        before_state = state_resources(route, stack)
        proc = pulumi(route, stack, what, *args, check=False)
        out = proc.stdout + proc.stderr
        new = log_lines(route)[before_log:]
        print(f"[e2e] {what}: {len(new)} invocation(s): " + "; ".join(describe(r) for r in new), file=sys.stderr)
        assert proc.returncode != 0, f"{what} of {stack} was not refused:\n{smoke.tail(proc.stdout, 40)}"
        lines = list(dict.fromkeys(line.strip() for line in out.splitlines() if f"Error {code} " in line))
        mca = list(dict.fromkeys(line.strip() for line in out.splitlines() if "MCA" in line))
        assert lines, f"{what} of {stack} was refused without an `Error {code}` line; its MCA lines:\n  " + "\n  ".join(mca[:12]) \
            + f"\n{smoke.tail(out, 30)}"
        assert "Traceback" not in out, f"{what} of {stack}: a traceback besides {code}:\n{smoke.tail(out, 40)}"
        print(f"[e2e] {what} refused: {lines[0][:300]}", file=sys.stderr)
        ran = applied(new)
        assert not ran, f"{what} of {stack} was refused but applied:\n  " + "\n  ".join(ran)
        assert live_snapshot(route["env"], contexts) == before, f"{what} of {stack} was refused but changed a live cluster"
        after_state = state_resources(route, stack)
        changed = sorted(u.rsplit("::", 1)[-1] for u in set(before_state) | set(after_state) if before_state.get(u) != after_state.get(u))
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
# manifests/charts/base/crds/crd-all.gen.yaml): A5/B4's proof dry-runs an AuthorizationPolicy, which needs
# the kind. Served as apiextensions v1 with the schema left open.
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
