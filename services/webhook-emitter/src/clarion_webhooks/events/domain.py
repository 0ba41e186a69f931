"""What the status events say to webhook subscribers (API.md, Webhooks): each trigger
from the event that fires it, with the frequency API.md gives, and the body a delivery
sends. Pure: no I/O.

A webhook event's id (the ``webhook-id`` header) is derived from the status event's id
and the trigger, and status event ids are themselves derived from what they report, so
a replayed status event gives the same webhook event: a receiver that has it already
drops it, as the Standard Webhooks spec says.

The campaign triggers carry the campaign object, which the gateway owns: they come from
the gateway's ``CampaignFinished`` (``partially_failed`` counts as completed).
``after_webhook_disabled`` is the emitter's own (``deliveries.service``).

The delivery triggers come from the delivery workers' events, one per delivery (one
receiver on one channel): ``after_push_notification_sent`` from a ``DeliverySent`` on a
``push`` channel (the other channel types have no trigger for a send), and
``after_delivery_failed`` from a ``DeliveryFailed``: a worker's (final failures only:
a retry says nothing), or the fan-out's for a receiver that failed on every channel
(``deliveryId``, ``channelType`` and ``channelId`` null). Their ``data`` names ids as a
feed item and a push notification do:

- ``notificationId``: the send's id (a realtime send's ``notificationId``, a batch's
  ``batchId``, a campaign's ``campaignId``); ``batchId``, ``campaignId``: the send's id
  when it is one, else null;
- ``deliveryId``: the delivery's id, derived from the send, the receiver and the channel
  (what a custom channel's POST and a push message's data carry);
- ``receiver`` (the uid), ``channelType``, ``channelId``, ``templateId``;
- ``after_push_notification_sent`` also: ``id`` (the push notification's id, as ``GET
  .../push-notifications/{id}`` takes it: its ``deliveryId``), ``providerId`` (the
  provider's message id, or null), ``attempts`` (provider calls it took), ``sentAt``;
- ``after_delivery_failed`` also: ``error`` (``{code, message}``), ``failedAt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.config_webhooks import TRIGGERS
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    CampaignFinished,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
)
from clarion_shared.ids import derive_id

__all__ = ["TRIGGERS", "WebhookEvent", "body", "webhook_event_id", "webhook_events"]

_FEED_TRIGGERS: dict[type, str] = {
    FeedItemSent: "after_feed_item_sent",
    FeedItemDelivered: "after_feed_item_delivered",
    FeedItemRead: "after_feed_item_read",
}


@dataclass(frozen=True)
class WebhookEvent:
    """One thing to tell an app's subscribed endpoints. ``send_id`` keys it, so one
    send's events keep their order."""

    event_id: str
    app_id: str
    send_id: str
    trigger: str
    occurred_at: int
    data: JsonObject


def webhook_event_id(status_event_id: str, trigger: str) -> str:
    return "msg_" + derive_id(status_event_id, trigger)


def webhook_events(event: AnyStatusEvent) -> list[WebhookEvent]:
    """The webhook events one status event fires (none for bookkeeping)."""
    found = _trigger_and_data(event)
    if found is None:
        return []
    trigger, data = found
    return [
        WebhookEvent(
            event_id=webhook_event_id(event.event_id, trigger),
            app_id=event.app_id,
            send_id=event.send_id,
            trigger=trigger,
            occurred_at=event.occurred_at,
            data=data,
        )
    ]


def _trigger_and_data(event: AnyStatusEvent) -> tuple[str, JsonObject] | None:
    match event:
        case ChunkDispatched(chunk=0):
            # Once per send, when its (first) records exist: every send has a chunk 0.
            created: JsonObject = {
                "notificationId": event.send_id,
                "mode": event.mode,
                "total": event.total,
                "chunks": event.chunks,
                "createdAt": event.occurred_at,
            }
            return "after_notification_created", created
        case FeedItemSent() | FeedItemDelivered() | FeedItemRead():
            return _FEED_TRIGGERS[type(event)], event.feed_item
        case FeedItemEngaged():
            return "after_feed_item_engaged", {**event.feed_item, "topic": event.topic}
        case DeliverySent(channel_type="push"):
            sent: JsonObject = {
                "id": event.notification_id,
                **_delivery(event),
                "providerId": event.provider_id,
                "attempts": event.attempts,
                "sentAt": event.occurred_at,
            }
            return "after_push_notification_sent", sent
        case DeliveryFailed():
            failed: JsonObject = {
                **_delivery(event),
                "error": {"code": event.error.code, "message": event.error.message},
                "failedAt": event.occurred_at,
            }
            return "after_delivery_failed", failed
        case BatchCompleted(mode="batch"):
            batch: JsonObject = {
                "batchId": event.batch_id,
                "status": event.status,
                "total": event.total,
                "sent": event.sent,
                "delivered": event.delivered,
                "failed": event.failed,
                "pending": event.pending,
                "createdAt": event.created_at,
                "completedAt": event.completed_at,
            }
            return "after_batch_completed", batch
        case CampaignFinished():
            trigger = (
                "after_campaign_failed" if event.status == "failed" else "after_campaign_completed"
            )
            return trigger, event.campaign
        case _:
            return None


def _delivery(event: DeliverySent | DeliveryFailed) -> JsonObject:
    """The ids of one delivery (its receiver on its channel) and of its send."""
    return {
        "notificationId": event.send_id,
        "deliveryId": event.notification_id,
        "batchId": event.send_id if event.mode == "batch" else None,
        "campaignId": event.send_id if event.mode == "campaign" else None,
        "receiver": event.uid,
        "channelType": event.channel_type,
        "channelId": event.channel_id,
        "templateId": event.template_id,
    }


def body(event: WebhookEvent, webhook_id: str) -> bytes:
    """What a delivery to endpoint ``webhook_id`` sends: ``{trigger, data, appId,
    webhook}`` (API.md), compact UTF-8 JSON; signed as these exact bytes."""
    payload = {
        "trigger": event.trigger,
        "data": event.data,
        "appId": event.app_id,
        "webhook": webhook_id,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
