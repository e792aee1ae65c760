"""Every guarded transition, through the servicer the dynamic provider process runs.

The servicer class is taken from the installed SDK's pulumi/dynamic/__main__.py (the module
``python -m pulumi.dynamic`` runs; importing it would start its gRPC server, so the file is
executed without its final ``main()`` call). Each test hands it a CheckRequest whose olds and
news Structs carry the serialized ``__provider`` as the engine sends it (plain: the dynamic
provider answers Configure with acceptSecrets=False), and the engine's unknown sentinel string
where a value is not known in preview (the servicer turns it into ``pulumi.output.Unknown``
before the provider's ``check`` sees it).
"""

from __future__ import annotations

import ast
import contextvars
import importlib.util
import types
from pathlib import Path

import pytest
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import proto, rpc

from meshca.plan import namespace_digest
from meshca.providers.phase_guard import PhaseGuardProvider

OLD, REV1, REV2 = "default", "asm-11910-9-distribute-root", "asm-11910-9-meshca-ca-migration"
NAMES = ("frontend", "cart", "payments")
URN = "urn:pulumi:dev::meshca::meshca:index:MeshcaStack$pulumi-python:dynamic/meshca:PhaseGuard::dev.phase-guard"
PROVIDER = serialize_provider(PhaseGuardProvider())


def load_servicer_class():
    spec = importlib.util.find_spec("pulumi.dynamic.__main__")
    tree = ast.parse(Path(spec.origin).read_text(), spec.origin)
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", None) == "main"]
    assert len(calls) == 1, "pulumi/dynamic/__main__.py changed shape: expected one top-level main() call"
    tree.body = [n for n in tree.body if n not in calls]
    module = types.ModuleType("pulumi_dynamic_provider_process")
    module.__file__ = spec.origin
    exec(compile(tree, spec.origin, "exec"), module.__dict__)
    return module.DynamicResourceProviderServicer


SERVICER = load_servicer_class()


class Context:
    def abort(self, code, details):
        raise AssertionError(f"provider aborted ({code}): {details}")


