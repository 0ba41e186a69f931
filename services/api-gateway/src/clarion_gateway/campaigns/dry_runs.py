"""Dry runs of CSV imports: what importing an uploaded file would do, worked out without
touching the campaign's audience, before the import is confirmed.

A dry run is the import up to its writes, on the same code: the file streamed through
the import's parser (``AudienceParser``) against the audience there now, the kept uids
looked up in the user directory in the same one call, the rejected rows made by the
import's own ``rejected_rows``, a file that fails whole failing with the import's error
(``failure_of``). So its numbers are the import's, as long as the file, the audience and
the users stay as they were. It takes no audience lock (an addition or an import may
run meanwhile) and keeps the file: confirming is ``import-csv`` with the same key.

It runs in the background of the gateway process (``dry_run_runner``), saving its
progress (rows and bytes read) at most every ``PROGRESS_EVERY_S``, which is also its
heartbeat. Its effects are its own documents only, so a dry run whose process died (no
heartbeat for ``STALE_S``) is simply run again from the start by the sweep of any
gateway, up to ``MAX_ATTEMPTS`` runs. Every rejected row is stored, ``REJECTED_PER_DOC``
to a document, for the rejected-rows download; a dry run and its rows are dropped
``DRY_RUN_TTL_S`` after it started (by the sweep: FerretDB 1.x has no TTL indexes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from clarion_shared.errors import Conflict, NotFound
from clarion_shared.ids import new_id
from clarion_shared.ids import now as clock
from clarion_shared.lifecycle import Resource, cancel_and_wait
from clarion_shared.logging import get_logger

from . import uploads
from .audience_csv import AudienceParser, ParsedAudience, rejected_rows
from .domain import RecipientRejected, require
from .imports import ImportContext, ImportFailure, failure_of
from .service import get_campaign

log = get_logger(__name__)

DryRunStatus = Literal["running", "completed", "failed"]
DryRunStage = Literal["reading", "checking_users", "done"]
DRY_RUN_TTL_S = 24 * 3600
PROGRESS_EVERY_S = 1.0
STALE_S = 60  # no heartbeat for this long: the dry run's process is gone
MAX_ATTEMPTS = 3
SWEEP_EVERY_S = 60.0  # of the runner (``dry_run_runner``)
REJECTED_PER_DOC = 1_000
MAX_INLINE_DUPLICATES = 1_000  # duplicate rows named in the status (all are counted)
MAX_INLINE_REJECTED = 100  # rejected rows in the status (all are in the download)
ERR_DRY_RUN_INTERRUPTED = "ERR_DRY_RUN_INTERRUPTED"


@dataclass(frozen=True)
class DuplicateRow:
    row: int
    uid: str
    first_row: int | None  # the row the uid was kept from; None: in the audience already


@dataclass(frozen=True)
class DryRun:
    app_id: str
    campaign_id: str
    dry_run_id: str
    upload_key: str
    size: int  # of the file
    created_at: int
    updated_at: int  # the heartbeat while it runs
    expires_at: int
    status: DryRunStatus = "running"
    stage: DryRunStage = "reading"
    attempts: int = 1
    processed_rows: int = 0
    processed_bytes: int = 0
    audience_before: int = 0  # recipients already in the campaign
    columns: tuple[str, ...] = ()  # the variable columns
    rows: int = 0
    accepted: int = 0  # the rows an import would add
    duplicates: int = 0
    duplicate_rows: tuple[DuplicateRow, ...] = ()  # the first MAX_INLINE_DUPLICATES
    rejected_count: int = 0
    rejected_docs: int = 0  # the documents holding every rejected row
    error: ImportFailure | None = None  # the import would fail whole with it

    def failed(self, failure: ImportFailure, now: int) -> DryRun:
        return replace(self, status="failed", stage="done", error=failure, updated_at=now)


class DryRunNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Dry run", dev_message="No such dry run of this campaign (24 h).")


class DryRunNotCompleted(Conflict):
    def __init__(self, run: DryRun) -> None:
        why = "is still running" if run.status == "running" else "failed"
        super().__init__(
            f"The dry run {why}: it has no rejected rows to download.",
            dev_message=f"GET the dry run until its status is completed (now {run.status}).",
        )


class DryRunRepository(Resource, Protocol):
    async def insert(self, run: DryRun) -> None: ...

    async def save(self, run: DryRun) -> None: ...

    async def save_progress(self, run: DryRun) -> None:
        """Save ``run`` only if the stored one still runs the same attempt (a late beat
        never overwrites its outcome)."""
        ...

    async def get(self, app_id: str, campaign_id: str, dry_run_id: str) -> DryRun | None: ...

    async def claim(self, seen: DryRun, again: DryRun) -> bool:
        """Save ``again`` only if the stored dry run is still ``seen`` (its status and
        attempts): two sweeps never both run it again."""
        ...

    async def running(self) -> list[DryRun]:
        """Every dry run still ``running``, of every app."""
        ...

    async def put_rejected(self, run: DryRun, n: int, rows: Sequence[RecipientRejected]) -> None:
        """Store the ``n``-th (from 0) ``REJECTED_PER_DOC`` rejected rows (a repeat
        overwrites)."""
        ...

    async def rejected(self, run: DryRun, n: int) -> list[RecipientRejected] | None:
        """The ``n``-th document's rejected rows; None when it is gone."""
        ...

    async def delete_expired(self, now: int) -> int:
        """Drop the dry runs (and their rows) expired by ``now``; how many documents."""
        ...


