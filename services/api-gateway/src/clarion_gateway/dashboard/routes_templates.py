"""The Templates pages: the list and a template's detail with a live preview
(``/dashboard/apps/{appId}/templates...``).

The list reads as ``GET /v3/campaigns/templates`` does (``list_templates``), the detail
as ``GET /v3/campaigns/templates/{id}`` does, on the same repository (``UseCases``); an
editor's "Approve" is ``PUT .../templates/{id} {status: approved}``'s use case.
Pages work without JavaScript; htmx swaps the results, the shown version and the
preview as the operator types (``.../preview`` answers the preview alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.ids import now

from ..templates.domain import Template
from .forms import texts
from .kit import PageKit
from .sending import entered_values
from .templates_pages import (
    STATUSES,
    Approval,
    TemplatesFilter,
    approvable,
    approve,
    preview,
    raw_content,
    templates_page,
    version_of,
)
from .web import PREFIX, Member, PageProblem, editors_only, is_htmx, redirect


def _may_approve(member: Member) -> None:
    editors_only(member, "viewers can read templates but not approve them.")


def _detail_url(member: Member, template_id: str) -> str:
    return f"{PREFIX}/apps/{quote(member.app.app_id, safe='')}/templates/{quote(template_id)}"


def router(kit: PageKit) -> APIRouter:  # long: one closure per page
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}/templates", include_in_schema=False)
    dashboard, templates = kit.dashboard, kit.uses.templates
    approval = Approval(templates, kit.adapters.categories, kit.settings.template_limits())
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    member_of = Depends(dashboard.member)

    async def the_template(member: Member, template_id: str) -> Template:
        # Read in the member's app only: another app's template is not found either.
        template = await templates.get(member.app.app_id, template_id)
        if template is None:
            raise PageProblem(404, "No such template", f"This app has no template {template_id}.")
        return template

    def detail(
        request: Request,
        template: Template,
        query: Mapping[str, str],
        errors: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        version = version_of(template, query.get("version"))
        if version is None:
            raise PageProblem(
                404,
                "No such version",
                f"Template {template.template_id} has no version {query.get('version')}. "
                f"Its versions are 1 to {template.newest.version}.",
            )
        approved = query.get("approved")
        context = {
            "template": template,
            "version": version,
            "content": raw_content(version),
            "preview": preview(version, entered_values(query)),
            "approvable": approvable(template, template.newest),
            "approved_now": approved == str(version.version) and version.status == "approved",
            "errors": errors or [],
        }
        return dashboard.render(request, "template_detail.html", context, status=status)

    @routes.get("")
    async def list_templates(request: Request, member: Member = member_of) -> Response:
        wanted = TemplatesFilter.parse(texts(request.query_params))
        listing = await templates_page(templates, member.app.app_id, wanted)
        context = {
            "filter": wanted,
            "listing": listing,
            "statuses": STATUSES,
        }
        return dashboard.render(request, "templates.html", context)

    @routes.get("/{template_id}")
    async def template_detail(
        request: Request, template_id: str, member: Member = member_of
    ) -> Response:
        """``version`` shows an older version; ``var.<key>`` fills the preview in
        (the "Preview" button without JavaScript)."""
        template = await the_template(member, template_id)
        return detail(request, template, texts(request.query_params))

    @routes.get("/{template_id}/preview")
    async def template_preview(
        request: Request, template_id: str, member: Member = member_of
    ) -> Response:
        """The preview alone, for htmx; a browser asking for it gets the page."""
        query = texts(request.query_params)
        if not is_htmx(request):
            return redirect(f"{_detail_url(member, template_id)}?{urlencode(query)}")
        template = await the_template(member, template_id)
        version = version_of(template, query.get("version"))
        if version is None:
            raise PageProblem(404, "No such version", "That version does not exist.")
        context = {"preview": preview(version, entered_values(query))}
        return dashboard.render(request, "partials/template_preview.html", context)

    @routes.post("/{template_id}/approve")
    async def approve_version(
        request: Request, template_id: str, member: Member = member_of
    ) -> Response:
        _may_approve(member)
        posted = texts(await request.form())
        template = await the_template(member, template_id)
        number = posted.get("version", "")
        outcome = await approve(approval, template, int(number) if number.isdigit() else 0, now())
        if isinstance(outcome, str):
            shown = {"version": number} if version_of(template, number) else {}
            return detail(request, template, shown, [outcome], status=409)
        await kit.auditor.record(
            member.operator.email,
            member.app.app_id,
            "template.approve",
            template_id,
            {"version": outcome.newest.version, "name": outcome.name},
        )
        query = urlencode({"version": outcome.newest.version, "approved": outcome.newest.version})
        return redirect(f"{_detail_url(member, template_id)}?{query}", request)

    return routes
