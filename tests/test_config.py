"""Stack config validation: every problem is one coded line naming the key; nothing else runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshca.config import load_stack_file
from meshca.errors import MeshcaErrors

from harness import ROOT


def stack_copy(tmp_path: Path, stack: str = "dev", mutate=None) -> Path:
    """A copy of a shipped stack (with Pulumi.yaml and the sample certs) to break on purpose."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "samples", tmp_path / "samples", dirs_exist_ok=True)
    shutil.copytree(ROOT / "overlays", tmp_path / "overlays", dirs_exist_ok=True)
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    if mutate:
        mutate(doc["config"])
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def codes(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(MeshcaErrors) as info:
        load_stack_file(path)
    return [(e.code, e.subject) for e in info.value.errors]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshca", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "csm116"])
def test_every_shipped_stack_plans_as_json(stack):
    proc = run_cli("plan", "--config", f"Pulumi.{stack}.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["stack"] == stack
    assert {"stack", "useCase", "phase", "rollback", "route", "clusters"} <= set(doc)
    for cluster in doc["clusters"]:
        assert {"name", "context", "steps"} <= set(cluster)
        for step in cluster["steps"]:
            assert {"id", "phase", "action", "argv", "objects", "dependsOn"} <= set(step)
    # Offline, the root of trust is reported as not verifiable: a coded warning per cluster.
    assert all(line.startswith("Warning MCA0301 ") for line in proc.stderr.splitlines())


def test_invalid_revision_name_is_refused_with_one_coded_line(tmp_path):
    path = stack_copy(tmp_path, mutate=lambda c: c.update({"meshca:rev2": "ASM_1.19"}))
    proc = run_cli("plan", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error MCA0110 meshca:rev2: ") and "; fix: " in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_key_is_refused_with_a_suggestion(tmp_path):
    path = stack_copy(tmp_path, mutate=lambda c: c.update({"meshca:rollbak": True}))
    proc = run_cli("plan", "--config", str(path))
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("Error MCA0102 meshca:rollbak: unknown config key (did you mean meshca:rollback?)")


def test_revision_name_of_57_characters_does_not_fit_istiod_rev(tmp_path):
    name = "a" * 57
    assert codes(stack_copy(tmp_path, mutate=lambda c: c.update({"meshca:rev2": name}))) == [("MCA0111", "meshca:rev2")]
    ok = "a" * 56
    load_stack_file(stack_copy(tmp_path, mutate=lambda c: c.update({"meshca:rev2": ok})))


def test_clusters_in_two_projects_are_refused(tmp_path):
    def two_projects(c):
        c["meshca:clusters"][1]["project"] = "other-project"

    assert codes(stack_copy(tmp_path, "staging", two_projects)) == [("MCA0120", "meshca:clusters")]


def test_namespace_on_an_undeclared_revision(tmp_path):
    path = stack_copy(tmp_path, mutate=lambda c: c["meshca:namespaces"].update({"cart": "asm-1180-1"}))
    assert codes(path) == [("MCA0130", "meshca:namespaces.cart")]


@pytest.mark.parametrize(
    "phase,namespace,revision",
    [
        ("mesh-ca", "payments", "default"),  # phase B while a namespace is still on the old revision
        ("old-root-removed", "payments", "asm-11910-9-distribute-root"),  # phase C while one is on REV1
        ("baseline", "frontend", "asm-11910-9-distribute-root"),
        ("distribute-root", "frontend", "asm-11910-9-meshca-ca-migration"),
    ],
)
def test_phase_that_does_not_follow_from_the_namespace_map(tmp_path, phase, namespace, revision):
    def mutate(c):
        everyone = {"mesh-ca": "asm-11910-9-distribute-root", "old-root-removed": "asm-11910-9-meshca-ca-migration"}.get(phase)
        if everyone:
            c["meshca:namespaces"] = {k: everyone for k in c["meshca:namespaces"]}
        c["meshca:phase"] = phase
        c["meshca:namespaces"][namespace] = revision

    found = codes(stack_copy(tmp_path, mutate=mutate))
    assert ("MCA0131", "meshca:phase") in found
    with pytest.raises(MeshcaErrors) as info:
        load_stack_file(stack_copy(tmp_path, mutate=mutate))
    assert any(namespace in e.problem and e.fix for e in info.value.errors)


def test_rollback_only_where_the_guide_has_one(tmp_path):
    def mutate(c):
        c["meshca:phase"] = "baseline"
        c["meshca:namespaces"] = {k: "default" for k in c["meshca:namespaces"]}
        c["meshca:rollback"] = True

    assert codes(stack_copy(tmp_path, mutate=mutate)) == [("MCA0132", "meshca:rollback")]


def test_secure_ciphertext_and_pem_text_are_refused(tmp_path):
    def mutate(c):
        c["meshca:fleetProject"] = {"secure": "v1:abcd"}
        c["meshca:asmcliPath"] = "-----BEGIN RSA PRIVATE KEY-----\nMIIE..."

    assert codes(stack_copy(tmp_path, mutate=mutate)) == [("MCA0106", "meshca:fleetProject"), ("MCA0109", "meshca:asmcliPath")]


def test_both_injection_labels_are_refused(tmp_path):
    def mutate(c):
        c["meshca:namespaces"]["ads"] = {"revision": "default", "labels": {"istio.io/rev": "asm-11910-9-distribute-root"}}

    assert codes(stack_copy(tmp_path, mutate=mutate)) == [("MCA0137", "meshca:namespaces.ads.labels.istio.io/rev")]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    def mutate(c):
        c["meshca:rev2"] = "Bad Name"
        c["meshca:colour"] = "blue"
        del c["meshca:fleetProject"]

    assert sorted(code for code, _ in codes(stack_copy(tmp_path, mutate=mutate))) == ["MCA0102", "MCA0103", "MCA0110"]


def test_values_from_the_engine_are_strings_and_json(tmp_path):
    from meshca.config import from_pulumi_config

    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    engine["meshca:rollback"] = "false"
    engine["meshca:batchSize"] = "3"
    engine["kubernetes:context"] = "ignored"
    config = from_pulumi_config(engine, "dev", ROOT)
    assert config == load_stack_file(ROOT / "Pulumi.dev.yaml").__class__(**{**config.__dict__})
    assert config.batch_size == 3 and config.rollback is False and len(config.clusters) == 1


def test_a_migration_option_is_not_an_extra_option(tmp_path):
    path = stack_copy(tmp_path, mutate=lambda c: c.update({"meshca:extraOptions": ["ca-migration-meshca"]}))
    assert codes(path) == [("MCA0144", "meshca:extraOptions")]
