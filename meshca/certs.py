"""X.509 facts meshca decides by: fingerprints, the pinned Mesh CA root, and the pre-flight of
the four Citadel CA files asmcli turns into the ``cacerts`` Secret.

Everything here is decided by cryptography, never by matching names in subjects. Subjects are
read only for messages, through ``subject_text``, which tolerates the real Mesh CA root's
87-character CN (over the RFC 5280 limit of 64, so cryptography warns on every access).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from .errors import MeshcaError

# The real Mesh CA root (CN "istio_v1_cloud_workload_root-signer-0-2018-04-25T14:11:33-07:00
# K:1, 1:H52vgwEm3tc:0:18"), as embedded by asmcli's ca-migration-citadel overlay.
MESHCA_ROOT_SHA256 = "614849a4aa1a7ce593c04443862ad43b5364814d5e7d5125b07408dad2c526f0"

# The names istiod reads from the cacerts Secret; asmcli makes the keys from file basenames.
CANONICAL_NAMES = {
    "ca_cert": "ca-cert.pem",
    "ca_key": "ca-key.pem",
    "root_cert": "root-cert.pem",
    "cert_chain": "cert-chain.pem",
}
ROLES = {
    "ca_cert": "intermediate CA certificate",
    "ca_key": "intermediate CA key",
    "root_cert": "root certificate",
    "cert_chain": "certificate chain",
}
CONFIG_FIELDS = {"ca_cert": "caCert", "ca_key": "caKey", "root_cert": "rootCert", "cert_chain": "certChain"}

PEM_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"


def per_object(table: dict, obj, compute, limit: int = 65536):
    """``compute(obj)``, memoised in ``table`` per object: the table holds the object beside its
    value, so its id is never reused while it is there; emptied when it reaches ``limit``."""
    hit = table.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    value = compute(obj)
    if len(table) >= limit:
        table.clear()
    table[id(obj)] = (obj, value)
    return value


_FINGERPRINTS: dict[int, tuple[x509.Certificate, str]] = {}


def _sha256_hex(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER encoding: lower-case hex, no colons (memoised per certificate object)."""
    return per_object(_FINGERPRINTS, cert, _sha256_hex)


def colon_fingerprint(hex_fp: str) -> str:
    """openssl's form (``openssl x509 -noout -fingerprint -sha256``): upper-case byte pairs
    joined by ``:``. Every fingerprint shown to a person (text output, coded lines, logs) is in
    this form; JSON fields named ``sha256``/``...Sha256`` keep the lower-case hex (docs/commands.md)."""
    return ":".join(hex_fp[i : i + 2] for i in range(0, len(hex_fp), 2)).upper()


def short_fingerprint(hex_fp: str) -> str:
    """The first 8 bytes in openssl's form and ``...``: a prefix of what openssl prints."""
    return colon_fingerprint(hex_fp[:16]) + "..."


def subject_text(cert: x509.Certificate) -> str:
    """RFC 4514 subject, tolerant of over-long attributes (the real Mesh CA root's CN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cert.subject.rfc4514_string()


def issuer_text(cert: x509.Certificate) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cert.issuer.rfc4514_string()


def same_name(a: x509.Name, b: x509.Name) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return a == b


def load_certs(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in order. Raises ValueError when there is none."""
    if PEM_CERT_BEGIN not in data:
        raise ValueError("no BEGIN CERTIFICATE block")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.load_pem_x509_certificates(data)


def is_self_signed(cert: x509.Certificate) -> bool:
    if not same_name(cert.subject, cert.issuer):
        return False
    return signed_by(cert, cert)


_NAMES: dict[int, tuple[x509.Certificate, tuple[bytes | None, bytes | None]]] = {}


