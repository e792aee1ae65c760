"""The real Pulumi program under mocks, fed with the real stack files, at every position.

What `pulumi preview` would show: the exact commands (literal strings from procedure.md),
labels per namespace, deletion Commands and their dependencies, one provider per cluster,
and nothing at all when the config is invalid.
"""

from __future__ import annotations

import base64
import dataclasses
import shlex

from meshca.commands import shell_join

import pytest

from meshca import plan
from meshca.config import load_stack_file

from harness import ROOT, run_program

REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
DEV_K = "kubectl --context gke_acme-mesh-dev_us-central1_dev-1"
COMMAND = "command:local:Command"
PATCH = "kubernetes:core/v1:NamespacePatch"
GATE = "pulumi-python:dynamic/meshca:TrustGate"


def overrides_for(position: plan.Position, config=None) -> dict:
    """The stack file at ``position`` (what the operator writes), extra labels kept."""
    labels = {n.name: dict(n.labels) for n in config.namespaces if n.labels} if config else {}
    namespaces = {
        ns: ({"revision": rev, "labels": labels[ns]} if ns in labels else rev) for ns, rev in position.namespace_map.items()
    }
    return {"phase": position.phase, "rollback": position.rollback, "namespaces": namespaces}


def matching_cacerts_stdout() -> str:
    """What `kubectl get secret cacerts -o jsonpath=...` prints when cacerts holds the samples."""
    certs = ROOT / "samples" / "certs"
    return " ".join(base64.b64encode((certs / n).read_bytes()).decode() for n in ("ca-cert.pem", "root-cert.pem", "cert-chain.pem"))


def csm116_cacerts() -> dict:
    return {c.context: matching_cacerts_stdout() for c in load_stack_file(ROOT / "Pulumi.csm116.yaml").clusters}


def route_of(stack: str):
    config = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    return config, plan.route(config)


def test_dev_as_shipped_renders_the_current_position():
    result = run_program("dev")
    assert result.error is None
    creates = {r.name: r.inputs["create"] for r in result.commands()}
    assert creates["dev-1.A1.install.asm-11910-9-distribute-root"] == (
        "./asmcli install --fleet_id acme-mesh-dev --kubeconfig \"$KUBECONFIG\""
        " --context gke_acme-mesh-dev_us-central1_dev-1 --output_dir asm-out/dev-1/asm-11910-9-distribute-root"
        " --enable_all --ca citadel --ca_cert samples/certs/ca-cert.pem --ca_key samples/certs/ca-key.pem"
        " --root_cert samples/certs/root-cert.pem --cert_chain samples/certs/cert-chain.pem"
        " --option ca-migration-citadel --revision_name asm-11910-9-distribute-root"
    )
    install = result.named("dev-1.A1.install.asm-11910-9-distribute-root")
    assert install.inputs["stdin"] == "y\n"
    assert install.inputs["environment"]["MESHCA_CACERTS"] == "absent"
    assert set(install.ignore_changes) == {"create", "environment", "stdin"}  # never re-run by a later phase
    assert creates["dev-1.A2.label.frontend"] == f"{DEV_K} label namespace frontend istio.io/rev={REV1} istio-injection- --overwrite"
    patches = {r.inputs["metadata"]["name"]: r for r in result.of_type(PATCH)}
    assert set(patches) == {"frontend", "cart", "checkout"}
    assert patches["cart"].inputs["metadata"]["labels"] == {"istio.io/rev": REV1}
    assert patches["cart"].inputs["metadata"]["annotations"] == {"pulumi.com/patchForce": "true"}  # 4.25.0 forces only so (issue 9 finding 8, components/namespace_revision.py)
    assert patches["cart"].retain_on_delete
    assert result.outputs["phase"] == "distribute-root" and result.outputs["position"] == 2


