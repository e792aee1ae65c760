"""The plan pins the commands of procedure.md, with the guide's mistakes corrected.

Expected command lines are literal strings transcribed from procedure.md / the guide and
asmcli's flag parser, never computed with meshca code.
"""

from __future__ import annotations

import shlex

import pytest

from meshca import plan
from meshca.config import load_stack_file

from harness import ROOT

DEV_K = "kubectl --context gke_acme-mesh-dev_us-central1_dev-1"
DATA1_K = "kubectl --context gke_acme-mesh-data_us-central1_data-1"
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
OLD = "asm-1169-3"


def config(stack: str):
    return load_stack_file(ROOT / f"Pulumi.{stack}.yaml")


def at(stack: str, phase: str, rollback: bool = False, moved: dict | None = None, cacerts=None):
    c = config(stack)
    names = [n.name for n in c.namespaces]
    default_rev = {
        "baseline": c.old_revision,
        "distribute-root": c.old_revision,
        "distribute-root-done": c.rev1,
        "mesh-ca": c.rev1,
        "mesh-ca-done": c.rev2,
        "old-root-removed": c.rev2,
    }[phase]
    mapping = {n: default_rev for n in names}
    mapping.update(moved or {})
    return plan.build(c.at(phase, rollback, mapping), cacerts)


def line(step) -> str:
    from meshca.commands import shell_join

    return shell_join(step.argv)


# The default tag and webhook steps of A5/B4 and the removals (issue 9 finding 10) are pinned
# in test_webhook_tags.py; the guide's own commands are pinned here.
TAG_ACTIONS = ("check-injection-labels", "empty-injector", "tag-default", "verify-webhooks", "delete-webhooks")


def test_rev1_install_is_the_guides_command_with_context_and_prompt_answered():
    p = at("dev", "distribute-root")
    step = p.clusters[0].step(f"A1.install.{REV1}")
    assert line(step) == (
        "./asmcli install --fleet_id acme-mesh-dev --kubeconfig \"$KUBECONFIG\""
        " --context gke_acme-mesh-dev_us-central1_dev-1 --output_dir asm-out/dev-1/asm-11910-9-distribute-root"
        " --enable_all --ca citadel --ca_cert samples/certs/ca-cert.pem --ca_key samples/certs/ca-key.pem"
        " --root_cert samples/certs/root-cert.pem --cert_chain samples/certs/cert-chain.pem"
        " --option ca-migration-citadel --revision_name asm-11910-9-distribute-root"
    )
    assert step.stdin == "y\n"  # asmcli asks "Continue? [y/N]" when istio-ingressgateway exists
    # asmcli --version compared with the pin (asmcli/asmcli:774-780 prints the bare version)
    assert line(p.clusters[0].step("A1.verify-asmcli")).endswith("tool-version --expect 1.19.10-asm.9+config1 -- ./asmcli --version")


def test_rev2_install_has_no_certificate_flag_and_the_real_option_name():
    p = at("dev", "mesh-ca")
    step = p.clusters[0].step(f"B1.install.{REV2}")
    assert line(step) == (
        "./asmcli install --fleet_id acme-mesh-dev --kubeconfig \"$KUBECONFIG\""
        " --context gke_acme-mesh-dev_us-central1_dev-1 --output_dir asm-out/dev-1/asm-11910-9-meshca-ca-migration"
        " --enable_all --ca mesh_ca --option ca-migration-meshca"
        " --custom_overlay asm-out/dev-1/asm-11910-9-meshca-ca-migration.citadel-root.yaml"
        " --revision_name asm-11910-9-meshca-ca-migration"
    )
    overlay = p.clusters[0].step("B1.citadel-root-overlay")
    assert line(overlay) == (
        ".venv/bin/meshca overlay citadel-root --root-cert samples/certs/root-cert.pem"
        " --output asm-out/dev-1/asm-11910-9-meshca-ca-migration.citadel-root.yaml"
    )
    assert overlay.id in step.depends_on
    assert not {"--root_cert", "--cert_chain", "--ca_cert", "--ca_key"} & set(step.argv)
    assert step.argv.count("--output_dir") == 1


