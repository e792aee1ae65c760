"""A described cluster for trust-check tests: real certificates, pods, CA Secrets, revision
ConfigMaps and proxy dumps, written to a directory the fake kubectl/istioctl and the loopback
Kubernetes API server both serve (tests/fakes/bin, tests/kube_api_server.py).

Certificates are real X.509 made with meshca.pki (EC keys, for speed). The "Mesh CA" here is a
stand-in with the real Mesh CA root's subject; it is NOT the real root (whose key nobody has),
so tests pass it with --meshca-root, exactly as an operator can.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from meshca import pki
from meshca.trust.dumps import render_dump, sidecar_entries
from meshca.trust.source import SourceError

HERE = Path(__file__).resolve().parent
FAKE_BIN = HERE / "bin"
FLEET = "fleet-proj"
MESHCA_CN = "istio_v1_cloud_workload_root-signer-0-2018-04-25T14:11:33-07:00 K:1, 1:H52vgwEm3tc:0:18"


def meshca_subject() -> x509.Name:
    """The real Mesh CA root's subject; its 87-character CN breaks RFC 5280's 64 limit.

    Building it warns once (that is this fixture's own doing); meshca must never warn when it
    later reads such a certificate, which the tests assert."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _meshca_subject()


def _meshca_subject() -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Mountain View"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google LLC"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Cloud"),
            x509.NameAttribute(NameOID.COMMON_NAME, MESHCA_CN, _validate=False),
        ]
    )


