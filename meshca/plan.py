"""The plan: pure Python (no Pulumi), computed from a validated StackConfig.

- ``route(config)``: every position from the starting point (baseline) through each phase
  and batch to phase C, as the stack file would say it (phase, rollback, namespace map);
- ``locate(config)``: where the current stack file sits on that route;
- ``build(config)``: per cluster, the ordered steps that make up the desired state at the
  current position (cumulative: the steps of earlier phases stay, unchanged, so Pulumi keeps
  their resources and does not run them again), each with its argv and the objects it touches;
  and the desired state those steps leave behind.

Procedure numbers follow procedure.md: A1-A6, B1-B5, C1-C3. The trust gates get the number of
the step they guard: A0 (root of trust, before A1), A3 (root-cert), B0 (root-cert before B1),
B1 (trust domains of REV1 and REV2), B4 (workload certs before REV1 is removed),
C0 (workload certs before the CA secrets go), C4 (old root gone, after C3).

Consumers: components/ (Pulumi resources), policy/ (by the props they produce), the rehearsal
(applies steps to a simulated mesh) and the CLI (prints them).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import yaml

from . import commands as cmd
from .config import PHASES, Cluster, Gateway, StackConfig

CITADEL = "CITADEL"
MESHCA = "MESHCA"
UNKNOWN = "UNKNOWN"  # forbid-only: a root that is neither (meshca/trust/verdict.py)
MIGRATION_OPTION = {"citadel": "ca-migration-citadel", "mesh_ca": "ca-migration-meshca"}
ASMCLI_PROMPT_ANSWER = "y\n"  # asmcli asks "Continue? [y/N]" when istio-ingressgateway exists

# What the current config knows about cacerts on a cluster, for A1's certificate flags.
CACERTS_ABSENT = "absent"
CACERTS_MATCHING = "matching"
CACERTS_UNKNOWN = "unknown"


def _freeze(value: Any) -> Any:
    if isinstance(value, (str, int, float, type(None))):  # the common case, before the (slow) ABC check
        return value
    if type(value) is dict:  # plain containers before the ABC checks, same result
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if type(value) is list:
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Step:
    """One thing done to one cluster: a command (argv) and the objects it touches."""

    id: str
    cluster: str
    phase: str
    procedure: str
    action: str
    title: str
    argv: tuple[str, ...]
    objects: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    stdin: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Operational settings the command reads from its environment (KUBECONFIG, timeouts): the
    # Command's ``environment``, which the engine does not diff (ignore_changes), so changing
    # them never re-runs a completed step (issue 9 finding 2).
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "phase": self.phase,
            "procedure": self.procedure,
            "action": self.action,
            "title": self.title,
            "argv": list(self.argv),
            "objects": list(self.objects),
            "dependsOn": list(self.depends_on),
        }
        if self.stdin is not None:
            out["stdin"] = self.stdin
        out["env"] = dict(self.env)
        out["params"] = _thaw(self.params)
        return out

    @property
    def is_gate(self) -> bool:
        return self.action == "gate"


@dataclass(frozen=True)
class DesiredState:
    """What a cluster looks like once the position's steps are done."""

    pod_revisions: Mapping[str, str]  # namespace -> revision its pods run
    namespace_labels: Mapping[str, Mapping[str, str]]  # only namespaces meshca has relabelled
    control_planes: tuple[str, ...]  # istiod revisions present
    canary_gateways: Mapping[str, str]  # "ns/deployment" of each canary -> revision label
    old_gateways: tuple[str, ...]  # "ns/deployment" of the original gateways still present
    ca_secrets: bool  # cacerts / istio-ca-secret still present


@dataclass(frozen=True)
class ClusterPlan:
    cluster: Cluster
    steps: tuple[Step, ...]
    desired: DesiredState

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def phase_steps(self, phase: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.phase == phase)


@dataclass(frozen=True)
class Position:
    index: int
    phase: str
    rollback: bool
    namespaces: tuple[tuple[str, str], ...]
    batch: int | None
    batches: int | None
    label: str

    @property
    def namespace_map(self) -> dict[str, str]:
        return dict(self.namespaces)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "phase": self.phase,
            "rollback": self.rollback,
            "batch": self.batch,
            "label": self.label,
            "namespaces": dict(self.namespaces),
        }


@dataclass(frozen=True)
class Plan:
    config: StackConfig
    route: tuple[Position, ...]
    position: int | None  # index on the route, None when off-route
    clusters: tuple[ClusterPlan, ...]

    def cluster(self, name: str) -> ClusterPlan:
        return next(c for c in self.clusters if c.cluster.name == name)

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "stack": c.stack,
            "useCase": c.use_case,
            "phase": c.phase,
            "rollback": c.rollback,
            "route": [p.phase for p in self.route],
            "positions": [p.to_json() for p in self.route],
            "position": self.position,
            "namespaceDigest": namespace_digest(c.stack, c.namespace_map),
            "clusters": [
                {
                    "name": cp.cluster.name,
                    "context": cp.cluster.context,
                    "steps": [s.to_json() for s in cp.steps],
                }
                for cp in self.clusters
            ],
        }


# ----------------------------------------------------------------------------- route


def batches_of(config: StackConfig) -> tuple[tuple[str, ...], ...]:
    if config.batches:
        return config.batches
    names = [n.name for n in config.namespaces]
    size = config.batch_size
    return tuple(tuple(names[i : i + size]) for i in range(0, len(names), size))


def route(config: StackConfig) -> tuple[Position, ...]:
    """Every position from baseline to old-root-removed, batch by batch."""
    names = [n.name for n in config.namespaces]
    batches = batches_of(config)
    positions: list[Position] = []

    def add(phase: str, mapping: dict[str, str], batch: int | None, label: str) -> None:
        positions.append(
            Position(len(positions), phase, False, tuple((n, mapping[n]) for n in names), batch, len(batches) if batch is not None else None, label)
        )

    mapping = {n: config.old_revision for n in names}
    add("baseline", mapping, None, "baseline: the mesh as it runs today")
    for phase, target in (("distribute-root", config.rev1), ("mesh-ca", config.rev2)):
        add(phase, mapping, 0, f"{phase}: {target} installed, no namespace moved yet")
        for i, batch in enumerate(batches, start=1):
            mapping = {**mapping, **{n: target for n in batch}}
            add(phase, mapping, i, f"{phase}: batch {i}/{len(batches)} on {target} ({', '.join(batch)})")
        done = f"{phase}-done"
        add(done, mapping, None, f"{done}: the old control plane removed")
    add("old-root-removed", mapping, None, "old-root-removed: CA secrets backed up and deleted, control plane restarted")
    return tuple(positions)


