"""The deliveries collection (``delivery/mongo.py``, and its in-memory twin) and what
reads show of it: a queued notification's state once its worker finished it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from clarion_devtools.helpers import logged_client, random_ref
from clarion_devtools.localinfra import InfraAddresses
from clarion_dispatcher.delivery.models import DeliveryOutcome
from clarion_dispatcher.delivery.mongo import MongoDeliveries
from clarion_dispatcher.delivery.service import DeliveryLog
from clarion_dispatcher.notifications.delivered import DeliveredRecords
from clarion_dispatcher.notifications.models import NotificationRecord
from clarion_dispatcher.notifications.service import get_notification
from clarion_dispatcher.sends.service import refresh_realtime
from clarion_dispatcher.testing import InMemoryNotifications
from clarion_dispatcher.testing.deliveries import InMemoryDeliveries
from clarion_dispatcher.testing.sends import InMemorySends
from clarion_shared.contracts.base import ErrorInfo


def outcome(job: str, *, send: str = "s1", chunk: int = 0, **changes: Any) -> DeliveryOutcome:
    """Job ids are unique per send (as derived ones are): ``<send>/<job>``."""
    fields: dict[str, Any] = {
        "job_id": job if send == "s1" else f"{send}/{job}",
        "app_id": "app1",
        "send_id": send,
        "chunk": chunk,
        "uid": f"u-{job}",
        "channel_type": "email",
        "channel_id": "email-1",
        "status": "sent",
        "at": 10,
        **changes,
    }
    return DeliveryOutcome.model_validate(fields)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = random_ref("delivery_log").replace("-", "_")
    yield mongo_client[name]
    await mongo_client.drop_database(name)


class DeliveryLogSuite:
    @pytest.fixture
    def log(self) -> DeliveryLog:
        raise NotImplementedError

    async def test_outcomes_are_read_per_chunk_and_written_once(self, log: DeliveryLog) -> None:
        send = random_ref("send")
        await log.record([outcome("a", send=send), outcome("b", send=send, chunk=1)])
        failed = ErrorInfo(code="SMTP_550", message="no")
        await log.record([outcome("a", send=send, status="failed", error=failed)])
        found = await log.of_chunks([("app1", send, 0), ("app1", send, 1)])
        assert {job: o.status for job, o in found.items()} == {
            f"{send}/a": "sent",
            f"{send}/b": "sent",
        }
        assert await log.of_chunks([("other-app", send, 0)]) == {}

    async def test_a_claim_is_held_once_per_attempt(self, log: DeliveryLog) -> None:
        send = random_ref("send")
        assert await log.claim([outcome("a", send=send), outcome("b", send=send)]) == set()
        taken = await log.claim([outcome("a", send=send), outcome("c", send=send)])
        assert taken == {f"{send}/a"}
        assert await log.claim([outcome("a", send=send, attempts=2)]) == set()
        a = f"{send}/a"
        found = await log.of_chunks([("app1", send, 0)])
        assert found[a].status == "committing"
        assert found[a].attempts == 2  # the latest attempt's claim
        await log.record([outcome("a", send=send, provider_id="q-1")])
        found = await log.of_chunks([("app1", send, 0)])
        assert found[a].status == "sent"  # an outcome wins over claims
        assert found[a].provider_id == "q-1"

    async def test_outcomes_by_job_leave_claims_out(self, log: DeliveryLog) -> None:
        send = random_ref("send")
        await log.claim([outcome("claimed", send=send)])
        await log.record([outcome("done", send=send, provider_id="p")])
        done = f"{send}/done"
        found = await log.of_jobs("app1", [f"{send}/claimed", done, f"{send}/unknown"])
        assert list(found) == [done]
        assert await log.of_jobs("other-app", [done]) == {}


class TestInMemoryDeliveryLog(DeliveryLogSuite):
    @pytest.fixture
    def log(self) -> DeliveryLog:
        return InMemoryDeliveries()


@pytest.mark.integration
class TestMongoDeliveryLog(DeliveryLogSuite):
    @pytest_asyncio.fixture(loop_scope="session")
    async def log(  # type: ignore[override]
        self, mongo_db: AsyncDatabase[dict[str, Any]]
    ) -> MongoDeliveries:
        log = MongoDeliveries(mongo_db)
        await log.start()
        return log


@pytest.mark.integration
async def test_a_chunks_read_is_one_indexed_equality(
    infra: InfraAddresses, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    """On the embedded FerretDB an equality read is found by the GIN twin of an index's
    leading field only: a read by ``send_id`` and ``chunk`` went through all of the
    send's documents (20,000 for a 10,000-email send, at every fetch of its worker)."""
    async with logged_client(infra.mongodb_url) as (client, commands):
        log = MongoDeliveries(client[mongo_db.name])
        await log.start()
        send = random_ref("send")
        await log.record([outcome(f"j{n}", send=send, chunk=n % 4) for n in range(40)])
        await log.claim([outcome("k", send=send, chunk=2)])
        commands.clear()
        found = await log.of_chunks([("app1", send, 2)])
        assert sorted(found) == sorted([f"{send}/k", *(f"{send}/j{n}" for n in range(2, 40, 4))])
        [where] = [cmd["filter"] for name, cmd in commands.sent if name == "find"]
        [(field, _)] = where.items()
        indexes = await client[mongo_db.name]["deliveries"].index_information()
        assert [(field, 1)] in [index["key"] for index in indexes.values()]


