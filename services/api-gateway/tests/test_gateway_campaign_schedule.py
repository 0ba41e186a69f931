"""Scheduled campaigns: the schedule's rules, and the scheduler firing each due campaign
once (two schedulers at once, a send cut short resumed, cancel and send-now)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from aiokafka.errors import KafkaConnectionError

from clarion_gateway.campaigns.scheduler import CampaignScheduler
from clarion_gateway.testing import AUTH, DEV_APP, Harness
from clarion_shared.ids import now

CAMPAIGNS = "/v3/campaigns/campaigns"
HOUR = 3600


async def _ready_campaign(harness: Harness) -> str:
    await harness.create_channel()
    await harness.create_template(templateId="promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Later", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    campaign_id: str = created.json()["data"]["id"]
    harness.directory.add_users(DEV_APP, "u1", "u2")
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": ["u1", "u2"]}, headers=AUTH
    )
    assert added.status_code == 201, added.text
    return campaign_id


def _scheduler(harness: Harness) -> CampaignScheduler:
    scheduler: CampaignScheduler = harness.app.state.campaign_scheduler
    return scheduler


async def _schedule(harness: Harness, campaign_id: str, at: int) -> httpx.Response:
    return await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/schedule", json={"scheduledAt": at}, headers=AUTH
    )


def _published(harness: Harness, campaign_id: str) -> list[str]:
    return [uid for c in harness.commands.sends if c.send_id == campaign_id for uid in c.receivers]


async def _status(harness: Harness, campaign_id: str) -> dict[str, Any]:
    data: dict[str, Any] = (
        await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH)
    ).json()["data"]
    return data


async def test_a_schedule_must_be_in_the_future_of_a_draft_with_recipients(
    harness: Harness,
) -> None:
    campaign_id = await _ready_campaign(harness)
    past = await _schedule(harness, campaign_id, now() - 1)
    assert past.status_code == 400
    assert past.json()["error"]["code"] == "ERR_VALIDATION"
    at = now() + HOUR
    scheduled = await _schedule(harness, campaign_id, at)
    assert scheduled.status_code == 200, scheduled.text
    assert (scheduled.json()["data"]["status"], scheduled.json()["data"]["scheduledAt"]) == (
        "scheduled",
        at,
    )
    moved = await _schedule(harness, campaign_id, at + 60)
    assert moved.json()["data"]["scheduledAt"] == at + 60
    empty = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Empty", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    refused = await _schedule(harness, empty.json()["data"]["id"], at)
    assert refused.json()["error"]["code"] == "ERR_BAD_REQUEST"


async def test_a_scheduled_campaign_fires_once_at_its_time(harness: Harness) -> None:
    campaign_id = await _ready_campaign(harness)
    at = now() + HOUR
    await _schedule(harness, campaign_id, at)
    assert await _scheduler(harness).tick(at - 1) == []
    assert _published(harness, campaign_id) == []
    # Two processes look at the same moment: one sends, the other finds it taken.
    fired = await asyncio.gather(_scheduler(harness).tick(at), _scheduler(harness).tick(at))
    assert sorted(fired) == [[], [campaign_id]]
    assert _published(harness, campaign_id) == ["u1", "u2"]
    assert (await _status(harness, campaign_id))["status"] == "sending"
    assert await _scheduler(harness).tick(at + HOUR) == []
    assert _published(harness, campaign_id) == ["u1", "u2"]


async def test_cancel_stops_a_schedule_and_send_now_overrides_it(harness: Harness) -> None:
    cancelled_id = await _ready_campaign(harness)
    at = now() + HOUR
    await _schedule(harness, cancelled_id, at)
    cancel = await harness.client.post(f"{CAMPAIGNS}/{cancelled_id}/cancel", headers=AUTH)
    assert cancel.json()["data"]["status"] == "cancelled"
    assert await _scheduler(harness).tick(at + 1) == []
    assert _published(harness, cancelled_id) == []

    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Now", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    now_id = created.json()["data"]["id"]
    await harness.client.post(
        f"{CAMPAIGNS}/{now_id}/recipients", json={"userIds": ["u1"]}, headers=AUTH
    )
    await _schedule(harness, now_id, at)
    sent = await harness.client.post(f"{CAMPAIGNS}/{now_id}/send", headers=AUTH)
    assert (sent.json()["data"]["status"], sent.json()["data"]["scheduledAt"]) == (
        "sending",
        None,
    )
    assert await _scheduler(harness).tick(at + 1) == []
    assert _published(harness, now_id) == ["u1"]


async def test_a_send_cut_short_is_resumed_by_the_scheduler_once_stalled(
    harness: Harness,
) -> None:
    campaign_id = await _ready_campaign(harness)
    at = now() + HOUR
    await _schedule(harness, campaign_id, at)
    harness.commands.fail_with = KafkaConnectionError()
    assert await _scheduler(harness).tick(at) == []  # the broker is away: not sent
    assert (await _status(harness, campaign_id))["status"] == "sending"
    harness.commands.fail_with = None
    assert await _scheduler(harness).tick(at + 1) == []  # too soon to call it stalled
    started = (await _status(harness, campaign_id))["startedAt"]
    assert await _scheduler(harness).tick(started + 31) == [campaign_id]
    assert _published(harness, campaign_id) == ["u1", "u2"]
    assert await _scheduler(harness).tick(started + 3600) == []  # dispatched: done
