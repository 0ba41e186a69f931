"""Delivery channels end to end, the rest of issue 11: WhatsApp and custom HTTP beside
email on a realtime send (a user without the contact point a channel needs is failed
on it with ``ERR_NO_CONTACT_POINT``), a push token FCM calls unregistered removed from
its user, CometChat's push-notification operations over the stack, and the dispatcher
SIGKILLed while it fans out a batch on email and push: every email and push still
arrives once (the replayed jobs carry the same ids, and the worker finds them done).
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
from clarion_devtools.fake_push_kit import Answer
from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.smtpserver import Mailpit

from .conftest import Providers
from .test_e2e_delivery import (
    SEND,
    add_channel,
    assert_each_email_once,
    completed,
    email_metadata,
    import_users,
    make_app,
    send_batch,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PUSH = "/v3/campaigns/push-notifications"
# Receivers of the fan-out killed mid-way: the kill lands at its first records, long
# before the last of 2 x 2,000 deliveries.
FAN_OUT = 2_000


async def create_users(
    client: httpx.AsyncClient, auth: dict[str, str], contacts: dict[str, dict[str, Any]]
) -> None:
    users = [
        {"uid": uid, "name": uid, "metadata": {"@private": contact}}
        for uid, contact in contacts.items()
    ]
    imported = await client.post("/v3/users/import", json={"users": users}, headers=auth)
    assert imported.status_code == 200, imported.text


async def add_template(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    template_id: str,
    channels: list[tuple[str, dict[str, Any]]],
) -> None:
    created = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": template_id,
            "templateId": template_id,
            "channels": [
                {"channelType": kind, "channelId": kind, "content": content}
                for kind, content in channels
            ],
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    approved = await client.put(
        f"/v3/campaigns/templates/{template_id}", json={"status": "approved"}, headers=auth
    )
    assert approved.status_code == 200, approved.text


async def final_states(
    client: httpx.AsyncClient, auth: dict[str, str], notification_id: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per receiver, per channel type, the states once none is queued."""

    async def settled() -> dict[str, dict[str, dict[str, Any]]] | None:
        shown = await client.get(f"/v3/campaigns/notifications/{notification_id}", headers=auth)
        if shown.status_code != 200:
            return None
        states = {
            r["uid"]: {c["channelType"]: c for c in r["channels"]}
            for r in shown.json()["data"]["receivers"]
        }
        queued = any(c["status"] == "queued" for s in states.values() for c in s.values())
        return None if queued else states

    return await wait_until(settled, timeout_s=60, interval_s=0.3, what="final deliveries")


