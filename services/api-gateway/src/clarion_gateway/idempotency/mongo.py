"""The ``idempotency`` collection: one record per ``{app_id}:{key}``."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.logging import get_logger
from clarion_shared.mongo import Document, create_index_best_effort

from .domain import IdempotencyRecord, StoredResponse

log = get_logger(__name__)


class MongoIdempotency:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["idempotency"]

    async def start(self) -> None:
        # MongoDB's TTL monitor only reads dates: "expire_at" is "expires_at" as one.
        # FerretDB 1.x has no TTL indexes: expired idempotency records are then only
        # taken over when their key comes again.
        await create_index_best_effort(self._col, "expire_at", expireAfterSeconds=0)

    async def stop(self) -> None:
        return None

    async def begin(
        self, scope_key: str, fingerprint: str, now: int, ttl_s: int, lease_s: int
    ) -> IdempotencyRecord | None:
        fresh: Document = {
            "_id": scope_key,
            "fingerprint": fingerprint,
            "created_at": now,
            "expires_at": now + ttl_s,
            "expire_at": datetime.fromtimestamp(now + ttl_s, UTC),
            "status": None,
            "body": None,
        }
        for _ in range(3):
            try:
                await self._col.insert_one(fresh)
                return None
            except DuplicateKeyError:
                pass
            doc = await self._col.find_one({"_id": scope_key})
            if doc is None:
                continue  # released meanwhile: claim again
            abandoned = doc.get("status") is None and int(doc["created_at"]) + lease_s <= now
            if int(doc["expires_at"]) > now and not abandoned:
                return _record(doc)
            # Expired or abandoned: take it over unless another request just did.
            result = await self._col.replace_one(
                {"_id": scope_key, "created_at": doc["created_at"]}, fresh
            )
            if result.matched_count == 1:
                return None
        raise RuntimeError(f"cannot claim idempotency key {scope_key}")

    async def finish(self, scope_key: str, response: StoredResponse) -> None:
        await self._col.update_one(
            {"_id": scope_key},
            {"$set": {"status": response.status, "body": response.body.decode()}},
        )

    async def release(self, scope_key: str) -> None:
        await self._col.delete_one({"_id": scope_key})


def _record(doc: Document) -> IdempotencyRecord:
    response = (
        StoredResponse(int(doc["status"]), str(doc["body"]).encode())
        if doc.get("status") is not None
        else None
    )
    return IdempotencyRecord(str(doc["fingerprint"]), int(doc["created_at"]), response)
