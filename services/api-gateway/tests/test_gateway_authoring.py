"""The send path's cache of templates and channels (``clarion_gateway.authoring``):
the cache's rules, its use by sends, the announcements of writes, and its coherence
across two gateway processes on the real broker and database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, wait_until
from clarion_gateway.app import Adapters, Settings, compose
from clarion_gateway.authoring.cache import AuthoringCache
from clarion_gateway.authoring.service import CachedChannels, CachedTemplates
from clarion_gateway.templates.domain import Template
from clarion_gateway.testing import (
    AUTH,
    DEV_APP,
    Harness,
    MemoryBatchRegistry,
    MemoryChannels,
    MemoryTemplates,
)
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.settings import DEV_ADMIN_TOKEN, InfraSettings
from clarion_shared.tail import TopicTail
from clarion_shared.topics import Topics

SEND = "/v3/campaigns/notifications/messages"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _open(size: int = 10, ttl_s: float = 30.0) -> tuple[AuthoringCache, Clock]:
    clock = Clock()
    cache = AuthoringCache(size, ttl_s, clock)
    cache.open()
    return cache, clock


# The cache's rules


def test_a_closed_or_empty_cache_answers_nothing_and_keeps_nothing() -> None:
    closed = AuthoringCache(10, 30.0)
    assert closed.begin("a") is None
    assert closed.get(("a", "template", "t")) == (False, None)
    off = AuthoringCache(0, 30.0)
    off.open()
    assert off.begin("a") is None


def test_a_read_is_kept_until_its_ttl() -> None:
    cache, clock = _open(ttl_s=30.0)
    read = cache.begin("a")
    assert read is not None
    clock.now += 1
    assert cache.put(read, ("a", "template", "t"), "v1")
    assert cache.get(("a", "template", "t")) == (True, "v1")
    clock.now += 28.9  # the TTL counts from the read's beginning
    assert cache.get(("a", "template", "t")) == (True, "v1")
    clock.now += 0.2
    assert cache.get(("a", "template", "t")) == (False, None)
    assert len(cache) == 0


def test_an_absence_is_kept_as_a_value() -> None:
    cache, _ = _open()
    read = cache.begin("a")
    assert read is not None
    cache.put(read, ("a", "template", "missing"), None)
    assert cache.get(("a", "template", "missing")) == (True, None)


def test_an_invalidation_drops_only_that_app() -> None:
    cache, _ = _open()
    for app in ("a", "b"):
        read = cache.begin(app)
        assert read is not None
        cache.put(read, (app, "template", "t"), app)
        cache.put(read, (app, "channels_of_type", "in_app"), (app,))
    cache.invalidate("a")
    assert cache.get(("a", "template", "t")) == (False, None)
    assert cache.get(("a", "channels_of_type", "in_app")) == (False, None)
    assert cache.get(("b", "template", "t")) == (True, "b")


def test_a_read_in_flight_across_an_invalidation_of_its_app_is_not_kept() -> None:
    cache, _ = _open()
    before = cache.begin("a")
    other = cache.begin("b")
    assert before is not None
    assert other is not None
    cache.invalidate("a")  # the template changed while ``before`` was reading it
    assert not cache.put(before, ("a", "template", "t"), "old")
    assert cache.get(("a", "template", "t")) == (False, None)
    assert cache.put(other, ("b", "template", "t"), "fine")  # another app's read is kept
    after = cache.begin("a")
    assert after is not None
    assert cache.put(after, ("a", "template", "t"), "new")
    assert cache.get(("a", "template", "t")) == (True, "new")


def test_a_clear_refuses_the_reads_in_flight() -> None:
    cache, _ = _open()
    read = cache.begin("a")
    assert read is not None
    cache.clear()
    assert not cache.put(read, ("a", "template", "t"), "old")
    assert len(cache) == 0


def test_the_oldest_entries_go_first_past_the_size() -> None:
    cache, clock = _open(size=2)
    for name in ("t1", "t2", "t3"):
        read = cache.begin("a")
        assert read is not None
        cache.put(read, ("a", "template", name), name)
        clock.now += 1
    assert len(cache) == 2
    assert cache.get(("a", "template", "t1")) == (False, None)
    assert cache.get(("a", "template", "t3")) == (True, "t3")


# The send path's reads


class CountingTemplates(MemoryTemplates):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, app_id: str, template_id: str) -> Template | None:
        self.reads += 1
        return await super().get(app_id, template_id)


class CountingChannels(MemoryChannels):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def of_type(self, app_id: str, channel_type: str) -> list[Any]:
        self.reads += 1
        return await super().of_type(app_id, channel_type)


async def test_cached_reads_ask_the_repository_once() -> None:
    cache, _ = _open()
    templates, channels = CountingTemplates(), CountingChannels()
    cached_templates, cached_channels = (
        CachedTemplates(templates, cache),
        CachedChannels(channels, cache),
    )
    for _ in range(3):
        assert await cached_templates.get("a", "nothing") is None
        assert await cached_channels.of_type("a", "in_app") == []
    assert (templates.reads, channels.reads) == (1, 1)
    cache.invalidate("a")
    await cached_templates.get("a", "nothing")
    assert templates.reads == 2


async def _ready(harness: Harness) -> str:
    channel = await harness.create_channel()
    await harness.create_template(templateId="order")
    return str(channel["channelId"])


async def test_every_write_is_announced_and_sends_see_it_at_once(harness: Harness) -> None:
    channel_id = await _ready(harness)
    # A channel and a template created, and the template approved.
    assert harness.authoring.announced == [DEV_APP] * 3
    sent = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH
    )
    assert sent.status_code == 200, sent.text
    assert len(harness.authoring.cache) > 0  # what the send read is cached
    disabled = await harness.client.put(
        f"/v3/campaigns/channels/{channel_id}", json={"enabled": False}, headers=AUTH
    )
    assert disabled.status_code == 200, disabled.text
    assert harness.authoring.announced == [DEV_APP] * 4
    refused = await harness.client.post(
        SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH
    )
    assert refused.status_code == 400, refused.text


async def test_a_failed_announcement_does_not_fail_the_write(harness: Harness) -> None:
    await _ready(harness)
    await harness.client.post(SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH)
    assert harness.commands.sends[-1].template.version == 1
    harness.authoring.fail_with = KafkaConnectionError()
    edited = await harness.client.put(
        "/v3/campaigns/templates/order/channels/in_app",
        json={"content": {"title": "v2 {{name}}", "body": "b"}},
        headers=AUTH,
    )
    assert edited.status_code == 200, edited.text
    approved = await harness.client.put(
        "/v3/campaigns/templates/order", json={"status": "approved"}, headers=AUTH
    )
    assert approved.status_code == 200, approved.text
    await harness.client.post(SEND, json={"templateId": "order", "receivers": ["u1"]}, headers=AUTH)
    # This process dropped its copy even though the others could not be told.
    assert harness.commands.sends[-1].template.version == 2


# Two gateway processes on the real broker and database


@contextlib.asynccontextmanager
async def _gateway(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Adapters]]:
    # No dispatcher runs here: batch registrations go to the in-memory registry.
    adapters = replace(Adapters.connect(settings), batches=MemoryBatchRegistry())
    app = compose(settings, adapters)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30
        ) as client,
    ):
        yield client, adapters


@pytest.mark.integration
async def test_a_write_on_one_gateway_reaches_the_cache_of_another(
    infra_settings: InfraSettings,
    topics: Topics,
    mongo_client: AsyncMongoClient[dict[str, Any]],
    test_db_name: str,
) -> None:
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": infra_settings.kafka_bootstrap_servers,
        "mongodb_url": infra_settings.mongodb_url,
        "topic_prefix": infra_settings.topic_prefix,
        "db_name": test_db_name,
    }
    commands: list[SendNotification] = []
    sends_tail = TopicTail(
        infra_settings.kafka_bootstrap_servers,
        topics.sends,
        lambda value: commands.append(SendNotification.model_validate_json(value)),
    )
    await sends_tail.start()
    try:
        async with (
            _gateway(Settings(**common, instance_id=random_ref("a"))) as (a, _),
            _gateway(Settings(**common, instance_id=random_ref("b"))) as (b, b_adapters),
        ):
            admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
            created = await a.post("/admin/apps", json={"name": "Two gateways"}, headers=admin)
            assert created.status_code == 201, created.text
            app_id = created.json()["data"]["appId"]
            key = {"apikey": created.json()["data"]["apiKey"]}
            assert (
                await a.post(
                    "/v3/campaigns/channels",
                    json={"name": "Feed", "type": "in_app", "enabled": True},
                    headers=key,
                )
            ).status_code == 201
            assert (
                await a.post(
                    "/v3/campaigns/templates",
                    json={
                        "name": "Order",
                        "templateId": "order",
                        "status": "approved",
                        "channels": [
                            {"channelType": "in_app", "content": {"title": "v1", "body": "b"}}
                        ],
                    },
                    headers=key,
                )
            ).status_code == 201
            cache = b_adapters.authoring.cache

            async def batch_on_b(sent_before: int) -> SendNotification:
                receivers = [f"u{i}" for i in range(11)]
                response = await b.post(
                    SEND, json={"templateId": "order", "receivers": receivers}, headers=key
                )
                assert response.status_code == 200, response.text
                batch_id = response.json()["data"]["batchId"]

                async def published() -> SendNotification | None:
                    mine = [c for c in commands[sent_before:] if c.send_id == batch_id]
                    return mine[0] if mine else None

                return await wait_until(published, what="the batch's command")

            first = await batch_on_b(0)
            assert first.template.version == 1
            assert cache.get((app_id, "template", "order"))[0]  # B holds the template

            edited = await a.put(
                "/v3/campaigns/templates/order/channels/in_app",
                json={"content": {"title": "v2", "body": "b"}},
                headers=key,
            )
            assert edited.status_code == 200, edited.text
            approved = await a.put(
                "/v3/campaigns/templates/order", json={"status": "approved"}, headers=key
            )
            assert approved.status_code == 200, approved.text

            async def dropped() -> bool:
                return not cache.get((app_id, "template", "order"))[0]

            await wait_until(dropped, timeout_s=10, what="B dropping the template A changed")
            second = await batch_on_b(len(commands))
            assert second.template.version == 2
            assert second.template.channels[0].content["title"] == "v2"
    finally:
        await sends_tail.stop()
        await mongo_client.drop_database(test_db_name)
