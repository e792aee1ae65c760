"""discover, doctor, status and restore-ca against a REAL kube-apiserver (issue 12).

One OWN cluster (started here, stopped at the module's end), seeded as the smoke seeds it
(Istio on GKE 1.6: istiod ``default``, the 1.6 gateway, namespaces ``istio-injection=enabled``,
pods injected by the 1.6 injector; tests/e2e/test_smoke.py ``seed_objects``), three app
namespaces only, and ``istio-ca-secret`` holding a self-signed root with ITS key (the smoke's
seed pairs the test root with another key: nothing there exports it). Phase A's first batch
is then made by hand with the tools a step runs: the asmcli stand-in installs REV1 with the
four files discover exported (A1), ``kubectl label`` and ``meshca restart`` move the stack's first
batch, cart (A2: discover lists namespaces in name order, the order batchSize moves them in).
No API server is mocked; no Pulumi run is needed.

Expectations, transcribed (never computed with meshca code):
- procedure.md "Two starting points" (migrate: istiod revision ``default``, namespaces
  ``istio-injection=enabled``) and Phase A step 1 ("the four files must be the CA the mesh
  uses TODAY: ... ``istio-ca-secret`` ``ca-cert.pem`` on Istio on GKE, which is self-signed"):
  discover at baseline names every namespace ``default`` and exports that root.
- README "The route": baseline is position 0; three namespaces one per batch make
  ``distribute-root`` batch 1 position 2 of 11 (baseline; distribute-root with 0..3 moved;
  -done; mesh-ca 0..3; -done; old-root-removed).
- procedure.md Phase C step 1: the backup is ``kubectl get secret/istio-ca-secret -n istio-system -o yaml``;
  restored, the Secret holds the same ``ca-cert.pem`` and ``ca-key.pem``.
- The codes are the catalogue's (meshca/messages.yaml): MCA1031 past baseline, MCA1040 a check
  that holds, MCA1044 an unmanaged namespace with the old injection label, MCA1050 the stack
  at another position, MCA1061 a backup of another cluster, MCA1064 restored.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

from testinfra.cluster import DEV_CONTEXT

import route_kit as kit
import test_smoke as smoke

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CTX = DEV_CONTEXT  # gke_acme-mesh-dev_us-central1_dev-1: discover reads project and location from it
REV1 = "asm-11910-9-distribute-root"
APPS = ("frontend", "cart", "checkout")


@pytest.fixture(scope="module")
def ops(toolchain):
    root = Path(tempfile.mkdtemp(prefix="meshca-e2e-ops-"))
    print(f"[e2e] operator dir {root} (MESHCA_E2E_KEEP=1 keeps it)", file=sys.stderr)
    clusters = kit.start_clusters(toolchain, [CTX])
    print(f"[e2e] operator cluster up in {clusters.timings['start']:.1f} s", file=sys.stderr)
    proj = root / "project"
    smoke.copy_project(proj)
    (proj / "asmcli").symlink_to(proj / "standins" / "asmcli")  # meshca:asmcliPath's default, ./asmcli
    logs = root / "logs"
    logs.mkdir()
    env = smoke.project_env(clusters.env, toolchain, proj, root)
    env["PATH"] = os.pathsep.join([str(proj / "standins"), env["PATH"]])
    env["MESHCA_STANDIN_STATE"] = str(root / "standin-state")
    old = smoke.start_old_injector(root / "istio16-injector", clusters.env)
    sys.path.insert(0, str(smoke.REPO))
    from meshca import pki

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    ca = pki.make_root("Istio CA", org="cluster.local", not_before=now, days=3650)
    from cryptography.hazmat.primitives import serialization

    key = ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    yield {"dir": proj, "root": root, "logs": logs, "env": env, "kubeconfig": str(clusters.kubeconfig), "old_injector": old,
           "ca_cert": ca.cert_pem, "ca_key": key}
    old["proc"].stop()
    keep = os.environ.get("MESHCA_E2E_KEEP") == "1"
    clusters.stop(keep=keep)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)


def meshca(ops, what, *args, check=True):
    return smoke.run(what, [str(ops["dir"] / ".venv" / "bin" / "meshca"), *args], ops["env"], ops["dir"], ops["logs"], timeout=300, check=check)


def kubectl(ops, what, *args, stdin=None):
    return smoke.run(what, ["kubectl", "--context", CTX, *args], ops["env"], ops["dir"], ops["logs"], timeout=120, stdin=stdin)


def test_seed_baseline(ops):
    objs = smoke.seed_objects(ops["dir"], ops["old_injector"]["url"], ops["old_injector"]["caBundle"])
    objs = [o for o in objs if o["metadata"].get("namespace", o["metadata"]["name"]) not in smoke.APP_NAMESPACES or
            o["metadata"].get("namespace", o["metadata"]["name"]) in APPS]
    for o in objs:
        if o["kind"] == "Secret" and o["metadata"]["name"] == "istio-ca-secret":
            o["data"] = {"ca-cert.pem": base64.b64encode(ops["ca_cert"]).decode(), "ca-key.pem": base64.b64encode(ops["ca_key"]).decode()}
    apps = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["namespace"] in APPS]
    base = [o for o in objs if o not in apps]
    kubectl(ops, "seed mesh", "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": base}))
    smoke.wait_injecting(ops["env"], "frontend", "default")
    kubectl(ops, "seed apps", "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": apps}))
    for ns, name in [("istio-system", "istiod"), ("istio-system", "istio-ingressgateway")] + [(n, n) for n in APPS]:
        kubectl(ops, f"seed rollout {ns}/{name}", "rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=60s")


def test_discover_at_baseline_writes_a_stack_plan_accepts(ops):
    proc = meshca(ops, "discover (baseline)", "discover", "--context", CTX, "--write", "Pulumi.ops.yaml", "--export-ca", "certs-live")
    assert "MCA1031" not in proc.stderr, proc.stderr  # not past baseline
    import yaml

    cfg = yaml.safe_load((ops["dir"] / "Pulumi.ops.yaml").read_text())["config"]
    assert cfg["meshca:useCase"] == "migrate" and cfg["meshca:phase"] == "baseline" and cfg["meshca:oldRevision"] == "default"
    assert cfg["meshca:namespaces"] == {"frontend": "default", "cart": "default", "checkout": "default"}
    # in the order kubectl lists them (by name), which is the order batchSize moves them in
    assert list(cfg["meshca:namespaces"]) == ["cart", "checkout", "frontend"]
    assert cfg["meshca:gateways"][0]["deployment"] == "istio-ingressgateway" and cfg["meshca:gateways"][0]["service"] == "istio-ingressgateway"
    assert (cfg["meshca:clusters"][0]["project"], cfg["meshca:clusters"][0]["location"], cfg["meshca:clusters"][0]["name"]) == ("acme-mesh-dev", "us-central1", "dev-1")
    for name in ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"):
        assert stat.S_IMODE((ops["dir"] / "certs-live" / name).stat().st_mode) == 0o600
    assert (ops["dir"] / "certs-live" / "root-cert.pem").read_bytes() == ops["ca_cert"]
    assert (ops["dir"] / "certs-live" / "ca-key.pem").read_bytes() == ops["ca_key"]
    plan = meshca(ops, "plan (discovered, baseline)", "plan", "--stack", "ops")
    assert plan.stdout.splitlines()[1].startswith("position 0 baseline (of 0..11): baseline")


def test_doctor_passes_and_names_an_unmanaged_namespace(ops):
    proc = meshca(ops, "doctor (baseline)", "doctor", "--stack", "ops")
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith("Info MCA1040 ") for line in lines), proc.stdout
    kubectl(ops, "label a stray namespace", "create", "namespace", "legacy")
    kubectl(ops, "label it for the old revision", "label", "namespace", "legacy", "istio-injection=enabled")
    try:
        proc = meshca(ops, "doctor (stray namespace)", "doctor", "--stack", "ops", check=False)
        assert proc.returncode == 1
        errors = [line for line in proc.stdout.splitlines() if line.startswith("Error ")]
        assert len(errors) == 1 and errors[0].startswith("Error MCA1044 namespace/legacy (cluster dev-1): carries istio-injection=enabled"), proc.stdout
    finally:
        kubectl(ops, "unlabel the stray namespace", "label", "namespace", "legacy", "istio-injection-")


def test_status_at_baseline(ops):
    proc = meshca(ops, "status (baseline)", "status", "--stack", "ops", "--json")
    doc = json.loads(proc.stdout)
    c = doc["clusters"][0]
    assert (c["live"]["index"], c["stack"]["index"], doc["ok"]) == (0, 0, True), proc.stdout
    assert {n["name"]: n["pods"] for n in c["namespaces"]} == {"frontend": {"default": 1}, "cart": {"default": 1}, "checkout": {"default": 1}}


def test_first_batch_by_hand(ops):
    """A1 and A2 for the stack's first batch (cart) with the tools the steps run (the asmcli stand-in, kubectl, meshca restart)."""
    certs = ops["dir"] / "certs-live"
    proc = smoke.run("asmcli install REV1 (A1)", [str(ops["dir"] / "asmcli"), "install", "--fleet_id", "acme-mesh-dev", "--kubeconfig", ops["kubeconfig"],
                                                  "--context", CTX, "--output_dir", str(ops["root"] / "asm-out"), "--enable_all", "--ca", "citadel",
                                                  "--ca_cert", str(certs / "ca-cert.pem"), "--ca_key", str(certs / "ca-key.pem"),
                                                  "--root_cert", str(certs / "root-cert.pem"), "--cert_chain", str(certs / "cert-chain.pem"),
                                                  "--option", "ca-migration-citadel", "--revision_name", REV1],
                     ops["env"], ops["dir"], ops["logs"], timeout=300, stdin="y\n")
    assert proc.returncode == 0
    kubectl(ops, "istiod-REV1 rollout", "rollout", "status", f"deployment/istiod-{REV1}", "-n", "istio-system", "--timeout=90s")
    smoke.wait_injecting(ops["env"], "frontend", "default")
    kubectl(ops, "relabel cart (A2)", "label", "namespace", "cart", f"istio.io/rev={REV1}", "istio-injection-", "--overwrite")
    smoke.wait_injecting(ops["env"], "cart", REV1)
    meshca(ops, "restart cart (A2)", "restart", "--context", CTX, "--namespace", "cart", "--revision", REV1, "--timeout", "90s")


