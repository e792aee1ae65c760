"""The transition guard's provider: refuses an unsafe move old -> new in ``check``, in preview.

CrossGuard sees only the new state; the engine hands the old one to a dynamic provider's
``check(olds, news)`` (olds: the inputs recorded at the last ``pulumi up``, ``{}`` on first
create), in preview and in up alike. The rules live in ``meshca.transitions``; this module only
translates between the engine's values and those rules:

- an unknown value becomes ``transitions.UNKNOWN``, so a rule that needs it is not decided in
  preview and ``pulumi up`` decides it with known values; no refusal rests on an unknown. On the
  wire an unknown is the sentinel string ``pulumi.runtime.rpc.UNKNOWN`` whatever the declared
  type; the provider process of pulumi 3.272 deserializes it (``keep_unknowns=True``) into a
  ``pulumi.output.Unknown`` before ``check`` sees it. Both forms are handled;
- each refusal is a ``CheckFailure`` on the input at fault whose reason is one coded line
  (MCA065x-MCA066x), which the engine prints before anything is applied.

``create`` and ``update`` judge again (the engine only calls them after a passing check, so this
never fires in practice) and record the move they accepted as the output ``transition``. The
guard touches nothing outside Pulumi state: ``delete`` does nothing.

Side-effect free and importable: the engine unpickles the provider by reference in
``python -m pulumi.dynamic``.
"""

from __future__ import annotations

from typing import Any, Mapping

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

from .. import transitions
from ..errors import MeshcaError
from meshca.providers.failure import one_line

# Inputs the guard judges (camelCase, as the engine passes them).
INPUTS = ("stack", "useCase", "phase", "rollback", "namespaces", "namespaceDigest", "revisions", "evidence", "clusters", "identity")
OUTPUTS = ("transition",)

# Which input a refusal is reported against (the engine names it in its error).
_PROPERTY = {
    "GuardInputInvalid": None,  # the field named in the error
    "GuardIdentityChanged": None,
    "GuardPhaseSkipped": "phase",
    "GuardBackwardsWithoutRollback": "phase",
    "GuardForwardDuringRollback": "phase",
    "GuardRollbackNotAvailable": "rollback",
    "GuardOldControlPlaneInUse": "namespaces",
    "GuardEnterMeshCaWithNamespaceOnOld": "namespaces",
    "GuardPhaseCNamespacesNotOnRev2": "namespaces",
}


def engine_value(value: Any) -> Any:
    """An engine value with its unknowns as ``transitions.UNKNOWN`` and secrets unwrapped."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return transitions.UNKNOWN
    if isinstance(value, Mapping):
        return {k: engine_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [engine_value(v) for v in value]
    return value


def guard_inputs(props: Mapping[str, Any] | None) -> dict[str, Any]:
    """The judged inputs of a props dict (``__provider`` and outputs dropped)."""
    if not props:
        return {}
    return {k: engine_value(v) for k, v in props.items() if k in INPUTS}


def _property(error: MeshcaError) -> str:
    prop = _PROPERTY.get(error.name, "evidence")
    if prop is None:
        prop = error.args_.get("field", "phase").split(".")[0].split("[")[0]
    return prop


def refusals(olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> list[MeshcaError]:
    return transitions.judge(guard_inputs(olds), guard_inputs(news))


class PhaseGuardProvider(ResourceProvider):
    """Dynamic provider of ``pulumi-python:dynamic/meshca:PhaseGuard``."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        try:
            errors = refusals(olds, news)
        except Exception as exc:  # a bug here must still be one coded line, never a traceback
            errors = [MeshcaError("InternalError", "PhaseGuard check", reason=f"{type(exc).__name__}: {exc}")]
        failures = [CheckFailure(_property(e) if e.name != "InternalError" else "phase", e.line()) for e in errors]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in INPUTS if engine_value(olds.get(k)) != engine_value(news.get(k))]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def _accept(self, olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> dict[str, Any]:
        errors = refusals(olds, news)
        if errors:
            raise RuntimeError("\n".join(e.line() for e in errors))
        outs = {k: v for k, v in news.items() if k in INPUTS}
        outs["transition"] = transitions.describe(guard_inputs(olds), guard_inputs(news))
        return outs

    @one_line
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._accept({}, props)
        return CreateResult(f"{props.get('stack', 'stack')}-phase-guard", outs)

    @one_line
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._accept(olds, news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    @one_line
    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None
