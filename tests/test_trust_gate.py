"""The TrustGate dynamic provider: dill round trip, check/diff, and create against the fake
tools and the loopback API server (polling until a bad pod is replaced)."""

from __future__ import annotations

import base64
import json
import threading
import time

import dill
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from fakes.trust_cluster import FLEET, fake_env, make_pki, read_log, sidecar_dump, standard_cluster
from kube_api_server import KubeApiServer
from meshca.plan import namespace_digest
from meshca.providers.trust_gate import INPUTS, TrustGateFailed, TrustGateProvider, run_gate

DIGEST = namespace_digest("dev", {"shop": "asm-1"})


# Any warning (e.g. cryptography on the 87-character Mesh CA CN) leaking out of meshca fails the test.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def p():
    return make_pki()


@pytest.fixture
def files(tmp_path, p):
    citadel = tmp_path / "root-cert.pem"
    citadel.write_bytes(p.citadel_root.cert_pem)
    meshca = tmp_path / "meshca-root.pem"
    meshca.write_bytes(p.meshca_root.cert_pem)
    return {"citadel": str(citadel), "meshca": str(meshca)}


def inputs(files, **over) -> dict:
    base = {
        "gateId": "A3.gate.root-cert",
        "stack": "dev",
        "phase": "distribute-root",
        "cluster": "dev-1",
        "context": "",
        "kubeconfig": "",
        "check": "root-cert",
        "require": ["CITADEL", "MESHCA"],
        "forbid": [],
        "retiringDeployments": [],
        "retiringSelectors": [],
        "citadelRoot": files["citadel"],
        "meshcaRoot": files["meshca"],
        "rootCert": "",
        "fleetProject": "",
        "revisions": [],
        "source": "istioctl",
        "concurrency": 8,
        "timeoutSeconds": 1,
        "pollSeconds": 0.1,
        "namespaceDigest": DIGEST,
        "restartGeneration": 3,
    }
    base.update(over)
    return base


def roundtrip(provider: TrustGateProvider) -> TrustGateProvider:
    """What the engine does: serialise at registration, unpickle in the provider process."""
    blob = serialize_provider(provider)
    assert len(base64.b64decode(blob)) < 400  # pickled by reference: the importable class, no state
    return dill.loads(base64.b64decode(blob))


def with_bad_pod(p):
    c = standard_cluster(p)
    c.add_pod("shop", "cart-0", dump=sidecar_dump(p.citadel_chain("shop", "cart"), p.citadel_root.cert_pem))
    return c


def replace_bad_pod(c, p):
    c.remove_pod("shop", "cart-0")
    c.add_pod("shop", "cart-1", dump=sidecar_dump(p.citadel_chain("shop", "cart"), p.pem(p.citadel_root, p.meshca_root)))


# ----------------------------------------------------------------------------- check / diff


def test_check_accepts_plan_inputs_and_fills_defaults(files):
    provider = roundtrip(TrustGateProvider())
    news = inputs(files, timeoutSeconds=600)
    for key in ("source", "concurrency", "pollSeconds", "restartGeneration"):
        news.pop(key)
    result = provider.check({}, news)
    assert result.failures == []
    assert result.inputs["source"] == "kube" and result.inputs["concurrency"] == 16 and result.inputs["restartGeneration"] == 0
    assert result.inputs["pollSeconds"] == 10


