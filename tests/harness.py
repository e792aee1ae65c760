"""Run the real Pulumi program (components/program.py) under the SDK's mocks.

Fed with the real ``Pulumi.<stack>.yaml`` files (plus overrides), it returns every resource the
program registered with what the engine would see: type, name, URN, inputs (wire names),
parent, provider, explicit dependencies and options, plus the stack outputs. Mocks never run
dynamic providers, Commands or policies; those are tested directly elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

ROOT = Path(__file__).resolve().parents[1]
ORG = "acme"
PROJECT = "meshca"


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    inputs: dict
    custom: bool
    parent: str
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    retain_on_delete: bool
    protect: bool
    ignore_changes: list[str]
    outputs: dict = field(default_factory=dict)
    # What the engine holds, in the wire form (the Struct the SDK sent, as JSON: unknowns are
    # the SDK's sentinel string, secrets the signature envelope): the inputs, and the outputs
    # the engine records. A custom resource's outputs are what its provider returned (here the
    # mock's); a component's are what it sent with register_outputs, which replaces them
    # (pulumi/pulumi pkg/resource/deploy/step_executor.go executeRegisterResourceOutputs:
    # "Unconditionally set the resource's outputs to what was provided"), {} until it does
    # (step.go CreateStep.Apply sets Outputs only for custom resources).
    wire_inputs: dict = field(default_factory=dict)
    wire_outputs: dict = field(default_factory=dict)
    import_id: str = ""


@dataclass
class Result:
    resources: list[Registered]
    outputs: dict[str, Any]
    error: BaseException | None
    calls: list[tuple[str, dict]]

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, (name, [r.name for r in matches])
        return matches[0]

    def by_urn(self) -> dict[str, Registered]:
        return {r.urn: r for r in self.resources}

    def commands(self) -> list[Registered]:
        return self.of_type("command:local:Command")

    def command(self, cluster: str, step_id: str) -> Registered:
        return self.named(f"{cluster}.{step_id}")

    def depends_on_transitively(self, resource: Registered) -> set[str]:
        """Names of everything ``resource`` waits for (explicit dependencies, transitively)."""
        by_urn = self.by_urn()
        seen: set[str] = set()
        todo = list(resource.dependencies)
        while todo:
            urn = todo.pop()
            if urn in seen or urn not in by_urn:
                continue
            seen.add(urn)
            todo.extend(by_urn[urn].dependencies)
        return {by_urn[u].name for u in seen}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []
        self._by_urn: dict[str, list[Registered]] = {}  # RegisterResourceOutputs without a scan per call

    def RegisterResource(self, request):  # noqa: N802 (gRPC name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=inputs,
                    custom=bool(request.custom),
                    parent=request.parent,
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                    retain_on_delete=bool(request.retainOnDelete),
                    protect=bool(request.protect),
                    ignore_changes=list(request.ignoreChanges),
                    import_id=request.importId,
                    outputs=dict(self.resources[response.urn].state) if response.urn in self.resources else {},
                    wire_inputs=json_format.MessageToDict(request.object),
                    wire_outputs=json_format.MessageToDict(response.object) if request.custom else {},
                )
            )
            self._by_urn.setdefault(response.urn, []).append(self.registered[-1])
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802 (gRPC name)
        for r in self._by_urn.get(request.urn, ()):
            r.wire_outputs = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


class MeshMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs; gates pass; backups are verified; invokes answer per context."""

    def __init__(self, cacerts: Mapping[str, str] | None, stack_outputs: Mapping[str, dict] | None, gate_passed: bool, preview: bool = False) -> None:
        self.preview = preview
        self.cacerts = dict(cacerts or {})
        self.stack_outputs = dict(stack_outputs or {})
        self.gate_passed = gate_passed
        self.calls: list[tuple[str, dict]] = []
        self.istioctl_version = "1.19.10-asm.9\n"  # what the pinned asmcli's istioctl prints

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"outputs": self.stack_outputs.get(args.inputs.get("name", args.name), {}), "secretOutputNames": []}
        if self.preview and args.typ.startswith("pulumi-python:dynamic/"):
            # A dynamic provider does not support previews (dynamic/__main__.py Configure answers
            # no supportsPreview), so the engine's preview Create returns the inputs as the state
            # (pkg/resource/plugin/provider_plugin.go: ``if !protocol.supportsPreview ... return
            # CreateResponse{Properties: req.Properties}``): what the provider computes (a gate's
            # passed, a backup's digests) is unknown to the program until `up`.
            return f"{args.name}-id", {k: v for k, v in outs.items() if v is not None}
        if args.typ.endswith(":TrustGate"):
            outs.update(passed=self.gate_passed, checkedAt="2026-11-25T00:00:00Z", summary={"meshed": 1, "ok": 1})
        if args.typ.endswith(":CaSecretBackup"):
            outs.update(present=True, keys=["ca-cert.pem"], dataSha256="d" * 64, fileSha256="f" * 64, mode="0600")
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == "command:local:run":
            command = args.args.get("command", "")
            if "istioctl version --remote=false --short" in command:  # the probe appends " 2>&1 || true"
                return {"stdout": self.istioctl_version, "stderr": ""}
            for context, stdout in self.cacerts.items():
                if f"--context {context} " in command:
                    return {"stdout": stdout, "stderr": ""}
            return {"stdout": "", "stderr": ""}
        return {}


