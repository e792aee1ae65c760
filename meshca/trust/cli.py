"""``meshca check root-cert|workload-cert|trust-domain|root-of-trust``: the trust gates by hand.

Exit 0 when every counted pod meets the requirement and at least one was checked; 1 when any
fails or errs, or none was found (root-of-trust: mismatch or no CA Secret); 2 on usage errors,
an unreachable API server or a missing kubectl/istioctl, with one coded line on stderr.
``--json`` prints only JSON on stdout. Progress goes to stderr, and only when it is a TTY.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..certs import colon_fingerprint, short_fingerprint
from ..errors import MeshcaError, split_line

KINDS = ("root-cert", "workload-cert", "trust-domain", "root-of-trust")
# Proxies read at once, by source (README.md, "Concurrency of meshca check"). kube: each read is one
# exec stream, a long-running request kube-apiserver exempts from --max-requests-inflight and
# API Priority and Fairness; 64 streams stay far below the kubelet's 1,000 pending streams per
# node. istioctl: each read is a local istioctl process with its own port-forward, bound by
# this machine's CPU.
DEFAULT_CONCURRENCY = {"kube": 64, "istioctl": 16}
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 2


def _int_between(low: int, high: int):
    """An argparse type: a whole number in low..high."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


_positive_int = _int_between(1, 256)
_retries = _int_between(0, 10)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is outside (0, 3600] seconds")
    return value


def _labels(text: str) -> tuple[str, ...]:
    from .verdict import normalise_labels

    try:
        return normalise_labels([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _forbid_labels(text: str) -> tuple[str, ...]:
    from .verdict import FORBIDDABLE, normalise_labels

    try:
        return normalise_labels([text], FORBIDDABLE)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ns_name(text: str) -> tuple[str, str]:
    ns, slash, name = text.partition("/")
    if not slash or not ns or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAMESPACE/NAME")
    return ns, name


def _ns_selector(text: str) -> tuple[str, str]:
    from .runner import parse_selector

    ns, slash, sel = text.partition("/")
    if not slash or not ns or not sel:
        raise argparse.ArgumentTypeError(f"'{text}' is not NAMESPACE/key=value[,key=value]")
    try:
        parse_selector(sel)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}': {exc}") from None
    return ns, sel


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("check", choices=KINDS, help="what to verify")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--source", choices=("kube", "istioctl"), default="kube", help="kube: the Kubernetes API + exec (default); istioctl: kubectl and istioctl from PATH")
    p.add_argument("--namespace", action="append", dest="namespaces", metavar="NS", help="check only this namespace (repeatable; default: all but kube-system, kube-public, kube-node-lease)")
    p.add_argument("--citadel-root", metavar="FILE", help="PEM of the Citadel root(s) (default: cacerts root-cert.pem, else istio-ca-secret ca-cert.pem)")
    p.add_argument("--meshca-root", metavar="FILE", help="PEM of the Mesh CA root(s) (default: the pinned real Mesh CA root, by SHA-256)")
    p.add_argument("--require", type=_labels, metavar="CITADEL,MESHCA", help="roots every proxy must trust (root-cert) or allowed issuers (workload-cert); default CITADEL,MESHCA")
    p.add_argument("--forbid", type=_forbid_labels, metavar="CITADEL", help="roots no proxy may trust any more (the check after phase C) or issuers not allowed; UNKNOWN: any root that is neither CITADEL nor MESHCA")
    p.add_argument("--retiring-deployment", action="append", type=_ns_name, default=[], metavar="NS/NAME", help="pods of this Deployment are deleted by the phase's finish: reported, never blocking")
    p.add_argument("--retiring-selector", action="append", type=_ns_selector, default=[], metavar="NS/K=V,K=V", help="pods in NS with these labels are deleted by the phase's finish")
    p.add_argument("--fleet-project", metavar="F", help="trust-domain: F of F.svc.id.goog")
    p.add_argument("--revision", action="append", dest="revisions", default=[], metavar="R", help="trust-domain: a revision whose ConfigMap istio-R must accept both domains (repeatable)")
    p.add_argument("--root-cert", metavar="FILE", help="root-of-trust: the root-cert.pem to compare with the cluster's live root")
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=None,
        help=f"proxies read at once (default {DEFAULT_CONCURRENCY['kube']} exec streams with --source kube, {DEFAULT_CONCURRENCY['istioctl']} istioctl processes with --source istioctl)",
    )
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S", help=f"per-pod timeout in seconds (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--retries", type=_retries, default=DEFAULT_RETRIES, help=f"re-reads of a proxy whose dump failed (default {DEFAULT_RETRIES})")
    p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="verify every proxy's roots, certificates or trust domains (the trust gates)")
    add_check_arguments(p)
    p.set_defaults(func=cmd_check)


