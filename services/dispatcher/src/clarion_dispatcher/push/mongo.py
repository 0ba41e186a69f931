"""The ``push_states`` collection: what a user's devices reported about a push
notification, one document per notification that has a report (``_id``: its record's
id). Every read and write is by ``_id``, what the embedded FerretDB pushes down to its
storage; a list reads the page's few documents one ``_id`` at a time, never by ``$in``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from clarion_shared.mongo import Document

from ..mongo import insert_absent
from .models import PushEvent, PushState

COLLECTION = "push_states"
TOPICS = "topics"  # the engagements' topics, each once (see ``engage``)
_READS_AT_ONCE = 16


def from_document(doc: Document) -> PushState:
    return PushState.model_validate({**doc, "id": doc["_id"]})


class MongoPushStates:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._col = db[COLLECTION]
        self._gate = asyncio.Semaphore(_READS_AT_ONCE)

    async def start(self) -> None:
        return None  # read by _id only: no index to make

    async def stop(self) -> None:
        return None

    async def of_many(self, push_ids: Sequence[str]) -> dict[str, PushState]:
        async def one(push_id: str) -> Document | None:
            async with self._gate:
                return await self._col.find_one({"_id": push_id})

        found = await asyncio.gather(*(one(push_id) for push_id in dict.fromkeys(push_ids)))
        return {str(doc["_id"]): from_document(doc) for doc in found if doc is not None}

    async def mark(
        self, push_id: str, app_id: str, uid: str, event: PushEvent, at: int
    ) -> PushState:
        field = f"{event}_at"
        return await self._transition(
            push_id, app_id, uid, [({field: None}, {field: at, "updated_at": at})]
        )

    async def engage(
        self, push_id: str, app_id: str, uid: str, topic: str | None, at: int
    ) -> PushState:
        # The first engagement, whatever its topic; then each topic new to it. The topics
        # are kept apart as strings too: FerretDB 1.24 compares only an array's first
        # element on a path into it (``{"engagements.topic": {"$ne": t}}`` matched
        # engagements [x, t]), but an array of strings it compares whole.
        steps: list[tuple[Document, Document]] = [
            ({"engaged_at": None}, {"engaged_at": at, "updated_at": at})
        ]
        pushed: Document = {"engagements": {"topic": topic, "at": at}}
        if topic is not None:
            steps.append(({TOPICS: {"$ne": topic}}, {"updated_at": at}))
            pushed[TOPICS] = topic
        return await self._transition(push_id, app_id, uid, steps, push=pushed)

    async def _transition(
        self,
        push_id: str,
        app_id: str,
        uid: str,
        steps: list[tuple[Document, Document]],
        push: Document | None = None,
    ) -> PushState:
        """Make the document if it is the first report (insert-if-absent), then apply the
        first conditional update that matches (its ``$set``, and ``push`` appended to
        arrays); each is one atomic step. None matching: the report is stored already."""
        blank = PushState(id=push_id, app_id=app_id, uid=uid).model_dump(exclude={"id"})
        await insert_absent(self._col, [{"_id": push_id, **blank}])
        for condition, changes in steps:
            update: Document = {"$set": changes}
            if push is not None:
                update["$push"] = push
            doc = await self._col.find_one_and_update(
                {"_id": push_id, **condition}, update, return_document=ReturnDocument.AFTER
            )
            if doc is not None:
                return from_document(doc)
        current = await self._col.find_one({"_id": push_id})
        assert current is not None  # inserted above, and never deleted
        return from_document(current)
