"""TrustGateProvider: the trust checks as a Pulumi dynamic resource (the gates of the program).

A gate has no cloud object behind it: ``create`` IS the check. It polls ``meshca.trust`` until
the check passes or a deadline ends (bundle pushes and certificate rotation take time, so one
snapshot is not a verdict), then either fails the step with the offending pods named and the
coded message, or records ``passed: True`` with the summary. A change of what it certifies
(check, lists, namespace digest, restart generation, ...) replaces the gate, so it runs again;
operational inputs (``OPERATIONAL_INPUTS``) never do.

Importable and side-effect free: the engine unpickles the provider by reference (dill) in a
``python -m pulumi.dynamic`` process; clients and sources are built inside ``create``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from meshca.providers.failure import one_line

PROVIDER_KEY = "__provider"
GATE_CHECKS = ("root-of-trust", "root-cert", "workload-cert", "trust-domain")
SOURCES = ("kube", "istioctl")
LABELS = ("CITADEL", "MESHCA")
# Every input, in camelCase as the engine stores it.
INPUTS = (
    "gateId",
    "stack",
    "phase",
    "cluster",
    "context",
    "kubeconfig",
    "check",
    "require",
    "forbid",
    "retiringDeployments",
    "retiringSelectors",
    "citadelRoot",
    "meshcaRoot",
    "rootCert",
    "fleetProject",
    "revisions",
    "source",
    "concurrency",
    "timeoutSeconds",
    "pollSeconds",
    "namespaceDigest",
    "restartGeneration",
)
DEFAULTS: dict[str, Any] = {
    "context": "",
    "kubeconfig": "",
    "require": [],
    "forbid": [],
    "retiringDeployments": [],
    "retiringSelectors": [],
    "citadelRoot": "",
    "meshcaRoot": "",
    "rootCert": "",
    "fleetProject": "",
    "revisions": [],
    "source": "kube",
    "concurrency": 16,
    "timeoutSeconds": 600,
    "pollSeconds": 10,
    "restartGeneration": 0,
}
# How a gate reads the cluster, not what it certifies: changing one never replaces a gate
# that passed (issue 9 finding 2: a longer timeout or another operator's kubeconfig must not
# re-run A0/A3/B0 in a later phase, where they can no longer pass). A gate that has not passed
# yet is never in the state (a failed create records nothing), so the next run uses the new
# values anyway.
OPERATIONAL_INPUTS = ("kubeconfig", "source", "concurrency", "timeoutSeconds", "pollSeconds", "citadelRoot", "meshcaRoot", "rootCert")
# ``peers`` (the same gate on the other clusters, polled together: see run_gang) is not in
# INPUTS: never diffed, never copied to the outputs.
IDENTITY_INPUTS = tuple(k for k in INPUTS if k not in OPERATIONAL_INPUTS)
OUTPUTS = ("passed", "summary", "checkedAt", "rounds")
PER_POD_TIMEOUT = 30.0
# A proxy read gets at least this long even under a short deadline: the deadline bounds the
# polling (checked between rounds), not a single read of a slow proxy.
MIN_PER_POD_TIMEOUT = 5.0
NAMED_PODS = 20  # the failure names this many pods, then counts the rest
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class TrustGateFailed(Exception):
    """The gate's check did not pass before its deadline; the message names the pods."""


def _unknown(value: Any) -> bool:
    """An input not known in preview: the dynamic provider host hands ``check``/``diff`` a
    ``pulumi.output.Unknown`` (pulumi sdk/python/lib/pulumi/dynamic/__main__.py
    ``rpc.deserialize_properties(request.news, True)``); the raw sentinel string is accepted too."""
    from pulumi.output import Unknown
    from pulumi.runtime import rpc

    return isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


def _failure(prop: str, problem: str, action: str) -> CheckFailure:
    from meshca.errors import MeshcaError

    return CheckFailure(prop, MeshcaError("GateInputInvalid", prop, problem=problem, action=action).line())


