"""The policy pack as the real engine runs it (issue 9 finding 1).

What the engine hands the pack (pulumi/pulumi at 1b5949891b, v3.259.0+14; read, not copied):
- ``Analyze`` (resource policies) gets each resource's INPUTS, custom or component:
  pkg/resource/deploy/step_generator.go:1469 ``sg.analyzeAll(ctx, analyzers, new, inputs, goal)``
  and :3465 ``Properties: resource.FromResourcePropertyMap(inputs)``; a component's inputs are the
  props of its constructor (step_generator.go:812 ``Inputs: resource.ToResourcePropertyMap(goal.Properties)``;
  sdk/python/lib/pulumi/runtime/resource.py:1126 ``object=resolver.serialized_props``).
- ``AnalyzeStack`` (stack policies) gets each resource's OUTPUTS: step_generator.go:3518-3520
  "Unlike Analyze, AnalyzeStack is called on the final outputs of each resource" /
  ``Properties: resource.FromResourcePropertyMap(v.Outputs)``.
- A component has no outputs of its own: step_generator.go:813 ``Outputs: nil`` and step.go
  CreateStep.Apply sets outputs only ``if s.new.Custom``; its outputs are what
  ``register_outputs`` sent (sdk/python/lib/pulumi/resource.py:1260-1267 ->
  runtime/resource.py:1290 ``RegisterResourceOutputsRequest(urn=urn, outputs=serialized_props)``),
  which replace them: step_executor.go:251 "Unconditionally set the resource's outputs to what
  was provided" / :283 ``reg.New().Outputs = outs``.

tests/harness.py records both wire forms; policy/testing.py ``analyze_engine`` sends them.
"""

from __future__ import annotations

import pytest

from harness import run_program
from policy import testing as T
from test_policy_program import CASES, overrides_at, positions, upstream_at

def _run(stack: str, index: int, rollback: bool = False):
    config, (position,) = positions(stack, index)
    overrides = overrides_at(config, position, rollback)
    result = run_program(stack, overrides, stack_outputs=upstream_at(stack, overrides))
    assert result.error is None, result.error
    return result


def test_the_harness_sends_analyze_the_inputs_and_analyze_stack_the_registered_outputs():
    result = _run("dev", 5)
    inputs, outputs = T.engine_specs(result.resources)
    by_urn = {r.urn: r for r in result.resources}
    def engine(wire: dict) -> dict:  # analyzer_plugin.go:307 SkipInternalKeys: no "__provider"
        return {k: v for k, v in wire.items() if not k.startswith("__")}

    for spec in inputs:
        assert spec.props == engine(by_urn[spec.urn].wire_inputs)
    for spec in outputs:
        r = by_urn[spec.urn]
        # a component: exactly its register_outputs; a custom resource: its provider's outputs
        assert spec.props == engine(r.wire_outputs)
    assert any("__provider" in r.wire_inputs for r in result.resources)
    assert not any("__provider" in s.props for s in inputs + outputs)
    stack = next(s for s in outputs if s.type == "meshca:index:MeshcaStack")
    assert "gates" in stack.props  # what MeshcaStack.register_outputs sends today, at least


COMPONENTS = (
    "meshca:index:MeshcaStack",
    "meshca:index:ClusterMigration",
    "meshca:index:ControlPlaneRevision",
    "meshca:index:NamespaceRevision",
    "meshca:index:GatewayRevision",
    "meshca:index:CaSecrets",
)


@pytest.mark.parametrize("index", [5, 8, 13])
def test_every_component_registers_its_full_typed_state_as_outputs(index):
    """Every prop a component is constructed with is also an output, with the same value."""
    result = _run("dev", index)
    components = [r for r in result.resources if not r.custom]
    assert {r.type for r in components} >= set(COMPONENTS) - ({"meshca:index:CaSecrets"} if index != 13 else set())
    missing = {
        r.name: sorted(k for k in r.wire_inputs if r.wire_outputs.get(k) != r.wire_inputs[k]) for r in components
    }
    assert {name: keys for name, keys in missing.items() if keys} == {}


@pytest.mark.parametrize("stack, index, rollback", CASES, ids=[f"{s}-{i}{'-rollback' if r else ''}" for s, i, r in CASES])
def test_shipped_stacks_pass_the_pack_as_the_engine_runs_it(stack, index, rollback):
    result = _run(stack, index, rollback)
    diags = T.analyze_engine(T.servicer(), result.resources)
    assert T.mandatory(diags) == []
    assert all(d.policy == "batch-share" for d in T.advisory(diags)), [d.message for d in T.advisory(diags)]
