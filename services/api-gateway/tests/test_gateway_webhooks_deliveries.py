"""A webhook's deliveries are the webhook-emitter's: the gateway checks the webhook is
the caller's, then passes the request on (a fake emitter on the harness's peer
transport) and the answer back as it is."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clarion_gateway.testing import ADMIN, AUTH, DEV_APP, Harness

WEBHOOKS = "/v3/webhooks"
EMITTER = "http://127.0.0.1:8082"
DELIVERY: dict[str, Any] = {
    "id": "msg_1",
    "webhookId": "wh",
    "trigger": "after_batch_completed",
    "status": "failed",
    "attempts": [
        {
            "at": 1,
            "statusCode": 500,
            "error": None,
            "durationMs": 12,
            "response": "oops",
            "trigger": "schedule",
        }
    ],
    "nextAttemptAt": None,
    "payload": {"trigger": "after_batch_completed"},
    "createdAt": 1,
    "updatedAt": 2,
}


def _emitter(request: httpx.Request) -> httpx.Response:
    """The emitter's internal API as far as these routes go."""
    path = request.url.path
    if path.endswith("/replay"):
        body = json.loads(request.content)
        accepted = {"webhookId": "wh", "since": body["since"], "until": 9, "count": 2}
        return httpx.Response(202, json={"data": accepted})
    if path.endswith("/retry"):
        if "msg_pending" in path:
            error = {"code": "ERR_CONFLICT", "message": "The delivery is pending."}
            return httpx.Response(409, json={"error": error})
        return httpx.Response(202, json={"data": DELIVERY})
    if path.endswith("/deliveries"):
        page = {"total": 1, "count": 1, "per_page": 20, "current_page": 1, "total_pages": 1}
        return httpx.Response(200, json={"data": [DELIVERY], "meta": {"pagination": page}})
    if path.endswith("/msg_1"):
        return httpx.Response(200, json={"data": DELIVERY})
    return httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND", "message": "No."}})


async def _webhook(harness: Harness) -> str:
    body = {
        "name": "Orders",
        "webhookURL": "https://hooks.example.com/in",
        "triggers": ["after_batch_completed"],
    }
    response = await harness.client.post(WEBHOOKS, json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    webhook_id: str = response.json()["data"]["id"]
    return webhook_id


async def test_the_deliveries_are_the_emitter_s_answers(harness: Harness) -> None:
    harness.peer = _emitter
    webhook_id = await _webhook(harness)
    base = f"{WEBHOOKS}/{webhook_id}"
    listed = await harness.client.get(f"{base}/deliveries?status=failed&perPage=5", headers=AUTH)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == [DELIVERY]
    one = await harness.client.get(f"{base}/deliveries/msg_1", headers=AUTH)
    assert one.json() == {"data": DELIVERY}
    retried = await harness.client.post(f"{base}/deliveries/msg_1/retry", headers=AUTH)
    assert retried.status_code == 202
    pending = await harness.client.post(f"{base}/deliveries/msg_pending/retry", headers=AUTH)
    assert pending.status_code == 409
    assert pending.json()["error"]["code"] == "ERR_CONFLICT"
    replayed = await harness.client.post(
        f"{base}/replay", json={"since": 5, "extra": "ignored"}, headers=AUTH
    )
    assert replayed.status_code == 202
    assert replayed.json()["data"]["count"] == 2
    unknown = await harness.client.get(f"{base}/deliveries/msg_404", headers=AUTH)
    assert unknown.status_code == 404
    owner = f"/internal/apps/{DEV_APP}/webhooks/{webhook_id}"
    assert [(r.method, str(r.url)) for r in harness.peer_requests] == [
        ("GET", f"{EMITTER}{owner}/deliveries?status=failed&perPage=5"),
        ("GET", f"{EMITTER}{owner}/deliveries/msg_1"),
        ("POST", f"{EMITTER}{owner}/deliveries/msg_1/retry"),
        ("POST", f"{EMITTER}{owner}/deliveries/msg_pending/retry"),
        ("POST", f"{EMITTER}{owner}/replay"),
        ("GET", f"{EMITTER}{owner}/deliveries/msg_404"),
    ]
    replay = harness.peer_requests[4]
    assert json.loads(replay.content) == {"since": 5, "until": None}
    assert replay.headers["content-type"] == "application/json"
    assert "apikey" not in replay.headers


async def test_an_unknown_or_another_app_s_webhook_is_404_and_the_emitter_never_asked(
    harness: Harness,
) -> None:
    harness.peer = _emitter
    webhook_id = await _webhook(harness)
    created = await harness.client.post("/admin/apps", json={"name": "Other"}, headers=ADMIN)
    other = {"apikey": created.json()["data"]["apiKey"]}
    for headers, target in ((other, webhook_id), (AUTH, "wh_unknown")):
        base = f"{WEBHOOKS}/{target}"
        for method, path, body in (
            ("GET", f"{base}/deliveries", None),
            ("GET", f"{base}/deliveries/msg_1", None),
            ("POST", f"{base}/deliveries/msg_1/retry", None),
            ("POST", f"{base}/replay", {"since": 1}),
        ):
            response = await harness.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
    assert harness.peer_requests == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/deliveries?status=lost", None),
        ("GET", "/deliveries?perPage=0", None),
        ("GET", "/deliveries?page=0", None),
        ("POST", "/replay", {}),
        ("POST", "/replay", {"since": -1}),
        ("POST", "/replay", {"since": "yesterday"}),
        ("POST", "/replay", {"since": 10**30}),
        ("POST", "/replay", {"since": 1, "until": 10**15}),
    ],
)
async def test_bad_queries_and_bodies_are_400_before_the_emitter_is_asked(
    harness: Harness, method: str, path: str, body: Any
) -> None:
    harness.peer = _emitter
    webhook_id = await _webhook(harness)
    response = await harness.client.request(
        method, f"{WEBHOOKS}/{webhook_id}{path}", json=body, headers=AUTH
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert harness.peer_requests == []


async def test_an_emitter_away_is_503(harness: Harness) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    harness.peer = refused
    webhook_id = await _webhook(harness)
    response = await harness.client.get(f"{WEBHOOKS}/{webhook_id}/deliveries", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"
