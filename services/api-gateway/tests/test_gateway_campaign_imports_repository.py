"""The repositories of CSV imports (upload keys, uploaded files, imports), run against
the in-memory fakes and against Mongo (FerretDB)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_gateway.campaigns.domain import Campaign, RecipientRejected
from clarion_gateway.campaigns.imports import (
    CsvImport,
    ImportContext,
    ImportFailure,
    ImportRunner,
    ImportStorage,
)
from clarion_gateway.campaigns.imports_mongo import mongo_import_storage
from clarion_gateway.campaigns.mongo import MongoAudienceLocks, MongoCampaigns, MongoRecipients
from clarion_gateway.campaigns.uploads import (
    CHUNK_BYTES,
    Upload,
    UploadIncomplete,
    read_file,
    store_file,
)
from clarion_gateway.testing import (
    MemoryAudienceLocks,
    MemoryCampaigns,
    MemoryDirectory,
    MemoryImportStorage,
    MemoryRecipients,
)


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> tuple[AsyncMongoClient[dict[str, Any]], str] | None:
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def store(
    target: tuple[AsyncMongoClient[dict[str, Any]], str] | None,
) -> AsyncIterator[ImportStorage]:
    if target is None:
        yield MemoryImportStorage().storage()
        return
    client, db_name = target
    made = mongo_import_storage(client[db_name])
    await made.start()
    try:
        yield made
    finally:
        await made.stop()
        await client.drop_database(db_name)


def _upload(key: str = "upl_1", **fields: Any) -> Upload:
    values: dict[str, Any] = {
        "key": key,
        "app_id": "app",
        "campaign_id": "cmp",
        "created_at": 100,
        "expires_at": 1000,
    }
    values.update(fields)
    return Upload(**values)


async def test_an_upload_key_is_claimed_once_and_released_until_stored(
    store: ImportStorage,
) -> None:
    keys = store.keys
    await keys.insert(_upload())
    assert await keys.get("upl_1") == _upload()
    assert await keys.get("upl_2") is None
    assert await keys.claim("upl_1")
    assert not await keys.claim("upl_1")
    assert not await keys.claim("upl_2")
    await keys.release("upl_1")  # the PUT failed: the key may be used again
    assert await keys.get("upl_1") == _upload()
    assert await keys.claim("upl_1")
    await keys.stored("upl_1", 1234)
    await keys.release("upl_1")  # stored: nothing to release
    assert await keys.get("upl_1") == _upload(used=True, size=1234)
    assert not await keys.claim("upl_1")


async def test_upload_keys_are_found_by_their_deadline_and_deleted(store: ImportStorage) -> None:
    keys = store.keys
    await keys.insert(_upload("upl_old", expires_at=500))
    await keys.insert(_upload("upl_new", expires_at=2000, used=True, size=0))
    assert await keys.expired(500) == []
    assert await keys.expired(501) == ["upl_old"]
    assert sorted(await keys.expired(3000)) == ["upl_new", "upl_old"]
    await keys.delete("upl_old")
    await keys.delete("upl_old")  # gone already: nothing happens
    assert await keys.get("upl_old") is None
    assert await keys.get("upl_new") == _upload("upl_new", expires_at=2000, used=True, size=0)


async def test_a_file_is_stored_in_chunks_read_back_and_dropped(store: ImportStorage) -> None:
    content = bytes(range(256)) * (CHUNK_BYTES // 256 * 2) + b"\x00tail\xff"
    other = b"user_id\nu1\n"

    async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
        for at in range(0, len(data), size):
            yield data[at : at + size]

    assert await store_file(store.chunks, "upl_1", pieces(content, 70_001), 10**9) == len(content)
    assert await store_file(store.chunks, "upl_2", pieces(other, 3), 10**9) == len(other)
    read = [data async for data in read_file(store.chunks, "upl_1", len(content))]
    assert [len(data) for data in read] == [CHUNK_BYTES, CHUNK_BYTES, 6]
    assert b"".join(read) == content
    assert await store.chunks.get("upl_2", 0) == other
    await store.chunks.put("upl_2", 0, b"again")  # written again: the last bytes win
    assert await store.chunks.get("upl_2", 0) == b"again"
    await store.chunks.delete("upl_1")
    assert await store.chunks.get("upl_1", 0) is None
    assert await store.chunks.get("upl_2", 0) == b"again"
    with pytest.raises(UploadIncomplete):
        _ = [data async for data in read_file(store.chunks, "upl_1", len(content))]


def _import(import_id: str = "imp_1", campaign_id: str = "cmp", **fields: Any) -> CsvImport:
    job = CsvImport("app", campaign_id, import_id, "upl_1", 99, "lck_1", 10, 10, 10)
    return replace(job, **fields)


async def test_an_import_round_trips_and_is_its_campaigns_latest(store: ImportStorage) -> None:
    imports = store.imports
    assert await imports.latest("app", "cmp") is None
    first = _import()
    await imports.insert(first)
    assert await imports.latest("app", "cmp") == first
    done = replace(
        first,
        status="completed",
        base=0,
        rows=4,
        imported=2,
        duplicates=1,
        rejected=(
            RecipientRejected(None, "ERR_VALIDATION", "user_id is empty: use 1-100 …", 3),
            RecipientRejected("ghost", "ERR_USER_NOT_FOUND", "No such user.", 5),
        ),
        rejected_count=2,
        attempts=2,
        updated_at=20,
    )
    await imports.save(done)
    assert await imports.latest("app", "cmp") == done
    second = _import("imp_2", started_at=30)
    await imports.insert(second)
    assert await imports.latest("app", "cmp") == second
    failed = second.failed(ImportFailure("ERR_CSV_INVALID", "The CSV has no user_id column."), 40)
    await imports.save(failed)
    assert await imports.latest("app", "cmp") == failed
    assert await imports.latest("app", "other") is None
    assert await imports.latest("other", "cmp") is None


async def test_the_imports_still_processing_are_listed_across_apps(store: ImportStorage) -> None:
    imports = store.imports
    await imports.insert(_import("imp_1"))
    await imports.insert(_import("imp_2", campaign_id="cmp_2"))
    await imports.insert(replace(_import("imp_3", campaign_id="cmp_3"), app_id="app_b"))
    await imports.save(_import("imp_2", campaign_id="cmp_2", status="completed"))
    processing = await imports.processing()
    assert sorted((j.app_id, j.import_id) for j in processing) == [
        ("app", "imp_1"),
        ("app_b", "imp_3"),
    ]
    assert _import("imp_1") in processing


@pytest_asyncio.fixture
async def context(
    target: tuple[AsyncMongoClient[dict[str, Any]], str] | None,
) -> AsyncIterator[ImportContext]:
    directory = MemoryDirectory()
    directory.add_users("app", *(f"u{i}" for i in range(1500)))
    if target is None:
        yield ImportContext(
            MemoryCampaigns(),
            MemoryRecipients(),
            MemoryAudienceLocks(),
            directory,
            MemoryImportStorage().storage(),
        )
        return
    client, db_name = target
    db = client[db_name]
    made = ImportContext(
        MongoCampaigns(db),
        MongoRecipients(db),
        MongoAudienceLocks(db),
        directory,
        mongo_import_storage(db),
    )
    for resource in (made.campaigns, made.recipients, made.storage):
        await resource.start()
    try:
        yield made
    finally:
        await client.drop_database(db_name)


async def test_an_import_runs_whole_on_these_repositories(context: ImportContext) -> None:
    await context.campaigns.insert(Campaign("app", "cmp", "Sale", "promo", 1, "draft", 1, 1))
    rows = "".join(f'u{i},"Name, {i}"\n' for i in range(2000))  # u1500.. are nobody
    content = ("user_id,name\n" + rows + "u7,again\n").encode()

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(content), 10_000):
            yield content[at : at + 10_000]

    runner = ImportRunner(context)
    job = await runner.begin_upload("app", "cmp", pieces(), 100)
    await runner.idle()
    done = await context.storage.imports.latest("app", "cmp")
    assert done is not None
    assert done.import_id == job.import_id
    assert (done.status, done.rows, done.imported, done.duplicates) == ("completed", 2001, 1500, 1)
    assert (done.rejected_count, len(done.rejected)) == (500, 500)
    assert done.rejected[0] == RecipientRejected(
        "u1500", "ERR_USER_NOT_FOUND", "No such user.", 1502
    )
    audience = {r.uid: r for r in await context.recipients.list("app", "cmp")}
    assert len(audience) == 1500
    assert audience["u7"].variables == {"name": "Name, 7"}
    assert sorted(r.seq for r in audience.values()) == list(range(1500))
    campaign = await context.campaigns.get("app", "cmp")
    assert campaign is not None
    assert campaign.total_targets == 1500
    assert await context.storage.keys.get(job.upload_key) is None
    assert await context.storage.chunks.get(job.upload_key, 0) is None
    assert await context.locks.acquire("app", "cmp", "next", 200, 60)  # released
