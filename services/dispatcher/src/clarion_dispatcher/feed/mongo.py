"""The ``feed_items`` collection: every user's in-app feed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.mongo import Document, dump_json, load_json

from ..mongo import insert_absent
from .models import FeedEvent, FeedItem, FeedTransition

COLLECTION = "feed_items"


def sort_key(item: FeedItem) -> str:
    """``sent_at`` then id as one string, so "newest first" is a single-field sort.

    FerretDB pushes a single-field sort down to its storage (not a compound one), and
    on MongoDB the (owner, sort_key) index serves the query whole.
    """
    return f"{item.sent_at:012d}:{item.id}"


def to_document(item: FeedItem) -> Document:
    doc = item.model_dump(exclude={"id"})
    doc["content"] = dump_json(item.content)
    doc["sort_key"] = sort_key(item)
    return doc


def from_document(doc: Document) -> FeedItem:
    return FeedItem.model_validate({**doc, "id": doc["_id"], "content": load_json(doc["content"])})


class MongoFeed:
    """Every query is by ``_id`` or the top-level equality ``owner`` (``app:uid``)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db[COLLECTION]

    async def start(self) -> None:
        """Create the indexes (idempotent)."""
        await self._col.create_index(
            [("owner", ASCENDING), ("sort_key", DESCENDING)], name="owner_newest"
        )

    async def stop(self) -> None:
        return None

    async def add_many(self, items: Sequence[FeedItem]) -> None:
        # Insert-if-absent: a replay never resets an item's read or delivered state.
        await insert_absent(self._col, [{"_id": i.id, **to_document(i)} for i in items])

    async def remove_many(self, item_ids: Sequence[str]) -> None:
        # One delete per id: FerretDB 1.x reads the whole collection for an ``$in``.
        await asyncio.gather(*(self._col.delete_one({"_id": id_}) for id_ in item_ids))

    async def page(
        self, owner: str, read: bool | None, page: int, per_page: int
    ) -> tuple[list[FeedItem], int]:
        query: Document = {"owner": owner}
        if read is not None:
            query["read"] = read
        cursor = (
            self._col.find(query)
            .sort("sort_key", DESCENDING)
            .skip((page - 1) * per_page)
            .limit(per_page)
        )

        async def items() -> list[FeedItem]:
            return [from_document(doc) async for doc in cursor]

        found, total = await asyncio.gather(items(), self._col.count_documents(query))
        return found, total

    async def unread_count(self, owner: str) -> int:
        return await self._col.count_documents({"owner": owner, "read": False})

    async def get(self, owner: str, item_id: str) -> FeedItem | None:
        doc = await self._col.find_one({"_id": item_id, "owner": owner})
        return None if doc is None else from_document(doc)

    async def mark_read(self, owner: str, item_id: str, at: int) -> FeedTransition | None:
        return await self._transition(
            owner,
            item_id,
            [
                (
                    {"read": False},
                    {"read": True, "read_at": at, "status": "read", "read_event_pending": True},
                )
            ],
        )

    async def mark_delivered(self, owner: str, item_id: str, at: int) -> FeedTransition | None:
        # Two exclusive conditions, so the status never goes back from "read".
        return await self._transition(
            owner,
            item_id,
            [
                (
                    {"delivered_at": None, "read": False},
                    {"delivered_at": at, "status": "delivered", "delivered_event_pending": True},
                ),
                (
                    {"delivered_at": None, "read": True},
                    {"delivered_at": at, "delivered_event_pending": True},
                ),
            ],
        )

    async def _transition(
        self, owner: str, item_id: str, steps: list[tuple[Document, Document]]
    ) -> FeedTransition | None:
        """Apply the first conditional update that matches; each is one atomic step."""
        for condition, changes in steps:
            doc = await self._col.find_one_and_update(
                {"_id": item_id, "owner": owner, **condition},
                {"$set": changes},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return FeedTransition(item=from_document(doc), changed=True)
        current = await self.get(owner, item_id)
        return None if current is None else FeedTransition(item=current, changed=False)

    async def event_published(self, owner: str, item_id: str, event: FeedEvent) -> None:
        await self._col.update_one(
            {"_id": item_id, "owner": owner}, {"$set": {f"{event}_event_pending": False}}
        )

    async def delete(self, owner: str, item_id: str) -> bool:
        result = await self._col.delete_one({"_id": item_id, "owner": owner})
        return result.deleted_count > 0