@pytest.mark.parametrize(
    "over, prop",
    [
        ({"check": "roots"}, "check"),
        ({"gateId": ""}, "gateId"),
        ({"namespaceDigest": "abc"}, "namespaceDigest"),
        ({"require": ["ISTIO"]}, "require"),
        ({"forbid": ["CITADEL"]}, "forbid"),
        ({"retiringDeployments": ["no-slash"]}, "retiringDeployments"),
        ({"retiringSelectors": ["istio-system/app"]}, "retiringSelectors"),
        ({"citadelRoot": "/nonexistent/root-cert.pem"}, "citadelRoot"),
        ({"source": "ssh"}, "source"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeoutSeconds": 5, "pollSeconds": 10}, "pollSeconds"),
        ({"check": "root-of-trust", "require": [], "rootCert": ""}, "rootCert"),
        ({"check": "trust-domain", "require": [], "fleetProject": "", "revisions": ["asm-1"]}, "fleetProject"),
        ({"check": "trust-domain", "require": [], "fleetProject": FLEET, "revisions": []}, "revisions"),
        ({"check": "workload-cert", "require": []}, "require"),
    ],
)
def test_check_rejects_bad_inputs_with_a_coded_reason(files, over, prop):
    result = TrustGateProvider().check({}, inputs(files, **over))
    assert [f.property for f in result.failures] == [prop]
    assert result.failures[0].reason.startswith(f"Error MCA0460 {prop}: ")


@pytest.mark.parametrize("key", INPUTS)
def test_check_tolerates_unknown_values(files, key):
    """In preview any input may still be the engine's UNKNOWN sentinel, whatever its type."""
    news = inputs(files, **{key: rpc.UNKNOWN})
    assert TrustGateProvider().check({}, news).failures == []
    lists = {k: [rpc.UNKNOWN] for k in ("require", "retiringDeployments", "retiringSelectors", "revisions")}
    assert TrustGateProvider().check({}, inputs(files, **lists)).failures == []


def test_diff_replaces_on_any_input_change(files):
    provider = TrustGateProvider()
    olds = {**inputs(files), "passed": True, "summary": {}, "checkedAt": "x", "rounds": 1}
    assert provider.diff("id", olds, inputs(files)).changes is False
    for key, value in (("namespaceDigest", namespace_digest("dev", {"shop": "asm-2"})), ("restartGeneration", 4), ("require", ["MESHCA"])):
        d = provider.diff("id", olds, inputs(files, **{key: value}))
        assert (d.changes, d.replaces) == (True, [key])
    d = provider.diff("id", olds, inputs(files, namespaceDigest=rpc.UNKNOWN))
    assert d.replaces == ["namespaceDigest"]


# ----------------------------------------------------------------------------- create


def test_create_with_fake_tools_fails_naming_the_pod_then_passes_once_replaced(tmp_path, monkeypatch, p, files):
    c = with_bad_pod(p)
    root = c.write(tmp_path / "cluster")
    env = fake_env(root, tmp_path / "calls.log")
    for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
        monkeypatch.setenv(k, env[k])
    provider = roundtrip(TrustGateProvider())
    props = {**inputs(files, timeoutSeconds=0.3, pollSeconds=0.1), "__provider": "blob", "passed": None}
    with pytest.raises(TrustGateFailed) as err:
        provider.create(props)
    text = str(err.value)
    assert text.startswith("gate A3.gate.root-cert on cluster dev-1 (stack dev, phase distribute-root) did not pass within 0.3 s")
    assert "1 failed, 0 errors of 3 meshed pods: shop/cart-0 (fail)" in text
    assert "MCA0440 root-cert: 1 of 3 counted pods fail" in text and "\n" not in text

    replace_bad_pod(c, p)
    c.write(root)
    result = provider.create(props)
    outs = result.outs
    assert outs["passed"] is True
    assert outs["summary"] == {"meshed": 3, "ok": 3, "failed": 0, "errors": 0, "skipped": 0, "retiring": 0}
    assert (outs["namespaceDigest"], outs["stack"], outs["phase"], outs["gateId"]) == (DIGEST, "dev", "distribute-root", "A3.gate.root-cert")
    assert outs["checkedAt"].endswith("Z") and outs["rounds"] == 1
    assert "__provider" not in outs and result.id.startswith("dev-1/A3.gate.root-cert/")
    json.dumps(outs)


def test_it_polls_until_the_deadline_not_one_snapshot(tmp_path, monkeypatch, p, files):
    """With a clock that only moves when the gate sleeps, the number of checks is exact."""
    root = with_bad_pod(p).write(tmp_path / "cluster")
    log = tmp_path / "calls.log"
    env = fake_env(root, log)
    for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
        monkeypatch.setenv(k, env[k])
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    with pytest.raises(TrustGateFailed) as err:
        run_gate(inputs(files, timeoutSeconds=10, pollSeconds=1), sleep=sleep, clock=lambda: now[0])
    # checks at t = 0, 1, ..., 10; after the one at t = 10 the next would pass the deadline
    assert slept == [1.0] * 10
    assert "did not pass within 10 s (11 checks)" in str(err.value)
    assert sum(1 for call in read_log(log) if call[0] == "istioctl" and call[3] == "cart-0") == 11


def test_create_polls_until_the_pod_is_replaced(tmp_path, monkeypatch, p, files):
    c = with_bad_pod(p)
    root = c.write(tmp_path / "cluster")
    log = tmp_path / "calls.log"
    env = fake_env(root, log)
    for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
        monkeypatch.setenv(k, env[k])

    def replace_after_first_read():
        # wait for an event (the gate has read the bad pod), never for a fixed time
        for _ in range(3000):
            if any(call[0] == "istioctl" and call[3] == "cart-0" for call in read_log(log)):
                replace_bad_pod(c, p)
                c.write(root)
                return
            time.sleep(0.01)

    worker = threading.Thread(target=replace_after_first_read)
    worker.start()
    outs = roundtrip(TrustGateProvider()).create(inputs(files, timeoutSeconds=60, pollSeconds=0.05)).outs
    worker.join()
    assert outs["passed"] is True and outs["rounds"] >= 2
    fetched = {call[3] for call in read_log(log) if call[0] == "istioctl"}
    assert {"cart-0", "cart-1"} <= fetched


def test_create_with_the_loopback_api_server(tmp_path, p, files):
    c = with_bad_pod(p)
    root = c.write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        provider = roundtrip(TrustGateProvider())
        props = inputs(files, source="kube", kubeconfig=api.kubeconfig, context="loopback", timeoutSeconds=2.0, pollSeconds=0.5)
        with pytest.raises(TrustGateFailed) as err:
            provider.create(props)
        assert "shop/cart-0 (fail)" in str(err.value)
        assert "MCA0440 " in str(err.value)
        replace_bad_pod(c, p)
        c.write(root)
        outs = provider.create(props).outs
        assert outs["passed"] is True and outs["summary"]["ok"] == 3
        assert any("/pods/cart-1/exec?" in path for _, path in api.log())


def test_failure_names_twenty_pods_then_counts(tmp_path, monkeypatch, p, files):
    c = standard_cluster(p)
    for i in range(23):
        c.add_pod("shop", f"old-{i:02d}", dump=sidecar_dump(p.citadel_chain("shop", "old"), p.citadel_root.cert_pem))
    root = c.write(tmp_path / "cluster")
    env = fake_env(root, tmp_path / "calls.log")
    for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
        monkeypatch.setenv(k, env[k])
    with pytest.raises(TrustGateFailed) as err:
        TrustGateProvider().create(inputs(files, timeoutSeconds=0.05, pollSeconds=0.05))
    head = str(err.value).split(". MCA0440")[0]
    assert "shop/old-19 (fail) and 3 more" in head and "old-20" not in head


def test_root_of_trust_gate_judges_once(tmp_path, monkeypatch, p, files):
    root = standard_cluster(p).write(tmp_path / "cluster")
    env = fake_env(root, tmp_path / "calls.log")
    for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
        monkeypatch.setenv(k, env[k])
    provider = TrustGateProvider()
    base = dict(check="root-of-trust", gateId="A0.gate.root-of-trust", require=[], citadelRoot="", meshcaRoot="", timeoutSeconds=600)
    outs = provider.create(inputs(files, rootCert=files["citadel"], **base)).outs
    assert outs["passed"] is True and outs["summary"]["source"] == "cacerts" and outs["summary"]["given"] == outs["summary"]["live"]
    slept = []
    with pytest.raises(TrustGateFailed) as err:
        run_gate(inputs(files, rootCert=files["meshca"], **base), sleep=slept.append)
    assert slept == []  # a mismatch does not wait out the 600 s deadline
    assert "MCA0302 " in str(err.value)


def test_missing_tool_fails_the_gate_at_once(tmp_path, monkeypatch, files):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TrustGateFailed) as err:
        TrustGateProvider().create(inputs(files, timeoutSeconds=600))
    assert "MCA0420 kubectl: not found on PATH" in str(err.value)


