"""The deliveries' outcome marks in the tracking repository, on the in-memory fake and on
Mongo (FerretDB): one per notification whichever outcome came first, in a call or
across calls, counted per kind and channel beside the feed items' delivered and read
marks, which keep their ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_gateway.campaigns.mongo import campaign_key
from clarion_gateway.campaigns.tracking import Mark, MarkKind, TrackingRepository
from clarion_gateway.campaigns.tracking_mongo import MongoCampaignTracking
from clarion_gateway.testing import MemoryCampaignTracking
from clarion_shared.ids import derive_id

Mongo = tuple[AsyncMongoClient[dict[str, Any]], str]


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> Mongo | None:
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def tracking(target: Mongo | None) -> AsyncIterator[TrackingRepository]:
    if target is None:
        yield MemoryCampaignTracking()
        return
    client, db_name = target
    made = MongoCampaignTracking(client[db_name])
    await made.start()
    try:
        yield made
    finally:
        await client.drop_database(db_name)


def _outcome(uid: str, kind: MarkKind, campaign_id: str = "cmp_1", channel: str = "mail") -> Mark:
    return Mark("app", campaign_id, uid, channel, kind, 5, notification_id=f"n-{uid}-{channel}")


async def _counts(tracking: TrackingRepository, channel: str = "mail") -> tuple[int, ...]:
    kinds: tuple[MarkKind, ...] = ("sent", "failed", "delivered", "read")
    return tuple([await tracking.marked("app", "cmp_1", kind, channel) for kind in kinds])


async def test_an_outcome_is_marked_once_per_notification(tracking: TrackingRepository) -> None:
    await tracking.mark(
        [
            _outcome("a", "sent"),
            _outcome("a", "failed"),  # the same delivery, after: left as sent
            _outcome("b", "failed"),
            _outcome("c", "sent"),
            _outcome("c", "sent", channel="sms"),  # c's other delivery
            _outcome("d", "sent", campaign_id="cmp_2"),
            # A feed item's delivered mark of a on that channel is another mark.
            Mark("app", "cmp_1", "a", "mail", "delivered", 6),
        ]
    )
    # Redelivered and republished: nothing more, nothing changed.
    await tracking.mark([_outcome("b", "sent"), _outcome("c", "sent"), _outcome("a", "failed")])
    assert await _counts(tracking) == (2, 1, 1, 0)
    assert await _counts(tracking, "sms") == (1, 0, 0, 0)
    assert await tracking.marked("app", "cmp_2", "sent", "mail") == 1


async def test_a_fetch_of_more_outcomes_than_one_write_is_each_counted_once(
    tracking: TrackingRepository,
) -> None:
    first = [_outcome(f"u{i}", "sent" if i % 3 else "failed") for i in range(1_200)]
    # Repeats past the first write's thousand, the other way: the first stays.
    again = [_outcome(f"u{i}", "failed" if i % 3 else "sent") for i in range(900, 1_200)]
    await tracking.mark(first + again)
    await tracking.mark(again)
    assert await _counts(tracking) == (800, 400, 0, 0)


@pytest.mark.integration
async def test_marks_keep_their_ids_and_an_outcome_names_its_notification(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> None:
    db = mongo_client[test_db_name]
    tracking = MongoCampaignTracking(db)
    await tracking.start()
    try:
        read = Mark("app", "cmp_1", "a", "mail", "read", 6)
        await tracking.mark([read, _outcome("a", "sent")])
        marks = db["campaign_marks"]
        # A delivered or read mark's id is what it was before outcomes were kept.
        assert await marks.find_one({"_id": derive_id("app", "cmp_1", "a", "mail", "read")})
        outcome = await marks.find_one({"_id": derive_id("app", "cmp_1", "delivery", "n-a-mail")})
        assert outcome is not None
        assert {k: outcome[k] for k in ("campaign_key", "kind", "channel_id", "uid")} == {
            "campaign_key": campaign_key("app", "cmp_1"),
            "kind": "sent",
            "channel_id": "mail",
            "uid": "a",
        }
        assert outcome["notification_id"] == "n-a-mail"
    finally:
        await mongo_client.drop_database(test_db_name)
