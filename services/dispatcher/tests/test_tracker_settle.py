"""The tracker settles batch and campaign receivers from the delivery workers' events
(in-memory adapters): a receiver pending on queued deliveries becomes ``sent`` or
``failed`` whatever the events' order, once, and the batch is decided by the record
that settled its last receiver; ``ReceiversSettled`` is announced with the offsets,
before the completion, and again by a fetch handled again."""

from __future__ import annotations

from typing import Any

import pytest

from clarion_dispatcher.batches import service
from clarion_dispatcher.batches.consumers import tracked
from clarion_dispatcher.batches.domain import batch_key, chunk_key
from clarion_dispatcher.batches.service import ChunkNotRecordedYet
from clarion_dispatcher.testing import CHANNEL_IDS, RecordingAnnouncer, profile, send_command
from clarion_dispatcher.testing.batches import delivery_outcome
from clarion_dispatcher.testing.world import BatchWorld
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType, SendMode
from clarion_shared.contracts.status import AnyStatusEvent, ChunkDispatched
from clarion_shared.topics import Topics

APP = "app1"
STATUS = Topics("unit.").status
NOW = 1_700_000_000
EMAIL_PUSH: tuple[ChannelType, ...] = ("email", "push")
IN_APP_EMAIL: tuple[ChannelType, ...] = ("in_app", "email")


@pytest.fixture
def world() -> BatchWorld:
    w = BatchWorld()
    w.directory.add(APP, *(profile(uid) for uid in ("a", "b", "c", "d")))
    return w


def sent(
    uid: str,
    channel: ChannelType,
    send_id: str = "bat_1",
    mode: SendMode = "batch",
    chunk: int | None = None,
) -> AnyStatusEvent:
    """What the channel's worker says once its provider accepted the delivery."""
    return outcome(uid, channel, send_id, mode, occurred_at=NOW + 20, chunk=chunk)


def failed(
    uid: str,
    channel: ChannelType,
    code: str = "ERR_PROVIDER_REJECTED",
    send_id: str = "bat_1",
    mode: SendMode = "batch",
) -> AnyStatusEvent:
    error = ErrorInfo(code=code, message=f"{channel} said {code}")
    return outcome(uid, channel, send_id, mode, error=error, occurred_at=NOW + 30)


def outcome(
    uid: str, channel: ChannelType, send_id: str, mode: SendMode, **more: Any
) -> AnyStatusEvent:
    return delivery_outcome(APP, send_id, uid, channel, CHANNEL_IDS[channel], mode=mode, **more)


async def states(world: BatchWorld, batch_id: str = "bat_1") -> list[tuple[str, str, str | None]]:
    receivers, _ = await service.list_receivers(APP, batch_id, None, 1, 100, batches=world.batches)
    return [(r.uid, r.status, r.code) for r in receivers]


async def counts(world: BatchWorld, batch_id: str = "bat_1") -> tuple[str, int, int, int]:
    shown = await service.get_batch(APP, batch_id, batches=world.batches)
    return shown.status, shown.sent, shown.failed, shown.pending


async def dispatched(world: BatchWorld, channels: tuple[ChannelType, ...] = IN_APP_EMAIL) -> None:
    """Register a one-chunk batch of a and b, fan it out, track its events."""
    [only] = await world.register("bat_1", ["a", "b"], channels=channels)
    await world.track(await world.dispatch(only))


# ---------------------------------------------------------------- settling


async def test_a_receiver_sent_in_app_is_sent_once_its_email_failed(world: BatchWorld) -> None:
    await dispatched(world)
    assert await counts(world) == ("dispatching", 0, 0, 2)

    await world.track([world.read(failed("a", "email"))])

    assert await states(world) == [("a", "sent", None), ("b", "pending", None)]
    assert await counts(world) == ("dispatching", 1, 0, 1)
    [settled] = world.announcer.settled
    assert (settled.send_id, settled.mode, settled.chunk) == ("bat_1", "batch", 0)
    assert [(r.uid, r.status, r.code) for r in settled.receivers] == [("a", "sent", None)]
    assert world.announcer.announced == []


