"""Who calls whom: the caller/callee pairs whose mTLS is proven after every step.

Modes:
- ``default``: every workload calls the entry workload (the first one, ``api``) of every
  other namespace, in every cluster (the same namespace in another cluster counts as
  another namespace: clusters of one mesh call each other); every gateway calls the entry
  workload of every application namespace;
- ``full``: every workload calls every workload of every other namespace (and gateways as
  in ``default``);
- ``local``: ``default`` without calls between clusters;
- a YAML file: ``edges: [{from: PATTERN, to: PATTERN, clusters: any|same}]`` where a pattern
  is ``[cluster/]namespace/workload`` with shell wildcards, and ``gateways: true|false``.

Edges are recomputed only when the set of workloads changes (a gateway created or deleted).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import MeshcaError
from .mesh import Mesh

MODES = ("default", "full", "local")


@dataclass(frozen=True)
class Rule:
    source: tuple[str, str, str]
    target: tuple[str, str, str]
    same_cluster: bool


@dataclass(frozen=True)
class TrafficSpec:
    mode: str = "default"
    rules: tuple[Rule, ...] = ()
    gateways: bool = True
    origin: str = "default"

    def describe(self) -> str:
        if self.mode != "file":
            return self.mode
        return f"{self.origin} ({len(self.rules)} rules{', gateways' if self.gateways else ''})"


def _pattern(text: str, where: str) -> tuple[str, str, str]:
    parts = str(text).split("/")
    if len(parts) == 2:
        return ("*", parts[0], parts[1])
    if len(parts) == 3:
        return (parts[0], parts[1], parts[2])
    raise MeshcaError("RehearseTrafficInvalid", where, problem=f"'{text}' is not [cluster/]namespace/workload")


def load_traffic(value: str | None) -> TrafficSpec:
    if not value or value in MODES:
        return TrafficSpec(mode=value or "default", origin=value or "default")
    path = Path(value)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MeshcaError("RehearseTrafficInvalid", value, problem=f"cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise MeshcaError("RehearseTrafficInvalid", value, problem=f"not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("edges"), list) or not doc["edges"]:
        raise MeshcaError("RehearseTrafficInvalid", value, problem="expected a mapping with a non-empty 'edges' list")
    rules = []
    for i, e in enumerate(doc["edges"]):
        where = f"{value} edges[{i}]"
        if not isinstance(e, dict) or "from" not in e or "to" not in e:
            raise MeshcaError("RehearseTrafficInvalid", where, problem="each edge needs 'from' and 'to'")
        clusters = e.get("clusters", "any")
        if clusters not in ("any", "same"):
            raise MeshcaError("RehearseTrafficInvalid", where, problem=f"clusters is '{clusters}', not any or same")
        rules.append(Rule(_pattern(e["from"], where), _pattern(e["to"], where), clusters == "same"))
    return TrafficSpec(mode="file", rules=tuple(rules), gateways=bool(doc.get("gateways", True)), origin=str(value))


Ref = tuple[str, str, str]  # (cluster, namespace, workload)


def ref_name(ref: Ref) -> str:
    return "/".join(ref)


def workload_refs(mesh: Mesh, app_namespaces) -> tuple[list[Ref], list[Ref]]:
    """The mesh's application workloads (in ``app_namespaces``) and its gateways, in mesh order."""
    apps: list[Ref] = []
    gateways: list[Ref] = []
    for c in mesh.clusters.values():
        for (ns, name), w in c.workloads.items():
            if w.gateway:
                gateways.append((c.name, ns, name))
            elif ns in app_namespaces:
                apps.append((c.name, ns, name))
    return apps, gateways


@dataclass
class TrafficGraph:
    spec: TrafficSpec
    app_namespaces: tuple[str, ...]
    _key: frozenset = field(default_factory=frozenset)
    _edges: list[tuple[Ref, Ref]] = field(default_factory=list)

    def edges(self, mesh: Mesh) -> list[tuple[Ref, Ref]]:
        apps, gateways = workload_refs(mesh, self.app_namespaces)
        key = frozenset(apps) | frozenset(gateways)
        if key == self._key and self._edges:
            return self._edges
        self._key = key
        self._edges = self._build(apps, sorted(gateways))
        return self._edges

    def check(self, mesh: Mesh) -> None:
        """A file's rule whose ``from`` or ``to`` matches no workload of the rehearsed mesh
        would silently judge no pair (MCA1003), so the rehearsal refuses it before any step."""
        if self.spec.mode != "file":
            return
        apps = [
            (c.name, ns, name)
            for c in mesh.clusters.values()
            for (ns, name), w in c.workloads.items()
            if not w.gateway and ns in self.app_namespaces
        ]
        for i, rule in enumerate(self.spec.rules):
            for side, pattern in (("from", rule.source), ("to", rule.target)):
                if any(all(fnmatch.fnmatchcase(x, p) for x, p in zip(a, pattern)) for a in apps):
                    continue
                raise MeshcaError(
                    "RehearseTrafficMatchesNothing",
                    f"{self.spec.origin} edges[{i}].{side}",
                    pattern="/".join(pattern),
                    clusters=", ".join(sorted({a[0] for a in apps})),
                    namespaces=", ".join(sorted({a[1] for a in apps})),
                    workloads=", ".join(sorted({a[2] for a in apps})),
                )

    def _build(self, apps: list[Ref], gateways: list[Ref]) -> list[tuple[Ref, Ref]]:
        entry: dict[tuple[str, str], Ref] = {}
        for ref in apps:  # creation order: the entry is the namespace's first workload (api)
            entry.setdefault((ref[0], ref[1]), ref)
        apps = sorted(apps)
        spec = self.spec
        out: list[tuple[Ref, Ref]] = []
        if spec.mode in MODES:
            for a in apps:
                for (cl, ns), e in entry.items():
                    if (cl, ns) == (a[0], a[1]) or (spec.mode == "local" and cl != a[0]):
                        continue
                    if spec.mode == "full":
                        out.extend((a, b) for b in apps if (b[0], b[1]) == (cl, ns))
                    else:
                        out.append((a, e))
        else:
            for rule in spec.rules:
                for a in apps:
                    if not all(fnmatch.fnmatchcase(x, p) for x, p in zip(a, rule.source)):
                        continue
                    for b in apps:
                        if a == b or (rule.same_cluster and a[0] != b[0]):
                            continue
                        if all(fnmatch.fnmatchcase(x, p) for x, p in zip(b, rule.target)):
                            out.append((a, b))
        if spec.gateways:
            for g in gateways:
                out.extend((g, e) for e in entry.values())
        return list(dict.fromkeys(out))
