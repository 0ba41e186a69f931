"""The GIN twins of FerretDB's indexes (deploy/local/ferretdb-gin.sql, installed by
``infra.sh up``): the equality filters of the hot paths are answered from an index, not
by reading the whole table. Checked with FerretDB's ``explain``, which shows
PostgreSQL's plan. Skipped on a real MongoDB (``MONGODB_URL``), which needs no twins.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient

pytestmark = pytest.mark.integration

Client = AsyncMongoClient[dict[str, Any]]
ROWS = 3000


async def plan_of(client: Client, db: str, collection: str, filter_: dict[str, Any]) -> str:
    explained = await client[db].command(
        "explain", {"find": collection, "filter": filter_}, verbosity="queryPlanner"
    )
    return json.dumps(explained["queryPlanner"])


@pytest.fixture
async def ferretdb(mongo_client: Client) -> Client:
    info = await mongo_client.admin.command("buildInfo")
    if "ferretdbVersion" not in info:
        pytest.skip("not FerretDB: MongoDB serves these filters from its own indexes")
    return mongo_client


async def test_id_reads_and_leading_field_equalities_use_a_gin_index(
    ferretdb: Client, test_db_name: str
) -> None:
    feed = ferretdb[test_db_name]["feed_items"]
    # The index the dispatcher's feed declares (owner, newest first).
    await feed.create_index([("owner", ASCENDING), ("sort_key", DESCENDING)], name="owner_newest")
    await feed.insert_many(
        [{"_id": f"item-{n}", "owner": f"app:u{n % 300}", "sort_key": n} for n in range(ROWS)]
    )
    try:
        by_id = await plan_of(ferretdb, test_db_name, "feed_items", {"_id": "item-7"})
        by_owner = await plan_of(
            ferretdb, test_db_name, "feed_items", {"owner": "app:u7", "read": False}
        )
        # A field no index leads with is still read from the whole table.
        unindexed = await plan_of(ferretdb, test_db_name, "feed_items", {"sort_key": 7})
        found = await feed.find({"owner": "app:u7"}).to_list(None)
    finally:
        await ferretdb.drop_database(test_db_name)

    assert "Bitmap Index Scan" in by_id, by_id
    assert "__id__" in by_id, by_id
    assert "_gin" in by_id, by_id
    assert "Bitmap Index Scan" in by_owner, by_owner
    assert "owner_newest" in by_owner, by_owner
    assert "_gin" in by_owner, by_owner
    assert "Seq Scan" in unindexed, unindexed
    assert len(found) == ROWS // 300  # the index answers right, not only fast


async def test_a_compound_index_twins_its_leading_field_only(
    ferretdb: Client, test_db_name: str
) -> None:
    users = ferretdb[test_db_name]["users"]
    # The user-directory's index: app, then the list order.
    await users.create_index(
        [("app_id", ASCENDING), ("created_at", ASCENDING), ("uid", ASCENDING)],
        name="app_created_uid",
    )
    await users.insert_many(
        [
            {"_id": f"app{n % 10}:u{n}", "app_id": f"app{n % 10}", "uid": f"u{n}", "created_at": n}
            for n in range(ROWS)
        ]
    )
    try:
        by_app = await plan_of(ferretdb, test_db_name, "users", {"app_id": "app3"})
        by_created = await plan_of(ferretdb, test_db_name, "users", {"created_at": 5})
    finally:
        await ferretdb.drop_database(test_db_name)

    assert "Bitmap Index Scan" in by_app, by_app
    assert "app_created_uid" in by_app, by_app
    assert "Seq Scan" in by_created, by_created