async def test_a_receiver_fails_only_once_every_channel_failed_with_the_first_failure(
    world: BatchWorld,
) -> None:
    await dispatched(world, channels=EMAIL_PUSH)

    await world.track([world.read(failed("a", "push", "ERR_PUSH_TOKEN_INVALID"))])
    assert await states(world) == [("a", "pending", None), ("b", "pending", None)]
    assert (world.announcer.settled, world.announcer.committed) == ([], [])

    await world.track([world.read(failed("a", "email", "ERR_SMTP_REJECTED"))])
    assert await states(world) == [
        ("a", "failed", "ERR_PUSH_TOKEN_INVALID"),
        ("b", "pending", None),
    ]
    receivers, _ = await service.list_receivers(
        APP, "bat_1", "failed", 1, 20, batches=world.batches
    )
    assert [(r.uid, r.message) for r in receivers] == [("a", "push said ERR_PUSH_TOKEN_INVALID")]

    # One channel sent, the other failed: sent, whichever came first.
    await world.track([world.read(sent("b", "push")), world.read(failed("b", "email"))])
    [completed] = world.announcer.announced
    assert (completed.status, completed.sent, completed.failed, completed.pending) == (
        "partially_failed",
        1,
        1,
        0,
    )
    assert await counts(world) == ("partially_failed", 1, 1, 0)


@pytest.mark.parametrize("order", ["settled_first", "dispatched_first", "one_fetch"])
async def test_the_order_of_a_chunks_events_and_its_settlements_does_not_matter(
    world: BatchWorld, order: str
) -> None:
    """A worker's event may come before the chunk's ``ChunkDispatched`` is read (both
    are published once the chunk is recorded): settled, and decided once both are."""
    [only] = await world.register("bat_1", ["a", "b"], channels=IN_APP_EMAIL)
    chunk_events = await world.dispatch(only)
    settlements = [world.read(sent("a", "email")), world.read(failed("b", "email"))]

    if order == "settled_first":
        await world.track(settlements)
        assert world.announcer.announced == []
        await world.track(chunk_events)
    elif order == "dispatched_first":
        await world.track(chunk_events)
        await world.track(settlements)
    else:
        await world.track([*settlements, *chunk_events])

    [completed] = world.announcer.announced
    assert (completed.status, completed.sent, completed.failed) == ("completed", 2, 0)
    assert await states(world) == [("a", "sent", None), ("b", "sent", None)]
    assert {r.uid for e in world.announcer.settled for r in e.receivers} == {"a", "b"}


async def test_repeated_events_and_events_for_final_receivers_change_nothing(
    world: BatchWorld,
) -> None:
    await dispatched(world, channels=EMAIL_PUSH)
    await world.track(
        [world.read(sent("a", "email")), world.read(sent("a", "email"))]  # a job redelivered
    )
    writes = list(world.batches.settled_writes)
    assert await states(world) == [("a", "pending", None), ("b", "pending", None)]

    await world.track([world.read(sent("a", "email"))])
    assert world.batches.settled_writes == writes  # nothing to write

    await world.track([world.read(failed("a", "push"))])
    assert await states(world) == [("a", "sent", None), ("b", "pending", None)]
    writes = list(world.batches.settled_writes)
    # a is final: neither a late copy nor a contradicting outcome moves it.
    await world.track([world.read(failed("a", "push")), world.read(sent("a", "push"))])
    assert await states(world) == [("a", "sent", None), ("b", "pending", None)]
    assert world.batches.settled_writes == writes
    assert await counts(world) == ("dispatching", 1, 0, 1)


async def test_a_fetch_rewrites_each_changed_chunk_once(world: BatchWorld) -> None:
    first, second = await world.register("bat_1", ["a", "b"], ["c", "d"], channels=IN_APP_EMAIL)
    await world.track([*await world.dispatch(first), *await world.dispatch(second)])

    await world.track([world.read(sent(uid, "email")) for uid in ("a", "c", "b", "d", "a")])

    assert sorted(world.batches.settled_writes) == sorted(
        chunk_key(APP, "bat_1", n) for n in (0, 1)
    )
    [transaction] = world.announcer.committed
    assert [(e.chunk, [r.uid for r in e.receivers]) for e in transaction.settled] == [
        (0, ["a", "b"]),
        (1, ["c", "d"]),
    ]
    [completed] = transaction.events
    assert transaction.published[-1] == completed  # after the receivers settled
    assert (completed.status, completed.sent) == ("completed", 4)


