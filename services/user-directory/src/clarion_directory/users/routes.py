"""HTTP routes of the users API: parse, call one use case, answer.

The gateway forwards ``/v3/users...`` to ``/internal/apps/{app_id}/users...`` after it
has authenticated the app, and passes status and body back as they are: these routes
answer in the public API's envelopes, and their errors are the service's mapping
(``clarion_directory.errors``).

``/internal/apps/{app_id}/uids/{uid}`` is the gateway's own question before it passes on
a feed request for ``onbehalfof: uid``: does that user exist? It sits outside
``/users`` so that no public path leads to it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from clarion_shared.api import (
    ERROR_RESPONSES,
    UNAVAILABLE_RESPONSE,
    Data,
    Deleted,
    Paged,
    Responses,
)

from . import service
from .announcements import UserChanges, UserEvents
from .domain import MetadataLimits
from .models import ImportResult, UserCreate, UserImport, UserPublic, UserUpdate
from .query import UserQuery
from .service import UserRepository

# A write is stored, then announced: when the broker does not take the announcement
# the call answers 503, and the client's retry announces it again.
WRITE_RESPONSES: Responses = {503: UNAVAILABLE_RESPONSE}


def router(
    repo: UserRepository,
    events: UserEvents,
    user_changes: UserChanges,
    limits: MetadataLimits = MetadataLimits(),
) -> APIRouter:
    routes = APIRouter()
    routes.include_router(_users(repo, events, user_changes, limits))
    routes.include_router(_uids(repo))
    return routes


def _users(
    repo: UserRepository, events: UserEvents, user_changes: UserChanges, limits: MetadataLimits
) -> APIRouter:
    users = APIRouter(
        prefix="/internal/apps/{app_id}/users", tags=["users"], responses=ERROR_RESPONSES
    )

    @users.post("", summary="Create a user", responses=WRITE_RESPONSES)
    async def create_user(app_id: str, body: UserCreate) -> Data[UserPublic]:
        user = await service.create_user(repo, events, user_changes, app_id, body, limits)
        return Data(data=UserPublic.of(user))

    @users.post("/import", summary="Create or update up to 1,000 users", responses=WRITE_RESPONSES)
    async def import_users(app_id: str, body: UserImport) -> Data[ImportResult]:
        imported = await service.import_users(
            repo, events, user_changes, app_id, body.users, limits
        )
        return Data(data=imported)

    @users.get("", summary="List and search users")
    async def list_users(app_id: str, query: Annotated[UserQuery, Query()]) -> Paged[UserPublic]:
        found = await service.list_users(repo, app_id, query)
        public = [UserPublic.of(user) for user in found.users]
        return Paged.of(public, found.total, query.page, query.per_page)

    @users.get("/{uid}", summary="Get a user")
    async def get_user(app_id: str, uid: str) -> Data[UserPublic]:
        return Data(data=UserPublic.of(await service.get_user(repo, app_id, uid)))

    @users.put("/{uid}", summary="Update a user's given fields", responses=WRITE_RESPONSES)
    async def update_user(app_id: str, uid: str, body: UserUpdate) -> Data[UserPublic]:
        user = await service.update_user(repo, events, user_changes, app_id, uid, body, limits)
        return Data(data=UserPublic.of(user))

    @users.delete("/{uid}", summary="Delete a user", responses=WRITE_RESPONSES)
    async def delete_user(app_id: str, uid: str) -> Data[Deleted]:
        await service.delete_user(repo, user_changes, app_id, uid)
        return Data(data=Deleted())

    return users


def _uids(repo: UserRepository) -> APIRouter:
    uids = APIRouter(
        prefix="/internal/apps/{app_id}/uids", tags=["users"], responses=ERROR_RESPONSES
    )

    @uids.get(
        "/{uid}",
        status_code=204,
        response_class=Response,
        summary="Whether the user exists: 204, or 404 ERR_USER_NOT_FOUND",
    )
    async def check_user(app_id: str, uid: str) -> Response:
        await service.check_user(repo, app_id, uid)
        return Response(status_code=204)

    return uids
