"""Direct send: ``POST /v3/campaigns/notifications/messages``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from clarion_shared.errors import ApiError
from clarion_shared.ids import now

from ..models import ERRORS, BatchAccepted, Data, ErrorEnvelope, MessageSend, RealtimeSent
from ..ports import StoredResponse
from ..services import sends as service
from .deps import AppId, Deps, IdempotencyKey, json_response, require_app, respond

router = APIRouter(
    prefix="/v3/campaigns/notifications",
    tags=["Notifications"],
    dependencies=[Depends(require_app)],
    responses=ERRORS,
)


@router.post(
    "/messages",
    response_model=Data[RealtimeSent | BatchAccepted],
    response_model_exclude_none=True,
    summary="Send a template to 1-10 receivers (realtime) or 11-10,000 (batch)",
    responses={
        403: {"model": ErrorEnvelope, "description": "ERR_FORBIDDEN: onbehalfof is not allowed"},
        503: {"model": ErrorEnvelope, "description": "ERR_UNAVAILABLE: broker unreachable"},
        504: {
            "model": ErrorEnvelope,
            "description": "ERR_TIMEOUT: no realtime result in time; the send may still "
            "complete (details.notificationId)",
        },
    },
)
async def send_message(
    body: MessageSend,
    request: Request,
    app_id: AppId,
    deps: Deps,
    onbehalfof: Annotated[str | None, Header(include_in_schema=False)] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if onbehalfof is not None:
        raise ApiError(
            403,
            "ERR_FORBIDDEN",
            "Sending is not allowed on behalf of a user.",
            dev_message="Remove the onbehalfof header: sends are server-side only.",
        )

    async def call() -> StoredResponse:
        result = await service.send_message(
            app_id=app_id,
            body=body,
            templates=deps.templates,
            channels=deps.channels,
            commands=deps.commands,
            requester=deps.requester,
            settings=deps.send,
            now=now(),
            idempotency_key=idempotency_key,
        )
        return json_response(Data(data=result), exclude_none=True)

    return await respond(request, deps, app_id, idempotency_key, call)
