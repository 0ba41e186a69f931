"""Every send of the app and each one's receivers, passed on to the dispatcher, which
keeps the listing (a Clarion extension: CometChat lists campaigns, not sends):

- ``GET /v3/campaigns/notifications`` → dispatcher ``/internal/apps/{app}/sends``
- ``GET /v3/campaigns/notifications/{id}/receivers`` → ``.../sends/{id}/receivers``
- ``GET /v3/campaigns/notifications/{id}/receivers.csv`` → ``.../receivers.csv``, streamed

``GET /v3/campaigns/notifications`` is free in CometChat's spec (it defines only
``POST .../notifications/messages`` there). Included before the notification proxy
(``routes.notifications_router``), which shares the prefix; the query is checked here,
as the dispatcher checks it (one definition, ``clarion_shared.public.sends``), and passed
on as it came. The dispatcher answers another app's send with 404.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from clarion_shared.api import (
    CLIENT_ERRORS,
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    PEER_RESPONSES,
    Paged,
    Responses,
    error_response,
)
from clarion_shared.public.sends import (
    RECEIVERS_CSV_RESPONSE,
    ReceiverQuery,
    SendPublic,
    SendQuery,
    SendReceiverPublic,
    receiver_query,
    send_query,
)
from clarion_shared.strict_input import MAX_PAGE

from ..web import Auth
from .peers import Peers
from .routes import forward

SENDS_PREFIX = "/v3/campaigns/notifications"
_NO_SEND: Responses = {404: error_response("ERR_NOT_FOUND: no such send")}


def sends_path(app_id: str, rest: str = "") -> str:
    """The dispatcher's path of the app's sends (``rest`` below it): what these routes
    and the dashboard's Sends page read."""
    return f"/internal/apps/{quote(app_id, safe='')}/sends{rest}"


def csv_disposition(send_id: str) -> str:
    """The receivers' CSV export as a download named after the send."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", send_id)[:100]
    return f'attachment; filename="{name}.csv"'


def sends_router(auth: Auth, peers: Peers) -> APIRouter:  # long: one closure per route
    routes = APIRouter(
        prefix=SENDS_PREFIX,
        tags=["Notifications"],
        dependencies=[Depends(auth.require_app)],
        responses={**CLIENT_ERRORS, **PEER_RESPONSES},
    )
    app_of_key = Depends(auth.require_app)

    @routes.get(
        "",
        summary="Every direct send and batch (and campaign send), newest first: type "
        "(realtime, batch), status, templateId, since and until (Unix s), page, perPage",
        response_model=Paged[SendPublic],
    )
    async def list_sends(
        request: Request,
        query: Annotated[SendQuery, Depends(send_query)],
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
        app_id: str = app_of_key,
    ) -> Response:
        return await forward(request, peers, "dispatcher", sends_path(app_id))

    @routes.get(
        "/{send_id}/receivers",
        summary="A send's receivers in send order, each channel's state and the failure's "
        "code (status, uid, page, perPage)",
        response_model=Paged[SendReceiverPublic],
        responses=_NO_SEND,
    )
    async def list_send_receivers(
        send_id: str,
        request: Request,
        query: Annotated[ReceiverQuery, Depends(receiver_query)],
        app_id: str = app_of_key,
    ) -> Response:
        path = sends_path(app_id, f"/{quote(send_id, safe='')}/receivers")
        return await forward(request, peers, "dispatcher", path)

    @routes.get(
        "/{send_id}/receivers.csv",
        summary="A send's receivers as CSV, one row per receiver and channel (status, uid)",
        response_class=StreamingResponse,
        responses={**RECEIVERS_CSV_RESPONSE, **_NO_SEND},
    )
    async def export_send_receivers(
        send_id: str,
        request: Request,
        query: Annotated[ReceiverQuery, Depends(receiver_query)],
        app_id: str = app_of_key,
    ) -> Response:
        path = sends_path(app_id, f"/{quote(send_id, safe='')}/receivers.csv")
        answer = await forward(request, peers, "dispatcher", path, stream=True)
        if answer.status_code == 200:
            answer.headers["content-disposition"] = csv_disposition(send_id)
        return answer

    return routes
