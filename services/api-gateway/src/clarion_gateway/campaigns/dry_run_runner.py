"""The runner of dry runs (``dry_runs``): the dry runs running in this gateway process,
and the sweep of every gateway that runs again, from the start, those whose process died
(their heartbeat stopped ``STALE_S`` ago) and drops the expired ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import replace

from clarion_shared.caller import gone_scope
from clarion_shared.ids import now as clock
from clarion_shared.lifecycle import Periodic, cancel_and_wait
from clarion_shared.logging import get_logger

from . import uploads
from .domain import require
from .dry_runs import (
    ERR_DRY_RUN_INTERRUPTED,
    MAX_ATTEMPTS,
    PROGRESS_EVERY_S,
    STALE_S,
    SWEEP_EVERY_S,
    DryRun,
    run_dry_run,
    start_dry_run,
)
from .imports import ImportContext, ImportFailure
from .runs import wait_for
from .service import get_campaign

log = get_logger(__name__)


def _afresh(run: DryRun, at: int) -> DryRun:
    """``run`` to be run again from the start (its next attempt)."""
    key, size = run.upload_key, run.size
    fresh = DryRun(run.app_id, run.campaign_id, run.dry_run_id, key, size, run.created_at, at, 0)
    return replace(fresh, expires_at=run.expires_at, attempts=run.attempts + 1)


_INTERRUPTED = ImportFailure(
    ERR_DRY_RUN_INTERRUPTED, "The dry run was interrupted too often; start it again."
)


class DryRunRunner(Periodic):
    """The dry runs running in this process (a stop cancels them: a later sweep runs
    them again), and the sweep: dead processes' dry runs run again, expired ones go."""

    def __init__(
        self,
        context: ImportContext,
        sweep_every_s: float = SWEEP_EVERY_S,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        super().__init__(sweep_every_s, "campaign.dry_run_sweep_failed")
        self.context = context
        self._progress_every_s = progress_every_s
        self._running: dict[str, asyncio.Task[None]] = {}

    async def wait(self, dry_run_id: str, timeout_s: float | None = None) -> bool:
        """Whether the dry run is over within ``timeout_s`` (``runs.wait_for``)."""
        return await wait_for(self._running, dry_run_id, timeout_s)

    async def stop(self) -> None:
        await cancel_and_wait(*self._running.values())
        await super().stop()

    async def begin(self, app_id: str, campaign_id: str, key: str, now: int) -> DryRun:
        run = await start_dry_run(self.context, app_id, campaign_id, key, now)
        self._launch(run)
        return run

    async def begin_upload(
        self, app_id: str, campaign_id: str, content: AsyncIterable[bytes], now: int
    ) -> DryRun:
        """A dry run of a file uploaded directly, kept under a key of its own for the
        import that confirms it (``AudienceCsvFailed`` at its header, as an import)."""
        context, storage = self.context, self.context.storage
        campaign = await get_campaign(context.campaigns, app_id, campaign_id)
        require(campaign, "a dry run of a CSV import", "draft")
        key = await uploads.store_checked(
            storage.keys, storage.chunks, app_id, campaign_id, content, now, context.limits
        )
        try:
            return await self.begin(app_id, campaign_id, key, now)
        except Exception:
            await uploads.discard(storage.keys, storage.chunks, key)
            raise

    async def idle(self) -> None:  # the dry runs running now are over
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def _launch(self, run: DryRun) -> None:
        async def go() -> None:
            with gone_scope(asyncio.Event()):  # not the work of the request that started it
                try:
                    await run_dry_run(self.context, run, self._progress_every_s)
                except Exception:  # its outcome could not be saved: a sweep runs it again
                    log.exception("campaign.dry_run_crashed", dry_run_id=run.dry_run_id)

        task = asyncio.create_task(go(), name=f"csv-dry-run-{run.dry_run_id}")
        self._running[run.dry_run_id] = task
        task.add_done_callback(lambda _: self._running.pop(run.dry_run_id, None))

    async def tick(self) -> list[DryRun]:
        return await self.sweep(clock())

    async def sweep(self, at: int) -> list[DryRun]:
        """Drop the expired dry runs; run again those whose heartbeat stopped (their
        process died), from the start. The dry runs run again."""
        runs = self.context.storage.dry_runs
        await runs.delete_expired(at)
        again = []
        for run in await runs.running():
            if run.updated_at + STALE_S > at or run.dry_run_id in self._running:
                continue
            restarted = _afresh(run, at)
            if not await runs.claim(run, restarted):
                continue
            if restarted.attempts > MAX_ATTEMPTS:
                await runs.save(restarted.failed(_INTERRUPTED, at))
                continue
            log.info(
                "campaign.dry_run_restarted", dry_run_id=run.dry_run_id, attempt=restarted.attempts
            )
            self._launch(restarted)
            again.append(restarted)
        return again