@dataclass(frozen=True)
class Pki:
    citadel_root: pki.Issued
    citadel_ca: pki.Issued
    meshca_root: pki.Issued
    meshca_ca: pki.Issued
    other_root: pki.Issued  # a third root nobody expects
    impostor_root: pki.Issued  # same subject as the Mesh CA root, different key

    def __repr__(self) -> str:  # the generated repr would read the 87-character CN and warn
        return "Pki(citadel, meshca stand-in, other, impostor)"

    def pem(self, *issued: pki.Issued) -> bytes:
        return b"".join(i.cert_pem for i in issued)

    def citadel_chain(self, ns: str, sa: str, *, hours: float = 24, not_before: dt.datetime | None = None) -> bytes:
        nb = not_before or (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
        leaf = pki.make_workload(f"spiffe://cluster.local/ns/{ns}/sa/{sa}", self.citadel_ca, not_before=nb, hours=hours)
        # istiod's default chain: leaf, the plugged-in intermediate, then the root (cert-chain.pem)
        return self.pem(leaf, self.citadel_ca, self.citadel_root)

    def meshca_chain(self, ns: str, sa: str, *, fleet: str = FLEET, hours: float = 24, not_before: dt.datetime | None = None) -> bytes:
        nb = not_before or (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
        leaf = pki.make_workload(f"spiffe://{fleet}.svc.id.goog/ns/{ns}/sa/{sa}", self.meshca_ca, not_before=nb, hours=hours)
        return self.pem(leaf, self.meshca_ca)


@functools.lru_cache(maxsize=1)
def make_pki() -> Pki:
    with warnings.catch_warnings():
        # meshca.pki reads the issuer's subject, and the Mesh CA stand-in's CN is 87 characters
        warnings.simplefilter("ignore")
        return _make_pki()


def _make_pki() -> Pki:
    nb = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    citadel_root = pki.make_root("Root CA", org="meshca-test", key=pki.ec_key(), not_before=nb)
    citadel_ca = pki.make_intermediate("Intermediate CA", citadel_root, org="meshca-test", key=pki.ec_key(), not_before=nb)
    meshca_root = pki.make_root("", subject=meshca_subject(), key=pki.ec_key(), not_before=nb)
    meshca_ca = pki.make_intermediate("istio_v1_cloud_workload_signer", meshca_root, org="Google LLC", key=pki.ec_key(), not_before=nb)
    other_root = pki.make_root("Some Other Root", org="elsewhere", key=pki.ec_key(), not_before=nb)
    impostor_root = pki.make_root("", subject=meshca_subject(), key=pki.ec_key(), not_before=nb)
    return Pki(citadel_root, citadel_ca, meshca_root, meshca_ca, other_root, impostor_root)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Cluster:
    namespaces: list[str] = field(default_factory=lambda: ["default", "istio-system", "kube-system", "kube-public", "kube-node-lease"])
    pods: list[dict] = field(default_factory=list)
    secrets: dict[tuple[str, str], dict] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], dict] = field(default_factory=dict)
    dumps: dict[tuple[str, str], bytes] = field(default_factory=dict)
    dump_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    dump_delays: dict[tuple[str, str], float] = field(default_factory=dict)
    dump_failtimes: dict[tuple[str, str], int] = field(default_factory=dict)
    context: str | None = None
    unreachable: bool = False

    # -- building ---------------------------------------------------------------------------

    def add_namespace(self, name: str) -> None:
        if name not in self.namespaces:
            self.namespaces.append(name)

    def add_pod(
        self,
        ns: str,
        name: str,
        *,
        dump: bytes | None = None,
        phase: str = "Running",
        native: bool = False,
        gateway: bool = False,
        proxy: bool = True,
        revision: str | None = "asm-1",
        labels: dict | None = None,
        replicaset: str | None = None,
        template_hash: str | None = None,
        owner_kind: str = "ReplicaSet",
        waiting_reason: str | None = None,
    ) -> dict:
        self.add_namespace(ns)
        all_labels = dict(labels or {})
        if revision:
            all_labels["istio.io/rev"] = revision
        if template_hash:
            all_labels["pod-template-hash"] = template_hash
        meta: dict = {"name": name, "namespace": ns, "labels": all_labels, "uid": f"uid-{ns}-{name}"}
        if replicaset:
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner_kind, "name": replicaset, "controller": True, "uid": f"rs-{replicaset}"}]
        app = {"name": "app", "image": "example/app:1"}
        proxy_c = {"name": "istio-proxy", "image": "gcr.io/gke-release/asm/proxyv2:1.19.10-asm.9", "args": ["proxy", "router" if gateway else "sidecar"]}
        spec: dict = {"containers": [app]}
        if gateway:
            spec = {"containers": [proxy_c]}
        elif proxy and native:
            spec["initContainers"] = [{**proxy_c, "restartPolicy": "Always"}]
        elif proxy:
            spec["containers"].append(proxy_c)
        status: dict = {"phase": phase}
        if waiting_reason:
            status["containerStatuses"] = [{"name": "app", "state": {"waiting": {"reason": waiting_reason}}}]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}
        self.pods.append(pod)
        if dump is not None:
            self.dumps[(ns, name)] = dump
        return pod

    def remove_pod(self, ns: str, name: str) -> None:
        self.pods = [p for p in self.pods if (p["metadata"]["namespace"], p["metadata"]["name"]) != (ns, name)]
        self.dumps.pop((ns, name), None)

    def set_secret(self, name: str, data: dict[str, bytes], ns: str = "istio-system") -> None:
        self.secrets[(ns, name)] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque" if name == "cacerts" else "istio.io/ca-root",
            "metadata": {"name": name, "namespace": ns},
            "data": {k: b64(v) for k, v in data.items()},
        }

    def set_revision(self, revision: str, trust_domain: str, aliases: list[str] | None = None, *, mesh_text: str | None = None) -> None:
        if mesh_text is None:
            lines = [f"trustDomain: {trust_domain}"]
            if aliases is not None:
                lines.append("trustDomainAliases:")
                lines += [f"- {a}" for a in aliases]
            lines.append("defaultConfig:\n  discoveryAddress: istiod-" + revision + ".istio-system.svc:15012")
            mesh_text = "\n".join(lines) + "\n"
        name = "istio" if revision == "default" else f"istio-{revision}"
        self.configmaps[("istio-system", name)] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "istio-system", "labels": {"istio.io/rev": revision}},
            "data": {"mesh": mesh_text},
        }

    # -- writing ----------------------------------------------------------------------------

    def write(self, root: Path) -> Path:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("secrets", "configmaps", "dumps"):
            d = root / sub
            if d.exists():
                for p in sorted(d.rglob("*"), reverse=True):
                    p.unlink() if p.is_file() else p.rmdir()
        ns_items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}, "status": {"phase": "Active"}} for n in self.namespaces]
        _atomic(root / "namespaces.json", json.dumps({"apiVersion": "v1", "kind": "NamespaceList", "items": ns_items}).encode())
        _atomic(root / "pods.json", json.dumps({"apiVersion": "v1", "kind": "PodList", "items": self.pods}).encode())
        for (ns, name), obj in self.secrets.items():
            _atomic(root / "secrets" / ns / f"{name}.json", json.dumps(obj).encode())
        for (ns, name), obj in self.configmaps.items():
            _atomic(root / "configmaps" / ns / f"{name}.json", json.dumps(obj).encode())
        for (ns, name), data in self.dumps.items():
            _atomic(root / "dumps" / ns / f"{name}.json", data)
        for (ns, name), text in self.dump_errors.items():
            _atomic(root / "dumps" / ns / f"{name}.err", text.encode())
        for (ns, name), delay in self.dump_delays.items():
            _atomic(root / "dumps" / ns / f"{name}.delay", str(delay).encode())
        for (ns, name), n in self.dump_failtimes.items():
            _atomic(root / "dumps" / ns / f"{name}.failtimes", str(n).encode())
        for flag, value in (("unreachable", "1" if self.unreachable else None), ("context", self.context)):
            path = root / flag
            if value is None:
                path.unlink(missing_ok=True)
            else:
                _atomic(path, value.encode())
        return root


