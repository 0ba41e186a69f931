"""Use cases of webhook endpoints, and the repository port they need."""

from __future__ import annotations

import time
from collections.abc import Callable
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

    async def mark_disabled(self, key: str, updated_at: int, reason: str) -> bool:
        """Disable the stored configuration while it is still the one of ``updated_at``."""
        ...

    async def failing_since(self, key: str) -> int | None: ...

    async def mark_failing(self, key: str, since: int) -> int:
        """Record failing since ``since`` unless recorded already; the time recorded."""
        ...

    async def mark_healthy(self, key: str) -> None: ...


async def apply_webhook_config(
    endpoints: EndpointRepository,
    key: str,
    config: WebhookConfig | None,
    cache: EndpointCache | None = None,
) -> None:
    """Apply one record of the compacted configuration topic (None: a tombstone)."""
    if cache is not None:
        cache.forget(key.split(":", 1)[0])
    if config is None:
        await endpoints.delete(key)
        log.info("webhooks.endpoint_deleted", key=key)
        return
    applied = await endpoints.upsert(config)
    log.info("webhooks.endpoint_configured", key=key, applied=applied, enabled=config.enabled)


class EndpointCache:
    """The endpoints the status consumer and the delivery lanes read, per app, kept for
    ``ttl_s`` (a configuration change reaches every emitter process within that time;
    this process's own config consumer drops the app at once)."""

    def __init__(
        self,
        endpoints: EndpointRepository,
        ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoints = endpoints
        self._ttl_s = ttl_s
        self._clock = clock
        self._apps: dict[str, tuple[float, dict[str, WebhookConfig]]] = {}

    async def of_app(self, app_id: str) -> dict[str, WebhookConfig]:
        """The app's endpoints by webhook id."""
        cached = self._apps.get(app_id)
        if cached is not None and self._clock() - cached[0] < self._ttl_s:
            return cached[1]
        found = {c.webhook_id: c for c in await self._endpoints.for_app(app_id)}
        self._apps[app_id] = (self._clock(), found)
        return found

    async def get(self, app_id: str, webhook_id: str) -> WebhookConfig | None:
        return (await self.of_app(app_id)).get(webhook_id)

    def forget(self, app_id: str) -> None:
        self._apps.pop(app_id, None)


class EndpointHealth:
    """Since when each endpoint fails (stored, so that every process and a restart see
    the same period), with this process's view kept in memory: a write only when an
    endpoint starts failing or recovers."""

    def __init__(self, endpoints: EndpointRepository) -> None:
        self._endpoints = endpoints
        self._since: dict[str, int | None] = {}

    async def observe(self, key: str, failed: bool, now: int) -> int | None:
        """Note an attempt's result; the time the endpoint fails since (None: healthy)."""
        if key not in self._since:
            self._since[key] = await self._endpoints.failing_since(key)
        since = self._since[key]
        if failed and since is None:
            since = await self._endpoints.mark_failing(key, now)
        elif not failed and since is not None:
            await self._endpoints.mark_healthy(key)
            since = None
        self._since[key] = since
        return since

    def forget(self, key: str) -> None:
        self._since.pop(key, None)
