"""Promotion: move the next stack to the position the previous one finished, and no further.

``meshca promote --from dev --to staging --evidence dev-outputs.json`` copies the phase and
the namespace moves of ``Pulumi.dev.yaml`` into ``Pulumi.staging.yaml`` BY ROLE: a namespace
on dev's old / rev1 / rev2 revision goes to staging's old / rev1 / rev2 revision name. The
target's rollback stays false. The file is rewritten with a ruamel.yaml round trip, so its
comments, key order and layout stay as they were; only the phase and the namespaces' revisions
change. The result is validated as a stack file before it is written.

It refuses (one coded MCA07xx line each) unless the evidence, the source stack's outputs as
printed by ``pulumi stack output --json``, shows the source finished that position:

- missing evidence (no --evidence, or no such file), unreadable evidence (not that JSON);
- foreign evidence (another stack's outputs, or a gate of another stack);
- stale evidence (another namespace map, phase or rollback than the source stack file says,
  or a gate result certifying another map or phase than the position's gate);
- a gate of the position without a result, or whose result did not pass.

The stack outputs it reads (exported by components/program.py): ``stack, useCase, phase,
rollback, namespaces, namespaceRoles, namespaceDigest, position, gates`` with ``gates`` as
``{"<cluster>/<gateId>": {check, passed, namespaceDigest, stack, phase, checkedAt}}``.

It also refuses promoting into a target whose namespaces differ from the source's, a target
that is not the source's downstream (``meshca:upstreamStack``), a source or target that is
rolling back, a target already ahead of the source, and a promotion that would skip a phase.

``upstream_refusals(config, upstream_outputs)`` is the same order seen from the downstream
stack's program: this stack may not run ahead of its upstream (compared by role).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import plan as planmod
from .config import NS, PHASES, StackConfig, load_stack, validate
from .errors import MeshcaError, MeshcaErrors, warn

ROLES = ("old", "rev1", "rev2")
RANK = {role: i for i, role in enumerate(ROLES)}
REQUIRED_OUTPUTS = ("stack", "phase", "rollback", "namespaces", "namespaceDigest", "gates")


# ----------------------------------------------------------------------------- roles


def role_of(config: StackConfig, revision: str) -> str:
    return {config.old_revision: "old", config.rev1: "rev1", config.rev2: "rev2"}[revision]


def roles(config: StackConfig) -> dict[str, str]:
    return {ns: role_of(config, rev) for ns, rev in config.namespace_map.items()}


def revision_for(config: StackConfig, role: str) -> str:
    return {"old": config.old_revision, "rev1": config.rev1, "rev2": config.rev2}[role]


def promoted_map(source: StackConfig, target: StackConfig) -> dict[str, str]:
    """The target's namespace map with every namespace on the role it has in the source."""
    source_roles = roles(source)
    return {ns: revision_for(target, source_roles[ns]) for ns in target.namespace_map}


def _stack_name(value: Any) -> str:
    """``org/project/dev`` and ``dev`` both name stack ``dev``."""
    return str(value).rsplit("/", 1)[-1]


def _position(config: StackConfig) -> str:
    moved = {r: sorted(ns for ns, role in roles(config).items() if role == r) for r in ROLES}
    parts = [f"{len(moved[r])} on {r}" for r in ROLES if moved[r]]
    return f"phase {config.phase}, {', '.join(parts) or 'no namespaces'}"


# ----------------------------------------------------------------------------- evidence


def read_evidence(path: Path | None, source: str) -> dict[str, Any]:
    """The source stack's outputs from ``pulumi stack output --json``."""
    if path is None:
        raise MeshcaErrors([MeshcaError("PromoteEvidenceMissing", "--evidence", source=source)])
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MeshcaErrors([MeshcaError("PromoteEvidenceMissing", str(path), source=source)])
    except OSError as exc:
        raise MeshcaErrors([MeshcaError("PromoteEvidenceUnreadable", str(path), reason=exc.strerror or exc, source=source)])
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MeshcaErrors([MeshcaError("PromoteEvidenceUnreadable", str(path), reason=f"not JSON (line {exc.lineno}: {exc.msg})", source=source)])
    if not isinstance(doc, dict):
        raise MeshcaErrors([MeshcaError("PromoteEvidenceUnreadable", str(path), reason="not a JSON object of stack outputs", source=source)])
    return doc


