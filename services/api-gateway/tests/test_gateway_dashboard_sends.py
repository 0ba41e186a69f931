"""The Sends page and a send's page: the dispatcher read as ``GET
/v3/campaigns/notifications...`` reads it (listing, filters, paging, receivers, their
CSV), 404s in words, and a running batch's progress as HTML over server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest_asyncio
from fastapi import FastAPI
from starlette.types import Message

from clarion_gateway.app import Adapters, compose
from clarion_gateway.testing import (
    ADMIN,
    DEV_APP,
    FakeRequester,
    Harness,
    MemoryStore,
    RecordingCommands,
    fake_adapters,
    make_settings,
    sign_in,
)
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import SendNotification

SENDS = f"/dashboard/apps/{DEV_APP}/sends"
INTERNAL = f"/internal/apps/{DEV_APP}"
DAY = 1_704_067_200  # 2024-01-01T00:00:00Z
RECEIVERS = 12


def _send(send_id: str, kind: str, status: str, created: int, **more: Any) -> dict[str, Any]:
    sent, failed = (11, 1) if status == "partially_failed" else (0, 0)
    send = {
        "id": send_id,
        "type": kind,
        "mode": "direct",
        "templateId": "order_update",
        "templateVersion": 1,
        "channels": ["in_app"],
        "status": status,
        "total": RECEIVERS,
        "sent": sent,
        "delivered": 0 if kind == "batch" else None,
        "failed": failed,
        "pending": RECEIVERS - sent - failed,
        "createdAt": created,
        "completedAt": created + 5 if status == "partially_failed" else None,
    }
    return {**send, **more}


def _receiver(uid: str, status: str) -> dict[str, Any]:
    if status == "pending":
        return {
            "uid": uid,
            "status": "pending",
            "channels": [],
            "createdAt": None,
            "updatedAt": None,
        }
    channel: dict[str, Any] = {"channelType": "in_app", "channelId": "in-app", "status": status}
    receiver: dict[str, Any] = {"uid": uid, "status": status}
    if status == "failed":
        failure = {"code": "ERR_USER_NOT_FOUND", "message": f"User {uid} does not exist."}
        channel.update(failure)
        receiver.update(failure)
    return {**receiver, "channels": [channel], "createdAt": DAY, "updatedAt": DAY + 60}


def _paged(items: list[dict[str, Any]], total: int, page: int, per_page: int) -> dict[str, Any]:
    pagination = {
        "total": total,
        "count": len(items),
        "per_page": per_page,
        "current_page": page,
        "total_pages": max(1, -(-total // per_page)),
    }
    return {"data": items, "meta": {"pagination": pagination}}


def _not_found() -> httpx.Response:
    return httpx.Response(404, json={"error": {"code": "ERR_NOT_FOUND"}})


@dataclass
class Dispatcher:
    """The dispatcher's sends, batches and notifications, as its internal API answers."""

    batch_status: str = "partially_failed"
    listed_total: int = 3
    requests: list[httpx.Request] = field(default_factory=list)

    def sends(self) -> list[dict[str, Any]]:
        return [
            _send("bat_1", "batch", self.batch_status, DAY + 200),
            _send("cmp_1", "batch", "completed", DAY + 100, mode="campaign"),
            _send("ntf_1", "realtime", "completed", DAY, total=1, sent=1, pending=0),
        ]

    def receivers(self) -> list[dict[str, Any]]:
        done = self.batch_status != "dispatching"
        sent = [_receiver(f"user-{n:02d}", "sent" if done else "pending") for n in range(11)]
        return [*sent, _receiver("ghost", "failed" if done else "pending")]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, query = request.url.path, parse_qs(request.url.query.decode())
        page, per_page = int(query.get("page", ["1"])[0]), int(query.get("perPage", ["20"])[0])
        if path == f"{INTERNAL}/sends":
            if "since" in query and query["since"] == query.get("until"):
                # A send's page looks its entry up by its creation second.
                second = int(query["since"][0])
                found = [s for s in self.sends() if s["createdAt"] == second]
                return httpx.Response(200, json=_paged(found, len(found), 1, per_page))
            return httpx.Response(200, json=_paged(self.sends(), self.listed_total, page, per_page))
        if path == f"{INTERNAL}/batches/bat_1":
            batch = {k: v for k, v in self.sends()[0].items() if k in _BATCH_FIELDS}
            return httpx.Response(200, json={"data": {**batch, "batchId": "bat_1"}})
        if path == f"{INTERNAL}/notifications/ntf_1":
            return httpx.Response(200, json={"data": _notification()})
        if path == f"{INTERNAL}/sends/bat_1/receivers":
            wanted = query.get("status", [None])[0]
            found = [r for r in self.receivers() if wanted in (None, r["status"])]
            start = (page - 1) * per_page
            return httpx.Response(
                200, json=_paged(found[start : start + per_page], len(found), page, per_page)
            )
        if path == f"{INTERNAL}/sends/bat_1/receivers.csv":
            rows = "uid,channel_type\r\nghost,in_app\r\n"
            return httpx.Response(200, text=rows, headers={"content-type": "text/csv"})
        if path == f"{INTERNAL}/sends/ntf_1/receivers":
            return httpx.Response(200, json=_paged([_receiver("ann", "sent")], 1, 1, per_page))
        return _not_found()


