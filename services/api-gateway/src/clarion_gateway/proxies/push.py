"""CometChat's push-notification operations, passed on to the dispatcher, which owns
notification records and their deliveries:

- ``GET /v3/campaigns/push-notifications`` (``onbehalfof``, ``limit``) → dispatcher
  ``/internal/apps/{app}/push-notifications/{uid}``
- ``GET .../{id}``, ``PUT .../{id}/delivered``, ``PUT .../{id}/clicked``,
  ``POST .../{id}/engagement`` ``{topic?}`` → the same below it

As on the feed, ``onbehalfof`` names the user (required, a valid uid: else 400), and the
user-directory says first that the user exists (else its 404 ``ERR_USER_NOT_FOUND``,
and the dispatcher never sees the request). The dispatcher answers another user's push
notification with 404 ``ERR_NOT_FOUND``, as CometChat does. Method, query string and
body go as they came; status and body come back as they are.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response

from clarion_shared.api import (
    CLIENT_ERRORS,
    DEFAULT_PER_PAGE,
    PEER_RESPONSES,
    Data,
    Responses,
    error_response,
    json_body,
    openapi_link,
)
from clarion_shared.public.push_notifications import (
    PushEngagementReport,
    PushLimit,
    PushNotificationPublic,
)

from ..web import Auth
from .domain import feed_owner
from .peers import Peers
from .routes import forward, unknown_user

PUSH_PREFIX = "/v3/campaigns/push-notifications"

_PUSH_ERRORS: Responses = {
    **CLIENT_ERRORS,
    **PEER_RESPONSES,
    404: error_response(
        "ERR_USER_NOT_FOUND: no user onbehalfof in the app; ERR_NOT_FOUND: no such push "
        "notification of that user"
    ),
}

_ONE = f"{PUSH_PREFIX}/{{push_id}}"
_FIRST = {
    "push_id": "$response.body#/data/0/id",
    "header.onbehalfof": "$request.header.onbehalfof",
}
_LIST_LINKS: Responses = {
    200: {
        "links": {
            name: openapi_link(method, path, _FIRST)
            for name, method, path in (
                ("GetPushNotification", "get", _ONE),
                ("MarkPushNotificationDelivered", "put", f"{_ONE}/delivered"),
                ("MarkPushNotificationClicked", "put", f"{_ONE}/clicked"),
                ("ReportPushNotificationEngagement", "post", f"{_ONE}/engagement"),
            )
        }
    }
}

OnBehalfOf = Annotated[
    str | None, Header(description="The uid whose push notifications these are (required).")
]


def push_router(auth: Auth, peers: Peers) -> APIRouter:  # long: one closure per route
    routes = APIRouter(
        prefix=PUSH_PREFIX,
        tags=["Push Notifications"],
        dependencies=[Depends(auth.require_app)],
        responses=_PUSH_ERRORS,
    )
    app_of_key = Depends(auth.require_app)

    async def push(
        request: Request, app_id: str, onbehalfof: str | None, rest: str = ""
    ) -> Response:
        uid = feed_owner(onbehalfof)
        refused = await unknown_user(peers, app_id, uid)
        if refused is not None:
            return refused
        app, user = quote(app_id, safe=""), quote(uid, safe="")
        path = f"/internal/apps/{app}/push-notifications/{user}{rest}"
        return await forward(request, peers, "dispatcher", path)

    def one(push_id: str, action: str = "") -> str:
        return f"/{quote(push_id, safe='')}{action}"

    @routes.get(
        "",
        summary="The user's push notifications, newest first (limit)",
        response_model=Data[list[PushNotificationPublic]],
        responses=_LIST_LINKS,
    )
    async def list_push_notifications(
        request: Request,
        limit: PushLimit = DEFAULT_PER_PAGE,
        onbehalfof: OnBehalfOf = None,
        app_id: str = app_of_key,
    ) -> Response:
        # Checked here as the dispatcher checks it (one definition), passed on as sent.
        return await push(request, app_id, onbehalfof)

    @routes.get(
        "/{push_id}",
        summary="Get a push notification by id",
        response_model=Data[PushNotificationPublic],
    )
    async def get_push_notification(
        push_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await push(request, app_id, onbehalfof, one(push_id))

    @routes.put(
        "/{push_id}/delivered",
        summary="Mark a push notification delivered (idempotent: the first time is kept)",
        response_model=Data[PushNotificationPublic],
    )
    async def mark_push_notification_delivered(
        push_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await push(request, app_id, onbehalfof, one(push_id, "/delivered"))

    @routes.put(
        "/{push_id}/clicked",
        summary="Mark a push notification clicked (idempotent: the first time is kept)",
        response_model=Data[PushNotificationPublic],
    )
    async def mark_push_notification_clicked(
        push_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await push(request, app_id, onbehalfof, one(push_id, "/clicked"))

    @routes.post(
        "/{push_id}/engagement",
        summary="Report an engagement, with an optional topic (idempotent per topic)",
        response_model=Data[PushNotificationPublic],
        openapi_extra=json_body(PushEngagementReport),
    )
    async def report_push_notification_engagement(
        push_id: str, request: Request, onbehalfof: OnBehalfOf = None, app_id: str = app_of_key
    ) -> Response:
        return await push(request, app_id, onbehalfof, one(push_id, "/engagement"))

    return routes
