"""Campaign progress from the status events: the gateway's read model of what the
dispatcher decides (API.md: the dispatcher decides completion, the gateway reflects it).

Chunk counts are set per chunk, the completion is applied once (it needs ``sending``),
chunk reports are stored under derived ids, receivers settled later kept beside them,
and delivered or read marks and the workers' delivery outcomes (one per notification)
inserted once, in one bulk insert per fetch (``tracking``), so a redelivered or replayed
event changes nothing. A chunk's counts are those of its receivers' states, reported
and settled (``tracking.chunk_counts``), read back after they are written: a settled
failure moves from the chunk's sent to its failed, whichever event came first. A campaign the
completion made final is announced (``finished``) each time the completion is applied,
a redelivered one too, under the same event id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    FeedItemRead,
    ReceiversSettled,
)
from clarion_shared.logging import get_logger
from clarion_shared.public.feed import FeedItemPublic

from .domain import Campaign, CampaignNotFound, chunk_dispatched, finished, with_engagement
from .finished import FinishedPublisher, finished_event
from .service import CampaignRepository, change_campaign
from .tracking import (
    WHOLE_CAMPAIGN,
    ChunkReport,
    Mark,
    MarkKind,
    Settlement,
    TrackingRepository,
    chunk_counts,
)

log = get_logger(__name__)

StatusHandler = Callable[[Sequence[AnyStatusEvent]], Awaitable[None]]


class CampaignEvents(Protocol):
    """The status events of campaigns, delivered to one handler (``consumers``)."""

    def subscribe(self, handle: StatusHandler) -> None:
        """Call ``handle`` with each fetch of events; before the broker starts."""
        ...

    async def ready(self) -> bool:
        """The consumer has joined its group."""
        ...


ChunkCounts = Mapping[int, tuple[int, int]]
"""(sent, failed) per chunk, from the chunks' receiver states as stored."""


def progressed(
    campaign: Campaign, events: Sequence[AnyStatusEvent], counts: ChunkCounts | None = None
) -> Campaign:
    """``campaign`` after ``events``; a chunk's counts from ``counts`` when known (its
    receivers' states), else from its ``ChunkDispatched``."""
    counts = counts or {}
    for event in events:
        if isinstance(event, ChunkDispatched | ReceiversSettled):
            found = counts.get(event.chunk)
            if found is None and isinstance(event, ChunkDispatched):
                found = (event.sent, event.failed)
            if found is not None:
                campaign = chunk_dispatched(campaign, event.chunk, *found)
        elif isinstance(event, BatchCompleted):
            campaign = finished(
                campaign,
                event.status,
                event.completed_at,
                event.sent,
                event.delivered,
                event.failed,
            )
    return campaign


def report_of(event: ChunkDispatched) -> ChunkReport | None:
    if event.receivers is None:
        return None
    return ChunkReport(
        app_id=event.app_id,
        campaign_id=event.send_id,
        chunk=event.chunk,
        at=event.occurred_at,
        receivers=tuple(event.receivers),
        channels=tuple(event.channels),
    )


def settlement_of(event: ReceiversSettled) -> Settlement:
    """The event's receivers that are final (one still pending would move nothing)."""
    return Settlement(
        app_id=event.app_id,
        campaign_id=event.send_id,
        chunk=event.chunk,
        at=event.occurred_at,
        receivers=tuple(r for r in event.receivers if r.status != "pending"),
    )


def marks_of(event: FeedItemDelivered | FeedItemRead) -> list[Mark]:
    """A delivered or read item's marks: on its channel, and for the campaign."""
    item = FeedItemPublic.model_validate(event.feed_item)
    kind: MarkKind = "delivered" if isinstance(event, FeedItemDelivered) else "read"
    return [
        Mark(event.app_id, event.send_id, item.receiver, channel, kind, event.occurred_at)
        for channel in (item.channel_id, WHOLE_CAMPAIGN)
    ]


def outcome_of(event: DeliverySent | DeliveryFailed) -> Mark | None:
    """A queued delivery a worker ended, as a mark on its channel keyed by its
    notification; None for what no channel tally counted as queued (a receiver failed
    at the fan-out: no notification; an in-app delivery, final when its item was
    written)."""
    if event.notification_id is None or event.channel_id is None:
        return None
    if event.channel_type in (None, "in_app"):
        return None
    kind: MarkKind = "sent" if isinstance(event, DeliverySent) else "failed"
    return Mark(
        event.app_id,
        event.send_id,
        event.uid,
        event.channel_id,
        kind,
        event.occurred_at,
        notification_id=event.notification_id,
    )


