"""Fingerprints are shown in openssl's SHA256 colon form (issue 12): upper-case byte pairs
joined by ':' exactly as ``openssl x509 -noout -fingerprint -sha256`` prints them (or its
first 8 bytes and '...'); JSON keeps lower-case hex in fields named sha256/...Sha256."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from meshca import cli
from meshca.certs import colon_fingerprint, fingerprint, load_certs, short_fingerprint

from harness import ROOT

CERTS = ROOT / "samples" / "certs"
COLON = r"[0-9A-F]{2}(?::[0-9A-F]{2}){31}"
SHORT = r"[0-9A-F]{2}(?::[0-9A-F]{2}){7}\.\.\."
HEX_RUN = re.compile(r"\b[0-9a-fA-F]{12,}\b")  # a bare hex fingerprint (or a prefix of one)


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def openssl_fingerprint(path) -> str:
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(path)], capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_colon_form_is_what_openssl_prints():
    for name in ("root-cert.pem", "ca-cert.pem"):
        cert = load_certs((CERTS / name).read_bytes())[0]
        assert colon_fingerprint(fingerprint(cert)) == openssl_fingerprint(CERTS / name)
        assert openssl_fingerprint(CERTS / name).startswith(short_fingerprint(fingerprint(cert))[:-3])


def test_certs_verify_text_shows_only_colon_fingerprints(capsys):
    argv = ["certs", "verify", "--ca-cert", str(CERTS / "ca-cert.pem"), "--ca-key", str(CERTS / "ca-key.pem"), "--root-cert", str(CERTS / "root-cert.pem"), "--cert-chain", str(CERTS / "cert-chain.pem"), "--margin-days", "0"]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    root = colon_fingerprint(fingerprint(load_certs((CERTS / "root-cert.pem").read_bytes())[0]))
    assert f"root of trust: sha256 {root}" in out
    assert re.search(rf"\[0\] sha256 {SHORT} ", out)
    assert not HEX_RUN.search(out), out
    rc, out, _ = run(capsys, *argv, "--json")
    doc = json.loads(out)
    assert re.fullmatch(r"[0-9a-f]{64}", doc["rootSha256"])  # JSON: hex, the documented machine form


def test_plan_text_and_its_offline_warning_use_the_colon_form(capsys):
    rc, out, err = run(capsys, "plan", "--stack", "dev", "--project-dir", str(ROOT))
    assert rc == 0
    assert re.search(rf"root of trust: \S+ sha256 {COLON}$", out, re.M)
    warning = next(line for line in err.splitlines() if " MCA0301 " in line)
    assert re.search(rf"root-cert.pem \({SHORT}\)", warning), warning
    assert not HEX_RUN.search(warning)


def test_a_root_of_trust_mismatch_names_both_roots_in_colon_form(monkeypatch):
    from meshca.trust import runner

    given = load_certs((CERTS / "root-cert.pem").read_bytes())
    other = load_certs((CERTS / "ca-cert.pem").read_bytes())
    monkeypatch.setattr(runner, "live_root", lambda source: (other, "cacerts"))
    doc = runner.check_root_of_trust(None, given, path="certs/root-cert.pem", cluster="dev-1")
    assert doc["ok"] is False and doc["given"] == fingerprint(given[0])  # JSON: hex
    assert re.fullmatch(
        rf"Error MCA0302 certs/root-cert.pem: root-cert.pem is ({COLON}) but cluster dev-1 distributes ({COLON}) \(from cacerts\); fix: .+",
        doc["reason"],
    ), doc["reason"]
    assert doc["reason"].count(colon_fingerprint(fingerprint(other[0]))) == 1


def test_the_rehearsal_log_shows_roots_in_colon_form(capsys):
    rc, out, err = run(capsys, "rehearse", "--clusters", "1", "--namespaces", "1", "--workloads", "1", "--json", "--quiet")
    assert rc == 0, err
    text = json.dumps(json.loads(out))
    roots = re.findall(r"own CA root (?:sha256 )?(\S+)\)", text)
    assert "none" in roots and all(re.fullmatch(SHORT, r) for r in roots if r != "none")


# ----------------------------------------------------------------------------- grep, everywhere


def test_source_prints_sha256_only_through_the_colon_helpers():
    """grep: every `sha256 {...}` a person reads is filled by colon_fingerprint or short_fingerprint."""
    offenders = []
    for path in sorted([*(ROOT / "meshca").rglob("*.py"), *(ROOT / "components").rglob("*.py"), *(ROOT / "policy").rglob("*.py")]):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"sha256 \{([^}]*)\}", line, re.I):
                if not re.search(r"\b(colon_fingerprint|short_fingerprint)\(", m.group(1)):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_no_bare_hex_fingerprint_in_any_text_a_person_reads(capsys, tmp_path):
    """grep the text outputs (not --json): plan of every shipped stack, the rehearsal's table,
    progress, coded lines and HTML report (a scenario whose log names roots)."""
    texts = {}
    for stack in sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml")):
        rc, out, err = run(capsys, "plan", "--stack", stack, "--project-dir", str(ROOT), "--all")
        assert rc == 0, err
        texts[f"plan {stack}"] = out + err
    report = tmp_path / "r.html"
    rc, out, err = run(capsys, "rehearse", "--stack", "dev", "--project-dir", str(ROOT), "--scenario", "cert-expiry", "--report", str(report))
    texts["rehearse"] = out + err
    texts["rehearse report"] = report.read_text(encoding="utf-8")
    assert "sha256 " in texts["rehearse"] and re.search(SHORT, texts["rehearse report"])  # roots are named, in colon form
    found = {name: HEX_RUN.findall(text) for name, text in texts.items()}
    assert {name: runs for name, runs in found.items() if runs} == {}
