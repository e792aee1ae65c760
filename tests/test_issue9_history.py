"""Issue 9, findings 2-6 and 8 (provider parts): the program against the real tools.

Every expectation here is transcribed from the cited source (file and line), never computed by
meshca code. The Commands are run the way pulumi-command v1.2.1 runs them:
provider/pkg/provider/local/commandOutputs.go `run`: ``/bin/sh -c <create>`` (line 48),
``cmd.Dir`` = ``dir`` or the provider's working directory ``os.Getwd()`` (lines 73-76), which
the engine sets to the project directory (pulumi/pulumi pkg/resource/plugin/provider_plugin.go:288
``newPlugin(ctx, ctx.Pwd, ...)``, plugin.go:599 ``cmd.Dir = pwd``); ``cmd.Env`` = ``os.Environ()``
plus ``environment`` (line 81 on), ``stdin`` fed when set (line 98).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from meshca import plan as planmod
from meshca.config import load_stack_file

from harness import ROOT

# anthos-service-mesh-packages@1.19.10-asm.9+config1 asmcli/asmcli:774-780 (version_message):
#   VER="${MAJOR}.${MINOR}.${POINT}-asm.${REV}+config${CONFIG_VER}"; echo "${VER}"
# printed by `asmcli --version` (asmcli/asmcli:752-753 and 762-764), then `exit` (status 0).
PINNED = "1.19.10-asm.9+config1"
OTHER = "1.20.8-asm.3+config2"


def _fake_asmcli(directory: Path, version: str) -> Path:
    (directory / version).mkdir()
    path = directory / version / "asmcli"
    path.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi\nexit 3\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _sh(create: str, cwd: Path, env: dict | None = None, path_extra: str | None = None) -> subprocess.CompletedProcess:
    """pulumi-command's run(): /bin/sh -c CREATE in the working directory, inherited environment
    plus the Command's ``environment``."""
    full = dict(os.environ)
    if path_extra:
        full["PATH"] = path_extra + os.pathsep + full.get("PATH", "")
    full.update(env or {})
    return subprocess.run(["/bin/sh", "-c", create], cwd=cwd, env=full, capture_output=True, text=True, timeout=120)


# ----------------------------------------------------------------------------- finding 4


def _verify_step(asmcli_path: str):
    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    c = dataclasses.replace(c, asmcli=dataclasses.replace(c.asmcli, path=asmcli_path))
    c = c.at("distribute-root", False, {n.name: c.old_revision for n in c.namespaces})
    return planmod.build(c).clusters[0].step("A1.verify-asmcli")


def test_finding4_verify_asmcli_passes_the_pinned_version_and_fails_on_any_other(tmp_path):
    # Run from the project directory with meshca's own venv on PATH (finding 6 makes the
    # argv project-relative; this test is about the comparison only).
    bindir = str(Path(sys.executable).parent)
    pinned = _fake_asmcli(tmp_path, PINNED)
    other = _fake_asmcli(tmp_path, OTHER)
    ok = _sh(shlex.join(_verify_step(str(pinned)).argv), ROOT, path_extra=bindir)
    assert ok.returncode == 0, ok.stderr
    bad = _sh(shlex.join(_verify_step(str(other)).argv), ROOT, path_extra=bindir)
    assert bad.returncode != 0
    assert f"asmcli --version printed {OTHER}" in bad.stderr and PINNED in bad.stderr
    assert "MCA0910 " in bad.stderr
    # a tool that does not run at all is its own problem
    missing = _sh(shlex.join(_verify_step(str(tmp_path / "no-such-asmcli")).argv), ROOT, path_extra=bindir)
    assert missing.returncode != 0 and "MCA0911 " in missing.stderr


# ----------------------------------------------------------------------------- finding 5

# pulumi/pulumi pkg/backend/diy/store.go:168-174 (ParseReference of the file backend):
#     if org == "" { org = "organization" }
#     if org != "organization" { return nil, errors.New("organization name must be 'organization'") }
# and pkg/backend/diy/backend.go:185-187: Organization() is always "organization", which is what
# the program sees as pulumi.get_organization() on the file backend.
DIY_ORG = "organization"


