"""Use cases of webhook endpoints, and the repository port they need."""

from __future__ import annotations

from typing import Protocol

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.lifecycle import Resource
from clarion_shared.logging import get_logger

log = get_logger(__name__)


class EndpointRepository(Resource, Protocol):
    """Where endpoint configurations are kept (Mongo in production, a dict in unit
    tests), keyed ``app_id:webhook_id``. ``start`` prepares the storage (indexes)."""

    async def upsert(self, config: WebhookConfig) -> bool:
        """Store ``config`` unless a newer one is already stored; True when applied."""
        ...

    async def delete(self, key: str) -> None: ...

    async def get(self, key: str) -> WebhookConfig | None: ...

    async def for_app(self, app_id: str) -> list[WebhookConfig]: ...


async def apply_webhook_config(
    endpoints: EndpointRepository, key: str, config: WebhookConfig | None
) -> None:
    """Apply one record of the compacted configuration topic (None: a tombstone)."""
    if config is None:
        await endpoints.delete(key)
        log.info("webhooks.endpoint_deleted", key=key)
        return
    applied = await endpoints.upsert(config)
    log.info("webhooks.endpoint_configured", key=key, applied=applied, enabled=config.enabled)
