"""The sends listing, one suite on the in-memory fakes and on the Mongo repositories.

Sends go through the real use cases (the gateway's registration, the fan-out, the
tracker), so the listing is checked as the write path keeps it: a realtime send listed
with its records, a batch listed when registered, ``dispatching`` with its template
once a chunk is out, final when decided. The Mongo runs are integration tests (FerretDB
by default): the listing's filters and sort, and a CSV export of several chunks read
one at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import random_ref
from clarion_dispatcher.batches import service as batches
from clarion_dispatcher.batches.models import BatchRegistration
from clarion_dispatcher.batches.mongo import MongoBatches
from clarion_dispatcher.batches.service import BatchRepository
from clarion_dispatcher.errors import ERRORS
from clarion_dispatcher.fanout import service as fanout
from clarion_dispatcher.notifications.mongo import MongoNotifications
from clarion_dispatcher.notifications.service import NotificationRepository
from clarion_dispatcher.sends import routes, service
from clarion_dispatcher.sends.domain import SendNotFound
from clarion_dispatcher.sends.mongo import MongoSends
from clarion_dispatcher.sends.service import SendIndex
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    InMemoryFeed,
    InMemoryNotifications,
    InMemorySends,
    RecordingAnnouncer,
    RecordingPublisher,
    profile,
    send_command,
)
from clarion_shared import http
from clarion_shared.contracts.status import AnyStatusEvent, status_event_adapter
from clarion_shared.kafka import Positioned
from clarion_shared.lifecycle import lifespan
from clarion_shared.public.sends import ReceiverQuery, SendQuery
from clarion_shared.topics import Topics

TOPICS = Topics("unit.")
NOW = 1_700_000_000


@dataclass
class Stores:
    notifications: NotificationRepository
    batches: BatchRepository
    sends: SendIndex
    app: str = field(default_factory=lambda: random_ref("app"))
    directory: FakeDirectory = field(default_factory=FakeDirectory)
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    offset: int = 0

    def users(self, *uids: str) -> None:
        self.directory.add(self.app, *(profile(uid) for uid in uids))

    async def realtime(self, send_id: str, receivers: list[str], at: int = NOW) -> None:
        command = send_command(self.app, send_id, receivers, created_at=at)
        await self._dispatch(command, at)

    async def register(self, batch_id: str, *chunks: list[str], at: int = NOW) -> None:
        body = BatchRegistration(
            total=sum(len(c) for c in chunks), created_at=at, channels=["in_app"], chunks=[*chunks]
        )
        await batches.register_batch(self.app, batch_id, body, batches=self.batches)

    async def dispatch(self, batch_id: str, *chunks: list[str], at: int = NOW) -> None:
        """Fan each chunk out, then let the tracker read what was published."""
        before = len(self.publisher.on(TOPICS.status))
        for number, receivers in enumerate(chunks):
            command = send_command(
                self.app,
                batch_id,
                receivers,
                mode="batch",
                chunk=number,
                chunks=len(chunks),
                created_at=at,
            ).model_copy(update={"total": sum(len(c) for c in chunks)})
            await self._dispatch(command, at)
        events: list[Positioned[AnyStatusEvent]] = []
        for published in self.publisher.on(TOPICS.status)[before:]:
            events.append(
                Positioned(
                    status_event_adapter.validate_python(published.message), "s", 0, self.offset
                )
            )
            self.offset += 1
        await batches.track(
            events, batches=self.batches, announcer=RecordingAnnouncer(), now=at + 5
        )

    async def _dispatch(self, command: Any, at: int) -> None:
        await fanout.dispatch_chunk(
            command,
            directory=self.directory,
            notifications=self.notifications,
            feed=InMemoryFeed(),
            batches=self.batches,
            publisher=self.publisher,
            topics=TOPICS,
            now=at + 1,
        )

    async def listed(self, **filters: Any) -> list[tuple[str, str, str]]:
        page, _ = await service.list_sends(
            self.app, SendQuery(**filters), 1, 100, sends=self.sends, batches=self.batches
        )
        return [(send.id, send.type, send.status) for send in page]

    async def receivers(self, send_id: str, **query: Any) -> tuple[list[Any], int]:
        return await service.list_receivers(
            self.app,
            send_id,
            ReceiverQuery(**query),
            sends=self.sends,
            batches=self.batches,
            notifications=self.notifications,
        )


class SendsListingSuite:
    @pytest.fixture
    def stores(self) -> Stores:
        raise NotImplementedError

    async def test_every_send_is_listed_newest_first_with_its_state(self, stores: Stores) -> None:
        stores.users("alice", "bob", "carol")
        await stores.realtime("ntf_1", ["alice", "ghost"], at=NOW)
        await stores.register("bat_1", ["alice", "bob"], ["carol"], at=NOW + 10)
        await stores.register("bat_2", ["alice"], at=NOW + 20)

        assert await stores.listed() == [
            ("bat_2", "batch", "queued"),
            ("bat_1", "batch", "queued"),
            ("ntf_1", "realtime", "partially_failed"),
        ]
        await stores.dispatch("bat_1", ["alice", "bob"], ["carol"], at=NOW + 10)

        page, total = await service.list_sends(
            stores.app, SendQuery(), 1, 2, sends=stores.sends, batches=stores.batches
        )
        assert total == 3
        first, second = page
        assert (first.id, first.template_id) == ("bat_2", None)
        assert (second.id, second.status, second.template_id) == (
            "bat_1",
            "completed",
            "order-shipped",
        )
        assert (second.total, second.sent, second.failed, second.pending) == (3, 3, 0, 0)
        [realtime] = (
            await service.list_sends(
                stores.app, SendQuery(), 2, 2, sends=stores.sends, batches=stores.batches
            )
        )[0]
        assert (realtime.id, realtime.mode, realtime.sent, realtime.failed) == (
            "ntf_1",
            "direct",
            1,
            1,
        )
        assert realtime.delivered is None

    async def test_the_filters(self, stores: Stores) -> None:
        stores.users("alice")
        await stores.realtime("ntf_1", ["alice"], at=NOW)
        await stores.register("bat_1", ["alice"], at=NOW + 10)
        await stores.dispatch("bat_1", ["alice"], at=NOW + 10)
        await stores.register("bat_2", ["alice"], at=NOW + 20)

        assert [s[0] for s in await stores.listed(type="realtime")] == ["ntf_1"]
        assert [s[0] for s in await stores.listed(status="queued")] == ["bat_2"]
        assert [s[0] for s in await stores.listed(status="completed")] == ["bat_1", "ntf_1"]
        assert [s[0] for s in await stores.listed(template_id="order-shipped")] == [
            "bat_1",
            "ntf_1",
        ]
        assert [s[0] for s in await stores.listed(since=NOW + 5, until=NOW + 10)] == ["bat_1"]
        other, total = await service.list_sends(
            random_ref("other"), SendQuery(), 1, 20, sends=stores.sends, batches=stores.batches
        )
        assert (other, total) == ([], 0)

    async def test_receivers_show_each_channel_and_the_failure(self, stores: Stores) -> None:
        stores.users("alice", "carol")
        await stores.register("bat_1", ["alice", "ghost"], ["carol"])
        await stores.dispatch("bat_1", ["alice", "ghost"], ["carol"])

        found, total = await stores.receivers("bat_1")
        assert total == 3
        assert [(r.uid, r.status, r.code) for r in found] == [
            ("alice", "sent", None),
            ("ghost", "failed", "ERR_USER_NOT_FOUND"),
            ("carol", "sent", None),
        ]
        assert [(c.channel_type, c.status) for c in found[0].channels] == [("in_app", "sent")]
        assert found[0].updated_at == NOW + 1
        failed, total = await stores.receivers("bat_1", status="failed")
        assert ([r.uid for r in failed], total) == (["ghost"], 1)
        page, total = await stores.receivers("bat_1", page=2, per_page=2)
        assert ([r.uid for r in page], total) == (["carol"], 3)
        one, total = await stores.receivers("bat_1", uid="carol")
        assert ([r.uid for r in one], total) == (["carol"], 1)
        realtime_ghost = await stores.receivers("bat_1", uid="nobody")
        assert realtime_ghost == ([], 0)

    async def test_a_pending_receiver_has_no_channels_yet(self, stores: Stores) -> None:
        await stores.register("bat_1", ["alice"])

        [receiver], _ = await stores.receivers("bat_1")
        assert (receiver.status, receiver.channels, receiver.updated_at) == ("pending", [], None)

    async def test_another_apps_send_is_not_found(self, stores: Stores) -> None:
        stores.users("alice")
        await stores.realtime("ntf_1", ["alice"])

        with pytest.raises(SendNotFound):
            await service.list_receivers(
                random_ref("other"),
                "ntf_1",
                ReceiverQuery(),
                sends=stores.sends,
                batches=stores.batches,
                notifications=stores.notifications,
            )

    async def test_the_csv_export_streams_chunk_by_chunk_and_defuses_formulas(
        self, stores: Stores
    ) -> None:
        uids = [f"u{i}" for i in range(7)]
        stores.users(*uids, "-2+3")
        chunks = [uids[0:3], uids[3:6], [uids[6], "-2+3", "=cmd"]]
        await stores.register("bat_1", *chunks)
        await stores.dispatch("bat_1", *chunks)
        app = http.create_app(
            "t", "t", lifespan("t", []), errors=ERRORS, readiness={}, internal_token="x" * 32
        )
        app.include_router(routes.router(stores.sends, stores.batches, stores.notifications))

        text = await _get(app, f"/internal/apps/{stores.app}/sends/bat_1/receivers.csv")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == [
            "uid",
            "channel_type",
            "channel_id",
            "status",
            "code",
            "message",
            "updated_at",
        ]
        assert [row[0] for row in rows[1:]] == [*uids, "'-2+3", "'=cmd"]
        assert rows[-1][3:5] == ["failed", "ERR_USER_NOT_FOUND"]
        failed = await _get(
            app, f"/internal/apps/{stores.app}/sends/bat_1/receivers.csv?status=failed"
        )
        assert len(failed.strip().splitlines()) == 2
        missing = await _get(app, f"/internal/apps/{stores.app}/sends/nope/receivers.csv", 404)
        assert "ERR_NOT_FOUND" in missing


async def _get(app: FastAPI, path: str, status: int = 200) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(path, headers={"X-Clarion-Internal-Token": "x" * 32})
    assert response.status_code == status, response.text
    return response.text


class TestInMemorySendsListing(SendsListingSuite):
    @pytest.fixture
    def stores(self) -> Stores:
        sends = InMemorySends()
        return Stores(InMemoryNotifications(sends=sends), InMemoryBatches(sends), sends)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = random_ref("dispatcher_sends").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.mark.integration
class TestMongoSendsListing(SendsListingSuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def stores(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> Stores:
        sends = MongoSends(mongo_db)
        notifications = MongoNotifications(mongo_db, sends)
        batches_repo = MongoBatches(mongo_db, sends)
        for repo in (sends, notifications, batches_repo):
            await repo.start()
        return Stores(notifications, batches_repo, sends)
