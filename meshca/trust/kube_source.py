"""The ``kube`` source (the default): the ``kubernetes`` Python client, no kubectl/istioctl.

Reads: ``GET /api/v1/namespaces``, ``GET /api/v1/pods`` (or ``/api/v1/namespaces/NS/pods``),
``GET /api/v1/namespaces/istio-system/secrets/NAME``, ``.../configmaps/istio-REV``; and per pod
one websocket exec (subprotocol ``v4.channel.k8s.io``) of
``pilot-agent request GET config_dump?mask=dynamic_active_secrets`` in container ``istio-proxy``,
which works on distroless proxies and needs no port-forward.

Clients are built inside methods, never at import time or in ``__init__``, so a source (and the
dynamic provider that makes one) stays picklable and importing this module opens no socket.

A kubeconfig whose user is a bearer token or a client certificate (and nothing else unusual) is
served by kube_direct.py, which makes these same requests without importing the ``kubernetes``
package (about 0.3 s of CPU). Every other kubeconfig (exec plugins such as gke-gcloud-auth-plugin,
auth providers, proxies, several files) goes through the package; ``direct=False`` forces that.
There, only three pieces of the ``kubernetes`` package are used: ``kubernetes.config`` (kubeconfig,
exec credential plugins, token refresh), ``ApiClient`` (its pooled urllib3 REST client, its
URL and auth serialisation) and ``kubernetes.stream.ws_client`` (the channel websocket).
The generated ``CoreV1Api`` is not imported: with the pydantic-based client (37.x) importing it
costs about 0.5 s of CPU, more than a 100-pod check's own work. The five paths below are the
ones its methods (list_namespace, list_pod_for_all_namespaces, list_namespaced_pod,
read_namespaced_secret, read_namespaced_config_map, connect_get_namespaced_pod_exec) request;
tests/test_trust_kube.py checks every request against a server that accepts only these.

Concurrency: a check makes three or four reads (one connection each with the direct transport,
the package's pool of ``pool_size`` keep-alive connections otherwise); every exec is its own
websocket connection (one stream per connection, as kubectl's), so ``pool_size`` execs run at once. Exec is a long-running request: kube-apiserver exempts it from
--max-requests-inflight and from API Priority and Fairness, so the default of 64 streams is
bounded by the proxies' side, not the server's (README.md, "Concurrency of meshca check").
"""

from __future__ import annotations

import json
import threading

from ..errors import MeshcaError
from .source import SourceError, SourceTimeout

EXEC_COMMAND = ["pilot-agent", "request", "GET", "config_dump?mask=dynamic_active_secrets"]
CHANNEL_PROTOCOL = "v4.channel.k8s.io"
LIST_TIMEOUT = 120.0

# The generated CoreV1Api's method name -> the path it requests (kubernetes/client/api/core_v1_api.py).
PATHS = {
    "list_namespace": "/api/v1/namespaces",
    "list_pod_for_all_namespaces": "/api/v1/pods",
    "list_namespaced_pod": "/api/v1/namespaces/{namespace}/pods",
    "read_namespaced_secret": "/api/v1/namespaces/{namespace}/secrets/{name}",
    "read_namespaced_config_map": "/api/v1/namespaces/{namespace}/configmaps/{name}",
}
EXEC_PATH = "/api/v1/namespaces/{namespace}/pods/{name}/exec"
# The bearer token is asked for at most this often. kubernetes.config's refresh hook, run on every
# request, re-applies the whole kubeconfig (scanning the environment for proxies) and cost more
# CPU than the rest of a proxy's check; it renews a token 5 minutes before its expiry
# (kubernetes/config/kube_config.py EXPIRY_SKEW_PREVENTION_DELAY), so 10 s of reuse never sends
# an expired one.
AUTH_TTL = 10.0
EXEC_QUERY = [*(("command", c) for c in EXEC_COMMAND), ("container", "istio-proxy"), ("stderr", True), ("stdout", True)]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