def test_status_reports_the_live_position_and_the_mismatch(ops):
    proc = meshca(ops, "status (stack at baseline, live at batch 1)", "status", "--stack", "ops", "--json", check=False)
    assert proc.returncode == 1
    c = json.loads(proc.stdout)["clusters"][0]
    assert (c["live"]["index"], c["live"]["phase"], c["stack"]["index"], c["inSync"]) == (2, "distribute-root", 0, False), proc.stdout
    assert {n["name"]: n["pods"] for n in c["namespaces"]} == {"frontend": {"default": 1}, "cart": {REV1: 1}, "checkout": {"default": 1}}
    proc = meshca(ops, "status text (mismatch)", "status", "--stack", "ops", check=False)
    assert any(line.startswith("Warning MCA1050 cluster dev-1: the stack file is at position 0 ") for line in proc.stderr.splitlines()), proc.stderr


def test_discover_past_baseline(ops):
    proc = meshca(ops, "discover (batch 1)", "discover", "--context", CTX, "--write", "Pulumi.ops2.yaml", "--export-ca", "certs-2")
    past = [line for line in proc.stderr.splitlines() if " MCA1031 " in line]
    assert past and past[0].startswith("Info MCA1031 Pulumi.ops2.yaml: the live mesh is at position 2 "), proc.stderr
    assert (ops["dir"] / "certs-2" / "root-cert.pem").read_bytes() == ops["ca_cert"]  # cacerts now, the same CA
    plan = meshca(ops, "plan (discovered, batch 1)", "plan", "--stack", "ops2")
    assert plan.stdout.splitlines()[1].startswith("position 2 distribute-root:1 (of 0..11): distribute-root: batch 1/3")
    status = meshca(ops, "status (in sync)", "status", "--stack", "ops2", "--json")
    c = json.loads(status.stdout)["clusters"][0]
    assert (c["live"]["index"], c["stack"]["index"], c["inSync"]) == (2, 2, True)
    done = {s["id"]: s["state"] for s in c["steps"]}
    assert (done[f"A1.install.{REV1}"], done["A2.label.cart"], done["A2.restart.cart"]) == ("done", "done", "done")
    meshca(ops, "doctor (batch 1)", "doctor", "--stack", "ops2")


