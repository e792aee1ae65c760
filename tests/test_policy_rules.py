"""The policy pack's rules, one by one, on props built by hand (props the plan never produces).

Each rule is exercised twice: by a direct call of its validate function, and through
pulumi-policy's own analyzer servicer (Configure, then Analyze per resource / AnalyzeStack),
which is what ``pulumi preview --policy-pack policy`` drives over gRPC.
"""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

import pytest
from pulumi.runtime import rpc
from pulumi_policy.proxy import UnknownValueError

from policy import rules
from policy import testing as T
from policy.testing import Spec

ROOT = Path(__file__).resolve().parents[1]
CTX = "gke_acme_us-central1_c1"
OLD, REV1, REV2 = "default", "asm-11910-9-distribute-root", "asm-11910-9-meshca-ca-migration"
CERTS = ["--ca_cert", "certs/ca-cert.pem", "--ca_key", "certs/ca-key.pem", "--root_cert", "certs/root-cert.pem", "--cert_chain", "certs/cert-chain.pem"]
REV1_FLAGS = ["--ca", "citadel", *CERTS, "--option", "ca-migration-citadel", "--revision_name", REV1]
REV2_FLAGS = ["--ca", "mesh_ca", "--option", "ca-migration-meshca", "--revision_name", REV2]


def asmcli(flags, env=None, name="c1.A1.install", context=True):
    argv = ["./asmcli", "install", "--fleet_id", "acme", "--kubeconfig", "kubeconfig", *(["--context", CTX] if context else []), "--output_dir", "out", "--enable_all", *flags]
    return Spec(rules.COMMAND, name, {"create": shlex.join(argv), "stdin": "y\n", "environment": {"MESHCA_STEP": "A1.install", **(env or {})}})


def command(argv, name="c1.cmd"):
    return Spec(rules.COMMAND, name, {"create": shlex.join(argv), "environment": {"MESHCA_STEP": name}})


def ns_patch(namespace, labels, name=None):
    return Spec(
        rules.NAMESPACE_PATCH,
        name or f"c1.namespace.{namespace}",
        {"metadata": {"name": namespace, "labels": labels, "annotations": {"pulumi.com/patchForce": "true"}}},
    )


def direct(policy, spec, config=None):
    return T.messages(policy, T.resource_args(spec.type, spec.props, spec.name, config))


def served(spec, config=None):
    """(mandatory coded lines, advisory diagnostics) of Analyze for one resource."""
    diags = T.analyze(T.servicer(config), spec)
    return T.mandatory(diags), T.advisory(diags)


# ----------------------------------------------------------------------------- revision-names


@pytest.mark.parametrize(
    "spec, code",
    [
        (asmcli(REV1_FLAGS[:-1] + ["Asm_Rev1"], {"MESHCA_CACERTS": "absent"}), "MCA0600"),
        (asmcli(REV1_FLAGS[:-1] + ["a" * 57], {"MESHCA_CACERTS": "absent"}), "MCA0601"),
        (ns_patch("shop", {"istio.io/rev": "1-rev"}), "MCA0602"),
        (ns_patch("shop", {"istio.io/rev": "r" * 57}), "MCA0603"),
        (command(["kubectl", "--context", CTX, "label", "namespace", "shop", "istio.io/rev=REV-1", "istio-injection-", "--overwrite"]), "MCA0602"),
        (
            Spec(rules.DEPLOYMENT, "c1.gateway", {"metadata": {"labels": {"istio.io/rev": REV1}}, "spec": {"template": {"metadata": {"labels": {"istio.io/rev": "rev_1"}}}}}),
            "MCA0602",
        ),
        (Spec(rules.CONTROL_PLANE, "c1.rev", {"cluster": "c1", "revision": "asm.1", "role": "rev1", "ca": "citadel", "removed": False}), "MCA0604"),
        (Spec(rules.NAMESPACE_REVISION, "c1.shop", {"cluster": "c1", "namespace": "shop", "revision": "x" * 60}), "MCA0605"),
        (Spec(rules.MESHCA_STACK, "meshca", {"revisions": {"old": OLD, "rev1": REV1, "rev2": "rev2-" + "y" * 52}}), "MCA0605"),
    ],
)
def test_revision_names_refuse_bad_names(spec, code):
    assert T.codes(direct(rules.revision_names, spec)) == [code]
    mandatory, _ = served(spec)
    assert code in T.codes(mandatory)
    assert all(line.count("\n") == 0 and "fix: " in line for line in mandatory)


@pytest.mark.parametrize(
    "spec",
    [
        asmcli(REV1_FLAGS, {"MESHCA_CACERTS": "absent"}),
        asmcli(REV1_FLAGS[:-1] + ["a" * 56], {"MESHCA_CACERTS": "absent"}),
        ns_patch("shop", {"istio.io/rev": REV2, "team": "shop"}),
        ns_patch("shop", {"istio-injection": "enabled"}),
        Spec(rules.CONTROL_PLANE, "c1.default", {"cluster": "c1", "revision": "default", "role": "old", "ca": None, "removed": True}),
        Spec(rules.GATEWAY_REVISION, "c1.gw", {"cluster": "c1", "gateway": "istio-system/gw", "canary": None, "revision": None}),
    ],
)
def test_revision_names_pass_good_names(spec):
    assert direct(rules.revision_names, spec) == []
    assert served(spec) == ([], [])