def evidence_refusals(source: StackConfig, evidence: Mapping[str, Any] | None, where: str = "evidence") -> list[MeshcaError]:
    """Why ``evidence`` does not show that ``source`` finished its current position."""
    name = source.stack
    if evidence is None:
        return [MeshcaError("PromoteEvidenceMissing", where, source=name)]
    missing = [k for k in REQUIRED_OUTPUTS if k not in evidence]
    if missing:
        return [MeshcaError("PromoteEvidenceUnreadable", where, reason=f"no output {', '.join(missing)}", source=name)]
    if any(evidence.get(k) == "[secret]" for k in REQUIRED_OUTPUTS):
        return [MeshcaError("PromoteEvidenceUnreadable", where, reason="outputs are hidden as [secret] (print them with --show-secrets)", source=name)]
    if _stack_name(evidence["stack"]) != name:
        return [MeshcaError("PromoteEvidenceForeign", f"{where} stack", got=evidence["stack"], source=name)]
    errors: list[MeshcaError] = []
    if evidence["phase"] != source.phase or bool(evidence["rollback"]) != source.rollback:
        got = f"{evidence['phase']}{' (rollback)' if evidence['rollback'] else ''}"
        want = f"{source.phase}{' (rollback)' if source.rollback else ''}"
        errors.append(MeshcaError("PromoteEvidenceStalePhase", f"{where} phase", got=got, want=want, source=name))
    digest = planmod.namespace_digest(name, source.namespace_map)
    shown = evidence["namespaces"] if isinstance(evidence["namespaces"], Mapping) else {}
    if evidence["namespaceDigest"] != digest or dict(shown) != source.namespace_map:
        differ = sorted(ns for ns in set(shown) | set(source.namespace_map) if shown.get(ns) != source.namespace_map.get(ns))
        errors.append(
            MeshcaError(
                "PromoteEvidenceStaleMap",
                f"{where} namespaces",
                got=str(evidence["namespaceDigest"])[:12],
                want=digest[:12],
                differ=("differs for " + ", ".join(differ[:6])) if differ else "same map, another digest",
                source=name,
            )
        )
    if errors:
        return errors
    gates = evidence["gates"] if isinstance(evidence["gates"], Mapping) else {}
    plan = planmod.build(source)
    for cp in plan.clusters:
        for step in cp.steps:
            if not step.is_gate:
                continue
            key = f"{cp.cluster.name}/{step.id}"
            result = gates.get(key)
            subject = f"{where} gates.{key}"
            if not isinstance(result, Mapping):
                errors.append(MeshcaError("PromoteGateMissing", subject, gate=key, source=name))
                continue
            if _stack_name(result.get("stack")) != name:
                errors.append(MeshcaError("PromoteGateForeign", subject, gate=key, got=result.get("stack"), source=name))
                continue
            want_digest = step.params["namespaceDigest"]
            if result.get("namespaceDigest") != want_digest or result.get("phase") != step.phase or result.get("check") != step.params["check"]:
                got = f"{result.get('check')} in phase {result.get('phase')} for map {str(result.get('namespaceDigest'))[:12]}..."
                want = f"{step.params['check']} in phase {step.phase} for map {want_digest[:12]}..."
                errors.append(MeshcaError("PromoteGateStale", subject, gate=key, got=got, want=want, source=name))
                continue
            if result.get("passed") is not True:
                errors.append(MeshcaError("PromoteGateFailed", subject, gate=key, check=step.params["check"], passed=result.get("passed"), source=name))
    return errors


# ----------------------------------------------------------------------------- order


