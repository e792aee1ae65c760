"""``meshca discover``: a stack file written from the live clusters, at the live position.

    meshca discover --context C [--context C2 ...] --write Pulumi.NAME.yaml [--export-ca DIR]

Reads each cluster once (meshca/live.py: reads only) and writes ``Pulumi.NAME.yaml`` with a
comment above every key saying what it was decided from. What it decides:

- ``useCase``/``oldRevision``/``rev1``/``rev2``: the running istiods (Deployments ``istiod[-REV]``)
  and what each signs with (its mesh config's ``CA_PROVIDER`` and ``caCertificates``: a
  ``--ca citadel`` revision listing extra roots is REV1, a ``GoogleCA`` one REV2); ``istiod``
  of revision ``default`` is Istio on GKE (``migrate``). Revisions not installed yet are named
  after the pinned asmcli, as the README's examples are.
- ``phase`` and ``namespaces``: which istiods run (meshca/live.py ``live_phase``) and each
  namespace's injection label; ``batches`` put the namespaces already moved first, so the file
  sits on its own route at the live position.
- ``clusters``: name, project and location from a GKE context name ``gke_PROJECT_LOCATION_NAME``
  (the form asmcli parses, lib/validate.sh); ``fleetProject`` the clusters' project.
- ``gateways``: Deployments whose pods are gateways, with the Service selecting them (its
  selector), their HPA and PDB (comments), a canary's revision suffix dropped.
- ``caFiles``: with ``--export-ca DIR`` the four files of the CA the mesh trusts today, 0600,
  named as asmcli needs them (cacerts as it is; Istio on GKE's istio-ca-secret as a self-signed
  CA: ca-cert = root-cert = cert-chain = its root).

What it cannot decide is a ``Warning MCA1030`` line naming the key and the evidence (and a
``# SET:`` comment in the file); workloads that pin a revision or opt out at pod level are
``MCA1032`` lines. It never overwrites a file (MCA1034), and writes nothing when it refuses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import live
from .errors import MeshcaError, MeshcaErrors

ASMCLI_VERSION = "1.19.10-asm.9+config1"
# README's example names: asm-MAJORMINORPOINT-REV of the pinned asmcli, then the phase.
REV1_DEFAULT = "asm-11910-9-distribute-root"
REV2_DEFAULT = "asm-11910-9-meshca-ca-migration"
CA_NAMES = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")
CA_ROLES = {"caCert": "ca-cert.pem", "caKey": "ca-key.pem", "rootCert": "root-cert.pem", "certChain": "cert-chain.pem"}
GKE_CONTEXT = re.compile(r"^gke_(?P<project>[^_]+)_(?P<location>[^_]+)_(?P<name>[^_]+)$")


@dataclass
class Discovery:
    """What discover decided (pure): the config keys with their comments, and its messages."""

    keys: dict[str, Any] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)
    messages: list[MeshcaError] = field(default_factory=list)
    pinned: list[tuple[str, str]] = field(default_factory=list)

    def set(self, key: str, value: Any, *comment: str) -> None:
        self.keys[key] = value
        self.comments.setdefault(key, []).extend(c for c in comment if c)

    def ask(self, key: str, what: str, evidence: str, how: str, file: str) -> None:
        self.comments.setdefault(key, []).append(f"SET: {what} (evidence: {evidence})")
        self.messages.append(MeshcaError("DiscoverUndecided", f"meshca:{key}", what=what, evidence=evidence, key=f"meshca:{key}", file=file, how=how))


def cluster_from_context(context: str) -> dict[str, str] | None:
    m = GKE_CONTEXT.match(context)
    return {"name": m["name"], "project": m["project"], "location": m["location"]} if m else None


def _classify(snap: live.Snapshot) -> dict[str, str]:
    """revision -> role guess (old, rev1, rev2) from what each running istiod signs with."""
    out = {}
    for rev in snap.control_planes():
        kind = snap.ca_kind(rev)
        out[rev] = {"citadel-migration": "rev1", "mesh_ca": "rev2"}.get(kind or "", "old")
    return out


def analyse(snapshots: list[tuple[str, live.Snapshot]], *, kubeconfig: str, file: str, ca_dir: str | None) -> Discovery:
    """Decide the stack's keys from the clusters' snapshots (pure; raises MCA1033/MCA1036)."""
    d = Discovery()
    first_ctx, first = snapshots[0]
    for ctx, snap in snapshots:
        if not snap.control_planes():
            raise MeshcaErrors([MeshcaError("DiscoverNoControlPlane", f"context {ctx}", leftover=", ".join(snap.leftover_revisions()) or "none")])
    for ctx, snap in snapshots[1:]:
        if snap.control_planes() != first.control_planes():
            raise MeshcaErrors([MeshcaError("DiscoverClustersDisagree", f"context {ctx}", what="other istiod revisions",
                                            evidence=f"{', '.join(snap.control_planes())} here, {', '.join(first.control_planes())} on {first_ctx}")])
        a, b = snap.trusted_root_pem(), first.trusted_root_pem()
        if a and b and a[1] != b[1]:
            raise MeshcaErrors([MeshcaError("DiscoverClustersDisagree", f"context {ctx}", what="another Citadel root",
                                            evidence=f"{a[0]} here differs from {b[0]} on {first_ctx}")])

    # Revisions and use case ------------------------------------------------------------
    roles = _classify(first)
    cps = first.control_planes()
    olds = [r for r, role in roles.items() if role == "old"]
    rev1s = [r for r, role in roles.items() if role == "rev1"]
    rev2s = [r for r, role in roles.items() if role == "rev2"]
    evidence_cps = ", ".join(f"{r} ({first.ca_kind(r) or 'no ASM mesh config'})" for r in cps)
    if len(olds) > 1:
        d.ask("oldRevision", f"several istiods sign with Citadel without a migration option: {', '.join(olds)}; chose {olds[0]}", evidence_cps,
              "the revision the mesh runs today (the one its namespaces are labelled for)", file)
    old = olds[0] if olds else None
    if old is None:
        d.ask("useCase", "the old control plane is gone (phase A finished), so Istio on GKE (migrate) and CSM (upgrade) look alike; chose migrate",
              evidence_cps, "migrate if the mesh was Istio on GKE (revision default), else upgrade and meshca:oldRevision the CSM revision", file)
        old = "default"
    use_case = "migrate" if old == "default" else "upgrade"
    d.set("useCase", use_case, f"old control plane: {'istiod (revision default: Istio on GKE)' if use_case == 'migrate' else 'istiod-' + old + ' (a revisioned CSM install)'}")
    d.set("phase", "baseline")
    d.set("rollback", False)
    rev1 = rev1s[0] if rev1s else REV1_DEFAULT
    rev2 = rev2s[0] if rev2s else REV2_DEFAULT
    for role, found, default in (("rev1", rev1s, REV1_DEFAULT), ("rev2", rev2s, REV2_DEFAULT)):
        if len(found) > 1:
            d.ask(role, f"several candidates {', '.join(found)}; chose {found[0]}", evidence_cps, f"the revision installed for {'phase A (--ca citadel)' if role == 'rev1' else 'phase B (--ca mesh_ca)'}", file)
    d.set("oldRevision", old, f"istiod revisions running: {evidence_cps}")
    d.set("rev1", rev1, f"installed (its mesh config: CA_PROVIDER Citadel with caCertificates)" if rev1s else f"not installed yet: named after asmcli {ASMCLI_VERSION}; any DNS-1035 name works")
    d.set("rev2", rev2, "installed (its mesh config: CA_PROVIDER GoogleCA)" if rev2s else f"not installed yet: named after asmcli {ASMCLI_VERSION}")

    # Clusters --------------------------------------------------------------------------
    clusters = []
    for ctx, _ in snapshots:
        parsed = cluster_from_context(ctx)
        if parsed is None:
            name = re.sub(r"[^a-z0-9-]", "-", ctx.lower()).strip("-")[:40] or "cluster"
            parsed = {"name": name, "project": "PROJECT", "location": "LOCATION"}
            d.ask("clusters", f"context {ctx} is not a GKE context name (gke_PROJECT_LOCATION_NAME): project and location unknown", f"context {ctx}",
                  f"the cluster's project and location (gcloud container clusters list) in meshca:clusters[{len(clusters)}]", file)
        clusters.append({**parsed, "kubeconfig": kubeconfig, "context": ctx})
    projects = sorted({c["project"] for c in clusters})
    d.set("fleetProject", projects[0], "assumed: the clusters' project (the fleet host project asmcli --fleet_id registers them in); change it if your fleet lives in another project")
    if len(projects) > 1:
        d.ask("fleetProject", f"the clusters are in several projects ({', '.join(projects)})", "meshca:clusters[].project", "the fleet host project (the guide supports one project)", file)
    d.set("clusters", clusters, "from the kubeconfig contexts (gke_PROJECT_LOCATION_NAME)")

    # CA files --------------------------------------------------------------------------
    if ca_dir is not None:
        d.set("caFiles", {role: f"{ca_dir}/{name}" for role, name in CA_ROLES.items()},
              f"exported by --export-ca from {(first.ca_files() or ('nothing',))[0]} (0600): the CA the mesh trusts today")
    else:
        source = first.trusted_root_pem()
        d.set("caFiles", {role: f"certs/{name}" for role, name in CA_ROLES.items()})
        d.ask("caFiles", "the four CA files are not exported", (source[0] if source else "no CA secret found"),
              "rerun with --export-ca DIR, or point the four paths at the files of the CA the mesh trusts today", file)

    # Gateways --------------------------------------------------------------------------
    gateways, gateway_ns = [], set()
    seen = set()
    for g in first.gateways():
        if (g.namespace, g.base) in seen:
            continue
        seen.add((g.namespace, g.base))
        gateway_ns.add(g.namespace)
        if not g.service:
            d.ask("gateways", f"gateway {g.namespace}/{g.deployment} has no Service selecting its pods; left out", f"Deployment {g.namespace}/{g.deployment}",
                  "add it with its Service if it serves traffic", file)
            continue
        entry = {"namespace": g.namespace, "deployment": g.base, "service": g.service, "labels": dict(g.selector), "serviceAccount": g.service_account}
        gateways.append(entry)
        extras = ", ".join(x for x in (f"HPA {g.hpa}" if g.hpa else "", f"PDB {g.pdb}" if g.pdb else "") if x) or "no HPA, no PDB"
        d.comments.setdefault("gateways", []).append(f"{g.namespace}/{g.deployment}: Service {g.service} selects it ({extras}; cloned with it), pods injected by {g.revision or 'no recorded revision'}")
    d.set("gateways", gateways)

    # Namespaces and position -----------------------------------------------------------
    labelled = first.injected_namespaces(gateway_ns)
    known = {old, rev1, rev2}
    namespaces: dict[str, str] = {}
    for ns, rev in labelled.items():
        rev = old if (rev == "default" and use_case == "migrate") else rev
        if rev not in known:
            d.ask("namespaces", f"namespace {ns} is labelled for {rev}, which is none of {old}, {rev1}, {rev2}; left out", f"namespace {ns} labels {first.namespaces()[ns]}",
                  f"relabel it for one of them, or add it with the revision it should be on", file)
            continue
        namespaces[ns] = rev
        for ctx, snap in snapshots[1:]:
            other = snap.injected_namespaces(gateway_ns).get(ns)
            if other is not None and other != labelled[ns]:
                d.ask("namespaces", f"namespace {ns} is labelled for {labelled[ns]} on {first_ctx} but {other} on {ctx}; used {first_ctx}'s",
                      f"namespace labels on both contexts", "the revision it is on everywhere (bring the clusters to one position first)", file)
    if not namespaces:
        d.ask("namespaces", "no namespace outside istio-system carries an injection label", "kubectl get namespaces --show-labels", "each namespace of the mesh and its revision", file)
        namespaces = {"NAMESPACE": old}
    phase = live.live_phase(cps, old, rev1, rev2, bool(first.ca_secrets()))
    d.keys["phase"] = phase
    d.comments["phase"] = [f"the live position: istiods {', '.join(cps)}{', CA secrets deleted' if not first.ca_secrets() else ''}"]
    start, target = {"distribute-root": (old, rev1), "mesh-ca": (rev1, rev2)}.get(phase, (None, None))
    order = sorted(namespaces, key=lambda n: (namespaces[n] != target, list(namespaces).index(n))) if target else list(namespaces)
    d.set("namespaces", {n: namespaces[n] for n in order}, "each namespace and the revision its injection label selects now (istio-injection=enabled is default)")
    moved = [n for n in order if namespaces[n] == target]
    if moved and len(moved) < len(order):
        d.set("batches", [moved] + [[n] for n in order if n not in moved],
              f"the namespaces already on {target} are the first batch; the rest one per batch (regroup the later batches freely)")
    for ns in order:
        counts = first.pod_revisions(ns)
        pods = ", ".join(f"{r}={c}" for r, c in counts.items()) or "no pods"
        stale = [r for r in counts if r not in (namespaces[ns], "none")]
        d.comments.setdefault("namespaces", []).append(f"  {ns}: pods injected by {pods}" + (f" (not all restarted onto {namespaces[ns]})" if stale else ""))
    leftover = first.leftover_revisions()
    if leftover:
        d.comments["oldRevision"].append(f"named by an IstioOperator or injector webhook without an istiod: {', '.join(leftover)} (left over by an earlier install or removal)")
    d.pinned = first.pinned_workloads()
    for where, what in d.pinned:
        d.messages.append(MeshcaError("DiscoverPinnedWorkload", where, what=what))
    return d


def render(d: Discovery, header: list[str]) -> str:
    out = [f"# {h}" if h else "#" for h in header]
    if d.pinned:
        out.append("# Workloads that pin a revision or opt in/out at pod level (relabelling their namespace does not move them):")
        out += [f"#   {w}: {what}" for w, what in d.pinned]
    asks = [c for cs in d.comments.values() for c in cs if c.startswith("SET:")]
    if asks:
        out.append(f"# {len(asks)} key(s) to set by hand: search for SET: below")
    out.append("config:")
    for key, value in d.keys.items():
        for c in d.comments.get(key, []):
            out.append(f"  # {c}")
        flow = None if key == "batches" else False  # batches read best as [[a, b], [c]]
        text = yaml.safe_dump({f"meshca:{key}": value}, sort_keys=False, default_flow_style=flow, width=1000)
        out += ["  " + line for line in text.rstrip("\n").splitlines()]
    return "\n".join(out) + "\n"


def _position(d: Discovery, stack_path: Path):
    """(config, index, label, count) when the keys validate as a stack (caFiles readable), else
    (None, None, the first problem's line, None)."""
    from . import plan as planmod
    from .config import stack_name_from_file, validate

    try:
        config = validate(dict(d.keys), stack=stack_name_from_file(stack_path), project_dir=stack_path.resolve().parent, source=str(stack_path))
    except MeshcaErrors as exc:
        return None, None, exc.errors[0].line(), None
    positions = planmod.route(config)
    index = planmod.locate(config, positions)
    label = positions[index].label if index is not None else "off the route"
    return config, index, label, len(positions) - 1


def export_ca(snap: live.Snapshot, directory: Path) -> str:
    found = snap.ca_files()
    if found is None:
        raise MeshcaErrors([MeshcaError("DiscoverNoCaSecret", "--export-ca")])
    source, files = found
    directory.mkdir(parents=True, exist_ok=True)
    from .pki import write_private

    for name in CA_NAMES:
        write_private(directory / name, files[name])
    return source


def kubeconfig_shown(kubeconfig: str | None) -> str:
    from .kubeaccess import kubeconfig_files

    files, _ = kubeconfig_files(kubeconfig)
    present = [p for p in files if p.is_file()]
    return str((present or files)[0]) if not kubeconfig else kubeconfig


def cmd_discover(args: argparse.Namespace) -> int:
    from .kubeaccess import require_cluster_access
    from .restart import Kubectl

    contexts = list(dict.fromkeys(args.context))
    to_stdout = args.write == "-"
    target = None if to_stdout else Path(args.write)
    ca_dir = Path(args.export_ca) if args.export_ca else None
    refusals = []
    if target is not None and target.exists():
        refusals.append(MeshcaError("DiscoverTargetExists", str(target)))
    if ca_dir is not None:
        refusals += [MeshcaError("DiscoverTargetExists", str(ca_dir / n)) for n in CA_NAMES if (ca_dir / n).exists()]
    if refusals:
        raise MeshcaErrors(refusals)
    for ctx in contexts:
        require_cluster_access(args.kubeconfig, ctx)
    snapshots = [(ctx, live.read(Kubectl(args.kubeconfig, ctx))) for ctx in contexts]
    stack_path = target if target is not None else Path.cwd() / "Pulumi.discovered.yaml"
    stack_dir = stack_path.resolve().parent
    ca_rel = None
    if ca_dir is not None:
        if snapshots[0][1].ca_files() is None:
            raise MeshcaErrors([MeshcaError("DiscoverNoCaSecret", "--export-ca")])
        ca_rel = os.path.relpath(ca_dir.resolve(), stack_dir)
    d = analyse(snapshots, kubeconfig=kubeconfig_shown(args.kubeconfig), file=str(args.write), ca_dir=ca_rel)
    written = []
    if ca_dir is not None:
        source = export_ca(snapshots[0][1], ca_dir)
        written.append(f"{ca_dir}/{{{','.join(CA_NAMES)}}} (0600, from {source})")
    config, index, label, last = _position(d, stack_path)
    header = [f"Written by meshca discover {' '.join('--context ' + c for c in contexts)} at {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from the live clusters."]
    if config is not None:
        header.append(f"Position {index if index is not None else '?'} of {last}: {label}" + (" (past baseline: the mesh has moved already)" if index else ""))
        if index:
            d.messages.insert(0, MeshcaError("DiscoverPastBaseline", str(args.write), index=index, label=label, phase=config.phase, stack=config.stack))
    else:
        header.append(f"Position: known once the keys marked SET: are set ({label})")
    text = render(d, header)
    if to_stdout:
        sys.stdout.write(text)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.insert(0, str(target))
    for m in d.messages:
        print(m.line(), file=sys.stderr)
    for w in written:
        print(f"wrote {w}", file=sys.stderr)
    if config is not None:
        print(f"meshca plan --config {args.write} accepts it" if not to_stdout else "the stack validates", file=sys.stderr)
    return 0


DESCRIPTION = (
    "Read the live clusters (istiod revisions, each namespace's injection label and the revision\n"
    "that injected its pods, gateways with their Services, HPAs and PDBs, the CA secrets, project\n"
    "and location from the GKE context name) and write a stack file that `meshca plan` accepts,\n"
    "at the live position, with a comment on every key saying what it was decided from. What it\n"
    "cannot decide is a Warning MCA1030 line naming the key; workloads that pin a revision or opt\n"
    "out at pod level are MCA1032 lines. Reads only; never overwrites a file."
)
EXAMPLES = (
    "meshca discover --context gke_acme-mesh-dev_us-central1_dev-1 --write Pulumi.dev.yaml --export-ca certs",
    "meshca discover --context gke_p_us-east1_a --context gke_p_us-west1_b --write Pulumi.prod.yaml",
    "meshca discover --context gke_p_us-central1_c1 --write -",
)


def register(subparsers) -> None:
    from .help import examples_epilog

    p = subparsers.add_parser("discover", help="write a stack file from the live clusters, at the live position",
                              description=DESCRIPTION, epilog=examples_epilog(EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", action="append", required=True, help="a kubeconfig context of the mesh (repeatable: one per cluster)")
    p.add_argument("--kubeconfig")
    p.add_argument("--write", required=True, metavar="FILE", help="the stack file to write (Pulumi.NAME.yaml beside Pulumi.yaml; - for stdout); never overwritten")
    p.add_argument("--export-ca", type=Path, metavar="DIR", help="also write the four CA files the mesh trusts today into DIR (0600): ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem")
    p.set_defaults(func=cmd_discover)
