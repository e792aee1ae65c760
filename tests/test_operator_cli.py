"""discover, doctor, status, restore-ca without a cluster: parsing, rendering, refusals (issue 12).

The clusters are literal objects (tests/operator_fixtures.py, shapes transcribed from
procedure.md and istio/istio's charts); ``live.read`` is replaced by a function returning them,
and kubectl by small fakes. Expectations are transcribed, never computed with meshca code:

- positions (README "The route", procedure.md): baseline is position 0; with three namespaces
  one per batch, ``distribute-root`` with REV1 installed and no namespace moved is 1, batch 1
  (frontend moved) is 2; 3 positions per phase plus its -done; the route has 12 positions
  (0..11): baseline, d-r 0..3, d-r-done, mesh-ca 0..3, mesh-ca-done, old-root-removed.
- procedure.md "Two starting points": migrate's old istiod is ``istiod`` (revision default),
  namespaces ``istio-injection=enabled``; A2 labels ``istio.io/rev=REVISION_1`` without
  ``istio-injection``; "never leave both labels".
- the codes are the catalogue's entries (meshca/messages.yaml MCA1030-1064, MCA0854/0855).
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

import operator_fixtures as F
from harness import ROOT
from meshca import cli, doctor, live, restoreca
from meshca.config import load_stack_file

CTX = F.CONTEXT
REV1 = F.REV1


@pytest.fixture(scope="module")
def root_ca():
    return F.ca()


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("meshca.kubeaccess.require_cluster_access", lambda *a, **k: None)
    return tmp_path


def serve(monkeypatch, by_context):
    """live.read answers with the objects of the Kubectl's context."""
    monkeypatch.setattr(live, "read", lambda k: live.Snapshot(tuple(by_context[k.context])))


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_stack(project: Path, root, *, phase="baseline", namespaces=None, gateways=True, extra="") -> Path:
    ca = project / "ca"
    ca.mkdir(exist_ok=True)
    for name in ("ca-cert.pem", "root-cert.pem", "cert-chain.pem"):
        (ca / name).write_bytes(root.cert_pem)
    (ca / "ca-key.pem").write_bytes(F.pem_key(root))
    namespaces = namespaces or {"frontend": "default", "cart": "default", "checkout": "default"}
    text = f"""config:
  meshca:useCase: migrate
  meshca:phase: {phase}
  meshca:fleetProject: acme-mesh-dev
  meshca:rev1: {REV1}
  meshca:rev2: {F.REV2}
  meshca:clusters:
    - {{name: dev-1, project: acme-mesh-dev, location: us-central1, kubeconfig: /dev/null, context: {CTX}}}
  meshca:caFiles: {{caCert: ca/ca-cert.pem, caKey: ca/ca-key.pem, rootCert: ca/root-cert.pem, certChain: ca/cert-chain.pem}}
  meshca:gateways: {'[{namespace: istio-system, deployment: istio-ingressgateway, service: istio-ingressgateway}]' if gateways else '[]'}
  meshca:namespaces: {json.dumps(namespaces)}
  meshca:batches: [[frontend], [cart], [checkout]]
{extra}"""
    path = project / "Pulumi.found.yaml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- discover


