"""Certificate material of the simulated mesh: signers and workload credentials.

Everything is real X.509 (``meshca.pki``). Workload credentials are issued once per
(signer, SPIFFE ID, expired) and cached for the process, so a rehearsal of hundreds of
steps issues each identity once per signer. Keys stay in memory: ``Credential.key_pem`` is
read only to hand the key to OpenSSL through an anonymous memory file (``tls.py``).

Validity: OpenSSL checks certificates against the wall clock, which the simulation cannot
set. So a valid credential is valid from 2024-01-01 for a century, and a credential that has
expired in *simulated* time is issued as its expired twin (same signer, same SPIFFE ID,
notAfter 2024-01-02): the real handshake then fails exactly as Envoy's would.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .. import pki
from ..certs import fingerprint, is_self_signed, load_certs, per_object

VALID_HOURS = 100 * 365 * 24
EXPIRED_HOURS = 24
MESHCA_ROOT_CN = "istio_v1_cloud_workload_root-signer-0-2018-04-25T14:11:33-07:00 K:1, 1:H52vgwEm3tc:0:18"


@dataclass(frozen=True, eq=False)
class Signer:
    """A CA that signs workload certificates.

    ``issuer`` signs the leaves (the root itself for a self-signed istiod CA);
    ``intermediates`` are presented after the leaf (issuer first, root excluded).
    """

    label: str
    root: x509.Certificate
    issuer: pki.Issued = field(repr=False)
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def root_fp(self) -> str:
        return fingerprint(self.root)

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, eq=False)
class Credential:
    """What a proxy presents: leaf + intermediates, and its (in-memory) key."""

    spiffe: str
    signer: Signer
    expired: bool
    chain: tuple[x509.Certificate, ...]
    key: object = field(repr=False)
    chain_fp: str = ""

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


_LOCK = threading.Lock()
_CREDENTIALS: dict[tuple[str, str, str, bool], Credential] = {}
_ROOTS: dict[str, "Signer"] = {}
_STATS = {"issued": 0}


def chain_fingerprint(certs) -> str:
    h = hashlib.sha256()
    for c in certs:
        h.update(bytes.fromhex(fingerprint(c)))
    return h.hexdigest()


_SIGNER_KEYS: dict[int, tuple[Signer, tuple[str, str]]] = {}


def _signer_key(signer: Signer) -> tuple[str, str]:
    """(root fingerprint, issuing certificate fingerprint) of a signer, once per signer object."""
    return per_object(_SIGNER_KEYS, signer, lambda s: (s.root_fp, fingerprint(s.issuer.cert)), limit=4096)


def issue(signer: Signer, spiffe: str, expired: bool = False) -> Credential:
    """The workload credential for ``spiffe`` from ``signer`` (issued once, then cached)."""
    key = (*_signer_key(signer), spiffe, expired)
    cached = _CREDENTIALS.get(key)  # one dict read (atomic): only additions take the lock
    if cached is not None:
        return cached
    leaf = pki.make_workload(spiffe, signer.issuer, hours=EXPIRED_HOURS if expired else VALID_HOURS)
    chain = (leaf.cert, *signer.intermediates)
    cred = Credential(spiffe, signer, expired, chain, leaf.key, chain_fingerprint(chain))
    with _LOCK:
        _STATS["issued"] += 1
        return _CREDENTIALS.setdefault(key, cred)


def issued_count() -> int:
    return _STATS["issued"]


def meshca_signer() -> Signer:
    """The simulated Mesh CA: its own root (a stand-in for the pinned Google root) and intermediate."""
    with _LOCK:
        cached = _ROOTS.get("meshca")
    if cached is not None:
        return cached
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the real root's CN is 87 characters, over RFC 5280's 64
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google LLC"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "meshca rehearsal: SIMULATED Mesh CA"),
                x509.NameAttribute(NameOID.COMMON_NAME, MESHCA_ROOT_CN, _validate=False),
            ]
        )
        # The real root is RSA 4096 with SHA-256 (the PEM in anthos-service-mesh-packages
        # 1.19.10-asm.9+config1 asm/istio/options/ca-migration-citadel.yaml, lines 27-66, read
        # with cryptography: key_size 4096, sha256). The simulated keys are P-256: generating an
        # RSA 4096 key took 0.4-1.5 s here, more than a small rehearsal's whole run (3x20x3 went
        # from 1.3 s to 1.6-1.8 s), and no trust verdict depends on the key type.
        root = pki.make_root("", subject=subject, key=pki.ec_key(), days=36500)
        inter = pki.make_intermediate("istio_v1_cloud_workload_signer (simulated)", root, org="Google LLC", key=pki.ec_key(), days=36500)
    signer = Signer("meshca", root.cert, inter, (inter.cert,))
    with _LOCK:
        return _ROOTS.setdefault("meshca", signer)


def generated_root(cluster: str, generation: int) -> Signer:
    """The self-signed root istiod generates when it finds neither cacerts nor istio-ca-secret
    (Istio's self-signed CA: O=cluster.local, RSA 2048)."""
    tag = f"generated:{cluster}:{generation}"
    with _LOCK:
        cached = _ROOTS.get(tag)
    if cached is not None:
        return cached
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    root = pki.make_root("", subject=subject, days=36500, serial=None)
    signer = Signer(f"istiod self-signed root #{generation} ({cluster})", root.cert, root, ())
    with _LOCK:
        return _ROOTS.setdefault(tag, signer)


def signer_from_plugged(label: str, ca_cert_pem: bytes, ca_key_pem: bytes, root_pem: bytes, chain_pem: bytes) -> Signer:
    """A plugged-in CA (the cacerts Secret's four keys, or the stack's four files).

    Cached by content: every istiod start reads cacerts again, and loading an RSA key is slow."""
    tag = "plugged:" + hashlib.sha256(b"\0".join((label.encode(), ca_cert_pem, ca_key_pem, root_pem, chain_pem))).hexdigest()
    with _LOCK:
        cached = _ROOTS.get(tag)
    if cached is not None:
        return cached
    ca_cert = load_certs(ca_cert_pem)[0]
    root = load_certs(root_pem)[0]
    key = serialization.load_pem_private_key(ca_key_pem, password=None)
    chain = [c for c in load_certs(chain_pem)] if chain_pem else []
    inters: list[x509.Certificate] = [ca_cert] if not is_self_signed(ca_cert) else []
    for c in chain:
        if fingerprint(c) != fingerprint(ca_cert) and not is_self_signed(c):
            inters.append(c)
    signer = Signer(label, root, pki.Issued(ca_cert, key), tuple(inters))
    with _LOCK:
        return _ROOTS.setdefault(tag, signer)
