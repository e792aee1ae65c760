"""Each plan step's resource, by step id, usable as a dependency before it exists.

Steps of one cluster depend on each other across components (A2 labels wait for A1's install,
A5 removals wait for A3's gate and A4's gateway, ...). Each dependency is a future that the
owning component fulfils when it creates the step's resource, so components can be built in
any order and still translate ``step.depends_on`` exactly.
"""

from __future__ import annotations

import asyncio
from typing import Sequence

import pulumi

from meshca.plan import Step


class StepGraph:
    def __init__(self, always_after: Sequence[pulumi.Resource] = ()) -> None:
        self._futures: dict[str, asyncio.Future] = {}
        self._resources: dict[str, pulumi.Resource] = {}
        self._rendered: set[str] = set()
        # Resources every step waits for (the transition guard): a refused transition
        # holds back the whole migration, not only the resources that happen to follow it.
        self._always_after = list(always_after)

    def _future(self, step_id: str) -> asyncio.Future:
        if step_id not in self._futures:
            self._futures[step_id] = asyncio.get_event_loop().create_future()
        return self._futures[step_id]

    def done(self, step: Step | str, resource: pulumi.Resource) -> None:
        step_id = step if isinstance(step, str) else step.id
        future = self._future(step_id)
        if not future.done():
            future.set_result(resource)
        self._resources[step_id] = resource
        self._rendered.add(step_id)

    def stand_in(self, step: Step) -> None:
        """A step whose resource a later step took over (the canary, upgraded in place in B3):
        dependents of the earlier step wait for its own last dependency instead. They ran
        before the takeover; pointing them at the resource's new version would be a cycle
        (A5 waited for A4's canary; B3's version of it waits for B2, which waits for A5)."""
        target = self._future(step.depends_on[-1])
        future = self._future(step.id)
        self._rendered.add(step.id)

        def forward(done: asyncio.Future) -> None:
            if not future.done():
                future.set_result(done.result())

        target.add_done_callback(forward)
        if target.done():
            forward(target)

    def after(self, *steps: Step) -> list[pulumi.Input[pulumi.Resource]]:
        """The dependencies of ``steps`` (their depends_on ids) plus the guard."""
        ids = dict.fromkeys(d for s in steps for d in s.depends_on)
        return [*self._always_after, *(pulumi.Output.from_input(self._future(i)) for i in ids)]

    def resource(self, step_id: str) -> pulumi.Resource:
        return self._resources[step_id]

    def abort(self, error: BaseException) -> None:
        """Fail every dependency nobody will fulfil, so the program stops instead of hanging."""
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)

    def missing(self) -> list[str]:
        """Step ids something depends on that no component rendered (a plan/component gap)."""
        return sorted(i for i in self._futures if i not in self._rendered)
