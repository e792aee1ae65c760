"""Issue 9 finding 11: the gateways a phase retires are deleted by name and exempted by owner.

Sources (transcribed, never computed by meshca):
- procedure.md "Phase A" 5 prints the upgrade case's deletion as
  ``kubectl delete deploy -l app=istio-ingressgateway,istio.io/rev=OLD_REVISION``, and its
  "What the guide leaves out" says that selector "can match a gateway the operator did not
  list; delete the gateways you replaced by name".
- ``kubectl delete KIND -l SEL`` selects by the objects' own ``metadata.labels`` (a Deployment's,
  not its pod template's): kubernetes/kubectl ``pkg/cmd/delete/delete.go`` builds the request with
  ``LabelSelectorParam`` on the named resource kind.
- A Deployment's pods are owned by its ReplicaSet ``<deployment>-<pod-template-hash>``
  (kubernetes ``pkg/controller/deployment/sync.go`` getNewReplicaSet:
  ``Name: d.Name + "-" + podTemplateSpecHash`` with
  ``OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)}``),
  so "the pods of the gateway Deployment we delete" is an owner relation, not a label match.
"""

from __future__ import annotations

import shlex

import pytest

from fakes.trust_cluster import make_pki, sidecar_dump, standard_cluster
from meshca import plan as planmod
from meshca.sim import switches as sw
from meshca.sim.builtin import builtin_config
from meshca.sim.emulator import Emulator
from meshca.sim.mesh import SYSTEM_NS, Workload
from meshca.sim.start import MeshShape, build_mesh

from test_trust_runner import pods as pod_entries
from test_trust_runner import run as run_check_on

F11 = "issue 9 finding 11: upgrade-case gateway deletion by label selector; gates exempt pods by label"

OLD = "asm-1169-3"


def upgrade_config():
    return builtin_config(clusters=1, namespaces=2, batch_size=1, use_case="upgrade")


def every_step(cfg):
    """Every step of every position of the route (forward and rollback), one cluster."""
    facts = {c.name: planmod.CACERTS_MATCHING for c in cfg.clusters}
    out = {}
    for position in planmod.route(cfg):
        for rollback in (False, True):
            try:
                p = planmod.build(cfg.at(position.phase, rollback, position.namespace_map), facts)
            except Exception:  # a rollback not available at this position
                continue
            for s in p.clusters[0].steps:
                out[(position.index, rollback, s.id)] = s
    return out


@pytest.mark.parametrize("use_case", ["migrate", "upgrade"])
def test_gateways_are_deleted_by_deployment_name_never_by_selector(use_case):
    cfg = builtin_config(clusters=1, namespaces=2, batch_size=1, use_case=use_case)
    steps = every_step(cfg)
    deletions = {sid: s for (_, _, sid), s in steps.items() if s.action == "delete-gateway"}
    for s in steps.values():
        assert "-l" not in s.argv and "--selector" not in s.argv, (s.id, s.argv)
    k = f"kubectl --context {cfg.clusters[0].context}"
    # A5: the gateway the operator listed (procedure.md Phase A 5), by name.
    a5 = deletions["A5.delete-gateway.istio-system.istio-ingressgateway"]
    assert shlex.join(a5.argv) == f"{k} delete deploy/istio-ingressgateway -n istio-system --ignore-not-found=true"
    # A6: the canary A4 created, by name (procedure.md Phase A 6 "delete the new gateway Deployment").
    a6 = deletions["A6.delete-gateway.istio-system.istio-ingressgateway"]
    assert shlex.join(a6.argv) == f"{k} delete deploy/istio-ingressgateway-{cfg.rev1} -n istio-system --ignore-not-found=true"
    # B4 / B5: the only gateway meshca made was upgraded (B3) or downgraded (B5) in place
    # (procedure.md Phase B 3 and 5): no listed gateway is left on the retired revision.
    assert not [sid for sid in deletions if sid.startswith(("B4.", "B5."))]


