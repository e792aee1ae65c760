"""meshca's CrossGuard rules: what no stack may declare, judged on the resources themselves.

Run with ``pulumi preview --policy-pack policy`` (``policy/__main__.py`` builds the pack from
``POLICIES``). Resource rules read a resource's INPUTS (a component's: the props of its
constructor); stack rules read every resource's OUTPUTS, and a component's outputs are exactly
what it sent with ``register_outputs`` (pulumi/pulumi pkg/resource/deploy/step_generator.go
AnalyzeResources, "AnalyzeStack is called on the final outputs of each resource";
step_executor.go: RegisterResourceOutputs replaces them), so every meshca component registers
its full typed state as outputs. Rules judge that typed state (revision, role, removed, the
namespace map) where a component carries it, and parse Command ``create`` lines with shlex
only for what no component states; they never re-run the plan, so a program that drifted
from the plan is judged on what it would really do.
Every violation is one coded line from meshca/messages.yaml (MCA06xx).

Resource rules (MANDATORY: they stop ``pulumi up`` before the resource's step runs, and a
refused component before any of its children registers):
  revision-names           DNS-1035, at most 56 characters: asmcli --revision_name, istio.io/rev
                           label values, the revision props of meshca components
  one-injection-label      no namespace gets both istio-injection and istio.io/rev
  asmcli-install-flags     REV1 --ca citadel + ca-migration-citadel + all four certificate files
                           (absent only with MESHCA_CACERTS=matching), REV2 --ca mesh_ca +
                           ca-migration-meshca and no certificate flag, always --context
  no-private-key-material  no PEM private key (or its base64 form) in any input
  namespace-labels-on-kept-revisions   NamespaceRevision: a declared revision its cluster keeps
  no-removal-of-used-revision          ControlPlaneRevision: no removal of a revision a
                           namespace or gateway runs; REV2 installed only after a root-cert gate
                           and with no namespace on the old revision
  ca-secret-removal-guarded            CaSecrets / CaSecretDeletion: a backup of each Secret,
                           the workload-cert gate, every namespace on REV2
  clusters-in-one-project              MeshcaStack: one Google Cloud project
Stack rules (ADVISORY, after the fact: the engine runs stack policies once every step of
``pulumi up`` was applied, so they report and never guard): the ``-report`` twins of the four
above and rev2-after-root-cert-gate-report, judged on every resource's outputs (Commands too).
Advisory rules (risky but legal):
  batch-share (policy config ``maxBatchShare``, default 0.25), cacerts-unverified

Unknown values (preview): a rule never reports a violation that rests on an unknown value;
when it cannot decide because of one, it raises ``UnknownValueError`` and the analyzer turns
that into an advisory "can't run policy during preview" note; ``pulumi up`` judges known values.
"""

from __future__ import annotations

import base64
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as _proxy
from pulumi_policy.proxy import UnknownValueError

try:  # the pack runs from policy/ inside the project: the catalogue is the project's
    from meshca.errors import MeshcaError
except ImportError:  # pragma: no cover - only when the pack's own venv lacks the project
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from meshca.errors import MeshcaError

PACK_NAME = "meshca"

# Resource types (the contract of components/).
COMMAND = "command:local:Command"
NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
NAMESPACE = "kubernetes:core/v1:Namespace"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DEPLOYMENT_PATCH = "kubernetes:apps/v1:DeploymentPatch"
TRUST_GATE = "pulumi-python:dynamic/meshca:TrustGate"
CA_BACKUP = "pulumi-python:dynamic/meshca:CaSecretBackup"
CA_DELETION = "pulumi-python:dynamic/meshca:CaSecretDeletion"
MESHCA_STACK = "meshca:index:MeshcaStack"
CONTROL_PLANE = "meshca:index:ControlPlaneRevision"
NAMESPACE_REVISION = "meshca:index:NamespaceRevision"
GATEWAY_REVISION = "meshca:index:GatewayRevision"
CLUSTER_MIGRATION = "meshca:index:ClusterMigration"
COMPONENT_PREFIX = "meshca:index:"

NAMESPACE_TYPES = (NAMESPACE_PATCH, NAMESPACE)
DEPLOYMENT_TYPES = (DEPLOYMENT, DEPLOYMENT_PATCH)

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
REVISION_MAX = 56
REV_LABEL = "istio.io/rev"
INJECTION_LABEL = "istio-injection"
CA_SECRETS = ("cacerts", "istio-ca-secret")
SYSTEM_NS = "istio-system"
MESHCA_ROOT = "MESHCA"
DEFAULT_MAX_BATCH_SHARE = 0.25

_SENTINELS = frozenset(
    {
        _proxy.UNKNOWN_BOOLEAN_VALUE,
        _proxy.UNKNOWN_NUMBER_VALUE,
        _proxy.UNKNOWN_STRING_VALUE,
        _proxy.UNKNOWN_ARRAY_VALUE,
        _proxy.UNKNOWN_ASSET_VALUE,
        _proxy.UNKNOWN_ARCHIVE_VALUE,
        _proxy.UNKNOWN_OBJECT_VALUE,
    }
)
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


# ----------------------------------------------------------------------------- values


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in _SENTINELS


def plain(value: Any) -> Any:
    """Props as plain dicts/lists: the analyzer's proxies unwrapped, secrets revealed
    (policies see secrets in plain text anyway), unknown sentinels kept as strings."""
    if isinstance(value, (_proxy._DictProxy, _proxy._ListProxy)):
        value = value["__target"]
    inner = getattr(value, "value", None)
    if type(value).__name__ == "Secret" and inner is not None:
        value = inner
    if isinstance(value, Mapping):
        if value.get(_SECRET_SIG_KEY) == _SECRET_SIG and "value" in value:
            return plain(value["value"])
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def dig(props: Any, *path: str) -> Any:
    """``props[a][b]...`` or None; an unknown on the way is returned as the unknown."""
    cur = props
    for key in path:
        if is_unknown(cur):
            return cur
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


