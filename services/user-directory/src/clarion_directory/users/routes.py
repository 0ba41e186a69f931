"""HTTP routes of the users API: parse, call one use case, answer.

The gateway forwards ``/v3/users...`` to ``/internal/apps/{app_id}/users...`` after it
has authenticated the app, and passes status and body back as they are: these routes
answer in the public API's envelopes, and their errors are the service's mapping
(``clarion_directory.errors``).

``/internal/apps/{app_id}/uids/{uid}`` is the gateway's own question before it passes on
a feed request for ``onbehalfof: uid``: does that user exist? It sits outside
``/users`` so that no public path leads to it.

``GET /internal/apps/{app_id}/roles`` lists the roles the app's users have: the
dashboard's "Role" filter offers them.

``POST /internal/apps/{app_id}/audiences/exist`` and ``.../audiences/select`` are the
gateway's questions when it builds a campaign's audience (a list of uids, or the user
picker's filter). They too sit outside ``/users``: the gateway forwards every
``/v3/users...`` path, and these are not part of the public API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from clarion_shared.api import (
    ERROR_RESPONSES,
    UNAVAILABLE_RESPONSE,
    Data,
    Deleted,
    Paged,
    Responses,
)
from clarion_shared.public.users import (
    UsersExist,
    UsersExistRequest,
    UsersFilter,
    UsersSelected,
    UsersSelectRequest,
)

from . import service
from .announcements import UserChanges, UserEvents
from .domain import MetadataLimits
from .models import ImportResult, UserCreate, UserImport, UserPublic, UserUpdate
from .query import UserQuery
from .roles import RoleIndex, RolesListed
from .roles import list_roles as list_role_values
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
    routes.include_router(_audiences(repo))
    routes.include_router(_roles(repo))
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


def _audiences(repo: UserRepository) -> APIRouter:
    audiences = APIRouter(
        prefix="/internal/apps/{app_id}/audiences", tags=["users"], responses=ERROR_RESPONSES
    )

    @audiences.post("/exist", summary="Which of these uids are users (a campaign's audience)")
    async def users_exist(app_id: str, body: UsersExistRequest) -> Data[UsersExist]:
        return Data(data=await service.users_exist(repo, app_id, body.uids))

    @audiences.post("/select", summary="The uids the users list shows for a filter, all pages")
    async def select_users(app_id: str, body: UsersSelectRequest) -> Data[UsersSelected]:
        selected = await service.select_users(repo, app_id, _list_query(body.filter), body.limit)
        return Data(data=selected)

    return audiences


def _roles(index: RoleIndex) -> APIRouter:
    roles = APIRouter(prefix="/internal/apps/{app_id}/roles", tags=["users"])

    @roles.get("", summary="The distinct roles of the app's users (the Role filter's choices)")
    async def list_roles(app_id: str) -> Data[RolesListed]:
        return Data(data=await list_role_values(index, app_id))

    return roles


def _list_query(filter_: UsersFilter) -> UserQuery:
    """The users list's query for ``filter_``, parsed by the list's own rules, so that a
    filter selects exactly what the same parameters list. What the list would refuse is
    400 naming ``filter.<parameter>``."""
    try:
        return UserQuery.model_validate(filter_.model_dump(by_alias=True, exclude_none=True))
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", "filter", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None
