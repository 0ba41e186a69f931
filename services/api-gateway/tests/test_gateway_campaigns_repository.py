"""The campaign repositories, run against the in-memory fakes and against Mongo (FerretDB):
among them, receivers settled in a chunk's report (a report and a settlement of one
chunk, in either order, keep both; a repeat writes the same; only the chunks asked are
read)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_gateway.campaigns.audience import AudienceLocks, RecipientRepository
from clarion_gateway.campaigns.domain import Campaign, CampaignCounts, Recipient
from clarion_gateway.campaigns.mongo import MongoAudienceLocks, MongoCampaigns, MongoRecipients
from clarion_gateway.campaigns.service import CampaignRepository
from clarion_gateway.campaigns.tracking import (
    ChunkReport,
    Mark,
    Settled,
    Settlement,
    TrackingRepository,
    receiver_states,
)
from clarion_gateway.campaigns.tracking_mongo import MongoCampaignTracking
from clarion_gateway.testing import (
    MemoryAudienceLocks,
    MemoryCampaigns,
    MemoryCampaignTracking,
    MemoryRecipients,
)
from clarion_shared.contracts.status import ChannelTally, ReceiverState


@dataclass(frozen=True)
class Store:
    campaigns: CampaignRepository
    recipients: RecipientRepository
    locks: AudienceLocks
    tracking: TrackingRepository


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> tuple[AsyncMongoClient[dict[str, Any]], str] | None:
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def store(
    target: tuple[AsyncMongoClient[dict[str, Any]], str] | None,
) -> AsyncIterator[Store]:
    if target is None:
        yield Store(
            MemoryCampaigns(), MemoryRecipients(), MemoryAudienceLocks(), MemoryCampaignTracking()
        )
        return
    client, db_name = target
    db = client[db_name]
    made = Store(
        MongoCampaigns(db), MongoRecipients(db), MongoAudienceLocks(db), MongoCampaignTracking(db)
    )
    await made.campaigns.start()
    await made.recipients.start()
    await made.tracking.start()
    try:
        yield made
    finally:
        await client.drop_database(db_name)


def _campaign(campaign_id: str = "cmp_1", **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "app_id": "app",
        "campaign_id": campaign_id,
        "name": "Sale",
        "template_id": "promo",
        "template_version": 2,
        "status": "draft",
        "created_at": 10,
        "updated_at": 10,
        "variables": {"promo": "X", "n": 3, "nested": {"a": [1, None]}},
        "tag": "q3",
        "config": {"k.with.dots": "$v"},
        "total_targets": 5,
        "counts": CampaignCounts(sent=1, delivered=2, failed=3, read=4),
    }
    values.update(fields)
    return Campaign(**values)


async def test_a_campaign_round_trips_and_saves_only_from_its_revision(store: Store) -> None:
    campaign = _campaign()
    assert await store.campaigns.insert(campaign)
    assert not await store.campaigns.insert(campaign)
    assert await store.campaigns.get("app", "cmp_1") == campaign
    assert await store.campaigns.get("other", "cmp_1") is None
    renamed = replace(campaign, name="New", scheduled_at=99, status="scheduled")
    assert await store.campaigns.replace(renamed)
    assert not await store.campaigns.replace(renamed)  # its revision moved on
    stored = await store.campaigns.get("app", "cmp_1")
    assert stored == replace(renamed, revision=1)
    assert not await store.campaigns.delete(campaign)  # an old revision
    assert stored is not None
    assert await store.campaigns.delete(stored)
    assert await store.campaigns.get("app", "cmp_1") is None


async def test_campaigns_are_listed_per_app(store: Store) -> None:
    await store.campaigns.insert(_campaign("cmp_1"))
    await store.campaigns.insert(_campaign("cmp_2"))
    await store.campaigns.insert(_campaign("cmp_3", app_id="other"))
    listed = await store.campaigns.list_for_app("app")
    assert sorted(c.campaign_id for c in listed) == ["cmp_1", "cmp_2"]


def _recipient(uid: str, campaign_id: str = "cmp_1", **fields: Any) -> Recipient:
    values: dict[str, Any] = {
        "app_id": "app",
        "campaign_id": campaign_id,
        "uid": uid,
        "seq": 0,
        "created_at": 10,
        "updated_at": 10,
        "variables": {"name": uid.upper()},
    }
    values.update(fields)
    return Recipient(**values)


async def test_recipients_are_added_once_and_listed_per_campaign(store: Store) -> None:
    await store.recipients.add([_recipient("a"), _recipient("b", seq=1)])
    await store.recipients.add([_recipient("x", campaign_id="cmp_2")])
    # A retried addition: what is there stays as it was, the rest is added.
    await store.recipients.add(
        [_recipient("b", seq=7, variables={"name": "changed"}), _recipient("c", seq=2)]
    )
    assert await store.recipients.uids("app", "cmp_1") == {"a", "b", "c"}
    listed = {r.uid: r for r in await store.recipients.list("app", "cmp_1")}
    assert listed["b"] == _recipient("b", seq=1)
    assert listed["a"].recipient_id.startswith("rcp_")
    await store.recipients.delete_all("app", "cmp_1")
    assert await store.recipients.uids("app", "cmp_1") == set()
    assert await store.recipients.uids("app", "cmp_2") == {"x"}


async def test_a_thousand_and_one_recipients_are_written(store: Store) -> None:
    added = [_recipient(f"u{i}", seq=i) for i in range(1001)]
    await store.recipients.add(added)
    assert len(await store.recipients.uids("app", "cmp_1")) == 1001
    listed = sorted(await store.recipients.list("app", "cmp_1"), key=lambda r: r.seq)
    assert listed == added


async def test_recipients_with_large_variables_are_all_kept(store: Store) -> None:
    big = {"note": "x" * 30_000, "k.with.dots": {"$v": [1, None]}}
    added = [_recipient(f"u{i}", seq=i, variables=big) for i in range(300)]  # ~9 MB
    await store.recipients.add(added)
    listed = sorted(await store.recipients.list("app", "cmp_1"), key=lambda r: r.seq)
    assert listed == added


@pytest.mark.integration
async def test_an_audience_written_one_document_per_recipient_still_reads(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> None:
    """Audiences stored before pages (one document per recipient) read as they were."""
    db = mongo_client[test_db_name]
    try:
        await db["campaign_recipients"].insert_one(
            {
                "_id": "old-1",
                "campaign_key": "app:cmp_old",
                "app_id": "app",
                "campaign_id": "cmp_old",
                "uid": "zoe",
                "seq": 0,
                "variables": '{"name":"Zoe"}',
                "status": "pending",
                "created_at": 5,
                "updated_at": 6,
            }
        )
        recipients = MongoRecipients(db)
        await recipients.add([_recipient("amy", "cmp_old", seq=1), _recipient("zoe", "cmp_old")])
        listed = sorted(await recipients.list("app", "cmp_old"), key=lambda r: r.seq)
        assert [(r.uid, r.variables, r.created_at) for r in listed] == [
            ("zoe", {"name": "Zoe"}, 5),
            ("amy", {"name": "AMY"}, 10),
        ]
    finally:
        await mongo_client.drop_database(test_db_name)


async def test_the_audience_lock_has_one_holder_until_released_or_expired(store: Store) -> None:
    assert await store.locks.acquire("app", "cmp_1", "one", now=100, lease_s=60)
    assert not await store.locks.acquire("app", "cmp_1", "two", now=120, lease_s=60)
    assert await store.locks.acquire("app", "cmp_2", "two", now=120, lease_s=60)
    await store.locks.release("app", "cmp_1", "two")  # not its lock: nothing happens
    assert not await store.locks.acquire("app", "cmp_1", "three", now=130, lease_s=60)
    await store.locks.release("app", "cmp_1", "one")
    assert await store.locks.acquire("app", "cmp_1", "three", now=130, lease_s=60)
    # A holder that died: its lease runs out and another takes the lock.
    assert await store.locks.acquire("app", "cmp_1", "four", now=191, lease_s=60)
    await store.locks.release("app", "cmp_1", "three")  # the dead one's late release
    assert not await store.locks.acquire("app", "cmp_1", "five", now=200, lease_s=60)


def _report(chunk: int, campaign_id: str = "cmp_1", **fields: Any) -> ChunkReport:
    values: dict[str, Any] = {
        "app_id": "app",
        "campaign_id": campaign_id,
        "chunk": chunk,
        "at": 100 + chunk,
        "receivers": (
            ReceiverState(uid=f"u{chunk}", status="sent"),
            ReceiverState(uid=f"x{chunk}", status="failed", code="ERR_X", message="why"),
        ),
        "channels": (ChannelTally(channel_type="in_app", channel_id="ch", sent=1, failed=1),),
    }
    values.update(fields)
    return ChunkReport(**values)


async def test_chunk_reports_are_kept_once_per_chunk_and_listed_in_order(store: Store) -> None:
    await store.tracking.put_reports([_report(1), _report(0), _report(0, "cmp_2")])
    again = _report(1, receivers=(ReceiverState(uid="u1", status="pending"),))
    await store.tracking.put_reports([again])  # a later report of a chunk replaces it
    found = await store.tracking.reports("app", "cmp_1")
    assert found == [_report(0), again]
    assert await store.tracking.reports("other", "cmp_1") == []
    await store.tracking.put_reports([])  # nothing to write: no request
    assert len(await store.tracking.reports("app", "cmp_1")) == 2


async def test_marks_are_inserted_once_and_counted_per_kind_and_channel(store: Store) -> None:
    marks = [
        Mark("app", "cmp_1", uid, channel, "delivered", 5)
        for uid in ("a", "b", "c")
        for channel in ("ch", "*")
    ]
    await store.tracking.mark(marks)
    await store.tracking.mark([*marks, Mark("app", "cmp_1", "a", "*", "read", 6)])
    assert await store.tracking.marked("app", "cmp_1", "delivered", "*") == 3
    assert await store.tracking.marked("app", "cmp_1", "delivered", "ch") == 3
    assert await store.tracking.marked("app", "cmp_1", "read", "*") == 1
    assert await store.tracking.marked("app", "cmp_1", "read", "ch") == 0
    assert await store.tracking.marked("app", "cmp_2", "delivered", "*") == 0


def _pending_report(chunk: int, campaign_id: str = "cmp_1") -> ChunkReport:
    return ChunkReport(
        app_id="app",
        campaign_id=campaign_id,
        chunk=chunk,
        at=100,
        receivers=(
            ReceiverState(uid=f"a{chunk}", status="sent"),
            ReceiverState(uid=f"b{chunk}", status="pending"),
            ReceiverState(uid=f"c{chunk}", status="pending"),
        ),
        channels=(ChannelTally(channel_type="email", channel_id="mail", sent=1, queued=2),),
    )


def _settlement(chunk: int, *states: ReceiverState, at: int = 200) -> Settlement:
    return Settlement("app", "cmp_1", chunk, at, states)


SENT_B = ReceiverState(uid="b0", status="sent")
FAILED_C = ReceiverState(uid="c0", status="failed", code="ERR_PROVIDER", message="550 no")
# A uid that is no safe field name (a dot, a dollar): stored all the same.
ODD = ReceiverState(uid="$odd.uid", status="sent")


# ---------------------------------------------------------------- settled receivers


async def test_a_report_written_after_a_settlement_keeps_it(store: Store) -> None:
    await store.tracking.settle([_settlement(0, SENT_B, ODD), _settlement(0, FAILED_C, at=210)])
    [early] = await store.tracking.chunk_reports("app", "cmp_1", [0])
    assert (early.receivers, early.channels, early.at) == ((), (), 0)
    assert early.settled == (Settled(ODD, 200), Settled(SENT_B, 200), Settled(FAILED_C, 210))

    await store.tracking.put_reports([_pending_report(0)])
    await store.tracking.put_reports([_pending_report(0)])  # a replayed ChunkDispatched
    [joined] = await store.tracking.reports("app", "cmp_1")
    assert joined.receivers == _pending_report(0).receivers
    assert joined.settled == early.settled
    states = {uid: s.state.status for uid, s in receiver_states(joined).items()}
    assert states == {"a0": "sent", "b0": "sent", "c0": "failed", "$odd.uid": "sent"}


async def test_a_settlement_written_after_a_report_joins_it(store: Store) -> None:
    await store.tracking.put_reports([_pending_report(0), _pending_report(1)])
    await store.tracking.settle([_settlement(0, SENT_B)])
    await store.tracking.settle([_settlement(0, SENT_B)])  # redelivered: the same
    await store.tracking.settle([_settlement(1)])  # nothing settled: nothing written
    found = {r.chunk: r for r in await store.tracking.chunk_reports("app", "cmp_1", [1, 0, 1])}
    assert found[0].settled == (Settled(SENT_B, 200),)
    assert found[1] == _pending_report(1)
    assert [r.chunk for r in await store.tracking.chunk_reports("app", "cmp_1", [1])] == [1]
    assert await store.tracking.chunk_reports("app", "cmp_1", [7]) == []
    assert await store.tracking.chunk_reports("other", "cmp_1", [0]) == []