class _Undecided(Exception):
    """A decisive value is unknown (preview)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _known(value: Any, path: str) -> Any:
    if is_unknown(value):
        raise _Undecided(path)
    return value


def _raise_unknown(path: str) -> None:
    raise UnknownValueError(_proxy.UNKNOWN_STRING_VALUE, path.split("."))


# ----------------------------------------------------------------------------- command lines


SEPARATORS = {"&&", "||", ";", "|"}


def command_argv(props: Mapping[str, Any]) -> list[list[str]] | None:
    """The ``create`` line of a Command as argv segments (split at && || ; |), or None."""
    create = props.get("create")
    if is_unknown(create):
        raise _Undecided("create")
    if not isinstance(create, str):
        return None
    try:
        tokens = shlex.split(create)
    except ValueError:
        return None
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token in SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(token)
    return [s for s in segments if s]


def _basename(token: str) -> str:
    return token.rsplit("/", 1)[-1]


# asmcli lib/parse.sh: every flag and its aliases (matched case-insensitively).
_ASMCLI_VALUE_FLAGS = {
    "cluster_location": ("-l", "--cluster_location", "--cluster-location"),
    "cluster_name": ("-n", "--cluster_name", "--cluster-name"),
    "kubeconfig": ("--kc", "--kubeconfig"),
    "context": ("--ctx", "--context"),
    "project_id": ("-p", "--project_id", "--project-id"),
    "mode": ("-m", "--mode"),
    "fleet_id": ("--fleet_id", "--fleet-id"),
    "ca": ("-c", "--ca"),
    "ca_name": ("--ca_name", "--ca-name"),
    "option": ("-o", "--option"),
    "custom_overlay": ("--co", "--custom_overlay", "--custom-overlay"),
    "service_account": ("-s", "--service_account", "--service-account"),
    "key_file": ("-k", "--key_file", "--key-file"),
    "output_dir": ("-d", "--output_dir", "--output-dir"),
    "ca_cert": ("--ca_cert", "--ca-cert"),
    "ca_key": ("--ca_key", "--ca-key"),
    "root_cert": ("--root_cert", "--root-cert"),
    "cert_chain": ("--cert_chain", "--cert-chain"),
    "revision_name": ("-r", "--revision_name", "--revision-name"),
    "platform": ("--platform",),
}
_ASMCLI_FLAG = {alias: name for name, aliases in _ASMCLI_VALUE_FLAGS.items() for alias in aliases}
CERT_FLAGS = ("ca_cert", "ca_key", "root_cert", "cert_chain")
CERT_FLAG_SPELLING = {"ca_cert": "--ca_cert", "ca_key": "--ca_key", "root_cert": "--root_cert", "cert_chain": "--cert_chain"}
MIGRATION_OPTION = {"citadel": "ca-migration-citadel", "mesh_ca": "ca-migration-meshca"}


@dataclass
class AsmcliInstall:
    flags: dict[str, list[str]] = field(default_factory=dict)
    switches: set[str] = field(default_factory=set)

    def first(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[0] if values else None

    @property
    def ca(self) -> str | None:
        ca = self.first("ca")
        return ca.lower() if ca is not None else None

    @property
    def options(self) -> list[str]:
        return self.flags.get("option", [])


def asmcli_install(segments: Sequence[Sequence[str]] | None) -> AsmcliInstall | None:
    """The parsed ``asmcli install`` of a command line, or None when it runs none."""
    for argv in segments or ():
        for i, token in enumerate(argv[:-1]):
            if _basename(token).startswith("asmcli") and argv[i + 1].lower() == "install":
                return _parse_asmcli(argv[i + 2 :])
    return None


def _parse_asmcli(args: Sequence[str]) -> AsmcliInstall:
    out = AsmcliInstall()
    i = 0
    while i < len(args):
        token = args[i]
        flag, eq, inline = token.partition("=")
        name = _ASMCLI_FLAG.get(flag.lower())
        if name is not None:
            if eq:
                value = inline
                i += 1
            else:
                value = args[i + 1] if i + 1 < len(args) else ""
                i += 2
            out.flags.setdefault(name, []).append(value)
        else:
            out.switches.add(token.lower())
            i += 1
    return out


# kubectl: global and command flags that take a value (anything else starting with - is a switch).
_KUBECTL_VALUE_FLAGS = {
    "--kubeconfig", "--context", "--cluster", "--user", "-n", "--namespace", "-s", "--server", "--token",
    "--as", "--as-group", "--certificate-authority", "--client-certificate", "--client-key", "--request-timeout",
    "-l", "--selector", "-o", "--output", "-f", "--filename", "--field-selector", "--grace-period", "--timeout",
    "--cascade", "--field-manager", "--resource-version", "-k", "--kustomize", "--cache-dir", "--tls-server-name",
    "--password", "--username", "-v", "--v", "--template", "--type", "--from-literal", "--from-file",
}


@dataclass
class Kubectl:
    positional: list[str]
    flags: dict[str, list[str]]

    def flag(self, *names: str) -> str | None:
        for name in names:
            if self.flags.get(name):
                return self.flags[name][-1]
        return None


def kubectl_calls(segments: Sequence[Sequence[str]] | None) -> list[Kubectl]:
    calls = []
    for argv in segments or ():
        for i, token in enumerate(argv):
            if _basename(token) == "kubectl":
                calls.append(_parse_kubectl(argv[i + 1 :]))
                break
    return calls


def _parse_kubectl(args: Sequence[str]) -> Kubectl:
    positional: list[str] = []
    flags: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            positional.extend(args[i + 1 :])
            break
        if token.startswith("-") and len(token) > 1:
            name, eq, value = token.partition("=")
            if eq:
                flags.setdefault(name, []).append(value)
                i += 1
            elif name in _KUBECTL_VALUE_FLAGS and i + 1 < len(args):
                flags.setdefault(name, []).append(args[i + 1])
                i += 2
            else:
                flags.setdefault(name, []).append("true")
                i += 1
        else:
            positional.append(token)
            i += 1
    return Kubectl(positional, flags)


def _kinds(spec: str) -> set[str]:
    return {k.split(".")[0].lower() for k in spec.split(",") if k}


_DEPLOYMENT_KINDS = {"deployment", "deployments", "deploy"}
_SECRET_KINDS = {"secret", "secrets"}
_NAMESPACE_KINDS = {"namespace", "namespaces", "ns"}


def deleted_objects(call: Kubectl) -> list[tuple[set[str], str]]:
    """``kubectl delete`` targets as (kinds, name): ``delete A,B name...`` or ``delete a/name``."""
    pos = call.positional
    if not pos or pos[0] != "delete" or len(pos) < 2:
        return []
    out = []
    if "/" in pos[1]:
        for target in pos[1:]:
            kind, _, name = target.partition("/")
            out.append((_kinds(kind), name))
    else:
        kinds = _kinds(pos[1])
        out.extend((kinds, name) for name in pos[2:])
    return out


def istiod_removals(segments: Sequence[Sequence[str]] | None) -> list[str]:
    """Revisions whose istiod Deployment a command line deletes (``istiod`` is ``default``)."""
    revisions = []
    for call in kubectl_calls(segments):
        namespace = call.flag("-n", "--namespace")
        if namespace not in (None, SYSTEM_NS):
            continue
        for kinds, name in deleted_objects(call):
            if kinds & _DEPLOYMENT_KINDS and (name == "istiod" or name.startswith("istiod-")):
                revisions.append("default" if name == "istiod" else name[len("istiod-") :])
    return revisions


def ca_secret_deletions(segments: Sequence[Sequence[str]] | None) -> list[str]:
    """The CA secrets (cacerts, istio-ca-secret) a command line deletes."""
    names: list[str] = []
    for call in kubectl_calls(segments):
        namespace = call.flag("-n", "--namespace")
        if namespace not in (None, SYSTEM_NS):
            continue
        for kinds, name in deleted_objects(call):
            if kinds & _SECRET_KINDS and name in CA_SECRETS and name not in names:
                names.append(name)
    return names


def namespace_label_changes(segments: Sequence[Sequence[str]] | None) -> list[tuple[list[str], dict[str, str], list[str]]]:
    """``kubectl label namespace NS... k=v k- ...``: (namespaces, labels set, labels removed)."""
    out = []
    for call in kubectl_calls(segments):
        pos = call.positional
        if len(pos) < 2 or pos[0] != "label":
            continue
        names: list[str] = []
        rest = pos[1:]
        if "/" in rest[0]:
            kind, _, name = rest[0].partition("/")
            if kind.lower() not in _NAMESPACE_KINDS:
                continue
            names.append(name)
            rest = rest[1:]
        elif rest[0].lower() in _NAMESPACE_KINDS:
            rest = rest[1:]
        else:
            continue
        sets: dict[str, str] = {}
        removes: list[str] = []
        for token in rest:
            if "=" in token:
                key, _, value = token.partition("=")
                sets[key] = value
            elif token.endswith("-"):
                removes.append(token[:-1])
            else:
                names.append(token)
        out.append((names, sets, removes))
    return out


# ----------------------------------------------------------------------------- revision names


def revision_problem(value: str) -> str | None:
    """'long' (more than 56 characters), 'invalid' (not DNS-1035) or None."""
    if len(value) > REVISION_MAX:
        return "long"
    if not DNS1035.match(value):
        return "invalid"
    return None


def _report(report: Callable, error: MeshcaError, urn: str | None = None) -> None:
    report(error.line(), urn)


def _subject(args: ResourceValidationArgs | Any, where: str) -> str:
    return f"{args.name} ({where})"


def validate_revision_names(args: ResourceValidationArgs, report: Callable) -> None:
    props = plain(args.props)
    undecided: list[str] = []
    typ = args.resource_type

    def judge(value: Any, where: str, kind: str) -> None:
        if is_unknown(value):
            undecided.append(where)
            return
        if not isinstance(value, str):
            return
        problem = revision_problem(value)
        if problem is None:
            return
        name = {
            ("asmcli", "invalid"): "PolicyAsmcliRevisionInvalid",
            ("asmcli", "long"): "PolicyAsmcliRevisionTooLong",
            ("label", "invalid"): "PolicyLabelRevisionInvalid",
            ("label", "long"): "PolicyLabelRevisionTooLong",
            ("component", "invalid"): "PolicyComponentRevisionInvalid",
            ("component", "long"): "PolicyComponentRevisionTooLong",
        }[(kind, problem)]
        _report(report, MeshcaError(name, _subject(args, where), value=value, length=len(value)))

    if typ == COMMAND:
        try:
            segments = command_argv(props)
        except _Undecided as u:
            _raise_unknown(u.path)
        install = asmcli_install(segments)
        if install is not None:
            for value in install.flags.get("revision_name", []):
                judge(value, "create --revision_name", "asmcli")
        for _, sets, _ in namespace_label_changes(segments):
            if REV_LABEL in sets:
                judge(sets[REV_LABEL], f"create {REV_LABEL}", "label")
    elif typ in NAMESPACE_TYPES:
        judge(dig(props, "metadata", "labels", REV_LABEL), f"metadata.labels.{REV_LABEL}", "label")
    elif typ in DEPLOYMENT_TYPES:
        judge(dig(props, "metadata", "labels", REV_LABEL), f"metadata.labels.{REV_LABEL}", "label")
        judge(dig(props, "spec", "template", "metadata", "labels", REV_LABEL), f"spec.template.metadata.labels.{REV_LABEL}", "label")
    elif typ.startswith(COMPONENT_PREFIX):
        judge(props.get("revision"), "revision", "component")
        revisions = props.get("revisions")
        if is_unknown(revisions):
            undecided.append("revisions")
        elif isinstance(revisions, Mapping):
            for role, value in revisions.items():
                judge(value, f"revisions.{role}", "component")
    if undecided:
        _raise_unknown(undecided[0])


# ----------------------------------------------------------------------------- injection labels


def validate_one_injection_label(args: ResourceValidationArgs, report: Callable) -> None:
    props = plain(args.props)
    typ = args.resource_type
    if typ in NAMESPACE_TYPES:
        labels = dig(props, "metadata", "labels")
        if is_unknown(labels):
            _raise_unknown("metadata.labels")
        # Both keys present is the fault, whatever their (possibly unknown) values.
        if isinstance(labels, Mapping) and INJECTION_LABEL in labels and REV_LABEL in labels:
            namespace = dig(props, "metadata", "name")
            _report(
                report,
                MeshcaError(
                    "PolicyNamespaceBothInjectionLabels",
                    _subject(args, "metadata.labels"),
                    namespace=namespace if isinstance(namespace, str) else args.name,
                    injection=labels[INJECTION_LABEL],
                    revision=labels[REV_LABEL],
                ),
            )
    elif typ == COMMAND:
        try:
            segments = command_argv(props)
        except _Undecided as u:
            _raise_unknown(u.path)
        for names, sets, _ in namespace_label_changes(segments):
            if INJECTION_LABEL in sets and REV_LABEL in sets:
                _report(
                    report,
                    MeshcaError(
                        "PolicyLabelCommandBothInjectionLabels",
                        _subject(args, "create"),
                        namespace=" ".join(names) or "?",
                        sets=f"{INJECTION_LABEL}={sets[INJECTION_LABEL]} and {REV_LABEL}={sets[REV_LABEL]}",
                    ),
                )


# ----------------------------------------------------------------------------- asmcli flags


def validate_asmcli_flags(args: ResourceValidationArgs, report: Callable) -> None:
    props = plain(args.props)
    typ = args.resource_type
    if typ == CONTROL_PLANE:
        _validate_control_plane_ca(args, props, report)
        return
    if typ != COMMAND:
        return
    try:
        install = asmcli_install(command_argv(props))
    except _Undecided as u:
        _raise_unknown(u.path)
    if install is None:
        return

    def fail(name: str, where: str, **values: Any) -> None:
        _report(report, MeshcaError(name, _subject(args, where), **values))

    if not install.first("context"):
        fail("PolicyAsmcliWithoutContext", "create --context")
    if not install.first("revision_name"):
        fail("PolicyAsmcliWithoutRevisionName", "create --revision_name")
    ca = install.ca
    if ca not in MIGRATION_OPTION:
        fail("PolicyAsmcliCaNotMigration", "create --ca", ca=ca if ca else "missing")
        return
    other = "mesh_ca" if ca == "citadel" else "citadel"
    options = [o.lower() for o in install.options]
    if MIGRATION_OPTION[ca] not in options:
        fail("PolicyAsmcliMigrationOptionMissing", "create --option", ca=ca, option=MIGRATION_OPTION[ca])
    if MIGRATION_OPTION[other] in options:
        fail("PolicyAsmcliMigrationOptionOfOtherCa", "create --option", ca=ca, option=MIGRATION_OPTION[other], other=other, want=MIGRATION_OPTION[ca])
    given = [f for f in CERT_FLAGS if f in install.flags]
    spelled = " ".join(CERT_FLAG_SPELLING[f] for f in given)
    if ca == "mesh_ca":
        if given:
            fail("PolicyAsmcliCertFlagsWithMeshCa", "create", given=spelled)
        return
    if 0 < len(given) < len(CERT_FLAGS):
        missing = " ".join(CERT_FLAG_SPELLING[f] for f in CERT_FLAGS if f not in given)
        fail("PolicyAsmcliCertFlagsPartial", "create", given=spelled, missing=missing)
        return
    environment = props.get("environment")
    if is_unknown(environment):
        _raise_unknown("environment")
    cacerts = environment.get("MESHCA_CACERTS") if isinstance(environment, Mapping) else None
    if is_unknown(cacerts):
        _raise_unknown("environment.MESHCA_CACERTS")
    if not given and cacerts != "matching":
        fail("PolicyAsmcliCertFlagsMissing", "create", cacerts=cacerts or "not set")
    elif given and cacerts == "matching":
        fail("PolicyAsmcliCertFlagsWithMatchingCacerts", "create")


def _validate_control_plane_ca(args: ResourceValidationArgs, props: Mapping[str, Any], report: Callable) -> None:
    role, ca = props.get("role"), props.get("ca")
    if is_unknown(role) or is_unknown(ca):
        _raise_unknown("ca")
    want = {"rev1": "citadel", "rev2": "mesh_ca"}.get(role) if isinstance(role, str) else None
    if want is not None and ca is not None and ca != want:
        _report(
            report,
            MeshcaError("PolicyControlPlaneCaMismatch", _subject(args, "ca"), revision=props.get("revision"), role=role, ca=ca, want=want),
        )


def validate_cacerts_verified(args: ResourceValidationArgs, report: Callable) -> None:
    """Advisory: the four files passed while nobody knows whether cacerts exists."""
    if args.resource_type != COMMAND:
        return
    props = plain(args.props)
    try:
        install = asmcli_install(command_argv(props))
    except _Undecided as u:
        _raise_unknown(u.path)
    if install is None or install.ca != "citadel" or not all(f in install.flags for f in CERT_FLAGS):
        return
    environment = props.get("environment")
    cacerts = environment.get("MESHCA_CACERTS") if isinstance(environment, Mapping) else None
    if is_unknown(environment) or is_unknown(cacerts):
        _raise_unknown("environment.MESHCA_CACERTS")
    if cacerts not in ("absent", "matching"):
        _report(report, MeshcaError("PolicyCacertsUnverified", _subject(args, "environment.MESHCA_CACERTS"), cacerts=cacerts or "not set"))


# ----------------------------------------------------------------------------- key material

_PEM_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----")
_WHITESPACE = re.compile(r"\s+")


def _base64_needles(needle: bytes) -> tuple[str, ...]:
    """What ``needle`` looks like inside base64 text, whatever its byte offset."""
    out = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + needle).decode()
        start = (shift * 8 + 5) // 6  # characters that also carry the prefix's bits
        length = shift + len(needle)
        end = len(encoded) - (4 if length % 3 else 0)  # the last group carries the next bytes' bits
        out.append(encoded[start:end])
    return tuple(out)


_KEY_NEEDLES = _base64_needles(b"PRIVATE KEY-----")


def key_material(text: str) -> tuple[str, str] | None:
    """('pem', kind) or ('base64', '') when ``text`` holds private-key material, else None."""
    match = _PEM_KEY.search(text)
    if match:
        return ("pem", (match.group(1) + "PRIVATE KEY").strip())
    if len(text) >= 16:
        compact = _WHITESPACE.sub("", text)
        if any(n in compact for n in _KEY_NEEDLES):
            return ("base64", "")
    return None


def _walk_strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{i}]")


def validate_no_private_key(args: ResourceValidationArgs, report: Callable) -> None:
    for path, text in _walk_strings(plain(args.props), ""):
        if is_unknown(text):
            continue  # an unknown holds nothing yet; up judges the known value
        found = key_material(text)
        if found is None:
            continue
        kind, name = found
        if kind == "pem":
            _report(report, MeshcaError("PolicyPrivateKeyInInputs", _subject(args, path), path=path, kind=name))
        else:
            _report(report, MeshcaError("PolicyPrivateKeyBase64InInputs", _subject(args, path), path=path))


# ----------------------------------------------------------------------------- the stack view


@dataclass
class Res:
    type: str
    name: str
    urn: str
    props: dict
    parent: "Res | None" = None
    deps: list["Res"] = field(default_factory=list)


@dataclass
class NamespaceUse:
    cluster: str | None
    namespace: str
    revision: str
    source: Res


class Stack:
    """Every registered resource, with what the stack rules read from them."""

    def __init__(self, resources: Sequence[Any]) -> None:
        self.undecided: list[str] = []
        self._segments: dict[int, tuple[list[list[str]] | None, str | None]] = {}
        by_urn: dict[str, Res] = {}
        wrapped: list[tuple[Any, Res]] = []
        for r in resources:
            res = Res(r.resource_type, r.name, r.urn, plain(r.props))
            wrapped.append((r, res))
            by_urn[r.urn] = res
        for r, res in wrapped:
            if r.parent is not None:
                res.parent = by_urn.get(r.parent.urn)
            deps = list(r.dependencies or [])
            for group in (r.property_dependencies or {}).values():
                deps.extend(group or [])
            seen = set()
            for d in deps:
                target = by_urn.get(d.urn)
                if target is not None and d.urn not in seen:
                    seen.add(d.urn)
                    res.deps.append(target)
        self.resources = [res for _, res in wrapped]
        self.stacks = self.of(MESHCA_STACK)
        self.contexts: dict[str, str] = {}
        for s in self.stacks:
            for cl in s.props.get("clusters") or []:
                if isinstance(cl, Mapping) and isinstance(cl.get("context"), str) and isinstance(cl.get("name"), str):
                    self.contexts[cl["context"]] = cl["name"]
        for cm in self.of(CLUSTER_MIGRATION):
            if isinstance(cm.props.get("context"), str) and isinstance(cm.props.get("cluster"), str):
                self.contexts[cm.props["context"]] = cm.props["cluster"]

    def of(self, *types: str) -> list[Res]:
        return [r for r in self.resources if r.type in types]

    def unknown(self, path: str) -> None:
        self.undecided.append(path)

    # -- facts about one resource -------------------------------------------------------------

    def cluster_of(self, res: Res) -> str | None:
        cur: Res | None = res
        while cur is not None:
            value = cur.props.get("cluster")
            if isinstance(value, str) and not is_unknown(value):
                return value
            cur = cur.parent
        if res.type == COMMAND:
            try:
                segments = command_argv(res.props)
            except _Undecided:
                return None
            for argv in segments or ():
                for i, token in enumerate(argv[:-1]):
                    if token in ("--context", "--ctx"):
                        return self.contexts.get(argv[i + 1])
                    if token.startswith("--context="):
                        return self.contexts.get(token.partition("=")[2])
        return None

    def closure(self, res: Res) -> list[Res]:
        """Everything ``res`` waits for (dependencies, transitively)."""
        seen: dict[str, Res] = {}
        todo = list(res.deps)
        while todo:
            cur = todo.pop()
            if cur.urn in seen:
                continue
            seen[cur.urn] = cur
            todo.extend(cur.deps)
        return list(seen.values())

    def segments(self, res: Res) -> list[list[str]] | None:
        """``command_argv`` of a resource, split once per Stack (rules ask again per namespace;
        the lists are only read). An undecided line is reported again on every ask, as before."""
        cached = self._segments.get(id(res))
        if cached is None:
            try:
                cached = (command_argv(res.props), None)
            except _Undecided as u:
                cached = (None, f"{res.name}.{u.path}")
            self._segments[id(res)] = cached
        if cached[1] is not None:
            self.unknown(cached[1])
        return cached[0]

    # -- the stack's declarations -------------------------------------------------------------

    def revisions(self, role: str) -> set[str]:
        out = set()
        for s in self.stacks:
            value = dig(s.props, "revisions", role)
            if isinstance(value, str) and not is_unknown(value):
                out.add(value)
        for c in self.of(CONTROL_PLANE):
            if c.props.get("role") == role and isinstance(c.props.get("revision"), str):
                out.add(c.props["revision"])
        return out

    def declared(self) -> set[str] | None:
        if not self.stacks:
            return None
        return self.revisions("old") | self.revisions("rev1") | self.revisions("rev2")

    def installs(self) -> list[tuple[Res, AsmcliInstall]]:
        out = []
        for c in self.of(COMMAND):
            install = asmcli_install(self.segments(c))
            if install is not None:
                out.append((c, install))
        return out

    def removals(self) -> list[tuple[Res, str, str | None]]:
        """(remover, revision, cluster) for every control plane the stack removes."""
        out = []
        for c in self.of(CONTROL_PLANE):
            removed = c.props.get("removed")
            if is_unknown(removed):
                self.unknown(f"{c.name}.removed")
            elif removed is True and isinstance(c.props.get("revision"), str):
                out.append((c, c.props["revision"], self.cluster_of(c)))
        for c in self.of(COMMAND):
            if self.typed_parent(c, CONTROL_PLANE, "removed"):
                continue  # its ControlPlaneRevision's state says whether the revision goes
            for revision in istiod_removals(self.segments(c)):
                out.append((c, revision, self.cluster_of(c)))
        return out

    def typed_parent(self, res: Res, type_: str, key: str) -> Res | None:
        """``res``'s parent of type ``type_`` when its (registered) state carries ``key``."""
        parent = res.parent
        if parent is not None and parent.type == type_ and key in parent.props:
            return parent
        return None

    def installed(self, cluster: str | None) -> set[str]:
        out = set(self.revisions("old"))
        for c, install in self.installs():
            if self.typed_parent(c, CONTROL_PLANE, "installs"):
                continue  # its ControlPlaneRevision's state (below) says what is installed
            if cluster is None or self.cluster_of(c) in (None, cluster):
                out.update(install.flags.get("revision_name", []))
        for c in self.of(CONTROL_PLANE):
            if c.props.get("role") in ("rev1", "rev2") and (cluster is None or self.cluster_of(c) in (None, cluster)):
                if isinstance(c.props.get("revision"), str):
                    out.add(c.props["revision"])
        return out

    def removed(self, cluster: str | None) -> set[str]:
        return {rev for _, rev, cl in self.removals() if cluster is None or cl in (None, cluster)}

    def label_uses(self) -> list[NamespaceUse]:
        """The revision each namespace's labels (NamespacePatch / Namespace) select."""
        out = []
        for r in self.of(*NAMESPACE_TYPES):
            labels = dig(r.props, "metadata", "labels")
            name = dig(r.props, "metadata", "name")
            if is_unknown(labels) or is_unknown(name):
                self.unknown(f"{r.name}.metadata")
                continue
            if not isinstance(labels, Mapping) or not isinstance(name, str):
                continue
            revision = labels.get(REV_LABEL)
            if is_unknown(revision) or is_unknown(labels.get(INJECTION_LABEL)):
                self.unknown(f"{r.name}.metadata.labels")
                continue
            if revision is None and labels.get(INJECTION_LABEL) == "enabled":
                revision = "default"
            if isinstance(revision, str):
                out.append(NamespaceUse(self.cluster_of(r), name, revision, r))
        return out

    def namespace_uses(self) -> list[NamespaceUse]:
        """Every statement of the revision a namespace's pods run: labels, NamespaceRevision,
        and the MeshcaStack's map (during a rollback: the map the rollback returns to)."""
        out = self.label_uses()
        for r in self.of(NAMESPACE_REVISION):
            ns, rev = r.props.get("namespace"), r.props.get("revision")
            if is_unknown(ns) or is_unknown(rev):
                self.unknown(f"{r.name}.revision")
            elif isinstance(ns, str) and isinstance(rev, str):
                out.append(NamespaceUse(self.cluster_of(r), ns, rev, r))
        for s in self.stacks:
            if any(is_unknown(s.props.get(k)) for k in ("namespaces", "rollback", "phase")):
                self.unknown(f"{s.name}.namespaces")  # the map it cannot see is not an empty map
                continue
            for ns, rev in effective_map(s.props).items():
                out.append(NamespaceUse(None, ns, rev, s))
        return out

    def gateway_uses(self) -> list[tuple[Res, str, str | None]]:
        out = []
        for r in self.of(*DEPLOYMENT_TYPES):
            for path in (("spec", "template", "metadata", "labels", REV_LABEL), ("metadata", "labels", REV_LABEL)):
                value = dig(r.props, *path)
                if is_unknown(value):
                    self.unknown(f"{r.name}.{'.'.join(path)}")
                elif isinstance(value, str):
                    out.append((r, value, self.cluster_of(r)))
        for r in self.of(GATEWAY_REVISION):
            value = r.props.get("revision")
            if is_unknown(value):
                self.unknown(f"{r.name}.revision")
            elif isinstance(value, str):
                out.append((r, value, self.cluster_of(r)))
        return out

    def gates(self, res: Res, check: str) -> list[Res]:
        """Trust gates ``res`` waits for that check ``check`` and require the Mesh CA root, on
        its cluster."""
        cluster = self.cluster_of(res)
        out = []
        for dep in self.closure(res):
            if dep.type != TRUST_GATE:
                continue
            if is_unknown(dep.props.get("check")) or is_unknown(dep.props.get("require")):
                self.unknown(f"{dep.name}.check")
                continue
            require = dep.props.get("require") or []
            gate_cluster = dep.props.get("cluster")
            if dep.props.get("check") == check and MESHCA_ROOT in require and (cluster is None or gate_cluster in (None, cluster)):
                out.append(dep)
        return out


