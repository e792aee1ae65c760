"""The simulated mesh's rules, one by one, driven through the same argv the plan renders."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from meshca import commands as cmd
from meshca import plan as planmod
from meshca.certs import fingerprint, load_certs, verify_path
from meshca.errors import MeshcaError
from meshca.sim import switches as sw
from meshca.sim.builtin import builtin_config
from meshca.sim.emulator import Emulator
from meshca.sim.mesh import SYSTEM_NS
from meshca.sim.start import MeshShape, build_mesh
from meshca.sim.tls import Judge, ProxyState

FLEET_DOMAIN = "builtin-mesh.svc.id.goog"


@pytest.fixture(scope="module")
def config():
    return builtin_config(clusters=1, namespaces=2, batch_size=1)


def world(config, use_case="migrate", **switches):
    cfg = config if use_case == "migrate" else builtin_config(clusters=1, namespaces=2, batch_size=1, use_case="upgrade")
    mesh = build_mesh(cfg, sw.resolve(switches), MeshShape(workloads=2))
    return cfg, mesh, Emulator(mesh, asmcli_path=cfg.asmcli.path)


def final_steps(cfg, cacerts="absent"):
    """Every step of the whole route (the last position's cumulative plan), by id."""
    last = planmod.route(cfg)[-1]
    return {s.id: s for s in planmod.plan_at(cfg, last, cacerts={c.name: cacerts for c in cfg.clusters}).clusters[0].steps}


def run(em, step):
    return em.run(step.argv, step.stdin)


def pods(mesh, ns):
    c = next(iter(mesh.clusters.values()))
    return [p for w in c.workloads.values() if w.namespace == ns for p in w.pods]


def root_fp(certs):
    return {fingerprint(c) for c in certs}


def files_root(cfg):
    return fingerprint(load_certs(cfg.ca_files.root_cert.read_bytes())[0])


def install_rev1(cfg, em):
    steps = final_steps(cfg)
    result = run(em, steps[f"A1.install.{cfg.rev1}"])
    assert result.ok, result.stderr
    return steps


def install_rev2(cfg, em, steps):
    """B1 as the plan renders it: the Citadel root overlay (when the stack has it), then asmcli."""
    if "B1.citadel-root-overlay" in steps:
        result = run(em, steps["B1.citadel-root-overlay"])
        assert result.ok, result.stderr
    result = run(em, steps[f"B1.install.{cfg.rev2}"])
    assert result.ok, result.stderr


# ----------------------------------------------------------------------------- starting points


def test_migrate_starts_on_default_with_istio_ca_secret_only(config):
    cfg, mesh, _ = world(config)
    c = mesh.clusters["cluster-1"]
    assert (SYSTEM_NS, "istio-ca-secret") in c.secrets and (SYSTEM_NS, "cacerts") not in c.secrets
    assert fingerprint(load_certs(c.secrets[(SYSTEM_NS, "istio-ca-secret")]["ca-cert.pem"])[0]) == files_root(cfg)
    assert set(c.istiods) == {"default"}
    for ns in ("frontend", "cart"):
        assert c.namespaces[ns].labels == {"istio-injection": "enabled"}
        assert {p.revision for p in pods(mesh, ns)} == {"default"}
        assert all(root_fp(p.bundle) == {files_root(cfg)} for p in pods(mesh, ns))


def test_upgrade_starts_on_labelled_revision_with_cacerts(config):
    cfg, mesh, _ = world(config, use_case="upgrade")
    c = mesh.clusters["cluster-1"]
    assert set(c.secrets) == {(SYSTEM_NS, "cacerts")}
    assert sorted(c.secrets[(SYSTEM_NS, "cacerts")]) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    assert set(c.istiods) == {"asm-1169-3"}
    assert c.namespaces["frontend"].labels == {"istio.io/rev": "asm-1169-3"}
    gw = c.workloads[(SYSTEM_NS, "istio-ingressgateway")]
    assert gw.labels["istio.io/rev"] == "asm-1169-3" and gw.pods[0].revision == "asm-1169-3"


def test_workload_certificates_are_real_and_carry_spiffe_ids(config):
    cfg, mesh, em = world(config)
    steps = install_rev1(cfg, em)
    install_rev2(cfg, em, steps)
    c = mesh.clusters["cluster-1"]
    for label, rev in (("istio.io/rev", cfg.rev2),):
        em.run(cmd.label_namespace(cfg.clusters[0], "cart", f"{label}={rev}", "istio-injection-"))
    assert run(em, steps["B2.restart.cart"]).ok
    old = pods(mesh, "frontend")[0]
    new = next(p for p in pods(mesh, "cart") if p.workload.name == "api")
    assert old.credential.spiffe == "spiffe://cluster.local/ns/frontend/sa/api"
    assert new.credential.spiffe == f"spiffe://{FLEET_DOMAIN}/ns/cart/sa/api"
    # Each chain verifies, signature by signature, to its signer's root and not to the other.
    citadel_root = load_certs(cfg.ca_files.root_cert.read_bytes())
    assert verify_path(old.credential.leaf, list(old.credential.chain[1:]), citadel_root) is not None
    assert verify_path(new.credential.leaf, list(new.credential.chain[1:]), [mesh.meshca.root]) is not None
    assert verify_path(new.credential.leaf, list(new.credential.chain[1:]), citadel_root) is None
    # Issued once, then cached: a restart onto the same signer presents the same certificate.
    before = new.credential
    em.run(cmd.kubectl(cfg.clusters[0], "rollout", "restart", "deployment", "-n", "cart"))
    assert next(p for p in pods(mesh, "cart") if p.workload.name == "api").credential is before
    assert c.istiods[cfg.rev2].spiffe_domain == FLEET_DOMAIN


# ----------------------------------------------------------------------------- injection


def test_relabel_alone_keeps_pods_on_their_revision_until_restart(config):
    cfg, mesh, em = world(config)
    steps = install_rev1(cfg, em)
    assert run(em, steps["A2.label.frontend"]).ok
    assert mesh.clusters["cluster-1"].namespaces["frontend"].labels == {"istio.io/rev": cfg.rev1}
    assert {p.revision for p in pods(mesh, "frontend")} == {"default"}
    assert run(em, steps["A2.restart.frontend"]).ok
    assert {p.revision for p in pods(mesh, "frontend")} == {cfg.rev1}
    assert {p.revision for p in pods(mesh, "cart")} == {"default"}
    # StatefulSets too (a plain `kubectl rollout restart deployment` would miss them).
    assert {p.workload.kind for p in pods(mesh, "frontend")} == {"Deployment", "StatefulSet"}


def test_both_injection_labels_is_an_error_at_restart(config):
    cfg, mesh, em = world(config)
    steps = install_rev1(cfg, em)
    # istio-injection stays: the guide's "never leave both labels".
    assert em.run(cmd.label_namespace(cfg.clusters[0], "frontend", f"istio.io/rev={cfg.rev1}")).ok
    result = run(em, steps["A2.restart.frontend"])
    assert result.rc == 2 and result.stderr.startswith("Error MCA0851 ") and "injection is undefined" in result.stderr
    assert {p.revision for p in pods(mesh, "frontend")} == {"default"}  # nothing replaced


def test_restart_onto_a_revision_without_istiod_is_refused(config):
    cfg, mesh, em = world(config)
    steps = final_steps(cfg)
    result = run(em, steps["A2.restart.frontend"])
    # not installed: named as such (MCA0853), not as "0 ready replicas" (issue 9 finding 12)
    assert result.rc == 2 and "MCA0853 istio-system/istiod-" in result.stderr and "(NotFound)" in result.stderr


# ----------------------------------------------------------------------------- bundles and trust domains


def mesh_roots(c, revision):
    """Root fingerprints in the caCertificates of the revision's ConfigMap (what istiod reads at start)."""
    doc = yaml.safe_load(c.objects[("ConfigMap", SYSTEM_NS, f"istio-{revision}")]["data"]["mesh"])
    return {fingerprint(load_certs(e["pem"].encode())[0]) for e in doc.get("caCertificates") or ()}


@pytest.mark.parametrize("overlay", [True, False], ids=["rev2CitadelRoot", "guide-literal"])
@pytest.mark.parametrize("rev2_ca", [True, False], ids=["rev2-ca-on", "rev2-ca-off"])
def test_bundles_per_revision_and_option(config, rev2_ca, overlay):
    cfg = config if overlay else dataclasses.replace(config, rev2_citadel_root=False)
    cfg, mesh, em = world(cfg, **{"rev2-runs-citadel-ca": rev2_ca})
    steps = install_rev1(cfg, em)
    assert ("B1.citadel-root-overlay" in steps) is overlay
    install_rev2(cfg, em, steps)
    c = mesh.clusters["cluster-1"]
    citadel, meshca = files_root(cfg), fingerprint(mesh.meshca.root)
    assert root_fp(c.istiods["default"].bundle(mesh.meshca)) == {citadel}
    assert root_fp(c.istiods[cfg.rev1].bundle(mesh.meshca)) == {citadel, meshca}
    # REV2 keeps the Citadel root if its istiod merges its own CA's root or the overlay lists it.
    assert root_fp(c.istiods[cfg.rev2].bundle(mesh.meshca)) == ({meshca, citadel} if rev2_ca or overlay else {meshca})
    # Both reach proxies through meshConfig.caCertificates: REV1's Mesh CA root (its option),
    # REV2's Citadel root (the overlay meshca wrote, read back by asmcli --custom_overlay).
    assert mesh_roots(c, cfg.rev1) == {meshca}
    assert mesh_roots(c, cfg.rev2) == ({citadel} if overlay else set())
    if overlay:
        written = yaml.safe_load(mesh.read_file(steps["B1.citadel-root-overlay"].params["file"]))
        assert written["kind"] == "IstioOperator" and len(written["spec"]["meshConfig"]["caCertificates"]) == 1


@pytest.mark.parametrize("mode,aliases", [("replace", ("cluster.local",)), ("merge", (FLEET_DOMAIN, "builtin-mesh.hub.id.goog", "cluster.local"))])
def test_trust_domains_and_the_overlay_alias_switch(config, mode, aliases):
    cfg, mesh, em = world(config, **{"overlay-aliases": mode})
    steps = install_rev1(cfg, em)
    install_rev2(cfg, em, steps)
    c = mesh.clusters["cluster-1"]
    assert (c.istiods[cfg.rev1].trust_domain, c.istiods[cfg.rev1].aliases) == ("cluster.local", (FLEET_DOMAIN, "builtin-mesh.hub.id.goog"))
    assert (c.istiods[cfg.rev2].trust_domain, c.istiods[cfg.rev2].aliases) == (FLEET_DOMAIN, aliases)


# ----------------------------------------------------------------------------- phase C


@pytest.mark.parametrize("rev2_ca", [True, False], ids=["rev2-ca-on", "rev2-ca-off"])
@pytest.mark.parametrize("new_root", [True, False])
def test_phase_c_new_self_signed_root_switch(config, new_root, rev2_ca):
    cfg, mesh, em = world(config, **{"phase-c-new-root": new_root, "rev2-runs-citadel-ca": rev2_ca})
    steps = install_rev1(cfg, em)
    for ns in ("frontend", "cart"):
        assert run(em, steps[f"A2.label.{ns}"]).ok and run(em, steps[f"A2.restart.{ns}"]).ok
    install_rev2(cfg, em, steps)
    for ns in ("frontend", "cart"):
        assert run(em, steps[f"B2.label.{ns}"]).ok and run(em, steps[f"B2.restart.{ns}"]).ok
    assert run(em, steps["C2.delete-ca-secrets"]).ok
    c = mesh.clusters["cluster-1"]
    assert not c.secrets
    assert run(em, steps["C2.drop-citadel-root"]).ok
    assert run(em, steps["C3.restart-control-plane"]).ok
    citadel, meshca = files_root(cfg), fingerprint(mesh.meshca.root)
    bundle = root_fp(pods(mesh, "frontend")[0].bundle)
    if new_root:
        fresh = fingerprint(load_certs(c.secrets[(SYSTEM_NS, "istio-ca-secret")]["ca-cert.pem"])[0])
        assert fresh not in (citadel, meshca)
        # A REV2 istiod without a CA of its own does not merge the new root either.
        assert bundle == ({meshca, fresh} if rev2_ca else {meshca})
    else:
        assert (SYSTEM_NS, "istio-ca-secret") not in c.secrets
        assert bundle == {meshca}
    assert citadel not in bundle  # the old root left every connected proxy


def test_drop_root_edits_the_configmap_and_bundles_follow_at_the_next_istiod_start(config):
    cfg, mesh, em = world(config, **{"rev2-runs-citadel-ca": False})
    steps = install_rev1(cfg, em)
    assert run(em, steps["A2.label.frontend"]).ok and run(em, steps["A2.restart.frontend"]).ok
    install_rev2(cfg, em, steps)
    assert run(em, steps["B2.label.frontend"]).ok and run(em, steps["B2.restart.frontend"]).ok
    c = mesh.clusters["cluster-1"]
    citadel, meshca = files_root(cfg), fingerprint(mesh.meshca.root)
    moved = pods(mesh, "frontend")[0]
    assert root_fp(moved.bundle) == {meshca, citadel}
    drop = steps["C2.drop-citadel-root"]
    assert drop.argv[:3] == (".venv/bin/meshca", "mesh-config", "drop-root")
    first = run(em, drop)
    assert first.ok and "dropped the Citadel root" in first.stdout, first.stderr
    assert mesh_roots(c, cfg.rev2) == set()
    # meshca's own kubectl calls went through the emulator: get, then a merge patch.
    nested = [a for a in em.calls if a[0] == "kubectl" and "configmap" in a]
    verb = lambda a: a[a.index("--context") + 2]  # noqa: E731 (kubectl [--kubeconfig K] --context C VERB)
    assert [verb(a) for a in nested] == ["get", "patch"] and "merge" in nested[1]
    # istiod reads its mesh config at start: the running proxies keep the root until then.
    assert root_fp(moved.bundle) == {meshca, citadel}
    again = run(em, drop)
    assert again.ok and "nothing to drop" in again.stdout  # idempotent: no second patch
    assert [verb(a) for a in em.calls if a[0] == "kubectl" and "configmap" in a] == ["get", "patch", "get"]
    assert run(em, steps["C3.restart-control-plane"]).ok
    assert root_fp(pods(mesh, "frontend")[0].bundle) == {meshca}
    # The trust domain settings of the ConfigMap are left as they were.
    doc = yaml.safe_load(c.objects[("ConfigMap", SYSTEM_NS, f"istio-{cfg.rev2}")]["data"]["mesh"])
    assert doc["trustDomain"] == FLEET_DOMAIN and doc["trustDomainAliases"] == ["cluster.local"]


def test_drop_root_of_an_unknown_revision_is_meshcas_coded_failure(config):
    cfg, mesh, em = world(config)
    argv = list(final_steps(cfg)["C2.drop-citadel-root"].argv)
    argv[argv.index("--revision") + 1] = "asm-nope"
    result = em.run(argv)
    assert result.rc == 2 and result.stderr.startswith("Error MCA0860 istio-system/istio-asm-nope: ")
    assert 'configmaps "istio-asm-nope" not found' in result.stderr and len(result.stderr.splitlines()) == 1


def test_overlay_command_validates_the_root_like_meshca(config, tmp_path):
    cfg, mesh, em = world(config)
    overlay = final_steps(cfg)["B1.citadel-root-overlay"]
    out = overlay.params["file"]
    # An intermediate is not a root: MCA0212, nothing written, so asmcli would not find the overlay.
    not_root = list(overlay.argv)
    not_root[not_root.index("--root-cert") + 1] = str(cfg.ca_files.ca_cert)
    refused = em.run(not_root)
    assert refused.rc == 2 and refused.stderr.startswith("Error MCA0212 ") and not mesh.file_exists(out)
    missing = list(overlay.argv)
    missing[missing.index("--root-cert") + 1] = "certs/none.pem"
    refused = em.run(missing)
    assert refused.rc == 2 and refused.stderr.startswith("Error MCA0201 certs/none.pem: ")
    install = final_steps(cfg)[f"B1.install.{cfg.rev2}"]
    install_rev1(cfg, em)
    assert "Couldn't find yaml file" in run(em, install).stderr
    assert em.run(list(overlay.argv)).ok and mesh.file_exists(out)
    assert mesh.file_exists(f"./{out}")  # one file, however the path is spelled
    assert run(em, install).ok
    # A usage error is meshca's coded usage line, exit 2.
    usage = em.run(["meshca", "overlay", "citadel-root", "--output", out])
    assert usage.rc == 2 and usage.stderr.startswith("Error MCA0901 ")


# ----------------------------------------------------------------------------- orphans


@pytest.mark.parametrize("keep", [True, False])
def test_removed_revision_leaves_orphans_until_expiry(config, keep):
    cfg, mesh, em = world(config, **{"orphans-keep-state": keep})
    steps = install_rev1(cfg, em)
    assert run(em, steps["A2.label.frontend"]).ok and run(em, steps["A2.restart.frontend"]).ok
    victim = next(p for p in pods(mesh, "frontend") if p.workload.name == "api")
    peer = next(p for p in pods(mesh, "cart") if p.workload.name == "api")
    bundle, cred = victim.bundle, victim.credential
    result = em.run(cmd.delete_istiod(cfg.clusters[0], f"istiod-{cfg.rev1}"))
    assert result.ok
    judge = Judge(True)
    state = lambda p: ProxyState(p.credential, p.bundle, p.trust_domain, p.aliases, p.problem)  # noqa: E731
    assert not victim.connected
    if not keep:
        assert victim.credential is None
        assert not judge.judge(state(peer), state(victim)).ok
        return
    assert victim.bundle is bundle and victim.credential is cred
    assert judge.judge(state(peer), state(victim)).ok  # still works: nothing expired yet
    mesh.advance(23 * 60)
    assert not victim.credential.expired
    mesh.advance(2 * 60)  # past the 24h TTL: it cannot rotate without its istiod
    assert victim.credential.expired and victim.credential.spiffe == cred.spiffe
    verdict = judge.judge(state(peer), state(victim))
    assert not verdict.ok and "expired" in verdict.reason
    # A connected proxy rotated at half-life from its signer instead.
    assert peer.connected and not peer.credential.expired


# ----------------------------------------------------------------------------- asmcli and kubectl


def test_asmcli_refusals_are_reproduced(config):
    cfg, mesh, em = world(config)
    steps = final_steps(cfg)
    a1 = steps[f"A1.install.{cfg.rev1}"]
    # The gateway prompt: without the piped "y" asmcli stops.
    refused = em.run(a1.argv, None)
    assert refused.rc == 1 and "Stopping installation at user request." in refused.stderr
    assert (SYSTEM_NS, "cacerts") not in mesh.clusters["cluster-1"].secrets
    assert run(em, a1).ok
    # A rerun with the certificate flags once cacerts exists (asmcli issue #918).
    again = run(em, a1)
    assert again.rc == 1 and "Custom certificates already exist" in again.stderr
    # The guide's phase B command: certificate flags with --ca mesh_ca.
    b1 = list(steps[f"B1.install.{cfg.rev2}"].argv)
    guide = b1[: b1.index("--option")] + ["--root_cert", str(cfg.ca_files.root_cert), "--cert_chain", str(cfg.ca_files.cert_chain)] + b1[b1.index("--option") :]
    wrong = em.run(guide, "y\n")
    assert wrong.rc == 2 and "You must select Citadel as the CA in order to use custom certificates." in wrong.stderr
    no_context = [a for a in b1 if a != "--context" and a != cfg.clusters[0].context]
    assert "current context" in em.run(no_context, "y\n").stderr
    assert "Couldn't find yaml file ca-migration-migration." in em.run([*b1[:-4], "--option", "ca-migration-migration", *b1[-2:]], "y\n").stderr
    assert "Unknown option" in em.run([*b1, "--bogus"], "y\n").stderr


def test_asmcli_names_cacerts_keys_after_the_file_names(config, tmp_path):
    cfg, mesh, em = world(config)
    a1 = list(final_steps(cfg)[f"A1.install.{cfg.rev1}"].argv)
    renamed = tmp_path / "my-root.pem"
    renamed.write_bytes(cfg.ca_files.root_cert.read_bytes())
    a1[a1.index("--root_cert") + 1] = str(renamed)
    assert em.run(a1, "y\n").ok
    c = mesh.clusters["cluster-1"]
    assert "my-root.pem" in c.secrets[(SYSTEM_NS, "cacerts")]
    # istiod cannot read a cacerts without the canonical keys: it keeps istio-ca-secret.
    assert c.istiods[cfg.rev1].signer.label != "cacerts"


def test_unknown_argv_is_a_coded_error_never_ignored(config):
    _, _, em = world(config)
    for argv in (["helm", "install"], ["kubectl", "--context", "gke_builtin-mesh_us-central1-a_cluster-1", "scale", "deploy/x"], ["meshca", "promote"]):
        with pytest.raises(MeshcaError) as err:
            em.run(argv)
        assert err.value.code == "MCA0506"


def test_kubectl_delete_honours_ignore_not_found(config):
    cfg, mesh, em = world(config)
    cl = cfg.clusters[0]
    missing = em.run(cmd.kubectl(cl, "delete", "IstioOperator", "installed-state-nope", "-n", SYSTEM_NS))
    assert missing.rc == 1 and "NotFound" in missing.stderr
    assert em.run(cmd.delete_installed_state(cl, "installed-state-nope")).ok


def test_keys_never_leave_memory_in_a_secret_dump(config):
    cfg, mesh, em = world(config)
    out = em.run(cmd.get_secret_yaml(cfg.clusters[0], "istio-ca-secret"))
    assert out.ok and "PRIVATE KEY" not in out.stdout
    assert b"PRIVATE KEY" not in mesh.clusters["cluster-1"].secrets[(SYSTEM_NS, "istio-ca-secret")]["ca-key.pem"]


# ----------------------------------------------------------------------------- issue 9 finding 12
# Pods as each injector writes them (istio/istio): 1.6 (Istio on GKE) a LABEL istio.io/rev, ""
# for the default revision (release-1.6 pkg/kube/inject/webhook.go:620, REVISION default "" in
# pilot/pkg/bootstrap/options.go:136); 1.16 (CSM) only sidecar.istio.io/status .revision
# (release-1.16 pkg/kube/inject/webhook.go:317-342; no istio.io/rev in injection-template.yaml
# lines 29-37); 1.19 (asmcli 1.19.10) the ANNOTATION istio.io/rev (release-1.19
# manifests/charts/istio-control/istio-discovery/files/injection-template.yaml:39) and the status
# annotation's revision (webhook.go:389-414).


def _pod_json(mesh, ns):
    from meshca.sim.source import pod_json

    c = next(iter(mesh.clusters.values()))
    return [pod_json(c, p) for p in pods(mesh, ns)]


def test_pods_carry_their_revision_as_their_injectors_version_writes_it(config):
    cfg, mesh, em = world(config)
    for doc in _pod_json(mesh, "frontend"):  # Istio on GKE 1.6, revision default
        assert doc["metadata"]["labels"]["istio.io/rev"] == ""
        assert "istio.io/rev" not in doc["metadata"]["annotations"]
        assert "revision" not in yaml.safe_load(doc["metadata"]["annotations"]["sidecar.istio.io/status"])
    steps = install_rev1(cfg, em)
    assert run(em, steps["A2.label.frontend"]).ok and run(em, steps["A2.restart.frontend"]).ok
    for doc in _pod_json(mesh, "frontend"):  # asmcli 1.19.10
        assert "istio.io/rev" not in doc["metadata"]["labels"]
        assert doc["metadata"]["annotations"]["istio.io/rev"] == cfg.rev1
        assert yaml.safe_load(doc["metadata"]["annotations"]["sidecar.istio.io/status"])["revision"] == cfg.rev1
    # A rerun of the restart step restarts nothing (meshca restart reads what 1.19 wrote).
    result = run(em, steps["A2.restart.frontend"])
    assert result.ok and "0 restarted onto" in result.stdout
    _, up, _ = world(config, use_case="upgrade")
    for doc in _pod_json(up, "frontend"):  # CSM 1.16
        assert "istio.io/rev" not in doc["metadata"]["labels"]
        assert "istio.io/rev" not in doc["metadata"]["annotations"]
        assert yaml.safe_load(doc["metadata"]["annotations"]["sidecar.istio.io/status"])["revision"] == "asm-1169-3"


# ----------------------------------------------------------------------------- issue 9 finding 13
# Gateway injection needs a namespace without istio-injection (istio/istio release-1.19
# manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml lines 54-90;
# istio/istio#37482); Google's migrate-to-asm deletes ns istio-operator before removing the old
# control plane (scripts/migration/migrate-to-asm line 1492, tag 1.19.10-asm.9+config1).


def test_pre_flight_refuses_a_gateway_namespace_with_an_injection_label(config):
    cfg, mesh, em = world(config)
    mesh.clusters["cluster-1"].namespaces[SYSTEM_NS].labels["istio-injection"] = "disabled"
    steps = final_steps(cfg)
    result = run(em, steps["A4.preflight"])
    assert result.rc == 2 and "MCA0854 namespace/istio-system: namespace istio-system carries istio-injection=disabled" in result.stderr


def test_pre_flight_refuses_an_in_cluster_operator_before_a5(config):
    from meshca.sim.mesh import Namespace, Workload

    cfg, mesh, em = world(config)
    c = mesh.clusters["cluster-1"]
    c.namespaces["istio-operator"] = Namespace("istio-operator", {})
    c.add_workload(Workload(kind="Deployment", namespace="istio-operator", name="istio-operator", labels={"name": "istio-operator"}, template_labels={"name": "istio-operator"}, template_annotations={}, service_account="istio-operator"))
    result = run(em, final_steps(cfg)["A5.preflight"])
    assert result.rc == 2 and "MCA0855 istio-operator/istio-operator: " in result.stderr


def test_the_istiod_service_step_works_without_local_leftovers(config):
    cfg, mesh, em = world(config)
    steps = install_rev1(cfg, em)
    mesh.files.clear()  # another runner: no asm-out/ here
    result = run(em, steps["A5.apply-istiod-service"])
    assert result.ok, result.stderr
    svc = mesh.clusters["cluster-1"].objects[("Service", SYSTEM_NS, "istiod")]
    assert svc["spec"]["selector"] == {"app": "istiod", "istio.io/rev": cfg.rev1}
