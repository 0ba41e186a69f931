"""``onbehalfof`` must name a user of the app (issue 6, item 8): on every feed route, a
uid the app does not have is 404 ``ERR_USER_NOT_FOUND`` in the envelope, and the
dispatcher never sees the request. The gateway asks the user-directory first
(``/internal/apps/{app}/uids/{uid}``); the peers here are the harness's mock ones
(``test_gateway_peers`` runs the same against the real user-directory).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from clarion_gateway.testing import AUTH, DEV_APP, Harness
from clarion_shared.http import INTERNAL_TOKEN_HEADER

FEED = "/v3/campaigns/notification-feed"
# Every feed route: list, unread count, one item, read, delivered, delete, stream.
FEED_ROUTES = [
    ("GET", FEED),
    ("GET", f"{FEED}/unread-count"),
    ("GET", f"{FEED}/fi_1"),
    ("POST", f"{FEED}/fi_1/read"),
    ("POST", f"{FEED}/fi_1/delivered"),
    ("DELETE", f"{FEED}/fi_1"),
    ("GET", f"{FEED}/stream"),
]
KNOWN = "u1"
DIRECTORY_PORT = 8083
DISPATCHER_PORT = 8081


def user_not_found(uid: str) -> httpx.Response:
    """What the user-directory answers for a uid the app does not have."""
    return httpx.Response(
        404,
        json={
            "error": {
                "code": "ERR_USER_NOT_FOUND",
                "message": "The user does not exist.",
                "devMessage": f"No user with uid {uid!r} in this app.",
                "source": "clarion",
            }
        },
    )


def peers(request: httpx.Request) -> httpx.Response:
    """A directory that knows ``u1`` only; a dispatcher that answers every feed route."""
    if request.url.port == DIRECTORY_PORT:
        prefix = f"/internal/apps/{DEV_APP}/uids/"
        assert request.url.path.startswith(prefix), request.url.path
        uid = request.url.path.removeprefix(prefix)
        return httpx.Response(204) if uid == KNOWN else user_not_found(uid)
    if request.url.path.endswith("/stream"):
        return httpx.Response(
            200, content=b"data: {}\n\n", headers={"content-type": "text/event-stream"}
        )
    return httpx.Response(200, json={"data": {"path": request.url.path}})


def to(harness: Harness, port: int) -> list[httpx.Request]:
    return [r for r in harness.peer_requests if r.url.port == port]


@pytest.mark.parametrize(("method", "path"), FEED_ROUTES)
async def test_an_unknown_uid_is_404_user_not_found_on_every_feed_route(
    harness: Harness, method: str, path: str
) -> None:
    harness.peer = peers
    response = await harness.client.request(method, path, headers={**AUTH, "onbehalfof": "ghost"})
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert (error["code"], error["source"]) == ("ERR_USER_NOT_FOUND", "clarion")
    assert error["message"]
    assert to(harness, DISPATCHER_PORT) == []
    [check] = to(harness, DIRECTORY_PORT)
    assert (check.method, check.url.path) == ("GET", f"/internal/apps/{DEV_APP}/uids/ghost")
    assert check.headers[INTERNAL_TOKEN_HEADER]


@pytest.mark.parametrize(("method", "path"), FEED_ROUTES)
async def test_a_known_uid_is_checked_then_forwarded(
    harness: Harness, method: str, path: str
) -> None:
    harness.peer = peers
    response = await harness.client.request(method, path, headers={**AUTH, "onbehalfof": KNOWN})
    assert response.status_code == (204 if method == "DELETE" else 200), response.text
    assert [r.url.port for r in harness.peer_requests] == [DIRECTORY_PORT, DISPATCHER_PORT]
    [forwarded] = to(harness, DISPATCHER_PORT)
    assert forwarded.method == method
    assert forwarded.url.path.startswith(f"/internal/apps/{DEV_APP}/feed/{KNOWN}")


async def test_the_uid_is_checked_in_the_callers_app_and_escaped(harness: Harness) -> None:
    harness.peer = peers
    # Valid uid characters only reach the check (others are 400 before it); the path
    # segment is percent-encoded whatever it holds.
    response = await harness.client.get(FEED, headers={**AUTH, "onbehalfof": "Ghost_2-x"})
    assert response.status_code == 404
    [check] = harness.peer_requests
    assert check.url.raw_path == f"/internal/apps/{DEV_APP}/uids/Ghost_2-x".encode()


def _refused(request: httpx.Request) -> httpx.Response:
    if request.url.port == DIRECTORY_PORT:
        raise httpx.ConnectError("connection refused", request=request)
    return peers(request)


def _slow(request: httpx.Request) -> httpx.Response:
    if request.url.port == DIRECTORY_PORT:
        raise httpx.ReadTimeout("slow", request=request)
    return peers(request)


def _failing(request: httpx.Request) -> httpx.Response:
    if request.url.port == DIRECTORY_PORT:
        return httpx.Response(500, json={"error": {"code": "ERR_INTERNAL", "source": "clarion"}})
    return peers(request)


@pytest.mark.parametrize(
    ("directory", "status", "code"),
    [
        (_refused, 503, "ERR_UNAVAILABLE"),
        (_slow, 504, "ERR_TIMEOUT"),
        (_failing, 500, "ERR_INTERNAL"),
    ],
)
@pytest.mark.parametrize(("method", "path"), FEED_ROUTES)
async def test_a_directory_that_cannot_answer_fails_the_feed_request_without_forwarding(
    harness: Harness,
    method: str,
    path: str,
    directory: Callable[[httpx.Request], httpx.Response],
    status: int,
    code: str,
) -> None:
    harness.peer = directory
    response = await harness.client.request(method, path, headers={**AUTH, "onbehalfof": KNOWN})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert to(harness, DISPATCHER_PORT) == []
    if status == 503:
        assert response.headers["retry-after"] == "1"


async def test_the_feed_routes_document_user_not_found(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    for method, path in FEED_ROUTES:
        documented = path.replace("fi_1", "{item_id}")
        responses = spec["paths"][documented][method.lower()]["responses"]
        assert "ERR_USER_NOT_FOUND" in responses["404"]["description"], (method, path)
