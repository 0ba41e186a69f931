"""Proxies to the owners' internal APIs, readiness and the API docs."""

from __future__ import annotations

import json

import httpx

from clarion_gateway.testing import AUTH, DEV_APP, Harness


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        201,
        json={"data": {"seen": request.url.path}},
        headers={"x-internal": "no", "retry-after": "3"},
    )


async def test_users_are_forwarded_verbatim(harness: Harness) -> None:
    harness.peer = _echo
    response = await harness.client.post(
        "/v3/users",
        content=b'{"uid": "u1", "name": "Ann"}',
        headers={**AUTH, "content-type": "application/json", "x-correlation-id": "cid-1"},
    )
    assert response.status_code == 201
    assert response.json() == {"data": {"seen": f"/internal/apps/{DEV_APP}/users"}}
    assert response.headers["retry-after"] == "3"
    assert "x-internal" not in response.headers
    [sent] = harness.peer_requests
    assert str(sent.url) == f"http://127.0.0.1:8083/internal/apps/{DEV_APP}/users"
    assert sent.method == "POST"
    assert json.loads(sent.content) == {"uid": "u1", "name": "Ann"}
    assert sent.headers["x-correlation-id"] == "cid-1"
    assert "apikey" not in sent.headers


async def test_user_paths_and_query_strings(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND"}})
    await harness.client.get("/v3/users?searchKey=an&perPage=5&tags=a,b", headers=AUTH)
    await harness.client.delete("/v3/users/u-1", headers=AUTH)
    response = await harness.client.post("/v3/users/import", json={"users": []}, headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "ERR_NOT_FOUND"}}
    assert [(r.method, r.url.path, r.url.query) for r in harness.peer_requests] == [
        ("GET", f"/internal/apps/{DEV_APP}/users", b"searchKey=an&perPage=5&tags=a,b"),
        ("DELETE", f"/internal/apps/{DEV_APP}/users/u-1", b""),
        ("POST", f"/internal/apps/{DEV_APP}/users/import", b""),
    ]


async def test_feed_needs_on_behalf_of(harness: Harness) -> None:
    harness.peer = _echo
    missing = await harness.client.get("/v3/campaigns/notification-feed", headers=AUTH)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "ERR_VALIDATION"
    bad = await harness.client.get(
        "/v3/campaigns/notification-feed", headers={**AUTH, "onbehalfof": "a b"}
    )
    assert bad.status_code == 400
    assert harness.peer_requests == []


async def test_feed_routes_go_to_the_users_feed(harness: Harness) -> None:
    harness.peer = _echo
    headers = {**AUTH, "onbehalfof": "u1"}
    for method, path in [
        ("GET", "/v3/campaigns/notification-feed?readState=unread&page=2"),
        ("GET", "/v3/campaigns/notification-feed/unread-count"),
        ("POST", "/v3/campaigns/notification-feed/fi_1/read"),
        ("POST", "/v3/campaigns/notification-feed/fi_1/delivered"),
        ("DELETE", "/v3/campaigns/notification-feed/fi_1"),
        ("POST", "/v3/campaigns/notification-feed/fi_1/engagement"),
    ]:
        response = await harness.client.request(method, path, headers=headers)
        # A deleted feed item is 204 with no body (API.md), whatever success the
        # dispatcher answered; the others pass the dispatcher's status on.
        expected = 204 if method == "DELETE" else 201
        assert response.status_code == expected, (method, path)
        if method == "DELETE":
            assert response.content == b""
    base = f"/internal/apps/{DEV_APP}/feed/u1"
    # Each feed request is preceded by the directory's check that u1 exists (issue 6).
    assert [r.url.port for r in harness.peer_requests] == [8083, 8081] * 6
    checks = [r for r in harness.peer_requests if r.url.port == 8083]
    forwarded = [r for r in harness.peer_requests if r.url.port != 8083]
    assert [(r.method, r.url.path) for r in checks] == [
        ("GET", f"/internal/apps/{DEV_APP}/uids/u1")
    ] * 6
    assert [(r.method, r.url.path, r.url.query) for r in forwarded] == [
        ("GET", base, b"readState=unread&page=2"),
        ("GET", f"{base}/unread-count", b""),
        ("POST", f"{base}/fi_1/read", b""),
        ("POST", f"{base}/fi_1/delivered", b""),
        ("DELETE", f"{base}/fi_1", b""),
        ("POST", f"{base}/fi_1/engagement", b""),
    ]
    assert all(str(r.url).startswith("http://127.0.0.1:8081/") for r in forwarded)


async def test_feed_stream_is_streamed(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(
        200, content=b"data: {}\n\n", headers={"content-type": "text/event-stream"}
    )
    response = await harness.client.get(
        "/v3/campaigns/notification-feed/stream", headers={**AUTH, "onbehalfof": "u1"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b"data: {}\n\n"


async def test_notification_lookup(harness: Harness) -> None:
    harness.peer = _echo
    response = await harness.client.get("/v3/campaigns/notifications/ntf_1", headers=AUTH)
    assert response.json() == {"data": {"seen": f"/internal/apps/{DEV_APP}/notifications/ntf_1"}}


async def test_peer_down_is_503(harness: Harness) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    harness.peer = down
    response = await harness.client.get("/v3/users", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"
    harness.peer = slow
    response = await harness.client.get("/v3/campaigns/notifications/x", headers=AUTH)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "ERR_TIMEOUT"


async def test_readiness_includes_peers(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(200 if "8083" not in str(request.url) else 503)
    response = await harness.client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"] == {
        "mongo": True,
        "kafka": True,
        "replies": True,
        "campaign_events": True,
        "webhook_states": True,
        "authoring_changes": True,
        "dispatcher": True,
        "directory": False,
        "webhooks": True,
    }
    harness.peer = lambda request: httpx.Response(200)
    assert (await harness.client.get("/readyz")).status_code == 200
    assert (await harness.client.get("/healthz")).status_code == 200


async def test_openapi_lists_the_public_routes_with_models(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in [
        "/admin/apps",
        "/v3/campaigns/channels",
        "/v3/campaigns/channels/{channel_id}",
        "/v3/campaigns/templates",
        "/v3/campaigns/templates/{template_id}",
        "/v3/campaigns/templates/{template_id}/versions",
        "/v3/campaigns/templates/{template_id}/channels/{channel_type}",
        "/v3/campaigns/notifications/messages",
        "/v3/campaigns/notifications/{notification_id}",
        "/v3/campaigns/notification-feed",
        "/v3/users",
        "/v3/users/{uid}",
    ]:
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    for name in [
        "ChannelCreate",
        "ChannelUpdate",
        "ChannelPublic",
        "TemplateCreate",
        "TemplateUpdate",
        "TemplatePublic",
        "MessageSend",
        "RealtimeSent",
        "BatchAccepted",
        "ErrorEnvelope",
    ]:
        assert name in schemas, name
    assert "apikey" in json.dumps(spec["components"]["securitySchemes"])
    assert (await harness.client.get("/docs")).status_code == 200
