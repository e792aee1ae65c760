"""ClusterMigration: one cluster's part of the plan, as resources.

Owns the cluster's Kubernetes provider (``cluster_identifier`` set, so a rotated kubeconfig or
token never replaces it and everything it manages) and hands each plan step to the component
that translates it: ControlPlaneRevision, NamespaceRevision, GatewayRevision, CaSecrets, and a
TrustGate per gate step.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from meshca import commands as cmd
from meshca import plan as planmod
from meshca.config import StackConfig
from meshca.plan import ClusterPlan, Step

from .ca_secrets import CaSecrets, CaSecretsArgs
from .control_plane_revision import ControlPlaneRevision, ControlPlaneRevisionArgs
from .gateway_revision import GatewayRevision, GatewayRevisionArgs
from .namespace_revision import NamespaceRevision, NamespaceRevisionArgs
from .policy_facts import ca_secrets_facts, control_plane_facts, namespace_facts
from .step_command import resource_name
from .step_graph import StepGraph
from .trust_gate import TrustGate, TrustGateArgs

TYPE = "meshca:index:ClusterMigration"
NAMESPACE_ACTIONS = ("label", "restart")
GATEWAY_ACTIONS = ("gateway", "gateway-ready", "delete-gateway")
CA_ACTIONS = ("backup-ca-secret", "delete-ca-secrets", "restart-control-plane")
REVISION_ACTIONS = ("verify-asmcli", "write-overlay", "install", "preflight", "apply-istiod-service", "delete-istiod", "delete-installed-state", "drop-root")
# The default revision tag and the webhooks (issue 9 finding 10): rendered with the revision
# they serve (the tag's target) or retire (delete-webhooks).
WEBHOOK_ACTIONS = ("check-injection-labels", "empty-injector", "tag-default", "verify-webhooks", "delete-webhooks")


@dataclass
class ClusterMigrationArgs:
    """Args of a ClusterMigration."""

    config: StackConfig
    """The validated stack config."""
    plan: ClusterPlan
    """This cluster's plan at the stack's position."""
    after: Sequence[pulumi.Resource]
    """What every step waits for (the transition guard, the fleet prerequisites)."""


def _revision_of(step: Step, steps: Sequence[Step]) -> str:
    if step.action == "verify-asmcli":
        # asmcli --version belongs to the install it guards (same procedure number).
        return next(s.params["revision"] for s in steps if s.action == "install" and s.procedure == step.procedure)
    return step.params["revision"]


def probe_cacerts(config: StackConfig, cluster) -> pulumi.Output[str]:
    """At preview and up: does a cacerts Secret exist, and does it match the CA files?"""
    result = command.local.run_output(
        command=shlex.join(cmd.probe_cacerts(cluster)),
        environment={"KUBECONFIG": cluster.kubeconfig},
        logging=command.local.Logging.NONE,
    )
    return result.stdout.apply(lambda out: planmod.cacerts_fact(out or "", config, cluster))


def probe_istioctl(config: StackConfig, cluster, path: str) -> pulumi.Output[str]:
    """At preview and up: the istioctl the tag steps run reports the pinned release (MCA0340)."""
    # `|| true`: an istioctl that is missing or fails prints why (2>&1) and the version check
    # names it (MCA0340) instead of the invoke failing with a traceback.
    result = command.local.run_output(command=shlex.join(cmd.istioctl_version(path)) + " 2>&1 || true", logging=command.local.Logging.NONE)
    return result.stdout.apply(lambda out: planmod.istioctl_version_fact(out or "", config, cluster, path))


@dataclass
class StepGroups:
    """A cluster's steps by the component that renders them (plan order kept)."""

    revisions: dict[str, list[Step]] = field(default_factory=dict)
    namespaces: dict[str, list[Step]] = field(default_factory=dict)
    gateways: dict[str, list[Step]] = field(default_factory=dict)
    ca_secrets: list[Step] = field(default_factory=list)
    gates: list[Step] = field(default_factory=list)


def group_steps(steps: Sequence[Step]) -> StepGroups:
    groups = StepGroups()
    for step in steps:
        if step.action in REVISION_ACTIONS or step.action in WEBHOOK_ACTIONS:
            groups.revisions.setdefault(_revision_of(step, steps), []).append(step)
        elif step.action in NAMESPACE_ACTIONS:
            groups.namespaces.setdefault(step.params["namespace"], []).append(step)
        elif step.action in GATEWAY_ACTIONS:
            groups.gateways.setdefault(step.params["gateway"], []).append(step)
        elif step.action in CA_ACTIONS:
            groups.ca_secrets.append(step)
        elif step.action == "gate":
            groups.gates.append(step)
        else:
            raise AssertionError(f"no component renders action {step.action!r}")
    return groups


