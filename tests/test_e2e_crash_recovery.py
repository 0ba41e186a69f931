"""A service killed mid-batch loses nothing, duplicates nothing, and the batch is decided
final once: its counts are exact and one ``BatchCompleted`` is published.

The dispatcher or the user-directory is killed (SIGKILL) while a 5,000-receiver batch
(ten chunks) is being fanned out: some receivers are recorded, not all (both checked at
the kill).
What the killed process had fetched but not committed is delivered again to its
successor, and derived ids make the replay harmless. A gateway killed while it
publishes a batch leaves the client a retry with the same Idempotency-Key, which
publishes the same commands with the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import httpx
import pytest

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEND = "/v3/campaigns/notifications/messages"
BATCHES = "/v3/campaigns/notifications/batches"
BATCH = 5_000  # the kill lands at the first receivers recorded, long before the last
IMPORT = 1_000  # users per import call (the API's limit)
LATE_DUPLICATE_S = 3.0  # how long after the first BatchCompleted a second is looked for


async def prepare_app(
    client: httpx.AsyncClient, admin_token: str, receivers: int
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
    auth = {"apikey": app["apiKey"], "appid": app["appId"]}
    uids = [random_ref("u") for _ in range(receivers)]
    for start in range(0, receivers, IMPORT):
        part = uids[start : start + IMPORT]
        imported = await client.post(
            "/v3/users/import",
            json={"users": [{"uid": uid, "name": uid} for uid in part]},
            headers=auth,
            timeout=60,
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["data"]["created"] == len(part)
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


async def batch_status(
    client: httpx.AsyncClient, auth: dict[str, str], batch_id: str
) -> dict[str, Any] | None:
    try:
        response = await client.get(f"{BATCHES}/{batch_id}", headers=auth)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.parametrize("victim", ["dispatcher", "user-directory"])
async def test_a_service_killed_mid_batch_completes_it_exactly_once(
    stack: Stack, client: httpx.AsyncClient, admin_token: str, victim: str
) -> None:
    started = time.perf_counter()
    auth, uids = await prepare_app(client, admin_token, BATCH)
    prepared = time.perf_counter()

    sent = await client.post(SEND, json={"templateId": "crash", "receivers": uids}, headers=auth)
    assert sent.status_code == 200, sent.text
    batch_id = sent.json()["data"]["batchId"]
    assert sent.json()["data"]["total"] == BATCH

    # Kill the victim once some receivers are recorded...
    async def partly_recorded() -> dict[str, Any] | None:
        status = await batch_status(client, auth, batch_id)
        return status if status is not None and status["sent"] + status["failed"] > 0 else None

    before = await wait_until(partly_recorded, timeout_s=120, interval_s=0.02, what="progress")
    stack.stop_one(victim, sig=signal.SIGKILL)
    at_kill = await stack.notification_records(batch_id)
    # ... and not all: counted in the database after the kill, so at the kill too.
    assert before["sent"] + before["failed"] > 0  # read right before the kill
    assert at_kill < BATCH, f"all {BATCH} receivers were recorded before the kill"
    print(f"\n{victim} killed with {at_kill} of {BATCH} receivers recorded")
    if victim == "dispatcher":
        # A batch cannot be registered: it is refused whole, nothing published.
        refused = await client.post(
            SEND, json={"templateId": "crash", "receivers": uids[:20]}, headers=auth
        )
        assert refused.status_code == 503, refused.text
    stack.start_one(victim)
    await asyncio.to_thread(stack.wait_ready, 120)

    await assert_batch_done_once(stack, client, auth, batch_id, uids)
    print(
        f"prepared in {prepared - started:.1f}s, batch done and checked in "
        f"{time.perf_counter() - prepared:.1f}s"
    )


async def assert_batch_done_once(
    stack: Stack,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    batch_id: str,
    uids: list[str],
) -> None:
    """The batch is ``completed`` with exact counts, lists each receiver once, and its
    ``BatchCompleted`` was published once."""

    async def final() -> dict[str, Any] | None:
        status = await batch_status(client, auth, batch_id)
        return status if status is not None and status["completedAt"] is not None else None

    status = await wait_until(final, timeout_s=180, interval_s=0.5, what="a final status")
    assert status["status"] == "completed", status
    assert (status["total"], status["sent"], status["failed"], status["pending"]) == (
        len(uids),
        len(uids),
        0,
        0,
    )
    assert status["completedAt"] >= status["createdAt"]
    assert await listed_receivers(client, auth, batch_id) == [(uid, "sent") for uid in uids]
    await assert_each_receiver_once(client, auth, batch_id, uids)

    async def announced() -> list[dict[str, Any]]:
        return await stack.completions(batch_id)

    await wait_until(announced, timeout_s=30, interval_s=0.5, what="the BatchCompleted")
    await asyncio.sleep(LATE_DUPLICATE_S)
    [event] = await stack.completions(batch_id)
    assert (event["status"], event["sent"], event["failed"], event["pending"]) == (
        "completed",
        len(uids),
        0,
        0,
    )
    assert event["completed_at"] == status["completedAt"]


async def listed_receivers(
    client: httpx.AsyncClient, auth: dict[str, str], batch_id: str
) -> list[tuple[str, str]]:
    """Every page of the batch's receivers (four pages at a time), in order."""
    first = await client.get(f"{BATCHES}/{batch_id}/receivers?perPage=100", headers=auth)
    assert first.status_code == 200, first.text
    pages = first.json()["meta"]["pagination"]["total_pages"]
    gate = asyncio.Semaphore(4)

    async def page(number: int) -> list[dict[str, Any]]:
        async with gate:
            response = await client.get(
                f"{BATCHES}/{batch_id}/receivers?perPage=100&page={number}", headers=auth
            )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["data"]
        return items

    rest = await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
    receivers = [*first.json()["data"], *(item for items in rest for item in items)]
    return [(receiver["uid"], receiver["status"]) for receiver in receivers]


async def assert_each_receiver_once(
    client: httpx.AsyncClient, auth: dict[str, str], batch_id: str, uids: list[str]
) -> None:
    response = await client.get(f"/v3/campaigns/notifications/{batch_id}", headers=auth)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
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
# claimed, ~15 ms is while the batch is registered or its chunks published, or just
# after the answer. Each outcome is valid; together they usually include a claim left
# behind by the dead process (the retry then gets 409 until the lease ends).
@pytest.mark.parametrize("kill_after_s", [0.005, 0.015])
async def test_a_retry_after_a_gateway_crash_sends_each_receiver_once(
    stack: Stack, client: httpx.AsyncClient, admin_token: str, kill_after_s: float
) -> None:
    auth, uids = await prepare_app(client, admin_token, receivers=1000)  # two chunks
    send = {"templateId": "crash", "receivers": uids}
    headers = {**auth, "Idempotency-Key": random_ref("key")}

    # Kill the gateway while it handles the send: before, during or after publishing.
    first = asyncio.create_task(client.post(SEND, json=send, headers=headers))
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
            response = await client.post(SEND, json=send, headers=headers)
        except httpx.TransportError:  # a connection to the killed process
            return None
        if response.status_code == 409:
            return None
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    data = await wait_until(retried, timeout_s=60, interval_s=0.5, what="the retry's answer")
    assert data["total"] == len(uids)
    await assert_batch_done_once(stack, client, auth, data["batchId"], uids)