async def test_events_of_other_sends_and_failures_at_the_fan_out_are_not_settlements(
    world: BatchWorld,
) -> None:
    await dispatched(world)
    realtime = sent("a", "email").model_copy(update={"mode": "realtime"})
    fan_out = failed("a", "email").model_copy(
        update={"channel_type": None, "channel_id": None, "notification_id": None}
    )

    await world.track([world.read(realtime), world.read(fan_out)])

    assert await states(world) == [("a", "pending", None), ("b", "pending", None)]
    assert world.announcer.committed == []


# ---------------------------------------------------------------- the decision


async def test_the_last_settlement_decides_and_a_copy_of_it_decides_nothing(
    world: BatchWorld,
) -> None:
    await dispatched(world)
    await world.track([world.read(sent("a", "email"))])
    deciding = world.read(failed("b", "email"))

    await world.track([deciding])

    [completed] = world.announcer.announced
    assert (completed.status, completed.sent, completed.pending) == ("completed", 2, 0)
    batch = await world.batches.get(APP, "bat_1")
    assert batch is not None
    assert batch.decided_by == f"{STATUS}:0:{deciding.offset}"
    assert batch.decided_event == deciding.value.event_id
    [_, transaction] = world.announcer.committed
    assert transaction.offsets == {(STATUS, 0): deciding.offset + 1}
    assert [type(e).__name__ for e in transaction.published] == [
        "ReceiversSettled",
        "BatchCompleted",
    ]

    # The worker redelivered its job: the same event at another offset, after a restart.
    world.announcer = RecordingAnnouncer(committed=world.announcer.committed)
    await world.track([world.read(deciding.value)])
    assert len(world.announcer.announced) == 1


async def test_a_fetch_whose_transaction_did_not_commit_says_it_all_again(
    world: BatchWorld,
) -> None:
    await dispatched(world)
    fetch = [world.read(sent("a", "email")), world.read(sent("b", "email"))]
    world.announcer.fail_next = 1

    with pytest.raises(Exception, match="did not commit"):
        await world.track(fetch)
    assert world.announcer.committed == []
    assert await counts(world) == ("completed", 2, 0, 0)  # the database moved on

    await world.track(fetch)  # its offsets were not committed: it comes again

    [transaction] = world.announcer.committed
    [settled] = transaction.settled
    assert [(r.uid, r.status) for r in settled.receivers] == [("a", "sent"), ("b", "sent")]
    [completed] = transaction.events
    assert completed.status == "completed"
    assert transaction.offsets == {(STATUS, 0): fetch[-1].offset + 1}


async def test_receivers_settled_is_said_again_with_the_same_id_by_a_redelivered_fetch(
    world: BatchWorld,
) -> None:
    """Committed, then handled again by a process that does not remember it (the
    offsets' commit was lost): the same event, for readers to drop."""
    await dispatched(world, channels=EMAIL_PUSH)
    fetch = [world.read(sent("a", "email")), world.read(failed("a", "push"))]
    await world.track(fetch)
    [first] = world.announcer.settled

    world.announcer = RecordingAnnouncer(committed=world.announcer.committed)
    await world.track(fetch)

    assert world.announcer.settled == [first, first]
    assert first.occurred_at == NOW + 30


async def test_a_campaigns_receivers_are_settled_as_a_campaigns(world: BatchWorld) -> None:
    [only] = await world.register("cmp_1", ["a", "b"], mode="campaign", channels=IN_APP_EMAIL)
    await world.track(await world.dispatch(only))

    await world.track(
        [world.read(sent(uid, "email", send_id="cmp_1", mode="campaign")) for uid in ("a", "b")]
    )

    [settled] = world.announcer.settled
    assert (settled.mode, settled.send_id) == ("campaign", "cmp_1")
    [completed] = world.announcer.announced
    assert (completed.mode, completed.status) == ("campaign", "completed")
    assert world.batches.batches[batch_key(APP, "cmp_1")].final


# ---------------------------------------------------------------- chunks read


