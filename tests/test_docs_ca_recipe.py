"""docs/ca-files.md's recipes, run as written: the shell block between its recipe markers
runs under bash with a kubectl stand-in that answers `get secret NAME -o go-template={{index
.data "KEY"}}` the way kubectl does (the Secret's base64 value, no newline), for Secrets shaped
as Istio writes them:

- Istio on GKE's istio-ca-secret: type istio.io/ca-root with five keys, only ca-cert.pem and
  ca-key.pem filled (istio/istio release-1.6 security/pkg/pki/ca/ca.go line 164,
  security/pkg/k8s/secret/secret_util.go lines 40-62);
- a plugged-in cacerts: the four keys asmcli creates from the files' base names
  (anthos-service-mesh-packages 1.19.10-asm.9+config1 asmcli/asmcli lines 1671-1675).

The files the recipe leaves must pass `meshca certs verify` (which the recipe runs last), carry
the names asmcli needs, and keep the key 0600."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT
from meshca import pki

DOC = ROOT / "docs" / "ca-files.md"

FAKE_KUBECTL = r'''#!/usr/bin/env python3
import json, os, re, sys
args = sys.argv[1:]
log = open(os.environ["FAKE_KUBECTL_LOG"], "a")
log.write(json.dumps(args) + "\n")
def opt(name):
    return args[args.index(name) + 1] if name in args else None
if not opt("--context") or opt("-n") != "istio-system" or args[args.index("-n") + 2 : args.index("-n") + 4] != ["get", "secret"]:
    sys.exit("fake kubectl: unexpected command line")
name = args[args.index("secret") + 1]
secrets = json.load(open(os.environ["FAKE_SECRETS"]))
if name not in secrets:
    sys.stderr.write(f'Error from server (NotFound): secrets "{name}" not found\n'); sys.exit(1)
m = re.fullmatch(r'go-template=\{\{index \.data "([^"]+)"\}\}', opt("-o") or "")
if not m:
    sys.exit("fake kubectl: unexpected -o " + str(opt("-o")))
sys.stdout.write(secrets[name]["data"].get(m.group(1), "<no value>"))
'''


def recipe(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    block = text.split(f"<!-- recipe:{marker}:begin -->", 1)[1].split(f"<!-- recipe:{marker}:end -->", 1)[0]
    m = re.search(r"```sh\n(.*?)```", block, re.S)
    assert m, f"no sh block in recipe {marker}"
    return m.group(1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def run_recipe(tmp_path: Path, marker: str, secrets: dict) -> subprocess.CompletedProcess:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".venv").symlink_to(Path(sys.prefix))  # the recipe runs .venv/bin/meshca
    bindir = tmp_path / "bin"
    bindir.mkdir()
    kubectl = bindir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.replace("#!/usr/bin/env python3", f"#!{sys.executable}", 1))
    kubectl.chmod(0o755)
    (tmp_path / "secrets.json").write_text(json.dumps(secrets))
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "FAKE_SECRETS": str(tmp_path / "secrets.json"), "FAKE_KUBECTL_LOG": str(tmp_path / "kubectl.log")}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", recipe(marker)], cwd=project, env=env, capture_output=True, text=True, timeout=120)


def _check_files(tmp_path: Path, expect: dict[str, bytes]) -> None:
    certs = tmp_path / "project" / "certs"
    assert sorted(p.name for p in certs.iterdir()) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    for name, content in expect.items():
        assert (certs / name).read_bytes() == content, name
    assert stat.S_IMODE((certs / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700


def test_istio_on_gke_recipe_from_istio_ca_secret(tmp_path):
    # Citadel's self-signed CA has subject O=cluster.local only (no CN)
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ca = pki.make_root("", subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")]))
    secrets = {
        "istio-ca-secret": {
            "type": "istio.io/ca-root",
            "data": {"ca-cert.pem": b64(ca.cert_pem), "ca-key.pem": b64(ca.key_pem), "cert-chain.pem": "", "key.pem": "", "root-cert.pem": ""},
        }
    }
    proc = run_recipe(tmp_path, "istio-on-gke", secrets)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.startswith("meshca certs verify: PASS")
    _check_files(tmp_path, {"ca-cert.pem": ca.cert_pem, "ca-key.pem": ca.key_pem, "root-cert.pem": ca.cert_pem, "cert-chain.pem": ca.cert_pem})
    calls = [json.loads(line) for line in (tmp_path / "kubectl.log").read_text().splitlines()]
    assert [c[c.index("secret") + 1] for c in calls] == ["istio-ca-secret", "istio-ca-secret"]


def test_plugged_in_recipe_from_cacerts(tmp_path):
    root = pki.make_root("Root CA", org="acme")
    ca = pki.make_intermediate("Intermediate CA", root, org="acme")
    chain = ca.cert_pem + root.cert_pem
    secrets = {
        "cacerts": {
            "type": "Opaque",
            "data": {"ca-cert.pem": b64(ca.cert_pem), "ca-key.pem": b64(ca.key_pem), "root-cert.pem": b64(root.cert_pem), "cert-chain.pem": b64(chain)},
        }
    }
    proc = run_recipe(tmp_path, "cacerts", secrets)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.startswith("meshca certs verify: PASS")
    _check_files(tmp_path, {"ca-cert.pem": ca.cert_pem, "ca-key.pem": ca.key_pem, "root-cert.pem": root.cert_pem, "cert-chain.pem": chain})


def test_the_recipe_stops_when_the_secret_is_absent(tmp_path):
    proc = run_recipe(tmp_path, "istio-on-gke", {})
    assert proc.returncode != 0 and 'secrets "istio-ca-secret" not found' in proc.stderr