def _runs(context: ImportContext) -> DryRunRepository:
    return context.storage.dry_runs


async def start_dry_run(
    context: ImportContext, app_id: str, campaign_id: str, key: str, now: int
) -> DryRun:
    """A dry run of ``key``'s file, refused as its import would be at its start (the
    campaign not a draft, no such key, nothing uploaded, over the size limit)."""
    campaign = await get_campaign(context.campaigns, app_id, campaign_id)
    require(campaign, "a dry run of a CSV import", "draft")
    upload = await context.storage.keys.get(key)
    if upload is None or (upload.app_id, upload.campaign_id) != (app_id, campaign_id):
        raise uploads.UploadNotFound()
    size = await context.storage.files().size(upload, context.limits.max_bytes)
    run = DryRun(app_id, campaign_id, new_id("dry_"), key, size, now, now, now + DRY_RUN_TTL_S)
    await _runs(context).insert(run)
    log.info("campaign.dry_run_started", app_id=app_id, campaign_id=campaign_id, key=key)
    return run


async def get_dry_run(
    context: ImportContext, app_id: str, campaign_id: str, dry_run_id: str, now: int
) -> DryRun:
    await get_campaign(context.campaigns, app_id, campaign_id)
    run = await _runs(context).get(app_id, campaign_id, dry_run_id)
    if run is None or run.expires_at <= now:
        raise DryRunNotFound()
    return run


@dataclass(frozen=True)
class DryRunView:
    run: DryRun
    first_rejected: list[RecipientRejected]  # the first MAX_INLINE_REJECTED, once completed


async def dry_run_status(
    context: ImportContext, app_id: str, campaign_id: str, dry_run_id: str, now: int
) -> DryRunView:
    run = await get_dry_run(context, app_id, campaign_id, dry_run_id, now)
    if run.status != "completed" or not run.rejected_docs:
        return DryRunView(run, [])
    first = await _runs(context).rejected(run, 0) or []
    return DryRunView(run, first[:MAX_INLINE_REJECTED])


async def rejected_pages(
    context: ImportContext, app_id: str, campaign_id: str, dry_run_id: str, now: int
) -> AsyncIterator[list[RecipientRejected]]:
    """Every rejected row of a completed dry run, a document's worth at a time; what
    refuses it (no such dry run, not completed) is raised before the first page."""
    run = await get_dry_run(context, app_id, campaign_id, dry_run_id, now)
    if run.status != "completed":
        raise DryRunNotCompleted(run)
    runs = _runs(context)

    async def pages() -> AsyncIterator[list[RecipientRejected]]:
        for n in range(run.rejected_docs):
            rows = await runs.rejected(run, n)
            if rows is None:  # expired while it was read
                raise DryRunNotFound()
            yield rows

    return pages()


