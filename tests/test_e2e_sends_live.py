"""The sends listing and the live progress streams over the four real processes: a
12-receiver batch with an unknown uid, listed with its failure and exported as CSV; a
campaign watched from before its send to its final counts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SENDS = "/v3/campaigns/notifications"
CAMPAIGNS = "/v3/campaigns/campaigns"
DEADLINE_S = 60.0


async def _tenant(client: httpx.AsyncClient, admin_token: str, uids: list[str]) -> dict[str, str]:
    created = await client.post(
        "/admin/apps",
        json={"name": random_ref("sends")},
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
            "name": "Hello",
            "templateId": "hello",
            "status": "approved",
            "channels": [{"channelType": "in_app", "content": {"title": "Hi", "body": "Hello"}}],
        },
        headers=auth,
    )
    assert template.status_code == 201, template.text
    users = [{"uid": uid, "name": uid} for uid in uids]
    imported = await client.post("/v3/users/import", json={"users": users}, headers=auth)
    assert imported.status_code == 200, imported.text
    return auth


async def test_a_batch_is_listed_with_its_receivers_failure_and_csv(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    uids = [f"user-{i}" for i in range(11)]
    auth = await _tenant(client, admin_token, uids)
    sent = await client.post(
        f"{SENDS}/messages",
        json={"templateId": "hello", "receivers": [*uids, "ghost"]},
        headers=auth,
    )
    assert sent.status_code == 200, sent.text
    batch_id = sent.json()["data"]["batchId"]

    async def final() -> dict[str, Any] | None:
        listed = await client.get(f"{SENDS}?type=batch", headers=auth)
        assert listed.status_code == 200, listed.text
        [send] = listed.json()["data"]
        return send if send["status"] == "partially_failed" else None

    send = await wait_until(final, timeout_s=DEADLINE_S, what="the batch listed final")
    assert (send["id"], send["mode"], send["templateId"]) == (batch_id, "direct", "hello")
    assert (send["total"], send["sent"], send["failed"], send["pending"]) == (12, 11, 1, 0)
    other_status = await client.get(f"{SENDS}?status=completed", headers=auth)
    assert other_status.json()["data"] == []

    failed = await client.get(f"{SENDS}/{batch_id}/receivers?status=failed", headers=auth)
    assert failed.status_code == 200, failed.text
    [ghost] = failed.json()["data"]
    assert (ghost["uid"], ghost["status"], ghost["code"]) == (
        "ghost",
        "failed",
        "ERR_USER_NOT_FOUND",
    )
    assert [c["channelType"] for c in ghost["channels"]] == ["in_app"]

    exported = await client.get(f"{SENDS}/{batch_id}/receivers.csv", headers=auth)
    assert exported.status_code == 200, exported.text
    header, *rows = list(csv.reader(io.StringIO(exported.text)))
    assert header == [
        "uid",
        "channel_type",
        "channel_id",
        "status",
        "code",
        "message",
        "updated_at",
    ]
    assert len(rows) == 12
    assert sorted(row[0] for row in rows) == sorted([*uids, "ghost"])

    # The batch's own stream, opened once it is final: its final status at once.
    async with aconnect_sse(
        client, "GET", f"{SENDS}/batches/{batch_id}/events", headers=auth, timeout=DEADLINE_S
    ) as source:
        events = [event async for event in source.aiter_sse()]
    assert [event.event for event in events] == ["done"]
    assert json.loads(events[0].data)["status"] == "partially_failed"


async def test_a_campaign_stream_opened_before_the_send_ends_with_the_final_counts(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    uids = [f"fan-{i}" for i in range(30)]
    auth = await _tenant(client, admin_token, uids)
    created = await client.post(
        CAMPAIGNS,
        json={"name": "Launch", "templateId": "hello", "templateVersion": 1},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["data"]["campaignId"]
    added = await client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": uids}, headers=auth
    )
    assert added.status_code == 201, added.text
    elsewhere = await client.get(f"{CAMPAIGNS}/{campaign_id}/events", headers={"apikey": "nope"})
    assert elsewhere.status_code == 401

    seen: list[tuple[str, dict[str, Any]]] = []
    async with aconnect_sse(
        client, "GET", f"{CAMPAIGNS}/{campaign_id}/events", headers=auth, timeout=DEADLINE_S
    ) as source:
        assert source.response.status_code == 200
        events = source.aiter_sse()
        first = await asyncio.wait_for(anext(events), DEADLINE_S)
        seen.append((first.event, json.loads(first.data)))
        # Past the stream's coalescing window (one snapshot per 250 ms): this campaign
        # is sent, fanned out and decided within less, so its first events would
        # otherwise be shown together with its final state.
        await asyncio.sleep(0.3)
        sent = await client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=auth)
        assert sent.status_code == 200, sent.text

        async def rest() -> None:
            async for event in events:
                seen.append((event.event, json.loads(event.data)))

        await asyncio.wait_for(rest(), DEADLINE_S)

    kinds = [kind for kind, _ in seen]
    assert kinds[-1] == "done"
    assert set(kinds[:-1]) == {"progress"}
    assert seen[0][1]["campaign"]["status"] == "draft"
    assert any(data["campaign"]["status"] == "sending" for _, data in seen[1:-1]), kinds
    final = seen[-1][1]
    assert final["campaign"]["status"] == "completed"
    assert (final["campaign"]["totalTargets"], final["campaign"]["sentCount"]) == (30, 30)
    assert final["recipients"]["completed"] == 30
