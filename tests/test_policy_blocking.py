"""What must block a step is judged before the step runs (issue 9 finding 7).

The engine (pulumi/pulumi at 1b5949891b, v3.259.0+14; read, not copied):
- stack policies run once every step was applied: pkg/resource/deploy/deployment_executor.go:350
  ``ex.stepExec.WaitForCompletion()``, then :410 ``ex.stepGen.AnalyzeResources(ctx)`` (which
  sends ``AnalyzeStack``, step_generator.go:3598). In ``pulumi up`` (and ``up --skip-preview``)
  a mandatory stack violation is reported after the CA secrets or istiod are already gone.
- resource policies run on each resource's inputs while its step is generated, before the
  step: step_generator.go:1469 ``analyzeInvalid, err := sg.analyzeAll(ctx, analyzers, new,
  inputs, goal)``; a mandatory diagnostic outside preview makes it invalid
  (analyze_snapshot.go:79-80 ``if !dryRun { invalidAtomic.Store(true) }``) and step generation
  bails before any step for it (step_generator.go:1477 ``result.BailErrorf("resource %s is
  invalid", urn)``). A component is analyzed the same way (its inputs are its constructor
  props) and, refused, never registers, so none of its children (the delete Commands, the
  CA secret deletion) can.

So every MANDATORY rule is a resource rule, judging the resource that would do the damage on
its own inputs; the stack rules only report after the fact (advisory).
"""

from __future__ import annotations

import pytest
from pulumi_policy import EnforcementLevel, StackValidationPolicy

from harness import run_program
from policy import rules
from policy import testing as T
from test_policy_program import CASES, OLD, REV1, REV2, overrides_at, positions, upstream_at



def _inputs(stack: str, index: int, rollback: bool = False) -> list[T.Spec]:
    """What ``Analyze`` gets: each resource's inputs."""
    config, (position,) = positions(stack, index)
    overrides = overrides_at(config, position, rollback)
    result = run_program(stack, overrides, stack_outputs=upstream_at(stack, overrides))
    assert result.error is None, result.error
    return T.specs_from_registered(result.resources, "inputs")


def _refused(spec: T.Spec) -> list[str]:
    """The mandatory codes ``Analyze`` reports for this one resource (what stops its step in up)."""
    return sorted(T.codes(T.mandatory(T.analyze(T.servicer(), spec))))


def _one(specs, type_, pred=lambda s: True) -> T.Spec:
    found = [s for s in specs if s.type == type_ and pred(s)]
    assert len(found) == 1, [s.name for s in found]
    return found[0]


def test_no_stack_policy_is_mandatory():
    mandatory = [p.name for p in rules.POLICIES if isinstance(p, StackValidationPolicy) and p.enforcement_level == EnforcementLevel.MANDATORY]
    assert mandatory == []


@pytest.mark.parametrize("stack, index, rollback", CASES, ids=[f"{s}-{i}{'-rollback' if r else ''}" for s, i, r in CASES])
def test_shipped_stacks_pass_every_resource_rule(stack, index, rollback):
    for spec in _inputs(stack, index, rollback):
        assert _refused(spec) == [], spec.name


def test_removing_a_revision_a_namespace_runs_is_refused_on_its_control_plane():
    specs = _inputs("dev", 12)  # mesh-ca-done: B4 removes REV1
    cp = _one(specs, rules.CONTROL_PLANE, lambda s: s.props.get("revision") == REV1)
    assert cp.props["removed"] is True and _refused(cp) == []
    cp.props["namespaces"]["cart"] = REV1
    assert _refused(cp) == ["MCA0622"]


def test_removing_a_revision_a_gateway_runs_is_refused_on_its_control_plane():
    specs = _inputs("dev", 12)
    cp = _one(specs, rules.CONTROL_PLANE, lambda s: s.props.get("revision") == REV1)
    cp.props["gateways"] = {"istio-system/istio-ingressgateway-canary": REV1}
    assert _refused(cp) == ["MCA0623"]


