"""The ``notifications`` collection: one record per receiver and channel of a send."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.contracts.base import ErrorInfo
from clarion_shared.mongo import Document, dump_json, load_json

from ..mongo import insert_absent, send_chunk_key
from ..sends.domain import realtime_entries, realtime_entry
from ..sends.mongo import MongoSends
from .models import NotificationRecord

COLLECTION = "notifications"


def user_key(app_id: str, uid: str, channel_type: str) -> str:
    return f"{app_id}:{uid}:{channel_type}"


def to_document(record: NotificationRecord) -> Document:
    doc = record.model_dump(exclude={"id", "error", "batch_id", "campaign_id"})
    # Each read's equalities as one value (see ``MongoNotifications``).
    doc["chunk_key"] = send_chunk_key(record.app_id, record.send_id, record.chunk)
    doc["user_key"] = user_key(record.app_id, record.uid, record.channel_type)
    if record.content is not None:
        doc["content"] = dump_json(record.content)
    if record.batch_id is not None:
        doc["batch_id"] = record.batch_id
    if record.campaign_id is not None:
        doc["campaign_id"] = record.campaign_id
    if record.error is not None:
        doc["code"] = record.error.code
        doc["message"] = record.error.message
    return doc


def from_document(doc: Document) -> NotificationRecord:
    error = (
        ErrorInfo(code=str(doc["code"]), message=str(doc.get("message", "")))
        if doc.get("code")
        else None
    )
    content = load_json(doc["content"]) if doc.get("content") is not None else None
    return NotificationRecord.model_validate(
        {**doc, "id": doc["_id"], "error": error, "content": content}
    )


class MongoNotifications:
    """Writes are bulk inserts-if-absent by ``_id``; reads are top-level equalities.

    The embedded FerretDB pushes only ``_id`` and top-level equality filters down to
    its storage, so nothing here uses ``$in`` or ranges; and an equality is found by
    the GIN twin of an index's leading field only (README: Decisions worth knowing), so
    a chunk's records and a user's are read by one indexed value each (``chunk_key``,
    ``user_key``): by ``send_id`` and ``chunk``, or ``app_id``, ``uid`` and
    ``channel_type``, a read went through the whole send's records, or the app's. A
    realtime send's entry in the sends listing (``sends``, whose collection it is) is
    written with its records.
    """

    def __init__(self, db: AsyncDatabase[Document], sends: MongoSends | None = None) -> None:
        self._col = db[COLLECTION]
        self._sends = sends or MongoSends(db)

    async def start(self) -> None:
        """Create the indexes (idempotent): a send's records, a chunk's, a user's."""
        await self._col.create_index([("send_id", ASCENDING)], name="send_id")
        await self._col.create_index([("chunk_key", ASCENDING)], name="chunk_key")
        await self._col.create_index(
            [("user_key", ASCENDING), ("created_at", DESCENDING)], name="user_key_created_at"
        )

    async def stop(self) -> None:
        return None

    async def add_many(self, records: Sequence[NotificationRecord]) -> None:
        # Insert-if-absent: a replayed chunk finds its records and leaves them as they are;
        # the realtime sends' entries beside them, one bulk insert each, at once.
        docs = [{"_id": r.id, **to_document(r)} for r in records]
        await asyncio.gather(
            insert_absent(self._col, docs), self._sends.add_absent(realtime_entries(records))
        )

    async def put_many(self, records: Sequence[NotificationRecord]) -> None:
        # One replace per command, a few at a time: FerretDB 1.24 holds a PostgreSQL
        # connection per matched update until a command ends (see the directory's
        # ``_upsert_each``). Rare: only receivers whose records were refused come here.
        gate = asyncio.Semaphore(4)

        async def put(record: NotificationRecord) -> None:
            async with gate:
                await self._col.replace_one({"_id": record.id}, to_document(record), upsert=True)

        await asyncio.gather(*(put(record) for record in records))
        # The realtime sends' entries again, from all their records now stored.
        sends = list({(r.app_id, r.send_id) for r in records if r.mode == "realtime"})
        found = await asyncio.gather(*(self.for_send(app, send) for app, send in sends))
        await self._sends.put(
            [
                realtime_entry(app, send, mine)
                for (app, send), mine in zip(sends, found, strict=True)
                if mine
            ]
        )

    async def for_send(self, app_id: str, send_id: str) -> list[NotificationRecord]:
        return await self._find({"send_id": send_id, "app_id": app_id})

    async def for_chunk(self, app_id: str, send_id: str, chunk: int) -> list[NotificationRecord]:
        return await self._find({"chunk_key": send_chunk_key(app_id, send_id, chunk)})

    async def for_receiver(self, app_id: str, send_id: str, uid: str) -> list[NotificationRecord]:
        return await self._find({"send_id": send_id, "uid": uid, "app_id": app_id})

    async def for_user(
        self, app_id: str, uid: str, channel_type: str, limit: int
    ) -> list[NotificationRecord]:
        cursor = (
            self._col.find({"user_key": user_key(app_id, uid, channel_type)})
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        return [from_document(doc) async for doc in cursor]

    async def get(self, app_id: str, notification_id: str) -> NotificationRecord | None:
        doc = await self._col.find_one({"_id": notification_id})
        if doc is None or doc.get("app_id") != app_id:
            return None
        return from_document(doc)

    async def _find(self, where: Document) -> list[NotificationRecord]:
        return [from_document(doc) async for doc in self._col.find(where)]
