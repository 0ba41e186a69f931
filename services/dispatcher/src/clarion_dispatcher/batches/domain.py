"""Pure rules of batches: their ids, a receiver's outcome, when a batch is final, the
public view and the one ``BatchCompleted`` event.

Nothing here does I/O. The fan-out turns a chunk's records into a ``ChunkOutcome``
(``chunk_outcome``); the tracker asks ``decide`` whether every chunk is recorded with no
receiver pending, and builds the event with ``batch_completed``. A campaign's send is
tracked the same way, as a batch of mode ``campaign`` whose id is the campaign id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clarion_shared.contracts.sends import ChannelType, SendMode, SendNotification
from clarion_shared.contracts.status import BatchCompleted
from clarion_shared.errors import Conflict, Invalid, NotFound
from clarion_shared.ids import derive_id

from ..notifications.domain import event_id
from ..notifications.models import NotificationRecord
from .models import (
    Batch,
    BatchChunk,
    BatchMode,
    BatchPublic,
    BatchReceiverPublic,
    BatchRegistration,
    BatchStatus,
    FinalStatus,
    ReceiverOutcome,
    ReceiverStatus,
)


class BatchNotFound(NotFound):
    """The app has no batch of that id."""

    def __init__(self) -> None:
        super().__init__("Batch")


class BatchModeConflict(Conflict):
    """The id is registered already, as a send of the other mode."""

    def __init__(self, batch_id: str, stored: BatchMode, asked: BatchMode) -> None:
        super().__init__(
            "This id belongs to another send.",
            dev_message=f"{batch_id} is registered with mode {stored!r}, not {asked!r}.",
            details=[{"field": "mode", "message": f"the send is a {stored}"}],
        )


def batch_key(app_id: str, batch_id: str) -> str:
    """The batch document's ``_id``: batch ids chosen by other services cannot collide
    across apps. The mode is not part of it (see ``same_send``)."""
    return derive_id(app_id, "batch", batch_id)


def tracked_mode(mode: SendMode) -> BatchMode | None:
    """The mode of a send tracked as a batch (a batch's or a campaign's chunks and
    events); None for a realtime send, which has no batch."""
    if mode == "batch" or mode == "campaign":
        return mode
    return None


def chunk_key(app_id: str, batch_id: str, chunk: int) -> str:
    return derive_id(app_id, "batch", batch_id, str(chunk))


def position_id(topic: str, partition: int, offset: int) -> str:
    """Where a record was read: a redelivered record has the same, a republished copy
    (a replayed fan-out's event, same event id) does not."""
    return f"{topic}:{partition}:{offset}"


# ---------------------------------------------------------------- registration


def registered(
    app_id: str, batch_id: str, registration: BatchRegistration
) -> tuple[Batch, list[BatchChunk]]:
    """The documents of a newly registered batch: every receiver ``pending``.

    Raises ``Invalid`` when the chunks do not add up to ``total`` distinct receivers.
    """
    uids = [uid for chunk in registration.chunks for uid in chunk]
    problems: list[dict[str, str]] = []
    if any(not chunk for chunk in registration.chunks):
        problems.append({"field": "chunks", "message": "a chunk has no receivers"})
    if len(uids) != registration.total or len(set(uids)) != len(uids):
        problems.append(
            {"field": "chunks", "message": "the chunks must hold `total` distinct receivers"}
        )
    if problems:
        raise Invalid("The batch registration is not consistent.", details=problems)
    key = batch_key(app_id, batch_id)
    batch = Batch(
        id=key,
        app_id=app_id,
        batch_id=batch_id,
        total=registration.total,
        chunks=len(registration.chunks),
        channels=list(registration.channels),
        created_at=registration.created_at,
        mode=registration.mode,
    )
    chunks = [
        BatchChunk(
            id=chunk_key(app_id, batch_id, index),
            batch_key=key,
            app_id=app_id,
            batch_id=batch_id,
            chunk=index,
            receivers=[ReceiverOutcome(uid=uid) for uid in receivers],
            pending=len(receivers),
            event_read=False,
        )
        for index, receivers in enumerate(registration.chunks)
    ]
    return batch, chunks


def same_send(stored: Batch | None, batch: Batch) -> None:
    """Raise ``BatchModeConflict`` when ``batch`` repeats a stored one with another mode.

    A batch id and a campaign id are never the same (the gateway names them ``bat_...``
    and ``cmp_...``), so a mismatch is a caller's mistake: refused, rather than one
    send's progress and completion told as the other's.
    """
    if stored is not None and stored.mode != batch.mode:
        raise BatchModeConflict(batch.batch_id, stored.mode, batch.mode)


# ---------------------------------------------------------------- fan-out


def receiver_outcome(uid: str, records: Sequence[NotificationRecord]) -> ReceiverOutcome:
    """``pending`` while a delivery is ``queued`` (a worker or a retry will finish it),
    else ``sent`` when one delivery is sent, else ``failed`` with the first failure.
    A pending receiver remembers its queued channels, whether one delivery is sent and
    the first failure so far: the tracker settles it from the workers' events."""
    statuses = [record.status for record in records]
    error = next((record.error for record in records if record.error is not None), None)
    if "queued" in statuses:
        return ReceiverOutcome(
            uid=uid,
            status="pending",
            queued=[record.channel_id for record in records if record.status == "queued"],
            any_sent="sent" in statuses,
            failure=error,
        )
    if "sent" in statuses:
        return ReceiverOutcome(uid=uid, status="sent")
    return ReceiverOutcome(
        uid=uid,
        status="failed",
        code=error.code if error else None,
        message=error.message if error else None,
    )


@dataclass(frozen=True)
class ChunkOutcome:
    """What the fan-out of one chunk of a batch recorded for each of its receivers; the
    command's numbers (and mode) describe the batch when nobody registered it."""

    app_id: str
    batch_id: str
    chunk: int
    chunks: int
    total: int
    created_at: int
    channels: list[ChannelType]
    receivers: list[ReceiverOutcome]
    mode: BatchMode = "batch"
    # The template the chunk was sent with: the sends listing shows it.
    template_id: str | None = None
    template_version: int | None = None

    def count(self, status: ReceiverStatus) -> int:
        return sum(1 for receiver in self.receivers if receiver.status == status)

    @property
    def key(self) -> str:
        return chunk_key(self.app_id, self.batch_id, self.chunk)

    @property
    def batch_key(self) -> str:
        return batch_key(self.app_id, self.batch_id)

    def unregistered_batch(self) -> Batch:
        """The batch as this chunk's command describes it (nobody registered it)."""
        return Batch(
            id=self.batch_key,
            app_id=self.app_id,
            batch_id=self.batch_id,
            total=self.total,
            chunks=self.chunks,
            channels=self.channels,
            created_at=self.created_at,
            mode=self.mode,
        )


def chunk_outcome(
    command: SendNotification, receivers: Sequence[str], records: Iterable[NotificationRecord]
) -> ChunkOutcome | None:
    """The outcome of a batch or campaign chunk's ``receivers`` (in order) from their
    records; None for a realtime command."""
    mode = tracked_mode(command.mode)
    if mode is None:
        return None
    by_uid: dict[str, list[NotificationRecord]] = {}
    for record in records:
        by_uid.setdefault(record.uid, []).append(record)
    return ChunkOutcome(
        app_id=command.app_id,
        batch_id=command.send_id,
        chunk=command.chunk,
        chunks=command.chunks,
        total=command.total or len(receivers),
        created_at=command.created_at,
        channels=[channel.channel_type for channel in command.template.channels],
        receivers=[receiver_outcome(uid, by_uid.get(uid, [])) for uid in receivers],
        mode=mode,
        template_id=command.template.template_id,
        template_version=command.template.version,
    )


# ---------------------------------------------------------------- the decision


def final_status(sent: int, failed: int) -> FinalStatus:
    if failed == 0:
        return "completed"
    return "failed" if sent == 0 else "partially_failed"


def decide(batch: Batch, chunks: Iterable[BatchChunk]) -> FinalStatus | None:
    """The batch's final status once every chunk is recorded, its ``ChunkDispatched``
    read back (so the decision's event follows every chunk's on the send's partition:
    a reader of the topic has seen each receiver's state when it reads the completion)
    and no receiver is pending (API.md, Finality); None before, and for a batch
    already decided."""
    if batch.final:
        return None
    recorded = {chunk.chunk: chunk for chunk in chunks if chunk.dispatched and chunk.event_read}
    if set(recorded) != set(range(batch.chunks)):
        return None
    if any(chunk.pending for chunk in recorded.values()):
        return None
    sent = sum(chunk.sent for chunk in recorded.values())
    failed = sum(chunk.failed for chunk in recorded.values())
    return final_status(sent, failed)


# ---------------------------------------------------------------- what is shown


@dataclass(frozen=True)
class Counts:
    sent: int
    delivered: int
    failed: int
    pending: int


def counts(batch: Batch, chunks: Iterable[BatchChunk]) -> Counts:
    """From the chunks' counts (their receivers are not needed); a chunk not recorded
    yet (or, for a batch nobody registered, not seen yet) is all pending."""
    sent = delivered = failed = 0
    for chunk in chunks:
        sent += chunk.sent
        failed += chunk.failed
        delivered += len(chunk.delivered)
    return Counts(sent, delivered, failed, max(0, batch.total - sent - failed))


def shown_status(batch: Batch, chunks: Iterable[BatchChunk]) -> BatchStatus:
    if batch.final:
        return batch.status
    return "dispatching" if any(chunk.dispatched for chunk in chunks) else "queued"


def public_batch(batch: Batch, chunks: Sequence[BatchChunk]) -> BatchPublic:
    found = counts(batch, chunks)
    return BatchPublic(
        batch_id=batch.batch_id,
        status=shown_status(batch, chunks),
        total=batch.total,
        sent=found.sent,
        delivered=found.delivered,
        failed=found.failed,
        pending=found.pending,
        created_at=batch.created_at,
        completed_at=batch.completed_at if batch.final else None,
    )


@dataclass(frozen=True)
class PageSpan:
    """Where a page of receivers lies: the chunks holding it, and how many receivers
    (of the status asked) of those chunks come before it."""

    chunks: list[int]
    skip: int
    total: int


def page_span(
    chunks: Sequence[BatchChunk], status: ReceiverStatus | None, page: int, per_page: int
) -> PageSpan:
    """From the chunks' counts alone: only the chunks holding the page are read whole."""
    start, end = (page - 1) * per_page, page * per_page
    wanted: list[int] = []
    skip = before = 0
    for chunk in sorted(chunks, key=lambda c: c.chunk):
        count = chunk.count(status)
        if count and before < end and before + count > start:
            if not wanted:
                skip = start - before
            wanted.append(chunk.chunk)
        before += count
    return PageSpan(wanted, skip, before)


def public_receivers(
    chunks: Sequence[BatchChunk], status: ReceiverStatus | None = None
) -> list[BatchReceiverPublic]:
    """The receivers in send order (chunk by chunk), those in ``status`` when given."""
    return [
        BatchReceiverPublic(
            uid=receiver.uid, status=receiver.status, code=receiver.code, message=receiver.message
        )
        for chunk in sorted(chunks, key=lambda c: c.chunk)
        for receiver in chunk.receivers
        if status is None or receiver.status == status
    ]


def _final(batch: Batch) -> FinalStatus:
    if batch.status == "completed" or batch.status == "partially_failed":
        return batch.status
    if batch.status == "failed":
        return batch.status
    raise ValueError(f"batch {batch.batch_id} is not decided")


def batch_completed(batch: Batch, chunks: Sequence[BatchChunk]) -> BatchCompleted:
    """The event of a decided batch (its status object, and its mode: a campaign's says
    ``campaign``): one id per batch, whoever publishes it."""
    status = _final(batch)
    assert batch.completed_at is not None
    shown = public_batch(batch, chunks).model_dump(
        by_alias=False, exclude={"status", "completed_at"}
    )
    return BatchCompleted(
        event_id=event_id(batch.id, "batch_completed"),
        app_id=batch.app_id,
        send_id=batch.batch_id,
        mode=batch.mode,
        occurred_at=batch.completed_at,
        status=status,
        completed_at=batch.completed_at,
        **shown,
    )
