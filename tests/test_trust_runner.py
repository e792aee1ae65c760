"""The runner's verdicts, coverage and cache, against a described cluster (in-process source).

The real sources (fake kubectl/istioctl subprocesses, the loopback API server) are tested in
test_trust_istioctl.py and test_trust_kube.py; here the verdict logic is pinned down.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from fakes.trust_cluster import FLEET, Cluster, DirSource, make_pki, sidecar_dump, standard_cluster
from meshca.certs import fingerprint
from meshca.errors import MeshcaError
from meshca.trust.dumps import DEFAULT, ROOTCA, render_dump
from meshca.trust.runner import CheckRequest, check_root_of_trust, deployment_of, run_check


# Any warning (e.g. cryptography on the 87-character Mesh CA CN) leaking out of meshca fails the test.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def p():
    return make_pki()


def run(tmp_path, cluster: Cluster, p, **kw) -> dict:
    root = cluster.write(tmp_path / "cluster")
    kw.setdefault("meshca_roots", (p.meshca_root.cert,))
    kw.setdefault("check", "root-cert")
    doc = run_check(DirSource(root), CheckRequest(**kw))
    json.dumps(doc)  # the document is plain JSON
    return doc


def pods(doc) -> dict[str, dict]:
    return {f"{e['namespace']}/{e['pod']}": e for e in doc["pods"]}


def test_first_serial_cache_trap(tmp_path, p):
    """Two bundles share their FIRST root and differ after it. migrate_ca caches by the first
    root's serial and would call both [CITADEL MESHCA]; the bundle hash keeps them apart."""
    c = standard_cluster(p)
    c.add_pod("shop", "z-citadel-only", dump=sidecar_dump(p.citadel_chain("shop", "z"), p.pem(p.citadel_root, p.other_root)))
    doc = run(tmp_path, c, p)
    got = pods(doc)
    assert got["shop/web-0"]["status"] == "ok" and got["shop/web-0"]["roots"] == ["CITADEL", "MESHCA"]
    trap = got["shop/z-citadel-only"]
    assert trap["status"] == "fail"
    assert trap["roots"] == ["CITADEL"]
    assert trap["unknownRoots"] == [fingerprint(p.other_root.cert)]
    assert trap["reason"].startswith("Error MCA0444 shop/z-citadel-only: trusts [CITADEL], missing MESHCA; fix: ")
    assert doc["summary"] == {"meshed": 3, "ok": 2, "failed": 1, "errors": 0, "skipped": 0, "retiring": 0}
    assert doc["ok"] is False and doc["reason"].startswith("Error MCA0440 root-cert: 1 of 3 counted pods fail")
    assert "shop/z-citadel-only" in doc["reason"]
    # two distinct bundles parsed, the identical one of web-0/web-1 served from the cache
    assert doc["stats"] == {"dumpFetches": 3, "bundlesParsed": 2, "bundleCacheHits": 1}


def test_unknown_extra_root_is_reported_but_does_not_fail(tmp_path, p):
    c = standard_cluster(p)
    c.add_pod("shop", "extra", dump=sidecar_dump(p.citadel_chain("shop", "x"), p.pem(p.other_root, p.citadel_root, p.meshca_root)))
    doc = run(tmp_path, c, p)
    e = pods(doc)["shop/extra"]
    assert e["status"] == "ok" and e["roots"] == ["CITADEL", "MESHCA"] and e["reason"] is None
    assert e["unknownRoots"] == [fingerprint(p.other_root.cert)]
    assert doc["ok"] is True
    assert doc["warnings"] and doc["warnings"][0].startswith("Warning MCA0454 root-cert: 1 pod(s) trust roots")


