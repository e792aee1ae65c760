"""The check runner: one ``CheckRequest`` against one ``ProxySource`` -> the ``--json`` document.

Used by ``meshca check``, by the TrustGate dynamic provider and by the rehearsal's simulated
mesh. Whatever the source, the verdict is made here, by cryptography only:

- coverage: every pod with a container or native-sidecar initContainer named ``istio-proxy``
  in every namespace but kube-system, kube-public, kube-node-lease (or the requested ones);
  Succeeded/Failed pods are ``skipped``, pods the phase's finish deletes are ``retiring``,
  Pending/Unknown pods and unreadable proxies are ``error`` (and count as not verified);
- speed: a bounded pool, one dump fetch per pod (repeated only on retry), a per-pod timeout,
  and a parse cache keyed by the SHA-256 of the whole bundle (never by its first serial).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import inspect
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Sequence

from cryptography import x509

from ..certs import colon_fingerprint, fingerprint, load_certs, short_fingerprint
from ..injection import revision_or_default
from ..errors import MeshcaError
from .dumps import DEFAULT, ROOTCA, Bundle, DumpError, ProxySecrets, bundle_hash, load_bundle, parse_dump
from .source import ProxySource, SourceError, SourceTimeout
from .trustdomain import RevisionDomains, configmap_name, fleet_domain, judge_revision, read_revision
from .verdict import CITADEL, FORBIDDABLE, LABELS, MESHCA, UNKNOWN, References, RootVerdict, classify_bundle, judge_workload, normalise_labels

CHECKS = ("root-cert", "workload-cert", "trust-domain")
EXCLUDED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
PROXY_CONTAINER = "istio-proxy"
SYSTEM_NAMESPACE = "istio-system"
LIST_LIMIT = 20  # offending pods named in a failure line; the rest are counted


@dataclass(frozen=True)
class CheckRequest:
    check: str  # "root-cert" | "workload-cert" | "trust-domain"
    require: tuple[str, ...] = ("CITADEL", "MESHCA")
    forbid: tuple[str, ...] = ()
    namespaces: tuple[str, ...] | None = None
    retiring_deployments: tuple[tuple[str, str], ...] = ()  # (namespace, deployment)
    retiring_selectors: tuple[tuple[str, str], ...] = ()  # (namespace, "k=v,k=v")
    citadel_roots: tuple[x509.Certificate, ...] | None = None  # None: read from the cluster
    meshca_roots: tuple[x509.Certificate, ...] | None = None  # None: the pinned real Mesh CA root
    fleet_project: str | None = None
    revisions: tuple[str, ...] = ()
    concurrency: int = 16
    timeout: float = 30.0
    retries: int = 2


# ----------------------------------------------------------------------------- pods


def proxy_kind(pod: dict) -> str | None:
    """``sidecar``, ``gateway``, ``native-sidecar`` (initContainer), or None (no proxy)."""
    spec = pod.get("spec") or {}
    for c in spec.get("containers") or []:
        if c.get("name") == PROXY_CONTAINER:
            return "gateway" if "router" in (c.get("args") or []) else "sidecar"
    for c in spec.get("initContainers") or []:
        if c.get("name") == PROXY_CONTAINER:
            return "native-sidecar"
    return None


def pod_revision(pod: dict) -> str:
    """The revision that injected the pod, as its injector wrote it (meshca/injection.py);
    ``default`` when the pod carries no record of it."""
    return revision_or_default(pod)


def deployment_of(pod: dict) -> str | None:
    """The Deployment owning a pod: its ReplicaSet owner's name minus ``-<pod-template-hash>``."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") != "ReplicaSet":
            continue
        rs = str(ref.get("name") or "")
        h = (meta.get("labels") or {}).get("pod-template-hash")
        if h and rs.endswith("-" + h):
            return rs[: -len(h) - 1]
        return rs.rsplit("-", 1)[0] if "-" in rs else rs
    return None


def parse_selector(selector: str) -> tuple[tuple[str, str], ...]:
    """``k=v,k=v`` (equality only, as the plan emits it) -> pairs; ValueError otherwise."""
    pairs = []
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key or value.startswith("=") or key.endswith("!"):
            raise ValueError(f"'{part}' is not key=value")
        pairs.append((key.strip(), value.strip()))
    if not pairs:
        raise ValueError("empty selector")
    return tuple(pairs)


