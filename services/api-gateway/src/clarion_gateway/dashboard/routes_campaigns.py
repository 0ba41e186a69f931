"""The Campaigns pages: the list and "New campaign" (template and version, audience by CSV
upload with a dry run or by "Pick users", then "Send now" or "Schedule")
(``/dashboard/apps/{appId}/campaigns...``).

The list reads as ``GET /v3/campaigns/campaigns`` does and a draft is created as
``POST /v3/campaigns/campaigns`` creates it (``campaigns``); the draft's audience and its
send are ``routes_campaign_draft``'s. Included before the Campaign detail's router, so
that ``/campaigns/new`` is not taken for a campaign's id.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.ids import now

from ..campaigns import service
from ..campaigns.domain import CAMPAIGN_STATUSES
from ..paging import PageOf
from . import routes_campaign_draft
from .campaigns import (
    CampaignsFilter,
    NewCampaignForm,
    Refusal,
    audience_url,
    campaigns_page,
    in_words,
    may_change,
    template_choices,
)
from .forms import app_templates, texts
from .kit import PageKit
from .web import PREFIX, Member, redirect


def router(kit: PageKit) -> APIRouter:  # long: one closure per page
    dashboard, auditor = kit.dashboard, kit.auditor
    campaigns, templates = kit.adapters.campaigns, kit.uses.templates
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}/campaigns", include_in_schema=False)
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    member_of = Depends(dashboard.member)

    @routes.get("")
    async def list_campaigns(request: Request, member: Member = member_of) -> Response:
        wanted = CampaignsFilter.parse(texts(request.query_params))
        app_id = member.app.app_id
        found = await service.list_campaigns(campaigns, app_id, wanted.query())
        assert isinstance(found, PageOf)  # a page request answers a page
        names = {t.template_id: t.name for t in await app_templates(templates, app_id)}
        context = {
            "filter": wanted,
            "listed": campaigns_page(found, names),
            "statuses": CAMPAIGN_STATUSES,
        }
        return dashboard.render(request, "campaigns.html", context)

    def new_form(request: Request, form: NewCampaignForm, status: int = 200) -> Response:
        return dashboard.render(request, "campaign_new.html", {"form": form}, status=status)

    @routes.get("/new")
    async def new_campaign(request: Request, member: Member = member_of) -> Response:
        """The form; ``templateId`` (and the name typed so far) re-render it with that
        template's versions (htmx on a change; without JavaScript, the "Choose"
        button)."""
        may_change(member)
        choices = template_choices(await app_templates(templates, member.app.app_id))
        form = NewCampaignForm.of(choices, texts(request.query_params))
        return new_form(request, form)

    @routes.post("/new")
    async def create(request: Request, member: Member = member_of) -> Response:
        may_change(member)
        app_id = member.app.app_id
        choices = template_choices(await app_templates(templates, app_id))
        posted = texts(await request.form())
        form = NewCampaignForm.of(choices, posted)
        if posted.get("action", "create") != "create":  # "Choose" without JavaScript
            return new_form(request, form)
        draft = form.draft()
        if draft is None:
            return new_form(request, form, status=400)
        try:
            campaign = await service.create_campaign(
                campaigns, templates, app_id, draft, now(), kit.uses.limits
            )
        except Refusal as exc:
            form.errors.append(in_words(exc))
            return new_form(request, form, status=400)
        await auditor.record(
            member.operator.email,
            app_id,
            "campaign.create",
            campaign.campaign_id,
            {
                "name": campaign.name,
                "templateId": campaign.template_id,
                "templateVersion": campaign.template_version,
            },
        )
        return redirect(audience_url(app_id, campaign.campaign_id), request)

    routes.include_router(routes_campaign_draft.router(kit))
    return routes
