"""The dry runs' repository (``campaign_dry_runs``) run against the in-memory fake and
against Mongo (FerretDB): round trips, the conditional saves (a late heartbeat, two
sweeps), the rejected rows by document, expiry; and a whole dry run of a 10,000-row file
with 300 rejected rows on the Mongo storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_gateway.campaigns.domain import Campaign, RecipientRejected
from clarion_gateway.campaigns.dry_run_runner import DryRunRunner
from clarion_gateway.campaigns.dry_runs import (
    REJECTED_PER_DOC,
    DryRun,
    DryRunRepository,
    DuplicateRow,
    rejected_pages,
)
from clarion_gateway.campaigns.dry_runs_mongo import MongoDryRuns
from clarion_gateway.campaigns.imports import ImportContext, ImportFailure
from clarion_gateway.campaigns.imports_mongo import mongo_import_storage
from clarion_gateway.campaigns.mongo import MongoAudienceLocks, MongoCampaigns, MongoRecipients
from clarion_gateway.testing import MemoryDirectory, MemoryDryRuns

Target = tuple[AsyncMongoClient[dict[str, Any]], str] | None


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def runs(target: Target) -> AsyncIterator[DryRunRepository]:
    if target is None:
        yield MemoryDryRuns()
        return
    client, db_name = target
    made = MongoDryRuns(client[db_name])
    await made.start()
    try:
        yield made
    finally:
        await client.drop_database(db_name)


def _run(dry_run_id: str = "dry_1", **fields: Any) -> DryRun:
    run = DryRun("app", "cmp", dry_run_id, "upl_1", 1234, 100, 100, 100 + 86_400)
    return replace(run, **fields)


async def test_a_dry_run_round_trips(runs: DryRunRepository) -> None:
    run = _run()
    await runs.insert(run)
    assert await runs.get("app", "cmp", "dry_1") == run
    assert await runs.get("app", "other", "dry_1") is None
    assert await runs.get("other", "cmp", "dry_1") is None
    done = replace(
        run,
        status="completed",
        stage="done",
        processed_rows=9,
        processed_bytes=1234,
        audience_before=2,
        columns=("name", "city"),
        rows=9,
        accepted=5,
        duplicates=2,
        duplicate_rows=(DuplicateRow(4, "u1", 2), DuplicateRow(6, "old", None)),
        rejected_count=2,
        rejected_docs=1,
        updated_at=120,
    )
    await runs.save(done)
    assert await runs.get("app", "cmp", "dry_1") == done
    failed = done.failed(ImportFailure("ERR_CSV_INVALID", "No user_id column."), 130)
    await runs.save(failed)
    assert await runs.get("app", "cmp", "dry_1") == failed


async def test_progress_is_saved_only_over_the_same_running_attempt(
    runs: DryRunRepository,
) -> None:
    run = _run()
    await runs.insert(run)
    await runs.save_progress(replace(run, processed_rows=10, updated_at=101))
    assert (await runs.get("app", "cmp", "dry_1")) == replace(
        run, processed_rows=10, updated_at=101
    )
    await runs.save_progress(replace(run, attempts=2, processed_rows=20))  # not this attempt
    stored = await runs.get("app", "cmp", "dry_1")
    assert stored is not None
    assert stored.processed_rows == 10
    completed = replace(run, status="completed", rows=3)
    await runs.save(completed)
    await runs.save_progress(replace(run, processed_rows=30))  # a late heartbeat
    assert await runs.get("app", "cmp", "dry_1") == completed


async def test_one_sweep_only_claims_a_dead_dry_run(runs: DryRunRepository) -> None:
    run = _run()
    await runs.insert(run)
    again = replace(run, attempts=2, updated_at=200)
    assert await runs.claim(run, again)
    assert not await runs.claim(run, replace(again, updated_at=201))  # the other sweep
    assert await runs.get("app", "cmp", "dry_1") == again
    assert await runs.running() == [again]
    await runs.save(replace(again, status="completed"))
    assert await runs.running() == []


async def test_rejected_rows_are_kept_by_document_and_expire_with_their_run(
    runs: DryRunRepository,
) -> None:
    run, later = _run(), _run("dry_2", expires_at=100 + 2 * 86_400)
    await runs.insert(run)
    await runs.insert(later)
    rows = [
        RecipientRejected(None, "ERR_VALIDATION", 'user_id "a b" is not valid.', 2),
        RecipientRejected("ghost", "ERR_USER_NOT_FOUND", "No such user.", 3),
    ]
    await runs.put_rejected(run, 0, rows)
    await runs.put_rejected(run, 1, rows[1:])
    await runs.put_rejected(run, 1, rows[:1])  # a run again overwrites
    await runs.put_rejected(later, 0, rows)
    assert await runs.rejected(run, 0) == rows
    assert await runs.rejected(run, 1) == rows[:1]
    assert await runs.rejected(run, 2) is None
    assert await runs.delete_expired(run.expires_at - 1) == 0
    assert await runs.delete_expired(run.expires_at) == 3  # the run and its two documents
    assert await runs.get("app", "cmp", "dry_1") is None
    assert await runs.rejected(run, 0) is None
    assert await runs.rejected(later, 0) == rows
    assert await runs.get("app", "cmp", "dry_2") == later


@pytest.mark.integration
async def test_a_ten_thousand_row_file_with_300_rejects_on_mongo(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> None:
    db = mongo_client[test_db_name]
    directory = MemoryDirectory()
    directory.add_users("app", *(f"u{i}" for i in range(10_000) if i % 50 != 7))  # 200 nobody
    context = ImportContext(
        MongoCampaigns(db), MongoRecipients(db), MongoAudienceLocks(db), directory,
        mongo_import_storage(db),
    )  # fmt: skip
    for resource in (context.campaigns, context.recipients, context.storage):
        await resource.start()
    try:
        await context.campaigns.insert(Campaign("app", "cmp", "Sale", "promo", 1, "draft", 1, 1))
        lines = []
        for i in range(10_000):
            # Every 100th row's user_id is not valid: 100 rejected by the parser.
            lines.append(f"bad id {i},x" if i % 100 == 99 else f'u{i},"Name, {i}"')
        content = ("user_id,name\n" + "\n".join(lines) + "\n").encode()

        async def pieces() -> AsyncIterator[bytes]:
            for at in range(0, len(content), 50_000):
                yield content[at : at + 50_000]

        runner = DryRunRunner(context)
        run = await runner.begin_upload("app", "cmp", pieces(), 100)
        await runner.idle()
        done = await context.storage.dry_runs.get("app", "cmp", run.dry_run_id)
        assert done is not None
        assert (done.status, done.rows, done.rejected_count) == ("completed", 10_000, 300)
        assert (done.accepted, done.duplicates) == (9_700, 0)
        assert done.rejected_docs == -(-300 // REJECTED_PER_DOC)
        pages = await rejected_pages(context, "app", "cmp", run.dry_run_id, 200)
        rejected = [r async for page in pages for r in page]
        assert len(rejected) == 300
        assert [r.row for r in rejected] == sorted(
            i + 2 for i in range(10_000) if i % 100 == 99 or i % 50 == 7
        )
        assert rejected[0] == RecipientRejected("u7", "ERR_USER_NOT_FOUND", "No such user.", 9)
        assert await context.recipients.uids("app", "cmp") == set()  # nothing imported
        assert await context.storage.keys.get(run.upload_key) is not None  # kept
    finally:
        await mongo_client.drop_database(test_db_name)
