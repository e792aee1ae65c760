"""An error's fix never suggests the test CA under samples/ (issue 12): the shipped stacks
point at the throwaway samples/certs, so a fix that offered it as an example would steer an
operator onto a CA that must never reach a real mesh. Checked over the whole catalogue and
over every line the bad-input catalogue makes meshca print."""

from __future__ import annotations

import re

import pytest

from bad_inputs import CA_FILES, REFERENCE_FILES, STACK_CONFIG, CertKit
from hardening import ROOT, main_in_process
from meshca.errors import catalogue, split_line

TEST_CA = re.compile(r"samples/|make certs|gen-test-certs")


def _fix(line: str) -> str:
    parsed = split_line(line)
    assert parsed, line
    return parsed[2].rpartition("; fix: ")[2]


def test_no_catalogue_fix_names_the_test_ca():
    offenders = [m.code for m in catalogue().values() if TEST_CA.search(m.fix) or TEST_CA.search(m.template)]
    assert offenders == []


@pytest.mark.parametrize("case", STACK_CONFIG, ids=lambda c: c.name)
def test_stack_config_fixes(case, tmp_path):
    project = tmp_path / "project"
    path = case.build(project)
    fill = {"stack_file": str(path), "project_dir": str(project)}
    argv = ["plan", *(a.format(**fill) for a in case.argv)] if case.argv else ["plan", "--config", str(path)]
    rc, _, err, _ = main_in_process(argv, cwd=tmp_path)
    assert rc == 2 and err.strip()
    for line in err.splitlines():
        assert not TEST_CA.search(_fix(line)), line


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return CertKit()


@pytest.mark.parametrize("case", CA_FILES, ids=lambda c: c.name)
def test_ca_file_fixes(case, kit, tmp_path):
    paths = case.build(kit, tmp_path / "certs")
    flags = {"ca_cert": "--ca-cert", "ca_key": "--ca-key", "root_cert": "--root-cert", "cert_chain": "--cert-chain"}
    argv = ["certs", "verify", *(x for role, p in paths.items() for x in (flags[role], str(p))), *case.argv]
    rc, _, err, _ = main_in_process(argv, cwd=tmp_path)
    assert rc == 2 and err.strip()
    for line in err.splitlines():
        assert not TEST_CA.search(_fix(line)), line


@pytest.mark.parametrize("case", REFERENCE_FILES, ids=lambda c: c.name)
def test_reference_file_fixes(case, kit, tmp_path):
    argv, _ = case.build(kit, tmp_path / "refs")
    rc, _, err, _ = main_in_process(list(argv), cwd=tmp_path)
    assert rc == 2 and err.strip()
    for line in err.splitlines():
        assert not TEST_CA.search(_fix(line)), line


# ----------------------------------------------------------------------------- filled lines of the shipped stacks
#
# The shipped stacks point at samples/certs, so a template that fills a path into its fix
# (MCA0301 did: `--root-cert {path}`) turns into advice to check the test CA. Every coded
# line `meshca plan` prints for them (offline: MCA0301 per cluster) must keep samples/ out
# of its fix; the subject may name it, since that is the file the stack points at.

SHIPPED = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def test_every_shipped_stack_is_covered():
    assert {"dev", "staging", "prod", "csm116"} <= set(SHIPPED)


@pytest.mark.parametrize("stack", SHIPPED)
@pytest.mark.parametrize("extra", [[], ["--all"]], ids=["position", "all"])
def test_plan_lines_of_the_shipped_stacks(stack, extra):
    rc, _, err, _ = main_in_process(["plan", "--stack", stack, "--project-dir", str(ROOT), *extra], cwd=ROOT)
    assert rc == 0, err
    lines = [line for line in err.splitlines() if split_line(line)]
    assert any(" MCA0301 " in line for line in lines), err  # the offline warning is among them
    for line in lines:
        assert "samples/" in line.split(": ", 1)[0] or " MCA0301 " not in line  # its subject: the file of the stack
        assert not TEST_CA.search(_fix(line)), line


def test_the_offline_warning_names_the_key_not_the_file():
    rc, _, err, _ = main_in_process(["plan", "--stack", "dev", "--project-dir", str(ROOT)], cwd=ROOT)
    warning = next(line for line in err.splitlines() if " MCA0301 " in line)
    # transcribed: the fix names the command and the stack key, with ROOT to fill in
    assert _fix(warning) == (
        "run `meshca check root-of-trust --context gke_acme-mesh-dev_us-central1_dev-1 --root-cert ROOT` "
        "with ROOT the file meshca:caFiles.rootCert names (this line's subject); pulumi up runs this gate before A1"
    )