def _retiring_reason(pod: dict, request: CheckRequest, selectors) -> str | None:
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace")
    labels = meta.get("labels") or {}
    dep = deployment_of(pod)
    for rns, rdep in request.retiring_deployments:
        if rns == ns and dep == rdep:
            return f"retiring: owned by Deployment {rns}/{rdep}, which this phase's finish deletes"
    for rns, sel, pairs in selectors:
        if rns == ns and all(labels.get(k) == v for k, v in pairs):
            return f"retiring: matches {rns}/{sel}, deleted by this phase's finish"
    return None


# ----------------------------------------------------------------------------- references


def live_root(source: ProxySource) -> tuple[tuple[x509.Certificate, ...], str | None]:
    """The root the cluster distributes today: ``cacerts`` root-cert.pem, else
    ``istio-ca-secret`` ca-cert.pem (what istiod signs with). ``((), None)`` when neither."""
    for name, key in (("cacerts", "root-cert.pem"), ("istio-ca-secret", "ca-cert.pem")):
        secret = source.read_secret(name, SYSTEM_NAMESPACE)
        if secret is None:
            continue
        subject = f"Secret {SYSTEM_NAMESPACE}/{name}"
        value = (secret.get("data") or {}).get(key)
        if not value:
            raise MeshcaError("ClusterRootUnreadable", subject, key=key, problem="is missing or empty")
        try:
            pem = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise MeshcaError("ClusterRootUnreadable", subject, key=key, problem="is not base64") from None
        try:
            return tuple(load_certs(pem)), name
        except ValueError as exc:
            raise MeshcaError("ClusterRootUnreadable", subject, key=key, problem=f"holds no parsable PEM certificate ({str(exc).splitlines()[0][:80]})") from None
    return (), None


def resolve_references(source: ProxySource, request: CheckRequest) -> References:
    if request.citadel_roots is not None:
        citadel, csrc = tuple(request.citadel_roots), "given"
    else:
        citadel, csrc = live_root(source)
    meshca = tuple(request.meshca_roots) if request.meshca_roots is not None else ()
    return References(citadel=citadel, meshca=meshca, citadel_source=csrc, meshca_source="given" if request.meshca_roots is not None else "pinned")


# ----------------------------------------------------------------------------- the run


class _Cache:
    """Parsed bundles and root verdicts by the SHA-256 of the WHOLE bundle."""

    def __init__(self, refs: References) -> None:
        self.refs = refs
        self.lock = threading.Lock()
        self.bundles: dict[str, Bundle] = {}
        self.verdicts: dict[str, RootVerdict] = {}
        self.parsed = 0
        self.hits = 0

    def bundle(self, pem: bytes, entry: str, subject: str) -> Bundle:
        key = bundle_hash(pem)
        with self.lock:
            hit = self.bundles.get(key)
            if hit is not None:
                self.hits += 1
                return hit
        parsed = load_bundle(pem, entry, subject)  # outside the lock: parsing is the slow part
        with self.lock:
            self.parsed += 1
            return self.bundles.setdefault(key, parsed)

    def roots(self, bundle: Bundle) -> RootVerdict:
        with self.lock:
            v = self.verdicts.get(bundle.sha256)
        if v is None:
            v = classify_bundle(bundle, self.refs)
            with self.lock:
                self.verdicts[bundle.sha256] = v
        return v


