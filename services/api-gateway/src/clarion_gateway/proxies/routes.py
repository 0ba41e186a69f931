"""Routes the gateway authenticates and passes on to the owning service.

- ``/v3/users...`` → user-directory ``/internal/apps/{app}/users...``
- ``/v3/campaigns/notification-feed...`` (``onbehalfof: uid``) → dispatcher
  ``/internal/apps/{app}/feed/{uid}...``, once the user-directory has said the user
  exists (``/internal/apps/{app}/uids/{uid}``: one ``_id`` read); a uid the app does
  not have is the directory's 404 ``ERR_USER_NOT_FOUND`` on every feed route, and the
  dispatcher never sees the request
- ``GET /v3/campaigns/notifications/{id}`` → dispatcher ``/internal/apps/{app}/notifications/{id}``

Method, query string and body go as they came; status and body come back as they are.
The documented paths are declared one by one for the API docs, with the owners' answers
as ``clarion_shared.public`` declares them (the response models document; the answer
goes back as the owner sent it); a hidden catch-all per prefix passes on whatever else
the owner serves. A peer that cannot be reached raises
``PeerUnavailable`` (503 or 504, see ``errors``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from clarion_shared.api import ERROR_RESPONSES, PEER_RESPONSES, Data, Deleted, ErrorEnvelope, Paged
from clarion_shared.public.feed import FEED_STREAM_RESPONSE, FeedItemPublic, UnreadCountPublic
from clarion_shared.public.notifications import NotificationPublic
from clarion_shared.public.users import ImportResult, UserPublic

from ..web import Auth
from .domain import feed_owner
from .peers import Forward, Peer, Peers, request_headers

USERS_PREFIX = "/v3/users"
FEED_PREFIX = "/v3/campaigns/notification-feed"

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_JSON_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
}
_PEER_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    **PEER_RESPONSES,
}

_FEED_ERRORS: dict[int | str, dict[str, Any]] = {
    **_PEER_ERRORS,
    404: {
        "model": ErrorEnvelope,
        "description": "ERR_USER_NOT_FOUND: no user onbehalfof in the app; "
        "ERR_NOT_FOUND: no such feed item",
    },
}

OnBehalfOf = Annotated[str | None, Header(description="The uid whose feed this is (required).")]


def _rest_of_path(request: Request, prefix: str) -> str:
    """The path after ``prefix``, still percent-encoded as the client sent it."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(request.url.path)
    path = path.split("?", 1)[0]
    return path[len(prefix) :] if path.startswith(prefix) else ""


async def forward(
    request: Request, peers: Peers, peer: Peer, path: str, stream: bool = False
) -> Response:
    target = Forward(
        method=request.method,
        path=path,
        query=request.url.query,
        body=await request.body(),
        headers=request_headers(request.headers),
    )
    if stream:
        opened = await peers.stream(peer, target)
        return StreamingResponse(
            opened.chunks,
            status_code=opened.status,
            headers=dict(opened.headers),
            background=BackgroundTask(opened.aclose),
        )
    answer = await peers.forward(peer, target)
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


def _app(app_id: str) -> str:
    return f"/internal/apps/{quote(app_id, safe='')}"