def effective_map(stack_props: Mapping[str, Any]) -> dict[str, str]:
    """A MeshcaStack's namespace map as its pods run it (a rollback returns every namespace)."""
    namespaces = stack_props.get("namespaces")
    if not isinstance(namespaces, Mapping):
        return {}
    mapping = {ns: rev for ns, rev in namespaces.items() if isinstance(rev, str) and not is_unknown(rev)}
    if stack_props.get("rollback") is True:
        back = {"distribute-root": "old", "mesh-ca": "rev1"}.get(stack_props.get("phase"))
        target = dig(stack_props, "revisions", back) if back else None
        if isinstance(target, str):
            return {ns: target for ns in mapping}
    return mapping


def _names(names: Iterable[str]) -> str:
    names = sorted(set(names))
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _stack_rule(body: Callable[[Stack, Callable], None]) -> Callable[[StackValidationArgs, Callable], None]:
    def validate(args: StackValidationArgs, report: Callable) -> None:
        stack = Stack(args.resources)
        body(stack, report)
        if stack.undecided:
            _raise_unknown(stack.undecided[0])

    validate.__name__ = body.__name__
    validate.__doc__ = body.__doc__
    return validate


# ----------------------------------------------------------------------------- stack rules


@_stack_rule
def validate_labels_on_kept_revisions(stack: Stack, report: Callable) -> None:
    """Every namespace label selects a revision the stack declares and keeps on that cluster."""
    declared = stack.declared()
    uses = stack.label_uses() + [u for u in stack.namespace_uses() if u.source.type == NAMESPACE_REVISION]
    # What a cluster installs and removes, worked out once per cluster (it was once per
    # namespace use, each a pass over every Command: quadratic in steps). The stack does not
    # change during the rule; a repeated ask only reported the same undecided values again.
    installed_on: dict[str | None, set[str]] = {}
    removed_on: dict[str | None, set[str]] = {}
    for use in uses:
        subject = f"{use.source.name} ({'revision' if use.source.type == NAMESPACE_REVISION else 'metadata.labels'})"
        if declared is not None and use.revision not in declared:
            _report(
                report,
                MeshcaError(
                    "PolicyLabelUndeclaredRevision",
                    subject,
                    namespace=use.namespace,
                    cluster=use.cluster or "?",
                    revision=use.revision,
                    declared=_names(declared),
                ),
                use.source.urn,
            )
            continue
        if use.cluster not in installed_on:
            installed_on[use.cluster] = stack.installed(use.cluster)
            removed_on[use.cluster] = stack.removed(use.cluster)
        installed = installed_on[use.cluster]
        removed = removed_on[use.cluster]
        if use.revision in installed and use.revision not in removed:
            continue
        if declared is None and use.revision not in removed:
            # Without the stack's components (MeshcaStack, ControlPlaneRevision) the revision
            # running before the migration is installed by nobody here: judge removals only.
            continue
        if use.revision in removed:
            state, action = "removes at this position", f"label the namespace for a revision kept at this position, or keep istiod {use.revision}"
        else:
            state, action = "never installs at this position", f"install {use.revision} first (its phase) or label the namespace for an installed revision"
        _report(
            report,
            MeshcaError(
                "PolicyLabelRevisionNotKept", subject, namespace=use.namespace, cluster=use.cluster or "?", revision=use.revision, state=state, action=action
            ),
            use.source.urn,
        )