def test_discover_baseline_decides_every_key_but_the_ca_files(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.baseline(root_ca)})
    code, out, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml")
    assert code == 0, err
    doc = yaml.safe_load((project / "Pulumi.found.yaml").read_text())["config"]
    assert doc["meshca:useCase"] == "migrate"
    assert doc["meshca:phase"] == "baseline"
    assert doc["meshca:oldRevision"] == "default"
    assert doc["meshca:namespaces"] == {"frontend": "default", "cart": "default", "checkout": "default"}
    assert "meshca:batches" not in doc
    assert doc["meshca:clusters"] == [{"name": "dev-1", "project": "acme-mesh-dev", "location": "us-central1",
                                       "kubeconfig": doc["meshca:clusters"][0]["kubeconfig"], "context": CTX}]
    assert doc["meshca:fleetProject"] == "acme-mesh-dev"
    assert doc["meshca:gateways"] == [{"namespace": "istio-system", "deployment": "istio-ingressgateway", "service": "istio-ingressgateway",
                                       "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}, "serviceAccount": "default"}]
    # Without --export-ca the CA files are the one key it asks for (MCA1030), by key, with the evidence.
    asks = [line for line in err.splitlines() if " MCA1030 " in line]
    assert len(asks) == 1 and asks[0].startswith("Warning MCA1030 meshca:caFiles:"), err
    assert "istio-ca-secret" in asks[0]
    assert "SET:" in (project / "Pulumi.found.yaml").read_text()
    assert "MCA1031" not in err  # at baseline: not past it


def test_discover_past_baseline_writes_the_live_position_and_the_ca(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.distribute_root_batch_1(root_ca)})
    code, out, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml", "--export-ca", "ca")
    assert code == 0, err
    assert [line for line in err.splitlines() if "MCA1031" in line][0].startswith("Info MCA1031 Pulumi.found.yaml: the live mesh is at position 2 ")
    doc = yaml.safe_load((project / "Pulumi.found.yaml").read_text())["config"]
    assert doc["meshca:phase"] == "distribute-root"
    assert doc["meshca:rev1"] == REV1
    assert doc["meshca:namespaces"] == {"frontend": REV1, "cart": "default", "checkout": "default"}
    assert doc["meshca:batches"] == [["frontend"], ["cart"], ["checkout"]]
    for name in ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"):
        assert stat.S_IMODE((project / "ca" / name).stat().st_mode) == 0o600
    assert (project / "ca" / "root-cert.pem").read_bytes() == root_ca.cert_pem  # cacerts' root-cert.pem
    assert (project / "ca" / "ca-key.pem").read_bytes() == F.pem_key(root_ca)
    # meshca plan accepts it, at position 2 of 11
    code, out, err = run(capsys, "plan", "--config", "Pulumi.found.yaml")
    assert code == 0, err
    assert out.splitlines()[1].startswith("position 2 distribute-root:1 (of 0..11): distribute-root: batch 1/3")
    assert load_stack_file(project / "Pulumi.found.yaml").phase == "distribute-root"


def test_discover_istio_ca_secret_is_exported_as_a_self_signed_ca(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.baseline(root_ca)})
    code, _, err = run(capsys, "discover", "--context", CTX, "--write", "-", "--export-ca", "certs")
    assert code == 0, err
    # Istio on GKE: istio-ca-secret's ca-cert.pem is the self-signed root: ca-cert = root-cert = cert-chain.
    for name in ("ca-cert.pem", "root-cert.pem", "cert-chain.pem"):
        assert (project / "certs" / name).read_bytes() == root_ca.cert_pem
    code, _, err = run(capsys, "certs", "verify", "--ca-cert", "certs/ca-cert.pem", "--ca-key", "certs/ca-key.pem", "--root-cert", "certs/root-cert.pem", "--cert-chain", "certs/cert-chain.pem")
    assert code == 0, err


def test_discover_never_overwrites_and_writes_nothing_when_it_refuses(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.baseline(root_ca)})
    (project / "Pulumi.found.yaml").write_text("config: {}\n")
    code, _, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml", "--export-ca", "ca")
    assert code == 2
    assert err.startswith("Error MCA1034 Pulumi.found.yaml: already exists; fix:")
    assert not (project / "ca").exists()
    assert (project / "Pulumi.found.yaml").read_text() == "config: {}\n"


def test_discover_refuses_a_context_without_istiod(project, monkeypatch, capsys):
    serve(monkeypatch, {CTX: [F.ns("shop", **{"istio-injection": "enabled"})]})
    code, _, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml")
    assert code == 2 and err.startswith(f"Error MCA1033 context {CTX}: no istiod Deployment")
    assert not (project / "Pulumi.found.yaml").exists()


def test_discover_refuses_clusters_at_different_places(project, monkeypatch, capsys, root_ca):
    other = "gke_acme-mesh-dev_us-east1_dev-2"
    serve(monkeypatch, {CTX: F.baseline(root_ca), other: F.distribute_root_batch_1(root_ca)})
    code, _, err = run(capsys, "discover", "--context", CTX, "--context", other, "--write", "Pulumi.found.yaml")
    assert code == 2 and err.startswith(f"Error MCA1036 context {other}: other istiod revisions")


