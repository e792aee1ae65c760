"""Reference roots and the cryptographic verdicts made against them.

A root is CITADEL or MESHCA only because its SHA-256 fingerprint equals a reference root's;
subjects are never compared (the legacy script's substring test counts any self-signed root
with the Mesh CA CN as Mesh CA). A workload certificate's issuer is the reference root its
chain verifies to, signature by signature.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

from cryptography import x509

from ..certs import MESHCA_ROOT_SHA256, fingerprint, load_certs, not_after, per_object, verify_path
from ..errors import MeshcaError
from .dumps import Bundle

CITADEL = "CITADEL"
MESHCA = "MESHCA"
LABELS = (CITADEL, MESHCA)
# Forbid-only: any root that is neither (e.g. a root istiod self-signs once the CA secrets are
# gone). Forbidding it with CITADEL makes a bundle of exactly the Mesh CA roots the only pass (C4).
UNKNOWN = "UNKNOWN"
FORBIDDABLE = (CITADEL, MESHCA, UNKNOWN)


@dataclass(frozen=True)
class References:
    """The reference roots of one check: fingerprints decide, certificates verify chains."""

    citadel: tuple[x509.Certificate, ...] = ()
    meshca: tuple[x509.Certificate, ...] = ()
    citadel_source: str | None = None  # "file" | "cacerts" | "istio-ca-secret" | None
    meshca_source: str = "pinned"  # "pinned" | "file"
    citadel_fps: frozenset[str] = field(init=False)
    meshca_fps: frozenset[str] = field(init=False)
    known_fps: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "citadel_fps", frozenset(fingerprint(c) for c in self.citadel))
        fps = {fingerprint(c) for c in self.meshca}
        if self.meshca_source == "pinned":
            fps.add(MESHCA_ROOT_SHA256)
        object.__setattr__(self, "meshca_fps", frozenset(fps))
        object.__setattr__(self, "known_fps", self.citadel_fps | self.meshca_fps)

    def labels(self, fp: str) -> tuple[str, ...]:
        out = []
        if fp in self.citadel_fps:
            out.append(CITADEL)
        if fp in self.meshca_fps:
            out.append(MESHCA)
        return tuple(out)

    def known(self) -> frozenset[str]:
        return self.known_fps

    def as_json(self) -> dict:
        return {
            "citadel": sorted(self.citadel_fps),
            "citadelSource": self.citadel_source,
            "meshca": sorted(self.meshca_fps),
            "meshcaSource": self.meshca_source,
        }


def load_reference_file(path: str | Path, flag: str, role: str) -> tuple[x509.Certificate, ...]:
    """Every certificate of a reference file (each one is a reference). Coded errors, exit 2."""
    p = Path(path)
    if not p.exists():
        raise MeshcaError("ReferenceFileMissing", str(path), flag=flag, role=role)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MeshcaError("ReferenceFileUnreadable", str(path), flag=flag, reason=exc.strerror or exc) from None
    try:
        return tuple(load_certs(data))
    except ValueError as exc:
        raise MeshcaError("ReferenceFileNotPem", str(path), flag=flag, role=role, reason=str(exc).split("\n")[0][:120]) from None


@dataclass(frozen=True)
class RootVerdict:
    labels: tuple[str, ...]  # sorted CITADEL, MESHCA
    unknown: tuple[str, ...]  # fingerprints of roots that are neither


def classify_bundle(bundle: Bundle, refs: References) -> RootVerdict:
    found: set[str] = set()
    unknown: list[str] = []
    for fp in bundle.fingerprints:
        labels = refs.labels(fp)
        if labels:
            found.update(labels)
        elif fp not in unknown:
            unknown.append(fp)
    return RootVerdict(tuple(l for l in LABELS if l in found), tuple(unknown))


@dataclass(frozen=True)
class WorkloadVerdict:
    issuer: str | None  # CITADEL | MESHCA | None (chain reaches no reference root)
    spiffe_id: str | None
    trust_domain: str | None
    not_after: dt.datetime
    path_length: int | None


def spiffe_id_of(cert: x509.Certificate) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("spiffe://"):
            return uri
    return None


def trust_domain_of(spiffe_id: str | None) -> str | None:
    if not spiffe_id:
        return None
    return urlparse(spiffe_id).netloc or None


def judge_workload(chain: Bundle, bundle: Bundle | None, refs: References) -> WorkloadVerdict:
    """Verify ``default`` (leaf + intermediates) up to a reference root.

    Reference certificates are the given ones plus any certificate in the proxy's own bundle
    or chain whose fingerprint is a reference (that is how the pinned Mesh CA root, known
    only by fingerprint, gets its public key).
    """
    leaf, intermediates = chain.certs[0], list(chain.certs[1:])
    known = refs.known_fps
    candidates: dict[str, x509.Certificate] = {fingerprint(c): c for c in (*refs.citadel, *refs.meshca)}
    for certs, fps in ((bundle.certs, bundle.fingerprints) if bundle else ((), ()), (chain.certs[1:], chain.fingerprints[1:])):
        for c, fp in zip(certs, fps):  # a Bundle's fingerprints are its certificates', in order
            if fp in known:
                candidates.setdefault(fp, c)
    issuer = None
    length = None
    path = verify_path(leaf, intermediates, list(candidates.values())) if candidates else None
    if path is not None:
        labels = refs.labels(fingerprint(path[-1]))
        issuer = labels[0] if labels else None
        length = len(path)
    sid, domain, expires = _leaf_facts(leaf)
    return WorkloadVerdict(issuer, sid, domain, expires, length)


_LEAVES: dict[int, tuple[x509.Certificate, tuple]] = {}


def _leaf_facts(leaf: x509.Certificate) -> tuple[str | None, str | None, dt.datetime]:
    """(SPIFFE ID, its trust domain, notAfter) of a leaf, read once per certificate object
    (what the certificate says; no verdict is remembered)."""
    return per_object(_LEAVES, leaf, _read_leaf_facts)


def _read_leaf_facts(leaf: x509.Certificate) -> tuple[str | None, str | None, dt.datetime]:
    sid = spiffe_id_of(leaf)
    return sid, trust_domain_of(sid), not_after(leaf)


def normalise_labels(values: Iterable[str], allowed: Sequence[str] = LABELS) -> tuple[str, ...]:
    """``CITADEL,MESHCA`` in any case and order -> the canonical tuple; ValueError otherwise.
    ``allowed=FORBIDDABLE`` also takes ``UNKNOWN`` (forbid lists only)."""
    out = set()
    for v in values:
        for part in str(v).split(","):
            part = part.strip().upper()
            if not part:
                continue
            if part not in allowed:
                raise ValueError(f"'{part}' is not {' or '.join(allowed)}")
            out.add(part)
    return tuple(l for l in allowed if l in out)


def missing_required(have: Sequence[str], require: Sequence[str]) -> list[str]:
    return [r for r in require if r not in have]
