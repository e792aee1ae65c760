"""``meshca status --stack S [--json] [--watch]``: the live mesh against the stack file, per cluster.

For each cluster of the stack (reads only, meshca/live.py): the position the live mesh is at
on the stack's route (meshca.plan.route, baseline = 0: the phase from which istiods run, the
namespace map from the injection labels), namespaces and pods per revision, which steps of
the stack file's position are done as far as the cluster shows them (gates, pre-flights and
proofs are recorded only in Pulumi's state: "not observable"), drift (a label no step wrote,
an istiod revision the route does not have, pods never restarted onto their label's
revision), and what to do next. Exit 0 when every cluster is at the stack file's position
without drift, 1 otherwise, 2 on an input or cluster error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from . import live
from .errors import MeshcaError

UNOBSERVABLE = ("gate", "preflight", "verify-asmcli", "verify-webhooks", "check-injection-labels", "gateway-ready", "write-overlay", "restart-control-plane")


def _pods_on(snap: live.Snapshot, namespace: str, revision: str, old: str) -> tuple[int, int]:
    """(pods injected by revision, pods with a proxy) of a namespace (old migrate ``default`` included)."""
    counts = snap.pod_revisions(namespace)
    total = sum(c for r, c in counts.items() if r != "none")
    return counts.get(revision, 0), total


def step_state(step, snap: live.Snapshot, config) -> str:
    """done | to do | not observable: what the cluster shows of one step of the plan."""
    from . import commands as cmd

    p, a = step.params, step.action
    if a in UNOBSERVABLE:
        return "not observable"
    if a == "install":
        return "done" if p["revision"] in snap.control_planes() else "to do"
    if a == "label":
        labels = snap.namespaces().get(p["namespace"], {})
        ok = all(labels.get(k) == v for k, v in p["labels"].items()) and not any(k in labels for k in p.get("removeLabels", ()))
        return "done" if ok else "to do"
    if a == "restart":
        on, total = _pods_on(snap, p["namespace"], p["revision"], config.old_revision)
        return "done" if total and on == total else "to do"
    if a == "gateway":
        d = snap.get("Deployment", p["deployment"], p["namespace"])
        facts = [g for g in snap.gateways() if g.namespace == p["namespace"] and g.deployment == p["deployment"]]
        return "done" if d and facts and facts[0].revision == p["revision"] else "to do"
    if a == "delete-gateway":
        return "to do" if snap.get("Deployment", p["deployment"], p["namespace"]) else "done"
    if a == "apply-istiod-service":
        svc = snap.get("Service", "istiod", live.SYSTEM_NS)
        return "done" if svc and ((svc.get("spec") or {}).get("selector") or {}).get(live.REV) == p["revision"] else "to do"
    if a == "delete-istiod":
        return "to do" if snap.get("Deployment", p["name"], live.SYSTEM_NS) else "done"
    if a == "delete-installed-state":
        return "to do" if any(snap.get("IstioOperator", n, live.SYSTEM_NS) for n in p["names"]) else "done"
    if a == "delete-webhooks":
        mutating, validating = cmd.webhook_configurations(p["revision"])
        return "to do" if snap.get("MutatingWebhookConfiguration", mutating) or snap.get("ValidatingWebhookConfiguration", validating) else "done"
    if a == "empty-injector":
        wh = snap.get("MutatingWebhookConfiguration", "istio-sidecar-injector")
        return "to do" if wh and wh.get("webhooks") else "done"
    if a == "tag-default":
        return "done" if snap.default_tag() == p["revision"] else "to do"
    if a == "backup-ca-secret":
        return "done" if (config.project_dir / p["file"]).exists() else "to do"
    if a == "delete-ca-secrets":
        return "to do" if snap.ca_secrets() else "done"
    if a == "drop-root":
        root = config.ca_files.root_cert.read_text(encoding="utf-8", errors="replace").strip()
        listed = [str(c.get("pem", "")).strip() for c in snap.mesh_config(p["revision"]).get("caCertificates") or [] if isinstance(c, dict)]
        return "to do" if root in listed else "done"
    return "not observable"


def cluster_status(config, cluster, snap: live.Snapshot) -> tuple[dict[str, Any], list[MeshcaError]]:
    from . import plan as planmod

    old, rev1, rev2 = config.revisions
    names = [n.name for n in config.namespaces]
    cps = snap.control_planes()
    phase = live.live_phase(cps, old, rev1, rev2, bool(snap.ca_secrets()))
    live_map = live.live_namespace_map(snap, names, old)
    index, label = live.describe_position(config, phase, live_map)
    route = planmod.route(config)
    stack_index = planmod.locate(config, route)
    stack_label = route[stack_index].label if stack_index is not None else "off the route"
    subject = f"cluster {cluster.name}"
    warnings: list[MeshcaError] = []

    namespaces = []
    all_labels = snap.namespaces()
    for ns in names:
        labels = all_labels.get(ns)
        pods = snap.pod_revisions(ns)
        namespaces.append({"name": ns, "stack": config.namespace_map[ns], "live": live_map[ns], "pods": pods, "exists": labels is not None})
        where = f"namespace/{ns} ({subject})"
        if labels is None:
            warnings.append(MeshcaError("StatusDriftLabel", where, what="the namespace does not exist", how=f"create it or remove {ns} from meshca:namespaces"))
            continue
        if live.INJECTION in labels and live.REV in labels:
            warnings.append(MeshcaError("StatusDriftLabel", where, what=f"carries both istio-injection={labels[live.INJECTION]} and istio.io/rev={labels[live.REV]} (no step writes both; istio-injection wins)",
                                        how=f"kubectl label namespace {ns} istio-injection- (or istio.io/rev-), whichever the stack's position does not write"))
        elif live_map[ns] is None:
            warnings.append(MeshcaError("StatusDriftLabel", where, what="carries no injection label (removed by hand?)",
                                        how=f"label it for {config.namespace_map[ns]} as the stack says (rerun pulumi up: the NamespacePatch restores it)"))
        elif live_map[ns] not in (old, rev1, rev2):
            warnings.append(MeshcaError("StatusDriftLabel", where, what=f"labelled for {live_map[ns]}, none of the stack's revisions ({old}, {rev1}, {rev2})",
                                        how=f"label it for {config.namespace_map[ns]} as the stack says, or correct meshca:namespaces"))
        elif live_map[ns] not in cps and not (live_map[ns] == old and old == "default" and snap.default_tag()):
            warnings.append(MeshcaError("StatusDriftLabel", where, what=f"labelled for {live_map[ns]}, whose istiod is not running (its pods would not be injected)",
                                        how=f"label it for one of the running revisions ({', '.join(cps)}), or rerun the install step"))
        label_rev = live_map[ns]
        if label_rev:
            stale = {r: c for r, c in pods.items() if r not in ("none", "unrecorded") and r != label_rev and not (old == "default" and label_rev == old and r == "default")}
            if stale:
                warnings.append(MeshcaError("StatusDriftNotRestarted", where, revision=label_rev, pods=sum(stale.values()), others=", ".join(sorted(stale)),
                                            context=cluster.context, namespace=ns))
    extra = [r for r in cps if r not in (old, rev1, rev2)]
    for r in extra:
        warnings.append(MeshcaError("StatusDriftRevision", f"istiod revision {r} ({subject})", what=f"runs, but is none of the stack's revisions ({old}, {rev1}, {rev2})",
                                    how="remove it if nothing uses it (kubectl delete deploy,svc istiod-REV -n istio-system), or correct meshca:oldRevision/rev1/rev2"))
    for r in snap.leftover_revisions():
        warnings.append(MeshcaError("StatusDriftRevision", f"revision {r} ({subject})", what=f"its IstioOperator or injector webhook is left while its istiod is gone",
                                    how=f"delete them (kubectl delete mutatingwebhookconfiguration istio-sidecar-injector-{r}; kubectl delete istiooperator installed-state-{r} -n istio-system) or rerun the step that removes {r}"))
    if index is None:
        warnings.append(MeshcaError("StatusUnknownPosition", subject, why=label))

    steps = []
    cp = planmod.build_cluster(config, cluster)
    for s in cp.phase_steps(config.phase):
        steps.append({"id": s.id, "procedure": s.procedure, "title": s.title, "state": step_state(s, snap, config)})
    todo = [s for s in steps if s["state"] == "to do"]

    if index is None:
        nxt = "bring the cluster back onto the route (see the warnings), then rerun meshca status"
    elif stack_index is None:
        nxt = "the stack file's namespace map is off its own batch order: correct meshca:namespaces/meshca:batches (meshca plan says where)"
    elif index == stack_index and not todo and not [w for w in warnings if w.name != "StatusDriftRevision"]:
        if stack_index + 1 < len(route) and not config.rollback:
            nxt = f"advance the stack file to position {stack_index + 1} ({route[stack_index + 1].label}), then pulumi preview --policy-pack policy and pulumi up --policy-pack policy"
        else:
            nxt = "the migration is complete on this cluster"
    elif index == stack_index:
        nxt = f"pulumi up --policy-pack policy: {len(todo)} step(s) of this position are not done yet" if todo else "fix the drift above, then rerun meshca status"
    elif index < stack_index:
        nxt = f"pulumi preview --policy-pack policy, then pulumi up --policy-pack policy: the stack file is ahead of the live mesh by {stack_index - index} position(s)"
    else:
        nxt = f"the stack file is behind the live mesh: set meshca:phase {phase} and meshca:namespaces as they are live (meshca discover --write - shows them)"
    if index is not None and stack_index is not None and index != stack_index:
        how = ("run pulumi up to bring the cluster there" if index < stack_index else "set the stack file to the live position (or roll the cluster back through the route)")
        warnings.insert(0, MeshcaError("StatusPositionMismatch", subject, stack_index=stack_index, stack_label=stack_label, live_index=index, live_label=label, how=how))
    doc = {
        "cluster": cluster.name,
        "context": cluster.context,
        "live": {"index": index, "label": label, "phase": phase, "controlPlanes": cps, "defaultTag": snap.default_tag()},
        "stack": {"index": stack_index, "label": stack_label, "phase": config.phase},
        "inSync": index is not None and index == stack_index,
        "namespaces": namespaces,
        "steps": steps,
        "drift": [w.as_dict() for w in warnings if w.name.startswith("StatusDrift")],
        "warnings": [w.line() for w in warnings],
        "next": nxt,
    }
    return doc, warnings


def _revision_aliases(config) -> dict[str, str]:
    """Short names for the stack's revisions (the table fits 80 columns; a legend names them)."""
    aliases = {config.old_revision: "old", config.rev1: "REV1", config.rev2: "REV2"}
    return {rev: alias for rev, alias in aliases.items() if rev}


