"""Push tokens a provider refused (``PushTokensInvalid`` on ``clarion.users.events``) are
removed from the user's ``metadata["@private"]["pushTokens"]``: the rule, the
conditional write on both repositories, the use case on a fetch of events, the
subscriber on FastStream's in-memory broker, and the service on the real broker and
database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from faststream.kafka import KafkaBroker, TestKafkaBroker
from pydantic import JsonValue
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, wait_until
from clarion_directory.app import Adapters, Settings, compose
from clarion_directory.testing import InMemoryUserRepository, RecordingUserChanges
from clarion_directory.users import consumers, events
from clarion_directory.users.domain import User, without_push_tokens
from clarion_directory.users.models import UserUpdate
from clarion_directory.users.service import UserRepository
from clarion_shared import kafka
from clarion_shared.contracts.base import JsonObject
from clarion_shared.contracts.users_events import (
    AnyUserEvent,
    PresenceChanged,
    PushTokensInvalid,
    UserUpserted,
)
from clarion_shared.kafka import ConsumerGroups, make_broker
from clarion_shared.settings import InfraSettings
from clarion_shared.topics import Topics

APP = "app"
TOPICS = Topics("unit.")


def tokens(*entries: str) -> list[JsonValue]:
    return [{"token": t, "platform": "apns" if t.startswith("a") else "fcm"} for t in entries]


def with_tokens(*entries: str, email: str = "ann@example.com") -> JsonObject:
    return {"plan": "pro", "@private": {"email": email, "pushTokens": tokens(*entries)}}


def user(uid: str, metadata: JsonObject, updated_at: int = 100, app_id: str = APP) -> User:
    return User(
        app_id=app_id,
        uid=uid,
        name=uid.title(),
        metadata=metadata,
        created_at=1,
        updated_at=updated_at,
    )


def refused(uid: str, *refused_tokens: str, at: int = 200, app_id: str = APP) -> PushTokensInvalid:
    return PushTokensInvalid(app_id=app_id, uid=uid, tokens=list(refused_tokens), occurred_at=at)


def pushed(stored: User | None) -> list[Any]:
    assert stored is not None
    private = stored.metadata["@private"]
    assert isinstance(private, dict)
    listed = private["pushTokens"]
    assert isinstance(listed, list)
    return [entry["token"] if isinstance(entry, dict) else entry for entry in listed]


# ------------------------------------------------------------------------------ the rule


def test_only_the_refused_tokens_go_and_everything_else_stays() -> None:
    metadata = with_tokens("f1", "a2", "f3")
    kept = without_push_tokens(metadata, frozenset({"f1", "f3", "elsewhere"}))
    assert kept == {
        "plan": "pro",
        "@private": {"email": "ann@example.com", "pushTokens": tokens("a2")},
    }
    assert list(kept) == list(metadata)  # the keys keep their order
    assert metadata == with_tokens("f1", "a2", "f3")  # the object read is not changed


def test_a_bare_token_in_the_list_goes_too() -> None:
    metadata: JsonObject = {"@private": {"pushTokens": ["f1", {"token": "f2"}, 7]}}
    assert without_push_tokens(metadata, frozenset({"f1", "f2"})) == {
        "@private": {"pushTokens": [7]}
    }


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"@private": {"email": "ann@example.com"}},
        {"@private": "not an object"},
        {"@private": {"pushTokens": "not a list"}},
        with_tokens("f1", "a2"),
    ],
)
def test_nothing_to_remove_is_none(metadata: JsonObject) -> None:
    assert without_push_tokens(metadata, frozenset({"gone"})) is None


# ------------------------------------------------- the conditional write, both repositories


async def test_a_conditional_update_writes_only_over_the_metadata_read(
    repo: UserRepository,
) -> None:
    app_id = random_ref("app")
    await repo.insert(user("ann", with_tokens("f1", "a2"), app_id=app_id))
    read = await repo.get(app_id, "ann")
    assert read is not None
    # Someone else changes the metadata in between.
    await repo.update(app_id, "ann", UserUpdate(metadata=with_tokens("f1", "a2", "f9")), 150)

    stale = await repo.update(
        app_id, "ann", UserUpdate(metadata=with_tokens("a2")), 200, if_metadata=read.metadata
    )

    assert stale is None
    assert pushed(await repo.get(app_id, "ann")) == ["f1", "a2", "f9"]
    current = await repo.get(app_id, "ann")
    assert current is not None
    written = await repo.update(
        app_id, "ann", UserUpdate(metadata=with_tokens("a2")), 200, if_metadata=current.metadata
    )
    assert written is not None
    assert (pushed(written), written.updated_at) == (["a2"], 200)
    assert await repo.get(app_id, "ann") == written
    missing = await repo.update(app_id, "bob", UserUpdate(metadata={}), 200, if_metadata={})
    assert missing is None


# ------------------------------------------------------------------------ the use case


async def test_refused_tokens_are_removed_and_the_users_announced(
    memory_repo: InMemoryUserRepository,
) -> None:
    await memory_repo.insert(user("ann", with_tokens("f1", "a2", "f3")))
    await memory_repo.insert(user("bob", with_tokens("f4"), updated_at=300))
    changes = RecordingUserChanges()

    await events.apply_user_events(
        memory_repo,
        changes,
        [refused("ann", "f1"), refused("bob", "f4", at=250), refused("ann", "f3", at=210)],
    )

    ann, bob = memory_repo.users[(APP, "ann")], memory_repo.users[(APP, "bob")]
    assert pushed(ann) == ["a2"]
    assert pushed(bob) == []
    # As of the latest refusal of the user, never earlier than the user's last change.
    assert (ann.updated_at, bob.updated_at) == (210, 300)
    assert ann.metadata["plan"] == "pro"
    assert [(c.app_id, c.uids) for c in changes.changes] == [(APP, ["ann", "bob"])]


async def test_a_fetch_of_refusals_reads_each_app_once(
    memory_repo: InMemoryUserRepository,
) -> None:
    uids = [f"user-{i}" for i in range(200)]
    for uid in uids:
        await memory_repo.insert(user(uid, with_tokens(f"f-{uid}", f"a-{uid}")))
        await memory_repo.insert(user(uid, with_tokens(f"f-{uid}"), app_id="other"))
    refusals = [refused(uid, f"f-{uid}") for uid in uids]
    refusals += [refused(uid, f"f-{uid}", app_id="other") for uid in uids]

    await events.apply_user_events(memory_repo, RecordingUserChanges(), refusals)

    assert memory_repo.get_many_calls == 2
    assert all(pushed(memory_repo.users[(APP, uid)]) == [f"a-{uid}"] for uid in uids)
    assert all(pushed(memory_repo.users[("other", uid)]) == [] for uid in uids)


async def test_unknown_users_and_tokens_not_there_change_nothing(
    memory_repo: InMemoryUserRepository,
) -> None:
    stored = user("ann", with_tokens("f1"))
    await memory_repo.insert(stored)
    changes = RecordingUserChanges()

    changed = await events.remove_push_tokens(
        memory_repo, [refused("ann", "gone"), refused("ghost", "f1"), refused("bad uid!", "f1")]
    )
    await events.apply_user_events(memory_repo, changes, [refused("ghost", "f1")])

    assert changed == 0
    assert memory_repo.users[(APP, "ann")] == stored
    assert (APP, "ghost") not in memory_repo.users
    # Named all the same, as a stale event is: it may redeliver an unannounced change.
    assert changes.uids(APP) == ["ghost"]


async def test_a_redelivered_refusal_is_a_no_op(memory_repo: InMemoryUserRepository) -> None:
    await memory_repo.insert(user("ann", with_tokens("f1", "a2")))
    assert await events.remove_push_tokens(memory_repo, [refused("ann", "f1")]) == 1
    after_first = memory_repo.users[(APP, "ann")]

    assert await events.remove_push_tokens(memory_repo, [refused("ann", "f1", at=999)]) == 0
    assert memory_repo.users[(APP, "ann")] == after_first


async def test_each_users_events_keep_their_order_around_a_refusal(
    memory_repo: InMemoryUserRepository,
) -> None:
    """A user's events apply in the order they came, refusals included: a refusal after
    an upsert removes the token it brought; an upsert after a refusal brings it back."""
    fetch: list[AnyUserEvent] = [
        UserUpserted(app_id=APP, uid="ann", metadata=with_tokens("f1", "a2"), occurred_at=100),
        refused("ann", "f1", at=110),
        refused("bob", "f5", at=110),
        UserUpserted(app_id=APP, uid="bob", metadata=with_tokens("f5", "f6"), occurred_at=120),
        PresenceChanged(app_id=APP, uid="ann", status="online", occurred_at=130),
        refused("ann", "a2", at=140),
    ]

    await events.apply_user_events(memory_repo, RecordingUserChanges(), fetch)

    ann, bob = memory_repo.users[(APP, "ann")], memory_repo.users[(APP, "bob")]
    assert (pushed(ann), ann.status) == ([], "online")
    # bob's refusal came before the upsert that created him with f5: nothing to remove.
    assert pushed(bob) == ["f5", "f6"]


class RacingRepository(InMemoryUserRepository):
    """Saves a new token for the user just before the first conditional write lands, as
    a client registering its device at that moment would."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    async def update(
        self,
        app_id: str,
        uid: str,
        changes: UserUpdate,
        at: int,
        if_metadata: JsonObject | None = None,
    ) -> User | None:
        if if_metadata is not None and not self.raced:
            self.raced = True
            await super().update(app_id, uid, UserUpdate(metadata=with_tokens("f1", "f9")), 150)
        return await super().update(app_id, uid, changes, at, if_metadata)


