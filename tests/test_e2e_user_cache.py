"""The dispatcher's cache of user profiles over the real stack (issue 7, item 5): a
realtime send right after a change of a user sees the change.

The dispatcher answers realtime lookups from its cache (its
``clarion_user_cache_hits_total`` counter shows it is in play), and the directory's
announcements on ``clarion.users.changes`` keep it coherent: an updated contact point
reaches the next delivery job, a user created after a send that did not find it is
found, and a deleted user is not found, each by the send made at once after the change.
Rendering reads only the send's variables, so the profile data a send carries out is
the contact point of a delivery job, read from ``clarion.jobs.email``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.infra import InfraAddresses
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.tail import TopicTail
from clarion_shared.topics import Topics

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEND = "/v3/campaigns/notifications/messages"


class EmailJobs:
    """The email delivery jobs the stack's dispatcher publishes, read from the end."""

    def __init__(self) -> None:
        self.jobs: list[DeliveryJob] = []

    def on_record(self, value: bytes) -> None:
        self.jobs.append(DeliveryJob.model_validate_json(value))

    async def contact_of(self, send_id: str, uid: str) -> dict[str, Any]:
        async def job() -> DeliveryJob | None:
            return next((j for j in self.jobs if (j.send_id, j.uid) == (send_id, uid)), None)

        found = await wait_until(job, timeout_s=30, what=f"the email job of {uid}")
        return dict(found.contact)


@pytest_asyncio.fixture(loop_scope="session")
async def email_jobs(stack: Stack, infra: InfraAddresses) -> AsyncIterator[EmailJobs]:
    jobs = EmailJobs()
    topic = Topics(stack.env["CLARION_TOPIC_PREFIX"]).jobs("email")
    tail = TopicTail(infra.kafka_bootstrap_servers, topic, jobs.on_record)
    await tail.start()
    try:
        yield jobs
    finally:
        await tail.stop()


async def cache_hits(dispatcher_url: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{dispatcher_url}/metrics")).text
    found = re.search(r"^clarion_user_cache_hits_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()["data"]


async def tenant(client: httpx.AsyncClient, admin_token: str) -> tuple[dict[str, str], str]:
    """An app with an in-app and an email channel and an approved template for both."""
    app = ok(
        await client.post(
            "/admin/apps",
            json={"name": random_ref("app")},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    )
    auth = {"apikey": app["apiKey"]}
    ok(
        await client.post(
            "/v3/campaigns/channels",
            json={"name": "In-app", "type": "in_app", "enabled": True},
            headers=auth,
        )
    )
    ok(
        await client.post(
            "/v3/campaigns/channels",
            json={
                "name": "Mail",
                "type": "email",
                "enabled": True,
                "metadata": {
                    "smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
                    "from": {"email": "shop@example.com"},
                },
            },
            headers=auth,
        )
    )
    template = ok(
        await client.post(
            "/v3/campaigns/templates",
            json={
                "name": "Hello",
                "channels": [
                    {"channelType": "in_app", "content": {"title": "Hi", "body": "Hi {{name}}"}},
                    {"channelType": "email", "content": {"subject": "Hi", "text": "Hi {{name}}"}},
                ],
                "variableSchema": [{"key": "name", "type": "string", "defaultValue": "you"}],
            },
            headers=auth,
        )
    )
    template_id = template["templateId"]
    ok(
        await client.put(
            f"/v3/campaigns/templates/{template_id}", json={"status": "approved"}, headers=auth
        )
    )
    return auth, template_id


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], template_id: str, receivers: list[str]
) -> tuple[str, dict[str, dict[str, Any]]]:
    """A realtime send: its id and each receiver's result."""
    data = ok(
        await client.post(
            SEND, json={"templateId": template_id, "receivers": receivers}, headers=auth
        )
    )
    assert data["mode"] == "realtime"
    return data["notificationId"], {r["uid"]: r for r in data["receivers"]}


def private(email: str) -> dict[str, Any]:
    return {"@private": {"email": email}}


async def test_a_realtime_send_right_after_a_change_sees_it(
    client: httpx.AsyncClient, admin_token: str, dispatcher_url: str, email_jobs: EmailJobs
) -> None:
    auth, template_id = await tenant(client, admin_token)
    ada, ghost = random_ref("ada"), random_ref("ghost")
    ok(
        await client.post(
            "/v3/users",
            json={"uid": ada, "name": "Ada", "metadata": private("ada@old.example")},
            headers=auth,
        )
    )

    # The first send fetches both users (ghost: no such user); the second is answered
    # from the dispatcher's cache.
    first, results = await send(client, auth, template_id, [ada, ghost])
    assert (results[ada]["status"], results[ghost]["code"]) == ("sent", "ERR_USER_NOT_FOUND")
    assert await email_jobs.contact_of(first, ada) == {"email": "ada@old.example"}
    hits = await cache_hits(dispatcher_url)
    _, results = await send(client, auth, template_id, [ada, ghost])
    assert (results[ada]["status"], results[ghost]["code"]) == ("sent", "ERR_USER_NOT_FOUND")
    assert await cache_hits(dispatcher_url) == hits + 2

    # A new contact point, and the missing user created: the next send, at once, sees both.
    updated = await client.put(
        f"/v3/users/{ada}", json={"metadata": private("ada@new.example")}, headers=auth
    )
    ok(updated)
    ok(await client.post("/v3/users", json={"uid": ghost, "name": "Casper"}, headers=auth))
    third, results = await send(client, auth, template_id, [ada, ghost])
    assert (results[ada]["status"], results[ghost]["status"]) == ("sent", "sent")
    assert await email_jobs.contact_of(third, ada) == {"email": "ada@new.example"}
    feed = ok(
        await client.get("/v3/campaigns/notification-feed", headers={**auth, "onbehalfof": ghost})
    )
    assert [item["notificationId"] for item in feed] == [third]

    # Deleted: the next send, at once, does not find the user.
    ok(await client.delete(f"/v3/users/{ada}", headers=auth))
    _, results = await send(client, auth, template_id, [ada, ghost])
    assert (results[ada]["status"], results[ada]["code"]) == ("failed", "ERR_USER_NOT_FOUND")
    assert results[ghost]["status"] == "sent"
