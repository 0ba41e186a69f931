"""The delivery workers' events as webhooks: a push accepted by its provider fires
``after_push_notification_sent``, a delivery failed for good ``after_delivery_failed``,
each with the receiver, the channel, the send's and the delivery's ids; a republished
event (a redelivered job says the same event id) is the same webhook delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.status import DeliveryFailed, DeliverySent
from clarion_webhooks.deliveries.consumers import fires_a_trigger
from clarion_webhooks.deliveries.service import deliveries_for
from clarion_webhooks.endpoints.service import EndpointCache
from clarion_webhooks.events.domain import TRIGGERS, body, webhook_event_id, webhook_events
from clarion_webhooks.testing import InMemoryEndpointRepository

APP = "app-1"
BOUNCED = ErrorInfo(code="ERR_PROVIDER_REJECTED", message="550 no such mailbox")


def base(mode: str = "campaign", event_id: str = "ev-sent") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "app_id": APP,
        "send_id": "cmp_1",
        "mode": mode,
        "occurred_at": 1_700_000_100,
    }


def push_sent(mode: str = "campaign", channel_type: str = "push") -> DeliverySent:
    return DeliverySent(
        **base(mode),
        uid="alice",
        channel_type=channel_type,
        channel_id="fcm",
        notification_id="dlv-1",
        template_id="promo",
        provider_id="projects/p/messages/42",
        attempts=2,
    )


def worker_failed(mode: str = "campaign") -> DeliveryFailed:
    return DeliveryFailed(
        **base(mode, "ev-failed"),
        uid="bob",
        channel_type="email",
        channel_id="mail",
        notification_id="dlv-2",
        template_id="promo",
        error=BOUNCED,
    )


def test_a_push_sent_fires_its_trigger_with_the_delivery() -> None:
    [fired] = webhook_events(push_sent())
    assert fired.trigger == "after_push_notification_sent"
    assert fired.trigger in TRIGGERS
    assert (fired.app_id, fired.send_id, fired.occurred_at) == (APP, "cmp_1", 1_700_000_100)
    assert fired.data == {
        "id": "dlv-1",
        "notificationId": "cmp_1",
        "deliveryId": "dlv-1",
        "batchId": None,
        "campaignId": "cmp_1",
        "receiver": "alice",
        "channelType": "push",
        "channelId": "fcm",
        "templateId": "promo",
        "providerId": "projects/p/messages/42",
        "attempts": 2,
        "sentAt": 1_700_000_100,
    }
    sent = json.loads(body(fired, "wh_1"))
    assert (sent["trigger"], sent["data"]["receiver"], sent["webhook"]) == (
        "after_push_notification_sent",
        "alice",
        "wh_1",
    )


@pytest.mark.parametrize("channel_type", ["email", "sms", "custom", "in_app"])
def test_a_send_on_another_channel_fires_nothing(channel_type: str) -> None:
    assert webhook_events(push_sent(channel_type=channel_type)) == []


def test_a_workers_failure_names_its_channel_notification_and_error() -> None:
    [fired] = webhook_events(worker_failed("batch"))
    assert fired.trigger == "after_delivery_failed"
    assert fired.data == {
        "notificationId": "cmp_1",
        "deliveryId": "dlv-2",
        "batchId": "cmp_1",
        "campaignId": None,
        "receiver": "bob",
        "channelType": "email",
        "channelId": "mail",
        "templateId": "promo",
        "error": {"code": "ERR_PROVIDER_REJECTED", "message": "550 no such mailbox"},
        "failedAt": 1_700_000_100,
    }
    realtime = webhook_events(worker_failed("realtime"))[0].data
    assert (realtime["notificationId"], realtime["batchId"], realtime["campaignId"]) == (
        "cmp_1",
        None,
        None,
    )


def test_a_fan_out_failure_has_no_channel_nor_delivery() -> None:
    failed = DeliveryFailed(
        **base("batch", "ev-fan-out"),
        uid="ghost",
        template_id="promo",
        error=ErrorInfo(code="ERR_USER_NOT_FOUND", message="No such user."),
    )
    [fired] = webhook_events(failed)
    assert fired.trigger == "after_delivery_failed"
    assert {k: fired.data[k] for k in ("deliveryId", "channelType", "channelId")} == {
        "deliveryId": None,
        "channelType": None,
        "channelId": None,
    }
    assert (fired.data["notificationId"], fired.data["receiver"]) == ("cmp_1", "ghost")


def test_the_workers_events_that_fire_are_read_by_the_emitter_the_others_not() -> None:
    assert fires_a_trigger(push_sent().to_bytes())
    assert fires_a_trigger(worker_failed().to_bytes())
    assert not fires_a_trigger(push_sent(channel_type="email").to_bytes())


async def test_a_republished_event_is_one_delivery_per_endpoint() -> None:
    endpoints = InMemoryEndpointRepository()
    for webhook_id, triggers in [
        ("wh_push", ["after_push_notification_sent"]),
        ("wh_both", ["after_push_notification_sent", "after_delivery_failed"]),
        ("wh_feed", ["after_feed_item_sent"]),
    ]:
        config = WebhookConfig(
            app_id=APP,
            webhook_id=webhook_id,
            name=webhook_id,
            url=f"https://example.com/{webhook_id}",
            triggers=triggers,
            enabled=True,
            signing_secret="whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ=",
            updated_at=1,
        )
        endpoints.endpoints[config.key] = config
    cache = EndpointCache(endpoints, ttl_s=0)

    def owed_by(events: list[Any]) -> list[Any]:
        return [w for event in events for w in webhook_events(event)]

    first = await deliveries_for(cache, owed_by([push_sent(), worker_failed()]))
    again = await deliveries_for(cache, owed_by([push_sent(), worker_failed()]))
    assert sorted((d.webhook_id, d.trigger) for d in first) == [
        ("wh_both", "after_delivery_failed"),
        ("wh_both", "after_push_notification_sent"),
        ("wh_push", "after_push_notification_sent"),
    ]
    # The same ids and the same signed bytes: a receiver drops the repeat.
    assert [(d.id, d.msg_id, d.body) for d in again] == [(d.id, d.msg_id, d.body) for d in first]
    assert first[0].msg_id == webhook_event_id("ev-sent", "after_push_notification_sent")
    other = push_sent().model_copy(update={"event_id": "ev-other"})
    [moved] = webhook_events(other)
    assert moved.event_id != first[0].msg_id
