"""The asmcli stand-in against a real kube-apiserver: its refusals and what ``install`` creates.

Expectations are transcribed from asmcli 1.19.10-asm.9+config1 (GoogleCloudPlatform/
anthos-service-mesh-packages at that tag; paths below are theirs) and istio/istio 1.19.10's
istio-discovery chart, never from meshca or from the stand-in itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "standins"))

import testkit  # noqa: E402  (standins/testkit.py)

pytestmark = pytest.mark.e2e

CONTEXT = "gke_standins-test_us-central1_standins-1"  # gke_PROJECT_LOCATION_NAME, as asmcli parses it (validate.sh:769-786)
FLEET = "standins-fleet"
REV1 = "asm-11910-9-distribute-root"
SAMPLES = REPO / "samples" / "certs"


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def cluster(clusters_factory):
    return testkit.standins_cluster(clusters_factory, CONTEXT)


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def bad_certs(tmp_path_factory) -> dict[str, Path]:
    """Four-file sets that break one rule each (keys of the refusal table below)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("bad-certs")

    def ca(name, key, issuer=None, issuer_key=None):
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256())
        )

    def key_pem(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    sets = {}
    # EC key: `openssl rsa -check` fails (citadel.sh:35-37)
    ec_root_key = ec.generate_private_key(ec.SECP256R1())
    ec_root = ca("ec root", ec_root_key)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_int = ca("ec intermediate", ec_key, ec_root.subject, ec_root_key)
    sets["ec"] = {"ca-cert.pem": _pem_cert(ec_int), "ca-key.pem": key_pem(ec_key), "root-cert.pem": _pem_cert(ec_root),
                  "cert-chain.pem": _pem_cert(ec_int) + _pem_cert(ec_root)}
    # key of another CA (citadel.sh:48-56)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sets["mismatch"] = {"ca-cert.pem": (SAMPLES / "ca-cert.pem").read_bytes(), "ca-key.pem": key_pem(other),
                        "root-cert.pem": (SAMPLES / "root-cert.pem").read_bytes(), "cert-chain.pem": (SAMPLES / "cert-chain.pem").read_bytes()}
    # ca-cert.pem of a foreign root (citadel.sh:59-62)
    root2_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root2 = ca("foreign root", root2_key)
    int2_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    int2 = ca("foreign intermediate", int2_key, root2.subject, root2_key)
    sets["chain"] = {"ca-cert.pem": _pem_cert(int2), "ca-key.pem": key_pem(int2_key),
                     "root-cert.pem": (SAMPLES / "root-cert.pem").read_bytes(), "cert-chain.pem": _pem_cert(int2)}
    # not a certificate (citadel.sh:38-46)
    sets["garbage"] = {"ca-cert.pem": b"not a certificate\n", "ca-key.pem": (SAMPLES / "ca-key.pem").read_bytes(),
                       "root-cert.pem": (SAMPLES / "root-cert.pem").read_bytes(), "cert-chain.pem": (SAMPLES / "cert-chain.pem").read_bytes()}
    out = {}
    for name, files in sets.items():
        sd = d / name
        sd.mkdir()
        for fn, data in files.items():
            (sd / fn).write_bytes(data)
        out[name] = sd
    return out


def base_args(kubeconfig: str, out: Path, rev: str = REV1) -> list[str]:
    return ["install", "--fleet_id", FLEET, "--kubeconfig", kubeconfig, "--context", CONTEXT, "--output_dir", str(out), "--enable_all"]


def cert_args(d: Path) -> list[str]:
    return ["--ca_cert", str(d / "ca-cert.pem"), "--ca_key", str(d / "ca-key.pem"), "--root_cert", str(d / "root-cert.pem"),
            "--cert_chain", str(d / "cert-chain.pem")]