# ----------------------------------------------------------------------------- the resource


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.seen = []

    def new_resource(self, args):
        self.seen.append(args)
        outs = dict(args.inputs)
        outs.update(passed=True, summary={"meshed": 1}, checkedAt="2026-01-01T00:00:00Z", rounds=1)
        return f"{args.name}-id", outs

    def call(self, args):
        return {}


def test_trust_gate_resource_sends_camel_case_and_reads_snake_case(files):
    from components.trust_gate import TrustGate, TrustGateArgs

    mocks = _Mocks()
    pulumi.runtime.set_mocks(mocks, project="meshca", stack="dev", preview=False)

    @pulumi.runtime.test
    def program():
        gate = TrustGate(
            "dev-1.A3.gate.root-cert",
            TrustGateArgs(
                gate_id="A3.gate.root-cert", stack="dev", phase="distribute-root", cluster="dev-1", check="root-cert",
                namespace_digest=DIGEST, require=["CITADEL", "MESHCA"], citadel_root=files["citadel"],
                retiring_deployments=["istio-system/istio-ingressgateway"], restart_generation=2,
            ),
        )

        def verify(values):
            digest, passed, checked_at, gate_id = values
            assert (digest, passed, checked_at, gate_id) == (DIGEST, True, "2026-01-01T00:00:00Z", "A3.gate.root-cert")
            (res,) = [a for a in mocks.seen if a.name == "dev-1.A3.gate.root-cert"]
            assert res.typ == "pulumi-python:dynamic/meshca:TrustGate"
            assert {"gateId", "namespaceDigest", "restartGeneration", "retiringDeployments", "citadelRoot", "__provider"} <= set(res.inputs)
            assert not any("_" in k for k in res.inputs if k != "__provider")
            assert res.inputs["restartGeneration"] == 2

        return pulumi.Output.all(gate.namespace_digest, gate.passed, gate.checked_at, gate.gate_id).apply(verify)

    program()


