"""Campaign progress from the status events: the gateway's read model of what the
dispatcher decides (API.md: the dispatcher decides completion, the gateway reflects it).

Chunk counts are set per chunk and the completion is applied once (it needs
``sending``), so a redelivered or replayed event changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from clarion_shared.contracts.status import AnyStatusEvent, BatchCompleted, ChunkDispatched
from clarion_shared.logging import get_logger

from .domain import Campaign, CampaignNotFound, chunk_dispatched, finished
from .service import CampaignRepository, change_campaign

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


def progressed(campaign: Campaign, events: Sequence[AnyStatusEvent]) -> Campaign:
    for event in events:
        if isinstance(event, ChunkDispatched):
            campaign = chunk_dispatched(campaign, event.chunk, event.sent, event.failed)
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


async def apply_status(campaigns: CampaignRepository, events: Sequence[AnyStatusEvent]) -> None:
    """Apply one fetch of status events: one save per campaign they concern."""
    by_campaign: dict[tuple[str, str], list[AnyStatusEvent]] = {}
    for event in events:
        if event.mode == "campaign" and isinstance(event, ChunkDispatched | BatchCompleted):
            by_campaign.setdefault((event.app_id, event.send_id), []).append(event)
    for (app_id, campaign_id), own in by_campaign.items():

        def change(c: Campaign, own: list[AnyStatusEvent] = own) -> Campaign:
            return progressed(c, own)

        try:
            campaign = await change_campaign(campaigns, app_id, campaign_id, change)
        except CampaignNotFound:
            log.warning("campaign.progress_unknown", app_id=app_id, campaign_id=campaign_id)
            continue
        if any(isinstance(e, BatchCompleted) for e in own):
            log.info(
                "campaign.completed",
                app_id=app_id,
                campaign_id=campaign_id,
                status=campaign.status,
                sent=campaign.counts.sent,
                failed=campaign.counts.failed,
            )
