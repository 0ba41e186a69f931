"""``/internal/apps/{app_id}/feed/{uid}``: a user's in-app feed (the gateway forwards here)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from clarion_shared.api import DEFAULT_PER_PAGE, MAX_PER_PAGE, Data, Deleted, Paged
from clarion_shared.topics import Topics

from ..errors import RESPONSES
from ..publisher import Publisher
from . import service
from .models import FeedItemPublic, ReadState, UnreadCountPublic
from .service import FeedRepository


def router(feed: FeedRepository, publisher: Publisher, topics: Topics) -> APIRouter:
    """The feed routes; transitions publish their status events on ``topics.status``."""
    status_topic = topics.status
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/feed/{uid}",
        tags=["in-app feed"],
        responses=RESPONSES,
    )

    @routes.get("", summary="A user's feed items, newest first")
    async def list_items(
        app_id: str,
        uid: str,
        read_state: ReadState | None = Query(None, alias="readState"),
        page: int = Query(1, ge=1),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
    ) -> Paged[FeedItemPublic]:
        items, total = await service.list_feed(app_id, uid, read_state, page, per_page, feed=feed)
        return Paged[FeedItemPublic].of(items, total, page, per_page)

    @routes.get("/unread-count", summary="How many of a user's feed items are unread")
    async def count_unread(app_id: str, uid: str) -> Data[UnreadCountPublic]:
        count = await service.unread_count(app_id, uid, feed=feed)
        return Data(data=UnreadCountPublic(count=count))

    @routes.post("/{item_id}/read", summary="Mark a feed item read (idempotent)")
    async def read(app_id: str, uid: str, item_id: str) -> Data[FeedItemPublic]:
        item = await service.mark_read(
            app_id, uid, item_id, feed=feed, publisher=publisher, status_topic=status_topic
        )
        return Data(data=item)

    @routes.post("/{item_id}/delivered", summary="Mark a feed item delivered (idempotent)")
    async def delivered(app_id: str, uid: str, item_id: str) -> Data[FeedItemPublic]:
        item = await service.mark_delivered(
            app_id, uid, item_id, feed=feed, publisher=publisher, status_topic=status_topic
        )
        return Data(data=item)

    @routes.delete("/{item_id}", summary="Delete a feed item")
    async def delete(app_id: str, uid: str, item_id: str) -> Data[Deleted]:
        await service.delete_feed_item(app_id, uid, item_id, feed=feed)
        return Data(data=Deleted())

    return routes