def record(uid: str, channel_type: str, status: str) -> NotificationRecord:
    return NotificationRecord.model_validate(
        {
            "id": f"{uid}-{channel_type}",
            "app_id": "app1",
            "send_id": "s1",
            "mode": "realtime",
            "uid": uid,
            "channel_type": channel_type,
            "channel_id": f"{channel_type}-1",
            "template_id": "t",
            "template_version": 1,
            "status": status,
            "created_at": 1,
            "updated_at": 1,
        }
    )


async def test_a_notification_shows_each_delivery_as_its_worker_recorded_it() -> None:
    notifications = InMemoryNotifications()
    await notifications.add_many(
        [
            record("u1", "in_app", "sent"),
            record("u1", "email", "queued"),
            record("u1", "push", "queued"),
            record("u1", "sms", "queued"),
        ]
    )
    deliveries = InMemoryDeliveries()
    gone = ErrorInfo(code="ERR_INVALID_PUSH_TOKEN", message="every token was unregistered")
    await deliveries.record(
        [
            outcome("u1-email", provider_id="q-7", attempts=2),
            outcome("u1-push", status="failed", error=gone),
        ]
    )
    await deliveries.claim([outcome("u1-sms")])  # in flight: still queued
    shown = await get_notification("app1", "s1", notifications=notifications, deliveries=deliveries)
    [receiver] = shown.receivers
    states = {c.channel_type: c for c in receiver.channels}
    assert states["in_app"].status == "sent"
    assert (states["email"].status, states["email"].provider_id) == ("sent", "q-7")
    assert states["email"].attempts == 2
    assert (states["push"].status, states["push"].code) == ("failed", "ERR_INVALID_PUSH_TOKEN")
    assert states["sms"].status == "queued"


async def test_a_realtime_sends_entry_follows_its_deliveries() -> None:
    sends = InMemorySends()
    notifications = InMemoryNotifications(sends=sends)
    await notifications.add_many([record("u1", "in_app", "sent"), record("u1", "email", "queued")])
    [entry] = sends.entries.values()
    assert (entry.status, entry.pending) == ("dispatching", 1)
    deliveries = InMemoryDeliveries()
    failed = ErrorInfo(code="SMTP_550", message="no such mailbox")
    await deliveries.record([outcome("u1-email", status="failed", error=failed)])
    delivered = DeliveredRecords(notifications, deliveries)
    await refresh_realtime([("app1", "s1")], notifications=delivered, sends=sends)
    [entry] = sends.entries.values()
    assert (entry.status, entry.sent, entry.pending) == ("completed", 1, 0)  # in_app sent
    [email, _] = sorted(await delivered.for_send("app1", "s1"), key=lambda r: r.channel_type)
    assert email.channel_type == "email"
    assert email.status == "failed"
    assert email.error == failed
