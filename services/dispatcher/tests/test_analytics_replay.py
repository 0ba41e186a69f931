"""The analytics counter on the real broker and database: status events published to
the real topic are counted; the same events published again, and the topic read again
from where they began by a new consumer group (a replay), leave every number as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, wait_until
from clarion_dispatcher.analytics import consumers, service
from clarion_dispatcher.analytics.mongo import MongoAnalytics
from clarion_dispatcher.analytics.query import Scope
from clarion_shared import kafka
from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.contracts.status import (
    AnyStatusEvent,
    ChannelTally,
    ChunkDispatched,
    DeliveryFailed,
    DeliverySent,
    FeedItemDelivered,
    FeedItemEngaged,
    FeedItemRead,
    FeedItemSent,
    NotificationCreated,
)
from clarion_shared.ids import now
from clarion_shared.public.analytics import AnalyticsPublic, AnalyticsQuery
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration

QUERY = AnalyticsQuery(period="hour")


def status_events(app: str, send: str, at: int) -> list[AnyStatusEvent]:
    """A campaign to 10 users on in-app and push, one unknown: 9 items, 6 delivered, 4
    read, 3 engaged (and a second topic), push queued for 9, then sent by its worker to
    7 and failed for 2 (each delivery said once by the fan-out or by its worker)."""
    base: dict[str, Any] = {"app_id": app, "send_id": send, "mode": "campaign", "occurred_at": at}
    uids = [f"u{n}" for n in range(10)]

    def item(uid: str) -> dict[str, Any]:
        return {"receiver": uid, "templateId": "tpl", "channelId": "feed", "channelType": "in_app"}

    events: list[AnyStatusEvent] = [
        NotificationCreated(
            event_id=f"{send}-nc-{uid}",
            notification_id=uid,
            uid=uid,
            channel_type="in_app",
            channel_id="feed",
            **base,
        )
        for uid in uids
    ]
    events += [FeedItemSent(event_id=f"{send}-s-{u}", feed_item=item(u), **base) for u in uids[:9]]
    events.append(
        DeliveryFailed(
            event_id=f"{send}-f",
            uid="u9",
            template_id="tpl",
            error=ErrorInfo(code="ERR_USER_NOT_FOUND", message="x"),
            **base,
        )
    )
    events.append(
        ChunkDispatched(
            event_id=f"{send}-chunk",
            chunk=0,
            chunks=1,
            total=10,
            sent=9,
            failed=1,
            channels=[
                ChannelTally(channel_type="in_app", channel_id="feed", sent=9, failed=1),
                ChannelTally(channel_type="push", channel_id="fcm", failed=1, queued=9),
            ],
            template_id="tpl",
            **base,
        )
    )
    events += [push_sent(base, uid) for uid in uids[:7]]
    events += [push_failed(base, uid) for uid in uids[7:9]]
    events += [
        FeedItemDelivered(event_id=f"{send}-d-{u}", feed_item=item(u), **base) for u in uids[:6]
    ]
    events += [FeedItemRead(event_id=f"{send}-r-{u}", feed_item=item(u), **base) for u in uids[:4]]
    events += [
        FeedItemEngaged(event_id=f"{send}-e-{u}", feed_item=item(u), first_engagement=True, **base)
        for u in uids[:3]
    ]
    events.append(
        FeedItemEngaged(
            event_id=f"{send}-e2",
            topic="shared",
            feed_item=item("u0"),
            first_engagement=False,
            **base,
        )
    )
    return events


def push_sent(base: dict[str, Any], uid: str) -> DeliverySent:
    """What the push worker says of a delivery the provider accepted."""
    return DeliverySent(
        event_id=f"{base['send_id']}-ps-{uid}",
        uid=uid,
        channel_type="push",
        channel_id="fcm",
        notification_id=f"n-{uid}",
        template_id="tpl",
        provider_id=f"fcm-{uid}",
        **base,
    )


def push_failed(base: dict[str, Any], uid: str) -> DeliveryFailed:
    """What the push worker says of a delivery that failed for good."""
    return DeliveryFailed(
        event_id=f"{base['send_id']}-pf-{uid}",
        uid=uid,
        channel_type="push",
        channel_id="fcm",
        notification_id=f"n-{uid}",
        template_id="tpl",
        error=ErrorInfo(code="ERR_INVALID_PUSH_TOKEN", message="UNREGISTERED"),
        **base,
    )


# 10 receivers on 2 channels, each delivery once: in-app 9 sent and 1 failed; push 7
# sent (by its worker), 1 failed at the fan-out and 2 at the worker.
EXPECTED = {"sent": 16, "delivered": 6, "read": 4, "engaged": 3, "failed": 4}


class Counter:
    """The analytics consumer of one consumer group, started on its own broker."""

    def __init__(self, settings: InfraSettings, repo: MongoAnalytics, group: str) -> None:
        self.broker = kafka.make_broker(settings, "analytics-it")
        groups = kafka.ConsumerGroups(self.broker, group)
        consumers.register(groups, Topics(settings.topic_prefix), repo=repo, max_records=7)

    async def __aenter__(self) -> Counter:
        await self.broker.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.broker.stop()


async def commit_offsets(bootstrap: str, group_id: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await kafka.topic_partitions(bootstrap, topic)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def repo(mongo_client: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[MongoAnalytics]:
    name = random_ref("dispatcher_analytics_replay").replace("-", "_")
    found = MongoAnalytics(mongo_client[name])
    await found.start()
    yield found
    with contextlib.suppress(Exception):
        await mongo_client.drop_database(name)


async def overview(repo: MongoAnalytics, app: str) -> AnalyticsPublic:
    return await service.report(app, "overview", QUERY, repo=repo, now=now())


async def publish(broker: Any, topic: str, key: str, events: Sequence[AnyStatusEvent]) -> None:
    await kafka.publish_many(broker, topic, [(key, event) for event in events])


async def test_a_replayed_topic_counts_nothing_twice(
    infra_settings: InfraSettings, topics: Topics, repo: MongoAnalytics
) -> None:
    bootstrap = infra_settings.kafka_bootstrap_servers
    app, send = random_ref("app"), random_ref("cmp")
    events = status_events(app, send, now())
    first_group, replay_group = random_ref("analytics-it"), random_ref("analytics-replay")
    starts = await end_offsets(bootstrap, topics.status)
    await commit_offsets(bootstrap, kafka.group_id_of(first_group, topics.status), starts)

    async def counted(expected: dict[str, int], uid: str | None = None) -> bool:
        scope: Scope = "user" if uid else "overview"
        query = AnalyticsQuery(period="day") if uid else QUERY
        found = await service.report(app, scope, query, repo=repo, now=now(), resource_id=uid or "")
        return found.totals.model_dump() == expected

    def sentinel(n: int) -> FeedItemSent:
        item = {"receiver": "late", "templateId": "tpl", "channelId": "feed"}
        return FeedItemSent(
            event_id=f"{send}-late-{n}",
            app_id=app,
            send_id=send,
            mode="campaign",
            occurred_at=now(),
            feed_item=item,
        )

    late = {"sent": 1, "delivered": 0, "read": 0, "engaged": 0, "failed": 0}
    async with Counter(infra_settings, repo, first_group) as counter:
        await publish(counter.broker, topics.status, send, events)
        await wait_until(lambda: _true(counted(EXPECTED)), timeout_s=60, what="the counts")
        # The same events published again, then one new one behind them (same partition).
        await publish(counter.broker, topics.status, send, [*events, sentinel(1)])
        await wait_until(
            lambda: _true(counted(late, "late")), timeout_s=60, what="the 1st late one"
        )

    before = (await overview(repo, app)).model_dump()
    assert before["totals"] == {**EXPECTED, "sent": EXPECTED["sent"] + 1}
    # A new consumer group reads the whole run again from where it began.
    await commit_offsets(bootstrap, kafka.group_id_of(replay_group, topics.status), starts)
    async with Counter(infra_settings, repo, replay_group) as replay:
        await publish(replay.broker, topics.status, send, [sentinel(2)])
        two = {**late, "sent": 2}
        await wait_until(lambda: _true(counted(two, "late")), timeout_s=60, what="the 2nd late one")

    after = (await overview(repo, app)).model_dump()
    assert after["totals"] == {**EXPECTED, "sent": EXPECTED["sent"] + 2}
    assert after["series"][:-1] == before["series"][:-1]
    template = await service.report(app, "template", QUERY, repo=repo, now=now(), resource_id="tpl")
    # Every delivery was of that template: the late ones too.
    assert template.totals.model_dump() == {**EXPECTED, "sent": EXPECTED["sent"] + 2}
    user = await service.report(
        app, "user", AnalyticsQuery(period="day"), repo=repo, now=now(), resource_id="u0"
    )
    assert user.totals.model_dump() == {
        "sent": 2,
        "delivered": 1,
        "read": 1,
        "engaged": 1,
        "failed": 0,
    }
    push = await service.report(
        app,
        "overview",
        AnalyticsQuery(period="hour", dimension="channel", dimension_id="fcm"),
        repo=repo,
        now=now(),
    )
    assert (push.totals.sent, push.totals.failed) == (7, 3)
    assert sum(EXPECTED[m] for m in ("sent", "failed")) == 10 * 2  # none missed or twice
    assert await repo.unapplied() == []


async def _true(check: Any) -> bool | None:
    return True if await check else None
