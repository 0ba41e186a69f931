"""One suite for the analytics repository, on the in-memory fake and on
``MongoAnalytics`` (FerretDB by default: its duplicate keys, guarded upserts, trimming
of the batches a rollup remembers, and the equality reads behave as the fake says)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import logged_client, random_ref
from clarion_devtools.localinfra import InfraAddresses
from clarion_dispatcher.analytics.domain import (
    DAY,
    Counts,
    Fact,
    RollupDelta,
    Series,
    rollup_deltas,
    span_start,
)
from clarion_dispatcher.analytics.mongo import KEEP_BATCHES, MongoAnalytics
from clarion_dispatcher.analytics.service import AnalyticsRepository, Mark
from clarion_dispatcher.testing import InMemoryAnalytics

NOW = 1_700_000_000


def fact(app: str, **counts: int) -> Fact:
    return Fact(
        app_id=app,
        at=NOW,
        counts=Counts(**counts),
        template_id="tpl",
        channel_id="feed",
        channel_type="in_app",
        uid="u1",
    )


def mark(event_id: str, batch: str, app: str, at: int = NOW) -> Mark:
    return Mark(event_id=event_id, batch=batch, marked_at=at, facts=[fact(app, sent=1)])


def app_series(app: str) -> Series:
    return Series(app, "app", "", "hour")


async def app_hour(repo: AnalyticsRepository, app: str) -> Counts:
    series = app_series(app)
    bucket = NOW - NOW % 3600
    rows = await repo.series_rows([series.span_key(span_start(bucket, "hour"))], bucket, bucket)
    total = Counts()
    for row in rows:
        total = total + row.counts
    return total


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = random_ref("dispatcher_analytics").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


class AnalyticsRepositorySuite:
    @pytest.fixture
    def repo(self) -> AnalyticsRepository:
        raise NotImplementedError

    async def test_marks_tell_new_events_from_those_seen(self, repo: AnalyticsRepository) -> None:
        app = random_ref("app")
        assert await repo.mark([mark("e1", "b1", app), mark("e2", "b1", app)]) == {"e1", "e2"}
        assert await repo.mark([mark("e2", "b2", app), mark("e3", "b2", app)]) == {"e3"}
        marked = {(m.event_id, m.batch) for m in await repo.unapplied()}
        assert {("e1", "b1"), ("e2", "b1"), ("e3", "b2")} <= marked
        await repo.confirm("b1")
        pending = {m.event_id for m in await repo.unapplied()}
        assert "e1" not in pending
        assert "e3" in pending
        [found] = [m for m in await repo.unapplied() if m.event_id == "e3"]
        assert found.facts == [fact(app, sent=1)]
        await repo.confirm("b2")

    async def test_a_batch_adds_to_a_rollup_once(self, repo: AnalyticsRepository) -> None:
        app = random_ref("app")
        deltas = rollup_deltas([fact(app, sent=2, read=1)])
        await repo.apply("b1", deltas)
        await repo.apply("b1", deltas)
        await repo.apply("b2", rollup_deltas([fact(app, delivered=1)]))
        assert await app_hour(repo, app) == Counts(sent=2, delivered=1, read=1)

    async def test_concurrent_batches_on_a_new_rollup_all_count(
        self, repo: AnalyticsRepository
    ) -> None:
        app = random_ref("app")
        deltas = rollup_deltas([fact(app, sent=1)])
        await asyncio.gather(*(repo.apply(f"b{n}", deltas) for n in range(6)))
        await asyncio.gather(*(repo.apply(f"b{n}", deltas) for n in range(6)))
        assert await app_hour(repo, app) == Counts(sent=6)

    async def test_a_rollup_remembers_its_last_batches(self, repo: AnalyticsRepository) -> None:
        app = random_ref("app")
        [delta] = [d for d in rollup_deltas([fact(app, sent=1)]) if d.series == app_series(app)]
        for n in range(KEEP_BATCHES + 10):
            await repo.apply(f"b{n}", [delta])
        await repo.apply(f"b{KEEP_BATCHES + 9}", [delta])  # the newest: remembered
        await repo.apply("b12", [delta])  # within the last KEEP_BATCHES: remembered
        assert await app_hour(repo, app) == Counts(sent=KEEP_BATCHES + 10)

    async def test_series_and_ranking_rows_read_by_key_and_bucket(
        self, repo: AnalyticsRepository
    ) -> None:
        app = random_ref("app")
        facts = [
            fact(app, sent=1).model_copy(update={"at": NOW + n * DAY, "template_id": f"t{n % 2}"})
            for n in range(4)
        ]
        deltas = rollup_deltas(facts)
        await repo.apply("b1", deltas)
        day = NOW - NOW % DAY
        series = Series(app, "template", "t0", "day")
        rows = await repo.series_rows([series.span_key(span_start(day, "day"))], day, day + 2 * DAY)
        assert sorted((r.dimension_id, r.bucket, r.counts.sent) for r in rows) == [
            ("t0", day, 1),
            ("t0", day + 2 * DAY, 1),
        ]
        ranking = {d.ranking_key for d in deltas if d.series.dimension == "template"}
        rows = await repo.ranking_rows(sorted(k for k in ranking if k), day + DAY, day + 3 * DAY)
        assert sorted((r.dimension_id, r.bucket) for r in rows) == [
            ("t0", day + 2 * DAY),
            ("t1", day + DAY),
            ("t1", day + 3 * DAY),
        ]
        channels = [
            d for d in deltas if d.series.dimension == "channel" and d.series.stored == "day"
        ]
        assert isinstance(channels[0], RollupDelta)
        assert channels[0].label == "in_app"
        key = channels[0].ranking_key
        assert key is not None
        [row, *_] = await repo.ranking_rows([key], day, day + 3 * DAY)
        assert row.label == "in_app"

    async def test_old_applied_marks_are_forgotten(self, repo: AnalyticsRepository) -> None:
        app = random_ref("app")
        old = NOW - 40 * DAY
        await repo.mark([mark("old-1", "ob", app, old), mark("old-2", "oc", app, old)])
        await repo.mark([mark("new-1", "nb", app)])
        await repo.confirm("ob")
        await repo.confirm("nb")
        assert await repo.forget_marks(NOW - 30 * DAY) >= 1
        # Forgotten: it counts as new again; the unapplied old one and the new one stay.
        assert await repo.mark(
            [mark("old-1", "x", app), mark("old-2", "x", app), mark("new-1", "x", app)]
        ) == {"old-1"}
        await repo.confirm("oc")
        await repo.confirm("x")


class TestInMemoryAnalytics(AnalyticsRepositorySuite):
    @pytest.fixture
    def repo(self) -> AnalyticsRepository:
        return InMemoryAnalytics()


@pytest.mark.integration
class TestMongoAnalytics(AnalyticsRepositorySuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def repo(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoAnalytics:
        repo = MongoAnalytics(mongo_db)
        await repo.start()
        return repo

    async def test_the_remembered_batches_are_trimmed(
        self, repo: MongoAnalytics, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        app = random_ref("app")
        [delta] = [d for d in rollup_deltas([fact(app, sent=1)]) if d.series == app_series(app)]
        for n in range(3 * KEEP_BATCHES):
            await repo.apply(f"b{n}", [delta])
        doc = await mongo_db["analytics_rollups"].find_one({"_id": delta.rollup_id})
        assert doc is not None
        assert doc["sent"] == 3 * KEEP_BATCHES
        assert KEEP_BATCHES <= len(doc["applied_batches"]) <= 2 * KEEP_BATCHES
        assert doc["applied_batches"][-1] == f"b{3 * KEEP_BATCHES - 1}"

    async def test_a_fetchs_new_rollups_are_inserted_in_one_command(
        self, infra: InfraAddresses, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        """A receiver's day is a rollup of its own: 300 receivers' first deliveries are
        one ``insert``, not 300 upserts; the rollups stored already are updated, once
        per batch."""
        async with logged_client(infra.mongodb_url) as (client, commands):
            repo = MongoAnalytics(client[mongo_db.name])
            app = random_ref("app")
            facts = [fact(app, sent=1).model_copy(update={"uid": f"u{n}"}) for n in range(300)]
            commands.clear()
            await repo.apply("b1", rollup_deltas(facts))
            assert commands.names.count("insert") == 1
            assert commands.names.count("update") == 0  # the app, template... rollups too

            commands.clear()
            await repo.apply("b1", rollup_deltas(facts))  # the same batch again: nothing
            await repo.apply("b2", rollup_deltas(facts[:10]))
            # Known to be stored: updated without a failing insert first (one duplicate
            # key makes FerretDB 1.24 insert the whole batch one document at a time).
            assert "insert" not in commands.names
            commands.clear()
            newcomers = [fact(app, sent=1).model_copy(update={"uid": f"n{n}"}) for n in range(5)]
            await repo.apply("b3", rollup_deltas(newcomers))
            inserted = [len(cmd["documents"]) for name, cmd in commands.sent if name == "insert"]
            assert inserted == [5]  # the five receivers' days, nothing else
            rollups = mongo_db["analytics_rollups"]
            for uid, sent in (("u0", 2), ("u9", 2), ("u10", 1), ("u299", 1)):
                rollup_id = Series(app, "user", uid, "day").rollup_id(NOW - NOW % DAY)
                doc = await rollups.find_one({"_id": rollup_id})
                assert doc is not None
                assert (doc["sent"], doc["dimension_id"]) == (sent, uid)
            assert await app_hour(repo, app) == Counts(sent=315)

    async def test_a_large_batch_is_marked_in_two_inserts_and_confirmed_in_one_delete(
        self, infra: InfraAddresses, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        """A fetch of 500 events costs three commands of one document's work or one
        bulk insert each, not one update per mark (FerretDB runs an ``update_many`` as
        one ``UPDATE`` per document)."""
        async with logged_client(infra.mongodb_url) as (client, commands):
            repo = MongoAnalytics(client[mongo_db.name])
            app = random_ref("app")
            batch = random_ref("b")
            marks = [mark(f"{batch}-{n}", batch, app) for n in range(500)]
            commands.clear()
            assert len(await repo.mark(marks)) == 500
            assert commands.names == ["insert", "insert"]
            assert len([m for m in await repo.unapplied() if m.batch == batch]) == 500
            commands.clear()
            await repo.confirm(batch)
            assert commands.names == ["delete"]
            assert not [m for m in await repo.unapplied() if m.batch == batch]
            assert await mongo_db["analytics_marks"].count_documents({"batch": batch}) == 500

    async def test_a_pending_batch_without_marks_is_forgotten_with_its_day(
        self, repo: MongoAnalytics, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> None:
        """A crash between a batch's two inserts leaves it pending with no mark."""
        app = random_ref("app")
        old = NOW - 40 * DAY
        await mongo_db["analytics_batches"].insert_one(
            {"_id": "crashed", "marked_at": old, "day": old // DAY}
        )
        await repo.mark([mark("kept-1", "pending-old", app, old)])
        await repo.forget_marks(NOW - 30 * DAY)
        batches = mongo_db["analytics_batches"]
        assert await batches.find_one({"_id": "crashed"}) is None
        assert await batches.find_one({"_id": "pending-old"}) is not None
        assert [m.event_id for m in await repo.unapplied() if m.batch == "pending-old"] == [
            "kept-1"
        ]
        await repo.confirm("pending-old")
