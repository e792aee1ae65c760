"""Local Kubernetes clusters on loopback for meshca's end-to-end tests (test infrastructure).

Per cluster (one per kubeconfig context name): a real ``etcd`` (own data dir, loopback client
and peer ports), a real ``kube-apiserver`` (127.0.0.1 only, secure port, client-certificate auth
of an ``admin`` in ``system:masters``, RBAC, the default admission chain with the webhook
plugins), a real ``kube-controller-manager`` (the controllers a rollout needs: deployment,
replicaset, endpoint, endpointslice, namespace, garbagecollector, serviceaccount,
serviceaccount-token, root-ca-cert-publisher, statefulset, daemonset) and the node simulation: KWOK
(sigs.k8s.io/kwok, when the toolchain built it) keeps one Node Ready and reports its pods Running/Ready,
and testinfra/nodeagent.py binds pending pods to it (no kube-scheduler is built); without KWOK the node
agent plays node and kubelet too. There is no kubelet and no container runs. All binaries come from the toolchain
bin dir (``make toolchain``). ONE kubeconfig holds one context per cluster, named exactly as
given (the shipped stacks' context names).

Pod addresses: EndpointSlices reject loopback, so each cluster's pods get addresses from a /20
of 10.244.0.0/16. That range is assigned only inside a network namespace the launcher creates
(``ip netns add meshca-e2e-<pid>-<n>``, a veth pair (or dummy) holding 10.244.0.1/16, both ends
inside it) and deletes at teardown. Nothing routes to it from the host and nothing sends
traffic to it: no process listens on a pod IP. Without root or iproute2 the launcher says so.

The injector stand-in (standins/injector.py, when present) is started ONCE for all clusters
(``--listen 127.0.0.1:0``); its URL and CA bundle are exported to every process started here
and to the tests as ``MESHCA_STANDIN_INJECTOR_URL`` and ``MESHCA_STANDIN_INJECTOR_CA_BUNDLE``,
with ``KUBECONFIG``.

Every wait is bounded; a timeout names the process and prints its log tail. Teardown kills every
process group started here and removes the temp dir and the netns.

CLI (``make cluster``): python -m testinfra.cluster [--contexts a,b] [--bindir DIR] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testinfra.kube import ApiError, Endpoint, Kube  # noqa: E402

DEV_CONTEXT = "gke_acme-mesh-dev_us-central1_dev-1"  # Pulumi.dev.yaml meshca:clusters[0].context
POD_RANGE = ipaddress.ip_network("10.244.0.0/16")
CLUSTER_PREFIX = 20  # each cluster's pods: one /20 of POD_RANGE (4094 addresses)
SERVICE_RANGE = "10.96.0.0/16"
LOOPBACK = "127.0.0.1"
CONTROLLERS = (
    "deployment",
    "replicaset",
    "endpoint",
    "endpointslice",
    "namespace",
    "garbagecollector",
    "serviceaccount",
    "serviceaccount-token",
    "root-ca-cert-publisher",
    "statefulset",
    "daemonset",
)
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


class LaunchError(RuntimeError):
    pass


# -- toolchain --------------------------------------------------------------------------------
def toolchain_root(repo: Path = REPO) -> Path:
    """${XDG_CACHE_HOME:-~/.cache}/meshca/toolchain/<first 16 hex of sha256(toolchain/pins.json)>."""
    pins = repo / "toolchain" / "pins.json"
    if not pins.exists():
        raise LaunchError(f"{pins} is missing: the toolchain pins are not in this checkout")
    digest = hashlib.sha256(pins.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "meshca" / "toolchain" / digest


def _ask_build_py(flag: str, repo: Path) -> Path | None:
    script = repo / "toolchain" / "build.py"
    if not script.exists():
        return None
    proc = subprocess.run([sys.executable, str(script), flag], capture_output=True, text=True, timeout=60)
    out = proc.stdout.strip()
    return Path(out) if proc.returncode == 0 and out else None


def toolchain_bin(repo: Path = REPO) -> Path:
    """The bin dir `make toolchain` fills (``toolchain/build.py --print-bin``); MESHCA_TOOLCHAIN_BIN overrides it."""
    override = os.environ.get("MESHCA_TOOLCHAIN_BIN")
    if override:
        return Path(override)
    return _ask_build_py("--print-bin", repo) or toolchain_root(repo) / "bin"


def toolchain_pulumi_home(repo: Path = REPO) -> Path:
    """The PULUMI_HOME holding the offline-installed provider plugins (``toolchain/build.py --print-home``);
    MESHCA_TOOLCHAIN_PULUMI_HOME overrides it."""
    override = os.environ.get("MESHCA_TOOLCHAIN_PULUMI_HOME")
    if override:
        return Path(override)
    return _ask_build_py("--print-home", repo) or toolchain_root(repo) / "pulumi-home"


def missing_tools(bindir: Path, tools: Sequence[str] = TOOLS) -> list[str]:
    return [t for t in tools if not os.access(bindir / t, os.X_OK)]


# -- small helpers -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text[-lines:])


def wait_for(what: str, ok: Callable[[], bool], timeout: float, procs: Sequence["Proc"] = (), interval: float = 0.1) -> float:
    """Poll ``ok`` until true; on timeout (or a process dying) raise naming it with its log tail."""
    start = time.monotonic()
    last: Exception | None = None
    while True:
        for p in procs:
            if p.popen.poll() is not None:
                raise LaunchError(f"{p.name} exited with {p.popen.returncode} while waiting for {what}; log {p.log}:\n{tail(p.log)}")
        try:
            if ok():
                return time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last = exc
        if time.monotonic() - start > timeout:
            logs = "\n".join(f"--- {p.name} log tail ({p.log}):\n{tail(p.log)}" for p in procs)
            raise LaunchError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last})" if last else "") + ("\n" + logs if logs else ""))
        time.sleep(interval)


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)


def start(name: str, argv: Sequence[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "ab")
    fh.write(f"$ {' '.join(argv)}\n".encode())
    fh.flush()
    popen = subprocess.Popen(list(argv), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             cwd=cwd, start_new_session=True)
    fh.close()
    return Proc(name, list(argv), log, popen)


# -- PKI (cryptography; one CA for every cluster of a launch) ----------------------------------
def _pki():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    return x509, hashes, serialization, ec, rsa, NameOID


def _write_key(path: Path, key) -> None:
    _, _, serialization, _, _, _ = _pki()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(path: Path, cert) -> None:
    _, _, serialization, _, _, _ = _pki()
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Pki:
    def __init__(self, root: Path) -> None:
        x509, hashes, _, ec, _, NameOID = _pki()
        self.dir = root
        root.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshca-e2e-ca")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = root / "ca.crt"
        _write_cert(self.ca_file, self.cert)
        _write_key(root / "ca.key", self.key)

    def issue(self, stem: str, cn: str, *, orgs: Sequence[str] = (), server: bool = False) -> tuple[Path, Path]:
        x509, hashes, _, ec, _, NameOID = _pki()
        from cryptography.x509.oid import ExtendedKeyUsageOID

        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs] + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        now = dt.datetime.now(dt.timezone.utc)
        b = (
            x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
                x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
                x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local"),
            ]), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        crt, keyf = self.dir / f"{stem}.crt", self.dir / f"{stem}.key"
        _write_cert(crt, cert)
        _write_key(keyf, key)
        return crt, keyf

    def service_account_keys(self, stem: str) -> tuple[Path, Path]:
        _, _, serialization, _, rsa, _ = _pki()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        priv, pub = self.dir / f"{stem}.key", self.dir / f"{stem}.pub"
        _write_key(priv, key)
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return priv, pub


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_doc(entries: Sequence[tuple[str, str, Path, Path, Path]]) -> dict:
    """entries: (context, server, ca, client cert, client key); one cluster/user/context each."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": entries[0][0],
        "clusters": [{"name": c, "cluster": {"server": s, "certificate-authority-data": b64(ca)}} for c, s, ca, _, _ in entries],
        "users": [{"name": f"admin@{c}", "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)}}
                  for c, _, _, crt, key in entries],
        "contexts": [{"name": c, "context": {"cluster": c, "user": f"admin@{c}"}} for c, _, _, _, _ in entries],
    }


