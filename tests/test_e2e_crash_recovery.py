"""A service killed mid-batch loses nothing and duplicates nothing.

The batch waits on clarion.sends (or its uid lookups on clarion.directory.lookups)
while the dispatcher or user-directory is down; what the killed process had fetched but
not committed is delivered again to its successor, and derived ids make the replay
harmless. A gateway killed while it publishes a batch leaves the client a retry with
the same Idempotency-Key, which publishes the same commands with the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import httpx
import pytest

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RECEIVERS = 300


async def prepare_app(
    client: httpx.AsyncClient, admin_token: str, receivers: int = RECEIVERS
) -> tuple[dict[str, str], list[str]]:
    app = (
        (
            await client.post(
                "/admin/apps",
                json={"name": random_ref("crash")},
                headers={"Authorization": f"Bearer {admin_token}"},
            )
        )
        .raise_for_status()
        .json()["data"]
    )
    auth = {"apikey": app["apiKey"]}
    uids = [random_ref("u") for _ in range(receivers)]
    imported = await client.post(
        "/v3/users/import",
        json={"users": [{"uid": uid, "name": uid} for uid in uids]},
        headers=auth,
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["data"]["created"] == receivers
    channel = await client.post(
        "/v3/campaigns/channels",
        json={"name": "In-app", "type": "in_app", "enabled": True},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    template = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Crash",
            "templateId": "crash",
            "channels": [{"channelType": "in_app", "content": {"title": "t", "body": "b"}}],
        },
        headers=auth,
    )
    assert template.status_code == 201, template.text
    approved = await client.put(
        "/v3/campaigns/templates/crash", json={"status": "approved"}, headers=auth
    )
    assert approved.status_code == 200, approved.text
    return auth, uids


@pytest.mark.parametrize("victim", ["dispatcher", "user-directory"])
async def test_a_killed_service_resumes_the_batch_exactly_once(
    stack: Stack, client: httpx.AsyncClient, admin_token: str, victim: str
) -> None:
    auth, uids = await prepare_app(client, admin_token)

    # Stop the service hard, queue the batch while it is down, restart it.
    stack.stop_one(victim, sig=signal.SIGKILL)
    sent = await client.post(
        "/v3/campaigns/notifications/messages",
        json={"templateId": "crash", "receivers": uids},
        headers=auth,
    )
    assert sent.status_code == 200, sent.text
    batch_id = sent.json()["data"]["batchId"]
    assert sent.json()["data"]["total"] == RECEIVERS
    stack.start_one(victim)
    # Kill it again as soon as it has started working, then bring it back for good.
    await asyncio.sleep(2.0)
    stack.stop_one(victim, sig=signal.SIGKILL)
    stack.start_one(victim)
    await asyncio.to_thread(stack.wait_ready, 120)
    await assert_each_receiver_once(client, auth, batch_id, uids)


async def assert_each_receiver_once(
    client: httpx.AsyncClient, auth: dict[str, str], batch_id: str, uids: list[str]
) -> None:
    async def all_recorded() -> dict[str, Any] | None:
        response = await client.get(f"/v3/campaigns/notifications/{batch_id}", headers=auth)
        if response.status_code != 200:
            return None
        data: dict[str, Any] = response.json()["data"]
        return data if len(data["receivers"]) == len(uids) else None

    data = await wait_until(all_recorded, timeout_s=120, interval_s=0.5, what="all receivers")
    assert sorted(r["uid"] for r in data["receivers"]) == sorted(uids)
    for receiver in data["receivers"]:
        assert [c["status"] for c in receiver["channels"]] == ["sent"]

    # Exactly one feed item per receiver, whatever was redelivered.
    for uid in uids[:: max(1, len(uids) // 30)]:
        feed = await client.get(
            "/v3/campaigns/notification-feed", headers={**auth, "onbehalfof": uid}
        )
        assert feed.status_code == 200, feed.text
        assert feed.json()["meta"]["pagination"]["total"] == 1
        assert feed.json()["data"][0]["batchId"] == batch_id


# When the kill lands: here ~5 ms after the request is before or just after the key is
# claimed, ~15 ms is while the chunks are published or just after the answer. Each
# outcome is valid; together they usually include a claim left behind by the dead
# process (the retry then gets 409 until the lease ends).
@pytest.mark.parametrize("kill_after_s", [0.005, 0.015])
async def test_a_retry_after_a_gateway_crash_sends_each_receiver_once(
    stack: Stack, client: httpx.AsyncClient, admin_token: str, kill_after_s: float
) -> None:
    auth, uids = await prepare_app(client, admin_token, receivers=1000)  # two chunks
    send = {"templateId": "crash", "receivers": uids}
    headers = {**auth, "Idempotency-Key": random_ref("key")}

    # Kill the gateway while it handles the send: before, during or after publishing.
    first = asyncio.create_task(
        client.post("/v3/campaigns/notifications/messages", json=send, headers=headers)
    )
    await asyncio.sleep(kill_after_s)
    stack.stop_one("api-gateway", sig=signal.SIGKILL)
    with contextlib.suppress(httpx.HTTPError):
        await first
    stack.start_one("api-gateway")
    await asyncio.to_thread(stack.wait_ready, 120)

    # The client retries with the same key until it has an answer: 409 while the dead
    # request's claim holds (its lease), then the retry runs the send again.
    async def retried() -> dict[str, Any] | None:
        try:
            response = await client.post(
                "/v3/campaigns/notifications/messages", json=send, headers=headers
            )
        except httpx.TransportError:  # a connection to the killed process
            return None
        if response.status_code == 409:
            return None
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    data = await wait_until(retried, timeout_s=60, interval_s=0.5, what="the retry's answer")
    assert data["total"] == len(uids)
    await assert_each_receiver_once(client, auth, data["batchId"], uids)
