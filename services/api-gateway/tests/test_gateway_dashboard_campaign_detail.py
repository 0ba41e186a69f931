"""The Campaign detail page: the campaign, its counts and its recipients by status as the
campaign routes read them, the recipients' filter and paging, the live part server-sent
as HTML fragments from the same stream as ``GET .../campaigns/{id}/events``, and the
cancel through the API's use case, audited."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest_asyncio
from starlette.types import ASGIApp, Message

from clarion_gateway.app import compose
from clarion_gateway.campaigns.domain import Campaign
from clarion_gateway.dashboard.web import SESSION_COOKIE
from clarion_gateway.live.hub import LiveHub
from clarion_gateway.testing import (
    ADMIN,
    AUTH,
    DEV_APP,
    FakeRequester,
    Harness,
    MemoryCampaignEvents,
    MemoryDirectory,
    MemoryStore,
    RecordingCommands,
    fake_adapters,
    make_settings,
    sign_in,
)
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    BatchCompleted,
    ChannelTally,
    ChunkDispatched,
    ReceiverState,
)

CAMPAIGNS = "/v3/campaigns/campaigns"
PAGES = f"/dashboard/apps/{DEV_APP}/campaigns"
UIDS = ["u0", "u1", "u2", "u3"]
DEADLINE_S = 5.0  # a stream that says nothing this long has failed the test


async def _draft(harness: Harness, uids: list[str] = UIDS) -> str:
    """A draft campaign of ``uids`` on an approved in-app template."""
    await harness.create_channel()
    await harness.create_template(templateId="promo", name="Promo")
    created = await harness.client.post(
        CAMPAIGNS,
        json={"name": "Spring sale", "templateId": "promo", "templateVersion": 1},
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["data"]["id"]
    if uids:
        harness.directory.add_users(DEV_APP, *uids)
        added = await harness.client.post(
            f"{CAMPAIGNS}/{campaign_id}/recipients", json={"userIds": uids}, headers=AUTH
        )
        assert added.status_code == 201, added.text
    return campaign_id


async def _sending(harness: Harness, uids: list[str] = UIDS) -> str:
    campaign_id = await _draft(harness, uids)
    sent = await harness.client.post(f"{CAMPAIGNS}/{campaign_id}/send", headers=AUTH)
    assert sent.status_code == 200, sent.text
    return campaign_id


def _chunk(campaign_id: str, chunk: int, states: list[ReceiverState]) -> ChunkDispatched:
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
                channel_type="in_app",
                channel_id="in-app",
                sent=len(states) - failed,
                failed=failed,
                queued=0,
            )
        ],
        receivers=states,
    )


def _completed(campaign_id: str, sent: int, failed: int) -> BatchCompleted:
    return BatchCompleted(
        event_id="done",
        app_id=DEV_APP,
        send_id=campaign_id,
        mode="campaign",
        occurred_at=2_000_000_010,
        batch_id=campaign_id,
        status="completed" if not failed else "partially_failed",
        total=sent + failed,
        sent=sent,
        delivered=0,
        failed=failed,
        pending=0,
        created_at=1,
        completed_at=2_000_000_010,
    )


def _sent(uid: str) -> ReceiverState:
    return ReceiverState(uid=uid, status="sent")


def _failed(uid: str) -> ReceiverState:
    return ReceiverState(uid=uid, status="failed", code="ERR_NO_CONTACT_POINT", message="No email")


async def _operator(harness: Harness, email: str, role: str) -> None:
    body = {"email": email, "password": "a long passphrase", "roles": {DEV_APP: role}}
    made = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text


# ---------------------------------------------------------------- the page


async def test_the_page_shows_the_campaign_its_counts_and_its_recipients(
    harness: Harness,
) -> None:
    campaign_id = await _sending(harness)
    await harness.campaign_events.deliver(
        _chunk(
            campaign_id, 0, [_sent("u0"), _failed("u1"), ReceiverState(uid="u2", status="pending")]
        )
    )
    await sign_in(harness.client)

    page = await harness.client.get(f"{PAGES}/{campaign_id}")

    assert page.status_code == 200
    html = page.text
    assert "<h1>Spring sale" in html
    assert '<span class="badge sending" id="campaign-status">sending</span>' in html
    assert '<a href="/dashboard/apps/clarion-dev/templates/promo">Promo</a>' in html
    assert "<dt>Version</dt><dd>1</dd>" in html
    # Recipients by state, as .../recipients/summary counts them, and the progress bar.
    assert '<progress max="4" value="2"' in html
    assert "2 of 4 recipients done (50%)" in html
    for status, count in (("pending", 1), ("processing", 1), ("completed", 1), ("failed", 1)):
        assert (
            f'?status={status}#campaign-recipients-title"><span class="stat-value">{count}</span>'
        ) in html
    # Deliveries, as the campaign object counts them (sentCount, failedCount, ...).
    assert '<span class="stat-value">2</span><span class="stat-label">Sent</span>' in html
    assert '<span class="stat-value">1</span><span class="stat-label">Failed</span>' in html
    # Each recipient with its state and, for a failure, the reason in words.
    assert '<td class="mono">u1</td>' in html
    assert '<span class="badge failed">failed</span>' in html
    assert 'No email <span class="mono hint">ERR_NO_CONTACT_POINT</span>' in html
    assert "4 recipients · page 1 of 1" in html
    assert ">Status</label>" in html
    assert ">Per page</label>" in html
    # Channels, as .../sequence-metrics counts them.
    assert '<td>in_app <span class="mono">(in-app)</span></td>' in html
    # Live while sending: the stream's URL, the extension loaded after htmx.
    assert f'sse-connect="{PAGES}/{campaign_id}/live"' in html
    assert 'sse-close="done"' in html
    assert "vendor/htmx-ext-sse.min.js" in html
    assert "live-note" not in html  # "Live" once the stream is followed
    # A sending campaign cannot be cancelled: no button, said in words.
    assert "Cancel campaign</button>" not in html
    assert "A campaign that is sending cannot be cancelled." in html


async def test_a_completed_campaign_says_completed_and_is_not_live(harness: Harness) -> None:
    campaign_id = await _sending(harness)
    await harness.campaign_events.deliver(
        _chunk(campaign_id, 0, [_sent(uid) for uid in UIDS]), _completed(campaign_id, 4, 0)
    )
    await sign_in(harness.client)

    page = await harness.client.get(f"{PAGES}/{campaign_id}")

    assert '<span class="badge completed" id="campaign-status">completed</span>' in page.text
    assert "4 of 4 recipients done (100%)" in page.text
    assert "<dt>Finished</dt><dd>2033-05-18 03:33 UTC</dd>" in page.text
    assert "sse-connect" not in page.text
    assert "htmx-ext-sse" not in page.text
    assert "hx-trigger" not in page.text.split('id="campaign-recipients"')[1].split(">")[0]


async def test_the_status_filter_and_the_paging_read_the_recipients_as_the_api(
    harness: Harness,
) -> None:
    uids = [f"u{i}" for i in range(5)]
    campaign_id = await _sending(harness, uids)
    await harness.campaign_events.deliver(
        _chunk(campaign_id, 0, [_failed("u0"), _failed("u3"), _sent("u1"), _failed("u4")])
    )
    await sign_in(harness.client)

    failed = await harness.client.get(f"{PAGES}/{campaign_id}?status=failed&perPage=2")
    api = await harness.client.get(
        f"{CAMPAIGNS}/{campaign_id}/recipients?status=failed&perPage=2", headers=AUTH
    )
    shown = [uid for uid in uids if f'<td class="mono">{uid}</td>' in failed.text]
    assert shown == sorted(r["userId"] for r in api.json()["data"])
    assert len(shown) == 2
    assert "3 recipients failed · page 1 of 2" in failed.text
    assert '<option value="failed" selected>Failed</option>' in failed.text
    assert f'href="{PAGES}/{campaign_id}?status=failed&amp;page=2&amp;perPage=2"' in failed.text

    second = await harness.client.get(f"{PAGES}/{campaign_id}?status=failed&page=2&perPage=2")
    assert "3 recipients failed · page 2 of 2" in second.text
    assert [uid for uid in uids if f'<td class="mono">{uid}</td>' in second.text] == [
        uid for uid in ("u0", "u3", "u4") if uid not in shown
    ]
    # htmx asks for the table alone; a value the page cannot use is dropped.
    part = await harness.client.get(
        f"{PAGES}/{campaign_id}?status=lost&page=x",
        headers={"hx-request": "true", "hx-target": "campaign-recipients"},
    )
    assert part.text.startswith('<div id="campaign-recipients"')
    assert "<html" not in part.text
    assert "5 recipients · page 1 of 1" in part.text
    assert 'hx-trigger="sse:progress throttle:2s, sse:done"' in part.text
    channels = await harness.client.get(
        f"{PAGES}/{campaign_id}", headers={"hx-request": "true", "hx-target": "campaign-channels"}
    )
    assert channels.text.startswith('<section id="campaign-channels"')
    cells = re.findall(r"<td>([^<]*)</td>", channels.text)
    # Step 1: sent 1 (u1), delivered 0, read 0, failed 3 (u0, u3, u4), queued 0.
    assert cells == ["1", "1", "0", "0", "3", "0"]
    nobody = await harness.client.get(f"{PAGES}/{campaign_id}?status=processing")
    assert "No recipient is processing." in nobody.text


async def test_a_draft_without_recipients_says_what_to_do(harness: Harness) -> None:
    campaign_id = await _draft(harness, [])
    await sign_in(harness.client)

    page = await harness.client.get(f"{PAGES}/{campaign_id}")

    assert '<span class="badge draft" id="campaign-status">draft</span>' in page.text
    assert "This campaign has no recipients yet." in page.text
    assert f'<a class="button" href="{PAGES}/{campaign_id}/audience">Set up the audience</a>' in (
        page.text
    )
    assert "Cancel campaign</button>" in page.text


async def test_an_unknown_or_another_apps_campaign_is_404_in_words(harness: Harness) -> None:
    await harness.store.campaigns.insert(
        Campaign(
            app_id="another-app",
            campaign_id="cmp_theirs",
            name="Theirs",
            template_id="t",
            template_version=1,
            status="sending",
            created_at=1,
            updated_at=1,
        )
    )
    await sign_in(harness.client)

    for campaign_id in ("cmp_nope", "cmp_theirs"):
        for path in ("", "/live"):
            missing = await harness.client.get(f"{PAGES}/{campaign_id}{path}")
            assert missing.status_code == 404
            assert f"This app has no campaign {campaign_id}." in missing.text
            assert "text/html" in missing.headers["content-type"]
    assert (await harness.client.get(f"{PAGES}/{'x' * 300}")).status_code == 404
    other_app = await harness.client.get("/dashboard/apps/another-app/campaigns/cmp_theirs")
    assert other_app.status_code == 404


# ---------------------------------------------------------------- live


def _never(command: SendNotification) -> SendResult | None:
    return None


@pytest_asyncio.fixture
async def watched() -> AsyncIterator[tuple[Harness, LiveHub]]:
    """The gateway on fakes with a hub the test can reach (it hands the status records
    to the hub, as the gateway's reader of clarion.status does)."""
    settings = make_settings()
    store, commands, hub = MemoryStore(), RecordingCommands(), LiveHub()
    directory, events = MemoryDirectory(), MemoryCampaignEvents()

    async def respond(command: SendNotification) -> SendResult | None:
        return _never(command)

    adapters = fake_adapters(
        settings,
        store,
        commands,
        FakeRequester(commands, respond),
        directory=directory,
        campaign_events=events,
    )
    app = compose(settings, replace(adapters, live=hub))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        yield (
            Harness(app, client, store, commands, directory=directory, campaign_events=events),
            hub,
        )


class EventStream:
    """A GET of an event stream, read as it is sent (httpx's ASGI transport reads a
    response whole: a stream still open shows nothing there)."""

    def __init__(self, app: ASGIApp, path: str, cookie: str) -> None:
        self._app = app
        self._scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # uvicorn's
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"gw"), (b"cookie", f"{SESSION_COOKIE}={cookie}".encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("gw", 80),
        }
        self._sent: asyncio.Queue[Message] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._asked = False
        self._buffer = ""
        self.start: Message | None = None
        self.ended = False
        self.task = asyncio.ensure_future(self._app(self._scope, self._receive, self._send))

    async def _receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        await self._sent.put(message)

    def leave(self) -> None:
        """The client goes away (a closed tab)."""
        self._gone.set()

    async def next(self) -> tuple[str, str]:
        """The next event's name and data: there must be one."""
        event = await self.event()
        assert event is not None, "the stream ended"
        return event

    async def event(self) -> tuple[str, str] | None:
        """The next event's name and data (comments skipped); None once it ended."""
        while True:
            if "\n\n" in self._buffer:
                raw, self._buffer = self._buffer.split("\n\n", 1)
                if raw.startswith(":"):
                    continue
                lines = raw.split("\n")
                name = next(line[7:] for line in lines if line.startswith("event: "))
                data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
                return name, data
            if self.ended:
                return None
            message = await asyncio.wait_for(self._sent.get(), DEADLINE_S)
            if message["type"] == "http.response.start":
                self.start = message
            elif message["type"] == "http.response.body":
                self._buffer += bytes(message.get("body", b"")).decode()
                self.ended = not message.get("more_body", False)


