"""Real mutual TLS between two simulated proxies, and the verdict cache.

``handshake`` runs OpenSSL through Python's ``ssl`` over memory BIOs: both sides present
their chain and verify the peer's against their own bundle (CERT_REQUIRED both ways, no
hostname: Istio names peers by SPIFFE ID, not DNS), then one byte goes each way. The
server's view of the client certificate (``getpeercert``) is then checked for its SPIFFE
trust domain against the server revision's trust domain and aliases (when authorization
policies name principals).

A verdict is reused only for the same key (``ProxyState.key`` of both sides: both chains
and both bundles by fingerprint, trust domains and aliases) and the trust-domain switch.
Anything else is a new real handshake; ``Judge.handshakes`` counts them.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..certs import fingerprint as _fingerprint
from .ca import Credential

_FPS: dict[int, tuple[x509.Certificate, str]] = {}


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, memoised per certificate object (bundles are shared tuples)."""
    hit = _FPS.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    fp = _fingerprint(cert)
    _FPS[id(cert)] = (cert, fp)
    return fp


@dataclass(frozen=True)
class ProxyState:
    """Everything about a proxy that a call's verdict can depend on."""

    credential: Credential | None
    bundle: tuple[x509.Certificate, ...]
    trust_domain: str
    aliases: tuple[str, ...]
    problem: str = ""

    @property
    def key(self) -> tuple:
        """The proxy's equivalence class: two proxies with equal keys get equal verdicts.

        The chain enters by the fingerprints of every certificate above the leaf (the
        issuer included, also when it is a self-signed root); the leaf by what verification
        can depend on: its issuer, its validity (every simulated leaf comes from one
        template, valid or expired) and its SPIFFE trust domain. The bundle enters by the
        fingerprint of each root; then the trust domain and aliases the proxy enforces.
        """
        cred = self.credential
        if cred is None:
            chain: tuple = ("no certificate", self.problem)
        else:
            chain = (
                fingerprint(cred.signer.issuer.cert),
                tuple(fingerprint(c) for c in cred.chain[1:]),
                cred.expired,
                _spiffe_domain(cred.spiffe),
            )
        return (chain, tuple(fingerprint(r) for r in self.bundle), self.trust_domain, self.aliases)


def _spiffe_domain(uri: str) -> str:
    return uri[len("spiffe://") :].split("/", 1)[0] if uri.startswith("spiffe://") else ""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""


def _context(state: ProxyState, server: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cred = state.credential
    # OpenSSL reads the chain and key from a path: an anonymous memory file keeps the key
    # off the disk (it is gone when the descriptor closes).
    fd = os.memfd_create("meshca-sim-credential", os.MFD_CLOEXEC)
    try:
        os.write(fd, cred.chain_pem + cred.key_pem())
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    if state.bundle:
        ctx.load_verify_locations(cadata="".join(r.public_bytes(serialization.Encoding.PEM).decode() for r in state.bundle))
    return ctx


def _reason(exc: ssl.SSLError) -> str:
    msg = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return str(msg).lower().replace("_", " ")


def handshake(client: ProxyState, server: ProxyState, client_ctx: ssl.SSLContext | None = None, server_ctx: ssl.SSLContext | None = None) -> tuple[Verdict, x509.Certificate | None]:
    """One real mTLS handshake and a byte each way. Returns the verdict and the client
    certificate as the server saw it."""
    if client.credential is None:
        return Verdict(False, f"client has no certificate ({client.problem or 'no sidecar'})"), None
    if server.credential is None:
        return Verdict(False, f"server has no certificate ({server.problem or 'no sidecar'})"), None
    cctx = client_ctx or _context(client, server=False)
    sctx = server_ctx or _context(server, server=True)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = cctx.wrap_bio(c_in, c_out, server_side=False)
    s = sctx.wrap_bio(s_in, s_out, server_side=True)
    c_done = s_done = False
    for _ in range(16):
        if not c_done:
            try:
                c.do_handshake()
                c_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return Verdict(False, f"client rejected the server certificate: {_reason(exc)}"), None
        s_in.write(c_out.read())
        if not s_done:
            try:
                s.do_handshake()
                s_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return Verdict(False, f"server rejected the client certificate: {_reason(exc)}"), None
        c_in.write(s_out.read())
        if c_done and s_done:
            break
    else:
        return Verdict(False, "handshake did not complete"), None
    try:
        c.write(b"?")
        s_in.write(c_out.read())
        if s.read(1) != b"?":
            return Verdict(False, "no application data from the client"), None
        s.write(b"!")
        c_in.write(s_out.read())
        if c.read(1) != b"!":
            return Verdict(False, "no application data from the server"), None
    except ssl.SSLError as exc:
        # TLS 1.3: the server verifies the client after the client considers itself done.
        return Verdict(False, f"server rejected the client certificate: {_reason(exc)}"), None
    der = s.getpeercert(binary_form=True)
    return Verdict(True), (x509.load_der_x509_certificate(der) if der else None)


def spiffe_trust_domain(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("spiffe://"):
            return uri[len("spiffe://") :].split("/", 1)[0]
    return None


class Judge:
    """Verdicts for (client, server) proxy states: a real handshake per new key."""

    def __init__(self, authz_names_principals: bool) -> None:
        self.authz = authz_names_principals
        self.handshakes = 0
        self.lookups = 0
        self._verdicts: dict[tuple, Verdict] = {}
        self._contexts: dict[tuple, ssl.SSLContext] = {}

    def _ctx(self, state: ProxyState, server: bool) -> ssl.SSLContext:
        key = (server, state.key)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = _context(state, server)
        return ctx

    def judge(self, client: ProxyState, server: ProxyState) -> Verdict:
        self.lookups += 1
        key = (client.key, server.key, self.authz)
        verdict = self._verdicts.get(key)
        if verdict is not None:
            return verdict
        verdict = self._judge(client, server)
        self._verdicts[key] = verdict
        return verdict

    def _judge(self, client: ProxyState, server: ProxyState) -> Verdict:
        if client.credential is None or server.credential is None:
            verdict, peer = handshake(client, server)
        else:
            self.handshakes += 1
            verdict, peer = handshake(client, server, self._ctx(client, False), self._ctx(server, True))
        if not verdict.ok or not self.authz:
            return verdict
        domain = spiffe_trust_domain(peer) if peer is not None else None
        accepted = (server.trust_domain, *server.aliases)
        if domain not in accepted:
            return Verdict(False, f"server denied the client's trust domain {domain} (accepts {', '.join(accepted)})")
        return verdict