def order_refusals(source: StackConfig, target: StackConfig) -> list[MeshcaError]:
    """Why ``target`` may not take ``source``'s position (evidence aside)."""
    errors: list[MeshcaError] = []
    if target.upstream_stack and _stack_name(target.upstream_stack) != source.stack:
        errors.append(MeshcaError("PromoteNotUpstream", f"{target.source} {NS}:upstreamStack", target=target.stack, upstream=target.upstream_stack, source=source.stack))
    if source.rollback:
        errors.append(MeshcaError("PromoteSourceRollingBack", f"{source.source} {NS}:rollback", source=source.stack, phase=source.phase))
    if target.rollback:
        errors.append(MeshcaError("PromoteTargetRollingBack", f"{target.source} {NS}:rollback", target=target.stack, phase=target.phase))
    only_source = sorted(set(source.namespace_map) - set(target.namespace_map))
    only_target = sorted(set(target.namespace_map) - set(source.namespace_map))
    if only_source or only_target:
        detail = "; ".join(
            part
            for part in (
                f"only in {source.stack}: {', '.join(only_source)}" if only_source else "",
                f"only in {target.stack}: {', '.join(only_target)}" if only_target else "",
            )
            if part
        )
        errors.append(MeshcaError("PromoteNamespacesDiffer", f"{target.source} {NS}:namespaces", detail=detail))
        return errors
    s, t = PHASES.index(source.phase), PHASES.index(target.phase)
    source_roles, target_roles = roles(source), roles(target)
    ahead = [ns for ns in target_roles if RANK[target_roles[ns]] > RANK[source_roles[ns]]]
    if t > s or (t == s and ahead):
        errors.append(
            MeshcaError("PromoteTargetAhead", f"{target.source} {NS}:phase", target=target.stack, target_at=_position(target), source=source.stack, source_at=_position(source))
        )
    elif s > t + 1:
        errors.append(
            MeshcaError(
                "PromoteSkipsPhase",
                f"{target.source} {NS}:phase",
                target=target.stack,
                target_phase=target.phase,
                source=source.stack,
                source_phase=source.phase,
                skipped=", ".join(PHASES[t + 1 : s]),
                next=PHASES[t + 1],
            )
        )
    elif s == t + 1 and target.phase in ("distribute-root", "mesh-ca"):
        # Finishing a phase: the target must have made every move of it first.
        goal = "rev1" if target.phase == "distribute-root" else "rev2"
        behind = sorted(ns for ns, role in target_roles.items() if role != goal)
        if behind:
            errors.append(
                MeshcaError(
                    "PromoteSkipsPhase",
                    f"{target.source} {NS}:namespaces",
                    target=target.stack,
                    target_phase=target.phase,
                    source=source.stack,
                    source_phase=source.phase,
                    skipped=f"the moves of {', '.join(behind[:6])}{' and more' if len(behind) > 6 else ''} to {goal}",
                    next=f"{target.phase} with every namespace on {goal}",
                )
            )
    return errors


def promotion_refusals(source: StackConfig, target: StackConfig, evidence: Mapping[str, Any] | None, where: str = "evidence") -> list[MeshcaError]:
    if source.stack == target.stack:
        return [MeshcaError("PromoteSameStack", "--to", stack=source.stack)]
    return order_refusals(source, target) + evidence_refusals(source, evidence, where)


# ----------------------------------------------------------------------------- the stack file


def _round_trip():
    from ruamel.yaml import YAML

    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _key(config_map: Mapping[str, Any], bare: str) -> str | None:
    for key in (f"{NS}:{bare}", bare):
        if key in config_map:
            return key
    return None