def users_router(auth: Auth, peers: Peers) -> APIRouter:
    routes = APIRouter(
        prefix=USERS_PREFIX,
        tags=["Users"],
        dependencies=[Depends(auth.require_app)],
        responses=_PEER_ERRORS,
    )
    app_of_key = Depends(auth.require_app)

    async def users(request: Request, app_id: str) -> Response:
        path = f"{_app(app_id)}/users{_rest_of_path(request, USERS_PREFIX)}"
        return await forward(request, peers, "directory", path)

    @routes.post(
        "", summary="Create a user", response_model=Data[UserPublic], openapi_extra=_JSON_BODY
    )
    async def create_user(request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.get(
        "",
        response_model=Paged[UserPublic],
        summary="List users (searchKey, searchIn, role(s), status, createdAfter, createdBefore, "
        "tags, page, perPage)",
    )
    async def list_users(request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.post(
        "/import",
        summary="Upsert up to 1,000 users",
        response_model=Data[ImportResult],
        openapi_extra=_JSON_BODY,
    )
    async def import_users(request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.get("/{uid}", summary="Get a user", response_model=Data[UserPublic])
    async def get_user(uid: str, request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.put(
        "/{uid}", summary="Update a user", response_model=Data[UserPublic], openapi_extra=_JSON_BODY
    )
    async def update_user(uid: str, request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.delete("/{uid}", summary="Delete a user", response_model=Data[Deleted])
    async def delete_user(uid: str, request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.api_route("/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def other_user_routes(rest: str, request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    return routes


async def unknown_user(peers: Peers, app_id: str, uid: str) -> Response | None:
    """None when ``uid`` is a user of the app; else the directory's answer to pass on
    (404 ``ERR_USER_NOT_FOUND``, or whatever error it had). A directory that cannot be
    reached raises ``PeerUnavailable`` (503 or 504), as a forwarded request would."""
    check = Forward("GET", f"{_app(app_id)}/uids/{quote(uid, safe='')}", "", b"", ())
    answer = await peers.forward("directory", check)
    if 200 <= answer.status < 300:
        return None
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


def feed_router(auth: Auth, peers: Peers) -> APIRouter:  # long: one closure per feed route
    routes = APIRouter(
        prefix=FEED_PREFIX,
        tags=["Notification Feed"],
        dependencies=[Depends(auth.require_app)],
        responses=_FEED_ERRORS,
    )
    app_of_key = Depends(auth.require_app)

    async def feed(
        request: Request, app_id: str, onbehalfof: str | None, stream: bool = False
    ) -> Response:
        uid = feed_owner(onbehalfof)
        refused = await unknown_user(peers, app_id, uid)
        if refused is not None:
            return refused
        path = f"{_app(app_id)}/feed/{quote(uid, safe='')}{_rest_of_path(request, FEED_PREFIX)}"
        return await forward(request, peers, "dispatcher", path, stream=stream)

    @routes.get(
        "",
        summary="The user's feed items, newest first (readState, page, perPage)",
        response_model=Paged[FeedItemPublic],
    )
    async def list_feed(
        request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.get(
        "/unread-count",
        summary="How many of the user's feed items are unread",
        response_model=Data[UnreadCountPublic],
    )
    async def unread_count(
        request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.get(
        "/stream",
        summary="Server-sent events: the user's new feed items",
        response_class=StreamingResponse,
        responses=FEED_STREAM_RESPONSE,
    )
    async def feed_stream(
        request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof, stream=True)

    @routes.get("/{item_id}", summary="Get a feed item", response_model=Data[FeedItemPublic])
    async def get_feed_item(
        item_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.post(
        "/{item_id}/read",
        summary="Mark a feed item read (idempotent)",
        response_model=Data[FeedItemPublic],
    )
    async def mark_read(
        item_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.post(
        "/{item_id}/delivered",
        summary="Mark a feed item delivered (idempotent)",
        response_model=Data[FeedItemPublic],
    )
    async def mark_delivered(
        item_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.delete("/{item_id}", summary="Delete a feed item", response_model=Data[Deleted])
    async def delete_feed_item(
        item_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.api_route("/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
    async def other_feed_routes(
        rest: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    return routes


def notifications_router(auth: Auth, peers: Peers) -> APIRouter:
    routes = APIRouter(
        prefix="/v3/campaigns/notifications",
        tags=["Notifications"],
        dependencies=[Depends(auth.require_app)],
        responses=_PEER_ERRORS,
    )

    @routes.get(
        "/{notification_id}",
        summary="A notification and its per receiver, per channel states",
        response_model=Data[NotificationPublic],
    )
    async def get_notification(
        notification_id: str, request: Request, app_id: str = Depends(auth.require_app)
    ) -> Response:
        path = f"{_app(app_id)}/notifications/{quote(notification_id, safe='')}"
        return await forward(request, peers, "dispatcher", path)

    return routes
