"""A small Kubernetes REST client for the stand-ins: stdlib ``http.client`` + ``ssl`` + PyYAML.

The stand-ins talk to the REAL kube-apiserver the way asmcli's ``kubectl`` calls and istioctl's
client-go calls do: with the kubeconfig (``--kubeconfig`` or ``$KUBECONFIG``) and context
(``--context`` or the kubeconfig's ``current-context``). Supported credentials: a cluster CA
(``certificate-authority[-data]`` or ``insecure-skip-tls-verify``), client certificates
(``client-certificate[-data]``/``client-key[-data]``), a bearer ``token``/``tokenFile`` or
basic auth. Nothing here knows about meshca.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import urllib.parse
from dataclasses import dataclass, field

import yaml


class ApiError(Exception):
    def __init__(self, status: int, body: str, what: str):
        self.status = status
        self.body = body
        try:
            doc = json.loads(body)
            self.reason = doc.get("reason", "")
            self.message = doc.get("message", body)
        except ValueError:
            self.reason = ""
            self.message = body
        super().__init__(f"{what}: {status} {self.reason}: {self.message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _kubeconfig_paths(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.expanduser("~/.kube/config")]


def load_kubeconfig(path: str | None = None) -> tuple[dict, str]:
    """Merge the kubeconfig files as kubectl does (first file wins per name). Returns (doc, first path)."""
    merged: dict = {"clusters": [], "contexts": [], "users": [], "current-context": ""}
    seen: dict[str, set] = {"clusters": set(), "contexts": set(), "users": set()}
    paths = _kubeconfig_paths(path)
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        base = os.path.dirname(os.path.abspath(p))
        for key in ("clusters", "contexts", "users"):
            for item in doc.get(key) or []:
                if item.get("name") in seen[key]:
                    continue
                seen[key].add(item.get("name"))
                item = dict(item)
                item["_base"] = base
                merged[key].append(item)
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    return merged, paths[0]


def _named(items: list[dict], name: str, kind: str) -> dict:
    for item in items:
        if item.get("name") == name:
            return item
    raise KeyError(f'{kind} "{name}" does not exist in the kubeconfig')


@dataclass
class Kube:
    server: str
    ssl_context: ssl.SSLContext
    headers: dict = field(default_factory=dict)
    context_name: str = ""
    cluster_name: str = ""
    kubeconfig_path: str = ""

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> "Kube":
        doc, first = load_kubeconfig(kubeconfig)
        ctx_name = context or doc.get("current-context") or ""
        if not ctx_name:
            raise KeyError("no context given and the kubeconfig has no current-context")
        ctx = _named(doc["contexts"], ctx_name, "context")["context"]
        cluster_item = _named(doc["clusters"], ctx["cluster"], "cluster")
        cluster = cluster_item["cluster"]
        user = _named(doc["users"], ctx["user"], "user").get("user") or {} if ctx.get("user") else {}
        base = cluster_item["_base"]

        def path_of(p: str, b: str) -> str:
            return p if os.path.isabs(p) else os.path.join(b, p)

        sslctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            sslctx.check_hostname = False
            sslctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            sslctx.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        elif cluster.get("certificate-authority"):
            sslctx.load_verify_locations(cafile=path_of(cluster["certificate-authority"], base))
        headers: dict = {}
        user_base = base
        for u in doc["users"]:
            if u.get("name") == ctx.get("user"):
                user_base = u["_base"]
        cert_pem = key_pem = None
        if user.get("client-certificate-data"):
            cert_pem = base64.b64decode(user["client-certificate-data"])
        elif user.get("client-certificate"):
            with open(path_of(user["client-certificate"], user_base), "rb") as fh:
                cert_pem = fh.read()
        if user.get("client-key-data"):
            key_pem = base64.b64decode(user["client-key-data"])
        elif user.get("client-key"):
            with open(path_of(user["client-key"], user_base), "rb") as fh:
                key_pem = fh.read()
        if cert_pem and key_pem:
            with tempfile.TemporaryDirectory() as td:
                cp, kp = os.path.join(td, "c.pem"), os.path.join(td, "k.pem")
                with open(cp, "wb") as fh:
                    fh.write(cert_pem)
                with open(kp, "wb") as fh:
                    fh.write(key_pem)
                sslctx.load_cert_chain(cp, kp)
        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(path_of(user["tokenFile"], user_base), encoding="utf-8") as fh:
                token = fh.read().strip()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif user.get("username"):
            raw = f"{user['username']}:{user.get('password', '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return cls(
            server=cluster["server"].rstrip("/"),
            ssl_context=sslctx,
            headers=headers,
            context_name=ctx_name,
            cluster_name=ctx["cluster"],
            kubeconfig_path=first,
        )

    # -- transport -------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, *, content_type: str = "application/json", query: dict | None = None):
        url = urllib.parse.urlsplit(self.server)
        full = (url.path.rstrip("/") + path) if url.path else path
        if query:
            full += "?" + urllib.parse.urlencode(query)
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=self.ssl_context, timeout=30)
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
        headers = {"Accept": "application/json", **self.headers}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type
        try:
            conn.request(method, full, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if resp.status >= 400:
            raise ApiError(resp.status, raw, f"{method} {path}")
        return json.loads(raw) if raw else {}

    # -- REST paths ------------------------------------------------------------------------
    @staticmethod
    def path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        p = root + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
        return p + (f"/{name}" if name else "")

    def get(self, api_version, plural, name, namespace=None):
        return self.request("GET", self.path(api_version, plural, namespace, name))

    def get_or_none(self, api_version, plural, name, namespace=None):
        try:
            return self.get(api_version, plural, name, namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, api_version, plural, namespace=None, label_selector: str | None = None) -> list[dict]:
        q = {"labelSelector": label_selector} if label_selector else None
        return self.request("GET", self.path(api_version, plural, namespace), query=q).get("items") or []

    def create(self, api_version, plural, obj, namespace=None):
        return self.request("POST", self.path(api_version, plural, namespace), obj)

    def replace(self, api_version, plural, obj, namespace=None):
        return self.request("PUT", self.path(api_version, plural, namespace, obj["metadata"]["name"]), obj)

    def delete(self, api_version, plural, name, namespace=None) -> bool:
        try:
            self.request("DELETE", self.path(api_version, plural, namespace, name))
            return True
        except ApiError as exc:
            if exc.not_found:
                return False
            raise

    def merge_patch(self, api_version, plural, name, patch, namespace=None):
        return self.request("PATCH", self.path(api_version, plural, namespace, name), patch, content_type="application/merge-patch+json")

    def apply(self, api_version: str, plural: str, obj: dict, namespace: str | None = None) -> dict:
        """Create, or replace keeping resourceVersion (what ``kubectl apply``/istioctl's apply end with)."""
        name = obj["metadata"]["name"]
        current = self.get_or_none(api_version, plural, name, namespace)
        if current is None:
            return self.create(api_version, plural, obj, namespace)
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.replace(api_version, plural, obj, namespace)

    def server_version(self) -> dict:
        return self.request("GET", "/version")
