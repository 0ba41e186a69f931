"""Use cases of the in-app feed, and the repository port they need.

A transition (read, delivered, engaged) is stored with its status event marked as owed; the
event is published, then the mark cleared. A crash in between leaves the mark, and the
next call for the item publishes the event again (same id, same time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clarion_shared.cursor import CursorPage, NumberedPage, PageRequest, window
from clarion_shared.ids import now as clock_now
from clarion_shared.lifecycle import Resource
from clarion_shared.public.feed import FEED_SORTS

from ..publisher import Publisher
from . import domain
from .domain import FeedFilter, FeedItemNotFound
from .models import FeedEvent, FeedItem, FeedItemPublic, FeedQuery, FeedTransition


class FeedRepository(Resource, Protocol):
    """The stored feed items; ``start`` prepares the store (indexes), ``stop`` does nothing."""

    async def remove_many(self, item_ids: Sequence[str]) -> None:
        """Delete the items of these ids (a receiver that failed after all)."""
        ...

    async def add_many(self, items: Sequence[FeedItem]) -> None:
        """Insert the items that do not exist yet; a replay never resets read state."""
        ...

    async def page(
        self, owner: str, where: FeedFilter, ascending: bool, skip: int, limit: int
    ) -> tuple[list[FeedItem], int]:
        """Up to ``limit`` matching items after the first ``skip``, by ``sort_key``
        (``sent_at`` then id), and how many match in all."""
        ...

    async def scan(
        self, owner: str, where: FeedFilter, beyond: str | None, ascending: bool, limit: int
    ) -> list[FeedItem]:
        """Up to ``limit`` matching items whose ``sort_key`` is beyond ``beyond`` (above
        it when ``ascending``, below it otherwise; None: from the end), in that order."""
        ...

    async def unread_count(self, owner: str) -> int: ...

    async def get(self, owner: str, item_id: str) -> FeedItem | None: ...

    async def mark_read(self, owner: str, item_id: str, at: int) -> FeedTransition | None:
        """Mark read in one conditional update; None when the owner has no such item."""
        ...

    async def mark_delivered(self, owner: str, item_id: str, at: int) -> FeedTransition | None: ...

    async def event_published(self, owner: str, item_id: str, event: FeedEvent) -> None:
        """The item's ``event`` status event is acknowledged: clear its pending flag."""
        ...

    async def engage(
        self, owner: str, item_id: str, topic: str | None, at: int
    ) -> FeedTransition | None:
        """Store an engagement in one conditional update when it changes the item: the
        first engagement (with or without a topic), or a topic new to the item; its event
        is marked owed. None when the owner has no such item."""
        ...

    async def engagement_published(self, owner: str, item_id: str, topic: str | None) -> None:
        """The engagement event of ``topic`` is acknowledged: it is owed no more."""
        ...

    async def delete(self, owner: str, item_id: str) -> bool: ...


async def list_feed(
    app_id: str, uid: str, query: FeedQuery, *, feed: FeedRepository
) -> NumberedPage[FeedItemPublic] | CursorPage[FeedItemPublic]:
    """The page or cursor page ``query`` asks for (``clarion_shared.cursor``'s rules);
    ``Invalid`` for parameters that do not go together."""
    owner = domain.feed_owner(app_id, uid)
    where = domain.feed_filter(query)
    paging = query.paging.request(FEED_SORTS)
    if isinstance(paging, PageRequest):
        skip = (paging.number - 1) * paging.per_page
        found, total = await feed.page(owner, where, paging.order == "asc", skip, paging.per_page)
        return NumberedPage(found, total, paging).map(domain.public_feed_item)
    at = paging.position
    beyond = None if at is None else domain.position_key(int(at.value), at.id)
    read = await feed.scan(owner, where, beyond, paging.ascending, paging.limit + 1)
    return window(read, paging, domain.position_of).map(domain.public_feed_item)


async def unread_count(app_id: str, uid: str, *, feed: FeedRepository) -> int:
    return await feed.unread_count(domain.feed_owner(app_id, uid))


async def mark_read(
    app_id: str,
    uid: str,
    item_id: str,
    *,
    feed: FeedRepository,
    publisher: Publisher,
    status_topic: str,
    now: int | None = None,
) -> FeedItemPublic:
    """Idempotent; ``FeedItemRead`` is published on ``status_topic`` by the call that
    made the change, or by the next call when a crash came between the change and the
    publish."""
    at = clock_now() if now is None else now
    owner = domain.feed_owner(app_id, uid)
    transition = await feed.mark_read(owner, item_id, at)
    if transition is None:
        raise FeedItemNotFound()
    item = transition.item
    if item.read_event_pending:
        await publisher.publish(status_topic, domain.feed_item_read(item), key=item.send_id)
        await feed.event_published(owner, item_id, "read")
    return domain.public_feed_item(item)


async def mark_delivered(
    app_id: str,
    uid: str,
    item_id: str,
    *,
    feed: FeedRepository,
    publisher: Publisher,
    status_topic: str,
    now: int | None = None,
) -> FeedItemPublic:
    """Idempotent; ``FeedItemDelivered`` as for ``mark_read``."""
    at = clock_now() if now is None else now
    owner = domain.feed_owner(app_id, uid)
    transition = await feed.mark_delivered(owner, item_id, at)
    if transition is None:
        raise FeedItemNotFound()
    item = transition.item
    if item.delivered_event_pending:
        await publisher.publish(status_topic, domain.feed_item_delivered(item), key=item.send_id)
        await feed.event_published(owner, item_id, "delivered")
    return domain.public_feed_item(item)


async def engage(
    app_id: str,
    uid: str,
    item_id: str,
    topic: str | None,
    *,
    feed: FeedRepository,
    publisher: Publisher,
    status_topic: str,
    now: int | None = None,
) -> FeedItemPublic:
    """Idempotent per topic; ``FeedItemEngaged`` as for ``mark_read``: published by the
    call that stored the engagement, or by the item's next engagement call when a crash
    came between (every event the item still owes)."""
    at = clock_now() if now is None else now
    owner = domain.feed_owner(app_id, uid)
    transition = await feed.engage(owner, item_id, topic, at)
    if transition is None:
        raise FeedItemNotFound()
    item = transition.item
    for owed in list(dict.fromkeys(item.engagement_events_pending)):
        event = domain.feed_item_engaged(item, owed)
        await publisher.publish(status_topic, event, key=item.send_id)
        await feed.engagement_published(owner, item_id, owed)
    return domain.public_feed_item(item)


async def get_feed_item(
    app_id: str, uid: str, item_id: str, *, feed: FeedRepository
) -> FeedItemPublic:
    item = await feed.get(domain.feed_owner(app_id, uid), item_id)
    if item is None:
        raise FeedItemNotFound()
    return domain.public_feed_item(item)


async def delete_feed_item(app_id: str, uid: str, item_id: str, *, feed: FeedRepository) -> None:
    if not await feed.delete(domain.feed_owner(app_id, uid), item_id):
        raise FeedItemNotFound()
