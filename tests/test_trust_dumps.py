"""Proxy secret dumps: both spellings, selection by name, every malformed dump its own code."""

from __future__ import annotations

import base64
import json
import warnings

import pytest

from fakes.trust_cluster import MESHCA_CN, make_pki, sidecar_dump
from meshca.certs import MESHCA_ROOT_SHA256, fingerprint, subject_text
from meshca.trust.dumps import (
    DEFAULT,
    ROOTCA,
    DumpError,
    dump_document,
    load_bundle,
    parse_dump,
    render_dump,
    sidecar_entries,
)
from meshca.trust.verdict import CITADEL, MESHCA, References, classify_bundle, judge_workload

SUBJECT = "shop/web-0"


# Any warning (e.g. cryptography on the 87-character Mesh CA CN) leaking out of meshca fails the test.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def p():
    return make_pki()


def _roots(p, data: bytes) -> list[str]:
    secrets = parse_dump(data, SUBJECT)
    return list(load_bundle(secrets.rootca_pem(SUBJECT), ROOTCA, SUBJECT).fingerprints)


@pytest.mark.parametrize("style", ["camel", "snake"])
def test_both_spellings_give_the_same_secrets(p, style):
    chain = p.citadel_chain("shop", "web")
    roots = p.pem(p.citadel_root, p.meshca_root)
    data = sidecar_dump(chain, roots, style=style)
    doc = json.loads(data)
    if style == "snake":
        assert doc["configs"][0]["@type"] == "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
        assert "inline_bytes" in json.dumps(doc) and "inlineBytes" not in json.dumps(doc)
    else:
        assert "dynamicActiveSecrets" in doc and "inline_bytes" not in json.dumps(doc)
    secrets = parse_dump(data, SUBJECT)
    assert secrets.style == style
    assert secrets.rootca_pem(SUBJECT) == roots
    assert secrets.default_pem(SUBJECT) == chain
    assert _roots(p, data) == [fingerprint(p.citadel_root.cert), fingerprint(p.meshca_root.cert)]


def test_private_key_is_redacted_like_istioctl(p):
    doc = dump_document(sidecar_entries(p.citadel_chain("shop", "web"), p.citadel_root.cert_pem))
    default = next(s for s in doc["dynamicActiveSecrets"] if s["name"] == DEFAULT)
    assert default["secret"]["tlsCertificate"]["privateKey"]["inlineBytes"] == "W3JlZGFjdGVkXQ=="


@pytest.mark.parametrize("style", ["camel", "snake"])
def test_gateway_with_credential_first_is_selected_by_name(p, style):
    """A gateway's first entry is its TLS credential (kubernetes://...): never take entry 0."""
    cred_root = p.other_root.cert_pem
    entries = {
        "kubernetes://shop-tls": ("cert", p.pem(p.other_root)),
        "kubernetes://shop-tls-cacert": ("ca", cred_root),
        "file-cert:/etc/certs/cert-chain.pem~/etc/certs/key.pem": ("cert", p.pem(p.other_root)),
        DEFAULT: ("cert", p.citadel_chain("istio-system", "istio-ingressgateway")),
        ROOTCA: ("ca", p.pem(p.citadel_root, p.meshca_root)),
    }
    data = render_dump(entries, style=style)
    first = (json.loads(data)["dynamicActiveSecrets"] if style == "camel" else json.loads(data)["configs"][0]["dynamic_active_secrets"])[0]
    assert first["name"] == "kubernetes://shop-tls"
    assert _roots(p, data) == [fingerprint(p.citadel_root.cert), fingerprint(p.meshca_root.cert)]


def test_warming_rootca_is_not_the_active_one(p):
    data = render_dump({DEFAULT: ("cert", p.citadel_chain("a", "b"))}, warming={ROOTCA: ("ca", p.citadel_root.cert_pem)})
    with pytest.raises(DumpError) as err:
        parse_dump(data, SUBJECT).rootca_pem(SUBJECT)
    assert err.value.code == "MCA0403"
    assert "warming: ROOTCA" in err.value.line()


