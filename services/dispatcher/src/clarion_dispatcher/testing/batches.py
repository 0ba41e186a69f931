"""In-memory batches and a recording announcer (the ports of ``batches.service``), and
the events a delivery worker publishes, which the tracker settles receivers from.

``InMemoryBatches`` runs through the same repository suite as ``MongoBatches``, and
notes each chunk ``settle`` rewrites; ``RecordingAnnouncer`` keeps what was announced
(completions and receivers settled) and the offsets committed with it, and can fail a
transaction the way Kafka does (nothing published, nothing committed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaConnectionError

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType, SendMode
from clarion_shared.contracts.status import (
    BatchCompleted,
    DeliveryFailed,
    DeliverySent,
    ReceiversSettled,
)

from ..batches.domain import ChunkOutcome, batch_key, chunk_key
from ..batches.models import Batch, BatchChunk, FinalStatus
from ..batches.service import Announced
from ..batches.settling import with_receivers
from ..notifications.domain import event_id, record_id
from ..sends.domain import batch_entry, dispatched_entry
from .sends import InMemorySends

TopicPartitionKey = tuple[str, int]


class InMemoryBatches:
    """Keeps its batches' entries in ``sends`` (its own, unless one is shared)."""

    def __init__(self, sends: InMemorySends | None = None) -> None:
        self.batches: dict[str, Batch] = {}
        self.chunk_docs: dict[str, BatchChunk] = {}
        self.record_calls = 0
        self.settled_writes: list[str] = []  # a chunk's id per rewrite by ``settle``
        self.receiver_reads: list[int | None] = []  # per read: its chunk, None for all
        self.sends = sends or InMemorySends()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def register(self, batch: Batch, chunks: Sequence[BatchChunk]) -> None:
        for chunk in chunks:
            self.chunk_docs.setdefault(chunk.id, chunk)
        await self.sends.add_absent([batch_entry(batch)])
        self.batches.setdefault(batch.id, batch)

    async def get(self, app_id: str, batch_id: str) -> Batch | None:
        batch = self.batches.get(batch_key(app_id, batch_id))
        return batch if batch is not None and batch.app_id == app_id else None

    async def chunks(self, batch: Batch, *, receivers: bool = True) -> list[BatchChunk]:
        found = [chunk for chunk in self.chunk_docs.values() if chunk.batch_key == batch.id]
        if receivers:
            self.receiver_reads.append(None)
        if not receivers:
            found = [chunk.model_copy(update={"receivers": []}) for chunk in found]
        return sorted(found, key=lambda chunk: chunk.chunk)

    async def chunks_numbered(self, batch: Batch, numbers: Sequence[int]) -> list[BatchChunk]:
        wanted = [chunk_key(batch.app_id, batch.batch_id, number) for number in numbers]
        self.receiver_reads.extend(numbers)
        found = [self.chunk_docs[one] for one in wanted if one in self.chunk_docs]
        return sorted(found, key=lambda chunk: chunk.chunk)

    def _recorded(self, outcome: ChunkOutcome) -> BatchChunk:
        current = self.chunk_docs.get(outcome.key)
        return BatchChunk(
            id=outcome.key,
            batch_key=outcome.batch_key,
            app_id=outcome.app_id,
            batch_id=outcome.batch_id,
            chunk=outcome.chunk,
            receivers=list(outcome.receivers),
            dispatched=True,
            sent=outcome.count("sent"),
            failed=outcome.count("failed"),
            pending=outcome.count("pending"),
            delivered=current.delivered if current is not None else [],
            event_read=current.event_read if current is not None else False,
        )

    async def record(self, outcomes: Sequence[ChunkOutcome]) -> None:
        self.record_calls += 1
        for outcome in outcomes:
            current = self.chunk_docs.get(outcome.key)
            if current is not None and current.dispatched:
                continue  # first write wins
            self.chunk_docs[outcome.key] = self._recorded(outcome)
            if current is None:
                await self.sends.add_absent([dispatched_entry(outcome)])
                self.batches.setdefault(outcome.batch_key, outcome.unregistered_batch())
            await self.sends.dispatching(
                outcome.app_id, outcome.batch_id, outcome.template_id, outcome.template_version
            )

    async def correct(self, outcomes: Sequence[ChunkOutcome]) -> None:
        for outcome in outcomes:
            if outcome.key in self.chunk_docs:
                self.chunk_docs[outcome.key] = self._recorded(outcome)

    async def finish(
        self,
        batch: Batch,
        status: FinalStatus,
        completed_at: int,
        decided_by: str,
        decided_event: str,
    ) -> bool:
        await self.sends.finished(batch.app_id, batch.batch_id, status)
        current = self.batches.get(batch.id)
        if current is None or current.final:
            return False
        self.batches[batch.id] = current.model_copy(
            update={
                "status": status,
                "final": True,
                "completed_at": completed_at,
                "decided_by": decided_by,
                "decided_event": decided_event,
            }
        )
        return True

    async def mark_events_read(self, chunk_ids: Sequence[str]) -> None:
        for chunk_id in chunk_ids:
            chunk = self.chunk_docs[chunk_id]
            self.chunk_docs[chunk_id] = chunk.model_copy(update={"event_read": True})

    async def mark_delivered(self, chunk_id: str, uids: Sequence[str]) -> None:
        chunk = self.chunk_docs[chunk_id]
        delivered = [*chunk.delivered, *(uid for uid in uids if uid not in chunk.delivered)]
        self.chunk_docs[chunk_id] = chunk.model_copy(update={"delivered": delivered})

    async def settle(self, chunks: Sequence[BatchChunk]) -> None:
        for chunk in chunks:
            current = self.chunk_docs.get(chunk.id)
            if current is not None and current.dispatched:
                self.settled_writes.append(chunk.id)
                self.chunk_docs[chunk.id] = with_receivers(current, chunk.receivers)


