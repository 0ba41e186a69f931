"""Webhook configurations reach the emitter whatever fails (the outbox), in the order
they were written, and the emitter's endpoint state changes come back applied.

Unit tests on fakes and on FastStream's in-memory broker (the real Kafka adapters)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from clarion_devtools.helpers import wait_until
from clarion_gateway.app import compose
from clarion_gateway.kafka import PublishFailed
from clarion_gateway.testing import (
    AUTH,
    FakeRequester,
    Harness,
    MemoryStore,
    MemoryWebhooks,
    RecordingCommands,
    RecordingWebhookConfigs,
    all_sent,
    fake_adapters,
    gateway_harness,
    make_settings,
)
from clarion_gateway.webhooks.consumers import KafkaWebhookStates
from clarion_gateway.webhooks.domain import NewWebhook, Tombstone, Version, Webhook, new_webhook
from clarion_gateway.webhooks.kafka import KafkaWebhookConfigs
from clarion_gateway.webhooks.outbox import Republisher, propagate
from clarion_shared import kafka
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.kafka import BrokerConnection
from clarion_shared.topics import Topics

WEBHOOKS = "/v3/webhooks"
BODY: dict[str, Any] = {
    "name": "Orders",
    "webhookURL": "https://hooks.example.com/in",
    "triggers": ["after_batch_completed"],
}
NOW_MS = 1_800_000_000_000


def _webhook(webhook_id: str = "wh_1", app_id: str = "app") -> Webhook:
    new = NewWebhook(name="Orders", url=BODY["webhookURL"], triggers=["after_batch_completed"])
    return new_webhook(app_id, webhook_id, new, "whsec_x", NOW_MS, allow_private=False)


async def test_a_write_whose_publish_fails_stands_and_the_republisher_publishes_it(
    harness: Harness,
) -> None:
    harness.webhook_configs.fail_with = KafkaConnectionError()
    created = await harness.client.post(WEBHOOKS, json=BODY, headers=AUTH)
    assert created.status_code == 201, created.text  # the write stands: a success
    webhook_id = created.json()["data"]["id"]
    assert harness.webhook_configs.records == []
    [pending] = await harness.store.webhooks.unpublished()
    assert pending.webhook_id == webhook_id
    republisher = Republisher(harness.store.webhooks, harness.webhook_configs, 60.0)
    with pytest.raises(PublishFailed):  # still failing: it stays in the outbox
        await republisher.tick()
    assert len(await harness.store.webhooks.unpublished()) == 1
    harness.webhook_configs.fail_with = None
    assert await republisher.tick() == 1
    [(key, config)] = harness.webhook_configs.records
    assert key == f"clarion-dev:{webhook_id}"
    assert config is not None
    assert config.name == "Orders"
    assert await harness.store.webhooks.unpublished() == []
    assert await republisher.tick() == 0  # published once


async def test_a_deletion_whose_tombstone_failed_is_published_later(harness: Harness) -> None:
    created = (await harness.client.post(WEBHOOKS, json=BODY, headers=AUTH)).json()["data"]
    harness.webhook_configs.fail_with = KafkaConnectionError()
    deleted = await harness.client.delete(f"{WEBHOOKS}/{created['id']}", headers=AUTH)
    assert deleted.status_code == 200
    missing = await harness.client.get(f"{WEBHOOKS}/{created['id']}", headers=AUTH)
    assert missing.status_code == 404
    assert len(harness.store.webhooks.docs) == 1  # the tombstone, until it is published
    harness.webhook_configs.fail_with = None
    await Republisher(harness.store.webhooks, harness.webhook_configs, 60.0).tick()
    assert harness.webhook_configs.records[-1] == (f"clarion-dev:{created['id']}", None)
    assert harness.store.webhooks.docs == {}


async def test_the_republisher_runs_in_the_gateway() -> None:
    async with gateway_harness(make_settings(webhook_republish_interval_s=0.05)) as harness:
        harness.webhook_configs.fail_with = KafkaConnectionError()
        created = await harness.client.post(WEBHOOKS, json=BODY, headers=AUTH)
        assert created.status_code == 201
        harness.webhook_configs.fail_with = None

        async def published() -> bool:
            return len(harness.webhook_configs.records) == 1

        await wait_until(published, timeout_s=5, what="the republished configuration")


async def test_a_write_left_unpublished_by_a_dead_process_is_published_at_start() -> None:
    """The process wrote, then died before publishing: the next one's start publishes."""
    settings = make_settings()
    store = MemoryStore()
    await store.webhooks.insert(_webhook("wh_left", app_id="clarion-dev"))
    commands = RecordingCommands()

    async def reply(command: SendNotification) -> SendResult | None:
        return all_sent(command)

    configs = RecordingWebhookConfigs()
    adapters = fake_adapters(
        settings, store, commands, FakeRequester(commands, reply), webhook_configs=configs
    )
    app = compose(settings, adapters)
    async with app.router.lifespan_context(app):

        async def published() -> bool:
            return len(configs.records) == 1

        await wait_until(published, timeout_s=5, what="the configuration left unpublished")
    assert configs.records[0][0] == "clarion-dev:wh_left"
    assert await store.webhooks.unpublished() == []


