"""A loopback Kubernetes API server (HTTPS, threaded, on 127.0.0.1) for the kube source's tests.

It speaks exactly the part of the Kubernetes API that ``meshca check --source kube`` must use
and answers 404 (unknown path) or 400 (known path, wrong query, method or protocol) to
anything else, so a client that drifts from the contract fails the tests:

  GET /api/v1/namespaces                                  (no query)
  GET /api/v1/pods | /api/v1/namespaces/NS/pods           (no query)
  GET /api/v1/namespaces/NS/secrets/NAME                  404 Status when absent
  GET /api/v1/namespaces/NS/configmaps/NAME               404 Status when absent
  GET /api/v1/namespaces/NS/pods/POD/exec?<EXEC_QUERY>    websocket, subprotocol v4.channel.k8s.io

The cluster is a directory in the layout of tests/fakes/trust_cluster.py, re-read on every
request (tests change it while a gate polls; a parsed pods.json is reused only while its
mtime and size are unchanged, so a 1,000-pod cluster does not cost a JSON parse per exec).
Authentication: a bearer token; TLS: a server certificate for IP 127.0.0.1 from a throwaway CA,
given to the client in a kubeconfig. ``delay`` sleeps that long in every request (a round trip).

The listen backlog is the kernel's somaxconn, as a Go server's (the real kube-apiserver's):
Go's net.Listen passes maxListenerBacklog(), read from /proc/sys/net/core/somaxconn
(go/src/net/sock_linux.go:33-37); socketserver's default of 5 would drop SYNs from a client
opening dozens of exec streams at once and stall each by a 1 s retransmit.

Run as a script (``python tests/kube_api_server.py --cluster DIR --delay 0.2 --info FILE``) it
serves from its own process, writes {kubeconfig, port, pid} to FILE, and on SIGTERM writes
{cpu, requests, execs} next to it, so a benchmark can state the stand-in's CPU per request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import socket
import ssl
import struct
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EXEC_QUERY = (
    "command=pilot-agent&command=request&command=GET&command=config_dump%3Fmask%3Ddynamic_active_secrets"
    "&container=istio-proxy&stderr=true&stdout=true"
)
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUBPROTOCOL = "v4.channel.k8s.io"
FRAME_CHUNK = 16 * 1024  # stdout is sent in several frames, as the kubelet does for big outputs


def _tls_material(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (files: ca, cert, key)."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback-kube-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def _status(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}).encode()


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server-to-client websocket frame (RFC 6455 5.2)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall
    server: "_Server"

    def log_message(self, fmt, *args):  # quiet: the server keeps its own request log
        pass

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cluster(self) -> Path:
        return self.server.owner.cluster_dir

    def _file(self, *parts: str) -> bytes | None:
        path = self._cluster().joinpath(*parts)
        return path.read_bytes() if path.is_file() else None

    def do_POST(self):  # noqa: N802 - exec must be a GET websocket upgrade
        self._record()
        self._send(400, _status(400, "BadRequest", f"meshca's client must not {self.command} {self.path}"))

    do_PUT = do_PATCH = do_DELETE = do_POST

    def _record(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.requests.append((self.command, self.path))

    def do_GET(self):  # noqa: N802
        self._record()
        owner = self.server.owner
        if self.headers.get("Authorization") != f"Bearer {owner.token}":
            return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
        if owner.delay:
            time.sleep(owner.delay)
        path, _, query = self.path.partition("?")
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return self._send(404, _status(404, "NotFound", f"the server could not find the requested resource ({path})"))
        rest = parts[2:]
        # exec is the only route with a query string
        if len(rest) == 5 and rest[0] == "namespaces" and rest[2] == "pods" and rest[4] == "exec":
            return self._exec(rest[1], rest[3], query)
        if query:
            return self._send(400, _status(400, "BadRequest", f"unexpected query {query!r} on {path}"))
        if rest == ["namespaces"]:
            return self._send(200, self._file("namespaces.json"))
        if rest == ["pods"]:
            return self._send(200, self._file("pods.json"))
        if len(rest) == 3 and rest[0] == "namespaces" and rest[2] == "pods":
            doc = json.loads(self._file("pods.json"))
            doc["items"] = [p for p in doc["items"] if p["metadata"]["namespace"] == rest[1]]
            return self._send(200, json.dumps(doc).encode())
        if len(rest) == 4 and rest[0] == "namespaces" and rest[2] in ("secrets", "configmaps"):
            body = self._file(rest[2], rest[1], rest[3] + ".json")
            if body is None:
                return self._send(404, _status(404, "NotFound", f'{rest[2]} "{rest[3]}" not found'))
            return self._send(200, body)
        return self._send(404, _status(404, "NotFound", f"the server could not find the requested resource ({path})"))

    # -- exec over websocket ----------------------------------------------------------------

    def _exec(self, ns: str, pod: str, query: str) -> None:
        if query != EXEC_QUERY:
            return self._send(400, _status(400, "BadRequest", f"exec query is {query!r}, expected {EXEC_QUERY!r}"))
        if self.headers.get("Upgrade", "").lower() != "websocket" or not self.headers.get("Sec-WebSocket-Key"):
            return self._send(400, _status(400, "BadRequest", "exec needs a websocket upgrade"))
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if SUBPROTOCOL not in offered:
            return self._send(400, _status(400, "BadRequest", f"subprotocols {offered} do not include {SUBPROTOCOL}"))
        match = self.server.owner.pod_index().get((ns, pod))
        if match is None:
            return self._send(404, _status(404, "NotFound", f'pods "{pod}" not found'))
        spec = match.get("spec") or {}
        names = [c["name"] for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]
        if "istio-proxy" not in names:
            return self._send(400, _status(400, "BadRequest", f"container istio-proxy is not valid for pod {pod}"))
        owner = self.server.owner
        with owner.lock:
            owner.execs.append((ns, pod, tuple(offered)))
            owner.exec_inflight += 1
            owner.exec_peak = max(owner.exec_peak, owner.exec_inflight)
        try:
            self._stream(ns, pod)
        finally:
            with owner.lock:
                owner.exec_inflight -= 1

    def _stream(self, ns: str, pod: str) -> None:
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", SUBPROTOCOL)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        base = self._cluster() / "dumps" / ns
        delay = base / f"{pod}.delay"
        if delay.exists():
            time.sleep(float(delay.read_text()))
        err = base / f"{pod}.err"
        dump = base / f"{pod}.json"
        try:
            if err.exists() or not dump.exists():
                text = err.read_bytes() if err.exists() else b"Error: no config dump\n"
                self.wfile.write(_frame(0x2, b"\x02" + text))
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": "command terminated with non-zero exit code: error executing command [pilot-agent request GET config_dump?mask=dynamic_active_secrets], exit code 1",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": "1"}]},
                }
            else:
                data = dump.read_bytes()
                for i in range(0, len(data), FRAME_CHUNK):
                    self.wfile.write(_frame(0x2, b"\x01" + data[i : i + FRAME_CHUNK]))
                status = {"metadata": {}, "status": "Success"}
            self.wfile.write(_frame(0x2, b"\x03" + json.dumps(status).encode()))
            self.wfile.write(_frame(0x8, struct.pack("!H", 1000)))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass  # the client gave up (timeout test): nothing to tell


def _somaxconn() -> int:
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return socket.SOMAXCONN


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = _somaxconn()
    owner: "KubeApiServer"


class KubeApiServer:
    """``with KubeApiServer(cluster_dir) as api: api.kubeconfig`` -> a kubeconfig for it."""

    def __init__(self, cluster_dir: Path, *, context: str = "loopback", delay: float = 0.0) -> None:
        self.cluster_dir = Path(cluster_dir)
        self.context = context
        self.delay = delay
        self.token = secrets.token_hex(16)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.execs: list[tuple[str, str, tuple[str, ...]]] = []
        self.exec_inflight = 0
        self.exec_peak = 0  # the most exec streams open at once
        self._pods_key: tuple[int, int, int] | None = None
        self._pods_index: dict[tuple[str, str], dict] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="kube-api-")
        self.dir = Path(self._tmp.name)
        ca, cert, key = _tls_material(self.dir)
        self.ca_path = ca
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.kubeconfig = self.write_kubeconfig(self.dir / "kubeconfig", f"https://127.0.0.1:{self.port}")
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api", daemon=True)

    def write_kubeconfig(self, path: Path, server: str) -> str:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "loopback", "cluster": {"server": server, "certificate-authority-data": base64.b64encode(self.ca_path.read_bytes()).decode()}}],
            "users": [{"name": "tester", "user": {"token": self.token}}],
            "contexts": [{"name": self.context, "context": {"cluster": "loopback", "user": "tester"}}],
            "current-context": self.context,
        }
        path.write_text(yaml.safe_dump(doc))
        os.chmod(path, 0o600)
        return str(path)

    def pod_index(self) -> dict[tuple[str, str], dict]:
        """(namespace, name) -> pod, from pods.json; re-parsed whenever the file changed."""
        path = self.cluster_dir / "pods.json"
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self.lock:
            if key == self._pods_key:
                return self._pods_index
        items = json.loads(path.read_bytes())["items"]
        index = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in items}
        with self.lock:
            self._pods_key, self._pods_index = key, index
        return index

    def start(self) -> "KubeApiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> "KubeApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.requests)


def _serve_main(argv: list[str] | None = None) -> int:
    """Serve a cluster directory from this process until SIGTERM (see the module docstring)."""
    import argparse
    import signal

    ap = argparse.ArgumentParser(description="loopback Kubernetes API server for meshca's tests and benchmark")
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--info", required=True, help="JSON file to write {kubeconfig, port, pid} to")
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with KubeApiServer(Path(args.cluster), delay=args.delay) as api:
        kubeconfig = Path(args.info).with_suffix(".kubeconfig")
        api.write_kubeconfig(kubeconfig, f"https://127.0.0.1:{api.port}")
        cpu0 = time.process_time()
        tmp = Path(args.info + ".tmp")
        tmp.write_text(json.dumps({"kubeconfig": str(kubeconfig), "port": api.port, "pid": os.getpid()}))
        os.replace(tmp, args.info)
        stop.wait()
        stats = {"cpu": time.process_time() - cpu0, "requests": len(api.log()), "execs": len(api.execs), "execPeak": api.exec_peak}
    Path(args.info).with_suffix(".stats.json").write_text(json.dumps(stats))
    return 0


def closed_port() -> int:
    """A loopback port nobody listens on (for the unreachable-server test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(_serve_main())
