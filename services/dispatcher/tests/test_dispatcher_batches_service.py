"""Batches through their use cases: registration, the fan-out's outcomes, the tracker's
one decision and its one announcement, whatever is redelivered or republished."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clarion_dispatcher.batches import service
from clarion_dispatcher.batches.domain import BatchNotFound
from clarion_dispatcher.batches.models import Batch, BatchChunk
from clarion_dispatcher.batches.service import ChunkNotRecordedYet
from clarion_dispatcher.testing import (
    InMemoryBatches,
    RecordingAnnouncer,
    profile,
    send_command,
)
from clarion_dispatcher.testing.world import BatchWorld
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    ChunkDispatched,
    FeedItemDelivered,
)
from clarion_shared.kafka import Positioned
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


def chunk_dispatched(events: list[Positioned[AnyStatusEvent]]) -> Positioned[AnyStatusEvent]:
    [summary] = [e for e in events if isinstance(e.value, ChunkDispatched)]
    return summary


async def test_a_registered_batch_is_queued_with_every_receiver_pending(world: BatchWorld) -> None:
    await world.register("bat_1", ["a", "b"], ["c"])

    shown = await service.get_batch(APP, "bat_1", batches=world.batches)
    assert (shown.status, shown.total, shown.pending, shown.sent, shown.completed_at) == (
        "queued",
        3,
        3,
        0,
        None,
    )
    receivers, total = await service.list_receivers(
        APP, "bat_1", None, 1, 20, batches=world.batches
    )
    assert ([(r.uid, r.status) for r in receivers], total) == (
        [("a", "pending"), ("b", "pending"), ("c", "pending")],
        3,
    )
    with pytest.raises(BatchNotFound):
        await service.get_batch("other-app", "bat_1", batches=world.batches)
    with pytest.raises(BatchNotFound):
        await service.list_receivers("other-app", "bat_1", None, 1, 20, batches=world.batches)


async def test_the_fan_out_records_outcomes_once(world: BatchWorld) -> None:
    first, _ = await world.register("bat_1", ["a", "ghost"], ["c"])
    await world.dispatch(first)
    world.directory.add(APP, profile("ghost"))  # exists now: a replay must not say so
    await world.dispatch(first)

    shown = await service.get_batch(APP, "bat_1", batches=world.batches)
    assert (shown.status, shown.sent, shown.failed, shown.pending) == ("dispatching", 1, 1, 1)
    failed, _ = await service.list_receivers(APP, "bat_1", "failed", 1, 20, batches=world.batches)
    assert [(r.uid, r.code) for r in failed] == [("ghost", "ERR_USER_NOT_FOUND")]


async def test_the_last_chunk_decides_and_announces_once_with_its_offsets(
    world: BatchWorld,
) -> None:
    first, second = await world.register("bat_1", ["a", "b"], ["c"])
    await world.track(await world.dispatch(first))
    assert world.announcer.committed == []

    events = await world.dispatch(second)
    await world.track(events)

    [transaction] = world.announcer.committed
    [completed] = transaction.events
    assert (completed.batch_id, completed.status, completed.sent, completed.total) == (
        "bat_1",
        "completed",
        3,
        3,
    )
    assert transaction.offsets == {(STATUS, 0): events[-1].offset + 1}
    shown = await service.get_batch(APP, "bat_1", batches=world.batches)
    assert (shown.status, shown.completed_at, shown.pending) == ("completed", NOW + 9, 0)


async def test_a_replayed_chunk_republishes_its_event_but_announces_nothing(
    world: BatchWorld,
) -> None:
    [only] = await world.register("bat_1", ["a", "b"])
    await world.track(await world.dispatch(only))
    replayed = await world.dispatch(only)  # the fan-out redelivered after a crash
    republished = chunk_dispatched(replayed)
    # The process restarted: its announcer remembers nothing.
    world.announcer = RecordingAnnouncer(committed=world.announcer.committed)

    await world.track(replayed)

    published = [e.message for e in world.publisher.on(STATUS)]
    first = next(e for e in published if isinstance(e, ChunkDispatched))
    assert republished.value.event_id == first.event_id
    assert len(world.announcer.announced) == 1
    assert world.announcer.attempts == 0


async def test_a_transaction_that_did_not_commit_is_announced_by_the_redelivery(
    world: BatchWorld,
) -> None:
    [only] = await world.register("bat_1", ["a", "b"])
    events = await world.dispatch(only)
    world.announcer.fail_next = 1

    with pytest.raises(Exception, match="did not commit"):
        await world.track(events)
    assert world.announcer.committed == []
    # The deciding record comes back (its offset was not committed); a copy of it
    # (another offset) comes too, and decides nothing.
    await world.track([world.read(chunk_dispatched(events).value)])
    assert world.announcer.committed == []
    await world.track(events)

    [completed] = world.announcer.announced
    assert completed.status == "completed"
    batch = await world.batches.get(APP, "bat_1")
    assert batch is not None
    assert batch.decided_by == f"{STATUS}:0:{events[-1].offset}"


class InterleavedBatches(InMemoryBatches):
    """Reads that let other tasks run, as a database's do: two trackers both see the
    batch undecided, and both try to decide it."""

    async def get(self, app_id: str, batch_id: str) -> Batch | None:
        await asyncio.sleep(0)
        return await super().get(app_id, batch_id)

    async def chunks(self, batch: Batch, *, receivers: bool = True) -> list[BatchChunk]:
        await asyncio.sleep(0)
        return await super().chunks(batch, receivers=receivers)


async def test_two_deciders_at_once_announce_once(world: BatchWorld) -> None:
    world.batches = InterleavedBatches()
    first, second = await world.register("bat_1", ["a"], ["b"])
    events_first = await world.dispatch(first)
    events_second = await world.dispatch(second)
    # Another instance: an announcer of its own, the same topic.
    other = BatchWorld(
        batches=world.batches, announcer=RecordingAnnouncer(committed=world.announcer.committed)
    )
    finishes: list[bool] = []
    finish = world.batches.finish

    async def counted(*args: Any) -> bool:
        finishes.append(await finish(*args))
        return finishes[-1]

    world.batches.finish = counted  # type: ignore[method-assign,assignment]

    await asyncio.gather(
        world.track([chunk_dispatched(events_first)]),
        other.track([chunk_dispatched(events_second)]),
    )

    assert sorted(finishes) == [False, True]  # both tried, one decided
    assert len(world.announcer.announced) == 1


@pytest.mark.parametrize(
    ("receivers", "status"), [(["a", "ghost"], "partially_failed"), (["ghost", "nobody"], "failed")]
)
async def test_failed_receivers_decide_the_status(
    world: BatchWorld, receivers: list[str], status: str
) -> None:
    [only] = await world.register("bat_1", receivers)
    await world.track(await world.dispatch(only))
    [completed] = world.announcer.announced
    assert completed.status == status
    assert completed.failed == receivers.count("ghost") + receivers.count("nobody")


async def test_a_batch_waits_for_deliveries_of_other_channels(world: BatchWorld) -> None:
    [only] = await world.register("bat_1", ["a", "b"], channels=("in_app", "email"))
    await world.track(await world.dispatch(only))

    assert world.announcer.committed == []
    shown = await service.get_batch(APP, "bat_1", batches=world.batches)
    assert (shown.status, shown.pending, shown.sent) == ("dispatching", 2, 0)


def delivered(uid: str, batch_id: str = "bat_1") -> FeedItemDelivered:
    item: JsonObject = {"receiver": uid, "batchId": batch_id}
    return FeedItemDelivered(
        event_id=f"d-{uid}",
        app_id=APP,
        send_id=batch_id,
        mode="batch",
        occurred_at=NOW + 5,
        feed_item=item,
    )


async def test_delivered_items_are_counted_and_in_the_announcement(world: BatchWorld) -> None:
    first, second = await world.register("bat_1", ["a", "b"], ["c"])
    await world.track(await world.dispatch(first))
    await world.track([world.read(delivered("a")), world.read(delivered("a"))])
    assert (await service.get_batch(APP, "bat_1", batches=world.batches)).delivered == 1

    events = await world.dispatch(second)
    await world.track([world.read(delivered("c")), *events])

    [completed] = world.announcer.announced
    assert completed.delivered == 2


async def test_a_delivery_before_its_chunk_is_recorded_stays(world: BatchWorld) -> None:
    """Feed items and outcomes are written at once: a delivery may come first."""
    [only] = await world.register("bat_1", ["a", "b"])
    await world.track([world.read(delivered("a"))])
    await world.track(await world.dispatch(only))
    [completed] = world.announcer.announced
    assert completed.delivered == 1


async def test_a_delivery_before_its_unregistered_chunk_exists_comes_again(
    world: BatchWorld,
) -> None:
    first, second = [
        send_command(APP, "ext_1", part, mode="batch", chunk=i, chunks=2)
        for i, part in enumerate([["a"], ["b"]])
    ]
    await world.dispatch(first)
    with pytest.raises(ChunkNotRecordedYet):
        await world.track([world.read(delivered("b", "ext_1"))])
    await world.dispatch(second)
    # Every chunk seen: a uid in none of them is not this batch's, and is let go.
    await world.track([world.read(delivered("b", "ext_1")), world.read(delivered("x", "ext_1"))])
    assert (await service.get_batch(APP, "ext_1", batches=world.batches)).delivered == 1


async def test_a_batch_nobody_registered_is_tracked_from_its_commands(world: BatchWorld) -> None:
    chunks = [
        send_command(APP, "ext_1", part, mode="batch", chunk=i, chunks=2).model_copy(
            update={"total": 3}
        )
        for i, part in enumerate([["a", "b"], ["c"]])
    ]
    await world.track(await world.dispatch(chunks[1]))
    shown = await service.get_batch(APP, "ext_1", batches=world.batches)
    assert (shown.status, shown.total, shown.sent, shown.pending) == ("dispatching", 3, 1, 2)

    await world.track(await world.dispatch(chunks[0]))
    [completed] = world.announcer.announced
    assert (completed.batch_id, completed.sent) == ("ext_1", 3)


async def test_receivers_whose_records_were_refused_are_recorded_failed(world: BatchWorld) -> None:
    [only] = await world.register("bat_1", ["a", "b"])
    world.notifications.refuses = {"b"}
    await world.track(await world.dispatch(only))

    failed, _ = await service.list_receivers(APP, "bat_1", "failed", 1, 20, batches=world.batches)
    assert [(r.uid, r.code) for r in failed] == [("b", "ERR_STORE_FAILED")]
    [completed] = world.announcer.announced
    assert completed.status == "partially_failed"


async def test_receivers_are_paged_in_send_order(world: BatchWorld) -> None:
    uids = [f"u{n:02}" for n in range(45)]
    await world.register("bat_1", uids[:20], uids[20:])
    page, total = await service.list_receivers(APP, "bat_1", None, 3, 20, batches=world.batches)
    assert ([r.uid for r in page], total) == (uids[40:], 45)
    page, total = await service.list_receivers(APP, "bat_1", "sent", 1, 20, batches=world.batches)
    assert (page, total) == ([], 0)


async def test_registering_again_is_a_no_op(world: BatchWorld) -> None:
    [only] = await world.register("bat_1", ["a", "b"])
    await world.dispatch(only)
    await world.register("bat_1", ["a", "b"])
    shown = await service.get_batch(APP, "bat_1", batches=world.batches)
    assert (shown.status, shown.sent) == ("dispatching", 2)


async def test_the_completion_waits_until_every_chunks_event_is_read(world: BatchWorld) -> None:
    """Both chunks recorded, only the first one's events read: not decided yet, so the
    completion, published once the last event is read, follows every chunk's on the
    send's partition (a reader of the topic has every receiver's state by then)."""
    first, second = await world.register("bat_1", ["a", "b"], ["c"])
    first_events = await world.dispatch(first)
    second_events = await world.dispatch(second)  # recorded before its events are read

    await world.track(first_events)
    assert world.announcer.announced == []
    shown = await service.get_batch(APP, "bat_1", batches=world.batches)
    assert (shown.status, shown.pending) == ("dispatching", 0)

    await world.track(second_events)
    [completed] = world.announcer.announced
    assert (completed.status, completed.sent) == ("completed", 3)