_BATCH_FIELDS = {"status", "total", "sent", "delivered", "failed", "pending", "createdAt"}
_BATCH_FIELDS |= {"completedAt"}


def _notification() -> dict[str, Any]:
    channel = {"channelType": "in_app", "channelId": "in-app", "status": "sent"}
    return {
        "notificationId": "ntf_1",
        "mode": "realtime",
        "templateId": "order_update",
        "templateVersion": 1,
        "tag": None,
        "createdAt": DAY,
        "receivers": [{"uid": "ann", "channels": [channel]}],
    }


def _asked(harness: Harness, path: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r.url.query.decode()) for r in harness.peer_requests if r.url.path == path]


async def test_the_sends_page_lists_every_send_newest_first_with_its_counts(
    harness: Harness,
) -> None:
    await harness.create_channel()
    await harness.create_template()  # "Order update", id order_update
    harness.peer = Dispatcher()
    await sign_in(harness.client)

    page = await harness.client.get(SENDS)

    assert page.status_code == 200
    html = page.text
    assert _asked(harness, f"{INTERNAL}/sends") == [{"page": ["1"], "perPage": ["20"]}]
    assert html.index(">bat_1</a>") < html.index(">cmp_1</a>") < html.index(">ntf_1</a>")
    assert f'<a href="{SENDS}/bat_1">bat_1</a>' in html
    assert '<span class="badge partially_failed">partially failed</span>' in html
    assert "Order update" in html  # the template's name, not only its id
    assert '<span class="tag">campaign</span>' in html
    assert "3 sends · page 1 of 1" in html
    for label in ("Template", "Kind", "Status", "Created after", "Created before", "Per page"):
        assert f">{label}</label>" in html
    assert "apikey" not in html.lower()


async def test_the_sends_page_passes_its_filters_and_paging_to_the_listing(
    harness: Harness,
) -> None:
    harness.peer = Dispatcher(listed_total=45)
    await sign_in(harness.client)
    query = (
        "kind=batch&status=partially_failed&templateId=order_update&createdAfter=2024-01-01"
        "&createdBefore=2024-01-31&page=2&perPage=20"
    )

    page = await harness.client.get(f"{SENDS}?{query}")

    assert _asked(harness, f"{INTERNAL}/sends") == [
        {
            "page": ["2"],
            "perPage": ["20"],
            "type": ["batch"],
            "status": ["partially_failed"],
            "templateId": ["order_update"],
            "since": [str(DAY)],
            "until": ["1706745599"],  # 2024-01-31T23:59:59Z: the day included
        }
    ]
    html = page.text
    assert '<option value="batch" selected>Batch</option>' in html
    assert '<option value="partially_failed" selected>Partially failed</option>' in html
    # A template the app no longer lists stays chosen.
    assert '<option value="order_update" selected>order_update</option>' in html
    assert "45 sends · page 2 of 3" in html
    assert f'href="{SENDS}?kind=batch&amp;status=partially_failed' in html
    assert "page=1" in html
    assert "page=3" in html


async def test_empty_states_and_problems_are_said_in_words(harness: Harness) -> None:
    harness.peer = lambda request: httpx.Response(200, json=_paged([], 0, 1, 20))
    await sign_in(harness.client)

    empty = await harness.client.get(SENDS)
    filtered = await harness.client.get(f"{SENDS}?status=failed&createdAfter=soon")

    assert "This app has sent nothing yet." in empty.text
    assert '"Send notification"' in empty.text
    assert "POST /v3/campaigns/notifications/messages" in empty.text
    assert "No send matches these filters." in filtered.text
    assert "Created after must be a date (YYYY-MM-DD)." in filtered.text
    assert "since" not in _asked(harness, f"{INTERNAL}/sends")[-1]
    harness.peer = lambda request: httpx.Response(502, text="down")
    down = await harness.client.get(SENDS)
    assert down.status_code == 200
    assert "The dispatcher answered with an error (502). Try again." in down.text