# ----------------------------------------------------------------------------- kubeconfig, as `meshca check`
#
# docs/commands.md ("Kubeconfig and context"): every command that needs a cluster resolves the kubeconfig as kubectl does and refuses
# a file that does not exist (MCA1001) or a context no file defines (MCA1002) before any tool
# starts. The gates run the same check in the provider process; they used to hand the paths to
# the source, so a missing file surfaced as the Kubernetes client's MCA0424 (or istioctl's error).


@pytest.mark.parametrize("source", ["kube", "istioctl"])
def test_gate_refuses_a_missing_kubeconfig_like_check(tmp_path, files, source):
    missing = tmp_path / "gone.yaml"
    with pytest.raises(TrustGateFailed) as err:
        TrustGateProvider().create(inputs(files, source=source, kubeconfig=str(missing), context="loopback"))
    text = str(err.value)
    assert text.startswith("gate A3.gate.root-cert on cluster dev-1 (stack dev, phase distribute-root): ")
    assert f"Error MCA1001 {missing}: no such kubeconfig file (--kubeconfig); fix: " in text
    assert "MCA0424" not in text


@pytest.mark.parametrize("source", ["kube", "istioctl"])
def test_gate_refuses_an_undefined_context_like_check(tmp_path, files, source):
    from conftest import FAKE_KUBECONFIG

    with pytest.raises(TrustGateFailed) as err:
        TrustGateProvider().create(inputs(files, source=source, kubeconfig=str(FAKE_KUBECONFIG), context="no-such-context"))
    assert f"Error MCA1002 context no-such-context: not defined in {FAKE_KUBECONFIG}; fix: " in str(err.value)
