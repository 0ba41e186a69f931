"""In-memory fakes of the webhook-emitter's ports, with the adapters' behaviour, for
tests. ``InMemoryEndpointRepository`` is held to the same test suite as the Mongo
repository. Production code never imports this module."""

from __future__ import annotations

from clarion_shared.contracts.config_webhooks import WebhookConfig


class InMemoryEndpointRepository:
    """``EndpointRepository`` in a dict, with the semantics of the Mongo repository."""

    def __init__(self) -> None:
        self.endpoints: dict[str, WebhookConfig] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def upsert(self, config: WebhookConfig) -> bool:
        stored = self.endpoints.get(config.key)
        if stored is not None and stored.updated_at > config.updated_at:
            return False
        self.endpoints[config.key] = config
        return True

    async def delete(self, key: str) -> None:
        self.endpoints.pop(key, None)

    async def get(self, key: str) -> WebhookConfig | None:
        return self.endpoints.get(key)

    async def for_app(self, app_id: str) -> list[WebhookConfig]:
        return [config for config in self.endpoints.values() if config.app_id == app_id]
