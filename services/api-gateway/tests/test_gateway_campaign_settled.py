"""A campaign's recipients settled by the delivery workers (the tracker's
``ReceiversSettled``): a pending recipient moves to its final state and never back,
whichever of the chunk's report and its settlement comes first, once however often
either is delivered; the campaign's counts, summary and live snapshot follow."""

from __future__ import annotations

from typing import Any

from clarion_gateway.campaigns.consumers import campaign_event
from clarion_gateway.campaigns.tracking import (
    ChunkReport,
    Settled,
    chunk_counts,
    receiver_states,
    recipient_states,
)
from clarion_gateway.live.hub import LiveHub
from clarion_gateway.live.models import CampaignProgress
from clarion_gateway.live.service import campaign_reader
from clarion_gateway.testing import AUTH, DEV_APP, Harness
from clarion_shared.contracts.status import (
    BatchCompleted,
    ChannelTally,
    ChunkDispatched,
    ReceiversSettled,
    ReceiverState,
)

CAMPAIGNS = "/v3/campaigns/campaigns"
T = 2_000_000_000  # after the recipients were added: their updatedAt moves to it
UIDS = [f"u{i}" for i in range(6)]
FIRST = [
    ReceiverState(uid="u0", status="sent"),
    ReceiverState(uid="u1", status="pending"),
    ReceiverState(uid="u2", status="pending"),
]
SECOND = [
    ReceiverState(uid="u3", status="pending"),
    ReceiverState(uid="u4", status="failed", code="ERR_USER_NOT_FOUND", message="gone"),
    ReceiverState(uid="u5", status="pending"),
]


def _sent(uid: str) -> ReceiverState:
    return ReceiverState(uid=uid, status="sent")


def _failed(uid: str) -> ReceiverState:
    return ReceiverState(uid=uid, status="failed", code="ERR_NO_CONTACT_POINT", message="No email")


async def _sending_campaign(harness: Harness) -> str:
    await harness.create_channel()
    await harness.create_template(templateId="promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Sale", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    campaign_id: str = created.json()["data"]["id"]
    harness.directory.add_users(DEV_APP, *UIDS)
    added = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": UIDS}, headers=AUTH
    )
    assert added.status_code == 201, added.text
    sent = await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=AUTH)
    assert sent.status_code == 200, sent.text
    return campaign_id


def _chunk(campaign_id: str, chunk: int, states: list[ReceiverState]) -> ChunkDispatched:
    """What the fan-out says of a chunk: its pending receivers count as sent."""
    failed = sum(1 for s in states if s.status == "failed")
    return ChunkDispatched(
        event_id=f"chunk-{chunk}",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=T + 100 + chunk,
        chunk=chunk,
        chunks=2,
        total=len(UIDS),
        sent=len(states) - failed,
        failed=failed,
        channels=[
            ChannelTally(
                channel_type="email",
                channel_id="mail",
                failed=failed,
                queued=sum(1 for s in states if s.status == "pending"),
            )
        ],
        receivers=states,
    )


def _settled(
    campaign_id: str, chunk: int, states: list[ReceiverState], at: int = 200, mode: str = "campaign"
) -> ReceiversSettled:
    return ReceiversSettled(
        event_id=f"settled-{chunk}-{at}",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode=mode,
        occurred_at=T + at,
        chunk=chunk,
        receivers=states,
    )


def _completed(campaign_id: str, sent: int, failed: int) -> BatchCompleted:
    return BatchCompleted(
        event_id="done",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=300,
        batch_id=campaign_id,
        status="partially_failed",
        total=sent + failed,
        sent=sent,
        delivered=0,
        failed=failed,
        pending=0,
        created_at=1,
        completed_at=300,
    )