@_stack_rule
def validate_no_removal_of_used_revision(stack: Stack, report: Callable) -> None:
    """No control plane is removed while a namespace or a gateway still runs it."""
    uses = stack.namespace_uses()
    gateways = stack.gateway_uses()
    for remover, revision, cluster in stack.removals():
        users = {u.namespace for u in uses if u.revision == revision and (cluster is None or u.cluster in (None, cluster))}
        if users:
            _report(
                report,
                MeshcaError(
                    "PolicyRevisionRemovedWhileUsedByNamespace",
                    remover.name,
                    revision=revision,
                    cluster=cluster or "?",
                    remover=remover.name,
                    namespaces=_names(users),
                ),
                remover.urn,
            )
        for gateway, gw_revision, gw_cluster in gateways:
            if gw_revision == revision and (cluster is None or gw_cluster in (None, cluster)):
                _report(
                    report,
                    MeshcaError(
                        "PolicyRevisionRemovedWhileUsedByGateway",
                        remover.name,
                        revision=revision,
                        cluster=cluster or "?",
                        remover=remover.name,
                        gateway=gateway.name,
                    ),
                    remover.urn,
                )


@_stack_rule
def validate_rev2_after_root_cert_gate(stack: Stack, report: Callable) -> None:
    """REV2 (Mesh CA signing) is installed only after a root-cert gate, with no namespace on
    the old revision."""
    rev2_names = stack.revisions("rev2")
    old = stack.revisions("old")
    on_old = {u.namespace for u in stack.namespace_uses() if u.revision in old or (not old and u.revision == "default")}
    for command, install in stack.installs():
        revision = install.first("revision_name")
        if install.ca != "mesh_ca" and revision not in rev2_names:
            continue
        cluster = stack.cluster_of(command)
        if not stack.gates(command, "root-cert"):
            _report(
                report,
                MeshcaError("PolicyRev2InstallWithoutRootCertGate", command.name, install=command.name, cluster=cluster or "?"),
                command.urn,
            )
        if on_old:
            _report(
                report,
                MeshcaError(
                    "PolicyRev2InstallWhileNamespaceOnOld",
                    command.name,
                    install=command.name,
                    namespaces=_names(on_old),
                    revision=_names(old) or "default",
                ),
                command.urn,
            )


