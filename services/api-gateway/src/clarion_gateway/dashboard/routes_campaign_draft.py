"""A draft campaign's pages (``/dashboard/apps/{appId}/campaigns/{campaignId}/...``): its
audience (``/audience``: the count so far, a CSV upload with its dry run and then its
import, or "Pick users"), then "Send now" (``/send``) or "Schedule" (``/schedule``), each
on to the Campaign detail page.

Every step is the public API's use case (``campaign_audience``, ``campaigns``). A CSV
is stored and dry-run as ``recipients/csv?dryRun=true`` does; "Confirm import" imports
its file as ``import-csv`` does. Both run in the background of the gateway: a page asked
by htmx shows the run at once and gets its outcome over server-sent events (one ``done``
event once the run is over: no polling); a page without JavaScript waits for it a while.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from clarion_shared.contracts.base import JsonObject
from clarion_shared.ids import now

from ..campaigns import audience, dry_runs, service
from ..campaigns.audience import AudienceChange
from ..campaigns.domain import Campaign
from ..campaigns.sending import send_campaign
from .campaign_audience import (
    AddOutcome,
    Picker,
    audit_audience,
    done_event,
    file_chunks,
    filter_problem,
    matching_filter,
    picker,
    read_dry_run,
    read_import,
    rejected_csv,
    user_ids,
)
from .campaign_audience import chosen_file as chosen_csv
from .campaigns import (
    Refusal,
    audience_url,
    detail_url,
    in_words,
    may_change,
    no_such_campaign,
    send_at,
    settled,
    status_of,
    template_name,
)
from .forms import texts
from .kit import PageKit
from .streams import event_stream
from .users import DirectoryUsers, UsersFilter
from .web import Member, PageProblem, is_htmx, redirect

# How long a page posted without JavaScript waits for a dry run or an import before it
# shows it still running (a small file takes milliseconds).
SETTLE_S = 10.0
ID_MAX_LENGTH = 200
# htmx asks for one panel of the audience page (its ``HX-Target``): that part alone.
_PANELS = {
    "csv-panel": "partials/campaign_audience_csv.html",
    "pick-panel": "partials/campaign_audience_pick.html",
    "pick-results": "partials/campaign_audience_pick.html",
}
_GONE = "That dry run is gone (dry runs are kept for 24 hours). Upload the file again."


def router(kit: PageKit) -> APIRouter:  # long: one closure per route, on the same dependencies
    dashboard, auditor, adapters, uses = kit.dashboard, kit.auditor, kit.adapters, kit.uses
    context = kit.csv_imports.context
    users = DirectoryUsers(adapters.peers)
    # What adding users to an audience writes and reads (``campaigns.audience``).
    stores = (adapters.campaigns, adapters.recipients, adapters.audience_locks, adapters.directory)
    routes = APIRouter(prefix="/{campaign_id}", include_in_schema=False)
    member_of = Depends(dashboard.member)

    async def the_campaign(member: Member, campaign_id: str) -> Campaign:
        found = (
            await adapters.campaigns.get(member.app.app_id, campaign_id)
            if len(campaign_id) <= ID_MAX_LENGTH
            else None
        )
        if found is None:
            raise no_such_campaign(campaign_id)
        return found

    async def to_change(member: Member, campaign_id: str) -> Campaign:
        """The campaign, for an editor or owner about to change it."""
        may_change(member)
        return await the_campaign(member, campaign_id)

    async def page(
        request: Request, campaign: Campaign, status: int = 200, **shown: Any
    ) -> Response:
        """The audience page; to htmx asking for one of its panels, that panel alone
        (with the audience's count, swapped out of band)."""
        values = {
            "campaign": campaign,
            "template_name": await template_name(uses.templates, campaign),
            "csv_max_bytes": kit.settings.csv_max_bytes,
            **shown,
        }
        panel = _PANELS.get(request.headers.get("hx-target") or "")
        if panel is not None and is_htmx(request):
            return dashboard.render(request, panel, {**values, "oob": True}, status=status)
        return dashboard.render(request, "campaign_audience.html", values, status=status)

    async def pick(member: Member, campaign_id: str, wanted: UsersFilter) -> Picker:
        app_id = member.app.app_id
        in_audience = await adapters.recipients.uids(app_id, campaign_id)
        return await picker(users, app_id, wanted, in_audience)

    def fragment(request: Request, template: str, **values: Any) -> str:
        return dashboard.fragment(request, template, values)

    async def add(
        request: Request,
        member: Member,
        campaign: Campaign,
        wanted: UsersFilter,
        errors: list[str],
        via: str,
        adding: Callable[[], Awaitable[AudienceChange]],
    ) -> Response:
        """Users added ``via`` picks or a filter (unless ``errors`` refused it already),
        audited; the picker shows the same users again, and what was added."""
        campaign_id, outcome = campaign.campaign_id, None
        if not errors:
            try:
                change = await adding()
                campaign, outcome = change.campaign, AddOutcome.of(change)
                await audit_audience(auditor, member, campaign_id, via, added=outcome.added)
            except Refusal as exc:
                errors.append(in_words(exc))
        shown = await pick(member, campaign_id, wanted)
        status = 400 if errors else 200
        return await page(
            request, campaign, status, picker=shown, added=outcome, pick_errors=errors
        )

    @routes.get("/audience")
    async def audience_page(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        campaign = await the_campaign(member, campaign_id)
        app_id, query = member.app.app_id, request.query_params
        shown: dict[str, Any] = {}
        if dry_run_id := query.get("dryRun"):
            shown["dry_run"] = await read_dry_run(context, app_id, campaign_id, dry_run_id)
            shown["csv_errors"] = [] if shown["dry_run"] else [_GONE]
        if import_id := query.get("import"):
            shown["csv_import"] = await read_import(context, app_id, campaign_id, import_id)
        return await page(request, campaign, **shown)

    @routes.post("/audience/csv")
    async def upload_csv(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        campaign = await to_change(member, campaign_id)
        app_id = member.app.app_id
        try:
            form = await request.form()
        except HTTPException as exc:  # a body streamed past the request size limit
            problem = "The file is too large to upload."
            return await page(request, campaign, exc.status_code, csv_errors=[problem])
        upload = chosen_csv(form.get("file"))
        if upload is None:
            return await page(request, campaign, 400, csv_errors=["Choose a CSV file to upload."])
        try:
            run = await kit.csv_dry_runs.begin_upload(
                app_id, campaign_id, file_chunks(upload), now()
            )
        except Refusal as exc:
            return await page(request, campaign, status_of(exc), csv_errors=[in_words(exc)])
        finally:
            await upload.close()
        here = f"{audience_url(app_id, campaign_id)}?dryRun={run.dry_run_id}"
        if not is_htmx(request):
            await settled(kit.csv_dry_runs, run.dry_run_id, SETTLE_S)
            return redirect(here)
        view = await read_dry_run(context, app_id, campaign_id, run.dry_run_id)
        response = await page(request, campaign, dry_run=view)
        response.headers["HX-Push-Url"] = here
        return response

    @routes.get("/audience/dry-runs/{dry_run_id}/events")
    async def dry_run_events(
        request: Request, campaign_id: str, dry_run_id: str, member: Member = member_of
    ) -> StreamingResponse:
        """``done`` with the dry run's outcome once it is over."""
        campaign = await the_campaign(member, campaign_id)
        app_id = member.app.app_id
        if await read_dry_run(context, app_id, campaign_id, dry_run_id) is None:
            raise PageProblem(404, "No such dry run", _GONE)

        async def wait() -> bool:
            return await settled(kit.csv_dry_runs, dry_run_id, None)

        async def render() -> str:
            view = await read_dry_run(context, app_id, campaign_id, dry_run_id)
            template = "partials/campaign_audience_dry_run.html"
            return fragment(request, template, campaign=campaign, dry_run=view, settled=True)

        return event_stream(done_event(wait, render))

    @routes.get("/audience/dry-runs/{dry_run_id}/rejected.csv")
    async def rejected_rows(
        campaign_id: str, dry_run_id: str, member: Member = member_of
    ) -> StreamingResponse:
        app_id = member.app.app_id
        try:
            pages = await dry_runs.rejected_pages(context, app_id, campaign_id, dry_run_id, now())
        except Refusal as exc:
            raise PageProblem(
                status_of(exc), "No rejected rows to download", in_words(exc)
            ) from exc
        return StreamingResponse(
            rejected_csv(pages),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{dry_run_id}-rejected.csv"'},
        )

    @routes.post("/audience/import")
    async def confirm_import(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        campaign = await to_change(member, campaign_id)
        app_id = member.app.app_id
        dry_run_id = texts(await request.form()).get("dryRunId", "")
        view = await read_dry_run(context, app_id, campaign_id, dry_run_id)
        if view is None or view.run.status != "completed":
            problem = _GONE if view is None else "Only a dry run that completed can be imported."
            return await page(request, campaign, 400, dry_run=view, csv_errors=[problem])
        try:
            job = await kit.csv_imports.begin(app_id, campaign_id, view.run.upload_key, now())
        except Refusal as exc:
            status = status_of(exc)
            return await page(request, campaign, status, dry_run=view, csv_errors=[in_words(exc)])
        await audit_audience(auditor, member, campaign_id, "csv", importId=job.import_id)
        here = f"{audience_url(app_id, campaign_id)}?import={job.import_id}"
        if not is_htmx(request):
            await settled(kit.csv_imports, job.import_id, SETTLE_S)
            return redirect(here)
        response = await page(request, campaign, csv_import=job)
        response.headers["HX-Push-Url"] = here
        return response

    @routes.get("/audience/imports/{import_id}/events")
    async def import_events(
        request: Request, campaign_id: str, import_id: str, member: Member = member_of
    ) -> StreamingResponse:
        """``done`` with the import's outcome once it is over."""
        await the_campaign(member, campaign_id)
        app_id = member.app.app_id
        if await read_import(context, app_id, campaign_id, import_id) is None:
            raise PageProblem(404, "No such import", "This campaign has no such import.")

        async def wait() -> bool:
            return await settled(kit.csv_imports, import_id, None)

        async def render() -> str:
            job = await read_import(context, app_id, campaign_id, import_id)
            campaign = await the_campaign(member, campaign_id)  # its new audience size
            template = "partials/campaign_audience_import.html"
            return fragment(
                request, template, campaign=campaign, csv_import=job, settled=True, oob=True
            )

        return event_stream(done_event(wait, render))

    @routes.get("/audience/pick")
    async def pick_users(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        """ "Pick users": the Users filters and a page of users to check."""
        campaign = await to_change(member, campaign_id)
        wanted = UsersFilter.parse(texts(request.query_params))
        return await page(request, campaign, picker=await pick(member, campaign_id, wanted))

    @routes.post("/audience/users")
    async def add_selected(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        """ "Add selected": the checked users, added as ``{userIds}`` adds them."""
        campaign = await to_change(member, campaign_id)
        form = await request.form()
        chosen = user_ids(form.getlist("userIds"))
        errors = [] if chosen else ["Select at least one user to add."]

        def adding() -> Awaitable[AudienceChange]:
            return audience.add_users(
                *stores, member.app.app_id, campaign_id, chosen, None, now(), uses.limits
            )

        wanted = UsersFilter.parse(texts(form))
        return await add(request, member, campaign, wanted, errors, "pick", adding)

    @routes.post("/audience/matching")
    async def add_matching(
        request: Request, campaign_id: str, member: Member = member_of
    ) -> Response:
        """ "Add all matching users": the filter, added as ``{filter}`` adds it."""
        campaign = await to_change(member, campaign_id)
        wanted = UsersFilter.parse(texts(await request.form()))
        errors = wanted.problems()
        filters: dict[str, Any] = {}
        try:
            filters = matching_filter(wanted)
        except ValidationError as exc:
            errors.append(filter_problem(exc))

        def adding() -> Awaitable[AudienceChange]:
            return audience.add_matching(*stores, member.app.app_id, campaign_id, filters, now())

        return await add(request, member, campaign, wanted, errors, "filter", adding)

    @routes.post("/send")
    async def send_now(request: Request, campaign_id: str, member: Member = member_of) -> Response:
        """ "Send now", as ``POST .../{id}/send``; on to the detail page."""
        campaign = await to_change(member, campaign_id)
        app_id = member.app.app_id
        try:
            campaign = await send_campaign(
                adapters.campaigns,
                adapters.recipients,
                adapters.audience_locks,
                uses.send_templates,
                uses.send_channels,
                adapters.sends,
                adapters.batches,
                app_id,
                campaign_id,
                now(),
                uses.limits,
            )
        except Refusal as exc:
            return await page(request, campaign, status_of(exc), send_errors=[in_words(exc)])
        detail: JsonObject = {"recipients": campaign.total_targets}
        await auditor.record(member.operator.email, app_id, "campaign.send", campaign_id, detail)
        return redirect(detail_url(app_id, campaign_id), request)

    @routes.post("/schedule")
    async def schedule(request: Request, campaign_id: str, member: Member = member_of) -> Response:
        """ "Schedule" at "Send at" (UTC), as ``POST .../{id}/schedule``; on to the
        detail page."""
        campaign = await to_change(member, campaign_id)
        app_id = member.app.app_id
        typed = texts(await request.form()).get("sendAt", "")[:40]
        at = send_at(typed, now())
        if isinstance(at, str):
            return await page(request, campaign, 400, send_errors=[at], send_at=typed)
        try:
            campaign = await service.schedule_campaign(
                adapters.campaigns, app_id, campaign_id, at, now()
            )
        except Refusal as exc:
            status = status_of(exc)
            return await page(request, campaign, status, send_errors=[in_words(exc)], send_at=typed)
        detail: JsonObject = {"scheduledAt": at}
        await auditor.record(
            member.operator.email, app_id, "campaign.schedule", campaign_id, detail
        )
        return redirect(detail_url(app_id, campaign_id), request)

    return routes
