"""Small helpers for tests: unique references, waiting with a deadline, fresh groups."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..kafka import topic_partitions

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


async def start_new_groups_at_end(bootstrap_servers: str, groups: Iterable[tuple[str, str]]) -> int:
    """Give each ``(group id, topic)`` without committed offsets the topic's end offsets.

    Work subscribers start from the earliest record when their group has no offsets, so
    a first deployment loses nothing. A test's service on a shared namespace should
    instead start after what earlier tests sent. Returns how many partition offsets it
    committed.
    """
    committed = 0
    for group_id, topic in groups:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            numbers = await topic_partitions(bootstrap_servers, topic)
            tps = [TopicPartition(topic, number) for number in numbers]
            ends = await consumer.end_offsets(tps)
            missing = {tp: ends[tp] for tp in tps if await consumer.committed(tp) is None}
            if missing:
                consumer.assign(list(missing))
                await consumer.commit(missing)
                committed += len(missing)
        finally:
            await consumer.stop()
    return committed