def _usage(args: argparse.Namespace, problem: str) -> MeshcaError:
    return MeshcaError("UsageError", f"meshca check {args.check}", problem=problem, usage=f"meshca check {args.check} --help")


def validate_args(args: argparse.Namespace) -> None:
    """Flags that make no sense for the chosen check are usage errors, not silently ignored."""
    kind = args.check
    only = {
        "--root-cert": ("root-of-trust", args.root_cert),
        "--fleet-project": ("trust-domain", args.fleet_project),
        "--revision": ("trust-domain", args.revisions),
    }
    for flag, (allowed, value) in only.items():
        if value and kind != allowed:
            raise _usage(args, f"{flag} applies to {allowed} only")
    if kind in ("trust-domain", "root-of-trust"):
        for flag, value in (("--require", args.require), ("--forbid", args.forbid)):
            if value is not None:
                raise _usage(args, f"{flag} applies to root-cert and workload-cert only")
    if kind == "root-of-trust" and not args.root_cert:
        raise _usage(args, "root-of-trust needs --root-cert FILE")
    if kind == "trust-domain" and not args.fleet_project:
        raise _usage(args, "trust-domain needs --fleet-project F")
    if args.require is not None and args.forbid is not None and set(args.require) & set(args.forbid):
        raise _usage(args, "a root cannot be both required and forbidden")


def make_source(kind: str, source: str, kubeconfig: str | None, context: str | None, concurrency: int):
    if source == "istioctl":
        from .istioctl_source import IstioctlSource

        return IstioctlSource(kubeconfig, context, need_istioctl=kind != "root-of-trust")
    from .kube_source import KubeSource

    return KubeSource(kubeconfig, context, pool_size=concurrency)


def resolve_concurrency(args: argparse.Namespace) -> int:
    """--concurrency, else the source's default."""
    if args.concurrency is None:
        args.concurrency = DEFAULT_CONCURRENCY[args.source]
    return args.concurrency


def build_request(args: argparse.Namespace):
    """The CheckRequest the flags describe (reference files loaded: bad ones are exit 2)."""
    from .runner import CheckRequest
    from .verdict import LABELS, load_reference_file

    forbid = tuple(args.forbid or ())
    require = tuple(args.require) if args.require is not None else tuple(l for l in LABELS if l not in forbid)
    citadel = load_reference_file(args.citadel_root, "--citadel-root", "Citadel") if args.citadel_root else None
    meshca = load_reference_file(args.meshca_root, "--meshca-root", "Mesh CA") if args.meshca_root else None
    return CheckRequest(
        check=args.check,
        require=require if args.check != "trust-domain" else (),
        forbid=forbid,
        namespaces=tuple(dict.fromkeys(args.namespaces)) if args.namespaces else None,
        retiring_deployments=tuple(args.retiring_deployment),
        retiring_selectors=tuple(args.retiring_selector),
        citadel_roots=citadel,
        meshca_roots=meshca,
        fleet_project=args.fleet_project,
        revisions=tuple(dict.fromkeys(args.revisions)),
        concurrency=resolve_concurrency(args),
        timeout=args.timeout,
        retries=args.retries,
    )


