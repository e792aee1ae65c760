"""``meshca doctor --stack S``: every prerequisite of the stack's migration, one line each.

Tools (run, never installed): ``pulumi version``; ``kubectl version --client -o json``;
``ASMCLI --version`` (meshca:asmcliPath) printing exactly meshca:asmcliVersion; ``ISTIOCTL
version --remote=false --short`` (meshca:istioctlPath, else the one asmcli links into the
REV1 output dir) printing the pinned release. Per cluster: the context exists and its API
server answers (``kubectl get --raw /version``); ``kubectl auth can-i VERB RESOURCE`` for each
verb and resource a step of the stack's route uses (the ``RBAC`` table: action -> what its
command does); and the preconditions of the route: no injection label on a gateway
namespace (MCA0854, meshca/preflight.py), no in-cluster Istio operator running (MCA0855), no
namespace outside meshca:namespaces with the retiring revision's injection label (MCA1044),
and the Citadel root the mesh trusts today equal to meshca:caFiles.rootCert on every cluster
(MCA1045). A check that holds is an ``Info MCA1040`` line. Exit 0 only when no line is an
Error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from . import live
from .errors import MeshcaError, MeshcaErrors

SYS = live.SYSTEM_NS
WEBHOOKS_M = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
WEBHOOKS_V = "validatingwebhookconfigurations.admissionregistration.k8s.io"
# (verb, resource, namespace: "istio-system" | "*" (all) | None (cluster scope), the step actions that need it)
RBAC: tuple[tuple[str, str, str | None, tuple[str, ...]], ...] = (
    ("get", "namespaces", None, ("label", "preflight", "check-injection-labels")),
    ("patch", "namespaces", None, ("label",)),
    ("list", "pods", "*", ("gate", "restart", "gateway-ready")),
    ("patch", "deployments.apps", "*", ("restart", "gateway")),
    ("patch", "statefulsets.apps", "*", ("restart",)),
    ("patch", "daemonsets.apps", "*", ("restart",)),
    ("create", "deployments.apps", "*", ("gateway", "install")),
    ("delete", "deployments.apps", "*", ("delete-gateway", "delete-istiod")),
    ("create", "horizontalpodautoscalers.autoscaling", "*", ("gateway",)),
    ("create", "poddisruptionbudgets.policy", "*", ("gateway",)),
    ("get", "secrets", SYS, ("backup-ca-secret", "gate", "install")),
    ("create", "secrets", SYS, ("install",)),
    ("delete", "secrets", SYS, ("delete-ca-secrets",)),
    ("create", WEBHOOKS_M, None, ("install", "tag-default")),
    ("patch", WEBHOOKS_M, None, ("empty-injector", "tag-default")),
    ("delete", WEBHOOKS_M, None, ("delete-webhooks",)),
    ("delete", WEBHOOKS_V, None, ("delete-webhooks",)),
    ("patch", "services", SYS, ("apply-istiod-service",)),
    ("delete", "istiooperators.install.istio.io", SYS, ("delete-installed-state",)),
    ("patch", "configmaps", SYS, ("drop-root",)),
    ("create", "pods", "*", ("verify-webhooks",)),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None, ("install",)),
)
PORT_FORWARD = ("create", "pods/portforward", "*", ("gate",))  # gateSource istioctl: istioctl proxy-config port-forwards


def passed(subject: str, what: str) -> MeshcaError:
    return MeshcaError("DoctorCheckPassed", subject, what=what)


def _run(argv: list[str], env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: not found")
    except PermissionError:
        return subprocess.CompletedProcess(argv, 126, "", f"{argv[0]}: not executable")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"did not finish within {timeout:g} s")


def _reason(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or proc.stdout or "").strip().splitlines()
    return f"exit status {proc.returncode}: {text[-1][:160] if text else 'no output'}"


# ----------------------------------------------------------------------------- tools


def check_tools(config, run: Callable = _run) -> list[MeshcaError]:
    out = []
    proc = run(["pulumi", "version"])
    if proc.returncode != 0:
        out.append(MeshcaError("DoctorToolMissing", "pulumi", tool="pulumi", reason=_reason(proc), how="install the Pulumi CLI (https://www.pulumi.com/docs/install/) so pulumi is on PATH"))
    else:
        out.append(passed("pulumi", f"pulumi {proc.stdout.strip()} on PATH"))
    proc = run(["kubectl", "version", "--client", "-o", "json"])
    version = None
    if proc.returncode == 0:
        try:
            version = json.loads(proc.stdout)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError, TypeError):
            version = None
    if version is None:
        out.append(MeshcaError("DoctorToolMissing", "kubectl", tool="kubectl", reason=_reason(proc) if proc.returncode else "no clientVersion in its output",
                               how="install kubectl (gcloud components install kubectl) so it is on PATH"))
    else:
        out.append(passed("kubectl", f"kubectl {version} on PATH"))
    asmcli = config.asmcli.path
    path = asmcli if os.path.isabs(os.path.expanduser(asmcli)) else str(config.project_dir / asmcli)
    proc = run([os.path.expanduser(path), "--version"])
    subject = "meshca:asmcliPath"
    if proc.returncode != 0:
        out.append(MeshcaError("DoctorToolMissing", subject, tool=f"asmcli ({asmcli})", reason=_reason(proc),
                               how=f"curl https://storage.googleapis.com/csm-artifacts/asm/asmcli_1.19 > {asmcli}; chmod +x {asmcli} (or set meshca:asmcliPath)"))
    elif proc.stdout.strip() != config.asmcli.version:
        out.append(MeshcaError("DoctorToolWrongVersion", subject, tool=f"asmcli ({asmcli})", got=proc.stdout.strip()[:80] or "nothing", want=config.asmcli.version,
                               how=f"download the asmcli of {config.asmcli.version} to {asmcli} (an install stops on any other version)"))
    else:
        out.append(passed(subject, f"asmcli {asmcli} is version {config.asmcli.version}"))
    subject = "meshca:istioctlPath"
    want = config.asmcli.istioctl_version
    if config.asmcli.istioctl_path:
        tool = config.asmcli.istioctl_path
    else:
        tool = config.asmcli.istioctl_for(config.clusters[0].name, config.rev1)
    path = tool if os.path.isabs(os.path.expanduser(tool)) else str(config.project_dir / tool)
    if not config.asmcli.istioctl_path and not os.path.exists(path):
        out.append(passed(subject, f"istioctl: the tag steps use the one asmcli links into {tool} at A1 (not there yet; asmcli brings release {want})"))
        return out
    proc = run([path, "version", "--remote=false", "--short"])
    if proc.returncode != 0:
        out.append(MeshcaError("DoctorToolMissing", subject, tool=f"istioctl ({tool})", reason=_reason(proc), how=f"point meshca:istioctlPath at an istioctl {want}, or leave it empty to use the one asmcli installs"))
    elif proc.stdout.strip() != want:
        out.append(MeshcaError("DoctorToolWrongVersion", subject, tool=f"istioctl ({tool})", got=proc.stdout.strip()[:80] or "nothing", want=want,
                               how=f"point meshca:istioctlPath at an istioctl {want} (istioctl tag set must match the installed revisions)"))
    else:
        out.append(passed(subject, f"istioctl {tool} is release {want}"))
    return out


# ----------------------------------------------------------------------------- clusters


def route_actions(config) -> set[str]:
    """Every step action of the stack's whole route (the plan at its last position)."""
    from . import plan as planmod

    last = planmod.route(config)[-1]
    return {s.action for cp in planmod.plan_at(config, last).clusters for s in cp.steps}


