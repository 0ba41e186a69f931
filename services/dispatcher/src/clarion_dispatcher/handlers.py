"""Entry points: the ``clarion.sends`` consumer and the internal HTTP routes.

Each parses its input, calls one use case and shapes the answer; nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query
from pydantic import TypeAdapter

from clarion_shared import http, kafka
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.topics import SENDS, SENDS_REALTIME

from . import service
from .models import DeletedPublic, UnreadCountPublic
from .service import (
    FeedRepository,
    NotificationRepository,
    Publisher,
    ReadState,
    UserDirectory,
)

_SEND_ADAPTER: TypeAdapter[SendNotification] = TypeAdapter(SendNotification)


@dataclass(frozen=True)
class Dependencies:
    directory: UserDirectory
    notifications: NotificationRepository
    feed: FeedRepository
    publisher: Publisher


def register_consumers(
    groups: kafka.ConsumerGroups, deps: Dependencies, max_records: int = 16
) -> None:
    """Subscribe the fan-out to both send lanes; call before ``broker.start()``.

    Each subscriber takes what one fetch holds (up to ``max_records`` commands) and fans
    it out together, so concurrent sends share lookups, writes and publishes. The two
    lanes are consumed concurrently: realtime sends never wait for a batch's fetch.
    """

    async def handle(commands: Sequence[SendNotification]) -> None:
        await service.dispatch_fetch(
            commands,
            directory=deps.directory,
            notifications=deps.notifications,
            feed=deps.feed,
            publisher=deps.publisher,
        )

    for topic in (SENDS_REALTIME, SENDS):
        groups.consume_batches(topic, _SEND_ADAPTER, handle, max_records=max_records)


def feed_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(prefix="/internal/apps/{app_id}/feed/{uid}", tags=["in-app feed"])

    @router.get("", summary="A user's feed items, newest first")
    async def list_items(
        app_id: str,
        uid: str,
        read_state: ReadState | None = Query(None, alias="readState"),
        page: int = Query(1, ge=1),
        per_page: int = Query(20, ge=1, le=100, alias="perPage"),
    ) -> dict[str, Any]:
        items, total = await service.list_feed(
            app_id, uid, read_state, page, per_page, feed=deps.feed
        )
        return http.page([item.to_json() for item in items], total, page, per_page)

    @router.get("/unread-count", summary="How many of a user's feed items are unread")
    async def count_unread(app_id: str, uid: str) -> dict[str, Any]:
        count = await service.unread_count(app_id, uid, feed=deps.feed)
        return http.one(UnreadCountPublic(count=count).to_json())

    @router.post("/{item_id}/read", summary="Mark a feed item read (idempotent)")
    async def read(app_id: str, uid: str, item_id: str) -> dict[str, Any]:
        item = await service.mark_read(
            app_id, uid, item_id, feed=deps.feed, publisher=deps.publisher
        )
        return http.one(item.to_json())

    @router.post("/{item_id}/delivered", summary="Mark a feed item delivered (idempotent)")
    async def delivered(app_id: str, uid: str, item_id: str) -> dict[str, Any]:
        item = await service.mark_delivered(
            app_id, uid, item_id, feed=deps.feed, publisher=deps.publisher
        )
        return http.one(item.to_json())

    @router.delete("/{item_id}", summary="Delete a feed item")
    async def delete(app_id: str, uid: str, item_id: str) -> dict[str, Any]:
        await service.delete_feed_item(app_id, uid, item_id, feed=deps.feed)
        return http.one(DeletedPublic().to_json())

    return router


def notifications_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(prefix="/internal/apps/{app_id}/notifications", tags=["notifications"])

    @router.get("/{notification_id}", summary="A send's per receiver, per channel states")
    async def get_notification(app_id: str, notification_id: str) -> dict[str, Any]:
        found = await service.get_notification(
            app_id, notification_id, notifications=deps.notifications
        )
        return http.one(found.to_json())

    return router
