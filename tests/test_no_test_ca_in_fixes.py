"""An error's fix never suggests the test CA under samples/ (issue 12): the shipped stacks
point at the throwaway samples/certs, so a fix that offered it as an example would steer an
operator onto a CA that must never reach a real mesh. Checked over the whole catalogue and
over every line the bad-input catalogue makes meshca print."""

from __future__ import annotations

import re

import pytest

from bad_inputs import CA_FILES, REFERENCE_FILES, STACK_CONFIG, CertKit
from hardening import main_in_process
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