def rbac_checks(config, actions: set[str]) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    rows = list(RBAC) + ([PORT_FORWARD] if config.gates.source == "istioctl" else [])
    return [(v, r, ns, tuple(a for a in acts if a in actions)) for v, r, ns, acts in rows if set(acts) & actions]


def check_rbac(kubectl, cluster_name: str, rows, run_can_i: Callable | None = None) -> list[MeshcaError]:
    def can_i(row):
        verb, resource, ns, _ = row
        scope = ["--all-namespaces"] if ns == "*" else (["-n", ns] if ns else [])
        return kubectl.run("auth", "can-i", verb, resource, *scope)

    with ThreadPoolExecutor(max_workers=8) as pool:
        procs = list(pool.map(run_can_i or can_i, rows))
    out, denied = [], 0
    for (verb, resource, ns, acts), proc in zip(rows, procs):
        answer = (proc.stdout or "").strip() or (proc.stderr or "").strip()[:120] or f"exit {proc.returncode}"
        if proc.returncode != 0 or answer != "yes":
            denied += 1
            where = " in every namespace" if ns == "*" else (f" in {ns}" if ns else "")
            out.append(MeshcaError("DoctorRbacDenied", f"cluster {cluster_name}", verb=verb, resource=resource, where=where, answer=answer.splitlines()[0] if answer else "no", steps=", ".join(acts)))
    if not denied:
        out.append(passed(f"cluster {cluster_name}", f"RBAC: {len(rows)} verb/resource pairs the route uses are allowed (kubectl auth can-i)"))
    return out


def retiring_revisions(config) -> list[str]:
    """Revisions whose injection labels the rest of the route retires (A5: old; B4: REV1)."""
    from .config import PHASES

    i = PHASES.index(config.phase)
    return ([config.old_revision] if i <= PHASES.index("distribute-root") else []) + ([config.rev1] if i <= PHASES.index("mesh-ca") else [])