def test_revision_names_unknown_create_is_not_judged_in_preview():
    spec = Spec(rules.COMMAND, "c1.A1", {"create": rpc.UNKNOWN, "environment": {}})
    with pytest.raises(UnknownValueError):
        direct(rules.revision_names, spec)
    mandatory, advisory = served(spec)
    assert mandatory == []
    assert any("during preview" in d.message for d in advisory)


# ----------------------------------------------------------------------------- one-injection-label


def test_namespace_patch_with_both_labels_is_refused():
    spec = ns_patch("shop", {"istio-injection": "enabled", "istio.io/rev": REV1})
    assert T.codes(direct(rules.one_injection_label, spec)) == ["MCA0606"]
    assert T.codes(served(spec)[0]) == ["MCA0606"]


def test_label_command_setting_both_labels_is_refused():
    spec = command(["kubectl", "--context", CTX, "label", "namespace", "shop", f"istio.io/rev={REV1}", "istio-injection=enabled", "--overwrite"])
    assert T.codes(direct(rules.one_injection_label, spec)) == ["MCA0607"]
    assert T.codes(served(spec)[0]) == ["MCA0607"]


@pytest.mark.parametrize(
    "spec",
    [
        ns_patch("shop", {"istio.io/rev": REV1, "team": "shop"}),
        command(["kubectl", "--context", CTX, "label", "namespace", "shop", f"istio.io/rev={REV1}", "istio-injection-", "--overwrite"]),
        command(["kubectl", "--context", CTX, "label", "ns/shop", "istio.io/rev-", "istio-injection=enabled", "--overwrite"]),
    ],
)
def test_one_injection_label_passes(spec):
    assert direct(rules.one_injection_label, spec) == []
    assert served(spec) == ([], [])


# ----------------------------------------------------------------------------- asmcli-install-flags


@pytest.mark.parametrize(
    "spec, code",
    [
        (asmcli(REV1_FLAGS, {"MESHCA_CACERTS": "absent"}, context=False), "MCA0608"),
        (asmcli(REV2_FLAGS[:-2], {}), "MCA0609"),
        (asmcli(["--option", "ca-migration-citadel", "--revision_name", REV1], {}), "MCA0610"),
        (asmcli(["--ca", "gcp_cas", "--option", "ca-migration-meshca", "--revision_name", REV2], {}), "MCA0610"),
        (asmcli(["--ca", "citadel", *CERTS, "--revision_name", REV1], {"MESHCA_CACERTS": "absent"}), "MCA0611"),
        (asmcli(["--ca", "mesh_ca", "--revision_name", REV2], {}), "MCA0611"),
        (asmcli(REV1_FLAGS + ["--option", "ca-migration-meshca"], {"MESHCA_CACERTS": "absent"}), "MCA0612"),
        (asmcli(["--ca", "citadel", "--ca_cert", "c.pem", "--ca-key", "k.pem", "--option", "ca-migration-citadel", "-r", REV1], {"MESHCA_CACERTS": "absent"}), "MCA0613"),
        (asmcli(["--ca", "citadel", "--option", "ca-migration-citadel", "--revision_name", REV1], {"MESHCA_CACERTS": "absent"}), "MCA0614"),
        (asmcli(["--ca", "citadel", "--option", "ca-migration-citadel", "--revision_name", REV1], {"MESHCA_CACERTS": "unknown"}), "MCA0614"),
        (asmcli(["--ca", "citadel", "--option", "ca-migration-citadel", "--revision_name", REV1], {}), "MCA0614"),
        # The guide's phase B command: --root_cert and --cert_chain with --ca mesh_ca.
        (asmcli(["--ca", "mesh_ca", "--root_cert", "r.pem", "--cert_chain", "c.pem", "--option", "ca-migration-meshca", "--revision_name", REV2], {}), "MCA0615"),
        (asmcli(REV1_FLAGS, {"MESHCA_CACERTS": "matching"}), "MCA0616"),
        (Spec(rules.CONTROL_PLANE, "c1.rev2", {"cluster": "c1", "revision": REV2, "role": "rev2", "ca": "citadel", "removed": False}), "MCA0617"),
    ],
)
def test_asmcli_flags_refused(spec, code):
    assert T.codes(direct(rules.asmcli_install_flags, spec)) == [code]
    assert T.codes(served(spec)[0]) == [code]


