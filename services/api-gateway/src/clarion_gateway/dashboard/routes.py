"""The dashboard's doors: signing in and out, and the operator's apps (``/dashboard``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.ids import now

from ..audit.service import Auditor
from ..operators.domain import Throttled
from ..operators.service import apps_of, current_session, sign_in, sign_out
from .web import PREFIX, SESSION_COOKIE, Dashboard, Viewer, redirect, safe_next


def _form_text(value: object, limit: int = 1024) -> str:
    return value[:limit] if isinstance(value, str) else ""


def router(dashboard: Dashboard, auditor: Auditor) -> APIRouter:  # long: one closure per page
    routes = APIRouter(prefix=PREFIX, include_in_schema=False)
    # Not an Annotated alias: annotations are strings here, resolved in module scope.
    signed_in = Depends(dashboard.viewer)

    def login_page(
        request: Request,
        next_url: str,
        email: str = "",
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        headers: dict[str, str] = {}
        return dashboard.render(
            request,
            "login.html",
            {"next": next_url, "email": email, "error": error},
            status=status,
            headers=headers,
        )

    @routes.get("/login")
    async def login_form(request: Request, next: str | None = None) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if await current_session(dashboard.accounts, token, now()) is not None:
            return redirect(safe_next(next))
        return login_page(request, safe_next(next))

    @routes.post("/login")
    async def login(request: Request) -> Response:
        dashboard.check_origin(request)
        form = await request.form()
        email = _form_text(form.get("email"), 254)
        next_url = safe_next(_form_text(form.get("next")))
        ip = request.client.host if request.client else "unknown"
        outcome = await sign_in(
            dashboard.accounts, email, _form_text(form.get("password")), ip, now()
        )
        if isinstance(outcome, Throttled):
            minutes = -(-outcome.retry_after_s // 60)
            response = login_page(
                request,
                next_url,
                email,
                f"Too many failed sign-ins. Try again in {minutes} minute"
                f"{'' if minutes == 1 else 's'}.",
                status=429,
            )
            response.headers["retry-after"] = str(outcome.retry_after_s)
            return response
        if outcome is None:
            return login_page(
                request, next_url, email, "The email or the password is wrong.", status=401
            )
        await auditor.record(outcome.operator.email, None, "operator.sign_in", detail={"ip": ip})
        response = redirect(next_url)
        dashboard.session_cookie(response, outcome.token)
        return response

    @routes.post("/logout")
    async def logout(request: Request, viewer: Viewer = signed_in) -> Response:
        await sign_out(dashboard.accounts, request.cookies.get(SESSION_COOKIE))
        await auditor.record(viewer.operator.email, None, "operator.sign_out")
        response = redirect(f"{PREFIX}/login", request)
        dashboard.clear_session_cookie(response)
        return response

    @routes.get("")
    async def apps(request: Request, viewer: Viewer = signed_in) -> Response:
        listed = await apps_of(viewer.operator, dashboard.apps)
        return dashboard.render(request, "apps.html", {"apps": listed})

    return routes
