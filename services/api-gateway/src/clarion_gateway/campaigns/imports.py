"""CSV imports of a campaign's audience: the use cases, their ports, and the runner that
carries imports out in the background of the gateway process.

An import (of a file PUT to an upload URL, or uploaded directly) holds the campaign's
audience lock from start to end: a second import or an addition is 409 meanwhile. It
parses the stored file, looks the uids up in the user directory, and only then writes
the recipients (``audience._store``): a file that fails whole leaves nothing behind.

A process that dies mid-import (or whose writes fail) leaves it ``processing``, its lock
held. Once the lease is over, a sweep of any gateway (at its start, then every
``SWEEP_EVERY_S``) runs it again from its stored file (in the database, or in the object
store when one is configured: ``objects.UploadFiles``); what the cut attempt wrote counts
as this import's (``base``). After ``MAX_ATTEMPTS`` it fails with
``ERR_IMPORT_INTERRUPTED``. The file goes at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import JsonValue

from clarion_shared.caller import gone_scope
from clarion_shared.errors import DomainError, NotFound
from clarion_shared.ids import new_id
from clarion_shared.ids import now as clock
from clarion_shared.lifecycle import Resource, cancel_and_wait
from clarion_shared.logging import get_logger

from ..proxies.peers import PeerUnavailable
from . import uploads
from .audience import AUDIENCE_LEASE_S, AudienceLocks, Directory, RecipientRepository, _store
from .audience_csv import (
    ERR_CSV_INVALID,
    AudienceCsvFailed,
    AudienceParser,
    CsvLimits,
    rejected_rows,
)
from .domain import (
    AudienceBusy,
    CampaignNotFound,
    CampaignStatusRefused,
    RecipientRejected,
    require,
)
from .objects import ObjectStore, ObjectStoreUnavailable, UploadFiles
from .runs import wait_for
from .service import CampaignRepository, get_campaign
from .uploads import UploadChunks, UploadKeys, UploadSigner, UploadUrl

if TYPE_CHECKING:
    from .dry_runs import DryRunRepository

log = get_logger(__name__)

ImportStatus = Literal["processing", "completed", "failed"]
MAX_STORED_REJECTED = 1_000  # rejected rows kept for import-status (all are counted)
MAX_ATTEMPTS = 3  # runs of one import, the first included, before it is given up
SWEEP_EVERY_S = 60.0
UPLOAD_RETENTION_S = 24 * 3600  # an upload not imported by then is dropped
ERR_IMPORT_INTERRUPTED = "ERR_IMPORT_INTERRUPTED"


@dataclass(frozen=True)
class ImportFailure:
    code: str
    message: str


@dataclass(frozen=True)
class CsvImport:
    app_id: str
    campaign_id: str
    import_id: str
    upload_key: str
    size: int  # of the file
    holder: str  # of the audience lock, taken for the current attempt
    created_at: int
    started_at: int  # of the current attempt: its lock's lease runs from here
    updated_at: int
    status: ImportStatus = "processing"
    attempts: int = 1
    # The audience's size before this import, noted before it writes anything.
    base: int | None = None
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: tuple[RecipientRejected, ...] = ()  # the first MAX_STORED_REJECTED
    rejected_count: int = 0
    error: ImportFailure | None = None

    def failed(self, failure: ImportFailure, now: int) -> CsvImport:
        return replace(self, status="failed", error=failure, updated_at=now)


_INTERRUPTED = ImportFailure(
    ERR_IMPORT_INTERRUPTED, "The import was interrupted too often; upload the file again."
)


class ImportNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Import", dev_message="The campaign never had a CSV import.")


class ImportRepository(Resource, Protocol):
    async def insert(self, job: CsvImport) -> None:
        """Store a new import and make it its campaign's latest."""
        ...

    async def save(self, job: CsvImport) -> None: ...

    async def latest(self, app_id: str, campaign_id: str) -> CsvImport | None: ...

    async def processing(self) -> list[CsvImport]:
        """Every import still ``processing``, of every app."""
        ...


@dataclass(frozen=True)
class ImportStorage:
    """Upload keys, uploaded files, imports and their dry runs (``dry_runs``); the object
    store when one is configured."""

    keys: UploadKeys
    chunks: UploadChunks
    imports: ImportRepository
    dry_runs: DryRunRepository
    objects: ObjectStore | None = None

    async def start(self) -> None:
        parts = [self.keys, self.chunks, self.imports, self.dry_runs, self.objects]
        await asyncio.gather(*(r.start() for r in parts if r is not None))

    async def stop(self) -> None:
        parts = [self.objects, self.dry_runs, self.imports, self.chunks, self.keys]
        await asyncio.gather(*(r.stop() for r in parts if r is not None))

    def files(self) -> UploadFiles:
        return UploadFiles(self.keys, self.chunks, self.objects)


