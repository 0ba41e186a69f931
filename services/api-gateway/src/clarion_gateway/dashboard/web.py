"""What every dashboard page shares: the signed-in operator, roles per app, CSRF and
origin checks, security headers, static files and rendering.

Pages are rendered on the server and work without JavaScript; htmx swaps parts of
them. Nothing an operator's browser receives carries an API key: pages call the use
cases and the peers' internal APIs directly, as the public routes do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clarion_shared.ids import now

from ..apps.domain import App
from ..apps.service import AppLookup
from ..operators.domain import Operator, Role, Session, can_manage, can_send
from ..operators.service import Accounts, apps_of, current_session
from .forms import PER_PAGE_CHOICES

PREFIX = "/dashboard"
STATIC_PREFIX = f"{PREFIX}/static"
SESSION_COOKIE = "clarion_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class SignInRequired(Exception):
    """No valid session: the browser goes to the sign-in page, then back."""


class PageProblem(Exception):
    """A page that cannot be shown, said in words with its status."""

    def __init__(
        self, status: int, title: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = dict(headers or {})


def not_found() -> PageProblem:
    # Another app's pages, and apps that do not exist, look the same (never 403).
    return PageProblem(404, "Not found", "There is no such page, or it is not yours to see.")


def not_allowed(member: Member, why: str) -> PageProblem:
    """An action the member's role does not allow, said in words (``why``)."""
    return PageProblem(
        403, "Not allowed", f"Your role in {member.app.name} is {member.role}: {why}"
    )


def editors_only(member: Member, viewers: str) -> None:
    """Sends, campaign actions and approvals are for editors and owners: a viewer is
    told what viewers can do (``viewers``) and whom to ask."""
    if not member.can_send:
        raise not_allowed(member, f"{viewers} Ask an owner of the app for the editor role.")


@dataclass(frozen=True)
class Viewer:
    """The signed-in operator and its session."""

    operator: Operator
    session: Session


@dataclass(frozen=True)
class Member:
    """The signed-in operator on one of its apps, with its role there."""

    operator: Operator
    session: Session
    app: App
    role: Role

    @property
    def can_send(self) -> bool:
        return can_send(self.role)

    @property
    def can_manage(self) -> bool:
        return can_manage(self.role)


@cache
def _digest(name: str) -> str:
    path = STATIC_DIR / name
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "0"


def static_url(name: str) -> str:
    """A static file's URL with its content's digest: cached for a year, and a new
    version is a new URL."""
    return f"{STATIC_PREFIX}/{name}?v={_digest(name)}"


