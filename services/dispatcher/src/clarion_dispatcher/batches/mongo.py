"""The ``batches``, ``batch_chunks`` and ``batch_receivers`` collections.

One document per batch; per chunk, a small one (``batch_chunks``: whether it is
recorded, its counts, its delivered uids) and one holding its receivers
(``batch_receivers``, ~25 KB for 500). Status reads, the tracker and paging read the
small ones: the embedded FerretDB reads whole documents whatever the projection, and
20 chunks' receivers take it ~100 ms. Every read and write addresses a document by
``_id`` or reads a batch's chunks by the top-level equality ``batch_key`` (indexed).

The receivers document is the truth of a chunk's outcomes (the fan-out's first write
wins; then only the tracker rewrites it, settling pending receivers); its small
document is derived from it after each write, so a crash between the two leaves nothing
a replay does not repair (the fan-out publishes ``ChunkDispatched`` only after both,
and the tracker's redelivered fetch finds the counts out of step and rewrites them).

A batch document holds its ``mode`` (``batch`` or ``campaign``); one written before
campaigns were tracked has none and reads as a batch (``Batch``'s default).

The batch's entry in the sends listing (``sends.mongo``) follows it: written with the
batch (``queued``), ``dispatching`` with its template when a chunk is recorded (one
conditional update, matching once), final just before the batch is (so a crash in
between leaves it final with the batch about to be decided again, never the other way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.mongo import Document

from ..mongo import insert_absent
from ..sends.domain import batch_entry, dispatched_entry
from ..sends.mongo import MongoSends
from .domain import ChunkOutcome, batch_key, chunk_key
from .models import Batch, BatchChunk, FinalStatus, ReceiverOutcome

BATCHES = "batches"
CHUNKS = "batch_chunks"
RECEIVERS = "batch_receivers"
# Updates at once: FerretDB 1.24 holds a PostgreSQL connection per matched update until
# its command ends (see the directory's ``_upsert_each``).
_UPDATES_AT_ONCE = 4


def batch_document(batch: Batch) -> Document:
    doc = batch.model_dump(exclude={"id"})
    doc["_id"] = batch.id
    return doc


def receiver_document(receiver: ReceiverOutcome) -> Document:
    """Compact: ``code`` and ``message`` only when there are; what settles a pending
    receiver (its queued channels, a delivery sent, the first failure) only on one."""
    doc: Document = {"uid": receiver.uid, "status": receiver.status}
    if receiver.code is not None:
        doc["code"] = receiver.code
    if receiver.message is not None:
        doc["message"] = receiver.message
    if receiver.status == "pending":
        if receiver.queued:
            doc["queued"] = list(receiver.queued)
        if receiver.any_sent:
            doc["any_sent"] = True
        if receiver.failure is not None:
            doc["failure"] = receiver.failure.model_dump()
    return doc


def _identity(chunk_id: str, key: str, app_id: str, batch_id: str, chunk: int) -> Document:
    return {
        "_id": chunk_id,
        "batch_key": key,
        "app_id": app_id,
        "batch_id": batch_id,
        "chunk": chunk,
    }


def _counts(receivers: Sequence[Document]) -> Document:
    statuses = [receiver.get("status") for receiver in receivers]
    return {
        "dispatched": True,
        "sent": statuses.count("sent"),
        "failed": statuses.count("failed"),
        "pending": statuses.count("pending"),
    }


class MongoBatches:
    def __init__(self, db: AsyncDatabase[Document], sends: MongoSends | None = None) -> None:
        self._batches = db[BATCHES]
        self._chunks = db[CHUNKS]
        self._receivers = db[RECEIVERS]
        self._sends = sends or MongoSends(db)
        self._gate = asyncio.Semaphore(_UPDATES_AT_ONCE)

    async def start(self) -> None:
        """Create the indexes (idempotent)."""
        for collection in (self._chunks, self._receivers):
            await collection.create_index([("batch_key", ASCENDING)], name="batch_key")

    async def stop(self) -> None:
        return None

    async def register(self, batch: Batch, chunks: Sequence[BatchChunk]) -> None:
        receivers: list[Document] = []
        summaries: list[Document] = []
        for chunk in chunks:
            identity = _identity(chunk.id, batch.id, batch.app_id, batch.batch_id, chunk.chunk)
            receivers.append(
                {
                    **identity,
                    "dispatched": False,
                    "receivers": [receiver_document(r) for r in chunk.receivers],
                }
            )
            summaries.append(
                {
                    **identity,
                    "dispatched": False,
                    "event_read": False,
                    "sent": 0,
                    "failed": 0,
                    "pending": chunk.pending,
                }
            )
        await asyncio.gather(
            insert_absent(self._receivers, receivers), insert_absent(self._chunks, summaries)
        )
        await self._sends.add_absent([batch_entry(batch)])
        await insert_absent(self._batches, [batch_document(batch)])

    async def get(self, app_id: str, batch_id: str) -> Batch | None:
        doc = await self._batches.find_one({"_id": batch_key(app_id, batch_id)})
        if doc is None or doc.get("app_id") != app_id:
            return None
        return Batch.model_validate({**doc, "id": doc["_id"]})

    async def chunks(self, batch: Batch, *, receivers: bool = True) -> list[BatchChunk]:
        summaries = self._chunks.find({"batch_key": batch.id})
        if not receivers:
            return _merged(await _all(summaries), [])
        found = await asyncio.gather(
            _all(summaries), _all(self._receivers.find({"batch_key": batch.id}))
        )
        return _merged(*found)

    async def chunks_numbered(self, batch: Batch, numbers: Sequence[int]) -> list[BatchChunk]:
        ids = [chunk_key(batch.app_id, batch.batch_id, number) for number in numbers]
        summaries, receivers = await asyncio.gather(
            _by_id(self._chunks, ids), _by_id(self._receivers, ids)
        )
        return _merged(summaries, receivers)

    async def record(self, outcomes: Sequence[ChunkOutcome]) -> None:
        await asyncio.gather(*(self._record_one(outcome) for outcome in outcomes))

    async def _record_one(self, outcome: ChunkOutcome) -> None:
        docs = [receiver_document(receiver) for receiver in outcome.receivers]
        async with self._gate:
            try:
                # First write wins: a replayed chunk finds it dispatched (or, when nobody
                # registered it, fails to insert it again).
                await self._receivers.update_one(
                    {"_id": outcome.key, "dispatched": False},
                    {
                        "$set": {"receivers": docs, "dispatched": True},
                        "$setOnInsert": _batch_fields(outcome),
                    },
                    upsert=True,
                )
            except DuplicateKeyError:
                stored = await self._receivers.find_one({"_id": outcome.key})
                docs = list(stored["receivers"]) if stored else docs
                await self._summarize(outcome, docs, replay=True)
            else:
                await self._summarize(outcome, docs)
            await self._sends.dispatching(
                outcome.app_id, outcome.batch_id, outcome.template_id, outcome.template_version
            )

    async def _summarize(
        self, outcome: ChunkOutcome, receivers: Sequence[Document], *, replay: bool = False
    ) -> None:
        """The small document of the chunk, from the receivers stored. A ``replay``
        only repairs one not written yet (a crash after the receivers): a written one
        is left as it is, the tracker keeping it in step with receivers it may be
        settling now, which the receivers read by the replay may predate."""
        where: Document = {"_id": outcome.key}
        if replay:
            where["dispatched"] = {"$ne": True}
        try:
            result = await self._chunks.update_one(
                where,
                {
                    "$set": _counts(receivers),
                    "$setOnInsert": {**_batch_fields(outcome), "event_read": False},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return  # a replay's: written already
        if result.upserted_id is not None:
            # Nobody registered this batch (its commands came from another service):
            # the first chunk seen describes it.
            await self._sends.add_absent([dispatched_entry(outcome)])
            await insert_absent(self._batches, [batch_document(outcome.unregistered_batch())])

    async def correct(self, outcomes: Sequence[ChunkOutcome]) -> None:
        async def correct_one(outcome: ChunkOutcome) -> None:
            docs = [receiver_document(receiver) for receiver in outcome.receivers]
            async with self._gate:
                await self._receivers.update_one(
                    {"_id": outcome.key}, {"$set": {"receivers": docs, "dispatched": True}}
                )
                await self._summarize(outcome, docs)

        await asyncio.gather(*(correct_one(outcome) for outcome in outcomes))

    async def finish(
        self,
        batch: Batch,
        status: FinalStatus,
        completed_at: int,
        decided_by: str,
        decided_event: str,
    ) -> bool:
        await self._sends.finished(batch.app_id, batch.batch_id, status)
        result = await self._batches.update_one(
            {"_id": batch.id, "final": False},
            {
                "$set": {
                    "status": status,
                    "final": True,
                    "completed_at": completed_at,
                    "decided_by": decided_by,
                    "decided_event": decided_event,
                }
            },
        )
        return result.modified_count == 1

    async def mark_events_read(self, chunk_ids: Sequence[str]) -> None:
        async with self._gate:
            await self._chunks.update_many(
                {"_id": {"$in": list(chunk_ids)}, "event_read": {"$ne": True}},
                {"$set": {"event_read": True}},
            )

    async def mark_delivered(self, chunk_id: str, uids: Sequence[str]) -> None:
        if not uids:
            return
        async with self._gate:
            await self._chunks.update_one(
                {"_id": chunk_id}, {"$addToSet": {"delivered": {"$each": list(uids)}}}
            )

    async def settle(self, chunks: Sequence[BatchChunk]) -> None:
        async def settle_one(chunk: BatchChunk) -> None:
            docs = [receiver_document(receiver) for receiver in chunk.receivers]
            async with self._gate:
                # The receivers first (the truth): a crash before the counts leaves
                # them out of step, which the redelivered fetch sees and rewrites.
                await self._receivers.update_one(
                    {"_id": chunk.id, "dispatched": True}, {"$set": {"receivers": docs}}
                )
                await self._chunks.update_one(
                    {"_id": chunk.id, "dispatched": True}, {"$set": _counts(docs)}
                )

        await asyncio.gather(*(settle_one(chunk) for chunk in chunks))


def _batch_fields(outcome: ChunkOutcome) -> Document:
    identity = _identity(
        outcome.key, outcome.batch_key, outcome.app_id, outcome.batch_id, outcome.chunk
    )
    del identity["_id"]
    return identity


async def _all(cursor: AsyncCursor[Document]) -> list[Document]:
    return [doc async for doc in cursor]


async def _by_id(collection: AsyncCollection[Document], ids: Sequence[str]) -> list[Document]:
    docs = await asyncio.gather(*(collection.find_one({"_id": one}) for one in ids))
    return [doc for doc in docs if doc is not None]


def _merged(summaries: Sequence[Document], receivers: Sequence[Document]) -> list[BatchChunk]:
    """Chunks from their small documents, with the receivers of those in ``receivers``."""
    by_id = {doc["_id"]: doc["receivers"] for doc in receivers}
    chunks = [
        BatchChunk.model_validate({**doc, "id": doc["_id"], "receivers": by_id.get(doc["_id"], [])})
        for doc in summaries
    ]
    return sorted(chunks, key=lambda chunk: chunk.chunk)