@dataclass(frozen=True)
class ImportContext:
    campaigns: CampaignRepository
    recipients: RecipientRepository
    locks: AudienceLocks
    directory: Directory
    storage: ImportStorage
    limits: CsvLimits = field(default_factory=CsvLimits)


async def issue_upload_url(
    context: ImportContext, signer: UploadSigner, app_id: str, campaign_id: str, now: int
) -> UploadUrl:
    campaign = await get_campaign(context.campaigns, app_id, campaign_id)
    require(campaign, "a CSV upload", "draft")
    return await context.storage.files().issue(signer, app_id, campaign_id, now)


async def start_import(
    context: ImportContext, app_id: str, campaign_id: str, key: str, now: int
) -> CsvImport:
    """An import of ``key``'s file, holding the audience lock (the caller runs it)."""
    campaign = await get_campaign(context.campaigns, app_id, campaign_id)
    require(campaign, "importing recipients", "draft")
    upload = await context.storage.keys.get(key)
    if upload is None or (upload.app_id, upload.campaign_id) != (app_id, campaign_id):
        raise uploads.UploadNotFound()
    size = await context.storage.files().size(upload, context.limits.max_bytes)
    holder = new_id("lck_")
    if not await context.locks.acquire(app_id, campaign_id, holder, now, AUDIENCE_LEASE_S):
        raise AudienceBusy()
    job = CsvImport(app_id, campaign_id, new_id("imp_"), key, size, holder, now, now, now)
    try:
        await context.storage.imports.insert(job)
    except Exception:
        await context.locks.release(app_id, campaign_id, holder)
        raise
    log.info("campaign.import_started", app_id=app_id, campaign_id=campaign_id, key=key)
    return job


async def import_status(context: ImportContext, app_id: str, campaign_id: str) -> CsvImport:
    await get_campaign(context.campaigns, app_id, campaign_id)
    job = await context.storage.imports.latest(app_id, campaign_id)
    if job is None:
        raise ImportNotFound()
    return job


async def _imported(context: ImportContext, job: CsvImport) -> CsvImport:
    """The import carried out: parsed whole, looked up, then written."""
    app_id, campaign_id = job.app_id, job.campaign_id
    campaigns, recipients = context.campaigns, context.recipients
    campaign = await get_campaign(campaigns, app_id, campaign_id)
    require(campaign, "importing recipients", "draft")
    existing = await recipients.uids(app_id, campaign_id)
    base = len(existing) if job.base is None else job.base
    if job.base is None:
        job = replace(job, base=base)
        await context.storage.imports.save(job)
    ours = max(len(existing) - base, 0)  # written by a dead attempt of this import
    started = time.perf_counter()
    parser = AudienceParser(existing, context.limits)
    await context.storage.files().feed(job.upload_key, job.size, parser.feed)
    parsed = parser.close()
    wanted = list(parsed.recipients)
    parsed_at = time.perf_counter()
    found = await context.directory.existing(app_id, wanted) if wanted else set()
    looked_up_at = time.perf_counter()
    new = [uid for uid in wanted if uid in found]
    rejected = rejected_rows(parsed, found)
    variables: dict[str, dict[str, JsonValue]] = {
        uid: dict(parsed.recipients[uid].items()) for uid in new
    }
    duplicates = max(parsed.duplicates - ours, 0)
    now = clock()
    try:
        await _store(
            campaigns, recipients, campaign, existing, new, variables, duplicates, rejected, now
        )
    except DomainError:
        raise
    except Exception as exc:  # some recipients may be written: the sweep runs it again
        raise _WriteCutShort() from exc
    log.info(
        "campaign.imported",
        import_id=job.import_id,
        recipients=len(new),
        read_and_parse_ms=round((parsed_at - started) * 1000, 1),
        lookup_ms=round((looked_up_at - parsed_at) * 1000, 1),
        store_ms=round((time.perf_counter() - looked_up_at) * 1000, 1),
    )
    return replace(
        job,
        status="completed",
        rows=parsed.rows,
        imported=len(new) + ours,
        duplicates=duplicates,
        rejected=tuple(rejected[:MAX_STORED_REJECTED]),
        rejected_count=len(rejected),
        updated_at=now,
    )


# How an import that raised one of these reads in import-status (the first that fits;
# no message: the exception's own).
_FAILURES: tuple[tuple[type[Exception], str, str | None], ...] = (
    (uploads.UploadIncomplete, ERR_CSV_INVALID, None),
    (CampaignStatusRefused, "ERR_CAMPAIGN_STATUS", None),
    (CampaignNotFound, "ERR_NOT_FOUND", None),
    (ObjectStoreUnavailable, "ERR_UNAVAILABLE", "The file store was unreachable; upload again."),
    (DomainError, "ERR_BAD_REQUEST", None),
    (PeerUnavailable, "ERR_UNAVAILABLE", "The user directory was unreachable; upload again."),
    (Exception, "ERR_INTERNAL", "The import failed; upload the file again."),
)