class _Overtaken(RecordingWebhookConfigs):
    """The first publish is overtaken: while it is in flight, another write lands and
    is published first, as two processes racing on one key may do."""

    def __init__(self, webhooks: MemoryWebhooks, newer: Webhook) -> None:
        super().__init__()
        self._webhooks = webhooks
        self._newer: Webhook | None = newer

    async def webhook_config(self, config: WebhookConfig) -> None:
        newer, self._newer = self._newer, None
        if newer is not None:
            stored = await self._webhooks.stored(newer.app_id, newer.webhook_id)
            assert isinstance(stored, Webhook)
            assert await self._webhooks.save(newer, stored.updated_at)
            await propagate(self._webhooks, self, newer)
        await super().webhook_config(config)


async def test_a_publish_overtaken_by_a_newer_write_publishes_the_newer_again() -> None:
    """The compacted topic keeps a key's last record: it must be the stored version."""
    webhooks = MemoryWebhooks()
    first = _webhook()
    await webhooks.insert(first)
    newer = replace(first, name="Renamed", updated_at=first.updated_at + 1)
    configs = _Overtaken(webhooks, newer)
    await propagate(webhooks, configs, first)
    names = [c.name for _, c in configs.records if c is not None]
    assert names == ["Renamed", "Orders", "Renamed"]
    assert await webhooks.unpublished() == []


async def test_a_stale_publish_after_a_deletion_is_followed_by_the_tombstone() -> None:
    webhooks = MemoryWebhooks()
    first = _webhook()
    await webhooks.insert(first)
    configs = RecordingWebhookConfigs()
    stale: Version = first
    # Deleted and published (the document gone) before the stale version is published.
    gone = Tombstone(first.app_id, first.webhook_id, first.updated_at + 1)
    assert await webhooks.save(gone, first.updated_at)
    await propagate(webhooks, configs, gone)
    await propagate(webhooks, configs, stale)
    assert configs.records[-1] == (first.key, None)
    assert webhooks.docs == {}


def _disabled(webhook_id: str, config_updated_at: int, event_id: str = "e1") -> WebhookDisabled:
    return WebhookDisabled(
        event_id=event_id,
        app_id="clarion-dev",
        webhook_id=webhook_id,
        reason="failing",
        detail="no success for 5 days",
        disabled_at=NOW_MS // 1000,
        config_updated_at=config_updated_at,
    )


