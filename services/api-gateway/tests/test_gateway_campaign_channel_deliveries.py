"""A campaign's numbers per channel follow the delivery workers: each queued delivery a
worker ends (``DeliverySent``, ``DeliveryFailed`` with its notification) moves from
queued to sent or failed in its channel's step, once per delivery (by its notification
id) however often the event is redelivered or republished, in one bulk insert per fetch;
``.../sequence-metrics`` and the dashboard's Campaign detail show the same numbers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from clarion_gateway.campaigns.consumers import campaign_event
from clarion_gateway.campaigns.progress import apply_status, outcome_of
from clarion_gateway.campaigns.tracking import Mark, StepMetrics, mark_key, with_outcomes
from clarion_gateway.testing import (
    AUTH,
    DEV_APP,
    Harness,
    MemoryCampaigns,
    MemoryCampaignTracking,
    MemoryFinishedPublisher,
    sign_in,
)
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.sends import ChannelType
from clarion_shared.contracts.status import (
    ChannelTally,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    ReceiverState,
)

CAMPAIGNS = "/v3/campaigns/campaigns"
PAGES = f"/dashboard/apps/{DEV_APP}/campaigns"
UIDS = [f"u{i}" for i in range(6)]
MAIL = "mail"
NO_CONTACT = ErrorInfo(code="ERR_NO_CONTACT_POINT", message="No email")


async def _sending_campaign(harness: Harness) -> tuple[str, str]:
    """A campaign of ``UIDS`` on an in-app + email template, sent; and its in-app
    channel id (the email channel's is ``MAIL``)."""
    in_app = await harness.create_channel()
    await harness.create_channel(name="Mail", type="email", channelId=MAIL)
    await harness.create_template(
        templateId="promo",
        channels=[
            {"channelType": "in_app", "content": {"title": "Hi {{name}}", "body": "Sale"}},
            {
                "channelType": "email",
                "channelId": MAIL,
                "content": {"subject": "Hi", "text": "Sale"},
            },
        ],
    )
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
    in_app_id: str = in_app["id"]
    return campaign_id, in_app_id


def _chunk(campaign_id: str, in_app: str, chunk: int, uids: Sequence[str]) -> ChunkDispatched:
    """The fan-out's report: ``u4`` unknown (failed on both channels), every other
    receiver's feed item written and its email queued."""
    states = [
        ReceiverState(uid=uid, status="pending")
        if uid != "u4"
        else ReceiverState(uid=uid, status="failed", code="ERR_USER_NOT_FOUND", message="gone")
        for uid in uids
    ]
    failed = sum(1 for s in states if s.status == "failed")
    return ChunkDispatched(
        event_id=f"chunk-{chunk}",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=2_000_000_000 + chunk,
        chunk=chunk,
        chunks=2,
        total=len(UIDS),
        sent=len(states) - failed,
        failed=failed,
        channels=[
            ChannelTally(
                channel_type="in_app", channel_id=in_app, sent=len(states) - failed, failed=failed
            ),
            ChannelTally(
                channel_type="email", channel_id=MAIL, failed=failed, queued=len(states) - failed
            ),
        ],
        receivers=states,
    )


def _outcome(
    campaign_id: str,
    uid: str,
    failed: bool = False,
    event_id: str | None = None,
    mode: str = "campaign",
    channel_type: ChannelType = "email",
) -> DeliverySent | DeliveryFailed:
    """A worker's outcome of ``uid``'s delivery on the channel (notification ``n-<uid>``)."""
    common: dict[str, Any] = {
        "app_id": DEV_APP,
        "send_id": campaign_id,
        "mode": mode,
        "occurred_at": 2_000_000_100,
        "uid": uid,
        "channel_type": channel_type,
        "channel_id": MAIL if channel_type == "email" else "in-app",
        "notification_id": f"n-{uid}-{channel_type}",
    }
    kind = "failed" if failed else "sent"
    event_id = event_id or f"delivery-{kind}-{uid}"
    if failed:
        return DeliveryFailed(event_id=event_id, error=NO_CONTACT, **common)
    return DeliverySent(event_id=event_id, provider_id=f"p-{uid}", **common)


async def _steps(harness: Harness, campaign_id: str) -> list[tuple[str, int, int, int]]:
    """(channel type, sent, failed, queued) per step, as ``.../sequence-metrics`` says."""
    response = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}/sequence-metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    return [
        (s["channelType"], s["sent"], s["failed"], s["queued"]) for s in response.json()["data"]
    ]


