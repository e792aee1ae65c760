"""Stack config: read, coerce and validate, before anything is registered or run.

Two ways in, one result (``StackConfig``):
- ``load_stack_file(path)``: a ``Pulumi.<stack>.yaml`` beside its ``Pulumi.yaml`` (the CLI,
  the rehearsal, the tests);
- ``from_pulumi_config(values, stack, project_dir)``: the engine's config map inside
  ``pulumi preview/up`` (values are strings there, objects JSON-encoded).

Validation collects every problem and raises ``MeshcaErrors`` (one coded line each).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .certs import CaFiles
from .errors import MeshcaError, MeshcaErrors

NS = "meshca"

PHASES = (
    "baseline",
    "distribute-root",
    "distribute-root-done",
    "mesh-ca",
    "mesh-ca-done",
    "old-root-removed",
)
USE_CASES = ("migrate", "upgrade")
PREREQUISITES = ("asmcli", "pulumi")
GATE_SOURCES = ("kube", "istioctl")
ROLLBACK_PHASES = ("distribute-root", "mesh-ca")

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
REVISION_MAX = 56
RESERVED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "istio-system")
INJECTION_LABELS = ("istio-injection", "istio.io/rev")
DEFAULT_GATEWAY_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
PEM_MARK = "-----BEGIN "

# key -> (kind, default). kind: str|bool|int|list[str]|object. Default None means required.
# The simple keys are also declared, with descriptions, in Pulumi.yaml (a test keeps both equal).
_REQUIRED = object()
BATCH_SIZE_DEFAULT = 1
SIMPLE_KEYS: dict[str, tuple[str, Any]] = {
    "useCase": ("str", _REQUIRED),
    "phase": ("str", "baseline"),
    "rollback": ("bool", False),
    "fleetProject": ("str", _REQUIRED),
    "oldRevision": ("str", "default"),
    "rev1": ("str", _REQUIRED),
    "rev2": ("str", _REQUIRED),
    "asmcliPath": ("str", "./asmcli"),
    "asmcliVersion": ("str", "1.19.10-asm.9+config1"),
    "outputDir": ("str", "asm-out/{cluster}/{revision}"),
    "istioctlPath": ("str", ""),
    "customOverlays": ("list[str]", []),
    "extraOptions": ("list[str]", []),
    # Not declared in Pulumi.yaml: the engine merges project defaults into every stack's config,
    # so a declared default would look set beside meshca:batches (MCA1000), and it requires a
    # declared key without a default in every stack (pulumi pkg/workspace/config.go:295-324).
    # The program applies BATCH_SIZE_DEFAULT when neither key is set.
    "batchSize": ("int", None),
    "prerequisites": ("str", "asmcli"),
    "gateSource": ("str", "kube"),
    "gateTimeoutSeconds": ("int", 900),
    "gatePollSeconds": ("int", 15),
    "gateConcurrency": ("int", 16),
    "restartTimeoutSeconds": ("int", 600),
    "backupDir": ("str", "backups"),
    "upstreamStack": ("str", ""),
    "rev2CitadelRoot": ("bool", True),
    "meshcaRoot": ("str", ""),
}
STRUCTURED_KEYS: dict[str, tuple[str, Any]] = {
    "clusters": ("list", _REQUIRED),
    "namespaces": ("map", _REQUIRED),
    "batches": ("list", None),
    "gateways": ("list", []),
    "caFiles": ("map", _REQUIRED),
}
ALL_KEYS = {**SIMPLE_KEYS, **STRUCTURED_KEYS}
RANGES = {
    "batchSize": (1, 1000),
    "gateTimeoutSeconds": (10, 86400),
    "gatePollSeconds": (1, 3600),
    "gateConcurrency": (1, 256),
    "restartTimeoutSeconds": (30, 86400),
}
EXAMPLES = {
    "useCase": "meshca:useCase: migrate",
    "fleetProject": "meshca:fleetProject: my-fleet-project",
    "rev1": "meshca:rev1: asm-11910-9-distribute-root",
    "rev2": "meshca:rev2: asm-11910-9-meshca-ca-migration",
    "clusters": "meshca:clusters: [{name: c1, project: p, location: us-central1, kubeconfig: kubeconfig, context: gke_p_us-central1_c1}]",
    "namespaces": "meshca:namespaces: {bookinfo: default}",
    "caFiles": "meshca:caFiles: {caCert: certs/ca-cert.pem, caKey: certs/ca-key.pem, rootCert: certs/root-cert.pem, certChain: certs/cert-chain.pem}",
}
CLUSTER_FIELDS = ("name", "project", "location", "kubeconfig", "context")
# fleetMembership: the id of the cluster's existing fleet membership (prerequisites: pulumi
# imports it instead of creating one, which fails for a registered cluster).
CLUSTER_OPTIONAL_FIELDS = ("fleetMembership",)
CA_FIELDS = {"caCert": "ca_cert", "caKey": "ca_key", "rootCert": "root_cert", "certChain": "cert_chain"}
GATEWAY_FIELDS = ("namespace", "deployment", "service", "labels", "serviceAccount", "clusters")


@dataclass(frozen=True)
class Cluster:
    name: str
    project: str
    location: str
    kubeconfig: str
    context: str
    fleet_membership: str = ""  # an existing fleet membership id: imported, not created


@dataclass(frozen=True)
class Namespace:
    name: str
    revision: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Gateway:
    namespace: str
    deployment: str
    service: str
    labels: Mapping[str, str]
    service_account: str
    clusters: tuple[str, ...] = ()  # empty: every cluster

    def on(self, cluster: str) -> bool:
        return not self.clusters or cluster in self.clusters


@dataclass(frozen=True)
class Asmcli:
    path: str
    version: str
    output_dir: str
    custom_overlays: tuple[str, ...]
    extra_options: tuple[str, ...]

    def output_dir_for(self, cluster: str, revision: str) -> str:
        return self.output_dir.format(cluster=cluster, revision=revision)

    istioctl_path: str = ""  # meshca:istioctlPath; "" = the istioctl asmcli leaves in the output dir

    def istioctl_for(self, cluster: str, revision: str) -> str:
        """asmcli 1.19.10-asm.9+config1 (asmcli/asmcli lines 4241-4242, 4431 pushd "$OUTPUT_DIR", 4103) links
        ``istioctl`` -> ``istio-${RELEASE}/bin/istioctl`` in its output dir."""
        return self.istioctl_path or f"{self.output_dir_for(cluster, revision)}/istioctl"

    @property
    def istioctl_version(self) -> str:
        """What that istioctl reports: asmcli's RELEASE, its version without ``+configN``
        (asmcli/asmcli line 4227, ``RELEASE="${MAJOR}.${MINOR}.${POINT}-asm.${REV}"``)."""
        return self.version.split("+", 1)[0]


@dataclass(frozen=True)
class GateSettings:
    source: str
    timeout_seconds: int
    poll_seconds: int
    concurrency: int
    meshca_root: str = ""  # meshca:meshcaRoot: the gates' Mesh CA reference PEM ("" = Google's pinned root)


@dataclass(frozen=True)
class StackConfig:
    stack: str
    project_dir: Path
    use_case: str
    phase: str
    rollback: bool
    fleet_project: str
    clusters: tuple[Cluster, ...]
    old_revision: str
    rev1: str
    rev2: str
    asmcli: Asmcli
    ca_files: CaFiles
    namespaces: tuple[Namespace, ...]
    batches: tuple[tuple[str, ...], ...] | None
    batch_size: int
    gateways: tuple[Gateway, ...]
    prerequisites: str
    gates: GateSettings
    restart_timeout_seconds: int
    backup_dir: str
    upstream_stack: str
    rev2_citadel_root: bool = True
    source: str = ""  # the file or "pulumi config" it came from

    @property
    def revisions(self) -> tuple[str, str, str]:
        return (self.old_revision, self.rev1, self.rev2)

    @property
    def namespace_map(self) -> dict[str, str]:
        return {n.name: n.revision for n in self.namespaces}

    @functools.cached_property
    def _namespace_index(self) -> dict[str, Namespace]:
        # Kept in the instance's __dict__ (not a field): equality, replace() and repr ignore it.
        index: dict[str, Namespace] = {}
        for n in self.namespaces:
            index.setdefault(n.name, n)  # the first of a name, as the scan found it
        return index

    def namespace(self, name: str) -> Namespace:
        try:
            return self._namespace_index[name]
        except KeyError:
            raise StopIteration from None  # what the scan raised for an unknown name

    def at(self, phase: str, rollback: bool, namespace_map: Mapping[str, str]) -> "StackConfig":
        """The same stack at another position (what the user would write in the stack file)."""
        return dataclasses.replace(
            self,
            phase=phase,
            rollback=rollback,
            namespaces=tuple(dataclasses.replace(n, revision=namespace_map[n.name]) for n in self.namespaces),
        )


# ----------------------------------------------------------------------------- reading files


def stack_name_from_file(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")) and name.count(".") >= 2:
        return name[len("Pulumi.") :].rsplit(".", 1)[0]
    return path.stem


def shipped_stacks(project_dir: Path) -> list[str]:
    return sorted(
        stack_name_from_file(p)
        for p in project_dir.glob("Pulumi.*.yaml")
        if p.name != "Pulumi.yaml"
    )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MeshcaErrors([MeshcaError("StackFileNotYaml", str(path), reason=exc.strerror or exc)])
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise MeshcaErrors([MeshcaError("StackFileNotYaml", str(path), reason=f"{where}{getattr(exc, 'problem', exc)}")])


def project_defaults(project_dir: Path) -> dict[str, Any]:
    """Defaults declared in Pulumi.yaml's config block (the simple keys)."""
    path = project_dir / "Pulumi.yaml"
    if not path.exists():
        return {}
    doc = _read_yaml(path) or {}
    block = doc.get("config") or {}
    out = {}
    for key, decl in block.items():
        bare = key.split(":", 1)[1] if ":" in key else key
        if isinstance(decl, dict) and "default" in decl:
            out[bare] = decl["default"]
    return out


