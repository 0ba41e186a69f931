"""The ``webhook_endpoints`` collection: endpoint configuration learnt from Kafka, the
only place it is named.

One document per endpoint, ``_id = "{app_id}:{webhook_id}"``, the configuration's
fields as they are (snake_case). ``webhook_endpoint_health`` holds, per endpoint that
is failing, since when (Unix seconds): written when it starts failing, removed at its
next success.
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.mongo import Document

COLLECTION = "webhook_endpoints"
HEALTH = "webhook_endpoint_health"


class MongoEndpointRepository:
    """Endpoint configurations in MongoDB (or FerretDB). Started (indexes created)
    before use."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._endpoints = db[COLLECTION]
        self._health = db[HEALTH]

    async def start(self) -> None:
        await self._endpoints.create_index("app_id")

    async def stop(self) -> None:
        """Nothing to release: the client is closed by whoever made it."""

    async def upsert(self, config: WebhookConfig) -> bool:
        """Store ``config`` unless a newer one is already stored; True when applied."""
        doc = config.model_dump()
        result = await self._endpoints.update_one(
            {"_id": config.key, "updated_at": {"$lte": config.updated_at}},
            {"$set": doc},
        )
        if result.matched_count:
            return True
        if await self._endpoints.find_one({"_id": config.key}, {"_id": 1}):
            return False
        await self._endpoints.update_one({"_id": config.key}, {"$setOnInsert": doc}, upsert=True)
        return True

    async def delete(self, key: str) -> None:
        await self._endpoints.delete_one({"_id": key})
        await self._health.delete_one({"_id": key})

    async def mark_disabled(self, key: str, updated_at: int, reason: str) -> bool:
        """Disable the endpoint's stored configuration while it is still the one of
        ``updated_at`` (the gateway's next configuration replaces it)."""
        result = await self._endpoints.update_one(
            {"_id": key, "updated_at": updated_at},
            {"$set": {"enabled": False, "disabled_reason": reason}},
        )
        return bool(result.modified_count)

    async def failing_since(self, key: str) -> int | None:
        doc = await self._health.find_one({"_id": key})
        return int(doc["since"]) if doc else None

    async def mark_failing(self, key: str, since: int) -> int:
        """Record that the endpoint fails since ``since`` unless it is recorded already;
        the time recorded."""
        try:
            await self._health.insert_one({"_id": key, "since": since})
        except DuplicateKeyError:
            stored = await self.failing_since(key)
            return since if stored is None else stored
        return since

    async def mark_healthy(self, key: str) -> None:
        await self._health.delete_one({"_id": key})

    async def get(self, key: str) -> WebhookConfig | None:
        doc = await self._endpoints.find_one({"_id": key})
        return WebhookConfig.model_validate(doc) if doc else None

    async def for_app(self, app_id: str) -> list[WebhookConfig]:
        return [
            WebhookConfig.model_validate(doc)
            async for doc in self._endpoints.find({"app_id": app_id})
        ]
