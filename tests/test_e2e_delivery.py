"""Delivery channels end to end (issue 11): the five real processes, the delivery
worker among them, sending to a real SMTP server (Mailpit), to local servers that
implement FCM HTTP v1, APNs and Twilio's Messages API, over the real broker and
database.

- A 1,000-receiver batch on in_app + email + push + sms: every message arrives exactly
  once at each server, the batch completes with every receiver sent, and a
  notification shows each delivery.
- An SMTP server that refuses for a while and then recovers: every email arrives once.
- The email worker SIGKILLed mid-batch and restarted: no email lost, and none doubled
  but those the worker knows it may have doubled: an email whose worker died between
  handing it over and writing it down (SMTP cannot tell a sender afterwards whether a
  server took a message) is sent again with the same Message-ID, and its outcome says
  ``resent``. The test requires every doubled address to be among those.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from clarion_devtools.devstack import Stack
from clarion_devtools.fake_push import channel_metadata
from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.smtpserver import Mailpit
from clarion_shared.mongo import make_client

from .conftest import Providers

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEND = "/v3/campaigns/notifications/messages"
BATCHES = "/v3/campaigns/notifications/batches"
IMPORT = 1_000
SENDER = "+15550000000"


def number(i: int) -> str:
    return f"+1555{i:07d}"


def contact(uid: str, i: int) -> dict[str, Any]:
    platform = "fcm" if i % 2 == 0 else "apns"
    token = f"{platform}-{uid}" if platform == "fcm" else f"{i:064x}"
    return {
        "email": f"{uid}@clarion.test",
        "contactNumber": number(i),
        "pushTokens": [{"token": token, "platform": platform}],
    }


async def make_app(client: httpx.AsyncClient, admin_token: str) -> dict[str, str]:
    created = await client.post(
        "/admin/apps",
        json={"name": random_ref("delivery")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    app = created.json()["data"]
    return {"apikey": app["apiKey"], "appid": app["appId"]}


async def import_users(client: httpx.AsyncClient, auth: dict[str, str], count: int) -> list[str]:
    uids = [random_ref("u") for _ in range(count)]
    for start in range(0, count, IMPORT):
        users = [
            {"uid": uid, "name": uid, "metadata": {"@private": contact(uid, start + n)}}
            for n, uid in enumerate(uids[start : start + IMPORT])
        ]
        imported = await client.post(
            "/v3/users/import", json={"users": users}, headers=auth, timeout=60
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["data"]["created"] == len(users)
    return uids


async def add_channel(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str, metadata: dict[str, Any]
) -> None:
    created = await client.post(
        "/v3/campaigns/channels",
        json={"name": kind, "channelId": kind, "type": kind, "enabled": True, "metadata": metadata},
        headers=auth,
    )
    assert created.status_code == 201, created.text


CONTENT: dict[str, dict[str, str]] = {
    "in_app": {"title": "Hi {{name}}", "body": "Your order shipped"},
    "email": {"subject": "Hi {{name}}", "text": "Your order shipped", "html": "<p>Shipped</p>"},
    "push": {"title": "Hi {{name}}", "body": "Your order shipped"},
    "sms": {"text": "Hi {{name}}, your order shipped"},
}


async def add_template(
    client: httpx.AsyncClient, auth: dict[str, str], template_id: str, kinds: list[str]
) -> None:
    channels = [
        {"channelType": kind, "channelId": kind, "content": CONTENT[kind]} for kind in kinds
    ]
    created = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": template_id,
            "templateId": template_id,
            "channels": channels,
            "variableSchema": [{"key": "name", "type": "string", "defaultValue": "there"}],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    approved = await client.put(
        f"/v3/campaigns/templates/{template_id}", json={"status": "approved"}, headers=auth
    )
    assert approved.status_code == 200, approved.text


def email_metadata(mailpit: Mailpit) -> dict[str, Any]:
    return {
        "smtp": {"host": mailpit.host, "port": mailpit.smtp_port, "security": "none"},
        "from": {"email": "news@clarion.test", "name": "Clarion"},
    }


async def send_batch(
    client: httpx.AsyncClient, auth: dict[str, str], template_id: str, uids: list[str]
) -> str:
    sent = await client.post(
        SEND, json={"templateId": template_id, "receivers": uids}, headers=auth
    )
    assert sent.status_code == 200, sent.text
    batch_id: str = sent.json()["data"]["batchId"]
    return batch_id


async def completed(
    client: httpx.AsyncClient, auth: dict[str, str], batch_id: str, timeout_s: float = 180
) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        answer = await client.get(f"{BATCHES}/{batch_id}", headers=auth)
        if answer.status_code != 200:
            return None
        status: dict[str, Any] = answer.json()["data"]
        return status if status["completedAt"] is not None else None

    return await wait_until(final, timeout_s=timeout_s, interval_s=0.5, what="a final batch")


async def assert_each_email_once(mailpit: Mailpit, uids: list[str]) -> None:
    await mailpit.wait_for_count(len(uids), timeout_s=60)
    await asyncio.sleep(1.0)  # a late duplicate would show now
    messages = await mailpit.messages()
    recipients = Counter(address for m in messages for address in m.recipients)
    doubled = {address: n for address, n in recipients.items() if n > 1}
    assert doubled == {}, f"{len(doubled)} addresses got more than one email"
    assert set(recipients) == {f"{uid}@clarion.test" for uid in uids}
    assert len(messages) == len(uids)


async def test_a_batch_reaches_every_channel_exactly_once(
    client: httpx.AsyncClient,
    admin_token: str,
    mailpit_factory: Callable[..., Mailpit],
    providers: Providers,
) -> None:
    mailpit = mailpit_factory()
    auth = await make_app(client, admin_token)
    uids = await import_users(client, auth, 1_000)
    await add_channel(client, auth, "in_app", {})
    await add_channel(client, auth, "email", email_metadata(mailpit))
    fcm, apns = providers.fcm, providers.apns
    await add_channel(client, auth, "push", channel_metadata(fcm, apns, fcm.new_account()))
    twilio = providers.messaging.twilio
    sms = {
        "provider": "twilio",
        "accountSid": twilio.sid,
        "authToken": twilio.token,
        "from": SENDER,
        "baseUrl": providers.messaging.twilio_base_url,
    }
    await add_channel(client, auth, "sms", sms)
    await add_template(client, auth, "shipped", ["in_app", "email", "push", "sms"])

    batch_id = await send_batch(client, auth, "shipped", uids)
    status = await completed(client, auth, batch_id)
    assert (status["status"], status["sent"], status["failed"], status["pending"]) == (
        "completed",
        1_000,
        0,
        0,
    )

    await assert_each_email_once(mailpit, uids)
    pushed = Counter(a.token for a in [*fcm.accepted, *apns.accepted])
    wanted = {contact(uid, i)["pushTokens"][0]["token"] for i, uid in enumerate(uids)}
    assert set(pushed) == wanted
    assert max(pushed.values()) == 1
    texts = Counter(r.recipient for r in providers.messaging.accepted("twilio"))
    assert set(texts) == {number(i) for i in range(len(uids))}
    assert max(texts.values()) == 1

    # Each delivery is shown on the notification, with the provider's id.
    shown = await client.get(f"/v3/campaigns/notifications/{batch_id}", headers=auth)
    assert shown.status_code == 200, shown.text
    receivers = shown.json()["data"]["receivers"]
    assert len(receivers) == 1_000
    for receiver in receivers[:50]:
        states = {c["channelType"]: c for c in receiver["channels"]}
        assert {kind: s["status"] for kind, s in states.items()} == dict.fromkeys(CONTENT, "sent")
        assert states["email"]["providerId"]
        assert states["sms"]["providerId"].startswith("SM")


async def email_app(
    client: httpx.AsyncClient, admin_token: str, mailpit: Mailpit, count: int
) -> tuple[dict[str, str], list[str]]:
    auth = await make_app(client, admin_token)
    uids = await import_users(client, auth, count)
    await add_channel(client, auth, "email", email_metadata(mailpit))
    await add_template(client, auth, "news", ["email"])
    return auth, uids


async def test_an_smtp_server_refusing_for_a_while_gets_every_email_once(
    client: httpx.AsyncClient, admin_token: str, mailpit_factory: Callable[..., Mailpit]
) -> None:
    mailpit = mailpit_factory()
    auth, uids = await email_app(client, admin_token, mailpit, 200)
    async with mailpit.refusing():
        batch_id = await send_batch(client, auth, "news", uids)
        await asyncio.sleep(3)  # every first attempt is refused (451), retried later
        assert await mailpit.count() == 0
    status = await completed(client, auth, batch_id)
    assert (status["status"], status["sent"], status["failed"]) == ("completed", 200, 0)
    await assert_each_email_once(mailpit, uids)
    shown = await client.get(f"/v3/campaigns/notifications/{batch_id}", headers=auth)
    attempts = [r["channels"][0]["attempts"] for r in shown.json()["data"]["receivers"]]
    # Those refused were tried again; the rest waited for the circuit (attempt 1).
    assert max(attempts) >= 2


async def resent_addresses(stack: Stack, batch_id: str) -> set[str]:
    """The addresses of the batch's emails the delivery worker sent again after a
    claimed attempt's worker died (``resent`` outcomes in the dispatcher's database)."""
    client: Any = make_client(stack.env["MONGODB_URL"])
    try:
        deliveries = client[stack.env["CLARION_DISPATCHER_DB_NAME"]]["deliveries"]
        found = deliveries.find({"send_id": batch_id, "resent": True})
        return {f"{doc['uid']}@clarion.test" async for doc in found}
    finally:
        await client.close()


async def test_an_email_worker_killed_mid_batch_loses_nothing(
    stack: Stack,
    client: httpx.AsyncClient,
    admin_token: str,
    mailpit_factory: Callable[..., Mailpit],
) -> None:
    mailpit = mailpit_factory()
    auth, uids = await email_app(client, admin_token, mailpit, 3_000)
    batch_id = await send_batch(client, auth, "news", uids)

    async def some_sent() -> int | None:
        held = await mailpit.count()
        return held if held >= 300 else None

    await wait_until(some_sent, timeout_s=120, interval_s=0.02, what="emails arriving")
    stack.stop_one("delivery", sig=signal.SIGKILL)
    at_kill = await mailpit.count()
    assert at_kill < len(uids), "every email was sent before the kill"
    stack.start_one("delivery")
    await asyncio.to_thread(stack.wait_ready, 120)

    status = await completed(client, auth, batch_id)
    assert (status["status"], status["sent"], status["failed"]) == ("completed", 3_000, 0)
    await mailpit.wait_for_count(len(uids), timeout_s=60)
    await asyncio.sleep(1.0)
    messages = await mailpit.messages()
    by_address: dict[str, set[str]] = {}
    counts = Counter(address for m in messages for address in m.recipients)
    for m in messages:
        for address in m.recipients:
            by_address.setdefault(address, set()).add(m.message_id)
    assert set(counts) == {f"{uid}@clarion.test" for uid in uids}  # none lost
    doubled = {address for address, n in counts.items() if n > 1}
    resent = await resent_addresses(stack, batch_id)
    assert doubled <= resent, f"doubled without a resend: {sorted(doubled - resent)[:5]}"
    assert all(len(by_address[address]) == 1 for address in doubled)  # same Message-ID
    assert len(resent) <= 16  # at most what was in flight on the pool's connections
    print(
        f"\ndelivery worker killed with {at_kill} of {len(uids)} emails received; "
        f"{len(resent)} sent again after the restart, {len(doubled)} of them had arrived"
    )