def _der_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at ``pos``; ValueError when cut."""
    tag = data[pos]
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or start + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + n], "big")
        start += n
    end = start + length
    if end > len(data):
        raise ValueError("DER element runs past its container")
    return tag, start, end


def _tbs_names(cert: x509.Certificate) -> tuple[bytes | None, bytes | None]:
    """The issuer and subject Names of ``cert`` exactly as encoded in its TBSCertificate
    (RFC 5280 4.1: [0] version, serialNumber, signature, issuer, validity, subject), or
    ``(None, None)`` when they cannot be found (then callers compare Names as before)."""
    try:
        tbs = cert.tbs_certificate_bytes
        tag, pos, end = _der_tlv(tbs, 0)
        if tag != 0x30:
            raise ValueError("TBSCertificate is not a SEQUENCE")
        fields = []
        while pos < end and len(fields) < 6:
            tag, start, stop = _der_tlv(tbs, pos)
            fields.append((tag, tbs[pos:stop]))
            pos = stop
        if fields and fields[0][0] == 0xA0:  # explicit version
            fields = fields[1:]
        if len(fields) < 5 or fields[2][0] != 0x30 or fields[4][0] != 0x30:
            raise ValueError("no issuer/subject Names")
        return fields[2][1], fields[4][1]
    except (ValueError, IndexError):
        return None, None


def _names(cert: x509.Certificate) -> tuple[bytes | None, bytes | None]:
    """``_tbs_names``, memoised per certificate object like ``fingerprint`` (parsing only)."""
    return per_object(_NAMES, cert, _tbs_names)


def names_issuer(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``cert``'s issuer Name is ``issuer``'s subject Name: byte for byte as both
    certificates encode them (what ``verify_directly_issued_by`` compares before any signature
    check), else, when a Name could not be located, by ``x509.Name`` equality."""
    want = _names(cert)[0]
    have = _names(issuer)[1]
    if want is not None and have is not None:
        return want == have
    return same_name(cert.issuer, issuer.subject)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer`` names and cryptographically signed ``cert``.

    A certificate whose subject is not ``cert``'s issuer is refused by name (that answer is
    what ``verify_directly_issued_by`` gives, ValueError, before any signature check); every
    certificate that does name it has the signature verified, on every call (never cached)."""
    return names_issuer(cert, issuer) and _verified(cert, issuer)


_LINKS: dict[int, tuple[x509.Certificate, tuple | None]] = {}
_KEYS: dict[int, tuple[x509.Certificate, object]] = {}


def _signature_facts(cert: x509.Certificate) -> tuple | None:
    """``_read_signature_facts``, parsed once per certificate object."""
    return per_object(_LINKS, cert, _read_signature_facts)


def _read_signature_facts(cert: x509.Certificate) -> tuple | None:
    """What verifying ``cert``'s signature reads from ``cert`` itself, parsed once per
    certificate object: ``(key class, signature, TBS bytes, verify arguments)`` for ECDSA and
    RSA PKCS#1 v1.5 signatures whose outer signatureAlgorithm is the TBS one byte for byte;
    None otherwise (then ``verify_directly_issued_by`` decides, as it always did)."""
    facts = None
    try:
        der = cert.public_bytes(serialization.Encoding.DER)
        _, tbs, _ = _der_tlv(der, 0)  # Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature }
        _, field, tbs_end = _der_tlv(der, tbs)
        tag, _, alg_end = _der_tlv(der, tbs_end)
        outer_alg = der[tbs_end:alg_end]
        ftag, _, fend = _der_tlv(der, field)  # [0] version, else serialNumber
        if ftag == 0xA0:
            _, _, fend = _der_tlv(der, fend)  # serialNumber
        _, _, send = _der_tlv(der, fend)  # TBSCertificate.signature
        inner_alg = der[fend:send]
        if tag == 0x30 and inner_alg == outer_alg:
            params = cert.signature_algorithm_parameters
            if isinstance(params, ec.ECDSA):
                facts = (ec.EllipticCurvePublicKey, cert.signature, cert.tbs_certificate_bytes, (params,))
            elif isinstance(params, padding.PKCS1v15):
                facts = (rsa.RSAPublicKey, cert.signature, cert.tbs_certificate_bytes, (params, cert.signature_hash_algorithm))
    except (ValueError, IndexError, TypeError, UnsupportedAlgorithm):
        facts = None
    return facts


def _public_key(cert: x509.Certificate):
    """``cert.public_key()``, loaded once per certificate object (None when it cannot be)."""
    return per_object(_KEYS, cert, _load_public_key)


def _load_public_key(cert: x509.Certificate):
    try:
        return cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _verified(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The signature check of one link whose names match (``signed_by`` after its name test):
    always a real signature verification, never a remembered answer.

    It is the check ``verify_directly_issued_by`` makes (the outer and TBS signature algorithms
    equal, the issuer's key of the signature's kind, the signature over the TBS bytes with the
    algorithm's parameters), with the issuer's key loaded once per certificate object instead
    of on every call; any other signature kind goes to ``verify_directly_issued_by`` itself."""
    try:
        facts = _signature_facts(cert)
        if facts is not None:
            key = _public_key(issuer)
            if isinstance(key, facts[0]):
                key.verify(facts[1], facts[2], *facts[3])
                return True
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(ku.key_cert_sign)


