"""meshca/heap.py: the collector of the runs that build a large object graph (the program's young
threshold, the rehearsal's pause)."""

from __future__ import annotations

import gc
import weakref

import pytest

from harness import run_program
from meshca import heap
from meshca.cli import main
from meshca.sim import engine


@pytest.fixture()
def default_thresholds():
    """CPython's defaults for the test, whatever the process had before, put back afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def full_collections(build) -> int:
    """How many oldest-generation collections ``build()`` triggers."""
    seen = []

    def count(phase, info):
        if phase == "stop" and info["generation"] == 2:
            seen.append(1)

    # What the process holds already (other tests' objects) is set aside, so the count is the
    # same in a fresh interpreter and at the end of a long pytest worker: frozen objects are
    # never scanned, and the full collection after the freeze makes the old generation empty.
    gc.freeze()
    gc.collect()
    gc.callbacks.append(count)
    try:
        build()
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
    return len(seen)


def growing_graph():
    """A long-lived graph that grows while short-lived objects come and go, as a walk does."""
    kept = []
    for i in range(200_000):
        step = {"id": i, "deps": [i - 1, i - 2]}  # lives a little: a few allocations later it is kept or dropped
        scratch = [{"n": j} for j in range(3)]
        if i % 2 == 0:
            kept.append((step, scratch[0]))
    return kept


def test_the_young_threshold_is_raised_and_the_previous_thresholds_returned(default_thresholds):
    assert heap.raise_young_threshold() == (700, 10, 10)
    assert gc.get_threshold() == (heap.YOUNG, 10, 10)


def test_a_higher_threshold_is_never_lowered(default_thresholds):
    gc.set_threshold(50_000, 10, 10)
    heap.raise_young_threshold()
    assert gc.get_threshold() == (50_000, 10, 10)


def test_a_growing_graph_meets_fewer_full_collections(default_thresholds):
    # the counterfactual: CPython's default threshold on the same allocations
    default = full_collections(growing_graph)
    heap.raise_young_threshold()
    raised = full_collections(growing_graph)
    assert default >= 3
    assert raised * 3 <= default, (default, raised)


def test_paused_stops_automatic_collection_and_restores_the_collector_as_it_was():
    was = gc.isenabled()
    try:
        gc.enable()
        with heap.paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError):
            with heap.paused():
                raise RuntimeError("a failed rehearsal")
        assert gc.isenabled()
        gc.disable()  # a caller that had it off keeps it off
        with heap.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_the_rehearsal_walks_with_the_collector_paused(monkeypatch, capsys):
    seen = []
    walk = engine.Rehearsal._run

    def watched(self, *args, **kwargs):
        seen.append(gc.isenabled())
        return walk(self, *args, **kwargs)

    monkeypatch.setattr(engine.Rehearsal, "_run", watched)
    assert gc.isenabled()
    rc = main(["rehearse", "--clusters", "1", "--namespaces", "1", "--workloads", "1", "--json", "--quiet"])
    capsys.readouterr()
    assert rc == 0
    assert seen == [False]
    assert gc.isenabled()


def test_the_program_raises_it_for_its_process(default_thresholds):
    run_program("dev")
    assert gc.get_threshold()[0] == heap.YOUNG


def test_what_if_frees_each_rehearsal_before_the_next_paused_walk(monkeypatch):
    """A rehearsal's mesh is cyclic (clusters and their mesh, pods and their workload): with the
    collector paused, only the collection between what-if runs frees it."""
    from pathlib import Path

    from meshca.config import load_stack

    meshes = []
    alive_at_start = []
    walk = engine.Rehearsal._run

    def watched(self, *args, **kwargs):
        alive_at_start.append(sum(ref() is not None for ref in meshes))
        doc = walk(self, *args, **kwargs)
        meshes.append(weakref.ref(self.mesh))
        return doc

    monkeypatch.setattr(engine.Rehearsal, "_run", watched)
    engine.what_if(load_stack(Path(__file__).resolve().parents[1], "dev"), engine.CANARY)
    assert len(alive_at_start) >= 3
    assert alive_at_start == [0] * len(alive_at_start)