@dataclass(frozen=True)
class Transaction:
    """What one transaction published, in order, and the offsets it committed."""

    published: list[Announced]
    offsets: dict[TopicPartitionKey, int]

    @property
    def events(self) -> list[BatchCompleted]:
        """Its completions."""
        return [event for event in self.published if isinstance(event, BatchCompleted)]

    @property
    def settled(self) -> list[ReceiversSettled]:
        return [event for event in self.published if isinstance(event, ReceiversSettled)]


@dataclass
class RecordingAnnouncer:
    """``committed``: the transactions that committed (share it with a new announcer to
    stand for a restarted process). ``fail_next`` fails the next ones (nothing
    committed). An event this instance committed already is left out, as the real one
    does (it remembers them in process)."""

    committed: list[Transaction] = field(default_factory=list)
    attempts: int = 0
    fail_next: int = 0
    remembered: set[str] = field(default_factory=set)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ready(self) -> bool:
        return True

    @property
    def announced(self) -> list[BatchCompleted]:
        """The completions committed."""
        return [event for transaction in self.committed for event in transaction.events]

    @property
    def settled(self) -> list[ReceiversSettled]:
        """The ``ReceiversSettled`` committed."""
        return [event for transaction in self.committed for event in transaction.settled]

    async def announce(
        self, events: Sequence[Announced], offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        fresh = [event for event in events if event.event_id not in self.remembered]
        if not fresh:
            return
        self.attempts += 1
        if self.fail_next:
            self.fail_next -= 1
            raise KafkaConnectionError("the transaction did not commit")
        self.committed.append(Transaction(fresh, dict(offsets)))
        self.remembered.update(event.event_id for event in fresh)


def delivery_outcome(
    app_id: str,
    send_id: str,
    uid: str,
    channel_type: ChannelType,
    channel_id: str,
    *,
    mode: SendMode = "batch",
    error: ErrorInfo | None = None,
    occurred_at: int = 1,
    chunk: int | None = None,
) -> DeliverySent | DeliveryFailed:
    """What a delivery worker publishes once the provider answered for one queued
    delivery: ``DeliverySent``, or ``DeliveryFailed`` with ``error``; its ids derived
    as the fan-out's record id and the worker's event id are (``chunk``: the job's, as
    workers say it; None as an older worker's event)."""
    notification = record_id(app_id, send_id, uid, channel_id)
    common: dict[str, Any] = {
        "app_id": app_id,
        "send_id": send_id,
        "mode": mode,
        "occurred_at": occurred_at,
        "uid": uid,
        "channel_type": channel_type,
        "channel_id": channel_id,
        "notification_id": notification,
        "chunk": chunk,
    }
    if error is None:
        return DeliverySent(event_id=event_id(notification, "delivery_sent"), **common)
    return DeliveryFailed(event_id=event_id(notification, "delivery_failed"), error=error, **common)