class KubeSource:
    name = "kube"

    def __init__(
        self, kubeconfig: str | None = None, context: str | None = None, *, pool_size: int = 16, list_timeout: float = LIST_TIMEOUT, direct: bool = True
    ) -> None:
        self.kubeconfig = kubeconfig or None
        self.context = context or None
        self.pool_size = pool_size
        self.list_timeout = list_timeout
        self._lock = threading.Lock()
        self._configuration = None
        self._api = None
        self._auth: tuple[float, dict] | None = None
        self.direct = direct
        self._direct = None  # a kube_direct.Direct, False (the package is needed) or None (not decided)

    def __getstate__(self) -> dict:  # never pickle a live client
        state = dict(self.__dict__)
        state.update(_lock=None, _configuration=None, _api=None, _auth=None, _direct=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close pooled API connections (a source is reusable: the next call reconnects)."""
        with self._lock:
            api, self._api, self._configuration, self._auth, self._direct = self._api, None, None, None, None
        if api is not None:
            api.close()

    def __enter__(self) -> "KubeSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def where(self) -> str:
        return f"context {self.context}" if self.context else "the current context"

    def _transport(self):
        """The direct transport for this kubeconfig, or None (use the kubernetes package)."""
        from .kube_direct import Direct

        with self._lock:
            if self._direct is None:
                self._direct = (Direct.load(self.kubeconfig, self.context) if self.direct else None) or False
            return self._direct or None

    def _config(self):
        from kubernetes import config
        from kubernetes.client.api_client import ApiClient
        from kubernetes.client.configuration import Configuration
        from kubernetes.config.config_exception import ConfigException

        with self._lock:
            if self._configuration is None:
                cfg = Configuration()
                try:
                    config.load_kube_config(config_file=self.kubeconfig, context=self.context, client_configuration=cfg, persist_config=False)
                except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
                    raise MeshcaError("KubeconfigInvalid", self.kubeconfig or "~/.kube/config", reason=_reason(exc)) from None
                # one pooled connection per worker, else urllib3 drops and reopens connections
                cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, self.pool_size)
                cfg.retries = 1  # fail fast on a dead API server; the runner retries per pod
                self._configuration = cfg
                self._api = ApiClient(cfg)
            return self._configuration, self._api

    def _headers(self, cfg, **extra: str) -> dict:
        """The auth headers (from the kubeconfig, refreshed at most every AUTH_TTL s) and ``extra``."""
        import time

        now = time.monotonic()
        with self._lock:
            cached = self._auth
        if cached is None or now - cached[0] > AUTH_TTL:
            auth = {s["key"]: s["value"] for s in cfg.auth_settings().values() if s.get("in") == "header" and s.get("value")}
            cached = (now, auth)
            with self._lock:
                self._auth = cached
        return {**cached[1], **extra}

    def _library_get(self, call: str, path_params: dict) -> tuple[int, str, bytes]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        cfg, api = self._config()
        try:
            method, url, headers, _, _ = api.param_serialize("GET", PATHS[call], path_params=path_params or None, header_params=self._headers(cfg, Accept="application/json"))
            resp = api.call_api(method, url, headers, _request_timeout=self.list_timeout)
            return resp.status, resp.reason, resp.read()
        except ApiException as exc:
            raise MeshcaError("ApiServerUnreachable", self.where, reason=_reason(exc.reason or exc)) from None
        except (Urllib3Error, OSError) as exc:
            raise MeshcaError("ApiServerUnreachable", self.where, reason=_reason(exc)) from None

    def _get(self, call: str, *, not_found_ok: bool = False, **path_params: str) -> dict | None:
        shown = f"{call} {' '.join(path_params.values())}".strip()
        direct = self._transport()
        if direct is not None:
            from urllib.parse import quote

            path = PATHS[call].format(**{k: quote(v, safe="") for k, v in path_params.items()})
            status, reason, body = direct.get(path, self.list_timeout, self.where)
        else:
            status, reason, body = self._library_get(call, path_params)
        if not 200 <= status <= 299:
            if status == 404 and not_found_ok:
                return None
            message = reason or ""
            try:
                message = json.loads(body).get("message") or message
            except (TypeError, ValueError, AttributeError):
                pass
            raise MeshcaError("ApiRequestFailed", shown, status=status, reason=" ".join(str(message).split())[:300])
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise MeshcaError("ToolOutputNotJson", call, reason=f"invalid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise MeshcaError("ToolOutputNotJson", call, reason=f"a JSON {type(doc).__name__}")
        return doc

    # -- ProxySource --------------------------------------------------------------------------

    def list_namespaces(self) -> list[str]:
        return [i["metadata"]["name"] for i in self._get("list_namespace").get("items") or []]

    def list_pods(self, namespaces: list[str] | None) -> list[dict]:
        if namespaces is None:
            return list(self._get("list_pod_for_all_namespaces").get("items") or [])
        pods: list[dict] = []
        for ns in namespaces:
            pods += self._get("list_namespaced_pod", namespace=ns).get("items") or []
        return pods

    def read_secret(self, name: str, namespace: str = "istio-system") -> dict | None:
        return self._get("read_namespaced_secret", name=name, namespace=namespace, not_found_ok=True)

    def read_configmap(self, name: str, namespace: str = "istio-system") -> dict | None:
        return self._get("read_namespaced_config_map", name=name, namespace=namespace, not_found_ok=True)

    def fetch_dump(self, pod: dict, timeout: float | None = None) -> bytes:
        timeout = timeout or 30.0
        meta = pod["metadata"]
        direct = self._transport()
        if direct is not None:
            from urllib.parse import quote, urlencode

            path = EXEC_PATH.format(name=quote(meta["name"], safe=""), namespace=quote(meta["namespace"], safe=""))
            query = urlencode([(k, str(v).lower() if isinstance(v, bool) else v) for k, v in EXEC_QUERY], quote_via=quote)
            out, err, status = direct.exec(f"{path}?{query}", CHANNEL_PROTOCOL, timeout, self.where)
        else:
            out, err, status = self._library_exec(meta, timeout)
        return _exec_result(out, err, status)

    def _library_exec(self, meta: dict, timeout: float) -> tuple[bytes, bytes, bytes]:
        import websocket
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL, websocket_call

        cfg, api = self._config()
        # The client opens the websocket without a timeout; bound the handshake and every read.
        websocket.setdefaulttimeout(timeout)
        try:
            method, url, headers, _, _ = api.param_serialize(
                "GET",
                EXEC_PATH,
                path_params={"name": meta["name"], "namespace": meta["namespace"]},
                query_params=list(EXEC_QUERY),
                header_params=self._headers(cfg, **{"sec-websocket-protocol": CHANNEL_PROTOCOL}),
            )
            # what kubernetes.stream.stream does around the generated method: a channel
            # websocket to the same URL (ws_client.websocket_call; https -> wss there)
            ws = websocket_call(cfg, method, url, headers=headers, _preload_content=False, binary=True)
        except ApiException as exc:
            text = _reason(exc.reason or exc)
            if "timed out" in text.lower():
                raise SourceTimeout(f"exec did not start within {timeout:g} s") from None
            if any(m in text for m in ("Connection refused", "Name or service not known", "No route to host")):
                raise MeshcaError("ApiServerUnreachable", self.where, reason=text) from None
            raise SourceError(f"exec failed: {text}") from None
        try:
            ws.run_forever(timeout=timeout)
            if ws.is_open():
                raise SourceTimeout(f"pilot-agent request did not finish within {timeout:g} s")
            out = ws.read_channel(STDOUT_CHANNEL)
            err = ws.read_channel(STDERR_CHANNEL)
            status = ws.read_channel(ERROR_CHANNEL)
        except websocket.WebSocketTimeoutException:
            raise SourceTimeout(f"pilot-agent request did not finish within {timeout:g} s") from None
        except (websocket.WebSocketException, OSError) as exc:
            raise SourceError(f"exec stream broke: {_reason(exc)}") from None
        finally:
            try:
                # timeout=0: do not wait (3 s by default) for a hung peer to acknowledge the close
                ws.close(timeout=0)
            except Exception:  # closing a dead socket must not mask the real outcome
                pass
            if getattr(ws, "sock", None) is not None:
                # once the peer has closed, websocket-client's close() is a no-op that leaves the
                # TCP socket open; shutdown() really closes it
                try:
                    ws.sock.shutdown()
                except Exception:
                    pass
        return out, err, status


def _exec_result(out, err, status) -> bytes:
    """stdout of a finished exec, or SourceError with the error channel's Status and stderr."""
    if status:
        try:
            st = json.loads(status)
        except ValueError:
            st = {"status": "Failure", "message": status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)}
        if st.get("status") != "Success":
            detail = _reason(st.get("message") or st.get("reason") or "exec failed")
            stderr_text = err.decode("utf-8", "replace").strip() if isinstance(err, bytes) else str(err or "").strip()
            if stderr_text:
                detail += f"; stderr: {stderr_text.splitlines()[0][:200]}"
            raise SourceError(detail)
    if not out:
        stderr_text = err.decode("utf-8", "replace").strip() if isinstance(err, bytes) else ""
        raise SourceError("pilot-agent printed nothing" + (f"; stderr: {stderr_text.splitlines()[0][:200]}" if stderr_text else ""))
    return out if isinstance(out, bytes) else str(out).encode()
