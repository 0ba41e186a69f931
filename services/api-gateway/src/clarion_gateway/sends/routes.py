"""Direct send: ``POST /v3/campaigns/notifications/messages``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from clarion_shared.api import CLIENT_ERRORS, Data, Responses, error_response, openapi_link
from clarion_shared.errors import Forbidden
from clarion_shared.ids import now

from ..idempotency.domain import StoredResponse
from ..web import Auth, IdempotencyKey, Responder, json_response
from . import service
from .domain import RealtimeOutcome, SendLimits
from .models import BatchAccepted, MessageSend, RealtimeSent
from .service import BatchRegistry, ChannelSource, Realtime, SendCommands, TemplateSource

# A realtime send the dispatcher rejects as a whole answers the status of its code
# (errors.RESULT_STATUS: each of its statuses is here).
_SEND_ERRORS: Responses = {
    403: error_response("ERR_FORBIDDEN: onbehalfof is not allowed"),
    404: error_response("ERR_NOT_FOUND: the dispatcher rejected the send with it"),
    409: error_response(
        "ERR_CONFLICT: the Idempotency-Key was used with another body or has not "
        "answered yet, or the dispatcher rejected the send with it"
    ),
    429: error_response("ERR_TOO_MANY_REQUESTS: the dispatcher refused the send for now"),
    503: error_response(
        "ERR_UNAVAILABLE: the broker is unreachable, or the dispatcher (a batch is "
        "registered with it first): nothing was sent"
    ),
    504: error_response(
        "ERR_TIMEOUT: no realtime result in time; the send may still complete "
        "(details.notificationId)"
    ),
}
_SENT_LINKS: Responses = {
    200: {
        "links": {
            "GetNotification": openapi_link(
                "get",
                "/v3/campaigns/notifications/{notification_id}",
                {"notification_id": "$response.body#/data/notificationId"},
            ),
            "GetBatch": openapi_link(
                "get",
                "/v3/campaigns/notifications/batches/{batch_id}",
                {"batch_id": "$response.body#/data/batchId"},
            ),
            "ListBatchReceivers": openapi_link(
                "get",
                "/v3/campaigns/notifications/batches/{batch_id}/receivers",
                {"batch_id": "$response.body#/data/batchId"},
            ),
        }
    }
}


def router(
    auth: Auth,
    responder: Responder,
    templates: TemplateSource,
    channels: ChannelSource,
    commands: SendCommands,
    registry: BatchRegistry,
    realtime: Realtime,
    limits: SendLimits,
) -> APIRouter:
    routes = APIRouter(
        prefix="/v3/campaigns/notifications",
        tags=["Notifications"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.post(
        "/messages",
        response_model=Data[RealtimeSent | BatchAccepted],
        response_model_exclude_none=True,
        summary="Send a template to 1-10 receivers (realtime) or 11-10,000 (batch)",
        responses={**_SEND_ERRORS, **_SENT_LINKS},
    )
    async def send_message(
        body: MessageSend,
        request: Request,
        app_id: str = Depends(auth.require_app),
        onbehalfof: Annotated[str | None, Header(include_in_schema=False)] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        if onbehalfof is not None:
            raise Forbidden(
                "Sending is not allowed on behalf of a user.",
                dev_message="Remove the onbehalfof header: sends are server-side only.",
            )

        async def call() -> StoredResponse:
            outcome = await service.send_message(
                body.to_request(app_id),
                templates=templates,
                channels=channels,
                commands=commands,
                registry=registry,
                realtime=realtime,
                limits=limits,
                now=now(),
                idempotency_key=idempotency_key,
            )
            sent = (
                RealtimeSent.of(outcome)
                if isinstance(outcome, RealtimeOutcome)
                else BatchAccepted.of(outcome)
            )
            return json_response(Data(data=sent), exclude_none=True)

        return await responder.respond(request, app_id, idempotency_key, call)

    return routes
