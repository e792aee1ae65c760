"""Issue 9 finding 10: the default revision tag and the webhooks follow the control plane.

Sources (transcribed, never computed by meshca):
- anthos-service-mesh-packages 1.19.10-asm.9+config1 ``scripts/migration/migrate-to-asm``
  lines 1434-1441 (``set_default_tag``): ``kubectl patch mutatingwebhookconfigurations
  istio-sidecar-injector --type=json -p='[{"op": "replace", "path": "/webhooks"}]'`` then
  ``istioctl tag set default --revision=REV --overwrite`` (meshca passes ``"value": []``:
  RFC 6902 4.3 requires a value for ``replace``).
- asmcli 1.19.10-asm.9+config1 ``asmcli/asmcli`` lines 4241-4242
  (``ISTIO_FOLDER_NAME="istio-${RELEASE}"``, ``ISTIOCTL_REL_PATH="${ISTIO_FOLDER_NAME}/bin/istioctl"``)
  , 4431 (``pushd "$OUTPUT_DIR"``) and 4103 (``ln -s "${ISTIOCTL_REL_PATH}" .`` in the output dir): ``<outputDir>/istioctl``;
  ``RELEASE="${MAJOR}.${MINOR}.${POINT}-asm.${REV}"`` (line 4227): 1.19.10-asm.9.
- istio 1.19.10 ``pkg/version/cobra.go`` line 100: ``istioctl version --remote=false --short``
  prints the client version alone (``%s\\n``).
- istio 1.19.10 ``istioctl/pkg/tag/generate.go`` 93-160 (``Generate``: the tag needs the
  revision's MutatingWebhookConfiguration; the ``default`` tag deactivates the
  ``istio.io/rev=default`` injector and writes ``istiod-default-validator``).
- Webhook names: istio 1.19.10 ``manifests/charts/istio-control/istio-discovery/templates/
  mutatingwebhook.yaml`` line 39 (``istio-sidecar-injector-REV``) and
  ``validatingwebhookconfiguration.yaml`` line 5 (``istio-validator-REV-istio-system``); Istio
  1.6.14 ``manifests/charts/base/templates/validatingwebhookconfiguration.yaml`` line 4
  (``istiod-istio-system``) and the 1.6 injector ``istio-sidecar-injector``.
- The validator proof: istio 1.19.10 ``pkg/config/validation/validation.go`` lines 1998-2001
  reject ``action: CUSTOM`` without ``rules``. (An *invalid* action, as the issue words it, is
  refused by the CRD's OpenAPI enum, ``manifests/charts/base/crds/crd-all.gen.yaml`` line 6380,
  before any webhook runs, so it proves nothing about the validator.)
- The injection proof: istio 1.19.10 ``revision-tags.yaml`` lines 53-81: a namespace labelled
  ``istio.io/rev=TAG``, or a pod labelled so in an unlabelled namespace, is injected by the tag.
"""

from __future__ import annotations

import shlex

import pytest

from meshca import plan as planmod
from meshca.config import load_stack_file
from meshca.errors import MeshcaErrors
from meshca.sim import switches as sw
from meshca.sim.builtin import builtin_config
from meshca.sim.emulator import Emulator
from meshca.sim.mesh import SYSTEM_NS, Namespace
from meshca.sim.start import MeshShape, build_mesh

from harness import ROOT

F10 = "issue 9 finding 10: webhooks and revision tags are not managed"

REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
OLD = "asm-1169-3"
DEV_K = "kubectl --context gke_acme-mesh-dev_us-central1_dev-1"
DEV_G = "--context gke_acme-mesh-dev_us-central1_dev-1"
DATA1_K = "kubectl --context gke_acme-mesh-data_us-central1_data-1"
DATA1_G = "--context gke_acme-mesh-data_us-central1_data-1"
EMPTY = '[{"op": "replace", "path": "/webhooks", "value": []}]'


def at(stack: str, phase: str, revision: str, **overrides):
    c = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    c = c.at(phase, False, {n.name: revision for n in c.namespaces})
    facts = {cl.name: planmod.CACERTS_MATCHING for cl in c.clusters}
    return planmod.build(c, facts)