def test_coverage_native_sidecar_gateway_pending_completed_and_no_proxy(tmp_path, p):
    c = standard_cluster(p)
    both = p.pem(p.citadel_root, p.meshca_root)
    c.add_pod("shop", "native", native=True, dump=sidecar_dump(p.citadel_chain("shop", "n"), both, style="snake"))
    gw = render_dump(
        {
            "kubernetes://ingress-cert": ("cert", p.pem(p.other_root)),
            DEFAULT: ("cert", p.citadel_chain("istio-system", "istio-ingressgateway")),
            ROOTCA: ("ca", both),
        }
    )
    c.add_pod("istio-system", "istio-ingressgateway-5d8c-abcde", gateway=True, revision=None, dump=gw)
    c.add_pod("shop", "pending", phase="Pending", waiting_reason="ContainerCreating")
    c.add_pod("shop", "unknown-phase", phase="Unknown")
    c.add_pod("batch", "migrate-job-x7", phase="Succeeded", owner_kind="Job", replicaset="migrate-job")
    c.add_pod("batch", "failed-job", phase="Failed")
    c.add_pod("shop", "no-proxy", proxy=False, dump=b"never read")
    c.add_pod("kube-system", "kube-dns-1", dump=b"never read")  # excluded namespace
    src_root = c.write(tmp_path / "cluster")
    source = DirSource(src_root)
    doc = run_check(source, CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,)))
    got = pods(doc)
    assert "shop/no-proxy" not in got and "kube-system/kube-dns-1" not in got
    assert got["shop/native"]["status"] == "ok" and got["shop/native"]["proxy"] == "native-sidecar"
    gwe = got["istio-system/istio-ingressgateway-5d8c-abcde"]
    assert gwe["status"] == "ok" and gwe["proxy"] == "gateway" and gwe["roots"] == ["CITADEL", "MESHCA"]
    assert got["shop/pending"]["status"] == "error"
    assert got["shop/pending"]["reason"].startswith("Error MCA0430 shop/pending: pod is Pending (ContainerCreating); its proxy cannot be read")
    assert got["shop/unknown-phase"]["status"] == "error"
    assert got["batch/migrate-job-x7"]["status"] == "skipped" and got["batch/failed-job"]["status"] == "skipped"
    assert doc["summary"] == {"meshed": 8, "ok": 4, "failed": 0, "errors": 2, "skipped": 2, "retiring": 0}
    assert doc["ok"] is False  # pending pods are not verified
    # only running proxies were read, each exactly once
    assert sorted(source.fetched) == sorted([("shop", "web-0"), ("shop", "web-1"), ("shop", "native"), ("istio-system", "istio-ingressgateway-5d8c-abcde")])


def test_retiring_deployment_and_selector_do_not_block(tmp_path, p):
    c = standard_cluster(p)
    citadel_only = p.citadel_root.cert_pem
    old = c.add_pod(
        "istio-system", "istio-ingressgateway-7b9c6d5f4-x2x9z", gateway=True, revision=None,
        replicaset="istio-ingressgateway-7b9c6d5f4", template_hash="7b9c6d5f4", labels={"app": "istio-ingressgateway"},
        dump=sidecar_dump(p.citadel_chain("istio-system", "gw"), citadel_only),
    )
    assert deployment_of(old) == "istio-ingressgateway"
    # a Deployment whose name itself has dashes and a hash-like suffix: only the hash is removed
    c.add_pod("istio-system", "istio-ingressgateway-canary-59f7-abcde", gateway=True, revision="asm-1",
              replicaset="istio-ingressgateway-canary-59f7", template_hash="59f7", labels={"app": "istio-ingressgateway"},
              dump=sidecar_dump(p.citadel_chain("istio-system", "gw"), p.pem(p.citadel_root, p.meshca_root)))
    c.add_pod("istio-system", "gw-old-rev-1", gateway=True, revision="asm-old", labels={"app": "istio-ingressgateway"},
              dump=sidecar_dump(p.citadel_chain("istio-system", "gw"), citadel_only))
    doc = run(
        tmp_path, c, p,
        retiring_deployments=(("istio-system", "istio-ingressgateway"),),
        retiring_selectors=(("istio-system", "app=istio-ingressgateway,istio.io/rev=asm-old"),),
    )
    got = pods(doc)
    assert got["istio-system/istio-ingressgateway-7b9c6d5f4-x2x9z"]["status"] == "retiring"
    assert "Deployment istio-system/istio-ingressgateway" in got["istio-system/istio-ingressgateway-7b9c6d5f4-x2x9z"]["reason"]
    assert got["istio-system/gw-old-rev-1"]["status"] == "retiring"
    assert got["istio-system/istio-ingressgateway-canary-59f7-abcde"]["status"] == "ok"
    assert doc["summary"]["retiring"] == 2 and doc["ok"] is True
    # without the flags the same old gateway blocks
    plain = run(tmp_path, c, p)
    assert pods(plain)["istio-system/istio-ingressgateway-7b9c6d5f4-x2x9z"]["status"] == "fail" and plain["ok"] is False


