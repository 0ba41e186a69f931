"""Campaigns tracked as batches (in-memory adapters): a campaign's chunks are recorded,
its events tracked, and its one ``BatchCompleted`` says ``mode="campaign"``; a batch is
unchanged, a document written before modes reads as a batch, and an id registered with
the other mode is refused (409)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.batches import domain, service
from clarion_dispatcher.batches.domain import BatchModeConflict
from clarion_dispatcher.batches.models import Batch, BatchMode, BatchRegistration
from clarion_dispatcher.notifications.domain import event_id
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    RecordingAnnouncer,
    RecordingPublisher,
    profile,
    send_command,
)
from clarion_dispatcher.testing.world import BatchWorld
from clarion_shared.contracts.status import (
    ChunkDispatched,
    FeedItemDelivered,
)
from clarion_shared.errors import Conflict
from clarion_shared.http import internal_headers
from clarion_shared.topics import Topics

APP = "app1"
TOPICS = Topics("unit.")
STATUS = TOPICS.status
NOW = 1_700_000_000


@pytest.fixture
def world() -> BatchWorld:
    w = BatchWorld()
    w.directory.add(APP, *(profile(uid) for uid in ("a", "b", "c", "d")))
    return w


async def test_a_campaign_is_decided_once_and_announced_as_a_campaign(world: BatchWorld) -> None:
    first, second = await world.register("cmp_1", ["a", "b"], ["c", "ghost"], mode="campaign")
    assert (await world.batches.get(APP, "cmp_1")) is not None
    events = await world.dispatch(first)
    assert {e.value.mode for e in events} == {"campaign"}
    await world.track(events)
    delivery = await world.deliver("a")
    assert [type(e.value) for e in delivery] == [FeedItemDelivered]
    assert delivery[0].value.mode == "campaign"
    await world.track(delivery)
    assert world.announcer.committed == []

    last = await world.dispatch(second)
    await world.track(last)
    replayed = await world.dispatch(second)  # the fan-out redelivered: a copy, no decision
    world.announcer = RecordingAnnouncer(committed=world.announcer.committed)  # restarted
    await world.track(replayed)

    [completed] = world.announcer.announced
    assert (completed.mode, completed.send_id, completed.batch_id) == ("campaign", "cmp_1", "cmp_1")
    assert completed.event_id == event_id(domain.batch_key(APP, "cmp_1"), "batch_completed")
    assert (
        completed.status,
        completed.total,
        completed.sent,
        completed.delivered,
        completed.failed,
        completed.pending,
        completed.completed_at,
    ) == ("partially_failed", 4, 3, 1, 1, 0, NOW + 9)
    shown = await service.get_batch(APP, "cmp_1", batches=world.batches)
    assert (shown.batch_id, shown.status, shown.sent, shown.delivered, shown.failed) == (
        "cmp_1",
        "partially_failed",
        3,
        1,
        1,
    )
    receivers, total = await service.list_receivers(
        APP, "cmp_1", None, 1, 20, batches=world.batches
    )
    assert total == 4
    assert [(r.uid, r.status, r.code) for r in receivers] == [
        ("a", "sent", None),
        ("b", "sent", None),
        ("c", "sent", None),
        ("ghost", "failed", "ERR_USER_NOT_FOUND"),
    ]
    records = [r for r in world.notifications.records.values() if r.send_id == "cmp_1"]
    assert {(r.campaign_id, r.batch_id) for r in records} == {("cmp_1", None)}


@pytest.mark.parametrize("mode", [None, "batch"])
async def test_a_batch_is_announced_as_a_batch(world: BatchWorld, mode: BatchMode | None) -> None:
    [only] = await world.register("bat_1", ["a", "ghost"], mode=mode)
    await world.track(await world.dispatch(only))

    [completed] = world.announcer.announced
    assert (completed.mode, completed.batch_id, completed.status) == (
        "batch",
        "bat_1",
        "partially_failed",
    )
    assert completed.event_id == event_id(domain.batch_key(APP, "bat_1"), "batch_completed")
    stored = await world.batches.get(APP, "bat_1")
    assert stored is not None
    assert stored.mode == "batch"


async def test_a_campaign_nobody_registered_is_tracked_from_its_commands(world: BatchWorld) -> None:
    first, second = world.commands("cmp_1", ["a", "b"], ["c"], mode="campaign")
    await world.track(await world.dispatch(second))
    stored = await world.batches.get(APP, "cmp_1")
    assert stored is not None
    assert (stored.mode, stored.total, stored.chunks) == ("campaign", 3, 2)

    await world.track(await world.dispatch(first))
    [completed] = world.announcer.announced
    assert (completed.mode, completed.status, completed.sent) == ("campaign", "completed", 3)


async def test_realtime_events_are_not_tracked(world: BatchWorld) -> None:
    """A realtime send has no batch: its events are not even looked up."""

    class Counting(InMemoryBatches):
        gets = 0

        async def get(self, app_id: str, batch_id: str) -> Batch | None:
            self.gets += 1
            return await super().get(app_id, batch_id)

    world.batches = Counting()
    realtime = send_command(APP, "ntf_1", ["a", "b"], mode="realtime")
    events = await world.dispatch(realtime)
    assert any(isinstance(e.value, ChunkDispatched) for e in events)
    await world.track([*events, *(await world.deliver("a"))])

    assert (world.batches.gets, world.batches.batches, world.announcer.attempts) == (0, {}, 0)


@pytest.mark.parametrize(("first", "second"), [("batch", "campaign"), ("campaign", "batch")])
async def test_an_id_registered_with_the_other_mode_is_a_conflict(
    world: BatchWorld, first: BatchMode, second: BatchMode
) -> None:
    [only] = await world.register("x_1", ["a", "b"], mode=first)
    await world.dispatch(only)
    stored = await world.batches.get(APP, "x_1")
    assert stored is not None
    chunks = await world.batches.chunks(stored)

    with pytest.raises(BatchModeConflict) as refused:
        await world.register("x_1", ["a", "b"], ["c"], mode=second)

    assert isinstance(refused.value, Conflict)  # 409 ERR_CONFLICT by the common mapping
    # Nothing written: not the batch, not the chunk the other registration adds.
    assert await world.batches.get(APP, "x_1") == stored
    assert await world.batches.chunks(stored) == chunks
    await world.register("x_1", ["a", "b"], mode=first)  # the same mode: still a no-op


async def test_registering_as_a_batch_what_came_as_campaign_chunks_is_a_conflict(
    world: BatchWorld,
) -> None:
    [only] = world.commands("cmp_1", ["a"], mode="campaign")
    await world.dispatch(only)
    with pytest.raises(BatchModeConflict):
        await world.register("cmp_1", ["a"], mode="batch")
    await world.register("cmp_1", ["a"], mode="campaign")


async def test_a_document_written_before_modes_reads_and_completes_as_a_batch(
    world: BatchWorld,
) -> None:
    [only] = await world.register("bat_1", ["a", "b"])
    key = domain.batch_key(APP, "bat_1")
    stored = world.batches.batches[key].model_dump(exclude={"mode"})
    world.batches.batches[key] = Batch.model_validate(stored)  # as read from an old document
    assert "mode" not in stored
    assert world.batches.batches[key].mode == "batch"

    with pytest.raises(BatchModeConflict):
        await world.register("bat_1", ["a", "b"], mode="campaign")
    await world.track(await world.dispatch(only))
    [completed] = world.announcer.announced
    assert completed.mode == "batch"


def test_a_registration_carries_a_campaigns_mode_and_a_batch_is_sent_as_before() -> None:
    """What the gateway sends (its ``model_dump_json``): a batch's body is unchanged."""
    batch = BatchRegistration(total=1, created_at=NOW, channels=["in_app"], chunks=[["a"]])
    campaign = BatchRegistration.model_validate({**batch.model_dump(), "mode": "campaign"})

    assert "mode" not in batch.to_json()
    assert BatchRegistration.model_validate_json(batch.model_dump_json()).mode == "batch"
    assert campaign.to_json()["mode"] == "campaign"
    assert BatchRegistration.model_validate_json(campaign.model_dump_json()).mode == "campaign"


