"""The Campaign detail page: counts and recipients by status, live over server-sent events
(``/dashboard/apps/{appId}/campaigns/{campaignId}``).

- ``GET .../{campaignId}``: the page; htmx asks for the recipients table or the channels
  alone (``HX-Target``) when the filter, the paging or the live stream changes them.
- ``GET .../{campaignId}/live``: the page's live part as HTML fragments, server-sent as
  the public ``GET /v3/campaigns/campaigns/{id}/events`` sends its JSON (the same
  ``live.service.watch`` on the same hub), ending after the final one.
- ``POST .../{campaignId}/cancel``: ``POST .../{id}/cancel``'s use case, for editors and
  owners, audited ``campaign.cancel``.

The page is complete as served: without JavaScript a reload shows the latest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.ids import now

from ..campaigns import tracking
from ..campaigns.domain import (
    RECIPIENT_STATUSES,
    CampaignBusy,
    CampaignNotFound,
    CampaignStatusRefused,
)
from ..campaigns.service import cancel_campaign, get_campaign
from ..live.models import Snapshot
from ..live.service import campaign_reader, watch
from ..paging import PageOf
from .campaign_detail import ID_MAX_LENGTH, LiveView, RecipientsFilter, RecipientsPage
from .campaigns import no_such_campaign
from .forms import texts
from .kit import PageKit
from .streams import event_stream, first_snapshot, fragment_events
from .web import PREFIX, Member, editors_only, is_htmx, redirect

LIVE_PARTIAL = "partials/campaign_detail_live.html"
# The parts htmx asks for alone (``HX-Target``: the element's id) and their templates.
_PARTS = {
    "campaign-recipients": "partials/campaign_detail_recipients.html",
    "campaign-channels": "partials/campaign_detail_channels.html",
}


def _checked_id(campaign_id: str) -> str:
    if not campaign_id or len(campaign_id) > ID_MAX_LENGTH:
        raise no_such_campaign(campaign_id[:ID_MAX_LENGTH])
    return campaign_id


def _may_act(member: Member) -> None:
    editors_only(member, "viewers can read campaigns but not change them.")


def _urls(member: Member, campaign_id: str) -> dict[str, str]:
    app = f"{PREFIX}/apps/{quote(member.app.app_id, safe='')}"
    here = f"{app}/campaigns/{quote(campaign_id, safe='')}"
    return {"campaigns_url": f"{app}/campaigns", "templates_url": f"{app}/templates", "here": here}


def _refused(exc: CampaignStatusRefused) -> str:
    status = str(exc.details.get("status", "")).replace("_", " ")
    return f"This campaign is {status}: only a draft or a scheduled campaign can be cancelled."


def router(kit: PageKit) -> APIRouter:  # long: one closure per route, on the same readers
    dashboard, adapters = kit.dashboard, kit.adapters
    read = campaign_reader(adapters.campaigns, adapters.campaign_tracking)
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}/campaigns", include_in_schema=False)
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    member_of = Depends(dashboard.member)

    async def snapshot(member: Member, campaign_id: str) -> Snapshot:
        try:
            return await read(member.app.app_id, _checked_id(campaign_id))
        except CampaignNotFound as exc:
            raise no_such_campaign(campaign_id) from exc

    async def recipients(
        member: Member, campaign_id: str, wanted: RecipientsFilter
    ) -> RecipientsPage:
        found = await tracking.list_recipients(
            adapters.campaigns,
            adapters.recipients,
            adapters.campaign_tracking,
            member.app.app_id,
            campaign_id,
            wanted.status,
            wanted.paging(),
        )
        assert isinstance(found, PageOf)  # page mode
        return RecipientsPage.of(found)

    async def part(
        target: str | None, member: Member, campaign_id: str, context: dict[str, Any]
    ) -> dict[str, Any]:
        """What the page (or the part htmx asked for, ``target``) shows besides the
        live part."""
        app_id = member.app.app_id
        if target in (None, "campaign-recipients"):
            context["recipients"] = await recipients(member, campaign_id, context["filter"])
        if target in (None, "campaign-channels"):
            context["channels"] = await tracking.sequence_metrics(
                adapters.campaigns,
                kit.uses.templates,
                adapters.campaign_tracking,
                app_id,
                campaign_id,
            )
        if target is None:
            template_id = context["live"].campaign.template_id
            context["template"] = await kit.uses.templates.get(app_id, template_id)
        return context

    async def page(
        request: Request,
        member: Member,
        campaign_id: str,
        problem: str | None = None,
        status: int = 200,
    ) -> Response:
        live = LiveView.of(await snapshot(member, campaign_id))
        context: dict[str, Any] = {
            **_urls(member, campaign_id),
            "live": live,
            "filter": RecipientsFilter.parse(texts(request.query_params)),
            "problem": problem,
            "statuses": RECIPIENT_STATUSES,
        }
        asked = request.headers.get("hx-target", "") if is_htmx(request) else ""
        target = asked if asked in _PARTS else None
        try:
            context = await part(target, member, campaign_id, context)
        except CampaignNotFound as exc:  # deleted in between
            raise no_such_campaign(campaign_id) from exc
        template = _PARTS[target] if target else "campaign_detail.html"
        return dashboard.render(request, template, context, status=status)

    @routes.get("/{campaign_id}")
    async def campaign_detail(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        return await page(request, member, campaign_id)

    @routes.get("/{campaign_id}/live")
    async def campaign_live(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        """The live part, re-rendered at each change of the campaign's stream."""
        app_id = member.app.app_id
        snapshots = watch(app_id, _checked_id(campaign_id), read=read, hub=adapters.live)
        try:
            first = await first_snapshot(snapshots)
        except CampaignNotFound as exc:
            raise no_such_campaign(campaign_id) from exc
        urls = _urls(member, campaign_id)

        def render(shown: Snapshot) -> str:
            context = {**urls, "live": LiveView.of(shown), "streamed": True}
            return dashboard.fragment(request, LIVE_PARTIAL, context)

        return event_stream(fragment_events(snapshots, first, render))

    @routes.post("/{campaign_id}/cancel")
    async def campaign_cancel(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        _may_act(member)
        app_id = member.app.app_id
        try:
            before = await get_campaign(adapters.campaigns, app_id, _checked_id(campaign_id))
            await cancel_campaign(adapters.campaigns, app_id, campaign_id, now())
        except CampaignNotFound as exc:
            raise no_such_campaign(campaign_id) from exc
        except CampaignStatusRefused as exc:
            return await page(request, member, campaign_id, _refused(exc), status=409)
        except CampaignBusy:
            busy = "Another request changed this campaign at the same moment. Try again."
            return await page(request, member, campaign_id, busy, status=409)
        await kit.auditor.record(
            member.operator.email,
            app_id,
            "campaign.cancel",
            campaign_id,
            {"name": before.name, "from": before.status},
        )
        return redirect(_urls(member, campaign_id)["here"], request)

    return routes
