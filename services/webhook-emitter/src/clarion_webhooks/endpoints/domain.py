"""Pure rules of webhook endpoints: which trigger a status event fires."""

from __future__ import annotations

from clarion_shared.contracts.status import (
    AnyStatusEvent,
    DeliveryFailed,
    FeedItemDelivered,
    FeedItemRead,
    FeedItemSent,
    NotificationCreated,
)

TRIGGERS = (
    "after_notification_created",
    "after_feed_item_sent",
    "after_feed_item_delivered",
    "after_feed_item_read",
    "after_push_notification_sent",
    "after_delivery_failed",
    "after_batch_completed",
    "after_campaign_completed",
    "after_campaign_failed",
)


def trigger_for(event: AnyStatusEvent) -> str | None:
    """The webhook trigger an event fires, or None for internal bookkeeping events."""
    match event:
        case NotificationCreated():
            return "after_notification_created"
        case FeedItemSent():
            return "after_feed_item_sent"
        case FeedItemDelivered():
            return "after_feed_item_delivered"
        case FeedItemRead():
            return "after_feed_item_read"
        case DeliveryFailed():
            return "after_delivery_failed"
        case _:
            return None
