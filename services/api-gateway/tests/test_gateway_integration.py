"""The gateway alone on the real broker and database (FerretDB + Kafka).

What it publishes is read back from ``clarion.sends``; no dispatcher runs here (the
end-to-end tests send through the real one), so a realtime send times out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, wait_until
from clarion_gateway.app import Adapters, Settings, compose
from clarion_gateway.testing import MemoryBatchRegistry
from clarion_gateway.testing.channels import provider_settings
from clarion_shared.contracts.config_channels import ChannelConfig
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.settings import DEV_ADMIN_TOKEN, InfraSettings
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
SEND = "/v3/campaigns/notifications/messages"


class TopicTail:
    """Every record published on a topic after ``start`` (all partitions, no group)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap_servers = bootstrap_servers
        self.records: list[tuple[bytes | None, bytes]] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        self._task: asyncio.Task[None] | None = None
        self.on_record: Callable[[bytes | None, bytes], Any] | None = None

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap_servers)
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        partitions = [p["partition"] for d in described for p in d.get("partitions", [])]
        assert partitions, f"topic {self.topic} does not exist"
        await self._consumer.start()
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:
            await self._consumer.position(tp)  # fixed before anything is published
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    self.records.append((record.key, record.value or b""))
                    if self.on_record is not None:
                        await self.on_record(record.key, record.value or b"")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


@dataclass
class Live:
    client: httpx.AsyncClient
    headers: dict[str, str]
    app_id: str
    infra: InfraSettings
    topics: Topics


@pytest_asyncio.fixture
async def live(
    infra_settings: InfraSettings,
    topics: Topics,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    test_db_name: str,
) -> AsyncIterator[Live]:
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=test_db_name,
        environment="dev",
        dev_app_id=random_ref("dev"),
        dev_api_key=random_ref("devkey"),
        realtime_timeout_s=1.0,
    )
    # No dispatcher runs here: its batch registry is the in-memory one.
    app = compose(settings, replace(Adapters.connect(settings), batches=MemoryBatchRegistry()))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30
            ) as client,
        ):
            created = await client.post("/admin/apps", json={"name": "Integration"}, headers=ADMIN)
            assert created.status_code == 201, created.text
            data = created.json()["data"]
            yield Live(client, {"apikey": data["apiKey"]}, data["appId"], infra_settings, topics)
    finally:
        await mongo_client.drop_database(test_db_name)


async def _approved_template(live: Live) -> None:
    channel = await live.client.post(
        "/v3/campaigns/channels",
        json={"name": "Feed", "type": "in_app", "enabled": True},
        headers=live.headers,
    )
    assert channel.status_code == 201, channel.text
    template = await live.client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Order",
            "templateId": "order",
            "status": "approved",
            "channels": [{"channelType": "in_app", "content": {"title": "{{n}}", "body": "b"}}],
            "variableSchema": [{"key": "n"}],
        },
        headers=live.headers,
    )
    assert template.status_code == 201, template.text