@_stack_rule
def validate_ca_secret_removal(stack: Stack, report: Callable) -> None:
    """The CA secrets go only after a backup of each, a workload-cert gate, and with every
    namespace on REV2."""
    deletions: list[tuple[Res, list[str]]] = []
    for r in stack.of(CA_DELETION):
        argv = r.props.get("argv")
        if is_unknown(argv):
            stack.unknown(f"{r.name}.argv")
            continue
        secrets = ca_secret_deletions([list(argv)]) if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else []
        deletions.append((r, secrets or list(CA_SECRETS)))
    for r in stack.of(COMMAND):
        secrets = ca_secret_deletions(stack.segments(r))
        if secrets:
            deletions.append((r, secrets))
    if not deletions:
        return
    rev2 = stack.revisions("rev2") | {i.first("revision_name") for _, i in stack.installs() if i.ca == "mesh_ca"}
    not_on_rev2 = {u.namespace for u in stack.namespace_uses() if u.revision not in rev2}
    for deletion, secrets in deletions:
        cluster = stack.cluster_of(deletion)
        closure = stack.closure(deletion)
        for secret in secrets:
            backed_up = any(
                d.type == CA_BACKUP and d.props.get("secret") == secret and (cluster is None or d.props.get("cluster") in (None, cluster))
                for d in closure
            )
            if not backed_up:
                _report(
                    report,
                    MeshcaError("PolicyCaDeletionWithoutBackup", deletion.name, deletion=deletion.name, secret=secret, cluster=cluster or "?"),
                    deletion.urn,
                )
        if not stack.gates(deletion, "workload-cert"):
            _report(report, MeshcaError("PolicyCaDeletionWithoutWorkloadGate", deletion.name, deletion=deletion.name, cluster=cluster or "?"), deletion.urn)
        if not_on_rev2:
            _report(
                report,
                MeshcaError(
                    "PolicyCaDeletionWhileNamespaceNotOnRev2",
                    deletion.name,
                    deletion=deletion.name,
                    namespaces=_names(not_on_rev2),
                    rev2=_names(r for r in rev2 if r) or "none installed",
                ),
                deletion.urn,
            )


