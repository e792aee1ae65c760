"""components/output_drain.py waits for the program's Outputs as the SDK's ``wait_for_rpcs`` does,
without its per-completion scan of every pending Output (issue 11/13).

Each scenario runs twice on the same kind of Outputs: once through the SDK's own function
(``pulumi.runtime.stack.wait_for_rpcs`` of the installed pulumi, captured before any swap) and
once through the drop-in; both must end the same way. The cost is counted, not timed: how many
done callbacks each adds to the pending Outputs while they complete one at a time.
"""

from __future__ import annotations

import asyncio

import pytest
from pulumi.runtime import settings
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.rpc_manager import RPCManager

from components import output_drain

SDK_WAIT = output_drain._SDK_WAIT


@pytest.fixture(autouse=True)
def fresh_sdk_state():
    """A clean RPC manager and Output set for each test, the previous ones back afterwards.

    Both are process-wide in the SDK: a mocked program run earlier in the same pytest worker
    (``--dist loadfile`` decides which files share one) can leave its refusal recorded as the
    manager's unhandled exception and its RPC tasks bound to a closed loop; the waits under test
    would report those instead of their own scenario's outcome.
    """
    manager, outputs = settings.SETTINGS.rpc_manager, settings.SETTINGS.outputs
    settings.SETTINGS.rpc_manager, settings.SETTINGS.outputs = RPCManager(), set()
    try:
        yield
    finally:
        settings.SETTINGS.rpc_manager, settings.SETTINGS.outputs = manager, outputs


class Counted(asyncio.Future):
    """A Future that counts the done callbacks added to it."""

    added = 0

    def add_done_callback(self, fn, *, context=None):  # noqa: D102
        Counted.added += 1
        return super().add_done_callback(fn, context=context)


def run(wait, scenario):
    """Run ``scenario(loop)`` (it fills SETTINGS.outputs) then ``wait()``; the outcome and the count."""

    async def main():
        with settings.SETTINGS.lock:
            settings.SETTINGS.outputs.clear()
        scenario(asyncio.get_running_loop())
        Counted.added = 0
        try:
            await wait()
        except BaseException as exc:  # noqa: BLE001 the outcome is compared
            return type(exc).__name__ + ":" + str(exc), Counted.added
        return "ok", Counted.added

    # Not asyncio.run: it leaves the main thread without an event loop, and the mocked program
    # runs of later tests in this worker get theirs from asyncio.get_event_loop().
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main())
    finally:
        loop.close()
        asyncio.set_event_loop(asyncio.new_event_loop())


def one_at_a_time(n: int):
    def scenario(loop):
        futs = [Counted(loop=loop) for _ in range(n)]
        with settings.SETTINGS.lock:
            settings.SETTINGS.outputs.update(futs)
        for i, f in enumerate(futs):
            loop.call_later(0.0005 * (i + 1), f.set_result, i)

    return scenario


def test_the_sdk_scans_every_pending_output_per_completion_the_drain_does_not():
    n = 300
    sdk = run(SDK_WAIT, one_at_a_time(n))
    ours = run(output_drain.wait_for_rpcs, one_at_a_time(n))
    assert sdk[0] == ours[0] == "ok"
    # the SDK's loop: one asyncio.wait over what is still pending per wake-up with a completion
    # (n x (n + 1) / 2 = 45,150 when each completion wakes it alone; timers that fire together
    # share a wake-up)
    assert sdk[1] >= n * n // 10
    assert ours[1] <= 2 * n


def failing_second():
    def scenario(loop):
        futs = [Counted(loop=loop) for _ in range(5)]
        with settings.SETTINGS.lock:
            settings.SETTINGS.outputs.update(futs)
        loop.call_later(0.001, futs[0].set_result, 0)
        loop.call_later(0.002, futs[1].set_exception, RuntimeError("MCA0441 gate failed"))
        for i, f in enumerate(futs[2:]):
            loop.call_later(0.003 + 0.001 * i, f.set_result, i)

    return scenario


def cancelled_one():
    def scenario(loop):
        futs = [Counted(loop=loop) for _ in range(3)]
        with settings.SETTINGS.lock:
            settings.SETTINGS.outputs.update(futs)
        loop.call_later(0.001, futs[0].cancel)
        loop.call_later(0.002, futs[1].set_result, 1)
        loop.call_later(0.003, futs[2].set_result, 2)

    return scenario


def output_made_while_draining():
    # an Output completing creates another (as .apply does); both are awaited before the end
    done = []

    def scenario(loop):
        first = Counted(loop=loop)
        with settings.SETTINGS.lock:
            settings.SETTINGS.outputs.add(first)

        def spawn():
            second = Counted(loop=loop)
            with settings.SETTINGS.lock:
                settings.SETTINGS.outputs.add(second)
            loop.call_later(0.002, lambda: (done.append("second"), second.set_exception(ValueError("late failure"))))
            first.set_result(None)

        loop.call_later(0.001, spawn)

    return scenario, done


def rpc_issued_by_an_output():
    # an Output that, once resolved, starts an RPC: the wait covers the RPC too
    log = []

    def scenario(loop):
        out = Counted(loop=loop)
        with settings.SETTINGS.lock:
            settings.SETTINGS.outputs.add(out)

        async def rpc():
            await asyncio.sleep(0.002)
            log.append("rpc done")

        def resolve():
            settings._get_rpc_manager().rpcs.append(asyncio.ensure_future(rpc()))
            out.set_result(None)

        loop.call_later(0.001, resolve)

    return scenario, log


@pytest.mark.parametrize("make", [failing_second, cancelled_one], ids=["failure", "cancelled"])
def test_a_failed_or_cancelled_output_ends_the_wait_the_same_way(make):
    sdk, ours = run(SDK_WAIT, make())[0], run(output_drain.wait_for_rpcs, make())[0]
    assert sdk == ours != "ok"


def test_outputs_created_while_draining_are_awaited_and_their_failure_raised():
    for wait in (SDK_WAIT, output_drain.wait_for_rpcs):
        scenario, done = output_made_while_draining()
        outcome, _ = run(wait, scenario)
        assert (outcome, done) == ("ValueError:late failure", ["second"]), wait


def test_rpcs_started_by_outputs_are_awaited():
    for wait in (SDK_WAIT, output_drain.wait_for_rpcs):
        settings._get_rpc_manager().rpcs.clear()
        scenario, log = rpc_issued_by_an_output()
        outcome, _ = run(wait, scenario)
        assert (outcome, log) == ("ok", ["rpc done"]), wait


def test_install_swaps_the_sdk_function_once_and_only_for_its_shape(monkeypatch):
    monkeypatch.setattr(sdk_stack, "wait_for_rpcs", SDK_WAIT)
    assert output_drain.install() is True
    assert sdk_stack.wait_for_rpcs is output_drain.wait_for_rpcs
    assert output_drain.install() is True  # idempotent

    async def other(await_all_outstanding_tasks=True):  # an SDK whose function changed
        return None

    monkeypatch.setattr(sdk_stack, "wait_for_rpcs", other)
    assert output_drain.install() is False
    assert sdk_stack.wait_for_rpcs is other
