"""The category repository suite, run against the in-memory fake and against Mongo
(FerretDB): the fake cannot drift from the real adapter. The concurrency tests run
the use cases on both, so a duplicate under concurrent requests would show on the
real database too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_gateway.categories import service
from clarion_gateway.categories.domain import (
    DEFAULT_NAMES,
    AppCategories,
    Category,
    CategoryNameTaken,
)
from clarion_gateway.categories.mongo import MongoCategories
from clarion_gateway.categories.service import CategoryRepository
from clarion_gateway.testing import MemoryCategories

MongoTarget = tuple[AsyncMongoClient[dict[str, Any]], str] | None


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> MongoTarget:
    # Resolved in a plain (sync) fixture: the infra fixture cannot start from inside
    # the running event loop of an async one.
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def repo(target: MongoTarget) -> AsyncIterator[CategoryRepository]:
    if target is None:
        yield MemoryCategories()
        return
    client, db_name = target
    mongo = MongoCategories(client[db_name])
    await mongo.start()
    yield mongo
    await mongo.stop()
    await client.drop_database(db_name)


async def test_insert_get_and_conditional_replace(repo: CategoryRepository) -> None:
    app_id = random_ref("app")
    assert await repo.get(app_id) is None
    cats = AppCategories.defaults(app_id, 10)
    cats, _ = cats.add("Billing", "Invoices", 11)
    assert await repo.insert(cats)
    assert not await repo.insert(AppCategories.defaults(app_id, 12))  # exists: untouched
    stored = await repo.get(app_id)
    assert stored == cats
    assert stored.categories[-1] == Category("billing", "Billing", "Invoices", 11, 11)
    assert stored.categories[0].default

    renamed, _ = stored.remove("billing")
    assert await repo.replace(renamed)
    assert not await repo.replace(renamed)  # stale revision: refused
    after = await repo.get(app_id)
    assert after is not None
    assert after.revision == 1
    assert [c.name for c in after.categories] == list(DEFAULT_NAMES)
    assert await repo.get(random_ref("app")) is None  # per app


async def test_concurrent_first_reads_make_one_set_of_defaults(repo: CategoryRepository) -> None:
    app_id = random_ref("app")
    sets = await asyncio.gather(*(service.app_categories(repo, app_id, now=n) for n in range(10)))
    stored = await repo.get(app_id)
    assert stored is not None
    assert [c.name for c in stored.categories] == list(DEFAULT_NAMES)
    assert all(s.categories == stored.categories for s in sets)


async def test_concurrent_creates_keep_names_unique(repo: CategoryRepository) -> None:
    app_id = random_ref("app")
    same = await asyncio.gather(
        *(service.create_category(repo, app_id, "Billing", None, now=1) for _ in range(6)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Category) for r in same) == 1
    assert sum(isinstance(r, CategoryNameTaken) for r in same) == 5
    names = [f"Name {i}" for i in range(10)]
    await asyncio.gather(
        *(service.ensure_category(repo, app_id, name, now=2, field="x") for name in names)
    )
    stored = await repo.get(app_id)
    assert stored is not None
    stored_names = [c.name for c in stored.categories]
    assert len(stored_names) == len(set(stored_names)) == 7 + 1 + 10
    assert set(names) <= set(stored_names)


@pytest.mark.integration
async def test_a_dead_writers_claim_blocks_saves_only_for_its_lease(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> None:
    """The claim that makes saves atomic on FerretDB: one a crashed writer left (made,
    never followed by its replace) is taken over once older than the lease."""
    db = mongo_client[test_db_name]
    app_id = random_ref("app")
    repo = MongoCategories(db, claim_lease_s=30)
    cats = AppCategories.defaults(app_id, 1)
    assert await repo.insert(cats)
    claims = db["template_category_claims"]
    await claims.insert_one({"_id": f"{app_id}@1", "claimed_at": time.time()})
    assert not await repo.replace(cats)  # a live claim: another writer's turn
    await claims.update_one({"_id": f"{app_id}@1"}, {"$set": {"claimed_at": time.time() - 60}})
    changed, _ = cats.add("Billing", None, 2)
    assert await repo.replace(changed)  # the dead one's, taken over
    stored = await repo.get(app_id)
    assert stored is not None
    assert stored.revision == 1
    assert stored.named("Billing") is not None
    # The next save clears the claim of this one; its own stays until the one after.
    assert await repo.replace(stored)
    assert await claims.find_one({"_id": f"{app_id}@1"}) is None
    assert await claims.find_one({"_id": f"{app_id}@2"}) is not None
    await mongo_client.drop_database(test_db_name)