@_stack_rule
def validate_clusters_in_one_project(stack: Stack, report: Callable) -> None:
    """Every cluster of the mesh is in one Google Cloud project."""
    projects: set[str] = set()
    for s in stack.stacks:
        for cl in s.props.get("clusters") or []:
            if isinstance(cl, Mapping) and isinstance(cl.get("project"), str) and not is_unknown(cl["project"]):
                projects.add(cl["project"])
    for cm in stack.of(CLUSTER_MIGRATION):
        project = cm.props.get("project")
        if isinstance(project, str) and not is_unknown(project):
            projects.add(project)
    if len(projects) > 1:
        subject = stack.stacks[0].name if stack.stacks else "stack"
        urn = stack.stacks[0].urn if stack.stacks else None
        _report(report, MeshcaError("PolicyClustersInSeveralProjects", f"{subject} (clusters)", count=len(projects), projects=_names(projects)), urn)


def validate_batch_share(args: StackValidationArgs, report: Callable) -> None:
    """Advisory: one position moves more than ``maxBatchShare`` of the namespaces."""
    limit = args.get_config().get("maxBatchShare", DEFAULT_MAX_BATCH_SHARE)
    stack = Stack(args.resources)
    for s in stack.stacks:
        batch, total = s.props.get("currentBatch"), s.props.get("totalNamespaces")
        if is_unknown(batch) or is_unknown(total):
            _raise_unknown(f"{s.name}.currentBatch")
        if not isinstance(batch, list) or not isinstance(total, (int, float)) or total <= 0:
            continue
        share = len(batch) / total
        if share > limit:
            _report(
                report,
                MeshcaError(
                    "PolicyBatchShareExceeded",
                    f"{s.name} (currentBatch)",
                    moved=len(batch),
                    total=int(total),
                    share=round(share * 100),
                    limit=round(limit * 100),
                ),
                s.urn,
            )


