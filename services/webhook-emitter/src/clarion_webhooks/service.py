"""Use cases of the webhook-emitter."""

from __future__ import annotations

from typing import Protocol

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.logging import get_logger

log = get_logger(__name__)


class Endpoints(Protocol):
    async def upsert(self, config: WebhookConfig) -> bool: ...
    async def delete(self, key: str) -> None: ...


async def apply_webhook_config(
    endpoints: Endpoints, key: str, config: WebhookConfig | None
) -> None:
    """Apply one record of the compacted configuration topic (None: a tombstone)."""
    if config is None:
        await endpoints.delete(key)
        log.info("webhooks.endpoint_deleted", key=key)
        return
    applied = await endpoints.upsert(config)
    log.info("webhooks.endpoint_configured", key=key, applied=applied, enabled=config.enabled)
