"""The dry-run runner on the in-memory fakes: progress saved while a dry run works (its
heartbeat), no audience lock taken, the import's own failures (the recipient limit with
the audience there), the directory asked once as the import asks it, and the sweep (a
dead process's dry run run again from the start, given up after its attempts; expired
dry runs and their rows dropped)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from clarion_devtools.helpers import wait_until
from clarion_gateway.campaigns.audience_csv import CsvLimits
from clarion_gateway.campaigns.domain import Campaign, Recipient, RecipientRejected
from clarion_gateway.campaigns.dry_run_runner import DryRunRunner
from clarion_gateway.campaigns.dry_runs import (
    DRY_RUN_TTL_S,
    ERR_DRY_RUN_INTERRUPTED,
    MAX_ATTEMPTS,
    STALE_S,
    DryRun,
    DryRunNotCompleted,
    rejected_pages,
)
from clarion_gateway.campaigns.imports import ImportContext, ImportRunner
from clarion_gateway.campaigns.uploads import CHUNK_BYTES, Upload
from clarion_gateway.testing import (
    MemoryAudienceLocks,
    MemoryCampaigns,
    MemoryDirectory,
    MemoryImportStorage,
    MemoryRecipients,
)
from clarion_shared.ids import now


class BlockedDirectory(MemoryDirectory):
    """Answers a lookup only once ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def existing(self, app_id: str, uids: Sequence[str]) -> set[str]:
        self.asked.set()
        await self.release.wait()
        return await super().existing(app_id, uids)


def _context(
    storage: MemoryImportStorage, directory: MemoryDirectory, limits: CsvLimits | None = None
) -> ImportContext:
    return ImportContext(
        MemoryCampaigns(),
        MemoryRecipients(),
        MemoryAudienceLocks(),
        directory,
        storage.storage(),
        limits or CsvLimits(),
    )


