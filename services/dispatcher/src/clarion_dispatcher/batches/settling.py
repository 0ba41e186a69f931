"""Pure rules of settling: a batch's (or campaign's) pending receivers made final from
the delivery workers' events (API.md, Finality), and the ``ReceiversSettled`` event.

The fan-out records a receiver ``pending`` while one of its deliveries is queued, with
the channels still queued, whether one delivery was sent and the first failure
(``domain.receiver_outcome``). Each ``DeliverySent`` or ``DeliveryFailed`` a worker
publishes for one of those channels takes it off; once none is queued the receiver is
``sent`` (one delivery sent) or ``failed`` (with the first failure). An event for a
channel that is not queued (a repeat, or a receiver final already) changes nothing, so
the events' order and their redelivery do not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    DeliveryFailed,
    DeliverySent,
    ReceiversSettled,
    ReceiverState,
)
from clarion_shared.ids import derive_id

from ..notifications.domain import event_id
from .domain import tracked_mode
from .models import Batch, BatchChunk, ReceiverOutcome


@dataclass(frozen=True)
class Settlement:
    """One queued delivery of a receiver is final: sent (no ``failure``) or failed."""

    uid: str
    channel_id: str
    failure: ErrorInfo | None
    occurred_at: int
    chunk: int | None = None  # the receiver's chunk, when the event says it


def settlement(event: AnyStatusEvent) -> Settlement | None:
    """What a worker's event says of one delivery of a batch or campaign receiver; None
    for any other event (a realtime send's, or a failure at the fan-out: no channel)."""
    if tracked_mode(event.mode) is None:
        return None
    if isinstance(event, DeliverySent):
        return Settlement(event.uid, event.channel_id, None, event.occurred_at, event.chunk)
    if isinstance(event, DeliveryFailed) and event.channel_id is not None:
        return Settlement(event.uid, event.channel_id, event.error, event.occurred_at, event.chunk)
    return None


def settled(receiver: ReceiverOutcome, one: Settlement) -> ReceiverOutcome:
    """The receiver once ``one`` of its deliveries is final; unchanged when that
    delivery is not queued (settled already, or the receiver is final)."""
    if receiver.status != "pending" or one.channel_id not in receiver.queued:
        return receiver
    queued = [channel for channel in receiver.queued if channel != one.channel_id]
    any_sent = receiver.any_sent or one.failure is None
    failure = receiver.failure or one.failure
    if queued:
        return receiver.model_copy(
            update={"queued": queued, "any_sent": any_sent, "failure": failure}
        )
    if any_sent:
        return ReceiverOutcome(uid=receiver.uid, status="sent")
    return ReceiverOutcome(
        uid=receiver.uid,
        status="failed",
        code=failure.code if failure else None,
        message=failure.message if failure else None,
    )


@dataclass(frozen=True)
class ChunkSettled:
    """A chunk touched by settlements: its receivers and counts now; ``changed`` when
    they differ from what was read (counts a crash left out of step included); ``final``
    the touched receivers that are final now, in chunk order, whether or not this
    settled them (a fetch handled again says them again)."""

    chunk: BatchChunk
    changed: bool
    final: list[ReceiverOutcome]
    occurred_at: int


@dataclass(frozen=True)
class Settled:
    """Settlements applied to a batch's chunks: the chunks touched (by number), the
    uids found in a chunk not recorded yet, and those found in no chunk."""

    chunks: list[ChunkSettled] = field(default_factory=list)
    unrecorded: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)


def settle(chunks: Sequence[BatchChunk], settlements: Sequence[Settlement]) -> Settled:
    """Apply ``settlements`` (in the order read) to the batch's ``chunks`` (read whole)."""
    by_number = {chunk.chunk: chunk for chunk in chunks}
    where = {
        receiver.uid: (chunk.chunk, index)
        for chunk in chunks
        for index, receiver in enumerate(chunk.receivers)
    }
    receivers = {chunk.chunk: list(chunk.receivers) for chunk in chunks}
    touched: dict[int, set[str]] = {}
    latest: dict[int, int] = {}
    result = Settled()
    for one in settlements:
        found = where.get(one.uid)
        if found is None:
            result.unknown.add(one.uid)
            continue
        number, index = found
        if not by_number[number].dispatched:
            result.unrecorded.add(one.uid)
            continue
        receivers[number][index] = settled(receivers[number][index], one)
        touched.setdefault(number, set()).add(one.uid)
        latest[number] = max(latest.get(number, 0), one.occurred_at)
    for number in sorted(touched):
        before = by_number[number]
        now = with_receivers(before, receivers[number])
        changed = now.receivers != before.receivers or _counts(now) != _counts(before)
        final = [r for r in now.receivers if r.uid in touched[number] and r.status != "pending"]
        result.chunks.append(ChunkSettled(now, changed, final, latest[number]))
    return result


def with_receivers(chunk: BatchChunk, receivers: Sequence[ReceiverOutcome]) -> BatchChunk:
    """The chunk with ``receivers``, its counts derived from them."""
    statuses = [receiver.status for receiver in receivers]
    return chunk.model_copy(
        update={
            "receivers": list(receivers),
            "sent": statuses.count("sent"),
            "failed": statuses.count("failed"),
            "pending": statuses.count("pending"),
        }
    )


def _counts(chunk: BatchChunk) -> tuple[int, int, int]:
    return chunk.sent, chunk.failed, chunk.pending


def receivers_settled(batch: Batch, settled_chunk: ChunkSettled) -> ReceiversSettled:
    """The event saying the chunk's touched receivers are final. Its id is derived from
    the chunk and those receivers, so a fetch handled again says the same (and its
    ``occurred_at`` is the latest of the events that touched them)."""
    final = settled_chunk.final
    return ReceiversSettled(
        event_id=event_id(
            derive_id(settled_chunk.chunk.id, *sorted(r.uid for r in final)), "receivers_settled"
        ),
        app_id=batch.app_id,
        send_id=batch.batch_id,
        mode=batch.mode,
        occurred_at=settled_chunk.occurred_at,
        chunk=settled_chunk.chunk.chunk,
        receivers=[
            ReceiverState(uid=r.uid, status=r.status, code=r.code, message=r.message) for r in final
        ],
    )
