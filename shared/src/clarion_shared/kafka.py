"""Kafka plumbing on FastStream: the broker, correlation ids, publishing, consumer groups.

Consumers in Clarion take the raw record (``bytes``), parse it and call one use case,
with the house policy of ``clarion_shared.consuming`` (re-exported here): a record that
cannot be parsed, or whose processing keeps failing with an error that is not
transient, goes to ``<topic>.dlq`` with the reason; it never blocks the partition.
Transient errors (broker or database unreachable) are raised, so the record is not
committed and is delivered again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import chain
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.response import KafkaPublishCommand
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from prometheus_client import Gauge
from pydantic import TypeAdapter
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_fixed,
)

from .consuming import TRANSIENT_ERRORS as TRANSIENT_ERRORS
from .consuming import Positioned as Positioned
from .consuming import consume_batch as consume_batch
from .consuming import consume_positioned_batch as consume_positioned_batch
from .consuming import consume_record as consume_record
from .consuming import dead_letter as dead_letter
from .contracts.base import Contract
from .logging import get_correlation_id, get_logger, set_correlation_id
from .settings import InfraSettings

log = get_logger(__name__)

T = TypeVar("T")


class CorrelationMiddleware(BaseMiddleware[KafkaPublishCommand, Any]):
    """Binds the incoming record's correlation id for logs and outgoing records."""

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        previous = get_correlation_id()
        set_correlation_id(msg.correlation_id)
        try:
            return await call_next(msg)
        finally:
            set_correlation_id(previous)

    async def publish_scope(
        self,
        call_next: Callable[[KafkaPublishCommand], Awaitable[Any]],
        cmd: KafkaPublishCommand,
    ) -> Any:
        current = get_correlation_id()
        if current:
            cmd.correlation_id = current
        return await call_next(cmd)


def make_broker(settings: InfraSettings, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        middlewares=[CorrelationMiddleware],
        acks="all",
        linger_ms=settings.kafka_linger_ms,
        max_request_size=4 * 1024 * 1024,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        logger=None,
    )


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


async def the_message(msg: StreamMessage[Any]) -> StreamMessage[Any]:
    """The decoder of ``ConsumerGroups``' subscribers: the handler's one argument is the
    message itself (a ``KafkaMessage``; a batch's ``raw_message`` holds its records).

    Annotate that argument ``Any``, not ``KafkaMessage``: FastStream's ``KafkaMessage``
    is ``Annotated[..., Context()]``, and FastDepends resolves a ``Context`` argument in
    a worker thread, a thread hop for every fetch that cost more than the rest of
    FastStream's handling of it (py-spy, realtime sends).
    """
    return msg


# How long a batch subscriber's fetch waits for records when there are none; it returns
# as soon as records arrive, so a busy lane never waits for it (see ``_WaitingBatches``).
BATCH_FETCH_WAIT_MS = 500


class _WaitingBatches(BatchSubscriber):
    """FastStream's batch subscriber without its sleep after an empty fetch.

    FastStream waits ``batch_timeout_ms`` in ``getmany`` and, when nothing came, sleeps
    as long again before it fetches anew: a record that arrives during that sleep waits
    for its end. At FastStream's default (200 ms) an idle lane answered a sporadic
    realtime send in ~90 ms (p50, sends 0.25-0.45 s apart; 12 ms back to back), and a
    short timeout only trades that wait for wake-ups. Here an empty fetch is simply
    followed by the next one: ``getmany`` returns the moment records are there.
    """

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        fetched = await consumer.getmany(
            timeout_ms=self.batch_timeout_ms, max_records=self.max_records
        )
        return tuple(chain.from_iterable(fetched.values()))


def group_id_of(prefix: str, topic: str) -> str:
    """The consumer group of a service's subscribers to ``topic``: ``<prefix>.<topic>``."""
    return f"{prefix}.{topic}"


