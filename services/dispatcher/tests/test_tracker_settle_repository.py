"""Settling on the batch repository: one suite on the in-memory fake and on
``MongoBatches`` (FerretDB by default), and the tracker settling and deciding a batch
on the real database.

A pending receiver's settling state (queued channels, a delivery sent, the first
failure) is stored on it only while it is pending; ``settle`` rewrites a recorded
chunk's receivers and counts, keeping what else its documents hold; a replayed fan-out
never undoes a settlement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import random_ref
from clarion_dispatcher.batches import domain, service, settling
from clarion_dispatcher.batches.domain import ChunkOutcome
from clarion_dispatcher.batches.models import BatchChunk, BatchRegistration, ReceiverOutcome
from clarion_dispatcher.batches.mongo import MongoBatches
from clarion_dispatcher.batches.service import BatchRepository
from clarion_dispatcher.testing import InMemoryBatches, RecordingAnnouncer
from clarion_dispatcher.testing.batches import delivery_outcome
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.contracts.status import AnyStatusEvent, ChunkDispatched
from clarion_shared.kafka import Positioned

NOW = 1_700_000_000
EMAIL, PUSH = "ch-email", "ch-push"
REFUSED = ErrorInfo(code="ERR_PROVIDER_REJECTED", message="refused")


def waiting(uid: str, *queued: str, any_sent: bool = False) -> ReceiverOutcome:
    """A receiver pending on deliveries queued for workers."""
    return ReceiverOutcome(uid=uid, status="pending", queued=list(queued), any_sent=any_sent)


def outcome(app_id: str, batch_id: str, chunk: int, *receivers: ReceiverOutcome) -> ChunkOutcome:
    return ChunkOutcome(
        app_id=app_id,
        batch_id=batch_id,
        chunk=chunk,
        chunks=2,
        total=4,
        created_at=NOW,
        channels=["in_app", "email", "push"],
        receivers=list(receivers),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = random_ref("dispatcher_settle").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


class SettleSuite:
    @pytest.fixture
    def repo(self) -> BatchRepository:
        raise NotImplementedError

    async def _recorded(self, repo: BatchRepository) -> tuple[str, str, list[BatchChunk]]:
        """A registered batch of two chunks, both recorded with receivers pending."""
        app_id, batch_id = random_ref("app"), random_ref("bat")
        registration = BatchRegistration(
            total=4,
            created_at=NOW,
            channels=["in_app", "email", "push"],
            chunks=[["a", "b"], ["c", "d"]],
        )
        batch, docs = domain.registered(app_id, batch_id, registration)
        await repo.register(batch, docs)
        await repo.record(
            [
                outcome(
                    app_id,
                    batch_id,
                    0,
                    waiting("a", EMAIL, any_sent=True),
                    ReceiverOutcome(uid="b", status="failed", code="ERR_X", message="x"),
                ),
                outcome(
                    app_id,
                    batch_id,
                    1,
                    waiting("c", EMAIL, PUSH).model_copy(update={"failure": REFUSED}),
                    ReceiverOutcome(uid="d", status="sent"),
                ),
            ]
        )
        return app_id, batch_id, await repo.chunks(batch)

    async def test_a_pending_receivers_settling_state_reads_back(
        self, repo: BatchRepository
    ) -> None:
        _, _, (first, second) = await self._recorded(repo)

        assert first.receivers[0] == waiting("a", EMAIL, any_sent=True)
        assert second.receivers[0] == ReceiverOutcome(
            uid="c", status="pending", queued=[EMAIL, PUSH], failure=REFUSED
        )
        assert (first.sent, first.failed, first.pending) == (0, 1, 1)

    async def test_settle_rewrites_receivers_and_counts_and_keeps_the_rest(
        self, repo: BatchRepository
    ) -> None:
        app_id, batch_id, (first, _) = await self._recorded(repo)
        await repo.mark_delivered(first.id, ["a"])
        await repo.mark_events_read([first.id])

        done = settling.settle([first], [settling.Settlement("a", EMAIL, None, NOW)]).chunks[0]
        await repo.settle([done.chunk])

        batch = await repo.get(app_id, batch_id)
        assert batch is not None
        [again, other] = await repo.chunks(batch)
        assert [(r.uid, r.status) for r in again.receivers] == [("a", "sent"), ("b", "failed")]
        assert again.receivers[0] == ReceiverOutcome(uid="a", status="sent")
        assert (again.sent, again.failed, again.pending) == (1, 1, 0)
        assert (again.delivered, again.event_read, again.dispatched) == (["a"], True, True)
        assert other.pending == 1  # another chunk: untouched
        [summary, _] = await repo.chunks(batch, receivers=False)
        assert (summary.sent, summary.failed, summary.pending) == (1, 1, 0)

    async def test_a_replayed_fan_out_does_not_undo_a_settlement(
        self, repo: BatchRepository
    ) -> None:
        app_id, batch_id, (first, _) = await self._recorded(repo)
        done = settling.settle([first], [settling.Settlement("a", EMAIL, None, NOW)])
        await repo.settle([done.chunks[0].chunk])

        await repo.record([outcome(app_id, batch_id, 0, waiting("a", EMAIL), waiting("b", PUSH))])

        batch = await repo.get(app_id, batch_id)
        assert batch is not None
        [chunk, _] = await repo.chunks(batch)
        assert [r.status for r in chunk.receivers] == ["sent", "failed"]
        assert (chunk.sent, chunk.failed, chunk.pending) == (1, 1, 0)


class TestInMemorySettle(SettleSuite):
    @pytest.fixture
    def repo(self) -> BatchRepository:
        return InMemoryBatches()


def positioned(event: AnyStatusEvent, offset: int) -> Positioned[AnyStatusEvent]:
    return Positioned(event, "status", 0, offset)


def delivery(app_id: str, batch_id: str, uid: str, channel_id: str, ok: bool) -> AnyStatusEvent:
    """A worker's outcome for the receiver's delivery on ``channel_id``."""
    error = None if ok else ErrorInfo(code="ERR_PUSH_TOKEN_INVALID", message="token gone")
    channel_type: ChannelType = "email" if channel_id == EMAIL else "push"
    return delivery_outcome(
        app_id, batch_id, uid, channel_type, channel_id, error=error, occurred_at=NOW + 3
    )


def chunk_dispatched(app_id: str, batch_id: str, chunk: int) -> ChunkDispatched:
    return ChunkDispatched(
        event_id=random_ref("evt"),
        app_id=app_id,
        send_id=batch_id,
        mode="batch",
        occurred_at=NOW + 1,
        chunk=chunk,
        chunks=2,
        total=4,
        sent=0,
        failed=0,
    )


@pytest.mark.integration
class TestMongoSettle(SettleSuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def repo(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoBatches:
        repo = MongoBatches(mongo_db)
        await repo.start()
        return repo

    async def test_only_a_pending_receiver_stores_its_settling_state(
        self, repo: MongoBatches, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        app_id, batch_id, _ = await self._recorded(repo)
        stored = await mongo_db["batch_receivers"].find_one(
            {"_id": domain.chunk_key(app_id, batch_id, 1)}
        )
        assert stored is not None
        assert stored["receivers"] == [
            {
                "uid": "c",
                "status": "pending",
                "queued": [EMAIL, PUSH],
                "failure": {"code": "ERR_PROVIDER_REJECTED", "message": "refused"},
            },
            {"uid": "d", "status": "sent"},
        ]

    async def test_a_replay_that_read_the_receivers_before_a_settlement_keeps_the_counts(
        self, repo: MongoBatches, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        app_id, batch_id, (first, _) = await self._recorded(repo)
        done = settling.settle([first], [settling.Settlement("a", EMAIL, None, NOW)])
        await repo.settle([done.chunks[0].chunk])
        # What the replay reads: the receivers as they were before the settlement.
        await mongo_db["batch_receivers"].update_one(
            {"_id": first.id},
            {
                "$set": {
                    "receivers": [
                        {"uid": "a", "status": "pending"},
                        {"uid": "b", "status": "failed"},
                    ]
                }
            },
        )

        await repo.record([outcome(app_id, batch_id, 0, waiting("a", EMAIL), waiting("b", PUSH))])

        summary = await mongo_db["batch_chunks"].find_one({"_id": first.id})
        assert summary is not None
        assert (summary["sent"], summary["failed"], summary["pending"]) == (1, 1, 0)

    async def test_the_tracker_settles_and_decides_a_batch_on_the_database(
        self, repo: MongoBatches
    ) -> None:
        app_id, batch_id, _ = await self._recorded(repo)
        announcer = RecordingAnnouncer()
        fetch = [
            positioned(chunk_dispatched(app_id, batch_id, 0), 0),
            positioned(chunk_dispatched(app_id, batch_id, 1), 1),
            positioned(delivery(app_id, batch_id, "c", PUSH, ok=False), 2),
            positioned(delivery(app_id, batch_id, "a", EMAIL, ok=True), 3),
        ]
        await service.track(fetch, batches=repo, announcer=announcer, now=NOW + 9)
        shown = await service.get_batch(app_id, batch_id, batches=repo)
        assert (shown.status, shown.sent, shown.failed, shown.pending) == ("dispatching", 2, 1, 1)

        last = positioned(delivery(app_id, batch_id, "c", EMAIL, ok=False), 4)
        await service.track([last], batches=repo, announcer=announcer, now=NOW + 9)

        [completed] = announcer.announced
        assert (completed.status, completed.sent, completed.failed) == ("partially_failed", 2, 2)
        receivers, total = await service.list_receivers(
            app_id, batch_id, "failed", 1, 20, batches=repo
        )
        assert total == 2
        assert [(r.uid, r.code) for r in receivers] == [
            ("b", "ERR_X"),
            ("c", "ERR_PROVIDER_REJECTED"),  # the failure recorded first
        ]
        batch = await repo.get(app_id, batch_id)
        assert batch is not None
        assert (batch.status, batch.decided_by) == ("partially_failed", "status:0:4")
        assert [[(r.uid, r.status) for r in event.receivers] for event in announcer.settled] == [
            [("a", "sent")],
            [("c", "failed")],
        ]