def _accepts_timeout(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "timeout" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _short(err: MeshcaError) -> str:
    return f"{err.code} {err.problem}"


def _fail(entry: dict, err: MeshcaError, status: str = "fail") -> None:
    entry["status"] = status
    entry["reason"] = err.line()
    entry["_short"] = _short(err)



class _InlinePool:
    """The executor interface, run at once on the calling thread (in-process sources)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # kept for .result(), as a pool would
            fut.set_exception(exc)
        return fut


class _Run:
    def __init__(self, source: ProxySource, request: CheckRequest, progress) -> None:
        self.source = source
        self.req = request
        self.progress = progress
        self.fetches = 0
        self.lock = threading.Lock()
        self.pass_timeout = _accepts_timeout(source.fetch_dump)
        self.revisions: dict[str, RevisionDomains] = {}
        self.now = dt.datetime.now(dt.timezone.utc)

    # -- one pod ----------------------------------------------------------------------------

    def _fetch(self, pod: dict, subject: str) -> ProxySecrets:
        attempts = max(1, self.req.retries + 1)
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            with self.lock:
                self.fetches += 1
            try:
                if self.pass_timeout:
                    data = self.source.fetch_dump(pod, timeout=self.req.timeout)
                else:
                    data = self.source.fetch_dump(pod)
                return parse_dump(data, subject)
            except SourceError as exc:
                last = exc
            except DumpError as exc:
                if exc.name != "DumpNotJson":  # a well-formed but wrong dump will not heal by re-reading
                    raise
                last = exc
            if attempt < attempts:
                time.sleep(min(1.0, 0.1 * 2 ** (attempt - 1)))
        if isinstance(last, DumpError):
            raise last
        if isinstance(last, SourceTimeout):
            raise DumpError("ProxyDumpTimedOut", subject, timeout=f"{self.req.timeout:g}", attempts=attempts)
        raise DumpError("ProxyDumpFailed", subject, attempts=attempts, reason=str(last) or type(last).__name__)

    def _inspect(self, pod: dict, entry: dict) -> dict:
        subject = f"{entry['namespace']}/{entry['pod']}"
        req = self.req
        try:
            secrets = self._fetch(pod, subject)
            bundle = self.cache.bundle(secrets.rootca_pem(subject), ROOTCA, subject)
            verdict = self.cache.roots(bundle)
            entry["roots"] = list(verdict.labels)
            entry["unknownRoots"] = list(verdict.unknown)
            workload = None
            chain_error: DumpError | None = None
            try:
                chain = load_bundle(secrets.default_pem(subject), DEFAULT, subject)
                workload = judge_workload(chain, bundle, self.refs)
            except DumpError as exc:
                chain_error = exc
            if workload is not None:
                entry["issuer"] = workload.issuer
                entry["spiffeId"] = workload.spiffe_id
                entry["trustDomain"] = workload.trust_domain
                entry["expires"] = workload.not_after.isoformat().replace("+00:00", "Z")
            if req.check != "root-cert" and chain_error is not None:
                raise chain_error
            if req.check == "root-cert":
                self._judge_roots(entry, subject, verdict)
            elif req.check == "workload-cert":
                self._judge_workload(entry, subject, workload)
            else:
                self._judge_trust_domain(entry, subject, workload)
        except DumpError as exc:
            _fail(entry, exc, "error")
        except MeshcaError:
            raise  # the whole check cannot run (unreachable API server, missing tool)
        except Exception as exc:  # a bug must not hide the other pods' verdicts: this pod errs loudly
            _fail(entry, MeshcaError("InternalError", subject, reason=f"{type(exc).__name__}: {exc}"), "error")
        return entry

    def _judge_roots(self, entry: dict, subject: str, verdict: RootVerdict) -> None:
        have = verdict.labels
        forbidden = [f for f in self.req.forbid if f in have or (f == UNKNOWN and verdict.unknown)]
        missing = [r for r in self.req.require if r not in have]
        roots = " ".join(have)
        if forbidden:
            _fail(entry, MeshcaError("PodTrustsForbiddenRoot", subject, roots=roots, forbidden=" ".join(forbidden)))
        elif missing:
            _fail(entry, MeshcaError("PodMissingRoot", subject, roots=roots, missing=" ".join(missing)))
        else:
            entry["status"] = "ok"

    def _judge_workload(self, entry: dict, subject: str, workload) -> None:
        issuer = workload.issuer
        if issuer is None or issuer not in self.req.require or issuer in self.req.forbid:
            shown = issuer or "no reference root (the chain verifies to neither the Citadel nor the Mesh CA root)"
            _fail(entry, MeshcaError("PodIssuerNotAllowed", subject, issuer=shown, require=" or ".join(self.req.require) or "none"))
        elif workload.not_after <= self.now:
            _fail(entry, MeshcaError("PodCertExpired", subject, spiffe=workload.spiffe_id or "the workload", not_after=entry["expires"]))
        else:
            entry["status"] = "ok"

    def _judge_trust_domain(self, entry: dict, subject: str, workload) -> None:
        if workload.trust_domain is None:
            _fail(entry, MeshcaError("PodNoSpiffeId", subject))
            return
        rd = self.revisions.get(entry["revision"])
        if rd is None or rd.error is not None:
            err = rd.error if rd is not None else MeshcaError("RevisionConfigMissing", subject, problem=f"revision {entry['revision']} was not read")
            _fail(entry, err)
        elif workload.trust_domain not in rd.accepted:
            _fail(
                entry,
                MeshcaError(
                    "PodTrustDomainNotAccepted",
                    subject,
                    trust_domain=workload.trust_domain,
                    revision=rd.revision,
                    accepted=", ".join(rd.accepted),
                ),
            )
        else:
            entry["status"] = "ok"

    # -- the whole check --------------------------------------------------------------------

    def run(self) -> dict:
        req = self.req
        selectors = []
        for ns, sel in req.retiring_selectors:
            try:
                selectors.append((ns, sel, parse_selector(sel)))
            except ValueError as exc:
                raise MeshcaError("UsageError", "--retiring-selector", problem=f"{ns}/{sel}: {exc}", usage="--retiring-selector NS/key=value[,key=value]") from None

        # A source that answers from this process's memory (the rehearsal's simulated cluster)
        # gains nothing from threads: its reads and its proxies run in turn, in order, on this
        # thread. (Worker threads for its proxies were built and measured, issue 13: signature
        # checks release the interpreter, yet on 2 cores they gained nothing once the
        # rehearsal's collector was tuned, and lost under load; BENCHMARKS.md "meshca rehearse".)
        if getattr(self.source, "in_process", False):
            return self._run(_InlinePool(), selectors)
        # One pool bounds every call to the cluster (--concurrency 1 really is one at a time).
        # The cluster-wide reads are independent, so they run side by side, then the proxies.
        pool = ThreadPoolExecutor(max_workers=req.concurrency, thread_name_prefix="meshca-check")
        try:
            return self._run(pool, selectors)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, pool: ThreadPoolExecutor, selectors) -> dict:
        req = self.req
        f_names = pool.submit(self.source.list_namespaces)
        if req.namespaces:
            f_pods = [pool.submit(self.source.list_pods, [ns]) for ns in sorted(set(req.namespaces))]
        else:
            f_pods = [pool.submit(self.source.list_pods, None)]
        f_refs = pool.submit(resolve_references, self.source, req)
        names = f_names.result()
        if req.namespaces:
            for ns in req.namespaces:
                if ns not in names:
                    raise MeshcaError("NamespaceNotFound", f"namespace {ns}")
            scope = set(req.namespaces)
        else:
            scope = {n for n in names if n not in EXCLUDED_NAMESPACES}
        pods = [pod for f in f_pods for pod in f.result()]

        self.refs = f_refs.result()
        needs_citadel = CITADEL in req.require or CITADEL in req.forbid
        if req.check in ("root-cert", "workload-cert") and needs_citadel and not self.refs.citadel:
            raise MeshcaError("CitadelReferenceMissing", "--citadel-root")
        self.cache = _Cache(self.refs)

        entries: list[dict] = []
        todo: list[tuple[dict, dict]] = []
        for pod in pods:
            meta = pod.get("metadata") or {}
            ns, name = meta.get("namespace"), meta.get("name")
            kind = proxy_kind(pod)
            if kind is None or ns not in scope:
                continue
            entry = {
                "namespace": ns,
                "pod": name,
                "status": None,
                "roots": None,
                "unknownRoots": [],
                "issuer": None,
                "spiffeId": None,
                "reason": None,
                "proxy": kind,
                "revision": pod_revision(pod),
                "trustDomain": None,
                "expires": None,
            }
            entries.append(entry)
            phase = (pod.get("status") or {}).get("phase") or "Unknown"
            if phase in ("Succeeded", "Failed"):
                entry["status"] = "skipped"
                entry["reason"] = f"pod {phase}: its proxy no longer runs"
                continue
            retiring = _retiring_reason(pod, req, selectors)
            if retiring:
                entry["status"] = "retiring"
                entry["reason"] = retiring
                continue
            if phase != "Running":
                detail = ""
                waiting = [
                    (c.get("state") or {}).get("waiting", {}).get("reason")
                    for c in (pod.get("status") or {}).get("containerStatuses") or []
                ]
                waiting = [w for w in waiting if w]
                if waiting:
                    detail = f" ({', '.join(sorted(set(waiting)))})"
                _fail(entry, MeshcaError("ProxyNotRunning", f"{ns}/{name}", phase=phase, detail=detail), "error")
                continue
            todo.append((pod, entry))

        if req.check == "trust-domain":
            wanted = list(dict.fromkeys([*req.revisions, *sorted({e["revision"] for _, e in todo})]))
            reads = [pool.submit(read_revision, self.source, rev) for rev in wanted]
            self.revisions = {rev: f.result() for rev, f in zip(wanted, reads)}

        total = len(todo)
        done = 0
        futures = [pool.submit(self._inspect, pod, entry) for pod, entry in todo]
        for fut in futures if isinstance(pool, _InlinePool) else as_completed(futures):
            result = fut.result()  # re-raises a whole-check MeshcaError
            done += 1
            if self.progress is not None:
                self.progress(done, total, result)

        return self._document(entries, scope)

    def _document(self, entries: list[dict], scope: set[str]) -> dict:
        req = self.req
        entries.sort(key=lambda e: (e["namespace"], e["pod"]))
        summary = {
            "meshed": len(entries),
            "ok": sum(e["status"] == "ok" for e in entries),
            "failed": sum(e["status"] == "fail" for e in entries),
            "errors": sum(e["status"] == "error" for e in entries),
            "skipped": sum(e["status"] == "skipped" for e in entries),
            "retiring": sum(e["status"] == "retiring" for e in entries),
        }
        counted = summary["ok"] + summary["failed"] + summary["errors"]
        bad = [e for e in entries if e["status"] in ("fail", "error")]
        problems: list[str] = []
        revisions_doc = []
        if req.check == "trust-domain":
            for rev in req.revisions:
                rd = self.revisions[rev]
                err = judge_revision(rd, req.fleet_project or "")
                revisions_doc.append(
                    {
                        "revision": rev,
                        "configMap": f"{SYSTEM_NAMESPACE}/{rd.configmap}",
                        "trustDomain": rd.trust_domain,
                        "aliases": list(rd.aliases),
                        "accepts": list(rd.accepted),
                        "ok": err is None,
                        "reason": err.line() if err else None,
                    }
                )
                if err is not None:
                    problems.append(f"revision {rev}: {_short(err)}")

        reason = None
        listed = ", ".join(f"{e['namespace']}/{e['pod']} ({e.pop('_short', e['status'])})" for e in bad[:LIST_LIMIT])
        for e in entries:
            e.pop("_short", None)
        if len(bad) > LIST_LIMIT:
            listed += f" and {len(bad) - LIST_LIMIT} more"
        want = self._want()
        if req.check == "trust-domain":
            if bad:
                problems.append(f"{len(bad)} of {counted} counted pods: {listed}")
            if problems:
                reason = MeshcaError("TrustDomainCheckFailed", "trust-domain", problems="; ".join(problems)).line()
        elif bad:
            name = "RootCheckFailed" if req.check == "root-cert" else "WorkloadCertCheckFailed"
            reason = MeshcaError(name, req.check, bad=len(bad), counted=counted, want=want, pods=listed).line()
        if reason is None and counted == 0:
            where = f"namespaces {', '.join(sorted(scope))}" if req.namespaces else "every namespace but " + ", ".join(EXCLUDED_NAMESPACES)
            extra = f"; {summary['skipped']} skipped, {summary['retiring']} retiring" if entries else ""
            reason = MeshcaError("NoMeshedPods", req.check, scope=where + extra).line()

        warnings = []
        unknown: dict[str, int] = {}
        for e in entries:
            for fp in e["unknownRoots"]:
                unknown[fp] = unknown.get(fp, 0) + 1
        if unknown:
            pods_with = sum(1 for e in entries if e["unknownRoots"])
            shown = ", ".join(f"sha256 {short_fingerprint(fp)} ({n} pod(s))" for fp, n in sorted(unknown.items()))
            warnings.append(MeshcaError("UnknownRootsPresent", req.check, count=pods_with, roots=shown).line())

        doc = {
            "check": req.check,
            "ok": reason is None,
            "reason": reason,
            "require": list(req.require),
            "forbid": list(req.forbid),
            "namespaces": sorted(req.namespaces) if req.namespaces else None,
            "references": self.refs.as_json(),
            "pods": entries,
            "summary": summary,
            "warnings": warnings,
            "stats": {"dumpFetches": self.fetches, "bundlesParsed": self.cache.parsed, "bundleCacheHits": self.cache.hits},
        }
        if req.check == "trust-domain":
            doc["fleetProject"] = req.fleet_project
            doc["requiredDomains"] = ["cluster.local", fleet_domain(req.fleet_project or "")]
            doc["revisions"] = revisions_doc
        return doc

    def _want(self) -> str:
        req = self.req
        if req.check == "workload-cert":
            return "issuer " + " or ".join(req.require)
        parts = []
        if req.require:
            parts.append("trust " + "+".join(req.require))
        if req.forbid:
            parts.append("never " + "+".join(req.forbid))
        return ", ".join(parts) or "read every bundle"


def validate_request(request: CheckRequest) -> CheckRequest:
    """Canonical labels, sane numbers; a bad request is a coded usage error."""

    def usage(problem: str) -> MeshcaError:
        return MeshcaError("UsageError", "CheckRequest", problem=problem, usage="see meshca check --help")

    if request.check not in CHECKS:
        raise usage(f"check '{request.check}' is not one of {', '.join(CHECKS)}")
    try:
        require = normalise_labels(request.require)
        forbid = normalise_labels(request.forbid, FORBIDDABLE)
    except ValueError as exc:
        raise usage(str(exc)) from None
    if set(require) & set(forbid):
        raise usage(f"{', '.join(sorted(set(require) & set(forbid)))} is both required and forbidden")
    if request.check == "workload-cert" and not require:
        raise usage("workload-cert needs at least one allowed issuer in require")
    if request.check == "trust-domain":
        if not request.fleet_project:
            raise usage("trust-domain needs fleet_project (the FLEET of FLEET.svc.id.goog)")
        require, forbid = (), ()  # trust domains are judged against the revisions, not root sets
    if request.concurrency < 1:
        raise usage("concurrency must be at least 1")
    if request.timeout <= 0:
        raise usage("timeout must be positive")
    if request.retries < 0:
        raise usage("retries must be 0 or more")
    return dataclasses.replace(request, require=require, forbid=forbid)


def run_check(source: ProxySource, request: CheckRequest, progress=None) -> dict:
    """Run one check over every meshed pod the source lists; return the ``--json`` document.

    ``progress``, when given, is called as ``progress(done, total, pod_result)`` after each pod.
    Raises ``MeshcaError`` only when the check as a whole cannot run (unreachable API server,
    missing tool, unusable reference root); per-pod problems become ``error`` entries.
    """
    request = validate_request(request)
    return _Run(source, request, progress).run()


def check_root_of_trust(source: ProxySource, given: Sequence[x509.Certificate], *, path: str, cluster: str) -> dict:
    """Is ``given[0]`` (root-cert.pem) by fingerprint the root the cluster distributes today?

    Returns ``{"check": "root-of-trust", "given", "live", "source", "ok", "reason"}``; the
    reason is MCA0302 (mismatch), MCA0303 (neither Secret) or MCA0413 (Secret unreadable).
    """
    given_fp = fingerprint(given[0])
    doc = {"check": "root-of-trust", "given": given_fp, "live": None, "source": None, "ok": False, "reason": None}
    try:
        live, source_name = live_root(source)
    except MeshcaError as exc:
        if exc.name != "ClusterRootUnreadable":
            raise
        doc["reason"] = exc.line()
        return doc
    if not live:
        doc["reason"] = MeshcaError("RootOfTrustNotFound", path, cluster=cluster).line()
        return doc
    live_fp = fingerprint(live[0])
    doc.update(live=live_fp, source=source_name, ok=live_fp == given_fp)
    if live_fp != given_fp:
        doc["reason"] = MeshcaError("RootOfTrustMismatch", path, given=colon_fingerprint(given_fp), cluster=cluster, live=colon_fingerprint(live_fp), source=source_name).line()
    return doc


__all__ = [
    "CHECKS",
    "CITADEL",
    "MESHCA",
    "LABELS",
    "CheckRequest",
    "run_check",
    "check_root_of_trust",
    "live_root",
    "proxy_kind",
    "deployment_of",
    "parse_selector",
    "configmap_name",
]
