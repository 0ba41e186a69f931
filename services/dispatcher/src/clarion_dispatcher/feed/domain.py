"""Pure rules of the in-app feed: whose item it is, what it shows, what its events say."""

from __future__ import annotations

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import FeedItemDelivered, FeedItemRead, FeedItemSent
from clarion_shared.errors import NotFound

from ..notifications.domain import event_id
from ..notifications.models import NotificationRecord
from .models import FeedItem, FeedItemPublic


class FeedItemNotFound(NotFound):
    """The user has no such item (it may be another user's, or another app's)."""

    def __init__(self) -> None:
        super().__init__("Feed item")


def feed_owner(app_id: str, uid: str) -> str:
    return f"{app_id}:{uid}"


def feed_item_for(record: NotificationRecord, content: JsonObject) -> FeedItem:
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
        status=item.status,
        sent_at=item.sent_at,
        delivered_at=item.delivered_at,
        read_at=item.read_at,
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