class _Progress:
    """One rewritten stderr line; only used when stderr is a TTY."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.by_ns: dict[str, int] = {}

    def __call__(self, done: int, total: int, entry: dict) -> None:
        ns = entry["namespace"]
        self.by_ns[ns] = self.by_ns.get(ns, 0) + 1
        self.stream.write(f"\r\x1b[Kchecked {done}/{total} proxies; {ns}: {self.by_ns[ns]} done, last {entry['pod']} {entry['status']}")
        self.stream.flush()

    def finish(self) -> None:
        if self.by_ns:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _short(reason: str | None) -> str:
    """The coded problem of a reason line, without the subject and the fix."""
    if not reason:
        return ""
    coded = split_line(reason)
    if not coded:
        return reason
    _, code, rest = coded
    problem = rest.partition(": ")[2] or rest
    return f"{code} {problem.split('; fix: ')[0]}"


def pod_line(check: str, e: dict) -> str:
    who = f"{e['pod']}.{e['namespace']}"
    status = e["status"]
    if status in ("skipped", "retiring"):
        return f" - {who} {status}: {e['reason']}"
    if status == "error":
        return f" - {who} ERROR: {_short(e['reason'])}"
    if check == "root-cert":
        line = f" - {who} trusts [{' '.join(e['roots'] or [])}]"
    elif check == "workload-cert":
        line = f" - {who} is using the mTLS certificate issued by [{e['issuer'] or 'UNKNOWN'}]"
    else:
        line = f" - {who} has trust domain {e['trustDomain'] or '(none)'} on revision {e['revision']}"
    if e["unknownRoots"] and check == "root-cert":
        line += f" + {len(e['unknownRoots'])} unknown root(s) (sha256 {', '.join(short_fingerprint(fp) for fp in e['unknownRoots'])})"
    if status == "fail":
        line += f"  FAIL: {_short(e['reason'])}"
    return line


def text_report(doc: dict) -> str:
    out = []
    check = doc["check"]
    for r in doc.get("revisions") or []:
        verdict = "accepts both" if r["ok"] else f"FAIL: {_short(r['reason'])}"
        out.append(f" - revision {r['revision']} ({r['configMap']}): trustDomain {r['trustDomain']}, aliases [{' '.join(r['aliases'])}]: {verdict}")
    out += [pod_line(check, e) for e in doc["pods"]]
    s = doc["summary"]
    out.append(
        f"{check}: {s['meshed']} meshed, {s['ok']} ok, {s['failed']} failed, {s['errors']} errors, "
        f"{s['skipped']} skipped, {s['retiring']} retiring: {'PASS' if doc['ok'] else 'FAIL'}"
    )
    return "\n".join(out)


def cmd_check(args: argparse.Namespace) -> int:
    from ..kubeaccess import require_cluster_access

    validate_args(args)
    if args.check == "root-of-trust":
        return _root_of_trust(args)
    from .runner import run_check

    request = build_request(args)
    require_cluster_access(args.kubeconfig, args.context)  # MCA1001/MCA1002 before any tool runs
    source = make_source(args.check, args.source, args.kubeconfig, args.context, resolve_concurrency(args))
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        doc = run_check(source, request, progress=progress)
    finally:
        if progress is not None:
            progress.finish()
        source.close()
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(text_report(doc))
    for line in doc["warnings"]:
        print(line, file=sys.stderr)
    if doc["reason"]:
        print(doc["reason"], file=sys.stderr)
    return 0 if doc["ok"] else 1


def _root_of_trust(args: argparse.Namespace) -> int:
    from ..kubeaccess import require_cluster_access
    from .runner import check_root_of_trust
    from .verdict import load_reference_file

    given = load_reference_file(args.root_cert, "--root-cert", "root-cert.pem")
    require_cluster_access(args.kubeconfig, args.context)  # MCA1001/MCA1002 before any tool runs
    source = make_source("root-of-trust", args.source, args.kubeconfig, args.context, resolve_concurrency(args))
    try:
        doc = check_root_of_trust(source, given, path=args.root_cert, cluster=args.context or "(current context)")
    finally:
        source.close()
    reason = doc.pop("reason")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        live = f"sha256 {colon_fingerprint(doc['live'])} (from {doc['source']})" if doc["live"] else "no root (neither cacerts nor istio-ca-secret)"
        print(f"root-of-trust: {args.root_cert} is sha256 {colon_fingerprint(doc['given'])}; the cluster distributes {live}: {'PASS' if doc['ok'] else 'FAIL'}")
    if reason:
        print(reason, file=sys.stderr)
    return 0 if doc["ok"] else 1