async def _stored(
    context: ImportContext, storage: MemoryImportStorage, content: bytes, prior: Sequence[str] = ()
) -> None:
    """A draft ``cmp`` with ``prior`` in its audience, and the file ``upl_1`` for it."""
    at = now()
    await context.campaigns.insert(Campaign("app", "cmp", "Sale", "promo", 1, "draft", at, at))
    await context.recipients.add(
        [Recipient("app", "cmp", uid, seq, at, at) for seq, uid in enumerate(prior)]
    )
    size = len(content)
    await storage.keys.insert(Upload("upl_1", "app", "cmp", at, at, used=True, size=size))
    for n in range(-(-size // CHUNK_BYTES)):
        await storage.chunks.put("upl_1", n, content[n * CHUNK_BYTES : (n + 1) * CHUNK_BYTES])


async def test_progress_is_saved_while_it_runs_and_no_lock_is_taken() -> None:
    storage, directory = MemoryImportStorage(), BlockedDirectory()
    directory.add_users("app", *(f"u{i}" for i in range(0, 30_000, 2)))
    context = _context(storage, directory, CsvLimits(max_recipients=50_000))
    content = ("user_id,n\n" + "".join(f"u{i},{i}\n" for i in range(30_000))).encode()
    assert len(content) > CHUNK_BYTES  # read in more than one piece
    await _stored(context, storage, content)
    runner = DryRunRunner(context, progress_every_s=0.01)
    run = await runner.begin("app", "cmp", "upl_1", now())
    await asyncio.wait_for(directory.asked.wait(), 10)

    async def checking() -> DryRun | None:
        stored = await storage.dry_runs.get("app", "cmp", run.dry_run_id)
        assert stored is not None
        return stored if stored.stage == "checking_users" else None

    seen = await wait_until(checking, timeout_s=10, interval_s=0.01, what="a progress save")
    assert (seen.status, seen.processed_rows, seen.processed_bytes) == (
        "running",
        30_000,
        len(content),
    )
    assert isinstance(context.locks, MemoryAudienceLocks)
    assert context.locks.held == {}
    with pytest.raises(DryRunNotCompleted):
        await rejected_pages(context, "app", "cmp", run.dry_run_id, now())
    directory.release.set()
    await runner.idle()
    done = await storage.dry_runs.get("app", "cmp", run.dry_run_id)
    assert done is not None
    assert (done.status, done.rows, done.accepted, done.rejected_count) == (
        "completed",
        30_000,
        15_000,
        15_000,
    )
    assert done.rejected_docs == 15
    saves = storage.dry_runs.progress_saves
    assert saves >= 1
    # A late heartbeat never overwrites the outcome.
    await storage.dry_runs.save_progress(replace(done, status="running", processed_rows=1))
    assert storage.dry_runs.progress_saves == saves
    assert await storage.dry_runs.get("app", "cmp", run.dry_run_id) == done
    pages = await rejected_pages(context, "app", "cmp", run.dry_run_id, now())
    rows = [r async for page in pages for r in page]
    assert len(rows) == 15_000
    assert rows[0] == RecipientRejected("u1", "ERR_USER_NOT_FOUND", "No such user.", 3)
    assert [r.row for r in rows] == list(range(3, 30_002, 2))


async def test_the_recipient_limit_counts_the_audience_there_as_the_import_does() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    directory.add_users("app", "a", "b", "c", "d")
    context = _context(storage, directory, CsvLimits(max_recipients=3))
    await _stored(context, storage, b"user_id\na\nb\nc\n", prior=["a", "x"])
    runner = DryRunRunner(context)
    run = await runner.begin("app", "cmp", "upl_1", now())
    await runner.idle()
    dry = await storage.dry_runs.get("app", "cmp", run.dry_run_id)
    assert dry is not None
    assert dry.status == "failed"
    assert dry.error is not None
    assert dry.error.code == "ERR_TARGET_LIMIT_EXCEEDED"
    assert directory.calls == []  # refused before any lookup
    assert await context.recipients.uids("app", "cmp") == {"a", "x"}

    imports = ImportRunner(context)
    await imports.begin("app", "cmp", "upl_1", now())
    await imports.idle()
    job = await storage.imports.latest("app", "cmp")
    assert job is not None
    assert (job.status, job.error) == ("failed", dry.error)


async def test_the_directory_is_asked_once_for_the_kept_uids_as_by_the_import() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    directory.add_users("app", "u1", "u2")
    context = _context(storage, directory)
    await _stored(context, storage, b"user_id\nu1\nu2\nu1\nghost\nbad id\n")
    runner = DryRunRunner(context)
    await runner.begin("app", "cmp", "upl_1", now())
    await runner.idle()
    imports = ImportRunner(context)
    await imports.begin("app", "cmp", "upl_1", now())
    await imports.idle()
    assert directory.calls == [("existing", 3), ("existing", 3)]


async def _dead(
    context: ImportContext, storage: MemoryImportStorage, content: bytes, attempts: int = 1
) -> DryRun:
    """A dry run whose process died: no heartbeat for ``STALE_S``."""
    await _stored(context, storage, content)
    at = now() - STALE_S - 1
    run = DryRun("app", "cmp", "dry_1", "upl_1", len(content), at, at, at + DRY_RUN_TTL_S)
    run = replace(run, processed_rows=1, attempts=attempts)
    await storage.dry_runs.insert(run)
    return run


async def test_a_dead_processs_dry_run_is_run_again_from_the_start() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    directory.add_users("app", "u1")
    context = _context(storage, directory)
    await _dead(context, storage, b"user_id\nu1\nu1\nghost\n")
    runner = DryRunRunner(context)
    again = await runner.sweep(now())
    assert [(r.dry_run_id, r.attempts, r.processed_rows) for r in again] == [("dry_1", 2, 0)]
    assert await runner.sweep(now()) == []  # running here now
    await runner.idle()
    done = await storage.dry_runs.get("app", "cmp", "dry_1")
    assert done is not None
    assert (done.status, done.attempts, done.rows, done.accepted, done.duplicates) == (
        "completed",
        2,
        3,
        1,
        1,
    )
    assert done.rejected_count == 1
    # Another gateway that saw it running before the restart cannot take it again.
    assert not await storage.dry_runs.claim(replace(done, status="running", attempts=1), done)


async def test_a_live_dry_run_is_left_and_a_too_often_cut_one_fails() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    context = _context(storage, directory)
    await _dead(context, storage, b"user_id\nu1\n", attempts=MAX_ATTEMPTS)
    live = DryRun("app", "cmp", "dry_2", "upl_1", 10, now(), now(), now() + DRY_RUN_TTL_S)
    await storage.dry_runs.insert(live)
    runner = DryRunRunner(context)
    assert await runner.sweep(now()) == []
    given_up = await storage.dry_runs.get("app", "cmp", "dry_1")
    assert given_up is not None
    assert given_up.status == "failed"
    assert given_up.error is not None
    assert given_up.error.code == ERR_DRY_RUN_INTERRUPTED
    assert await storage.dry_runs.get("app", "cmp", "dry_2") == live


async def test_expired_dry_runs_and_their_rows_are_dropped() -> None:
    storage, directory = MemoryImportStorage(), MemoryDirectory()
    context = _context(storage, directory)
    await _stored(context, storage, b"user_id\nghost\n")
    runner = DryRunRunner(context)
    run = await runner.begin("app", "cmp", "upl_1", now())
    await runner.idle()
    assert storage.dry_runs.rejected_docs
    await runner.sweep(run.expires_at - 1)
    assert await storage.dry_runs.get("app", "cmp", run.dry_run_id) is not None
    await runner.sweep(run.expires_at)
    assert storage.dry_runs.docs == {}
    assert storage.dry_runs.rejected_docs == {}
    assert "upl_1" in storage.keys.docs  # the file is the imports' sweep's to drop