def test_the_install_drops_its_certificate_flags_when_a_matching_cacerts_exists():
    result = run_program("csm116", {"phase": "distribute-root"}, cacerts=csm116_cacerts())
    assert result.error is None
    install = result.named("data-1.A1.install.asm-11910-9-distribute-root")
    assert install.inputs["create"] == (
        "./asmcli install --fleet_id acme-mesh-data --kubeconfig \"$KUBECONFIG\""
        " --context gke_acme-mesh-data_us-central1_data-1 --output_dir asm-out/data-1/asm-11910-9-distribute-root"
        " --enable_all --ca citadel --option ca-migration-citadel --custom_overlay overlays/ingress-hpa.yaml"
        " --revision_name asm-11910-9-distribute-root"
    )
    assert install.inputs["environment"]["MESHCA_CACERTS"] == "matching"
    probes = sorted(args["command"] for token, args in result.calls if token == "command:local:run")
    assert probes == [
        "kubectl --context gke_acme-mesh-data_us-central1-b_data-2 get secret cacerts"
        " -n istio-system --ignore-not-found -o 'jsonpath={.data.ca-cert\\.pem} {.data.root-cert\\.pem} {.data.cert-chain\\.pem}'",
        "kubectl --context gke_acme-mesh-data_us-central1_data-1 get secret cacerts"
        " -n istio-system --ignore-not-found -o 'jsonpath={.data.ca-cert\\.pem} {.data.root-cert\\.pem} {.data.cert-chain\\.pem}'",
    ]


def test_a_cacerts_of_another_ca_stops_the_program():
    from meshca import pki

    root, ca = pki.citadel_ca("someone-else")
    other = " ".join(base64.b64encode(pem).decode() for pem in (ca.cert_pem, root.cert_pem, ca.cert_pem + root.cert_pem))
    result = run_program("dev", cacerts={"gke_acme-mesh-dev_us-central1_dev-1": other})
    assert "MCA0305" in str(result.error)
    assert all("asmcli install" not in r.inputs.get("create", "") for r in result.commands())


@pytest.mark.parametrize("stack", ["dev", "csm116"])
def test_every_position_renders_the_plans_own_steps(stack):
    """One step list, two consumers: the Commands are exactly the plan's argv."""
    config, route = route_of(stack)
    cacerts = csm116_cacerts() if stack == "csm116" else None
    facts = {c.name: (plan.CACERTS_MATCHING if stack == "csm116" else plan.CACERTS_ABSENT) for c in config.clusters}
    rollbacks = [dataclasses.replace(p, rollback=True) for p in route if p.phase in ("distribute-root", "mesh-ca") and p.batch]
    for position in [*route, *rollbacks]:
        result = run_program(stack, overrides_for(position, config), cacerts=cacerts)
        assert result.error is None, (position.label, result.error)
        expected = plan.plan_at(config, position, facts)
        for cp in expected.clusters:
            rendered = {r.name: r for r in result.resources if r.name.startswith(f"{cp.cluster.name}.")}
            for step in cp.steps:
                name = f"{cp.cluster.name}.{step.id}"
                if step.action == "gate":
                    assert rendered[name].type == GATE and rendered[name].inputs["gateId"] == step.id
                elif step.action in ("backup-ca-secret", "delete-ca-secrets"):
                    assert rendered[name].inputs["argv"] == list(step.argv)
                elif step.action == "gateway":
                    continue  # one Deployment per canary, checked below
                else:
                    assert rendered[name].type == COMMAND
                    assert rendered[name].inputs["create"] == shell_join(step.argv), (position.label, name)
            # Namespace labels are the plan's desired labels, on the right cluster's provider.
            provider = next(r for r in result.resources if r.type == "pulumi:providers:kubernetes" and r.name == f"{cp.cluster.name}.k8s")
            for patch in (r for r in result.of_type(PATCH) if r.name.startswith(f"{cp.cluster.name}.")):
                ns = patch.inputs["metadata"]["name"]
                assert patch.inputs["metadata"]["labels"] == dict(cp.desired.namespace_labels[ns])
                assert patch.provider.startswith(provider.urn)
                labels = patch.inputs["metadata"]["labels"]
                assert not ("istio-injection" in labels and "istio.io/rev" in labels)
        assert result.outputs["phase"] == position.phase


def test_every_resource_after_a_gate_depends_on_it():
    config, positions = route_of("dev")
    result = run_program("dev", overrides_for(positions[-1]))
    assert result.error is None
    by_name = {r.name: r for r in result.resources}
    cp = plan.plan_at(config, positions[-1], {"dev-1": plan.CACERTS_ABSENT}).clusters[0]
    gate = None
    checked = 0
    for step in cp.steps:
        name = f"dev-1.{step.id}"
        if step.is_gate:
            gate = by_name[name]
            continue
        if gate is None or step.action == "gateway":
            continue
        assert gate.urn in by_name[name].dependencies, (step.id, gate.name)
        checked += 1
    assert checked > 40


