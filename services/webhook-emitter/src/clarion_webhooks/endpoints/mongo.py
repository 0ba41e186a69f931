"""The ``webhook_endpoints`` collection: endpoint configuration learnt from Kafka, the
only place it is named.

One document per endpoint, ``_id = "{app_id}:{webhook_id}"``, the configuration's
fields as they are (snake_case).
"""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.contracts.config_webhooks import WebhookConfig
from clarion_shared.mongo import Document

COLLECTION = "webhook_endpoints"


class MongoEndpointRepository:
    """Endpoint configurations in MongoDB (or FerretDB). Started (indexes created)
    before use."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._endpoints = db[COLLECTION]

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

    async def get(self, key: str) -> WebhookConfig | None:
        doc = await self._endpoints.find_one({"_id": key})
        return WebhookConfig.model_validate(doc) if doc else None

    async def for_app(self, app_id: str) -> list[WebhookConfig]:
        return [
            WebhookConfig.model_validate(doc)
            async for doc in self._endpoints.find({"app_id": app_id})
        ]