def validate_inputs(news: dict[str, Any]) -> list[CheckFailure]:
    """Every problem of a gate's inputs (unknown values, as in preview, are skipped)."""
    f: list[CheckFailure] = []
    known = lambda k: k in news and not _unknown(news[k])  # noqa: E731

    for key in ("gateId", "stack", "phase", "cluster", "check", "namespaceDigest"):
        if key not in news or (known(key) and (not isinstance(news[key], str) or not news[key])):
            f.append(_failure(key, f"{key} must be a non-empty string", f"set {key}; the plan's gate step provides it"))
    check = news.get("check")
    if known("check") and check not in GATE_CHECKS:
        f.append(_failure("check", f"'{check}' is not a gate check", f"use one of {', '.join(GATE_CHECKS)}"))
    if known("namespaceDigest") and isinstance(news["namespaceDigest"], str) and news["namespaceDigest"] and not _DIGEST.match(news["namespaceDigest"]):
        f.append(_failure("namespaceDigest", "not a SHA-256 hex digest", "pass meshca.plan.namespace_digest(stack, namespace_map)"))
    if known("source") and news["source"] not in SOURCES:
        f.append(_failure("source", f"'{news['source']}' is not a source", "use kube or istioctl"))

    def label_list(key: str) -> list[str]:
        value = news.get(key, [])
        if _unknown(value):
            return []
        if not isinstance(value, list):
            f.append(_failure(key, f"{key} must be a list", f"write {key} as a list, e.g. [\"MESHCA\"]"))
            return []
        allowed = LABELS + (("UNKNOWN",) if key == "forbid" else ())  # UNKNOWN: forbid-only (meshca/trust/verdict.py)
        bad = [v for v in value if not _unknown(v) and v not in allowed]
        if bad:
            f.append(_failure(key, f"{', '.join(map(str, bad))} not {' or '.join(allowed)}", f"use {' and/or '.join(allowed)}"))
        return [v for v in value if v in allowed]

    require, forbid = label_list("require"), label_list("forbid")
    if set(require) & set(forbid):
        f.append(_failure("forbid", f"{', '.join(sorted(set(require) & set(forbid)))} is both required and forbidden", "drop it from one of the lists"))
    if known("check") and check in ("root-of-trust", "trust-domain") and (require or forbid):
        f.append(_failure("require", f"{check} takes no require/forbid", "leave require and forbid empty"))
    if known("check") and check == "workload-cert" and known("require") and not require:
        f.append(_failure("require", "workload-cert needs the allowed issuers", "set require, e.g. [\"MESHCA\"]"))

    for key, pattern, example in (
        ("retiringDeployments", re.compile(r"^[^/\s]+/[^/\s]+$"), "istio-system/istio-ingressgateway"),
        ("retiringSelectors", re.compile(r"^[^/\s]+/[^=,\s]+=[^=,\s]*(,[^=,\s]+=[^=,\s]*)*$"), "istio-system/app=istio-ingressgateway,istio.io/rev=asm-1"),
    ):
        value = news.get(key, [])
        if _unknown(value):
            continue
        if not isinstance(value, list):
            f.append(_failure(key, f"{key} must be a list", f"write it as a list, e.g. [\"{example}\"]"))
            continue
        bad = [v for v in value if not _unknown(v) and not (isinstance(v, str) and pattern.match(v))]
        if bad:
            f.append(_failure(key, f"{', '.join(map(str, bad))} is not in the form {example}", f"write entries like {example}"))

    def path_input(key: str, required: bool) -> None:
        value = news.get(key, "")
        if _unknown(value):
            return
        if not isinstance(value, str):
            f.append(_failure(key, f"{key} must be a file path", "write the path as a string"))
        elif not value:
            if required:
                f.append(_failure(key, f"{key} is required by {check}", "pass the PEM file's path"))
        elif not Path(value).is_file():
            f.append(_failure(key, f"file {value} not found", "fix the path (relative paths are taken from the program's directory)"))

    if known("check"):
        path_input("rootCert", check == "root-of-trust")
        if check != "root-of-trust":
            path_input("citadelRoot", False)
            path_input("meshcaRoot", False)
        if check != "root-of-trust" and news.get("rootCert") and not _unknown(news.get("rootCert")):
            f.append(_failure("rootCert", "rootCert applies to root-of-trust only", "leave it empty"))
        if check == "trust-domain":
            fleet = news.get("fleetProject", "")
            if not _unknown(fleet) and (not isinstance(fleet, str) or not fleet):
                f.append(_failure("fleetProject", "trust-domain needs the fleet project", "set fleetProject (FLEET of FLEET.svc.id.goog)"))
            revs = news.get("revisions", [])
            if not _unknown(revs):
                if not isinstance(revs, list) or not revs:
                    f.append(_failure("revisions", "trust-domain needs the revisions to verify", "list the revisions, e.g. [\"asm-1\", \"asm-2\"]"))
                else:
                    bad = [r for r in revs if not _unknown(r) and not (isinstance(r, str) and _LABEL.match(r))]
                    if bad:
                        f.append(_failure("revisions", f"{', '.join(map(str, bad))} is not a revision name", "use the istio.io/rev label values"))

    for key, low, high in (("concurrency", 1, 256), ("timeoutSeconds", 1, 86400), ("pollSeconds", 0.01, 3600)):
        value = news.get(key, DEFAULTS.get(key))
        if _unknown(value):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            f.append(_failure(key, f"{value!r} is not a number in {low}..{high}", f"set {key} between {low} and {high}"))
    t, p = news.get("timeoutSeconds", DEFAULTS["timeoutSeconds"]), news.get("pollSeconds", DEFAULTS["pollSeconds"])
    if isinstance(t, (int, float)) and isinstance(p, (int, float)) and not isinstance(t, bool) and not isinstance(p, bool) and p > t:
        f.append(_failure("pollSeconds", f"pollSeconds {p} is longer than timeoutSeconds {t}", "poll more often than the deadline"))
    return f


