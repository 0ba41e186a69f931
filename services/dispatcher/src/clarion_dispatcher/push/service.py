"""Use cases of push notifications, and the port of the devices' reports they need.

A push notification is a notification record of channel type ``push`` (its id, the
delivery job's id too): its content and receiver from the record, sent or failed from
the delivery worker's outcome (``delivery.service.DeliveryLog``), delivered, clicked
and engaged from the reports of the receiver's devices (``PushStateRepository``). Only
the receiver reads or reports it: another user's is not found, as CometChat answers.

Reports are idempotent: the first time of each is kept (an engagement: its first, then
each new topic once). No status event is published for them: the status contract has
none for push notifications yet (the feed's ``feed_item_*`` events are the model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clarion_shared.ids import now as clock_now
from clarion_shared.lifecycle import Resource

from ..delivery.service import DeliveryLog
from ..notifications.models import NotificationRecord
from ..notifications.service import NotificationRepository
from . import domain
from .domain import PushNotificationNotFound
from .models import PushEvent, PushNotificationPublic, PushState


class PushStateRepository(Resource, Protocol):
    """The devices' reports, one document per push notification that has any."""

    async def of_many(self, push_ids: Sequence[str]) -> dict[str, PushState]:
        """The reports on those push notifications, by id (none: absent)."""
        ...

    async def mark(
        self, push_id: str, app_id: str, uid: str, event: PushEvent, at: int
    ) -> PushState:
        """Store ``event`` as of ``at`` unless it is stored already (one conditional
        update); the reports after it."""
        ...

    async def engage(
        self, push_id: str, app_id: str, uid: str, topic: str | None, at: int
    ) -> PushState:
        """Store an engagement when it is the first (with or without a topic) or its
        topic is new to the notification (one conditional update); the reports after."""
        ...


@dataclass(frozen=True)
class PushReads:
    """Where a push notification's parts are: records, outcomes, reports."""

    notifications: NotificationRepository
    deliveries: DeliveryLog
    states: PushStateRepository


async def _theirs(reads: PushReads, app_id: str, uid: str, push_id: str) -> NotificationRecord:
    record = await reads.notifications.get(app_id, push_id)
    if record is None or not domain.is_theirs(record, uid):
        raise PushNotificationNotFound()
    return record


async def _shown(
    reads: PushReads,
    app_id: str,
    records: Sequence[NotificationRecord],
    known: PushState | None = None,
) -> list[PushNotificationPublic]:
    """``records`` as shown, their outcomes and reports read together (``known``: the
    reports on one of them, just written)."""
    ids = [record.id for record in records]
    outcomes, states = await asyncio.gather(
        reads.deliveries.of_jobs(app_id, ids),
        reads.states.of_many([i for i in ids if known is None or i != known.id]),
    )
    if known is not None:
        states[known.id] = known
    return [domain.public_push(r, outcomes.get(r.id), states.get(r.id)) for r in records]


async def list_push_notifications(
    app_id: str, uid: str, limit: int, *, reads: PushReads
) -> list[PushNotificationPublic]:
    """The user's push notifications, newest first, at most ``limit``."""
    records = await reads.notifications.for_user(app_id, uid, domain.PUSH, limit)
    return await _shown(reads, app_id, records)


async def get_push_notification(
    app_id: str, uid: str, push_id: str, *, reads: PushReads
) -> PushNotificationPublic:
    record = await _theirs(reads, app_id, uid, push_id)
    [shown] = await _shown(reads, app_id, [record])
    return shown


async def mark(
    app_id: str,
    uid: str,
    push_id: str,
    event: PushEvent,
    *,
    reads: PushReads,
    now: int | None = None,
) -> PushNotificationPublic:
    """Report the notification delivered or clicked; idempotent (the first time kept)."""
    record = await _theirs(reads, app_id, uid, push_id)
    at = clock_now() if now is None else now
    state = await reads.states.mark(record.id, app_id, uid, event, at)
    [shown] = await _shown(reads, app_id, [record], known=state)
    return shown


async def engage(
    app_id: str,
    uid: str,
    push_id: str,
    topic: str | None,
    *,
    reads: PushReads,
    now: int | None = None,
) -> PushNotificationPublic:
    """Report an engagement; idempotent per topic (and without one, the first only)."""
    record = await _theirs(reads, app_id, uid, push_id)
    at = clock_now() if now is None else now
    state = await reads.states.engage(record.id, app_id, uid, topic, at)
    [shown] = await _shown(reads, app_id, [record], known=state)
    return shown