async def _get(harness: Harness, path: str) -> Any:
    response = await harness.client.get(f"{CAMPAIGNS}/{path}", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def _states(harness: Harness, campaign_id: str) -> dict[str, tuple[str, int, str | None]]:
    listed = await _get(harness, f"{campaign_id}/recipients?perPage=100")
    return {r["userId"]: (r["status"], r["updatedAt"], r.get("code")) for r in listed["data"]}


async def _counts(harness: Harness, campaign_id: str) -> tuple[str, int, int]:
    campaign = (await _get(harness, campaign_id))["data"]
    return campaign["status"], campaign["sentCount"], campaign["failedCount"]


# ---------------------------------------------------------------- the rule


def _report(receivers: list[ReceiverState], *settled: Settled) -> ChunkReport:
    return ChunkReport("app", "cmp", 0, 100, tuple(receivers), (), tuple(settled))


def test_a_receiver_moves_from_pending_to_final_only() -> None:
    report = _report(
        FIRST,
        Settled(_failed("u0"), 200),  # final already: the report's state stays
        Settled(_failed("u1"), 200),
        Settled(ReceiverState(uid="u2", status="pending"), 200),  # moves nothing
        Settled(_sent("u9"), 210),  # settled before its chunk was reported
    )
    states = {uid: (s.state.status, s.at) for uid, s in receiver_states(report).items()}
    assert states == {
        "u0": ("sent", 100),
        "u1": ("failed", 200),
        "u2": ("pending", 100),
        "u9": ("sent", 210),
    }
    # Sent counts those dispatched and not failed (as the fan-out's chunk does).
    assert chunk_counts(report) == (3, 1)
    shown = recipient_states([report])
    assert (shown["u1"].status, shown["u1"].code) == ("failed", "ERR_NO_CONTACT_POINT")
    assert (shown["u2"].status, shown["u9"].status) == ("processing", "completed")


def test_a_settlement_is_a_campaign_event_progress_reads() -> None:
    assert campaign_event(_settled("cmp_1", 0, [_sent("u1")]).to_bytes())
    assert not campaign_event(_settled("bat_1", 0, [_sent("u1")], mode="batch").to_bytes())


# ---------------------------------------------------------------- over HTTP


async def test_settled_recipients_move_on_and_the_counts_follow(harness: Harness) -> None:
    campaign_id = await _sending_campaign(harness)
    await harness.campaign_events.deliver(_chunk(campaign_id, 0, FIRST))
    assert await _counts(harness, campaign_id) == ("sending", 3, 0)

    settled = _settled(campaign_id, 0, [_sent("u1"), _failed("u2")])
    await harness.campaign_events.deliver(settled)
    await harness.campaign_events.deliver(settled)  # redelivered: the same states

    states = await _states(harness, campaign_id)
    assert {uid: s for uid, s in states.items() if uid in ("u0", "u1", "u2")} == {
        "u0": ("completed", T + 100, None),
        "u1": ("completed", T + 200, None),
        "u2": ("failed", T + 200, "ERR_NO_CONTACT_POINT"),
    }
    summary = await _get(harness, f"{campaign_id}/recipients/summary")
    assert summary["data"] == {
        "total": 6,
        "pending": 3,
        "processing": 0,
        "completed": 2,
        "failed": 1,
    }
    # The failure moved from the chunk's sent to its failed, once.
    assert await _counts(harness, campaign_id) == ("sending", 2, 1)

    # The chunk's report read again (a replay) leaves them settled.
    await harness.campaign_events.deliver(_chunk(campaign_id, 0, FIRST))
    assert await _states(harness, campaign_id) == states
    assert await _counts(harness, campaign_id) == ("sending", 2, 1)


async def test_a_settlement_before_its_chunks_report_is_not_undone(harness: Harness) -> None:
    campaign_id = await _sending_campaign(harness)
    # The workers' events overtook the fan-out's ChunkDispatched.
    await harness.campaign_events.deliver(
        _settled(campaign_id, 1, [_failed("u3")], at=150),
        _settled(campaign_id, 1, [_sent("u5")], at=160),
    )
    early = await _states(harness, campaign_id)
    assert (early["u3"][0], early["u5"][0], early["u4"][0]) == ("failed", "completed", "pending")

    await harness.campaign_events.deliver(_chunk(campaign_id, 1, SECOND))
    states = await _states(harness, campaign_id)
    assert {uid: s for uid, s in states.items() if uid in ("u3", "u4", "u5")} == {
        "u3": ("failed", T + 150, "ERR_NO_CONTACT_POINT"),
        "u4": ("failed", T + 101, "ERR_USER_NOT_FOUND"),
        "u5": ("completed", T + 160, None),
    }
    assert await _counts(harness, campaign_id) == ("sending", 1, 2)

    # Both in one fetch, in either order, say the same.
    await harness.campaign_events.deliver(
        _settled(campaign_id, 1, [_failed("u3")], at=150), _chunk(campaign_id, 1, SECOND)
    )
    assert await _states(harness, campaign_id) == states


async def test_the_completion_is_final_and_other_sends_settlements_are_ignored(
    harness: Harness,
) -> None:
    campaign_id = await _sending_campaign(harness)
    await harness.campaign_events.deliver(
        _chunk(campaign_id, 0, FIRST),
        _chunk(campaign_id, 1, SECOND),
        _settled(campaign_id, 0, [_sent("u1"), _sent("u2")]),
        _settled(campaign_id, 1, [_sent("u3"), _sent("u5")]),
        _settled("bat_other", 0, [_failed("u0")], mode="batch"),  # a batch's: not read
        _completed(campaign_id, sent=5, failed=1),
    )
    assert await _counts(harness, campaign_id) == ("partially_failed", 5, 1)
    summary = await _get(harness, f"{campaign_id}/recipients/summary")
    assert summary["data"] == {
        "total": 6,
        "pending": 0,
        "processing": 0,
        "completed": 5,
        "failed": 1,
    }
    # A settlement redelivered after the decision changes no count.
    await harness.campaign_events.deliver(_settled(campaign_id, 0, [_failed("u1")], at=400))
    assert await _counts(harness, campaign_id) == ("partially_failed", 5, 1)


async def test_the_live_snapshot_counts_settled_recipients(harness: Harness) -> None:
    campaign_id = await _sending_campaign(harness)
    read = campaign_reader(harness.store.campaigns, harness.store.campaign_tracking)
    await harness.campaign_events.deliver(_chunk(campaign_id, 0, FIRST))
    before = (await read(DEV_APP, campaign_id)).data
    await harness.campaign_events.deliver(_settled(campaign_id, 0, [_sent("u1")]))
    after = (await read(DEV_APP, campaign_id)).data
    assert isinstance(before, CampaignProgress)
    assert isinstance(after, CampaignProgress)
    assert (before.recipients.processing, before.recipients.completed) == (2, 1)
    assert (after.recipients.processing, after.recipients.completed) == (1, 2)

    # And a settlement wakes the campaign's watchers.
    hub = LiveHub()
    async with hub.subscribe((DEV_APP, campaign_id)) as signals:
        hub.on_status_record(_settled(campaign_id, 0, [_sent("u2")]).to_bytes())
        assert signals.qsize() == 1
