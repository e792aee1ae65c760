"""components/cycle_breaker.py answers the SDK's cycle question exactly as the SDK does (issue 13)."""

from __future__ import annotations

import random

from pulumi.runtime import resource_cycle_breaker as sdk

from components import cycle_breaker


class Node:
    def __init__(self, i: int) -> None:
        self.i = i

    def __repr__(self) -> str:
        return f"n{self.i}"


def _closure(start: Node) -> set:
    seen, todo = {start}, [start]
    while todo:
        for x in sdk._deps(todo.pop()):
            if x not in seen:
                seen.add(x)
                todo.append(x)
    return seen


def test_random_graphs_same_answers_and_same_edges_as_the_sdk():
    def sdk_reachable(from_resource, to_resource) -> bool:  # the SDK's own walk (its _reachable's body)
        return any(x == to_resource for x in sdk._with_transitive_deps(from_resource, set()))

    rng = random.Random(13)
    for _ in range(40):
        nodes = [Node(i) for i in range(rng.randint(2, 40))]
        for _ in range(rng.randint(0, 120)):
            a, b = rng.choice(nodes), rng.choice(nodes)
            expected = a in _closure(b)  # reachable(b, a): would the edge a -> b close a cycle
            got = cycle_breaker._reachable(b, a)
            assert got == expected, (a, b)
            assert sdk_reachable(b, a) == expected
            if not got:
                cycle_breaker._add_dep(a, b)
        for n in nodes:  # the reverse edges mirror the SDK's edges
            assert cycle_breaker._dependents(n) == {m for m in nodes if n in sdk._deps(m)}


def test_declare_dependency_goes_through_the_replacement_and_refuses_cycles():
    assert cycle_breaker.install()
    assert sdk._reachable is cycle_breaker._reachable and sdk._add_dep is cycle_breaker._add_dep
    a, b, c = Node(1), Node(2), Node(3)
    assert sdk.declare_dependency(a, b) and sdk.declare_dependency(b, c)
    assert not sdk.declare_dependency(c, a)  # c -> a would close a -> b -> c -> a
    assert not sdk.declare_dependency(a, a)
    assert sdk._deps(a) == {b} and sdk._deps(b) == {c} and sdk._deps(c) == set()
