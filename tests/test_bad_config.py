"""Bad stack configs (tests/bad_inputs.py STACK_CONFIG): each is refused with exactly one coded
line naming the key or file, a fix, exit 2 and no traceback, before anything runs:

- ``meshca plan --config`` as a real process with tripwire tools first on PATH (none may run),
- ``meshca.cli.main`` in-process under an audit hook (no process may be created),
- the Pulumi program under mocks (no resource reaches the monitor, no invoke is called).
"""

from __future__ import annotations

import json

from pathlib import Path

import pulumi
import pytest
import yaml

from bad_inputs import STACK_CONFIG, Case
from hardening import main_in_process, run_meshca, subject_of, tripwire_calls, write_tripwires
from harness import run_program

PROGRAM_CASES = [c for c in STACK_CONFIG if not c.program]


def _built(case: Case, tmp_path: Path) -> tuple[list[str], str, Path]:
    project = tmp_path / "project"
    path = case.build(project)
    fill = {"stack_file": str(path), "project_dir": str(project)}
    argv = ["plan", *(a.format(**fill) for a in case.argv)] if case.argv else ["plan", "--config", str(path)]
    return argv, case.subject.format(**fill), path


def assert_refused(case: Case, subject: str, rc: int, out: str, err: str, as_json: bool = False) -> None:
    assert "Traceback" not in out + err
    assert rc == 2, (rc, err)
    if as_json:  # --json: the same one error as the only document on stdout
        doc = json.loads(out)
        assert doc["ok"] is False and [(e["code"], e["subject"], e["line"]) for e in doc["errors"]] == [(case.code, subject, err.strip())]
    else:
        assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines}"
    coded = subject_of(lines[0], subject)
    assert coded.code == case.code and lines[0].startswith(f"Error {case.code} "), lines[0]
    assert coded.problem.strip() and coded.fix.strip(), lines[0]


@pytest.mark.parametrize("case", STACK_CONFIG, ids=lambda c: c.name)
def test_meshca_plan_refuses_it_as_a_real_process(case, tmp_path):
    argv, subject, _ = _built(case, tmp_path)
    tripwire = write_tripwires(tmp_path)
    proc = run_meshca([*argv, "--json"], tripwire=tripwire, cwd=tmp_path)
    assert_refused(case, subject, proc.returncode, proc.stdout, proc.stderr, as_json=True)
    assert tripwire_calls(tripwire) == []


@pytest.mark.parametrize("case", STACK_CONFIG, ids=lambda c: c.name)
def test_meshca_plan_refuses_it_in_process_without_starting_a_process(case, tmp_path):
    argv, subject, _ = _built(case, tmp_path)
    rc, out, err, events = main_in_process(argv, cwd=tmp_path)
    assert_refused(case, subject, rc, out, err)
    assert events == []


def program_inputs(path: Path) -> tuple[dict, list[str]]:
    """What the engine hands the program: ``secure:`` values decrypted, their keys secret."""
    config = yaml.safe_load(path.read_text())["config"]
    overrides, secret = {}, []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            overrides[key] = "decrypted-by-the-engine"
            secret.append(key)
    return overrides, secret


@pytest.mark.parametrize("case", PROGRAM_CASES, ids=lambda c: c.name)
def test_the_program_registers_nothing(case, tmp_path, monkeypatch):
    _, subject, path = _built(case, tmp_path)
    overrides, secret = program_inputs(path)
    logged: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda message, *a, **k: logged.append(message))
    monkeypatch.chdir(path.parent)  # where pulumi runs the program: the project directory
    result = run_program(case.stack, overrides, stack_file=path, secret_keys=secret)
    assert result.error is not None and "nothing was registered" in str(result.error)
    assert result.resources == [] and result.calls == [] and result.outputs == {}
    assert len(logged) == 1, logged
    assert logged[0].startswith(f"Error {case.code} ")
    coded = subject_of(logged[0], subject)
    assert coded.fix.strip()


def test_every_case_the_program_cannot_see_says_why():
    cli_only = [c for c in STACK_CONFIG if c.program]
    assert cli_only, "the file-level cases are CLI-only"
    assert all(len(c.program) > 20 for c in cli_only)
    assert len(PROGRAM_CASES) >= 30
