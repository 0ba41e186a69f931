"""A campaign over the four real processes, Kafka and FerretDB: an audience picked by id
(with per-user variables) and by a user picker's filter, sent, decided by the
dispatcher and reflected by the gateway, each recipient's feed holding its own item."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CAMPAIGNS = "/v3/campaigns/campaigns"


async def _setup(client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    created = await client.post(
        "/admin/apps",
        json={"name": random_ref("campaigns")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    auth = {"apikey": created.json()["data"]["apiKey"]}
    channel = await client.post(
        "/v3/campaigns/channels",
        json={"name": "Feed", "type": "in_app", "enabled": True},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    template = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Promo",
            "templateId": "promo",
            "status": "approved",
            "channels": [
                {
                    "channelType": "in_app",
                    "content": {"title": "Hi {{name}}", "body": "Code {{promo}}"},
                }
            ],
            "variableSchema": [
                {"key": "name", "defaultValue": "there"},
                {"key": "promo", "defaultValue": "NONE"},
            ],
        },
        headers=auth,
    )
    assert template.status_code == 201, template.text
    return auth


async def test_a_campaign_reaches_every_recipient_and_completes(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    auth = await _setup(client, admin_token)
    vips = [f"vip-{i}" for i in range(5)]
    others = [f"user-{i}" for i in range(25)]
    users = [{"uid": uid, "name": uid, "role": "vip"} for uid in vips]
    users += [{"uid": uid, "name": uid} for uid in others]
    imported = await client.post("/v3/users/import", json={"users": users}, headers=auth)
    assert imported.status_code == 200, imported.text

    created = await client.post(
        CAMPAIGNS,
        json={
            "name": "Launch",
            "templateId": "promo",
            "templateVersion": 1,
            "variables": {"promo": "LAUNCH"},
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["data"]["campaignId"]
    url = f"{CAMPAIGNS}/{campaign_id}"

    by_id = await client.post(
        f"{url}/recipients",
        json={"userIds": [*others, "ghost"], "userVariables": {"user-0": {"name": "Zoe"}}},
        headers=auth,
    )
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["data"]["rejected"] == [
        {"userId": "ghost", "code": "ERR_USER_NOT_FOUND", "message": "No such user."}
    ]
    picked = await client.post(f"{url}/recipients", json={"filter": {"role": "vip"}}, headers=auth)
    assert picked.status_code == 201, picked.text
    assert picked.json()["data"]["totalTargets"] == 30

    sent = await client.post(f"{url}/send", headers=auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["status"] == "sending"

    async def completed() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(url, headers=auth)).json()["data"]
        return data if data["status"] != "sending" else None

    done = await wait_until(completed, timeout_s=60, what="the campaign's completion")
    assert done["status"] == "completed"
    assert (done["totalTargets"], done["sentCount"], done["failedCount"]) == (30, 30, 0)
    assert done["completedAt"] is not None

    async def feed(uid: str) -> list[dict[str, Any]]:
        response = await client.get(
            "/v3/campaigns/notification-feed", headers={**auth, "onbehalfof": uid}
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["data"]
        return items

    zoe = await feed("user-0")
    assert len(zoe) == 1
    assert zoe[0]["content"]["title"] == "Hi Zoe"  # the recipient's own variable
    assert zoe[0]["content"]["body"] == "Code LAUNCH"  # the campaign's
    vip = await feed("vip-3")
    assert len(vip) == 1
    assert vip[0]["content"]["title"] == "Hi there"  # the template's default
    # The batch of the campaign is readable at the dispatcher by the campaign's id.
    progress = await client.get(f"/v3/campaigns/notifications/batches/{campaign_id}", headers=auth)
    assert progress.status_code == 200, progress.text
    assert progress.json()["data"]["sent"] == 30

    # Every recipient is final, as the chunks' reports say (written before completion).
    summary = await client.get(f"{url}/recipients/summary", headers=auth)
    assert summary.json()["data"] == {
        "total": 30,
        "pending": 0,
        "processing": 0,
        "completed": 30,
        "failed": 0,
    }
    listed = await client.get(f"{url}/recipients?status=completed&perPage=100", headers=auth)
    assert sorted(r["userId"] for r in listed.json()["data"]) == sorted([*vips, *others])

    # Items delivered and read reach the campaign's counts and its channel step.
    feed_url = "/v3/campaigns/notification-feed"
    for uid, actions in (("vip-3", ("delivered", "read")), ("user-0", ("delivered",))):
        (item,) = await feed(uid)
        for action in actions:
            marked = await client.post(
                f"{feed_url}/{item['id']}/{action}", headers={**auth, "onbehalfof": uid}
            )
            assert marked.status_code == 200, marked.text

    async def engaged() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(url, headers=auth)).json()["data"]
        return data if (data["deliveredCount"], data["readCount"]) == (2, 1) else None

    await wait_until(engaged, timeout_s=30, what="the delivered and read counts")
    metrics = (await client.get(f"{url}/sequence-metrics", headers=auth)).json()["data"]
    assert [
        (m["channelType"], m["sent"], m["delivered"], m["read"], m["failed"]) for m in metrics
    ] == [("in_app", 30, 2, 1, 0)]


async def test_a_scheduled_campaign_fires_once_across_restarts(
    stack: Stack, client: httpx.AsyncClient, admin_token: str
) -> None:
    """The gateway and the dispatcher are killed before the campaign's time and started
    after it: the campaign fires once, late, and every recipient gets one item."""
    auth = await _setup(client, admin_token)
    uids = [f"sched-{i}" for i in range(20)]
    imported = await client.post(
        "/v3/users/import",
        json={"users": [{"uid": uid, "name": uid} for uid in uids]},
        headers=auth,
    )
    assert imported.status_code == 200, imported.text
    created = await client.post(
        CAMPAIGNS,
        json={"name": "Later", "templateId": "promo", "templateVersion": 1},
        headers=auth,
    )
    campaign_id = created.json()["data"]["campaignId"]
    url = f"{CAMPAIGNS}/{campaign_id}"
    added = await client.post(f"{url}/recipients", json={"userIds": uids}, headers=auth)
    assert added.status_code == 201, added.text
    at = int(time.time()) + 4
    scheduled = await client.post(f"{url}/schedule", json={"scheduledAt": at}, headers=auth)
    assert scheduled.status_code == 200, scheduled.text

    stack.stop_one("api-gateway", sig=signal.SIGKILL)
    stack.stop_one("dispatcher", sig=signal.SIGKILL)
    await asyncio.sleep(max(0.0, at + 2 - time.time()))  # the time passes with both down
    stack.start_one("dispatcher")
    stack.start_one("api-gateway")
    await asyncio.to_thread(stack.wait_ready, 120)

    async def completed() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(url, headers=auth)).json()["data"]
        return data if data["status"] == "completed" else None

    done = await wait_until(completed, timeout_s=90, what="the scheduled campaign's completion")
    assert done["sentCount"] == 20
    assert done["startedAt"] >= at
    for uid in uids:
        items = (
            await client.get("/v3/campaigns/notification-feed", headers={**auth, "onbehalfof": uid})
        ).json()["data"]
        assert len(items) == 1, (uid, items)