def locate(config: StackConfig, positions: Sequence[Position] | None = None) -> int | None:
    positions = positions if positions is not None else route(config)
    current = config.namespace_map
    matches = [p.index for p in positions if p.phase == config.phase and p.namespace_map == current]
    if not matches:
        return None
    return matches[-1]


def namespace_digest(stack: str, namespace_map: Mapping[str, str]) -> str:
    """Binds gate evidence to one stack and one namespace-to-revision map."""
    blob = json.dumps({"stack": stack, "namespaces": dict(sorted(namespace_map.items()))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def identity(config: StackConfig) -> dict[str, Any]:
    """What the steps of a migration under way are bound to, beside the revision names: the
    clusters, the CA files' contents (SHA-256 of the three certificate files, never the key)
    and what every install passes. The transition guard refuses a change after baseline
    (issue 9 finding 2). Operational keys (timeouts, polls, kubeconfig, tool paths, file
    locations) are not part of it."""

    def digest(path: Any) -> str:
        try:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            return "unreadable"

    files = config.ca_files
    return {
        "clusters": {c.name: {"project": c.project, "location": c.location, "context": c.context} for c in config.clusters},
        "caFiles": {"caCert": digest(files.ca_cert), "rootCert": digest(files.root_cert), "certChain": digest(files.cert_chain)},
        "install": {
            "fleetProject": config.fleet_project,
            "customOverlays": [digest(config.project_dir / os.path.expanduser(o)) for o in config.asmcli.custom_overlays],
            "extraOptions": list(config.asmcli.extra_options),
            "prerequisites": config.prerequisites,
            "rev2CitadelRoot": config.rev2_citadel_root,
        },
    }


# ----------------------------------------------------------------------------- steps


def injection_labels(config: StackConfig, revision: str) -> dict[str, str]:
    """The one injection label a namespace on ``revision`` carries."""
    if config.use_case == "migrate" and revision == config.old_revision:
        return {"istio-injection": "enabled"}
    return {"istio.io/rev": revision}


def istiod_name(revision: str) -> str:
    return "istiod" if revision == "default" else f"istiod-{revision}"


def canary_name(gateway: Gateway, config: StackConfig) -> str:
    return f"{gateway.deployment}-{config.rev1}"


def istiod_service_manifest(revision: str) -> dict[str, Any]:
    """Service ``istiod`` pointed at ``revision``: the kpt package's ``asm/istio/istiod-service.yaml``
    (anthos-service-mesh-packages, tag 1.19.10-asm.9+config1, lines 19-46) with its ``ASM_REV``
    setter set. Built here, not read from asmcli's output dir, so A5/B4 need no local leftovers
    (the output dir is git-ignored and absent on another runner)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "istiod",
            "namespace": "istio-system",
            "labels": {"istio.io/rev": revision, "app": "istiod", "istio": "pilot", "release": "istio"},
        },
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": {"app": "istiod", "istio.io/rev": revision},
        },
    }


class _Builder:
    def __init__(self, config: StackConfig, cluster: Cluster, cacerts: str) -> None:
        self.config = config
        self.cluster = cluster
        self.cacerts = cacerts
        self.steps: list[Step] = []
        self.ids: set[str] = set()
        self.last_gate: str | None = None

    def add(
        self,
        step_id: str,
        *,
        phase: str,
        procedure: str,
        action: str,
        title: str,
        argv: Iterable[str],
        objects: Iterable[str],
        depends_on: Iterable[str] = (),
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        **params: Any,
    ) -> str:
        assert step_id not in self.ids, step_id
        # Every step after a gate depends on it directly, not only transitively: a failed
        # gate must visibly hold back everything that follows it.
        if action != "gate" and self.last_gate:
            depends_on = [*depends_on, self.last_gate]
        deps = tuple(dict.fromkeys(d for d in depends_on if d))
        missing = [d for d in deps if d not in self.ids]
        assert not missing, (step_id, missing)
        self.ids.add(step_id)
        self.steps.append(
            Step(
                id=step_id,
                cluster=self.cluster.name,
                phase=phase,
                procedure=procedure,
                action=action,
                title=title,
                argv=tuple(argv),
                objects=tuple(objects),
                depends_on=deps,
                stdin=stdin,
                params=_freeze(params),
                env=MappingProxyType({"KUBECONFIG": self.cluster.kubeconfig, **(env or {})}),
            )
        )
        return step_id

    # -- pieces ------------------------------------------------------------------------------

    def gate(self, step_id: str, *, phase: str, procedure: str, check: str, title: str, depends_on: Iterable[str], certifies: Mapping[str, str], require: Sequence[str] = (), forbid: Sequence[str] = (), retiring: Sequence[dict] = (), root_cert: str | None = None, revisions: Sequence[str] = ()) -> str:
        """A trust gate. ``certifies`` is the namespace map it proves (fixed for the gate's
        life): its digest and the restart generation are gate inputs, so the gate re-runs
        whenever either changes, and never again in later phases it does not guard."""
        c = self.config
        flags: list[str] = ["--source", c.gates.source]
        if require:
            flags += ["--require", ",".join(require)]
        if forbid:
            flags += ["--forbid", ",".join(forbid)]
        for r in retiring:
            if "deployment" in r:
                flags += ["--retiring-deployment", f"{r['namespace']}/{r['deployment']}"]
            else:
                flags += ["--retiring-selector", f"{r['namespace']}/{r['selector']}"]
        citadel_root = None
        if check == "root-of-trust":
            flags += ["--root-cert", root_cert]
        else:
            # The Citadel reference is today's root from the files (A0 proved it is the live
            # one), never re-read from the cluster: after C2 istio-ca-secret holds a NEW root.
            citadel_root = c.ca_files.shown("root_cert")
            flags += ["--citadel-root", citadel_root]
            if c.gates.meshca_root:
                flags += ["--meshca-root", c.gates.meshca_root]
        if check == "trust-domain":
            flags += ["--fleet-project", c.fleet_project]
            for revision in revisions:
                flags += ["--revision", revision]
        flags += ["--concurrency", str(c.gates.concurrency)]
        restarts = [st.id for st in self.steps if st.action in ("restart", "restart-control-plane")]
        gate_id = self.add(
            step_id,
            phase=phase,
            procedure=procedure,
            action="gate",
            title=title,
            argv=cmd.check(self.cluster, check, *flags),
            objects=("Pod/*",) if check != "root-of-trust" else ("Secret/istio-system/cacerts", "Secret/istio-system/istio-ca-secret"),
            depends_on=depends_on,
            check=check,
            require=list(require),
            forbid=list(forbid),
            retiring=list(retiring),
            citadelRoot=citadel_root,
            meshcaRoot=(c.gates.meshca_root or None) if check != "root-of-trust" else None,
            rootCert=root_cert,
            fleetProject=c.fleet_project if check == "trust-domain" else None,
            revisions=list(revisions),
            source=c.gates.source,
            concurrency=c.gates.concurrency,
            timeoutSeconds=c.gates.timeout_seconds,
            pollSeconds=c.gates.poll_seconds,
            namespaces=dict(certifies),
            namespaceDigest=namespace_digest(c.stack, certifies),
            restartGeneration=hashlib.sha256("\n".join(restarts).encode()).hexdigest()[:16],
        )
        self.last_gate = gate_id
        return gate_id

    def install(self, phase: str, procedure: str, revision: str, ca: str, depends_on: Iterable[str]) -> str:
        c = self.config
        output_dir = c.asmcli.output_dir_for(self.cluster.name, revision)
        cert_flags = ca == "citadel" and self.cacerts != CACERTS_MATCHING
        version = self.add(
            f"{procedure}.verify-asmcli",
            phase=phase,
            procedure=procedure,
            action="verify-asmcli",
            title=f"asmcli is version {c.asmcli.version}",
            argv=cmd.asmcli_version(c.asmcli),
            objects=(),
            depends_on=depends_on,
            expectedVersion=c.asmcli.version,
        )
        files = {role: c.ca_files.shown(role) for role, _ in c.ca_files.items()} if cert_flags else None
        option = MIGRATION_OPTION[ca]
        extra_overlays: tuple[str, ...] = ()
        install_deps = [version]
        if ca == "mesh_ca" and c.rev2_citadel_root:
            # REV2 must keep trusting the Citadel root while REV1 workloads remain. The
            # ca-migration-meshca overlay carries no Citadel root, and with ENABLE_CA_SERVER
            # false (1.19.10-asm.9+config1) REV2's istiod does not merge its own CA's root
            # either: list it explicitly. C2 drops it again.
            overlay = citadel_root_overlay_path(c, self.cluster)
            extra_overlays = (overlay,)
            install_deps.append(
                self.add(
                    f"{procedure}.citadel-root-overlay",
                    phase=phase,
                    procedure=procedure,
                    action="write-overlay",
                    title="write the overlay that lists today's Citadel root in REV2's trust bundle",
                    argv=cmd.write_citadel_root_overlay(c.ca_files.shown("root_cert"), overlay),
                    objects=(f"File/{overlay}",),
                    depends_on=[version],
                    revision=revision,
                    file=overlay,
                )
            )
        objects = [
            f"Deployment/istio-system/{istiod_name(revision)}",
            f"Service/istio-system/{istiod_name(revision)}",
            f"ConfigMap/istio-system/istio-{revision}",
            f"MutatingWebhookConfiguration/istio-sidecar-injector-{revision}",
        ]
        if cert_flags:
            objects.insert(0, "Secret/istio-system/cacerts")
        return self.add(
            f"{procedure}.install.{revision}",
            phase=phase,
            procedure=procedure,
            action="install",
            title=f"install istiod {revision} ({'--ca citadel, distributing both roots' if ca == 'citadel' else '--ca mesh_ca, signing with Mesh CA'})",
            argv=cmd.asmcli_install(
                c.asmcli,
                self.cluster,
                fleet_project=c.fleet_project,
                output_dir=output_dir,
                revision=revision,
                ca=ca,
                option=option,
                cert_files=files,
                prerequisites=c.prerequisites,
                extra_overlays=extra_overlays,
            ),
            objects=objects,
            depends_on=install_deps,
            stdin=ASMCLI_PROMPT_ANSWER,
            revision=revision,
            ca=ca,
            option=option,
            outputDir=output_dir,
            certFlags=bool(cert_flags),
            cacerts=self.cacerts if ca == "citadel" else None,
        )

    def move(self, phase: str, procedure: str, namespace: str, from_rev: str, to_rev: str, depends_on: Iterable[str],
             guide_changes: Sequence[str]) -> tuple[str, str]:
        """The namespace's label step and its restart step; their ids."""
        c = self.config
        labels = {**c.namespace(namespace).labels, **injection_labels(c, to_rev)}
        removed = [k for k in ("istio-injection", "istio.io/rev") if k not in labels]
        label = self.add(
            f"{procedure}.label.{namespace}",
            phase=phase,
            procedure=procedure,
            action="label",
            title=f"namespace {namespace}: {from_rev} -> {to_rev}",
            argv=cmd.label_namespace(self.cluster, namespace, *guide_changes),
            objects=(f"Namespace/{namespace}",),
            depends_on=depends_on,
            namespace=namespace,
            fromRevision=from_rev,
            revision=to_rev,
            labels=labels,
            removeLabels=removed,
        )
        restart = self.add(
            f"{procedure}.restart.{namespace}",
            phase=phase,
            procedure=procedure,
            action="restart",
            title=f"restart {namespace} onto {to_rev} and wait for the rollouts",
            argv=cmd.restart_namespace(self.cluster, namespace, to_rev),
            env={"MESHCA_RESTART_TIMEOUT": f"{c.restart_timeout_seconds}s"},
            objects=(f"Deployment/{namespace}/*", f"StatefulSet/{namespace}/*", f"DaemonSet/{namespace}/*"),
            depends_on=[label],
            namespace=namespace,
            revision=to_rev,
        )
        return label, restart

    def moves(self, phase: str, procedure: str, names: Sequence[str], from_rev: str, to_rev: str, first_deps: Iterable[str], changes) -> list[str]:
        """Batches one after another; namespaces of one batch side by side.

        A batch starts with its first namespace's label, which waits for every restart of the
        batch before; the batch's other namespaces wait for that label, so they too run only
        after the whole batch before (transitively), side by side with each other. Depending on
        every earlier restart directly would be batch x batch edges at each batch boundary
        (75 x 75 at 300 namespaces in 4 batches): each edge is an Output in the program and a
        URN in each Command's dependencies in the state, quadratic in the batch size. For a stack
        in flight the new edges run nothing again: the engine chooses a step from the provider's
        diff of inputs, and a resource whose inputs did not change gets a same step whatever its
        dependencies (pulumi/pulumi pkg/resource/deploy/step_generator.go, the fallback to
        ``NewSameStep`` "after diff (same)", lines 1892-1911 at 1b59498)."""
        deps = list(first_deps)
        last: list[str] = []
        for batch in batches_of(self.config):
            in_batch = [n for n in batch if n in names]
            if not in_batch:
                continue
            head_label, head = self.move(phase, procedure, in_batch[0], from_rev, to_rev, deps, changes(in_batch[0]))
            last = [head] + [self.move(phase, procedure, n, from_rev, to_rev, [head_label], changes(n))[1] for n in in_batch[1:]]
            deps = last
        return deps if last else list(first_deps)

    def gateways(self) -> list[Gateway]:
        return [g for g in self.config.gateways if g.on(self.cluster.name)]

    def gateway_apply(self, phase: str, procedure: str, gateway: Gateway, revision: str, depends_on: Iterable[str], verb: str) -> str:
        """The canary as a clone (issue 9 finding 9): A4 clones the live gateway's Deployment,
        HPA and PDB (``meshca gateway clone``, 1.19 gateway-injection form); B3/B5 re-clone the
        canary itself onto another revision (same name and selector: in place)."""
        name = canary_name(gateway, self.config)
        source = gateway.deployment if procedure == "A4" else name
        return self.add(
            f"{procedure}.gateway.{gateway.namespace}.{gateway.deployment}",
            phase=phase,
            procedure=procedure,
            action="gateway",
            title=f"{verb} gateway {gateway.namespace}/{name} on {revision} (a clone of {source}), behind Service {gateway.service}",
            argv=cmd.gateway_clone(self.cluster, gateway.namespace, source, gateway.service, name, revision),
            objects=(f"Deployment/{gateway.namespace}/{name}", f"HorizontalPodAutoscaler/{gateway.namespace}/{name}", f"PodDisruptionBudget/{gateway.namespace}/{name}"),
            depends_on=depends_on,
            gateway=f"{gateway.namespace}/{gateway.deployment}",
            service=gateway.service,
            namespace=gateway.namespace,
            deployment=name,
            source=source,
            revision=revision,
        )

    def gateway_ready(self, phase: str, procedure: str, gateway: Gateway, revision: str, depends_on: Iterable[str]) -> str:
        """Before A5 deletes anything: the Service's EndpointSlices hold enough ready canary pods
        injected by ``revision`` (``meshca gateway ready``)."""
        name = canary_name(gateway, self.config)
        return self.add(
            f"{procedure}.gateway-ready.{gateway.namespace}.{gateway.deployment}",
            phase=phase,
            procedure=procedure,
            action="gateway-ready",
            title=f"Service {gateway.namespace}/{gateway.service} serves from at least as many ready {revision} canary pods as the old gateway",
            argv=cmd.gateway_ready(self.cluster, gateway.namespace, gateway.deployment, gateway.service, name, revision, self.config.gates.timeout_seconds),
            objects=(f"EndpointSlice/{gateway.namespace}/*",),
            depends_on=depends_on,
            gateway=f"{gateway.namespace}/{gateway.deployment}",
            namespace=gateway.namespace,
            deployment=name,
            revision=revision,
        )

    def delete_gateways(self, phase: str, procedure: str, revision: str, depends_on: Iterable[str], old: bool) -> list[str]:
        """Delete the gateways of ``revision`` (the original Deployments when ``old`` on migrate)."""
        ids = []
        for g in self.gateways():
            # By name, never by an app/rev label selector (issue 9 finding 11): a selector
            # also matches gateways nobody listed, and misses one labelled only on its pods.
            name = g.deployment if old else canary_name(g, self.config)
            argv = cmd.delete_deployment(self.cluster, g.namespace, name)
            objects = (f"Deployment/{g.namespace}/{name}",)
            match = {"deployment": name}
            ids.append(
                self.add(
                    f"{procedure}.delete-gateway.{g.namespace}.{g.deployment}",
                    phase=phase,
                    procedure=procedure,
                    action="delete-gateway",
                    title=f"delete the {revision} gateway of {g.namespace}/{g.service}",
                    argv=argv,
                    objects=objects,
                    depends_on=depends_on,
                    namespace=g.namespace,
                    revision=revision,
                    gateway=f"{g.namespace}/{g.deployment}",
                    **match,
                )
            )
        return ids

    def remove_control_plane(self, phase: str, procedure: str, revision: str, depends_on: Iterable[str], keep_service: bool = False) -> list[str]:
        name = istiod_name(revision)
        kinds = cmd.ISTIOD_KINDS_KEEP_SERVICE if keep_service else cmd.ISTIOD_KINDS
        delete = self.add(
            f"{procedure}.delete-istiod.{revision}",
            phase=phase,
            procedure=procedure,
            action="delete-istiod",
            title=f"delete istiod {revision} ({kinds})",
            argv=cmd.delete_istiod(self.cluster, name, kinds),
            objects=tuple(f"{k}/istio-system/{name}" for k in kinds.split(",")),
            depends_on=depends_on,
            revision=revision,
            name=name,
            keepService=keep_service,
        )
        names = [f"installed-state-{revision}"]
        if revision == "default":
            names = ["installed-state", "installed-state-default"]
        state = self.add(
            f"{procedure}.delete-installed-state.{revision}",
            phase=phase,
            procedure=procedure,
            action="delete-installed-state",
            title=f"delete IstioOperator {' '.join(names)} (absent with newer istioctl)",
            argv=cmd.delete_installed_state(self.cluster, *names),
            objects=tuple(f"IstioOperator/istio-system/{n}" for n in names),
            depends_on=[delete],
            revision=revision,
            names=names,
        )
        return [delete, state, self.delete_webhooks(phase, procedure, revision, [state])]

    def apply_istiod_service(self, phase: str, procedure: str, revision: str, depends_on: Iterable[str]) -> str:
        manifest = istiod_service_manifest(revision)
        return self.add(
            f"{procedure}.apply-istiod-service",
            phase=phase,
            procedure=procedure,
            action="apply-istiod-service",
            title=f"point Service istiod (default validation webhook) at {revision}",
            argv=cmd.apply_stdin(self.cluster),
            objects=("Service/istio-system/istiod",),
            depends_on=depends_on,
            stdin=yaml.safe_dump(manifest, sort_keys=False),
            revision=revision,
            manifest=manifest,
        )

    def preflight(self, phase: str, procedure: str, revision: str, depends_on: Iterable[str], gateway_namespaces: Sequence[str] = (), no_operator: bool = False) -> str:
        """``meshca preflight``: the step's preconditions on the cluster (issue 9 finding 13)."""
        namespaces = tuple(dict.fromkeys(gateway_namespaces))
        checks = [f"gateway namespace {ns} without istio-injection" for ns in namespaces] + (["no in-cluster Istio operator"] if no_operator else [])
        return self.add(
            f"{procedure}.preflight",
            phase=phase,
            procedure=procedure,
            action="preflight",
            title=f"pre-flight: {', '.join(checks)}",
            argv=cmd.preflight(self.cluster, revision, namespaces, no_operator),
            objects=(),
            depends_on=depends_on,
            revision=revision,
            gatewayNamespaces=list(namespaces),
            noOperator=no_operator,
        )

    def retiring_old_gateways(self) -> list[dict]:
        """The Deployments A5 deletes, by name: their pods are exempted by owner (ReplicaSet
        ``NAME-<pod-template-hash>``), never by labels another gateway may share."""
        return [{"namespace": g.namespace, "deployment": g.deployment} for g in self.gateways()]

    # -- revision tags and webhooks (issue 9 finding 10) -----------------------------------

    def retarget_default_tag(self, phase: str, procedure: str, old: str, revision: str, depends_on: Iterable[str]) -> list[str]:
        """Before a finish deletes anything: no unmanaged namespace still selects ``old``; in
        migrate the 1.6 injector emptied (migrate-to-asm ``set_default_tag``); the ``default``
        tag (and ``istiod-default-validator``) moved to ``revision``; both proven by dry-runs."""
        c, cluster = self.config, self.cluster
        labels = injection_labels(c, old)
        strays = self.add(
            f"{procedure}.injection-labels",
            phase=phase,
            procedure=procedure,
            action="check-injection-labels",
            title=f"no namespace outside meshca:namespaces still carries {', '.join(f'{k}={v}' for k, v in labels.items())}",
            argv=cmd.webhook_strays(cluster, labels, [n.name for n in c.namespaces]),
            objects=("Namespace/*",),
            depends_on=depends_on,
            revision=revision,
            labels=labels,
        )
        last = strays
        if c.use_case == "migrate" and old == "default":
            last = self.add(
                f"{procedure}.empty-injector",
                phase=phase,
                procedure=procedure,
                action="empty-injector",
                title="empty the Istio 1.6 injector's webhooks (istio-sidecar-injector), as migrate-to-asm does",
                argv=cmd.empty_injector(cluster),
                objects=("MutatingWebhookConfiguration/istio-sidecar-injector",),
                depends_on=[last],
                revision=revision,
            )
        istioctl = c.asmcli.istioctl_for(cluster.name, revision)
        tag = self.add(
            f"{procedure}.tag-default",
            phase=phase,
            procedure=procedure,
            action="tag-default",
            title=f"point the default revision tag and istiod-default-validator at {revision}",
            argv=cmd.tag_set_default(istioctl, cluster, revision),
            objects=("MutatingWebhookConfiguration/istio-revision-tag-default", "ValidatingWebhookConfiguration/istiod-default-validator"),
            depends_on=[last],
            revision=revision,
            istioctl=istioctl,
            istioctlVersion=c.asmcli.istioctl_version,
        )
        verify = self.add(
            f"{procedure}.verify-webhooks",
            phase=phase,
            procedure=procedure,
            action="verify-webhooks",
            title=f"prove it: the validator denies an invalid AuthorizationPolicy, a tagged dry-run pod gets a {revision} sidecar",
            argv=cmd.webhook_verify(cluster, revision),
            objects=(),
            depends_on=[tag],
            revision=revision,
        )
        return [verify]

    def delete_webhooks(self, phase: str, procedure: str, revision: str, depends_on: Iterable[str]) -> str:
        mutating, validating = cmd.webhook_configurations(revision)
        return self.add(
            f"{procedure}.delete-webhooks.{revision}",
            phase=phase,
            procedure=procedure,
            action="delete-webhooks",
            title=f"delete {revision}'s webhook configurations ({mutating}, {validating})",
            argv=cmd.delete_webhooks(self.cluster, revision),
            objects=(f"MutatingWebhookConfiguration/{mutating}", f"ValidatingWebhookConfiguration/{validating}"),
            depends_on=depends_on,
            revision=revision,
        )


def cacerts_fact(probe_stdout: str, config: StackConfig, cluster: Cluster) -> str:
    """What ``commands.probe_cacerts`` printed, judged against the CA files.

    absent: asmcli may create cacerts (A1 passes the four files); matching: asmcli would stop
    with "Custom certificates already exist", so A1 leaves the flags out; anything else is
    an error, because istiod would keep signing with a CA other than the files'.
    """
    import base64

    from .certs import colon_fingerprint, fingerprint, load_certs
    from .errors import MeshcaError, MeshcaErrors

    fields = probe_stdout.split()
    if not fields:
        return CACERTS_ABSENT
    files = config.ca_files
    want = [files.ca_cert.read_bytes(), files.root_cert.read_bytes(), files.cert_chain.read_bytes()]
    try:
        live = [base64.b64decode(f, validate=True) for f in fields]
        same = len(live) == 3 and all(
            [fingerprint(c) for c in load_certs(a)] == [fingerprint(c) for c in load_certs(b)] for a, b in zip(live, want)
        )
        live_root = fingerprint(load_certs(live[1])[0]) if len(live) > 1 else "unreadable"
    except ValueError:
        same, live_root = False, "unreadable"
    if same:
        return CACERTS_MATCHING
    raise MeshcaErrors(
        [
            MeshcaError(
                "CacertsMismatch",
                f"cluster {cluster.name} Secret istio-system/cacerts",
                cluster=cluster.name,
                live=colon_fingerprint(live_root) if live_root != "unreadable" else live_root,
                given=colon_fingerprint(fingerprint(load_certs(want[1])[0])),
            )
        ]
    )


def istioctl_version_fact(stdout: str, config: StackConfig, cluster: Cluster, path: str) -> str:
    """What ``istioctl version --remote=false --short`` printed, against the pinned release."""
    from .errors import MeshcaError, MeshcaErrors

    got = (stdout or "").strip()
    want = config.asmcli.istioctl_version
    if got == want:
        return got
    raise MeshcaErrors([MeshcaError("IstioctlVersionMismatch", path, got=got or "nothing", want=want)])


def citadel_root_overlay_path(config: StackConfig, cluster: Cluster) -> str:
    """Beside REV2's asmcli output dir (asmcli owns the dir itself)."""
    return f"{config.asmcli.output_dir_for(cluster.name, config.rev2)}.citadel-root.yaml"


class _ClusterRoute:
    """One cluster's steps, phase by phase; each stage continues from the previous one's last
    steps (``frontier``) and keeps the desired state up to date."""

    def __init__(self, config: StackConfig, cluster: Cluster, cacerts: str) -> None:
        self.c = config
        self.cluster = cluster
        self.b = _Builder(config, cluster, cacerts)
        self.reached = PHASES.index(config.phase)
        self.names = [n.name for n in config.namespaces]
        self.gateways = self.b.gateways()
        self.frontier: list[str] = []
        self.pod_revisions = dict(config.namespace_map)
        self.control_planes = [config.old_revision]
        self.canaries: dict[str, str] = {}
        self.old_gateways = [f"{g.namespace}/{g.deployment}" for g in self.gateways]
        self.ca_secrets = True

    def all_on(self, revision: str) -> dict[str, str]:
        return {n: revision for n in self.names}

    def moved_to(self, phase: str, revision: str) -> list[str]:
        """Namespaces moved in ``phase``: all of them once the stack is past it."""
        if self.reached > PHASES.index(phase):
            return list(self.names)
        namespace_map = self.c.namespace_map  # built once, not once per namespace
        return [n for n in self.names if namespace_map[n] == revision]

    def rolling_back(self, phase: str) -> bool:
        return self.c.phase == phase and self.c.rollback

    def canary(self, phase: str, procedure: str, revision: str, depends_on: list[str], verb: str) -> list[str]:
        ids = []
        for g in self.gateways:
            ids.append(self.b.gateway_apply(phase, procedure, g, revision, depends_on, verb))
            if procedure == "A4":
                ids[-1] = self.b.gateway_ready(phase, procedure, g, revision, [ids[-1]])
            self.canaries[f"{g.namespace}/{canary_name(g, self.c)}"] = revision
        return ids

    def roll_back(self, phase: str, procedure: str, moved: list[str], new: str, old: str, changes, downgrade: bool) -> None:
        """A6 / B5: gateways back (deleted, or downgraded in place), namespaces back, new istiod out."""
        if downgrade:
            first = self.canary(phase, procedure, old, self.frontier, "downgrade in place")
        else:
            first = self.b.delete_gateways(phase, procedure, new, self.frontier, old=False)
        back = self.b.moves(phase, procedure, moved, new, old, first or self.frontier, changes)
        # B5: the canary was downgraded in place, so no listed gateway is left on ``new``.
        self.b.remove_control_plane(phase, procedure, new, back)
        self.control_planes.remove(new)
        self.pod_revisions = self.all_on(old)

    # -- phase A: distribute the Mesh CA root --------------------------------------------------

    def distribute_root(self) -> None:
        c, b, phase = self.c, self.b, "distribute-root"
        old, rev1 = c.old_revision, c.rev1
        a0 = b.gate(
            "A0.gate.root-of-trust",
            phase=phase,
            procedure="A0",
            check="root-of-trust",
            title="root-cert.pem is the root the mesh distributes today",
            certifies=self.all_on(old),
            depends_on=(),
            root_cert=c.ca_files.shown("root_cert"),
        )
        a1 = b.install(phase, "A1", rev1, "citadel", [a0])
        self.control_planes.append(rev1)
        moved = self.moved_to(phase, rev1)
        if self.rolling_back(phase):
            # The rollback declares only itself: a forward move that never completed (a failed
            # or interrupted restart) must not run again, nor block A6 (it would fail again).
            self.frontier = [a1]
            if c.use_case == "migrate":
                back = lambda n: ("istio.io/rev-", "istio-injection=enabled")  # noqa: E731
            else:
                back = lambda n: (f"istio.io/rev={old}",)  # noqa: E731
            self.roll_back(phase, "A6", moved, rev1, old, back, downgrade=False)
            return
        self.frontier = b.moves(phase, "A2", moved, old, rev1, [a1], lambda n: (f"istio.io/rev={rev1}", "istio-injection-"))
        if len(moved) == len(self.names):
            a3 = b.gate(
                "A3.gate.root-cert",
                phase=phase,
                procedure="A3",
                check="root-cert",
                title="every proxy trusts both the Citadel and the Mesh CA root",
                certifies=self.all_on(rev1),
                depends_on=self.frontier,
                require=[CITADEL, MESHCA],
                retiring=b.retiring_old_gateways(),
            )
            a4 = [b.preflight(phase, "A4", rev1, [a3], [g.namespace for g in self.gateways])] if self.gateways else [a3]
            self.frontier = [a3, *self.canary(phase, "A4", rev1, a4, "canary")]

    def finish_distribute_root(self) -> None:
        c, b, phase = self.c, self.b, "distribute-root-done"
        pre = b.preflight(phase, "A5", c.rev1, self.frontier, no_operator=True)
        self.frontier = b.retarget_default_tag(phase, "A5", c.old_revision, c.rev1, [pre])
        dels = b.delete_gateways(phase, "A5", c.old_revision, self.frontier, old=True)
        self.old_gateways = []
        svc = b.apply_istiod_service(phase, "A5", c.rev1, dels or self.frontier)
        self.frontier = b.remove_control_plane(phase, "A5", c.old_revision, [svc], keep_service=c.use_case == "migrate")
        self.control_planes.remove(c.old_revision)

    # -- phase B: sign with Mesh CA ----------------------------------------------------------

    def mesh_ca(self) -> None:
        c, b, phase = self.c, self.b, "mesh-ca"
        rev1, rev2 = c.rev1, c.rev2
        b0 = b.gate(
            "B0.gate.root-cert",
            phase=phase,
            procedure="B0",
            check="root-cert",
            title="every proxy still trusts both roots before Mesh CA starts signing",
            certifies=self.all_on(rev1),
            depends_on=self.frontier,
            require=[CITADEL, MESHCA],
        )
        b1 = b.install(phase, "B1", rev2, "mesh_ca", [b0])
        self.control_planes.append(rev2)
        b1_domains = b.gate(
            "B1.gate.trust-domain",
            phase=phase,
            procedure="B1",
            check="trust-domain",
            title=f"{rev1} and {rev2} accept both cluster.local and {c.fleet_project}.svc.id.goog",
            certifies=self.all_on(rev1),
            depends_on=[b1],
            revisions=[rev1, rev2],
        )
        moved = self.moved_to(phase, rev2)
        if self.rolling_back(phase):
            # As in phase A: the rollback never re-runs (or waits for) an unfinished forward move.
            self.frontier = [b1_domains]
            self.roll_back(phase, "B5", moved, rev2, rev1, lambda n: (f"istio.io/rev={rev1}",), downgrade=True)
            return
        self.frontier = b.moves(phase, "B2", moved, rev1, rev2, [b1_domains], lambda n: (f"istio.io/rev={rev2}",))
        if len(moved) == len(self.names):
            b3 = [b.preflight(phase, "B3", rev2, self.frontier, [g.namespace for g in self.gateways])] if self.gateways else self.frontier
            self.frontier = self.canary(phase, "B3", rev2, b3, "upgrade in place") or self.frontier

    def finish_mesh_ca(self) -> None:
        c, b, phase = self.c, self.b, "mesh-ca-done"
        b4 = b.gate(
            "B4.gate.workload-cert",
            phase=phase,
            procedure="B4",
            check="workload-cert",
            title=f"every proxy holds a Mesh CA certificate, so none still depends on {c.rev1}",
            certifies=self.all_on(c.rev2),
            depends_on=self.frontier,
            require=[MESHCA],
        )
        pre = b.preflight(phase, "B4", c.rev2, [b4], no_operator=True)
        tagged = b.retarget_default_tag(phase, "B4", c.rev1, c.rev2, [pre])
        svc = b.apply_istiod_service(phase, "B4", c.rev2, tagged)
        # B3 upgraded the canary in place: no listed gateway is left on REV1 (an unlisted one
        # fails this gate rather than being deleted by a label selector).
        self.frontier = b.remove_control_plane(phase, "B4", c.rev1, [svc])
        self.control_planes.remove(c.rev1)

    # -- phase C: remove the old root ----------------------------------------------------------

    def remove_old_root(self) -> None:
        c, b, cluster, phase = self.c, self.b, self.cluster, "old-root-removed"
        c0 = b.gate(
            "C0.gate.workload-cert",
            phase=phase,
            procedure="C0",
            check="workload-cert",
            title="no proxy still holds a Citadel-signed certificate",
            certifies=self.all_on(c.rev2),
            depends_on=self.frontier,
            require=[MESHCA],
        )
        backups = [
            b.add(
                f"C1.backup.{secret}",
                phase=phase,
                procedure="C1",
                action="backup-ca-secret",
                title=f"back up Secret {secret} to a 0600 file, read back and compared",
                argv=cmd.get_secret_yaml(cluster, secret),
                objects=(f"Secret/istio-system/{secret}",),
                depends_on=[c0],
                secret=secret,
                file=f"{c.backup_dir}/{c.stack}/{cluster.name}/{secret}.yaml",
            )
            for secret in ("cacerts", "istio-ca-secret")
        ]
        c2 = b.add(
            "C2.delete-ca-secrets",
            phase=phase,
            procedure="C2",
            action="delete-ca-secrets",
            title="delete cacerts and istio-ca-secret (after their backups match)",
            argv=cmd.delete_ca_secrets(cluster),
            objects=("Secret/istio-system/cacerts", "Secret/istio-system/istio-ca-secret"),
            depends_on=[c0, *backups],
            backups=backups,
        )
        if c.rev2_citadel_root:
            c2 = b.add(
                "C2.drop-citadel-root",
                phase=phase,
                procedure="C2",
                action="drop-root",
                title=f"remove the Citadel root B1 listed in {c.rev2}'s meshConfig.caCertificates",
                argv=cmd.drop_mesh_root(cluster, c.rev2, c.ca_files.shown("root_cert")),
                objects=(f"ConfigMap/istio-system/istio-{c.rev2}",),
                depends_on=[c2],
                revision=c.rev2,
            )
        c3 = b.add(
            "C3.restart-control-plane",
            phase=phase,
            procedure="C3",
            action="restart-control-plane",
            title="restart istio-system so istiod drops the old root from every bundle",
            argv=cmd.restart_control_plane(cluster),
            objects=("Deployment/istio-system/*",),
            depends_on=[c2],
        )
        b.gate(
            "C4.gate.old-root-absent",
            phase=phase,
            procedure="C4",
            check="root-cert",
            title="every proxy's bundle is exactly the Mesh CA roots (the Citadel root gone, no new self-signed root)",
            certifies=self.all_on(c.rev2),
            depends_on=[c3],
            require=[MESHCA],
            forbid=[CITADEL, UNKNOWN],
        )
        self.ca_secrets = False

    def run(self) -> ClusterPlan:
        stages = (self.distribute_root, self.finish_distribute_root, self.mesh_ca, self.finish_mesh_ca, self.remove_old_root)
        for index, stage in enumerate(stages, start=1):  # PHASES[index] is the stage's phase
            if self.reached < index:
                break
            stage()
        labels = {s.params["namespace"]: dict(s.params["labels"]) for s in self.b.steps if s.action == "label"}
        return ClusterPlan(
            cluster=self.cluster,
            steps=tuple(self.b.steps),
            desired=DesiredState(
                pod_revisions=MappingProxyType(self.pod_revisions),
                namespace_labels=MappingProxyType({k: MappingProxyType(v) for k, v in labels.items()}),
                control_planes=tuple(self.control_planes),
                canary_gateways=MappingProxyType(self.canaries),
                old_gateways=tuple(self.old_gateways),
                ca_secrets=self.ca_secrets,
            ),
        )


def build_cluster(config: StackConfig, cluster: Cluster, cacerts: str | None = None) -> ClusterPlan:
    if cacerts is None:
        cacerts = CACERTS_ABSENT if config.use_case == "migrate" else CACERTS_UNKNOWN
    return _ClusterRoute(config, cluster, cacerts).run()


def build(config: StackConfig, cacerts: Mapping[str, str] | None = None) -> Plan:
    """The plan at the config's current position. ``cacerts``: cluster -> CACERTS_* facts."""
    positions = route(config)
    return Plan(
        config=config,
        route=positions,
        position=locate(config, positions),
        clusters=tuple(build_cluster(config, cl, (cacerts or {}).get(cl.name)) for cl in config.clusters),
    )


def plan_at(config: StackConfig, position: Position, cacerts: Mapping[str, str] | None = None) -> Plan:
    return build(config.at(position.phase, position.rollback, position.namespace_map), cacerts)


# ----------------------------------------------------------------------------- positions by name
#
# One numbering for plan, advance, up, the rehearsal and README: a position is its index on
# ``route(config)`` (baseline = 0), named ``PHASE`` for an unbatched position and ``PHASE:BATCH``
# for one inside a batched phase (``distribute-root:0`` = REV1 installed, nothing moved yet).


def position_ref(pos: Position) -> str:
    """``baseline``, ``distribute-root:2``, ``mesh-ca-done``..."""
    return pos.phase if pos.batch is None else f"{pos.phase}:{pos.batch}"


def position_name(pos: Position) -> str:
    """``3 distribute-root:2``: the index and the ref, as every command prints a position."""
    return f"{pos.index} {position_ref(pos)}"


def resolve_position(positions: Sequence[Position], target: str, subject: str = "--to") -> Position:
    """``N`` (the index), ``PHASE`` (its last forward position) or ``PHASE:BATCH``."""
    from .errors import MeshcaError

    text = str(target).strip()
    last = len(positions) - 1
    if text.isdigit():
        if int(text) <= last:
            return positions[int(text)]
    else:
        phase, sep, batch = text.partition(":")
        mine = [p for p in positions if p.phase == phase]
        if mine and not sep:
            return mine[-1]
        if mine and sep and batch.isdigit():
            hit = [p for p in mine if p.batch == int(batch)]
            if hit:
                return hit[0]
    batched = sorted({p.phase for p in positions if p.batch is not None}, key=PHASES.index)
    example = ", ".join(f"{ph}:0..{max(p.batch for p in positions if p.phase == ph)}" for ph in batched)
    raise MeshcaError("PositionUnknown", subject, target=text, last=last, phases=", ".join(dict.fromkeys(p.phase for p in positions)), batches=example or "none")


# ----------------------------------------------------------------------------- preview

ADD, CHANGE, SAME = "+", "~", " "


def step_marks(plan: Plan, previous: Plan | None) -> dict[str, list[tuple[str, Step]]]:
    """Per cluster, each step of ``plan`` marked as Pulumi marks a preview: ``+`` new at this
    position, ``~`` declared before with other inputs (it runs again), `` `` already done at the
    previous position (same id, argv, stdin and params: history, never re-run)."""
    out: dict[str, list[tuple[str, Step]]] = {}
    for cp in plan.clusters:
        before = {s.id: s for s in previous.cluster(cp.cluster.name).steps} if previous else {}
        marks = []
        for s in cp.steps:
            old = before.get(s.id)
            if old is None:
                marks.append((ADD, s))
            elif (old.argv, old.stdin, _thaw(old.params)) != (s.argv, s.stdin, _thaw(s.params)):
                marks.append((CHANGE, s))
            else:
                marks.append((SAME, s))
        out[cp.cluster.name] = marks
    return out


def dropped_steps(plan: Plan, previous: Plan | None) -> dict[str, list[Step]]:
    """Per cluster, the steps of ``previous`` that ``plan`` no longer declares: Pulumi deletes
    their resources from the state (``-``); a Command has no delete script, so nothing runs."""
    if previous is None:
        return {cp.cluster.name: [] for cp in plan.clusters}
    out = {}
    for cp in plan.clusters:
        mine = {s.id for s in cp.steps}
        out[cp.cluster.name] = [s for s in previous.cluster(cp.cluster.name).steps if s.id not in mine]
    return out


def return_position(plan: Plan) -> Position | None:
    """Where a rollback returns to: the last forward position of the phase before (README "The
    route": baseline after A6, distribute-root-done after B5)."""
    if not plan.config.rollback or plan.position is None:
        return None
    before = PHASES[PHASES.index(plan.config.phase) - 1]
    return [p for p in plan.route if p.phase == before][-1]


def previous_plan(plan: Plan) -> Plan | None:
    """The plan of the position before ``plan``'s (for a rollback: the position it rolls back
    from); None at baseline or off the route."""
    if plan.position is None:
        return None
    if plan.config.rollback:
        return plan_at(plan.config, plan.route[plan.position])
    if plan.position == 0:
        return None
    return plan_at(plan.config, plan.route[plan.position - 1])


def config_edit(config: StackConfig, target: Position) -> list[tuple[str, Any, Any]]:
    """The stack file keys that differ between ``config`` and ``target``: (key, now, then)."""
    edits: list[tuple[str, Any, Any]] = []
    if config.phase != target.phase:
        edits.append(("meshca:phase", config.phase, target.phase))
    if config.rollback != target.rollback:
        edits.append(("meshca:rollback", config.rollback, target.rollback))
    want = target.namespace_map
    for ns, rev in config.namespace_map.items():
        if want.get(ns, rev) != rev:
            edits.append((f"meshca:namespaces.{ns}", rev, want[ns]))
    return edits
