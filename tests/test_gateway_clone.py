"""Issue 9 finding 9: the canary gateway is a clone of the live one, injected by REV1, and
serving before A5 deletes the old one.

Sources (transcribed, never computed by meshca):
- istio 1.19.10 ``manifests/charts/gateway/templates/deployment.yaml``: pod labels
  ``sidecar.istio.io/inject: "true"`` (line 26) and ``istio.io/rev: REV`` (lines 27-28); container
  ``istio-proxy`` with ``image: auto`` (lines 47-49, "populated at runtime by the mutating
  webhook"); ``manifests/charts/gateway/values.yaml`` line 30: pod annotation
  ``inject.istio.io/templates: "gateway"``.
- istio 1.19.10 ``manifests/charts/istio-control/istio-discovery/files/gateway-injection-template.yaml``:
  the injector writes the proxy's env (``JWT_POLICY`` line 45, ``PILOT_CERT_PROVIDER`` 47,
  ``CA_ADDR`` 49, ``POD_NAME`` ... ``ISTIO_META_*`` ... ``TRUST_DOMAIN`` 137) and volumes
  (``istio-envoy``, ``istio-data``, ``istio-podinfo``, ``istio-token``, ``istiod-ca-cert``, lines 154-231).
- Istio 1.6.14 ``manifests/charts/gateways/istio-ingress/templates/deployment.yaml``: the old
  gateway is not injected (``sidecar.istio.io/inject: "false"``, line 44), runs an explicit
  ``proxyv2`` image (lines 85-87) and ``CA_ADDR`` of the old istiod (line 157), and mounts the old
  revision's ConfigMap ``istio`` as ``config-volume`` and ``istio-ca-root-cert`` as ``istiod-ca-cert``.
- HorizontalPodAutoscaler ``spec.scaleTargetRef`` names the Deployment it scales; a
  PodDisruptionBudget selects pods by ``spec.selector`` (Kubernetes autoscaling/v2, policy/v1).
- EndpointSlices of a Service carry the label ``kubernetes.io/service-name`` and, per endpoint,
  ``conditions.ready`` and ``targetRef`` (discovery.k8s.io/v1).
"""

from __future__ import annotations

import json
import shlex

import pytest

F9 = "issue 9 finding 9: the canary gateway is a stub built from scratch; A5 deletes the real gateway without proof the canary serves"

REV1 = "asm-11910-9-distribute-root"
NAME = f"istio-ingressgateway-{REV1}"
SELECTOR = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
OLD_IMAGE = "gke.gcr.io/istio/proxyv2:1.6.14-gke.4"