async def test_dev_app_and_keys(live: Live, infra_settings: InfraSettings) -> None:
    listed = await live.client.get("/v3/campaigns/channels", headers=live.headers)
    assert listed.status_code == 200
    wrong = await live.client.get(
        "/v3/campaigns/channels", headers={**live.headers, "appid": "someone-else"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "ERR_UNAUTHORIZED"
    ready = await live.client.get("/readyz")
    checks = ready.json()["checks"]
    assert (checks["mongo"], checks["kafka"], checks["replies"]) == (True, True, True)


async def test_channels_and_templates_crud(live: Live) -> None:
    config_tail = TopicTail(live.infra.kafka_bootstrap_servers, live.topics.config_channels)
    await config_tail.start()
    try:
        created = await live.client.post(
            "/v3/campaigns/channels",
            json={
                "name": "SMTP",
                "type": "email",
                "metadata": provider_settings("email"),
            },
            headers=live.headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["metadata"]["smtp"]["password"] == "****tery"
        updated = await live.client.put(
            "/v3/campaigns/channels/smtp",
            json={"enabled": True, "metadata": created.json()["data"]["metadata"]},
            headers=live.headers,
        )
        assert updated.status_code == 200

        def configs() -> list[ChannelConfig]:
            key = f"{live.app_id}:smtp".encode()
            return [
                ChannelConfig.model_validate_json(v) for k, v in config_tail.records if k == key
            ]

        async def both() -> bool:
            return len(configs()) == 2

        await wait_until(both, what="two channel configs")
        assert [c.enabled for c in configs()] == [False, True]
        assert configs()[1].metadata == provider_settings("email")
    finally:
        await config_tail.stop()

    push = await live.client.post(
        "/v3/campaigns/channels", json={"name": "Push", "type": "push"}, headers=live.headers
    )
    assert push.status_code == 201
    push_again = await live.client.post(
        "/v3/campaigns/channels", json={"name": "Push 2", "type": "push"}, headers=live.headers
    )
    assert push_again.status_code == 409

    await _approved_template(live)
    edited = await live.client.put(
        "/v3/campaigns/templates/order/channels/in_app",
        json={"content": {"title": "New {{n}}", "body": "b"}},
        headers=live.headers,
    )
    data = edited.json()["data"]
    assert (data["status"], data["version"], data["approvedVersion"]) == ("draft", 2, 1)
    listed = await live.client.get(
        "/v3/campaigns/templates", params={"status": "draft"}, headers=live.headers
    )
    assert [t["templateId"] for t in listed.json()["data"]] == ["order"]
    missing = await live.client.get("/v3/campaigns/templates/nope", headers=live.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ERR_NOT_FOUND"
    invalid = await live.client.post(
        "/v3/campaigns/templates", json={"name": 5}, headers=live.headers
    )
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "ERR_VALIDATION"


async def test_batch_chunks_land_on_sends(live: Live) -> None:
    await _approved_template(live)
    tail = TopicTail(live.infra.kafka_bootstrap_servers, live.topics.sends)
    await tail.start()
    try:
        receivers = [f"user-{i}" for i in range(1_100)]
        response = await live.client.post(
            SEND,
            json={"templateId": "order", "receivers": receivers, "tag": "t"},
            headers={**live.headers, "Idempotency-Key": "batch-1"},
        )
        assert response.status_code == 200, response.text
        batch_id = response.json()["data"]["batchId"]

        def chunks() -> list[SendNotification]:
            return [
                SendNotification.model_validate_json(v)
                for k, v in tail.records
                if k is not None and k.decode().startswith(f"{batch_id}:")
            ]

        async def all_three() -> bool:
            return len(chunks()) == 3

        await wait_until(all_three, what="three batch chunks")
        got = sorted(chunks(), key=lambda c: c.chunk)
        assert [(c.chunk, c.chunks, c.total) for c in got] == [
            (0, 3, 1100),
            (1, 3, 1100),
            (2, 3, 1100),
        ]
        assert [uid for c in got for uid in c.receivers] == receivers
        assert all(c.app_id == live.app_id and c.mode == "batch" for c in got)
        # Keyed per chunk, so the chunks spread over the partitions (and dispatchers).
        keys = sorted(k for k, _ in tail.records if k and k.decode().startswith(batch_id))
        assert keys == [f"{batch_id}:{n}".encode() for n in range(3)]
        # The same Idempotency-Key and body: the same answer, nothing published again.
        again = await live.client.post(
            SEND,
            json={"templateId": "order", "receivers": receivers, "tag": "t"},
            headers={**live.headers, "Idempotency-Key": "batch-1"},
        )
        assert again.json() == response.json()
        await asyncio.sleep(0.5)
        assert len(chunks()) == 3
    finally:
        await tail.stop()


async def test_realtime_send_nobody_answers_is_a_504_and_stays_queued(live: Live) -> None:
    await _approved_template(live)
    tail = TopicTail(live.infra.kafka_bootstrap_servers, live.topics.sends_realtime)
    await tail.start()
    try:
        response = await live.client.post(
            SEND,
            json={"templateId": "order", "receivers": ["u1", "u2"], "variables": {"u1": {"n": 1}}},
            headers=live.headers,
        )
        assert response.status_code == 504, response.text
        error = response.json()["error"]
        assert error["code"] == "ERR_TIMEOUT"
        notification_id = error["details"]["notificationId"]

        def published() -> list[SendNotification]:
            return [
                SendNotification.model_validate_json(v)
                for k, v in tail.records
                if k == notification_id.encode()
            ]

        async def found() -> bool:
            return len(published()) == 1

        # The command was queued before the wait: a dispatcher will still deliver it.
        await wait_until(found, what="the realtime command on clarion.sends.realtime")
        [command] = published()
        assert command.mode == "realtime"
        assert command.reply_to is not None
        assert command.receivers == ["u1", "u2"]
        assert command.template.channels[0].channel_id == "feed"
        assert command.variables == {"u1": {"n": 1}}
    finally:
        await tail.stop()
