"""Drive the policy pack without the Pulumi CLI: build validation args by hand, or run the
rules through pulumi-policy's own analyzer servicer exactly as the engine's gRPC calls would.

Like AWSGuard's ``createResourceValidationArgs`` helper, for Python. The servicer is private
API of pulumi-policy 1.21.0 (pinned in requirements.txt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import unknown_checking_proxy

from meshca.errors import split_line

try:
    from . import rules  # type: ignore[no-redef]
except ImportError:  # imported as a top-level module from policy/
    import rules  # type: ignore[no-redef]


def options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def urn_for(type_: str, name: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::meshca::{type_}::{name}"


def resource_args(type_: str, props: Mapping[str, Any], name: str = "r", config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    """Args a resource policy gets, with the analyzer's unknown-checking proxy around props."""
    return ResourceValidationArgs(type_, unknown_checking_proxy(json.loads(json.dumps(props))), urn_for(type_, name), name, options(), None, config)


@dataclass
class Spec:
    """One resource of a hand-built stack."""

    type: str
    name: str
    props: dict
    parent: str | None = None  # name of the parent Spec
    depends_on: Sequence[str] = ()  # names of Specs
    urn: str = ""

    def __post_init__(self) -> None:
        self.urn = self.urn or urn_for(self.type, self.name)


def stack_args(specs: Sequence[Spec], config: Mapping[str, Any] | None = None) -> StackValidationArgs:
    """Args a stack policy gets: PolicyResources wired by parent and dependencies."""
    by_name = {s.name: s for s in specs}
    resources = {
        s.name: PolicyResource(s.type, unknown_checking_proxy(json.loads(json.dumps(s.props))), s.urn, s.name, options(), None, None, [], {})
        for s in specs
    }
    for s in specs:
        r = resources[s.name]
        if s.parent in resources:
            r.parent = resources[s.parent]
        r.dependencies = [resources[d] for d in s.depends_on if d in by_name]
    return StackValidationArgs(list(resources.values()), config)


def messages(policy: Any, args: Any) -> list[str]:
    """Run one policy's validate directly; the violation lines it reported."""
    seen: list[str] = []
    policy.validate(args, lambda message, urn=None: seen.append(message))
    return seen


def codes(lines: Iterable[str]) -> list[str]:
    return [line.split(" ", 2)[1] for line in lines]


# ----------------------------------------------------------------------------- the servicer


def struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(props, default=str)))
    return out


def servicer(config: Mapping[str, Mapping[str, Any]] | None = None, policies: Sequence[Any] | None = None) -> _PolicyAnalyzerServicer:
    """The analyzer as the CLI drives it: constructed, then ``Configure``d (the CLI sends the
    merged initial config; without it ``get_config()`` is empty)."""
    svc = _PolicyAnalyzerServicer(rules.PACK_NAME, "0.0.1", list(policies or rules.POLICIES), EnforcementLevel.MANDATORY, rules.INITIAL_CONFIG)
    merged = {name: dict(values) for name, values in rules.INITIAL_CONFIG.items()}
    for name, values in (config or {}).items():
        merged.setdefault(name, {}).update(values)
    levels = {p.name: p.enforcement_level for p in (policies or rules.POLICIES)}
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, values in merged.items():
        level = levels.get(name) or EnforcementLevel.MANDATORY
        request.policyConfig[name].CopyFrom(
            analyzer_pb2.PolicyConfig(enforcementLevel=svc._map_enforcement_level(level), properties=struct(values))
        )
    svc.Configure(request, None)
    return svc


@dataclass
class Diagnostic:
    policy: str
    level: str  # "mandatory" | "advisory" | ...
    message: str  # the coded line(s) (the analyzer prefixes the policy description)
    urn: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.message.split("\n") if split_line(line)]


_LEVELS = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory", analyzer_pb2.REMEDIATE: "remediate", analyzer_pb2.DISABLED: "disabled"}


def _diagnostics(response: Any) -> list[Diagnostic]:
    return [Diagnostic(d.policyName, _LEVELS.get(d.enforcementLevel, str(d.enforcementLevel)), d.message, d.urn) for d in response.diagnostics]


def analyze(svc: _PolicyAnalyzerServicer, spec: Spec) -> list[Diagnostic]:
    request = analyzer_pb2.AnalyzeRequest(type=spec.type, properties=struct(spec.props), urn=spec.urn, name=spec.name)
    return _diagnostics(svc.Analyze(request, None))


def analyze_stack(svc: _PolicyAnalyzerServicer, specs: Sequence[Spec]) -> list[Diagnostic]:
    by_name = {s.name: s for s in specs}
    request = analyzer_pb2.AnalyzeStackRequest()
    for s in specs:
        resource = analyzer_pb2.AnalyzerResource(
            type=s.type,
            properties=struct(s.props),
            urn=s.urn,
            name=s.name,
            parent=by_name[s.parent].urn if s.parent else "",
            dependencies=[by_name[d].urn for d in s.depends_on if d in by_name],
        )
        request.resources.append(resource)
    return _diagnostics(svc.AnalyzeStack(request, None))


