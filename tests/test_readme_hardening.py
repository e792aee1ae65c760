"""README.md's hardening table is generated from the test data and must not be stale."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bad_inputs import CATALOGUE
from hardening import ROOT
from meshca.sim.scenarios import FAULT_SCENARIOS
from secret_scan import FORMS, SURFACES

sys.path.insert(0, str(ROOT / "scripts"))
import readme_hardening  # noqa: E402


def test_the_readme_table_is_the_generated_one():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_hardening.splice(text, readme_hardening.table()) == text, "run: python scripts/readme_hardening.py --write"


def test_the_table_reports_the_counts_of_the_test_data():
    generated = readme_hardening.table()
    assert f"{len(CATALOGUE)} malformed inputs, {len(FAULT_SCENARIOS)} faults, {len(FORMS)} secret forms on {len(SURFACES)} surfaces" in generated
    for case in CATALOGUE:
        assert case.kind in generated and case.code in generated
    for scenario in FAULT_SCENARIOS:
        assert f"`{scenario.name}`" in generated


def test_a_stale_table_is_detected_and_rewritten(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(text.replace("| 7 faults |", "| 6 faults |"))
    monkeypatch.setattr(readme_hardening, "README", readme)
    assert readme_hardening.main(["--check"]) == 1
    assert readme_hardening.main(["--write"]) == 0 and readme.read_text() == text
    assert readme_hardening.main(["--check"]) == 0
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit):
        readme_hardening.main(["--check"])


def test_the_script_runs_on_its_own():
    proc = subprocess.run([sys.executable, "scripts/readme_hardening.py", "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
