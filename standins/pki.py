"""Real X.509 for the stand-ins (``cryptography``): istiod's Citadel CA, a test "Mesh CA", leaves.

- istiod's CA (istio/istio 1.19.10 ``security/pkg/pki/ca/ca.go``): with ``cacerts`` in
  istio-system it signs with ``ca-cert.pem``/``ca-key.pem`` and its root is ``root-cert.pem``;
  else it loads ``istio-ca-secret`` (ca.go:147-159), and when that is absent too it generates a
  self-signed root (org = trust domain, ca.go:161-183) and writes it to ``istio-ca-secret`` with
  the keys of ``BuildSecret`` (ca.go:274-288: ``cert-chain.pem``, ``key.pem``, ``root-cert.pem``
  empty; ``ca-cert.pem``, ``ca-key.pem``; type ``istio.io/ca-root``, ca.go:41).
- Mesh CA: Google's managed CA cannot exist here. ``MESHCA_STANDIN_MESHCA_ROOT`` (a PEM file) and
  ``MESHCA_STANDIN_MESHCA_KEY`` (its key) name one; otherwise a TEST "Mesh CA" (self-signed root
  whose CN starts ``istio_v1_cloud_workload_root-signer-``, so text classifiers such as
  migrate_ca see Mesh CA, plus an intermediate) is generated once into the state dir. It is not
  Google's root and its fingerprint differs from the real one (61:48:49:...:26:F0).
- Leaves: RSA 2048 (istio-agent's default), 24 h, SPIFFE URI SAN, chain = leaf + intermediates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MESHCA_ROOT_CN = "istio_v1_cloud_workload_root-signer-0-standin-test K:1, 1:standin:0:18"
MESHCA_INTERMEDIATE_CN = "istio_v1_cloud_workload_signer-standin-test"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem) if pem and b"BEGIN CERTIFICATE" in pem else []


def load_key(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _name(cn: str | None = None, org: str | None = None, extra: list | None = None) -> x509.Name:
    attrs = list(extra or [])
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_ca(subject: x509.Name, key, issuer: x509.Name | None = None, issuer_key=None, days: int = 3650) -> x509.Certificate:
    issuer = issuer or subject
    issuer_key = issuer_key or key
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - dt.timedelta(minutes=5))
        .not_valid_after(now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return b.sign(issuer_key, hashes.SHA256())


def _long_cn(cn: str) -> x509.NameAttribute:
    """Google's root-signer CNs exceed X.520's 64 characters (the real one has 87); allow it as they do."""
    try:
        return x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)
    except TypeError:  # an older cryptography without _validate
        return x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])


def citadel_self_signed(org: str = "cluster.local") -> tuple[bytes, bytes]:
    """istiod's self-signed root when neither cacerts nor istio-ca-secret exists (ca.go:161-183)."""
    key = new_key()
    cert = make_ca(_name(org=org), key)
    return cert_pem(cert), key_pem(key)


@dataclass
class Signer:
    """Who signs a revision's workload certificates."""

    kind: str  # "citadel" | "mesh_ca"
    cert: x509.Certificate
    key: object
    chain: list[x509.Certificate]  # intermediates above the signing cert, up to (not incl.) the root
    root: x509.Certificate

    def issue(self, spiffe: str, hours: int = 24) -> bytes:
        """A workload leaf + its chain (what Envoy's ``default`` secret holds)."""
        leaf_key = new_key()
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() - dt.timedelta(minutes=1))
            .not_valid_after(now() + dt.timedelta(hours=hours))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = [leaf]
        if self.cert is not self.root and fingerprint(self.cert) != fingerprint(self.root):
            chain.append(self.cert)
        chain += [c for c in self.chain if fingerprint(c) != fingerprint(self.root)]
        return b"".join(cert_pem(c) for c in chain)