# ------------------------------------------------------------------------------ the refusal table
# (id, argv after the base, expected [ERROR] text, source at asmcli 1.19.10-asm.9+config1)
REFUSALS = [
    ("unknown-flag", ["--bogus"], "Unknown option --bogus", "asmcli/lib/parse.sh:257-258"),
    ("flag-without-value", ["--ca"], "Option --ca requires an argument.", "asmcli/lib/validate.sh:788-792"),
    ("flag-value-is-a-flag", ["--revision_name", "--ca"], "Option --revision_name requires an argument.", "asmcli/lib/validate.sh:788-792"),
    ("revision-not-rfc1123", ["--ca", "citadel", "--revision_name", "Bad_Rev"],
     "Revision label does not follow RFC 1123 formatting convention.", "asmcli/lib/validate.sh:6,13-15"),
    ("revision-too-long", ["--ca", "citadel", "--revision_name", "a" * 64],
     "Revision label cannot be longer than 63.", "asmcli/lib/validate.sh:9-11"),
    ("ca-unknown", ["--ca", "vault"], "CA must be one of 'citadel', 'mesh_ca', 'gcp_cas', 'managed_cas'", "asmcli/lib/validate.sh:677-684"),
    ("custom-certs-with-mesh-ca", ["--ca", "mesh_ca", "--root_cert", str(SAMPLES / "root-cert.pem"), "--cert_chain", str(SAMPLES / "cert-chain.pem")],
     "You must select Citadel as the CA in order to use custom certificates.", "asmcli/components/ca/citadel.sh:7-9"),
    ("three-of-four-cert-flags", ["--ca", "citadel", "--ca_cert", str(SAMPLES / "ca-cert.pem"), "--ca_key", str(SAMPLES / "ca-key.pem"),
                                  "--root_cert", str(SAMPLES / "root-cert.pem")],
     "All four certificate options must be present to use a custom cert.", "asmcli/components/ca/citadel.sh:10-12"),
    ("cert-file-missing", ["--ca", "citadel", "--ca_cert", "/nonexistent/ca-cert.pem", "--ca_key", str(SAMPLES / "ca-key.pem"),
                           "--root_cert", str(SAMPLES / "root-cert.pem"), "--cert_chain", str(SAMPLES / "cert-chain.pem")],
     "Couldn't find file /nonexistent/ca-cert.pem.", "asmcli/components/ca/citadel.sh:13-22"),
    ("ec-key", "certs:ec", "ca-key.pem failed an openssl consistency check.", "asmcli/components/ca/citadel.sh:35-37"),
    ("not-a-certificate", "certs:garbage", "ca-cert.pem failed an openssl consistency check.", "asmcli/components/ca/citadel.sh:38-40"),
    ("key-does-not-match", "certs:mismatch", "Keyfile does not match the given certificate.", "asmcli/components/ca/citadel.sh:48-56"),
    ("chain-does-not-verify", "certs:chain", "Unable to verify chain of trust.", "asmcli/components/ca/citadel.sh:59-62"),
    ("custom-overlay-missing", ["--ca", "citadel", "--custom_overlay", "/nonexistent/overlay.yaml"],
     "Couldn't find yaml file /nonexistent/overlay.yaml.", "asmcli/lib/validate.sh:746-755"),
    ("option-unknown", ["--ca", "citadel", "--option", "ca-migration-migration"],  # the guide's misspelling
     "Couldn't find yaml file ca-migration-migration.", "asmcli/lib/util.sh:549-568"),
    ("kubeconfig-and-cluster-flags", ["--ca", "citadel", "--project_id", "p"],
     "Incompatible arguments. Kubeconfig cannot be used in conjunction with [--cluster_location|--cluster_name|--project_id].",
     "asmcli/lib/validate.sh:624-626"),
]