def test_only_retiring_pods_is_not_a_pass(tmp_path, p):
    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem})
    c.add_pod("istio-system", "gw-1", gateway=True, replicaset="gw-abc", template_hash="abc", dump=b"{}")
    doc = run(tmp_path, c, p, retiring_deployments=(("istio-system", "gw"),))
    assert doc["ok"] is False and doc["reason"].startswith("Error MCA0443 root-cert: no running pod with an istio-proxy container was checked")


def test_forbid_citadel_after_phase_c(tmp_path, p):
    c = Cluster()
    new_root = p.other_root  # istiod's NEW self-signed root after the CA secrets are deleted
    c.add_pod("shop", "gone", dump=sidecar_dump(p.meshca_chain("shop", "a"), p.pem(p.meshca_root, new_root)))
    c.add_pod("shop", "stale", dump=sidecar_dump(p.meshca_chain("shop", "b"), p.pem(p.meshca_root, p.citadel_root)))
    doc = run(tmp_path, c, p, require=("MESHCA",), forbid=("CITADEL",), citadel_roots=(p.citadel_root.cert,))
    got = pods(doc)
    assert got["shop/gone"]["status"] == "ok" and got["shop/gone"]["unknownRoots"] == [fingerprint(new_root.cert)]
    assert got["shop/stale"]["status"] == "fail"
    assert got["shop/stale"]["reason"].startswith("Error MCA0445 shop/stale: trusts [CITADEL MESHCA], including forbidden CITADEL")


def test_workload_issuer_by_chain_verification(tmp_path, p):
    c = Cluster()
    c.set_secret("istio-ca-secret", {"ca-cert.pem": p.citadel_root.cert_pem})  # Istio on GKE: no cacerts
    both = p.pem(p.citadel_root, p.meshca_root)
    c.add_pod("shop", "on-meshca", dump=sidecar_dump(p.meshca_chain("shop", "a"), both))
    c.add_pod("shop", "on-citadel", dump=sidecar_dump(p.citadel_chain("shop", "b"), both))
    # a chain whose leaf was signed by a key that is in no reference: issuer unknown
    from meshca import pki

    stray = pki.make_intermediate("stray", p.other_root, key=pki.ec_key())
    leaf = pki.make_workload("spiffe://cluster.local/ns/shop/sa/c", stray, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    c.add_pod("shop", "on-stray", dump=sidecar_dump(p.pem(leaf, stray), both))
    c.add_pod("shop", "expired", dump=sidecar_dump(p.meshca_chain("shop", "d", hours=1, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)), both))
    c.add_pod("shop", "no-default", dump=render_dump({ROOTCA: ("ca", both)}))
    doc = run(tmp_path, c, p, check="workload-cert", require=("MESHCA",))
    got = pods(doc)
    assert doc["references"]["citadelSource"] == "istio-ca-secret"
    assert (got["shop/on-meshca"]["status"], got["shop/on-meshca"]["issuer"]) == ("ok", "MESHCA")
    assert got["shop/on-meshca"]["spiffeId"] == f"spiffe://{FLEET}.svc.id.goog/ns/shop/sa/a"
    assert got["shop/on-meshca"]["expires"].endswith("Z")
    assert (got["shop/on-citadel"]["status"], got["shop/on-citadel"]["issuer"]) == ("fail", "CITADEL")
    assert got["shop/on-citadel"]["reason"].startswith("Error MCA0446 shop/on-citadel: certificate issued by CITADEL, required MESHCA")
    assert (got["shop/on-stray"]["status"], got["shop/on-stray"]["issuer"]) == ("fail", None)
    assert (got["shop/expired"]["status"], got["shop/expired"]["issuer"]) == ("fail", "MESHCA")
    assert got["shop/expired"]["reason"].startswith("Error MCA0447 ")
    assert got["shop/no-default"]["status"] == "error" and got["shop/no-default"]["reason"].startswith("Error MCA0408 ")
    assert doc["reason"].startswith("Error MCA0441 workload-cert: 4 of 5 counted pods fail (issuer MESHCA)")
    # the same pods pass a check that allows either CA (but not the stray or expired ones)
    either = run(tmp_path, c, p, check="workload-cert")
    assert pods(either)["shop/on-citadel"]["status"] == "ok"


