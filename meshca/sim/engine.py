"""The rehearsal engine: walk a stack's whole route on the simulated mesh, step by step.

For each route point i the engine asks the plan for its steps exactly as the Pulumi program
does: it probes ``cacerts`` with the program's own argv (``commands.probe_cacerts``) and
judges the answer with ``plan.cacerts_fact``, then calls ``plan.plan_at(config, position,
cacerts=facts)``. The steps to apply are those whose id is new relative to point i-1, plus
those whose command or gate inputs changed (Pulumi re-runs a Command whose ``create``
changed and replaces a gate whose inputs changed; ``install`` ignores changes, as
components/control_plane_revision.py does). Each step's argv goes through the emulator
(``emulator.py``): a wrong argv breaks the rehearsal where it would break a real run.

After every step, every caller/callee pair of the traffic graph is judged by a real mutual
TLS handshake (``tls.Judge``; verdicts reused only for identical proxy states), counted by
equivalence class (``pairs.PairBook``: a step re-judges only the workloads it touched), and a gate
step runs the real ``run_check`` over the simulated source, polling like the TrustGate
provider. A failed command stops the route (Pulumi stops there); a failed gate stops it
unless ``keep_going``.

Scenarios are data: a config mutation, a route mutation, a step-list mutation per route
point, hooks per step id (before/after/poll), switch settings and a remedy. No scenario holds
a verdict; the engine has no scenario-specific code. Faults (a failing restart, an unreachable
cluster, an expiring certificate) are hooks.

Reruns: when a step stops the route (its command or gate failed) and the scenario has a
``remedy``, the engine applies it (what the operator does) and runs ``pulumi up`` again at the
same route point: steps that succeeded are in the state and are not applied again, the failed
step and everything after it are (re-planned, so e.g. A1 sees the ``cacerts`` it created).
The stop stays in the document as an interruption with its coded reason.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import gc
import json
import os
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .. import commands as cmd
from .. import heap
from .. import plan as planmod
from ..config import StackConfig
from ..errors import MeshcaError, MeshcaErrors
from ..plan import Position, Step
from . import ca as simca
from . import switches as sw
from .emulator import Emulator, Result
from .mesh import Cluster, Mesh, SimError
from .source import SimSource
from .start import MeshShape, build_mesh
from .pairs import PairBook, SnapshotLog
from .tls import Judge, ProxyState
from .traffic import TrafficGraph, TrafficSpec

# Simulated minutes each kind of step takes (drives certificate rotation and expiry).
DURATION_MINUTES = {
    "install": 10.0,
    "restart": 3.0,
    "restart-control-plane": 2.0,
    "gateway": 2.0,
    "gate": 1.0,
}
DEFAULT_MINUTES = 0.5
# Inputs of a TrustGate resource (meshca/providers/trust_gate.py): a change replaces the gate.
# The gate params the engine diffs (meshca/providers/trust_gate.py IDENTITY_INPUTS); source,
# concurrency, timeouts, polls and file paths are operational and never replace a gate.
GATE_PARAM_KEYS = ("check", "require", "forbid", "retiring", "fleetProject", "revisions", "namespaceDigest", "restartGeneration")


# ----------------------------------------------------------------------------- scenario model


class CheckResult(Result):
    """``meshca check --json``'s result: its stdout, ``json.dumps`` of the document, is written
    when something reads it (gates read the document; a check's JSON can be large)."""

    @property
    def stdout(self) -> str:
        text = self.__dict__.get("_stdout")
        if text is None:
            text = self.__dict__["_stdout"] = json.dumps(self.document)
        return text

    @stdout.setter
    def stdout(self, value: str) -> None:
        self.__dict__["_stdout"] = value or None


@dataclass(frozen=True)
class RoutePoint:
    """One position the stack file passes through (``rollback`` positions included)."""

    position: Position
    label: str


@dataclass
class StepContext:
    """What a scenario's step mutation sees for one cluster at one route point."""

    rehearsal: "Rehearsal"
    config: StackConfig
    point: RoutePoint
    point_index: int
    cluster: str
    plan: planmod.Plan

    def snapshots(self) -> list[dict[str, tuple[str, int]]]:
        """Per applied step (baseline first): each cluster/namespace row's revision and failing pairs."""
        return [r.snapshot for r in self.rehearsal.records]

    def final_plan(self) -> planmod.Plan:
        return self.rehearsal.final_plan()

    def last_point(self) -> bool:
        return self.point_index == len(self.rehearsal.points) - 1


@dataclass
class HookContext:
    rehearsal: "Rehearsal"
    mesh: Mesh
    step: Step
    cluster: Cluster
    result: Result | None = None
    attempt: int = 0

    def note(self, text: str) -> None:
        self.mesh.log(f"{self.cluster.name}: {text}")


@dataclass(frozen=True)
class Hook:
    """A fault or a tweak at one step. ``match``: shell pattern over ``CLUSTER:STEP_ID`` or
    ``STEP_ID``. ``when``: ``before`` (a returned Result replaces the command), ``after``,
    ``poll`` (between polls of a failed gate). ``times``: how often it fires (None: always)."""

    when: str
    match: str
    action: Callable[[HookContext], Result | None]
    times: int | None = 1


@dataclass(frozen=True)
class Remedy:
    """What the operator does after a stop, before running ``pulumi up`` again: at the same
    route point (``resume`` "same"), or at the next one after editing the stack file ("next",
    e.g. a rollback the route has next)."""

    text: str
    action: Callable[["Rehearsal"], None] = lambda rehearsal: None
    resume: str = "same"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    switches: Mapping[str, Any] = field(default_factory=dict)
    config: Callable[[StackConfig, Path], StackConfig] | None = None
    route: Callable[[StackConfig, tuple[Position, ...]], list[RoutePoint]] | None = None
    steps: Callable[[StepContext, list[Step]], list[Step]] | None = None
    hooks: tuple[Hook, ...] = ()
    remedy: Remedy | None = None  # None: a stop ends the rehearsal


CANARY = Scenario("canary", "the guide's path", "every step of the plan, in order, as the stack's route says")
MAX_RERUNS = 3


# ----------------------------------------------------------------------------- records


@dataclass
class StepRecord:
    index: int
    cluster: str
    phase: str
    step: str
    action: str
    title: str
    position: str
    rollback: bool
    changed: list[str]
    ok: int = 0
    failed_pairs: list[dict] = field(default_factory=list)
    gates: dict[str, str] = field(default_factory=dict)
    gate_reason: str | None = None
    gate_polls: int = 0
    error: str | None = None
    rerun: bool = False
    clock: float = 0.0
    snapshot: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # row -> (revision, failing pairs): a view of the delta log
    attempt: int = 0  # 0: the first pulumi up at its route point; n: the n-th rerun
    interrupted: bool = False  # this step stopped the route, and a rerun followed
    gate_first_reason: str | None = None  # a gate that passed only on a later poll: its first failure

    @property
    def broken(self) -> bool:
        if self.failed_pairs:
            return True
        return not self.interrupted and ("fail" in self.gates.values() or self.error is not None)

    def to_json(self) -> dict:
        out = {
            "index": self.index,
            "cluster": self.cluster,
            "phase": self.phase,
            "step": self.step,
            "action": self.action,
            "title": self.title,
            "position": self.position,
            "rollback": self.rollback,
            "changed": self.changed,
            "handshakes": {"ok": self.ok, "failed": len(self.failed_pairs)},
            "failedPairs": self.failed_pairs,
            "gates": self.gates,
            "clockMinutes": round(self.clock, 2),
        }
        if self.gate_reason:
            out["gateReason"] = self.gate_reason
            out["gatePolls"] = self.gate_polls
        if self.gate_first_reason:
            out["gateFirstReason"] = self.gate_first_reason
            out["gatePolls"] = self.gate_polls
        if self.rerun:
            out["rerun"] = True
        if self.attempt:
            out["attempt"] = self.attempt
        if self.interrupted:
            out["interrupted"] = True
        if self.error:
            out["error"] = self.error
        return out


# ----------------------------------------------------------------------------- the engine


def default_points(positions: Sequence[Position]) -> list[RoutePoint]:
    return [RoutePoint(p, p.label) for p in positions]


class Rehearsal:
    def __init__(
        self,
        config: StackConfig,
        scenario: Scenario = CANARY,
        *,
        switches: Mapping[str, Any] | None = None,
        shape: MeshShape = MeshShape(),
        traffic: TrafficSpec = TrafficSpec(),
        preflight: bool = True,
        keep_going: bool = False,
        rerun: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.base_config = config
        self.scenario = scenario
        self.switches = sw.resolve({**scenario.switches, **(switches or {})})
        self.shape = shape
        self.traffic = traffic
        self.preflight = preflight
        self.keep_going = keep_going
        self.rerun = rerun
        self.progress = progress or (lambda text: None)
        self.records: list[StepRecord] = []
        self.applied: list[Step] = []
        self._hook_fired: dict[int, int] = {}
        self._final_plan: planmod.Plan | None = None
        self._last_plan: tuple[object, tuple, planmod.Plan] | None = None
        self.gate_checks = 0
        self.timing = {"gates": 0.0, "judging": 0.0, "handshakes": 0.0}  # seconds, for stats only
        self.scratch: dict[str, Any] = {}  # state a scenario's hooks keep during one rehearsal
        self.interruptions: list[dict] = []
        self.attempt = 0

    # -- public -------------------------------------------------------------------------------

    def run(self) -> dict:
        # A walk builds a large long-lived graph and makes almost no cyclic garbage: no automatic
        # collections during it (meshca/heap.py; measured there).
        with heap.paused():
            return self._run()

    def _run(self) -> dict:
        started = time.perf_counter()
        issued_before = simca.issued_count()
        # Scenario files (e.g. a new CA) live as long as this object, so what a step read can
        # still be inspected afterwards; the directory goes with the object or at exit (a
        # finalizer, not TemporaryDirectory: its implicit cleanup warns wherever GC runs it).
        workspace = Path(tempfile.mkdtemp(prefix="meshca-rehearse-"))
        self.workspace = weakref.finalize(self, shutil.rmtree, workspace, ignore_errors=True)
        self.mesh = build_mesh(self.base_config, self.switches, self.shape)
        self.config = self.scenario.config(self.base_config, workspace) if self.scenario.config else self.base_config
        positions = planmod.route(self.config)
        self.points = self.scenario.route(self.config, positions) if self.scenario.route else default_points(positions)
        self.emulator = Emulator(self.mesh, asmcli_path=self.config.asmcli.path, check=self._check)
        self.graph = TrafficGraph(self.traffic, tuple(n.name for n in self.base_config.namespaces))
        self.graph.check(self.mesh)  # MCA1003: a traffic rule naming nothing, before any step
        self.judge = Judge(self.switches["authz-names-principals"])
        self._verdicts: dict[tuple, tuple[bool, str]] = {}
        self.book = PairBook(self.traffic, tuple(n.name for n in self.base_config.namespaces), self._verdict)
        self.snapshot_log = SnapshotLog()
        self.pairs_judged = 0
        self.stopped: dict | None = None
        self._state: dict[str, dict[str, Step]] = {}  # per cluster: the steps pulumi's state holds
        self._walk(0)
        remedy = self.scenario.remedy
        while self.stopped is not None and remedy is not None and self.rerun and self.attempt < MAX_RERUNS:
            if not self._rerun(remedy):
                break
        elapsed = time.perf_counter() - started
        return self._document(elapsed, simca.issued_count() - issued_before)

    def snapshots(self) -> list[dict[str, tuple[str, int]]]:
        """Per applied step (baseline first): each cluster/namespace row's revision and failing pairs."""
        return [r.snapshot for r in self.records]

    def again(self) -> list[dict]:
        """``pulumi up`` once more at the last route point, after ``run``: the steps it applies
        (none when the route converged) as JSON records, appended to ``records``."""
        start = len(self.records)
        self.attempt += 1
        self._walk(len(self.points) - 1)
        return [r.to_json() for r in self.records[start:]]

    def final_plan(self) -> planmod.Plan:
        if self._final_plan is None:
            self._final_plan = self._plan_at(self.points[-1].position, self._facts_or_none())
        return self._final_plan

    def _plan_at(self, position: planmod.Position, facts: dict[str, str] | None) -> planmod.Plan:
        """``plan.plan_at`` (pure: the same config, position and cacerts facts give the same plan),
        built once when asked again in a row (the last point's plan for the final plan, a rerun)."""
        key = (position, None if facts is None else tuple(sorted(facts.items())))
        last = self._last_plan
        if last is None or last[0] is not self.config or last[1] != key:
            last = self._last_plan = (self.config, key, planmod.plan_at(self.config, position, cacerts=facts))
        return last[2]

    # -- the walk ------------------------------------------------------------------------------

    def _rerun(self, remedy: Remedy) -> bool:
        """The operator applies the remedy and runs ``pulumi up`` again where the route stopped."""
        start = self._stopped_point + (1 if remedy.resume == "next" else 0)
        if start >= len(self.points):
            return False  # nothing left to run: the stop stands
        stop = self.records[self.stopped["index"]]
        stop.interrupted = True
        point = self.points[start]
        self.attempt += 1
        self.interruptions.append(
            {
                "index": stop.index,
                "cluster": stop.cluster,
                "step": stop.step,
                "reason": stop.error or stop.gate_reason or "stopped",
                "remedy": remedy.text,
                "rerunFrom": point.label,
                "attempt": self.attempt,
            }
        )
        self.mesh.log(f"remedy before rerun {self.attempt}: {remedy.text}")
        remedy.action(self)
        self.stopped = None
        self.progress(f"rerun {self.attempt} of pulumi up at {point.label}")
        self._walk(start)
        return True

    def _walk(self, start: int) -> None:
        if start == 0:
            baseline = StepRecord(0, "", "baseline", "baseline", "baseline", "the mesh as it runs today", self.points[0].label, False, [])
            self._judge_into(baseline)
            self.records.append(baseline)
        for k in range(start, len(self.points)):
            point = self.points[k]
            self.progress(f"[{k + 1}/{len(self.points)}] {point.label} (position {planmod.position_name(point.position)})")
            try:
                facts = self._facts()
            except (MeshcaError, MeshcaErrors) as exc:
                self._stopped_point = k
                self._stop_with(point, "preview", f"probe cacerts and plan {point.position.phase}", exc)
                return
            plan = self._plan_at(point.position, facts)
            for cp in plan.clusters:
                name = cp.cluster.name
                before = self._state.get(name, {})
                todo = []
                for s in cp.steps:
                    if s.id not in before:
                        todo.append(s)
                    elif self._changed(before[s.id], s):
                        todo.append(dataclasses.replace(s, params=planmod._freeze({**planmod._thaw(s.params), "rerun": True})))
                planned = {s.id: s for s in cp.steps}
                if self.scenario.steps:
                    todo = self.scenario.steps(StepContext(self, self.config, point, k, name, plan), todo)
                if not self.preflight:
                    todo = [s for s in todo if not (s.is_gate and s.params.get("check") == "root-of-trust")]
                for i, step in enumerate(todo):
                    if not self._apply(step, point):
                        # What pulumi's state holds after the stop: every step of the point but
                        # the failed one and those after it (which keep their old version).
                        pending = {s.id for s in todo[i:]}
                        self._state[name] = {sid: s for sid, s in planned.items() if sid not in pending}
                        self._state[name].update({sid: before[sid] for sid in pending if sid in before})
                        self._stopped_point = k
                        return
                self._state[name] = planned

    @staticmethod
    def _changed(old: Step, new: Step) -> bool:
        """What the engine would re-run. A Command's create and environment are in
        ignore_changes (components/step_command.py), so only its stdin is diffed; a gate is
        replaced only when what it certifies changes (meshca/providers/trust_gate.py
        IDENTITY_INPUTS), never for operational inputs (timeouts, polls, paths)."""
        if new.is_gate:
            pick = lambda s: (s.phase, tuple(json.dumps(planmod._thaw(s.params.get(k)), sort_keys=True) for k in GATE_PARAM_KEYS))  # noqa: E731
            return pick(old) != pick(new)
        return old.stdin != new.stdin

    def _facts_or_none(self) -> dict[str, str] | None:
        try:
            return self._facts()
        except (MeshcaError, MeshcaErrors):
            return None

    def _facts(self) -> dict[str, str]:
        """The program's preview probe of cacerts, judged by the plan's own rule."""
        facts = {}
        for cl in self.config.clusters:
            result = self.emulator.run(cmd.probe_cacerts(cl), subject=f"{cl.name}: cacerts probe")
            if not result.ok:
                raise MeshcaError("RehearseProbeFailed", f"cluster {cl.name}", reason=result.stderr.strip()[:200])
            facts[cl.name] = planmod.cacerts_fact(result.stdout, self.config, cl)
        return facts

    def _stop_with(self, point: RoutePoint, step_id: str, title: str, exc: Exception) -> None:
        lines = exc.lines() if isinstance(exc, MeshcaErrors) else [exc.line()] if isinstance(exc, MeshcaError) else [str(exc)]
        rec = StepRecord(len(self.records), "", point.position.phase, step_id, "preview", title, point.label, point.position.rollback, [], error=" | ".join(lines))
        rec.clock = self.mesh.now
        rec.attempt = self.attempt
        self._judge_into(rec)
        self.records.append(rec)
        self.stopped = {"index": rec.index, "reason": rec.error}

    # -- one step ------------------------------------------------------------------------------

    def _hooks(self, when: str, step: Step, ctx: HookContext) -> Result | None:
        out = None
        for i, hook in enumerate(self.scenario.hooks):
            if hook.when != when:
                continue
            if not (fnmatch.fnmatchcase(f"{step.cluster}:{step.id}", hook.match) or fnmatch.fnmatchcase(step.id, hook.match)):
                continue
            fired = self._hook_fired.get(i, 0)
            if hook.times is not None and fired >= hook.times:
                continue
            self._hook_fired[i] = fired + 1
            value = hook.action(ctx)
            if value is not None and out is None:
                out = value
        return out

    def _apply(self, step: Step, point: RoutePoint) -> bool:
        cluster = self.mesh.clusters[step.cluster]
        rec = StepRecord(
            len(self.records), step.cluster, step.phase, step.id, step.action, step.title, point.label, point.position.rollback, [],
            rerun=bool(step.params.get("rerun")),
            attempt=self.attempt,
        )
        self.applied.append(step)
        ctx = HookContext(self, self.mesh, step, cluster)
        result = self._hooks("before", step, ctx)
        try:
            if result is None:
                result = self.emulator.run(step.argv, step.stdin, subject=f"{step.cluster}: {step.id}")
        except MeshcaError as exc:  # argv the emulator does not understand: a broken step
            result = Result(2, stderr=exc.line())
        self.mesh.advance(DURATION_MINUTES.get(step.action, DEFAULT_MINUTES))
        if step.is_gate:
            result = self._poll_gate(step, ctx, result, rec)
            rec.gates[step.id] = "pass" if result.document is not None and result.document.get("ok") else "fail"
            if rec.gates[step.id] == "fail":
                doc = result.document or {}
                rec.gate_reason = doc.get("reason") or result.stderr.strip() or "the check did not run"
        else:
            tolerated = step.action == "backup-ca-secret" and result.not_found  # "only if needed": nothing to back up
            if not result.ok and not tolerated:
                rec.error = _one_line(result.stderr or result.stdout or f"exit {result.rc}")
            elif tolerated:
                self.mesh.log(f"{step.cluster}: Secret {step.params.get('secret')} absent: nothing to back up")
        ctx.result = result
        self._hooks("after", step, ctx)
        rec.changed = self.mesh.take_events()
        rec.clock = self.mesh.now
        self._judge_into(rec)
        self.records.append(rec)
        if rec.error is not None:
            self.stopped = {"index": rec.index, "reason": rec.error}
            return False
        if rec.gates.get(step.id) == "fail" and not self.keep_going:
            self.stopped = {"index": rec.index, "reason": rec.gate_reason}
            return False
        return True

    def _poll_gate(self, step: Step, ctx: HookContext, result: Result, rec: StepRecord) -> Result:
        """Poll until the check passes or the gate's timeout ends (TrustGate provider).

        The check is re-run only when the mesh changed since the last run: a snapshot that
        cannot have changed cannot change its verdict. Without poll hooks for this step, a
        quiet mesh jumps straight to the deadline.
        """
        timeout = float(step.params.get("timeoutSeconds") or 0)
        poll = max(1.0, float(step.params.get("pollSeconds") or 15))
        has_hooks = any(h.when == "poll" and (fnmatch.fnmatchcase(f"{step.cluster}:{step.id}", h.match) or fnmatch.fnmatchcase(step.id, h.match)) for h in self.scenario.hooks)
        waited, checked_at = 0.0, self.mesh.version
        first = None if (result.document or {}).get("ok") else ((result.document or {}).get("reason") or result.stderr.strip() or None)
        while not (result.document or {}).get("ok") and waited < timeout and result.rc in (0, 1):
            ctx.attempt += 1
            self._hooks("poll", step, ctx)
            wait = min(poll, timeout - waited) if has_hooks else timeout - waited
            self.mesh.advance(wait / 60)
            waited += wait
            if self.mesh.version != checked_at:
                checked_at = self.mesh.version
                rec.gate_polls += 1
                result = self.emulator.run(step.argv, step.stdin, subject=f"{step.cluster}: {step.id}")
        if first and (result.document or {}).get("ok"):
            rec.gate_first_reason = first
        return result

    def _check(self, args: list[str]) -> Result:
        """``meshca check ...``: the real CLI's flags -> the real runner, on the simulated source."""
        self.gate_checks += 1
        started = time.perf_counter()
        try:
            return self._check_once(args)
        finally:
            self.timing["gates"] += time.perf_counter() - started

    def _check_once(self, args: list[str]) -> Result:
        from ..cli import _Parser
        from ..trust.cli import add_check_arguments, build_request, validate_args
        from ..trust.runner import check_root_of_trust, run_check
        from ..trust.verdict import load_reference_file

        parser = _Parser(prog="meshca check")
        add_check_arguments(parser)
        try:
            ns = parser.parse_args(args)
            validate_args(ns)
            cluster = self.mesh.cluster_for(ns.kubeconfig, ns.context)
            shown_root = ns.root_cert
            for attr in ("citadel_root", "meshca_root", "root_cert"):
                value = getattr(ns, attr)
                if value and not Path(value).is_absolute():
                    setattr(ns, attr, str(self.mesh.project_dir / value))  # the program runs in the project dir
            source = SimSource(cluster, style="snake" if ns.source == "kube" else "camel")
            if ns.check == "root-of-trust":
                given = load_reference_file(ns.root_cert, "--root-cert", "root-cert.pem")
                doc = check_root_of_trust(source, given, path=shown_root, cluster=cluster.name)
            else:
                request = build_request(ns)
                # The simulated source answers from memory: no more workers than CPUs (more
                # threads would only contend for the interpreter; the verdict does not depend on
                # it, tests/test_trust_runner.py test_concurrency_does_not_change_the_verdict).
                request = dataclasses.replace(request, concurrency=max(1, min(request.concurrency, os.cpu_count() or 1)))
                if request.meshca_roots is None:
                    # The one substitution: the simulated Mesh CA root stands in for the pinned real one.
                    request = dataclasses.replace(request, meshca_roots=(self.mesh.meshca.root,))
                doc = run_check(source, request)
        except MeshcaErrors as exc:
            return Result(2, stderr="\n".join(exc.lines()))
        except MeshcaError as exc:
            return Result(2, stderr=exc.line())
        except SimError as exc:
            return Result(2, stderr=str(exc))
        return CheckResult(0 if doc.get("ok") else 1, stderr=doc.get("reason") or "", document=doc)

    # -- mTLS between every pair -----------------------------------------------------------------

    def _judge_into(self, rec: StepRecord) -> None:
        started = time.perf_counter()
        try:
            self._judge_pairs(rec)
        finally:
            self.timing["judging"] += time.perf_counter() - started

    def _judge_pairs(self, rec: StepRecord) -> None:
        """Every pair of the traffic graph, by class pair (``pairs.PairBook``): only the workloads
        the step touched are re-judged; the snapshot is the delta of the rows that changed."""
        total, failed, rows = self.book.judge(self.mesh)
        self.pairs_judged += total
        rec.failed_pairs = [dict(f) for f in failed]
        rec.ok = total - len(failed)
        rec.snapshot = self.snapshot_log.commit(rows)

    def _verdict(self, clients: list[ProxyState], servers: list[ProxyState]) -> tuple[bool, str]:
        key = (tuple(c.key for c in clients), tuple(s.key for s in servers))
        hit = self._verdicts.get(key)
        if hit is not None:
            return hit
        out = (True, "")
        started = time.perf_counter()
        for c in clients:
            for s in servers:
                v = self.judge.judge(c, s)
                if not v.ok:
                    out = (False, v.reason)
                    break
            if not out[0]:
                break
        self.timing["handshakes"] += time.perf_counter() - started
        self._verdicts[key] = out
        return out

    # -- the document ----------------------------------------------------------------------------

    def _document(self, elapsed: float, issued: int) -> dict:
        steps = [r for r in self.records if r.index > 0]
        broken = next((r.index for r in self.records if r.broken), None)
        total = sum(r.ok + len(r.failed_pairs) for r in self.records)
        failed = sum(len(r.failed_pairs) for r in self.records)
        gates_failed = sum(1 for r in self.records if not r.interrupted for v in r.gates.values() if v == "fail")
        return {
            "stack": self.base_config.stack,
            "scenario": self.scenario.name,
            "assumptions": {s.name: self.switches[s.name] for s in sw.SWITCHES},
            "settings": {
                "useCase": self.config.use_case,
                "revisions": {"old": self.config.old_revision, "rev1": self.config.rev1, "rev2": self.config.rev2},
                "clusters": [c.name for c in self.config.clusters],
                "namespaces": len(self.config.namespaces),
                "namespaceOrder": [n for batch in planmod.batches_of(self.config) for n in batch],
                "workloadsPerNamespace": self.shape.workloads,
                "traffic": self.traffic.describe(),
                "preflight": self.preflight,
                "keepGoing": self.keep_going,
                "rerun": self.rerun,
                "routePoints": [p.label for p in self.points],
            },
            "steps": [r.to_json() for r in self.records],
            "summary": {
                "steps": len(steps),
                "handshakes": total,
                "handshakesFailed": failed,
                "gatesFailed": gates_failed,
                "firstBrokenStep": broken,
                "completed": self.stopped is None,
                "stoppedAt": self.stopped["index"] if self.stopped else None,
                "stopReason": self.stopped["reason"] if self.stopped else None,
                "reruns": len(self.interruptions),
                "interruptions": self.interruptions,
            },
            "stats": {
                "pairsJudged": self.pairs_judged,
                "realHandshakes": self.judge.handshakes,
                "verdictLookups": self.judge.lookups,
                "certificatesIssued": issued,
                "gateChecks": self.gate_checks,
                "elapsedSeconds": round(elapsed, 3),
                "gateSeconds": round(self.timing["gates"], 3),
                "judgingSeconds": round(self.timing["judging"], 3),
                "handshakeSeconds": round(self.timing["handshakes"], 3),
            },
        }


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in str(text).strip().splitlines() if line.strip())[:600]


def rehearse(config: StackConfig, scenario: Scenario = CANARY, **options: Any) -> dict:
    """Run one rehearsal and return its JSON document."""
    return Rehearsal(config, scenario, **options).run()


def alternatives(switches: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The other setting of every switch (a short certificate life for the TTL)."""
    out = []
    for s in sw.SWITCHES:
        current = switches.get(s.name, s.default)
        if isinstance(s.default, bool):
            out.append((s.name, not current))
        elif s.choices:
            out += [(s.name, c) for c in s.choices if c != current]
        else:
            out.append((s.name, 1 if current != 1 else s.default))
    return out


def what_if(config: StackConfig, scenario: Scenario = CANARY, *, switches: Mapping[str, Any] | None = None, **options: Any) -> list[dict]:
    """What each other setting of each switch predicts: the same rehearsal once per change."""
    base = dict(switches or {})
    out = []
    for name, value in alternatives(sw.resolve({**scenario.switches, **base})):
        doc = Rehearsal(config, scenario, switches={**base, name: value}, **options).run()
        gc.collect()  # that rehearsal's mesh is cyclic garbage now: freed before the next (paused) walk
        sm = doc["summary"]
        first = next((s for s in doc["steps"] if s["index"] == sm["firstBrokenStep"]), None)
        out.append(
            {
                "switch": name,
                "value": value,
                "firstBrokenStep": sm["firstBrokenStep"],
                "step": f"{first['cluster']}:{first['step']}" if first and first["cluster"] else (first["step"] if first else None),
                "handshakesFailed": sm["handshakesFailed"],
                "gatesFailed": sm["gatesFailed"],
                "completed": sm["completed"],
            }
        )
    return out
