"""Small helpers for tests: unique references and waiting with a deadline."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def random_ref(prefix: str = "t") -> str:
    """A unique id for one test's objects (apps, uids, topics)."""
    return f"{prefix}-{secrets.token_hex(5)}"


async def wait_until(
    probe: Callable[[], Awaitable[T | None]],
    timeout_s: float = 20.0,
    interval_s: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last={last!r}")
