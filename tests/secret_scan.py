"""Find a private key in any output, in every form it could leak in.

``KeyScanner(key_pem)`` derives needles from one canary key; ``scan(blob)`` returns the forms
found. A blob is scanned as it is and normalised (whitespace, JSON/shell escapes of line
breaks removed), so a key re-wrapped at another width or pasted into JSON is still found.
``FORMS`` names every form (the README's hardening table lists them); ``plant`` writes the key
in a form, so the tests prove each form is detectable before trusting a clean scan.
"""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Iterable

from cryptography.hazmat.primitives import serialization

# Where tests/test_secrets.py runs the canary key through meshca (the README lists them).
SURFACES = (
    "meshca plan (text, --all and --json)",
    "meshca certs verify (text and --json)",
    "meshca check (kube and istioctl sources, text and --json, cacerts holding the key)",
    "meshca rehearse (table, --json, --report HTML; canary route and a fault scenario)",
    "the Pulumi program under mocks at every position (inputs, outputs, exports, invokes, log)",
    "the phase C backup and deletion providers (outputs and errors)",
    "every file meshca wrote (the backups only as 0600 files)",
)
CHUNK = 32  # base64 needles: aligned 32-character chunks, so any leaked run of 63+ characters holds one


def _body(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def _chunks(text: str, size: int = CHUNK) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text) - size + 1, size)]


def _der(pem: bytes) -> bytes:
    return base64.b64decode("".join(_body(pem)))


@dataclass(frozen=True)
class Form:
    name: str  # what the README lists
    needles: Callable[[bytes, object], list[str]]  # (key PEM, key object) -> substrings that reveal the key
    plant: Callable[[bytes, object], str]  # the key written in this form, for the self-test


def _pem_lines(pem: bytes, key) -> list[str]:
    return [line for line in _body(pem) if len(line) >= 16]


# Every PKCS#8 RSA key of one size starts with the same bytes (version, algorithm, lengths):
# chunks covering that prefix would match ANY such key, so they are left out (the body-line
# form still covers the first line, which ends in the key's own modulus).
SKIP_DER_B64 = 64  # base64 characters: 48 DER bytes
SKIP_PEM_B64 = 128  # base64 characters of the PEM: its header line and first body line
SKIP_PEM_B64_END = 64  # ... and its footer line, also the same for every key


def _der_b64(pem: bytes, key) -> list[str]:
    return _chunks("".join(_body(pem))[SKIP_DER_B64:])


def _pem_b64(pem: bytes, key) -> list[str]:
    return _chunks(base64.b64encode(pem).decode()[SKIP_PEM_B64:-SKIP_PEM_B64_END])


def _pem_b64url(pem: bytes, key) -> list[str]:
    return _chunks(base64.urlsafe_b64encode(_der(pem)).decode()[SKIP_DER_B64:])


def _json_slash(pem: bytes, key) -> list[str]:
    return [line.replace("/", "\\/") for line in _pem_lines(pem, key) if "/" in line]


def _unicode_escaped(pem: bytes, key) -> list[str]:
    return [line.replace("+", "\\u002b").replace("/", "\\u002f") for line in _pem_lines(pem, key) if "+" in line or "/" in line]


def _percent(pem: bytes, key) -> list[str]:
    return [urllib.parse.quote(line, safe="") for line in _pem_lines(pem, key) if "+" in line or "/" in line or "=" in line]


def _private_numbers(pem: bytes, key) -> list[str]:
    n = key.private_numbers()
    out = []
    for value in (n.d, n.p, n.q):
        out += [format(value, "x")[:32], format(value, "X")[:32], str(value)[:40]]
    return out


def _pem_header(pem: bytes, key) -> list[str]:
    return ["PRIVATE KEY-----"]


FORMS: tuple[Form, ...] = (
    Form("PEM body lines", _pem_lines, lambda pem, key: pem.decode()),
    Form("DER in base64, any line width", _der_b64, lambda pem, key: "\n".join(re.findall(".{1,76}", "".join(_body(pem))))),
    Form("base64 of the whole PEM (Secret data)", _pem_b64, lambda pem, key: json.dumps({"data": {"ca-key.pem": base64.b64encode(pem).decode()}})),
    Form("base64url of the DER", _pem_b64url, lambda pem, key: base64.urlsafe_b64encode(_der(pem)).decode()),
    Form("JSON-escaped PEM (\\n line breaks)", _pem_lines, lambda pem, key: json.dumps({"key": pem.decode()})),
    Form("JSON with escaped slashes (\\/)", _json_slash, lambda pem, key: json.dumps({"key": pem.decode()}).replace("/", "\\/")),
    Form("JSON with \\u escapes of + and /", _unicode_escaped, lambda pem, key: json.dumps(pem.decode()).replace("+", "\\u002b").replace("/", "\\u002f")),
    Form("HTML-escaped PEM", _pem_lines, lambda pem, key: html.escape(pem.decode(), quote=True)),
    Form("percent-encoded PEM", _percent, lambda pem, key: urllib.parse.quote(pem.decode(), safe="")),
    Form("private numbers (d, p, q) in hex or decimal", _private_numbers, lambda pem, key: repr(key.private_numbers().d)),
    Form("a PEM private-key header", _pem_header, lambda pem, key: "-----BEGIN RSA PRIVATE KEY-----"),
)


def _normalised(text: str) -> str:
    text = text.replace("\\r", "").replace("\\n", "").replace("&#10;", "").replace("%0A", "").replace("%0D", "")
    return re.sub(r"\s+", "", text)


class KeyScanner:
    def __init__(self, key_pem: bytes) -> None:
        self.key_pem = key_pem
        self.key = serialization.load_pem_private_key(key_pem, password=None)
        self.needles = {f.name: [n for n in f.needles(key_pem, self.key) if n] for f in FORMS}
        assert all(self.needles.values()), "every form must yield needles"

    def scan(self, blob: str | bytes) -> list[str]:
        """The names of the forms in which the key appears in ``blob``."""
        text = blob.decode("latin-1") if isinstance(blob, bytes) else str(blob)
        flat = _normalised(text)
        return [name for name, needles in self.needles.items() if any(n in text or n in flat for n in needles)]

    def scan_all(self, blobs: Iterable[tuple[str, str | bytes]]) -> dict[str, list[str]]:
        """{where: forms} for every blob in which the key appears (empty: no leak)."""
        out = {}
        for where, blob in blobs:
            found = self.scan(blob)
            if found:
                out[where] = found
        return out

    def planted(self, form: Form) -> str:
        return f"some output before >>{form.plant(self.key_pem, self.key)}<< and after"
