"""No output of meshca ever carries the CA key.

A canary CA (a fresh RSA root and intermediate, made for this test run) is written to disk and
a copy of the dev stack points at it. Then every surface meshca has runs against it and every
output is scanned for the canary key in each form of tests/secret_scan.py FORMS: stdout and
stderr of ``meshca plan``, ``meshca certs verify``, ``meshca check`` (both sources, the cluster's
``cacerts`` holding the canary key) and ``meshca rehearse`` (table, JSON, HTML report); the
Pulumi program under mocks at every position of the route (every resource's inputs and
outputs, the exports, the invokes, the log); the phase C backup and deletion providers (their
outputs and their errors); and every file meshca wrote. The only copies allowed are the key
file itself and the phase C backups, which must be 0600.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pytest

from fakes.trust_cluster import FAKE_BIN, Cluster, fake_env, make_pki, sidecar_dump
from hardening import ROOT, main_in_process, stack_copy
from harness import run_program
from kube_api_server import KubeApiServer
from meshca import pki
from meshca import plan as planmod
from meshca.config import load_stack_file
from meshca.providers.ca_secrets import CaSecretBackupProvider, CaSecretDeletionProvider
from secret_scan import FORMS, SURFACES, KeyScanner

WORKLOADS_FAKE = Path(__file__).parent / "fakes" / "workloads"


@dataclass
class Canary:
    root: pki.Issued
    ca: pki.Issued
    project: Path
    stack: Path
    files: dict[str, Path]
    scanner: KeyScanner

    def assert_clean(self, surface: str, blobs) -> int:
        assert surface in SURFACES
        blobs = list(blobs)
        assert blobs, surface
        leaks = self.scanner.scan_all(blobs)
        assert not leaks, f"the CA key leaked on {surface}: {leaks}"
        return len(blobs)


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Canary:
    base = tmp_path_factory.mktemp("canary")
    root, ca = pki.citadel_ca("meshca-CANARY-do-not-leak")
    project = base / "project"

    def mutate(c):
        c["meshca:caFiles"] = {"caCert": "canary/ca-cert.pem", "caKey": "canary/ca-key.pem", "rootCert": "canary/root-cert.pem", "certChain": "canary/cert-chain.pem"}

    stack = stack_copy(project, "dev", mutate)
    files = pki.write_ca_files(project / "canary", root, ca)
    return Canary(root, ca, project, stack, files, KeyScanner(ca.key_pem))


def written_since(before: set[Path], directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p not in before)


def files_of(directory: Path) -> set[Path]:
    return {p for p in directory.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- the scanner itself


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_the_scanner_finds_the_key_in_each_form(form, canary):
    assert form.name in canary.scanner.scan(canary.scanner.planted(form))


def test_the_scanner_does_not_cry_wolf(canary):
    """Other RSA keys of the same size (whose encodings share the canary's first bytes) in every
    form but the header, and the canary's public certificates, are not the canary key."""
    from cryptography.hazmat.primitives import serialization

    blobs = [canary.ca.cert_pem.decode(), base64.b64encode(canary.root.cert_pem + canary.ca.cert_pem).decode()]
    for _ in range(4):
        other = pki.rsa_key()
        pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        other_scanner = KeyScanner(pem)
        blobs += [other_scanner.planted(f).replace("PRIVATE KEY-----", "") for f in FORMS if f.name != "a PEM private-key header"]
    assert [canary.scanner.scan(b) for b in blobs] == [[] for _ in blobs]


# ----------------------------------------------------------------------------- surfaces


def run_meshca(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "meshca", *argv], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert "Traceback" not in proc.stderr
    return proc


def test_meshca_plan(canary):
    outs = []
    for extra in ((), ("--all",), ("--json",), ("--json", "--all")):
        proc = run_meshca("plan", "--config", str(canary.stack), *extra, cwd=canary.project)
        assert proc.returncode == 0, proc.stderr
        outs += [(f"plan {extra} stdout", proc.stdout), (f"plan {extra} stderr", proc.stderr)]
    assert "canary/ca-key.pem" in outs[0][1]  # the key's path is shown, never its contents
    canary.assert_clean("meshca plan (text, --all and --json)", outs)


def test_meshca_certs_verify(canary):
    argv = ["certs", "verify", *(x for flag, role in (("--ca-cert", "ca_cert"), ("--ca-key", "ca_key"), ("--root-cert", "root_cert"), ("--cert-chain", "cert_chain")) for x in (flag, str(canary.files[role])))]
    text = run_meshca(*argv, cwd=canary.project)
    js = run_meshca(*argv, "--json", cwd=canary.project)
    assert text.returncode == 0 and js.returncode == 0 and json.loads(js.stdout)["files"]["caKey"]["kind"] == "RSA 2048-bit"
    canary.assert_clean("meshca certs verify (text and --json)", [("text", text.stdout + text.stderr), ("json", js.stdout + js.stderr)])


def _canary_cluster(canary: Canary) -> Cluster:
    """A cluster whose cacerts and istio-ca-secret hold the canary key; pods signed by it."""
    p = make_pki()
    c = Cluster()
    c.context = "gke_canary"
    key = canary.ca.key_pem
    c.set_secret("cacerts", {"ca-cert.pem": canary.ca.cert_pem, "ca-key.pem": key, "root-cert.pem": canary.root.cert_pem, "cert-chain.pem": canary.ca.cert_pem + canary.root.cert_pem})
    c.set_secret("istio-ca-secret", {"ca-cert.pem": canary.root.cert_pem, "ca-key.pem": key})
    for i in range(2):
        now = dt.datetime.now(dt.timezone.utc)
        leaf = pki.make_workload("spiffe://cluster.local/ns/shop/sa/web", canary.ca, key=pki.ec_key(), not_before=now - dt.timedelta(hours=1))
        chain = leaf.cert_pem + canary.ca.cert_pem + canary.root.cert_pem
        c.add_pod("shop", f"web-{i}", dump=sidecar_dump(chain, canary.root.cert_pem + p.meshca_root.cert_pem), replicaset="web-7d9f8", template_hash="7d9f8")
    return c


def test_meshca_check(canary, tmp_path, monkeypatch):
    p = make_pki()
    cluster = _canary_cluster(canary)
    cluster_dir = cluster.write(tmp_path / "cluster")
    meshca_root = tmp_path / "meshca-root.pem"
    meshca_root.write_bytes(p.meshca_root.cert_pem)
    log = tmp_path / "calls.log"
    env = fake_env(cluster_dir, log)
    for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
        monkeypatch.setenv(k, env[k])
    outs = []
    checks = [
        ["root-cert", "--meshca-root", str(meshca_root)],
        ["workload-cert", "--meshca-root", str(meshca_root), "--require", "CITADEL"],
        ["root-of-trust", "--root-cert", str(canary.files["root_cert"])],
    ]
    for check in checks:
        for extra in ((), ("--json",)):
            rc, out, err, _ = main_in_process(["check", *check, "--source", "istioctl", "--context", "gke_canary", *extra])
            assert rc == 0, err
            outs += [(f"istioctl {check[0]} {extra}", out + err)]
    with KubeApiServer(cluster_dir) as api:
        for check in checks:
            for extra in ((), ("--json",)):
                rc, out, err, _ = main_in_process(["check", *check, "--kubeconfig", api.kubeconfig, "--context", "loopback", *extra])
                assert rc == 0, err
                outs += [(f"kube {check[0]} {extra}", out + err)]
    outs.append(("fake tools' call log", log.read_text()))
    assert any("cacerts" in o for _, o in outs)  # the check read the Secret the key is in
    canary.assert_clean("meshca check (kube and istioctl sources, text and --json, cacerts holding the key)", outs)


def test_meshca_rehearse(canary, tmp_path):
    before = files_of(canary.project)
    outs = []
    for scenario in ("canary", "interrupted"):
        report = tmp_path / f"{scenario}.html"
        js = run_meshca("rehearse", "--config", str(canary.stack), "--scenario", scenario, "--json", "--report", str(report), cwd=canary.project)
        assert js.returncode == 0, js.stderr
        doc = json.loads(js.stdout)
        assert doc["summary"]["handshakesFailed"] == 0
        outs += [(f"{scenario} --json", js.stdout), (f"{scenario} stderr", js.stderr), (f"{scenario} report", report.read_text())]
    rc, out, err, _ = main_in_process(["rehearse", "--config", str(canary.stack), "--scenario", "interrupted", "--quiet"], cwd=canary.project)
    assert rc == 0, err
    outs.append(("interrupted table", out + err))
    canary.assert_clean("meshca rehearse (table, --json, --report HTML; canary route and a fault scenario)", outs)
    assert written_since(before, canary.project) == []  # the rehearsal writes only its report


def canary_cacerts_stdout(canary: Canary) -> str:
    """What the preview's cacerts probe prints once asmcli made cacerts from the canary files."""
    return " ".join(base64.b64encode(canary.files[r].read_bytes()).decode() for r in ("ca_cert", "root_cert", "cert_chain"))


def test_the_pulumi_program_at_every_position(canary, monkeypatch):
    config = load_stack_file(canary.stack)
    logged: list[str] = []
    for level in ("debug", "info", "warn", "error"):
        monkeypatch.setattr(pulumi.log, level, lambda message, *a, _l=level, **k: logged.append(f"{_l}: {message}"))
    monkeypatch.chdir(canary.project)
    context = config.clusters[0].context
    blobs = []
    positions = planmod.route(config)
    for position in positions:
        # The preview's probe finds no cacerts until A1 ran, then the one asmcli made from the files.
        for cacerts in ((None,) if position.index <= 1 else ({context: canary_cacerts_stdout(canary)},)):
            namespaces = dict(position.namespace_map)
            result = run_program("dev", {"phase": position.phase, "rollback": position.rollback, "namespaces": namespaces}, stack_file=canary.stack, cacerts=cacerts)
            assert result.error is None, (position.label, result.error)
            for r in result.resources:
                blobs.append((f"{position.label}: {r.name} inputs", json.dumps(r.inputs, default=str)))
                blobs.append((f"{position.label}: {r.name} outputs", json.dumps(r.outputs, default=str)))
            blobs.append((f"{position.label}: exports", json.dumps(result.outputs, default=str)))
            blobs.append((f"{position.label}: invokes", json.dumps(result.calls, default=str)))
    blobs.append(("pulumi log", "\n".join(logged)))
    backups = [b for label, b in blobs if "C1.backup" in label]
    assert backups, "phase C's backups were registered"
    assert any("--ca_key canary/ca-key.pem" in b for _, b in blobs)  # A1 passes the key's path, not its contents
    n = canary.assert_clean("the Pulumi program under mocks at every position (inputs, outputs, exports, invokes, log)", blobs)
    assert n > 50


@pytest.fixture
def live_secrets(canary, tmp_path, monkeypatch):
    """The stateful fake kubectl of tests/fakes/workloads with both CA Secrets holding the key."""
    key_b64 = base64.b64encode(canary.ca.key_pem).decode()
    secrets = {
        "cacerts": {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "cacerts", "namespace": "istio-system"},
                    "data": {"ca-key.pem": key_b64, "ca-cert.pem": base64.b64encode(canary.ca.cert_pem).decode()}},
        "istio-ca-secret": {"apiVersion": "v1", "kind": "Secret", "type": "istio.io/ca-root", "metadata": {"name": "istio-ca-secret", "namespace": "istio-system"},
                            "data": {"ca-key.pem": key_b64, "ca-cert.pem": base64.b64encode(canary.root.cert_pem).decode()}},
    }
    (tmp_path / "state.json").write_text(json.dumps({"secrets": secrets}))
    (tmp_path / "calls.log").write_text("")
    monkeypatch.setenv("PATH", f"{WORKLOADS_FAKE}:{os.environ['PATH']}")
    monkeypatch.setenv("MESHCA_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("MESHCA_FAKE_LOG", str(tmp_path / "calls.log"))
    return tmp_path


def test_the_phase_c_providers(canary, live_secrets):
    kc = ["kubectl", "--kubeconfig", "kc.yaml", "--context", "ctx"]
    before = files_of(live_secrets)

    def props(secret):
        return {"cluster": "c1", "secret": secret, "file": f"backups/dev/c1/{secret}.yaml", "projectDir": str(live_secrets), "argv": kc + ["get", f"secret/{secret}", "-n", "istio-system", "-o", "yaml"]}

    outs, backups = [], []
    for secret in ("cacerts", "istio-ca-secret"):
        created = CaSecretBackupProvider().create(props(secret))
        outs.append((f"backup {secret} outputs", json.dumps(created.outs)))
        backups.append({"secret": secret, "file": props(secret)["file"], "fileSha256": created.outs["fileSha256"], "getArgv": props(secret)["argv"]})
    deletion = {"cluster": "c1", "projectDir": str(live_secrets), "argv": kc + ["delete", "secret", "cacerts", "istio-ca-secret", "-n", "istio-system", "--ignore-not-found"], "backups": backups}
    # Refusals name files and digests, never the data: a changed live Secret, a missing backup.
    state = json.loads((live_secrets / "state.json").read_text())
    state["secrets"]["cacerts"]["data"]["extra.pem"] = "eA=="
    (live_secrets / "state.json").write_text(json.dumps(state))
    with pytest.raises(RuntimeError) as stale:
        CaSecretDeletionProvider().create(deletion)
    assert str(stale.value).startswith("Error MCA0807 ")
    outs.append(("stale deletion error", str(stale.value)))
    del state["secrets"]["cacerts"]["data"]["extra.pem"]
    (live_secrets / "state.json").write_text(json.dumps(state))
    done = CaSecretDeletionProvider().create(deletion)
    outs.append(("deletion outputs", json.dumps(done.outs)))
    outs.append(("kubectl call log", (live_secrets / "calls.log").read_text()))
    canary.assert_clean("the phase C backup and deletion providers (outputs and errors)", outs)
    # The backups are the one place the key goes: complete, and readable by the owner only.
    written = written_since(before, live_secrets)
    copies = [p for p in written if canary.scanner.scan(p.read_bytes())]
    assert copies == [live_secrets / "backups/dev/c1/cacerts.yaml", live_secrets / "backups/dev/c1/istio-ca-secret.yaml"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in copies)
    canary.assert_clean("every file meshca wrote (the backups only as 0600 files)", [(str(p), p.read_bytes()) for p in written if p not in copies] or [("no other file", "")])


def test_every_surface_is_scanned():
    text = Path(__file__).read_text()
    for surface in SURFACES:
        assert text.count(f'"{surface}"') == 1, surface  # each surface is scanned by a test here