def test_a5_keeps_an_unlisted_gateway_with_the_same_app_label():
    """The emulator applies A5's deletions to a mesh with a second, unlisted gateway of the
    same ``app`` on the old revision: only the listed Deployment goes."""
    cfg = upgrade_config()
    mesh = build_mesh(cfg, sw.resolve({}), MeshShape(workloads=1))
    em = Emulator(mesh, asmcli_path=cfg.asmcli.path)
    cluster = next(iter(mesh.clusters.values()))
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": OLD}
    cluster.add_workload(
        Workload(
            kind="Deployment", namespace=SYSTEM_NS, name="istio-internalgateway", labels=dict(labels),
            template_labels={**labels, "sidecar.istio.io/inject": "true"}, template_annotations={"inject.istio.io/templates": "gateway"},
            service_account="istio-internalgateway", gateway=True,
        )
    )
    last = planmod.route(cfg)[-1]
    steps = planmod.plan_at(cfg, last, {c.name: planmod.CACERTS_MATCHING for c in cfg.clusters}).clusters[0].steps
    for s in steps:
        if s.procedure == "A5" and s.action == "delete-gateway":
            assert em.run(s.argv, s.stdin).ok
    assert (SYSTEM_NS, "istio-ingressgateway") not in cluster.workloads
    assert (SYSTEM_NS, "istio-internalgateway") in cluster.workloads


def gate_request(step) -> dict:
    """The gate's retiring flags as components/cluster_migration.py hands them to the provider."""
    r = step.params["retiring"]
    return dict(
        retiring_deployments=tuple((x["namespace"], x["deployment"]) for x in r if "deployment" in x),
        retiring_selectors=tuple((x["namespace"], x["selector"]) for x in r if "selector" in x),
    )


def test_a3_exempts_the_pods_of_the_deployment_a5_deletes_by_owner(tmp_path):
    cfg = upgrade_config()
    names = [n.name for n in cfg.namespaces]
    a3 = planmod.build(cfg.at("distribute-root", False, {n: cfg.rev1 for n in names})).clusters[0].step("A3.gate.root-cert")
    p = make_pki()
    citadel_only = p.citadel_root.cert_pem
    c = standard_cluster(p)
    gw = dict(gateway=True, revision=OLD, dump=sidecar_dump(p.citadel_chain(SYSTEM_NS, "gw"), citadel_only))
    app = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    # the listed gateway: owned by ReplicaSet istio-ingressgateway-<hash>
    c.add_pod(SYSTEM_NS, "istio-ingressgateway-6b8f9c7d5-abcde", replicaset="istio-ingressgateway-6b8f9c7d5", template_hash="6b8f9c7d5", labels=app, **gw)
    # an unlisted gateway with the same app label on the old revision: A5 leaves it running
    # without its istiod, so the gate must count it (and fail on it)
    c.add_pod(SYSTEM_NS, "istio-internalgateway-7c4d5f6b8-fghjk", replicaset="istio-internalgateway-7c4d5f6b8", template_hash="7c4d5f6b8", labels=app, **gw)
    doc = run_check_on(tmp_path, c, p, require=("CITADEL", "MESHCA"), **gate_request(a3))
    got = pod_entries(doc)
    assert got["istio-system/istio-ingressgateway-6b8f9c7d5-abcde"]["status"] == "retiring"
    assert got["istio-system/istio-internalgateway-7c4d5f6b8-fghjk"]["status"] == "fail"
    assert doc["ok"] is False


def test_b4_gate_retires_nothing_the_canary_moved_in_place():
    cfg = upgrade_config()
    names = [n.name for n in cfg.namespaces]
    b4 = planmod.build(cfg.at("mesh-ca-done", False, {n: cfg.rev2 for n in names})).clusters[0].step("B4.gate.workload-cert")
    assert "--retiring-selector" not in b4.argv and "--retiring-deployment" not in b4.argv
    assert b4.params["retiring"] == ()
