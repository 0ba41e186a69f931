"""The Users and User detail pages, and the User detail's test send
(``/dashboard/apps/{appId}/users...``).

Every page reads the directory as ``GET /v3/users`` does (``users.DirectoryUsers``) and
sends as ``POST .../notifications/messages`` does (``sending.send_to_user``). Pages
work without JavaScript; htmx asks for the send panel alone (``HX-Target``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.ids import new_id
from clarion_shared.public.users import UserPublic

from ..audit.service import Auditor
from ..slugs import check_uid
from .sending import SendForm, SendOutcome, SendPath, entered_values, send_form, send_to_user
from .users import PER_PAGE_CHOICES, STATUSES, DirectoryProblem, DirectoryUsers, UsersFilter
from .web import PREFIX, Dashboard, Member, PageProblem, is_htmx, not_found, redirect

_PANEL_TARGETS = frozenset({"send-panel", "send-preview"})
# The Role select offers the roles the app's users have, and CometChat's built-in
# "default" (a new app has no users yet).
_BUILT_IN_ROLES = frozenset({"default"})


def _panel_only(request: Request) -> bool:
    """An htmx request for the send panel alone (the page around it stays)."""
    return is_htmx(request) and request.headers.get("hx-target") in _PANEL_TARGETS


def _texts(items: Mapping[str, Any]) -> dict[str, str]:
    """A query string or form as text values (files dropped)."""
    return {k: v for k, v in items.items() if isinstance(v, str)}


def _may_send(member: Member) -> None:
    if not member.can_send:
        raise PageProblem(
            403,
            "Not allowed",
            f"Your role in {member.app.name} is {member.role}: viewers can read but not "
            "send. Ask an owner of the app for the editor role.",
        )


async def _role_choices(
    users: DirectoryUsers, app_id: str, shown: list[UserPublic], chosen: str
) -> list[str]:
    try:
        known = set(await users.roles(app_id))
    except DirectoryProblem:
        known = set()
    return sorted(
        known | _BUILT_IN_ROLES | {u.role for u in shown} | ({chosen} if chosen else set())
    )


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
        wanted = UsersFilter.parse(_texts(request.query_params))
        problems = wanted.problems()
        page = None
        try:
            page = await users.page(member.app.app_id, wanted)
        except DirectoryProblem as exc:
            problems.append(exc.message)
        shown = page.data if page else []
        context = {
            "filter": wanted,
            "page": page,
            "problems": problems,
            "statuses": STATUSES,
            "per_page_choices": PER_PAGE_CHOICES,
            "roles": sorted(_BUILT_IN_ROLES | {u.role for u in shown} | {wanted.role} - {""})
            if is_htmx(request)  # the swap keeps the page's select
            else await _role_choices(users, member.app.app_id, shown, wanted.role),
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
        query = _texts(request.query_params)
        template_id = query.get("templateId", "")
        form = await send_form(sending, member.app.app_id, template_id, entered_values(query))
        return await detail(request, member, uid, form)

    @routes.post("/users/{uid}/send")
    async def send(request: Request, uid: str, member: Member = member_of) -> Response:
        _may_send(member)
        posted = _texts(await request.form())
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
