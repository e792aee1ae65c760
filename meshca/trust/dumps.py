"""Proxy secret dumps: parse them (both spellings), select secrets by name, render them.

Two spellings reach us:
- istioctl ``proxy-config secret POD -o json``: protojson of ``envoy.admin.v3.SecretsConfigDump``,
  camelCase, top level ``dynamicActiveSecrets[]``;
- Envoy's own admin ``config_dump?mask=dynamic_active_secrets`` (what ``pilot-agent request``
  returns): snake_case, wrapped in ``{"configs": [{"@type": ...SecretsConfigDump, ...}]}``.

Secrets are selected BY NAME (``ROOTCA`` = trusted roots, ``default`` = workload chain), never by
position: gateways put credentials (``kubernetes://...``, ``file-cert:...``) first, and warming
secrets are not what the proxy uses. Every malformed dump is its own coded ``DumpError``.

Parsing is cached by content: byte-identical dumps (and byte-identical PEM bundles) are parsed
once per process (``_ParseCache``; bounded, keyed by the SHA-256 of all the bytes). Only what was
parsed is reused, never a verdict; a dump that fails to parse is parsed (and fails) every time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from cryptography import x509

from ..certs import PEM_CERT_BEGIN, fingerprint
from ..errors import MeshcaError

ROOTCA = "ROOTCA"
DEFAULT = "default"
SECRETS_DUMP_TYPE = "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
REDACTED = base64.b64encode(b"[redacted]").decode()


class DumpError(MeshcaError):
    """A problem of one proxy's dump: that pod is reported as ``error`` with this coded line."""


# camelCase / snake_case spellings of the fields we read
_ACTIVE = ("dynamicActiveSecrets", "dynamic_active_secrets")
_WARMING = ("dynamicWarmingSecrets", "dynamic_warming_secrets")
_TLS_CERT = ("tlsCertificate", "tls_certificate")
_CHAIN = ("certificateChain", "certificate_chain")
_VALIDATION = ("validationContext", "validation_context")
_TRUSTED_CA = ("trustedCa", "trusted_ca")
_INLINE_BYTES = ("inlineBytes", "inline_bytes")
_INLINE_STRING = ("inlineString", "inline_string")


def _get(obj: Any, names: tuple[str, ...]) -> Any:
    if not isinstance(obj, Mapping):
        return None
    for n in names:
        if n in obj:
            return obj[n]
    return None


@dataclass(frozen=True)
class DataSource:
    """One Envoy DataSource: inline base64 bytes, an inline string, or a file the proxy reads."""

    inline_bytes: str | None = None
    inline_string: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class SecretEntry:
    name: str
    kind: str  # "ca" (validation context), "cert" (tls certificate), "other"
    data: DataSource | None


@dataclass(frozen=True)
class ProxySecrets:
    """The active secrets of one proxy, by name, plus the names of warming ones."""

    style: str  # "camel" | "snake"
    active: Mapping[str, SecretEntry]
    warming: tuple[str, ...]
    decoded: dict = field(default_factory=dict, compare=False, repr=False)  # entry name -> PEM bytes (a cached parse)

    def _found(self) -> str:
        names = ", ".join(sorted(self.active)) or "none"
        if self.warming:
            names += f"; warming: {', '.join(sorted(self.warming))}"
        return names

    def rootca_pem(self, subject: str) -> bytes:
        """The ROOTCA bundle's PEM bytes (every trusted root, concatenated)."""
        entry = self.active.get(ROOTCA)
        if entry is None:
            raise DumpError("DumpNoRootCa", subject, found=self._found())
        return self._decode(entry, subject)

    def default_pem(self, subject: str) -> bytes:
        """The workload chain's PEM bytes (leaf first, then intermediates)."""
        entry = self.active.get(DEFAULT)
        if entry is None:
            raise DumpError("DumpNoWorkloadCert", subject, found=self._found())
        return self._decode(entry, subject)

    def _decode(self, entry: SecretEntry, subject: str) -> bytes:
        hit = self.decoded.get(entry.name)
        if hit is None:
            hit = self.decoded[entry.name] = decode_entry(entry, subject)  # an error is raised every time
        return hit