def failure_of(exc: Exception) -> ImportFailure:
    """How ``exc`` reads as the outcome of an import (or of its dry run)."""
    if isinstance(exc, AudienceCsvFailed):
        return ImportFailure(exc.code, exc.message)
    code, message = next((c, m) for cls, c, m in _FAILURES if isinstance(exc, cls))
    return ImportFailure(code, message or str(exc))


async def _finish(context: ImportContext, done: CsvImport) -> None:
    """Record the outcome, drop the file, then let the audience go."""
    storage = context.storage
    await storage.imports.save(done)
    await storage.files().drop_imported(done.upload_key)
    await context.locks.release(done.app_id, done.campaign_id, done.holder)
    code = done.error.code if done.error else None
    log.info("campaign.import_finished", import_id=done.import_id, status=done.status, code=code)


class _WriteCutShort(Exception):
    pass


async def run_import(context: ImportContext, job: CsvImport) -> CsvImport:
    """Carry ``job`` out to ``completed`` or ``failed`` (nothing written then), or leave
    it ``processing`` for a sweep when its writes were cut short."""
    try:
        done = await _imported(context, job)
    except _WriteCutShort:
        log.exception("campaign.import_cut_short", import_id=job.import_id)
        return job
    except Exception as exc:
        failure = failure_of(exc)
        if failure.code == "ERR_INTERNAL":
            log.exception("campaign.import_error", import_id=job.import_id, error=repr(exc))
        done = job.failed(failure, clock())
    await _finish(context, done)
    return done


class ImportRunner:
    """The imports running in this process: a ``Resource`` whose stop cancels them
    (a later sweep runs them again), and the sweep that takes over the dead ones."""

    def __init__(self, context: ImportContext, sweep_every_s: float = SWEEP_EVERY_S) -> None:
        self.context = context
        self._sweep_every_s = sweep_every_s
        self._running: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def wait(self, import_id: str, timeout_s: float | None = None) -> bool:
        """Whether the import is over within ``timeout_s`` (``runs.wait_for``)."""
        return await wait_for(self._running, import_id, timeout_s)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        tasks = [*self._running.values(), *([self._sweeper] if self._sweeper else [])]
        await cancel_and_wait(*tasks)

    async def begin(self, app_id: str, campaign_id: str, key: str, now: int) -> CsvImport:
        job = await start_import(self.context, app_id, campaign_id, key, now)
        self._launch(job)
        return job

    async def begin_upload(
        self, app_id: str, campaign_id: str, content: AsyncIterable[bytes], now: int
    ) -> CsvImport:
        """An import of a file uploaded directly (``AudienceCsvFailed`` at its header)."""
        context, storage = self.context, self.context.storage
        campaign = await get_campaign(context.campaigns, app_id, campaign_id)
        require(campaign, "importing recipients", "draft")
        key = await uploads.store_checked(
            storage.keys, storage.chunks, app_id, campaign_id, content, now, context.limits
        )
        try:
            return await self.begin(app_id, campaign_id, key, now)
        except Exception:
            await uploads.discard(storage.keys, storage.chunks, key)
            raise

    async def idle(self) -> None:  # the imports running now are over
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _launch(self, job: CsvImport) -> None:
        async def run() -> None:
            # Not the work of the request that started it: its client may go.
            with gone_scope(asyncio.Event()):
                try:
                    await run_import(self.context, job)
                except Exception:  # its outcome could not be saved: a sweep runs it again
                    log.exception("campaign.import_crashed", import_id=job.import_id)

        task = asyncio.create_task(run(), name=f"csv-import-{job.import_id}")
        self._running[job.import_id] = task
        task.add_done_callback(lambda _: self._running.pop(job.import_id, None))

    async def sweep(self, at: int) -> list[CsvImport]:
        """Run again the imports left ``processing`` past their lock's lease (their
        process died); drop the uploads never imported. The imports resumed."""
        storage = self.context.storage
        processing = await storage.imports.processing()
        busy = {job.upload_key for job in processing}
        for key in await storage.keys.expired(at - UPLOAD_RETENTION_S):
            if key not in busy:
                await storage.files().drop(key)
        resumed = []
        for job in processing:
            if job.started_at + AUDIENCE_LEASE_S > at or job.import_id in self._running:
                continue
            holder = new_id("lck_")
            if not await self.context.locks.acquire(
                job.app_id, job.campaign_id, holder, at, AUDIENCE_LEASE_S
            ):
                continue
            job = replace(
                job, holder=holder, started_at=at, updated_at=at, attempts=job.attempts + 1
            )
            if job.attempts > MAX_ATTEMPTS:
                await _finish(self.context, job.failed(_INTERRUPTED, at))
                continue
            await storage.imports.save(job)
            log.info("campaign.import_resumed", import_id=job.import_id, attempt=job.attempts)
            self._launch(job)
            resumed.append(job)
        return resumed

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep(clock())
            except Exception as exc:
                log.exception("campaign.import_sweep_failed", error=repr(exc))
            await asyncio.sleep(self._sweep_every_s)