class ConsumerGroups:
    """A service's work subscribers: one consumer group per topic, and whether they joined.

    Each topic has a group of its own, ``<prefix>.<topic>``: a rebalance on one topic (a
    process joins, or a busy batch handler is slow to rejoin) never pauses another, so
    the realtime lanes keep flowing whatever happens to the batch ones.

    Each subscriber is committed only after its handler: ``NACK_ON_ERROR`` rewinds to the
    record when the handler raises, so a transient failure redelivers it, and
    ``consume_record`` dead-letters what can never succeed.

    ``instance`` turns on static membership (KIP-345): each subscriber joins as
    ``<instance>.<topic>``, so a process restarted under the same name takes its
    partitions back at once. Without it, a killed member keeps its partitions until its
    session expires (10 s), and the records on them wait that long.

    ``joined`` is a ``/readyz`` check: true once every subscriber has had its first
    assignment, so work sent after readiness is not left waiting for a group join.
    """

    def __init__(self, broker: KafkaBroker, prefix: str, instance: str | None = None) -> None:
        self.broker = broker
        self.prefix = prefix
        self.instance = instance or None
        self._joined: dict[str, asyncio.Event] = {}

    def group_id(self, topic: str) -> str:
        return group_id_of(self.prefix, topic)

    def subscriber(
        self, topic: str, listener: ConsumerRebalanceListener | None = None, **options: Any
    ) -> Callable[[Handler], Handler]:
        """``listener`` hears the group's rebalances too (after ``joined`` is marked).
        The handler is called with the ``KafkaMessage`` (``the_message``)."""
        options.setdefault("auto_offset_reset", "earliest")
        if options.get("batch"):
            options.setdefault("batch_timeout_ms", BATCH_FETCH_WAIT_MS)
        if self.instance is not None:
            options["group_instance_id"] = f"{self.instance}.{topic}"
        joined = self._joined.setdefault(topic, asyncio.Event())
        decorator: Callable[[Handler], Handler] = self.broker.subscriber(
            topic,
            group_id=self.group_id(topic),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            listener=_JoinListener(joined, listener, topic),
            decoder=the_message,
            **options,
        )
        if type(decorator) is BatchSubscriber:
            decorator.__class__ = _WaitingBatches  # same layout (no slots of its own)
        return decorator

    def consume_batches(
        self,
        topic: str,
        adapter: TypeAdapter[T],
        handle_many: Callable[[Sequence[T]], Awaitable[None]],
        **options: Any,
    ) -> None:
        """Subscribe ``handle_many`` to what each fetch of ``topic`` holds (``consume_batch``)."""

        async def on_batch(msg: Any) -> None:  # the KafkaMessage (the_message)
            await consume_batch(self.broker, msg, topic, adapter, handle_many)

        self.subscriber(topic, batch=True, **options)(on_batch)

    def consume_positioned_batches(
        self,
        topic: str,
        adapter: TypeAdapter[T],
        handle_many: Callable[[Sequence[Positioned[T]]], Awaitable[None]],
        *,
        wanted: Callable[[bytes], bool] | None = None,
        **options: Any,
    ) -> None:
        """Like ``consume_batches``, each value with where it was read
        (``consume_positioned_batch``)."""

        async def on_batch(msg: Any) -> None:  # the KafkaMessage (the_message)
            await consume_positioned_batch(
                self.broker, msg, topic, adapter, handle_many, wanted=wanted
            )

        self.subscriber(topic, batch=True, **options)(on_batch)

    async def joined(self) -> bool:
        return all(event.is_set() for event in self._joined.values())


ASSIGNED_PARTITIONS = Gauge(
    "clarion_kafka_partitions_assigned",
    "Partitions of a topic this process consumes in its consumer group",
    ["topic"],
)


class _JoinListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Marks the first assignment, even an empty one (more members than partitions),
    and passes every rebalance on to ``then`` when given."""

    def __init__(
        self, joined: asyncio.Event, then: ConsumerRebalanceListener | None, topic: str
    ) -> None:
        self._joined = joined
        self._then = then
        self._assigned = ASSIGNED_PARTITIONS.labels(topic=topic)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._assigned.set(0)
        if self._then is not None:
            await self._then.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._assigned.set(len(assigned))
        self._joined.set()
        if self._then is not None:
            await self._then.on_partitions_assigned(assigned)


_YIELD_EVERY = 200


def _key(key: str | None) -> bytes | None:
    return key.encode() if key is not None else None


async def publish(
    broker: KafkaBroker,
    topic: str,
    message: Contract | None,
    key: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Publish one record and wait for the broker's acknowledgement.

    ``None`` publishes a tombstone (for compacted topics).
    """
    body: bytes = message.to_bytes() if message is not None else b""
    await broker.publish(body, topic, key=_key(key), headers=headers)


async def publish_many(
    broker: KafkaBroker, topic: str, messages: Iterable[tuple[str | None, Contract]]
) -> int:
    """Publish many records pipelined, then wait for every acknowledgement.

    The producer batches what is in flight, so this costs a few round trips for a
    whole chunk instead of one per record.
    """
    futures: list[asyncio.Future[Any]] = []
    count = 0
    for key, message in messages:
        fut = await broker.publish(message.to_bytes(), topic, key=_key(key), no_confirm=True)
        if fut is not None:  # FastStream's in-memory test broker confirms at once
            futures.append(fut)
        count += 1
        if count % _YIELD_EVERY == 0:
            # Queuing a record rarely suspends: without this, thousands of them would
            # hold the event loop (and every realtime send waiting on it).
            await asyncio.sleep(0)
    if futures:
        await asyncio.gather(*futures)
    return count


class BrokerConnection:
    """A broker as a resource: started and stopped once, pinged by /readyz."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def ready(self) -> bool:
        return await self.broker.ping(timeout=2.0)


class TopicMissing(TimeoutError):
    """The topic did not exist in time."""


async def topic_partitions(
    bootstrap_servers: str, topic: str, timeout_s: float = 10.0
) -> list[int]:
    """The partition numbers of ``topic``, waiting up to ``timeout_s`` for it to exist."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def partitions() -> list[int]:
        described = await admin.describe_topics([topic])
        found = sorted(p["partition"] for d in described for p in d.get("partitions", []))
        if not found:
            raise TopicMissing(f"topic {topic} does not exist")
        return found

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        retrying = AsyncRetrying(
            stop=stop_after_delay(timeout_s),
            wait=wait_fixed(0.2),
            retry=retry_if_exception_type(TopicMissing),
            reraise=True,
        )
        return await retrying(partitions)
    finally:
        await admin.close()
