"""A drain of the program's outstanding Outputs that costs O(1) per completion (issue 11/13).

After the program function returns, the Python SDK waits for everything it started
(pulumi/runtime/stack.py ``wait_for_rpcs``, pulumi 3.272.0 lines 154-224): first the RPCs, then,
with ``await_all_outstanding_tasks``, every Output still tracked in ``SETTINGS.outputs``, in a
loop that calls ``asyncio.wait(pending, return_when=FIRST_COMPLETED)`` once per completed Output
(lines 193-219; pulumi/pulumi#22411 replaced a busy wait with it). Each such call adds a done
callback to every pending Output, removes them all again and sorts every Output into done and
pending (CPython asyncio/tasks.py ``_wait``, python/cpython#74741): O(pending) per completion.
During ``pulumi up`` Outputs complete one resource at a time as the engine finishes each step, so
a move of 3 clusters x 300 namespaces (3,627 resources) spent 78% of the program's CPU in
``_wait`` (py-spy, BENCHMARKS.md "The route at scale"), on 2 cores shared with the engine and the
providers.

Same contract here, without the per-completion scan: the SDK's own ``wait_for_rpcs`` with
``await_all_outstanding_tasks=False`` still waits for the RPCs (and raises their unhandled
exception); then the Outputs tracked at that moment are awaited through one done callback each,
the first failed or cancelled one re-raised as soon as it completes (as the SDK's ``await task``
does), the rest left running as the SDK leaves them. Outputs created meanwhile are picked up on
the next round, and the rounds repeat while RPCs or Outputs remain, as the SDK's loop does. The
only difference: an Output created while a round is in flight is looked at after that round,
not after the next single completion, so its failure surfaces no earlier than the round's end.

``install()`` replaces ``pulumi.runtime.stack.wait_for_rpcs`` (``run_pulumi_func`` looks it up
at call time, after the program function returns), only if the module still has the shape this
was written against. tests/test_output_drain.py runs both on the same Outputs.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from pulumi.runtime import settings as _settings
from pulumi.runtime import stack as _stack

_SDK_WAIT = _stack.wait_for_rpcs


async def _drain_round(pending: list[Any]) -> None:
    """Wait for every Output in ``pending``; re-raise the first that fails or is cancelled."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    left = len(pending)

    def on_done(fut: asyncio.Future) -> None:
        nonlocal left
        left -= 1
        if finished.done():
            return
        if fut.cancelled() or fut.exception() is not None:
            finished.set_result(fut)
        elif left == 0:
            finished.set_result(None)

    for fut in pending:
        fut.add_done_callback(on_done)
    try:
        failed = await finished
    finally:
        for fut in pending:
            fut.remove_done_callback(on_done)
    if failed is not None:
        await failed  # raises its exception (or CancelledError), as the SDK's `await task`


async def _drain_outputs() -> None:
    lock, outputs = _settings.SETTINGS.lock, _settings.SETTINGS.outputs
    while True:
        with lock:
            if not outputs:
                return
            pending = list(outputs)
            outputs.clear()
        await _drain_round(pending)


async def wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    while True:
        await _SDK_WAIT(await_all_outstanding_tasks=False)
        if not await_all_outstanding_tasks:
            return
        await _drain_outputs()
        if len(_settings._get_rpc_manager().rpcs) == 0:
            return


def install() -> bool:
    """Swap in ``wait_for_rpcs`` above; False (and nothing changed) if the SDK's module differs."""
    if _stack.wait_for_rpcs is wait_for_rpcs:
        return True
    if _stack.wait_for_rpcs is not _SDK_WAIT or not inspect.iscoroutinefunction(_SDK_WAIT):
        return False
    if list(inspect.signature(_SDK_WAIT).parameters) != ["await_all_outstanding_tasks"]:
        return False
    settings = _settings.SETTINGS
    if not hasattr(settings, "outputs") or not hasattr(settings, "lock") or not hasattr(_settings, "_get_rpc_manager"):
        return False
    _stack.wait_for_rpcs = wait_for_rpcs
    return True
