"""What status events say to webhook subscribers: each trigger with API.md's frequency,
ids that a replayed status event repeats, and the body a delivery signs."""

from __future__ import annotations

import json
from typing import Any

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    CampaignFinished,
    ChunkDispatched,
    DeliveryFailed,
    FeedItemDelivered,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
    NotificationCreated,
)
from clarion_webhooks.events.domain import TRIGGERS, body, webhook_event_id, webhook_events

ITEM = {"id": "item-1", "receiver": "alice", "channelType": "in_app", "status": "sent"}


def base(mode: str = "batch", event_id: str = "ev-1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "app_id": "app-1",
        "send_id": "bat_1",
        "mode": mode,
        "occurred_at": 100,
    }


def chunk(number: int, mode: str = "batch") -> ChunkDispatched:
    return ChunkDispatched(
        **base(mode, f"chunk-{number}"), chunk=number, chunks=3, total=25, sent=10, failed=0
    )


def completed(mode: str) -> BatchCompleted:
    return BatchCompleted(
        **base(mode, "done"),
        batch_id="bat_1",
        status="partially_failed",
        total=25,
        sent=24,
        delivered=3,
        failed=1,
        pending=0,
        created_at=90,
        completed_at=120,
    )


def triggers(event: AnyStatusEvent) -> list[str]:
    return [e.trigger for e in webhook_events(event)]


def test_each_event_fires_its_trigger_with_its_data() -> None:
    failed = DeliveryFailed(
        **base(),
        uid="ghost",
        channel_type="in_app",
        channel_id="ch-1",
        notification_id="ntf-1",
        error=ErrorInfo(code="ERR_USER_NOT_FOUND", message="No such user."),
    )
    engaged = FeedItemEngaged(**base(), topic="clicked", first_engagement=True, feed_item=ITEM)
    cases: list[tuple[AnyStatusEvent, str]] = [
        (FeedItemSent(**base(), feed_item=ITEM), "after_feed_item_sent"),
        (FeedItemDelivered(**base(), feed_item=ITEM), "after_feed_item_delivered"),
        (FeedItemRead(**base(), feed_item=ITEM), "after_feed_item_read"),
        (engaged, "after_feed_item_engaged"),
        (failed, "after_delivery_failed"),
        (completed("batch"), "after_batch_completed"),
    ]
    for event, trigger in cases:
        [fired] = webhook_events(event)
        assert (fired.trigger, fired.app_id, fired.send_id) == (trigger, "app-1", "bat_1")
        assert fired.trigger in TRIGGERS
    assert webhook_events(cases[0][0])[0].data == ITEM
    assert webhook_events(engaged)[0].data == {**ITEM, "topic": "clicked"}
    assert webhook_events(failed)[0].data == {
        "notificationId": "bat_1",
        "deliveryId": "ntf-1",
        "batchId": "bat_1",
        "campaignId": None,
        "receiver": "ghost",
        "channelType": "in_app",
        "channelId": "ch-1",
        "templateId": None,
        "error": {"code": "ERR_USER_NOT_FOUND", "message": "No such user."},
        "failedAt": 100,
    }
    assert webhook_events(completed("batch"))[0].data == {
        "batchId": "bat_1",
        "status": "partially_failed",
        "total": 25,
        "sent": 24,
        "delivered": 3,
        "failed": 1,
        "pending": 0,
        "createdAt": 90,
        "completedAt": 120,
    }


def test_a_send_is_announced_once_by_its_first_chunk() -> None:
    created = NotificationCreated(
        **base(), notification_id="n", uid="u", channel_type="in_app", channel_id="c"
    )
    assert triggers(created) == []  # one per receiver and channel: not per send
    assert [triggers(chunk(n)) for n in range(3)] == [["after_notification_created"], [], []]
    [announced] = webhook_events(chunk(0))
    assert announced.data == {
        "notificationId": "bat_1",
        "mode": "batch",
        "total": 25,
        "chunks": 3,
        "createdAt": 100,
    }


def test_a_campaigns_completion_is_not_announced_as_a_batch() -> None:
    # The campaign triggers carry the campaign object, which the gateway owns.
    assert triggers(completed("campaign")) == []


def test_a_replayed_status_event_gives_the_same_webhook_id() -> None:
    first = webhook_events(FeedItemRead(**base(event_id="read-1"), feed_item=ITEM))
    again = webhook_events(FeedItemRead(**base(event_id="read-1"), feed_item=ITEM))
    other = webhook_events(FeedItemRead(**base(event_id="read-2"), feed_item=ITEM))
    assert first[0].event_id == again[0].event_id == webhook_event_id("read-1", first[0].trigger)
    assert first[0].event_id.startswith("msg_")
    assert other[0].event_id != first[0].event_id


def test_the_body_is_the_trigger_data_app_and_endpoint() -> None:
    [event] = webhook_events(FeedItemSent(**base(), feed_item=ITEM))
    sent = body(event, "wh_1")
    assert json.loads(sent) == {
        "trigger": "after_feed_item_sent",
        "data": ITEM,
        "appId": "app-1",
        "webhook": "wh_1",
    }
    assert body(event, "wh_1") == sent  # the same bytes each time: what is signed


def test_a_finished_campaign_fires_its_trigger_with_the_campaign_object() -> None:
    campaign = {"id": "cmp_1", "name": "Spring", "status": "partially_failed"}
    fired = {}
    for status in ("completed", "partially_failed", "failed"):
        event = CampaignFinished(
            **base("campaign", f"cmp-{status}"),
            campaign_id="cmp_1",
            status=status,
            campaign=campaign,
        )
        [webhook] = webhook_events(event)
        assert webhook.data == campaign
        fired[status] = webhook.trigger
    assert fired == {
        "completed": "after_campaign_completed",
        "partially_failed": "after_campaign_completed",
        "failed": "after_campaign_failed",
    }
