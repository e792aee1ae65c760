"""The sample evidence (samples/evidence/dev-outputs.json) lets a new user try `meshca promote`
offline, as docs/promotion.md shows: it is what the program exports for the shipped dev stack
(under the test mocks, every gate passed), and `meshca promote` accepts it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil

from harness import ROOT
from meshca import cli

SAMPLE = ROOT / "samples" / "evidence" / "dev-outputs.json"
REV1 = "asm-11910-9-distribute-root"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_sample_evidence", ROOT / "scripts" / "gen-sample-evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sample_is_what_the_program_exports_for_dev():
    assert SAMPLE.read_text(encoding="utf-8") == _generator().render(), (
        "stale sample: run .venv/bin/python scripts/gen-sample-evidence.py --write"
    )
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert doc["stack"] == "dev" and doc["gates"] and all(g["passed"] is True for g in doc["gates"].values())


def test_promote_dry_run_accepts_the_sample_and_writes_nothing(capsys):
    before = hashlib.sha256((ROOT / "Pulumi.staging.yaml").read_bytes()).hexdigest()
    # the command docs/promotion.md gives, from the project directory
    rc = cli.main(["promote", "--from", "dev", "--to", "staging", "--evidence", str(SAMPLE), "--dry-run", "--project-dir", str(ROOT)])
    out, err = capsys.readouterr()
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "would promote dev -> staging: phase baseline -> distribute-root",
        f"  cart: default -> {REV1}",
        f"  checkout: default -> {REV1}",
        f"  frontend: default -> {REV1}",
    ]
    assert hashlib.sha256((ROOT / "Pulumi.staging.yaml").read_bytes()).hexdigest() == before


def test_promote_with_the_sample_rewrites_a_copy_of_staging(tmp_path, capsys):
    for path in ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    for folder in ("samples", "overlays"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    rc = cli.main(["promote", "--from", "dev", "--to", "staging", "--evidence", str(SAMPLE), "--project-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (rc, err) == (0, ""), err
    assert "next: pulumi preview --stack staging --policy-pack policy" in out
    text = (tmp_path / "Pulumi.staging.yaml").read_text()
    assert "  meshca:phase: distribute-root" in text and f"    frontend: {REV1}" in text


def test_a_tampered_sample_is_refused(tmp_path, capsys):
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    for gate in doc["gates"].values():
        gate["passed"] = False
    bad = tmp_path / "dev-outputs.json"
    bad.write_text(json.dumps(doc))
    rc = cli.main(["promote", "--from", "dev", "--to", "staging", "--evidence", str(bad), "--dry-run", "--project-dir", str(ROOT)])
    _, err = capsys.readouterr()
    assert rc == 2 and "Error MCA0706 " in err  # PromoteGateFailed