_TRACKED = (ChunkDispatched, ReceiversSettled, BatchCompleted, FeedItemDelivered, FeedItemRead)


async def apply_status(
    campaigns: CampaignRepository,
    tracking: TrackingRepository,
    announcer: FinishedPublisher,
    events: Sequence[AnyStatusEvent],
) -> None:
    """Apply one fetch of status events: the chunks' reports, the receivers settled,
    the feed items' marks and the deliveries' outcomes first (so a campaign shown final
    has its recipients' states and its channels' numbers), then one save per campaign
    they concern, and the announcement of each campaign they completed."""
    by_campaign: dict[tuple[str, str], list[AnyStatusEvent]] = {}
    reports: list[ChunkReport] = []
    settlements: list[Settlement] = []
    marks: list[Mark] = []
    outcomes: list[Mark] = []
    for event in events:
        if event.mode != "campaign":
            continue
        if isinstance(event, DeliverySent | DeliveryFailed):
            outcome = outcome_of(event)
            outcomes += [outcome] if outcome is not None else []
            continue
        if not isinstance(event, _TRACKED):
            continue
        by_campaign.setdefault((event.app_id, event.send_id), []).append(event)
        if isinstance(event, ChunkDispatched):
            report = report_of(event)
            reports += [report] if report is not None else []
        elif isinstance(event, ReceiversSettled):
            settlements.append(settlement_of(event))
        elif isinstance(event, FeedItemDelivered | FeedItemRead):
            marks += marks_of(event)
    await asyncio.gather(_store(tracking, reports, settlements), tracking.mark(marks + outcomes))
    marked = {(m.app_id, m.campaign_id) for m in marks}
    for (app_id, campaign_id), own in by_campaign.items():
        engaged = None
        if (app_id, campaign_id) in marked:
            engaged = await _engaged(tracking, app_id, campaign_id)
        counts = await _chunk_counts(tracking, app_id, campaign_id, own)

        def change(
            c: Campaign,
            own: list[AnyStatusEvent] = own,
            engaged: tuple[int, int] | None = engaged,
            counts: ChunkCounts = counts,
        ) -> Campaign:
            c = progressed(c, own, counts)
            return c if engaged is None else with_engagement(c, *engaged)

        try:
            campaign = await change_campaign(campaigns, app_id, campaign_id, change)
        except CampaignNotFound:
            log.warning("campaign.progress_unknown", app_id=app_id, campaign_id=campaign_id)
            continue
        completions = [e for e in own if isinstance(e, BatchCompleted)]
        if completions:
            await _completed(announcer, campaign, completions[-1])


async def _store(
    tracking: TrackingRepository, reports: Sequence[ChunkReport], settlements: Sequence[Settlement]
) -> None:
    """Reports, then settlements: one after the other, as both may create a chunk's
    document (and either order ends in the same states)."""
    await tracking.put_reports(reports)
    await tracking.settle(settlements)


async def _chunk_counts(
    tracking: TrackingRepository, app_id: str, campaign_id: str, events: Sequence[AnyStatusEvent]
) -> ChunkCounts:
    """The counts of the chunks ``events`` reported or settled, from their states now
    stored (the others are not read)."""
    chunks = [
        e.chunk
        for e in events
        if isinstance(e, ReceiversSettled)
        or (isinstance(e, ChunkDispatched) and e.receivers is not None)
    ]
    if not chunks:
        return {}
    found = await tracking.chunk_reports(app_id, campaign_id, chunks)
    return {report.chunk: chunk_counts(report) for report in found}


async def _completed(
    announcer: FinishedPublisher, campaign: Campaign, completed: BatchCompleted
) -> None:
    """Announce ``campaign`` final when ``completed`` made it so (again on a
    redelivery: the same event id); a campaign it did not apply to (no longer sending
    when it came) stays as it is, unannounced."""
    log.info(
        "campaign.completed",
        app_id=campaign.app_id,
        campaign_id=campaign.campaign_id,
        status=campaign.status,
        sent=campaign.counts.sent,
        failed=campaign.counts.failed,
    )
    if campaign.status == completed.status:
        await announcer.campaign_finished(finished_event(campaign, completed))


async def _engaged(tracking: TrackingRepository, app_id: str, campaign_id: str) -> tuple[int, int]:
    """(delivered, read) recipients of the campaign, counted from its marks."""
    delivered, read = await asyncio.gather(
        tracking.marked(app_id, campaign_id, "delivered", WHOLE_CAMPAIGN),
        tracking.marked(app_id, campaign_id, "read", WHOLE_CAMPAIGN),
    )
    return delivered, read