# -- network namespace for pod addresses -------------------------------------------------------
class PodNetns:
    """``meshca-e2e-<pid>-<n>`` holding POD_RANGE on an interface inside it; deleted at teardown."""

    _count = 0

    def __init__(self, name: str | None = None) -> None:
        PodNetns._count += 1  # several launches in one process (one per context list) each get their own
        self.name = name or f"meshca-e2e-{os.getpid()}-{PodNetns._count}"
        self.created = False

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        ip = shutil.which("ip")
        if ip is None:
            raise LaunchError("`ip` (iproute2) not found: the pod range lives in a network namespace; "
                              "install it: apt-get update && apt-get install -y iproute2")
        proc = subprocess.run([ip, *args], capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise LaunchError(f"ip {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
                              + ("; creating a network namespace needs root" if os.geteuid() != 0 else ""))
        return proc

    def remove_stale(self) -> list[str]:
        """Delete meshca-e2e-<pid> namespaces whose launcher process is gone (a killed run)."""
        gone = []
        for line in self._ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            m = re.fullmatch(r"meshca-e2e-(\d+)(?:-\d+)?", name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                self._ip("netns", "delete", name, check=False)
                gone.append(name)
        return gone

    def create(self) -> None:
        self.remove_stale()
        self._ip("netns", "add", self.name)
        self.created = True
        gw = f"{next(POD_RANGE.hosts())}/{POD_RANGE.prefixlen}"
        if self._ip("-n", self.name, "link", "add", "pods", "type", "dummy", check=False).returncode != 0:
            # No dummy driver in this kernel: a veth pair, both ends inside the namespace.
            self._ip("-n", self.name, "link", "add", "pods", "type", "veth", "peer", "name", "pods-peer")
            self._ip("-n", self.name, "link", "set", "pods-peer", "up")
        self._ip("-n", self.name, "addr", "add", gw, "dev", "pods")
        self._ip("-n", self.name, "link", "set", "pods", "up")

    def delete(self) -> None:
        if self.created:
            self._ip("netns", "delete", self.name, check=False)
            self.created = False


# -- the clusters ------------------------------------------------------------------------------
@dataclass
class Cluster:
    context: str
    index: int
    dir: Path
    pod_cidr: str
    endpoint: Endpoint | None = None
    etcd_url: str = ""
    sa_key: Path | None = None
    agent_ready: Path | None = None
    started: float = 0.0
    procs: list[Proc] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def node(self) -> str:
        return f"meshca-node-{self.index}"

    def kube(self) -> Kube:
        assert self.endpoint is not None
        return Kube(self.endpoint)


class Clusters:
    """Start with ``start()`` (or as a context manager), stop with ``stop()``."""

    def __init__(self, contexts: Sequence[str], *, bindir: Path | None = None, workdir: Path | None = None,
                 injector: Path | None = REPO / "standins" / "injector.py", python: str = sys.executable,
                 netns: bool = True, timeout: float = 90.0) -> None:
        if not contexts:
            raise LaunchError("no context names given")
        if len(set(contexts)) != len(contexts):
            raise LaunchError(f"duplicate context names: {list(contexts)}")
        self.contexts = list(contexts)
        self.bindir = Path(bindir) if bindir else toolchain_bin()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="meshca-e2e-"))
        self.injector_script = injector
        self.python = python
        self.netns = PodNetns() if netns else None
        # KWOK when the toolchain has it (MESHCA_E2E_NODE_SIM=agent|kwok overrides), else the node agent alone.
        choice = os.environ.get("MESHCA_E2E_NODE_SIM") or ("kwok" if os.access(self.bindir / "kwok", os.X_OK) else "agent")
        if choice not in ("kwok", "agent"):
            raise LaunchError(f"MESHCA_E2E_NODE_SIM={choice}: use kwok or agent")
        self.node_sim = choice
        self.timeout = timeout
        self.clusters: list[Cluster] = []
        self.procs: list[Proc] = []
        self.kubeconfig = self.workdir / "kubeconfig.yaml"
        self.env: dict[str, str] = {}
        self.exports: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # env every started process sees
    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bindir}{os.pathsep}{env.get('PATH', os.defpath)}"
        no_proxy = ",".join(x for x in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if x)
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        env.update(self.exports)
        return env

    def __enter__(self) -> "Clusters":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Clusters":
        t0 = time.monotonic()
        missing = missing_tools(self.bindir)
        if missing:
            raise LaunchError(f"toolchain bin dir {self.bindir} lacks {', '.join(missing)}: run `make toolchain` first")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = Pki(self.workdir / "pki")
        if self.netns is not None:
            self.netns.create()
        self._start_injector()
        subnets = POD_RANGE.subnets(new_prefix=CLUSTER_PREFIX)
        next(subnets)  # the first /20 holds the namespace's own address (10.244.0.1)
        for i, ctx in enumerate(self.contexts):
            d = self.workdir / f"cluster-{i}"
            d.mkdir(parents=True, exist_ok=True)
            self.clusters.append(Cluster(ctx, i, d, str(next(subnets))))
        # etcd and the API servers of all clusters start together; then controllers and nodes.
        for c in self.clusters:
            self._start_etcd(c)
        for c in self.clusters:
            self._start_apiserver(c)
        entries = []
        for c in self.clusters:
            self._wait_apiserver(c)
            crt, key = Path(c.endpoint.cert_file), Path(c.endpoint.key_file)
            entries.append((c.context, c.endpoint.server, self.pki.ca_file, crt, key))
        self.kubeconfig.write_text(json.dumps(kubeconfig_doc(entries), indent=2))
        self.kubeconfig.chmod(0o600)
        self.exports["KUBECONFIG"] = str(self.kubeconfig)
        for c in self.clusters:
            self._start_controller_manager(c)
            self._start_node_agent(c)
        for c in self.clusters:
            self._wait_controllers(c)
        self.env = self.base_env()
        self.timings["start"] = time.monotonic() - t0
        return self

    def _start_injector(self) -> None:
        script = self.injector_script
        if script is None or not Path(script).exists():
            return  # not written yet by the stand-ins: the clusters run without it
        d = self.workdir / "injector"
        d.mkdir(parents=True, exist_ok=True)
        ready = d / "ready.json"
        p = start("injector", [self.python, str(script), "--listen", f"{LOOPBACK}:0", "--cert-dir", str(d / "certs"),
                               "--ready-file", str(ready)], d / "injector.log", self.base_env(), cwd=REPO)
        self.procs.append(p)

        def is_ready() -> bool:
            if not ready.exists():
                return False
            doc = json.loads(ready.read_text())
            return bool(doc.get("url")) and bool(doc.get("caBundle"))

        self.timings["injector"] = wait_for(f"the injector stand-in to write {ready}", is_ready, self.timeout, [p])
        doc = json.loads(ready.read_text())
        self.exports["MESHCA_STANDIN_INJECTOR_URL"] = doc["url"]
        self.exports["MESHCA_STANDIN_INJECTOR_CA_BUNDLE"] = doc["caBundle"]

    def _start_etcd(self, c: Cluster) -> None:
        client, peer = free_port(), free_port()
        c.etcd_url = f"http://{LOOPBACK}:{client}"
        name = f"etcd-{c.index}"
        argv = [
            str(self.bindir / "etcd"), "--name", name, "--data-dir", str(c.dir / "etcd"),
            "--listen-client-urls", c.etcd_url, "--advertise-client-urls", c.etcd_url,
            "--listen-peer-urls", f"http://{LOOPBACK}:{peer}", "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{peer}",
            "--initial-cluster", f"{name}=http://{LOOPBACK}:{peer}", "--initial-cluster-state", "new",
            "--listen-metrics-urls", f"http://{LOOPBACK}:{free_port()}",
            "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn",
        ]
        p = start(f"etcd ({c.context})", argv, c.dir / "etcd.log", self.base_env())
        c.procs.append(p)
        self.procs.append(p)

    def _etcd_healthy(self, c: Cluster) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{c.etcd_url}/health", timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"

    def _start_apiserver(self, c: Cluster) -> None:
        etcd = c.procs[0]
        c.timings["etcd"] = wait_for(f"etcd of {c.context} at {c.etcd_url}/health", lambda: self._etcd_healthy(c), self.timeout, [etcd])
        port = free_port()
        pki = self.pki
        serving_crt, serving_key = pki.issue(f"apiserver-{c.index}", "kube-apiserver", server=True)
        admin_crt, admin_key = pki.issue(f"admin-{c.index}", "admin", orgs=["system:masters"])
        sa_key, sa_pub = pki.service_account_keys(f"sa-{c.index}")
        c.sa_key = sa_key
        c.endpoint = Endpoint(LOOPBACK, port, str(pki.ca_file), str(admin_crt), str(admin_key))
        argv = [
            str(self.bindir / "kube-apiserver"),
            "--etcd-servers", c.etcd_url,
            "--bind-address", LOOPBACK, "--secure-port", str(port),
            # Published only as the `kubernetes` Service's endpoints, which nothing reconciles here.
            "--advertise-address", LOOPBACK, "--endpoint-reconciler-type", "none",
            "--tls-cert-file", str(serving_crt), "--tls-private-key-file", str(serving_key),
            "--client-ca-file", str(pki.ca_file),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(sa_pub), "--service-account-signing-key-file", str(sa_key),
            "--service-cluster-ip-range", SERVICE_RANGE,
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--cert-dir", str(c.dir / "apiserver-certs"),
        ]
        p = start(f"kube-apiserver ({c.context})", argv, c.dir / "kube-apiserver.log", self.base_env())
        c.procs.append(p)
        self.procs.append(p)
        c.started = time.monotonic()

    def _wait_apiserver(self, c: Cluster) -> None:
        kube = c.kube()

        def ready() -> bool:
            kube.request("GET", "/readyz", timeout=3)
            return True

        c.timings["kube-apiserver"] = wait_for(f"kube-apiserver of {c.context} at {c.endpoint.server}/readyz", ready, self.timeout, c.procs)

    def _single_kubeconfig(self, c: Cluster) -> Path:
        path = c.dir / "admin.kubeconfig"
        doc = kubeconfig_doc([(c.context, c.endpoint.server, self.pki.ca_file, Path(c.endpoint.cert_file), Path(c.endpoint.key_file))])
        path.write_text(json.dumps(doc, indent=2))
        path.chmod(0o600)
        return path

    def _start_controller_manager(self, c: Cluster) -> None:
        kc = self._single_kubeconfig(c)
        argv = [
            str(self.bindir / "kube-controller-manager"),
            "--kubeconfig", str(kc), "--authentication-kubeconfig", str(kc), "--authorization-kubeconfig", str(kc),
            "--bind-address", LOOPBACK, "--secure-port", str(free_port()),
            "--leader-elect=false",
            "--controllers", ",".join(CONTROLLERS),
            "--service-account-private-key-file", str(c.sa_key),
            "--root-ca-file", str(self.pki.ca_file),
            "--use-service-account-credentials=false",
            "--authentication-skip-lookup=true",
            "--cert-dir", str(c.dir / "kcm-certs"),
            "--concurrent-deployment-syncs", "10", "--concurrent-replicaset-syncs", "10",
        ]
        p = start(f"kube-controller-manager ({c.context})", argv, c.dir / "kube-controller-manager.log", self.base_env())
        c.procs.append(p)
        self.procs.append(p)

    def _start_node_agent(self, c: Cluster) -> None:
        ready = c.dir / "nodeagent.ready"
        argv = [self.python, "-m", "testinfra.nodeagent", "--server", c.endpoint.server, "--ca", c.endpoint.ca_file,
                "--cert", c.endpoint.cert_file, "--key", c.endpoint.key_file, "--node", c.node, "--pod-cidr", c.pod_cidr,
                "--ready-file", str(ready)]
        if self.node_sim == "kwok":
            self._start_kwok(c)
            argv.append("--bind-only")
        env = self.base_env()
        env["PYTHONPATH"] = os.pathsep.join(x for x in (str(REPO), env.get("PYTHONPATH", "")) if x)
        p = start(f"nodeagent ({c.context})", argv, c.dir / "nodeagent.log", env, cwd=REPO)
        c.procs.append(p)
        self.procs.append(p)
        c.agent_ready = ready

    def _start_kwok(self, c: Cluster) -> None:
        """KWOK keeps the cluster's one Node Ready and reports its pods Running/Ready with IPs of the
        cluster's pod range (its default stages); the node agent only binds."""
        net = ipaddress.ip_network(c.pod_cidr)
        hosts = net.hosts()
        node_ip = str(next(hosts))
        first_pod = f"{next(hosts)}/{net.prefixlen}"  # kwok hands out addresses from the one given on
        c.kube().create("/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": c.node, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": c.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                    "type": "kwok"}},
            "spec": {"podCIDR": c.pod_cidr, "podCIDRs": [c.pod_cidr]},
        })
        argv = [str(self.bindir / "kwok"), "--kubeconfig", str(self._single_kubeconfig(c)), "--manage-single-node", c.node,
                "--cidr", first_pod, "--node-ip", node_ip, "--server-address", f"{LOOPBACK}:{free_port()}",
                "--config", str(c.dir / "kwok.yaml")]
        (c.dir / "kwok.yaml").write_text("")
        p = start(f"kwok ({c.context})", argv, c.dir / "kwok.log", self.base_env())
        c.procs.append(p)
        self.procs.append(p)

    def _node_ready(self, c: Cluster) -> bool:
        node = c.kube().get(f"/api/v1/nodes/{c.node}")
        return any(x.get("type") == "Ready" and x.get("status") == "True" for x in (node.get("status") or {}).get("conditions") or [])

    def _wait_controllers(self, c: Cluster) -> None:
        kube = c.kube()

        def default_sa() -> bool:  # the serviceaccount controller is up (pods need it to be admitted)
            kube.get("/api/v1/namespaces/default/serviceaccounts/default")
            return True

        c.timings["kube-controller-manager"] = wait_for(f"kube-controller-manager of {c.context} to create serviceaccount default/default",
                                                        default_sa, self.timeout, c.procs)
        c.timings["nodeagent"] = wait_for(f"node agent of {c.context} to start", c.agent_ready.exists, self.timeout, c.procs)
        c.timings["node"] = wait_for(f"node {c.node} of {c.context} to be Ready ({self.node_sim})", lambda: self._node_ready(c),
                                     self.timeout, c.procs)
        c.timings["ready"] = time.monotonic() - c.started

    # -- teardown / diagnostics ------------------------------------------------------------
    def logs(self, lines: int = 60) -> str:
        return "\n".join(f"--- {p.name} ({p.log}), exit {p.popen.poll()}:\n{tail(p.log, lines)}" for p in self.procs)

    def dead(self) -> list[Proc]:
        return [p for p in self.procs if p.popen.poll() is not None]

    def stop(self, keep: bool = False) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()
        if self.netns is not None:
            self.netns.delete()
        if self._own_workdir and not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def export_lines(self) -> list[str]:
        import shlex

        return [f'export PATH="{self.bindir}:$PATH"'] + [f"export {k}={shlex.quote(v)}" for k, v in self.exports.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testinfra.cluster", description="Start local clusters (etcd, kube-apiserver, "
                                 "kube-controller-manager, node simulation) on loopback until Ctrl-C.")
    ap.add_argument("--contexts", default=DEV_CONTEXT, help=f"comma-separated context names (default: {DEV_CONTEXT})")
    ap.add_argument("--bindir", type=Path, help="toolchain bin dir (default: the one `make toolchain` fills)")
    ap.add_argument("--workdir", type=Path, help="where data, certificates and logs go (default: a new temp dir, removed at exit)")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args(argv)
    contexts = [c.strip() for c in args.contexts.split(",") if c.strip()]
    clusters = Clusters(contexts, bindir=args.bindir, workdir=args.workdir, timeout=args.timeout)
    stop = {"now": False}

    def on_signal(signum, _frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        clusters.start()
    except LaunchError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        print(clusters.logs(), file=sys.stderr)
        clusters.stop()
        return 1
    except BaseException:
        clusters.stop()
        raise
    print(f"{len(clusters.clusters)} cluster(s) up in {clusters.timings['start']:.1f} s; kubeconfig: {clusters.kubeconfig}")
    for c in clusters.clusters:
        print(f"  context {c.context}: {c.endpoint.server} node {c.node} pods {c.pod_cidr}")
    if clusters.netns is not None:
        print(f"  pod range {POD_RANGE} exists only inside network namespace {clusters.netns.name}")
    print(f"  logs: {clusters.workdir}")
    print("In another shell:")
    for line in clusters.export_lines():
        print(f"  {line}")
    print("Ctrl-C stops everything and removes the temp dir.", flush=True)
    try:
        while not stop["now"]:
            dead = clusters.dead()
            if dead:
                print(f"cluster: {dead[0].name} exited with {dead[0].popen.returncode}:\n{tail(dead[0].log)}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        clusters.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
