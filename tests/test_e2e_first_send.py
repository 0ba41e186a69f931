"""The first end-to-end path over the four real processes, Kafka and FerretDB.

Operator creates an app; the app creates users, an in-app channel and an approved
template; a realtime send to three receivers (one unknown) answers only once the feed
items exist, and each user's feed shows their own variables rendered.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clarion_devtools.helpers import random_ref

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def create_app(client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    response = await client.post(
        "/admin/apps",
        json={"name": random_ref("app")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 201, response.text
    data: dict[str, str] = response.json()["data"]
    assert data["apiKey"]
    assert data["appId"]
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["source"] == "clarion"
    assert error["message"]
    assert error["devMessage"]
    return error


async def test_realtime_send_reaches_each_users_feed(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    app = await create_app(client, admin_token)
    auth = {"apikey": app["apiKey"]}

    # Missing key and bad bodies answer in the error envelope.
    assert_error(await client.get("/v3/users"), 401, "ERR_UNAUTHORIZED")
    assert_error(
        await client.get("/v3/users", headers={"apikey": "wrong"}), 401, "ERR_UNAUTHORIZED"
    )
    assert_error(
        await client.post("/v3/users", json={"uid": "no spaces allowed"}, headers=auth),
        400,
        "ERR_VALIDATION",
    )

    uids = [random_ref("alice"), random_ref("bob")]
    for uid, name in zip(uids, ["Alice", "Bob"], strict=True):
        response = await client.post("/v3/users", json={"uid": uid, "name": name}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["uid"] == uid
    listed = await client.get("/v3/users", headers=auth)
    assert listed.status_code == 200, listed.text
    assert {u["uid"] for u in listed.json()["data"]} == set(uids)

    channel = await client.post(
        "/v3/campaigns/channels",
        json={"name": "In-app", "type": "in_app", "enabled": True},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text

    template = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Order shipped",
            "channels": [
                {
                    "channelType": "in_app",
                    "content": {"title": "Hi {{name}}", "body": "Order {{order}} shipped"},
                }
            ],
            "variableSchema": [
                {"key": "name", "type": "string", "required": True},
                {"key": "order", "type": "string", "defaultValue": "?"},
            ],
        },
        headers=auth,
    )
    assert template.status_code == 201, template.text
    template_id = template.json()["data"]["templateId"]

    # A draft template does not send.
    ghost = random_ref("ghost")
    body = {
        "templateId": template_id,
        "receivers": [*uids, ghost, uids[0]],
        "variables": {
            uids[0]: {"name": "Alice", "order": "A-1"},
            uids[1]: {"name": "Bob", "order": "B-2"},
            ghost: {"name": "Nobody"},
        },
    }
    assert_error(
        await client.post("/v3/campaigns/notifications/messages", json=body, headers=auth),
        400,
        "ERR_TEMPLATE_NOT_APPROVED",
    )
    approved = await client.put(
        f"/v3/campaigns/templates/{template_id}", json={"status": "approved"}, headers=auth
    )
    assert approved.status_code == 200, approved.text

    sent = await client.post("/v3/campaigns/notifications/messages", json=body, headers=auth)
    assert sent.status_code == 200, sent.text
    data = sent.json()["data"]
    assert data["mode"] == "realtime"
    assert data["channels"] == ["in_app"]
    assert data["notificationId"]
    results = {r["uid"]: r for r in data["receivers"]}
    assert [r["uid"] for r in data["receivers"]] == [*uids, ghost]  # de-duplicated, in order
    assert results[uids[0]]["status"] == "sent"
    assert results[uids[1]]["status"] == "sent"
    assert results[ghost]["status"] == "failed"
    assert results[ghost]["code"] == "ERR_USER_NOT_FOUND"

    # The response came after the feed items were stored: no waiting here.
    for uid, name, order in [(uids[0], "Alice", "A-1"), (uids[1], "Bob", "B-2")]:
        feed = await client.get(
            "/v3/campaigns/notification-feed", headers={**auth, "onbehalfof": uid}
        )
        assert feed.status_code == 200, feed.text
        items = feed.json()["data"]
        assert len(items) == 1
        item = items[0]
        assert item["notificationId"] == data["notificationId"]
        assert item["receiver"] == uid
        assert item["content"] == {"title": f"Hi {name}", "body": f"Order {order} shipped"}
        assert feed.json()["meta"]["pagination"]["total"] == 1

    # Another app sees none of it: the uid is not one of its users (issue 6: 404, where
    # it used to be an empty page).
    other = await create_app(client, admin_token)
    feed = await client.get(
        "/v3/campaigns/notification-feed",
        headers={"apikey": other["apiKey"], "onbehalfof": uids[0]},
    )
    assert_error(feed, 404, "ERR_USER_NOT_FOUND")