def test_only_batch_and_campaign_sends_are_tracked() -> None:
    assert [domain.tracked_mode(m) for m in ("batch", "campaign", "realtime")] == [
        "batch",
        "campaign",
        None,
    ]


# ------------------------------------------------------------- over HTTP

SETTINGS = Settings(topic_prefix="unit.", group_id="dispatcher-test")
PATH = f"/internal/apps/{APP}/batches"
REGISTRATION = {"total": 3, "createdAt": NOW, "channels": ["in_app"], "chunks": [["a", "b"], ["c"]]}


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    adapters = replace(
        Adapters.connect(SETTINGS),
        directory=FakeDirectory(),
        batches=InMemoryBatches(),
        announcer=RecordingAnnouncer(),
        publisher=RecordingPublisher(),
    )
    app = compose(SETTINGS, adapters)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://dispatcher",
        headers=internal_headers(SETTINGS.internal_token),
    ) as client:
        yield client


async def test_a_campaign_is_registered_and_read_at_its_id(api: httpx.AsyncClient) -> None:
    registered = await api.put(f"{PATH}/cmp_1", json={**REGISTRATION, "mode": "campaign"})
    assert registered.status_code == 200, registered.text
    assert registered.json()["data"]["batchId"] == "cmp_1"
    assert (await api.get(f"{PATH}/cmp_1")).json() == registered.json()
    page = (await api.get(f"{PATH}/cmp_1/receivers")).json()
    assert [(r["uid"], r["status"]) for r in page["data"]] == [
        ("a", "pending"),
        ("b", "pending"),
        ("c", "pending"),
    ]


@pytest.mark.parametrize(("first", "second"), [("batch", "campaign"), ("campaign", "batch")])
async def test_a_registration_of_the_other_mode_is_409(
    api: httpx.AsyncClient, first: str, second: str
) -> None:
    await api.put(f"{PATH}/x_1", json={**REGISTRATION, "mode": first})
    response = await api.put(f"{PATH}/x_1", json={**REGISTRATION, "mode": second})
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "ERR_CONFLICT"
    again = await api.put(f"{PATH}/x_1", json={**REGISTRATION, "mode": first})
    assert again.status_code == 200


async def test_a_registration_without_mode_is_a_batch_and_realtime_is_refused(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.put(f"{PATH}/bat_1", json=REGISTRATION)).status_code == 200
    same = await api.put(f"{PATH}/bat_1", json={**REGISTRATION, "mode": "batch"})
    assert same.status_code == 200
    realtime = await api.put(f"{PATH}/ntf_1", json={**REGISTRATION, "mode": "realtime"})
    assert realtime.status_code == 400
    assert (await api.get(f"{PATH}/ntf_1")).status_code == 404