# ---------------------------------------------------------------- the rules


def test_outcomes_move_queued_deliveries_and_never_below_zero() -> None:
    step = StepMetrics(2, "email", MAIL, sent=1, failed=1, queued=5)
    assert with_outcomes(step, 3, 1) == StepMetrics(2, "email", MAIL, sent=4, failed=2, queued=1)
    # Outcomes that overtook their chunk's report: counted, nothing negative queued.
    assert with_outcomes(step, 4, 3).queued == 0


def test_a_deliverys_outcome_is_one_mark_keyed_by_its_notification() -> None:
    sent = outcome_of(_outcome("cmp_1", "u1"))
    failed = outcome_of(_outcome("cmp_1", "u1", failed=True, event_id="other"))
    assert sent is not None
    assert failed is not None
    assert (sent.kind, failed.kind, sent.channel_id, sent.notification_id) == (
        "sent",
        "failed",
        MAIL,
        "n-u1-email",
    )
    assert mark_key(sent) == mark_key(failed) == (DEV_APP, "cmp_1", "delivery", "n-u1-email")
    # A feed item's mark keeps its key per recipient, channel and kind.
    item = Mark(DEV_APP, "cmp_1", "u1", MAIL, "sent", 1)
    assert mark_key(item) == (DEV_APP, "cmp_1", "u1", MAIL, "sent")
    # What no tally counted as queued is no outcome: a receiver failed at the fan-out
    # (no notification), an in-app delivery (final when its item was written).
    fanout = DeliveryFailed(
        event_id="f",
        app_id=DEV_APP,
        send_id="cmp_1",
        mode="campaign",
        occurred_at=1,
        uid="u1",
        error=NO_CONTACT,
    )
    assert outcome_of(fanout) is None
    assert outcome_of(_outcome("cmp_1", "u1", channel_type="in_app")) is None


def test_the_workers_outcomes_are_campaign_events_progress_reads() -> None:
    assert campaign_event(_outcome("cmp_1", "u1").to_bytes())
    assert campaign_event(_outcome("cmp_1", "u1", failed=True).to_bytes())
    assert not campaign_event(_outcome("bat_1", "u1", mode="batch").to_bytes())


class _CountingTracking(MemoryCampaignTracking):
    def __init__(self) -> None:
        super().__init__()
        self.mark_calls: list[int] = []

    async def mark(self, marks: Sequence[Mark]) -> None:
        self.mark_calls.append(len(marks))
        await super().mark(marks)


async def test_a_fetch_of_outcomes_is_one_bulk_insert_and_no_campaign_save() -> None:
    tracking, campaigns = _CountingTracking(), MemoryCampaigns()
    events = [_outcome("cmp_1", f"u{i}", failed=i % 4 == 0) for i in range(40)]
    await apply_status(campaigns, tracking, MemoryFinishedPublisher(), [*events, *events[:5]])
    assert tracking.mark_calls == [45]
    assert await tracking.marked(DEV_APP, "cmp_1", "sent", MAIL) == 30
    assert await tracking.marked(DEV_APP, "cmp_1", "failed", MAIL) == 10
    assert campaigns.docs == {}  # outcomes alone change no campaign (none was read)


# ---------------------------------------------------------------- over HTTP


