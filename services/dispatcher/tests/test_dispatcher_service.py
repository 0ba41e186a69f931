"""Use cases with in-memory repositories, a fake directory and a recording publisher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from clarion_dispatcher.errors import ERRORS
from clarion_dispatcher.fanout import rendering, service
from clarion_dispatcher.fanout.service import ChunkOutcome
from clarion_dispatcher.feed import service as feed_service
from clarion_dispatcher.feed.domain import FeedItemNotFound
from clarion_dispatcher.feed.models import FeedItemPublic, FeedQuery
from clarion_dispatcher.notifications import service as notification_service
from clarion_dispatcher.notifications.domain import NotificationNotFound
from clarion_dispatcher.testing import (
    FakeDirectory,
    InMemoryBatches,
    InMemoryFeed,
    InMemoryNotifications,
    RecordingPublisher,
    profile,
    send_command,
    template,
)
from clarion_shared.contracts.base import Contract
from clarion_shared.contracts.jobs import DeliveryJob
from clarion_shared.contracts.replies import SendResult
from clarion_shared.contracts.sends import ReplyTo, SendNotification, VariableSpec
from clarion_shared.contracts.status import (
    DeliveryFailed,
    FeedItemDelivered,
    FeedItemRead,
    FeedItemSent,
    status_event_adapter,
)
from clarion_shared.cursor import ListParams, NumberedPage
from clarion_shared.topics import Topics

APP = "app1"
TOPICS = Topics("unit.")
REPLIES = TOPICS.replies
STATUS = TOPICS.status
jobs_topic = TOPICS.jobs


@dataclass
class World:
    journal: list[str] = field(default_factory=list)
    directory: FakeDirectory = field(init=False)
    notifications: InMemoryNotifications = field(init=False)
    feed: InMemoryFeed = field(init=False)
    batches: InMemoryBatches = field(init=False)
    publisher: RecordingPublisher = field(init=False)

    def __post_init__(self) -> None:
        self.directory = FakeDirectory(journal=self.journal)
        self.notifications = InMemoryNotifications(self.journal)
        self.feed = InMemoryFeed(self.journal)
        self.batches = InMemoryBatches()
        self.publisher = RecordingPublisher(journal=self.journal)

    async def dispatch(self, command: SendNotification) -> ChunkOutcome:
        return await service.dispatch_chunk(
            command,
            directory=self.directory,
            notifications=self.notifications,
            feed=self.feed,
            batches=self.batches,
            publisher=self.publisher,
            topics=TOPICS,
            now=1_700_000_500,
        )

    async def mark_read(
        self,
        item_id: str,
        *,
        app_id: str = APP,
        uid: str = "alice",
        publisher: RecordingPublisher | None = None,
        now: int | None = None,
    ) -> FeedItemPublic:
        return await feed_service.mark_read(
            app_id,
            uid,
            item_id,
            feed=self.feed,
            publisher=publisher or self.publisher,
            status_topic=STATUS,
            now=now,
        )

    async def mark_delivered(self, item_id: str, now: int) -> FeedItemPublic:
        return await feed_service.mark_delivered(
            APP,
            "alice",
            item_id,
            feed=self.feed,
            publisher=self.publisher,
            status_topic=STATUS,
            now=now,
        )


@pytest.fixture
def world() -> World:
    w = World()
    w.directory.add(APP, *(profile(uid, email=f"{uid}@x.io") for uid in ("alice", "bob")))
    return w


async def test_realtime_send_stores_then_publishes_then_replies(world: World) -> None:
    reply_to = ReplyTo(topic=REPLIES, request_id="req-1")
    command = send_command(
        APP,
        "ntf1",
        ["alice", "ghost", "bob", "alice"],
        channels=("in_app", "email"),
        reply_to=reply_to,
    )

    await world.dispatch(command)

    assert world.journal[:3] == ["lookup:3", "notifications:6", "feed:2"]
    assert set(world.journal[3:5]) == {
        f"publish_many:{jobs_topic('email')}:2",
        f"publish_many:{STATUS}:10",  # 6 created, 2 feed items, 1 failed, 1 summary
    }
    assert world.journal[5:] == [f"publish:{REPLIES}"]
    (reply,) = world.publisher.on(REPLIES)
    assert reply.key == "req-1"
    assert isinstance(reply.message, SendResult)
    assert reply.message.request_id == "req-1"
    assert reply.message.send_id == "ntf1"
    assert [(r.uid, r.status, r.code) for r in reply.message.receivers] == [
        ("alice", "sent", None),
        ("ghost", "failed", "ERR_USER_NOT_FOUND"),
        ("bob", "sent", None),
    ]
    jobs = world.publisher.on(jobs_topic("email"))
    assert [j.key for j in jobs] == [f"{APP}:alice", f"{APP}:bob"]
    assert all(isinstance(j.message, DeliveryJob) for j in jobs)
    assert {p.key for p in world.publisher.on(STATUS)} == {"ntf1"}
    for published in world.publisher.on(STATUS):  # every event is a valid contract
        status_event_adapter.validate_json(published.message.to_bytes())


async def test_batch_chunk_does_not_reply(world: World) -> None:
    await world.dispatch(send_command(APP, "batch1", ["alice"], mode="batch"))
    assert world.publisher.on(REPLIES) == []
    (record,) = world.notifications.records.values()
    assert record.batch_id == "batch1"


async def test_replaying_a_command_keeps_one_record_and_feed_item_and_its_read_state(
    world: World,
) -> None:
    command = send_command(APP, "ntf2", ["alice", "bob"], channels=("in_app", "sms"))
    first = await world.dispatch(command)
    item_id = first.plan.feed_items[0].id
    await world.mark_read(item_id, now=5)

    again = await world.dispatch(command)

    assert len(world.notifications.records) == 4
    assert len(world.feed.items) == 2
    assert world.feed.items[item_id].read is True
    first_ids = [e.event_id for e in first.plan.events]
    assert [e.event_id for e in again.plan.events] == first_ids
    assert [j.job_id for j in again.plan.jobs["sms"]] == [j.job_id for j in first.plan.jobs["sms"]]


async def test_a_thousand_receivers_cost_one_lookup_one_write_per_collection(
    world: World,
) -> None:
    uids = [f"u{i}" for i in range(1000)]
    world.directory.add(APP, *(profile(uid) for uid in uids))

    outcome = await world.dispatch(send_command(APP, "batch2", uids, mode="batch"))

    assert len(world.directory.lookups) == 1
    assert world.notifications.write_calls == 1
    assert world.feed.write_calls == 1
    assert world.publisher.calls == 1  # status events only: in_app has no jobs
    assert outcome.plan.sent == 1000
    assert len(world.publisher.on(STATUS)) == 1000 + 1000 + 1


async def test_directory_timeout_is_raised_and_nothing_is_written(world: World) -> None:
    world.directory.timeout = True
    with pytest.raises(TimeoutError):
        await world.dispatch(send_command(APP, "ntf3", ["alice"]))
    assert world.notifications.records == {}
    assert world.feed.items == {}
    assert world.publisher.published == []


async def test_empty_chunk_asks_nobody_but_reports(world: World) -> None:
    reply_to = ReplyTo(topic=REPLIES, request_id="req-empty")
    await world.dispatch(send_command(APP, "ntf4", [], reply_to=reply_to))
    assert world.directory.lookups == []
    assert len(world.publisher.on(STATUS)) == 1
    (reply,) = world.publisher.on(REPLIES)
    assert isinstance(reply.message, SendResult)
    assert reply.message.receivers == []


# ---------------------------------------------------------------- in-app feed


async def _seed(world: World, send_id: str = "ntf9") -> str:
    outcome = await world.dispatch(send_command(APP, send_id, ["alice"]))
    world.publisher.published.clear()
    return outcome.plan.feed_items[0].id


async def test_mark_read_publishes_once_and_is_idempotent(world: World) -> None:
    item_id = await _seed(world)

    first = await world.mark_read(item_id, now=10)
    second = await world.mark_read(item_id, now=20)

    assert (first.status, first.read_at) == ("read", 10)
    assert second == first
    (event,) = world.publisher.on(STATUS)
    assert isinstance(event.message, FeedItemRead)
    assert event.key == "ntf9"
    assert await feed_service.unread_count(APP, "alice", feed=world.feed) == 0


async def test_mark_delivered_after_read_keeps_status_read(world: World) -> None:
    item_id = await _seed(world)

    await world.mark_read(item_id, now=10)
    delivered = await world.mark_delivered(item_id, now=11)
    again = await world.mark_delivered(item_id, now=12)

    assert (delivered.status, delivered.delivered_at) == ("read", 11)
    assert again.delivered_at == 11
    kinds = [type(p.message) for p in world.publisher.on(STATUS)]
    assert kinds == [FeedItemRead, FeedItemDelivered]


async def test_another_users_or_apps_item_is_not_found(world: World) -> None:
    item_id = await _seed(world)
    for app_id, uid in (("app1", "bob"), ("other-app", "alice")):
        with pytest.raises(FeedItemNotFound) as caught:
            await world.mark_read(item_id, app_id=app_id, uid=uid)
        answer = ERRORS.api_error(caught.value)
        assert answer is not None
        assert answer.status == 404
        with pytest.raises(FeedItemNotFound):
            await feed_service.delete_feed_item(app_id, uid, item_id, feed=world.feed)
    assert world.publisher.published == []


async def test_list_feed_filters_read_state_newest_first(world: World) -> None:
    first = await _seed(world, "ntf-a")
    second = await _seed(world, "ntf-b")
    await world.mark_read(first, now=1)

    everything = await feed_service.list_feed(
        APP, "alice", FeedQuery(ListParams()), feed=world.feed
    )
    unread = await feed_service.list_feed(
        APP, "alice", FeedQuery(ListParams(), read_state="unread"), feed=world.feed
    )

    assert isinstance(everything, NumberedPage)
    assert isinstance(unread, NumberedPage)
    assert everything.total == 2
    # Same sent_at: the id breaks the tie, descending.
    assert [i.id for i in everything.items] == sorted([first, second], reverse=True)
    assert ([i.id for i in unread.items], unread.total) == ([second], 1)


async def test_get_notification_404_when_the_send_is_unknown(world: World) -> None:
    await world.dispatch(send_command(APP, "ntf5", ["alice", "ghost"]))
    found = await notification_service.get_notification(
        APP, "ntf5", notifications=world.notifications
    )
    assert [r.uid for r in found.receivers] == ["alice", "ghost"]
    with pytest.raises(NotificationNotFound):
        await notification_service.get_notification(
            "other-app", "ntf5", notifications=world.notifications
        )


async def test_commands_of_one_fetch_share_lookups_writes_and_publishes(world: World) -> None:
    world.directory.add("app2", profile("carol"))
    commands = [
        send_command(
            APP, "ntf-a", ["alice", "ghost"], reply_to=ReplyTo(topic=REPLIES, request_id="r-a")
        ),
        send_command(
            APP, "ntf-b", ["bob", "alice"], reply_to=ReplyTo(topic=REPLIES, request_id="r-b")
        ),
        send_command("app2", "ntf-c", ["carol", "alice"]),
    ]

    outcomes = await service.dispatch_chunks(
        commands,
        directory=world.directory,
        notifications=world.notifications,
        feed=world.feed,
        batches=world.batches,
        publisher=world.publisher,
        topics=TOPICS,
        now=1_700_000_500,
    )

    # One lookup per app, with the union of that app's receivers.
    assert sorted(world.directory.lookups) == [["alice", "ghost", "bob"], ["carol", "alice"]]
    # One bulk write per collection for the whole fetch.
    assert [e for e in world.journal if e.startswith(("notifications:", "feed:"))] == [
        "notifications:6",
        "feed:4",
    ]
    # Each command is answered on its own, with its own receivers only.
    replies = {p.key: p.message for p in world.publisher.on(REPLIES)}
    assert set(replies) == {"r-a", "r-b"}
    reply_a = replies["r-a"]
    assert isinstance(reply_a, SendResult)
    assert [(r.uid, r.status) for r in reply_a.receivers] == [
        ("alice", "sent"),
        ("ghost", "failed"),
    ]
    # alice is not a user of app2: users never leak across apps.
    assert [(r.uid, r.status) for r in outcomes[2].plan.results] == [
        ("carol", "sent"),
        ("alice", "failed"),
    ]


async def test_realtime_sends_of_a_fetch_are_answered_before_its_batch_chunks(
    world: World,
) -> None:
    commands = [
        send_command(APP, "bat-1", ["alice", "bob"], mode="batch"),
        send_command(APP, "ntf-1", ["bob"], reply_to=ReplyTo(topic=REPLIES, request_id="r-1")),
    ]

    await service.dispatch_fetch(
        commands,
        directory=world.directory,
        notifications=world.notifications,
        feed=world.feed,
        batches=world.batches,
        publisher=world.publisher,
        topics=TOPICS,
    )

    reply_at = world.journal.index(f"publish:{REPLIES}")
    batch_lookup_at = world.journal.index("lookup:2")
    assert reply_at < batch_lookup_at


class FailingOnce(RecordingPublisher):
    """A publisher whose first single publish fails, as if the process died there."""

    failed: bool = False

    async def publish(self, topic: str, message: Contract, key: str | None) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the broker went away")
        await super().publish(topic, message, key)


async def test_a_read_event_lost_to_a_crash_is_published_by_the_next_call(world: World) -> None:
    item_id = await _seed(world)
    crashing = FailingOnce()

    with pytest.raises(ConnectionError):
        await world.mark_read(item_id, publisher=crashing, now=10)
    # The item is read, and its event still owed.
    assert await feed_service.unread_count(APP, "alice", feed=world.feed) == 0

    again = await world.mark_read(item_id, publisher=crashing, now=30)
    once_more = await world.mark_read(item_id, publisher=crashing, now=40)

    assert again == once_more
    assert again.read_at == 10
    (event,) = crashing.on(STATUS)  # published once the crash is over, then never again
    assert isinstance(event.message, FeedItemRead)
    assert event.message.occurred_at == 10


# ---------------------------------------------------------------- one receiver's failure


def realtime(receivers: list[str], **options: Any) -> SendNotification:
    return send_command(
        APP, "ntf-iso", receivers, reply_to=ReplyTo(topic=REPLIES, request_id="r"), **options
    )


def reply_of(world: World) -> list[tuple[str, str, str | None]]:
    (reply,) = world.publisher.on(REPLIES)
    assert isinstance(reply.message, SendResult)
    return [(r.uid, r.status, r.code) for r in reply.message.receivers]


async def test_records_the_database_refuses_fail_their_receiver_only(world: World) -> None:
    """Issue 6, item 2: a receiver whose write fails is failed with a code, in the reply,
    its records and its events; the other receivers are sent; nothing times out."""
    world.notifications.refuses = {"bob"}
    await world.dispatch(realtime(["alice", "bob"]))
    assert reply_of(world) == [("alice", "sent", None), ("bob", "failed", "ERR_STORE_FAILED")]
    states = {
        (r.uid, r.status, r.error.code if r.error else None)
        for r in world.notifications.records.values()
    }
    assert states == {("alice", "sent", None), ("bob", "failed", "ERR_STORE_FAILED")}
    assert [item.receiver for item in world.feed.items.values()] == ["alice"]
    events = [p.message for p in world.publisher.on(STATUS)]
    failed = [e for e in events if isinstance(e, DeliveryFailed) and e.uid == "bob"]
    assert len(failed) == 1
    assert failed[0].error.code == "ERR_STORE_FAILED"
    assert len([e for e in events if isinstance(e, FeedItemSent)]) == 1  # alice's only


async def test_a_receiver_whose_content_cannot_render_fails_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = rendering.render_content

    def render(renderer: Any, channel: Any, values: Any) -> Any:
        if values.get("order") == "poison":
            raise ValueError("cannot render this")
        return original(renderer, channel, values)

    monkeypatch.setattr(rendering, "render_content", render)
    await world.dispatch(realtime(["alice", "bob"], variables={"bob": {"order": "poison"}}))
    assert reply_of(world) == [("alice", "sent", None), ("bob", "failed", "ERR_RENDER_FAILED")]
    assert {r.uid: r.status for r in world.notifications.records.values()} == {
        "alice": "sent",
        "bob": "failed",
    }


async def test_a_content_that_renders_too_large_fails_its_receiver_only(world: World) -> None:
    """A token repeated in a large template multiplies a variable's size: the limits at
    the gateway (8 KiB a value, 64 KiB a template) allow a 100 MB rendering."""
    big = template(variables=[VariableSpec(key="order", required=True)])
    body = "{{order}}" * 200  # 200 copies of each receiver's value
    big = big.model_copy(
        update={
            "channels": [
                c.model_copy(update={"content": {"title": "t", "body": body}}) for c in big.channels
            ]
        }
    )
    await world.dispatch(
        realtime(
            ["alice", "bob"],
            template_snapshot=big,
            variables={"alice": {"order": "A"}, "bob": {"order": "x" * 8192}},
        )
    )
    assert reply_of(world) == [
        ("alice", "sent", None),
        ("bob", "failed", "ERR_CONTENT_TOO_LARGE"),
    ]
    assert rendering.MAX_RENDERED_BYTES < 200 * 8192
