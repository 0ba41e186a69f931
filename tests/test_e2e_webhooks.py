"""Webhooks end to end: a batch reported to a receiver that fails and then recovers
(every event delivered, signed, repeated only as retries of one ``webhook-id``), a
hanging endpoint beside a healthy one, an emitter killed mid-stream, and an endpoint
answering 410 disabled as the gateway shows it and announced to the app's others.

Receivers are real HTTP servers on 127.0.0.1 (the stack allows private addresses), and
each request is verified with the ``standardwebhooks`` package, as a receiver would.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.webhook_receiver import Received, Receiver
from clarion_shared.http import INTERNAL_TOKEN_HEADER

from .test_e2e_crash_recovery import prepare_app

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEND = "/v3/campaigns/notifications/messages"
TRIGGERS = ["after_notification_created", "after_feed_item_sent", "after_batch_completed"]


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def register(
    client: httpx.AsyncClient,
    stack: Stack,
    auth: dict[str, str],
    url: str,
    triggers: list[str] = TRIGGERS,
) -> dict[str, Any]:
    """A webhook, once the emitter knows it (its configuration travels over Kafka)."""
    created = await client.post(
        "/v3/webhooks",
        json={"name": random_ref("hook"), "webhookURL": url, "triggers": triggers},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    hook: dict[str, Any] = created.json()["data"]
    assert hook["signingSecret"].startswith("whsec_")
    env = stack.env_of("webhook-emitter")
    path = (
        f"http://127.0.0.1:{env['CLARION_WEBHOOKS_PORT']}"
        f"/internal/apps/{auth['appid']}/webhooks/{hook['id']}"
    )

    async def known() -> bool:
        async with httpx.AsyncClient() as http:
            answer = await http.get(
                path, headers={INTERNAL_TOKEN_HEADER: env["CLARION_INTERNAL_TOKEN"]}
            )
        return answer.status_code == 200

    await wait_until(known, 20, what="the emitter learns the webhook")
    return hook


async def send_batch(client: httpx.AsyncClient, auth: dict[str, str], uids: list[str]) -> str:
    sent = await client.post(
        SEND, json={"templateId": "crash", "receivers": uids}, headers=auth, timeout=60
    )
    assert sent.status_code in (200, 202), sent.text
    batch_id: str = sent.json()["data"]["batchId"]
    return batch_id


def verified(hook: dict[str, Any], request: Received) -> dict[str, Any]:
    """The body, once its signature is verified as a receiver would."""
    payload: dict[str, Any] = Webhook(hook["signingSecret"]).verify(request.body, request.headers)
    return payload


def ids_answered(requests: list[Received], since: float = 0.0) -> set[str]:
    return {r.headers["webhook-id"] for r in requests if r.at >= since}


def triggers_of(hook: dict[str, Any], requests: list[Received]) -> Counter[str]:
    """How many distinct events of each trigger, every request verified; a repeated
    ``webhook-id`` always carries the same body (a retry)."""
    bodies: dict[str, bytes] = {}
    triggers: dict[str, str] = {}
    for request in requests:
        msg_id = request.headers["webhook-id"]
        assert bodies.setdefault(msg_id, request.body) == request.body
        triggers[msg_id] = verified(hook, request)["trigger"]
    return Counter(triggers.values())


async def soon(value: bool) -> bool:
    return value


async def test_a_batch_reaches_a_receiver_that_fails_then_recovers(
    client: httpx.AsyncClient, stack: Stack, admin_token: str, receiver: Receiver
) -> None:
    auth, uids = await prepare_app(client, admin_token, 40)
    path = f"/flaky-{random_ref()}"
    recovered_at = [float("inf")]
    receiver.answer = lambda p: (500 if p == path and time.time() < recovered_at[0] else 200, 0)
    hook = await register(client, stack, auth, receiver.url(path))
    batch_id = await send_batch(client, auth, uids)
    await wait_until(lambda: soon(len(receiver.at(path)) >= 20), 30, what="first failures")
    recovered_at[0] = time.time() + 3

    expected = len(uids) + 2
    await wait_until(
        lambda: soon(len(ids_answered(receiver.at(path), recovered_at[0])) == expected),
        60,
        what="every event answered 200",
    )
    requests = receiver.at(path)
    assert triggers_of(hook, requests) == {
        "after_notification_created": 1,
        "after_feed_item_sent": len(uids),
        "after_batch_completed": 1,
    }
    assert max(Counter(r.headers["webhook-id"] for r in requests).values()) >= 2  # retried
    completed = next(verified(hook, r) for r in requests if b"after_batch_completed" in r.body)
    assert completed["data"]["batchId"] == batch_id
    assert (completed["appId"], completed["webhook"]) == (auth["appid"], hook["id"])

    async def listed() -> dict[str, Any] | None:
        answer = await client.get(
            f"/v3/webhooks/{hook['id']}/deliveries",
            params={"status": "succeeded", "perPage": 100},
            headers=auth,
        )
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page if page["meta"]["pagination"]["total"] == expected else None

    page = await wait_until(listed, 10, what="every delivery listed as succeeded")
    retried = [d for d in page["data"] if len(d["attempts"]) > 1]
    assert retried
    assert all(d["attempts"][0]["statusCode"] == 500 for d in retried)


async def test_a_hanging_endpoint_does_not_delay_a_healthy_one(
    client: httpx.AsyncClient, stack: Stack, admin_token: str, receiver: Receiver
) -> None:
    auth, uids = await prepare_app(client, admin_token, 60)
    hang, healthy = f"/hang-{random_ref()}", f"/ok-{random_ref()}"
    receiver.answer = lambda p: (200, 10.0 if p == hang else 0.0)
    hung = await register(client, stack, auth, receiver.url(hang))
    hook = await register(client, stack, auth, receiver.url(healthy))
    started = time.time()
    await send_batch(client, auth, uids)
    expected = len(uids) + 2
    # Generous, yet shorter than one answer of the hanging endpoint.
    await wait_until(
        lambda: soon(len(ids_answered(receiver.at(healthy))) == expected),
        9,
        what="the healthy endpoint has every event",
    )
    assert time.time() - started < 10
    assert triggers_of(hook, receiver.at(healthy))["after_feed_item_sent"] == len(uids)
    assert receiver.at(hang)  # the hanging one was called all along
    assert hung["id"] != hook["id"]


async def test_an_emitter_killed_mid_stream_loses_nothing(
    client: httpx.AsyncClient, stack: Stack, admin_token: str, receiver: Receiver
) -> None:
    auth, uids = await prepare_app(client, admin_token, 2000)
    path = f"/steady-{random_ref()}"
    receiver.answer = lambda p: (200, 0.2 if p == path else 0.0)  # ~160 a second (32 at once)
    hook = await register(client, stack, auth, receiver.url(path))
    await send_batch(client, auth, uids)
    await wait_until(lambda: soon(len(receiver.at(path)) >= 300), 60, what="deliveries flow")
    stack.stop_one("webhook-emitter", signal.SIGKILL)
    at_kill = len(ids_answered(receiver.at(path)))
    stack.start_one("webhook-emitter")
    expected = len(uids) + 2
    assert at_kill < expected, "the kill came too late to test anything"
    await wait_until(
        lambda: soon(len(ids_answered(receiver.at(path))) == expected),
        120,
        what="every event after the restart",
    )
    counts = triggers_of(hook, receiver.at(path))
    assert counts["after_feed_item_sent"] == len(uids)
    assert counts["after_batch_completed"] == 1


async def test_an_endpoint_answering_410_is_disabled_and_announced(
    client: httpx.AsyncClient, stack: Stack, admin_token: str, receiver: Receiver
) -> None:
    auth, uids = await prepare_app(client, admin_token, 12)
    gone, watch = f"/gone-{random_ref()}", f"/watch-{random_ref()}"
    receiver.answer = lambda p: (410 if p == gone else 200, 0.0)
    hook = await register(client, stack, auth, receiver.url(gone))
    watcher = await register(client, stack, auth, receiver.url(watch), ["after_webhook_disabled"])
    await send_batch(client, auth, uids)

    async def disabled() -> dict[str, Any] | None:
        answer = await client.get(f"/v3/webhooks/{hook['id']}", headers=auth)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        return None if data["enabled"] else data

    shown = await wait_until(disabled, 30, what="the gateway shows it disabled")
    assert "gone" in shown["disabledReason"]
    await wait_until(lambda: soon(bool(receiver.at(watch))), 30, what="the announcement")
    [announced] = {r.headers["webhook-id"]: r for r in receiver.at(watch)}.values()
    body = verified(watcher, announced)
    assert body["trigger"] == "after_webhook_disabled"
    assert body["data"]["webhookId"] == hook["id"]
    # Nothing was retried or sent after the 410s: only the first attempts in flight.
    times = [r.at for r in receiver.at(gone)]
    assert len(times) == len(ids_answered(receiver.at(gone)))
    assert max(times) - min(times) < 2