@pytest.mark.parametrize("case_id,extra,message,source", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_asmcli_refuses(cluster, bad_certs, tmp_path, case_id, extra, message, source):
    if isinstance(extra, str):
        d = bad_certs[extra.split(":", 1)[1]]
        extra = ["--ca", "citadel", *cert_args(d)]
        message = message if not message.startswith("ca-") else f"{d}/{message}"
    argv = base_args(cluster["kubeconfig"], tmp_path / "out") + extra + (["--revision_name", REV1] if "--revision_name" not in extra else [])
    if case_id == "flag-without-value":
        argv = base_args(cluster["kubeconfig"], tmp_path / "out") + ["--ca"]
    proc = testkit.run(testkit.ASMCLI, argv, cluster["env"])
    assert proc.returncode == 2, f"{case_id} ({source}): exit {proc.returncode}\n{proc.stderr}"
    assert f"asmcli: [ERROR]: {message}" in proc.stderr, f"{case_id} ({source}): stderr was\n{proc.stderr}"
    assert cluster["kube"].get_or_none("apps/v1", "deployments", f"istiod-{REV1}", "istio-system") is None


def test_asmcli_refuses_without_any_cluster_selection(cluster, tmp_path):
    """validate.sh:633-636 warns, :697-699 stops: neither --kubeconfig nor the three cluster flags."""
    proc = testkit.run(testkit.ASMCLI, ["install", "--fleet_id", FLEET, "--ca", "citadel", "--output_dir", str(tmp_path)], cluster["env"])
    assert proc.returncode == 2
    assert "At least one of the following is required: 1) --kubeconfig or 2) --cluster_location, --cluster_name, --project_id" in proc.stderr
    assert "asmcli: [ERROR]: Missing one or more required options." in proc.stderr


def test_asmcli_version_and_no_arguments(cluster):
    """commands/help.sh:38-44 prints MAJOR.MINOR.POINT-asm.REV+configN; asmcli.sh:88-91 without arguments exits 2."""
    proc = testkit.run(testkit.ASMCLI, ["--version"], cluster["env"])
    assert (proc.returncode, proc.stdout) == (0, "1.19.10-asm.9+config1\n")
    proc = testkit.run(testkit.ASMCLI, [], cluster["env"])
    assert proc.returncode == 2 and "usage: asmcli [SUBCOMMAND] [OPTION]..." in proc.stderr


# ------------------------------------------------------------------------------ cluster-side refusals and the install
def _seed_ingress_gateway(k):
    testkit.ensure_namespace(k, "istio-system")
    if k.get_or_none("v1", "services", "istio-ingressgateway", "istio-system") is None:
        k.create("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                                    "spec": {"selector": {"app": "istio-ingressgateway"}, "ports": [{"name": "http2", "port": 80}]}}, "istio-system")


def test_asmcli_install_sequence(cluster, tmp_path):
    """In order, on one cluster: namespace missing -> refused; gateway present and the answer is no ->
    refused; answer y -> REV1 installed with every object; the same command again -> cacerts refusal."""
    k, env, kc = cluster["kube"], cluster["env"], cluster["kubeconfig"]
    out = tmp_path / "asm-out"
    argv = base_args(kc, out) + ["--ca", "citadel", *cert_args(SAMPLES), "--option", "ca-migration-citadel", "--revision_name", REV1]

    # validate.sh:417-427: without --enable_all (or --enable_namespace_creation) a missing istio-system stops asmcli
    assert k.get_or_none("v1", "namespaces", "istio-system") is None
    no_enable = [a for a in argv if a != "--enable_all"]
    proc = testkit.run(testkit.ASMCLI, no_enable, env)
    assert proc.returncode == 2, proc.stderr
    assert "asmcli: [ERROR]: The istio-system namespace doesn't exist." in proc.stderr

    # validate.sh:257-272: an istio-ingressgateway Service in istio-system -> "Continue? [y/N]" read from stdin
    _seed_ingress_gateway(k)
    proc = testkit.run(testkit.ASMCLI, argv, env, stdin="n\n")
    assert proc.returncode == 2, proc.stderr
    assert "We detected an ASM ingress gateway currently running in the cluster that" in proc.stderr
    assert "asmcli: [ERROR]: Stopping installation at user request." in proc.stderr
    proc = testkit.run(testkit.ASMCLI, argv, env, stdin="")  # no answer (EOF) is no
    assert proc.returncode == 2 and "Stopping installation at user request." in proc.stderr
    assert k.get_or_none("v1", "secrets", "cacerts", "istio-system") is None
    assert k.get_or_none("apps/v1", "deployments", f"istiod-{REV1}", "istio-system") is None

    proc = testkit.run(testkit.ASMCLI, argv, env, stdin="y\n")
    assert proc.returncode == 0, proc.stderr
    assert "asmcli: Successfully installed ASM." in proc.stderr
    assert f"kubectl label namespace <NAMESPACE> istio-injection- istio.io/rev={REV1} --overwrite" in proc.stderr
    check_rev1_objects(k, env, out)

    # citadel.sh:93-98: the rerun with the four flags stops because cacerts exists
    proc = testkit.run(testkit.ASMCLI, argv, env, stdin="y\n")
    assert proc.returncode == 2
    assert "asmcli: [ERROR]: Custom certificates already exist in the cluster. Please remove the" in proc.stderr
    assert "asmcli: [ERROR]: without any of the custom certificate flags." in proc.stderr

    recs = [r for r in testkit.log_records(cluster["log"]) if r["tool"] == "asmcli"]
    assert [r["exit"] for r in recs[-5:]] == [2, 2, 2, 0, 2]
    assert recs[-2]["argv"][:2] == ["asmcli", "install"] and recs[-2]["argv"][-1] == REV1


def check_rev1_objects(k, env, out: Path) -> None:
    ns = "istio-system"
    name = f"istiod-{REV1}"
    # istio-discovery chart 1.19.10: deployment.yaml:1-46, service.yaml:1-41, autoscale.yaml, poddisruptionbudget.yaml
    dep = k.get("apps/v1", "deployments", name, ns)
    assert dep["metadata"]["labels"]["app"] == "istiod" and dep["metadata"]["labels"]["istio.io/rev"] == REV1
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "istiod", "istio.io/rev": REV1}
    assert dep["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    denv = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert denv["REVISION"] == REV1 and denv["ISTIO_MULTIROOT_MESH"] == "true"  # ca-migration-citadel values.pilot.env
    svc = k.get("v1", "services", name, ns)
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("grpc-xds", 15010), ("https-dns", 15012), ("https-webhook", 443), ("http-monitoring", 15014)]
    assert svc["spec"]["selector"] == {"app": "istiod", "istio.io/rev": REV1}
    assert k.get("autoscaling/v2", "horizontalpodautoscalers", name, ns)["spec"]["scaleTargetRef"]["name"] == name
    assert k.get("policy/v1", "poddisruptionbudgets", name, ns)["spec"]["selector"]["matchLabels"] == {"app": "istiod", "istio.io/rev": REV1}
    # operator/cmd/mesh/install.go:272-294: installed-state-REV
    iop = k.get("install.istio.io/v1alpha1", "istiooperators", f"installed-state-{REV1}", ns)
    assert iop["spec"]["revision"] == REV1
    # mutatingwebhook.yaml:34-95 for a revision: exactly the two rev.* webhooks with these selectors
    mwc = k.get("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", f"istio-sidecar-injector-{REV1}")
    assert mwc["metadata"]["labels"]["istio.io/rev"] == REV1
    hooks = {w["name"]: w for w in mwc["webhooks"]}
    assert sorted(hooks) == ["rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io"]
    nsw, objw = hooks["rev.namespace.sidecar-injector.istio.io"], hooks["rev.object.sidecar-injector.istio.io"]
    assert nsw["namespaceSelector"]["matchExpressions"] == [{"key": "istio.io/rev", "operator": "In", "values": [REV1]},
                                                           {"key": "istio-injection", "operator": "DoesNotExist"}]
    assert nsw["objectSelector"]["matchExpressions"] == [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]
    assert objw["namespaceSelector"]["matchExpressions"] == [{"key": "istio.io/rev", "operator": "DoesNotExist"},
                                                            {"key": "istio-injection", "operator": "DoesNotExist"}]
    assert objw["objectSelector"]["matchExpressions"] == [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]},
                                                         {"key": "istio.io/rev", "operator": "In", "values": [REV1]}]
    for w in hooks.values():
        assert w["clientConfig"]["url"] == f"{env['MESHCA_STANDIN_INJECTOR_URL']}/inject/rev/{REV1}"
        assert w["clientConfig"]["caBundle"] == env["MESHCA_STANDIN_INJECTOR_CA_BUNDLE"]
        assert w["failurePolicy"] == "Fail" and w["rules"][0]["resources"] == ["pods"]
    vwc = k.get("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", f"istio-validator-{REV1}-istio-system")
    assert vwc["webhooks"][0]["objectSelector"]["matchExpressions"] == [{"key": "istio.io/rev", "operator": "In", "values": [REV1]}]
    # the mesh config: base istio-operator.yaml + citadel-ca.yaml + ca-migration-citadel.yaml
    mesh = yaml.safe_load(k.get("v1", "configmaps", f"istio-{REV1}", ns)["data"]["mesh"])
    assert mesh["trustDomain"] == "cluster.local"  # citadel-ca.yaml
    assert mesh["trustDomainAliases"] == [f"{FLEET}.svc.id.goog"]  # istio-operator.yaml, trustDomain setter (config.sh:68)
    meta = mesh["defaultConfig"]["proxyMetadata"]
    assert meta["CA_PROVIDER"] == "Citadel" and meta["PROXY_CONFIG_XDS_AGENT"] == "true"
    from cryptography import x509

    roots = [x509.load_pem_x509_certificate(c["pem"].encode()) for c in mesh["caCertificates"]]
    assert len(roots) == 1 and roots[0].subject.rfc4514_string().find("istio_v1_cloud_workload_root-signer-") >= 0
    assert k.get_or_none("v1", "configmaps", f"istio-sidecar-injector-{REV1}", ns) is not None
    # cacerts from the four files, keys = basenames (citadel.sh:100-105)
    cacerts = k.get("v1", "secrets", "cacerts", ns)
    assert sorted(cacerts["data"]) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    assert base64.b64decode(cacerts["data"]["root-cert.pem"]) == (SAMPLES / "root-cert.pem").read_bytes()
    # OUTPUT_DIR/asm/istio/istiod-service.yaml (asm/istio/istiod-service.yaml with the rev setter)
    svc_doc = yaml.safe_load((out / "asm" / "istio" / "istiod-service.yaml").read_text())
    assert svc_doc["metadata"]["name"] == "istiod" and svc_doc["spec"]["selector"] == {"app": "istiod", "istio.io/rev": REV1}
    assert [p["port"] for p in svc_doc["spec"]["ports"]] == [15010, 15012, 443, 15014]


