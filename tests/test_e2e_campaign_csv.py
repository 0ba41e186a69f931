"""A 10,000-recipient campaign whose audience is a CSV uploaded the CometChat way, over
the four real processes, Kafka and FerretDB: sent to ``completed`` with every
recipient's variables taken from its row, the campaign and the template in that order;
and sent again with the dispatcher SIGKILLed mid-campaign, still one feed item per
recipient, exact counts and one completion event.

Feed items are counted exactly in the dispatcher's ``feed_items`` collection (10,000
feed reads over HTTP would take most of a minute); a sample of feeds is also read
through the API, where the rendered variables are checked.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.devstack import Stack
from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CAMPAIGNS = "/v3/campaigns/campaigns"
RECIPIENTS = 10_000
IMPORT = 1_000  # users per import call (the API's limit)
LATE_DUPLICATE_S = 3.0  # how long after the first BatchCompleted a second is looked for
TEMPLATE = {
    "name": "Spring",
    "templateId": "spring",
    "status": "approved",
    "channels": [
        {
            "channelType": "in_app",
            "content": {"title": "{{greeting}} {{name}}", "body": "{{promo}}|{{city}}|{{tier}}"},
        }
    ],
    "variableSchema": [
        {"key": "name", "required": True},
        {"key": "greeting", "defaultValue": "Hello"},  # only the template sets it
        {"key": "city", "defaultValue": "nowhere"},  # the campaign overrides it
        {"key": "promo", "defaultValue": "NONE"},  # the campaign's, some rows' own
        {"key": "tier", "defaultValue": "standard"},  # some rows' own, else the default
    ],
}
CAMPAIGN_VARIABLES = {"city": "Paris", "promo": "SPRING"}


@dataclass(frozen=True)
class App:
    auth: dict[str, str]
    uids: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(stack: Stack, admin_token: str) -> AsyncIterator[App]:
    """One app for the module: 10,000 users, an in-app channel, an approved template."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        created = await http.post(
            "/admin/apps",
            json={"name": random_ref("csv")},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert created.status_code == 201, created.text
        auth = {"apikey": created.json()["data"]["apiKey"]}
        uids = [f"{random_ref('r')}-{i:05d}" for i in range(RECIPIENTS)]
        for start in range(0, RECIPIENTS, IMPORT):
            part = uids[start : start + IMPORT]
            imported = await http.post(
                "/v3/users/import",
                json={"users": [{"uid": uid, "name": uid} for uid in part]},
                headers=auth,
            )
            assert imported.status_code == 200, imported.text
            assert imported.json()["data"]["created"] == len(part)
        channel = await http.post(
            "/v3/campaigns/channels",
            json={"name": "Feed", "type": "in_app", "enabled": True},
            headers=auth,
        )
        assert channel.status_code == 201, channel.text
        template = await http.post("/v3/campaigns/templates", json=TEMPLATE, headers=auth)
        assert template.status_code == 201, template.text
        yield App(auth, uids)


def csv_of(uids: list[str]) -> bytes:
    """Row i: its ``name``; ``promo`` of its own on every 7th row (else an empty cell);
    ``tier`` of its own on every 5th row, else an empty cell or, on rows divisible by 3,
    no cell at all (a short row). Also a BOM, CRLF line ends and one quoted field."""
    lines = ["user_id,name,promo,tier"]
    for i, uid in enumerate(uids):
        promo = f"VIP{i}" if i % 7 == 0 else ""
        name = f'"N{i}, Esq."' if i == 1 else f"N{i}"
        if i % 5 == 0:
            lines.append(f"{uid},{name},{promo},gold")
        elif i % 3 == 0:
            lines.append(f"{uid},{name},{promo}")
        else:
            lines.append(f"{uid},{name},{promo},")
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def expected_content(i: int) -> dict[str, str]:
    """What row i renders to: its own cells, then the campaign's, then the defaults."""
    name = "N1, Esq." if i == 1 else f"N{i}"
    promo = f"VIP{i}" if i % 7 == 0 else CAMPAIGN_VARIABLES["promo"]
    tier = "gold" if i % 5 == 0 else "standard"
    return {"title": f"Hello {name}", "body": f"{promo}|{CAMPAIGN_VARIABLES['city']}|{tier}"}