def _duplicate_keys(path: Path) -> list[tuple[str, str]]:
    """(mapping key path, key) pairs that appear twice: YAML silently keeps the last one."""
    dups: list[tuple[str, str]] = []

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                dups.append((node.start_mark.line, str(key)))
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    except (yaml.YAMLError, OSError):
        return []
    return dups


def load_stack_file(path: Path | str) -> StackConfig:
    """Load and validate ``Pulumi.<stack>.yaml`` with the ``Pulumi.yaml`` beside it."""
    path = Path(path)
    if not path.exists():
        known = ", ".join(shipped_stacks(path.parent)) or "none"
        raise MeshcaErrors([MeshcaError("StackFileMissing", str(path), known=known)])
    project_dir = path.resolve().parent
    if not (project_dir / "Pulumi.yaml").exists():
        raise MeshcaErrors([MeshcaError("ProjectFileMissing", str(path))])
    doc = _read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise MeshcaErrors([MeshcaError("StackFileNotYaml", str(path), reason="no top-level 'config:' mapping")])
    raw: dict[str, Any] = {}
    secure: set[str] = set()
    for key, value in (doc.get("config") or {}).items():
        key = str(key)
        namespace, _, bare = key.partition(":") if ":" in key else (NS, ":", key)
        if namespace != NS:
            continue  # provider config (kubernetes:, gcp:) is not ours to judge
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.add(bare)
        raw[bare] = value
    errors = [
        MeshcaError("RevisionDeclaredTwice", f"{NS}:namespaces.{key}", value=key)
        for _, key in _duplicate_keys(path)
        if key in (raw.get("namespaces") or {})
    ]
    return validate(
        raw,
        stack=stack_name_from_file(path),
        project_dir=project_dir,
        secure=secure,
        source=str(path),
        prior_errors=errors,
    )


