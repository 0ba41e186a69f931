"""Webhook endpoints: the use cases and the ports they need.

Every write is stored marked unpublished, then its configuration (secrets included, the
topic is internal) goes to the compacted ``clarion.config.webhooks`` topic, which the
webhook-emitter reads, and the mark is cleared (``outbox``). A publish that fails leaves
the write in place and the answer a success: the republisher publishes what is still
marked, so a broker away or a gateway that dies between the two never leaves the
emitter behind for good.

At most 25 webhooks per app: counted before the insert, and again after it. Two
creates racing for the last place may both see the other and both be refused (the
client tries again), but more than 25 never stay: the last insert's count sees them
all, and takes itself back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import WebhookDisabled
from clarion_shared.ids import new_id
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger
from clarion_shared.webhook_signing import new_secret

from ..paging import Page, PageOf
from .domain import (
    MAX_WEBHOOKS_PER_APP,
    NewWebhook,
    Tombstone,
    TooManyWebhooks,
    Version,
    Webhook,
    WebhookBusy,
    WebhookChanges,
    WebhookNotFound,
    changed,
    disabled,
    new_webhook,
    next_version,
)

log = get_logger(__name__)

SAVE_ATTEMPTS = 3


class WebhookRepository(Resource, Protocol):
    """Webhooks by ``{app_id}:{webhook_id}``, with the outbox of their configurations:
    every write is stored unpublished until ``mark_published``."""

    async def insert(self, webhook: Webhook) -> bool:
        """Store a new webhook (unpublished); False when its id is taken."""
        ...

    async def stored(self, app_id: str, webhook_id: str) -> Version | None:
        """The webhook, or its deletion until that is published; None: neither."""
        ...

    async def list_for_app(self, app_id: str) -> list[Webhook]:
        """The app's webhooks (deleted ones left out)."""
        ...

    async def save(self, version: Version, previous_updated_at: int) -> bool:
        """Replace the stored webhook with ``version`` (unpublished) while it is still
        the one of ``previous_updated_at``; False when it changed or is gone."""
        ...

    async def unpublished(self) -> list[Version]:
        """Every version stored but not published yet."""
        ...

    async def mark_published(self, version: Version) -> bool:
        """``version`` is published: cleared from the outbox (a deletion: forgotten),
        while it is still the one stored; False when it changed since."""
        ...


class ConfigPublisher(Protocol):
    async def webhook_config(self, config: WebhookConfig) -> None:
        """Publish a webhook's configuration; raises ``PublishFailed``."""
        ...

    async def webhook_deleted(self, key: str) -> None:
        """Publish the tombstone of ``app_id:webhook_id``; raises ``PublishFailed``."""
        ...


Propagate = Callable[[Version], Awaitable[None]]
"""Publishes a version just written (``outbox.after_write``)."""


def now_ms() -> int:
    """The clock of webhook versions: Unix milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class WebhookRules:
    """What the deployment decides: private addresses allowed (local receivers), and
    how long a rotated secret keeps signing."""

    allow_private: bool = False
    secret_overlap_s: int = 24 * 3600


async def create_webhook(
    webhooks: WebhookRepository,
    propagate: Propagate,
    app_id: str,
    new: NewWebhook,
    now_ms: int,
    rules: WebhookRules,
) -> Webhook:
    """The new webhook, with its signing secret (the only time it is shown)."""
    webhook = new_webhook(app_id, new_id("wh_"), new, new_secret(), now_ms, rules.allow_private)
    if len(await webhooks.list_for_app(app_id)) >= MAX_WEBHOOKS_PER_APP:
        raise TooManyWebhooks()
    if not await webhooks.insert(webhook):
        raise WebhookBusy()  # a random id taken: never seen, but never overwritten
    if len(await webhooks.list_for_app(app_id)) > MAX_WEBHOOKS_PER_APP:
        # Others were created at the same time: this one takes itself back.
        taken_back = Tombstone(app_id, webhook.webhook_id, next_version(webhook.updated_at, now_ms))
        if await webhooks.save(taken_back, webhook.updated_at):
            await propagate(taken_back)
        raise TooManyWebhooks()
    log.info("webhook.created", app_id=app_id, webhook_id=webhook.webhook_id)
    await propagate(webhook)
    return webhook


async def get_webhook(webhooks: WebhookRepository, app_id: str, webhook_id: str) -> Webhook:
    found = await webhooks.stored(app_id, webhook_id)
    if not isinstance(found, Webhook):
        raise WebhookNotFound()
    return found


async def list_webhooks(webhooks: WebhookRepository, app_id: str, page: Page) -> PageOf[Webhook]:
    """Oldest first (an app has at most 25)."""
    found = sorted(await webhooks.list_for_app(app_id), key=lambda w: (w.created_at, w.webhook_id))
    return PageOf(page.slice(found), len(found), page)


async def _saved(attempt: Callable[[], Awaitable[Version | None]]) -> Version | None:
    """``attempt`` again while another write wins the save (``WebhookBusy``)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(SAVE_ATTEMPTS),
        retry=retry_if_exception_type(WebhookBusy),
        reraise=True,
    )
    return await retrying(attempt)


