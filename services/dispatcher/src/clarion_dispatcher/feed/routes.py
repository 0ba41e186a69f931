"""``/internal/apps/{app_id}/feed/{uid}``: a user's in-app feed (the gateway forwards here)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Body, Depends
from fastapi.responses import StreamingResponse

from clarion_shared.api import Data, Deleted, Listed
from clarion_shared.cursor import listed
from clarion_shared.public.feed import FEED_STREAM_RESPONSE, feed_query
from clarion_shared.topics import Topics

from ..errors import RESPONSES
from ..publisher import Publisher
from . import service
from .domain import feed_owner
from .live import FeedHub
from .models import EngagementReport, FeedItemPublic, FeedQuery, UnreadCountPublic
from .service import FeedRepository


def router(  # long: one closure per route, all on the same dependencies
    feed: FeedRepository,
    publisher: Publisher,
    topics: Topics,
    hub: FeedHub,
    heartbeat_s: float = 15.0,
) -> APIRouter:
    """The feed routes; transitions publish their status events on ``topics.status``,
    and ``/stream`` pushes the user's new items from ``hub``."""
    status_topic = topics.status
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/feed/{uid}",
        tags=["in-app feed"],
        responses=RESPONSES,
    )

    @routes.get(
        "",
        summary="A user's feed items, newest first (pages, or cursor pages)",
        response_model=Listed[FeedItemPublic],
    )
    async def list_items(
        app_id: str, uid: str, query: Annotated[FeedQuery, Depends(feed_query)]
    ) -> object:
        return listed(await service.list_feed(app_id, uid, query, feed=feed))

    @routes.get("/unread-count", summary="How many of a user's feed items are unread")
    async def count_unread(app_id: str, uid: str) -> Data[UnreadCountPublic]:
        count = await service.unread_count(app_id, uid, feed=feed)
        return Data(data=UnreadCountPublic(count=count))

    # Before "/{item_id}": a path parameter would take "stream" for an item id.
    @routes.get(
        "/stream",
        summary="Server-sent events: the user's new feed items",
        response_class=StreamingResponse,
        responses=FEED_STREAM_RESPONSE,
    )
    async def stream(app_id: str, uid: str) -> StreamingResponse:
        return StreamingResponse(
            live_events(hub, feed_owner(app_id, uid), heartbeat_s),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @routes.get("/{item_id}", summary="A feed item")
    async def get_item(app_id: str, uid: str, item_id: str) -> Data[FeedItemPublic]:
        return Data(data=await service.get_feed_item(app_id, uid, item_id, feed=feed))

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

    @routes.post(
        "/{item_id}/engagement",
        summary="Report an engagement (idempotent per topic)",
    )
    async def engagement(
        app_id: str,
        uid: str,
        item_id: str,
        body: Annotated[EngagementReport | None, Body()] = None,
    ) -> Data[FeedItemPublic]:
        topic = None if body is None else body.topic
        item = await service.engage(
            app_id, uid, item_id, topic, feed=feed, publisher=publisher, status_topic=status_topic
        )
        return Data(data=item)

    @routes.delete("/{item_id}", summary="Delete a feed item")
    async def delete(app_id: str, uid: str, item_id: str) -> Data[Deleted]:
        await service.delete_feed_item(app_id, uid, item_id, feed=feed)
        return Data(data=Deleted())

    return routes


async def live_events(hub: FeedHub, owner: str, heartbeat_s: float) -> AsyncGenerator[str, None]:
    """The stream of one client: a comment at once (the subscription is live from
    then on), one ``feed_item`` event per new item, a comment every ``heartbeat_s`` so
    that proxies keep the connection. The subscription ends with the client."""
    async with hub.subscribe(owner) as queue:
        yield ": connected\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            data = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
            yield f"event: feed_item\nid: {item.get('id', '')}\ndata: {data}\n\n"
