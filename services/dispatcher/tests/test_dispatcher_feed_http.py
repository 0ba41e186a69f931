"""The feed's internal HTTP API: cursor pages, CometChat's filters, engagements, and the
400s of parameters that do not go together. In-memory adapters, nothing started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.fanout import domain as fanout
from clarion_dispatcher.feed.models import FeedItem
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    InMemoryFeed,
    InMemoryNotifications,
    RecordingAnnouncer,
    RecordingPublisher,
    profile,
    send_command,
    template,
)
from clarion_shared.contracts.status import FeedItemEngaged
from clarion_shared.http import internal_headers
from clarion_shared.topics import Topics

APP = "app1"
SETTINGS = Settings(topic_prefix="unit.", group_id="dispatcher-test")
STATUS = Topics(SETTINGS.topic_prefix).status
FEED = f"/internal/apps/{APP}/feed/alice"
NOW = 1_700_000_000


def item(n: int, tag: str | None = None, category: str | None = None) -> FeedItem:
    snapshot = template(("in_app",)).model_copy(update={"template_category": category})
    command = send_command(APP, f"ntf{n}", ["alice"], tag=tag, template_snapshot=snapshot)
    (made,) = fanout.plan_chunk(command, {"alice": profile("alice")}, NOW + n).feed_items
    return made


Api = tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher]


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    feed, publisher = InMemoryFeed(), RecordingPublisher()
    await feed.add_many(
        [item(0, "promo", "Marketing"), item(1, "news"), item(2, "promo"), item(3), item(4)]
    )
    adapters = replace(
        Adapters.connect(SETTINGS),
        directory=FakeDirectory(),
        notifications=InMemoryNotifications(),
        feed=feed,
        batches=InMemoryBatches(),
        announcer=RecordingAnnouncer(),
        publisher=publisher,
    )
    transport = httpx.ASGITransport(app=compose(SETTINGS, adapters))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://dispatcher",
        headers=internal_headers(SETTINGS.internal_token),
    ) as client:
        yield client, feed, publisher


async def test_cursor_pages_walk_the_feed_newest_first(api: Api) -> None:
    client, _, _ = api
    first = await client.get(FEED, params={"limit": 2})
    assert first.status_code == 200
    body = first.json()
    assert [i["notificationId"] for i in body["data"]] == ["ntf4", "ntf3"]
    assert body["meta"] == {
        "cursor": {"hasMore": True, "next": {"sentAt": NOW + 3, "id": body["data"][1]["id"]}}
    }
    second = (await client.get(FEED, params={"limit": 2, **body["meta"]["cursor"]["next"]})).json()
    third = (await client.get(FEED, params={"limit": 2, **second["meta"]["cursor"]["next"]})).json()
    assert [i["notificationId"] for i in second["data"]] == ["ntf2", "ntf1"]
    assert [i["notificationId"] for i in third["data"]] == ["ntf0"]
    assert third["meta"] == {"cursor": {"hasMore": False, "next": None}}

    # Back from the oldest: the items just newer than it, in the list's order.
    oldest = third["data"][0]
    back = await client.get(
        FEED,
        params={"affix": "prepend", "limit": 2, "sentAt": oldest["sentAt"], "id": oldest["id"]},
    )
    assert [i["notificationId"] for i in back.json()["data"]] == ["ntf2", "ntf1"]
    assert back.json()["meta"]["cursor"]["hasMore"] is True


async def test_cometchats_filters(api: Api) -> None:
    client, _, _ = api

    async def notification_ids(**params: object) -> list[str]:
        response = await client.get(FEED, params={k: str(v) for k, v in params.items()})
        assert response.status_code == 200, response.text
        return [i["notificationId"] for i in response.json()["data"]]

    assert await notification_ids(tags="promo,news") == ["ntf2", "ntf1", "ntf0"]
    assert await notification_ids(tags="promo,news", tagMatch="all") == []
    assert await notification_ids(tags="promo", tagMatch="all") == ["ntf2", "ntf0"]
    assert await notification_ids(dateFrom=NOW + 1, dateTo=NOW + 3) == ["ntf3", "ntf2", "ntf1"]
    assert await notification_ids(templateCategory="Marketing") == ["ntf0"]
    assert await notification_ids(channelId="in-app") == ["ntf4", "ntf3", "ntf2", "ntf1", "ntf0"]
    assert await notification_ids(channelId="elsewhere") == []
    assert await notification_ids(readState="all", limit=1, order="asc") == ["ntf0"]
    assert await notification_ids(sort="createdAt", order="asc", limit=2) == ["ntf0", "ntf1"]
    # receiver is CometChat's admin scope: the path names the user here.
    assert await notification_ids(receiver="bob", perPage=1) == ["ntf4"]
    item0 = (await client.get(FEED, params={"templateCategory": "Marketing"})).json()["data"][0]
    assert (item0["templateCategory"], item0["createdAt"], item0["updatedAt"]) == (
        "Marketing",
        NOW,
        NOW,
    )


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"page": 2, "limit": 5}, ["page", "limit"]),
        ({"perPage": 5, "sentAt": NOW, "id": "x"}, ["perPage", "id", "sentAt"]),
        ({"id": "x"}, ["sentAt"]),
        ({"sentAt": NOW}, ["id"]),
        ({"dateFrom": NOW + 1, "dateTo": NOW}, ["dateFrom"]),
        ({"limit": 101}, None),
        ({"limit": 0}, None),
        ({"sort": "updatedAt"}, None),
        ({"order": "up"}, None),
        ({"affix": "middle"}, None),
        ({"tagMatch": "some"}, None),
        ({"readState": "maybe"}, None),
        ({"dateFrom": "nan"}, None),
        ({"sentAt": 10**13, "id": "x"}, None),
    ],
)
async def test_parameters_that_do_not_go_together_are_400(
    api: Api, params: dict[str, object], fields: list[str] | None
) -> None:
    client, _, _ = api
    response = await client.get(FEED, params={k: str(v) for k, v in params.items()})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ERR_VALIDATION"
    if fields is not None:
        assert [d["field"] for d in error["details"]] == fields


async def test_an_engagement_is_stored_and_published_once_per_topic(api: Api) -> None:
    client, feed, publisher = api
    target = item(3).id
    clicked = await client.post(f"{FEED}/{target}/engagement", json={"topic": "clicked"})
    again = await client.post(f"{FEED}/{target}/engagement", json={"topic": "clicked"})
    bare = await client.post(f"{FEED}/{target}/engagement")
    empty = await client.post(f"{FEED}/{target}/engagement", json={})

    assert [r.status_code for r in (clicked, again, bare, empty)] == [200] * 4
    shown = clicked.json()["data"]
    assert shown["engagementTopics"] == ["clicked"]
    assert shown["engagedAt"] == shown["updatedAt"]
    assert again.json() == clicked.json()
    (event,) = publisher.on(STATUS)
    assert isinstance(event.message, FeedItemEngaged)
    assert event.message.feed_item["id"] == target
    assert feed.items[target].engagement_events_pending == []


@pytest.mark.parametrize("topic", ["x" * 65, "two words", "é", "", 5])
async def test_a_bad_topic_is_400(api: Api, topic: object) -> None:
    client, _, publisher = api
    response = await client.post(f"{FEED}/{item(3).id}/engagement", json={"topic": topic})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_VALIDATION"
    assert publisher.published == []


async def test_engaging_an_unknown_item_is_404(api: Api) -> None:
    client, _, _ = api
    response = await client.post(f"{FEED}/nope/engagement", json={"topic": "clicked"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