@dataclass
class _Progress:
    """What the dry run has done so far, saved by the heartbeat."""

    run: DryRun
    stage: DryRunStage = "reading"
    parser: AudienceParser | None = None
    read: int = 0

    def feed(self, data: bytes) -> None:
        assert self.parser is not None
        self.read += len(data)
        self.parser.feed(data)

    def now(self) -> DryRun:
        rows = self.parser.rows if self.parser is not None else 0
        return replace(
            self.run,
            stage=self.stage,
            processed_rows=rows,
            processed_bytes=self.read,
            updated_at=clock(),
        )


async def _heartbeat(runs: DryRunRepository, progress: _Progress, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await runs.save_progress(progress.now())
        except Exception as exc:  # the next beat tries again; a long silence restarts it
            log.warning("campaign.dry_run_progress_not_saved", error=repr(exc))


async def _worked_out(context: ImportContext, progress: _Progress) -> DryRun:
    """The import carried out up to its writes (``imports._imported``), and noted."""
    run = progress.run
    campaign = await get_campaign(context.campaigns, run.app_id, run.campaign_id)
    require(campaign, "a dry run of a CSV import", "draft")
    existing = await context.recipients.uids(run.app_id, run.campaign_id)
    seen_twice: list[tuple[int, str]] = []

    def duplicate(row: int, uid: str) -> None:
        if len(seen_twice) < MAX_INLINE_DUPLICATES:
            seen_twice.append((row, uid))

    progress.parser = AudienceParser(existing, context.limits, on_duplicate=duplicate)
    await context.storage.files().feed(run.upload_key, run.size, progress.feed)
    parsed = progress.parser.close()
    progress.stage = "checking_users"
    wanted = list(parsed.recipients)
    found = await context.directory.existing(run.app_id, wanted) if wanted else set()
    rejected = rejected_rows(parsed, found)
    for n, at in enumerate(range(0, len(rejected), REJECTED_PER_DOC)):
        await _runs(context).put_rejected(run, n, rejected[at : at + REJECTED_PER_DOC])
    progress.stage = "done"
    return _completed(progress.now(), parsed, existing, found, rejected, seen_twice)


def _completed(
    run: DryRun,
    parsed: ParsedAudience,
    existing: set[str],
    found: set[str],
    rejected: list[RecipientRejected],
    seen_twice: list[tuple[int, str]],
) -> DryRun:
    """The dry run's outcome: the import's numbers (``imports._imported``)."""
    return replace(
        run,
        status="completed",
        audience_before=len(existing),
        columns=parsed.columns,
        rows=parsed.rows,
        accepted=sum(uid in found for uid in parsed.recipients),
        duplicates=parsed.duplicates,
        duplicate_rows=tuple(
            DuplicateRow(row, uid, parsed.row_of.get(uid)) for row, uid in seen_twice
        ),
        rejected_count=len(rejected),
        rejected_docs=-(-len(rejected) // REJECTED_PER_DOC),
    )


async def run_dry_run(
    context: ImportContext, run: DryRun, every_s: float = PROGRESS_EVERY_S
) -> DryRun:
    """Carry ``run`` out to ``completed`` or ``failed`` (with the import's error); a
    cancelled one stays ``running`` for a sweep."""
    progress = _Progress(run)
    heartbeat = asyncio.create_task(_heartbeat(_runs(context), progress, every_s))
    try:
        done = await _worked_out(context, progress)
    except Exception as exc:
        failure = failure_of(exc)
        if failure.code == "ERR_INTERNAL":
            log.exception("campaign.dry_run_error", dry_run_id=run.dry_run_id, error=repr(exc))
        progress.stage = "done"
        done = progress.now().failed(failure, clock())
    finally:
        await cancel_and_wait(heartbeat)
    await _runs(context).save(done)
    code = done.error.code if done.error else None
    log.info("campaign.dry_run_finished", dry_run_id=run.dry_run_id, status=done.status, code=code)
    return done
