#!/usr/bin/env python3
"""Stand-in for istiod's sidecar-injector webhook server: ONE HTTPS server for every cluster.

    python3 standins/injector.py --listen 127.0.0.1:0 --cert-dir DIR --ready-file FILE

Serves HTTPS with a self-signed serving certificate for the listen host (made here with
``cryptography``; CA in ``DIR/ca.pem``). Once serving it writes
``{"url": "https://127.0.0.1:PORT", "caBundle": "<base64 PEM>", "pid": N}`` to FILE.

Paths, as istiod serves them (istio/istio 1.19.10 pkg/kube/inject/webhook.go):
- ``POST /inject[/K/V...]``: AdmissionReview v1/v1beta1 in, JSONPatch out (WH:995-1060; the path's
  ``K/V`` pairs are ``parseInjectEnvs``, WH:1140-1195). The revision is ``/inject/rev/REV`` (our
  asmcli writes ``clientConfig.url = $MESHCA_STANDIN_INJECTOR_URL/inject/rev/REV``); without it
  the revision is ``default``. Mutation: ``standins/injection.py``.
- ``POST /validate``: Istio config validation is not modelled: every object is allowed.
- ``GET /ready``: 200.

Per-revision values (CA_ADDR, proxyMetadata, trust domain, pilotCertProvider, hub/tag) come from
the revision registry asmcli writes for this injector (``common.injector_registry_dir(URL)/REV.json``,
emptied when the injector starts); a revision not installed by the stand-in asmcli gets the chart
defaults.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import common  # noqa: E402
import injection  # noqa: E402
import pki  # noqa: E402


REGISTRY = {"dir": ""}


def revision_values(revision: str) -> dict:
    path = os.path.join(REGISTRY["dir"], f"{revision}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("injectionValues") or {}
    except (OSError, ValueError):
        return {}


def parse_inject_path(path: str) -> dict[str, str]:
    """WH:1142-1195 parseInjectEnvs for the ``/inject/k1/v1/k2/v2`` form."""
    path = path.split("?", 1)[0].rstrip("/")
    parts = path.split("/", 2)
    res: dict[str, str] = {}
    if len(parts) == 3 and parts[2]:
        kv = parts[2].split("/")
        for i in range(0, len(kv) - 1, 2):
            res[kv[i]] = kv[i + 1].replace("--slash--", "/")
    return res



def validation_problem(obj: dict) -> str | None:
    """The one rule of istiod's config validation modelled here (everything else is allowed):
    istio 1.19.10 pkg/config/validation/validation.go lines 1998-2001 (ValidateAuthorizationPolicy):
    an AuthorizationPolicy with ``action: CUSTOM`` and no ``rules`` is invalid."""
    if obj.get("kind") == "AuthorizationPolicy" and str(obj.get("apiVersion", "")).startswith("security.istio.io/"):
        spec = obj.get("spec") or {}
        if spec.get("action") == "CUSTOM" and not spec.get("rules"):
            return ("CUSTOM action without `rules` is meaningless as it will never be triggered, "
                    "add an empty rule `{}` if you want it be triggered for every request")
    return None

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet unless asked
        if os.environ.get("MESHCA_STANDIN_INJECTOR_VERBOSE"):
            sys.stderr.write("injector: " + (fmt % args) + "\n")

    def _send(self, code: int, body: bytes, ctype: str = "application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/ready") or self.path.startswith("/healthz"):
            self._send(200, b"ok", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            review = json.loads(raw)
        except ValueError as exc:
            self._send(400, f"bad AdmissionReview: {exc}".encode(), "text/plain")
            return
        if self.path.startswith("/inject"):
            params = parse_inject_path(self.path)
            revision = params.get("rev") or "default"
            try:
                out = injection.review_response(review, revision, revision_values(revision))
            except Exception as exc:  # an injector error is an admission error, as toAdmissionResponse
                req = review.get("request") or {}
                out = {
                    "apiVersion": review.get("apiVersion") or "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": req.get("uid", ""), "allowed": False, "status": {"message": f"injection failed: {exc}"}},
                }
            self._log_request(review, out, revision)
            self._send(200, json.dumps(out).encode())
        elif self.path.startswith("/validate"):
            req = review.get("request") or {}
            problem = validation_problem(req.get("object") or {})
            response = {"uid": req.get("uid", ""), "allowed": problem is None}
            if problem is not None:
                # istio 1.19.10 pkg/webhooks/validation/server/server.go (admitPilot): a failed
                # validation is a denial with "configuration is invalid: <error>".
                response["status"] = {"message": f"configuration is invalid: {problem}", "code": 400}
            out = {
                "apiVersion": review.get("apiVersion") or "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": response,
            }
            self._send(200, json.dumps(out).encode())
        else:
            self._send(404, b"not found", "text/plain")

    def _log_request(self, review: dict, out: dict, revision: str):
        path = os.environ.get("MESHCA_STANDIN_LOG")
        if not path:
            return
        req = review.get("request") or {}
        obj = req.get("object") or {}
        meta = obj.get("metadata") or {}
        rec = {
            "tool": "injector",
            "argv": ["POST", self.path],
            "start": common.utcnow(),
            "end": common.utcnow(),
            "exit": 0 if out["response"].get("allowed") else 1,
            "revision": revision,
            "namespace": meta.get("namespace") or req.get("namespace"),
            "name": meta.get("name") or meta.get("generateName"),
            "patched": bool(out["response"].get("patch")),
        }
        import fcntl

        with open(path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(rec) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="stand-in for istiod's injection webhook server")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--cert-dir", required=True)
    p.add_argument("--ready-file", required=True)
    a = p.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    host = host or "127.0.0.1"
    os.makedirs(a.cert_dir, exist_ok=True)
    ca, cert, key = pki.serving_cert(host)
    paths = {n: os.path.join(a.cert_dir, n) for n in ("ca.pem", "tls.crt", "tls.key")}
    for name, data in (("ca.pem", ca), ("tls.crt", cert), ("tls.key", key)):
        with open(paths[name], "wb") as fh:
            fh.write(data)
    os.chmod(paths["tls.key"], 0o600)
    server = ThreadingHTTPServer((host, int(port or 0)), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths["tls.crt"], paths["tls.key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    real_port = server.server_address[1]
    ready = {"url": f"https://{host}:{real_port}", "caBundle": base64.b64encode(ca).decode(), "pid": os.getpid()}
    import shutil

    REGISTRY["dir"] = common.injector_registry_dir(ready["url"])
    shutil.rmtree(REGISTRY["dir"], ignore_errors=True)
    os.makedirs(REGISTRY["dir"], exist_ok=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    tmp = a.ready_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(ready, fh)
    os.replace(tmp, a.ready_file)
    try:
        t.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
