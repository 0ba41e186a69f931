"""Use cases of live progress: watch a send, and read its snapshot (campaign or batch).

``watch`` knows nothing of HTTP: the public API encodes its snapshots as server-sent
events, the dashboard as HTML fragments. It subscribes before the first reading, so an
event that lands in between still wakes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Protocol

from clarion_shared.errors import NotFound
from clarion_shared.sse import encode_event

from ..campaigns.models import CampaignPublic, RecipientSummary
from ..campaigns.service import CampaignRepository, get_campaign
from ..campaigns.tracking import TrackingRepository, summary
from .hub import LiveHub
from .models import BatchPublic, CampaignProgress, Snapshot

COALESCE_S = 0.25
"""At most one snapshot per stream this often: a burst of events is one reading."""

FINAL_CAMPAIGN = frozenset({"completed", "partially_failed", "failed", "cancelled"})
FINAL_BATCH = frozenset({"completed", "partially_failed", "failed"})

Reader = Callable[[str, str], Awaitable[Snapshot]]
"""Reads the snapshot of (app id, send id); raises ``NotFound`` for another app's."""


class BatchNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Batch")


class BatchStatuses(Protocol):
    """The dispatcher's batch status (it owns batches)."""

    async def get(self, app_id: str, batch_id: str) -> BatchPublic | None:
        """The batch's status, None when the app has no such batch."""
        ...


def campaign_reader(campaigns: CampaignRepository, tracking: TrackingRepository) -> Reader:
    """A campaign's object and recipient counts, from the gateway's read model."""

    async def read(app_id: str, campaign_id: str) -> Snapshot:
        campaign = await get_campaign(campaigns, app_id, campaign_id)
        counts = summary(campaign.total_targets, await tracking.reports(app_id, campaign_id))
        progress = CampaignProgress(
            campaign=CampaignPublic.of(campaign),
            recipients=RecipientSummary(total=campaign.total_targets, **counts),
        )
        return Snapshot(progress, campaign.status in FINAL_CAMPAIGN)

    return read


def batch_reader(statuses: BatchStatuses) -> Reader:
    """A batch's status and counts, from the dispatcher."""

    async def read(app_id: str, batch_id: str) -> Snapshot:
        batch = await statuses.get(app_id, batch_id)
        if batch is None:
            raise BatchNotFound()
        return Snapshot(batch, batch.status in FINAL_BATCH)

    return read


async def watch(
    app_id: str,
    send_id: str,
    *,
    read: Reader,
    hub: LiveHub,
    coalesce_s: float = COALESCE_S,
) -> AsyncGenerator[Snapshot, None]:
    """The send's snapshot at once, then a fresh one after each event of the send (at
    most one per ``coalesce_s``; one equal to the last shown is skipped), ending after
    the final one. The first step raises ``NotFound`` when the app has no such send."""
    loop = asyncio.get_running_loop()
    async with hub.subscribe((app_id, send_id)) as signals:
        snapshot = await read(app_id, send_id)
        yield snapshot
        last_at = loop.time()
        while not snapshot.final:
            await signals.get()
            wait = coalesce_s - (loop.time() - last_at)
            if wait > 0:
                await asyncio.sleep(wait)
            if not signals.empty():
                signals.get_nowait()  # the events of the wait: this reading covers them
            fresh = await read(app_id, send_id)
            last_at = loop.time()
            if fresh != snapshot:
                snapshot = fresh
                yield snapshot


async def sse_events(snapshots: AsyncIterator[Snapshot], first: Snapshot) -> AsyncIterator[str]:
    """``first``, then the rest of ``snapshots``, as server-sent events: ``progress``
    for each, ``done`` for the final one (``id:`` counts them from 1)."""
    number = 0
    snapshot: Snapshot | None = first
    try:
        while snapshot is not None:
            number += 1
            kind = "done" if snapshot.final else "progress"
            yield encode_event(kind, snapshot.to_json(), str(number))
            if snapshot.final:
                return
            snapshot = await anext(snapshots, None)
    finally:
        aclose = getattr(snapshots, "aclose", None)
        if aclose is not None:
            await aclose()  # the watch's subscription ends with the stream
