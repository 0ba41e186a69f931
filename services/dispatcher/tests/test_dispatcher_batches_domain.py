"""Pure rules of batches: a receiver's outcome, the decision, the counts, the event."""

from __future__ import annotations

import pytest

from clarion_dispatcher.batches import domain
from clarion_dispatcher.batches.models import (
    Batch,
    BatchChunk,
    BatchRegistration,
    ReceiverOutcome,
)
from clarion_dispatcher.fanout.domain import plan_chunk
from clarion_dispatcher.testing import profile, send_command
from clarion_shared.contracts.status import BatchCompleted, status_event_adapter
from clarion_shared.errors import Invalid

APP = "app1"
NOW = 1_700_000_000


def batch(chunks: int = 2, total: int = 4, **fields: object) -> Batch:
    return Batch.model_validate(
        {
            "id": domain.batch_key(APP, "bat_1"),
            "app_id": APP,
            "batch_id": "bat_1",
            "total": total,
            "chunks": chunks,
            "channels": ["in_app"],
            "created_at": NOW,
            **fields,
        }
    )


def chunk(
    index: int, *statuses: str, dispatched: bool = True, event_read: bool = True
) -> BatchChunk:
    receivers = [
        ReceiverOutcome.model_validate({"uid": f"u{index}-{n}", "status": status})
        for n, status in enumerate(statuses)
    ]
    return BatchChunk(
        id=domain.chunk_key(APP, "bat_1", index),
        batch_key=domain.batch_key(APP, "bat_1"),
        app_id=APP,
        batch_id="bat_1",
        chunk=index,
        receivers=receivers,
        dispatched=dispatched,
        event_read=event_read,
        sent=statuses.count("sent"),
        failed=statuses.count("failed"),
        pending=statuses.count("pending"),
    )


def test_a_registration_must_hold_total_distinct_receivers() -> None:
    good = BatchRegistration(
        total=3, created_at=NOW, channels=["in_app"], chunks=[["a", "b"], ["c"]]
    )
    stored, chunks = domain.registered(APP, "bat_1", good)
    assert (stored.total, stored.chunks, stored.status) == (3, 2, "queued")
    assert [c.pending for c in chunks] == [2, 1]
    assert chunks[1].id == domain.chunk_key(APP, "bat_1", 1) != chunks[0].id
    for bad in ([["a", "b"], ["b"]], [["a", "b"]], [["a", "b", "c"], []]):
        with pytest.raises(Invalid):
            domain.registered(APP, "bat_1", good.model_copy(update={"chunks": bad}))


def test_ids_are_per_app() -> None:
    assert domain.batch_key("a1", "bat_1") != domain.batch_key("a2", "bat_1")
    assert domain.chunk_key("a1", "bat_1", 0) != domain.chunk_key("a1", "bat_1", 1)


def test_a_receiver_is_pending_while_a_delivery_is_queued() -> None:
    command = send_command(
        APP, "bat_1", ["alice", "ghost"], mode="batch", channels=("in_app", "email")
    )
    plan = plan_chunk(command, {"alice": profile("alice", email="a@x.io")}, NOW)
    outcome = domain.chunk_outcome(command, plan.receivers, plan.records)
    assert outcome is not None
    assert [(r.uid, r.status, r.code) for r in outcome.receivers] == [
        ("alice", "pending", None),  # in_app sent, email queued
        ("ghost", "failed", "ERR_USER_NOT_FOUND"),
    ]
    assert (outcome.count("sent"), outcome.count("failed"), outcome.count("pending")) == (0, 1, 1)


def test_an_in_app_receiver_is_sent_at_dispatch_and_only_batches_have_outcomes() -> None:
    command = send_command(APP, "bat_1", ["alice"], mode="batch", chunk=2, chunks=3)
    plan = plan_chunk(command, {"alice": profile("alice")}, NOW)
    outcome = domain.chunk_outcome(command, plan.receivers, plan.records)
    assert outcome is not None
    assert [r.status for r in outcome.receivers] == ["sent"]
    assert (outcome.chunk, outcome.chunks, outcome.key) == (
        2,
        3,
        domain.chunk_key(APP, "bat_1", 2),
    )
    realtime = send_command(APP, "ntf_1", ["alice"])
    assert domain.chunk_outcome(realtime, ["alice"], plan.records) is None


@pytest.mark.parametrize(
    ("sent", "failed", "status"),
    [(3, 0, "completed"), (2, 1, "partially_failed"), (0, 3, "failed")],
)
def test_the_final_status(sent: int, failed: int, status: str) -> None:
    assert domain.final_status(sent, failed) == status


