"""Use cases of batches (register, read, track to the one decision) and their ports.

The tracker is the single decider of a batch's final status (DESIGN.md: completion has
one decider). It reads ``clarion.status`` in a consumer group of its own, keyed by send
id, so one batch's events come in order on one partition. Exactly once, as
``read_committed`` readers see it: the ``BatchCompleted`` of a batch is published by
the handling of the record that decided it (``decided_by``: where that record was
read), in one Kafka transaction with the offsets of what was handled. A transaction
that never committed leaves those offsets uncommitted, so the deciding record comes
again and publishes again; a committed one means it never comes again. A republished
copy of the deciding event (a replayed fan-out: same event id, another offset) did not
decide anything and publishes nothing.

A campaign's send is tracked as a batch is (its events say ``mode="campaign"``, its
campaign id is the batch id), and its ``BatchCompleted`` carries that mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    ChunkDispatched,
    FeedItemDelivered,
)
from clarion_shared.ids import now as clock_now
from clarion_shared.kafka import Positioned
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from . import domain
from .domain import BatchNotFound, ChunkOutcome
from .models import (
    Batch,
    BatchChunk,
    BatchPublic,
    BatchReceiverPublic,
    BatchRegistration,
    FinalStatus,
    ReceiverStatus,
)

log = get_logger(__name__)

TopicPartitionKey = tuple[str, int]


class ChunkNotRecordedYet(TimeoutError):
    """A receiver's feed item was marked delivered before the fan-out created its chunk
    (a batch nobody registered; both are written at once): transient, the event is
    handled again."""


class BatchRepository(Resource, Protocol):
    """The ``batches`` and ``batch_chunks`` collections. Each batch's entry in the sends
    listing follows it (``sends.service.SendIndex``): listed when registered (or first
    recorded, when nobody registered it), ``dispatching`` when a chunk is recorded,
    final when finished."""

    async def register(self, batch: Batch, chunks: Sequence[BatchChunk]) -> None:
        """Insert the chunks, then the batch, each only where absent: a repeat is a no-op,
        and a batch that can be read has all its chunks."""
        ...

    async def get(self, app_id: str, batch_id: str) -> Batch | None: ...

    async def chunks(self, batch: Batch, *, receivers: bool = True) -> list[BatchChunk]:
        """The batch's chunk documents, by chunk number; without their receivers (the
        counts, ``dispatched``, ``delivered``) unless ``receivers``."""
        ...

    async def chunks_numbered(self, batch: Batch, numbers: Sequence[int]) -> list[BatchChunk]:
        """Those of the batch's chunk documents, whole, by chunk number."""
        ...

    async def record(self, outcomes: Sequence[ChunkOutcome]) -> None:
        """Record each chunk's outcomes once: a chunk already recorded stays as it is
        (first write wins). A chunk nobody registered is created, and its batch with it."""
        ...

    async def correct(self, outcomes: Sequence[ChunkOutcome]) -> None:
        """Overwrite recorded outcomes (receivers whose records were refused after)."""
        ...

    async def finish(
        self,
        batch: Batch,
        status: FinalStatus,
        completed_at: int,
        decided_by: str,
        decided_event: str,
    ) -> bool:
        """Set the final status, only if the batch is not final yet (one conditional
        update); whether this call did it."""
        ...

    async def mark_events_read(self, chunk_ids: Sequence[str]) -> None:
        """Note that the chunks' ``ChunkDispatched`` were read (idempotent)."""
        ...

    async def mark_delivered(self, chunk_id: str, uids: Sequence[str]) -> None:
        """Add receivers of a chunk to its ``delivered`` (idempotent)."""
        ...


