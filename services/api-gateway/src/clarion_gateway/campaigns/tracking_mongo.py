"""The tracking read model's collections: ``campaign_reports`` (one per reported chunk,
``_id`` derived from it, with the receivers settled since under ``settled``, one field
each) and ``campaign_marks`` (one per delivered or read recipient and channel, and one
per delivery a worker ended, its ``_id`` derived from ``tracking.mark_key``), both found
by the top-level equality ``campaign_key`` (a count adds ``kind`` and ``channel_id``).

A report and a settlement of one chunk write different fields of its document, each
with ``$set`` and an upsert, so neither undoes the other whichever comes first; the
rule joining them is ``tracking.receiver_states``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from clarion_shared.contracts.status import ChannelTally, ReceiverState
from clarion_shared.ids import derive_id
from clarion_shared.mongo import Document, create_index_best_effort

from .mongo import campaign_key, insert_new
from .tracking import ChunkReport, Mark, MarkKind, Settled, Settlement, mark_key

# Updates in flight at once (FerretDB 1.24 holds a connection per update command).
_UPDATES_AT_ONCE = 4


def _report_id(app_id: str, campaign_id: str, chunk: int) -> str:
    return derive_id(app_id, campaign_id, "chunk", str(chunk))


def _report_fields(r: ChunkReport) -> Document:
    """A report's fields, all but its settled receivers (which a report leaves)."""
    return {
        "campaign_key": campaign_key(r.app_id, r.campaign_id),
        "app_id": r.app_id,
        "campaign_id": r.campaign_id,
        "chunk": r.chunk,
        "at": r.at,
        "receivers": [s.model_dump(exclude_none=True) for s in r.receivers],
        "channels": [t.model_dump() for t in r.channels],
    }


def _settled_field(uid: str) -> str:
    # A uid is not a safe field name everywhere (a dot, a leading ``$``): its hash is.
    return f"settled.u{derive_id(uid)}"


def _settle_update(settlements: Sequence[Settlement]) -> Document:
    """One chunk's settlements as one update: each receiver under its own field, so
    that nothing else in the document (its report, others settled) is rewritten."""
    first = settlements[0]
    return {
        "$set": {
            _settled_field(state.uid): {**state.model_dump(exclude_none=True), "at": s.at}
            for s in settlements
            for state in s.receivers
        },
        "$setOnInsert": {
            "campaign_key": campaign_key(first.app_id, first.campaign_id),
            "app_id": first.app_id,
            "campaign_id": first.campaign_id,
            "chunk": first.chunk,
        },
    }


def _settled(entry: Document) -> Settled:
    state = {key: value for key, value in entry.items() if key != "at"}
    return Settled(ReceiverState.model_validate(state), int(entry.get("at", 0)))


def _report(doc: Document) -> ChunkReport:
    settled = [_settled(entry) for entry in (doc.get("settled") or {}).values()]
    return ChunkReport(
        app_id=doc["app_id"],
        campaign_id=doc["campaign_id"],
        chunk=int(doc["chunk"]),
        at=int(doc.get("at", 0)),
        receivers=tuple(ReceiverState.model_validate(r) for r in doc.get("receivers") or []),
        channels=tuple(ChannelTally.model_validate(t) for t in doc.get("channels") or []),
        settled=tuple(sorted(settled, key=lambda s: s.state.uid)),
    )


async def _update_each(col: AsyncCollection[Document], updates: Mapping[str, Document]) -> None:
    """Upsert each document by ``_id``, one update per command, a few at a time (what
    FerretDB 1.24 takes: see ``analytics`` in the dispatcher). Two writers creating the
    same document (a rebalance) meet on its ``_id``: the loser updates it then."""
    gate = asyncio.Semaphore(_UPDATES_AT_ONCE)

    async def one(doc_id: str, update: Document) -> None:
        async with gate:
            try:
                await col.update_one({"_id": doc_id}, update, upsert=True)
            except DuplicateKeyError:
                await col.update_one({"_id": doc_id}, update, upsert=True)

    await asyncio.gather(*(one(doc_id, update) for doc_id, update in updates.items()))


def _mark_fields(m: Mark) -> Document:
    fields: Document = {
        "campaign_key": campaign_key(m.app_id, m.campaign_id),
        "kind": m.kind,
        "channel_id": m.channel_id,
        "uid": m.uid,
        "at": m.at,
    }
    if m.notification_id is not None:
        fields["notification_id"] = m.notification_id
    return fields


class MongoCampaignTracking:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._reports = db["campaign_reports"]
        self._marks = db["campaign_marks"]

    async def start(self) -> None:
        await create_index_best_effort(self._reports, "campaign_key")
        await create_index_best_effort(self._marks, "campaign_key")

    async def stop(self) -> None:
        return None

    async def put_reports(self, reports: Sequence[ChunkReport]) -> None:
        updates = {
            _report_id(r.app_id, r.campaign_id, r.chunk): {"$set": _report_fields(r)}
            for r in reports
        }
        await _update_each(self._reports, updates)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        per_chunk: dict[str, list[Settlement]] = {}
        for s in settlements:
            if s.receivers:
                per_chunk.setdefault(_report_id(s.app_id, s.campaign_id, s.chunk), []).append(s)
        updates = {doc_id: _settle_update(own) for doc_id, own in per_chunk.items()}
        await _update_each(self._reports, updates)

    async def chunk_reports(
        self, app_id: str, campaign_id: str, chunks: Sequence[int]
    ) -> list[ChunkReport]:
        ids = [_report_id(app_id, campaign_id, chunk) for chunk in dict.fromkeys(chunks)]
        docs = await asyncio.gather(*(self._reports.find_one({"_id": one}) for one in ids))
        return [_report(doc) for doc in docs if doc is not None]

    async def reports(self, app_id: str, campaign_id: str) -> list[ChunkReport]:
        cursor = self._reports.find({"campaign_key": campaign_key(app_id, campaign_id)})
        return sorted([_report(doc) async for doc in cursor], key=lambda r: r.chunk)

    async def mark(self, marks: Sequence[Mark]) -> None:
        docs: dict[str, Document] = {}
        for m in marks:  # the first of a key wins, here as in the collection
            doc_id = derive_id(*mark_key(m))
            docs.setdefault(doc_id, {"_id": doc_id, **_mark_fields(m)})
        await insert_new(self._marks, list(docs.values()))

    async def marked(self, app_id: str, campaign_id: str, kind: MarkKind, channel_id: str) -> int:
        return await self._marks.count_documents(
            {
                "campaign_key": campaign_key(app_id, campaign_id),
                "kind": kind,
                "channel_id": channel_id,
            }
        )