def test_a_batch_is_decided_when_every_chunk_is_recorded_and_none_pending() -> None:
    assert domain.decide(batch(), [chunk(0, "sent", "sent")]) is None  # chunk 1 missing
    assert (
        domain.decide(
            batch(), [chunk(0, "sent", "sent"), chunk(1, "sent", "sent", dispatched=False)]
        )
        is None
    )
    assert domain.decide(batch(), [chunk(0, "sent", "pending"), chunk(1, "sent", "sent")]) is None
    # Recorded, but its ChunkDispatched not read back yet: the completion would precede it.
    unread = chunk(1, "sent", "sent", event_read=False)
    assert domain.decide(batch(), [chunk(0, "sent", "sent"), unread]) is None
    assert (
        domain.decide(batch(), [chunk(0, "sent", "failed"), chunk(1, "sent", "sent")])
        == "partially_failed"
    )
    assert domain.decide(batch(), [chunk(0, "sent", "sent"), chunk(1, "sent", "sent")]) == (
        "completed"
    )
    decided = batch(status="completed", final=True, completed_at=NOW + 1)
    assert domain.decide(decided, [chunk(0, "sent", "sent"), chunk(1, "sent", "sent")]) is None


def test_what_a_batch_shows_as_it_goes() -> None:
    queued = domain.public_batch(batch(), [chunk(0, "pending", "pending", dispatched=False)])
    assert (queued.status, queued.pending, queued.sent) == ("queued", 4, 0)

    halfway = domain.public_batch(
        batch(), [chunk(0, "sent", "failed"), chunk(1, "pending", "pending", dispatched=False)]
    )
    assert (halfway.status, halfway.sent, halfway.failed, halfway.pending) == (
        "dispatching",
        1,
        1,
        2,
    )
    assert halfway.completed_at is None

    # All recorded but not decided yet: still dispatching (the tracker decides).
    recorded = [chunk(0, "sent", "failed"), chunk(1, "sent", "sent")]
    assert domain.public_batch(batch(), recorded).status == "dispatching"
    done = batch(status="partially_failed", final=True, completed_at=NOW + 9)
    shown = domain.public_batch(done, recorded)
    assert (shown.status, shown.sent, shown.failed, shown.pending, shown.completed_at) == (
        "partially_failed",
        3,
        1,
        0,
        NOW + 9,
    )


def test_counts_come_from_the_chunks_counts_and_delivered_uids() -> None:
    recorded = chunk(0, "sent", "failed").model_copy(update={"delivered": ["u0-0"]})
    found = domain.counts(batch(), [recorded, chunk(1, "pending", "pending", dispatched=False)])
    assert found == domain.Counts(sent=1, delivered=1, failed=1, pending=2)


def test_a_page_reads_only_the_chunks_holding_it() -> None:
    chunks = [chunk(0, "sent", "failed", "sent"), chunk(1, "failed"), chunk(2, "sent", "sent")]
    assert domain.page_span(chunks, None, 1, 2) == domain.PageSpan([0], 0, 6)
    assert domain.page_span(chunks, None, 2, 2) == domain.PageSpan([0, 1], 2, 6)
    assert domain.page_span(chunks, "sent", 2, 2) == domain.PageSpan([2], 0, 4)
    assert domain.page_span(chunks, "failed", 1, 20) == domain.PageSpan([0, 1], 0, 2)
    assert domain.page_span(chunks, "pending", 1, 20) == domain.PageSpan([], 0, 0)
    assert domain.page_span(chunks, None, 9, 2) == domain.PageSpan([], 0, 6)


def test_receivers_in_send_order_and_by_status() -> None:
    chunks = [chunk(1, "sent", "pending"), chunk(0, "failed", "sent")]
    assert [r.uid for r in domain.public_receivers(chunks)] == ["u0-0", "u0-1", "u1-0", "u1-1"]
    assert [r.uid for r in domain.public_receivers(chunks, "sent")] == ["u0-1", "u1-0"]
    assert [r.uid for r in domain.public_receivers(chunks, "pending")] == ["u1-1"]


def test_the_completed_event_is_the_batch_status_object_with_one_id_per_batch() -> None:
    done = batch(
        status="completed",
        final=True,
        completed_at=NOW + 9,
        decided_by="t:0:1",
        decided_event="e",
    )
    event = domain.batch_completed(done, [chunk(0, "sent", "sent"), chunk(1, "sent", "sent")])
    assert (event.batch_id, event.send_id, event.status, event.total, event.sent) == (
        "bat_1",
        "bat_1",
        "completed",
        4,
        4,
    )
    assert (event.pending, event.created_at, event.completed_at, event.occurred_at) == (
        0,
        NOW,
        NOW + 9,
        NOW + 9,
    )
    again = domain.batch_completed(done, [chunk(0, "sent", "sent"), chunk(1, "sent", "sent")])
    assert again.event_id == event.event_id
    parsed = status_event_adapter.validate_json(event.to_bytes())
    assert isinstance(parsed, BatchCompleted)
    assert parsed == event
    with pytest.raises(ValueError, match="not decided"):
        domain.batch_completed(batch(), [])
