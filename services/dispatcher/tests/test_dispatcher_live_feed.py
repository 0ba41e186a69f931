"""Live feeds: the hub that routes new items to their owner's streams, the status-topic
records it reads, the event stream a client gets, and ``GET`` of one item."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.fanout import service as fanout
from clarion_dispatcher.feed.live import FeedHub
from clarion_dispatcher.feed.routes import live_events
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    InMemoryFeed,
    InMemoryNotifications,
    RecordingPublisher,
    profile,
    send_command,
)
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.status import FeedItemSent, NotificationCreated
from clarion_shared.http import internal_headers
from clarion_shared.topics import Topics

APP = "app1"
TOPICS = Topics("unit.")


def item(item_id: str, receiver: str) -> JsonObject:
    return {"id": item_id, "receiver": receiver, "content": {"title": "Hi"}}


async def test_an_item_reaches_the_streams_of_its_owner_only() -> None:
    hub = FeedHub()
    async with hub.subscribe("app1:alice") as alice, hub.subscribe("app1:bob") as bob:
        async with hub.subscribe("app1:alice") as alice_again:
            assert hub.open_streams == 3
            hub.publish("app1:alice", {"id": "i1"})
            hub.publish("app2:alice", {"id": "other-app"})
            assert alice.get_nowait() == alice_again.get_nowait() == {"id": "i1"}
            assert alice.empty()
            assert bob.empty()
        assert hub.open_streams == 2
    assert hub.open_streams == 0
    hub.publish("app1:alice", {"id": "nobody listens"})  # no stream: nothing kept


class Source:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    async def resume_at_end(self) -> None:
        self.calls.append("resume")


async def test_the_source_is_read_only_while_a_stream_is_open() -> None:
    hub, source = FeedHub(), Source()
    hub.attach(source)
    async with hub.subscribe("a:u1"), hub.subscribe("a:u2"):
        assert source.calls == ["resume"]
    assert source.calls == ["resume", "pause"]
    hub.on_status_record(b'{"type": "feed_item_sent"}')  # nobody listens: not even parsed
    async with hub.subscribe("a:u1"):
        assert source.calls == ["resume", "pause", "resume"]
    assert source.calls == ["resume", "pause", "resume", "pause"]


async def test_a_client_that_stops_reading_loses_its_oldest_items_only() -> None:
    hub = FeedHub(queue_size=2)
    async with hub.subscribe("a:u") as queue:
        for n in range(3):
            hub.publish("a:u", {"id": f"i{n}"})
        assert [queue.get_nowait()["id"] for _ in range(2)] == ["i1", "i2"]


async def test_the_hub_reads_new_feed_items_from_status_records() -> None:
    hub = FeedHub()
    sent = FeedItemSent(
        event_id="e1",
        app_id=APP,
        send_id="ntf1",
        mode="realtime",
        occurred_at=1,
        feed_item=item("i1", "alice"),
    )
    created = NotificationCreated(
        event_id="e2",
        app_id=APP,
        send_id="ntf1",
        mode="realtime",
        occurred_at=1,
        notification_id="n1",
        uid="alice",
        channel_type="in_app",
        channel_id="in-app",
    )
    async with hub.subscribe(f"{APP}:alice") as alice:
        hub.on_status_record(created.to_bytes())
        hub.on_status_record(b'{"type": "feed_item_sent", "broken": true}')
        hub.on_status_record(sent.to_bytes())
        assert alice.get_nowait() == item("i1", "alice")
        assert alice.empty()


async def test_a_stream_says_it_is_live_then_sends_each_item_and_keeps_alive() -> None:
    hub = FeedHub()
    events = live_events(hub, "a:u", heartbeat_s=0.05)
    assert await anext(events) == ": connected\n\n"
    assert hub.open_streams == 1
    hub.publish("a:u", item("i1", "u"))
    first = await anext(events)
    assert first.startswith("event: feed_item\nid: i1\ndata: ")
    assert json.loads(first.split("data: ", 1)[1]) == item("i1", "u")
    assert await anext(events) == ": keep-alive\n\n"
    await events.aclose()  # the client went away
    assert hub.open_streams == 0


async def test_stream_clients_do_not_wait_on_each_other() -> None:
    hub = FeedHub()
    streams = [live_events(hub, f"a:u{n}", heartbeat_s=30) for n in range(200)]
    await asyncio.gather(*(anext(s) for s in streams))
    assert hub.open_streams == 200
    for n in range(200):
        hub.publish(f"a:u{n}", item(f"i{n}", f"u{n}"))
    received = await asyncio.gather(*(anext(s) for s in streams))
    assert [json.loads(r.split("data: ", 1)[1])["id"] for r in received] == [
        f"i{n}" for n in range(200)
    ]
    await asyncio.gather(*(s.aclose() for s in streams))
    assert hub.open_streams == 0


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(topic_prefix=TOPICS.prefix, group_id="dispatcher-test")
    directory, feed = FakeDirectory(), InMemoryFeed()
    directory.add(APP, profile("alice"))
    notifications, publisher = InMemoryNotifications(), RecordingPublisher()
    await fanout.dispatch_chunk(
        send_command(APP, "ntf1", ["alice"]),
        directory=directory,
        notifications=notifications,
        feed=feed,
        batches=InMemoryBatches(),
        publisher=publisher,
        topics=TOPICS,
    )
    adapters = replace(
        Adapters.connect(settings),
        directory=directory,
        notifications=notifications,
        feed=feed,
        publisher=publisher,
    )
    transport = httpx.ASGITransport(app=compose(settings, adapters))
    headers = internal_headers(settings.internal_token)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dispatcher", headers=headers
    ) as http:
        yield http


async def test_one_feed_item_is_read_by_its_owner_only(client: httpx.AsyncClient) -> None:
    listed = (await client.get(f"/internal/apps/{APP}/feed/alice")).json()["data"]
    item_id = listed[0]["id"]
    one = await client.get(f"/internal/apps/{APP}/feed/alice/{item_id}")
    assert one.status_code == 200
    assert one.json() == {"data": listed[0]}
    for path in (f"/internal/apps/{APP}/feed/bob/{item_id}", f"/internal/apps/{APP}/feed/alice/x"):
        missing = await client.get(path)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ERR_NOT_FOUND"