def test_root_check_does_not_need_the_workload_chain(tmp_path, p):
    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem})
    c.add_pod("shop", "roots-only", dump=render_dump({ROOTCA: ("ca", p.pem(p.citadel_root, p.meshca_root))}))
    doc = run(tmp_path, c, p)
    e = pods(doc)["shop/roots-only"]
    assert e["status"] == "ok" and e["issuer"] is None and e["spiffeId"] is None


def test_per_pod_dump_problems_are_coded_errors(tmp_path, p):
    c = standard_cluster(p)
    good = sidecar_dump(p.citadel_chain("shop", "x"), p.pem(p.citadel_root, p.meshca_root))
    c.add_pod("shop", "truncated", dump=good[:200])
    c.add_pod("shop", "no-rootca", dump=render_dump({DEFAULT: ("cert", p.citadel_chain("shop", "y"))}))
    c.add_pod("shop", "exec-fails")
    c.dump_errors[("shop", "exec-fails")] = "error: unable to upgrade connection: container not found"
    doc = run(tmp_path, c, p, retries=1)
    got = pods(doc)
    assert got["shop/truncated"]["status"] == "error" and got["shop/truncated"]["reason"].startswith("Error MCA0401 shop/truncated: ")
    assert got["shop/no-rootca"]["reason"].startswith("Error MCA0403 shop/no-rootca: no active secret named ROOTCA (active: default)")
    assert got["shop/exec-fails"]["reason"].startswith("Error MCA0431 shop/exec-fails: reading the proxy's secret dump failed (2 attempt(s)): error: unable to upgrade")
    assert got["shop/web-0"]["status"] == "ok"
    assert doc["summary"]["errors"] == 3
    # a truncated dump and a failed read are retried (once here); a well-formed bad dump is not
    assert doc["stats"]["dumpFetches"] == 2 + 2 + 1 + 2


def test_trust_domains_of_revisions_and_pods(tmp_path, p):
    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem})
    both = p.pem(p.citadel_root, p.meshca_root)
    c.set_revision("asm-1", "cluster.local", [f"{FLEET}.svc.id.goog", f"{FLEET}.hub.id.goog"])
    c.set_revision("asm-2", f"{FLEET}.svc.id.goog", ["cluster.local"])  # replaced, but still accepts both
    c.add_pod("shop", "a", revision="asm-1", dump=sidecar_dump(p.citadel_chain("shop", "a"), both))
    c.add_pod("shop", "b", revision="asm-2", dump=sidecar_dump(p.meshca_chain("shop", "b"), both))
    doc = run(tmp_path, c, p, check="trust-domain", require=(), fleet_project=FLEET, revisions=("asm-1", "asm-2"))
    assert doc["ok"] is True, doc["reason"]
    assert [r["ok"] for r in doc["revisions"]] == [True, True]
    assert doc["revisions"][1]["accepts"] == [f"{FLEET}.svc.id.goog", "cluster.local"]
    assert pods(doc)["shop/b"]["trustDomain"] == f"{FLEET}.svc.id.goog"

    # the overlay replaced REV1's aliases with [cluster.local]: REV1 no longer accepts the fleet domain
    c.set_revision("asm-1", "cluster.local", ["cluster.local"])
    bad = run(tmp_path, c, p, check="trust-domain", require=(), fleet_project=FLEET, revisions=("asm-1", "asm-2"))
    rev1 = bad["revisions"][0]
    assert rev1["ok"] is False
    assert rev1["reason"].startswith(f"Error MCA0452 ConfigMap istio-system/istio-asm-1: trustDomain cluster.local with aliases [cluster.local] does not accept {FLEET}.svc.id.goog")
    assert "REPLACED the base aliases" in rev1["reason"]
    assert bad["ok"] is False and bad["reason"].startswith("Error MCA0442 trust-domain: revision asm-1: MCA0452")

    # a Mesh CA workload on a revision that only knows cluster.local is rejected by its own revision
    c.set_revision("asm-1", "cluster.local", None)
    c.add_pod("shop", "c", revision="asm-1", dump=sidecar_dump(p.meshca_chain("shop", "c"), both))
    worse = run(tmp_path, c, p, check="trust-domain", require=(), fleet_project=FLEET, revisions=("asm-1", "asm-2"))
    e = pods(worse)["shop/c"]
    assert e["status"] == "fail"
    assert e["reason"].startswith(f"Error MCA0453 shop/c: trust domain {FLEET}.svc.id.goog is not accepted by revision asm-1 (accepts [cluster.local])")
    assert "an istioctl -f overlay that lists trustDomainAliases replaces the whole list" in worse["revisions"][0]["reason"]