def lines(cp, procedure):
    return [(s.id, shlex.join(s.argv)) for s in cp.steps if s.procedure == procedure and not s.is_gate]


def test_migrate_a5_empties_the_old_injector_and_tags_rev1_before_deleting_anything():
    cp = at("dev", "distribute-root-done", REV1).clusters[0]
    a5 = lines(cp, "A5")
    managed = " ".join(f"--namespace {n}" for n in (
        "frontend", "cart", "checkout", "payments", "catalog", "search", "recommendations", "shipping", "inventory", "accounts",
        "notifications", "ads",
    ))  # Pulumi.dev.yaml's meshca:namespaces, in file order
    # issue 9 finding 13's pre-flight comes first; then the tag moves, before any deletion
    assert a5[0] == ("A5.preflight", f".venv/bin/meshca preflight {DEV_G} --revision {REV1} --no-operator")
    assert a5[1:5] == [
        ("A5.injection-labels", f".venv/bin/meshca webhooks strays {DEV_G} --label istio-injection=enabled {managed}"),
        ("A5.empty-injector", f"{DEV_K} patch mutatingwebhookconfiguration istio-sidecar-injector --type json -p {shlex.quote(EMPTY)}"),
        ("A5.tag-default", f"asm-out/dev-1/{REV1}/istioctl {DEV_G} tag set default --revision {REV1} --overwrite"),
        ("A5.verify-webhooks", f".venv/bin/meshca webhooks verify {DEV_G} --revision {REV1}"),
    ]
    deletions = [sid for sid, _ in a5[5:]]
    assert deletions[0].startswith("A5.delete-gateway.")
    first_delete = cp.step(deletions[0])
    assert "A5.verify-webhooks" in first_delete.depends_on
    assert a5[-1] == (
        "A5.delete-webhooks.default",
        f"{DEV_K} delete mutatingwebhookconfiguration/istio-sidecar-injector validatingwebhookconfiguration/istiod-istio-system --ignore-not-found=true",
    )


def test_upgrade_b4_tags_rev2_with_rev2s_istioctl_and_deletes_rev1s_webhooks():
    cp = at("csm116", "mesh-ca-done", REV2).cluster("data-1")
    b4 = lines(cp, "B4")
    managed = " ".join(f"--namespace {n}" for n in ("ingest", "etl", "warehouse", "reporting", "ml-serving"))
    assert b4[0] == ("B4.preflight", f".venv/bin/meshca preflight {DATA1_G} --revision {REV2} --no-operator")
    assert b4[1:4] == [
        ("B4.injection-labels", f".venv/bin/meshca webhooks strays {DATA1_G} --label istio.io/rev={REV1} {managed}"),
        ("B4.tag-default", f"asm-out/data-1/{REV2}/istioctl {DATA1_G} tag set default --revision {REV2} --overwrite"),
        ("B4.verify-webhooks", f".venv/bin/meshca webhooks verify {DATA1_G} --revision {REV2}"),
    ]
    assert not [sid for sid, _ in b4 if sid.endswith("empty-injector")]  # upgrade: no 1.6 injector
    assert b4[-1] == (
        f"B4.delete-webhooks.{REV1}",
        f"{DATA1_K} delete mutatingwebhookconfiguration/istio-sidecar-injector-{REV1}"
        f" validatingwebhookconfiguration/istio-validator-{REV1}-istio-system --ignore-not-found=true",
    )
    a5 = dict(lines(at("csm116", "distribute-root-done", REV1).cluster("data-1"), "A5"))
    assert a5["A5.tag-default"] == f"asm-out/data-1/{REV1}/istioctl {DATA1_G} tag set default --revision {REV1} --overwrite"
    assert a5[f"A5.delete-webhooks.{OLD}"].endswith(
        f"delete mutatingwebhookconfiguration/istio-sidecar-injector-{OLD}"
        f" validatingwebhookconfiguration/istio-validator-{OLD}-istio-system --ignore-not-found=true"
    )