def _data_source(obj: Any) -> DataSource | None:
    if not isinstance(obj, Mapping):
        return None
    fn = obj.get("filename")
    return DataSource(
        inline_bytes=_get(obj, _INLINE_BYTES),
        inline_string=_get(obj, _INLINE_STRING),
        filename=fn if isinstance(fn, str) else None,
    )


def _entry(item: Mapping) -> SecretEntry | None:
    name = item.get("name")
    secret = item.get("secret")
    if not isinstance(name, str):
        return None
    if not isinstance(secret, Mapping):
        return SecretEntry(name, "other", None)
    tls = _get(secret, _TLS_CERT)
    if isinstance(tls, Mapping):
        return SecretEntry(name, "cert", _data_source(_get(tls, _CHAIN)))
    vc = _get(secret, _VALIDATION)
    if isinstance(vc, Mapping):
        return SecretEntry(name, "ca", _data_source(_get(vc, _TRUSTED_CA)))
    return SecretEntry(name, "other", None)


def _secrets_dump(doc: Any) -> tuple[Mapping, str]:
    """The SecretsConfigDump object and its spelling, from either top-level shape."""
    if isinstance(doc, Mapping) and "configs" in doc:
        configs = doc["configs"]
        if not isinstance(configs, list):
            raise ValueError("'configs' is not a list")
        for cfg in configs:
            if isinstance(cfg, Mapping) and cfg.get("@type") == SECRETS_DUMP_TYPE:
                style = "camel" if any(k in cfg for k in ("dynamicActiveSecrets", "dynamicWarmingSecrets")) else "snake"
                return cfg, style
        types = sorted({str(c.get("@type")) for c in configs if isinstance(c, Mapping)})
        raise ValueError(f"no {SECRETS_DUMP_TYPE.rsplit('.', 1)[-1]} among configs ({', '.join(types) or 'none'})")
    if isinstance(doc, Mapping):
        if any(k in doc for k in _ACTIVE + _WARMING):
            return doc, "snake" if any(k in doc for k in ("dynamic_active_secrets", "dynamic_warming_secrets")) else "camel"
        # protojson omits empty repeated fields: a proxy with no secrets at all dumps "{}"
        if not doc:
            return doc, "camel"
        raise ValueError(f"top-level keys {', '.join(sorted(map(str, doc))[:5])}")
    raise ValueError(f"top level is a JSON {type(doc).__name__}")


class _ParseCache:
    """What byte-identical input parsed to, by the SHA-256 of all its bytes (bounded: cleared
    when full). Results are immutable (frozen dataclasses of immutable parts)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.items: dict[tuple[str, bytes], object] = {}

    def get(self, key: tuple[str, bytes]):
        with self.lock:
            return self.items.get(key)

    def put(self, key: tuple[str, bytes], value):
        with self.lock:
            if len(self.items) >= self.size:
                self.items.clear()
            return self.items.setdefault(key, value)


_PARSED = _ParseCache(32768)
_DIGESTS: dict[int, tuple[bytes, bytes]] = {}
_DIGESTS_HELD = 0


def _digest(data: bytes) -> bytes:
    """SHA-256 of ALL of ``data``, once per bytes object (immutable; the memo holds it, so its
    id is not reused while it is there; bounded): an in-process source hands the same dump
    object out again, and a parsed dump hands out the same PEM objects."""
    if type(data) is not bytes:
        return hashlib.sha256(data).digest()
    hit = _DIGESTS.get(id(data))
    if hit is not None and hit[0] is data:
        return hit[1]
    digest = hashlib.sha256(data).digest()
    global _DIGESTS_HELD
    if len(_DIGESTS) >= 16384 or _DIGESTS_HELD + len(data) > 64 << 20:  # at most 64 MiB held
        _DIGESTS.clear()
        _DIGESTS_HELD = 0
    _DIGESTS[id(data)] = (data, digest)
    _DIGESTS_HELD += len(data)
    return digest


def parse_dump(data: bytes | str, subject: str) -> ProxySecrets:
    """Parse one proxy's secret dump. ``subject`` names the pod in error lines (the parse of
    byte-identical dumps is cached; errors are not)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    key = ("dump", _digest(raw))
    hit = _PARSED.get(key)
    if hit is not None:
        return hit
    return _PARSED.put(key, _parse_dump(data, subject))


