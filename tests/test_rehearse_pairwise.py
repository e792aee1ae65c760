"""The class-based pair judging (meshca/sim/pairs.py) against a pair-wise oracle.

After every judgement of a rehearsal, the oracle reads the simulated mesh itself: it lists the
caller/callee pairs from the traffic rules (meshca/sim/traffic.py's docstring, written out here
as plain loops over the workloads), and for each pair takes the proxy state of every pod on both
sides: the exact certificate chain (every certificate's fingerprint, the leaf included), the
exact bundle, the trust domain and aliases. Each distinct pair of such states gets its own real
mutual-TLS handshake (``tls.handshake``, fresh OpenSSL contexts per state, no ``Judge``, no
``ProxyState.key``); the trust-domain rule is applied to the client certificate the server saw.
Nothing is cached by class: two proxies share a verdict only when their certificates and bundles
are the same certificates.

It must agree exactly with what the engine recorded for that step: the pairs it judged, the
failed pairs (in order, with a reason the oracle's handshake gave), the per-row snapshot of the
timeline (revision and failing pairs per cluster/namespace), and over the run the pairs judged,
the failed pairs and the first broken step. Every scenario (fault scenarios included) runs on a
mesh of at most 2 clusters x 4 namespaces x 2 workloads.
"""

from __future__ import annotations

import os
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshca.certs import fingerprint
from meshca.sim import scenarios
from meshca.sim.builtin import builtin_config
from meshca.sim.engine import Rehearsal
from meshca.sim.mesh import SYSTEM_NS
from meshca.sim.start import MeshShape
from meshca.sim.tls import handshake, spiffe_trust_domain
from meshca.sim.traffic import load_traffic


class Proxy:
    """One pod's proxy state, identified by its exact certificates (no equivalence classes)."""

    def __init__(self, pod) -> None:
        cred = pod.credential if pod.meshed else None
        self.credential = cred
        self.bundle = tuple(pod.bundle) if pod.meshed else ()
        self.trust_domain = pod.trust_domain if pod.meshed else ""
        self.aliases = tuple(pod.aliases) if pod.meshed else ()
        self.problem = pod.problem if pod.meshed else "no sidecar"
        chain = tuple(fingerprint(c) for c in cred.chain) if cred is not None else ()
        self.id = (chain, tuple(fingerprint(r) for r in self.bundle), self.trust_domain, self.aliases, self.problem if cred is None else "")


