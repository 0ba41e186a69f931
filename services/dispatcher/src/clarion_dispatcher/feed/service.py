"""Use cases of the in-app feed, and the repository port they need.

A transition (read, delivered) is stored with its status event marked as owed; the
event is published, then the mark cleared. A crash in between leaves the mark, and the
next call for the item publishes the event again (same id, same time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clarion_shared.ids import now as clock_now
from clarion_shared.lifecycle import Resource

from ..publisher import Publisher
from . import domain
from .domain import FeedItemNotFound
from .models import FeedEvent, FeedItem, FeedItemPublic, FeedTransition, ReadState


class FeedRepository(Resource, Protocol):
    """The stored feed items; ``start`` prepares the store (indexes), ``stop`` does nothing."""

    async def remove_many(self, item_ids: Sequence[str]) -> None:
        """Delete the items of these ids (a receiver that failed after all)."""
        ...

    async def add_many(self, items: Sequence[FeedItem]) -> None:
        """Insert the items that do not exist yet; a replay never resets read state."""
        ...

    async def page(
        self, owner: str, read: bool | None, page: int, per_page: int
    ) -> tuple[list[FeedItem], int]:
        """One page, newest first (``sent_at`` then id), and the total matching."""
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

    async def delete(self, owner: str, item_id: str) -> bool: ...


async def list_feed(
    app_id: str,
    uid: str,
    read_state: ReadState | None,
    page: int,
    per_page: int,
    *,
    feed: FeedRepository,
) -> tuple[list[FeedItemPublic], int]:
    read = None if read_state is None else read_state == "read"
    items, total = await feed.page(domain.feed_owner(app_id, uid), read, page, per_page)
    return [domain.public_feed_item(item) for item in items], total


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