def analyze_all(svc: _PolicyAnalyzerServicer, specs: Sequence[Spec]) -> list[Diagnostic]:
    """What a preview reports for hand-built specs whose inputs and outputs are the same:
    ``Analyze`` per resource, then ``AnalyzeStack`` (for the mocked program: ``analyze_engine``)."""
    out: list[Diagnostic] = []
    for s in specs:
        out.extend(analyze(svc, s))
    out.extend(analyze_stack(svc, specs))
    return out


def mandatory(diagnostics: Iterable[Diagnostic]) -> list[str]:
    return [line for d in diagnostics if d.level == "mandatory" for line in d.lines]


def advisory(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.level == "advisory"]


# ----------------------------------------------------------------------------- from the mocked program


@dataclass
class Registered:
    """The fields of tests/harness.py's Registered this module reads."""

    type: str
    name: str
    urn: str
    inputs: dict
    parent: str = ""
    dependencies: list = field(default_factory=list)
    property_dependencies: dict = field(default_factory=dict)
    wire_inputs: dict = field(default_factory=dict)
    wire_outputs: dict = field(default_factory=dict)


def specs_from_registered(resources: Sequence[Any], view: str = "registered") -> list[Spec]:
    """The mocked program's registrations as Specs (parents and dependencies by URN).

    ``view`` is what the props are: "registered" the deserialized inputs (the old view);
    "inputs" what the engine sends ``Analyze`` (the resource's inputs in wire form, for custom
    resources and components alike: pulumi/pulumi pkg/resource/deploy/step_generator.go
    ``analyzeAll(ctx, analyzers, new, inputs, goal)`` with ``Properties:
    resource.FromResourcePropertyMap(inputs)``); "outputs" what it sends ``AnalyzeStack``
    (``Properties: resource.FromResourcePropertyMap(v.Outputs)``, "AnalyzeStack is called on
    the final outputs of each resource", step_generator.go AnalyzeResources): a custom
    resource's provider outputs, a component's register_outputs and nothing else."""
    if view not in ("registered", "inputs", "outputs"):
        raise ValueError(view)
    by_urn = {r.urn: r for r in resources}
    names: dict[str, str] = {}
    seen: dict[str, int] = {}
    for r in resources:
        # Names are unique per type in a real stack; make them unique here for lookup.
        key = r.name if r.name not in seen else f"{r.name}#{seen[r.name]}"
        seen[r.name] = seen.get(r.name, 0) + 1
        names[r.urn] = key
    out = []
    for r in resources:
        deps = list(r.dependencies) + [u for urns in (r.property_dependencies or {}).values() for u in urns]
        out.append(
            Spec(
                type=r.type,
                name=names[r.urn],
                props=_wire(r.inputs) if view == "registered" else _engine_props(getattr(r, f"wire_{view}")),
                parent=names.get(r.parent) if r.parent in by_urn else None,
                depends_on=[names[d] for d in dict.fromkeys(deps) if d in names],
                urn=r.urn,
            )
        )
    return out


def _engine_props(wire: Mapping[str, Any]) -> dict:
    """Wire props as the engine marshals them for the analyzer: ``SkipInternalKeys: true``
    (pkg/resource/plugin/analyzer_plugin.go:307, :351) drops the top-level keys starting with
    "__" (sdk/go/common/resource/plugin/rpc.go:104, properties.go ``IsInternalPropertyKey``),
    e.g. a dynamic resource's ``__provider``."""
    return {k: v for k, v in json.loads(json.dumps(dict(wire))).items() if not k.startswith("__")}


def engine_specs(resources: Sequence[Any]) -> tuple[list[Spec], list[Spec]]:
    """(what ``Analyze`` gets per resource, what ``AnalyzeStack`` gets): inputs, then outputs."""
    return specs_from_registered(resources, "inputs"), specs_from_registered(resources, "outputs")


def analyze_engine(svc: _PolicyAnalyzerServicer, resources: Sequence[Any]) -> list[Diagnostic]:
    """What a preview reports for the mocked program: ``Analyze`` on each resource's inputs,
    then ``AnalyzeStack`` on every resource's outputs (deployment_executor.go calls
    ``AnalyzeResources`` once all steps are done)."""
    inputs, outputs = engine_specs(resources)
    out: list[Diagnostic] = []
    for s in inputs:
        out.extend(analyze(svc, s))
    out.extend(analyze_stack(svc, outputs))
    return out


def _wire(value: Any) -> Any:
    """Deserialized inputs back to wire form (secrets keep the engine's secret envelope)."""
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