def stack_file_values(stack_file: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``Pulumi.<stack>.yaml`` as the engine passes it: "meshca:key" -> string (JSON for objects)."""
    doc = yaml.safe_load(stack_file.read_text()) or {}
    config = dict(doc.get("config") or {})
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"meshca:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value
    out = {}
    for key, value in config.items():
        full = key if ":" in key else f"meshca:{key}"
        if isinstance(value, str):
            out[full] = value
        elif isinstance(value, bool):
            out[full] = "true" if value else "false"
        else:
            out[full] = json.dumps(value)
    return out


def upstream_at_same_position(values: Mapping[str, str]) -> dict:
    """Outputs of an upstream stack at the same phase and namespace roles as ``values``."""
    namespaces = json.loads(values["meshca:namespaces"])
    names = {
        values.get("meshca:oldRevision", "default"): "old",
        values["meshca:rev1"]: "rev1",
        values["meshca:rev2"]: "rev2",
    }
    roles = {ns: names.get(rev["revision"] if isinstance(rev, dict) else rev, "old") for ns, rev in namespaces.items()}
    return {"phase": values.get("meshca:phase", "baseline"), "rollback": False, "namespaceRoles": roles}


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    stack_file: Path | None = None,
    cacerts: Mapping[str, str] | None = None,
    stack_outputs: Mapping[str, dict] | None = None,
    gate_passed: bool = True,
    preview: bool = False,
    secret_keys: Iterable[str] = (),
    istioctl_version: str = "1.19.10-asm.9\n",
    organization: str = ORG,
) -> Result:
    """Run components/program.py for ``stack`` (Pulumi.<stack>.yaml in the repo) under mocks.

    ``secret_keys``: config keys the engine marks secret (it decrypts ``secure:`` values and
    passes the plaintext with the key listed), reset on every run."""
    stack_file = stack_file or ROOT / f"Pulumi.{stack}.yaml"
    values = stack_file_values(stack_file, overrides)
    stack_outputs = dict(stack_outputs or {})
    upstream = values.get("meshca:upstreamStack")
    if upstream and upstream not in stack_outputs:
        # Tests about something else: the upstream stack already stands where this one goes.
        stack_outputs[upstream] = upstream_at_same_position(values)
    mocks = MeshMocks(cacerts, stack_outputs, gate_passed, preview)
    mocks.istioctl_version = istioctl_version
    monitor = RecordingMonitor(mocks)
    pulumi_settings.set_root_resource(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, organization=organization)
    pulumi.runtime.set_all_config(values, list(secret_keys))
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        from components import program as prog

        prog.run()
        root = pulumi_settings.get_root_resource()
        outputs = getattr(root, "outputs", {}) or {}
        return pulumi.Output.all(**outputs).apply(captured.update) if outputs else None

    error = None
    try:
        program()
    except BaseException as exc:  # noqa: BLE001 - the caller asserts on it
        error = exc
    return Result(resources=list(monitor.registered), outputs=captured, error=error, calls=mocks.calls)
