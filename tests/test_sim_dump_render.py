"""The simulated source renders each secret of a dump once and assembles the dump from them
(issue 13): the bytes are exactly ``render_dump``'s, in both spellings, for sidecars, gateways
(their own credential listed first) and proxies without a workload certificate."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from meshca.sim import ca as simca
from meshca.sim.source import _rendered
from meshca.trust.dumps import DEFAULT, ROOTCA, parse_dump, render_dump, render_item, render_items


@pytest.fixture(scope="module")
def material():
    meshca = simca.meshca_signer()
    other = simca.generated_root("render-test", 1)
    return simca.issue(meshca, "spiffe://cluster.local/ns/a/sa/b"), (meshca.root, other.root), (other.root,)


@pytest.mark.parametrize("style", ["camel", "snake"])
@pytest.mark.parametrize("gateway", [False, True])
@pytest.mark.parametrize("with_credential", [True, False])
def test_rendered_is_render_dump(material, style, gateway, with_credential):
    credential, bundle, small = material
    credential = credential if with_credential else None
    for roots in (bundle, small, bundle):  # again: from the memo, still the same bytes
        entries = {}
        if gateway and credential is not None:
            entries["kubernetes://ingress-credential"] = ("cert", credential.chain_pem)
        if credential is not None:
            entries[DEFAULT] = ("cert", credential.chain_pem)
        entries[ROOTCA] = ("ca", b"".join(r.public_bytes(serialization.Encoding.PEM) for r in roots))
        want = render_dump(entries, style)
        assert _rendered(style, gateway, credential, roots) == want
        parsed = parse_dump(want, "ns/pod")
        assert list(parsed.active) == list(entries)


@pytest.mark.parametrize("style", ["camel", "snake"])
def test_render_items_is_render_dump(style):
    pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    entries = {"a": ("cert", pem), "b\n\"x": ("ca", pem * 2)}
    assert render_items([render_item(n, k, p, style) for n, (k, p) in entries.items()], style) == render_dump(entries, style)
    assert render_items([], style) == render_dump({}, style)


def test_digest_memo_is_by_object_and_content():
    """The SHA-256 behind the parse caches is remembered per bytes object: equal bytes in
    another object hash the same; different bytes never share a digest."""
    import hashlib

    from meshca.trust import dumps

    a = b"x" * 1000
    b = bytes(bytearray(a))  # equal content, another object
    c = b"y" * 1000
    for data in (a, b, c, a, c):
        assert dumps._digest(data) == hashlib.sha256(data).digest()
    assert dumps.bundle_hash(c) == hashlib.sha256(c).hexdigest()
    assert dumps._digest(bytearray(c)) == hashlib.sha256(c).digest()