def test_istioctl_path_key_replaces_the_output_dir_default(tmp_path):
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("  meshca:asmcliPath: ./asmcli\n", "  meshca:asmcliPath: ./asmcli\n  meshca:istioctlPath: bin/istioctl\n")
    assert "meshca:istioctlPath" in text
    for f in ROOT.glob("Pulumi.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    for d in ("samples", "overlays"):
        (tmp_path / d).symlink_to(ROOT / d)
    c = load_stack_file(tmp_path / "Pulumi.dev.yaml")
    cp = planmod.build(c.at("distribute-root-done", False, {n.name: REV1 for n in c.namespaces})).clusters[0]
    assert cp.step("A5.tag-default").argv[0] == "bin/istioctl"


def test_istioctl_must_report_the_pinned_version():
    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    cluster = c.clusters[0]
    assert planmod.istioctl_version_fact("1.19.10-asm.9\n", c, cluster, "asm-out/dev-1/x/istioctl") == "1.19.10-asm.9"
    with pytest.raises(MeshcaErrors) as err:
        planmod.istioctl_version_fact("1.19.9-asm.1\n", c, cluster, "asm-out/dev-1/x/istioctl")
    [line] = err.value.lines()
    assert "MCA0340 asm-out/dev-1/x/istioctl: istioctl reports 1.19.9-asm.1, the pinned asmcli installs 1.19.10-asm.9" in line


# ----------------------------------------------------------------------------- on the simulated mesh


def world(use_case: str):
    cfg = builtin_config(clusters=1, namespaces=2, batch_size=1, use_case=use_case)
    mesh = build_mesh(cfg, sw.resolve({}), MeshShape(workloads=1))
    return cfg, mesh, Emulator(mesh, asmcli_path=cfg.asmcli.path), next(iter(mesh.clusters.values()))


def walk(cfg, em, phase: str, revision: str, stop_before: str | None = None):
    """Every non-gate step of the cumulative plan at ``phase`` (all namespaces on ``revision``)."""
    p = planmod.build(cfg.at(phase, False, {n.name: revision for n in cfg.namespaces}), {c.name: planmod.CACERTS_MATCHING for c in cfg.clusters})
    for s in p.clusters[0].steps:
        if s.id == stop_before:
            return s
        if s.is_gate:
            continue
        result = em.run(s.argv, s.stdin, subject=s.id)
        assert result.ok, (s.id, result.stderr)
    return None


def dry_run_pod(em, cluster, namespace: str, labels: dict | None = None):
    import json

    import yaml

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace, "labels": labels or {}},
           "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}
    k = ("kubectl", "--kubeconfig", cluster.kubeconfig, "--context", cluster.context)
    r = em.run((*k, "create", "--dry-run=server", "-f", "-", "-o", "json"), yaml.safe_dump(pod))
    return r, (json.loads(r.stdout) if r.ok else None)


def test_upgrade_starts_with_the_default_tag_on_the_old_revision():
    cfg, mesh, em, cluster = world("upgrade")
    tag = cluster.objects[("MutatingWebhookConfiguration", "", "istio-revision-tag-default")]
    assert tag["metadata"]["labels"]["istio.io/tag"] == "default"
    assert {w["clientConfig"]["service"]["name"] for w in tag["webhooks"]} == {f"istiod-{OLD}"}
    validator = cluster.objects[("ValidatingWebhookConfiguration", "", "istiod-default-validator")]
    assert {w["clientConfig"]["service"]["name"] for w in validator["webhooks"]} == {f"istiod-{OLD}"}


def test_upgrade_a5_moves_the_tag_so_tagged_namespaces_keep_getting_sidecars():
    cfg, mesh, em, cluster = world("upgrade")
    cluster.namespaces["tagged"] = Namespace("tagged", {"istio.io/rev": "default"})
    walk(cfg, em, "distribute-root-done", cfg.rev1)
    assert f"istiod-{OLD}" not in {o[2] for o in cluster.objects if o[0] == "Deployment"}
    r, pod = dry_run_pod(em, cluster, "tagged")
    assert r.ok, r.stderr
    assert "istio-proxy" in [c["name"] for c in pod["spec"]["containers"]]
    assert pod["metadata"]["annotations"]["istio.io/rev"] == cfg.rev1
    assert ("MutatingWebhookConfiguration", "", f"istio-sidecar-injector-{OLD}") not in cluster.objects


