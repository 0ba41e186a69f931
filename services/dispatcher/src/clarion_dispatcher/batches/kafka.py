"""The tracker's announcer: ``ReceiversSettled`` and ``BatchCompleted`` events and the
tracker's offsets, in one Kafka transaction.

A transactional producer (aiokafka) of its own, apart from the service's broker: its
records are visible to ``read_committed`` readers only once the transaction commits,
and the offsets it commits for the tracker's group commit with them. Its
``transactional_id`` is stable per process instance: a process restarted under the same
name fences its dead predecessor at ``start`` and aborts the transaction that one left
open. A process that never comes back leaves its open transaction to the broker, which
aborts it after ``transaction_timeout_ms`` (read_committed readers of that partition
wait until then): keep it short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from clarion_shared.logging import get_logger

from .service import Announced, TopicPartitionKey

log = get_logger(__name__)

# Events this instance has committed, remembered so that a fetch handled again in
# process (after its transaction committed) does not publish them twice.
_REMEMBERED = 10_000


class AnnounceFailed(KafkaError):  # type: ignore[misc]
    """The transaction did not commit (a ``KafkaError``: transient, the fetch comes back)."""


class TransactionalAnnouncer:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        transactional_id: str,
        group_id: str,
        transaction_timeout_ms: int,
        request_timeout_ms: int,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._transactional_id = transactional_id
        self._group_id = group_id
        self._transaction_timeout_ms = transaction_timeout_ms
        self._request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None  # made in start(): needs the loop
        self._lock = asyncio.Lock()
        self._committed: OrderedDict[str, None] = OrderedDict()

    @property
    def transactional_id(self) -> str:
        return self._transactional_id

    async def start(self) -> None:
        """Register the transactional id (fencing a predecessor of the same id)."""
        await self._ready_producer()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def ready(self) -> bool:
        return self._producer is not None

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap_servers,
                client_id=f"tracker-{self._transactional_id}",
                transactional_id=self._transactional_id,
                transaction_timeout_ms=self._transaction_timeout_ms,
                request_timeout_ms=self._request_timeout_ms,
            )
            try:
                await producer.start()  # waits for the producer id: fences, aborts
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def announce(
        self, events: Sequence[Announced], offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        async with self._lock:  # one transaction at a time on the producer
            fresh = [event for event in events if event.event_id not in self._committed]
            if not fresh:
                return
            try:
                await self._transaction(fresh, offsets)
            except Exception as exc:
                # Whatever state the producer is in, a new one fences it and aborts its
                # transaction; the fetch is handled again.
                await self._discard()
                log.warning("batch.announce_failed", events=len(fresh), error=repr(exc))
                raise AnnounceFailed(repr(exc)) from exc
            for event in fresh:
                self._committed[event.event_id] = None
                if len(self._committed) > _REMEMBERED:
                    self._committed.popitem(last=False)
            log.info(
                "batch.announced",
                send_ids=sorted({event.send_id for event in fresh}),
                events=len(fresh),
            )

    async def _transaction(
        self, events: Sequence[Announced], offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        producer = await self._ready_producer()
        await producer.begin_transaction()
        sent = [
            await producer.send(self._topic, event.to_bytes(), key=event.send_id.encode())
            for event in events
        ]
        await asyncio.gather(*sent)
        positions = {TopicPartition(topic, part): at for (topic, part), at in offsets.items()}
        await producer.send_offsets_to_transaction(positions, self._group_id)
        await producer.commit_transaction()

    async def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