async def test_a_metadata_change_in_between_is_kept_and_the_removal_retried() -> None:
    repo = RacingRepository()
    await repo.insert(user("ann", with_tokens("f1", "a2")))

    assert await events.remove_push_tokens(repo, [refused("ann", "f1")]) == 1

    assert repo.raced
    stored = repo.users[(APP, "ann")]
    assert pushed(stored) == ["f9"]
    assert stored.updated_at == 200


# ------------------------------------------------------------ the subscriber, in memory


@pytest_asyncio.fixture(loop_scope="session")
async def subscribed(
    memory_repo: InMemoryUserRepository,
) -> AsyncIterator[tuple[KafkaBroker, RecordingUserChanges]]:
    broker = make_broker(InfraSettings(), "user-directory-test")
    changes = RecordingUserChanges()
    consumers.register(ConsumerGroups(broker, "user-directory"), TOPICS, memory_repo, changes)
    async with TestKafkaBroker(broker) as test_broker:
        yield test_broker, changes


async def test_the_subscriber_applies_refusals_from_the_user_events_topic(
    memory_repo: InMemoryUserRepository,
    subscribed: tuple[KafkaBroker, RecordingUserChanges],
) -> None:
    broker, changes = subscribed
    await memory_repo.insert(user("ann", with_tokens("f1", "a2")))

    await kafka.publish(broker, TOPICS.users_events, refused("ann", "a2"), f"{APP}:ann")

    assert pushed(memory_repo.users[(APP, "ann")]) == ["f1"]
    assert changes.uids(APP) == ["ann"]