def test_finding5_shipped_upstream_stacks_parse_on_the_file_backend():
    import yaml

    named = {}
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        upstream = (yaml.safe_load(path.read_text()).get("config") or {}).get("meshca:upstreamStack")
        if upstream:
            named[path.name] = upstream
    assert named, "staging and prod name their upstream"
    for name, upstream in named.items():
        parts = upstream.split("/")
        assert len(parts) == 3 and parts[0] == DIY_ORG and parts[1] == "meshca", (name, upstream)


@pytest.mark.parametrize("value", ["acme/meshca/dev/x", "acme//dev", "acme/other-project/dev", "organization/meshca/staging"])
def test_finding5_upstream_stack_form_is_one_coded_line(value, tmp_path):
    from meshca.errors import MeshcaErrors

    text = (ROOT / "Pulumi.staging.yaml").read_text()
    import re

    text = re.sub(r"meshca:upstreamStack: .*", f"meshca:upstreamStack: {value}", text)
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.staging.yaml").write_text(text.replace("samples/", str(ROOT / "samples") + "/").replace("overlays/", str(ROOT / "overlays") + "/"))
    with pytest.raises(MeshcaErrors) as exc:
        load_stack_file(tmp_path / "Pulumi.staging.yaml")
    lines = exc.value.lines()
    assert len(lines) == 1 and "MCA0159 meshca:upstreamStack: " in lines[0], lines


def test_finding5_file_backend_refuses_another_organization_before_the_reference(monkeypatch):
    import pulumi

    from harness import run_program

    logged: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda msg, *a, **k: logged.append(msg))
    result = run_program("staging", {"phase": "distribute-root", "upstreamStack": "acme/meshca/dev"}, organization=DIY_ORG)
    assert result.error is not None
    assert any("MCA0719 meshca:upstreamStack acme/meshca/dev: " in line for line in logged), logged
    assert not [r for r in result.resources if r.type == "pulumi:pulumi:StackReference"]


# ----------------------------------------------------------------------------- finding 6

# A Python policy pack runs as a plugin through the language host: pulumi/pulumi
# pkg/resource/plugin/plugin.go:566 NewProgramInfo(pluginDir, pluginDir, ".", runtime options),
# and sdk/python/cmd/pulumi-language-python/main.go:281-287: a plugin without a `virtualenv`
# option gets "venv" (relative to the pack directory); RunPlugin installs nothing.
# `pulumi install` with the pip toolchain: sdk/python/toolchain/pip.go:543-553 installs
# `requirements.txt` of the project directory and silently does nothing without one.


def _all_steps(stack: str = "dev"):
    c = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    for pos in planmod.route(c):
        for cp in planmod.plan_at(c, pos).clusters:
            yield from cp.steps
    for phase in ("distribute-root", "mesh-ca"):
        pos = [p for p in planmod.route(c) if p.phase == phase][-1]
        cfg = c.at(phase, True, pos.namespace_map)
        for cp in planmod.build(cfg).clusters:
            yield from cp.steps


