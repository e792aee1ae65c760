"""The injector and istioctl stand-ins against a real kube-apiserver.

- A pod created in a namespace labelled ``istio.io/rev=REV1`` comes back injected: the REAL API
  server calls the injector stand-in through the MutatingWebhookConfiguration the asmcli stand-in
  created (expectations: istio/istio 1.19.10 injection-template.yaml and webhook.go).
- ``istioctl tag set default --revision REV1 --overwrite`` makes ``istio-injection=enabled``
  namespaces inject with REV1 (revision-tags.yaml, istioctl/pkg/tag).
- ``istioctl proxy-config secret`` of a REV1 pod (citadel + ca-migration-citadel) shows a leaf
  signed by the plugged-in Citadel CA and both roots (trust-model.md); a Mesh CA revision's pod
  holds a Mesh CA leaf; a pod whose istiod is gone keeps its last bundle.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "standins"))

import testkit  # noqa: E402  (standins/testkit.py)

pytestmark = pytest.mark.e2e

CONTEXT = "gke_standins-test_us-central1_standins-1"
FLEET = "standins-fleet"
REV1 = "asm-11910-9-distribute-root"
REV2 = "asm-11910-9-meshca-ca-migration"
SAMPLES = REPO / "samples" / "certs"
NS_REV1 = "standins-rev1"
NS_LEGACY = "standins-legacy"
NS_TAG = "standins-tag-default"
NS_REV2 = "standins-rev2"


def install(cluster, tmp: Path, rev: str, ca: str, option: str) -> None:
    k = cluster["kube"]
    if k.get_or_none("apps/v1", "deployments", f"istiod-{rev}", "istio-system") is not None:
        return
    argv = ["install", "--fleet_id", FLEET, "--kubeconfig", cluster["kubeconfig"], "--context", CONTEXT,
            "--output_dir", str(tmp / rev), "--enable_all", "--ca", ca]
    if ca == "citadel" and k.get_or_none("v1", "secrets", "cacerts", "istio-system") is None:
        argv += ["--ca_cert", str(SAMPLES / "ca-cert.pem"), "--ca_key", str(SAMPLES / "ca-key.pem"),
                 "--root_cert", str(SAMPLES / "root-cert.pem"), "--cert_chain", str(SAMPLES / "cert-chain.pem")]
    argv += ["--option", option, "--revision_name", rev]
    proc = testkit.run(testkit.ASMCLI, argv, cluster["env"], stdin="y\n")
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def cluster(clusters_factory, tmp_path_factory):
    c = testkit.standins_cluster(clusters_factory, CONTEXT)
    install(c, tmp_path_factory.mktemp("asm-out"), REV1, "citadel", "ca-migration-citadel")
    return c


def istioctl(cluster, *args: str, stdin: str = ""):
    # global flags first, as meshca's istioctl source passes them (meshca/trust/istioctl_source.py)
    return testkit.run(testkit.ISTIOCTL, ["--kubeconfig", cluster["kubeconfig"], "--context", CONTEXT, *args], cluster["env"], stdin=stdin)


def containers(pod: dict, key: str = "containers") -> list[str]:
    return [c["name"] for c in pod["spec"].get(key) or []]


def proxy_env(pod: dict) -> dict:
    c = next(c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy")
    return {e["name"]: e.get("value") for e in c.get("env") or []}


# ------------------------------------------------------------------------------ injection
def test_pod_in_revision_namespace_comes_back_injected(cluster):
    k, env = cluster["kube"], cluster["env"]
    testkit.ensure_namespace(k, NS_REV1, {"istio.io/rev": REV1})
    pod = testkit.create_pod(k, NS_REV1, "web", labels={"app": "web", "version": "v1"})  # the API server's answer
    # injection-template.yaml:30-66 metadata, :69-159 istio-init, :190-448 istio-proxy, :449-523 volumes
    assert containers(pod) == ["app", "istio-proxy"]  # proxy last (webhook.go:694-697)
    assert containers(pod, "initContainers") == ["istio-init"]
    ann, labels = pod["metadata"]["annotations"], pod["metadata"]["labels"]
    assert ann["istio.io/rev"] == REV1  # injection-template.yaml:39
    status = json.loads(ann["sidecar.istio.io/status"])  # webhook.go:388-413
    assert status["revision"] == REV1 and status["containers"] == ["istio-proxy"] and status["initContainers"] == ["istio-init"]
    assert {"istio-envoy", "istio-token", "istiod-ca-cert", "istio-data", "istio-podinfo"} <= set(status["volumes"])
    assert labels["security.istio.io/tlsMode"] == "istio"
    assert labels["service.istio.io/canonical-name"] == "web" and labels["service.istio.io/canonical-revision"] == "v1"
    assert {"istio-envoy", "istio-token", "istiod-ca-cert"} <= {v["name"] for v in pod["spec"]["volumes"]}
    penv = proxy_env(pod)
    assert penv["CA_ADDR"] == f"istiod-{REV1}.istio-system.svc:15012"  # caAddress "" in citadel-ca.yaml -> :236-241
    assert penv["CA_PROVIDER"] == "Citadel" and penv["PROXY_CONFIG_XDS_AGENT"] == "true"  # proxyMetadata :337-340
    assert penv["TRUST_DOMAIN"] == "cluster.local"

    # gateway-injection-template.yaml: `inject.istio.io/templates: gateway`, container istio-proxy image auto
    gw = testkit.create_pod(
        k, NS_REV1, "gw", labels={"app": "istio-ingressgateway", "sidecar.istio.io/inject": "true"},
        annotations={"inject.istio.io/templates": "gateway"}, containers=[{"name": "istio-proxy", "image": "auto"}],
    )
    proxy = gw["spec"]["containers"][0]
    assert proxy["image"] == "gke.gcr.io/asm/proxyv2:1.19.10-asm.9" and proxy["args"][:2] == ["proxy", "router"]
    assert not gw["spec"].get("initContainers")
    assert gw["metadata"]["annotations"]["istio.io/rev"] == REV1
    assert "security.istio.io/tlsMode" not in gw["metadata"]["labels"]

    # injection-template policy: sidecar.istio.io/inject=false is never injected (and the objectSelector skips it)
    off = testkit.create_pod(k, NS_REV1, "off", labels={"app": "off", "sidecar.istio.io/inject": "false"})
    assert containers(off) == ["app"]


# ------------------------------------------------------------------------------ revision tag default
OLD_DEFAULT_INJECTOR = "istio-sidecar-injector"


def test_tag_set_default_injects_istio_injection_enabled_namespaces(cluster):
    k, env = cluster["kube"], cluster["env"]
    url = env["MESHCA_STANDIN_INJECTOR_URL"]
    # an old default-revision injector (Istio on GKE style): istio-injection=enabled -> revision default
    if k.get_or_none("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", OLD_DEFAULT_INJECTOR) is None:
        k.create("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": OLD_DEFAULT_INJECTOR, "labels": {"istio.io/rev": "default", "app": "sidecar-injector"}},
            "webhooks": [{"name": "sidecar-injector.istio.io", "clientConfig": {"url": url + "/inject", "caBundle": env["MESHCA_STANDIN_INJECTOR_CA_BUNDLE"]},
                          "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
                          "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                          "namespaceSelector": {"matchLabels": {"istio-injection": "enabled"}}}]})
    testkit.ensure_namespace(k, NS_LEGACY, {"istio-injection": "enabled"})
    before = testkit.create_pod(k, NS_LEGACY, "before")
    assert before["metadata"]["annotations"]["istio.io/rev"] == "default"

    bad = istioctl(cluster, "tag", "set", "default", "--revision", "no-such-rev", "--overwrite")
    assert bad.returncode == 1
    assert 'cannot modify tag: cannot find MutatingWebhookConfiguration with revision "no-such-rev"' in bad.stderr  # generate.go:109-111

    proc = istioctl(cluster, "tag", "set", "default", "--revision", REV1, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f'Revision tag "default" created, referencing control plane revision "{REV1}".')  # tag.go:51-53
    again = istioctl(cluster, "tag", "set", "default", "--revision", REV1)
    assert again.returncode == 1 and 'revision tag "default" already exists, and --overwrite is false' in again.stderr  # generate.go:120-122

    tag = k.get("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", "istio-revision-tag-default")
    assert tag["metadata"]["labels"]["istio.io/tag"] == "default" and tag["metadata"]["labels"]["istio.io/rev"] == REV1
    hooks = {w["name"]: w for w in tag["webhooks"]}  # revision-tags.yaml:50-117
    assert sorted(hooks) == sorted(["rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io",
                                    "namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io"])
    assert hooks["namespace.sidecar-injector.istio.io"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]}
    assert hooks["rev.namespace.sidecar-injector.istio.io"]["namespaceSelector"]["matchExpressions"][0] == {
        "key": "istio.io/rev", "operator": "In", "values": ["default"]}
    assert all(w["clientConfig"]["url"] == f"{url}/inject/rev/{REV1}" for w in tag["webhooks"])
    old = k.get("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", OLD_DEFAULT_INJECTOR)
    assert all(w["namespaceSelector"] == {"matchLabels": {"istio.io/deactivated": "never-match"}} for w in old["webhooks"])  # util.go:149-180
    val = k.get("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "istiod-default-validator")
    assert val["metadata"]["labels"]["istio.io/rev"] == REV1 and val["webhooks"][0]["clientConfig"]["url"] == f"{url}/validate"

    after = testkit.create_pod(k, NS_LEGACY, "after")
    assert after["metadata"]["annotations"]["istio.io/rev"] == REV1
    assert "istio-proxy" in containers(after)
    testkit.ensure_namespace(k, NS_TAG, {"istio.io/rev": "default"})
    tagged = testkit.create_pod(k, NS_TAG, "tagged")
    assert tagged["metadata"]["annotations"]["istio.io/rev"] == REV1

    listing = istioctl(cluster, "tag", "list")
    assert listing.returncode == 0
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows[0] == ["TAG", "REVISION", "NAMESPACES"] and ["default", REV1, NS_TAG] in rows  # tag.go:424-428


def test_istioctl_version(cluster):
    proc = istioctl(cluster, "version", "--remote=false")
    assert (proc.returncode, proc.stdout) == (0, "1.19.10-asm.9\n")  # pkg/version/cobra.go:99-100
    proc = istioctl(cluster, "version")
    assert proc.returncode == 0 and proc.stdout.splitlines()[:2] == ["client version: 1.19.10-asm.9", "control plane version: 1.19.10-asm.9"]


# ------------------------------------------------------------------------------ proxy-config secret
def secrets(cluster, pod: str, ns: str) -> dict:
    proc = istioctl(cluster, "proxy-config", "secret", pod, "-n", ns, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    out = {}
    for item in doc["dynamicActiveSecrets"]:
        sec = item["secret"]
        if "tlsCertificate" in sec:
            out[item["name"]] = base64.b64decode(sec["tlsCertificate"]["certificateChain"]["inlineBytes"])
            assert sec["tlsCertificate"]["privateKey"]["inlineBytes"] == base64.b64encode(b"[redacted]").decode()
        else:
            out[item["name"]] = base64.b64decode(sec["validationContext"]["trustedCa"]["inlineBytes"])
    out["_raw"] = proc.stdout.encode()
    return out


def _certs(pem: bytes):
    from cryptography import x509

    return x509.load_pem_x509_certificates(pem)


def _fp(cert) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def test_proxy_config_secret_of_a_rev1_pod(cluster):
    from cryptography import x509

    k = cluster["kube"]
    testkit.ensure_namespace(k, NS_REV1, {"istio.io/rev": REV1})
    testkit.wait_running(k, NS_REV1, "web")
    s = secrets(cluster, "web", NS_REV1)
    chain = _certs(s["default"])
    leaf = chain[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://cluster.local/ns/{NS_REV1}/sa/default"]
    intermediate = _certs((SAMPLES / "ca-cert.pem").read_bytes())[0]
    leaf.verify_directly_issued_by(intermediate)  # signed by the plugged-in CA (cacerts ca-cert.pem/ca-key.pem)
    roots = _certs(s["ROOTCA"])
    citadel_root = _certs((SAMPLES / "root-cert.pem").read_bytes())[0]
    mesh = yaml.safe_load(k.get("v1", "configmaps", f"istio-{REV1}", "istio-system")["data"]["mesh"])
    meshca_root = _certs(mesh["caCertificates"][0]["pem"].encode())[0]
    assert sorted(_fp(r) for r in roots) == sorted([_fp(citadel_root), _fp(meshca_root)])  # trust-model.md: REV1 trusts both
    assert "istio_v1_cloud_workload_root-signer-" in meshca_root.subject.rfc4514_string()
    # issued once per pod UID: a second read is the same leaf
    assert _certs(secrets(cluster, "web", NS_REV1)["default"])[0].serial_number == leaf.serial_number
    # meshca's own reader accepts it (integration check only; the stand-in does not import meshca)
    sys.path.insert(0, str(REPO))
    from meshca.trust.dumps import parse_dump

    parsed = parse_dump(s["_raw"], f"web.{NS_REV1}")
    assert parsed is not None


def test_proxy_config_secret_of_a_meshca_pod_and_a_pod_whose_istiod_is_gone(cluster, tmp_path):
    from cryptography import x509

    k = cluster["kube"]
    install(cluster, tmp_path, REV2, "mesh_ca", "ca-migration-meshca")
    testkit.ensure_namespace(k, NS_REV2, {"istio.io/rev": REV2})
    testkit.create_pod(k, NS_REV2, "api")
    testkit.wait_running(k, NS_REV2, "api")
    s = secrets(cluster, "api", NS_REV2)
    chain = _certs(s["default"])
    san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"spiffe://{FLEET}.svc.id.goog/ns/{NS_REV2}/sa/default"]
    roots = _certs(s["ROOTCA"])
    assert [r.subject.rfc4514_string().count("istio_v1_cloud_workload_root-signer-") for r in roots] == [1]
    # ca-migration-meshca at 1.19.10-asm.9+config1 sets ENABLE_CA_SERVER false: REV2 pushes no Citadel root
    rev1_bundle = secrets(cluster, "web", NS_REV1)["ROOTCA"]
    assert any(_fp(r) == _fp(roots[0]) for r in _certs(rev1_bundle))  # REV1 proxies already trust REV2's signer

    # REV1's istiod is gone: its proxies keep their last bundle even when the CA secrets change
    k.delete("apps/v1", "deployments", f"istiod-{REV1}", "istio-system")
    k.delete("v1", "secrets", "cacerts", "istio-system")
    kept = secrets(cluster, "web", NS_REV1)
    assert kept["ROOTCA"] == rev1_bundle
