"""The service on the real broker and database: lookups answered over Kafka, user
events applied. The service runs with its lifespan, as ``python -m`` would run it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref, wait_until
from clarion_devtools.infra import InfraAddresses
from clarion_directory.app import Adapters, Settings, compose
from clarion_directory.users.domain import User
from clarion_directory.users.models import UserUpdate
from clarion_directory.users.service import Upsert
from clarion_shared import kafka
from clarion_shared.contracts.directory_lookups import LookupUsers
from clarion_shared.contracts.directory_replies import UsersResolved
from clarion_shared.contracts.users_events import PresenceChanged, UserUpserted
from clarion_shared.ids import now
from clarion_shared.rpc import KafkaRequester
from clarion_shared.topics import Topics

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(
    make_settings: Callable[[], Settings], mongo_client: AsyncMongoClient[dict[str, Any]]
) -> AsyncIterator[Adapters]:
    """The adapters of a running directory (built as ``app.build`` does)."""
    settings = make_settings()
    adapters = Adapters.connect(settings)
    app = compose(settings, adapters)
    async with app.router.lifespan_context(app):
        yield adapters
    await mongo_client.drop_database(settings.db_name)


async def test_a_lookup_is_answered_on_the_reply_topic(
    running: Adapters, infra: InfraAddresses, topics: Topics
) -> None:
    repo = running.users
    app_id = random_ref("app")
    uids = [f"user{i:04d}" for i in range(1000)]
    stored = [uid for i, uid in enumerate(uids) if i % 5]
    email = {"@private": {"email": "x@example.com"}}
    await repo.upsert_many(
        app_id,
        [Upsert(uid=uid, changes=UserUpdate(name=uid, metadata=email), at=now()) for uid in stored],
    )
    requester: KafkaRequester[UsersResolved] = KafkaRequester(
        infra.kafka_bootstrap_servers,
        topics.directory_replies,
        parse=UsersResolved.model_validate_json,
        request_id_of=lambda reply: reply.request_id,
    )
    await requester.start()
    try:

        async def ask() -> UsersResolved | None:
            async def send(request_id: str) -> None:
                lookup = LookupUsers(
                    request_id=request_id,
                    reply_topic=topics.directory_replies,
                    app_id=app_id,
                    uids=uids,
                )
                await kafka.publish(running.broker, topics.directory_lookups, lookup, app_id)

            try:
                reply = await requester.request(send, timeout_s=5)
            except TimeoutError:
                return None  # published before the new consumer group had its partitions
            # Another directory on the same broker answers from its own database.
            return reply if reply.users else None

        reply = await wait_until(ask, timeout_s=60, what="a lookup reply")
        started = time.perf_counter()
        again = await wait_until(ask, timeout_s=30, what="a second lookup reply")
        round_trip_ms = (time.perf_counter() - started) * 1000
    finally:
        await requester.stop()
    for answer in (reply, again):
        assert answer.app_id == app_id
        assert [u.uid for u in answer.users] == stored
        assert answer.missing == [uid for i, uid in enumerate(uids) if i % 5 == 0]
        assert answer.users[0].metadata == email
    print(f"1000-uid lookup round trip: {round_trip_ms:.0f} ms")


async def test_user_events_are_applied(running: Adapters, topics: Topics) -> None:
    repo = running.users
    app_id = random_ref("app")
    events: list[UserUpserted | PresenceChanged] = [
        UserUpserted(app_id=app_id, uid="eve", name="Eve", tags=["chat"], occurred_at=1000),
        PresenceChanged(app_id=app_id, uid="eve", status="online", occurred_at=1010),
        PresenceChanged(app_id=app_id, uid="eve", status="offline", occurred_at=1005),
    ]

    async def applied() -> User | None:
        # Published again on every poll: the events are idempotent, and a fresh consumer
        # group only reads what is published after it has its partitions.
        for event in events:
            await kafka.publish(running.broker, topics.users_events, event, f"{app_id}:{event.uid}")
        user = await repo.get(app_id, "eve")
        return user if user is not None and user.status == "online" else None

    user = await wait_until(applied, timeout_s=60, interval_s=0.5, what="the events applied")
    assert (user.name, user.tags, user.last_active_at) == ("Eve", ["chat"], 1010)
    assert (user.created_at, user.updated_at) == (1000, 1000)