def _parse_dump(data: bytes | str, subject: str) -> ProxySecrets:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DumpError("DumpNotJson", subject, reason=f"not UTF-8 at byte {exc.start}") from None
    else:
        text = data
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            what = "empty"
        elif exc.msg.startswith("Unterminated string"):
            # json names the string's start ("... starting at"): the dump was cut inside it.
            what = f"cut inside a string that starts at line {exc.lineno} column {exc.colno} of {len(text)} characters"
        else:
            what = f"{exc.msg} at line {exc.lineno} column {exc.colno} of {len(text)} characters"
        raise DumpError("DumpNotJson", subject, reason=what) from None
    try:
        dump, style = _secrets_dump(doc)
    except ValueError as exc:
        raise DumpError("DumpNotSecretsDump", subject, reason=str(exc)) from None
    active: dict[str, SecretEntry] = {}
    for item in _get(dump, _ACTIVE) or []:
        entry = _entry(item) if isinstance(item, Mapping) else None
        if entry is not None and entry.name not in active:
            active[entry.name] = entry
    warming = tuple(
        str(item.get("name")) for item in (_get(dump, _WARMING) or []) if isinstance(item, Mapping) and item.get("name")
    )
    return ProxySecrets(style=style, active=MappingProxyType(active), warming=warming)


