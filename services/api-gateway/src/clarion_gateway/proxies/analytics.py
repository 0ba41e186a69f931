"""Analytics, passed on to the dispatcher, which keeps the rollups:

- ``GET /v3/campaigns/analytics/overview`` → dispatcher
  ``/internal/apps/{app}/analytics/overview``
- ``.../analytics/campaigns/{id}``, ``.../templates/{id}``, ``.../channels``,
  ``.../users/{uid}`` → the same paths under it

The query is checked here for the API docs (``clarion_shared.public.analytics``) and
passed on as it came; the dispatcher reads the dates and answers the range's 400s. An id
nothing was counted for (another app's included) answers zeros.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response

from clarion_shared.api import CLIENT_ERRORS, PEER_RESPONSES, Data
from clarion_shared.public.analytics import AnalyticsPublic, AnalyticsQuery, analytics_query

from ..web import Auth
from .peers import Peers
from .routes import forward

ANALYTICS_PREFIX = "/v3/campaigns/analytics"

Params = Annotated[AnalyticsQuery, Depends(analytics_query)]


def analytics_router(auth: Auth, peers: Peers) -> APIRouter:  # long: one closure per route
    routes = APIRouter(
        prefix=ANALYTICS_PREFIX,
        tags=["Analytics"],
        dependencies=[Depends(auth.require_app)],
        responses={**CLIENT_ERRORS, **PEER_RESPONSES},
    )
    app_of_key = Depends(auth.require_app)

    async def to_owner(request: Request, app_id: str, *parts: str) -> Response:
        tail = "/".join(quote(part, safe="") for part in parts)
        path = f"/internal/apps/{quote(app_id, safe='')}/analytics/{tail}"
        return await forward(request, peers, "dispatcher", path)

    @routes.get(
        "/overview",
        summary="The app's counts by period, and its top templates (or `dimension`'s ids)",
        response_model=Data[AnalyticsPublic],
    )
    async def get_overview(request: Request, query: Params, app_id: str = app_of_key) -> Response:
        return await to_owner(request, app_id, "overview")

    @routes.get(
        "/campaigns/{campaign_id}",
        summary="One campaign's counts by period",
        response_model=Data[AnalyticsPublic],
    )
    async def get_campaign_analytics(
        campaign_id: str, request: Request, query: Params, app_id: str = app_of_key
    ) -> Response:
        return await to_owner(request, app_id, "campaigns", campaign_id)

    @routes.get(
        "/templates/{template_id}",
        summary="One template's counts by period",
        response_model=Data[AnalyticsPublic],
    )
    async def get_template_analytics(
        template_id: str, request: Request, query: Params, app_id: str = app_of_key
    ) -> Response:
        return await to_owner(request, app_id, "templates", template_id)

    @routes.get(
        "/channels",
        summary="All channels' counts by period (or one channel's), and each channel's",
        response_model=Data[AnalyticsPublic],
    )
    async def get_channel_breakdown(
        request: Request, query: Params, app_id: str = app_of_key
    ) -> Response:
        return await to_owner(request, app_id, "channels")

    @routes.get(
        "/users/{uid}",
        summary="One user's counts by day, week or month",
        response_model=Data[AnalyticsPublic],
    )
    async def get_user_insights(
        uid: str, request: Request, query: Params, app_id: str = app_of_key
    ) -> Response:
        return await to_owner(request, app_id, "users", uid)

    return routes