def test_discover_export_without_any_ca_secret(project, monkeypatch, capsys, root_ca):
    objs = [o for o in F.baseline(root_ca) if o["kind"] != "Secret"]
    serve(monkeypatch, {CTX: objs})
    code, _, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml", "--export-ca", "ca")
    assert code == 2 and err.startswith("Error MCA1035 --export-ca:")
    assert not (project / "Pulumi.found.yaml").exists()


def test_discover_lists_pinned_and_opted_out_workloads(project, monkeypatch, capsys, root_ca):
    objs = F.baseline(root_ca) + [
        F.deployment("cart", "legacy", template_labels={"app": "legacy", "istio.io/rev": REV1}),
        F.deployment("checkout", "batch", template_labels={"app": "batch"}, annotations={"sidecar.istio.io/inject": "false"}),
    ]
    serve(monkeypatch, {CTX: objs})
    code, _, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml")
    assert code == 0
    pinned = [line for line in err.splitlines() if " MCA1032 " in line]
    assert pinned[0].startswith("Warning MCA1032 Deployment/cart/legacy: pins revision asm-11910-9-distribute-root")
    assert pinned[1].startswith('Warning MCA1032 Deployment/checkout/batch: opts out of injection (pod annotation sidecar.istio.io/inject: "false")')
    assert "Deployment/cart/legacy" in (project / "Pulumi.found.yaml").read_text()


def test_discover_asks_for_project_and_location_of_a_non_gke_context(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {"kind-local": F.baseline(root_ca)})
    code, _, err = run(capsys, "discover", "--context", "kind-local", "--write", "Pulumi.found.yaml")
    assert code == 0
    assert any(line.startswith("Warning MCA1030 meshca:clusters: context kind-local is not a GKE context name") for line in err.splitlines())


def test_discover_requires_context_and_write(capsys):
    code, _, err = run(capsys, "discover", "--write", "x.yaml")
    assert code == 2 and err.startswith("Error MCA0901")


# ----------------------------------------------------------------------------- status


def test_status_reports_the_live_position_and_the_mismatch(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.distribute_root_batch_1(root_ca)})
    write_stack(project, root_ca)  # the stack file still at baseline
    code, out, err = run(capsys, "status", "--config", "Pulumi.found.yaml")
    assert code == 1, err
    assert "  live:  position 2: distribute-root: batch 1/3" in out
    assert "  stack: position 0: baseline" in out
    assert any(line.startswith("Warning MCA1050 cluster dev-1: the stack file is at position 0 ") and "the live mesh at 2 " in line for line in err.splitlines())
    code, out, err = run(capsys, "status", "--config", "Pulumi.found.yaml", "--json")
    doc = json.loads(out)
    assert doc["ok"] is False
    c = doc["clusters"][0]
    assert (c["live"]["index"], c["live"]["phase"], c["stack"]["index"]) == (2, "distribute-root", 0)
    assert {n["name"]: n["pods"] for n in c["namespaces"]} == {"frontend": {REV1: 1}, "cart": {"default": 1}, "checkout": {"default": 1}}


def test_status_in_sync_says_what_comes_next(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.distribute_root_batch_1(root_ca)})
    write_stack(project, root_ca, phase="distribute-root", namespaces={"frontend": REV1, "cart": "default", "checkout": "default"})
    code, out, err = run(capsys, "status", "--config", "Pulumi.found.yaml")
    assert code == 0, err
    assert f"[A1] A1.install.{REV1}: done" in out and "[A2] A2.label.frontend: done" in out and "[A2] A2.restart.frontend: done" in out
    assert "next: advance the stack file to position 3 (distribute-root: batch 2/3" in out
    # the table fits 80 columns: the stack's revisions by short names, named once in a legend
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert f"  revisions: REV1 = {REV1}" in out or f"             REV1 = {REV1}" in out
    assert [line.split() for line in out.splitlines() if line.startswith("  frontend ") or line.startswith("  cart ")] == [
        ["frontend", "REV1", "REV1", "REV1=1"],
        ["cart", "old", "old", "old=1"],
    ]


