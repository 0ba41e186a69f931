"""The dispatcher over the real broker and database (Kafka + FerretDB by default).

The real user-directory answers the uid lookups. Both services run as
``build(settings)`` with their own lifespans, their own consumer groups (started at the
end of their topics, so they read only this module's records) and one database
of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import random_ref, start_new_groups_at_end, wait_until
from clarion_directory.app import Settings as DirectorySettings
from clarion_directory.app import build as build_directory
from clarion_dispatcher.app import Settings, build
from clarion_dispatcher.batches.mongo import MongoBatches
from clarion_dispatcher.fanout import service
from clarion_dispatcher.fanout.kafka import KafkaDirectoryClient
from clarion_dispatcher.feed.mongo import MongoFeed
from clarion_dispatcher.notifications.mongo import MongoNotifications
from clarion_dispatcher.publisher import BrokerPublisher
from clarion_dispatcher.testing import send_command
from clarion_shared import kafka
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import ReplyTo
from clarion_shared.contracts.status import ChunkDispatched, status_event_adapter
from clarion_shared.http import internal_headers
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration

APP = random_ref("app")


async def _assign_at_end(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of ``topic`` and fix positions at its end, now."""
    # end_offsets loads the topic's metadata, which partitions_for_topic reads.
    await consumer.end_offsets([TopicPartition(topic, 0)])
    partitions = consumer.partitions_for_topic(topic)
    assert partitions, f"topic {topic} does not exist"
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    return tps


@dataclass
class TopicTail:
    """Everything published to a topic after ``start``."""

    bootstrap: str
    topic: str
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            fetch_max_wait_ms=10,
            isolation_level="read_committed",
        )
        await self._consumer.start()
        await _assign_at_end(self._consumer, self.topic)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                # The hook first: a test that waits for ``records`` finds what the hook
                # did for them done, not cut short by stopping the tail.
                await self.on_records(records)
                self.records.extend(records)

    async def on_records(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        return None

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()


@dataclass
class Harness:
    settings: Settings
    topics: Topics
    client: httpx.AsyncClient
    db: AsyncDatabase[dict[str, Any]]
    broker: KafkaBroker
    directory: httpx.AsyncClient
    lookups: TopicTail
    realtime_lookups: TopicTail
    status: TopicTail

    async def add_users(self, app_id: str, uids: list[str]) -> None:
        """Create users in the real directory, through its internal API."""
        for start in range(0, len(uids), 1000):
            users = [{"uid": uid, "name": uid} for uid in uids[start : start + 1000]]
            response = await self.directory.post(
                f"/internal/apps/{app_id}/users/import", json={"users": users}
            )
            assert response.status_code == 200, response.text

    def lookups_of(self, app_id: str, *, realtime: bool = False) -> list[LookupUsers]:
        tail = self.realtime_lookups if realtime else self.lookups
        lookups = [LookupUsers.model_validate_json(r.value or b"") for r in tail.records]
        return [lookup for lookup in lookups if lookup.app_id == app_id]

    def chunk_events(self, send_id: str) -> list[ChunkDispatched]:
        events = [status_event_adapter.validate_json(r.value or b"") for r in self.status.records]
        return [e for e in events if isinstance(e, ChunkDispatched) and e.send_id == send_id]

    async def wait_chunks(self, send_id: str, count: int, timeout_s: float = 60) -> None:
        async def done() -> bool:
            return len(self.chunk_events(send_id)) >= count

        await wait_until(done, timeout_s=timeout_s, what=f"{count} chunk(s) of {send_id}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def harness(
    infra_settings: InfraSettings,
    topics: Topics,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[Harness]:
    bootstrap = infra_settings.kafka_bootstrap_servers
    db_name = random_ref("dispatcher_it").replace("-", "_")
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=db_name,
        group_id=random_ref("dispatcher-it"),
        directory_timeout_s=10,
    )
    directory_settings = DirectorySettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_url=infra_settings.mongodb_url,
        topic_prefix=infra_settings.topic_prefix,
        db_name=db_name,
        group_id=random_ref("directory-it"),
    )
    # Both services' new groups start after what earlier tests sent.
    await start_new_groups_at_end(
        bootstrap,
        [
            (f"{settings.group_id}.{topic}", topic)
            for topic in (topics.sends, topics.sends_realtime, topics.status)
        ]
        + [
            (f"{directory_settings.group_id}.{topic}", topic)
            for topic in (
                topics.directory_lookups,
                topics.directory_lookups_realtime,
                topics.users_events,
            )
        ],
    )
    lookups = TopicTail(bootstrap, topics.directory_lookups)
    realtime_lookups = TopicTail(bootstrap, topics.directory_lookups_realtime)
    status = TopicTail(bootstrap, topics.status)
    for tail in (lookups, realtime_lookups, status):
        await tail.start()
    broker = kafka.make_broker(infra_settings, "dispatcher-it-client")
    await broker.start()
    directory_app = build_directory(directory_settings)
    app = build(settings)
    try:
        async with (
            directory_app.router.lifespan_context(directory_app),
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=directory_app),
                base_url="http://u",
                headers=internal_headers(directory_settings.internal_token),
            ) as directory,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://d",
                headers=internal_headers(settings.internal_token),
            ) as client,
        ):
            yield Harness(
                settings,
                topics,
                client,
                mongo_client[db_name],
                broker,
                directory,
                lookups,
                realtime_lookups,
                status,
            )
    finally:
        await broker.stop()
        for tail in (lookups, realtime_lookups, status):
            await tail.stop()
        await mongo_client.drop_database(db_name)