async def test_a_batch_shows_its_summary_and_its_receivers_with_reasons(
    harness: Harness,
) -> None:
    harness.peer = Dispatcher()
    await sign_in(harness.client)

    page = await harness.client.get(f"{SENDS}/bat_1")

    assert page.status_code == 200
    html = page.text
    assert '<h1>Batch <span class="mono lead">bat_1</span></h1>' in html
    assert "12 of 12 receivers final" in html
    assert "<dt>Failed</dt><dd>1</dd>" in html
    assert "<dt>Sent</dt><dd>11</dd>" in html
    assert html.count("<tr>") == 1 + RECEIVERS  # the header's row and one per receiver
    assert "User ghost does not exist." in html
    assert '<span class="mono code">ERR_USER_NOT_FOUND</span>' in html
    assert f'href="/dashboard/apps/{DEV_APP}/users/user-00"' in html
    assert f'href="{SENDS}/bat_1/receivers.csv" download>Download CSV</a>' in html
    assert ">Status</label>" in html
    assert "sse-connect" not in html  # final: nothing to watch
    assert "htmx-ext-sse" not in html


async def test_a_running_batch_is_watched_over_server_sent_events(harness: Harness) -> None:
    harness.peer = Dispatcher(batch_status="dispatching")
    await sign_in(harness.client)

    html = (await harness.client.get(f"{SENDS}/bat_1")).text

    assert f'sse-connect="{SENDS}/bat_1/events" sse-close="done"' in html
    assert 'sse-swap="progress,done"' in html
    assert 'hx-trigger="sse:progress, sse:done"' in html
    assert "vendor/htmx-ext-sse.min.js" in html
    assert "not dispatched yet" in html
    assert "0 of 12 receivers final" in html


async def test_a_realtime_send_is_found_through_its_states(harness: Harness) -> None:
    dispatcher = Dispatcher()
    harness.peer = dispatcher
    await sign_in(harness.client)

    page = await harness.client.get(f"{SENDS}/ntf_1")

    assert page.status_code == 200
    assert "Realtime send" in page.text
    assert "1 of 1 receiver final" in page.text
    assert "<dt>Delivered</dt><dd>—</dd>" in page.text
    # Without an entry in the listing, the states alone say what it is.
    harness.peer = lambda request: (
        httpx.Response(200, json=_paged([], 0, 1, 100))
        if request.url.path == f"{INTERNAL}/sends"
        else dispatcher(request)
    )
    fallback = await harness.client.get(f"{SENDS}/ntf_1")
    assert fallback.status_code == 200
    assert '<span class="badge completed">completed</span>' in fallback.text


async def test_the_receivers_status_filter_and_paging(harness: Harness) -> None:
    harness.peer = Dispatcher()
    await sign_in(harness.client)

    failed = await harness.client.get(f"{SENDS}/bat_1?status=failed")
    second = await harness.client.get(
        f"{SENDS}/bat_1?page=2&perPage=10",
        headers={"hx-request": "true", "hx-target": "send-receivers"},
    )

    asked = _asked(harness, f"{INTERNAL}/sends/bat_1/receivers")
    assert asked[0] == {"status": ["failed"], "page": ["1"], "perPage": ["20"]}
    assert '<option value="failed" selected>Failed</option>' in failed.text
    assert failed.text.count("<tr>") == 2
    assert f'href="{SENDS}/bat_1/receivers.csv?status=failed" download>' in failed.text
    assert asked[1] == {"page": ["2"], "perPage": ["10"]}
    assert "<html" not in second.text  # htmx asked for the receivers alone
    assert second.text.lstrip().startswith('<div id="send-receivers"')
    assert "12 receivers · page 2 of 2" in second.text
    assert f'hx-get="{SENDS}/bat_1?page=1&amp;perPage=10"' in second.text


async def test_download_csv_streams_the_dispatchers_export(harness: Harness) -> None:
    harness.peer = Dispatcher()
    await sign_in(harness.client)

    exported = await harness.client.get(f"{SENDS}/bat_1/receivers.csv?status=failed&page=3")

    assert exported.status_code == 200
    assert exported.text == "uid,channel_type\r\nghost,in_app\r\n"
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="bat_1.csv"'
    [request] = [r for r in harness.peer_requests if r.url.path.endswith(".csv")]
    assert parse_qs(request.url.query.decode()) == {"status": ["failed"]}  # every page
    assert "apikey" not in request.headers


async def test_an_unknown_or_another_apps_send_is_404_in_words(harness: Harness) -> None:
    harness.peer = Dispatcher()
    await sign_in(harness.client)

    for path in ("bat_x", "bat_x/receivers.csv", "bat_x/events"):
        missing = await harness.client.get(f"{SENDS}/{path}")
        assert missing.status_code == 404, path
        assert "This app has no send bat_x, or it is not yours to see." in missing.text
    partial = await harness.client.get(
        f"{SENDS}/bat_x", headers={"hx-request": "true", "hx-target": "send-receivers"}
    )
    assert partial.status_code == 404
    other_app = await harness.client.get("/dashboard/apps/another-app/sends/bat_1")
    assert other_app.status_code == 404
    assert not [r for r in harness.peer_requests if "another-app" in r.url.path]
    harness.peer = lambda request: httpx.Response(502, text="down")
    down = await harness.client.get(f"{SENDS}/bat_1")
    assert down.status_code == 503
    assert "The dispatcher did not answer" in down.text


