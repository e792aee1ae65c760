"""Real mutual TLS between simulated proxies, and when a verdict may be reused."""

from __future__ import annotations

import pytest

from meshca import pki
from meshca.sim import ca as simca
from meshca.sim.tls import Judge, ProxyState, handshake

FLEET = "fleet.svc.id.goog"


@pytest.fixture(scope="module")
def pkis():
    root, inter = pki.citadel_ca("tls-test")
    citadel = simca.Signer("citadel", root.cert, inter, (inter.cert,))
    other_root, other_inter = pki.citadel_ca("tls-test-other")
    other = simca.Signer("other", other_root.cert, other_inter, (other_inter.cert,))
    return citadel, other, simca.meshca_signer()


def proxy(signer, ns, bundle, td="cluster.local", aliases=(), expired=False, domain=None):
    cred = simca.issue(signer, f"spiffe://{domain or td}/ns/{ns}/sa/{ns}", expired=expired)
    return ProxyState(cred, tuple(s.root for s in bundle), td, tuple(aliases))


def test_shared_root_handshake_succeeds_and_returns_the_client_certificate(pkis):
    citadel, _, _ = pkis
    a, b = proxy(citadel, "a", [citadel]), proxy(citadel, "b", [citadel])
    verdict, peer = handshake(a, b)
    assert verdict.ok
    assert peer.fingerprint(peer.signature_hash_algorithm) == a.credential.leaf.fingerprint(peer.signature_hash_algorithm)


def test_each_side_verifies_the_other(pkis):
    citadel, other, _ = pkis
    # The client lacks the server's root: the client refuses.
    v, _ = handshake(proxy(citadel, "a", [citadel]), proxy(other, "b", [citadel, other]))
    assert not v.ok and v.reason.startswith("client rejected the server certificate")
    # The server lacks the client's root: the server refuses (after the client thinks it is done, in TLS 1.3).
    v, _ = handshake(proxy(other, "a", [citadel, other]), proxy(citadel, "b", [citadel]))
    assert not v.ok and v.reason.startswith("server rejected the client certificate")


def test_expired_certificate_fails_the_real_handshake(pkis):
    citadel, _, _ = pkis
    v, _ = handshake(proxy(citadel, "a", [citadel]), proxy(citadel, "b", [citadel], expired=True))
    assert not v.ok and "expired" in v.reason


def test_trust_domain_check_uses_the_servers_aliases(pkis):
    citadel, _, meshca = pkis
    client = proxy(meshca, "a", [meshca, citadel], td=FLEET)
    strict = proxy(citadel, "b", [meshca, citadel], td="cluster.local", aliases=())
    aliased = proxy(citadel, "b", [meshca, citadel], td="cluster.local", aliases=(FLEET,))
    judge = Judge(authz_names_principals=True)
    denied = judge.judge(client, strict)
    assert not denied.ok and f"trust domain {FLEET}" in denied.reason
    assert judge.judge(client, aliased).ok
    # Without authorization policies naming principals only the chains decide.
    assert Judge(authz_names_principals=False).judge(client, strict).ok


def test_two_pods_on_one_revision_with_different_bundles_get_separate_handshakes(pkis):
    citadel, _, meshca = pkis
    judge = Judge(True)
    server = proxy(citadel, "srv", [citadel, meshca])
    # Same revision, same signer; one pod already got the pushed two-root bundle, one not.
    pushed = proxy(citadel, "a", [citadel, meshca])
    stale = proxy(citadel, "a", [citadel])
    assert pushed.credential is stale.credential
    assert judge.judge(pushed, server).ok and judge.judge(stale, server).ok
    assert judge.handshakes == 2
    # The same states again: reused, no new handshake.
    judge.judge(pushed, server)
    judge.judge(stale, server)
    assert judge.handshakes == 2 and judge.lookups == 4
    # Another workload with an equal state (same signer chain, bundle, trust domain) shares the class.
    twin = proxy(citadel, "other-namespace", [citadel, meshca])
    assert twin.key == pushed.key and twin.credential is not pushed.credential
    judge.judge(twin, server)
    assert judge.handshakes == 2


def test_class_key_separates_what_can_change_a_verdict(pkis):
    citadel, other, meshca = pkis
    base = proxy(citadel, "a", [citadel, meshca])
    variants = [
        proxy(other, "a", [citadel, meshca]),  # another signer chain
        proxy(citadel, "a", [citadel]),  # another bundle
        proxy(citadel, "a", [citadel, meshca], expired=True),  # another validity
        proxy(citadel, "a", [citadel, meshca], aliases=(FLEET,)),  # other aliases enforced
        proxy(citadel, "a", [citadel, meshca], domain=FLEET),  # another SPIFFE trust domain
    ]
    assert len({base.key, *(v.key for v in variants)}) == 1 + len(variants)
