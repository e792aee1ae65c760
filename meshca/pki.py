"""Issuing real X.509 certificates: test CAs, the simulated Mesh CA, workload certificates.

Used by scripts/gen-test-certs.py (throwaway samples), the tests and the simulated mesh. Never
used on a real mesh: production CA material comes from the operator's files.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str, org: str | None = None, *, lenient: bool = False) -> x509.Name:
    """A subject. ``lenient`` allows over-long attributes (the real Mesh CA root's CN is 87)."""
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=not lenient))
    return x509.Name(attrs)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _builder(subject: x509.Name, issuer: x509.Name, public_key, not_before: dt.datetime, not_after: dt.datetime, serial: int | None):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _ca_extensions(builder: x509.CertificateBuilder, public_key, path_length: int | None, issuer_key=None):
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder


def make_root(
    cn: str,
    *,
    org: str | None = None,
    key=None,
    not_before: dt.datetime | None = None,
    days: int = 3650,
    subject: x509.Name | None = None,
    serial: int | None = None,
) -> Issued:
    key = key or rsa_key()
    not_before = not_before or EPOCH
    subject = subject or name(cn, org)
    builder = _builder(subject, subject, key.public_key(), not_before, not_before + dt.timedelta(days=days), serial)
    builder = _ca_extensions(builder, key.public_key(), None)
    return Issued(builder.sign(key, hashes.SHA256()), key)


def make_intermediate(
    cn: str,
    issuer: Issued,
    *,
    org: str | None = None,
    key=None,
    not_before: dt.datetime | None = None,
    days: int = 3650,
    path_length: int | None = 0,
    ca: bool = True,
) -> Issued:
    key = key or rsa_key()
    not_before = not_before or EPOCH
    builder = _builder(name(cn, org), issuer.cert.subject, key.public_key(), not_before, not_before + dt.timedelta(days=days), None)
    if ca:
        builder = _ca_extensions(builder, key.public_key(), path_length, issuer.key)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def make_workload(
    spiffe_id: str,
    issuer: Issued,
    *,
    key=None,
    not_before: dt.datetime | None = None,
    hours: float = 24,
) -> Issued:
    """A workload (leaf) certificate with a SPIFFE URI SAN, usable for mTLS both ways."""
    key = key or ec_key()
    not_before = not_before or EPOCH
    builder = _builder(
        x509.Name([]), issuer.cert.subject, key.public_key(), not_before, not_before + dt.timedelta(hours=hours), None
    )
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=True,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
    )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner (0600), whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_ca_files(directory: Path, root: Issued, ca: Issued, chain: list[Issued] | None = None) -> dict[str, Path]:
    """The four Citadel files with their canonical names (cert-chain = ca-cert + issuers + root)."""
    directory.mkdir(parents=True, exist_ok=True)
    chain = chain if chain is not None else [ca, root]
    paths = {
        "ca_cert": directory / "ca-cert.pem",
        "ca_key": directory / "ca-key.pem",
        "root_cert": directory / "root-cert.pem",
        "cert_chain": directory / "cert-chain.pem",
    }
    paths["ca_cert"].write_bytes(ca.cert_pem)
    write_private(paths["ca_key"], ca.key_pem)
    paths["root_cert"].write_bytes(root.cert_pem)
    paths["cert_chain"].write_bytes(b"".join(i.cert_pem for i in chain))
    return paths


def citadel_ca(org: str = "meshca-test", *, days: int = 7300, not_before: dt.datetime | None = None) -> tuple[Issued, Issued]:
    """A root and an RSA intermediate shaped like Istio's plug-in CA samples."""
    root = make_root("Root CA", org=org, days=days, not_before=not_before)
    ca = make_intermediate("Intermediate CA", root, org=org, days=days, not_before=not_before)
    return root, ca
