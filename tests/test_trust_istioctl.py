"""``meshca check --source istioctl`` against the fake kubectl/istioctl (real subprocesses).

The fakes log every argv, so these tests pin the exact command lines, that each proxy is
read once (retries aside), and that gateways, native sidecars and pod phases are handled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fakes.trust_cluster import FAKE_BIN, FLEET, Cluster, fake_env, make_pki, read_log, sidecar_dump, standard_cluster
from meshca import cli
from meshca.trust.dumps import DEFAULT, ROOTCA, render_dump

K = ["--kubeconfig", str(Path(__file__).parent / "fakes" / "kubeconfig.yaml"), "--context", "gke_dev"]


# Any warning (e.g. cryptography on the 87-character Mesh CA CN) leaking out of meshca fails the test.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(scope="module")
def p():
    return make_pki()


class Tools:
    def __init__(self, tmp_path: Path, monkeypatch, cluster: Cluster, p) -> None:
        self.root = cluster.write(tmp_path / "cluster")
        self.log = tmp_path / "calls.log"
        self.env = fake_env(self.root, self.log)
        for k in ("PATH", "MESHCA_FAKE_CLUSTER", "MESHCA_FAKE_LOG", "MESHCA_FAKE_DELAY"):
            monkeypatch.setenv(k, self.env[k])
        self.meshca_pem = tmp_path / "meshca-root.pem"
        self.meshca_pem.write_bytes(p.meshca_root.cert_pem)
        self.citadel_pem = tmp_path / "root-cert.pem"
        self.citadel_pem.write_bytes(p.citadel_root.cert_pem)

    def calls(self):
        return read_log(self.log)

    def reset(self):
        self.log.unlink(missing_ok=True)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mixed(p):
    """Both roots everywhere except two Citadel-only pods; a gateway whose FIRST secret is a
    credential; a native sidecar; a completed Job; a pending pod; a pod without a proxy."""
    c = standard_cluster(p)
    c.context = "gke_dev"
    both = p.pem(p.citadel_root, p.meshca_root)
    c.add_pod("shop", "cart-0", dump=sidecar_dump(p.citadel_chain("shop", "cart"), p.citadel_root.cert_pem))
    c.add_pod("pay", "api-0", native=True, dump=sidecar_dump(p.citadel_chain("pay", "api"), both, style="snake"))
    c.add_pod("pay", "api-1", native=True, dump=sidecar_dump(p.citadel_chain("pay", "api"), p.pem(p.citadel_root, p.other_root), style="snake"))
    gw = render_dump(
        {
            "kubernetes://shop-credential": ("cert", p.pem(p.other_root)),
            "kubernetes://shop-credential-cacert": ("ca", p.other_root.cert_pem),
            DEFAULT: ("cert", p.citadel_chain("istio-system", "istio-ingressgateway")),
            ROOTCA: ("ca", both),
        }
    )
    c.add_pod("istio-system", "istio-ingressgateway-6c9d-q8x7w", gateway=True, revision=None, dump=gw)
    c.add_pod("batch", "report-29001-abcde", phase="Succeeded", owner_kind="Job", replicaset="report-29001")
    c.add_pod("shop", "web-2", phase="Pending", waiting_reason="ImagePullBackOff")
    c.add_pod("shop", "plain", proxy=False)
    return c


def test_root_cert_lists_exactly_the_citadel_only_pods_and_the_exact_calls(tmp_path, monkeypatch, capsys, p, mixed):
    t = Tools(tmp_path, monkeypatch, mixed, p)
    code, out, err = run_cli(capsys, "root-cert", *K, "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--json")
    assert code == 1
    doc = json.loads(out)  # stdout is only JSON
    status = {f"{e['namespace']}/{e['pod']}": e["status"] for e in doc["pods"]}
    assert {k for k, v in status.items() if v == "fail"} == {"shop/cart-0", "pay/api-1"}
    assert status == {
        "batch/report-29001-abcde": "skipped",
        "istio-system/istio-ingressgateway-6c9d-q8x7w": "ok",
        "pay/api-0": "ok",
        "pay/api-1": "fail",
        "shop/cart-0": "fail",
        "shop/web-0": "ok",
        "shop/web-1": "ok",
        "shop/web-2": "error",
    }
    assert doc["summary"] == {"meshed": 8, "ok": 4, "failed": 2, "errors": 1, "skipped": 1, "retiring": 0}
    assert list(doc["pods"][0]) == ["namespace", "pod", "status", "roots", "unknownRoots", "issuer", "spiffeId", "reason", "proxy", "revision", "trustDomain", "expires"]
    assert err.splitlines()[-1].startswith("Error MCA0440 root-cert: 3 of 7 counted pods fail")

    calls = t.calls()
    # the three cluster-wide reads run side by side, and all end before the first proxy read
    assert sorted(calls[:3]) == sorted([
        ("kubectl", *K, "get", "namespaces", "-o", "json"),
        ("kubectl", *K, "get", "pods", "-A", "-o", "json"),
        ("kubectl", *K, "get", "secret", "cacerts", "-n", "istio-system", "-o", "json"),
    ])
    running = ["shop/web-0", "shop/web-1", "shop/cart-0", "pay/api-0", "pay/api-1", "istio-system/istio-ingressgateway-6c9d-q8x7w"]
    expected = [("istioctl", *K, "proxy-config", "secret", r.split("/")[1], "-n", r.split("/")[0], "-o", "json") for r in running]
    assert sorted(calls[3:]) == sorted(expected)  # one read per running proxy, nothing else


def test_text_output_keeps_migrate_ca_lines(tmp_path, monkeypatch, capsys, p, mixed):
    t = Tools(tmp_path, monkeypatch, mixed, p)
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem))
    lines = out.splitlines()
    assert code == 1
    assert " - web-0.shop trusts [CITADEL MESHCA]" in lines
    assert " - istio-ingressgateway-6c9d-q8x7w.istio-system trusts [CITADEL MESHCA]" in lines
    assert " - cart-0.shop trusts [CITADEL]  FAIL: MCA0444 trusts [CITADEL], missing MESHCA" in lines
    assert any(l.startswith(" - web-2.shop ERROR: MCA0430 pod is Pending (ImagePullBackOff)") for l in lines)
    assert any(l.startswith(" - report-29001-abcde.batch skipped: pod Succeeded") for l in lines)
    assert lines[-1] == "root-cert: 8 meshed, 4 ok, 2 failed, 1 errors, 1 skipped, 0 retiring: FAIL"
    # without global flags, none are passed
    assert all(c[1] in ("get", "proxy-config") for c in t.calls())

    t.reset()
    code, out, _ = run_cli(capsys, "workload-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--require", "MESHCA", "--namespace", "pay")
    assert code == 1
    assert out.splitlines()[0] == " - api-0.pay is using the mTLS certificate issued by [CITADEL]  FAIL: MCA0446 certificate issued by CITADEL, required MESHCA"


def test_istio_ca_secret_fallback_and_citadel_root_flag(tmp_path, monkeypatch, capsys, p):
    c = standard_cluster(p, with_cacerts=False)
    c.set_secret("istio-ca-secret", {"ca-cert.pem": p.citadel_root.cert_pem, "ca-key.pem": b"k"})
    t = Tools(tmp_path, monkeypatch, c, p)
    code, out, _ = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--json")
    assert code == 0 and json.loads(out)["references"]["citadelSource"] == "istio-ca-secret"
    assert [x for x in t.calls() if x[1] == "get" and x[2] == "secret"] == [
        ("kubectl", "get", "secret", "cacerts", "-n", "istio-system", "-o", "json"),
        ("kubectl", "get", "secret", "istio-ca-secret", "-n", "istio-system", "-o", "json"),
    ]
    t.reset()
    code, out, _ = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--citadel-root", str(t.citadel_pem), "--json")
    assert code == 0 and json.loads(out)["references"]["citadelSource"] == "given"
    assert not [x for x in t.calls() if x[0] == "kubectl" and x[2] == "secret"]


def test_namespace_flag_lists_per_namespace(tmp_path, monkeypatch, capsys, p, mixed):
    t = Tools(tmp_path, monkeypatch, mixed, p)
    code, out, _ = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--citadel-root", str(t.citadel_pem), "--namespace", "shop", "--namespace", "istio-system", "--json")
    assert code == 1
    kubectl = sorted(x for x in t.calls() if x[0] == "kubectl")
    assert kubectl == [
        ("kubectl", "get", "namespaces", "-o", "json"),
        ("kubectl", "get", "pods", "-n", "istio-system", "-o", "json"),
        ("kubectl", "get", "pods", "-n", "shop", "-o", "json"),
    ]
    assert {e["namespace"] for e in json.loads(out)["pods"]} == {"shop", "istio-system"}


def test_concurrency_one_and_default_make_the_same_calls(tmp_path, monkeypatch, capsys, p, mixed):
    t = Tools(tmp_path, monkeypatch, mixed, p)
    results = {}
    for conc in ("1", "16"):
        t.reset()
        code, out, _ = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--concurrency", conc, "--json")
        results[conc] = (code, json.loads(out)["pods"], Counter(t.calls()))
        if conc == "1":  # one call at a time: a fixed order
            assert t.calls()[:3] == [
                ("kubectl", "get", "namespaces", "-o", "json"),
                ("kubectl", "get", "pods", "-A", "-o", "json"),
                ("kubectl", "get", "secret", "cacerts", "-n", "istio-system", "-o", "json"),
            ]
    assert results["1"] == results["16"]


def test_retry_repeats_only_the_flaky_read(tmp_path, monkeypatch, capsys, p):
    c = standard_cluster(p)
    c.dump_failtimes[("shop", "web-1")] = 1
    t = Tools(tmp_path, monkeypatch, c, p)
    code, out, _ = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--json")
    assert code == 0
    reads = Counter(x[3] for x in t.calls() if x[0] == "istioctl")
    assert reads == {"web-0": 1, "web-1": 2}
    assert json.loads(out)["stats"]["dumpFetches"] == 3


def test_per_pod_timeout_makes_that_pod_an_error(tmp_path, monkeypatch, capsys, p):
    c = standard_cluster(p)
    c.add_pod("hung", "web-1", dump=sidecar_dump(p.citadel_chain("hung", "web"), p.pem(p.citadel_root, p.meshca_root)))
    c.dump_delays[("hung", "web-1")] = 30  # far longer than the timeout: the fake is killed
    t = Tools(tmp_path, monkeypatch, c, p)
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(t.meshca_pem), "--namespace", "hung", "--timeout", "0.5", "--retries", "0", "--json")
    assert code == 1
    (got,) = json.loads(out)["pods"]
    assert got["status"] == "error"
    assert got["reason"].startswith("Error MCA0432 hung/web-1: no secret dump within 0.5 s (1 attempt(s))")


@pytest.mark.parametrize("keep, missing", [((), "kubectl"), (("kubectl",), "istioctl")])
def test_missing_tool_is_exit_2(tmp_path, monkeypatch, capsys, p, keep, missing):
    t = Tools(tmp_path, monkeypatch, standard_cluster(p), p)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in keep:
        (bin_dir / tool).symlink_to(FAKE_BIN / tool)
    # only the chosen fakes and the interpreter they run on (this machine has its own kubectl)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent)]))
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl")
    assert (code, out) == (2, "")
    assert err.startswith(f"Error MCA0420 {missing}: not found on PATH (needed by --source istioctl); fix: install {missing} on PATH")
    assert t.calls() == []
    if missing == "istioctl":  # root-of-trust needs kubectl only
        code, out, err = run_cli(capsys, "root-of-trust", "--source", "istioctl", "--root-cert", str(t.citadel_pem))
        assert code == 0, err


def test_unreachable_and_unknown_context_are_exit_2(tmp_path, monkeypatch, capsys, p):
    c = standard_cluster(p)
    c.unreachable = True
    Tools(tmp_path, monkeypatch, c, p)
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--json")
    assert code == 2 and [e["code"] for e in json.loads(out)["errors"]] == ["MCA0421"]  # --json: errors on stdout too
    assert err.startswith("Error MCA0421 the current context: cannot reach the Kubernetes API server (The connection to the server 127.0.0.1:6443 was refused")
    c.unreachable = False
    c.context = "gke_prod"
    t = Tools(tmp_path, monkeypatch, c, p)
    t.reset()
    code, _, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--context", "gke_dve")
    # Refused before istioctl or kubectl starts (MCA1002), naming the contexts that do exist.
    assert code == 2 and err.startswith("Error MCA1002 context gke_dve: not defined in ") and "(c, ctx, gke_acme" in err
    assert not t.calls()


def test_refused_reads_and_garbage_answers_are_exit_2(tmp_path, monkeypatch, capsys, p):
    t = Tools(tmp_path, monkeypatch, standard_cluster(p), p)
    (t.root / "forbidden").write_text("pods")
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl")
    assert (code, out) == (2, "")
    assert err.startswith('Error MCA0422 kubectl get pods -A -o json: kubectl failed: Error from server (Forbidden): pods is forbidden: User "meshca" cannot list')
    (t.root / "forbidden").unlink()
    (t.root / "pods.json").write_text("<html>proxy error</html>")
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl")
    assert code == 2 and err.startswith("Error MCA0425 kubectl get pods -A -o json: expected a Kubernetes JSON object, got invalid JSON")


def test_bad_reference_files_are_exit_2_before_any_call(tmp_path, monkeypatch, capsys, p):
    t = Tools(tmp_path, monkeypatch, standard_cluster(p), p)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    code, out, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--meshca-root", str(junk))
    assert (code, out) == (2, "") and err.startswith(f"Error MCA0412 {junk}: the --meshca-root file holds no usable PEM certificate")
    code, _, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--citadel-root", str(tmp_path / "nope.pem"))
    assert code == 2 and err.startswith("Error MCA0410 ")
    code, _, err = run_cli(capsys, "root-cert", "--source", "istioctl", "--citadel-root", str(tmp_path))  # a directory
    assert code == 2 and err.startswith(f"Error MCA0411 {tmp_path}: cannot read the --citadel-root file: ")
    assert t.calls() == []


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["root-cert", "--require", "ISTIO"], "argument --require: 'ISTIO' is not CITADEL or MESHCA"),
        (["root-cert", "--retiring-deployment", "gateway"], "argument --retiring-deployment: 'gateway' is not NAMESPACE/NAME"),
        (["root-cert", "--retiring-selector", "istio-system/app"], "argument --retiring-selector: 'istio-system/app': 'app' is not key=value"),
        (["root-cert", "--root-cert", "x.pem"], "--root-cert applies to root-of-trust only"),
        (["trust-domain"], "trust-domain needs --fleet-project F"),
        (["root-of-trust"], "root-of-trust needs --root-cert FILE"),
        (["root-cert", "--require", "CITADEL", "--forbid", "CITADEL"], "a root cannot be both required and forbidden"),
        (["root-cert", "--timeout", "0"], "argument --timeout: 0 is outside (0, 3600] seconds"),
    ],
)
def test_usage_errors(capsys, argv, problem):
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("Error MCA0901 ") and problem in err and len(err.splitlines()) == 1


def test_root_of_trust_json_and_exit_codes(tmp_path, monkeypatch, capsys, p):
    t = Tools(tmp_path, monkeypatch, standard_cluster(p), p)
    code, out, err = run_cli(capsys, "root-of-trust", *K[:2], "--source", "istioctl", "--root-cert", str(t.citadel_pem), "--json")
    doc = json.loads(out)
    assert code == 0 and err == ""
    assert list(doc) == ["check", "given", "live", "source", "ok"]
    assert doc["source"] == "cacerts" and doc["given"] == doc["live"] and doc["ok"] is True
    assert t.calls() == [("kubectl", *K[:2], "get", "secret", "cacerts", "-n", "istio-system", "-o", "json")]
    code, out, err = run_cli(capsys, "root-of-trust", "--source", "istioctl", "--root-cert", str(t.meshca_pem), "--json")
    assert code == 1 and json.loads(out)["ok"] is False and err.startswith(f"Error MCA0302 {t.meshca_pem}: root-cert.pem is ")
    Tools(tmp_path, monkeypatch, standard_cluster(p, with_cacerts=False), p)
    code, out, err = run_cli(capsys, "root-of-trust", "--source", "istioctl", "--root-cert", str(t.citadel_pem), "--json")
    assert code == 1 and json.loads(out) == {"check": "root-of-trust", "given": doc["given"], "live": None, "source": None, "ok": False}
    assert err.startswith("Error MCA0303 ")


def test_trust_domain_reads_each_revision_configmap(tmp_path, monkeypatch, capsys, p):
    c = standard_cluster(p)
    c.set_revision("asm-1", "cluster.local", [f"{FLEET}.svc.id.goog"])
    c.set_revision("asm-2", f"{FLEET}.svc.id.goog", ["cluster.local"])
    t = Tools(tmp_path, monkeypatch, c, p)
    code, out, err = run_cli(
        capsys, "trust-domain", "--source", "istioctl", "--citadel-root", str(t.citadel_pem), "--meshca-root", str(t.meshca_pem),
        "--fleet-project", FLEET, "--revision", "asm-1", "--revision", "asm-2",
    )
    assert code == 0, err
    assert out.splitlines()[0] == f" - revision asm-1 (istio-system/istio-asm-1): trustDomain cluster.local, aliases [{FLEET}.svc.id.goog]: accepts both"
    assert " - web-0.shop has trust domain cluster.local on revision asm-1" in out.splitlines()
    assert sorted(x for x in t.calls() if x[2] == "configmap") == [
        ("kubectl", "get", "configmap", "istio-asm-1", "-n", "istio-system", "-o", "json"),
        ("kubectl", "get", "configmap", "istio-asm-2", "-n", "istio-system", "-o", "json"),
    ]


def test_real_process_exit_codes_and_no_traceback(tmp_path, p, mixed):
    """The installed entry point, as an operator runs it: exit codes and one-line errors."""
    root = mixed.write(tmp_path / "cluster")
    log = tmp_path / "calls.log"
    env = fake_env(root, log)
    meshca_pem = tmp_path / "m.pem"
    meshca_pem.write_bytes(p.meshca_root.cert_pem)
    run = lambda *a: subprocess.run([sys.executable, "-m", "meshca", "check", *a], env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    proc = run("root-cert", "--source", "istioctl", "--meshca-root", str(meshca_pem))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert " - cart-0.shop trusts [CITADEL]  FAIL: MCA0444 trusts [CITADEL], missing MESHCA" in proc.stdout
    proc = run("root-cert", "--source", "nope")
    assert proc.returncode == 2 and proc.stderr.startswith("Error MCA0901 ") and "Traceback" not in proc.stderr


def test_progress_goes_to_a_tty_stderr_only(tmp_path, p, mixed):
    """Progress is drawn on stderr when it is a terminal, never on stdout and never in a pipe."""
    import pty

    root = mixed.write(tmp_path / "cluster")
    env = fake_env(root, tmp_path / "calls.log")
    meshca_pem = tmp_path / "m.pem"
    meshca_pem.write_bytes(p.meshca_root.cert_pem)
    argv = [sys.executable, "-m", "meshca", "check", "root-cert", "--source", "istioctl", "--meshca-root", str(meshca_pem), "--json"]

    master, slave = pty.openpty()
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=slave) as proc:
        os.close(slave)
        stdout = proc.stdout.read()
        proc.wait(timeout=60)
    tty_err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        tty_err += chunk
    os.close(master)
    assert proc.returncode == 1
    json.loads(stdout)  # only JSON on stdout, even with a terminal attached
    assert b"checked 6/6 proxies" in tty_err

    piped = subprocess.run(argv, env=env, capture_output=True, timeout=60)
    assert piped.returncode == 1 and b"checked" not in piped.stderr
    assert piped.stderr.decode().splitlines()[-1].startswith("Error MCA0440 ")