def test_status_drift(project, monkeypatch, capsys, root_ca):
    objs = F.distribute_root_batch_1(root_ca)
    objs = [o for o in objs if not (o["kind"] == "Namespace" and o["metadata"]["name"] in ("cart", "checkout"))]
    objs += [
        F.ns("cart", **{"istio-injection": "enabled", "istio.io/rev": REV1}),  # both labels: by hand
        F.ns("checkout", **{"istio.io/rev": REV1}),  # relabelled, never restarted (pods still default)
        F.deployment("istio-system", "istiod-asm-1162-2", labels={"app": "istiod", "istio.io/rev": "asm-1162-2"}),
    ]
    serve(monkeypatch, {CTX: objs})
    write_stack(project, root_ca, phase="distribute-root", namespaces={"frontend": REV1, "cart": "default", "checkout": "default"})
    code, out, err = run(capsys, "status", "--config", "Pulumi.found.yaml")
    assert code == 1
    lines = err.splitlines()
    assert any(line.startswith("Warning MCA1051 namespace/cart (cluster dev-1): carries both istio-injection=enabled and istio.io/rev=") for line in lines), err
    assert any(line.startswith(f"Warning MCA1053 namespace/checkout (cluster dev-1): labelled for {REV1} but 1 pod(s) run default") for line in lines), err
    assert any(line.startswith("Warning MCA1052 istiod revision asm-1162-2 (cluster dev-1): runs, but is none of the stack's revisions") for line in lines), err
    # frontend, cart?, checkout on REV1 with cart first in no batch order: frontend+checkout moved is off the batch order
    assert any(line.startswith("Warning MCA1054 cluster dev-1:") for line in lines), err


def test_status_watch_repeats(project, monkeypatch, capsys, root_ca):
    serve(monkeypatch, {CTX: F.baseline(root_ca)})
    write_stack(project, root_ca)
    monkeypatch.setattr("time.sleep", lambda s: None)
    code, out, err = run(capsys, "status", "--config", "Pulumi.found.yaml", "--watch", "--max-polls", "2", "--interval", "0")
    assert code == 0, err
    assert out.count("  live:  position 0: baseline") == 2


# ----------------------------------------------------------------------------- doctor


def fake_tools(answers):
    def run(argv, env=None, timeout=60):
        key = Path(argv[0]).name
        code, out = answers.get(key, (127, ""))
        return subprocess.CompletedProcess(argv, code, out, "" if code == 0 else f"{key}: not found")
    return run


GOOD_TOOLS = {
    "pulumi": (0, "v3.274.1\n"),
    "kubectl": (0, json.dumps({"clientVersion": {"gitVersion": "v1.30.14"}})),
    "asmcli": (0, "1.19.10-asm.9+config1\n"),
    "istioctl": (0, "1.19.10-asm.9\n"),
}


def doctor_config(project, root_ca, **kw):
    extra = "  meshca:istioctlPath: bin/istioctl\n"
    return load_stack_file(write_stack(project, root_ca, extra=extra, **kw))


def codes(lines):
    return [(m.code, m.subject) for m in lines]


def test_doctor_tools_each_fixture_breaks_its_line(project, root_ca):
    config = doctor_config(project, root_ca)
    good = doctor.check_tools(config, fake_tools(GOOD_TOOLS))
    assert [m.code for m in good] == ["MCA1040"] * 4
    cases = {
        "pulumi": ((127, ""), ("MCA1041", "pulumi")),
        "kubectl": ((127, ""), ("MCA1041", "kubectl")),
        "asmcli": ((0, "1.20.4-asm.1+config1\n"), ("MCA1042", "meshca:asmcliPath")),
        "istioctl": ((0, "1.20.4-asm.1\n"), ("MCA1042", "meshca:istioctlPath")),
    }
    for i, (tool, (answer, want)) in enumerate(cases.items()):
        lines = doctor.check_tools(config, fake_tools({**GOOD_TOOLS, tool: answer}))
        assert [m.level for m in lines].count("Error") == 1, (tool, [m.line() for m in lines])
        assert codes(lines)[i] == want, (tool, [m.line() for m in lines])


