"""`meshca plan` as a preview of the stack's position, on copies of the shipped dev stack.

Expectations transcribed from the route (procedure.md phases A-C as README "The route" tabulates
them, and Pulumi.dev.yaml): dev has 12 namespaces in declaration order and batchSize 3, so the
batches are (frontend, cart, checkout), (payments, catalog, search), (recommendations, shipping,
inventory), (accounts, notifications, ads); the route is baseline, distribute-root with 0..4
batches moved, distribute-root-done, mesh-ca with 0..4 batches moved, mesh-ca-done,
old-root-removed: 14 positions, numbered from baseline = 0. distribute-root adds A0 (root of
trust gate), A1 (verify asmcli, install REV1) once, and A2 (relabel + restart) per namespace of
each batch; old-root-removed adds C0-C4. Shipped dev is at distribute-root with batch 1 moved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import ROOT
from meshca import cli

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


def set_position(project: Path, phase: str, revision_of) -> None:
    from ruamel.yaml import YAML

    rt = YAML()
    path = project / "Pulumi.dev.yaml"
    doc = rt.load(path.read_text())
    doc["config"]["meshca:phase"] = phase
    for ns in NAMESPACES:
        doc["config"]["meshca:namespaces"][ns] = revision_of(ns)
    with path.open("w") as fh:
        rt.dump(doc, fh)


def plan(project: Path, *args: str, capsys) -> tuple[int, str]:
    code = cli.main(["plan", "--stack", "dev", "--project-dir", str(project), *args])
    return code, capsys.readouterr().out


def test_shipped_dev_preview_marks_the_batch_new_and_phase_a_install_done(project, capsys):
    code, out = plan(project, capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("position 2 distribute-root:1 (of 0..13): ")
    steps = [line for line in lines if "] " in line and line[:4] in ("  [A", "+ [A", "~ [A")]
    assert [(line[0], line.split("] ", 1)[1].split(":", 1)[0]) for line in steps] == [
        (" ", "A0.gate.root-of-trust"),
        (" ", "A1.verify-asmcli"),
        (" ", f"A1.install.{REV1}"),
        ("+", "A2.label.frontend"), ("+", "A2.restart.frontend"),
        ("+", "A2.label.cart"), ("+", "A2.restart.cart"),
        ("+", "A2.label.checkout"), ("+", "A2.restart.checkout"),
    ]
    tail = out.split("\n\nsummary: ", 1)[1].splitlines()
    assert tail == [
        "6 to run (6 new +, 0 changed ~), 3 already done, against position 1 distribute-root:0",
        "apply this position:",
        "  pulumi preview --stack dev --policy-pack policy",
        "  pulumi up --stack dev --policy-pack policy",
        f"next position 3 distribute-root:2: distribute-root: batch 2/4 on {REV1} (payments, catalog, search)",
        "  edit Pulumi.dev.yaml (meshca advance --stack dev does it):",
        f"    meshca:namespaces.payments: default -> {REV1}",
        f"    meshca:namespaces.catalog: default -> {REV1}",
        f"    meshca:namespaces.search: default -> {REV1}",
    ]


def test_json_carries_the_same_preview(project, capsys):
    code, out = plan(project, "--json", capsys=capsys)
    assert code == 0
    preview = json.loads(out)["preview"]
    assert preview["position"]["index"] == 2 and preview["position"]["ref"] == "distribute-root:1"
    assert preview["previous"] == {"index": 1, "ref": "distribute-root:0", "name": "1 distribute-root:0"}
    assert preview["summary"] == {"new": 6, "changed": 0, "unchanged": 3, "dropped": 0}
    assert preview["dropped"] == {"dev-1": []}
    assert preview["marks"]["dev-1"]["A2.label.frontend"] == "new"
    assert preview["marks"]["dev-1"]["A0.gate.root-of-trust"] == "unchanged"
    assert preview["commands"] == ["pulumi preview --stack dev --policy-pack policy", "pulumi up --stack dev --policy-pack policy"]
    assert preview["next"]["index"] == 3 and preview["next"]["ref"] == "distribute-root:2"
    assert preview["next"]["edit"] == [
        {"key": f"meshca:namespaces.{ns}", "from": "default", "to": REV1} for ns in ("payments", "catalog", "search")
    ]
    assert preview["complete"] is False


def test_baseline_is_position_0_and_its_next_edit_is_the_phase(project, capsys):
    set_position(project, "baseline", lambda ns: "default")
    code, out = plan(project, capsys=capsys)
    assert code == 0
    assert out.splitlines()[1].startswith("position 0 baseline (of 0..13): ")
    tail = out.split("summary: ", 1)[1].splitlines()
    assert tail[0] == "0 to run (0 new +, 0 changed ~), 0 already done, against nothing (the first position)"
    assert tail[4:] == [
        f"next position 1 distribute-root:0: distribute-root: {REV1} installed, no namespace moved yet",
        "  edit Pulumi.dev.yaml (meshca advance --stack dev does it):",
        "    meshca:phase: baseline -> distribute-root",
    ]


def test_the_last_position_says_the_migration_is_complete(project, capsys):
    set_position(project, "old-root-removed", lambda ns: REV2)
    code, out = plan(project, capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("position 13 old-root-removed (of 0..13): ")
    new = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines if line.startswith("+ [")]
    # Phase C (procedure.md): C0 gate, C1 backups of cacerts and istio-ca-secret, C2 deletes them
    # (and drops the Citadel root REV2 listed), C3 restarts istio-system, C4 gate.
    assert new == ["C0.gate.workload-cert", "C1.backup.cacerts", "C1.backup.istio-ca-secret", "C2.delete-ca-secrets",
                   "C2.drop-citadel-root", "C3.restart-control-plane", "C4.gate.old-root-absent"]
    assert not [line for line in lines if line.startswith(("  [A", "  [B"))]  # --all not given: phase C only
    assert lines[-1] == "the migration is complete: position 13 old-root-removed is the route's last"
    assert not [line for line in lines if line.startswith("next position")]
    doc = json.loads(plan(project, "--json", capsys=capsys)[1])["preview"]
    assert doc["complete"] is True and doc["next"] is None and doc["summary"]["new"] == 7


def test_all_shows_history_unmarked(project, capsys):
    set_position(project, "old-root-removed", lambda ns: REV2)
    code, out = plan(project, "--all", capsys=capsys)
    assert code == 0
    marked = [line for line in out.splitlines() if line.startswith(("+ [", "~ [", "  ["))]
    assert any(line.startswith("  [A1] A1.install.") for line in marked)
    assert all(line.startswith("+ [C") for line in marked if line.startswith("+"))


def test_a_rollback_drops_the_unfinished_moves_and_names_its_return(project, capsys):
    # README "The route": rollback at distribute-root renders A6 (the canary gateways deleted, every
    # moved namespace relabelled back and restarted, istiod-REV1 deleted) and declares only itself;
    # afterwards the phase is set back to baseline with the namespaces on the old revision and
    # rollback false.
    set_position(project, "distribute-root", lambda ns: REV1 if ns in NAMESPACES[:3] else "default")
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("meshca:rollback: false", "meshca:rollback: true"))
    code, out = plan(project, capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("position 2 distribute-root:1 (of 0..13): ") and lines[1].endswith(" (rollback)")
    dropped = [line.split("] ", 1)[1].split(":", 1)[0] for line in lines if line.startswith("- [")]
    assert dropped == [f"A2.{verb}.{ns}" for ns in NAMESPACES[:3] for verb in ("label", "restart")]
    assert all(line.startswith("+ [A6]") for line in lines if line.startswith("+ "))
    tail = out.split("summary: ", 1)[1].splitlines()
    assert tail[0].endswith(", 6 dropped -, against position 2 distribute-root:1")
    assert tail[4:] == [
        "after the rollback, return to position 0 baseline: baseline: the mesh as it runs today",
        "  edit Pulumi.dev.yaml (meshca advance --stack dev --to baseline does it):",
        "    meshca:phase: distribute-root -> baseline",
        "    meshca:rollback: true -> false",
        f"    meshca:namespaces.frontend: {REV1} -> default",
        f"    meshca:namespaces.cart: {REV1} -> default",
        f"    meshca:namespaces.checkout: {REV1} -> default",
    ]