def load_stack(project_dir: Path | str, stack: str) -> StackConfig:
    project_dir = Path(project_dir)
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise MeshcaErrors(
            [MeshcaError("StackUnknown", f"--stack {stack}", stack=stack, project_dir=project_dir, known=", ".join(shipped_stacks(project_dir)) or "none")]
        )
    return load_stack_file(path)


def from_pulumi_config(values: Mapping[str, str], stack: str, project_dir: Path | str, secret_keys: set[str] | None = None) -> StackConfig:
    """Build from the engine's config map (``{"meshca:phase": "mesh-ca", ...}``, strings)."""
    raw: dict[str, Any] = {}
    secure = set()
    for key, value in values.items():
        namespace, _, bare = key.partition(":")
        if namespace != NS:
            continue
        raw[bare] = value
        if secret_keys and key in secret_keys:
            secure.add(bare)
    return validate(raw, stack=stack, project_dir=Path(project_dir), secure=secure, source="pulumi config")


# ----------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _coerce(key: str, kind: str, value: Any, errors: list[MeshcaError]) -> Any:
    """Values from the engine are strings; values from YAML are native. Accept both."""
    subject = f"{NS}:{key}"
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        errors.append(MeshcaError("WrongConfigType", subject, expected="a string", got=_type_name(value), example=f"{subject}: value"))
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        errors.append(MeshcaError("WrongConfigType", subject, expected="true or false", got=repr(value), example=f"{subject}: false"))
        return None
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        errors.append(MeshcaError("WrongConfigType", subject, expected="a whole number", got=repr(value), example=f"{subject}: 10"))
        return None
    # structured: engine passes JSON text
    if isinstance(value, str) and kind in ("list", "map", "list[str]"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
    if kind in ("list", "list[str]"):
        if not isinstance(value, list):
            errors.append(MeshcaError("WrongConfigType", subject, expected="a list", got=_type_name(value), example=EXAMPLES.get(key, f"{subject}: []")))
            return None
        if kind == "list[str]":
            bad = [v for v in value if not isinstance(v, str)]
            if bad:
                errors.append(MeshcaError("WrongConfigType", subject, expected="a list of strings", got=f"an item that is {_type_name(bad[0])}", example=f"{subject}: [a, b]"))
                return None
        return value
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(MeshcaError("WrongConfigType", subject, expected="a mapping", got=_type_name(value), example=EXAMPLES.get(key, f"{subject}: {{}}")))
            return None
        return value
    raise AssertionError(kind)


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(ALL_KEYS), n=1)
    return f" (did you mean {NS}:{close[0]}?)" if close else ""


