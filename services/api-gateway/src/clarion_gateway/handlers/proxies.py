"""Routes the gateway authenticates and passes on to the owning service.

- ``/v3/users...`` → user-directory ``/internal/apps/{app}/users...``
- ``/v3/campaigns/notification-feed...`` (``onbehalfof: uid``) → dispatcher
  ``/internal/apps/{app}/feed/{uid}...``
- ``GET /v3/campaigns/notifications/{id}`` → dispatcher ``/internal/apps/{app}/notifications/{id}``

Method, query string and body go as they came; status and body come back as they are.
The documented paths are declared one by one for the API docs; a hidden catch-all per
prefix passes on whatever else the owner serves.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from clarion_shared.errors import ApiError

from .. import domain
from ..adapters.peers import Forward, Peer, PeerUnavailable, request_headers
from ..components import Components
from ..models import ERRORS, ErrorEnvelope
from .deps import AppId, Deps, require_app

USERS_PREFIX = "/v3/users"
FEED_PREFIX = "/v3/campaigns/notification-feed"

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_JSON_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
}
_PEER_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    503: {"model": ErrorEnvelope, "description": "ERR_UNAVAILABLE: the owning service is down"},
}

users = APIRouter(
    prefix=USERS_PREFIX, tags=["Users"], dependencies=[Depends(require_app)], responses=_PEER_ERRORS
)
feed = APIRouter(
    prefix=FEED_PREFIX,
    tags=["Notification Feed"],
    dependencies=[Depends(require_app)],
    responses=_PEER_ERRORS,
)
notifications = APIRouter(
    prefix="/v3/campaigns/notifications",
    tags=["Notifications"],
    dependencies=[Depends(require_app)],
    responses=_PEER_ERRORS,
)


def _rest_of_path(request: Request, prefix: str) -> str:
    """The path after ``prefix``, still percent-encoded as the client sent it."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(request.url.path)
    path = path.split("?", 1)[0]
    return path[len(prefix) :] if path.startswith(prefix) else ""


async def forward(
    request: Request, deps: Components, peer: Peer, path: str, stream: bool = False
) -> Response:
    target = Forward(
        method=request.method,
        path=path,
        query=request.url.query,
        body=await request.body(),
        headers=request_headers(request.headers),
    )
    try:
        if stream:
            opened = await deps.peers.stream(peer, target)
            return StreamingResponse(
                opened.chunks,
                status_code=opened.status,
                headers=dict(opened.headers),
                background=BackgroundTask(opened.aclose),
            )
        answer = await deps.peers.forward(peer, target)
    except PeerUnavailable as exc:
        raise _unavailable(exc) from exc
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


def _unavailable(exc: PeerUnavailable) -> ApiError:
    if exc.timed_out:
        return ApiError(
            504,
            "ERR_TIMEOUT",
            "The request took too long; try again.",
            dev_message=f"The {exc.peer} service did not answer in time.",
        )
    return ApiError(
        503,
        "ERR_UNAVAILABLE",
        "The service is temporarily unavailable; try again.",
        dev_message=f"The {exc.peer} service is unreachable.",
        headers={"Retry-After": "1"},
    )


# ---------------------------------------------------------------- users


async def _users(request: Request, app_id: str, deps: Components) -> Response:
    path = f"/internal/apps/{quote(app_id, safe='')}/users{_rest_of_path(request, USERS_PREFIX)}"
    return await forward(request, deps, "directory", path)


@users.post("", summary="Create a user", openapi_extra=_JSON_BODY)
async def create_user(request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


@users.get(
    "",
    summary="List users (searchKey, searchIn, role(s), status, createdAfter, createdBefore, "
    "tags, page, perPage)",
)
async def list_users(request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


@users.post("/import", summary="Upsert up to 1,000 users", openapi_extra=_JSON_BODY)
async def import_users(request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


@users.get("/{uid}", summary="Get a user")
async def get_user(uid: str, request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


@users.put("/{uid}", summary="Update a user", openapi_extra=_JSON_BODY)
async def update_user(uid: str, request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


@users.delete("/{uid}", summary="Delete a user")
async def delete_user(uid: str, request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


@users.api_route("/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
async def other_user_routes(rest: str, request: Request, app_id: AppId, deps: Deps) -> Response:
    return await _users(request, app_id, deps)


# ---------------------------------------------------------------- in-app feed

OnBehalfOf = Annotated[str | None, Header(description="The uid whose feed this is (required).")]


async def _feed(
    request: Request, app_id: str, deps: Components, onbehalfof: str | None, stream: bool = False
) -> Response:
    if not onbehalfof:
        raise domain.invalid(
            "The onbehalfof header is required.",
            details=[{"field": "onbehalfof", "message": "the uid whose feed this is"}],
        )
    if not domain.check_uid(onbehalfof):
        raise domain.invalid(
            "The onbehalfof header is not a valid uid.",
            details=[{"field": "onbehalfof", "message": "invalid uid"}],
        )
    path = (
        f"/internal/apps/{quote(app_id, safe='')}/feed/{quote(onbehalfof, safe='')}"
        f"{_rest_of_path(request, FEED_PREFIX)}"
    )
    return await forward(request, deps, "dispatcher", path, stream=stream)


@feed.get("", summary="The user's feed items, newest first (readState, page, perPage)")
async def list_feed(
    request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


@feed.get("/unread-count", summary="How many of the user's feed items are unread")
async def unread_count(
    request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


@feed.get("/stream", summary="Server-sent events: the user's new feed items")
async def feed_stream(
    request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof, stream=True)


@feed.get("/{item_id}", summary="Get a feed item")
async def get_feed_item(
    item_id: str, request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


@feed.post("/{item_id}/read", summary="Mark a feed item read (idempotent)")
async def mark_read(
    item_id: str, request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


@feed.post("/{item_id}/delivered", summary="Mark a feed item delivered (idempotent)")
async def mark_delivered(
    item_id: str, request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


@feed.delete("/{item_id}", summary="Delete a feed item")
async def delete_feed_item(
    item_id: str, request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


@feed.api_route("/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
async def other_feed_routes(
    rest: str, request: Request, app_id: AppId, deps: Deps, onbehalfof: OnBehalfOf = None
) -> Response:
    return await _feed(request, app_id, deps, onbehalfof)


# ---------------------------------------------------------------- notifications


@notifications.get(
    "/{notification_id}",
    summary="A notification and its per receiver, per channel states",
)
async def get_notification(
    notification_id: str, request: Request, app_id: AppId, deps: Deps
) -> Response:
    path = (
        f"/internal/apps/{quote(app_id, safe='')}/notifications/{quote(notification_id, safe='')}"
    )
    return await forward(request, deps, "dispatcher", path)
