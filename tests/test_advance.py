"""`meshca advance` and the parts of `meshca up` that run before (or instead of) Pulumi, on copies
of the shipped dev stack.

Expectations transcribed from the route (README "The route", procedure.md phases A-C) and
Pulumi.dev.yaml: 12 namespaces in declaration order, batchSize 3; positions 0 baseline,
1 distribute-root:0 (REV1 installed, nothing moved), 2-5 distribute-root:1-4, 6 distribute-root-done,
7 mesh-ca:0, 8-11 mesh-ca:1-4, 12 mesh-ca-done, 13 old-root-removed. Shipped dev is at 2.
Phases go one at a time and a phase is finished only when every namespace is on its revision
(README "The route", "Safety"); the guard's codes are the catalogue's (MCA0650 a skipped phase,
MCA0657 the old control plane still in use, MCA0669 a return into a rolled-back phase).

`meshca up` here never reaches Pulumi except through ``_Runner.run``, replaced by a scripted
stand-in that answers as the child process would (exit code, output with coded lines); the real
engine is tests/e2e/test_operator_up.py's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import ROOT
from meshca import cli, operate

REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
NAMESPACES = ("frontend", "cart", "checkout", "payments", "catalog", "search",
              "recommendations", "shipping", "inventory", "accounts", "notifications", "ads")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for path in ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    for folder in ("samples", "overlays"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def stack_file(project: Path) -> str:
    return (project / "Pulumi.dev.yaml").read_text()


def set_position(project: Path, phase: str, revision_of, rollback: bool = False) -> None:
    from ruamel.yaml import YAML

    rt = YAML()
    path = project / "Pulumi.dev.yaml"
    doc = rt.load(path.read_text())
    doc["config"]["meshca:phase"] = phase
    doc["config"]["meshca:rollback"] = rollback
    for ns in NAMESPACES:
        doc["config"]["meshca:namespaces"][ns] = revision_of(ns)
    with path.open("w") as fh:
        rt.dump(doc, fh)


def advance(project: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = cli.main(["advance", "--stack", "dev", "--project-dir", str(project), *args])
    out, err = capsys.readouterr()
    return code, out, err


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "advance must not add or remove lines"
    return [(x, y) for x, y in zip(a, b) if x != y]


def test_next_position_moves_batch_2_and_keeps_every_other_line(project, capsys):
    before = stack_file(project)
    code, out, err = advance(project, capsys=capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"advanced dev: 2 distribute-root:1 -> 3 distribute-root:2 (distribute-root: batch 2/4 on {REV1} (payments, catalog, search))"
    assert changed_lines(before, stack_file(project)) == [
        ("    payments: default", f"    payments: {REV1}"),
        ("    catalog: default", f"    catalog: {REV1}"),
        ("    search: default", f"    search: {REV1}"),
    ]


def test_phase_target_is_its_last_forward_position_then_done(project, capsys):
    before = stack_file(project)
    assert advance(project, "--to", "distribute-root", capsys=capsys)[0] == 0
    after = stack_file(project)
    assert changed_lines(before, after) == [(f"    {ns}: default", f"    {ns}: {REV1}") for ns in NAMESPACES[3:]]
    code, out, _ = advance(project, capsys=capsys)
    assert code == 0 and out.startswith("advanced dev: 5 distribute-root:4 -> 6 distribute-root-done ")
    assert changed_lines(after, stack_file(project)) == [("  meshca:phase: distribute-root", "  meshca:phase: distribute-root-done")]
    code, out, _ = advance(project, "--to", "mesh-ca:0", "--json", capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["from"] == {"index": 6, "ref": "distribute-root-done"} and doc["to"]["index"] == 7
    assert doc["edit"] == [{"key": "meshca:phase", "from": "distribute-root-done", "to": "mesh-ca"}] and doc["written"] is True


def test_index_target_and_dry_run(project, capsys):
    before = stack_file(project)
    code, out, _ = advance(project, "--to", "4", "--dry-run", capsys=capsys)
    assert code == 0 and out.startswith("would advance dev: 2 distribute-root:1 -> 4 distribute-root:3 ")
    assert stack_file(project) == before


@pytest.mark.parametrize("target,code", [
    ("mesh-ca", "MCA0650"),               # skips distribute-root-done
    ("distribute-root-done", "MCA0657"),  # nine namespaces still on the old control plane
])
def test_what_the_guard_refuses_is_not_written(project, capsys, target, code):
    before = stack_file(project)
    rc, out, err = advance(project, "--to", target, capsys=capsys)
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert lines and all(line.startswith(f"Error {code} ") for line in lines), err
    assert stack_file(project) == before


@pytest.mark.parametrize("target,code", [
    ("14", "MCA1010"), ("mesh-ca:5", "MCA1010"), ("phase-d", "MCA1010"), ("distribute-root:x", "MCA1010"),
    ("1", "MCA1013"), ("distribute-root:1", "MCA1013"), ("baseline", "MCA1013"),
])
def test_unknown_or_backward_targets_are_refused(project, capsys, target, code):
    before = stack_file(project)
    rc, out, err = advance(project, "--to", target, capsys=capsys)
    assert (rc, out) == (2, "")
    assert err.startswith(f"Error {code} --to: ") and len(err.splitlines()) == 1, err
    assert stack_file(project) == before


def test_complete_stack_has_no_next_position(project, capsys):
    set_position(project, "old-root-removed", lambda ns: REV2)
    before = stack_file(project)
    rc, out, err = advance(project, capsys=capsys)
    assert (rc, out) == (2, "")
    assert err.startswith("Error MCA1012 ") and "13 old-root-removed, the route's last position" in err
    assert stack_file(project) == before


def test_off_route_map_needs_a_target(project, capsys):
    # payments moved before batch 1 is complete: not one of the route's positions.
    set_position(project, "distribute-root", lambda ns: REV1 if ns in ("frontend", "payments") else "default")
    before = stack_file(project)
    rc, out, err = advance(project, capsys=capsys)
    assert (rc, out) == (2, "")
    assert err.startswith("Error MCA1011 ") and "frontend, payments moved" in err
    assert stack_file(project) == before
    assert advance(project, "--to", "distribute-root:2", capsys=capsys)[0] == 0


def test_return_from_a_rollback_sets_the_earlier_phase_and_rollback_false(project, capsys):
    # README "The route": after A6, set the phase back (baseline) with the namespaces on the earlier
    # revision, and rollback: false.
    set_position(project, "distribute-root", lambda ns: REV1 if ns in NAMESPACES[:3] else "default", rollback=True)
    rc, out, err = advance(project, "--to", "baseline", capsys=capsys)
    assert (rc, err) == (0, ""), err
    text = stack_file(project)
    assert "  meshca:phase: baseline\n" in text and "  meshca:rollback: false\n" in text
    assert all(f"    {ns}: default\n" in text for ns in NAMESPACES)
    # Going forward out of a rollback instead is the guard's MCA0669 (return to the rolled-back phase).
    set_position(project, "distribute-root", lambda ns: REV1 if ns in NAMESPACES[:3] else "default", rollback=True)
    rc, _, err = advance(project, capsys=capsys)
    assert rc == 2 and err.startswith("Error MCA0669 ")


# ----------------------------------------------------------------------------- up, before Pulumi


class Script:
    """Answers of the child process per (command, position index); default: exit 0."""

    def __init__(self, project: Path, answers: dict) -> None:
        self.project, self.answers, self.calls = project, answers, []

    def __call__(self, runner, command, log):
        from meshca import plan as planmod
        from meshca.config import load_stack

        config = load_stack(self.project, "dev")
        index = planmod.locate(config)
        self.calls.append((command, index))
        return self.answers.get((command, index), (0, "", {"same": 1}))


def up(project: Path, monkeypatch, answers: dict, *args: str, capsys) -> tuple[int, str, str, Script]:
    script = Script(project, answers)
    monkeypatch.setattr(operate._Runner, "run", lambda runner, command, log: script(runner, command, log))
    code = cli.main(["up", "--stack", "dev", "--project-dir", str(project), "--log", str(project / "up.log"), *args])
    out, err = capsys.readouterr()
    return code, out, err, script


def test_up_walks_one_position_at_a_time(project, monkeypatch, capsys):
    code, out, err, script = up(project, monkeypatch, {}, "--to", "distribute-root-done", capsys=capsys)
    assert (code, err) == (0, ""), err
    assert script.calls == [(c, i) for i in (2, 3, 4, 5, 6) for c in ("preview", "up")]
    assert "  meshca:phase: distribute-root-done\n" in stack_file(project)
    assert "reached position 6 distribute-root-done" in out


def test_up_refused_preview_restores_the_file(project, monkeypatch, capsys):
    refusal = "    error: Error MCA0620 frontend: a made-up policy refusal; fix: do what it says\n"
    code, out, err, script = up(project, monkeypatch, {("preview", 4): (1, refusal, {})}, "--to", "5", capsys=capsys)
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == "Error MCA0620 frontend: a made-up policy refusal; fix: do what it says"
    assert lines[-1].startswith("Error MCA1014 position 4 distribute-root:3: position 4 distribute-root:3 refused by pulumi preview --policy-pack policy (MCA0620); the stack file is back at 3 distribute-root:2;")
    assert script.calls == [("preview", 2), ("up", 2), ("preview", 3), ("up", 3), ("preview", 4)]
    assert f"    search: {REV1}\n" in stack_file(project) and "    recommendations: default\n" in stack_file(project)


def test_up_failed_leaves_the_file_there_and_resumes(project, monkeypatch, capsys):
    failed = "    error: Error MCA0440 dev-1/A3.gate.root-cert: a made-up gate failure; fix: restart it\n"
    code, out, err, script = up(project, monkeypatch, {("up", 5): (1, failed, {})}, "--to", "distribute-root-done", capsys=capsys)
    assert code == 1
    assert err.splitlines()[-1].startswith("Error MCA1015 ") and "pulumi up at position 5 distribute-root:4 failed: MCA0440" in err
    assert all(f"    {ns}: {REV1}\n" in stack_file(project) for ns in NAMESPACES)
    assert "  meshca:phase: distribute-root\n" in stack_file(project)
    code, out, err, script = up(project, monkeypatch, {}, "--to", "distribute-root-done", capsys=capsys)
    assert (code, err) == (0, "")
    assert script.calls == [("preview", 5), ("up", 5), ("preview", 6), ("up", 6)]


def test_up_backward_target_is_refused_before_pulumi_runs(project, monkeypatch, capsys):
    set_position(project, "distribute-root-done", lambda ns: REV1)
    before = stack_file(project)
    code, _, err, script = up(project, monkeypatch, {}, "--to", "1", capsys=capsys)
    assert code == 2 and err.startswith("Error MCA1013 --to: 1 distribute-root:0 is not ahead of the stack's position 6 distribute-root-done")
    assert script.calls == [] and stack_file(project) == before


def test_up_does_not_walk_back_from_a_rollback(project, monkeypatch, capsys):
    # The return from a rollback is one edit (advance --to baseline), never a walk of up (MCA1013).
    set_position(project, "distribute-root", lambda ns: REV1 if ns in NAMESPACES[:3] else "default", rollback=True)
    code, _, err, script = up(project, monkeypatch, {}, "--to", "baseline", capsys=capsys)
    assert code == 2 and err.startswith("Error MCA1013 --to: 0 baseline is not ahead of the stack's position 2 distribute-root:1")
    assert script.calls == []


def test_up_without_the_stack_in_the_backend(project, monkeypatch, capsys):
    code, _, err, script = up(project, monkeypatch, {("preview", 2): (3, "cannot select stack dev: no stack named 'dev' found\n", {})},
                              "--to", "3", capsys=capsys)
    assert code == 2 and err.startswith("Error MCA1016 stack dev: pulumi cannot select stack dev in ")
    assert "no stack named 'dev' found" in err
    assert script.calls == [("preview", 2)]


def test_up_needs_a_target(project, capsys):
    assert cli.main(["up", "--stack", "dev", "--project-dir", str(project)]) == 2
    assert capsys.readouterr().err.startswith("Error MCA0901 meshca up: the following arguments are required: --to")


def test_mca_lines_are_found_in_pulumi_output():
    text = ("Diagnostics:\n  pulumi-python:dynamic/meshca:PhaseGuard (dev.phase-guard):\n"
            "    error: Error MCA0650 PhaseGuard phase: baseline -> mesh-ca skips distribute-root, distribute-root-done; fix: set meshca:phase to distribute-root\n"
            "    error: Error MCA0650 PhaseGuard phase: baseline -> mesh-ca skips distribute-root, distribute-root-done; fix: set meshca:phase to distribute-root\n")
    assert operate.mca_lines(text) == [
        "Error MCA0650 PhaseGuard phase: baseline -> mesh-ca skips distribute-root, distribute-root-done; fix: set meshca:phase to distribute-root"
    ]


def test_progress_names_the_policy_pack_the_engine_ran():
    # The engine's summary event keys a local pack as NAME|local|PATH (seen on pulumi 3.274.1).
    assert operate._changes({"create": 5, "same": 3, "policy packs": "meshca@0.0.1"}) == "5 create; policy packs meshca@0.0.1"
    assert operate._changes({"same": 40}) == "no changes; no policy pack"
