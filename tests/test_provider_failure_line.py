"""A dynamic provider's failure reaches the engine as its coded line, not a traceback.

The SDK's dynamic provider host turns an exception into the gRPC error details with
``_abort_with_traceback`` (pulumi 3.272.0 ``pulumi/dynamic/__main__.py`` lines 81-86:
``context.abort(grpc.StatusCode.UNKNOWN, traceback.format_exc())``); the engine prints those
details as the resource's error. The module cannot be imported (it starts the gRPC server at
import), so this test compiles that very function out of the installed SDK's source and runs
it, in a child process whose ``sys.argv[0]`` is the host's (``python -m pulumi.dynamic``), around
the real TrustGateProvider.create of a gate whose kubeconfig does not exist.
Expected (README "Every problem is one line"): the details' first line is
``Error MCA1001 <kubeconfig>: ...; fix: ...`` and no line says ``Traceback``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pulumi

SDK_HOST = Path(pulumi.__file__).parent / "dynamic" / "__main__.py"

CHILD = r'''
import ast, json, sys, traceback
sys.argv[0] = HOST  # what `python -m pulumi.dynamic` sets
src = open(HOST).read()
fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "_abort_with_traceback")
class StatusCode:
    UNKNOWN = "UNKNOWN"
class grpc:
    StatusCode = StatusCode
ns = {"traceback": traceback, "grpc": grpc}
exec(compile(ast.Module(body=[fn], type_ignores=[]), HOST, "exec"), ns)
class Aborted(Exception):
    pass
class Context:
    def abort(self, code, details):
        self.code, self.details = code, details
        raise Aborted()
from meshca.providers.trust_gate import TrustGateProvider
class Servicer:
    @ns["_abort_with_traceback"]
    def Create(self, request, context):
        return TrustGateProvider().create(request)
ctx = Context()
try:
    Servicer().Create(PROPS, ctx)
except Aborted:
    pass
print(json.dumps({"code": ctx.code, "details": ctx.details}))
'''

LINE = re.compile(r"^(Error|Warning|Info) MCA\d{4} [^:]+: .+; fix: .+$")


def _props(tmp_path: Path) -> dict:
    root = tmp_path / "root-cert.pem"
    root.write_text("not read: the kubeconfig check comes first\n")
    return {
        "gateId": "A3.gate.root-cert", "stack": "dev", "phase": "distribute-root", "cluster": "dev-1",
        "context": "", "kubeconfig": str(tmp_path / "missing" / "kubeconfig"), "check": "root-cert",
        "require": ["CITADEL", "MESHCA"], "forbid": [], "retiringDeployments": [], "retiringSelectors": [],
        "citadelRoot": str(root), "meshcaRoot": str(root), "rootCert": "", "fleetProject": "", "revisions": [],
        "source": "istioctl", "concurrency": 8, "timeoutSeconds": 1, "pollSeconds": 0.1,
        "namespaceDigest": "x", "restartGeneration": 1, "peers": [],
    }


def _run(tmp_path: Path, extra_env: dict | None = None) -> dict:
    import os

    code = f"HOST = {str(SDK_HOST)!r}\nPROPS = {json.dumps(_props(tmp_path))}\n" + CHILD
    env = {**os.environ, **(extra_env or {})}
    env.pop("MESHCA_DEBUG", None) if not extra_env or "MESHCA_DEBUG" not in extra_env else None
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_gate_failure_in_the_provider_host_is_the_coded_line(tmp_path):
    out = _run(tmp_path)
    details = out["details"]
    assert out["code"] == "UNKNOWN"
    first = details.splitlines()[0]
    assert LINE.match(first), details
    assert first.startswith("Error MCA1001 "), details
    assert "Traceback" not in details and 'File "' not in details, details
    assert "A3.gate.root-cert" in details  # which gate: on the context line


def test_meshca_debug_keeps_the_traceback(tmp_path):
    out = _run(tmp_path, {"MESHCA_DEBUG": "1"})
    assert out["details"].startswith("Traceback (most recent call last):")
    assert "MCA1001" in out["details"]
