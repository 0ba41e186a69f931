"""Pure rules of the sends listing: the entry of each send, what a page shows, each
receiver's state from its records, the rows of the CSV export.

A realtime send's entry is made from its records, which the fan-out writes all at once
(its receivers are decided then); a batch's when it is registered (``queued``), or from
its first chunk's outcome when nobody registered it. A receiver's state follows API.md,
Finality, as a batch's chunk records it (``batches.domain.receiver_outcome``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from clarion_shared.contracts.sends import CHANNEL_TYPES
from clarion_shared.csv_export import Cell
from clarion_shared.errors import NotFound
from clarion_shared.ids import derive_id

from ..batches.domain import ChunkOutcome, final_status, receiver_outcome
from ..batches.models import Batch, BatchPublic, ReceiverOutcome, ReceiverStatus
from ..notifications.domain import channel_state
from ..notifications.models import NotificationRecord
from .models import SendEntry, SendPublic, SendReceiverPublic, SendStatus

CsvRow = tuple[Cell, ...]


class SendNotFound(NotFound):
    """The app has no send of that id."""

    def __init__(self) -> None:
        super().__init__("Send")


def send_key(app_id: str, send_id: str) -> str:
    """The entry's ``_id``: send ids chosen by other services cannot collide across apps."""
    return derive_id(app_id, "send", send_id)


# ---------------------------------------------------------------- entries


def _by_receiver(records: Iterable[NotificationRecord]) -> dict[str, list[NotificationRecord]]:
    """Records per uid, receivers in send order, channels in the template's type order."""
    ordered = sorted(
        records, key=lambda r: (r.chunk, r.position, CHANNEL_TYPES.index(r.channel_type))
    )
    grouped: dict[str, list[NotificationRecord]] = {}
    for record in ordered:
        grouped.setdefault(record.uid, []).append(record)
    return grouped


def realtime_entries(records: Iterable[NotificationRecord]) -> list[SendEntry]:
    """The entries of the realtime sends among ``records`` (each send's records whole)."""
    sends: dict[tuple[str, str], list[NotificationRecord]] = {}
    for record in records:
        if record.mode == "realtime":
            sends.setdefault((record.app_id, record.send_id), []).append(record)
    return [realtime_entry(app_id, send_id, mine) for (app_id, send_id), mine in sends.items()]


def realtime_entry(app_id: str, send_id: str, records: Sequence[NotificationRecord]) -> SendEntry:
    outcomes = [receiver_outcome(uid, mine) for uid, mine in _by_receiver(records).items()]
    sent = sum(1 for o in outcomes if o.status == "sent")
    failed = sum(1 for o in outcomes if o.status == "failed")
    pending = len(outcomes) - sent - failed
    status: SendStatus = "dispatching" if pending else final_status(sent, failed)
    first = records[0]
    return SendEntry(
        id=send_key(app_id, send_id),
        app_id=app_id,
        send_id=send_id,
        type="realtime",
        mode="direct",
        template_id=first.template_id,
        template_version=first.template_version,
        channels=list(dict.fromkeys(record.channel_type for record in records)),
        created_at=min(record.created_at for record in records),
        total=len(outcomes),
        status=status,
        sent=sent,
        failed=failed,
        pending=pending,
    )


def batch_entry(batch: Batch) -> SendEntry:
    """A registered batch's (or campaign's) entry: ``queued``, its template not known
    until its first chunk is dispatched."""
    return SendEntry(
        id=send_key(batch.app_id, batch.batch_id),
        app_id=batch.app_id,
        send_id=batch.batch_id,
        type="batch",
        mode="campaign" if batch.mode == "campaign" else "direct",
        channels=list(batch.channels),
        created_at=batch.created_at,
        total=batch.total,
        status="queued",
    )


def dispatched_entry(outcome: ChunkOutcome) -> SendEntry:
    """The entry of a batch nobody registered, from its first chunk seen."""
    entry = batch_entry(outcome.unregistered_batch())
    return entry.model_copy(
        update={
            "status": "dispatching",
            "template_id": outcome.template_id,
            "template_version": outcome.template_version,
        }
    )


# ---------------------------------------------------------------- what is shown


def shown(entry: SendEntry, batch: BatchPublic | None) -> SendPublic:
    """The send as listed: a batch's status and counts from ``batch`` (read now), a
    realtime send's from its entry."""
    common = {
        "id": entry.send_id,
        "type": entry.type,
        "mode": entry.mode,
        "template_id": entry.template_id,
        "template_version": entry.template_version,
        "channels": entry.channels,
        "total": entry.total,
        "created_at": entry.created_at,
    }
    if batch is None:
        final = entry.status not in ("queued", "dispatching")
        return SendPublic.model_validate(
            {
                **common,
                "status": entry.status,
                "sent": entry.sent,
                "delivered": None,
                "failed": entry.failed,
                "pending": entry.pending,
                "completed_at": entry.created_at if final else None,
            }
        )
    return SendPublic.model_validate(
        {
            **common,
            "status": batch.status,
            "sent": batch.sent,
            "delivered": batch.delivered,
            "failed": batch.failed,
            "pending": batch.pending,
            "completed_at": batch.completed_at,
        }
    )


def public_receiver(
    outcome: ReceiverOutcome, records: Sequence[NotificationRecord]
) -> SendReceiverPublic:
    """A receiver as its chunk recorded it (or, for a realtime send, as its records
    say), with its channels' states from its records (none while it is pending)."""
    return SendReceiverPublic(
        uid=outcome.uid,
        status=outcome.status,
        code=outcome.code,
        message=outcome.message,
        channels=[channel_state(record) for record in records],
        created_at=min((r.created_at for r in records), default=None),
        updated_at=max((r.updated_at for r in records), default=None),
    )


def joined(
    outcomes: Iterable[ReceiverOutcome],
    records: Iterable[NotificationRecord],
    status: ReceiverStatus | None = None,
    uid: str | None = None,
) -> list[SendReceiverPublic]:
    """``outcomes`` (in send order) joined with their records, those matching the
    filters."""
    by_uid = _by_receiver(records)
    return [
        public_receiver(outcome, by_uid.get(outcome.uid, []))
        for outcome in outcomes
        if (status is None or outcome.status == status) and (uid is None or outcome.uid == uid)
    ]


def realtime_receivers(
    records: Iterable[NotificationRecord],
    status: ReceiverStatus | None = None,
    uid: str | None = None,
) -> list[SendReceiverPublic]:
    """A realtime send's receivers from its records alone."""
    grouped = _by_receiver(records)
    outcomes = [receiver_outcome(one, mine) for one, mine in grouped.items()]
    return joined(outcomes, [r for mine in grouped.values() for r in mine], status, uid)


def csv_rows(receivers: Iterable[SendReceiverPublic]) -> list[CsvRow]:
    """One row per receiver and channel (``RECEIVER_CSV_COLUMNS``); a receiver without
    channels yet (pending) has one row with empty channel cells."""
    rows: list[CsvRow] = []
    for receiver in receivers:
        if not receiver.channels:
            rows.append(
                (receiver.uid, None, None, receiver.status, receiver.code, receiver.message, None)
            )
        for channel in receiver.channels:
            rows.append(
                (
                    receiver.uid,
                    channel.channel_type,
                    channel.channel_id,
                    channel.status,
                    channel.code,
                    channel.message,
                    receiver.updated_at,
                )
            )
    return rows
