"""Notification records as their deliveries ended: a ``queued`` record (a job for a
delivery worker) reads as ``sent`` or ``failed`` once its worker wrote the outcome
(``deliveries``, owned by the delivery role). Reads that show receivers' states (the
sends listing, its CSV) take a ``DeliveredRecords`` where they took the repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..delivery.models import DeliveryOutcome
from .models import NotificationRecord
from .service import DeliveryOutcomes, NotificationRepository


def as_delivered(
    records: Sequence[NotificationRecord], outcomes: Mapping[str, DeliveryOutcome]
) -> list[NotificationRecord]:
    """Each queued record with a final outcome, as the outcome says (a claim is not one)."""
    shown: list[NotificationRecord] = []
    for record in records:
        done = outcomes.get(record.id)
        if record.status == "queued" and done is not None and done.status != "committing":
            status = "sent" if done.status == "sent" else "failed"
            record = record.model_copy(
                update={"status": status, "error": done.error, "updated_at": done.at}
            )
        shown.append(record)
    return shown


class DeliveredRecords:
    """The record reads of a ``NotificationRepository``, with the outcomes merged (one
    query per chunk read, only when a record is queued); writes go straight through."""

    def __init__(self, records: NotificationRepository, deliveries: DeliveryOutcomes) -> None:
        self.records = records
        self._deliveries = deliveries

    async def _merged(self, records: list[NotificationRecord]) -> list[NotificationRecord]:
        queued = sorted({(r.app_id, r.send_id, r.chunk) for r in records if r.status == "queued"})
        if not queued:
            return records
        return as_delivered(records, await self._deliveries.of_chunks(queued))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def add_many(self, records: Sequence[NotificationRecord]) -> None:
        await self.records.add_many(records)

    async def put_many(self, records: Sequence[NotificationRecord]) -> None:
        await self.records.put_many(records)

    async def for_send(self, app_id: str, send_id: str) -> list[NotificationRecord]:
        return await self._merged(await self.records.for_send(app_id, send_id))

    async def for_chunk(self, app_id: str, send_id: str, chunk: int) -> list[NotificationRecord]:
        return await self._merged(await self.records.for_chunk(app_id, send_id, chunk))

    async def for_receiver(self, app_id: str, send_id: str, uid: str) -> list[NotificationRecord]:
        return await self._merged(await self.records.for_receiver(app_id, send_id, uid))

    async def for_user(
        self, app_id: str, uid: str, channel_type: str, limit: int
    ) -> list[NotificationRecord]:
        return await self._merged(await self.records.for_user(app_id, uid, channel_type, limit))

    async def get(self, app_id: str, notification_id: str) -> NotificationRecord | None:
        found = await self.records.get(app_id, notification_id)
        return None if found is None else (await self._merged([found]))[0]