def test_doctor_istioctl_left_to_asmcli_is_not_an_error(project, root_ca):
    config = load_stack_file(write_stack(project, root_ca))
    lines = doctor.check_tools(config, fake_tools(GOOD_TOOLS))
    assert lines[-1].code == "MCA1040" and "asmcli links into" in lines[-1].problem


class CanI:
    def __init__(self, denied=()):
        self.denied = set(denied)
        self.asked = []

    def run(self, *args, stdin=None, timeout=120):
        self.asked.append(args)
        no = (args[2], args[3]) in self.denied
        return subprocess.CompletedProcess(args, 1 if no else 0, "no\n" if no else "yes\n", "")


def test_doctor_rbac_denied_breaks_exactly_its_line(project, root_ca):
    config = load_stack_file(write_stack(project, root_ca))
    rows = doctor.rbac_checks(config, doctor.route_actions(config))
    assert ("patch", "namespaces", None) in [(v, r, n) for v, r, n, _ in rows]  # A2 labels namespaces
    assert ("delete", "secrets", "istio-system") in [(v, r, n) for v, r, n, _ in rows]  # C2
    ok = doctor.check_rbac(CanI(), "dev-1", rows)
    assert codes(ok) == [("MCA1040", "cluster dev-1")]
    lines = doctor.check_rbac(CanI({("delete", "secrets")}), "dev-1", rows)
    assert [m.code for m in lines] == ["MCA1043"]
    assert lines[0].line().startswith("Error MCA1043 cluster dev-1: may not delete secrets in istio-system (kubectl auth can-i said no); steps that need it: delete-ca-secrets")


def test_doctor_preconditions_each_fixture_breaks_its_line(project, root_ca):
    config = load_stack_file(write_stack(project, root_ca))
    cluster = config.clusters[0]
    base = F.baseline(root_ca)
    good = doctor.check_preconditions(config, cluster, live.Snapshot(tuple(base)))
    assert [m.code for m in good] == ["MCA1040"] * 4, [m.line() for m in good]

    def swap(objs, name, new):
        return [o for o in objs if not (o["kind"] == "Namespace" and o["metadata"]["name"] == name)] + [new]

    other = F.ca()
    fixtures = {
        0: (swap(base, "istio-system", F.ns("istio-system", **{"istio-injection": "enabled"})), "MCA0854"),
        1: (base + [F.deployment("istio-operator", "istio-operator", template_labels={"name": "istio-operator"})], "MCA0855"),
        2: (base + [F.ns("legacy", **{"istio-injection": "enabled"})], "MCA1044"),
        3: ([o for o in base if o["kind"] != "Secret"] + [{"kind": "Secret", "metadata": {"name": "istio-ca-secret", "namespace": "istio-system"},
                                                            "data": {"ca-cert.pem": F.b64(other.cert_pem), "ca-key.pem": F.b64(F.pem_key(other))}}], "MCA1045"),
    }
    for index, (objs, code) in fixtures.items():
        lines = doctor.check_preconditions(config, cluster, live.Snapshot(tuple(objs)))
        assert [m.code for m in lines] == [code if i == index else "MCA1040" for i in range(4)], [m.line() for m in lines]
    gone = doctor.check_preconditions(config, cluster, live.Snapshot(tuple(o for o in base if o["kind"] != "Secret")))
    assert [m.code for m in gone] == ["MCA1040", "MCA1040", "MCA1040", "MCA1046"]
    assert gone[-1].level == "Info"