def test_deletions_wait_for_their_gates_and_the_old_service_stays():
    result = run_program("dev", {"phase": "distribute-root-done", "namespaces": {n: REV1 for n in route_of("dev")[0].namespace_map}})
    assert result.error is None
    delete_istiod = result.command("dev-1", "A5.delete-istiod.default")
    assert delete_istiod.inputs["create"] == f"{DEV_K} delete Deployment,HorizontalPodAutoscaler,PodDisruptionBudget istiod -n istio-system --ignore-not-found=true"
    waits_for = result.depends_on_transitively(delete_istiod)
    assert {"dev-1.A5.apply-istiod-service", "dev-1.A5.delete-gateway.istio-system.istio-ingressgateway", "dev-1.A3.gate.root-cert"} <= waits_for
    # the canary was cloned and serves (issue 9 finding 9) before the old gateway goes
    assert {"dev-1.A4.gateway.istio-system.istio-ingressgateway", "dev-1.A4.gateway-ready.istio-system.istio-ingressgateway"} <= waits_for
    state = result.command("dev-1", "A5.delete-installed-state.default")
    assert result.by_urn()[delete_istiod.urn].name in result.depends_on_transitively(state)
    assert all("delete" not in r.inputs for r in result.commands())  # destroy never runs a delete script


def test_canary_gateway_is_cloned_then_recloned_in_place():
    """The canary is `meshca gateway clone` Commands (issue 9 finding 9): A4 clones the live
    gateway, B3 re-clones the canary onto REV2 under the same name (so its immutable selector
    stays); no delete script, so neither destroy nor a later phase removes it."""
    _, positions = route_of("dev")
    done_b = next(p for p in positions if p.phase == "mesh-ca-done")
    b = run_program("dev", overrides_for(done_b))
    assert b.error is None and not b.of_type("kubernetes:apps/v1:Deployment")
    flags = "--namespace istio-system --deployment {src} --service istio-ingressgateway --name istio-ingressgateway-" + REV1
    g = "--context gke_acme-mesh-dev_us-central1_dev-1"
    assert b.command("dev-1", "A4.gateway.istio-system.istio-ingressgateway").inputs["create"] == (
        f".venv/bin/meshca gateway clone {g} {flags.format(src='istio-ingressgateway')} --revision {REV1}"
    )
    assert b.command("dev-1", "B3.gateway.istio-system.istio-ingressgateway").inputs["create"] == (
        f".venv/bin/meshca gateway clone {g} {flags.format(src='istio-ingressgateway-' + REV1)} --revision {REV2}"
    )
    rollback = run_program("dev", {"phase": "distribute-root", "rollback": True, "namespaces": next(p for p in positions if p.phase == "distribute-root-done").namespace_map})
    assert rollback.error is None
    assert rollback.command("dev-1", "A6.delete-gateway.istio-system.istio-ingressgateway").inputs["create"] == (
        f"{DEV_K} delete deploy/istio-ingressgateway-{REV1} -n istio-system --ignore-not-found=true"
    )


def test_phase_c_backs_up_before_deleting_and_restarts_after():
    _, positions = route_of("dev")
    result = run_program("dev", overrides_for(positions[-1]))
    assert result.error is None
    [deletion] = result.of_type("pulumi-python:dynamic/meshca:CaSecretDeletion")
    backups = result.of_type("pulumi-python:dynamic/meshca:CaSecretBackup")
    assert sorted(b.inputs["secret"] for b in backups) == ["cacerts", "istio-ca-secret"]
    assert {b.urn for b in backups} <= set(deletion.dependencies)
    workload_gate = result.named("dev-1.C0.gate.workload-cert")
    assert workload_gate.urn in deletion.dependencies and workload_gate.inputs["require"] == ["MESHCA"]
    assert [b["secret"] for b in deletion.inputs["backups"]] == ["cacerts", "istio-ca-secret"]
    restart = result.command("dev-1", "C3.restart-control-plane")
    assert restart.inputs["create"] == f"{DEV_K} rollout restart deployment -n istio-system"
    drop = result.command("dev-1", "C2.drop-citadel-root")
    assert drop.inputs["create"] == (
        ".venv/bin/meshca mesh-config drop-root --context gke_acme-mesh-dev_us-central1_dev-1"
        f" --revision {REV2} --root-cert samples/certs/root-cert.pem"
    )
    assert deletion.urn in drop.dependencies and drop.urn in restart.dependencies
    last = result.named("dev-1.C4.gate.old-root-absent")
    assert last.inputs["forbid"] == ["CITADEL", "UNKNOWN"] and restart.urn in last.dependencies  # exactly the Mesh CA roots (issue 9 finding 14)