# ----------------------------------------------------------------------------- resource rules that block a step
#
# The engine runs stack policies only after every step of ``pulumi up`` was applied
# (pulumi/pulumi pkg/resource/deploy/deployment_executor.go: ``ex.stepExec.WaitForCompletion()``,
# then ``ex.stepGen.AnalyzeResources(ctx)``), so a rule that must stop a removal or a deletion
# judges the resource that would do it, on its own inputs, while its step is generated
# (step_generator.go ``sg.analyzeAll(ctx, analyzers, new, inputs, goal)``; a mandatory
# violation outside preview makes it invalid and step generation bails before its step). The
# components state the facts (components/policy_facts.py); a refused component never
# registers, so its children (the delete Commands, the CA secret deletion) never do.

CA_SECRETS_COMPONENT = "meshca:index:CaSecrets"
GATEWAY_KEY = "gateways"


def _facts(args: ResourceValidationArgs, *keys: str) -> dict[str, Any]:
    """The resource's props; an unknown among ``keys`` leaves the rule undecided (preview)."""
    props = plain(args.props)
    for key in keys:
        if is_unknown(props.get(key)):
            _raise_unknown(key)
    return props


def _has_gate(gates: Any, check: str) -> bool:
    return isinstance(gates, list) and any(
        isinstance(g, Mapping) and g.get("check") == check and MESHCA_ROOT in (g.get("require") or []) for g in gates
    )


def validate_control_plane_steps(args: ResourceValidationArgs, report: Callable) -> None:
    """A ControlPlaneRevision neither removes a revision a namespace or a gateway runs after
    this position, nor installs REV2 before a root-cert gate or while a namespace is on the
    old revision."""
    if args.resource_type != CONTROL_PLANE:
        return
    props = _facts(args, "revision", "removed", "installs", "namespaces", GATEWAY_KEY, "installAfter", "revisions")
    revision, cluster = props.get("revision"), props.get("cluster") or "?"
    if not isinstance(revision, str):
        return
    mapping = effective_map(props)
    if props.get("removed") is True:
        users = {ns for ns, rev in mapping.items() if rev == revision}
        if users:
            _report(
                report,
                MeshcaError("PolicyRevisionRemovedWhileUsedByNamespace", args.name, revision=revision, cluster=cluster, remover=args.name, namespaces=_names(users)),
            )
        gateways = props.get(GATEWAY_KEY)
        for gateway, gw_revision in sorted((gateways or {}).items()) if isinstance(gateways, Mapping) else ():
            if gw_revision == revision:
                _report(
                    report,
                    MeshcaError("PolicyRevisionRemovedWhileUsedByGateway", args.name, revision=revision, cluster=cluster, remover=args.name, gateway=gateway),
                )
    rev2 = dig(props, "revisions", "rev2")
    if props.get("installs") is True and (props.get("role") == "rev2" or props.get("ca") == "mesh_ca" or revision == rev2):
        if not _has_gate(props.get("installAfter"), "root-cert"):
            _report(report, MeshcaError("PolicyRev2InstallWithoutRootCertGate", args.name, install=args.name, cluster=cluster))
        old = dig(props, "revisions", "old")
        on_old = {ns for ns, rev in mapping.items() if rev == old}
        if on_old:
            _report(
                report,
                MeshcaError("PolicyRev2InstallWhileNamespaceOnOld", args.name, install=args.name, namespaces=_names(on_old), revision=old),
            )


def validate_namespace_move(args: ResourceValidationArgs, report: Callable) -> None:
    """A NamespaceRevision puts its namespace on a declared revision its cluster keeps."""
    if args.resource_type != NAMESPACE_REVISION:
        return
    props = _facts(args, "revision", "revisions", "controlPlanes", "removes")
    revision, namespace, cluster = props.get("revision"), props.get("namespace"), props.get("cluster") or "?"
    revisions, kept = props.get("revisions"), props.get("controlPlanes")
    if not isinstance(revision, str) or not isinstance(revisions, Mapping) or not isinstance(kept, list):
        return  # a component without the facts (not meshca's): the stack report judges it
    subject = f"{args.name} (revision)"
    declared = {v for v in revisions.values() if isinstance(v, str)}
    if revision not in declared:
        _report(report, MeshcaError("PolicyLabelUndeclaredRevision", subject, namespace=namespace, cluster=cluster, revision=revision, declared=_names(declared)))
    elif revision not in kept:
        if revision in (props.get("removes") or []):
            state, action = "removes at this position", f"label the namespace for a revision kept at this position, or keep istiod {revision}"
        else:
            state, action = "never installs at this position", f"install {revision} first (its phase) or label the namespace for an installed revision"
        _report(report, MeshcaError("PolicyLabelRevisionNotKept", subject, namespace=namespace, cluster=cluster, revision=revision, state=state, action=action))


def validate_ca_secret_deletion(args: ResourceValidationArgs, report: Callable) -> None:
    """The CA secrets go only after a backup of each, a workload-cert gate, and with every
    namespace on REV2: judged on the CaSecrets component (its facts) and on the deletion
    resource itself (the backups it carries)."""
    if args.resource_type == CA_SECRETS_COMPONENT:
        props = _facts(args, "deletes", "backupsBefore", "deletionAfter", "namespaces", "revisions")
        deletes = props.get("deletes")
        if not isinstance(deletes, list) or not deletes:
            return
        cluster = props.get("cluster") or "?"
        backed = props.get("backupsBefore") or []
        for secret in deletes:
            if secret not in backed:
                _report(report, MeshcaError("PolicyCaDeletionWithoutBackup", args.name, deletion=args.name, secret=secret, cluster=cluster))
        if not _has_gate(props.get("deletionAfter"), "workload-cert"):
            _report(report, MeshcaError("PolicyCaDeletionWithoutWorkloadGate", args.name, deletion=args.name, cluster=cluster))
        rev2 = dig(props, "revisions", "rev2")
        not_on_rev2 = {ns for ns, rev in effective_map(props).items() if rev != rev2}
        if not_on_rev2:
            _report(
                report,
                MeshcaError("PolicyCaDeletionWhileNamespaceNotOnRev2", args.name, deletion=args.name, namespaces=_names(not_on_rev2), rev2=rev2 or "none installed"),
            )
    elif args.resource_type == CA_DELETION:
        props = _facts(args, "argv", "backups")
        argv, backups = props.get("argv"), props.get("backups")
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            secrets = ca_secret_deletions([argv]) or list(CA_SECRETS)
        else:
            secrets = list(CA_SECRETS)
        if isinstance(backups, list) and any(is_unknown(b) or (isinstance(b, Mapping) and is_unknown(b.get("secret"))) for b in backups):
            _raise_unknown("backups")
        backed = {b.get("secret") for b in backups or [] if isinstance(b, Mapping)}
        for secret in secrets:
            if secret not in backed:
                _report(
                    report,
                    MeshcaError("PolicyCaDeletionWithoutBackup", _subject(args, "backups"), deletion=args.name, secret=secret, cluster=props.get("cluster") or "?"),
                )


