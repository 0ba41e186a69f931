"""Pure rules of the in-app feed: whose item it is, what it shows, how lists filter
and order it, what its events say."""

from __future__ import annotations

from dataclasses import dataclass

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import (
    FeedItemDelivered,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
)
from clarion_shared.cursor import Position
from clarion_shared.errors import Invalid, NotFound

from ..notifications.domain import event_id
from ..notifications.models import NotificationRecord
from .models import FeedItem, FeedItemPublic, FeedQuery


class FeedItemNotFound(NotFound):
    """The user has no such item (it may be another user's, or another app's)."""

    def __init__(self) -> None:
        super().__init__("Feed item")


def feed_owner(app_id: str, uid: str) -> str:
    return f"{app_id}:{uid}"


def sort_key(item: FeedItem) -> str:
    """``sent_at`` then id as one string, so the feed's order is a single-field sort.

    FerretDB pushes a single-field sort down to its storage (not a compound one), and
    on MongoDB the (owner, sort_key) index serves the query whole.
    """
    return position_key(item.sent_at, item.id)


def position_key(sent_at: int, item_id: str) -> str:
    """The sort key of the place ``(sentAt, id)`` a cursor names (twelve digits: the
    cursor's ``MAX_TIMESTAMP``)."""
    return f"{sent_at:012d}:{item_id}"


def position_of(item: FeedItem) -> Position:
    """The cursor naming ``item``: its sentAt and id."""
    return Position(item.sent_at, item.id)


@dataclass(frozen=True)
class FeedFilter:
    """Which of a user's items a list shows. ``tags``: the tags an item may have (None:
    any item, with or without one; empty: none can match)."""

    read: bool | None = None
    sent_from: float | None = None
    sent_to: float | None = None
    tags: frozenset[str] | None = None
    template_category: str | None = None
    channel_id: str | None = None

    def matches(self, item: FeedItem) -> bool:
        return (
            (self.read is None or item.read == self.read)
            and (self.sent_from is None or item.sent_at >= self.sent_from)
            and (self.sent_to is None or item.sent_at <= self.sent_to)
            and (self.tags is None or item.tag in self.tags)
            and (self.template_category is None or item.template_category == self.template_category)
            and (self.channel_id is None or item.channel_id == self.channel_id)
        )


def feed_filter(query: FeedQuery) -> FeedFilter:
    """The filter of CometChat's feed parameters; ``dateFrom`` after ``dateTo`` is 400."""
    if (
        query.date_from is not None
        and query.date_to is not None
        and query.date_from > query.date_to
    ):
        raise Invalid(
            "dateFrom is after dateTo.",
            details=[{"field": "dateFrom", "message": "must not be after dateTo"}],
        )
    return FeedFilter(
        read=None if query.read_state in (None, "all") else query.read_state == "read",
        sent_from=query.date_from,
        sent_to=query.date_to,
        tags=accepted_tags(query.tags, query.tag_match),
        template_category=query.template_category,
        channel_id=query.channel_id,
    )


def accepted_tags(tags: str | None, match: str) -> frozenset[str] | None:
    """The tags an item may carry to match ``tags`` (comma-separated) under ``match``.

    An item has one tag: with ``any`` it must be one of those named; with ``all`` it must
    be every one of them, which only one distinct tag can be (two or more: nothing
    matches). No tag named: no filter.
    """
    wanted = frozenset(t.strip() for t in (tags or "").split(",") if t.strip())
    if not wanted:
        return None
    if match == "all" and len(wanted) > 1:
        return frozenset()
    return wanted


def feed_item_for(
    record: NotificationRecord, content: JsonObject, template_category: str | None = None
) -> FeedItem:
    """The in-app feed item of a sent ``in_app`` record (same id)."""
    return FeedItem(
        id=record.id,
        app_id=record.app_id,
        owner=feed_owner(record.app_id, record.uid),
        receiver=record.uid,
        send_id=record.send_id,
        mode=record.mode,
        # The public notification id is the send's id: the realtime `notificationId`,
        # or the batch / campaign the item came from.
        notification_id=record.send_id,
        batch_id=record.batch_id,
        campaign_id=record.campaign_id,
        channel_type=record.channel_type,
        channel_id=record.channel_id,
        template_id=record.template_id,
        template_version=record.template_version,
        content=content,
        tag=record.tag,
        template_category=template_category,
        status="sent",
        read=False,
        sent_at=record.created_at,
    )


def public_feed_item(item: FeedItem) -> FeedItemPublic:
    return FeedItemPublic(
        id=item.id,
        notification_id=item.notification_id,
        batch_id=item.batch_id,
        campaign_id=item.campaign_id,
        receiver=item.receiver,
        channel_type=item.channel_type,
        channel_id=item.channel_id,
        template_id=item.template_id,
        template_version=item.template_version,
        content=item.content,
        tag=item.tag,
        template_category=item.template_category,
        status=item.status,
        sent_at=item.sent_at,
        delivered_at=item.delivered_at,
        read_at=item.read_at,
        engaged_at=item.engaged_at,
        engagement_topics=[e.topic for e in item.engagements if e.topic is not None],
        created_at=item.sent_at,
        updated_at=item.updated_at or item.sent_at,
    )


def feed_item_sent(item: FeedItem) -> FeedItemSent:
    """The event of a new item, at the time it was sent."""
    return FeedItemSent(
        event_id=event_id(item.id, "feed_item_sent"),
        app_id=item.app_id,
        send_id=item.send_id,
        mode=item.mode,
        occurred_at=item.sent_at,
        feed_item=public_feed_item(item).to_json(),
    )


def feed_item_read(item: FeedItem) -> FeedItemRead:
    """The event of an item's one transition to read: its id is derived from the item
    and its time is the stored ``read_at``, so publishing it again repeats it exactly."""
    assert item.read_at is not None
    return FeedItemRead(
        event_id=event_id(item.id, "feed_item_read"),
        app_id=item.app_id,
        send_id=item.send_id,
        mode=item.mode,
        occurred_at=item.read_at,
        feed_item=public_feed_item(item).to_json(),
    )


def feed_item_delivered(item: FeedItem) -> FeedItemDelivered:
    assert item.delivered_at is not None
    return FeedItemDelivered(
        event_id=event_id(item.id, "feed_item_delivered"),
        app_id=item.app_id,
        send_id=item.send_id,
        mode=item.mode,
        occurred_at=item.delivered_at,
        feed_item=public_feed_item(item).to_json(),
    )


def feed_item_engaged(item: FeedItem, topic: str | None) -> FeedItemEngaged:
    """The event of the engagement of ``topic`` stored on ``item`` (None: its first,
    without a topic): id derived from the item and the topic, time the stored one."""
    engagement = item.engagement_of(topic)
    assert engagement is not None
    return FeedItemEngaged(
        event_id=event_id(item.id, f"feed_item_engaged:{topic or ''}"),
        app_id=item.app_id,
        send_id=item.send_id,
        mode=item.mode,
        occurred_at=engagement.at,
        topic=topic,
        first_engagement=engagement == item.engagements[0],
        feed_item=public_feed_item(item).to_json(),
    )