def test_restore_ca_restores_a_backup(ops):
    # C1, as the program runs it: the backup provider with the plan's argv (a subprocess in the project's env).
    backup_file = "backups/ops2/dev-1/istio-ca-secret.yaml"
    code = ("from meshca.providers.ca_secrets import CaSecretBackupProvider as P; import sys; "
            f"P().create({{'cluster': 'dev-1', 'secret': 'istio-ca-secret', 'file': {backup_file!r}, 'projectDir': {str(ops['dir'])!r}, "
            f"'kubeconfig': {ops['kubeconfig']!r}, 'argv': ['kubectl', '--context', {CTX!r}, 'get', 'secret/istio-ca-secret', '-n', 'istio-system', '-o', 'yaml']}})")
    smoke.run("C1 backup istio-ca-secret", [str(ops["dir"] / ".venv" / "bin" / "python"), "-c", code], ops["env"], ops["dir"], ops["logs"], timeout=120)
    path = ops["dir"] / backup_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Another cluster's backup (its path) is refused before anything is written.
    other = ops["dir"] / "backups" / "ops2" / "prod-9" / "istio-ca-secret.yaml"
    other.parent.mkdir(parents=True)
    shutil.copy2(path, other)
    kubectl(ops, "C2 delete istio-ca-secret", "delete", "secret", "istio-ca-secret", "-n", "istio-system")
    proc = meshca(ops, "restore-ca (another cluster's backup)", "restore-ca", "--from", str(other.parent), "--stack", "ops2", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"Error MCA1061 {other}:"), proc.stderr
    assert not smoke.exists(ops["env"], "secret", "istio-ca-secret", "istio-system")
    proc = meshca(ops, "restore-ca", "restore-ca", "--from", "backups/ops2/dev-1", "--stack", "ops2")
    assert proc.stdout.startswith("Info MCA1064 cluster dev-1 secret/istio-ca-secret: Secret istio-system/istio-ca-secret created from "), proc.stdout
    data = smoke.kubectl_json(ops["env"], "get", "secret", "istio-ca-secret", "-n", "istio-system")["data"]
    assert base64.b64decode(data["ca-cert.pem"]) == ops["ca_cert"] and base64.b64decode(data["ca-key.pem"]) == ops["ca_key"]


def test_zz_timings(ops):
    """Not a check: every timed command of this module."""
    lines = [f"{what}: {dt_:.1f} s" for what, dt_ in smoke.TIMINGS]
    print("\n[e2e] operator timings:\n  " + "\n  ".join(lines), file=sys.stderr)
