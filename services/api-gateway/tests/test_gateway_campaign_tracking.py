"""Campaign tracking over HTTP on the gateway harness: each recipient's state, the
summary, the sequence metrics and the delivered and read counts, all from status events
(what the dispatcher publishes), each counted once however often it is delivered."""

from __future__ import annotations

from typing import Any, Literal

from clarion_gateway.campaigns.consumers import campaign_event
from clarion_gateway.testing import AUTH, DEV_APP, Harness
from clarion_shared.contracts.status import (
    BatchCompleted,
    ChannelTally,
    ChunkDispatched,
    FeedItemDelivered,
    FeedItemRead,
    NotificationCreated,
    ReceiverState,
)

CAMPAIGNS = "/v3/campaigns/campaigns"
UIDS = [f"u{i}" for i in range(6)]


async def _sending_campaign(harness: Harness) -> tuple[str, str]:
    """A campaign of ``UIDS`` sent (its chunks published), and its in-app channel id."""
    channel = await harness.create_channel()
    await harness.create_template(templateId="promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Sale", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    campaign_id: str = created.json()["data"]["id"]
    harness.directory.add_users(DEV_APP, *UIDS)
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients",
        json={"userIds": UIDS, "userVariables": {"u0": {"name": "Ann"}}},
        headers=AUTH,
    )
    assert added.status_code == 201, added.text
    sent = await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=AUTH)
    assert sent.status_code == 200, sent.text
    channel_id: str = channel["id"]
    return campaign_id, channel_id


def _chunk(
    campaign_id: str, channel_id: str, chunk: int, states: list[ReceiverState], at: int
) -> ChunkDispatched:
    sent = sum(1 for s in states if s.status != "failed")
    return ChunkDispatched(
        event_id=f"chunk-{chunk}",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=at,
        chunk=chunk,
        chunks=2,
        total=len(UIDS),
        sent=sent,
        failed=len(states) - sent,
        channels=[
            ChannelTally(
                channel_type="in_app",
                channel_id=channel_id,
                sent=sum(1 for s in states if s.status == "sent"),
                failed=len(states) - sent,
                queued=sum(1 for s in states if s.status == "pending"),
            )
        ],
        receivers=states,
    )


def _item_event(
    kind: Literal["delivered", "read"], campaign_id: str, channel_id: str, uid: str, at: int
) -> FeedItemDelivered | FeedItemRead:
    item: dict[str, Any] = {
        "id": f"item-{uid}",
        "notificationId": campaign_id,
        "batchId": None,
        "campaignId": campaign_id,
        "receiver": uid,
        "channelType": "in_app",
        "channelId": channel_id,
        "templateId": "promo",
        "templateVersion": 1,
        "content": {"title": "Hi"},
        "tag": None,
        "status": kind,
        "sentAt": 1,
        "deliveredAt": at,
        "readAt": at if kind == "read" else None,
        "createdAt": 1,
        "updatedAt": at,
    }
    event = FeedItemDelivered if kind == "delivered" else FeedItemRead
    return event(
        event_id=f"{kind}-{uid}",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=at,
        feed_item=item,
    )


