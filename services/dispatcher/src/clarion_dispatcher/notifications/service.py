"""Use cases of notification records, and the repository port they need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clarion_shared.lifecycle import Resource

from ..delivery.models import DeliveryOutcome
from .domain import NotificationNotFound, public_notification
from .models import NotificationPublic, NotificationRecord


class NotificationRepository(Resource, Protocol):
    """The stored records; ``start`` prepares the store (indexes), ``stop`` does nothing."""

    async def add_many(self, records: Sequence[NotificationRecord]) -> None:
        """Insert the records that do not exist yet (by id); never change existing ones.
        The realtime sends among them (each one's records whole) are listed with them
        (``sends``: their entries, likewise inserted once).

        Raises ``RecordsRefused`` naming those the database refused for good."""
        ...

    async def put_many(self, records: Sequence[NotificationRecord]) -> None:
        """Store the records, replacing those of the same ids (a receiver's failure);
        the listing's entries of their realtime sends are made again from all their
        records."""
        ...

    async def for_send(self, app_id: str, send_id: str) -> list[NotificationRecord]: ...

    async def for_chunk(self, app_id: str, send_id: str, chunk: int) -> list[NotificationRecord]:
        """The records of one chunk of a batch (or campaign) send."""
        ...

    async def for_receiver(self, app_id: str, send_id: str, uid: str) -> list[NotificationRecord]:
        """One receiver's records of a send (one per channel)."""
        ...

    async def for_user(
        self, app_id: str, uid: str, channel_type: str, limit: int
    ) -> list[NotificationRecord]:
        """The user's records on one channel type, newest first, at most ``limit``."""
        ...

    async def get(self, app_id: str, notification_id: str) -> NotificationRecord | None:
        """One record by its id (the app's only)."""
        ...


class DeliveryOutcomes(Protocol):
    """The delivery workers' outcomes (``delivery.service.DeliveryLog``)."""

    async def of_chunks(
        self, keys: Sequence[tuple[str, str, int]]
    ) -> dict[str, DeliveryOutcome]: ...


async def get_notification(
    app_id: str,
    notification_id: str,
    *,
    notifications: NotificationRepository,
    deliveries: DeliveryOutcomes | None = None,
) -> NotificationPublic:
    """A send's states; a queued delivery's as its worker recorded it."""
    records = await notifications.for_send(app_id, notification_id)
    delivered: dict[str, DeliveryOutcome] = {}
    queued = {(r.app_id, r.send_id, r.chunk) for r in records if r.status == "queued"}
    if deliveries is not None and queued:
        delivered = await deliveries.of_chunks(sorted(queued))
    found = public_notification(records, delivered)
    if found is None:
        raise NotificationNotFound()
    return found