def test_rev2_install_without_its_root_cert_gate_is_refused_on_its_control_plane():
    specs = _inputs("dev", 8)
    cp = _one(specs, rules.CONTROL_PLANE, lambda s: s.props.get("revision") == REV2)
    assert cp.props["installs"] is True and _refused(cp) == []
    cp.props["installAfter"] = [g for g in cp.props["installAfter"] if g["check"] != "root-cert"]
    assert _refused(cp) == ["MCA0624"]


def test_rev2_install_with_a_namespace_on_the_old_revision_is_refused_on_its_control_plane():
    specs = _inputs("dev", 8)
    cp = _one(specs, rules.CONTROL_PLANE, lambda s: s.props.get("revision") == REV2)
    cp.props["namespaces"]["ads"] = OLD
    assert _refused(cp) == ["MCA0625"]


def test_ca_secret_removal_is_refused_on_its_component():
    specs = _inputs("dev", 13)
    ca = _one(specs, "meshca:index:CaSecrets")
    assert sorted(ca.props["deletes"]) == ["cacerts", "istio-ca-secret"] and _refused(ca) == []
    ca.props["deletionAfter"] = [g for g in ca.props["deletionAfter"] if g["check"] != "workload-cert"]
    assert _refused(ca) == ["MCA0627"]
    ca.props["backupsBefore"] = ["istio-ca-secret"]
    assert _refused(ca) == ["MCA0626", "MCA0627"]
    ca.props["namespaces"]["cart"] = REV1
    assert _refused(ca) == ["MCA0626", "MCA0627", "MCA0628"]


def test_ca_secret_deletion_without_a_backup_of_each_secret_is_refused_on_itself():
    specs = _inputs("dev", 13)
    deletion = _one(specs, rules.CA_DELETION)
    assert _refused(deletion) == []
    deletion.props["backups"] = [b for b in deletion.props["backups"] if b["secret"] != "cacerts"]
    assert _refused(deletion) == ["MCA0626"]


def test_namespace_moved_to_a_revision_not_kept_is_refused_on_its_component():
    specs = _inputs("dev", 12)  # REV1 is removed at this position
    ns = _one(specs, rules.NAMESPACE_REVISION, lambda s: s.props.get("namespace") == "frontend")
    assert _refused(ns) == []
    ns.props["revision"] = REV1
    assert _refused(ns) == ["MCA0621"]
    ns.props["revision"] = "asm-elsewhere"
    assert _refused(ns) == ["MCA0620"]


def test_clusters_in_two_projects_are_refused_on_the_stack_component():
    specs = _inputs("staging", 1)
    stack = _one(specs, rules.MESHCA_STACK)
    stack.props["clusters"][1]["project"] = "another-project"
    assert _refused(stack) == ["MCA0629"]


def test_every_damaging_step_is_a_child_of_the_component_judged_for_it():
    """A refused component never registers, so its children cannot: the istiod removals, the
    REV2 install and the CA secret deletion are children of the components the rules judge."""
    for index, parent_type, child in (
        (12, rules.CONTROL_PLANE, lambda s: s.type == rules.COMMAND and ".B4.delete-istiod" in s.name),
        (6, rules.CONTROL_PLANE, lambda s: s.type == rules.COMMAND and ".A5.delete-istiod" in s.name),
        (8, rules.CONTROL_PLANE, lambda s: s.type == rules.COMMAND and ".B1.install" in s.name),
        (13, "meshca:index:CaSecrets", lambda s: s.type == rules.CA_DELETION),
        (8, rules.NAMESPACE_REVISION, lambda s: s.type == rules.NAMESPACE_PATCH),
    ):
        specs = _inputs("dev", index)
        by_name = {s.name: s for s in specs}
        children = [s for s in specs if child(s)]
        assert children, (index, parent_type)
        assert all(by_name[s.parent].type == parent_type for s in children), [(s.name, s.parent) for s in children]
