"""`-` means stdout wherever a command writes a file (issue 12): rehearse --report -,
overlay citadel-root --output -; two outputs on stdout at once are refused (MCA1004)."""

from __future__ import annotations

import json

import yaml

from meshca import cli

from harness import ROOT

SMALL = ["--clusters", "1", "--namespaces", "2", "--workloads", "1"]


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_rehearse_report_dash_writes_the_page_to_stdout_and_the_table_to_stderr(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "rehearse", "--report", "-", *SMALL)
    assert rc == 0, err
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert "meshca rehearse: stack builtin" in err and "report: -" not in err
    assert not (tmp_path / "-").exists()
    rc, out, err = run(capsys, "rehearse", "--report", "-", "--quiet", *SMALL)
    assert rc == 0 and out.startswith("<!DOCTYPE html>") and err == ""


def test_report_dash_beside_json_is_refused_before_the_rehearsal(capsys):
    rc, out, err = run(capsys, "rehearse", "--report", "-", "--json", *SMALL)
    assert rc == 2
    assert [e["code"] for e in json.loads(out)["errors"]] == ["MCA1004"]
    assert err == "Error MCA1004 --report -: writes to stdout, and so does --json; fix: write one of them to a file (e.g. --report rehearsal.html), or drop --json\n"


def test_overlay_output_dash_prints_the_overlay(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "overlay", "citadel-root", "--root-cert", str(ROOT / "samples" / "certs" / "root-cert.pem"), "--output", "-")
    assert rc == 0 and err == ""
    doc = yaml.safe_load(out)
    assert doc["spec"]["meshConfig"]["caCertificates"][0]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert list(tmp_path.iterdir()) == []
    rc, out2, _ = run(capsys, "overlay", "citadel-root", "--root-cert", str(ROOT / "samples" / "certs" / "root-cert.pem"), "--output", "o.yaml")
    assert rc == 0 and (tmp_path / "o.yaml").read_text() == out