def test_doctor_exit_code(project, monkeypatch, capsys, root_ca):
    write_stack(project, root_ca)
    from meshca.errors import MeshcaError

    monkeypatch.setattr(doctor, "check_tools", lambda config: [doctor.passed("pulumi", "ok")])
    monkeypatch.setattr(doctor, "check_cluster", lambda config, cluster, actions: [doctor.passed("x", "ok")])
    assert run(capsys, "doctor", "--config", "Pulumi.found.yaml")[0] == 0
    monkeypatch.setattr(doctor, "check_cluster", lambda config, cluster, actions: [MeshcaError("DoctorCaSecretsGone", "c")])
    assert run(capsys, "doctor", "--config", "Pulumi.found.yaml")[0] == 0  # Info holds
    monkeypatch.setattr(doctor, "check_cluster", lambda config, cluster, actions: [MeshcaError("ApiServerUnreachable", "context c", reason="refused")])
    code, out, _ = run(capsys, "doctor", "--config", "Pulumi.found.yaml", "--json")
    assert code == 1 and json.loads(out)["ok"] is False


# ----------------------------------------------------------------------------- restore-ca


class SecretsKubectl:
    """kubectl for restore-ca: Secrets of istio-system in memory, and kube-system's UID."""

    def __init__(self, uid="uid-dev-1", secrets=None, drop_writes=False):
        self.uid, self.secrets, self.drop, self.writes = uid, dict(secrets or {}), drop_writes, []

    def run(self, *args, stdin=None, timeout=120):
        if args[:3] == ("get", "namespace", "kube-system"):
            return subprocess.CompletedProcess(args, 0, self.uid, "")
        if args[:2] == ("get", "secret"):
            s = self.secrets.get(args[2])
            return subprocess.CompletedProcess(args, 0, json.dumps(s) if s else "", "")
        if args[0] in ("create", "replace"):
            doc = json.loads(stdin)
            self.writes.append((args[0], doc["metadata"]["name"]))
            if not self.drop:
                self.secrets[doc["metadata"]["name"]] = doc
            return subprocess.CompletedProcess(args, 0, "", "")
        raise AssertionError(args)

    def unreachable(self, proc):
        return None


def backup(project, root_ca, *, cluster="dev-1", stack="found", name="istio-ca-secret", uid="uid-dev-1", mode=0o600, data=None):
    """A C1 backup: `kubectl get secret/NAME -n istio-system -o yaml` as the provider saves it."""
    d = project / "backups" / stack / cluster
    d.mkdir(parents=True, exist_ok=True)
    data = data or {"ca-cert.pem": F.b64(root_ca.cert_pem), "ca-key.pem": F.b64(F.pem_key(root_ca))}
    if name == "cacerts" and "root-cert.pem" not in data:
        data = {**data, "root-cert.pem": F.b64(root_ca.cert_pem), "cert-chain.pem": F.b64(root_ca.cert_pem)}
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "istio.io/ca-root", "data": data,
           "metadata": {"name": name, "namespace": "istio-system", "uid": "1111", "resourceVersion": "42",
                        "annotations": {"meshca.io/cluster-uid": uid}}}
    path = d / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=True))
    path.chmod(mode)
    return path


def restore(project, root_ca, source, kubectl, cluster=None, replace=False):
    config = load_stack_file(write_stack(project, root_ca))
    return restoreca.restore(config, source, cluster, replace, lambda c: kubectl)


def test_restore_ca_restores_and_reads_back(project, root_ca, capsys):
    path = backup(project, root_ca)
    k = SecretsKubectl()
    assert restore(project, root_ca, path.parent, k) == 0
    assert k.writes == [("create", "istio-ca-secret")]
    live_doc = k.secrets["istio-ca-secret"]
    assert live_doc["data"] == yaml.safe_load(path.read_text())["data"]
    assert live_doc["metadata"] == {"name": "istio-ca-secret", "namespace": "istio-system"}  # uid, resourceVersion, the C1 record dropped
    out = capsys.readouterr().out
    assert out.startswith("Info MCA1064 cluster dev-1 secret/istio-ca-secret: Secret istio-system/istio-ca-secret created from ")
    # again: already equal, nothing written
    assert restore(project, root_ca, path.parent, k) == 0
    assert k.writes == [("create", "istio-ca-secret")]


