"""The stand-ins bench/check_bench.py runs Google's migrate_ca check-root-cert against: the fake
kubectl/istioctl answer its exact command lines as the real tools print them, and the bench's
transcription of its calls is what it would make. Expected outputs are transcribed from the tools'
sources (cited), never computed with meshca code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fakes.trust_cluster import FAKE_BIN, fake_env, make_pki, sidecar_dump, standard_cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import check_bench  # noqa: E402


def run(env, *argv):
    proc = subprocess.run([str(FAKE_BIN / argv[0]), *argv[1:]], env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_migrate_ca_lines(tmp_path):
    p = make_pki()
    c = standard_cluster(p)
    c.add_pod("plain", "no-mesh", proxy=False)
    root = check_bench.write_cluster(c, tmp_path / "cluster")
    env = fake_env(root, tmp_path / "log", 0.0)
    # kubectl jsonpath: matches separated by one space, no trailing newline (client-go
    # util/jsonpath/jsonpath.go:146-193); text outside the braces ("=") printed as is
    assert run(env, "kubectl", "get", "ns", "-o", "jsonpath={.items..metadata.name}")[1] == "default istio-system kube-system kube-public kube-node-lease shop plain"
    assert run(env, "kubectl", "get", "pod", "-o", "jsonpath={.items..metadata.name}", "-n", "shop")[1] == "web-0 web-1"
    assert run(env, "kubectl", "get", "pod", "web-0", "-n", "shop", "-o", "jsonpath=={.spec.containers.*.name}")[1] == "=app istio-proxy"
    assert run(env, "kubectl", "get", "pod", "no-mesh", "-n", "plain", "-o", "jsonpath=={.spec.containers.*.name}")[1] == "=app"
    code, _, err = run(env, "kubectl", "get", "pod", "gone", "-n", "shop", "-o", "jsonpath=={.spec.containers.*.name}")
    assert code == 1 and err == 'Error from server (NotFound): pods "gone" not found\n'
    assert run(env, "istioctl")[0] == 0 and run(env, "kubectl", "version")[0] == 0
    # istioctl 1.10.6 writer.go:65 columns; ROOTCA's 5th field is the first root's decimal serial
    table = run(env, "istioctl", "pc", "secret", "web-0", "-n", "shop")[1].splitlines()
    assert table[0].split() == ["RESOURCE", "NAME", "TYPE", "STATUS", "VALID", "CERT", "SERIAL", "NUMBER", "NOT", "AFTER", "NOT", "BEFORE"]
    rootca = next(l for l in table if l.startswith("ROOTCA"))
    assert rootca.split()[1:5] == ["CA", "ACTIVE", "true", str(p.citadel_root.cert.serial_number)]
    default = next(l for l in table if l.startswith("default"))
    assert default.split()[1:4] == ["Cert", "Chain", "ACTIVE"]
    assert run(env, "istioctl", "pc", "secret", "web-0", "-n", "shop", "-o", "json")[1].encode() == c.dumps[("shop", "web-0")]


def test_transcribed_calls(tmp_path):
    """migrate_ca:155-166 and :174-182: every namespace but the kube-* three, every pod's
    containers, the table for meshed pods only, the JSON dump once per first-root serial."""
    p = make_pki()
    c = standard_cluster(p)
    c.add_pod("plain", "no-mesh", proxy=False)
    c.add_pod("shop", "web-2", dump=sidecar_dump(p.citadel_chain("shop", "web"), p.citadel_root.cert_pem))
    calls = check_bench.migrate_ca_calls(c)
    assert calls[:3] == [("istioctl",), ("kubectl", "version"), ("kubectl", "get", "ns", "-o", "jsonpath={.items..metadata.name}")]
    lists = [x[-1] for x in calls if x[:5] == ("kubectl", "get", "pod", "-o", "jsonpath={.items..metadata.name}")]
    assert lists == ["default", "istio-system", "shop", "plain"]
    assert sum(1 for x in calls if x[-1] == "jsonpath=={.spec.containers.*.name}") == 4
    assert sum(1 for x in calls if x[:3] == ("istioctl", "pc", "secret") and len(x) == 6) == 3
    # web-0, web-1 and web-2 all start with the Citadel root: one JSON read (the serial cache)
    assert [x for x in calls if x[-2:] == ("-o", "json")] == [("istioctl", "pc", "secret", "web-0", "-n", "shop", "-o", "json")]
