"""One repository suite, run against the in-memory fakes and against Mongo (FerretDB).

The fakes stand in for Mongo in every unit test; this suite keeps them honest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_gateway.apps.domain import App
from clarion_gateway.apps.mongo import MongoApps
from clarion_gateway.apps.service import AppRepository
from clarion_gateway.channels.domain import Channel
from clarion_gateway.channels.mongo import MongoChannels
from clarion_gateway.channels.service import ChannelRepository
from clarion_gateway.idempotency.domain import StoredResponse
from clarion_gateway.idempotency.mongo import MongoIdempotency
from clarion_gateway.idempotency.service import IdempotencyRepository
from clarion_gateway.templates.domain import Template, TemplateChannel, VariableDef
from clarion_gateway.templates.mongo import MongoTemplates
from clarion_gateway.templates.service import TemplateRepository
from clarion_gateway.templates.versions import new_version, set_status
from clarion_gateway.testing import MemoryStore

MongoTarget = tuple[AsyncMongoClient[dict[str, Any]], str] | None


@dataclass(frozen=True)
class Store:
    """The repositories of one database, fake or real."""

    apps: AppRepository
    channels: ChannelRepository
    templates: TemplateRepository
    idempotency: IdempotencyRepository

    @classmethod
    def memory(cls) -> Store:
        fakes = MemoryStore()
        return cls(fakes.apps, fakes.channels, fakes.templates, fakes.idempotency)

    @classmethod
    def mongo(cls, client: AsyncMongoClient[dict[str, Any]], db_name: str) -> Store:
        db = client[db_name]
        channels = MongoChannels(db)
        return cls(
            MongoApps(db, channels.exists), channels, MongoTemplates(db), MongoIdempotency(db)
        )


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> MongoTarget:
    # Resolved in a plain (sync) fixture: the infra fixture cannot start from inside
    # the running event loop of an async one.
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def store(target: MongoTarget) -> AsyncIterator[Store]:
    if target is None:
        yield Store.memory()
        return
    client, db_name = target
    store = Store.mongo(client, db_name)
    for repository in (store.apps, store.channels, store.templates, store.idempotency):
        await repository.start()  # the indexes
    yield store
    await client.drop_database(db_name)


def _channel(app_id: str, channel_id: str, **values: Any) -> Channel:
    fields: dict[str, Any] = {
        "name": channel_id,
        "type": "in_app",
        "enabled": True,
        "metadata": {},
        "created_at": 1,
        "updated_at": 1,
    }
    fields.update(values)
    return Channel(app_id=app_id, channel_id=channel_id, **fields)


def _template(app_id: str, template_id: str) -> Template:
    channels = (
        TemplateChannel("in_app", "feed", {"title": "Hi {{name}}", "body": "b"}),
        TemplateChannel("email", None, {"subject": "s", "html": "<b>{{name}}</b>"}),
    )
    schema = (VariableDef("name", "string", "Name", True, "friend"),)
    version = new_version(1, channels, schema, now=10)
    return Template(
        app_id=app_id,
        template_id=template_id,
        name="T",
        versions=(version,),
        created_at=10,
        updated_at=10,
        template_category="Marketing",
        label="L",
        alternative_text="alt",
        tags=("a", "b"),
    )


async def test_apps_and_keys(store: Store) -> None:
    app_id = random_ref("app")
    app = App(app_id, "Shop", 5)
    assert await store.apps.insert(app, "hash-1" + app_id)
    assert await store.apps.app_of_key("hash-1" + app_id) == app_id
    assert not await store.apps.insert(app, "hash-2" + app_id)  # app id taken
    assert not await store.apps.insert(App(app_id + "x", "S", 5), "hash-1" + app_id)
    assert await store.apps.app_of_key("hash-2" + app_id) is None
    # A failed key insert leaves no app behind.
    assert await store.apps.insert(App(app_id + "x", "S", 5), "hash-3" + app_id)
    await store.apps.ensure(app, "hash-1" + app_id)
    await store.apps.ensure(App(app_id + "y", "Dev", 5), "hash-4" + app_id)
    await store.apps.ensure(App(app_id + "y", "Dev", 5), "hash-4" + app_id)
    assert await store.apps.app_of_key("hash-4" + app_id) == app_id + "y"


async def test_channel_slots(store: Store) -> None:
    app_id = random_ref("app")
    await store.apps.insert(App(app_id, "Shop", 5), "h" + app_id)
    assert await store.apps.claim_channel_slot(app_id, "push", "p1")
    assert await store.apps.claim_channel_slot(app_id, "push", "p1")  # same holder again
    # p1 was claimed but never created (a crash): another channel may take the slot.
    assert await store.apps.claim_channel_slot(app_id, "push", "p2")
    await store.channels.insert(_channel(app_id, "p2", type="push"))
    assert not await store.apps.claim_channel_slot(app_id, "push", "p3")
    await store.apps.release_channel_slot(app_id, "push", "p3")  # not the holder: no-op
    assert not await store.apps.claim_channel_slot(app_id, "push", "p3")
    await store.apps.release_channel_slot(app_id, "push", "p2")
    assert await store.apps.claim_channel_slot(app_id, "push", "p3")
    # Slots of an app without an app document (older data) work too.
    assert await store.apps.claim_channel_slot(random_ref("app"), "push", "p1")


async def test_channels(store: Store) -> None:
    app_id = random_ref("app")
    metadata = {"smtp.host": "h", "$weird": 1, "nested": {"a.b": [1, {"c": None}]}}
    first = _channel(app_id, "feed", metadata=metadata, created_at=2)
    assert await store.channels.insert(first)
    assert not await store.channels.insert(first)
    await store.channels.insert(_channel(app_id, "texts", type="sms", created_at=1))
    await store.channels.insert(_channel(random_ref("app"), "feed"))
    assert await store.channels.get(app_id, "feed") == first
    assert await store.channels.get(app_id, "nope") is None
    listed = await store.channels.list_for_app(app_id)
    assert sorted(c.channel_id for c in listed) == ["feed", "texts"]
    assert [c.channel_id for c in await store.channels.of_type(app_id, "sms")] == ["texts"]
    changed = replace(first, enabled=False, metadata={"x": "y"}, updated_at=9)
    await store.channels.replace(changed)
    assert await store.channels.get(app_id, "feed") == changed


async def test_templates(store: Store) -> None:
    app_id = random_ref("app")
    template = _template(app_id, "welcome")
    assert await store.templates.insert(template)
    assert not await store.templates.insert(template)
    await store.templates.insert(_template(random_ref("app"), "welcome"))
    loaded = await store.templates.get(app_id, "welcome")
    assert loaded == template
    assert [t.template_id for t in await store.templates.list_for_app(app_id)] == ["welcome"]
    approved = set_status(template, "approved", now=20)
    assert await store.templates.replace(approved)
    # A second writer that read the old revision loses.
    assert not await store.templates.replace(set_status(template, "archived", now=21))
    reloaded = await store.templates.get(app_id, "welcome")
    assert reloaded is not None
    assert reloaded.revision == template.revision + 1
    assert replace(reloaded, revision=0) == replace(approved, revision=0)
    assert await store.templates.get(app_id, "nope") is None


async def test_idempotency(store: Store) -> None:
    key = f"{random_ref('app')}:k1"
    assert await store.idempotency.begin(key, "fp", now=100, ttl_s=60, lease_s=30) is None
    running = await store.idempotency.begin(key, "fp", now=101, ttl_s=60, lease_s=30)
    assert running is not None
    assert (running.fingerprint, running.response) == ("fp", None)
    await store.idempotency.finish(key, StoredResponse(201, b'{"data":{}}'))
    done = await store.idempotency.begin(key, "other", now=102, ttl_s=60, lease_s=30)
    assert done is not None
    assert (done.fingerprint, done.response) == ("fp", StoredResponse(201, b'{"data":{}}'))
    # Expired: the key is free again.
    assert await store.idempotency.begin(key, "new", now=200, ttl_s=60, lease_s=30) is None
    await store.idempotency.release(key)
    assert await store.idempotency.begin(key, "again", now=201, ttl_s=60, lease_s=30) is None


async def test_an_abandoned_idempotency_claim_is_taken_over_after_its_lease(
    store: Store,
) -> None:
    key = f"{random_ref('app')}:k2"
    assert await store.idempotency.begin(key, "fp", now=100, ttl_s=3600, lease_s=30) is None
    # Within the lease the claim holds: its request may still be running.
    running = await store.idempotency.begin(key, "fp", now=129, ttl_s=3600, lease_s=30)
    assert running is not None
    assert running.response is None
    # After it, nobody answered: the process that claimed it is gone.
    assert await store.idempotency.begin(key, "fp", now=130, ttl_s=3600, lease_s=30) is None
    again = await store.idempotency.begin(key, "fp", now=131, ttl_s=3600, lease_s=30)
    assert again is not None
    assert again.created_at == 130
    # A finished record is never abandoned: it answers until it expires.
    await store.idempotency.finish(key, StoredResponse(200, b"{}"))
    done = await store.idempotency.begin(key, "fp", now=1000, ttl_s=3600, lease_s=30)
    assert done is not None
    assert done.response == StoredResponse(200, b"{}")


@pytest.mark.integration
async def test_idempotency_records_carry_a_date_for_mongodbs_ttl_monitor(
    mongo_client: AsyncMongoClient[dict[str, Any]], test_db_name: str
) -> None:
    """MongoDB's TTL index only expires documents whose indexed field is a date."""
    idempotency = MongoIdempotency(mongo_client[test_db_name])
    try:
        await idempotency.begin("app:k", "fp", now=1_700_000_000, ttl_s=60, lease_s=30)
        doc = await mongo_client[test_db_name]["idempotency"].find_one({"_id": "app:k"})
        assert doc is not None
        expire_at = doc["expire_at"]
        assert isinstance(expire_at, datetime)
        assert expire_at.replace(tzinfo=UTC).timestamp() == 1_700_000_060
    finally:
        await mongo_client.drop_database(test_db_name)
