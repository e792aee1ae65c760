"""meshca promote between copies of the SHIPPED stack files: the target file keeps every comment
and its layout, namespaces move by role, and every kind of bad evidence is refused with its own
code. The evidence is what the real program exports (tests/harness.py runs it under mocks), as
`pulumi stack output --json` would print it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from harness import ROOT, run_program
from meshca import cli
from meshca import plan as planmod
from meshca.config import load_stack, load_stack_file

STACK_FILES = sorted(ROOT.glob("Pulumi*.yaml"))
REV1 = "asm-11910-9-distribute-root"


def _digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in STACK_FILES}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    before = _digests()
    for path in STACK_FILES:
        shutil.copy(path, tmp_path / path.name)
    for folder in ("samples", "overlays"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    yield tmp_path
    assert _digests() == before, "a test modified the repository's stack files"


def outputs(project: Path, stack: str, overrides: dict | None = None, **kwargs) -> dict:
    """The stack's outputs after a (mocked) pulumi up of its file in ``project``."""
    result = run_program(stack, overrides, stack_file=project / f"Pulumi.{stack}.yaml", **kwargs)
    assert result.error is None, result.error
    return json.loads(json.dumps(result.outputs))


def write(project: Path, name: str, doc) -> Path:
    path = project / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


def promote(project: Path, *args: str, capsys=None) -> tuple[int, str, str]:
    code = cli.main(["promote", *args, "--project-dir", str(project)])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b), "promotion must not add or remove lines"
    return [(x, y) for x, y in zip(a, b) if x != y]


# ----------------------------------------------------------------------------- round trips


def test_dev_to_staging_copies_phase_and_moves_and_keeps_the_file(project, capsys):
    before = (project / "Pulumi.staging.yaml").read_text()
    evidence = write(project, "dev.json", outputs(project, "dev"))
    code, out, err = promote(project, "--from", "dev", "--to", "staging", "--evidence", str(evidence), capsys=capsys)
    assert (code, err) == (0, "")
    assert "phase baseline -> distribute-root" in out
    after = (project / "Pulumi.staging.yaml").read_text()
    assert changed_lines(before, after) == [
        ("  meshca:phase: baseline", "  meshca:phase: distribute-root"),
        ("    frontend: default", f"    frontend: {REV1}"),
        ("    cart: default", f"    cart: {REV1}"),
        ("    checkout: default", f"    checkout: {REV1}"),
    ]
    # Every comment line survived, e.g. the header and "# Promoted from dev: ...".
    assert [line for line in before.splitlines() if line.lstrip().startswith("#")] == [
        line for line in after.splitlines() if line.lstrip().startswith("#")
    ]
    staging, dev = load_stack_file(project / "Pulumi.staging.yaml"), load_stack(project, "dev")
    assert staging.phase == dev.phase and staging.rollback is False
    assert planmod.locate(staging) is not None  # on staging's own route (batch 1)


def test_promotion_chain_dev_staging_prod(project, capsys):
    dev = outputs(project, "dev")
    write(project, "dev.json", dev)
    assert promote(project, "--from", "dev", "--to", "staging", "--evidence", str(project / "dev.json"), capsys=capsys)[0] == 0
    # staging ran its new position (its program reads dev's outputs: not ahead); its outputs promote prod.
    write(project, "staging.json", outputs(project, "staging", stack_outputs={"organization/meshca/dev": dev}))
    before = (project / "Pulumi.prod.yaml").read_text()
    code, _, err = promote(project, "--from", "staging", "--to", "prod", "--evidence", str(project / "staging.json"), capsys=capsys)
    assert (code, err) == (0, "")
    changes = changed_lines(before, (project / "Pulumi.prod.yaml").read_text())
    assert len(changes) == 4 and changes[0] == ("  meshca:phase: baseline", "  meshca:phase: distribute-root")
    # Running the same promotion again changes nothing.
    code, out, _ = promote(project, "--from", "staging", "--to", "prod", "--evidence", str(project / "staging.json"), capsys=capsys)
    assert code == 0 and "nothing to promote" in out


def test_moves_go_by_role_and_keep_namespace_labels(project, capsys):
    # A second upgrade mesh with its own revision names, downstream of csm116.
    source = (project / "Pulumi.csm116.yaml").read_text()
    target = (
        source.replace("asm-11910-9-distribute-root", "asm-11910-9-b-rev1")
        .replace("asm-11910-9-meshca-ca-migration", "asm-11910-9-b-rev2")
        .replace("  meshca:batchSize: 2\n", "  meshca:batchSize: 2\n  meshca:upstreamStack: organization/meshca/csm116\n")
    )
    write(project, "Pulumi.csm116b.yaml", target)
    mapping = {"ingest": REV1, "etl": REV1, "warehouse": REV1, "reporting": REV1, "ml-serving": {"revision": REV1, "labels": {"team": "ml"}}}
    source_doc = source.replace("meshca:phase: baseline", "meshca:phase: distribute-root")
    for ns in ("ingest", "etl", "warehouse", "reporting"):
        source_doc = source_doc.replace(f"    {ns}: asm-1169-3", f"    {ns}: {REV1}")
    source_doc = source_doc.replace("      revision: asm-1169-3", f"      revision: {REV1}")
    write(project, "Pulumi.csm116.yaml", source_doc)
    assert load_stack(project, "csm116").namespace_map == {ns: REV1 for ns in mapping}
    evidence = write(project, "csm116.json", outputs(project, "csm116"))
    code, _, err = promote(project, "--from", "csm116", "--to", "csm116b", "--evidence", str(evidence), capsys=capsys)
    assert (code, err) == (0, "")
    after = (project / "Pulumi.csm116b.yaml").read_text()
    promoted = load_stack_file(project / "Pulumi.csm116b.yaml")
    assert promoted.namespace_map == {ns: "asm-11910-9-b-rev1" for ns in mapping}
    assert promoted.namespace("ml-serving").labels == {"team": "ml"}
    assert "      revision: asm-11910-9-b-rev1\n      labels:\n        team: ml\n" in after


