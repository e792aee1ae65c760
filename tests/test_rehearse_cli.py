"""``meshca rehearse``: exit codes, JSON-only stdout, coded one-line errors, the HTML report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from meshca.cli import main

ROOT = Path(__file__).resolve().parents[1]
CODED = re.compile(r"^(Error|Warning|Info) MCA\d{4} [^:]+: .+; fix: .+$")
SMALL = ["--clusters", "1", "--namespaces", "2", "--workloads", "1", "--quiet"]


def rehearse(capsys, *args):
    rc = main(["rehearse", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_dev_stack_json_is_the_only_stdout_and_passes(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = rehearse(capsys, "--stack", "dev", "--json")
    assert rc == 0
    doc = json.loads(out)
    assert {"stack", "scenario", "assumptions", "steps", "summary"} <= set(doc)
    assert doc["stack"] == "dev" and doc["scenario"] == "canary"
    # the pinned ca-migration-meshca.yaml sets ENABLE_CA_SERVER: false (issue 9 finding 14)
    assert doc["assumptions"]["rev2-runs-citadel-ca"] is False and doc["assumptions"]["overlay-aliases"] == "replace"
    assert set(doc["summary"]) >= {"steps", "handshakes", "handshakesFailed", "gatesFailed", "firstBrokenStep"}
    assert doc["summary"]["firstBrokenStep"] is None and doc["summary"]["handshakesFailed"] == 0
    for step in doc["steps"]:
        assert {"index", "phase", "step", "handshakes", "failedPairs", "gates"} <= set(step)
        assert set(step["handshakes"]) == {"ok", "failed"}
    assert [s["index"] for s in doc["steps"]] == list(range(len(doc["steps"])))
    phases = {s["phase"] for s in doc["steps"]}
    assert phases == {"baseline", "distribute-root", "distribute-root-done", "mesh-ca", "mesh-ca-done", "old-root-removed"}
    assert "[1/14] baseline" in err  # progress goes to stderr
    assert "PRIVATE KEY" not in out


def test_failed_gate_exits_1_naming_the_step(capsys):
    rc, out, err = rehearse(capsys, "--scenario", "skip-restart", "--json", *SMALL)
    assert rc == 1
    doc = json.loads(out)
    line = err.strip().splitlines()[-1]
    assert CODED.match(line) and line.startswith("Error MCA0512 ")
    assert f"step {doc['summary']['firstBrokenStep']} cluster-1:A3.gate.root-cert" in line


def test_broken_mtls_exits_1_naming_the_first_broken_step(capsys):
    rc, out, err = rehearse(capsys, "--scenario", "big-bang", *SMALL)
    assert rc == 1
    line = err.strip().splitlines()[-1]
    assert CODED.match(line) and line.startswith("Error MCA0511 ") and "A2.restart.frontend" in line
    assert "meshca rehearse: stack builtin, scenario big-bang" in out  # the table


@pytest.mark.parametrize(
    "args,code",
    [
        (["--scenario", "nope"], "MCA0501"),
        (["--stack", "nope"], "MCA0108"),
        (["--assume", "bogus=1"], "MCA0502"),
        (["--assume", "rev2-runs-citadel-ca=maybe"], "MCA0503"),
        (["--clusters", "0"], "MCA0504"),
        (["--traffic", "/nonexistent/edges.yaml"], "MCA0505"),
        (["--stack", "dev", "--namespaces", "3"], "MCA0514"),
        (["--bogus-flag"], "MCA0901"),
    ],
)
def test_usage_errors_are_one_coded_line_and_exit_2(capsys, monkeypatch, args, code):
    monkeypatch.chdir(ROOT)
    rc, out, err = rehearse(capsys, *args)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].split()[1] == code and CODED.match(lines[0])


def test_switches_and_scenarios_are_listed(capsys):
    rc, out, _ = rehearse(capsys, "--list")
    assert rc == 0
    for name in ("canary", "big-bang", "skip-restart", "early-secret-delete", "wrong-root", "rollback-a", "rollback-b", "rev2-runs-citadel-ca", "overlay-aliases", "phase-c-new-root", "authz-names-principals"):
        assert name in out


def test_assume_changes_the_verdict_and_is_reported(capsys):
    # The guide's literal REV2 install: its verdict rests on REV2's istiod running a CA.
    rc, out, err = rehearse(capsys, "--scenario", "no-root-overlay", "--assume", "rev2-runs-citadel-ca=off", "--json", *SMALL)
    doc = json.loads(out)
    assert rc == 1 and doc["assumptions"]["rev2-runs-citadel-ca"] is False
    assert doc["steps"][doc["summary"]["firstBrokenStep"]]["step"].startswith("B2.restart.")
    assert "B2.restart." in err.strip().splitlines()[-1]
    # The plan's default (REV2 lists the Citadel root itself) holds under the same assumption.
    rc, out, _ = rehearse(capsys, "--assume", "rev2-runs-citadel-ca=off", "--json", *SMALL)
    doc = json.loads(out)
    assert rc == 0 and doc["assumptions"]["rev2-runs-citadel-ca"] is False and doc["summary"]["handshakesFailed"] == 0


def test_preflight_flag(capsys):
    rc, out, _ = rehearse(capsys, "--scenario", "wrong-root", "--json", *SMALL)
    assert rc == 1 and json.loads(out)["steps"][1]["step"] == "A0.gate.root-of-trust"
    rc, out, _ = rehearse(capsys, "--scenario", "wrong-root", "--no-preflight", "--json", *SMALL)
    doc = json.loads(out)
    assert rc == 1 and not any(s["step"].startswith("A0.") for s in doc["steps"]) and doc["summary"]["handshakesFailed"] > 0


def test_traffic_file_limits_the_pairs(capsys, tmp_path):
    edges = tmp_path / "edges.yaml"
    edges.write_text("edges:\n  - {from: frontend/api, to: cart/api, clusters: same}\ngateways: false\n")
    rc, out, _ = rehearse(capsys, "--traffic", str(edges), "--json", *SMALL)
    doc = json.loads(out)
    assert rc == 0 and all(s["handshakes"]["ok"] == 1 for s in doc["steps"])


def test_report_is_one_self_contained_page(capsys, tmp_path):
    report = tmp_path / "r.html"
    # One namespace per batch: after the first batch the others still run REV1.
    rc, _, err = rehearse(capsys, "--scenario", "early-secret-delete", "--report", str(report), "--clusters", "1", "--namespaces", "3", "--batch-size", "1", "--workloads", "1", "--quiet")
    assert rc == 1
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</html>" in page
    for forbidden in ("http://", "https://", "<script", "<link", "src=", "@import", "@font-face"):
        assert forbidden not in page
    for switch in ("rev2-runs-citadel-ca", "overlay-aliases", "phase-c-new-root", "authz-names-principals"):
        assert switch in page
    assert "C3.restart-control-plane" in page and "FAIL: first broken at step" in page


def test_report_path_unwritable(capsys, tmp_path):
    rc, _, err = rehearse(capsys, "--report", str(tmp_path / "missing" / "r.html"), *SMALL)
    assert rc == 2 and err.strip().startswith("Error MCA0513 ")


def test_console_script_entry_point(tmp_path):
    """What `make rehearse` runs: the installed command, exit 0, the report written."""
    exe = Path(sys.executable).with_name("meshca")
    report = tmp_path / "rehearsal.html"
    proc = subprocess.run([str(exe), "rehearse", "--stack", "dev", "--report", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report.exists() and "PASS" in proc.stdout


def test_what_if_shows_what_each_other_setting_predicts(capsys):
    rc, out, _ = rehearse(capsys, "--what-if", "--json", *SMALL)
    doc = json.loads(out)
    assert rc == 0  # the verdict itself rests on the defaults
    by = {(w["switch"], w["value"]): w for w in doc["whatIf"]}
    assert set(name for name, _ in by) == set(doc["assumptions"])
    # REV2 lists the Citadel root itself (meshca:rev2CitadelRoot): calls never rest on REV2 running a
    # CA; a REV2 that runs one (a later asmcli) self-signs a new root, which C4 refuses (finding 14).
    rev2 = by[("rev2-runs-citadel-ca", True)]
    assert rev2["handshakesFailed"] == 0 and rev2["gatesFailed"] == 1 and rev2["step"].endswith("C4.gate.old-root-absent")
    aliases = by[("citadel-keeps-base-aliases", False)]
    assert aliases["step"] == "cluster-1:B1.gate.trust-domain" and aliases["gatesFailed"] == 1


def test_what_if_on_the_guides_literal_path_shows_the_rev2_ca_finding(capsys):
    rc, out, err = rehearse(capsys, "--scenario", "no-root-overlay", "--what-if", "--json", *SMALL)
    doc = json.loads(out)
    # the guide's literal path breaks at the first B2 restart on the pinned overlay (the default) ...
    assert rc == 1 and doc["steps"][doc["summary"]["firstBrokenStep"]]["step"] == "B2.restart.frontend"
    assert doc["summary"]["handshakesFailed"] > 0
    by = {(w["switch"], w["value"]): w for w in doc["whatIf"]}
    rev2 = by[("rev2-runs-citadel-ca", True)]  # ... and holds its calls only where REV2 runs a CA
    assert rev2["handshakesFailed"] == 0
