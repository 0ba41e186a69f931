"""Operator routes: apps and their API keys (``/admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from clarion_shared.api import BAD_REQUEST_RESPONSE, Data, Responses, error_response
from clarion_shared.ids import now

from ..web import Auth
from . import service
from .models import AppCreate, AppCreated
from .service import AppRepository

_CREATE_ERRORS: Responses = {
    400: BAD_REQUEST_RESPONSE,
    401: error_response("ERR_UNAUTHORIZED: missing or wrong admin token"),
    409: error_response("ERR_CONFLICT: the appId is taken"),
}


def router(auth: Auth, apps: AppRepository) -> APIRouter:
    routes = APIRouter(
        prefix="/admin", tags=["Operator"], dependencies=[Depends(auth.require_admin)]
    )

    @routes.post(
        "/apps",
        status_code=201,
        response_model=Data[AppCreated],
        responses=_CREATE_ERRORS,
        summary="Create an app and its API key (the key is shown once)",
    )
    async def create_app(body: AppCreate) -> Data[AppCreated]:
        created = await service.create_app(apps, body.name, body.app_id, body.api_key, now())
        return Data(
            data=AppCreated(
                app_id=created.app.app_id, name=created.app.name, api_key=created.api_key
            )
        )

    return routes