def istio_on_gke_gateway() -> dict:
    """An Istio on GKE 1.6 ingress gateway as its chart renders it (abridged)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": {**SELECTOR, "release": "istio"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": {**SELECTOR, "service.istio.io/canonical-name": "istio-ingressgateway"}, "annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {
                    "serviceAccountName": "istio-ingressgateway-service-account",
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
                    "containers": [
                        {
                            "name": "istio-proxy",
                            "image": OLD_IMAGE,
                            "args": ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 8443, "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
                            "env": [
                                {"name": "JWT_POLICY", "value": "third-party-jwt"},
                                {"name": "PILOT_CERT_PROVIDER", "value": "istiod"},
                                {"name": "CA_ADDR", "value": "istiod.istio-system.svc:15012"},
                                {"name": "ISTIO_META_ROUTER_MODE", "value": "sni-dnat"},
                                {"name": "TEAM_FLAG", "value": "edge"},
                            ],
                            "volumeMounts": [
                                {"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"},
                                {"name": "config-volume", "mountPath": "/etc/istio/config"},
                                {"name": "ingressgateway-certs", "mountPath": "/etc/istio/ingressgateway-certs", "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}},
                        {"name": "config-volume", "configMap": {"name": "istio"}},
                        {"name": "ingressgateway-certs", "secret": {"secretName": "istio-ingressgateway-certs", "optional": True}},
                    ],
                },
            },
        },
        "status": {"replicas": 3, "readyReplicas": 3},
    }


def old_hpa() -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "istio-ingressgateway"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    }


def old_pdb() -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(SELECTOR)}},
    }


def by_kind(objs):
    return {o["kind"]: o for o in objs}


def test_the_clone_keeps_the_live_pod_spec_and_takes_the_1_19_gateway_injection_form():
    from meshca import gateway

    objs = by_kind(gateway.clone_objects(istio_on_gke_gateway(), old_hpa(), old_pdb(), name=NAME, revision=REV1))
    dep = objs["Deployment"]
    assert dep["metadata"]["name"] == NAME and dep["metadata"]["namespace"] == "istio-system"
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"]["matchLabels"] == {**SELECTOR, "meshca.io/gateway": NAME}
    tmeta = dep["spec"]["template"]["metadata"]
    assert tmeta["annotations"]["inject.istio.io/templates"] == "gateway"
    assert "sidecar.istio.io/inject" not in tmeta["annotations"]  # the 1.6 "false" must not follow
    assert tmeta["labels"]["sidecar.istio.io/inject"] == "true" and tmeta["labels"]["istio.io/rev"] == REV1
    assert all(tmeta["labels"][k] == v for k, v in SELECTOR.items())  # the Service still selects it
    spec = dep["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "istio-ingressgateway-service-account"
    assert spec["affinity"] == istio_on_gke_gateway()["spec"]["template"]["spec"]["affinity"]
    [proxy] = spec["containers"]
    assert proxy["name"] == "istio-proxy" and proxy["image"] == "auto"
    assert "args" not in proxy  # the injection template writes them
    assert proxy["resources"] == {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    assert proxy["ports"] == [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 8443, "protocol": "TCP"}]
    assert [e["name"] for e in proxy["env"]] == ["TEAM_FLAG"]  # CA_ADDR & co. come from REV1's injector
    assert [v["name"] for v in spec["volumes"]] == ["ingressgateway-certs"]
    assert [m["name"] for m in proxy["volumeMounts"]] == ["ingressgateway-certs"]
    assert "status" not in dep
    hpa = objs["HorizontalPodAutoscaler"]
    assert hpa["metadata"]["name"] == NAME and hpa["spec"]["scaleTargetRef"]["name"] == NAME
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5) and hpa["spec"]["metrics"] == old_hpa()["spec"]["metrics"]
    pdb = objs["PodDisruptionBudget"]
    assert pdb["metadata"]["name"] == NAME and pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == {**SELECTOR, "meshca.io/gateway": NAME}


def slice_of(pods, ready=True):
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "istio-ingressgateway-abcde", "namespace": "istio-system", "labels": {"kubernetes.io/service-name": "istio-ingressgateway"}},
        "endpoints": [{"addresses": ["10.0.0.%d" % i], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": "istio-system"}} for i, p in enumerate(pods)],
    }


def pod(name, rs, revision):
    annotations = {"istio.io/rev": revision, "sidecar.istio.io/status": json.dumps({"revision": revision})} if revision else {}
    return {
        "metadata": {"name": name, "namespace": "istio-system", "labels": {**SELECTOR, "pod-template-hash": rs.rsplit("-", 1)[1]}, "annotations": annotations,
                     "ownerReferences": [{"kind": "ReplicaSet", "name": rs, "controller": True}]},
        "spec": {"containers": [{"name": "istio-proxy", "image": "gcr.io/gke-release/asm/proxyv2:1.19.10-asm.9"}]},
    }


def test_ready_needs_max_of_old_ready_replicas_and_hpa_min_canary_pods_injected_by_rev1():
    from meshca import gateway

    old = [pod(f"istio-ingressgateway-6b8f9-{i}", "istio-ingressgateway-6b8f9", None) for i in range(3)]
    canary = [pod(f"{NAME}-7c4d5-{i}", f"{NAME}-7c4d5", REV1) for i in range(3)]
    other_rev = [pod(f"{NAME}-8d5e6-0", f"{NAME}-8d5e6", "asm-other")]
    need = gateway.replicas_needed(istio_on_gke_gateway(), old_hpa())
    assert need == 3  # max(readyReplicas 3, minReplicas 2)
    two = gateway.ready_canary_pods([slice_of(old + canary[:2] + other_rev)], old + canary + other_rev, name=NAME, revision=REV1)
    assert two == sorted(p["metadata"]["name"] for p in canary[:2])
    three = gateway.ready_canary_pods([slice_of(old + canary)], old + canary, name=NAME, revision=REV1)
    assert len(three) == 3
    not_ready = gateway.ready_canary_pods([slice_of(canary, ready=False)], canary, name=NAME, revision=REV1)
    assert not_ready == []


def test_a4_clones_the_live_gateway_and_a5_waits_until_the_canary_serves():
    from harness import ROOT
    from meshca import plan as planmod
    from meshca.config import load_stack_file

    c = load_stack_file(ROOT / "Pulumi.dev.yaml")
    cp = planmod.build(c.at("distribute-root-done", False, {n.name: REV1 for n in c.namespaces})).clusters[0]
    g = "--context gke_acme-mesh-dev_us-central1_dev-1"
    flags = f"--namespace istio-system --deployment istio-ingressgateway --service istio-ingressgateway --name {NAME}"
    clone = cp.step("A4.gateway.istio-system.istio-ingressgateway")
    assert shlex.join(clone.argv) == f".venv/bin/meshca gateway clone {g} {flags} --revision {REV1}"
    ready = cp.step("A4.gateway-ready.istio-system.istio-ingressgateway")
    assert shlex.join(ready.argv) == f".venv/bin/meshca gateway ready {g} {flags} --revision {REV1} --timeout 900s"
    assert clone.id in ready.depends_on
    first_delete = next(s for s in cp.steps if s.procedure == "A5" and s.action.startswith("delete"))
    seen, todo = set(), list(first_delete.depends_on)
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(cp.step(d).depends_on)
    assert ready.id in seen


# ----------------------------------------------------------------------------- the helpers' kubectl calls


class FakeKube:
    """Answers ``kubectl get ... -o json`` from objects; records applies (what meshca would exec)."""

    def __init__(self, objects: dict, fail: dict | None = None):
        self.objects, self.fail, self.applied, self.calls = objects, fail or {}, [], []

    def run(self, *args, stdin=None, timeout=120):
        import subprocess

        self.calls.append(args)
        key = " ".join(a for a in args if a not in ("-o", "json"))
        if key in self.fail:
            return subprocess.CompletedProcess(args, 1, "", self.fail[key])
        if args[0] == "apply":
            self.applied.append(list(yaml.safe_load_all(stdin)))
            return subprocess.CompletedProcess(args, 0, "deployment.apps/x serverside-applied\n", "")
        if key not in self.objects:
            return subprocess.CompletedProcess(args, 1, "", f"Error from server (NotFound): {key} not found")
        return subprocess.CompletedProcess(args, 0, json.dumps(self.objects[key]), "")


import yaml  # noqa: E402


def live(service_selector=None, slices=(), pods=()):
    return {
        "get deployment istio-ingressgateway -n istio-system": istio_on_gke_gateway(),
        "get horizontalpodautoscaler -n istio-system": {"items": [old_hpa()]},
        "get poddisruptionbudget -n istio-system": {"items": [old_pdb()]},
        "get service istio-ingressgateway -n istio-system": {"spec": {"selector": service_selector or dict(SELECTOR)}},
        "get endpointslices -n istio-system -l kubernetes.io/service-name=istio-ingressgateway": {"items": list(slices)},
        "get pods -n istio-system": {"items": list(pods)},
    }


ARGS = ["--context", "c", "--namespace", "istio-system", "--deployment", "istio-ingressgateway", "--service", "istio-ingressgateway", "--name", NAME, "--revision", REV1]


def run_cli(monkeypatch, kube, *argv):
    from meshca import cli, gateway

    monkeypatch.setattr(gateway, "Kube", lambda kubeconfig, context: kube)
    return cli.main(["gateway", *argv])


def test_clone_applies_the_copies_server_side(monkeypatch, capsys):
    kube = FakeKube(live())
    assert run_cli(monkeypatch, kube, "clone", *ARGS) == 0
    [docs] = kube.applied
    assert [d["kind"] for d in docs] == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert ("apply", "--server-side", "--field-manager", "meshca", "-f", "-") in kube.calls


def test_clone_refuses_a_service_that_would_not_select_the_clone(monkeypatch, capsys):
    kube = FakeKube(live(service_selector={"app": "istio-internalgateway"}))
    assert run_cli(monkeypatch, kube, "clone", *ARGS) == 2
    err = capsys.readouterr().err
    assert 'MCA0346 Service istio-system/istio-ingressgateway: selector {"app": "istio-internalgateway"} does not select the clone of istio-ingressgateway' in err
    assert not kube.applied


def test_clone_names_a_failed_read(monkeypatch, capsys):
    kube = FakeKube(live(), fail={"get deployment istio-ingressgateway -n istio-system": "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout"})
    assert run_cli(monkeypatch, kube, "clone", *ARGS) == 2
    assert "MCA0347 deployment istio-ingressgateway -n istio-system: kubectl get deployment istio-ingressgateway failed: Unable to connect to the server" in capsys.readouterr().err


def test_ready_waits_for_enough_canary_endpoints(monkeypatch, capsys):
    old = [pod(f"istio-ingressgateway-6b8f9-{i}", "istio-ingressgateway-6b8f9", None) for i in range(3)]
    canary = [pod(f"{NAME}-7c4d5-{i}", f"{NAME}-7c4d5", REV1) for i in range(3)]
    short = FakeKube(live(slices=[slice_of(old + canary[:2])], pods=old + canary))
    assert run_cli(monkeypatch, short, "ready", *ARGS, "--timeout", "0s") == 2
    assert f"MCA0345 Service istio-system/istio-ingressgateway: 2 ready {REV1} canary endpoints of 3 needed" in capsys.readouterr().err
    enough = FakeKube(live(slices=[slice_of(old + canary)], pods=old + canary))
    assert run_cli(monkeypatch, enough, "ready", *ARGS, "--timeout", "0s") == 0


# ----------------------------------------------------------------------------- on the simulated mesh


def sim_world():
    from meshca.sim import switches as sw
    from meshca.sim.builtin import builtin_config
    from meshca.sim.emulator import Emulator
    from meshca.sim.start import MeshShape, build_mesh

    cfg = builtin_config(clusters=1, namespaces=2, batch_size=1, use_case="migrate")
    mesh = build_mesh(cfg, sw.resolve({}), MeshShape(workloads=1))
    return cfg, mesh, Emulator(mesh, asmcli_path=cfg.asmcli.path), next(iter(mesh.clusters.values()))


def run_until(cfg, em, stop: str, skip: tuple[str, ...] = ()):
    from meshca import plan as planmod

    p = planmod.build(cfg.at("distribute-root-done", False, {n.name: cfg.rev1 for n in cfg.namespaces}), {c.name: planmod.CACERTS_ABSENT for c in cfg.clusters})
    steps = p.clusters[0].steps
    for s in steps:
        if s.id == stop:
            return s, steps
        if s.id in skip:
            continue
        if not s.is_gate:
            r = em.run(s.argv, s.stdin, subject=s.id)
            assert r.ok, (s.id, r.stderr)
    raise AssertionError(stop)


def test_on_the_simulated_mesh_the_clone_serves_with_the_old_gateways_hpa_and_pdb():
    from meshca.sim.mesh import SYSTEM_NS

    cfg, mesh, em, cluster = sim_world()
    cluster.workloads[(SYSTEM_NS, "istio-ingressgateway")].replicas = 2
    cluster.rollout(cluster.workloads[(SYSTEM_NS, "istio-ingressgateway")])
    clone, steps = run_until(cfg, em, "A4.gateway.istio-system.istio-ingressgateway")
    assert em.run(clone.argv, subject=clone.id).ok
    name = f"istio-ingressgateway-{cfg.rev1}"
    canary = cluster.workloads[(SYSTEM_NS, name)]
    assert canary.replicas == 2 and {p.revision for p in canary.pods} == {cfg.rev1}
    assert cluster.objects[("HorizontalPodAutoscaler", SYSTEM_NS, name)]["spec"]["scaleTargetRef"]["name"] == name
    assert cluster.objects[("PodDisruptionBudget", SYSTEM_NS, name)]["spec"]["selector"]["matchLabels"]["meshca.io/gateway"] == name
    ready = next(s for s in steps if s.id == "A4.gateway-ready.istio-system.istio-ingressgateway")
    assert em.run(ready.argv, subject=ready.id).ok


def test_on_the_simulated_mesh_an_uninjected_canary_holds_a5_back():
    """istio-injection=disabled on the gateway namespace (istio#37482) leaves the clone without
    a REV1 proxy: the ready check refuses, so A5 deletes nothing."""
    from meshca.sim.mesh import SYSTEM_NS

    cfg, mesh, em, cluster = sim_world()
    cluster.namespaces[SYSTEM_NS].labels["istio-injection"] = "disabled"
    # A4's pre-flight refuses the label first (issue 9 finding 13, MCA0854) ...
    pre, _ = run_until(cfg, em, "A4.preflight")
    refused = em.run(pre.argv, pre.stdin, subject=pre.id)
    assert refused.rc == 2 and "MCA0854 namespace/istio-system: " in refused.stderr
    # ... and without it the ready check still holds A5 back (defence in depth)
    cfg, mesh, em, cluster = sim_world()
    cluster.namespaces[SYSTEM_NS].labels["istio-injection"] = "disabled"
    clone, steps = run_until(cfg, em, "A4.gateway.istio-system.istio-ingressgateway", skip=("A4.preflight",))
    assert em.run(clone.argv, subject=clone.id).ok
    ready = next(s for s in steps if s.id == "A4.gateway-ready.istio-system.istio-ingressgateway")
    r = em.run(ready.argv, subject=ready.id)
    assert r.rc == 2 and f"MCA0345 Service istio-system/istio-ingressgateway: 0 ready {cfg.rev1} canary endpoints of 1 needed" in r.stderr
