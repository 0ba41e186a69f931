"""CometChat's push-notification operations at the gateway: authenticated, the user of
``onbehalfof`` checked with the user-directory, then passed on to the dispatcher as
they came; documented in the API docs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest_asyncio

from clarion_gateway import web
from clarion_gateway.apps.service import KeyResolver
from clarion_gateway.proxies.peers import Peers
from clarion_gateway.proxies.push import PUSH_PREFIX, push_router
from clarion_gateway.testing import AUTH, DEV_APP, Harness, gateway_harness, make_settings

DIRECTORY, DISPATCHER = 8083, 8081
USERS = {"u1", "u-2"}


def peers_answer(request: httpx.Request) -> httpx.Response:
    """The directory knows ``USERS``; the dispatcher echoes what it was asked."""
    if request.url.port == DIRECTORY:
        uid = request.url.path.rsplit("/", 1)[-1]
        if uid in USERS:
            return httpx.Response(200, json={"data": {"uid": uid}})
        return httpx.Response(404, json={"error": {"code": "ERR_USER_NOT_FOUND"}})
    body = json.loads(request.content) if request.content else None
    return httpx.Response(
        200,
        json={"data": {"method": request.method, "path": request.url.path, "body": body}},
        headers={"x-internal": "no"},
    )


@asynccontextmanager
async def push_harness() -> AsyncIterator[Harness]:
    """The gateway on fakes, with the push routes (included here until the app's
    wiring has them: then the wired ones answer)."""
    async with gateway_harness() as h:
        if not any(getattr(r, "path", "").startswith(PUSH_PREFIX) for r in h.app.routes):
            settings = make_settings()

            def peer(request: httpx.Request) -> httpx.Response:
                h.peer_requests.append(request)
                return h.peer(request)

            peers = Peers.connect(
                settings.peer_urls(),
                settings.peer_timeout_s,
                httpx.MockTransport(peer),
                internal_token=settings.internal_token,
            )
            auth = web.auth(KeyResolver(h.store.apps), settings.admin_token)
            h.app.include_router(push_router(auth, peers))
            h.app.openapi_schema = None  # made again with the push routes
        h.peer = peers_answer
        yield h


@pytest_asyncio.fixture(loop_scope="session")
async def harness() -> AsyncIterator[Harness]:
    async with push_harness() as h:
        yield h


def forwarded(harness: Harness) -> list[tuple[str, str, str]]:
    return [
        (r.method, r.url.path, r.url.query.decode())
        for r in harness.peer_requests
        if r.url.port == DISPATCHER
    ]


async def test_every_operation_goes_to_the_users_push_notifications(harness: Harness) -> None:
    headers = {**AUTH, "onbehalfof": "u1"}
    base = f"/internal/apps/{DEV_APP}/push-notifications/u1"
    calls = [
        ("GET", f"{PUSH_PREFIX}?limit=5", None),
        ("GET", f"{PUSH_PREFIX}/p-1", None),
        ("PUT", f"{PUSH_PREFIX}/p-1/delivered", None),
        ("PUT", f"{PUSH_PREFIX}/p-1/clicked", None),
        ("POST", f"{PUSH_PREFIX}/p-1/engagement", {"topic": "dismissed"}),
    ]
    for method, path, body in calls:
        response = await harness.client.request(method, path, headers=headers, json=body)
        assert response.status_code == 200, (method, path, response.text)
        assert "x-internal" not in response.headers
    assert forwarded(harness) == [
        ("GET", base, "limit=5"),
        ("GET", f"{base}/p-1", ""),
        ("PUT", f"{base}/p-1/delivered", ""),
        ("PUT", f"{base}/p-1/clicked", ""),
        ("POST", f"{base}/p-1/engagement", ""),
    ]
    # The directory is asked first, every time: the user must exist in the app.
    assert [r.url.port for r in harness.peer_requests] == [DIRECTORY, DISPATCHER] * 5
    checks = {r.url.path for r in harness.peer_requests if r.url.port == DIRECTORY}
    assert checks == {f"/internal/apps/{DEV_APP}/uids/u1"}
    [engagement] = [r for r in harness.peer_requests if r.url.path.endswith("/engagement")]
    assert json.loads(engagement.content) == {"topic": "dismissed"}
    assert "apikey" not in engagement.headers


async def test_ids_are_passed_on_encoded(harness: Harness) -> None:
    response = await harness.client.get(
        f"{PUSH_PREFIX}/a%20b", headers={**AUTH, "onbehalfof": "u-2"}
    )
    assert response.status_code == 200
    [sent] = [r for r in harness.peer_requests if r.url.port == DISPATCHER]
    assert sent.url.raw_path == f"/internal/apps/{DEV_APP}/push-notifications/u-2/a%20b".encode()


async def test_onbehalfof_is_required_and_a_uid(harness: Harness) -> None:
    for headers in (AUTH, {**AUTH, "onbehalfof": "not a uid"}, {**AUTH, "onbehalfof": ""}):
        for method, path in (("GET", PUSH_PREFIX), ("PUT", f"{PUSH_PREFIX}/p-1/clicked")):
            response = await harness.client.request(method, path, headers=headers)
            assert response.status_code == 400, (headers, method, path)
            error = response.json()["error"]
            assert (error["code"], error["source"]) == ("ERR_VALIDATION", "clarion")
            assert error["details"][0]["field"] == "onbehalfof"
    assert harness.peer_requests == []


async def test_an_unknown_user_is_the_directorys_404(harness: Harness) -> None:
    response = await harness.client.put(
        f"{PUSH_PREFIX}/p-1/delivered", headers={**AUTH, "onbehalfof": "ghost"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ERR_USER_NOT_FOUND"
    assert forwarded(harness) == []


async def test_the_dispatchers_404_for_another_users_notification_is_passed_on(
    harness: Harness,
) -> None:
    not_found = {"error": {"code": "ERR_NOT_FOUND", "message": "Push notification not found."}}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.port == DISPATCHER:
            return httpx.Response(404, json=not_found)
        return peers_answer(request)

    harness.peer = answer
    response = await harness.client.get(f"{PUSH_PREFIX}/bobs", headers={**AUTH, "onbehalfof": "u1"})
    assert response.status_code == 404
    assert response.json() == not_found


async def test_a_limit_out_of_range_is_400_here(harness: Harness) -> None:
    headers = {**AUTH, "onbehalfof": "u1"}
    for limit in ("0", "101", "many"):
        response = await harness.client.get(PUSH_PREFIX, params={"limit": limit}, headers=headers)
        assert response.status_code == 400, limit
        assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert harness.peer_requests == []
    without = await harness.client.get(PUSH_PREFIX, headers=headers)
    assert without.status_code == 200
    assert forwarded(harness) == [("GET", f"/internal/apps/{DEV_APP}/push-notifications/u1", "")]


async def test_a_wrong_key_is_401_and_a_peer_down_503(harness: Harness) -> None:
    wrong = await harness.client.get(PUSH_PREFIX, headers={"apikey": "nope", "onbehalfof": "u1"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "ERR_UNAUTHORIZED"

    def down(request: httpx.Request) -> httpx.Response:
        if request.url.port == DISPATCHER:
            raise httpx.ConnectError("refused", request=request)
        return peers_answer(request)

    harness.peer = down
    response = await harness.client.put(
        f"{PUSH_PREFIX}/p-1/clicked", headers={**AUTH, "onbehalfof": "u1"}
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"


async def test_the_operations_are_documented(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    paths = spec["paths"]
    one = f"{PUSH_PREFIX}/{{push_id}}"
    assert set(paths[PUSH_PREFIX]) == {"get"}
    assert set(paths[one]) == {"get"}
    assert set(paths[f"{one}/delivered"]) == {"put"}
    assert set(paths[f"{one}/clicked"]) == {"put"}
    assert set(paths[f"{one}/engagement"]) == {"post"}

    listing = paths[PUSH_PREFIX]["get"]
    assert listing["tags"] == ["Push Notifications"]
    parameters = {p["name"]: p for p in listing["parameters"]}
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert parameters["onbehalfof"]["in"] == "header"
    assert set(listing["responses"]) >= {"200", "400", "401", "404", "503", "504"}
    assert "GetPushNotification" in listing["responses"]["200"]["links"]
    body = paths[f"{one}/engagement"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["topic"]["anyOf"][0]["maxLength"] == 64

    shown = spec["components"]["schemas"]["PushNotificationPublic"]
    assert {"id", "notificationId", "status", "deliveredAt", "clickedAt", "sentAt"} <= set(
        shown["properties"]
    )
    assert set(shown["properties"]["status"]["enum"]) == {
        "queued",
        "sent",
        "failed",
        "delivered",
        "clicked",
    }
