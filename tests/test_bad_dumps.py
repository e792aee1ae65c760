"""Bad proxy-dump inputs (tests/bad_inputs.py REFERENCE_FILES and PROXY_DUMPS).

A bad reference root file on the command line is an input error: exit 2, one coded line,
neither kubectl nor istioctl started. A malformed secret dump of ONE proxy is that pod's
problem: ``meshca check --source istioctl`` (the fake kubectl/istioctl of tests/fakes) reports
the pod as ``error`` with the dump's own code in its JSON ``reason``, judges every other pod as
usual and exits 1 with one run-level coded line."""

from __future__ import annotations

import json

import pytest

from bad_inputs import PROXY_DUMPS, REFERENCE_FILES, CertKit
from fakes.trust_cluster import fake_env, make_pki, read_log, standard_cluster
from hardening import main_in_process, run_meshca, subject_of, tripwire_calls, write_tripwires

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def kit() -> CertKit:
    return CertKit()


@pytest.mark.parametrize("case", REFERENCE_FILES, ids=lambda c: c.name)
def test_a_bad_reference_file_is_exit_2_before_any_tool_runs(case, kit, tmp_path):
    argv, path = case.build(kit, tmp_path / "refs")
    subject = case.subject.format(path=str(path))
    tripwire = write_tripwires(tmp_path)
    proc = run_meshca(argv, tripwire=tripwire, cwd=tmp_path)
    rc, out, err, events = main_in_process(argv, cwd=tmp_path)
    for code, stdout, stderr in ((proc.returncode, proc.stdout, proc.stderr), (rc, out, err)):
        assert "Traceback" not in stderr
        assert code == 2
        lines = stderr.splitlines()
        assert len(lines) == 1, lines
        # --json: the same one error is the only document on stdout; otherwise stdout is empty
        assert [e["line"] for e in json.loads(stdout)["errors"]] == lines if "--json" in argv else stdout == ""
        assert lines[0].startswith(f"Error {case.code} ") and subject_of(lines[0], subject).fix.strip()
    assert tripwire_calls(tripwire) == [] and events == []


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    p = make_pki()
    c = standard_cluster(p)
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "meshca-root.pem").write_bytes(p.meshca_root.cert_pem)
    (refs / "root-cert.pem").write_bytes(p.citadel_root.cert_pem)

    def write():
        root = c.write(tmp_path / "cluster")
        env = fake_env(root, tmp_path / "calls.log")
        for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
            monkeypatch.setenv(k, env[k])
        return ["--source", "istioctl", "--meshca-root", str(refs / "meshca-root.pem"), "--citadel-root", str(refs / "root-cert.pem")]

    return p, c, write, tmp_path / "calls.log"


RUN_LEVEL = {"root-cert": "MCA0440", "workload-cert": "MCA0441"}


@pytest.mark.parametrize("case", PROXY_DUMPS, ids=lambda c: c.name)
def test_a_malformed_dump_makes_only_that_pod_an_error(case, cluster):
    p, c, write, log = cluster
    c.add_pod("shop", "bad-0", dump=case.build(p), replicaset="bad-5c7d", template_hash="5c7d")
    flags = write()
    rc, out, err, _ = main_in_process(["check", case.check, *flags, "--json"])
    assert "Traceback" not in err
    assert rc == 1
    doc = json.loads(out)  # stdout is the JSON document and nothing else
    pods = {f"{e['namespace']}/{e['pod']}": e for e in doc["pods"]}
    bad = pods.pop(case.subject)
    assert bad["status"] == "error"
    assert bad["reason"].startswith(f"Error {case.code} ") and subject_of(bad["reason"], case.subject).fix.strip()
    assert pods and all(e["status"] == "ok" for e in pods.values())  # the others are judged as usual
    assert doc["summary"]["errors"] == 1 and doc["ok"] is False
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error {RUN_LEVEL[case.check]} ") and f"{case.subject} ({case.code} " in lines[0]
    assert ("istioctl", "proxy-config", "secret", "bad-0", "-n", "shop", "-o", "json") in read_log(log)
    # The text report shows the pod's own code too.
    rc, out, _, _ = main_in_process(["check", case.check, *flags])
    assert rc == 1 and f" - bad-0.shop ERROR: {case.code} " in out


def test_a_dump_cut_inside_a_string_is_worded_once():
    from meshca.trust.dumps import DumpError, parse_dump

    with pytest.raises(DumpError) as info:
        parse_dump(b'{"dynamicActiveSecrets": [{"name": "ROOTCA", "sec', "shop/bad-0")
    assert info.value.code == "MCA0401"
    assert " at at " not in info.value.problem
    assert "cut inside a string that starts at line 1 column" in info.value.problem