def check_preconditions(config, cluster, snap: live.Snapshot) -> list[MeshcaError]:
    from .certs import colon_fingerprint, fingerprint, load_certs
    from .config import PHASES
    from .plan import injection_labels
    from .preflight import namespace_problems, operator_problems

    out: list[MeshcaError] = []
    subject = f"cluster {cluster.name}"
    gateways = [g for g in config.gateways if g.on(cluster.name)]
    gw_rev = config.rev1 if PHASES.index(config.phase) < PHASES.index("mesh-ca") else config.rev2
    problems = []
    for ns in dict.fromkeys(g.namespace for g in gateways):
        doc = snap.get("Namespace", ns) or {"metadata": {"name": ns}}
        problems += namespace_problems(doc, gw_rev)
    out += problems or [passed(subject, f"gateway namespaces without injection labels: {', '.join(dict.fromkeys(g.namespace for g in gateways)) or 'no gateway listed'}")]
    ops = operator_problems(snap.operators())
    out += ops or [passed(subject, "no in-cluster Istio operator runs")]
    managed = {n.name for n in config.namespaces} | {g.namespace for g in gateways} | set(live.SYSTEM_NAMESPACES)
    strays = []
    for rev in retiring_revisions(config):
        labels = injection_labels(config, rev)
        for name, have in sorted(snap.namespaces().items()):
            if name in managed:
                continue
            for k, v in labels.items():
                if have.get(k) == v:
                    strays.append(MeshcaError("DoctorUnmanagedNamespace", f"namespace/{name} ({subject})", label=f"{k}={v}", stack=config.stack, namespace=name, key=k))
    out += strays or [passed(subject, "every namespace with a retiring injection label is in meshca:namespaces")]
    found = snap.trusted_root_pem()
    if found is None:
        out.append(MeshcaError("DoctorCaSecretsGone", subject))
    else:
        source, pem = found
        want = fingerprint(load_certs(config.ca_files.root_cert.read_bytes())[0])
        try:
            got = fingerprint(load_certs(pem)[0])
        except (ValueError, IndexError):
            got = "unreadable"
        if got != want:
            out.append(MeshcaError("DoctorRootsDiffer", subject, live=colon_fingerprint(got) if got != "unreadable" else got, source=source,
                                   other=f"meshca:caFiles.rootCert ({config.ca_files.shown('root_cert')})", want=colon_fingerprint(want)))
        else:
            out.append(passed(subject, f"the Citadel root it trusts ({source}) is meshca:caFiles.rootCert"))
    return out


def check_cluster(config, cluster, actions: set[str]) -> list[MeshcaError]:
    from .kubeaccess import require_cluster_access
    from .restart import Kubectl

    kubeconfig = cluster.kubeconfig
    if kubeconfig and not Path(kubeconfig).expanduser().is_absolute():
        kubeconfig = str(config.project_dir / kubeconfig)
    try:
        require_cluster_access(kubeconfig, cluster.context)
    except MeshcaErrors as exc:
        return exc.errors
    k = Kubectl(kubeconfig, cluster.context)
    proc = k.run("get", "--raw", "/version")
    if proc.returncode != 0:
        from .restart import kubectl_reason

        return [MeshcaError("ApiServerUnreachable", f"context {cluster.context}", reason=kubectl_reason(proc))]
    out = [passed(f"context {cluster.context}", "the API server answers")]
    out += check_rbac(k, cluster.name, rbac_checks(config, actions))
    try:
        snap = live.read(k)
    except MeshcaErrors as exc:
        return out + exc.errors
    return out + check_preconditions(config, cluster, snap)


def doctor(config) -> list[MeshcaError]:
    lines = check_tools(config)
    actions = route_actions(config)
    for cluster in config.clusters:
        lines += check_cluster(config, cluster, actions)
    return lines


def cmd_doctor(args: argparse.Namespace) -> int:
    from .cli import load_config_from_args

    config = load_config_from_args(args)
    lines = doctor(config)
    ok = not any(line.level == "Error" for line in lines)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [{**m.as_dict(), "line": m.line()} for m in lines]}, indent=2))
    else:
        for m in lines:
            print(m.line())
        errors = sum(m.level == "Error" for m in lines)
        print(f"{len(lines)} checks, {errors} failed" if errors else f"{len(lines)} checks, all hold", file=sys.stderr)
    return 0 if ok else 1


DESCRIPTION = (
    "Check every prerequisite of the stack's migration, one line each with its level and fix:\n"
    "pulumi, kubectl, asmcli (the exact pinned version) and istioctl; each cluster's context and\n"
    "API server; RBAC (kubectl auth can-i for each verb and resource the route's steps use); the\n"
    "route's preconditions (no injection label on a gateway namespace, no in-cluster operator,\n"
    "no unmanaged namespace with a retiring injection label, the same Citadel root on every\n"
    "cluster as meshca:caFiles). Reads only. Exit 0 only when no line is an Error."
)


def register(subparsers) -> None:
    from .cli import add_stack_arguments
    from .help import examples_epilog

    p = subparsers.add_parser("doctor", help="check every prerequisite of the stack's migration, one line each",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=examples_epilog(("meshca doctor --stack dev", "meshca doctor --stack prod --json")))
    add_stack_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=cmd_doctor)
