"""Channel routes: ``/v3/campaigns/channels``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    UNAVAILABLE_RESPONSE,
    Cursored,
    Data,
    Listed,
    Paged,
    Responses,
    error_response,
    openapi_link,
)
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.cursor import CreatedAtCursor, UpdatedAtCursor
from clarion_shared.ids import now

from ..idempotency.domain import StoredResponse
from ..paging import NAME_CURSOR, answer
from ..web import Auth, IdempotencyKey, ListParam, Responder, json_response
from . import service
from .models import (
    ChannelAvailability,
    ChannelCreate,
    ChannelCreated,
    ChannelPublic,
    ChannelUpdate,
)
from .service import (
    CHANNEL_SORTS,
    ChannelQuery,
    ChannelRepository,
    ChannelSlots,
    ConfigPublisher,
)

# Saving a channel publishes its configuration: 503 when the broker does not take it.
_NOT_FOUND: Responses = {404: error_response("ERR_NOT_FOUND: no such channel")}
_SAVE_ERRORS: Responses = {503: UNAVAILABLE_RESPONSE}
_UPDATE_ERRORS: Responses = {**_NOT_FOUND, **_SAVE_ERRORS}
_CREATE_ERRORS: Responses = {
    **_SAVE_ERRORS,
    409: error_response(
        "ERR_CONFLICT: the channelId is taken, the app has its push channel already, or "
        "the Idempotency-Key was used with another body or has not answered yet"
    ),
}
_CREATED_LINKS: Responses = {
    201: {
        "links": {
            name: openapi_link(
                method,
                "/v3/campaigns/channels/{channel_id}",
                {"channel_id": "$response.body#/data/channelId"},
            )
            for name, method in (("GetChannel", "get"), ("UpdateChannel", "put"))
        }
    }
}


def router(  # long: one closure per route, all on the same dependencies
    auth: Auth,
    responder: Responder,
    channels: ChannelRepository,
    slots: ChannelSlots,
    configs: ConfigPublisher,
    allow_private: bool,
) -> APIRouter:
    """``allow_private``: ``CLARION_WEBHOOKS_ALLOW_PRIVATE``, for provider URLs."""
    routes = APIRouter(
        prefix="/v3/campaigns/channels",
        tags=["Channels"],
        dependencies=[Depends(auth.require_app)],
        responses=CLIENT_ERRORS,
    )

    @routes.post(
        "",
        status_code=201,
        response_model=Data[ChannelCreated],
        summary="Create a channel (one push channel per app; a custom one's signingSecret "
        "is shown once)",
        responses={**_CREATE_ERRORS, **_CREATED_LINKS},
    )
    async def create_channel(
        body: ChannelCreate,
        request: Request,
        app_id: str = Depends(auth.require_app),
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        async def call() -> StoredResponse:
            channel = await service.create_channel(
                channels, slots, configs, app_id, body.to_new(), now(), allow_private
            )
            return json_response(Data(data=ChannelCreated.created(channel)), 201)

        return await responder.respond(request, app_id, idempotency_key, call)

    @routes.get(
        "",
        response_model=Listed[ChannelPublic],
        summary="List the app's channels (pages, or cursor pages: sort updatedAt | createdAt "
        "| channelType | name)",
    )
    async def list_channels(  # long: CometChat's filters and cursor values, each documented
        paging: ListParam,
        search: Annotated[str | None, Query(description="In name or channelId")] = None,
        sort: Annotated[
            Literal["createdAt", "updatedAt", "channelType", "name"] | None,
            Query(
                description="Pages: createdAt ascending by default; cursor pages: updatedAt "
                "descending."
            ),
        ] = None,
        updated_at: UpdatedAtCursor = None,
        created_at: CreatedAtCursor = None,
        channel_type: Annotated[
            ChannelType | None,
            Query(
                alias="channelType",
                description="Cursor: the channel type of the last item (sort=channelType).",
            ),
        ] = None,
        name: Annotated[str | None, NAME_CURSOR] = None,
        app_id: str = Depends(auth.require_app),
    ) -> Paged[ChannelPublic] | Cursored[ChannelPublic]:
        values = {
            "updatedAt": updated_at,
            "createdAt": created_at,
            "channelType": channel_type,
            "name": name,
        }
        query = ChannelQuery(
            search=search, paging=paging.sorted_by(sort, values).request(CHANNEL_SORTS)
        )
        found = await service.list_channels(channels, app_id, query)
        return answer(found, ChannelPublic.of)

    @routes.get(
        "/availability",
        response_model=Data[list[ChannelAvailability]],
        summary="Which channel types the app can still create",
    )
    async def channel_availability(
        app_id: str = Depends(auth.require_app),
    ) -> Data[list[ChannelAvailability]]:
        rows = await service.availability(channels, app_id)
        return Data(data=[ChannelAvailability.of(row) for row in rows])

    @routes.get(
        "/{channel_id}",
        response_model=Data[ChannelPublic],
        summary="Get a channel",
        responses=_NOT_FOUND,
    )
    async def get_channel(
        channel_id: str, app_id: str = Depends(auth.require_app)
    ) -> Data[ChannelPublic]:
        return Data(data=ChannelPublic.of(await service.get_channel(channels, app_id, channel_id)))

    @routes.put(
        "/{channel_id}",
        response_model=Data[ChannelPublic],
        summary="Update a channel (name, enabled, metadata)",
        responses=_UPDATE_ERRORS,
    )
    async def update_channel(
        channel_id: str, body: ChannelUpdate, app_id: str = Depends(auth.require_app)
    ) -> Data[ChannelPublic]:
        channel = await service.update_channel(
            channels, configs, app_id, channel_id, body.to_changes(), now(), allow_private
        )
        return Data(data=ChannelPublic.of(channel))

    return routes
