"""Which moves between two positions of a stack are safe: old -> new, judged before anything runs.

Pure Python (no Pulumi import), so the transition guard's provider, the CLI and the tests call
the same code. The guard (meshca/providers/phase_guard.py) hands ``judge`` the inputs the
engine recorded at the last ``pulumi up`` (olds) and the inputs of this run (news), both as
plain dicts with camelCase keys:

    stack, useCase, phase, rollback, namespaces {ns: revision}, namespaceDigest,
    revisions {old, rev1, rev2}, evidence [gate result, ...], clusters [name, ...] (optional)

A gate result is ``{gateId, cluster, check, passed, namespaceDigest, stack, phase}``: the
output of a trust gate, bound by ``namespaceDigest`` (``plan.namespace_digest``) to one stack
and one namespace-to-revision map.

What is refused (each with its own MCA065x-MCA066x code, saying what is missing and how to get
there):

- skipping a phase; going back other than by the documented rollback and its return;
- finishing phase A (distribute-root -> distribute-root-done, which removes the old control
  plane) while a namespace is still on the old revision, or without a passed root-cert gate
  certifying the map the move starts from;
- entering phase B (mesh-ca) while a namespace is on the old revision, or without a passed
  root-cert gate for the current map;
- finishing phase B (which removes REV1) while a namespace is still on REV1;
- entering phase C (old-root-removed) while a namespace is not on REV2, or without a passed
  workload-cert gate for the current map;
- a rollback of a phase that has none; a forward move out of a rollback that did not return;
- changing the stack, use case or revision names of a migration under way, or another identity
  key (``identity``: clusters, CA file digests, install overlays and options) after baseline;
- returning straight to a phase after its rollback (its install is gone but stays in the state).

Evidence: a transition is judged on the gate results of the OLD state: entries recorded in the
old inputs, and entries in the new inputs (the program may read them from the stack's own last
outputs). Either way an entry counts only when it is bound to the old state: same stack,
``namespaceDigest`` equal to the digest of the map the move starts from (the old map; during
a rollback, the map the rollback returns to), a phase where such a gate runs, and
``passed: true``. Evidence of another stack (foreign), another map (stale) or another phase is
refused with its own code. When the old inputs list ``clusters``, every cluster needs its own
passed gate.

Unknown values (``UNKNOWN``: what the engine sends in preview for values computed by other
resources): a rule that needs an unknown value is not decided in preview, and ``pulumi up``
runs the check again with known values. A refusal never rests on an unknown: every refusal
returned here follows from known values alone. Unknowns in the old state (never written by
the engine) do not count as evidence.

The guard is created at the first ``pulumi up``. Creating it at baseline or distribute-root
needs nothing; creating it later (a stack adopted in the middle of a migration) is judged on
the new inputs' own evidence, since there is no old state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .config import PHASES, ROLLBACK_PHASES
from .errors import MeshcaError
from .plan import namespace_digest

CHECKS = ("root-of-trust", "root-cert", "workload-cert", "trust-domain")
ROLES = ("old", "rev1", "rev2")


class _Unknown:
    """A value the engine does not know yet (preview). Falsy, equal only to itself."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_Unknown, ())


UNKNOWN = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_unknown(v) for v in value)
    return False


# ----------------------------------------------------------------------------- states


@dataclass(frozen=True)
class Evidence:
    """One gate result. Fields hold UNKNOWN where the engine did not know them."""

    gate_id: Any
    cluster: Any
    check: Any
    passed: Any
    namespace_digest: Any
    stack: Any
    phase: Any

    @classmethod
    def from_props(cls, item: Any) -> "Evidence | None":
        if not isinstance(item, Mapping):
            return None
        return cls(
            gate_id=item.get("gateId"),
            cluster=item.get("cluster"),
            check=item.get("check"),
            passed=item.get("passed"),
            namespace_digest=item.get("namespaceDigest"),
            stack=item.get("stack"),
            phase=item.get("phase"),
        )

    @property
    def known(self) -> bool:
        return not contains_unknown(
            [self.gate_id, self.cluster, self.check, self.passed, self.namespace_digest, self.stack, self.phase]
        )

    def label(self) -> str:
        return f"{self.cluster}/{self.gate_id}"


