"""The ``audit_log`` collection: one document per entry, never updated."""

from __future__ import annotations

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.mongo import Document, create_index_best_effort

from ..mongo import dump_json, load_json
from .domain import AuditEntry


class MongoAuditLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db["audit_log"]

    async def start(self) -> None:
        await create_index_best_effort(self._col, "app_id")

    async def stop(self) -> None:
        return None

    async def append(self, entry: AuditEntry) -> None:
        await self._col.insert_one(
            {
                "_id": entry.entry_id,
                "app_id": entry.app_id,
                "actor": entry.actor,
                "action": entry.action,
                "target": entry.target,
                "at": entry.at,
                # Stored as JSON text: its keys may hold "." or "$".
                "detail": dump_json(entry.detail),
            }
        )

    async def list_for_app(
        self, app_id: str, offset: int, limit: int
    ) -> tuple[list[AuditEntry], int]:
        query = {"app_id": app_id}
        total = await self._col.count_documents(query)
        cursor = (
            self._col.find(query)
            .sort([("at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [_entry(doc) async for doc in cursor], total


def _entry(doc: Document) -> AuditEntry:
    return AuditEntry(
        entry_id=str(doc["_id"]),
        app_id=doc.get("app_id"),
        actor=str(doc["actor"]),
        action=str(doc["action"]),
        target=doc.get("target"),
        at=int(doc["at"]),
        detail=load_json(doc.get("detail")),
    )