def citadel_signer_from_secret_data(data: dict[str, bytes], plugged: bool) -> Signer:
    """``cacerts`` (plugged=True: ca-cert, ca-key, cert-chain, root-cert) or ``istio-ca-secret``."""
    ca_cert = load_certs(data.get("ca-cert.pem", b""))[0]
    ca_key = load_key(data["ca-key.pem"])
    if plugged:
        root = load_certs(data.get("root-cert.pem", b""))[0]
        chain = load_certs(data.get("cert-chain.pem", b""))
    else:
        root = ca_cert  # self-signed; ca.go:150 AppendRootCerts(ca-cert.pem, ...)
        chain = []
    chain = [c for c in chain if fingerprint(c) != fingerprint(ca_cert)]
    if not key_matches(ca_cert, ca_key):
        # istiod refuses such a secret (security/pkg/pki/ca/ca.go:151-154, NewVerifiedKeyCertBundleFromPem):
        # its root is still what proxies were given, but nothing can be signed with it.
        ca_key = None
    return Signer("citadel", ca_cert, ca_key, chain, root)


def key_matches(cert: x509.Certificate, key) -> bool:
    pub = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pub == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write(path: str, data: bytes, mode: int = 0o600) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def meshca_signer(state_dir: str) -> Signer:
    """The stand-in Mesh CA (see the module docstring). Created once per state dir, under a lock."""
    env_root = os.environ.get("MESHCA_STANDIN_MESHCA_ROOT")
    if env_root:
        with open(env_root, "rb") as fh:
            root = load_certs(fh.read())[0]
        env_key = os.environ.get("MESHCA_STANDIN_MESHCA_KEY")
        if not env_key:
            raise RuntimeError(
                "MESHCA_STANDIN_MESHCA_ROOT is set without MESHCA_STANDIN_MESHCA_KEY: the stand-in cannot sign Mesh CA leaves with a root it has no key for"
            )
        with open(env_key, "rb") as fh:
            key = load_key(fh.read())
        return Signer("mesh_ca", root, key, [], root)
    d = os.path.join(state_dir, "meshca")
    paths = {n: os.path.join(d, n) for n in ("root-cert.pem", "root-key.pem", "ca-cert.pem", "ca-key.pem")}
    os.makedirs(d, exist_ok=True)
    import fcntl

    with open(os.path.join(d, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(os.path.exists(p) for p in paths.values()):
            google = [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, "Mountain View"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google LLC (stand-in test CA)"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Cloud"),
            ]
            rkey = new_key()
            rname = x509.Name(google + [_long_cn(MESHCA_ROOT_CN)])
            root = make_ca(rname, rkey, days=36500)
            ikey = new_key()
            iname = x509.Name(google + [x509.NameAttribute(NameOID.COMMON_NAME, MESHCA_INTERMEDIATE_CN)])
            inter = make_ca(iname, ikey, issuer=rname, issuer_key=rkey, days=3650)
            _write(paths["root-key.pem"], key_pem(rkey))
            _write(paths["ca-key.pem"], key_pem(ikey))
            _write(paths["ca-cert.pem"], cert_pem(inter), 0o644)
            _write(paths["root-cert.pem"], cert_pem(root), 0o644)
    with open(paths["root-cert.pem"], "rb") as fh:
        root = load_certs(fh.read())[0]
    with open(paths["ca-cert.pem"], "rb") as fh:
        inter = load_certs(fh.read())[0]
    with open(paths["ca-key.pem"], "rb") as fh:
        ikey = load_key(fh.read())
    return Signer("mesh_ca", inter, ikey, [], root)


def meshca_root_pem(state_dir: str) -> bytes:
    env_root = os.environ.get("MESHCA_STANDIN_MESHCA_ROOT")
    if env_root:
        with open(env_root, "rb") as fh:
            return cert_pem(load_certs(fh.read())[0])
    return cert_pem(meshca_signer(state_dir).root)


def serving_cert(host: str = "127.0.0.1") -> tuple[bytes, bytes, bytes]:
    """A self-signed CA + serving cert for ``host`` (IP SAN). Returns (ca_pem, cert_pem, key_pem)."""
    import ipaddress

    ca_key = new_key()
    ca_name = _name(cn="meshca stand-in injector CA", org="meshca stand-ins")
    ca = make_ca(ca_name, ca_key, days=30)
    key = new_key()
    try:
        san = [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        san = [x509.DNSName(host)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn=host))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - dt.timedelta(minutes=5))
        .not_valid_after(now() + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert_pem(ca), cert_pem(cert), key_pem(key)


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