def _atomic(path: Path, data: bytes) -> None:
    """Write then rename, so a concurrent reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fake_env(cluster_dir: Path, log: Path, delay: float = 0.0, base: dict | None = None) -> dict:
    """Environment for running the fake tools: their bin dir first, then this Python's dir
    (the fakes' ``env python3`` then finds a real interpreter, not a slow shim)."""
    env = dict(base if base is not None else os.environ)
    env["PATH"] = os.pathsep.join([str(FAKE_BIN), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MESHCA_FAKE_CLUSTER"] = str(cluster_dir)
    env["MESHCA_FAKE_LOG"] = str(log)
    env["MESHCA_FAKE_DELAY"] = str(delay)
    return env


def read_log(log: Path) -> list[tuple[str, ...]]:
    """The fake tools' call log: one tuple per call, tool name first."""
    if not Path(log).exists():
        return []
    out = []
    for line in Path(log).read_text().splitlines():
        entry = json.loads(line)
        out.append((entry["tool"], *entry["argv"]))
    return out


# ----------------------------------------------------------------------------- scenarios


def sidecar_dump(chain: bytes, roots: bytes, style: str = "camel") -> bytes:
    return render_dump(sidecar_entries(chain, roots), style=style)


def standard_cluster(p: Pki | None = None, *, with_cacerts: bool = True) -> Cluster:
    """Istio CA (plugged-in cacerts) with both roots distributed: every pod trusts both."""
    p = p or make_pki()
    c = Cluster()
    if with_cacerts:
        c.set_secret(
            "cacerts",
            {
                "ca-cert.pem": p.citadel_ca.cert_pem,
                "ca-key.pem": b"-----BEGIN PRIVATE KEY-----\nredacted-in-tests\n-----END PRIVATE KEY-----\n",
                "root-cert.pem": p.citadel_root.cert_pem,
                "cert-chain.pem": p.pem(p.citadel_ca, p.citadel_root),
            },
        )
    both = p.pem(p.citadel_root, p.meshca_root)
    for i in range(2):
        c.add_pod("shop", f"web-{i}", dump=sidecar_dump(p.citadel_chain("shop", "web"), both), replicaset="web-7d9f8", template_hash="7d9f8")
    return c


class DirSource:
    """An in-process ProxySource over a cluster directory (for runner unit tests; the real
    sources are tested through the fake tools and the loopback API server)."""

    name = "dir"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.fetched: list[tuple[str, str]] = []

    def _json(self, *parts: str):
        path = self.root.joinpath(*parts)
        return json.loads(path.read_bytes()) if path.exists() else None

    def list_namespaces(self) -> list[str]:
        return [i["metadata"]["name"] for i in self._json("namespaces.json")["items"]]

    def list_pods(self, namespaces):
        items = self._json("pods.json")["items"]
        return [p for p in items if namespaces is None or p["metadata"]["namespace"] in namespaces]

    def read_secret(self, name, namespace="istio-system"):
        return self._json("secrets", namespace, f"{name}.json")

    def read_configmap(self, name, namespace="istio-system"):
        return self._json("configmaps", namespace, f"{name}.json")

    def fetch_dump(self, pod):
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.fetched.append((ns, name))
        d = self.root / "dumps" / ns
        if (d / f"{name}.err").exists():
            raise SourceError((d / f"{name}.err").read_text().strip())
        if not (d / f"{name}.json").exists():
            raise SourceError(f"no dump for {ns}/{name}")
        return (d / f"{name}.json").read_bytes()