def validate_one_project(args: ResourceValidationArgs, report: Callable) -> None:
    """The MeshcaStack's clusters are all in one Google Cloud project."""
    if args.resource_type != MESHCA_STACK:
        return
    props = _facts(args, "clusters")
    projects = set()
    for cl in props.get("clusters") or []:
        if isinstance(cl, Mapping) and is_unknown(cl.get("project")):
            _raise_unknown("clusters.project")
        if isinstance(cl, Mapping) and isinstance(cl.get("project"), str):
            projects.add(cl["project"])
    if len(projects) > 1:
        _report(report, MeshcaError("PolicyClustersInSeveralProjects", f"{args.name} (clusters)", count=len(projects), projects=_names(projects)))


# ----------------------------------------------------------------------------- the policies

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

revision_names = ResourceValidationPolicy(
    name="revision-names",
    description="Revision names are DNS-1035 labels of at most 56 characters (asmcli --revision_name, istio.io/rev labels, meshca components).",
    validate=validate_revision_names,
    enforcement_level=MANDATORY,
)
one_injection_label = ResourceValidationPolicy(
    name="one-injection-label",
    description="No namespace carries both istio-injection and istio.io/rev.",
    validate=validate_one_injection_label,
    enforcement_level=MANDATORY,
)
asmcli_install_flags = ResourceValidationPolicy(
    name="asmcli-install-flags",
    description="asmcli installs carry their phase's flags: REV1 --ca citadel, ca-migration-citadel and the four CA files; REV2 --ca mesh_ca, ca-migration-meshca and no certificate flag; always --context.",
    validate=validate_asmcli_flags,
    enforcement_level=MANDATORY,
)
no_private_key_material = ResourceValidationPolicy(
    name="no-private-key-material",
    description="No resource input holds a PEM private key or its base64 form (inputs carry paths only).",
    validate=validate_no_private_key,
    enforcement_level=MANDATORY,
)
# Blocking (resource rules: judged on the damaging resource's inputs before its step).
namespace_labels_on_kept_revisions = ResourceValidationPolicy(
    name="namespace-labels-on-kept-revisions",
    description="A namespace is moved only to a revision the stack declares and its cluster keeps (NamespaceRevision).",
    validate=validate_namespace_move,
    enforcement_level=MANDATORY,
)
no_removal_of_used_revision = ResourceValidationPolicy(
    name="no-removal-of-used-revision",
    description="A revision still used by a namespace or a gateway is not removed (ControlPlaneRevision).",
    validate=validate_control_plane_steps,
    enforcement_level=MANDATORY,
)
ca_secret_removal_guarded = ResourceValidationPolicy(
    name="ca-secret-removal-guarded",
    description="The CA secrets are removed only after their backups and the workload-cert gate, with every namespace on REV2 (CaSecrets, CaSecretDeletion).",
    validate=validate_ca_secret_deletion,
    enforcement_level=MANDATORY,
)
clusters_in_one_project = ResourceValidationPolicy(
    name="clusters-in-one-project",
    description="Every cluster of the mesh is in one Google Cloud project (MeshcaStack).",
    validate=validate_one_project,
    enforcement_level=MANDATORY,
)
# After the fact (stack rules: the engine runs them once every step of `up` was applied, so
# they only report, for any resource, Commands included, that the resource rules cannot see).
namespace_labels_report = StackValidationPolicy(
    name="namespace-labels-on-kept-revisions-report",
    description="After the fact: every namespace label points at a revision the stack declares and keeps.",
    validate=validate_labels_on_kept_revisions,
    enforcement_level=ADVISORY,
)
removal_report = StackValidationPolicy(
    name="no-removal-of-used-revision-report",
    description="After the fact: a revision still used by a namespace or a gateway was not removed.",
    validate=validate_no_removal_of_used_revision,
    enforcement_level=ADVISORY,
)
rev2_after_root_cert_gate = StackValidationPolicy(
    name="rev2-after-root-cert-gate-report",
    description="After the fact: REV2 (Mesh CA signing) was installed only after a root-cert gate and with no namespace on the old revision.",
    validate=validate_rev2_after_root_cert_gate,
    enforcement_level=ADVISORY,
)
ca_secret_removal_report = StackValidationPolicy(
    name="ca-secret-removal-guarded-report",
    description="After the fact: the CA secrets were removed only after their backups and the workload-cert gate, with every namespace on REV2.",
    validate=validate_ca_secret_removal,
    enforcement_level=ADVISORY,
)
clusters_report = StackValidationPolicy(
    name="clusters-in-one-project-report",
    description="After the fact: every cluster of the mesh is in one Google Cloud project.",
    validate=validate_clusters_in_one_project,
    enforcement_level=ADVISORY,
)
batch_share = StackValidationPolicy(
    name="batch-share",
    description="One position moves at most a configured share of the namespaces (maxBatchShare, default 0.25).",
    validate=validate_batch_share,
    enforcement_level=ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={"maxBatchShare": {"type": "number", "minimum": 0, "maximum": 1, "default": DEFAULT_MAX_BATCH_SHARE}},
    ),
)
cacerts_unverified = ResourceValidationPolicy(
    name="cacerts-unverified",
    description="A citadel install passes the four CA files only when the program knows no cacerts Secret exists.",
    validate=validate_cacerts_verified,
    enforcement_level=ADVISORY,
)

POLICIES = [
    revision_names,
    one_injection_label,
    asmcli_install_flags,
    no_private_key_material,
    namespace_labels_on_kept_revisions,
    no_removal_of_used_revision,
    ca_secret_removal_guarded,
    clusters_in_one_project,
    namespace_labels_report,
    removal_report,
    rev2_after_root_cert_gate,
    ca_secret_removal_report,
    clusters_report,
    batch_share,
    cacerts_unverified,
]
INITIAL_CONFIG = {"batch-share": {"maxBatchShare": DEFAULT_MAX_BATCH_SHARE}}
# The stack rules that report after the fact (advisory), by name.
AFTER_THE_FACT = tuple(p.name for p in POLICIES if isinstance(p, StackValidationPolicy) and p.name.endswith("-report"))
