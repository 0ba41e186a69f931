"""Operator routes: apps and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from clarion_shared.ids import now

from ..models import ERRORS, AppCreate, AppCreated, Data
from ..services import apps as service
from .deps import Deps, require_admin

router = APIRouter(prefix="/admin", tags=["Operator"], dependencies=[Depends(require_admin)])


@router.post(
    "/apps",
    status_code=201,
    response_model=Data[AppCreated],
    responses=ERRORS,
    summary="Create an app and its API key (the key is shown once)",
)
async def create_app(body: AppCreate, deps: Deps) -> Data[AppCreated]:
    created = await service.create_app(deps.apps, body, now())
    return Data(
        data=AppCreated(app_id=created.app.app_id, name=created.app.name, api_key=created.api_key)
    )
