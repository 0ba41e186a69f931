"""Live progress: the hub wakes only a send's watchers, ``watch`` coalesces bursts and
ends after the final snapshot, and the public streams speak server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from clarion_gateway.live.hub import LiveHub
from clarion_gateway.live.models import BatchPublic, Snapshot
from clarion_gateway.live.service import batch_reader, sse_events, watch
from clarion_gateway.testing import AUTH, DEV_APP, Harness
from clarion_shared.sse import encode_event, with_heartbeat

APP = "app1"


def batch(status: str = "dispatching", sent: int = 0) -> BatchPublic:
    return BatchPublic.model_validate(
        {
            "batchId": "bat_1",
            "status": status,
            "total": 12,
            "sent": sent,
            "delivered": 0,
            "failed": 0,
            "pending": 12 - sent,
            "createdAt": 1,
            "completedAt": None,
        }
    )


def record(kind: str, send_id: str = "bat_1", app_id: str = APP) -> bytes:
    return json.dumps({"type": kind, "app_id": app_id, "send_id": send_id}).encode()


class Statuses:
    """A batch status that moves on as the test says; counts its readings."""

    def __init__(self) -> None:
        self.current: BatchPublic | None = batch()
        self.reads = 0

    async def get(self, app_id: str, batch_id: str) -> BatchPublic | None:
        self.reads += 1
        return self.current if app_id == APP else None


async def test_the_hub_wakes_only_the_watchers_of_the_events_send() -> None:
    hub = LiveHub()
    async with hub.subscribe((APP, "bat_1")) as mine, hub.subscribe((APP, "bat_2")) as other:
        hub.on_status_record(record("chunk_dispatched"))
        hub.on_status_record(record("batch_completed"))  # coalesced: one signal pending
        hub.on_status_record(record("feed_item_sent"))  # changes no snapshot
        hub.on_status_record(record("chunk_dispatched", app_id="other-app"))
        assert (mine.qsize(), other.qsize()) == (1, 0)
        hub.on_status_record(b"not json chunk_dispatched")
        assert hub.open_watches == 2
    assert hub.open_watches == 0


async def test_a_delivery_a_worker_ended_wakes_the_sends_watchers() -> None:
    # A campaign's email step moves from queued to sent or failed as the workers answer:
    # its live view must be read again for each, not only at the next chunk report.
    hub = LiveHub()
    for kind in ("delivery_sent", "delivery_failed"):
        async with hub.subscribe((APP, "bat_1")) as mine:
            hub.on_status_record(record(kind))
            assert mine.qsize() == 1, kind


async def test_watch_reads_at_once_coalesces_bursts_and_ends_after_the_final() -> None:
    hub, statuses = LiveHub(), Statuses()
    stream = watch(APP, "bat_1", read=batch_reader(statuses), hub=hub, coalesce_s=0.2)

    first = await anext(stream)
    assert (first.data, first.final, statuses.reads) == (batch(), False, 1)
    statuses.current = batch(sent=5)
    for _ in range(20):
        hub.notify((APP, "bat_1"))
    second = await anext(stream)
    assert (second.data, statuses.reads) == (batch(sent=5), 2)

    following = asyncio.ensure_future(anext(stream))
    hub.notify((APP, "bat_1"))  # read again, the same as shown: nothing yielded
    await asyncio.sleep(0.3)
    assert (following.done(), statuses.reads) == (False, 3)
    statuses.current = batch("completed", sent=12)
    hub.notify((APP, "bat_1"))
    last = await asyncio.wait_for(following, 2)
    assert (last.final, statuses.reads) == (True, 4)
    assert await anext(stream, None) is None
    assert hub.open_watches == 0


async def test_snapshots_become_progress_events_then_done_with_heartbeats_between() -> None:
    quiet = asyncio.Event()

    async def rest() -> AsyncIterator[Snapshot]:
        await quiet.wait()
        yield Snapshot(batch("completed", 12), True)

    events = with_heartbeat(sse_events(rest(), Snapshot(batch(), False)), 0.05)
    first = await anext(events)
    assert first.startswith("event: progress\nid: 1\ndata: {")
    assert await anext(events) == ": keep-alive\n\n"
    quiet.set()
    done = ""
    async for item in events:
        done = item
    assert done.startswith("event: done\nid: 2\n")
    assert json.loads(done.split("data: ", 1)[1])["status"] == "completed"
    assert encode_event("x", "a\nb") == "event: x\ndata: a\ndata: b\n\n"


async def test_a_batch_stream_of_a_final_batch_is_one_done_event(harness: Harness) -> None:
    answer = {"data": batch("completed", 12).model_dump(by_alias=True)}
    harness.peer = lambda request: httpx.Response(200, json=answer)

    response = await harness.client.get(
        "/v3/campaigns/notifications/batches/bat_1/events", headers=AUTH
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: done\nid: 1\n")
    [request] = harness.peer_requests
    assert request.url.path == f"/internal/apps/{DEV_APP}/batches/bat_1"


async def test_another_apps_batch_or_campaign_is_404_before_the_stream(harness: Harness) -> None:
    missing = await harness.client.get(
        "/v3/campaigns/notifications/batches/bat_1/events", headers=AUTH
    )
    campaign = await harness.client.get("/v3/campaigns/campaigns/cmp_nope/events", headers=AUTH)
    anonymous = await harness.client.get("/v3/campaigns/campaigns/cmp_nope/events")

    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ERR_NOT_FOUND")
    assert (campaign.status_code, campaign.json()["error"]["code"]) == (404, "ERR_NOT_FOUND")
    assert anonymous.status_code == 401


async def test_a_campaign_stream_shows_the_campaign_and_its_recipients(harness: Harness) -> None:
    await harness.create_channel()
    template = await harness.create_template()
    created = await harness.client.post(
        "/v3/campaigns/campaigns",
        json={"name": "Spring", "templateId": template["templateId"], "templateVersion": 1},
        headers=AUTH,
    )
    campaign_id = created.json()["data"]["campaignId"]
    # Cancelled is final: the stream is one event (httpx's ASGI transport reads a
    # response whole, so an endless stream cannot be read here; the e2e test does).
    cancel = await harness.client.post(
        f"/v3/campaigns/campaigns/{campaign_id}/cancel", headers=AUTH
    )
    assert cancel.status_code == 200, cancel.text

    response = await harness.client.get(
        f"/v3/campaigns/campaigns/{campaign_id}/events", headers=AUTH
    )

    event, number, data = response.text.strip().split("\n")
    assert (event, number) == ("event: done", "id: 1")
    shown = json.loads(data.removeprefix("data: "))
    assert (shown["campaign"]["campaignId"], shown["campaign"]["status"]) == (
        campaign_id,
        "cancelled",
    )
    assert shown["recipients"] == {
        "total": 0,
        "pending": 0,
        "processing": 0,
        "completed": 0,
        "failed": 0,
    }
