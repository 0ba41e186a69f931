"""Webhook routes: ``/v3/webhooks`` (the endpoints; their deliveries: ``deliveries``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    Data,
    Deleted,
    Paged,
    Responses,
    error_response,
    openapi_link,
)
from clarion_shared.strict_input import MAX_PAGE

from ..idempotency.domain import StoredResponse
from ..paging import Page
from ..web import Auth, IdempotencyKey, Responder, json_response
from . import service
from .models import WebhookCreate, WebhookCreated, WebhookPublic, WebhookUpdate, WebhookUpdated
from .service import Propagate, WebhookRepository, WebhookRules, now_ms

PREFIX = "/v3/webhooks"
WEBHOOK = f"{PREFIX}/{{webhook_id}}"

_NOT_FOUND: Responses = {404: error_response("ERR_NOT_FOUND: no such webhook in the app")}
_CREATE_ERRORS: Responses = {
    409: error_response(
        "ERR_CONFLICT: the app has 25 webhooks already, or the Idempotency-Key was used "
        "with another body or has not answered yet"
    )
}
_UPDATE_ERRORS: Responses = {
    **_NOT_FOUND,
    409: error_response("ERR_CONFLICT: changed by other requests meanwhile; send it again"),
}
_CREATED_LINKS: Responses = {
    201: {
        "links": {
            name: openapi_link(method, path, {"webhook_id": "$response.body#/data/id"})
            for name, method, path in (
                ("GetWebhook", "get", WEBHOOK),
                ("UpdateWebhook", "put", WEBHOOK),
                ("DeleteWebhook", "delete", WEBHOOK),
                ("ListWebhookDeliveries", "get", f"{WEBHOOK}/deliveries"),
            )
        }
    }
}


def router(  # long: one closure per route, all on the same dependencies
    auth: Auth,
    responder: Responder,
    webhooks: WebhookRepository,
    propagate: Propagate,
    rules: WebhookRules,
) -> APIRouter:
    routes = APIRouter(
        prefix=PREFIX,
        tags=["Webhooks"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.post(
        "",
        status_code=201,
        response_model=Data[WebhookCreated],
        summary="Register a webhook endpoint (at most 25 per app); its signing secret is "
        "shown this once",
        responses={**_CREATE_ERRORS, **_CREATED_LINKS},
    )
    async def create_webhook(
        body: WebhookCreate,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            webhook = await service.create_webhook(
                webhooks, propagate, app_id, body.to_new(), now_ms(), rules
            )
            return json_response(Data(data=WebhookCreated.created(webhook)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.get(
        "",
        response_model=Paged[WebhookPublic],
        summary="List the app's webhooks, oldest first (page, perPage)",
    )
    async def list_webhooks(
        page: int = Query(1, ge=1, le=MAX_PAGE),
        per_page: int = Query(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, alias="perPage"),
        app_id: str = Depends(auth.require_app),
    ) -> Paged[WebhookPublic]:
        found = await service.list_webhooks(webhooks, app_id, Page(page, per_page))
        items = [WebhookPublic.of(w) for w in found.items]
        return Paged[WebhookPublic].of(items, found.total, page, per_page)

    @routes.get(
        "/{webhook_id}",
        response_model=Data[WebhookPublic],
        summary="Get a webhook",
        responses=_NOT_FOUND,
    )
    async def get_webhook(
        webhook_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[WebhookPublic]:
        webhook = await service.get_webhook(webhooks, app_id, webhook_id)
        return Data(data=WebhookPublic.of(webhook))

    @routes.put(
        "/{webhook_id}",
        response_model=Data[WebhookUpdated],
        summary="Update a webhook (the fields given; rotateSecret: a new signing secret)",
        responses=_UPDATE_ERRORS,
    )
    async def update_webhook(
        webhook_id: str, body: WebhookUpdate, app_id: str = Depends(auth.require_app)
    ) -> Data[WebhookUpdated]:
        changes = body.to_changes()
        webhook = await service.update_webhook(
            webhooks, propagate, app_id, webhook_id, changes, now_ms(), rules
        )
        return Data(data=WebhookUpdated.updated(webhook, changes.rotate_secret))

    @routes.delete(
        "/{webhook_id}",
        response_model=Data[Deleted],
        summary="Delete a webhook (its deliveries stop)",
        responses=_NOT_FOUND,
    )
    async def delete_webhook(
        webhook_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[Deleted]:
        await service.delete_webhook(webhooks, propagate, app_id, webhook_id, now_ms())
        return Data(data=Deleted())

    return routes
