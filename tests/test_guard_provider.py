"""The PhaseGuard provider called directly, the component under the mocked program, and the
pure transition API the CLI can call."""

from __future__ import annotations

import base64

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from harness import run_program
from meshca import transitions
from meshca.plan import namespace_digest
from meshca.providers.phase_guard import PhaseGuardProvider

REV1, REV2 = "asm-11910-9-distribute-root", "asm-11910-9-meshca-ca-migration"
NAMES = ("frontend", "cart")
GUARD = "pulumi-python:dynamic/meshca:PhaseGuard"


def all_on(revision):
    return {ns: revision for ns in NAMES}


def state(phase, mapping, evidence=()):
    return {
        "stack": "dev",
        "useCase": "migrate",
        "phase": phase,
        "rollback": False,
        "namespaces": mapping,
        "namespaceDigest": namespace_digest("dev", mapping),
        "revisions": {"old": "default", "rev1": REV1, "rev2": REV2},
        "evidence": list(evidence),
        "clusters": ["dev-1"],
    }


A3 = {
    "gateId": "A3.gate.root-cert",
    "cluster": "dev-1",
    "check": "root-cert",
    "passed": True,
    "namespaceDigest": namespace_digest("dev", all_on(REV1)),
    "stack": "dev",
    "phase": "distribute-root",
}


def test_check_takes_the_wire_sentinel_string_too():
    provider = PhaseGuardProvider()
    old = state("distribute-root-done", all_on(REV1))
    result = provider.check(old, {**state("mesh-ca", all_on(REV1)), "evidence": rpc.UNKNOWN, "__provider": "p"})
    assert result.failures == []
    assert result.inputs["evidence"] == rpc.UNKNOWN  # inputs are returned as given
    result = provider.check(old, state("mesh-ca", all_on(REV1)))
    assert [f.reason.split()[1] for f in result.failures] == ["MCA0652"]
    assert result.failures[0].property == "evidence"


def test_create_update_record_the_accepted_move_and_refuse_an_unsafe_one():
    provider = PhaseGuardProvider()
    created = provider.create({**state("baseline", all_on("default")), "__provider": "p", "transition": None})
    assert created.id == "dev-phase-guard"
    assert created.outs["transition"] == "nothing -> baseline"
    assert "__provider" not in created.outs
    updated = provider.update(created.id, {**state("distribute-root-done", all_on(REV1), [A3]), "transition": "x"}, state("mesh-ca", all_on(REV1)))
    assert updated.outs["transition"] == "distribute-root-done -> mesh-ca"
    with pytest.raises(RuntimeError) as refused:
        provider.update(created.id, state("distribute-root-done", all_on(REV1)), state("mesh-ca", all_on(REV1)))
    assert str(refused.value).startswith("Error MCA0652 ")


def test_diff_reports_input_changes_only():
    provider = PhaseGuardProvider()
    old = {**state("distribute-root", all_on(REV1)), "transition": "a", "__provider": "x"}
    assert provider.diff("id", old, {**old, "transition": "b", "__provider": "y"}).changes is False
    assert provider.diff("id", old, {**old, "phase": "distribute-root-done"}).changes is True
    assert provider.diff("id", old, {**old, "phase": "distribute-root-done"}).replaces == []


def test_provider_pickles_by_reference():
    blob = serialize_provider(PhaseGuardProvider())
    assert len(base64.b64decode(blob)) < 200  # by reference: the module is imported, not copied
    assert isinstance(dill.loads(base64.b64decode(blob)), PhaseGuardProvider)


def test_internal_errors_are_one_coded_line(monkeypatch):
    import meshca.providers.phase_guard as module

    monkeypatch.setattr(module.transitions, "judge", lambda olds, news: 1 / 0)
    result = PhaseGuardProvider().check({}, state("baseline", all_on("default")))
    assert [f.reason.split()[1] for f in result.failures] == ["MCA0999"]
    assert "\n" not in result.failures[0].reason


def test_transitions_api_is_usable_without_pulumi():
    assert transitions.judge(state("distribute-root-done", all_on(REV1), [A3]), state("mesh-ca", all_on(REV1))) == []
    errors = transitions.judge(state("baseline", all_on("default")), state("mesh-ca", all_on(REV1)))
    assert [e.code for e in errors] == ["MCA0650"]
    assert transitions.describe({"phase": "mesh-ca", "rollback": True}, {"phase": "distribute-root-done"}) == "mesh-ca (rollback) -> distribute-root-done"
    assert not transitions.UNKNOWN and repr(transitions.UNKNOWN) == "UNKNOWN"


# ----------------------------------------------------------------------------- in the mocked program


def test_program_registers_one_guard_fed_by_the_stacks_own_gate_results():
    gates = {
        "dev-1/A0.gate.root-of-trust": {"check": "root-of-trust", "passed": True, "namespaceDigest": "a" * 64, "stack": "dev", "phase": "distribute-root", "checkedAt": "t"},
        "dev-1/A3.gate.root-cert": {**{k: A3[k] for k in ("check", "passed", "namespaceDigest", "stack", "phase")}, "checkedAt": "t"},
    }
    result = run_program("dev", stack_outputs={"acme/meshca/dev": {"gates": gates}})
    assert result.error is None
    guards = result.of_type(GUARD)
    assert len(guards) == 1
    inputs = guards[0].inputs
    assert inputs["stack"] == "dev" and inputs["phase"] == "distribute-root" and inputs["rollback"] is False
    assert inputs["namespaceDigest"] == namespace_digest("dev", inputs["namespaces"])
    assert inputs["revisions"] == {"old": "default", "rev1": REV1, "rev2": REV2}
    assert inputs["clusters"] == ["dev-1"]
    assert sorted(e["gateId"] for e in inputs["evidence"]) == ["A0.gate.root-of-trust", "A3.gate.root-cert"]
    # They came from this very stack's outputs: the mock answers the StackReference only for
    # the name "acme/meshca/dev" (org/project/stack of the run).
    assert all(e["cluster"] == "dev-1" and e["stack"] == "dev" for e in inputs["evidence"])
    # Every step waits for the guard (the lead's StepGraph), so a refused move holds back all.
    commands = result.commands()
    assert commands and all(guards[0].urn in c.dependencies for c in commands)


def test_program_guard_without_earlier_outputs_has_no_evidence():
    result = run_program("dev")
    assert result.error is None
    assert result.of_type(GUARD)[0].inputs["evidence"] == []
