"""``meshca check --source kube`` (the default) with the real kubernetes client against a
loopback HTTPS Kubernetes API server that accepts only the exact requests meshca must make."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from fakes.trust_cluster import FLEET, Cluster, make_pki, sidecar_dump, standard_cluster
from kube_api_server import EXEC_QUERY, KubeApiServer, closed_port
from meshca import cli
from meshca.certs import fingerprint
from meshca.trust.dumps import DEFAULT, ROOTCA, render_dump
from meshca.trust.kube_source import KubeSource
from meshca.trust.runner import CheckRequest, run_check
from meshca.trust.source import SourceError

EXEC = f"?{EXEC_QUERY}"


# Any warning (e.g. cryptography on the 87-character Mesh CA CN) leaking out of meshca fails the test.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def p():
    return make_pki()


@pytest.fixture
def mixed(p):
    c = standard_cluster(p)
    both = p.pem(p.citadel_root, p.meshca_root)
    c.add_pod("shop", "cart-0", dump=sidecar_dump(p.citadel_chain("shop", "cart"), p.citadel_root.cert_pem))
    c.add_pod("pay", "api-0", native=True, dump=sidecar_dump(p.citadel_chain("pay", "api"), both, style="snake"))
    gw = render_dump({"kubernetes://cred": ("cert", p.other_root.cert_pem), DEFAULT: ("cert", p.citadel_chain("istio-system", "gw")), ROOTCA: ("ca", both)})
    c.add_pod("istio-system", "istio-ingressgateway-1", gateway=True, revision=None, dump=gw)
    c.add_pod("shop", "web-9", phase="Pending")
    c.add_pod("batch", "job-1", phase="Succeeded")
    return c


def run_cli(capsys, *argv):
    code = cli.main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exact_requests_and_verdicts(tmp_path, capsys, p, mixed):
    root = mixed.write(tmp_path / "cluster")
    pem = tmp_path / "m.pem"
    pem.write_bytes(p.meshca_root.cert_pem)
    with KubeApiServer(root) as api:
        code, out, err = run_cli(capsys, "root-cert", "--kubeconfig", api.kubeconfig, "--context", "loopback", "--meshca-root", str(pem), "--json")
        log = api.log()
        execs = list(api.execs)
    assert code == 1, err
    doc = json.loads(out)
    status = {f"{e['namespace']}/{e['pod']}": e["status"] for e in doc["pods"]}
    assert status == {
        "batch/job-1": "skipped",
        "istio-system/istio-ingressgateway-1": "ok",
        "pay/api-0": "ok",
        "shop/cart-0": "fail",
        "shop/web-0": "ok",
        "shop/web-1": "ok",
        "shop/web-9": "error",
    }
    assert sorted(log[:3]) == sorted([("GET", "/api/v1/namespaces"), ("GET", "/api/v1/pods"), ("GET", "/api/v1/namespaces/istio-system/secrets/cacerts")])
    running = ["shop/web-0", "shop/web-1", "shop/cart-0", "pay/api-0", "istio-system/istio-ingressgateway-1"]
    assert sorted(log[3:]) == sorted(("GET", f"/api/v1/namespaces/{r.split('/')[0]}/pods/{r.split('/')[1]}/exec{EXEC}") for r in running)
    # the client asked for exactly the v4 channel protocol, once per proxy
    assert sorted(execs) == sorted((r.split("/")[0], r.split("/")[1], ("v4.channel.k8s.io",)) for r in running)


def test_istio_ca_secret_fallback_namespaces_and_configmaps(tmp_path, p):
    c = standard_cluster(p, with_cacerts=False)
    c.set_secret("istio-ca-secret", {"ca-cert.pem": p.citadel_root.cert_pem})
    c.set_revision("asm-1", "cluster.local", [f"{FLEET}.svc.id.goog"])
    root = c.write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        src = KubeSource(api.kubeconfig, "loopback")
        doc = run_check(src, CheckRequest("trust-domain", require=(), namespaces=("shop",), fleet_project=FLEET, revisions=("asm-1",), meshca_roots=(p.meshca_root.cert,)))
        log = api.log()
    assert doc["ok"] is True, doc["reason"]
    assert doc["references"]["citadelSource"] == "istio-ca-secret"
    reads = [r for r in log if "exec" not in r[1]]
    assert sorted(reads) == sorted([
        ("GET", "/api/v1/namespaces"),
        ("GET", "/api/v1/namespaces/shop/pods"),
        ("GET", "/api/v1/namespaces/istio-system/secrets/cacerts"),
        ("GET", "/api/v1/namespaces/istio-system/secrets/istio-ca-secret"),
        ("GET", "/api/v1/namespaces/istio-system/configmaps/istio-asm-1"),
    ])
    # istio-ca-secret is read only after cacerts was found missing
    assert reads.index(("GET", "/api/v1/namespaces/istio-system/secrets/cacerts")) < reads.index(("GET", "/api/v1/namespaces/istio-system/secrets/istio-ca-secret"))


def test_big_dump_arrives_in_many_frames(tmp_path, p):
    from meshca import pki

    extra = [pki.make_root(f"extra-{i}", key=pki.ec_key()) for i in range(60)]
    roots = p.pem(p.citadel_root, p.meshca_root, *extra)
    c = Cluster()
    c.set_secret("cacerts", {"root-cert.pem": p.citadel_root.cert_pem})
    dump = sidecar_dump(p.citadel_chain("shop", "big"), roots)
    assert len(dump) > 2 * 16 * 1024  # three websocket frames or more
    c.add_pod("shop", "big", dump=dump)
    root = c.write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        doc = run_check(KubeSource(api.kubeconfig), CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,)))
    e = doc["pods"][0]
    assert e["status"] == "ok" and len(e["unknownRoots"]) == 60
    assert e["unknownRoots"][0] == fingerprint(extra[0].cert)


def test_exec_failure_and_timeout_are_pod_errors(tmp_path, p):
    c = standard_cluster(p)
    c.dump_errors[("shop", "web-0")] = "Error: failed to get config dump: connection refused\n"
    c.add_pod("hung", "slow", dump=sidecar_dump(p.citadel_chain("hung", "slow"), p.pem(p.citadel_root, p.meshca_root)))
    c.dump_delays[("hung", "slow")] = 20
    root = c.write(tmp_path / "cluster")
    with KubeApiServer(root) as api, KubeSource(api.kubeconfig) as src:
        shop = run_check(src, CheckRequest("root-cert", namespaces=("shop",), meshca_roots=(p.meshca_root.cert,), retries=0))
        # the hung proxy answers after 20 s; the per-pod timeout is far shorter
        hung = run_check(src, CheckRequest("root-cert", namespaces=("hung",), meshca_roots=(p.meshca_root.cert,), retries=0, timeout=0.5))
    got = {e["pod"]: e for e in shop["pods"] + hung["pods"]}
    assert got["web-1"]["status"] == "ok"
    assert got["web-0"]["status"] == "error"
    assert got["web-0"]["reason"].startswith("Error MCA0431 shop/web-0: reading the proxy's secret dump failed (1 attempt(s)): command terminated with non-zero exit code")
    assert "stderr: Error: failed to get config dump: connection refused" in got["web-0"]["reason"]
    assert got["slow"]["status"] == "error" and got["slow"]["reason"].startswith("Error MCA0432 hung/slow: no secret dump within 0.5 s")


def test_unreachable_server_bad_token_and_bad_kubeconfig_are_exit_2(tmp_path, capsys, p):
    root = standard_cluster(p).write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        dead = api.write_kubeconfig(tmp_path / "dead.kubeconfig", f"https://127.0.0.1:{closed_port()}")
        code, out, err = run_cli(capsys, "root-cert", "--kubeconfig", dead, "--context", "loopback", "--json")
        assert code == 2 and [e["code"] for e in json.loads(out)["errors"]] == ["MCA0421"]  # --json: errors on stdout too
        assert err.startswith("Error MCA0421 context loopback: cannot reach the Kubernetes API server (") and len(err.splitlines()) == 1
        api.token = "rotated"  # our kubeconfig's token is now refused
        code, out, err = run_cli(capsys, "root-cert", "--kubeconfig", api.kubeconfig)
        assert code == 2 and err.startswith("Error MCA0423 list_namespace: the API server answered 401: Unauthorized")
        code, out, err = run_cli(capsys, "root-cert", "--kubeconfig", api.kubeconfig, "--context", "elsewhere")
        assert code == 2 and err.startswith(f"Error MCA1002 context elsewhere: not defined in {api.kubeconfig}; fix: pass one of its contexts with --context (loopback)")
        # A file that exists but is no kubeconfig is the client's to judge (MCA0424).
        broken = tmp_path / "broken.kubeconfig"
        broken.write_text("apiVersion: v1\nkind: Config\ncontexts: 7\n")
        code, out, err = run_cli(capsys, "root-cert", "--kubeconfig", str(broken), "--context", "loopback")
        assert code == 2 and err.startswith(f"Error MCA0424 {broken}: cannot load the kubeconfig")


def test_the_server_refuses_any_other_exec(tmp_path, p):
    """The loopback server is strict: an exec with another query (here stdin/tty added) or
    without the v4 subprotocol is refused, so a drifting client cannot pass these tests."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    root = standard_cluster(p).write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        cfg = client.Configuration()
        config.load_kube_config(config_file=api.kubeconfig, client_configuration=cfg, persist_config=False)
        core = client.CoreV1Api(client.ApiClient(cfg))
        with pytest.raises(Exception) as err:
            stream(core.connect_get_namespaced_pod_exec, "web-0", "shop", command=["pilot-agent", "request", "GET", "config_dump?mask=dynamic_active_secrets"],
                   container="istio-proxy", stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False,
                   _headers={"sec-websocket-protocol": "v4.channel.k8s.io"})
        assert "400" in str(err.value)
        with pytest.raises(Exception) as err:
            stream(core.connect_get_namespaced_pod_exec, "web-0", "shop", command=["pilot-agent", "request", "GET", "config_dump?mask=dynamic_active_secrets"],
                   container="istio-proxy", stderr=True, stdout=True, _preload_content=False, _headers={"sec-websocket-protocol": "v5.channel.k8s.io"})
        assert "400" in str(err.value)
        assert api.execs == []


