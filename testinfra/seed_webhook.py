"""The HTTPS admission webhook server of the old meshes' seed injectors (testinfra/istio16_injector.py,
testinfra/istio116_injector.py): one server, the injected form given as a function.

TEST INFRASTRUCTURE. The real API server calls it with an ``AdmissionReview`` (admission.k8s.io v1 or
v1beta1, the version the webhook configuration's ``admissionReviewVersions`` lets it choose). On a path
starting with ``/inject`` the request goes to the injection function, whose JSONPatch (if any) is
returned base64-encoded with ``patchType: JSONPatch``; every request, on any path (``/validate`` too), is
allowed, and the response's ``uid`` is the request's. ``GET`` answers 200 (a liveness probe).

Listens on 127.0.0.1 only, with a serving certificate of its own test CA (testinfra/cluster.py ``Pki``),
and writes ``{"url", "caBundle"}`` to the ready file once serving (the webhook configuration's
``clientConfig``).
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

try:
    from testinfra.cluster import Pki
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from testinfra.cluster import Pki

# The AdmissionRequest (``review["request"]``) -> the JSONPatch ops to inject, or None (no injection).
Inject = Callable[[dict], Optional[list]]


def handler(name: str, inject: Inject) -> type[BaseHTTPRequestHandler]:
    """The request handler of webhook NAME (its log prefix) that injects with INJECT."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write(f"{name}: " + (fmt % args) + "\n")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            review = json.loads(self.rfile.read(length) or b"{}")
            req = review.get("request") or {}
            resp = {"uid": req.get("uid", ""), "allowed": True}
            if self.path.split("?")[0].startswith("/inject"):
                ops = inject(req)
                if ops:
                    resp["patchType"] = "JSONPatch"
                    resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            body = json.dumps({"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview",
                               "response": resp}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main(name: str, description: str, injector: Callable[[argparse.Namespace], Inject], argv: list[str] | None = None,
         options: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """``--listen 127.0.0.1:PORT --cert-dir DIR --ready-file FILE`` (plus OPTIONS' own arguments); serves
    ``injector(args)`` until killed."""
    ap = argparse.ArgumentParser(description=description)
    if options is not None:
        options(ap)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--cert-dir", required=True, type=Path)
    ap.add_argument("--ready-file", required=True, type=Path)
    args = ap.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    if host != "127.0.0.1":
        ap.error("listens on 127.0.0.1 only")
    inject = injector(args)
    pki = Pki(args.cert_dir)
    crt, key = pki.issue("serving", name, server=True)
    server = ThreadingHTTPServer((host, int(port)), handler(name, inject))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    url = f"https://{host}:{server.server_address[1]}"
    args.ready_file.write_text(json.dumps({"url": url, "caBundle": base64.b64encode(pki.ca_file.read_bytes()).decode()}))
    server.serve_forever()
    return 0