def test_trust_domain_faults_of_certificates_and_configmaps(tmp_path, p):
    from meshca import pki

    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem})
    both = p.pem(p.citadel_root, p.meshca_root)
    leaf = pki.make_workload("https://example.com/not-spiffe", p.citadel_ca, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    c.add_pod("shop", "no-spiffe", revision="asm-1", dump=sidecar_dump(p.pem(leaf, p.citadel_ca), both))
    c.add_pod("shop", "on-broken", revision="asm-3", dump=sidecar_dump(p.citadel_chain("shop", "b"), both))
    c.set_revision("asm-1", "cluster.local", [f"{FLEET}.svc.id.goog"])
    c.set_revision("asm-3", "", mesh_text="- trustDomain\n- cluster.local\n")
    doc = run(tmp_path, c, p, check="trust-domain", fleet_project=FLEET, revisions=("asm-1", "asm-3"))
    got = pods(doc)
    assert got["shop/no-spiffe"]["reason"].startswith("Error MCA0448 shop/no-spiffe: the workload certificate carries no spiffe:// URI SAN")
    assert got["shop/on-broken"]["reason"].startswith("Error MCA0451 ConfigMap istio-system/istio-asm-3: the mesh key is not a YAML mapping (a YAML list)")
    assert [r["ok"] for r in doc["revisions"]] == [True, False]


def test_trust_domain_reads_unlisted_revisions_and_reports_missing_configmaps(tmp_path, p):
    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem})
    both = p.pem(p.citadel_root, p.meshca_root)
    c.add_pod("legacy", "d", revision=None, dump=sidecar_dump(p.citadel_chain("legacy", "d"), both))  # default revision -> ConfigMap istio
    c.set_revision("default", "cluster.local", [f"{FLEET}.svc.id.goog"])
    doc = run(tmp_path, c, p, check="trust-domain", require=(), fleet_project=FLEET, revisions=("asm-9",))
    assert pods(doc)["legacy/d"]["status"] == "ok" and pods(doc)["legacy/d"]["revision"] == "default"
    assert doc["revisions"][0]["reason"].startswith("Error MCA0450 ConfigMap istio-system/istio-asm-9: revision asm-9: ConfigMap not found")
    assert doc["ok"] is False


def test_namespace_scope(tmp_path, p):
    c = standard_cluster(p)
    c.add_pod("other", "o-1", dump=sidecar_dump(p.citadel_chain("other", "o"), p.citadel_root.cert_pem))
    doc = run(tmp_path, c, p, namespaces=("shop",))
    assert [e["pod"] for e in doc["pods"]] == ["web-0", "web-1"] and doc["ok"] is True
    with pytest.raises(MeshcaError) as err:
        run(tmp_path, c, p, namespaces=("shpo",))
    assert err.value.code == "MCA0415"