def verify_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
) -> list[x509.Certificate] | None:
    """The path from ``leaf`` through ``intermediates`` to one of ``roots``, or None.

    Every link's signature is verified; the path ends at a certificate that is one of
    ``roots`` by fingerprint (``openssl verify -trusted ROOT -untrusted CHAIN LEAF`` without
    the time checks, which callers make separately).
    """
    trusted = {fingerprint(r) for r in roots}
    path = [leaf]
    used = {fingerprint(leaf)}
    current = leaf
    while True:
        if fingerprint(current) in trusted:
            return path
        # Only certificates that name current's issuer are candidates: each of them has its
        # signature verified, every time; the others cannot have issued it.
        for r in roots:
            if names_issuer(current, r) and _verified(current, r):
                return path + [r]
        for nxt in intermediates:
            if fingerprint(nxt) not in used and names_issuer(current, nxt) and _verified(current, nxt):
                break
        else:
            return None
        used.add(fingerprint(nxt))
        path.append(nxt)
        current = nxt


def _utc(cert_time: dt.datetime) -> dt.datetime:
    return cert_time if cert_time.tzinfo else cert_time.replace(tzinfo=dt.timezone.utc)


def not_before(cert: x509.Certificate) -> dt.datetime:
    return _utc(cert.not_valid_before_utc)


def not_after(cert: x509.Certificate) -> dt.datetime:
    return _utc(cert.not_valid_after_utc)


@dataclass(frozen=True)
class CaFiles:
    """Paths of the four Citadel CA files, as given (display) and resolved (on disk)."""

    ca_cert: Path
    ca_key: Path
    root_cert: Path
    cert_chain: Path
    display: dict = field(default_factory=dict, compare=False)

    def items(self) -> Iterable[tuple[str, Path]]:
        for role in ("ca_cert", "ca_key", "root_cert", "cert_chain"):
            yield role, getattr(self, role)

    def shown(self, role: str) -> str:
        return str(self.display.get(role, getattr(self, role)))


@dataclass(frozen=True)
class CertFact:
    """One certificate of the CA files, as printed by ``meshca certs verify`` (no key material)."""

    role: str  # ca_cert | root_cert | cert_chain
    sha256: str
    subject: str
    issuer: str
    not_before: str
    not_after: str
    is_ca: bool
    self_signed: bool

    def as_dict(self) -> dict:
        return {
            "sha256": self.sha256,
            "subject": self.subject,
            "issuer": self.issuer,
            "notBefore": self.not_before,
            "notAfter": self.not_after,
            "isCa": self.is_ca,
            "selfSigned": self.self_signed,
        }