async def _until(condition: Any) -> None:
    """Wait for ``condition()`` within the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _told(harness: Harness, hub: LiveHub, *events: AnyStatusEvent) -> None:
    """Events applied to the read model, then their records handed to the hub."""
    await harness.campaign_events.deliver(*events)
    for event in events:
        hub.on_status_record(event.to_bytes())


async def test_the_live_part_is_sent_at_each_change_and_the_stream_ends_when_final(
    watched: tuple[Harness, LiveHub],
) -> None:
    harness, hub = watched
    campaign_id = await _sending(harness)
    await sign_in(harness.client)
    cookie = harness.client.cookies[SESSION_COOKIE]

    stream = EventStream(harness.app, f"{PAGES}/{campaign_id}/live", cookie)
    kind, first = await stream.next()

    assert stream.start is not None
    assert stream.start["status"] == 200
    headers = dict(stream.start["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert kind == "progress"
    assert first.startswith('<section id="campaign-live"')
    assert "0 of 4 recipients done (0%)" in first
    assert 'sse-swap="progress,done"' in first
    assert '<span class="live-note">Live</span>' in first  # the page follows the stream
    assert hub.open_watches == 1

    await _told(harness, hub, _chunk(campaign_id, 0, [_sent("u0"), _failed("u1")]))
    kind, second = await stream.next()
    assert kind == "progress"
    assert "2 of 4 recipients done (50%)" in second
    assert '<span class="badge sending" id="campaign-status">sending</span>' in second

    await _told(
        harness,
        hub,
        _chunk(campaign_id, 1, [_sent("u2"), _sent("u3")]),
        _completed(campaign_id, 3, 1),
    )
    kind, done = await stream.next()
    assert kind == "done"
    assert "4 of 4 recipients done (100%)" in done
    assert 'id="campaign-status">partially failed</span>' in done
    assert "sse-swap" not in done
    assert "live-note" not in done
    assert await stream.event() is None
    await asyncio.wait_for(stream.task, DEADLINE_S)
    assert hub.open_watches == 0


async def test_a_completed_campaigns_stream_says_completed_once_and_ends(
    watched: tuple[Harness, LiveHub],
) -> None:
    harness, _ = watched
    campaign_id = await _sending(harness)
    await harness.campaign_events.deliver(
        _chunk(campaign_id, 0, [_sent(uid) for uid in UIDS]), _completed(campaign_id, 4, 0)
    )
    await sign_in(harness.client)

    response = await harness.client.get(f"{PAGES}/{campaign_id}/live")

    assert response.status_code == 200
    assert response.text.startswith("event: done\nid: 1\ndata: <section")
    assert response.text.count("event: ") == 1
    assert 'id="campaign-status">completed</span>' in response.text


async def test_the_stream_stops_when_the_client_goes(watched: tuple[Harness, LiveHub]) -> None:
    harness, hub = watched
    campaign_id = await _sending(harness)
    await sign_in(harness.client)
    stream = EventStream(
        harness.app, f"{PAGES}/{campaign_id}/live", harness.client.cookies[SESSION_COOKIE]
    )
    await stream.next()
    assert hub.open_watches == 1

    stream.leave()

    await asyncio.wait_for(stream.task, DEADLINE_S)
    await _until(lambda: hub.open_watches == 0)


async def test_the_stream_needs_a_signed_in_member(harness: Harness) -> None:
    campaign_id = await _sending(harness)
    anonymous = await harness.client.get(f"{PAGES}/{campaign_id}/live")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/dashboard/login?next=")


# ---------------------------------------------------------------- cancel


async def _scheduled(harness: Harness) -> str:
    campaign_id = await _draft(harness)
    scheduled = await harness.client.post(
        f"{CAMPAIGNS}/{campaign_id}/schedule", json={"scheduledAt": 4_000_000_000}, headers=AUTH
    )
    assert scheduled.status_code == 200, scheduled.text
    return campaign_id


async def _status(harness: Harness, campaign_id: str) -> str:
    got = await harness.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=AUTH)
    status: str = got.json()["data"]["status"]
    return status


async def test_an_editor_cancels_a_scheduled_campaign_and_it_is_audited(
    harness: Harness,
) -> None:
    campaign_id = await _scheduled(harness)
    await _operator(harness, "ed@example.com", "editor")
    browser = await sign_in(harness.client, "ed@example.com", "a long passphrase")
    page = await harness.client.get(f"{PAGES}/{campaign_id}")
    assert "<dt>Scheduled for</dt><dd>2096-10-02 07:06 UTC</dd>" in page.text
    assert 'data-confirm="Cancel the campaign “Spring sale”?' in page.text
    assert "Cancel campaign</button>" in page.text

    cancelled = await browser.post(f"{PAGES}/{campaign_id}/cancel", {})

    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"{PAGES}/{campaign_id}"
    assert await _status(harness, campaign_id) == "cancelled"
    [entry] = [e for e in harness.store.audit.entries if e.action == "campaign.cancel"]
    assert (entry.app_id, entry.actor, entry.target) == (DEV_APP, "ed@example.com", campaign_id)
    assert entry.detail == {"name": "Spring sale", "from": "scheduled"}
    after = await harness.client.get(f"{PAGES}/{campaign_id}")
    assert '<span class="badge cancelled" id="campaign-status">cancelled</span>' in after.text
    assert "Cancel campaign</button>" not in after.text
    assert "sse-connect" not in after.text


async def test_a_campaign_that_is_sending_is_not_cancelled_and_says_why(
    harness: Harness,
) -> None:
    campaign_id = await _sending(harness)
    browser = await sign_in(harness.client)

    refused = await browser.post(f"{PAGES}/{campaign_id}/cancel", {})

    assert refused.status_code == 409
    assert (
        "This campaign is sending: only a draft or a scheduled campaign can be cancelled."
        in refused.text
    )
    assert await _status(harness, campaign_id) == "sending"
    assert not [e for e in harness.store.audit.entries if e.action == "campaign.cancel"]
    missing = await browser.post(f"{PAGES}/cmp_nope/cancel", {})
    assert missing.status_code == 404


async def test_a_viewer_cannot_cancel(harness: Harness) -> None:
    campaign_id = await _scheduled(harness)
    await _operator(harness, "vi@example.com", "viewer")
    browser = await sign_in(harness.client, "vi@example.com", "a long passphrase")
    page = await harness.client.get(f"{PAGES}/{campaign_id}")
    assert page.status_code == 200
    assert "Cancel campaign</button>" not in page.text
    assert "Viewers cannot change campaigns." in page.text

    refused = await browser.post(f"{PAGES}/{campaign_id}/cancel", {})

    assert refused.status_code == 403
    assert "viewers can read campaigns but not change them" in refused.text
    assert await _status(harness, campaign_id) == "scheduled"
    assert not [e for e in harness.store.audit.entries if e.action == "campaign.cancel"]


async def test_cancel_needs_the_forms_token_and_origin(harness: Harness) -> None:
    campaign_id = await _scheduled(harness)
    browser = await sign_in(harness.client)
    url = f"{PAGES}/{campaign_id}/cancel"

    no_token = await harness.client.post(url, headers={"origin": browser.origin})
    wrong_token = await harness.client.post(
        url, data={"csrf_token": "forged"}, headers={"origin": browser.origin}
    )
    elsewhere = await browser.post(url, {}, origin="https://evil.example")

    for refused in (no_token, wrong_token, elsewhere):
        assert refused.status_code == 403
        assert "Request refused" in refused.text
    assert await _status(harness, campaign_id) == "scheduled"
    assert not [e for e in harness.store.audit.entries if e.action == "campaign.cancel"]