@pytest.mark.parametrize("case", ["mode", "not-secret", "missing-key", "key-mismatch"])
def test_restore_ca_refuses_a_backup_that_does_not_read_back(project, root_ca, case):
    other = F.ca()
    if case == "mode":
        path = backup(project, root_ca, mode=0o644)
    elif case == "missing-key":
        path = backup(project, root_ca, data={"ca-cert.pem": F.b64(root_ca.cert_pem)})
    elif case == "key-mismatch":
        path = backup(project, root_ca, data={"ca-cert.pem": F.b64(root_ca.cert_pem), "ca-key.pem": F.b64(F.pem_key(other))})
    else:
        path = backup(project, root_ca)
        path.write_text("kind: ConfigMap\nmetadata: {name: istio-ca-secret}\n")
    k = SecretsKubectl()
    with pytest.raises(Exception) as exc:
        restore(project, root_ca, path, k)
    lines = exc.value.lines()
    assert lines and all(line.startswith(f"Error MCA1060 {path}:") for line in lines), lines
    assert k.writes == []


@pytest.mark.parametrize("case", ["path-cluster", "cluster-uid", "other-mesh", "cluster-option"])
def test_restore_ca_refuses_a_backup_of_another_cluster(project, root_ca, case):
    if case == "path-cluster":
        path = backup(project, root_ca, cluster="prod-9")
    elif case == "cluster-uid":
        path = backup(project, root_ca, uid="uid-of-another-cluster")
    elif case == "other-mesh":
        other = F.ca()
        path = backup(project, root_ca, data={"ca-cert.pem": F.b64(other.cert_pem), "ca-key.pem": F.b64(F.pem_key(other))})
    else:
        path = backup(project, root_ca)
    k = SecretsKubectl()
    with pytest.raises(Exception) as exc:
        restore(project, root_ca, path, k, cluster="dev-2" if case == "cluster-option" else None)
    lines = exc.value.lines()
    assert any(line.startswith(f"Error MCA1061 {path}:") for line in lines), lines
    assert k.writes == []


def test_restore_ca_live_secret_with_other_data_needs_replace(project, root_ca, capsys):
    path = backup(project, root_ca)
    new = F.ca()
    k = SecretsKubectl(secrets={"istio-ca-secret": {"kind": "Secret", "type": "istio.io/ca-root", "metadata": {"name": "istio-ca-secret"},
                                                     "data": {"ca-cert.pem": F.b64(new.cert_pem)}}})
    with pytest.raises(Exception) as exc:
        restore(project, root_ca, path, k)
    assert exc.value.lines()[0].startswith("Error MCA1062 cluster dev-1 secret/istio-ca-secret:")
    assert k.writes == []
    assert restore(project, root_ca, path, k, replace=True) == 0
    assert k.writes == [("replace", "istio-ca-secret")]


def test_restore_ca_read_back_failure(project, root_ca):
    path = backup(project, root_ca)
    with pytest.raises(Exception) as exc:
        restore(project, root_ca, path, SecretsKubectl(drop_writes=True))
    assert exc.value.lines()[0].startswith("Error MCA1063 cluster dev-1 secret/istio-ca-secret:")


def test_restore_ca_cli_parsing(capsys):
    code, _, err = run(capsys, "restore-ca", "--stack", "dev")
    assert code == 2 and err.startswith("Error MCA0901")


