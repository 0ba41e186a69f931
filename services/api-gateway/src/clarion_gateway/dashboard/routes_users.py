"""The Users and User detail pages, and the User detail's test send
(``/dashboard/apps/{appId}/users...``).

Every page reads the directory as ``GET /v3/users`` does (``users.DirectoryUsers``) and
sends as ``POST .../notifications/messages`` does (``sending.send_to_user``). Pages
work without JavaScript; htmx asks for the send panel alone (``HX-Target``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.ids import new_id
from clarion_shared.public.users import UserPublic

from ..audit.service import Auditor
from ..slugs import check_uid
from .forms import texts
from .peer_reads import read_or_note
from .sending import SendForm, SendOutcome, SendPath, entered_values, send_form, send_to_user
from .users import STATUSES, DirectoryProblem, DirectoryUsers, UsersFilter, role_choices
from .web import PREFIX, Dashboard, Member, PageProblem, editors_only, is_htmx, not_found, redirect

_PANEL_TARGETS = frozenset({"send-panel", "send-preview"})


def _panel_only(request: Request) -> bool:
    """An htmx request for the send panel alone (the page around it stays)."""
    return is_htmx(request) and request.headers.get("hx-target") in _PANEL_TARGETS


def _may_send(member: Member) -> None:
    editors_only(member, "viewers can read but not send.")


def router(  # long: one closure per page
    dashboard: Dashboard, auditor: Auditor, users: DirectoryUsers, sending: SendPath
) -> APIRouter:
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}", include_in_schema=False)
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    member_of = Depends(dashboard.member)

    async def the_user(member: Member, uid: str) -> UserPublic:
        if not check_uid(uid):
            raise not_found()
        try:
            user = await users.get(member.app.app_id, uid)
        except DirectoryProblem as exc:
            raise PageProblem(503, "User directory unavailable", exc.message) from exc
        if user is None:
            raise PageProblem(404, "No such user", f"This app has no user {uid}.")
        return user

    async def detail(
        request: Request,
        member: Member,
        uid: str,
        form: SendForm | None = None,
        outcome: SendOutcome | None = None,
    ) -> Response:
        # One key per rendered form: the same form posted twice (a double click, a
        # reload) is one send.
        context: dict[str, Any] = {"form": form, "outcome": outcome, "send_key": new_id("dsh_")}
        if form is not None and _panel_only(request):
            context["user"] = {"uid": uid}
            return dashboard.render(request, "partials/send_panel.html", context)
        context["user"] = await the_user(member, uid)
        return dashboard.render(request, "user_detail.html", context)

    @routes.get("")
    async def app_home(member: Member = member_of) -> Response:
        return redirect(f"{PREFIX}/apps/{member.app.app_id}/users")

    @routes.get("/users")
    async def list_users(request: Request, member: Member = member_of) -> Response:
        app_id = member.app.app_id
        wanted = UsersFilter.parse(texts(request.query_params))
        problems = wanted.problems()
        page = await read_or_note(users.page(app_id, wanted), problems)
        # An htmx swap keeps the page's Role select: the directory is not asked again.
        known = [] if is_htmx(request) else await users.known_roles(app_id)
        context = {
            "filter": wanted,
            "page": page,
            "problems": problems,
            "statuses": STATUSES,
            "roles": role_choices(known, page.data if page else [], wanted.role),
        }
        return dashboard.render(request, "users.html", context)

    @routes.get("/users/{uid}")
    async def user_detail(request: Request, uid: str, member: Member = member_of) -> Response:
        return await detail(request, member, uid)

    @routes.get("/users/{uid}/send")
    async def send_page(request: Request, uid: str, member: Member = member_of) -> Response:
        """The send form; ``templateId`` and ``var.<key>`` re-render it (htmx on a
        change; without JavaScript, the "Choose" and "Preview" buttons post)."""
        _may_send(member)
        query = texts(request.query_params)
        template_id = query.get("templateId", "")
        form = await send_form(sending, member.app.app_id, template_id, entered_values(query))
        return await detail(request, member, uid, form)

    @routes.post("/users/{uid}/send")
    async def send(request: Request, uid: str, member: Member = member_of) -> Response:
        _may_send(member)
        posted = texts(await request.form())
        template_id = posted.get("templateId", "")
        entered = entered_values(posted)
        if posted.get("action", "send") != "send":  # "Choose" or "Preview" without JS
            form = await send_form(sending, member.app.app_id, template_id, entered)
            return await detail(request, member, uid, form)
        result = await send_to_user(
            sending, member.app.app_id, uid, template_id, entered, posted.get("sendKey") or None
        )
        form = await send_form(sending, member.app.app_id, template_id, entered)
        if isinstance(result, list):
            form.errors.extend(result)
            return await detail(request, member, uid, form)
        await auditor.record(
            member.operator.email,
            member.app.app_id,
            "send",
            result.notification_id,
            {
                "templateId": template_id,
                "receiver": uid,
                "status": result.status,
                "channels": [c.channel_type for c in result.channels],
            },
        )
        return await detail(request, member, uid, form, result)

    return routes
