"""The e2e seed injectors (testinfra/istio16_injector.py, testinfra/istio116_injector.py) as the API server
calls them: each module's command line, the one HTTPS admission server (testinfra/seed_webhook.py), an
AdmissionReview in, a JSONPatch out. No cluster: the review is posted as the API server would.

Expectations, literal:
- AdmissionReview (Kubernetes admission.k8s.io v1 types.go, AdmissionResponse.UID: "This must be
  copied over from the corresponding AdmissionRequest"; the response's apiVersion is the request's).
- Istio 1.6.14 pkg/kube/inject/webhook.go:616-621: the pod label ``istio.io/rev`` is the revision, the
  empty string for the default install; its ``sidecar.istio.io/status`` has no ``revision``.
- Istio 1.16.7 pkg/kube/inject/webhook.go:317-342: ``sidecar.istio.io/status`` carries ``"revision"``;
  no ``istio.io/rev`` pod label on a sidecar; files/gateway-injection-template.yaml:4-7: a gateway pod
  gets ``istio.io/rev`` (its own label, else the revision), its ``image: auto`` istio-proxy becomes the
  template's (``proxy router``, :15-33) and no init container is added.
- Both skip a pod annotated (1.6) or labelled (1.16) ``sidecar.istio.io/inject: "false"``.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def webhook(tmp_path):
    procs = []

    def start(module: str, *extra: str) -> dict:
        ready = tmp_path / f"{module}.json"
        proc = subprocess.Popen([sys.executable, "-m", module, *extra, "--listen", "127.0.0.1:0", "--cert-dir", str(tmp_path / module),
                                 "--ready-file", str(ready)], cwd=REPO, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, f"{module} wrote no ready file"
            time.sleep(0.05)
        return json.loads(ready.read_text())

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def review(doc: dict, path: str, pod: dict, api: str = "admission.k8s.io/v1") -> dict:
    ctx = ssl.create_default_context(cadata=base64.b64decode(doc["caBundle"]).decode())
    body = {"apiVersion": api, "kind": "AdmissionReview", "request": {"uid": "3b1c-77", "namespace": "frontend", "object": pod}}
    req = urllib.request.Request(doc["url"] + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        out = json.loads(resp.read())
    assert (out["apiVersion"], out["kind"], out["response"]["uid"], out["response"]["allowed"]) == (api, "AdmissionReview", "3b1c-77", True)
    return out["response"]


def patched(resp: dict) -> dict[str, object]:
    """The JSONPatch's values by path (each path once in these patches)."""
    assert resp["patchType"] == "JSONPatch"
    return {op["path"]: op["value"] for op in json.loads(base64.b64decode(resp["patch"]))}


SIDECAR_POD = {"metadata": {"generateName": "frontend-5d9c7-", "labels": {"app": "frontend", "version": "v1"}},
               "spec": {"containers": [{"name": "frontend", "image": "example.invalid/acme/frontend:1.0"}]}}


def test_istio16_injector_injects_the_default_revision(webhook):
    doc = webhook("testinfra.istio16_injector")
    ops = patched(review(doc, "/inject", SIDECAR_POD, api="admission.k8s.io/v1beta1"))
    assert ops["/metadata/labels"]["istio.io/rev"] == ""
    assert "revision" not in json.loads(ops["/metadata/annotations"]["sidecar.istio.io/status"])
    assert ops["/spec/containers/-"]["name"] == "istio-proxy"
    assert [c["name"] for c in ops["/spec/initContainers"]] == ["istio-init"]
    opted_out = {"metadata": {"name": "batch", "annotations": {"sidecar.istio.io/inject": "false"}}, "spec": {"containers": [{"name": "b"}]}}
    assert "patch" not in review(doc, "/inject", opted_out)
    assert "patch" not in review(doc, "/validate", SIDECAR_POD)


def test_istio116_injector_injects_its_revision(webhook):
    doc = webhook("testinfra.istio116_injector", "--revision", "asm-1169-3")
    ops = patched(review(doc, "/inject", SIDECAR_POD))
    assert json.loads(ops["/metadata/annotations"]["sidecar.istio.io/status"])["revision"] == "asm-1169-3"
    assert "istio.io/rev" not in ops["/metadata/labels"]
    assert [c["name"] for c in ops["/spec/containers"]] == ["frontend", "istio-proxy"]
    gateway = {"metadata": {"generateName": "istio-ingressgateway-6f7-",
                            "labels": {"app": "istio-ingressgateway", "istio": "ingressgateway", "sidecar.istio.io/inject": "true"},
                            "annotations": {"inject.istio.io/templates": "gateway"}},
               "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}
    ops = patched(review(doc, "/inject", gateway))
    assert ops["/metadata/labels"]["istio.io/rev"] == "asm-1169-3"
    assert "/spec/initContainers" not in ops
    [proxy] = ops["/spec/containers"]
    assert proxy["name"] == "istio-proxy" and proxy["image"] != "auto" and proxy["args"][:2] == ["proxy", "router"]
    opted_out = {"metadata": {"name": "batch", "labels": {"sidecar.istio.io/inject": "false"}}, "spec": {"containers": [{"name": "b"}]}}
    assert "patch" not in review(doc, "/inject", opted_out)