def test_backup_records_the_cluster_uid(tmp_path, monkeypatch):
    """C1 saves kube-system's UID in the backup (what restore-ca compares); the data digest is unchanged."""
    from meshca.providers import ca_secrets

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"}, "data": {"ca-cert.pem": "QQ=="}}

    def fake_run(argv, timeout=120, kubeconfig=""):
        if "kube-system" in argv:
            assert argv == ["kubectl", "--context", CTX, "get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]
            return subprocess.CompletedProcess(argv, 0, b"uid-dev-1", b"")
        return subprocess.CompletedProcess(argv, 0, yaml.safe_dump(secret).encode(), b"")

    monkeypatch.setattr(ca_secrets, "_run", fake_run)
    props = {"cluster": "dev-1", "secret": "cacerts", "file": "b/cacerts.yaml", "projectDir": str(tmp_path),
             "argv": ["kubectl", "--context", CTX, "get", "secret/cacerts", "-n", "istio-system", "-o", "yaml"]}
    result = ca_secrets.CaSecretBackupProvider().create(props)
    saved = yaml.safe_load((tmp_path / "b" / "cacerts.yaml").read_text())
    assert saved["metadata"]["annotations"] == {"meshca.io/cluster-uid": "uid-dev-1"}
    assert result.outs["dataSha256"] == ca_secrets.secret_data_digest(secret)


def test_doctor_context_lines(project, monkeypatch, root_ca):
    """The context line: a context no kubeconfig defines (MCA1002), an API server that does not answer (MCA0421)."""
    monkeypatch.undo()  # the real kubeconfig check
    monkeypatch.chdir(project)
    config = load_stack_file(write_stack(project, root_ca))
    kubeconfig = project / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": [{"name": "other", "context": {"cluster": "x", "user": "y"}}]}))
    cluster = config.clusters[0].__class__(**{**config.clusters[0].__dict__, "kubeconfig": str(kubeconfig)})
    lines = doctor.check_cluster(config, cluster, set())
    assert [m.code for m in lines] == ["MCA1002"]
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": [{"name": CTX, "context": {"cluster": "x", "user": "y"}}]}))
    monkeypatch.setattr("meshca.restart.Kubectl.run", lambda self, *a, **k: subprocess.CompletedProcess(a, 1, "", "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout"))
    lines = doctor.check_cluster(config, cluster, set())
    assert [m.code for m in lines] == ["MCA0421"]
    assert lines[0].line().startswith(f"Error MCA0421 context {CTX}: cannot reach the Kubernetes API server (Unable to connect to the server")


def test_discover_upgrade_from_csm(project, monkeypatch, capsys, root_ca):
    """procedure.md "Two starting points", upgrade: istiod-OLD_REVISION, namespaces istio.io/rev=OLD_REVISION;
    a 1.16 pod records its injector in sidecar.istio.io/status .revision (release-1.16 webhook.go 317-342)."""
    old = "asm-1162-2"
    status = json.dumps({"revision": old, "containers": ["istio-proxy"]})
    objs = [
        F.ns("istio-system"),
        F.deployment("istio-system", f"istiod-{old}", labels={"app": "istiod", "istio.io/rev": old}),
        F.mesh_config_map(old, "Citadel", False),
        F.deployment("istio-system", "istio-ingressgateway", labels={"app": "istio-ingressgateway", "istio.io/rev": old},
                     template_labels={"app": "istio-ingressgateway", "istio": "ingressgateway"}, annotations={"inject.istio.io/templates": "gateway"},
                     sa="istio-ingressgateway-service-account"),
        {"kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"}, "spec": {"selector": {"app": "istio-ingressgateway", "istio": "ingressgateway"}}},
        {"kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"},
         "data": {"ca-cert.pem": F.b64(root_ca.cert_pem), "ca-key.pem": F.b64(F.pem_key(root_ca)), "root-cert.pem": F.b64(root_ca.cert_pem), "cert-chain.pem": F.b64(root_ca.cert_pem)}},
    ]
    for a in ("shop", "ledger"):
        p = F.pod(a, f"{a}-1")
        p["metadata"]["annotations"]["sidecar.istio.io/status"] = status
        objs += [F.ns(a, **{"istio.io/rev": old}), F.deployment(a, a), p]
    serve(monkeypatch, {CTX: objs})
    code, _, err = run(capsys, "discover", "--context", CTX, "--write", "Pulumi.found.yaml", "--export-ca", "ca")
    assert code == 0, err
    doc = yaml.safe_load((project / "Pulumi.found.yaml").read_text())["config"]
    assert (doc["meshca:useCase"], doc["meshca:oldRevision"], doc["meshca:phase"]) == ("upgrade", old, "baseline")
    assert doc["meshca:namespaces"] == {"ledger": old, "shop": old}
    assert doc["meshca:gateways"][0]["serviceAccount"] == "istio-ingressgateway-service-account"
    text = (project / "Pulumi.found.yaml").read_text()
    assert f"shop: pods injected by {old}=1" in text
    assert run(capsys, "plan", "--config", "Pulumi.found.yaml")[0] == 0
