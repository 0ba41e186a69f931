"""A webhook's deliveries, passed on to the webhook-emitter, which owns them, once the
webhook is known to be the caller's (another app's is 404 here, never asked):

- ``GET /v3/webhooks/{id}/deliveries`` → emitter
  ``/internal/apps/{app}/webhooks/{id}/deliveries`` (the same query string)
- ``GET .../deliveries/{deliveryId}`` → ``.../deliveries/{deliveryId}``
- ``POST .../deliveries/{deliveryId}/retry`` → ``.../deliveries/{deliveryId}/retry``
- ``POST /v3/webhooks/{id}/replay`` → ``.../replay``

The query and the replay's body are checked here as the emitter checks them (and
documented with its models); status and body come back as the emitter answers.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from clarion_shared.api import (
    CLIENT_ERRORS,
    CONFLICT_RESPONSE,
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    PEER_RESPONSES,
    Data,
    Paged,
    error_response,
)
from clarion_shared.public.webhook_deliveries import (
    DeliveryPublic,
    DeliveryStatus,
    ReplayAccepted,
    ReplayRequest,
)
from clarion_shared.strict_input import MAX_PAGE

from ..proxies.peers import Forward, Peers
from ..proxies.routes import forward
from ..web import Auth
from . import service
from .routes import WEBHOOK
from .service import WebhookRepository

# The latest Unix second a replay may name (the end of year 9999): beyond, no delivery.
MAX_TIMESTAMP = 253_402_300_799


class WebhookReplay(ReplayRequest):
    """Resend what failed to this webhook between ``since`` and ``until`` (Unix
    seconds of the events; ``until`` defaults to now)."""

    since: int = Field(ge=0, le=MAX_TIMESTAMP)
    until: int | None = Field(default=None, ge=0, le=MAX_TIMESTAMP)


def emitter_path(app_id: str, webhook_id: str) -> str:
    """The webhook-emitter's internal path of a webhook (its deliveries, retries and
    replays live under it); the dashboard's Webhooks pages call it too."""
    return f"/internal/apps/{quote(app_id, safe='')}/webhooks/{quote(webhook_id, safe='')}"


def deliveries_router(  # long: one closure per route, all on the same dependencies
    auth: Auth, webhooks: WebhookRepository, peers: Peers
) -> APIRouter:
    routes = APIRouter(
        prefix=WEBHOOK,
        tags=["Webhooks"],
        dependencies=[Depends(auth.require_app)],
        responses={
            **CLIENT_ERRORS,
            **PEER_RESPONSES,
            404: error_response("ERR_NOT_FOUND: no such webhook in the app, or delivery"),
        },
    )
    app_of_key = Depends(auth.require_app)

    async def owner_path(app_id: str, webhook_id: str) -> str:
        """The emitter's path of the caller's webhook; 404 when it is not the caller's."""
        await service.get_webhook(webhooks, app_id, webhook_id)
        return emitter_path(app_id, webhook_id)

    @routes.get(
        "/deliveries",
        summary="The webhook's deliveries, newest first, each with every attempt "
        "(status, page, perPage)",
        response_model=Paged[DeliveryPublic],
    )
    async def list_webhook_deliveries(
        webhook_id: str,
        request: Request,
        status: DeliveryStatus | None = None,
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
        app_id: str = app_of_key,
    ) -> Response:
        path = f"{await owner_path(app_id, webhook_id)}/deliveries"
        return await forward(request, peers, "webhooks", path)

    @routes.get(
        "/deliveries/{delivery_id}",
        summary="One delivery (its id is the webhook-id header) and its attempts",
        response_model=Data[DeliveryPublic],
    )
    async def get_webhook_delivery(
        webhook_id: str, delivery_id: str, request: Request, app_id: str = app_of_key
    ) -> Response:
        path = f"{await owner_path(app_id, webhook_id)}/deliveries/{quote(delivery_id, safe='')}"
        return await forward(request, peers, "webhooks", path)

    @routes.post(
        "/deliveries/{delivery_id}/retry",
        status_code=202,
        summary="Send a finished delivery again now (409 while it is pending)",
        response_model=Data[DeliveryPublic],
        responses={409: CONFLICT_RESPONSE},
    )
    async def retry_webhook_delivery(
        webhook_id: str, delivery_id: str, app_id: str = app_of_key
    ) -> Response:
        owner = await owner_path(app_id, webhook_id)
        path = f"{owner}/deliveries/{quote(delivery_id, safe='')}/retry"
        return await _post(peers, path, b"")

    @routes.post(
        "/replay",
        status_code=202,
        summary="Send again what failed to this webhook between since and until (Unix "
        "seconds; until: now by default)",
        response_model=Data[ReplayAccepted],
    )
    async def replay_webhook(
        webhook_id: str, body: WebhookReplay, app_id: str = app_of_key
    ) -> Response:
        path = f"{await owner_path(app_id, webhook_id)}/replay"
        return await _post(peers, path, body.model_dump_json(by_alias=True).encode())

    return routes


async def _post(peers: Peers, path: str, body: bytes) -> Response:
    headers = (("content-type", "application/json"),) if body else ()
    answer = await peers.forward("webhooks", Forward("POST", path, "", body, headers))
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))
