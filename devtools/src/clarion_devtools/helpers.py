"""Small helpers for tests: unique references, waiting with a deadline, fresh groups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_delay, wait_fixed

from clarion_shared.kafka import topic_partitions
from clarion_shared.settings import InfraSettings

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
    retrying = AsyncRetrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s),
        retry=retry_if_result(lambda value: not value),
    )

    async def attempt() -> T | None:
        # tenacity awaits only coroutine functions; ``probe`` is often a lambda.
        return await probe()

    try:
        found: T = await retrying(attempt)
    except RetryError as exc:
        last = exc.last_attempt.result() if not exc.last_attempt.failed else None
        raise AssertionError(
            f"timed out after {timeout_s}s waiting for {what}; last={last!r}"
        ) from None
    return found


async def wait_for_kafka(settings: InfraSettings, timeout_s: float = 60.0) -> None:
    """Wait until the cluster answers a metadata request."""

    async def answers() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        try:
            await asyncio.wait_for(admin.start(), 10)
            await admin.list_topics()
        finally:
            await admin.close()

    retrying = AsyncRetrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.5), reraise=True)
    await retrying(answers)


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


async def completions_of(bootstrap_servers: str, topic: str, send_id: str) -> list[dict[str, Any]]:
    """Every ``BatchCompleted`` of a batch or campaign (``send_id``) on the status
    ``topic``, from its beginning, as a ``read_committed`` reader sees them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        await consumer.end_offsets([TopicPartition(topic, 0)])  # loads the metadata
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[dict[str, Any]] = []
        marker = b'"type":"batch_completed"'
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            fetched = await consumer.getmany(*tps, timeout_ms=500)
            for records in fetched.values():
                for record in records:
                    if record.value and marker in record.value:
                        event = json.loads(record.value)
                        if event["send_id"] == send_id:
                            found.append(event)
        return found
    finally:
        await consumer.stop()


async def notification_records(mongodb_url: str, db_name: str, send_id: str) -> int:
    """The send's notification records in the dispatcher's database (``db_name``): its
    receivers recorded so far, one per channel."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        return await mongo[db_name]["notifications"].count_documents({"send_id": send_id})
    finally:
        await mongo.close()


class CommandLog(CommandListener):
    """The commands a MongoDB client sent, by name, as sent (for tests that count round
    trips or read a filter), and the most of each it had in flight at once (``peak``):
    pass it in ``event_listeners``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.peak: dict[str, int] = {}
        self._running: dict[tuple[int, Any], str] = {}

    def started(self, event: CommandStartedEvent) -> None:
        self.sent.append((event.command_name, dict(event.command)))
        self._running[(event.request_id, event.connection_id)] = event.command_name
        running = sum(1 for name in self._running.values() if name == event.command_name)
        self.peak[event.command_name] = max(self.peak.get(event.command_name, 0), running)

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self._running.pop((event.request_id, event.connection_id), None)

    def failed(self, event: CommandFailedEvent) -> None:
        self._running.pop((event.request_id, event.connection_id), None)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    def clear(self) -> None:
        self.sent.clear()
        self.peak.clear()


@contextlib.asynccontextmanager
async def logged_client(url: str) -> AsyncIterator[tuple[AsyncMongoClient[Any], CommandLog]]:
    """A client of its own whose commands are logged."""
    log = CommandLog()
    client: AsyncMongoClient[Any] = AsyncMongoClient(url, event_listeners=[log])
    try:
        yield client, log
    finally:
        await client.close()


# FastAPI's classifications of endpoint and dependency callables, each a module-level
# LRU cache of 4,096 entries (fastapi.dependencies.models, FastAPI 0.16x).
_FASTAPI_CALLABLE_CACHES = (
    "_is_gen_callable_cached",
    "_is_async_gen_callable_cached",
    "_is_coroutine_callable_cached",
)


def release_composed_apps() -> None:
    """Let the apps composed so far be freed (pytest_plugin calls it after each test).

    FastAPI keeps the callables it classified in module-level LRU caches, and through
    their closures every app they belong to: the last ~40 gateway apps, ~1.3 million
    objects that each full pass of the garbage collector walked (1-3 s, 25 s of a
    75-s run of three gateway test modules). A service composes its app once; a test
    process composes hundreds. The caches are private, so each is cleared if present.
    """
    try:
        from fastapi.dependencies import models
    except ImportError:
        return
    for name in _FASTAPI_CALLABLE_CACHES:
        cache = getattr(models, name, None)
        if cache is not None and hasattr(cache, "cache_clear"):
            cache.cache_clear()