def test_source_pickles_without_a_client(tmp_path, p):
    root = standard_cluster(p).write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        src = KubeSource(api.kubeconfig)
        assert src.list_namespaces()  # a live client now exists inside
        clone = pickle.loads(pickle.dumps(src))
        assert clone._api is None and clone.kubeconfig == api.kubeconfig
        assert sorted(clone.list_namespaces()) == sorted(src.list_namespaces())
        with pytest.raises(SourceError):
            clone.fetch_dump({"metadata": {"name": "absent", "namespace": "shop"}})


def test_exec_streams_run_side_by_side_up_to_concurrency(tmp_path, p):
    """Every proxy is one exec stream; --concurrency of them are open at once, never more."""
    c = standard_cluster(p)
    both = p.pem(p.citadel_root, p.meshca_root)
    for i in range(10):
        c.add_pod("wide", f"w-{i}", dump=sidecar_dump(p.citadel_chain("wide", "w"), both))
        c.dump_delays[("wide", f"w-{i}")] = 0.3  # each proxy answers after 0.3 s: the streams overlap
    root = c.write(tmp_path / "cluster")
    for concurrency, peak in ((1, 1), (4, 4), (64, 10)):
        with KubeApiServer(root) as api, KubeSource(api.kubeconfig, pool_size=concurrency) as src:
            doc = run_check(src, CheckRequest("root-cert", namespaces=("wide",), meshca_roots=(p.meshca_root.cert,), concurrency=concurrency))
            assert doc["summary"]["ok"] == 10 and len(api.execs) == 10
            assert api.exec_peak == peak, (concurrency, api.exec_peak)


