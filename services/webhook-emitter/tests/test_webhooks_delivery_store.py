"""The deliveries' storage, held to one suite on the fake and on the real database:
records written once, an operator's claim refused while pending, intakes and their
owners, heartbeats and takeover locks, endpoint health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_webhooks.deliveries.domain import Attempt, Delivery
from clarion_webhooks.deliveries.mongo import MongoDeliveries, MongoInstances
from clarion_webhooks.deliveries.recovery import InstanceRegistry
from clarion_webhooks.deliveries.service import DeliveryRepository
from clarion_webhooks.endpoints.mongo import MongoEndpointRepository
from clarion_webhooks.endpoints.service import EndpointRepository
from clarion_webhooks.testing import (
    InMemoryDeliveries,
    InMemoryEndpointRepository,
    InMemoryInstances,
)

Stores = tuple[DeliveryRepository, InstanceRegistry, EndpointRepository]


@pytest_asyncio.fixture(loop_scope="session")
async def mongo_stores(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> AsyncIterator[Stores]:
    db = mongo_client[test_db_name]
    stores = (MongoDeliveries(db), MongoInstances(db), MongoEndpointRepository(db))
    for store in stores:
        await store.start()
    try:
        yield stores
    finally:
        await mongo_client.drop_database(test_db_name)


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def stores(request: pytest.FixtureRequest) -> Stores:
    if request.param == "memory":
        return InMemoryDeliveries(), InMemoryInstances(), InMemoryEndpointRepository()
    found: Stores = request.getfixturevalue("mongo_stores")
    return found


def delivery(app_id: str, n: int, webhook_id: str = "w1") -> Delivery:
    return Delivery(
        msg_id=f"msg_{n}",
        app_id=app_id,
        webhook_id=webhook_id,
        trigger="after_feed_item_sent",
        body='{"trigger":"after_feed_item_sent"}',
        created_at=100 + n,
        updated_at=100 + n,
    )


ATTEMPT = Attempt(at=200, status_code=500, error=None, duration_ms=3, response="no")


async def test_a_record_is_written_once_and_updated_by_later_attempts(stores: Stores) -> None:
    deliveries, _, _ = stores
    app = random_ref("app")
    first = replace(delivery(app, 1), status="succeeded", attempts=(ATTEMPT,))
    await deliveries.record_first([first, delivery(app, 2)], "p1")
    await deliveries.record_first([replace(first, status="failed")], "p2")  # a replay
    stored = await deliveries.get(first.id)
    assert stored == first
    assert await deliveries.recorded(first.id)
    assert not await deliveries.recorded(delivery(app, 3).id)

    later = replace(delivery(app, 2), attempts=(ATTEMPT, ATTEMPT), next_attempt_at=300)
    await deliveries.save(later, "p2")
    assert await deliveries.get(later.id) == later
    assert [d.msg_id for d in await deliveries.pending_of("p2")] == ["msg_2"]
    assert await deliveries.pending_of("p1") == []
    by_status = await deliveries.of_endpoint(f"{app}:w1", "succeeded")
    assert [d.msg_id for d in by_status] == ["msg_1"]
    assert len(await deliveries.of_endpoint(f"{app}:w1", None)) == 2


async def test_a_claim_is_refused_while_the_delivery_is_pending(stores: Stores) -> None:
    deliveries, _, _ = stores
    app = random_ref("app")
    done = replace(delivery(app, 1), status="failed", attempts=(ATTEMPT,))
    await deliveries.record_first([done, delivery(app, 2)], "p1")
    again = replace(done, status="pending", kind="manual")
    assert await deliveries.claim(again, "p9")
    assert not await deliveries.claim(again, "p9")
    assert not await deliveries.claim(replace(delivery(app, 2), kind="manual"), "p9")
    assert [d.msg_id for d in await deliveries.pending_of("p9")] == ["msg_1"]


async def test_intakes_belong_to_an_owner_until_moved_or_dropped(stores: Stores) -> None:
    deliveries, _, _ = stores
    owner = random_ref("p")
    app = random_ref("app")
    await deliveries.add_intake("in_" + owner, owner, [delivery(app, 1), delivery(app, 2)])
    [(intake_id, items)] = await deliveries.intakes_of(owner)
    assert [d.msg_id for d in items] == ["msg_1", "msg_2"]
    assert items[0].body == delivery(app, 1).body
    await deliveries.move_intake(intake_id, owner + "-b")
    assert await deliveries.intakes_of(owner) == []
    await deliveries.drop_intake(intake_id)
    assert await deliveries.intakes_of(owner + "-b") == []


async def test_one_process_takes_over_a_dead_one(stores: Stores) -> None:
    _, instances, _ = stores
    dead, a, b = random_ref("dead"), random_ref("a"), random_ref("b")
    await instances.beat(dead, 5)
    assert (await instances.alive_until())[dead] == 5
    assert await instances.lock(dead, a)
    assert not await instances.lock(dead, b)
    assert await instances.holder(dead) == a
    await instances.unlock(dead, b)  # only the holder's lock is released
    assert await instances.holder(dead) == a
    await instances.unlock(dead, a)
    assert await instances.lock(dead, b)
    await instances.forget(dead)
    assert dead not in await instances.alive_until()
    assert await instances.holder(dead) is None


async def test_an_endpoint_fails_since_its_first_failure_until_a_success(stores: Stores) -> None:
    _, _, endpoints = stores
    key = random_ref("app") + ":w1"
    assert await endpoints.failing_since(key) is None
    assert await endpoints.mark_failing(key, 10) == 10
    assert await endpoints.mark_failing(key, 20) == 10
    await endpoints.mark_healthy(key)
    assert await endpoints.failing_since(key) is None
