"""Whether the client of the request being handled is still there.

``clarion_shared.http.CallerGoneMiddleware`` sets a request's "gone" event when its
client disconnects before the answer; the work acts on it here, without depending on
the web framework: ``unless_caller_gone`` cancels a call that is safe to cancel (an
HTTP call to a peer), ``stop_if_caller_gone`` is a loop's safe point between database
operations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")


class CallerGone(Exception):
    """The request's client disconnected before its answer: the work stops here."""


_GONE: ContextVar[asyncio.Event | None] = ContextVar("clarion_caller_gone", default=None)


@contextmanager
def gone_scope(gone: asyncio.Event) -> Iterator[None]:
    token = _GONE.set(gone)
    try:
        yield
    finally:
        _GONE.reset(token)


def caller_gone() -> bool:
    """Whether the client of the request being handled has disconnected."""
    gone = _GONE.get()
    return gone is not None and gone.is_set()


def stop_if_caller_gone() -> None:
    """Raise ``CallerGone`` when the request's client has left (a loop's safe point)."""
    if caller_gone():
        raise CallerGone()


async def unless_caller_gone(work: Awaitable[T]) -> T:
    """Await ``work``; cancel it and raise ``CallerGone`` if the client leaves first.

    For calls that are safe to cancel midway (an HTTP call to a peer: its connection is
    closed, and the peer stops in turn). Not for database operations: cancelling
    PyMongo while it waits for a pooled connection can leave its pool locked for good
    (seen with Python 3.11), so those finish, bounded by their own timeout, and loops
    over them call ``stop_if_caller_gone`` between operations instead.
    """
    gone = _GONE.get()
    if gone is None:
        return await work
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        raise CallerGone()
    return task.result()
