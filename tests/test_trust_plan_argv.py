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
