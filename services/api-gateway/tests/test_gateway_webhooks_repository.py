"""One suite for the webhook repository, run against the in-memory fake and against
Mongo (FerretDB): the writes, the conditional saves and the outbox behave alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from clarion_devtools.helpers import random_ref
from clarion_gateway.testing import MemoryWebhooks
from clarion_gateway.webhooks.domain import NewWebhook, Tombstone, Webhook, new_webhook
from clarion_gateway.webhooks.mongo import MongoWebhooks
from clarion_gateway.webhooks.service import WebhookRepository

MongoTarget = tuple[AsyncMongoClient[dict[str, Any]], str] | None
NOW_MS = 1_800_000_000_000


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> MongoTarget:
    # Resolved in a plain (sync) fixture: the infra fixture cannot start from inside
    # the running event loop of an async one.
    if request.param == "memory":
        return None
    return request.getfixturevalue("mongo_client"), request.getfixturevalue("test_db_name")


@pytest_asyncio.fixture
async def webhooks(target: MongoTarget) -> AsyncIterator[WebhookRepository]:
    if target is None:
        yield MemoryWebhooks()
        return
    client, db_name = target
    repository = MongoWebhooks(client[db_name])
    await repository.start()
    yield repository
    await client.drop_database(db_name)


def _webhook(app_id: str, webhook_id: str | None = None) -> Webhook:
    new = NewWebhook(
        name="Orders",
        url="https://hooks.example.com/in",
        triggers=["after_batch_completed", "after_feed_item_sent"],
        use_basic_auth=True,
        username="ann",
        password="pw",
    )
    webhook = new_webhook(app_id, webhook_id or random_ref("wh"), new, "whsec_a", NOW_MS, False)
    return replace(
        webhook,
        previous_signing_secret="whsec_b",
        previous_secret_expires_at=NOW_MS + 1000,
        disabled_reason=None,
    )


async def test_a_webhook_is_stored_whole_once_per_id(webhooks: WebhookRepository) -> None:
    app_id = random_ref("app")
    webhook = _webhook(app_id)
    assert await webhooks.insert(webhook)
    assert not await webhooks.insert(replace(webhook, name="again"))
    assert await webhooks.stored(app_id, webhook.webhook_id) == webhook
    assert await webhooks.stored(app_id, "wh_none") is None
    assert await webhooks.stored(random_ref("app"), webhook.webhook_id) is None


async def test_the_list_is_the_app_s_webhooks_without_the_deleted(
    webhooks: WebhookRepository,
) -> None:
    app_id = random_ref("app")
    kept, deleted = _webhook(app_id), _webhook(app_id)
    for webhook in (kept, deleted, _webhook(random_ref("other"))):
        await webhooks.insert(webhook)
    tombstone = Tombstone(app_id, deleted.webhook_id, deleted.updated_at + 1)
    assert await webhooks.save(tombstone, deleted.updated_at)
    assert await webhooks.list_for_app(app_id) == [kept]
    assert await webhooks.stored(app_id, deleted.webhook_id) == tombstone


async def test_a_save_needs_the_version_it_was_made_from(webhooks: WebhookRepository) -> None:
    app_id = random_ref("app")
    webhook = _webhook(app_id)
    await webhooks.insert(webhook)
    renamed = replace(webhook, name="Renamed", updated_at=webhook.updated_at + 1)
    assert await webhooks.save(renamed, webhook.updated_at)
    other = replace(webhook, name="Lost", updated_at=webhook.updated_at + 2)
    assert not await webhooks.save(other, webhook.updated_at)  # made from an older one
    assert await webhooks.stored(app_id, webhook.webhook_id) == renamed
    tombstone = Tombstone(app_id, webhook.webhook_id, renamed.updated_at + 1)
    assert await webhooks.save(tombstone, renamed.updated_at)
    # A deletion is final: nothing is saved over it.
    assert not await webhooks.save(replace(renamed, updated_at=5), tombstone.updated_at)
    ghost = _webhook(app_id)
    assert not await webhooks.save(ghost, ghost.updated_at)  # never stored


async def test_the_outbox_holds_each_write_until_that_version_is_published(
    webhooks: WebhookRepository,
) -> None:
    app_id = random_ref("app")
    webhook = _webhook(app_id)
    await webhooks.insert(webhook)

    async def pending() -> list[Any]:
        return [v for v in await webhooks.unpublished() if v.app_id == app_id]

    assert await pending() == [webhook]
    renamed = replace(webhook, name="Renamed", updated_at=webhook.updated_at + 1)
    assert await webhooks.save(renamed, webhook.updated_at)
    assert not await webhooks.mark_published(webhook)  # an older version: still pending
    assert await pending() == [renamed]
    assert await webhooks.mark_published(renamed)
    assert await webhooks.mark_published(renamed)  # again: still the one stored
    assert await pending() == []
    tombstone = Tombstone(app_id, webhook.webhook_id, renamed.updated_at + 1)
    assert await webhooks.save(tombstone, renamed.updated_at)
    assert await pending() == [tombstone]
    assert not await webhooks.mark_published(renamed)
    assert await webhooks.mark_published(tombstone)  # published: forgotten
    assert await webhooks.stored(app_id, webhook.webhook_id) is None
    assert not await webhooks.mark_published(tombstone)
    assert await pending() == []