def decode_entry(entry: SecretEntry, subject: str) -> bytes:
    """The PEM bytes of a secret entry (inline base64 or inline string)."""
    ds = entry.data
    if ds is None or (not ds.inline_bytes and not ds.inline_string):
        detail = ""
        if ds is not None and ds.filename:
            detail = f" (it points at file {ds.filename} inside the proxy)"
        elif entry.kind == "other":
            detail = " (neither a validation context nor a TLS certificate)"
        raise DumpError("DumpEmptyBundle", subject, entry=entry.name, detail=detail)
    if ds.inline_bytes:
        if not isinstance(ds.inline_bytes, str):
            raise DumpError("DumpBadBase64", subject, entry=entry.name, reason=f"a JSON {type(ds.inline_bytes).__name__}, not a string")
        try:
            raw = base64.b64decode(ds.inline_bytes, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DumpError("DumpBadBase64", subject, entry=entry.name, reason=str(exc)) from None
    else:
        raw = str(ds.inline_string).encode("utf-8")
    if PEM_CERT_BEGIN not in raw:
        raise DumpError("DumpNoPem", subject, entry=entry.name)
    return raw


def bundle_hash(pem: bytes) -> str:
    """The cache key of a bundle: SHA-256 of ALL its bytes (never its first serial)."""
    return _digest(pem).hex()


@dataclass(frozen=True)
class Bundle:
    sha256: str
    certs: tuple[x509.Certificate, ...]
    fingerprints: tuple[str, ...]


def load_bundle(pem: bytes, entry: str, subject: str) -> Bundle:
    """Every certificate of a PEM bundle; a damaged PEM block is a coded error (the parse of
    byte-identical bundles is cached; errors are not)."""
    key = ("pem", _digest(pem))
    hit = _PARSED.get(key)
    if hit is not None:
        return hit
    return _PARSED.put(key, _load_bundle(pem, entry, subject))


def _load_bundle(pem: bytes, entry: str, subject: str) -> Bundle:
    try:
        with warnings.catch_warnings():
            # the real Mesh CA root's 87-character CN makes cryptography warn on access
            warnings.simplefilter("ignore")
            certs = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as exc:
        raise DumpError("DumpBadCertificate", subject, entry=entry, reason=str(exc).split("\n")[0][:120]) from None
    if not certs:
        raise DumpError("DumpNoPem", subject, entry=entry)
    return Bundle(bundle_hash(pem), certs, tuple(fingerprint(c) for c in certs))


# ----------------------------------------------------------------------------- rendering


def _inline(pem: bytes, style: str) -> dict:
    return {("inlineBytes" if style == "camel" else "inline_bytes"): base64.b64encode(pem).decode()}


def _secret_item(name: str, kind: str, pem: bytes, style: str) -> dict:
    camel = style == "camel"
    if kind == "ca":
        secret = {("validationContext" if camel else "validation_context"): {("trustedCa" if camel else "trusted_ca"): _inline(pem, style)}}
    elif kind == "cert":
        secret = {
            ("tlsCertificate" if camel else "tls_certificate"): {
                ("certificateChain" if camel else "certificate_chain"): _inline(pem, style),
                ("privateKey" if camel else "private_key"): {("inlineBytes" if camel else "inline_bytes"): REDACTED},
            }
        }
    else:
        raise ValueError(f"unknown secret kind {kind!r} (use 'ca' or 'cert')")
    return {
        "name": name,
        ("versionInfo" if camel else "version_info"): "2026-01-01T00:00:00Z/1",
        ("lastUpdated" if camel else "last_updated"): "2026-01-01T00:00:00.000Z",
        "secret": {"@type": SECRET_TYPE, "name": name, **secret},
    }


def dump_document(
    entries: Mapping[str, tuple[str, bytes]],
    style: str = "camel",
    warming: Mapping[str, tuple[str, bytes]] | None = None,
) -> dict:
    """The dump as a JSON-ready dict (tests tamper with it before serialising).

    ``entries`` maps a secret name to ``(kind, pem)``, kind ``"ca"`` (ROOTCA-like) or ``"cert"``
    (default-like, private key redacted as istioctl does); order is kept, so a gateway's
    credential can come first.
    """
    if style not in ("camel", "snake"):
        raise ValueError("style is 'camel' (istioctl) or 'snake' (Envoy admin)")
    active = [_secret_item(n, k, p, style) for n, (k, p) in entries.items()]
    warm = [_secret_item(n, k, p, style) for n, (k, p) in (warming or {}).items()]
    if style == "camel":
        doc: dict = {"dynamicActiveSecrets": active}
        if warm:
            doc["dynamicWarmingSecrets"] = warm
        return doc
    inner: dict = {"@type": SECRETS_DUMP_TYPE, "dynamic_active_secrets": active}
    if warm:
        inner["dynamic_warming_secrets"] = warm
    return {"configs": [inner]}


def render_dump(
    entries: Mapping[str, tuple[str, bytes]],
    style: str = "camel",
    warming: Mapping[str, tuple[str, bytes]] | None = None,
) -> bytes:
    """A realistic dump: istioctl's camelCase JSON or Envoy admin's wrapped snake_case JSON."""
    return json.dumps(dump_document(entries, style, warming), indent=2 if style == "camel" else None).encode()


def render_item(name: str, kind: str, pem: bytes, style: str = "camel") -> str:
    """One active secret as ``render_dump`` writes it inside its list (see ``render_items``)."""
    item = _secret_item(name, kind, pem, style)
    return json.dumps(item, indent=2) if style == "camel" else json.dumps(item)


def render_items(items: list[str], style: str = "camel") -> bytes:
    """``render_dump`` of active secrets already rendered one by one by ``render_item`` (no
    warming secrets): the same bytes, so a caller can render each secret once and reuse it."""
    if not items:
        return render_dump({}, style)
    if style == "camel":
        inner = ",\n".join("\n".join("    " + line for line in item.split("\n")) for item in items)
        return ('{\n  "dynamicActiveSecrets": [\n' + inner + "\n  ]\n}").encode()
    if style != "snake":
        raise ValueError("style is 'camel' (istioctl) or 'snake' (Envoy admin)")
    return ('{"configs": [{"@type": ' + json.dumps(SECRETS_DUMP_TYPE) + ', "dynamic_active_secrets": [' + ", ".join(items) + "]}]}").encode()


def sidecar_entries(chain: list[bytes] | bytes, roots: list[bytes] | bytes) -> dict[str, tuple[str, bytes]]:
    """The two entries every sidecar has: ``default`` (leaf + intermediates) and ``ROOTCA``."""
    chain_pem = b"".join(chain) if isinstance(chain, list) else chain
    roots_pem = b"".join(roots) if isinstance(roots, list) else roots
    return {DEFAULT: ("cert", chain_pem), ROOTCA: ("ca", roots_pem)}