async def test_the_emitter_s_disable_is_applied_published_and_idempotent(
    harness: Harness,
) -> None:
    created = (await harness.client.post(WEBHOOKS, json=BODY, headers=AUTH)).json()["data"]
    key = f"clarion-dev:{created['id']}"
    judged = harness.webhook_configs.latest(key)
    assert judged is not None
    await harness.webhook_states.deliver(_disabled(created["id"], judged.updated_at))
    shown = (await harness.client.get(f"{WEBHOOKS}/{created['id']}", headers=AUTH)).json()
    assert shown["data"]["enabled"] is False
    assert shown["data"]["disabledReason"] == "failing: no success for 5 days"
    latest = harness.webhook_configs.latest(key)
    assert latest is not None
    assert (latest.enabled, latest.disabled_reason) == (False, "failing: no success for 5 days")
    assert latest.updated_at > judged.updated_at
    published = len(harness.webhook_configs.records)
    await harness.webhook_states.deliver(_disabled(created["id"], judged.updated_at))
    assert len(harness.webhook_configs.records) == published  # redelivered: nothing new
    # Enabled again by the operator: the reason goes.
    enabled = await harness.client.put(
        f"{WEBHOOKS}/{created['id']}", json={"enabled": True}, headers=AUTH
    )
    assert enabled.json()["data"]["enabled"] is True
    assert enabled.json()["data"]["disabledReason"] is None


async def test_a_disable_of_an_older_configuration_is_ignored(harness: Harness) -> None:
    created = (await harness.client.post(WEBHOOKS, json=BODY, headers=AUTH)).json()["data"]
    key = f"clarion-dev:{created['id']}"
    judged = harness.webhook_configs.latest(key)
    assert judged is not None
    # The operator fixed the URL after the emitter judged the old configuration.
    await harness.client.put(
        f"{WEBHOOKS}/{created['id']}",
        json={"webhookURL": "https://new.example.com/in"},
        headers=AUTH,
    )
    published = len(harness.webhook_configs.records)
    await harness.webhook_states.deliver(_disabled(created["id"], judged.updated_at))
    shown = (await harness.client.get(f"{WEBHOOKS}/{created['id']}", headers=AUTH)).json()
    assert shown["data"]["enabled"] is True
    assert len(harness.webhook_configs.records) == published
    # A webhook deleted meanwhile, or never known: nothing to do either.
    await harness.webhook_states.deliver(_disabled("wh_unknown", judged.updated_at))


async def test_the_kafka_adapters_publish_keyed_configurations_and_apply_state_changes() -> None:
    """The real adapters on FastStream's in-memory broker: configurations keyed
    ``app:webhook`` (a tombstone: an empty value), state changes consumed and applied."""
    settings = make_settings()
    topics = Topics(settings.topic_prefix)
    broker: KafkaBroker = kafka.make_broker(settings, "api-gateway-test")
    store = MemoryStore()
    commands = RecordingCommands()
    adapters = replace(
        fake_adapters(settings, store, commands, FakeRequester(commands, _never)),
        broker=BrokerConnection(broker),
        webhook_configs=KafkaWebhookConfigs(broker, topics),
        webhook_states=KafkaWebhookStates(broker, topics, settings.group_id),
    )
    app = compose(settings, adapters)
    records: list[tuple[bytes | None, bytes]] = []

    @broker.subscriber(topics.config_webhooks)
    async def on_config(message: KafkaMessage) -> None:
        records.append((getattr(message.raw_message, "key", None), message.body))

    async with (
        TestKafkaBroker(broker),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        created = (await client.post(WEBHOOKS, json=BODY, headers=AUTH)).json()["data"]
        key = f"clarion-dev:{created['id']}".encode()
        [(first_key, body)] = records
        assert first_key == key
        config = WebhookConfig.model_validate_json(body)
        assert config.signing_secret == created["signingSecret"]
        await kafka.publish(
            broker,
            topics.webhooks_state,
            _disabled(created["id"], config.updated_at),
            key=f"clarion-dev:{created['id']}",
        )
        shown = (await client.get(f"{WEBHOOKS}/{created['id']}", headers=AUTH)).json()["data"]
        assert shown["enabled"] is False
        assert WebhookConfig.model_validate_json(records[-1][1]).enabled is False
        await client.delete(f"{WEBHOOKS}/{created['id']}", headers=AUTH)
        assert records[-1] == (key, b"")
    assert await store.webhooks.unpublished() == []


async def _never(command: SendNotification) -> SendResult | None:
    return None
