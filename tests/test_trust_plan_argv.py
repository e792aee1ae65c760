"""Every gate the plan emits, at every position of every shipped stack, is a command line
``meshca check`` accepts and a set of inputs the TrustGate provider accepts: the CLI, the
plan and the Pulumi gate can never drift apart."""

from __future__ import annotations

import pytest

from components.cluster_migration import gate_args
from components.trust_gate import _TO_CAMEL
from harness import ROOT
from meshca import cli, plan
from meshca.config import load_stack_file
from meshca.providers.trust_gate import TrustGateProvider
from meshca.trust.cli import validate_args

STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def gate_steps(stack: str):
    config = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    seen = {}
    for pos in plan.route(config):
        for rollback in (False, True):
            try:
                built = plan.build(config.at(pos.phase, rollback, pos.namespace_map))
            except Exception:  # a rollback the phase does not offer: not a position the plan emits
                continue
            for cp in built.clusters:
                for step in cp.steps:
                    if step.is_gate:
                        seen[(cp.cluster.name, step.argv)] = (config, cp.cluster, step)
    return list(seen.values())


@pytest.mark.parametrize("stack", STACKS)
def test_every_gate_argv_parses_and_every_gate_input_checks(stack, monkeypatch):
    monkeypatch.chdir(ROOT)  # CA file paths in the stacks are relative to the project
    parser = cli.build_parser()
    steps = gate_steps(stack)
    kinds = set()
    for config, cluster, step in steps:
        assert step.argv[:2] == (".venv/bin/meshca", "check")
        args = parser.parse_args(list(step.argv[1:]))  # a usage error raises MeshcaErrors
        validate_args(args)
        assert args.check == step.params["check"] and args.json
        # the kubeconfig is operational: environment, not argv (issue 9 finding 2)
        assert (args.kubeconfig, args.context) == (None, cluster.context) and step.env["KUBECONFIG"] == cluster.kubeconfig
        kinds.add(args.check)
        # the Pulumi program's TrustGate for the same step (components/cluster_migration.py)
        news = {_TO_CAMEL[k]: v for k, v in gate_args(config, cluster, step).to_props().items()}
        failures = TrustGateProvider().check({}, news).failures
        assert failures == [], [(f.property, f.reason) for f in failures]
    assert steps, f"stack {stack} emits no gate"
    assert kinds == {"root-of-trust", "root-cert", "workload-cert", "trust-domain"}


def test_meshca_root_reaches_every_gate_and_is_operational(monkeypatch, tmp_path):
    """meshca:meshcaRoot (a PEM path) is every non-root-of-trust gate's --meshca-root, the TrustGate's
    meshcaRoot input, and changing it alone never replaces a gate (an operational input)."""
    import dataclasses

    monkeypatch.chdir(ROOT)
    root = tmp_path / "meshca-root.pem"
    root.write_text((ROOT / "samples" / "certs" / "root-cert.pem").read_text())
    parser = cli.build_parser()
    provider = TrustGateProvider()
    checked = 0
    for config, cluster, step in gate_steps("dev"):
        if step.params["check"] == "root-of-trust":
            continue
        olds = {_TO_CAMEL[k]: v for k, v in gate_args(config, cluster, step).to_props().items()}
        assert olds["meshcaRoot"] == ""
        news = {**olds, "meshcaRoot": str(root)}
        assert provider.check({}, news).failures == []
        assert provider.diff("id", olds, news).changes is False
        checked += 1
    assert checked

    # the plan's argv: --meshca-root for the gates that read proxies, never for root-of-trust
    base = load_stack_file(ROOT / "Pulumi.dev.yaml")
    config = dataclasses.replace(base, gates=dataclasses.replace(base.gates, meshca_root=str(root)))
    kinds = set()
    for pos in plan.route(config):
        for cp in plan.build(config.at(pos.phase, False, pos.namespace_map)).clusters:
            for step in cp.steps:
                if not step.is_gate:
                    continue
                args = parser.parse_args(list(step.argv[1:]))
                if step.params["check"] == "root-of-trust":
                    assert "--meshca-root" not in step.argv
                else:
                    assert args.meshca_root == str(root), step.argv
                    assert gate_args(config, cp.cluster, step).meshca_root == str(root)
                    kinds.add(step.params["check"])
    assert kinds == {"root-cert", "workload-cert", "trust-domain"}