def rewrite(text: str, phase: str, namespace_map: Mapping[str, str]) -> str:
    """The stack file text with ``phase`` and the namespaces' revisions replaced, nothing else."""
    rt = _round_trip()
    doc = rt.load(text)
    config = doc["config"]
    phase_key = _key(config, "phase")
    if phase_key is not None:
        config[phase_key] = phase
    else:
        after = _key(config, "useCase")
        position = list(config).index(after) + 1 if after else 0
        config.insert(position, f"{NS}:phase", phase)
    namespaces = config[_key(config, "namespaces")]
    for ns, revision in namespace_map.items():
        entry = namespaces[ns]
        if isinstance(entry, Mapping):
            entry["revision"] = revision
        else:
            namespaces[ns] = revision
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def validate_text(text: str, path: Path, stack: str) -> StackConfig:
    """Validate stack file text as ``load_stack_file`` would validate the file."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MeshcaErrors([MeshcaError("StackFileNotYaml", str(path), reason=exc)])
    raw: dict[str, Any] = {}
    secure: set[str] = set()
    for key, value in ((doc or {}).get("config") or {}).items():
        namespace, _, bare = str(key).partition(":") if ":" in str(key) else (NS, ":", str(key))
        if namespace != NS:
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.add(bare)
        raw[bare] = value
    return validate(raw, stack=stack, project_dir=path.resolve().parent, secure=secure, source=str(path))


def write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def promote(project_dir: Path, source_name: str, target_name: str, evidence: Mapping[str, Any] | None, *, write: bool = True, where: str = "evidence") -> tuple[StackConfig, StackConfig, str]:
    """Check and (with ``write``) rewrite the target stack file. Returns (source, promoted
    target, new text); raises MeshcaErrors with every refusal."""
    if source_name == target_name:
        raise MeshcaErrors([MeshcaError("PromoteSameStack", "--to", stack=source_name)])
    source = load_stack(project_dir, source_name)
    target = load_stack(project_dir, target_name)
    errors = promotion_refusals(source, target, evidence, where)
    if errors:
        raise MeshcaErrors(errors)
    path = Path(target.source)
    text = path.read_text(encoding="utf-8")
    new_text = rewrite(text, source.phase, promoted_map(source, target))
    promoted = validate_text(new_text, path, target.stack)
    if write and new_text != text:
        write_atomically(path, new_text)
    return source, promoted, new_text


# ----------------------------------------------------------------------------- upstream order


def upstream_refusals(config: StackConfig, upstream_outputs: Mapping[str, Any] | None) -> list[MeshcaError]:
    """Why ``config`` runs ahead of its upstream stack, whose outputs are given (as read
    through a StackReference). Rolling back is never running ahead."""
    upstream = config.upstream_stack or "upstream"
    subject = f"{NS}:upstreamStack {upstream}"
    outs = upstream_outputs if isinstance(upstream_outputs, Mapping) else {}
    phase = outs.get("phase")
    if phase not in PHASES:
        return [MeshcaError("UpstreamOutputsMissing", subject, upstream=upstream, what="phase")]
    their_roles = outs.get("namespaceRoles")
    if not isinstance(their_roles, Mapping):
        return [MeshcaError("UpstreamOutputsMissing", subject, upstream=upstream, what="namespaceRoles")]
    if config.rollback:
        return []
    mine, theirs = PHASES.index(config.phase), PHASES.index(phase)
    if mine > theirs:
        return [MeshcaError("UpstreamPhaseAhead", f"{NS}:phase", phase=config.phase, upstream=upstream, upstream_phase=phase)]
    if outs.get("rollback") is True and mine == theirs:
        return [MeshcaError("UpstreamRollingBack", f"{NS}:phase", upstream=upstream, upstream_phase=phase, phase=config.phase)]
    if mine < theirs:
        return []
    my_roles = roles(config)
    ahead = sorted(ns for ns, role in my_roles.items() if their_roles.get(ns) in RANK and RANK[role] > RANK[their_roles[ns]])
    if ahead:
        detail = ", ".join(f"{ns} {my_roles[ns]} vs {their_roles[ns]}" for ns in ahead[:6])
        return [MeshcaError("UpstreamNamespaceAhead", f"{NS}:namespaces", namespaces=", ".join(ahead), roles=detail, upstream=upstream)]
    return []


# ----------------------------------------------------------------------------- command


def cmd_promote(args: argparse.Namespace) -> int:
    from .cli import project_dir_default

    project_dir = args.project_dir or project_dir_default()
    if args.source == args.target:
        raise MeshcaErrors([MeshcaError("PromoteSameStack", "--to", stack=args.source)])
    evidence = read_evidence(args.evidence, args.source)
    before = load_stack(project_dir, args.target)
    source, promoted, _ = promote(project_dir, args.source, args.target, evidence, write=not args.dry_run, where=str(args.evidence))
    moved = sorted(ns for ns in promoted.namespace_map if promoted.namespace_map[ns] != before.namespace_map[ns])
    if before.phase == promoted.phase and not moved:
        print(f"{args.target} is already at {source.stack}'s position ({_position(promoted)}); nothing to promote")
        return 0
    verb = "would promote" if args.dry_run else "promoted"
    print(f"{verb} {source.stack} -> {promoted.stack}: phase {before.phase} -> {promoted.phase}")
    for ns in moved:
        print(f"  {ns}: {before.namespace_map[ns]} -> {promoted.namespace_map[ns]}")
    if not args.dry_run:
        print(f"next: pulumi preview --stack {promoted.stack} --policy-pack policy, then pulumi up --stack {promoted.stack}")
    if planmod.locate(promoted) is None:
        off = warn("PositionOffRoute", f"{promoted.source} {NS}:namespaces", moved=", ".join(moved) or "nothing")
        print(off.line(), file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "promote",
        help="copy a stack's finished position (phase and namespace moves, by role) into the next stack's file",
    )
    p.add_argument("--from", dest="source", required=True, metavar="STACK", help="the stack that finished the position (e.g. dev)")
    p.add_argument("--to", dest="target", required=True, metavar="STACK", help="the stack to move (e.g. staging)")
    p.add_argument("--evidence", type=Path, metavar="FILE", help="the source's `pulumi stack output --json` after its pulumi up")
    p.add_argument("--project-dir", type=Path, default=None, help="directory of Pulumi.yaml and the stack files (default: where Pulumi.yaml is)")
    p.add_argument("--dry-run", action="store_true", help="check and print the change, write nothing")
    p.set_defaults(func=cmd_promote)
