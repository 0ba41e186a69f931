"""The ``sends`` collection: one entry per send, what the sends listing filters and sorts.

The listing is kept by the writes that decide what it shows, in the same calls, so it
needs no consumer of its own: ``MongoNotifications.add_many`` adds a realtime send's
entry with its records (one bulk insert beside theirs), ``MongoBatches`` a batch's when
it is registered, marks it ``dispatching`` (with its template) when a chunk is
recorded, and final when the tracker decides it. This module is the only place the
collection is named; those repositories write it through a ``MongoSends``.

Reads filter on the top-level equality ``app_id`` (indexed with the sort), plus
``type``, ``status``, ``template_id`` and a range of ``created_at``; newest first, then
by send id. The embedded FerretDB reads an app's entries for a range (no range is
pushed down): an entry is small, one per send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.mongo import Document

from ..batches.models import FinalStatus
from ..mongo import insert_absent
from .domain import send_key
from .models import SendEntry, SendQuery

COLLECTION = "sends"
_NEWEST_FIRST = [("created_at", DESCENDING), ("send_id", DESCENDING)]


def to_document(entry: SendEntry) -> Document:
    doc = entry.model_dump(exclude={"id"})
    doc["_id"] = entry.id
    return doc


def from_document(doc: Document) -> SendEntry:
    return SendEntry.model_validate({**doc, "id": doc["_id"]})


def listing_filter(app_id: str, query: SendQuery) -> Document:
    where: Document = {"app_id": app_id}
    if query.type is not None:
        where["type"] = query.type
    if query.status is not None:
        where["status"] = query.status
    if query.template_id is not None:
        where["template_id"] = query.template_id
    span: Document = {}
    if query.since is not None:
        span["$gte"] = query.since
    if query.until is not None:
        span["$lte"] = query.until
    if span:
        where["created_at"] = span
    return where


class MongoSends:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db[COLLECTION]

    async def start(self) -> None:
        """Create the index (idempotent): the app, newest first."""
        await self._col.create_index(
            [("app_id", ASCENDING), *_NEWEST_FIRST], name="app_newest_first"
        )

    async def stop(self) -> None:
        return None

    async def add_absent(self, entries: Sequence[SendEntry]) -> None:
        await insert_absent(self._col, [to_document(entry) for entry in entries])

    async def put(self, entries: Sequence[SendEntry]) -> None:
        await asyncio.gather(
            *(
                self._col.replace_one({"_id": entry.id}, to_document(entry), upsert=True)
                for entry in entries
            )
        )

    async def dispatching(
        self, app_id: str, send_id: str, template_id: str | None, template_version: int | None
    ) -> None:
        # Matches once: the first chunk recorded of a queued batch.
        await self._col.update_one(
            {"_id": send_key(app_id, send_id), "status": "queued"},
            {
                "$set": {
                    "status": "dispatching",
                    "template_id": template_id,
                    "template_version": template_version,
                }
            },
        )

    async def finished(self, app_id: str, send_id: str, status: FinalStatus) -> None:
        await self._col.update_one({"_id": send_key(app_id, send_id)}, {"$set": {"status": status}})

    async def get(self, app_id: str, send_id: str) -> SendEntry | None:
        doc = await self._col.find_one({"_id": send_key(app_id, send_id), "app_id": app_id})
        return None if doc is None else from_document(doc)

    async def page(
        self, app_id: str, query: SendQuery, skip: int, limit: int
    ) -> tuple[list[SendEntry], int]:
        where = listing_filter(app_id, query)
        cursor = self._col.find(where).sort(_NEWEST_FIRST).skip(skip).limit(limit)

        async def entries() -> list[SendEntry]:
            return [from_document(doc) async for doc in cursor]

        found, total = await asyncio.gather(entries(), self._col.count_documents(where))
        return found, total
