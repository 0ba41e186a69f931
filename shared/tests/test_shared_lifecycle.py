"""Stopping what runs in the background ends it, even when a library swallowed the
first cancellation (Python 3.11's ``asyncio.wait_for`` can, and PyMongo's async network
layer waits that way: a gateway's shutdown once hung for good on it)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from clarion_shared.lifecycle import Periodic, cancel_and_wait

STOP_WITHIN_S = 10.0  # a bound for a hang, not a speed claim


async def swallow_one_cancellation(entered: asyncio.Event) -> None:
    """What a lost cancellation looks like to the task: its await completes normally."""
    entered.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        asyncio.current_task().uncancel()  # type: ignore[union-attr]


async def stops(stop: Coroutine[Any, Any, None]) -> None:
    """The stop ends by itself (not rescued by a cancellation of ours, which a stop
    that awaits the task would pass on to it)."""
    task = asyncio.create_task(stop)
    done, _ = await asyncio.wait({task}, timeout=STOP_WITHIN_S)
    assert done, f"the stop did not end within {STOP_WITHIN_S} s"
    task.result()


class SwallowingTick(Periodic):
    def __init__(self) -> None:
        super().__init__(3600.0, "test.tick_failed")
        self.entered = asyncio.Event()
        self.ticks = 0

    async def tick(self) -> None:
        self.ticks += 1
        await swallow_one_cancellation(self.entered)


async def test_a_periodic_whose_tick_swallowed_the_cancel_still_stops() -> None:
    periodic = SwallowingTick()
    await periodic.start()
    await asyncio.wait_for(periodic.entered.wait(), STOP_WITHIN_S)
    await stops(periodic.stop())
    assert periodic.ticks == 1  # it ended in its sleep, not in another tick


async def test_cancel_and_wait_ends_every_task_whatever_it_did() -> None:
    entered = asyncio.Event()
    stubborn = asyncio.create_task(swallow_one_cancellation(entered))
    sleeper = asyncio.create_task(asyncio.sleep(3600))

    async def broken() -> None:
        raise RuntimeError("failed before the stop")

    failed = asyncio.create_task(broken())
    await entered.wait()
    await stops(cancel_and_wait(stubborn, sleeper, failed))
    assert stubborn.done()
    assert not stubborn.cancelled()  # it returned after swallowing
    assert sleeper.cancelled()
    assert isinstance(failed.exception(), RuntimeError)
