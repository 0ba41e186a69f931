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

The tracker also settles the receivers left ``pending`` by a delivery queued for a
worker (API.md, Finality): each worker's ``DeliverySent`` or ``DeliveryFailed`` (on the
send's partition, in order with its chunks' events) takes one queued channel off its
receiver (``settling``), and a settlement may be the record that decides the batch.
The receivers a fetch's settlements touched and that are final are said in
``ReceiversSettled`` events (one per chunk), in the same transaction as the offsets and
before the batch's ``BatchCompleted``: again when the fetch comes again, as the
completion is.

A campaign's send is tracked as a batch is (its events say ``mode="campaign"``, its
campaign id is the batch id), and its ``BatchCompleted`` carries that mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    ChunkDispatched,
    FeedItemDelivered,
    ReceiversSettled,
)
from clarion_shared.ids import now as clock_now
from clarion_shared.kafka import Positioned
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from . import domain, settling
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
from .settling import Settlement

log = get_logger(__name__)

TopicPartitionKey = tuple[str, int]
Announced = ReceiversSettled | BatchCompleted
"""What the tracker publishes: receivers settled, and a batch's one decision."""


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

    async def settle(self, chunks: Sequence[BatchChunk]) -> None:
        """Rewrite recorded chunks' receivers as given, then their counts (derived from
        the receivers): one write of each of a chunk's documents, whatever the number
        of receivers settled. Only the tracker writes a recorded chunk's receivers."""
        ...


class Announcer(Resource, Protocol):
    async def announce(
        self, events: Sequence[Announced], offsets: Mapping[TopicPartitionKey, int]
    ) -> None:
        """Publish ``events`` in order (key: the send id, the batch's or campaign's) and
        commit ``offsets`` (the next offset to read, per topic partition) for the
        tracker's group, in one transaction: both or neither. Raises a transient error
        when it did not commit. An event this instance has committed already is left
        out (a fetch handled again in process after its transaction committed)."""
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


@dataclass
class _Fetched:
    """What one fetch holds for one batch: its chunks' ``ChunkDispatched``, the uids
    whose feed item was delivered, the workers' settlements, and where the records that
    may decide it were read (with their event ids), in the order read."""

    dispatched: list[ChunkDispatched] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    settlements: list[Settlement] = field(default_factory=list)
    deciding: list[tuple[str, str]] = field(default_factory=list)


async def track(
    events: Sequence[Positioned[AnyStatusEvent]],
    *,
    batches: BatchRepository,
    announcer: Announcer,
    now: int | None = None,
) -> list[Announced]:
    """Handle one fetch of status events (in the order read): mark delivered receivers,
    settle the receivers whose queued deliveries the workers finished, decide the
    batches (and campaigns) whose chunks were dispatched or receivers settled, and
    announce what was settled and decided here, with the offsets. A realtime send's
    events are not looked at.

    Returns the events announced (or left out as already announced by this instance).
    """
    at = clock_now() if now is None else now
    fetched: dict[BatchRef, _Fetched] = {}
    for positioned in events:
        event = positioned.value
        if domain.tracked_mode(event.mode) is None:
            continue
        position = domain.position_id(positioned.topic, positioned.partition, positioned.offset)
        mine = fetched.setdefault((event.app_id, event.send_id), _Fetched())
        if isinstance(event, ChunkDispatched):
            mine.dispatched.append(event)
            mine.deciding.append((position, event.event_id))
        elif isinstance(event, FeedItemDelivered):
            receiver = event.feed_item.get("receiver")
            if isinstance(receiver, str):
                mine.delivered.add(receiver)
        elif (one := settling.settlement(event)) is not None:
            mine.settlements.append(one)
            mine.deciding.append((position, event.event_id))
    found = await asyncio.gather(
        *(_track_batch(ref, mine, batches, at) for ref, mine in fetched.items())
    )
    announced = [event for events_of_batch in found for event in events_of_batch]
    if announced:
        await announcer.announce(announced, next_offsets(events))
    return announced


def next_offsets(events: Sequence[Positioned[AnyStatusEvent]]) -> dict[TopicPartitionKey, int]:
    """Per topic partition, the offset after the last record handled."""
    offsets: dict[TopicPartitionKey, int] = {}
    for event in events:
        key = (event.topic, event.partition)
        offsets[key] = max(offsets.get(key, 0), event.offset + 1)
    return offsets