def _check_revision(subject: str, value: str, errors: list[MeshcaError]) -> None:
    if len(value) > REVISION_MAX:
        errors.append(MeshcaError("RevisionNameTooLong", subject, value=value, length=len(value)))
    elif not DNS1035.match(value):
        errors.append(MeshcaError("RevisionNameInvalid", subject, value=value))


def _holds_pem(value: Any) -> bool:
    if isinstance(value, str):
        return PEM_MARK in value
    if isinstance(value, dict):
        return any(_holds_pem(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_pem(v) for v in value)
    return False


def _str_field(obj: dict, key: str, subject: str, errors: list[MeshcaError], required: bool = True, example: str = "") -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            errors.append(MeshcaError("MissingConfigKey", f"{subject}.{key}", what=f"field '{key}'", example=example or f"{key}: value"))
        return None
    if not isinstance(value, str):
        errors.append(MeshcaError("WrongConfigType", f"{subject}.{key}", expected="a string", got=_type_name(value), example=example or f"{key}: value"))
        return None
    return value


_PULUMI_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def upstream_stack_problem(value: str, stack: str, project_dir: Path) -> str:
    """What is wrong with the form of ``meshca:upstreamStack`` ("" = nothing).

    The form is ORG/PROJECT/STACK, the fully qualified name every backend parses (the file
    backend's only organization is ``organization``: pulumi/pulumi
    pkg/backend/diy/store.go:168-174; the program checks that against the backend it runs on),
    PROJECT this project (the upstream is the same program one environment earlier)."""
    parts = value.split("/")
    if len(parts) != 3 or not all(_PULUMI_NAME.match(p) for p in parts):
        return "not ORG/PROJECT/STACK (three names of letters, digits, '_', '.', '-')"
    try:
        project = (_read_yaml(project_dir / "Pulumi.yaml") or {}).get("name") or "meshca"
    except MeshcaErrors:
        project = "meshca"
    if parts[1] != project:
        return f"project '{parts[1]}' is not this project '{project}'"
    if parts[2] == stack:
        return "names this stack itself"
    return ""


def _expand(path: str) -> str:
    return os.path.expanduser(path)


def validate(
    raw: Mapping[str, Any],
    *,
    stack: str,
    project_dir: Path,
    secure: set[str] | None = None,
    source: str = "",
    prior_errors: list[MeshcaError] | None = None,
) -> StackConfig:
    errors: list[MeshcaError] = list(prior_errors or [])
    secure = secure or set()
    defaults = project_defaults(project_dir)

    for key in raw:
        if key not in ALL_KEYS:
            errors.append(MeshcaError("UnknownConfigKey", f"{NS}:{key}", hint=_suggest(key)))
    for key in sorted(secure & set(ALL_KEYS)):
        errors.append(MeshcaError("SecureValueNotAllowed", f"{NS}:{key}"))
    for key, value in raw.items():
        if key in ALL_KEYS and key not in secure and _holds_pem(value):
            errors.append(MeshcaError("ConfigHoldsKeyMaterial", f"{NS}:{key}"))

    values: dict[str, Any] = {}
    for key, (kind, default) in ALL_KEYS.items():
        if key in secure:
            values[key] = None
            continue
        if key in raw and raw[key] is not None:
            values[key] = _coerce(key, kind, raw[key], errors)
        elif key in defaults:
            values[key] = _coerce(key, kind, defaults[key], errors)
        elif default is _REQUIRED:
            errors.append(MeshcaError("MissingConfigKey", f"{NS}:{key}", what="key", example=EXAMPLES.get(key, f"{NS}:{key}: ...")))
            values[key] = None
        else:
            values[key] = default

    for key, allowed in (("useCase", USE_CASES), ("phase", PHASES), ("prerequisites", PREREQUISITES), ("gateSource", GATE_SOURCES)):
        if values.get(key) is not None and values[key] not in allowed:
            errors.append(MeshcaError("ConfigValueNotAllowed", f"{NS}:{key}", value=values[key], allowed=", ".join(allowed)))
            values[key] = None
    for key, (low, high) in RANGES.items():
        if values.get(key) is not None and not low <= values[key] <= high:
            errors.append(MeshcaError("ValueOutOfRange", f"{NS}:{key}", value=values[key], low=low, high=high))

    # Revisions ---------------------------------------------------------------------------
    use_case = values.get("useCase")
    old = values.get("oldRevision")
    for key in ("rev1", "rev2", "oldRevision"):
        if values.get(key) is not None:
            _check_revision(f"{NS}:{key}", values[key], errors)
    if use_case == "migrate" and old is not None and old != "default":
        errors.append(MeshcaError("MigrateOldRevisionNotDefault", f"{NS}:oldRevision", value=old))
    if use_case == "upgrade" and old == "default":
        errors.append(MeshcaError("UpgradeOldRevisionIsDefault", f"{NS}:oldRevision"))
    names = {"oldRevision": old, "rev1": values.get("rev1"), "rev2": values.get("rev2")}
    seen: dict[str, str] = {}
    for key, value in names.items():
        if value is None:
            continue
        if value in seen:
            errors.append(MeshcaError("RevisionNamesNotDistinct", f"{NS}:{key}", value=value, other=f"{NS}:{seen[value]}"))
        else:
            seen[value] = key
    # Names count as declared even when malformed: a namespace on a badly named rev1 is one
    # problem (the name), reported once.
    declared = [v for v in names.values() if v]

    # Clusters ----------------------------------------------------------------------------
    clusters: list[Cluster] = []
    if values.get("clusters") is not None:
        if not values["clusters"]:
            errors.append(MeshcaError("EmptyClusterList", f"{NS}:clusters"))
        for i, item in enumerate(values["clusters"]):
            subject = f"{NS}:clusters[{i}]"
            if not isinstance(item, dict):
                errors.append(MeshcaError("WrongConfigType", subject, expected="a mapping", got=_type_name(item), example=EXAMPLES["clusters"]))
                continue
            for extra in sorted(set(item) - set(CLUSTER_FIELDS) - set(CLUSTER_OPTIONAL_FIELDS)):
                errors.append(MeshcaError("UnknownConfigKey", f"{subject}.{extra}", hint=f" (cluster fields: {', '.join(CLUSTER_FIELDS + CLUSTER_OPTIONAL_FIELDS)})"))
            fields = {f: _str_field(item, f, subject, errors) for f in CLUSTER_FIELDS}
            membership = _str_field(item, "fleetMembership", subject, errors, required=False) or ""
            if all(fields.values()):
                clusters.append(Cluster(fields["name"], fields["project"], fields["location"], _expand(fields["kubeconfig"]), fields["context"], membership))
        for attr in ("name", "context"):
            counts: dict[str, int] = {}
            for c in clusters:
                counts[getattr(c, attr)] = counts.get(getattr(c, attr), 0) + 1
            for value, n in counts.items():
                if n > 1:
                    errors.append(MeshcaError("DuplicateCluster", f"{NS}:clusters", field=attr, value=value))
        projects = sorted({c.project for c in clusters})
        if len(projects) > 1:
            errors.append(MeshcaError("ClustersInSeveralProjects", f"{NS}:clusters", count=len(projects), projects=", ".join(projects)))

    # Namespaces --------------------------------------------------------------------------
    namespaces: list[Namespace] = []
    if values.get("namespaces") is not None:
        for ns_name, entry in values["namespaces"].items():
            ns_name = str(ns_name)
            subject = f"{NS}:namespaces.{ns_name}"
            if ns_name in RESERVED_NAMESPACES:
                errors.append(MeshcaError("ReservedNamespace", subject, value=ns_name))
                continue
            if len(ns_name) > 63 or not DNS1123.match(ns_name):
                errors.append(MeshcaError("NamespaceNameInvalid", subject, value=ns_name))
                continue
            labels: dict[str, str] = {}
            if isinstance(entry, dict):
                for extra in sorted(set(entry) - {"revision", "labels"}):
                    errors.append(MeshcaError("UnknownConfigKey", f"{subject}.{extra}", hint=" (namespace fields: revision, labels)"))
                revision = _str_field(entry, "revision", subject, errors, example=f"{ns_name}: {{revision: {old or 'default'}}}")
                raw_labels = entry.get("labels") or {}
                if not isinstance(raw_labels, dict):
                    errors.append(MeshcaError("WrongConfigType", f"{subject}.labels", expected="a mapping", got=_type_name(raw_labels), example="labels: {team: payments}"))
                    raw_labels = {}
                for lk, lv in raw_labels.items():
                    if lk in INJECTION_LABELS:
                        errors.append(MeshcaError("BothInjectionLabels", f"{subject}.labels.{lk}", label=lk))
                    elif not LABEL_KEY.match(str(lk)) or not isinstance(lv, str) or len(lv) > 63 or not LABEL_VALUE.match(lv):
                        errors.append(MeshcaError("NamespaceLabelInvalid", f"{subject}.labels.{lk}", value=repr(lv)))
                    else:
                        labels[str(lk)] = lv
            elif isinstance(entry, str):
                revision = entry
            else:
                errors.append(MeshcaError("WrongConfigType", subject, expected="a revision name or {revision, labels}", got=_type_name(entry), example=f"{ns_name}: {old or 'default'}"))
                continue
            if revision is None:
                continue
            if declared and revision not in declared:
                errors.append(MeshcaError("NamespaceOnUndeclaredRevision", subject, value=revision, declared=", ".join(declared)))
                continue
            namespaces.append(Namespace(ns_name, revision, labels))

    # Batches -----------------------------------------------------------------------------
    batches: tuple[tuple[str, ...], ...] | None = None
    if values.get("batches") is not None:
        known = [n.name for n in namespaces]
        listed: list[str] = []
        ok = True
        for i, batch in enumerate(values["batches"]):
            if not isinstance(batch, list) or not batch or not all(isinstance(b, str) for b in batch):
                errors.append(MeshcaError("WrongConfigType", f"{NS}:batches[{i}]", expected="a non-empty list of namespace names", got=_type_name(batch), example="meshca:batches: [[frontend], [cart, checkout]]"))
                ok = False
                continue
            for ns_name in batch:
                if ns_name not in values.get("namespaces", {}) and ns_name not in known:
                    errors.append(MeshcaError("BatchUnknownNamespace", f"{NS}:batches[{i}]", value=ns_name))
                    ok = False
                listed.append(ns_name)
        if ok:
            dup = sorted({n for n in listed if listed.count(n) > 1})
            missing = [n for n in known if n not in listed]
            if dup:
                errors.append(MeshcaError("BatchesIncomplete", f"{NS}:batches", problem=f"listed more than once: {', '.join(dup)}"))
            elif missing:
                errors.append(MeshcaError("BatchesIncomplete", f"{NS}:batches", problem=f"not in any batch: {', '.join(missing)}"))
            else:
                batches = tuple(tuple(b) for b in values["batches"])

    if values.get("batches") is not None and values.get("batchSize") is not None:
        # Both set: batchSize was silently ignored; refuse rather than guess which one was meant.
        errors.append(MeshcaError("BatchesAndBatchSize", f"{NS}:batchSize", size=values["batchSize"]))

    # Gateways ----------------------------------------------------------------------------
    gateways: list[Gateway] = []
    for i, item in enumerate(values.get("gateways") or []):
        subject = f"{NS}:gateways[{i}]"
        if not isinstance(item, dict):
            errors.append(MeshcaError("WrongConfigType", subject, expected="a mapping", got=_type_name(item), example="{namespace: istio-system, deployment: istio-ingressgateway, service: istio-ingressgateway}"))
            continue
        for extra in sorted(set(item) - set(GATEWAY_FIELDS)):
            errors.append(MeshcaError("UnknownConfigKey", f"{subject}.{extra}", hint=f" (gateway fields: {', '.join(GATEWAY_FIELDS)})"))
        namespace = _str_field(item, "namespace", subject, errors, example="namespace: istio-system")
        deployment = _str_field(item, "deployment", subject, errors, example="deployment: istio-ingressgateway")
        service = _str_field(item, "service", subject, errors, example="service: istio-ingressgateway")
        labels = item.get("labels", DEFAULT_GATEWAY_LABELS)
        gw_clusters = item.get("clusters") or []
        if deployment and (not DNS1123.match(deployment) or len(f"{deployment}-{values.get('rev1')}") > 253):
            canary = f"{deployment}-{values.get('rev1')}"
            errors.append(MeshcaError("GatewayDeploymentInvalid", f"{subject}.deployment", value=deployment, canary=canary))
            continue
        service_account = item.get("serviceAccount", f"{deployment}-service-account" if deployment else None)
        if not isinstance(service_account, str) or not service_account or not DNS1123.match(service_account):
            errors.append(MeshcaError("GatewayServiceAccountInvalid", f"{subject}.serviceAccount", value=repr(service_account)))
            continue
        if not isinstance(labels, dict) or "app" not in labels or not all(isinstance(v, str) for v in labels.values()):
            errors.append(MeshcaError("GatewaySelectorInvalid", f"{subject}.labels"))
            continue
        if any(k in INJECTION_LABELS for k in labels):
            errors.append(MeshcaError("GatewaySelectorNamesRevision", f"{subject}.labels", label=next(k for k in labels if k in INJECTION_LABELS)))
            continue
        if not isinstance(gw_clusters, list) or any(c not in {cl.name for cl in clusters} for c in gw_clusters):
            unknown = next((str(cl) for cl in gw_clusters if cl not in {c.name for c in clusters}), repr(gw_clusters)) if isinstance(gw_clusters, list) else repr(gw_clusters)
            errors.append(MeshcaError("GatewayClusterUnknown", f"{subject}.clusters", value=unknown))
            continue
        if namespace and deployment and service:
            if any(g.namespace == namespace and g.deployment == deployment for g in gateways):
                errors.append(MeshcaError("GatewayDeclaredTwice", subject, value=f"{namespace}/{deployment}"))
                continue
            gateways.append(Gateway(namespace, deployment, service, dict(labels), service_account, tuple(gw_clusters)))

    # CA files ----------------------------------------------------------------------------
    ca_files = None
    if values.get("caFiles") is not None:
        files = values["caFiles"]
        for extra in sorted(set(files) - set(CA_FIELDS)):
            errors.append(MeshcaError("UnknownConfigKey", f"{NS}:caFiles.{extra}", hint=f" (fields: {', '.join(CA_FIELDS)})"))
        paths = {}
        for fld, role in CA_FIELDS.items():
            value = _str_field(files, fld, f"{NS}:caFiles", errors, example=f"{fld}: certs/{role.replace('_', '-')}.pem (the CA the mesh trusts today)")
            if value is not None:
                paths[role] = value
        if len(paths) == 4:
            resolved = {role: (project_dir / _expand(p)) for role, p in paths.items()}
            ca_files = CaFiles(display=paths, **resolved)

    for option in values.get("extraOptions") or ():
        if option in ("ca-migration-citadel", "ca-migration-meshca"):
            # Each revision gets exactly its own phase's option; an extra one would give
            # REV1 the Mesh CA option or REV2 the Citadel one.
            errors.append(MeshcaError("MigrationOptionNotExtra", f"{NS}:extraOptions", value=option))
    overlays = tuple(values.get("customOverlays") or ())
    for i, overlay in enumerate(overlays):
        if not (project_dir / _expand(overlay)).exists():
            errors.append(MeshcaError("OverlayFileMissing", overlay))
        elif _sets_ca_certificates(project_dir / _expand(overlay)):
            errors.append(MeshcaError("CustomOverlaySetsCaCertificates", overlay))

    meshca_root = values.get("meshcaRoot")
    if isinstance(meshca_root, str) and meshca_root and not (project_dir / _expand(meshca_root)).is_file():
        errors.append(MeshcaError("MeshcaRootFileMissing", f"{NS}:meshcaRoot", value=meshca_root))

    upstream = values.get("upstreamStack")
    if isinstance(upstream, str) and upstream:
        problem = upstream_stack_problem(upstream, stack, project_dir)
        if problem:
            errors.append(MeshcaError("UpstreamStackForm", f"{NS}:upstreamStack", value=upstream, problem=problem))

    # Phase and namespace map -------------------------------------------------------------
    phase = values.get("phase")
    rollback = values.get("rollback")
    rev1, rev2 = values.get("rev1"), values.get("rev2")
    if phase and old and rev1 and rev2:
        errors.extend(phase_contradictions(phase, {n.name: n.revision for n in namespaces}, old, rev1, rev2))
        if rollback and phase not in ROLLBACK_PHASES:
            why = {
                "baseline": "nothing has been installed yet",
                "distribute-root-done": "phase A finished and the old control plane is gone",
                "mesh-ca-done": "phase B finished and REV1 is gone",
                "old-root-removed": "the old CA secrets are deleted",
            }[phase]
            errors.append(MeshcaError("RollbackNotAvailable", f"{NS}:rollback", phase=phase, why=why))

    if errors:
        raise MeshcaErrors(errors)

    if ca_files is not None:
        from .certs import verify_ca_files

        _, cert_errors = verify_ca_files(ca_files)
        if cert_errors:
            raise MeshcaErrors(cert_errors)

    return StackConfig(
        stack=stack,
        project_dir=project_dir,
        use_case=use_case,
        phase=phase,
        rollback=bool(rollback),
        fleet_project=values["fleetProject"],
        clusters=tuple(clusters),
        old_revision=old,
        rev1=rev1,
        rev2=rev2,
        asmcli=Asmcli(
            path=values["asmcliPath"],
            version=values["asmcliVersion"],
            output_dir=values["outputDir"],
            custom_overlays=overlays,
            extra_options=tuple(values.get("extraOptions") or ()),
            istioctl_path=values["istioctlPath"],
        ),
        ca_files=ca_files,
        namespaces=tuple(namespaces),
        batches=batches,
        batch_size=values["batchSize"] if values.get("batchSize") is not None else BATCH_SIZE_DEFAULT,
        gateways=tuple(gateways),
        prerequisites=values["prerequisites"],
        gates=GateSettings(
            source=values["gateSource"],
            timeout_seconds=values["gateTimeoutSeconds"],
            poll_seconds=values["gatePollSeconds"],
            concurrency=values["gateConcurrency"],
            meshca_root=values["meshcaRoot"] or "",
        ),
        restart_timeout_seconds=values["restartTimeoutSeconds"],
        backup_dir=values["backupDir"],
        upstream_stack=values["upstreamStack"] or "",
        rev2_citadel_root=values["rev2CitadelRoot"],
        source=source,
    )


def _sets_ca_certificates(path: Path) -> bool:
    """Does an IstioOperator overlay set ``spec.meshConfig.caCertificates``? (issue 9 finding 14)

    istioctl 1.19 layers the ``-f`` files asmcli passes (each overlay its own ``-f``) with a
    strategic merge whose meshConfig schema has no ``caCertificates`` (istio/istio release-1.19
    ``operator/pkg/util/merge_iop.go`` lines 134-154): a list set by two files fails the merge
    ("unable to find api field in struct meshConfig for the json field caCertificates"). REV1's
    ``ca-migration-citadel`` sets one, and REV2's Citadel-root overlay another."""
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # asmcli reports an unreadable overlay itself
    for doc in docs:
        spec = doc.get("spec") if isinstance(doc, dict) else None
        mesh = spec.get("meshConfig") if isinstance(spec, dict) else None
        if isinstance(mesh, dict) and "caCertificates" in mesh:
            return True
    return False


def phase_contradictions(phase: str, namespace_map: Mapping[str, str], old: str, rev1: str, rev2: str) -> list[MeshcaError]:
    """Every namespace whose revision the phase rules out (one coded error each)."""
    allowed = {
        "baseline": {old},
        "distribute-root": {old, rev1},
        "distribute-root-done": {rev1},
        "mesh-ca": {rev1, rev2},
        "mesh-ca-done": {rev2},
        "old-root-removed": {rev2},
    }[phase]
    errors = []
    for ns_name, revision in namespace_map.items():
        if revision in allowed:
            continue
        why, action = _contradiction(phase, revision, old, rev1, rev2, ns_name)
        errors.append(
            MeshcaError("PhaseContradictsNamespaces", f"{NS}:phase", phase=phase, namespace=ns_name, revision=revision, why=why, action=action)
        )
    return errors


def _contradiction(phase: str, revision: str, old: str, rev1: str, rev2: str, ns_name: str) -> tuple[str, str]:
    if phase == "baseline":
        return ("baseline means no namespace has moved", f"set meshca:phase to distribute-root, or map {ns_name} back to {old}")
    if phase == "distribute-root":
        return (
            "REV2 is installed only in phase mesh-ca, after the Mesh CA root reached every proxy",
            f"map {ns_name} to {rev1} or {old}",
        )
    if phase == "distribute-root-done":
        return ("phase A finishes only when every namespace is on REV1", f"move {ns_name} to {rev1} first (phase distribute-root)")
    if phase == "mesh-ca" and revision == old:
        return (
            "Mesh CA signing starts only after every proxy trusts both roots; a proxy on the old revision trusts Citadel only",
            f"finish phase A first: move {ns_name} to {rev1}, restart it and pass the root-cert gate (phase distribute-root)",
        )
    if phase == "mesh-ca-done":
        return ("phase B finishes only when every namespace is on REV2", f"move {ns_name} to {rev2} first (phase mesh-ca)")
    if phase == "old-root-removed":
        return (
            "deleting the CA secrets removes the Citadel root that its workloads' certificates chain to",
            f"move {ns_name} to {rev2} and finish phase B (mesh-ca-done) first",
        )
    return ("the phase does not allow this revision", f"map {ns_name} to a revision of phase {phase}")