def test_asmcli_meshca_revision(cluster, tmp_path):
    """REV2 = mesh_ca + ca-migration-meshca: trust domain FLEET.svc.id.goog, aliases merged
    (merge_iop.go:144 patchStrategy merge) with cluster.local; ENABLE_CA_SERVER false on istiod."""
    k, env, kc = cluster["kube"], cluster["env"], cluster["kubeconfig"]
    rev2 = "asm-11910-9-meshca-ca-migration"
    argv = base_args(kc, tmp_path / "out2") + ["--ca", "mesh_ca", "--option", "ca-migration-meshca", "--revision_name", rev2]
    proc = testkit.run(testkit.ASMCLI, argv, env, stdin="y\n")
    assert proc.returncode == 0, proc.stderr
    mesh = yaml.safe_load(k.get("v1", "configmaps", f"istio-{rev2}", "istio-system")["data"]["mesh"])
    assert mesh["trustDomain"] == f"{FLEET}.svc.id.goog"
    assert mesh["trustDomainAliases"][:2] == [f"{FLEET}.svc.id.goog", f"{FLEET}.hub.id.goog"]  # mesh-ca.sh:27-28
    assert "cluster.local" in mesh["trustDomainAliases"]
    assert mesh["defaultConfig"]["proxyMetadata"]["CA_PROVIDER"] == "GoogleCA"
    dep = k.get("apps/v1", "deployments", f"istiod-{rev2}", "istio-system")
    denv = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert denv["ENABLE_CA_SERVER"] == "false" and denv["ISTIO_MULTIROOT_MESH"] == "true"
    shutil.rmtree(tmp_path / "out2", ignore_errors=True)
