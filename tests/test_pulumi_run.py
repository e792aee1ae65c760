"""meshca/pulumi_run.py: the environment the CLI gets for a preview and for an up.

The Automation API's stack is replaced by a recorder here (this is about what the child process
hands the CLI, which inherits ``os.environ``: pulumi/automation/_cmd.py ``env = {**os.environ, ...}``);
the real CLI runs these paths in tests/e2e/test_operator_up.py.
"""

from __future__ import annotations

import os

import pytest

from meshca import pulumi_run


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def preview(self, **kwargs) -> None:
        self.seen.append(("preview", os.environ.get("PULUMI_SKIP_CHECKPOINTS")))

    def up(self, **kwargs) -> None:
        self.seen.append(("up", os.environ.get("PULUMI_SKIP_CHECKPOINTS")))


@pytest.fixture
def recorder(monkeypatch, tmp_path):
    from pulumi import automation as auto

    rec = Recorder()
    monkeypatch.setattr(auto, "select_stack", lambda *a, **k: rec)
    monkeypatch.setattr(auto, "PulumiCommand", lambda **k: None)  # it would look for the CLI
    monkeypatch.delenv("PULUMI_SKIP_CHECKPOINTS", raising=False)
    return rec


def run(tmp_path, command: str) -> int:
    return pulumi_run.main(["--project-dir", str(tmp_path), "--stack", "dev", "--engine", "local", command])


def test_a_preview_skips_checkpoints(recorder, tmp_path):
    assert run(tmp_path, "preview") == 0
    assert recorder.seen == [("preview", "true")]


def test_an_up_keeps_its_checkpoints(recorder, tmp_path):
    assert run(tmp_path, "up") == 0
    assert recorder.seen == [("up", None)]


def test_the_callers_setting_wins(recorder, tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_SKIP_CHECKPOINTS", "false")
    assert run(tmp_path, "preview") == 0
    assert recorder.seen == [("preview", "false")]
    assert pulumi_run.preview_environment({"PULUMI_SKIP_CHECKPOINTS": "0"}) == {}
    assert pulumi_run.preview_environment({}) == {"PULUMI_SKIP_CHECKPOINTS": "true"}
