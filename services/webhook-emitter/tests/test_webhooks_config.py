"""The webhook-emitter learns endpoints from its compacted configuration topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.kafka import ConsumerGroups
from clarion_shared.topics import Topics
from clarion_webhooks.endpoints import consumers
from clarion_webhooks.endpoints.mongo import MongoEndpointRepository
from clarion_webhooks.endpoints.service import EndpointRepository
from clarion_webhooks.testing import InMemoryEndpointRepository

TOPICS = Topics("unit.")
CONFIG_WEBHOOKS = TOPICS.config_webhooks


def config(app_id: str, webhook_id: str, at: int, **values: Any) -> WebhookConfig:
    fields: dict[str, Any] = {
        "app_id": app_id,
        "webhook_id": webhook_id,
        "name": "hook",
        "url": "http://127.0.0.1:9/hook",
        "triggers": ["after_feed_item_sent"],
        "enabled": True,
        "signing_secret": "whsec_test",
        "updated_at": at,
    }
    return WebhookConfig.model_validate(fields | values)


async def test_config_records_upsert_newest_and_tombstones_delete() -> None:
    broker = KafkaBroker()
    endpoints = InMemoryEndpointRepository()
    consumers.register(ConsumerGroups(broker, "webhook-emitter"), TOPICS, endpoints)
    dead: list[bytes] = []

    @broker.subscriber(f"{CONFIG_WEBHOOKS}.dlq")
    async def on_dead(msg: KafkaMessage) -> None:
        dead.append(msg.body)

    newer = config("app", "w1", at=20, name="newer")
    older = config("app", "w1", at=10, name="older")
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(newer.to_bytes(), CONFIG_WEBHOOKS, key=newer.key.encode())
        await test_broker.publish(older.to_bytes(), CONFIG_WEBHOOKS, key=older.key.encode())
        assert endpoints.endpoints[newer.key].name == "newer"

        await test_broker.publish(b"{not a config", CONFIG_WEBHOOKS, key=b"app:w2")
        assert len(dead) == 1

        await test_broker.publish(None, CONFIG_WEBHOOKS, key=newer.key.encode())
        assert newer.key not in endpoints.endpoints


@pytest_asyncio.fixture(loop_scope="session")
async def mongo_repo(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> AsyncIterator[MongoEndpointRepository]:
    repo = MongoEndpointRepository(mongo_client[test_db_name])
    await repo.start()
    try:
        yield repo
    finally:
        await mongo_client.drop_database(test_db_name)


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def repo(request: pytest.FixtureRequest) -> EndpointRepository:
    """The repository test runs against the fake and against the real database."""
    if request.param == "memory":
        return InMemoryEndpointRepository()
    found: EndpointRepository = request.getfixturevalue("mongo_repo")
    return found


async def test_endpoint_repository_keeps_the_newest_configuration(
    repo: EndpointRepository,
) -> None:
    app_id = random_ref("app")
    assert await repo.upsert(config(app_id, "w1", at=10, name="first"))
    assert await repo.upsert(config(app_id, "w1", at=20, name="second"))
    assert not await repo.upsert(config(app_id, "w1", at=15, name="stale"))
    stored = await repo.get(f"{app_id}:w1")
    assert stored is not None
    assert stored.name == "second"
    assert [c.webhook_id for c in await repo.for_app(app_id)] == ["w1"]

    await repo.delete(f"{app_id}:w1")
    assert await repo.get(f"{app_id}:w1") is None
