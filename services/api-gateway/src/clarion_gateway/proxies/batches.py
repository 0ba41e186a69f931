"""A batch's status and receivers, passed on to the dispatcher, which owns batches:

- ``GET /v3/campaigns/notifications/batches/{id}`` → dispatcher
  ``/internal/apps/{app}/batches/{id}``
- ``GET /v3/campaigns/notifications/batches/{id}/receivers`` → ``.../receivers``

Included before the notification proxy (``routes.notifications_router``), whose
``/{notification_id}`` shares the prefix. The query is checked here for the API docs
and passed on as it came; the dispatcher answers another app's batch with 404.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    PEER_RESPONSES,
    Data,
    Paged,
    error_response,
)
from clarion_shared.public.batches import BatchPublic, BatchReceiverPublic, ReceiverStatus
from clarion_shared.strict_input import MAX_PAGE

from ..web import Auth
from .peers import Peers
from .routes import forward

BATCHES_PREFIX = "/v3/campaigns/notifications/batches"


def batches_router(auth: Auth, peers: Peers) -> APIRouter:
    routes = APIRouter(
        prefix=BATCHES_PREFIX,
        tags=["Notifications"],
        dependencies=[Depends(auth.require_app)],
        responses={
            **CLIENT_ERRORS,
            **PEER_RESPONSES,
            404: error_response("ERR_NOT_FOUND: no such batch"),
        },
    )
    app_of_key = Depends(auth.require_app)

    def owner_path(app_id: str, batch_id: str) -> str:
        return f"/internal/apps/{quote(app_id, safe='')}/batches/{quote(batch_id, safe='')}"

    @routes.get(
        "/{batch_id}",
        summary="A batch's status (queued, dispatching, completed, partially_failed, "
        "failed) and counts",
        response_model=Data[BatchPublic],
    )
    async def get_batch(batch_id: str, request: Request, app_id: str = app_of_key) -> Response:
        return await forward(request, peers, "dispatcher", owner_path(app_id, batch_id))

    @routes.get(
        "/{batch_id}/receivers",
        summary="A batch's receivers in send order (status, page, perPage)",
        response_model=Paged[BatchReceiverPublic],
    )
    async def list_batch_receivers(
        batch_id: str,
        request: Request,
        status: ReceiverStatus | None = None,
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
        app_id: str = app_of_key,
    ) -> Response:
        path = f"{owner_path(app_id, batch_id)}/receivers"
        return await forward(request, peers, "dispatcher", path)

    return routes