def _pods_line(doc: dict) -> str:
    bad = [e for e in doc.get("pods", []) if e["status"] in ("fail", "error")]
    shown = ", ".join(f"{e['namespace']}/{e['pod']} ({e['status']})" for e in bad[:NAMED_PODS])
    if len(bad) > NAMED_PODS:
        shown += f" and {len(bad) - NAMED_PODS} more"
    return shown


def run_gate(inputs: dict[str, Any], *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll the gate's check until it passes (-> the outputs) or the deadline (-> raise).

    Every failure is a ``TrustGateFailed`` whose one-line message names the gate and carries
    the coded line (the engine shows it above the traceback)."""
    from meshca.errors import MeshcaError

    ins = {**DEFAULTS, **{k: v for k, v in inputs.items() if k != PROVIDER_KEY}}
    label = f"gate {ins.get('gateId')} on cluster {ins.get('cluster')} (stack {ins.get('stack')}, phase {ins.get('phase')})"
    try:
        return _run_gate(ins, label, sleep, clock)
    except MeshcaError as exc:  # no reference root, missing tool, unreachable API server...
        raise TrustGateFailed(f"{label}: {exc.line()}") from None


def _run_gate(ins: dict[str, Any], label: str, sleep: Callable[[float], None], clock: Callable[[], float]) -> dict[str, Any]:
    from meshca.errors import MeshcaErrors
    from meshca.kubeaccess import require_cluster_access
    from meshca.trust.cli import make_source

    check = ins["check"]
    try:  # as `meshca check` does: a missing kubeconfig or context is MCA1001/MCA1002, before any tool
        require_cluster_access(ins["kubeconfig"] or None, ins["context"] or None)
    except MeshcaErrors as exc:
        raise TrustGateFailed(f"{label}: {exc.errors[0].line()}") from None
    source = make_source(check, ins["source"], ins["kubeconfig"] or None, ins["context"] or None, int(ins["concurrency"]))
    try:
        return _poll(ins, label, source, sleep, clock)
    finally:
        source.close()


def _poll(ins: dict[str, Any], label: str, source, sleep: Callable[[float], None], clock: Callable[[], float]) -> dict[str, Any]:
    from meshca.errors import MeshcaError
    from meshca.trust.runner import CheckRequest, check_root_of_trust, run_check
    from meshca.trust.verdict import load_reference_file

    check = ins["check"]
    timeout = float(ins["timeoutSeconds"])
    poll = float(ins["pollSeconds"])
    started = clock()
    deadline = started + timeout

    if check == "root-of-trust":
        # The live root does not change while we wait: one read decides.
        given = load_reference_file(ins["rootCert"], "rootCert", "root-cert.pem")
        doc = check_root_of_trust(source, given, path=ins["rootCert"], cluster=ins["cluster"])
        if not doc["ok"]:
            raise TrustGateFailed(f"{label}: {doc['reason']}")
        summary = {"given": doc["given"], "live": doc["live"], "source": doc["source"]}
        return _outputs(ins, summary, 1)

    request = CheckRequest(
        check=check,
        require=tuple(ins["require"]),
        forbid=tuple(ins["forbid"]),
        retiring_deployments=tuple(tuple(s.split("/", 1)) for s in ins["retiringDeployments"]),
        retiring_selectors=tuple(tuple(s.split("/", 1)) for s in ins["retiringSelectors"]),
        citadel_roots=load_reference_file(ins["citadelRoot"], "citadelRoot", "Citadel") if ins["citadelRoot"] else None,
        meshca_roots=load_reference_file(ins["meshcaRoot"], "meshcaRoot", "Mesh CA") if ins["meshcaRoot"] else None,
        fleet_project=ins["fleetProject"] or None,
        revisions=tuple(ins["revisions"]),
        concurrency=int(ins["concurrency"]),
        timeout=max(MIN_PER_POD_TIMEOUT, min(PER_POD_TIMEOUT, timeout)),
    )
    rounds = 0
    while True:
        rounds += 1
        try:
            doc = run_check(source, request)
        except MeshcaError as exc:
            # a blip of the API server is waited out like any other not-yet; a missing tool is not
            if exc.name != "ApiServerUnreachable" or clock() + poll > deadline:
                raise
            sleep(poll)
            continue
        if doc["ok"]:
            return _outputs(ins, doc["summary"], rounds)
        if clock() + poll > deadline:
            s = doc["summary"]
            raise TrustGateFailed(
                f"{label} did not pass within {timeout:g} s ({rounds} checks): "
                f"{s['failed']} failed, {s['errors']} errors of {s['meshed']} meshed pods: {_pods_line(doc) or 'none checked'}. {doc['reason']}"
            )
        sleep(poll)


def _outputs(ins: dict[str, Any], summary: dict, rounds: int) -> dict[str, Any]:
    return {
        **{k: ins[k] for k in INPUTS if k in ins},
        "passed": True,
        "summary": summary,
        "checkedAt": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "rounds": rounds,
    }


# ----------------------------------------------------------------------------- gang polling
#
# The dynamic provider host serves every dynamic resource of a run with 4 gRPC workers
# (pulumi/dynamic/__main__.py: futures.ThreadPoolExecutor(max_workers=4)), and a gate's create
# holds its worker while it polls: with 5+ clusters, the gates of the 5th cluster would not
# even start until a gate of the first four passed (issue 9 finding 8). So the first create of
# a gate step starts polling the same gate of every cluster (its ``peers`` input) on threads
# of this process, and every create then waits for its own cluster's poll: the gates of all
# clusters poll together. A pass found before a peer's own create arrives is sound: each
# gate certifies what its dependencies make true (both roots after the restarts, Mesh CA
# certificates, the old root gone), which does not hold before they ran. A peer poll that
# failed (its deadline ran out before the peer's dependencies finished) is polled again from
# the peer's own create.
_GANG_LOCK = threading.Lock()
_GANG: dict[tuple, "concurrent.futures.Future"] = {}


def _in_background(fn: Callable[..., Any], *args: Any) -> "concurrent.futures.Future":
    """fn(*args) on a daemon thread: a peer's poll that nobody consumes (its gate is not
    created in this run) never keeps the provider process alive."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever waits for the gate
            future.set_exception(exc)

    threading.Thread(target=run, name="meshca-gate", daemon=True).start()
    return future


