"""``/internal/apps/{app_id}/analytics/...``: the rollups' answers (the gateway forwards
``GET /v3/campaigns/analytics/...`` here, with the query as the client sent it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from clarion_shared.api import Data
from clarion_shared.ids import now
from clarion_shared.public.analytics import AnalyticsPublic, AnalyticsQuery, analytics_query

from ..errors import RESPONSES
from . import service
from .query import Scope
from .service import AnalyticsRepository

Params = Annotated[AnalyticsQuery, Depends(analytics_query)]


def router(repo: AnalyticsRepository) -> APIRouter:
    routes = APIRouter(
        prefix="/internal/apps/{app_id}/analytics", tags=["analytics"], responses=RESPONSES
    )

    async def answer(
        app_id: str, scope: Scope, query: AnalyticsQuery, resource_id: str = ""
    ) -> Data[AnalyticsPublic]:
        found = await service.report(
            app_id, scope, query, repo=repo, now=now(), resource_id=resource_id
        )
        return Data(data=found)

    @routes.get("/overview", summary="The app's counts, and its top templates (or `dimension`)")
    async def overview(app_id: str, query: Params) -> Data[AnalyticsPublic]:
        return await answer(app_id, "overview", query)

    @routes.get("/campaigns/{campaign_id}", summary="One campaign's counts")
    async def campaign(app_id: str, campaign_id: str, query: Params) -> Data[AnalyticsPublic]:
        return await answer(app_id, "campaign", query, campaign_id)

    @routes.get("/templates/{template_id}", summary="One template's counts")
    async def template(app_id: str, template_id: str, query: Params) -> Data[AnalyticsPublic]:
        return await answer(app_id, "template", query, template_id)

    @routes.get("/channels", summary="Counts of all channels (or one), and each channel's")
    async def channels(app_id: str, query: Params) -> Data[AnalyticsPublic]:
        return await answer(app_id, "channels", query)

    @routes.get("/users/{uid}", summary="One user's counts (daily rollups)")
    async def user(app_id: str, uid: str, query: Params) -> Data[AnalyticsPublic]:
        return await answer(app_id, "user", query, uid)

    return routes