async def test_a_viewer_reads_sends(harness: Harness) -> None:
    harness.peer = Dispatcher()
    body = {
        "email": "vi@example.com",
        "password": "a long passphrase",
        "roles": {DEV_APP: "viewer"},
    }
    created = await harness.client.post("/admin/operators", json=body, headers=ADMIN)
    assert created.status_code == 201
    await sign_in(harness.client, "vi@example.com", "a long passphrase")

    assert (await harness.client.get(SENDS)).status_code == 200
    assert (await harness.client.get(f"{SENDS}/bat_1")).status_code == 200
    assert (await harness.client.get(f"{SENDS}/bat_1/receivers.csv")).status_code == 200
    assert (await harness.client.get(f"{SENDS}/bat_1/events")).status_code == 200


async def test_signed_out_the_pages_lead_to_the_sign_in(harness: Harness) -> None:
    answer = await harness.client.get(f"{SENDS}/bat_1?status=failed")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dashboard/login?next=")
    assert harness.peer_requests == []


async def test_a_final_batchs_stream_is_one_done_fragment(harness: Harness) -> None:
    harness.peer = Dispatcher()
    await sign_in(harness.client)

    stream = await harness.client.get(f"{SENDS}/bat_1/events")

    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    event, number, *data = stream.text.strip().split("\n")
    assert (event, number) == ("event: done", "id: 1")
    html = "\n".join(line.removeprefix("data: ") for line in data)
    assert '<span class="badge partially_failed">partially failed</span>' in html
    assert "<dt>Failed</dt><dd>1</dd>" in html
    assert "<html" not in html


# ---------------------------------------------------------------- a stream, event by event


@dataclass
class Live:
    app: FastAPI
    adapters: Adapters
    dispatcher: Dispatcher
    cookie: str


@pytest_asyncio.fixture
async def live() -> AsyncIterator[Live]:
    """The gateway on fakes, held here (its hub, to wake the stream), with a session:
    httpx's ASGI transport reads a response whole, so the stream is read over ASGI."""
    settings = make_settings()
    store, commands, dispatcher = MemoryStore(), RecordingCommands(), Dispatcher("dispatching")

    async def no_reply(command: SendNotification) -> SendResult | None:
        return None

    adapters = fake_adapters(
        settings,
        store,
        commands,
        FakeRequester(commands, no_reply),
        httpx.MockTransport(dispatcher),
    )
    app = compose(settings, adapters)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        await sign_in(client)
        yield Live(
            app, adapters, dispatcher, f"clarion_session={client.cookies['clarion_session']}"
        )


class Exchange:
    """One GET over ASGI: what the app sends, as it sends it; ``leave()`` disconnects."""

    def __init__(self, live: Live, path: str) -> None:
        self.sent: asyncio.Queue[Message] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._asked = False
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"gw"), (b"cookie", live.cookie.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("gw", 80),
        }
        self.task = asyncio.ensure_future(live.app(scope, self._receive, self.sent.put))

    async def _receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def next(self) -> Message:
        return await asyncio.wait_for(self.sent.get(), 5)

    async def event(self) -> str:
        while True:
            message = await self.next()
            body = bytes(message.get("body", b"")).decode()
            if not body.startswith(":"):  # past heartbeats
                return body

    def leave(self) -> None:
        self._gone.set()


async def test_a_running_batch_streams_fragments_until_final(live: Live) -> None:
    exchange = Exchange(live, f"{SENDS}/bat_1/events")
    start = await exchange.next()
    assert start["status"] == 200
    first = await exchange.event()
    assert first.startswith("event: progress\nid: 1\n")
    assert "0 of 12 receivers final" in first
    assert "dispatching" in first

    live.dispatcher.batch_status = "partially_failed"
    live.adapters.live.notify((DEV_APP, "bat_1"))

    last = await exchange.event()
    assert last.startswith("event: done\nid: 2\n")
    assert "12 of 12 receivers final" in last
    end = await exchange.next()
    assert (end["body"], end["more_body"]) == (b"", False)
    await asyncio.wait_for(exchange.task, 5)
    assert live.adapters.live.open_watches == 0


async def test_the_stream_stops_when_the_browser_leaves(live: Live) -> None:
    exchange = Exchange(live, f"{SENDS}/bat_1/events")
    assert (await exchange.next())["status"] == 200
    assert (await exchange.event()).startswith("event: progress")
    assert live.adapters.live.open_watches == 1

    exchange.leave()

    await asyncio.wait_for(exchange.task, 5)
    assert live.adapters.live.open_watches == 0
