"""What a service starts and stops, in order: the one lifespan every composition root uses.

A composition root lists its :class:`Resource` s (database and broker connections,
repositories that create their indexes, reply consumers, HTTP clients) in start order;
:func:`lifespan` starts them in that order and stops them in reverse, whatever fails. A
test substitutes adapters whose start and stop do nothing; production code has no
branch for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI

from .logging import get_logger

log = get_logger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Resource(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Connection(Resource, Protocol):
    """A connection several adapters share (the database's, the broker's)."""

    async def ready(self) -> bool:
        """The /readyz check: the other side answers."""
        ...


@dataclass(frozen=True)
class Hooks:
    """A resource made of two calls (``Hooks(on_start, on_stop)``)."""

    on_start: Callable[[], Awaitable[Any]]
    on_stop: Callable[[], Awaitable[Any]]

    async def start(self) -> None:
        await self.on_start()

    async def stop(self) -> None:
        await self.on_stop()


async def _nothing() -> None:
    return None


def on_start(call: Callable[[], Awaitable[Any]]) -> Hooks:
    """A resource that only starts (the dev app written once the repositories are up)."""
    return Hooks(call, _nothing)


RECANCEL_EVERY_S = 0.5


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again every
    ``RECANCEL_EVERY_S`` one that has not.

    One cancel is not always enough: on Python 3.11 ``asyncio.wait_for`` loses a
    cancellation that comes as the awaitable it waits for completes (PyMongo's async
    network layer waits that way), and the task then goes on as if nothing happened,
    to its next ``sleep``. A stop that awaited it after one cancel waited for good (a
    gateway's shutdown hung in the tests that way). What a task raises is not re-raised
    here: a stop only needs the task ended.
    """
    pending = {task for task in tasks if not task.done()}
    rounds = 0
    while pending:
        if rounds:
            log.warning("lifecycle.cancel_repeated", tasks=sorted(t.get_name() for t in pending))
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY_S)
        rounds += 1
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: not logged as "never retrieved"


class Periodic:
    """A resource that calls ``tick`` at start and then every ``interval_s`` until it is
    stopped (a scheduler, an outbox's republisher, a heartbeat). A tick that fails (the
    database or the broker away) is logged as ``failure_event`` and tried again at the
    next one; a subclass gives ``tick``."""

    def __init__(self, interval_s: float, failure_event: str) -> None:
        self._interval_s = interval_s
        self._failure_event = failure_event
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> object:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._failure_event)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(self._failure_event, error=repr(exc))
            await asyncio.sleep(self._interval_s)


def lifespan(service: str, resources: Sequence[Resource]) -> Lifespan:
    @asynccontextmanager
    async def run(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for resource in resources:
                await resource.start()
                stack.push_async_callback(resource.stop)
            log.info("service.started", service=service)
            yield
            log.info("service.stopping", service=service)

    return run