@pytest.mark.parametrize(
    "spec",
    [
        asmcli(REV1_FLAGS, {"MESHCA_CACERTS": "absent"}),
        # A matching cacerts exists: the four files must go (asmcli would stop otherwise).
        asmcli(["--ca", "citadel", "--option", "ca-migration-citadel", "--revision_name", REV1], {"MESHCA_CACERTS": "matching"}),
        asmcli(REV2_FLAGS, {}),
        # Aliases and case, as asmcli's parse.sh accepts them.
        asmcli(["-c", "MESH_CA", "-o", "ca-migration-meshca", "-r", REV2], {}),
        asmcli(["--ca", "mesh_ca", "--option", "ca-migration-meshca", "--option", "hub-meshca", "--custom_overlay", "o.yaml", "--revision_name", REV2], {}),
        command(["./asmcli", "--version"]),
        command(["kubectl", "--context", CTX, "apply", "-f", "-"]),
        Spec(rules.CONTROL_PLANE, "c1.rev1", {"cluster": "c1", "revision": REV1, "role": "rev1", "ca": "citadel", "removed": False}),
    ],
)
def test_asmcli_flags_pass(spec):
    assert direct(rules.asmcli_install_flags, spec) == []
    assert served(spec)[0] == []


def test_asmcli_flags_unknown_environment_is_not_judged_in_preview():
    spec = asmcli(["--ca", "citadel", "--option", "ca-migration-citadel", "--revision_name", REV1])
    spec.props["environment"] = {"MESHCA_STEP": "A1", "MESHCA_CACERTS": rpc.UNKNOWN}
    with pytest.raises(UnknownValueError):
        direct(rules.asmcli_install_flags, spec)
    mandatory, advisory = served(spec)
    assert mandatory == [] and any("during preview" in d.message for d in advisory)


def test_asmcli_flags_known_faults_are_reported_even_with_an_unknown_environment():
    spec = asmcli(["--ca", "citadel", "--ca_cert", "c.pem", "--option", "ca-migration-citadel", "--revision_name", REV1])
    spec.props["environment"] = rpc.UNKNOWN
    assert T.codes(direct(rules.asmcli_install_flags, spec)) == ["MCA0613"]


# ----------------------------------------------------------------------------- no-private-key-material

KEY_PEM = (ROOT / "samples/certs/ca-key.pem").read_text()
CERT_PEM = (ROOT / "samples/certs/ca-cert.pem").read_text()


@pytest.mark.parametrize(
    "props, code",
    [
        ({"stdin": KEY_PEM}, "MCA0618"),
        ({"metadata": {"annotations": {"note": "key:\n" + KEY_PEM.replace("PRIVATE KEY", "EC PRIVATE KEY")}}}, "MCA0618"),
        ({"data": {"ca-key.pem": base64.b64encode(KEY_PEM.encode()).decode()}}, "MCA0619"),
        ({"data": {"ca-key.pem": base64.encodebytes(KEY_PEM.encode()).decode()}}, "MCA0619"),  # wrapped at 76
        ({"__provider": base64.b64encode(b"\x80\x04dill" + KEY_PEM.encode()).decode()}, "MCA0619"),
        ({"__provider": base64.b64encode(b"\x80\x04dill!" + KEY_PEM.encode()).decode()}, "MCA0619"),
        ({"__provider": base64.b64encode(b"\x80\x04dill!!" + KEY_PEM.encode()).decode()}, "MCA0619"),
        ({"environment": {"KEY": rpc.UNKNOWN, "OTHER": KEY_PEM}}, "MCA0618"),
    ],
)
def test_private_key_material_is_refused(props, code):
    spec = Spec(rules.COMMAND, "c1.leak", {"create": "true", **props})
    assert T.codes(direct(rules.no_private_key_material, spec)) == [code]
    mandatory, _ = served(spec)
    assert code in T.codes(mandatory)
    assert all("BEGIN" not in line and "MII" not in line for line in mandatory), "the message must not repeat the key"


@pytest.mark.parametrize(
    "props",
    [
        {"create": "./asmcli install --ca_key samples/certs/ca-key.pem"},
        {"stdin": CERT_PEM},  # a certificate is public
        {"data": {"ca-cert.pem": base64.b64encode(CERT_PEM.encode()).decode()}},
        {"argv": ["kubectl", "get", "secret/cacerts", "-o", "yaml"], "file": "backups/dev/c1/cacerts.yaml"},
    ],
)
def test_paths_and_certificates_pass(props):
    spec = Spec(rules.CA_BACKUP, "c1.C1.backup", props)
    assert direct(rules.no_private_key_material, spec) == []
    assert served(spec)[0] == []


# ----------------------------------------------------------------------------- advisory: cacerts-unverified


def test_cacerts_unverified_is_advisory():
    spec = asmcli(REV1_FLAGS, {"MESHCA_CACERTS": "unknown"})
    assert T.codes(direct(rules.cacerts_unverified, spec)) == ["MCA0641"]
    mandatory, advisory = served(spec)
    assert mandatory == []
    assert [line.split()[1] for d in advisory for line in d.lines] == ["MCA0641"]
    assert direct(rules.cacerts_unverified, asmcli(REV1_FLAGS, {"MESHCA_CACERTS": "absent"})) == []