def _namespace_table(config, namespaces: list[dict]) -> list[str]:
    """Per namespace: the live injection label, the stack file's revision and the pods by the
    revision that injected them; the stack's revisions by their short names, with a legend."""
    aliases = _revision_aliases(config)
    short = lambda rev: aliases.get(rev, rev) if rev else "-"  # noqa: E731
    out = [f"  revisions: {aliases[rev]:<4} = {rev}" if i == 0 else f"             {aliases[rev]:<4} = {rev}" for i, rev in enumerate(aliases)]
    width = max([len(n["name"]) for n in namespaces] + [9])
    cols = max([len(short(n["live"])) for n in namespaces] + [len(short(n["stack"])) for n in namespaces] + [5])
    out.append(f"  {'namespace':<{width}}  {'label':<{cols}}  {'stack':<{cols}}  pods by revision")
    for n in namespaces:
        pods = ", ".join(f"{short(r)}={c}" for r, c in n["pods"].items()) or "none"
        out.append(f"  {n['name']:<{width}}  {short(n['live']):<{cols}}  {short(n['stack']):<{cols}}  {pods}")
    return out


def render(config, docs: list[dict]) -> str:
    out = [f"stack {config.stack}: phase {config.phase}"]
    for d in docs:
        live_pos, stack_pos = d["live"], d["stack"]
        out.append("")
        out.append(f"cluster {d['cluster']} (context {d['context']})")
        out.append(f"  live:  position {live_pos['index'] if live_pos['index'] is not None else '?'}: {live_pos['label']}")
        out.append(f"  stack: position {stack_pos['index'] if stack_pos['index'] is not None else '?'}: {stack_pos['label']}{'' if d['inSync'] else '   <- differs'}")
        out.append(f"  istiod: {', '.join(live_pos['controlPlanes']) or 'none'}" + (f"; default tag -> {live_pos['defaultTag']}" if live_pos["defaultTag"] else ""))
        out.extend(_namespace_table(config, d["namespaces"]))
        counts = {}
        for s in d["steps"]:
            counts[s["state"]] = counts.get(s["state"], 0) + 1
        out.append(f"  steps of phase {stack_pos['phase']}: " + (", ".join(f"{c} {k}" for k, c in sorted(counts.items())) or "none"))
        for s in d["steps"]:
            if s["state"] != "not observable":
                out.append(f"    [{s['procedure']}] {s['id']}: {s['state']}")
        out.append(f"  drift: {len(d['drift'])}" if d["drift"] else "  drift: none")
        out.append(f"  next: {d['next']}")
    return "\n".join(_fit(line) for line in out)


