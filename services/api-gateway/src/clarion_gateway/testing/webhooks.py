"""In-memory stand-ins for the webhook ports, with the adapters' behaviour
(``tests/test_gateway_webhooks_repository.py`` runs the same cases on the Mongo one)."""

from __future__ import annotations

from dataclasses import dataclass

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.contracts.webhook_state import WebhookDisabled

from ..kafka import publishing
from ..webhooks.consumers import StateHandler
from ..webhooks.domain import Tombstone, Version, Webhook


@dataclass(frozen=True)
class _Stored:
    version: Version
    published: bool = False


class MemoryWebhooks:
    """``webhooks.service.WebhookRepository`` on a dict (``docs``: key → stored)."""

    def __init__(self) -> None:
        self.docs: dict[str, _Stored] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert(self, webhook: Webhook) -> bool:
        if webhook.key in self.docs:
            return False
        self.docs[webhook.key] = _Stored(webhook)
        return True

    async def stored(self, app_id: str, webhook_id: str) -> Version | None:
        found = self.docs.get(f"{app_id}:{webhook_id}")
        return found.version if found else None

    async def list_for_app(self, app_id: str) -> list[Webhook]:
        return [
            s.version
            for s in self.docs.values()
            if isinstance(s.version, Webhook) and s.version.app_id == app_id
        ]

    async def save(self, version: Version, previous_updated_at: int) -> bool:
        current = self.docs.get(version.key)
        if (
            current is None
            or not isinstance(current.version, Webhook)
            or current.version.updated_at != previous_updated_at
        ):
            return False
        self.docs[version.key] = _Stored(version)
        return True

    async def unpublished(self) -> list[Version]:
        return [s.version for s in self.docs.values() if not s.published]

    async def mark_published(self, version: Version) -> bool:
        current = self.docs.get(version.key)
        if (
            current is None
            or type(current.version) is not type(version)
            or current.version.updated_at != version.updated_at
        ):
            return False
        if isinstance(version, Tombstone):
            del self.docs[version.key]
        else:
            self.docs[version.key] = _Stored(current.version, published=True)
        return True


class RecordingWebhookConfigs:
    """Keeps what would be published on the configuration topic, in order: ``records``
    holds ``(key, config)`` with None for a tombstone. ``fail_with`` makes every publish
    raise it, as the Kafka adapter would (a broker error becomes ``PublishFailed``)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, WebhookConfig | None]] = []
        self.fail_with: Exception | None = None

    def _fail(self) -> None:
        with publishing():
            if self.fail_with is not None:
                raise self.fail_with

    async def webhook_config(self, config: WebhookConfig) -> None:
        self._fail()
        self.records.append((config.key, config))

    async def webhook_deleted(self, key: str) -> None:
        self._fail()
        self.records.append((key, None))

    def latest(self, key: str) -> WebhookConfig | None:
        """The last record of ``key`` (what a compacted topic keeps)."""
        found = [config for k, config in self.records if k == key]
        assert found, f"nothing published for {key}"
        return found[-1]


class MemoryWebhookStates:
    """``webhooks.consumers.WebhookStates`` in one process: ``deliver`` hands changes to
    the subscribed handler, as the Kafka consumer does with each record."""

    def __init__(self) -> None:
        self.handler: StateHandler | None = None

    def subscribe(self, handle: StateHandler) -> None:
        self.handler = handle

    async def ready(self) -> bool:
        return True

    async def deliver(self, *events: WebhookDisabled) -> None:
        assert self.handler is not None, "nothing subscribed"
        for event in events:
            await self.handler(event)