@dataclass(frozen=True)
class GuardState:
    """The guard's inputs, parsed. Any field may be UNKNOWN (new state in preview)."""

    stack: Any
    use_case: Any
    phase: Any
    rollback: Any
    namespaces: Any  # dict[str, str] | UNKNOWN | None
    namespace_digest: Any
    revisions: Any  # dict[str, str] | UNKNOWN | None
    evidence: Any  # tuple[Evidence, ...] | UNKNOWN
    clusters: Any  # tuple[str, ...] | UNKNOWN | None
    identity: Any = None  # plan.identity(config) | UNKNOWN | None (a state of an older meshca)

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> "GuardState":
        evidence: Any = props.get("evidence")
        if evidence is UNKNOWN:
            pass
        elif isinstance(evidence, (list, tuple)):
            evidence = tuple(e if e is UNKNOWN else Evidence.from_props(e) for e in evidence)
        elif evidence is None:
            evidence = ()
        clusters = props.get("clusters")
        if isinstance(clusters, (list, tuple)):
            clusters = tuple(clusters)
        return cls(
            stack=props.get("stack"),
            use_case=props.get("useCase"),
            phase=props.get("phase"),
            rollback=props.get("rollback", False),
            namespaces=props.get("namespaces"),
            namespace_digest=props.get("namespaceDigest"),
            revisions=props.get("revisions"),
            evidence=evidence,
            clusters=clusters,
            identity=props.get("identity"),
        )

    def revision(self, role: str) -> Any:
        if not isinstance(self.revisions, Mapping):
            return UNKNOWN if self.revisions is UNKNOWN else None
        return self.revisions.get(role, UNKNOWN if contains_unknown(self.revisions) else None)

    def effective_map(self) -> Any:
        """The map the pods run: during a rollback, the map it returns to."""
        if not isinstance(self.namespaces, Mapping) or contains_unknown(self.namespaces):
            return UNKNOWN if contains_unknown(self.namespaces) else None
        if self.rollback is True and self.phase in ROLLBACK_PHASES:
            back = self.revision("old" if self.phase == "distribute-root" else "rev1")
            if not isinstance(back, str):
                return UNKNOWN
            return {ns: back for ns in self.namespaces}
        return dict(self.namespaces)


# ----------------------------------------------------------------------------- shape


def _shape_errors(state: GuardState, which: str) -> list[MeshcaError]:
    """Known values that are not what the guard's inputs must be."""
    errors: list[MeshcaError] = []

    def bad(field: str, expected: str, got: Any) -> None:
        errors.append(MeshcaError("GuardInputInvalid", f"PhaseGuard {which} {field}", field=field, expected=expected, got=_short(got)))

    if not is_unknown(state.stack) and not (isinstance(state.stack, str) and state.stack):
        bad("stack", "the stack name", state.stack)
    if not is_unknown(state.phase) and state.phase not in PHASES:
        bad("phase", f"one of {', '.join(PHASES)}", state.phase)
    if not is_unknown(state.rollback) and not isinstance(state.rollback, bool):
        bad("rollback", "true or false", state.rollback)
    ns = state.namespaces
    if not is_unknown(ns) and not (
        isinstance(ns, Mapping) and all(isinstance(k, str) and (isinstance(v, str) or v is UNKNOWN) for k, v in ns.items())
    ):
        bad("namespaces", "a mapping of namespace to revision", ns)
    rev = state.revisions
    if not is_unknown(rev) and not (isinstance(rev, Mapping) and all(isinstance(rev.get(r), str) or rev.get(r) is UNKNOWN for r in ROLES)):
        bad("revisions", "a mapping with old, rev1 and rev2", rev)
    if not is_unknown(state.evidence) and not isinstance(state.evidence, tuple):
        bad("evidence", "a list of gate results", state.evidence)
    elif isinstance(state.evidence, tuple):
        for i, e in enumerate(state.evidence):
            if e is None:
                bad(f"evidence[{i}]", "a gate result {gateId, cluster, check, passed, namespaceDigest, stack, phase}", "not a mapping")
    if (
        isinstance(state.stack, str)
        and isinstance(ns, Mapping)
        and not contains_unknown(ns)
        and isinstance(state.namespace_digest, str)
        and state.namespace_digest != namespace_digest(state.stack, ns)
    ):
        bad("namespaceDigest", f"the digest of stack {state.stack}'s namespace map ({namespace_digest(state.stack, ns)[:12]}...)", state.namespace_digest[:12] + "...")
    return errors


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- evidence