# ------------------------------------------------- the service on the real broker and DB


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(
    make_settings: Callable[[], Settings], mongo_client: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Adapters]:
    settings = make_settings()
    adapters = Adapters.connect(settings)
    app = compose(settings, adapters)
    async with app.router.lifespan_context(app):
        yield adapters
    await mongo_client.drop_database(settings.db_name)


@pytest.mark.integration
async def test_a_refusal_published_on_kafka_removes_the_token_in_the_database(
    running: Adapters, topics: Topics
) -> None:
    app_id = random_ref("app")
    await running.users.insert(user("ann", with_tokens("f1", "a2", "f3"), app_id=app_id))
    event = refused("ann", "f1", "f3", app_id=app_id)

    async def removed() -> User | None:
        # Published again on every poll: a fresh consumer group reads only what comes
        # after it has its partitions, and a refusal applied twice changes nothing.
        await kafka.publish(running.broker, topics.users_events, event, f"{app_id}:ann")
        found = await running.users.get(app_id, "ann")
        return found if found is not None and pushed(found) == ["a2"] else None

    found = await wait_until(removed, timeout_s=60, interval_s=0.5, what="the tokens removed")
    assert found.metadata["@private"] == {"email": "ann@example.com", "pushTokens": tokens("a2")}
    assert found.updated_at == 200
