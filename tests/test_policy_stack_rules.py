"""The stack policies on hand-built stacks: a safe stack passes, each mutation the plan would
never produce is refused with its own code, directly and through AnalyzeStack."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from pulumi.runtime import rpc
from pulumi_policy.proxy import UnknownValueError

from policy import rules
from policy import testing as T
from policy.testing import Spec

CTX = {"c1": "gke_acme_us-central1_c1", "c2": "gke_acme_us-east1_c2"}
OLD, REV1, REV2 = "default", "asm-11910-9-distribute-root", "asm-11910-9-meshca-ca-migration"
NAMESPACES = ("frontend", "cart", "payments", "search")


def kubectl(cluster: str, *args: str) -> str:
    return shlex.join(["kubectl", "--kubeconfig", "kubeconfig", "--context", CTX[cluster], *args])


def install(cluster: str, revision: str, ca: str) -> str:
    flags = ["--ca", ca]
    if ca == "citadel":
        flags += ["--ca_cert", "c.pem", "--ca_key", "k.pem", "--root_cert", "r.pem", "--cert_chain", "ch.pem"]
    flags += ["--option", rules.MIGRATION_OPTION[ca], "--revision_name", revision]
    return shlex.join(["./asmcli", "install", "--fleet_id", "acme", "--kubeconfig", "kubeconfig", "--context", CTX[cluster], "--output_dir", "o", *flags])


def meshca_stack(phase: str, namespaces: dict[str, str], *, rollback=False, batch=(), projects=("acme",)) -> Spec:
    clusters = [{"name": c, "project": projects[i % len(projects)], "location": "us-central1", "context": CTX[c]} for i, c in enumerate(("c1",))]
    return Spec(
        rules.MESHCA_STACK,
        "meshca",
        {
            "stack": "dev",
            "useCase": "migrate",
            "phase": phase,
            "rollback": rollback,
            "fleetProject": "acme",
            "clusters": clusters,
            "revisions": {"old": OLD, "rev1": REV1, "rev2": REV2},
            "namespaces": dict(namespaces),
            "currentBatch": list(batch),
            "totalNamespaces": len(namespaces),
        },
    )


def gate(cluster: str, gate_id: str, check: str, require: list[str], phase: str, deps=()) -> Spec:
    return Spec(
        rules.TRUST_GATE,
        f"{cluster}.{gate_id}",
        {"gateId": gate_id, "stack": "dev", "phase": phase, "cluster": cluster, "check": check, "require": require, "forbid": [], "namespaceDigest": "d" * 64},
        parent=cluster,
        depends_on=deps,
    )


def namespace(cluster: str, ns: str, revision: str, deps=()) -> list[Spec]:
    labels = {"istio-injection": "enabled"} if revision == OLD else {"istio.io/rev": revision}
    return [
        Spec(rules.NAMESPACE_REVISION, f"{cluster}.{ns}", {"cluster": cluster, "namespace": ns, "revision": revision}, parent=cluster),
        Spec(
            rules.NAMESPACE_PATCH,
            f"{cluster}.namespace.{ns}",
            {"metadata": {"name": ns, "labels": labels, "annotations": {"pulumi.com/patchForce": "true"}}},
            parent=f"{cluster}.{ns}",
            depends_on=deps,
        ),
    ]


def mesh_ca_stack(moved=("frontend",), *, cluster="c1") -> list[Spec]:
    """Phase B, batch 1: the old control plane removed, REV1 kept, REV2 installed after B0."""
    mapping = {ns: (REV2 if ns in moved else REV1) for ns in NAMESPACES}
    specs = [
        meshca_stack("mesh-ca", mapping, batch=moved),
        Spec(rules.CLUSTER_MIGRATION, cluster, {"cluster": cluster, "project": "acme", "context": CTX[cluster]}, parent="meshca"),
        Spec(rules.CONTROL_PLANE, f"{cluster}.{OLD}", {"cluster": cluster, "revision": OLD, "role": "old", "ca": None, "removed": True}, parent=cluster),
        Spec(rules.COMMAND, f"{cluster}.A5.delete-istiod.default", {"create": kubectl(cluster, "delete", "Deployment,HorizontalPodAutoscaler,PodDisruptionBudget", "istiod", "-n", "istio-system", "--ignore-not-found=true")}, parent=f"{cluster}.{OLD}"),
        Spec(rules.CONTROL_PLANE, f"{cluster}.{REV1}", {"cluster": cluster, "revision": REV1, "role": "rev1", "ca": "citadel", "removed": False}, parent=cluster),
        Spec(rules.COMMAND, f"{cluster}.A1.install", {"create": install(cluster, REV1, "citadel"), "environment": {"MESHCA_CACERTS": "absent"}}, parent=f"{cluster}.{REV1}"),
        gate(cluster, "B0.gate.root-cert", "root-cert", ["CITADEL", "MESHCA"], "mesh-ca", deps=[f"{cluster}.A5.delete-istiod.default"]),
        Spec(rules.CONTROL_PLANE, f"{cluster}.{REV2}", {"cluster": cluster, "revision": REV2, "role": "rev2", "ca": "mesh_ca", "removed": False}, parent=cluster),
        Spec(rules.COMMAND, f"{cluster}.B1.verify-asmcli", {"create": "./asmcli --version"}, parent=f"{cluster}.{REV2}", depends_on=[f"{cluster}.B0.gate.root-cert"]),
        Spec(rules.COMMAND, f"{cluster}.B1.install", {"create": install(cluster, REV2, "mesh_ca"), "environment": {}}, parent=f"{cluster}.{REV2}", depends_on=[f"{cluster}.B1.verify-asmcli"]),
        Spec(
            rules.DEPLOYMENT,
            f"{cluster}.gateway.istio-system.gw",
            {"metadata": {"name": "gw", "labels": {"istio.io/rev": REV1}}, "spec": {"template": {"metadata": {"labels": {"istio.io/rev": REV1}}}}},
            parent=cluster,
        ),
    ]
    for ns in moved:
        specs += namespace(cluster, ns, REV2, deps=[f"{cluster}.B1.install"])
    for ns in NAMESPACES:
        if ns not in moved:
            specs += namespace(cluster, ns, REV1)
    return specs


def phase_c_stack(on=None) -> list[Spec]:
    """Phase C: backups, the workload-cert gate, then the deletion; every namespace on REV2."""
    mapping = {ns: REV2 for ns in NAMESPACES} | (on or {})
    specs = [
        meshca_stack("old-root-removed", mapping),
        Spec(rules.CLUSTER_MIGRATION, "c1", {"cluster": "c1", "project": "acme", "context": CTX["c1"]}, parent="meshca"),
        Spec(rules.CONTROL_PLANE, f"c1.{REV2}", {"cluster": "c1", "revision": REV2, "role": "rev2", "ca": "mesh_ca", "removed": False}, parent="c1"),
        gate("c1", "C0.gate.workload-cert", "workload-cert", ["MESHCA"], "old-root-removed"),
        Spec(rules.CA_BACKUP, "c1.C1.backup.cacerts", {"cluster": "c1", "secret": "cacerts", "file": "backups/dev/c1/cacerts.yaml"}, parent="c1", depends_on=["c1.C0.gate.workload-cert"]),
        Spec(rules.CA_BACKUP, "c1.C1.backup.istio-ca-secret", {"cluster": "c1", "secret": "istio-ca-secret", "file": "backups/dev/c1/istio-ca-secret.yaml"}, parent="c1", depends_on=["c1.C0.gate.workload-cert"]),
        Spec(
            rules.CA_DELETION,
            "c1.C2.delete-ca-secrets",
            {"cluster": "c1", "argv": shlex.split(kubectl("c1", "delete", "secret", "cacerts", "istio-ca-secret", "-n", "istio-system", "--ignore-not-found")), "backups": []},
            parent="c1",
            depends_on=["c1.C0.gate.workload-cert", "c1.C1.backup.cacerts", "c1.C1.backup.istio-ca-secret"],
        ),
    ]
    for ns, rev in mapping.items():
        specs += namespace("c1", ns, rev)
    return specs


def replace(specs: list[Spec], name: str, **changes: Any) -> list[Spec]:
    out = []
    for s in specs:
        if s.name == name:
            s = Spec(s.type, s.name, changes.get("props", s.props), changes.get("parent", s.parent), changes.get("depends_on", s.depends_on))
        out.append(s)
    return out


def without(specs: list[Spec], *names: str) -> list[Spec]:
    return [s for s in specs if s.name not in names]


def direct(policy, specs, config=None) -> list[str]:
    return T.messages(policy, T.stack_args(specs, config))


def served(specs, config=None) -> tuple[list[str], list[T.Diagnostic]]:
    """(the coded lines the after-the-fact stack rules report, every other advisory note).

    No stack rule is mandatory: the engine runs them after every step of `up` (issue 9
    finding 7, tests/test_policy_blocking.py); what must block is a resource rule."""
    diags = T.analyze_stack(T.servicer(config), specs)
    assert T.mandatory(diags) == []
    reports = [d for d in diags if d.policy in rules.AFTER_THE_FACT and d.lines]
    return [line for d in reports for line in d.lines], [d for d in T.advisory(diags) if d not in reports]


STACK_POLICIES = [p for p in rules.POLICIES if p.name in rules.AFTER_THE_FACT]


@pytest.mark.parametrize("specs", [mesh_ca_stack(), mesh_ca_stack(moved=()), mesh_ca_stack(moved=NAMESPACES), phase_c_stack()], ids=["mesh-ca-1", "mesh-ca-0", "mesh-ca-all", "phase-c"])
def test_safe_stacks_pass_every_rule(specs):
    for policy in STACK_POLICIES:
        assert direct(policy, specs) == [], policy.name
    mandatory, advisory = served(specs)
    assert mandatory == []
    # The fully moved position moves 1 of 4 namespaces: no advisory either.
    assert [d for d in advisory if d.policy != "batch-share"] == []


# ----------------------------------------------------------------------------- labels on kept revisions


def test_label_for_undeclared_revision_is_refused():
    specs = replace(mesh_ca_stack(), "c1.namespace.cart", props={"metadata": {"name": "cart", "labels": {"istio.io/rev": "asm-1169-3"}}})
    assert T.codes(direct(rules.namespace_labels_report, specs)) == ["MCA0620"]
    assert "MCA0620" in T.codes(served(specs)[0])


def test_label_for_removed_old_revision_is_refused():
    # istio-injection=enabled selects "default", whose istiod phase A removed.
    specs = replace(mesh_ca_stack(), "c1.namespace.cart", props={"metadata": {"name": "cart", "labels": {"istio-injection": "enabled"}}})
    lines = direct(rules.namespace_labels_report, specs)
    assert T.codes(lines) == ["MCA0621"] and "removes" in lines[0]
    assert "MCA0621" in T.codes(served(specs)[0])


def test_label_for_revision_never_installed_is_refused():
    # Phase A with a namespace labelled for REV2, which phase A never installs.
    specs = without(mesh_ca_stack(moved=("frontend",)), f"c1.{REV2}", "c1.B1.install", "c1.B1.verify-asmcli")
    lines = direct(rules.namespace_labels_report, specs)
    assert set(T.codes(lines)) == {"MCA0621"} and "never installs" in lines[0]


def test_label_rule_judges_the_labels_cluster():
    # REV2 is installed on c1 only; a namespace on c2 labelled for it is refused.
    specs = mesh_ca_stack() + [Spec(rules.CLUSTER_MIGRATION, "c2", {"cluster": "c2", "project": "acme", "context": CTX["c2"]}, parent="meshca")]
    specs += namespace("c2", "frontend", REV2)
    lines = direct(rules.namespace_labels_report, specs)
    assert lines and all(line.startswith("Error MCA0621") and "cluster c2" in line for line in lines)


def test_without_the_components_only_removed_revisions_are_judged():
    # Should the engine hide component resources from stack policies, the old revision (which no
    # resource installs) must not count as "never installed"; a removed one still does.
    bare = [s for s in mesh_ca_stack() if not s.type.startswith("meshca:index:")]
    bare = replace(bare, "c1.namespace.cart", props={"metadata": {"name": "cart", "labels": {"istio-injection": "enabled"}}})
    lines = direct(rules.namespace_labels_report, bare)
    assert T.codes(lines) == ["MCA0621"] and "removes" in lines[0]  # A5's kubectl delete of istiod
    bare = without(bare, "c1.A5.delete-istiod.default")
    assert direct(rules.namespace_labels_report, bare) == []


# ----------------------------------------------------------------------------- no removal of a used revision


def test_removing_a_revision_a_namespace_runs_is_refused():
    specs = replace(mesh_ca_stack(), "c1.cart", props={"cluster": "c1", "namespace": "cart", "revision": OLD})
    lines = direct(rules.removal_report, specs)
    assert set(T.codes(lines)) == {"MCA0622"} and all("cart" in line for line in lines)
    assert "MCA0622" in T.codes(served(specs)[0])


def test_removal_by_command_alone_is_seen():
    # No ControlPlaneRevision says "removed": the kubectl delete itself is judged.
    specs = mesh_ca_stack() + [
        Spec(rules.COMMAND, "c1.B4.delete-istiod", {"create": kubectl("c1", "delete", "Service,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget", f"istiod-{REV1}", "-n", "istio-system", "--ignore-not-found=true")}, parent="c1")
    ]
    lines = direct(rules.removal_report, specs)
    assert "MCA0622" in T.codes(lines)  # cart, payments, search are on REV1
    assert "MCA0623" in T.codes(lines)  # so is the gateway


def test_removing_a_revision_a_gateway_runs_is_refused():
    specs = replace(
        mesh_ca_stack(),
        "c1.gateway.istio-system.gw",
        props={"metadata": {"name": "gw", "labels": {"istio.io/rev": OLD}}, "spec": {"template": {"metadata": {"labels": {"istio.io/rev": OLD}}}}},
    )
    lines = direct(rules.removal_report, specs)
    assert set(T.codes(lines)) == {"MCA0623"}


def test_rollback_map_is_the_map_the_rollback_returns_to():
    # B5: the stack map still lists REV2 for moved namespaces, yet REV2 is removed; the
    # rollback returns every namespace to REV1, so nothing runs REV2.
    specs = mesh_ca_stack(moved=("frontend",))
    specs = replace(specs, "meshca", props={**specs[0].props, "rollback": True})
    specs = replace(specs, "c1.frontend", props={"cluster": "c1", "namespace": "frontend", "revision": REV1})
    specs = replace(specs, "c1.namespace.frontend", props={"metadata": {"name": "frontend", "labels": {"istio.io/rev": REV1}}})
    specs = replace(specs, f"c1.{REV2}", props={"cluster": "c1", "revision": REV2, "role": "rev2", "ca": "mesh_ca", "removed": True})
    assert direct(rules.removal_report, specs) == []
    # Without the rollback flag the same map keeps frontend on REV2: refused.
    specs = replace(specs, "meshca", props={**specs[0].props, "rollback": False})
    assert T.codes(direct(rules.removal_report, specs)) == ["MCA0622"]


# ----------------------------------------------------------------------------- REV2 after a root-cert gate


def test_rev2_install_without_root_cert_gate_is_refused():
    specs = replace(mesh_ca_stack(), "c1.B1.install", depends_on=[])
    assert T.codes(direct(rules.rev2_after_root_cert_gate, specs)) == ["MCA0624"]
    assert T.codes(served(specs)[0]) == ["MCA0624"]


@pytest.mark.parametrize(
    "gate_spec",
    [
        gate("c1", "B0.gate.root-cert", "root-cert", ["CITADEL"], "mesh-ca"),  # does not require the Mesh CA root
        gate("c1", "B0.gate.root-cert", "workload-cert", ["MESHCA"], "mesh-ca"),  # another check
        gate("c2", "B0.gate.root-cert", "root-cert", ["CITADEL", "MESHCA"], "mesh-ca"),  # another cluster
    ],
    ids=["no-meshca", "other-check", "other-cluster"],
)
def test_rev2_install_after_the_wrong_gate_is_refused(gate_spec):
    specs = [gate_spec if s.name == "c1.B0.gate.root-cert" else s for s in mesh_ca_stack()]
    assert T.codes(direct(rules.rev2_after_root_cert_gate, specs)) == ["MCA0624"]


def test_phase_b_while_a_namespace_is_on_the_old_revision_is_refused():
    """Done-when: a config that starts phase B with a namespace still on the old revision."""
    specs = mesh_ca_stack()
    mapping = dict(specs[0].props["namespaces"], search=OLD)
    specs = replace(specs, "meshca", props={**specs[0].props, "namespaces": mapping})
    lines = direct(rules.rev2_after_root_cert_gate, specs)
    assert T.codes(lines) == ["MCA0625"] and "search" in lines[0]
    # Through the analyzer the pack also sees the old istiod removed under that namespace.
    mandatory, _ = served(specs)
    assert set(T.codes(mandatory)) == {"MCA0625", "MCA0622"}


def test_rev2_recognised_by_revision_name_even_with_citadel():
    specs = replace(mesh_ca_stack(), "c1.B1.install", props={"create": install("c1", REV2, "citadel"), "environment": {}}, depends_on=[])
    assert "MCA0624" in T.codes(direct(rules.rev2_after_root_cert_gate, specs))


# ----------------------------------------------------------------------------- CA secret removal


def test_ca_secret_deletion_without_a_backup_is_refused():
    specs = without(phase_c_stack(), "c1.C1.backup.istio-ca-secret")
    lines = direct(rules.ca_secret_removal_report, specs)
    assert T.codes(lines) == ["MCA0626"] and "istio-ca-secret" in lines[0]
    assert T.codes(served(specs)[0]) == ["MCA0626"]


def test_ca_secret_deletion_without_workload_gate_is_refused():
    specs = replace(phase_c_stack(), "c1.C2.delete-ca-secrets", depends_on=["c1.C1.backup.cacerts", "c1.C1.backup.istio-ca-secret"])
    specs = [replace([s], s.name, depends_on=[])[0] if s.type == rules.CA_BACKUP else s for s in specs]
    assert T.codes(direct(rules.ca_secret_removal_report, specs)) == ["MCA0627"]
    assert T.codes(served(specs)[0]) == ["MCA0627"]


def test_ca_secret_deletion_while_a_namespace_is_on_rev1_is_refused():
    """Done-when: a config that removes the CA secrets while a namespace is on REV1."""
    specs = phase_c_stack()
    specs = replace(specs, "meshca", props={**specs[0].props, "namespaces": dict(specs[0].props["namespaces"], cart=REV1)})
    lines = direct(rules.ca_secret_removal_report, specs)
    assert T.codes(lines) == ["MCA0628"] and "cart" in lines[0]
    assert T.codes(served(specs)[0]) == ["MCA0628"]


def test_ca_secret_deletion_by_plain_command_is_judged():
    specs = without(phase_c_stack(), "c1.C2.delete-ca-secrets") + [
        Spec(rules.COMMAND, "c1.cleanup", {"create": kubectl("c1", "delete", "secret/cacerts", "secret/istio-ca-secret", "-n", "istio-system")}, parent="c1")
    ]
    assert sorted(T.codes(direct(rules.ca_secret_removal_report, specs))) == ["MCA0626", "MCA0626", "MCA0627"]


def test_secret_deletion_elsewhere_is_not_a_ca_removal():
    specs = phase_c_stack() + [Spec(rules.COMMAND, "c1.other", {"create": kubectl("c1", "delete", "secret", "cacerts", "-n", "shop")}, parent="c1")]
    assert direct(rules.ca_secret_removal_report, specs) == []


# ----------------------------------------------------------------------------- one project


def test_clusters_in_two_projects_are_refused():
    specs = mesh_ca_stack()
    specs = replace(specs, "c1", props={"cluster": "c1", "project": "other-project", "context": CTX["c1"]})
    assert T.codes(direct(rules.clusters_report, specs)) == ["MCA0629"]
    assert T.codes(served(specs)[0]) == ["MCA0629"]


# ----------------------------------------------------------------------------- advisory: batch share


def test_batch_share_is_advisory_and_configurable():
    specs = mesh_ca_stack(moved=("frontend", "cart"))  # 2 of 4 = 50%
    assert T.codes(direct(rules.batch_share, specs)) == ["MCA0640"]
    mandatory, advisory = served(specs)
    assert mandatory == []
    assert [d.lines[0].split()[1] for d in advisory] == ["MCA0640"]
    # Configured through the analyzer's Configure, as the CLI sends --policy-pack-config.
    assert served(specs, {"batch-share": {"maxBatchShare": 0.5}}) == ([], [])
    assert direct(rules.batch_share, specs, {"maxBatchShare": 0.5}) == []
    assert direct(rules.batch_share, mesh_ca_stack(moved=("frontend",))) == []  # 25% is allowed


# ----------------------------------------------------------------------------- unknown values


def test_unknown_values_never_make_a_violation_but_known_faults_still_show():
    specs = replace(mesh_ca_stack(), "c1.cart", props={"cluster": "c1", "namespace": "cart", "revision": rpc.UNKNOWN})
    with pytest.raises(UnknownValueError):
        direct(rules.removal_report, specs)
    mandatory, advisory = served(specs)
    assert mandatory == [] and any("during preview" in d.message for d in advisory)
    # A definite fault elsewhere is still reported beside the "can't judge" note.
    specs = replace(specs, "c1.search", props={"cluster": "c1", "namespace": "search", "revision": OLD})
    mandatory, advisory = served(specs)
    assert "MCA0622" in T.codes(mandatory)
