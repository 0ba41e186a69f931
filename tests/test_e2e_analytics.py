"""Analytics end to end over the four real processes: a batch to 12 receivers (one
unknown), some feed items delivered, read and engaged through the feed API, and the
analytics operations eventually show exactly those counts."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import pytest

from clarion_devtools.helpers import random_ref, wait_until

from .test_e2e_first_send import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

FEED = "/v3/campaigns/notification-feed"
ANALYTICS = "/v3/campaigns/analytics"


async def _setup(client: httpx.AsyncClient, auth: dict[str, str], uids: list[str]) -> str:
    for uid in uids:
        created = await client.post("/v3/users", json={"uid": uid, "name": uid}, headers=auth)
        assert created.status_code == 200, created.text
    channel = await client.post(
        "/v3/campaigns/channels",
        json={"name": "Feed", "type": "in_app", "enabled": True},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    template = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Digest",
            "channels": [{"channelType": "in_app", "content": {"title": "Hi", "body": "News"}}],
        },
        headers=auth,
    )
    assert template.status_code == 201, template.text
    template_id: str = template.json()["data"]["templateId"]
    approved = await client.put(
        f"/v3/campaigns/templates/{template_id}", json={"status": "approved"}, headers=auth
    )
    assert approved.status_code == 200, approved.text
    return template_id


async def _item_of(client: httpx.AsyncClient, auth: dict[str, str], uid: str) -> str | None:
    page = await client.get(FEED, headers={**auth, "onbehalfof": uid})
    items = page.json()["data"] if page.status_code == 200 else []
    return str(items[0]["id"]) if items else None


async def test_a_batch_and_its_feed_actions_show_in_analytics(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    app = await create_app(client, admin_token)
    auth = {"apikey": app["apiKey"]}
    uids = [random_ref(f"an{n}") for n in range(11)]
    template_id = await _setup(client, auth, uids)

    sent = await client.post(
        "/v3/campaigns/notifications/messages",
        json={"templateId": template_id, "receivers": [*uids, random_ref("ghost")]},
        headers=auth,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["mode"] == "batch"

    items: dict[str, str] = {}
    for uid in uids:
        items[uid] = await wait_until(
            partial(_item_of, client, auth, uid), timeout_s=60, what=f"{uid}'s item"
        )
    for uid in uids[:5]:
        marked = await client.post(
            f"{FEED}/{items[uid]}/delivered", headers={**auth, "onbehalfof": uid}
        )
        assert marked.status_code in (200, 201), marked.text
    for uid in uids[:4]:
        read = await client.post(f"{FEED}/{items[uid]}/read", headers={**auth, "onbehalfof": uid})
        assert read.status_code in (200, 201), read.text
    for uid, topic in [(uids[0], "clicked"), (uids[0], "shared"), (uids[1], None), (uids[2], "x")]:
        engaged = await client.post(
            f"{FEED}/{items[uid]}/engagement",
            json={"topic": topic} if topic else {},
            headers={**auth, "onbehalfof": uid},
        )
        assert engaged.status_code in (200, 201), engaged.text

    async def totals(path: str, **params: str) -> dict[str, Any] | None:
        response = await client.get(f"{ANALYTICS}/{path}", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return dict(response.json()["data"]["totals"])

    async def shows(path: str, expected: dict[str, int], **params: str) -> bool | None:
        return True if await totals(path, **params) == expected else None

    app_counts = {"sent": 11, "delivered": 5, "read": 4, "engaged": 3, "failed": 1}
    await wait_until(lambda: shows("overview", app_counts), timeout_s=60, what="the overview")
    await wait_until(
        lambda: shows("overview", app_counts, period="hourly"), timeout_s=10, what="by the hour"
    )
    # Every delivery was of that template, its failure included.
    await wait_until(
        lambda: shows(f"templates/{template_id}", app_counts), timeout_s=30, what="template"
    )
    user_counts = {"sent": 1, "delivered": 1, "read": 1, "engaged": 1, "failed": 0}
    await wait_until(lambda: shows(f"users/{uids[0]}", user_counts), timeout_s=30, what="user")
    quiet = {"sent": 1, "delivered": 0, "read": 0, "engaged": 0, "failed": 0}
    await wait_until(lambda: shows(f"users/{uids[9]}", quiet), timeout_s=30, what="quiet user")

    overview = (await client.get(f"{ANALYTICS}/overview", headers=auth)).json()["data"]
    assert [(t["id"], t["sent"]) for t in overview["top"]] == [(template_id, 11)]
    assert overview["rates"] == {"delivery": 0.4545, "read": 0.3636, "engagement": 0.2727}
    bad = await client.get(f"{ANALYTICS}/overview?startDate=20&endDate=10", headers=auth)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "ERR_VALIDATION"