def test_check_starts_lean(tmp_path, p):
    """`meshca check` with the kube source and a token kubeconfig imports neither the kubernetes
    package (about 0.3 s of CPU; its generated CoreV1Api another 0.5 s) nor the other commands
    (planner, simulated mesh)."""
    import subprocess
    import sys

    root = standard_cluster(p).write(tmp_path / "cluster")
    pem = tmp_path / "m.pem"
    pem.write_bytes(p.meshca_root.cert_pem)
    code = (
        "import sys; from meshca import cli; rc = cli.main(sys.argv[1:]); "
        "print(sorted(m for m in sys.modules if m in ('kubernetes', 'kubernetes.client.api.core_v1_api', 'meshca.plan', 'meshca.sim.engine', 'meshca.sim.scenarios'))); "
        "sys.exit(rc)"
    )
    with KubeApiServer(root) as api:
        proc = subprocess.run(
            [sys.executable, "-c", code, "check", "root-cert", "--kubeconfig", api.kubeconfig, "--meshca-root", str(pem)], capture_output=True, text=True, timeout=120
        )
        assert len(api.execs) == 2
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_default_concurrency_per_source():
    """64 exec streams with the kube source, 16 istioctl processes with --source istioctl
    (README "Concurrency of meshca check"); --concurrency wins."""
    from meshca.cli import build_parser
    from meshca.trust.cli import build_request

    def conc(*argv):
        return build_request(build_parser("check").parse_args(["check", "root-cert", *argv])).concurrency

    assert (conc(), conc("--source", "istioctl"), conc("--concurrency", "8"), conc("--source", "istioctl", "--concurrency", "200")) == (64, 16, 8, 200)