async def create_campaign(client: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    created = await client.post(
        CAMPAIGNS,
        json={
            "name": name,
            "templateId": "spring",
            "templateVersion": 1,
            "variables": CAMPAIGN_VARIABLES,
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["data"]["campaignId"]
    return campaign_id


async def import_csv(
    client: httpx.AsyncClient, auth: dict[str, str], campaign_id: str, content: bytes
) -> dict[str, Any]:
    """upload-url, PUT without apikey, import-csv, import-status until it is final."""
    url = f"{CAMPAIGNS}/{campaign_id}"
    issued = await client.post(f"{url}/recipients/upload-url", headers=auth)
    assert issued.status_code == 201, issued.text
    upload = issued.json()["data"]
    put = await client.put(upload["uploadUrl"], content=content)  # no apikey
    assert put.status_code == 200, put.text
    started = await client.post(f"{url}/import-csv", json={"s3Key": upload["s3Key"]}, headers=auth)
    assert started.status_code == 202, started.text

    async def final() -> dict[str, Any] | None:
        response = await client.get(f"{url}/import-status", headers=auth)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data if data["status"] != "processing" else None

    status = await wait_until(final, timeout_s=60, interval_s=0.2, what="the import's end")
    assert status["importId"] == started.json()["data"]["importId"]
    return status


async def send_and_wait(
    client: httpx.AsyncClient, auth: dict[str, str], campaign_id: str
) -> dict[str, Any]:
    url = f"{CAMPAIGNS}/{campaign_id}"
    sent = await client.post(f"{url}/send", headers=auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["status"] == "sending"
    return await final_campaign(client, auth, campaign_id)


async def final_campaign(
    client: httpx.AsyncClient, auth: dict[str, str], campaign_id: str
) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        try:
            response = await client.get(f"{CAMPAIGNS}/{campaign_id}", headers=auth)
        except httpx.TransportError:
            return None
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data if data["status"] != "sending" else None

    return await wait_until(final, timeout_s=120, interval_s=0.25, what="the campaign's end")


async def feed_receivers(stack: Stack, campaign_id: str) -> Counter[str]:
    """How many feed items each receiver holds of the campaign, read from the
    dispatcher's feed collection (one query instead of 10,000 feed reads)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.env["MONGODB_URL"])
    try:
        feed = mongo[stack.env["CLARION_DISPATCHER_DB_NAME"]]["feed_items"]
        found = feed.find({"campaign_id": campaign_id}, {"receiver": 1})
        return Counter([doc["receiver"] async for doc in found])
    finally:
        await mongo.close()


async def assert_done_once(
    stack: Stack, client: httpx.AsyncClient, app: App, campaign_id: str, done: dict[str, Any]
) -> None:
    """Completed with exact counts, every recipient ``completed`` in the recipients'
    summary, one feed item per recipient (none for anyone else), and one
    ``BatchCompleted`` of the campaign."""
    assert done["status"] == "completed", done
    assert (done["totalTargets"], done["sentCount"], done["failedCount"]) == (
        RECIPIENTS,
        RECIPIENTS,
        0,
    )
    assert done["completedAt"] is not None

    # The chunks' reports are applied before the completion they precede on the topic.
    response = await client.get(f"{CAMPAIGNS}/{campaign_id}/recipients/summary", headers=app.auth)
    assert response.status_code == 200, response.text
    summary = response.json()["data"]
    assert summary == {
        "total": RECIPIENTS,
        "pending": 0,
        "processing": 0,
        "completed": RECIPIENTS,
        "failed": 0,
    }
    per_receiver = await feed_receivers(stack, campaign_id)
    assert sorted(per_receiver) == sorted(app.uids)
    assert set(per_receiver.values()) == {1}, per_receiver.most_common(3)

    async def announced() -> list[dict[str, Any]]:
        return await stack.completions(campaign_id)

    await wait_until(announced, timeout_s=30, interval_s=0.5, what="the BatchCompleted")
    await asyncio.sleep(LATE_DUPLICATE_S)
    [event] = await stack.completions(campaign_id)
    assert (event["mode"], event["batch_id"]) == ("campaign", campaign_id)
    assert (event["status"], event["total"], event["sent"], event["failed"]) == (
        "completed",
        RECIPIENTS,
        RECIPIENTS,
        0,
    )
    assert event["completed_at"] == done["completedAt"]


async def test_a_csv_campaign_of_10000_renders_each_recipients_variables(
    stack: Stack, client: httpx.AsyncClient, app: App
) -> None:
    started = time.perf_counter()
    campaign_id = await create_campaign(client, app.auth, "Spring CSV")
    content = csv_of(app.uids)
    status = await import_csv(client, app.auth, campaign_id, content)
    assert status["status"] == "completed", status
    assert (status["rows"], status["imported"], status["duplicates"]) == (RECIPIENTS, RECIPIENTS, 0)
    assert status["rejected"] == []
    imported = time.perf_counter()

    done = await send_and_wait(client, app.auth, campaign_id)
    await assert_done_once(stack, client, app, campaign_id, done)

    # Each kind of row, read through the API: own cells, empty cells, short rows.
    sample = sorted({*range(0, 36), *range(RECIPIENTS - 36, RECIPIENTS)})
    for i in sample:
        response = await client.get(
            "/v3/campaigns/notification-feed", headers={**app.auth, "onbehalfof": app.uids[i]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["meta"]["pagination"]["total"] == 1
        [item] = response.json()["data"]
        assert (item["campaignId"], item["receiver"]) == (campaign_id, app.uids[i])
        assert item["content"] == expected_content(i), i
    print(
        f"\nimported in {imported - started:.1f}s, sent and checked in "
        f"{time.perf_counter() - imported:.1f}s"
    )


async def test_a_dispatcher_killed_mid_campaign_completes_it_exactly_once(
    stack: Stack, client: httpx.AsyncClient, app: App
) -> None:
    campaign_id = await create_campaign(client, app.auth, "Spring again")
    status = await import_csv(client, app.auth, campaign_id, csv_of(app.uids))
    assert (status["status"], status["imported"]) == ("completed", RECIPIENTS), status
    sent = await client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=app.auth)
    assert sent.status_code == 200, sent.text

    # Kill the dispatcher once some recipients are recorded...
    async def partly_recorded() -> dict[str, Any] | None:
        response = await client.get(
            f"/v3/campaigns/notifications/batches/{campaign_id}", headers=app.auth
        )
        if response.status_code != 200:
            return None
        data: dict[str, Any] = response.json()["data"]
        return data if data["sent"] + data["failed"] > 0 else None

    await wait_until(partly_recorded, timeout_s=60, interval_s=0.02, what="progress")
    stack.stop_one("dispatcher", sig=signal.SIGKILL)
    # ... and not all: counted in the database after the kill, so at the kill too.
    at_kill = await stack.notification_records(campaign_id)
    assert 0 < at_kill < RECIPIENTS, f"{at_kill} of {RECIPIENTS} recorded at the kill"
    print(f"\ndispatcher killed with {at_kill} of {RECIPIENTS} recipients recorded")
    stack.start_one("dispatcher")
    await asyncio.to_thread(stack.wait_ready, 120)

    done = await final_campaign(client, app.auth, campaign_id)
    await assert_done_once(stack, client, app, campaign_id, done)