async def test_whatsapp_custom_and_email_deliver_and_a_missing_contact_point_fails(
    client: httpx.AsyncClient,
    admin_token: str,
    mailpit_factory: Callable[..., Mailpit],
    providers: Providers,
) -> None:
    mailpit = mailpit_factory()
    messaging = providers.messaging
    auth = await make_app(client, admin_token)
    both, no_email, no_number = (random_ref(name) for name in ("both", "noemail", "nonumber"))
    await create_users(
        client,
        auth,
        {
            both: {"email": f"{both}@clarion.test", "contactNumber": "+15551230001"},
            no_email: {"contactNumber": "+15551230002"},
            no_number: {"email": f"{no_number}@clarion.test"},
        },
    )
    await add_channel(client, auth, "email", email_metadata(mailpit))
    account = messaging.whatsapp
    whatsapp = {
        "phoneNumberId": account.phone_number_id,
        "accessToken": account.token,
        "baseUrl": messaging.graph_base_url,
    }
    await add_channel(client, auth, "whatsapp", whatsapp)
    created = await client.post(
        "/v3/campaigns/channels",
        json={
            "name": "custom",
            "channelId": "custom",
            "type": "custom",
            "enabled": True,
            "metadata": {"url": messaging.custom_url("/hook")},
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    messaging.custom_secret = created.json()["data"]["signingSecret"]
    await add_template(
        client,
        auth,
        "welcome",
        [
            ("email", {"subject": "Welcome", "text": "Hello"}),
            ("whatsapp", {"text": "Hello from Clarion"}),
            ("custom", {"title": "Hello"}),
        ],
    )

    sent = await client.post(
        SEND, json={"templateId": "welcome", "receivers": [both, no_email, no_number]}, headers=auth
    )
    assert sent.status_code == 200, sent.text
    notification_id = sent.json()["data"]["notificationId"]
    states = await final_states(client, auth, notification_id)

    assert {kind: s["status"] for kind, s in states[both].items()} == {
        "email": "sent",
        "whatsapp": "sent",
        "custom": "sent",
    }
    assert states[no_email]["email"]["code"] == "ERR_NO_CONTACT_POINT"
    assert states[no_email]["whatsapp"]["status"] == "sent"
    assert states[no_number]["whatsapp"]["code"] == "ERR_NO_CONTACT_POINT"
    assert states[no_number]["email"]["status"] == "sent"
    texts = Counter(r.recipient for r in messaging.accepted("whatsapp"))
    assert texts == {"15551230001": 1, "15551230002": 1} or texts == {
        "+15551230001": 1,
        "+15551230002": 1,
    }

    # The sends listing shows the send final once its deliveries ended.
    async def listed_final() -> dict[str, Any] | None:
        page = await client.get("/v3/campaigns/notifications", headers=auth)
        [entry] = [e for e in page.json()["data"] if e["id"] == notification_id]
        return entry if entry["status"] != "dispatching" else None

    entry = await wait_until(listed_final, timeout_s=30, interval_s=0.3, what="a final entry")
    assert (entry["status"], entry["sent"], entry["pending"]) == ("completed", 3, 0)
    hooks = [r for r in messaging.accepted("custom") if r.fields.get("notificationId")]
    assert sorted(r.fields["receiver"] for r in hooks) == sorted([both, no_email, no_number])
    await mailpit.wait_for_count(2)


async def test_an_unregistered_push_token_is_removed_and_pushes_are_listed(
    client: httpx.AsyncClient,
    admin_token: str,
    providers: Providers,
) -> None:
    fcm, apns = providers.fcm, providers.apns
    auth = await make_app(client, admin_token)
    uid = random_ref("phone")
    good, gone = f"fcm-good-{uid}", f"fcm-gone-{uid}"
    fcm.answers[gone] = Answer(kind="unregistered")
    tokens = [{"token": good, "platform": "fcm"}, {"token": gone, "platform": "fcm"}]
    await create_users(client, auth, {uid: {"pushTokens": tokens}})
    await add_channel(client, auth, "push", channel_metadata(fcm, apns, fcm.new_account()))
    await add_template(client, auth, "ping", [("push", {"title": "Ping", "body": "Pong"})])

    sent = await client.post(SEND, json={"templateId": "ping", "receivers": [uid]}, headers=auth)
    assert sent.status_code == 200, sent.text
    states = await final_states(client, auth, sent.json()["data"]["notificationId"])
    assert states[uid]["push"]["status"] == "sent"  # one of its two tokens took it

    async def removed() -> list[dict[str, Any]] | None:
        user = (await client.get(f"/v3/users/{uid}", headers=auth)).json()["data"]
        kept: list[dict[str, Any]] = user["metadata"]["@private"]["pushTokens"]
        return kept if len(kept) == 1 else None

    assert await wait_until(removed, timeout_s=30, interval_s=0.3, what="the token removed") == [
        {"token": good, "platform": "fcm"}
    ]
    listed = await client.get(PUSH, params={"limit": 5}, headers={**auth, "onbehalfof": uid})
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["data"]
    push_id = item["id"]
    for action in ("delivered", "clicked"):
        marked = await client.put(f"{PUSH}/{push_id}/{action}", headers={**auth, "onbehalfof": uid})
        assert marked.status_code == 200, marked.text
    one = await client.get(f"{PUSH}/{push_id}", headers={**auth, "onbehalfof": uid})
    assert one.json()["data"]["status"] == "clicked"
    other = await client.get(f"{PUSH}/{push_id}", headers={**auth, "onbehalfof": "someone"})
    assert other.status_code == 404


async def test_a_dispatcher_killed_mid_fan_out_sends_each_email_and_push_once(
    stack: Stack,
    client: httpx.AsyncClient,
    admin_token: str,
    mailpit_factory: Callable[..., Mailpit],
    providers: Providers,
) -> None:
    mailpit = mailpit_factory()
    fcm, apns = providers.fcm, providers.apns
    auth = await make_app(client, admin_token)
    uids = await import_users(client, auth, FAN_OUT)
    await add_channel(client, auth, "email", email_metadata(mailpit))
    await add_channel(client, auth, "push", channel_metadata(fcm, apns, fcm.new_account()))
    await add_template(
        client,
        auth,
        "crash",
        [
            ("email", {"subject": "Hi", "text": "Hello"}),
            ("push", {"title": "Hi", "body": "Hello"}),
        ],
    )
    batch_id = await send_batch(client, auth, "crash", uids)

    async def partly_recorded() -> int | None:
        written = await stack.notification_records(batch_id)
        return written if written > 0 else None

    await wait_until(partly_recorded, timeout_s=120, interval_s=0.01, what="records written")
    stack.stop_one("dispatcher", sig=signal.SIGKILL)
    recorded = await stack.notification_records(batch_id)
    print(f"\ndispatcher killed with {recorded} of {2 * len(uids)} records written")
    assert recorded < 2 * len(uids), "the fan-out had ended before the kill"
    stack.start_one("dispatcher")
    await asyncio.to_thread(stack.wait_ready, 120)

    status = await completed(client, auth, batch_id, timeout_s=240)
    assert (status["status"], status["sent"], status["failed"]) == ("completed", FAN_OUT, 0)
    await assert_each_email_once(mailpit, uids)
    counts = Counter(a.token for a in [*fcm.accepted, *apns.accepted])
    assert len(counts) == len(uids)
    assert max(counts.values()) == 1
