"""Routes the gateway authenticates and passes on to the owning service.

- ``/v3/users...`` → user-directory ``/internal/apps/{app}/users...``
- ``/v3/campaigns/notification-feed...`` (``onbehalfof: uid``) → dispatcher
  ``/internal/apps/{app}/feed/{uid}...``, once the user-directory has said the user
  exists (``/internal/apps/{app}/uids/{uid}``: one ``_id`` read); a uid the app does
  not have is the directory's 404 ``ERR_USER_NOT_FOUND`` on every feed route, and the
  dispatcher never sees the request; the list takes ``receiver`` for the uid when
  ``onbehalfof`` is absent (CometChat's admin call)
- ``GET /v3/campaigns/notifications/{id}`` → dispatcher ``/internal/apps/{app}/notifications/{id}``

Method, query string and body go as they came; status and body come back as they are
(but a deleted feed item: 204 and no body, as the contract says). The documented paths
are declared one by one for the API docs, with the owners' requests and answers as
``clarion_shared.public`` declares them (the models document; the body goes on, and the
answer back, as they are); links lead from the ids a response names to the operations
that take them; a hidden catch-all per prefix passes on whatever else the owner serves.
A peer that cannot be reached raises ``PeerUnavailable`` (503 or 504, see ``errors``).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from clarion_shared.api import (
    CLIENT_ERRORS,
    PEER_RESPONSES,
    Data,
    Deleted,
    Listed,
    Paged,
    Responses,
    error_response,
    json_body,
    openapi_link,
)
from clarion_shared.public.feed import (
    FEED_STREAM_RESPONSE,
    EngagementReport,
    FeedItemPublic,
    FeedQuery,
    UnreadCountPublic,
    feed_query,
)
from clarion_shared.public.notifications import NotificationPublic
from clarion_shared.public.users import (
    ImportResult,
    UserCreate,
    UserImport,
    UserPublic,
    UserUpdate,
)

from ..web import Auth
from .domain import feed_owner
from .peers import Forward, Peer, Peers, request_headers

USERS_PREFIX = "/v3/users"
FEED_PREFIX = "/v3/campaigns/notification-feed"

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_PEER_ERRORS: Responses = {**CLIENT_ERRORS, **PEER_RESPONSES}
_NO_USER: Responses = {404: error_response("ERR_USER_NOT_FOUND: no such user in the app")}
_UID_TAKEN: Responses = {409: error_response("ERR_UID_ALREADY_EXISTS: the uid is taken")}
_FEED_ERRORS: Responses = {
    **_PEER_ERRORS,
    404: error_response(
        "ERR_USER_NOT_FOUND: no user onbehalfof in the app; ERR_NOT_FOUND: no such feed item"
    ),
}
_NO_NOTIFICATION: Responses = {404: error_response("ERR_NOT_FOUND: no such notification")}

# The ids a create answers with, linked to the operations that take them (OpenAPI
# links: client generators and schemathesis's stateful phase follow them).
_USER = f"{USERS_PREFIX}/{{uid}}"
_NEW_UID = {"uid": "$response.body#/data/uid"}
_NEW_OWNER = {"header.onbehalfof": "$response.body#/data/uid"}
_USER_LINKS: Responses = {
    200: {
        "links": {
            name: openapi_link(method, path, parameters)
            for name, method, path, parameters in (
                ("GetUser", "get", _USER, _NEW_UID),
                ("UpdateUser", "put", _USER, _NEW_UID),
                ("DeleteUser", "delete", _USER, _NEW_UID),
                ("GetUsersFeed", "get", FEED_PREFIX, _NEW_OWNER),
                ("GetUsersUnreadCount", "get", f"{FEED_PREFIX}/unread-count", _NEW_OWNER),
            )
        }
    }
}

_FEED_ITEM = f"{FEED_PREFIX}/{{item_id}}"
_FIRST_ITEM = {
    "item_id": "$response.body#/data/0/id",
    "header.onbehalfof": "$request.header.onbehalfof",
}
_FEED_LINKS: Responses = {
    200: {
        "links": {
            name: openapi_link(method, path, _FIRST_ITEM)
            for name, method, path in (
                ("GetFeedItem", "get", _FEED_ITEM),
                ("MarkFeedItemRead", "post", f"{_FEED_ITEM}/read"),
                ("MarkFeedItemDelivered", "post", f"{_FEED_ITEM}/delivered"),
                ("ReportFeedItemEngagement", "post", f"{_FEED_ITEM}/engagement"),
                ("DeleteFeedItem", "delete", _FEED_ITEM),
            )
        }
    }
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


def users_router(auth: Auth, peers: Peers) -> APIRouter:  # long: one closure per user route
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
        "",
        summary="Create a user",
        response_model=Data[UserPublic],
        responses={**_UID_TAKEN, **_USER_LINKS},
        openapi_extra=json_body(UserCreate),
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
        openapi_extra=json_body(UserImport),
    )
    async def import_users(request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.get("/{uid}", summary="Get a user", response_model=Data[UserPublic], responses=_NO_USER)
    async def get_user(uid: str, request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.put(
        "/{uid}",
        summary="Update a user",
        response_model=Data[UserPublic],
        responses=_NO_USER,
        openapi_extra=json_body(UserUpdate),
    )
    async def update_user(uid: str, request: Request, app_id: str = app_of_key) -> Response:
        return await users(request, app_id)

    @routes.delete(
        "/{uid}", summary="Delete a user", response_model=Data[Deleted], responses=_NO_USER
    )
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
        request: Request,
        app_id: str,
        onbehalfof: str | None,
        stream: bool = False,
        receiver: str | None = None,
    ) -> Response:
        uid = feed_owner(onbehalfof, receiver)
        refused = await unknown_user(peers, app_id, uid)
        if refused is not None:
            return refused
        path = f"{_app(app_id)}/feed/{quote(uid, safe='')}{_rest_of_path(request, FEED_PREFIX)}"
        return await forward(request, peers, "dispatcher", path, stream=stream)

    @routes.get(
        "",
        summary="The user's feed items, newest first: pages (page, perPage), or cursor "
        "pages (limit, affix, sentAt and id, sort, order), with CometChat's filters",
        response_model=Listed[FeedItemPublic],
        responses=_FEED_LINKS,
    )
    async def list_feed(
        request: Request,
        query: Annotated[FeedQuery, Depends(feed_query)],
        onbehalfof: OnBehalfOf = None,
        app_id: str = app_of_key,
    ) -> Response:
        # Checked here as the dispatcher checks them (one definition), passed on as sent.
        return await feed(request, app_id, onbehalfof, receiver=query.receiver)

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

    @routes.post(
        "/{item_id}/engagement",
        summary="Report an engagement, with an optional topic (idempotent per topic; "
        "published as after_feed_item_engaged)",
        response_model=Data[FeedItemPublic],
        openapi_extra=json_body(EngagementReport),
    )
    async def report_engagement(
        item_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await feed(request, app_id, onbehalfof)

    @routes.delete(
        "/{item_id}",
        summary="Delete a feed item",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "Deleted"}},
    )
    async def delete_feed_item(
        item_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        answer = await feed(request, app_id, onbehalfof)
        # 204 and no body, as API.md and CometChat's spec say, whatever success the
        # dispatcher's internal API answers with.
        return Response(status_code=204) if 200 <= answer.status_code < 300 else answer

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
        responses={**_PEER_ERRORS, **_NO_NOTIFICATION},
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