def struct(props: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(props)
    return out


def check(olds: dict | None, news: dict) -> list[tuple[str, str]]:
    """(property, reason) of each CheckFailure the provider process returns."""
    request = proto.CheckRequest(
        urn=URN,
        olds=struct({**olds, "__provider": PROVIDER} if olds else {}),
        news=struct({**news, "__provider": PROVIDER}),
    )

    def run():
        servicer = SERVICER()
        response = servicer.Check(request, Context())
        inputs = rpc.deserialize_properties(response.inputs, keep_unknowns=True)
        assert inputs["__provider"] == PROVIDER
        assert _plain({k: v for k, v in inputs.items() if k != "__provider"}) == _plain(news)
        return [(f.property, f.reason) for f in response.failures]

    # The provider process configures pulumi's ambient settings; keep them out of other tests.
    return contextvars.copy_context().run(run)


def _plain(value):
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def codes(failures) -> list[str]:
    return [reason.split(" ", 2)[1] for _, reason in failures]


def all_on(revision: str) -> dict:
    return {ns: revision for ns in NAMES}


def state(phase: str, namespaces: dict, *, rollback=False, evidence=(), stack="dev", clusters=("c1",), revisions=None) -> dict:
    return {
        "stack": stack,
        "useCase": "migrate",
        "phase": phase,
        "rollback": rollback,
        "namespaces": dict(namespaces),
        "namespaceDigest": namespace_digest(stack, namespaces) if isinstance(namespaces, dict) else namespaces,
        "revisions": revisions or {"old": OLD, "rev1": REV1, "rev2": REV2},
        "evidence": list(evidence),
        "clusters": list(clusters),
        "transition": None,
    }


def gate(check: str, certified: dict, *, phase: str, gate_id: str = "A3.gate.root-cert", cluster="c1", stack="dev", passed=True) -> dict:
    return {
        "gateId": gate_id,
        "cluster": cluster,
        "check": check,
        "passed": passed,
        "namespaceDigest": namespace_digest(stack, certified),
        "stack": stack,
        "phase": phase,
    }


A3 = gate("root-cert", all_on(REV1), phase="distribute-root")
B0 = gate("root-cert", all_on(REV1), phase="mesh-ca", gate_id="B0.gate.root-cert")
B4 = gate("workload-cert", all_on(REV2), phase="mesh-ca-done", gate_id="B4.gate.workload-cert")


# ----------------------------------------------------------------------------- creation


@pytest.mark.parametrize("phase, mapping", [("baseline", all_on(OLD)), ("distribute-root", all_on(OLD)), ("distribute-root", {**all_on(OLD), "frontend": REV1})])
def test_first_create_at_the_start_is_allowed(phase, mapping):
    assert check(None, state(phase, mapping)) == []


def test_first_create_in_phase_b_needs_its_own_evidence():
    failures = check(None, state("mesh-ca", {**all_on(REV1), "frontend": REV2}))
    assert codes(failures) == ["MCA0666"] and failures[0][0] == "evidence"
    assert check(None, state("mesh-ca", {**all_on(REV1), "frontend": REV2}, evidence=[B0])) == []


# ----------------------------------------------------------------------------- skipping


@pytest.mark.parametrize(
    "old, new",
    [
        (state("baseline", all_on(OLD)), state("mesh-ca", all_on(REV1), evidence=[A3])),
        (state("distribute-root", all_on(REV1), evidence=[A3]), state("mesh-ca", all_on(REV1))),
        (state("distribute-root-done", all_on(REV1), evidence=[A3]), state("mesh-ca-done", all_on(REV2))),
        (state("mesh-ca", all_on(REV2)), state("old-root-removed", all_on(REV2))),
    ],
)
def test_skipping_a_phase_is_refused(old, new):
    failures = check(old, new)
    assert codes(failures) == ["MCA0650"] and failures[0][0] == "phase"
    assert "fix: set meshca:phase to" in failures[0][1]


# ----------------------------------------------------------------------------- phase A finish


def test_finishing_phase_a_needs_the_root_cert_gate():
    old = state("distribute-root", all_on(REV1))
    assert codes(check(old, state("distribute-root-done", all_on(REV1)))) == ["MCA0660"]
    assert check({**old, "evidence": [A3]}, state("distribute-root-done", all_on(REV1))) == []


def test_removing_the_old_control_plane_while_namespaces_use_it_is_refused():
    old = state("distribute-root", {**all_on(REV1), "payments": OLD}, evidence=[A3])
    failures = check(old, state("distribute-root-done", all_on(REV1)))
    assert codes(failures) == ["MCA0657"] and failures[0][0] == "namespaces" and "payments" in failures[0][1]


# ----------------------------------------------------------------------------- phase B entry


def test_entering_phase_b_without_a_passed_root_cert_gate_is_refused():
    """Done-when: A -> B whose old state has no passed root-cert gate for the current map."""
    failures = check(state("distribute-root-done", all_on(REV1)), state("mesh-ca", all_on(REV1)))
    assert codes(failures) == ["MCA0652"]
    prop, reason = failures[0]
    assert prop == "evidence" and "root-cert" in reason and "fix: " in reason and "\n" not in reason


def test_entering_phase_b_with_the_gate_passes():
    assert check(state("distribute-root-done", all_on(REV1), evidence=[A3]), state("mesh-ca", all_on(REV1))) == []
    # The same gate result read from the stack's own last outputs (new inputs) counts too.
    assert check(state("distribute-root-done", all_on(REV1)), state("mesh-ca", all_on(REV1), evidence=[A3])) == []


@pytest.mark.parametrize(
    "evidence, code",
    [
        (dict(A3, stack="staging", namespaceDigest=namespace_digest("staging", all_on(REV1))), "MCA0654"),  # foreign
        (gate("root-cert", {**all_on(REV1), "cart": OLD}, phase="distribute-root"), "MCA0653"),  # stale: another map
        (dict(A3, phase="mesh-ca-done"), "MCA0655"),  # another phase
        (dict(A3, phase="baseline"), "MCA0655"),
        (dict(A3, passed=False), "MCA0656"),  # failed
        (dict(A3, check="workload-cert"), "MCA0652"),  # another check: no root-cert evidence at all
    ],
    ids=["foreign", "stale", "phase-c", "baseline", "failed", "other-check"],
)
def test_entering_phase_b_on_bad_evidence_is_refused(evidence, code):
    failures = check(state("distribute-root-done", all_on(REV1), evidence=[evidence]), state("mesh-ca", all_on(REV1)))
    assert codes(failures) == [code]


def test_every_cluster_needs_its_own_gate():
    old = state("distribute-root-done", all_on(REV1), evidence=[A3], clusters=("c1", "c2"))
    failures = check(old, state("mesh-ca", all_on(REV1), clusters=("c1", "c2")))
    assert codes(failures) == ["MCA0652"] and " on c2," in failures[0][1]
    old["evidence"].append(dict(A3, cluster="c2"))
    assert check(old, state("mesh-ca", all_on(REV1), clusters=("c1", "c2"))) == []


def test_entering_phase_b_with_a_namespace_on_the_old_revision_is_refused():
    old = state("distribute-root-done", all_on(REV1), evidence=[A3])
    failures = check(old, state("mesh-ca", {**all_on(REV1), "cart": OLD}))
    assert codes(failures) == ["MCA0661"] and "cart" in failures[0][1]


# ----------------------------------------------------------------------------- phase B finish, phase C


def test_removing_rev1_while_namespaces_use_it_is_refused():
    failures = check(state("mesh-ca", {**all_on(REV2), "cart": REV1}), state("mesh-ca-done", all_on(REV2)))
    assert codes(failures) == ["MCA0657"] and REV1 in failures[0][1]
    assert check(state("mesh-ca", all_on(REV2)), state("mesh-ca-done", all_on(REV2))) == []


def test_entering_phase_c_early_is_refused():
    failures = check(state("mesh-ca-done", all_on(REV2)), state("old-root-removed", all_on(REV2)))
    assert codes(failures) == ["MCA0658"]
    failures = check(state("mesh-ca-done", all_on(REV2), evidence=[dict(B4, passed=False)]), state("old-root-removed", all_on(REV2)))
    assert codes(failures) == ["MCA0656"]
    assert check(state("mesh-ca-done", all_on(REV2), evidence=[B4]), state("old-root-removed", all_on(REV2))) == []


def test_entering_phase_c_with_a_namespace_on_rev1_is_refused():
    failures = check(state("mesh-ca-done", all_on(REV2), evidence=[B4]), state("old-root-removed", {**all_on(REV2), "payments": REV1}))
    assert codes(failures) == ["MCA0659"]


# ----------------------------------------------------------------------------- rollbacks


@pytest.mark.parametrize(
    "old, new",
    [
        (state("distribute-root", {**all_on(OLD), "frontend": REV1}), state("distribute-root", {**all_on(OLD), "frontend": REV1}, rollback=True)),
        (state("mesh-ca", {**all_on(REV1), "frontend": REV2}), state("mesh-ca", {**all_on(REV1), "frontend": REV2}, rollback=True)),
        # the return from a rollback to the phase before it
        (state("distribute-root", {**all_on(OLD), "frontend": REV1}, rollback=True), state("baseline", all_on(OLD))),
        (state("mesh-ca", {**all_on(REV1), "frontend": REV2}, rollback=True), state("distribute-root-done", all_on(REV1))),
        # batches within a phase, forward and back
        (state("distribute-root", all_on(OLD)), state("distribute-root", {**all_on(OLD), "frontend": REV1})),
        (state("mesh-ca", {**all_on(REV1), "frontend": REV2}), state("mesh-ca", all_on(REV1))),
    ],
    ids=["start-A6", "start-B5", "return-A6", "return-B5", "batch", "batch-back"],
)
def test_rollbacks_and_batches_are_allowed(old, new):
    assert check(old, new) == []


def test_rollback_of_a_finished_phase_is_refused():
    failures = check(state("distribute-root-done", all_on(REV1), evidence=[A3]), state("distribute-root-done", all_on(REV1), rollback=True))
    assert codes(failures) == ["MCA0663"] and failures[0][0] == "rollback"


def test_moving_on_during_a_rollback_is_refused():
    failures = check(state("mesh-ca", all_on(REV2), rollback=True), state("mesh-ca-done", all_on(REV2)))
    assert codes(failures) == ["MCA0664"]


def test_abandoning_a_phase_b_rollback_is_refused_even_with_the_root_cert_gate():
    # Issue 9 finding 3: once B5 ran (the guard recorded rollback true), REV2's istiod may be
    # gone while B1's install stays in the state; only leaving the phase re-installs it.
    old = state("mesh-ca", {**all_on(REV1), "frontend": REV2}, rollback=True)
    new = state("mesh-ca", {**all_on(REV1), "frontend": REV2})
    assert codes(check(old, new)) == ["MCA0669"]
    assert codes(check({**old, "evidence": [B0]}, new)) == ["MCA0669"]


@pytest.mark.parametrize(
    "old, new",
    [
        (state("mesh-ca", {**all_on(REV1), "frontend": REV2}), state("distribute-root-done", all_on(REV1))),
        (state("old-root-removed", all_on(REV2)), state("mesh-ca-done", all_on(REV2))),
        (state("distribute-root-done", all_on(REV1)), state("distribute-root", all_on(REV1))),
    ],
)
def test_going_back_without_rollback_is_refused(old, new):
    assert codes(check(old, new)) == ["MCA0651"]


# ----------------------------------------------------------------------------- identity and shape


def test_renaming_a_revision_mid_migration_is_refused():
    old = state("distribute-root", {**all_on(OLD), "frontend": REV1})
    new = state("distribute-root", {**all_on(OLD), "frontend": REV1}, revisions={"old": OLD, "rev1": REV1, "rev2": "asm-other"})
    failures = check(old, new)
    assert codes(failures) == ["MCA0662"] and failures[0][0] == "revisions"


def test_another_stack_in_the_same_guard_is_refused():
    failures = check(state("baseline", all_on(OLD)), state("baseline", all_on(OLD), stack="staging"))
    assert "MCA0662" in codes(failures)


@pytest.mark.parametrize(
    "news",
    [
        state("phase-b", all_on(REV1)),
        {**state("mesh-ca", all_on(REV1)), "namespaceDigest": "0" * 64},
        {**state("mesh-ca", all_on(REV1)), "rollback": "yes"},
    ],
)
def test_malformed_inputs_are_one_coded_line(news):
    failures = check(state("distribute-root-done", all_on(REV1), evidence=[A3]), news)
    assert codes(failures) == ["MCA0665"]


# ----------------------------------------------------------------------------- unknown values (preview)


def test_unknown_phase_is_decided_by_up():
    new = {**state("mesh-ca", all_on(REV1)), "phase": rpc.UNKNOWN}
    assert check(state("distribute-root-done", all_on(REV1)), new) == []


def test_unknown_evidence_defers_an_evidence_refusal_to_up():
    old = state("distribute-root-done", all_on(REV1))
    assert check(old, {**state("mesh-ca", all_on(REV1)), "evidence": rpc.UNKNOWN}) == []
    assert check(old, state("mesh-ca", all_on(REV1), evidence=[dict(A3, passed=rpc.UNKNOWN)])) == []
    # `pulumi up` runs the check again with the known values.
    assert codes(check(old, state("mesh-ca", all_on(REV1), evidence=[dict(A3, passed=False)]))) == ["MCA0656"]
    assert check(old, state("mesh-ca", all_on(REV1), evidence=[A3])) == []


def test_refusals_that_need_no_unknown_are_made_in_preview():
    old = state("baseline", all_on(OLD))
    failures = check(old, {**state("mesh-ca", all_on(REV1)), "evidence": rpc.UNKNOWN, "namespaces": {**all_on(REV1), "cart": rpc.UNKNOWN}, "namespaceDigest": rpc.UNKNOWN})
    assert codes(failures) == ["MCA0650"]
    # A namespace on the old revision in the OLD state needs no unknown either.
    old = state("distribute-root", {**all_on(REV1), "payments": OLD})
    failures = check(old, {**state("distribute-root-done", all_on(REV1)), "evidence": rpc.UNKNOWN, "namespaces": rpc.UNKNOWN, "namespaceDigest": rpc.UNKNOWN})
    assert codes(failures) == ["MCA0657"]


def test_unknowns_in_the_old_state_are_not_evidence():
    old = state("distribute-root-done", all_on(REV1), evidence=[dict(A3, passed=rpc.UNKNOWN)])
    assert codes(check(old, state("mesh-ca", all_on(REV1)))) == ["MCA0652"]
