"""The live feed over real HTTP: server-sent events through the gateway, from the
dispatcher that holds the stream, for items any dispatcher writes.

A stream is live once the dispatcher counts it (its ``clarion_feed_streams_open``
gauge); the tests wait for that before sending, and check that closed streams leave
nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from clarion_devtools.helpers import random_ref, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STREAM = "/v3/campaigns/notification-feed/stream"
SEND = "/v3/campaigns/notifications/messages"
EVENT_DEADLINE_S = 30.0  # generous: how fast goes to make bench, not here


class Streams:
    """The dispatcher's count of the live streams it holds."""

    def __init__(self, dispatcher_url: str) -> None:
        self.metrics_url = f"{dispatcher_url}/metrics"

    async def count(self) -> float:
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(self.metrics_url)).text
        found = re.search(r"^clarion_feed_streams_open (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    async def above(self, count: float) -> bool:
        return await self.count() > count

    async def at_most(self, count: float) -> bool:
        return await self.count() <= count


@pytest.fixture
def streams(dispatcher_url: str) -> Streams:
    return Streams(dispatcher_url)


async def tenant(client: httpx.AsyncClient, admin_token: str, users: list[str]) -> dict[str, str]:
    """An app with ``users``, an in-app channel and an approved template."""
    created = await client.post(
        "/admin/apps",
        json={"name": random_ref("app")},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    auth = {"apikey": created.json()["data"]["apiKey"]}
    imported = await client.post(
        "/v3/users/import", json={"users": [{"uid": u, "name": u} for u in users]}, headers=auth
    )
    assert imported.status_code == 200, imported.text
    channel = await client.post(
        "/v3/campaigns/channels",
        json={"name": "In-app", "type": "in_app", "enabled": True},
        headers=auth,
    )
    assert channel.status_code == 201, channel.text
    template = await client.post(
        "/v3/campaigns/templates",
        json={
            "name": "Live",
            "status": "approved",
            "channels": [
                {"channelType": "in_app", "content": {"title": "Hi {{who}}", "body": "Live"}}
            ],
            "variableSchema": [{"key": "who", "type": "string", "required": True}],
        },
        headers=auth,
    )
    assert template.status_code == 201, template.text
    return {**auth, "template": template.json()["data"]["templateId"]}


@asynccontextmanager
async def stream_of(
    client: httpx.AsyncClient, auth: dict[str, str], uid: str
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    headers = {"apikey": auth["apikey"], "onbehalfof": uid}
    async with aconnect_sse(client, "GET", STREAM, headers=headers, timeout=None) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        yield source.aiter_sse()


async def next_item(events: AsyncIterator[ServerSentEvent]) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in events:
            if event.event == "feed_item":
                item: dict[str, Any] = json.loads(event.data)
                return item
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(first(), EVENT_DEADLINE_S)


async def test_an_item_sent_after_connecting_arrives_on_the_stream(
    client: httpx.AsyncClient, admin_token: str, streams: Streams
) -> None:
    uid = random_ref("live")
    auth = await tenant(client, admin_token, [uid])
    before = await streams.count()
    async with stream_of(client, auth, uid) as events:
        await wait_until(lambda: streams.above(before), what="the stream to be live")
        body = {
            "templateId": auth["template"],
            "receivers": [uid],
            "variables": {uid: {"who": uid}},
        }
        sent = await client.post(SEND, json=body, headers={"apikey": auth["apikey"]})
        assert sent.status_code == 200, sent.text
        item = await next_item(events)
        assert item["receiver"] == uid
        assert item["notificationId"] == sent.json()["data"]["notificationId"]
        assert item["content"] == {"title": f"Hi {uid}", "body": "Live"}

        one = await client.get(
            f"/v3/campaigns/notification-feed/{item['id']}",
            headers={"apikey": auth["apikey"], "onbehalfof": uid},
        )
        assert one.status_code == 200, one.text
        assert one.json()["data"]["id"] == item["id"]
    await wait_until(lambda: streams.at_most(before), what="the closed stream to be freed")


async def test_two_hundred_streams_each_get_their_own_items_only(
    client: httpx.AsyncClient, admin_token: str, streams: Streams
) -> None:
    uids = [random_ref(f"s{n:03d}") for n in range(200)]
    auth = await tenant(client, admin_token, uids)
    before = await streams.count()
    async with AsyncExitStack() as stack:
        # A client of its own: httpx pools at most 100 connections by default.
        listener = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=str(client.base_url), limits=httpx.Limits(max_connections=None)
            )
        )
        opened = await asyncio.gather(
            *(stack.enter_async_context(stream_of(listener, auth, u)) for u in uids)
        )
        await wait_until(lambda: streams.above(before + len(uids) - 1), what="200 live streams")
        body = {
            "templateId": auth["template"],
            "receivers": uids,
            "variables": {u: {"who": u} for u in uids},
        }
        sent = await client.post(SEND, json=body, headers={"apikey": auth["apikey"]})
        assert sent.status_code == 200, sent.text
        assert sent.json()["data"]["mode"] == "batch"
        items = await asyncio.gather(*(next_item(events) for events in opened))
        assert [item["receiver"] for item in items] == uids
        assert [item["content"]["title"] for item in items] == [f"Hi {u}" for u in uids]
    await wait_until(lambda: streams.at_most(before), what="200 closed streams to be freed")