def test_a_missing_phase_key_is_added_after_the_use_case(project, capsys):
    path = project / "Pulumi.staging.yaml"
    path.write_text(path.read_text().replace("  meshca:phase: baseline\n", ""))
    write(project, "dev.json", outputs(project, "dev"))
    assert promote(project, "--from", "dev", "--to", "staging", "--evidence", str(project / "dev.json"), capsys=capsys)[0] == 0
    lines = path.read_text().splitlines()
    assert lines[lines.index("  meshca:useCase: migrate") + 1] == "  meshca:phase: distribute-root"


def test_dry_run_writes_nothing(project, capsys):
    before = (project / "Pulumi.staging.yaml").read_text()
    write(project, "dev.json", outputs(project, "dev"))
    code, out, _ = promote(project, "--from", "dev", "--to", "staging", "--evidence", str(project / "dev.json"), "--dry-run", capsys=capsys)
    assert code == 0 and out.startswith("would promote dev -> staging")
    assert (project / "Pulumi.staging.yaml").read_text() == before


# ----------------------------------------------------------------------------- evidence refusals


def refused(project: Path, capsys, *args: str) -> list[str]:
    before = (project / "Pulumi.staging.yaml").read_text()
    code, out, err = promote(project, "--from", "dev", "--to", "staging", *args, capsys=capsys)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and all(re.match(r"^Error MCA\d{4} ", line) and "; fix: " in line for line in lines)
    assert (project / "Pulumi.staging.yaml").read_text() == before
    return [line.split(" ", 2)[1] for line in lines]


def test_missing_evidence_is_refused(project, capsys):
    assert refused(project, capsys) == ["MCA0700"]
    assert refused(project, capsys, "--evidence", str(project / "nope.json")) == ["MCA0700"]


@pytest.mark.parametrize("content", ["not json {", "[1, 2]", json.dumps({"stack": "dev", "phase": "distribute-root"})], ids=["text", "list", "incomplete"])
def test_unreadable_evidence_is_refused(project, capsys, content):
    assert refused(project, capsys, "--evidence", str(write(project, "bad.json", content))) == ["MCA0701"]


def test_foreign_evidence_is_refused(project, capsys):
    # staging's own outputs are not dev's evidence.
    evidence = write(project, "staging.json", outputs(project, "staging"))
    assert refused(project, capsys, "--evidence", str(evidence)) == ["MCA0702"]


def test_stale_map_is_refused(project, capsys):
    # dev's outputs from an earlier position (batch 0): the stack file has moved on since.
    config = load_stack(project, "dev")
    earlier = planmod.route(config)[1]
    evidence = write(project, "dev.json", outputs(project, "dev", {"namespaces": earlier.namespace_map}))
    assert refused(project, capsys, "--evidence", str(evidence)) == ["MCA0703"]


def test_stale_phase_is_refused(project, capsys):
    # The same map, but the outputs are from a rollback run.
    evidence = write(project, "dev.json", outputs(project, "dev", {"rollback": True}))
    assert refused(project, capsys, "--evidence", str(evidence)) == ["MCA0704"]


def test_failed_gate_is_refused(project, capsys):
    evidence = write(project, "dev.json", outputs(project, "dev", gate_passed=False))
    assert refused(project, capsys, "--evidence", str(evidence)) == ["MCA0706"]


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda gates: gates.pop("dev-1/A0.gate.root-of-trust"), "MCA0705"),
        (lambda gates: gates["dev-1/A0.gate.root-of-trust"].update(namespaceDigest="0" * 64), "MCA0707"),
        (lambda gates: gates["dev-1/A0.gate.root-of-trust"].update(phase="mesh-ca"), "MCA0707"),
        (lambda gates: gates["dev-1/A0.gate.root-of-trust"].update(stack="acme/meshca/staging"), "MCA0708"),
    ],
    ids=["missing", "other-map", "other-phase", "foreign"],
)
def test_bad_gate_results_are_refused(project, capsys, mutate, code):
    doc = outputs(project, "dev")
    mutate(doc["gates"])
    assert refused(project, capsys, "--evidence", str(write(project, "dev.json", doc))) == [code]


def test_same_stack_is_refused(project, capsys):
    code = cli.main(["promote", "--from", "dev", "--to", "dev", "--project-dir", str(project)])
    assert code == 2 and capsys.readouterr().err.startswith("Error MCA0715 ")
