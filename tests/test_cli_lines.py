"""The command line's message format: every coded line is

    ``<Level> MCA#### <subject>: <problem>; fix: <fix>``

with the level of the message's catalogue entry, as ``istioctl analyze`` prints its messages
(``Error [IST0101] (...) ...``: level first). With ``--json`` the errors are also one JSON document
on stdout, ``{"ok": false, "errors": [...]}``, exit 2. ``meshca explain`` prints an entry and
``meshca --version`` the installed version.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from hardening import ROOT, main_in_process

LINE = re.compile(r"^(Error|Warning|Info) MCA\d{4} [^:]+: .+; fix: .+$")


def catalogue_entry(code: str) -> dict:
    """Read straight from the YAML file, not through meshca.errors."""
    entries = yaml.safe_load((ROOT / "meshca" / "messages.yaml").read_text())["messages"]
    [entry] = [e for e in entries if e["code"] == code]
    return entry


def test_every_catalogue_level_is_one_of_the_three_levels():
    entries = yaml.safe_load((ROOT / "meshca" / "messages.yaml").read_text())["messages"]
    assert {e["level"] for e in entries} <= {"Error", "Warning", "Info"}


def test_an_error_line_starts_with_its_level_then_its_code():
    rc, out, err, _ = main_in_process(["plan", "--stack", "nope", "--project-dir", str(ROOT)])
    assert (rc, out) == (2, "")
    [line] = err.splitlines()
    assert LINE.match(line)
    assert line.startswith("Error MCA0108 --stack nope: no stack file Pulumi.nope.yaml in ")


def test_a_warning_line_carries_the_warning_level():
    # meshca plan warns offline that the root of trust is unverified (MCA0301, level Warning in the catalogue)
    assert catalogue_entry("MCA0301")["level"] == "Warning"
    rc, _, err, _ = main_in_process(["plan", "--stack", "dev", "--project-dir", str(ROOT)])
    assert rc == 0
    lines = err.splitlines()
    assert lines and all(LINE.match(line) for line in lines)
    assert any(line.startswith("Warning MCA0301 ") for line in lines)


def test_json_errors_go_to_stdout_as_one_document_with_exit_2():
    rc, out, err, _ = main_in_process(["plan", "--stack", "nope", "--project-dir", str(ROOT), "--json"])
    assert rc == 2
    doc = json.loads(out)
    assert doc["ok"] is False and len(doc["errors"]) == 1
    [e] = doc["errors"]
    assert (e["level"], e["code"], e["subject"]) == ("Error", "MCA0108", "--stack nope")
    assert e["line"] == err.strip()


def test_json_usage_errors_too():
    rc, out, err, _ = main_in_process(["plan", "--json"])
    assert rc == 2
    [e] = json.loads(out)["errors"]
    assert e["code"] == "MCA0901" and err.startswith("Error MCA0901 meshca plan: ")


def test_explain_prints_the_catalogue_entry():
    entry = catalogue_entry("MCA0131")
    rc, out, err, _ = main_in_process(["explain", "MCA0131"])
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == f"MCA0131 {entry['name']} ({entry['level']})"
    assert f"problem: {entry['template']}" in out and f"fix:     {entry['fix']}" in out


def test_explain_accepts_a_name_and_json():
    rc, out, _, _ = main_in_process(["explain", "--json", "PhaseContradictsNamespaces"])
    assert rc == 0 and json.loads(out)["code"] == "MCA0131"


def test_explain_of_an_unknown_code_is_one_coded_line():
    rc, out, err, _ = main_in_process(["explain", "MCA9999"])
    assert (rc, out) == (2, "")
    assert err.strip() == (
        "Error MCA0902 MCA9999: no such message code or name in the catalogue; "
        "fix: pass a code as printed (MCA0131) or a message name; every code is in meshca/messages.yaml"
    )


def test_version_as_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "meshca", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and re.fullmatch(r"meshca \d+\.\d+\.\d+\n", proc.stdout), proc


@pytest.mark.parametrize("argv", [["explain", "--help"], ["--help"]])
def test_help_has_a_description(argv, capsys):
    from meshca.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: meshca" in capsys.readouterr().out