async def test_readiness_checks_pass(harness: Harness) -> None:
    # Readiness is a state reached, not a first answer: on a loaded machine one ping can
    # miss its 2 s deadline (CI saw mongo and kafka both false once), so poll for it.
    async def ready() -> httpx.Response | None:
        response = await harness.client.get("/readyz")
        return response if response.status_code == 200 else None

    response = await wait_until(ready, timeout_s=30.0, interval_s=0.5, what="/readyz 200")
    assert response.json()["checks"] == {
        "mongo": True,
        "kafka": True,
        "directory_replies": True,
        "user_changes": True,
        "batch_announcer": True,
        "kafka_groups": True,
    }


async def test_the_same_send_twice_gives_one_record_and_feed_item_per_receiver_and_channel(
    harness: Harness,
) -> None:
    await harness.add_users(APP, ["alice", "bob", "carol"])
    send_id = random_ref("batch")
    receivers = ["alice", "bob", "ghost", "carol"]
    command = send_command(
        APP, send_id, receivers, mode="batch", channels=("in_app", "email"), tag="it"
    )

    await kafka.publish(harness.broker, harness.topics.sends, command, key=send_id)
    await harness.wait_chunks(send_id, 1)
    feed_path = f"/internal/apps/{APP}/feed/alice"
    (alice_item,) = (await harness.client.get(feed_path)).json()["data"]
    read = await harness.client.post(f"{feed_path}/{alice_item['id']}/read")
    assert read.status_code == 200

    await kafka.publish(harness.broker, harness.topics.sends, command, key=send_id)
    await harness.wait_chunks(send_id, 2)

    records = [d async for d in harness.db["notifications"].find({"send_id": send_id})]
    items = [d async for d in harness.db["feed_items"].find({"batch_id": send_id})]
    assert len(records) == len(receivers) * 2
    assert len({(d["uid"], d["channel_type"]) for d in records}) == len(records)
    assert sorted(d["receiver"] for d in items) == ["alice", "bob", "carol"]
    stored_alice = next(d for d in items if d["receiver"] == "alice")
    assert stored_alice["read"] is True  # the replay did not reset it
    first, second = harness.chunk_events(send_id)
    assert first.event_id == second.event_id
    assert (first.sent, first.failed) == (3, 1)

    notification = await harness.client.get(f"/internal/apps/{APP}/notifications/{send_id}")
    body = notification.json()["data"]
    assert [r["uid"] for r in body["receivers"]] == receivers
    ghost = body["receivers"][2]["channels"]
    assert {c["code"] for c in ghost} == {"ERR_USER_NOT_FOUND"}