class Announcer(Resource, Protocol):
    async def announce(
        self, events: Sequence[BatchCompleted], offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        """Publish ``events`` (key: the batch id) and commit ``offsets`` (the next
        offset to read, per topic partition) for the tracker's group, in one
        transaction: both or neither. Raises a transient error when it did not commit.
        An event this instance has committed already is left out (a fetch handled again
        in process after its transaction committed)."""
        ...

    async def ready(self) -> bool: ...


# ---------------------------------------------------------------- HTTP use cases


async def register_batch(
    app_id: str, batch_id: str, registration: BatchRegistration, *, batches: BatchRepository
) -> BatchPublic:
    """Store a batch's chunks and receivers before its commands are published; the
    batch as it is now (a repeat registers nothing and shows its progress).

    Raises ``BatchModeConflict`` when the id is another mode's (checked before writing
    anything, and again after, should the other registration have come in between).
    """
    batch, chunks = domain.registered(app_id, batch_id, registration)
    domain.same_send(await batches.get(app_id, batch_id), batch)
    await batches.register(batch, chunks)
    stored = await _found(app_id, batch_id, batches)
    domain.same_send(stored, batch)
    log.info(
        "batch.registered", app_id=app_id, batch_id=batch_id, mode=batch.mode, total=batch.total
    )
    return domain.public_batch(stored, await batches.chunks(stored, receivers=False))


async def _found(app_id: str, batch_id: str, batches: BatchRepository) -> Batch:
    batch = await batches.get(app_id, batch_id)
    if batch is None:
        raise BatchNotFound()
    return batch


async def get_batch(app_id: str, batch_id: str, *, batches: BatchRepository) -> BatchPublic:
    batch = await _found(app_id, batch_id, batches)
    return domain.public_batch(batch, await batches.chunks(batch, receivers=False))


async def list_receivers(
    app_id: str,
    batch_id: str,
    status: ReceiverStatus | None,
    page: int,
    per_page: int,
    *,
    batches: BatchRepository,
) -> tuple[list[BatchReceiverPublic], int]:
    """One page of the batch's receivers in send order (those in ``status``), and how
    many there are in all; only the chunks holding the page are read whole."""
    batch = await _found(app_id, batch_id, batches)
    span = domain.page_span(await batches.chunks(batch, receivers=False), status, page, per_page)
    if not span.chunks:
        return [], span.total
    receivers = domain.public_receivers(await batches.chunks_numbered(batch, span.chunks), status)
    return receivers[span.skip : span.skip + per_page], span.total


# ---------------------------------------------------------------- the tracker


BatchRef = tuple[str, str]  # (app id, batch id)


async def track(
    events: Sequence[Positioned[AnyStatusEvent]],
    *,
    batches: BatchRepository,
    announcer: Announcer,
    now: int | None = None,
) -> list[BatchCompleted]:
    """Handle one fetch of status events (in the order read): mark delivered receivers,
    decide the batches (and campaigns) whose chunks were dispatched, announce what was
    decided here. A realtime send's events are not looked at.

    Returns the events announced (or left out as already announced by this instance).
    """
    at = clock_now() if now is None else now
    dispatched: dict[BatchRef, list[Positioned[ChunkDispatched]]] = {}
    delivered: dict[BatchRef, set[str]] = {}
    for positioned in events:
        event = positioned.value
        if domain.tracked_mode(event.mode) is None:
            continue
        ref = (event.app_id, event.send_id)
        if isinstance(event, ChunkDispatched):
            dispatched.setdefault(ref, []).append(
                Positioned(event, positioned.topic, positioned.partition, positioned.offset)
            )
        elif isinstance(event, FeedItemDelivered):
            receiver = event.feed_item.get("receiver")
            if isinstance(receiver, str):
                delivered.setdefault(ref, set()).add(receiver)
    # Deliveries first: a batch decided in this fetch counts them.
    await asyncio.gather(*(_mark_delivered(ref, uids, batches) for ref, uids in delivered.items()))
    decided = await asyncio.gather(
        *(_decide(ref, chunk_events, batches, at) for ref, chunk_events in dispatched.items())
    )
    completions = [event for event in decided if event is not None]
    if completions:
        await announcer.announce(completions, next_offsets(events))
    return completions


def next_offsets(events: Sequence[Positioned[AnyStatusEvent]]) -> dict[TopicPartitionKey, int]:
    """Per topic partition, the offset after the last record handled."""
    offsets: dict[TopicPartitionKey, int] = {}
    for event in events:
        key = (event.topic, event.partition)
        offsets[key] = max(offsets.get(key, 0), event.offset + 1)
    return offsets


async def _decide(
    ref: BatchRef,
    events: Sequence[Positioned[ChunkDispatched]],
    batches: BatchRepository,
    at: int,
) -> BatchCompleted | None:
    """The batch's ``BatchCompleted`` when one of ``events`` decided it (now, or in an
    attempt whose transaction did not commit); None otherwise."""
    app_id, batch_id = ref
    batch = await batches.get(app_id, batch_id)
    if batch is None:
        log.warning("batch.unknown", app_id=app_id, batch_id=batch_id)
        return None
    positions = [domain.position_id(e.topic, e.partition, e.offset) for e in events]
    if not batch.final:
        await batches.mark_events_read(
            sorted({domain.chunk_key(app_id, batch_id, e.value.chunk) for e in events})
        )
        status = domain.decide(batch, await batches.chunks(batch, receivers=False))
        if status is None:
            return None
        deciding = events[-1].value.event_id
        if await batches.finish(batch, status, at, positions[-1], deciding):
            batch = batch.model_copy(
                update={
                    "status": status,
                    "final": True,
                    "completed_at": at,
                    "decided_by": positions[-1],
                    "decided_event": deciding,
                }
            )
            log.info("batch.decided", app_id=app_id, batch_id=batch_id, status=status)
        else:
            batch = await batches.get(app_id, batch_id)  # decided meanwhile, elsewhere
            if batch is None:
                return None
    if batch.decided_by not in positions:
        return None
    return domain.batch_completed(batch, await batches.chunks(batch, receivers=False))


async def _mark_delivered(ref: BatchRef, uids: set[str], batches: BatchRepository) -> None:
    app_id, batch_id = ref
    batch = await batches.get(app_id, batch_id)
    if batch is None:
        return
    chunks = await batches.chunks(batch)
    updates: list[tuple[str, list[str]]] = []
    found: set[str] = set()
    for chunk in chunks:
        known = set(chunk.delivered)
        mine = [r.uid for r in chunk.receivers if r.uid in uids]
        found.update(mine)
        new = [uid for uid in mine if uid not in known]
        if new:
            updates.append((chunk.id, new))
    if found != uids and len(chunks) < batch.chunks:
        raise ChunkNotRecordedYet(f"a chunk of {batch_id} is not recorded yet")
    await asyncio.gather(*(batches.mark_delivered(chunk_id, new) for chunk_id, new in updates))
