"""Kafka subscribers on FastStream's in-memory ``TestKafkaBroker`` with the fake repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import pytest
import pytest_asyncio
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from clarion_directory.testing import InMemoryUserRepository, RecordingUserChanges
from clarion_directory.users import consumers
from clarion_directory.users.domain import User
from clarion_shared.contracts.base import Contract
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.directory_replies import UsersResolved
from clarion_shared.contracts.users_changes import UsersChanged
from clarion_shared.contracts.users_events import PresenceChanged, UserDeleted, UserUpserted
from clarion_shared.kafka import ConsumerGroups, make_broker
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

TOPICS = Topics("unit.")
REPLY_TOPIC = "test.directory.replies"


@dataclass
class Captured:
    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    dead: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@dataclass
class Harness:
    broker: KafkaBroker
    repo: InMemoryUserRepository
    captured: Captured
    changes: RecordingUserChanges

    async def send(self, topic: str, message: Contract | bytes, key: str = "k") -> None:
        body = message if isinstance(message, bytes) else message.to_bytes()
        await self.broker.publish(body, topic, key=key.encode())


@pytest_asyncio.fixture(loop_scope="session")
async def harness(memory_repo: InMemoryUserRepository) -> AsyncIterator[Harness]:
    broker = make_broker(InfraSettings(), "user-directory-test")
    changes = RecordingUserChanges()
    consumers.register(ConsumerGroups(broker, "user-directory"), TOPICS, memory_repo, changes)
    captured = Captured()

    @broker.subscriber(REPLY_TOPIC)
    async def on_reply(msg: KafkaMessage) -> None:
        captured.records.append((msg.raw_message.key, msg.body))  # type: ignore[union-attr]

    @broker.subscriber(f"{TOPICS.directory_lookups}.dlq")
    @broker.subscriber(f"{TOPICS.users_events}.dlq")
    async def on_dead(msg: KafkaMessage) -> None:
        captured.dead.append((dict(msg.headers), msg.body))

    async with TestKafkaBroker(broker) as test_broker:
        yield Harness(test_broker, memory_repo, captured, changes)


def presence(status: Literal["online", "offline"], at: int) -> PresenceChanged:
    return PresenceChanged(app_id="app", uid="dan", status=status, occurred_at=at)


def user(uid: str, **values: object) -> User:
    return User.model_validate(
        {"app_id": "app", "uid": uid, "name": uid.title(), "created_at": 1, "updated_at": 1}
        | values
    )


@pytest.mark.parametrize("topic", [TOPICS.directory_lookups, TOPICS.directory_lookups_realtime])
async def test_lookup_answers_on_the_reply_topic_keyed_by_request_id(
    harness: Harness, topic: str
) -> None:
    for uid in ("alice", "bob"):
        await harness.repo.insert(user(uid, metadata={"@private": {"email": f"{uid}@x.io"}}))
    await harness.repo.insert(user("carol").model_copy(update={"app_id": "other"}))
    lookup = LookupUsers(
        request_id="req-1",
        reply_topic=REPLY_TOPIC,
        app_id="app",
        uids=["bob", "carol", "alice", "bob", "not valid"],
    )
    await harness.send(topic, lookup, key="app")

    [(key, body)] = harness.captured.records
    assert key == b"req-1"
    reply = UsersResolved.model_validate_json(body)
    assert reply.request_id == "req-1"
    assert reply.app_id == "app"
    assert [u.uid for u in reply.users] == ["bob", "alice"]
    assert reply.users[0].metadata == {"@private": {"email": "bob@x.io"}}
    assert reply.missing == ["carol", "not valid"]
    # One repository call for the whole chunk, not one per uid.
    assert harness.repo.get_many_calls == 1


async def test_a_full_chunk_is_resolved(harness: Harness) -> None:
    for i in range(0, 1000, 2):
        await harness.repo.insert(user(f"u{i}"))
    uids = [f"u{i}" for i in range(1000)]
    await harness.send(
        TOPICS.directory_lookups,
        LookupUsers(request_id="req-2", reply_topic=REPLY_TOPIC, app_id="app", uids=uids),
    )
    [(_, body)] = harness.captured.records
    reply = UsersResolved.model_validate_json(body)
    assert [u.uid for u in reply.users] == uids[0::2]
    assert reply.missing == uids[1::2]


async def test_an_unreadable_lookup_is_dead_lettered(harness: Harness) -> None:
    await harness.send(TOPICS.directory_lookups, b'{"type": "lookup_users"}')
    assert harness.captured.records == []
    [(headers, body)] = harness.captured.dead
    assert headers["dlq-source-topic"] == TOPICS.directory_lookups
    assert headers["dlq-reason"].startswith("invalid message")
    assert body == b'{"type": "lookup_users"}'


async def test_user_events_upsert_presence_and_delete(harness: Harness) -> None:
    repo = harness.repo
    events = TOPICS.users_events
    await harness.send(
        events,
        UserUpserted(app_id="app", uid="dan", name="Dan", tags=["vip"], occurred_at=100),
    )
    stored = await repo.get("app", "dan")
    assert stored is not None
    assert (stored.name, stored.tags, stored.created_at, stored.updated_at) == (
        "Dan",
        ["vip"],
        100,
        100,
    )

    # A later upsert changes only what it announces; a replayed older one changes nothing.
    await harness.send(events, UserUpserted(app_id="app", uid="dan", role="admin", occurred_at=110))
    await harness.send(events, UserUpserted(app_id="app", uid="dan", name="Old", occurred_at=105))
    stored = await repo.get("app", "dan")
    assert stored is not None
    assert (stored.name, stored.role, stored.tags, stored.updated_at) == (
        "Dan",
        "admin",
        ["vip"],
        110,
    )

    await harness.send(events, presence("online", 120))
    await harness.send(events, presence("offline", 115))
    stored = await repo.get("app", "dan")
    assert stored is not None
    assert (stored.status, stored.last_active_at) == ("online", 120)

    # A delete older than the last change is stale; a newer one removes the user.
    await harness.send(events, UserDeleted(app_id="app", uid="dan", occurred_at=109))
    assert await repo.get("app", "dan") is not None
    await harness.send(events, UserDeleted(app_id="app", uid="dan", occurred_at=130))
    assert await repo.get("app", "dan") is None
    # Presence of an unknown user is ignored, not turned into a user.
    await harness.send(events, presence("online", 140))
    assert await repo.get("app", "dan") is None
    assert harness.captured.dead == []


async def test_a_user_without_a_name_is_named_after_its_uid(harness: Harness) -> None:
    await harness.send(TOPICS.users_events, UserUpserted(app_id="app", uid="eve", occurred_at=1))
    stored = await harness.repo.get("app", "eve")
    assert stored is not None
    assert stored.name == "eve"


@pytest.mark.parametrize(
    "event",
    [
        UserUpserted(app_id="app", uid="bad uid", name="X", occurred_at=1),
        UserUpserted(app_id="app", uid="ok", name="n" * 101, occurred_at=1),
    ],
)
async def test_an_event_that_can_never_apply_is_dead_lettered(
    harness: Harness, event: UserUpserted
) -> None:
    await harness.send(TOPICS.users_events, event)
    [(headers, _)] = harness.captured.dead
    assert headers["dlq-source-topic"] == TOPICS.users_events
    assert harness.repo.users == {}


async def test_lookups_of_one_fetch_share_one_read_per_app(harness: Harness) -> None:
    for uid in ("alice", "bob"):
        await harness.repo.insert(user(uid))
    await harness.repo.insert(user("carol").model_copy(update={"app_id": "other"}))
    lookups = [
        LookupUsers(request_id="r1", reply_topic=REPLY_TOPIC, app_id="app", uids=["alice"]),
        LookupUsers(request_id="r2", reply_topic=REPLY_TOPIC, app_id="app", uids=["bob", "x"]),
        LookupUsers(request_id="r3", reply_topic=REPLY_TOPIC, app_id="other", uids=["carol"]),
    ]
    await harness.broker.publish_batch(
        *(lookup.to_bytes() for lookup in lookups), topic=TOPICS.directory_lookups
    )

    replies = {
        key: UsersResolved.model_validate_json(body) for key, body in harness.captured.records
    }
    assert [u.uid for u in replies[b"r1"].users] == ["alice"]
    assert [u.uid for u in replies[b"r2"].users] == ["bob"]
    assert replies[b"r2"].missing == ["x"]
    assert [u.uid for u in replies[b"r3"].users] == ["carol"]
    assert harness.repo.get_many_calls == 2  # one per app, not one per lookup


async def test_a_fetch_of_user_events_announces_its_users_once_per_app(harness: Harness) -> None:
    await harness.repo.insert(user("dan", updated_at=500))
    events = [
        UserUpserted(app_id="app", uid="eve", name="Eve", occurred_at=100),
        presence("online", 120),
        UserUpserted(app_id="other", uid="eve", name="Eve", occurred_at=100),
        # Stale (dan was updated at 500): applied as nothing, announced all the same,
        # as it may be the redelivery of an event whose announcement failed.
        UserDeleted(app_id="app", uid="dan", occurred_at=110),
        UserUpserted(app_id="app", uid="eve", role="admin", occurred_at=130),
    ]
    await harness.broker.publish_batch(
        *(event.to_bytes() for event in events), topic=TOPICS.users_events
    )

    stored = await harness.repo.get("app", "eve")
    assert stored is not None
    assert stored.role == "admin"
    assert await harness.repo.get("app", "dan") is not None
    assert [(c.app_id, c.uids) for c in harness.changes.changes] == [
        ("app", ["eve", "dan"]),
        ("other", ["eve"]),
    ]
    assert all(isinstance(c, UsersChanged) for c in harness.changes.changes)


async def test_user_events_whose_announcement_fails_are_delivered_again(
    harness: Harness,
) -> None:
    harness.changes.fail = True
    event = UserDeleted(app_id="app", uid="dan", occurred_at=130)
    await harness.repo.insert(user("dan"))
    # The handler raises a transient error after its retries (the in-memory broker
    # hands it to the publisher): the record is not committed, so it comes again.
    with pytest.raises(TimeoutError):
        await harness.send(TOPICS.users_events, event)
    # Applied, not announced, and not dead-lettered.
    assert await harness.repo.get("app", "dan") is None
    assert harness.changes.changes == []
    assert harness.captured.dead == []

    harness.changes.fail = False
    await harness.send(TOPICS.users_events, event)  # the redelivery: nothing to delete
    assert harness.changes.uids("app") == ["dan"]