async def test_a_realtime_reply_arrives_after_the_feed_items_exist(harness: Harness) -> None:
    await harness.add_users(APP, ["alice", "bob"])
    feed = harness.db["feed_items"]
    send_id = random_ref("ntf")
    request_id = random_ref("req")
    seen_items: list[int] = []

    class Replies(TopicTail):
        """The waiting gateway: on the reply, it looks for the feed items at once."""

        async def on_records(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
            if any(r.key == request_id.encode() for r in records):
                seen_items.append(await feed.count_documents({"notification_id": send_id}))

    replies_topic = harness.topics.replies
    replies = Replies(harness.settings.kafka_bootstrap_servers, replies_topic)
    await replies.start()
    try:
        command = send_command(
            APP,
            send_id,
            ["bob", "nobody", "alice"],
            reply_to=ReplyTo(topic=replies_topic, request_id=request_id),
        )
        started = time.perf_counter()
        await kafka.publish(harness.broker, harness.topics.sends_realtime, command, key=send_id)

        async def answered() -> list[ConsumerRecord[bytes, bytes]]:
            return [r for r in replies.records if r.key == request_id.encode()]

        (record,) = await wait_until(answered, timeout_s=30, what="the realtime reply")
        elapsed_ms = (time.perf_counter() - started) * 1000
    finally:
        await replies.stop()

    result = SendResult.model_validate_json(record.value or b"")
    assert result.request_id == request_id
    assert result.send_id == send_id
    assert [(r.uid, r.status, r.code) for r in result.receivers] == [
        ("bob", "sent", None),
        ("nobody", "failed", "ERR_USER_NOT_FOUND"),
        ("alice", "sent", None),
    ]
    assert seen_items == [2]
    # Its uid lookup took the realtime lane.
    assert [sorted(lookup.uids) for lookup in harness.lookups_of(APP, realtime=True)] == [
        ["alice", "bob", "nobody"]
    ]
    print(f"\nrealtime send of 3 receivers answered in {elapsed_ms:.0f} ms")


async def test_lookups_go_in_chunks_of_at_most_a_thousand(harness: Harness) -> None:
    app = random_ref("app")
    uids = [f"u{n}" for n in range(2500)]
    await harness.add_users(app, uids[:2400])
    send_id = random_ref("batch")

    await kafka.publish(
        harness.broker,
        harness.topics.sends,
        send_command(app, send_id, uids, mode="batch"),
        key=send_id,
    )
    await harness.wait_chunks(send_id, 1)

    sizes = sorted(len(lookup.uids) for lookup in harness.lookups_of(app))
    assert sizes == [500, 1000, 1000]
    assert harness.lookups_of(app, realtime=True) == []
    (summary,) = harness.chunk_events(send_id)
    assert (summary.sent, summary.failed) == (2400, 100)
    assert await harness.db["feed_items"].count_documents({"batch_id": send_id}) == 2400


async def test_measure_fan_out_of_one_thousand_in_app_receivers(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a timing assertion: prints what one 1,000-receiver chunk costs here."""
    app = random_ref("app")
    uids = [f"m{n}" for n in range(1000)]
    await harness.add_users(app, uids)
    directory = KafkaDirectoryClient(
        harness.broker,
        harness.topics,
        bootstrap_servers=harness.settings.kafka_bootstrap_servers,
        timeout_s=10,
    )
    await directory.start()
    try:
        use_case_runs: list[float] = []
        for _ in range(3):
            command = send_command(app, random_ref("batch"), uids, mode="batch")
            outcome = await service.dispatch_chunk(
                command,
                directory=directory,
                notifications=MongoNotifications(harness.db),
                feed=MongoFeed(harness.db),
                batches=MongoBatches(harness.db),
                publisher=BrokerPublisher(harness.broker),
                topics=harness.topics,
            )
            assert outcome.plan.sent == 1000
            use_case_runs.append(outcome.duration_s)
    finally:
        await directory.stop()

    # Through the service: published to clarion.sends until its ChunkDispatched is seen.
    send_id = random_ref("batch")
    started = time.perf_counter()
    await kafka.publish(
        harness.broker,
        harness.topics.sends,
        send_command(app, send_id, uids, mode="batch"),
        key=send_id,
    )
    await harness.wait_chunks(send_id, 1)
    through_kafka = time.perf_counter() - started
    assert await harness.db["feed_items"].count_documents({"batch_id": send_id}) == 1000

    report: Callable[[str], None] = print
    with capsys.disabled():
        report(
            "\nfan-out of one 1,000-receiver in_app chunk on FerretDB: use case "
            + ", ".join(f"{s * 1000:.0f} ms" for s in use_case_runs)
            + f"; clarion.sends -> ChunkDispatched {through_kafka * 1000:.0f} ms"
        )