class PairwiseOracle:
    def __init__(self, authz: bool) -> None:
        self.authz = authz
        self.handshakes = 0
        self.verdicts: dict[tuple, tuple[bool, str]] = {}  # by the exact states of both sides
        self.contexts: dict[tuple, ssl.SSLContext] = {}

    def _context(self, p: Proxy, server: bool) -> ssl.SSLContext:
        key = (server, p.id)
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            fd = os.memfd_create("oracle-credential", os.MFD_CLOEXEC)
            try:
                os.write(fd, p.credential.chain_pem + p.credential.key_pem())
                ctx.load_cert_chain(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
            if p.bundle:
                ctx.load_verify_locations(cadata="".join(r.public_bytes(serialization.Encoding.PEM).decode() for r in p.bundle))
            self.contexts[key] = ctx
        return ctx

    def call(self, client: Proxy, server: Proxy) -> tuple[bool, str]:
        key = (client.id, server.id)
        hit = self.verdicts.get(key)
        if hit is not None:
            return hit
        if client.credential is None or server.credential is None:
            verdict, peer = handshake(client, server)
        else:
            self.handshakes += 1
            verdict, peer = handshake(client, server, self._context(client, False), self._context(server, True))
        out = (verdict.ok, verdict.reason)
        if verdict.ok and self.authz:
            domain = spiffe_trust_domain(peer) if isinstance(peer, x509.Certificate) else None
            accepted = (server.trust_domain, *server.aliases)
            if domain not in accepted:
                out = (False, f"server denied the client's trust domain {domain} (accepts {', '.join(accepted)})")
        self.verdicts[key] = out
        return out


def pairs_of(mesh, traffic, app_namespaces):
    """Who calls whom, from the traffic rules, in the order the report lists pairs: the
    callers sorted, each calling the entry (first-created workload) of every other namespace in
    creation order ('full': every workload there, sorted); then the gateways, sorted."""
    import fnmatch

    apps, gateways = [], []
    for c in mesh.clusters.values():
        for (ns, name), w in c.workloads.items():
            if w.gateway:
                gateways.append((c.name, ns, name))
            elif ns in app_namespaces:
                apps.append((c.name, ns, name))
    entry = {}
    for ref in apps:
        entry.setdefault(ref[:2], ref)
    out = []
    if traffic.mode in ("default", "full", "local"):
        for a in sorted(apps):
            for k, e in entry.items():
                if k == a[:2] or (traffic.mode == "local" and k[0] != a[0]):
                    continue
                out += [(a, b) for b in sorted(apps) if b[:2] == k] if traffic.mode == "full" else [(a, e)]
    else:
        for rule in traffic.rules:
            for a in sorted(apps):
                if all(fnmatch.fnmatchcase(x, p) for x, p in zip(a, rule.source)):
                    out += [
                        (a, b) for b in sorted(apps)
                        if a != b and not (rule.same_cluster and a[0] != b[0]) and all(fnmatch.fnmatchcase(x, p) for x, p in zip(b, rule.target))
                    ]
    if traffic.gateways:
        out += [(g, e) for g in sorted(gateways) for e in entry.values()]
    return list(dict.fromkeys(out))


class Checked(Rehearsal):
    """The rehearsal, with the oracle re-deriving every judgement from the mesh itself."""

    def run(self):
        self.oracle = PairwiseOracle(self.switches["authz-names-principals"])
        self.oracle_pairs = 0
        self.judgements = 0
        return super().run()

    def _judge_into(self, rec):
        super()._judge_into(rec)
        self.judgements += 1
        mesh = self.mesh
        apps = tuple(n.name for n in self.base_config.namespaces)
        workloads = {(c.name, ns, name): w for c in mesh.clusters.values() for (ns, name), w in c.workloads.items()}
        pairs = pairs_of(mesh, self.traffic, apps)
        self.oracle_pairs += len(pairs)
        proxies = {ref: [Proxy(p) for p in w.pods] for ref, w in workloads.items()}
        failed = []
        for a, b in pairs:
            reasons = []
            for cp in proxies[a]:
                for sp in proxies[b]:
                    ok, reason = self.oracle.call(cp, sp)
                    if not ok:
                        reasons.append(reason)
            if reasons:
                failed.append(("/".join(a), "/".join(b), reasons))
        where = f"record {rec.index} {rec.cluster}:{rec.step}"
        got = [(p["client"], p["server"]) for p in rec.failed_pairs]
        assert got == [(c, s) for c, s, _ in failed], f"{where}: failed pairs differ"
        for p, (_, _, reasons) in zip(rec.failed_pairs, failed):
            assert p["reason"] in reasons, f"{where}: {p['reason']!r} is not what the handshake said ({reasons})"
        assert rec.ok == len(pairs) - len(failed), where
        # the timeline's row: the revision its pods run, and its failing pairs (both ends count)
        revs: dict[str, set] = {}
        for (cl, ns, _), w in workloads.items():
            if ns in apps or ns == SYSTEM_NS:
                pod_revs = {p.revision or "no sidecar" for p in w.pods}
                revs.setdefault(f"{cl}/{ns}", set()).add(next(iter(pod_revs)) if len(pod_revs) == 1 else ("mixed" if pod_revs else "no pods"))
        bad: dict[str, int] = {}
        for c, s, _ in failed:
            for side in (c, s):
                bad[side.rsplit("/", 1)[0]] = bad.get(side.rsplit("/", 1)[0], 0) + 1
        want = {row: (next(iter(r)) if len(r) == 1 else "mixed", bad.get(row, 0)) for row, r in revs.items()}
        assert dict(rec.snapshot) == want, f"{where}: snapshot differs"


CASES = [(name, 2, 2, 2, "default") for name in scenarios.SCENARIOS]
CASES += [("canary", 2, 4, 2, "default"), ("early-secret-delete", 2, 4, 2, "full"), ("big-bang", 2, 4, 1, "local"), ("rollback-mid-batch", 2, 4, 2, "default")]


@pytest.mark.parametrize("name,clusters,namespaces,workloads,traffic", CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}x{c[3]}-{c[4]}" for c in CASES])
def test_class_judging_matches_a_handshake_per_distinct_pair_of_states(name, clusters, namespaces, workloads, traffic):
    config = builtin_config(clusters=clusters, namespaces=namespaces, batch_size=max(1, namespaces // 2))
    r = Checked(config, scenarios.get(name), shape=MeshShape(workloads=workloads), traffic=load_traffic(traffic))
    doc = r.run()
    assert r.judgements == len(doc["steps"])
    assert doc["stats"]["pairsJudged"] == r.oracle_pairs
    assert doc["summary"]["handshakes"] == r.oracle_pairs
    failed = [s for s in doc["steps"] if s["failedPairs"]]
    assert doc["summary"]["handshakesFailed"] == sum(len(s["failedPairs"]) for s in failed)
    assert r.oracle.handshakes >= doc["stats"]["realHandshakes"]  # classes never need more


def test_a_traffic_file_matches_the_oracle(tmp_path):
    edges = tmp_path / "edges.yaml"
    edges.write_text("edges:\n  - {from: 'frontend/*', to: '*/api', clusters: any}\n  - {from: 'cart/store', to: 'cluster-1/*/*', clusters: same}\ngateways: true\n")
    for name in ("big-bang", "early-secret-delete"):
        r = Checked(builtin_config(clusters=2, namespaces=3, batch_size=2), scenarios.get(name), shape=MeshShape(workloads=2), traffic=load_traffic(str(edges)))
        doc = r.run()
        assert doc["summary"]["handshakesFailed"] > 0 and doc["stats"]["pairsJudged"] == r.oracle_pairs


def test_the_oracle_can_fail():
    """A wrong engine count is caught: the oracle is not the engine's own bookkeeping."""

    class Broken(Checked):
        def _judge_pairs(self, rec):
            super()._judge_pairs(rec)
            if rec.failed_pairs:
                rec.failed_pairs = rec.failed_pairs[1:]

    r = Broken(builtin_config(clusters=1, namespaces=2, batch_size=1), scenarios.get("big-bang"), shape=MeshShape(workloads=1))
    with pytest.raises(AssertionError, match="failed pairs differ"):
        r.run()