async def _get(harness: Harness, path: str) -> Any:
    response = await harness.client.get(f"{CAMPAIGNS}/{path}", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def test_recipients_move_from_pending_to_their_reported_states(harness: Harness) -> None:
    campaign_id, channel_id = await _sending_campaign(harness)
    before = await _get(harness, f"{campaign_id}/recipients/summary")
    assert before["data"] == {
        "total": 6,
        "pending": 6,
        "processing": 0,
        "completed": 0,
        "failed": 0,
    }

    first = [
        ReceiverState(uid="u0", status="sent"),
        ReceiverState(uid="u1", status="failed", code="ERR_USER_NOT_FOUND", message="gone"),
        ReceiverState(uid="u2", status="pending"),
    ]
    event = _chunk(campaign_id, channel_id, 0, first, at=2_000_000_000)
    await harness.campaign_events.deliver(event)
    await harness.campaign_events.deliver(event)  # redelivered: the same report

    summary = await _get(harness, f"{campaign_id}/recipients/summary")
    assert summary["data"] == {
        "total": 6,
        "pending": 3,
        "processing": 1,
        "completed": 1,
        "failed": 1,
    }
    listed = await _get(harness, f"{campaign_id}/recipients?perPage=100")
    by_uid = {r["userId"]: r for r in listed["data"]}
    assert {uid: r["status"] for uid, r in by_uid.items()} == {
        "u0": "completed",
        "u1": "failed",
        "u2": "processing",
        "u3": "pending",
        "u4": "pending",
        "u5": "pending",
    }
    assert (by_uid["u1"]["code"], by_uid["u1"]["message"]) == ("ERR_USER_NOT_FOUND", "gone")
    assert by_uid["u0"]["updatedAt"] == 2_000_000_000
    assert by_uid["u0"]["variables"] == {"name": "Ann"}
    assert "code" not in by_uid["u0"]

    failed = await _get(harness, f"{campaign_id}/recipients?status=failed")
    assert [r["userId"] for r in failed["data"]] == ["u1"]
    # CometChat's cursor parameters: the newest updates first.
    newest = await _get(harness, f"{campaign_id}/recipients?limit=2&sort=updatedAt&order=desc")
    assert {r["userId"] for r in newest["data"]} <= {"u0", "u1", "u2"}
    assert len(newest["data"]) == 2


async def test_a_completed_campaign_has_every_recipient_final_and_its_metrics(
    harness: Harness,
) -> None:
    campaign_id, channel_id = await _sending_campaign(harness)
    states = [ReceiverState(uid=uid, status="sent") for uid in UIDS]
    await harness.campaign_events.deliver(
        _chunk(campaign_id, channel_id, 0, states[:3], at=10),
        _chunk(campaign_id, channel_id, 1, states[3:], at=11),
        BatchCompleted(
            event_id="done",
            app_id=DEV_APP,
            send_id=campaign_id,
            mode="campaign",
            occurred_at=12,
            batch_id=campaign_id,
            status="completed",
            total=6,
            sent=6,
            delivered=0,
            failed=0,
            pending=0,
            created_at=1,
            completed_at=12,
        ),
    )
    campaign = (await _get(harness, campaign_id))["data"]
    assert campaign["status"] == "completed"
    assert (campaign["totalTargets"], campaign["sentCount"], campaign["failedCount"]) == (6, 6, 0)
    completed = await _get(harness, f"{campaign_id}/recipients?status=completed&perPage=100")
    assert sorted(r["userId"] for r in completed["data"]) == UIDS

    # Items delivered and read later: counted once per recipient, however often said.
    delivered = [_item_event("delivered", campaign_id, channel_id, u, 20) for u in UIDS[:4]]
    read = [_item_event("read", campaign_id, channel_id, u, 30) for u in UIDS[:2]]
    await harness.campaign_events.deliver(*delivered, *read)
    await harness.campaign_events.deliver(*delivered, read[0])
    campaign = (await _get(harness, campaign_id))["data"]
    assert (campaign["deliveredCount"], campaign["readCount"]) == (4, 2)
    assert campaign["status"] == "completed"

    metrics = await _get(harness, f"{campaign_id}/sequence-metrics")
    assert metrics["data"] == [
        {
            "step": 1,
            "channelType": "in_app",
            "channelId": channel_id,
            "sent": 6,
            "delivered": 4,
            "read": 2,
            "failed": 0,
            "queued": 0,
        }
    ]


async def test_sequence_metrics_before_the_send_list_the_pinned_steps_at_zero(
    harness: Harness,
) -> None:
    await harness.create_channel()
    await harness.create_template(templateId="promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Sale", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    campaign_id = created.json()["data"]["id"]
    metrics = await _get(harness, f"{campaign_id}/sequence-metrics")
    assert [(m["step"], m["channelType"], m["sent"], m["read"]) for m in metrics["data"]] == [
        (1, "in_app", 0, 0)
    ]
    missing = await harness.client.get(f"{CAMPAIGNS}/cmp_nope/sequence-metrics", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ERR_NOT_FOUND"


async def test_recipients_are_walked_with_cometchats_cursor_by_state_changes(
    harness: Harness,
) -> None:
    """``updatedAt`` + ``id`` of the last item, ``affix=append``: every recipient once,
    those whose state changed last at the end; filtered by ``status`` too."""
    campaign_id, channel_id = await _sending_campaign(harness)
    states = [
        ReceiverState(uid="u4", status="sent"),
        ReceiverState(uid="u1", status="failed", code="ERR_X", message="x"),
    ]
    await harness.campaign_events.deliver(
        _chunk(campaign_id, channel_id, 0, states, at=2_000_000_000)
    )
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2, "sort": "updatedAt", "order": "asc"}
    while True:
        page = await _get(harness, f"{campaign_id}/recipients?{_query(params)}")
        seen += page["data"]
        if not page["meta"]["cursor"]["hasMore"]:
            break
        last = page["data"][-1]
        params |= {"affix": "append", "updatedAt": last["updatedAt"], "id": last["id"]}
    assert len(seen) == len({r["id"] for r in seen}) == 6
    assert {r["userId"] for r in seen[-2:]} == {"u1", "u4"}  # changed last
    assert [r["updatedAt"] for r in seen] == sorted(r["updatedAt"] for r in seen)
    pending = await _get(harness, f"{campaign_id}/recipients?status=pending&limit=100")
    assert sorted(r["userId"] for r in pending["data"]) == ["u0", "u2", "u3", "u5"]


def _query(params: dict[str, Any]) -> str:
    return "&".join(f"{key}={value}" for key, value in params.items())


def test_only_the_campaign_events_progress_reads_are_parsed() -> None:
    done = BatchCompleted(
        event_id="d",
        app_id=DEV_APP,
        send_id="cmp_1",
        mode="campaign",
        occurred_at=1,
        batch_id="cmp_1",
        status="completed",
        total=1,
        sent=1,
        delivered=0,
        failed=0,
        pending=0,
        created_at=1,
        completed_at=1,
    )
    read = _item_event("read", "cmp_1", "ch", "u1", 5)
    created = NotificationCreated(
        event_id="n",
        app_id=DEV_APP,
        send_id="cmp_1",
        mode="campaign",
        occurred_at=1,
        notification_id="n1",
        uid="u1",
        channel_type="in_app",
        channel_id="ch",
    )
    assert campaign_event(done.to_bytes())
    assert campaign_event(read.to_bytes())
    assert campaign_event(_chunk("cmp_1", "ch", 0, [], at=1).to_bytes())
    assert not campaign_event(created.to_bytes())  # one per receiver: never read here
    assert not campaign_event(done.model_copy(update={"mode": "batch"}).to_bytes())
