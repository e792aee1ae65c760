"""A linear-time drop-in for the Python SDK's dependency cycle check (issue 13).

Before a resource registers, the SDK (pulumi/runtime/rpc.py ``_add_dependency``) calls
``resource_cycle_breaker.declare_dependency(resource, dep)`` for every dependency (a local
component expands to each of its children), and that asks ``_reachable(dep, resource)``: a
depth-first walk over everything ``dep`` depends on, transitively, written as nested
``yield from`` generators. Every step of a cluster waits for the steps before it, so the walk
visits the whole history behind ``dep`` and each item climbs back through one generator per
level: a walk costs the square of the chain's length and there is one per dependency, so the
program under mocks took 54 s at 1 cluster x 300 namespaces and over 10 minutes at 10 x 300.

Same question, same answer, here: ``dep`` reaches ``resource`` only through an edge INTO
``resource``, so when nothing depends on ``resource`` yet the answer is ``dep == resource``,
without a walk; otherwise an iterative walk, linear
in what it visits (from both ends, see ``_reachable``). Edges are still recorded exactly as the SDK
does (``_direct_computed_dependencies``), plus the reverse edge on their target. ``install()`` replaces the module's ``_reachable`` and ``_add_dep``
(``declare_dependency`` looks both up at call time), only if the module still has the shape this was
written against (pulumi 3.x ``resource_cycle_breaker``), and before the program's first resource:
every edge of the run then goes through ``_add_dep`` here and has its reverse edge.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import resource_cycle_breaker as _cb

_DEPENDENTS = "_meshca_dependents"  # the reverse edges: who depends on a resource directly


def _add_dep(from_resource: Any, to_resource: Any) -> None:
    setattr(from_resource, _cb._DEPENDENCIES_PROPERTY, _cb._deps(from_resource) | {to_resource})
    dependents = getattr(to_resource, _DEPENDENTS, None)
    if dependents is None:
        dependents = set()
        setattr(to_resource, _DEPENDENTS, dependents)
    dependents.add(from_resource)


def _dependents(res: Any) -> set:
    return getattr(res, _DEPENDENTS, set())


def _reachable(from_resource: Any, to_resource: Any) -> bool:
    """Whether ``to_resource`` is among ``from_resource`` and what it depends on, transitively.

    Searched from both ends at once, one node each in turn: forward over dependencies from
    ``from_resource``, backward over dependents from ``to_resource``. A path exists iff the
    forward search reaches ``to_resource`` iff the backward one reaches ``from_resource``; when
    either side runs out first there is none. So the cost is about twice the smaller of the two
    closures: the one being registered usually has few dependents, if any, however long the
    history behind its dependency."""
    if from_resource == to_resource:
        return True
    if not _dependents(to_resource):
        return False  # no edge leads to it: only itself reaches it
    ahead, behind = [from_resource], [to_resource]
    seen_ahead, seen_behind = {from_resource}, {to_resource}
    while ahead and behind:
        for x in _cb._deps(ahead.pop()):
            if x == to_resource:
                return True
            if x not in seen_ahead:
                seen_ahead.add(x)
                ahead.append(x)
        for x in _dependents(behind.pop()):
            if x == from_resource:
                return True
            if x not in seen_behind:
                seen_behind.add(x)
                behind.append(x)
    return False


def install() -> bool:
    """Swap in the functions above; False (and nothing changed) if the SDK's module differs."""
    if getattr(_cb, "_reachable", None) is _reachable:
        return True
    needed = ("declare_dependency", "_reachable", "_add_dep", "_deps", "_DEPENDENCIES_PROPERTY")
    if not all(hasattr(_cb, name) for name in needed):
        return False
    _cb._reachable = _reachable
    _cb._add_dep = _add_dep
    return True
