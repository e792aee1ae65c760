"""The kube source's direct transport: stdlib HTTPS and websocket-client, no ``kubernetes`` package.

``import kubernetes`` runs the whole package's ``__init__`` (client, config, dynamic, watch,
stream, utils, leaderelection, informer; pydantic, urllib3, requests, oauthlib, dateutil): about
0.3 s of CPU, which on a 100-proxy check is most of meshca's own work. A kubeconfig whose user
is a bearer token or a client certificate needs none of it, so for exactly those this module
makes the same requests itself: the reads over HTTPS (``http.client``), the exec over a
``v4.channel.k8s.io`` websocket (websocket-client, one connection per stream, as
``kubernetes.stream`` opens it). Everything else (exec credential plugins such as
gke-gcloud-auth-plugin, auth providers, basic auth, impersonation, proxies, several kubeconfig
files, plain http, ``tls-server-name``) returns None from ``load`` and the kube source uses the ``kubernetes``
package as before.

Kubeconfig fields read (kubectl's meaning, k8s.io/client-go tools/clientcmd/api/v1 types.go):
``current-context``; the context's ``cluster`` and ``user`` (a ``namespace`` is irrelevant to
these absolute paths); the cluster's ``server``, ``certificate-authority-data`` |
``certificate-authority`` (a path relative to the kubeconfig's directory),
``insecure-skip-tls-verify``; the user's ``token`` | ``tokenFile``,
``client-certificate-data`` | ``client-certificate`` with ``client-key-data`` | ``client-key``.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from ..errors import MeshcaError
from .source import SourceError, SourceTimeout

CLUSTER_KEYS = {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify", "extensions"}
USER_KEYS = {"token", "tokenFile", "client-certificate", "client-certificate-data", "client-key", "client-key-data", "extensions"}
PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
OPCODE_BINARY, OPCODE_TEXT, OPCODE_CLOSE = 0x2, 0x1, 0x8


def _named(entries, name: str) -> dict | None:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def _bytes(section: dict, data_key: str, file_key: str, base: Path) -> bytes | None:
    if section.get(data_key):
        return base64.b64decode(section[data_key])
    if section.get(file_key):
        path = Path(section[file_key]).expanduser()
        return (path if path.is_absolute() else base / path).read_bytes()
    return None


class Direct:
    """Reads and exec streams against one API server with one SSL context (built once)."""

    def __init__(self, server: str, context: ssl.SSLContext, headers: dict[str, str]) -> None:
        parts = urlsplit(server)
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.prefix = parts.path.rstrip("/")
        self.netloc = parts.netloc
        self.context = context
        self.headers = headers

    @classmethod
    def load(cls, kubeconfig: str | None, context: str | None) -> "Direct | None":
        """A transport for this kubeconfig, or None when it needs the ``kubernetes`` package."""
        if any(os.environ.get(k) for k in PROXY_ENV):
            return None
        if kubeconfig:
            files = [kubeconfig]
        else:
            files = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p] or ["~/.kube/config"]
        if len(files) != 1:
            return None  # kubectl's merge of several files: the kubernetes package does it
        path = Path(files[0]).expanduser()
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            ctx = _named(doc.get("contexts"), context or doc.get("current-context") or "")
            ctx = ctx.get("context") if ctx else None
            cluster = _named(doc.get("clusters"), ctx.get("cluster")) if ctx else None
            user = _named(doc.get("users"), ctx.get("user")) if ctx else None
            cluster = cluster.get("cluster") if cluster else None
            user = user.get("user") if user else None
            if not isinstance(cluster, dict) or not isinstance(user, dict) or not user:
                return None
            if set(cluster) - CLUSTER_KEYS or set(user) - USER_KEYS:
                return None
            server = str(cluster.get("server") or "")
            if not server.startswith("https://"):
                return None
            base = path.parent
            ca = _bytes(cluster, "certificate-authority-data", "certificate-authority", base)
            cert = _bytes(user, "client-certificate-data", "client-certificate", base)
            key = _bytes(user, "client-key-data", "client-key", base)
            token = user.get("token")
            if not token and user.get("tokenFile"):
                token = Path(user["tokenFile"]).expanduser().read_text().strip()
        except Exception:  # anything unusual: the kubernetes package loads it (and names its errors)
            return None
        if bool(cert) != bool(key) or not (token or cert):
            return None
        insecure = bool(cluster.get("insecure-skip-tls-verify"))
        tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca.decode() if ca and not insecure else None)
        if insecure:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        if cert:
            with tempfile.TemporaryDirectory(prefix="meshca-kube-") as tmp:
                cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                for target, data in ((cert_file, cert), (key_file, key)):
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                try:
                    tls.load_cert_chain(cert_file, key_file)
                except (ssl.SSLError, OSError):
                    return None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(server, tls, headers)

    # -- reads ------------------------------------------------------------------------------

    def get(self, path: str, timeout: float, where: str) -> tuple[int, str, bytes]:
        """GET ``path``: (status, reason, body); an unreachable server is MCA0421."""
        import http.client

        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        try:
            conn.request("GET", self.prefix + path, headers={**self.headers, "Accept": "application/json", "User-Agent": "meshca"})
            resp = conn.getresponse()
            return resp.status, resp.reason, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise MeshcaError("ApiServerUnreachable", where, reason=" ".join(str(exc).split())[:300] or type(exc).__name__) from None
        finally:
            conn.close()

    # -- exec ------------------------------------------------------------------------------

    def exec(self, path_query: str, protocol: str, timeout: float, where: str) -> tuple[bytes, bytes, bytes]:
        """One exec stream: (stdout, stderr, the error channel's status), read until the close."""
        import websocket

        deadline = time.monotonic() + timeout
        ws = websocket.WebSocket(sslopt={"context": self.context}, skip_utf8_validation=True)
        channels: dict[int, bytearray] = {1: bytearray(), 2: bytearray(), 3: bytearray()}
        try:
            try:
                ws.connect(
                    f"wss://{self.netloc}{self.prefix}{path_query}",
                    header=[f"{k}: {v}" for k, v in self.headers.items()],
                    subprotocols=[protocol],
                    timeout=timeout,
                )
            except websocket.WebSocketBadStatusException as exc:
                raise SourceError(f"exec failed: {' '.join(str(exc).split())[:300]}") from None
            except (websocket.WebSocketTimeoutException, TimeoutError):
                raise SourceTimeout(f"exec did not start within {timeout:g} s") from None
            except (ConnectionRefusedError, OSError) as exc:
                if isinstance(exc, (ConnectionRefusedError, ConnectionResetError)) or "Name or service not known" in str(exc):
                    raise MeshcaError("ApiServerUnreachable", where, reason=" ".join(str(exc).split())[:300]) from None
                raise SourceError(f"exec failed: {' '.join(str(exc).split())[:300]}") from None
            except websocket.WebSocketException as exc:
                raise SourceError(f"exec failed: {' '.join(str(exc).split())[:300]}") from None
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceTimeout(f"pilot-agent request did not finish within {timeout:g} s")
                ws.settimeout(left)
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except (websocket.WebSocketTimeoutException, TimeoutError):
                    raise SourceTimeout(f"pilot-agent request did not finish within {timeout:g} s") from None
                except websocket.WebSocketConnectionClosedException:
                    break
                except (websocket.WebSocketException, OSError) as exc:
                    raise SourceError(f"exec stream broke: {' '.join(str(exc).split())[:300]}") from None
                if opcode == OPCODE_CLOSE:
                    break
                if opcode in (OPCODE_BINARY, OPCODE_TEXT) and data:
                    raw = data if isinstance(data, (bytes, bytearray)) else str(data).encode()
                    if raw[0] in channels:
                        channels[raw[0]] += raw[1:]
        finally:
            try:
                ws.shutdown()  # no close handshake: the peer has closed, or we gave up on it
            except Exception:
                pass
        return bytes(channels[1]), bytes(channels[2]), bytes(channels[3])