async def _track_batch(
    ref: BatchRef, fetched: _Fetched, batches: BatchRepository, at: int
) -> list[Announced]:
    """One batch's share of the fetch, in order: deliveries and settlements first (a
    batch decided in this fetch counts them), then the decision. Its ``ReceiversSettled``
    come before its ``BatchCompleted``."""
    app_id, batch_id = ref
    batch = await batches.get(app_id, batch_id)
    if batch is None:
        log.warning("batch.unknown", app_id=app_id, batch_id=batch_id)
        return []
    numbers = _settled_chunks(fetched)
    if numbers is not None:
        chunks = await batches.chunks_numbered(batch, numbers)
        expected = len(numbers)
    else:
        chunks = await batches.chunks(batch) if fetched.delivered or fetched.settlements else []
        expected = batch.chunks
    if fetched.delivered:
        await _mark_delivered(batch, chunks, fetched.delivered, batches)
    announced: list[Announced] = []
    if fetched.settlements:
        announced += await _settle(batch, chunks, expected, fetched.settlements, batches)
    if fetched.deciding:
        completed = await _decide(batch, fetched, batches, at)
        if completed is not None:
            announced.append(completed)
    return announced


def _settled_chunks(fetched: _Fetched) -> list[int] | None:
    """The chunks to read when the fetch only settles receivers whose events name their
    chunk: a worker's fetch touches a few of a batch's chunks, and reading all of them
    (10,000 receivers) for each fetch was most of the tracker's work. None: read them
    all (feed deliveries, or an event that does not say its chunk)."""
    if fetched.delivered or not fetched.settlements:
        return None
    numbers = {one.chunk for one in fetched.settlements}
    if None in numbers:
        return None
    return sorted(number for number in numbers if number is not None)


async def _decide(
    batch: Batch, fetched: _Fetched, batches: BatchRepository, at: int
) -> BatchCompleted | None:
    """The batch's ``BatchCompleted`` when one of the fetch's records decided it (now,
    or in an attempt whose transaction did not commit); None otherwise. The record
    that decides is the batch's last one in the fetch that may (a chunk dispatched, a
    receiver settled)."""
    app_id, batch_id = batch.app_id, batch.batch_id
    positions = [position for position, _ in fetched.deciding]
    found: Batch | None = batch
    if not batch.final:
        if fetched.dispatched:
            await batches.mark_events_read(
                sorted({domain.chunk_key(app_id, batch_id, e.chunk) for e in fetched.dispatched})
            )
        status = domain.decide(batch, await batches.chunks(batch, receivers=False))
        if status is None:
            return None
        position, deciding = fetched.deciding[-1]
        if await batches.finish(batch, status, at, position, deciding):
            found = batch.model_copy(
                update={
                    "status": status,
                    "final": True,
                    "completed_at": at,
                    "decided_by": position,
                    "decided_event": deciding,
                }
            )
            log.info("batch.decided", app_id=app_id, batch_id=batch_id, status=status)
        else:
            found = await batches.get(app_id, batch_id)  # decided meanwhile, elsewhere
    if found is None or found.decided_by not in positions:
        return None
    return domain.batch_completed(found, await batches.chunks(found, receivers=False))


async def _mark_delivered(
    batch: Batch, chunks: Sequence[BatchChunk], uids: set[str], batches: BatchRepository
) -> None:
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
        raise ChunkNotRecordedYet(f"a chunk of {batch.batch_id} is not recorded yet")
    await asyncio.gather(*(batches.mark_delivered(chunk_id, new) for chunk_id, new in updates))


async def _settle(
    batch: Batch,
    chunks: Sequence[BatchChunk],
    expected: int,
    settlements: Sequence[Settlement],
    batches: BatchRepository,
) -> list[ReceiversSettled]:
    """Apply the workers' settlements to the chunks they name (or the batch's chunks,
    read whole), once per fetch; rewrite the chunks they changed, and say which
    receivers they touched are final. Raises ``ChunkNotRecordedYet`` for a receiver
    whose chunk is not recorded, or not registered (fewer chunks found than
    ``expected``)."""
    result = settling.settle(chunks, settlements)
    if result.unrecorded or (result.unknown and len(chunks) < expected):
        raise ChunkNotRecordedYet(f"a chunk of {batch.batch_id} is not recorded yet")
    if result.unknown:
        log.warning(
            "batch.settled_unknown_receivers",
            app_id=batch.app_id,
            batch_id=batch.batch_id,
            uids=sorted(result.unknown)[:20],
        )
    changed = [one.chunk for one in result.chunks if one.changed]
    if changed:
        await batches.settle(changed)
    return [settling.receivers_settled(batch, one) for one in result.chunks if one.final]
