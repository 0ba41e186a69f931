"""The ``analytics_rollups``, ``analytics_marks`` and ``analytics_batches`` collections.

A rollup is one document per (app, dimension, id, stored period, bucket), ``_id``
derived from them. Reads never address one by ``_id`` range (FerretDB 1.x pushes no
range down): a series is read by the top-level equality ``span_key`` (a month of hour
rollups, a year of day rollups) and a ranking by ``ranking_key`` (a year of one
dimension's day rollups), both indexed.

An apply first inserts, in one unordered ``insert``, every rollup of its deltas as it
would be new (the delta's counts, this batch applied) but those this process knows are
stored; the ones stored already answer a duplicate key and, with the known ones, are the
only ones updated (one duplicate makes FerretDB 1.24 insert the whole batch again, one
statement per document, so the known ones stay out of it). Most of a send's rollups are
new ones (a receiver's day: one per receiver), so a fetch of 500 deliveries costs a few
commands, not 500 upserts. On FerretDB 1.24 every update is a command of its own, a few
at a time: its ``update`` command holds a PostgreSQL connection per matched update until
it ends, and a bulk of them deadlocks its pool (see the directory's ``_upsert_each``).
It also ignores ``$slice`` in a ``$push``: a rollup's list of the batches it took is
trimmed here instead (``_trim``), to its last ``KEEP_BATCHES``.

A fetch's apply is pending while its document in ``analytics_batches`` (``_id``: the
batch) exists: inserted before the marks, deleted by the confirm. One document per
fetch, where setting every mark ``applied`` was one update per mark (FerretDB 1.24 runs
an ``update_many`` as one ``UPDATE`` per document: 500 per fetch of 500 events). Marks
are read by the equalities ``batch`` (a pending batch's) and ``day`` (the UTC day it
was made: forgetting; FerretDB has no TTL index and would read the whole collection
for a range), each indexed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.mongo import Document

from ..mongo import insert_new
from .domain import DAY, METRICS, Counts, RollupDelta
from .query import Row
from .service import Mark

ROLLUPS = "analytics_rollups"
MARKS = "analytics_marks"
BATCHES = "analytics_batches"
KEEP_BATCHES = 64
"""The batches a rollup remembers: a batch applied again later than this many others
(only a crash's, re-applied by the next fetch or the sweep within seconds) would count
twice."""
_UPDATES_AT_ONCE = 4
_REMEMBERED_PUSHES = 100_000
_REMEMBERED_STORED = 100_000
_FORGET_FIRST_DAYS = 366
"""How many days before the cutoff a process's first sweep forgets (later ones start
where the one before stopped): a mark older than that stays, harmlessly."""


def rollup_update(batch: str, delta: RollupDelta) -> Document:
    identity: Document = {
        "app_id": delta.series.app_id,
        "dimension": delta.series.dimension,
        "dimension_id": delta.series.dimension_id,
        "period": delta.series.stored,
        "bucket": delta.bucket,
        "span_key": delta.span_key,
    }
    if delta.ranking_key is not None:
        identity["ranking_key"] = delta.ranking_key
    if delta.label is not None:
        identity["label"] = delta.label
    return {
        "$inc": delta.counts.nonzero(),
        "$push": {"applied_batches": {"$each": [batch], "$slice": -KEEP_BATCHES}},
        "$setOnInsert": identity,
    }


def new_rollup(batch: str, delta: RollupDelta) -> Document:
    """The rollup ``rollup_update`` makes when the document does not exist yet."""
    update = rollup_update(batch, delta)
    return {
        "_id": delta.rollup_id,
        **update["$setOnInsert"],
        **update["$inc"],
        "applied_batches": [batch],
    }


def row_of(doc: Document) -> Row:
    return Row(
        dimension_id=str(doc.get("dimension_id", "")),
        bucket=int(doc["bucket"]),
        counts=Counts(**{m: int(doc.get(m, 0)) for m in METRICS}),
        label=doc.get("label"),
    )


def mark_document(mark: Mark) -> Document:
    doc = mark.model_dump(exclude={"event_id"})
    doc["_id"] = mark.event_id
    doc["day"] = mark.marked_at // DAY
    return doc


def batch_documents(marks: Sequence[Mark]) -> list[Document]:
    """The pending documents of the marks' batches (one each, the earliest time)."""
    first: dict[str, int] = {}
    for mark in marks:
        first[mark.batch] = min(mark.marked_at, first.get(mark.batch, mark.marked_at))
    return [{"_id": batch, "marked_at": at, "day": at // DAY} for batch, at in first.items()]


def mark_of(doc: Document) -> Mark:
    return Mark.model_validate({**doc, "event_id": doc["_id"]})


class MongoAnalytics:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._rollups: AsyncCollection[Document] = db[ROLLUPS]
        self._marks: AsyncCollection[Document] = db[MARKS]
        self._batches: AsyncCollection[Document] = db[BATCHES]
        self._gate = asyncio.Semaphore(_UPDATES_AT_ONCE)
        # Batches pushed by this process per rollup since its last trim.
        self._pushed: dict[str, int] = {}
        # Rollups this process knows are stored: an insert holding one of them would
        # fail on its duplicate key, and FerretDB 1.24 then inserts the whole batch
        # again one document per statement.
        self._stored: set[str] = set()
        self._forgotten_until: int | None = None  # the day the last forgetting stopped at

    async def start(self) -> None:
        """Create the indexes (idempotent)."""
        for key in ("span_key", "ranking_key"):
            await self._rollups.create_index([(key, ASCENDING)], name=key)
        for key in ("batch", "day"):
            await self._marks.create_index([(key, ASCENDING)], name=key)

    async def stop(self) -> None:
        return None

    async def mark(self, marks: Sequence[Mark]) -> set[str]:
        if not marks:
            return set()
        # The batch pending first: a crash between the two inserts leaves a pending
        # batch without marks (nothing to apply), never marks nobody will apply.
        await insert_new(self._batches, batch_documents(marks))
        seen = await insert_new(self._marks, [mark_document(mark) for mark in marks])
        return {mark.event_id for mark in marks} - seen

    async def _pending(self) -> dict[str, int]:
        """The pending batches, with the day each was marked."""
        return {str(doc["_id"]): int(doc["day"]) async for doc in self._batches.find({})}

    async def unapplied(self) -> list[Mark]:
        async def of_batch(batch: str) -> list[Mark]:
            return [mark_of(doc) async for doc in self._marks.find({"batch": batch})]

        found = await asyncio.gather(*(of_batch(batch) for batch in await self._pending()))
        return [mark for marks in found for mark in marks]

    async def apply(self, batch: str, deltas: Sequence[RollupDelta]) -> None:
        stored = await self._insert_new(batch, deltas)
        await asyncio.gather(
            *(self._apply_one(batch, delta) for delta in deltas if delta.rollup_id in stored)
        )
        due = [d.rollup_id for d in deltas if self._pushed.get(d.rollup_id, 0) >= KEEP_BATCHES]
        await asyncio.gather(*(self._trim(rollup_id) for rollup_id in due))

    async def _insert_new(self, batch: str, deltas: Sequence[RollupDelta]) -> set[str]:
        """Insert the rollups not stored yet as ``batch`` makes them; the ids of those
        that were (a duplicate key), which are updated instead."""
        if not deltas:
            return set()
        known = {d.rollup_id for d in deltas if d.rollup_id in self._stored}
        fresh = [new_rollup(batch, d) for d in deltas if d.rollup_id not in known]
        stored = known | await insert_new(self._rollups, fresh)
        if len(self._stored) + len(deltas) > _REMEMBERED_STORED:
            self._stored.clear()  # forgotten ones cost one slower insert, once
        self._stored.update(d.rollup_id for d in deltas)
        self._forget_pushes_past(len(deltas))
        for delta in deltas:
            if delta.rollup_id not in stored:
                self._pushed[delta.rollup_id] = self._pushed.get(delta.rollup_id, 0) + 1
        return stored

    async def _apply_one(self, batch: str, delta: RollupDelta) -> None:
        guard = {"_id": delta.rollup_id, "applied_batches": {"$ne": batch}}
        update = rollup_update(batch, delta)
        async with self._gate:
            try:
                await self._rollups.update_one(guard, update, upsert=True)
            except DuplicateKeyError:
                # The document exists (another apply created it meanwhile, or it took
                # this batch already, which the guard then refuses again): update it.
                await self._rollups.update_one(guard, update)
        self._forget_pushes_past(1)
        self._pushed[delta.rollup_id] = self._pushed.get(delta.rollup_id, 0) + 1

    def _forget_pushes_past(self, coming: int) -> None:
        """Bound the memory of pushes (a receiver's rollups are many and rarely pushed
        again): forgotten counts only delay a trim."""
        if len(self._pushed) + coming > _REMEMBERED_PUSHES:
            self._pushed.clear()

    async def _trim(self, rollup_id: str) -> None:
        """Keep the rollup's last ``KEEP_BATCHES`` batches (what ``$slice`` does where it
        works): the older ones are pulled by value, so a batch pushed meanwhile stays."""
        self._pushed.pop(rollup_id, None)
        async with self._gate:
            doc = await self._rollups.find_one({"_id": rollup_id}, {"applied_batches": 1})
            batches = list((doc or {}).get("applied_batches", []))
            if len(batches) > KEEP_BATCHES:
                await self._rollups.update_one(
                    {"_id": rollup_id},
                    {"$pullAll": {"applied_batches": batches[:-KEEP_BATCHES]}},
                )

    async def confirm(self, batch: str) -> None:
        await self._batches.delete_one({"_id": batch})

    async def series_rows(self, keys: Sequence[str], first: int, last: int) -> list[Row]:
        return await self._rows("span_key", keys, first, last)

    async def ranking_rows(self, keys: Sequence[str], first: int, last: int) -> list[Row]:
        return await self._rows("ranking_key", keys, first, last)

    async def _rows(self, field: str, keys: Sequence[str], first: int, last: int) -> list[Row]:
        async def read(key: str) -> list[Row]:
            found = self._rollups.find(
                {field: key, "bucket": {"$gte": first, "$lte": last}},
                {"applied_batches": 0},
            )
            return [row_of(doc) async for doc in found]

        parts = await asyncio.gather(*(read(key) for key in keys))
        return [row for part in parts for row in part]

    async def forget_marks(self, before: int) -> int:
        cutoff = before // DAY
        since = self._forgotten_until
        first = cutoff - _FORGET_FIRST_DAYS if since is None else min(since, cutoff) - 1
        pending = await self._pending()
        removed = 0
        for day in range(first, cutoff):
            where: Document = {"day": day}
            if pending:  # few (a crash's); the day's marks are read anyway
                where["batch"] = {"$nin": sorted(pending)}
            result = await self._marks.delete_many(where)
            removed += result.deleted_count
        for batch, day in pending.items():
            # Left pending with no mark (a crash between its two inserts): forgotten too.
            old = day < cutoff
            if old and await self._marks.find_one({"batch": batch}, {"_id": 1}) is None:
                await self._batches.delete_one({"_id": batch})
        self._forgotten_until = cutoff
        return removed