def test_one_provider_per_cluster_with_a_cluster_identifier():
    result = run_program("prod", {"phase": "distribute-root", "upstreamStack": None})
    assert result.error is None
    providers = result.of_type("pulumi:providers:kubernetes")
    assert sorted((p.inputs["context"], p.inputs["clusterIdentifier"]) for p in providers) == [
        ("gke_acme-mesh-prod_europe-west1_prod-eu", "acme-mesh-prod/europe-west1/prod-eu"),
        ("gke_acme-mesh-prod_us-east1_prod-us-east", "acme-mesh-prod/us-east1/prod-us-east"),
        ("gke_acme-mesh-prod_us-west1_prod-us-west", "acme-mesh-prod/us-west1/prod-us-west"),
    ]
    assert len([c for c in result.commands() if "asmcli install" in c.inputs["create"]]) == 3


@pytest.mark.parametrize(
    "overrides",
    [
        {"rev2": "Not_A_Label"},
        {"colour": "blue"},
        {"phase": "mesh-ca"},  # a namespace is still on the old revision
        {"clusters": [{"name": "a", "project": "p1", "location": "l", "kubeconfig": "k", "context": "c1"}, {"name": "b", "project": "p2", "location": "l", "kubeconfig": "k", "context": "c2"}]},
    ],
)
def test_nothing_is_registered_when_the_config_is_invalid(overrides):
    result = run_program("dev", overrides)
    assert result.error is not None and "nothing was registered" in str(result.error)
    assert result.resources == []
    assert result.calls == []


def test_prerequisites_with_pulumi_gcp_are_declared_and_waited_for():
    result = run_program("staging", {"prerequisites": "pulumi", "phase": "distribute-root", "upstreamStack": None})
    assert result.error is None
    services = sorted(r.inputs["service"] for r in result.of_type("gcp:projects/service:Service"))
    assert services == sorted(
        ["container.googleapis.com", "gkehub.googleapis.com", "iamcredentials.googleapis.com", "mesh.googleapis.com", "meshca.googleapis.com", "meshconfig.googleapis.com"]
    )
    memberships = result.of_type("gcp:gkehub/membership:Membership")
    assert sorted(m.inputs["membershipId"] for m in memberships) == ["staging-east", "staging-west"]
    assert all(r.retain_on_delete for r in result.of_type("gcp:projects/service:Service"))
    install = result.command("staging-east", "A1.install.asm-11910-9-distribute-root")
    assert "--enable_all" not in install.inputs["create"]
    # Waiting for the component means waiting for every API and membership it declares.
    assert {r.urn for r in memberships + result.of_type("gcp:projects/service:Service")} <= set(install.dependencies)


def _outputs(phase: str, roles: dict) -> dict:
    return {"stack": "dev", "phase": phase, "rollback": False, "namespaceRoles": roles}


def test_a_stack_may_not_run_ahead_of_its_upstream():
    names = list(load_stack_file(ROOT / "Pulumi.staging.yaml").namespace_map)
    first = {"frontend", "cart", "checkout"}
    moved = {n: (REV1 if n in first else "default") for n in names}
    dev_batch_1 = _outputs("distribute-root", {n: ("rev1" if n in first else "old") for n in names})
    ok = run_program("staging", {"phase": "distribute-root", "namespaces": moved}, stack_outputs={"organization/meshca/dev": dev_batch_1})
    assert ok.error is None and ok.commands()
    dev_not_started = _outputs("baseline", {n: "old" for n in names})
    ahead = run_program("staging", {"phase": "distribute-root", "namespaces": moved}, stack_outputs={"organization/meshca/dev": dev_not_started})
    assert "would run ahead of organization/meshca/dev" in str(ahead.error)
    assert not ahead.commands() and not ahead.of_type(GATE)  # not one step registered