def test_finding6_policy_pack_runs_in_the_projects_venv():
    import yaml

    doc = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    runtime = doc["runtime"]
    assert isinstance(runtime, dict) and runtime["name"] == "python"
    venv = runtime["options"]["virtualenv"]
    assert not Path(venv).is_absolute()
    assert (ROOT / "policy" / venv).resolve() == (ROOT / ".venv").resolve()
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert (ROOT / project["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
    done = subprocess.run([str(ROOT / "policy" / venv / "bin" / "python"), "-c", "import pulumi_policy, meshca"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_finding6_pulumi_install_installs_the_project():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-e ." in lines or "." in lines


def test_finding6_every_command_runs_a_project_relative_tool(tmp_path):
    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    for step in _all_steps():
        if step.is_gate:
            continue
        tool = step.argv[0]
        assert not tool.startswith(("/", "~")), (step.id, tool)
        # the istioctl asmcli links into the tagged revision's output dir (A1 made it; issue 9 finding 10)
        made_by_a1 = step.action == "tag-default" and tool == f"{c.asmcli.output_dir_for(step.cluster, step.params['revision'])}/istioctl"
        assert tool in ("kubectl", c.asmcli.path) or made_by_a1 or (ROOT / tool).is_file(), (step.id, tool)
        assert not any(a.startswith(os.path.expanduser("~")) for a in step.argv), step.id
    # a plain shell: no venv on PATH, run from the project directory as pulumi-command does
    pinned = _fake_asmcli(tmp_path, PINNED)
    plain = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    step = _verify_step(str(pinned))
    done = subprocess.run(["/bin/sh", "-c", shlex.join(step.argv)], cwd=ROOT, env=plain, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------- finding 2

# pulumi-command v1.2.1 provider/pkg/provider/local/commandController.go:79-83 (Update):
#     // Use Create command if Update is unspecified.
#     cmd := news.Create
#     if news.Update != nil { cmd = news.Update }
# and the engine calls Update whenever a non-ignored input differs (pulumi/pulumi
# pkg/resource/deploy/step_generator.go:1267 and :3074-3076 processIgnoreChanges: ignore_changes props are copied from the old state
# before the diff). So a completed step stays completed only if every input the engine diffs
# (create, stdin, dir, triggers, environment, ... minus ignore_changes) is byte-identical.
COMMAND = "command:local:Command"
GATE = "pulumi-python:dynamic/meshca:TrustGate"
BASE_COMMIT = "5261f1bde5060430abab91db20e0a23df5941105"  # the program before issue 9's fixes


def _all_on(stack: str, role: str) -> dict:
    c = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    rev = {"old": c.old_revision, "rev1": c.rev1, "rev2": c.rev2}[role]
    return {n.name: rev for n in c.namespaces}


def _clusters_with_kubeconfig(stack: str, kubeconfig: str) -> list:
    import yaml

    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return [{**cl, "kubeconfig": kubeconfig} for cl in doc["meshca:clusters"]]


OPERATIONAL = {
    "restartTimeoutSeconds": 1800,
    "gateTimeoutSeconds": 3600,
    "gatePollSeconds": 30,
    "gateConcurrency": 4,
    "gateSource": "istioctl",
    "asmcliPath": "tools/asmcli",
    "kubeconfig": "~/other-operator/kubeconfig.yaml",
}


def _diffed(resource) -> dict:
    """The inputs the engine diffs: all but the resource's ignore_changes."""
    return {k: v for k, v in resource.inputs.items() if k not in set(resource.ignore_changes or ())}


def _run_at_end(stack: str, extra: dict):
    from harness import run_program

    overrides = {"phase": "old-root-removed", "namespaces": _all_on(stack, "rev2"), "upstreamStack": None, **extra}
    result = run_program(stack, overrides)
    assert result.error is None, result.error
    return result


@pytest.mark.parametrize("key", sorted(OPERATIONAL))
def test_finding2_operational_keys_never_change_what_the_engine_diffs(key):
    from meshca.providers.trust_gate import TrustGateProvider

    stack = "dev"
    base = _run_at_end(stack, {})
    if key == "kubeconfig":
        changed = _run_at_end(stack, {"clusters": _clusters_with_kubeconfig(stack, OPERATIONAL[key])})
    else:
        changed = _run_at_end(stack, {key: OPERATIONAL[key]})
    before, after = base.by_urn(), changed.by_urn()
    assert set(before) == set(after)  # stable URNs
    commands = [u for u, r in before.items() if r.type == COMMAND]
    assert len(commands) > 40
    rerun = [u.rsplit("::", 1)[1] for u in commands if _diffed(before[u]) != _diffed(after[u])]
    assert rerun == [], f"{key}: {len(rerun)} of {len(commands)} Commands would run again: {rerun[:5]}"
    gates = [u for u, r in before.items() if r.type == GATE]
    assert gates
    provider = TrustGateProvider()
    replaced = [u.rsplit("::", 1)[1] for u in gates if provider.diff("id", before[u].inputs, after[u].inputs).changes]
    assert replaced == [], f"{key}: gates replaced: {replaced}"
    home = os.path.expanduser("~")
    for u in commands:
        assert home not in json_dump(_diffed(after[u])), u


def json_dump(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


_OLD_DUMP = r"""
import json, sys
sys.path[:0] = [sys.argv[1] + "/tests", sys.argv[1]]
from harness import run_program
out = []
for overrides in json.loads(sys.argv[2]):
    r = run_program(overrides.pop("_stack"), overrides)
    if r.error is not None:
        raise SystemExit(f"old program failed: {r.error}")
    out.append({u: {"type": x.type, "inputs": x.inputs} for u, x in r.by_urn().items()})
print(json.dumps(out, default=str))
"""


def _positions(stack: str):
    c = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    return [(p.phase, p.namespace_map) for p in planmod.route(c)]


def test_finding2_upgrading_meshca_mid_route_reruns_nothing(tmp_path):
    """Walk the first half of dev's route on the previous commit's program, then continue on
    this one: at the position where the upgrade happens, every Command the old program left in
    the state diffs equal (or only in ignore_changes) and no gate is replaced."""
    import json

    from harness import run_program
    from meshca.providers.trust_gate import TrustGateProvider

    old_tree = tmp_path / "old"
    old_tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASE_COMMIT], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
    positions = _positions("dev")
    half = positions[1 : len(positions) // 2 + 1]  # distribute-root ... the middle of the route
    requests = [{"_stack": "dev", "phase": phase, "namespaces": mapping} for phase, mapping in half]
    done = subprocess.run(
        [sys.executable, "-c", _OLD_DUMP, str(old_tree), json.dumps(requests)], capture_output=True, text=True, cwd=old_tree, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    old_states = json.loads(done.stdout.strip().splitlines()[-1])
    provider = TrustGateProvider()
    for (phase, mapping), old in zip(half, old_states):
        new = run_program("dev", {"phase": phase, "namespaces": mapping}).by_urn()
        for urn, was in old.items():
            if was["type"] not in (COMMAND, GATE):
                continue
            assert urn in new, f"upgrade at {phase}: {urn} would be deleted (no alias)"
            now = new[urn]
            if was["type"] == COMMAND:
                ignored = set(now.ignore_changes or ())
                diff = {k for k in set(was["inputs"]) | set(now.inputs) if k not in ignored and was["inputs"].get(k) != now.inputs.get(k)}
                assert not diff, f"upgrade at {phase}: {urn.rsplit('::', 1)[1]} re-runs ({sorted(diff)})"
            else:
                assert not provider.diff("id", was["inputs"], now.inputs).changes, f"upgrade at {phase}: gate {urn} replaced"


# ----------------------------------------------------------------------------- finding 2: identity

IDENTITY = {
    "clusters": {"c1": {"project": "p", "location": "us-central1", "context": "gke_p_us-central1_c1"}},
    "caFiles": {"caCert": "a" * 64, "rootCert": "b" * 64, "certChain": "c" * 64},
    "install": {"fleetProject": "p", "customOverlays": ["d" * 64], "extraOptions": [], "prerequisites": "asmcli", "rev2CitadelRoot": True},
}


def _with_identity(props: dict, **changes) -> dict:
    import copy

    ident = copy.deepcopy(IDENTITY)
    for path, value in changes.items():
        top, _, rest = path.partition("__")
        if rest:
            ident[top][rest] = value
        else:
            ident[top] = value
    return {**props, "identity": ident}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"clusters__c1": {"project": "p", "location": "us-east1", "context": "gke_p_us-east1_c1"}}, "identity.clusters.c1"),
        ({"caFiles__rootCert": "e" * 64}, "identity.caFiles.rootCert"),
        ({"install__customOverlays": ["f" * 64]}, "identity.install.customOverlays"),
        ({"install__extraOptions": ["stackdriver"]}, "identity.install.extraOptions"),
    ],
)
def test_finding2_identity_change_after_use_is_refused_by_the_guard(change, field):
    from test_guard_transitions import OLD, REV1, all_on, check, state

    moved = {**all_on(OLD), "frontend": REV1}
    olds = _with_identity(state("distribute-root", moved))
    news = _with_identity(state("distribute-root", moved), **change)
    failures = check(olds, news)
    assert any(f"MCA0662 PhaseGuard {field}: " in reason for _, reason in failures), failures
    # before anything ran (baseline), and from a state the previous program wrote (no identity)
    assert check(_with_identity(state("baseline", all_on(OLD))), _with_identity(state("distribute-root", all_on(OLD)), **change)) == []
    assert check(state("distribute-root", moved), _with_identity(state("distribute-root", moved), **change)) == []


def test_finding2_the_program_hands_the_guard_its_identity_without_key_material():
    import json

    from harness import run_program

    result = run_program("dev")
    guard = result.named("dev.phase-guard")
    ident = guard.inputs["identity"]
    assert set(ident) == {"clusters", "caFiles", "install"}
    assert set(ident["clusters"]) == {"dev-1"} and ident["clusters"]["dev-1"]["context"] == "gke_acme-mesh-dev_us-central1_dev-1"
    assert set(ident["caFiles"]) == {"caCert", "rootCert", "certChain"}  # never the key
    assert all(len(v) == 64 for v in ident["caFiles"].values())
    assert "kubeconfig" not in json.dumps(ident) and "PRIVATE KEY" not in json.dumps(ident)


# ----------------------------------------------------------------------------- finding 3

# README (route): "Afterwards set the phase back (`baseline` or `distribute-root-done`)". A6/B5
# delete istiod-REV; the install Command stays in the state while the phase stays declared, so
# `distribute-root` (rollback) -> `distribute-root` would relabel to a revision with no istiod.


def test_finding3_returning_to_the_rolled_back_phase_is_refused_with_the_phase_to_set():
    from test_guard_transitions import B0, OLD, REV1, REV2, all_on, check, state

    a_moved = {**all_on(OLD), "frontend": REV1}
    failures = check(state("distribute-root", a_moved, rollback=True), state("distribute-root", all_on(OLD)))
    assert [r for _, r in failures if "MCA0669 PhaseGuard phase: " in r and "set meshca:phase to baseline" in r], failures
    b_moved = {**all_on(REV1), "frontend": REV2}
    failures = check(state("mesh-ca", b_moved, rollback=True, evidence=[B0]), state("mesh-ca", all_on(REV1), evidence=[B0]))
    assert [r for _, r in failures if "MCA0669 PhaseGuard phase: " in r and "set meshca:phase to distribute-root-done" in r], failures
    # the documented way back stays open
    assert check(state("distribute-root", a_moved, rollback=True), state("baseline", all_on(OLD))) == []
    assert check(state("mesh-ca", b_moved, rollback=True, evidence=[B0]), state("distribute-root-done", all_on(REV1), evidence=[B0])) == []


# ----------------------------------------------------------------------------- finding 8 (provider parts)

# pulumi 3.272 SDK pulumi/dynamic/dynamic.py:222-231: the default diff is DiffResult() (changes
# unknown: the engine diffs the inputs itself, any change is an update), :249-257: the default
# update returns UpdateResult() with no outs, and pulumi/dynamic/__main__.py:142-146 then records
# outs = {} (plus the provider): every output of the completed step is gone.


def test_finding8_ca_secret_providers_keep_their_outputs_on_operational_changes():
    from meshca.providers.ca_secrets import CaSecretBackupProvider, CaSecretDeletionProvider

    argv = ["kubectl", "--context", "ctx", "delete", "secret", "cacerts", "istio-ca-secret", "-n", "istio-system", "--ignore-not-found"]
    backup = {"secret": "cacerts", "file": "backups/dev/c1/cacerts.yaml", "fileSha256": "a" * 64, "getArgv": ["kubectl", "--context", "ctx", "get", "secret/cacerts"]}
    olds = {"cluster": "c1", "argv": argv, "backups": [backup], "projectDir": "/home/alice/meshca", "verifiedBackups": ["cacerts", "istio-ca-secret"]}
    news = {"cluster": "c1", "argv": argv, "backups": [backup], "projectDir": "/home/bob/src/meshca", "kubeconfig": "/home/bob/kubeconfig"}
    deletion = CaSecretDeletionProvider()
    d = deletion.diff("c1/ca-secrets-deleted", olds, news)
    assert not d.replaces
    outs = deletion.update("c1/ca-secrets-deleted", olds, news).outs
    assert outs and outs["verifiedBackups"] == ["cacerts", "istio-ca-secret"]
    # the backup: another project dir, kubeconfig or argv form never re-runs it, outputs kept
    b_olds = {"cluster": "c1", "secret": "cacerts", "file": "backups/dev/c1/cacerts.yaml", "argv": ["kubectl", "--kubeconfig", "k", "--context", "ctx", "get", "secret/cacerts", "-n", "istio-system", "-o", "yaml"], "projectDir": "/a", "present": True, "fileSha256": "b" * 64, "dataSha256": "c" * 64, "keys": ["ca-cert.pem"], "mode": "0600"}
    b_news = {"cluster": "c1", "secret": "cacerts", "file": "backups/dev/c1/cacerts.yaml", "argv": ["kubectl", "--context", "ctx", "get", "secret/cacerts", "-n", "istio-system", "-o", "yaml"], "projectDir": "/b", "kubeconfig": "k2"}
    bp = CaSecretBackupProvider()
    assert not bp.diff("c1/cacerts", b_olds, b_news).replaces
    kept = bp.update("c1/cacerts", b_olds, b_news).outs
    assert kept["fileSha256"] == "b" * 64 and kept["present"] is True


# pulumi-kubernetes provider/pkg/metadata/annotations.go:38-39 (pulumi.com/patchForce,
# pulumi.com/patchFieldManager) and :46-47: the only internal annotation kept off the object is
# pulumi.com/autonamed, so the patch annotations are applied to the live Namespace. The
# provider-level switch (enablePatchForce) exists only from pulumi-kubernetes 4.29 (#4242); the
# provider served here is 4.25.0, whose only force is the pulumi.com/patchForce annotation, and
# the real engine needs force (preview dry-runs the patch against a label kubectl-label co-owns:
# "conflict with kubectl-label", tests/e2e). So exactly that one annotation remains, nothing else.


def test_finding8_namespace_patches_carry_only_the_force_annotation_4_25_needs():
    from harness import run_program

    result = run_program("dev", {"phase": "distribute-root", "namespaces": {**_all_on("dev", "old"), "frontend": load_stack_file(ROOT / "Pulumi.dev.yaml").rev1}})
    patches = result.of_type("kubernetes:core/v1:NamespacePatch")
    assert patches
    for p in patches:
        annotations = (p.inputs.get("metadata") or {}).get("annotations") or {}
        assert {k: v for k, v in annotations.items() if k.startswith("pulumi.com/")} == {"pulumi.com/patchForce": "true"}, (p.name, annotations)
    providers = result.of_type("pulumi:providers:kubernetes")
    assert providers and not [p for p in providers if "enablePatchForce" in p.inputs]  # not in 4.25.0


# pulumi 3.272 SDK pulumi/dynamic/__main__.py:268-271: the dynamic provider host serves every
# dynamic resource of the run with grpc.server(futures.ThreadPoolExecutor(max_workers=4)): at
# most 4 creates run at once, and a TrustGate's create blocks its worker while it polls.
HOST_WORKERS = 4
CHECK_SECONDS = 0.5  # one read of every proxy of a cluster (a big cluster takes longer)


def _gate_walls(monkeypatch, clusters: int) -> tuple[float, list[float]]:
    """Create the A3 gate of ``clusters`` clusters through a 4-worker pool, as the host does;
    every check takes CHECK_SECONDS and passes. Returns (wall time, per-gate finish times)."""
    import concurrent.futures
    import time

    import meshca.trust.cli as trust_cli
    import meshca.trust.runner as runner
    from meshca.providers.trust_gate import TrustGateProvider

    class _Source:
        def close(self):
            pass

    import threading

    # Every cluster's check waits until all of them are running at once: if the gates of the
    # 5th and 6th cluster queued behind the four host workers (which block here), the barrier
    # breaks after its timeout and the checks fail. No wall-time assertion.
    together = threading.Barrier(clusters, timeout=20)

    def fake_check(source, request, progress=None):
        together.wait()
        time.sleep(CHECK_SECONDS)
        return {"ok": True, "summary": {"meshed": 1, "ok": 1, "failed": 0, "errors": 0, "skipped": 0, "retiring": 0}, "pods": [], "reason": ""}

    monkeypatch.setattr(trust_cli, "make_source", lambda *a, **k: _Source())
    monkeypatch.setattr(runner, "run_check", fake_check)
    # a gate refuses a context no kubeconfig defines (MCA1002) before its source: define them
    import tempfile

    import yaml

    kubeconfig = Path(tempfile.mkdtemp()) / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": [{"name": f"ctx{i}", "context": {"cluster": "c", "user": "u"}} for i in range(clusters)]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    import uuid

    digest = uuid.uuid4().hex * 2  # a fresh gate (the provider process lives for one run)
    props = [
        {"gateId": "A3.gate.root-cert", "stack": "prod", "phase": "distribute-root", "cluster": f"c{i}", "context": f"ctx{i}", "check": "root-cert",
         "require": ["CITADEL", "MESHCA"], "namespaceDigest": digest, "timeoutSeconds": 60, "pollSeconds": 0.1}
        for i in range(clusters)
    ]
    # the inputs the program registers: each gate lists the same gate of the other clusters
    props = [{**p, "peers": [q for q in props if q is not p]} for p in props]
    provider = TrustGateProvider()
    start = time.monotonic()
    finished: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=HOST_WORKERS) as pool:
        def one(p):
            provider.create(p)
            finished.append(time.monotonic() - start)
        list(pool.map(one, props))
    return time.monotonic() - start, sorted(finished)


def test_finding8_gates_of_six_clusters_poll_together(monkeypatch):
    wall, finished = _gate_walls(monkeypatch, 6)
    print(f"6 clusters through {HOST_WORKERS} host workers: wall {wall:.2f} s, gates done at {[round(f, 2) for f in finished]}")
    # every check ran while all six were running (the barrier in _gate_walls), so every gate passed
    assert len(finished) == 6


# pulumi-gcp 10.2.0 gkehub/membership.py (import section): a Membership is imported as
# projects/{{project}}/locations/{{location}}/memberships/{{membership_id}}; creating one for a
# cluster the fleet already has fails (the id exists), so a registered cluster is imported.


def test_finding8_registered_clusters_membership_is_imported():
    import yaml

    from harness import run_program

    doc = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    clusters = [dict(cl) for cl in doc["meshca:clusters"]]
    clusters[0]["fleetMembership"] = clusters[0]["name"]
    result = run_program("staging", {"prerequisites": "pulumi", "upstreamStack": None, "clusters": clusters})
    assert result.error is None, result.error
    members = {r.name: r for r in result.of_type("gcp:gkehub/membership:Membership")}
    first, second = clusters[0]["name"], clusters[1]["name"]
    fleet = doc["meshca:fleetProject"]
    assert members[f"{first}.membership"].import_id == f"projects/{fleet}/locations/global/memberships/{first}"
    assert members[f"{first}.membership"].inputs["membershipId"] == first
    assert members[f"{second}.membership"].import_id == ""  # not registered yet: created


def test_finding2_the_install_gets_the_kubeconfig_from_its_environment(tmp_path):
    """asmcli only takes --kubeconfig (asmcli/asmcli:3488-3489, KUBECONFIG_SUPPLIED): the
    create line names "$KUBECONFIG", which /bin/sh expands from the Command's environment."""
    from meshca.commands import shell_join

    fake = tmp_path / "asmcli"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    c = dataclasses.replace(c, asmcli=dataclasses.replace(c.asmcli, path=str(fake)))
    step = planmod.build(c.at("distribute-root", False, {n.name: c.old_revision for n in c.namespaces})).clusters[0].step(f"A1.install.{c.rev1}")
    done = _sh(shell_join(step.argv), tmp_path, env=dict(step.env))
    args = done.stdout.splitlines()
    assert args[args.index("--kubeconfig") + 1] == "kubeconfigs/dev.yaml"