def test_token_is_asked_for_once_per_ttl(tmp_path, p, monkeypatch):
    """Through the kubernetes package: kubernetes.config's refresh hook re-applies the kubeconfig on every call; the source asks
    it once per AUTH_TTL, not once per request (it was most of a proxy's CPU)."""
    from meshca.trust import kube_source

    root = standard_cluster(p).write(tmp_path / "cluster")
    for ttl in (kube_source.AUTH_TTL, -1.0):  # -1: every request asks
        monkeypatch.setattr(kube_source, "AUTH_TTL", ttl)
        with KubeApiServer(root) as api, KubeSource(api.kubeconfig, direct=False) as src:
            cfg, _ = src._config()
            settings, calls = cfg.auth_settings, []  # each call runs the refresh hook
            cfg.auth_settings = lambda: (calls.append(1), settings())[1]
            doc = run_check(src, CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,)))
            requests = len(api.log())
        assert doc["summary"]["ok"] == 2
        assert requests == 5  # namespaces, pods, cacerts, two execs
        assert len(calls) == (1 if ttl > 0 else requests)


@pytest.mark.parametrize("direct", [True, False])
def test_both_transports_make_the_same_requests_and_errors(tmp_path, p, mixed, direct):
    """The direct transport (token or client certificate kubeconfigs) and the kubernetes package
    (everything else) make exactly the same requests and report the same per-pod errors."""
    mixed.dump_errors[("shop", "web-0")] = "Error: failed to get config dump: connection refused\n"
    mixed.add_pod("hung", "slow", dump=sidecar_dump(p.citadel_chain("hung", "slow"), p.pem(p.citadel_root, p.meshca_root)))
    mixed.dump_delays[("hung", "slow")] = 20
    root = mixed.write(tmp_path / "cluster")
    with KubeApiServer(root) as api, KubeSource(api.kubeconfig, direct=direct) as src:
        assert (src._transport() is not None) is direct
        doc = run_check(src, CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,), retries=0, timeout=1.0))
        log = api.log()
        assert src.read_secret("absent") is None
    status = {f"{e['namespace']}/{e['pod']}": e["status"] for e in doc["pods"]}
    assert status == {
        "batch/job-1": "skipped",
        "hung/slow": "error",
        "istio-system/istio-ingressgateway-1": "ok",
        "pay/api-0": "ok",
        "shop/cart-0": "fail",
        "shop/web-0": "error",
        "shop/web-1": "ok",
        "shop/web-9": "error",
    }
    reasons = {e["pod"]: e["reason"] for e in doc["pods"]}
    assert reasons["web-0"].startswith("Error MCA0431 shop/web-0: reading the proxy's secret dump failed (1 attempt(s)): command terminated with non-zero exit code")
    assert "stderr: Error: failed to get config dump: connection refused" in reasons["web-0"]
    assert reasons["slow"].startswith("Error MCA0432 hung/slow: no secret dump within 1 s")
    running = ["shop/web-0", "shop/web-1", "shop/cart-0", "pay/api-0", "istio-system/istio-ingressgateway-1", "hung/slow"]
    assert sorted(log) == sorted(
        [("GET", "/api/v1/namespaces"), ("GET", "/api/v1/pods"), ("GET", "/api/v1/namespaces/istio-system/secrets/cacerts")]
        + [("GET", f"/api/v1/namespaces/{r.split('/')[0]}/pods/{r.split('/')[1]}/exec{EXEC}") for r in running]
    )


def test_exec_plugin_kubeconfig_uses_the_kubernetes_package(tmp_path, p):
    """GKE's kubeconfigs get their token from an exec credential plugin (gke-gcloud-auth-plugin):
    such a kubeconfig is the kubernetes package's to load; the check works the same."""
    import yaml

    root = standard_cluster(p).write(tmp_path / "cluster")
    with KubeApiServer(root) as api:
        plugin = tmp_path / "auth-plugin"
        # client.authentication.k8s.io/v1 ExecCredential (k8s.io/client-go pkg/apis/clientauthentication/v1)
        plugin.write_text(
            "#!/bin/sh\n"
            f"echo '{{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", \"status\": {{\"token\": \"{api.token}\"}}}}'\n"
        )
        plugin.chmod(0o755)
        doc = yaml.safe_load(Path(api.kubeconfig).read_text())
        doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}}
        kubeconfig = tmp_path / "exec.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(doc))
        with KubeSource(str(kubeconfig)) as src:
            assert src._transport() is None
            result = run_check(src, CheckRequest("root-cert", meshca_roots=(p.meshca_root.cert,)))
        assert result["ok"] is True and len(api.execs) == 2