@dataclass
class _EvidenceVerdict:
    satisfied: bool
    undecided: bool  # an unknown could still satisfy it (preview)
    problems: list[MeshcaError]
    uncovered: list[str]  # clusters (or "any cluster") with no usable entry and no specific problem


def _judge_evidence(
    old: GuardState,
    new: GuardState,
    *,
    check: str,
    phases: Iterable[str],
    certified: Mapping[str, str],
) -> _EvidenceVerdict:
    """Is there a passed ``check`` gate, per cluster, bound to ``old``'s stack and ``certified``?"""
    phases = tuple(phases)
    stack = old.stack
    digest = namespace_digest(stack, certified)
    entries: list[Evidence] = []
    undecided = False
    for source in (old.evidence, new.evidence):
        if source is UNKNOWN:
            undecided = undecided or source is new.evidence
            continue
        for e in source or ():
            if e is UNKNOWN:
                undecided = undecided or source is new.evidence
                continue
            if e is None:
                continue
            if not e.known:
                # Unknown in the new inputs may still turn out to be the evidence; unknown in the
                # old state is not evidence (the engine never records unknowns).
                if source is new.evidence and (e.check is UNKNOWN or e.check == check):
                    undecided = True
                continue
            if e.check == check:
                entries.append(e)

    clusters: list[str]
    declared = old.clusters if isinstance(old.clusters, tuple) and old.clusters else None
    if declared is None and isinstance(new.clusters, tuple) and new.clusters:
        declared = new.clusters
    if declared is not None:
        clusters = [str(c) for c in declared]
    else:
        clusters = sorted({str(e.cluster) for e in entries}) or ["any cluster"]

    problems: list[MeshcaError] = []
    uncovered: list[str] = []
    for cluster in clusters:
        mine = [e for e in entries if cluster == "any cluster" or str(e.cluster) == cluster]
        if any(e.stack == stack and e.namespace_digest == digest and e.phase in phases and e.passed is True for e in mine):
            continue
        # The most telling reason this cluster's entries do not count.
        failed = [e for e in mine if e.stack == stack and e.namespace_digest == digest and e.phase in phases]
        stale = [e for e in mine if e.stack == stack and e.namespace_digest != digest]
        other_phase = [e for e in mine if e.stack == stack and e.namespace_digest == digest and e.phase not in phases]
        foreign = [e for e in mine if e.stack != stack]
        if failed:
            e = failed[0]
            problems.append(MeshcaError("GuardEvidenceFailed", f"PhaseGuard evidence {e.label()}", gate=e.label(), check=check, passed=_short(e.passed)))
        elif stale:
            e = stale[0]
            problems.append(
                MeshcaError(
                    "GuardEvidenceStale",
                    f"PhaseGuard evidence {e.label()}",
                    gate=e.label(),
                    check=check,
                    got=str(e.namespace_digest)[:12],
                    want=digest[:12],
                    stack=stack,
                )
            )
        elif other_phase:
            e = other_phase[0]
            problems.append(
                MeshcaError("GuardEvidenceOtherPhase", f"PhaseGuard evidence {e.label()}", gate=e.label(), check=check, got=e.phase, allowed=", ".join(phases))
            )
        elif foreign:
            e = foreign[0]
            problems.append(MeshcaError("GuardEvidenceForeign", f"PhaseGuard evidence {e.label()}", gate=e.label(), check=check, got=e.stack, stack=stack))
        else:
            uncovered.append(cluster)
    satisfied = not problems and not uncovered
    return _EvidenceVerdict(satisfied=satisfied, undecided=undecided and not satisfied, problems=problems, uncovered=uncovered)


# ----------------------------------------------------------------------------- namespaces


def _on(mapping: Any, revisions: Iterable[Any]) -> list[str]:
    """Namespaces of a known map whose revision is one of ``revisions`` (known ones)."""
    wanted = {r for r in revisions if isinstance(r, str)}
    if not isinstance(mapping, Mapping):
        return []
    return sorted(ns for ns, rev in mapping.items() if rev in wanted)


