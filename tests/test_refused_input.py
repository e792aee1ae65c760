"""Input meshca used to accept silently is refused with one coded line (issue 12):
batches beside batchSize (MCA1000), a kubeconfig file or context that does not exist where a
command needs the cluster (MCA1001, MCA1002), a --traffic rule naming nothing (MCA1003)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import yaml

from meshca.cli import main

from harness import ROOT

CODED = re.compile(r"^(Error|Warning|Info) MCA\d{4} \S.*?: .+; fix: .+$")

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "dev-1", "context": {"cluster": "c", "user": "u"}}, {"name": "dev-2", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "dev-1",
}


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- MCA1000


def _stack(tmp_path: Path, mutate) -> Path:
    from hardening import stack_copy

    return stack_copy(tmp_path, "dev", mutate)


def test_batches_beside_batch_size_is_refused(tmp_path, capsys):
    path = _stack(tmp_path, lambda c: c.update({"meshca:batches": [list(c["meshca:namespaces"])]}))
    rc, out, err = run(capsys, "plan", "--config", str(path))
    assert rc == 2 and out == ""
    assert err.startswith("Error MCA1000 meshca:batchSize: set to 3 beside meshca:batches") and len(err.splitlines()) == 1
    assert CODED.match(err.strip())


def test_batch_size_defaults_to_one_in_the_program_not_in_pulumi_yaml(tmp_path):
    from meshca.config import from_pulumi_config, load_stack_file

    assert "batchSize" not in yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]  # not even without a default
    path = _stack(tmp_path, lambda c: c.pop("meshca:batchSize"))
    config = load_stack_file(path)
    assert config.batch_size == 1 and config.batches is None
    # The engine's map holds only what the stack file sets (no project default for batchSize):
    # prod sets batches alone and is accepted.
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    assert "meshca:batchSize" not in engine and from_pulumi_config(engine, "prod", ROOT).batches


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "csm116"])
def test_every_shipped_stack_sets_at_most_one_of_batches_and_batch_size(stack):
    from meshca.config import load_stack

    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert not ("meshca:batches" in raw and "meshca:batchSize" in raw)
    load_stack(ROOT, stack)  # valid


# ----------------------------------------------------------------------------- MCA1001, MCA1002


@pytest.fixture
def tripwire(tmp_path, monkeypatch):
    """kubectl and istioctl on PATH that record being started (they must not be)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    marker = tmp_path / "started"
    for tool in ("kubectl", "istioctl"):
        exe = bindir / tool
        exe.write_text(f"#!/bin/sh\necho {tool} >> {marker}\nexit 1\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return marker


CLUSTER_COMMANDS = [
    ["restart", "--namespace", "shop", "--revision", "asm-1"],
    ["preflight", "--revision", "asm-1"],
    ["mesh-config", "drop-root", "--revision", "asm-1", "--root-cert", str(ROOT / "samples" / "certs" / "root-cert.pem")],
    ["webhooks", "strays", "--label", "istio-injection=enabled"],
    ["webhooks", "verify", "--revision", "asm-1"],
    ["gateway", "ready", "--namespace", "istio-system", "--deployment", "gw", "--service", "gw", "--name", "gw-canary", "--revision", "asm-1"],
    ["check", "root-cert"],
    ["check", "root-cert", "--source", "istioctl"],
    ["check", "root-of-trust", "--root-cert", str(ROOT / "samples" / "certs" / "root-cert.pem")],
]


@pytest.mark.parametrize("command", CLUSTER_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_missing_kubeconfig_file_is_one_line_and_nothing_starts(tmp_path, capsys, tripwire, command):
    missing = tmp_path / "nope.kubeconfig"
    rc, out, err = run(capsys, *command, "--kubeconfig", str(missing), "--context", "dev-1")
    assert (rc, out) == (2, ""), err
    assert err == f"Error MCA1001 {missing}: no such kubeconfig file (--kubeconfig); fix: pass an existing file with --kubeconfig (or set KUBECONFIG to one); for a stack, correct meshca:clusters[].kubeconfig\n"
    assert not tripwire.exists()


@pytest.mark.parametrize("command", CLUSTER_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unknown_context_is_one_line_naming_the_known_ones(tmp_path, capsys, tripwire, command):
    kc = tmp_path / "kc.yaml"
    kc.write_text(yaml.safe_dump(KUBECONFIG))
    rc, out, err = run(capsys, *command, "--kubeconfig", str(kc), "--context", "dev-3")
    assert (rc, out) == (2, ""), err
    assert err.startswith(f"Error MCA1002 context dev-3: not defined in {kc}; fix: pass one of its contexts with --context (dev-1, dev-2)")
    assert CODED.match(err.strip()) and not tripwire.exists()


def test_kubeconfig_from_the_environment_and_the_default(tmp_path, capsys, tripwire, monkeypatch):
    kc = tmp_path / "kc.yaml"
    kc.write_text(yaml.safe_dump(KUBECONFIG))
    # $KUBECONFIG: missing files in the list are skipped (as kubectl skips them); contexts merge.
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'gone.yaml'}:{kc}")
    rc, _, err = run(capsys, "restart", "--context", "dev-9", "--namespace", "shop", "--revision", "asm-1")
    assert rc == 2 and err.startswith(f"Error MCA1002 context dev-9: not defined in {kc};")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone.yaml"))
    rc, _, err = run(capsys, "restart", "--context", "dev-1", "--namespace", "shop", "--revision", "asm-1")
    assert rc == 2 and err.startswith(f"Error MCA1001 {tmp_path / 'gone.yaml'}: no such kubeconfig file ($KUBECONFIG)")
    monkeypatch.delenv("KUBECONFIG")
    rc, _, err = run(capsys, "restart", "--namespace", "shop", "--revision", "asm-1")
    assert rc == 2 and err.startswith(f"Error MCA1001 {tmp_path / 'home' / '.kube' / 'config'}: no such kubeconfig file (the default)")
    assert not tripwire.exists()
    # With the file and the context present, the tool runs (and here fails on its own terms).
    rc, _, err = run(capsys, "restart", "--kubeconfig", str(kc), "--context", "dev-2", "--namespace", "shop", "--revision", "asm-1")
    assert tripwire.read_text().startswith("kubectl") and "MCA100" not in err


def test_json_errors_for_a_missing_kubeconfig(tmp_path, capsys, tripwire):
    rc, out, err = run(capsys, "check", "root-cert", "--kubeconfig", str(tmp_path / "x"), "--json")
    assert rc == 2 and [e["code"] for e in json.loads(out)["errors"]] == ["MCA1001"]


# ----------------------------------------------------------------------------- MCA1003

SMALL = ["--clusters", "1", "--namespaces", "2", "--workloads", "1", "--quiet"]


@pytest.mark.parametrize(
    "edge,side,pattern",
    [
        ("{from: frontend/api, to: payments/api}", "to", "*/payments/api"),
        ("{from: frontend/web, to: cart/api}", "from", "*/frontend/web"),
        ("{from: cluster-9/frontend/api, to: cart/api}", "from", "cluster-9/frontend/api"),
    ],
)
def test_a_traffic_rule_naming_nothing_is_refused_before_any_step(capsys, tmp_path, edge, side, pattern):
    edges = tmp_path / "edges.yaml"
    edges.write_text(f"edges:\n  - {{from: frontend/api, to: cart/api}}\n  - {edge}\n")
    rc, out, err = run(capsys, "rehearse", "--traffic", str(edges), *SMALL)
    assert rc == 2 and out == ""
    assert err.startswith(f"Error MCA1003 {edges} edges[1].{side}: '{pattern}' matches no application workload of the rehearsed mesh (clusters cluster-1; namespaces cart, frontend; workloads api)")
    assert len(err.splitlines()) == 1 and CODED.match(err.strip())


def test_wildcards_that_match_are_accepted(capsys, tmp_path):
    edges = tmp_path / "edges.yaml"
    edges.write_text("edges:\n  - {from: '*/*', to: 'cart/a*'}\ngateways: false\n")
    rc, out, err = run(capsys, "rehearse", "--traffic", str(edges), "--json", *SMALL)
    assert rc == 0, err