def test_upgrade_install_repeats_the_custom_overlay_for_both_revisions():
    p = at("csm116", "mesh-ca", cacerts={"data-1": plan.CACERTS_MATCHING, "data-2": plan.CACERTS_MATCHING})
    c1 = p.cluster("data-1")
    rev1_install = line(c1.step(f"A1.install.{REV1}"))
    rev2_install = line(c1.step(f"B1.install.{REV2}"))
    assert rev1_install.endswith(
        "--enable_all --ca citadel --option ca-migration-citadel --custom_overlay overlays/ingress-hpa.yaml"
        " --revision_name asm-11910-9-distribute-root"
    )
    assert rev2_install.endswith(
        "--enable_all --ca mesh_ca --option ca-migration-meshca --custom_overlay overlays/ingress-hpa.yaml"
        " --custom_overlay asm-out/data-1/asm-11910-9-meshca-ca-migration.citadel-root.yaml"
        " --revision_name asm-11910-9-meshca-ca-migration"
    )


def test_the_guides_literal_rev2_install_when_the_citadel_root_overlay_is_off():
    import dataclasses

    c = dataclasses.replace(config("dev"), rev2_citadel_root=False)
    p = plan.build(c.at("old-root-removed", False, {n.name: REV2 for n in c.namespaces}))
    cp = p.clusters[0]
    assert line(cp.step(f"B1.install.{REV2}")).endswith("--ca mesh_ca --option ca-migration-meshca --revision_name asm-11910-9-meshca-ca-migration")
    assert not [s for s in cp.steps if s.action in ("write-overlay", "drop-root")]


def test_certificate_flags_are_left_out_when_a_matching_cacerts_exists():
    absent = at("csm116", "distribute-root", cacerts={"data-1": plan.CACERTS_ABSENT})
    matching = at("csm116", "distribute-root", cacerts={"data-1": plan.CACERTS_MATCHING})
    with_flags = absent.cluster("data-1").step(f"A1.install.{REV1}").argv
    without = matching.cluster("data-1").step(f"A1.install.{REV1}").argv
    assert "--ca_key" in with_flags and "--ca_key" not in without
    assert [a for a in with_flags if a not in without] == [
        "--ca_cert", "samples/certs/ca-cert.pem", "--ca_key", "samples/certs/ca-key.pem",
        "--root_cert", "samples/certs/root-cert.pem", "--cert_chain", "samples/certs/cert-chain.pem",
    ]


def test_prerequisites_declared_with_pulumi_drop_enable_all():
    c = config("dev")
    import dataclasses

    p = plan.build(dataclasses.replace(c, prerequisites="pulumi"))
    argv = p.clusters[0].step(f"A1.install.{REV1}").argv
    assert "--enable_all" not in argv
    assert argv[argv.index("--output_dir") + 2 : argv.index("--ca")] == (
        "--enable_gcp_iam_roles", "--enable_cluster_roles", "--enable_cluster_labels", "--enable_meshconfig_init"
    )


def test_namespace_moves_are_the_guides_label_commands_and_a_full_restart():
    p = at("dev", "distribute-root", moved={"frontend": REV1})
    cp = p.clusters[0]
    assert line(cp.step("A2.label.frontend")) == f"{DEV_K} label namespace frontend istio.io/rev={REV1} istio-injection- --overwrite"
    assert line(cp.step("A2.restart.frontend")) == (
        ".venv/bin/meshca restart --context gke_acme-mesh-dev_us-central1_dev-1"
        f" --namespace frontend --revision {REV1}"
    )
    # operational settings reach the command through its environment (issue 9 finding 2)
    assert dict(cp.step("A2.restart.frontend").env) == {"KUBECONFIG": "kubeconfigs/dev.yaml", "MESHCA_RESTART_TIMEOUT": "600s"}
    assert cp.step("A2.restart.frontend").depends_on[0] == "A2.label.frontend"
    assert "A2.label.cart" not in {s.id for s in cp.steps}
    b = at("dev", "mesh-ca", moved={"frontend": REV2}).clusters[0]
    assert line(b.step("B2.label.frontend")) == f"{DEV_K} label namespace frontend istio.io/rev={REV2} --overwrite"