def _timestamp(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.globals["per_page_choices"] = PER_PAGE_CHOICES  # every "Per page" select's
    env.filters["timestamp"] = _timestamp
    return env


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path of this site, never elsewhere."""
    if not target or not target.startswith(f"{PREFIX}") or target.startswith("//"):
        return PREFIX
    if "\\" in target or any(ord(c) < 32 for c in target):
        return PREFIX
    return target


@dataclass(frozen=True)
class Dashboard:
    """What every page needs; its methods are the pages' FastAPI dependencies."""

    accounts: Accounts
    apps: AppLookup
    env: Environment
    public_origin: str
    secure_cookies: bool

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        values: dict[str, Any] = {"request": request, "path": request.url.path}
        viewer = getattr(request.state, "dashboard_viewer", None)
        if isinstance(viewer, Viewer):
            values["operator"] = viewer.operator
            values["csrf_token"] = viewer.session.csrf_token
        member = getattr(request.state, "dashboard_member", None)
        if isinstance(member, Member):
            values["member"] = member
            values["switcher"] = getattr(request.state, "dashboard_apps", [])
        values.update(context or {})
        html = self.env.get_template(template).render(values)
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def fragment(self, request: Request, template: str, context: Mapping[str, Any]) -> str:
        """A part of a page as HTML text: a server-sent event's data."""
        return bytes(self.render(request, template, context).body).decode()

    async def viewer(self, request: Request) -> Viewer:
        """The signed-in operator (else to the sign-in page); unsafe methods also pass
        the origin and CSRF checks."""
        found = await current_session(self.accounts, request.cookies.get(SESSION_COOKIE), now())
        if found is None:
            raise SignInRequired()
        viewer = Viewer(*found)
        request.state.dashboard_viewer = viewer
        if request.method in _UNSAFE:
            self.check_origin(request)
            await _check_csrf(request, viewer.session)
        return viewer

    async def member(self, request: Request, app_id: str) -> Member:
        """The signed-in operator on ``app_id``: 404 when it has no role there (or the
        app does not exist)."""
        viewer = await self.viewer(request)
        role = viewer.operator.role_in(app_id)
        app = await self.apps.get(app_id) if role is not None else None
        if app is None or role is None:
            raise not_found()
        member = Member(viewer.operator, viewer.session, app, role)
        request.state.dashboard_member = member
        # The header's app switcher: the operator's other apps.
        request.state.dashboard_apps = await apps_of(viewer.operator, self.apps)
        return member

    def check_origin(self, request: Request) -> None:
        """A state-changing request must come from the dashboard's own pages: its
        ``Origin`` is the gateway's public origin, or the origin the request was sent
        to (``Host``: what a page opened at ``localhost`` rather than ``127.0.0.1``
        posts to; another site cannot set it). Browsers send ``Origin`` on every
        POST; a request without it is not one of our forms."""
        origin = (request.headers.get("origin") or "").lower().rstrip("/")
        own = f"{request.url.scheme}://{request.url.netloc}".lower()
        if not origin or origin not in (self.public_origin, own):
            raise PageProblem(
                403,
                "Request refused",
                "This request did not come from a Clarion dashboard page. Reload the page "
                "and try again.",
            )

    def session_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.accounts.policy.lifetime_s,
            path=PREFIX,
            secure=self.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path=PREFIX, secure=self.secure_cookies, httponly=True, samesite="lax"
        )


async def _check_csrf(request: Request, session: Session) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not given or not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise PageProblem(
            403,
            "Request refused",
            "The form's security token is missing or out of date. Reload the page and try again.",
        )


def is_htmx(request: Request) -> bool:
    """An htmx request (it swaps a part of the page); history restores want the page."""
    return bool(request.headers.get("hx-request")) and not request.headers.get(
        "hx-history-restore-request"
    )


def redirect(url: str, request: Request | None = None) -> Response:
    """303 to ``url``; to an htmx request, ``HX-Redirect`` (htmx then loads the page)."""
    if request is not None and request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _here(request: Request) -> str:
    url = urlsplit(str(request.url))
    return url.path + (f"?{url.query}" if url.query else "")


class _LongCached(StaticFiles):
    """Static files cached for a year: their URLs carry their digest (``static_url``)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


class SecurityHeaders:
    """Every ``/dashboard`` answer carries the security headers; pages (not static
    files) are never stored by a cache."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(f"{PREFIX}/"):
            await self.app(scope, receive, send)
            return
        static = path.startswith(f"{STATIC_PREFIX}/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not (k.lower() == b"cache-control" and not static)
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI, dashboard: Dashboard) -> None:
    """Static files, the security headers and the pages' error answers, on ``app``."""
    app.mount(STATIC_PREFIX, _LongCached(directory=STATIC_DIR), name="dashboard-static")
    app.add_middleware(SecurityHeaders)

    async def sign_in_required(request: Request, _: Exception) -> Response:
        # Back to the page asked for; a form posted with an expired session starts over.
        back = _here(request) if request.method == "GET" else PREFIX
        return redirect(f"{PREFIX}/login?next={quote(back, safe='')}", request)

    async def page_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageProblem)
        return dashboard.render(
            request,
            "problem.html",
            {"title": exc.title, "message": exc.message},
            status=exc.status,
            headers=exc.headers,
        )

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageProblem, page_problem)