@dataclass(frozen=True)
class CaFacts:
    """What the CA files say, without their key: safe to print and to put in plans."""

    root_sha256: str
    ca_cert_sha256: str
    root_subject: str
    ca_subject: str
    ca_not_after: str
    root_not_after: str
    key_kind: str = ""  # e.g. "RSA 2048-bit"; never the key itself
    certificates: tuple[CertFact, ...] = ()  # ca-cert.pem, root-cert.pem, then cert-chain.pem's, in file order


def _read(path: Path, role: str, shown: str, errors: list[MeshcaError]) -> bytes | None:
    if not path.exists():
        errors.append(MeshcaError("CertFileMissing", shown, role=ROLES[role], field=CONFIG_FIELDS[role]))
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        errors.append(MeshcaError("CertFileUnreadable", shown, reason=exc.strerror or exc))
        return None


def _load_key(data: bytes, shown: str, errors: list[MeshcaError]):
    if b"PRIVATE KEY-----" not in data:
        kind = "certificate instead of a key" if PEM_CERT_BEGIN in data else "no BEGIN PRIVATE KEY block"
        errors.append(MeshcaError("KeyFileNotKey", shown, reason=kind))
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        errors.append(MeshcaError("KeyFileNotKey", shown, reason="the key is encrypted"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        errors.append(MeshcaError("KeyFileNotKey", shown, reason=str(exc).split("\n")[0][:120]))
    return None


def _key_kind(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA {key.key_size}-bit"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC ({key.curve.name})"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return "EdDSA"
    if isinstance(key, dsa.DSAPrivateKey):
        return "DSA"
    return type(key).__name__


def _public_numbers(obj):
    """The public numbers of a key or of a certificate's key; None when they cannot be read
    (an algorithm cryptography does not support is a mismatch, never a traceback)."""
    try:
        public = obj.public_key()
        return public.public_numbers()
    except (ValueError, TypeError, AttributeError, UnsupportedAlgorithm):
        return None


def _cert_fact(role: str, cert: x509.Certificate) -> CertFact:
    return CertFact(
        role=role,
        sha256=fingerprint(cert),
        subject=subject_text(cert),
        issuer=issuer_text(cert),
        not_before=not_before(cert).isoformat(),
        not_after=not_after(cert).isoformat(),
        is_ca=is_ca(cert),
        self_signed=is_self_signed(cert),
    )


def verify_ca_files(
    files: CaFiles,
    *,
    now: dt.datetime | None = None,
    margin_days: int = 0,
    check_names: bool = True,
) -> tuple[CaFacts | None, list[MeshcaError]]:
    """Pre-flight the four files the way asmcli will, and more. Returns (facts, errors).

    asmcli checks: an RSA key (``openssl rsa -check``), key and ca-cert.pem with one modulus,
    ca-cert.pem verifying through cert-chain.pem to root-cert.pem. meshca adds: canonical
    file names (``check_names``), ca-cert.pem a CA (CA:TRUE, keyCertSign), every certificate
    in root-cert.pem self-signed, cert-chain.pem holding ca-cert.pem (istiod sends it after
    every workload certificate), and every certificate valid at ``now`` and still for
    ``margin_days`` days. Every problem found is reported (not only the first), each with
    its own code; facts (fingerprints, subjects, expiries, the key's kind) only when none.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    errors: list[MeshcaError] = []
    if check_names:
        for role, path in files.items():
            if path.name != CANONICAL_NAMES[role]:
                errors.append(
                    MeshcaError("CertFileNameNotCanonical", files.shown(role), got=path.name, want=CANONICAL_NAMES[role])
                )
    raw = {role: _read(path, role, files.shown(role), errors) for role, path in files.items()}

    certs: dict[str, list[x509.Certificate]] = {}
    for role in ("ca_cert", "root_cert", "cert_chain"):
        data = raw[role]
        if data is None:
            continue
        try:
            certs[role] = load_certs(data)
        except ValueError as exc:
            errors.append(
                MeshcaError("CertFileNotPem", files.shown(role), kind="certificate", reason=str(exc).split("\n")[0][:120], role=CANONICAL_NAMES[role])
            )
    key = _load_key(raw["ca_key"], files.shown("ca_key"), errors) if raw["ca_key"] is not None else None

    ca_cert = certs.get("ca_cert", [None])[0]
    root = certs.get("root_cert", [None])[0]
    chain = certs.get("cert_chain", [])

    if key is not None and not isinstance(key, rsa.RSAPrivateKey):
        errors.append(MeshcaError("CaKeyNotRsa", files.shown("ca_key"), kind=_key_kind(key)))
    elif key is not None and ca_cert is not None:
        mine = _public_numbers(key)
        if mine is None or mine != _public_numbers(ca_cert):
            errors.append(MeshcaError("CaKeyMismatch", files.shown("ca_key"), cert=files.shown("ca_cert")))

    if ca_cert is not None and not is_ca(ca_cert):
        errors.append(
            MeshcaError("CaCertNotCa", files.shown("ca_cert"), what=f"{subject_text(ca_cert)} is not a CA (basicConstraints CA:FALSE or no keyCertSign)")
        )
    # root-cert.pem may hold several roots (istiod trusts each); every one must be a root.
    roots = certs.get("root_cert", [])
    for candidate in roots:
        if not is_self_signed(candidate):
            errors.append(
                MeshcaError("RootNotSelfSigned", files.shown("root_cert"), subject=subject_text(candidate), issuer=issuer_text(candidate))
            )
    if ca_cert is not None and roots and "cert_chain" in certs:
        if verify_path(ca_cert, chain, roots) is None:
            errors.append(
                MeshcaError(
                    "ChainDoesNotReachRoot",
                    files.shown("cert_chain"),
                    reason=f"{subject_text(ca_cert)} does not verify through cert-chain.pem to root-cert.pem ({short_fingerprint(fingerprint(root))})",
                )
            )
        # istiod appends cert-chain.pem to every workload certificate it signs: without
        # ca-cert.pem in it, peers cannot link a workload certificate to the root.
        if fingerprint(ca_cert) not in {fingerprint(c) for c in chain}:
            errors.append(
                MeshcaError(
                    "CertChainLacksCaCert",
                    files.shown("cert_chain"),
                    subject=subject_text(ca_cert),
                    fingerprint=short_fingerprint(fingerprint(ca_cert)),
                )
            )

    margin = dt.timedelta(days=margin_days)
    checked: set[str] = set()
    for role in ("ca_cert", "root_cert", "cert_chain"):
        for cert in certs.get(role, []):
            fp = fingerprint(cert)
            if fp in checked:
                continue
            checked.add(fp)
            role_name = ROLES[role] if role != "cert_chain" else "certificate in the chain"
            if not_before(cert) > now:
                errors.append(
                    MeshcaError("CertNotYetValid", files.shown(role), subject=subject_text(cert), not_before=not_before(cert).isoformat())
                )
            elif not_after(cert) <= now:
                errors.append(
                    MeshcaError("CertExpired", files.shown(role), subject=subject_text(cert), not_after=not_after(cert).isoformat(), role=role_name)
                )
            elif margin_days and not_after(cert) <= now + margin:
                errors.append(
                    MeshcaError(
                        "CertExpiresWithinMargin",
                        files.shown(role),
                        subject=subject_text(cert),
                        not_after=not_after(cert).isoformat(),
                        margin_days=margin_days,
                        role=role_name,
                    )
                )

    if errors or ca_cert is None or root is None:
        return None, errors
    return (
        CaFacts(
            root_sha256=fingerprint(root),
            ca_cert_sha256=fingerprint(ca_cert),
            root_subject=subject_text(root),
            ca_subject=subject_text(ca_cert),
            ca_not_after=not_after(ca_cert).isoformat(),
            root_not_after=not_after(root).isoformat(),
            key_kind=_key_kind(key) if key is not None else "",
            certificates=tuple(_cert_fact(role, c) for role in ("ca_cert", "root_cert", "cert_chain") for c in certs.get(role, [])),
        ),
        [],
    )
