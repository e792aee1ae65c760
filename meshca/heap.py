"""The cyclic garbage collector in the runs that build a large object graph.

The rehearsal of a big mesh and the Pulumi program of a big stack keep hundreds of thousands of
long-lived objects (proxies, certificates, plan steps, Outputs) and allocate many more that live
a little while (per step, per gate, per resource). With CPython's default young-generation
threshold (700 allocations) most of those short-lived objects survive two young collections and
are promoted to the oldest generation, and every time the promoted count passes a quarter of the
old generation CPython walks the whole heap (CPython 3.11 ``Include/internal/pycore_gc.h``, the
note on ``long_lived_pending / long_lived_total``; ``Modules/gcmodule.c``
``gc_collect_generations``). Measured (issue 13, BENCHMARKS.md "meshca rehearse: the target by hand"): a 10 x 300 x 3
rehearsal spent 6.2 of its 29.7 s in 24 full collections; with a young threshold of 10,000 it ran
2 full collections (0.8 s) and the same peak memory.

``raise_young_threshold`` (the Pulumi program's process) changes only the young threshold: the
collector still runs, so cyclic garbage is still freed. ``paused`` (a rehearsal) stops automatic
collection for the block: a rehearsal makes almost no cyclic garbage (its peak memory at 10 x 300 x 3
grew by 3 MB, 420 -> 423 MB, with no collection at all), so the 2.3 s that the raised threshold still
spent there bought nothing (15.2-15.5 s against 16.3-16.5 s, alternating). Reference counting frees
everything else as always.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

YOUNG = 10_000  # allocations minus deallocations between young collections (CPython's default: 700)


def raise_young_threshold(young: int = YOUNG) -> tuple[int, int, int]:
    """Set the young generation's threshold to at least ``young``; the thresholds before."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    return before


@contextmanager
def paused() -> Iterator[None]:
    """Run the block without automatic collections; the collector as it was afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
