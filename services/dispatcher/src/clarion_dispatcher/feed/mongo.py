"""The ``feed_items`` collection: every user's in-app feed.

What a list costs: every list query has the top-level equality ``owner`` (``app:uid``),
which FerretDB 1.24 pushes down to PostgreSQL, and sorts on the single field
``sort_key`` with a limit. The other filters (``read``, ``channel_id``, ``tag``,
``template_category`` equalities; the ``sent_at`` range of ``dateFrom`` / ``dateTo``;
``tag`` ``$in``; the cursor's range on ``sort_key``) are applied by FerretDB after
fetching: a list reads all of that user's items, never the whole collection, and
FerretDB sorts and limits them (with a filter it pushes neither down). On MongoDB the
``(owner, sort_key)`` index serves the owner, the cursor's range and the order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.mongo import Document, dump_json, load_json

from ..mongo import insert_absent
from .domain import FeedFilter, sort_key
from .models import FeedEvent, FeedItem, FeedTransition

COLLECTION = "feed_items"


def feed_query(owner: str, where: FeedFilter) -> Document:
    """The Mongo filter of ``where`` on ``owner``'s items."""
    query: Document = {"owner": owner}
    if where.read is not None:
        query["read"] = where.read
    bounds = (("$gte", where.sent_from), ("$lte", where.sent_to))
    sent: Document = {op: at for op, at in bounds if at is not None}
    if sent:
        query["sent_at"] = sent
    if where.tags is not None:
        tags = sorted(where.tags)
        query["tag"] = tags[0] if len(tags) == 1 else {"$in": tags}
    if where.template_category is not None:
        query["template_category"] = where.template_category
    if where.channel_id is not None:
        query["channel_id"] = where.channel_id
    return query


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
        self, owner: str, where: FeedFilter, ascending: bool, skip: int, limit: int
    ) -> tuple[list[FeedItem], int]:
        query = feed_query(owner, where)
        direction = ASCENDING if ascending else DESCENDING
        cursor = self._col.find(query).sort("sort_key", direction).skip(skip).limit(limit)

        async def items() -> list[FeedItem]:
            return [from_document(doc) async for doc in cursor]

        found, total = await asyncio.gather(items(), self._col.count_documents(query))
        return found, total

    async def scan(
        self, owner: str, where: FeedFilter, beyond: str | None, ascending: bool, limit: int
    ) -> list[FeedItem]:
        query = feed_query(owner, where)
        if beyond is not None:
            query["sort_key"] = {"$gt" if ascending else "$lt": beyond}
        direction = ASCENDING if ascending else DESCENDING
        cursor = self._col.find(query).sort("sort_key", direction).limit(limit)
        return [from_document(doc) async for doc in cursor]

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
                    {
                        "read": True,
                        "read_at": at,
                        "status": "read",
                        "read_event_pending": True,
                        "updated_at": at,
                    },
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
                    {
                        "delivered_at": at,
                        "status": "delivered",
                        "delivered_event_pending": True,
                        "updated_at": at,
                    },
                ),
                (
                    {"delivered_at": None, "read": True},
                    {"delivered_at": at, "delivered_event_pending": True, "updated_at": at},
                ),
            ],
        )

    async def _transition(
        self,
        owner: str,
        item_id: str,
        steps: list[tuple[Document, Document]],
        push: Document | None = None,
    ) -> FeedTransition | None:
        """Apply the first conditional update that matches (its ``$set``, and ``push``
        appended to arrays); each is one atomic step."""
        for condition, changes in steps:
            update: Document = {"$set": changes}
            if push is not None:
                update["$push"] = push
            doc = await self._col.find_one_and_update(
                {"_id": item_id, "owner": owner, **condition},
                update,
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return FeedTransition(item=from_document(doc), changed=True)
        current = await self.get(owner, item_id)
        return None if current is None else FeedTransition(item=current, changed=False)

    async def engage(
        self, owner: str, item_id: str, topic: str | None, at: int
    ) -> FeedTransition | None:
        # The first engagement, whatever its topic; then each topic new to the item.
        steps: list[tuple[Document, Document]] = [
            ({"engaged_at": None}, {"engaged_at": at, "updated_at": at})
        ]
        if topic is not None:
            steps.append(({"engagements.topic": {"$ne": topic}}, {"updated_at": at}))
        owed = {"engagements": {"topic": topic, "at": at}, "engagement_events_pending": topic}
        return await self._transition(owner, item_id, steps, push=owed)

    async def engagement_published(self, owner: str, item_id: str, topic: str | None) -> None:
        await self._col.update_one(
            {"_id": item_id, "owner": owner}, {"$pull": {"engagement_events_pending": topic}}
        )

    async def event_published(self, owner: str, item_id: str, event: FeedEvent) -> None:
        await self._col.update_one(
            {"_id": item_id, "owner": owner}, {"$set": {f"{event}_event_pending": False}}
        )

    async def delete(self, owner: str, item_id: str) -> bool:
        result = await self._col.delete_one({"_id": item_id, "owner": owner})
        return result.deleted_count > 0
