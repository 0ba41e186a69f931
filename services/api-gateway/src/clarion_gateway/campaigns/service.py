"""Use cases of campaigns (lifecycle) and the ports they need.

Audience use cases live in ``audience``; the dependencies are passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from clarion_shared.cursor import CursorPage, CursorRequest, ListSorts, PageRequest
from clarion_shared.errors import Invalid
from clarion_shared.ids import new_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

from ..paging import PageOf, SortKey, matches_search, paginate
from ..sends.domain import SendLimits, UnknownTemplate, variable_problems
from ..templates.service import TemplateRepository
from .domain import (
    Campaign,
    CampaignBusy,
    CampaignNotFound,
    CampaignStatus,
    CampaignVariables,
    cancelled,
    check_name,
    edited,
    pinned_version,
    scheduled,
)

log = get_logger(__name__)

# Attempts at a conditional save before the request gives up (``CampaignBusy``).
SAVE_ATTEMPTS = 5


class CampaignRepository(Resource, Protocol):
    async def insert(self, campaign: Campaign) -> bool:
        """False when the id is taken in the app."""
        ...

    async def get(self, app_id: str, campaign_id: str) -> Campaign | None: ...

    async def list_for_app(self, app_id: str) -> list[Campaign]: ...

    async def replace(self, campaign: Campaign) -> bool:
        """Save unless someone saved it since it was read (``revision`` moved)."""
        ...

    async def delete(self, campaign: Campaign) -> bool:
        """Delete it unless someone saved it since it was read."""
        ...

    async def due(self, now: int, stalled_before: int) -> list[Campaign]:
        """Every app's campaigns to send now: ``scheduled`` at or before ``now``, and
        ``sending`` ones not dispatched that started before ``stalled_before`` (a send
        cut short by a crash or an outage)."""
        ...


@dataclass(frozen=True)
class CampaignDraft:
    name: str
    template_id: str
    template_version: int
    variables: CampaignVariables = field(default_factory=dict)
    tag: str | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignQuery:
    status: CampaignStatus | None = None
    search: str | None = None
    paging: PageRequest | CursorRequest = field(
        default_factory=lambda: PageRequest(1, 20, "updatedAt", "desc")
    )


CAMPAIGN_SORTS = ListSorts(
    fields={"updatedAt": "updatedAt", "createdAt": "createdAt", "name": "name"},
    page_default=("updatedAt", "desc"),
)
_SORT_KEYS: dict[str, SortKey[Campaign]] = {
    "updatedAt": SortKey(lambda c: c.updated_at),
    "createdAt": SortKey(lambda c: c.created_at),
    "name": SortKey(lambda c: c.name, fold=True),
}


def check_campaign_variables(variables: CampaignVariables, limits: SendLimits) -> None:
    """The campaign's variables within a receiver's limits (they join every receiver's)."""
    problems = variable_problems(variables, "variables", limits)
    if problems:
        raise Invalid(
            "Some variables are too large.",
            dev_message=f"{problems[0]['message']} ({problems[0]['field']})",
            details=problems[:20],
        )


async def create_campaign(
    campaigns: CampaignRepository,
    templates: TemplateRepository,
    app_id: str,
    draft: CampaignDraft,
    now: int,
    limits: SendLimits = SendLimits(),
) -> Campaign:
    """A draft pinned to an approved version of the template (id or slug)."""
    template = await templates.get(app_id, draft.template_id)
    if template is None:
        raise UnknownTemplate(draft.template_id)
    pinned_version(template, draft.template_version)
    check_campaign_variables(draft.variables, limits)
    campaign = Campaign(
        app_id=app_id,
        campaign_id=new_id("cmp_"),
        name=check_name(draft.name),
        template_id=template.template_id,
        template_version=draft.template_version,
        status="draft",
        created_at=now,
        updated_at=now,
        variables=draft.variables,
        tag=draft.tag,
        config=draft.config,
    )
    if not await campaigns.insert(campaign):  # a random id collided: practically never
        raise CampaignBusy()
    log.info("campaign.created", app_id=app_id, campaign_id=campaign.campaign_id)
    return campaign


async def get_campaign(campaigns: CampaignRepository, app_id: str, campaign_id: str) -> Campaign:
    campaign = await campaigns.get(app_id, campaign_id)
    if campaign is None:
        raise CampaignNotFound()
    return campaign


async def list_campaigns(
    campaigns: CampaignRepository, app_id: str, query: CampaignQuery
) -> PageOf[Campaign] | CursorPage[Campaign]:
    # Filtered in process: an app's campaigns are read with one equality on app_id.
    found = [
        c
        for c in await campaigns.list_for_app(app_id)
        if (query.status is None or c.status == query.status)
        and matches_search(query.search, c.name, c.campaign_id)
    ]
    return paginate(found, query.paging, _SORT_KEYS, lambda c: c.campaign_id)


async def change_campaign(
    campaigns: CampaignRepository,
    app_id: str,
    campaign_id: str,
    change: Callable[[Campaign], Campaign],
) -> Campaign:
    """Read, ``change`` and save; read again while another request wins the save."""

    async def attempt() -> Campaign:
        current = await get_campaign(campaigns, app_id, campaign_id)
        updated = change(current)
        if updated == current:
            return current
        if not await campaigns.replace(updated):
            raise CampaignBusy()
        return replace(updated, revision=updated.revision + 1)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(SAVE_ATTEMPTS),
        retry=retry_if_exception_type(CampaignBusy),
        reraise=True,
    )
    return await retrying(attempt)


async def update_campaign(
    campaigns: CampaignRepository,
    app_id: str,
    campaign_id: str,
    now: int,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
) -> Campaign:
    campaign = await change_campaign(
        campaigns, app_id, campaign_id, lambda c: edited(c, now, name=name, config=config)
    )
    log.info("campaign.updated", app_id=app_id, campaign_id=campaign_id)
    return campaign


async def cancel_campaign(
    campaigns: CampaignRepository, app_id: str, campaign_id: str, now: int
) -> Campaign:
    campaign = await change_campaign(campaigns, app_id, campaign_id, lambda c: cancelled(c, now))
    log.info("campaign.cancelled", app_id=app_id, campaign_id=campaign_id)
    return campaign


async def schedule_campaign(
    campaigns: CampaignRepository, app_id: str, campaign_id: str, at: int, now: int
) -> Campaign:
    """Scheduled (again) for ``at``; the scheduler (``scheduler``) sends it then."""
    campaign = await change_campaign(
        campaigns, app_id, campaign_id, lambda c: scheduled(c, at, now)
    )
    log.info("campaign.scheduled", app_id=app_id, campaign_id=campaign_id, at=at)
    return campaign