async def test_events_that_name_their_chunk_read_only_that_chunk(world: BatchWorld) -> None:
    """A worker's events say the receiver's chunk: the tracker reads those chunks'
    receivers, not the batch's (10,000 receivers read per fetch otherwise)."""
    chunks = await world.register("bat_1", ["a"], ["b"], ["c", "d"], channels=IN_APP_EMAIL)
    await world.track([event for chunk in chunks for event in await world.dispatch(chunk)])
    world.batches.receiver_reads.clear()

    await world.track([world.read(sent("c", "email", chunk=2))])
    await world.track([world.read(sent("a", "email", chunk=0))])
    assert world.batches.receiver_reads == [2, 0]
    assert await states(world) == [
        ("a", "sent", None),
        ("b", "pending", None),
        ("c", "sent", None),
        ("d", "pending", None),
    ]

    # An event without its chunk (an older worker's) still settles: all are read.
    world.batches.receiver_reads.clear()  # (the listing above read pages)
    await world.track([world.read(sent("b", "email")), world.read(sent("d", "email", chunk=2))])
    assert world.batches.receiver_reads == [None]
    [completed] = world.announcer.announced
    assert (completed.status, completed.sent) == ("completed", 4)


async def test_a_named_chunk_not_registered_yet_comes_again(world: BatchWorld) -> None:
    first, second = [
        send_command(APP, "ext_2", part, mode="batch", chunk=i, chunks=2, channels=IN_APP_EMAIL)
        for i, part in enumerate([["a"], ["b"]])
    ]
    await world.track(await world.dispatch(first))
    early = world.read(sent("b", "email", send_id="ext_2", chunk=1))
    with pytest.raises(ChunkNotRecordedYet):
        await world.track([early])
    await world.track(await world.dispatch(second))
    await world.track([early, world.read(sent("a", "email", send_id="ext_2", chunk=0))])
    assert await counts(world, "ext_2") == ("completed", 2, 0, 0)


# ---------------------------------------------------------------- not recorded yet


async def test_a_settlement_for_a_chunk_not_recorded_comes_again(world: BatchWorld) -> None:
    first, second = await world.register("bat_1", ["a"], ["b"], channels=IN_APP_EMAIL)
    await world.track(await world.dispatch(first))
    early = world.read(sent("b", "email"))

    with pytest.raises(ChunkNotRecordedYet):
        await world.track([early])
    await world.track(await world.dispatch(second))
    await world.track([early, world.read(sent("a", "email"))])

    [completed] = world.announcer.announced
    assert (completed.status, completed.sent) == ("completed", 2)


async def test_a_settlement_before_an_unregistered_chunk_exists_comes_again(
    world: BatchWorld,
) -> None:
    first, second = [
        send_command(APP, "ext_1", part, mode="batch", chunk=i, chunks=2, channels=IN_APP_EMAIL)
        for i, part in enumerate([["a"], ["b"]])
    ]
    await world.track(await world.dispatch(first))
    with pytest.raises(ChunkNotRecordedYet):
        await world.track([world.read(sent("b", "email", send_id="ext_1"))])
    await world.track(await world.dispatch(second))
    # Every chunk seen: a uid in none of them is not this batch's, and is let go.
    await world.track([world.read(sent(uid, "email", send_id="ext_1")) for uid in ("b", "x", "a")])
    assert await counts(world, "ext_1") == ("completed", 2, 0, 0)


# ---------------------------------------------------------------- what is parsed


def test_the_tracker_parses_the_workers_outcomes_of_batches_and_campaigns() -> None:
    assert tracked(sent("a", "email").to_bytes())
    assert tracked(failed("a", "push", mode="campaign").to_bytes())
    assert not tracked(sent("a", "email", mode="realtime").to_bytes())
    fan_out = failed("a", "email").model_copy(
        update={"channel_type": None, "channel_id": None, "notification_id": None}
    )
    assert not tracked(fan_out.to_bytes())


async def test_a_chunk_dispatched_alone_still_decides(world: BatchWorld) -> None:
    """No settlement in the fetch: the decision stays the chunk's (in_app only)."""
    [only] = await world.register("bat_1", ["a", "b"])
    events = await world.dispatch(only)
    await world.track(events)
    [summary] = [e for e in events if isinstance(e.value, ChunkDispatched)]
    batch = await world.batches.get(APP, "bat_1")
    assert batch is not None
    assert batch.decided_by == f"{STATUS}:0:{summary.offset}"
    assert world.announcer.settled == []