def test_citadel_reference_from_cluster_and_its_faults(tmp_path, p):
    c = standard_cluster(p, with_cacerts=False)
    with pytest.raises(MeshcaError) as err:
        run(tmp_path, c, p)
    assert err.value.code == "MCA0414"
    c.set_secret("cacerts", {"ca-cert.pem": p.citadel_ca.cert_pem})  # no root-cert.pem key
    with pytest.raises(MeshcaError) as err:
        run(tmp_path, c, p)
    assert err.value.line().startswith("Error MCA0413 Secret istio-system/cacerts: key root-cert.pem is missing or empty")
    # given roots never read the cluster, and a reference file may hold several roots
    doc = run(tmp_path, c, p, citadel_roots=(p.other_root.cert, p.citadel_root.cert))
    assert doc["ok"] is True and doc["references"]["citadelSource"] == "given"
    assert doc["references"]["citadel"] == sorted([fingerprint(p.other_root.cert), fingerprint(p.citadel_root.cert)])


def test_concurrency_does_not_change_the_verdict(tmp_path, p):
    c = standard_cluster(p)
    both = p.pem(p.citadel_root, p.meshca_root)
    for i in range(30):
        roots = both if i % 7 else p.citadel_root.cert_pem
        c.add_pod(f"ns-{i % 4}", f"app-{i:02d}", dump=sidecar_dump(p.citadel_chain(f"ns-{i % 4}", "app"), roots))
    serial = run(tmp_path, c, p, concurrency=1)
    parallel = run(tmp_path, c, p, concurrency=16)
    assert serial["pods"] == parallel["pods"] and serial["summary"] == parallel["summary"]
    assert [(e["namespace"], e["pod"]) for e in serial["pods"]] == sorted((e["namespace"], e["pod"]) for e in serial["pods"])
    assert serial["summary"]["failed"] == 5


def test_progress_reports_every_checked_pod(tmp_path, p):
    c = standard_cluster(p)
    seen = []
    root = c.write(tmp_path / "cluster")
    run_check(DirSource(root), CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,)), progress=lambda d, t, e: seen.append((d, t, e["pod"])))
    assert sorted(seen) == [(1, 2, seen[0][2]), (2, 2, seen[1][2])]


def test_bad_requests_are_usage_errors(tmp_path, p):
    c = standard_cluster(p)
    for kw in ({"check": "roots"}, {"require": ("CITADEL",), "forbid": ("CITADEL",)}, {"require": ("ISTIO",)}, {"check": "trust-domain"}, {"concurrency": 0}):
        with pytest.raises(MeshcaError) as err:
            run(tmp_path, c, p, **kw)
        assert err.value.code == "MCA0901"


def test_root_of_trust(tmp_path, p):
    c = standard_cluster(p)
    root = c.write(tmp_path / "cluster")
    ok = check_root_of_trust(DirSource(root), [p.citadel_root.cert], path="root-cert.pem", cluster="dev")
    assert ok == {"check": "root-of-trust", "given": fingerprint(p.citadel_root.cert), "live": fingerprint(p.citadel_root.cert), "source": "cacerts", "ok": True, "reason": None}
    bad = check_root_of_trust(DirSource(root), [p.other_root.cert], path="root-cert.pem", cluster="dev")
    assert bad["ok"] is False and bad["reason"].startswith("Error MCA0302 root-cert.pem: root-cert.pem is ")
    none = check_root_of_trust(DirSource(standard_cluster(p, with_cacerts=False).write(tmp_path / "c2")), [p.citadel_root.cert], path="root-cert.pem", cluster="dev")
    assert none["live"] is None and none["source"] is None and none["reason"].startswith("Error MCA0303 ")


def test_request_is_frozen_and_keeps_its_api():
    req = CheckRequest("root-cert")
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.check = "x"  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(CheckRequest)] == [
        "check", "require", "forbid", "namespaces", "retiring_deployments", "retiring_selectors",
        "citadel_roots", "meshca_roots", "fleet_project", "revisions", "concurrency", "timeout", "retries",
    ]
    assert (req.require, req.concurrency, req.timeout, req.retries) == (("CITADEL", "MESHCA"), 16, 30.0, 2)
