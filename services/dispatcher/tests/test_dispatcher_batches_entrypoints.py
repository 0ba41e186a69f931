"""The batches' entry points: the internal HTTP routes, and the tracker's subscriber on
FastStream's TestKafkaBroker (in-memory adapters; nothing needs Kafka or a database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.batches import consumers as batch_consumers
from clarion_dispatcher.batches import service
from clarion_dispatcher.batches.consumers import Handoff, tracked
from clarion_dispatcher.batches.domain import ChunkOutcome, batch_key
from clarion_dispatcher.batches.models import BatchRegistration, ReceiverOutcome
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    RecordingAnnouncer,
    RecordingPublisher,
)
from clarion_shared import kafka
from clarion_shared.contracts.status import AnyStatusEvent, ChunkDispatched, FeedItemSent
from clarion_shared.http import internal_headers
from clarion_shared.kafka import ConsumerGroups, Positioned
from clarion_shared.topics import Topics

APP = "app1"
SETTINGS = Settings(topic_prefix="unit.", group_id="dispatcher-test")
TOPICS = Topics(SETTINGS.topic_prefix)
PATH = f"/internal/apps/{APP}/batches"
REGISTRATION = {
    "total": 3,
    "createdAt": 1_700_000_000,
    "channels": ["in_app"],
    "chunks": [["a", "b"], ["c"]],
}


def adapters(batches: InMemoryBatches, announcer: RecordingAnnouncer) -> Adapters:
    return replace(
        Adapters.connect(SETTINGS),
        directory=FakeDirectory(),
        batches=batches,
        announcer=announcer,
        publisher=RecordingPublisher(),
    )


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = compose(SETTINGS, adapters(InMemoryBatches(), RecordingAnnouncer()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://dispatcher",
        headers=internal_headers(SETTINGS.internal_token),
    ) as client:
        yield client


async def test_a_batch_is_registered_once_and_read(api: httpx.AsyncClient) -> None:
    first = await api.put(f"{PATH}/bat_1", json=REGISTRATION)
    again = await api.put(f"{PATH}/bat_1", json={**REGISTRATION, "createdAt": 5})

    assert first.status_code == 200, first.text
    assert again.json() == first.json()
    assert first.json()["data"] == {
        "batchId": "bat_1",
        "status": "queued",
        "total": 3,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "pending": 3,
        "createdAt": 1_700_000_000,
        "completedAt": None,
    }
    assert (await api.get(f"{PATH}/bat_1")).json() == first.json()
    page = await api.get(f"{PATH}/bat_1/receivers", params={"perPage": 2, "page": 2})
    assert page.json() == {
        "data": [{"uid": "c", "status": "pending"}],
        "meta": {
            "pagination": {
                "total": 3,
                "count": 1,
                "per_page": 2,
                "current_page": 2,
                "total_pages": 2,
            }
        },
    }


async def test_another_apps_batch_is_not_found(api: httpx.AsyncClient) -> None:
    await api.put(f"{PATH}/bat_1", json=REGISTRATION)
    for path in (
        "/internal/apps/app2/batches/bat_1",
        "/internal/apps/app2/batches/bat_1/receivers",
    ):
        response = await api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ERR_NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {**REGISTRATION, "total": 4},
        {**REGISTRATION, "chunks": [["a", "b"], ["b"]]},
        {**REGISTRATION, "channels": ["fax"]},
        {**REGISTRATION, "chunks": []},
    ],
)
async def test_an_inconsistent_registration_is_400(
    api: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await api.put(f"{PATH}/bat_1", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert (await api.get(f"{PATH}/bat_1")).status_code == 404


async def test_a_bad_receivers_query_is_400(api: httpx.AsyncClient) -> None:
    await api.put(f"{PATH}/bat_1", json=REGISTRATION)
    response = await api.get(f"{PATH}/bat_1/receivers", params={"status": "queued"})
    assert response.status_code == 400


def chunk_dispatched(chunk: int, sent: int) -> ChunkDispatched:
    return ChunkDispatched(
        event_id=f"e{chunk}",
        app_id=APP,
        send_id="bat_1",
        mode="batch",
        occurred_at=1,
        chunk=chunk,
        chunks=1,
        total=sent,
        sent=sent,
        failed=0,
    )


async def test_the_tracker_consumes_the_status_topic_and_announces() -> None:
    batches, announcer = InMemoryBatches(), RecordingAnnouncer()
    wired = adapters(batches, announcer)
    compose(SETTINGS, wired)
    dead: list[bytes] = []

    async def on_dead(msg: KafkaMessage) -> None:
        dead.append(msg.body)

    wired.broker.subscriber(f"{TOPICS.status}.dlq")(on_dead)
    await service.register_batch(
        APP,
        "bat_1",
        BatchRegistration(total=2, created_at=1, channels=["in_app"], chunks=[["a", "b"]]),
        batches=batches,
    )
    await batches.record(
        [
            ChunkOutcome(
                app_id=APP,
                batch_id="bat_1",
                chunk=0,
                chunks=1,
                total=2,
                created_at=1,
                channels=["in_app"],
                receivers=[ReceiverOutcome(uid=uid, status="sent") for uid in ("a", "b")],
            )
        ]
    )

    async with TestKafkaBroker(wired.broker) as broker:
        # Not an event the tracker acts on, and not even JSON: skipped, not dead-lettered.
        await broker.publish(b"not json", TOPICS.status, key=b"x")
        await kafka.publish(broker, TOPICS.status, chunk_dispatched(0, 2), key="bat_1")

    [completed] = announcer.announced
    assert (completed.batch_id, completed.status, completed.sent) == ("bat_1", "completed", 2)
    assert batches.batches[batch_key(APP, "bat_1")].final
    assert dead == []


def test_the_tracker_parses_only_what_it_acts_on() -> None:
    assert tracked(chunk_dispatched(0, 1).to_bytes())
    sent = FeedItemSent(
        event_id="e", app_id=APP, send_id="s", mode="batch", occurred_at=1, feed_item={}
    )
    assert not tracked(sent.to_bytes())


class RecordingGroups(ConsumerGroups):
    def __init__(self) -> None:
        super().__init__(KafkaBroker(), "dispatcher")
        self.options: dict[str, Any] = {}

    def consume_positioned_batches(
        self, topic: str, adapter: Any, handle_many: Any, **options: Any
    ) -> None:
        self.options = {"topic": topic, **options}


def test_the_tracker_reads_committed_records_of_the_status_topic() -> None:
    groups = RecordingGroups()
    batch_consumers.register(
        groups, TOPICS, batches=InMemoryBatches(), announcer=RecordingAnnouncer()
    )
    assert groups.options["topic"] == TOPICS.status
    # Its own aborted attempts, never committed, are never seen again.
    assert groups.options["isolation_level"] == "read_committed"
    assert isinstance(groups.options["listener"], Handoff)
    assert groups.options["wanted"] is tracked


async def test_a_revocation_waits_for_the_fetch_in_hand_and_leaves_the_rest() -> None:
    handoff = Handoff()
    event = chunk_dispatched(0, 1)
    events = [Positioned[AnyStatusEvent](event, "t", p, 7) for p in (0, 1)]

    async with handoff.holding(events) as owned:
        revoking = asyncio.create_task(handoff.on_partitions_revoked([TopicPartition("t", 1)]))
        await asyncio.sleep(0.01)
        assert not revoking.done()  # the fetch in hand (and its transaction) ends first
        assert len(owned) == 2
    await revoking

    async with handoff.holding(events) as owned:
        assert [e.partition for e in owned] == [0]  # left to the partition's next owner
    await handoff.on_partitions_assigned([TopicPartition("t", 1)])
    async with handoff.holding(events) as owned:
        assert len(owned) == 2
