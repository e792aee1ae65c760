"""A minimal Kubernetes REST client (stdlib only) for the launcher and the node agent.

Client-certificate auth against one API server on loopback; JSON in and out; watches read
line by line. Test infrastructure: it knows nothing about meshca.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any, Iterator


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        try:
            doc = json.loads(body)
            self.reason = doc.get("reason", "")
            message = doc.get("message", body)
        except ValueError:
            self.reason = ""
            message = body
        super().__init__(f"{method} {path}: HTTP {status} {self.reason}: {message[:500]}")


@dataclass(frozen=True)
class Endpoint:
    """Where an API server is and how to authenticate to it (files on disk)."""

    host: str
    port: int
    ca_file: str
    cert_file: str
    key_file: str

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"


class Kube:
    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        ctx = ssl.create_default_context(cafile=endpoint.ca_file)
        ctx.load_cert_chain(endpoint.cert_file, endpoint.key_file)
        self._ssl = ctx

    def _conn(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.endpoint.host, self.endpoint.port, context=self._ssl, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict:
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body).encode()
        conn = self._conn(timeout or self.timeout)
        try:
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if resp.status >= 300:
            raise ApiError(method, path, resp.status, raw)
        if not raw:
            return {}
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(raw)
        return {"text": raw}  # /readyz, /healthz answer text/plain

    def get(self, path: str, **query: Any) -> dict:
        return self.request("GET", path, query=query or None)

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: dict | None = None) -> dict:
        return self.request("DELETE", path, body)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 300) -> Iterator[dict]:
        """Events of one watch request; ends when the server closes it (or raises on error)."""
        query = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": str(timeout_seconds), "allowWatchBookmarks": "true"}
        full = f"{path}?{urllib.parse.urlencode(query)}"
        conn = self._conn(timeout_seconds + 30)
        try:
            conn.request("GET", full, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status >= 300:
                raise ApiError("GET", full, resp.status, resp.read().decode("utf-8", "replace"))
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.strip()
                if line:
                    yield json.loads(line)
        finally:
            conn.close()
