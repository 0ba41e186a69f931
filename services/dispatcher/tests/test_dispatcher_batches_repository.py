"""One suite for the batch repository, on the in-memory fake and on ``MongoBatches``.

The Mongo runs are integration tests (FerretDB by default): the conditional and
positional updates the tracker relies on behave there as the fake says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import random_ref
from clarion_dispatcher.batches import domain
from clarion_dispatcher.batches.domain import ChunkOutcome
from clarion_dispatcher.batches.models import BatchMode, BatchRegistration, ReceiverOutcome
from clarion_dispatcher.batches.mongo import MongoBatches
from clarion_dispatcher.batches.service import BatchRepository
from clarion_dispatcher.testing import InMemoryBatches

NOW = 1_700_000_000


def registration(*chunks: list[str], mode: BatchMode = "batch") -> BatchRegistration:
    return BatchRegistration(
        total=sum(len(chunk) for chunk in chunks),
        created_at=NOW,
        channels=["in_app"],
        chunks=list(chunks),
        mode=mode,
    )


def outcome(
    app_id: str, batch_id: str, chunk: int, chunks: int, mode: BatchMode = "batch", **statuses: str
) -> ChunkOutcome:
    return ChunkOutcome(
        mode=mode,
        app_id=app_id,
        batch_id=batch_id,
        chunk=chunk,
        chunks=chunks,
        total=10,
        created_at=NOW,
        channels=["in_app"],
        receivers=[
            ReceiverOutcome(
                uid=uid,
                status="failed" if status == "failed" else "sent",
                code="ERR_USER_NOT_FOUND" if status == "failed" else None,
                message="no such user" if status == "failed" else None,
            )
            for uid, status in statuses.items()
        ],
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = random_ref("dispatcher_batches").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


class BatchRepositorySuite:
    @pytest.fixture
    def repo(self) -> BatchRepository:
        raise NotImplementedError

    async def _registered(self, repo: BatchRepository, *chunks: list[str]) -> tuple[str, str]:
        app, batch_id = random_ref("app"), random_ref("bat")
        batch, docs = domain.registered(app, batch_id, registration(*chunks))
        await repo.register(batch, docs)
        return app, batch_id

    async def test_a_registered_batch_reads_back_with_its_chunks_in_order(
        self, repo: BatchRepository
    ) -> None:
        app, batch_id = await self._registered(repo, ["a", "b"], ["c"])

        batch = await repo.get(app, batch_id)
        assert batch is not None
        assert (batch.total, batch.chunks, batch.status, batch.final) == (3, 2, "queued", False)
        chunks = await repo.chunks(batch)
        assert [[r.uid for r in c.receivers] for c in chunks] == [["a", "b"], ["c"]]
        assert {r.status for c in chunks for r in c.receivers} == {"pending"}
        assert await repo.get(random_ref("other"), batch_id) is None

    async def test_registering_again_changes_nothing(self, repo: BatchRepository) -> None:
        app, batch_id = await self._registered(repo, ["a", "b"])
        stored = await repo.get(app, batch_id)
        assert stored is not None
        await repo.record([outcome(app, batch_id, 0, 1, a="sent", b="failed")])

        again, docs = domain.registered(app, batch_id, registration(["a", "b"]))
        await repo.register(again, docs)

        assert await repo.get(app, batch_id) == stored
        [chunk] = await repo.chunks(stored)
        assert [r.status for r in chunk.receivers] == ["sent", "failed"]

    async def test_the_mode_is_stored_and_an_unregistered_chunk_brings_its_own(
        self, repo: BatchRepository
    ) -> None:
        app, campaign_id = random_ref("app"), random_ref("cmp")
        batch, docs = domain.registered(app, campaign_id, registration(["a"], mode="campaign"))
        await repo.register(batch, docs)
        unregistered = random_ref("cmp")
        await repo.record([outcome(app, unregistered, 0, 1, "campaign", x="sent")])
        plain = await self._registered(repo, ["a"])

        modes = [await repo.get(app, campaign_id), await repo.get(app, unregistered)]
        assert [found.mode if found else None for found in modes] == ["campaign", "campaign"]
        found = await repo.get(*plain)
        assert found is not None
        assert found.mode == "batch"

    async def test_the_first_recorded_outcome_wins(self, repo: BatchRepository) -> None:
        app, batch_id = await self._registered(repo, ["a", "b"])
        await repo.record([outcome(app, batch_id, 0, 1, a="sent", b="failed")])
        await repo.record([outcome(app, batch_id, 0, 1, a="failed", b="sent")])  # a replay

        batch = await repo.get(app, batch_id)
        assert batch is not None
        [chunk] = await repo.chunks(batch)
        assert chunk.dispatched
        assert [(r.uid, r.status, r.code) for r in chunk.receivers] == [
            ("a", "sent", None),
            ("b", "failed", "ERR_USER_NOT_FOUND"),
        ]
        assert (chunk.sent, chunk.failed, chunk.pending) == (1, 1, 0)

    async def test_without_receivers_only_the_counts_are_read(self, repo: BatchRepository) -> None:
        app, batch_id = await self._registered(repo, ["a", "b"], ["c"])
        await repo.record([outcome(app, batch_id, 1, 2, c="sent")])
        batch = await repo.get(app, batch_id)
        assert batch is not None

        first, second = await repo.chunks(batch, receivers=False)

        assert (first.dispatched, first.pending, first.receivers) == (False, 2, [])
        assert (second.dispatched, second.sent, second.receivers) == (True, 1, [])

    async def test_a_chunks_event_is_noted_read_once_and_survives_the_record(
        self, repo: BatchRepository
    ) -> None:
        app, batch_id = await self._registered(repo, ["a"], ["b"])
        loose = random_ref("bat")  # nobody registered it: its chunk is written by the record
        await repo.record(
            [outcome(app, batch_id, 0, 2, a="sent"), outcome(app, loose, 0, 1, x="sent")]
        )
        batch, other = await repo.get(app, batch_id), await repo.get(app, loose)
        assert batch is not None
        assert other is not None
        assert [c.event_read for c in await repo.chunks(batch)] == [False, False]
        assert [c.event_read for c in await repo.chunks(other)] == [False]

        first = domain.chunk_key(app, batch_id, 0)
        await repo.mark_events_read([first])
        await repo.mark_events_read([first])
        await repo.record([outcome(app, batch_id, 1, 2, b="sent")])
        assert [c.event_read for c in await repo.chunks(batch)] == [True, False]

    async def test_a_chunk_nobody_registered_creates_itself_and_its_batch(
        self, repo: BatchRepository
    ) -> None:
        app, batch_id = random_ref("app"), random_ref("bat")
        await repo.record([outcome(app, batch_id, 1, 3, x="sent")])
        await repo.record([outcome(app, batch_id, 0, 3, y="failed")])
        await repo.record([outcome(app, batch_id, 1, 3, x="failed")])  # a replay

        batch = await repo.get(app, batch_id)
        assert batch is not None
        assert (batch.total, batch.chunks, batch.created_at) == (10, 3, NOW)
        chunks = await repo.chunks(batch)
        assert [(c.chunk, [r.status for r in c.receivers]) for c in chunks] == [
            (0, ["failed"]),
            (1, ["sent"]),
        ]

    async def test_a_correction_overwrites_the_outcomes(self, repo: BatchRepository) -> None:
        app, batch_id = await self._registered(repo, ["a", "b"])
        await repo.record([outcome(app, batch_id, 0, 1, a="sent", b="sent")])
        await repo.correct([outcome(app, batch_id, 0, 1, a="sent", b="failed")])
        batch = await repo.get(app, batch_id)
        assert batch is not None
        [chunk] = await repo.chunks(batch)
        assert [r.status for r in chunk.receivers] == ["sent", "failed"]
        assert (chunk.sent, chunk.failed) == (1, 1)

    async def test_a_batch_is_finished_once(self, repo: BatchRepository) -> None:
        app, batch_id = await self._registered(repo, ["a"])
        batch = await repo.get(app, batch_id)
        assert batch is not None

        first = await repo.finish(batch, "completed", NOW + 5, "t:0:7", "evt-1")
        second = await repo.finish(batch, "failed", NOW + 9, "t:0:8", "evt-1")

        assert (first, second) == (True, False)
        done = await repo.get(app, batch_id)
        assert done is not None
        assert (done.status, done.final, done.completed_at) == ("completed", True, NOW + 5)
        assert (done.decided_by, done.decided_event) == ("t:0:7", "evt-1")

    async def test_delivered_receivers_are_added_once_and_survive_the_record(
        self, repo: BatchRepository
    ) -> None:
        app, batch_id = await self._registered(repo, ["a", "b", "c"])
        batch = await repo.get(app, batch_id)
        assert batch is not None
        [chunk] = await repo.chunks(batch)

        await repo.mark_delivered(chunk.id, ["a", "c"])  # before the outcomes: kept
        await repo.record([outcome(app, batch_id, 0, 1, a="sent", b="sent", c="sent")])
        await repo.mark_delivered(chunk.id, ["c"])  # again: nothing changes

        [marked] = await repo.chunks(batch, receivers=False)
        assert sorted(marked.delivered) == ["a", "c"]
        assert marked.sent == 3

    async def test_chunks_are_read_whole_by_number(self, repo: BatchRepository) -> None:
        app, batch_id = await self._registered(repo, ["a"], ["b"], ["c"])
        batch = await repo.get(app, batch_id)
        assert batch is not None
        found = await repo.chunks_numbered(batch, [2, 0, 7])
        assert [(c.chunk, [r.uid for r in c.receivers]) for c in found] == [
            (0, ["a"]),
            (2, ["c"]),
        ]


class TestInMemoryBatches(BatchRepositorySuite):
    @pytest.fixture
    def repo(self) -> BatchRepository:
        return InMemoryBatches()


@pytest.mark.integration
class TestMongoBatches(BatchRepositorySuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def repo(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoBatches:
        repo = MongoBatches(mongo_db)
        await repo.start()
        return repo

    async def test_a_replay_repairs_the_counts_a_crash_left_behind(
        self, repo: MongoBatches, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        app, batch_id = await self._registered(repo, ["a", "b"])
        # The receivers were recorded; the process died before their counts were.
        await mongo_db["batch_receivers"].update_one(
            {"_id": domain.chunk_key(app, batch_id, 0)},
            {
                "$set": {
                    "dispatched": True,
                    "receivers": [
                        {"uid": "a", "status": "sent"},
                        {"uid": "b", "status": "failed", "code": "ERR_X", "message": "x"},
                    ],
                }
            },
        )

        await repo.record([outcome(app, batch_id, 0, 1, a="sent", b="sent")])  # the replay

        batch = await repo.get(app, batch_id)
        assert batch is not None
        [chunk] = await repo.chunks(batch)
        assert (chunk.dispatched, chunk.sent, chunk.failed, chunk.pending) == (True, 1, 1, 0)
        assert [r.status for r in chunk.receivers] == ["sent", "failed"]

    async def test_a_document_written_before_modes_reads_as_a_batch(
        self, repo: MongoBatches, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        app, batch_id = await self._registered(repo, ["a"])
        key = domain.batch_key(app, batch_id)
        stored = await mongo_db["batches"].find_one({"_id": key})
        assert stored is not None
        assert stored["mode"] == "batch"  # stored by what registers
        await mongo_db["batches"].update_one({"_id": key}, {"$unset": {"mode": ""}})

        old = await repo.get(app, batch_id)

        assert old is not None
        assert (old.batch_id, old.mode, old.total) == (batch_id, "batch", 1)
