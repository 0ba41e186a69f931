"""Scheduled campaigns fire at their time: every gateway process looks for due campaigns
every ``interval_s`` and sends them as ``POST .../send`` would. The same look resumes a
send cut short (``sending``, not dispatched, started more than ``stall_s`` ago: the
process that sent it crashed, or the broker or the dispatcher was away).

Durable: the schedule is the campaign document itself, so a restart loses nothing, and
a campaign due while no gateway ran fires at the first look after the start. Once: a
send takes the campaign's audience lock (an insert: one process wins, the others skip
it for now) and needs ``scheduled`` (a campaign already sending or sent is refused), and
a send resumed after a crash publishes what the dispatcher's derived ids make no-ops.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from clarion_shared.errors import DomainError
from clarion_shared.lifecycle import Periodic
from clarion_shared.logging import get_logger

from .domain import AudienceBusy, Campaign, CampaignBusy, CampaignStatusRefused
from .service import CampaignRepository

log = get_logger(__name__)

Fire = Callable[[Campaign, int], Awaitable[Campaign]]


class CampaignScheduler(Periodic):
    """A resource: started with the gateway, it ticks until stopped."""

    def __init__(
        self,
        campaigns: CampaignRepository,
        fire: Fire,
        interval_s: float,
        stall_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s, "campaign.scheduler_failed")
        self._campaigns = campaigns
        self._fire = fire
        self._stall_s = stall_s
        self._clock = clock

    async def tick(self, now: int | None = None) -> list[str]:
        """Fire what is due at ``now``; the ids of the campaigns this process sent."""
        at = int(self._clock()) if now is None else now
        fired: list[str] = []
        for campaign in await self._campaigns.due(at, at - int(self._stall_s)):
            try:
                await self._fire(campaign, at)
            except (AudienceBusy, CampaignBusy, CampaignStatusRefused):
                continue  # another process has it, or it changed meanwhile
            except DomainError as exc:
                # It cannot be sent as it is (its template or channel is gone): it stays
                # scheduled, and says why at each look until someone fixes or cancels it.
                log.warning(
                    "campaign.schedule_refused",
                    app_id=campaign.app_id,
                    campaign_id=campaign.campaign_id,
                    error=exc.message,
                )
                continue
            fired.append(campaign.campaign_id)
            log.info(
                "campaign.schedule_fired",
                app_id=campaign.app_id,
                campaign_id=campaign.campaign_id,
                scheduled_at=campaign.scheduled_at,
                late_s=at - (campaign.scheduled_at or at),
            )
        return fired
