"""The app's audit log (``/dashboard/apps/{appId}/audit``): owners only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ..audit.service import AuditLog, list_entries
from .forms import DEFAULT_PER_PAGE, page_count
from .web import PREFIX, Dashboard, Member, not_found


def router(dashboard: Dashboard, audit_log: AuditLog) -> APIRouter:
    routes = APIRouter(prefix=f"{PREFIX}/apps/{{app_id}}", include_in_schema=False)

    @routes.get("/audit")
    async def audit(
        request: Request, page: str = "1", member: Member = Depends(dashboard.member)
    ) -> Response:
        if not member.can_manage:
            raise not_found()  # the page exists for owners only
        number = max(1, int(page)) if page.isdigit() else 1
        found = await list_entries(audit_log, member.app.app_id, number, DEFAULT_PER_PAGE)
        pages = page_count(found.total, DEFAULT_PER_PAGE)
        return dashboard.render(
            request, "audit.html", {"entries": found.items, "page": number, "pages": pages}
        )

    return routes
