"""Pure rules of notification records: their ids, the ids of status events, the public view."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from clarion_shared.contracts.sends import CHANNEL_TYPES
from clarion_shared.errors import NotFound
from clarion_shared.ids import derive_id

from ..delivery.models import DeliveryOutcome
from .models import ChannelStatePublic, NotificationPublic, NotificationRecord, ReceiverStatePublic


class NotificationNotFound(NotFound):
    """The app has no send of that id."""

    def __init__(self) -> None:
        super().__init__("Notification")


class RecordsRefused(Exception):
    """The database refused some records or feed items for good (not a transient
    failure): ``ids`` are theirs, which are also their records' ids. The others of the
    same write were stored."""

    def __init__(self, ids: Iterable[str], reason: str) -> None:
        self.ids = frozenset(ids)
        super().__init__(f"{len(self.ids)} document(s) refused: {reason}")


def record_id(app_id: str, send_id: str, uid: str, channel_id: str) -> str:
    """One record per (send, uid, channel); the app is part of it so that send ids
    chosen by other services cannot collide across apps."""
    return derive_id(app_id, send_id, uid, channel_id)


def event_id(entity_id: str, event_type: str) -> str:
    """Derived, so a replayed fan-out republishes the ids consumers already saw."""
    return derive_id(entity_id, event_type)


def channel_state(
    record: NotificationRecord, delivered: DeliveryOutcome | None = None
) -> ChannelStatePublic:
    """A record's state; a queued one's is its delivery's once a worker finished it
    (a claim still counts as queued here: its worker will record the outcome)."""
    if record.status == "queued" and delivered is not None and delivered.status != "committing":
        error = delivered.error
        return ChannelStatePublic(
            channel_type=record.channel_type,
            channel_id=record.channel_id,
            status=delivered.status,
            code=error.code if error else None,
            message=error.message if error else None,
            provider_id=delivered.provider_id,
            attempts=delivered.attempts,
        )
    return ChannelStatePublic(
        channel_type=record.channel_type,
        channel_id=record.channel_id,
        status=record.status,
        code=record.error.code if record.error else None,
        message=record.error.message if record.error else None,
    )


def public_notification(
    records: Iterable[NotificationRecord],
    delivered: Mapping[str, DeliveryOutcome] | None = None,
) -> NotificationPublic | None:
    """One send's records grouped per receiver (in send order), per channel, with the
    outcomes of their deliveries (by record id)."""
    ordered = sorted(
        records, key=lambda r: (r.chunk, r.position, CHANNEL_TYPES.index(r.channel_type))
    )
    if not ordered:
        return None
    first = ordered[0]
    receivers: dict[str, list[ChannelStatePublic]] = {}
    for record in ordered:
        outcome = delivered.get(record.id) if delivered else None
        receivers.setdefault(record.uid, []).append(channel_state(record, outcome))
    return NotificationPublic(
        notification_id=first.send_id,
        mode=first.mode,
        template_id=first.template_id,
        template_version=first.template_version,
        tag=first.tag,
        created_at=min(record.created_at for record in ordered),
        receivers=[
            ReceiverStatePublic(uid=uid, channels=channels) for uid, channels in receivers.items()
        ],
    )