class ClusterMigration(pulumi.ComponentResource):
    provider: k8s.Provider
    gates: pulumi.Output[dict]

    def __init__(self, name: str, args: ClusterMigrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        cluster = args.plan.cluster
        state = {"cluster": cluster.name, "project": cluster.project, "context": cluster.context}
        super().__init__(TYPE, name, state, opts)
        self.provider = k8s.Provider(
            f"{cluster.name}.k8s",
            kubeconfig=cluster.kubeconfig,
            context=cluster.context,
            cluster_identifier=f"{cluster.project}/{cluster.location}/{cluster.name}",
            enable_server_side_apply=True,
            # No provider-level patch force: pulumi-kubernetes 4.25.0 (the provider the Go module
            # proxy serves, toolchain/pins.json) has no enablePatchForce (added in 4.29, #4242);
            # the NamespacePatch carries the pulumi.com/patchForce annotation instead
            # (components/namespace_revision.py).
            opts=pulumi.ResourceOptions(parent=self),
        )
        graph = StepGraph(args.after)
        try:
            gates = self._render(args.config, args.plan, graph, group_steps(args.plan.steps))
        except BaseException as exc:
            # Steps already registered wait on the ones that will now never exist.
            graph.abort(exc)
            raise
        self.gates = pulumi.Output.all(
            **{
                step_id: pulumi.Output.all(
                    check=g.check, passed=g.passed, namespaceDigest=g.namespace_digest, stack=g.stack, phase=g.phase, checkedAt=g.checked_at
                )
                for step_id, g in gates.items()
            }
        )
        self.register_outputs({**state, "gates": self.gates})

    def _render(self, config: StackConfig, cp: ClusterPlan, graph: StepGraph, groups: StepGroups) -> dict[str, TrustGate]:
        cluster = cp.cluster
        child = pulumi.ResourceOptions(parent=self)
        role = {config.old_revision: "old", config.rev1: "rev1", config.rev2: "rev2"}
        needs_probe = any(s.action == "install" and s.params["ca"] == "citadel" for s in cp.steps)
        cacerts = probe_cacerts(config, cluster) if needs_probe else None
        # Only a tag step of the current phase (about to run) needs its istioctl; a completed one
        # is history and must not depend on a local asm-out/ (nor hide the guard's refusal of a
        # skipped phase behind a probe of a step that will never run).
        istioctl = {s.id: probe_istioctl(config, cluster, s.params["istioctl"]) for s in cp.steps if s.action == "tag-default" and s.phase == config.phase}
        for revision, steps in groups.revisions.items():
            ControlPlaneRevision(
                f"{cluster.name}.{revision}",
                ControlPlaneRevisionArgs(config, cluster.name, revision, role[revision], steps, graph, cacerts, istioctl=istioctl, facts=control_plane_facts(config, cp, steps)),
                child,
            )
        for ns, steps in groups.namespaces.items():
            NamespaceRevision(
                f"{cluster.name}.{ns}",
                NamespaceRevisionArgs(
                    cluster.name, ns, cp.desired.pod_revisions[ns], cp.desired.namespace_labels[ns], steps, graph, self.provider,
                    facts=namespace_facts(config, cp),
                ),
                child,
            )
        for gateway, steps in groups.gateways.items():
            GatewayRevision(
                f"{cluster.name}.{gateway.replace('/', '.')}",
                GatewayRevisionArgs(cluster.name, gateway, steps, graph, self.provider),
                child,
            )
        if groups.ca_secrets:
            CaSecrets(
                f"{cluster.name}.ca-secrets",
                CaSecretsArgs(cluster.name, groups.ca_secrets, graph, str(config.project_dir), facts=ca_secrets_facts(config, cp, groups.ca_secrets)),
                child,
            )
        gates = {}
        others = [planmod.build_cluster(config, cl) for cl in config.clusters if cl.name != cluster.name] if groups.gates else []
        for step in groups.gates:
            args = gate_args(config, cluster, step)
            args.peers = peer_inputs(config, others, step.id)
            gate = TrustGate(
                resource_name(step),
                args,
                pulumi.ResourceOptions(parent=self, depends_on=graph.after(step)),
            )
            graph.done(step, gate)
            gates[step.id] = gate
        missing = graph.missing()
        if missing:
            raise AssertionError(f"plan steps without a resource on {cluster.name}: {missing}")
        return gates


def peer_inputs(config: StackConfig, others: Sequence[ClusterPlan], step_id: str) -> list[dict]:
    """The camelCase inputs of gate ``step_id`` on the other clusters (their ``peers`` empty)."""
    from .trust_gate import _TO_CAMEL

    out = []
    for cp in others:
        step = next((s for s in cp.steps if s.id == step_id), None)
        if step is not None:
            props = gate_args(config, cp.cluster, step).to_props()
            props.pop("peers", None)
            out.append({_TO_CAMEL[k]: v for k, v in props.items()})
    return out


def gate_args(config: StackConfig, cluster, step: Step) -> TrustGateArgs:
    p = step.params
    return TrustGateArgs(
        gate_id=step.id,
        stack=config.stack,
        phase=step.phase,
        cluster=cluster.name,
        context=cluster.context,
        kubeconfig=cluster.kubeconfig,
        check=p["check"],
        require=list(p["require"]),
        forbid=list(p["forbid"]),
        retiring_deployments=[f"{r['namespace']}/{r['deployment']}" for r in p["retiring"] if "deployment" in r],
        retiring_selectors=[f"{r['namespace']}/{r['selector']}" for r in p["retiring"] if "selector" in r],
        citadel_root=p["citadelRoot"] or "",
        meshca_root=p.get("meshcaRoot") or "",
        root_cert=p["rootCert"] or "",
        fleet_project=p["fleetProject"] or "",
        revisions=list(p["revisions"]),
        source=p["source"],
        concurrency=p["concurrency"],
        timeout_seconds=p["timeoutSeconds"],
        poll_seconds=p["pollSeconds"],
        namespace_digest=p["namespaceDigest"],
        restart_generation=p["restartGeneration"],
    )
