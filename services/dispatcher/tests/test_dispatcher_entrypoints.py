"""Entry points: the sends consumers on FastStream's TestKafkaBroker, the HTTP routes.

The app is composed with in-memory adapters (``dataclasses.replace`` on the real ones,
which are never started); nothing here needs Kafka or a database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from faststream.kafka import KafkaMessage, TestKafkaBroker

from clarion_dispatcher.app import Adapters, Settings, compose
from clarion_dispatcher.fanout import service
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    InMemoryFeed,
    InMemoryNotifications,
    RecordingAnnouncer,
    RecordingPublisher,
    profile,
    send_command,
)
from clarion_shared import kafka
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import ReplyTo
from clarion_shared.contracts.status import status_event_adapter
from clarion_shared.http import internal_headers
from clarion_shared.topics import Topics

APP = "app1"
SETTINGS = Settings(topic_prefix="unit.", group_id="dispatcher-test")
TOPICS = Topics(SETTINGS.topic_prefix)
REPLIES = TOPICS.replies
SENDS = TOPICS.sends
SENDS_REALTIME = TOPICS.sends_realtime
STATUS = TOPICS.status


def fakes() -> tuple[FakeDirectory, InMemoryNotifications, InMemoryFeed]:
    directory = FakeDirectory()
    directory.add(APP, profile("alice"), profile("bob"))
    return directory, InMemoryNotifications(), InMemoryFeed()


def with_fakes(
    directory: FakeDirectory,
    notifications: InMemoryNotifications,
    feed: InMemoryFeed,
    publisher: RecordingPublisher | None = None,
) -> Adapters:
    """The real adapters (not started) with the fakes in place; the real broker's
    publisher unless ``publisher`` is given."""
    adapters = replace(
        Adapters.connect(SETTINGS),
        directory=directory,
        notifications=notifications,
        feed=feed,
        batches=InMemoryBatches(),
        announcer=RecordingAnnouncer(),
    )
    return adapters if publisher is None else replace(adapters, publisher=publisher)


async def test_a_realtime_send_is_fanned_out_and_answered_on_its_own_lane() -> None:
    directory, notifications, feed = fakes()
    adapters = with_fakes(directory, notifications, feed)
    compose(SETTINGS, adapters)
    broker = adapters.broker
    replies: list[SendResult] = []
    status_types: list[str] = []

    async def on_reply(msg: KafkaMessage) -> None:
        replies.append(SendResult.model_validate_json(msg.body))

    async def on_status(msg: KafkaMessage) -> None:
        status_types.append(status_event_adapter.validate_json(msg.body).type)

    broker.subscriber(REPLIES)(on_reply)
    broker.subscriber(STATUS)(on_status)

    async with TestKafkaBroker(broker) as test_broker:
        command = send_command(
            APP, "ntf1", ["alice", "ghost"], reply_to=ReplyTo(topic=REPLIES, request_id="r1")
        )
        await kafka.publish(test_broker, SENDS_REALTIME, command, key=command.send_id)

    assert directory.realtime_lookups == [["alice", "ghost"]]
    assert len(notifications.records) == 2
    assert [item.receiver for item in feed.items.values()] == ["alice"]
    (reply,) = replies
    assert reply.request_id == "r1"
    assert [(r.uid, r.status) for r in reply.receivers] == [("alice", "sent"), ("ghost", "failed")]
    assert status_types == [
        "notification_created",
        "notification_created",
        "feed_item_sent",
        "delivery_failed",
        "chunk_dispatched",
    ]


async def test_an_unreadable_send_record_is_dead_lettered() -> None:
    directory, notifications, feed = fakes()
    adapters = with_fakes(directory, notifications, feed, RecordingPublisher())
    compose(SETTINGS, adapters)
    broker = adapters.broker
    dead: list[bytes] = []

    async def on_dead(msg: KafkaMessage) -> None:
        dead.append(msg.body)

    broker.subscriber(f"{SENDS}.dlq")(on_dead)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b'{"type": "send_notification"}', SENDS, key=b"x")

    assert dead == [b'{"type": "send_notification"}']
    assert notifications.records == {}


# ----------------------------------------------------------------------- HTTP


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher]]:
    directory, notifications, feed = fakes()
    publisher = RecordingPublisher()
    for n in range(3):
        await service.dispatch_chunk(
            send_command(APP, f"ntf{n}", ["alice", "ghost"], tag="t"),
            directory=directory,
            notifications=notifications,
            feed=feed,
            batches=InMemoryBatches(),
            publisher=publisher,
            topics=TOPICS,
            now=1_700_000_000 + n,
        )
    publisher.published.clear()
    # ASGITransport runs no lifespan: nothing is started.
    app = compose(SETTINGS, with_fakes(directory, notifications, feed, publisher))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://dispatcher",
        headers=internal_headers(SETTINGS.internal_token),
    ) as client:
        yield client, feed, publisher


FEED = f"/internal/apps/{APP}/feed/alice"


async def test_feed_page_newest_first_with_pagination(
    api: tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher],
) -> None:
    client, _, _ = api
    response = await client.get(FEED, params={"perPage": 2, "page": 1})
    assert response.status_code == 200
    body = response.json()
    assert [item["notificationId"] for item in body["data"]] == ["ntf2", "ntf1"]
    assert body["meta"]["pagination"] == {
        "total": 3,
        "count": 2,
        "per_page": 2,
        "current_page": 1,
        "total_pages": 2,
    }
    item = body["data"][0]
    assert item["status"] == "sent"
    assert item["receiver"] == "alice"
    assert item["channelType"] == "in_app"
    assert item["content"] == {"title": "Hi there", "body": "Your order A-1 shipped."}
    assert (item["deliveredAt"], item["readAt"], item["batchId"]) == (None, None, None)

    page2 = (await client.get(FEED, params={"perPage": 2, "page": 2})).json()
    assert [i["notificationId"] for i in page2["data"]] == ["ntf0"]


@pytest.mark.parametrize(
    "params", [{"perPage": 101}, {"page": 0}, {"perPage": 0}, {"readState": "maybe"}]
)
async def test_feed_query_validation_is_400(
    api: tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher], params: dict[str, object]
) -> None:
    client, _, _ = api
    response = await client.get(FEED, params={k: str(v) for k, v in params.items()})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ERR_VALIDATION"


async def test_read_delivered_unread_count_and_delete(
    api: tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher],
) -> None:
    client, _, publisher = api
    items = (await client.get(FEED)).json()["data"]
    target = items[0]["id"]
    assert (await client.get(f"{FEED}/unread-count")).json() == {"data": {"count": 3}}

    read = await client.post(f"{FEED}/{target}/read")
    again = await client.post(f"{FEED}/{target}/read")
    assert read.status_code == again.status_code == 200
    assert read.json()["data"]["status"] == "read"
    assert again.json() == read.json()
    delivered = (await client.post(f"{FEED}/{target}/delivered")).json()["data"]
    assert delivered["status"] == "read"
    assert delivered["deliveredAt"] is not None
    assert len(publisher.on(STATUS)) == 2  # one read, one delivered: transitions only

    assert (await client.get(f"{FEED}/unread-count")).json() == {"data": {"count": 2}}
    unread = (await client.get(FEED, params={"readState": "unread"})).json()
    assert target not in [i["id"] for i in unread["data"]]
    read_only = (await client.get(FEED, params={"readState": "read"})).json()
    assert [i["id"] for i in read_only["data"]] == [target]

    deleted = await client.delete(f"{FEED}/{target}")
    assert deleted.json() == {"data": {"success": True}}
    gone = await client.delete(f"{FEED}/{target}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ERR_NOT_FOUND"
    assert gone.json()["error"]["message"] == "Feed item not found."


async def test_another_users_item_is_404(
    api: tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher],
) -> None:
    client, _, publisher = api
    target = (await client.get(FEED)).json()["data"][0]["id"]
    for path in (
        f"/internal/apps/{APP}/feed/bob/{target}/read",
        f"/internal/apps/other/feed/alice/{target}/delivered",
    ):
        response = await client.post(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "ERR_NOT_FOUND"
    assert publisher.published == []


async def test_notification_states(
    api: tuple[httpx.AsyncClient, InMemoryFeed, RecordingPublisher],
) -> None:
    client, _, _ = api
    response = await client.get(f"/internal/apps/{APP}/notifications/ntf1")
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "notificationId": "ntf1",
            "mode": "realtime",
            "templateId": "order-shipped",
            "templateVersion": 1,
            "tag": "t",
            "createdAt": 1_700_000_001,
            "receivers": [
                {
                    "uid": "alice",
                    "channels": [
                        {"channelType": "in_app", "channelId": "in-app", "status": "sent"}
                    ],
                },
                {
                    "uid": "ghost",
                    "channels": [
                        {
                            "channelType": "in_app",
                            "channelId": "in-app",
                            "status": "failed",
                            "code": "ERR_USER_NOT_FOUND",
                            "message": "User ghost does not exist.",
                        }
                    ],
                },
            ],
        }
    }
    missing = await client.get("/internal/apps/other/notifications/ntf1")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "ERR_NOT_FOUND",
        "message": "Notification not found.",
        "devMessage": "Notification not found.",
        "source": "clarion",
    }
