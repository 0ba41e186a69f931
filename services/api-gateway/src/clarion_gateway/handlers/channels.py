"""Channel routes: ``/v3/campaigns/channels``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from clarion_shared.ids import now

from ..models import (
    ERRORS,
    ChannelAvailability,
    ChannelCreate,
    ChannelPublic,
    ChannelUpdate,
    Data,
    Paged,
)
from ..ports import StoredResponse
from ..services import channels as service
from .deps import AppId, Deps, IdempotencyKey, PageParam, json_response, require_app, respond

router = APIRouter(
    prefix="/v3/campaigns/channels",
    tags=["Channels"],
    dependencies=[Depends(require_app)],
    responses=ERRORS,
)


@router.post(
    "",
    status_code=201,
    response_model=Data[ChannelPublic],
    summary="Create a channel (one push channel per app)",
)
async def create_channel(
    body: ChannelCreate,
    request: Request,
    app_id: AppId,
    deps: Deps,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def call() -> StoredResponse:
        channel = await service.create_channel(
            deps.channels, deps.apps, deps.commands, app_id, body, now()
        )
        return json_response(Data(data=ChannelPublic.of(channel)), 201)

    return await respond(request, deps, app_id, idempotency_key, call)


@router.get("", response_model=Paged[ChannelPublic], summary="List the app's channels")
async def list_channels(
    app_id: AppId,
    deps: Deps,
    page: PageParam,
    search: Annotated[str | None, Query(description="In name or channelId")] = None,
    sort: Literal["createdAt", "updatedAt", "channelType", "name"] = "createdAt",
    order: Literal["asc", "desc"] = "asc",
) -> Paged[ChannelPublic]:
    found = await service.list_channels(
        deps.channels,
        app_id,
        service.ChannelQuery(search=search, sort=sort, order=order, page=page),
    )
    return Paged.of([ChannelPublic.of(c) for c in found.items], found.total, found.page)


@router.get(
    "/availability",
    response_model=Data[list[ChannelAvailability]],
    summary="Which channel types the app can still create",
)
async def channel_availability(app_id: AppId, deps: Deps) -> Data[list[ChannelAvailability]]:
    rows = await service.availability(deps.channels, app_id)
    return Data(
        data=[
            ChannelAvailability(
                type=row.type, available=row.available, limit=row.limit, count=row.count
            )
            for row in rows
        ]
    )


@router.get("/{channel_id}", response_model=Data[ChannelPublic], summary="Get a channel")
async def get_channel(channel_id: str, app_id: AppId, deps: Deps) -> Data[ChannelPublic]:
    return Data(data=ChannelPublic.of(await service.get_channel(deps.channels, app_id, channel_id)))


@router.put(
    "/{channel_id}",
    response_model=Data[ChannelPublic],
    summary="Update a channel (name, enabled, metadata)",
)
async def update_channel(
    channel_id: str, body: ChannelUpdate, app_id: AppId, deps: Deps
) -> Data[ChannelPublic]:
    channel = await service.update_channel(
        deps.channels, deps.commands, app_id, channel_id, body, now()
    )
    return Data(data=ChannelPublic.of(channel))