def _waits_for(cp, step_id: str) -> set[str]:
    """Every step ``step_id`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(cp.step(step_id).depends_on)
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(cp.step(d).depends_on)
    return seen


def test_batches_move_one_after_another():
    # Pulumi.staging.yaml's meshca:batches, as written there
    batches = [["frontend", "cart", "checkout"], ["payments", "catalog", "search"], ["recommendations", "shipping", "inventory"], ["accounts", "notifications", "ads"]]
    p = at("staging", "distribute-root", moved={n: REV1 for b in batches for n in b})
    cp = p.cluster("staging-east")
    for k, batch in enumerate(batches):
        for ns in batch:
            waits = _waits_for(cp, f"A2.label.{ns}")
            # every namespace of the batch before is relabelled and restarted first
            assert {f"A2.restart.{n}" for b in batches[:k] for n in b} <= waits, ns
            # the namespaces of one batch run side by side: none waits for another's restart
            assert not {f"A2.restart.{n}" for n in batch} & waits, ns
            assert not {f"A2.{a}.{n}" for b in batches[k + 1 :] for n in b for a in ("label", "restart")} & waits, ns


def test_batch_boundaries_are_not_batch_squared_edges(tmp_path):
    # Issue 13 "nothing quadratic in steps": 300 namespaces in 4 batches of 75. Each label of a
    # batch once depended directly on all 75 restarts of the batch before (3 x 75 x 75 = 16,875
    # edges); now a batch waits through its first label, so the edges grow with the namespaces.
    import yaml

    doc = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())
    names = [f"ns-{i:03d}" for i in range(300)]
    doc["config"]["meshca:namespaces"] = {n: REV1 for n in names}
    doc["config"]["meshca:batches"] = [names[i : i + 75] for i in range(0, 300, 75)]
    doc["config"]["meshca:phase"] = "distribute-root"
    for key in ("meshca:caFiles",):
        doc["config"][key] = {k: str(ROOT / v) for k, v in doc["config"][key].items()}
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.big.yaml").write_text(yaml.safe_dump(doc))
    cp = plan.build(load_stack_file(tmp_path / "Pulumi.big.yaml")).cluster("staging-east")
    labels = [s for s in cp.steps if s.action == "label"]
    assert len(labels) == 300
    assert sum(len(s.depends_on) for s in labels) <= 2 * 300 + 4 * 75
    assert _waits_for(cp, "A2.label.ns-299") >= {f"A2.restart.{n}" for n in names[:225]}


def test_migrate_finish_keeps_the_istiod_service_for_the_validation_webhook():
    cp = at("dev", "distribute-root-done").clusters[0]
    a5 = [s for s in cp.steps if s.procedure == "A5" and s.action not in TAG_ACTIONS]
    assert [line(s) for s in a5] == [
        # issue 9 finding 13: a pre-flight refuses a running in-cluster operator; the istiod
        # Service is the kpt package's, on stdin, not a local asm-out/ file
        f".venv/bin/meshca preflight --context gke_acme-mesh-dev_us-central1_dev-1 --revision {REV1} --no-operator",
        f"{DEV_K} delete deploy/istio-ingressgateway -n istio-system --ignore-not-found=true",
        f"{DEV_K} apply -f -",
        f"{DEV_K} delete Deployment,HorizontalPodAutoscaler,PodDisruptionBudget istiod -n istio-system --ignore-not-found=true",
        f"{DEV_K} delete IstioOperator installed-state installed-state-default -n istio-system --ignore-not-found=true",
    ]
    # The Service is re-targeted before the old Deployment goes, and never deleted after.
    assert cp.step("A5.delete-istiod.default").depends_on[0] == "A5.apply-istiod-service"
    # the old gateway goes only after the default tag moved and was proven (A5.verify-webhooks);
    # the tag moves only after the pre-flight, which follows the A3 gate and the A4 canary serving
    assert cp.step("A5.delete-gateway.istio-system.istio-ingressgateway").depends_on == ("A5.verify-webhooks", "A3.gate.root-cert")
    assert cp.step("A5.preflight").depends_on == ("A3.gate.root-cert", "A4.gateway-ready.istio-system.istio-ingressgateway")
    assert set(cp.step("A5.injection-labels").depends_on) == {"A5.preflight", "A3.gate.root-cert"}


def test_upgrade_finish_deletes_the_labelled_old_revision():
    cp = at("csm116", "distribute-root-done", cacerts={"data-1": plan.CACERTS_MATCHING, "data-2": plan.CACERTS_MATCHING}).cluster("data-1")
    a5 = [line(s) for s in cp.steps if s.procedure == "A5" and s.action not in TAG_ACTIONS]
    assert a5 == [
        f".venv/bin/meshca preflight --context gke_acme-mesh-data_us-central1_data-1 --revision {REV1} --no-operator",
        # by name, not the guide's `-l app=istio-ingressgateway,istio.io/rev=OLD` (issue 9 finding 11)
        f"{DATA1_K} delete deploy/istio-ingressgateway -n istio-system --ignore-not-found=true",
        f"{DATA1_K} apply -f -",
        f"{DATA1_K} delete Service,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget istiod-asm-1169-3 -n istio-system --ignore-not-found=true",
        f"{DATA1_K} delete IstioOperator installed-state-asm-1169-3 -n istio-system --ignore-not-found=true",
    ]


def test_rollback_of_phase_a_is_the_guides_a6_for_both_use_cases():
    cp = at("dev", "distribute-root", rollback=True, moved={"frontend": REV1, "cart": REV1, "checkout": REV1}).clusters[0]
    a6 = [line(s) for s in cp.steps if s.procedure == "A6" and s.action not in TAG_ACTIONS]
    assert a6[0] == f"{DEV_K} delete deploy/istio-ingressgateway-{REV1} -n istio-system --ignore-not-found=true"
    assert f"{DEV_K} label namespace frontend istio.io/rev- istio-injection=enabled --overwrite" in a6
    assert a6[-2:] == [
        f"{DEV_K} delete Service,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget istiod-{REV1} -n istio-system --ignore-not-found=true",
        f"{DEV_K} delete IstioOperator installed-state-{REV1} -n istio-system --ignore-not-found=true",
    ]
    assert cp.desired.pod_revisions["frontend"] == "default"
    assert dict(cp.desired.namespace_labels["frontend"]) == {"istio-injection": "enabled"}
    assert REV1 not in cp.desired.control_planes
    up = at("csm116", "distribute-root", rollback=True, moved={"ingest": REV1}, cacerts={"data-1": "matching", "data-2": "matching"}).cluster("data-1")
    assert f"{DATA1_K} label namespace ingest istio.io/rev={OLD} --overwrite" in [line(s) for s in up.steps if s.procedure == "A6"]


def test_rollback_of_phase_b_downgrades_the_gateway_in_place_then_removes_rev2():
    moved = {"frontend": REV2, "cart": REV2}
    cp = at("dev", "mesh-ca", rollback=True, moved=moved).clusters[0]
    b5 = [s for s in cp.steps if s.procedure == "B5" and s.action not in TAG_ACTIONS]
    assert b5[0].action == "gateway" and b5[0].params["revision"] == REV1
    assert f"{DEV_K} label namespace frontend istio.io/rev={REV1} --overwrite" in [line(s) for s in b5]
    # no gateway deletion: the only listed gateway was downgraded in place (issue 9 finding 11)
    assert [line(s) for s in b5[-2:]] == [
        f"{DEV_K} delete Service,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget istiod-{REV2} -n istio-system --ignore-not-found=true",
        f"{DEV_K} delete IstioOperator installed-state-{REV2} -n istio-system --ignore-not-found=true",
    ]
    assert dict(cp.desired.canary_gateways) == {f"istio-system/istio-ingressgateway-{REV1}": REV1}


def test_phase_c_backs_up_then_deletes_then_restarts():
    cp = at("dev", "old-root-removed").clusters[0]
    c = [s for s in cp.steps if s.procedure in ("C1", "C2", "C3")]
    assert [line(s) for s in c] == [
        f"{DEV_K} get secret/cacerts -n istio-system -o yaml",
        f"{DEV_K} get secret/istio-ca-secret -n istio-system -o yaml",
        f"{DEV_K} delete secret cacerts istio-ca-secret -n istio-system --ignore-not-found",
        ".venv/bin/meshca mesh-config drop-root --context gke_acme-mesh-dev_us-central1_dev-1"
        f" --revision {REV2} --root-cert samples/certs/root-cert.pem",
        f"{DEV_K} rollout restart deployment -n istio-system",
    ]
    assert cp.step("C3.restart-control-plane").depends_on[0] == "C2.drop-citadel-root"
    assert set(cp.step("C2.delete-ca-secrets").depends_on) == {"C0.gate.workload-cert", "C1.backup.cacerts", "C1.backup.istio-ca-secret"}
    assert cp.step("C1.backup.cacerts").params["file"] == "backups/dev/dev-1/cacerts.yaml"
    assert not cp.desired.ca_secrets


def test_gateway_upgrade_in_place_changes_revision_labels_never_the_selector():
    """A4 clones the listed gateway; B3 re-clones the canary itself onto REV2 under the same
    name, so the (immutable) selector stays and only the revision labels change."""
    from meshca.gateway import clone_objects

    a = at("dev", "distribute-root-done").clusters[0].step("A4.gateway.istio-system.istio-ingressgateway")
    b = at("dev", "mesh-ca-done").clusters[0].step("B3.gateway.istio-system.istio-ingressgateway")
    assert a.params["deployment"] == b.params["deployment"] == f"istio-ingressgateway-{REV1}"
    assert (a.params["source"], b.params["source"]) == ("istio-ingressgateway", f"istio-ingressgateway-{REV1}")
    live = {
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": {"app": "istio-ingressgateway"}},
        "spec": {
            "selector": {"matchLabels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}},
            "template": {"metadata": {"labels": {"app": "istio-ingressgateway", "istio": "ingressgateway"}},
                         "spec": {"serviceAccountName": "istio-ingressgateway-service-account", "containers": [{"name": "istio-proxy", "image": "proxyv2"}]}},
        },
    }
    [ca] = clone_objects(live, None, None, name=a.params["deployment"], revision=REV1)
    [cb] = clone_objects(ca, None, None, name=b.params["deployment"], revision=REV2)
    assert ca["spec"]["selector"] == cb["spec"]["selector"] == {
        "matchLabels": {"app": "istio-ingressgateway", "istio": "ingressgateway", "meshca.io/gateway": f"istio-ingressgateway-{REV1}"}
    }
    assert ca["metadata"]["labels"]["istio.io/rev"] == REV1 and cb["metadata"]["labels"]["istio.io/rev"] == REV2
    assert ca["spec"]["template"]["metadata"]["labels"]["istio.io/rev"] == REV1
    assert cb["spec"]["template"]["metadata"]["labels"]["istio.io/rev"] == REV2
    assert cb["spec"]["template"]["spec"]["serviceAccountName"] == "istio-ingressgateway-service-account"


def selector_matches(selector: str, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (kv.split("=", 1) for kv in selector.split(",")))


def test_retired_gateways_are_named_and_never_the_serving_canary():
    a = at("dev", "distribute-root-done").clusters[0]
    canary_a = a.step("A4.gateway.istio-system.istio-ingressgateway").params["deployment"]
    a5 = a.step("A5.delete-gateway.istio-system.istio-ingressgateway")
    assert a5.argv[a5.argv.index("delete") + 1] == "deploy/istio-ingressgateway" != f"deploy/{canary_a}"
    up = at("csm116", "distribute-root-done", cacerts={"data-1": "matching", "data-2": "matching"}).cluster("data-1")
    up_canary = up.step("A4.gateway.istio-system.istio-ingressgateway").params["deployment"]
    assert up.step("A5.delete-gateway.istio-system.istio-ingressgateway").params["deployment"] == "istio-ingressgateway" != up_canary
    # B4 deletes no gateway: B3 upgraded the canary in place
    assert not [s for s in at("dev", "mesh-ca-done").clusters[0].steps if s.action == "delete-gateway" and s.procedure == "B4"]


@pytest.mark.parametrize("stack", ["dev", "csm116"])
def test_every_step_after_a_gate_depends_on_it(stack):
    c = config(stack)
    facts = {cl.name: plan.CACERTS_MATCHING for cl in c.clusters}
    for position in plan.route(c):
        for cp in plan.plan_at(c, position, facts).clusters:
            gate = None
            for step in cp.steps:
                if step.is_gate:
                    gate = step.id
                elif gate:
                    assert gate in step.depends_on, (position.label, step.id, gate)


def test_gates_pin_the_check_flags_and_certify_a_fixed_map():
    c = config("dev")
    cp = at("dev", "old-root-removed").clusters[0]
    assert line(cp.step("C4.gate.old-root-absent")) == (
        ".venv/bin/meshca check root-cert --context gke_acme-mesh-dev_us-central1_dev-1"
        " --source kube --require MESHCA --forbid CITADEL,UNKNOWN --citadel-root samples/certs/root-cert.pem --concurrency 16 --json"
    )
    a3 = at("dev", "distribute-root", moved={n.name: REV1 for n in c.namespaces}).clusters[0].step("A3.gate.root-cert")
    assert line(a3) == (
        ".venv/bin/meshca check root-cert --context gke_acme-mesh-dev_us-central1_dev-1"
        " --source kube --require CITADEL,MESHCA --retiring-deployment istio-system/istio-ingressgateway"
        " --citadel-root samples/certs/root-cert.pem --concurrency 16 --json"
    )
    # The same gate in a later phase certifies the same map: it does not re-run there.
    later = at("dev", "mesh-ca", moved={"frontend": REV2}).clusters[0].step("A3.gate.root-cert")
    assert later.params["namespaceDigest"] == a3.params["namespaceDigest"]
    assert set(a3.params["namespaces"].values()) == {REV1}


def test_route_walks_every_phase_and_batch_and_locates_the_stack():
    c = config("dev")
    r = plan.route(c)
    assert [p.phase for p in r] == (
        ["baseline"] + ["distribute-root"] * 5 + ["distribute-root-done"] + ["mesh-ca"] * 5 + ["mesh-ca-done", "old-root-removed"]
    )
    assert plan.locate(c) == 2  # dev moved its first batch (frontend, cart, checkout)
    assert r[2].namespace_map["checkout"] == REV1 and r[2].namespace_map["payments"] == "default"


def test_a_namespace_map_off_the_batch_order_plans_with_a_coded_warning(tmp_path):
    """Namespaces moved out of batch order: still a valid map, but not a position of the route."""
    import shutil
    import subprocess
    import sys

    import yaml

    from harness import ROOT

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    ns = doc["config"]["meshca:namespaces"]
    ns["frontend"], ns["ads"] = "default", "asm-11910-9-distribute-root"  # ads moved before frontend
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run([sys.executable, "-m", "meshca", "plan", "--config", str(tmp_path / "Pulumi.dev.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "position: off the route's batch order (see MCA0304 on stderr)" in proc.stdout
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("Warning MCA0304 ")]
    assert warning.startswith("Warning MCA0304 meshca:namespaces: the namespace map moves ads, cart, checkout outside the configured batch order; fix: ")