async def test_queued_deliveries_become_sent_or_failed_once(harness: Harness) -> None:
    campaign_id, in_app = await _sending_campaign(harness)
    await harness.campaign_events.deliver(
        _chunk(campaign_id, in_app, 0, UIDS[:3]), _chunk(campaign_id, in_app, 1, UIDS[3:])
    )
    assert await _steps(harness, campaign_id) == [("in_app", 5, 1, 0), ("email", 0, 1, 5)]

    outcomes = [
        _outcome(campaign_id, "u0"),
        _outcome(campaign_id, "u1"),
        _outcome(campaign_id, "u2", failed=True),
        _outcome(campaign_id, "u3"),
    ]
    await harness.campaign_events.deliver(*outcomes)
    await harness.campaign_events.deliver(*outcomes)  # redelivered
    await harness.campaign_events.deliver(
        _outcome(campaign_id, "u0", event_id="republished"),  # the same delivery
        _outcome(campaign_id, "u1", failed=True, event_id="late"),  # it ended sent first
        _outcome(campaign_id, "u5", mode="batch"),  # a batch's: not this campaign's
        _outcome("cmp_other", "u5"),  # another campaign's
    )
    assert await _steps(harness, campaign_id) == [("in_app", 5, 1, 0), ("email", 3, 2, 1)]

    await harness.campaign_events.deliver(_outcome(campaign_id, "u5", failed=True))
    assert await _steps(harness, campaign_id) == [("in_app", 5, 1, 0), ("email", 3, 3, 0)]
    # The recipients' states are the tracker's (ReceiversSettled), not the outcomes'.
    summary = await harness.client.get(
        f"{CAMPAIGNS}/{campaign_id}/recipients/summary", headers=AUTH
    )
    assert summary.json()["data"]["processing"] == 5


async def test_outcomes_that_overtake_their_chunks_report_count_once_it_comes(
    harness: Harness,
) -> None:
    campaign_id, in_app = await _sending_campaign(harness)
    await harness.campaign_events.deliver(
        _outcome(campaign_id, "u0"), _outcome(campaign_id, "u1", failed=True)
    )
    # The email step's channel is the template's: its outcomes show before any report.
    assert await _steps(harness, campaign_id) == [("in_app", 0, 0, 0), ("email", 1, 1, 0)]

    await harness.campaign_events.deliver(_chunk(campaign_id, in_app, 0, UIDS[:3]))
    assert await _steps(harness, campaign_id) == [("in_app", 3, 0, 0), ("email", 1, 1, 1)]
    await harness.campaign_events.deliver(_chunk(campaign_id, in_app, 0, UIDS[:3]))  # replay
    assert await _steps(harness, campaign_id) == [("in_app", 3, 0, 0), ("email", 1, 1, 1)]


async def test_the_campaign_detail_shows_the_channels_numbers_as_the_api(
    harness: Harness,
) -> None:
    campaign_id, in_app = await _sending_campaign(harness)
    await harness.campaign_events.deliver(
        _chunk(campaign_id, in_app, 0, UIDS[:3]),
        _chunk(campaign_id, in_app, 1, UIDS[3:]),
        _outcome(campaign_id, "u0"),
        _outcome(campaign_id, "u2", failed=True),
    )
    await sign_in(harness.client)
    part = await harness.client.get(
        f"{PAGES}/{campaign_id}", headers={"hx-request": "true", "hx-target": "campaign-channels"}
    )
    assert part.text.startswith('<section id="campaign-channels"')
    cells = re.findall(r"<td>([^<]*)</td>", part.text)
    # Step, sent, delivered, read, failed, queued (the channel cell has markup).
    assert cells[:6] == ["1", "5", "0", "0", "1", "0"]
    assert cells[6:] == ["2", "1", "0", "0", "2", "3"]
    assert await _steps(harness, campaign_id) == [("in_app", 5, 1, 0), ("email", 1, 2, 3)]