async def update_webhook(
    webhooks: WebhookRepository,
    propagate: Propagate,
    app_id: str,
    webhook_id: str,
    changes: WebhookChanges,
    now_ms: int,
    rules: WebhookRules,
) -> Webhook:
    """The webhook changed; a rotation's new secret is in ``signing_secret``."""

    async def attempt() -> Webhook:
        current = await get_webhook(webhooks, app_id, webhook_id)
        overlap_ms = rules.secret_overlap_s * 1000
        updated = changed(current, changes, now_ms, rules.allow_private, new_secret(), overlap_ms)
        if not await webhooks.save(updated, current.updated_at):
            raise WebhookBusy()
        return updated

    updated = await _saved(attempt)
    assert isinstance(updated, Webhook)
    log.info(
        "webhook.updated",
        app_id=app_id,
        webhook_id=webhook_id,
        enabled=updated.enabled,
        rotated=changes.rotate_secret,
    )
    await propagate(updated)
    return updated


async def delete_webhook(
    webhooks: WebhookRepository, propagate: Propagate, app_id: str, webhook_id: str, now_ms: int
) -> None:
    async def attempt() -> Tombstone:
        current = await get_webhook(webhooks, app_id, webhook_id)
        deleted = Tombstone(app_id, webhook_id, next_version(current.updated_at, now_ms))
        if not await webhooks.save(deleted, current.updated_at):
            raise WebhookBusy()
        return deleted

    deleted = await _saved(attempt)
    assert deleted is not None
    log.info("webhook.deleted", app_id=app_id, webhook_id=webhook_id)
    await propagate(deleted)


async def apply_disabled(
    webhooks: WebhookRepository, propagate: Propagate, event: WebhookDisabled, now_ms: int
) -> Webhook | None:
    """The emitter disabled an endpoint (410, or failing for too long): the gateway,
    which owns the configuration, applies it and publishes it. Ignored when the
    endpoint changed since the configuration the emitter judged, or is disabled or
    deleted already (a redelivered event)."""

    async def attempt() -> Webhook | None:
        current = await webhooks.stored(event.app_id, event.webhook_id)
        if not isinstance(current, Webhook):
            return None
        updated = disabled(current, event, now_ms)
        if updated is None:
            return None
        if not await webhooks.save(updated, current.updated_at):
            raise WebhookBusy()
        return updated

    updated = await _saved(attempt)
    if not isinstance(updated, Webhook):
        log.info(
            "webhook.disable_ignored",
            app_id=event.app_id,
            webhook_id=event.webhook_id,
            config_updated_at=event.config_updated_at,
        )
        return None
    log.warning(
        "webhook.disabled",
        app_id=event.app_id,
        webhook_id=event.webhook_id,
        reason=event.reason,
        detail=event.detail,
    )
    await propagate(updated)
    return updated