def test_a5_refuses_while_an_unlisted_namespace_keeps_the_old_label():
    cfg, mesh, em, cluster = world("upgrade")
    cluster.namespaces["legacy"] = Namespace("legacy", {"istio.io/rev": OLD})
    step = walk(cfg, em, "distribute-root-done", cfg.rev1, stop_before="A5.injection-labels")
    r = em.run(step.argv, step.stdin, subject=step.id)
    assert r.rc == 2
    assert f"MCA0341 namespace legacy: carries istio.io/rev={OLD} but is not in meshca:namespaces" in r.stderr


def test_verify_webhooks_proves_validation_and_injection_and_fails_before_the_tag():
    cfg, mesh, em, cluster = world("migrate")
    tag = walk(cfg, em, "distribute-root-done", cfg.rev1, stop_before="A5.tag-default")
    verify = next(s for s in planmod.build(cfg.at("distribute-root-done", False, {n.name: cfg.rev1 for n in cfg.namespaces})).clusters[0].steps if s.id == "A5.verify-webhooks")
    before = em.run(verify.argv, subject=verify.id)
    assert before.rc == 2 and "MCA0343" in before.stderr  # the emptied 1.6 injector injects nobody yet
    assert em.run(tag.argv, tag.stdin, subject=tag.id).ok
    after = em.run(verify.argv, subject=verify.id)
    assert after.ok, after.stderr
    # the validator behind Service istiod denies a CUSTOM policy without rules
    import yaml

    ap = {"apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy", "metadata": {"name": "probe", "namespace": "default"}, "spec": {"action": "CUSTOM"}}
    k = ("kubectl", "--kubeconfig", cluster.kubeconfig, "--context", cluster.context)
    denied = em.run((*k, "create", "--dry-run=server", "-f", "-", "-o", "json"), yaml.safe_dump(ap))
    assert denied.rc == 1 and 'admission webhook "validation.istio.io" denied the request' in denied.stderr


def test_verify_reports_a_validator_that_accepts_the_invalid_policy():
    """Without any default validator the CUSTOM policy is accepted: MCA0342."""
    cfg, mesh, em, cluster = world("upgrade")
    del cluster.objects[("ValidatingWebhookConfiguration", "", "istiod-default-validator")]
    r = em.run(("meshca", "webhooks", "verify", "--kubeconfig", cluster.kubeconfig, "--context", cluster.context, "--revision", OLD))
    assert r.rc == 2
    assert "MCA0342 AuthorizationPolicy istio-system/meshca-webhook-probe: the default validating webhook did not deny an invalid AuthorizationPolicy (accepted)" in r.stderr


def test_an_unreadable_namespace_list_is_named():
    import subprocess

    from meshca import webhooks

    class Broken:
        def run(self, *args, stdin=None, timeout=120):
            return subprocess.CompletedProcess(args, 1, "", "The connection to the server 10.0.0.1 was refused - did you specify the right host or port?\n")

    with pytest.raises(MeshcaErrors) as err:
        webhooks.strays(Broken(), {"istio.io/rev": OLD}, [])
    [line] = err.value.lines()
    assert "MCA0344 namespaces: kubectl get namespaces failed: The connection to the server 10.0.0.1 was refused" in line


def test_the_program_refuses_another_istioctl_in_preview():
    """The tag steps' istioctl is probed when the program runs (preview included): another
    version stops it with MCA0340 before any step; the pinned one reaches the tag Command."""
    from harness import run_program

    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    done_a = next(p for p in planmod.route(c) if p.phase == "distribute-root-done")
    overrides = {"phase": done_a.phase, "namespaces": done_a.namespace_map}
    bad = run_program("dev", overrides, preview=True, istioctl_version="1.19.9-asm.1\n")
    assert "MCA0340 asm-out/dev-1/asm-11910-9-distribute-root/istioctl: istioctl reports 1.19.9-asm.1" in str(bad.error)
    good = run_program("dev", overrides, preview=True)
    assert good.error is None
    tag = good.named("dev-1.A5.tag-default")
    assert tag.inputs["create"] == f"asm-out/dev-1/{REV1}/istioctl {DEV_G} tag set default --revision {REV1} --overwrite"
    assert tag.inputs["environment"]["MESHCA_ISTIOCTL_VERSION"] == "1.19.10-asm.9"
