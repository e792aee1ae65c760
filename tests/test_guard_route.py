"""The guard against the real wiring: each run's guard inputs come from the stack config and
the gate results the previous run exported (what guard_for reads through the StackReference).
Walking the shipped route position by position, with both rollback cycles, nothing is refused;
jumping ahead or finishing a phase without its gate run is."""

from __future__ import annotations

import functools

import pytest

from components.phase_guard import evidence_from_gates, guard_args
from harness import ROOT, run_program
from meshca import plan as planmod
from meshca.config import load_stack
from meshca.providers.phase_guard import PhaseGuardProvider

CONFIG = load_stack(ROOT, "dev")
ROUTE = planmod.route(CONFIG)


def config_at(index: int, rollback: bool = False):
    position = ROUTE[index]
    return CONFIG.at(position.phase, rollback, position.namespace_map)


@functools.lru_cache(maxsize=None)
def gates_after(index: int, rollback: bool = False) -> dict:
    """The ``gates`` output of a (mocked) pulumi up at a position."""
    position = ROUTE[index]
    result = run_program("dev", {"phase": position.phase, "rollback": rollback, "namespaces": position.namespace_map})
    assert result.error is None, result.error
    return result.outputs["gates"]


def inputs(index: int, rollback: bool, previous: tuple[int, bool] | None) -> dict:
    evidence = evidence_from_gates(gates_after(*previous)) if previous else []
    return dict(guard_args(config_at(index, rollback), evidence))


def walk(steps: list[tuple[int, bool]], failed: set[int] = frozenset()) -> list[tuple[str, list[str]]]:
    """Run the guard's check for each move of ``steps`` as consecutive pulumi ups would. The
    runs at the step numbers in ``failed`` stopped early: they exported no new gate results, so
    the next run still reads the outputs of the last run that completed."""
    provider = PhaseGuardProvider()
    refusals = []
    olds: dict = {}
    completed: tuple[int, bool] | None = None
    first = steps[0][0]
    if first > 0:  # the stack got here along the route: its last run was at the position before
        olds = inputs(first - 1, False, (first - 2, False) if first > 1 else None)
        completed = (first - 1, False)
    for i, step in enumerate(steps):
        news = inputs(*step, completed)
        failures = provider.check(olds, news).failures
        refusals.append((f"{steps[i - 1] if i else None} -> {step}", [f.reason.split()[1] for f in failures]))
        if failures:
            break  # a refused preview applies nothing
        olds = news
        if i not in failed:
            completed = step
    return [(move, codes) for move, codes in refusals if codes]


# A guard's inputs need only the config and the previous run's gates, so the last move (into
# phase C) is judged on what mesh-ca-done's run exported.
FORWARD = [(i, False) for i in range(len(ROUTE))]


def test_the_shipped_route_passes_the_guard():
    assert walk(FORWARD) == []


def test_rollback_cycles_pass_the_guard():
    a6 = [(0, False), (1, False), (2, False), (3, False), (3, True), (0, False), (1, False)]
    b5 = [(6, False), (7, False), (8, False), (9, False), (9, True), (6, False), (7, False), (8, False)]
    assert walk(a6) == []
    assert walk(b5) == []


@pytest.mark.parametrize(
    "steps, failed, code",
    [
        ([(4, False), (5, False), (6, False)], set(), None),  # A3 ran at the last batch: A may finish
        ([(4, False), (5, False), (6, False)], {1}, "MCA0660"),  # the last batch's run stopped before A3 exported
        ([(4, False), (6, False)], set(), "MCA0657"),  # the last batch never applied: old istiod still in use
        ([(6, False), (12, False)], set(), "MCA0650"),  # A-done straight to B-done
        ([(11, False), (12, False), (13, False)], {1}, "MCA0658"),  # B-done's run stopped before B4 exported
        ([(6, False), (7, False)], set(), None),
    ],
    ids=["finish-a", "finish-a-unproven", "finish-a-early", "skip-b", "c-early", "enter-b"],
)
def test_moves_judged_on_the_previous_runs_gates(steps, failed, code):
    refusals = walk(steps, failed)
    assert [c for _, codes in refusals for c in codes] == ([code] if code else [])