def _fit(line: str, columns: int = 80) -> str:
    """A line longer than ``columns`` wrapped at spaces, continuations indented under it."""
    if len(line) <= columns:
        return line
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return "\n".join(textwrap.wrap(line, columns, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False))


def snapshot_of(cluster) -> live.Snapshot:
    from .kubeaccess import require_cluster_access
    from .restart import Kubectl

    kubeconfig = str(Path(cluster.kubeconfig).expanduser()) if cluster.kubeconfig else None
    require_cluster_access(kubeconfig, cluster.context)
    return live.read(Kubectl(kubeconfig, cluster.context))


def status_once(config, as_json: bool, out=None) -> int:
    out = out or sys.stdout
    docs, warnings = [], []
    for cluster in config.clusters:
        cfg = config
        if cluster.kubeconfig and not Path(cluster.kubeconfig).expanduser().is_absolute():
            cluster = dataclasses.replace(cluster, kubeconfig=str(config.project_dir / cluster.kubeconfig))
        doc, warns = cluster_status(cfg, cluster, snapshot_of(cluster))
        docs.append(doc)
        warnings += warns
    ok = all(d["inSync"] for d in docs) and not any(d["drift"] for d in docs)
    if as_json:
        print(json.dumps({"ok": ok, "stack": config.stack, "clusters": docs}, indent=2), file=out)
    else:
        print(render(config, docs), file=out)
        for w in warnings:
            print(w.line(), file=sys.stderr)
    return 0 if ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from .cli import load_config_from_args

    config = load_config_from_args(args)
    if not args.watch:
        return status_once(config, args.json)
    code = 0
    polls = 0
    try:
        while True:
            if not args.json:
                print(f"\x1b[H\x1b[2J# meshca status --stack {config.stack} (every {args.interval:g} s; Ctrl-C stops) {time.strftime('%H:%M:%S')}")
            code = status_once(config, args.json)
            polls += 1
            if args.max_polls and polls >= args.max_polls:
                return code
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return code


DESCRIPTION = (
    "The live mesh against the stack file, per cluster: the position the live mesh is at on the\n"
    "stack's route (baseline = 0), namespaces and pods per revision, which steps of the stack's\n"
    "position are done, drift (a label changed by hand, an extra revision, pods never restarted)\n"
    "and what to do next. Reads only. Exit 0 when every cluster is at the stack's position\n"
    "without drift, 1 otherwise."
)


def register(subparsers) -> None:
    from .cli import add_stack_arguments
    from .help import examples_epilog

    p = subparsers.add_parser("status", help="where the live mesh is against the stack file, per cluster",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=examples_epilog(("meshca status --stack dev", "meshca status --stack prod --json", "meshca status --stack dev --watch --interval 10")))
    add_stack_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--watch", action="store_true", help="repeat until Ctrl-C")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between reads with --watch (default 5)")
    p.add_argument("--max-polls", type=int, default=0, help="with --watch: stop after this many reads (0: until Ctrl-C)")
    p.set_defaults(func=cmd_status)