def test_full_config_dump_with_other_configs_first(p):
    secrets_dump = json.loads(sidecar_dump(p.citadel_chain("a", "b"), p.citadel_root.cert_pem, style="snake"))["configs"][0]
    data = json.dumps({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"}, secrets_dump]})
    assert _roots(p, data.encode()) == [fingerprint(p.citadel_root.cert)]


# ----------------------------------------------------------------------------- malformed dumps


def _tamper(p, fn) -> bytes:
    doc = dump_document(sidecar_entries(p.citadel_chain("a", "b"), p.pem(p.citadel_root, p.meshca_root)))
    fn(doc)
    return json.dumps(doc).encode()


def _rootca(doc):
    return next(s for s in doc["dynamicActiveSecrets"] if s["name"] == ROOTCA)["secret"]["validationContext"]["trustedCa"]


def _code(data: bytes, entry: str = ROOTCA) -> str:
    with pytest.raises(DumpError) as err:
        secrets = parse_dump(data, SUBJECT)
        pem = secrets.rootca_pem(SUBJECT) if entry == ROOTCA else secrets.default_pem(SUBJECT)
        load_bundle(pem, entry, SUBJECT)
    line = err.value.line()
    assert line.startswith(err.value.level + " " + err.value.code + " " + SUBJECT + ": ") and "; fix: " in line and "\n" not in line
    return err.value.code


def test_each_malformed_dump_has_its_own_code(p):
    good = sidecar_dump(p.citadel_chain("a", "b"), p.citadel_root.cert_pem)
    garbage_pem = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    cases = {
        "truncated": (good[: len(good) // 2], "MCA0401"),
        "empty output": (b"", "MCA0401"),
        "not utf-8": (b"\xff\xfe{}", "MCA0401"),
        "a JSON list": (b"[]", "MCA0402"),
        "another admin endpoint": (b'{"certificates": []}', "MCA0402"),
        "no ROOTCA": (render_dump({DEFAULT: ("cert", p.citadel_chain("a", "b"))}), "MCA0403"),
        "proxy without secrets": (b"{}", "MCA0403"),
        "empty bundle": (_tamper(p, lambda d: _rootca(d).pop("inlineBytes")), "MCA0404"),
        "file-based bundle": (_tamper(p, lambda d: _rootca(d).update({"inlineBytes": "", "filename": "/etc/certs/root-cert.pem"})), "MCA0404"),
        "garbage base64": (_tamper(p, lambda d: _rootca(d).update(inlineBytes="!!!not base64***")), "MCA0405"),
        "base64 of no PEM": (_tamper(p, lambda d: _rootca(d).update(inlineBytes=base64.b64encode(b"hello").decode())), "MCA0406"),
        "damaged PEM": (_tamper(p, lambda d: _rootca(d).update(inlineBytes=base64.b64encode(garbage_pem).decode())), "MCA0407"),
    }
    got = {name: _code(data) for name, (data, _) in cases.items()}
    assert got == {name: code for name, (_, code) in cases.items()}


def test_missing_default_is_its_own_code(p):
    data = render_dump({ROOTCA: ("ca", p.citadel_root.cert_pem)})
    assert _code(data, DEFAULT) == "MCA0408"


def test_inline_string_is_accepted(p):
    doc = dump_document(sidecar_entries(p.citadel_chain("a", "b"), p.citadel_root.cert_pem))
    ca = _rootca(doc)
    ca.pop("inlineBytes")
    ca["inlineString"] = p.citadel_root.cert_pem.decode()
    assert _roots(p, json.dumps(doc).encode()) == [fingerprint(p.citadel_root.cert)]


# ----------------------------------------------------------------------------- the real Mesh CA subject


def test_mesh_ca_subject_is_read_without_warnings_and_judged_by_fingerprint(p):
    """The stand-in has the real root's 87-character CN; the impostor has the same subject and
    another key. Only fingerprints decide, and reading them never warns."""
    assert len(MESHCA_CN) == 87
    roots = p.pem(p.citadel_root, p.meshca_root, p.impostor_root)
    data = sidecar_dump(p.meshca_chain("shop", "web"), roots, style="snake")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning leaking out of meshca fails the test
        secrets = parse_dump(data, SUBJECT)
        bundle = load_bundle(secrets.rootca_pem(SUBJECT), ROOTCA, SUBJECT)
        chain = load_bundle(secrets.default_pem(SUBJECT), DEFAULT, SUBJECT)
        refs = References(citadel=(p.citadel_root.cert,), meshca=(p.meshca_root.cert,), citadel_source="given", meshca_source="given")
        verdict = classify_bundle(bundle, refs)
        workload = judge_workload(chain, bundle, refs)
        text = subject_text(bundle.certs[1])
    assert "CN=istio_v1_cloud_workload_root-signer-0-2018-04-25T14:11:33-07:00 K:1\\, 1:H52vgwEm3tc:0:18" in text
    assert "O=Google LLC" in text and "L=Mountain View" in text
    assert verdict.labels == (CITADEL, MESHCA)
    assert verdict.unknown == (fingerprint(p.impostor_root.cert),)
    assert workload.issuer == MESHCA
    assert workload.spiffe_id == "spiffe://fleet-proj.svc.id.goog/ns/shop/sa/web"


def test_pinned_fingerprint_is_the_default_and_a_lookalike_is_not_mesh_ca(p):
    refs = References(citadel=(p.citadel_root.cert,), citadel_source="given")
    assert refs.meshca_fps == frozenset({MESHCA_ROOT_SHA256})
    bundle = load_bundle(p.pem(p.citadel_root, p.meshca_root), ROOTCA, SUBJECT)
    verdict = classify_bundle(bundle, refs)
    # the stand-in carries the real subject but not the real key: legacy CN matching would say MESHCA
    assert verdict.labels == (CITADEL,)
    assert verdict.unknown == (fingerprint(p.meshca_root.cert),)