def _not_on(mapping: Any, revision: Any) -> list[str]:
    if not isinstance(mapping, Mapping) or not isinstance(revision, str):
        return []
    return sorted(ns for ns, rev in mapping.items() if isinstance(rev, str) and rev != revision)


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _all_on(state: GuardState, mapping: Any, role: str) -> dict[str, str] | None:
    revision = state.revision(role)
    if not isinstance(mapping, Mapping) or not isinstance(revision, str):
        return None
    return {ns: revision for ns in mapping}


# ----------------------------------------------------------------------------- judging


def judge(olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> list[MeshcaError]:
    """Every reason the move from ``olds`` (last recorded inputs; empty on first create) to
    ``news`` is unsafe. Empty: allowed (or not decidable until ``pulumi up``)."""
    new = GuardState.from_props(news)
    errors = _shape_errors(new, "input")
    if not olds:
        if errors:
            return errors
        return _judge_creation(new)
    old = GuardState.from_props(olds)
    old_errors = _shape_errors(old, "old state")
    if old_errors or errors:
        return old_errors + errors
    errors += _identity(old, new)
    errors += _judge_move(old, new)
    return errors


def describe(olds: Mapping[str, Any] | None, news: Mapping[str, Any]) -> str:
    """``distribute-root -> distribute-root-done`` (with ``(rollback)`` where set)."""

    def pos(props: Mapping[str, Any] | None) -> str:
        if not props:
            return "nothing"
        phase = props.get("phase")
        text = "unknown" if phase is UNKNOWN else str(phase)
        return text + (" (rollback)" if props.get("rollback") is True else "")

    return f"{pos(olds)} -> {pos(news)}"


def _identity(old: GuardState, new: GuardState) -> list[MeshcaError]:
    errors = []
    for field, a, b in (("stack", old.stack, new.stack), ("useCase", old.use_case, new.use_case)):
        if not contains_unknown(b) and a != b:
            errors.append(MeshcaError("GuardIdentityChanged", f"PhaseGuard {field}", field=field, old=_short(a), new=_short(b)))
    errors += _identity_keys(old, new)
    if isinstance(old.revisions, Mapping) and isinstance(new.revisions, Mapping):
        for role in ROLES:
            a, b = old.revisions.get(role), new.revisions.get(role)
            if b is not UNKNOWN and a != b and old.phase != "baseline":
                errors.append(
                    MeshcaError("GuardIdentityChanged", f"PhaseGuard revisions.{role}", field=f"revisions.{role}", old=_short(a), new=_short(b))
                )
    return errors


def _identity_keys(old: GuardState, new: GuardState) -> list[MeshcaError]:
    """Identity keys (plan.identity: clusters, CA file digests, install options) may not change
    once a step used them, i.e. after baseline. A state the previous program wrote has no
    ``identity``: nothing to compare (upgrading meshca mid-migration is allowed)."""
    a, b = old.identity, new.identity
    if old.phase == "baseline" or not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return []
    errors = []
    for group in sorted(set(a) | set(b)):
        ga, gb = a.get(group), b.get(group)
        if contains_unknown(gb):
            continue
        if isinstance(ga, Mapping) and isinstance(gb, Mapping):
            pairs = [(f"identity.{group}.{k}", ga.get(k), gb.get(k)) for k in sorted(set(ga) | set(gb))]
        else:
            pairs = [(f"identity.{group}", ga, gb)]
        for field, x, y in pairs:
            if x != y and not contains_unknown(y):
                errors.append(MeshcaError("GuardIdentityChanged", f"PhaseGuard {field}", field=field, old=_short(x), new=_short(y)))
    return errors


def _judge_move(old: GuardState, new: GuardState) -> list[MeshcaError]:
    if is_unknown(new.phase) or is_unknown(new.rollback):
        return []  # decided by `pulumi up`, when the phase is known
    o, n = PHASES.index(old.phase), PHASES.index(new.phase)
    orb, nrb = old.rollback is True, new.rollback is True
    move = describe({"phase": old.phase, "rollback": orb}, {"phase": new.phase, "rollback": nrb})

    if n == o:
        if nrb and new.phase not in ROLLBACK_PHASES:
            return [MeshcaError("GuardRollbackNotAvailable", "PhaseGuard rollback", phase=new.phase, move=move)]
        if orb and not nrb and new.phase in ROLLBACK_PHASES:
            # A6/B5 deleted the phase's istiod, but its install Command stays in the state as
            # long as the phase is declared: nothing would install it again (issue 9 finding 3).
            # Leaving the phase removes the install from the state; entering it again re-runs it.
            back = PHASES[o - 1]
            revision = old.revision("rev1" if new.phase == "distribute-root" else "rev2")
            return [MeshcaError("GuardReturnToRolledBackPhase", "PhaseGuard phase", move=move, phase=new.phase, back=back, revision=_short(revision))]
        return []
    if n > o + 1:
        skipped = ", ".join(PHASES[o + 1 : n])
        return [MeshcaError("GuardPhaseSkipped", "PhaseGuard phase", move=move, skipped=skipped, next=PHASES[o + 1])]
    if n == o + 1:
        if orb:
            return [MeshcaError("GuardForwardDuringRollback", "PhaseGuard phase", move=move, phase=old.phase, back=PHASES[o - 1])]
        if nrb:
            return [MeshcaError("GuardRollbackNotAvailable", "PhaseGuard rollback", phase=new.phase, move=move)]
        target = new.phase
        if target == "distribute-root":
            return []
        if target == "distribute-root-done":
            return _finish_a(old, new, move)
        if target == "mesh-ca":
            return _enter_mesh_ca(old, new, move)
        if target == "mesh-ca-done":
            return _finish_b(old, new, move)
        if target == "old-root-removed":
            return _enter_c(old, new, move)
        raise AssertionError(target)
    # Going back: only the return from a rollback to the phase before it.
    if n == o - 1 and orb and not nrb and old.phase in ROLLBACK_PHASES:
        return []
    how = (
        f"set meshca:rollback to true (phase {new.phase} has a rollback) and run pulumi up, then set the previous phase"
        if old.phase in ROLLBACK_PHASES and not orb
        else "there is no way back from here: roll forward (the old control plane or the old CA is gone)"
    )
    return [MeshcaError("GuardBackwardsWithoutRollback", "PhaseGuard phase", move=move, how=how)]


def _stragglers(old: GuardState, new: GuardState, select) -> list[tuple[str, list[str]]]:
    """(which state, namespaces) where ``select(mapping)`` finds namespaces in the wrong place,
    judged on the old state's map and on the new one."""
    found = []
    for which, mapping in (("old state", old.effective_map()), ("new state", new.namespaces)):
        still = select(mapping)
        if still:
            found.append((which, still))
    return found


def _finish_a(old: GuardState, new: GuardState, move: str) -> list[MeshcaError]:
    old_rev, rev1 = old.revision("old"), old.revision("rev1")
    errors = [
        MeshcaError(
            "GuardOldControlPlaneInUse",
            "PhaseGuard namespaces",
            move=move,
            revision=old_rev,
            which=which,
            namespaces=_names(still),
            action=f"move {_names(still)} to {rev1} at phase distribute-root, run pulumi up (restarts, then gate A3), then finish the phase",
        )
        for which, still in _stragglers(old, new, lambda m: _on(m, [old_rev]))
    ]
    if errors:
        return errors
    return _require_gate(old, new, move, "root-cert", ("distribute-root",), "GuardFinishAWithoutRootCert")


def _enter_mesh_ca(old: GuardState, new: GuardState, move: str) -> list[MeshcaError]:
    old_rev, rev1 = old.revision("old"), old.revision("rev1")
    errors = [
        MeshcaError(
            "GuardEnterMeshCaWithNamespaceOnOld",
            "PhaseGuard namespaces",
            move=move,
            which=which,
            namespaces=_names(still),
            revision=old_rev,
            rev1=rev1,
        )
        for which, still in _stragglers(old, new, lambda m: _on(m, [old_rev]))
    ]
    if errors:
        return errors
    return _require_gate(
        old, new, move, "root-cert", ("distribute-root", "distribute-root-done", "mesh-ca"), "GuardEnterMeshCaWithoutRootCert", rev1=rev1
    )


def _finish_b(old: GuardState, new: GuardState, move: str) -> list[MeshcaError]:
    rev1, rev2 = old.revision("rev1"), old.revision("rev2")
    return [
        MeshcaError(
            "GuardOldControlPlaneInUse",
            "PhaseGuard namespaces",
            move=move,
            revision=rev1,
            which=which,
            namespaces=_names(still),
            action=f"move {_names(still)} to {rev2} at phase mesh-ca and run pulumi up (restarts) before finishing the phase",
        )
        for which, still in _stragglers(old, new, lambda m: _not_on(m, rev2))
    ]


def _enter_c(old: GuardState, new: GuardState, move: str) -> list[MeshcaError]:
    rev2 = old.revision("rev2")
    errors = [
        MeshcaError("GuardPhaseCNamespacesNotOnRev2", "PhaseGuard namespaces", move=move, which=which, namespaces=_names(still), rev2=rev2)
        for which, still in _stragglers(old, new, lambda m: _not_on(m, rev2))
    ]
    if errors:
        return errors
    return _require_gate(old, new, move, "workload-cert", ("mesh-ca-done",), "GuardEnterPhaseCEarly")


def _require_gate(old: GuardState, new: GuardState, move: str, check: str, phases: tuple[str, ...], missing: str, **args: Any) -> list[MeshcaError]:
    """The move needs a passed ``check`` gate of one of ``phases`` for the old state's map;
    ``missing`` names the message when there is none."""
    certified = old.effective_map()
    if not isinstance(certified, Mapping):
        return []
    verdict = _judge_evidence(old, new, check=check, phases=phases, certified=certified)
    return _evidence_errors(
        verdict,
        lambda clusters: MeshcaError(
            missing,
            "PhaseGuard evidence",
            move=move,
            clusters=clusters,
            digest=namespace_digest(old.stack, certified)[:12],
            stack=old.stack,
            **args,
        ),
    )


def _evidence_errors(verdict: _EvidenceVerdict, missing) -> list[MeshcaError]:
    if verdict.satisfied or verdict.undecided:
        return []
    errors = list(verdict.problems)
    if verdict.uncovered:
        errors.append(missing(", ".join(verdict.uncovered)))
    return errors


# What a guard created in the middle of a migration must show with its own evidence.
_CREATION = {
    "distribute-root-done": ("root-cert", ("distribute-root",), "rev1", "A3"),
    "mesh-ca": ("root-cert", ("distribute-root", "distribute-root-done", "mesh-ca"), "rev1", "A3 or B0"),
    "mesh-ca-done": ("workload-cert", ("mesh-ca-done",), "rev2", "B4"),
    "old-root-removed": ("workload-cert", ("mesh-ca-done", "old-root-removed"), "rev2", "B4 or C0"),
}


def _judge_creation(new: GuardState) -> list[MeshcaError]:
    if is_unknown(new.phase) or new.phase in ("baseline", "distribute-root"):
        return []
    check, phases, role, gates = _CREATION[new.phase]
    if contains_unknown(new.namespaces) or contains_unknown(new.revisions) or is_unknown(new.stack):
        return []
    certified = _all_on(new, new.namespaces, role)
    if certified is None:
        return []
    verdict = _judge_evidence(new, new, check=check, phases=phases, certified=certified)
    return _evidence_errors(
        verdict,
        lambda clusters: MeshcaError(
            "GuardCreatedMidway",
            "PhaseGuard evidence",
            phase=new.phase,
            check=check,
            gates=gates,
            role=role,
            revision=certified and next(iter(certified.values()), ""),
            clusters=clusters,
            digest=namespace_digest(new.stack, certified)[:12],
            stack=new.stack,
        ),
    )


# ----------------------------------------------------------------------------- from stack files


def guard_inputs(config: Any, evidence: Any = UNKNOWN) -> dict[str, Any]:
    """The guard's inputs for a stack config, as the program gives them to the PhaseGuard
    (components/phase_guard.py guard_args). ``evidence`` UNKNOWN: not read (offline)."""
    from .plan import identity

    return {
        "stack": config.stack,
        "useCase": config.use_case,
        "phase": config.phase,
        "rollback": config.rollback,
        "namespaces": config.namespace_map,
        "namespaceDigest": namespace_digest(config.stack, config.namespace_map),
        "revisions": {"old": config.old_revision, "rev1": config.rev1, "rev2": config.rev2},
        "evidence": evidence,
        "clusters": [c.name for c in config.clusters],
        "identity": identity(config),
    }


def judge_offline(old_config: Any, new_config: Any) -> list[MeshcaError]:
    """What the guard refuses of editing the stack file from ``old_config`` to ``new_config``,
    judged without gate evidence (a rule that needs evidence is left to the guard at ``pulumi
    up``, as in a preview): phase skips, moves back, rollback rules, namespaces left behind."""
    return judge(guard_inputs(old_config), guard_inputs(new_config))
