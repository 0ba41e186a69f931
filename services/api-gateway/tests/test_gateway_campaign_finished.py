"""A campaign made final by the dispatcher's ``BatchCompleted`` is announced on
``clarion.status`` (``CampaignFinished``, for the webhook-emitter's campaign triggers):
the campaign object as the API shows it, at every application of the completion under
one event id, and never read back by the gateway's own campaign consumer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from clarion_gateway.app import compose
from clarion_gateway.campaigns.consumers import campaign_event
from clarion_gateway.campaigns.finished import KafkaFinishedPublisher
from clarion_gateway.testing import (
    AUTH,
    DEV_APP,
    FakeRequester,
    Harness,
    MemoryCampaignEvents,
    MemoryDirectory,
    MemoryStore,
    RecordingCommands,
    fake_adapters,
    make_settings,
)
from clarion_shared import kafka
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.contracts.status import (
    BatchCompleted,
    BatchStatus,
    CampaignFinished,
    status_event_adapter,
)
from clarion_shared.ids import derive_id
from clarion_shared.kafka import BrokerConnection
from clarion_shared.topics import Topics

CAMPAIGNS = "/v3/campaigns/campaigns"
UIDS = ["u0", "u1", "u2"]


async def _sending_campaign(harness: Harness) -> str:
    await harness.create_channel()
    await harness.create_template(templateId="promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Sale", "templateId": "promo", "templateVersion": 1, "tag": "sale"},
        headers=AUTH,
    )
    campaign_id: str = created.json()["data"]["id"]
    harness.directory.add_users(DEV_APP, *UIDS)
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": UIDS}, headers=AUTH
    )
    assert added.status_code == 201, added.text
    sent = await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=AUTH)
    assert sent.status_code == 200, sent.text
    return campaign_id


def _completed(campaign_id: str, status: BatchStatus = "partially_failed") -> BatchCompleted:
    return BatchCompleted(
        event_id="done",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=77,
        batch_id=campaign_id,
        status=status,
        total=3,
        sent=2,
        delivered=1,
        failed=1,
        pending=0,
        created_at=1,
        completed_at=77,
    )


async def _shown(harness: Harness, campaign_id: str) -> dict[str, Any]:
    response = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH)
    assert response.status_code == 200
    shown: dict[str, Any] = response.json()["data"]
    return shown


@pytest.mark.parametrize("status", ["completed", "partially_failed", "failed"])
async def test_the_completion_publishes_the_campaign_as_the_api_shows_it(
    harness: Harness, status: BatchStatus
) -> None:
    campaign_id = await _sending_campaign(harness)
    assert harness.campaign_finished.published == []
    await harness.campaign_events.deliver(_completed(campaign_id, status))
    [event] = harness.campaign_finished.published
    assert event == CampaignFinished(
        event_id=derive_id(campaign_id, "campaign_finished"),
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=77,
        campaign_id=campaign_id,
        status=status,
        campaign=await _shown(harness, campaign_id),
    )
    assert event.campaign["status"] == status
    assert (event.campaign["sentCount"], event.campaign["failedCount"]) == (2, 1)


async def test_a_redelivered_completion_publishes_the_same_event_again(harness: Harness) -> None:
    campaign_id = await _sending_campaign(harness)
    await harness.campaign_events.deliver(_completed(campaign_id))
    await harness.campaign_events.deliver(_completed(campaign_id))
    first, again = harness.campaign_finished.published
    assert again == first  # the same event id: the emitter sends it once


async def test_a_failed_publish_fails_the_fetch_so_it_is_delivered_again(
    harness: Harness,
) -> None:
    """The campaign is saved first; the publish's broker error is raised to the
    consumer (a transient error: not committed, delivered again), and the redelivery
    publishes."""
    campaign_id = await _sending_campaign(harness)
    harness.campaign_finished.fail_with = KafkaConnectionError()
    with pytest.raises(KafkaConnectionError):
        await harness.campaign_events.deliver(_completed(campaign_id))
    assert (await _shown(harness, campaign_id))["status"] == "partially_failed"
    harness.campaign_finished.fail_with = None
    await harness.campaign_events.deliver(_completed(campaign_id))
    [event] = harness.campaign_finished.published
    assert event.campaign["status"] == "partially_failed"


async def test_a_completion_that_did_not_apply_is_not_announced(harness: Harness) -> None:
    """A campaign that is not sending (a draft here) takes no completion."""
    await harness.create_template(templateId="promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Draft", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    campaign_id = created.json()["data"]["id"]
    await harness.campaign_events.deliver(_completed(campaign_id))
    assert harness.campaign_finished.published == []
    await harness.campaign_events.deliver(_completed("cmp_unknown"))
    assert harness.campaign_finished.published == []


async def test_the_gateway_s_own_consumer_ignores_campaign_finished(harness: Harness) -> None:
    campaign_id = await _sending_campaign(harness)
    await harness.campaign_events.deliver(_completed(campaign_id))
    [event] = harness.campaign_finished.published
    # Its consumer's filter does not parse it, and its handler ignores it when given.
    assert not campaign_event(event.to_bytes())
    assert status_event_adapter.validate_json(event.to_bytes()) == event
    before = await _shown(harness, campaign_id)
    await harness.campaign_events.deliver(event)
    assert await _shown(harness, campaign_id) == before
    assert len(harness.campaign_finished.published) == 1


async def test_the_kafka_adapter_publishes_on_the_status_topic_keyed_by_campaign() -> None:
    settings = make_settings()
    topics = Topics(settings.topic_prefix)
    broker: KafkaBroker = kafka.make_broker(settings, "api-gateway-test")
    store, commands = MemoryStore(), RecordingCommands()
    directory, events = MemoryDirectory(), MemoryCampaignEvents()
    adapters = replace(
        fake_adapters(
            settings,
            store,
            commands,
            FakeRequester(commands, _never),
            directory=directory,
            campaign_events=events,
        ),
        broker=BrokerConnection(broker),
        campaign_finished=KafkaFinishedPublisher(broker, topics),
    )
    app = compose(settings, adapters)
    seen: list[tuple[bytes | None, bytes]] = []

    @broker.subscriber(topics.status)
    async def on_status(message: KafkaMessage) -> None:
        seen.append((getattr(message.raw_message, "key", None), message.body))

    async with (
        TestKafkaBroker(broker),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        harness = Harness(
            app, client, store, commands, topics, directory=directory, campaign_events=events
        )
        campaign_id = await _sending_campaign(harness)
        await events.deliver(_completed(campaign_id))
    [(key, body)] = seen
    assert key == campaign_id.encode()
    event = status_event_adapter.validate_json(body)
    assert isinstance(event, CampaignFinished)
    assert event.campaign["id"] == campaign_id
    assert event.event_id == derive_id(campaign_id, "campaign_finished")


async def _never(command: SendNotification) -> SendResult | None:
    return None