def _gang_key(ins: dict[str, Any]) -> tuple:
    return tuple(str(ins.get(k)) for k in ("stack", "gateId", "cluster", "namespaceDigest", "restartGeneration"))


def _gang_start(ins: dict[str, Any], fresh: bool = False) -> "concurrent.futures.Future":
    key = _gang_key(ins)
    with _GANG_LOCK:
        future = _GANG.get(key)
        if future is None or (fresh and future.done() and future.exception() is not None):
            future = _in_background(run_gate, ins)
            _GANG[key] = future
        return future


def run_gang(props: dict[str, Any]) -> dict[str, Any]:
    """This gate's outputs; meanwhile the same gate of every peer cluster polls too."""
    own = {**DEFAULTS, **{k: v for k, v in props.items() if k not in (PROVIDER_KEY, "peers")}}
    peers = [p for p in (props.get("peers") or []) if isinstance(p, dict) and not _unknown(p)]
    key = _gang_key(own)
    started_by_peer = key in _GANG
    future = _gang_start(own)
    for peer in peers:
        _gang_start({**DEFAULTS, **{k: v for k, v in peer.items() if k != "peers"}})
    try:
        try:
            return future.result()
        except TrustGateFailed:
            if not started_by_peer:
                raise
            # A peer started this poll before this cluster's steps were done: poll again now.
            return _gang_start(own, fresh=True).result()
    finally:
        with _GANG_LOCK:  # consumed: another create of the same gate polls afresh
            _GANG.pop(key, None)


class TrustGateProvider(ResourceProvider):
    """Dynamic provider of ``meshca:TrustGate`` (see the module docstring)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {**DEFAULTS, "peers": [], **news}
        return CheckResult(inputs, validate_inputs(inputs))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # An unknown (preview) value counts as a change: it may differ once known.
        changed = [k for k in IDENTITY_INPUTS if _unknown(news.get(k)) or olds.get(k, DEFAULTS.get(k)) != news.get(k, DEFAULTS.get(k))]
        # Create-before-delete (the default): a gate has no object to clash with, and a
        # delete-before-replace would make the engine consider replacing everything after it.
        return DiffResult(changes=bool(changed), replaces=changed, stables=[] if changed else list(OUTPUTS), delete_before_replace=False)

    @one_line
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = run_gang(props)
        gate_id = f"{props.get('cluster')}/{props.get('gateId')}/{uuid.uuid4().hex[:12]}"
        return CreateResult(gate_id, outs)

    @one_line
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # diff replaces on every input change, so this only runs if the engine forces it: re-check.
        return UpdateResult(run_gate(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    @one_line
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None  # a gate is evidence, not an object: nothing to remove
