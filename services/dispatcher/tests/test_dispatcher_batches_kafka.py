"""Batches on the real broker and database: the announcer's Kafka transaction (what
``read_committed`` readers see, the offsets it commits), and a batch and a campaign
tracked end to end by the dispatcher (the uid lookups answered by a fake directory)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, start_new_groups_at_end, wait_until
from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.batches.kafka import AnnounceFailed, TransactionalAnnouncer
from clarion_dispatcher.testing import FakeDirectory, profile, send_command
from clarion_shared import kafka
from clarion_shared.contracts.status import BatchCompleted, status_event_adapter
from clarion_shared.http import internal_headers
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration


def completed(batch_id: str) -> BatchCompleted:
    return BatchCompleted(
        event_id=random_ref("evt"),
        app_id="app",
        send_id=batch_id,
        mode="batch",
        occurred_at=1,
        batch_id=batch_id,
        status="completed",
        total=1,
        sent=1,
        delivered=0,
        failed=0,
        pending=0,
        created_at=1,
        completed_at=1,
    )


class StatusReader:
    """The status topic from now on, as ``isolation_level`` readers see it."""

    def __init__(self, bootstrap: str, topic: str, isolation_level: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            isolation_level=isolation_level,
            fetch_max_wait_ms=20,
        )
        self._topic = topic
        self.events: list[Any] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.end_offsets([TopicPartition(self._topic, 0)])  # loads metadata
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                self.events += [status_event_adapter.validate_json(r.value) for r in records]

    def completions(self, batch_id: str) -> list[BatchCompleted]:
        return [e for e in self.events if isinstance(e, BatchCompleted) and e.batch_id == batch_id]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def readers(
    infra_settings: InfraSettings, topics: Topics
) -> AsyncIterator[tuple[StatusReader, StatusReader]]:
    bootstrap = infra_settings.kafka_bootstrap_servers
    committed = StatusReader(bootstrap, topics.status, "read_committed")
    uncommitted = StatusReader(bootstrap, topics.status, "read_uncommitted")
    for reader in (committed, uncommitted):
        await reader.start()
    yield committed, uncommitted
    for reader in (committed, uncommitted):
        await reader.stop()


def announcer(
    infra_settings: InfraSettings, topics: Topics, transactional_id: str, group_id: str
) -> TransactionalAnnouncer:
    return TransactionalAnnouncer(
        infra_settings.kafka_bootstrap_servers,
        topics.status,
        transactional_id=transactional_id,
        group_id=group_id,
        transaction_timeout_ms=10_000,
        request_timeout_ms=10_000,
    )


async def committed_offset(bootstrap: str, group_id: str, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(tp)
        return offset
    finally:
        await consumer.stop()


async def test_an_announcement_commits_its_event_and_offsets_together(
    infra_settings: InfraSettings,
    topics: Topics,
    readers: tuple[StatusReader, StatusReader],
) -> None:
    committed_reader, _ = readers
    group_id = random_ref("tracker-it")
    tracker = announcer(infra_settings, topics, random_ref("txn"), group_id)
    await tracker.start()
    event = completed(random_ref("bat"))
    try:
        await tracker.announce([event], {(topics.status, 1): 42})
        await tracker.announce([event], {(topics.status, 1): 42})  # handled again: left out
    finally:
        await tracker.stop()

    await wait_until(
        lambda: _found(committed_reader.completions(event.batch_id)), what="the announcement"
    )
    await asyncio.sleep(0.5)
    assert committed_reader.completions(event.batch_id) == [event]
    tp = TopicPartition(topics.status, 1)
    assert await committed_offset(infra_settings.kafka_bootstrap_servers, group_id, tp) == 42


async def test_a_transaction_that_failed_is_never_read_committed(
    infra_settings: InfraSettings,
    topics: Topics,
    readers: tuple[StatusReader, StatusReader],
) -> None:
    committed_reader, uncommitted_reader = readers
    transactional_id = random_ref("txn")
    batch_id = random_ref("bat")
    # No group to commit the offsets for: fails after the event is sent in the transaction.
    broken = announcer(infra_settings, topics, transactional_id, group_id="")
    await broken.start()
    with pytest.raises(AnnounceFailed):
        await broken.announce([completed(batch_id)], {(topics.status, 0): 1})
    await broken.stop()
    # Its successor (same transactional id) aborts what it left open, then announces.
    successor = announcer(infra_settings, topics, transactional_id, random_ref("tracker-it"))
    await successor.start()
    try:
        again = completed(batch_id)
        await successor.announce([again], {(topics.status, 0): 1})
    finally:
        await successor.stop()

    await wait_until(
        lambda: _found(committed_reader.completions(batch_id)), what="the announcement"
    )
    await asyncio.sleep(0.5)
    assert committed_reader.completions(batch_id) == [again]
    assert len(uncommitted_reader.completions(batch_id)) == 2  # the aborted one was written


async def _found(items: list[BatchCompleted]) -> list[BatchCompleted]:
    return items


# ------------------------------------------------------------- the dispatcher


@pytest_asyncio.fixture(loop_scope="session")
async def dispatcher(
    infra_settings: InfraSettings,
    topics: Topics,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[tuple[httpx.AsyncClient, Adapters]]:
    db_name = random_ref("dispatcher_batches_it").replace("-", "_")
    settings = Settings(
        kafka_bootstrap_servers=infra_settings.kafka_bootstrap_servers,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=db_name,
        group_id=random_ref("dispatcher-batches-it"),
    )
    await start_new_groups_at_end(
        settings.kafka_bootstrap_servers,
        [(kafka.group_id_of(settings.group_id, t), t) for t in (topics.sends, topics.status)],
    )
    directory = FakeDirectory()
    adapters = replace(Adapters.connect(settings), directory=directory)
    app = compose(settings, adapters)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://d",
                headers=internal_headers(settings.internal_token),
            ) as client,
        ):
            yield client, adapters
    finally:
        await mongo_client.drop_database(db_name)


async def test_a_batch_is_decided_and_announced_once(
    dispatcher: tuple[httpx.AsyncClient, Adapters],
    topics: Topics,
    readers: tuple[StatusReader, StatusReader],
) -> None:
    client, adapters = dispatcher
    committed_reader, _ = readers
    app_id, batch_id = random_ref("app"), random_ref("bat")
    uids = [f"u{n}" for n in range(30)]
    assert isinstance(adapters.directory, FakeDirectory)
    adapters.directory.add(app_id, *(profile(uid) for uid in uids[:-1]))  # one unknown
    parts = [uids[:20], uids[20:]]
    registered = await client.put(
        f"/internal/apps/{app_id}/batches/{batch_id}",
        json={"total": 30, "createdAt": 1, "channels": ["in_app"], "chunks": parts},
    )
    assert registered.json()["data"]["status"] == "queued"

    for index, part in enumerate(parts):
        command = send_command(app_id, batch_id, part, mode="batch", chunk=index, chunks=2)
        await kafka.publish(
            adapters.broker, topics.sends, command.model_copy(update={"total": 30}), batch_id
        )
        await kafka.publish(  # a replayed chunk republishes its events: no second decision
            adapters.broker, topics.sends, command.model_copy(update={"total": 30}), batch_id
        )

    [announced] = await wait_until(
        lambda: _found(committed_reader.completions(batch_id)), timeout_s=60, what="the decision"
    )
    await asyncio.sleep(1.0)
    assert committed_reader.completions(batch_id) == [announced]
    assert (announced.status, announced.sent, announced.failed) == ("partially_failed", 29, 1)
    shown = (await client.get(f"/internal/apps/{app_id}/batches/{batch_id}")).json()["data"]
    assert (shown["status"], shown["sent"], shown["failed"], shown["pending"]) == (
        "partially_failed",
        29,
        1,
        0,
    )
    assert shown["completedAt"] == announced.completed_at


async def _shown(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    shown: dict[str, Any] = (await client.get(path)).json()["data"]
    return shown


async def test_a_campaign_is_decided_and_announced_once_as_a_campaign(
    dispatcher: tuple[httpx.AsyncClient, Adapters],
    topics: Topics,
    readers: tuple[StatusReader, StatusReader],
) -> None:
    client, adapters = dispatcher
    committed_reader, _ = readers
    app_id, campaign_id = random_ref("app"), random_ref("cmp")
    path = f"/internal/apps/{app_id}/batches/{campaign_id}"
    uids = [f"u{n}" for n in range(30)]
    assert isinstance(adapters.directory, FakeDirectory)
    adapters.directory.add(app_id, *(profile(uid) for uid in uids[:-1]))  # one unknown
    parts = [uids[:20], uids[20:]]
    registered = await client.put(
        path,
        json={
            "total": 30,
            "createdAt": 1,
            "channels": ["in_app"],
            "chunks": parts,
            "mode": "campaign",
        },
    )
    assert registered.status_code == 200, registered.text

    async def publish(index: int) -> None:
        command = send_command(
            app_id, campaign_id, parts[index], mode="campaign", chunk=index, chunks=2
        ).model_copy(update={"total": 30})
        for _ in range(2):  # a replayed chunk republishes its events: no second decision
            await kafka.publish(adapters.broker, topics.sends, command, campaign_id)

    await publish(0)
    await wait_until(
        lambda: _sent(client, path, 20), timeout_s=60, what="the first chunk's outcomes"
    )
    # One receiver's feed item is delivered before the last chunk: the tracker counts it.
    feed = f"/internal/apps/{app_id}/feed/u0"
    [item] = (await client.get(feed)).json()["data"]
    assert item["campaignId"] == campaign_id
    assert (await client.post(f"{feed}/{item['id']}/delivered")).status_code == 200
    await wait_until(lambda: _delivered(client, path), timeout_s=60, what="the delivery")
    await publish(1)

    [announced] = await wait_until(
        lambda: _found(committed_reader.completions(campaign_id)), timeout_s=60, what="decision"
    )
    await asyncio.sleep(1.0)
    assert committed_reader.completions(campaign_id) == [announced]
    assert (announced.mode, announced.send_id, announced.batch_id) == (
        "campaign",
        campaign_id,
        campaign_id,
    )
    counts = ("status", "total", "sent", "delivered", "failed", "pending")
    assert [getattr(announced, name) for name in counts] == ["partially_failed", 30, 29, 1, 1, 0]
    shown = await _shown(client, path)
    assert [shown[name] for name in counts] == ["partially_failed", 30, 29, 1, 1, 0]
    assert shown["completedAt"] == announced.completed_at
    receivers = (await client.get(f"{path}/receivers", params={"perPage": 100})).json()["data"]
    assert [r["uid"] for r in receivers] == uids
    assert [(r["uid"], r.get("code")) for r in receivers if r["status"] != "sent"] == [
        ("u29", "ERR_USER_NOT_FOUND")
    ]


async def _sent(client: httpx.AsyncClient, path: str, count: int) -> bool:
    shown = await _shown(client, path)
    return bool(shown["sent"] + shown["failed"] == count)


async def _delivered(client: httpx.AsyncClient, path: str) -> bool:
    return bool((await _shown(client, path))["delivered"] == 1)
