"""Webhook endpoints on the real broker and database: the configurations land on the
compacted topic keyed ``app:webhook`` (a delete: a tombstone), and a state change the
emitter publishes is applied by the gateway's consumer group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from clarion_devtools.helpers import random_ref, wait_until
from clarion_gateway.app import Adapters, Settings, compose
from clarion_gateway.testing import ADMIN, MemoryBatchRegistry
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.kafka import topic_partitions
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration

WEBHOOKS = "/v3/webhooks"


class KeyedTail:
    """Every record (key, value) published on a topic after ``start``."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self.records: list[tuple[str, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        partitions = await topic_partitions(self._bootstrap_servers, self._topic)
        await self._consumer.start()
        assigned = [TopicPartition(self._topic, p) for p in partitions]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:
            await self._consumer.position(tp)  # fixed before anything is published
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                self.records += [((r.key or b"").decode(), r.value or b"") for r in records]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def of(self, key: str) -> list[bytes]:
        return [value for k, value in self.records if k == key]


@dataclass
class Live:
    client: httpx.AsyncClient
    headers: dict[str, str]
    app_id: str
    adapters: Adapters
    configs: KeyedTail
    infra: InfraSettings
    topics: Topics


@pytest_asyncio.fixture
async def live(
    infra_settings: InfraSettings, topics: Topics, test_db_name: str
) -> AsyncIterator[Live]:
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=test_db_name,
        group_id=random_ref("gw"),
        webhooks_allow_private=True,
    )
    adapters = replace(Adapters.connect(settings), batches=MemoryBatchRegistry())
    app = compose(settings, adapters)
    configs = KeyedTail(infra_settings.kafka_bootstrap_servers, topics.config_webhooks)
    await configs.start()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30
            ) as client,
        ):
            created = await client.post("/admin/apps", json={"name": "Hooks"}, headers=ADMIN)
            assert created.status_code == 201, created.text
            data = created.json()["data"]
            yield Live(
                client,
                {"apikey": data["apiKey"]},
                data["appId"],
                adapters,
                configs,
                infra_settings,
                topics,
            )
    finally:
        await configs.stop()


async def test_configurations_and_state_changes_go_through_kafka(live: Live) -> None:
    body: dict[str, Any] = {
        "name": "Local receiver",
        "webhookURL": "http://127.0.0.1:9/hook",
        "triggers": ["after_batch_completed"],
    }
    created = await live.client.post(WEBHOOKS, json=body, headers=live.headers)
    assert created.status_code == 201, created.text
    webhook = created.json()["data"]
    key = f"{live.app_id}:{webhook['id']}"

    async def published(count: int) -> list[bytes] | None:
        found = live.configs.of(key)
        return found if len(found) >= count else None

    [first] = await wait_until(lambda: published(1), timeout_s=20, what="the configuration")
    config = WebhookConfig.model_validate_json(first)
    assert (config.url, config.signing_secret) == (body["webhookURL"], webhook["signingSecret"])

    await wait_until(live.adapters.webhook_states.ready, timeout_s=30, what="the group joined")
    producer = AIOKafkaProducer(bootstrap_servers=live.infra.kafka_bootstrap_servers)
    await producer.start()
    try:
        event = WebhookDisabled(
            event_id=random_ref("ev"),
            app_id=live.app_id,
            webhook_id=webhook["id"],
            reason="gone",
            detail="answered 410",
            disabled_at=1,
            config_updated_at=config.updated_at,
        )
        await producer.send_and_wait(live.topics.webhooks_state, event.to_bytes(), key=key.encode())
    finally:
        await producer.stop()

    async def shown_disabled() -> dict[str, Any] | None:
        response = await live.client.get(f"{WEBHOOKS}/{webhook['id']}", headers=live.headers)
        data: dict[str, Any] = response.json()["data"]
        return data if data["enabled"] is False else None

    shown = await wait_until(shown_disabled, timeout_s=30, what="the webhook disabled")
    assert shown["disabledReason"] == "gone: answered 410"
    found = await wait_until(lambda: published(2), timeout_s=20, what="the new configuration")
    assert WebhookConfig.model_validate_json(found[-1]).enabled is False

    deleted = await live.client.delete(f"{WEBHOOKS}/{webhook['id']}", headers=live.headers)
    assert deleted.status_code == 200
    found = await wait_until(lambda: published(3), timeout_s=20, what="the tombstone")
    assert found[-1] == b""
    assert await live.adapters.webhooks.unpublished() == []
