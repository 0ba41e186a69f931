"""Group commit: many tasks each wait for their item to be written, and the items that
arrive while one write is in flight go together in the next.

A delivery worker writes each job's claim (just before an email is committed to its
server) and each job's outcome (just after the provider's answer) this way: one bulk
insert for all the sends that reached that point together, never a round trip per
recipient, yet no send waits for its neighbours to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``write`` takes the items gathered and answers one result per item, in order."""

    def __init__(self, write: Callable[[Sequence[T]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.writes = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the tasks ready now join this write
        while self._pending:
            batch, self._pending = self._pending, []
            self.writes += 1
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
