"""Bad CA files (tests/bad_inputs.py CA_FILES), real X.509 from a fresh RSA CA: refused by
``meshca certs verify`` (real process with tripwires, and in-process under the audit hook),
and, through a stack pointing at them, by ``meshca plan`` and the Pulumi program. Plus what
``meshca certs verify`` prints when the files are good."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from bad_inputs import CA_FILES, CONFIG_FIELD, ROLES, Case, CertKit
from hardening import main_in_process, run_meshca, stack_copy, subject_of, tripwire_calls, write_tripwires
from harness import run_program
from meshca.certs import colon_fingerprint, fingerprint

STACK_CASES = [c for c in CA_FILES if c.via_stack]


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return CertKit()


def verify_argv(paths: dict[str, Path], *extra: str) -> list[str]:
    flags = {"ca_cert": "--ca-cert", "ca_key": "--ca-key", "root_cert": "--root-cert", "cert_chain": "--cert-chain"}
    return ["certs", "verify", *(x for role in ROLES for x in (flags[role], str(paths[role]))), *extra]


def assert_one_line(case: Case, subject: str, rc: int, err: str) -> None:
    assert "Traceback" not in err
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines}"
    coded = subject_of(lines[0], subject)
    assert coded.code == case.code and lines[0].startswith(f"Error {case.code} "), lines[0]
    assert coded.problem.strip() and coded.fix.strip()


@pytest.mark.parametrize("case", CA_FILES, ids=lambda c: c.name)
def test_certs_verify_refuses_it_as_a_real_process(case, kit, tmp_path):
    paths = case.build(kit, tmp_path / "certs")
    tripwire = write_tripwires(tmp_path)
    proc = run_meshca(verify_argv(paths, *case.argv), tripwire=tripwire, cwd=tmp_path)
    assert_one_line(case, case.subject.format(**{r: str(p) for r, p in paths.items()}), proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert tripwire_calls(tripwire) == []  # asmcli's own openssl checks never ran: meshca decided alone


@pytest.mark.parametrize("case", CA_FILES, ids=lambda c: c.name)
def test_certs_verify_refuses_it_in_process_with_json(case, kit, tmp_path):
    paths = case.build(kit, tmp_path / "certs")
    rc, out, err, events = main_in_process(verify_argv(paths, *case.argv, "--json"), cwd=tmp_path)
    subject = case.subject.format(**{r: str(p) for r, p in paths.items()})
    assert_one_line(case, subject, rc, err)
    assert events == []
    doc = json.loads(out)  # --json: only JSON on stdout, the same problem in it
    assert doc["ok"] is False and [(e["code"], e["subject"]) for e in doc["errors"]] == [(case.code, subject)]


def stack_for(paths: dict[str, Path], directory: Path) -> Path:
    def mutate(c):
        c["meshca:caFiles"] = {CONFIG_FIELD[role]: str(p) for role, p in paths.items()}

    return stack_copy(directory, "dev", mutate)


@pytest.mark.parametrize("case", STACK_CASES, ids=lambda c: c.name)
def test_a_stack_pointing_at_them_is_refused_and_registers_nothing(case, kit, tmp_path, monkeypatch):
    paths = case.build(kit, tmp_path / "certs")
    subject = case.subject.format(**{r: str(p) for r, p in paths.items()})
    path = stack_for(paths, tmp_path / "project")
    rc, out, err, events = main_in_process(["plan", "--config", str(path)], cwd=tmp_path)
    assert_one_line(case, subject, rc, err)
    assert out == "" and events == []
    logged: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda message, *a, **k: logged.append(message))
    monkeypatch.chdir(path.parent)
    result = run_program("dev", stack_file=path)
    assert result.resources == [] and result.calls == [] and "nothing was registered" in str(result.error)
    assert len(logged) == 1 and logged[0].startswith(f"Error {case.code} ") and subject_of(logged[0], subject).fix


def test_the_expiry_margin_is_not_part_of_the_stack_pre_flight():
    assert [c.code for c in CA_FILES if not c.via_stack] == ["MCA0211"]


# ----------------------------------------------------------------------------- good files


def test_good_files_pass_with_fingerprints_and_expiries_and_no_key(kit, tmp_path):
    paths = kit.write(tmp_path / "certs")
    rc, out, err, events = main_in_process(verify_argv(paths))
    assert (rc, err, events) == (0, "", [])
    assert out.startswith("meshca certs verify: PASS")
    assert colon_fingerprint(fingerprint(kit.root.cert)) in out and colon_fingerprint(fingerprint(kit.ca.cert)) in out
    assert kit.ca.cert.not_valid_after_utc.isoformat() in out
    assert "RSA 2048-bit private key, matches ca-cert.pem" in out and "30 more days" in out
    key_body = b"".join(kit.ca.key_pem.splitlines()[1:-1]).decode()
    assert all(line.decode() not in out for line in kit.ca.key_pem.splitlines()[1:-1]) and key_body[:40] not in out


def test_good_files_as_json(kit, tmp_path):
    paths = kit.write(tmp_path / "certs")
    rc, out, err, _ = main_in_process(verify_argv(paths, "--json", "--margin-days", "60"))
    assert rc == 0 and err == ""
    doc = json.loads(out)
    assert doc["ok"] is True and doc["marginDays"] == 60 and doc["errors"] == []
    assert doc["rootSha256"] == fingerprint(kit.root.cert)
    assert doc["files"]["caCert"]["sha256"] == fingerprint(kit.ca.cert) and doc["files"]["caCert"]["isCa"] is True
    assert doc["files"]["rootCert"]["selfSigned"] is True
    assert [c["sha256"] for c in doc["files"]["certChain"]["certificates"]] == [fingerprint(kit.ca.cert), fingerprint(kit.root.cert)]
    assert doc["files"]["caKey"] == {"path": str(paths["ca_key"]), "kind": "RSA 2048-bit", "matchesCaCert": True}


def test_the_margin_is_a_stated_number_of_days(kit, tmp_path):
    paths = kit.write(tmp_path / "certs", ca=kit.short_ca)  # expires in 10 days
    assert main_in_process(verify_argv(paths, "--margin-days", "9"))[0] == 0
    rc, _, err, _ = main_in_process(verify_argv(paths))  # the default, 30 days
    assert rc == 2 and err.startswith("Error MCA0211 ") and "30-day margin" in err
    rc, _, err, _ = main_in_process(verify_argv(paths, "--margin-days", "0"))
    assert rc == 0
    rc, _, err, _ = main_in_process(verify_argv(paths, "--margin-days", "-1"))
    assert rc == 2 and err.startswith("Error MCA0901 meshca certs verify: ")


def test_every_problem_is_its_own_line(kit, tmp_path):
    names = {"ca_cert": "a.pem", "ca_key": "b.pem", "root_cert": "c.pem", "cert_chain": "d.pem"}
    paths = kit.write(tmp_path / "certs", names=names, key_pem=kit.other[1].key_pem)
    rc, out, err, _ = main_in_process(verify_argv(paths))
    assert rc == 2 and out == ""
    assert sorted(line.split(" ", 2)[1] for line in err.splitlines()) == ["MCA0204"] * 4 + ["MCA0206"]


def test_the_self_signed_ca_of_istio_on_gke_passes(kit, tmp_path):
    """istio-ca-secret holds a self-signed root and its key: ca-cert = root-cert = cert-chain."""
    paths = kit.write(tmp_path / "certs", ca=kit.root, chain=[kit.root])
    rc, out, err, _ = main_in_process(verify_argv(paths))
    assert (rc, err) == (0, ""), err
